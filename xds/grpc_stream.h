/*
 * grpc_stream.h - one client bidi-streaming gRPC call (the ADS stream) over the gRPC core C API
 * (Debian libgrpc 1.51): an insecure channel with a large max receive message size, keepalive
 * and channel reconnect backoff; a completion queue drained by its own pthread. Batches follow
 * research/xds-subset.md 6.1/6.3: SEND_INITIAL_METADATA with WAIT_FOR_READY; RECV_STATUS started
 * up front; RECV_INITIAL_METADATA in its own batch, then RECV_MESSAGE re-armed after each
 * message; at most one SEND_MESSAGE outstanding (later sends queue in order).
 *
 * Everything the CQ thread learns (messages, "stream up", "call ended") goes to the main loop
 * through xds/handoff.h; the CQ thread never touches libevent state or config. A failed call is
 * not retried here: the owner (xds/ads.c) starts a new one after its own jittered backoff.
 *
 * Threads: create/start/send/cancel/destroy on the main thread; the CQ thread is internal.
 */
#ifndef MCPLEX_XDS_GRPC_STREAM_H
#define MCPLEX_XDS_GRPC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "xds/handoff.h"

typedef struct mcplex_grpc_stream mcplex_grpc_stream_t;

/*
 * TLS to the control plane (google_grpc.channel_credentials.ssl_credentials, or the
 * UpstreamTlsContext of an envoy_grpc cluster). PEM strings, NULL when absent; borrowed by
 * mcplex_grpc_stream_create() for the call only (gRPC copies them).
 */
typedef struct mcplex_grpc_tls {
    const char *root_certs;           /* CAs that validate the server; NULL = gRPC's default roots */
    const char *private_key;          /* client key, with cert_chain (both or neither) */
    const char *cert_chain;           /* client certificate chain */
    const char *target_name_override; /* name checked against the server certificate (and sent as
                                       * SNI) instead of the target's host; NULL = the host */
} mcplex_grpc_tls_t;

/*
 * Creates the channel to |target| (gRPC target syntax: "host:port", "dns:///host:port",
 * "ipv4:1.2.3.4:5", "unix:/path"), plaintext when |tls| is NULL, else TLS as it says, for calls
 * to the full method path |method| (e.g.
 * "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"), and
 * starts the CQ thread. Events go to |handoff| (not owned; must outlive the stream). Calls
 * grpc_init (balanced by destroy). Returns NULL (logged) on failure. No call is started yet.
 */
mcplex_grpc_stream_t *mcplex_grpc_stream_create(const char *target, const char *method, const mcplex_grpc_tls_t *tls,
                                                mcplex_xds_handoff_t *handoff);

/*
 * Starts a new call (any previous one must have ended: its CLOSED item was delivered).
 * Returns the call id (>= 1; hand-off items carry it), or 0 (logged) if the call could not be
 * created. The call waits for the channel to be ready (WAIT_FOR_READY).
 */
uint64_t mcplex_grpc_stream_start(mcplex_grpc_stream_t *s);

/*
 * Sends one message (|len| bytes at |data|, copied) on the current call, after the ones queued
 * before it. Returns 0, or -1 when there is no live call (the message is dropped: the owner
 * resends its state on the next call).
 */
int mcplex_grpc_stream_send(mcplex_grpc_stream_t *s, const uint8_t *data, size_t len);

/* Cancels the current call, if any (its CLOSED item follows through the hand-off). */
void mcplex_grpc_stream_cancel(mcplex_grpc_stream_t *s);

/*
 * Cancels the call, waits until every outstanding operation completed, shuts down and drains
 * the completion queue, joins the CQ thread, destroys the channel and calls grpc_shutdown
 * (research/xds-subset.md 6.3 item 9). NULL is a no-op. Items already pushed to the hand-off
 * stay there (the hand-off owner frees them).
 */
void mcplex_grpc_stream_destroy(mcplex_grpc_stream_t *s);

#endif
