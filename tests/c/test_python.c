/*
 * C tests of Python plugins: the Python calculator against the cdylib one,
 * raw and JSON calls, exceptions, cancellation, broken loads, signed packages, isolation
 * of same-named modules, and threads calling while another thread loads.
 * Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static fidius_host_t *host_for(const char *dir) {
    fidius_host_builder_t *b = test_builder();
    fidius_host_t *host = NULL;
    if (dir) CHECK(fidius_host_builder_add_search_path(b, path_of(dir), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

static fidius_host_load_options_t *calculator_options(void) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("calculator.toml");
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_interface_free(iface);
    return options;
}

/* Whether `method(args)` gives the same JSON from both plugins. */
static int same(const fidius_host_plugin_t *a, const fidius_host_plugin_t *b, const char *method, const char *args) {
    char *x = NULL, *y = NULL;
    int ok = fidius_host_plugin_call_json(a, method, NT, args, NT, &x, NULL, NULL) == FIDIUS_HOST_STATUS_OK &&
             fidius_host_plugin_call_json(b, method, NT, args, NT, &y, NULL, NULL) == FIDIUS_HOST_STATUS_OK &&
             strcmp(x, y) == 0;
    if (!ok) fprintf(stderr, "  %s(%s): %s vs %s\n", method, args, x ? x : "error", y ? y : "error");
    fidius_host_string_free(x);
    fidius_host_string_free(y);
    return ok;
}

