/*
 * python: load a Python plugin (a package with package.toml and a module)
 * and call it like any other plugin. The interpreter starts at the first
 * Python load.
 *
 *   usage: python <python-folder> <calculator.toml>
 */
#include "fidius_host.h"

#include <stdio.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_interface_t *calculator = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    char *json = NULL;
    int status = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <python-folder> <calculator.toml>\n", argv[0]);
        fidius_host_builder_free(builder);
        fidius_host_load_options_free(options);
        return 2;
    }
    if (fidius_host_builder_add_search_path(builder, argv[1], NT, &err) ||
        fidius_host_builder_build(builder, &host, &err) ||
        fidius_host_interface_new_from_file(argv[2], NT, &calculator, &err) ||
        fidius_host_load_options_set_interface(options, calculator, &err) ||
        fidius_host_load(host, "PyCalculator", NT, options, &plugin, &err) ||
        fidius_host_plugin_call_json(plugin, "greet", NT, "[\"C\"]", NT, &json, NULL, &err)) {
        fprintf(stderr, "python: %s\n", fidius_host_error_message(err));
        fidius_host_error_free(err);
        goto done;
    }
    printf("greet(\"C\") = %s\n", json);
    fidius_host_string_free(json);

    /* A Python exception is a plugin error: code, message, traceback. */
    if (fidius_host_plugin_call_json(plugin, "boom", NT, "[]", NT, &json, NULL, &err) ==
        FIDIUS_HOST_STATUS_PLUGIN_ERROR) {
        printf("boom() raised %s: %s\n", fidius_host_error_plugin_code(err), fidius_host_error_plugin_message(err));
        status = 0;
    }
    fidius_host_error_free(err);

done:
    fidius_host_plugin_free(plugin);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(calculator);
    fidius_host_free(host);
    return status;
}
