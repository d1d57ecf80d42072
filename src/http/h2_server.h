/*
 * h2_server.h - HTTP/2 server connections (RFC 9113) with nghttp2 1.52 (the ssize_t API), behind
 * the one stream API of http.h: the handler cannot tell an HTTP/2 stream from an HTTP/1.1 one.
 * Thread: the worker that accepted the connection; nothing here is thread-safe.
 *
 * Behaviour, for the handler's side:
 * - Each stream is handed to the handler once its request is complete (END_STREAM). Pseudo
 *   headers become req->method/path/query/authority (":authority", else "host"); the other
 *   headers arrive lower-cased (HTTP/2 requires it) in arrival order. http_major/minor are 2/0.
 * - respond() sends HEADERS (+ content-length, date) and the body through a data provider;
 *   start() sends HEADERS, each write() queues DATA (resumed from NGHTTP2_ERR_DEFERRED), and
 *   finish() sends END_STREAM. Connection-specific response headers (connection, keep-alive,
 *   transfer-encoding, upgrade, proxy-connection) are dropped; names are lower-cased.
 * - Flow control: nghttp2 honours the peer's windows. Bytes a stream queued and the peer has not
 *   taken yet are its pending_bytes(); write() beyond max_stream_queued_bytes resets the stream
 *   (RST_STREAM INTERNAL_ERROR), returns -1, and the close callback fires later. While the
 *   socket's output holds more than a high-water mark the send callback returns
 *   NGHTTP2_ERR_WOULDBLOCK and the socket is not read, so a peer that stops reading cannot make
 *   mcplex buffer without bound.
 * - Limits: SETTINGS_MAX_CONCURRENT_STREAMS (enforced by nghttp2: an excess stream before the
 *   client acknowledged the SETTINGS gets RST_STREAM REFUSED_STREAM, after it GOAWAY
 *   PROTOCOL_ERROR), SETTINGS_MAX_HEADER_LIST_SIZE = max_request_headers_kb (a larger header list gets
 *   431; names and values counted as Envoy does), at most 100 headers (431), request bodies over
 *   max_request_body_bytes (the route configuration's largest body limit) get 413. An early answer ends with RST_STREAM(NO_ERROR) if the client
 *   is still sending (RFC 9113 section 8.1).
 * - The close callback of a stream fires (from the event loop, never inside nghttp2) when the
 *   peer resets it or the connection dies before the response was finished.
 * - An idle connection (no open stream) is closed with GOAWAY after limits.idle_timeout_ms.
 */
#ifndef MCPLEX_HTTP_H2_SERVER_H
#define MCPLEX_HTTP_H2_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct bufferevent;
struct event_base;

typedef struct mcplex_h2_conn mcplex_h2_conn_t;

/*
 * HTTP/2 settings of a server connection (Envoy's config.core.v3.Http2ProtocolOptions and the
 * HCM's drain_timeout). 0 means the default given.
 */
typedef struct mcplex_h2_settings {
    uint32_t max_concurrent_streams;         /* default 100 */
    uint32_t initial_stream_window_size;     /* bytes, default 1 MiB (65535..2^31-1) */
    uint32_t initial_connection_window_size; /* bytes, default 4 MiB (65535..2^31-1) */
    uint32_t max_stream_queued_bytes;        /* response bytes one stream may queue; default 1 MiB */
    uint32_t drain_timeout_ms;               /* GOAWAY to close on drain; default 5000 */
} mcplex_h2_settings_t;

/*
 * Starts an HTTP/2 server connection on |bev|, whose ownership passes to the connection (freed
 * when it ends, with BEV_OPT_CLOSE_ON_FREE closing the socket). Bytes already in |bev|'s input
 * (peeked by the codec selector) are processed first: they must start with the client
 * connection preface. |peer| is a short text for logs ("127.0.0.1:5000"), copied. |limits| and
 * |settings| are copied (NULL: defaults). Each complete request goes to |handler|(|ctx|, ...).
 * Sends the server's SETTINGS at once. Returns NULL if the session could not be set up (then
 * |bev| is freed).
 */
mcplex_h2_conn_t *mcplex_h2_conn_create(struct event_base *base, struct bufferevent *bev, const char *peer,
                                        const mcplex_http_limits_t *limits,
                                        const mcplex_h2_settings_t *settings, mcplex_http_handler_fn handler,
                                        void *ctx);

/*
 * HTTP/1.1 `Upgrade: h2c` (RFC 7540 section 3.2): like mcplex_h2_conn_create(), but first writes
 * "101 Switching Protocols" to |bev|, applies the client's |http2_settings| (the base64url
 * HTTP2-Settings header value, |settings_len| bytes) with nghttp2_session_upgrade2(), and makes
 * |upgrade_req| (copied: method, path, query, authority, headers, body) stream 1, handed to
 * |handler| at once. The client preface must follow in |bev|'s input. Returns NULL (|bev| freed)
 * if the settings do not decode or the session could not be set up.
 */
mcplex_h2_conn_t *mcplex_h2_conn_create_upgraded(struct event_base *base, struct bufferevent *bev,
                                                 const char *peer, const mcplex_http_limits_t *limits,
                                                 const mcplex_h2_settings_t *settings,
                                                 const char *http2_settings, size_t settings_len,
                                                 const mcplex_http_request_t *upgrade_req,
                                                 mcplex_http_handler_fn handler, void *ctx);

/*
 * Graceful close (Envoy's drain): sends GOAWAY(NO_ERROR) naming the last stream processed, so the
 * peer opens no new streams, lets open streams finish, and closes the connection when none is
 * left or after the drain timeout (then open streams are reset and their close callbacks
 * fire). A no-op on a connection already draining or closing.
 */
void mcplex_h2_conn_drain(mcplex_h2_conn_t *conn);

/*
 * Drains every HTTP/2 connection of the calling thread (see mcplex_h2_conn_drain()); used on
 * SIGTERM. Returns the number of connections still open (draining or not).
 */
size_t mcplex_h2_drain_all(void);

/* The number of HTTP/2 connections of the calling thread still open. */
size_t mcplex_h2_conn_count(void);

/*
 * Closes the connection at once (GOAWAY attempted, no flush wait); open streams' close callbacks
 * fire. Safe from inside any callback of this connection: memory is freed when it returns.
 */
void mcplex_h2_conn_close(mcplex_h2_conn_t *conn);

/*
 * Registers |cb|, called exactly once just before the connection is freed, whatever the reason.
 * Inside |cb| the connection may not be used any more.
 */
typedef void (*mcplex_h2_conn_close_fn)(void *arg, mcplex_h2_conn_t *conn);
void mcplex_h2_conn_set_close_cb(mcplex_h2_conn_t *conn, mcplex_h2_conn_close_fn cb, void *arg);

#endif
