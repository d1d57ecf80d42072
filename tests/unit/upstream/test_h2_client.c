/*
 * test_h2_client.c - the upstream HTTP/2 client (src/upstream/h2_client.c) through the pool of
 * src/upstream/http_client.c with http2 set, against mcplex's own HTTP/2 server codec
 * (src/http/h2_server.c) on a 127.0.0.1 listener of the same event_base: many requests as
 * streams of one connection, request bodies, response streaming, cancel, a server that goes away.
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http/h2_server.h"
#include "net/listener.h"
#include "upstream/http_client.h"

typedef struct srv {
    struct event_base *base;
    mcplex_tcp_listener_t *l;
    int n_accepted;
    int n_requests;
    mcplex_http_stream_t *held;
} srv_t;

static void
handler(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    srv_t *s = ctx;
    char out[256];
    mcplex_http_header_t h = {"x-seen-path", 11, req->path, strlen(req->path)};

    s->n_requests++;
    if (strcmp(req->path, "/hold") == 0) {
        mcplex_http_stream_start(stream, 200, NULL, 0);
        mcplex_http_stream_write(stream, "part1;", 6);
        s->held = stream;
        return;
    }
    snprintf(out, sizeof(out), "%s %s %s|%.*s", req->method, req->path, req->authority ? req->authority : "-",
             (int)req->body_len, req->body);
    mcplex_http_stream_respond(stream, 200, &h, 1, out, strlen(out));
}

static void
on_accept(void *arg, int fd, const struct sockaddr *peer, int peer_len)
{
    srv_t *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);

    (void)peer;
    (void)peer_len;
    s->n_accepted++;
    assert_non_null(mcplex_h2_conn_create(s->base, bev, "test-peer", NULL, NULL, handler, s));
}

typedef struct res {
    int status;
    char seen_path[64];
    char body[1024];
    size_t body_len;
    bool complete;
    char error[128];
} res_t;

static void
r_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n)
{
    res_t *r = arg;

    r->status = status;
    for (size_t i = 0; i < n; i++)
        if (strcmp(hdrs[i].name, "x-seen-path") == 0)
            snprintf(r->seen_path, sizeof(r->seen_path), "%s", hdrs[i].value);
}

static void
r_body(void *arg, const char *data, size_t len)
{
    res_t *r = arg;

    if (r->body_len + len < sizeof(r->body)) {
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
    }
}

static void
r_complete(void *arg)
{
    ((res_t *)arg)->complete = true;
}

static void
r_error(void *arg, const char *reason)
{
    snprintf(((res_t *)arg)->error, sizeof(((res_t *)arg)->error), "%s", reason);
}

static const mcplex_http_client_cbs_t cbs = {r_headers, r_body, r_complete, r_error};

static void
run_ms(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static mcplex_http_pool_t *
setup_pool(srv_t *s)
{
    char err[128];
    mcplex_http_endpoint_t ep = {"127.0.0.1", 0, 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1, .http2 = 1};

    memset(s, 0, sizeof(*s));
    s->base = event_base_new();
    s->l = mcplex_tcp_listener_create(s->base, "127.0.0.1", 0, 16, on_accept, s, err, sizeof(err));
    assert_non_null(s->l);
    ep.port = mcplex_tcp_listener_port(s->l);
    return mcplex_http_pool_create(s->base, NULL, &cfg);
}

static void
teardown_pool(srv_t *s, mcplex_http_pool_t *pool)
{
    mcplex_http_pool_destroy(pool);
    mcplex_tcp_listener_destroy(s->l);
    for (int i = 0; i < 50 && mcplex_h2_conn_count() > 0; i++)
        run_ms(s->base, 10);
    assert_int_equal(mcplex_h2_conn_count(), 0);
    event_base_free(s->base);
}

static void
test_many_requests_one_connection(void **state)
{
    srv_t s;
    mcplex_http_pool_t *pool = setup_pool(&s);
    res_t r[10];
    mcplex_http_header_t ct = {"Content-Type", 12, "application/json", 16};

    (void)state;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 10; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/r%d?q=1", i);
        assert_non_null(mcplex_http_client_request(pool, "POST", path, "up.test", &ct, 1, "{}", 2, 5000, &cbs,
                                                   &r[i]));
    }
    for (int i = 0; i < 100 && !r[9].complete; i++)
        run_ms(s.base, 10);
    for (int i = 0; i < 10; i++) {
        char want[64];
        assert_true(r[i].complete);
        assert_int_equal(r[i].status, 200);
        snprintf(want, sizeof(want), "POST /r%d up.test|{}", i);
        assert_int_equal(r[i].body_len, strlen(want));
        assert_memory_equal(r[i].body, want, strlen(want));
    }
    assert_int_equal(s.n_accepted, 1);
    assert_int_equal(s.n_requests, 10);
    teardown_pool(&s, pool);
}

static void
test_streaming_and_cancel(void **state)
{
    srv_t s;
    mcplex_http_pool_t *pool = setup_pool(&s);
    res_t r;
    mcplex_http_client_req_t *req;

    (void)state;
    memset(&r, 0, sizeof(r));
    req = mcplex_http_client_request(pool, "GET", "/hold", NULL, NULL, 0, NULL, 0, 0, &cbs, &r);
    assert_non_null(req);
    for (int i = 0; i < 100 && r.body_len < 6; i++)
        run_ms(s.base, 10);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "part1;", 6);
    assert_false(r.complete);
    mcplex_http_stream_write(s.held, "part2;", 6);
    run_ms(s.base, 50);
    assert_int_equal(r.body_len, 12);
    mcplex_http_client_cancel(req);
    run_ms(s.base, 50);
    assert_false(r.complete);
    assert_string_equal(r.error, "");
    teardown_pool(&s, pool);
}

static void
test_connect_refused(void **state)
{
    srv_t s;
    mcplex_http_pool_t *pool = setup_pool(&s);
    res_t r;

    (void)state;
    mcplex_tcp_listener_destroy(s.l);
    s.l = NULL;
    memset(&r, 0, sizeof(r));
    assert_non_null(mcplex_http_client_request(pool, "GET", "/x", NULL, NULL, 0, NULL, 0, 2000, &cbs, &r));
    for (int i = 0; i < 100 && r.error[0] == '\0'; i++)
        run_ms(s.base, 10);
    assert_true(strstr(r.error, "connect") != NULL);
    mcplex_http_pool_destroy(pool);
    event_base_free(s.base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_requests_one_connection),
        cmocka_unit_test(test_streaming_and_cancel),
        cmocka_unit_test(test_connect_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
