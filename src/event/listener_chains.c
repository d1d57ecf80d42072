/*
 * listener_chains.c - filter chain selection, TLS handshakes and codec start for the
 * connections of TLS and multi-chain listeners (see listener_chains.h). Owns, per listener
 * context, the TLS server contexts built from the chains' DownstreamTlsContext and the
 * per-chain handler contexts handed to the HCM. Thread: the worker that owns the listener.
 */
#include "event/listener_chains.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/mem.h"
#include "net/conn_io.h"
#include "net/tls.h"
#include "router/hcm.h"

#define LC_LOG "listener"
#define LC_HANDSHAKE_TIMEOUT_MS 10000
/* How long a connection of a mixed listener may stay silent before its first byte. */
#define LC_INSPECT_TIMEOUT_S 10

struct mcplex_listener_chains {
    uint64_t generation;          /* the snapshot the TLS contexts were built from */
    mcplex_tls_ctx_t **tls;       /* per chain; NULL for plaintext chains and failed ones */
    size_t n_tls;
    /* Per-chain handler contexts (index 0 is the listener context itself). Grow-only: live
     * connections hold these pointers until the listener context is freed. */
    mcplex_listener_ctx_t **chain_ctxs;
    size_t n_chain_ctxs;
    mcplex_http_codec_h1_fn on_h1; /* the accept's stats hook, for codecs started after a handshake */
};

/* A connection of a listener with plaintext and TLS chains, waiting for its first byte. */
typedef struct lc_inspect {
    mcplex_listener_ctx_t *lctx;
    mcplex_http_codec_h1_fn on_h1;
    struct sockaddr_storage peer;
} lc_inspect_t;

/* ---- selection ---------------------------------------------------------------------------------- */

int
mcplex_listener_chains_needed(const mcplex_listener_cfg_t *l)
{
    if (l->n_filter_chains > 1)
        return 1;
    return l->n_filter_chains == 1 && l->filter_chains[0].tls != NULL;
}

int
mcplex_filter_chain_select(const mcplex_listener_cfg_t *l, const char *server_name, int tls)
{
    int best = -1, catch_all = -1, dflt = -1;
    size_t best_score = 0;

    for (size_t i = 0; i < l->n_filter_chains; i++) {
        const mcplex_filter_chain_t *c = &l->filter_chains[i];
        if ((c->tls != NULL) != (tls != 0))
            continue;
        if (c->is_default) {
            dflt = (int)i;
            continue;
        }
        if (c->n_server_names == 0) {
            if (catch_all < 0)
                catch_all = (int)i;
            continue;
        }
        for (size_t k = 0; server_name != NULL && k < c->n_server_names; k++) {
            size_t score = mcplex_tls_server_name_match(c->server_names[k], server_name);
            if (score > best_score) {
                best_score = score;
                best = (int)i;
            }
        }
    }
    if (best >= 0)
        return best;
    return catch_all >= 0 ? catch_all : dflt;
}

/* ---- per-listener state ------------------------------------------------------------------------- */

static void
lc_drop_tls(mcplex_listener_chains_t *c)
{
    for (size_t i = 0; i < c->n_tls; i++)
        mcplex_tls_ctx_unref(c->tls[i]);
    free(c->tls);
    c->tls = NULL;
    c->n_tls = 0;
}

/* The ALPN list a chain offers when its DownstreamTlsContext names none (by codec_type). */
static size_t
lc_default_alpn(const mcplex_hcm_t *hcm, const char *const **out)
{
    static const char *const both[] = {"h2", "http/1.1"};
    static const char *const h1[] = {"http/1.1"};
    static const char *const h2[] = {"h2"};

    switch (hcm->codec_type) {
    case MCPLEX_CODEC_HTTP1:
        *out = h1;
        return 1;
    case MCPLEX_CODEC_HTTP2:
        *out = h2;
        return 1;
    default:
        *out = both;
        return 2;
    }
}

