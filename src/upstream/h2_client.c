/*
 * h2_client.c - one HTTP/2 client connection to an upstream endpoint (see h2_client.h).
 *
 * Owns the connection's bufferevent, its nghttp2 client session, a connect timer and every
 * stream object. Thread: the worker that created it.
 *
 * Re-entrancy: user callbacks (on_headers, on_body, on_complete, on_error) run inside nghttp2's
 * receive callbacks and may cancel streams, open new ones or close the connection. Every entry
 * point brackets its work with enter/leave; close() only marks the connection, and nghttp2
 * callbacks of a closing connection return NGHTTP2_ERR_CALLBACK_FAILURE so nghttp2 stops at
 * once. Streams nghttp2 closed wait on |dead| and, like a closed connection, are freed by the
 * outermost leave, which also flushes what nghttp2 has to send.
 */
#include "upstream/h2_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "common/log.h"
#include "common/mem.h"
#include "net/conn_io.h"

#define H2C_LOG "upstream"
#define H2C_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define H2C_MAX_RESPONSE_HEADERS 256

typedef struct mcplex_h2_client_stream h2c_stream_t;
TAILQ_HEAD(h2c_stream_list, mcplex_h2_client_stream);

struct mcplex_h2_client_stream {
    mcplex_h2_client_t *c;
    int32_t id;
    mcplex_http_client_cbs_t cbs;
    void *arg;
    int status;
    mcplex_http_header_t *hdrs; /* response headers; names and values allocated */
    size_t n_hdrs;
    char *body;                 /* request body not yet taken by nghttp2 */
    size_t body_len, body_off;
    bool ended;                 /* the user heard the end (or cancelled): no more callbacks */
    bool closed;                /* nghttp2 closed it; on c->dead */
    TAILQ_ENTRY(mcplex_h2_client_stream) link;
};

struct mcplex_h2_client {
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct event *timer; /* connect timeout */
    unsigned busy;
    bool connected;
    bool failed;         /* transport or protocol failure: streams failed, no more requests */
    bool closing;        /* mcplex_h2_client_close() ran; freed when not busy */
    bool goaway;         /* GOAWAY received */
    size_t n_open;       /* streams on |streams| */
    struct h2c_stream_list streams;
    struct h2c_stream_list dead;
    char label[96];
};

static void h2c_leave(mcplex_h2_client_t *c);

static void
h2c_enter(mcplex_h2_client_t *c)
{
    c->busy++;
}

static void
h2c_stream_free(h2c_stream_t *s)
{
    for (size_t i = 0; i < s->n_hdrs; i++) {
        free((char *)s->hdrs[i].name);
        free((char *)s->hdrs[i].value);
    }
    free(s->hdrs);
    free(s->body);
    free(s);
}

/* Ends |s| for its user with on_error(|reason|) (NULL: silently). */
static void
h2c_stream_fail(h2c_stream_t *s, const char *reason)
{
    if (s->ended)
        return;
    s->ended = true;
    if (reason != NULL && s->cbs.on_error != NULL)
        s->cbs.on_error(s->arg, reason);
}

/* The transport or the session failed: every open stream fails; the connection takes no more. */
static void
h2c_fail(mcplex_h2_client_t *c, const char *reason)
{
    h2c_stream_t *s;

    if (c->failed)
        return;
    c->failed = true;
    mcplex_log_debug(H2C_LOG, "h2 %s: %s", c->label, reason);
    if (c->bev != NULL)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->timer);
    TAILQ_FOREACH(s, &c->streams, link)
        h2c_stream_fail(s, reason);
    TAILQ_FOREACH(s, &c->dead, link)
        h2c_stream_fail(s, reason);
}

static void
h2c_destroy(mcplex_h2_client_t *c)
{
    h2c_stream_t *s;

    while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
        TAILQ_REMOVE(&c->streams, s, link);
        h2c_stream_free(s);
    }
    while ((s = TAILQ_FIRST(&c->dead)) != NULL) {
        TAILQ_REMOVE(&c->dead, s, link);
        h2c_stream_free(s);
    }
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    mcplex_conn_io_free(c->bev);
    event_free(c->timer);
    free(c);
}

