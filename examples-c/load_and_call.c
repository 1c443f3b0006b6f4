/*
 * load_and_call: load a plugin by name with its interface, call a method
 * with JSON and with raw bytes, and read a plugin's own error.
 *
 *   usage: load_and_call <plugin-folder> <calculator.toml>
 */
#include "fidius_host.h"

#include <stdio.h>
#include <string.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

static int fail(const char *what, fidius_host_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, fidius_host_error_message(err));
    fidius_host_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_interface_t *calculator = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;
    char *json = NULL;
    uint32_t reverse = 0;
    int status = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <plugin-folder> <calculator.toml>\n", argv[0]);
        fidius_host_builder_free(builder);
        fidius_host_load_options_free(options);
        return 2;
    }
    if (fidius_host_builder_add_search_path(builder, argv[1], NT, &err) ||
        fidius_host_builder_build(builder, &host, &err) ||
        fidius_host_interface_new_from_file(argv[2], NT, &calculator, &err) ||
        fidius_host_load_options_set_interface(options, calculator, &err) ||
        fidius_host_load(host, "BasicCalculator", NT, options, &plugin, &err)) {
        status = fail("loading BasicCalculator", err);
        goto done;
    }

    /* JSON in, JSON out: arguments as a JSON array. */
    if (fidius_host_plugin_call_json(plugin, "add", NT, "[3, 7]", NT, &json, NULL, &err)) {
        status = fail("add", err);
        goto done;
    }
    printf("add(3, 7) = %s\n", json);
    fidius_host_string_free(json);

    /* Raw bytes: a #[wire(raw)] method gets and returns bytes as they are. */
    if (fidius_host_interface_method_index(calculator, "reverse", NT, &reverse, &err) ||
        fidius_host_plugin_call(plugin, reverse, (const uint8_t *)"fidius", 6, &out, &err)) {
        status = fail("reverse", err);
        goto done;
    }
    printf("reverse(\"fidius\") = \"%.*s\"\n", (int)out.len, (const char *)out.data);
    fidius_host_bytes_free(&out);

    /* A plugin's own error: its code, message and details. */
    if (fidius_host_plugin_call_json(plugin, "divide", NT, "[1, 0]", NT, &json, NULL, &err) ==
        FIDIUS_HOST_STATUS_PLUGIN_ERROR) {
        printf("divide(1, 0) failed: code %s, message \"%s\", details %s\n", fidius_host_error_plugin_code(err),
               fidius_host_error_plugin_message(err), fidius_host_error_plugin_details(err));
        fidius_host_error_free(err);
        status = 0;
    }

done:
    fidius_host_plugin_free(plugin);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(calculator);
    fidius_host_free(host);
    return status;
}
