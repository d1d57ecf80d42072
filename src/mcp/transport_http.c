/*
 * transport_http.c - the streamable-HTTP target transport (see transport.h; MCP 2025-03-26 ..
 * 2025-11-25 "Streamable HTTP"): every message is one POST to the target's path over an
 * upstream connection pool (upstream/http_client.h); the answer is 202/204 (accepted, no body),
 * one JSON body (a message, or a batch array delivered element by element), or an SSE stream
 * (http/sse.h) whose "message" events carry the response and anything the server sends before
 * it (notifications, server->client requests).
 *
 * Owns: the in-flight POSTs (each with its body buffer or SSE parser), the upstream
 * Mcp-Session-Id (taken from any response that carries one) and the negotiated protocol
 * version, both sent on every later POST. close() cancels every POST and, when a session id is
 * known, sends a best-effort DELETE that no longer involves the owner.
 *
 * No on_closed: each POST stands alone, so a failed POST is reported with on_send_failed (status
 * >= 300 other than 202/204 with |http_status| set, connection errors and timeouts with 0). A
 * 404 on a request that carried a session id means the upstream session is gone; the owner
 * re-initializes (or forgets the id with mcplex_http_transport_set_session_id()).
 *
 * Lifetime: close() may come from inside one of this transport's callbacks; then the teardown
 * runs from a zero-timeout event, and the owner hears nothing more in between.
 * Thread: the worker that owns the pool; nothing here is thread-safe.
 */
#include "mcp/transport.h"

#include "admin/server_stats.h" /* cluster stats (issue 7) */
#include "admin/stats.h"
#include "common/log.h"
#include "common/mem.h"
#include "config/model.h"
#include "http/sse.h"
#include "upstream/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#define BODY_CAP (64u * 1024 * 1024) /* one JSON response body, or one SSE event */
#define ERROR_BODY_KEEP 512           /* body bytes of an error response kept for the reason */
#define DELETE_TIMEOUT_MS 2000

/* ---- types ---------------------------------------------------------------------------------- */

typedef enum post_body {
    BODY_IGNORE = 0, /* 202/204, or nothing to deliver */
    BODY_JSON,       /* application/json: buffered, delivered at the end */
    BODY_SNIFF,      /* 2xx with another content type: delivered if it looks like JSON */
    BODY_SSE,        /* text/event-stream: delivered event by event */
    BODY_ERROR,      /* status >= 300: the start is kept for the failure reason */
} post_body_t;

typedef struct http_transport http_transport_t;

typedef struct http_post {
    struct http_post *prev, *next;
    http_transport_t *t;
    mcplex_http_client_req_t *req;
    uint64_t tag;
    int status;
    post_body_t kind;
    char *body;
    size_t body_len, body_cap;
    int too_large;
    mcplex_sse_parser_t *sse;
    int sse_failed;
    size_t delivered; /* messages delivered from this response */
    int starting; /* inside mcplex_http_client_request() */
    int ended;    /* the client ended the request (on_complete/on_error) */
    int is_stream; /* the GET server stream, not a POST */
    uint64_t started_us; /* stats (issue 7): a counted POST's start, 0 = not counted */
} http_post_t;

struct http_transport {
    mcplex_transport_t super;
    struct event_base *base;
    mcplex_http_pool_t *pool;
    char *component; /* "target:<name>" */
    char *path;
    char *authority;
    mcplex_http_header_t *extra; /* cfg->headers, copied */
    size_t n_extra;
    uint32_t timeout_ms;
    char *session_id;
    char *protocol_version;
    http_post_t *posts; /* in flight */
    int in_cb;          /* owner callbacks (or our callbacks that call the owner) on the stack */
    int closing;
    /* The upstream server stream (GET), opened on demand and reopened when it ends. */
    http_post_t *stream;
    int want_stream;
    int stream_unsupported;  /* the target answered 405: it offers no server stream */
    char *last_event_id;     /* resumption point for the next GET */
    struct event *reopen;
    const mcplex_cluster_stats_t *cstats; /* cluster.<name>.upstream_rq_* (issue 7), or NULL */
};