/* The outermost leave: frees closed streams, sends what nghttp2 holds, frees a closed client. */
static void
h2c_leave(mcplex_h2_client_t *c)
{
    h2c_stream_t *s;
    int rv;

    if (c->busy == 1 && !c->closing) {
        if (!c->failed) {
            rv = nghttp2_session_send(c->session);
            if (rv != 0)
                h2c_fail(c, nghttp2_strerror(rv));
            else if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
                h2c_fail(c, "session ended");
        }
        while ((s = TAILQ_FIRST(&c->dead)) != NULL) {
            TAILQ_REMOVE(&c->dead, s, link);
            h2c_stream_free(s);
        }
    }
    if (--c->busy == 0 && c->closing)
        h2c_destroy(c);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------- */

static ssize_t
h2c_on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
    mcplex_h2_client_t *c = user_data;

    (void)session;
    (void)flags;
    if (bufferevent_write(c->bev, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int
h2c_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
              const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    mcplex_h2_client_t *c = user_data;
    h2c_stream_t *s;

    (void)flags;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat == NGHTTP2_HCAT_HEADERS)
        return 0; /* trailers are dropped */
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || s->ended)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        s->status = atoi((const char *)value);
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    if (s->status >= 100 && s->status < 200)
        return 0; /* an informational response: its headers are not the response's */
    if (s->n_hdrs >= H2C_MAX_RESPONSE_HEADERS)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->hdrs = mcplex_realloc(s->hdrs, (s->n_hdrs + 1) * sizeof(*s->hdrs));
    s->hdrs[s->n_hdrs++] = (mcplex_http_header_t){
        .name = mcplex_strndup((const char *)name, namelen),
        .name_len = namelen,
        .value = mcplex_strndup((const char *)value, valuelen),
        .value_len = valuelen,
    };
    return 0;
}

static int
h2c_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    mcplex_h2_client_t *c = user_data;
    h2c_stream_t *s;

    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        mcplex_log_debug(H2C_LOG, "h2 %s: GOAWAY (%s)", c->label,
                         nghttp2_http2_strerror(frame->goaway.error_code));
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || s->ended)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        if (s->status >= 100 && s->status < 200) {
            s->status = 0; /* 1xx: wait for the final response */
            return 0;
        }
        if (s->cbs.on_headers != NULL)
            s->cbs.on_headers(s->arg, s->status, s->hdrs, s->n_hdrs);
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->ended && !c->closing) {
        s->ended = true;
        if (s->cbs.on_complete != NULL)
            s->cbs.on_complete(s->arg);
    }
    return 0;
}

static int
h2c_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                  void *user_data)
{
    mcplex_h2_client_t *c = user_data;
    h2c_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (s != NULL && !s->ended && s->cbs.on_body != NULL)
        s->cbs.on_body(s->arg, (const char *)data, len);
    return 0;
}

static int
h2c_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    mcplex_h2_client_t *c = user_data;
    h2c_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    char reason[96];

    if (s == NULL || s->closed)
        return 0;
    s->closed = true;
    c->n_open--;
    TAILQ_REMOVE(&c->streams, s, link);
    TAILQ_INSERT_TAIL(&c->dead, s, link);
    if (!s->ended && !c->closing) {
        snprintf(reason, sizeof(reason), "stream reset by upstream: %s", nghttp2_http2_strerror(error_code));
        h2c_stream_fail(s, reason);
    }
    return 0;
}

static nghttp2_session_callbacks *
h2c_callbacks_get(void)
{
    static _Thread_local nghttp2_session_callbacks *cbs;

    if (cbs == NULL) {
        MCPLEX_BUG_ON(nghttp2_session_callbacks_new(&cbs) != 0);
        nghttp2_session_callbacks_set_send_callback(cbs, h2c_on_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, h2c_on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2c_on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2c_on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2c_on_stream_close);
    }
    return cbs;
}

/* ---- libevent callbacks ---------------------------------------------------------------------- */

