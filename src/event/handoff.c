/*
 * handoff.c - requests that land on the wrong worker (see handoff.h).
 *
 * A hand-off record holds a deep copy of the request (read by the owner) and the origin's real
 * stream (touched only on the origin). The owner sees a remote stream whose ops copy each
 * response piece into a message for the origin's inbox; inboxes run in posting order, so the
 * pieces reach the client in order. References: one for the origin side (dropped when the real
 * stream is finished or closed) and one for the owner side (dropped when the remote stream is
 * finished or its close was delivered). Thread: the origin's and the owner's loops.
 */
#include "event/handoff.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/seal.h"
#include "event/inbox.h"
#include "event/workers.h"
#include "mcp/session.h"
#include "router/hcm.h"

typedef struct handoff handoff_t;

typedef struct remote_stream {
    mcplex_http_stream_t base; /* first member: what the owner's HCM and MCP layer see */
    handoff_t *h;
} remote_stream_t;

struct handoff {
    _Atomic int refs;
    mcplex_worker_t *origin;
    mcplex_worker_t *owner;
    mcplex_http_stream_t *origin_stream; /* origin thread only; NULL once finished or closed */
    /* The request, copied (the owner reads it). */
    char *listener_name;
    mcplex_http_request_t req;
    mcplex_http_header_t *headers;
    char *storage;
    remote_stream_t remote;
    int remote_done; /* owner thread only */
    /* Back-pressure across the two threads: body bytes the owner posted and the origin has not
     * written yet, and what the origin's stream had still unsent at its last write (bytes). */
    _Atomic size_t in_flight;
    _Atomic size_t origin_pending;
};

typedef enum piece_kind {
    PIECE_RESPOND = 0,
    PIECE_START,
    PIECE_WRITE,
    PIECE_FINISH,
} piece_kind_t;

/* One response piece on its way from the owner to the origin. */
typedef struct piece {
    handoff_t *h;
    piece_kind_t kind;
    int status;
    mcplex_http_header_t *hdrs;
    size_t n_hdrs;
    char *data; /* body or chunk */
    size_t len;
} piece_t;

static void
handoff_unref(handoff_t *h)
{
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    free(h->listener_name);
    free(h->headers);
    free(h->storage);
    free(h);
}

/* ---- the origin side -------------------------------------------------------------------------- */

static void
origin_stream_closed(void *arg, mcplex_http_stream_t *stream);

static void
owner_on_origin_closed(void *arg)
{
    handoff_t *h = arg;

    /* The client went away before the owner finished: the remote stream closes. */
    if (!h->remote_done) {
        h->remote_done = 1;
        if (h->remote.base.on_close != NULL)
            h->remote.base.on_close(h->remote.base.on_close_arg, &h->remote.base);
        handoff_unref(h);
    }
    handoff_unref(h); /* the reference this message carried */
}

static void
origin_stream_closed(void *arg, mcplex_http_stream_t *stream)
{
    handoff_t *h = arg;

    (void)stream;
    h->origin_stream = NULL;
    atomic_fetch_add(&h->refs, 1); /* carried by the message */
    mcplex_inbox_post(h->owner->inbox, owner_on_origin_closed, h);
    handoff_unref(h); /* the origin side is done */
}

static void
piece_free(piece_t *p)
{
    free(p->hdrs);
    free(p->data);
    free(p);
}

/* Applies one response piece to the real stream, on the origin's loop. */
static void
origin_apply(void *arg)
{
    piece_t *p = arg;
    handoff_t *h = p->h;
    mcplex_http_stream_t *s = h->origin_stream;
    int last = p->kind == PIECE_RESPOND || p->kind == PIECE_FINISH;

    if (s != NULL) {
        switch (p->kind) {
        case PIECE_RESPOND:
            mcplex_http_stream_set_close_cb(s, NULL, NULL);
            mcplex_http_stream_respond(s, p->status, p->hdrs, p->n_hdrs, p->data, p->len);
            break;
        case PIECE_START:
            mcplex_http_stream_start(s, p->status, p->hdrs, p->n_hdrs);
            break;
        case PIECE_WRITE:
            mcplex_http_stream_write(s, p->data, p->len);
            atomic_store(&h->origin_pending, mcplex_http_stream_pending_bytes(s));
            break;
        case PIECE_FINISH:
            mcplex_http_stream_set_close_cb(s, NULL, NULL);
            mcplex_http_stream_finish(s);
            break;
        }
        if (last) {
            h->origin_stream = NULL;
            handoff_unref(h); /* the origin side is done */
        }
    }
    if (p->kind == PIECE_WRITE)
        atomic_fetch_sub(&h->in_flight, p->len);
    handoff_unref(h); /* the reference this message carried */
    piece_free(p);
}

