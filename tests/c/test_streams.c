/*
 * C tests of streaming calls: server, client and bidirectional streams of
 * the Streamer fixture in every runtime (a native library, a WebAssembly
 * component, a Python package), raw and JSON, cancelled early, failing
 * mid-stream, with producers that fail, and calls that do not match how a
 * method streams. Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Method indices of the Streamer interface. */
enum { COUNT, BLOBS, FAIL_AFTER, LIVE_PRODUCERS, SUM, CHECKED_SUM, SHOUT };

/* ---- producers ---------------------------------------------------------- */

/* Gives `items` (NUL-terminated texts, or bincode blobs of `sizes`) in
 * turn, counting how often it was asked and whether it was released. */
struct items {
    const char *const *texts;
    const uint8_t *const *blobs;
    const size_t *sizes;
    size_t count;
    size_t asked;
    int released;
    /* A stream to call back into from the producer (MISUSE expected). */
    fidius_host_stream_t *reenter;
    fidius_host_status reentered;
    /* Fail (answer this status) at this item instead of giving it. */
    size_t fail_at;
    uint32_t fail_with;
};

static uint32_t produce(void *userdata, const uint8_t **item, size_t *item_len) {
    struct items *s = userdata;
    size_t at = s->asked++;
    if (s->reenter != NULL) {
        const uint8_t *inner = NULL;
        size_t inner_len = 0;
        s->reentered = fidius_host_stream_next(s->reenter, &inner, &inner_len, NULL);
    }
    if (s->fail_with != 0 && at == s->fail_at) return s->fail_with;
    if (at >= s->count) return FIDIUS_HOST_STATUS_STREAM_END;
    if (s->texts != NULL) {
        *item = (const uint8_t *)s->texts[at];
        *item_len = NT;
    } else {
        *item = s->blobs[at];
        *item_len = s->sizes[at];
    }
    return FIDIUS_HOST_STATUS_OK;
}

static void release(void *userdata) {
    ((struct items *)userdata)->released++;
}

static fidius_host_stream_input_t input_of(struct items *items) {
    fidius_host_stream_input_t input;
    input.produce = produce;
    input.userdata = items;
    input.free_userdata = release;
    return input;
}

static struct items texts(const char *const *texts, size_t count) {
    struct items s;
    memset(&s, 0, sizeof s);
    s.texts = texts;
    s.count = count;
    return s;
}

/* ---- helpers ------------------------------------------------------------- */

static fidius_host_plugin_t *load(const fidius_host_t *host, const char *relative) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("streamer.toml");
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    if (fidius_host_load_path(host, path_of(relative), NT, NULL, 0, options, &p, &err) != FIDIUS_HOST_STATUS_OK) {
        fprintf(stderr, "  loading %s: %s\n", relative, err ? fidius_host_error_message(err) : "?");
        CHECK(0);
    }
    fidius_host_error_free(err);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
    return p;
}

/* Starts a JSON stream call; NULL (and a message) when it fails. */
static fidius_host_stream_t *start(const fidius_host_plugin_t *p, const char *method, const char *args,
                                   const fidius_host_stream_input_t *input) {
    fidius_host_stream_t *stream = NULL;
    fidius_host_error_t *err = NULL;
    if (fidius_host_plugin_call_stream_json(p, method, NT, args, NT, input, &stream, &err) != FIDIUS_HOST_STATUS_OK)
        fprintf(stderr, "  %s(%s): %s\n", method, args, err ? fidius_host_error_message(err) : "?");
    fidius_host_error_free(err);
    return stream;
}

/* Whether the next JSON item is `expected`. */
static int next_is(fidius_host_stream_t *stream, const char *expected) {
    const char *json = NULL;
    size_t len = 0;
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_stream_next_json(stream, &json, &len, &err);
    int ok = st == FIDIUS_HOST_STATUS_OK && json != NULL && strcmp(json, expected) == 0 && len == strlen(expected);
    if (!ok) fprintf(stderr, "  expected %s, got %s (%s)\n", expected, json ? json : fidius_host_status_name(st), err ? fidius_host_error_message(err) : "");
    fidius_host_error_free(err);
    return ok;
}

/* Whether the stream has ended (STREAM_END, nothing handed out). */
static int ended(fidius_host_stream_t *stream) {
    const char *json = "not reset";
    size_t len = 99;
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_stream_next_json(stream, &json, &len, &err);
    int ok = st == FIDIUS_HOST_STATUS_STREAM_END && json == NULL && len == 0;
    fidius_host_error_free(err);
    return ok;
}

