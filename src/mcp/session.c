/*
 * session.c - downstream MCP sessions, their table, and exchanges (see session.h).
 * Thread: the owning worker.
 */
#include "mcp/session.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/random.h"
#include "admin/mcp_stats.h"
#include "common/seal.h"
#include "event/worker.h"
#include "mcp/jsonrpc.h"
#include "mcp/transport.h"

/* ---- exchanges ---------------------------------------------------------------------------- */

static const char *
exchange_keep(mcplex_exchange_t *ex, const char *s, size_t len)
{
    char *copy = mcplex_strndup(s, len);

    MCPLEX_BUG_ON(ex->n_storage >= MCPLEX_ARRAY_SIZE(ex->header_storage));
    ex->header_storage[ex->n_storage++] = copy;
    return copy;
}

static void
exchange_on_stream_close(void *arg, mcplex_http_stream_t *stream)
{
    mcplex_exchange_t *ex = arg;

    (void)stream;
    ex->stream = NULL;
}

mcplex_exchange_t *
mcplex_exchange_create(mcplex_http_stream_t *stream, const mcplex_http_header_t *extra, size_t n_extra)
{
    mcplex_exchange_t *ex = mcplex_calloc(1, sizeof(*ex));

    ex->stream = stream;
    ex->started_us = mcplex_http_now_us();
    if (n_extra > 6)
        n_extra = 6;
    for (size_t i = 0; i < n_extra; i++) {
        mcplex_http_header_t *h = &ex->headers[ex->n_headers++];
        h->name = exchange_keep(ex, extra[i].name, extra[i].name_len);
        h->name_len = extra[i].name_len;
        h->value = exchange_keep(ex, extra[i].value, extra[i].value_len);
        h->value_len = extra[i].value_len;
    }
    if (stream != NULL)
        mcplex_http_stream_set_close_cb(stream, exchange_on_stream_close, ex);
    return ex;
}

static void
exchange_free(mcplex_exchange_t *ex)
{
    for (size_t i = 0; i < ex->n_storage; i++)
        free(ex->header_storage[i]);
    free(ex);
}

static void
exchange_reply(mcplex_exchange_t *ex, int status, const char *content_type, const char *body, size_t len,
               const char *session_id)
{
    mcplex_http_header_t hdrs[10];
    size_t n = 0;

    if (ex->stream != NULL) {
        if (content_type != NULL)
            hdrs[n++] = (mcplex_http_header_t){"content-type", 12, content_type, strlen(content_type)};
        if (session_id != NULL)
            hdrs[n++] = (mcplex_http_header_t){"mcp-session-id", 14, session_id, strlen(session_id)};
        for (size_t i = 0; i < ex->n_headers && n < MCPLEX_ARRAY_SIZE(hdrs); i++)
            hdrs[n++] = ex->headers[i];
        mcplex_http_stream_set_close_cb(ex->stream, NULL, NULL);
        mcplex_http_stream_respond(ex->stream, status, hdrs, n, body, len);
    }
    exchange_free(ex);
}

void mcplex_exchange__finish_stream(mcplex_exchange_t *ex, const char *json, size_t len);

void
mcplex_exchange_reply_json(mcplex_exchange_t *ex, int status, const char *json, size_t len, const char *session_id)
{
    char *event;

    if (ex->legacy) {
        /* Legacy HTTP+SSE: the POST got 202 already; answers travel on the /sse stream. */
        if (json != NULL && len > 0 && ex->session != NULL)
            mcplex_session_send(ex->session, json, len);
        exchange_free(ex);
        return;
    }
    if (ex->streaming) {
        /* The answer became an event stream: the response is its last event. */
        mcplex_exchange__finish_stream(ex, json, len);
        exchange_free(ex);
        return;
    }
    if (!ex->sse || status != 200) {
        exchange_reply(ex, status, "application/json", json, len, session_id);
        return;
    }
    /* A client that accepts only text/event-stream gets the answer as one SSE event. */
    event = mcplex_sprintf("event: message\ndata: %.*s\n\n", (int)len, json);
    exchange_reply(ex, status, "text/event-stream", event, strlen(event), session_id);
    free(event);
}

