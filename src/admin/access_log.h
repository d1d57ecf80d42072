/*
 * access_log.h - access logs: Envoy's HCM access_log with the file sink
 * (envoy.access_loggers.file, envoy.extensions.access_loggers.file.v3.FileAccessLog: path, and
 * format / log_format.text_format / json_format / log_format.json_format), one line per HTTP
 * JSON-RPC exchange (logged by the MCP layer, with the MCP fields) and one per other HTTP
 * request (logged by the HCM: plain routes, rejected or malformed requests, DELETE, GET streams).
 *
 * Format: Envoy's command operators, the subset mcplex knows: %START_TIME%, %REQ(H)% (":METHOD",
 * ":PATH", ":AUTHORITY", or any request header), %PROTOCOL%, %RESPONSE_CODE%, %RESPONSE_FLAGS%,
 * %BYTES_RECEIVED%, %BYTES_SENT%, %DURATION% (ms), %DOWNSTREAM_REMOTE_ADDRESS%, %ROUTE_NAME%,
 * %UPSTREAM_CLUSTER%, and mcplex's MCP operators %MCP_SESSION_ID%, %MCP_METHOD%, %MCP_NAME%
 * (tool, prompt or resource URI), %MCP_TARGET%, %MCP_BACKEND%, %JSONRPC_ID%, %JSONRPC_CODE%,
 * %MCP_OUTCOME% ("ok", "error", or "-" for plain HTTP lines). Unknown or empty values print "-"
 * (text) or null (JSON), as Envoy does. Default text format (Envoy's, plus the MCP fields):
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
 *   %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(USER-AGENT)%" "%REQ(:AUTHORITY)%"
 *   "%MCP_SESSION_ID%" "%MCP_METHOD%" "%MCP_NAME%" "%MCP_TARGET%" %MCP_OUTCOME%
 * json_format: one JSON object per line, each key's value formatted from its format string.
 *
 * Owns: the open log files (process-wide, one descriptor per path, opened O_APPEND; each line is
 * one write(2), so lines from several threads never interleave). Thread: any.
 */
#ifndef MCPLEX_ADMIN_ACCESS_LOG_H
#define MCPLEX_ADMIN_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/model.h"
#include "http/http.h"

/* One line's data. Every pointer may be NULL (printed as "-"). Strings are borrowed. */
typedef struct mcplex_access_log_entry {
    int64_t start_ms; /* wall clock, ms since the epoch */
    double duration_ms;
    const mcplex_http_request_t *req; /* for %REQ(...)%, %PROTOCOL%, :METHOD, :PATH */
    const char *peer; /* downstream remote address */
    int status; /* HTTP status sent, 0 = none */
    uint64_t bytes_received, bytes_sent;
    const char *route_name;
    const char *cluster; /* upstream cluster / MCP backend */
    /* MCP (JSON-RPC exchange lines) */
    const char *session_id;
    const char *mcp_method; /* "tools/call" */
    const char *mcp_name; /* tool / prompt name or resource URI */
    const char *mcp_target; /* target that answered */
    const char *jsonrpc_id; /* raw id text */
    int jsonrpc; /* 1 for a JSON-RPC exchange line */
    int jsonrpc_code; /* error code, 0 = result */
} mcplex_access_log_entry_t;

/* A configured access log (persistent for the process's life once created). */
typedef struct mcplex_access_logger mcplex_access_logger_t;

/*
 * Returns the logger for |cfg| (found by its path and format, or created: the file is opened
 * O_WRONLY|O_APPEND|O_CREAT 0644, "/dev/stdout" and "/dev/stderr" included). NULL when the file
 * cannot be opened (logged once as an error). Thread: any.
 */
mcplex_access_logger_t *mcplex_access_logger_get(const mcplex_access_log_cfg_t *cfg);

/* Formats |e| with |lg|'s format and appends the line. */
void mcplex_access_logger_write(mcplex_access_logger_t *lg, const mcplex_access_log_entry_t *e);

/*
 * Formats |e| with |format| (text; NULL = the default) or with the |n_json| key/format pairs
 * (json; when n_json > 0) into a malloc'ed line ending in '\n'. Exposed for tests.
 */
char *mcplex_access_log_format(const char *format, char *const *json_keys, char *const *json_formats,
                               size_t n_json, const mcplex_access_log_entry_t *e);

/*
 * One JSON-RPC exchange, for the MCP layer to call once per client request when its answer is
 * sent (or fails): the line goes to the access logs of the HCM whose request carried it
 * (|stream|, if still open and observed by the HCM), or to every access log configured when
 * |stream| is NULL. |e->jsonrpc| is forced to 1. Thread: the worker.
 */
void mcplex_access_log_exchange(mcplex_http_stream_t *stream, const mcplex_access_log_entry_t *e);

/*
 * Translates an HCM's access_log[] (envoy.config.accesslog.v3.AccessLog; |logs| are those
 * messages, |n| of them) into |*out| / |*n_out| (malloc'ed; freed with the snapshot). Accepts
 * typed_config envoy.extensions.access_loggers.file.v3.FileAccessLog with path (required) and
 * format, json_format, log_format.text_format or log_format.json_format (string values);
 * AccessLog.filter and other sinks are errors at "<path>[i]...". Returns 0, or -1 with every
 * error added to |errs| (|*out| NULL). Pure code (config loading thread).
 */
struct mcplex_errors;
int mcplex_access_log_translate(const void *const *logs, size_t n, const char *path,
                                mcplex_access_log_cfg_t **out, size_t *n_out, struct mcplex_errors *errs);

/* Wall clock in ms since the epoch. */
int64_t mcplex_access_log_now_ms(void);

#endif
