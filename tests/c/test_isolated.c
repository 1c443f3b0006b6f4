/*
 * Isolated plugins through the C API: the Faulty fixture (native, and
 * Python when built in) in a worker process. A segfault in the plugin is a
 * WORKER_LOST call, the host and its other plugins live on, the next call
 * gets a restarted worker; an endless loop is a TIMEOUT, or CANCELLED
 * through a cancel token; the restart policy, the worker usage figures and
 * the statuses of bad settings.
 */
#define _POSIX_C_SOURCE 200809L /* kill */
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

static const char *worker_path(void) {
    return path_of("../release/fidius-host-worker");
}

static fidius_host_t *isolated_host(uint32_t max_restarts, uint64_t deadline_ms) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, worker_path(), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_restart_policy(b, max_restarts, 60000, NULL) == FIDIUS_HOST_STATUS_OK);
    if (deadline_ms) CHECK(fidius_host_builder_set_call_deadline_ms(b, deadline_ms, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

static fidius_host_plugin_t *load_faulty(const fidius_host_t *host, const char *relative) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("faulty.toml");
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, &plugin, &err) == FIDIUS_HOST_STATUS_OK);
    if (err) fprintf(stderr, "  load %s: %s\n", relative, fidius_host_error_message(err));
    fidius_host_error_free(err);
    fidius_host_interface_free(iface);
    fidius_host_load_options_free(options);
    return plugin;
}

static fidius_host_worker_usage_t usage_of(const fidius_host_plugin_t *plugin) {
    fidius_host_worker_usage_t usage;
    CHECK(fidius_host_plugin_worker_usage(plugin, &usage, NULL) == FIDIUS_HOST_STATUS_OK);
    return usage;
}

/* One runtime's Faulty plugin: answers, a plugin error, a segfault, the
 * restart, and a bystander that never noticed. */
