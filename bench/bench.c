/*
 * Per-call overhead of libfidius_host against the physical limit: calling the
 * fixture plugin's vtable function directly. Also times loads (unsigned,
 * signed, and the first load of a fresh process) against dlopen and the
 * registry call alone, a JSON call against a raw call with the same
 * 3-field struct argument, a host-function round trip (plugin -> C
 * callback -> plugin) against calling the callback directly, and streams:
 * items per second of a server stream, small and 1 KiB items, in every
 * runtime, against the same number of plain calls (and, for a native
 * plugin, against pulling its stream handle directly). Isolated plugins:
 * a call to a plugin in a worker process against the same bytes sent to
 * a bare echo process over a socket pair and back, and an isolated load
 * against an in-process one; and, to choose the transport of isolated
 * calls, the same echo through shared memory with a futex doorbell.
 *
 *   usage: bench <release-fixture-dir> <trusted.public> <type_echo.toml>
 *
 * Each measurement is the median of several rounds; direct and API rounds
 * alternate so machine noise hits both alike. Every line ends with the ratio
 * to the direct call.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "fidius_host.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int32_t (*method_fn)(void *, const uint8_t *, uint32_t, uint8_t **, uint32_t *);
typedef int32_t (*arena_fn)(void *, const uint8_t *, uint32_t, uint8_t *, uint32_t, uint32_t *, uint32_t *);

#include "../tests/fixtures/crafted/fidius_abi.h"

#define ROUNDS 9
#define NT FIDIUS_HOST_NUL_TERMINATED

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* One result line: the direct side, the C API side, what the API adds and
 * the ratio, in `unit` with `digits` decimals. */
static void print_row(const char *what, double direct, double api, const char *unit, int digits) {
    printf("%-22s direct %8.*f %s   C API %8.*f %s   added %+7.*f %s   ratio %.3f\n", what, digits, direct, unit, digits,
           api, unit, digits, api - direct, unit, api / direct);
}

static const descriptor_t *desc;
static void *instance;
static const fidius_host_plugin_t *plugin;
static volatile uint64_t sink;

static double direct_round(uint32_t method, const uint8_t *in, uint32_t len, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        uint8_t *out = NULL;
        uint32_t out_len = 0;
        if (((const method_fn *)desc->vtable)[method](instance, in, len, &out, &out_len) != 0) abort();
        sink += out[0];
        desc->free_buffer(out, out_len);
    }
    return (now_ns() - start) / (double)iters;
}

static double api_round_on(const fidius_host_plugin_t *p, uint32_t method, const uint8_t *in, uint32_t len, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        fidius_host_bytes_t out;
        if (fidius_host_plugin_call(p, method, in, len, &out, NULL) != FIDIUS_HOST_STATUS_OK) abort();
        sink += out.data[0];
        fidius_host_bytes_free(&out);
    }
    return (now_ns() - start) / (double)iters;
}

/* api_round_on through the cancellable call, with a live token. */
static double cancellable_round(const fidius_host_plugin_t *p, const fidius_host_cancel_token_t *token, uint32_t method,
                                const uint8_t *in, uint32_t len, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        fidius_host_bytes_t out;
        if (fidius_host_plugin_call_cancellable(p, method, in, len, NULL, token, &out, NULL) != FIDIUS_HOST_STATUS_OK)
            abort();
        sink += out.data[0];
        fidius_host_bytes_free(&out);
    }
    return (now_ns() - start) / (double)iters;
}

static double api_round(uint32_t method, const uint8_t *in, uint32_t len, long iters) {
    return api_round_on(plugin, method, in, len, iters);
}

static void compare(const char *what, uint32_t method, const uint8_t *in, uint32_t len, long iters) {
    double direct[ROUNDS], api[ROUNDS], d, a;
    int r;
    direct_round(method, in, len, iters / 10); /* warm up */
    api_round(method, in, len, iters / 10);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = direct_round(method, in, len, iters);
        api[r] = api_round(method, in, len, iters);
    }
    d = median(direct, ROUNDS);
    a = median(api, ROUNDS);
    print_row(what, d, a, "ns", 1);
}

/* divide(1, 0): the plugin returns Err(PluginError). Direct: the vtable call
 * and freeing the error payload. Through the C API: with the error object
 * read (status, message, code, message, details) or not asked for. */
static double direct_error_round(const uint8_t *in, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        uint8_t *out = NULL;
        uint32_t out_len = 0;
        if (((const method_fn *)desc->vtable)[2](instance, in, 16, &out, &out_len) != -3) abort(); /* PLUGIN_ERROR */
        sink += out[0];
        desc->free_buffer(out, out_len);
    }
    return (now_ns() - start) / (double)iters;
}

static double api_error_round(const uint8_t *in, int read_error, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        fidius_host_bytes_t out;
        fidius_host_error_t *err = NULL;
        if (fidius_host_plugin_call(plugin, 2, in, 16, &out, read_error ? &err : NULL) != FIDIUS_HOST_STATUS_PLUGIN_ERROR)
            abort();
        if (read_error) {
            sink += (uint64_t)fidius_host_error_status(err) + (uint8_t)fidius_host_error_message(err)[0] +
                    (uint8_t)fidius_host_error_plugin_code(err)[0] + (uint8_t)fidius_host_error_plugin_message(err)[0] +
                    (uint8_t)fidius_host_error_plugin_details(err)[0];
            fidius_host_error_free(err);
        }
    }
    return (now_ns() - start) / (double)iters;
}

static void compare_error_path(void) {
    uint8_t in[16];
    int64_t one = 1, zero = 0;
    double direct[ROUNDS], read[ROUNDS], unread[ROUNDS], d, rd, un;
    int r;
    memcpy(in, &one, 8);
    memcpy(in + 8, &zero, 8);
    direct_error_round(in, 50000);
    api_error_round(in, 1, 50000);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = direct_error_round(in, 300000);
        read[r] = api_error_round(in, 1, 300000);
        unread[r] = api_error_round(in, 0, 300000);
    }
    d = median(direct, ROUNDS);
    rd = median(read, ROUNDS);
    un = median(unread, ROUNDS);
    print_row("divide(1,0) error read", d, rd, "ns", 1);
    print_row("divide(1,0) err = NULL", d, un, "ns", 1);
}

/* An Arena plugin's raw `upper` of 1 KiB. Direct: the vtable call into an
 * arena the caller owns, and a copy of the result out of it (what any
 * caller keeping the result must do). */
static const descriptor_t *arena_desc;
static void *arena_instance;
static const fidius_host_plugin_t *arena_plugin;

static double direct_arena_round(const uint8_t *in, uint32_t len, long iters) {
    static uint8_t arena[1 << 16], copy[1 << 16];
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        uint32_t offset = 0, out_len = 0;
        if (((const arena_fn *)arena_desc->vtable)[1](arena_instance, in, len, arena, sizeof arena, &offset, &out_len))
            abort();
        memcpy(copy, arena + offset, out_len);
        sink += copy[0];
    }
    return (now_ns() - start) / (double)iters;
}

