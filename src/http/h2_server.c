/*
 * h2_server.c - HTTP/2 server connections with nghttp2 (see h2_server.h).
 *
 * Owns each downstream HTTP/2 connection: its bufferevent (and so the socket or the TLS layer
 * below it), the nghttp2 server session, two events (a timer for idle/drain/linger, and none
 * other) and every stream (h2_stream_t) of the connection. Runs on the worker thread whose
 * event_base accepted the socket.
 *
 * Wiring (nghttp2's examples/libevent-server.c, style-anchors section E): the read callback
 * feeds nghttp2_session_mem_recv(); the send callback appends to the bufferevent's output and
 * returns NGHTTP2_ERR_WOULDBLOCK above H2_OUTPUT_HIGH_WATER, and while the output stays above it
 * the socket is not read (back-pressure); the write callback resumes both.
 *
 * nghttp2 callbacks never free anything and never call the handler: they fill streams, queue
 * complete requests on |ready| and closed streams on |dead|. Every entry point (libevent
 * callback, stream op, public function) brackets its work with h2_conn_enter()/h2_conn_leave();
 * the outermost leave runs h2_conn_service(), which hands ready requests to the handler, fires
 * close callbacks, frees dead streams, calls nghttp2_session_send() and decides whether the
 * connection is over. A dead connection is freed when the last frame of ours leaves the stack.
 */
#include "http/h2_server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "common/base64.h"
#include "common/log.h"
#include "common/mem.h"
#include "net/conn_io.h"

#define H2_LOG "http2"

#define H2_DEFAULT_MAX_HEADERS_KB 60
#define H2_DEFAULT_IDLE_TIMEOUT_MS 60000
#define H2_DEFAULT_MAX_STREAMS 100
#define H2_DEFAULT_STREAM_WINDOW (1u << 20)
#define H2_DEFAULT_CONN_WINDOW (4u << 20)
#define H2_DEFAULT_STREAM_QUEUE (1u << 20)
#define H2_DEFAULT_DRAIN_MS 5000
/* Envoy's default max_headers_count. */
#define H2_MAX_HEADERS 100
/* Above this much unsent output the send callback blocks and the socket is not read. */
#define H2_OUTPUT_HIGH_WATER (64 * 1024)
/* The write callback runs when the output drains to this (refill before it runs dry). */
#define H2_OUTPUT_LOW_WATER (16 * 1024)
/* After the session is over: how long to try flushing its last frames (GOAWAY) before closing. */
#define H2_LINGER_MS 2000
/* A header block this many times over the limit is a flood: connection error. */
#define H2_HEADER_FLOOD_FACTOR 4

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct h2_stream h2_stream_t;
TAILQ_HEAD(h2_stream_list, h2_stream);

struct h2_stream {
    struct mcplex_http_stream super; /* first: the generic stream the handler sees */
    mcplex_h2_conn_t *conn;
    int32_t id;
    mcplex_http_request_t req;
    char *method, *path, *query, *authority;
    mcplex_http_header_t *headers; /* name and value: one allocation each, NUL-terminated */
    size_t n_headers, headers_cap;
    char *body;
    size_t body_len, body_cap;
    size_t header_bytes;   /* names and values, as Envoy counts them */
    int early_status;      /* answer this (431, 413) instead of handing the request over */
    struct evbuffer *out;  /* response body bytes not yet taken by nghttp2 */
    bool in_ready;         /* on conn->ready */
    bool remote_closed;    /* END_STREAM received */
    bool handed;           /* given to the handler */
    bool answered;         /* response HEADERS submitted */
    bool user_done;        /* respond() or finish() ran: the handler dropped its pointer */
    bool eof;              /* no more body bytes will be queued */
    bool deferred;         /* the data provider returned NGHTTP2_ERR_DEFERRED */
    bool no_body;          /* HEAD, 204, 304: HEADERS carry END_STREAM */
    bool closed;           /* nghttp2 closed the stream; it is on conn->dead */
    TAILQ_ENTRY(h2_stream) link;       /* conn->streams, or conn->dead once closed */
    TAILQ_ENTRY(h2_stream) ready_link; /* conn->ready */
};

typedef enum h2_conn_state {
    H2_CONN_OPEN = 0,  /* serving streams */
    H2_CONN_DRAINING,  /* GOAWAY sent; open streams finish until the drain timer fires */
    H2_CONN_LINGERING, /* the session is over; flushing its last frames, then closing */
    H2_CONN_DEAD,      /* closed; freed when no frame of ours is on the stack */
    /* H2_CONN_STATE_COUNT */
} h2_conn_state_t;

struct mcplex_h2_conn {
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct event *timer; /* idle (OPEN without streams), drain (DRAINING) or linger */
    mcplex_http_limits_t limits;
    mcplex_h2_settings_t settings;
    mcplex_http_handler_fn handler;
    void *ctx;
    mcplex_h2_conn_close_fn close_cb;
    void *close_arg;
    h2_conn_state_t state;
    unsigned busy;     /* our frames on the stack */
    bool read_paused;  /* EV_READ off: output above the high-water mark */
    bool servicing;    /* h2_conn_service() is on the stack */
    bool timer_idle;   /* |timer| runs as the idle timer */
    struct h2_stream_list streams; /* open streams */
    struct h2_stream_list dead;    /* closed by nghttp2, freed by h2_conn_service() */
    struct h2_stream_list ready;   /* complete requests (or early answers) to act on */
    LIST_ENTRY(mcplex_h2_conn) link; /* h2_conns */
    char peer[64];
};

