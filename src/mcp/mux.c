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

#include "common/log.h"
#include "common/mem.h"
#include "event/worker.h"
#include "mcp/jsonrpc.h"
#include "mcp/naming.h"
#include "mcp/session.h"
#include "mcp/transport.h"

/* How long a stdio target without a configured timeout may take to start and answer
 * initialize: spawning `npx` or node takes seconds on a cold machine. */
#define MUX_STDIO_INIT_DEADLINE_MS 30000
/* Pages drained per target for one list request. */
#define MUX_MAX_PAGES 1000

const char *const mcplex_mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL};

typedef enum mux_op_kind {
    MUX_OP_INITIALIZE = 0,
    MUX_OP_LIST,
    MUX_OP_ROUTED,
    MUX_OP_BROADCAST,
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
    int pages;
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
    cJSON *request;       /* ROUTED: the rewritten request (owned); LIST: params template */
    size_t target;        /* ROUTED: the target */
} mcplex_op_t;

static void op_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg);
static void op_slot_failed(mcplex_op_t *op, size_t slot, int code, const char *message);

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
        for (mcplex_upstream_call_t *c = s->upstreams[i].calls; c != NULL; c = c->next)
            if (c->op == op)
                c->op = NULL;
    }
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
    }
    free(op->slots);
    cJSON_Delete(op->request);
    free(op->method);
    free(op->client_id);
    free(op);
}

/* Answers |op| with a JSON-RPC error (HTTP 200) and frees it. */
static void
op_reply_error(mcplex_op_t *op, int code, const char *message, const cJSON *data)
{
    mcplex_exchange_reply_error(op->ex, 200, op->client_id, code, message, data, op->session->id);
    op->ex = NULL;
    op_free(op);
}

/* Answers |op| with |result| (ownership taken) and frees it. */
static void
op_reply_result(mcplex_op_t *op, cJSON *result)
{
    char *text = mcplex_jsonrpc_result_text(op->client_id, result);

    mcplex_exchange_reply_json(op->ex, 200, text, strlen(text), op->session->id);
    free(text);
    op->ex = NULL;
    op_free(op);
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
    mcplex_upstream_call_t **pp = &call->upstream->calls;

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
    while (u->calls != NULL)
        call_unlink(u->calls);
}

static mcplex_upstream_call_t *
call_find(mcplex_upstream_t *u, uint64_t id)
{
    for (mcplex_upstream_call_t *c = u->calls; c != NULL; c = c->next)
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
    if (u->transport != NULL)
        mcplex_transport_send(u->transport, text, strlen(text), 0);
    free(text);
    cJSON_Delete(root);
}

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

    if (u->transport == NULL)
        return -1;
    call = mcplex_calloc(1, sizeof(*call));
    call->upstream = u;
    call->id = u->next_id++;
    call->op = op;
    call->slot = slot;
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)call->id);
    mcplex_jsonrpc_set_id(root, idbuf);
    text = mcplex_json_print(root);
    call->next = u->calls;
    u->calls = call;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        call->deadline = evtimer_new(u->session->worker->base, call_deadline_cb, call);
        evtimer_add(call->deadline, &tv);
    }
    rc = mcplex_transport_send(u->transport, text, strlen(text), call->id);
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
    while (u->calls != NULL) {
        mcplex_upstream_call_t *call = u->calls;
        mcplex_op_t *op = call->op;
        size_t slot = call->slot;
        call_unlink(call);
        if (op != NULL)
            op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
    }
}

static void
upstream_answer_server_request(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg)
{
    char *text;

    if (strcmp(msg->method, "ping") == 0)
        text = mcplex_jsonrpc_result_text(msg->id_raw, cJSON_CreateObject());
    else
        text = mcplex_jsonrpc_error_text(msg->id_raw, MCPLEX_JSONRPC_METHOD_NOT_FOUND,
                                         "mcplex does not relay this server request", NULL);
    if (u->transport != NULL)
        mcplex_transport_send(u->transport, text, strlen(text), 0);
    free(text);
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
            mcplex_op_t *op = call->op;
            size_t slot = call->slot;
            call_unlink(call);
            if (op != NULL)
                op_slot_result(op, slot, &msg);
        }
        break;
    case MCPLEX_JSONRPC_REQUEST:
        upstream_answer_server_request(u, &msg);
        break;
    case MCPLEX_JSONRPC_NOTIFICATION:
        mcplex_log_debug("mcp", "target '%s' notification %s", target_name(u), msg.method);
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
    u->state = MCPLEX_UPSTREAM_FAILED;
    free(u->failure);
    u->failure = mcplex_strdup(reason != NULL ? reason : "closed");
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

/* ---- initialize -------------------------------------------------------------------------------- */

/* The client capabilities mcplex passes to targets: server->client requests (sampling,
 * elicitation, roots) are not relayed yet, so they are not advertised upstream. */
