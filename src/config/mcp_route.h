/*
 * mcp_route.h - mcplex's per-route MCP settings (api/mcplex/extensions/filters/http/mcp/v1/
 * mcp_route.proto, McpRoute, used as typed_per_filter_config["mcplex.filters.http.mcp"]) turned
 * into the route model's mcplex_origin_policy_t (config/model.h), and that struct's lifecycle.
 * Thread: the translators run on the main thread; copies and frees run wherever the snapshot
 * that owns the policy is built or freed. Nothing here keeps state.
 */
#ifndef MCPLEX_CONFIG_MCP_ROUTE_H
#define MCPLEX_CONFIG_MCP_ROUTE_H

#include "common/errors.h"
#include "config/model.h"

/* The key of McpRoute in typed_per_filter_config maps, and its full message name. */
#define MCPLEX_MCP_ROUTE_FILTER_NAME "mcplex.filters.http.mcp"
#define MCPLEX_MCP_ROUTE_TYPE "mcplex.extensions.filters.http.mcp.v1.McpRoute"

struct Mcplex__Extensions__Filters__Http__Mcp__V1__McpRoute;

/*
 * Translates one McpRoute message (|path| names it in errors) into a new policy. Each
 * allowed_origins entry must be "*" or "http(s)://host[:port]" with nothing after the authority;
 * each allowed_hosts entry "*", "host" or "host:port" (IPv6 in brackets); none may be empty or
 * hold spaces or control characters. Returns the policy (caller frees with
 * mcplex_origin_policy_free()), or NULL with every problem added to |errs|.
 */
mcplex_origin_policy_t *mcplex_config_translate_mcp_route(
    const struct Mcplex__Extensions__Filters__Http__Mcp__V1__McpRoute *msg, const char *path,
    mcplex_errors_t *errs);

/* A deep copy of |p| (NULL gives NULL). Aborts on out-of-memory, like every mcplex allocation. */
mcplex_origin_policy_t *mcplex_origin_policy_copy(const mcplex_origin_policy_t *p);

/* Frees |p| and everything it owns; NULL is a no-op. */
void mcplex_origin_policy_free(mcplex_origin_policy_t *p);

#endif
