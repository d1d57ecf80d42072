/*
 * http.h - the one stream API between the HTTP codecs and everything above them (HCM, router,
 * MCP endpoints). HTTP/1.1 implements it today (h1_server.c); HTTP/2 (nghttp2) will implement
 * the same functions through the ops table, so the MCP layer never knows which codec it has.
 *
 * A stream is one request/response exchange on a downstream connection. It is created by the
 * codec, handed to the request handler once the request (headers and the whole body, up to the
 * configured limit) has arrived, and lives until the response is finished or the peer goes
 * away. Thread: the worker thread that owns the connection; nothing here is thread-safe.
 */
#ifndef MCPLEX_HTTP_HTTP_H
#define MCPLEX_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* One header. In requests the codec lower-cases |name|; strings are not NUL-terminated
 * beyond |*_len| in general, but the codec NUL-terminates both for convenience. */
typedef struct mcplex_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} mcplex_http_header_t;

/* A complete request as the handler sees it. Owned by the stream; valid until the stream
 * ends (finish, or the close callback). */
typedef struct mcplex_http_request {
    const char *method;    /* "GET", "POST", "DELETE", "OPTIONS", ... */
    const char *path;      /* path part of the request target, e.g. "/mcp" */
    const char *query;     /* query string without '?', or NULL */
    const char *authority; /* Host header (HTTP/1.1) or :authority (HTTP/2), or NULL */
    const mcplex_http_header_t *headers; /* names lower-cased */
    size_t n_headers;
    const char *body;      /* the whole body, NUL-terminated for convenience */
    size_t body_len;
    int http_major, http_minor; /* 1.1, 1.0, or 2.0 */
} mcplex_http_request_t;

typedef struct mcplex_http_stream mcplex_http_stream_t;

/* Returns the first header named |lname| (lower-case) or NULL. */
const char *mcplex_http_request_header(const mcplex_http_request_t *req, const char *lname);

/*
 * Called by the codec once per request, when headers and body are complete. The handler must
 * eventually answer with mcplex_http_stream_respond() or start/write/finish, unless the close
 * callback fires first. |ctx| is the value given to the codec at connection creation.
 */
typedef void (*mcplex_http_handler_fn)(void *ctx, mcplex_http_stream_t *stream,
                                       const mcplex_http_request_t *req);

/*
 * Sends a complete response: status line, |hdrs| (the codec adds Content-Length, Date and
 * Connection as needed) and |body| (copied). The stream is finished and freed on return:
 * the caller must drop its pointer. Returns 0, or -1 if the stream was already answered.
 */
int mcplex_http_stream_respond(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs,
                               size_t n_hdrs, const void *body, size_t body_len);

/*
 * Starts a streaming response (HTTP/1.1: chunked transfer encoding; used for SSE). Follow with
 * any number of mcplex_http_stream_write() and one mcplex_http_stream_finish().
 * Returns 0, or -1 if the response was already started.
 */
int mcplex_http_stream_start(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs,
                             size_t n_hdrs);
/* Queues |len| bytes of body (copied). Returns 0, or -1 if not started or already finished. */
int mcplex_http_stream_write(mcplex_http_stream_t *stream, const void *data, size_t len);
/* Ends a streaming response. The stream is freed on return; drop the pointer. */
int mcplex_http_stream_finish(mcplex_http_stream_t *stream);

/*
 * Registers |cb|, called once if the downstream connection closes (peer reset, protocol
 * error, shutdown) before the response is finished. After |cb| returns the stream is freed;
 * the owner must not touch it again. Passing NULL clears the callback.
 */
typedef void (*mcplex_http_stream_close_fn)(void *arg, mcplex_http_stream_t *stream);
void mcplex_http_stream_set_close_cb(mcplex_http_stream_t *stream, mcplex_http_stream_close_fn cb, void *arg);

/* Bytes queued towards the peer and not yet written to the socket (back-pressure signal). */
size_t mcplex_http_stream_pending_bytes(const mcplex_http_stream_t *stream);

