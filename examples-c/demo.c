/*
 * demo: discover the plugins in a folder, load one, call it, show an error.
 *
 *   usage: demo <plugin-folder>
 */
#include "fidius_host.h"

#include <stdio.h>
#include <string.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

static int fail(const char *what, fidius_host_error_t *err) {
    fprintf(stderr, "%s failed: %s\n", what, fidius_host_error_message(err));
    fidius_host_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    fidius_host_builder_t *builder;
    fidius_host_t *host = NULL;
    fidius_host_discovery_t *found = NULL;
    fidius_host_plugin_t *calc = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;
    unsigned char args[16];
    long long a = 3, b = 7, sum;
    size_t i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <plugin-folder>\n", argv[0]);
        return 2;
    }
    printf("libfidius_host %s\n", fidius_host_version());

    builder = fidius_host_builder_new();
    if (fidius_host_builder_add_search_path(builder, argv[1], NT, &err)) return fail("add_search_path", err);
    if (fidius_host_builder_build(builder, &host, &err)) return fail("build", err);

    if (fidius_host_discover(host, &found, &err)) return fail("discover", err);
    printf("\nplugins in %s:\n", argv[1]);
    for (i = 0; i < fidius_host_discovery_plugin_count(found); i++) {
        const fidius_host_plugin_info_t *info = fidius_host_discovery_plugin(found, i);
        printf("  %-20s interface %s v%u, hash %016llx, capabilities %llx\n", fidius_host_plugin_info_name(info),
               fidius_host_plugin_info_interface_name(info), fidius_host_plugin_info_interface_version(info),
               (unsigned long long)fidius_host_plugin_info_interface_hash(info),
               (unsigned long long)fidius_host_plugin_info_capabilities(info));
    }
    for (i = 0; i < fidius_host_discovery_skipped_count(found); i++)
        printf("  skipped: %s\n", fidius_host_discovery_skipped_message(found, i));
    fidius_host_discovery_free(found);

    if (fidius_host_load(host, "BasicCalculator", NT, NULL, &calc, &err)) return fail("load", err);

    /* add(3, 7): the arguments are the bincode tuple (i64, i64). */
    memcpy(args, &a, 8);
    memcpy(args + 8, &b, 8);
    if (fidius_host_plugin_call(calc, 0, args, sizeof args, &out, &err)) return fail("add", err);
    memcpy(&sum, out.data, 8);
    fidius_host_bytes_free(&out);
    printf("\nBasicCalculator.add(%lld, %lld) = %lld\n", a, b, sum);

    /* reverse is a raw-wire method: bytes in, bytes out. */
    if (fidius_host_plugin_call(calc, 5, (const unsigned char *)"fidius", 6, &out, &err)) return fail("reverse", err);
    printf("BasicCalculator.reverse(\"fidius\") = \"%.*s\"\n", (int)out.len, (const char *)out.data);
    fidius_host_bytes_free(&out);

    /* divide(1, 0) returns Err(PluginError). */
    b = 0;
    memcpy(args + 8, &b, 8);
    if (fidius_host_plugin_call(calc, 2, args, sizeof args, &out, &err) == FIDIUS_HOST_STATUS_PLUGIN_ERROR) {
        printf("BasicCalculator.divide(3, 0) -> %s: code %s, message \"%s\", details %s\n",
               fidius_host_status_name(fidius_host_error_status(err)), fidius_host_error_plugin_code(err),
               fidius_host_error_plugin_message(err), fidius_host_error_plugin_details(err));
        fidius_host_error_free(err);
    }

    /* Calling past the last method is an error, not a crash. */
    if (fidius_host_plugin_call(calc, 99, NULL, 0, &out, &err) != FIDIUS_HOST_STATUS_OK) {
        printf("method 99 -> %s: %s\n", fidius_host_status_name(fidius_host_error_status(err)),
               fidius_host_error_message(err));
        fidius_host_error_free(err);
    }

    fidius_host_plugin_free(calc);
    fidius_host_free(host);
    return 0;
}
