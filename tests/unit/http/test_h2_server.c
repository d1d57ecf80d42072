/*
 * test_h2_server.c - the HTTP/2 server codec (src/http/h2_server.c) and the codec selector
 * (src/http/codec.c) over a socketpair, driven by a real nghttp2 client session on the same
 * event_base (or raw bytes for malformed input). Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "http/codec.h"
#include "http/h2_server.h"
#include "http/http.h"

#define MAX_STREAMS 16
#define MAX_HELD 8

/* ---- server side ---------------------------------------------------------------------------- */

typedef struct srv {
    struct event_base *base;
    mcplex_h2_conn_t *conn;
    mcplex_http_stream_t *held[MAX_HELD];
    int n_held;
    int n_requests;
    int n_stream_closed;
    char last_authority[128];
    char last_query[128];
    char last_hdr[128];
} srv_t;

static void
on_stream_closed(void *arg, mcplex_http_stream_t *stream)
{
    srv_t *s = arg;

    s->n_stream_closed++;
    for (int i = 0; i < s->n_held; i++)
        if (s->held[i] == stream)
            s->held[i] = NULL;
}

static void
handler(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    srv_t *s = ctx;
    mcplex_http_header_t ct = {"Content-Type", 12, "text/plain", 10};
    const char *x = mcplex_http_request_header(req, "x-test");

    s->n_requests++;
    snprintf(s->last_authority, sizeof(s->last_authority), "%s", req->authority ? req->authority : "");
    snprintf(s->last_query, sizeof(s->last_query), "%s", req->query ? req->query : "");
    snprintf(s->last_hdr, sizeof(s->last_hdr), "%s", x ? x : "");
    assert_int_equal(req->http_major, 2);
    if (strcmp(req->path, "/hello") == 0) {
        assert_int_equal(mcplex_http_stream_respond(stream, 200, &ct, 1, "hello", 5), 0);
    } else if (strcmp(req->path, "/echo") == 0) {
        mcplex_http_stream_respond(stream, 200, &ct, 1, req->body, req->body_len);
    } else if (strcmp(req->path, "/stream") == 0) {
        assert_int_equal(mcplex_http_stream_start(stream, 200, &ct, 1), 0);
        assert_int_equal(mcplex_http_stream_write(stream, "one,", 4), 0);
        assert_int_equal(mcplex_http_stream_write(stream, "two", 3), 0);
        assert_int_equal(mcplex_http_stream_finish(stream), 0);
    } else if (strcmp(req->path, "/hold") == 0 || strcmp(req->path, "/hold-stream") == 0) {
        if (strcmp(req->path, "/hold-stream") == 0)
            mcplex_http_stream_start(stream, 200, &ct, 1);
        mcplex_http_stream_set_close_cb(stream, on_stream_closed, s);
        assert_true(s->n_held < MAX_HELD);
        s->held[s->n_held++] = stream;
    } else {
        mcplex_http_stream_respond(stream, 404, NULL, 0, "no", 2);
    }
}

/* ---- client side: a real nghttp2 client session ------------------------------------------- */

typedef struct cstream {
    int32_t id;
    int status;
    char body[8192];
    size_t body_len;
    bool closed;
    uint32_t error_code;
} cstream_t;

typedef struct cli {
    nghttp2_session *session;
    struct bufferevent *bev;
    cstream_t streams[MAX_STREAMS];
    int n_streams;
    bool eof;
    bool got_goaway;
    const char *upload; /* request body for the next submit */
    size_t upload_len, upload_off;
} cli_t;

static cstream_t *
cli_find(cli_t *c, int32_t id)
{
    for (int i = 0; i < c->n_streams; i++)
        if (c->streams[i].id == id)
            return &c->streams[i];
    return NULL;
}

static ssize_t
cli_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
    cli_t *c = user_data;

    (void)session;
    (void)flags;
    bufferevent_write(c->bev, data, length);
    return (ssize_t)length;
}

