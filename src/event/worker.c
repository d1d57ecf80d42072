/*
 * worker.c - a worker: its listeners, its connections, its sessions and its upstream pools
 * (see worker.h). Thread: the worker's own (today the main thread).
 */
#include "event/worker.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "http/h1_server.h"
#include "mcp/session.h"
#include "net/listener.h"
#include "router/hcm.h"
#include "upstream/http_client.h"

#define WORKER_REAP_INTERVAL_S 30

static void
worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_worker_t *w = arg;
    size_t n;

    (void)fd;
    (void)what;
    n = mcplex_session_table_reap(w->sessions, time(NULL), w->session_idle_timeout_s);
    if (n > 0)
        mcplex_log_info("mcp", "ended %zu idle session%s", n, n == 1 ? "" : "s");
}

mcplex_worker_t *
mcplex_worker_create(struct event_base *base, int index, mcplex_snapshot_t *snapshot,
                     const struct mcplex_seal_key *seal_key)
{
    mcplex_worker_t *w = mcplex_calloc(1, sizeof(*w));

    w->index = index;
    w->base = base;
    w->snapshot = mcplex_snapshot_ref(snapshot);
    w->seal_key = seal_key;
    w->sessions = mcplex_session_table_create();
    mcplex_strmap_init(&w->http_pools);
    w->session_idle_timeout_s = 1800;
    {
        struct timeval every = {WORKER_REAP_INTERVAL_S, 0};
        w->reaper = event_new(base, -1, EV_PERSIST, worker_reap_cb, w);
        event_add(w->reaper, &every);
    }
    /* Resolver for STRICT_DNS endpoints: the system's name servers and /etc/hosts. */
    w->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (w->dns == NULL) {
        w->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (w->dns != NULL)
            evdns_base_load_hosts(w->dns, NULL);
    }
    return w;
}

static void
worker_accept(void *arg, int fd, const struct sockaddr *peer, int peer_len)
{
    mcplex_listener_ctx_t *lctx = arg;
    const mcplex_listener_cfg_t *l = NULL;
    mcplex_http_limits_t limits;

    (void)peer_len;
    memset(&limits, 0, sizeof(limits));
    for (size_t i = 0; i < lctx->worker->snapshot->n_listeners; i++)
        if (strcmp(lctx->worker->snapshot->listeners[i].name, lctx->listener_name) == 0)
            l = &lctx->worker->snapshot->listeners[i];
    if (l != NULL) {
        limits.max_request_headers_kb = l->hcm.max_request_headers_kb;
        limits.idle_timeout_ms = l->hcm.stream_idle_timeout_ms;
    }
    mcplex_h1_conn_create(lctx->worker->base, fd, peer, &limits, mcplex_hcm_handle, lctx);
}

int
mcplex_worker_start_listeners(mcplex_worker_t *w, char *err, size_t err_len)
{
    const mcplex_snapshot_t *s = w->snapshot;

    w->listeners = mcplex_calloc(s->n_listeners ? s->n_listeners : 1, sizeof(*w->listeners));
    for (size_t i = 0; i < s->n_listeners; i++) {
        const mcplex_listener_cfg_t *l = &s->listeners[i];
        mcplex_listener_ctx_t *lctx = &w->listeners[i];
        char why[256] = "";
        lctx->worker = w;
        lctx->listener_name = mcplex_strdup(l->name);
        lctx->tcp = mcplex_tcp_listener_create(w->base, l->address, l->port, 1024, worker_accept, lctx, why,
                                               sizeof(why));
        w->n_listeners = i + 1;
        if (lctx->tcp == NULL) {
            snprintf(err, err_len, "listener '%s' (%s:%u): %s", l->name, l->address, l->port, why);
            goto fail;
        }
        mcplex_log_info("main", "listener '%s' serving on %s:%u", l->name, l->address,
                        mcplex_tcp_listener_port(lctx->tcp));
    }
    return 0;
fail:
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i].tcp != NULL)
            mcplex_tcp_listener_destroy(w->listeners[i].tcp);
        free(w->listeners[i].listener_name);
    }
    free(w->listeners);
    w->listeners = NULL;
    w->n_listeners = 0;
    return -1;
}

static void
destroy_pool(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    mcplex_http_pool_destroy(value);
}

void
mcplex_worker_destroy(mcplex_worker_t *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i].tcp != NULL)
            mcplex_tcp_listener_destroy(w->listeners[i].tcp);
        free(w->listeners[i].listener_name);
    }
    free(w->listeners);
    if (w->reaper != NULL)
        event_free(w->reaper);
    mcplex_session_table_destroy(w->sessions);
    mcplex_strmap_foreach(&w->http_pools, destroy_pool, NULL);
    mcplex_strmap_dispose(&w->http_pools);
    if (w->dns != NULL)
        evdns_base_free(w->dns, 0);
    mcplex_snapshot_unref(w->snapshot);
    free(w);
}

struct mcplex_http_pool *
mcplex_worker_http_pool(mcplex_worker_t *w, const mcplex_snapshot_t *snapshot, const char *name)
{
    mcplex_http_pool_t *pool = mcplex_strmap_get(&w->http_pools, name);
    const mcplex_cluster_t *c;
    mcplex_http_pool_config_t cfg;
    mcplex_http_endpoint_t *eps;

    if (pool != NULL)
        return pool;
    c = mcplex_snapshot_find_cluster(snapshot, name);
    if (c == NULL || c->n_endpoints == 0)
        return NULL;
    eps = mcplex_calloc(c->n_endpoints, sizeof(*eps));
    for (size_t i = 0; i < c->n_endpoints; i++)
        eps[i] = (mcplex_http_endpoint_t){c->endpoints[i].host, c->endpoints[i].port, c->endpoints[i].weight};
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.n_endpoints = c->n_endpoints;
    cfg.connect_timeout_ms = c->connect_timeout_ms;
    pool = mcplex_http_pool_create(w->base, w->dns, &cfg);
    free(eps);
    if (pool != NULL)
        mcplex_strmap_put(&w->http_pools, name, pool);
    return pool;
}