/* The first plugin of the library at `path`, mapped directly (`*lib`). */
static const descriptor_t *first_descriptor(const char *path, void **lib) {
    const registry_t *(*get_registry)(void);
    *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (*lib == NULL) abort();
    *(void **)&get_registry = dlsym(*lib, "fidius_get_registry");
    return get_registry()->descriptors[0];
}

static void compare_arena(const char *dir, fidius_host_t *host, const uint8_t *in, uint32_t len) {
    char path[4096];
    fidius_host_plugin_t *p = NULL;
    double direct[ROUNDS], api[ROUNDS], d, a;
    void *lib;
    int r;
    snprintf(path, sizeof path, "%s/libarena_plugin.so", dir);
    arena_desc = first_descriptor(path, &lib);
    arena_instance = arena_desc->construct((const uint8_t *)"", 0);
    if (fidius_host_load_path(host, path, NT, NULL, 0, NULL, &p, NULL)) abort();
    arena_plugin = p;
    direct_arena_round(in, len, 50000);
    api_round_on(arena_plugin, 1, in, len, 50000);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = direct_arena_round(in, len, 500000);
        api[r] = api_round_on(arena_plugin, 1, in, len, 500000);
    }
    d = median(direct, ROUNDS);
    a = median(api, ROUNDS);
    print_row("Arena upper(1 KiB raw)", d, a, "ns", 1);
    fidius_host_plugin_free(p);
    arena_desc->destroy(arena_instance);
    dlclose(lib);
}

/* Throughput of `add` from several threads on one plugin, against one
 * thread: how the calls scale (direct calls scale with the cores). */
struct worker {
    int api;
    long iters;
    const uint8_t *in;
};

static void *worker_main(void *arg) {
    const struct worker *w = arg;
    if (w->api)
        api_round(0, w->in, 16, w->iters);
    else
        direct_round(0, w->in, 16, w->iters);
    return NULL;
}

/* Calls per microsecond with `threads` threads doing `iters` calls each. */
static double throughput(int api, int threads, const uint8_t *in, long iters) {
    pthread_t ids[8];
    struct worker w = {api, iters, in};
    double start = now_ns();
    int t;
    for (t = 0; t < threads; t++)
        if (pthread_create(&ids[t], NULL, worker_main, &w)) abort();
    for (t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    return (double)threads * (double)iters / ((now_ns() - start) / 1e3);
}

static void compare_threads(const uint8_t *in, int threads) {
    double direct1[ROUNDS], directn[ROUNDS], api1[ROUNDS], apin[ROUNDS], d1, dn, a1, an;
    int r;
    for (r = 0; r < ROUNDS; r++) {
        direct1[r] = throughput(0, 1, in, 1000000);
        directn[r] = throughput(0, threads, in, 1000000);
        api1[r] = throughput(1, 1, in, 1000000);
        apin[r] = throughput(1, threads, in, 1000000);
    }
    d1 = median(direct1, ROUNDS);
    dn = median(directn, ROUNDS);
    a1 = median(api1, ROUNDS);
    an = median(apin, ROUNDS);
    printf("add from %d threads     direct %.2fx of 1 thread (%.1f vs %.1f calls/us)   C API %.2fx (%.1f vs %.1f calls/us)\n",
           threads, dn / d1, dn, d1, an / a1, an, a1);
}

/* echo_point(Point { x: 1.5, y: -2.25, label: "point" }): the bincode the
 * raw call sends, and the JSON the JSON call sends. */
static const uint8_t point_bincode[] = {0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0, 0, 0, 0, 0, 0, 0x02, 0xc0,
                                        5, 0, 0, 0, 0, 0, 0, 0, 'p', 'o', 'i', 'n', 't'};
static const char point_json[] = "[{\"x\": 1.5, \"y\": -2.25, \"label\": \"point\"}]";

static double raw_point_round(const fidius_host_plugin_t *p, uint32_t method, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        fidius_host_bytes_t out;
        if (fidius_host_plugin_call(p, method, point_bincode, sizeof point_bincode, &out, NULL)) abort();
        sink += out.data[0];
        fidius_host_bytes_free(&out);
    }
    return (now_ns() - start) / (double)iters;
}

static double json_point_round(const fidius_host_plugin_t *p, uint32_t method, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        char *out = NULL;
        if (fidius_host_plugin_call_json_index(p, method, point_json, sizeof point_json - 1, &out, NULL, NULL)) abort();
        sink += (uint8_t)out[0];
        fidius_host_string_free(out);
    }
    return (now_ns() - start) / (double)iters;
}

static void compare_json(const char *dir, const char *interface_path) {
    char path[4096];
    fidius_host_interface_t *iface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *p = NULL;
    double raw[ROUNDS], json[ROUNDS], r, j;
    uint32_t method = 0;
    int round;
    char *check = NULL;

    snprintf(path, sizeof path, "%s/libtypes_plugin.so", dir);
    if (fidius_host_interface_new_from_file(interface_path, NT, &iface, NULL) ||
        fidius_host_load_options_set_interface(options, iface, NULL) || fidius_host_builder_build(b, &host, NULL) ||
        fidius_host_load_path(host, path, NT, "TypeEchoes", NT, options, &p, NULL) ||
        fidius_host_interface_method_index(iface, "echo_point", NT, &method, NULL) ||
        fidius_host_plugin_call_json_index(p, method, point_json, NT, &check, NULL, NULL)) {
        fprintf(stderr, "JSON benchmark setup failed\n");
        exit(1);
    }
    if (strcmp(check, "{\"x\":1.5,\"y\":-2.25,\"label\":\"point\"}") != 0) {
        fprintf(stderr, "unexpected JSON result %s\n", check);
        exit(1);
    }
    fidius_host_string_free(check);
    raw_point_round(p, method, 50000);
    json_point_round(p, method, 50000);
    for (round = 0; round < ROUNDS; round++) {
        raw[round] = raw_point_round(p, method, 300000);
        json[round] = json_point_round(p, method, 300000);
    }
    r = median(raw, ROUNDS);
    j = median(json, ROUNDS);
    printf("%-22s raw    %8.1f ns   JSON  %8.1f ns   added %+7.1f ns   ratio %.3f\n", "echo_point(3 fields)", r, j,
           j - r, j / r);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    static uint8_t buffer[1 << 16];
    size_t got;
    if (in == NULL || out == NULL) exit(1);
    while ((got = fread(buffer, 1, sizeof buffer, in)) > 0)
        if (fwrite(buffer, 1, got, out) != got) exit(1);
    fclose(in);
    if (fclose(out) != 0) exit(1);
}

/* Host functions: the Bookkeeper plugin's lookup_many(key, n) calls its
 * host's lookup(key) -> Option<u64> n times. Per round trip (plugin ->
 * callback -> plugin): the raw callback, the JSON callback, against calling
 * the raw callback through a function pointer with the same bincode. */
