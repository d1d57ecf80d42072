/*
 * codec.h - starts the server codec of a downstream connection: HTTP/1.1 or HTTP/2, picked by
 * the ALPN the TLS handshake negotiated, the HTTP/2 client preface (h2c with prior knowledge),
 * an HTTP/1.1 `Upgrade: h2c`, and the HCM's codec_type (Envoy's
 * HttpConnectionManager.codec_type: AUTO, HTTP1, HTTP2). Thread: the worker that accepted the
 * connection.
 */
#ifndef MCPLEX_HTTP_CODEC_H
#define MCPLEX_HTTP_CODEC_H

#include "config/model.h"
#include "http/http.h"

struct bufferevent;
struct event_base;
struct sockaddr;

/*
 * Starts serving HTTP on |plaintext| (a bufferevent of the src/net/conn_io.h seam: a socket
 * bufferevent, or the codec end of a TLS connection; its ownership passes to the codec, which
 * ends it with mcplex_conn_io_free()). |peer| is the client's address (copied, for logs; may be
 * NULL). |alpn| is the protocol the TLS handshake negotiated ("h2", "http/1.1"), or NULL for
 * plain TCP or no ALPN. |hcm| gives codec_type and the limits (max_request_headers_kb,
 * stream_idle_timeout_ms, ...); what the codec needs is copied, |hcm| is not kept. Every
 * complete request goes to |handler|(|ctx|, ...). On failure the bufferevent is freed and the
 * error logged; there is no return value because the caller has nothing left to do either way.
 */
void mcplex_http_codec_start(struct event_base *base, struct bufferevent *plaintext,
                             const struct sockaddr *peer, const char *alpn, const mcplex_hcm_t *hcm,
                             mcplex_http_handler_fn handler, void *ctx);

/*
 * Like mcplex_http_codec_start(), and |on_h1|(|on_h1_arg|, conn) (may be NULL) is called with each
 * HTTP/1.1 connection it starts (at once, or once the first bytes showed no HTTP/2 preface), so
 * the owner can track it (stats: mcplex_h1_conn_set_close_cb). Not called for HTTP/2.
 */
struct mcplex_h1_conn;
typedef void (*mcplex_http_codec_h1_fn)(void *arg, struct mcplex_h1_conn *conn);
void mcplex_http_codec_start_ex(struct event_base *base, struct bufferevent *plaintext,
                                const struct sockaddr *peer, const char *alpn, const mcplex_hcm_t *hcm,
                                mcplex_http_handler_fn handler, void *ctx, mcplex_http_codec_h1_fn on_h1,
                                void *on_h1_arg);

#endif
