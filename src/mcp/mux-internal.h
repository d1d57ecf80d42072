/*
 * mux-internal.h - what the files of the multiplexer share (mux.c: operations, calls, the entry
 * point; mux_upstream.c: messages from targets; mux_shared.c: shared stdio children; mux_init.c:
 * initialize and stateless requests; mux_lists.c: list fan-out, cursors, result rewriting;
 * mux_routed.c: routed requests, restarts and re-initialization). Nothing outside src/mcp/mux*.c
 * includes it. Thread: the session's worker.
 */
#ifndef MCPLEX_MCP_MUX_INTERNAL_H
#define MCPLEX_MCP_MUX_INTERNAL_H

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/seal.h"
#include "event/worker.h"
#include "mcp/curation.h"
#include "mcp/jsonrpc.h"
#include "mcp/naming.h"
#include "mcp/session.h"
#include "mcp/transport.h"
#include "admin/mcp_stats.h"

/* How long a stdio target without a configured timeout may take to start and answer
 * initialize: spawning `npx` or node takes seconds on a cold machine. */
#define MUX_STDIO_INIT_DEADLINE_MS 30000
/* Restart backoff of a stdio target that died: 1 s, doubling, at most 30 s. */
#define MUX_RESTART_BACKOFF_MIN_MS 1000
#define MUX_RESTART_BACKOFF_MAX_MS 30000


typedef enum mux_op_kind {
    MUX_OP_INITIALIZE = 0,
    MUX_OP_LIST,
    MUX_OP_ROUTED,
    MUX_OP_BROADCAST,
    MUX_OP_REINIT, /* a routed request waiting for its target to (re)initialize first */
} mux_op_kind_t;

typedef enum mux_slot_state {
    MUX_SLOT_UNUSED = 0, /* target not involved */
    MUX_SLOT_PENDING,
    MUX_SLOT_DONE,
    MUX_SLOT_FAILED,
} mux_slot_state_t;

typedef struct mux_slot {
    mux_slot_state_t state;
    cJSON *items;  /* LIST: accumulated, prefixed items */
    char *error;   /* FAILED: why */
    char *next_cursor; /* LIST: the target's nextCursor, or NULL at its end */
} mux_slot_t;

typedef struct mcplex_op {
    struct mcplex_op *next;
    struct mcplex_op *prev;
    mcplex_session_t *session;
    mux_op_kind_t kind;
    char *method;
    char *client_id;   /* raw JSON text of the client's id */
    mcplex_exchange_t *ex;
    mux_slot_t *slots; /* session->n_upstreams */
    size_t outstanding;
    const char *list_key; /* LIST: "tools", "prompts", "resources", "resourceTemplates" */
    cJSON *request;       /* ROUTED/REINIT: the rewritten request (owned); LIST: params template */
    size_t target;        /* ROUTED: the target */
    char *progress_token; /* ROUTED: raw JSON of params._meta.progressToken, or NULL */
    cJSON *then;          /* INITIALIZE of a stateless (2026-07-28) session: the request to run next */
    char *progress_up;    /* ROUTED to a shared child: the child-unique token that replaced the client's */
    int retried;          /* ROUTED: already re-sent once after the target's session expired */
    char *name;           /* ROUTED: the tool / prompt / URI as the client wrote it (access log) */
} mcplex_op_t;


/* ---- shared stdio children (Stdio.shared) -------------------------------------------------------- */

/* A session waiting for a shared child to (re)initialize. */
typedef struct shared_waiter {
    struct shared_waiter *next;
    mcplex_op_t *op;
    size_t slot;
} shared_waiter_t;

/*
 * One child serving every session of a worker that uses the target. Calls of all sessions are
 * in one list with child-unique ids; answers find their session's operation through it.
 */
struct mcplex_shared_target {
    char *key;
    mcplex_session_table_t *table;
    struct event_base *base;
    mcplex_snapshot_t *snapshot;          /* keeps |target| alive */
    const mcplex_mcp_target_t *target;
    struct mcplex_transport *transport; /* also self.transport */
    uint64_t next_id;
    uint64_t next_token;
    mcplex_upstream_call_t *calls;
    mcplex_upstream_t **members;
    size_t n_members, cap_members;
    shared_waiter_t *waiters;
    uint32_t restarts, backoff_ms;
    uint64_t restart_after_ms;
    int closing;
    /* The child's own upstream record: owner of its transport and of its initialize call. */
    mcplex_upstream_t self;
};

