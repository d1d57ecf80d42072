/*
 * codec.c - the server codec selector (see codec.h): HTTP/1.1 (h1_server.c) or HTTP/2
 * (h2_server.c) for each downstream connection.
 *
 * Owns, for a plaintext connection under codec_type AUTO, a short-lived sniffer that holds the
 * bufferevent until the first bytes tell the HTTP/2 client preface (RFC 9113 section 3.4,
 * "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": prior knowledge) from anything else (HTTP/1.1). The
 * HTTP/1.1 `Upgrade: h2c` path (RFC 7540 section 3.2) is handed from h1_server.c back here
 * through its upgrade callback. Envoy's rules for codec_type: HTTP1 never speaks HTTP/2 (the
 * preface is answered as a bad HTTP/1.1 request), HTTP2 never speaks HTTP/1.1 (the session
 * answers a non-preface with GOAWAY and closes), AUTO follows ALPN, then the preface.
 * Thread: the worker that accepted the connection.
 */
#include "http/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/mem.h"
#include "http/h1_server.h"
#include "http/h2_server.h"
#include "net/conn_io.h"

#define CODEC_LOG "http"
#define CODEC_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CODEC_PREFACE_LEN 24
/* A connection that sends nothing is closed after this (or the HCM idle timeout if shorter). */
#define CODEC_SNIFF_TIMEOUT_MS 60000

/* What a codec needs from the HCM, copied (the HCM is not kept). */
typedef struct codec_params {
    struct event_base *base;
    mcplex_http_limits_t limits;
    mcplex_h2_settings_t h2;
    mcplex_codec_type_t codec_type;
    mcplex_http_handler_fn handler;
    void *ctx;
    mcplex_http_codec_h1_fn on_h1;
    void *on_h1_arg;
    char peer[64];
} codec_params_t;

/* A plaintext AUTO connection waiting for its first bytes. */
typedef struct codec_sniff {
    codec_params_t params;
    struct bufferevent *bev;
    struct sockaddr_storage peer_addr;
    bool have_peer;
    struct event *timer;
} codec_sniff_t;

static void
codec_params_init(codec_params_t *p, struct event_base *base, const struct sockaddr *peer,
                  const mcplex_hcm_t *hcm, mcplex_http_handler_fn handler, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->base = base;
    p->handler = handler;
    p->ctx = ctx;
    p->codec_type = MCPLEX_CODEC_AUTO;
    if (hcm != NULL) {
        p->codec_type = hcm->codec_type;
        p->limits.max_request_headers_kb = hcm->max_request_headers_kb;
        p->limits.max_request_body_bytes = (uint32_t)hcm->route_config.max_request_body_bytes;
        p->limits.idle_timeout_ms = hcm->stream_idle_timeout_ms;
        p->h2.max_concurrent_streams = hcm->http2_max_concurrent_streams;
        p->h2.initial_stream_window_size = hcm->http2_initial_stream_window_size;
        p->h2.initial_connection_window_size = hcm->http2_initial_connection_window_size;
        p->h2.drain_timeout_ms = hcm->drain_timeout_ms;
    }
    mcplex_conn_io_format_peer(p->peer, sizeof(p->peer), peer);
}

/* The HTTP/1.1 → HTTP/2 hand-off of h1_server.c: the request asked `Upgrade: h2c`. */
static int
codec_on_upgrade(void *arg, struct bufferevent *bev, const mcplex_http_request_t *req,
                 const char *http2_settings)
{
    const codec_params_t *p = arg;

    return mcplex_h2_conn_create_upgraded(p->base, bev, p->peer, &p->limits, &p->h2, http2_settings,
                                          strlen(http2_settings), req, p->handler, p->ctx) != NULL
               ? 0
               : -1;
}

/* Starts HTTP/1.1; |allow_h2c|: plaintext under AUTO, where `Upgrade: h2c` switches to HTTP/2. */
static void
codec_start_h1(const codec_params_t *p, struct bufferevent *bev, const struct sockaddr *peer, bool allow_h2c)
{
    mcplex_h1_conn_t *h1 = mcplex_h1_conn_create_bev(p->base, bev, peer, &p->limits, p->handler, p->ctx);

    if (h1 != NULL && p->on_h1 != NULL)
        p->on_h1(p->on_h1_arg, h1);
    if (h1 != NULL && allow_h2c) {
        /* The h1 connection keeps a copy of the parameters until it ends. */
        codec_params_t *copy = mcplex_malloc(sizeof(*copy));
        *copy = *p;
        mcplex_h1_conn_set_upgrade_cb(h1, codec_on_upgrade, copy, free);
    }
}

static void
codec_start_h2(const codec_params_t *p, struct bufferevent *bev)
{
    (void)mcplex_h2_conn_create(p->base, bev, p->peer, &p->limits, &p->h2, p->handler, p->ctx);
}

