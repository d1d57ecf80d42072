/*
 * transport_sse.c - the legacy HTTP+SSE target transport (see transport.h; MCP 2024-11-05
 * "HTTP with SSE"): one long-lived GET of the target's SSE path over the upstream pool
 * (upstream/http_client.h, no timeout), parsed with http/sse.h. The first "endpoint" event names
 * the URL messages are POSTed to (relative or absolute, resolved against the SSE URL as RFC 3986
 * section 5 says; another origin is refused); every "message" event (or unnamed event) carries
 * one JSON-RPC message from the target, delivered through on_message.
 *
 * Owns: the GET and its SSE parser, the endpoint path, the queue of messages not yet POSTed, the
 * POSTs in flight, and three timers (start of the GET, the queue pump, the endpoint deadline).
 * Messages are POSTed in the order they were sent, one at a time until the target has answered
 * the previous one's headers (servers answer 202 at once; the reply comes on the stream), so a
 * target sees e.g. notifications/initialized after initialize. Sends made before the endpoint
 * event wait in the queue. A POST answered with a status other than 2xx, or failing (connection,
 * timeout: server-everything never answers a POST with an unknown sessionId), is reported with
 * on_send_failed for its tag. The GET failing, ending, answering other than 200 text/event-stream,
 * or sending no endpoint event in time is on_closed: the legacy session is gone.
 *
 * Owner callbacks never run inside mcplex_sse_transport_create() or send(): the GET and the
 * POSTs are started from zero-timeout events. close() may come from inside a callback; then the
 * teardown runs from a zero-timeout event and the owner hears nothing more in between.
 * Thread: the worker that owns the pool; nothing here is thread-safe.
 */
#include "mcp/transport.h"

#include "common/log.h"
#include "common/mem.h"
#include "config/model.h"
#include "http/sse.h"
#include "upstream/http_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#define EVENT_CAP (64u * 1024 * 1024)  /* one SSE event from the target */
#define ERROR_BODY_KEEP 512             /* body bytes of an error response kept for the reason */
#define DEFAULT_POST_TIMEOUT_MS 10000   /* a POST is answered at once (202); the reply is streamed */

/* ---- types ---------------------------------------------------------------------------------- */

typedef struct sse_transport sse_transport_t;

/* One message: queued (req == NULL, not started) or POSTed (in |posts|). */
typedef struct sse_post {
    struct sse_post *prev, *next;
    sse_transport_t *t;
    mcplex_http_client_req_t *req;
    uint64_t tag;
    char *json;
    size_t json_len;
    int status;
    char err[ERROR_BODY_KEEP + 1]; /* start of an error body */
    size_t err_len;
    int starting; /* inside mcplex_http_client_request() */
    int ended;    /* the client ended the request */
} sse_post_t;

struct sse_transport {
    mcplex_transport_t super;
    struct event_base *base;
    mcplex_http_pool_t *pool;
    char *component; /* "target:<name>" */
    char *sse_path;
    char *authority;
    int tls;
    mcplex_http_header_t *extra; /* cfg->headers, copied */
    size_t n_extra;
    uint32_t post_timeout_ms;
    char *protocol_version;
    char *endpoint; /* path (and query) POSTs go to; NULL until the endpoint event */

    mcplex_http_client_req_t *get;
    int get_starting;
    int get_status;
    mcplex_sse_parser_t *parser;
    char get_err[ERROR_BODY_KEEP + 1];
    size_t get_err_len;

    sse_post_t *queue_head, *queue_tail; /* not yet POSTed, in order */
    sse_post_t *posts;                   /* POSTed, in flight */
    sse_post_t *blocking;                /* the POST whose answer the queue waits for */

    struct event *start_ev;    /* starts the GET */
    struct event *pump_ev;     /* starts queued POSTs */
    struct event *endpoint_ev; /* endpoint deadline */
    int in_cb;   /* owner callbacks (or our callbacks that call the owner) on the stack */
    int dead;    /* on_closed was reported: nothing more goes to the owner */
    int closing; /* close() was called */
};

static const mcplex_transport_ops_t sse_ops;

