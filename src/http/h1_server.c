/*
 * h1_server.c - HTTP/1.1 server connections (see h1_server.h).
 *
 * Owns each downstream HTTP/1.1 connection: its bufferevent (and so the socket), the
 * http-parser state, two timers, and the one stream (h1_stream_t) of the request being read or
 * answered. Runs on the worker thread whose event_base accepted the socket.
 *
 * One request at a time: http-parser is paused in on_message_complete, the request goes to the
 * handler, and nothing more is parsed until its response is finished; pipelined requests wait
 * as raw bytes in the bufferevent's input (reading pauses at H1_INPUT_HIGH_WATER). When the
 * response ends, parsing resumes on those bytes: at once if we are already inside the parse
 * loop (h1_conn_process), else from the |resume| event, so a handler never sees a nested
 * handler call from inside its own respond()/finish().
 *
 * Freeing: a connection is never freed while one of our callbacks is on the stack. Every entry
 * point (libevent callbacks and the stream ops) counts itself in |busy|; h1_conn_kill() marks
 * the connection dead and the last one out frees it (Redis freeClientAsync, done with a counter).
 *
 * Closing: after a response that ends the connection (Connection: close, HTTP/1.0 without
 * keep-alive, an error), the output is flushed, the write side is shut down, and input is read
 * and discarded until the peer closes or H1_LINGER_MS passes (nginx lingering close), so an
 * unread request body does not turn our last response into a TCP reset.
 *
 * Transport I/O is confined to h1_conn_input/output/read_pause/read_resume/shutdown_write() and
 * the constructors; the bufferevent follows the src/net/conn_io.h seam, so the same code runs
 * over a socket bufferevent (plain TCP) or the codec end of a TLS connection.
 */
#include "http/h1_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>

#include "common/log.h"
#include "common/mem.h"
#include "net/conn_io.h"

#define H1_DEFAULT_MAX_HEADERS_KB 60
#define H1_DEFAULT_IDLE_TIMEOUT_MS 60000
/* Envoy's default max_headers_count. */
#define H1_MAX_HEADERS 100
/*
 * Stop reading the socket while this much input waits behind a request being answered. Done
 * by disabling EV_READ ourselves: a bufferevent read high-water mark in libevent 2.1 re-runs
 * the read callback in a loop for as long as the input stays above it.
 */
#define H1_INPUT_HIGH_WATER (256 * 1024)
/* After the last response: how long to keep discarding input before closing anyway. */
#define H1_LINGER_MS 2000

#define H1_LOG "http"

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef enum h1_stream_state {
    H1_STREAM_READING = 0, /* request headers/body being parsed */
    H1_STREAM_HANDLING,    /* handed to the handler, no response yet */
    H1_STREAM_STREAMING,   /* response head sent by start(); chunks follow */
    H1_STREAM_CLOSED,      /* the connection went away; only the close callback runs */
    /* H1_STREAM_COUNT */
} h1_stream_state_t;

/* Which part of the request text the parser is delivering (see h1_stream_t.raw). */
typedef enum h1_piece {
    H1_PIECE_URL = 0,
    H1_PIECE_NAME,
    H1_PIECE_VALUE,
    /* H1_PIECE_COUNT */
} h1_piece_t;

/* A header as offsets into |raw|, which moves while it grows. */
typedef struct h1_span {
    size_t name_off, name_len;
    size_t value_off, value_len;
} h1_span_t;

typedef struct h1_stream {
    struct mcplex_http_stream super; /* first: the generic stream the handler sees */
    mcplex_h1_conn_t *conn;
    h1_stream_state_t state;
    mcplex_http_request_t req;
    /*
     * The request text: the URL, then each header name (lower-cased) and value, each followed
     * by a NUL; then copies of the path, query and authority. The request's pointers are set
     * once the headers are complete.
     */
    char *raw;
    size_t raw_len, raw_cap;
    size_t url_len;
    h1_piece_t piece;
    h1_span_t *spans;
    size_t n_spans, spans_cap;
    mcplex_http_header_t *headers;
    char *body;
    size_t body_len, body_cap;
    size_t header_bytes; /* URL, method, names and values, as Envoy counts them */
    bool headers_done;   /* later header callbacks are trailers (counted, not kept) */
    bool keep_alive;     /* the connection stays open after this response */
    bool head;           /* a HEAD request: responses carry no body */
    bool chunked;        /* the streaming response uses chunked encoding */
    bool no_body;        /* the response may not carry a body (HEAD, 204, 304) */
} h1_stream_t;

typedef enum h1_conn_state {
    H1_CONN_OPEN = 0,  /* reading and answering requests */
    H1_CONN_DRAINING,  /* the last response is queued; shut down writing once it is sent */
    H1_CONN_LINGERING, /* write side shut; discarding input until EOF or the linger timer */
    H1_CONN_DEAD,      /* closed; freed when no callback of ours is on the stack */
    /* H1_CONN_COUNT */
} h1_conn_state_t;

