/*
 * http_client.c - HTTP/1.1 client requests over a keep-alive connection pool (see http_client.h).
 *
 * Owns: the pool, its endpoints (weighted round robin state, idle lists), every upstream
 * connection (one bufferevent and one http_parser each) and every request object.
 * Thread: the worker whose event_base the pool was created on; nothing here is locked.
 * Relies on: libevent 2.1 (socket bufferevents with deferred callbacks, evdns for host names)
 * and http-parser 2.9 in HTTP_RESPONSE mode (de-chunking, message framing, keep-alive rules).
 *
 * Pool model (as Envoy's HTTP/1 pool): each request picks an endpoint by smooth weighted round
 * robin, then takes that endpoint's most recently used idle connection (LIFO) or opens a new
 * one. One request at a time per connection (no pipelining). There is no cap on the number of
 * connections per endpoint yet: a request never waits for a busy connection, it opens a new
 * one. After a response the connection goes back to the idle list when the response was framed
 * (Content-Length or chunked), keep-alive holds (no "Connection: close", not HTTP/1.0 without
 * keep-alive) and no stray bytes followed it; the list keeps at most max_idle_per_endpoint
 * connections (the oldest is closed) and closes each after idle_timeout_ms.
 *
 * Keep-alive race: a server may close an idle connection just as we reuse it. A request that
 * fails on a reused connection before any response byte arrived is sent again, once, on a new
 * connection to the same endpoint. This applies to every method: the server cannot have
 * answered, and closing a connection with a request unread is what a keep-alive timeout does.
 *
 * Re-entrancy: user callbacks may cancel requests, start new ones or destroy the pool. Every
 * entry point (public function or libevent callback) brackets its work with pool_enter() and
 * pool_leave(). Requests and connections that end are only marked dead and moved to the pool's
 * graveyard lists; the outermost pool_leave() frees them, and the pool itself once destroyed.
 * Code below a user callback therefore reads valid memory and only checks the dead flags after
 * each callback. Bufferevents are freed at once (libevent keeps a bufferevent alive while one
 * of its callbacks runs), timers at reap time.
 */
#include "upstream/http_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <http_parser.h>

#include "common/log.h"
#include "common/mem.h"
#include "upstream/h2_client.h" /* HTTP/2 (issue 4) */
#include "net/conn_io.h"         /* TLS (issue 4) */
#include "net/tls.h"             /* TLS (issue 4) */

#define LOG_COMP "upstream"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_IDLE 16
#define DEFAULT_IDLE_TIMEOUT_MS 60000
/* Response headers kept per message; http-parser already caps their size at 80 KiB. */
#define MAX_RESPONSE_HEADERS 256
#define READ_CHUNK 16384

/* ---- types ----------------------------------------------------------------------------------- */

typedef struct hc_conn hc_conn_t;
TAILQ_HEAD(hc_conn_list, hc_conn);
TAILQ_HEAD(hc_req_list, mcplex_http_client_req);

typedef struct hc_endpoint {
    char *host;        /* as configured, without IPv6 brackets */
    char *host_header; /* Host header value when the request has no authority */
    uint16_t port;
    int64_t weight;
    int64_t current; /* smooth weighted round robin state (nginx) */
    bool is_literal; /* |addr| holds the parsed IP literal */
    struct sockaddr_storage addr;
    int addr_len;
    struct hc_conn_list idle; /* most recently used first */
    uint32_t n_idle;
    mcplex_h2_client_t *h2;   /* HTTP/2 (issue 4): the endpoint's connection, or NULL */
} hc_endpoint_t;

struct hc_conn {
    mcplex_http_pool_t *pool;
    hc_endpoint_t *ep;
    struct bufferevent *bev;          /* NULL once closed */
    struct event *timer;              /* connect timeout while connecting, idle timeout while idle */
    mcplex_http_client_req_t *req;    /* the request in flight, or NULL */
    http_parser parser;               /* reset for each request */
    uint64_t id;                      /* for logs */
    bool connected;
    bool idle;
    bool dead;
    bool reused;                      /* the current request came from the idle list */
    bool keep_alive;                  /* http_should_keep_alive() at message end */
    char fail_reason[128];            /* set when the connect failed synchronously */
    TAILQ_ENTRY(hc_conn) link;        /* pool->conns, or pool->dead_conns */
    TAILQ_ENTRY(hc_conn) idle_link;   /* ep->idle */
};

/* One response header as offsets into the request's header buffer (which may move). */
typedef struct hc_hdr_span {
    size_t name_off, name_len;
    size_t value_off, value_len;
} hc_hdr_span_t;

enum hc_hdr_state {
    HC_HDR_NONE = 0,
    HC_HDR_FIELD,
    HC_HDR_VALUE,
};