static const mcplex_transport_ops_t http_ops;

/* ---- helpers --------------------------------------------------------------------------------- */

static int
header_is(const mcplex_http_header_t *h, const char *name)
{
    size_t n = strlen(name);

    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* Compares the media type of a Content-Type value (before any ';', trimmed) with |type|. */
static int
media_type_is(const char *value, size_t len, const char *type)
{
    size_t n = strlen(type);
    size_t i = 0;

    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < n || strncasecmp(value + i, type, n) != 0)
        return 0;
    i += n;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    return i == len || value[i] == ';';
}

static void
set_header(mcplex_http_header_t *h, const char *name, const char *value)
{
    h->name = name;
    h->name_len = strlen(name);
    h->value = value;
    h->value_len = strlen(value);
}

/* Builds the request headers of a POST (|post| != 0) or DELETE; caller frees the array. */
static mcplex_http_header_t *
build_headers(const http_transport_t *t, int post, size_t *n_out)
{
    mcplex_http_header_t *h = mcplex_calloc(5 + t->n_extra, sizeof(*h));
    size_t n = 0;

    if (post == 1) {
        set_header(&h[n++], "content-type", "application/json");
        set_header(&h[n++], "accept", "application/json, text/event-stream");
    } else if (post == 2) {
        set_header(&h[n++], "accept", "text/event-stream");
        if (t->last_event_id != NULL)
            set_header(&h[n++], "last-event-id", t->last_event_id);
    }
    if (t->session_id != NULL)
        set_header(&h[n++], "mcp-session-id", t->session_id);
    if (t->protocol_version != NULL)
        set_header(&h[n++], "mcp-protocol-version", t->protocol_version);
    for (size_t i = 0; i < t->n_extra; i++)
        h[n++] = t->extra[i];
    *n_out = n;
    return h;
}

static void
body_append(http_post_t *p, const char *data, size_t len, size_t cap)
{
    if (p->body_len + len > cap) {
        if (p->kind != BODY_ERROR)
            p->too_large = 1;
        len = cap > p->body_len ? cap - p->body_len : 0;
    }
    if (len == 0)
        return;
    if (p->body_len + len + 1 > p->body_cap) {
        size_t ncap = p->body_cap != 0 ? p->body_cap : 4096;
        while (ncap < p->body_len + len + 1)
            ncap *= 2;
        p->body = mcplex_realloc(p->body, ncap);
        p->body_cap = ncap;
    }
    memcpy(p->body + p->body_len, data, len);
    p->body_len += len;
    p->body[p->body_len] = '\0';
}

static void
post_unlink_free(http_post_t *p)
{
    http_transport_t *t = p->t;

    /* stats (issue 7): every counted POST ends here exactly once */
    if (p->started_us != 0 && t->cstats != NULL) {
        mcplex_stat_dec(t->cstats->upstream_rq_active);
        mcplex_stat_record(t->cstats->upstream_rq_time, (double)(mcplex_http_now_us() - p->started_us) / 1000.0);
        if (p->status >= 100 && p->status < 600)
            mcplex_stat_inc(t->cstats->upstream_rq_xx[p->status / 100 - 1]);
    }

    if (t->stream == p)
        t->stream = NULL;

    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        t->posts = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    if (p->sse != NULL)
        mcplex_sse_parser_destroy(p->sse);
    free(p->body);
    free(p);
}

/* ---- owner callbacks --------------------------------------------------------------------------- */

static void
deliver(http_transport_t *t, const char *json, size_t len)
{
    if (t->closing)
        return;
    t->in_cb++;
    t->super.cbs->on_message(t->super.owner, json, len);
    t->in_cb--;
}

