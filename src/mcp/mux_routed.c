/*
 * mux_routed.c - requests routed to one target by the prefix of a name or URI (tools/call,
 * prompts/get, resources/read and (un)subscribe, completion/complete): un-prefixed on the way up, answered with the
 * client's id; a dead stdio target restarted with backoff and an HTTP target whose session
 * expired re-initialized before the request is sent. Thread: the session's worker.
 */
#include "mcp/mux-internal.h"

/*
 * The deadline of a routed call: the route's timeout (Envoy RouteAction.timeout), else the
 * target's own timeout when the config sets one, else none (tools may run for long).
 */
static uint32_t
mux_routed_deadline_ms(const mcplex_upstream_t *u)
{
    if (u->session->route_timeout_ms > 0)
        return u->session->route_timeout_ms;
    return u->target->timeout_set ? u->target->timeout_ms : 0;
}

/* ---- routed requests -------------------------------------------------------------------------- */

void
mux_routed_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    char *text;

    if (msg->kind == MCPLEX_JSONRPC_RESULT) {
        mux_rewrite_routed_result(s, slot, op->method, msg->result);
        mux_modern_decorate(s, op->method, msg->result);
    }
    /* Pass the target's answer through with the client's id restored. */
    mcplex_jsonrpc_set_id(msg->root, op->client_id);
    text = mcplex_json_print(msg->root);
    {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(msg->error, "code");
        mux_op_observe(op, cJSON_IsNumber(code) ? (int)code->valuedouble : 0, strlen(text));
    }
    mcplex_exchange_reply_json(op->ex, 200, text, strlen(text), s->id);
    free(text);
    op->ex = NULL;
    mux_op_free(op);
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
        type = mux_json_string(holder, "type");
        if (type != NULL && strcmp(type, "ref/resource") == 0) {
            key = "uri";
            uri = 1;
            what = "resource";
        } else {
            what = "prompt";
        }
    }
    value = mux_json_string(holder, key);
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
                if (mux_upstream_has_capability(&s->upstreams[i], "resources")) {
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
        mux_json_replace_string(holder, key, plain);
        free(plain);
    }
    return idx;
}


uint64_t
mux_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * (Re)initializes |u| for |op| (kind REINIT, holding the client's request in op->request): a dead
 * stdio child is started again, an HTTP target gets a fresh upstream session. When initialize
 * succeeds the request is sent (mux_op_slot_result). Returns 0, or -1 with the op answered.
 */
int
mux_upstream_reinit(mcplex_upstream_t *u, mcplex_op_t *op)
{
    mcplex_session_t *s = u->session;
    cJSON *params, *req;
    char message[512];
    int rc;

    op->kind = MUX_OP_REINIT;
    if (u->shared != NULL)
        return mux_shared_reinit(u, op);
    if (u->transport == NULL && mux_upstream_start(u) != 0) {
        snprintf(message, sizeof(message), "target '%s' could not be restarted: %s", mux_target_name(u), u->failure);
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    u->state = MCPLEX_UPSTREAM_INITIALIZING;
    params = mux_initialize_params(s);
    req = mux_request_new("initialize", params);
    rc = mux_upstream_call(u, op, op->target, req, mux_target_deadline_ms(u, 1));
    cJSON_Delete(req);
    cJSON_Delete(params);
    if (rc != 0) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        snprintf(message, sizeof(message), "target '%s' is unavailable", mux_target_name(u));
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    return 0;
}

void
mux_reinit_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    mcplex_upstream_t *u = &s->upstreams[slot];
    char message[512];

    if (mux_upstream_accept_initialize(u, msg, message, sizeof(message)) != 0) {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(message);
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return;
    }
    mcplex_log_info("mcp", "target '%s' is back (restart %u)", mux_target_name(u), u->restarts);
    /* What the target offers may have changed while it was away. */
    mcplex_session_list_changed(s, MCPLEX_LIST_CHANGED_TOOLS | MCPLEX_LIST_CHANGED_PROMPTS |
                                       MCPLEX_LIST_CHANGED_RESOURCES);
    op->kind = MUX_OP_ROUTED;
    if (mux_upstream_call(u, op, slot, op->request, mux_routed_deadline_ms(u)) != 0) {
        snprintf(message, sizeof(message), "target '%s' is unavailable", mux_target_name(u));
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
    }
}

/* A session waited for a shared child to be ready (|ok|) or to fail (|why|). */
void
mux_shared_waiter_done(mcplex_op_t *op, size_t slot, int ok, const char *why)
{
    mcplex_session_t *s = op->session;
    mcplex_upstream_t *u = &s->upstreams[slot];
    char message[512];

    if (ok && u->shared != NULL) {
        mux_shared_copy_to(u->shared, u);
    } else {
        u->state = MCPLEX_UPSTREAM_FAILED;
        free(u->failure);
        u->failure = mcplex_strdup(why != NULL ? why : "failed");
    }
    switch (op->kind) {
    case MUX_OP_INITIALIZE:
        if (!ok) {
            mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, u->failure);
        } else {
            op->slots[slot].state = MUX_SLOT_DONE;
            if (--op->outstanding == 0)
                mux_initialize_finish(op);
        }
        break;
    case MUX_OP_REINIT:
        if (!ok) {
            mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, u->failure, NULL);
            break;
        }
        op->kind = MUX_OP_ROUTED;
        if (mux_upstream_call(u, op, slot, op->request, mux_routed_deadline_ms(u)) != 0) {
            snprintf(message, sizeof(message), "target '%s' is unavailable", mux_target_name(u));
            mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        }
        break;
    default:
        break;
    }
}

