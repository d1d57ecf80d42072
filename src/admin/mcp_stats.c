/*
 * mcp_stats.c - MCP stats and target health records (see mcp_stats.h). Thread: any; the target
 * records are guarded by one mutex, the stats are atomics of the store.
 */
#include "admin/mcp_stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/access_log.h"
#include "admin/stats.h"
#include "common/mem.h"
#include "common/strmap.h"

static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;
static mcplex_strmap_t records; /* "<backend>\n<target>" -> mcplex_mcp_target_record_t * */
static int records_ready;

/* Client-chosen names (methods, tools) would let a client grow the stats store without bound:
 * methods outside MCP's own are counted as "other", and at most MCP_MAX_TOOL_STATS tool names get
 * their own counter (later ones count as "other"). */
#define MCP_MAX_TOOL_STATS 1024
static _Atomic int tool_stats_created;

static const char *
known_method(const char *method)
{
    static const char *const methods[] = {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "server/discover",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        NULL,
    };
    for (size_t i = 0; methods[i] != NULL; i++)
        if (strcmp(methods[i], method) == 0)
            return methods[i];
    return "other";
}

void
mcplex_mcp_stats_request(const char *backend, const char *method, const char *tool_or_null)
{
    mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.rq_total", backend));
    if (method != NULL)
        mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.method.{mcp_method}.rq_total", backend,
                                             known_method(method)));
    if (tool_or_null != NULL) {
        char name[512];
        const char *tool = tool_or_null;
        snprintf(name, sizeof(name), "mcp.%s.tool.%s.rq_total", backend, tool_or_null);
        if (mcplex_stats_find(name) == NULL && atomic_fetch_add(&tool_stats_created, 1) >= MCP_MAX_TOOL_STATS)
            tool = "other";
        mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.tool.{mcp_tool}.rq_total", backend, tool));
    }
}

void
mcplex_mcp_stats_response(const char *backend, const char *target_or_null, const char *method,
                          int jsonrpc_code_or_0, double ms)
{
    (void)method;
    mcplex_stat_record(mcplex_stats_histogram("mcp.{mcp_backend}.rq_time", backend), ms);
    if (jsonrpc_code_or_0 != 0) {
        char code[16];
        snprintf(code, sizeof(code), "%d", jsonrpc_code_or_0);
        mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.rq_error", backend));
        mcplex_stat_inc(
            mcplex_stats_counter("mcp.{mcp_backend}.error.{jsonrpc_code}.rq_total", backend, code));
    }
    if (target_or_null != NULL) {
        mcplex_stat_inc(
            mcplex_stats_counter("mcp.{mcp_backend}.target.{mcp_target}.rq_total", backend, target_or_null));
        if (jsonrpc_code_or_0 != 0)
            mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.target.{mcp_target}.rq_error", backend,
                                                 target_or_null));
        mcplex_stat_record(
            mcplex_stats_histogram("mcp.{mcp_backend}.target.{mcp_target}.rq_time", backend, target_or_null),
            ms);
    }
}

void
mcplex_mcp_stats_session_open(const char *backend)
{
    mcplex_stat_inc(mcplex_stats_counter("mcp.{mcp_backend}.sessions_total", backend));
    mcplex_stat_inc(mcplex_stats_gauge("mcp.{mcp_backend}.sessions_active", backend));
}

void
mcplex_mcp_stats_session_close(const char *backend)
{
    mcplex_stat_dec(mcplex_stats_gauge("mcp.{mcp_backend}.sessions_active", backend));
}

static mcplex_mcp_target_record_t *
record_get(const char *backend, const char *target, int create)
{
    char key[512];
    mcplex_mcp_target_record_t *r;

    snprintf(key, sizeof(key), "%s\n%s", backend != NULL ? backend : "", target != NULL ? target : "");
    if (!records_ready) {
        mcplex_strmap_init(&records);
        records_ready = 1;
    }
    r = mcplex_strmap_get(&records, key);
    if (r == NULL && create) {
        r = mcplex_calloc(1, sizeof(*r));
        mcplex_strmap_put(&records, key, r);
    }
    return r;
}