/* Makes sure |lctx|'s state exists, fits |l|, and has TLS contexts of the current snapshot. */
static mcplex_listener_chains_t *
lc_state(mcplex_listener_ctx_t *lctx, const mcplex_listener_cfg_t *l)
{
    mcplex_listener_chains_t *c = lctx->chains;
    uint64_t gen = lctx->worker->snapshot->generation;

    if (c == NULL) {
        c = mcplex_calloc(1, sizeof(*c));
        lctx->chains = c;
        c->generation = gen + 1; /* forces the first build */
    }
    if (c->n_chain_ctxs < l->n_filter_chains) {
        c->chain_ctxs = mcplex_realloc(c->chain_ctxs, l->n_filter_chains * sizeof(*c->chain_ctxs));
        for (size_t i = c->n_chain_ctxs; i < l->n_filter_chains; i++) {
            if (i == 0) {
                c->chain_ctxs[0] = lctx;
                continue;
            }
            c->chain_ctxs[i] = mcplex_calloc(1, sizeof(mcplex_listener_ctx_t));
            *c->chain_ctxs[i] = *lctx; /* worker, names and address borrowed from |lctx| */
            c->chain_ctxs[i]->tcp = NULL;
            c->chain_ctxs[i]->next_retired = NULL;
            c->chain_ctxs[i]->chains = NULL;
            c->chain_ctxs[i]->filter_chain = i;
        }
        c->n_chain_ctxs = l->n_filter_chains;
    }
    if (c->generation != gen) {
        lc_drop_tls(c);
        c->generation = gen;
        c->tls = mcplex_calloc(l->n_filter_chains ? l->n_filter_chains : 1, sizeof(*c->tls));
        c->n_tls = l->n_filter_chains;
        for (size_t i = 0; i < l->n_filter_chains; i++) {
            const char *const *alpn;
            size_t n_alpn;
            char err[256] = "";
            if (l->filter_chains[i].tls == NULL)
                continue;
            n_alpn = lc_default_alpn(mcplex_listener_chain_hcm(l, i), &alpn);
            c->tls[i] = mcplex_tls_ctx_new_server(l->filter_chains[i].tls, alpn, n_alpn, err, sizeof(err));
            if (c->tls[i] == NULL)
                mcplex_log_error(LC_LOG, "listener '%s' filter chain %zu: TLS: %s", l->name, i, err);
        }
    }
    return c;
}

void
mcplex_listener_chains_free(mcplex_listener_chains_t *c)
{
    if (c == NULL)
        return;
    lc_drop_tls(c);
    for (size_t i = 1; i < c->n_chain_ctxs; i++)
        free(c->chain_ctxs[i]);
    free(c->chain_ctxs);
    free(c);
}

/* ---- accept ------------------------------------------------------------------------------------- */

static const mcplex_listener_cfg_t *
lc_listener(mcplex_listener_ctx_t *lctx)
{
    const mcplex_snapshot_t *s = lctx->worker->snapshot;

    for (size_t i = 0; i < s->n_listeners; i++)
        if (strcmp(s->listeners[i].name, lctx->listener_name) == 0)
            return &s->listeners[i];
    return NULL;
}

static void
lc_start_codec(mcplex_listener_ctx_t *lctx, const mcplex_listener_cfg_t *l, int chain,
               struct bufferevent *bev, const struct sockaddr *peer, const char *alpn,
               mcplex_http_codec_h1_fn on_h1)
{
    mcplex_listener_chains_t *c = lc_state(lctx, l);
    mcplex_listener_ctx_t *cctx = c->chain_ctxs[chain];

    mcplex_http_codec_start_ex(lctx->worker->base, bev, peer, alpn,
                               mcplex_listener_chain_hcm(l, (size_t)chain), mcplex_hcm_handle, cctx, on_h1,
                               cctx);
}

/* The SNI callback of the handshake: the TLS chain for |server_name|. */
static mcplex_tls_ctx_t *
lc_select(void *arg, const char *server_name, size_t *tag)
{
    mcplex_listener_ctx_t *lctx = arg;
    const mcplex_listener_cfg_t *l = lc_listener(lctx);
    mcplex_listener_chains_t *c;
    int chain;

    if (l == NULL)
        return NULL;
    c = lc_state(lctx, l);
    chain = mcplex_filter_chain_select(l, server_name, 1);
    if (chain < 0 && server_name == NULL) {
        /* No chain for connections without SNI: any TLS context reads the ClientHello. */
        for (size_t i = 0; i < c->n_tls; i++) {
            if (c->tls[i] != NULL) {
                *tag = MCPLEX_TLS_TAG_NONE;
                return c->tls[i];
            }
        }
    }
    if (chain < 0 || (size_t)chain >= c->n_tls)
        return NULL;
    *tag = (size_t)chain;
    return c->tls[chain];
}

