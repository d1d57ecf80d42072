/*
 * listener_chains.h - the accept path of listeners with TLS or more than one filter chain
 * (Envoy's listener.v3.FilterChain / FilterChainMatch): picks the filter chain of each
 * connection (by TLS or not, then SNI), runs the TLS handshake with that chain's
 * DownstreamTlsContext, and starts the chain's HCM codec with the negotiated ALPN.
 * Thread: the worker that owns the listener.
 */
#ifndef MCPLEX_EVENT_LISTENER_CHAINS_H
#define MCPLEX_EVENT_LISTENER_CHAINS_H

#include "config/model.h"
#include "event/worker.h"
#include "http/codec.h"

struct sockaddr;

/* A listener's TLS contexts and per-chain handler contexts (owned by its mcplex_listener_ctx_t). */
typedef struct mcplex_listener_chains mcplex_listener_chains_t;

/* Does |l| need this accept path (a TLS chain, or more than one chain)? */
int mcplex_listener_chains_needed(const mcplex_listener_cfg_t *l);

/*
 * Picks the filter chain of |l| for a connection, in Envoy's order for the match fields mcplex
 * supports: the transport (|tls|: a TLS chain, else a plaintext one; a chain's transport_protocol
 * must agree), then server_names against |server_name| (the SNI, or NULL): an exact name, else
 * the longest matching "*." wildcard, else a chain without server_names; failing all, the
 * default_filter_chain if its transport fits. Returns the chain index, or -1 for none.
 */
int mcplex_filter_chain_select(const mcplex_listener_cfg_t *l, const char *server_name, int tls);

/*
 * Serves the accepted socket |fd| (owned from here) of listener |lctx|, whose config is |l|:
 * plaintext-only listeners start the codec of the chosen chain at once; TLS-only listeners
 * start the TLS handshake (SNI picks the chain and its certificate); listeners with both peek
 * at the first byte (a TLS handshake record, 0x16, means TLS: Envoy's tls_inspector). The
 * codec's handler is mcplex_hcm_handle with a listener context whose |filter_chain| is the
 * chain's index. |on_h1| (may be NULL) is told about each HTTP/1.1 connection started (stats).
 * TLS contexts are built on first use from the worker's snapshot and rebuilt when its
 * generation changes; a chain whose certificate cannot be loaded refuses connections (logged).
 */
void mcplex_listener_chains_accept(mcplex_listener_ctx_t *lctx, const mcplex_listener_cfg_t *l, int fd,
                                   const struct sockaddr *peer, mcplex_http_codec_h1_fn on_h1);

/* Frees |c| (NULL is a no-op). Call when the listener context itself is freed (connections may
 * hold the per-chain contexts until then). Handshakes in progress keep their TLS contexts. */
void mcplex_listener_chains_free(mcplex_listener_chains_t *c);

#endif
