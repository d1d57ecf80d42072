/*
 * worker.c - a worker: its listeners, its connections, its sessions, its upstream pools, and the
 * live config swap that changes all of them (see worker.h). Thread: the worker's own (today the
 * main thread).
 */
#include "event/worker.h"

#include <event2/bufferevent.h> /* HTTP/2 (issue 4) */
#include <event2/dns.h>
#include <netinet/in.h>           /* HTTP/2 (issue 4): TCP_NODELAY */
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/server_stats.h"
#include "common/log.h"
#include "common/mem.h"
#include "config/diff.h"
#include "event/listener_chains.h" /* TLS and filter chains (issue 4) */
#include "net/tls.h"               /* TLS (issue 4): upstream client contexts */
#include "http/codec.h" /* HTTP/2 (issue 4) */
#include "http/h1_server.h"
#include "mcp/session.h"
#include "net/listener.h"
#include "router/hcm.h"
#include "upstream/http_client.h"

#define WORKER_REAP_INTERVAL_S 30
#define WORKER_SWAP_REASON "backend removed/changed by config update"

/* A pool and the snapshots it was handed out for (the references are in w->pool_snaps). */
struct mcplex_worker_pool {
    mcplex_http_pool_t *pool;
    const mcplex_snapshot_t **snaps;
    size_t n_snaps;
    size_t cap_snaps;
};

static size_t check_sessions(mcplex_worker_t *w, size_t *kept);

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
    /* A session whose initialize was in flight during a swap registers afterwards on its old
     * snapshot: it is checked against the current config here. */
    check_sessions(w, NULL);
    mcplex_worker_collect_pools(w);
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

/* ---- listeners ---------------------------------------------------------------------------------- */

static const mcplex_listener_cfg_t *
find_listener_cfg(const mcplex_snapshot_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_listeners; i++)
        if (strcmp(s->listeners[i].name, name) == 0)
            return &s->listeners[i];
    return NULL;
}

/* --- HTTP/2 (issue 4): stats for the HTTP/1.1 connections the codec selector starts --- */
static void
worker_h1_opened(void *arg, struct mcplex_h1_conn *conn)
{
    mcplex_listener_ctx_t *lctx = arg;
    const mcplex_listener_cfg_t *l = find_listener_cfg(lctx->worker->snapshot, lctx->listener_name);

    mcplex_server_stats_h1_conn_open(conn, lctx->listener_name, lctx->address, lctx->port,
                                     l != NULL ? l->hcm.stat_prefix : NULL);
}
/* --- end HTTP/2 --- */

static void
worker_accept(void *arg, int fd, const struct sockaddr *peer, int peer_len)
{
    mcplex_listener_ctx_t *lctx = arg;
    const mcplex_listener_cfg_t *l;
    mcplex_http_limits_t limits;

    (void)peer_len;
    memset(&limits, 0, sizeof(limits));
    l = find_listener_cfg(lctx->worker->snapshot, lctx->listener_name);
    if (l != NULL) {
        limits.max_request_headers_kb = l->hcm.max_request_headers_kb;
        limits.max_request_body_bytes = (uint32_t)l->hcm.route_config.max_request_body_bytes;
        limits.idle_timeout_ms = l->hcm.stream_idle_timeout_ms;
    }
    /* --- TLS (issue 4): TLS and multi-chain listeners pick a filter chain first --- */
    if (l != NULL && mcplex_listener_chains_needed(l)) {
        mcplex_listener_chains_accept(lctx, l, fd, peer, worker_h1_opened);
        return;
    }
    /* --- end TLS --- */
    /* --- HTTP/2 (issue 4): AUTO and HTTP2 listeners go through the codec selector (h2c prior
     * knowledge, Upgrade: h2c); HTTP1 listeners keep the direct HTTP/1.1 path below. --- */
    if (l != NULL && l->hcm.codec_type != MCPLEX_CODEC_HTTP1) {
        struct bufferevent *bev;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not fatal */
        bev = bufferevent_socket_new(lctx->worker->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            mcplex_log_error("main", "cannot set up a connection: no bufferevent");
            evutil_closesocket(fd);
            return;
        }
        mcplex_http_codec_start_ex(lctx->worker->base, bev, peer, NULL, &l->hcm, mcplex_hcm_handle, lctx,
                                   worker_h1_opened, lctx);
        return;
    }
    /* --- end HTTP/2 --- */
    /* stats: downstream_cx_* (issue 7) */
    mcplex_server_stats_h1_conn_open(mcplex_h1_conn_create(lctx->worker->base, fd, peer, &limits,
                                                           mcplex_hcm_handle, lctx),
                                     lctx->listener_name, lctx->address, lctx->port,
                                     l != NULL ? l->hcm.stat_prefix : NULL);
}

