/*
 * C tests of WebAssembly component plugins: calls, traps, deadlines,
 * cancellation, memory caps, the sandbox, signed packages, precompiled components and threads.
 * Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static fidius_host_t *host_with(const char *dir, fidius_host_builder_t *b) {
    fidius_host_t *host = NULL;
    if (b == NULL) b = fidius_host_builder_new();
    if (dir) CHECK(fidius_host_builder_add_search_path(b, path_of(dir), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

static fidius_host_load_options_t *options_for(const char *interface) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file(interface);
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_interface_free(iface);
    return options;
}

static void test_calculator_component(void) {
    fidius_host_t *host = host_with("wasm", NULL);
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;

    CHECK(fidius_host_load(host, "WasmCalculator", NT, NULL, &p, &err) == FIDIUS_HOST_STATUS_NO_INTERFACE);
    CHECK(p == NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_load(host, "WasmCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_info_runtime(fidius_host_plugin_info(p)) == FIDIUS_HOST_RUNTIME_WASM);
    CHECK(fidius_host_plugin_info_interface_hash(fidius_host_plugin_info(p)) == 0x0271e9b7d21d10f1ULL);
    CHECK(fidius_host_plugin_diagnostic_count(p) == 0);
    CHECK(fidius_host_plugin_diagnostic(p, 0) == NULL);

    CHECK(json_is(p, "add", "[3, 7]", "10"));
    CHECK(json_is(p, "greet", "[\"C\"]", "\"Hello, C!\""));
    CHECK(json_is(p, "describe", "[true, 0.5, [\"a\"], null]", "\"flag=true ratio=0.5 tags=a note=none\""));
    CHECK(json_is(p, "ping", "[]", "null"));
    CHECK(json_is(p, "reverse", "[[1, 2, 3]]", "[3,2,1]"));
    check_calculator_calls(p);
    CHECK(json_fails(p, "boom", "[]", FIDIUS_HOST_STATUS_PLUGIN_TRAP, "trapped"));
    CHECK(json_is(p, "add", "[20, 22]", "42")); /* a fresh instance after the trap */

    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void test_limits_and_sandbox(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host;
    fidius_host_load_options_t *options = options_for("hostile.toml");
    fidius_host_plugin_t *p = NULL;
    struct timespec start, end;
    double seconds;

    CHECK(fidius_host_builder_set_wasm_deadline_ms(b, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_wasm_memory_limit(b, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_set_wasm_memory_limit(b, 16u << 20, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_denied_capability(b, "", 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_add_denied_capability(b, "env", NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_allow_unsigned_precompiled(b, false, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with("wasm", b);

    CHECK(fidius_host_load_options_set_wasm_deadline_ms(options, 200, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_wasm_memory_limit(options, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_load_options_set_wasm_deadline_ms(NULL, 1, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);

    CHECK(json_is(p, "counter", "[]", "1"));
    CHECK(json_is(p, "counter", "[]", "2"));
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(json_fails(p, "spin", "[]", FIDIUS_HOST_STATUS_TIMEOUT, "deadline"));
    clock_gettime(CLOCK_MONOTONIC, &end);
    seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    /* Stopped, not finished: it never would. The deadline's slack is measured
     * by the Rust tests; under valgrind a thread switch takes much longer. */
    CHECK(seconds >= 0.2 && seconds < 120.0);
    if (seconds >= 10.0) fprintf(stderr, "  note: the endless call was stopped after %.1f s\n", seconds);
    CHECK(json_is(p, "counter", "[]", "1")); /* a fresh instance */
    /* A guest asleep on a clock waits in the host: the wait ends at the
     * deadline too. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(json_fails(p, "nap", "[3600000]", FIDIUS_HOST_STATUS_TIMEOUT, "deadline"));
    clock_gettime(CLOCK_MONOTONIC, &end);
    seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    CHECK(seconds >= 0.2 && seconds < 120.0);
    CHECK(json_is(p, "counter", "[]", "1"));
    CHECK(json_fails(p, "hog", "[64]", FIDIUS_HOST_STATUS_MEMORY_LIMIT, "16777216"));
    CHECK(json_is(p, "hog", "[2]", "2"));
    {
        uint64_t high = 1;
        fidius_host_error_t *err = NULL;
        CHECK(fidius_host_plugin_memory_high_water(p, &high, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(high >= (2u << 20) && high <= (16u << 20)); /* grown, never past the cap */
        CHECK(fidius_host_plugin_memory_high_water(p, NULL, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
        CHECK(error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "bytes_out"));
    }
    CHECK(json_fails(p, "read_file", "[\"/etc/passwd\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "returned an error"));
    CHECK(json_fails(p, "crash", "[]", FIDIUS_HOST_STATUS_PLUGIN_TRAP, "crash"));
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* Cancelled from another thread, without a deadline: a spinning guest at
 * its next epoch check, a sleeping one in its wait in the host. */
static void test_cancel(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host;
    fidius_host_load_options_t *options = options_for("hostile.toml");
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_builder_set_wasm_deadline_ms(b, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with("wasm", b);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    if (p) {
        CHECK(json_is(p, "counter", "[]", "1"));
        CHECK(json_cancelled(p, "spin", "[]", 300, "fresh instance"));
        CHECK(json_is(p, "counter", "[]", "1"));
        CHECK(json_cancelled(p, "nap", "[3600000]", 300, "cancelled"));
        CHECK(json_is(p, "counter", "[]", "1"));
    }
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* A fresh instance per call: no state carried over, host-wide or per load. */
static void test_fresh_instances(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_load_options_t *options = options_for("hostile.toml");
    fidius_host_plugin_t *fresh = NULL, *persistent = NULL;
    fidius_host_t *host;
    CHECK(fidius_host_builder_set_wasm_fresh_instance_per_call(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_wasm_fresh_instance_per_call(NULL, true, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    host = host_with("wasm", b);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &fresh, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(fresh, "counter", "[]", "1"));
    CHECK(json_is(fresh, "counter", "[]", "1"));
    CHECK(fidius_host_load_options_set_wasm_fresh_instance_per_call(options, false, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_wasm_fresh_instance_per_call(NULL, false, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &persistent, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(persistent, "counter", "[]", "1"));
    CHECK(json_is(persistent, "counter", "[]", "2"));
    fidius_host_plugin_free(fresh);
    fidius_host_plugin_free(persistent);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* An instance pool: a slot per live instance; none free is an error the
 * caller can retry, and freeing a plugin gives its slot back. */
static void test_instance_pool(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_load_options_t *options = options_for("hostile.toml");
    fidius_host_plugin_t *first = NULL, *second = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_t *host;
    int i;
    CHECK(fidius_host_builder_set_wasm_instance_pool(NULL, 1, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_set_wasm_instance_pool(b, 1, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with("wasm", b);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &first, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &second, &err) == FIDIUS_HOST_STATUS_INSTANCE_POOL_EXHAUSTED);
    CHECK(second == NULL);
    CHECK(err != NULL && strstr(fidius_host_error_message(err), "pool") != NULL);
    CHECK(strcmp(fidius_host_status_name(FIDIUS_HOST_STATUS_INSTANCE_POOL_EXHAUSTED), "INSTANCE_POOL_EXHAUSTED") == 0);
    fidius_host_error_free(err);
    fidius_host_plugin_free(first);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &second, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(second, "counter", "[]", "1"));
    CHECK(json_is(second, "counter", "[]", "2"));
    fidius_host_plugin_free(second);
    fidius_host_free(host);

    /* Fresh instances per call hold a slot only while a call runs. */
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_set_wasm_instance_pool(b, 2, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_wasm_fresh_instance_per_call(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with("wasm", b);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &first, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, "HostileGuest", NT, options, &second, NULL) == FIDIUS_HOST_STATUS_OK);
    for (i = 0; i < 5; i++) {
        CHECK(json_is(first, "counter", "[]", "1"));
        CHECK(json_is(second, "hog", "[2]", "2"));
    }
    fidius_host_plugin_free(first);
    fidius_host_plugin_free(second);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void test_signed_packages(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host;
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    CHECK(fidius_host_builder_set_require_signature(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("keys/trusted.public"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with(NULL, b);
    CHECK(fidius_host_load_path(host, path_of("wasm-signed/calc"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "multiply", "[6, 7]", "42"));
    fidius_host_plugin_free(p);
    CHECK(fidius_host_load_path(host, path_of("wasm/calc"), NT, NULL, 0, options, &p, &err) ==
          FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED);
    CHECK(err != NULL && strstr(fidius_host_error_message(err), "package.sig") != NULL);
    fidius_host_error_free(err);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *data;
    long size;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    *len = fread(data, 1, (size_t)size, f);
    fclose(f);
    return data;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
}

static void test_precompiled(void) {
    char dir[] = "/tmp/fidius-cwasm-XXXXXX", path[512];
    size_t len = 0, toml_len = 0;
    unsigned char *component = read_file(path_of("wasm/calc/calc_component.wasm"), &len);
    unsigned char *manifest = read_file(path_of("wasm/calc/package.toml"), &toml_len);
    fidius_host_bytes_t cwasm, bad;
    fidius_host_error_t *err = NULL;
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_builder_t *b;
    fidius_host_t *host;
    fidius_host_plugin_t *p = NULL;

    CHECK(component != NULL && manifest != NULL && mkdtemp(dir) != NULL);
    CHECK(fidius_host_precompile_component(component, len, &cwasm, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(cwasm.len > 0);
    CHECK(fidius_host_precompile_component((const uint8_t *)"nope", 4, &bad, &err) ==
          FIDIUS_HOST_STATUS_INVALID_COMPONENT);
    CHECK(bad.len == 0 && bad.data == NULL);
    CHECK(err != NULL && strstr(fidius_host_error_message(err), "precompile") != NULL);
    fidius_host_error_free(err);
    snprintf(path, sizeof path, "%s/package.toml", dir);
    write_file(path, manifest, toml_len);
    snprintf(path, sizeof path, "%s/calc_component.wasm", dir);
    write_file(path, component, len);
    snprintf(path, sizeof path, "%s/calc_component.cwasm", dir);
    write_file(path, cwasm.data, cwasm.len);
    fidius_host_bytes_free(&cwasm);

    /* Unsigned precompiled code is not loaded unless the host allows it. */
    host = host_with(NULL, NULL);
    CHECK(fidius_host_load_path(host, dir, NT, NULL, 0, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_diagnostic_count(p) == 1);
    CHECK(fidius_host_plugin_diagnostic(p, 0) != NULL && strstr(fidius_host_plugin_diagnostic(p, 0), "not signed"));
    CHECK(json_is(p, "add", "[1, 2]", "3"));
    fidius_host_plugin_free(p);
    fidius_host_free(host);

    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_set_allow_unsigned_precompiled(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    host = host_with(NULL, b);
    CHECK(fidius_host_load_path(host, dir, NT, NULL, 0, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_diagnostic_count(p) == 0);
    CHECK(json_is(p, "add", "[2, 2]", "4"));
    fidius_host_plugin_free(p);
    fidius_host_free(host);

    CHECK(fidius_host_precompile_component(NULL, 1, &bad, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_precompile_component(component, len, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    unlink(path);
    snprintf(path, sizeof path, "%s/calc_component.wasm", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/package.toml", dir);
    unlink(path);
    rmdir(dir);
    free(component);
    free(manifest);
    fidius_host_load_options_free(options);
}

/* Entries (`*.entry` files) in the compile cache directory `dir`. */
static int cache_entry_count(const char *dir) {
    char command[4200];
    FILE *ls;
    int count = 0, c;
    snprintf(command, sizeof command, "ls '%s' | grep -c '[.]entry$'", dir);
    ls = popen(command, "r");
    CHECK(ls != NULL);
    if (ls == NULL) return -1;
    if (fscanf(ls, "%d", &count) != 1) count = -1;
    while ((c = fgetc(ls)) != EOF) {
    }
    pclose(ls);
    return count;
}

static void test_compile_cache(void) {
    char dir[] = "/tmp/fidius-c-compile-cache-XXXXXX", cache[4200], command[4300];
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_builder_t *b;
    fidius_host_t *host;
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    int round;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    /* Two hosts, as two processes would be: the first compiles and keeps
     * the component, the second reads it; neither has anything to say. */
    for (round = 0; round < 2; round++) {
        b = fidius_host_builder_new();
        CHECK(fidius_host_builder_set_wasm_compile_cache(b, cache, NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
        host = host_with(NULL, b);
        CHECK(fidius_host_load_path(host, path_of("wasm/calc"), NT, NULL, 0, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_plugin_diagnostic_count(p) == 0);
        CHECK(json_is(p, "add", "[40, 2]", "42"));
        fidius_host_plugin_free(p);
        fidius_host_free(host);
        CHECK(cache_entry_count(cache) == 1);
    }
    /* A directory others may write is refused, and the builder keeps its
     * previous setting. */
    CHECK(chmod(cache, 0777) == 0);
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_set_wasm_compile_cache(b, cache, NT, 0, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(err != NULL && strstr(fidius_host_error_message(err), "others may write it") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_builder_set_wasm_compile_cache(b, "", NT, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_builder_set_wasm_compile_cache(b, NULL, NT, 0, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_set_wasm_compile_cache(b, "\xff", NT, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    fidius_host_builder_free(b);
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    CHECK(system(command) == 0);
    fidius_host_load_options_free(options);
}

static void test_archives(void) {
    char dir[] = "/tmp/fidius-c-archives-XXXXXX", expected[4200], command[4300];
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_t *host = host_with(NULL, NULL), *strict;
    fidius_host_builder_t *b;
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    char *unpacked = NULL;
    CHECK(mkdtemp(dir) != NULL);
    /* Unpacked: the package directory, owned by the caller, loads. */
    CHECK(fidius_host_unpack_archive(host, path_of("archives/calc.fid"), NT, dir, NT, &unpacked, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    snprintf(expected, sizeof expected, "%s/WasmCalculator-0.1.0", dir);
    CHECK(unpacked != NULL && strcmp(unpacked, expected) == 0);
    CHECK(fidius_host_load_path(host, unpacked, NT, NULL, 0, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "add", "[40, 2]", "42"));
    fidius_host_plugin_free(p);
    fidius_host_string_free(unpacked);
    /* Not over an existing package. */
    unpacked = (char *)1;
    CHECK(fidius_host_unpack_archive(host, path_of("archives/calc.fid"), NT, dir, NT, &unpacked, &err) ==
          FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(unpacked == NULL && err != NULL && strstr(fidius_host_error_message(err), "already exists") != NULL);
    fidius_host_error_free(err);
    /* Loaded straight from the archive. */
    CHECK(fidius_host_load_path(host, path_of("archives/calc.fid"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "multiply", "[6, 7]", "42"));
    fidius_host_plugin_free(p);
    /* A host requiring signatures takes only the signed archive. */
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_set_require_signature(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("keys/trusted.public"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    strict = host_with(NULL, b);
    CHECK(fidius_host_load_path(strict, path_of("archives/calc.fid"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED);
    CHECK(fidius_host_verify_path(strict, path_of("archives/calc-signed.fid"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(strict, path_of("archives/calc-signed.fid"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "add", "[1, 2]", "3"));
    fidius_host_plugin_free(p);
    fidius_host_free(strict);
    /* Bad arguments. */
    CHECK(fidius_host_unpack_archive(host, NULL, NT, dir, NT, &unpacked, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_unpack_archive(host, path_of("archives/calc.fid"), NT, dir, NT, NULL, NULL) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_unpack_archive(host, path_of("archives/nothing.fid"), NT, dir, NT, &unpacked, NULL) ==
          FIDIUS_HOST_STATUS_FILE_NOT_FOUND);
    CHECK(unpacked == NULL);
    fidius_host_free(host);
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    CHECK(system(command) == 0);
    fidius_host_load_options_free(options);
}

static void test_discovery(void) {
    fidius_host_t *host = host_with("wasm", NULL);
    fidius_host_discovery_t *d = NULL;
    size_t i, wasm = 0;
    CHECK(fidius_host_discover(host, &d, NULL) == FIDIUS_HOST_STATUS_OK);
    for (i = 0; i < fidius_host_discovery_plugin_count(d); i++)
        if (fidius_host_plugin_info_runtime(fidius_host_discovery_plugin(d, i)) == FIDIUS_HOST_RUNTIME_WASM) wasm++;
    CHECK(wasm == 5); /* calc, hostile, fetch, dialer, stream */
    fidius_host_discovery_free(d);
    fidius_host_free(host);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < 50; i++) {
        char args[64], expected[32];
        snprintf(args, sizeof args, "[%d, 1]", (int)(w->base + i));
        snprintf(expected, sizeof expected, "%d", (int)(w->base + i + 1));
        if (!json_is(w->plugin, "add", args, expected)) w->errors++;
    }
    return NULL;
}

static void test_threads(void) {
    fidius_host_t *host = host_with("wasm", NULL);
    fidius_host_load_options_t *options = options_for("calculator.toml");
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_load(host, "WasmCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    run_workers(p, 1000, worker_main);
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void run_tests(void) {
    test_calculator_component();
    test_limits_and_sandbox();
    test_cancel();
    test_fresh_instances();
    test_instance_pool();
    test_signed_packages();
    test_precompiled();
    test_compile_cache();
    test_archives();
    test_discovery();
    test_threads();
}

int main(void) { return check_main(run_tests); }
