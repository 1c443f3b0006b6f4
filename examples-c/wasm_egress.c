/*
 * wasm_egress: WebAssembly plugins in their sandbox. Outbound HTTP goes
 * through an egress callback that sees every request; a guest that loops
 * forever or eats memory is stopped by the call deadline and memory cap.
 *
 *   usage: wasm_egress <wasm-folder> <fetcher.toml> <hostile.toml>
 */
#include "fidius_host.h"

#include <stdio.h>
#include <string.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

/* Allows GET requests to api.example.com only; logs every request. */
static int32_t egress_policy(void *userdata, const fidius_host_http_request_t *request) {
    int *asked = userdata;
    int allow = strcmp(request->method, "GET") == 0 && strcmp(request->host, "api.example.com") == 0;
    (*asked)++;
    printf("  policy: %s %s://%s%s from %s -> %s\n", request->method, request->scheme, request->authority,
           request->path_with_query, request->plugin, allow ? "allow" : "deny");
    return allow ? FIDIUS_HOST_EGRESS_DECISION_ALLOW : FIDIUS_HOST_EGRESS_DECISION_DENY;
}

static fidius_host_plugin_t *load(const fidius_host_t *host, const char *name, const char *interface_file,
                                  const fidius_host_egress_policy_t *policy, uint64_t deadline_ms) {
    fidius_host_interface_t *interface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    if (fidius_host_interface_new_from_file(interface_file, NT, &interface, &err) ||
        fidius_host_load_options_set_interface(options, interface, &err) ||
        fidius_host_load_options_set_egress_policy(options, policy, &err) ||
        fidius_host_load_options_set_wasm_deadline_ms(options, deadline_ms, &err) ||
        fidius_host_load(host, name, NT, options, &plugin, &err)) {
        fprintf(stderr, "loading %s: %s\n", name, fidius_host_error_message(err));
        fidius_host_error_free(err);
    }
    fidius_host_interface_free(interface);
    fidius_host_load_options_free(options);
    return plugin;
}

/* Calls `method`; prints the result or the error. */
static void call(const fidius_host_plugin_t *plugin, const char *method, const char *args) {
    char *json = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status status = fidius_host_plugin_call_json(plugin, method, NT, args, NT, &json, NULL, &err);
    if (status == FIDIUS_HOST_STATUS_OK)
        printf("%s%s = %s\n", method, args, json);
    else
        printf("%s%s failed: %s: %s\n", method, args, fidius_host_status_name(status),
               status == FIDIUS_HOST_STATUS_PLUGIN_ERROR ? fidius_host_error_plugin_message(err)
                                                         : fidius_host_error_message(err));
    fidius_host_string_free(json);
    fidius_host_error_free(err);
}

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_egress_policy_t *policy = NULL;
    fidius_host_plugin_t *fetch, *hostile;
    fidius_host_t *host = NULL;
    char *method = NULL, *url = NULL;
    int asked = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <wasm-folder> <fetcher.toml> <hostile.toml>\n", argv[0]);
        fidius_host_builder_free(builder);
        return 2;
    }
    if (fidius_host_builder_add_search_path(builder, argv[1], NT, NULL) ||
        fidius_host_builder_set_wasm_memory_limit(builder, 32u << 20, NULL)) { /* 32 MiB per guest */
        fidius_host_builder_free(builder);
        return 1;
    }
    if (fidius_host_builder_build(builder, &host, NULL)) return 1;
    if (fidius_host_egress_policy_new_callback(egress_policy, &asked, NULL, &policy, NULL)) return 1;

    /* The fetch guest declares the `http` capability; without a policy it
     * would not load at all. */
    fetch = load(host, "FetchGuest", argv[2], policy, 2000);
    if (fetch == NULL) return 1;
    call(fetch, "fetch", "[\"POST\", \"http://api.example.com/upload\"]");
    call(fetch, "fetch", "[\"GET\", \"http://169.254.169.254/latest/meta-data\"]");
    printf("denied requests: %zu\n", fidius_host_plugin_denied_request_count(fetch));
    if (fidius_host_plugin_denied_request(fetch, 0, &method, &url, NULL) == FIDIUS_HOST_STATUS_OK)
        printf("  first: %s %s\n", method, url);
    fidius_host_string_free(method);
    fidius_host_string_free(url);

    /* Limits: a 100 ms deadline for this load, the host's 32 MiB cap. */
    hostile = load(host, "HostileGuest", argv[3], NULL, 100);
    if (hostile == NULL) return 1;
    call(hostile, "spin", "[]");
    call(hostile, "hog", "[64]");
    call(hostile, "counter", "[]"); /* the handle keeps working, on a fresh instance */

    fidius_host_plugin_free(fetch);
    fidius_host_plugin_free(hostile);
    fidius_host_egress_policy_free(policy);
    fidius_host_free(host);
    return asked == 2 ? 0 : 1;
}