static void test_calculator(void) {
    fidius_host_t *python = host_for("python"), *native = host_for("plugins");
    fidius_host_load_options_t *options = calculator_options();
    fidius_host_plugin_t *p = NULL, *n = NULL;
    fidius_host_error_t *err = NULL;

    CHECK(fidius_host_load(python, "PyCalculator", NT, NULL, &p, &err) == FIDIUS_HOST_STATUS_NO_INTERFACE);
    CHECK(p == NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_load(python, "PyCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load(native, "BasicCalculator", NT, options, &n, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_info_runtime(fidius_host_plugin_info(p)) == FIDIUS_HOST_RUNTIME_PYTHON);
    CHECK(fidius_host_plugin_info_interface_hash(fidius_host_plugin_info(p)) == 0x0271e9b7d21d10f1ULL);
    CHECK(fidius_host_plugin_has_capability(p, 0));

    CHECK(same(p, n, "add", "[3, 7]"));
    CHECK(same(p, n, "add", "[9223372036854775807, 1]"));
    CHECK(same(p, n, "greet", "[\"C\"]"));
    CHECK(same(p, n, "divide", "[-9, 2]"));
    CHECK(same(p, n, "describe", "[true, 0.25, [\"a\", \"b\"], null]"));
    CHECK(same(p, n, "reverse", "[[1, 2, 3]]"));
    CHECK(same(p, n, "ping", "[]"));
    CHECK(json_is(p, "multiply", "[6, 7]", "42"));

    check_calculator_calls(p);
    CHECK(json_fails(p, "boom", "[]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "RuntimeError"));
    CHECK(json_fails(p, "add", "[1,", FIDIUS_HOST_STATUS_INVALID_JSON, "not valid JSON"));

    fidius_host_plugin_free(p);
    fidius_host_plugin_free(n);
    fidius_host_load_options_free(options);
    fidius_host_free(python);
    fidius_host_free(native);
}

static void test_exceptions(void) {
    fidius_host_t *host = host_for(NULL);
    fidius_host_load_options_t *options = calculator_options();
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    char *json = NULL;

    CHECK(fidius_host_load_path(host, path_of("python/raising"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    /* SystemExit and KeyboardInterrupt are errors like any other. */
    CHECK(json_fails(p, "add", "[1, 2]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "SystemExit"));
    CHECK(json_fails(p, "greet", "[\"x\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "KeyboardInterrupt"));
    CHECK(fidius_host_plugin_call_json(p, "divide", NT, "[1, 2]", NT, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_code(err), "QUOTA") == 0);
    CHECK(err != NULL && strstr(fidius_host_error_plugin_details(err), "Traceback") != NULL);
    fidius_host_error_free(err);
    CHECK(json_fails(p, "describe", "[true, 1.0, [], null]", FIDIUS_HOST_STATUS_PLUGIN_PROTOCOL, "expected a str"));
    CHECK(json_fails(p, "reverse", "[[1]]", FIDIUS_HOST_STATUS_PLUGIN_PROTOCOL, "must be bytes"));
    CHECK(json_fails(p, "multiply", "[1, 2]", FIDIUS_HOST_STATUS_NOT_IMPLEMENTED, "multiply"));
    CHECK(!fidius_host_plugin_has_capability(p, 0));
    CHECK(json_fails(p, "add", "[1, 2]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "SystemExit"));
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void test_signed(void) {
    fidius_host_builder_t *b = test_builder();
    fidius_host_load_options_t *options = calculator_options();
    fidius_host_plugin_t *p = NULL;
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_set_require_signature(b, true, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_trusted_key_file(b, path_of("keys/trusted.public"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of("python-signed/calc"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "greet", "[\"signed\"]", "\"Hello, signed!\""));
    fidius_host_plugin_free(p);
    p = NULL;
    CHECK(fidius_host_load_path(host, path_of("python/calc"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED);
    CHECK(p == NULL);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* Threads call one plugin while the main thread loads and frees others. */
static void *calc_worker(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < 50; i++) {
        char args[64], expected[32];
        snprintf(args, sizeof args, "[%lld, %d]", (long long)w->base, i);
        snprintf(expected, sizeof expected, "%lld", (long long)(w->base + i));
        if (!json_is(w->plugin, "add", args, expected)) w->errors++;
    }
    return NULL;
}

struct loader {
    const fidius_host_t *host;
    const fidius_host_load_options_t *options;
    int errors;
};

static void *load_loop(void *arg) {
    struct loader *l = arg;
    int i;
    for (i = 0; i < 5; i++) {
        fidius_host_plugin_t *p = NULL;
        if (fidius_host_load(l->host, "PyCalculator", NT, l->options, &p, NULL) != FIDIUS_HOST_STATUS_OK ||
            !json_is(p, "multiply", "[6, 7]", "42"))
            l->errors++;
        fidius_host_plugin_free(p);
    }
    return NULL;
}

static void test_threads(void) {
    fidius_host_t *host = host_for("python");
    fidius_host_load_options_t *options = calculator_options();
    fidius_host_plugin_t *p = NULL;
    struct loader l;
    pthread_t loader_thread;
    CHECK(fidius_host_load(host, "PyCalculator", NT, options, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    l.host = host;
    l.options = options;
    l.errors = 0;
    CHECK(pthread_create(&loader_thread, NULL, load_loop, &l) == 0);
    run_workers(p, 1000, calc_worker);
    pthread_join(loader_thread, NULL);
    CHECK(l.errors == 0);
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void test_discovery(void) {
    fidius_host_t *host = host_for("python");
    fidius_host_discovery_t *d = NULL;
    size_t i, python = 0;
    CHECK(fidius_host_discover(host, &d, NULL) == FIDIUS_HOST_STATUS_OK);
    for (i = 0; i < fidius_host_discovery_plugin_count(d); i++)
        if (fidius_host_plugin_info_runtime(fidius_host_discovery_plugin(d, i)) == FIDIUS_HOST_RUNTIME_PYTHON) python++;
    CHECK(python == 4); /* calc, types, raising, stream */
    fidius_host_discovery_free(d);
    fidius_host_free(host);
}

/* An endless Python loop, in-process and without a deadline, ended through
 * a cancel token; the plugin keeps its state and answers on. */
static void test_cancel(void) {
    fidius_host_t *host = host_for(NULL);
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("faulty.toml");
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_python_deadline_ms(options, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    /* In-process in either run: the subject is the async exception (test_isolated cancels a worker). */
    CHECK(fidius_host_load_options_set_isolation(options, FIDIUS_HOST_ISOLATION_IN_PROCESS, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of("isolated/py-faulty"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    if (p) {
        CHECK(json_cancelled(p, "fault", "[\"spin\"]", 300, "exception was raised"));
        CHECK(json_is(p, "calls", "[]", "1"));
        CHECK(json_is(p, "ping", "[1]", "2"));
    }
    fidius_host_plugin_free(p);
    fidius_host_interface_free(iface);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

static void run_tests(void) {
    test_calculator();
    test_exceptions();
    test_cancel();
    test_signed();
    test_threads();
    test_discovery();
}

int main(void) { return check_main(run_tests); }
