/*
 * The hand-written half of the NULL-argument test; gen_null_args.py writes
 * the cases and includes this file first. Here: a valid object of each
 * handle type (make_<type>, found by name by the generator), the checks
 * every case shares, and a runner that gives each case its own process.
 * Functions are static inline because a given header may leave some of
 * them unused, which -Werror would refuse for plain static functions.
 */
#ifndef FIDIUS_HOST_NULL_ARGS_SUPPORT_H
#define FIDIUS_HOST_NULL_ARGS_SUPPORT_H

#define _POSIX_C_SOURCE 200809L /* fork, alarm, strsignal under -std=c99 */

#include "fidius_host.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT FIDIUS_HOST_NUL_TERMINATED
#define CASE_TIMEOUT_SECONDS 5

/* Out-params start as SENTINEL so that "left unwritten" is visible. */
static char sentinel_object;
#define SENTINEL ((void *)&sentinel_object)

/* Set when a make_* could not make its object (e.g. no fixtures): the case
 * then only checks that nothing crashes, since a NULL we did not choose
 * may be what the library reports. */
static int degraded;

static const char *case_name;
static char reasons[2048];

static inline void fail(const char *fmt, ...) {
    size_t used = strlen(reasons);
    va_list ap;
    if (used > 0 && used < sizeof reasons - 2) {
        strcat(reasons, "; ");
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(reasons + used, sizeof reasons - used, fmt, ap);
    va_end(ap);
}

/* `relative` in $FIDIUS_TEST_FIXTURES (one static buffer: use at once). */
static inline const char *fixture(const char *relative) {
    static char buf[4096];
    const char *dir = getenv("FIDIUS_TEST_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "", relative);
    return buf;
}

/* ---- a valid object of each handle type --------------------------------- */

/* Small enough to need no fixture; the plugin gets the fixture's own file. */
static const char calc_toml[] = "name = \"Calculator\"\nversion = 2\n"
                                "[[methods]]\nsignature = \"add:i64,i64->i64\"\n";

static inline fidius_host_builder_t *make_builder(void) { return fidius_host_builder_new(); }

static inline fidius_host_t *make_host(void) {
    fidius_host_t *host = NULL;
    return fidius_host_builder_build(fidius_host_builder_new(), &host, NULL) == FIDIUS_HOST_STATUS_OK ? host : NULL;
}

static inline fidius_host_discovery_t *make_discovery(void) {
    fidius_host_discovery_t *discovery = NULL;
    return fidius_host_discover(make_host(), &discovery, NULL) == FIDIUS_HOST_STATUS_OK ? discovery : NULL;
}

static inline fidius_host_egress_policy_t *make_egress_policy(void) {
    fidius_host_egress_policy_t *policy = NULL;
    return fidius_host_egress_policy_new_allow_list(NULL, 0, &policy, NULL) == FIDIUS_HOST_STATUS_OK ? policy : NULL;
}

static inline fidius_host_error_t *make_error(void) {
    fidius_host_error_t *err = NULL;
    return fidius_host_builder_add_search_path(NULL, "x", NT, &err) == FIDIUS_HOST_STATUS_NULL_ARGUMENT ? err : NULL;
}

static inline fidius_host_interface_builder_t *make_interface_builder(void) {
    fidius_host_interface_builder_t *builder = NULL;
    return fidius_host_interface_builder_new("Calculator", NT, 2, &builder, NULL) == FIDIUS_HOST_STATUS_OK ? builder : NULL;
}

static inline fidius_host_interface_t *make_interface(void) {
    fidius_host_interface_t *iface = NULL;
    return fidius_host_interface_new_from_toml(calc_toml, NT, &iface, NULL) == FIDIUS_HOST_STATUS_OK ? iface : NULL;
}

static inline fidius_host_load_options_t *make_load_options(void) { return fidius_host_load_options_new(); }

static inline fidius_host_cancel_token_t *make_cancel_token(void) {
    fidius_host_cancel_token_t *token = NULL;
    return fidius_host_cancel_token_new(&token, NULL) == FIDIUS_HOST_STATUS_OK ? token : NULL;
}

static char why_no_plugin[1024];

/* Loaded with the fixture's interface file, so JSON calls reach their
 * output checks. NULL without fixtures, or when loading fails (the reason
 * goes to why_no_plugin). */
static inline fidius_host_plugin_t *make_plugin(void) {
    fidius_host_interface_t *iface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    if (getenv("FIDIUS_TEST_FIXTURES") == NULL) {
        snprintf(why_no_plugin, sizeof why_no_plugin, "FIDIUS_TEST_FIXTURES is not set");
        return NULL;
    }
    if (fidius_host_interface_new_from_file(fixture("interfaces/calculator.toml"), NT, &iface, &err) ==
        FIDIUS_HOST_STATUS_OK &&
        fidius_host_load_options_set_interface(options, iface, &err) == FIDIUS_HOST_STATUS_OK &&
        fidius_host_load_path(make_host(), fixture("plugins/libcalc_plugin.so"), NT, "BasicCalculator", NT, options,
                              &plugin, &err) != FIDIUS_HOST_STATUS_OK)
        plugin = NULL;
    if (plugin == NULL)
        snprintf(why_no_plugin, sizeof why_no_plugin, "%s", err ? fidius_host_error_message(err) : "no error");
    fidius_host_error_free(err);
    return plugin;
}

static inline const fidius_host_plugin_info_t *make_plugin_info(void) { return fidius_host_plugin_info(make_plugin()); }

/* Not a NULL case: whether every make_* works. A broken one would quietly
 * turn its cases into "no crash" checks; this makes it one visible failure
 * (only skipped for the plugin when there are no fixtures at all). */
static inline void check_factories(void) {
    if (make_builder() == NULL) fail("make_builder() gave NULL");
    if (make_host() == NULL) fail("make_host() gave NULL");
    if (make_discovery() == NULL) fail("make_discovery() gave NULL");
    if (make_egress_policy() == NULL) fail("make_egress_policy() gave NULL");
    if (make_error() == NULL) fail("make_error() gave NULL");
    if (make_interface_builder() == NULL) fail("make_interface_builder() gave NULL");
    if (make_interface() == NULL) fail("make_interface() gave NULL");
    if (make_load_options() == NULL) fail("make_load_options() gave NULL");
    if (make_cancel_token() == NULL) fail("make_cancel_token() gave NULL");
    if (getenv("FIDIUS_TEST_FIXTURES") != NULL && make_plugin_info() == NULL)
        fail("make_plugin() gave NULL: %s", why_no_plugin);
}

/* ---- checks after a call ------------------------------------------------ */

static inline void expect_null_argument(fidius_host_status st) {
    if (!degraded && st != FIDIUS_HOST_STATUS_NULL_ARGUMENT)
        fail("returned %s, want NULL_ARGUMENT", fidius_host_status_name(st));
}

/* The header: "On failure, pointer out-params are NULL". */
static inline void check_out(fidius_host_status st, const void *value, const char *name) {
    if (st != FIDIUS_HOST_STATUS_OK && value != NULL)
        fail("*%s %s after %s, want NULL", name, value == SENTINEL ? "left unwritten" : "set",
             fidius_host_status_name(st));
    if (st == FIDIUS_HOST_STATUS_OK && value == SENTINEL)
        fail("*%s left unwritten on success", name);
}

/* The header: *err is NULL on success, a new error object on failure. */
static inline void check_err(fidius_host_status st, fidius_host_error_t *err) {
    const char *message;
    if (err == SENTINEL) {
        fail("*err left unwritten after %s", fidius_host_status_name(st));
        return;
    }
    if (st == FIDIUS_HOST_STATUS_OK) {
        if (err != NULL)
            fail("*err set on success");
        return;
    }
    if (err == NULL) {
        fail("*err is NULL after %s", fidius_host_status_name(st));
        return;
    }
    message = fidius_host_error_message(err);
    if (message == NULL || message[0] == '\0')
        fail("empty error message after %s", fidius_host_status_name(st));
    if (fidius_host_error_status(err) != st)
        fail("error status %s, call returned %s", fidius_host_status_name(fidius_host_error_status(err)),
             fidius_host_status_name(st));
    fidius_host_error_free(err);
}

/* ---- the runner ---------------------------------------------------------- */

struct null_case {
    const char *name;
    void (*run)(void);
};

/* Each case in a child process: a crash or hang fails that case only. The
 * parent calls nothing in the library (a child forked from a process with
 * the library's threads running would inherit their locks). */
static inline int run_cases(const struct null_case *cases, size_t count) {
    size_t i;
    int passed = 0, failed = 0;
    if (getenv("FIDIUS_TEST_FIXTURES") == NULL)
        printf("note: FIDIUS_TEST_FIXTURES is not set: cases that need a plugin only check that nothing crashes\n");
    for (i = 0; i < count; i++) {
        int status = 0;
        pid_t pid;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm(CASE_TIMEOUT_SECONDS);
            case_name = cases[i].name;
            cases[i].run();
            if (reasons[0] != '\0')
                printf("FAIL %s: %s\n", case_name, reasons);
            fflush(stdout);
            _exit(reasons[0] != '\0');
        }
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 2;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            continue;
        }
        failed++;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            printf("FAIL %s: hung (killed after %d s)\n", cases[i].name, CASE_TIMEOUT_SECONDS);
        else if (WIFSIGNALED(status))
            printf("FAIL %s: crashed (%s)\n", cases[i].name, strsignal(WTERMSIG(status)));
        else if (WEXITSTATUS(status) != 1)
            printf("FAIL %s: exited with status %d\n", cases[i].name, WEXITSTATUS(status));
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