static int
cli_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
              const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    cstream_t *st = cli_find(user_data, frame->hd.stream_id);

    (void)session;
    (void)flags;
    if (st != NULL && namelen == 7 && memcmp(name, ":status", 7) == 0)
        st->status = atoi((const char *)value);
    (void)valuelen;
    return 0;
}

static int
cli_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
            void *user_data)
{
    cstream_t *st = cli_find(user_data, stream_id);

    (void)session;
    (void)flags;
    if (st != NULL && st->body_len + len < sizeof(st->body)) {
        memcpy(st->body + st->body_len, data, len);
        st->body_len += len;
    }
    return 0;
}

static int
cli_on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    cstream_t *st = cli_find(user_data, stream_id);

    (void)session;
    if (st != NULL) {
        st->closed = true;
        st->error_code = error_code;
    }
    return 0;
}

static int
cli_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    cli_t *c = user_data;

    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        c->got_goaway = true;
    return 0;
}

static void
cli_flush(cli_t *c)
{
    if (c->session != NULL)
        nghttp2_session_send(c->session);
}

static void
cli_read(struct bufferevent *bev, void *arg)
{
    cli_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    unsigned char *data = evbuffer_pullup(in, -1);

    if (c->session == NULL) {
        evbuffer_drain(in, len);
        return;
    }
    if (nghttp2_session_mem_recv(c->session, data, len) < 0)
        c->eof = true;
    evbuffer_drain(in, len);
    cli_flush(c);
}

static void
cli_event(struct bufferevent *bev, short events, void *arg)
{
    cli_t *c = arg;

    (void)bev;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        c->eof = true;
}

static ssize_t
cli_upload_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    cli_t *c = source->ptr;
    size_t n = c->upload_len - c->upload_off;

    (void)session;
    (void)stream_id;
    (void)user_data;
    if (n > length)
        n = length;
    memcpy(buf, c->upload + c->upload_off, n);
    c->upload_off += n;
    if (c->upload_off == c->upload_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void
cli_init(cli_t *c, struct event_base *base, int fd, bool with_session)
{
    nghttp2_session_callbacks *cbs;

    memset(c, 0, sizeof(*c));
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, cli_read, NULL, cli_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!with_session)
        return;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, cli_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cli_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cli_on_frame_recv);
    assert_int_equal(nghttp2_session_client_new(&c->session, cbs, c), 0);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
}

static void
cli_dispose(cli_t *c)
{
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
}

/* Submits a request; |extra| is one more header (name, value) or NULL. Returns the stream. */
static cstream_t *
cli_request(cli_t *c, const char *method, const char *path, const char *extra_name, const char *extra_value,
            const char *body)
{
    nghttp2_nv nva[5];
    size_t n = 0;
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = cli_upload_read};
    int32_t id;

#define NV(a, b) (nghttp2_nv){(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
    nva[n++] = NV(":method", method);
    nva[n++] = NV(":scheme", "http");
    nva[n++] = NV(":authority", "example.test:80");
    nva[n++] = NV(":path", path);
    if (extra_name != NULL)
        nva[n++] = NV(extra_name, extra_value);
#undef NV
    if (body != NULL) {
        c->upload = body;
        c->upload_len = strlen(body);
        c->upload_off = 0;
    }
    id = nghttp2_submit_request(c->session, NULL, nva, n, body != NULL ? &prd : NULL, NULL);
    assert_true(id > 0);
    assert_true(c->n_streams < MAX_STREAMS);
    c->streams[c->n_streams] = (cstream_t){.id = id};
    cli_flush(c);
    return &c->streams[c->n_streams++];
}

/* ---- fixture ---------------------------------------------------------------------------------- */

typedef struct fx {
    srv_t srv;
    cli_t cli;
    int fds[2];
} fx_t;

