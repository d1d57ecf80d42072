/*
 * mux_shared.c - shared stdio children (Stdio.shared): one child per worker serves every session
 * of the target; calls of all sessions share one list with child-unique ids, progress tokens
 * are child-unique and mapped back, and the child initializes once, restarts with backoff and
 * stops with its last session. Thread: the worker.
 */
#include "mcp/mux-internal.h"

/* ---- shared stdio children: lifecycle ------------------------------------------------------------ */

/* Copies what the shared child said in its InitializeResult to a session's view of it. */
void
mux_shared_copy_to(const mcplex_shared_target_t *sh, mcplex_upstream_t *u)
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
        mux_shared_waiter_done(op, slot, ok, why);
        w = next;
    }
}

void
mux_shared_init_failed(mcplex_shared_target_t *sh, const char *why)
{
    char message[512];

    snprintf(message, sizeof(message), "target '%s' (shared) failed to initialize: %s", sh->target->name, why);
    sh->self.state = MCPLEX_UPSTREAM_FAILED;
    free(sh->self.failure);
    sh->self.failure = mcplex_strdup(message);
    mcplex_log_warn("mcp", "%s", message);
    shared_wake(sh, 0, message);
}

void
mux_shared_init_result(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg)
{
    char message[512];

    if (mux_upstream_accept_initialize(&sh->self, msg, message, sizeof(message)) != 0) {
        mux_shared_init_failed(sh, message);
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
                                                      &mux_transport_cbs, &sh->self, err, sizeof(err));
        sh->self.transport = sh->transport;
        if (sh->transport == NULL) {
            mux_shared_init_failed(sh, err[0] != '\0' ? err : "could not start");
            return -1;
        }
    }
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "protocolVersion", mcplex_mcp_protocol_versions[0]);
    /* Server requests are relayed to the session that caused them (see mux_upstream.c). */
    caps = cJSON_AddObjectToObject(params, "capabilities");
    cJSON_AddObjectToObject(caps, "sampling");
    cJSON_AddObjectToObject(caps, "elicitation");
    cJSON_AddObjectToObject(caps, "roots");
    info = cJSON_AddObjectToObject(params, "clientInfo");
    cJSON_AddStringToObject(info, "name", "mcplex");
    cJSON_AddStringToObject(info, "version", MCPLEX_VERSION);
    req = mux_request_new("initialize", params);
    cJSON_Delete(params);
    sh->self.state = MCPLEX_UPSTREAM_INITIALIZING;
    rc = mux_upstream_call(&sh->self, NULL, 0, req, mux_target_deadline_ms(&sh->self, 1));
    cJSON_Delete(req);
    if (rc != 0) {
        mux_shared_init_failed(sh, "could not send initialize");
        return -1;
    }
    return 0;
}

/*
 * |u| (slot |slot| of |op|) needs the shared child ready: 1 if it is (|u| updated), 0 if |op| now
 * waits for it, -1 if it cannot be started now (|u| failed).
 */
int
mux_shared_ready_or_wait(mcplex_upstream_t *u, mcplex_op_t *op, size_t slot)
{
    mcplex_shared_target_t *sh = u->shared;
    shared_waiter_t *w;

    if (sh->self.state == MCPLEX_UPSTREAM_READY) {
        mux_shared_copy_to(sh, u);
        return 1;
    }
    if (sh->self.state == MCPLEX_UPSTREAM_FAILED && mux_now_ms() < sh->restart_after_ms) {
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
        sh->restart_after_ms = mux_now_ms() + sh->backoff_ms;
        sh->restarts++;
    }
    shared_start(sh); /* on failure the waiters (this one too) were woken already */
    return 0;
}

/* Attaches |u| to the worker's child for its target (created on first use). */
void
mux_shared_attach(mcplex_upstream_t *u)
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
        mux_call_unlink(sh->calls);
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
void
mux_shared_forget_op(mcplex_op_t *op)
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
void
mux_shared_closed(mcplex_shared_target_t *sh, const char *reason)
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
        mux_call_unlink(call);
        if (op != NULL)
            mux_op_slot_failed(op, slot, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
    }
    shared_wake(sh, 0, message);
}

/* Notifications of a shared child: only to the session they concern. */
void
mux_shared_notification(mcplex_shared_target_t *sh, mcplex_jsonrpc_msg_t *msg)
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
                    mux_deliver(s, op, msg->root);
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
            mux_upstream_notification(only->upstream, msg);
        return;
    }
    if (strcmp(m, "notifications/resources/updated") == 0) {
        for (size_t i = 0; i < sh->n_members; i++) {
            mcplex_upstream_t *u = sh->members[i];
            cJSON *copy = cJSON_Duplicate(msg->root, 1);
            mux_prefix_string_member(u->session, u->index, cJSON_GetObjectItemCaseSensitive(copy, "params"), "uri", 1);
            mux_deliver(u->session, NULL, copy);
            cJSON_Delete(copy);
        }
    }
}

/* A routed request to a shared child that died: restart it (shared backoff) and wait. */
int
mux_shared_reinit(mcplex_upstream_t *u, mcplex_op_t *op)
{
    char message[512];
    int r = mux_shared_ready_or_wait(u, op, op->target);

    if (r == 1) {
        mux_shared_waiter_done(op, op->target, 1, NULL);
        return 0;
    }
    if (r < 0) {
        snprintf(message, sizeof(message), "target '%s' is restarting: %s", mux_target_name(u),
                 u->failure != NULL ? u->failure : "unavailable");
        mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, message, NULL);
        return -1;
    }
    return 0;
}