static long live_producers(const fidius_host_plugin_t *p) {
    char *json = NULL;
    long n = -1;
    if (fidius_host_plugin_call_json(p, "live_producers", NT, "[]", NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK)
        n = strtol(json, NULL, 10);
    fidius_host_string_free(json);
    return n;
}

/* The little-endian bytes of `value`. */
static void u64_le(uint8_t *out, uint64_t value) {
    int i;
    for (i = 0; i < 8; i++) out[i] = (uint8_t)(value >> (8 * i));
}

static uint64_t read_u64_le(const uint8_t *in) {
    uint64_t value = 0;
    int i;
    for (i = 7; i >= 0; i--) value = (value << 8) | in[i];
    return value;
}

/* ---- tests --------------------------------------------------------------- */

static void test_server_streams(const fidius_host_plugin_t *p, const char *runtime) {
    fidius_host_stream_t *stream = start(p, "count", "[3, 7]", NULL);
    uint8_t args[16];
    const uint8_t *item = NULL;
    size_t len = 0;
    int i;
    fidius_host_error_t *err = NULL;
    CHECK(stream != NULL);
    CHECK(next_is(stream, "3") && next_is(stream, "4") && next_is(stream, "5") && next_is(stream, "6"));
    CHECK(ended(stream));
    CHECK(ended(stream)); /* the end is answered again */
    fidius_host_stream_free(stream);

    /* Raw: bincode arguments and items. */
    u64_le(args, 10);
    u64_le(args + 8, 12);
    CHECK(fidius_host_plugin_call_stream(p, COUNT, args, sizeof args, NULL, &stream, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_OK && len == 8 && read_u64_le(item) == 10);
    CHECK(fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_OK && len == 8 && read_u64_le(item) == 11);
    CHECK(fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_STREAM_END && item == NULL && len == 0);
    fidius_host_stream_free(stream);

    /* Items far larger than the first buffers. */
    stream = start(p, "blobs", "[3, 70000]", NULL);
    CHECK(stream != NULL);
    for (i = 0; i < 3; i++) {
        CHECK(fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(len == 8 + 70000 && read_u64_le(item) == 70000 && item[8] == i && item[len - 1] == i);
    }
    CHECK(fidius_host_stream_next(stream, &item, &len, NULL) == FIDIUS_HOST_STATUS_STREAM_END);
    fidius_host_stream_free(stream);

    /* Failing after two items: one error, answered again, nothing after it. */
    stream = start(p, "fail_after", "[2]", NULL);
    CHECK(next_is(stream, "0") && next_is(stream, "1"));
    {
        fidius_host_status expected = strcmp(runtime, "cdylib") == 0 ? FIDIUS_HOST_STATUS_PLUGIN_PANIC
                                      : strcmp(runtime, "wasm") == 0 ? FIDIUS_HOST_STATUS_PLUGIN_TRAP
                                                                     : FIDIUS_HOST_STATUS_PLUGIN_ERROR;
        CHECK(fidius_host_stream_next(stream, &item, &len, &err) == expected && item == NULL);
        if (expected == FIDIUS_HOST_STATUS_PLUGIN_ERROR) {
            CHECK(err != NULL && strcmp(fidius_host_error_plugin_code(err), "TOO_FAR") == 0);
            CHECK(err != NULL && strstr(fidius_host_error_plugin_details(err), "\"good\"") != NULL);
        }
        fidius_host_error_free(err);
        CHECK(fidius_host_stream_next(stream, &item, &len, &err) == expected);
        fidius_host_error_free(err);
    }
    fidius_host_stream_free(stream);

    /* Cancelled long before its end: the producer is torn down at once. */
    stream = start(p, "count", "[0, 18446744073709551615]", NULL);
    CHECK(next_is(stream, "0") && next_is(stream, "1") && next_is(stream, "2"));
    if (strcmp(runtime, "wasm") != 0) CHECK(live_producers(p) == 1); /* WASM: an instance of its own */
    fidius_host_stream_free(stream);
    if (strcmp(runtime, "wasm") != 0) CHECK(live_producers(p) == 0);

    /* A whole-stream deadline. */
    stream = start(p, "count", "[0, 18446744073709551615]", NULL);
    CHECK(fidius_host_stream_set_deadline(stream, 1, NULL) == FIDIUS_HOST_STATUS_OK);
    {
        fidius_host_status st = FIDIUS_HOST_STATUS_OK;
        while (st == FIDIUS_HOST_STATUS_OK) st = fidius_host_stream_next(stream, &item, &len, NULL);
        CHECK(st == FIDIUS_HOST_STATUS_TIMEOUT);
    }
    fidius_host_stream_free(stream);
}

static void test_client_streams(const fidius_host_plugin_t *p) {
    const char *numbers[] = {"1", "2", "39"};
    const char *checked[] = {"5", "6", "-1", "7", "8"};
    const char *bad[] = {"1", "\"two\"", "3"};
    struct items s = texts(numbers, 3);
    fidius_host_stream_input_t input = input_of(&s);
    char *json = NULL;
    size_t json_len = 0;
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;

    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, &input, &json, &json_len, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(json != NULL && strcmp(json, "42") == 0 && json_len == 2);
    CHECK(s.asked == 4 && s.released == 1); /* three items and the end; released once */
    fidius_host_string_free(json);

    s = texts(numbers, 0);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, &input, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json != NULL && strcmp(json, "0") == 0 && s.released == 1);
    fidius_host_string_free(json);

    /* Read through the bad item, no further. */
    s = texts(checked, 5);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "checked_sum", NT, "[100]", NT, &input, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(json == NULL && err != NULL && strcmp(fidius_host_error_plugin_code(err), "NEGATIVE") == 0);
    CHECK(err != NULL && strstr(fidius_host_error_plugin_message(err), "item 2") != NULL);
    CHECK(s.asked == 3 && s.released == 1);
    fidius_host_error_free(err);

    /* Raw: bincode items, no other arguments, a bincode result. */
    {
        uint8_t seven[8], eight[8];
        const uint8_t *blobs[] = {seven, eight};
        const size_t sizes[] = {8, 8};
        u64_le(seven, 7);
        u64_le(eight, 8);
        memset(&s, 0, sizeof s);
        s.blobs = blobs;
        s.sizes = sizes;
        s.count = 2;
        input = input_of(&s);
        CHECK(fidius_host_plugin_call_client_stream(p, SUM, NULL, 0, &input, &out, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(out.len == 8 && read_u64_le(out.data) == 15);
        fidius_host_bytes_free(&out);
        /* Bytes that are not bincode of the item type. */
        s.sizes = (const size_t[]){3, 8};
        s.asked = 0;
        s.released = 0;
        input = input_of(&s);
        CHECK(fidius_host_plugin_call_client_stream(p, SUM, NULL, 0, &input, &out, &err) ==
              FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED);
        CHECK(out.data == NULL && out.len == 0 && s.released == 1);
        CHECK(error_says(err, FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED, "item 0"));
    }

    /* Other arguments that do not decode: the plugin never takes the
     * input's handle, which is freed (valgrind checks), and released. */
    s = texts(numbers, 3);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream(p, CHECKED_SUM, (const uint8_t *)"abc", 3, &input, &out, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION);
    CHECK(s.asked == 0 && s.released == 1);
    fidius_host_error_free(err);

    /* An item that does not fit, and a producer that fails. */
    s = texts(bad, 3);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, &input, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED);
    CHECK(json == NULL && s.asked == 2 && s.released == 1);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED, "item 1"));
    s = texts(numbers, 3);
    s.fail_at = 1;
    s.fail_with = FIDIUS_HOST_STATUS_IO;
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, &input, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED, "IO"));
    CHECK(s.released == 1);
}

