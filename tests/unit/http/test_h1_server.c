/*
 * test_h1_server.c - the HTTP/1.1 server codec (src/http/h1_server.c) and the TCP listener
 * (src/net/listener.c) over real sockets on 127.0.0.1. The test's client socket is served by
 * the same event_base as the server, and responses are checked with http-parser in response
 * mode. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <http_parser.h>

#include "http/h1_server.h"
#include "http/http.h"
#include "net/listener.h"

#define MAX_HELD 8
#define MAX_CONNS 8
#define MAX_RESP 8

typedef enum mode {
    MODE_ECHO = 0,    /* answer at once: "<method> <path>[?query]|<body>" */
    MODE_HOLD,        /* keep the stream; the test answers later */
    MODE_STREAM,      /* a chunked response with two SSE events, at once */
    MODE_STREAM_HOLD, /* start a chunked response and keep the stream */
    MODE_CLOSE_CONN,  /* close the connection from inside the handler */
} mode_t_;

typedef struct srv {
    struct event_base *base;
    mcplex_tcp_listener_t *listener;
    mcplex_http_limits_t limits;
    mode_t_ mode;
    mcplex_h1_conn_t *conns[MAX_CONNS];
    int n_accepted;
    int n_conn_closed;
    mcplex_http_stream_t *held[MAX_HELD];
    int n_held;
    int n_stream_closed;
    int n_requests;
    char last[4096];       /* the last request, as "<method> <target>|<authority>|<body>" */
    char last_hdr[256];    /* the value of "x-test" in the last request */
    int last_minor;
} srv_t;

typedef struct client {
    int fd;
    struct event *ev;
    char buf[65536];
    size_t len;
    bool eof;
} client_t;

typedef struct resp {
    int status;
    char headers[2048]; /* "name: value\n" lines, names lower-cased */
    char body[8192];
    size_t body_len;
} resp_t;

/* ---- server side ------------------------------------------------------------------------- */

static void
on_stream_close(void *arg, mcplex_http_stream_t *st)
{
    srv_t *srv = arg;

    srv->n_stream_closed++;
    for (int i = 0; i < srv->n_held; i++) {
        if (srv->held[i] == st) {
            memmove(&srv->held[i], &srv->held[i + 1], (size_t)(srv->n_held - i - 1) * sizeof(srv->held[0]));
            srv->n_held--;
            break;
        }
    }
}

static void
hold(srv_t *srv, mcplex_http_stream_t *st)
{
    assert_true(srv->n_held < MAX_HELD);
    srv->held[srv->n_held++] = st;
    mcplex_http_stream_set_close_cb(st, on_stream_close, srv);
}

/* Takes the oldest held stream. */
static mcplex_http_stream_t *
unhold(srv_t *srv)
{
    mcplex_http_stream_t *st;

    assert_true(srv->n_held > 0);
    st = srv->held[0];
    memmove(&srv->held[0], &srv->held[1], (size_t)(srv->n_held - 1) * sizeof(srv->held[0]));
    srv->n_held--;
    return st;
}