static uint32_t bench_raw_lookup(void *userdata, void *context, uint32_t method, const uint8_t *args, size_t args_len,
                                 uint8_t **result, size_t *result_len, fidius_host_callback_error_t *error) {
    static uint8_t some_seven[9] = {1, 7, 0, 0, 0, 0, 0, 0, 0};
    (void)userdata;
    (void)context;
    (void)error;
    if (method != 1 || args_len < 8 || args == NULL) return FIDIUS_HOST_STATUS_INVALID_ARGUMENT;
    *result = some_seven; /* static: no free_result */
    *result_len = sizeof some_seven;
    return FIDIUS_HOST_STATUS_OK;
}

static uint32_t bench_json_lookup(void *userdata, void *context, uint32_t method, const char *args, size_t args_len,
                                  char **result, size_t *result_len, fidius_host_callback_error_t *error) {
    static char seven[] = "7";
    (void)userdata;
    (void)context;
    (void)error;
    if (method != 1 || args_len == 0 || args == NULL) return FIDIUS_HOST_STATUS_INVALID_ARGUMENT;
    *result = seven;
    *result_len = 1;
    return FIDIUS_HOST_STATUS_OK;
}

static fidius_host_plugin_t *bookkeeper(fidius_host_t *host, const char *library, const char *interfaces, int json,
                                        char *copy, size_t copy_size) {
    char path[4096];
    fidius_host_interface_t *bookkeeper_iface = NULL, *ledger_iface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_binding_t *binding = NULL;
    fidius_host_plugin_t *p = NULL;
    snprintf(path, sizeof path, "%s/bookkeeper.toml", interfaces);
    if (fidius_host_interface_new_from_file(path, NT, &bookkeeper_iface, NULL)) exit(1);
    snprintf(path, sizeof path, "%s/ledger.toml", interfaces);
    if (fidius_host_interface_new_from_file(path, NT, &ledger_iface, NULL)) exit(1);
    if (json ? fidius_host_binding_new_json(ledger_iface, bench_json_lookup, NULL, NULL, NULL, &binding, NULL)
             : fidius_host_binding_new_raw(ledger_iface, bench_raw_lookup, NULL, NULL, NULL, &binding, NULL))
        exit(1);
    /* A copy of its own: a library is bound once per mapped file. */
    snprintf(copy, copy_size, "/tmp/fidius-bench-%d-%s.so", (int)getpid(), json ? "json" : "raw");
    copy_file(library, copy);
    if (fidius_host_load_options_set_interface(options, bookkeeper_iface, NULL) ||
        fidius_host_load_options_add_binding(options, binding, NULL) ||
        fidius_host_load_path(host, copy, NT, NULL, 0, options, &p, NULL)) {
        fprintf(stderr, "host function benchmark setup failed\n");
        exit(1);
    }
    fidius_host_binding_free(binding);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(bookkeeper_iface);
    fidius_host_interface_free(ledger_iface);
    return p;
}

/* The floor: the plugin's own fidius client calling a C dispatch function
 * through a table bound by hand (no host library), the plugin's vtable
 * called directly. */
static int32_t floor_dispatch(void *ctx, uint32_t index, const uint8_t *in, uint32_t in_len, uint8_t **out,
                              uint32_t *out_len) {
    static uint8_t some_seven[9] = {1, 7, 0, 0, 0, 0, 0, 0, 0};
    (void)ctx;
    (void)in;
    if (index != 1 || in_len < 8) return -2;
    *out = some_seven;
    *out_len = sizeof some_seven;
    return 0;
}

static void floor_free(uint8_t *buffer, size_t len) {
    (void)buffer;
    (void)len;
}

struct floor_plugin {
    void *lib;
    const descriptor_t *desc;
    void *instance;
};

static struct floor_plugin floor_plugin(const char *library, uint64_t ledger_hash, char *copy, size_t copy_size) {
    static host_function_table_t table;
    struct floor_plugin f;
    const host_import_registry_t *(*get_imports)(void);
    const registry_t *(*get_registry)(void);
    snprintf(copy, copy_size, "/tmp/fidius-bench-%d-floor.so", (int)getpid());
    copy_file(library, copy);
    f.lib = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    if (f.lib == NULL) exit(1);
    *(void **)&get_imports = dlsym(f.lib, "fidius_get_host_imports");
    *(void **)&get_registry = dlsym(f.lib, "fidius_get_registry");
    table.table_size = sizeof table;
    table.abi_version = 500;
    table.interface_name = "Ledger";
    table.interface_hash = ledger_hash;
    table.interface_version = 3;
    table.fn_count = 3;
    table.dispatch = floor_dispatch;
    table.free_buffer = floor_free;
    if (get_imports == NULL || get_registry == NULL || get_imports()->imports[0]->bind(&table) != 0) {
        fprintf(stderr, "cannot bind the floor table\n");
        exit(1);
    }
    f.desc = get_registry()->descriptors[0];
    f.instance = f.desc->construct((const uint8_t *)"", 0);
    return f;
}

static double floor_round(const struct floor_plugin *f, uint32_t times, long calls) {
    uint8_t in[13] = {1, 0, 0, 0, 0, 0, 0, 0, 'k', 0, 0, 0, 0}; /* ("k", times) */
    method_fn lookup_many = ((const method_fn *)f->desc->vtable)[3];
    uint8_t *out;
    uint32_t out_len;
    double start;
    long i;
    memcpy(in + 9, &times, 4);
    start = now_ns();
    for (i = 0; i < calls; i++) {
        if (lookup_many(f->instance, in, sizeof in, &out, &out_len) != 0 || out_len != 8) exit(1);
        sink += out[0];
        f->desc->free_buffer(out, out_len);
    }
    return (now_ns() - start) / ((double)calls * times);
}

/* ns per host call: lookup_many("k", times) through the plugin. */
static double host_call_round(const fidius_host_plugin_t *p, uint32_t times, long calls) {
    uint8_t in[13] = {1, 0, 0, 0, 0, 0, 0, 0, 'k', 0, 0, 0, 0}; /* ("k", times) */
    fidius_host_bytes_t out;
    double start;
    long i;
    memcpy(in + 9, &times, 4);
    start = now_ns();
    for (i = 0; i < calls; i++) {
        if (fidius_host_plugin_call(p, 3, in, sizeof in, &out, NULL) != FIDIUS_HOST_STATUS_OK || out.len != 8) exit(1);
        sink += out.data[0];
        fidius_host_bytes_free(&out);
    }
    return (now_ns() - start) / ((double)calls * times);
}

static double direct_callback_round(long iters) {
    uint8_t args[9] = {1, 0, 0, 0, 0, 0, 0, 0, 'k'};
    uint32_t (*volatile callback)(void *, void *, uint32_t, const uint8_t *, size_t, uint8_t **, size_t *,
                                  fidius_host_callback_error_t *) = bench_raw_lookup;
    uint8_t *result;
    size_t len;
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        result = NULL;
        len = 0;
        if (callback(NULL, NULL, 1, args, sizeof args, &result, &len, NULL) != 0) exit(1);
        sink += result[1];
    }
    return (now_ns() - start) / (double)iters;
}

