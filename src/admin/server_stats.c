/*
 * server_stats.c - the proxy's own stats and the worker/HCM hooks that feed them (see
 * server_stats.h). Thread: any; stats blocks are created under a mutex and never freed, the hot
 * path is a thread-local cache lookup by pointer plus relaxed atomics.
 */
#include "admin/server_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/access_log.h"
#include "admin/stats.h"
#include "common/mem.h"
#include "http/h1_server.h"

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec started;
static int started_set;

/* Process-wide sums (Envoy has them per listener/HCM; mcplex also keeps the totals). */
static mcplex_stat_t *g_cx_total, *g_cx_active, *g_rq_total;

static void
globals_init(void)
{
    if (g_cx_total == NULL) {
        g_cx_total = mcplex_stats_counter("downstream_cx_total");
        g_cx_active = mcplex_stats_gauge("downstream_cx_active");
        g_rq_total = mcplex_stats_counter("downstream_rq_total");
    }
}

void
mcplex_server_stats_init(void)
{
    pthread_mutex_lock(&blocks_lock);
    if (!started_set) {
        clock_gettime(CLOCK_MONOTONIC, &started);
        started_set = 1;
    }
    globals_init();
    pthread_mutex_unlock(&blocks_lock);
    mcplex_stats_gauge("server.uptime");
    mcplex_stats_gauge("server.live");
    mcplex_stats_gauge("server.state");
    mcplex_stats_gauge("server.concurrency");
}

double
mcplex_server_stats_uptime_s(void)
{
    struct timespec now;

    if (!started_set)
        mcplex_server_stats_init();
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
}

void
mcplex_server_stats_refresh(int live, int state, size_t concurrency, size_t sessions_active)
{
    mcplex_stat_set(mcplex_stats_gauge("server.uptime"), (int64_t)mcplex_server_stats_uptime_s());
    mcplex_stat_set(mcplex_stats_gauge("server.live"), live ? 1 : 0);
    mcplex_stat_set(mcplex_stats_gauge("server.state"), state);
    mcplex_stat_set(mcplex_stats_gauge("server.concurrency"), (int64_t)concurrency);
    mcplex_stat_set(mcplex_stats_gauge("mcp.sessions_active"), (int64_t)sessions_active);
}

void
mcplex_server_stats_config_applied(const mcplex_snapshot_t *s, int rejected)
{
    if (rejected) {
        mcplex_stat_inc(mcplex_stats_counter("listener_manager.lds.update_rejected"));
        mcplex_stat_inc(mcplex_stats_counter("cluster_manager.cds.update_rejected"));
        return;
    }
    mcplex_stat_inc(mcplex_stats_counter("listener_manager.lds.update_attempt"));
    mcplex_stat_inc(mcplex_stats_counter("listener_manager.lds.update_success"));
    mcplex_stat_inc(mcplex_stats_counter("cluster_manager.cds.update_attempt"));
    mcplex_stat_inc(mcplex_stats_counter("cluster_manager.cds.update_success"));
    mcplex_stat_inc(mcplex_stats_counter("listener_manager.listener_added"));
    if (s != NULL) {
        mcplex_stat_set(mcplex_stats_gauge("listener_manager.total_listeners_active"),
                        (int64_t)s->n_listeners);
        mcplex_stat_set(mcplex_stats_gauge("cluster_manager.active_clusters"), (int64_t)s->n_clusters);
        mcplex_stat_set(mcplex_stats_gauge("listener_manager.lds.version"), (int64_t)s->generation);
        mcplex_stat_set(mcplex_stats_gauge("cluster_manager.cds.version"), (int64_t)s->generation);
        /* Every cluster's and MCP backend's stats exist (at 0) from the moment it is configured. */
        for (size_t i = 0; i < s->n_clusters; i++) {
            const char *name = s->clusters[i].name;
            mcplex_cluster_stats_get(name);
            if (s->clusters[i].mcp != NULL) {
                mcplex_stats_counter("mcp.{mcp_backend}.rq_total", name);
                mcplex_stats_counter("mcp.{mcp_backend}.rq_error", name);
                mcplex_stats_counter("mcp.{mcp_backend}.sessions_total", name);
                mcplex_stats_gauge("mcp.{mcp_backend}.sessions_active", name);
            }
        }
    }
}

/* ---- clusters ------------------------------------------------------------------------------- */

typedef struct cluster_block {
    struct cluster_block *next;
    char *name;
    mcplex_cluster_stats_t st;
} cluster_block_t;

static cluster_block_t *cluster_blocks;