/* Delivers one JSON text (mutable, NUL-terminated): a message, or each element of a batch. */
static void
deliver_json(http_transport_t *t, char *text, size_t len)
{
    size_t i = 0;

    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i == len)
        return;
    if (text[i] != '[') {
        deliver(t, text, len);
        return;
    }
    size_t pos = 0, off, n;
    int r;
    while (!t->closing && (r = mcplex_json_array_next(text, len, &pos, &off, &n)) == 1) {
        char saved = text[off + n];
        text[off + n] = '\0';
        deliver(t, text + off, n);
        text[off + n] = saved;
    }
    if (r == -1)
        mcplex_log_warn(t->component, "malformed JSON-RPC batch in a response skipped");
}

static void
send_failed(http_post_t *p, int status, const char *reason)
{
    http_transport_t *t = p->t;

    if (t->closing)
        return;
    if (p->tag == 0) {
        mcplex_log_warn(t->component, "POST %s (notification or response) failed: %s", t->path, reason);
        return;
    }
    mcplex_log_debug(t->component, "POST %s failed: %s", t->path, reason);
    t->in_cb++;
    t->super.cbs->on_send_failed(t->super.owner, p->tag, status, reason);
    t->in_cb--;
}

/* ---- SSE --------------------------------------------------------------------------------------- */

static void
on_sse_event(void *arg, const mcplex_sse_event_t *ev)
{
    http_post_t *p = arg;

    if (p->is_stream && ev->id != NULL) {
        free(p->t->last_event_id);
        p->t->last_event_id = mcplex_strdup(ev->id);
    }
    if (p->t->closing || ev->data_len == 0)
        return; /* priming events carry no data */
    if (strcmp(ev->event, "message") != 0) {
        mcplex_log_debug(p->t->component, "SSE event '%s' ignored", ev->event);
        return;
    }
    /* The parser's buffer is only valid during this call; batches are split in a copy. */
    if (ev->data[0] == '[' || ev->data[0] == ' ' || ev->data[0] == '\t') {
        char *copy = mcplex_strndup(ev->data, ev->data_len);
        deliver_json(p->t, copy, ev->data_len);
        free(copy);
    } else {
        deliver(p->t, ev->data, ev->data_len);
    }
    p->delivered++;
}

/* ---- HTTP client callbacks --------------------------------------------------------------------- */

static void
on_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    http_post_t *p = arg;
    http_transport_t *t = p->t;
    const mcplex_http_header_t *ctype = NULL;

    p->status = status;
    for (size_t i = 0; i < n_hdrs; i++) {
        if (header_is(&hdrs[i], "mcp-session-id") && hdrs[i].value_len > 0) {
            if (t->session_id == NULL || strlen(t->session_id) != hdrs[i].value_len ||
                memcmp(t->session_id, hdrs[i].value, hdrs[i].value_len) != 0) {
                free(t->session_id);
                t->session_id = mcplex_strndup(hdrs[i].value, hdrs[i].value_len);
                mcplex_log_debug(t->component, "upstream session id %s", t->session_id);
            }
        } else if (header_is(&hdrs[i], "content-type")) {
            ctype = &hdrs[i];
        }
    }
    if (status == 202 || status == 204) {
        p->kind = BODY_IGNORE;
    } else if (status >= 200 && status < 300) {
        if (ctype != NULL && media_type_is(ctype->value, ctype->value_len, "text/event-stream")) {
            p->kind = BODY_SSE;
            p->sse = mcplex_sse_parser_create(on_sse_event, p, BODY_CAP);
        } else if (ctype != NULL && media_type_is(ctype->value, ctype->value_len, "application/json")) {
            p->kind = BODY_JSON;
        } else {
            p->kind = BODY_SNIFF;
        }
    } else {
        p->kind = BODY_ERROR;
    }
}