static void
fx_start(fx_t *f, const mcplex_http_limits_t *limits, const mcplex_h2_settings_t *settings, bool with_session)
{
    struct bufferevent *sbev;

    memset(f, 0, sizeof(*f));
    f->srv.base = event_base_new();
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->fds), 0);
    evutil_make_socket_nonblocking(f->fds[0]);
    evutil_make_socket_nonblocking(f->fds[1]);
    sbev = bufferevent_socket_new(f->srv.base, f->fds[0], BEV_OPT_CLOSE_ON_FREE);
    f->srv.conn = mcplex_h2_conn_create(f->srv.base, sbev, "test", limits, settings, handler, &f->srv);
    assert_non_null(f->srv.conn);
    cli_init(&f->cli, f->srv.base, f->fds[1], with_session);
}

static void
fx_stop(fx_t *f)
{
    cli_dispose(&f->cli);
    /* The server sees EOF and frees its connection. */
    for (int i = 0; i < 100 && mcplex_h2_conn_count() > 0; i++)
        event_base_loop(f->srv.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(mcplex_h2_conn_count(), 0);
    event_base_free(f->srv.base);
}

/* Runs the loop until |*flag| is true (or ~2 s pass). */
static void
run_until(fx_t *f, const bool *flag)
{
    struct timeval tick = {0, 10000};

    for (int i = 0; i < 200 && !*flag; i++) {
        event_base_loopexit(f->srv.base, &tick);
        event_base_dispatch(f->srv.base);
    }
}

static void
run_for(fx_t *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(f->srv.base, &tv);
    event_base_dispatch(f->srv.base);
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void
test_get_and_post(void **state)
{
    fx_t f;
    cstream_t *a, *b;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    a = cli_request(&f.cli, "GET", "/hello?x=1", "x-test", "yes", NULL);
    run_until(&f, &a->closed);
    assert_true(a->closed);
    assert_int_equal(a->status, 200);
    assert_int_equal(a->body_len, 5);
    assert_memory_equal(a->body, "hello", 5);
    assert_string_equal(f.srv.last_authority, "example.test:80");
    assert_string_equal(f.srv.last_query, "x=1");
    assert_string_equal(f.srv.last_hdr, "yes");

    b = cli_request(&f.cli, "POST", "/echo", "content-type", "application/json", "{\"ping\":1}");
    run_until(&f, &b->closed);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->body_len, 10);
    assert_memory_equal(b->body, "{\"ping\":1}", 10);
    assert_int_equal(b->error_code, NGHTTP2_NO_ERROR);
    fx_stop(&f);
}

static void
test_streaming_response(void **state)
{
    fx_t f;
    cstream_t *a;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    a = cli_request(&f.cli, "GET", "/stream", NULL, NULL, NULL);
    run_until(&f, &a->closed);
    assert_int_equal(a->status, 200);
    assert_int_equal(a->body_len, 7);
    assert_memory_equal(a->body, "one,two", 7);
    fx_stop(&f);
}

static void
test_held_stream_written_later(void **state)
{
    fx_t f;
    cstream_t *a;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    a = cli_request(&f.cli, "GET", "/hold-stream", NULL, NULL, NULL);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_held, 1);
    assert_int_equal(a->status, 200);
    assert_false(a->closed);
    /* SSE-style: the deferred data provider resumes on write. */
    assert_int_equal(mcplex_http_stream_write(f.srv.held[0], "data: x\n\n", 9), 0);
    run_for(&f, 50);
    assert_int_equal(a->body_len, 9);
    assert_int_equal(mcplex_http_stream_pending_bytes(f.srv.held[0]), 0);
    assert_int_equal(mcplex_http_stream_finish(f.srv.held[0]), 0);
    run_until(&f, &a->closed);
    assert_true(a->closed);
    assert_int_equal(f.srv.n_stream_closed, 0); /* finished, not closed under us */
    fx_stop(&f);
}

static void
test_client_reset_fires_on_close(void **state)
{
    fx_t f;
    cstream_t *a;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    a = cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_held, 1);
    nghttp2_submit_rst_stream(f.cli.session, NGHTTP2_FLAG_NONE, a->id, NGHTTP2_CANCEL);
    cli_flush(&f.cli);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_stream_closed, 1);
    assert_null(f.srv.held[0]);
    fx_stop(&f);
}

