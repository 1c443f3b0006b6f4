/*
 * An out-of-tree program built against an installed libfidius_host (with
 * pkg-config and with CMake): loads the calculator plugin and calls it;
 * with `isolated`, in a worker process, which must be found where the
 * installation put it (libexec, next to lib).
 *
 *   usage: hello <plugin-folder> [isolated]
 */
#include <fidius_host.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_bytes_t out;
    fidius_host_error_t *err = NULL;
    const unsigned char input[] = "installed";
    int ok;

    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "isolated") == 0)) {
        fidius_host_builder_free(builder);
        return 2;
    }
    if (fidius_host_builder_add_search_path(builder, argv[1], FIDIUS_HOST_NUL_TERMINATED, &err) ||
        (argc == 3 && fidius_host_builder_set_isolation(builder, FIDIUS_HOST_ISOLATION_ISOLATED, &err))) {
        fprintf(stderr, "hello: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        fidius_host_builder_free(builder);
        return 1;
    }
    if (fidius_host_builder_build(builder, &host, &err) ||
        fidius_host_load(host, "BasicCalculator", FIDIUS_HOST_NUL_TERMINATED, NULL, &plugin, &err) ||
        fidius_host_plugin_call(plugin, 5, input, 9, &out, &err)) {
        fprintf(stderr, "hello: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        fidius_host_free(host);
        return 1;
    }
    ok = out.len == 9 && memcmp(out.data, "dellatsni", 9) == 0;
    printf("libfidius_host %s: reverse(\"installed\") = \"%.*s\"%s\n", fidius_host_version(), (int)out.len,
           (const char *)out.data, argc == 3 ? " (isolated)" : "");
    fidius_host_bytes_free(&out);
    fidius_host_plugin_free(plugin);
    fidius_host_free(host);
    return ok ? 0 : 1;
}
