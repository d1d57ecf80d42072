/*
 * mux_init.c - initialize: every target started and initialized concurrently with its own
 * deadline, results merged (capabilities union, serverInfo from config, instructions per
 * target), failure modes applied; and sessionless MCP 2026-07-28 requests, which run on a
 * temporary session initialized the same way. Thread: the session's worker.
 */
#include "mcp/mux-internal.h"

static void stateless_continue(mcplex_op_t *op);

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

cJSON *
mux_initialize_params(const mcplex_session_t *s)
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
int
mux_upstream_accept_initialize(mcplex_upstream_t *u, mcplex_jsonrpc_msg_t *msg, char *message, size_t len)
{
    const char *version;
    const cJSON *caps;

    if (msg->kind == MCPLEX_JSONRPC_ERROR) {
        const char *m = mux_json_string(msg->error, "message");
        snprintf(message, len, "target '%s' rejected initialize: %s", mux_target_name(u), m ? m : "error");
        return -1;
    }
    version = mux_json_string(msg->result, "protocolVersion");
    if (!mcplex_mcp_protocol_version_supported(version)) {
        snprintf(message, len, "target '%s' answered unsupported protocol version '%s'", mux_target_name(u),
                 version != NULL ? version : "(none)");
        return -1;
    }
    caps = cJSON_GetObjectItemCaseSensitive(msg->result, "capabilities");
    free(u->protocol_version);
    u->protocol_version = mcplex_strdup(version);
    cJSON_Delete(u->capabilities);
    u->capabilities = cJSON_IsObject(caps) ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
    free(u->instructions);
    u->instructions = mcplex_strdup(mux_json_string(msg->result, "instructions"));
    u->state = MCPLEX_UPSTREAM_READY;
    u->backoff_ms = 0;
    if (u->session != NULL)
        mcplex_mcp_stats_target_event(u->session->backend_name, mux_target_name(u), MCPLEX_MCP_TARGET_READY, NULL);
    mcplex_transport_set_protocol_version(u->transport, version);
    mux_upstream_send_notification(u, "notifications/initialized", NULL);
    return 0;
}

void
mux_initialize_slot_result(mcplex_op_t *op, size_t slot, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_upstream_t *u = &op->session->upstreams[slot];
    char message[512];

    if (mux_upstream_accept_initialize(u, msg, message, sizeof(message)) != 0) {
        mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
        return;
    }
    op->slots[slot].state = MUX_SLOT_DONE;
}

int
mux_upstream_has_capability(const mcplex_upstream_t *u, const char *cap)
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
            if (!mux_upstream_has_capability(&s->upstreams[i], caps[c]))
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
                                  mux_target_name(u), u->instructions);
        free(instructions);
        instructions = next;
    }
    if (instructions != NULL) {
        cJSON_AddStringToObject(result, "instructions", instructions);
        free(instructions);
    }
    return result;
}

void
mux_initialize_finish(mcplex_op_t *op)
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
            cJSON_AddStringToObject(entry, "name", mux_target_name(u));
            cJSON_AddStringToObject(entry, "error", u->failure != NULL ? u->failure : "failed");
            cJSON_AddItemToArray(list, entry);
            if (off < sizeof(message))
                off += (size_t)snprintf(message + off, sizeof(message) - off, " target '%s': %s;", mux_target_name(u),
                                        u->failure != NULL ? u->failure : "failed");
        }
        mcplex_log_warn("mcp", "backend '%s': %s", s->backend_name, message);
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, data);
        cJSON_Delete(data);
        mcplex_session_close(s, "initialize failed");
        return;
    }
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        if (u->state == MCPLEX_UPSTREAM_READY)
            continue;
        mcplex_log_warn("mcp", "backend '%s': target '%s' left out of the session (fail open): %s",
                        s->backend_name, mux_target_name(u), u->failure != NULL ? u->failure : "failed");
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
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, "could not create a session id", NULL);
        mcplex_session_close(s, "session id");
        return;
    }
    mcplex_log_info("mcp", "session %.12s... on backend '%s': %zu of %zu targets ready", s->id, s->backend_name,
                    ready, s->n_upstreams);
    mux_op_reply_result(op, initialize_merge(s));
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
        mux_op_reply_result(op, result);
        return;
    }
    memset(&msg, 0, sizeof(msg));
    msg.root = op->then;
    op->then = NULL;
    msg.kind = MCPLEX_JSONRPC_REQUEST;
    msg.method = mux_json_string(msg.root, "method");
    msg.params = cJSON_GetObjectItemCaseSensitive(msg.root, "params");
    msg.id_raw = mcplex_strdup(op->client_id);
    ex = op->ex;
    op->ex = NULL;
    /* The request's op is created before the initialize op goes, so the session stays open. */
    mcplex_mux_handle(s, &msg, ex);
    mux_op_free(op);
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
    const char *requested = mux_json_string(params, "protocolVersion");
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
 * mux_initialize_finish (|then| != NULL: a stateless request to run once the targets are ready).
 */
static void
initialize_start(mcplex_session_t *s, const char *id_raw, const char *method, cJSON *then, mcplex_exchange_t *ex)
{
    mcplex_op_t *op;
    cJSON *init_params;

    op = mux_op_create(s, MUX_OP_INITIALIZE, method, id_raw, ex);
    op->then = then;
    init_params = mux_initialize_params(s);
    op->outstanding = 1; /* held while starting, so no synchronous failure finishes the op early */
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        cJSON *req;
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
        if (u->target->kind == MCPLEX_TARGET_STDIO && u->target->stdio.shared) {
            int r;
            mux_shared_attach(u);
            r = mux_shared_ready_or_wait(u, op, i);
            if (r == 1) {
                op->slots[i].state = MUX_SLOT_DONE;
                op->outstanding--;
            } else if (r < 0) {
                op->slots[i].state = MUX_SLOT_FAILED;
                op->outstanding--;
            }
            continue;
        }
        if (mux_upstream_start(u) != 0) {
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
            continue;
        }
        u->state = MCPLEX_UPSTREAM_INITIALIZING;
        req = mux_request_new("initialize", init_params);
        if (mux_upstream_call(u, op, i, req, mux_target_deadline_ms(u, 1)) != 0) {
            u->state = MCPLEX_UPSTREAM_FAILED;
            u->failure = mcplex_strdup("could not send initialize");
            op->slots[i].state = MUX_SLOT_FAILED;
            op->outstanding--;
        }
        cJSON_Delete(req);
    }
    cJSON_Delete(init_params);
    if (--op->outstanding == 0)
        mux_initialize_finish(op);
}