struct mcplex_h1_conn {
    struct event_base *base;
    struct bufferevent *bev;
    struct event *timer;  /* idle timeout (OPEN) or linger timeout (DRAINING, LINGERING) */
    struct event *resume; /* parses pipelined input after a response finished outside our callbacks */
    http_parser parser;
    mcplex_http_limits_t limits;
    mcplex_http_handler_fn handler;
    void *ctx;
    mcplex_h1_conn_close_fn close_cb;
    void *close_arg;
    /* --- h2c upgrade hand-off (issue 4) --- */
    mcplex_h1_upgrade_fn upgrade_cb;
    void *upgrade_arg;
    void (*upgrade_arg_free)(void *arg);
    bool detached;       /* the bufferevent went to the HTTP/2 codec: never touch it again */
    /* --- end h2c upgrade --- */
    h1_stream_t *stream; /* the request being read or answered, or NULL */
    h1_conn_state_t state;
    int error_status;    /* set by parser callbacks before they fail: the status to answer */
    unsigned busy;       /* our frames on the stack; the connection is freed when it drops to 0 */
    bool in_process;     /* h1_conn_process() is on the stack */
    bool peer_eof;       /* the peer closed its side */
    bool read_paused;    /* EV_READ is off: H1_INPUT_HIGH_WATER bytes wait behind a response */
    char peer[64];
};

/* ------------------------------------------------------------------------------------------ */
/* Prototypes                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static const http_parser_settings h1_parser_settings;
static const mcplex_http_stream_ops_t h1_stream_ops;

static void h1_conn_enter(mcplex_h1_conn_t *c);
static void h1_conn_leave(mcplex_h1_conn_t *c);
static void h1_conn_kill(mcplex_h1_conn_t *c);
static void h1_conn_drain(mcplex_h1_conn_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Socket I/O (the only code that knows it is a plain socket bufferevent)                     */
/* ------------------------------------------------------------------------------------------ */

static struct evbuffer *
h1_conn_input(mcplex_h1_conn_t *c)
{
    return bufferevent_get_input(c->bev);
}

static struct evbuffer *
h1_conn_output(mcplex_h1_conn_t *c)
{
    return bufferevent_get_output(c->bev);
}