static void test_bidirectional_streams(const fidius_host_plugin_t *p) {
    const char *words[] = {"\"hey\"", "\"you\"", "\"there\""};
    struct items s = texts(words, 3);
    fidius_host_stream_input_t input = input_of(&s);
    fidius_host_stream_t *stream = start(p, "shout", "[\"!\"]", &input);
    CHECK(stream != NULL);
    CHECK(next_is(stream, "\"HEY!\""));
    CHECK(s.asked == 1 && fidius_host_stream_items_read(stream) == 1); /* one in for one out */
    CHECK(next_is(stream, "\"YOU!\""));
    CHECK(s.asked == 2);
    /* A producer that calls back into the stream it feeds: MISUSE. */
    s.reenter = stream;
    CHECK(next_is(stream, "\"THERE!\""));
    CHECK(s.reentered == FIDIUS_HOST_STATUS_MISUSE);
    s.reenter = NULL;
    CHECK(ended(stream));
    CHECK(s.released == 1); /* released at the end, before the stream is freed */
    fidius_host_stream_free(stream);

    /* Cancelled with input left: the rest is never read. */
    s = texts(words, 3);
    input = input_of(&s);
    stream = start(p, "shout", "[\"?\"]", &input);
    CHECK(next_is(stream, "\"HEY?\""));
    fidius_host_stream_free(stream);
    CHECK(s.asked == 1 && s.released == 1);
}

