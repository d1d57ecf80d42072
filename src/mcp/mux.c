/*
 * mux.c - the multiplexer: everything between one client JSON-RPC message and the targets of its
 * session (ARCHITECTURE "Data flow of one tools/call").
 *
 * A client request becomes an operation (mcplex_op_t) with one slot per target it involves:
 *   - initialize: every target, concurrently, each with its own deadline; merged;
 *   - list methods: every ready target that has the capability; each target's pages are drained
 *     in turn (no silent truncation); items prefixed and concatenated in target order;
 *   - routed methods (tools/call, prompts/get, resources/read, ...): the one target named by the
 *     prefix, with the name or URI un-prefixed on the way up and URIs in the result re-prefixed;
 *   - logging/setLevel: every target with logging, answered {} when all have replied;
 *   - ping: answered here.
 * Each call mcplex sends upstream gets its own integer id (per target), so the client's id is
 * restored byte for byte on the way down and ids of different clients never meet.
 *
 * Thread: the session's worker. Nothing here blocks.
 */
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

/* How long a stdio target without a configured timeout may take to start and answer
 * initialize: spawning `npx` or node takes seconds on a cold machine. */
#define MUX_STDIO_INIT_DEADLINE_MS 30000
/* Restart backoff of a stdio target that died: 1 s, doubling, at most 30 s. */
#define MUX_RESTART_BACKOFF_MIN_MS 1000
#define MUX_RESTART_BACKOFF_MAX_MS 30000

const char *const mcplex_mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL};

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
} mcplex_op_t;

static void op_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
static void prefix_string_member(const mcplex_session_t *s, size_t target, cJSON *obj, const char *key, int uri);
static int upstream_reinit(mcplex_upstream_t *u, mcplex_op_t *op);
static void stateless_continue(mcplex_op_t *op);
static void shared_forget_op(mcplex_op_t *op);
static void shared_init_failed(mcplex_shared_target_t *sh, const char *why);
static void shared_init_result(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg);
static void shared_notification(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg);
static void shared_closed(mcplex_shared_target_t *sh, const char *reason);
static int shared_reinit(mcplex_upstream_t *u, mcplex_op_t *op);
static uint64_t now_ms(void);
static int upstream_accept_initialize(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg, char *message, size_t len);
static void initialize_finish(mcplex_op_t *op);
static void op_slot_failed(mcplex_op_t *op, size_t slot, int code, const char *message);

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
static mcplex_upstream_call_t **
calls_of(mcplex_upstream_t *u)
{
    return u->shared != NULL ? &u->shared->calls : &u->calls;
}

static uint64_t
next_call_id(mcplex_upstream_t *u)
{
    return u->shared != NULL ? u->shared->next_id++ : u->next_id++;
}

static struct mcplex_transport *
transport_of(const mcplex_upstream_t *u)
{
    return u->shared != NULL ? u->shared->transport : u->transport;
}

/* ---- small helpers -------------------------------------------------------------------------- */

int
mcplex_mcp_protocol_version_supported(const char *version)
{
    for (size_t i = 0; version != NULL && mcplex_mcp_protocol_versions[i] != NULL; i++)
        if (strcmp(version, mcplex_mcp_protocol_versions[i]) == 0)
            return 1;
    return 0;
}

static const char *
json_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void
json_replace_string(cJSON *obj, const char *key, const char *value)
{
    cJSON *item = cJSON_CreateString(value);

    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        cJSON_AddItemToObject(obj, key, item);
}

static const char *
target_name(const mcplex_upstream_t *u)
{
    return u->target->name;
}

static uint32_t
target_deadline_ms(const mcplex_upstream_t *u, int initialize)
{
    uint32_t ms = u->target->timeout_ms ? u->target->timeout_ms : 5000;

    if (initialize && !u->target->timeout_set && u->target->kind == MCPLEX_TARGET_STDIO &&
        ms < MUX_STDIO_INIT_DEADLINE_MS)
        ms = MUX_STDIO_INIT_DEADLINE_MS;
    return ms;
}

/* ---- operations ------------------------------------------------------------------------------ */

static mcplex_op_t *
op_create(mcplex_session_t *s, mux_op_kind_t kind, const char *method, const char *client_id,
          mcplex_exchange_t *ex)
{
    mcplex_op_t *op = mcplex_calloc(1, sizeof(*op));

    op->session = s;
    op->kind = kind;
    op->method = mcplex_strdup(method);
    op->client_id = mcplex_strdup(client_id);
    op->ex = ex;
    if (ex != NULL)
        ex->session = s;
    op->slots = mcplex_calloc(s->n_upstreams ? s->n_upstreams : 1, sizeof(*op->slots));
    op->next = s->ops;
    if (s->ops != NULL)
        s->ops->prev = op;
    s->ops = op;
    return op;
}

/* Detaches every call of |op| from its upstream (late answers are then dropped). */
static void
op_forget_calls(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;

    for (size_t i = 0; i < s->n_upstreams; i++) {
        for (mcplex_upstream_call_t *c = *calls_of(&s->upstreams[i]); c != NULL; c = c->next)
            if (c->op == op)
                c->op = NULL;
    }
    shared_forget_op(op);
}

static void
op_free(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;

    op_forget_calls(op);
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        s->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    for (size_t i = 0; i < s->n_upstreams; i++) {
        cJSON_Delete(op->slots[i].items);
        free(op->slots[i].error);
        free(op->slots[i].next_cursor);
    }
    free(op->slots);
    free(op->progress_token);
    free(op->progress_up);
    cJSON_Delete(op->request);
    cJSON_Delete(op->then);
    free(op->method);
    free(op->client_id);
    free(op);
    /* A stateless (2026-07-28) session ends with its one answer. */
    if (s->modern && s->ops == NULL && !s->closing)
        mcplex_session_close(s, "stateless request answered");
}

/* Answers |op| with a JSON-RPC error (HTTP 200) and frees it. */
static void
op_reply_error(mcplex_op_t *op, int code, const char *message, const cJSON *data)
{
    mcplex_exchange_reply_error(op->ex, 200, op->client_id, code, message, data, op->session->id);
    op->ex = NULL;
    op_free(op);
}

/*
 * MCP 2026-07-28 results: resultType, the cache hints lists and reads must carry (mcplex answers
 * per request, so nothing may be cached across clients), and the server's identity in _meta.
 */
static void
modern_decorate(const mcplex_session_t *s, const char *method, cJSON *result)
{
    cJSON *meta, *info;

    if (!s->modern || !cJSON_IsObject(result))
        return;
    if (cJSON_GetObjectItemCaseSensitive(result, "resultType") == NULL)
        cJSON_AddStringToObject(result, "resultType", "complete");
    if ((strstr(method, "/list") != NULL || strcmp(method, "resources/read") == 0 ||
         strcmp(method, "server/discover") == 0) &&
        cJSON_GetObjectItemCaseSensitive(result, "ttlMs") == NULL) {
        cJSON_AddNumberToObject(result, "ttlMs", 0);
        cJSON_AddStringToObject(result, "cacheScope", "private");
    }
    meta = cJSON_GetObjectItemCaseSensitive(result, "_meta");
    if (meta == NULL)
        meta = cJSON_AddObjectToObject(result, "_meta");
    if (cJSON_IsObject(meta) && cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/serverInfo") == NULL) {
        info = cJSON_AddObjectToObject(meta, "io.modelcontextprotocol/serverInfo");
        cJSON_AddStringToObject(info, "name", s->backend->server_name ? s->backend->server_name : "mcplex");
        cJSON_AddStringToObject(info, "version", s->backend->server_version ? s->backend->server_version
                                                                           : MCPLEX_VERSION);
    }
}

/* Answers |op| with |result| (ownership taken) and frees it. */
static void
op_reply_result(mcplex_op_t *op, cJSON *result)
{
    char *text;

    modern_decorate(op->session, op->method, result);
    text = mcplex_jsonrpc_result_text(op->client_id, result);

    mcplex_exchange_reply_json(op->ex, 200, text, strlen(text), op->session->id);
    free(text);
    op->ex = NULL;
    op_free(op);
}

void
mcplex_mux_open_upstream_streams(mcplex_session_t *s)
{
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        if (u->state == MCPLEX_UPSTREAM_READY && u->transport != NULL &&
            u->target->kind == MCPLEX_TARGET_STREAMABLE_HTTP)
            mcplex_http_transport_open_stream(u->transport);
    }
}

void
mcplex_mux_abort_all(mcplex_session_t *s, int code, const char *message)
{
    while (s->ops != NULL)
        op_reply_error(s->ops, code, message, NULL);
}

/* ---- calls to targets -------------------------------------------------------------------------- */

static void
call_unlink(mcplex_upstream_call_t *call)
{
    mcplex_upstream_call_t **pp = calls_of(call->upstream);

    while (*pp != NULL && *pp != call)
        pp = &(*pp)->next;
    if (*pp == call)
        *pp = call->next;
    if (call->deadline != NULL)
        event_free(call->deadline);
    free(call);
}

void
mcplex_mux_drop_calls(mcplex_upstream_t *u)
{
    mcplex_upstream_call_t **pp = calls_of(u);

    /* A shared list holds other sessions' calls too: drop only this session's. */
    while (*pp != NULL) {
        if ((*pp)->upstream == u)
            call_unlink(*pp);
        else
            pp = &(*pp)->next;
    }
}