static void compare_host_functions(const char *dir, const char *interfaces) {
    char library[4096], path[4200], raw_copy[256], json_copy[256], floor_copy[256];
    fidius_host_t *host = NULL;
    fidius_host_interface_t *ledger = NULL;
    fidius_host_plugin_t *raw_plugin, *json_plugin;
    struct floor_plugin floor;
    double direct[ROUNDS], floors[ROUNDS], raw[ROUNDS], json[ROUNDS], d, fl, r, j;
    int round;
    snprintf(library, sizeof library, "%s/libhostcall_plugin.so", dir);
    snprintf(path, sizeof path, "%s/ledger.toml", interfaces);
    if (fidius_host_builder_build(fidius_host_builder_new(), &host, NULL) ||
        fidius_host_interface_new_from_file(path, NT, &ledger, NULL))
        exit(1);
    floor = floor_plugin(library, fidius_host_interface_hash(ledger), floor_copy, sizeof floor_copy);
    raw_plugin = bookkeeper(host, library, interfaces, 0, raw_copy, sizeof raw_copy);
    json_plugin = bookkeeper(host, library, interfaces, 1, json_copy, sizeof json_copy);
    floor_round(&floor, 1000, 50);
    host_call_round(raw_plugin, 1000, 50);
    host_call_round(json_plugin, 1000, 50);
    for (round = 0; round < ROUNDS; round++) {
        direct[round] = direct_callback_round(2000000);
        floors[round] = floor_round(&floor, 1000, 300);
        raw[round] = host_call_round(raw_plugin, 1000, 300);
        json[round] = host_call_round(json_plugin, 1000, 100);
    }
    d = median(direct, ROUNDS);
    fl = median(floors, ROUNDS);
    r = median(raw, ROUNDS);
    j = median(json, ROUNDS);
    print_row("host fn, C fn pointer", d, fl, "ns", 1);
    print_row("host fn, raw callback", fl, r, "ns", 1);
    print_row("host fn, JSON callback", fl, j, "ns", 1);
    fidius_host_plugin_free(raw_plugin);
    fidius_host_plugin_free(json_plugin);
    fidius_host_interface_free(ledger);
    fidius_host_free(host);
    floor.desc->destroy(floor.instance);
    dlclose(floor.lib);
    remove(raw_copy);
    remove(json_copy);
    remove(floor_copy);
}

static double load_round(const char *path, const char *key_file, int signed_load, int iters) {
    double start = now_ns();
    int i;
    for (i = 0; i < iters; i++) {
        fidius_host_builder_t *b = fidius_host_builder_new();
        fidius_host_t *host = NULL;
        fidius_host_plugin_t *p = NULL;
        if ((signed_load && (fidius_host_builder_set_require_signature(b, true, NULL) ||
                             fidius_host_builder_add_trusted_key_file(b, key_file, NT, NULL))) ||
            fidius_host_builder_build(b, &host, NULL) ||
            fidius_host_load_path(host, path, NT, "BasicCalculator", NT, NULL, &p, NULL)) {
            fprintf(stderr, "load of %s failed\n", path);
            exit(1);
        }
        fidius_host_plugin_free(p); /* last handle: the library is unmapped again */
        fidius_host_free(host);
    }
    return (now_ns() - start) / (double)iters;
}

/* Loads of a signed library by one host, after its first: the host keeps
 * the sealed copy it verified, and compares the file with it. */
static double signed_again_round(const char *path, const char *key_file, int iters) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *p = NULL;
    double start = 0;
    int i;
    if (fidius_host_builder_set_require_signature(b, true, NULL) ||
        fidius_host_builder_add_trusted_key_file(b, key_file, NT, NULL) || fidius_host_builder_build(b, &host, NULL))
        exit(1);
    for (i = -1; i < iters; i++) {
        if (i == 0) start = now_ns(); /* the first load verifies: untimed */
        if (fidius_host_load_path(host, path, NT, "BasicCalculator", NT, NULL, &p, NULL)) exit(1);
        fidius_host_plugin_free(p); /* last handle: the library is unmapped again */
    }
    start = (now_ns() - start) / (double)iters;
    fidius_host_free(host);
    return start;
}

/* The limit of a load: what any host must do, map the library and ask it
 * for its registry, then unmap it. */
static double dlopen_round(const char *path, int iters) {
    double start = now_ns();
    int i;
    for (i = 0; i < iters; i++) {
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        const registry_t *(*get_registry)(void);
        if (lib == NULL) exit(1);
        *(void **)&get_registry = dlsym(lib, "fidius_get_registry");
        sink += get_registry()->plugin_count;
        dlclose(lib);
    }
    return (now_ns() - start) / (double)iters;
}

/* Checking a library's signature without mapping it (read + Ed25519, whose
 * SHA-512 of the whole file dominates): the floor under a signed load. */
static double verify_round(const char *path, const char *key_file, int iters) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    double start;
    int i;
    if (fidius_host_builder_set_require_signature(b, true, NULL) ||
        fidius_host_builder_add_trusted_key_file(b, key_file, NT, NULL) || fidius_host_builder_build(b, &host, NULL))
        exit(1);
    start = now_ns();
    for (i = 0; i < iters; i++)
        if (fidius_host_verify_path(host, path, NT, NULL)) exit(1);
    start = (now_ns() - start) / (double)iters;
    fidius_host_free(host);
    return start;
}

/* A Python package's first load in a process, with the interface it
 * implements: the interpreter starts, then the plugin is imported. */
static double python_load(const char *package, const char *interface_file) {
    double start = now_ns();
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_interface_t *iface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *p = NULL;
    if (fidius_host_builder_build(b, &host, NULL) ||
        fidius_host_interface_new_from_file(interface_file, NT, &iface, NULL) ||
        fidius_host_load_options_set_interface(options, iface, NULL) ||
        fidius_host_load_path(host, package, NT, NULL, 0, options, &p, NULL))
        exit(1);
    start = now_ns() - start;
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
    fidius_host_free(host);
    return start;
}

/* The same without this library: start the interpreter the library links
 * and import the plugin's module from its directory, with a stand-in for the
 * fidius SDK (what a minimal host of Python plugins does). */
static double python_direct(const char *package) {
    char code[8192];
    double start = now_ns();
    void (*initialize)(int);
    int (*run)(const char *);
    *(void **)&initialize = dlsym(RTLD_DEFAULT, "Py_InitializeEx");
    *(void **)&run = dlsym(RTLD_DEFAULT, "PyRun_SimpleString");
    if (initialize == NULL || run == NULL) exit(1);
    snprintf(code, sizeof code,
             "import sys, types\n"
             "sys.dont_write_bytecode = True\n"
             "sdk = types.ModuleType('fidius')\n"
             "sdk.PluginError = Exception\n"
             "sdk.method = lambda f: f\n"
             "sys.modules['fidius'] = sdk\n"
             "sys.path[:0] = ['%s/vendor', '%s']\n"
             "import plugin\n",
             package, package);
    initialize(0);
    if (run(code) != 0) exit(1);
    return now_ns() - start;
}

/* A fresh process's first load (`--fresh-load`) or first dlopen
 * (`--fresh-dlopen`) of a library, or its first Python load
 * (`--fresh-python`, `--fresh-python-direct`), timed inside the process:
 * prints microseconds. */
