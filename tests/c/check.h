/*
 * What every C test file shares: CHECK, the fixture directory and a main
 * that reads it from $FIDIUS_TEST_FIXTURES and reports the counts.
 */
#ifndef FIDIUS_HOST_TEST_CHECK_H
#define FIDIUS_HOST_TEST_CHECK_H

#include "fidius_host.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static char fixtures[4096];

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            passed++;                                                            \
        } else {                                                                 \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define NT FIDIUS_HOST_NUL_TERMINATED

/* `relative` inside the fixture directory (one static buffer: use at once). */
static const char *path_of(const char *relative) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", fixtures, relative);
    return buf;
}

/* Whether this run's native and Python plugins run in worker processes:
 * FIDIUS_TEST_ISOLATION=isolated (the runtime suites run in both modes). */
static inline int isolated_run(void) {
    const char *mode = getenv("FIDIUS_TEST_ISOLATION");
    return mode != NULL && strcmp(mode, "isolated") == 0;
}

/* A new builder, isolating its plugins in an isolated run. */
static inline fidius_host_builder_t *test_builder(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    if (isolated_run()) {
        CHECK(fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(fidius_host_builder_set_worker_path(b, path_of("../release/fidius-host-worker"), NT, NULL) ==
              FIDIUS_HOST_STATUS_OK);
    }
    return b;
}

/* Runs the file's tests (`run_tests`) against $FIDIUS_TEST_FIXTURES. */
static int check_main(void (*run_tests)(void)) {
    const char *dir = getenv("FIDIUS_TEST_FIXTURES");
    if (dir == NULL) {
        fprintf(stderr, "FIDIUS_TEST_FIXTURES is not set (run via make c-test)\n");
        return 2;
    }
    snprintf(fixtures, sizeof fixtures, "%s", dir);
    run_tests();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

/* What each thread of a concurrency test gets: the shared plugin, its own
 * range of numbers, and a count of wrong answers. */
struct worker {
    const fidius_host_plugin_t *plugin;
    int64_t base;
    int errors;
};

/* Runs `body` on 4 threads calling `plugin` at once, thread k with base
 * k * `spacing`; checks that no thread saw a wrong answer. */
static inline void run_workers(const fidius_host_plugin_t *plugin, int64_t spacing, void *(*body)(void *)) {
    pthread_t threads[4];
    struct worker workers[4];
    int i;
    for (i = 0; i < 4; i++) {
        workers[i].plugin = plugin;
        workers[i].base = i * spacing;
        workers[i].errors = 0;
        CHECK(pthread_create(&threads[i], NULL, body, &workers[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(workers[i].errors == 0);
    }
}

/* The interface file interfaces/NAME of the fixtures, or NULL. */
static inline fidius_host_interface_t *interface_file(const char *name) {
    char relative[256];
    fidius_host_interface_t *iface = NULL;
    snprintf(relative, sizeof relative, "interfaces/%s", name);
    CHECK(fidius_host_interface_new_from_file(path_of(relative), NT, &iface, NULL) == FIDIUS_HOST_STATUS_OK);
    return iface;
}

/* The error's status, and whether its message contains `text`; frees it. */
static inline int error_says(fidius_host_error_t *err, fidius_host_status status, const char *text) {
    int ok = err != NULL && fidius_host_error_status(err) == status &&
             strstr(fidius_host_error_message(err), text) != NULL;
    if (!ok && err) fprintf(stderr, "  unexpected error: %s\n", fidius_host_error_message(err));
    fidius_host_error_free(err);
    return ok;
}

/* Calls `method` with `args`: whether the JSON result (and its length) is
 * `expected`. Says what happened otherwise. */
static inline int json_is(const fidius_host_plugin_t *p, const char *method, const char *args, const char *expected) {
    char *json = NULL;
    size_t len = 0;
    fidius_host_error_t *err = NULL;
    int ok = fidius_host_plugin_call_json(p, method, NT, args, NT, &json, &len, &err) == FIDIUS_HOST_STATUS_OK &&
             json != NULL && strcmp(json, expected) == 0 && len == strlen(expected);
    if (!ok)
        fprintf(stderr, "  %s(%s) gave %s (%s)\n", method, args, json ? json : "NULL",
                err ? fidius_host_error_message(err) : "no error");
    fidius_host_error_free(err);
    fidius_host_string_free(json);
    return ok;
}

/* Calls `method` with `args`: whether it failed with `status`, a message
 * containing `text`, and no result. */
static inline int json_fails(const fidius_host_plugin_t *p, const char *method, const char *args,
                             fidius_host_status status, const char *text) {
    char *json = (char *)"not reset"; /* the call must set it to NULL */
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_plugin_call_json(p, method, NT, args, NT, &json, NULL, &err);
    int ok = st == status && json == NULL && err != NULL && fidius_host_error_status(err) == status &&
             strstr(fidius_host_error_message(err), text) != NULL;
    if (!ok)
        fprintf(stderr, "  %s(%s): status %s, %s\n", method, args, fidius_host_status_name(st),
                err ? fidius_host_error_message(err) : "no error");
    fidius_host_error_free(err);
    return ok;
}

#ifdef _POSIX_C_SOURCE
#include <time.h>

/* A token that another thread cancels after a delay (files using it
 * define _POSIX_C_SOURCE, for nanosleep). */
struct later_cancel {
    pthread_t thread;
    fidius_host_cancel_token_t *token;
    long millis;
};

static void *later_cancel_body(void *arg) {
    struct later_cancel *c = arg;
    struct timespec wait;
    wait.tv_sec = c->millis / 1000;
    wait.tv_nsec = (c->millis % 1000) * 1000000L;
    nanosleep(&wait, NULL);
    CHECK(fidius_host_cancel_token_cancel(c->token) == FIDIUS_HOST_STATUS_OK);
    return NULL;
}

/* Calls `method(args)` with a token cancelled from another thread after
 * `millis`: whether the call was CANCELLED with a message containing
 * `text` and no result. */
static inline int json_cancelled(const fidius_host_plugin_t *p, const char *method, const char *args, long millis,
                                 const char *text) {
    struct later_cancel c;
    char *json = (char *)"not reset";
    fidius_host_error_t *err = NULL;
    fidius_host_status st;
    int ok;
    c.millis = millis;
    c.token = NULL;
    CHECK(fidius_host_cancel_token_new(&c.token, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(pthread_create(&c.thread, NULL, later_cancel_body, &c) == 0);
    st = fidius_host_plugin_call_json_cancellable(p, method, NT, args, NT, NULL, c.token, &json, NULL, &err);
    pthread_join(c.thread, NULL);
    ok = error_says(err, FIDIUS_HOST_STATUS_CANCELLED, text) && st == FIDIUS_HOST_STATUS_CANCELLED && json == NULL;
    if (!ok) fprintf(stderr, "  %s(%s) under a cancelled token: %s\n", method, args, fidius_host_status_name(st));
    if (st == FIDIUS_HOST_STATUS_OK) fidius_host_string_free(json);
    fidius_host_cancel_token_free(c.token);
    return ok;
}
#endif

/* What every runtime's Calculator plugin (cdylib, WASM, Python) must do
 * alike: raw bytes for the raw `reverse`, the cdylib's bincode for the
 * typed `add` (refusing a truncated input), DIV_ZERO with its details from
 * `divide`, and argument checks before the plugin runs. */
static inline void check_calculator_calls(const fidius_host_plugin_t *p) {
    fidius_host_bytes_t out;
    fidius_host_error_t *err = NULL;
    char *json = NULL;
    uint8_t in[16] = {3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}; /* add(3, 7) */
    CHECK(fidius_host_plugin_call(p, 5, (const uint8_t *)"fidius", 6, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 6 && memcmp(out.data, "suidif", 6) == 0);
    fidius_host_bytes_free(&out);
    CHECK(fidius_host_plugin_call(p, 0, in, sizeof in, &out, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(out.len == 8 && out.data[0] == 10);
    fidius_host_bytes_free(&out);
    CHECK(fidius_host_plugin_call(p, 0, in, 3, &out, NULL) == FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION);
    CHECK(fidius_host_plugin_call_json(p, "divide", NT, "[1, 0]", NT, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(json == NULL);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_code(err), "DIV_ZERO") == 0);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_details(err), "{\"dividend\":1}") == 0);
    fidius_host_error_free(err);
    CHECK(json_fails(p, "add", "[1, \"x\"]", FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH, "argument 2"));
    CHECK(json_is(p, "add", "[20, 22]", "42"));
}

#endif