static void
h2c_on_read(struct bufferevent *bev, void *arg)
{
    mcplex_h2_client_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    h2c_enter(c);
    while (!c->failed && !c->closing && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(c->session, v.iov_base, v.iov_len);
        if (n < 0) {
            if (!c->closing)
                h2c_fail(c, nghttp2_strerror((int)n));
            break;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (c->failed || c->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
    h2c_leave(c);
}

/* The output drained, or a request was submitted outside our callbacks: send what is queued. */
static void
h2c_on_write(struct bufferevent *bev, void *arg)
{
    mcplex_h2_client_t *c = arg;

    (void)bev;
    h2c_enter(c);
    h2c_leave(c);
}

static void
h2c_on_event(struct bufferevent *bev, short what, void *arg)
{
    mcplex_h2_client_t *c = arg;
    int err = EVUTIL_SOCKET_ERROR();
    int one = 1;
    char reason[160];

    h2c_enter(c);
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        evtimer_del(c->timer);
        if (bufferevent_getfd(bev) >= 0)
            (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        mcplex_log_debug(H2C_LOG, "h2 %s: connected", c->label);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->connected)
            snprintf(reason, sizeof(reason), "connect failed: %s",
                     err != 0 ? evutil_socket_error_to_string(err) : "connection closed");
        else if (what & BEV_EVENT_EOF)
            snprintf(reason, sizeof(reason), "connection closed by upstream");
        else
            snprintf(reason, sizeof(reason), "connection error: %s",
                     err != 0 ? evutil_socket_error_to_string(err) : "unknown");
        h2c_fail(c, reason);
    }
    h2c_leave(c);
}

static void
h2c_on_timer(evutil_socket_t fd, short what, void *arg)
{
    mcplex_h2_client_t *c = arg;

    (void)fd;
    (void)what;
    h2c_enter(c);
    if (!c->connected)
        h2c_fail(c, "connect timeout");
    h2c_leave(c);
}

/* ---- API --------------------------------------------------------------------------------------- */

mcplex_h2_client_t *
mcplex_h2_client_create(struct event_base *base, struct bufferevent *bev, const char *label,
                        uint32_t connect_timeout_ms)
{
    mcplex_h2_client_t *c = mcplex_calloc(1, sizeof(*c));
    nghttp2_settings_entry iv[2] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
    };
    struct timeval tv;

    c->base = base;
    c->bev = bev;
    snprintf(c->label, sizeof(c->label), "%s", label != NULL ? label : "upstream");
    TAILQ_INIT(&c->streams);
    TAILQ_INIT(&c->dead);
    c->timer = evtimer_new(base, h2c_on_timer, c);
    MCPLEX_BUG_ON(c->timer == NULL);
    MCPLEX_BUG_ON(nghttp2_session_client_new(&c->session, h2c_callbacks_get(), c) != 0);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, MCPLEX_ARRAY_SIZE(iv));
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 4 << 20);
    bufferevent_setcb(bev, h2c_on_read, h2c_on_write, h2c_on_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (connect_timeout_ms == 0)
        connect_timeout_ms = H2C_DEFAULT_CONNECT_TIMEOUT_MS;
    tv.tv_sec = connect_timeout_ms / 1000;
    tv.tv_usec = (connect_timeout_ms % 1000) * 1000;
    evtimer_add(c->timer, &tv);
    /* The preface and SETTINGS wait in the output until the connect completes. */
    h2c_enter(c);
    h2c_leave(c);
    return c;
}

