/*
 * handoff.h - requests that land on the wrong worker. A session lives on one worker (its sealed
 * Mcp-Session-Id says which); the kernel spreads connections, not sessions, across workers'
 * SO_REUSEPORT sockets, so a request may arrive anywhere. The worker that received it (the
 * origin) copies the request and posts it to the owner's inbox; the owner runs it through its
 * own HCM on a remote stream whose responses are posted back to the origin, in order, and
 * written to the client there. A client that goes away is reported to the owner as the remote
 * stream's close. Nothing is shared between the two threads but the hand-off record, whose
 * lifetime is a two-sided atomic reference count. Thread: the origin's and the owner's loops.
 */
#ifndef MCPLEX_EVENT_HANDOFF_H
#define MCPLEX_EVENT_HANDOFF_H

#include "event/worker.h"
#include "http/http.h"

/*
 * If |req| names a session (Mcp-Session-Id header, or ?sessionId= for legacy SSE) that this
 * worker does not have but another worker of its group owns, hands it over and returns 1 (the
 * stream then belongs to the hand-off); otherwise returns 0 and the caller serves the request.
 * Thread: |lctx|'s worker.
 */
int mcplex_handoff_maybe(mcplex_listener_ctx_t *lctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req);

/*
 * The worker index a client-facing session id was sealed for, or -1 if it does not open with
 * this worker's key or names no worker. Thread: any (the key is immutable).
 */
int mcplex_handoff_session_owner(const mcplex_worker_t *w, const char *session_id);

#endif
