/*
 * curation.h - tool curation per target (McpTarget.tools): allow and deny lists by name or
 * shell glob (fnmatch(3)), renames and description overrides. Applied to tools/list items on
 * the way down and to tools/call names on the way up, so a hidden tool can neither be listed
 * nor called. Pure code, any thread.
 */
#ifndef MCPLEX_MCP_CURATION_H
#define MCPLEX_MCP_CURATION_H

#include "config/model.h"

/*
 * Decides how the target's tool |name| is exposed. Returns 0 if it is hidden; otherwise 1 with
 * |*exposed| the name clients see (|name| itself or the override's, pointing into config) and
 * |*description| the replacement description or NULL to keep the target's.
 */
int mcplex_curation_expose(const mcplex_mcp_target_t *t, const char *name, const char **exposed,
                           const char **description);

/*
 * Maps an exposed (unprefixed) tool name back to the target's own name. Returns NULL when no
 * exposed tool has that name: hidden tools, and original names of renamed tools.
 */
const char *mcplex_curation_resolve(const mcplex_mcp_target_t *t, const char *exposed);

#endif