static cJSON *
upstream_client_capabilities(const mcplex_session_t *s)
{
    cJSON *caps = s->client_capabilities != NULL ? cJSON_Duplicate(s->client_capabilities, 1)
                                                 : cJSON_CreateObject();

    cJSON_DeleteItemFromObjectCaseSensitive(caps, "sampling");
    cJSON_DeleteItemFromObjectCaseSensitive(caps, "elicitation");
    cJSON_DeleteItemFromObjectCaseSensitive(caps, "roots");
    cJSON_DeleteItemFromObjectCaseSensitive(caps, "tasks");
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

static void
initialize_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];
    const char *version;
    const cJSON *caps;
    char message[512];

    if (msg->kind == MCPLEX_JSONRPC_ERROR) {
        const char *m = json_string(msg->error, "message");
        snprintf(message, sizeof(message), "target '%s' rejected initialize: %s", target_name(u), m ? m : "error");
        op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    version = json_string(msg->result, "protocolVersion");
    if (!mcplex_mcp_protocol_version_supported(version)) {
        snprintf(message, sizeof(message), "target '%s' answered unsupported protocol version '%s'",
                 target_name(u), version != NULL ? version : "(none)");
        op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    caps = cJSON_GetObjectItemCaseSensitive(msg->result, "capabilities");
    u->protocol_version = mcplex_strdup(version);
    u->capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
    u->instructions = mcplex_strdup(json_string(msg->result, "instructions"));
    u->state = MCPLEX_UPSTREAM_READY;
    mcplex_transport_set_protocol_version(u->transport, version);
    upstream_send_notification(u, "notifications/initialized", NULL);
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
        for (size_t i = 0; i < s->n_upstreams; i++) {
            if (upstream_has_capability(&s->upstreams[i], caps[c])) {
                cJSON_AddObjectToObject(capabilities, caps[c]);
                break;
            }
        }
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
    if (mcplex_session_register(s) != 0) {
        op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, "could not create a session id", NULL);
        mcplex_session_close(s, "session id");
        return;
    }
    mcplex_log_info("mcp", "session %.12s... on backend '%s': %zu of %zu targets ready", s->id, s->backend_name,
                    ready, s->n_upstreams);
    op_reply_result(op, initialize_merge(s));
}

void
mcplex_mux_initialize(mcplex_session_t *s, const char *id_raw, const cJSON *params, mcplex_exchange_t *ex)
{
    const char *requested = json_string(params, "protocolVersion");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(params, "capabilities");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(params, "clientInfo");
    mcplex_op_t *op;
    cJSON *init_params;

    /* Version negotiation (MCP lifecycle): echo a version we speak, else offer our latest. */
    s->protocol_version = mcplex_strdup(mcplex_mcp_protocol_version_supported(requested)
                                            ? requested
                                            : mcplex_mcp_protocol_versions[0]);
    s->client_capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : NULL;
    s->client_info = cJSON_IsObject(info) ? cJSON_Duplicate(info, 1) : NULL;

    op = op_create(s, MUX_OP_INITIALIZE, "initialize", id_raw, ex);
    init_params = initialize_params(s);
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        cJSON *req;
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
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
    if (op->outstanding == 0)
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

static void
list_finish(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;
    cJSON *result = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(result, op->list_key);

    for (size_t i = 0; i < s->n_upstreams; i++) {
        mux_slot_t *slot = &op->slots[i];
        if (slot->state == MUX_SLOT_FAILED) {
            if (s->backend->failure_mode == MCPLEX_FAIL_CLOSED) {
                cJSON_Delete(result);
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
    }
    op_reply_result(op, result);
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
        if (strcmp(key, "tools") == 0 || strcmp(key, "prompts") == 0)
            prefix_string_member(s, slot_index, item, "name", 0);
        else if (strcmp(key, "resources") == 0)
            prefix_string_member(s, slot_index, item, "uri", 1);
        else
            prefix_string_member(s, slot_index, item, "uriTemplate", 1);
        cJSON_AddItemToArray(slot->items, item);
    }
    next = json_string(msg->result, "nextCursor");
    if (next != NULL && next[0] != '\0' && ++slot->pages < MUX_MAX_PAGES) {
        if (list_send_page(op, slot_index, next) == 0)
            return;
        op_slot_failed(op, slot_index, MCPLEX_JSONRPC_INTERNAL_ERROR, "target unavailable while paging");
        return;
    }
    slot->state = MUX_SLOT_DONE;
    if (--op->outstanding == 0)
        list_finish(op);
}

static void
mux_list(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const char *cap = list_capability(msg->method);
    mcplex_op_t *op;

    if (cJSON_GetObjectItemCaseSensitive(msg->params, "cursor") != NULL) {
        /* mcplex returns complete lists, so it never hands out a cursor. */
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL,
                                    s->id);
        return;
    }
    op = op_create(s, MUX_OP_LIST, msg->method, msg->id_raw, ex);
    op->list_key = list_key(msg->method);
    op->request = cJSON_IsObject(msg->params) ? cJSON_Duplicate(msg->params, 1) : NULL;
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
    if (op->outstanding == 0)
        list_finish(op);
}

/* ---- routed requests -------------------------------------------------------------------------- */

static void
routed_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    char *text;

    if (msg->kind == MCPLEX_JSONRPC_RESULT)
        rewrite_routed_result(s, slot, op->method, msg->result);
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

static void
mux_routed(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    char message[512];
    int code = 0, idx;
    mcplex_op_t *op;
    mcplex_upstream_t *u;
    cJSON *params = msg->params;

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
    if (u->state != MCPLEX_UPSTREAM_READY) {
        snprintf(message, sizeof(message), "target '%s' is unavailable: %s", target_name(u),
                 u->failure != NULL ? u->failure : "not initialized");
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL, s->id);
        return;
    }
    op = op_create(s, MUX_OP_ROUTED, msg->method, msg->id_raw, ex);
    op->target = (size_t)idx;
    op->slots[idx].state = MUX_SLOT_PENDING;
    op->outstanding = 1;
    if (upstream_call(u, op, (size_t)idx, msg->root, s->route_timeout_ms) != 0) {
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
        for (mcplex_upstream_call_t *c = s->upstreams[op->target].calls; c != NULL; c = c->next) {
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
            if (s->upstreams[i].state == MCPLEX_UPSTREAM_READY)
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
        /* A response to a server request: not relayed yet (no server requests are sent). */
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