void
mcplex_exchange_reply_accepted(mcplex_exchange_t *ex, const char *session_id)
{
    exchange_reply(ex, 202, NULL, NULL, 0, session_id);
}

void
mcplex_exchange_reply_status(mcplex_exchange_t *ex, int status)
{
    exchange_reply(ex, status, NULL, NULL, 0, NULL);
}

void
mcplex_exchange_reply_error(mcplex_exchange_t *ex, int status, const char *id_raw, int code, const char *message,
                            const cJSON *data, const char *session_id)
{
    char *text = mcplex_jsonrpc_error_text(id_raw, code, message, data);

    mcplex_exchange_reply_json(ex, status, text, strlen(text), session_id);
    free(text);
}

/* ---- the session table ------------------------------------------------------------------------ */

mcplex_session_table_t *
mcplex_session_table_create(void)
{
    mcplex_session_table_t *t = mcplex_calloc(1, sizeof(*t));

    mcplex_strmap_init(&t->by_id);
    mcplex_strmap_init(&t->shared);
    return t;
}

static void
collect_session(void *arg, const char *key, void *value)
{
    mcplex_session_t ***cursor = arg;

    (void)key;
    *(*cursor)++ = value;
}

void
mcplex_session_table_destroy(mcplex_session_table_t *t)
{
    mcplex_session_t **all, **cursor;
    size_t n = t->by_id.count;

    cursor = all = mcplex_calloc(n + 1, sizeof(*all));
    mcplex_strmap_foreach(&t->by_id, collect_session, &cursor);
    for (size_t i = 0; i < n; i++)
        mcplex_session_close(all[i], "mcplex is shutting down");
    free(all);
    mcplex_strmap_dispose(&t->by_id);
    mcplex_strmap_dispose(&t->shared); /* shared children were stopped by their last session */
    free(t);
}

typedef struct reap_ctx {
    mcplex_session_t **victims;
    size_t n;
    size_t cap;
    time_t deadline;
} reap_ctx_t;

static void
collect_idle(void *arg, const char *key, void *value)
{
    reap_ctx_t *rc = arg;
    mcplex_session_t *s = value;

    (void)key;
    if (s->last_used >= rc->deadline || s->ops != NULL)
        return;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 16;
        rc->victims = mcplex_realloc(rc->victims, rc->cap * sizeof(*rc->victims));
    }
    rc->victims[rc->n++] = s;
}

size_t
mcplex_session_table_reap(mcplex_session_table_t *t, time_t now, time_t max_idle_s)
{
    reap_ctx_t rc = {NULL, 0, 0, now - max_idle_s};

    mcplex_strmap_foreach(&t->by_id, collect_idle, &rc);
    for (size_t i = 0; i < rc.n; i++)
        mcplex_session_close(rc.victims[i], "idle timeout");
    free(rc.victims);
    return rc.n;
}

mcplex_session_t *
mcplex_session_find(mcplex_session_table_t *t, const char *id)
{
    mcplex_session_t *s = mcplex_strmap_get(&t->by_id, id);

    return s != NULL && !s->closing ? s : NULL;
}

/* ---- sessions ---------------------------------------------------------------------------------- */