static mcplex_upstream_call_t *
call_find(mcplex_upstream_t *u, uint64_t id)
{
    for (mcplex_upstream_call_t *c = *calls_of(u); c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void
upstream_send_notification(mcplex_upstream_t *u, const char *method, cJSON *params)
{
    cJSON *root = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(root, "jsonrpc", "2.0");
    cJSON_AddStringToObject(root, "method", method);
    if (params != NULL)
        cJSON_AddItemToObject(root, "params", params);
    text = mcplex_json_print(root);
    if (transport_of(u) != NULL)
        mcplex_transport_send(transport_of(u), text, strlen(text), 0);
    free(text);
    cJSON_Delete(root);
}

static unsigned
list_changed_bit(const char *method)
{
    if (strcmp(method, "tools/list") == 0)
        return MCPLEX_LIST_CHANGED_TOOLS;
    if (strcmp(method, "prompts/list") == 0)
        return MCPLEX_LIST_CHANGED_PROMPTS;
    return MCPLEX_LIST_CHANGED_RESOURCES;
}

/* How long a list answer that missed its deadline is still waited for (to send list_changed). */
#define MUX_LATE_ANSWER_MS 60000

static void
call_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_upstream_call_t *call = arg;
    mcplex_upstream_t *u = call->upstream;
    mcplex_op_t *op = call->op;
    size_t slot = call->slot;
    uint64_t id = call->id;
    char message[256];
    cJSON *params;

    (void)fd;
    (void)what;
    if (u->shared != NULL && u == &u->shared->self) {
        mcplex_shared_target_t *sh = u->shared;
        call_unlink(call);
        shared_init_failed(sh, "did not answer initialize in time");
        return;
    }
    if (op == NULL) {
        call_unlink(call); /* a late list answer that never came */
        return;
    }
    if (op->kind == MUX_OP_LIST) {
        /* Left out of this answer (fail open); if the target answers later, the client hears
         * list_changed and lists again. */
        struct timeval later = {MUX_LATE_ANSWER_MS / 1000, 0};
        call->op = NULL;
        call->late_bits = list_changed_bit(op->method);
        evtimer_add(call->deadline, &later);
        mcplex_log_warn("mcp", "target '%s' missed the deadline of %s", target_name(u), op->method);
        snprintf(message, sizeof(message), "target '%s' timed out", target_name(u));
        op_slot_failed(op, slot, MCPLEX_JSONRPC_REQUEST_TIMEOUT, message);
        return;
    }
    call_unlink(call);
    /* Tell the target to stop (MCP cancellation), except for initialize, which must not be. */
    if (op == NULL || op->kind != MUX_OP_INITIALIZE) {
        params = cJSON_CreateObject();
        cJSON_AddNumberToObject(params, "requestId", (double)id);
        cJSON_AddStringToObject(params, "reason", "mcplex: request timed out");
        upstream_send_notification(u, "notifications/cancelled", params);
    }
    mcplex_log_warn("mcp", "target '%s' did not answer request %llu in time", target_name(u),
                    (unsigned long long)id);
    if (op != NULL) {
        snprintf(message, sizeof(message), "target '%s' timed out", target_name(u));
        op_slot_failed(op, slot, MCPLEX_JSONRPC_REQUEST_TIMEOUT, message);
    }
}

/*
 * Sends |root| (a request object; its "id" is replaced with a fresh upstream id) to |u| on
 * behalf of |op| slot |slot|, with a deadline of |timeout_ms| (0 = none). Returns 0, or -1 if
 * the target cannot take it (then nothing is registered).
 */
static int
upstream_call(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot, cJSON *root, uint32_t timeout_ms)
{
    mcplex_upstream_call_t *call;
    char idbuf[32];
    char *text;
    int rc;

    if (transport_of(u) == NULL)
        return -1;
    call = mcplex_calloc(1, sizeof(*call));
    call->upstream = u;
    call->id = next_call_id(u);
    call->op = op;
    call->slot = slot;
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)call->id);
    mcplex_jsonrpc_set_id(root, idbuf);
    text = mcplex_json_print(root);
    call->next = *calls_of(u);
    *calls_of(u) = call;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        struct event_base *base = u->shared != NULL ? u->shared->base : u->session->worker->base;
        call->deadline = evtimer_new(base, call_deadline_cb, call);
        evtimer_add(call->deadline, &tv);
    }
    rc = mcplex_transport_send(transport_of(u), text, strlen(text), call->id);
    free(text);
    if (rc != 0) {
        call_unlink(call);
        return -1;
    }
    return 0;
}

/* Builds {"jsonrpc":"2.0","id":0,"method":method,"params":params} (params copied if given). */
static cJSON *
request_new(const char *method, const cJSON *params)
{
    cJSON *root = cJSON_CreateObject();

    cJSON_AddStringToObject(root, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(root, "id", 0);
    cJSON_AddStringToObject(root, "method", method);
    if (params != NULL)
        cJSON_AddItemToObject(root, "params", cJSON_Duplicate(params, 1));
    return root;
}

/* ---- transport callbacks ------------------------------------------------------------------------ */

static void
upstream_fail_calls(mcplex_upstream_t *u, const char *why)
{
    char message[512];

    snprintf(message, sizeof(message), "target '%s' is unavailable: %s", target_name(u), why);
    while (u->calls != NULL) { /* a private transport's calls (shared children: shared_closed) */
        mcplex_upstream_call_t *call = u->calls;
        mcplex_op_t *op = call->op;
        size_t slot = call->slot;
        call_unlink(call);
        if (op != NULL)
            op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
    }
}

/*
 * The downstream operation a message from |u| relates to: the routed request whose progress
 * token is |token| (raw JSON), or without a token the one routed request in flight on |u|.
 * NULL when none or ambiguous (the message then goes on the session's server stream).
 */
static mcplex_op_t *
related_op(mcplex_session_t *s, const mcplex_upstream_t *u, const char *token)
{
    mcplex_op_t *found = NULL;

    for (mcplex_op_t *op = s->ops; op != NULL; op = op->next) {
        if (op->kind != MUX_OP_ROUTED || op->target != u->index || op->ex == NULL)
            continue;
        if (token != NULL) {
            if (op->progress_token != NULL && strcmp(op->progress_token, token) == 0)
                return op;
            continue;
        }
        if (found != NULL)
            return NULL;
        found = op;
    }
    return found;
}

/* Sends |root| to the client: on |op|'s POST stream when it is still open, else on the server
 * stream (MCP: each message goes on exactly one stream). */
static void
deliver(mcplex_session_t *s, mcplex_op_t *op, const cJSON *root)
{
    char *text = mcplex_json_print(root);
    size_t len = strlen(text);

    if (op == NULL || op->ex == NULL || mcplex_exchange_send_event(op->ex, text, len) != 0)
        mcplex_session_send(s, text, len);
    free(text);
}

static void
upstream_send_text(mcplex_upstream_t *u, char *text)
{
    if (transport_of(u) != NULL)
        mcplex_transport_send(transport_of(u), text, strlen(text), 0);
    free(text);
}

static const char *
server_request_capability(const char *method)
{
    if (strcmp(method, "sampling/createMessage") == 0)
        return "sampling";
    if (strcmp(method, "elicitation/create") == 0)
        return "elicitation";
    if (strcmp(method, "roots/list") == 0)
        return "roots";
    return NULL;
}

/*
 * A request from a target to the client (sampling, elicitation, roots, ...): ping is answered
 * here; the others get a session-unique id, are remembered so the client's answer returns to
 * this target with its own id, and go to the client on the related stream. Requests the client
 * cannot serve are refused at once.
 */
static void
upstream_server_request(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = u->session;
    const char *cap = server_request_capability(msg->method);
    mcplex_server_request_t *r;
    char id[48];

    if (strcmp(msg->method, "ping") == 0) {
        upstream_send_text(u, mcplex_jsonrpc_result_text(msg->id_raw, cJSON_CreateObject()));
        return;
    }
    if (s->id == NULL || s->closing ||
        (cap != NULL && cJSON_GetObjectItemCaseSensitive(s->client_capabilities, cap) == NULL)) {
        upstream_send_text(u, mcplex_jsonrpc_error_text(msg->id_raw, MCPLEX_JSONRPC_METHOD_NOT_FOUND,
                                                        "the client does not support this request", NULL));
        return;
    }
    snprintf(id, sizeof(id), "\"mcplex-%llu\"", (unsigned long long)++s->next_server_request);
    r = mcplex_calloc(1, sizeof(*r));
    r->upstream = u->index;
    r->upstream_id = mcplex_strdup(msg->id_raw);
    mcplex_strmap_put(&s->server_requests, id, r);
    mcplex_jsonrpc_set_id(msg->root, id);
    deliver(s, related_op(s, u, NULL), msg->root);
}

/* A client's answer to a server request: back to the target that asked, with its own id. */
static void
client_response(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_server_request_t *r = msg->id_raw != NULL ? mcplex_strmap_remove(&s->server_requests, msg->id_raw)
                                                     : NULL;

    if (r == NULL) {
        mcplex_log_debug("mcp", "client answered an unknown server request %s", msg->id_raw ? msg->id_raw : "null");
        return;
    }
    if (r->upstream < s->n_upstreams) {
        mcplex_jsonrpc_set_id(msg->root, r->upstream_id);
        upstream_send_text(&s->upstreams[r->upstream], mcplex_json_print(msg->root));
    }
    free(r->upstream_id);
    free(r);
}

/* Maps a target's notifications/cancelled of its own server request to the id the client saw. */
static int
map_cancelled(mcplex_session_t *s, const mcplex_upstream_t *u, cJSON *params)
{
    cJSON *rid = cJSON_GetObjectItemCaseSensitive(params, "requestId");
    char *raw;
    int found = 0;

    if (rid == NULL)
        return 0;
    raw = mcplex_json_print(rid);
    for (uint64_t n = s->next_server_request; n > 0 && !found; n--) {
        char id[48];
        mcplex_server_request_t *r;
        snprintf(id, sizeof(id), "\"mcplex-%llu\"", (unsigned long long)n);
        r = mcplex_strmap_get(&s->server_requests, id);
        if (r != NULL && r->upstream == u->index && strcmp(r->upstream_id, raw) == 0) {
            cJSON_ReplaceItemInObjectCaseSensitive(params, "requestId", cJSON_CreateRaw(id));
            free(mcplex_strmap_remove(&s->server_requests, id) == r ? r->upstream_id : NULL);
            free(r);
            found = 1;
        }
    }
    free(raw);
    return found;
}

/* A notification from a target: names and URIs re-prefixed, then to the right stream. */
static void
upstream_notification(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = u->session;
    const char *m = msg->method;
    cJSON *params = msg->params;

    if (s->id == NULL || s->closing)
        return; /* before the session exists there is nobody to tell */
    if (strcmp(m, "notifications/tools/list_changed") == 0) {
        mcplex_session_list_changed(s, MCPLEX_LIST_CHANGED_TOOLS);
    } else if (strcmp(m, "notifications/prompts/list_changed") == 0) {
        mcplex_session_list_changed(s, MCPLEX_LIST_CHANGED_PROMPTS);
    } else if (strcmp(m, "notifications/resources/list_changed") == 0) {
        mcplex_session_list_changed(s, MCPLEX_LIST_CHANGED_RESOURCES);
    } else if (strcmp(m, "notifications/progress") == 0) {
        cJSON *token = cJSON_GetObjectItemCaseSensitive(params, "progressToken");
        char *raw = token != NULL ? mcplex_json_print(token) : NULL;
        mcplex_op_t *op = raw != NULL ? related_op(s, u, raw) : NULL;
        free(raw);
        if (op != NULL)
            deliver(s, op, msg->root);
        /* Progress for no request in flight is dropped: it MUST stop after the response. */
    } else if (strcmp(m, "notifications/message") == 0) {
        if (s->prefixed && cJSON_IsObject(params)) {
            const char *logger = json_string(params, "logger");
            char *named = logger != NULL ? mcplex_sprintf("%s/%s", target_name(u), logger)
                                         : mcplex_strdup(target_name(u));
            json_replace_string(params, "logger", named);
            free(named);
        }
        deliver(s, related_op(s, u, NULL), msg->root);
    } else if (strcmp(m, "notifications/resources/updated") == 0) {
        prefix_string_member(s, u->index, params, "uri", 1);
        deliver(s, NULL, msg->root);
    } else if (strcmp(m, "notifications/cancelled") == 0) {
        if (map_cancelled(s, u, params))
            deliver(s, NULL, msg->root);
    } else {
        deliver(s, related_op(s, u, NULL), msg->root);
    }
}

static void
transport_on_message(void *owner, const char *json, size_t len)
{
    mcplex_upstream_t *u = owner;
    mcplex_jsonrpc_msg_t msg;
    const char *why = NULL;
    mcplex_upstream_call_t *call;
    char *end;
    uint64_t id;

    memset(&msg, 0, sizeof(msg));
    if (mcplex_jsonrpc_parse(json, len, &msg, &why) != 0) {
        mcplex_log_warn("mcp", "target '%s' sent an invalid JSON-RPC message (%s)", target_name(u),
                        why != NULL ? why : "?");
        goto done;
    }
    switch (msg.kind) {
    case MCPLEX_JSONRPC_RESULT:
    case MCPLEX_JSONRPC_ERROR:
        if (msg.id_raw == NULL)
            goto done;
        id = strtoull(msg.id_raw, &end, 10);
        call = *end == '\0' ? call_find(u, id) : NULL;
        if (call == NULL) {
            mcplex_log_debug("mcp", "target '%s' answered unknown or expired id %s", target_name(u), msg.id_raw);
            goto done;
        }
        {
            mcplex_upstream_t *caller = call->upstream;
            mcplex_op_t *op = call->op;
            size_t slot = call->slot;
            unsigned late = call->late_bits;
            call_unlink(call);
            if (u->shared != NULL && caller == u)
                shared_init_result(u->shared, &msg); /* the shared child's own initialize */
            else if (op != NULL)
                op_slot_result(op, slot, &msg);
            else if (late != 0 && caller->session != NULL)
                mcplex_session_list_changed(caller->session, late); /* the late target is back */
        }
        break;
    case MCPLEX_JSONRPC_REQUEST:
        if (u->shared != NULL) {
            /* A shared child cannot tell whose request this would be: only ping is answered. */
            upstream_send_text(u, strcmp(msg.method, "ping") == 0
                                      ? mcplex_jsonrpc_result_text(msg.id_raw, cJSON_CreateObject())
                                      : mcplex_jsonrpc_error_text(msg.id_raw, MCPLEX_JSONRPC_METHOD_NOT_FOUND,
                                                                  "not relayed from a shared child", NULL));
            break;
        }
        upstream_server_request(u, &msg);
        break;
    case MCPLEX_JSONRPC_NOTIFICATION:
        if (u->shared != NULL)
            shared_notification(u->shared, &msg);
        else
            upstream_notification(u, &msg);
        break;
    }
done:
    mcplex_jsonrpc_msg_dispose(&msg);
}

static void
transport_on_send_failed(void *owner, uint64_t tag, int http_status, const char *reason)
{
    mcplex_upstream_t *u = owner;
    mcplex_upstream_call_t *call = call_find(u, tag);
    mcplex_op_t *op;
    size_t slot;
    char message[512];

    if (call == NULL)
        return;
    op = call->op;
    slot = call->slot;
    call_unlink(call);
    /* MCP: a server answers 404 to a session it ended (many answer 400): re-initialize that one
     * target with a fresh upstream session and send the request once more. */
    if ((http_status == 404 || http_status == 400) && op != NULL && op->kind == MUX_OP_ROUTED && !op->retried &&
        u->transport != NULL && u->target->kind == MCPLEX_TARGET_STREAMABLE_HTTP &&
        mcplex_http_transport_session_id(u->transport) != NULL) {
        op->retried = 1;
        mcplex_log_info("mcp", "target '%s' answered HTTP %d to its session: re-initializing it", target_name(u),
                        http_status);
        mcplex_http_transport_set_session_id(u->transport, NULL);
        upstream_reinit(u, op);
        return;
    }
    if (http_status > 0)
        snprintf(message, sizeof(message), "target '%s' answered HTTP %d: %s", target_name(u), http_status,
                 reason != NULL ? reason : "");
    else
        snprintf(message, sizeof(message), "target '%s' failed: %s", target_name(u), reason != NULL ? reason : "");
    mcplex_log_warn("mcp", "%s", message);
    if (op != NULL)
        op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
}

static void
transport_on_closed(void *owner, const char *reason)
{
    mcplex_upstream_t *u = owner;

    mcplex_log_warn("mcp", "target '%s' closed: %s", target_name(u), reason != NULL ? reason : "");
    if (u->shared != NULL) {
        shared_closed(u->shared, reason != NULL ? reason : "closed");
        return;
    }
    u->state = MCPLEX_UPSTREAM_FAILED;
    free(u->failure);
    u->failure = mcplex_strdup(reason != NULL ? reason : "closed");
    /* The owner still closes a dead transport (allowed from inside on_closed): it frees it. */
    if (u->transport != NULL) {
        mcplex_transport_close(u->transport);
        u->transport = NULL;
    }
    upstream_fail_calls(u, u->failure);
}

static const mcplex_transport_cbs_t transport_cbs = {
    .on_message = transport_on_message,
    .on_send_failed = transport_on_send_failed,
    .on_closed = transport_on_closed,
};

/* Starts the transport of |u|. Returns 0, or -1 with u->failure set. */
static int
upstream_start(mcplex_upstream_t *u)
{
    mcplex_session_t *s = u->session;
    const mcplex_mcp_target_t *t = u->target;
    struct mcplex_http_pool *pool;
    char err[256] = "";

    switch (t->kind) {
    case MCPLEX_TARGET_STDIO:
        u->transport = mcplex_stdio_transport_create(s->worker->base, t->name, &t->stdio, &transport_cbs, u, err,
                                                     sizeof(err));
        break;
    case MCPLEX_TARGET_STREAMABLE_HTTP:
        pool = mcplex_worker_http_pool(s->worker, s->snapshot, t->http.cluster);
        if (pool == NULL) {
            snprintf(err, sizeof(err), "cluster '%s' has no endpoints", t->http.cluster);
            break;
        }
        u->transport = mcplex_http_transport_create(s->worker->base, t->name, pool, &t->http, 0, &transport_cbs, u);
        break;
    case MCPLEX_TARGET_SSE:
        snprintf(err, sizeof(err), "legacy HTTP+SSE targets are not supported yet");
        break;
    }
    if (u->transport == NULL) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(err[0] != '\0' ? err : "could not start");
        return -1;
    }
    return 0;
}