/* Opens the socket of listener |l| into a new context. Returns it, or NULL with |err| set. */
static mcplex_listener_ctx_t *
listener_open(mcplex_worker_t *w, const mcplex_listener_cfg_t *l, char *err, size_t err_len)
{
    mcplex_listener_ctx_t *lctx = mcplex_calloc(1, sizeof(*lctx));
    char why[256] = "";

    lctx->worker = w;
    lctx->listener_name = mcplex_strdup(l->name);
    lctx->address = mcplex_strdup(l->address);
    lctx->port = l->port;
    lctx->tcp = mcplex_tcp_listener_create(w->base, l->address, l->port, 1024, worker_accept, lctx, why,
                                           sizeof(why));
    if (lctx->tcp == NULL) {
        snprintf(err, err_len, "listener '%s' (%s:%u): %s", l->name, l->address, l->port, why);
        goto fail;
    }
    mcplex_log_info("main", "listener '%s' serving on %s:%u", l->name, l->address,
                    mcplex_tcp_listener_port(lctx->tcp));
    return lctx;
fail:
    free(lctx->listener_name);
    free(lctx->address);
    free(lctx);
    return NULL;
}

static void
listener_free(mcplex_listener_ctx_t *lctx)
{
    if (lctx->tcp != NULL)
        mcplex_tcp_listener_destroy(lctx->tcp);
    mcplex_listener_chains_free(lctx->chains); /* TLS (issue 4) */
    free(lctx->listener_name);
    free(lctx->address);
    free(lctx);
}

/* Stops accepting on |lctx| and keeps it (connections hold the pointer) until the worker ends. */
static void
listener_retire(mcplex_worker_t *w, mcplex_listener_ctx_t *lctx)
{
    if (lctx->tcp != NULL) {
        mcplex_tcp_listener_destroy(lctx->tcp);
        lctx->tcp = NULL;
    }
    lctx->next_retired = w->retired;
    w->retired = lctx;
}

int
mcplex_worker_start_listeners(mcplex_worker_t *w, char *err, size_t err_len)
{
    const mcplex_snapshot_t *s = w->snapshot;

    w->listeners = mcplex_calloc(s->n_listeners ? s->n_listeners : 1, sizeof(*w->listeners));
    w->n_listeners = 0;
    for (size_t i = 0; i < s->n_listeners; i++) {
        mcplex_listener_ctx_t *lctx = listener_open(w, &s->listeners[i], err, err_len);
        if (lctx == NULL)
            goto fail;
        w->listeners[w->n_listeners++] = lctx;
    }
    return 0;
fail:
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_free(w->listeners[i]);
    free(w->listeners);
    w->listeners = NULL;
    w->n_listeners = 0;
    return -1;
}

static mcplex_listener_ctx_t *
find_open_listener(const mcplex_worker_t *w, const char *name)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (strcmp(w->listeners[i]->listener_name, name) == 0)
            return w->listeners[i];
    return NULL;
}

/* ---- pools -------------------------------------------------------------------------------------- */

static void
pool_entry_free(mcplex_worker_pool_t *e)
{
    mcplex_http_pool_destroy(e->pool);
    free(e->snaps);
    free(e);
}

