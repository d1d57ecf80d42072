/*
 * mux.c - the multiplexer: everything between one client JSON-RPC message and the targets of its
 * session (ARCHITECTURE "Data flow of one tools/call"). This file holds operations (one per
 * client request, with a slot per target it involves), the calls mcplex sends to targets (each
 * with its own id and deadline, so the client's id is restored byte for byte and ids of
 * different clients never meet), slot completion, broadcasts, client notifications and the
 * entry point; the rest lives in mux_*.c (see mux-internal.h).
 * Thread: the session's worker. Nothing here blocks.
 */
#include "mcp/mux-internal.h"

const char *const mcplex_mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL};

/* ---- small helpers -------------------------------------------------------------------------- */

int
mcplex_mcp_protocol_version_supported(const char *version)
{
    for (size_t i = 0; version != NULL && mcplex_mcp_protocol_versions[i] != NULL; i++)
        if (strcmp(version, mcplex_mcp_protocol_versions[i]) == 0)
            return 1;
    return 0;
}

const char *
mux_json_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

void
mux_json_replace_string(cJSON *obj, const char *key, const char *value)
{
    cJSON *item = cJSON_CreateString(value);

    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        cJSON_AddItemToObject(obj, key, item);
}

const char *
mux_target_name(const mcplex_upstream_t *u)
{
    return u->target->name;
}

uint32_t
mux_target_deadline_ms(const mcplex_upstream_t *u, int initialize)
{
    uint32_t ms = u->target->timeout_ms ? u->target->timeout_ms : 5000;

    if (initialize && !u->target->timeout_set && u->target->kind == MCPLEX_TARGET_STDIO &&
        ms < MUX_STDIO_INIT_DEADLINE_MS)
        ms = MUX_STDIO_INIT_DEADLINE_MS;
    return ms;
}

/* ---- operations ------------------------------------------------------------------------------ */

mcplex_op_t *
mux_op_create(mcplex_session_t *s, mux_op_kind_t kind, const char *method, const char *client_id,
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
    mux_shared_forget_op(op);
}

void
mux_op_free(mcplex_op_t *op)
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
    free(op->name);
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
/*
 * Records the answer of |op| (stats per backend, method and target; one access-log line per
 * JSON-RPC exchange), before the answer goes out.
 */
void
mux_op_observe(mcplex_op_t *op, int jsonrpc_code, size_t out_len)
{
    mcplex_session_t *s = op->session;
    mcplex_exchange_t *ex = op->ex;
    const char *target = op->kind == MUX_OP_ROUTED && op->target < s->n_upstreams ? s->target_names[op->target]
                                                                                  : NULL;

    if (ex == NULL)
        return;
    mcplex_mcp_observe_exchange(ex->stream, s->backend_name, s->id, op->method, op->name, target, op->client_id,
                                jsonrpc_code, ex->streaming || ex->legacy ? 0 : 200, ex->started_us, ex->bytes_in,
                                out_len);
}

void
mux_op_reply_error(mcplex_op_t *op, int code, const char *message, const cJSON *data)
{
    mux_op_observe(op, code, 0);
    mcplex_exchange_reply_error(op->ex, 200, op->client_id, code, message, data, op->session->id);
    op->ex = NULL;
    mux_op_free(op);
}

/*
 * MCP 2026-07-28 results: resultType, the cache hints lists and reads must carry (mcplex answers
 * per request, so nothing may be cached across clients), and the server's identity in _meta.
 */
void
mux_modern_decorate(const mcplex_session_t *s, const char *method, cJSON *result)
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
void
mux_op_reply_result(mcplex_op_t *op, cJSON *result)
{
    char *text;

    mux_modern_decorate(op->session, op->method, result);
    text = mcplex_jsonrpc_result_text(op->client_id, result);
    mux_op_observe(op, 0, strlen(text));

    mcplex_exchange_reply_json(op->ex, 200, text, strlen(text), op->session->id);
    free(text);
    op->ex = NULL;
    mux_op_free(op);
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
        mux_op_reply_error(s->ops, code, message, NULL);
}

/* ---- calls to targets -------------------------------------------------------------------------- */

void
mux_call_unlink(mcplex_upstream_call_t *call)
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
            mux_call_unlink(*pp);
        else
            pp = &(*pp)->next;
    }
}

mcplex_upstream_call_t *
mux_call_find(mcplex_upstream_t *u, uint64_t id)
{
    for (mcplex_upstream_call_t *c = *calls_of(u); c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

void
mux_upstream_send_notification(mcplex_upstream_t *u, const char *method, cJSON *params)
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
        mux_call_unlink(call);
        mux_shared_init_failed(sh, "did not answer initialize in time");
        return;
    }
    if (op == NULL) {
        mux_call_unlink(call); /* a late list answer that never came */
        return;
    }
    if (op->kind == MUX_OP_LIST) {
        /* Left out of this answer (fail open); if the target answers later, the client hears
         * list_changed and lists again. */
        struct timeval later = {MUX_LATE_ANSWER_MS / 1000, 0};
        call->op = NULL;
        call->late_bits = list_changed_bit(op->method);
        evtimer_add(call->deadline, &later);
        mcplex_log_warn("mcp", "target '%s' missed the deadline of %s", mux_target_name(u), op->method);
        snprintf(message, sizeof(message), "target '%s' timed out", mux_target_name(u));
        mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_REQUEST_TIMEOUT, message);
        return;
    }
    mux_call_unlink(call);
    /* Tell the target to stop (MCP cancellation), except for initialize, which must not be. */
    if (op == NULL || op->kind != MUX_OP_INITIALIZE) {
        params = cJSON_CreateObject();
        cJSON_AddNumberToObject(params, "requestId", (double)id);
        cJSON_AddStringToObject(params, "reason", "mcplex: request timed out");
        mux_upstream_send_notification(u, "notifications/cancelled", params);
    }
    mcplex_log_warn("mcp", "target '%s' did not answer request %llu in time", mux_target_name(u),
                    (unsigned long long)id);
    if (op != NULL) {
        snprintf(message, sizeof(message), "target '%s' timed out", mux_target_name(u));
        mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_REQUEST_TIMEOUT, message);
    }
}