static void exercise(const char *relative) {
    fidius_host_t *host = isolated_host(5, 0);
    fidius_host_plugin_t *plugin = load_faulty(host, relative), *bystander = load_faulty(host, relative);
    fidius_host_worker_usage_t before, after;
    fidius_host_bytes_t out;
    uint8_t raw[3] = {1, 2, 3};

    fprintf(stderr, "  %s\n", relative);
    if (!plugin || !bystander) goto done;
    CHECK(json_is(plugin, "ping", "[41]", "42"));
    CHECK(json_is(plugin, "calls", "[]", "1"));
    CHECK(fidius_host_plugin_call(plugin, 3, raw, sizeof raw, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 3 && memcmp(out.data, raw, 3) == 0);
    fidius_host_bytes_free(&out);
    CHECK(json_fails(plugin, "fault", "[\"error\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "ASKED"));

    before = usage_of(plugin);
    CHECK(before.pid > 0 && before.restarts == 0 && before.calls == 4 && before.errors == 1);
    CHECK(usage_of(bystander).pid != before.pid);

    CHECK(json_fails(plugin, "fault", "[\"segfault\"]", FIDIUS_HOST_STATUS_WORKER_LOST, "SIGSEGV"));
    after = usage_of(plugin);
    CHECK(after.pid == 0 && after.errors == 2);
    /* The next call restarts the worker: a fresh instance, state lost. */
    CHECK(json_is(plugin, "calls", "[]", "0"));
    after = usage_of(plugin);
    CHECK(after.pid > 0 && after.pid != before.pid && after.restarts == 1);
    CHECK(json_is(bystander, "ping", "[1]", "2"));
    CHECK(usage_of(bystander).restarts == 0);

    /* Killed from outside between calls: the next call finds it gone. */
    kill((pid_t)after.pid, SIGKILL);
    CHECK(json_fails(plugin, "ping", "[1]", FIDIUS_HOST_STATUS_WORKER_LOST, "SIGKILL"));
    CHECK(json_is(plugin, "ping", "[2]", "3"));
done:
    fidius_host_plugin_free(plugin);
    fidius_host_plugin_free(bystander);
    fidius_host_free(host);
}

static void test_runtimes(void) {
    exercise("faulty/libfaulty_plugin.so");
    if (FIDIUS_HOST_BUILT_WITH_PYTHON) exercise("isolated/py-faulty");
}

static void test_deadline_and_policy(void) {
    fidius_host_t *host = isolated_host(0, 300);
    fidius_host_plugin_t *plugin = load_faulty(host, "faulty/libfaulty_plugin.so");
    fidius_host_worker_usage_t usage;
    if (!plugin) goto done;
    CHECK(usage_of(plugin).peak_memory_bytes > 0); /* the running worker's, so far */
    CHECK(json_fails(plugin, "fault", "[\"spin\"]", FIDIUS_HOST_STATUS_TIMEOUT, "killed"));
    usage = usage_of(plugin);
    CHECK(usage.timeouts == 1 && usage.pid == 0);
    CHECK(usage.cpu_time_us >= 50000); /* it spun until it was killed */
    /* Restart policy 0: the plugin stays lost and says why. */
    CHECK(json_fails(plugin, "ping", "[1]", FIDIUS_HOST_STATUS_WORKER_LOST, "restart policy"));
    CHECK(usage_of(plugin).restarts == 0);
done:
    fidius_host_plugin_free(plugin);
    fidius_host_free(host);
}

static void test_settings(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_worker_usage_t usage = {1, 1, 1, 1, 1, 1, 1};

    CHECK(fidius_host_builder_set_isolation(b, 7, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "isolation 7"));
    CHECK(fidius_host_builder_set_restart_policy(b, 3, 0, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "window"));
    CHECK(fidius_host_builder_set_worker_path(b, "", NT, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    fidius_host_error_free(err);
    err = NULL;
    CHECK(fidius_host_builder_set_worker_path(b, path_of("no-such-worker"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_memory_limit(b, 1u << 30, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_cpu_limit(b, 60, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    /* In-process by default: no worker is needed, none is asked for. */
    plugin = load_faulty(host, "faulty/libfaulty_plugin.so");
    CHECK(plugin && fidius_host_plugin_worker_usage(plugin, &usage, &err) == FIDIUS_HOST_STATUS_UNSUPPORTED);
    CHECK(usage.calls == 0 && usage.pid == 0 && usage.cpu_time_us == 0 && usage.peak_memory_bytes == 0);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_UNSUPPORTED, "in-process"));
    {
        uint64_t high = 1;
        CHECK(fidius_host_plugin_memory_high_water(plugin, &high, &err) == FIDIUS_HOST_STATUS_UNSUPPORTED);
        CHECK(high == 0 && error_says(err, FIDIUS_HOST_STATUS_UNSUPPORTED, "not a WASM plugin"));
    }
    fidius_host_plugin_free(plugin);
    plugin = NULL;
    /* Isolated through the load options: the missing worker is named. */
    CHECK(fidius_host_load_options_set_isolation(options, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_restart_policy(options, 0, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_isolation(options, 2, NULL) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(fidius_host_load_path(host, path_of("faulty/libfaulty_plugin.so"), NT, NULL, 0, options, &plugin, &err) ==
          FIDIUS_HOST_STATUS_WORKER_UNAVAILABLE);
    CHECK(plugin == NULL && error_says(err, FIDIUS_HOST_STATUS_WORKER_UNAVAILABLE, "no-such-worker"));
    CHECK(strcmp(fidius_host_status_name(FIDIUS_HOST_STATUS_WORKER_LOST), "WORKER_LOST") == 0);
    fidius_host_load_options_free(options);
    fidius_host_free(host);
}

/* A cancel token: its life, its misuse, and calls it stops. An isolated
 * call is cancelled by killing its worker, which even a no-restart policy
 * replaces; in-process native calls cannot be cancelled and say so first. */
static void test_cancel(void) {
    fidius_host_t *isolated = isolated_host(0, 0), *in_process = NULL;
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_plugin_t *plugin = load_faulty(isolated, "faulty/libfaulty_plugin.so"), *native = NULL;
    fidius_host_cancel_token_t *token = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out = {(uint8_t *)"not reset", 9, NULL};
    char *json = (char *)"not reset";
    uint8_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0}; /* ping(1) */

    CHECK(fidius_host_cancel_token_new(NULL, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "out"));
    CHECK(fidius_host_cancel_token_new(&token, NULL) == FIDIUS_HOST_STATUS_OK && token != NULL);
    CHECK(!fidius_host_cancel_token_is_cancelled(token) && !fidius_host_cancel_token_is_cancelled(NULL));
    CHECK(fidius_host_cancel_token_cancel(NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_cancel_token_cancel((const fidius_host_cancel_token_t *)plugin) == FIDIUS_HOST_STATUS_MISUSE);
    fidius_host_cancel_token_free(NULL);

    if (plugin) {
        CHECK(json_cancelled(plugin, "fault", "[\"spin\"]", 300, "worker process was killed"));
        CHECK(usage_of(plugin).pid == 0);
        CHECK(json_is(plugin, "calls", "[]", "0")); /* a new worker: restart policy 0 counts no cancel */
        CHECK(usage_of(plugin).restarts == 1);
        /* A live token: the call runs. */
        CHECK(fidius_host_plugin_call_cancellable(plugin, 0, one, sizeof one, NULL, token, &out, NULL) ==
              FIDIUS_HOST_STATUS_OK);
        CHECK(out.len == 8 && out.data[0] == 2);
        fidius_host_bytes_free(&out);
        /* A cancelled token: refused before anything reaches the worker. */
        CHECK(fidius_host_cancel_token_cancel(token) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_cancel_token_cancel(token) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_cancel_token_is_cancelled(token));
        CHECK(fidius_host_plugin_call_cancellable(plugin, 0, one, sizeof one, NULL, token, &out, &err) ==
              FIDIUS_HOST_STATUS_CANCELLED);
        CHECK(out.data == NULL && out.len == 0 && error_says(err, FIDIUS_HOST_STATUS_CANCELLED, "before it started"));
        CHECK(fidius_host_plugin_call_json_cancellable(plugin, "ping", NT, "[1]", NT, NULL, token, &json, NULL, &err) ==
              FIDIUS_HOST_STATUS_CANCELLED);
        CHECK(json == NULL && error_says(err, FIDIUS_HOST_STATUS_CANCELLED, "before it started"));
        CHECK(json_is(plugin, "calls", "[]", "2"));
    }

    CHECK(fidius_host_builder_build(b, &in_process, NULL) == FIDIUS_HOST_STATUS_OK);
    native = load_faulty(in_process, "faulty/libfaulty_plugin.so");
    if (native) {
        fidius_host_cancel_token_t *fresh = NULL;
        CHECK(fidius_host_cancel_token_new(&fresh, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(json_is(native, "calls", "[]", "0"));
        CHECK(fidius_host_plugin_call_json_cancellable(native, "ping", NT, "[1]", NT, NULL, fresh, &json, NULL, &err) ==
              FIDIUS_HOST_STATUS_UNSUPPORTED);
        CHECK(json == NULL && error_says(err, FIDIUS_HOST_STATUS_UNSUPPORTED, "load it isolated"));
        CHECK(fidius_host_plugin_call_cancellable(native, 0, one, sizeof one, NULL, fresh, &out, &err) ==
              FIDIUS_HOST_STATUS_UNSUPPORTED);
        CHECK(error_says(err, FIDIUS_HOST_STATUS_UNSUPPORTED, "in-process"));
        /* Without a token it is an ordinary call. */
        CHECK(fidius_host_plugin_call_json_cancellable(native, "ping", NT, "[1]", NT, NULL, NULL, &json, NULL, NULL) ==
              FIDIUS_HOST_STATUS_OK);
        CHECK(json != NULL && strcmp(json, "2") == 0);
        fidius_host_string_free(json);
        CHECK(json_is(native, "calls", "[]", "2")); /* the refused calls never ran */
        fidius_host_cancel_token_free(fresh);
    }
    fidius_host_cancel_token_free(token);
    fidius_host_plugin_free(native);
    fidius_host_free(in_process);
    fidius_host_plugin_free(plugin);
    fidius_host_free(isolated);
}

/* Discovery in a worker: libraries whose initialisers crash or hang are
 * skipped files with their reason, and the host scans on. */
static void test_discovery_in_worker(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_discovery_t *found = NULL;
    fidius_host_error_t *err = NULL;
    size_t i, crashed = 0, hung = 0, faulty = 0;
    CHECK(fidius_host_builder_set_discovery_isolation(b, 9, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "isolation 9"));
    CHECK(fidius_host_builder_set_discovery_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, worker_path(), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_call_deadline_ms(b, 1500, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_search_path(b, path_of("probe"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_add_search_path(b, path_of("faulty"), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_discover(host, &found, NULL) == FIDIUS_HOST_STATUS_OK);
    for (i = 0; found && i < fidius_host_discovery_skipped_count(found); i++) {
        const char *path = fidius_host_discovery_skipped_path(found, i);
        fidius_host_status status = fidius_host_discovery_skipped_status(found, i);
        if (strstr(path, "libinit_crash.so") && status == FIDIUS_HOST_STATUS_WORKER_LOST &&
            strstr(fidius_host_discovery_skipped_message(found, i), "SIGSEGV"))
            crashed++;
        if (strstr(path, "libinit_hang.so") && status == FIDIUS_HOST_STATUS_TIMEOUT) hung++;
    }
    for (i = 0; found && i < fidius_host_discovery_plugin_count(found); i++)
        if (strcmp(fidius_host_plugin_info_name(fidius_host_discovery_plugin(found, i)), "FaultyNative") == 0) faulty++;
    CHECK(crashed == 1 && hung == 1 && faulty == 1);
    fidius_host_discovery_free(found);
    fidius_host_free(host);
}

/* A worker's memory cap: a plugin that leaks past it loses its worker. */
static void test_memory_cap(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *plugin;
    CHECK(fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, worker_path(), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_memory_limit(b, 768u << 20, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    plugin = load_faulty(host, "faulty/libfaulty_plugin.so");
    if (plugin) {
        CHECK(json_fails(plugin, "fault", "[\"leak\"]", FIDIUS_HOST_STATUS_WORKER_LOST, "memory cap 805306368 bytes"));
        CHECK(json_is(plugin, "ping", "[0]", "1"));
    }
    fidius_host_plugin_free(plugin);
    fidius_host_free(host);
}

/* The worker's entry point, run by hand (descriptor 3 is no socket): it
 * says so and returns 2, touching nothing. */
static void test_worker_main_by_hand(void) {
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    if (fd != 3) {
        CHECK(dup2(fd, 3) == 3);
        close(fd);
    }
    CHECK(fidius_host_worker_main() == 2);
    CHECK(fcntl(3, F_GETFD) != -1); /* nothing was closed */
    close(3);
}

/* A worker confined as asked: no network, no file but its own, and the
 * plugin still answers; unknown bits are refused. */
static void test_hardening(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_error_t *err = NULL;
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *plugin;
    char read_key[8300];

    CHECK(fidius_host_builder_set_worker_hardening(b, 8, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(err && strstr(fidius_host_error_message(err), "unknown bits 0x8"));
    fidius_host_error_free(err);
    CHECK(fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, worker_path(), NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_hardening(b,
                                                   FIDIUS_HOST_WORKER_HARDENING_NO_NEW_PRIVILEGES |
                                                       FIDIUS_HOST_WORKER_HARDENING_DENY_NETWORK |
                                                       FIDIUS_HOST_WORKER_HARDENING_CONFINE_FILESYSTEM,
                                                   NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    plugin = load_faulty(host, "faulty/libfaulty_plugin.so");
    if (plugin) {
        CHECK(json_fails(plugin, "fault", "[\"socket\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR, "Permission denied"));
        snprintf(read_key, sizeof read_key, "[\"read:%s\"]", path_of("keys/trusted.public"));
        CHECK(json_fails(plugin, "fault", read_key, FIDIUS_HOST_STATUS_PLUGIN_ERROR, "Permission denied"));
        CHECK(json_is(plugin, "fault", "[\"privileges\"]", "\"no_new_privs=1\""));
        CHECK(json_is(plugin, "ping", "[41]", "42"));
    }
    fidius_host_plugin_free(plugin);
    fidius_host_free(host);
}

static void run_tests(void) {
    test_worker_main_by_hand();
    test_runtimes();
    test_deadline_and_policy();
    test_cancel();
    test_discovery_in_worker();
    test_settings();
    test_memory_cap();
    test_hardening();
}

int main(void) {
    return check_main(run_tests);
}
