/*
 * outbound.c - everything a session sends to its client outside plain JSON answers (MCP
 * streamable HTTP, 2025-03-26 .. 2025-11-25): the server stream (GET), POST answers upgraded to
 * SSE when related messages come first, event ids unique across the session's streams
 * ("<stream>_<seq>": stream 0 is the server stream, POST streams count from 1), a bounded replay
 * buffer for Last-Event-ID resumption, priming events with retry:, heartbeat comments on an idle
 * server stream, messages queued while no server stream is open, and coalesced list_changed
 * notifications. Also the legacy HTTP+SSE stream (2024-11-05), which is a session's server
 * stream with `event: endpoint` first. Thread: the session's worker.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "event/worker.h"
#include "http/sse.h"
#include "mcp/jsonrpc.h"
#include "mcp/session.h"

/* Reconnect delay suggested to clients in priming events (ms). */
#define OUTBOUND_RETRY_MS 1000
/* A client that does not read: once this many bytes wait unsent on one of its streams, the
 * stream is ended (the events stay in the replay buffer for Last-Event-ID). */
#define OUTBOUND_MAX_PENDING_BYTES (4 * 1024 * 1024)
/* Window in which list_changed of several targets collapse into one notification (ms). */
#define OUTBOUND_LIST_CHANGED_MS 50

static void server_stream_end(mcplex_session_t *s);

struct mcplex_replay_event {
    struct mcplex_replay_event *next;
    uint64_t stream_key;
    uint64_t seq;
    size_t len;
    char text[]; /* the whole SSE event, id line included */
};

struct mcplex_pending_msg {
    struct mcplex_pending_msg *next;
    size_t len;
    char json[];
};

/* ---- writing events ---------------------------------------------------------------------------- */

static void
replay_record(mcplex_session_t *s, uint64_t stream_key, uint64_t seq, const char *text, size_t len)
{
    struct mcplex_replay_event *ev = mcplex_malloc(sizeof(*ev) + len);

    ev->next = NULL;
    ev->stream_key = stream_key;
    ev->seq = seq;
    ev->len = len;
    memcpy(ev->text, text, len);
    if (s->replay_tail != NULL)
        s->replay_tail->next = ev;
    else
        s->replay_head = ev;
    s->replay_tail = ev;
    s->replay_bytes += len;
    while (s->replay_bytes > s->backend->replay_buffer_bytes && s->replay_head != NULL) {
        struct mcplex_replay_event *old = s->replay_head;
        s->replay_head = old->next;
        if (s->replay_head == NULL)
            s->replay_tail = NULL;
        s->replay_bytes -= old->len;
        free(old);
    }
}

/*
 * Writes one message event on |http| with the next id of stream |stream_key| and remembers it
 * for replay. |event_name| is "message" (the MCP default).
 */
static int
write_event(mcplex_session_t *s, mcplex_http_stream_t *http, uint64_t stream_key, const char *json, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    uint64_t seq = ++s->next_seq;
    char id[48];
    size_t n;
    char *text;
    int rc;

    snprintf(id, sizeof(id), "%" PRIu64 "_%" PRIu64, stream_key, seq);
    mcplex_sse_write_event(buf, id, "message", json, len);
    n = evbuffer_get_length(buf);
    text = (char *)evbuffer_pullup(buf, -1);
    replay_record(s, stream_key, seq, text, n);
    if (http != NULL && mcplex_http_stream_pending_bytes(http) > OUTBOUND_MAX_PENDING_BYTES) {
        /* Back-pressure: never buffer without bound for a client that does not read. */
        if (s->unread_stream_key != stream_key)
            mcplex_log_warn("mcp", "session %.12s...: client not reading stream %" PRIu64 "; ending it",
                            s->id != NULL ? s->id : "-", stream_key);
        s->unread_stream_key = stream_key;
        if (http == s->server_stream)
            server_stream_end(s);
        evbuffer_free(buf);
        return -1;
    }
    rc = http != NULL ? mcplex_http_stream_write(http, text, n) : 0;
    evbuffer_free(buf);
    return rc;
}

/* The priming event (id, empty data) and the reconnect delay, as MCP 2025-11-25 suggests. */
static void
write_priming(mcplex_session_t *s, mcplex_http_stream_t *http, uint64_t stream_key)
{
    char text[96];
    int n = snprintf(text, sizeof(text), "id: %" PRIu64 "_%" PRIu64 "\nretry: %d\ndata: \n\n", stream_key,
                     ++s->next_seq, OUTBOUND_RETRY_MS);

    mcplex_http_stream_write(http, text, (size_t)n);
}

static int
start_event_stream(mcplex_exchange_t *ex, const char *session_id)
{
    mcplex_http_header_t hdrs[10];
    size_t n = 0;

    hdrs[n++] = (mcplex_http_header_t){"content-type", 12, "text/event-stream", 17};
    hdrs[n++] = (mcplex_http_header_t){"cache-control", 13, "no-cache", 8};
    if (session_id != NULL)
        hdrs[n++] = (mcplex_http_header_t){"mcp-session-id", 14, session_id, strlen(session_id)};
    for (size_t i = 0; i < ex->n_headers && n < MCPLEX_ARRAY_SIZE(hdrs); i++)
        hdrs[n++] = ex->headers[i];
    return mcplex_http_stream_start(ex->stream, 200, hdrs, n);
}