struct mcplex_http_client_req {
    mcplex_http_pool_t *pool;
    hc_conn_t *conn;    /* NULL before dispatch and once ended */
    hc_endpoint_t *ep;  /* picked once; a retry goes to the same endpoint */
    char *method;
    char *path;
    char *authority;    /* NULL: the endpoint's host[:port] */
    char *tail;         /* serialized header lines after Host, ending with the blank line */
    size_t tail_len;
    char *body;
    size_t body_len;
    bool is_head;
    struct event *timer; /* whole-exchange timeout, NULL when none */
    mcplex_http_client_cbs_t cbs;
    void *arg;
    /* response state, reset for each attempt */
    bool got_bytes;     /* a response byte arrived on the current connection */
    bool headers_done;  /* on_headers was delivered */
    bool retried;
    bool dead;
    char *hbuf;
    size_t hbuf_len, hbuf_cap;
    hc_hdr_span_t *spans;
    size_t n_spans, spans_cap;
    enum hc_hdr_state hstate;
    const char *parse_error; /* set by a parser callback that refuses the response */
    mcplex_h2_client_stream_t *h2s; /* HTTP/2 (issue 4): the request's stream, or NULL */
    TAILQ_ENTRY(mcplex_http_client_req) link; /* pool->reqs, or pool->dead_reqs */
};

struct mcplex_http_pool {
    struct event_base *base;
    struct evdns_base *dns;
    hc_endpoint_t *eps;
    size_t n_eps;
    uint32_t connect_timeout_ms;
    uint32_t max_idle;
    uint32_t idle_timeout_ms;
    struct hc_conn_list conns;      /* live connections */
    struct hc_conn_list dead_conns; /* freed by the outermost pool_leave() */
    struct hc_req_list reqs;
    struct hc_req_list dead_reqs;
    int depth;                      /* nesting of entry points on the stack */
    bool destroyed;
    /* HTTP/2 (issue 4): cfg->http2, and replaced connections not yet closed */
    bool http2;
    struct mcplex_tls_ctx *tls;     /* TLS (issue 4): a reference, or NULL for plain TCP */
    mcplex_h2_client_t **h2_retired;
    size_t n_h2_retired;
    uint64_t next_conn_id;
};

/* ---- prototypes ------------------------------------------------------------------------------ */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void req_timer_cb(evutil_socket_t fd, short what, void *arg);
static int on_message_begin(http_parser *p);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- private: helpers ------------------------------------------------------------------------ */

static void
buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < *len + n + 1)
            ncap *= 2;
        *buf = mcplex_realloc(*buf, ncap);
        *cap = ncap;
    }
    if (n > 0)
        memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* True when |s| (|n| bytes) may go into a request line or header: no CR, LF or NUL. */
static bool
field_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    }
    return true;
}

static bool
name_is(const mcplex_http_header_t *h, const char *lname)
{
    size_t n = strlen(lname);
    return h->name_len == n && strncasecmp(h->name, lname, n) == 0;
}

/* ---- private: pool lifetime and deferred frees ----------------------------------------------- */

static void
pool_enter(mcplex_http_pool_t *pool)
{
    pool->depth++;
}

static void
req_free(mcplex_http_client_req_t *req)
{
    if (req->timer != NULL)
        event_free(req->timer);
    free(req->method);
    free(req->path);
    free(req->authority);
    free(req->tail);
    free(req->body);
    free(req->hbuf);
    free(req->spans);
    free(req);
}

static void
conn_free(hc_conn_t *conn)
{
    if (conn->timer != NULL)
        event_free(conn->timer);
    free(conn);
}

/* Leaves an entry point; the outermost one frees what died meanwhile, and the pool if it was
 * destroyed. The caller must not touch |pool| afterwards unless it knows the pool is alive. */
static void
pool_leave(mcplex_http_pool_t *pool)
{
    hc_conn_t *conn;
    mcplex_http_client_req_t *req;

    MCPLEX_BUG_ON(pool->depth <= 0);
    if (--pool->depth > 0)
        return;
    while ((req = TAILQ_FIRST(&pool->dead_reqs)) != NULL) {
        TAILQ_REMOVE(&pool->dead_reqs, req, link);
        req_free(req);
    }
    while ((conn = TAILQ_FIRST(&pool->dead_conns)) != NULL) {
        TAILQ_REMOVE(&pool->dead_conns, conn, link);
        conn_free(conn);
    }
    if (!pool->destroyed)
        return;
    MCPLEX_BUG_ON(!TAILQ_EMPTY(&pool->conns) || !TAILQ_EMPTY(&pool->reqs));
    free(pool->h2_retired); /* HTTP/2 (issue 4): its connections were closed by destroy */
    mcplex_tls_ctx_unref(pool->tls); /* TLS (issue 4) */
    for (size_t i = 0; i < pool->n_eps; i++) {
        free(pool->eps[i].host);
        free(pool->eps[i].host_header);
    }
    free(pool->eps);
    free(pool);
}

/* Smooth weighted round robin (nginx ngx_http_upstream_get_peer): exact proportions, spread out. */
static hc_endpoint_t *
endpoint_pick(mcplex_http_pool_t *pool)
{
    hc_endpoint_t *best = NULL;
    int64_t total = 0;

    for (size_t i = 0; i < pool->n_eps; i++) {
        hc_endpoint_t *ep = &pool->eps[i];
        ep->current += ep->weight;
        total += ep->weight;
        if (best == NULL || ep->current > best->current)
            best = ep;
    }
    best->current -= total;
    return best;
}

/* ---- private: connections -------------------------------------------------------------------- */

/*
 * The I/O layer: creates the bufferevent of |conn| and starts connecting. Everything that
 * depends on the transport (plain TCP today; TLS and HTTP/2 later) starts here. Callbacks are
 * deferred so none runs inside the caller, even when the connect fails at once. Returns 0, or
 * -1 with conn->fail_reason set when no connect could be started.
 */
