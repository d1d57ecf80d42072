/*
 * mux_lists.c - list methods across targets: every ready target's page at once, items curated,
 * prefixed and concatenated in target order, sealed composite cursors for the next pages, owner
 * maps for unprefixed multiplexing; and URIs re-prefixed inside routed results.
 * Thread: the session's worker.
 */
#include "mcp/mux-internal.h"

/* ---- result rewriting (target -> client) ---------------------------------------------------------- */

void
mux_prefix_string_member(const mcplex_session_t *s, size_t target, cJSON *obj, const char *key, int uri)
{
    const char *value = mux_json_string(obj, key);
    char *prefixed;

    if (value == NULL || !s->prefixed)
        return;
    prefixed = uri ? mcplex_naming_join_uri(s->target_names[target], value)
                   : mcplex_naming_join_name(s->target_names[target], s->backend->separator, value);
    mux_json_replace_string(obj, key, prefixed);
    free(prefixed);
}

/* Prefixes the URI of one content block: embedded resources and resource links. */
static void
prefix_content_block(const mcplex_session_t *s, size_t target, cJSON *block)
{
    const char *type = mux_json_string(block, "type");

    if (type == NULL)
        return;
    if (strcmp(type, "resource") == 0)
        mux_prefix_string_member(s, target, cJSON_GetObjectItemCaseSensitive(block, "resource"), "uri", 1);
    else if (strcmp(type, "resource_link") == 0)
        mux_prefix_string_member(s, target, block, "uri", 1);
}

void
mux_rewrite_routed_result(const mcplex_session_t *s, size_t target, const char *method, cJSON *result)
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
            mux_prefix_string_member(s, target, item, "uri", 1);
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
    const char *key = mux_json_string(item, strcmp(list_key, "resources") == 0 ? "uri" : "name");
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
    req = mux_request_new(op->method, NULL);
    cJSON_AddItemToObject(req, "params", params);
    rc = mux_upstream_call(u, op, slot, req, mux_target_deadline_ms(u, 0));
    cJSON_Delete(req);
    return rc;
}

/*
 * Pagination across targets (MCP "Pagination": cursors are opaque; an invalid one is -32602),
 * in target order, then each target's own order (deterministic lists). A page asks the target
 * it continues (at its cursor) and every later target (first page) at once, then emits them in
 * order up to the first target that has more: the cursor names that target and its own cursor,
 * and the later targets' pages are asked again next time. Lists that fit in one page per target
 * (the common case) cost one concurrent round. The cursor is sealed (AEAD) with the method and
 * a per-session salt, so a forged, foreign or stale cursor fails to open and gets -32602.
 */
static char *
cursor_seal(const mcplex_session_t *s, const char *method, size_t target, const char *upstream_cursor)
{
    cJSON *c = cJSON_CreateObject();
    char *text, *sealed;

    cJSON_AddStringToObject(c, "m", method);
    cJSON_AddNumberToObject(c, "k", (double)(s->cursor_salt & 0xffffffffu));
    cJSON_AddNumberToObject(c, "t", (double)target);
    cJSON_AddStringToObject(c, "c", upstream_cursor);
    text = mcplex_json_print(c);
    sealed = mcplex_seal(s->worker->seal_key, text, strlen(text));
    free(text);
    cJSON_Delete(c);
    return sealed;
}

/* Opens a cursor: 0 with |*target| and |*upstream_cursor| (malloc'ed), or -1. */
static int
cursor_open(const mcplex_session_t *s, const char *method, const char *cursor, size_t *target,
            char **upstream_cursor)
{
    void *plain = NULL;
    size_t len = 0;
    cJSON *c = NULL;
    const cJSON *k, *t;
    const char *up;
    int rc = -1;

    if (mcplex_unseal(s->worker->seal_key, cursor, &plain, &len) != 0)
        goto done;
    c = cJSON_ParseWithLength(plain, len);
    k = cJSON_GetObjectItemCaseSensitive(c, "k");
    t = cJSON_GetObjectItemCaseSensitive(c, "t");
    up = mux_json_string(c, "c");
    if (c == NULL || mux_json_string(c, "m") == NULL || strcmp(mux_json_string(c, "m"), method) != 0 ||
        !cJSON_IsNumber(k) || (uint64_t)k->valuedouble != (s->cursor_salt & 0xffffffffu) || !cJSON_IsNumber(t) ||
        t->valuedouble < 0 || (size_t)t->valuedouble >= s->n_upstreams || up == NULL)
        goto done;
    *target = (size_t)t->valuedouble;
    *upstream_cursor = mcplex_strdup(up);
    rc = 0;
done:
    cJSON_Delete(c);
    free(plain);
    return rc;
}

