/*
 * sse.h - Server-Sent Events (WHATWG HTML "server-sent events"): an incremental parser for
 * event streams read from upstream targets, and a writer for the events mcplex sends down.
 * Pure code, no I/O; any thread, one parser per stream.
 */
#ifndef MCPLEX_HTTP_SSE_H
#define MCPLEX_HTTP_SSE_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* One dispatched event. Strings are NUL-terminated and valid only during the callback. */
typedef struct mcplex_sse_event {
    const char *event; /* "message" when the stream gave no event field */
    const char *data;  /* data lines joined with '\n' (may be "" for a priming event) */
    size_t data_len;
    const char *id;    /* the last event id seen on the stream, or NULL */
    int64_t retry_ms;  /* -1 when this event carried no retry field */
} mcplex_sse_event_t;

typedef void (*mcplex_sse_event_fn)(void *arg, const mcplex_sse_event_t *ev);

typedef struct mcplex_sse_parser mcplex_sse_parser_t;

/*
 * Dispatch rule (WHATWG, stated as MCP needs it): a blank line ends a block, and the block is
 * dispatched when it had at least one "data" field, even an empty one ("data:" gives data "");
 * so MCP priming events (an id and an empty data field) reach |cb| with their id. A block without
 * any data field only updates the last event id / retry (see the getters below).
 * |cb| may call mcplex_sse_parser_destroy() on its own parser: the rest of the fed bytes are then
 * dropped and mcplex_sse_parser_feed() returns 0 without touching the parser again.
 *
 * Creates a parser calling |cb| for each complete event. |max_event_bytes| caps one event
 * (0 = 8 MiB). Free with mcplex_sse_parser_destroy().
 */
mcplex_sse_parser_t *mcplex_sse_parser_create(mcplex_sse_event_fn cb, void *arg, size_t max_event_bytes);
void mcplex_sse_parser_destroy(mcplex_sse_parser_t *p);
/*
 * Feeds |len| bytes (any split: mid-line, CRLF across chunks). Handles CR, LF and CRLF line
 * ends, a leading BOM, comments (":..."), "data", "event", "id" (ignored if it contains NUL),
 * "retry" (digits only). Returns 0, or -1 if an event exceeded the cap (the parser is then
 * unusable).
 */
int mcplex_sse_parser_feed(mcplex_sse_parser_t *p, const char *data, size_t len);

/*
 * The last event id the stream set (an "id" field without NUL, kept across events as WHATWG
 * requires), or NULL when none was set or it was set to "". Valid until the next feed. Blocks
 * with an id but no data field are not dispatched; this is how the caller still sees their id.
 */
const char *mcplex_sse_parser_last_event_id(const mcplex_sse_parser_t *p);
/* The last valid "retry" value seen on the stream in milliseconds (dispatched or not), or -1. */
int64_t mcplex_sse_parser_retry_ms(const mcplex_sse_parser_t *p);

/*
 * Appends one event to |out|: optional "id: <id>\n", optional "event: <event>\n", then the data
 * split on '\n' into "data: " lines, then a blank line. |id| and |event| may be NULL.
 * CR, LF and CRLF in |data| all split lines (a reader would); |id| and |event| are cut at their
 * first CR or LF so they cannot break the framing. Empty |data| gives one "data: " line, which a
 * reader dispatches with data "" (a priming event). Copies its inputs.
 */
void mcplex_sse_write_event(struct evbuffer *out, const char *id, const char *event, const char *data,
                            size_t data_len);

#endif
