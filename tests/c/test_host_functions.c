/*
 * Host functions through the C API: the Bookkeeper fixture calls its
 * host's Ledger (log, lookup -> Option<u64>, charge -> Result<u64, _>)
 * through JSON and raw callbacks, with the context of each call, from the
 * calling thread, from a thread the plugin starts and from several threads
 * at once; callback failures, revision mismatches and the once-per-library
 * binding of native plugins. The native library and the WASM component
 * answer alike.
 */
#include "check.h"

#define LIBRARY "hostcall/libhostcall_plugin.so"

/* What a Ledger callback saw, and how it answers. */
struct ledger {
    pthread_mutex_t lock;
    int logs, lookups, charges;
    int bad_context;     /* calls whose context was not the expected one */
    void *expected_context;
    int frees_of_userdata, frees_of_result;
    uint32_t fail_with;  /* a status to return from lookup instead of answering */
};

static void ledger_init(struct ledger *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
}

static void free_ledger(void *userdata) {
    struct ledger *l = userdata;
    pthread_mutex_lock(&l->lock);
    l->frees_of_userdata++;
    pthread_mutex_unlock(&l->lock);
}

static void free_result(void *userdata, void *result, size_t len) {
    struct ledger *l = userdata;
    (void)len;
    pthread_mutex_lock(&l->lock);
    l->frees_of_result++;
    pthread_mutex_unlock(&l->lock);
    free(result);
}

static char *copy(const char *text) {
    char *out = malloc(strlen(text) + 1);
    strcpy(out, text);
    return out;
}

/* The JSON Ledger: log counts (and checks the context), lookup("answer")
 * is 41, charge("alice", 250) is 750 and any other charge is NO_FUNDS. */