void
mux_list_finish(mcplex_op_t *op)
{
    mcplex_session_t *s = op->session;
    cJSON *result = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(result, op->list_key);

    for (size_t i = 0; i < s->n_upstreams; i++) {
        mux_slot_t *slot = &op->slots[i];
        if (slot->state == MUX_SLOT_UNUSED)
            continue;
        if (slot->state == MUX_SLOT_FAILED) {
            if (s->backend->failure_mode == MCPLEX_FAIL_CLOSED) {
                cJSON_Delete(result);
                mux_op_reply_error(op, MCPLEX_JSONRPC_INTERNAL_ERROR, slot->error, NULL);
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
            /* This target has more: the next page continues it; later targets come after. */
            char *cursor = cursor_seal(s, op->method, i, slot->next_cursor);
            if (cursor != NULL)
                cJSON_AddStringToObject(result, "nextCursor", cursor);
            free(cursor);
            break;
        }
    }
    mux_op_reply_result(op, result);
}

/* Applies the target's tool curation to one tools/list item: 0 if hidden, else renamed and
 * re-described in place. */
static int
curate_tool(const mcplex_upstream_t *u, cJSON *tool)
{
    const char *name = mux_json_string(tool, "name");
    const char *exposed, *description;

    if (name == NULL)
        return 1;
    if (!mcplex_curation_expose(u->target, name, &exposed, &description))
        return 0;
    if (exposed != name) {
        char *copy = mcplex_strdup(exposed);
        mux_json_replace_string(tool, "name", copy);
        free(copy);
    }
    if (description != NULL)
        mux_json_replace_string(tool, "description", description);
    return 1;
}

void
mux_list_slot_result(mcplex_op_t *op, size_t slot_index, mcplex_jsonrpc_msg_t *msg)
{
    mcplex_session_t *s = op->session;
    mux_slot_t *slot = &op->slots[slot_index];
    const char *key = op->list_key;
    const char *next;
    cJSON *items, *item;
    char message[512];

    if (msg->kind == MCPLEX_JSONRPC_ERROR) {
        const char *m = mux_json_string(msg->error, "message");
        snprintf(message, sizeof(message), "target '%s': %s", s->target_names[slot_index], m ? m : "error");
        mux_op_slot_failed(op, slot_index, MCPLEX_JSONRPC_INTERNAL_ERROR, message);
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
            mux_prefix_string_member(s, slot_index, item, "name", 0);
        else if (strcmp(key, "resources") == 0)
            mux_prefix_string_member(s, slot_index, item, "uri", 1);
        else
            mux_prefix_string_member(s, slot_index, item, "uriTemplate", 1);
        cJSON_AddItemToArray(slot->items, item);
    }
    next = mux_json_string(msg->result, "nextCursor");
    if (next != NULL && next[0] != '\0')
        slot->next_cursor = mcplex_strdup(next);
    slot->state = MUX_SLOT_DONE;
    if (--op->outstanding == 0)
        mux_list_finish(op);
}

void
mux_list(mcplex_session_t *s, mcplex_jsonrpc_msg_t *msg, mcplex_exchange_t *ex)
{
    const char *cap = list_capability(msg->method);
    const char *cursor = mux_json_string(msg->params, "cursor");
    char *upstream_cursor = NULL;
    size_t first = 0;
    mcplex_op_t *op;

    if (cJSON_GetObjectItemCaseSensitive(msg->params, "cursor") != NULL &&
        (cursor == NULL || cursor_open(s, msg->method, cursor, &first, &upstream_cursor) != 0)) {
        mcplex_exchange_reply_error(ex, 200, msg->id_raw, MCPLEX_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL,
                                    s->id);
        return;
    }
    op = mux_op_create(s, MUX_OP_LIST, msg->method, msg->id_raw, ex);
    op->list_key = list_key(msg->method);
    op->request = cJSON_IsObject(msg->params) ? cJSON_Duplicate(msg->params, 1) : NULL;
    /* The target the cursor continues (from its cursor) and every later one (first page). */
    op->outstanding = 1; /* held while sending */
    for (size_t i = first; i < s->n_upstreams; i++) {
        if (!mux_upstream_has_capability(&s->upstreams[i], cap))
            continue;
        op->slots[i].state = MUX_SLOT_PENDING;
        op->outstanding++;
        if (list_send_page(op, i, i == first ? upstream_cursor : NULL) != 0) {
            op->slots[i].state = MUX_SLOT_FAILED;
            op->slots[i].error = mcplex_sprintf("target '%s' is unavailable", s->target_names[i]);
            op->outstanding--;
        }
    }
    free(upstream_cursor);
    if (--op->outstanding == 0)
        mux_list_finish(op);
}