/* ---- helpers --------------------------------------------------------------------------------- */

static int
header_is(const mcplex_http_header_t *h, const char *name)
{
    size_t n = strlen(name);

    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

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

/* Request headers of the GET (|post| 0) or of a POST; the caller frees the array. */
static mcplex_http_header_t *
build_headers(const sse_transport_t *t, int post, size_t *n_out)
{
    mcplex_http_header_t *h = mcplex_calloc(4 + t->n_extra, sizeof(*h));
    size_t n = 0;

    if (post) {
        set_header(&h[n++], "content-type", "application/json");
        if (t->protocol_version != NULL)
            set_header(&h[n++], "mcp-protocol-version", t->protocol_version);
    } else {
        set_header(&h[n++], "accept", "text/event-stream");
        set_header(&h[n++], "cache-control", "no-cache");
    }
    for (size_t i = 0; i < t->n_extra; i++)
        h[n++] = t->extra[i];
    *n_out = n;
    return h;
}

static void
keep_error_body(char *buf, size_t *len, const char *data, size_t n)
{
    if (*len + n > ERROR_BODY_KEEP)
        n = ERROR_BODY_KEEP - *len;
    memcpy(buf + *len, data, n);
    *len += n;
    buf[*len] = '\0';
}

/* "HTTP 404 Not Found: <first line of the body>" */
static void
status_reason(char *out, size_t out_len, int status, const char *body, size_t body_len)
{
    size_t n = 0;

    while (n < body_len && body[n] != '\n' && body[n] != '\r')
        n++;
    if (n > 200)
        n = 200;
    if (n > 0)
        snprintf(out, out_len, "HTTP %d %s: %.*s", status, mcplex_http_status_text(status), (int)n, body);
    else
        snprintf(out, out_len, "HTTP %d %s", status, mcplex_http_status_text(status));
}

static void
schedule(struct event *ev, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(ev, &tv);
}

/* ---- owner callbacks --------------------------------------------------------------------------- */

static void
deliver(sse_transport_t *t, const char *json, size_t len)
{
    if (t->closing || t->dead)
        return;
    t->in_cb++;
    t->super.cbs->on_message(t->super.owner, json, len);
    t->in_cb--;
}

static void
send_failed(sse_post_t *p, int status, const char *reason)
{
    sse_transport_t *t = p->t;

    if (t->closing || t->dead)
        return;
    if (p->tag == 0) {
        mcplex_log_warn(t->component, "POST %s (notification or response) failed: %s", t->endpoint, reason);
        return;
    }
    mcplex_log_debug(t->component, "POST %s failed: %s", t->endpoint, reason);
    t->in_cb++;
    t->super.cbs->on_send_failed(t->super.owner, p->tag, status, reason);
    t->in_cb--;
}

/* The legacy session is over: stop the GET and tell the owner once. */
static void
die(sse_transport_t *t, const char *reason)
{
    if (t->closing || t->dead)
        return;
    t->dead = 1;
    if (t->get != NULL && !t->get_starting) {
        mcplex_http_client_cancel(t->get);
        t->get = NULL;
    }
    evtimer_del(t->endpoint_ev);
    evtimer_del(t->pump_ev);
    mcplex_log_info(t->component, "SSE stream %s closed: %s", t->sse_path, reason);
    t->in_cb++;
    t->super.cbs->on_closed(t->super.owner, reason);
    t->in_cb--;
}

/* ---- POSTs --------------------------------------------------------------------------------------- */

static void
post_free(sse_post_t *p)
{
    free(p->json);
    free(p);
}

static void
post_unlink_free(sse_post_t *p)
{
    sse_transport_t *t = p->t;

    if (t->blocking == p)
        t->blocking = NULL;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        t->posts = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    post_free(p);
}

/* The POST the queue waits for has its answer (or failed): the next one may go. */
static void
post_release(sse_post_t *p)
{
    sse_transport_t *t = p->t;

    if (t->blocking != p)
        return;
    t->blocking = NULL;
    if (t->queue_head != NULL && !t->closing && !t->dead)
        schedule(t->pump_ev, 0);
}

static void
post_end(sse_post_t *p)
{
    p->ended = 1;
    p->req = NULL;
    post_release(p);
    if (!p->starting)
        post_unlink_free(p);
}

static void
on_post_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    sse_post_t *p = arg;

    p->status = status;
    if (status >= 200 && status < 300)
        post_release(p);
}