static uint32_t json_ledger(void *userdata, void *context, uint32_t method, const char *args, size_t args_len,
                            char **result, size_t *result_len, fidius_host_callback_error_t *error) {
    struct ledger *l = userdata;
    uint32_t status = FIDIUS_HOST_STATUS_OK;
    CHECK(strlen(args) == args_len && *result == NULL && *result_len == 0);
    pthread_mutex_lock(&l->lock);
    switch (method) {
    case 0:
        l->logs++;
        if (context != l->expected_context) l->bad_context++;
        break; /* NULL result: null */
    case 1:
        l->lookups++;
        if (l->fail_with != 0) {
            status = l->fail_with;
        } else if (strcmp(args, "[\"answer\"]") == 0) {
            *result = copy("41"); /* NUL-terminated: length left 0 */
        } else if (strcmp(args, "[\"wrong type\"]") == 0) {
            *result = copy("\"forty-one\"");
        } else {
            *result = copy("null  ");
            *result_len = 4;
        }
        break;
    default:
        l->charges++;
        if (context != NULL) l->bad_context++; /* charges come from the plugin's own thread */
        if (strcmp(args, "[\"alice\",250]") == 0) {
            *result = copy("750");
        } else {
            CHECK(fidius_host_callback_error_set(error, "NO_FUNDS", "the account cannot pay", "{\"short\":250}", NULL) ==
                  FIDIUS_HOST_STATUS_OK);
            status = FIDIUS_HOST_STATUS_PLUGIN_ERROR;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return status;
}

/* The raw Ledger: lookup(key) is Some(100 * key length), in bincode. */
static uint32_t raw_ledger(void *userdata, void *context, uint32_t method, const uint8_t *args, size_t args_len,
                           uint8_t **result, size_t *result_len, fidius_host_callback_error_t *error) {
    uint64_t key_len, value;
    (void)userdata;
    (void)context;
    (void)error;
    if (method != 1 || args_len < 8) return FIDIUS_HOST_STATUS_INVALID_ARGUMENT;
    memcpy(&key_len, args, 8); /* bincode String: u64 length, then bytes */
    value = key_len * 100;
    *result = malloc(9);
    (*result)[0] = 1; /* Some */
    memcpy(*result + 1, &value, 8);
    *result_len = 9;
    return FIDIUS_HOST_STATUS_OK;
}

static fidius_host_binding_t *json_binding(struct ledger *l, const char *interface_name) {
    fidius_host_binding_t *binding = NULL;
    fidius_host_interface_t *ledger = interface_file(interface_name);
    CHECK(fidius_host_binding_new_json(ledger, json_ledger, free_result, l, free_ledger, &binding, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    fidius_host_interface_free(ledger);
    return binding;
}

/* Loads `relative` with the Bookkeeper interface and `binding` (may be NULL). */
static fidius_host_status load(fidius_host_t *host, const char *relative, const fidius_host_binding_t *binding,
                               fidius_host_plugin_t **plugin, fidius_host_error_t **err) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *bookkeeper = interface_file("bookkeeper.toml");
    fidius_host_status status;
    CHECK(fidius_host_load_options_set_interface(options, bookkeeper, NULL) == FIDIUS_HOST_STATUS_OK);
    if (binding) CHECK(fidius_host_load_options_add_binding(options, binding, NULL) == FIDIUS_HOST_STATUS_OK);
    status = fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, plugin, err);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(bookkeeper);
    return status;
}

/* A host whose native plugins run as `isolation` says. */
static fidius_host_t *host_in(fidius_host_isolation isolation) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_set_isolation(b, isolation, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, path_of("../release/fidius-host-worker"), NT, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

static fidius_host_t *new_host(void) { return host_in(FIDIUS_HOST_ISOLATION_IN_PROCESS); }

/* Calls record(label, times) with `context`: whether it returned `times`. */
static int record(const fidius_host_plugin_t *p, const char *label, int times, void *context) {
    char args[128], expected[32], *json = NULL;
    fidius_host_error_t *err = NULL;
    int ok;
    snprintf(args, sizeof args, "[\"%s\", %d]", label, times);
    snprintf(expected, sizeof expected, "%d", times);
    ok = fidius_host_plugin_call_json_with_context(p, "record", NT, args, NT, context, &json, NULL, &err) ==
             FIDIUS_HOST_STATUS_OK &&
         json && strcmp(json, expected) == 0;
    if (!ok) fprintf(stderr, "  record: %s\n", err ? fidius_host_error_message(err) : json);
    fidius_host_error_free(err);
    fidius_host_string_free(json);
    return ok;
}

struct recorder {
    const fidius_host_plugin_t *plugin;
    int ok;
};

/* Each thread's calls carry the thread's own struct as their context. */
static void *record_from_thread(void *arg) {
    struct recorder *r = arg;
    fidius_host_bytes_t out;
    /* bincode ("t", 50u32): u64 length 1, "t", u32 50 */
    uint8_t in[13] = {1, 0, 0, 0, 0, 0, 0, 0, 't', 50, 0, 0, 0};
    int i;
    r->ok = 1;
    for (i = 0; i < 20; i++) {
        if (fidius_host_plugin_call_with_context(r->plugin, 0, in, sizeof in, r, &out, NULL) != FIDIUS_HOST_STATUS_OK ||
            out.len != 4 || out.data[0] != 50)
            r->ok = 0;
        fidius_host_bytes_free(&out);
    }
    return NULL;
}

/* Per-thread contexts: a callback sees the context of the call it serves. */
static uint32_t context_checker(void *userdata, void *context, uint32_t method, const uint8_t *args, size_t args_len,
                                uint8_t **result, size_t *result_len, fidius_host_callback_error_t *error) {
    struct ledger *l = userdata;
    (void)args;
    (void)args_len;
    (void)result;
    (void)result_len;
    (void)error;
    pthread_mutex_lock(&l->lock);
    l->logs++;
    if (method != 0 || context == NULL || ((struct recorder *)context)->plugin == NULL) l->bad_context++;
    pthread_mutex_unlock(&l->lock);
    return FIDIUS_HOST_STATUS_OK;
}

/* Runs `body(arg)` on a thread of its own. A native plugin that starts a
 * thread registers a thread-local destructor on the calling thread, and
 * glibc keeps the library mapped until that thread exits: calls that start
 * threads run here, so that freeing the plugin unmaps the library (see
 * test_pinned_library for the main thread). */
static void on_thread(void *(*body)(void *), void *arg) {
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, body, arg) == 0);
    pthread_join(thread, NULL);
}

/* Charges through the host from a thread the plugin starts: the value, and
 * the host's NO_FUNDS error with its code, message and details. */
static void *charge(void *plugin) {
    const fidius_host_plugin_t *p = plugin;
    fidius_host_error_t *err = NULL;
    CHECK(json_is(p, "charge_from_thread", "[\"alice\", 250]", "750"));
    CHECK(fidius_host_plugin_call_json(p, "charge_from_thread", NT, "[\"bob\", 5]", NT, &(char *){NULL}, NULL, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(err && strcmp(fidius_host_error_plugin_code(err), "NO_FUNDS") == 0 &&
          strcmp(fidius_host_error_plugin_message(err), "the account cannot pay") == 0 &&
          strcmp(fidius_host_error_plugin_details(err), "{\"short\":250}") == 0);
    fidius_host_error_free(err);
    return NULL;
}

static void *charge_without_error_text(void *plugin) {
    CHECK(json_fails(plugin, "charge_from_thread", "[\"a\", 1]", FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                     "without setting an error"));
    return NULL;
}

/* What every runtime, in-process or isolated, does alike with the JSON
 * Ledger bound. */
static void exercise(const char *relative, fidius_host_isolation isolation) {
    fidius_host_t *host = host_in(isolation);
    struct ledger l;
    fidius_host_binding_t *binding;
    fidius_host_plugin_t *p = NULL;
    int request = 0;

    fprintf(stderr, "  %s%s\n", relative, isolation == FIDIUS_HOST_ISOLATION_ISOLATED ? " (isolated)" : "");
    ledger_init(&l);
    binding = json_binding(&l, "ledger.toml");
    CHECK(load(host, relative, binding, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_binding_free(binding); /* the plugin keeps it */

    l.expected_context = &request;
    CHECK(record(p, "entry", 300, &request));
    CHECK(l.logs == 300 && l.bad_context == 0);
    CHECK(json_is(p, "lookup_plus_one", "[\"answer\"]", "42"));
    CHECK(json_is(p, "lookup_plus_one", "[\"missing\"]", "null"));
    on_thread(charge, p);
    CHECK(l.bad_context == 0 && l.charges == 2);

    /* Failing to answer is an error for the plugin, which stays usable. */
    CHECK(json_fails(p, "lookup_plus_one", "[\"wrong type\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                     "host function Ledger.lookup failed"));
    l.fail_with = FIDIUS_HOST_STATUS_IO;
    CHECK(json_fails(p, "lookup_plus_one", "[\"answer\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                     "the callback returned IO"));
    l.fail_with = 0;
    CHECK(json_is(p, "lookup_plus_one", "[\"answer\"]", "42"));
    /* Every result was released, once. */
    CHECK(l.frees_of_result == 5); /* 41, null, 750, "forty-one", 41 */

    CHECK(l.frees_of_userdata == 0);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    CHECK(l.frees_of_userdata == 1);
    pthread_mutex_destroy(&l.lock);
}

static void test_raw_binding_and_threads(const char *relative, fidius_host_isolation isolation) {
    fidius_host_t *host = host_in(isolation);
    fidius_host_interface_t *ledger = interface_file("ledger.toml");
    fidius_host_binding_t *raw = NULL, *checker = NULL;
    fidius_host_plugin_t *p = NULL;
    struct ledger l;
    struct recorder recorders[4];
    pthread_t threads[4];
    int i;

    ledger_init(&l);
    CHECK(fidius_host_binding_new_raw(ledger, raw_ledger, free_result, &l, NULL, &raw, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(load(host, relative, raw, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "lookup_plus_one", "[\"abcd\"]", "401"));
    CHECK(l.frees_of_result == 1);
    fidius_host_plugin_free(p);
    fidius_host_binding_free(raw);

    /* Four threads, each with its own context, on one plugin. */
    CHECK(fidius_host_binding_new_raw(ledger, context_checker, NULL, &l, NULL, &checker, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(load(host, relative, checker, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    l.logs = 0;
    for (i = 0; i < 4; i++) {
        recorders[i].plugin = p;
        CHECK(pthread_create(&threads[i], NULL, record_from_thread, &recorders[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(recorders[i].ok);
    }
    CHECK(l.logs == 4 * 20 * 50 && l.bad_context == 0);
    fidius_host_plugin_free(p);
    fidius_host_binding_free(checker);
    fidius_host_interface_free(ledger);
    fidius_host_free(host);
    pthread_mutex_destroy(&l.lock);
}

/* Native libraries: bound once per mapped library, and checked at load. */
static void test_native_binding_rules(void) {
    fidius_host_t *host = new_host(), *other = new_host();
    struct ledger a, b;
    fidius_host_binding_t *first, *second, *v4 = NULL;
    fidius_host_plugin_t *p = NULL, *q = NULL, *none = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_interface_builder_t *builder = NULL;
    fidius_host_interface_t *ledger_v4 = NULL;

    ledger_init(&a);
    ledger_init(&b);
    first = json_binding(&a, "ledger.toml");
    second = json_binding(&b, "ledger.toml");
    /* A plugin built against Ledger v4 is refused this v3 binding. */
    CHECK(fidius_host_load_path(host, path_of("hostcall-drift/libauditor_plugin.so"), NT, NULL, 0, NULL, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_host_import_count(p) == 1);
    fidius_host_plugin_free(p);
    p = NULL;
    {
        fidius_host_load_options_t *options = fidius_host_load_options_new();
        CHECK(fidius_host_load_options_add_binding(options, first, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_load_path(host, path_of("hostcall-drift/libauditor_plugin.so"), NT, NULL, 0, options, &p, &err) ==
              FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH);
        CHECK(p == NULL && error_says(err, FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH,
                                      "plugin was built against v4, host provides v3"));
        fidius_host_load_options_free(options);
    }

    CHECK(load(host, LIBRARY, first, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    /* The same file in another host is the same mapped library. */
    CHECK(load(other, LIBRARY, second, &none, &err) == FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND);
    CHECK(none == NULL && error_says(err, FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND, "'Ledger' is already bound"));
    CHECK(load(other, LIBRARY, first, &q, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(q, "lookup_plus_one", "[\"answer\"]", "42"));
    CHECK(a.lookups == 1 && b.lookups == 0);
    fidius_host_plugin_free(p);
    fidius_host_plugin_free(q);
    /* Unmapped: a new binding takes, and the first one is released. */
    CHECK(a.frees_of_userdata == 0);
    fidius_host_binding_free(first);
    CHECK(a.frees_of_userdata == 1);
    CHECK(load(other, LIBRARY, second, &q, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(q, "lookup_plus_one", "[\"answer\"]", "42") && b.lookups == 1);
    fidius_host_plugin_free(q);
    fidius_host_binding_free(second);
    CHECK(b.frees_of_userdata == 1);

    /* Another version of Ledger: refused at load, naming both sides. */
    CHECK(fidius_host_interface_builder_new("Ledger", NT, 4, &builder, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(builder, "log:String->", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(builder, "lookup:String->Option<u64>", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(builder, "charge:String,u64->Result<u64,PluginError>", NT, 0, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(builder, &ledger_v4, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_interface_builder_free(builder);
    CHECK(fidius_host_binding_new_json(ledger_v4, json_ledger, free_result, &a, NULL, &v4, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(load(host, LIBRARY, v4, &p, &err) == FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH);
    CHECK(p == NULL && error_says(err, FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH,
                                  "plugin was built against v3, host provides v4"));
    fidius_host_binding_free(v4);
    fidius_host_interface_free(ledger_v4);

    /* Nothing bound: the plugin's calls get fidius's "not bound". */
    CHECK(load(host, LIBRARY, NULL, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_fails(p, "record", "[\"x\", 1]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "not bound"));
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    fidius_host_free(other);
    pthread_mutex_destroy(&a.lock);
    pthread_mutex_destroy(&b.lock);
}

static void test_bad_arguments(void) {
    struct ledger l;
    fidius_host_interface_t *ledger = interface_file("ledger.toml");
    fidius_host_binding_t *binding = (fidius_host_binding_t *)&l;
    fidius_host_error_t *err = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();

    ledger_init(&l);
    /* A failed constructor releases the userdata too. */
    CHECK(fidius_host_binding_new_json(ledger, NULL, NULL, &l, free_ledger, &binding, &err) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(binding == NULL && error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "callback"));
    CHECK(l.frees_of_userdata == 1);
    CHECK(fidius_host_binding_new_raw(NULL, raw_ledger, NULL, &l, free_ledger, &binding, NULL) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(l.frees_of_userdata == 2);
    CHECK(fidius_host_load_options_add_binding(options, NULL, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "binding"));
    CHECK(fidius_host_load_options_add_binding(options, (const fidius_host_binding_t *)ledger, &err) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_MISUSE, "fidius_host_binding_t"));
    /* The error object exists only inside a callback. */
    CHECK(fidius_host_callback_error_set(NULL, "A", "b", NULL, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "error"));
    CHECK(fidius_host_callback_error_set((fidius_host_callback_error_t *)ledger, "A", "b", NULL, &err) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_MISUSE, "fidius_host_callback_error_t"));
    fidius_host_load_options_free(options);
    fidius_host_interface_free(ledger);
    pthread_mutex_destroy(&l.lock);
}

/* A callback's error details must be JSON; the plugin then gets the error. */
static uint32_t bad_details(void *userdata, void *context, uint32_t method, const char *args, size_t args_len,
                            char **result, size_t *result_len, fidius_host_callback_error_t *error) {
    (void)userdata;
    (void)context;
    (void)method;
    (void)args;
    (void)args_len;
    (void)result;
    (void)result_len;
    CHECK(fidius_host_callback_error_set(error, "X", "y", "{not json", NULL) == FIDIUS_HOST_STATUS_INVALID_JSON);
    CHECK(fidius_host_callback_error_set(error, "\xff", "y", NULL, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    return FIDIUS_HOST_STATUS_PLUGIN_ERROR; /* with no error set */
}

static void test_error_without_text(void) {
    fidius_host_t *host = new_host();
    fidius_host_interface_t *ledger = interface_file("ledger.toml");
    fidius_host_binding_t *binding = NULL;
    fidius_host_plugin_t *p = NULL;
    CHECK(fidius_host_binding_new_json(ledger, bad_details, NULL, NULL, NULL, &binding, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(load(host, LIBRARY, binding, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    on_thread(charge_without_error_text, p);
    fidius_host_plugin_free(p);
    fidius_host_binding_free(binding);
    fidius_host_interface_free(ledger);
    fidius_host_free(host);
}

/* A plugin that starts a thread from the main thread pins its library
 * there until the process ends: freeing every handle leaves it mapped, with
 * its binding, which later loads share (or are refused, with another). */
static void test_pinned_library(void) {
    fidius_host_t *host = new_host();
    struct ledger a, b;
    fidius_host_binding_t *first, *second;
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;

    ledger_init(&a);
    ledger_init(&b);
    first = json_binding(&a, "ledger.toml");
    second = json_binding(&b, "ledger.toml");
    CHECK(load(host, LIBRARY, first, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "charge_from_thread", "[\"alice\", 250]", "750"));
    fidius_host_plugin_free(p);
    CHECK(a.frees_of_userdata == 0); /* still mapped, still bound */
    CHECK(load(host, LIBRARY, second, &p, &err) == FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND, "already bound"));
    CHECK(load(host, LIBRARY, first, &p, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "lookup_plus_one", "[\"answer\"]", "42") && a.lookups == 1);
    fidius_host_plugin_free(p);
    fidius_host_binding_free(first);
    fidius_host_binding_free(second);
    CHECK(b.frees_of_userdata == 1);
    fidius_host_free(host);
}

static void run_tests(void) {
    exercise(LIBRARY, FIDIUS_HOST_ISOLATION_IN_PROCESS);
    test_raw_binding_and_threads(LIBRARY, FIDIUS_HOST_ISOLATION_IN_PROCESS);
    exercise(LIBRARY, FIDIUS_HOST_ISOLATION_ISOLATED);
    test_raw_binding_and_threads(LIBRARY, FIDIUS_HOST_ISOLATION_ISOLATED);
    test_native_binding_rules();
    test_bad_arguments();
    test_error_without_text();
    if (FIDIUS_HOST_BUILT_WITH_WASM) {
        exercise("hostcall-wasm/bookkeeper", FIDIUS_HOST_ISOLATION_IN_PROCESS);
        test_raw_binding_and_threads("hostcall-wasm/bookkeeper", FIDIUS_HOST_ISOLATION_IN_PROCESS);
    }
    test_pinned_library(); /* last: it pins the library for good */
}

int main(void) { return check_main(run_tests); }