/* ---- shared stdio children: lifecycle ------------------------------------------------------------ */

/* Copies what the shared child said in its InitializeResult to a session's view of it. */
static void
shared_copy_to(const mcplex_shared_target_t *sh, mcplex_upstream_t *u)
{
    free(u->protocol_version);
    u->protocol_version = mcplex_strdup(sh->self.protocol_version);
    cJSON_Delete(u->capabilities);
    u->capabilities = sh->self.capabilities != NULL ? cJSON_Duplicate(sh->self.capabilities, 1) : NULL;
    free(u->instructions);
    u->instructions = mcplex_strdup(sh->self.instructions);
    free(u->failure);
    u->failure = NULL;
    u->state = MCPLEX_UPSTREAM_READY;
}

static void shared_waiter_done(mcplex_op_t *op, size_t slot, int ok, const char *why);

/* Completes every waiter (the list is detached first: completing one may end sessions). */
static void
shared_wake(mcplex_shared_target_t *sh, int ok, const char *why)
{
    shared_waiter_t *w = sh->waiters;

    sh->waiters = NULL;
    while (w != NULL) {
        shared_waiter_t *next = w->next;
        mcplex_op_t *op = w->op;
        size_t slot = w->slot;
        free(w);
        shared_waiter_done(op, slot, ok, why);
        w = next;
    }
}

static void
shared_init_failed(mcplex_shared_target_t *sh, const char *why)
{
    char message[512];

    snprintf(message, sizeof(message), "target '%s' (shared) failed to initialize: %s", sh->target->name, why);
    sh->self.state = MCPLEX_UPSTREAM_FAILED;
    free(sh->self.failure);
    sh->self.failure = mcplex_strdup(message);
    mcplex_log_warn("mcp", "%s", message);
    shared_wake(sh, 0, message);
}

static void
shared_init_result(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg)
{
    char message[512];

    if (upstream_accept_initialize(&sh->self, msg, message, sizeof(message)) != 0) {
        shared_init_failed(sh, message);
        return;
    }
    sh->backoff_ms = 0;
    mcplex_log_info("mcp", "shared target '%s' initialized (%zu sessions)", sh->target->name, sh->n_members);
    shared_wake(sh, 1, NULL);
}

/* Starts the child and its initialize (mcplex's own client identity: no session's). */
static int
shared_start(mcplex_shared_target_t *sh)
{
    char err[256] = "";
    cJSON *params, *caps, *info, *req;
    int rc;

    if (sh->transport == NULL) {
        sh->transport = mcplex_stdio_transport_create(sh->base, sh->target->name, &sh->target->stdio,
                                                      &transport_cbs, &sh->self, err, sizeof(err));
        sh->self.transport = sh->transport;
        if (sh->transport == NULL) {
            shared_init_failed(sh, err[0] != '\0' ? err : "could not start");
            return -1;
        }
    }
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "protocolVersion", mcplex_mcp_protocol_versions[0]);
    caps = cJSON_AddObjectToObject(params, "capabilities");
    (void)caps;
    info = cJSON_AddObjectToObject(params, "clientInfo");
    cJSON_AddStringToObject(info, "name", "mcplex");
    cJSON_AddStringToObject(info, "version", MCPLEX_VERSION);
    req = request_new("initialize", params);
    cJSON_Delete(params);
    sh->self.state = MCPLEX_UPSTREAM_INITIALIZING;
    rc = upstream_call(&sh->self, NULL, 0, req, target_deadline_ms(&sh->self, 1));
    cJSON_Delete(req);
    if (rc != 0) {
        shared_init_failed(sh, "could not send initialize");
        return -1;
    }
    return 0;
}

