/*
 * discover: list the plugins a host finds in a folder, and what it skipped.
 *
 *   usage: discover <folder>...
 */
#include "fidius_host.h"

#include <stdio.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

static const char *runtime_name(uint32_t runtime) {
    switch (runtime) {
    case FIDIUS_HOST_RUNTIME_CDYLIB: return "cdylib";
    case FIDIUS_HOST_RUNTIME_WASM: return "wasm";
    case FIDIUS_HOST_RUNTIME_PYTHON: return "python";
    }
    return "?";
}

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_discovery_t *found = NULL;
    fidius_host_error_t *err = NULL;
    size_t i;
    int a;

    if (argc < 2) {
        fprintf(stderr, "usage: %s <folder>...\n", argv[0]);
        fidius_host_builder_free(builder);
        return 2;
    }
    for (a = 1; a < argc; a++)
        if (fidius_host_builder_add_search_path(builder, argv[a], NT, &err) != FIDIUS_HOST_STATUS_OK) break;
    /* Lenient: a library with one bad descriptor still offers its good ones. */
    if (err != NULL || fidius_host_builder_set_load_policy(builder, FIDIUS_HOST_LOAD_POLICY_LENIENT, &err) != FIDIUS_HOST_STATUS_OK) {
        fprintf(stderr, "discover: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        fidius_host_builder_free(builder);
        return 1;
    }
    if (fidius_host_builder_build(builder, &host, &err) != FIDIUS_HOST_STATUS_OK ||
        fidius_host_discover(host, &found, &err) != FIDIUS_HOST_STATUS_OK) {
        fprintf(stderr, "discover: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        fidius_host_free(host);
        return 1;
    }
    for (i = 0; i < fidius_host_discovery_plugin_count(found); i++) {
        const fidius_host_plugin_info_t *info = fidius_host_discovery_plugin(found, i);
        printf("%-20s %-7s interface %s v%u, hash %016llx\n", fidius_host_plugin_info_name(info),
               runtime_name(fidius_host_plugin_info_runtime(info)), fidius_host_plugin_info_interface_name(info),
               fidius_host_plugin_info_interface_version(info),
               (unsigned long long)fidius_host_plugin_info_interface_hash(info));
    }
    for (i = 0; i < fidius_host_discovery_skipped_count(found); i++)
        printf("skipped (%s): %s\n", fidius_host_status_name(fidius_host_discovery_skipped_status(found, i)),
               fidius_host_discovery_skipped_message(found, i));
    fidius_host_discovery_free(found);
    fidius_host_free(host);
    return 0;
}
