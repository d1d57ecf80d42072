/*
 * test_http_client.c - unit tests of the upstream HTTP/1.1 client and its keep-alive pool
 * (src/upstream/http_client.c) against a small scripted HTTP server that runs on the same
 * event_base, on 127.0.0.1. The server is raw (evconnlistener + bufferevents) so the tests can
 * script the edge cases: chunks with delays, 1xx, close after response, drop a reused
 * connection, responses until EOF, malformed responses, no response at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/log.h"
#include "upstream/http_client.h"

/* ---- the scripted server --------------------------------------------------------------------- */

typedef struct sconn sconn_t;

typedef struct srv {
    struct evconnlistener *lev;
    sconn_t *conns; /* open connections, freed by srv_stop() */
    uint16_t port;
    int accepts;  /* connections accepted */
    int requests; /* requests read (including ones dropped unanswered) */
    int closes;   /* connections that ended, by either side */
    int close_after_response; /* close each connection once its response is flushed */
    int drop_reused_once;     /* close, unanswered, the next request on a reused connection */
    char last_req[4096];      /* head and body of the last request */
} srv_t;

struct sconn {
    srv_t *srv;
    sconn_t *prev, *next;
    struct bufferevent *bev;
    struct event *timer; /* drives the delayed chunks of /chunked */
    int nreq;            /* requests on this connection */
    int chunk_step;
    int close_when_flushed;
};

static struct event_base *g_base;

static void
sconn_free(sconn_t *sc)
{
    sc->srv->closes++;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        sc->srv->conns = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    if (sc->timer != NULL)
        event_free(sc->timer);
    bufferevent_free(sc->bev);
    free(sc);
}

static void
sconn_send(sconn_t *sc, const char *text)
{
    bufferevent_write(sc->bev, text, strlen(text));
}

static void
chunk_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    sconn_t *sc = arg;
    static const char *const chunks[] = {"5\r\npart1\r\n", "5\r\npart2\r\n", "5\r\npart3\r\n", "0\r\n\r\n"};
    struct timeval tv = {0, 30000};

    sconn_send(sc, chunks[sc->chunk_step++]);
    if (sc->chunk_step < 4)
        evtimer_add(sc->timer, &tv);
}

