/*
 * naming.h - how names cross the proxy: tool and prompt names as "<target><sep><name>"
 * (separator "__" for Envoy's mcp_router, "_" for the agentgateway-style file), resource URIs
 * and URI templates as "<target>+<uri>" (the target becomes part of the RFC 3986 scheme).
 * Splitting is at the first separator / first '+', so the remainder is the upstream name
 * verbatim. Pure code, any thread.
 */
#ifndef MCPLEX_MCP_NAMING_H
#define MCPLEX_MCP_NAMING_H

#include <stddef.h>

/* "<target><sep><name>" (malloc'ed). */
char *mcplex_naming_join_name(const char *target, const char *sep, const char *name);
/*
 * Splits |full| at the first |sep|. Returns the index in |targets| (|n_targets| names) of the
 * target whose name is the left part, and sets |*rest| to the text after the separator (points
 * into |full|). Returns -1 if there is no separator or the left part names no target (|*rest|
 * is then untouched), and always when |sep| is NULL or empty.
 */
int mcplex_naming_split_name(const char *full, const char *sep, const char *const *targets,
                             size_t n_targets, const char **rest);
/* "<target>+<uri>" (malloc'ed). */
char *mcplex_naming_join_uri(const char *target, const char *uri);
/* Like split_name, for "<target>+<uri>". Returns the target index or -1. */
int mcplex_naming_split_uri(const char *full, const char *const *targets, size_t n_targets,
                            const char **rest);
/*
 * Checks a target name: 1-64 chars of [A-Za-z0-9._-], not containing |sep| nor '+', not
 * starting or ending with '_' (so the first separator always splits right). Returns 1 if
 * valid; else 0 and writes a reason into |why|.
 */
int mcplex_naming_target_name_valid(const char *name, const char *sep, char *why, size_t why_len);

#endif
