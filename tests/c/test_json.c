/*
 * C tests of interfaces (built in C and read from interface files), loading
 * with an interface, and JSON calls, run against the shared and the static
 * library under valgrind. Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define CALCULATOR_HASH 0x0271e9b7d21d10f1ULL

static fidius_host_t *make_host(const char *dir) {
    fidius_host_builder_t *b = test_builder();
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_add_search_path(b, path_of(dir), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

/* Loads `name` from `dir` with `iface` (which the plugin keeps). */
static fidius_host_plugin_t *load_with(const char *dir, const char *name, const fidius_host_interface_t *iface) {
    fidius_host_t *host = make_host(dir);
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, name, NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
    return p;
}

static void test_interface_builder(void) {
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_interface_t *iface = NULL, *again = NULL;
    fidius_host_error_t *err = NULL;
    char *toml = NULL;
    uint32_t index = 99;

    CHECK(fidius_host_interface_builder_new("Calculator", NT, 2, &b, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_set_wasm_export(b, "fidius:calculator/calculator@0.1.0", NT, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    /* Any spacing: canonicalized as the macro prints types. */
    CHECK(fidius_host_interface_builder_add_method(b, "add: i64, i64 -> i64", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "greet:String->String", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "divide:i64,i64->Result<i64,PluginError>", NT, 0, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "describe:bool,f64,Vec<String>,Option < String >->String", NT,
                                                   0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "boom:->String", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "reverse:Vec<u8>->Vec<u8>", NT, FIDIUS_HOST_METHOD_FLAG_RAW,
                                                   NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "ping:->", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "multiply:i64,i64->i64", NT, FIDIUS_HOST_METHOD_FLAG_OPTIONAL,
                                                   NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(b, &iface, NULL) == FIDIUS_HOST_STATUS_OK);

    CHECK(fidius_host_interface_hash(iface) == CALCULATOR_HASH);
    CHECK(strcmp(fidius_host_interface_name(iface), "Calculator") == 0);
    CHECK(fidius_host_interface_version(iface) == 2);
    CHECK(strcmp(fidius_host_interface_wasm_export(iface), "fidius:calculator/calculator@0.1.0") == 0);
    CHECK(fidius_host_interface_method_count(iface) == 8);
    CHECK(strcmp(fidius_host_interface_method_signature(iface, 5), "reverse:Vec < u8 >->Vec < u8 >!raw") == 0);
    CHECK(strcmp(fidius_host_interface_method_signature(iface, 3),
                 "describe:bool,f64,Vec < String >,Option < String >->String") == 0);
    CHECK(fidius_host_interface_method_signature(iface, 8) == NULL);
    CHECK(fidius_host_interface_method_flags(iface, 5) == FIDIUS_HOST_METHOD_FLAG_RAW);
    CHECK(fidius_host_interface_method_flags(iface, 7) == FIDIUS_HOST_METHOD_FLAG_OPTIONAL);
    CHECK(fidius_host_interface_method_flags(iface, 99) == 0);
    CHECK(fidius_host_interface_method_index(iface, "ping", NT, &index, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(index == 6);
    CHECK(fidius_host_interface_method_index(iface, "pong", NT, &index, &err) == FIDIUS_HOST_STATUS_UNKNOWN_METHOD);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_UNKNOWN_METHOD, "no method 'pong'"));

    /* Interface text round-trips. */
    CHECK(fidius_host_interface_to_toml(iface, &toml, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(toml != NULL && strstr(toml, "hash = \"0x0271e9b7d21d10f1\"") != NULL);
    CHECK(fidius_host_interface_new_from_toml(toml, strlen(toml), &again, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_hash(again) == CALCULATOR_HASH);
    CHECK(fidius_host_interface_method_flags(again, 7) == FIDIUS_HOST_METHOD_FLAG_OPTIONAL);
    fidius_host_string_free(toml);
    fidius_host_interface_free(again);

    /* Bad methods are refused when added; the builder stays usable. */
    CHECK(fidius_host_interface_builder_add_method(b, "add:i64->i64", NT, 0, &err) ==
          FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "'add' is declared twice"));
    CHECK(fidius_host_interface_builder_add_method(b, "nope", NT, 0, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "method signature 'nope'"));
    CHECK(fidius_host_interface_builder_add_method(b, "r:&str->()", NT, 0, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "reference"));
    CHECK(fidius_host_interface_builder_add_method(b, "f:->()", NT, 64, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "flag"));
    CHECK(fidius_host_interface_builder_add_method(b, "f:\xff->()", NT, 0, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_interface_builder_add_method(b, NULL, NT, 0, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_interface_builder_add_method(NULL, "f:->()", NT, 0, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_interface_builder_add_method((fidius_host_interface_builder_t *)iface, "f:->()", NT, 0, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(fidius_host_interface_builder_add_type(b, "struct {", NT, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "type declaration"));
    CHECK(fidius_host_interface_builder_set_wasm_export(b, "has space", NT, NULL) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    fidius_host_interface_free(iface);

    /* An unknown type is an error of the build, naming it. */
    CHECK(fidius_host_interface_builder_add_method(b, "at:Point->Point", NT, FIDIUS_HOST_METHOD_FLAG_OPTIONAL, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    iface = (fidius_host_interface_t *)b; /* anything non-NULL: must be reset */
    CHECK(fidius_host_interface_builder_build(b, &iface, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(iface == NULL);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "unknown type `Point`"));
    CHECK(fidius_host_interface_builder_add_type(b, "struct Point { x: f64, y: f64 }", NT, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(b, &iface, NULL) == FIDIUS_HOST_STATUS_OK);
    /* Optional methods do not change the hash. */
    CHECK(fidius_host_interface_hash(iface) == CALCULATOR_HASH);
    fidius_host_interface_free(iface);
    fidius_host_interface_builder_free(b);

    CHECK(fidius_host_interface_builder_new("not an ident", NT, 1, &b, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(b == NULL);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "not an identifier"));
    CHECK(fidius_host_interface_builder_new("X", NT, 1, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);

    /* NULL getters and frees are harmless. */
    CHECK(fidius_host_interface_hash(NULL) == 0);
    CHECK(fidius_host_interface_name(NULL) == NULL);
    CHECK(fidius_host_interface_method_count(NULL) == 0);
    fidius_host_interface_free(NULL);
    fidius_host_interface_builder_free(NULL);
    fidius_host_string_free(NULL);
}

static void test_interface_files(void) {
    fidius_host_interface_t *iface = interface_file("calculator.toml");
    fidius_host_error_t *err = NULL;
    CHECK(fidius_host_interface_hash(iface) == CALCULATOR_HASH);
    fidius_host_interface_free(iface);

    iface = interface_file("type_echo.toml");
    CHECK(fidius_host_interface_method_count(iface) == 20);
    fidius_host_interface_free(iface);

    CHECK(fidius_host_interface_new_from_file(path_of("interfaces/missing.toml"), NT, &iface, &err) ==
          FIDIUS_HOST_STATUS_FILE_NOT_FOUND);
    CHECK(iface == NULL);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_FILE_NOT_FOUND, "missing.toml"));
    CHECK(fidius_host_interface_new_from_toml("name = \"X\"\nversion = \"one\"\n", NT, &iface, &err) ==
          FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "not a valid interface file"));
    CHECK(fidius_host_interface_new_from_toml("name = \"X\"\nversion = 1\nhash = \"0x5\"\n", NT, &iface, &err) ==
          FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH, "0x0000000000000005"));
    CHECK(fidius_host_interface_new_from_toml("name = \"X\"\nversion = 1\n[[methods]]\nsignature = \"f:Nope->()\"\n", NT,
                                          &iface, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "unknown type `Nope`"));
    CHECK(fidius_host_interface_new_from_toml("name = \"\xff\"", NT, &iface, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_interface_new_from_toml(NULL, 0, &iface, NULL) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(fidius_host_interface_new_from_file(NULL, NT, &iface, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
}

static void test_load_with_interface(void) {
    fidius_host_t *host = make_host("plugins");
    fidius_host_interface_t *calc = interface_file("calculator.toml"), *got = NULL, *other = NULL;
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    char *text = NULL;

    CHECK(fidius_host_load_options_set_interface(options, calc, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    /* The plugin keeps its own reference: free everything else first. */
    fidius_host_interface_free(calc);
    fidius_host_load_options_free(options);
    CHECK(fidius_host_plugin_interface(p, &got, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_hash(got) == CALCULATOR_HASH);
    fidius_host_interface_free(got);
    CHECK(json_is(p, "add", "[3, 7]", "10"));
    fidius_host_plugin_free(p);

    /* A version the plugin does not have. */
    CHECK(fidius_host_interface_builder_new("Calculator", NT, 3, &b, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "add:i64,i64->i64", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(b, &other, NULL) == FIDIUS_HOST_STATUS_OK);
    options = fidius_host_load_options_new();
    CHECK(fidius_host_load_options_set_interface(options, other, NULL) == FIDIUS_HOST_STATUS_OK);
    p = (fidius_host_plugin_t *)options;
    CHECK(fidius_host_load(host, "BasicCalculator", NT, options, &p, &err) ==
          FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH);
    CHECK(p == NULL);
    {
        uint64_t expected = 0, found = 0;
        uint32_t index = 1;
        CHECK(fidius_host_error_mismatch(err, &expected, &found));
        CHECK(expected == 0xbe30b9d096b2c49eULL && found == 0x0271e9b7d21d10f1ULL);
        CHECK(fidius_host_error_mismatch(err, NULL, NULL));
        CHECK(!fidius_host_error_method_out_of_range(err, &index, NULL) && index == 1);
    }
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH,
                     "expected 0xbe30b9d096b2c49e, found 0x0271e9b7d21d10f1"));
    fidius_host_interface_free(other);
    fidius_host_interface_builder_free(b);

    /* Same hash, other version; same hash and version, other method count. */
    calc = interface_file("calculator.toml");
    CHECK(fidius_host_interface_to_toml(calc, &text, NULL) == FIDIUS_HOST_STATUS_OK);
    {
        char edited[4096];
        char *version = strstr(text, "version = 2");
        char *hash = strstr(text, "hash = ");
        CHECK(version != NULL && hash != NULL);
        /* version 2 -> 5 */
        version[10] = '5';
        CHECK(fidius_host_interface_new_from_toml(text, NT, &other, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_load_options_set_interface(options, other, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_load(host, "BasicCalculator", NT, options, &p, &err) ==
              FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH);
        CHECK(error_says(err, FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH, "expected 5, found 2"));
        fidius_host_interface_free(other);
        version[10] = '2';
        snprintf(edited, sizeof edited, "%s\n[[methods]]\nsignature = \"later:->()\"\noptional = true\n", text);
        CHECK(fidius_host_interface_new_from_toml(edited, NT, &other, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_load_options_set_interface(options, other, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_load_path(host, path_of("plugins/libcalc_plugin.so"), NT, "BasicCalculator", NT, options, &p,
                                    &err) == FIDIUS_HOST_STATUS_METHOD_COUNT_MISMATCH);
        CHECK(error_says(err, FIDIUS_HOST_STATUS_METHOD_COUNT_MISMATCH, "expected 9, found 8"));
        fidius_host_interface_free(other);
        fidius_host_string_free(text);
    }
    /* Clearing the interface: loads again, but JSON calls need one. */
    CHECK(fidius_host_load_options_set_interface(options, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_fails(p, "add", "[1, 2]", FIDIUS_HOST_STATUS_NO_INTERFACE, "without an interface"));
    CHECK(fidius_host_plugin_interface(p, &got, &err) == FIDIUS_HOST_STATUS_NO_INTERFACE);
    CHECK(got == NULL);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_NO_INTERFACE, "BasicCalculator"));
    fidius_host_plugin_free(p);
    CHECK(fidius_host_load_options_set_interface(NULL, calc, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load_options_set_interface(options, (fidius_host_interface_t *)options, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(fidius_host_load(host, "BasicCalculator", NT, (fidius_host_load_options_t *)calc, &p, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    fidius_host_interface_free(calc);
    fidius_host_load_options_free(options);
    fidius_host_load_options_free(NULL);
    fidius_host_free(host);
}

static void test_json_calls(void) {
    fidius_host_interface_t *calc = interface_file("calculator.toml");
    fidius_host_interface_t *types = interface_file("type_echo.toml");
    fidius_host_plugin_t *p = load_with("plugins", "BasicCalculator", calc);
    fidius_host_plugin_t *partial = load_with("plugins", "PartialCalculator", calc);
    fidius_host_plugin_t *echo = load_with("types", "TypeEchoes", types);
    fidius_host_error_t *err = NULL;
    char *json = NULL;
    size_t len = 0;

    CHECK(json_is(p, "add", "[-3, 10]", "7"));
    CHECK(json_is(p, "greet", "[\"C\"]", "\"Hello, C!\""));
    CHECK(json_is(p, "describe", "[false, 2.5, [\"x\", \"y\"], \"n\"]", "\"flag=false ratio=2.5 tags=x+y note=n\""));
    CHECK(json_is(p, "ping", "[]", "null"));
    CHECK(json_is(p, "reverse", "[[1, 2, 3]]", "[3,2,1]"));
    CHECK(json_is(p, "multiply", "[6, 7]", "42"));

    /* By index, with an explicit length and no length out-param. */
    CHECK(fidius_host_plugin_call_json_index(p, 0, "[1, 2]xyz", 6, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json != NULL && strcmp(json, "3") == 0);
    fidius_host_string_free(json);
    CHECK(fidius_host_plugin_call_json_index(p, 8, "[]", NT, &json, &len, &err) == FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE);
    CHECK(json == NULL && len == 0);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE, "out of range"));

    /* A plugin error keeps code, message and details. */
    CHECK(fidius_host_plugin_call_json(p, "divide", NT, "[1, 0]", NT, &json, &len, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(json == NULL);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_code(err), "DIV_ZERO") == 0);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_details(err), "{\"dividend\":1}") == 0);
    fidius_host_error_free(err);
    CHECK(json_fails(p, "boom", "[]", FIDIUS_HOST_STATUS_PLUGIN_PANIC, "panicked"));
    CHECK(json_is(p, "divide", "[8, 2]", "4"));
    CHECK(json_fails(partial, "multiply", "[6, 7]", FIDIUS_HOST_STATUS_NOT_IMPLEMENTED, "multiply"));

    /* User structs and enums, serde's representation. */
    CHECK(json_is(echo, "echo_point", "[{\"y\": 2, \"label\": \"p\", \"x\": 1.5}]", "{\"x\":1.5,\"y\":2.0,\"label\":\"p\"}"));
    CHECK(json_is(echo, "echo_shape", "[{\"Rect\": {\"w\": 1, \"h\": 2}}]", "{\"Rect\":{\"w\":1.0,\"h\":2.0}}"));
    CHECK(json_is(echo, "echo_shape", "[\"Empty\"]", "\"Empty\""));
    CHECK(json_is(echo, "echo_structs", "[3, [-1, \"a\"], null]", "[3,[-1,\"a\"],null]"));
    CHECK(json_is(echo, "echo_btree_map", "[[[2, \"b\"], [1, \"a\"]]]", "[[1,\"a\"],[2,\"b\"]]"));
    CHECK(json_is(echo, "echo_hash_map", "[{\"k\": 1}]", "{\"k\":1}"));
    CHECK(json_is(echo, "echo_option", "[null]", "null"));
    CHECK(json_is(echo, "echo_unsigned", "[1, 2, 3, 18446744073709551615, \"18446744073709551616\"]",
                  "[1,2,3,18446744073709551615,\"18446744073709551616\"]"));
    CHECK(json_is(echo, "echo_string", "[\"tab\\there \\u00e9\"]", "\"tab\\there \xc3\xa9\""));
    CHECK(json_is(echo, "checked", "[4]", "4"));
    CHECK(json_fails(echo, "checked", "[-4]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "NEGATIVE"));

    /* Bad input: an error naming position and type; nothing is sent. */
    CHECK(json_fails(p, "add", "[1, 2", FIDIUS_HOST_STATUS_INVALID_JSON, "not valid JSON"));
    CHECK(json_fails(p, "add", "[1]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH, "expected 2 argument(s) (i64, i64), found 1"));
    CHECK(json_fails(p, "add", "{\"a\": 1}", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH, "JSON array"));
    CHECK(json_fails(p, "add", "[1, \"2\"]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH, "argument 2 (i64): expected i64"));
    CHECK(json_fails(echo, "echo_unsigned", "[256, 0, 0, 0, 0]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH,
                     "argument 1 (u8): 256 is out of range for u8 (0..=255)"));
    CHECK(json_fails(echo, "echo_point", "[{\"x\": 1, \"y\": 2}]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH,
                     "missing field `label`"));
    CHECK(json_fails(echo, "echo_shape", "[{\"Square\": 1}]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH,
                     "no variant `Square`"));
    CHECK(json_fails(p, "nope", "[]", FIDIUS_HOST_STATUS_UNKNOWN_METHOD, "no method 'nope'"));
    CHECK(fidius_host_plugin_call_json(p, "add", NT, "[\"\xff\"]", NT, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_UTF8, "args_json"));
    CHECK(fidius_host_plugin_call_json(p, "a\xff", NT, "[]", NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_plugin_call_json(p, "add", NT, NULL, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_call_json(p, "add", NT, "[1, 2]", NT, NULL, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_call_json(NULL, "add", NT, "[1, 2]", NT, &json, NULL, NULL) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(json == NULL);
    CHECK(fidius_host_plugin_call_json((fidius_host_plugin_t *)calc, "add", NT, "[1, 2]", NT, &json, NULL, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    /* The plugin still works after all that. */
    CHECK(json_is(p, "add", "[20, 22]", "42"));

    fidius_host_plugin_free(p);
    fidius_host_plugin_free(partial);
    fidius_host_plugin_free(echo);
    fidius_host_interface_free(calc);
    fidius_host_interface_free(types);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < 200; i++) {
        char args[64], expected[64];
        snprintf(args, sizeof args, "[{\"x\": %d, \"y\": 1, \"label\": \"w\"}]", (int)(w->base + i));
        snprintf(expected, sizeof expected, "{\"x\":%d.0,\"y\":1.0,\"label\":\"w\"}", (int)(w->base + i));
        if (!json_is(w->plugin, "echo_point", args, expected)) w->errors++;
    }
    return NULL;
}

static void test_threads(void) {
    fidius_host_interface_t *types = interface_file("type_echo.toml");
    fidius_host_plugin_t *echo = load_with("types", "TypeEchoes", types);
    fidius_host_interface_free(types);
    run_workers(echo, 1000, worker_main);
    fidius_host_plugin_free(echo);
}

static void run_tests(void) {
    test_interface_builder();
    test_interface_files();
    test_load_with_interface();
    test_json_calls();
    test_threads();
}

int main(void) { return check_main(run_tests); }
