/*
 * session.h - MCP sessions: one downstream session (one client-facing Mcp-Session-Id) owns one
 * upstream session per target of its MCP backend (a transport plus what the target said in its
 * InitializeResult). Also the exchange (one downstream request waiting for its answer) and the
 * session table of a worker.
 *
 * A session lives on one worker and is touched only by that worker's thread: no locks. It holds a
 * reference to the config snapshot it started with, so a config swap never changes a running
 * session's backend under it. Destruction is deferred to a fresh event-loop turn, so any
 * callback (transport, timer, HTTP stream) may end a session safely.
 */
#ifndef MCPLEX_MCP_SESSION_H
#define MCPLEX_MCP_SESSION_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/strmap.h"
#include "config/model.h"
#include "http/http.h"

struct event;
struct mcplex_worker;
struct mcplex_transport;
struct mcplex_op;

typedef struct mcplex_session mcplex_session_t;
typedef struct mcplex_upstream mcplex_upstream_t;
typedef struct mcplex_upstream_call mcplex_upstream_call_t;

/* ---- exchanges ---------------------------------------------------------------------------- */

/*
 * One downstream HTTP request waiting for its JSON-RPC answer. It outlives the HTTP stream if
 * the client goes away (|stream| becomes NULL; the answer is then dropped: a disconnect is not a
 * cancellation in MCP).
 */
typedef struct mcplex_exchange {
    mcplex_http_stream_t *stream;
    mcplex_http_header_t headers[8]; /* extra response headers (CORS); strings owned below */
    size_t n_headers;
    char *header_storage[16];
    size_t n_storage;
    int sse;       /* the client accepts only text/event-stream: answer as one SSE event */
    /* Set once the answer became an SSE stream (related notifications or server requests came
     * before the response): events carry ids "<stream_key>_<seq>" for resumption. */
    int streaming;
    uint64_t stream_key;
    /* Legacy HTTP+SSE (2024-11-05): the POST was answered 202 at once; the answer goes to the
     * session's /sse stream as `event: message`. */
    int legacy;
    struct mcplex_session *session; /* for streaming and legacy answers; NULL otherwise */
    uint64_t bytes_in;     /* request body bytes (access log) */
    uint64_t started_us;   /* when the request arrived (mcplex_http_now_us; stats and access log) */
} mcplex_exchange_t;

/* Creates an exchange for |stream| with copies of |extra| response headers (at most 6). */
mcplex_exchange_t *mcplex_exchange_create(mcplex_http_stream_t *stream, const mcplex_http_header_t *extra,
                                          size_t n_extra);
/*
 * Answers with |status| and the JSON body |json| (|len| bytes; copied), adding
 * Content-Type: application/json, Mcp-Session-Id when |session_id| is non-NULL, and the extra
 * headers; then frees |ex|. A NULL stream just frees. Thread: the worker.
 */
void mcplex_exchange_reply_json(mcplex_exchange_t *ex, int status, const char *json, size_t len,
                                const char *session_id);
/* Answers 202 Accepted with no body (notifications and responses), then frees |ex|. */
void mcplex_exchange_reply_accepted(mcplex_exchange_t *ex, const char *session_id);
/* Answers |status| with no body, then frees |ex|. */
void mcplex_exchange_reply_status(mcplex_exchange_t *ex, int status);
/* Answers a JSON-RPC error object with HTTP |status| (200 for JSON-RPC-level errors), frees |ex|. */
void mcplex_exchange_reply_error(mcplex_exchange_t *ex, int status, const char *id_raw, int code,
                                 const char *message, const cJSON *data, const char *session_id);

/* ---- upstream sessions ---------------------------------------------------------------------- */

typedef enum mcplex_upstream_state {
    MCPLEX_UPSTREAM_NEW = 0,      /* no transport yet */
    MCPLEX_UPSTREAM_INITIALIZING, /* initialize sent */
    MCPLEX_UPSTREAM_READY,        /* initialized; serves requests */
    MCPLEX_UPSTREAM_FAILED,       /* failed to start/initialize, or died; see |failure| */
} mcplex_upstream_state_t;

/* One request mcplex sent to a target and is waiting on. */
struct mcplex_upstream_call {
    mcplex_upstream_call_t *next;
    mcplex_upstream_t *upstream;
    uint64_t id;            /* the JSON-RPC id mcplex put on the wire */
    struct event *deadline; /* per-call timer, or NULL */
    struct mcplex_op *op;   /* the downstream operation it belongs to, or NULL (internal) */
    size_t slot;            /* index of the target within |op| */
    unsigned late_bits;     /* a list call past its deadline: list_changed bits to send if it answers */
};

typedef struct mcplex_shared_target mcplex_shared_target_t;