static void
on_body(void *arg, const char *data, size_t len)
{
    http_post_t *p = arg;
    http_transport_t *t = p->t;

    if (t->closing)
        return;
    switch (p->kind) {
    case BODY_IGNORE:
        break;
    case BODY_JSON:
    case BODY_SNIFF:
        if (!p->too_large)
            body_append(p, data, len, BODY_CAP);
        break;
    case BODY_ERROR:
        body_append(p, data, len, ERROR_BODY_KEEP);
        break;
    case BODY_SSE:
        if (p->sse_failed)
            break;
        t->in_cb++; /* the parser calls the owner; keep |t| and the parser alive */
        int r = mcplex_sse_parser_feed(p->sse, data, len);
        t->in_cb--;
        if (r != 0 && !t->closing) {
            p->sse_failed = 1;
            mcplex_log_warn(t->component, "SSE event over %u bytes in a response; stream ignored",
                            (unsigned)BODY_CAP);
            send_failed(p, 0, "SSE event too large");
        }
        break;
    }
}

/* The request is over: free |p| now unless mcplex_http_client_request() is still on the stack. */
static void
post_end(http_post_t *p)
{
    p->ended = 1;
    p->req = NULL;
    if (!p->starting)
        post_unlink_free(p);
}

static void stream_ended(http_post_t *p);

static void
on_complete(void *arg)
{
    http_post_t *p = arg;
    http_transport_t *t = p->t;
    char reason[ERROR_BODY_KEEP + 64];

    if (p->is_stream) {
        stream_ended(p);
        return;
    }
    t->in_cb++;
    switch (p->kind) {
    case BODY_IGNORE:
        break;
    case BODY_SSE:
        /* Only requests get a stream, and it must carry their response; mcplex does not resume
         * streams (GET with Last-Event-ID), so an empty one is a failed request. */
        if (p->delivered == 0 && !p->sse_failed)
            send_failed(p, 0, "SSE response stream ended without a message");
        break;
    case BODY_JSON:
    case BODY_SNIFF:
        if (p->too_large) {
            mcplex_log_warn(t->component, "response body over %u bytes discarded", (unsigned)BODY_CAP);
            send_failed(p, 0, "response body too large");
        } else if (p->body_len > 0) {
            size_t i = 0;
            while (i < p->body_len && strchr(" \t\r\n", p->body[i]) != NULL)
                i++;
            if (p->kind == BODY_JSON || (i < p->body_len && (p->body[i] == '{' || p->body[i] == '[')))
                deliver_json(t, p->body, p->body_len);
        }
        break;
    case BODY_ERROR: {
        /* "HTTP 404 Not Found: <first line of the body>" */
        size_t n = 0;
        while (n < p->body_len && p->body[n] != '\n' && p->body[n] != '\r')
            n++;
        if (n > 200)
            n = 200;
        if (n > 0)
            snprintf(reason, sizeof(reason), "HTTP %d %s: %.*s", p->status,
                     mcplex_http_status_text(p->status), (int)n, p->body);
        else
            snprintf(reason, sizeof(reason), "HTTP %d %s", p->status, mcplex_http_status_text(p->status));
        send_failed(p, p->status, reason);
        break;
    }
    }
    t->in_cb--;
    post_end(p);
}

static void
on_error(void *arg, const char *reason)
{
    http_post_t *p = arg;
    http_transport_t *t = p->t;

    if (p->is_stream) {
        mcplex_log_debug(t->component, "server stream GET %s failed: %s", t->path, reason ? reason : "?");
        stream_ended(p);
        return;
    }
    if (p->started_us != 0 && t->cstats != NULL && reason != NULL && strcmp(reason, "timeout") == 0)
        mcplex_stat_inc(t->cstats->upstream_rq_timeout); /* stats (issue 7) */
    t->in_cb++;
    send_failed(p, 0, reason != NULL ? reason : "upstream error");
    t->in_cb--;
    post_end(p);
}

static const mcplex_http_client_cbs_t post_cbs = {on_headers, on_body, on_complete, on_error};

/* ---- the upstream server stream (GET) ------------------------------------------------------------- */

/* How soon a server stream that ended is opened again (ms). */
#define STREAM_REOPEN_MS 1000

