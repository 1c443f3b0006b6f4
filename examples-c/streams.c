/*
 * streams: streaming calls of a plugin of the Streamer interface, in any
 * runtime (a native library, a WASM package, a Python package):
 *   - a server stream (count), pulled item by item, and one cancelled early;
 *   - a client stream (sum) fed by a producer callback;
 *   - a bidirectional stream (shout) whose input is read as its output is.
 *
 *   usage: streams <plugin file or package> <streamer.toml>
 */
#include "fidius_host.h"

#include <stdio.h>
#include <string.h>

#define NT FIDIUS_HOST_NUL_TERMINATED

/* Items for a Stream<T> argument: JSON texts, given one at a time. */
struct texts {
    const char *const *items;
    size_t count;
    size_t given;
};

static uint32_t next_text(void *userdata, const uint8_t **item, size_t *item_len) {
    struct texts *t = userdata;
    if (t->given == t->count) return FIDIUS_HOST_STATUS_STREAM_END;
    printf("    (the plugin reads %s)\n", t->items[t->given]);
    *item = (const uint8_t *)t->items[t->given++];
    *item_len = NT;
    return FIDIUS_HOST_STATUS_OK;
}

/* Prints every item of `stream`; the status it ended with. */
static fidius_host_status drain(fidius_host_stream_t *stream, fidius_host_error_t **err) {
    const char *item;
    size_t len;
    fidius_host_status st;
    while ((st = fidius_host_stream_next_json(stream, &item, &len, err)) == FIDIUS_HOST_STATUS_OK)
        printf("  item %s\n", item);
    return st;
}

static int run(const fidius_host_plugin_t *plugin, fidius_host_error_t **err) {
    static const char *const numbers[] = {"1", "2", "39"};
    static const char *const words[] = {"\"hello\"", "\"streams\""};
    fidius_host_stream_t *stream = NULL;
    const char *item;
    size_t len;
    char *sum = NULL;

    printf("count(3, 6):\n");
    if (fidius_host_plugin_call_stream_json(plugin, "count", NT, "[3, 6]", NT, NULL, &stream, err)) return 1;
    fidius_host_status st = drain(stream, err);
    fidius_host_stream_free(stream);
    if (st != FIDIUS_HOST_STATUS_STREAM_END) return 1;

    printf("count(0, u64::MAX), cancelled after two items:\n");
    if (fidius_host_plugin_call_stream_json(plugin, "count", NT, "[0, 18446744073709551615]", NT, NULL, &stream, err))
        return 1;
    for (int i = 0; i < 2; i++) {
        if (fidius_host_stream_next_json(stream, &item, &len, err)) return 1;
        printf("  item %s\n", item);
    }
    fidius_host_stream_free(stream); /* the plugin's producer is torn down now */

    printf("sum of 1, 2, 39:\n");
    struct texts in = {numbers, 3, 0};
    fidius_host_stream_input_t input = {next_text, &in, NULL};
    if (fidius_host_plugin_call_client_stream_json(plugin, "sum", NT, "[]", NT, &input, &sum, NULL, err)) return 1;
    printf("  = %s\n", sum);
    fidius_host_string_free(sum);

    printf("shout(words, \"!\"), one word read per answer:\n");
    struct texts said = {words, 2, 0};
    fidius_host_stream_input_t spoken = {next_text, &said, NULL};
    if (fidius_host_plugin_call_stream_json(plugin, "shout", NT, "[\"!\"]", NT, &spoken, &stream, err)) return 1;
    st = drain(stream, err);
    fidius_host_stream_free(stream);
    return st != FIDIUS_HOST_STATUS_STREAM_END;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <plugin file or package> <streamer.toml>\n", argv[0]);
        return 2;
    }
    fidius_host_t *host = NULL;
    fidius_host_interface_t *streamer = NULL;
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_plugin_t *plugin = NULL;
    fidius_host_error_t *err = NULL;
    int failed = fidius_host_builder_build(fidius_host_builder_new(), &host, &err) ||
                 fidius_host_interface_new_from_file(argv[2], NT, &streamer, &err) ||
                 fidius_host_load_options_set_interface(options, streamer, &err) ||
                 fidius_host_load_path(host, argv[1], NT, NULL, 0, options, &plugin, &err) || run(plugin, &err);
    if (failed)
        fprintf(stderr, "%s: %s\n", err ? fidius_host_status_name(fidius_host_error_status(err)) : "failed",
                err ? fidius_host_error_message(err) : "");
    fidius_host_error_free(err);
    fidius_host_plugin_free(plugin);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(streamer);
    fidius_host_free(host);
    return failed;
}
