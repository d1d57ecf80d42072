/*
 * mcp_stats.h - MCP stats and target health records, fed by the MCP layer (session.c, mux.c,
 * endpoint.c call these) and read by the admin (/stats, /stats/prometheus, /mcp/targets).
 *
 * Stat names (Envoy style, tagged segments become Prometheus labels):
 *   mcp.<backend>.rq_total                           requests received (all methods)
 *   mcp.<backend>.method.<method>.rq_total           per JSON-RPC method ("tools/call")
 *   mcp.<backend>.tool.<tool>.rq_total               tools/call per tool (the client's name)
 *   mcp.<backend>.rq_error                           responses that were JSON-RPC errors
 *   mcp.<backend>.error.<code>.rq_total              per JSON-RPC error code
 *   mcp.<backend>.rq_time                            latency histogram (ms)
 *   mcp.<backend>.sessions_total / sessions_active   sessions opened / open now
 *   mcp.<backend>.target.<target>.rq_total           requests answered by a target
 *   mcp.<backend>.target.<target>.rq_error           ... that were JSON-RPC errors
 *   mcp.<backend>.target.<target>.rq_time            latency histogram (ms)
 *   mcp.<backend>.target.<target>.stdio_restarts     stdio target restarts
 *   mcp.<backend>.target.<target>.failures           start/initialize failures and deaths
 * Prometheus: envoy_mcp_method_rq_total{mcp_backend="b",mcp_method="tools/call"} etc.
 *
 * Lookups here go by name through the stats store (a hashed lookup under its mutex); callers on
 * a hot path may instead keep the mcplex_stat_t pointers of stats.h.
 * Thread: any.
 */
#ifndef MCPLEX_ADMIN_MCP_STATS_H
#define MCPLEX_ADMIN_MCP_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One client request of |backend| with JSON-RPC |method|; |tool_or_null| names the tool of a
 * tools/call (as the client wrote it). Call once per request, when it is accepted. */
void mcplex_mcp_stats_request(const char *backend, const char *method, const char *tool_or_null);

/*
 * The answer to one client request: |target_or_null| is the target that answered (NULL for
 * fan-outs and local answers), |jsonrpc_code_or_0| the JSON-RPC error code or 0 for a result,
 * |ms| the time from request to answer in milliseconds.
 */
void mcplex_mcp_stats_response(const char *backend, const char *target_or_null, const char *method,
                               int jsonrpc_code_or_0, double ms);

/* A session of |backend| was initialized / ended. */
void mcplex_mcp_stats_session_open(const char *backend);
void mcplex_mcp_stats_session_close(const char *backend);

typedef enum mcplex_mcp_target_event {
    MCPLEX_MCP_TARGET_READY = 0, /* initialized */
    MCPLEX_MCP_TARGET_FAILURE, /* failed to start or initialize, or died */
    MCPLEX_MCP_TARGET_RESTART, /* a stdio target is being restarted */
} mcplex_mcp_target_event_t;

/* A target of |backend| changed state; |text_or_null| says why (kept as the last error). */
void mcplex_mcp_stats_target_event(const char *backend, const char *target, mcplex_mcp_target_event_t ev,
                                   const char *text_or_null);

/* What /mcp/targets reports of one target from the events above. */
typedef struct mcplex_mcp_target_record {
    char state[16]; /* "ready", "failed", "restarting", or "" (no event yet) */
    uint64_t ready; /* READY events */
    uint64_t failures;
    uint64_t restarts;
    char last_error[256]; /* "" when none */
    time_t last_error_at; /* 0 when none */
    time_t last_event_at;
} mcplex_mcp_target_record_t;

/* Copies the record of |backend|/|target| into |out|; returns 0, or -1 (zeroed) if none. */
int mcplex_mcp_stats_target_record(const char *backend, const char *target, mcplex_mcp_target_record_t *out);

/*
 * The one call the MCP layer makes when it answers a JSON-RPC request (result or error): records
 * mcplex_mcp_stats_response(|backend|, |target_or_null|, |method|, |jsonrpc_code_or_0|, ms) and
 * writes the access-log line of the exchange (mcplex_access_log_exchange on |stream_or_null|,
 * the request's HTTP stream if it is still open). |started_us| is mcplex_http_now_us() taken
 * when the request arrived; |name_or_null| the tool / prompt name or resource URI as the client
 * wrote it; |id_raw| the client's raw JSON-RPC id; |http_status| the status of the HTTP answer
 * (200, or 0 when it went on an SSE stream); |bytes_in| / |bytes_out| the JSON texts' lengths.
 * Thread: the session's worker.
 */
struct mcplex_http_stream;
void mcplex_mcp_observe_exchange(struct mcplex_http_stream *stream_or_null, const char *backend,
                                 const char *session_id, const char *method, const char *name_or_null,
                                 const char *target_or_null, const char *id_raw, int jsonrpc_code_or_0,
                                 int http_status, uint64_t started_us, uint64_t bytes_in, uint64_t bytes_out);

/* Forgets every target record (tests). */
void mcplex_mcp_stats_reset(void);

#endif