static int
conn_start_io(hc_conn_t *conn)
{
    mcplex_http_pool_t *pool = conn->pool;
    hc_endpoint_t *ep = conn->ep;
    int rc;

    conn->bev = bufferevent_socket_new(pool->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (conn->bev == NULL) {
        snprintf(conn->fail_reason, sizeof(conn->fail_reason), "connect failed: no bufferevent");
        goto fail;
    }
    bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    if (ep->is_literal)
        rc = bufferevent_socket_connect(conn->bev, (struct sockaddr *)&ep->addr, ep->addr_len);
    else
        rc = bufferevent_socket_connect_hostname(conn->bev, pool->dns, AF_UNSPEC, ep->host, ep->port);
    if (rc != 0) {
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(conn->fail_reason, sizeof(conn->fail_reason), "connect failed: %s",
                 evutil_socket_error_to_string(err));
        goto fail;
    }
    /* --- TLS (issue 4): the socket goes to the TLS layer; the codec gets the plaintext end --- */
    if (pool->tls != NULL) {
        struct bufferevent *plain = mcplex_tls_client_wrap(pool->base, conn->bev, 0, pool->tls, NULL,
                                                           pool->connect_timeout_ms);
        conn->bev = plain; /* the socket bufferevent now belongs to the TLS layer (freed by it on failure) */
        if (plain == NULL) {
            snprintf(conn->fail_reason, sizeof(conn->fail_reason), "connect failed: TLS setup");
            goto fail;
        }
        bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
        bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    }
    /* --- end TLS --- */
    return 0;

fail:
    if (conn->bev != NULL) {
        mcplex_conn_io_free(conn->bev);
        conn->bev = NULL;
    }
    return -1;
}

static void
timer_start(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* Opens a new connection to |ep|. A connect that cannot even start fails from the event loop. */
static hc_conn_t *
conn_new(mcplex_http_pool_t *pool, hc_endpoint_t *ep)
{
    hc_conn_t *conn = mcplex_calloc(1, sizeof(*conn));

    conn->pool = pool;
    conn->ep = ep;
    conn->id = ++pool->next_conn_id;
    conn->timer = evtimer_new(pool->base, conn_timer_cb, conn);
    MCPLEX_BUG_ON(conn->timer == NULL);
    TAILQ_INSERT_TAIL(&pool->conns, conn, link);
    mcplex_log_debug(LOG_COMP, "conn %llu: connecting to %s:%u", (unsigned long long)conn->id, ep->host,
                     (unsigned)ep->port);
    if (conn_start_io(conn) != 0)
        event_active(conn->timer, EV_TIMEOUT, 1);
    else
        timer_start(conn->timer, pool->connect_timeout_ms);
    return conn;
}

/* Closes |conn| at once (unsent bytes are dropped) and detaches its request, if any. */
static void
conn_close(hc_conn_t *conn)
{
    mcplex_http_pool_t *pool = conn->pool;

    if (conn->dead)
        return;
    conn->dead = true;
    if (conn->idle) {
        TAILQ_REMOVE(&conn->ep->idle, conn, idle_link);
        conn->ep->n_idle--;
        conn->idle = false;
    }
    if (conn->req != NULL) {
        conn->req->conn = NULL;
        conn->req = NULL;
    }
    if (conn->bev != NULL) {
        mcplex_conn_io_free(conn->bev); /* TLS (issue 4): also ends the TLS layer below */
        conn->bev = NULL;
    }
    evtimer_del(conn->timer);
    TAILQ_REMOVE(&pool->conns, conn, link);
    TAILQ_INSERT_TAIL(&pool->dead_conns, conn, link);
    mcplex_log_debug(LOG_COMP, "conn %llu: closed", (unsigned long long)conn->id);
}

/* Puts a connection whose exchange ended cleanly on its endpoint's idle list. */
static void
conn_release(hc_conn_t *conn)
{
    mcplex_http_pool_t *pool = conn->pool;
    hc_endpoint_t *ep = conn->ep;

    if (ep->n_idle >= pool->max_idle)
        conn_close(TAILQ_LAST(&ep->idle, hc_conn_list));
    TAILQ_INSERT_HEAD(&ep->idle, conn, idle_link);
    ep->n_idle++;
    conn->idle = true;
    timer_start(conn->timer, pool->idle_timeout_ms);
}

/* Binds |req| to |conn| and queues the request bytes (before the connect completes if need be). */
static void
conn_attach(hc_conn_t *conn, mcplex_http_client_req_t *req)
{
    if (conn->idle) {
        TAILQ_REMOVE(&conn->ep->idle, conn, idle_link);
        conn->ep->n_idle--;
        conn->idle = false;
        conn->reused = true;
        evtimer_del(conn->timer);
    } else {
        conn->reused = false;
    }
    conn->req = req;
    req->conn = conn;
    http_parser_init(&conn->parser, HTTP_RESPONSE);
    conn->parser.data = conn;
    conn->keep_alive = false;
    req->got_bytes = false;
    req->headers_done = false;
    req->hbuf_len = 0;
    req->n_spans = 0;
    req->hstate = HC_HDR_NONE;
    req->parse_error = NULL;
    if (conn->bev == NULL)
        return; /* the connect already failed; conn_timer_cb reports it */

    struct evbuffer *out = bufferevent_get_output(conn->bev);
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", req->method, req->path,
                        req->authority != NULL ? req->authority : conn->ep->host_header);
    evbuffer_add(out, req->tail, req->tail_len);
    if (req->body_len > 0)
        evbuffer_add(out, req->body, req->body_len);
}

/* ---- private: requests ----------------------------------------------------------------------- */

/* Marks |req| dead (no more callbacks) and queues it for freeing. Its connection is untouched. */
static void
req_end(mcplex_http_client_req_t *req)
{
    mcplex_http_pool_t *pool = req->pool;

    req->dead = true;
    if (req->conn != NULL) {
        req->conn->req = NULL;
        req->conn = NULL;
    }
    if (req->h2s != NULL) { /* HTTP/2 (issue 4): no more callbacks from the stream */
        mcplex_h2_client_cancel(req->h2s);
        req->h2s = NULL;
    }
    if (req->timer != NULL)
        evtimer_del(req->timer);
    TAILQ_REMOVE(&pool->reqs, req, link);
    TAILQ_INSERT_TAIL(&pool->dead_reqs, req, link);
}

/* Ends |req| with on_error(|reason|); its connection, if any, is closed first. */
static void
req_fail(mcplex_http_client_req_t *req, const char *reason)
{
    if (req->dead)
        return;
    if (req->conn != NULL)
        conn_close(req->conn);
    req_end(req);
    mcplex_log_debug(LOG_COMP, "%s %s failed: %s", req->method, req->path, reason);
    if (req->cbs.on_error != NULL)
        req->cbs.on_error(req->arg, reason);
}

/*
 * The connection of a request failed. A request that was on a reused connection and saw no
 * response byte is sent again once on a new connection (|may_retry| is false for failures
 * where that cannot help: connect errors, timeouts, malformed responses).
 */
static void
conn_fail(hc_conn_t *conn, const char *reason, bool may_retry)
{
    mcplex_http_pool_t *pool = conn->pool;
    mcplex_http_client_req_t *req = conn->req;
    bool retry = req != NULL && may_retry && conn->reused && !req->got_bytes && !req->retried;

    conn_close(conn);
    if (req == NULL)
        return;
    if (retry) {
        mcplex_log_debug(LOG_COMP, "conn %llu: %s before any response on a reused connection, retrying",
                         (unsigned long long)conn->id, reason);
        req->retried = true;
        conn_attach(conn_new(pool, req->ep), req);
        return;
    }
    req_fail(req, reason);
}

/* The response of |conn|'s request ended. |clean| is false when bytes followed it. */
static void
conn_finish_message(hc_conn_t *conn, bool clean)
{
    mcplex_http_client_req_t *req = conn->req;
    bool reuse = clean && conn->keep_alive && conn->bev != NULL &&
                 evbuffer_get_length(bufferevent_get_input(conn->bev)) == 0 &&
                 evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0;

    /* Release the connection before on_complete so a request made from it can reuse it. */
    req_end(req);
    if (reuse)
        conn_release(conn);
    else
        conn_close(conn);
    if (req->cbs.on_complete != NULL)
        req->cbs.on_complete(req->arg);
}

/* Feeds |n| response bytes of the current request to the parser. */
static void
conn_parse(hc_conn_t *conn, const char *data, size_t n)
{
    mcplex_http_client_req_t *req = conn->req;
    size_t nparsed;
    enum http_errno err;
    char reason[128];

    req->got_bytes = true;
    nparsed = http_parser_execute(&conn->parser, &parser_settings, data, n);
    if (req->dead || conn->dead)
        return; /* a callback cancelled the request or destroyed the pool */
    err = HTTP_PARSER_ERRNO(&conn->parser);
    if (err == HPE_PAUSED) {
        conn_finish_message(conn, nparsed == n);
        return;
    }
    if (err != HPE_OK) {
        if (req->parse_error != NULL)
            snprintf(reason, sizeof(reason), "%s", req->parse_error);
        else
            snprintf(reason, sizeof(reason), "malformed response: %s", http_errno_description(err));
        conn_fail(conn, reason, false);
    }
}

/* ---- callbacks: libevent --------------------------------------------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    hc_conn_t *conn = arg;
    mcplex_http_pool_t *pool = conn->pool;
    char buf[READ_CHUNK];
    size_t n;

    pool_enter(pool);
    while (!conn->dead) {
        if (conn->req == NULL) {
            /* Bytes on an idle connection belong to no request: the stream is out of sync. */
            if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
                conn_close(conn);
            break;
        }
        n = bufferevent_read(bev, buf, sizeof(buf));
        if (n == 0)
            break;
        conn_parse(conn, buf, n);
    }
    pool_leave(pool);
}

