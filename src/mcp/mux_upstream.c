/*
 * mux_upstream.c - messages from targets: starting a target's transport, answers matched to
 * their calls, notifications (re-prefixed, to the stream they relate to), server requests
 * (relayed to the client with session-unique ids) and the client's answers to them.
 * Thread: the session's worker.
 */
#include "mcp/mux-internal.h"

/* ---- transport callbacks ------------------------------------------------------------------------ */

static void
upstream_fail_calls(mcplex_upstream_t *u, const char *why)
{
    char message[512];

    snprintf(message, sizeof(message), "target '%s' is unavailable: %s", mux_target_name(u), why);
    while (u->calls != NULL) { /* a private transport's calls (shared children: mux_shared_closed) */
        mcplex_upstream_call_t *call = u->calls;
        mcplex_op_t *op = call->op;
        size_t slot = call->slot;
        mux_call_unlink(call);
        if (op != NULL)
            mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
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
void
mux_deliver(mcplex_session_t *s, mcplex_op_t *op, const cJSON *root)
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
    mux_deliver(s, related_op(s, u, NULL), msg->root);
}

/* A client's answer to a server request: back to the target that asked, with its own id. */
void
mux_client_response(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg)
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
void
mux_upstream_notification(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg)
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
            mux_deliver(s, op, msg->root);
        /* Progress for no request in flight is dropped: it MUST stop after the response. */
    } else if (strcmp(m, "notifications/message") == 0) {
        if (s->prefixed && cJSON_IsObject(params)) {
            const char *logger = mux_json_string(params, "logger");
            char *named = logger != NULL ? mcplex_sprintf("%s/%s", mux_target_name(u), logger)
                                         : mcplex_strdup(mux_target_name(u));
            mux_json_replace_string(params, "logger", named);
            free(named);
        }
        mux_deliver(s, related_op(s, u, NULL), msg->root);
    } else if (strcmp(m, "notifications/resources/updated") == 0) {
        mux_prefix_string_member(s, u->index, params, "uri", 1);
        mux_deliver(s, NULL, msg->root);
    } else if (strcmp(m, "notifications/cancelled") == 0) {
        if (map_cancelled(s, u, params))
            mux_deliver(s, NULL, msg->root);
    } else {
        mux_deliver(s, related_op(s, u, NULL), msg->root);
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
        mcplex_log_warn("mcp", "target '%s' sent an invalid JSON-RPC message (%s)", mux_target_name(u),
                        why != NULL ? why : "?");
        goto done;
    }
    switch (msg.kind) {
    case MCPLEX_JSONRPC_RESULT:
    case MCPLEX_JSONRPC_ERROR:
        if (msg.id_raw == NULL)
            goto done;
        id = strtoull(msg.id_raw, &end, 10);
        call = *end == '\0' ? mux_call_find(u, id) : NULL;
        if (call == NULL) {
            mcplex_log_debug("mcp", "target '%s' answered unknown or expired id %s", mux_target_name(u), msg.id_raw);
            goto done;
        }
        {
            mcplex_upstream_t *caller = call->upstream;
            mcplex_op_t *op = call->op;
            size_t slot = call->slot;
            unsigned late = call->late_bits;
            mux_call_unlink(call);
            if (u->shared != NULL && caller == u)
                mux_shared_init_result(u->shared, &msg); /* the shared child's own initialize */
            else if (op != NULL)
                mux_op_slot_result(op, slot, &msg);
            else if (late != 0 && caller->session != NULL)
                mcplex_session_list_changed(caller->session, late); /* the late target is back */
        }
        break;
    case MCPLEX_JSONRPC_REQUEST:
        if (u->shared != NULL) {
            /* A shared child's request belongs to the session whose call is the only one in
             * flight on it; with several in flight nobody can tell, so it is refused. */
            mcplex_upstream_call_t *only = NULL;
            int several = 0;
            for (mcplex_upstream_call_t *c = u->shared->calls; c != NULL; c = c->next) {
                if (c->upstream == u || c->op == NULL)
                    continue;
                several = only != NULL;
                only = c;
            }
            if (strcmp(msg.method, "ping") != 0 && only != NULL && !several) {
                upstream_server_request(only->upstream, &msg);
                break;
            }
            upstream_send_text(u, strcmp(msg.method, "ping") == 0
                                      ? mcplex_jsonrpc_result_text(msg.id_raw, cJSON_CreateObject())
                                      : mcplex_jsonrpc_error_text(msg.id_raw, MCPLEX_JSONRPC_INTERNAL_ERROR,
                                                                  "mcplex cannot tell which session this "
                                                                  "request of a shared target belongs to", NULL));
            break;
        }
        upstream_server_request(u, &msg);
        break;
    case MCPLEX_JSONRPC_NOTIFICATION:
        if (u->shared != NULL)
            mux_shared_notification(u->shared, &msg);
        else
            mux_upstream_notification(u, &msg);
        break;
    }