/* Stops reading while pipelined input piles up behind a response (see H1_INPUT_HIGH_WATER). */
static void
h1_conn_read_pause(mcplex_h1_conn_t *c)
{
    if (!c->read_paused) {
        c->read_paused = true;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static void
h1_conn_read_resume(mcplex_h1_conn_t *c)
{
    if (c->read_paused) {
        c->read_paused = false;
        if (!c->peer_eof)
            bufferevent_enable(c->bev, EV_READ);
    }
}

/* Sends FIN (TLS: close_notify first) after the queued output: the peer sees the end of our last response. */
static void
h1_conn_shutdown_write(mcplex_h1_conn_t *c)
{
    if (mcplex_conn_io_shutdown_write(c->bev) != 0)
        mcplex_log_debug(H1_LOG, "%s: half-close failed", c->peer);
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void
h1_timer_add(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* Response headers the codec writes itself; the handler's copies are dropped. */
static bool
h1_header_is_framing(const mcplex_http_header_t *h)
{
    return mcplex_http_name_is(h->name, h->name_len, "content-length") ||
           mcplex_http_name_is(h->name, h->name_len, "transfer-encoding") ||
           mcplex_http_name_is(h->name, h->name_len, "connection") || mcplex_http_name_is(h->name, h->name_len, "keep-alive");
}

/* A response header we can write without breaking the framing (no CR, LF, NUL; a token name). */
static bool
h1_header_is_safe(const mcplex_http_header_t *h)
{
    if (h->name_len == 0)
        return false;
    for (size_t i = 0; i < h->name_len; i++) {
        unsigned char ch = (unsigned char)h->name[i];
        if (ch <= ' ' || ch == ':' || ch >= 0x7f)
            return false;
    }
    for (size_t i = 0; i < h->value_len; i++) {
        char ch = h->value[i];
        if (ch == '\r' || ch == '\n' || ch == '\0')
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Streams                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static h1_stream_t *
h1_stream_create(mcplex_h1_conn_t *c)
{
    h1_stream_t *s = mcplex_calloc(1, sizeof(*s));

    s->super.ops = &h1_stream_ops;
    memcpy(s->super.peer, c->peer, sizeof(s->super.peer));
    s->conn = c;
    s->state = H1_STREAM_READING;
    s->piece = H1_PIECE_URL;
    return s;
}

static void
h1_stream_free(h1_stream_t *s)
{
    free(s->raw);
    free(s->spans);
    free(s->headers);
    free(s->body);
    free(s);
}

/* Ends |s| because its connection is going away: the owner hears of it if it had the stream. */
static void
h1_stream_close(h1_stream_t *s)
{
    bool owned = s->state == H1_STREAM_HANDLING || s->state == H1_STREAM_STREAMING;

    s->state = H1_STREAM_CLOSED;
    if (owned && s->super.on_close != NULL)
        s->super.on_close(s->super.on_close_arg, &s->super);
    h1_stream_free(s);
}

/* Appends request text to |raw| (|lower|: lower-cased). The caller has checked the limits. */
static void
h1_stream_raw_append(h1_stream_t *s, const char *at, size_t len, bool lower)
{
    if (s->raw_len + len + 1 > s->raw_cap) {
        size_t cap = s->raw_cap != 0 ? s->raw_cap : 512;
        while (cap < s->raw_len + len + 1)
            cap *= 2;
        s->raw = mcplex_realloc(s->raw, cap);
        s->raw_cap = cap;
    }
    if (lower) {
        for (size_t i = 0; i < len; i++) {
            char ch = at[i];
            s->raw[s->raw_len + i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + ('a' - 'A')) : ch;
        }
    } else if (len != 0) {
        memcpy(s->raw + s->raw_len, at, len);
    }
    s->raw_len += len;
}

/* Counts |len| header bytes against the limit; on overflow sets 431 and returns -1. */
static int
h1_stream_count_header_bytes(h1_stream_t *s, size_t len)
{
    mcplex_h1_conn_t *c = s->conn;

    s->header_bytes += len;
    if (s->header_bytes > (size_t)c->limits.max_request_headers_kb * 1024) {
        c->error_status = 431;
        return -1;
    }
    return 0;
}

/* Writes the status line and headers of a response straight into the output buffer. */
static void
h1_stream_write_head(h1_stream_t *s, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs,
                     int64_t content_length)
{
    mcplex_h1_conn_t *c = s->conn;
    const char *reason = mcplex_http_status_text(status);
    const char *date = mcplex_http_date(c->base);
    bool have_date = false;
    struct evbuffer_iovec v;
    size_t need;
    char *w;

    /* Status line, Date, Content-Length, Transfer-Encoding, Connection, the blank line. */
    need = 16 + strlen(reason) + 8 + strlen(date) + 40 + 32 + 32 + 2 + 1;
    for (size_t i = 0; i < n_hdrs; i++) {
        const mcplex_http_header_t *h = &hdrs[i];
        need += h->name_len + h->value_len + 4;
        /* The handler may end the connection after this response (e.g. while draining). */
        if (mcplex_http_name_is(h->name, h->name_len, "connection") && mcplex_http_name_is(h->value, h->value_len, "close"))
            s->keep_alive = false;
    }
    /* One contiguous extent (n_vec 1); failure means out of memory, which aborts as mem.h does. */
    MCPLEX_BUG_ON(evbuffer_reserve_space(h1_conn_output(c), (ev_ssize_t)need, &v, 1) != 1);
    w = v.iov_base;

    w += sprintf(w, "HTTP/1.1 %03d %s\r\n", status, reason);
    for (size_t i = 0; i < n_hdrs; i++) {
        const mcplex_http_header_t *h = &hdrs[i];
        if (h1_header_is_framing(h))
            continue;
        if (!h1_header_is_safe(h)) {
            mcplex_log_warn(H1_LOG, "%s: dropping response header with invalid characters", c->peer);
            continue;
        }
        have_date = have_date || mcplex_http_name_is(h->name, h->name_len, "date");
        memcpy(w, h->name, h->name_len);
        w += h->name_len;
        *w++ = ':';
        *w++ = ' ';
        memcpy(w, h->value, h->value_len);
        w += h->value_len;
        *w++ = '\r';
        *w++ = '\n';
    }
    if (!have_date)
        w += sprintf(w, "Date: %s\r\n", date);
    if (content_length >= 0)
        w += sprintf(w, "Content-Length: %" PRId64 "\r\n", content_length);
    if (s->chunked)
        w += sprintf(w, "Transfer-Encoding: chunked\r\n");
    if (!s->keep_alive)
        w += sprintf(w, "Connection: close\r\n");
    else if (s->req.http_minor == 0)
        w += sprintf(w, "Connection: keep-alive\r\n");
    *w++ = '\r';
    *w++ = '\n';

    v.iov_len = (size_t)(w - (char *)v.iov_base);
    MCPLEX_BUG_ON(v.iov_len > need);
    evbuffer_commit_space(h1_conn_output(c), &v, 1);
}

/*
 * The response of |s| is complete: frees |s| and moves the connection on, to the next
 * (possibly already buffered) request or to closing.
 */
static void
h1_stream_done(h1_stream_t *s)
{
    mcplex_h1_conn_t *c = s->conn;
    bool keep_alive = s->keep_alive;

    c->stream = NULL;
    h1_stream_free(s);
    if (!keep_alive) {
        h1_conn_drain(c);
        return;
    }
    http_parser_pause(&c->parser, 0);
    h1_conn_read_resume(c);
    h1_timer_add(c->timer, c->limits.idle_timeout_ms);
    /* Inside the parse loop the loop itself goes on; otherwise come back from the event loop. */
    if (!c->in_process && evbuffer_get_length(h1_conn_input(c)) != 0)
        event_active(c->resume, EV_TIMEOUT, 1);
}

/* 1xx, 204 and 304 responses never carry a body (RFC 9112 section 6.3). */
static bool
h1_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* ------------------------------------------------------------------------------------------ */
/* Stream ops (the mcplex_http_stream_* functions land here)                                   */
/* ------------------------------------------------------------------------------------------ */

static int
h1_stream_respond(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs,
                  const void *body, size_t body_len)
{
    h1_stream_t *s = MCPLEX_CONTAINER_OF(stream, h1_stream_t, super);
    mcplex_h1_conn_t *c = s->conn;

    if (s->state != H1_STREAM_HANDLING || status < 200 || status > 999)
        return -1;
    h1_conn_enter(c);
    s->no_body = s->head || !h1_status_has_body(status);
    /* A HEAD response announces the length the GET would have had. */
    h1_stream_write_head(s, status, hdrs, n_hdrs,
                         status == 204 || status == 304 ? -1 : (int64_t)body_len);
    if (!s->no_body && body_len != 0)
        evbuffer_add(h1_conn_output(c), body, body_len);
    h1_stream_done(s);
    h1_conn_leave(c);
    return 0;
}

static int
h1_stream_start(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    h1_stream_t *s = MCPLEX_CONTAINER_OF(stream, h1_stream_t, super);
    mcplex_h1_conn_t *c = s->conn;

    if (s->state != H1_STREAM_HANDLING || status < 200 || status > 999)
        return -1;
    h1_conn_enter(c);
    s->state = H1_STREAM_STREAMING;
    s->no_body = s->head || !h1_status_has_body(status);
    if (s->req.http_minor == 0) {
        /* HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection. */
        if (!s->no_body)
            s->keep_alive = false;
    } else {
        s->chunked = h1_status_has_body(status);
    }
    h1_stream_write_head(s, status, hdrs, n_hdrs, -1);
    h1_conn_leave(c);
    return 0;
}

static int
h1_stream_write(mcplex_http_stream_t *stream, const void *data, size_t len)
{
    h1_stream_t *s = MCPLEX_CONTAINER_OF(stream, h1_stream_t, super);
    struct evbuffer *out;
    struct evbuffer_iovec v;
    char *w;

    if (s->state != H1_STREAM_STREAMING)
        return -1;
    /* An empty chunk would end the body. */
    if (len == 0 || s->no_body)
        return 0;
    out = h1_conn_output(s->conn);
    if (!s->chunked) {
        evbuffer_add(out, data, len);
        return 0;
    }
    /* Size line, data and CRLF in one contiguous reservation: one copy of |data|. */
    MCPLEX_BUG_ON(evbuffer_reserve_space(out, (ev_ssize_t)(len + 24), &v, 1) != 1);
    w = v.iov_base;
    w += sprintf(w, "%zx\r\n", len);
    memcpy(w, data, len);
    w += len;
    *w++ = '\r';
    *w++ = '\n';
    v.iov_len = (size_t)(w - (char *)v.iov_base);
    evbuffer_commit_space(out, &v, 1);
    return 0;
}

static int
h1_stream_finish(mcplex_http_stream_t *stream)
{
    h1_stream_t *s = MCPLEX_CONTAINER_OF(stream, h1_stream_t, super);
    mcplex_h1_conn_t *c = s->conn;

    if (s->state != H1_STREAM_STREAMING)
        return -1;
    h1_conn_enter(c);
    if (s->chunked && !s->no_body)
        evbuffer_add(h1_conn_output(c), "0\r\n\r\n", 5);
    h1_stream_done(s);
    h1_conn_leave(c);
    return 0;
}

static size_t
h1_stream_pending_bytes(const mcplex_http_stream_t *stream)
{
    const h1_stream_t *s = MCPLEX_CONTAINER_OF(stream, const h1_stream_t, super);

    return evbuffer_get_length(h1_conn_output(s->conn));
}

/* ------------------------------------------------------------------------------------------ */
/* http-parser callbacks: build the request in c->stream; never free anything                  */
/* ------------------------------------------------------------------------------------------ */

static int
h1_on_message_begin(http_parser *p)
{
    mcplex_h1_conn_t *c = p->data;

    MCPLEX_BUG_ON(c->stream != NULL);
    c->stream = h1_stream_create(c);
    return 0;
}

static int
h1_on_url(http_parser *p, const char *at, size_t len)
{
    h1_stream_t *s = ((mcplex_h1_conn_t *)p->data)->stream;

    if (h1_stream_count_header_bytes(s, len) != 0)
        return -1;
    h1_stream_raw_append(s, at, len, false);
    s->url_len += len;
    return 0;
}

static int
h1_on_header_field(http_parser *p, const char *at, size_t len)
{
    mcplex_h1_conn_t *c = p->data;
    h1_stream_t *s = c->stream;

    if (h1_stream_count_header_bytes(s, len) != 0)
        return -1;
    if (s->headers_done)
        return 0; /* a trailer: counted, not kept */
    if (s->piece != H1_PIECE_NAME) {
        if (s->n_spans == H1_MAX_HEADERS) {
            c->error_status = 431;
            return -1;
        }
        if (s->n_spans == s->spans_cap) {
            s->spans_cap = s->spans_cap != 0 ? s->spans_cap * 2 : 16;
            s->spans = mcplex_realloc(s->spans, s->spans_cap * sizeof(*s->spans));
        }
        h1_stream_raw_append(s, "", 1, false); /* ends the URL or the previous value */
        s->spans[s->n_spans] = (h1_span_t){.name_off = s->raw_len};
        s->n_spans++;
        s->piece = H1_PIECE_NAME;
    }
    h1_stream_raw_append(s, at, len, true);
    s->spans[s->n_spans - 1].name_len += len;
    return 0;
}

static int
h1_on_header_value(http_parser *p, const char *at, size_t len)
{
    h1_stream_t *s = ((mcplex_h1_conn_t *)p->data)->stream;

    if (h1_stream_count_header_bytes(s, len) != 0)
        return -1;
    if (s->headers_done)
        return 0;
    if (s->piece != H1_PIECE_VALUE) {
        h1_stream_raw_append(s, "", 1, false); /* ends the name */
        s->spans[s->n_spans - 1].value_off = s->raw_len;
        s->piece = H1_PIECE_VALUE;
    }
    h1_stream_raw_append(s, at, len, false);
    s->spans[s->n_spans - 1].value_len += len;
    return 0;
}

/* Appends a NUL-terminated copy of |raw[off, off+len)| to |raw|; returns the copy's offset. */
static size_t
h1_stream_raw_copy(h1_stream_t *s, size_t off, size_t len)
{
    size_t at;

    /* |raw| may move while growing: grow first, then copy from the (new) buffer. */
    if (s->raw_len + len + 1 > s->raw_cap) {
        s->raw_cap = (s->raw_len + len + 1) * 2;
        s->raw = mcplex_realloc(s->raw, s->raw_cap);
    }
    at = s->raw_len;
    memcpy(s->raw + at, s->raw + off, len);
    s->raw_len += len;
    s->raw[s->raw_len++] = '\0';
    return at;
}

/*
 * Splits the request target into path and query (NUL-terminated copies in |raw|) and takes
 * the authority from an absolute-form target. Returns 0, or -1 when the target is invalid.
 */
static int
h1_stream_parse_target(h1_stream_t *s, size_t *path_off, size_t *query_off, size_t *auth_off)
{
    struct http_parser_url u;

    *query_off = SIZE_MAX;
    *auth_off = SIZE_MAX;
    if (s->url_len == 1 && s->raw[0] == '*') {
        *path_off = 0; /* OPTIONS * */
        return 0;
    }
    if (s->url_len > UINT16_MAX) {
        s->conn->error_status = 414; /* http_parser_url offsets are 16 bits */
        return -1;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(s->raw, s->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return -1;
    *path_off = h1_stream_raw_copy(s, u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (u.field_set & (1 << UF_QUERY))
        *query_off = h1_stream_raw_copy(s, u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    if (u.field_set & (1 << UF_HOST)) {
        /* Absolute form: the target's authority wins over Host (RFC 9112 section 3.2.2). */
        size_t off = u.field_data[UF_HOST].off, len = u.field_data[UF_HOST].len;
        if (u.field_set & (1 << UF_PORT))
            len = (size_t)(u.field_data[UF_PORT].off + u.field_data[UF_PORT].len) - off;
        *auth_off = h1_stream_raw_copy(s, off, len);
    }
    return 0;
}

static int
h1_on_headers_complete(http_parser *p)
{
    mcplex_h1_conn_t *c = p->data;
    h1_stream_t *s = c->stream;
    mcplex_http_request_t *req = &s->req;
    size_t path_off, query_off, auth_off;
    const char *expect;

    s->headers_done = true;
    h1_stream_raw_append(s, "", 1, false); /* ends the last piece */
    if (p->http_major != 1) {
        /* HTTP/0.9 ("GET /" alone) is malformed for us; 2.0 and up is a version we do not speak here. */
        c->error_status = p->http_major == 0 ? 400 : 505;
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        c->error_status = 400;
        return -1;
    }
    if (h1_stream_count_header_bytes(s, strlen(http_method_str(p->method))) != 0)
        return -1;
    if (h1_stream_parse_target(s, &path_off, &query_off, &auth_off) != 0) {
        if (c->error_status == 0)
            c->error_status = 400;
        return -1;
    }

    /* |raw| is final: turn offsets into pointers. */
    s->headers = mcplex_calloc(s->n_spans, sizeof(*s->headers));
    for (size_t i = 0; i < s->n_spans; i++) {
        const h1_span_t *sp = &s->spans[i];
        s->headers[i] = (mcplex_http_header_t){
            .name = s->raw + sp->name_off,
            .name_len = sp->name_len,
            .value = s->raw + sp->value_off,
            .value_len = sp->value_len,
        };
    }
    req->method = http_method_str(p->method);
    req->path = s->raw + path_off;
    req->query = query_off != SIZE_MAX ? s->raw + query_off : NULL;
    req->headers = s->headers;
    req->n_headers = s->n_spans;
    req->authority = auth_off != SIZE_MAX ? s->raw + auth_off : mcplex_http_request_header(req, "host");
    req->body = "";
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    s->keep_alive = http_should_keep_alive(p) != 0;
    s->head = p->method == HTTP_HEAD;

    bool has_body = (p->flags & F_CHUNKED) != 0 ||
                    (p->content_length != 0 && p->content_length != ULLONG_MAX);
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX) {
        if (p->content_length > c->limits.max_request_body_bytes) {
            c->error_status = 413;
            return -1;
        }
        s->body_cap = (size_t)p->content_length + 1;
        s->body = mcplex_malloc(s->body_cap);
    }
    expect = mcplex_http_request_header(req, "expect");
    if (expect != NULL && has_body && req->http_minor >= 1 && strcasecmp(expect, "100-continue") == 0)
        evbuffer_add(h1_conn_output(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int
h1_on_body(http_parser *p, const char *at, size_t len)
{
    mcplex_h1_conn_t *c = p->data;
    h1_stream_t *s = c->stream;

    if (s->body_len + len > c->limits.max_request_body_bytes) {
        c->error_status = 413;
        return -1;
    }
    if (s->body_len + len + 1 > s->body_cap) {
        /* Chunked: grow by doubling, never past the limit (plus the NUL). */
        size_t cap = s->body_cap != 0 ? s->body_cap : 4096;
        while (cap < s->body_len + len + 1)
            cap *= 2;
        if (cap > (size_t)c->limits.max_request_body_bytes + 1)
            cap = (size_t)c->limits.max_request_body_bytes + 1;
        s->body = mcplex_realloc(s->body, cap);
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
    return 0;
}

static int
h1_on_message_complete(http_parser *p)
{
    h1_stream_t *s = ((mcplex_h1_conn_t *)p->data)->stream;

    if (s->body != NULL) {
        s->body[s->body_len] = '\0';
        s->req.body = s->body;
        s->req.body_len = s->body_len;
    }
    /* One request at a time: stop here, h1_conn_process() hands it to the handler. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings h1_parser_settings = {
    .on_message_begin = h1_on_message_begin,
    .on_url = h1_on_url,
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

/* ------------------------------------------------------------------------------------------ */
/* Connection                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void
h1_conn_destroy(mcplex_h1_conn_t *c)
{
    if (c->close_cb != NULL)
        c->close_cb(c->close_arg, c);
    if (c->upgrade_arg_free != NULL)
        c->upgrade_arg_free(c->upgrade_arg);
    MCPLEX_BUG_ON(c->stream != NULL);
    mcplex_log_trace(H1_LOG, "%s: connection closed", c->peer);
    if (!c->detached)
        mcplex_conn_io_free(c->bev);
    event_free(c->timer);
    event_free(c->resume);
    free(c);
}

/* Every entry point (libevent callback, stream op) brackets its work with enter/leave. */
static void
h1_conn_enter(mcplex_h1_conn_t *c)
{
    c->busy++;
}

/* Leaves one of our frames; the last one out frees a dead connection. */
static void
h1_conn_leave(mcplex_h1_conn_t *c)
{
    if (--c->busy == 0 && c->state == H1_CONN_DEAD)
        h1_conn_destroy(c);
}

/*
 * Closes the connection now: the active stream's owner is told, the socket stops, and the
 * connection is freed at once or, if any of our frames is on the stack, when the last leaves.
 */
static void
h1_conn_kill(mcplex_h1_conn_t *c)
{
    h1_stream_t *s = c->stream;

    if (c->state == H1_CONN_DEAD)
        return;
    c->state = H1_CONN_DEAD;
    c->stream = NULL;
    h1_conn_enter(c);
    if (s != NULL)
        h1_stream_close(s);
    if (!c->detached)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->timer);
    event_del(c->resume);
    h1_conn_leave(c);
}

/* The output is flushed: send FIN and discard input until the peer closes or time is up. */
static void
h1_conn_linger(mcplex_h1_conn_t *c)
{
    if (c->peer_eof) {
        h1_conn_kill(c);
        return;
    }
    h1_conn_shutdown_write(c);
    h1_conn_read_resume(c);
    c->state = H1_CONN_LINGERING;
    evbuffer_drain(h1_conn_input(c), evbuffer_get_length(h1_conn_input(c)));
    h1_timer_add(c->timer, H1_LINGER_MS);
}

/*
 * No more requests on this connection: finish sending what is queued, then linger and close.
 * Any request still being read is dropped.
 */
static void
h1_conn_drain(mcplex_h1_conn_t *c)
{
    if (c->state != H1_CONN_OPEN)
        return;
    if (c->stream != NULL) {
        MCPLEX_BUG_ON(c->stream->state != H1_STREAM_READING);
        h1_stream_free(c->stream);
        c->stream = NULL;
    }
    c->state = H1_CONN_DRAINING;
    /* A deadline for the flush (the write timeout also guards it); lingering sets its own. */
    h1_timer_add(c->timer, c->limits.idle_timeout_ms);
    if (evbuffer_get_length(h1_conn_output(c)) == 0)
        h1_conn_linger(c);
    /* else h1_on_write() calls h1_conn_linger() once the output is empty */
}

/* Answers a request the parser refused, then closes. */
static void
h1_conn_fail(mcplex_h1_conn_t *c, enum http_errno err)
{
    int status = c->error_status;
    const char *reason;

    if (status == 0)
        status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
    reason = mcplex_http_status_text(status);
    mcplex_log_debug(H1_LOG, "%s: bad request (%d): %s", c->peer, status, http_errno_description(err));
    if (c->stream != NULL) {
        h1_stream_free(c->stream);
        c->stream = NULL;
    }
    evbuffer_add_printf(h1_conn_output(c),
                        "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s\n",
                        status, reason, mcplex_http_date(c->base), strlen(reason) + 1, reason);
    h1_conn_drain(c);
}

/* --- h2c upgrade hand-off (issue 4) --- */

/* True when the comma-separated |list| holds |token| (case-insensitive, spaces trimmed). */
static bool
h1_list_has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);

    while (list != NULL && *list != '\0') {
        const char *end = strchr(list, ',');
        size_t len = end != NULL ? (size_t)(end - list) : strlen(list);
        while (len > 0 && (*list == ' ' || *list == '\t')) {
            list++;
            len--;
        }
        while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
            len--;
        if (len == tlen && strncasecmp(list, token, len) == 0)
            return true;
        list = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* An HTTP/1.1 request asking to switch to h2c (RFC 7540 section 3.2). */
static bool
h1_stream_wants_h2c(const h1_stream_t *s)
{
    const mcplex_http_request_t *req = &s->req;

    return req->http_major == 1 && req->http_minor == 1 &&
           h1_list_has_token(mcplex_http_request_header(req, "upgrade"), "h2c") &&
           h1_list_has_token(mcplex_http_request_header(req, "connection"), "upgrade") &&
           mcplex_http_request_header(req, "http2-settings") != NULL;
}

/*
 * Gives the bufferevent (with any bytes after the request, the client preface) and the request
 * to the upgrade callback, then ends this connection without touching the bufferevent again.
 */
static void
h1_conn_upgrade(mcplex_h1_conn_t *c)
{
    h1_stream_t *s = c->stream;
    struct bufferevent *bev = c->bev;
    const char *settings;

    evtimer_del(c->timer);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    c->detached = true;
    mcplex_log_trace(H1_LOG, "%s: %s %s: upgrading to h2c", c->peer, s->req.method, s->req.path);
    settings = mcplex_http_request_header(&s->req, "http2-settings");
    if (c->upgrade_cb(c->upgrade_arg, bev, &s->req, settings) != 0)
        mcplex_log_debug(H1_LOG, "%s: h2c upgrade failed", c->peer);
    h1_conn_kill(c); /* frees the (READING) stream; the bufferevent is the HTTP/2 codec's now */
}

void
mcplex_h1_conn_set_upgrade_cb(mcplex_h1_conn_t *conn, mcplex_h1_upgrade_fn cb, void *arg,
                              void (*arg_free)(void *arg))
{
    conn->upgrade_cb = cb;
    conn->upgrade_arg = arg;
    conn->upgrade_arg_free = arg_free;
}
/* --- end h2c upgrade --- */

/* Hands the complete request in c->stream to the handler. */
static void
h1_conn_dispatch(mcplex_h1_conn_t *c)
{
    h1_stream_t *s = c->stream;

    /* --- h2c upgrade hand-off (issue 4) --- */
    if (c->upgrade_cb != NULL && h1_stream_wants_h2c(s)) {
        h1_conn_upgrade(c);
        return;
    }
    /* --- end h2c upgrade --- */
    s->state = H1_STREAM_HANDLING;
    evtimer_del(c->timer);
    mcplex_log_trace(H1_LOG, "%s: %s %s", c->peer, s->req.method, s->req.path);
    c->handler(c->ctx, &s->super, &s->req);
    /* |s| may be gone now (answered, or the connection was closed from the handler). */
}

/*
 * Parses buffered input and dispatches requests, one at a time, for as long as no response is
 * in progress. Pipelined bytes after a request stay in the input until its response is done.
 */
static void
h1_conn_process(mcplex_h1_conn_t *c)
{
    struct evbuffer *in = h1_conn_input(c);

    if (c->in_process)
        return;
    c->in_process = true;
    while (c->state == H1_CONN_OPEN) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno err;

        if (c->stream != NULL && c->stream->state != H1_STREAM_READING)
            break; /* a response is in progress */
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = http_parser_execute(&c->parser, &h1_parser_settings, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED)
            h1_conn_dispatch(c);
        else if (err != HPE_OK || n != v.iov_len)
            h1_conn_fail(c, err);
    }
    c->in_process = false;
}

/* ------------------------------------------------------------------------------------------ */
/* libevent callbacks                                                                          */
/* ------------------------------------------------------------------------------------------ */

static void
h1_on_read(struct bufferevent *bev, void *arg)
{
    mcplex_h1_conn_t *c = arg;

    h1_conn_enter(c);
    if (c->state == H1_CONN_OPEN) {
        if (c->stream == NULL || c->stream->state == H1_STREAM_READING) {
            /* While no handler runs the idle timer also bounds a request that trickles in. */
            h1_timer_add(c->timer, c->limits.idle_timeout_ms);
            h1_conn_process(c);
        } else if (evbuffer_get_length(h1_conn_input(c)) >= H1_INPUT_HIGH_WATER) {
            h1_conn_read_pause(c);
        }
    } else {
        /* Nothing more will be answered on this connection. */
        evbuffer_drain(h1_conn_input(c), evbuffer_get_length(h1_conn_input(c)));
    }
    h1_conn_leave(c);
}

static void
h1_on_write(struct bufferevent *bev, void *arg)
{
    mcplex_h1_conn_t *c = arg;

    h1_conn_enter(c);
    if (c->state == H1_CONN_DRAINING && evbuffer_get_length(h1_conn_output(c)) == 0)
        h1_conn_linger(c);
    h1_conn_leave(c);
}

static void
h1_on_event(struct bufferevent *bev, short events, void *arg)
{
    mcplex_h1_conn_t *c = arg;
    int err = EVUTIL_SOCKET_ERROR();

    h1_conn_enter(c);
    if (events & BEV_EVENT_EOF) {
        c->peer_eof = true;
        if (c->state == H1_CONN_OPEN && c->stream != NULL && c->stream->state != H1_STREAM_READING) {
            mcplex_log_debug(H1_LOG, "%s: peer closed during a response", c->peer);
            h1_conn_kill(c);
        } else if (c->state == H1_CONN_OPEN) {
            h1_conn_drain(c); /* flushes what is queued, then closes */
        } else if (c->state == H1_CONN_LINGERING) {
            h1_conn_kill(c);
        }
        /* DRAINING: keep flushing; h1_conn_linger() sees |peer_eof| and closes. */
    } else if (events & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (events & BEV_EVENT_TIMEOUT)
            mcplex_log_debug(H1_LOG, "%s: write timeout", c->peer);
        else
            mcplex_log_debug(H1_LOG, "%s: socket error: %s", c->peer, strerror(err));
        h1_conn_kill(c);
    }
    h1_conn_leave(c);
}

static void
h1_on_timer(evutil_socket_t fd, short what, void *arg)
{
    mcplex_h1_conn_t *c = arg;

    h1_conn_enter(c);
    if (c->state == H1_CONN_OPEN && evbuffer_get_length(h1_conn_output(c)) != 0) {
        /* Still sending a finished response; the write timeout guards a peer that stopped reading. */
        h1_timer_add(c->timer, c->limits.idle_timeout_ms);
    } else {
        mcplex_log_debug(H1_LOG, "%s: %s timeout", c->peer, c->state == H1_CONN_OPEN ? "idle" : "linger");
        h1_conn_kill(c);
    }
    h1_conn_leave(c);
}

static void
h1_on_resume(evutil_socket_t fd, short what, void *arg)
{
    mcplex_h1_conn_t *c = arg;

    h1_conn_enter(c);
    if (c->state == H1_CONN_OPEN)
        h1_conn_process(c);
    h1_conn_leave(c);
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                         */
/* ------------------------------------------------------------------------------------------ */

mcplex_h1_conn_t *
mcplex_h1_conn_create(struct event_base *base, int fd, const struct sockaddr *peer,
                      const mcplex_http_limits_t *limits, mcplex_http_handler_fn handler, void *ctx)
{
    struct bufferevent *bev;
    int one = 1;

    if (fd < 0)
        return NULL;
    /* Latency over packet count: SSE events and small JSON answers go out at once. Not fatal. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        mcplex_log_error(H1_LOG, "cannot set up a connection: no bufferevent");
        close(fd);
        return NULL;
    }
    return mcplex_h1_conn_create_bev(base, bev, peer, limits, handler, ctx);
}

mcplex_h1_conn_t *
mcplex_h1_conn_create_bev(struct event_base *base, struct bufferevent *bev, const struct sockaddr *peer,
                          const mcplex_http_limits_t *limits, mcplex_http_handler_fn handler, void *ctx)
{
    mcplex_h1_conn_t *c;
    struct timeval write_timeout;

    if (bev == NULL)
        return NULL;
    c = mcplex_calloc(1, sizeof(*c));
    c->base = base;
    c->bev = bev;
    c->handler = handler;
    c->ctx = ctx;
    if (limits != NULL)
        c->limits = *limits;
    if (c->limits.max_request_headers_kb == 0)
        c->limits.max_request_headers_kb = H1_DEFAULT_MAX_HEADERS_KB;
    if (c->limits.max_request_body_bytes == 0)
        c->limits.max_request_body_bytes = MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES;
    if (c->limits.idle_timeout_ms == 0)
        c->limits.idle_timeout_ms = H1_DEFAULT_IDLE_TIMEOUT_MS;
    mcplex_conn_io_format_peer(c->peer, sizeof(c->peer), peer);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;

    c->timer = evtimer_new(base, h1_on_timer, c);
    c->resume = event_new(base, -1, 0, h1_on_resume, c);
    if (c->timer == NULL || c->resume == NULL)
        goto fail;
    bufferevent_setcb(c->bev, h1_on_read, h1_on_write, h1_on_event, c);
    write_timeout.tv_sec = c->limits.idle_timeout_ms / 1000;
    write_timeout.tv_usec = (c->limits.idle_timeout_ms % 1000) * 1000;
    bufferevent_set_timeouts(c->bev, NULL, &write_timeout);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        goto fail;
    h1_timer_add(c->timer, c->limits.idle_timeout_ms);
    /* Bytes that came with the TLS handshake (or were peeked by a codec selector) are parsed now. */
    if (evbuffer_get_length(h1_conn_input(c)) != 0)
        event_active(c->resume, EV_TIMEOUT, 1);
    mcplex_log_trace(H1_LOG, "%s: connection accepted", c->peer);
    return c;

fail:
    mcplex_log_error(H1_LOG, "%s: cannot set up the connection", c->peer);
    mcplex_conn_io_free(c->bev); /* closes the socket */
    if (c->resume != NULL)
        event_free(c->resume);
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
    return NULL;
}

void
mcplex_h1_conn_close(mcplex_h1_conn_t *conn)
{
    if (conn != NULL)
        h1_conn_kill(conn);
}

void
mcplex_h1_conn_set_close_cb(mcplex_h1_conn_t *conn, mcplex_h1_conn_close_fn cb, void *arg)
{
    conn->close_cb = cb;
    conn->close_arg = arg;
}

static const mcplex_http_stream_ops_t h1_stream_ops = {
    .respond = h1_stream_respond,
    .start = h1_stream_start,
    .write = h1_stream_write,
    .finish = h1_stream_finish,
    .pending_bytes = h1_stream_pending_bytes,
};
