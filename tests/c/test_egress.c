/*
 * C tests of outbound HTTP and sockets from WebAssembly guests: egress
 * callbacks with userdata, socket callbacks, the built-in allow-list,
 * host-wide and per-load policies, the denied-request log and fail-closed
 * loading, against a real HTTP server and a UDP socket on 127.0.0.1. Fixtures come from $FIDIUS_TEST_FIXTURES.
 */
#define _POSIX_C_SOURCE 200809L
#include "fidius_host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"

/* ---- a tiny HTTP server ------------------------------------------------ */

/* Answers every request with "hello from <path>" on its own thread (paths
 * under /private only with the right credential; 401 without it), and
 * counts the requests it saw. */
struct server {
    int fd;
    int port;
    int requests;
    pthread_mutex_t lock;
    pthread_t thread;
};

static void *serve(void *arg) {
    struct server *s = arg;
    for (;;) {
        char buf[2048], path[512] = "", reply[1024];
        size_t got = 0;
        int client = accept(s->fd, NULL, NULL);
        if (client < 0) return NULL; /* the listening socket was shut down */
        while (got + 1 < sizeof buf) {
            ssize_t n = read(client, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n")) break;
        }
        buf[got] = '\0';
        sscanf(buf, "%*s %511s", path);
        pthread_mutex_lock(&s->lock);
        s->requests++;
        pthread_mutex_unlock(&s->lock);
        {
            /* Paths under /private want the credential "Bearer fresh". */
            int refused = strncmp(path, "/private", 8) == 0 && strstr(buf, "\r\nauthorization: Bearer fresh\r\n") == NULL;
            char body[600];
            int body_len = snprintf(body, sizeof body, refused ? "who are you?" : "hello from %s", path);
            int len = snprintf(reply, sizeof reply, "HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                               refused ? "401 Unauthorized" : "200 OK", body_len, body);
            if (write(client, reply, (size_t)len) != len) fprintf(stderr, "server: short write\n");
        }
        close(client);
    }
}

static void server_start(struct server *s) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(s, 0, sizeof *s);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s->fd >= 0);
    CHECK(bind(s->fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(s->fd, 16) == 0);
    CHECK(getsockname(s->fd, (struct sockaddr *)&addr, &len) == 0);
    s->port = ntohs(addr.sin_port);
    pthread_mutex_init(&s->lock, NULL);
    CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

static int server_requests(struct server *s) {
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void server_stop(struct server *s) {
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
}

/* ---- helpers ----------------------------------------------------------- */

static fidius_host_load_options_t *fetcher_options(const fidius_host_egress_policy_t *policy) {
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("fetcher.toml");
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_egress_policy(options, policy, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_interface_free(iface);
    return options;
}

static fidius_host_plugin_t *load_fetcher(const fidius_host_t *host, const fidius_host_egress_policy_t *policy,
                                          fidius_host_status expected) {
    fidius_host_load_options_t *options = fetcher_options(policy);
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_load_path(host, path_of("wasm/fetch"), NT, "FetchGuest", NT, options, &p, &err);
    CHECK(st == expected);
    if (st != expected) fprintf(stderr, "  load: %s\n", err ? fidius_host_error_message(err) : "ok");
    fidius_host_error_free(err);
    fidius_host_load_options_free(options);
    return p;
}

static fidius_host_t *new_host(const fidius_host_egress_policy_t *policy) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    CHECK(fidius_host_builder_set_egress_policy(b, policy, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    return host;
}

/* The JSON arguments of fetch(method, url) in `args` (FETCH_ARGS bytes). */
#define FETCH_ARGS 256
static const char *fetch_args(char *args, const char *method, int port, const char *path) {
    snprintf(args, FETCH_ARGS, "[\"%s\", \"http://127.0.0.1:%d%s\"]", method, port, path);
    return args;
}

/* ---- the callback ------------------------------------------------------ */

/* What the callback saw, through its userdata. */
struct policy_log {
    pthread_mutex_t lock;
    int calls;
    int saw_header;
    int freed;
    char last[512];
};

static int32_t only_get(void *userdata, const fidius_host_http_request_t *r) {
    struct policy_log *log = userdata;
    size_t i;
    pthread_mutex_lock(&log->lock);
    log->calls++;
    snprintf(log->last, sizeof log->last, "%s %s %s %s %s:%u %s", r->plugin, r->method, r->scheme, r->authority,
             r->host, (unsigned)r->port, r->path_with_query);
    for (i = 0; i < r->header_count; i++)
        if (strcmp(r->headers[i].name, "x-fidius-fixture") == 0 && strcmp(r->headers[i].value, "fetch") == 0)
            log->saw_header = 1;
    pthread_mutex_unlock(&log->lock);
    return strcmp(r->method, "GET") == 0 ? FIDIUS_HOST_EGRESS_DECISION_ALLOW : FIDIUS_HOST_EGRESS_DECISION_DENY;
}

static int32_t answers_garbage(void *userdata, const fidius_host_http_request_t *r) {
    (void)userdata;
    (void)r;
    return 42; /* anything but ALLOW denies */
}

static void mark_freed(void *userdata) {
    ((struct policy_log *)userdata)->freed++;
}

/* ---- tests ------------------------------------------------------------- */

static void test_callback_policy(struct server *server) {
    char args[FETCH_ARGS];
    struct policy_log log;
    fidius_host_egress_policy_t *policy = NULL;
    fidius_host_t *host;
    fidius_host_plugin_t *p;
    fidius_host_error_t *err = NULL;
    char expected[256], *json = NULL, *method = NULL, *url = NULL;
    int before = server_requests(server);

    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    CHECK(fidius_host_egress_policy_new_callback(only_get, &log, mark_freed, &policy, NULL) == FIDIUS_HOST_STATUS_OK);
    host = new_host(policy);
    fidius_host_egress_policy_free(policy); /* the builder keeps its own reference */
    CHECK(log.freed == 0);
    p = load_fetcher(host, NULL, FIDIUS_HOST_STATUS_OK);

    snprintf(expected, sizeof expected, "\"200 hello from /a?b=c\"");
    CHECK(json_is(p, "fetch", fetch_args(args, "GET", server->port, "/a?b=c"), expected));
    CHECK(server_requests(server) == before + 1);
    snprintf(expected, sizeof expected, "FetchGuest GET http 127.0.0.1:%d 127.0.0.1:%d /a?b=c", server->port,
             server->port);
    CHECK(strcmp(log.last, expected) == 0);
    CHECK(log.saw_header);
    CHECK(fidius_host_plugin_denied_request_count(p) == 0);

    /* Denied: an HTTP error the guest reports, not a trap; nothing is sent. */
    CHECK(fidius_host_plugin_call_json(p, "fetch", NT, fetch_args(args, "POST", server->port, "/upload"), NT, &json, NULL,
                                       &err) == FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(err != NULL && strcmp(fidius_host_error_plugin_code(err), "HTTP") == 0);
    CHECK(err != NULL && strstr(fidius_host_error_plugin_message(err), "HttpRequestDenied") != NULL);
    fidius_host_error_free(err);
    CHECK(server_requests(server) == before + 1);
    CHECK(fidius_host_plugin_denied_request_count(p) == 1);
    CHECK(fidius_host_plugin_denied_request(p, 0, &method, &url, NULL) == FIDIUS_HOST_STATUS_OK);
    snprintf(expected, sizeof expected, "http://127.0.0.1:%d/upload", server->port);
    CHECK(method != NULL && strcmp(method, "POST") == 0);
    CHECK(url != NULL && strcmp(url, expected) == 0);
    fidius_host_string_free(method);
    fidius_host_string_free(url);
    CHECK(fidius_host_plugin_denied_request(p, 1, &method, &url, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(method == NULL && url == NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_plugin_denied_request(p, 0, NULL, &url, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(json_is(p, "fetch", fetch_args(args, "GET", server->port, "/again"), "\"200 hello from /again\""));
    CHECK(log.calls == 3);

    /* The userdata is released when the last user of the policy goes. */
    fidius_host_free(host);
    CHECK(log.freed == 0);
    fidius_host_plugin_free(p);
    CHECK(log.freed == 1);
    pthread_mutex_destroy(&log.lock);
}

static void test_allow_list(struct server *server) {
    char args[FETCH_ARGS];
    char exact[64], other[64];
    fidius_host_str_t patterns[2];
    fidius_host_egress_policy_t *allowed = NULL, *elsewhere = NULL, *none = NULL;
    fidius_host_t *host;
    fidius_host_plugin_t *p;
    int before = server_requests(server);

    snprintf(exact, sizeof exact, "127.0.0.1:%d", server->port);
    snprintf(other, sizeof other, "127.0.0.1:%d", server->port == 65535 ? 1 : server->port + 1);
    /* Lengths, not terminators, end the patterns. */
    patterns[0].data = "*.example.com:ignored";
    patterns[0].len = strlen("*.example.com");
    patterns[1].data = exact;
    patterns[1].len = strlen(exact);
    CHECK(fidius_host_egress_policy_new_allow_list(patterns, 2, &allowed, NULL) == FIDIUS_HOST_STATUS_OK);
    patterns[1].data = other;
    patterns[1].len = strlen(other);
    CHECK(fidius_host_egress_policy_new_allow_list(patterns + 1, 1, &elsewhere, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_egress_policy_new_allow_list(NULL, 0, &none, NULL) == FIDIUS_HOST_STATUS_OK);

    /* The host denies everything; a load's own policy overrides it. */
    host = new_host(none);
    p = load_fetcher(host, NULL, FIDIUS_HOST_STATUS_OK);
    CHECK(json_fails(p, "fetch", fetch_args(args, "GET", server->port, "/x"), FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                     "HttpRequestDenied"));
    CHECK(fidius_host_plugin_denied_request_count(p) == 1);
    fidius_host_plugin_free(p);

    p = load_fetcher(host, allowed, FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "fetch", fetch_args(args, "GET", server->port, "/ok"), "\"200 hello from /ok\""));
    fidius_host_plugin_free(p);

    p = load_fetcher(host, elsewhere, FIDIUS_HOST_STATUS_OK);
    CHECK(json_fails(p, "fetch", fetch_args(args, "GET", server->port, "/x"), FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                     "HttpRequestDenied"));
    fidius_host_plugin_free(p);
    CHECK(server_requests(server) == before + 1);
    fidius_host_free(host);

    fidius_host_egress_policy_free(allowed);
    fidius_host_egress_policy_free(elsewhere);
    fidius_host_egress_policy_free(none);
}

static void test_fails_closed(void) {
    fidius_host_egress_policy_t *garbage = NULL, *policy = NULL;
    fidius_host_builder_t *b;
    fidius_host_t *host = new_host(NULL), *strict = NULL;
    fidius_host_error_t *err = NULL;
    const fidius_host_str_t bad[] = {{"*", 1}};
    const fidius_host_str_t not_utf8[] = {{"\xff", 1}};

    /* No policy at all: the guest imports wasi:http, so it is not loaded. */
    CHECK(load_fetcher(host, NULL, FIDIUS_HOST_STATUS_NO_EGRESS_POLICY) == NULL);
    /* A callback that answers something else than ALLOW denies. */
    CHECK(fidius_host_egress_policy_new_callback(answers_garbage, NULL, NULL, &garbage, NULL) == FIDIUS_HOST_STATUS_OK);
    {
        fidius_host_plugin_t *p = load_fetcher(host, garbage, FIDIUS_HOST_STATUS_OK);
        CHECK(json_fails(p, "fetch", "[\"GET\", \"http://127.0.0.1:1/\"]", FIDIUS_HOST_STATUS_PLUGIN_ERROR,
                         "HttpRequestDenied"));
        fidius_host_plugin_free(p);
    }
    /* A host that denies the capability. */
    b = fidius_host_builder_new();
    CHECK(fidius_host_builder_add_denied_capability(b, "http", NT, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_egress_policy(b, garbage, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &strict, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(load_fetcher(strict, NULL, FIDIUS_HOST_STATUS_CAPABILITY_DENIED) == NULL);
    fidius_host_free(strict);

    /* Bad arguments. */
    CHECK(fidius_host_egress_policy_new_allow_list(bad, 1, &policy, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(policy == NULL && err != NULL && strstr(fidius_host_error_message(err), "\"*\"") != NULL);
    fidius_host_error_free(err);
    CHECK(fidius_host_egress_policy_new_allow_list(not_utf8, 1, &policy, NULL) == FIDIUS_HOST_STATUS_INVALID_UTF8);
    CHECK(fidius_host_egress_policy_new_allow_list(NULL, 1, &policy, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_egress_policy_new_allow_list(bad, 1, NULL, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_egress_policy_new_callback(NULL, NULL, NULL, &policy, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_set_egress_policy(NULL, garbage, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_load_options_set_egress_policy(NULL, garbage, NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(fidius_host_builder_set_egress_policy((fidius_host_builder_t *)garbage, garbage, NULL) ==
          FIDIUS_HOST_STATUS_MISUSE);
    CHECK(fidius_host_plugin_denied_request_count(NULL) == 0);
    fidius_host_egress_policy_free(NULL);
    fidius_host_egress_policy_free(garbage);
    fidius_host_free(host);
}

/* Several threads fetching through one plugin while its callback runs. */
static struct server *shared_server;

static void *fetch_worker(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < 5; i++) {
        char path[64], expected[128], args[FETCH_ARGS];
        snprintf(path, sizeof path, "/t%lld-%d", (long long)w->base, i);
        snprintf(expected, sizeof expected, "\"200 hello from %s\"", path);
        if (!json_is(w->plugin, "fetch", fetch_args(args, "GET", shared_server->port, path), expected)) w->errors++;
    }
    return NULL;
}

static void test_threads(struct server *server) {
    struct policy_log log;
    fidius_host_egress_policy_t *policy = NULL;
    fidius_host_t *host;
    fidius_host_plugin_t *p;
    int before = server_requests(server);

    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.lock, NULL);
    CHECK(fidius_host_egress_policy_new_callback(only_get, &log, NULL, &policy, NULL) == FIDIUS_HOST_STATUS_OK);
    host = new_host(policy);
    p = load_fetcher(host, NULL, FIDIUS_HOST_STATUS_OK);
    shared_server = server;
    run_workers(p, 1, fetch_worker);
    CHECK(log.calls == 20);
    CHECK(server_requests(server) == before + 20);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    fidius_host_egress_policy_free(policy);
    pthread_mutex_destroy(&log.lock);
}

/* A guest writing into a request body nobody reads blocks in the host; the
 * call's deadline ends the wait. */
static void test_blocked_body_write(void) {
    fidius_host_egress_policy_t *none = NULL;
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_t *host = NULL;
    fidius_host_plugin_t *p;
    CHECK(fidius_host_egress_policy_new_allow_list(NULL, 0, &none, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_egress_policy(b, none, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_set_wasm_deadline_ms(b, 300, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_builder_build(b, &host, NULL) == FIDIUS_HOST_STATUS_OK);
    p = load_fetcher(host, NULL, FIDIUS_HOST_STATUS_OK);
    CHECK(json_is(p, "stuff_body", "[0]", "0"));
    CHECK(json_fails(p, "stuff_body", "[1024]", FIDIUS_HOST_STATUS_TIMEOUT, "deadline"));
    CHECK(json_is(p, "stuff_body", "[0]", "0"));
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    fidius_host_egress_policy_free(none);
}

/* ---- sockets (tcp, udp) ------------------------------------------------ */

static fidius_host_plugin_t *load_dialer(const fidius_host_egress_policy_t *policy, fidius_host_status expected) {
    fidius_host_t *host = new_host(NULL);
    fidius_host_load_options_t *options = fidius_host_load_options_new();
    fidius_host_interface_t *iface = interface_file("dialer.toml");
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status st;
    CHECK(fidius_host_load_options_set_interface(options, iface, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_load_options_set_egress_policy(options, policy, NULL) == FIDIUS_HOST_STATUS_OK);
    st = fidius_host_load_path(host, path_of("wasm/dialer"), NT, NULL, 0, options, &p, &err);
    CHECK(st == expected);
    if (st != expected) fprintf(stderr, "  load: %s\n", err ? fidius_host_error_message(err) : "ok");
    if (expected == FIDIUS_HOST_STATUS_NO_EGRESS_POLICY) CHECK(error_says(err, expected, "\"tcp\" or \"udp\""));
    else fidius_host_error_free(err);
    fidius_host_load_options_free(options);
    fidius_host_interface_free(iface);
    fidius_host_free(host);
    return p;
}

/* What a socket callback saw. */
struct socket_seen {
    int calls, allow_port, port, special, tcp, had_host, by_name, lookups;
    char address[64];
    int freed;
};

/* Lookups of "localhost" only. */
static int32_t dns_rule(void *userdata, const char *plugin, const char *name) {
    struct socket_seen *seen = userdata;
    seen->lookups++;
    return strcmp(plugin, "SocketGuest") == 0 && strcmp(name, "localhost") == 0 ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                                                 : FIDIUS_HOST_EGRESS_DECISION_DENY;
}

/* localhost by name, and 127.0.0.1 itself (asked with no host name). */
static int32_t by_name_rule(void *userdata, const fidius_host_socket_target_t *t) {
    struct socket_seen *seen = userdata;
    if (t->host != NULL && strcmp(t->host, "localhost") == 0) {
        seen->by_name++;
        return FIDIUS_HOST_EGRESS_DECISION_ALLOW;
    }
    return t->host == NULL && strcmp(t->address, "127.0.0.1") == 0 ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                                     : FIDIUS_HOST_EGRESS_DECISION_DENY;
}

static int32_t socket_rule(void *userdata, const fidius_host_socket_target_t *t) {
    struct socket_seen *seen = userdata;
    seen->calls++;
    seen->port = t->port;
    seen->special = t->special;
    seen->tcp = t->protocol == FIDIUS_HOST_SOCKET_PROTOCOL_TCP;
    seen->had_host = t->host != NULL;
    snprintf(seen->address, sizeof seen->address, "%s", t->address);
    return t->port == seen->allow_port ? FIDIUS_HOST_EGRESS_DECISION_ALLOW : FIDIUS_HOST_EGRESS_DECISION_DENY;
}

static void socket_seen_freed(void *userdata) { ((struct socket_seen *)userdata)->freed++; }

static void test_sockets(struct server *server) {
    char pattern[64], args[128], url[64], *json = NULL, *method = NULL, *denied_url = NULL, *reason = NULL;
    const char *patterns[1] = {pattern};
    fidius_host_str_t list[1];
    fidius_host_egress_policy_t *allow = NULL, *callbacks = NULL;
    fidius_host_egress_callbacks_t rules = {NULL, socket_rule, NULL, NULL};
    struct socket_seen seen;
    fidius_host_plugin_t *p;
    fidius_host_error_t *err = NULL;
    int udp = socket(AF_INET, SOCK_DGRAM, 0), received;
    struct sockaddr_in udp_addr;
    socklen_t len = sizeof udp_addr;
    struct timeval timeout = {10, 0};

    /* TCP to an address the allow-list names (the HTTP server answers). */
    snprintf(pattern, sizeof pattern, "127.0.0.1:%d", server->port);
    list[0].data = patterns[0];
    list[0].len = strlen(pattern);
    CHECK(fidius_host_egress_policy_new_allow_list(list, 1, &allow, NULL) == FIDIUS_HOST_STATUS_OK);
    p = load_dialer(allow, FIDIUS_HOST_STATUS_OK);
    snprintf(args, sizeof args, "[\"127.0.0.1:%d\", \"hello\"]", server->port);
    CHECK(fidius_host_plugin_call_json(p, "tcp_exchange", NT, args, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(json && strstr(json, "HTTP/1.1 200 OK") != NULL);
    fidius_host_string_free(json);
    CHECK(fidius_host_plugin_denied_request_count(p) == 0);
    fidius_host_plugin_free(p);

    /* A socket callback: it sees the target, and its denial is logged. */
    memset(&seen, 0, sizeof seen);
    seen.allow_port = server->port;
    CHECK(fidius_host_egress_policy_new_callbacks(&rules, &seen, socket_seen_freed, &callbacks, NULL) ==
          FIDIUS_HOST_STATUS_OK);
    p = load_dialer(callbacks, FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_plugin_call_json(p, "tcp_exchange", NT, args, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_string_free(json);
    CHECK(seen.calls == 1 && seen.port == server->port && seen.special && seen.tcp && !seen.had_host &&
          strcmp(seen.address, "127.0.0.1") == 0);
    seen.allow_port = 0;
    CHECK(fidius_host_plugin_call_json(p, "tcp_exchange", NT, args, NT, &json, NULL, &err) ==
          FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(json == NULL && err && strcmp(fidius_host_error_plugin_code(err), "SOCKET") == 0);
    fidius_host_error_free(err);
    CHECK(fidius_host_plugin_denied_request_count(p) == 1);
    CHECK(fidius_host_plugin_denied_request(p, 0, &method, &denied_url, NULL) == FIDIUS_HOST_STATUS_OK);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", server->port);
    CHECK(strcmp(method, "TCP") == 0 && strcmp(denied_url, url) == 0);
    CHECK(fidius_host_plugin_denied_request_reason(p, 0, &reason, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(reason && strcmp(reason, "denied by the egress policy") == 0);
    fidius_host_string_free(method);
    fidius_host_string_free(denied_url);
    fidius_host_string_free(reason);
    CHECK(fidius_host_plugin_denied_request_reason(p, 1, &reason, &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(reason == NULL && error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "does not exist"));
    fidius_host_plugin_free(p);
    fidius_host_egress_policy_free(callbacks);
    CHECK(seen.freed == 1);

    /* By name: the DNS callback allows the lookup, and the socket callback
     * sees the name the answer was pinned to. */
    {
        fidius_host_egress_callbacks_t named = {NULL, by_name_rule, dns_rule, NULL};
        memset(&seen, 0, sizeof seen);
        CHECK(fidius_host_egress_policy_new_callbacks(&named, &seen, NULL, &callbacks, NULL) == FIDIUS_HOST_STATUS_OK);
        p = load_dialer(callbacks, FIDIUS_HOST_STATUS_OK);
        snprintf(args, sizeof args, "[\"localhost:%d\", \"hello\"]", server->port);
        CHECK(fidius_host_plugin_call_json(p, "tcp_exchange", NT, args, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(json && strstr(json, "HTTP/1.1 200 OK") != NULL);
        fidius_host_string_free(json);
        CHECK(seen.lookups == 1 && seen.by_name == 1);
        /* Another name is not looked up. */
        snprintf(args, sizeof args, "[\"ip6-localhost:%d\", \"hello\"]", server->port);
        CHECK(fidius_host_plugin_call_json(p, "tcp_exchange", NT, args, NT, &json, NULL, NULL) ==
              FIDIUS_HOST_STATUS_PLUGIN_ERROR);
        CHECK(fidius_host_plugin_denied_request(p, fidius_host_plugin_denied_request_count(p) - 1, &method, &denied_url,
                                                NULL) == FIDIUS_HOST_STATUS_OK);
        CHECK(strcmp(method, "DNS") == 0 && strcmp(denied_url, "dns://ip6-localhost") == 0);
        fidius_host_string_free(method);
        fidius_host_string_free(denied_url);
        fidius_host_plugin_free(p);
        fidius_host_egress_policy_free(callbacks);
        callbacks = NULL;
    }

    /* UDP: a datagram reaches an allowed address, and nothing else does. */
    memset(&udp_addr, 0, sizeof udp_addr);
    udp_addr.sin_family = AF_INET;
    udp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(udp >= 0 && bind(udp, (struct sockaddr *)&udp_addr, sizeof udp_addr) == 0);
    CHECK(getsockname(udp, (struct sockaddr *)&udp_addr, &len) == 0);
    CHECK(setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
    fidius_host_egress_policy_free(allow);
    allow = NULL;
    snprintf(pattern, sizeof pattern, "127.0.0.1:%d", ntohs(udp_addr.sin_port));
    list[0].len = strlen(pattern);
    CHECK(fidius_host_egress_policy_new_allow_list(list, 1, &allow, NULL) == FIDIUS_HOST_STATUS_OK);
    p = load_dialer(allow, FIDIUS_HOST_STATUS_OK);
    snprintf(args, sizeof args, "[\"127.0.0.1:%d\", \"ping\"]", ntohs(udp_addr.sin_port));
    CHECK(fidius_host_plugin_call_json(p, "udp_send", NT, args, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    fidius_host_string_free(json);
    {
        char buf[16];
        received = (int)recv(udp, buf, sizeof buf, 0);
        CHECK(received == 4 && memcmp(buf, "ping", 4) == 0);
    }
    snprintf(args, sizeof args, "[\"127.0.0.1:%d\", \"ping\"]", server->port);
    CHECK(fidius_host_plugin_call_json(p, "udp_send", NT, args, NT, &json, NULL, NULL) == FIDIUS_HOST_STATUS_PLUGIN_ERROR);
    CHECK(fidius_host_plugin_denied_request_count(p) == 1);
    fidius_host_plugin_free(p);
    close(udp);

    /* Fail closed: no policy, no load; NULL callbacks, userdata released. */
    CHECK(load_dialer(NULL, FIDIUS_HOST_STATUS_NO_EGRESS_POLICY) == NULL);
    seen.freed = 0;
    CHECK(fidius_host_egress_policy_new_callbacks(NULL, &seen, socket_seen_freed, &callbacks, &err) ==
          FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    CHECK(callbacks == NULL && seen.freed == 1 && error_says(err, FIDIUS_HOST_STATUS_NULL_ARGUMENT, "callbacks"));
    fidius_host_egress_policy_free(allow);
}

/* ---- credentials and the response hook ---------------------------------- */

/* What a credential-stamping policy issued and what its response callback
 * saw (status, whether a retry was available, the credential sent). */
struct credentials {
    pthread_mutex_t lock;
    int issued;
    int observed;
    int status[4];
    int retry_available[4];
    char sent[4][64];
};

/* Allows every request, sent with "Authorization: Bearer stale" the first
 * time and "Bearer fresh" after, and without the guest's x-fidius-fixture. */
static int32_t stamp_credential(void *userdata, const fidius_host_http_request_t *r) {
    struct credentials *c = userdata;
    fidius_host_error_t *err = NULL;
    char value[64];
    pthread_mutex_lock(&c->lock);
    snprintf(value, sizeof value, "Bearer %s", c->issued++ == 0 ? "stale" : "fresh");
    pthread_mutex_unlock(&c->lock);
    CHECK(r->edits != NULL);
    CHECK(fidius_host_header_edits_set(r->edits, "Authorization", value, NULL) == FIDIUS_HOST_STATUS_OK);
    CHECK(fidius_host_header_edits_set(r->edits, "x-fidius-fixture", NULL, NULL) == FIDIUS_HOST_STATUS_OK);
    /* What would change the request decided on is refused; the edits stay. */
    CHECK(fidius_host_header_edits_set(r->edits, "Host", "elsewhere.example", &err) == FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "\"host\""));
    CHECK(fidius_host_header_edits_set(r->edits, "x-bad", "a\r\nx-injected: 1", &err) ==
          FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    CHECK(error_says(err, FIDIUS_HOST_STATUS_INVALID_ARGUMENT, "control byte"));
    CHECK(fidius_host_header_edits_set(NULL, "a", "b", NULL) == FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    return FIDIUS_HOST_EGRESS_DECISION_ALLOW;
}

/* Records the response and retries once on 401. */
static int32_t retry_on_401(void *userdata, const fidius_host_http_request_t *r, const fidius_host_http_response_t *resp) {
    struct credentials *c = userdata;
    size_t i;
    CHECK(r->edits == NULL);
    pthread_mutex_lock(&c->lock);
    if (c->observed < 4) {
        c->status[c->observed] = resp->status;
        c->retry_available[c->observed] = resp->retry_available;
        for (i = 0; i < r->header_count; i++) {
            CHECK(strcmp(r->headers[i].name, "x-fidius-fixture") != 0);
            if (strcmp(r->headers[i].name, "authorization") == 0)
                snprintf(c->sent[c->observed], sizeof c->sent[0], "%s", r->headers[i].value);
        }
    }
    c->observed++;
    pthread_mutex_unlock(&c->lock);
    return resp->status == 401 ? FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE : FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD;
}

static void test_response_hook_retries_with_a_fresh_credential(struct server *server) {
    char args[FETCH_ARGS];
    struct credentials c;
    fidius_host_egress_callbacks_t callbacks;
    fidius_host_egress_policy_t *policy = NULL;
    fidius_host_t *host;
    fidius_host_plugin_t *p;
    int before = server_requests(server);

    memset(&c, 0, sizeof c);
    memset(&callbacks, 0, sizeof callbacks);
    pthread_mutex_init(&c.lock, NULL);
    callbacks.http = stamp_credential;
    callbacks.response = retry_on_401;
    CHECK(fidius_host_egress_policy_new_callbacks(&callbacks, &c, NULL, &policy, NULL) == FIDIUS_HOST_STATUS_OK);
    host = new_host(policy);
    p = load_fetcher(host, NULL, FIDIUS_HOST_STATUS_OK);
    /* The stale credential gets a 401 the guest never sees: the request
     * goes to the HTTP callback again and is sent with the fresh one. */
    CHECK(json_is(p, "fetch", fetch_args(args, "GET", server->port, "/private/report"), "\"200 hello from /private/report\""));
    CHECK(server_requests(server) == before + 2);
    CHECK(c.issued == 2 && c.observed == 2);
    CHECK(c.status[0] == 401 && c.retry_available[0] && strcmp(c.sent[0], "Bearer stale") == 0);
    CHECK(c.status[1] == 200 && !c.retry_available[1] && strcmp(c.sent[1], "Bearer fresh") == 0);
    CHECK(fidius_host_plugin_denied_request_count(p) == 0);
    fidius_host_plugin_free(p);
    fidius_host_free(host);
    fidius_host_egress_policy_free(policy);
    pthread_mutex_destroy(&c.lock);
}

static void run_tests(void) {
    struct server server;
    server_start(&server);
    test_sockets(&server);
    test_callback_policy(&server);
    test_allow_list(&server);
    test_response_hook_retries_with_a_fresh_credential(&server);
    test_fails_closed();
    test_blocked_body_write();
    test_threads(&server);
    server_stop(&server);
}

int main(void) {
    return check_main(run_tests);
}