const mcplex_cluster_stats_t *
mcplex_cluster_stats_get(const char *name)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    cluster_block_t *b;

    pthread_mutex_lock(&blocks_lock);
    for (b = cluster_blocks; b != NULL; b = b->next)
        if (strcmp(b->name, name) == 0)
            break;
    if (b == NULL) {
        b = mcplex_calloc(1, sizeof(*b));
        b->name = mcplex_strdup(name);
#define CL_COUNTER(f) b->st.f = mcplex_stats_counter("cluster.{envoy_cluster_name}." #f, name)
#define CL_GAUGE(f) b->st.f = mcplex_stats_gauge("cluster.{envoy_cluster_name}." #f, name)
        CL_COUNTER(upstream_rq_total);
        CL_GAUGE(upstream_rq_active);
        CL_COUNTER(upstream_rq_timeout);
        CL_COUNTER(upstream_cx_total);
        CL_GAUGE(upstream_cx_active);
        CL_COUNTER(upstream_cx_connect_fail);
        CL_COUNTER(upstream_cx_connect_timeout);
        CL_COUNTER(upstream_cx_destroy);
#undef CL_COUNTER
#undef CL_GAUGE
        for (int i = 0; i < 5; i++) {
            char tmpl[96];
            snprintf(tmpl, sizeof(tmpl), "cluster.{envoy_cluster_name}.upstream_rq_%s", classes[i]);
            b->st.upstream_rq_xx[i] = mcplex_stats_counter(tmpl, name);
        }
        b->st.upstream_rq_time =
            mcplex_stats_histogram("cluster.{envoy_cluster_name}.upstream_rq_time", name);
        b->next = cluster_blocks;
        cluster_blocks = b;
    }
    pthread_mutex_unlock(&blocks_lock);
    return &b->st;
}

/* ---- connections ---------------------------------------------------------------------------- */

typedef struct cx_block {
    struct cx_block *next;
    char *key;
    mcplex_stat_t *listener_cx_total, *listener_cx_active;
    mcplex_stat_t *http_cx_total, *http_cx_active;
} cx_block_t;

static cx_block_t *cx_blocks;

static void
cx_closed(void *arg, mcplex_h1_conn_t *conn)
{
    cx_block_t *b = arg;

    (void)conn;
    mcplex_stat_dec(b->listener_cx_active);
    mcplex_stat_dec(b->http_cx_active);
    mcplex_stat_dec(g_cx_active);
}

void
mcplex_server_stats_h1_conn_open(struct mcplex_h1_conn *conn, const char *listener_name, const char *address,
                                 uint16_t port, const char *stat_prefix)
{
    char key[512], addr[300];
    cx_block_t *b;

    snprintf(addr, sizeof(addr), "%s_%u", address != NULL ? address : "", (unsigned)port);
    snprintf(key, sizeof(key), "%s\n%s\n%s", listener_name != NULL ? listener_name : "", addr,
             stat_prefix != NULL ? stat_prefix : "");
    pthread_mutex_lock(&blocks_lock);
    globals_init();
    for (b = cx_blocks; b != NULL; b = b->next)
        if (strcmp(b->key, key) == 0)
            break;
    if (b == NULL) {
        b = mcplex_calloc(1, sizeof(*b));
        b->key = mcplex_strdup(key);
        b->listener_cx_total =
            mcplex_stats_counter("listener.{envoy_listener_address}.downstream_cx_total", addr);
        b->listener_cx_active =
            mcplex_stats_gauge("listener.{envoy_listener_address}.downstream_cx_active", addr);
        if (stat_prefix != NULL) {
            b->http_cx_total = mcplex_stats_counter(
                "http.{envoy_http_conn_manager_prefix}.downstream_cx_total", stat_prefix);
            b->http_cx_active =
                mcplex_stats_gauge("http.{envoy_http_conn_manager_prefix}.downstream_cx_active", stat_prefix);
        }
        b->next = cx_blocks;
        cx_blocks = b;
    }
    pthread_mutex_unlock(&blocks_lock);
    if (conn == NULL)
        return;
    mcplex_stat_inc(g_cx_total);
    mcplex_stat_add(g_cx_active, 1);
    mcplex_stat_inc(b->listener_cx_total);
    mcplex_stat_add(b->listener_cx_active, 1);
    mcplex_stat_inc(b->http_cx_total);
    mcplex_stat_add(b->http_cx_active, 1);
    mcplex_h1_conn_set_close_cb(conn, cx_closed, b);
}

/* ---- requests --------------------------------------------------------------------------------- */

#define HCM_BLOCK_MAGIC 0x48434d42u /* "HCMB" */

typedef struct hcm_block {
    uint32_t magic;
    struct hcm_block *next;
    char *key;
    mcplex_stat_t *rq_total, *rq_xx[5], *rq_time, *rq_completed;
    mcplex_access_logger_t **loggers;
    size_t n_loggers;
} hcm_block_t;

static hcm_block_t *hcm_blocks;

/* The per-thread cache: (listener config pointer, snapshot generation) -> block. */
#define HCM_CACHE 8
static _Thread_local struct {
    const mcplex_listener_cfg_t *l;
    uint64_t generation;
    hcm_block_t *b;
} hcm_cache[HCM_CACHE];
static _Thread_local unsigned hcm_cache_next;