static void
handler(void *ctx, mcplex_http_stream_t *st, const mcplex_http_request_t *req)
{
    srv_t *srv = ctx;
    const char *x = mcplex_http_request_header(req, "x-test");
    static const mcplex_http_header_t text_hdrs[] = {
        {"Content-Type", 12, "text/plain", 10},
        {"Content-Length", 14, "999", 3}, /* the codec's own framing wins */
    };
    static const mcplex_http_header_t sse_hdrs[] = {{"Content-Type", 12, "text/event-stream", 17}};

    srv->n_requests++;
    srv->last_minor = req->http_minor;
    snprintf(srv->last, sizeof(srv->last), "%s %s%s%s|%s|%s", req->method, req->path, req->query ? "?" : "",
             req->query ? req->query : "", req->authority ? req->authority : "-", req->body);
    assert_int_equal(strlen(req->body), req->body_len);
    snprintf(srv->last_hdr, sizeof(srv->last_hdr), "%s", x != NULL ? x : "-");
    assert_int_equal(strncmp(mcplex_http_stream_peer(st), "127.0.0.1:", 10), 0);

    switch (srv->mode) {
    case MODE_ECHO: {
        char body[4200];
        int n = snprintf(body, sizeof(body), "%s %s%s%s|%s", req->method, req->path, req->query ? "?" : "",
                         req->query ? req->query : "", req->body);
        if (n >= (int)sizeof(body))
            n = (int)sizeof(body) - 1; /* truncated echo of a large body */
        assert_int_equal(mcplex_http_stream_respond(st, 200, text_hdrs, 2, body, (size_t)n), 0);
        break;
    }
    case MODE_HOLD:
        hold(srv, st);
        break;
    case MODE_STREAM:
        assert_int_equal(mcplex_http_stream_start(st, 200, sse_hdrs, 1), 0);
        assert_int_equal(mcplex_http_stream_respond(st, 200, NULL, 0, "", 0), -1); /* already started */
        assert_int_equal(mcplex_http_stream_write(st, "data: a\n\n", 9), 0);
        assert_int_equal(mcplex_http_stream_write(st, "", 0), 0); /* must not end the body */
        assert_int_equal(mcplex_http_stream_write(st, "data: b\n\n", 9), 0);
        assert_int_equal(mcplex_http_stream_finish(st), 0);
        break;
    case MODE_STREAM_HOLD:
        assert_int_equal(mcplex_http_stream_start(st, 200, sse_hdrs, 1), 0);
        assert_int_equal(mcplex_http_stream_write(st, "data: first\n\n", 13), 0);
        hold(srv, st);
        break;
    case MODE_CLOSE_CONN:
        hold(srv, st);
        assert_true(srv->n_accepted > 0);
        mcplex_h1_conn_close(srv->conns[srv->n_accepted - 1]);
        mcplex_h1_conn_close(srv->conns[srv->n_accepted - 1]); /* a no-op the second time */
        break;
    }
}

static void
on_conn_closed(void *arg, mcplex_h1_conn_t *conn)
{
    srv_t *srv = arg;

    for (int i = 0; i < srv->n_accepted; i++) {
        if (srv->conns[i] == conn) {
            srv->conns[i] = NULL;
            srv->n_conn_closed++;
        }
    }
}

static void
on_accept(void *arg, int fd, const struct sockaddr *peer, int peer_len)
{
    srv_t *srv = arg;
    mcplex_h1_conn_t *conn;

    assert_true(srv->n_accepted < MAX_CONNS);
    conn = mcplex_h1_conn_create(srv->base, fd, peer, &srv->limits, handler, srv);
    assert_non_null(conn);
    mcplex_h1_conn_set_close_cb(conn, on_conn_closed, srv);
    srv->conns[srv->n_accepted++] = conn;
}

static int
setup(void **state)
{
    srv_t *srv = calloc(1, sizeof(*srv));
    char err[256];

    srv->base = event_base_new();
    srv->listener =
        mcplex_tcp_listener_create(srv->base, "127.0.0.1", 0, 16, on_accept, srv, err, sizeof(err));
    if (srv->listener == NULL)
        fail_msg("listener: %s", err);
    *state = srv;
    return 0;
}

static int
teardown(void **state)
{
    srv_t *srv = *state;

    /* Connections still open are closed from outside any callback: freed at once. */
    for (int i = 0; i < srv->n_accepted; i++) {
        if (srv->conns[i] != NULL)
            mcplex_h1_conn_close(srv->conns[i]);
    }
    assert_int_equal(srv->n_conn_closed, srv->n_accepted);
    mcplex_tcp_listener_destroy(srv->listener);
    event_base_free(srv->base);
    free(srv);
    return 0;
}

/* ---- client side ------------------------------------------------------------------------- */