static void
sconn_respond(sconn_t *sc, const char *method, const char *path, const char *body, size_t body_len)
{
    srv_t *srv = sc->srv;
    char buf[2048];
    struct timeval tv = {0, 30000};

    if (srv->drop_reused_once && sc->nreq > 1) {
        srv->drop_reused_once = 0;
        sconn_free(sc);
        return;
    }
    if (strcmp(path, "/hello") == 0) {
        sconn_send(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Reply: Yes\r\n\r\nhello");
    } else if (strcmp(path, "/echo") == 0) {
        snprintf(buf, sizeof(buf), "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n%s %.*s",
                 strlen(method) + 1 + body_len, method, (int)body_len, body);
        sconn_send(sc, buf);
    } else if (strcmp(path, "/chunked") == 0) {
        sconn_send(sc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Type: text/event-stream\r\n\r\n");
        sc->chunk_step = 0;
        if (sc->timer == NULL)
            sc->timer = evtimer_new(g_base, chunk_timer_cb, sc);
        evtimer_add(sc->timer, &tv);
    } else if (strcmp(path, "/close") == 0) {
        sconn_send(sc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye");
        sc->close_when_flushed = 1;
    } else if (strcmp(path, "/eof") == 0) {
        sconn_send(sc, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-");
        sconn_send(sc, "close");
        sc->close_when_flushed = 1;
    } else if (strcmp(path, "/continue") == 0) {
        sconn_send(sc, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/bad") == 0) {
        sconn_send(sc, "garbage that is not http\r\n\r\n");
    } else if (strcmp(path, "/slow") == 0) {
        /* never answers */
    } else {
        sconn_send(sc, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    if (srv->close_after_response)
        sc->close_when_flushed = 1;
}

static void
sconn_read_cb(struct bufferevent *bev, void *arg)
{
    sconn_t *sc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        char head[2048], method[16], path[256], body[2048];
        size_t head_len, cl = 0;
        const char *p;

        if (end.pos < 0)
            return;
        head_len = (size_t)end.pos + 4;
        if (head_len >= sizeof(head))
            return;
        evbuffer_copyout(in, head, head_len);
        head[head_len] = '\0';
        p = strcasestr(head, "\r\ncontent-length:");
        if (p != NULL)
            cl = strtoul(p + 17, NULL, 10);
        if (cl >= sizeof(body) || evbuffer_get_length(in) < head_len + cl)
            return;
        evbuffer_drain(in, head_len);
        evbuffer_remove(in, body, cl);
        body[cl] = '\0';
        snprintf(sc->srv->last_req, sizeof(sc->srv->last_req), "%s%s", head, body);
        if (sscanf(head, "%15s %255s", method, path) != 2)
            return;
        sc->srv->requests++;
        sc->nreq++;
        sconn_respond(sc, method, path, body, cl);
        return; /* one request at a time: the client does not pipeline */
    }
}

static void
sconn_write_cb(struct bufferevent *bev, void *arg)
{
    sconn_t *sc = arg;

    if (sc->close_when_flushed && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        sconn_free(sc);
}

static void
sconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        sconn_free(arg);
}

static void
srv_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    srv_t *srv = arg;
    sconn_t *sc = calloc(1, sizeof(*sc));

    srv->accepts++;
    sc->srv = srv;
    sc->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = sc;
    srv->conns = sc;
    sc->bev = bufferevent_socket_new(g_base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(sc->bev, sconn_read_cb, sconn_write_cb, sconn_event_cb, sc);
    bufferevent_enable(sc->bev, EV_READ | EV_WRITE);
}

static void
srv_start(srv_t *srv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);

    memset(srv, 0, sizeof(*srv));
    srv->lev = evconnlistener_new_bind(g_base, srv_accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                       64, (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(srv->lev);
    getsockname(evconnlistener_get_fd(srv->lev), (struct sockaddr *)&sin, &slen);
    srv->port = ntohs(sin.sin_port);
}

static void
srv_stop(srv_t *srv)
{
    evconnlistener_free(srv->lev);
    srv->lev = NULL;
    while (srv->conns != NULL)
        sconn_free(srv->conns);
}

/* ---- the client side ------------------------------------------------------------------------- */

typedef struct result {
    int status;
    int n_headers_calls;
    int saw_x_reply; /* a lower-cased "x-reply: Yes" header */
    int n_body;
    char body[4096];
    size_t body_len;
    int complete;
    int error;
    char reason[160];
    /* behaviours */
    int cancel_in_headers;
    int destroy_in_body;
    int followup_in_complete; /* start another GET /hello from on_complete */
    struct result *followup;
    mcplex_http_client_req_t *req;
    mcplex_http_pool_t *pool;
} result_t;

static int g_pending; /* requests whose end the current test waits for */

static void test_end_one(void);

static void
cb_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n)
{
    result_t *r = arg;

    r->status = status;
    r->n_headers_calls++;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(hdrs[i].name), hdrs[i].name_len);
        if (strcmp(hdrs[i].name, "x-reply") == 0 && strcmp(hdrs[i].value, "Yes") == 0)
            r->saw_x_reply = 1;
    }
    if (r->cancel_in_headers) {
        mcplex_http_client_cancel(r->req);
        mcplex_http_client_cancel(r->req); /* twice: still a no-op while we are inside */
        test_end_one();
    }
}

static void
cb_body(void *arg, const char *data, size_t len)
{
    result_t *r = arg;

    assert_true(r->n_headers_calls == 1);
    r->n_body++;
    assert_true(r->body_len + len < sizeof(r->body));
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    if (r->destroy_in_body) {
        mcplex_http_pool_destroy(r->pool);
        test_end_one();
    }
}

static const mcplex_http_client_cbs_t cbs;

static void
cb_complete(void *arg)
{
    result_t *r = arg;

    r->complete++;
    mcplex_http_client_cancel(r->req); /* allowed: the request lives until we return */
    if (r->followup_in_complete) {
        r->followup->pool = r->pool;
        r->followup->req = mcplex_http_client_request(r->pool, "GET", "/hello", NULL, NULL, 0, NULL, 0, 2000,
                                                      &cbs, r->followup);
        assert_non_null(r->followup->req);
    }
    test_end_one();
}

static void
cb_error(void *arg, const char *reason)
{
    result_t *r = arg;

    r->error++;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    test_end_one();
}

static const mcplex_http_client_cbs_t cbs = {
    .on_headers = cb_headers,
    .on_body = cb_body,
    .on_complete = cb_complete,
    .on_error = cb_error,
};

static void
test_end_one(void)
{
    if (--g_pending == 0)
        event_base_loopbreak(g_base);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(g_base);
}

/* Runs the loop until g_pending reaches 0 or |ms| pass. */
static void
run_loop(int ms)
{
    struct event *wd = evtimer_new(g_base, watchdog_cb, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(wd, &tv);
    event_base_dispatch(g_base);
    event_free(wd);
}

static mcplex_http_client_req_t *
start(mcplex_http_pool_t *pool, const char *method, const char *path, const char *body, uint32_t timeout_ms,
      result_t *r)
{
    r->pool = pool;
    r->req = mcplex_http_client_request(pool, method, path, NULL, NULL, 0, body, body ? strlen(body) : 0,
                                        timeout_ms, &cbs, r);
    assert_non_null(r->req);
    return r->req;
}

static mcplex_http_pool_t *
pool_one(uint16_t port, uint32_t connect_timeout_ms)
{
    mcplex_http_endpoint_t ep = {.host = "127.0.0.1", .port = port, .weight = 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1,
                                     .connect_timeout_ms = connect_timeout_ms};
    mcplex_http_pool_t *pool = mcplex_http_pool_create(g_base, NULL, &cfg);

    assert_non_null(pool);
    return pool;
}

static int
setup(void **state)
{
    g_base = event_base_new();
    g_pending = 0;
    return g_base == NULL;
}

static int
teardown(void **state)
{
    event_base_free(g_base);
    g_base = NULL;
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void
test_get_and_post(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0};
    mcplex_http_header_t hdrs[] = {
        {"X-Test", 6, "one", 3},
        {"Host", 4, "ignored", 7}, /* ours wins */
    };
    mcplex_http_pool_t *pool;
    char want_host[64];

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);
    assert_int_equal(r1.error, 0);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r1.saw_x_reply, 1);
    assert_string_equal(r1.body, "hello");
    snprintf(want_host, sizeof(want_host), "Host: 127.0.0.1:%u\r\n", srv.port);
    assert_non_null(strstr(srv.last_req, want_host));
    assert_null(strstr(srv.last_req, "Content-Length"));

    g_pending = 1;
    r2.pool = pool;
    r2.req = mcplex_http_client_request(pool, "POST", "/echo", "example.test", hdrs, 2, "abc", 3, 2000, &cbs,
                                        &r2);
    assert_non_null(r2.req);
    run_loop(2000);
    assert_int_equal(r2.complete, 1);
    assert_int_equal(r2.status, 201);
    assert_string_equal(r2.body, "POST abc");
    assert_non_null(strstr(srv.last_req, "POST /echo HTTP/1.1\r\nHost: example.test\r\nX-Test: one\r\n"
                                         "Content-Length: 3\r\n\r\nabc"));
    assert_null(strstr(srv.last_req, "ignored"));

    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_bad_input(void **state)
{
    srv_t srv;
    result_t r = {0};
    mcplex_http_header_t bad = {"X-Evil", 6, "a\r\nInjected: 1", 14};
    mcplex_http_endpoint_t ep = {.host = "no-such-host.invalid", .port = 80, .weight = 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1};
    mcplex_http_pool_t *pool;

    assert_null(mcplex_http_pool_create(g_base, NULL, &cfg)); /* a name needs a resolver */
    cfg.n_endpoints = 0;
    assert_null(mcplex_http_pool_create(g_base, NULL, &cfg));
    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    assert_null(mcplex_http_client_request(pool, "GET", "/a b", NULL, NULL, 0, NULL, 0, 0, &cbs, &r));
    assert_null(mcplex_http_client_request(pool, "GET", "/", NULL, &bad, 1, NULL, 0, 0, &cbs, &r));
    assert_null(mcplex_http_client_request(pool, "GET", "/", "a\nb", NULL, 0, NULL, 0, 0, &cbs, &r));
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
    assert_int_equal(srv.accepts, 0);
}

static void
test_chunked_streamed(void **state)
{
    srv_t srv;
    result_t r = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/chunked", NULL, 0, &r);
    run_loop(3000);
    assert_int_equal(r.complete, 1);
    assert_int_equal(r.error, 0);
    assert_string_equal(r.body, "part1part2part3");
    assert_true(r.n_body >= 3);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_keepalive_reuse(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0}, r3 = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);

    /* The second request goes out on the same connection, and so does a third one started from
     * inside the second one's on_complete. */
    g_pending = 2;
    r2.followup_in_complete = 1;
    r2.followup = &r3;
    start(pool, "POST", "/echo", "x", 2000, &r2);
    run_loop(2000);
    assert_int_equal(r2.complete, 1);
    assert_int_equal(r3.complete, 1);
    assert_string_equal(r3.body, "hello");
    assert_int_equal(srv.accepts, 1);
    assert_int_equal(srv.requests, 3);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_server_closes_idle(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    srv.close_after_response = 1;
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);
    run_loop(100); /* the client sees the idle connection close and drops it */
    assert_int_equal(srv.closes, 1);

    srv.close_after_response = 0;
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r2);
    run_loop(2000);
    assert_int_equal(r2.complete, 1);
    assert_int_equal(r2.error, 0);
    assert_int_equal(srv.accepts, 2);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_retry_once_on_reused(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);

    /* The server closes the reused connection when the request arrives, unanswered (the
     * keep-alive race); the client sends it again on a new connection. */
    srv.drop_reused_once = 1;
    g_pending = 1;
    start(pool, "POST", "/echo", "again", 2000, &r2);
    run_loop(2000);
    assert_int_equal(r2.error, 0);
    assert_int_equal(r2.complete, 1);
    assert_string_equal(r2.body, "POST again");
    assert_int_equal(srv.accepts, 2);
    assert_int_equal(srv.requests, 3);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_connect_refused(void **state)
{
    result_t r = {0};
    mcplex_http_pool_t *pool;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A port that was just free: nothing listens there. */
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(fd, (struct sockaddr *)&sin, &slen);
    close(fd);
    pool = pool_one(ntohs(sin.sin_port), 0);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 2000, &r);
    run_loop(3000);
    assert_int_equal(r.error, 1);
    assert_int_equal(r.complete, 0);
    assert_int_equal(r.n_headers_calls, 0);
    assert_non_null(strstr(r.reason, "connect"));
    mcplex_http_pool_destroy(pool);
}

static void
test_connect_timeout(void **state)
{
    result_t r = {0};
    mcplex_http_pool_t *pool;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int fillers[8];
    size_t n_fillers = 0;

    /* A listener that never accepts, with its backlog filled: further SYNs go unanswered. */
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    getsockname(lfd, (struct sockaddr *)&sin, &slen);
    for (; n_fillers < sizeof(fillers) / sizeof(fillers[0]); n_fillers++) {
        fillers[n_fillers] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[n_fillers], (struct sockaddr *)&sin, sizeof(sin));
    }
    usleep(50000);
    pool = pool_one(ntohs(sin.sin_port), 200);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 0, &r);
    run_loop(3000);
    assert_int_equal(r.error, 1);
    if (strcmp(r.reason, "connect timeout") != 0) {
        /* Some network stacks refuse instead of dropping SYNs to a full backlog. */
        print_message("note: connect was not left pending (%s); connect timeout not exercised\n", r.reason);
    }
    mcplex_http_pool_destroy(pool);
    for (size_t i = 0; i < n_fillers; i++)
        close(fillers[i]);
    close(lfd);
}