/*
 * |u| (slot |slot| of |op|) needs the shared child ready: 1 if it is (|u| updated), 0 if |op| now
 * waits for it, -1 if it cannot be started now (|u| failed).
 */
static int
shared_ready_or_wait(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot)
{
    mcplex_shared_target_t *sh = u->shared;
    shared_waiter_t *w;

    if (sh->self.state == MCPLEX_UPSTREAM_READY) {
        shared_copy_to(sh, u);
        return 1;
    }
    if (sh->self.state == MCPLEX_UPSTREAM_FAILED && now_ms() < sh->restart_after_ms) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(sh->self.failure != NULL ? sh->self.failure : "restarting");
        return -1;
    }
    w = mcplex_calloc(1, sizeof(*w));
    w->op = op;
    w->slot = slot;
    w->next = sh->waiters;
    sh->waiters = w;
    u->state = MCPLEX_UPSTREAM_INITIALIZING;
    if (sh->self.state == MCPLEX_UPSTREAM_INITIALIZING)
        return 0;
    if (sh->self.state == MCPLEX_UPSTREAM_FAILED) {
        sh->backoff_ms = sh->backoff_ms ? sh->backoff_ms * 2 : MUX_RESTART_BACKOFF_MIN_MS;
        if (sh->backoff_ms > MUX_RESTART_BACKOFF_MAX_MS)
            sh->backoff_ms = MUX_RESTART_BACKOFF_MAX_MS;
        sh->restart_after_ms = now_ms() + sh->backoff_ms;
        sh->restarts++;
    }
    shared_start(sh); /* on failure the waiters (this one too) were woken already */
    return 0;
}

/* Attaches |u| to the worker's child for its target (created on first use). */
static void
shared_attach(mcplex_upstream_t *u)
{
    mcplex_session_t *s = u->session;
    mcplex_session_table_t *table = s->worker->sessions;
    char *key = mcplex_sprintf("%s/%s#%llu", s->backend_name, u->target->name,
                               (unsigned long long)s->snapshot->generation);
    mcplex_shared_target_t *sh = mcplex_strmap_get(&table->shared, key);

    if (sh == NULL) {
        sh = mcplex_calloc(1, sizeof(*sh));
        sh->key = key;
        key = NULL;
        sh->table = table;
        sh->base = s->worker->base;
        sh->snapshot = mcplex_snapshot_ref(s->snapshot);
        sh->target = u->target;
        sh->next_id = 1;
        sh->self.shared = sh;
        sh->self.target = u->target;
        mcplex_strmap_put(&table->shared, sh->key, sh);
    }
    free(key);
    if (sh->n_members == sh->cap_members) {
        sh->cap_members = sh->cap_members ? sh->cap_members * 2 : 8;
        sh->members = mcplex_realloc(sh->members, sh->cap_members * sizeof(*sh->members));
    }
    sh->members[sh->n_members++] = u;
    u->shared = sh;
}

static void
shared_free_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_shared_target_t *sh = arg;

    (void)fd;
    (void)what;
    free(sh->self.failure);
    free(sh->self.protocol_version);
    cJSON_Delete(sh->self.capabilities);
    free(sh->self.instructions);
    mcplex_snapshot_unref(sh->snapshot);
    free(sh->members);
    free(sh->key);
    free(sh);
}

void
mcplex_mux_shared_detach(mcplex_upstream_t *u)
{
    mcplex_shared_target_t *sh = u->shared;
    static const struct timeval now = {0, 0};

    if (sh == NULL)
        return;
    mcplex_mux_drop_calls(u);
    for (size_t i = 0; i < sh->n_members; i++) {
        if (sh->members[i] == u) {
            sh->members[i] = sh->members[--sh->n_members];
            break;
        }
    }
    u->shared = NULL;
    if (sh->n_members > 0 || sh->closing)
        return;
    /* The last session out stops the child. */
    sh->closing = 1;
    mcplex_strmap_remove(&sh->table->shared, sh->key);
    while (sh->calls != NULL)
        call_unlink(sh->calls);
    while (sh->waiters != NULL) {
        shared_waiter_t *w = sh->waiters;
        sh->waiters = w->next;
        free(w);
    }
    if (sh->transport != NULL)
        mcplex_transport_close(sh->transport);
    sh->transport = sh->self.transport = NULL;
    if (event_base_once(sh->base, -1, EV_TIMEOUT, shared_free_cb, sh, &now) != 0)
        mcplex_log_error("mcp", "could not schedule a shared target's free; leaking it");
}