static void
client_on_read(evutil_socket_t fd, short what, void *arg)
{
    client_t *c = arg;
    ssize_t n = recv(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);

    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        c->eof = true;
        event_del(c->ev);
    }
}

static client_t *
client_connect(srv_t *srv)
{
    client_t *c = calloc(1, sizeof(*c));
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(mcplex_tcp_listener_port(srv->listener))};

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->ev = event_new(srv->base, c->fd, EV_READ | EV_PERSIST, client_on_read, c);
    event_add(c->ev, NULL);
    return c;
}

static void
client_free(client_t *c)
{
    event_free(c->ev);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop for about |ms| milliseconds, or until |*flag| is true. */
static void
pump_until(srv_t *srv, int ms, const bool *flag)
{
    struct timeval tick = {.tv_sec = 0, .tv_usec = 5000};
    struct event *t = event_new(srv->base, -1, EV_PERSIST, on_tick, NULL);

    event_add(t, &tick);
    for (int i = 0; i < ms / 5 && (flag == NULL || !*flag); i++)
        event_base_loop(srv->base, EVLOOP_ONCE);
    event_free(t);
}

static void
pump(srv_t *srv, int ms)
{
    pump_until(srv, ms, NULL);
}

static void
client_send(srv_t *srv, client_t *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pump(srv, 10);
        } else {
            return; /* the server went away; the test checks the answer */
        }
    }
}

static void
client_sends(srv_t *srv, client_t *c, const char *text)
{
    client_send(srv, c, text, strlen(text));
}

/* Response parsing with http-parser (HTTP_RESPONSE). */
typedef struct rparse {
    resp_t *out;
    int max;
    int n;
    unsigned head_mask; /* bit i: response i answers a HEAD request */
    char field[128];
} rparse_t;

static int
rp_on_header_field(http_parser *p, const char *at, size_t len)
{
    rparse_t *rp = p->data;
    resp_t *r = &rp->out[rp->n];
    size_t hl = strlen(r->headers);

    for (size_t i = 0; i < len && hl + 3 < sizeof(r->headers); i++)
        r->headers[hl++] = (char)((at[i] >= 'A' && at[i] <= 'Z') ? at[i] + 32 : at[i]);
    r->headers[hl] = '\0';
    if (hl + 3 < sizeof(r->headers))
        strcat(r->headers, ": ");
    return 0;
}

static int
rp_on_header_value(http_parser *p, const char *at, size_t len)
{
    rparse_t *rp = p->data;
    resp_t *r = &rp->out[rp->n];
    size_t hl = strlen(r->headers);

    snprintf(r->headers + hl, sizeof(r->headers) - hl, "%.*s\n", (int)len, at);
    return 0;
}

static int
rp_on_headers_complete(http_parser *p)
{
    rparse_t *rp = p->data;

    rp->out[rp->n].status = p->status_code;
    return (rp->head_mask >> rp->n) & 1u ? 1 : 0;
}

