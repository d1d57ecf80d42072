/*
 * hcm.h - the HTTP connection manager (Envoy's envoy.filters.network.http_connection_manager):
 * for each request of a listener, picks the virtual host (by Host) and the route (first match),
 * applies the CORS filter, and hands the request to its terminal action: a direct response, or
 * the MCP endpoint for MCP backends (mcp_router, or routes to MCP clusters).
 * Thread: the worker that owns the connection.
 */
#ifndef MCPLEX_ROUTER_HCM_H
#define MCPLEX_ROUTER_HCM_H

#include "config/model.h"
#include "http/http.h"

/* The codec handler for connections of a listener; |ctx| is its mcplex_listener_ctx_t. */
void mcplex_hcm_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req);

/*
 * Route matching, exposed for tests: the virtual host for |authority| (Envoy order: exact,
 * then longest "*.suffix", then longest "prefix.*", then "*"), and the first route of it that
 * matches |path| (query excluded). NULL when nothing matches.
 */
const mcplex_virtual_host_t *mcplex_hcm_match_vhost(const mcplex_route_config_t *rc, const char *authority);
const mcplex_route_t *mcplex_hcm_match_route(const mcplex_virtual_host_t *vh, const char *path);

#endif