/* Forgets every wait of |op| (it is being freed). */
static void
shared_forget_op(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;

    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_shared_target_t *sh = s->upstreams[i].shared;
        shared_waiter_t **pp;
        if (sh == NULL)
            continue;
        pp = &sh->waiters;
        while (*pp != NULL) {
            if ((*pp)->op == op) {
                shared_waiter_t *w = *pp;
                *pp = w->next;
                free(w);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

/* The child died: every session's call to it fails; each session restarts it on next use. */
static void
shared_closed(mcplex_shared_target_t *sh, const char *reason)
{
    char message[512];

    snprintf(message, sizeof(message), "target '%s' is unavailable: %s", sh->target->name, reason);
    sh->self.state = MCPLEX_UPSTREAM_FAILED;
    free(sh->self.failure);
    sh->self.failure = mcplex_strdup(reason);
    if (sh->transport != NULL)
        mcplex_transport_close(sh->transport);
    sh->transport = sh->self.transport = NULL;
    for (size_t i = 0; i < sh->n_members; i++) {
        mcplex_upstream_t *m = sh->members[i];
        m->state = MCPLEX_UPSTREAM_FAILED;
        free(m->failure);
        m->failure = mcplex_strdup(reason);
    }
    while (sh->calls != NULL) {
        mcplex_upstream_call_t *call = sh->calls;
        mcplex_op_t *op = call->op;
        size_t slot = call->slot;
        call_unlink(call);
        if (op != NULL)
            op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
    }
    shared_wake(sh, 0, message);
}

/* Notifications of a shared child: only to the session they concern. */
static void
shared_notification(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg)
{
    const char *m = msg->method;
    unsigned bits = 0;

    if (strcmp(m, "notifications/tools/list_changed") == 0)
        bits = MCPLEX_LIST_CHANGED_TOOLS;
    else if (strcmp(m, "notifications/prompts/list_changed") == 0)
        bits = MCPLEX_LIST_CHANGED_PROMPTS;
    else if (strcmp(m, "notifications/resources/list_changed") == 0)
        bits = MCPLEX_LIST_CHANGED_RESOURCES;
    if (bits != 0) {
        for (size_t i = 0; i < sh->n_members; i++)
            mcplex_session_list_changed(sh->members[i]->session, bits);
        return;
    }
    if (strcmp(m, "notifications/progress") == 0) {
        /* The child-unique token names the one operation it belongs to. */
        cJSON *token = cJSON_GetObjectItemCaseSensitive(msg->params, "progressToken");
        char *raw = token != NULL ? mcplex_json_print(token) : NULL;
        for (size_t i = 0; raw != NULL && i < sh->n_members; i++) {
            mcplex_session_t *s = sh->members[i]->session;
            for (mcplex_op_t *op = s->ops; op != NULL; op = op->next) {
                if (op->progress_up != NULL && strcmp(op->progress_up, raw) == 0) {
                    cJSON_ReplaceItemInObjectCaseSensitive(msg->params, "progressToken",
                                                           cJSON_CreateRaw(op->progress_token));
                    deliver(s, op, msg->root);
                    free(raw);
                    return;
                }
            }
        }
        free(raw);
        return;
    }
    if (strcmp(m, "notifications/message") == 0) {
        /* Logs go only where they cannot leak: to the session of the one call in flight. */
        mcplex_upstream_call_t *only = NULL;
        for (mcplex_upstream_call_t *c = sh->calls; c != NULL; c = c->next) {
            if (c->upstream == &sh->self)
                continue;
            if (only != NULL)
                return;
            only = c;
        }
        if (only != NULL && only->upstream->session != NULL)
            upstream_notification(only->upstream, msg);
        return;
    }
    if (strcmp(m, "notifications/resources/updated") == 0) {
        for (size_t i = 0; i < sh->n_members; i++) {
            mcplex_upstream_t *u = sh->members[i];
            cJSON *copy = cJSON_Duplicate(msg->root, 1);
            prefix_string_member(u->session, u->index, cJSON_GetObjectItemCaseSensitive(copy, "params"), "uri", 1);
            deliver(u->session, NULL, copy);
            cJSON_Delete(copy);
        }
    }
}

/* A routed request to a shared child that died: restart it (shared backoff) and wait. */
static int
shared_reinit(mcplex_upstream_t *u, mcplex_op_t *op)
{
    char message[512];
    int r = shared_ready_or_wait(u, op, op->target);

    if (r == 1) {
        shared_waiter_done(op, op->target, 1, NULL);
        return 0;
    }
    if (r < 0) {
        snprintf(message, sizeof(message), "target '%s' is restarting: %s", target_name(u),
                 u->failure != NULL ? u->failure : "unavailable");
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    return 0;
}

/* ---- initialize -------------------------------------------------------------------------------- */

/* The client capabilities mcplex passes to targets: the client's own (sampling, elicitation
 * and roots requests are relayed to it), minus tasks, which mcplex does not relay yet. */
static cJSON *
upstream_client_capabilities(const mcplex_session_t *s)
{
    cJSON *caps = s->client_capabilities != NULL ? cJSON_Duplicate(s->client_capabilities, 1)
                                                 : cJSON_CreateObject();

    cJSON_DeleteItemFromObjectCaseSensitive(caps, "tasks");
    if (s->modern) {
        /* 2026-07-28 has no server -> client requests: targets must not count on them. */
        cJSON_DeleteItemFromObjectCaseSensitive(caps, "sampling");
        cJSON_DeleteItemFromObjectCaseSensitive(caps, "elicitation");
        cJSON_DeleteItemFromObjectCaseSensitive(caps, "roots");
    }
    return caps;
}

static cJSON *
initialize_params(const mcplex_session_t *s)
{
    cJSON *params = cJSON_CreateObject();
    cJSON *info;

    cJSON_AddStringToObject(params, "protocolVersion", s->protocol_version);
    cJSON_AddItemToObject(params, "capabilities", upstream_client_capabilities(s));
    if (s->client_info != NULL) {
        cJSON_AddItemToObject(params, "clientInfo", cJSON_Duplicate(s->client_info, 1));
    } else {
        info = cJSON_AddObjectToObject(params, "clientInfo");
        cJSON_AddStringToObject(info, "name", "mcplex");
        cJSON_AddStringToObject(info, "version", MCPLEX_VERSION);
    }
    return params;
}

/*
 * Takes a target's answer to initialize: version check, capabilities, instructions; the target
 * becomes READY and gets notifications/initialized. Returns 0, or -1 with |message| set.
 */
static int
upstream_accept_initialize(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg, char *message, size_t len)
{
    const char *version;
    const cJSON *caps;

    if (msg->kind == MCPLEX_JSONRPC_ERROR) {
        const char *m = json_string(msg->error, "message");
        snprintf(message, len, "target '%s' rejected initialize: %s", target_name(u), m ? m : "error");
        return -1;
    }
    version = json_string(msg->result, "protocolVersion");
    if (!mcplex_mcp_protocol_version_supported(version)) {
        snprintf(message, len, "target '%s' answered unsupported protocol version '%s'", target_name(u),
                 version != NULL ? version : "(none)");
        return -1;
    }
    caps = cJSON_GetObjectItemCaseSensitive(msg->result, "capabilities");
    free(u->protocol_version);
    u->protocol_version = mcplex_strdup(version);
    cJSON_Delete(u->capabilities);
    u->capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
    free(u->instructions);
    u->instructions = mcplex_strdup(json_string(msg->result, "instructions"));
    u->state = MCPLEX_UPSTREAM_READY;
    u->backoff_ms = 0;
    mcplex_transport_set_protocol_version(u->transport, version);
    upstream_send_notification(u, "notifications/initialized", NULL);
    return 0;
}

static void
initialize_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];
    char message[512];

    if (upstream_accept_initialize(u, msg, message, sizeof(message)) != 0) {
        op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    op->slots[slot].state = MUX_SLOT_DONE;
}

static int
upstream_has_capability(const mcplex_upstream_t *u, const char *cap)
{
    return u->state == MCPLEX_UPSTREAM_READY && cJSON_GetObjectItemCaseSensitive(u->capabilities, cap) != NULL;
}

static cJSON *
initialize_merge(mcplex_session_t *s)
{
    static const char *const caps[] = {"tools", "prompts", "resources", "logging", "completions"};
    const mcplex_mcp_backend_t *b = s->backend;
    cJSON *result = cJSON_CreateObject();
    cJSON *capabilities, *info;
    char *instructions = NULL;

    cJSON_AddStringToObject(result, "protocolVersion", s->protocol_version);
    capabilities = cJSON_AddObjectToObject(result, "capabilities");
    for (size_t c = 0; c < MCPLEX_ARRAY_SIZE(caps); c++) {
        cJSON *merged = NULL;
        for (size_t i = 0; i < s->n_upstreams; i++) {
            const cJSON *theirs;
            if (!upstream_has_capability(&s->upstreams[i], caps[c]))
                continue;
            if (merged == NULL)
                merged = cJSON_AddObjectToObject(capabilities, caps[c]);
            /* resources.subscribe: offered when any target offers it (routed to that target). */
            theirs = cJSON_GetObjectItemCaseSensitive(s->upstreams[i].capabilities, caps[c]);
            if (c == 2 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(theirs, "subscribe")) &&
                cJSON_GetObjectItemCaseSensitive(merged, "subscribe") == NULL)
                cJSON_AddTrueToObject(merged, "subscribe");
        }
        /* mcplex itself announces list changes (targets coming and going, relayed changes). */
        if (merged != NULL && c < 3)
            cJSON_AddTrueToObject(merged, "listChanged");
    }
    info = cJSON_AddObjectToObject(result, "serverInfo");
    cJSON_AddStringToObject(info, "name", b->server_name != NULL ? b->server_name : "mcplex");
    cJSON_AddStringToObject(info, "version", b->server_version != NULL ? b->server_version : MCPLEX_VERSION);
    if (b->server_title != NULL)
        cJSON_AddStringToObject(info, "title", b->server_title);
    /* Instructions: passed through for one unprefixed target, else one section per target
     * (tool names inside them are the targets' own, unprefixed). */
    for (size_t i = 0; i < s->n_upstreams; i++) {
        const mcplex_upstream_t *u = &s->upstreams[i];
        char *next;
        if (u->state != MCPLEX_UPSTREAM_READY || u->instructions == NULL || u->instructions[0] == '\0')
            continue;
        if (!s->prefixed && s->n_upstreams == 1)
            next = mcplex_strdup(u->instructions);
        else
            next = mcplex_sprintf("%s%s## %s\n%s", instructions ? instructions : "", instructions ? "\n\n" : "",
                                  target_name(u), u->instructions);
        free(instructions);
        instructions = next;
    }
    if (instructions != NULL) {
        cJSON_AddStringToObject(result, "instructions", instructions);
        free(instructions);
    }
    return result;
}

static void
initialize_finish(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;
    size_t ready = 0, failed = 0;
    cJSON *data, *list;
    char message[1024];
    size_t off;

    for (size_t i = 0; i < s->n_upstreams; i++) {
        if (s->upstreams[i].state == MCPLEX_UPSTREAM_READY)
            ready++;
        else
            failed++;
    }
    if (failed > 0 && (s->backend->failure_mode == MCPLEX_FAIL_CLOSED || ready == 0)) {
        data = cJSON_CreateObject();
        list = cJSON_AddArrayToObject(data, "targets");
        off = (size_t)snprintf(message, sizeof(message), "%s",
                               ready == 0 ? "no target could be initialized:" : "initialize failed:");
        for (size_t i = 0; i < s->n_upstreams; i++) {
            const mcplex_upstream_t *u = &s->upstreams[i];
            cJSON *entry;
            if (u->state == MCPLEX_UPSTREAM_READY)
                continue;
            entry = cJSON_CreateObject();
            cJSON_AddStringToObject(entry, "name", target_name(u));
            cJSON_AddStringToObject(entry, "error", u->failure != NULL ? u->failure : "failed");
            cJSON_AddItemToArray(list, entry);
            if (off < sizeof(message))
                off += (size_t)snprintf(message + off, sizeof(message) - off, " target '%s': %s;", target_name(u),
                                        u->failure != NULL ? u->failure : "failed");
        }
        mcplex_log_warn("mcp", "backend '%s': %s", s->backend_name, message);
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, data);
        cJSON_Delete(data);
        mcplex_session_close(s, "initialize failed");
        return;
    }
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        if (u->state == MCPLEX_UPSTREAM_READY)
            continue;
        mcplex_log_warn("mcp", "backend '%s': target '%s' left out of the session (fail open): %s",
                        s->backend_name, target_name(u), u->failure != NULL ? u->failure : "failed");
        /* A target that did not initialize in time is stopped, not left running. */
        mcplex_mux_drop_calls(u);
        if (u->transport != NULL) {
            mcplex_transport_close(u->transport);
            u->transport = NULL;
        }
    }
    if (op->then != NULL) {
        stateless_continue(op);
        return;
    }
    if (s->id == NULL && mcplex_session_register(s) != 0) {
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, "could not create a session id", NULL);
        mcplex_session_close(s, "session id");
        return;
    }
    mcplex_log_info("mcp", "session %.12s... on backend '%s': %zu of %zu targets ready", s->id, s->backend_name,
                    ready, s->n_upstreams);
    op_reply_result(op, initialize_merge(s));
}

/* Runs the stateless request of |op| (an initialize op whose targets are ready). */
static void
stateless_continue(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;
    mcplex_jsonrpc_msg_t msg;
    mcplex_exchange_t *ex;

    if (strcmp(op->method, "server/discover") == 0) {
        /* DiscoverResult: versions, capabilities, identity and instructions. */
        cJSON *merged = initialize_merge(s);
        cJSON *result = cJSON_CreateObject();
        cJSON *versions = cJSON_AddArrayToObject(result, "supportedVersions");
        cJSON_AddItemToArray(versions, cJSON_CreateString(MCPLEX_MCP_MODERN_VERSION));
        for (size_t i = 0; mcplex_mcp_protocol_versions[i] != NULL; i++)
            cJSON_AddItemToArray(versions, cJSON_CreateString(mcplex_mcp_protocol_versions[i]));
        cJSON *caps = cJSON_DetachItemFromObject(merged, "capabilities"), *cap;
        /* Modern list changes need subscriptions/listen, which mcplex does not serve yet. */
        cJSON_ArrayForEach(cap, caps) cJSON_DeleteItemFromObjectCaseSensitive(cap, "listChanged");
        cJSON_AddItemToObject(result, "capabilities", caps);
        cJSON_AddItemToObject(result, "serverInfo", cJSON_DetachItemFromObject(merged, "serverInfo"));
        if (cJSON_GetObjectItemCaseSensitive(merged, "instructions") != NULL)
            cJSON_AddItemToObject(result, "instructions", cJSON_DetachItemFromObject(merged, "instructions"));
        cJSON_Delete(merged);
        op_reply_result(op, result);
        return;
    }
    memset(&msg, 0, sizeof(msg));
    msg.root = op->then;
    op->then = NULL;
    msg.kind = MCPLEX_JSONRPC_REQUEST;
    msg.method = json_string(msg.root, "method");
    msg.params = cJSON_GetObjectItemCaseSensitive(msg.root, "params");
    msg.id_raw = mcplex_strdup(op->client_id);
    ex = op->ex;
    op->ex = NULL;
    /* The request's op is created before the initialize op goes, so the session stays open. */
    mcplex_mux_handle(s, &msg, ex);
    op_free(op);
}

static void initialize_start(mcplex_session_t *s, const char *id_raw, const char *method, cJSON *then,
                             mcplex_exchange_t *ex);

void
mcplex_mux_stateless(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(msg->params, "_meta");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/clientCapabilities");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/clientInfo");
    cJSON *then = msg->root;
    char *method = mcplex_strdup(msg->method), *id = mcplex_strdup(msg->id_raw);

    s->modern = 1;
    /* Targets speak the legacy era: mcplex initializes them with the newest legacy version. */
    s->protocol_version = mcplex_strdup(mcplex_mcp_protocol_versions[0]);
    s->client_capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : NULL;
    s->client_info = cJSON_IsObject(info) ? cJSON_Duplicate(info, 1) : NULL;
    msg->root = NULL;
    mcplex_jsonrpc_msg_dispose(msg);
    initialize_start(s, id, method, then, ex);
    free(method);
    free(id);
}