static int fresh_child(const char *mode, const char *path, const char *interface_file) {
    double took;
    if (strcmp(mode, "--fresh-load") == 0)
        took = load_round(path, NULL, 0, 1);
    else if (strcmp(mode, "--fresh-dlopen") == 0)
        took = dlopen_round(path, 1);
    else if (strcmp(mode, "--fresh-python") == 0)
        took = python_load(path, interface_file);
    else
        took = python_direct(path);
    printf("%.1f\n", took / 1e3);
    return 0;
}

/* Microseconds one fresh process of this program reports in `mode`. */
static double fresh_round(const char *self, const char *mode, const char *path, const char *interface_file) {
    char command[12288];
    double us = 0;
    FILE *child;
    snprintf(command, sizeof command, "'%s' %s '%s' '%s'", self, mode, path, interface_file);
    child = popen(command, "r");
    if (child == NULL || fscanf(child, "%lf", &us) != 1 || pclose(child) != 0) {
        fprintf(stderr, "%s failed\n", command);
        exit(1);
    }
    return us;
}

/* A copy of the library with its own inode: the loader maps an inode once,
 * and the bench keeps the original mapped for its direct calls. */
static void compare_loads(const char *self, const char *dir, const char *key_file) {
    char unmapped[4096], signed_path[4096], original[4096], tmp[] = "/tmp/fidius-bench-XXXXXX";
    double unsigned_ns[ROUNDS], signed_ns[ROUNDS], again_ns[ROUNDS], verify_ns[ROUNDS], direct_ns[ROUNDS],
        fresh_host[ROUNDS], fresh_direct[ROUNDS];
    double u, s, a, v, d, fh, fd;
    int r;
    if (mkdtemp(tmp) == NULL) exit(1);
    snprintf(original, sizeof original, "%s/libcalc_plugin.so", dir);
    snprintf(unmapped, sizeof unmapped, "%s/libcalc_plugin.so", tmp);
    snprintf(signed_path, sizeof signed_path, "%s/libcalc_signed.so", dir);
    copy_file(original, unmapped);
    for (r = 0; r < ROUNDS; r++) {
        direct_ns[r] = dlopen_round(unmapped, 20);
        unsigned_ns[r] = load_round(unmapped, key_file, 0, 20);
        signed_ns[r] = load_round(signed_path, key_file, 1, 20);
        again_ns[r] = signed_again_round(signed_path, key_file, 20);
        verify_ns[r] = verify_round(signed_path, key_file, 20);
        fresh_direct[r] = fresh_round(self, "--fresh-dlopen", unmapped, "-");
        fresh_host[r] = fresh_round(self, "--fresh-load", unmapped, "-");
    }
    d = median(direct_ns, ROUNDS) / 1e3;
    u = median(unsigned_ns, ROUNDS) / 1e3;
    s = median(signed_ns, ROUNDS) / 1e3;
    a = median(again_ns, ROUNDS) / 1e3;
    v = median(verify_ns, ROUNDS) / 1e3;
    fd = median(fresh_direct, ROUNDS);
    fh = median(fresh_host, ROUNDS);
    print_row("load+unload, unsigned", d, u, "us", 1);
    print_row("signed, new host", d, s, "us", 1);
    print_row("signed, same host again", d, a, "us", 1);
    printf("%-22s verify %8.1f us   + dlopen %6.1f us   signed load %8.1f us   ratio %.3f\n", "signed vs its floor", v,
           d, s, s / (v + d));
    print_row("first load, fresh proc", fd, fh, "us", 1);
    remove(unmapped);
    remove(tmp);
}

static void compare_python_loads(const char *self, const char *dir) {
    char package[4096], interface_file[4096];
    double direct[ROUNDS], api[ROUNDS], d, a;
    int r;
    /* The release fixtures' directory sits next to the Python ones. */
    snprintf(package, sizeof package, "%s/../python/calc", dir);
    snprintf(interface_file, sizeof interface_file, "%s/../interfaces/calculator.toml", dir);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = fresh_round(self, "--fresh-python-direct", package, interface_file);
        api[r] = fresh_round(self, "--fresh-python", package, interface_file);
    }
    d = median(direct, ROUNDS) / 1e3;
    a = median(api, ROUNDS) / 1e3;
    print_row("Python load, fresh proc", d, a, "ms", 2);
}

/* ---- streams ------------------------------------------------------------ */

/* fidius's FidiusStreamHandle, for pulling a native stream directly. */
typedef struct stream_handle {
    int32_t (*next)(struct stream_handle *, uint8_t *, uint32_t, uint32_t *);
    void (*drop_fn)(struct stream_handle *);
    void *state;
} stream_handle_t;

/* Per item: pulling count(0, n)'s handle straight from the plugin. */
static double direct_stream_round(const descriptor_t *d, void *inst, long items) {
    uint8_t args[16], buf[64];
    uint8_t *out = NULL;
    uint32_t out_len = 0, len = 0;
    uint64_t from = 0, to = (uint64_t)items;
    stream_handle_t *h;
    double start;
    memcpy(args, &from, 8);
    memcpy(args + 8, &to, 8);
    start = now_ns();
    if (((const method_fn *)d->vtable)[0](inst, args, 16, &out, &out_len) != 0) abort();
    h = (stream_handle_t *)out;
    while (h->next(h, buf, sizeof buf, &len) == 0) sink += buf[0];
    h->drop_fn(h);
    return (now_ns() - start) / (double)items;
}

/* Per item: count(0, n) or blobs(n, size) through the C API. */
static double stream_round(const fidius_host_plugin_t *p, uint32_t method, uint64_t size, long items) {
    uint8_t args[16];
    fidius_host_stream_t *stream = NULL;
    const uint8_t *item;
    size_t len;
    uint32_t count = (uint32_t)items, bytes = (uint32_t)size;
    uint64_t from = 0, to = (uint64_t)items;
    double start;
    size_t args_len = 16;
    if (method == 0) {
        memcpy(args, &from, 8);
        memcpy(args + 8, &to, 8);
    } else {
        memcpy(args, &count, 4);
        memcpy(args + 4, &bytes, 4);
        args_len = 8;
    }
    start = now_ns();
    if (fidius_host_plugin_call_stream(p, method, args, args_len, NULL, &stream, NULL)) abort();
    while (fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_OK) sink += item[len - 1];
    fidius_host_stream_free(stream);
    return (now_ns() - start) / (double)items;
}

static fidius_host_plugin_t *load_for_bench(fidius_host_t *host, const char *path, const char *name, const char *interface_file) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = NULL;
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    if (fidius_host_interface_new_from_file(interface_file, NT, &iface, NULL) ||
        fidius_host_load_options_set_interface(options, iface, NULL) ||
        fidius_host_load_path(host, path, NT, name, name ? NT : 0, options, &p, &err)) {
        fprintf(stderr, "loading %s: %s\n", path, err ? fidius_host_error_message(err) : "?");
        abort();
    }
    fidius_host_interface_free(iface);
    fidius_host_load_options_free(options);
    return p;
}

