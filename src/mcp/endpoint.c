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

/* A new session on the backend the route picks (by weight, on session creation only). */
static mcplex_session_t *
new_session(const mcplex_mcp_route_ctx_t *rc, char *why, size_t why_len)
{
    const mcplex_mcp_backend_t *backend = rc->mcp_router;
    const char *backend_name = rc->mcp_router_name;

    if (backend == NULL) {
        const mcplex_weighted_cluster_t *pick = pick_backend(rc->route);
        const mcplex_cluster_t *cluster = pick != NULL ? mcplex_snapshot_find_cluster(rc->snapshot, pick->name) : NULL;
        if (cluster == NULL || cluster->mcp == NULL) {
            snprintf(why, why_len, "cluster '%s' is not an MCP backend", pick != NULL ? pick->name : "(none)");
            return NULL;
        }
        backend = cluster->mcp;
        backend_name = cluster->name;
    }
    return mcplex_session_create(rc->worker, rc->snapshot, backend_name, backend, rc->route->timeout_ms);
}

static void
handle_initialize(const mcplex_mcp_route_ctx_t *rc, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    char message[256];
    mcplex_session_t *s = new_session(rc, message, sizeof(message));

    if (s == NULL)
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL, NULL);
    else
        mcplex_mux_initialize(s, msg->id_raw, msg->params, ex);
    mcplex_jsonrpc_msg_dispose(msg);
}

/* ---- legacy HTTP+SSE (MCP 2024-11-05) ------------------------------------------------------------- */

static int
path_is_sse(const char *path)
{
    size_t n = strlen(path);

    return n >= 4 && strcmp(path + n - 4, "/sse") == 0;
}

/* The value of |key| in a query string (malloc'ed, no percent-decoding needed for our ids). */
static char *
query_param(const char *query, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = query; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            return mcplex_strndup(v, strcspn(v, "&"));
        }
    }
    return NULL;
}