/* The list a call of |u| lives in, and the counter its id comes from. */
static inline mcplex_upstream_call_t **
calls_of(mcplex_upstream_t *u)
{
    return u->shared != NULL ? &u->shared->calls : &u->calls;
}

static inline uint64_t
next_call_id(mcplex_upstream_t *u)
{
    return u->shared != NULL ? u->shared->next_id++ : u->next_id++;
}

static inline struct mcplex_transport *
transport_of(const mcplex_upstream_t *u)
{
    return u->shared != NULL ? u->shared->transport : u->transport;
}

/* The transport callbacks of every upstream (mux_upstream.c). */
extern const mcplex_transport_cbs_t mux_transport_cbs;

/* mux.c */
void mux_op_observe(mcplex_op_t *op, int jsonrpc_code, size_t out_len);
void mux_op_reply_result(mcplex_op_t *op, cJSON *result);
void mux_op_slot_failed(mcplex_op_t *op, size_t slot, int code, const char *message);
void mux_json_replace_string(cJSON *obj, const char *key, const char *value);
mcplex_op_t * mux_op_create(mcplex_session_t *s, mux_op_kind_t kind, const char *method, const char *client_id, mcplex_exchange_t *ex);
const char * mux_target_name(const mcplex_upstream_t *u);
mcplex_upstream_call_t * mux_call_find(mcplex_upstream_t *u, uint64_t id);
void mux_op_free(mcplex_op_t *op);
const char * mux_json_string(const cJSON *obj, const char *key);
uint32_t mux_target_deadline_ms(const mcplex_upstream_t *u, int initialize);
void mux_op_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
cJSON * mux_request_new(const char *method, const cJSON *params);
void mux_upstream_send_notification(mcplex_upstream_t *u, const char *method, cJSON *params);
void mux_call_unlink(mcplex_upstream_call_t *call);
void mux_modern_decorate(const mcplex_session_t *s, const char *method, cJSON *result);
void mux_op_reply_error(mcplex_op_t *op, int code, const char *message, const cJSON *data);
int mux_upstream_call(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot, cJSON *root, uint32_t timeout_ms);

/* mux_upstream.c */
int mux_upstream_start(mcplex_upstream_t *u);
void mux_client_response(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg);
void mux_upstream_notification(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg);
void mux_deliver(mcplex_session_t *s, mcplex_op_t *op, const cJSON *root);

/* mux_shared.c */
void mux_shared_closed(mcplex_shared_target_t *sh, const char *reason);
void mux_shared_attach(mcplex_upstream_t *u);
void mux_shared_copy_to(const mcplex_shared_target_t *sh, mcplex_upstream_t *u);
void mux_shared_notification(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg);
int mux_shared_ready_or_wait(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot);
void mux_shared_forget_op(mcplex_op_t *op);
int mux_shared_reinit(mcplex_upstream_t *u, mcplex_op_t *op);
void mux_shared_init_result(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg);
void mux_shared_init_failed(mcplex_shared_target_t *sh, const char *why);

/* mux_init.c */
void mux_initialize_finish(mcplex_op_t *op);
void mux_initialize_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
int mux_upstream_accept_initialize(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg, char *message, size_t len);
int mux_upstream_has_capability(const mcplex_upstream_t *u, const char *cap);
cJSON * mux_initialize_params(const mcplex_session_t *s);

/* mux_lists.c */
void mux_prefix_string_member(const mcplex_session_t *s, size_t target, cJSON *obj, const char *key, int uri);
void mux_list_slot_result(mcplex_op_t *op, size_t slot_index, mcplex_jsonrpc_msg_t *msg);
void mux_rewrite_routed_result(const mcplex_session_t *s, size_t target, const char *method, cJSON *result);
void mux_list(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex);
void mux_list_finish(mcplex_op_t *op);

/* mux_routed.c */
int mux_upstream_reinit(mcplex_upstream_t *u, mcplex_op_t *op);
uint64_t mux_now_ms(void);
void mux_routed_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
void mux_reinit_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
void mux_shared_waiter_done(mcplex_op_t *op, size_t slot, int ok, const char *why);
void mux_routed(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex);

#endif
