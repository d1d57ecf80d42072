/*
 * test_stats.c - unit tests of the stats store (src/admin/stats.c) and the MCP stats
 * (src/admin/mcp_stats.c): Envoy names from tagged templates, one stat per name, counters and
 * gauges under concurrent updates, histogram quantiles, and the three renderings (/stats text
 * with ?filter=, ?format=json, Prometheus exposition with labels, HELP/TYPE and _total).
 * Threads: the concurrency test runs 4 threads; everything else is single-threaded.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "admin/mcp_stats.h"
#include "admin/stats.h"

static int
reset(void **state)
{
    (void)state;
    mcplex_stats_reset();
    mcplex_mcp_stats_reset();
    return 0;
}

static void
test_names_and_identity(void **state)
{
    mcplex_stat_t *a = mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", "tools");
    mcplex_stat_t *b = mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", "tools");
    mcplex_stat_t *c = mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", "other");

    (void)state;
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_string_equal(a->name, "cluster.tools.upstream_rq_total");
    assert_string_equal(a->prom_name, "envoy_cluster_upstream_rq_total");
    assert_string_equal(a->prom_labels, "envoy_cluster_name=\"tools\"");
    assert_ptr_equal(mcplex_stats_find("cluster.tools.upstream_rq_total"), a);
    assert_null(mcplex_stats_find("cluster.nope.upstream_rq_total"));
    /* label values are escaped; names are sanitised */
    c = mcplex_stats_gauge("mcp.{mcp_backend}.sessions_active", "a\"b\\c");
    assert_string_equal(c->prom_labels, "mcp_backend=\"a\\\"b\\\\c\"");
    c = mcplex_stats_counter("listener_manager.lds.update_success");
    assert_string_equal(c->prom_name, "envoy_listener_manager_lds_update_success");
    assert_string_equal(c->prom_labels, "");
}

static void *
bump(void *arg)
{
    mcplex_stat_t *s = arg;
    for (int i = 0; i < 100000; i++)
        mcplex_stat_inc(s);
    return NULL;
}

static void
test_counters_gauges_concurrent(void **state)
{
    mcplex_stat_t *c = mcplex_stats_counter("downstream_rq_total");
    mcplex_stat_t *g = mcplex_stats_gauge("downstream_cx_active");
    pthread_t t[4];

    (void)state;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, bump, c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(mcplex_stat_value(c), 400000);
    mcplex_stat_dec(g);
    mcplex_stat_dec(g);
    mcplex_stat_inc(g);
    assert_int_equal((int64_t)mcplex_stat_value(g), -1);
    mcplex_stat_set(g, 7);
    assert_int_equal((int64_t)mcplex_stat_value(g), 7);
    mcplex_stats_reset_counters(); /* counters only */
    assert_int_equal(mcplex_stat_value(c), 0);
    assert_int_equal((int64_t)mcplex_stat_value(g), 7);
    mcplex_stat_inc(NULL); /* a NULL stat is a no-op */
}

static void
test_histogram_quantiles(void **state)
{
    mcplex_stat_t *h =
        mcplex_stats_histogram("http.{envoy_http_conn_manager_prefix}.downstream_rq_time", "x");

    (void)state;
    assert_true(isnan(mcplex_stat_quantile(h, 0.5)));
    for (int i = 0; i < 100; i++)
        mcplex_stat_record(h, 3); /* bucket (1, 5] */
    mcplex_stat_record(h, 2000); /* bucket (1000, 2500] */
    assert_true(mcplex_stat_quantile(h, 0.5) > 1 && mcplex_stat_quantile(h, 0.5) <= 5);
    assert_true(mcplex_stat_quantile(h, 1.0) > 1000 && mcplex_stat_quantile(h, 1.0) <= 2500);
    assert_int_equal(atomic_load(&h->count), 101);
    assert_int_equal(atomic_load(&h->sum_micro), (uint64_t)(300 + 2000) * 1000000u);
}

static void
test_render_text_and_filter(void **state)
{
    char err[128];
    char *text;
    mcplex_stats_query_t q = {NULL, 0, NULL};

    (void)state;
    mcplex_stat_add(mcplex_stats_counter("http.{envoy_http_conn_manager_prefix}.downstream_rq_2xx", "in"), 3);
    mcplex_stat_set(mcplex_stats_gauge("server.live"), 1);
    mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", "c");
    mcplex_stats_histogram("http.{envoy_http_conn_manager_prefix}.downstream_rq_time", "in");
    text = mcplex_stats_render_text(&q, err, sizeof(err));
    assert_non_null(text);
    assert_string_equal(text, "cluster.c.upstream_rq_total: 0\n"
                              "http.in.downstream_rq_2xx: 3\n"
                              "server.live: 1\n"
                              "http.in.downstream_rq_time: No recorded values\n");
    free(text);
    q.filter = "^http\\.";
    q.type = "Counters";
    text = mcplex_stats_render_text(&q, err, sizeof(err));
    assert_string_equal(text, "http.in.downstream_rq_2xx: 3\n");
    free(text);
    q.filter = NULL;
    q.type = NULL;
    q.used_only = 1;
    text = mcplex_stats_render_text(&q, err, sizeof(err));
    assert_string_equal(text, "http.in.downstream_rq_2xx: 3\nserver.live: 1\n");
    free(text);
    q.filter = "(";
    assert_null(mcplex_stats_render_text(&q, err, sizeof(err)));
    assert_non_null(strstr(err, "regex"));
}