static void
lc_tls_ready(void *arg, struct bufferevent *plaintext, const struct sockaddr *peer,
             const mcplex_tls_info_t *info)
{
    mcplex_listener_ctx_t *lctx = arg;
    const mcplex_listener_cfg_t *l = lc_listener(lctx);

    if (l == NULL || info->tag >= l->n_filter_chains) {
        mcplex_log_debug(LC_LOG, "listener '%s' went away during a TLS handshake", lctx->listener_name);
        mcplex_conn_io_free(plaintext);
        return;
    }
    lc_start_codec(lctx, l, (int)info->tag, plaintext, peer, info->alpn, lc_state(lctx, l)->on_h1);
}

static void
lc_start_tls(mcplex_listener_ctx_t *lctx, struct bufferevent *bev, const struct sockaddr *peer,
             mcplex_http_codec_h1_fn on_h1)
{
    lctx->chains->on_h1 = on_h1;
    (void)mcplex_tls_server_start(lctx->worker->base, bev, peer, lc_select, lctx, lc_tls_ready, lctx,
                                  LC_HANDSHAKE_TIMEOUT_MS);
}

static void
lc_start_plain(mcplex_listener_ctx_t *lctx, const mcplex_listener_cfg_t *l, struct bufferevent *bev,
               const struct sockaddr *peer, mcplex_http_codec_h1_fn on_h1)
{
    int chain = mcplex_filter_chain_select(l, NULL, 0);

    if (chain < 0) {
        char p[64];
        mcplex_conn_io_format_peer(p, sizeof(p), peer);
        mcplex_log_debug(LC_LOG, "%s: listener '%s' has no plaintext filter chain", p, l->name);
        bufferevent_free(bev);
        return;
    }
    lc_start_codec(lctx, l, chain, bev, peer, NULL, on_h1);
}

static void
lc_inspect_read(struct bufferevent *bev, void *arg)
{
    lc_inspect_t *in = arg;
    unsigned char first;
    const mcplex_listener_cfg_t *l = lc_listener(in->lctx);

    if (evbuffer_copyout(bufferevent_get_input(bev), &first, 1) != 1)
        return;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    if (l == NULL)
        bufferevent_free(bev);
    else if (first == 0x16) /* a TLS handshake record: Envoy's tls_inspector says "tls" */
        lc_start_tls(in->lctx, bev, (const struct sockaddr *)&in->peer, in->on_h1);
    else
        lc_start_plain(in->lctx, l, bev, (const struct sockaddr *)&in->peer, in->on_h1);
    free(in);
}

static void
lc_inspect_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    bufferevent_free(bev);
    free(arg);
}

void
mcplex_listener_chains_accept(mcplex_listener_ctx_t *lctx, const mcplex_listener_cfg_t *l, int fd,
                              const struct sockaddr *peer, mcplex_http_codec_h1_fn on_h1)
{
    struct bufferevent *bev;
    int one = 1, n_tls = 0, n_plain = 0;

    (void)lc_state(lctx, l);
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        if (l->filter_chains[i].tls != NULL)
            n_tls++;
        else
            n_plain++;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not fatal */
    /* TLS and the inspector defer callbacks (tls.c needs it); plaintext codecs get what they always got. */
    bev = bufferevent_socket_new(lctx->worker->base, fd,
                                 BEV_OPT_CLOSE_ON_FREE | (n_tls > 0 ? BEV_OPT_DEFER_CALLBACKS : 0));
    if (bev == NULL) {
        mcplex_log_error(LC_LOG, "cannot set up a connection: no bufferevent");
        evutil_closesocket(fd);
        return;
    }
    if (n_tls == 0) {
        lc_start_plain(lctx, l, bev, peer, on_h1);
    } else if (n_plain == 0) {
        lc_start_tls(lctx, bev, peer, on_h1);
    } else {
        lc_inspect_t *in = mcplex_calloc(1, sizeof(*in));
        struct timeval tv = {LC_INSPECT_TIMEOUT_S, 0};
        in->lctx = lctx;
        in->on_h1 = on_h1;
        if (peer != NULL && (peer->sa_family == AF_INET || peer->sa_family == AF_INET6))
            memcpy(&in->peer, peer,
                   peer->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        bufferevent_setcb(bev, lc_inspect_read, NULL, lc_inspect_event, in);
        bufferevent_set_timeouts(bev, &tv, NULL);
        bufferevent_enable(bev, EV_READ);
    }
}