/*
 * An event of POST stream |key| whose connection is gone: kept for replay, and sent on the
 * server stream if the client resumed this stream there (MCP "Resumability and Redelivery").
 */
static void
broken_stream_event(mcplex_session_t *s, uint64_t key, const char *json, size_t len)
{
    mcplex_http_stream_t *to = s->resumed_key == key ? s->server_stream : NULL;

    write_event(s, to, key, json, len);
}

int
mcplex_exchange_send_event(mcplex_exchange_t *ex, const char *json, size_t len)
{
    mcplex_session_t *s = ex->session;

    if (ex->legacy) {
        mcplex_session_send(s, json, len);
        return 0;
    }
    if (s == NULL)
        return -1;
    if (ex->stream == NULL) {
        if (!ex->streaming)
            return -1; /* never was a stream: the caller uses the server stream */
        broken_stream_event(s, ex->stream_key, json, len);
        return 0;
    }
    if (!ex->streaming) {
        if (start_event_stream(ex, s->id) != 0)
            return -1;
        ex->streaming = 1;
        ex->stream_key = ++s->next_stream_key;
        write_priming(s, ex->stream, ex->stream_key);
    }
    return write_event(s, ex->stream, ex->stream_key, json, len);
}

/* Used by mcplex_exchange_reply_json for a streaming answer: the last event, then the end. */
void mcplex_exchange__finish_stream(mcplex_exchange_t *ex, const char *json, size_t len);

void
mcplex_exchange__finish_stream(mcplex_exchange_t *ex, const char *json, size_t len)
{
    if (ex->stream == NULL) {
        broken_stream_event(ex->session, ex->stream_key, json, len);
        return;
    }
    write_event(ex->session, ex->stream, ex->stream_key, json, len);
    mcplex_http_stream_set_close_cb(ex->stream, NULL, NULL);
    mcplex_http_stream_finish(ex->stream);
    ex->stream = NULL;
}

/* ---- the server stream ------------------------------------------------------------------------- */

static void
server_stream_closed(void *arg, mcplex_http_stream_t *stream)
{
    mcplex_session_t *s = arg;

    (void)stream;
    s->server_stream = NULL;
    if (s->heartbeat != NULL)
        event_del(s->heartbeat);
    if (s->legacy_sse)
        mcplex_session_close(s, "the client closed its /sse stream");
}

static void
server_stream_end(mcplex_session_t *s)
{
    if (s->server_stream == NULL)
        return;
    mcplex_http_stream_set_close_cb(s->server_stream, NULL, NULL);
    mcplex_http_stream_finish(s->server_stream);
    s->server_stream = NULL;
}

static void
heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_session_t *s = arg;

    (void)fd;
    (void)what;
    /* A comment line keeps proxies and clients from timing the idle stream out. */
    if (s->server_stream == NULL)
        return;
    if (mcplex_http_stream_pending_bytes(s->server_stream) > OUTBOUND_MAX_PENDING_BYTES)
        server_stream_end(s); /* the client does not read */
    else
        mcplex_http_stream_write(s->server_stream, ": keep-alive\n\n", 14);
}

static void
flush_pending(mcplex_session_t *s)
{
    while (s->pending_head != NULL && s->server_stream != NULL) {
        struct mcplex_pending_msg *m = s->pending_head;
        s->pending_head = m->next;
        if (s->pending_head == NULL)
            s->pending_tail = NULL;
        s->n_pending--;
        write_event(s, s->server_stream, 0, m->json, m->len);
        free(m);
    }
}

/* Parses "<stream>_<seq>"; returns 0 or -1. */
static int
parse_event_id(const char *id, uint64_t *stream_key, uint64_t *seq)
{
    char *end;

    *stream_key = strtoull(id, &end, 10);
    if (end == id || *end != '_')
        return -1;
    id = end + 1;
    *seq = strtoull(id, &end, 10);
    return end == id || *end != '\0' ? -1 : 0;
}