/*
 * Sends |root| (a request object; its "id" is replaced with a fresh upstream id) to |u| on
 * behalf of |op| slot |slot|, with a deadline of |timeout_ms| (0 = none). Returns 0, or -1 if
 * the target cannot take it (then nothing is registered).
 */
int
mux_upstream_call(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot, cJSON *root, uint32_t timeout_ms)
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
        mux_call_unlink(call);
        return -1;
    }
    return 0;
}

/* Builds {"jsonrpc":"2.0","id":0,"method":method,"params":params} (params copied if given). */
cJSON *
mux_request_new(const char *method, const cJSON *params)
{
    cJSON *root = cJSON_CreateObject();

    cJSON_AddStringToObject(root, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(root, "id", 0);
    cJSON_AddStringToObject(root, "method", method);
    if (params != NULL)
        cJSON_AddItemToObject(root, "params", cJSON_Duplicate(params, 1));
    return root;
}

/* ---- broadcast (logging/setLevel) ---------------------------------------------------------------- */

static void
broadcast_finish(mcplex_op_t *op)
{
    mux_op_reply_result(op, cJSON_CreateObject());
}

static void
mux_broadcast(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex, const char *cap)
{
    mcplex_op_t *op = mux_op_create(s, MUX_OP_BROADCAST, msg->method, msg->id_raw, ex);
    int any = 0;

    for (size_t i = 0; i < s->n_upstreams; i++) {
        cJSON *req;
        if (!mux_upstream_has_capability(&s->upstreams[i], cap))
            continue;
        any = 1;
        req = mux_request_new(msg->method, msg->params);
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
        if (mux_upstream_call(&s->upstreams[i], op, i, req, mux_target_deadline_ms(&s->upstreams[i], 0)) != 0) {
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
        }
        cJSON_Delete(req);
    }
    if (!any) {
        mux_op_reply_error(op, MCPLEX_JSONRPC_METHOD_NOT_FOUND, "Method not found", NULL);
        return;
    }
    if (op->outstanding == 0)
        broadcast_finish(op);
}

/* ---- slot completion ------------------------------------------------------------------------------ */

void
mux_op_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        mux_initialize_slot_result(op, slot, msg);
        if (op->slots[slot].state == MUX_SLOT_DONE && --op->outstanding == 0)
            mux_initialize_finish(op);
        break;
    case MUX_OP_LIST:
        mux_list_slot_result(op, slot, msg);
        break;
    case MUX_OP_ROUTED:
        mux_routed_slot_result(op, slot, msg);
        break;
    case MUX_OP_BROADCAST:
        op->slots[slot].state = MUX_SLOT_DONE;
        if (--op->outstanding == 0)
            broadcast_finish(op);
        break;
    case MUX_OP_REINIT:
        mux_reinit_slot_result(op, slot, msg);
        break;
    }
}

void
mux_op_slot_failed(mcplex_op_t *op, size_t slot, int code, const char *message)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];

    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        mcplex_mcp_stats_target_event(op->session->backend_name, mux_target_name(u), MCPLEX_MCP_TARGET_FAILURE,
                                      message);
        op->slots[slot].state = MUX_SLOT_FAILED;
        if (--op->outstanding == 0)
            mux_initialize_finish(op);
        break;
    case MUX_OP_LIST:
        op->slots[slot].state = MUX_SLOT_FAILED;
        free(op->slots[slot].error);
        op->slots[slot].error = mcplex_strdup(message);
        if (--op->outstanding == 0)
            mux_list_finish(op);
        break;
    case MUX_OP_ROUTED:
        mux_op_reply_error(op, code, message, NULL);
        break;
    case MUX_OP_REINIT:
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        mux_op_reply_error(op, code, message, NULL);
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
                const char *reason = mux_json_string(params, "reason");
                cJSON_AddNumberToObject(up, "requestId", (double)c->id);
                if (reason != NULL)
                    cJSON_AddStringToObject(up, "reason", reason);
                mux_upstream_send_notification(&s->upstreams[op->target], "notifications/cancelled", up);
                break;
            }
        }
        mux_op_reply_error(op, MCPLEX_JSONRPC_REQUEST_TIMEOUT, "Request cancelled", NULL);
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
                mux_upstream_send_notification(&s->upstreams[i], msg->method, NULL);
    }
    /* notifications/initialized: mcplex already sent its own to each target. */
}

/* ---- entry point ------------------------------------------------------------------------------------ */

void
mcplex_mux_handle(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const char *m = msg->method;

    s->last_used = time(NULL);
    if (msg->kind == MCPLEX_JSONRPC_REQUEST)
        mcplex_mcp_stats_request(s->backend_name, m,
                                 strcmp(m, "tools/call") == 0 ? mux_json_string(msg->params, "name") : NULL);
    if (msg->kind == MCPLEX_JSONRPC_NOTIFICATION) {
        mux_notification(s, msg);
        mcplex_exchange_reply_accepted(ex, s->id);
    } else if (msg->kind != MCPLEX_JSONRPC_REQUEST) {
        mux_client_response(s, msg);
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
