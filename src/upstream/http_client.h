/*
 * http_client.h - HTTP/1.1 client requests to one upstream endpoint set (a cluster), over a
 * keep-alive connection pool. Used by the streamable-HTTP and SSE target transports.
 * Responses are streamed to the caller (SSE bodies can be long-lived). Host names are resolved
 * asynchronously with evdns (STRICT_DNS semantics: resolved at connect time).
 * Thread: the worker that created the pool; nothing here is thread-safe.
 */
#ifndef MCPLEX_UPSTREAM_HTTP_CLIENT_H
#define MCPLEX_UPSTREAM_HTTP_CLIENT_H

#include "http/http.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;

typedef struct mcplex_http_pool mcplex_http_pool_t;
typedef struct mcplex_http_client_req mcplex_http_client_req_t;

/* One endpoint of a pool: a host name or IP literal, a port, and an LB weight (>= 1). */
typedef struct mcplex_http_endpoint {
    const char *host;
    uint16_t port;
    uint32_t weight;
} mcplex_http_endpoint_t;

typedef struct mcplex_http_pool_config {
    const mcplex_http_endpoint_t *endpoints; /* copied */
    size_t n_endpoints;
    uint32_t connect_timeout_ms;  /* default 5000 */
    uint32_t max_idle_per_endpoint; /* idle keep-alive connections kept per endpoint; default 16 */
    uint32_t idle_timeout_ms;     /* an idle pooled connection is closed after this; default 60000 */
    /* HTTP/2 (issue 4): nonzero = HTTP/2 with prior knowledge (h2c; over TLS when |tls| is set, with
     * the context's ALPN list, which should offer "h2"), one connection per endpoint
     * multiplexing every request as a stream (h2_client.h); a connection that got GOAWAY or
     * failed is replaced on the next request. The request API below is the same. */
    int http2;
    /* TLS (issue 4): non-NULL = every HTTP/1.1 connection runs TLS with this client context
     * (src/net/tls.h; the pool takes a reference): its sni is sent and checked unless insecure.
     * Connect failures and handshake failures both end requests with on_error("connect failed: ..."). */
    struct mcplex_tls_ctx *tls;
} mcplex_http_pool_config_t;

/* Creates a pool. |dns| may be NULL when every host is an IP literal. Returns NULL on bad
 * config (no endpoints). Free with mcplex_http_pool_destroy(), which cancels every request
 * (no callbacks) and closes every connection. */
mcplex_http_pool_t *mcplex_http_pool_create(struct event_base *base, struct evdns_base *dns,
                                            const mcplex_http_pool_config_t *cfg);
void mcplex_http_pool_destroy(mcplex_http_pool_t *pool);

/*
 * Callbacks of one request. Exactly one of on_complete or on_error ends the request, after which
 * the request object is freed and must not be used. on_headers comes before any on_body.
 */
typedef struct mcplex_http_client_cbs {
    /* Response status and headers (names lower-cased). */
    void (*on_headers)(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs);
    /* A piece of the (de-chunked) body, as it arrives. */
    void (*on_body)(void *arg, const char *data, size_t len);
    /* The response ended normally. */
    void (*on_complete)(void *arg);
    /* Connect failure, timeout, reset, or malformed response. |reason| is a short text. */
    void (*on_error)(void *arg, const char *reason);
} mcplex_http_client_cbs_t;

/*
 * Sends |method| |path| with |hdrs| (Host is added from |authority| or the endpoint; Content-
 * Length is added when |body| is non-NULL) on an idle pooled connection, or a new one to an
 * endpoint picked by weighted round robin. |body| is copied. |timeout_ms| bounds the whole
 * exchange until on_complete (0 = none, for long-lived streams). Returns the request handle, or
 * NULL if it could not even be queued (then no callback fires).
 */
mcplex_http_client_req_t *mcplex_http_client_request(mcplex_http_pool_t *pool, const char *method, const char *path,
                                                     const char *authority, const mcplex_http_header_t *hdrs,
                                                     size_t n_hdrs, const void *body, size_t body_len,
                                                     uint32_t timeout_ms, const mcplex_http_client_cbs_t *cbs,
                                                     void *arg);

/* Cancels |req|: no further callbacks; its connection is closed (not reused). */
void mcplex_http_client_cancel(mcplex_http_client_req_t *req);

#endif