/* GET /sse: a new legacy session whose stream starts with `event: endpoint`. */
static void
handle_legacy_stream(const mcplex_mcp_route_ctx_t *rc, const mcplex_http_request_t *req, mcplex_exchange_t *ex)
{
    char message[256];
    mcplex_session_t *s = new_session(rc, message, sizeof(message));

    if (s == NULL) {
        reply_plain_error(ex, 503, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    s->legacy_sse = 1;
    if (mcplex_session_register(s) != 0) {
        mcplex_session_close(s, "session id");
        reply_plain_error(ex, 500, MCPLEX_JSONRPC_INTERNAL_ERROR, "could not create a session id");
        return;
    }
    /* The message endpoint: the same path, the session in the query (relative URL). */
    s->legacy_endpoint = mcplex_sprintf("%s?sessionId=%s", req->path, s->id);
    mcplex_session_open_server_stream(s, ex, NULL);
}

/* POST ...?sessionId=: one message of a legacy session: 202 now, the answer on its stream. */
static void
handle_legacy_message(const mcplex_mcp_route_ctx_t *rc, const mcplex_http_request_t *req, const char *sid,
                      mcplex_exchange_t *ex)
{
    mcplex_session_t *s = mcplex_session_find(rc->worker->sessions, sid);
    mcplex_exchange_t *answer;
    mcplex_jsonrpc_msg_t msg;
    const char *why = NULL;
    int rc_parse;

    if (s == NULL || !s->legacy_sse) {
        reply_plain_error(ex, 404, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Session not found");
        return;
    }
    memset(&msg, 0, sizeof(msg));
    rc_parse = mcplex_jsonrpc_parse(req->body, req->body_len, &msg, &why);
    if (rc_parse != 0) {
        mcplex_exchange_reply_error(ex, 400, msg.id_raw, rc_parse, why != NULL ? why : "Invalid message", NULL, NULL);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    mcplex_exchange_reply_status(ex, 202);
    answer = mcplex_exchange_create(NULL, NULL, 0);
    answer->legacy = 1;
    answer->session = s;
    if (msg.kind == MCPLEX_JSONRPC_REQUEST && strcmp(msg.method, "initialize") == 0 && s->protocol_version == NULL) {
        mcplex_mux_initialize(s, msg.id_raw, msg.params, answer);
        mcplex_jsonrpc_msg_dispose(&msg);
        return;
    }
    mcplex_mux_handle(s, &msg, answer);
}

/* ---- MCP 2026-07-28: sessionless requests --------------------------------------------------------- */

/*
 * The modern era is chosen per request (MCP 2026-07-28 "Versioning"): a request without a
 * session whose params._meta names a protocol version, or whose MCP-Protocol-Version header is a
 * modern one. Returns that version, or NULL for a legacy-era request.
 */
static const char *
modern_version(const char *header, const mcplex_jsonrpc_msg_t *msg)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(msg->params, "_meta");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/protocolVersion");

    if (cJSON_IsString(v))
        return v->valuestring;
    if (header != NULL && strcmp(header, "2026-01-01") > 0)
        return header;
    return NULL;
}

static void
handle_modern(const mcplex_mcp_route_ctx_t *rc, const char *header, mcplex_jsonrpc_msg_t *msg,
              mcplex_exchange_t *ex)
{
    static const char *const methods[] = {"server/discover", "tools/list", "tools/call", "prompts/list",
                                          "prompts/get", "resources/list", "resources/read",
                                          "resources/templates/list", "completion/complete", NULL};
    const char *version = modern_version(header, msg);
    char message[256];
    mcplex_session_t *s;
    size_t i;

    if (strcmp(version, MCPLEX_MCP_MODERN_VERSION) != 0) {
        cJSON *data = cJSON_CreateObject();
        cJSON *supported = cJSON_AddArrayToObject(data, "supported");
        cJSON_AddItemToArray(supported, cJSON_CreateString(MCPLEX_MCP_MODERN_VERSION));
        for (i = 0; mcplex_mcp_protocol_versions[i] != NULL; i++)
            cJSON_AddItemToArray(supported, cJSON_CreateString(mcplex_mcp_protocol_versions[i]));
        cJSON_AddStringToObject(data, "requested", version);
        mcplex_exchange_reply_error(ex, 400, msg->id_raw, -32022, "Unsupported protocol version", data, NULL);
        cJSON_Delete(data);
        goto done;
    }
    if (header != NULL && strcmp(header, version) != 0) {
        mcplex_exchange_reply_error(ex, 400, msg->id_raw, -32020,
                                    "Header mismatch: MCP-Protocol-Version differs from _meta", NULL, NULL);
        goto done;
    }
    for (i = 0; methods[i] != NULL && strcmp(methods[i], msg->method) != 0; i++)
        ;
    if (methods[i] == NULL) {
        /* Unknown, or removed in 2026-07-28 (ping, logging/setLevel, subscribe, ...): 404. */
        snprintf(message, sizeof(message), "Method not found: %s", msg->method);
        mcplex_exchange_reply_error(ex, 404, msg->id_raw, MCPLEX_JSONRPC_METHOD_NOT_FOUND, message, NULL, NULL);
        goto done;
    }
    s = new_session(rc, message, sizeof(message));
    if (s == NULL) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL, NULL);
        goto done;
    }
    mcplex_mux_stateless(s, msg, ex);
    return;
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
    if (sid == NULL && msg.kind == MCPLEX_JSONRPC_REQUEST && strcmp(msg.method, "initialize") != 0 &&
        modern_version(version, &msg) != NULL) {
        handle_modern(rc, version, &msg, ex);
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

/* GET: the session's server stream (MCP streamable HTTP), or a legacy /sse stream. */
static void
handle_get(const mcplex_mcp_route_ctx_t *rc, const mcplex_http_request_t *req, mcplex_exchange_t *ex)
{
    const char *sid = mcplex_http_request_header(req, "mcp-session-id");
    mcplex_session_t *s;

    if (!accept_allows(mcplex_http_request_header(req, "accept"), "text/event-stream")) {
        reply_plain_error(ex, 406, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Not Acceptable: GET needs text/event-stream");
        return;
    }
    if (sid == NULL && path_is_sse(req->path)) {
        handle_legacy_stream(rc, req, ex);
        return;
    }
    if (sid == NULL) {
        reply_plain_error(ex, 400, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    s = mcplex_session_find(rc->worker->sessions, sid);
    if (s == NULL || s->legacy_sse) {
        reply_plain_error(ex, 404, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Session not found");
        return;
    }
    if (s->backend->server_stream_disabled) {
        /* MCP: a server without a server stream answers 405; clients then just POST. */
        mcplex_http_header_t allow = {"allow", 5, "POST, DELETE", 12};
        if (ex->n_headers < 6)
            ex->headers[ex->n_headers++] = allow;
        reply_plain_error(ex, 405, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Method Not Allowed: no server stream");
        return;
    }
    mcplex_session_open_server_stream(s, ex, mcplex_http_request_header(req, "last-event-id"));
    /* The targets' own server streams, merged into this one. */
    mcplex_mux_open_upstream_streams(s);
}

void
mcplex_mcp_endpoint_handle(const mcplex_mcp_route_ctx_t *rc, mcplex_http_stream_t *stream,
                           const mcplex_http_request_t *req, const mcplex_http_header_t *extra, size_t n_extra)
{
    mcplex_exchange_t *ex = mcplex_exchange_create(stream, extra, n_extra);

    ex->bytes_in = req->body_len;

    char *legacy_sid = req->query != NULL ? query_param(req->query, "sessionId") : NULL;

    if (strcmp(req->method, "POST") == 0 && legacy_sid != NULL) {
        handle_legacy_message(rc, req, legacy_sid, ex);
    } else if (strcmp(req->method, "POST") == 0) {
        handle_post(rc, stream, req, ex);
    } else if (strcmp(req->method, "DELETE") == 0) {
        handle_delete(rc, req, ex);
    } else if (strcmp(req->method, "GET") == 0) {
        handle_get(rc, req, ex);
    } else {
        reply_plain_error(ex, 405, MCPLEX_JSONRPC_CONNECTION_CLOSED, "Method Not Allowed");
    }
    free(legacy_sid);
}