static int
rp_on_body(http_parser *p, const char *at, size_t len)
{
    rparse_t *rp = p->data;
    resp_t *r = &rp->out[rp->n];

    assert_true(r->body_len + len < sizeof(r->body));
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int
rp_on_message_complete(http_parser *p)
{
    rparse_t *rp = p->data;

    rp->n++;
    if (rp->n == rp->max)
        http_parser_pause(p, 1);
    return 0;
}

/* Parses everything the client received; returns the number of complete responses. */
static int
parse_responses(const client_t *c, unsigned head_mask, resp_t *out, int max)
{
    static const http_parser_settings settings = {
        .on_header_field = rp_on_header_field,
        .on_header_value = rp_on_header_value,
        .on_headers_complete = rp_on_headers_complete,
        .on_body = rp_on_body,
        .on_message_complete = rp_on_message_complete,
    };
    rparse_t rp = {.out = out, .max = max, .head_mask = head_mask};
    http_parser p;

    memset(out, 0, sizeof(*out) * (size_t)max);
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &rp;
    http_parser_execute(&p, &settings, c->buf, c->len);
    if (c->eof && HTTP_PARSER_ERRNO(&p) == HPE_OK)
        http_parser_execute(&p, &settings, NULL, 0);
    return rp.n;
}

/* Pumps until |n| responses have arrived (or 2 s passed); returns how many did. */
static int
wait_responses(srv_t *srv, client_t *c, unsigned head_mask, resp_t *out, int n)
{
    int got = 0;

    for (int i = 0; i < 400; i++) {
        got = parse_responses(c, head_mask, out, MAX_RESP);
        if (got >= n)
            break;
        pump(srv, 5);
    }
    return got;
}

static bool
has_header(const resp_t *r, const char *line)
{
    return strstr(r->headers, line) != NULL;
}

/* Pumps until the client sees EOF; returns whether it did. */
static bool
wait_eof(srv_t *srv, client_t *c)
{
    pump_until(srv, 2000, &c->eof);
    return c->eof;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void
test_simple_get(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "GET /mcp?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nX-TEST: Mixed Case\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(r[0].body, "GET /mcp?x=1&y=2|");
    assert_true(has_header(&r[0], "content-length: 17\n"));
    assert_true(has_header(&r[0], "content-type: text/plain\n"));
    assert_true(has_header(&r[0], "date: "));
    assert_false(has_header(&r[0], "999"));
    assert_false(has_header(&r[0], "connection"));
    assert_string_equal(srv->last, "GET /mcp?x=1&y=2|example.com:8080|");
    assert_string_equal(srv->last_hdr, "Mixed Case");
    assert_int_equal(srv->last_minor, 1);
    /* HTTP/1.1 keeps the connection. */
    pump(srv, 30);
    assert_false(c->eof);
    client_free(c);
}

static void
test_post_content_length(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                         "Content-Length: 17\r\n\r\n"
                         "{\"jsonrpc\":\"2.0\"}");
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(r[0].body, "POST /mcp|{\"jsonrpc\":\"2.0\"}");
    assert_string_equal(srv->last, "POST /mcp|h|{\"jsonrpc\":\"2.0\"}");
    client_free(c);
}

static void
test_post_chunked_byte_by_byte(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];
    const char *req = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

    /* One byte per write, with the loop running in between: every parser state sees a split. */
    for (size_t i = 0; req[i] != '\0'; i++) {
        client_send(srv, c, req + i, 1);
        pump(srv, 5);
    }
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(r[0].body, "POST /c|hello world");
    assert_string_equal(srv->last, "POST /c|h|hello world");
    client_free(c);
}

static void
test_pipelined_sync(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                         "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 3), 3);
    assert_string_equal(r[0].body, "GET /1|");
    assert_string_equal(r[1].body, "POST /2|abc");
    assert_string_equal(r[2].body, "GET /3|");
    assert_int_equal(srv->n_requests, 3);
    client_free(c);
}

static void
test_pipelined_async_in_order(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    srv->mode = MODE_HOLD;
    client_sends(srv, c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 50);
    /* One request at a time: the others wait until the first is answered. */
    assert_int_equal(srv->n_requests, 1);
    assert_int_equal(srv->n_held, 1);
    assert_string_equal(srv->last, "GET /1|h|");
    for (int i = 1; i <= 3; i++) {
        char body[8];
        int n = snprintf(body, sizeof(body), "r%d", i);
        /* Answered from outside any server callback. */
        assert_int_equal(mcplex_http_stream_respond(unhold(srv), 200, NULL, 0, body, (size_t)n), 0);
        pump(srv, 30);
        assert_int_equal(srv->n_requests, i < 3 ? i + 1 : 3);
    }
    assert_int_equal(wait_responses(srv, c, 0, r, 3), 3);
    assert_string_equal(r[0].body, "r1");
    assert_string_equal(r[1].body, "r2");
    assert_string_equal(r[2].body, "r3");
    assert_int_equal(srv->n_stream_closed, 0);
    client_free(c);
}

