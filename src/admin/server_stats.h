/*
 * server_stats.h - the proxy's own stats with Envoy's names, and the hooks the worker and the
 * HCM call to feed them:
 *   server.uptime, server.live, server.state, server.concurrency, server.version  (gauges)
 *   listener.<address>.downstream_cx_total / downstream_cx_active
 *   http.<stat_prefix>.downstream_cx_total / downstream_cx_active
 *   http.<stat_prefix>.downstream_rq_total, downstream_rq_{1xx..5xx}, downstream_rq_time (ms)
 *   downstream_cx_total, downstream_cx_active, downstream_rq_total (process-wide sums)
 *   listener_manager.total_listeners_active, listener_manager.lds.update_success,
 *   cluster_manager.active_clusters, cluster_manager.cds.update_success,
 *   cluster_manager.cds.version (the config generation)
 *   mcp.sessions_active (all backends, from the session tables)
 * Each listener/HCM pair has one stats block created on first use and kept for the process's
 * life, so connections hold plain pointers to it.
 * Thread: any (atomics); the hooks run on the worker that owns the connection.
 */
#ifndef MCPLEX_ADMIN_SERVER_STATS_H
#define MCPLEX_ADMIN_SERVER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "config/model.h"
#include "http/http.h"

struct mcplex_h1_conn;

/* Records the process start (for server.uptime) and creates the server.* stats. Idempotent. */
void mcplex_server_stats_init(void);
/* Seconds since mcplex_server_stats_init. */
double mcplex_server_stats_uptime_s(void);
/* Refreshes the gauges computed on demand (before every /stats rendering). */
void mcplex_server_stats_refresh(int live, int state, size_t concurrency, size_t sessions_active);

/*
 * Records a config generation that went live: listener_manager.lds.update_success,
 * cluster_manager.cds.update_success, listener_manager.total_listeners_active,
 * cluster_manager.active_clusters and the version gauges. Call after every successful load or
 * swap (main.c at start; the hot-reload and xDS paths after mcplex_worker_apply_snapshot).
 * |rejected| nonzero records an update_rejected instead (|s| may then be NULL).
 */
void mcplex_server_stats_config_applied(const mcplex_snapshot_t *s, int rejected);

/*
 * Envoy's per-cluster upstream stats (cluster.<name>.upstream_*), one persistent block per
 * cluster name: the upstream HTTP pool keeps the pointer and updates the fields with the inline
 * helpers of stats.h (mcplex_stat_inc / _dec / _record) on its own hot path.
 */
typedef struct mcplex_cluster_stats {
    struct mcplex_stat *upstream_rq_total, *upstream_rq_active, *upstream_rq_timeout;
    struct mcplex_stat *upstream_rq_xx[5]; /* upstream_rq_1xx .. upstream_rq_5xx */
    struct mcplex_stat *upstream_rq_time; /* histogram, ms */
    struct mcplex_stat *upstream_cx_total, *upstream_cx_active, *upstream_cx_connect_fail;
    struct mcplex_stat *upstream_cx_connect_timeout, *upstream_cx_destroy;
} mcplex_cluster_stats_t;

/* The stats block of cluster |name| (created on first call; never freed). Thread: any. */
const mcplex_cluster_stats_t *mcplex_cluster_stats_get(const char *name);

/*
 * A downstream HTTP/1.1 connection accepted on listener |listener_name| (bound to |address|,
 * an IP literal, and |port|; Envoy's stat name is listener.<address>_<port>.*) whose HCM has
 * |stat_prefix| (may be NULL): counts it and registers a close callback on |conn|
 * (mcplex_h1_conn_set_close_cb) that decrements the active gauges. NULL |conn| is ignored.
 */
void mcplex_server_stats_h1_conn_open(struct mcplex_h1_conn *conn, const char *listener_name,
                                      const char *address, uint16_t port, const char *stat_prefix);

/*
 * One downstream request reached the HCM of |l| (may be NULL: listener gone). Counts it and
 * observes the stream (mcplex_http_stream_observe) so its response status class, duration and,
 * when the HCM has access logs, an access-log line are recorded on completion.
 */
void mcplex_server_stats_hcm_request(mcplex_http_stream_t *stream, const mcplex_http_request_t *req,
                                     const mcplex_snapshot_t *snap, const mcplex_listener_cfg_t *l);

struct mcplex_access_logger;
/* The access loggers of the HCM observing |stream| (|*n| of them), or NULL when |stream| is not
 * observed by the HCM. For mcplex_access_log_exchange. */
struct mcplex_access_logger *const *mcplex_server_stats_stream_loggers(const mcplex_http_stream_t *stream,
                                                                       size_t *n);

#endif