struct mcplex_upstream {
    mcplex_session_t *session;
    mcplex_shared_target_t *shared; /* a shared stdio child (Stdio.shared), or NULL: own transport */
    size_t index;
    const mcplex_mcp_target_t *target; /* points into session->snapshot */
    struct mcplex_transport *transport;
    mcplex_upstream_state_t state;
    char *failure;              /* why it failed, for logs and errors */
    char *protocol_version;     /* what the target answered */
    cJSON *capabilities;        /* the target's ServerCapabilities (owned) */
    char *instructions;         /* the target's instructions, or NULL */
    uint64_t next_id;
    mcplex_upstream_call_t *calls; /* in flight */
    uint32_t restarts;          /* stdio restarts so far */
    uint32_t backoff_ms;        /* current restart backoff */
    uint64_t restart_after_ms;  /* monotonic ms before which no restart is tried */
};

/* ---- sessions ------------------------------------------------------------------------------ */

struct mcplex_session {
    struct mcplex_worker *worker;
    mcplex_snapshot_t *snapshot;            /* reference held */
    char *id;                               /* client-facing Mcp-Session-Id; NULL until initialized */
    char *backend_name;                     /* the MCP backend (cluster) name */
    const mcplex_mcp_backend_t *backend;    /* points into |snapshot| */
    const char **target_names;              /* n_upstreams names, for naming splits */
    int prefixed;                           /* names/URIs carry the target prefix */
    mcplex_upstream_t *upstreams;
    size_t n_upstreams;
    char *protocol_version;                 /* negotiated with the client */
    cJSON *client_info;                     /* from initialize (owned) */
    cJSON *client_capabilities;             /* from initialize (owned) */
    uint32_t route_timeout_ms;              /* deadline of routed requests; 0 = none */
    struct mcplex_op *ops;                  /* live downstream operations */
    /* Unprefixed sessions with several targets (prefix_mode NEVER) route by owner: name or URI
     * -> target index + 1, learned from the lists the client was given. */
    mcplex_strmap_t owners[3];              /* tools, prompts, resources */
    /* ---- server-initiated stream and resumability (outbound.c) ---- */
    mcplex_http_stream_t *server_stream;    /* the open GET /mcp (or legacy /sse) stream, or NULL */
    char *legacy_endpoint;                  /* legacy /sse: the message URL of `event: endpoint` */
    struct event *heartbeat;                /* ": keep-alive" comments on the idle server stream */
    uint64_t next_stream_key;               /* 0 = the server stream; POST streams 1, 2, ... */
    uint64_t next_seq;                      /* event sequence, unique across the session */
    uint64_t unread_stream_key;             /* the last stream ended for a client not reading
                                             * (its drops are logged once) */
    struct mcplex_replay_event *replay_head; /* sent events, oldest first, for Last-Event-ID */
    struct mcplex_replay_event *replay_tail;
    size_t replay_bytes;
    struct mcplex_pending_msg *pending_head; /* server-stream messages waiting for a GET stream */
    struct mcplex_pending_msg *pending_tail;
    size_t n_pending;
    unsigned list_changed;                  /* MCPLEX_LIST_CHANGED_* bits waiting to be sent */
    struct event *list_changed_timer;       /* coalesces bursts of list_changed */
    mcplex_strmap_t server_requests;        /* downstream id -> struct mcplex_server_request */
    uint64_t next_server_request;
    int legacy_sse;                         /* a legacy HTTP+SSE session (/sse) */
    int modern;                             /* MCP 2026-07-28: one sessionless request, then closed */
    uint64_t cursor_salt;                   /* binds list cursors to this session */
    uint64_t resumed_key;                   /* a POST stream the client resumed with GET (0: none) */
    int closing;
    time_t created;
    time_t last_used;
};

typedef struct mcplex_session_table {
    mcplex_strmap_t by_id;
    mcplex_strmap_t shared; /* "<backend>/<target>#<generation>" -> mcplex_shared_target_t */
} mcplex_session_table_t;

/* Detaches |u| from its shared child (session ending): its calls are dropped; the last session
 * out stops the child. Used by session.c. */
void mcplex_mux_shared_detach(mcplex_upstream_t *u);

mcplex_session_table_t *mcplex_session_table_create(void);
/* Ends every session at once (transports closed, pending answers failed) and frees the table. */
void mcplex_session_table_destroy(mcplex_session_table_t *t);
/*
 * Ends every session idle (no client request) for more than |max_idle_s| seconds, as clients
 * often vanish without DELETE. Returns how many were ended.
 */
size_t mcplex_session_table_reap(mcplex_session_table_t *t, time_t now, time_t max_idle_s);
/* Finds an initialized session by its client-facing id, or NULL. */
mcplex_session_t *mcplex_session_find(mcplex_session_table_t *t, const char *id);

/*
 * Creates an uninitialized session on |worker| for MCP backend |backend| (named |backend_name|)
 * of |snapshot| (a reference is taken). Nothing is started until mcplex_mux_initialize().
 */
mcplex_session_t *mcplex_session_create(struct mcplex_worker *worker, mcplex_snapshot_t *snapshot,
                                        const char *backend_name, const mcplex_mcp_backend_t *backend,
                                        uint32_t route_timeout_ms);
/*
 * Gives the session its sealed client-facing id and registers it in the worker's table.
 * Returns 0, or -1 if sealing failed.
 */