/* EOF or error on a connection that is connected or connecting. */
static void
conn_on_closed(hc_conn_t *conn, short what, int err)
{
    mcplex_http_client_req_t *req = conn->req;
    char reason[160];
    int dns_err;

    if (req == NULL) {
        conn_close(conn); /* the server closed an idle connection */
        return;
    }
    if (!conn->connected) {
        dns_err = bufferevent_socket_get_dns_error(conn->bev);
        if (dns_err != 0)
            snprintf(reason, sizeof(reason), "cannot resolve %s: %s", conn->ep->host,
                     evutil_gai_strerror(dns_err));
        else
            snprintf(reason, sizeof(reason), "connect failed: %s",
                     err != 0 ? evutil_socket_error_to_string(err) : "connection closed");
        conn_fail(conn, reason, false);
        return;
    }
    if ((what & BEV_EVENT_EOF) && req->headers_done) {
        /* A response without length ends at EOF; http-parser confirms it (or reports truncation). */
        http_parser_execute(&conn->parser, &parser_settings, NULL, 0);
        if (req->dead || conn->dead)
            return;
        if (HTTP_PARSER_ERRNO(&conn->parser) == HPE_PAUSED) {
            conn_finish_message(conn, false);
            return;
        }
    }
    if (what & BEV_EVENT_EOF)
        snprintf(reason, sizeof(reason), "connection closed by upstream");
    else
        snprintf(reason, sizeof(reason), "connection error: %s",
                 err != 0 ? evutil_socket_error_to_string(err) : "unknown");
    conn_fail(conn, reason, true);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    hc_conn_t *conn = arg;
    mcplex_http_pool_t *pool = conn->pool;
    int err = EVUTIL_SOCKET_ERROR();
    int one = 1;

    pool_enter(pool);
    if (conn->dead)
        goto out;
    if (what & BEV_EVENT_CONNECTED) {
        conn->connected = true;
        evtimer_del(conn->timer);
        /* Requests are written whole; do not let Nagle hold back their last segment. */
        (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        mcplex_log_debug(LOG_COMP, "conn %llu: connected", (unsigned long long)conn->id);
        goto out;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_on_closed(conn, what, (what & BEV_EVENT_ERROR) ? err : 0);
out:
    pool_leave(pool);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    hc_conn_t *conn = arg;
    mcplex_http_pool_t *pool = conn->pool;

    pool_enter(pool);
    if (conn->dead)
        goto out;
    if (conn->idle)
        conn_close(conn);
    else if (!conn->connected)
        conn_fail(conn, conn->fail_reason[0] != '\0' ? conn->fail_reason : "connect timeout", false);
out:
    pool_leave(pool);
}

static void
req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_http_client_req_t *req = arg;
    mcplex_http_pool_t *pool = req->pool;

    pool_enter(pool);
    req_fail(req, "timeout");
    pool_leave(pool);
}

/* ---- callbacks: http-parser ------------------------------------------------------------------ */

/* Ends the header being collected: NUL-terminates its name and value in the header buffer. */
static void
hdr_close_entry(mcplex_http_client_req_t *req)
{
    hc_hdr_span_t *span;

    if (req->hstate == HC_HDR_FIELD) {
        span = &req->spans[req->n_spans - 1];
        buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, "", 1);
        span->value_off = req->hbuf_len;
        span->value_len = 0;
        buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, "", 1);
    } else if (req->hstate == HC_HDR_VALUE) {
        buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, "", 1);
    }
    req->hstate = HC_HDR_NONE;
}

