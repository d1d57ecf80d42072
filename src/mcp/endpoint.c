/*
 * endpoint.c - the downstream MCP endpoint, streamable HTTP (MCP 2025-03-26 .. 2025-11-25
 * "Transports"): POST carries one JSON-RPC message (answered as application/json, or 202 for
 * notifications and responses), initialize creates the session and returns Mcp-Session-Id,
 * DELETE ends it, GET (the server stream) is answered 405 until server-initiated streams land.
 * The weighted pick between MCP backends happens here, on initialize only.
 * Thread: the worker that owns the connection.
 */
#include "mcp/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/random.h"
#include "event/worker.h"
#include "mcp/jsonrpc.h"
#include "mcp/session.h"

/* Does the Accept header list |type| (or a wildcard that covers it)? */
static int
accept_allows(const char *accept, const char *type)
{
    const char *slash = strchr(type, '/');

    if (accept == NULL)
        return 1; /* no Accept header: anything is acceptable (RFC 9110 12.5.1) */
    if (strcasestr(accept, type) != NULL || strstr(accept, "*/*") != NULL)
        return 1;
    if (slash != NULL) {
        char major[32];
        snprintf(major, sizeof(major), "%.*s/*", (int)(slash - type), type);
        return strcasestr(accept, major) != NULL;
    }
    return 0;
}

static int
content_type_is_json(const char *ct)
{
    size_t n = strlen("application/json");

    return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void
reply_plain_error(mcplex_exchange_t *ex, int status, int code, const char *message)
{
    mcplex_exchange_reply_error(ex, status, NULL, code, message, NULL, NULL);
}

/* Picks the backend for a new session: weighted random over the route's clusters (Envoy
 * weighted_clusters; a weight of 0 is never picked). */
static const mcplex_weighted_cluster_t *
pick_backend(const mcplex_route_t *route)
{
    uint64_t total = 0, r;

    for (size_t i = 0; i < route->n_clusters; i++)
        total += route->clusters[i].weight;
    if (total == 0)
        return route->n_clusters > 0 ? &route->clusters[0] : NULL;
    r = (((uint64_t)mcplex_fast_rand() << 32) | mcplex_fast_rand()) % total;
    for (size_t i = 0; i < route->n_clusters; i++) {
        if (r < route->clusters[i].weight)
            return &route->clusters[i];
        r -= route->clusters[i].weight;
    }
    return &route->clusters[route->n_clusters - 1];
}

static void
handle_initialize(const mcplex_mcp_route_ctx_t *rc, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const mcplex_mcp_backend_t *backend = rc->mcp_router;
    const char *backend_name = rc->mcp_router_name;
    mcplex_session_t *s;

    if (backend == NULL) {
        const mcplex_weighted_cluster_t *pick = pick_backend(rc->route);
        const mcplex_cluster_t *cluster = pick != NULL ? mcplex_snapshot_find_cluster(rc->snapshot, pick->name) : NULL;
        if (cluster == NULL || cluster->mcp == NULL) {
            char message[256];
            snprintf(message, sizeof(message), "cluster '%s' is not an MCP backend",
                     pick != NULL ? pick->name : "(none)");
            mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL, NULL);
            goto done;
        }
        backend = cluster->mcp;
        backend_name = cluster->name;
    }
    s = mcplex_session_create(rc->worker, rc->snapshot, backend_name, backend, rc->route->timeout_ms);
    mcplex_mux_initialize(s, msg->id_raw, msg->params, ex);
done:
    mcplex_jsonrpc_msg_dispose(msg);
}