static void
test_pipelined_over_high_water(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    static char big[600 * 1024];
    static const char req[] = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n";
    size_t n = 0, one = sizeof(req) - 1 + 10000;
    int count = 0;

    /* 60 pipelined requests (about 600 KB) behind one held request: the server stops reading
     * at its high-water mark and picks the rest up as it drains. */
    srv->mode = MODE_HOLD;
    client_sends(srv, c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 20);
    assert_int_equal(srv->n_held, 1);
    while (n + one <= sizeof(big) && count < 60) {
        memcpy(big + n, req, sizeof(req) - 1);
        memset(big + n + sizeof(req) - 1, 'a' + count % 26, 10000);
        n += one;
        count++;
    }
    srv->mode = MODE_HOLD;
    /* Send without waiting for the whole write: the kernel buffers fill up. */
    {
        size_t off = 0;
        for (int i = 0; i < 200 && off < n; i++) {
            ssize_t w = send(c->fd, big + off, n - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            pump(srv, 5);
        }
        pump(srv, 500); /* ~100 reads of 4 KiB (libevent 2.1): past the high-water mark */
        assert_int_equal(srv->n_requests, 1);
        srv->mode = MODE_ECHO;
        assert_int_equal(mcplex_http_stream_respond(unhold(srv), 200, NULL, 0, "first", 5), 0);
        while (off < n) {
            ssize_t w = send(c->fd, big + off, n - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            pump(srv, 5);
            /* The client must read too, or both sides stall. */
            if (c->len > sizeof(c->buf) / 2)
                c->len = 0;
        }
    }
    for (int i = 0; i < 400 && srv->n_requests < 1 + count; i++) {
        pump(srv, 5);
        if (c->len > sizeof(c->buf) / 2)
            c->len = 0;
    }
    assert_int_equal(srv->n_requests, 1 + count);
    assert_int_equal(srv->n_accepted, 1);
    assert_false(c->eof);
    client_free(c);
}

static void
test_handler_asks_close(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];
    static const mcplex_http_header_t close_hdr[] = {{"Connection", 10, "close", 5}};

    srv->mode = MODE_HOLD;
    client_sends(srv, c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 20);
    assert_int_equal(mcplex_http_stream_respond(unhold(srv), 200, close_hdr, 1, "x", 1), 0);
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_true(has_header(&r[0], "connection: close\n"));
    assert_int_equal(srv->n_requests, 1);
    client_free(c);
}

static void
test_keep_alive_reuse(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    pump(srv, 20);
    client_sends(srv, c, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 2), 2);
    assert_string_equal(r[1].body, "GET /b|");
    assert_int_equal(srv->n_accepted, 1);
    assert_false(c->eof);
    client_free(c);
}