static void
test_render_json(void **state)
{
    char err[128];
    mcplex_stats_query_t q = {NULL, 0, NULL};
    char *text;
    cJSON *doc, *stats, *last;

    (void)state;
    mcplex_stat_add(mcplex_stats_counter("downstream_rq_total"), 5);
    mcplex_stat_record(mcplex_stats_histogram("mcp.{mcp_backend}.rq_time", "b"), 12);
    text = mcplex_stats_render_json(&q, err, sizeof(err));
    doc = cJSON_Parse(text);
    assert_non_null(doc);
    stats = cJSON_GetObjectItem(doc, "stats");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(stats, 0), "name")->valuestring,
                        "downstream_rq_total");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(stats, 0), "value")->valueint, 5);
    last = cJSON_GetObjectItem(cJSON_GetArrayItem(stats, cJSON_GetArraySize(stats) - 1), "histograms");
    assert_non_null(last);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(last, "supported_quantiles")), 10);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(last, "computed_quantiles"), 0), "name")
            ->valuestring,
        "mcp.b.rq_time");
    cJSON_Delete(doc);
    free(text);
}

static void
test_render_prometheus(void **state)
{
    char err[128];
    mcplex_stats_query_t q = {NULL, 0, NULL};
    char *text;

    (void)state;
    mcplex_stat_add(mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_cx_destroy", "a"), 2);
    mcplex_stat_add(mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_cx_destroy", "b"), 1);
    mcplex_stat_set(mcplex_stats_gauge("server.live"), 1);
    mcplex_stat_record(mcplex_stats_histogram("mcp.{mcp_backend}.rq_time", "b"), 0.7);
    text = mcplex_stats_render_prometheus(&q, err, sizeof(err));
    assert_non_null(text);
    /* one HELP/TYPE per family, counters get _total, labels from the tags */
    assert_non_null(strstr(text,
                           "# HELP envoy_cluster_upstream_cx_destroy_total cluster.a.upstream_cx_destroy\n"
                           "# TYPE envoy_cluster_upstream_cx_destroy_total counter\n"
                           "envoy_cluster_upstream_cx_destroy_total{envoy_cluster_name=\"a\"} 2\n"
                           "envoy_cluster_upstream_cx_destroy_total{envoy_cluster_name=\"b\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE envoy_server_live gauge\nenvoy_server_live 1\n"));
    assert_non_null(strstr(text, "# TYPE envoy_mcp_rq_time histogram\n"
                                 "envoy_mcp_rq_time_bucket{mcp_backend=\"b\",le=\"0.5\"} 0\n"
                                 "envoy_mcp_rq_time_bucket{mcp_backend=\"b\",le=\"1\"} 1\n"));
    assert_non_null(strstr(text, "envoy_mcp_rq_time_bucket{mcp_backend=\"b\",le=\"3600000\"} 1\n"
                                 "envoy_mcp_rq_time_bucket{mcp_backend=\"b\",le=\"+Inf\"} 1\n"
                                 "envoy_mcp_rq_time_sum{mcp_backend=\"b\"} 0.7\n"
                                 "envoy_mcp_rq_time_count{mcp_backend=\"b\"} 1\n"));
    free(text);
}

static void
test_mcp_stats(void **state)
{
    mcplex_mcp_target_record_t rec;

    (void)state;
    mcplex_mcp_stats_request("tools", "tools/call", "everything__echo");
    mcplex_mcp_stats_request("tools", "tools/call", "everything__echo");
    mcplex_mcp_stats_request("tools", "tools/list", NULL);
    mcplex_mcp_stats_response("tools", "everything", "tools/call", 0, 4.0);
    mcplex_mcp_stats_response("tools", "everything", "tools/call", -32602, 1.0);
    mcplex_mcp_stats_session_open("tools");
    mcplex_mcp_stats_session_open("tools");
    mcplex_mcp_stats_session_close("tools");
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.rq_total")), 3);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.method.tools/call.rq_total")), 2);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.tool.everything__echo.rq_total")), 2);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.error.-32602.rq_total")), 1);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.target.everything.rq_error")), 1);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.sessions_active")), 1);
    assert_int_equal(atomic_load(&mcplex_stats_find("mcp.tools.target.everything.rq_time")->count), 2);

    /* client-chosen method names outside MCP's are not stats names of their own */
    mcplex_mcp_stats_request("tools", "x/../evil", NULL);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.method.other.rq_total")), 1);
    assert_null(mcplex_stats_find("mcp.tools.method.x/../evil.rq_total"));

    assert_int_equal(mcplex_mcp_stats_target_record("tools", "time", &rec), -1);
    mcplex_mcp_stats_target_event("tools", "time", MCPLEX_MCP_TARGET_READY, NULL);
    mcplex_mcp_stats_target_event("tools", "time", MCPLEX_MCP_TARGET_FAILURE, "child exited with status 1");
    mcplex_mcp_stats_target_event("tools", "time", MCPLEX_MCP_TARGET_RESTART, "restart 1");
    assert_int_equal(mcplex_mcp_stats_target_record("tools", "time", &rec), 0);
    assert_string_equal(rec.state, "restarting");
    assert_int_equal(rec.failures, 1);
    assert_int_equal(rec.restarts, 1);
    assert_string_equal(rec.last_error, "restart 1");
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.target.time.stdio_restarts")), 1);
    assert_int_equal(mcplex_stat_value(mcplex_stats_find("mcp.tools.target.time.failures")), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_names_and_identity, reset),
        cmocka_unit_test_setup(test_counters_gauges_concurrent, reset),
        cmocka_unit_test_setup(test_histogram_quantiles, reset),
        cmocka_unit_test_setup(test_render_text_and_filter, reset),
        cmocka_unit_test_setup(test_render_json, reset),
        cmocka_unit_test_setup(test_render_prometheus, reset),
        cmocka_unit_test_setup(test_mcp_stats, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