/* A stream of one runtime: per small item (count) against a plain call
 * (live_producers), and per 1 KiB item (blobs) against a plain call that
 * returns 1 KiB (the Calculator's reverse of the same runtime). */
static void compare_streams_of(const char *runtime, fidius_host_t *host, const char *streams, const char *calc,
                               const char *interfaces, long items) {
    char streamer[8192], calculator[8192];
    fidius_host_plugin_t *s, *c;
    double small[ROUNDS], plain[ROUNDS], big[ROUNDS], plain_big[ROUNDS], a, b, x, y;
    uint8_t payload[1024];
    int r;
    memset(payload, 7, sizeof payload);
    snprintf(streamer, sizeof streamer, "%s/streamer.toml", interfaces);
    snprintf(calculator, sizeof calculator, "%s/calculator.toml", interfaces);
    s = load_for_bench(host, streams, NULL, streamer);
    /* The native calculator library holds two plugins. */
    c = load_for_bench(host, calc, strstr(calc, ".so") ? "BasicCalculator" : NULL, calculator);
    stream_round(s, 0, 8, items / 10);
    for (r = 0; r < ROUNDS; r++) {
        small[r] = stream_round(s, 0, 8, items);
        plain[r] = api_round_on(s, 3, (const uint8_t *)"", 0, items);
        big[r] = stream_round(s, 1, sizeof payload, items / 4);
        plain_big[r] = api_round_on(c, 5, payload, sizeof payload, items / 4);
    }
    a = median(small, ROUNDS);
    b = median(plain, ROUNDS);
    x = median(big, ROUNDS);
    y = median(plain_big, ROUNDS);
    printf("%-7s stream u64 item   %9.1f ns (%5.2f M items/s)   plain call %9.1f ns   ratio %.3f\n", runtime, a, 1e3 / a, b, a / b);
    printf("%-7s stream 1 KiB item %9.1f ns (%5.2f M items/s)   1 KiB call %9.1f ns   ratio %.3f\n", runtime, x, 1e3 / x, y, x / y);
    fidius_host_plugin_free(s);
    fidius_host_plugin_free(c);
}

static void compare_streams(const char *dir, fidius_host_t *host, const char *interfaces) {
    char path[8192], calc[8192];
    fidius_host_plugin_t *p;
    double direct[ROUNDS], api[ROUNDS], d, a;
    void *lib, *inst;
    const descriptor_t *d0;
    char streamer[8192];
    int r;
    snprintf(path, sizeof path, "%s/libstream_plugin.so", dir);
    snprintf(streamer, sizeof streamer, "%s/streamer.toml", interfaces);
    d0 = first_descriptor(path, &lib);
    inst = d0->construct((const uint8_t *)"", 0);
    p = load_for_bench(host, path, NULL, streamer);
    direct_stream_round(d0, inst, 100000);
    stream_round(p, 0, 8, 100000);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = direct_stream_round(d0, inst, 1000000);
        api[r] = stream_round(p, 0, 8, 1000000);
    }
    d = median(direct, ROUNDS);
    a = median(api, ROUNDS);
    print_row("stream item (u64)", d, a, "ns", 1);
    fidius_host_plugin_free(p);
    d0->destroy(inst);
    dlclose(lib);

    snprintf(calc, sizeof calc, "%s/libcalc_plugin.so", dir);
    compare_streams_of("cdylib", host, path, calc, interfaces, 1000000);
    if (fidius_host_features() & FIDIUS_HOST_FEATURE_WASM) {
        snprintf(path, sizeof path, "%s/../wasm/stream", dir);
        snprintf(calc, sizeof calc, "%s/../wasm/calc", dir);
        compare_streams_of("wasm", host, path, calc, interfaces, 100000);
    }
    if (fidius_host_features() & FIDIUS_HOST_FEATURE_PYTHON) {
        snprintf(path, sizeof path, "%s/../python/stream", dir);
        snprintf(calc, sizeof calc, "%s/../python/calc", dir);
        compare_streams_of("python", host, path, calc, interfaces, 100000);
    }
}

/* ---- Isolated plugins ------------------------------------------------- */

/* The physical limit of a call to another process: `len` bytes written to
 * a socket pair, echoed back by a child that does nothing else, read. Each
 * reader polls its socket for up to `spin_ns` before it sleeps in `read`
 * (SPIN_NS: as the library's channel does; 0: at once). */
#define SPIN_NS 50000.0

static ssize_t spin_read(int fd, uint8_t *buf, size_t len, double spin_ns) {
    double start = now_ns();
    while (spin_ns > 0) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) return n;
        if (now_ns() - start >= spin_ns) break;
    }
    return read(fd, buf, len);
}

static void echo_child(int fd, double spin_ns) {
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t n = spin_read(fd, buf, sizeof buf, spin_ns);
        if (n <= 0 || write(fd, buf, (size_t)n) != n) _exit(0);
    }
}

static double socket_round(int fd, const uint8_t *in, uint32_t len, long iters, double spin_ns) {
    static uint8_t back[1 << 16];
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        size_t got = 0;
        if (write(fd, in, len) != (ssize_t)len) abort();
        while (got < len) {
            ssize_t n = spin_read(fd, back + got, sizeof back - got, spin_ns);
            if (n <= 0) abort();
            got += (size_t)n;
        }
        sink += back[0];
    }
    return (now_ns() - start) / (double)iters;
}

static double isolated_load_round(fidius_host_t *host, const char *path, int iters) {
    double start = now_ns();
    int i;
    for (i = 0; i < iters; i++) {
        fidius_host_plugin_t *p = NULL;
        if (fidius_host_load_path(host, path, NT, "BasicCalculator", NT, NULL, &p, NULL)) {
            fprintf(stderr, "load of %s failed\n", path);
            exit(1);
        }
        fidius_host_plugin_free(p);
    }
    return (now_ns() - start) / (double)iters;
}

