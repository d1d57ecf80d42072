/*
 * endpoint.h - the downstream MCP endpoint (streamable HTTP) that the HCM calls for requests
 * whose route leads to MCP backends. Thread: the worker that owns the connection.
 */
#ifndef MCPLEX_MCP_ENDPOINT_H
#define MCPLEX_MCP_ENDPOINT_H

#include <stddef.h>

#include "config/model.h"
#include "http/http.h"

struct mcplex_worker;

/* What the HCM resolved for the request. Pointers are borrowed for the call. */
typedef struct mcplex_mcp_route_ctx {
    struct mcplex_worker *worker;
    mcplex_snapshot_t *snapshot;         /* the config the request started with */
    const mcplex_route_t *route;         /* the matched route (weights, timeout) */
    const mcplex_mcp_backend_t *mcp_router; /* the HCM's mcp_router backend, or NULL: the route's
                                             * clusters are MCP backends (picked by weight) */
    const char *mcp_router_name;         /* backend name when mcp_router is set */
} mcplex_mcp_route_ctx_t;

/*
 * Serves |req| on |stream| as the MCP streamable-HTTP endpoint: POST (JSON-RPC, initialize
 * creates a session on a backend picked by weight), DELETE (ends the session), GET (405 for
 * now). |extra| response headers (CORS) are added to every answer. Errors are JSON-RPC error
 * objects: HTTP 400 for malformed messages or a missing session id, 404 for an unknown session,
 * 406/415 for bad Accept/Content-Type, and HTTP 200 for every JSON-RPC-level error.
 */
void mcplex_mcp_endpoint_handle(const mcplex_mcp_route_ctx_t *rc, mcplex_http_stream_t *stream,
                                const mcplex_http_request_t *req, const mcplex_http_header_t *extra,
                                size_t n_extra);

#endif
