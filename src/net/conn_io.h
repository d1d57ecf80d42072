/*
 * conn_io.h - the seam between transports (plain TCP, TLS) and the HTTP codecs (HTTP/1.1,
 * HTTP/2, server and client): what a codec is handed and the two calls it must use to end the
 * write direction and to free its connection. Thread: the worker that owns the connection.
 *
 * The contract. A codec always gets one `struct bufferevent *` that carries plaintext, and owns
 * it from then on:
 * - plain TCP: a socket bufferevent (bufferevent_socket_new, BEV_OPT_CLOSE_ON_FREE);
 * - TLS (src/net/tls.h): one end of a bufferevent_pair (BEV_OPT_CLOSE_ON_FREE |
 *   BEV_OPT_DEFER_CALLBACKS). The other end belongs to the TLS connection, which pumps bytes
 *   through SSL (memory BIOs) to and from the socket bufferevent it owns. The codec cannot tell
 *   the difference, except through the calls below.
 * The codec reads, writes, sets callbacks, watermarks and timeouts on it as on any bufferevent:
 * - the peer's end of stream arrives as BEV_EVENT_EOF|BEV_EVENT_READING (TLS: close_notify or
 *   TCP FIN); transport failures (TLS alerts, bad records, socket errors) as BEV_EVENT_ERROR;
 * - back-pressure holds across TLS: while the socket's output is above a high-water mark the TLS
 *   side stops taking plaintext, so the codec's output buffer grows (its pending bytes) and the
 *   write timeout set with bufferevent_set_timeouts() still fires for a peer that stopped
 *   reading; a codec that disables EV_READ stops the socket being read;
 * - bytes may already wait in the input when the codec gets the bufferevent (a request that
 *   came in the same TLS record flight as the handshake's end, or bytes a codec selector
 *   peeked): the codec must process them at start, not wait for the next read callback;
 * - bufferevent_getfd() may return -1 (TLS): never use the descriptor directly, use
 *   mcplex_conn_io_shutdown_write() for a half-close and mcplex_conn_io_free() to end.
 * Client codecs (src/upstream) get the same: the TLS end reports BEV_EVENT_CONNECTED once the
 * handshake is done (bytes written before that are held until then), and BEV_EVENT_ERROR when
 * the connect or the handshake fails.
 */
#ifndef MCPLEX_NET_CONN_IO_H
#define MCPLEX_NET_CONN_IO_H

#include <stddef.h>

struct bufferevent;
struct sockaddr;

/*
 * Half-close: ends the write direction once everything queued in |bev|'s output has been sent
 * (TLS: close_notify, then TCP FIN; plain TCP: shutdown(SHUT_WR), sent by the kernel after the
 * queued bytes; the caller waits for its output to drain first, as for any socket). Reading
 * goes on. Returns 0, or -1 if the transport is already gone (nothing to do then). Thread: the
 * owner's. Follows RFC 9293 (FIN) and RFC 8446 section 6.1 (close_notify).
 */
int mcplex_conn_io_shutdown_write(struct bufferevent *bev);

/*
 * Frees |bev| and, below it, the transport (TLS state, socket). Use it instead of
 * bufferevent_free() for every bufferevent handed over by this seam. Output not yet sent is
 * dropped (flush and half-close first for a graceful end). Safe with NULL. Thread: the owner's.
 */
void mcplex_conn_io_free(struct bufferevent *bev);

/*
 * Formats |sa| as "1.2.3.4:5", "[::1]:5", "unix" or "unknown" into |out| (|out_len| bytes,
 * always NUL-terminated): the peer text the codecs log and put in mcplex_http_stream.peer.
 */
void mcplex_conn_io_format_peer(char *out, size_t out_len, const struct sockaddr *sa);

#endif