static void
test_connection_loss_fires_on_close(void **state)
{
    fx_t f;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    cli_request(&f.cli, "GET", "/hold-stream", NULL, NULL, NULL);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_held, 2);
    cli_dispose(&f.cli);
    f.cli.session = NULL;
    f.cli.bev = NULL;
    run_for(&f, 50);
    assert_int_equal(f.srv.n_stream_closed, 2);
    fx_stop(&f);
}

static void
test_max_concurrent_streams(void **state)
{
    fx_t f;
    mcplex_h2_settings_t st = {.max_concurrent_streams = 2};
    cstream_t *a, *b, *c;

    (void)state;
    fx_start(&f, NULL, &st, true);
    /* Sent before the server's SETTINGS arrive: the client does not know the limit yet. */
    a = cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    b = cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    c = cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    run_until(&f, &c->closed);
    assert_true(c->closed);
    assert_int_equal(c->error_code, NGHTTP2_REFUSED_STREAM);
    assert_false(a->closed);
    assert_false(b->closed);
    assert_int_equal(f.srv.n_held, 2);
    mcplex_http_stream_respond(f.srv.held[0], 204, NULL, 0, NULL, 0);
    mcplex_http_stream_respond(f.srv.held[1], 200, NULL, 0, "ok", 2);
    run_until(&f, &b->closed);
    assert_int_equal(a->status, 204);
    assert_int_equal(b->status, 200);
    fx_stop(&f);
}

static void
test_oversized_headers_431(void **state)
{
    fx_t f;
    mcplex_http_limits_t lim = {.max_request_headers_kb = 1};
    char big[2048];
    cstream_t *a, *b;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fx_start(&f, &lim, NULL, true);
    a = cli_request(&f.cli, "GET", "/hello", "x-big", big, NULL);
    run_until(&f, &a->closed);
    assert_int_equal(a->status, 431);
    assert_int_equal(f.srv.n_requests, 0);
    /* The connection goes on. */
    b = cli_request(&f.cli, "GET", "/hello", NULL, NULL, NULL);
    run_until(&f, &b->closed);
    assert_int_equal(b->status, 200);
    fx_stop(&f);
}

static void
test_oversized_body_413(void **state)
{
    fx_t f;
    mcplex_http_limits_t lim = {.max_request_body_bytes = 8};
    cstream_t *a;

    (void)state;
    fx_start(&f, &lim, NULL, true);
    a = cli_request(&f.cli, "POST", "/echo", NULL, NULL, "0123456789abcdef");
    run_until(&f, &a->closed);
    assert_int_equal(a->status, 413);
    assert_int_equal(f.srv.n_requests, 0);
    fx_stop(&f);
}

static void
test_stream_queue_cap_resets(void **state)
{
    fx_t f;
    mcplex_h2_settings_t st = {.max_stream_queued_bytes = 100000};
    char chunk[10000];
    int rc = 0, i;

    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    fx_start(&f, NULL, &st, true);
    /* A client that never reads: its window (65535) stays shut once filled. */
    nghttp2_session_del(f.cli.session);
    f.cli.session = NULL;
    {
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        /* SETTINGS (empty), then HEADERS for GET /hold-stream with literal, non-indexed fields. */
        static const unsigned char frames[] = {
            0, 0, 0, 4, 0, 0, 0, 0, 0,
            0, 0, 34, 1, 5, 0, 0, 0, 1,
            0x82,                                   /* :method GET */
            0x86,                                   /* :scheme http */
            0x41, 1, 'h',                           /* :authority h */
            0x44, 12, '/', 'h', 'o', 'l', 'd', '-', 's', 't', 'r', 'e', 'a', 'm',
            0x40, 3, 'x', '-', 'a', 9, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',
        };
        bufferevent_write(f.cli.bev, preface, 24);
        bufferevent_write(f.cli.bev, frames, sizeof(frames));
    }
    bufferevent_disable(f.cli.bev, EV_READ); /* never reads */
    run_for(&f, 50);
    assert_int_equal(f.srv.n_held, 1);
    for (i = 0; i < 100 && rc == 0; i++) {
        rc = mcplex_http_stream_write(f.srv.held[0], chunk, sizeof(chunk));
        if (rc == 0)
            assert_true(mcplex_http_stream_pending_bytes(f.srv.held[0]) <= 100000);
        run_for(&f, 5);
    }
    assert_int_equal(rc, -1);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_stream_closed, 1);
    fx_stop(&f);
}