static void
on_post_body(void *arg, const char *data, size_t len)
{
    sse_post_t *p = arg;

    if (p->status >= 300)
        keep_error_body(p->err, &p->err_len, data, len);
}

static void
on_post_complete(void *arg)
{
    sse_post_t *p = arg;
    sse_transport_t *t = p->t;
    char reason[ERROR_BODY_KEEP + 64];

    t->in_cb++;
    if (p->status >= 200 && p->status < 300) {
        if (p->status != 202)
            mcplex_log_debug(t->component, "POST %s answered %d (202 expected)", t->endpoint, p->status);
    } else {
        status_reason(reason, sizeof(reason), p->status, p->err, p->err_len);
        send_failed(p, p->status, reason);
    }
    t->in_cb--;
    post_end(p);
}

static void
on_post_error(void *arg, const char *reason)
{
    sse_post_t *p = arg;
    sse_transport_t *t = p->t;

    t->in_cb++;
    send_failed(p, 0, reason != NULL ? reason : "upstream error");
    t->in_cb--;
    post_end(p);
}

static const mcplex_http_client_cbs_t post_cbs = {on_post_headers, on_post_body, on_post_complete,
                                                  on_post_error};

/* POSTs the head of the queue; returns 0, or -1 when it could not even be queued by the pool. */
static int
post_start(sse_transport_t *t)
{
    sse_post_t *p = t->queue_head;
    mcplex_http_header_t *h;
    size_t n;

    t->queue_head = p->next;
    if (t->queue_head == NULL)
        t->queue_tail = NULL;
    p->prev = NULL;
    p->next = t->posts;
    if (t->posts != NULL)
        t->posts->prev = p;
    t->posts = p;
    t->blocking = p;
    h = build_headers(t, 1, &n);
    p->starting = 1;
    p->req = mcplex_http_client_request(t->pool, "POST", t->endpoint, t->authority, h, n, p->json,
                                        p->json_len, t->post_timeout_ms, &post_cbs, p);
    p->starting = 0;
    free(h);
    free(p->json);
    p->json = NULL;
    if (p->ended) {
        post_unlink_free(p);
        return 0;
    }
    if (p->req == NULL) {
        t->in_cb++;
        send_failed(p, 0, "cannot send the POST (bad header or pool gone)");
        t->in_cb--;
        post_unlink_free(p);
        return -1;
    }
    return 0;
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
    sse_transport_t *t = arg;

    t->in_cb++; /* an owner close() from a failure callback must not free |t| under us */
    while (!t->closing && !t->dead && t->endpoint != NULL && t->blocking == NULL && t->queue_head != NULL)
        post_start(t);
    t->in_cb--;
}

/* ---- the SSE stream (GET) ------------------------------------------------------------------------ */

/* Delivers one JSON text (a message, or each element of a batch array). */
static void
deliver_json(sse_transport_t *t, const char *data, size_t len)
{
    size_t i = 0, pos = 0, off, n;
    char *copy;
    int r = 0;

    while (i < len && strchr(" \t\r\n", data[i]) != NULL)
        i++;
    if (i == len)
        return;
    if (data[i] != '[') {
        deliver(t, data, len);
        return;
    }
    copy = mcplex_strndup(data, len);
    while (!t->closing && !t->dead && (r = mcplex_json_array_next(copy, len, &pos, &off, &n)) == 1) {
        char saved = copy[off + n];
        copy[off + n] = '\0';
        deliver(t, copy + off, n);
        copy[off + n] = saved;
    }
    if (r == -1)
        mcplex_log_warn(t->component, "malformed JSON-RPC batch in an SSE event skipped");
    free(copy);
}

