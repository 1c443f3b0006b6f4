/*
 * Configured instances through the C API: the Scaler fixture in each
 * runtime this build has, loaded with a JSON configuration, more instances
 * made from bincode and JSON, and the statuses of a missing, malformed or
 * refused configuration.
 */
#include "check.h"

/* bincode of ScaleConfig { factor, label, mode } (mode 0 Quiet, 1 Loud). */
static size_t scale_config(uint8_t *out, int64_t factor, const char *label, uint32_t mode) {
    uint64_t len = strlen(label);
    memcpy(out, &factor, 8);
    memcpy(out + 8, &len, 8);
    memcpy(out + 16, label, len);
    memcpy(out + 16 + len, &mode, 4);
    return 16 + len + 4;
}

static void test_interface_config_type(void) {
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_interface_t *iface = interface_file("scaler.toml"), *built = NULL;
    fidius_host_error_t *err = NULL;

    CHECK(iface && strcmp(fidius_host_interface_config_type(iface), "ScaleConfig") == 0);
    CHECK(fidius_host_interface_config_type(NULL) == NULL);
    fidius_host_interface_free(iface);

    CHECK(fidius_host_interface_builder_new("Scaler", NT, 1, &b, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(b, "scale:i64->i64", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_set_config_type(b, "Vec<", NT, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "config type"));
    CHECK(fidius_host_interface_builder_set_config_type(b, "Missing", NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(b, &built, &err) == FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_INTERFACE, "Missing"));
    CHECK(fidius_host_interface_builder_set_config_type(b, "Vec < String >", NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(b, &built, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(built && strcmp(fidius_host_interface_config_type(built), "Vec<String>") == 0);
    fidius_host_interface_free(built);
    fidius_host_interface_builder_free(b);
}

/* One runtime's Scaler at `relative`. */
static void exercise(const char *relative) {
    fidius_host_t *host = NULL;
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("scaler.toml");
    fidius_host_plugin_t *first = NULL, *second = NULL, *third = NULL, *none = NULL;
    fidius_host_error_t *err = NULL;
    uint8_t config[64];
    size_t len;

    fprintf(stderr, "  %s\n", relative);
    CHECK(fidius_host_builder_build(builder, &host, NULL) == FIDIUS_HOST_STATUS_OK); /* consumes builder */
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);

    /* Without a configuration: the declared type asks for one. */
    CHECK(fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, &none, &err) ==
          FIDIUS_HOST_STATUS_CONFIG_REQUIRED);
    CHECK(none == NULL && error_says(err, FIDIUS_HOST_STATUS_CONFIG_REQUIRED, "ScaleConfig"));

    /* A JSON configuration that is not a ScaleConfig. */
    CHECK(fidius_host_load_options_set_config_json(options, "{\"factor\": 1}", NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, &none, &err) ==
          FIDIUS_HOST_STATUS_CONFIG_INVALID);
    CHECK(none == NULL && error_says(err, FIDIUS_HOST_STATUS_CONFIG_INVALID, "label"));

    CHECK(fidius_host_load_options_set_config_json(options, "{\"factor\": 3, \"label\": \"abc\", \"mode\": \"Loud\"}",
                                                   NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, &first, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(first && json_is(first, "scale", "[5]", "15") && json_is(first, "label", "[]", "\"ABC\""));
    CHECK(first && json_is(first, "bump", "[]", "1"));

    /* More instances, each with its own configuration and state. */
    len = scale_config(config, -2, "xy", 0);
    CHECK(fidius_host_plugin_new_instance(first, config, len, &second, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(second && json_is(second, "scale", "[5]", "-10") && json_is(second, "bump", "[]", "1"));
    CHECK(json_is(first, "bump", "[]", "2"));
    CHECK(fidius_host_plugin_new_instance_json(second, "{\"factor\": 1, \"label\": \"q\", \"mode\": \"Quiet\"}", NT,
                                               &third, NULL) == FIDIUS_HOST_STATUS_OK);

    /* Malformed configurations create nothing. */
    CHECK(fidius_host_plugin_new_instance(first, config, len - 1, &none, &err) == FIDIUS_HOST_STATUS_CONFIG_INVALID);
    CHECK(none == NULL && error_says(err, FIDIUS_HOST_STATUS_CONFIG_INVALID, "ScaleConfig"));
    CHECK(fidius_host_plugin_new_instance_json(first, "{", NT, &none, &err) == FIDIUS_HOST_STATUS_INVALID_JSON);
    CHECK(none == NULL && error_says(err, FIDIUS_HOST_STATUS_INVALID_JSON, "JSON"));
    CHECK(fidius_host_plugin_new_instance_json(first, "\"\xff\"", NT, &none, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_plugin_new_instance(NULL, config, len, &none, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_new_instance(first, NULL, 4, &none, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_plugin_new_instance(first, config, len, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);

    /* Instances outlive the handle they came from, and the host. */
    fidius_host_plugin_free(first);
    fidius_host_free(host);
    CHECK(third && json_is(third, "scale", "[5]", "5") && json_is(third, "label", "[]", "\"q\""));
    fidius_host_plugin_free(second);
    CHECK(third && json_is(third, "bump", "[]", "1"));
    fidius_host_plugin_free(third);

    /* A cleared configuration is no configuration. */
    CHECK(fidius_host_load_options_clear_config(options, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_config(options, NULL, 1, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
}

/* A cdylib's construct refuses bytes it cannot decode when no type checks them. */
static void test_cdylib_refusal(void) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    const uint8_t junk[3] = {1, 2, 3};

    CHECK(fidius_host_builder_build(builder, &host, NULL) == FIDIUS_HOST_STATUS_OK); /* consumes builder */
    CHECK(fidius_host_load_path(host, path_of("configured/libscaler_plugin.so"), NT, NULL, 0, NULL, &p, &err) ==
          FIDIUS_HOST_STATUS_CONSTRUCT_FAILED);
    CHECK(p == NULL && error_says(err, FIDIUS_HOST_STATUS_CONSTRUCT_FAILED, "construct returned NULL"));
    CHECK(fidius_host_load_options_set_config(options, junk, sizeof junk, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of("configured/libscaler_plugin.so"), NT, NULL, 0, options, &p, &err) ==
          FIDIUS_HOST_STATUS_CONFIG_REJECTED);
    CHECK(p == NULL && error_says(err, FIDIUS_HOST_STATUS_CONFIG_REJECTED, "could not decode"));
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* A Python __fidius_configure__ that raises: the plugin's code travels. */
static void test_python_refusal(void) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("scaler.toml");
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;

    CHECK(fidius_host_builder_build(builder, &host, NULL) == FIDIUS_HOST_STATUS_OK); /* consumes builder */
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_config_json(options, "{\"factor\": 0, \"label\": \"z\", \"mode\": \"Quiet\"}",
                                                   NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of("configured/python-scaler"), NT, NULL, 0, options, &p, &err) ==
          FIDIUS_HOST_STATUS_CONFIG_REJECTED);
    CHECK(p == NULL && err != NULL);
    if (err) {
        CHECK(strcmp(fidius_host_error_plugin_code(err), "ZERO_FACTOR") == 0);
        CHECK(strstr(fidius_host_error_plugin_details(err), "factor") != NULL);
        fidius_host_error_free(err);
    }
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
    fidius_host_free(host);
}

static void run_tests(void) {
    test_interface_config_type();
    exercise("configured/libscaler_plugin.so");
    test_cdylib_refusal();
    if (FIDIUS_HOST_BUILT_WITH_WASM) exercise("configured/wasm-scaler");
    if (FIDIUS_HOST_BUILT_WITH_PYTHON) {
        exercise("configured/python-scaler");
        test_python_refusal();
    }
}

int main(void) { return check_main(run_tests); }