/* ---- the remote stream (owner side) ------------------------------------------------------------ */

/* Copies |n| headers into one allocation: the array, then their NUL-terminated text. */
static mcplex_http_header_t *
pack_headers(const mcplex_http_header_t *hdrs, size_t n)
{
    size_t text = 0, off = 0;
    mcplex_http_header_t *out;
    char *p;

    for (size_t i = 0; i < n; i++)
        text += hdrs[i].name_len + hdrs[i].value_len + 2;
    out = mcplex_malloc(n * sizeof(*out) + text + 1);
    p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        out[i].name = p + off;
        out[i].name_len = hdrs[i].name_len;
        memcpy(p + off, hdrs[i].name, hdrs[i].name_len);
        off += hdrs[i].name_len;
        p[off++] = '\0';
        out[i].value = p + off;
        out[i].value_len = hdrs[i].value_len;
        memcpy(p + off, hdrs[i].value, hdrs[i].value_len);
        off += hdrs[i].value_len;
        p[off++] = '\0';
    }
    return out;
}

static int
remote_post(remote_stream_t *rs, piece_kind_t kind, int status, const mcplex_http_header_t *hdrs, size_t n,
            const void *data, size_t len)
{
    handoff_t *h = rs->h;
    piece_t *p;

    if (h->remote_done)
        return -1;
    p = mcplex_calloc(1, sizeof(*p));
    p->h = h;
    p->kind = kind;
    p->status = status;
    if (n > 0) {
        p->hdrs = pack_headers(hdrs, n);
        p->n_hdrs = n;
    }
    if (len > 0) {
        p->data = mcplex_malloc(len);
        memcpy(p->data, data, len);
        p->len = len;
    }
    if (kind == PIECE_WRITE)
        atomic_fetch_add(&h->in_flight, len);
    atomic_fetch_add(&h->refs, 1); /* carried by the message */
    mcplex_inbox_post(h->origin->inbox, origin_apply, p);
    if (kind == PIECE_RESPOND || kind == PIECE_FINISH) {
        h->remote_done = 1;
        handoff_unref(h); /* the owner side is done */
    }
    return 0;
}

static int
remote_respond(mcplex_http_stream_t *s, int status, const mcplex_http_header_t *h, size_t n, const void *b,
               size_t len)
{
    return remote_post((remote_stream_t *)s, PIECE_RESPOND, status, h, n, b, len);
}

static int
remote_start(mcplex_http_stream_t *s, int status, const mcplex_http_header_t *h, size_t n)
{
    return remote_post((remote_stream_t *)s, PIECE_START, status, h, n, NULL, 0);
}

static int
remote_write(mcplex_http_stream_t *s, const void *data, size_t len)
{
    return remote_post((remote_stream_t *)s, PIECE_WRITE, 0, NULL, 0, data, len);
}

static int
remote_finish(mcplex_http_stream_t *s)
{
    return remote_post((remote_stream_t *)s, PIECE_FINISH, 0, NULL, 0, NULL, 0);
}

/* What a client that does not read leaves buffered: bytes still on their way to the origin plus
 * what the origin's stream had unsent at its last write (refreshed on every write). */
static size_t
remote_pending(const mcplex_http_stream_t *s)
{
    handoff_t *h = ((const remote_stream_t *)s)->h;

    return atomic_load(&h->in_flight) + atomic_load(&h->origin_pending);
}

static const mcplex_http_stream_ops_t remote_ops = {
    .respond = remote_respond,
    .start = remote_start,
    .write = remote_write,
    .finish = remote_finish,
    .pending_bytes = remote_pending,
};

/* Runs the handed-over request through the owner's HCM, on the owner's loop. */
static void
owner_run(void *arg)
{
    handoff_t *h = arg;
    mcplex_worker_t *w = h->owner;
    mcplex_listener_ctx_t *lctx = NULL;

    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i] != NULL && strcmp(w->listeners[i]->listener_name, h->listener_name) == 0)
            lctx = w->listeners[i];
    if (lctx == NULL || (w->group != NULL && atomic_load(&w->group->stopping))) {
        static const char body[] = "listener is draining\n";
        mcplex_http_stream_respond(&h->remote.base, 503, NULL, 0, body, sizeof(body) - 1);
        return;
    }
    mcplex_hcm_handle(lctx, &h->remote.base, &h->req);
}