bool
mcplex_h2_client_usable(const mcplex_h2_client_t *c)
{
    /* Before the server's SETTINGS arrive, nghttp2 reports the protocol's "unlimited". */
    uint32_t max = nghttp2_session_get_remote_settings(c->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

    return !c->failed && !c->closing && !c->goaway && c->n_open < max &&
           nghttp2_session_check_request_allowed(c->session) != 0;
}

bool
mcplex_h2_client_dead(const mcplex_h2_client_t *c)
{
    return c->failed || c->closing || (c->goaway && TAILQ_EMPTY(&c->streams));
}

static ssize_t
h2c_body_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
              nghttp2_data_source *source, void *user_data)
{
    h2c_stream_t *s = source->ptr;
    size_t n = s->body_len - s->body_off;

    (void)session;
    (void)stream_id;
    (void)user_data;
    if (n > length)
        n = length;
    memcpy(buf, s->body + s->body_off, n);
    s->body_off += n;
    if (s->body_off == s->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static bool
h2c_header_dropped(const mcplex_http_header_t *h)
{
    static const char *const dropped[] = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade",
                                          "proxy-connection", "content-length", "te", NULL};

    for (size_t i = 0; dropped[i] != NULL; i++)
        if (strlen(dropped[i]) == h->name_len && strncasecmp(h->name, dropped[i], h->name_len) == 0)
            return true;
    return false;
}

mcplex_h2_client_stream_t *
mcplex_h2_client_request(mcplex_h2_client_t *c, const char *method, const char *path, const char *authority,
                         const mcplex_http_header_t *hdrs, size_t n_hdrs, const void *body, size_t body_len,
                         const mcplex_http_client_cbs_t *cbs, void *arg)
{
    h2c_stream_t *s;
    nghttp2_nv *nva;
    char **lower;
    char length_text[24];
    nghttp2_data_provider prd;
    size_t n = 0;
    int32_t id;

    if (c->failed || c->closing || c->goaway)
        return NULL;
    s = mcplex_calloc(1, sizeof(*s));
    s->c = c;
    s->cbs = *cbs;
    s->arg = arg;
    nva = mcplex_calloc(n_hdrs + 5, sizeof(*nva));
    lower = mcplex_calloc(n_hdrs + 1, sizeof(*lower));
#define H2C_NV(nm, nl, v, vl) \
    (nghttp2_nv) { (uint8_t *)(nm), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE }
    nva[n++] = H2C_NV(":method", 7, method, strlen(method));
    nva[n++] = H2C_NV(":scheme", 7, "http", 4);
    nva[n++] = H2C_NV(":authority", 10, authority, strlen(authority));
    nva[n++] = H2C_NV(":path", 5, path, strlen(path));
    for (size_t i = 0; i < n_hdrs; i++) {
        if (h2c_header_dropped(&hdrs[i]))
            continue;
        lower[i] = mcplex_strndup(hdrs[i].name, hdrs[i].name_len);
        for (size_t j = 0; j < hdrs[i].name_len; j++)
            if (lower[i][j] >= 'A' && lower[i][j] <= 'Z')
                lower[i][j] = (char)(lower[i][j] + ('a' - 'A'));
        nva[n++] = H2C_NV(lower[i], hdrs[i].name_len, hdrs[i].value, hdrs[i].value_len);
    }
    if (body != NULL) {
        snprintf(length_text, sizeof(length_text), "%zu", body_len);
        nva[n++] = H2C_NV("content-length", 14, length_text, strlen(length_text));
        if (body_len > 0) {
            s->body = mcplex_malloc(body_len);
            memcpy(s->body, body, body_len);
            s->body_len = body_len;
        }
    }
#undef H2C_NV
    prd.source.ptr = s;
    prd.read_callback = h2c_body_read;
    id = nghttp2_submit_request(c->session, NULL, nva, n, s->body_len > 0 ? &prd : NULL, s);
    for (size_t i = 0; i < n_hdrs; i++)
        free(lower[i]);
    free(lower);
    free(nva);
    if (id < 0) {
        mcplex_log_debug(H2C_LOG, "h2 %s: cannot submit a request: %s", c->label, nghttp2_strerror(id));
        h2c_stream_free(s);
        return NULL;
    }
    s->id = id;
    c->n_open++;
    TAILQ_INSERT_TAIL(&c->streams, s, link);
    /* Sent from the event loop (deferred), so no callback can run inside this call. */
    if (c->busy == 0 && c->bev != NULL)
        bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return s;
}

void
mcplex_h2_client_cancel(mcplex_h2_client_stream_t *s)
{
    mcplex_h2_client_t *c;

    if (s == NULL || s->ended)
        return;
    c = s->c;
    s->ended = true;
    if (s->closed || c->failed || c->closing)
        return;
    h2c_enter(c);
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    h2c_leave(c);
}

void
mcplex_h2_client_close(mcplex_h2_client_t *c, const char *reason)
{
    h2c_stream_t *s;

    if (c == NULL || c->closing)
        return;
    h2c_enter(c);
    if (!c->failed) {
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        (void)nghttp2_session_send(c->session);
    }
    TAILQ_FOREACH(s, &c->streams, link)
        h2c_stream_fail(s, reason);
    c->closing = true;
    if (c->bev != NULL)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->timer);
    h2c_leave(c);
}
