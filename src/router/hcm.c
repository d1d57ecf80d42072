/*
 * hcm.c - the HTTP connection manager (see hcm.h). Thread: the connection's worker.
 */
#include "router/hcm.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "admin/server_stats.h"
#include "common/log.h"
#include "common/mem.h"
#include "event/handoff.h"
#include "event/worker.h"
#include "mcp/endpoint.h"
#include "mcp/session.h"
#include "router/cors.h"
#include "router/origin.h" /* origin (issue 3) */

/* ---- matching ----------------------------------------------------------------------------------- */

static int
domain_match(const char *domain, const char *host, size_t host_len, int *score)
{
    size_t dlen = strlen(domain);

    if (strcmp(domain, "*") == 0) {
        *score = 0;
        return 1;
    }
    if (dlen == host_len && strncasecmp(domain, host, host_len) == 0) {
        *score = 3000000 + (int)dlen;
        return 1;
    }
    if (domain[0] == '*' && dlen - 1 < host_len &&
        strncasecmp(domain + 1, host + host_len - (dlen - 1), dlen - 1) == 0) {
        *score = 2000000 + (int)dlen;
        return 1;
    }
    if (dlen > 1 && domain[dlen - 1] == '*' && dlen - 1 < host_len && strncasecmp(domain, host, dlen - 1) == 0) {
        *score = 1000000 + (int)dlen;
        return 1;
    }
    return 0;
}

static const mcplex_virtual_host_t *
match_vhost_host(const mcplex_route_config_t *rc, const char *host, size_t host_len, int *best_score)
{
    const mcplex_virtual_host_t *best = NULL;

    for (size_t i = 0; i < rc->n_virtual_hosts; i++) {
        const mcplex_virtual_host_t *vh = &rc->virtual_hosts[i];
        for (size_t d = 0; d < vh->n_domains; d++) {
            int score;
            if (domain_match(vh->domains[d], host, host_len, &score) && score > *best_score) {
                best = vh;
                *best_score = score;
            }
        }
    }
    return best;
}

const mcplex_virtual_host_t *
mcplex_hcm_match_vhost(const mcplex_route_config_t *rc, const char *authority)
{
    const char *host = authority != NULL ? authority : "";
    int score = -1;
    const mcplex_virtual_host_t *vh = match_vhost_host(rc, host, strlen(host), &score);
    const mcplex_virtual_host_t *stripped;
    const char *colon;

    /* Envoy matches "host:port" as given; the host without its port is tried too, and the more
     * specific of the two matches wins (exact beats suffix beats prefix beats "*"). */
    if ((colon = strrchr(host, ':')) != NULL && strchr(host, ']') <= colon) {
        stripped = match_vhost_host(rc, host, (size_t)(colon - host), &score);
        if (stripped != NULL)
            vh = stripped;
    }
    return vh;
}

const mcplex_route_t *
mcplex_hcm_match_route(const mcplex_virtual_host_t *vh, const char *path)
{
    for (size_t i = 0; i < vh->n_routes; i++) {
        const mcplex_route_t *r = &vh->routes[i];
        int (*cmp)(const char *, const char *, size_t) = r->case_sensitive ? strncmp : strncasecmp;
        if (r->path != NULL) {
            size_t n = strlen(r->path);
            if (strlen(path) == n && cmp(path, r->path, n) == 0)
                return r;
        } else {
            const char *prefix = r->prefix != NULL ? r->prefix : "/";
            if (cmp(path, prefix, strlen(prefix)) == 0)
                return r;
        }
    }
    return NULL;
}

/* ---- request handling ------------------------------------------------------------------------- */

static const mcplex_listener_cfg_t *
find_listener(const mcplex_snapshot_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_listeners; i++)
        if (strcmp(s->listeners[i].name, name) == 0)
            return &s->listeners[i];
    return NULL;
}

static void
respond_text(mcplex_http_stream_t *stream, int status, const char *text, const mcplex_cors_result_t *cors)
{
    mcplex_http_header_t hdrs[8];
    size_t n = 0;

    hdrs[n++] = (mcplex_http_header_t){"content-type", 12, "text/plain", 10};
    for (size_t i = 0; cors != NULL && i < cors->n_headers && n < MCPLEX_ARRAY_SIZE(hdrs); i++)
        hdrs[n++] = cors->headers[i];
    mcplex_http_stream_respond(stream, status, hdrs, n, text, strlen(text));
}