static void test_mismatches(const fidius_host_plugin_t *p) {
    const char *none[] = {NULL};
    struct items s = texts(none, 0);
    fidius_host_stream_input_t input = input_of(&s);
    fidius_host_stream_t *stream = (fidius_host_stream_t *)&s; /* must be reset to NULL */
    fidius_host_error_t *err = NULL;
    fidius_host_bytes_t out;
    char *json = NULL;
    uint8_t args[16] = {0};

    CHECK(json_fails(p, "count", "[0, 1]", FIDIUS_HOST_STATUS_STREAM_MISMATCH, "server-streaming"));
    CHECK(fidius_host_plugin_call(p, COUNT, args, sizeof args, &out, NULL) == FIDIUS_HOST_STATUS_STREAM_MISMATCH);
    CHECK(fidius_host_plugin_call_stream_json(p, "live_producers", NT, "[]", NT, NULL, &stream, &err) ==
          FIDIUS_HOST_STATUS_STREAM_MISMATCH);
    CHECK(stream == NULL);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_STREAM_MISMATCH, "'live_producers'"));
    /* The input of a call that fails before it starts is released. */
    CHECK(fidius_host_plugin_call_stream_json(p, "count", NT, "[0, 1]", NT, &input, &stream, NULL) ==
          FIDIUS_HOST_STATUS_STREAM_MISMATCH);
    CHECK(s.released == 1);
    s = texts(none, 0);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "count", NT, "[0, 1]", NT, &input, &json, NULL, NULL) ==
          FIDIUS_HOST_STATUS_STREAM_MISMATCH);
    CHECK(json == NULL && s.released == 1);
    CHECK(fidius_host_plugin_call_stream_json(p, "shout", NT, "[\"!\"]", NT, NULL, &stream, NULL) ==
          FIDIUS_HOST_STATUS_STREAM_MISMATCH);
    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, NULL, &json, NULL, NULL) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    s = texts(none, 0);
    input = input_of(&s);
    CHECK(fidius_host_plugin_call_stream_json(p, "count", NT, "[0]", NT, NULL, &stream, &err) ==
          FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH);
    fidius_host_error_free(err);
    input.produce = NULL;
    CHECK(fidius_host_plugin_call_client_stream_json(p, "sum", NT, "[]", NT, &input, &json, NULL, NULL) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(s.released == 1);
    CHECK(fidius_host_stream_next(NULL, NULL, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_stream_items_read(NULL) == 0);
    fidius_host_stream_free(NULL);
}

/* A hand-written native plugin whose stream fails to start with a
 * PluginError: decoded, and its buffer freed (valgrind checks). */
static void test_start_error(const fidius_host_t *host) {
    fidius_host_interface_builder_t *ib = NULL;
    fidius_host_interface_t *iface = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *p = NULL;
    fidius_host_stream_t *stream = NULL;
    fidius_host_error_t *err = NULL;
    CHECK(fidius_host_interface_builder_new("Ticker", NT, 1, &ib, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_add_method(ib, "tick:u32->Stream<u32>", NT, 0, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_interface_builder_build(ib, &iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_path(host, path_of("crafted/libstream_start_fails.so"), NT, NULL, 0, options, &p, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_call_stream_json(p, "tick", NT, "[5]", NT, NULL, &stream, &err) == FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(stream == NULL && err != NULL && strcmp(fidius_host_error_plugin_code(err), "NOT_NOW") == 0);
    fidius_host_error_free(err);
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
    fidius_host_interface_builder_free(ib);
}

/* Every kind of stream of `p`, a plugin of `runtime`. */
static void exercise(const fidius_host_plugin_t *p, const char *runtime) {
    test_server_streams(p, runtime);
    test_client_streams(p);
    test_bidirectional_streams(p);
    test_mismatches(p);
}

static void run_tests(void) {
    static const char *const runtimes[][2] = {
        {"cdylib", "streams/libstream_plugin.so"}, {"wasm", "wasm/stream"}, {"python", "python/stream"}};
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL, *isolated = NULL;
    size_t i;
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_set_isolation(b, FIDIUS_HOST_ISOLATION_ISOLATED, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_worker_path(b, path_of("../release/fidius-host-worker"), NT, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &isolated, NULL) == FIDIUS_HOST_STATUS_OK);
    for (i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++) {
        fidius_host_plugin_t *p = load(host, runtimes[i][1]);
        if (p == NULL) continue;
        exercise(p, runtimes[i][0]);
        fidius_host_plugin_free(p);
        /* Native and Python plugins again, each in a worker process. */
        if (strcmp(runtimes[i][0], "wasm") == 0) continue;
        fprintf(stderr, "  %s (isolated)\n", runtimes[i][1]);
        p = load(isolated, runtimes[i][1]);
        if (p == NULL) continue;
        exercise(p, runtimes[i][0]);
        fidius_host_plugin_free(p);
    }
    test_start_error(host);
    fidius_host_free(isolated);
    fidius_host_free(host);
}

int main(void) {
    return check_main(run_tests);
}