LIST_HEAD(h2_conn_list, mcplex_h2_conn);
/* Live connections of this thread, for mcplex_h2_drain_all(). */
static _Thread_local struct h2_conn_list h2_conns = LIST_HEAD_INITIALIZER(h2_conns);
static _Thread_local size_t h2_n_conns;

static const mcplex_http_stream_ops_t h2_stream_ops;
static nghttp2_session_callbacks *h2_callbacks_get(void);
static void h2_conn_enter(mcplex_h2_conn_t *c);
static void h2_conn_leave(mcplex_h2_conn_t *c);
static void h2_conn_kill(mcplex_h2_conn_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void
h2_timer_add(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* Response headers HTTP/2 forbids (RFC 9113 section 8.2.2) or the codec writes itself. */
static bool
h2_header_is_dropped(const mcplex_http_header_t *h)
{
    static const char *const dropped[] = {"connection", "keep-alive", "transfer-encoding", "upgrade",
                                          "proxy-connection", "content-length", "te", NULL};

    if (h->name_len == 0 || h->name[0] == ':')
        return true;
    for (size_t i = 0; dropped[i] != NULL; i++)
        if (mcplex_http_name_is(h->name, h->name_len, dropped[i]))
            return true;
    return false;
}

/* 1xx, 204 and 304 responses never carry a body (RFC 9110 section 6.4.1). */
static bool
h2_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* ------------------------------------------------------------------------------------------ */
/* Streams                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static h2_stream_t *
h2_stream_create(mcplex_h2_conn_t *c, int32_t id)
{
    h2_stream_t *s = mcplex_calloc(1, sizeof(*s));

    s->super.ops = &h2_stream_ops;
    memcpy(s->super.peer, c->peer, sizeof(s->super.peer));
    s->conn = c;
    s->id = id;
    s->out = evbuffer_new();
    MCPLEX_BUG_ON(s->out == NULL);
    TAILQ_INSERT_TAIL(&c->streams, s, link);
    return s;
}

static void
h2_stream_free(h2_stream_t *s)
{
    for (size_t i = 0; i < s->n_headers; i++) {
        free((char *)s->headers[i].name);
        free((char *)s->headers[i].value);
    }
    free(s->headers);
    free(s->method);
    free(s->path);
    free(s->query);
    free(s->authority);
    free(s->body);
    evbuffer_free(s->out);
    free(s);
}

static void
h2_stream_add_header(h2_stream_t *s, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (s->n_headers == s->headers_cap) {
        s->headers_cap = s->headers_cap != 0 ? s->headers_cap * 2 : 16;
        s->headers = mcplex_realloc(s->headers, s->headers_cap * sizeof(*s->headers));
    }
    s->headers[s->n_headers++] = (mcplex_http_header_t){
        .name = mcplex_strndup(name, name_len),
        .name_len = name_len,
        .value = mcplex_strndup(value, value_len),
        .value_len = value_len,
    };
}

/* Sets path and query from a :path value ("/mcp?x=1"). */
static void
h2_stream_set_path(h2_stream_t *s, const char *value, size_t len)
{
    const char *q = memchr(value, '?', len);

    free(s->path);
    free(s->query);
    s->query = NULL;
    if (q != NULL) {
        s->path = mcplex_strndup(value, (size_t)(q - value));
        s->query = mcplex_strndup(q + 1, len - (size_t)(q - value) - 1);
    } else {
        s->path = mcplex_strndup(value, len);
    }
}

/* Queues |s| on the ready list (once). */
static void
h2_stream_make_ready(h2_stream_t *s)
{
    if (!s->in_ready && !s->handed) {
        s->in_ready = true;
        TAILQ_INSERT_TAIL(&s->conn->ready, s, ready_link);
    }
}

/* Fills s->req from the collected pieces; called once, before the handler sees it. */
static void
h2_stream_build_request(h2_stream_t *s)
{
    mcplex_http_request_t *req = &s->req;

    req->method = s->method != NULL ? s->method : "GET";
    req->path = s->path != NULL ? s->path : "/";
    req->query = s->query;
    req->headers = s->headers;
    req->n_headers = s->n_headers;
    req->authority = s->authority != NULL ? s->authority : mcplex_http_request_header(req, "host");
    if (s->body != NULL) {
        s->body[s->body_len] = '\0';
        req->body = s->body;
    } else {
        req->body = "";
    }
    req->body_len = s->body_len;
    req->http_major = 2;
    req->http_minor = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static ssize_t
h2_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
             nghttp2_data_source *source, void *user_data)
{
    h2_stream_t *s = source->ptr;
    int n;

    (void)session;
    (void)stream_id;
    (void)user_data;
    n = evbuffer_remove(s->out, buf, length);
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (evbuffer_get_length(s->out) == 0 && s->eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return n;
}

/*
 * Submits the response HEADERS of |s|: ":status", the handler's headers (lower-cased, forbidden
 * ones dropped), date unless given, and content-length when |content_length| >= 0. With a body
 * the data provider takes bytes from s->out. Returns 0 or -1 (nghttp2 refused: stream gone).
 */
static int
h2_stream_submit(h2_stream_t *s, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs,
                 int64_t content_length)
{
    mcplex_h2_conn_t *c = s->conn;
    nghttp2_nv *nva = mcplex_calloc(n_hdrs + 3, sizeof(*nva));
    char **lower = mcplex_calloc(n_hdrs + 1, sizeof(*lower));
    char status_text[8], length_text[24];
    bool have_date = false;
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = h2_data_read};
    size_t n = 0;
    int rv;

    snprintf(status_text, sizeof(status_text), "%03d", status);
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_text, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < n_hdrs; i++) {
        const mcplex_http_header_t *h = &hdrs[i];
        if (h2_header_is_dropped(h))
            continue;
        lower[i] = mcplex_strndup(h->name, h->name_len);
        for (size_t j = 0; j < h->name_len; j++)
            if (lower[i][j] >= 'A' && lower[i][j] <= 'Z')
                lower[i][j] = (char)(lower[i][j] + ('a' - 'A'));
        have_date = have_date || mcplex_http_name_is(h->name, h->name_len, "date");
        nva[n++] = (nghttp2_nv){(uint8_t *)lower[i], (uint8_t *)h->value, h->name_len, h->value_len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    if (!have_date) {
        const char *date = mcplex_http_date(c->base);
        nva[n++] = (nghttp2_nv){(uint8_t *)"date", (uint8_t *)date, 4, strlen(date), NGHTTP2_NV_FLAG_NONE};
    }
    if (content_length >= 0) {
        snprintf(length_text, sizeof(length_text), "%lld", (long long)content_length);
        nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)length_text, 14, strlen(length_text),
                                NGHTTP2_NV_FLAG_NONE};
    }
    rv = nghttp2_submit_response(c->session, s->id, nva, n, s->no_body ? NULL : &prd);
    for (size_t i = 0; i < n_hdrs; i++)
        free(lower[i]);
    free(lower);
    free(nva);
    if (rv != 0) {
        mcplex_log_debug(H2_LOG, "%s: stream %d: cannot submit response: %s", c->peer, s->id,
                         nghttp2_strerror(rv));
        return -1;
    }
    s->answered = true;
    return 0;
}

/* Answers a request the codec refused (431, 413, 400) with a short text body. */
static void
h2_stream_answer_error(h2_stream_t *s, int status)
{
    const char *reason = mcplex_http_status_text(status);
    mcplex_http_header_t ct = {"content-type", 12, "text/plain", 10};
    size_t len = strlen(reason);

    mcplex_log_debug(H2_LOG, "%s: stream %d: refused (%d)", s->conn->peer, s->id, status);
    s->no_body = false;
    s->eof = true;
    s->user_done = true;
    evbuffer_add(s->out, reason, len);
    evbuffer_add(s->out, "\n", 1);
    if (h2_stream_submit(s, status, &ct, 1, (int64_t)len + 1) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

/* ------------------------------------------------------------------------------------------ */
/* Stream ops (the mcplex_http_stream_* functions land here)                                   */
/* ------------------------------------------------------------------------------------------ */

static int
h2_stream_respond(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs,
                  const void *body, size_t body_len)
{
    h2_stream_t *s = MCPLEX_CONTAINER_OF(stream, h2_stream_t, super);
    mcplex_h2_conn_t *c = s->conn;
    bool head = strcmp(s->req.method, "HEAD") == 0;

    if (s->user_done || s->answered || status < 200 || status > 999)
        return -1;
    h2_conn_enter(c);
    s->user_done = true;
    s->eof = true;
    if (!s->closed && c->state != H2_CONN_DEAD) {
        s->no_body = head || !h2_status_has_body(status) || body_len == 0;
        if (!head && h2_status_has_body(status) && body_len != 0)
            evbuffer_add(s->out, body, body_len);
        (void)h2_stream_submit(s, status, hdrs, n_hdrs,
                               status == 204 || status == 304 ? -1 : (int64_t)body_len);
    }
    /* The handler drops its pointer now; the stream is freed when nghttp2 closes it. */
    h2_conn_leave(c);
    return 0;
}

static int
h2_stream_start(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    h2_stream_t *s = MCPLEX_CONTAINER_OF(stream, h2_stream_t, super);
    mcplex_h2_conn_t *c = s->conn;
    int rv = 0;

    if (s->user_done || s->answered || status < 200 || status > 999)
        return -1;
    if (s->closed || c->state == H2_CONN_DEAD)
        return 0; /* the close callback is on its way */
    h2_conn_enter(c);
    s->no_body = strcmp(s->req.method, "HEAD") == 0 || !h2_status_has_body(status);
    if (h2_stream_submit(s, status, hdrs, n_hdrs, -1) != 0)
        rv = -1;
    h2_conn_leave(c);
    return rv;
}

static int
h2_stream_write(mcplex_http_stream_t *stream, const void *data, size_t len)
{
    h2_stream_t *s = MCPLEX_CONTAINER_OF(stream, h2_stream_t, super);
    mcplex_h2_conn_t *c = s->conn;
    int rv = 0;

    if (!s->answered || s->user_done || s->closed || c->state == H2_CONN_DEAD)
        return -1;
    if (len == 0 || s->no_body)
        return 0;
    h2_conn_enter(c);
    if (evbuffer_get_length(s->out) + len > c->settings.max_stream_queued_bytes) {
        /* The peer does not take what we queue (its window stays shut): give up on the stream. */
        mcplex_log_info(H2_LOG, "%s: stream %d: more than %u bytes queued, resetting it", c->peer, s->id,
                        c->settings.max_stream_queued_bytes);
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        rv = -1;
    } else {
        evbuffer_add(s->out, data, len);
        if (s->deferred) {
            s->deferred = false;
            nghttp2_session_resume_data(c->session, s->id);
        }
    }
    h2_conn_leave(c);
    return rv;
}

static int
h2_stream_finish(mcplex_http_stream_t *stream)
{
    h2_stream_t *s = MCPLEX_CONTAINER_OF(stream, h2_stream_t, super);
    mcplex_h2_conn_t *c = s->conn;

    if (s->user_done)
        return -1;
    if (!s->answered && !s->closed && c->state != H2_CONN_DEAD)
        return -1;
    h2_conn_enter(c);
    s->user_done = true;
    s->eof = true;
    if (s->deferred && !s->closed && c->state != H2_CONN_DEAD) {
        s->deferred = false;
        nghttp2_session_resume_data(c->session, s->id);
    }
    h2_conn_leave(c);
    return 0;
}

static size_t
h2_stream_pending_bytes(const mcplex_http_stream_t *stream)
{
    const h2_stream_t *s = MCPLEX_CONTAINER_OF(stream, const h2_stream_t, super);

    return evbuffer_get_length(s->out);
}

static const mcplex_http_stream_ops_t h2_stream_ops = {
    .respond = h2_stream_respond,
    .start = h2_stream_start,
    .write = h2_stream_write,
    .finish = h2_stream_finish,
    .pending_bytes = h2_stream_pending_bytes,
};

/* ------------------------------------------------------------------------------------------ */
/* nghttp2 callbacks: fill streams and queues; never free, never call the handler              */
/* ------------------------------------------------------------------------------------------ */

static ssize_t
h2_on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
    mcplex_h2_conn_t *c = user_data;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    (void)session;
    (void)flags;
    if (evbuffer_get_length(out) >= H2_OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (bufferevent_write(c->bev, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int
h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    mcplex_h2_conn_t *c = user_data;
    h2_stream_t *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = h2_stream_create(c, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static int
h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
             const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    mcplex_h2_conn_t *c = user_data;
    h2_stream_t *s;
    size_t limit = (size_t)c->limits.max_request_headers_kb * 1024;

    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    s->header_bytes += namelen + valuelen;
    if (s->header_bytes > limit * H2_HEADER_FLOOD_FACTOR)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* connection error: GOAWAY */
    if (s->header_bytes > limit || (s->n_headers >= H2_MAX_HEADERS && name[0] != ':')) {
        if (s->early_status == 0)
            s->early_status = 431;
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST || s->early_status != 0)
        return 0; /* trailers: counted, not kept */
    if (namelen > 0 && name[0] == ':') {
        if (mcplex_http_name_is((const char *)name, namelen, ":method")) {
            free(s->method);
            s->method = mcplex_strndup((const char *)value, valuelen);
        } else if (mcplex_http_name_is((const char *)name, namelen, ":path")) {
            h2_stream_set_path(s, (const char *)value, valuelen);
        } else if (mcplex_http_name_is((const char *)name, namelen, ":authority")) {
            free(s->authority);
            s->authority = mcplex_strndup((const char *)value, valuelen);
        }
        /* :scheme is validated by nghttp2 and not needed above us. */
        return 0;
    }
    h2_stream_add_header(s, (const char *)name, namelen, (const char *)value, valuelen);
    return 0;
}

static int
h2_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                 void *user_data)
{
    mcplex_h2_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    if (s == NULL || s->early_status != 0 || s->handed)
        return 0;
    if (s->body_len + len > c->limits.max_request_body_bytes) {
        s->early_status = 413;
        h2_stream_make_ready(s); /* answer now, without waiting for the rest */
        return 0;
    }
    if (s->body_len + len + 1 > s->body_cap) {
        size_t cap = s->body_cap != 0 ? s->body_cap : 4096;
        while (cap < s->body_len + len + 1)
            cap *= 2;
        if (cap > (size_t)c->limits.max_request_body_bytes + 1)
            cap = (size_t)c->limits.max_request_body_bytes + 1;
        s->body = mcplex_realloc(s->body, cap);
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    return 0;
}

static int
h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_stream_t *s;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        s->remote_closed = true;
        h2_stream_make_ready(s);
    } else if (frame->hd.type == NGHTTP2_HEADERS && s->early_status != 0) {
        h2_stream_make_ready(s); /* 431 at once */
    }
    return 0;
}

static int
h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_stream_t *s;

    (void)user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    /* An answer before the request ended: tell the client to stop sending (RFC 9113 8.1). */
    if (s != NULL && !s->remote_closed)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int
h2_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    mcplex_h2_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);

    if (s == NULL || s->closed)
        return 0;
    if (error_code != NGHTTP2_NO_ERROR)
        mcplex_log_debug(H2_LOG, "%s: stream %d closed: %s", c->peer, stream_id,
                         nghttp2_http2_strerror(error_code));
    s->closed = true;
    if (s->in_ready) {
        s->in_ready = false;
        TAILQ_REMOVE(&c->ready, s, ready_link);
    }
    TAILQ_REMOVE(&c->streams, s, link);
    TAILQ_INSERT_TAIL(&c->dead, s, link);
    return 0;
}

static nghttp2_session_callbacks *
h2_callbacks_get(void)
{
    /* One table per thread, built once and never freed (nghttpx builds one per process). */
    static _Thread_local nghttp2_session_callbacks *cbs;

    if (cbs == NULL) {
        MCPLEX_BUG_ON(nghttp2_session_callbacks_new(&cbs) != 0);
        nghttp2_session_callbacks_set_send_callback(cbs, h2_on_send);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2_on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    }
    return cbs;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void
h2_conn_destroy(mcplex_h2_conn_t *c)
{
    if (c->close_cb != NULL)
        c->close_cb(c->close_arg, c);
    mcplex_log_trace(H2_LOG, "%s: connection closed", c->peer);
    LIST_REMOVE(c, link);
    h2_n_conns--;
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    mcplex_conn_io_free(c->bev);
    event_free(c->timer);
    free(c);
}

static void
h2_conn_enter(mcplex_h2_conn_t *c)
{
    c->busy++;
}

/* Ends |s| because the connection dies: its owner hears of it if the handler had it. */
static void
h2_stream_end(h2_stream_t *s)
{
    if (s->handed && !s->user_done && s->super.on_close != NULL) {
        s->user_done = true;
        s->super.on_close(s->super.on_close_arg, &s->super);
    }
    h2_stream_free(s);
}

/*
 * Closes the connection now: every stream's owner is told, the socket stops, and the memory is
 * freed when the last frame of ours leaves the stack.
 */
static void
h2_conn_kill(mcplex_h2_conn_t *c)
{
    h2_stream_t *s;

    if (c->state == H2_CONN_DEAD)
        return;
    c->state = H2_CONN_DEAD;
    h2_conn_enter(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->timer);
    while ((s = TAILQ_FIRST(&c->ready)) != NULL) {
        s->in_ready = false;
        TAILQ_REMOVE(&c->ready, s, ready_link);
    }
    while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
        TAILQ_REMOVE(&c->streams, s, link);
        s->closed = true;
        h2_stream_end(s);
    }
    while ((s = TAILQ_FIRST(&c->dead)) != NULL) {
        TAILQ_REMOVE(&c->dead, s, link);
        h2_stream_end(s);
    }
    h2_conn_leave(c);
}

/* The session is over: flush what is queued (GOAWAY), then close. */
static void
h2_conn_linger(mcplex_h2_conn_t *c)
{
    if (c->state == H2_CONN_LINGERING || c->state == H2_CONN_DEAD)
        return;
    c->state = H2_CONN_LINGERING;
    c->timer_idle = false;
    bufferevent_disable(c->bev, EV_READ);
    h2_timer_add(c->timer, H2_LINGER_MS);
}

/* Hands ready requests to the handler, or answers them with the codec's error status. */
static void
h2_conn_dispatch(mcplex_h2_conn_t *c)
{
    h2_stream_t *s;

    while (c->state != H2_CONN_DEAD && (s = TAILQ_FIRST(&c->ready)) != NULL) {
        TAILQ_REMOVE(&c->ready, s, ready_link);
        s->in_ready = false;
        if (s->closed || s->answered)
            continue;
        if (s->early_status != 0) {
            h2_stream_answer_error(s, s->early_status);
            continue;
        }
        if (s->method == NULL) {
            h2_stream_answer_error(s, 400);
            continue;
        }
        h2_stream_build_request(s);
        s->handed = true;
        mcplex_log_trace(H2_LOG, "%s: stream %d: %s %s", c->peer, s->id, s->req.method, s->req.path);
        c->handler(c->ctx, &s->super, &s->req);
        /* |s| may be answered now; it stays allocated until nghttp2 closes it. */
    }
}

/* Fires the close callbacks of streams nghttp2 closed, and frees them. */
static void
h2_conn_reap(mcplex_h2_conn_t *c)
{
    h2_stream_t *s;

    while ((s = TAILQ_FIRST(&c->dead)) != NULL) {
        TAILQ_REMOVE(&c->dead, s, link);
        h2_stream_end(s);
    }
}

/* Feeds buffered input to nghttp2 (unless the output is above the high-water mark). */
static void
h2_conn_read_input(mcplex_h2_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (c->state == H2_CONN_OPEN || c->state == H2_CONN_DRAINING) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= H2_OUTPUT_HIGH_WATER) {
            if (!c->read_paused) {
                c->read_paused = true;
                bufferevent_disable(c->bev, EV_READ);
            }
            return;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        n = nghttp2_session_mem_recv(c->session, v.iov_base, v.iov_len);
        if (n < 0) {
            mcplex_log_debug(H2_LOG, "%s: closing: %s", c->peer, nghttp2_strerror((int)n));
            evbuffer_drain(in, evbuffer_get_length(in));
            /* Bad preface, flood, malformed frame: GOAWAY, flushed by the service, then close. */
            nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
}

/*
 * The work after every entry point, run by the outermost one: dispatch, reap, send, and decide
 * whether the connection is over. Loops until nothing changes.
 */
static void
h2_conn_service(mcplex_h2_conn_t *c)
{
    int rv;

    if (c->servicing)
        return;
    c->servicing = true;
    for (int round = 0; round < 64 && c->state != H2_CONN_DEAD; round++) {
        h2_conn_dispatch(c);
        if (c->state == H2_CONN_DEAD)
            break;
        rv = nghttp2_session_send(c->session);
        if (rv != 0) {
            mcplex_log_debug(H2_LOG, "%s: send failed: %s", c->peer, nghttp2_strerror(rv));
            h2_conn_kill(c);
            break;
        }
        h2_conn_reap(c);
        if (TAILQ_EMPTY(&c->ready) && TAILQ_EMPTY(&c->dead))
            break;
    }
    if (c->state != H2_CONN_DEAD && !nghttp2_session_want_read(c->session) &&
        !nghttp2_session_want_write(c->session)) {
        h2_conn_linger(c);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            h2_conn_kill(c);
    }
    if (c->state == H2_CONN_OPEN) {
        /* The idle timer runs while no stream is open. */
        bool idle = TAILQ_EMPTY(&c->streams);
        if (idle && !c->timer_idle) {
            c->timer_idle = true;
            h2_timer_add(c->timer, c->limits.idle_timeout_ms);
        } else if (!idle && c->timer_idle) {
            c->timer_idle = false;
            evtimer_del(c->timer);
        }
    }
    c->servicing = false;
}

/* Leaves one of our frames; the outermost one services the session, and frees a dead one. */
static void
h2_conn_leave(mcplex_h2_conn_t *c)
{
    if (c->busy == 1 && c->state != H2_CONN_DEAD)
        h2_conn_service(c);
    if (--c->busy == 0 && c->state == H2_CONN_DEAD)
        h2_conn_destroy(c);
}

/* ------------------------------------------------------------------------------------------ */
/* libevent callbacks                                                                          */
/* ------------------------------------------------------------------------------------------ */

static void
h2_on_read(struct bufferevent *bev, void *arg)
{
    mcplex_h2_conn_t *c = arg;

    (void)bev;
    h2_conn_enter(c);
    if (c->state == H2_CONN_OPEN || c->state == H2_CONN_DRAINING)
        h2_conn_read_input(c);
    else
        evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
    h2_conn_leave(c);
}

static void
h2_on_write(struct bufferevent *bev, void *arg)
{
    mcplex_h2_conn_t *c = arg;

    (void)bev;
    h2_conn_enter(c);
    if (c->state == H2_CONN_LINGERING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            h2_conn_kill(c);
    } else if (c->read_paused && c->state != H2_CONN_DEAD) {
        c->read_paused = false;
        bufferevent_enable(c->bev, EV_READ);
        h2_conn_read_input(c); /* what waited in the input while we were not reading */
    }
    /* h2_conn_leave() sends what nghttp2 held back with WOULDBLOCK. */
    h2_conn_leave(c);
}

static void
h2_on_event(struct bufferevent *bev, short events, void *arg)
{
    mcplex_h2_conn_t *c = arg;

    (void)bev;
    h2_conn_enter(c);
    if (events & BEV_EVENT_EOF)
        mcplex_log_trace(H2_LOG, "%s: peer closed", c->peer);
    else if (events & BEV_EVENT_TIMEOUT)
        mcplex_log_debug(H2_LOG, "%s: write timeout", c->peer);
    else if (events & BEV_EVENT_ERROR)
        mcplex_log_debug(H2_LOG, "%s: socket error", c->peer);
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        h2_conn_kill(c);
    h2_conn_leave(c);
}

static void
h2_on_timer(evutil_socket_t fd, short what, void *arg)
{
    mcplex_h2_conn_t *c = arg;

    (void)fd;
    (void)what;
    h2_conn_enter(c);
    if (c->state == H2_CONN_OPEN && c->timer_idle) {
        mcplex_log_debug(H2_LOG, "%s: idle timeout", c->peer);
        c->timer_idle = false;
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    } else if (c->state == H2_CONN_DRAINING) {
        mcplex_log_debug(H2_LOG, "%s: drain timeout", c->peer);
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        h2_conn_linger(c);
    } else {
        h2_conn_kill(c);
    }
    h2_conn_leave(c);
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void
h2_settings_defaults(mcplex_h2_settings_t *s)
{
    if (s->max_concurrent_streams == 0)
        s->max_concurrent_streams = H2_DEFAULT_MAX_STREAMS;
    if (s->initial_stream_window_size == 0)
        s->initial_stream_window_size = H2_DEFAULT_STREAM_WINDOW;
    if (s->initial_connection_window_size == 0)
        s->initial_connection_window_size = H2_DEFAULT_CONN_WINDOW;
    if (s->initial_stream_window_size > NGHTTP2_MAX_WINDOW_SIZE)
        s->initial_stream_window_size = NGHTTP2_MAX_WINDOW_SIZE;
    if (s->initial_connection_window_size > NGHTTP2_MAX_WINDOW_SIZE)
        s->initial_connection_window_size = NGHTTP2_MAX_WINDOW_SIZE;
    if (s->max_stream_queued_bytes == 0)
        s->max_stream_queued_bytes = H2_DEFAULT_STREAM_QUEUE;
    if (s->drain_timeout_ms == 0)
        s->drain_timeout_ms = H2_DEFAULT_DRAIN_MS;
}

/* Creates the connection object and its nghttp2 session; no I/O yet. NULL on failure. */
static mcplex_h2_conn_t *
h2_conn_new(struct event_base *base, struct bufferevent *bev, const char *peer,
            const mcplex_http_limits_t *limits, const mcplex_h2_settings_t *settings,
            mcplex_http_handler_fn handler, void *ctx)
{
    mcplex_h2_conn_t *c = mcplex_calloc(1, sizeof(*c));
    nghttp2_option *opt = NULL;

    c->base = base;
    c->bev = bev;
    c->handler = handler;
    c->ctx = ctx;
    if (limits != NULL)
        c->limits = *limits;
    if (c->limits.max_request_headers_kb == 0)
        c->limits.max_request_headers_kb = H2_DEFAULT_MAX_HEADERS_KB;
    if (c->limits.max_request_body_bytes == 0)
        c->limits.max_request_body_bytes = MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES;
    if (c->limits.idle_timeout_ms == 0)
        c->limits.idle_timeout_ms = H2_DEFAULT_IDLE_TIMEOUT_MS;
    if (settings != NULL)
        c->settings = *settings;
    h2_settings_defaults(&c->settings);
    snprintf(c->peer, sizeof(c->peer), "%s", peer != NULL ? peer : "unknown");
    TAILQ_INIT(&c->streams);
    TAILQ_INIT(&c->dead);
    TAILQ_INIT(&c->ready);
    LIST_INSERT_HEAD(&h2_conns, c, link);
    h2_n_conns++;

    c->timer = evtimer_new(base, h2_on_timer, c);
    if (c->timer == NULL)
        goto fail;
    if (nghttp2_option_new(&opt) != 0)
        goto fail;
    /* Bound what a peer can make us queue: nghttp2 answers SETTINGS/PING floods with GOAWAY. */
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    if (nghttp2_session_server_new2(&c->session, h2_callbacks_get(), c, opt) != 0)
        goto fail;
    nghttp2_option_del(opt);
    return c;

fail:
    if (opt != NULL)
        nghttp2_option_del(opt);
    LIST_REMOVE(c, link);
    h2_n_conns--;
    if (c->timer != NULL)
        event_free(c->timer);
    mcplex_conn_io_free(bev);
    free(c);
    return NULL;
}

/* Sends our SETTINGS and the connection window, and starts the I/O. Returns 0 or -1. */
static int
h2_conn_begin(mcplex_h2_conn_t *c)
{
    nghttp2_settings_entry iv[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->settings.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->settings.initial_stream_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->limits.max_request_headers_kb * 1024},
    };
    int32_t conn_window = (int32_t)c->settings.initial_connection_window_size;

    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, MCPLEX_ARRAY_SIZE(iv)) != 0)
        return -1;
    if (conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, conn_window) != 0)
        return -1;
    bufferevent_setcb(c->bev, h2_on_read, h2_on_write, h2_on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, H2_OUTPUT_LOW_WATER, 0);
    {
        struct timeval wt = {.tv_sec = c->limits.idle_timeout_ms / 1000,
                             .tv_usec = (c->limits.idle_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        return -1;
    return 0;
}

mcplex_h2_conn_t *
mcplex_h2_conn_create(struct event_base *base, struct bufferevent *bev, const char *peer,
                      const mcplex_http_limits_t *limits, const mcplex_h2_settings_t *settings,
                      mcplex_http_handler_fn handler, void *ctx)
{
    mcplex_h2_conn_t *c = h2_conn_new(base, bev, peer, limits, settings, handler, ctx);

    if (c == NULL)
        return NULL;
    h2_conn_enter(c);
    if (h2_conn_begin(c) != 0) {
        mcplex_log_error(H2_LOG, "%s: cannot set up the connection", c->peer);
        h2_conn_kill(c);
        h2_conn_leave(c);
        return NULL;
    }
    mcplex_log_trace(H2_LOG, "%s: HTTP/2 connection", c->peer);
    h2_conn_read_input(c); /* the bytes the codec selector peeked */
    h2_conn_leave(c);
    return c;
}

mcplex_h2_conn_t *
mcplex_h2_conn_create_upgraded(struct event_base *base, struct bufferevent *bev, const char *peer,
                               const mcplex_http_limits_t *limits, const mcplex_h2_settings_t *settings,
                               const char *http2_settings, size_t settings_len,
                               const mcplex_http_request_t *upgrade_req, mcplex_http_handler_fn handler,
                               void *ctx)
{
    static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                    "Upgrade: h2c\r\n\r\n";
    mcplex_h2_conn_t *c;
    h2_stream_t *s;
    void *payload = NULL;
    size_t payload_len = 0;
    int rv;

    if (mcplex_base64_decode_any(http2_settings, settings_len, &payload, &payload_len) != 0) {
        mcplex_log_debug(H2_LOG, "%s: bad HTTP2-Settings", peer != NULL ? peer : "unknown");
        mcplex_conn_io_free(bev);
        return NULL;
    }
    c = h2_conn_new(base, bev, peer, limits, settings, handler, ctx);
    if (c == NULL) {
        free(payload);
        return NULL;
    }
    h2_conn_enter(c);
    s = h2_stream_create(c, 1);
    rv = nghttp2_session_upgrade2(c->session, payload, payload_len, strcmp(upgrade_req->method, "HEAD") == 0,
                                  s);
    free(payload);
    if (rv != 0) {
        mcplex_log_debug(H2_LOG, "%s: h2c upgrade refused: %s", c->peer, nghttp2_strerror(rv));
        goto fail;
    }
    evbuffer_add(bufferevent_get_output(bev), switching, sizeof(switching) - 1);
    if (h2_conn_begin(c) != 0)
        goto fail;
    /* Stream 1 is the HTTP/1.1 request, half-closed (remote) already. */
    s->method = mcplex_strdup(upgrade_req->method);
    s->path = mcplex_strdup(upgrade_req->path != NULL ? upgrade_req->path : "/");
    s->query = upgrade_req->query != NULL ? mcplex_strdup(upgrade_req->query) : NULL;
    s->authority = upgrade_req->authority != NULL ? mcplex_strdup(upgrade_req->authority) : NULL;
    for (size_t i = 0; i < upgrade_req->n_headers; i++) {
        const mcplex_http_header_t *h = &upgrade_req->headers[i];
        if (mcplex_http_name_is(h->name, h->name_len, "connection") || mcplex_http_name_is(h->name, h->name_len, "upgrade") ||
            mcplex_http_name_is(h->name, h->name_len, "http2-settings") || mcplex_http_name_is(h->name, h->name_len, "host") ||
            mcplex_http_name_is(h->name, h->name_len, "keep-alive") ||
            mcplex_http_name_is(h->name, h->name_len, "transfer-encoding"))
            continue;
        h2_stream_add_header(s, h->name, h->name_len, h->value, h->value_len);
    }
    if (upgrade_req->body_len > 0) {
        s->body = mcplex_malloc(upgrade_req->body_len + 1);
        memcpy(s->body, upgrade_req->body, upgrade_req->body_len);
        s->body_len = s->body_cap = upgrade_req->body_len;
        s->body_cap++;
    }
    s->remote_closed = true;
    h2_stream_make_ready(s);
    mcplex_log_trace(H2_LOG, "%s: HTTP/2 connection (h2c upgrade)", c->peer);
    h2_conn_read_input(c);
    h2_conn_leave(c);
    return c;

fail:
    h2_conn_kill(c);
    h2_conn_leave(c);
    return NULL;
}

void
mcplex_h2_conn_drain(mcplex_h2_conn_t *conn)
{
    mcplex_h2_conn_t *c = conn;

    if (c == NULL || c->state != H2_CONN_OPEN)
        return;
    h2_conn_enter(c);
    c->state = H2_CONN_DRAINING;
    c->timer_idle = false;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_timer_add(c->timer, c->settings.drain_timeout_ms);
    h2_conn_leave(c);
}

size_t
mcplex_h2_drain_all(void)
{
    mcplex_h2_conn_t *c, *next;

    for (c = LIST_FIRST(&h2_conns); c != NULL; c = next) {
        /* Draining may free |c| (no stream open): step first. */
        next = LIST_NEXT(c, link);
        mcplex_h2_conn_drain(c);
    }
    return h2_n_conns;
}

size_t
mcplex_h2_conn_count(void)
{
    return h2_n_conns;
}

void
mcplex_h2_conn_close(mcplex_h2_conn_t *conn)
{
    if (conn == NULL || conn->state == H2_CONN_DEAD)
        return;
    h2_conn_enter(conn);
    nghttp2_session_terminate_session(conn->session, NGHTTP2_NO_ERROR);
    (void)nghttp2_session_send(conn->session);
    h2_conn_kill(conn);
    h2_conn_leave(conn);
}

void
mcplex_h2_conn_set_close_cb(mcplex_h2_conn_t *conn, mcplex_h2_conn_close_fn cb, void *arg)
{
    conn->close_cb = cb;
    conn->close_arg = arg;
}