/* ---- deciding ----------------------------------------------------------------------------------- */

int
mcplex_handoff_session_owner(const mcplex_worker_t *w, const char *session_id)
{
    void *plain = NULL;
    size_t len = 0;
    cJSON *payload;
    const cJSON *idx;
    int owner = -1;

    if (session_id == NULL || mcplex_unseal(w->seal_key, session_id, &plain, &len) != 0)
        return -1;
    payload = cJSON_ParseWithLength(plain, len);
    idx = cJSON_GetObjectItemCaseSensitive(payload, "w");
    if (cJSON_IsNumber(idx) && idx->valuedouble >= 0 && idx->valuedouble < 1024)
        owner = (int)idx->valuedouble;
    cJSON_Delete(payload);
    free(plain);
    return owner;
}

/* The session id of |req|: the Mcp-Session-Id header, or the legacy ?sessionId= (malloc'ed). */
static char *
request_session_id(const mcplex_http_request_t *req)
{
    const char *sid = mcplex_http_request_header(req, "mcp-session-id");
    const char *q = req->query;

    if (sid != NULL)
        return mcplex_strdup(sid);
    while (q != NULL && *q != '\0') {
        if (strncmp(q, "sessionId=", 10) == 0)
            return mcplex_strndup(q + 10, strcspn(q + 10, "&"));
        q = strchr(q, '&');
        if (q != NULL)
            q++;
    }
    return NULL;
}

/* Deep-copies |req| into |h|: its strings and body in one block, its headers in another. */
static void
copy_request(handoff_t *h, const mcplex_http_request_t *req)
{
    const char *fields[4] = {req->method, req->path, req->query, req->authority};
    const char **dst[4] = {&h->req.method, &h->req.path, &h->req.query, &h->req.authority};
    size_t bytes = req->body_len + 1, off = 0;

    for (size_t i = 0; i < 4; i++)
        bytes += fields[i] != NULL ? strlen(fields[i]) + 1 : 0;
    h->storage = mcplex_malloc(bytes);
    for (size_t i = 0; i < 4; i++) {
        *dst[i] = NULL;
        if (fields[i] == NULL)
            continue;
        *dst[i] = h->storage + off;
        memcpy(h->storage + off, fields[i], strlen(fields[i]) + 1);
        off += strlen(fields[i]) + 1;
    }
    h->req.body = h->storage + off;
    if (req->body_len > 0)
        memcpy(h->storage + off, req->body, req->body_len);
    h->storage[off + req->body_len] = '\0';
    h->req.body_len = req->body_len;
    h->headers = pack_headers(req->headers, req->n_headers);
    h->req.headers = h->headers;
    h->req.n_headers = req->n_headers;
    h->req.http_major = req->http_major;
    h->req.http_minor = req->http_minor;
}

int
mcplex_handoff_maybe(mcplex_listener_ctx_t *lctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    mcplex_worker_t *w = lctx->worker;
    mcplex_worker_group_t *g = w->group;
    char *sid;
    int owner;
    handoff_t *h;

    if (g == NULL || g->n < 2 || atomic_load(&g->stopping))
        return 0;
    sid = request_session_id(req);
    if (sid == NULL || mcplex_session_find(w->sessions, sid) != NULL) {
        free(sid);
        return 0;
    }
    owner = mcplex_handoff_session_owner(w, sid);
    free(sid);
    if (owner < 0 || (size_t)owner >= g->n || owner == w->index)
        return 0; /* unknown here and nowhere else: the endpoint answers 404 */
    h = mcplex_calloc(1, sizeof(*h));
    atomic_init(&h->refs, 2);
    h->origin = w;
    h->owner = g->workers[owner];
    h->origin_stream = stream;
    h->listener_name = mcplex_strdup(lctx->listener_name);
    copy_request(h, req);
    h->remote.base.ops = &remote_ops;
    h->remote.h = h;
    memcpy(h->remote.base.peer, stream->peer, sizeof(h->remote.base.peer));
    mcplex_http_stream_set_close_cb(stream, origin_stream_closed, h);
    mcplex_log_debug("worker", "worker %d hands %s %s over to worker %d (session owner)", w->index,
                     req->method, req->path, owner);
    mcplex_inbox_post(h->owner->inbox, owner_run, h);
    return 1;
}
