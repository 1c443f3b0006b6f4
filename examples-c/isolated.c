/*
 * isolated: run a native plugin in a worker process, so that its crash is a
 * failed call (WORKER_LOST) and not the end of this program; the next call
 * gets a restarted worker. The plugin used is the Faulty test fixture,
 * which segfaults when asked to.
 *
 *   usage: isolated <libfaulty_plugin.so> <faulty.toml>
 */
#include "fidius_host.h"

#include <stdio.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

static int fail(const char *what, fidius_host_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, fidius_host_error_message(err));
    fidius_host_error_free(err);
    return 1;
}

/* Calls `method` with JSON `args` and prints what happened. */
static fidius_host_status call(const fidius_host_plugin_t *plugin, const char *method, const char *args) {
    char *json = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status status = fidius_host_plugin_call_json(plugin, method, NT, args, NT, &json, NULL, &err);
    if (status == FIDIUS_HOST_STATUS_OK)
        printf("%s(%s) = %s\n", method, args, json);
    else
        printf("%s(%s) failed: %s (%s)\n", method, args, fidius_host_status_name(status), fidius_host_error_message(err));
    fidius_host_string_free(json);
    fidius_host_error_free(err);
    return status;
}

int main(int argc, char **argv) {
    fidius_host_builder_t *builder = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_interface_t *faulty = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_worker_usage_t usage;
    int ok;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <libfaulty_plugin.so> <faulty.toml>\n", argv[0]);
        fidius_host_builder_free(builder);
        fidius_host_load_options_free(options);
        return 2;
    }
    /* Every native and Python plugin of this host in a worker of its own;
     * a call has 2 s before its worker is killed; 5 restarts a minute. */
    if (fidius_host_builder_set_isolation(builder, FIDIUS_HOST_ISOLATION_ISOLATED, &err) ||
        fidius_host_builder_set_call_deadline_ms(builder, 2000, &err) ||
        fidius_host_builder_set_restart_policy(builder, 5, 60000, &err) ||
        fidius_host_builder_build(builder, &host, &err) ||
        fidius_host_interface_new_from_file(argv[2], NT, &faulty, &err) ||
        fidius_host_load_options_set_interface(options, faulty, &err) ||
        fidius_host_load_path(host, argv[1], NT, NULL, 0, options, &plugin, &err)) {
        fidius_host_interface_free(faulty);
        fidius_host_load_options_free(options);
        fidius_host_free(host);
        return fail("isolated", err);
    }

    ok = call(plugin, "ping", "[41]") == FIDIUS_HOST_STATUS_OK;
    /* The plugin dereferences a bad pointer: its worker dies, we do not. */
    ok &= call(plugin, "fault", "[\"segfault\"]") == FIDIUS_HOST_STATUS_WORKER_LOST;
    /* A new worker serves the next call (the plugin's state started over). */
    ok &= call(plugin, "calls", "[]") == FIDIUS_HOST_STATUS_OK;
    if (fidius_host_plugin_worker_usage(plugin, &usage, &err)) {
        ok = 0;
        fail("worker usage", err);
    } else {
        printf("worker %d: %llu calls, %llu failed, %llu restart(s)\n", (int)usage.pid, (unsigned long long)usage.calls,
               (unsigned long long)usage.errors, (unsigned long long)usage.restarts);
    }

    fidius_host_plugin_free(plugin); /* ends its worker */
    fidius_host_interface_free(faulty);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
    return ok ? 0 : 1;
}