static void
codec_sniff_free(codec_sniff_t *sn)
{
    event_free(sn->timer);
    free(sn);
}

/*
 * Decides once enough bytes are in: returns 1 for HTTP/2 (the preface, so far), 0 for HTTP/1.1,
 * -1 when more bytes are needed.
 */
static int
codec_sniff_decide(struct evbuffer *in)
{
    unsigned char buf[CODEC_PREFACE_LEN];
    size_t n = evbuffer_get_length(in);

    if (n > CODEC_PREFACE_LEN)
        n = CODEC_PREFACE_LEN;
    if (evbuffer_copyout(in, buf, n) != (ev_ssize_t)n)
        return 0;
    if (memcmp(buf, CODEC_PREFACE, n) != 0)
        return 0;
    return n == CODEC_PREFACE_LEN ? 1 : -1;
}

static void
codec_sniff_read(struct bufferevent *bev, void *arg)
{
    codec_sniff_t *sn = arg;
    int d = codec_sniff_decide(bufferevent_get_input(bev));

    if (d < 0)
        return;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (d == 1)
        codec_start_h2(&sn->params, bev);
    else
        codec_start_h1(&sn->params, bev, sn->have_peer ? (const struct sockaddr *)&sn->peer_addr : NULL,
                       true);
    codec_sniff_free(sn);
}

static void
codec_sniff_event(struct bufferevent *bev, short events, void *arg)
{
    codec_sniff_t *sn = arg;

    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    mcplex_log_trace(CODEC_LOG, "%s: closed before the first request", sn->params.peer);
    mcplex_conn_io_free(bev);
    codec_sniff_free(sn);
}

static void
codec_sniff_timeout(evutil_socket_t fd, short what, void *arg)
{
    codec_sniff_t *sn = arg;

    (void)fd;
    (void)what;
    mcplex_log_debug(CODEC_LOG, "%s: nothing received, closing", sn->params.peer);
    mcplex_conn_io_free(sn->bev);
    codec_sniff_free(sn);
}

/* Waits for the first bytes of a plaintext AUTO connection (some may already be in). */
static void
codec_sniff_start(const codec_params_t *p, struct bufferevent *bev, const struct sockaddr *peer)
{
    codec_sniff_t *sn = mcplex_calloc(1, sizeof(*sn));
    uint32_t ms = p->limits.idle_timeout_ms != 0 && p->limits.idle_timeout_ms < CODEC_SNIFF_TIMEOUT_MS
                      ? p->limits.idle_timeout_ms
                      : CODEC_SNIFF_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    struct evbuffer *in;

    sn->params = *p;
    sn->bev = bev;
    if (peer != NULL) {
        size_t len = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&sn->peer_addr, peer, len);
        sn->have_peer = true;
    }
    sn->timer = evtimer_new(p->base, codec_sniff_timeout, sn);
    if (sn->timer == NULL) {
        mcplex_log_error(CODEC_LOG, "%s: cannot set up the connection", p->peer);
        mcplex_conn_io_free(bev);
        free(sn);
        return;
    }
    in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) != 0 && codec_sniff_decide(in) >= 0) {
        codec_sniff_read(bev, sn);
        return;
    }
    evtimer_add(sn->timer, &tv);
    bufferevent_setcb(bev, codec_sniff_read, NULL, codec_sniff_event, sn);
    bufferevent_enable(bev, EV_READ);
}

void
mcplex_http_codec_start(struct event_base *base, struct bufferevent *plaintext, const struct sockaddr *peer,
                        const char *alpn, const mcplex_hcm_t *hcm, mcplex_http_handler_fn handler, void *ctx)
{
    mcplex_http_codec_start_ex(base, plaintext, peer, alpn, hcm, handler, ctx, NULL, NULL);
}

void
mcplex_http_codec_start_ex(struct event_base *base, struct bufferevent *plaintext,
                           const struct sockaddr *peer, const char *alpn, const mcplex_hcm_t *hcm,
                           mcplex_http_handler_fn handler, void *ctx, mcplex_http_codec_h1_fn on_h1,
                           void *on_h1_arg)
{
    codec_params_t p;

    codec_params_init(&p, base, peer, hcm, handler, ctx);
    p.on_h1 = on_h1;
    p.on_h1_arg = on_h1_arg;
    switch (p.codec_type) {
    case MCPLEX_CODEC_HTTP1:
        codec_start_h1(&p, plaintext, peer, false);
        break;
    case MCPLEX_CODEC_HTTP2:
        codec_start_h2(&p, plaintext);
        break;
    default:
        if (alpn != NULL && strcmp(alpn, "h2") == 0)
            codec_start_h2(&p, plaintext);
        else if (alpn != NULL && alpn[0] != '\0')
            codec_start_h1(&p, plaintext, peer, false); /* "http/1.1" over TLS: no sniffing, no h2c */
        else
            codec_sniff_start(&p, plaintext, peer);
        break;
    }
}