int mcplex_session_register(mcplex_session_t *s);
/*
 * Ends |s|: removes it from the table, fails its pending operations with a JSON-RPC error,
 * closes every transport (stdio children: stdin closed, then SIGTERM, then SIGKILL) and frees it
 * on a later loop turn. Safe from any callback; idempotent.
 */
void mcplex_session_close(mcplex_session_t *s, const char *reason);

/* ---- outbound: streams towards the client (outbound.c) ------------------------------------- */

#define MCPLEX_LIST_CHANGED_TOOLS 0x1
#define MCPLEX_LIST_CHANGED_PROMPTS 0x2
#define MCPLEX_LIST_CHANGED_RESOURCES 0x4

/* Messages queued per session while no server stream is open (the replay buffer size and the
 * heartbeat interval come from McpBackend.server_stream). */
#define MCPLEX_PENDING_MAX 1000

/* A server -> client request in flight: the downstream id mcplex gave it maps back here. */
typedef struct mcplex_server_request {
    size_t upstream;     /* target index */
    char *upstream_id;   /* the target's raw id */
} mcplex_server_request_t;

/*
 * Serves GET on the session's endpoint (MCP streamable HTTP "Listening for Messages from the
 * Server"): opens the server stream (a previous one is ended: one per session), sends a priming
 * event with retry:, replays the events after |last_event_id| of the stream it names (a POST
 * stream whose answer the client missed, or the server stream), then flushes queued messages.
 * |ex| carries the response headers; ownership is taken.
 */
void mcplex_session_open_server_stream(mcplex_session_t *s, mcplex_exchange_t *ex, const char *last_event_id);

/*
 * Sends one JSON-RPC message (|json|, |len| bytes) on the session's server stream, or queues it
 * (bounded) until one opens. For a legacy session it goes on the /sse stream. Thread: worker.
 */
void mcplex_session_send(mcplex_session_t *s, const char *json, size_t len);

/*
 * Sends |json| as an SSE event on |ex|'s POST response, turning that response into an event
 * stream first if needed (the final answer then goes last, via mcplex_exchange_reply_json).
 * Returns 0, or -1 if the client went away (the caller then uses the server stream).
 */
int mcplex_exchange_send_event(mcplex_exchange_t *ex, const char *json, size_t len);

/* Marks |bits| (MCPLEX_LIST_CHANGED_*) to be announced; sent once per burst (~50 ms). */
void mcplex_session_list_changed(mcplex_session_t *s, unsigned bits);

/* Frees the replay buffer, queued messages, timers and server-request map (session end). */
void mcplex_session_outbound_dispose(mcplex_session_t *s);

/* ---- the multiplexer (mux.c) --------------------------------------------------------------- */

/*
 * Runs `initialize` for a new session: starts every target concurrently, initializes each with
 * its own deadline, merges the results (capabilities union, serverInfo from config, instructions
 * joined per target) and answers |ex| with the merged result and the new Mcp-Session-Id. Under
 * FAIL_CLOSED a failing target fails the whole initialize with a JSON-RPC error naming it; under
 * FAIL_OPEN the session works with the others (all failing is an error). On error the session is
 * closed. |params| is the client's params (copied); |id_raw| the client's request id.
 */
void mcplex_mux_initialize(mcplex_session_t *s, const char *id_raw, const cJSON *params, mcplex_exchange_t *ex);

/*
 * Handles one client message of an initialized session: requests are answered on |ex| (fan-out
 * and merge, routed by prefix, or answered locally); notifications and responses get 202 at
 * once. Takes ownership of |msg| (disposes it) and |ex|.
 */
struct mcplex_jsonrpc_msg;
void mcplex_mux_handle(mcplex_session_t *s, struct mcplex_jsonrpc_msg *msg, mcplex_exchange_t *ex);

/*
 * Serves one sessionless request of MCP 2026-07-28 (the modern era: no initialize, protocol
 * version and client capabilities in params._meta) on |s|, a fresh session that is closed when
 * the answer is sent: the targets are initialized (they speak the legacy era), then |msg| is
 * handled like a session's request, or answered with a DiscoverResult for server/discover.
 * Results of lists and reads carry the modern cache hints. Takes |msg| and |ex|.
 */
void mcplex_mux_stateless(mcplex_session_t *s, struct mcplex_jsonrpc_msg *msg, mcplex_exchange_t *ex);

/* Opens the server stream of every ready streamable-HTTP target of |s| (the client opened its
 * own); their messages are merged into the session's stream. */
void mcplex_mux_open_upstream_streams(mcplex_session_t *s);

/* Fails every operation of |s| still waiting (session ending). Used by session.c. */
void mcplex_mux_abort_all(mcplex_session_t *s, int code, const char *message);
/* Cancels and frees every in-flight call of |u| (no answers). Used by session.c. */
void mcplex_mux_drop_calls(mcplex_upstream_t *u);

/* Protocol versions mcplex speaks, newest first, NULL-terminated. */
extern const char *const mcplex_mcp_protocol_versions[];
/* The modern-era version mcplex serves sessionless requests of. */
#define MCPLEX_MCP_MODERN_VERSION "2026-07-28"
/* 1 if |version| is one mcplex speaks. */
int mcplex_mcp_protocol_version_supported(const char *version);

#endif