/* Does |req| belong to a session this worker serves? */
static int
has_live_session(mcplex_worker_t *w, const mcplex_http_request_t *req)
{
    const char *sid = mcplex_http_request_header(req, "mcp-session-id");

    return sid != NULL && mcplex_session_find(w->sessions, sid) != NULL;
}

/* Does the route lead to MCP backends only? */
static int
route_is_mcp(const mcplex_snapshot_t *s, const mcplex_route_t *r)
{
    if (r->n_clusters == 0)
        return 0;
    for (size_t i = 0; i < r->n_clusters; i++) {
        const mcplex_cluster_t *c = mcplex_snapshot_find_cluster(s, r->clusters[i].name);
        if (c == NULL || c->mcp == NULL)
            return 0;
    }
    return 1;
}

void
mcplex_hcm_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    mcplex_listener_ctx_t *lctx = ctx;
    mcplex_worker_t *w = lctx->worker;
    mcplex_snapshot_t *snap = mcplex_snapshot_ref(w->snapshot);
    const mcplex_listener_cfg_t *l = find_listener(snap, lctx->listener_name);
    /* the HCM of the connection's filter chain (issue 4) */
    const mcplex_hcm_t *hcm = l != NULL ? mcplex_listener_chain_hcm(l, lctx->filter_chain) : NULL;
    const mcplex_virtual_host_t *vh;
    const mcplex_route_t *route;
    mcplex_cors_result_t cors;
    mcplex_mcp_route_ctx_t rc;
    char name[256];

    memset(&cors, 0, sizeof(cors));
    /* Worker threads (issue 6): a session another worker owns is served there. */
    if (mcplex_handoff_maybe(lctx, stream, req))
        goto done;
    mcplex_server_stats_hcm_request(stream, req, snap, l); /* stats and access log (issue 7) */
    if (l == NULL) {
        respond_text(stream, 503, "listener is draining\n", NULL);
        goto done;
    }
    vh = mcplex_hcm_match_vhost(&hcm->route_config, req->authority);
    route = vh != NULL ? mcplex_hcm_match_route(vh, req->path) : NULL;
    if (route == NULL) {
        respond_text(stream, 404, "no route matched\n", NULL);
        goto done;
    }
    /* --- origin (issue 3): DNS rebinding protection, before CORS (a rejected origin's preflight
     * gets 403 and no CORS headers) --- */
    if (mcplex_origin_check(route->origin, route->cors, l->address, req->authority,
                            mcplex_http_request_header(req, "origin"), name, sizeof(name))
        != MCPLEX_ORIGIN_OK) {
        mcplex_log_debug("hcm", "403 for %s %s: %s", req->method, req->path, name);
        mcplex_origin_respond_forbidden(stream, name);
        goto done;
    }
    /* --- end origin --- */
    if (hcm->cors_filter)
        mcplex_cors_evaluate(route->cors, req, &cors);
    if (cors.preflight) {
        mcplex_http_stream_respond(stream, 200, cors.headers, cors.n_headers, NULL, 0);
        goto done;
    }
    /* body limit (issue 4): the codec allowed the route configuration's largest */
    if (req->body_len > (route->max_request_body_bytes != 0 ? route->max_request_body_bytes
                                                            : MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES)) {
        respond_text(stream, 413, "request body too large for this route\n", &cors);
        goto done;
    }
    if (route->action == MCPLEX_ROUTE_DIRECT_RESPONSE) {
        respond_text(stream, route->direct_status, route->direct_body != NULL ? route->direct_body : "", &cors);
        goto done;
    }
    memset(&rc, 0, sizeof(rc));
    rc.worker = w;
    rc.snapshot = snap;
    rc.route = route;
    /* A request of an existing session goes to its session (which holds its own backend), even
     * while the route's clusters are being changed by a config update. */
    if (!route_is_mcp(snap, route) && !has_live_session(w, req)) {
        if (hcm->mcp_router == NULL) {
            respond_text(stream, 503, "route does not lead to an MCP backend\n", &cors);
            goto done;
        }
        snprintf(name, sizeof(name), "%s/mcp_router", l->name);
        rc.mcp_router = hcm->mcp_router;
        rc.mcp_router_name = name;
    }
    mcplex_mcp_endpoint_handle(&rc, stream, req, cors.headers, cors.n_headers);
done:
    mcplex_snapshot_unref(snap);
}