static void
on_endpoint(sse_transport_t *t, const char *data)
{
    char err[256], reason[320];
    char *path = mcplex_sse_resolve_endpoint(t->sse_path, t->tls, t->authority, data, err, sizeof(err));

    if (path == NULL) {
        snprintf(reason, sizeof(reason), "unusable endpoint event: %s", err);
        die(t, reason);
        return;
    }
    if (t->endpoint != NULL && strcmp(t->endpoint, path) != 0)
        mcplex_log_info(t->component, "message endpoint changed from %s to %s", t->endpoint, path);
    else
        mcplex_log_debug(t->component, "message endpoint %s", path);
    free(t->endpoint);
    t->endpoint = path;
    evtimer_del(t->endpoint_ev);
    if (t->queue_head != NULL && t->blocking == NULL)
        schedule(t->pump_ev, 0);
}

static void
on_sse_event(void *arg, const mcplex_sse_event_t *ev)
{
    sse_transport_t *t = arg;

    if (t->closing || t->dead)
        return;
    if (strcmp(ev->event, "endpoint") == 0) {
        on_endpoint(t, ev->data);
    } else if (strcmp(ev->event, "message") == 0) {
        if (ev->data_len > 0)
            deliver_json(t, ev->data, ev->data_len);
    } else {
        mcplex_log_debug(t->component, "SSE event '%s' ignored", ev->event);
    }
}

static void
on_get_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    sse_transport_t *t = arg;
    int sse = 0;

    t->get_status = status;
    for (size_t i = 0; i < n_hdrs; i++) {
        if (header_is(&hdrs[i], "content-type") &&
            media_type_is(hdrs[i].value, hdrs[i].value_len, "text/event-stream"))
            sse = 1;
    }
    if (status == 200 && sse)
        t->parser = mcplex_sse_parser_create(on_sse_event, t, EVENT_CAP);
    else if (status == 200)
        t->get_status = -1; /* not an event stream */
}

static void
on_get_body(void *arg, const char *data, size_t len)
{
    sse_transport_t *t = arg;
    int r;

    if (t->closing || t->dead)
        return;
    if (t->parser == NULL) {
        keep_error_body(t->get_err, &t->get_err_len, data, len);
        return;
    }
    t->in_cb++;
    r = mcplex_sse_parser_feed(t->parser, data, len);
    t->in_cb--;
    if (r != 0)
        die(t, "SSE event too large");
}

static void
on_get_complete(void *arg)
{
    sse_transport_t *t = arg;
    char reason[ERROR_BODY_KEEP + 64];

    t->get = NULL;
    if (t->get_status == -1)
        snprintf(reason, sizeof(reason), "GET %s did not answer with text/event-stream", t->sse_path);
    else if (t->get_status != 200)
        status_reason(reason, sizeof(reason), t->get_status, t->get_err, t->get_err_len);
    else
        snprintf(reason, sizeof(reason), "the target ended the SSE stream");
    die(t, reason);
}

static void
on_get_error(void *arg, const char *reason)
{
    sse_transport_t *t = arg;
    char text[256];

    t->get = NULL;
    snprintf(text, sizeof(text), "SSE stream failed: %s", reason != NULL ? reason : "upstream error");
    die(t, text);
}

static const mcplex_http_client_cbs_t get_cbs = {on_get_headers, on_get_body, on_get_complete, on_get_error};

static void
start_cb(evutil_socket_t fd, short what, void *arg)
{
    sse_transport_t *t = arg;
    mcplex_http_header_t *h;
    size_t n;
    mcplex_http_client_req_t *req;

    if (t->closing || t->dead)
        return;
    h = build_headers(t, 0, &n);
    t->in_cb++;
    t->get_starting = 1;
    req = mcplex_http_client_request(t->pool, "GET", t->sse_path, t->authority, h, n, NULL, 0, 0, &get_cbs,
                                     t);
    t->get_starting = 0;
    free(h);
    if (!t->dead && !t->closing) {
        if (req == NULL)
            die(t, "cannot send the SSE GET (bad header or pool gone)");
        else
            t->get = req;
    }
    t->in_cb--;
}