void
mcplex_mcp_stats_target_event(const char *backend, const char *target, mcplex_mcp_target_event_t ev,
                              const char *text_or_null)
{
    mcplex_mcp_target_record_t *r;
    time_t now = time(NULL);

    if (ev == MCPLEX_MCP_TARGET_RESTART)
        mcplex_stat_inc(
            mcplex_stats_counter("mcp.{mcp_backend}.target.{mcp_target}.stdio_restarts", backend, target));
    else if (ev == MCPLEX_MCP_TARGET_FAILURE)
        mcplex_stat_inc(
            mcplex_stats_counter("mcp.{mcp_backend}.target.{mcp_target}.failures", backend, target));
    pthread_mutex_lock(&records_lock);
    r = record_get(backend, target, 1);
    r->last_event_at = now;
    switch (ev) {
    case MCPLEX_MCP_TARGET_READY:
        r->ready++;
        snprintf(r->state, sizeof(r->state), "ready");
        break;
    case MCPLEX_MCP_TARGET_FAILURE:
        r->failures++;
        snprintf(r->state, sizeof(r->state), "failed");
        break;
    case MCPLEX_MCP_TARGET_RESTART:
        r->restarts++;
        snprintf(r->state, sizeof(r->state), "restarting");
        break;
    }
    if (text_or_null != NULL && ev != MCPLEX_MCP_TARGET_READY) {
        snprintf(r->last_error, sizeof(r->last_error), "%s", text_or_null);
        r->last_error_at = now;
    }
    pthread_mutex_unlock(&records_lock);
}

int
mcplex_mcp_stats_target_record(const char *backend, const char *target, mcplex_mcp_target_record_t *out)
{
    mcplex_mcp_target_record_t *r;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&records_lock);
    r = record_get(backend, target, 0);
    if (r != NULL) {
        *out = *r;
        rc = 0;
    }
    pthread_mutex_unlock(&records_lock);
    return rc;
}

void
mcplex_mcp_observe_exchange(struct mcplex_http_stream *stream_or_null, const char *backend,
                            const char *session_id, const char *method, const char *name_or_null,
                            const char *target_or_null, const char *id_raw, int jsonrpc_code_or_0,
                            int http_status, uint64_t started_us, uint64_t bytes_in, uint64_t bytes_out)
{
    double ms = (double)(mcplex_http_now_us() - started_us) / 1000.0;
    mcplex_access_log_entry_t e;

    mcplex_mcp_stats_response(backend, target_or_null, method, jsonrpc_code_or_0, ms);
    memset(&e, 0, sizeof(e));
    e.start_ms = mcplex_access_log_now_ms() - (int64_t)ms;
    e.duration_ms = ms;
    e.req = stream_or_null != NULL ? stream_or_null->observed_req : NULL;
    e.peer = stream_or_null != NULL ? stream_or_null->peer : NULL;
    e.status = http_status;
    e.bytes_received = bytes_in;
    e.bytes_sent = bytes_out;
    e.cluster = backend;
    e.session_id = session_id;
    e.mcp_method = method;
    e.mcp_name = name_or_null;
    e.mcp_target = target_or_null;
    e.jsonrpc_id = id_raw;
    e.jsonrpc = 1;
    e.jsonrpc_code = jsonrpc_code_or_0;
    mcplex_access_log_exchange(stream_or_null, &e);
}

static void
free_record(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

void
mcplex_mcp_stats_reset(void)
{
    pthread_mutex_lock(&records_lock);
    atomic_store(&tool_stats_created, 0);
    if (records_ready) {
        mcplex_strmap_foreach(&records, free_record, NULL);
        mcplex_strmap_dispose(&records);
        records_ready = 0;
    }
    pthread_mutex_unlock(&records_lock);
}
