/*
 * C tests of the public header, run against the shared and the static
 * library under valgrind. Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"


static fidius_host_t *make_host(const char *dir, int signed_only) {
    fidius_host_builder_t *b = test_builder();
    fidius_host_t *host = NULL;
    CHECK(b != NULL);
    if (dir) CHECK(fidius_host_builder_add_search_path(b, path_of(dir), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    if (signed_only) {
        CHECK(fidius_host_builder_set_require_signature(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("keys/trusted.public"), NT, NULL) ==
              FIDIUS_HOST_STATUS_OK);
    }
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(host != NULL);
    return host;
}

static void put_i64(uint8_t *out, int64_t v) { memcpy(out, &v, 8); }
static int64_t get_i64(const uint8_t *in) {
    int64_t v;
    memcpy(&v, in, 8);
    return v;
}

static int64_t call_add(const fidius_host_plugin_t *p, int64_t a, int64_t b, fidius_host_status *status) {
    uint8_t in[16];
    fidius_host_bytes_t out;
    int64_t result = 0;
    put_i64(in, a);
    put_i64(in + 8, b);
    *status = fidius_host_plugin_call(p, 0, in, sizeof in, &out, NULL);
    if (*status == FIDIUS_HOST_STATUS_OK && out.len == 8) result = get_i64(out.data);
    fidius_host_bytes_free(&out);
    return result;
}

static void test_versions_and_names(void) {
    fidius_host_str_t sigs[1];
    uint64_t hash = 0;
    CHECK(strcmp(fidius_host_version(), FIDIUS_HOST_VERSION_STRING) == 0);
    CHECK(fidius_host_version_number() == FIDIUS_HOST_VERSION_NUMBER);
    CHECK(strcmp(fidius_host_status_name(FIDIUS_HOST_STATUS_OK), "OK") == 0);
    CHECK(strcmp(fidius_host_status_name(FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND), "PLUGIN_NOT_FOUND") == 0);
    CHECK(strcmp(fidius_host_status_name(123456), "UNKNOWN") == 0);
    sigs[0].data = "add:i64,i64->i64";
    sigs[0].len = strlen(sigs[0].data);
    CHECK(fidius_host_signatures_hash(sigs, 1, &hash, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(hash == 0xbe30b9d096b2c49eULL);
    CHECK(fidius_host_signatures_hash(NULL, 0, &hash, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(hash == 0xcbf29ce484222325ULL);
    CHECK(fidius_host_signatures_hash(NULL, 1, &hash, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    sigs[0].data = "\xff\xfe";
    sigs[0].len = 2;
    CHECK(fidius_host_signatures_hash(sigs, 1, &hash, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
}

static void test_discovery(void) {
    fidius_host_t *host = make_host("plugins", 0);
    fidius_host_discovery_t *d = NULL;
    size_t i, n;
    int seen_basic = 0;
    CHECK(fidius_host_discover(host, &d, NULL) == FIDIUS_HOST_STATUS_OK);
    n = fidius_host_discovery_plugin_count(d);
    CHECK(n == 2);
    for (i = 0; i < n; i++) {
        const fidius_host_plugin_info_t *info = fidius_host_discovery_plugin(d, i);
        CHECK(info != NULL);
        CHECK(strcmp(fidius_host_plugin_info_interface_name(info), "Calculator") == 0);
        CHECK(fidius_host_plugin_info_interface_version(info) == 2);
        CHECK(fidius_host_plugin_info_buffer_strategy(info) == FIDIUS_HOST_BUFFER_STRATEGY_PLUGIN_ALLOCATED);
        CHECK(fidius_host_plugin_info_runtime(info) == FIDIUS_HOST_RUNTIME_CDYLIB);
        CHECK(strstr(fidius_host_plugin_info_path(info), "libcalc_plugin.so") != NULL);
        if (strcmp(fidius_host_plugin_info_name(info), "BasicCalculator") == 0) {
            seen_basic = 1;
            CHECK(fidius_host_plugin_info_capabilities(info) == 1);
        }
    }
    CHECK(seen_basic);
    CHECK(fidius_host_discovery_plugin(d, n) == NULL);
    CHECK(fidius_host_discovery_skipped_count(d) == 0);
    fidius_host_discovery_free(d);
    fidius_host_free(host);

    /* Skipped files are explained. */
    host = make_host("crafted", 0);
    CHECK(fidius_host_discover(host, &d, NULL) == FIDIUS_HOST_STATUS_OK);
    n = fidius_host_discovery_skipped_count(d);
    CHECK(n >= 10);
    for (i = 0; i < n; i++) {
        const char *path = fidius_host_discovery_skipped_path(d, i);
        const char *message = fidius_host_discovery_skipped_message(d, i);
        CHECK(path != NULL && message != NULL && strstr(message, path) != NULL);
        if (strstr(path, "libdefect_magic.so"))
            CHECK(fidius_host_discovery_skipped_status(d, i) == FIDIUS_HOST_STATUS_INVALID_MAGIC);
    }
    CHECK(fidius_host_discovery_skipped_path(d, n) == NULL);
    CHECK(fidius_host_discovery_skipped_status(d, n) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    fidius_host_discovery_free(d);
    fidius_host_free(host);
}