static void
test_request_timeout(void **state)
{
    srv_t srv;
    result_t r = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/slow", NULL, 150, &r);
    run_loop(3000);
    assert_int_equal(r.error, 1);
    assert_string_equal(r.reason, "timeout");
    run_loop(100);
    assert_int_equal(srv.closes, 1); /* the connection was closed */
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_connection_close(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/close", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);
    assert_string_equal(r1.body, "bye");
    g_pending = 1;
    start(pool, "GET", "/close", NULL, 2000, &r2);
    run_loop(2000);
    assert_int_equal(r2.complete, 1);
    assert_int_equal(r2.error, 0);
    assert_int_equal(srv.accepts, 2);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_read_until_eof_and_1xx(void **state)
{
    srv_t srv;
    result_t r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    start(pool, "GET", "/eof", NULL, 2000, &r1);
    run_loop(2000);
    assert_int_equal(r1.complete, 1);
    assert_int_equal(r1.error, 0);
    assert_string_equal(r1.body, "until-close");

    g_pending = 1;
    start(pool, "GET", "/continue", NULL, 2000, &r2);
    run_loop(2000);
    assert_int_equal(r2.complete, 1);
    assert_int_equal(r2.n_headers_calls, 1);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.body, "ok");

    g_pending = 1;
    start(pool, "GET", "/bad", NULL, 2000, &r3);
    run_loop(2000);
    assert_int_equal(r3.error, 1);
    assert_int_equal(r3.complete, 0);

    g_pending = 1;
    start(pool, "HEAD", "/hello", NULL, 2000, &r4);
    run_loop(2000);
    assert_int_equal(r4.complete, 1);
    assert_int_equal(r4.status, 200);
    assert_int_equal(r4.body_len, 0);
    assert_int_equal(srv.accepts, 3); /* /eof closed; /continue's connection served /bad, then closed */
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_cancel_in_headers(void **state)
{
    srv_t srv;
    result_t r = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    r.cancel_in_headers = 1;
    start(pool, "GET", "/chunked", NULL, 0, &r);
    run_loop(2000);
    assert_int_equal(r.n_headers_calls, 1);
    run_loop(200); /* the chunks would come now */
    assert_int_equal(r.n_body, 0);
    assert_int_equal(r.complete, 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(srv.closes, 1);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_destroy_in_body(void **state)
{
    srv_t srv;
    result_t r = {0}, other = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    g_pending = 1;
    r.destroy_in_body = 1;
    start(pool, "GET", "/chunked", NULL, 0, &r);
    start(pool, "GET", "/slow", NULL, 0, &other);
    run_loop(2000);
    assert_int_equal(r.n_body, 1);
    run_loop(200);
    assert_int_equal(r.complete + r.error + other.complete + other.error, 0);
    assert_int_equal(srv.closes, 2);
    srv_stop(&srv);
}

static void
test_cancel_before_connect(void **state)
{
    srv_t srv;
    result_t r = {0};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    pool = pool_one(srv.port, 0);
    mcplex_http_client_cancel(start(pool, "GET", "/hello", NULL, 100, &r));
    run_loop(300);
    assert_int_equal(r.complete + r.error + r.n_headers_calls, 0);
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_idle_timeout_and_max_idle(void **state)
{
    srv_t srv;
    result_t r[3];
    mcplex_http_endpoint_t ep = {.host = "127.0.0.1", .weight = 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1, .max_idle_per_endpoint = 1,
                                     .idle_timeout_ms = 150};
    mcplex_http_pool_t *pool;

    srv_start(&srv);
    ep.port = srv.port;
    pool = mcplex_http_pool_create(g_base, NULL, &cfg);
    assert_non_null(pool);
    memset(r, 0, sizeof(r));
    g_pending = 3;
    for (int i = 0; i < 3; i++)
        start(pool, "GET", "/hello", NULL, 2000, &r[i]);
    run_loop(2000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].complete, 1);
    assert_int_equal(srv.accepts, 3);
    run_loop(50);
    assert_int_equal(srv.closes, 2); /* only one connection stays idle */
    run_loop(300);
    assert_int_equal(srv.closes, 3); /* and it is closed after the idle timeout */
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
}

static void
test_weighted_pick(void **state)
{
    srv_t a, b;
    result_t r[40];
    mcplex_http_endpoint_t eps[2];
    mcplex_http_pool_config_t cfg = {.endpoints = eps, .n_endpoints = 2};
    mcplex_http_pool_t *pool;

    srv_start(&a);
    srv_start(&b);
    eps[0] = (mcplex_http_endpoint_t){.host = "127.0.0.1", .port = a.port, .weight = 3};
    eps[1] = (mcplex_http_endpoint_t){.host = "127.0.0.1", .port = b.port, .weight = 1};
    pool = mcplex_http_pool_create(g_base, NULL, &cfg);
    assert_non_null(pool);
    /* All in flight at once: none can find an idle connection, so each opens a new one. */
    memset(r, 0, sizeof(r));
    g_pending = 40;
    for (int i = 0; i < 40; i++)
        start(pool, "GET", "/hello", NULL, 3000, &r[i]);
    run_loop(5000);
    for (int i = 0; i < 40; i++)
        assert_int_equal(r[i].complete, 1);
    assert_int_equal(a.accepts, 30);
    assert_int_equal(b.accepts, 10);
    mcplex_http_pool_destroy(pool);
    srv_stop(&a);
    srv_stop(&b);
}

static void
test_hostname_via_evdns(void **state)
{
    srv_t srv;
    result_t r = {0};
    struct evdns_base *dns = evdns_base_new(g_base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                        EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    mcplex_http_endpoint_t ep = {.host = "localhost", .weight = 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1};
    mcplex_http_pool_t *pool;
    char want_host[64];

    assert_non_null(dns);
    srv_start(&srv);
    ep.port = srv.port;
    pool = mcplex_http_pool_create(g_base, dns, &cfg);
    assert_non_null(pool);
    g_pending = 1;
    start(pool, "GET", "/hello", NULL, 3000, &r);
    run_loop(3000);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.complete, 1);
    assert_string_equal(r.body, "hello");
    snprintf(want_host, sizeof(want_host), "Host: localhost:%u\r\n", srv.port);
    assert_non_null(strstr(srv.last_req, want_host));
    mcplex_http_pool_destroy(pool);
    srv_stop(&srv);
    evdns_base_free(dns, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closes_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_once_on_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_until_eof_and_1xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_in_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_and_max_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weighted_pick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname_via_evdns, setup, teardown),
    };

    if (getenv("MCPLEX_TEST_DEBUG") != NULL)
        mcplex_log_set_level(MCPLEX_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