static void
stream_start(http_transport_t *t)
{
    mcplex_http_header_t *h;
    size_t n;
    http_post_t *p;

    if (t->closing || t->stream != NULL || t->stream_unsupported)
        return;
    p = mcplex_calloc(1, sizeof(*p));
    p->t = t;
    p->is_stream = 1;
    p->next = t->posts;
    if (t->posts != NULL)
        t->posts->prev = p;
    t->posts = p;
    t->stream = p;
    h = build_headers(t, 2, &n);
    p->starting = 1;
    p->req = mcplex_http_client_request(t->pool, "GET", t->path, t->authority, h, n, NULL, 0, 0, &post_cbs, p);
    p->starting = 0;
    free(h);
    if (p->ended || p->req == NULL)
        post_unlink_free(p);
}

static void
stream_reopen_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_start(arg);
}

/* The GET ended: 405 means no server stream; otherwise it is opened again shortly. */
static void
stream_ended(http_post_t *p)
{
    http_transport_t *t = p->t;
    struct timeval later = {STREAM_REOPEN_MS / 1000, (STREAM_REOPEN_MS % 1000) * 1000};

    if (p->status == 405) {
        t->stream_unsupported = 1;
        mcplex_log_debug(t->component, "target offers no server stream (405)");
    }
    post_end(p);
    if (t->closing || !t->want_stream || t->stream_unsupported)
        return;
    if (t->reopen == NULL)
        t->reopen = evtimer_new(t->base, stream_reopen_cb, t);
    evtimer_add(t->reopen, &later);
}

/* The DELETE of close() outlives the transport and tells nobody. */
static void
on_delete_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
}

static void
on_delete_body(void *arg, const char *data, size_t len)
{
}

static void
on_delete_complete(void *arg)
{
}

static void
on_delete_error(void *arg, const char *reason)
{
}

static const mcplex_http_client_cbs_t delete_cbs = {on_delete_headers, on_delete_body, on_delete_complete,
                                                    on_delete_error};

/* ---- teardown ------------------------------------------------------------------------------------ */

static void
finish(http_transport_t *t)
{
    while (t->posts != NULL) {
        http_post_t *p = t->posts;
        if (p->req != NULL)
            mcplex_http_client_cancel(p->req);
        post_unlink_free(p);
    }
    if (t->session_id != NULL) {
        size_t n;
        mcplex_http_header_t *h = build_headers(t, 0, &n);
        if (mcplex_http_client_request(t->pool, "DELETE", t->path, t->authority, h, n, NULL, 0,
                                       DELETE_TIMEOUT_MS, &delete_cbs, NULL) == NULL)
            mcplex_log_debug(t->component, "DELETE of the upstream session not sent");
        free(h);
    }
    for (size_t i = 0; i < t->n_extra; i++) {
        free((char *)t->extra[i].name);
        free((char *)t->extra[i].value);
    }
    free(t->extra);
    if (t->reopen != NULL)
        event_free(t->reopen);
    free(t->last_event_id);
    free(t->session_id);
    free(t->protocol_version);
    free(t->path);
    free(t->authority);
    free(t->component);
    free(t->super.target_name);
    free(t);
}

static void
on_deferred_finish(evutil_socket_t fd, short what, void *arg)
{
    finish(arg);
}

/* ---- ops --------------------------------------------------------------------------------------- */

static int
http_send(mcplex_transport_t *base, const char *json, size_t len, uint64_t tag)
{
    http_transport_t *t = (http_transport_t *)base;
    mcplex_http_header_t *h;
    size_t n;
    http_post_t *p;

    if (t->closing)
        return -1;
    p = mcplex_calloc(1, sizeof(*p));
    p->t = t;
    p->tag = tag;
    p->next = t->posts;
    if (t->posts != NULL)
        t->posts->prev = p;
    t->posts = p;
    h = build_headers(t, 1, &n);
    if (t->cstats != NULL) { /* stats (issue 7) */
        p->started_us = mcplex_http_now_us();
        mcplex_stat_inc(t->cstats->upstream_rq_total);
        mcplex_stat_add(t->cstats->upstream_rq_active, 1);
    }
    p->starting = 1;
    p->req = mcplex_http_client_request(t->pool, "POST", t->path, t->authority, h, n, json, len,
                                        t->timeout_ms, &post_cbs, p);
    p->starting = 0;
    free(h);
    if (p->ended || p->req == NULL) {
        int queued = p->ended;
        post_unlink_free(p);
        if (!queued) {
            mcplex_log_warn(t->component, "cannot send POST %s (bad header or pool gone)", t->path);
            return -1;
        }
    }
    return 0;
}