static void
handle_post(const mcplex_mcp_route_ctx_t *rc, mcplex_http_stream_t *stream, const mcplex_http_request_t *req,
            mcplex_exchange_t *ex)
{
    const char *sid = mcplex_http_request_header(req, "mcp-session-id");
    const char *version = mcplex_http_request_header(req, "mcp-protocol-version");
    const char *why = NULL;
    const char *accept;
    mcplex_jsonrpc_msg_t msg;
    mcplex_session_t *s;
    char message[256];
    int rc_parse;

    memset(&msg, 0, sizeof(msg));
    (void)stream;
    if (!content_type_is_json(mcplex_http_request_header(req, "content-type"))) {
        reply_plain_error(ex, 415, MCPLEX_JSONRPC_CONNECTION_CLOSED,
                          "Unsupported Media Type: Content-Type must be application/json");
        return;
    }
    /* The spec has clients accept both; mcplex answers JSON to anyone who accepts it, and one
     * SSE event to a client that accepts only text/event-stream. */
    accept = mcplex_http_request_header(req, "accept");
    if (!accept_allows(accept, "application/json")) {
        if (!accept_allows(accept, "text/event-stream")) {
            reply_plain_error(ex, 406, MCPLEX_JSONRPC_CONNECTION_CLOSED,
                              "Not Acceptable: Client must accept application/json or text/event-stream");
            return;
        }
        ex->sse = 1;
    }
    rc_parse = mcplex_jsonrpc_parse(req->body, req->body_len, &msg, &why);
    if (rc_parse != 0) {
        snprintf(message, sizeof(message), "%s: %s", rc_parse == MCPLEX_JSONRPC_PARSE_ERROR ? "Parse error"
                                                                                           : "Invalid Request",
                 why != NULL ? why : "bad message");
        mcplex_exchange_reply_error(ex, 400, msg.id_raw, rc_parse, message, NULL, NULL);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    if (version != NULL && !mcplex_mcp_protocol_version_supported(version)) {
        snprintf(message, sizeof(message), "Bad Request: Unsupported protocol version: %.40s", version);
        mcplex_exchange_reply_error(ex, 400, msg.id_raw, MCPLEX_JSONRPC_CONNECTION_CLOSED, message, NULL, NULL);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    if (msg.kind == MCPLEX_JSONRPC_REQUEST && strcmp(msg.method, "initialize") == 0) {
        if (sid != NULL && mcplex_session_find(rc->worker->sessions, sid) != NULL) {
            mcplex_exchange_reply_error(ex, 400, msg.id_raw, MCPLEX_JSONRPC_INVALID_REQUEST,
                                        "Invalid Request: Server already initialized", NULL, sid);
            mcplex_jsonrpc_msg_dispose(&msg);
            return;
        }
        handle_initialize(rc, &msg, ex);
        return;
    }
    if (sid == NULL) {
        mcplex_exchange_reply_error(ex, 400, msg.id_raw, MCPLEX_JSONRPC_CONNECTION_CLOSED,
                                    "Bad Request: Mcp-Session-Id header is required", NULL, NULL);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    s = mcplex_session_find(rc->worker->sessions, sid);
    if (s == NULL) {
        mcplex_exchange_reply_error(ex, 404, msg.id_raw, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Session not found", NULL,
                                    NULL);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    mcplex_mux_handle(s, &msg, ex);
}

static void
handle_delete(const mcplex_mcp_route_ctx_t *rc, const mcplex_http_request_t *req, mcplex_exchange_t *ex)
{
    const char *sid = mcplex_http_request_header(req, "mcp-session-id");
    mcplex_session_t *s;

    if (sid == NULL) {
        reply_plain_error(ex, 400, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    s = mcplex_session_find(rc->worker->sessions, sid);
    if (s == NULL) {
        reply_plain_error(ex, 404, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Session not found");
        return;
    }
    mcplex_session_close(s, "ended by the client (DELETE)");
    mcplex_exchange_reply_status(ex, 200);
}

void
mcplex_mcp_endpoint_handle(const mcplex_mcp_route_ctx_t *rc, mcplex_http_stream_t *stream,
                           const mcplex_http_request_t *req, const mcplex_http_header_t *extra, size_t n_extra)
{
    mcplex_exchange_t *ex = mcplex_exchange_create(stream, extra, n_extra);

    if (strcmp(req->method, "POST") == 0) {
        handle_post(rc, stream, req, ex);
    } else if (strcmp(req->method, "DELETE") == 0) {
        handle_delete(rc, req, ex);
    } else if (strcmp(req->method, "GET") == 0) {
        /* The server-initiated SSE stream is not offered yet: 405 tells clients "no stream". */
        mcplex_http_header_t allow = {"allow", 5, "POST, DELETE", 12};
        mcplex_exchange_t *ex2 = ex;
        if (ex2->n_headers < 6)
            ex2->headers[ex2->n_headers++] = allow;
        reply_plain_error(ex2, 405, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Method Not Allowed");
    } else {
        reply_plain_error(ex, 405, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Method Not Allowed");
    }
}