static void compare_isolated(const char *dir, const char *interfaces, const uint8_t *add_in, const uint8_t *payload,
                             uint32_t payload_len) {
    char path[4096], library[4096], hostcall_copy[256], streamer[4200];
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *isolated = NULL, *in_process = NULL;
    fidius_host_plugin_t *p = NULL;
    double echo_small[ROUNDS], call_small[ROUNDS], echo_kib[ROUNDS], call_kib[ROUNDS], load_in[ROUNDS], load_iso[ROUNDS];
    double call_token[ROUNDS], host_fn[ROUNDS], stream_item[ROUNDS];
    fidius_host_plugin_t *hostcall, *streams;
    fidius_host_cancel_token_t *token = NULL;
    int fds[2], r, status;
    pid_t child;

    snprintf(path, sizeof path, "%s/libcalc_plugin.so", dir);
    if (fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) ||
        fidius_host_builder_build(b, &isolated, NULL) ||
        fidius_host_load_path(isolated, path, NT, "BasicCalculator", NT, NULL, &p, NULL)) {
        printf("isolated: no worker next to the library; skipped\n");
        fidius_host_free(isolated);
        return;
    }
    b = fidius_host_builder_new();
    if (fidius_host_builder_build(b, &in_process, NULL)) exit(1);
    if (fidius_host_cancel_token_new(&token, NULL)) exit(1);
    snprintf(library, sizeof library, "%s/libhostcall_plugin.so", dir);
    hostcall = bookkeeper(isolated, library, interfaces, 0, hostcall_copy, sizeof hostcall_copy);
    snprintf(library, sizeof library, "%s/libstream_plugin.so", dir);
    snprintf(streamer, sizeof streamer, "%s/streamer.toml", interfaces);
    streams = load_for_bench(isolated, library, NULL, streamer);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) exit(1);
    child = fork();
    if (child == 0) {
        close(fds[0]);
        echo_child(fds[1], SPIN_NS);
    }
    close(fds[1]);
    socket_round(fds[0], add_in, 16, 2000, SPIN_NS);
    api_round_on(p, 0, add_in, 16, 2000);
    host_call_round(hostcall, 100, 20);
    stream_round(streams, 0, 8, 2000);
    for (r = 0; r < ROUNDS; r++) {
        echo_small[r] = socket_round(fds[0], add_in, 16, 20000, SPIN_NS);
        call_small[r] = api_round_on(p, 0, add_in, 16, 20000);
        call_token[r] = cancellable_round(p, token, 0, add_in, 16, 20000);
        host_fn[r] = host_call_round(hostcall, 100, 200);
        stream_item[r] = stream_round(streams, 0, 8, 20000);
        echo_kib[r] = socket_round(fds[0], payload, payload_len, 20000, SPIN_NS);
        call_kib[r] = api_round_on(p, 5, payload, payload_len, 20000);
        load_in[r] = isolated_load_round(in_process, path, 20) / 1000.0;
        load_iso[r] = isolated_load_round(isolated, path, 20) / 1000.0;
    }
    close(fds[0]);
    waitpid(child, &status, 0);
    printf("isolated (direct = the same bytes echoed by a bare process over a socket pair, both sides polling 50 us before they sleep):\n");
    print_row("isolated add", median(echo_small, ROUNDS), median(call_small, ROUNDS), "ns", 0);
    print_row("isolated reverse 1 KiB", median(echo_kib, ROUNDS), median(call_kib, ROUNDS), "ns", 0);
    printf("cancellable isolated call (direct = the same call without a token):\n");
    print_row("isolated add, cancel token", median(call_small, ROUNDS), median(call_token, ROUNDS), "ns", 0);
    printf("host function of an isolated plugin, per host call (direct = the bare socket-pair echo above):\n");
    print_row("isolated host fn, raw callback", median(echo_small, ROUNDS), median(host_fn, ROUNDS), "ns", 0);
    printf("stream item of an isolated plugin (direct = the bare socket-pair echo above):\n");
    print_row("isolated stream u64 item", median(echo_small, ROUNDS), median(stream_item, ROUNDS), "ns", 0);
    printf("isolated load (direct = an in-process load of the same library):\n");
    print_row("isolated load+unload", median(load_in, ROUNDS), median(load_iso, ROUNDS), "us", 1);
    fidius_host_cancel_token_free(token);
    fidius_host_plugin_free(hostcall);
    fidius_host_plugin_free(streams);
    remove(hostcall_copy);
    fidius_host_plugin_free(p);
    fidius_host_free(isolated);
    fidius_host_free(in_process);
}

/* The other transport for isolated calls: a shared page, a sequence number
 * each way and a futex to sleep on, the echo child in another process.
 * `spins` polls of the sequence number come before sleeping. */
struct shm_channel {
    uint32_t request; /* bumped by the caller when its message is in */
    uint32_t reply;   /* set to `request` by the echo when its answer is in */
    uint32_t len;     /* UINT32_MAX: end */
    uint8_t data[1 << 16];
};

static void futex_wait(uint32_t *word, uint32_t seen) {
    syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0);
}

static void futex_wake(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Returns once *word is no longer `seen`. */
static void await_change(uint32_t *word, uint32_t seen, long spins) {
    long i;
    for (i = 0; i < spins; i++)
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != seen) return;
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == seen) futex_wait(word, seen);
}

static void shm_echo_child(struct shm_channel *ch, long spins) {
    static uint8_t copy[1 << 16];
    uint32_t seen = 0;
    for (;;) {
        await_change(&ch->request, seen, spins);
        seen = __atomic_load_n(&ch->request, __ATOMIC_ACQUIRE);
        if (ch->len == UINT32_MAX) _exit(0);
        /* Read the message and write the answer, as the socket echo does. */
        memcpy(copy, ch->data, ch->len);
        memcpy(ch->data, copy, ch->len);
        __atomic_store_n(&ch->reply, seen, __ATOMIC_RELEASE);
        futex_wake(&ch->reply);
    }
}

static double shm_round(struct shm_channel *ch, const uint8_t *in, uint32_t len, long iters, long spins) {
    static uint8_t back[1 << 16];
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        uint32_t seq = ch->request + 1;
        memcpy(ch->data, in, len);
        ch->len = len;
        __atomic_store_n(&ch->request, seq, __ATOMIC_RELEASE);
        futex_wake(&ch->request);
        await_change(&ch->reply, seq - 1, spins);
        memcpy(back, ch->data, len);
        sink += back[0];
    }
    return (now_ns() - start) / (double)iters;
}

/* The same 16 bytes and 1 KiB echoed by another process over a socket pair
 * (each side sleeping in `read` at once, or polling up to 50 µs first, as
 * isolated calls do) and through shared memory (each side sleeping on a
 * futex at once, or after 100,000 polls of the sequence number). */