static void
endpoint_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    sse_transport_t *t = arg;
    char reason[128];

    if (t->endpoint != NULL)
        return;
    snprintf(reason, sizeof(reason), "no endpoint event within %u ms", (unsigned)t->post_timeout_ms);
    t->in_cb++;
    die(t, reason);
    t->in_cb--;
}

/* ---- teardown ------------------------------------------------------------------------------------ */

static void
finish(sse_transport_t *t)
{
    if (t->get != NULL)
        mcplex_http_client_cancel(t->get);
    while (t->posts != NULL) {
        sse_post_t *p = t->posts;
        if (p->req != NULL)
            mcplex_http_client_cancel(p->req);
        post_unlink_free(p);
    }
    while (t->queue_head != NULL) {
        sse_post_t *p = t->queue_head;
        t->queue_head = p->next;
        post_free(p);
    }
    if (t->parser != NULL)
        mcplex_sse_parser_destroy(t->parser);
    event_free(t->start_ev);
    event_free(t->pump_ev);
    event_free(t->endpoint_ev);
    for (size_t i = 0; i < t->n_extra; i++) {
        free((char *)t->extra[i].name);
        free((char *)t->extra[i].value);
    }
    free(t->extra);
    free(t->protocol_version);
    free(t->endpoint);
    free(t->sse_path);
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
sse_send(mcplex_transport_t *base, const char *json, size_t len, uint64_t tag)
{
    sse_transport_t *t = (sse_transport_t *)base;
    sse_post_t *p;

    if (t->closing || t->dead)
        return -1;
    p = mcplex_calloc(1, sizeof(*p));
    p->t = t;
    p->tag = tag;
    p->json = mcplex_strndup(json, len);
    p->json_len = len;
    if (t->queue_tail != NULL)
        t->queue_tail->next = p;
    else
        t->queue_head = p;
    t->queue_tail = p;
    if (t->endpoint != NULL && t->blocking == NULL)
        schedule(t->pump_ev, 0);
    return 0;
}

static void
sse_set_protocol_version(mcplex_transport_t *base, const char *version)
{
    sse_transport_t *t = (sse_transport_t *)base;

    free(t->protocol_version);
    t->protocol_version = mcplex_strdup(version);
}

static void
sse_close(mcplex_transport_t *base)
{
    sse_transport_t *t = (sse_transport_t *)base;
    static const struct timeval zero = {0, 0};

    if (t->closing)
        return;
    t->closing = 1;
    evtimer_del(t->start_ev);
    evtimer_del(t->pump_ev);
    evtimer_del(t->endpoint_ev);
    if (t->in_cb > 0 && event_base_once(t->base, -1, EV_TIMEOUT, on_deferred_finish, t, &zero) == 0)
        return;
    finish(t);
}

static const mcplex_transport_ops_t sse_ops = {
    .send = sse_send,
    .set_protocol_version = sse_set_protocol_version,
    .close = sse_close,
};

/* ---- endpoint URL resolution (RFC 3986 section 5.2) ---------------------------------------------- */

/* RFC 3986 5.2.4 remove_dot_segments over a path (no query); returns a malloc'ed path. */
static char *
remove_dot_segments(const char *in, size_t len)
{
    char *out = mcplex_malloc(len + 2);
    size_t o = 0, i = 0;

    while (i < len) {
        const char *s = in + i;
        size_t rest = len - i;
        if (rest >= 3 && strncmp(s, "../", 3) == 0) {
            i += 3;
        } else if (rest >= 2 && strncmp(s, "./", 2) == 0) {
            i += 2;
        } else if (rest >= 3 && strncmp(s, "/./", 3) == 0) {
            i += 2; /* "/./" -> "/" */
        } else if (rest == 2 && strncmp(s, "/.", 2) == 0) {
            out[o++] = '/';
            i += 2;
        } else if ((rest >= 4 && strncmp(s, "/../", 4) == 0) || (rest == 3 && strncmp(s, "/..", 3) == 0)) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the removed segment */
            if (rest == 3) {
                out[o++] = '/';
                i += 3;
            } else {
                i += 3; /* leaves "/" at the head of the input */
            }
        } else if ((rest == 1 && s[0] == '.') || (rest == 2 && strncmp(s, "..", 2) == 0)) {
            i = len;
        } else {
            /* the first segment, with its leading '/' if any */
            size_t k = 1;
            while (k < rest && s[k] != '/')
                k++;
            memcpy(out + o, s, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}

/* Lower-cased host[:port] without the scheme's default port, into |out|. */
static void
normalize_authority(const char *a, size_t len, int tls, char *out, size_t out_len)
{
    const char *dflt = tls ? ":443" : ":80";
    size_t n = len < out_len - 1 ? len : out_len - 1;

    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)a[i]);
    out[n] = '\0';
    if (n > 0 && out[n - 1] == ':')
        out[--n] = '\0';
    if (n > strlen(dflt) && strcmp(out + n - strlen(dflt), dflt) == 0 && out[0] != '\0') {
        /* "[::1]:80" and "host:80" lose the port; a bare "[::1]" keeps its brackets */
        out[n - strlen(dflt)] = '\0';
    }
}

char *
mcplex_sse_resolve_endpoint(const char *sse_path, int tls, const char *authority, const char *ref, char *err,
                            size_t err_len)
{
    const char *base_path = sse_path != NULL && sse_path[0] != '\0' ? sse_path : "/";
    const char *base_q = strchr(base_path, '?');
    size_t base_len = base_q != NULL ? (size_t)(base_q - base_path) : strlen(base_path);
    const char *r, *end, *path, *query;
    size_t rlen, path_len;
    char *merged = NULL, *clean = NULL, *out = NULL;

    if (ref == NULL)
        ref = "";
    while (*ref == ' ' || *ref == '\t')
        ref++;
    rlen = strlen(ref);
    while (rlen > 0 && (ref[rlen - 1] == ' ' || ref[rlen - 1] == '\t'))
        rlen--;
    end = memchr(ref, '#', rlen); /* the fragment is never sent */
    if (end != NULL)
        rlen = (size_t)(end - ref);
    for (size_t i = 0; i < rlen; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c <= 0x20 || c >= 0x7f) {
            snprintf(err, err_len, "the URL contains a space or control character");
            goto fail;
        }
    }
    r = ref;
    end = ref + rlen;
    /* scheme ":" (RFC 3986 3.1): a letter, then letters, digits, "+", "-", "." */
    if (r < end && isalpha((unsigned char)*r)) {
        const char *s = r + 1;
        while (s < end && (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.'))
            s++;
        if (s < end && *s == ':') {
            const char *want = tls ? "https" : "http";
            if ((size_t)(s - r) != strlen(want) || strncasecmp(r, want, strlen(want)) != 0) {
                snprintf(err, err_len, "'%.*s' is not on the SSE stream's origin (scheme %s)", (int)rlen, ref,
                         want);
                goto fail;
            }
            r = s + 1;
            if (end - r < 2 || r[0] != '/' || r[1] != '/') {
                snprintf(err, err_len, "'%.*s' has no authority", (int)rlen, ref);
                goto fail;
            }
        }
    }
    if (end - r >= 2 && r[0] == '/' && r[1] == '/') {
        /* network-path reference: the authority must be the SSE URL's */
        const char *a = r + 2, *ae = a;
        char got[256], want[256];
        while (ae < end && *ae != '/' && *ae != '?')
            ae++;
        if (memchr(a, '@', (size_t)(ae - a)) != NULL || ae == a) {
            snprintf(err, err_len, "'%.*s' has an unusable authority", (int)rlen, ref);
            goto fail;
        }
        if (authority != NULL && authority[0] != '\0') {
            normalize_authority(a, (size_t)(ae - a), tls, got, sizeof(got));
            normalize_authority(authority, strlen(authority), tls, want, sizeof(want));
            if (strcmp(got, want) != 0) {
                snprintf(err, err_len, "'%.*s' is not on the SSE stream's origin (%s)", (int)rlen, ref, want);
                goto fail;
            }
        }
        r = ae;
        if (r == end || *r == '?') {
            /* empty path with an authority is "/" */
            merged = mcplex_sprintf("/%.*s", (int)(end - r), r);
            out = merged;
            merged = NULL;
            goto done;
        }
    }
    query = memchr(r, '?', (size_t)(end - r));
    path = r;
    path_len = query != NULL ? (size_t)(query - r) : (size_t)(end - r);
    if (path_len == 0) {
        /* same document: the base path, with the reference's query or else the base's */
        if (query != NULL)
            out = mcplex_sprintf("%.*s%.*s", (int)base_len, base_path, (int)(end - query), query);
        else
            out = mcplex_strdup(base_path);
        goto done;
    }
    if (path[0] == '/') {
        clean = remove_dot_segments(path, path_len);
    } else {
        /* merge (5.2.3): the base path up to its last '/', then the reference */
        size_t dir = base_len;
        while (dir > 0 && base_path[dir - 1] != '/')
            dir--;
        merged = mcplex_sprintf("%.*s%.*s", (int)dir, base_path, (int)path_len, path);
        if (merged[0] != '/') {
            char *abs = mcplex_sprintf("/%s", merged);
            free(merged);
            merged = abs;
        }
        clean = remove_dot_segments(merged, strlen(merged));
    }
    if (clean[0] != '/') {
        char *abs = mcplex_sprintf("/%s", clean);
        free(clean);
        clean = abs;
    }
    out = mcplex_sprintf("%s%.*s", clean, query != NULL ? (int)(end - query) : 0, query != NULL ? query : "");
done:
    free(merged);
    free(clean);
    return out;
fail:
    free(merged);
    free(clean);
    return NULL;
}

/* ---- API ------------------------------------------------------------------------------------- */

mcplex_transport_t *
mcplex_sse_transport_create(struct event_base *base, const char *target_name, struct mcplex_http_pool *pool,
                            const struct mcplex_http_target *cfg, uint32_t timeout_ms,
                            const mcplex_transport_cbs_t *cbs, void *owner)
{
    sse_transport_t *t = mcplex_calloc(1, sizeof(*t));

    t->super.ops = &sse_ops;
    t->super.cbs = cbs;
    t->super.owner = owner;
    t->super.target_name = mcplex_strdup(target_name != NULL ? target_name : "?");
    t->component = mcplex_sprintf("target:%s", t->super.target_name);
    t->base = base;
    t->pool = pool;
    t->sse_path = mcplex_strdup(cfg->path != NULL && cfg->path[0] != '\0' ? cfg->path : "/sse");
    t->authority = mcplex_strdup(cfg->authority);
    t->tls = cfg->tls;
    t->post_timeout_ms = timeout_ms != 0 ? timeout_ms : DEFAULT_POST_TIMEOUT_MS;
    if (cfg->n_headers > 0) {
        t->extra = mcplex_calloc(cfg->n_headers, sizeof(*t->extra));
        for (size_t i = 0; i < cfg->n_headers; i++) {
            if (cfg->headers[i].name == NULL || cfg->headers[i].name[0] == '\0')
                continue;
            set_header(&t->extra[t->n_extra++], mcplex_strdup(cfg->headers[i].name),
                       mcplex_strdup(cfg->headers[i].value != NULL ? cfg->headers[i].value : ""));
        }
    }
    t->start_ev = evtimer_new(base, start_cb, t);
    t->pump_ev = evtimer_new(base, pump_cb, t);
    t->endpoint_ev = evtimer_new(base, endpoint_deadline_cb, t);
    if (t->start_ev == NULL || t->pump_ev == NULL || t->endpoint_ev == NULL)
        mcplex_fatal(__FILE__, __LINE__, "evtimer_new failed");
    schedule(t->start_ev, 0);
    schedule(t->endpoint_ev, t->post_timeout_ms);
    return &t->super;
}

const char *
mcplex_sse_transport_endpoint(const mcplex_transport_t *t)
{
    if (t == NULL || t->ops != &sse_ops)
        return NULL;
    return ((const sse_transport_t *)t)->endpoint;
}