static hcm_block_t *
hcm_block_for(const mcplex_snapshot_t *snap, const mcplex_listener_cfg_t *l)
{
    const char *prefix = l != NULL && l->hcm.stat_prefix != NULL ? l->hcm.stat_prefix : "";
    char *key = NULL;
    size_t len = 0;
    FILE *f;
    hcm_block_t *b;

    for (unsigned i = 0; i < HCM_CACHE; i++)
        if (hcm_cache[i].b != NULL && hcm_cache[i].l == l && hcm_cache[i].generation == snap->generation)
            return hcm_cache[i].b;
    f = open_memstream(&key, &len);
    if (f == NULL)
        abort();
    fprintf(f, "%s\n", prefix);
    for (size_t i = 0; l != NULL && i < l->hcm.n_access_logs; i++) {
        const mcplex_access_log_cfg_t *a = &l->hcm.access_logs[i];
        fprintf(f, "%s\n%s\n", a->path, a->format != NULL ? a->format : "");
        for (size_t k = 0; k < a->n_json; k++)
            fprintf(f, "%s\t%s\n", a->json_keys[k], a->json_formats[k]);
    }
    fclose(f);
    pthread_mutex_lock(&blocks_lock);
    globals_init();
    for (b = hcm_blocks; b != NULL; b = b->next)
        if (strcmp(b->key, key) == 0)
            break;
    if (b == NULL) {
        static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
        b = mcplex_calloc(1, sizeof(*b));
        b->magic = HCM_BLOCK_MAGIC;
        b->key = key;
        key = NULL;
        b->rq_total =
            mcplex_stats_counter("http.{envoy_http_conn_manager_prefix}.downstream_rq_total", prefix);
        b->rq_completed =
            mcplex_stats_counter("http.{envoy_http_conn_manager_prefix}.downstream_rq_completed", prefix);
        for (int i = 0; i < 5; i++) {
            char tmpl[128];
            snprintf(tmpl, sizeof(tmpl), "http.{envoy_http_conn_manager_prefix}.downstream_rq_%s",
                     classes[i]);
            b->rq_xx[i] = mcplex_stats_counter(tmpl, prefix);
        }
        b->rq_time =
            mcplex_stats_histogram("http.{envoy_http_conn_manager_prefix}.downstream_rq_time", prefix);
        if (l != NULL && l->hcm.n_access_logs > 0) {
            b->loggers = mcplex_calloc(l->hcm.n_access_logs, sizeof(*b->loggers));
            for (size_t i = 0; i < l->hcm.n_access_logs; i++) {
                mcplex_access_logger_t *lg = mcplex_access_logger_get(&l->hcm.access_logs[i]);
                if (lg != NULL)
                    b->loggers[b->n_loggers++] = lg;
            }
        }
        b->next = hcm_blocks;
        hcm_blocks = b;
    }
    pthread_mutex_unlock(&blocks_lock);
    free(key);
    hcm_cache[hcm_cache_next % HCM_CACHE].l = l;
    hcm_cache[hcm_cache_next % HCM_CACHE].generation = snap->generation;
    hcm_cache[hcm_cache_next % HCM_CACHE].b = b;
    hcm_cache_next++;
    return b;
}

static void
hcm_complete(void *arg, mcplex_http_stream_t *stream, int status, uint64_t body_bytes, uint64_t started_us)
{
    hcm_block_t *b = arg;
    double ms = (double)(mcplex_http_now_us() - started_us) / 1000.0;

    if (status >= 100 && status < 600)
        mcplex_stat_inc(b->rq_xx[status / 100 - 1]);
    mcplex_stat_inc(b->rq_completed);
    mcplex_stat_record(b->rq_time, ms);
    if (b->n_loggers > 0 && !stream->exchange_logged) {
        mcplex_access_log_entry_t e;
        const mcplex_http_request_t *req = stream->observed_req;
        memset(&e, 0, sizeof(e));
        e.start_ms = mcplex_access_log_now_ms() - (int64_t)ms;
        e.duration_ms = ms;
        e.req = req;
        e.peer = stream->peer;
        e.status = status;
        e.bytes_received = req != NULL ? req->body_len : 0;
        e.bytes_sent = body_bytes;
        e.session_id = req != NULL ? mcplex_http_request_header(req, "mcp-session-id") : NULL;
        for (size_t i = 0; i < b->n_loggers; i++)
            mcplex_access_logger_write(b->loggers[i], &e);
    }
}

void
mcplex_server_stats_hcm_request(mcplex_http_stream_t *stream, const mcplex_http_request_t *req,
                                const mcplex_snapshot_t *snap, const mcplex_listener_cfg_t *l)
{
    hcm_block_t *b;

    if (g_rq_total == NULL)
        mcplex_server_stats_init();
    mcplex_stat_inc(g_rq_total);
    if (l == NULL)
        return; /* the listener is gone (removed by a config update): no HCM to count it under */
    b = hcm_block_for(snap, l);
    mcplex_stat_inc(b->rq_total);
    mcplex_http_stream_observe(stream, req, hcm_complete, b);
}

mcplex_access_logger_t *const *
mcplex_server_stats_stream_loggers(const mcplex_http_stream_t *stream, size_t *n)
{
    const hcm_block_t *b = stream->on_complete_arg;

    *n = 0;
    if (stream->observed_req == NULL || b == NULL || b->magic != HCM_BLOCK_MAGIC)
        return NULL;
    *n = b->n_loggers;
    return b->loggers;
}