void
mcplex_mux_initialize(mcplex_session_t *s, const char *id_raw, const cJSON *params, mcplex_exchange_t *ex)
{
    const char *requested = json_string(params, "protocolVersion");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(params, "capabilities");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(params, "clientInfo");

    /* Version negotiation (MCP lifecycle): echo a version we speak, else offer our latest. */
    s->protocol_version = mcplex_strdup(mcplex_mcp_protocol_version_supported(requested)
                                            ? requested
                                            : mcplex_mcp_protocol_versions[0]);
    s->client_capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : NULL;
    s->client_info = cJSON_IsObject(info) ? cJSON_Duplicate(info, 1) : NULL;
    initialize_start(s, id_raw, "initialize", NULL, ex);
}

/*
 * Starts every target and initializes each with its own deadline; the op finishes in
 * initialize_finish (|then| != NULL: a stateless request to run once the targets are ready).
 */
static void
initialize_start(mcplex_session_t *s, const char *id_raw, const char *method, cJSON *then, mcplex_exchange_t *ex)
{
    mcplex_op_t *op;
    cJSON *init_params;

    op = op_create(s, MUX_OP_INITIALIZE, method, id_raw, ex);
    op->then = then;
    init_params = initialize_params(s);
    op->outstanding = 1; /* held while starting, so no synchronous failure finishes the op early */
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        cJSON *req;
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
        if (u->target->kind == MCPLEX_TARGET_STDIO && u->target->stdio.shared) {
            int r;
            shared_attach(u);
            r = shared_ready_or_wait(u, op, i);
            if (r == 1) {
                op->slots[i].state = MUX_SLOT_DONE;
                op->outstanding--;
            } else if (r < 0) {
                op->slots[i].state = MUX_SLOT_FAILED;
                op->outstanding--;
            }
            continue;
        }
        if (upstream_start(u) != 0) {
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
            continue;
        }
        u->state = MCPLEX_UPSTREAM_INITIALIZING;
        req = request_new("initialize", init_params);
        if (upstream_call(u, op, i, req, target_deadline_ms(u, 1)) != 0) {
            u->state = MCPLEX_UPSTREAM_FAILED;
            u->failure = mcplex_strdup("could not send initialize");
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
        }
        cJSON_Delete(req);
    }
    cJSON_Delete(init_params);
    if (--op->outstanding == 0)
        initialize_finish(op);
}

/* ---- result rewriting (target -> client) ---------------------------------------------------------- */

static void
prefix_string_member(const mcplex_session_t *s, size_t target, cJSON *obj, const char *key, int uri)
{
    const char *value = json_string(obj, key);
    char *prefixed;

    if (value == NULL || !s->prefixed)
        return;
    prefixed = uri ? mcplex_naming_join_uri(s->target_names[target], value)
                   : mcplex_naming_join_name(s->target_names[target], s->backend->separator, value);
    json_replace_string(obj, key, prefixed);
    free(prefixed);
}

/* Prefixes the URI of one content block: embedded resources and resource links. */
static void
prefix_content_block(const mcplex_session_t *s, size_t target, cJSON *block)
{
    const char *type = json_string(block, "type");

    if (type == NULL)
        return;
    if (strcmp(type, "resource") == 0)
        prefix_string_member(s, target, cJSON_GetObjectItemCaseSensitive(block, "resource"), "uri", 1);
    else if (strcmp(type, "resource_link") == 0)
        prefix_string_member(s, target, block, "uri", 1);
}

static void
rewrite_routed_result(const mcplex_session_t *s, size_t target, const char *method, cJSON *result)
{
    cJSON *item;

    if (!s->prefixed || !cJSON_IsObject(result))
        return;
    if (strcmp(method, "tools/call") == 0) {
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "content"))
            prefix_content_block(s, target, item);
    } else if (strcmp(method, "prompts/get") == 0) {
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "messages")) {
            cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
            if (cJSON_IsArray(content)) {
                cJSON *block;
                cJSON_ArrayForEach(block, content) prefix_content_block(s, target, block);
            } else {
                prefix_content_block(s, target, content);
            }
        }
    } else if (strcmp(method, "resources/read") == 0) {
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "contents"))
            prefix_string_member(s, target, item, "uri", 1);
    }
}

/* ---- list fan-out ----------------------------------------------------------------------------- */

/* Owner map of |list_key| ("tools", "prompts", "resources"), or NULL (templates). */
static mcplex_strmap_t *
owner_map(mcplex_session_t *s, const char *list_key)
{
    if (strcmp(list_key, "tools") == 0)
        return &s->owners[0];
    if (strcmp(list_key, "prompts") == 0)
        return &s->owners[1];
    if (strcmp(list_key, "resources") == 0)
        return &s->owners[2];
    return NULL;
}

/*
 * Unprefixed multiplexing (prefix_mode NEVER): remembers which target serves |item|'s name or
 * URI. Returns 0 if another target already serves it (the item is then left out, so the client
 * never sees a name it cannot call unambiguously), 1 otherwise.
 */
static int
owner_learn(mcplex_session_t *s, const char *list_key, size_t target, const cJSON *item)
{
    mcplex_strmap_t *map = owner_map(s, list_key);
    const char *key = json_string(item, strcmp(list_key, "resources") == 0 ? "uri" : "name");
    uintptr_t owner;

    if (map == NULL || key == NULL)
        return 1;
    owner = (uintptr_t)mcplex_strmap_get(map, key);
    if (owner != 0 && owner != target + 1) {
        mcplex_log_warn("mcp", "'%s' is served by targets '%s' and '%s'; keeping the first", key,
                        s->target_names[owner - 1], s->target_names[target]);
        return 0;
    }
    mcplex_strmap_put(map, key, (void *)(target + 1));
    return 1;
}

static const char *
list_capability(const char *method)
{
    if (strcmp(method, "tools/list") == 0)
        return "tools";
    if (strcmp(method, "prompts/list") == 0)
        return "prompts";
    return "resources";
}

static const char *
list_key(const char *method)
{
    if (strcmp(method, "tools/list") == 0)
        return "tools";
    if (strcmp(method, "prompts/list") == 0)
        return "prompts";
    if (strcmp(method, "resources/templates/list") == 0)
        return "resourceTemplates";
    return "resources";
}

static int
list_send_page(mcplex_op_t *op, size_t slot, const char *cursor)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];
    cJSON *params = op->request != NULL ? cJSON_Duplicate(op->request, 1) : cJSON_CreateObject();
    cJSON *req;
    int rc;

    cJSON_DeleteItemFromObjectCaseSensitive(params, "cursor");
    if (cursor != NULL)
        cJSON_AddStringToObject(params, "cursor", cursor);
    req = request_new(op->method, NULL);
    cJSON_AddItemToObject(req, "params", params);
    rc = upstream_call(u, op, slot, req, target_deadline_ms(u, 0));
    cJSON_Delete(req);
    return rc;
}

/*
 * Pagination across targets (MCP "Pagination": cursors are opaque; an invalid one is -32602).
 * A first page asks every target for its first page at once, so a client that never pages
 * still sees every target; the nextCursor then lists, for each target that has more, its own
 * upstream cursor. The cursor is sealed (AEAD) with the method and a per-session salt, so a
 * forged, foreign or stale cursor fails to open and gets -32602.
 */
static char *
cursor_seal(const mcplex_session_t *s, const char *method, const cJSON *pending)
{
    cJSON *c = cJSON_CreateObject();
    char *text, *sealed;

    cJSON_AddStringToObject(c, "m", method);
    cJSON_AddNumberToObject(c, "k", (double)(s->cursor_salt & 0xffffffffu));
    cJSON_AddItemToObject(c, "p", cJSON_Duplicate(pending, 1));
    text = mcplex_json_print(c);
    sealed = mcplex_seal(s->worker->seal_key, text, strlen(text));
    free(text);
    cJSON_Delete(c);
    return sealed;
}

/* Opens a cursor: returns the array [[target, "upstream cursor"], ...] (caller deletes), or NULL. */
static cJSON *
cursor_open(const mcplex_session_t *s, const char *method, const char *cursor)
{
    void *plain = NULL;
    size_t len = 0;
    cJSON *c = NULL, *pending = NULL, *entry;
    const cJSON *k;

    if (mcplex_unseal(s->worker->seal_key, cursor, &plain, &len) != 0)
        goto done;
    c = cJSON_ParseWithLength(plain, len);
    k = cJSON_GetObjectItemCaseSensitive(c, "k");
    if (c == NULL || json_string(c, "m") == NULL || strcmp(json_string(c, "m"), method) != 0 || !cJSON_IsNumber(k) ||
        (uint64_t)k->valuedouble != (s->cursor_salt & 0xffffffffu))
        goto done;
    pending = cJSON_DetachItemFromObjectCaseSensitive(c, "p");
    cJSON_ArrayForEach(entry, pending) {
        const cJSON *t = cJSON_GetArrayItem(entry, 0);
        if (!cJSON_IsArray(entry) || !cJSON_IsNumber(t) || t->valuedouble < 0 ||
            (size_t)t->valuedouble >= s->n_upstreams || !cJSON_IsString(cJSON_GetArrayItem(entry, 1))) {
            cJSON_Delete(pending);
            pending = NULL;
            break;
        }
    }
done:
    cJSON_Delete(c);
    free(plain);
    return pending;
}

static void
list_finish(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;
    cJSON *result = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(result, op->list_key);
    cJSON *pending = cJSON_CreateArray();

    for (size_t i = 0; i < s->n_upstreams; i++) {
        mux_slot_t *slot = &op->slots[i];
        if (slot->state == MUX_SLOT_FAILED) {
            if (s->backend->failure_mode == MCPLEX_FAIL_CLOSED) {
                cJSON_Delete(result);
                cJSON_Delete(pending);
                op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, slot->error, NULL);
                return;
            }
            mcplex_log_warn("mcp", "%s: %s (left out of the answer)", op->method, slot->error);
            continue;
        }
        while (slot->items != NULL && cJSON_GetArraySize(slot->items) > 0) {
            cJSON *item = cJSON_DetachItemFromArray(slot->items, 0);
            /* Unprefixed multiplexing: the first target in config order owns a shared name. */
            if (!s->prefixed && s->n_upstreams > 1 && !owner_learn(s, op->list_key, i, item)) {
                cJSON_Delete(item);
                continue;
            }
            cJSON_AddItemToArray(all, item);
        }
        if (slot->next_cursor != NULL) {
            cJSON *entry = cJSON_CreateArray();
            cJSON_AddItemToArray(entry, cJSON_CreateNumber((double)i));
            cJSON_AddItemToArray(entry, cJSON_CreateString(slot->next_cursor));
            cJSON_AddItemToArray(pending, entry);
        }
    }
    if (cJSON_GetArraySize(pending) > 0) {
        char *cursor = cursor_seal(s, op->method, pending);
        if (cursor != NULL)
            cJSON_AddStringToObject(result, "nextCursor", cursor);
        free(cursor);
    }
    cJSON_Delete(pending);
    op_reply_result(op, result);
}

