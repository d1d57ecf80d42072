/*
 * test_access_log.c - unit tests of the access-log formatter and file sink
 * (src/admin/access_log.c) and of per-component log levels (src/common/log.c): Envoy's default
 * text shape with mcplex's MCP fields, custom text formats with %REQ(...)%, json_format lines
 * with typed values and nulls, the file sink appending whole lines, and level overrides.
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "admin/access_log.h"
#include "admin/mcp_stats.h"
#include "admin/stats.h"
#include "common/log.h"

static const mcplex_http_header_t headers[] = {
    {"user-agent", 10, "curl/8", 6},
    {"mcp-session-id", 14, "S1", 2},
};

static mcplex_http_request_t
sample_request(void)
{
    mcplex_http_request_t r;

    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.path = "/mcp";
    r.query = "a=1";
    r.authority = "127.0.0.1:3000";
    r.headers = headers;
    r.n_headers = 2;
    r.http_major = 1;
    r.http_minor = 1;
    return r;
}

static mcplex_access_log_entry_t
sample_entry(const mcplex_http_request_t *req)
{
    mcplex_access_log_entry_t e;

    memset(&e, 0, sizeof(e));
    e.start_ms = 1700000000123LL; /* 2023-11-14T22:13:20.123Z */
    e.duration_ms = 12.4;
    e.req = req;
    e.status = 200;
    e.bytes_received = 40;
    e.bytes_sent = 99;
    e.session_id = "S1";
    e.mcp_method = "tools/call";
    e.mcp_name = "time_current_time";
    e.mcp_target = "time";
    e.jsonrpc = 1;
    return e;
}

static void
test_default_format(void **state)
{
    mcplex_http_request_t req = sample_request();
    mcplex_access_log_entry_t e = sample_entry(&req);
    char *line;

    (void)state;
    line = mcplex_access_log_format(NULL, NULL, NULL, 0, &e);
    assert_string_equal(line,
                        "[2023-11-14T22:13:20.123Z] \"POST /mcp?a=1 HTTP/1.1\" 200 - 40 99 12 \"curl/8\" "
                        "\"127.0.0.1:3000\" \"S1\" \"tools/call\" \"time_current_time\" \"time\" ok\n");
    free(line);
    /* a plain HTTP line: no MCP fields, no outcome */
    e.jsonrpc = 0;
    e.mcp_method = e.mcp_name = e.mcp_target = NULL;
    e.req = NULL;
    e.status = 404;
    line = mcplex_access_log_format(NULL, NULL, NULL, 0, &e);
    assert_string_equal(
        line, "[2023-11-14T22:13:20.123Z] \"- - -\" 404 - 40 99 12 \"-\" \"-\" \"S1\" \"-\" \"-\" \"-\" -\n");
    free(line);
}

static void
test_custom_text_format(void **state)
{
    mcplex_http_request_t req = sample_request();
    mcplex_access_log_entry_t e = sample_entry(&req);
    char *line;

    (void)state;
    e.jsonrpc_code = -32601;
    line = mcplex_access_log_format("%REQ(USER-AGENT)% %REQ(X-MISSING)% %MCP_OUTCOME% %JSONRPC_CODE% 100%%",
                                    NULL, NULL, 0, &e);
    assert_string_equal(line, "curl/8 - error -32601 100%%\n");
    free(line);
}

static void
test_json_format(void **state)
{
    mcplex_http_request_t req = sample_request();
    mcplex_access_log_entry_t e = sample_entry(&req);
    char *keys[] = {"status", "method", "route", "line", "dur"};
    char *formats[] = {"%RESPONSE_CODE%", "%MCP_METHOD%", "%ROUTE_NAME%", "%REQ(:METHOD)% \"x\"",
                       "%DURATION%"};
    char *line = mcplex_access_log_format(NULL, keys, formats, 5, &e);
    cJSON *j = cJSON_Parse(line);

    (void)state;
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "status")->valueint, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "tools/call");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "route")));
    assert_string_equal(cJSON_GetObjectItem(j, "line")->valuestring, "POST \"x\"");
    assert_int_equal(cJSON_GetObjectItem(j, "dur")->valueint, 12);
    assert_int_equal(line[strlen(line) - 1], '\n');
    cJSON_Delete(j);
    free(line);
}

static void
test_file_sink(void **state)
{
    char path[] = "mcplex-test-access-XXXXXX"; /* in the test's working directory (the build tree) */
    int fd = mkstemp(path);
    mcplex_access_log_cfg_t cfg;
    mcplex_access_logger_t *lg;
    mcplex_http_request_t req = sample_request();
    mcplex_access_log_entry_t e = sample_entry(&req);
    char buf[512];
    FILE *f;
    int lines = 0;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    memset(&cfg, 0, sizeof(cfg));
    cfg.path = path;
    cfg.format = "%MCP_METHOD% %RESPONSE_CODE%\n";
    lg = mcplex_access_logger_get(&cfg);
    assert_non_null(lg);
    assert_ptr_equal(mcplex_access_logger_get(&cfg), lg); /* same path and format: same logger */
    mcplex_access_logger_write(lg, &e);
    mcplex_access_log_exchange(NULL, &e); /* no stream: every configured logger */
    /* the MCP layer's one call: stats and the access-log line */
    mcplex_mcp_observe_exchange(NULL, "tools", "S1", "tools/call", "time_now", "time", "7", 0, 200,
                                mcplex_http_now_us(), 10, 20);
    assert_int_equal(atomic_load(&mcplex_stats_find("mcp.tools.target.time.rq_time")->count), 1);
    f = fopen(path, "r");
    while (fgets(buf, sizeof(buf), f) != NULL) {
        assert_string_equal(buf, "tools/call 200\n");
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 3);
    unlink(path);
}

static void
test_component_levels(void **state)
{
    (void)state;
    mcplex_log_set_level(MCPLEX_LOG_INFO);
    assert_int_equal(mcplex_log_component_level("mcp"), MCPLEX_LOG_INFO);
    assert_int_equal(mcplex_log_set_component_level("target", MCPLEX_LOG_DEBUG), 0);
    assert_int_equal(mcplex_log_component_level("target:time"), MCPLEX_LOG_DEBUG);
    assert_int_equal(mcplex_log_component_level("targets"), MCPLEX_LOG_INFO);
    assert_int_equal(mcplex_log_floor(), MCPLEX_LOG_DEBUG);
    assert_true(MCPLEX_LOG_ENABLED(MCPLEX_LOG_DEBUG));
    mcplex_log_set_level(MCPLEX_LOG_WARN); /* resets every override */
    assert_int_equal(mcplex_log_component_level("target:time"), MCPLEX_LOG_WARN);
    assert_false(MCPLEX_LOG_ENABLED(MCPLEX_LOG_INFO));
    mcplex_log_set_level(MCPLEX_LOG_INFO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_format),   cmocka_unit_test(test_custom_text_format),
        cmocka_unit_test(test_json_format),      cmocka_unit_test(test_file_sink),
        cmocka_unit_test(test_component_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