static void
test_malformed_frames_close_connection(void **state)
{
    fx_t f;
    /* Preface, then a SETTINGS frame with a length that is not a multiple of 6 (FRAME_SIZE_ERROR),
     * then garbage. */
    static const unsigned char bad[] = {0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 0xff, 0xff, 0xff, 0xff};

    (void)state;
    fx_start(&f, NULL, NULL, false);
    bufferevent_write(f.cli.bev, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    bufferevent_write(f.cli.bev, bad, sizeof(bad));
    run_until(&f, &f.cli.eof);
    assert_true(f.cli.eof);
    assert_int_equal(mcplex_h2_conn_count(), 0);
    fx_stop(&f);
}

static void
test_bad_preface_closes(void **state)
{
    fx_t f;

    (void)state;
    fx_start(&f, NULL, NULL, false);
    bufferevent_write(f.cli.bev, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    run_until(&f, &f.cli.eof);
    assert_true(f.cli.eof);
    fx_stop(&f);
}

static void
test_drain_goaway_then_close(void **state)
{
    fx_t f;
    cstream_t *a;

    (void)state;
    fx_start(&f, NULL, NULL, true);
    a = cli_request(&f.cli, "GET", "/hold", NULL, NULL, NULL);
    run_for(&f, 50);
    assert_int_equal(f.srv.n_held, 1);
    assert_int_equal(mcplex_h2_drain_all(), 1);
    run_until(&f, &f.cli.got_goaway);
    assert_true(f.cli.got_goaway);
    /* The open stream still finishes. */
    mcplex_http_stream_respond(f.srv.held[0], 200, NULL, 0, "bye", 3);
    run_until(&f, &a->closed);
    assert_int_equal(a->status, 200);
    run_until(&f, &f.cli.eof);
    assert_true(f.cli.eof);
    assert_int_equal(mcplex_h2_conn_count(), 0);
    fx_stop(&f);
}

/* ---- the codec selector ----------------------------------------------------------------------- */

static void
start_with_selector(fx_t *f, mcplex_codec_type_t type)
{
    struct bufferevent *sbev;
    mcplex_hcm_t hcm;

    memset(f, 0, sizeof(*f));
    memset(&hcm, 0, sizeof(hcm));
    hcm.codec_type = type;
    f->srv.base = event_base_new();
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->fds), 0);
    evutil_make_socket_nonblocking(f->fds[0]);
    evutil_make_socket_nonblocking(f->fds[1]);
    sbev = bufferevent_socket_new(f->srv.base, f->fds[0], BEV_OPT_CLOSE_ON_FREE);
    mcplex_http_codec_start(f->srv.base, sbev, NULL, NULL, &hcm, handler, &f->srv);
}

static void
test_selector_prior_knowledge(void **state)
{
    fx_t f;
    cstream_t *a;

    (void)state;
    start_with_selector(&f, MCPLEX_CODEC_AUTO);
    cli_init(&f.cli, f.srv.base, f.fds[1], true);
    a = cli_request(&f.cli, "GET", "/hello", NULL, NULL, NULL);
    run_until(&f, &a->closed);
    assert_int_equal(a->status, 200);
    assert_int_equal(f.srv.n_requests, 1);
    fx_stop(&f);
}

