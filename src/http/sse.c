/*
 * sse.c - Server-Sent Events parser and writer (see sse.h).
 *
 * The parser implements the "event stream interpretation" of the WHATWG HTML standard
 * (section 9.2.6) incrementally: bytes may arrive split anywhere, including between the CR and
 * LF of a CRLF and inside the leading BOM. Whole lines that lie inside one fed chunk are
 * interpreted in place; only a line cut by the end of a chunk is copied, into |line|. Comment
 * lines are skipped without being buffered.
 *
 * Dispatch rule: WHATWG dispatches when a blank line ends a block whose data buffer is not
 * empty, and every "data" field appends its value plus LF to that buffer. So a block with at
 * least one data field, even "data:" with an empty value, is dispatched (with data ""), and a
 * block without any data field is not. That is what MCP needs for "priming events" (an id and
 * an empty data field, sent so a client can resume with Last-Event-ID); we implement the rule
 * in that form (|has_data|). Blocks without data still update the last event id and the retry
 * time, which mcplex_sse_parser_last_event_id() and mcplex_sse_parser_retry_ms() report.
 *
 * Owns its buffers. Thread: the caller's, one parser per stream; no I/O.
 */
#include "http/sse.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/mem.h"

#define SSE_DEFAULT_MAX_EVENT_BYTES (8u * 1024 * 1024)

/* A growable byte string; |p| is NUL-terminated whenever it is handed out. */
typedef struct sse_buf {
    char *p;
    size_t len;
    size_t cap;
} sse_buf_t;

struct mcplex_sse_parser {
    mcplex_sse_event_fn cb;
    void *arg;
    size_t max_event_bytes;
    sse_buf_t line;  /* a line cut by the end of a fed chunk */
    sse_buf_t data;  /* data lines of the current block, each followed by LF */
    sse_buf_t event; /* event type of the current block */
    sse_buf_t id;    /* last event id (persists across events) */
    int64_t block_retry; /* retry of the current block, or -1 */
    int64_t last_retry;  /* last valid retry seen on the stream, or -1 */
    unsigned bom_seen;   /* how many BOM bytes have matched (3 = done with the BOM check) */
    bool has_data;       /* the current block had a data field */
    bool after_cr;       /* the previous byte was a CR ending a line: skip one LF */
    bool in_comment;     /* inside a comment line cut by the end of a chunk */
    bool failed;         /* an event exceeded the cap; the parser refuses more input */
    bool in_feed;        /* mcplex_sse_parser_feed() is on the stack */
    bool destroyed;      /* destroyed from the callback; freed when feed returns */
};

static void
sse_buf_reserve(sse_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap)
        return;
    size_t cap = b->cap != 0 ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->p = mcplex_realloc(b->p, cap);
    b->cap = cap;
}

static void
sse_buf_append(sse_buf_t *b, const char *s, size_t n)
{
    sse_buf_reserve(b, n);
    if (n != 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sse_buf_set(sse_buf_t *b, const char *s, size_t n)
{
    b->len = 0;
    sse_buf_append(b, s, n);
}

/* Bytes the current event holds; the cap applies to this plus the line being read. */
static size_t
sse_pending_bytes(const mcplex_sse_parser_t *p)
{
    return p->data.len + p->event.len + p->line.len;
}

mcplex_sse_parser_t *
mcplex_sse_parser_create(mcplex_sse_event_fn cb, void *arg, size_t max_event_bytes)
{
    mcplex_sse_parser_t *p = mcplex_calloc(1, sizeof(*p));

    p->cb = cb;
    p->arg = arg;
    p->max_event_bytes = max_event_bytes != 0 ? max_event_bytes : SSE_DEFAULT_MAX_EVENT_BYTES;
    p->block_retry = -1;
    p->last_retry = -1;
    return p;
}

static void
sse_parser_free(mcplex_sse_parser_t *p)
{
    free(p->line.p);
    free(p->data.p);
    free(p->event.p);
    free(p->id.p);
    free(p);
}

void
mcplex_sse_parser_destroy(mcplex_sse_parser_t *p)
{
    if (p == NULL)
        return;
    if (p->in_feed) {
        p->destroyed = true;
        return;
    }
    sse_parser_free(p);
}

const char *
mcplex_sse_parser_last_event_id(const mcplex_sse_parser_t *p)
{
    return p->id.len != 0 ? p->id.p : NULL;
}

int64_t
mcplex_sse_parser_retry_ms(const mcplex_sse_parser_t *p)
{
    return p->last_retry;
}

/* Returns the retry value of |v| (ASCII digits only, no overflow), or -1 to ignore the field. */
static int64_t
sse_parse_retry(const char *v, size_t n)
{
    int64_t ms = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (ms > (INT64_MAX - 9) / 10)
            return -1;
        ms = ms * 10 + (v[i] - '0');
    }
    return ms;
}

static void
sse_dispatch(mcplex_sse_parser_t *p)
{
    mcplex_sse_event_t ev;

    if (!p->has_data) {
        p->event.len = 0;
        p->block_retry = -1;
        return;
    }
    /* Every data line added a LF; the last one is not part of the data. */
    p->data.len--;
    p->data.p[p->data.len] = '\0';
    ev.event = p->event.len != 0 ? p->event.p : "message";
    ev.data = p->data.p;
    ev.data_len = p->data.len;
    ev.id = mcplex_sse_parser_last_event_id(p);
    ev.retry_ms = p->block_retry;
    p->cb(p->arg, &ev);
    p->data.len = 0;
    p->event.len = 0;
    p->has_data = false;
    p->block_retry = -1;
}

/* Interprets one complete line (without its end-of-line). Returns 0, or -1 over the cap. */
static int
sse_process_line(mcplex_sse_parser_t *p, const char *line, size_t len)
{
    const char *colon, *value;
    size_t name_len, value_len;

    if (len == 0) {
        sse_dispatch(p);
        return 0;
    }
    if (line[0] == ':')
        return 0;
    colon = memchr(line, ':', len);
    if (colon != NULL) {
        name_len = (size_t)(colon - line);
        value = colon + 1;
        value_len = len - name_len - 1;
        if (value_len != 0 && value[0] == ' ') {
            value++;
            value_len--;
        }
    } else {
        name_len = len;
        value = line + len;
        value_len = 0;
    }

    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (p->data.len + p->event.len + value_len + 1 > p->max_event_bytes)
            return -1;
        sse_buf_append(&p->data, value, value_len);
        sse_buf_append(&p->data, "\n", 1);
        p->has_data = true;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        if (p->data.len + value_len > p->max_event_bytes)
            return -1;
        sse_buf_set(&p->event, value, value_len);
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        if (memchr(value, '\0', value_len) == NULL) {
            if (value_len > p->max_event_bytes)
                return -1;
            sse_buf_set(&p->id, value, value_len);
        }
    } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
        int64_t ms = sse_parse_retry(value, value_len);
        if (ms >= 0) {
            p->block_retry = ms;
            p->last_retry = ms;
        }
    }
    /* Any other field name is ignored, as WHATWG requires. */
    return 0;
}

