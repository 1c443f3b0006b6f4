/*
 * Per-call overhead of libfidius_host against the physical limit: calling the
 * fixture plugin's vtable function directly. Also times a signed load
 * (read + verify + sealed copy + map) against an unsigned one, and a JSON
 * call against a raw call with the same 3-field struct argument.
 *
 *   usage: bench <release-fixture-dir> <trusted.public> <type_echo.toml>
 *
 * Each measurement is the median of several rounds; direct and API rounds
 * alternate so machine noise hits both alike.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int32_t (*method_fn)(void *, const uint8_t *, uint32_t, uint8_t **, uint32_t *);

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

static double api_round(uint32_t method, const uint8_t *in, uint32_t len, long iters) {
    double start = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        fidius_host_bytes_t out;
        if (fidius_host_plugin_call(plugin, method, in, len, &out, NULL) != FIDIUS_HOST_STATUS_OK) abort();
        sink += out.data[0];
        fidius_host_bytes_free(&out);
    }
    return (now_ns() - start) / (double)iters;
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
    printf("%-22s direct %8.1f ns   C API %8.1f ns   added %+7.1f ns   ratio %.3f\n", what, d, a, a - d, a / d);
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

/* Reading the library file whole, which every load does before anything
 * else: the floor under an unsigned load's own checks. */
static double read_round(const char *path, int iters) {
    double start = now_ns();
    int i;
    for (i = 0; i < iters; i++) {
        FILE *f = fopen(path, "rb");
        static uint8_t buffer[1 << 16];
        size_t got;
        if (f == NULL) exit(1);
        while ((got = fread(buffer, 1, sizeof buffer, f)) > 0) sink += buffer[got - 1];
        fclose(f);
    }
    return (now_ns() - start) / (double)iters;
}

int main(int argc, char **argv) {
    char unsigned_path[4096], signed_path[4096];
    const registry_t *(*get_registry)(void);
    const registry_t *registry;
    fidius_host_t *host = NULL;
    fidius_host_builder_t *b;
    fidius_host_plugin_t *p = NULL;
    void *lib;
    uint8_t add_in[16], payload[1024];
    int64_t x = 3, y = 7;
    double unsigned_ns[ROUNDS], signed_ns[ROUNDS], read_ns[ROUNDS], u, s, rd;
    uint32_t i;
    int r;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <release-fixture-dir> <trusted.public> <type_echo.toml>\n", argv[0]);
        return 2;
    }
    snprintf(unsigned_path, sizeof unsigned_path, "%s/libcalc_plugin.so", argv[1]);
    snprintf(signed_path, sizeof signed_path, "%s/libcalc_signed.so", argv[1]);

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

    printf("libfidius_host %s: per-call cost, median of %d rounds\n", fidius_host_version(), ROUNDS);
    compare("add(i64, i64)", 0, add_in, sizeof add_in, 2000000);
    compare("reverse(1 KiB raw)", 5, payload, sizeof payload, 500000);
    compare_json(argv[1], argv[3]);

    for (r = 0; r < ROUNDS; r++) {
        unsigned_ns[r] = load_round(unsigned_path, argv[2], 0, 20);
        signed_ns[r] = load_round(signed_path, argv[2], 1, 20);
        read_ns[r] = read_round(unsigned_path, 20);
    }
    u = median(unsigned_ns, ROUNDS);
    s = median(signed_ns, ROUNDS);
    rd = median(read_ns, ROUNDS);
    printf("%-22s unsigned %8.1f us   signed %8.1f us   ratio %.2f\n", "load + unload", u / 1e3, s / 1e3, s / u);
    printf("%-22s %8.1f us (reading the file alone; unsigned load %.2fx)\n", "read library file", rd / 1e3, u / rd);

    fidius_host_plugin_free(p);
    fidius_host_free(host);
    desc->destroy(instance);
    dlclose(lib);
    return sink == 42 ? 3 : 0;
}