void
mcplex_session_open_server_stream(mcplex_session_t *s, mcplex_exchange_t *ex, const char *last_event_id)
{
    uint32_t ms = s->backend->heartbeat_ms;
    struct timeval every = {ms / 1000, (ms % 1000) * 1000};
    uint64_t key = 0, seq = 0;
    int resume;

    if (ex->stream == NULL) {
        mcplex_exchange_reply_status(ex, 200);
        return;
    }
    resume = last_event_id != NULL && parse_event_id(last_event_id, &key, &seq) == 0;
    if (last_event_id != NULL && !resume) {
        mcplex_exchange_reply_error(ex, 400, NULL, MCPLEX_JSONRPC_INVALID_REQUEST, "Bad Request: invalid Last-Event-ID",
                                    NULL, s->id);
        return;
    }
    server_stream_end(s); /* one server stream per session: the newest wins */
    if (start_event_stream(ex, s->id) != 0) {
        mcplex_exchange_reply_status(ex, 500);
        return;
    }
    s->server_stream = ex->stream;
    mcplex_http_stream_set_close_cb(ex->stream, server_stream_closed, s);
    ex->stream = NULL;
    mcplex_exchange_reply_status(ex, 200); /* frees the exchange; the stream is the session's now */
    if (s->legacy_sse) {
        char endpoint[512];
        int n = snprintf(endpoint, sizeof(endpoint), "event: endpoint\ndata: %s\n\n", s->legacy_endpoint);
        mcplex_http_stream_write(s->server_stream, endpoint, (size_t)n);
    } else {
        write_priming(s, s->server_stream, 0);
    }
    if (resume) {
        /* A POST stream resumed here also gets the rest of its events, its answer included. */
        if (key != 0)
            s->resumed_key = key;
        /* Replay what the client missed on the stream it names, and only that stream. */
        for (struct mcplex_replay_event *ev = s->replay_head; ev != NULL; ev = ev->next)
            if (ev->stream_key == key && ev->seq > seq)
                mcplex_http_stream_write(s->server_stream, ev->text, ev->len);
    }
    if (s->heartbeat == NULL)
        s->heartbeat = event_new(s->worker->base, -1, EV_PERSIST, heartbeat_cb, s);
    if (ms > 0)
        event_add(s->heartbeat, &every);
    flush_pending(s);
}

void
mcplex_session_send(mcplex_session_t *s, const char *json, size_t len)
{
    struct mcplex_pending_msg *m;

    if (s->closing)
        return;
    if (s->server_stream != NULL) {
        write_event(s, s->server_stream, 0, json, len);
        return;
    }
    if (s->n_pending >= MCPLEX_PENDING_MAX) {
        mcplex_log_warn("mcp", "session %.12s...: no server stream open and %d messages queued; dropping one",
                        s->id != NULL ? s->id : "-", MCPLEX_PENDING_MAX);
        return;
    }
    m = mcplex_malloc(sizeof(*m) + len + 1);
    m->next = NULL;
    m->len = len;
    memcpy(m->json, json, len);
    m->json[len] = '\0';
    if (s->pending_tail != NULL)
        s->pending_tail->next = m;
    else
        s->pending_head = m;
    s->pending_tail = m;
    s->n_pending++;
}

/* ---- list_changed ------------------------------------------------------------------------------ */

static void
list_changed_cb(evutil_socket_t fd, short what, void *arg)
{
    static const struct { unsigned bit; const char *json; } kinds[] = {
        {MCPLEX_LIST_CHANGED_TOOLS, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}"},
        {MCPLEX_LIST_CHANGED_PROMPTS, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/prompts/list_changed\"}"},
        {MCPLEX_LIST_CHANGED_RESOURCES,
         "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/list_changed\"}"},
    };
    mcplex_session_t *s = arg;
    unsigned bits = s->list_changed;

    (void)fd;
    (void)what;
    s->list_changed = 0;
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(kinds); i++)
        if (bits & kinds[i].bit)
            mcplex_session_send(s, kinds[i].json, strlen(kinds[i].json));
}

void
mcplex_session_list_changed(mcplex_session_t *s, unsigned bits)
{
    struct timeval later = {0, OUTBOUND_LIST_CHANGED_MS * 1000};

    if (s->closing || s->id == NULL || bits == 0)
        return;
    if (s->list_changed_timer == NULL)
        s->list_changed_timer = evtimer_new(s->worker->base, list_changed_cb, s);
    if (s->list_changed == 0)
        evtimer_add(s->list_changed_timer, &later);
    s->list_changed |= bits;
}

/* ---- teardown ---------------------------------------------------------------------------------- */

static void
free_server_request(void *arg, const char *key, void *value)
{
    mcplex_server_request_t *r = value;

    (void)arg;
    (void)key;
    free(r->upstream_id);
    free(r);
}

void
mcplex_session_outbound_dispose(mcplex_session_t *s)
{
    server_stream_end(s);
    if (s->heartbeat != NULL) {
        event_free(s->heartbeat);
        s->heartbeat = NULL;
    }
    if (s->list_changed_timer != NULL) {
        event_free(s->list_changed_timer);
        s->list_changed_timer = NULL;
    }
    while (s->replay_head != NULL) {
        struct mcplex_replay_event *ev = s->replay_head;
        s->replay_head = ev->next;
        free(ev);
    }
    s->replay_tail = NULL;
    s->replay_bytes = 0;
    while (s->pending_head != NULL) {
        struct mcplex_pending_msg *m = s->pending_head;
        s->pending_head = m->next;
        free(m);
    }
    s->pending_tail = NULL;
    s->n_pending = 0;
    mcplex_strmap_foreach(&s->server_requests, free_server_request, NULL);
    mcplex_strmap_dispose(&s->server_requests);
}