static void
http_set_protocol_version(mcplex_transport_t *base, const char *version)
{
    http_transport_t *t = (http_transport_t *)base;

    free(t->protocol_version);
    t->protocol_version = mcplex_strdup(version);
}

static void
http_close(mcplex_transport_t *base)
{
    http_transport_t *t = (http_transport_t *)base;
    static const struct timeval zero = {0, 0};

    if (t->closing)
        return;
    t->closing = 1;
    if (t->in_cb > 0 && event_base_once(t->base, -1, EV_TIMEOUT, on_deferred_finish, t, &zero) == 0)
        return;
    finish(t);
}

static const mcplex_transport_ops_t http_ops = {
    .send = http_send,
    .set_protocol_version = http_set_protocol_version,
    .close = http_close,
};

/* ---- API ------------------------------------------------------------------------------------- */

mcplex_transport_t *
mcplex_http_transport_create(struct event_base *base, const char *target_name, struct mcplex_http_pool *pool,
                             const struct mcplex_http_target *cfg, uint32_t timeout_ms,
                             const mcplex_transport_cbs_t *cbs, void *owner)
{
    http_transport_t *t = mcplex_calloc(1, sizeof(*t));

    t->super.ops = &http_ops;
    t->super.cbs = cbs;
    t->super.owner = owner;
    t->super.target_name = mcplex_strdup(target_name != NULL ? target_name : "?");
    t->component = mcplex_sprintf("target:%s", t->super.target_name);
    t->base = base;
    t->pool = pool;
    t->path = mcplex_strdup(cfg->path != NULL && cfg->path[0] != '\0' ? cfg->path : "/mcp");
    t->authority = mcplex_strdup(cfg->authority);
    t->timeout_ms = timeout_ms;
    if (cfg->cluster != NULL)
        t->cstats = mcplex_cluster_stats_get(cfg->cluster); /* stats (issue 7) */
    if (cfg->n_headers > 0) {
        t->extra = mcplex_calloc(cfg->n_headers, sizeof(*t->extra));
        for (size_t i = 0; i < cfg->n_headers; i++) {
            if (cfg->headers[i].name == NULL || cfg->headers[i].name[0] == '\0')
                continue;
            set_header(&t->extra[t->n_extra++], mcplex_strdup(cfg->headers[i].name),
                       mcplex_strdup(cfg->headers[i].value != NULL ? cfg->headers[i].value : ""));
        }
    }
    return &t->super;
}

int
mcplex_http_transport_open_stream(mcplex_transport_t *t)
{
    http_transport_t *ht = (http_transport_t *)t;

    if (t == NULL || t->ops != &http_ops || ht->closing)
        return -1;
    ht->want_stream = 1;
    stream_start(ht);
    return ht->stream_unsupported ? -1 : 0;
}

const char *
mcplex_http_transport_session_id(const mcplex_transport_t *t)
{
    if (t == NULL || t->ops != &http_ops)
        return NULL;
    return ((const http_transport_t *)t)->session_id;
}

void
mcplex_http_transport_set_session_id(mcplex_transport_t *t, const char *session_id)
{
    http_transport_t *ht = (http_transport_t *)t;

    if (t == NULL || t->ops != &http_ops)
        return;
    free(ht->session_id);
    ht->session_id = mcplex_strdup(session_id);
}
