/*
 * origin.h - DNS rebinding protection for the MCP endpoints (MCP 2025-11-25, Streamable HTTP
 * "Security Warning": servers MUST validate the Origin header of incoming connections, and a
 * present and invalid Origin MUST get 403 Forbidden, optionally with a JSON-RPC error without
 * id; local servers SHOULD bind to localhost). The HCM calls mcplex_origin_check() for every
 * request of a matched route, before CORS and before the MCP endpoint, so a preflight from a
 * rejected origin gets 403 and no CORS headers. The rules follow the TypeScript SDK's
 * hostHeaderValidation / DNS rebinding options.
 *
 * Rules, with the route's policy |p| (config/model.h; NULL = all defaults):
 *  - OFF: nothing is checked.
 *  - ON, or DEFAULT on a listener bound to a loopback address (127.0.0.0/8, ::1, localhost):
 *    Host must be present and be a loopback name (localhost, 127.x.y.z, [::1]; any port) or
 *    match allowed_hosts; Origin, when present, must be a loopback origin (http or https) or
 *    match allowed_origins or an exact origin of the route's CORS policy.
 *  - DEFAULT elsewhere: Host is checked only when allowed_hosts is set, Origin only when
 *    allowed_origins is set (same matching as above).
 * Matching: hosts case-insensitively, "host" matches any port, "host:port" only that port, "*"
 * anything; origins case-insensitively and exactly (a trailing "/" ignored), "*" anything.
 * Pure code (the responder writes to the stream it is given); any thread.
 */
#ifndef MCPLEX_ROUTER_ORIGIN_H
#define MCPLEX_ROUTER_ORIGIN_H

#include <stddef.h>

#include "config/model.h"
#include "http/http.h"

typedef enum mcplex_origin_verdict {
    MCPLEX_ORIGIN_OK = 0,
    MCPLEX_ORIGIN_BAD_HOST,   /* Host missing or not allowed */
    MCPLEX_ORIGIN_BAD_ORIGIN, /* Origin present and not allowed */
} mcplex_origin_verdict_t;

/* 1 if |address| (a listener's IP literal, or "localhost") is a loopback address. */
int mcplex_origin_address_is_loopback(const char *address);

/* 1 if the Host value |host| ("name[:port]", "[v6][:port]") names the loopback host. */
int mcplex_origin_host_is_loopback(const char *host);

/* 1 if the Origin value |origin| is http(s)://<loopback host>[:port]. */
int mcplex_origin_is_loopback(const char *origin);

/*
 * Applies the rules above to one request: |p| the route's policy (may be NULL), |cors| its CORS
 * policy (may be NULL; only its exact allow_origins count), |listener_address| the listener's
 * bind address, |host| the Host / :authority (NULL = missing), |origin| the Origin header (NULL =
 * absent). Returns the verdict; when not OK, |why| (may be NULL) gets the JSON-RPC error message,
 * e.g. "Invalid Origin header: http://evil.example".
 */
mcplex_origin_verdict_t mcplex_origin_check(const mcplex_origin_policy_t *p, const mcplex_cors_policy_t *cors,
                                            const char *listener_address, const char *host,
                                            const char *origin, char *why, size_t why_len);

/*
 * Answers |stream| with 403 Forbidden, Content-Type application/json and the body
 * {"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":<why>}} (the SDK's shape). The
 * stream is finished and freed on return (mcplex_http_stream_respond()).
 */
void mcplex_origin_respond_forbidden(mcplex_http_stream_t *stream, const char *why);

#endif
