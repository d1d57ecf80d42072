/*
 * transport.h - target transports: how mcplex exchanges JSON-RPC messages with one upstream MCP
 * server (a "target"). Implementations: stdio (transport_stdio.c: a child process with
 * newline-delimited JSON-RPC) and streamable HTTP (transport_http.c: POST per message, JSON or
 * SSE replies, upstream Mcp-Session-Id) and legacy HTTP+SSE (transport_sse.c: one GET stream
 * whose "endpoint" event names the URL every message is POSTed to).
 *
 * A transport is owned by one upstream session of one downstream session. Messages go in as
 * complete JSON texts; every message the target sends (responses, notifications, server
 * requests) comes back through on_message, in arrival order. Correlation by id is the owner's
 * job (the multiplexer). Thread: the owning worker; nothing here is thread-safe.
 */
#ifndef MCPLEX_MCP_TRANSPORT_H
#define MCPLEX_MCP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct mcplex_stdio_target;
struct mcplex_http_pool;
struct mcplex_http_target;

typedef struct mcplex_transport mcplex_transport_t;

typedef struct mcplex_transport_cbs {
    /* One complete JSON-RPC message text from the target (not NUL-terminated beyond len, but
     * text[len] is '\0'). The buffer is only valid during the call. */
    void (*on_message)(void *owner, const char *json, size_t len);
    /*
     * The message sent with |tag| (non-zero) could not be delivered or got no usable answer:
     * HTTP status >= 300 (|http_status| set), connection failure or timeout (|http_status| 0).
     * For requests the owner answers the client with a JSON-RPC error. |reason| is short text.
     */
    void (*on_send_failed)(void *owner, uint64_t tag, int http_status, const char *reason);
    /* The transport is dead (child exited, stream broken); no callback follows. |reason| text.
     * The owner still calls close() to release it (may be done from inside this callback).
     * Streamable-HTTP transports never call it: each POST fails on its own (on_send_failed). */
    void (*on_closed)(void *owner, const char *reason);
} mcplex_transport_cbs_t;

typedef struct mcplex_transport_ops {
    /* Sends one JSON-RPC message (copied). |tag| identifies it in on_send_failed (0 = none).
     * Returns 0, or -1 if the transport is closed/dead. */
    int (*send)(mcplex_transport_t *t, const char *json, size_t len, uint64_t tag);
    /* The protocol version negotiated with this target (sent as MCP-Protocol-Version on HTTP). */
    void (*set_protocol_version)(mcplex_transport_t *t, const char *version);
    /* Ends the transport: stdio closes stdin, then SIGTERM after 2 s, SIGKILL after 2 s more,
     * and reaps; HTTP sends DELETE with the upstream session id (best effort). No callback fires
     * after close() is called; the memory is released by the transport itself when done. */
    void (*close)(mcplex_transport_t *t);
} mcplex_transport_ops_t;

/* Common head of every transport (first member of each implementation's struct). */
struct mcplex_transport {
    const mcplex_transport_ops_t *ops;
    const mcplex_transport_cbs_t *cbs;
    void *owner;
    char *target_name; /* for logs; owned by the transport */
};

static inline int
mcplex_transport_send(mcplex_transport_t *t, const char *json, size_t len, uint64_t tag)
{
    return t->ops->send(t, json, len, tag);
}

static inline void
mcplex_transport_set_protocol_version(mcplex_transport_t *t, const char *version)
{
    t->ops->set_protocol_version(t, version);
}

static inline void
mcplex_transport_close(mcplex_transport_t *t)
{
    t->ops->close(t);
}

/*
 * Spawns the child of |cfg| with posix_spawn (stdin/stdout pipes; stderr piped and logged line
 * by line as "target:<name>") and returns its transport. Returns NULL and writes a message in
 * |err| if the child could not be started (command not found, bad working_dir, ...).
 *
 * The child runs in its own process group, with an empty signal mask and default dispositions.
 * Environment: mcplex's environment with cfg->env added (same names replaced); with clear_env
 * only cfg->env, plus mcplex's PATH unless cfg->env sets PATH, so that commands such as "npx"
 * still resolve. A bare cmd is looked up in the child's PATH; a relative path with a '/' is
 * taken relative to working_dir. stdout lines that are not JSON objects/arrays are logged and
 * skipped; a batch (array) line is delivered element by element. Installs child supervision on
 * |base| (mcplex_children_init) if needed; fails if it runs on another event_base.
 */
mcplex_transport_t *mcplex_stdio_transport_create(struct event_base *base, const char *target_name,
                                                  const struct mcplex_stdio_target *cfg,
                                                  const mcplex_transport_cbs_t *cbs, void *owner, char *err,
                                                  size_t err_len);

/*
 * The process id of a stdio transport's child (also its process group id), for tests and admin
 * pages; -1 if |t| is not a stdio transport. The child may already have exited.
 */
pid_t mcplex_stdio_transport_pid(const mcplex_transport_t *t);