mcplex_session_t *
mcplex_session_create(struct mcplex_worker *worker, mcplex_snapshot_t *snapshot, const char *backend_name,
                      const mcplex_mcp_backend_t *backend, uint32_t route_timeout_ms)
{
    mcplex_session_t *s = mcplex_calloc(1, sizeof(*s));

    s->worker = worker;
    s->snapshot = mcplex_snapshot_ref(snapshot);
    s->backend_name = mcplex_strdup(backend_name);
    s->backend = backend;
    s->route_timeout_ms = route_timeout_ms;
    s->n_upstreams = backend->n_targets;
    s->upstreams = mcplex_calloc(s->n_upstreams, sizeof(*s->upstreams));
    s->target_names = mcplex_calloc(s->n_upstreams, sizeof(*s->target_names));
    for (size_t i = 0; i < s->n_upstreams; i++) {
        s->upstreams[i].session = s;
        s->upstreams[i].index = i;
        s->upstreams[i].target = &backend->targets[i];
        s->upstreams[i].next_id = 1;
        s->target_names[i] = backend->targets[i].name;
    }
    switch (backend->prefix_mode) {
    case MCPLEX_PREFIX_ALWAYS:
        s->prefixed = 1;
        break;
    case MCPLEX_PREFIX_NEVER:
        s->prefixed = 0;
        break;
    default:
        s->prefixed = backend->n_targets > 1;
        break;
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(s->owners); i++)
        mcplex_strmap_init(&s->owners[i]);
    mcplex_strmap_init(&s->server_requests);
    s->cursor_salt = mcplex_random_u64();
    s->created = s->last_used = time(NULL);
    return s;
}

int
mcplex_session_register(mcplex_session_t *s)
{
    char nonce[33];
    unsigned char raw[16];
    char *payload;

    mcplex_random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(nonce + 2 * i, 3, "%02x", raw[i]);
    /* What another replica needs to know which backend served the session; sealed (AEAD). */
    payload = mcplex_sprintf("{\"v\":1,\"w\":%d,\"b\":\"%s\",\"n\":\"%s\"}", s->worker->index, s->backend_name,
                             nonce);
    s->id = mcplex_seal(s->worker->seal_key, payload, strlen(payload));
    free(payload);
    if (s->id == NULL)
        return -1;
    mcplex_strmap_put(&s->worker->sessions->by_id, s->id, s);
    mcplex_mcp_stats_session_open(s->backend_name);
    return 0;
}

static void
session_free(mcplex_session_t *s)
{
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        free(u->failure);
        free(u->protocol_version);
        cJSON_Delete(u->capabilities);
        free(u->instructions);
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(s->owners); i++)
        mcplex_strmap_dispose(&s->owners[i]);
    free(s->upstreams);
    free(s->target_names);
    free(s->legacy_endpoint);
    free(s->id);
    free(s->backend_name);
    free(s->protocol_version);
    cJSON_Delete(s->client_info);
    cJSON_Delete(s->client_capabilities);
    mcplex_snapshot_unref(s->snapshot);
    free(s);
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_free(arg);
}

void
mcplex_session_close(mcplex_session_t *s, const char *reason)
{
    struct timeval now = {0, 0};

    if (s->closing)
        return;
    s->closing = 1;
    if (s->id != NULL) {
        mcplex_session_t *registered = mcplex_strmap_get(&s->worker->sessions->by_id, s->id);
        if (registered == s) {
            mcplex_strmap_remove(&s->worker->sessions->by_id, s->id);
            mcplex_mcp_stats_session_close(s->backend_name);
        }
        mcplex_log_info("mcp", "session %.12s... closed: %s", s->id, reason);
    }
    mcplex_mux_abort_all(s, MCPLEX_JSONRPC_CONNECTION_CLOSED, reason);
    mcplex_session_outbound_dispose(s);
    for (size_t i = 0; i < s->n_upstreams; i++) {
        mcplex_upstream_t *u = &s->upstreams[i];
        if (u->shared != NULL) {
            mcplex_mux_shared_detach(u);
            continue;
        }
        mcplex_mux_drop_calls(u);
        if (u->transport != NULL) {
            mcplex_transport_close(u->transport);
            u->transport = NULL;
        }
    }
    /* Free on a fresh loop turn: a transport or timer callback may be on the stack. */
    if (event_base_once(s->worker->base, -1, EV_TIMEOUT, session_free_cb, s, &now) != 0)
        mcplex_log_error("mcp", "could not schedule session free; leaking it");
}
