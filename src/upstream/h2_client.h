/*
 * h2_client.h - one HTTP/2 client connection to an upstream endpoint (RFC 9113, nghttp2 1.52
 * ssize_t API), multiplexing many requests as streams. Used by the pool of http_client.c when a
 * cluster asks for HTTP/2 (Envoy's HttpProtocolOptions explicit_http_config.http2_protocol_options):
 * prior knowledge over plain TCP (h2c). Thread: the worker that created it; nothing is locked.
 */
#ifndef MCPLEX_UPSTREAM_H2_CLIENT_H
#define MCPLEX_UPSTREAM_H2_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "upstream/http_client.h"

struct bufferevent;
struct event_base;

typedef struct mcplex_h2_client mcplex_h2_client_t;
typedef struct mcplex_h2_client_stream mcplex_h2_client_stream_t;

/*
 * Takes ownership of |bev| (a socket bufferevent that is connecting or connected; freed with
 * mcplex_conn_io_free()) and starts an HTTP/2 session on it: the client preface and SETTINGS
 * are queued at once and sent when the connection is up. |label| names it in logs (copied).
 * The connect must complete within |connect_timeout_ms| (0: 5000). Never NULL (aborts on OOM).
 */
mcplex_h2_client_t *mcplex_h2_client_create(struct event_base *base, struct bufferevent *bev,
                                            const char *label, uint32_t connect_timeout_ms);

/*
 * True while new streams may be opened: not closed, no GOAWAY received, and fewer open streams
 * than the server's SETTINGS_MAX_CONCURRENT_STREAMS.
 */
bool mcplex_h2_client_usable(const mcplex_h2_client_t *c);

/* True once the connection is gone (error, GOAWAY with no stream left, close): drop it. */
bool mcplex_h2_client_dead(const mcplex_h2_client_t *c);

/*
 * Opens a stream: |method| |path| with ":scheme" http, ":authority" |authority|, the headers
 * |hdrs| (names lower-cased; connection-specific ones and host dropped) and |body| (copied;
 * NULL: none; content-length added). |cbs| as in http_client.h: exactly one of on_complete or
 * on_error ends the stream, called from the event loop (never inside this call); after it the
 * stream handle is invalid. Returns the handle, or NULL if the connection cannot take a stream.
 */
mcplex_h2_client_stream_t *mcplex_h2_client_request(mcplex_h2_client_t *c, const char *method,
                                                    const char *path, const char *authority,
                                                    const mcplex_http_header_t *hdrs, size_t n_hdrs,
                                                    const void *body, size_t body_len,
                                                    const mcplex_http_client_cbs_t *cbs, void *arg);

/* Resets the stream (RST_STREAM CANCEL): no further callbacks. The handle is invalid after. */
void mcplex_h2_client_cancel(mcplex_h2_client_stream_t *s);

/*
 * Closes the connection: every open stream ends with on_error(|reason|) unless |reason| is NULL
 * (then silently). The memory is freed once no callback of the connection is on the stack; the
 * caller must drop its pointer.
 */
void mcplex_h2_client_close(mcplex_h2_client_t *c, const char *reason);

#endif
