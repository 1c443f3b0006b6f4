/*
 * signatures: a host that loads only code signed by a trusted key. The
 * library file is read once, verified, and exactly those bytes are mapped.
 *
 *   usage: signatures <signed-folder> <unsigned-library.so> <trusted.public>
 */
#include "fidius_host.h"

#include <stdio.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

static fidius_host_t *strict_host(const char *folder, const char *key_file) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_error_t *err = NULL;
    /* A key file as `fidius keygen` writes it, or raw 32 bytes with
     * fidius_host_builder_add_trusted_key. */
    if (fidius_host_builder_add_search_path(builder, folder, NT, &err) ||
        fidius_host_builder_set_require_signature(builder, true, &err) ||
        fidius_host_builder_add_trusted_key_file(builder, key_file, NT, &err)) {
        fidius_host_builder_free(builder);
    } else if (fidius_host_builder_build(builder, &host, &err) == FIDIUS_HOST_STATUS_OK) {
        return host; /* the builder is consumed either way */
    }
    fprintf(stderr, "building the host: %s\n", fidius_host_error_message(err));
    fidius_host_error_free(err);
    return NULL;
}

int main(int argc, char **argv) {
    fidius_host_t *host;
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    int status = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <signed-folder> <unsigned-library.so> <trusted.public>\n", argv[0]);
        return 2;
    }
    host = strict_host(argv[1], argv[3]);
    if (host == NULL) return 1;

    if (fidius_host_load(host, "BasicCalculator", NT, NULL, &plugin, &err) == FIDIUS_HOST_STATUS_OK) {
        printf("signed BasicCalculator: verified and loaded\n");
        fidius_host_plugin_free(plugin);
    } else {
        fprintf(stderr, "signed BasicCalculator: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        status = 1;
    }

    /* A library without a signature is refused before it is mapped. */
    if (fidius_host_load_path(host, argv[2], NT, "BasicCalculator", NT, NULL, &plugin, &err) ==
        FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED) {
        printf("unsigned library: refused: %s\n", fidius_host_error_message(err));
    } else {
        fprintf(stderr, "the unsigned library was not refused\n");
        fidius_host_plugin_free(plugin);
        status = 1;
    }
    fidius_host_error_free(err);
    fidius_host_free(host);
    return status;
}