static void
pool_entry_note_snapshot(mcplex_worker_t *w, mcplex_worker_pool_t *e, const mcplex_snapshot_t *snapshot)
{
    size_t i;

    for (i = 0; i < e->n_snaps; i++)
        if (e->snaps[i] == snapshot)
            return;
    if (e->n_snaps == e->cap_snaps) {
        e->cap_snaps = e->cap_snaps ? e->cap_snaps * 2 : 4;
        e->snaps = mcplex_realloc(e->snaps, e->cap_snaps * sizeof(*e->snaps));
    }
    e->snaps[e->n_snaps++] = snapshot;
    for (i = 0; i < w->n_pool_snaps; i++)
        if (w->pool_snaps[i] == snapshot)
            return;
    if (w->n_pool_snaps == w->cap_pool_snaps) {
        w->cap_pool_snaps = w->cap_pool_snaps ? w->cap_pool_snaps * 2 : 4;
        w->pool_snaps = mcplex_realloc(w->pool_snaps, w->cap_pool_snaps * sizeof(*w->pool_snaps));
    }
    /* The caller holds a reference to |snapshot|; taking another only changes its refcount. */
    w->pool_snaps[w->n_pool_snaps++] = mcplex_snapshot_ref((mcplex_snapshot_t *)snapshot);
}

struct mcplex_http_pool *
mcplex_worker_http_pool(mcplex_worker_t *w, const mcplex_snapshot_t *snapshot, const char *name)
{
    const mcplex_cluster_t *c = mcplex_snapshot_find_cluster(snapshot, name);
    mcplex_worker_pool_t *e;
    mcplex_http_pool_config_t cfg;
    mcplex_http_endpoint_t *eps;
    char *key;

    if (c == NULL || c->n_endpoints == 0)
        return NULL;
    key = mcplex_config_pool_key(c);
    e = mcplex_strmap_get(&w->http_pools, key);
    if (e == NULL) {
        eps = mcplex_calloc(c->n_endpoints, sizeof(*eps));
        for (size_t i = 0; i < c->n_endpoints; i++)
            eps[i] = (mcplex_http_endpoint_t){c->endpoints[i].host, c->endpoints[i].port,
                                              c->endpoints[i].weight};
        memset(&cfg, 0, sizeof(cfg));
        cfg.endpoints = eps;
        cfg.n_endpoints = c->n_endpoints;
        cfg.connect_timeout_ms = c->connect_timeout_ms;
        cfg.http2 = c->http2; /* HTTP/2 (issue 4): h2c, or h2 over TLS when cfg.tls is set */
        /* --- TLS (issue 4): UpstreamTlsContext / https:// targets (certificates were checked at load) --- */
        if (c->tls) {
            char why[256] = "";
            cfg.tls = mcplex_tls_ctx_new_client(c->tls_context, why, sizeof(why));
            if (cfg.tls == NULL) {
                mcplex_log_error("upstream", "cluster '%s': TLS: %s", c->name, why);
                free(eps);
                free(key);
                return NULL;
            }
        }
        /* --- end TLS --- */
        e = mcplex_calloc(1, sizeof(*e));
        e->pool = mcplex_http_pool_create(w->base, w->dns, &cfg);
        mcplex_tls_ctx_unref(cfg.tls); /* TLS (issue 4): the pool holds its own reference */
        free(eps);
        if (e->pool == NULL) {
            free(e);
            free(key);
            return NULL;
        }
        mcplex_strmap_put(&w->http_pools, key, e);
    }
    pool_entry_note_snapshot(w, e, snapshot);
    free(key);
    return e->pool;
}

typedef struct collect_ctx {
    const mcplex_snapshot_t *const *gone; /* snapshots released by this pass */
    size_t n_gone;
    char **dead;                          /* keys of entries left with no snapshot */
    size_t n_dead;
    size_t cap_dead;
} collect_ctx_t;