static void test_calls(void) {
    fidius_host_t *host = make_host("plugins", 0);
    fidius_host_plugin_t *p = NULL, *partial = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;
    fidius_host_status st;
    uint8_t in[32];
    const char *key, *value;
    size_t count = 99;

    CHECK(fidius_host_load(host, "BasicCalculator", NT, NULL, &p, &err) == FIDIUS_HOST_STATUS_OK);
    CHECK(err == NULL);
    fidius_host_free(host); /* plugin handles outlive the host */
    CHECK(call_add(p, 3, 7, &st) == 10 && st == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_method_count(p) == 8);
    CHECK(strcmp(fidius_host_plugin_info_name(fidius_host_plugin_info(p)), "BasicCalculator") == 0);

    /* greet("hello") */
    memset(in, 0, sizeof in);
    in[0] = 5;
    memcpy(in + 8, "hello", 5);
    CHECK(fidius_host_plugin_call(p, 1, in, 13, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 8 + 13 && memcmp(out.data + 8, "Hello, hello!", 13) == 0);
    fidius_host_bytes_free(&out);
    CHECK(out.data == NULL && out.len == 0);
    fidius_host_bytes_free(&out); /* twice is harmless */
    fidius_host_bytes_free(NULL);

    /* divide(1, 0) -> plugin error with code, message, details */
    put_i64(in, 1);
    put_i64(in + 8, 0);
    CHECK(fidius_host_plugin_call(p, 2, in, 16, &out, &err) == FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(out.data == NULL && out.len == 0);
    CHECK(err != NULL);
    CHECK(fidius_host_error_status(err) == FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(strcmp(fidius_host_error_plugin_code(err), "DIV_ZERO") == 0);
    CHECK(strcmp(fidius_host_error_plugin_message(err), "cannot divide 1 by zero") == 0);
    CHECK(strcmp(fidius_host_error_plugin_details(err), "{\"dividend\":1}") == 0);
    CHECK(strstr(fidius_host_error_message(err), "BasicCalculator") != NULL);
    fidius_host_error_free(err);

    /* boom -> panic, then the plugin still works */
    CHECK(fidius_host_plugin_call(p, 4, NULL, 0, &out, &err) == FIDIUS_HOST_STATUS_PLUGIN_PANIC);
    CHECK(strstr(fidius_host_error_message(err), "panicked on purpose") != NULL);
    CHECK(fidius_host_error_plugin_code(err) == NULL);
    fidius_host_error_free(err);
    CHECK(call_add(p, 20, 22, &st) == 42 && st == FIDIUS_HOST_STATUS_OK);

    /* raw reverse, empty input with a NULL pointer, ping */
    CHECK(fidius_host_plugin_call(p, 5, (const uint8_t *)"raw!", 4, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 4 && memcmp(out.data, "!war", 4) == 0);
    fidius_host_bytes_free(&out);
    CHECK(fidius_host_plugin_call(p, 6, NULL, 0, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 0 && out.data == NULL);
    CHECK(fidius_host_plugin_call(p, 0, (const uint8_t *)"abc", 3, &out, NULL) == FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION);

    /* index out of range */
    CHECK(fidius_host_plugin_call(p, 8, NULL, 0, &out, &err) == FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE);
    CHECK(strstr(fidius_host_error_message(err), "8 methods") != NULL);
    {
        uint32_t index = 0, count = 0;
        uint64_t expected = 7;
        CHECK(fidius_host_error_method_out_of_range(err, &index, &count) && index == 8 && count == 8);
        CHECK(!fidius_host_error_mismatch(err, &expected, NULL) && expected == 7);
        CHECK(!fidius_host_error_method_out_of_range(NULL, &index, &count));
    }
    fidius_host_error_free(err);

    /* metadata */
    CHECK(fidius_host_plugin_trait_metadata_count(p) == 2);
    CHECK(fidius_host_plugin_trait_metadata(p, 1, &key, &value, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(strcmp(key, "category") == 0 && strcmp(value, "math") == 0);
    CHECK(fidius_host_plugin_trait_metadata(p, 2, &key, &value, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(key == NULL && value == NULL);
    CHECK(fidius_host_plugin_method_metadata_count(p, 0, &count, NULL) == FIDIUS_HOST_STATUS_OK && count == 2);
    CHECK(fidius_host_plugin_method_metadata(p, 0, 0, &key, &value, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(strcmp(key, "doc") == 0 && strcmp(value, "adds two integers") == 0);
    CHECK(fidius_host_plugin_method_metadata_count(p, 1, &count, NULL) == FIDIUS_HOST_STATUS_OK && count == 0);
    CHECK(fidius_host_plugin_method_metadata_count(p, 8, &count, NULL) == FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE);
    CHECK(fidius_host_plugin_method_metadata(p, 9, 0, &key, &value, NULL) == FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE);

    /* optional method: implemented here, missing in PartialCalculator */
    CHECK(fidius_host_plugin_has_capability(p, 0));
    CHECK(!fidius_host_plugin_has_capability(p, 64));
    put_i64(in, 6);
    put_i64(in + 8, 7);
    CHECK(fidius_host_plugin_call(p, 7, in, 16, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(get_i64(out.data) == 42);
    fidius_host_bytes_free(&out);
    host = make_host("plugins", 0);
    CHECK(fidius_host_load_path(host, path_of("plugins/libcalc_plugin.so"), NT, "PartialCalculator", NT, NULL, &partial,
                                NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(!fidius_host_plugin_has_capability(partial, 0));
    CHECK(fidius_host_plugin_call(partial, 7, in, 16, &out, NULL) == FIDIUS_HOST_STATUS_NOT_IMPLEMENTED);
    fidius_host_plugin_free(partial);
    fidius_host_free(host);
    fidius_host_plugin_free(p);
}

static void test_arena(void) {
    fidius_host_builder_t *b = test_builder();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *p = NULL;
    fidius_host_bytes_t out;
    uint8_t in[13];
    uint32_t times = 3000;
    CHECK(fidius_host_builder_add_search_path(b, path_of("arena"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_buffer_strategy(b, FIDIUS_HOST_BUFFER_STRATEGY_ARENA, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_max_output_size(b, 5000, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, "ArenaEcho", NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    /* repeat("a", 3000): grows past the 4 KiB first arena? no: 3008 bytes fits; 4500 needs a retry */
    memset(in, 0, sizeof in);
    in[0] = 1;
    in[8] = 'a';
    memcpy(in + 9, &times, 4);
    CHECK(fidius_host_plugin_call(p, 0, in, sizeof in, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 8 + 3000);
    fidius_host_bytes_free(&out);
    times = 4500;
    memcpy(in + 9, &times, 4);
    CHECK(fidius_host_plugin_call(p, 0, in, sizeof in, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 8 + 4500 && out.data[8] == 'a' && out.data[8 + 4499] == 'a');
    fidius_host_bytes_free(&out);
    times = 100000;
    memcpy(in + 9, &times, 4);
    CHECK(fidius_host_plugin_call(p, 0, in, sizeof in, &out, NULL) == FIDIUS_HOST_STATUS_OUTPUT_TOO_LARGE);
    CHECK(fidius_host_plugin_call(p, 1, (const uint8_t *)"up", 2, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 2 && memcmp(out.data, "UP", 2) == 0);
    fidius_host_bytes_free(&out);
    CHECK(fidius_host_plugin_call(p, 3, NULL, 0, &out, NULL) == FIDIUS_HOST_STATUS_PLUGIN_PANIC);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
}

static void expect_load_failure(fidius_host_t *host, const char *file, fidius_host_status expected) {
    fidius_host_plugin_t *p = (fidius_host_plugin_t *)&p; /* must be reset to NULL */
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_load_path(host, path_of(file), NT, NULL, 0, NULL, &p, &err);
    CHECK(st == expected);
    CHECK(p == NULL);
    CHECK(err != NULL && fidius_host_error_status(err) == expected);
    if (err && strstr(fidius_host_error_message(err), file) == NULL) {
        fprintf(stderr, "message does not name %s: %s\n", file, fidius_host_error_message(err));
        failed++;
    }
    if (st != expected) fprintf(stderr, "%s: got %s\n", file, fidius_host_status_name(st));
    fidius_host_error_free(err);
}

static void test_validation(void) {
    fidius_host_t *host = make_host(NULL, 0);
    fidius_host_t *signed_host = make_host("signed", 1);
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status st;
    expect_load_failure(host, "crafted/libdefect_magic.so", FIDIUS_HOST_STATUS_INVALID_MAGIC);
    expect_load_failure(host, "crafted/libdefect_registry_version.so", FIDIUS_HOST_STATUS_INCOMPATIBLE_REGISTRY_VERSION);
    expect_load_failure(host, "crafted/libdefect_abi.so", FIDIUS_HOST_STATUS_INCOMPATIBLE_ABI_VERSION);
    expect_load_failure(host, "crafted/libdefect_descriptor_size.so", FIDIUS_HOST_STATUS_INVALID_DESCRIPTOR_SIZE);
    expect_load_failure(host, "crafted/libdefect_null_vtable.so", FIDIUS_HOST_STATUS_INVALID_PLUGIN_POINTER);
    expect_load_failure(host, "crafted/libdefect_bad_utf8_name.so", FIDIUS_HOST_STATUS_INVALID_PLUGIN_STRING);
    expect_load_failure(host, "crafted/libdefect_construct_returns_null.so", FIDIUS_HOST_STATUS_CONSTRUCT_FAILED);
    expect_load_failure(host, "crafted/libdefect_null_registry.so", FIDIUS_HOST_STATUS_INVALID_REGISTRY);
    expect_load_failure(host, "crafted/libdefect_huge_count.so", FIDIUS_HOST_STATUS_INVALID_PLUGIN_COUNT);
    expect_load_failure(host, "crafted/libdefect_no_symbol.so", FIDIUS_HOST_STATUS_REGISTRY_MISSING);
    expect_load_failure(host, "keys/trusted.public", FIDIUS_HOST_STATUS_NOT_A_LIBRARY);
    expect_load_failure(host, "plugins/libnothing.so", FIDIUS_HOST_STATUS_FILE_NOT_FOUND);
    expect_load_failure(host, "plugins/libcalc_plugin.so", FIDIUS_HOST_STATUS_AMBIGUOUS_PLUGIN);
    /* signatures: unsigned, wrong key */
    expect_load_failure(signed_host, "plugins/libcalc_plugin.so", FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED);
    expect_load_failure(signed_host, "signed/libmarker.so", FIDIUS_HOST_STATUS_SIGNATURE_INVALID);
    CHECK(fidius_host_load(signed_host, "BasicCalculator", NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(call_add(p, 1, 2, &st) == 3 && st == FIDIUS_HOST_STATUS_OK);
    fidius_host_plugin_free(p);
    /* unknown name */
    CHECK(fidius_host_load(signed_host, "Nobody", NT, NULL, &p, &err) == FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND);
    CHECK(strstr(fidius_host_error_message(err), "'Nobody'") != NULL);
    CHECK(strstr(fidius_host_error_message(err), "libmarker.so") != NULL);
    fidius_host_error_free(err);
    fidius_host_free(signed_host);
    fidius_host_free(host);
}

static void test_bad_arguments(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *p = NULL;
    fidius_host_discovery_t *d = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;
    uint8_t key[32] = {0};
    const char *k, *v;
    size_t count;

    CHECK(fidius_host_builder_add_search_path(NULL, "x", NT, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(strstr(fidius_host_error_message(err), "'builder'") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_builder_add_search_path(b, NULL, NT, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_add_search_path(b, NULL, 3, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_add_search_path(b, "", 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_add_search_path(b, "bad\xff", 4, &err) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(strstr(fidius_host_error_message(err), "'path'") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_builder_set_load_policy(b, 7, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_set_load_policy(b, FIDIUS_HOST_LOAD_POLICY_LENIENT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_buffer_strategy(b, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_set_max_output_size(b, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_add_trusted_key(b, key, 31, NULL) == FIDIUS_HOST_STATUS_INVALID_KEY);
    CHECK(fidius_host_builder_add_trusted_key(b, NULL, 32, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("keys/nothing.public"), NT, NULL) ==
          FIDIUS_HOST_STATUS_FILE_NOT_FOUND);
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("crafted/libcrafted.so"), NT, NULL) ==
          FIDIUS_HOST_STATUS_INVALID_KEY);
    CHECK(fidius_host_builder_set_interface_hash(NULL, 1, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    /* a handle of the wrong type */
    CHECK(fidius_host_builder_set_require_signature((fidius_host_builder_t *)(void *)key, true, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    /* signatures required without a key: build fails and still consumes the builder */
    CHECK(fidius_host_builder_set_require_signature(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(host == NULL);
    CHECK(strstr(fidius_host_error_message(err), "no trusted key") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_builder_build(NULL, &host, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_build(b, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT); /* consumed anyway */
    fidius_host_builder_free(NULL);

    host = make_host("plugins", 0);
    CHECK(fidius_host_discover(NULL, &d, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT && d == NULL);
    CHECK(fidius_host_discover(host, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load(host, NULL, NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load(host, "Basic\xc3", 6, NULL, &p, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, NULL, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load_path(host, "\xff.so", NT, NULL, 0, NULL, &p, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_load(host, "BasicCalculator", 5, NULL, &p, NULL) == FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_call(NULL, 0, NULL, 0, &out, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_call(p, 0, NULL, 0, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_call(p, 0, NULL, 16, &out, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_call((const fidius_host_plugin_t *)(const void *)host, 0, NULL, 0, &out, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(fidius_host_plugin_trait_metadata(p, 0, NULL, &v, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_trait_metadata(p, 0, &k, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_method_metadata_count(p, 0, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_method_metadata_count(NULL, 0, &count, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    /* getters on NULL are harmless */
    CHECK(fidius_host_plugin_info(NULL) == NULL);
    CHECK(fidius_host_plugin_method_count(NULL) == 0);
    CHECK(!fidius_host_plugin_has_capability(NULL, 0));
    CHECK(fidius_host_plugin_trait_metadata_count(NULL) == 0);
    CHECK(fidius_host_plugin_info_name(NULL) == NULL);
    CHECK(fidius_host_plugin_info_interface_hash(NULL) == 0);
    CHECK(fidius_host_discovery_plugin_count(NULL) == 0);
    CHECK(fidius_host_discovery_plugin(NULL, 0) == NULL);
    CHECK(fidius_host_discovery_skipped_status(NULL, 0) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_error_message(NULL) == NULL);
    CHECK(fidius_host_error_status(NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    fidius_host_error_free(NULL);
    fidius_host_discovery_free(NULL);
    fidius_host_plugin_free(NULL);
    fidius_host_free(NULL);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int64_t i;
    fidius_host_status st;
    for (i = 0; i < 2000; i++) {
        if (call_add(w->plugin, w->base, i, &st) != w->base + i || st != FIDIUS_HOST_STATUS_OK) w->errors++;
    }
    return NULL;
}

static void test_threads(void) {
    fidius_host_t *host = make_host("plugins", 0);
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_load(host, "BasicCalculator", NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    run_workers(p, 1000000, worker_main);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
}

static fidius_host_t *host_trusting(const char *key_file) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of(key_file), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

static int verify_fails(const fidius_host_t *host, const char *path, fidius_host_status want, const char *text) {
    fidius_host_error_t *err = NULL;
    int ok = fidius_host_verify_path(host, path_of(path), NT, &err) == want && err != NULL &&
             strstr(fidius_host_error_message(err), text) != NULL;
    if (!ok && err) fprintf(stderr, "  unexpected error: %s\n", fidius_host_error_message(err));
    fidius_host_error_free(err);
    return ok;
}

static void test_features_and_verify(void) {
    fidius_host_t *plain = make_host(NULL, 0), *trusting = host_trusting("keys/trusted.public");
    fidius_host_t *other = host_trusting("keys/untrusted.public");
    fidius_host_error_t *err = NULL;
    uint32_t built = (FIDIUS_HOST_BUILT_WITH_WASM ? FIDIUS_HOST_FEATURE_WASM : 0u) |
                     (FIDIUS_HOST_BUILT_WITH_PYTHON ? FIDIUS_HOST_FEATURE_PYTHON : 0u);

    CHECK(fidius_host_features() == built);
    /* A signed library and a signed package verify; nothing is loaded. */
    CHECK(fidius_host_verify_path(trusting, path_of("signed/libcalc_plugin.so"), NT, &err) == FIDIUS_HOST_STATUS_OK);
    CHECK(err == NULL);
    CHECK(fidius_host_verify_path(trusting, path_of("wasm-signed/calc"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    /* Unsigned, signed by a key the host does not trust, no key at all. */
    CHECK(verify_fails(trusting, "plugins/libcalc_plugin.so", FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED, "libcalc_plugin.so"));
    CHECK(verify_fails(trusting, "wasm/calc", FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED, "calc"));
    CHECK(verify_fails(other, "signed/libcalc_plugin.so", FIDIUS_HOST_STATUS_SIGNATURE_INVALID, "libcalc_plugin.so"));
    CHECK(verify_fails(plain, "signed/libcalc_plugin.so", FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "no trusted key"));
    CHECK(verify_fails(trusting, "signed/missing.so", FIDIUS_HOST_STATUS_FILE_NOT_FOUND, "missing.so"));
    CHECK(fidius_host_verify_path(NULL, "x", NT, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    fidius_host_free(plain);
    fidius_host_free(trusting);
    fidius_host_free(other);
}

/* The host interfaces a library imports, before anything is bound. */
static void test_host_imports(void) {
    fidius_host_t *host = make_host("hostcall", 0);
    fidius_host_plugin_t *p = NULL, *calc = NULL;
    fidius_host_error_t *err = NULL;
    const char *name = "unset";
    uint32_t version = 99;
    uint64_t hash = 99;

    CHECK(fidius_host_load(host, "LedgerBookkeeper", NT, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_host_import_count(p) == 1);
    CHECK(fidius_host_plugin_host_import(p, 0, &name, &version, &hash, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(strcmp(name, "Ledger") == 0 && version == 3 && hash == 0xbff4d4845b9fe343ULL);
    CHECK(fidius_host_plugin_host_import(p, 0, NULL, NULL, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_host_import(p, 1, &name, &version, &hash, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(name == NULL && version == 0 && hash == 0);
    CHECK(err != NULL && strstr(fidius_host_error_message(err), "out of range") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_plugin_host_import_count(NULL) == 0);
    fidius_host_plugin_free(p);
    fidius_host_free(host);

    host = make_host("plugins", 0);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, NULL, &calc, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_host_import_count(calc) == 0);
    fidius_host_plugin_free(calc);
    fidius_host_free(host);
}

static void run_tests(void) {
    test_features_and_verify();
    test_host_imports();
    test_versions_and_names();
    test_discovery();
    test_calls();
    test_arena();
    test_validation();
    test_bad_arguments();
    test_threads();
}

int main(void) { return check_main(run_tests); }