void
mux_routed(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    char message[512];
    int code = 0, idx;
    mcplex_op_t *op;
    mcplex_upstream_t *u;
    cJSON *params = msg->params;
    const cJSON *token;
    char *client_name = NULL;

    if (!cJSON_IsObject(params)) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, "Missing params", NULL,
                                    s->id);
        return;
    }
    client_name = mcplex_strdup(mux_json_string(params, strncmp(msg->method, "resources/", 10) == 0 ? "uri"
                                                                                                : "name"));
    idx = route_target(s, msg->method, params, &code, message, sizeof(message));
    if (idx < 0) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, code, message, NULL, s->id);
        free(client_name);
        return;
    }
    u = &s->upstreams[idx];
    if (strcmp(msg->method, "tools/call") == 0) {
        /* Curation: only exposed tools can be called, under their exposed names. */
        const char *exposed = mux_json_string(params, "name");
        const char *own = mcplex_curation_resolve(u->target, exposed);
        if (own == NULL) {
            snprintf(message, sizeof(message), "Unknown tool: %s", client_name != NULL ? client_name : "");
            mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, message, NULL, s->id);
            free(client_name);
            return;
        }
        if (own != exposed) {
            char *copy = mcplex_strdup(own);
            mux_json_replace_string(params, "name", copy);
            free(copy);
        }
    }
    op = mux_op_create(s, MUX_OP_ROUTED, msg->method, msg->id_raw, ex);
    op->name = client_name;
    client_name = NULL;
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
        uint64_t now = mux_now_ms();
        if (now < u->restart_after_ms) {
            snprintf(message, sizeof(message), "target '%s' is restarting (%s); retry in %llu ms", mux_target_name(u),
                     u->failure != NULL ? u->failure : "exited", (unsigned long long)(u->restart_after_ms - now));
            mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
            return;
        }
        u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : MUX_RESTART_BACKOFF_MIN_MS;
        if (u->backoff_ms > MUX_RESTART_BACKOFF_MAX_MS)
            u->backoff_ms = MUX_RESTART_BACKOFF_MAX_MS;
        u->restart_after_ms = now + u->backoff_ms;
        u->restarts++;
        mcplex_mcp_stats_target_event(s->backend_name, mux_target_name(u), MCPLEX_MCP_TARGET_RESTART, u->failure);
        mcplex_log_info("mcp", "restarting target '%s' (%s)", mux_target_name(u), u->failure ? u->failure : "exited");
        mux_upstream_reinit(u, op);
        return;
    }
    if (u->state != MCPLEX_UPSTREAM_READY) {
        snprintf(message, sizeof(message), "target '%s' is unavailable: %s", mux_target_name(u),
                 u->failure != NULL ? u->failure : "not initialized");
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return;
    }
    if (mux_upstream_call(u, op, (size_t)idx, op->request, mux_routed_deadline_ms(u)) != 0) {
        snprintf(message, sizeof(message), "target '%s' is unavailable", mux_target_name(u));
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
    }
}
