/*
 * host_functions: a plugin that calls back into its host. The Bookkeeper
 * plugin imports the host interface Ledger (log, lookup, charge); this
 * program answers those calls with one JSON callback, and tells it which
 * request each call serves through the call context.
 *
 *   usage: host_functions <libhostcall_plugin.so> <bookkeeper.toml> <ledger.toml>
 */
#include "fidius_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

/* What a request of this program is: the callbacks see it as the context. */
struct request {
    const char *who;
    int lines_logged;
};

static char *copy(const char *text) {
    char *out = malloc(strlen(text) + 1);
    if (out) strcpy(out, text);
    return out;
}

/* Ledger's three methods, in JSON. `balance` is the userdata. */
static uint32_t ledger(void *userdata, void *call_context, uint32_t method, const char *args, size_t args_len,
                       char **result, size_t *result_len, fidius_host_callback_error_t *error) {
    long *balance = userdata;
    struct request *request = call_context; /* NULL on a thread the plugin started */
    char account[64];
    long cents = 0;
    (void)args_len;
    (void)result_len; /* results are NUL-terminated */
    switch (method) {
    case 0: /* log(line) */
        printf("  [%s] log %s\n", request ? request->who : "plugin thread", args);
        if (request) request->lines_logged++;
        return FIDIUS_HOST_STATUS_OK;
    case 1: /* lookup(key) -> Option<u64> */
        *result = copy(strcmp(args, "[\"answer\"]") == 0 ? "41" : "null");
        return FIDIUS_HOST_STATUS_OK;
    default: /* charge(account, cents) -> Result<u64, PluginError> */
        if (sscanf(args, "[\"%63[^\"]\",%ld]", account, &cents) != 2) return FIDIUS_HOST_STATUS_INVALID_ARGUMENT;
        if (cents > *balance) {
            /* The plugin receives this as its PluginError. */
            return fidius_host_callback_error_set(error, "NO_FUNDS", "the account cannot pay", NULL, NULL)
                       ? FIDIUS_HOST_STATUS_INTERNAL_PANIC
                       : FIDIUS_HOST_STATUS_PLUGIN_ERROR;
        }
        *balance -= cents;
        {
            char text[32];
            snprintf(text, sizeof text, "%ld", *balance);
            *result = copy(text);
        }
        return FIDIUS_HOST_STATUS_OK;
    }
}

static void free_result(void *userdata, void *result, size_t len) {
    (void)userdata;
    (void)len;
    free(result);
}

static void call(const fidius_host_plugin_t *plugin, const char *method, const char *args, struct request *request) {
    char *json = NULL;
    fidius_host_error_t *err = NULL;
    if (fidius_host_plugin_call_json_with_context(plugin, method, NT, args, NT, request, &json, NULL, &err) ==
        FIDIUS_HOST_STATUS_OK)
        printf("%s(%s) = %s\n", method, args, json);
    else
        printf("%s(%s) failed: %s (%s)\n", method, args, fidius_host_error_plugin_code(err),
               fidius_host_error_message(err));
    fidius_host_string_free(json);
    fidius_host_error_free(err);
}

int main(int argc, char **argv) {
    fidius_host_t *host = NULL;
    fidius_host_interface_t *bookkeeper = NULL, *ledger_interface = NULL;
    fidius_host_binding_t *binding = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    struct request alice = {"alice", 0};
    long balance = 1000;
    size_t i, count;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <libhostcall_plugin.so> <bookkeeper.toml> <ledger.toml>\n", argv[0]);
        return 2;
    }
    if (fidius_host_builder_build(fidius_host_builder_new(), &host, &err) ||
        fidius_host_interface_new_from_file(argv[2], NT, &bookkeeper, &err) ||
        fidius_host_interface_new_from_file(argv[3], NT, &ledger_interface, &err) ||
        fidius_host_binding_new_json(ledger_interface, ledger, free_result, &balance, NULL, &binding, &err) ||
        fidius_host_load_options_set_interface(options, bookkeeper, &err) ||
        fidius_host_load_options_add_binding(options, binding, &err) ||
        fidius_host_load_path(host, argv[1], NT, NULL, 0, options, &plugin, &err)) {
        fprintf(stderr, "setup: %s\n", fidius_host_error_message(err));
        return 1;
    }
    /* Before binding, a program can ask what a plugin imports. */
    count = fidius_host_plugin_host_import_count(plugin);
    for (i = 0; i < count; i++) {
        const char *name = NULL;
        uint32_t version = 0;
        uint64_t hash = 0;
        if (fidius_host_plugin_host_import(plugin, i, &name, &version, &hash, NULL) == FIDIUS_HOST_STATUS_OK)
            printf("imports %s v%u (hash %#llx)\n", name, version, (unsigned long long)hash);
    }

    call(plugin, "record", "[\"hello\", 2]", &alice);
    printf("alice's request logged %d lines\n", alice.lines_logged);
    call(plugin, "lookup_plus_one", "[\"answer\"]", &alice);
    call(plugin, "charge_from_thread", "[\"alice\", 250]", &alice);
    call(plugin, "charge_from_thread", "[\"alice\", 5000]", &alice);

    fidius_host_plugin_free(plugin);
    fidius_host_load_options_free(options);
    fidius_host_binding_free(binding);
    fidius_host_interface_free(bookkeeper);
    fidius_host_interface_free(ledger_interface);
    fidius_host_free(host);
    return alice.lines_logged == 2 && balance == 750 ? 0 : 1;
}