static void compare_transports(const uint8_t *small, const uint8_t *payload, uint32_t payload_len) {
    static const long spin_variants[2] = {0, 100000};
    double sock_small[ROUNDS], sock_kib[ROUNDS], shm_small[2][ROUNDS], shm_kib[2][ROUNDS], spin_small[ROUNDS], spin_kib[ROUNDS];
    struct shm_channel *channels[2];
    pid_t children[4];
    int fds[2], spin_fds[2], r, v, status;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, spin_fds) != 0) exit(1);
    /* Each child closes the parent's ends, which it inherits: the echoes end
     * when the parent closes its end. */
    children[2] = fork();
    if (children[2] == 0) {
        close(fds[0]);
        close(spin_fds[0]);
        close(spin_fds[1]);
        echo_child(fds[1], 0);
    }
    close(fds[1]);
    children[3] = fork();
    if (children[3] == 0) {
        close(fds[0]);
        close(spin_fds[0]);
        echo_child(spin_fds[1], SPIN_NS);
    }
    close(spin_fds[1]);
    for (v = 0; v < 2; v++) {
        channels[v] = mmap(NULL, sizeof(struct shm_channel), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (channels[v] == MAP_FAILED) exit(1);
        memset(channels[v], 0, sizeof(struct shm_channel));
        children[v] = fork();
        if (children[v] == 0) {
            close(fds[0]);
            close(spin_fds[0]);
            shm_echo_child(channels[v], spin_variants[v]);
        }
        shm_round(channels[v], small, 16, 2000, spin_variants[v]);
    }
    socket_round(fds[0], small, 16, 2000, 0);
    for (r = 0; r < ROUNDS; r++) {
        sock_small[r] = socket_round(fds[0], small, 16, 20000, 0);
        sock_kib[r] = socket_round(fds[0], payload, payload_len, 20000, 0);
        spin_small[r] = socket_round(spin_fds[0], small, 16, 20000, SPIN_NS);
        spin_kib[r] = socket_round(spin_fds[0], payload, payload_len, 20000, SPIN_NS);
        for (v = 0; v < 2; v++) {
            shm_small[v][r] = shm_round(channels[v], small, 16, 20000, spin_variants[v]);
            shm_kib[v][r] = shm_round(channels[v], payload, payload_len, 20000, spin_variants[v]);
        }
    }
    close(fds[0]);
    close(spin_fds[0]);
    for (v = 0; v < 2; v++) {
        channels[v]->len = UINT32_MAX;
        __atomic_store_n(&channels[v]->request, channels[v]->request + 1, __ATOMIC_RELEASE);
        futex_wake(&channels[v]->request);
    }
    for (v = 0; v < 4; v++) waitpid(children[v], &status, 0);
    printf("a process round trip, by transport (direct = a socket pair, each side sleeping in read):\n");
    print_row("16 B, socket + poll 50us", median(sock_small, ROUNDS), median(spin_small, ROUNDS), "ns", 0);
    print_row("16 B, shm + futex", median(sock_small, ROUNDS), median(shm_small[0], ROUNDS), "ns", 0);
    print_row("16 B, shm + spin", median(sock_small, ROUNDS), median(shm_small[1], ROUNDS), "ns", 0);
    print_row("1 KiB, socket + poll 50us", median(sock_kib, ROUNDS), median(spin_kib, ROUNDS), "ns", 0);
    print_row("1 KiB, shm + futex", median(sock_kib, ROUNDS), median(shm_kib[0], ROUNDS), "ns", 0);
    print_row("1 KiB, shm + spin", median(sock_kib, ROUNDS), median(shm_kib[1], ROUNDS), "ns", 0);
    for (v = 0; v < 2; v++) munmap(channels[v], sizeof(struct shm_channel));
}

/* Scans of `host`'s search paths, in microseconds each; the number of
 * libraries found in *libraries. */
static double discover_round(const fidius_host_t *host, int iters, size_t *libraries) {
    double start = now_ns();
    int i;
    for (i = 0; i < iters; i++) {
        fidius_host_discovery_t *found = NULL;
        if (fidius_host_discover(host, &found, NULL) != FIDIUS_HOST_STATUS_OK) abort();
        *libraries = fidius_host_discovery_plugin_count(found) + fidius_host_discovery_skipped_count(found);
        fidius_host_discovery_free(found);
    }
    return (now_ns() - start) / (double)iters / 1000.0;
}

/* Discovery with every library opened in a worker process against the
 * same scan in-process. */
static void compare_discovery(const char *dir) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *in_process = NULL, *isolated = NULL;
    double direct[ROUNDS], probed[ROUNDS];
    size_t libraries = 0;
    int r;
    if (fidius_host_builder_add_search_path(b, dir, NT, NULL) || fidius_host_builder_build(b, &in_process, NULL)) exit(1);
    b = fidius_host_builder_new();
    if (fidius_host_builder_add_search_path(b, dir, NT, NULL) ||
        fidius_host_builder_set_discovery_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) ||
        fidius_host_builder_build(b, &isolated, NULL))
        exit(1);
    discover_round(in_process, 5, &libraries);
    discover_round(isolated, 1, &libraries);
    for (r = 0; r < ROUNDS; r++) {
        direct[r] = discover_round(in_process, 20, &libraries);
        probed[r] = discover_round(isolated, 5, &libraries);
    }
    printf("discovery of %zu entries (direct = the same scan in-process; isolated: one worker per scan):\n", libraries);
    print_row("discover, libraries in a worker", median(direct, ROUNDS), median(probed, ROUNDS), "us", 1);
    fidius_host_free(in_process);
    fidius_host_free(isolated);
}

int main(int argc, char **argv) {
    char unsigned_path[4096];
    const registry_t *(*get_registry)(void);
    const registry_t *registry;
    fidius_host_t *host = NULL;
    fidius_host_builder_t *b;
    fidius_host_plugin_t *p = NULL;
    void *lib;
    uint8_t add_in[16], payload[1024];
    int64_t x = 3, y = 7;
    uint32_t i;

    if (argc == 4 && strncmp(argv[1], "--fresh-", 8) == 0) return fresh_child(argv[1], argv[2], argv[3]);
    if (argc != 4) {
        fprintf(stderr, "usage: %s <release-fixture-dir> <trusted.public> <type_echo.toml>\n", argv[0]);
        return 2;
    }
    snprintf(unsigned_path, sizeof unsigned_path, "%s/libcalc_plugin.so", argv[1]);

    /* The physical limit: the plugin's own vtable, no host at all. */
    lib = dlopen(unsigned_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&get_registry = dlsym(lib, "fidius_get_registry");
    registry = get_registry();
    for (i = 0; i < registry->plugin_count; i++)
        if (strcmp(registry->descriptors[i]->plugin_name, "BasicCalculator") == 0) desc = registry->descriptors[i];
    instance = desc->construct((const uint8_t *)"", 0);

    b = fidius_host_builder_new();
    if (fidius_host_builder_build(b, &host, NULL)) return 1;
    if (fidius_host_load_path(host, unsigned_path, NT, "BasicCalculator", NT, NULL, &p, NULL)) return 1;
    plugin = p;

    memcpy(add_in, &x, 8);
    memcpy(add_in + 8, &y, 8);
    for (i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("libfidius_host %s: per-call cost, median of %d rounds\n", fidius_host_version(), ROUNDS);
    compare("add(i64, i64)", 0, add_in, sizeof add_in, 2000000);
    compare("reverse(1 KiB raw)", 5, payload, sizeof payload, 500000);
    compare_error_path();
    compare_arena(argv[1], host, payload, sizeof payload);
    compare_threads(add_in, 2);
    compare_json(argv[1], argv[3]);
    {
        /* The interface files live next to type_echo.toml. */
        char interfaces[4096], *slash;
        snprintf(interfaces, sizeof interfaces, "%s", argv[3]);
        slash = strrchr(interfaces, '/');
        if (slash) *slash = '\0';
        compare_host_functions(argv[1], slash ? interfaces : ".");
        compare_streams(argv[1], host, slash ? interfaces : ".");
        compare_isolated(argv[1], slash ? interfaces : ".", add_in, payload, sizeof payload);
        compare_transports(add_in, payload, sizeof payload);
    }

    compare_discovery(argv[1]);
    compare_loads(argv[0], argv[1], argv[2]);
    if (fidius_host_features() & FIDIUS_HOST_FEATURE_PYTHON) compare_python_loads(argv[0], argv[1]);

    fidius_host_plugin_free(p);
    fidius_host_free(host);
    desc->destroy(instance);
    dlclose(lib);
    return sink == 42 ? 3 : 0;
}