/* Applies the target's tool curation to one tools/list item: 0 if hidden, else renamed and
 * re-described in place. */
static int
curate_tool(const mcplex_upstream_t *u, cJSON *tool)
{
    const char *name = json_string(tool, "name");
    const char *exposed, *description;

    if (name == NULL)
        return 1;
    if (!mcplex_curation_expose(u->target, name, &exposed, &description))
        return 0;
    if (exposed != name) {
        char *copy = mcplex_strdup(exposed);
        json_replace_string(tool, "name", copy);
        free(copy);
    }
    if (description != NULL)
        json_replace_string(tool, "description", description);
    return 1;
}

static void
list_slot_result(mcplex_op_t *op, size_t slot_index, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    mux_slot_t *slot = &op->slots[slot_index];
    const char *key = op->list_key;
    const char *next;
    cJSON *items, *item;
    char message[512];

    if (msg->kind == MCPLEX_JSONRPC_ERROR) {
        const char *m = json_string(msg->error, "message");
        snprintf(message, sizeof(message), "target '%s': %s", s->target_names[slot_index], m ? m : "error");
        op_slot_failed(op, slot_index, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    items = cJSON_GetObjectItemCaseSensitive(msg->result, key);
    if (slot->items == NULL)
        slot->items = cJSON_CreateArray();
    while (cJSON_IsArray(items) && cJSON_GetArraySize(items) > 0) {
        item = cJSON_DetachItemFromArray(items, 0);
        if (strcmp(key, "tools") == 0 && !curate_tool(&s->upstreams[slot_index], item)) {
            cJSON_Delete(item);
            continue;
        }
        if (strcmp(key, "tools") == 0 || strcmp(key, "prompts") == 0)
            prefix_string_member(s, slot_index, item, "name", 0);
        else if (strcmp(key, "resources") == 0)
            prefix_string_member(s, slot_index, item, "uri", 1);
        else
            prefix_string_member(s, slot_index, item, "uriTemplate", 1);
        cJSON_AddItemToArray(slot->items, item);
    }
    next = json_string(msg->result, "nextCursor");
    if (next != NULL && next[0] != '\0')
        slot->next_cursor = mcplex_strdup(next);
    slot->state = MUX_SLOT_DONE;
    if (--op->outstanding == 0)
        list_finish(op);
}

static void
mux_list(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const char *cap = list_capability(msg->method);
    const char *cursor = json_string(msg->params, "cursor");
    cJSON *pending = NULL, *entry;
    mcplex_op_t *op;

    if (cJSON_GetObjectItemCaseSensitive(msg->params, "cursor") != NULL &&
        (cursor == NULL || (pending = cursor_open(s, msg->method, cursor)) == NULL)) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL,
                                    s->id);
        return;
    }
    op = op_create(s, MUX_OP_LIST, msg->method, msg->id_raw, ex);
    op->list_key = list_key(msg->method);
    op->request = cJSON_IsObject(msg->params) ? cJSON_Duplicate(msg->params, 1) : NULL;
    if (pending != NULL) {
        /* A later page: only the targets that have more, each from its own cursor. */
        cJSON_ArrayForEach(entry, pending) {
            size_t i = (size_t)cJSON_GetArrayItem(entry, 0)->valuedouble;
            if (op->slots[i].state != MUX_SLOT_UNUSED || !upstream_has_capability(&s->upstreams[i], cap))
                continue;
            op->slots[i].state = MUX_SLOT_PENDING;
            op->outstanding++;
            if (list_send_page(op, i, cJSON_GetArrayItem(entry, 1)->valuestring) != 0) {
                op->slots[i].state = MUX_SLOT_FAILED;
                op->slots[i].error = mcplex_sprintf("target '%s' is unavailable", s->target_names[i]);
                op->outstanding--;
            }
        }
        cJSON_Delete(pending);
    } else {
        for (size_t i = 0; i < s->n_upstreams; i++) {
            if (!upstream_has_capability(&s->upstreams[i], cap))
                continue;
            op->slots[i].state = MUX_SLOT_PENDING;
            op->outstanding++;
            if (list_send_page(op, i, NULL) != 0) {
                op->slots[i].state = MUX_SLOT_FAILED;
                op->slots[i].error = mcplex_sprintf("target '%s' is unavailable", s->target_names[i]);
                op->outstanding--;
            }
        }
    }
    if (op->outstanding == 0)
        list_finish(op);
}

/* ---- routed requests -------------------------------------------------------------------------- */

static void
routed_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    char *text;

    if (msg->kind == MCPLEX_JSONRPC_RESULT) {
        rewrite_routed_result(s, slot, op->method, msg->result);
        modern_decorate(s, op->method, msg->result);
    }
    /* Pass the target's answer through with the client's id restored. */
    mcplex_jsonrpc_set_id(msg->root, op->client_id);
    text = mcplex_json_print(msg->root);
    mcplex_exchange_reply_json(op->ex, 200, text, strlen(text), s->id);
    free(text);
    op->ex = NULL;
    op_free(op);
}

/*
 * Finds the target of a routed request and rewrites the prefixed name or URI in |params| in
 * place. Returns the target index, or -1 with |*code| and |message| set.
 */
static int
route_target(mcplex_session_t *s, const char *method, cJSON *params, int *code, char *message, size_t len)
{
    const char *key = "name";
    int uri = 0, idx;
    cJSON *holder = params;
    const char *value, *rest = NULL;
    const char *what = "tool";

    if (strcmp(method, "prompts/get") == 0) {
        what = "prompt";
    } else if (strncmp(method, "resources/", 10) == 0) {
        key = "uri";
        uri = 1;
        what = "resource";
    } else if (strcmp(method, "completion/complete") == 0) {
        const char *type;
        holder = cJSON_GetObjectItemCaseSensitive(params, "ref");
        type = json_string(holder, "type");
        if (type != NULL && strcmp(type, "ref/resource") == 0) {
            key = "uri";
            uri = 1;
            what = "resource";
        } else {
            what = "prompt";
        }
    }
    value = json_string(holder, key);
    if (value == NULL) {
        *code = MCPLEX_JSONRPC_INVALID_PARAMS;
        snprintf(message, len, "Missing %s", uri ? "uri" : "name");
        return -1;
    }
    if (!s->prefixed) {
        /* One unprefixed target serves everything; with several (prefix_mode NEVER) the owner
         * comes from the lists, and a URI no list named goes to the only target with the
         * capability, if there is exactly one. */
        uintptr_t owner = 0;
        if (s->n_upstreams == 1)
            return 0;
        owner = (uintptr_t)mcplex_strmap_get(&s->owners[uri ? 2 : strcmp(what, "prompt") == 0 ? 1 : 0], value);
        if (owner == 0 && uri) {
            for (size_t i = 0; i < s->n_upstreams; i++) {
                if (upstream_has_capability(&s->upstreams[i], "resources")) {
                    if (owner != 0) {
                        owner = 0;
                        break;
                    }
                    owner = i + 1;
                }
            }
        }
        if (owner == 0) {
            *code = MCPLEX_JSONRPC_INVALID_PARAMS;
            snprintf(message, len, "Unknown %s: %s", what, value);
            return -1;
        }
        return (int)(owner - 1);
    }
    idx = uri ? mcplex_naming_split_uri(value, s->target_names, s->n_upstreams, &rest)
              : mcplex_naming_split_name(value, s->backend->separator, s->target_names, s->n_upstreams, &rest);
    if (idx < 0) {
        *code = MCPLEX_JSONRPC_INVALID_PARAMS;
        snprintf(message, len, "Unknown %s: %s", what, value);
        return -1;
    }
    {
        char *plain = mcplex_strdup(rest);
        json_replace_string(holder, key, plain);
        free(plain);
    }
    return idx;
}


static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * (Re)initializes |u| for |op| (kind REINIT, holding the client's request in op->request): a dead
 * stdio child is started again, an HTTP target gets a fresh upstream session. When initialize
 * succeeds the request is sent (op_slot_result). Returns 0, or -1 with the op answered.
 */
static int
upstream_reinit(mcplex_upstream_t *u, mcplex_op_t *op)
{
    mcplex_session_t *s = u->session;
    cJSON *params, *req;
    char message[512];
    int rc;

    op->kind = MUX_OP_REINIT;
    if (u->shared != NULL)
        return shared_reinit(u, op);
    if (u->transport == NULL && upstream_start(u) != 0) {
        snprintf(message, sizeof(message), "target '%s' could not be restarted: %s", target_name(u), u->failure);
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    u->state = MCPLEX_UPSTREAM_INITIALIZING;
    params = initialize_params(s);
    req = request_new("initialize", params);
    rc = upstream_call(u, op, op->target, req, target_deadline_ms(u, 1));
    cJSON_Delete(req);
    cJSON_Delete(params);
    if (rc != 0) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        snprintf(message, sizeof(message), "target '%s' is unavailable", target_name(u));
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    return 0;
}

static void
reinit_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    mcplex_upstream_t *u = &s->upstreams[slot];
    char message[512];

    if (upstream_accept_initialize(u, msg, message, sizeof(message)) != 0) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return;
    }
    mcplex_log_info("mcp", "target '%s' is back (restart %u)", target_name(u), u->restarts);
    /* What the target offers may have changed while it was away. */
    mcplex_session_list_changed(s, MCPLEX_LIST_CHANGED_TOOLS | MCPLEX_LIST_CHANGED_PROMPTS |
                                       MCPLEX_LIST_CHANGED_RESOURCES);
    op->kind = MUX_OP_ROUTED;
    if (upstream_call(u, op, slot, op->request, s->route_timeout_ms) != 0) {
        snprintf(message, sizeof(message), "target '%s' is unavailable", target_name(u));
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
    }
}