static int
on_message_begin(http_parser *p)
{
    hc_conn_t *conn = p->data;
    mcplex_http_client_req_t *req = conn->req;

    /* A 1xx response may come first; only the final response's headers are kept. */
    req->hbuf_len = 0;
    req->n_spans = 0;
    req->hstate = HC_HDR_NONE;
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    hc_conn_t *conn = p->data;
    mcplex_http_client_req_t *req = conn->req;
    hc_hdr_span_t *span;

    if (req->hstate != HC_HDR_FIELD) {
        hdr_close_entry(req);
        if (req->n_spans == MAX_RESPONSE_HEADERS) {
            req->parse_error = "too many response headers";
            return -1;
        }
        if (req->n_spans == req->spans_cap) {
            req->spans_cap = req->spans_cap ? req->spans_cap * 2 : 16;
            req->spans = mcplex_realloc(req->spans, req->spans_cap * sizeof(*req->spans));
        }
        span = &req->spans[req->n_spans++];
        memset(span, 0, sizeof(*span));
        span->name_off = req->hbuf_len;
        req->hstate = HC_HDR_FIELD;
    }
    span = &req->spans[req->n_spans - 1];
    for (size_t i = 0; i < len; i++) {
        char c = at[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, &c, 1);
    }
    span->name_len += len;
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    hc_conn_t *conn = p->data;
    mcplex_http_client_req_t *req = conn->req;
    hc_hdr_span_t *span;

    if (req->n_spans == 0 || req->hstate == HC_HDR_NONE)
        return -1; /* http-parser always reports a field first */
    span = &req->spans[req->n_spans - 1];
    if (req->hstate == HC_HDR_FIELD) {
        buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, "", 1);
        span->value_off = req->hbuf_len;
        req->hstate = HC_HDR_VALUE;
    }
    buf_append(&req->hbuf, &req->hbuf_len, &req->hbuf_cap, at, len);
    span->value_len += len;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    hc_conn_t *conn = p->data;
    mcplex_http_client_req_t *req = conn->req;
    mcplex_http_header_t *hdrs;

    hdr_close_entry(req);
    if (p->status_code == 101) {
        req->parse_error = "unexpected 101 Switching Protocols";
        return -1;
    }
    if (p->status_code < 200)
        return 0; /* informational: http-parser ends it here and parses the next response */
    req->headers_done = true;
    if (req->cbs.on_headers != NULL) {
        hdrs = mcplex_calloc(req->n_spans, sizeof(*hdrs));
        for (size_t i = 0; i < req->n_spans; i++) {
            hdrs[i].name = req->hbuf + req->spans[i].name_off;
            hdrs[i].name_len = req->spans[i].name_len;
            hdrs[i].value = req->hbuf + req->spans[i].value_off;
            hdrs[i].value_len = req->spans[i].value_len;
        }
        req->cbs.on_headers(req->arg, (int)p->status_code, hdrs, req->n_spans);
        free(hdrs);
        if (req->dead)
            return -1;
    }
    return req->is_head ? 1 : 0; /* 1: the response to HEAD has no body whatever its headers say */
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    hc_conn_t *conn = p->data;
    mcplex_http_client_req_t *req = conn->req;

    if (req->cbs.on_body != NULL && len > 0) {
        req->cbs.on_body(req->arg, at, len);
        if (req->dead)
            return -1;
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    hc_conn_t *conn = p->data;

    if (p->status_code < 200)
        return 0; /* the end of a 1xx: keep parsing for the final response */
    conn->keep_alive = http_should_keep_alive(p) != 0;
    /* Stop here; conn_parse() finishes the request outside the parser. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- API ------------------------------------------------------------------------------------- */

/* Fills |ep| from |cfg|; returns 0 or -1 (logged). */
static int
endpoint_init(hc_endpoint_t *ep, const mcplex_http_endpoint_t *cfg, struct evdns_base *dns)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;
    size_t len;

    if (cfg->host == NULL || cfg->host[0] == '\0' || cfg->port == 0) {
        mcplex_log_error(LOG_COMP, "endpoint needs a host and a port");
        return -1;
    }
    len = strlen(cfg->host);
    if (cfg->host[0] == '[' && len > 2 && cfg->host[len - 1] == ']')
        ep->host = mcplex_strndup(cfg->host + 1, len - 2);
    else
        ep->host = mcplex_strdup(cfg->host);
    ep->port = cfg->port;
    ep->weight = cfg->weight > 0 ? cfg->weight : 1;
    TAILQ_INIT(&ep->idle);
    if (evutil_inet_pton(AF_INET, ep->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(ep->port);
        ep->addr_len = sizeof(*sin);
        ep->is_literal = true;
    } else if (evutil_inet_pton(AF_INET6, ep->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(ep->port);
        ep->addr_len = sizeof(*sin6);
        ep->is_literal = true;
    } else if (dns == NULL) {
        mcplex_log_error(LOG_COMP, "endpoint %s: a host name needs a DNS resolver", ep->host);
        return -1;
    }
    if (ep->is_literal && ep->addr.ss_family == AF_INET6)
        ep->host_header = mcplex_sprintf("[%s]:%u", ep->host, (unsigned)ep->port);
    else if (ep->port == 80)
        ep->host_header = mcplex_strdup(ep->host);
    else
        ep->host_header = mcplex_sprintf("%s:%u", ep->host, (unsigned)ep->port);
    return 0;
}

/* ---- HTTP/2 (issue 4): requests as streams of one h2c connection per endpoint ------------------ */

static void
h2_req_on_headers(void *arg, int status, const mcplex_http_header_t *hdrs, size_t n_hdrs)
{
    mcplex_http_client_req_t *req = arg;
    mcplex_http_pool_t *pool = req->pool;

    pool_enter(pool);
    req->got_bytes = true;
    req->headers_done = true;
    if (!req->dead && req->cbs.on_headers != NULL)
        req->cbs.on_headers(req->arg, status, hdrs, n_hdrs);
    pool_leave(pool);
}

static void
h2_req_on_body(void *arg, const char *data, size_t len)
{
    mcplex_http_client_req_t *req = arg;
    mcplex_http_pool_t *pool = req->pool;

    pool_enter(pool);
    if (!req->dead && req->cbs.on_body != NULL && !req->is_head)
        req->cbs.on_body(req->arg, data, len);
    pool_leave(pool);
}

static void
h2_req_on_complete(void *arg)
{
    mcplex_http_client_req_t *req = arg;
    mcplex_http_pool_t *pool = req->pool;

    pool_enter(pool);
    req->h2s = NULL; /* ended by the stream itself */
    if (!req->dead) {
        req_end(req);
        if (req->cbs.on_complete != NULL)
            req->cbs.on_complete(req->arg);
    }
    pool_leave(pool);
}

static void
h2_req_on_error(void *arg, const char *reason)
{
    mcplex_http_client_req_t *req = arg;
    mcplex_http_pool_t *pool = req->pool;

    pool_enter(pool);
    req->h2s = NULL;
    if (!req->dead) {
        req_end(req);
        mcplex_log_debug(LOG_COMP, "%s %s failed: %s", req->method, req->path, reason);
        if (req->cbs.on_error != NULL)
            req->cbs.on_error(req->arg, reason);
    }
    pool_leave(pool);
}

static const mcplex_http_client_cbs_t h2_req_cbs = {
    .on_headers = h2_req_on_headers,
    .on_body = h2_req_on_body,
    .on_complete = h2_req_on_complete,
    .on_error = h2_req_on_error,
};

/* Closes replaced connections that have no stream left. */
static void
h2_pool_collect(mcplex_http_pool_t *pool)
{
    size_t k = 0;

    for (size_t i = 0; i < pool->n_h2_retired; i++) {
        if (mcplex_h2_client_dead(pool->h2_retired[i]))
            mcplex_h2_client_close(pool->h2_retired[i], "connection replaced");
        else
            pool->h2_retired[k++] = pool->h2_retired[i];
    }
    pool->n_h2_retired = k;
}

static void
h2_pool_close_all(mcplex_http_pool_t *pool)
{
    for (size_t i = 0; i < pool->n_eps; i++) {
        if (pool->eps[i].h2 != NULL)
            mcplex_h2_client_close(pool->eps[i].h2, NULL);
        pool->eps[i].h2 = NULL;
    }
    for (size_t i = 0; i < pool->n_h2_retired; i++)
        mcplex_h2_client_close(pool->h2_retired[i], NULL);
    pool->n_h2_retired = 0;
}

/* The endpoint's HTTP/2 connection, opened (or replaced, when it failed or got GOAWAY) as needed. */
static mcplex_h2_client_t *
h2_pool_conn(mcplex_http_pool_t *pool, hc_endpoint_t *ep)
{
    struct bufferevent *bev;
    char label[128];
    int rc;

    h2_pool_collect(pool);
    if (ep->h2 != NULL && mcplex_h2_client_usable(ep->h2))
        return ep->h2;
    if (ep->h2 != NULL) {
        if (mcplex_h2_client_dead(ep->h2)) {
            mcplex_h2_client_close(ep->h2, "connection replaced");
        } else {
            pool->h2_retired =
                mcplex_realloc(pool->h2_retired, (pool->n_h2_retired + 1) * sizeof(*pool->h2_retired));
            pool->h2_retired[pool->n_h2_retired++] = ep->h2;
        }
        ep->h2 = NULL;
    }
    bev = bufferevent_socket_new(pool->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL)
        return NULL;
    if (ep->is_literal)
        rc = bufferevent_socket_connect(bev, (struct sockaddr *)&ep->addr, ep->addr_len);
    else
        rc = bufferevent_socket_connect_hostname(bev, pool->dns, AF_UNSPEC, ep->host, ep->port);
    if (rc != 0) {
        bufferevent_free(bev);
        return NULL;
    }
    if (pool->tls != NULL) {
        /* h2 over TLS: the codec gets the plaintext end; ALPN is the UpstreamTlsContext's list. */
        bev = mcplex_tls_client_wrap(pool->base, bev, 0, pool->tls, NULL, pool->connect_timeout_ms);
        if (bev == NULL)
            return NULL; /* the socket bufferevent was freed by the TLS layer */
    }
    snprintf(label, sizeof(label), "%s:%u", ep->host, (unsigned)ep->port);
    mcplex_log_debug(LOG_COMP, "h2 %s: connecting", label);
    ep->h2 = mcplex_h2_client_create(pool->base, bev, label, pool->connect_timeout_ms);
    return ep->h2;
}

/* Sends |req| as a stream of |ep|'s HTTP/2 connection; a failure is reported from the event loop. */
static void
h2_pool_dispatch(mcplex_http_pool_t *pool, hc_endpoint_t *ep, mcplex_http_client_req_t *req,
                 const mcplex_http_header_t *hdrs, size_t n_hdrs, const void *body, size_t body_len)
{
    mcplex_h2_client_t *c = h2_pool_conn(pool, ep);

    if (c != NULL)
        req->h2s = mcplex_h2_client_request(c, req->method, req->path,
                                            req->authority != NULL ? req->authority : ep->host_header, hdrs,
                                            n_hdrs, body, body_len, &h2_req_cbs, req);
    if (req->h2s == NULL) {
        /* No callback inside mcplex_http_client_request(): fail from the request timer, at once. */
        if (req->timer == NULL) {
            req->timer = evtimer_new(pool->base, req_timer_cb, req);
            MCPLEX_BUG_ON(req->timer == NULL);
        }
        event_active(req->timer, EV_TIMEOUT, 1);
    }
}

mcplex_http_pool_t *
mcplex_http_pool_create(struct event_base *base, struct evdns_base *dns, const mcplex_http_pool_config_t *cfg)
{
    mcplex_http_pool_t *pool;

    if (base == NULL || cfg == NULL || cfg->endpoints == NULL || cfg->n_endpoints == 0)
        return NULL;
    pool = mcplex_calloc(1, sizeof(*pool));
    pool->base = base;
    pool->dns = dns;
    pool->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    pool->max_idle = cfg->max_idle_per_endpoint ? cfg->max_idle_per_endpoint : DEFAULT_MAX_IDLE;
    pool->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT_MS;
    pool->http2 = cfg->http2 != 0; /* HTTP/2 (issue 4) */
    pool->tls = mcplex_tls_ctx_ref(cfg->tls); /* TLS (issue 4) */
    TAILQ_INIT(&pool->conns);
    TAILQ_INIT(&pool->dead_conns);
    TAILQ_INIT(&pool->reqs);
    TAILQ_INIT(&pool->dead_reqs);
    pool->eps = mcplex_calloc(cfg->n_endpoints, sizeof(*pool->eps));
    pool->n_eps = cfg->n_endpoints;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (endpoint_init(&pool->eps[i], &cfg->endpoints[i], dns) != 0)
            goto fail;
    }
    return pool;

fail:
    for (size_t i = 0; i < pool->n_eps; i++) {
        free(pool->eps[i].host);
        free(pool->eps[i].host_header);
    }
    free(pool->eps);
    mcplex_tls_ctx_unref(pool->tls); /* TLS (issue 4) */
    free(pool);
    return NULL;
}

void
mcplex_http_pool_destroy(mcplex_http_pool_t *pool)
{
    mcplex_http_client_req_t *req;
    hc_conn_t *conn;

    if (pool == NULL || pool->destroyed)
        return;
    pool_enter(pool);
    pool->destroyed = true;
    while ((req = TAILQ_FIRST(&pool->reqs)) != NULL) {
        if (req->conn != NULL)
            conn_close(req->conn);
        req_end(req);
    }
    while ((conn = TAILQ_FIRST(&pool->conns)) != NULL)
        conn_close(conn);
    h2_pool_close_all(pool); /* HTTP/2 (issue 4) */
    pool_leave(pool); /* frees the pool unless a callback of it is on the stack */
}

mcplex_http_client_req_t *
mcplex_http_client_request(mcplex_http_pool_t *pool, const char *method, const char *path,
                           const char *authority, const mcplex_http_header_t *hdrs, size_t n_hdrs,
                           const void *body, size_t body_len, uint32_t timeout_ms,
                           const mcplex_http_client_cbs_t *cbs, void *arg)
{
    mcplex_http_client_req_t *req;
    hc_endpoint_t *ep;
    hc_conn_t *conn;
    size_t cap = 0;
    char line[64];

    if (pool == NULL || pool->destroyed || method == NULL || path == NULL || cbs == NULL)
        return NULL;
    if (method[0] == '\0' || strchr(method, ' ') != NULL || !field_ok(method, strlen(method)) ||
        path[0] == '\0' || strchr(path, ' ') != NULL || !field_ok(path, strlen(path)) ||
        (authority != NULL && !field_ok(authority, strlen(authority))) || (n_hdrs > 0 && hdrs == NULL))
        return NULL;
    for (size_t i = 0; i < n_hdrs; i++) {
        if (hdrs[i].name == NULL || hdrs[i].name_len == 0 || !field_ok(hdrs[i].name, hdrs[i].name_len) ||
            memchr(hdrs[i].name, ':', hdrs[i].name_len) != NULL ||
            (hdrs[i].value_len > 0 && hdrs[i].value == NULL) || !field_ok(hdrs[i].value, hdrs[i].value_len))
            return NULL;
    }

    req = mcplex_calloc(1, sizeof(*req));
    req->pool = pool;
    req->method = mcplex_strdup(method);
    req->path = mcplex_strdup(path);
    req->authority = mcplex_strdup(authority);
    req->is_head = strcmp(method, "HEAD") == 0;
    req->cbs = *cbs;
    req->arg = arg;
    /* Host and framing headers are ours: Host from |authority| or the endpoint, Content-Length
     * from |body| (request bodies are never chunked). */
    for (size_t i = 0; i < n_hdrs; i++) {
        if (name_is(&hdrs[i], "host") || name_is(&hdrs[i], "content-length") ||
            name_is(&hdrs[i], "transfer-encoding"))
            continue;
        buf_append(&req->tail, &req->tail_len, &cap, hdrs[i].name, hdrs[i].name_len);
        buf_append(&req->tail, &req->tail_len, &cap, ": ", 2);
        buf_append(&req->tail, &req->tail_len, &cap, hdrs[i].value, hdrs[i].value_len);
        buf_append(&req->tail, &req->tail_len, &cap, "\r\n", 2);
    }
    if (body != NULL) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
        buf_append(&req->tail, &req->tail_len, &cap, line, strlen(line));
        if (body_len > 0) {
            req->body = mcplex_malloc(body_len);
            memcpy(req->body, body, body_len);
            req->body_len = body_len;
        }
    }
    buf_append(&req->tail, &req->tail_len, &cap, "\r\n", 2);

    pool_enter(pool);
    TAILQ_INSERT_TAIL(&pool->reqs, req, link);
    if (timeout_ms > 0) {
        req->timer = evtimer_new(pool->base, req_timer_cb, req);
        MCPLEX_BUG_ON(req->timer == NULL);
        timer_start(req->timer, timeout_ms);
    }
    ep = endpoint_pick(pool);
    req->ep = ep;
    if (pool->http2) { /* HTTP/2 (issue 4) */
        h2_pool_dispatch(pool, ep, req, hdrs, n_hdrs, body, body_len);
        pool_leave(pool);
        return req;
    }
    conn = TAILQ_FIRST(&ep->idle);
    if (conn == NULL)
        conn = conn_new(pool, ep);
    conn_attach(conn, req);
    pool_leave(pool);
    return req;
}

void
mcplex_http_client_cancel(mcplex_http_client_req_t *req)
{
    mcplex_http_pool_t *pool;

    if (req == NULL || req->dead)
        return;
    pool = req->pool;
    pool_enter(pool);
    if (req->conn != NULL)
        conn_close(req->conn);
    req_end(req);
    pool_leave(pool);
}
