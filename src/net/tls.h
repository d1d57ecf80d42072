/*
 * tls.h - TLS for downstream and upstream connections, written once against the API subset
 * that OpenSSL 3 and BoringSSL share (the default build links OpenSSL 3; the BoringSSL build of
 * the unit test keeps that promise true). TLS runs over a plain socket bufferevent with two
 * memory BIOs, never bufferevent_openssl (research/deps-spike.md section 1), and hands the
 * codec a plaintext bufferevent as src/net/conn_io.h describes.
 *
 * Contexts follow Envoy's envoy.extensions.transport_sockets.tls.v3 DownstreamTlsContext and
 * UpstreamTlsContext (flattened into mcplex_tls_context_t by the config translators).
 * Handshakes follow RFC 8446 (TLS 1.3) / RFC 5246 (TLS 1.2), ALPN RFC 7301, SNI RFC 6066
 * section 3; upstream name checks follow RFC 6125 (through X509_VERIFY_PARAM).
 *
 * Thread: a context may be shared by the connections of one worker (its refcount is atomic, so
 * a context may also be handed between threads); a connection lives on the worker whose
 * event_base it was started on.
 */
#ifndef MCPLEX_NET_TLS_H
#define MCPLEX_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config/model.h"

struct bufferevent;
struct event_base;
struct sockaddr;

typedef struct mcplex_tls_ctx mcplex_tls_ctx_t;

/* The name of the TLS library linked in ("OpenSSL 3.0.x ..." or "BoringSSL"), for logs. */
const char *mcplex_tls_library(void);

/*
 * Builds a server context from a DownstreamTlsContext |cfg| (copied; not kept): the first of
 * tls_certificates (chain and key as PEM from a file or inline), trusted_ca (client
 * certificates are then requested, and required with require_client_certificate),
 * alpn_protocols (or |default_alpn| of |n_default_alpn| entries when the list is empty, e.g.
 * "h2","http/1.1" for codec_type AUTO), tls_params min/max versions (AUTO: 1.2 to 1.3).
 * ALPN selection uses the server's order of preference; no overlap means no ALPN (Envoy).
 * Returns a context with one reference, or NULL with a message in |err| (|err_len| bytes).
 */
mcplex_tls_ctx_t *mcplex_tls_ctx_new_server(const mcplex_tls_context_t *cfg, const char *const *default_alpn,
                                            size_t n_default_alpn, char *err, size_t err_len);

/*
 * Reads a DataSource (a file, or inline data) into a new NUL-terminated buffer that the caller
 * frees; |*out_len| is its length in bytes. |what| names it in errors. Returns 0, or -1 with
 * |err| set (no file or data, unreadable, over 4 MiB). Any thread.
 */
int mcplex_tls_data_read(const mcplex_data_source_t *d, const char *what, char **out, size_t *out_len, char *err,
                         size_t err_len);

/*
 * Builds a client context from an UpstreamTlsContext |cfg| (NULL: all defaults): trusted_ca,
 * else the system roots; insecure turns validation off; tls_certificates[0] is sent as the
 * client certificate when present; alpn_protocols are offered; sni is the default server name.
 * Returns a context with one reference, or NULL with a message in |err|.
 */
mcplex_tls_ctx_t *mcplex_tls_ctx_new_client(const mcplex_tls_context_t *cfg, char *err, size_t err_len);

/* Takes / drops a reference. The last unref frees the context. NULL is ignored. Thread: any. */
mcplex_tls_ctx_t *mcplex_tls_ctx_ref(mcplex_tls_ctx_t *ctx);
void mcplex_tls_ctx_unref(mcplex_tls_ctx_t *ctx);

/*
 * Server side: picks the context for a handshake from the SNI |server_name| (NULL when the
 * client sent none; called once with NULL when the connection starts, then again if the
 * ClientHello carries a name) and stores the caller's tag for it (e.g. the filter chain index)
 * in |*tag|. Returns a borrowed context, or NULL to refuse (the handshake fails with
 * unrecognized_name). For the first call (NULL name) it may return a provisional context with
 * |*tag| = MCPLEX_TLS_TAG_NONE: it reads the ClientHello, and a client that sends no SNI is
 * then refused (unrecognized_name).
 */
#define MCPLEX_TLS_TAG_NONE SIZE_MAX
typedef mcplex_tls_ctx_t *(*mcplex_tls_select_fn)(void *arg, const char *server_name, size_t *tag);

/* What the handshake settled, valid during the ready callback only. */
typedef struct mcplex_tls_info {
    const char *alpn;        /* "h2", "http/1.1", ... or NULL */
    const char *server_name; /* SNI, or NULL */
    const char *version;     /* "TLSv1.3", ... */
    size_t tag;              /* from the select callback of the context that served */
} mcplex_tls_info_t;

/*
 * Server side: the handshake is done. |plaintext| is the codec end (conn_io.h; the callee owns
 * it and ends it with mcplex_conn_io_free()). |peer| is the client's address.
 */
typedef void (*mcplex_tls_ready_fn)(void *arg, struct bufferevent *plaintext, const struct sockaddr *peer,
                                    const mcplex_tls_info_t *info);

/*
 * Starts the server side of TLS on |sock|, a connected socket bufferevent whose ownership
 * passes here (bytes already in its input, e.g. a peeked ClientHello, are used first; its
 * callbacks are replaced). |peer| is copied. |select| (with |select_arg|) picks the context by
 * SNI; |ready| (with |ready_arg|) gets the plaintext end once the handshake is done. A failed
 * handshake, a peer that sends no valid ClientHello, or no finished handshake within
 * |handshake_timeout_ms| (0: 10000) closes the connection with one log line; |ready| is then
 * never called. |select_arg| and |ready_arg| must outlive the handshake. Returns 0, or -1 when
 * nothing could be started (|sock| freed).
 */
int mcplex_tls_server_start(struct event_base *base, struct bufferevent *sock, const struct sockaddr *peer,
                            mcplex_tls_select_fn select, void *select_arg, mcplex_tls_ready_fn ready,
                            void *ready_arg, uint32_t handshake_timeout_ms);

/*
 * Client side: wraps |sock| (a socket bufferevent, connecting or, with |connected| non-zero,
 * connected; ownership passes here, its callbacks are replaced) in TLS with |ctx| (a reference
 * is taken). |server_name| is sent as SNI and the server certificate must match it (DNS name or
 * IP literal) unless the context is insecure; NULL uses the context's sni (and then no SNI and no
 * name check if that is empty too). Returns the plaintext end for the client codec: bytes
 * written to it are held until the handshake is done, BEV_EVENT_CONNECTED arrives on it then,
 * BEV_EVENT_ERROR if the connect or the handshake fails (logged with the reason). Returns NULL
 * (|sock| freed) when nothing could be set up.
 */
struct bufferevent *mcplex_tls_client_wrap(struct event_base *base, struct bufferevent *sock, int connected,
                                           mcplex_tls_ctx_t *ctx, const char *server_name,
                                           uint32_t handshake_timeout_ms);

/*
 * Matches a TLS server name against a filter chain's server_names entry (Envoy's
 * FilterChainMatch.server_names): exact (case-insensitive), or "*.example.com" matching any name
 * with one or more labels before ".example.com". Returns 0 for no match, else the length of the
 * matched suffix + 1 for wildcards and SIZE_MAX for an exact match, so larger is more specific.
 */
size_t mcplex_tls_server_name_match(const char *pattern, const char *server_name);

#endif