static void
collect_pool(void *arg, const char *key, void *value)
{
    collect_ctx_t *cc = arg;
    mcplex_worker_pool_t *e = value;
    size_t kept = 0;

    for (size_t i = 0; i < e->n_snaps; i++) {
        int gone = 0;
        for (size_t j = 0; j < cc->n_gone && !gone; j++)
            gone = e->snaps[i] == cc->gone[j];
        if (!gone)
            e->snaps[kept++] = e->snaps[i];
    }
    e->n_snaps = kept;
    if (kept == 0) {
        if (cc->n_dead == cc->cap_dead) {
            cc->cap_dead = cc->cap_dead ? cc->cap_dead * 2 : 8;
            cc->dead = mcplex_realloc(cc->dead, cc->cap_dead * sizeof(*cc->dead));
        }
        cc->dead[cc->n_dead++] = mcplex_strdup(key);
    }
}

size_t
mcplex_worker_collect_pools(mcplex_worker_t *w)
{
    collect_ctx_t cc;
    mcplex_snapshot_t **gone = mcplex_calloc(w->n_pool_snaps + 1, sizeof(*gone));
    size_t kept = 0;

    memset(&cc, 0, sizeof(cc));
    /* A snapshot whose only reference is ours cannot be reached by any session, request or the
     * worker, nor obtained again (a reference is only ever copied from a held one). */
    for (size_t i = 0; i < w->n_pool_snaps; i++) {
        if (atomic_load(&w->pool_snaps[i]->refcount) <= 1)
            gone[cc.n_gone++] = w->pool_snaps[i];
        else
            w->pool_snaps[kept++] = w->pool_snaps[i];
    }
    w->n_pool_snaps = kept;
    if (cc.n_gone > 0) {
        cc.gone = (const mcplex_snapshot_t *const *)gone;
        mcplex_strmap_foreach(&w->http_pools, collect_pool, &cc);
        for (size_t i = 0; i < cc.n_dead; i++) {
            mcplex_log_debug("upstream", "pool '%s' released: no config generation in use needs it",
                             cc.dead[i]);
            pool_entry_free(mcplex_strmap_remove(&w->http_pools, cc.dead[i]));
            free(cc.dead[i]);
        }
        for (size_t i = 0; i < cc.n_gone; i++)
            mcplex_snapshot_unref(gone[i]);
    }
    free(cc.dead);
    free(gone);
    return cc.n_dead;
}

static void
destroy_pool(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    pool_entry_free(value);
}

/* ---- the live swap ------------------------------------------------------------------------------ */

typedef struct swap_ctx {
    const mcplex_snapshot_t *next;
    mcplex_session_t **victims;
    size_t n_victims;
    size_t cap_victims;
    size_t kept;
} swap_ctx_t;

static void
swap_check_session(void *arg, const char *key, void *value)
{
    swap_ctx_t *sc = arg;
    mcplex_session_t *s = value;
    const mcplex_mcp_backend_t *now;

    (void)key;
    if (s->closing)
        return;
    if (s->snapshot != sc->next) {
        now = mcplex_config_find_backend(sc->next, s->backend_name);
        if (now == NULL || !mcplex_config_backend_equal(s->snapshot, s->backend, sc->next, now)) {
            if (sc->n_victims == sc->cap_victims) {
                sc->cap_victims = sc->cap_victims ? sc->cap_victims * 2 : 8;
                sc->victims = mcplex_realloc(sc->victims, sc->cap_victims * sizeof(*sc->victims));
            }
            sc->victims[sc->n_victims++] = s;
            return;
        }
    }
    sc->kept++;
}

/*
 * Ends the sessions whose backend the worker's current snapshot no longer has, or has with a
 * different config. Returns how many were ended; |*kept| (may be NULL) gets how many live on.
 */
static size_t
check_sessions(mcplex_worker_t *w, size_t *kept)
{
    swap_ctx_t sc;

    memset(&sc, 0, sizeof(sc));
    sc.next = w->snapshot;
    mcplex_strmap_foreach(&w->sessions->by_id, swap_check_session, &sc);
    for (size_t i = 0; i < sc.n_victims; i++)
        mcplex_session_close(sc.victims[i], WORKER_SWAP_REASON);
    free(sc.victims);
    if (kept != NULL)
        *kept = sc.kept;
    return sc.n_victims;
}