/* A session waited for a shared child to be ready (|ok|) or to fail (|why|). */
static void
shared_waiter_done(mcplex_op_t *op, size_t slot, int ok, const char *why)
{
    mcplex_session_t *s = op->session;
    mcplex_upstream_t *u = &s->upstreams[slot];
    char message[512];

    if (ok && u->shared != NULL) {
        shared_copy_to(u->shared, u);
    } else {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(why != NULL ? why : "failed");
    }
    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        if (!ok) {
            op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, u->failure);
        } else {
            op->slots[slot].state = MUX_SLOT_DONE;
            if (--op->outstanding == 0)
                initialize_finish(op);
        }
        break;
    case MUX_OP_REINIT:
        if (!ok) {
            op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, u->failure, NULL);
            break;
        }
        op->kind = MUX_OP_ROUTED;
        if (upstream_call(u, op, slot, op->request, s->route_timeout_ms) != 0) {
            snprintf(message, sizeof(message), "target '%s' is unavailable", target_name(u));
            op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        }
        break;
    default:
        break;
    }
}

static void
mux_routed(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    char message[512];
    int code = 0, idx;
    mcplex_op_t *op;
    mcplex_upstream_t *u;
    cJSON *params = msg->params;
    const cJSON *token;

    if (!cJSON_IsObject(params)) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, "Missing params", NULL,
                                    s->id);
        return;
    }
    idx = route_target(s, msg->method, params, &code, message, sizeof(message));
    if (idx < 0) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, code, message, NULL, s->id);
        return;
    }
    u = &s->upstreams[idx];
    if (strcmp(msg->method, "tools/call") == 0) {
        /* Curation: only exposed tools can be called, under their exposed names. */
        const char *exposed = json_string(params, "name");
        const char *own = mcplex_curation_resolve(u->target, exposed);
        if (own == NULL) {
            snprintf(message, sizeof(message), "Unknown tool: %s", json_string(msg->params, "name"));
            mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, message, NULL, s->id);
            return;
        }
        if (own != exposed) {
            char *copy = mcplex_strdup(own);
            json_replace_string(params, "name", copy);
            free(copy);
        }
    }
    op = op_create(s, MUX_OP_ROUTED, msg->method, msg->id_raw, ex);
    op->target = (size_t)idx;
    op->slots[idx].state = MUX_SLOT_PENDING;
    op->outstanding = 1;
    token = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(params, "_meta"), "progressToken");
    if (token != NULL)
        op->progress_token = mcplex_json_print(token);
    if (token != NULL && u->shared != NULL) {
        /* Clients' tokens may collide on a shared child: it gets one of its own, mapped back. */
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
        char up[48];
        snprintf(up, sizeof(up), "\"mcplex-p%llu\"", (unsigned long long)++u->shared->next_token);
        cJSON_ReplaceItemInObjectCaseSensitive(meta, "progressToken", cJSON_CreateRaw(up));
        op->progress_up = mcplex_strdup(up);
    }
    /* The op keeps the request: it is re-sent if the target must be (re)initialized first. */
    op->request = msg->root;
    msg->root = NULL;
    msg->params = NULL;
    msg->method = NULL;
    if (u->state == MCPLEX_UPSTREAM_FAILED && u->target->kind == MCPLEX_TARGET_STDIO && u->protocol_version != NULL) {
        /* A stdio child that died after it had served: started again on next use, with backoff. */
        uint64_t now = now_ms();
        if (now < u->restart_after_ms) {
            snprintf(message, sizeof(message), "target '%s' is restarting (%s); retry in %llu ms", target_name(u),
                     u->failure != NULL ? u->failure : "exited", (unsigned long long)(u->restart_after_ms - now));
            op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
            return;
        }
        u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : MUX_RESTART_BACKOFF_MIN_MS;
        if (u->backoff_ms > MUX_RESTART_BACKOFF_MAX_MS)
            u->backoff_ms = MUX_RESTART_BACKOFF_MAX_MS;
        u->restart_after_ms = now + u->backoff_ms;
        u->restarts++;
        mcplex_log_info("mcp", "restarting target '%s' (%s)", target_name(u), u->failure ? u->failure : "exited");
        upstream_reinit(u, op);
        return;
    }
    if (u->state != MCPLEX_UPSTREAM_READY) {
        snprintf(message, sizeof(message), "target '%s' is unavailable: %s", target_name(u),
                 u->failure != NULL ? u->failure : "not initialized");
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return;
    }
    if (upstream_call(u, op, (size_t)idx, op->request, s->route_timeout_ms) != 0) {
        snprintf(message, sizeof(message), "target '%s' is unavailable", target_name(u));
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
    }
}

/* ---- broadcast (logging/setLevel) ---------------------------------------------------------------- */

static void
broadcast_finish(mcplex_op_t *op)
{
    op_reply_result(op, cJSON_CreateObject());
}

static void
mux_broadcast(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex, const char *cap)
{
    mcplex_op_t *op = op_create(s, MUX_OP_BROADCAST, msg->method, msg->id_raw, ex);
    int any = 0;

    for (size_t i = 0; i < s->n_upstreams; i++) {
        cJSON *req;
        if (!upstream_has_capability(&s->upstreams[i], cap))
            continue;
        any = 1;
        req = request_new(msg->method, msg->params);
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
        if (upstream_call(&s->upstreams[i], op, i, req, target_deadline_ms(&s->upstreams[i], 0)) != 0) {
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
        }
        cJSON_Delete(req);
    }
    if (!any) {
        op_reply_error(op, MCPLEX_JSONRPC_METHOD_NOT_FOUND, "Method not found", NULL);
        return;
    }
    if (op->outstanding == 0)
        broadcast_finish(op);
}

/* ---- slot completion ------------------------------------------------------------------------------ */

static void
op_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        initialize_slot_result(op, slot, msg);
        if (op->slots[slot].state == MUX_SLOT_DONE && --op->outstanding == 0)
            initialize_finish(op);
        break;
    case MUX_OP_LIST:
        list_slot_result(op, slot, msg);
        break;
    case MUX_OP_ROUTED:
        routed_slot_result(op, slot, msg);
        break;
    case MUX_OP_BROADCAST:
        op->slots[slot].state = MUX_SLOT_DONE;
        if (--op->outstanding == 0)
            broadcast_finish(op);
        break;
    case MUX_OP_REINIT:
        reinit_slot_result(op, slot, msg);
        break;
    }
}

static void
op_slot_failed(mcplex_op_t *op, size_t slot, int code, const char *message)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];

    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        op->slots[slot].state = MUX_SLOT_FAILED;
        if (--op->outstanding == 0)
            initialize_finish(op);
        break;
    case MUX_OP_LIST:
        op->slots[slot].state = MUX_SLOT_FAILED;
        free(op->slots[slot].error);
        op->slots[slot].error = mcplex_strdup(message);
        if (--op->outstanding == 0)
            list_finish(op);
        break;
    case MUX_OP_ROUTED:
        op_reply_error(op, code, message, NULL);
        break;
    case MUX_OP_REINIT:
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        op_reply_error(op, code, message, NULL);
        break;
    case MUX_OP_BROADCAST:
        op->slots[slot].state = MUX_SLOT_FAILED;
        if (--op->outstanding == 0)
            broadcast_finish(op);
        break;
    }
}

/* ---- client notifications -------------------------------------------------------------------------- */

static void
mux_cancelled(mcplex_session_t *s, const cJSON *params)
{
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(params, "requestId");
    char *raw;

    if (rid == NULL)
        return;
    raw = mcplex_json_print(rid);
    for (mcplex_op_t *op = s->ops; op != NULL; op = op->next) {
        if (op->kind != MUX_OP_ROUTED || strcmp(op->client_id, raw) != 0)
            continue;
        /* Forward the cancel with the id the target knows, then stop waiting. */
        for (mcplex_upstream_call_t *c = *calls_of(&s->upstreams[op->target]); c != NULL; c = c->next) {
            if (c->op == op) {
                cJSON *up = cJSON_CreateObject();
                const char *reason = json_string(params, "reason");
                cJSON_AddNumberToObject(up, "requestId", (double)c->id);
                if (reason != NULL)
                    cJSON_AddStringToObject(up, "reason", reason);
                upstream_send_notification(&s->upstreams[op->target], "notifications/cancelled", up);
                break;
            }
        }
        op_reply_error(op, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Request cancelled", NULL);
        break;
    }
    free(raw);
}

static void
mux_notification(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg)
{
    if (strcmp(msg->method, "notifications/cancelled") == 0) {
        mux_cancelled(s, msg->params);
    } else if (strcmp(msg->method, "notifications/roots/list_changed") == 0) {
        for (size_t i = 0; i < s->n_upstreams; i++)
            if (s->upstreams[i].state == MCPLEX_UPSTREAM_READY && s->upstreams[i].shared == NULL)
                upstream_send_notification(&s->upstreams[i], msg->method, NULL);
    }
    /* notifications/initialized: mcplex already sent its own to each target. */
}

/* ---- entry point ------------------------------------------------------------------------------------ */

void
mcplex_mux_handle(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const char *m = msg->method;

    s->last_used = time(NULL);
    if (msg->kind == MCPLEX_JSONRPC_NOTIFICATION) {
        mux_notification(s, msg);
        mcplex_exchange_reply_accepted(ex, s->id);
    } else if (msg->kind != MCPLEX_JSONRPC_REQUEST) {
        client_response(s, msg);
        mcplex_exchange_reply_accepted(ex, s->id);
    } else if (strcmp(m, "ping") == 0) {
        char *text = mcplex_jsonrpc_result_text(msg->id_raw, cJSON_CreateObject());
        mcplex_exchange_reply_json(ex, 200, text, strlen(text), s->id);
        free(text);
    } else if (strcmp(m, "initialize") == 0) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_REQUEST,
                                    "Session already initialized", NULL, s->id);
    } else if (strcmp(m, "tools/list") == 0 || strcmp(m, "prompts/list") == 0 || strcmp(m, "resources/list") == 0 ||
               strcmp(m, "resources/templates/list") == 0) {
        mux_list(s, msg, ex);
    } else if (strcmp(m, "tools/call") == 0 || strcmp(m, "prompts/get") == 0 || strcmp(m, "resources/read") == 0 ||
               strcmp(m, "resources/subscribe") == 0 || strcmp(m, "resources/unsubscribe") == 0 ||
               strcmp(m, "completion/complete") == 0) {
        mux_routed(s, msg, ex);
    } else if (strcmp(m, "logging/setLevel") == 0) {
        mux_broadcast(s, msg, ex, "logging");
    } else {
        char message[256];
        snprintf(message, sizeof(message), "Method not found: %s", m);
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_METHOD_NOT_FOUND, message, NULL, s->id);
    }
    mcplex_jsonrpc_msg_dispose(msg);
}