/* A short text naming the peer ("127.0.0.1:53122") for logs; static per stream. */
const char *mcplex_http_stream_peer(const mcplex_http_stream_t *stream);

/* Reason phrase for |status| ("OK", "Not Found", ...). */
const char *mcplex_http_status_text(int status);

/*
 * The codec side of a stream: each codec fills this table. Callers use the functions above,
 * which dispatch through it.
 */
typedef struct mcplex_http_stream_ops {
    int (*respond)(mcplex_http_stream_t *s, int status, const mcplex_http_header_t *h, size_t n, const void *b,
                   size_t len);
    int (*start)(mcplex_http_stream_t *s, int status, const mcplex_http_header_t *h, size_t n);
    int (*write)(mcplex_http_stream_t *s, const void *data, size_t len);
    int (*finish)(mcplex_http_stream_t *s);
    size_t (*pending_bytes)(const mcplex_http_stream_t *s);
} mcplex_http_stream_ops_t;

/*
 * An observer of a stream's response (issue 7: stats and access logs), set by the HCM with
 * mcplex_http_stream_observe(). |on_complete| is called once, from the dispatchers in http.c,
 * just before the codec finishes the response (respond(), or finish() after start()): |status|
 * the status sent, |body_bytes| the body bytes queued, |started_us| the CLOCK_MONOTONIC time in
 * microseconds at which observing began. A stream reset before its response never completes.
 */
typedef void (*mcplex_http_complete_fn)(void *arg, mcplex_http_stream_t *stream, int status,
                                        uint64_t body_bytes, uint64_t started_us);

/* Common head of every codec's stream struct (first member). */
struct mcplex_http_stream {
    const mcplex_http_stream_ops_t *ops;
    mcplex_http_stream_close_fn on_close;
    void *on_close_arg;
    char peer[64];
    /* --- response observer (issue 7); zero unless mcplex_http_stream_observe() was called --- */
    mcplex_http_complete_fn on_complete;
    void *on_complete_arg;
    const mcplex_http_request_t *observed_req; /* the stream's own request, for access logs */
    uint64_t started_us;
    int resp_status;
    uint64_t resp_bytes;
    int exchange_logged; /* the MCP layer logged this request as a JSON-RPC exchange */
};

/*
 * Calls |fn|(|arg|, ...) when the response of |stream| completes (see mcplex_http_complete_fn);
 * |req| is the stream's request (kept for the observer; owned by the stream). Records the start
 * time now. Thread: the stream's worker.
 */
void mcplex_http_stream_observe(mcplex_http_stream_t *stream, const mcplex_http_request_t *req,
                                mcplex_http_complete_fn fn, void *arg);
/* Whether header name |name| (|len| bytes) is |lname| (lower case), ignoring case. Any thread. */
bool mcplex_http_name_is(const char *name, size_t len, const char *lname);
/*
 * The Date header value (IMF-fixdate, RFC 9110 section 5.6.7) for |base|'s cached time,
 * formatted at most once a second per thread. Returns a thread-local string, valid until the
 * next call on this thread. Thread: |base|'s loop.
 */
struct event_base;
const char *mcplex_http_date(struct event_base *base);
/* Microseconds of CLOCK_MONOTONIC. */
uint64_t mcplex_http_now_us(void);

/* The request body limit when the config sets none (bytes): Envoy's default buffer limit is 1 MiB;
 * ours is 4 MiB, as MCP tools/call arguments can be large. */
#define MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES (4u * 1024 * 1024)

/* Limits applied by the server codecs (from HCM config; 0 = the default). */
typedef struct mcplex_http_limits {
    uint32_t max_request_headers_kb; /* default 60 (Envoy's default) */
    uint32_t max_request_body_bytes; /* the route configuration's largest; default MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES */
    uint32_t idle_timeout_ms;        /* keep-alive idle timeout; default 60000 */
} mcplex_http_limits_t;

#endif