int
mcplex_worker_apply_snapshot(mcplex_worker_t *w, mcplex_snapshot_t *next, mcplex_errors_t *errs)
{
    mcplex_listener_ctx_t **opened = mcplex_calloc(next->n_listeners + 1, sizeof(*opened));
    mcplex_listener_ctx_t **list = mcplex_calloc(next->n_listeners + 1, sizeof(*list));
    mcplex_snapshot_t *prev = w->snapshot;
    size_t n_opened = 0, n_closed = 0, n_errors = errs->count, kept = 0, ended;
    int rc = -1;

    /* 1. Open what is new or moved; any failure changes nothing. */
    for (size_t i = 0; i < next->n_listeners; i++) {
        const mcplex_listener_cfg_t *l = &next->listeners[i];
        mcplex_listener_ctx_t *cur = find_open_listener(w, l->name);
        char err[512];
        if (cur != NULL && strcmp(cur->address, l->address) == 0 && cur->port == l->port) {
            list[i] = cur;
            continue;
        }
        list[i] = listener_open(w, l, err, sizeof(err));
        if (list[i] == NULL) {
            mcplex_errors_add(errs, NULL, "%s", err);
            continue;
        }
        opened[n_opened++] = list[i];
    }
    if (errs->count > n_errors)
        goto fail;

    /* 2. Commit: the new snapshot; the listeners not kept stop accepting. */
    for (size_t i = 0; i < w->n_listeners; i++) {
        int kept = 0;
        for (size_t j = 0; j < next->n_listeners; j++)
            kept |= list[j] == w->listeners[i];
        if (!kept) {
            mcplex_log_info("main", "listener '%s' (%s:%u) closed by config update",
                            w->listeners[i]->listener_name, w->listeners[i]->address, w->listeners[i]->port);
            listener_retire(w, w->listeners[i]);
            n_closed++;
        }
    }
    free(w->listeners);
    w->listeners = list;
    w->n_listeners = next->n_listeners;
    list = NULL;
    w->snapshot = mcplex_snapshot_ref(next);
    w->swaps++;

    /* 3. Sessions whose backend is gone or changed end; the others keep their snapshot. */
    ended = check_sessions(w, &kept);

    mcplex_log_info("main",
                    "config generation %llu applied (was %llu): %zu listener%s opened, %zu closed; "
                    "%zu session%s kept, %zu ended",
                    (unsigned long long)next->generation, (unsigned long long)prev->generation, n_opened,
                    n_opened == 1 ? "" : "s", n_closed, kept, kept == 1 ? "" : "s", ended);
    mcplex_snapshot_unref(prev);
    /* 4. Pools of generations nobody holds any more. */
    mcplex_worker_collect_pools(w);
    rc = 0;
    goto done;
fail:
    for (size_t i = 0; i < n_opened; i++)
        listener_free(opened[i]);
done:
    free(opened);
    free(list);
    return rc;
}

/* ---- teardown ----------------------------------------------------------------------------------- */

void
mcplex_worker_destroy(mcplex_worker_t *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        listener_free(w->listeners[i]);
    free(w->listeners);
    while (w->retired != NULL) {
        mcplex_listener_ctx_t *next = w->retired->next_retired;
        listener_free(w->retired);
        w->retired = next;
    }
    if (w->reaper != NULL)
        event_free(w->reaper);
    mcplex_session_table_destroy(w->sessions);
    mcplex_strmap_foreach(&w->http_pools, destroy_pool, NULL);
    mcplex_strmap_dispose(&w->http_pools);
    for (size_t i = 0; i < w->n_pool_snaps; i++)
        mcplex_snapshot_unref(w->pool_snaps[i]);
    free(w->pool_snaps);
    if (w->dns != NULL)
        evdns_base_free(w->dns, 0);
    mcplex_snapshot_unref(w->snapshot);
    free(w);
}