static void
test_selector_upgrade(void **state)
{
    fx_t f;
    uint8_t settings[64];
    ssize_t n;
    char b64[128], req[512];
    struct evbuffer *in;
    char *line;
    cstream_t *st;

    (void)state;
    start_with_selector(&f, MCPLEX_CODEC_AUTO);
    cli_init(&f.cli, f.srv.base, f.fds[1], true);
    nghttp2_session_del(f.cli.session);
    f.cli.session = NULL;
    /* Empty settings payload: base64url of nothing is "". Use one entry instead. */
    {
        nghttp2_settings_entry iv[1] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0;
        n = nghttp2_pack_settings_payload(settings, sizeof(settings), iv, 1);
        assert_int_equal(n, 6);
        for (ssize_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)settings[i] << 16 | (uint32_t)settings[i + 1] << 8 | settings[i + 2];
            b64[o++] = tbl[(v >> 18) & 63];
            b64[o++] = tbl[(v >> 12) & 63];
            b64[o++] = tbl[(v >> 6) & 63];
            b64[o++] = tbl[v & 63];
        }
        b64[o] = '\0';
    }
    snprintf(req, sizeof(req),
             "GET /hello HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
             "Upgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", b64);
    /* Stop the plain reader: read the 101 by hand. */
    bufferevent_setcb(f.cli.bev, NULL, NULL, cli_event, &f.cli);
    bufferevent_write(f.cli.bev, req, strlen(req));
    run_for(&f, 100);
    in = bufferevent_get_input(f.cli.bev);
    line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
    assert_non_null(line);
    assert_string_equal(line, "HTTP/1.1 101 Switching Protocols");
    free(line);
    while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) != NULL && line[0] != '\0')
        free(line);
    free(line);
    /* Now HTTP/2: the upgraded request is stream 1. */
    {
        nghttp2_session_callbacks *cbs;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, cli_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, cli_on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_on_close);
        nghttp2_session_client_new(&f.cli.session, cbs, &f.cli);
        nghttp2_session_callbacks_del(cbs);
    }
    assert_int_equal(nghttp2_session_upgrade2(f.cli.session, settings, (size_t)n, 0, NULL), 0);
    f.cli.streams[0] = (cstream_t){.id = 1};
    f.cli.n_streams = 1;
    st = &f.cli.streams[0];
    nghttp2_submit_settings(f.cli.session, NGHTTP2_FLAG_NONE, NULL, 0);
    bufferevent_setcb(f.cli.bev, cli_read, NULL, cli_event, &f.cli);
    cli_flush(&f.cli);
    if (evbuffer_get_length(in) > 0)
        cli_read(f.cli.bev, &f.cli);
    run_until(&f, &st->closed);
    assert_int_equal(st->status, 200);
    assert_memory_equal(st->body, "hello", 5);
    assert_string_equal(f.srv.last_authority, "up.test");
    fx_stop(&f);
}

static void
test_selector_http2_only_refuses_http1(void **state)
{
    fx_t f;

    (void)state;
    start_with_selector(&f, MCPLEX_CODEC_HTTP2);
    cli_init(&f.cli, f.srv.base, f.fds[1], false);
    bufferevent_write(f.cli.bev, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    run_until(&f, &f.cli.eof);
    assert_true(f.cli.eof);
    assert_int_equal(f.srv.n_requests, 0);
    fx_stop(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_streaming_response),
        cmocka_unit_test(test_held_stream_written_later),
        cmocka_unit_test(test_client_reset_fires_on_close),
        cmocka_unit_test(test_connection_loss_fires_on_close),
        cmocka_unit_test(test_max_concurrent_streams),
        cmocka_unit_test(test_oversized_headers_431),
        cmocka_unit_test(test_oversized_body_413),
        cmocka_unit_test(test_stream_queue_cap_resets),
        cmocka_unit_test(test_malformed_frames_close_connection),
        cmocka_unit_test(test_bad_preface_closes),
        cmocka_unit_test(test_drain_goaway_then_close),
        cmocka_unit_test(test_selector_prior_knowledge),
        cmocka_unit_test(test_selector_upgrade),
        cmocka_unit_test(test_selector_http2_only_refuses_http1),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
