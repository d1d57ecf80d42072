/*
 * h1_server.h - HTTP/1.1 server connections (http-parser): keep-alive, pipelining (requests
 * are handled one at a time in arrival order; later pipelined requests wait in the input
 * buffer), chunked and Content-Length request bodies, and streaming (chunked) responses.
 * Thread: the worker that accepted the connection.
 */
#ifndef MCPLEX_HTTP_H1_SERVER_H
#define MCPLEX_HTTP_H1_SERVER_H

#include "http/http.h"

struct bufferevent;
struct event_base;
struct sockaddr;

typedef struct mcplex_h1_conn mcplex_h1_conn_t;

/*
 * Behaviour, for the handler's side:
 * - Keep-alive is the HTTP/1.1 default; HTTP/1.0 keeps the connection only with "Connection:
 *   keep-alive". A request with "Connection: close", or a response whose headers include
 *   "Connection: close", ends the connection after that response.
 * - The codec owns the framing headers: Content-Length, Transfer-Encoding, Connection and
 *   Keep-Alive given by the handler are dropped (Connection: close is honoured as above); Date is
 *   added unless given. Headers containing CR, LF or NUL are dropped with a warning.
 * - HEAD responses and 204/304 carry no body (respond() still announces the body's length for
 *   HEAD). start() uses chunked encoding, or for an HTTP/1.0 client no length and a close at
 *   finish(). Status codes outside 200..999 are refused (-1).
 * - "Expect: 100-continue" on a request with a body is answered with 100 Continue before the
 *   body is read (after the earlier pipelined requests were answered).
 * - Header limit: URL, method, names and values (trailers included) count against
 *   max_request_headers_kb, at most 100 headers (Envoy's max_headers_count); http-parser's
 *   own 80 KiB ceiling also applies.
 * - The idle timeout runs whenever no handler holds a request (between requests and while one
 *   arrives; re-armed on every read); a response being sent to a peer that stops reading is
 *   bounded by the same duration as a write timeout.
 * - The peer closing its side (even a half-close) while a handler holds the stream fires the
 *   stream's close callback.
 * - The process must ignore SIGPIPE (writes use plain send/writev).
 */

/*
 * Takes ownership of the connected socket |fd| (closed when the connection ends) and starts
 * reading. Each complete request is passed to |handler|(|ctx|, ...). |limits| is copied.
 * Errors: malformed requests get 400, oversized headers 431, oversized bodies 413, unsupported
 * methods/versions 400/505; the connection is then closed. Returns NULL only if the socket
 * could not be set up (fd closed).
 */
mcplex_h1_conn_t *mcplex_h1_conn_create(struct event_base *base, int fd, const struct sockaddr *peer,
                                        const mcplex_http_limits_t *limits, mcplex_http_handler_fn handler,
                                        void *ctx);

/*
 * Like mcplex_h1_conn_create(), over |bev|, a plaintext bufferevent of the src/net/conn_io.h seam
 * (socket or TLS codec end), whose ownership passes to the connection (ended with
 * mcplex_conn_io_free()). Bytes already in |bev|'s input are parsed first (from the event
 * loop, not inside this call). Returns NULL (|bev| freed) if the connection could not be set up.
 */
mcplex_h1_conn_t *mcplex_h1_conn_create_bev(struct event_base *base, struct bufferevent *bev,
                                            const struct sockaddr *peer, const mcplex_http_limits_t *limits,
                                            mcplex_http_handler_fn handler, void *ctx);

/*
 * Closes the connection at once (no flush); an active stream's close callback fires. Safe from
 * inside any callback of this connection (handler, stream close callback): the memory is then
 * freed when that callback returns. A no-op on a connection that is already closing.
 */
void mcplex_h1_conn_close(mcplex_h1_conn_t *conn);

/*
 * Registers |cb|, called exactly once just before the connection is freed, whatever the reason
 * (peer closed, timeout, error, mcplex_h1_conn_close()), so an owner that tracks its connections
 * (for shutdown or stats) can forget it. Inside |cb| the connection may not be used any more.
 */
typedef void (*mcplex_h1_conn_close_fn)(void *arg, mcplex_h1_conn_t *conn);
void mcplex_h1_conn_set_close_cb(mcplex_h1_conn_t *conn, mcplex_h1_conn_close_fn cb, void *arg);

/*
 * --- h2c upgrade hand-off (issue 4) ---
 * With an upgrade callback set, an HTTP/1.1 request carrying `Upgrade: h2c` (token), `Connection:
 * upgrade` (token) and an HTTP2-Settings header (RFC 7540 section 3.2) is not given to the handler:
 * |cb|(|arg|, bev, req, http2_settings) gets the connection's bufferevent (callbacks and timeouts
 * cleared; bytes after the request, the client preface, still in its input; ownership passes to
 * |cb|, which frees it on failure), and the complete request (valid during the call only). |cb|
 * answers 101 and goes on in HTTP/2; it returns 0, or -1 if it could not (the connection is gone
 * either way). The h1 connection then ends at once, without touching the bufferevent. Requests
 * without these headers are served as usual. |arg_free| (may be NULL) is called with |arg| when
 * the connection is freed. Not set: `Upgrade` is ignored, as before.
 */
typedef int (*mcplex_h1_upgrade_fn)(void *arg, struct bufferevent *bev, const mcplex_http_request_t *req,
                                    const char *http2_settings);
void mcplex_h1_conn_set_upgrade_cb(mcplex_h1_conn_t *conn, mcplex_h1_upgrade_fn cb, void *arg,
                                   void (*arg_free)(void *arg));
/* --- end h2c upgrade --- */

#endif