/*
 * A streamable-HTTP transport over |pool| (not owned; must outlive the transport) to |cfg|'s
 * path. Each send is a POST with Accept "application/json, text/event-stream"; 202 answers are
 * consumed silently; JSON and SSE bodies are split into messages for on_message. The first
 * Mcp-Session-Id seen is sent on later requests. |timeout_ms| bounds each POST (0 = none).
 * Never returns NULL.
 */
mcplex_transport_t *mcplex_http_transport_create(struct event_base *base, const char *target_name,
                                                 struct mcplex_http_pool *pool,
                                                 const struct mcplex_http_target *cfg, uint32_t timeout_ms,
                                                 const mcplex_transport_cbs_t *cbs, void *owner);

/*
 * The upstream Mcp-Session-Id an HTTP transport has learned (NULL if none yet, or if |t| is not
 * an HTTP transport). Valid until the next callback of |t| or close().
 */
const char *mcplex_http_transport_session_id(const mcplex_transport_t *t);
/*
 * Opens the target's server stream (MCP streamable HTTP: GET with Accept text/event-stream and
 * the upstream session id); its messages arrive through on_message like any other. A stream
 * that ends is reopened after 1 s with Last-Event-ID; a 405 means the target offers none and
 * nothing more is tried. Idempotent. Returns 0, or -1 if |t| is not an open HTTP transport or
 * the target offers no stream.
 */
int mcplex_http_transport_open_stream(mcplex_transport_t *t);
/*
 * Sets the upstream Mcp-Session-Id of an HTTP transport (copied; NULL forgets it), e.g. when a
 * session is rebuilt from a sealed client session id. No-op if |t| is not an HTTP transport.
 */
void mcplex_http_transport_set_session_id(mcplex_transport_t *t, const char *session_id);

/* ---- legacy HTTP+SSE targets (transport_sse.c) ---- */

/*
 * A legacy HTTP+SSE transport (MCP 2024-11-05 "HTTP with SSE") over |pool| (not owned; must
 * outlive the transport): GET |cfg|'s path (default "/sse") with Accept text/event-stream and no
 * timeout, started from a zero-timeout event (never inside this call). The first "endpoint"
 * event names the message URL (resolved with mcplex_sse_resolve_endpoint(); another origin ends
 * the transport); sends wait in order until then, then each is one POST of the message
 * (Content-Type application/json, MCP-Protocol-Version once set, cfg->headers), one at a time
 * until the previous POST has its response headers. A 2xx answer (202 expected) is success; any
 * other status, a connection error or |timeout_ms| (per POST; 0 = 10 s, which also bounds the wait
 * for the endpoint event) is on_send_failed for that tag. Every "message" (or unnamed) event is
 * on_message (a batch array element by element). The GET failing, ending, or answering anything
 * but 200 text/event-stream is on_closed. close() cancels the GET and every POST (closing the
 * stream ends the legacy session; there is no DELETE). Thread: the pool's worker. Never NULL.
 */
mcplex_transport_t *mcplex_sse_transport_create(struct event_base *base, const char *target_name,
                                                struct mcplex_http_pool *pool,
                                                const struct mcplex_http_target *cfg, uint32_t timeout_ms,
                                                const mcplex_transport_cbs_t *cbs, void *owner);

/*
 * The message endpoint (path and query) an SSE transport has learned from its "endpoint" event,
 * or NULL (none yet, or |t| is not an SSE transport). Valid until the next callback or close().
 */
const char *mcplex_sse_transport_endpoint(const mcplex_transport_t *t);

/*
 * Resolves the data of an "endpoint" event (|ref|: an absolute URL, "//authority/path", an
 * absolute or relative path, or a query) against the SSE URL, per RFC 3986 section 5.2 (merge,
 * remove_dot_segments; the fragment is dropped). The SSE URL is scheme http (|tls| 0) or https,
 * |authority| (the Host sent; NULL = unknown: any authority is taken, since requests always go to
 * the same cluster anyway), and |sse_path| (path and optional query). A reference on another
 * origin (scheme, or host:port after lower-casing and dropping the default port; same rule as
 * the SDK's SSEClientTransport), with userinfo, spaces or control characters is refused.
 * Returns the request target to POST to ("/path?query", malloc'ed, caller frees), or NULL with a
 * message in |err|. Pure code, any thread.
 */
char *mcplex_sse_resolve_endpoint(const char *sse_path, int tls, const char *authority, const char *ref,
                                  char *err, size_t err_len);

/*
 * Walks the elements of a top-level JSON array (a JSON-RPC batch) without parsing them, so ids
 * keep their exact text. |text| is the whole array (leading/trailing whitespace allowed); start
 * with *|pos| = 0. Each call returns 1 and sets *|off| and *|elem_len| to the next element (trimmed),
 * 0 after the last one, or -1 if the text is not a well-formed array at the top level (string
 * and bracket structure only; the elements themselves are not validated). Pure code.
 */
int mcplex_json_array_next(const char *text, size_t len, size_t *pos, size_t *off, size_t *elem_len);

#endif