done:
    mcplex_jsonrpc_msg_dispose(&msg);
}

static void
transport_on_send_failed(void *owner, uint64_t tag, int http_status, const char *reason)
{
    mcplex_upstream_t *u = owner;
    mcplex_upstream_call_t *call = mux_call_find(u, tag);
    mcplex_op_t *op;
    size_t slot;
    char message[512];

    if (call == NULL)
        return;
    op = call->op;
    slot = call->slot;
    mux_call_unlink(call);
    /* MCP: a server answers 404 to a session it ended (many answer 400): re-initialize that one
     * target with a fresh upstream session and send the request once more. */
    if ((http_status == 404 || http_status == 400) && op != NULL && op->kind == MUX_OP_ROUTED && !op->retried &&
        u->transport != NULL && u->target->kind == MCPLEX_TARGET_STREAMABLE_HTTP &&
        mcplex_http_transport_session_id(u->transport) != NULL) {
        op->retried = 1;
        mcplex_log_info("mcp", "target '%s' answered HTTP %d to its session: re-initializing it", mux_target_name(u),
                        http_status);
        mcplex_http_transport_set_session_id(u->transport, NULL);
        mux_upstream_reinit(u, op);
        return;
    }
    if (http_status > 0)
        snprintf(message, sizeof(message), "target '%s' answered HTTP %d: %s", mux_target_name(u), http_status,
                 reason != NULL ? reason : "");
    else
        snprintf(message, sizeof(message), "target '%s' failed: %s", mux_target_name(u), reason != NULL ? reason : "");
    mcplex_log_warn("mcp", "%s", message);
    if (op != NULL)
        mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
}

static void
transport_on_closed(void *owner, const char *reason)
{
    mcplex_upstream_t *u = owner;

    mcplex_log_warn("mcp", "target '%s' closed: %s", mux_target_name(u), reason != NULL ? reason : "");
    if (u->shared != NULL) {
        mux_shared_closed(u->shared, reason != NULL ? reason : "closed");
        return;
    }
    u->state = MCPLEX_UPSTREAM_FAILED;
    free(u->failure);
    u->failure = mcplex_strdup(reason != NULL ? reason : "closed");
    mcplex_mcp_stats_target_event(u->session->backend_name, mux_target_name(u), MCPLEX_MCP_TARGET_FAILURE, u->failure);
    /* The owner still closes a dead transport (allowed from inside on_closed): it frees it. */
    if (u->transport != NULL) {
        mcplex_transport_close(u->transport);
        u->transport = NULL;
    }
    upstream_fail_calls(u, u->failure);
}

const mcplex_transport_cbs_t mux_transport_cbs = {
    .on_message = transport_on_message,
    .on_send_failed = transport_on_send_failed,
    .on_closed = transport_on_closed,
};

/* Starts the transport of |u|. Returns 0, or -1 with u->failure set. */
int
mux_upstream_start(mcplex_upstream_t *u)
{
    mcplex_session_t *s = u->session;
    const mcplex_mcp_target_t *t = u->target;
    struct mcplex_http_pool *pool;
    char err[256] = "";

    switch (t->kind) {
    case MCPLEX_TARGET_STDIO:
        u->transport = mcplex_stdio_transport_create(s->worker->base, t->name, &t->stdio, &mux_transport_cbs, u, err,
                                                     sizeof(err));
        break;
    case MCPLEX_TARGET_STREAMABLE_HTTP:
        pool = mcplex_worker_http_pool(s->worker, s->snapshot, t->http.cluster);
        if (pool == NULL) {
            snprintf(err, sizeof(err), "cluster '%s' has no endpoints", t->http.cluster);
            break;
        }
        u->transport = mcplex_http_transport_create(s->worker->base, t->name, pool, &t->http, 0, &mux_transport_cbs, u);
        break;
    case MCPLEX_TARGET_SSE:
        pool = mcplex_worker_http_pool(s->worker, s->snapshot, t->http.cluster);
        if (pool == NULL) {
            snprintf(err, sizeof(err), "cluster '%s' has no endpoints", t->http.cluster);
            break;
        }
        /* POSTs to a legacy server get a deadline: some never answer an unknown session. */
        u->transport = mcplex_sse_transport_create(s->worker->base, t->name, pool, &t->http, t->timeout_ms,
                                                   &mux_transport_cbs, u);
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