static void
test_connection_close(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    /* The request after "Connection: close" is never answered. */
    client_sends(srv, c, "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                         "GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_true(has_header(&r[0], "connection: close\n"));
    assert_int_equal(srv->n_requests, 1);
    /* The server lingers until the client closes too, then frees the connection at once. */
    pump(srv, 30);
    assert_int_equal(srv->n_conn_closed, 0);
    close(c->fd);
    c->fd = -1;
    event_del(c->ev);
    pump(srv, 30);
    assert_int_equal(srv->n_conn_closed, 1);
    client_free(c);
}

static void
test_http10(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    client_t *k;
    resp_t r[MAX_RESP];

    /* Without keep-alive: answered, then closed. */
    client_sends(srv, c, "GET /old HTTP/1.0\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_string_equal(r[0].body, "GET /old|");
    assert_true(has_header(&r[0], "connection: close\n"));
    assert_int_equal(srv->last_minor, 0);
    assert_string_equal(srv->last, "GET /old|-|");
    client_free(c);

    /* With keep-alive: the connection stays, and says so. */
    k = client_connect(srv);
    client_sends(srv, k, "GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(wait_responses(srv, k, 0, r, 1), 1);
    assert_true(has_header(&r[0], "connection: keep-alive\n"));
    client_sends(srv, k, "GET /k2 HTTP/1.0\r\n\r\n");
    assert_true(wait_eof(srv, k));
    assert_int_equal(parse_responses(k, 0, r, MAX_RESP), 2);
    assert_string_equal(r[1].body, "GET /k2|");
    client_free(k);
}

static void
test_http10_streaming(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    /* No chunked encoding for HTTP/1.0: the body ends with the connection. */
    srv->mode = MODE_STREAM;
    client_sends(srv, c, "GET /sse HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_false(has_header(&r[0], "transfer-encoding"));
    assert_true(has_header(&r[0], "connection: close\n"));
    assert_string_equal(r[0].body, "data: a\n\ndata: b\n\n");
    client_free(c);
}

static void
test_oversized_headers_431(void **state)
{
    srv_t *srv = *state;
    client_t *c;
    resp_t r[MAX_RESP];
    char req[4096];
    char big[2000];

    srv->limits.max_request_headers_kb = 1;
    c = client_connect(srv);
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n", big);
    client_sends(srv, c, req);
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_int_equal(r[0].status, 431);
    assert_true(has_header(&r[0], "connection: close\n"));
    assert_int_equal(srv->n_requests, 0);
    client_free(c);

    /* Under the limit is fine. */
    c = client_connect(srv);
    big[600] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n", big);
    client_sends(srv, c, req);
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 200);
    client_free(c);
}

static void
test_too_many_headers_431(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");

    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    client_sends(srv, c, req);
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_int_equal(r[0].status, 431);
    client_free(c);
}

static void
test_oversized_body_413(void **state)
{
    srv_t *srv = *state;
    client_t *c;
    resp_t r[MAX_RESP];
    char chunk[700];

    srv->limits.max_request_body_bytes = 1000;

    /* Content-Length over the limit: refused before the body is read. */
    c = client_connect(srv);
    client_sends(srv, c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_int_equal(r[0].status, 413);
    client_free(c);

    /* Chunked over the limit: refused once the body passes it. */
    c = client_connect(srv);
    memset(chunk, 'z', sizeof(chunk));
    client_sends(srv, c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        client_sends(srv, c, "2bc\r\n");
        client_send(srv, c, chunk, sizeof(chunk));
        client_sends(srv, c, "\r\n");
    }
    client_sends(srv, c, "0\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_int_equal(r[0].status, 413);
    client_free(c);

    /* Exactly the limit is fine. */
    c = client_connect(srv);
    {
        char body[1000];
        memset(body, 'b', sizeof(body));
        client_sends(srv, c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
        client_send(srv, c, body, sizeof(body));
    }
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 200);
    assert_int_equal(srv->n_requests, 1);
    client_free(c);
}

static void
test_garbage_400(void **state)
{
    srv_t *srv = *state;
    static const char *bad[] = {
        "\x01\x02garbage\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        client_t *c = client_connect(srv);
        resp_t r[MAX_RESP];
        client_sends(srv, c, bad[i]);
        assert_true(wait_eof(srv, c));
        if (parse_responses(c, 0, r, MAX_RESP) != 1 || r[0].status != 400)
            fail_msg("case %zu: no 400", i);
        assert_true(has_header(&r[0], "connection: close\n"));
        client_free(c);
    }
    assert_int_equal(srv->n_requests, 0);
}

static void
test_http2_version_505(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "GET / HTTP/2.0\r\nHost: h\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(parse_responses(c, 0, r, MAX_RESP), 1);
    assert_int_equal(r[0].status, 505);
    client_free(c);
}

static void
test_streaming_response(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    srv->mode = MODE_STREAM;
    client_sends(srv, c, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\nGET /sse2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 2), 2);
    assert_int_equal(r[0].status, 200);
    assert_true(has_header(&r[0], "transfer-encoding: chunked\n"));
    assert_true(has_header(&r[0], "content-type: text/event-stream\n"));
    assert_false(has_header(&r[0], "content-length"));
    assert_string_equal(r[0].body, "data: a\n\ndata: b\n\n");
    assert_string_equal(r[1].body, "data: a\n\ndata: b\n\n");
    /* The exact chunk framing on the wire. */
    assert_non_null(strstr(c->buf, "\r\n\r\n9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n"));
    assert_false(c->eof);
    client_free(c);
}

static void
test_streaming_held_then_finish(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];
    mcplex_http_stream_t *st;

    srv->mode = MODE_STREAM_HOLD;
    client_sends(srv, c, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 50);
    assert_int_equal(srv->n_requests, 1);
    assert_non_null(strstr(c->buf, "data: first\n\n"));
    st = unhold(srv);
    assert_int_equal(mcplex_http_stream_write(st, "data: second\n\n", 14), 0);
    pump(srv, 20);
    assert_int_equal(mcplex_http_stream_pending_bytes(st), 0);
    assert_non_null(strstr(c->buf, "data: second\n\n"));
    srv->mode = MODE_ECHO;
    assert_int_equal(mcplex_http_stream_finish(st), 0);
    assert_int_equal(wait_responses(srv, c, 0, r, 2), 2);
    assert_string_equal(r[0].body, "data: first\n\ndata: second\n\n");
    assert_string_equal(r[1].body, "GET /after|");
    client_free(c);
}

static void
test_peer_close_mid_stream(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);

    srv->mode = MODE_STREAM_HOLD;
    client_sends(srv, c, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 50);
    assert_int_equal(srv->n_held, 1);
    close(c->fd);
    c->fd = -1;
    event_del(c->ev);
    for (int i = 0; i < 100 && srv->n_stream_closed == 0; i++)
        pump(srv, 10);
    /* on_close fired once, the stream is gone (removed from |held| by the callback). */
    assert_int_equal(srv->n_stream_closed, 1);
    assert_int_equal(srv->n_held, 0);
    assert_int_equal(srv->n_conn_closed, 1);
    client_free(c);
}

static void
test_peer_close_before_answer(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);

    srv->mode = MODE_HOLD;
    client_sends(srv, c, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
    pump(srv, 50);
    assert_int_equal(srv->n_held, 1);
    shutdown(c->fd, SHUT_WR);
    for (int i = 0; i < 100 && srv->n_stream_closed == 0; i++)
        pump(srv, 10);
    assert_int_equal(srv->n_stream_closed, 1);
    assert_int_equal(srv->n_held, 0);
    client_free(c);
}

static void
test_close_from_handler(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);

    srv->mode = MODE_CLOSE_CONN;
    client_sends(srv, c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(wait_eof(srv, c));
    assert_int_equal(srv->n_requests, 1);
    assert_int_equal(srv->n_stream_closed, 1);
    assert_int_equal(srv->n_held, 0);
    assert_int_equal(srv->n_conn_closed, 1);
    assert_int_equal(c->len, 0);
    client_free(c);
}

static void
test_expect_100_continue(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    pump(srv, 50);
    assert_string_equal(c->buf, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(srv->n_requests, 0);
    client_sends(srv, c, "body");
    assert_int_equal(wait_responses(srv, c, 0, r, 2), 2);
    assert_int_equal(r[0].status, 100);
    assert_int_equal(r[1].status, 200);
    assert_string_equal(r[1].body, "POST /e|body");
    client_free(c);
}

static void
test_head(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    client_sends(srv, c, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 1u, r, 2), 2);
    assert_int_equal(r[0].status, 200);
    assert_true(has_header(&r[0], "content-length: 8\n")); /* what the GET would have had */
    assert_int_equal(r[0].body_len, 0);
    assert_string_equal(r[1].body, "GET /g|");
    client_free(c);
}

static void
test_204_no_body(void **state)
{
    srv_t *srv = *state;
    client_t *c = client_connect(srv);
    resp_t r[MAX_RESP];

    srv->mode = MODE_HOLD;
    client_sends(srv, c, "DELETE /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(srv, 30);
    assert_int_equal(mcplex_http_stream_respond(unhold(srv), 204, NULL, 0, "ignored", 7), 0);
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_int_equal(r[0].status, 204);
    assert_false(has_header(&r[0], "content-length"));
    assert_int_equal(r[0].body_len, 0);
    assert_string_equal(strstr(c->buf, "\r\n\r\n"), "\r\n\r\n");
    client_free(c);
}

static void
test_idle_timeout(void **state)
{
    srv_t *srv = *state;
    client_t *c;
    resp_t r[MAX_RESP];

    srv->limits.idle_timeout_ms = 100;
    c = client_connect(srv);
    client_sends(srv, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(wait_responses(srv, c, 0, r, 1), 1);
    assert_false(c->eof);
    assert_true(wait_eof(srv, c));
    assert_int_equal(srv->n_conn_closed, 1);
    client_free(c);

    /* A request that stalls half way is dropped too. */
    c = client_connect(srv);
    client_sends(srv, c, "GET / HTTP/1.1\r\nHo");
    assert_true(wait_eof(srv, c));
    assert_int_equal(c->len, 0);
    client_free(c);
}

static void
test_listener_addresses(void **state)
{
    srv_t *srv = *state;
    char err[256];
    mcplex_tcp_listener_t *l;

    l = mcplex_tcp_listener_create(srv->base, "localhost", 0, 0, on_accept, srv, err, sizeof(err));
    assert_non_null(l);
    assert_true(mcplex_tcp_listener_port(l) != 0);
    mcplex_tcp_listener_destroy(l);
    l = mcplex_tcp_listener_create(srv->base, "::1", 0, 0, on_accept, srv, err, sizeof(err));
    if (l != NULL) /* hosts without IPv6 */
        mcplex_tcp_listener_destroy(l);
    l = mcplex_tcp_listener_create(srv->base, "[::1]", 0, 0, on_accept, srv, err, sizeof(err));
    if (l != NULL)
        mcplex_tcp_listener_destroy(l);
    assert_null(mcplex_tcp_listener_create(srv->base, "not-an-ip", 0, 0, on_accept, srv, err, sizeof(err)));
    assert_non_null(strstr(err, "not-an-ip"));
    /* SO_REUSEPORT: a second socket on the same port is fine. */
    l = mcplex_tcp_listener_create(srv->base, "127.0.0.1", mcplex_tcp_listener_port(srv->listener), 0,
                                   on_accept, srv, err, sizeof(err));
    assert_non_null(l);
    mcplex_tcp_listener_destroy(l);
}

static void
test_status_text_and_header_lookup(void **state)
{
    mcplex_http_header_t hs[] = {{"a", 1, "1", 1}, {"content-type", 12, "x", 1}};
    mcplex_http_request_t req = {.headers = hs, .n_headers = 2};

    (void)state;
    assert_string_equal(mcplex_http_status_text(200), "OK");
    assert_string_equal(mcplex_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(mcplex_http_status_text(499), "Client Error");
    assert_string_equal(mcplex_http_request_header(&req, "content-type"), "x");
    assert_null(mcplex_http_request_header(&req, "content"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simple_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_chunked_byte_by_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_async_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_over_high_water, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_asks_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_headers_431, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_headers_431, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_body_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http2_version_505, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_held_then_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_close_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_close_before_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_100_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_204_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_addresses, setup, teardown),
        cmocka_unit_test(test_status_text_and_header_lookup),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
