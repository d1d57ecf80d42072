/*
 * jsonrpc.h - JSON-RPC 2.0 codec for MCP messages (cJSON tree). Request ids are kept as their
 * raw JSON text ("7", "\"abc\"", "1e3"), never through a double, and restored byte for byte.
 * Pure code, any thread.
 */
#ifndef MCPLEX_MCP_JSONRPC_H
#define MCPLEX_MCP_JSONRPC_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* JSON-RPC / MCP error codes. */
#define MCPLEX_JSONRPC_PARSE_ERROR -32700
#define MCPLEX_JSONRPC_INVALID_REQUEST -32600
#define MCPLEX_JSONRPC_METHOD_NOT_FOUND -32601
#define MCPLEX_JSONRPC_INVALID_PARAMS -32602
#define MCPLEX_JSONRPC_INTERNAL_ERROR -32603
#define MCPLEX_JSONRPC_CONNECTION_CLOSED -32000
#define MCPLEX_JSONRPC_REQUEST_TIMEOUT -32001
#define MCPLEX_JSONRPC_RESOURCE_NOT_FOUND -32002

typedef enum mcplex_jsonrpc_kind {
    MCPLEX_JSONRPC_REQUEST = 0,   /* method + id */
    MCPLEX_JSONRPC_NOTIFICATION,  /* method, no id */
    MCPLEX_JSONRPC_RESULT,        /* id + result */
    MCPLEX_JSONRPC_ERROR,         /* id (maybe null) + error */
} mcplex_jsonrpc_kind_t;

/* A parsed message. |root| owns everything; the other pointers point into it. */
typedef struct mcplex_jsonrpc_msg {
    cJSON *root;
    mcplex_jsonrpc_kind_t kind;
    const char *method; /* REQUEST/NOTIFICATION */
    cJSON *params;      /* or NULL */
    cJSON *result;      /* RESULT */
    cJSON *error;       /* ERROR */
    char *id_raw;       /* malloc'ed raw id text, or NULL (notification; error with null id) */
} mcplex_jsonrpc_msg_t;

/*
 * Parses one JSON-RPC message from |text| (|len| bytes; need not be NUL-terminated). Returns 0
 * and fills |out| (|*why| = NULL), or a JSON-RPC error code: MCPLEX_JSONRPC_PARSE_ERROR for
 * invalid JSON (trailing data included), MCPLEX_JSONRPC_INVALID_REQUEST for valid JSON that is
 * not one JSON-RPC 2.0 message (arrays/batches included, duplicate members, an "id" the raw
 * scanner and cJSON read differently); then |*why| (if |why| is non-NULL) points to a static
 * reason, out->root is NULL and, when an id could be read from an object, out->id_raw is set
 * (caller disposes |out| in every case).
 * Rules: "jsonrpc":"2.0"; a request has a string method and a string/number id (never null);
 * a notification has a method and no id; a response has an id and exactly one of result/error,
 * an error being an object with an integer code and a string message (null id allowed only
 * there); params, when present, is an object or an array. Numbers other than the id go through
 * cJSON's double (documents are re-printed with %.17g precision).
 */
int mcplex_jsonrpc_parse(const char *text, size_t len, mcplex_jsonrpc_msg_t *out, const char **why);
/* Frees what |msg| owns. Safe on a zeroed or partially filled msg. */
void mcplex_jsonrpc_msg_dispose(mcplex_jsonrpc_msg_t *msg);

/*
 * Finds the first member "id" (key compared after unescaping, so "\u0069d" counts) of the
 * top-level JSON object in |text| (|len| bytes) and returns its raw value text byte for byte
 * (malloc'ed, trimmed; a string keeps its quotes and escapes), or NULL if absent, null, not a
 * string/number, or if the text up to it is malformed or nested deeper than 1024 levels.
 * Members of nested objects and text inside strings are never mistaken for it. Does not
 * validate the rest of the document.
 */
char *mcplex_jsonrpc_scan_id(const char *text, size_t len);

/*
 * Replaces (or adds, at the end) the top-level "id" of |root| with raw JSON |id_raw| (copied;
 * must be valid JSON, e.g. from scan_id; NULL sets JSON null). A replaced member keeps its
 * position. Aborts on OOM.
 */
void mcplex_jsonrpc_set_id(cJSON *root, const char *id_raw);

/* Compact JSON text of |item| (malloc'ed; caller frees). Raw items print verbatim. */
char *mcplex_json_print(const cJSON *item);

/* Builds {"jsonrpc":"2.0","id":<id_raw or null>,"error":{"code":..,"message":..,"data":..}}
 * as compact text (malloc'ed). |message| is JSON-escaped (NULL = ""); |data| (may be NULL,
 * then omitted) is copied. */
char *mcplex_jsonrpc_error_text(const char *id_raw, int code, const char *message, const cJSON *data);
/* Builds {"jsonrpc":"2.0","id":<id_raw>,"result":<result>} (malloc'ed). Takes ownership of
 * |result| (NULL = {}). */
char *mcplex_jsonrpc_result_text(const char *id_raw, cJSON *result);

#endif
