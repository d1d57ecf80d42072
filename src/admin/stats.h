/*
 * stats.h - the stats store: counters, gauges and histograms named as Envoy names them
 * ("cluster.<name>.upstream_rq_total", "http.<stat_prefix>.downstream_rq_2xx", ...), and their
 * three renderings from Envoy's admin API: /stats text ("name: value" lines), /stats?format=json
 * and /stats/prometheus (Prometheus text exposition format 0.0.4, with Envoy's tag extraction:
 * the tagged segments of a name become labels, e.g. envoy_cluster_upstream_rq_total
 * {envoy_cluster_name="x"}).
 *
 * Owns: one process-wide store. Stats are created on first lookup (under a mutex) and live until
 * process exit, as in Envoy, so a pointer obtained once (at config load, connection or session
 * creation) stays valid and the hot path is one relaxed atomic add, no lock and no name lookup.
 * Thread: any (every function here is thread-safe).
 */
#ifndef MCPLEX_ADMIN_STATS_H
#define MCPLEX_ADMIN_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mcplex_stat_type {
    MCPLEX_STAT_COUNTER = 0,
    MCPLEX_STAT_GAUGE,
    MCPLEX_STAT_HISTOGRAM,
} mcplex_stat_type_t;

/* Envoy's default histogram bucket bounds (ms for the *_time / *_ms histograms). */
#define MCPLEX_STATS_N_BUCKETS 19
extern const double mcplex_stats_bucket_bounds[MCPLEX_STATS_N_BUCKETS];

/* One stat. Only the fields below are for callers' inline updates; treat the rest as opaque. */
typedef struct mcplex_stat {
    mcplex_stat_type_t type;
    _Atomic uint64_t value; /* counter: the total; gauge: the value (two's complement) */
    _Atomic int used; /* ever updated (Envoy's usedonly) */
    /* histogram: per-bucket counts (the last one is +Inf), sum in microunits, count */
    _Atomic uint64_t buckets[MCPLEX_STATS_N_BUCKETS + 1];
    _Atomic uint64_t sum_micro;
    _Atomic uint64_t count;
    char *name; /* Envoy name, e.g. "cluster.foo.upstream_rq_total" */
    char *prom_name; /* tag-extracted name, e.g. "envoy_cluster_upstream_rq_total" */
    char *prom_labels; /* e.g. envoy_cluster_name="foo" (escaped), or "" */
} mcplex_stat_t;

/*
 * Finds or creates the stat named by |tmpl|, a dotted Envoy name in which each "{tag}" segment
 * is replaced by the next of the const char * arguments (one per placeholder; NULL becomes "").
 * Example: mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", "tools")
 * names "cluster.tools.upstream_rq_total", exported to Prometheus as
 * envoy_cluster_upstream_rq_total{envoy_cluster_name="tools"}. A stat found under the same name
 * with another type is returned as is (the first creation wins). Never returns NULL (aborts on
 * OOM). The pointer is valid until mcplex_stats_reset (tests only).
 */
mcplex_stat_t *mcplex_stats_counter(const char *tmpl, ...);
mcplex_stat_t *mcplex_stats_gauge(const char *tmpl, ...);
mcplex_stat_t *mcplex_stats_histogram(const char *tmpl, ...);

/* Looks a stat up by its full Envoy name without creating it; NULL when absent. */
mcplex_stat_t *mcplex_stats_find(const char *name);

/* Hot-path updates: one relaxed atomic operation each; a NULL stat is a no-op. */
static inline void
mcplex_stat_add(mcplex_stat_t *s, uint64_t n)
{
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
        atomic_store_explicit(&s->used, 1, memory_order_relaxed);
    }
}
static inline void
mcplex_stat_inc(mcplex_stat_t *s)
{
    mcplex_stat_add(s, 1);
}
/* Gauges: decrement / set. */
static inline void
mcplex_stat_dec(mcplex_stat_t *s)
{
    if (s != NULL)
        atomic_fetch_sub_explicit(&s->value, 1, memory_order_relaxed);
}
static inline void
mcplex_stat_set(mcplex_stat_t *s, int64_t v)
{
    if (s != NULL) {
        atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
        atomic_store_explicit(&s->used, 1, memory_order_relaxed);
    }
}
/* Current value (a gauge is signed: cast to int64_t). */
static inline uint64_t
mcplex_stat_value(const mcplex_stat_t *s)
{
    return s != NULL ? atomic_load_explicit(&((mcplex_stat_t *)s)->value, memory_order_relaxed) : 0;
}

/* Records |value| (ms for time histograms) in histogram |s|: a few relaxed atomic adds. */
void mcplex_stat_record(mcplex_stat_t *s, double value);

/*
 * Estimates quantile |q| (0..1) of histogram |s| by linear interpolation inside Envoy's buckets.
 * Returns NAN when nothing was recorded.
 */
double mcplex_stat_quantile(const mcplex_stat_t *s, double q);

/* ---- renderings (Envoy admin API); each returns a malloc'ed NUL-terminated text ---------- */

typedef struct mcplex_stats_query {
    const char *filter; /* POSIX extended regex on the Envoy name (?filter=), or NULL */
    int used_only; /* ?usedonly: only stats ever updated */
    const char *type; /* ?type=Counters|Gauges|Histograms|All, or NULL (all) */
} mcplex_stats_query_t;

/*
 * /stats: "name: value\n" for counters and gauges, then histograms as
 * "name: P0(nan,v) P25(nan,v) P50 P75 P90 P95 P99 P99.5 P99.9 P100" (Envoy's quantile summary;
 * "No recorded values" when empty), sorted by name. Returns NULL with a reason in |err| when the
 * filter regex does not compile.
 */
char *mcplex_stats_render_text(const mcplex_stats_query_t *q, char *err, size_t err_len);
/* /stats?format=json: {"stats":[{"name","value"}..., {"histograms":{"supported_quantiles",
 * "computed_quantiles":[{"name","values":[{"interval","cumulative"}]}]}}]}. */
char *mcplex_stats_render_json(const mcplex_stats_query_t *q, char *err, size_t err_len);
/* /stats/prometheus: Prometheus text format 0.0.4 with # HELP and # TYPE per family; counters
 * end in _total as the exposition format requires; histograms as _bucket{le=..}/_sum/_count. */
char *mcplex_stats_render_prometheus(const mcplex_stats_query_t *q, char *err, size_t err_len);

/* Envoy's /reset_counters: sets every counter to 0 (gauges and histograms are kept). */
void mcplex_stats_reset_counters(void);

/* Frees every stat (tests only: invalidates every pointer handed out). */
void mcplex_stats_reset(void);

#endif