/*
 * Consumes the leading BOM if there is one. Returns how many bytes of |data| it ate; the bytes
 * of a partial match that turns out not to be a BOM are replayed through |replay|.
 */
static size_t
sse_skip_bom(mcplex_sse_parser_t *p, const char *data, size_t len, char *replay, size_t *replay_len)
{
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    size_t i = 0;

    *replay_len = 0;
    while (p->bom_seen < 3 && i < len) {
        if (data[i] != bom[p->bom_seen]) {
            /* Not a BOM after all: the bytes matched so far are ordinary input. */
            memcpy(replay, bom, p->bom_seen);
            *replay_len = p->bom_seen;
            p->bom_seen = 3;
            return i;
        }
        p->bom_seen++;
        i++;
    }
    return i;
}

/* The line machine over one chunk of input (BOM already handled). Returns 0 or -1. */
static int
sse_feed_lines(mcplex_sse_parser_t *p, const char *data, size_t len)
{
    const char *cur = data, *end = data + len;

    while (cur < end && !p->destroyed) {
        if (p->after_cr) {
            p->after_cr = false;
            if (*cur == '\n') {
                cur++;
                continue;
            }
        }
        /* Find the end of the current line. */
        const char *eol = cur;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;

        if (p->in_comment || (p->line.len == 0 && eol > cur && *cur == ':')) {
            /* A comment: nothing to keep, just find its end. */
            p->in_comment = eol == end;
        } else if (eol == end) {
            /* The line continues in a later chunk: keep it. */
            if (sse_pending_bytes(p) + (size_t)(eol - cur) > p->max_event_bytes)
                return -1;
            sse_buf_append(&p->line, cur, (size_t)(eol - cur));
        } else if (p->line.len != 0) {
            /* The end of a line started in an earlier chunk. */
            if (sse_pending_bytes(p) + (size_t)(eol - cur) > p->max_event_bytes)
                return -1;
            sse_buf_append(&p->line, cur, (size_t)(eol - cur));
            size_t line_len = p->line.len;
            p->line.len = 0; /* the bytes stay valid: only |line| appends move them */
            if (sse_process_line(p, p->line.p, line_len) < 0)
                return -1;
        } else if (sse_process_line(p, cur, (size_t)(eol - cur)) < 0) {
            return -1;
        }
        if (eol == end)
            break;
        p->after_cr = *eol == '\r';
        cur = eol + 1;
    }
    return 0;
}

int
mcplex_sse_parser_feed(mcplex_sse_parser_t *p, const char *data, size_t len)
{
    char replay[3];
    size_t replay_len = 0, skipped = 0;
    int rc = 0;

    if (p->failed)
        return -1;
    p->in_feed = true;
    if (p->bom_seen < 3)
        skipped = sse_skip_bom(p, data, len, replay, &replay_len);
    if (replay_len != 0)
        rc = sse_feed_lines(p, replay, replay_len);
    if (rc == 0)
        rc = sse_feed_lines(p, data + skipped, len - skipped);
    p->in_feed = false;
    if (p->destroyed) {
        sse_parser_free(p);
        return 0;
    }
    if (rc < 0)
        p->failed = true;
    return rc;
}

/* Length of |s| up to (not including) its first CR or LF: ids and event names stay one line. */
static size_t
sse_one_line_len(const char *s)
{
    return strcspn(s, "\r\n");
}

void
mcplex_sse_write_event(struct evbuffer *out, const char *id, const char *event, const char *data,
                       size_t data_len)
{
    const char *cur = data, *end = data + data_len;

    if (id != NULL) {
        evbuffer_add(out, "id: ", 4);
        evbuffer_add(out, id, sse_one_line_len(id));
        evbuffer_add(out, "\n", 1);
    }
    if (event != NULL) {
        evbuffer_add(out, "event: ", 7);
        evbuffer_add(out, event, sse_one_line_len(event));
        evbuffer_add(out, "\n", 1);
    }
    /* One "data:" line per line of |data|; CR, LF and CRLF all end a line, as for the reader. */
    for (;;) {
        const char *eol = cur;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        evbuffer_add(out, "data: ", 6);
        evbuffer_add(out, cur, (size_t)(eol - cur));
        evbuffer_add(out, "\n", 1);
        if (eol == end)
            break;
        cur = eol + 1;
        if (*eol == '\r' && cur < end && *cur == '\n')
            cur++;
    }
    evbuffer_add(out, "\n", 1);
}
