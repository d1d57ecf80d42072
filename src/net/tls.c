/*
 * tls.c - TLS contexts and connections over memory BIOs (see tls.h). Owns each TLS connection:
 * its SSL, the socket bufferevent (and so the socket), its end of the bufferevent_pair whose
 * other end the codec holds, and a handshake timer. Runs on the worker thread whose event_base
 * started the connection.
 *
 * The pump. Ciphertext read from the socket goes into the read BIO (only while the codec has
 * less than TLS_HIGH_WATER plaintext waiting, else the socket stops being read); SSL_read()
 * turns it into plaintext on our pair end, which libevent moves to the codec's end. Plaintext
 * the codec writes arrives on our end's input; SSL_write() turns it into records that go from
 * the write BIO to the socket's output (only while that holds less than TLS_HIGH_WATER, else our
 * end stops reading, so the codec's own output grows and it sees its back-pressure). After every
 * SSL call the write BIO is drained into the socket's output.
 *
 * Ends (conn_io.h): the codec's half-close and its free both arrive as BEV_EVENT_EOF on our pair
 * end; a half-close (EOF|READING) sends close_notify and then FIN once the socket's output is
 * empty; a free (EOF|READING|WRITING, see conn_io.c, or the partner already unlinked) closes
 * at once. The peer's close_notify or FIN becomes
 * EOF on the codec's end; TLS and socket errors become BEV_EVENT_ERROR there.
 *
 * Freeing: every bufferevent involved defers its callbacks, so none of our callbacks ever runs
 * inside another; a callback that decides to close marks the connection dead and frees it
 * before returning.
 *
 * Only functions both OpenSSL 3 and BoringSSL provide are used (tls.h).
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/mem.h"
#include "net/conn_io.h"

#define TLS_LOG "tls"
/* Plaintext waiting for the codec, and ciphertext waiting for the socket, above which we pause. */
#define TLS_HIGH_WATER (256 * 1024)
#define TLS_RECORD_MAX 16384
#define TLS_DEFAULT_HANDSHAKE_MS 10000
/* Biggest certificate/key/CA file we read. */
#define TLS_MAX_PEM_BYTES (4 * 1024 * 1024)

struct mcplex_tls_ctx {
    _Atomic int refs;
    SSL_CTX *ssl_ctx;
    bool server;
    unsigned char *alpn_wire; /* server: our preference list; client: our offer (RFC 7301 wire format) */
    size_t alpn_len;
    int min_version, max_version; /* protocol version numbers (TLS1_2_VERSION, ...) */
    char *sni;                    /* client: default server name, or NULL */
    bool insecure;                /* client: no validation */
};

typedef struct tls_conn {
    struct event_base *base;
    SSL *ssl;
    BIO *rbio, *wbio;            /* owned by |ssl| */
    struct bufferevent *sock;    /* ciphertext; owned */
    struct bufferevent *mine;    /* our pair end (plaintext); owned; NULL until the server is ready */
    struct bufferevent *theirs;  /* server: the codec's end between its creation and the ready call */
    struct event *timer;         /* handshake timeout */
    mcplex_tls_ctx_t *ctx;       /* the context the SSL was made with (a reference) */
    mcplex_tls_ctx_t *selected;  /* the one SNI picked (a reference), or NULL = |ctx| */
    size_t tag;
    mcplex_tls_select_fn select;
    void *select_arg;
    mcplex_tls_ready_fn ready;
    void *ready_arg;
    struct sockaddr_storage peer_addr;
    bool server;
    bool connected;      /* client: the TCP connect is done */
    bool handshake_done;
    bool peer_closed;    /* close_notify or FIN seen: no more plaintext in */
    bool in_paused;      /* socket reading paused: the codec is behind */
    bool out_paused;     /* our end's reading paused: the socket's output is full */
    bool shut_pending;   /* the codec half-closed: close_notify once its bytes are out */
    bool shut_sent;      /* close_notify queued */
    bool fin_sent;
    bool dead;
    char peer[64];
    char server_name[256];
    char alpn[32];
} tls_conn_t;

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* The first queued OpenSSL error as text (queue cleared), or |fallback|. */
static const char *
tls_error_text(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, len, "%s", fallback);
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

static int
tls_version_number(mcplex_tls_version_t v, int dflt)
{
    switch (v) {
    case MCPLEX_TLS_V1_0:
        return TLS1_VERSION;
    case MCPLEX_TLS_V1_1:
        return TLS1_1_VERSION;
    case MCPLEX_TLS_V1_2:
        return TLS1_2_VERSION;
    case MCPLEX_TLS_V1_3:
        return TLS1_3_VERSION;
    case MCPLEX_TLS_AUTO:
    default:
        return dflt;
    }
}

int
mcplex_tls_data_read(const mcplex_data_source_t *d, const char *what, char **out, size_t *out_len, char *err,
              size_t err_len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t n = 0;
    struct stat st;

    if (d->inline_data != NULL) {
        buf = mcplex_malloc(d->inline_len + 1);
        memcpy(buf, d->inline_data, d->inline_len);
        buf[d->inline_len] = '\0';
        *out = buf;
        *out_len = d->inline_len;
        return 0;
    }
    if (d->filename == NULL) {
        snprintf(err, err_len, "%s: no filename or inline data", what);
        goto fail;
    }
    f = fopen(d->filename, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, err_len, "%s: cannot read '%s': %s", what, d->filename, strerror(errno));
        goto fail;
    }
    if (st.st_size < 0 || st.st_size > TLS_MAX_PEM_BYTES) {
        snprintf(err, err_len, "%s: '%s' is too large", what, d->filename);
        goto fail;
    }
    buf = mcplex_malloc((size_t)st.st_size + 1);
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (n != (size_t)st.st_size) {
        snprintf(err, err_len, "%s: short read of '%s'", what, d->filename);
        goto fail;
    }
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    *out_len = n;
    return 0;

fail:
    if (f != NULL)
        fclose(f);
    free(buf);
    return -1;
}

static bool
tls_data_set(const mcplex_data_source_t *d)
{
    return d->filename != NULL || d->inline_data != NULL;
}

/* Loads a PEM certificate chain (leaf first) and its private key into |ctx|. */
static int
tls_load_certificate(SSL_CTX *ctx, const mcplex_tls_certificate_t *c, char *err, size_t err_len)
{
    char ebuf[256];
    char *pem = NULL, *key_pem = NULL;
    size_t len = 0, key_len = 0;
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    if (mcplex_tls_data_read(&c->certificate_chain, "certificate_chain", &pem, &len, err, err_len) != 0)
        goto done;
    if (mcplex_tls_data_read(&c->private_key, "private_key", &key_pem, &key_len, err, err_len) != 0)
        goto done;
    bio = BIO_new_mem_buf(pem, (int)len);
    x = bio != NULL ? PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL) : NULL;
    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        snprintf(err, err_len, "certificate_chain: %s",
                 tls_error_text(ebuf, sizeof(ebuf), "no PEM certificate"));
        goto done;
    }
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            snprintf(err, err_len, "certificate_chain: %s", tls_error_text(ebuf, sizeof(ebuf), "bad chain"));
            x = NULL;
            goto done;
        }
    }
    ERR_clear_error(); /* the end of the PEM data */
    BIO_free(bio);
    bio = BIO_new_mem_buf(key_pem, (int)key_len);
    pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (pkey == NULL || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
        snprintf(err, err_len, "private_key: %s", tls_error_text(ebuf, sizeof(ebuf), "no PEM private key"));
        goto done;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "private_key: does not match the certificate");
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (pem != NULL)
        free(pem);
    if (key_pem != NULL) {
        memset(key_pem, 0, key_len);
        free(key_pem);
    }
    return rc;
}

/* Adds every PEM certificate of trusted_ca to |ctx|'s store. */
static int
tls_load_trusted_ca(SSL_CTX *ctx, const mcplex_data_source_t *d, char *err, size_t err_len)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    X509 *x;
    int n = 0;
    int rc = -1;

    if (mcplex_tls_data_read(d, "trusted_ca", &pem, &len, err, err_len) != 0)
        goto done;
    bio = BIO_new_mem_buf(pem, (int)len);
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x); /* duplicates are harmless */
        X509_free(x);
        n++;
    }
    if (n == 0) {
        snprintf(err, err_len, "trusted_ca: no PEM certificate");
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error();
    BIO_free(bio);
    free(pem);
    return rc;
}

/* Builds the RFC 7301 wire list. Returns 0, or -1 for an empty or over-long name. */
static int
tls_alpn_wire(char *const *names, size_t n, unsigned char **out, size_t *out_len)
{
    size_t len = 0, off = 0;
    unsigned char *w;

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l == 0 || l > 255)
            return -1;
        len += 1 + l;
    }
    w = mcplex_malloc(len ? len : 1);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        w[off++] = (unsigned char)l;
        memcpy(w + off, names[i], l);
        off += l;
    }
    *out = w;
    *out_len = len;
    return 0;
}

/* ALPN on the server: the first of our protocols the client also offers (Envoy's order). */
static int
tls_alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *in,
                   unsigned int in_len, void *arg)
{
    mcplex_tls_ctx_t *ctx = arg;

    (void)ssl;
    for (size_t i = 0; i < ctx->alpn_len;) {
        unsigned char l = ctx->alpn_wire[i];
        const unsigned char *ours = ctx->alpn_wire + i + 1;
        for (unsigned int k = 0; k < in_len;) {
            unsigned char cl = in[k];
            if (k + 1u + cl > in_len)
                break; /* malformed list: stop looking */
            if (cl == l && memcmp(in + k + 1, ours, l) == 0) {
                *out = in + k + 1;
                *out_len = cl;
                return SSL_TLSEXT_ERR_OK;
            }
            k += 1u + cl;
        }
        i += 1u + l;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int tls_servername_cb(SSL *ssl, int *alert, void *arg);

static SSL_CTX *
tls_ssl_ctx_new(const mcplex_tls_context_t *cfg, int *min_v, int *max_v, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    char ebuf[256];

    if (ctx == NULL) {
        snprintf(err, err_len, "SSL_CTX_new: %s", tls_error_text(ebuf, sizeof(ebuf), "failed"));
        return NULL;
    }
    *min_v = tls_version_number(cfg != NULL ? cfg->tls_minimum_protocol_version : MCPLEX_TLS_AUTO,
                                TLS1_2_VERSION);
    *max_v = tls_version_number(cfg != NULL ? cfg->tls_maximum_protocol_version : MCPLEX_TLS_AUTO,
                                TLS1_3_VERSION);
    if (*min_v > *max_v) {
        snprintf(err, err_len,
                 "tls_params: tls_minimum_protocol_version is above tls_maximum_protocol_version");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, (uint16_t)*min_v) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, (uint16_t)*max_v) != 1) {
        snprintf(err, err_len, "tls_params: %s", tls_error_text(ebuf, sizeof(ebuf), "unsupported version"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

static mcplex_tls_ctx_t *
tls_ctx_alloc(SSL_CTX *ssl_ctx, bool server, int min_v, int max_v)
{
    mcplex_tls_ctx_t *c = mcplex_calloc(1, sizeof(*c));

    atomic_init(&c->refs, 1);
    c->ssl_ctx = ssl_ctx;
    c->server = server;
    c->min_version = min_v;
    c->max_version = max_v;
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Contexts                                                                                    */
/* ------------------------------------------------------------------------------------------ */

const char *
mcplex_tls_library(void)
{
#ifdef OPENSSL_IS_BORINGSSL
    return "BoringSSL";
#else
    return OpenSSL_version(OPENSSL_VERSION);
#endif
}

mcplex_tls_ctx_t *
mcplex_tls_ctx_new_server(const mcplex_tls_context_t *cfg, const char *const *default_alpn,
                          size_t n_default_alpn, char *err, size_t err_len)
{
    mcplex_tls_ctx_t *c = NULL;
    SSL_CTX *ssl_ctx;
    int min_v, max_v;
    static const unsigned char sid_ctx[] = "mcplex";

    if (cfg == NULL || cfg->n_tls_certificates == 0) {
        snprintf(err, err_len, "common_tls_context.tls_certificates: a server certificate is required");
        return NULL;
    }
    if (cfg->require_client_certificate && !tls_data_set(&cfg->trusted_ca)) {
        snprintf(err, err_len,
                 "require_client_certificate needs common_tls_context.validation_context.trusted_ca");
        return NULL;
    }
    ssl_ctx = tls_ssl_ctx_new(cfg, &min_v, &max_v, err, err_len);
    if (ssl_ctx == NULL)
        return NULL;
    c = tls_ctx_alloc(ssl_ctx, true, min_v, max_v);
    if (tls_load_certificate(ssl_ctx, &cfg->tls_certificates[0], err, err_len) != 0)
        goto fail;
    if (tls_data_set(&cfg->trusted_ca)) {
        if (tls_load_trusted_ca(ssl_ctx, &cfg->trusted_ca, err, err_len) != 0)
            goto fail;
        int mode = SSL_VERIFY_PEER | (cfg->require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        SSL_CTX_set_verify(ssl_ctx, mode, NULL);
    }
    SSL_CTX_set_session_id_context(ssl_ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (cfg->n_alpn_protocols > 0) {
        if (tls_alpn_wire(cfg->alpn_protocols, cfg->n_alpn_protocols, &c->alpn_wire, &c->alpn_len) != 0) {
            snprintf(err, err_len, "common_tls_context.alpn_protocols: names must be 1 to 255 bytes");
            goto fail;
        }
    } else if (n_default_alpn > 0) {
        if (tls_alpn_wire((char *const *)default_alpn, n_default_alpn, &c->alpn_wire, &c->alpn_len) != 0) {
            snprintf(err, err_len, "default ALPN: names must be 1 to 255 bytes");
            goto fail;
        }
    }
    if (c->alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(ssl_ctx, tls_alpn_select_cb, c);
    SSL_CTX_set_tlsext_servername_callback(ssl_ctx, tls_servername_cb);
    return c;

fail:
    mcplex_tls_ctx_unref(c);
    return NULL;
}

mcplex_tls_ctx_t *
mcplex_tls_ctx_new_client(const mcplex_tls_context_t *cfg, char *err, size_t err_len)
{
    mcplex_tls_ctx_t *c = NULL;
    SSL_CTX *ssl_ctx;
    int min_v, max_v;

    ssl_ctx = tls_ssl_ctx_new(cfg, &min_v, &max_v, err, err_len);
    if (ssl_ctx == NULL)
        return NULL;
    c = tls_ctx_alloc(ssl_ctx, false, min_v, max_v);
    c->insecure = cfg != NULL && cfg->insecure;
    if (cfg != NULL && cfg->sni != NULL && cfg->sni[0] != '\0')
        c->sni = mcplex_strdup(cfg->sni);
    if (c->insecure) {
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (cfg != NULL && tls_data_set(&cfg->trusted_ca)) {
            if (tls_load_trusted_ca(ssl_ctx, &cfg->trusted_ca, err, err_len) != 0)
                goto fail;
        } else if (SSL_CTX_set_default_verify_paths(ssl_ctx) != 1) {
            mcplex_log_warn(TLS_LOG, "no system root certificates");
            ERR_clear_error();
        }
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    }
    if (cfg != NULL && cfg->n_tls_certificates > 0 &&
        tls_load_certificate(ssl_ctx, &cfg->tls_certificates[0], err, err_len) != 0)
        goto fail;
    if (cfg != NULL && cfg->n_alpn_protocols > 0) {
        if (tls_alpn_wire(cfg->alpn_protocols, cfg->n_alpn_protocols, &c->alpn_wire, &c->alpn_len) != 0) {
            snprintf(err, err_len, "common_tls_context.alpn_protocols: names must be 1 to 255 bytes");
            goto fail;
        }
        if (SSL_CTX_set_alpn_protos(ssl_ctx, c->alpn_wire, (unsigned)c->alpn_len) != 0) { /* 0 = success */
            snprintf(err, err_len, "common_tls_context.alpn_protocols: rejected by the TLS library");
            goto fail;
        }
    }
    return c;

fail:
    mcplex_tls_ctx_unref(c);
    return NULL;
}

mcplex_tls_ctx_t *
mcplex_tls_ctx_ref(mcplex_tls_ctx_t *ctx)
{
    if (ctx != NULL)
        atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

void
mcplex_tls_ctx_unref(mcplex_tls_ctx_t *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx->alpn_wire);
    free(ctx->sni);
    free(ctx);
}

size_t
mcplex_tls_server_name_match(const char *pattern, const char *server_name)
{
    size_t pl, nl;

    if (pattern == NULL || server_name == NULL)
        return 0;
    if (strcasecmp(pattern, server_name) == 0)
        return SIZE_MAX;
    pl = strlen(pattern);
    nl = strlen(server_name);
    if (pl < 3 || pattern[0] != '*' || pattern[1] != '.')
        return 0;
    /* "*.example.com": the name must be longer than ".example.com" and end with it. */
    if (nl <= pl - 1 || strcasecmp(server_name + (nl - (pl - 1)), pattern + 1) != 0)
        return 0;
    return pl;
}

/* ------------------------------------------------------------------------------------------ */
/* Connections: the pump                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void tls_sock_read_cb(struct bufferevent *bev, void *arg);
static void tls_sock_write_cb(struct bufferevent *bev, void *arg);
static void tls_sock_event_cb(struct bufferevent *bev, short what, void *arg);
static void tls_mine_read_cb(struct bufferevent *bev, void *arg);
static void tls_mine_write_cb(struct bufferevent *bev, void *arg);
static void tls_mine_event_cb(struct bufferevent *bev, short what, void *arg);

static void
tls_conn_destroy(tls_conn_t *c)
{
    mcplex_log_trace(TLS_LOG, "%s: closed", c->peer);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->ssl != NULL)
        SSL_free(c->ssl); /* frees both BIOs */
    if (c->sock != NULL)
        bufferevent_free(c->sock); /* closes the socket */
    if (c->theirs != NULL)
        bufferevent_free(c->theirs);
    if (c->mine != NULL)
        bufferevent_free(c->mine);
    mcplex_tls_ctx_unref(c->selected);
    mcplex_tls_ctx_unref(c->ctx);
    free(c);
}

/*
 * Ends the connection: the codec (if it has its end) gets BEV_EVENT_ERROR (|error|) or EOF, and
 * the connection is freed when the running callback returns. |why| is logged at debug level
 * (the handshake path logs its own failures at warn).
 */
static void
tls_conn_fail(tls_conn_t *c, bool error, const char *why)
{
    struct bufferevent *codec;

    if (c->dead)
        return;
    c->dead = true;
    if (why != NULL)
        mcplex_log_debug(TLS_LOG, "%s: %s", c->peer, why);
    codec = c->mine != NULL ? bufferevent_pair_get_partner(c->mine) : NULL;
    if (codec != NULL && c->theirs == NULL) {
        if (error)
            bufferevent_trigger_event(codec, BEV_EVENT_ERROR, 0);
        else
            (void)bufferevent_flush(c->mine, EV_WRITE, BEV_FINISHED);
    }
}

/* Moves whatever SSL produced into the socket's output. */
static void
tls_flush_wbio(tls_conn_t *c)
{
    char buf[TLS_RECORD_MAX];
    int n;

    while (BIO_ctrl_pending(c->wbio) > 0) {
        n = BIO_read(c->wbio, buf, sizeof(buf));
        if (n <= 0)
            break;
        bufferevent_write(c->sock, buf, (size_t)n);
    }
}

/* Sends FIN once close_notify and everything before it left the socket's output. */
static void
tls_maybe_fin(tls_conn_t *c)
{
    evutil_socket_t fd;

    if (!c->shut_sent || c->fin_sent || evbuffer_get_length(bufferevent_get_output(c->sock)) != 0)
        return;
    c->fin_sent = true;
    fd = bufferevent_getfd(c->sock);
    if (fd >= 0 && shutdown(fd, SHUT_WR) != 0)
        mcplex_log_debug(TLS_LOG, "%s: shutdown: %s", c->peer, strerror(errno));
}

/* Creates the pair; |mine| reads the codec's plaintext, the codec's end is |theirs|. */
static int
tls_conn_make_pair(tls_conn_t *c)
{
    struct bufferevent *pair[2];

    if (bufferevent_pair_new(c->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) != 0)
        return -1;
    c->mine = pair[0];
    c->theirs = pair[1];
    bufferevent_setcb(c->mine, tls_mine_read_cb, tls_mine_write_cb, tls_mine_event_cb, c);
    bufferevent_setwatermark(c->mine, EV_WRITE, TLS_HIGH_WATER / 2, 0);
    bufferevent_enable(c->mine, EV_READ | EV_WRITE);
    return 0;
}

/* Encrypts what the codec wrote, within the socket's high-water mark; half-closes when asked. */
static void
tls_pump_out(tls_conn_t *c)
{
    struct evbuffer *src, *sock_out;
    char ebuf[256];

    if (c->dead || !c->handshake_done || c->mine == NULL)
        return;
    src = bufferevent_get_input(c->mine);
    sock_out = bufferevent_get_output(c->sock);
    while (evbuffer_get_length(src) > 0 && evbuffer_get_length(sock_out) < TLS_HIGH_WATER) {
        size_t len = evbuffer_get_length(src);
        unsigned char *p;
        int n;

        if (len > TLS_RECORD_MAX)
            len = TLS_RECORD_MAX;
        p = evbuffer_pullup(src, (ev_ssize_t)len);
        n = SSL_write(c->ssl, p, (int)len);
        if (n <= 0) {
            tls_conn_fail(c, true, tls_error_text(ebuf, sizeof(ebuf), "SSL_write failed"));
            return;
        }
        evbuffer_drain(src, (size_t)n);
        tls_flush_wbio(c);
    }
    if (evbuffer_get_length(src) > 0) {
        if (!c->out_paused) {
            c->out_paused = true;
            bufferevent_disable(c->mine, EV_READ);
        }
        return;
    }
    if (c->shut_pending && !c->shut_sent) {
        (void)SSL_shutdown(c->ssl); /* queues close_notify; the peer's reply is not awaited */
        ERR_clear_error();
        tls_flush_wbio(c);
        c->shut_sent = true;
    }
    tls_maybe_fin(c);
}

/* Hands the peer's end of stream to the codec (EOF after the plaintext already delivered). */
static void
tls_deliver_eof(tls_conn_t *c)
{
    if (c->peer_closed)
        return;
    c->peer_closed = true;
    if (c->mine != NULL && bufferevent_pair_get_partner(c->mine) != NULL)
        (void)bufferevent_flush(c->mine, EV_WRITE, BEV_FINISHED);
    else
        tls_conn_fail(c, false, "peer closed");
}

static void
tls_handshake_done(tls_conn_t *c)
{
    mcplex_tls_ctx_t *used = c->selected != NULL ? c->selected : c->ctx;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    int version = SSL_version(c->ssl);
    mcplex_tls_info_t info;
    struct bufferevent *codec;

    c->handshake_done = true;
    evtimer_del(c->timer);
    if (c->server && c->tag == MCPLEX_TLS_TAG_NONE) { /* no SNI reached the callback */
        mcplex_log_warn(TLS_LOG, "%s: no SNI, and no filter chain serves connections without one", c->peer);
        tls_conn_fail(c, true, NULL);
        return;
    }
    /* A context picked by SNI may be stricter than the one the ClientHello was read with. */
    if (version < used->min_version || version > used->max_version) {
        mcplex_log_warn(TLS_LOG, "%s: %s is outside the filter chain's tls_params", c->peer,
                        SSL_get_version(c->ssl));
        tls_conn_fail(c, true, NULL);
        return;
    }
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn != NULL && alpn_len > 0 && alpn_len < sizeof(c->alpn)) {
        memcpy(c->alpn, alpn, alpn_len);
        c->alpn[alpn_len] = '\0';
    }
    mcplex_log_debug(TLS_LOG, "%s: handshake done (%s, alpn %s, sni %s)", c->peer, SSL_get_version(c->ssl),
                     c->alpn[0] ? c->alpn : "-", c->server_name[0] ? c->server_name : "-");
    if (!c->server) {
        codec = bufferevent_pair_get_partner(c->mine);
        if (codec != NULL)
            bufferevent_trigger_event(codec, BEV_EVENT_CONNECTED, 0);
        return;
    }
    if (tls_conn_make_pair(c) != 0) {
        tls_conn_fail(c, true, "no bufferevent pair");
        return;
    }
    codec = c->theirs;
    c->theirs = NULL; /* handed over */
    info.alpn = c->alpn[0] ? c->alpn : NULL;
    info.server_name = c->server_name[0] ? c->server_name : NULL;
    info.version = SSL_get_version(c->ssl);
    info.tag = c->tag;
    c->ready(c->ready_arg, codec, (const struct sockaddr *)&c->peer_addr, &info);
}

/* Moves ciphertext into SSL, drives the handshake, and decrypts into the codec's input. */
static void
tls_pump_in(tls_conn_t *c)
{
    struct evbuffer *src = bufferevent_get_input(c->sock);
    char ebuf[256];
    char buf[TLS_RECORD_MAX];

    if (c->dead)
        return;
    while (evbuffer_get_length(src) > 0 &&
           (c->mine == NULL || evbuffer_get_length(bufferevent_get_output(c->mine)) < TLS_HIGH_WATER)) {
        struct evbuffer_iovec v;
        int n;
        if (evbuffer_peek(src, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = BIO_write(c->rbio, v.iov_base, v.iov_len > INT_MAX ? INT_MAX : (int)v.iov_len);
        if (n <= 0) {
            tls_conn_fail(c, true, "BIO_write failed");
            return;
        }
        evbuffer_drain(src, (size_t)n);
        if (c->handshake_done)
            break; /* one chunk at a time once data flows: the loop below decides about more */
    }
    if (!c->handshake_done) {
        int r;
        if (c->server || c->connected) {
            r = SSL_do_handshake(c->ssl);
            tls_flush_wbio(c);
            if (r == 1) {
                tls_handshake_done(c);
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    long vr = SSL_get_verify_result(c->ssl);
#ifdef X509_V_ERR_INVALID_CALL
                    if (vr == X509_V_ERR_INVALID_CALL) /* BoringSSL: no verification ran */
                        vr = X509_V_OK;
#endif
                    const char *what = tls_error_text(ebuf, sizeof(ebuf), "handshake failed");
                    /* Downstream failures are the peers' business (scanners, old clients): info;
                     * an upstream one is ours to fix: warning. */
                    mcplex_log(c->server ? MCPLEX_LOG_INFO : MCPLEX_LOG_WARN, TLS_LOG,
                               "%s: TLS handshake failed: %s%s%s", c->peer, what, vr != X509_V_OK ? ": " : "",
                               vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
                    tls_conn_fail(c, true, NULL);
                    return;
                }
            }
        }
        if (!c->handshake_done || c->dead)
            return;
        tls_pump_out(c); /* client: the request the codec queued during the handshake */
    }
    while (!c->dead && !c->peer_closed && c->mine != NULL &&
           evbuffer_get_length(bufferevent_get_output(c->mine)) < TLS_HIGH_WATER) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            bufferevent_write(c->mine, buf, (size_t)n);
            continue;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            /* Need more ciphertext: feed the next chunk, if any. */
            if (evbuffer_get_length(src) > 0) {
                struct evbuffer_iovec v;
                int w;
                if (evbuffer_peek(src, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
                    goto out;
                w = BIO_write(c->rbio, v.iov_base, v.iov_len > INT_MAX ? INT_MAX : (int)v.iov_len);
                if (w <= 0) {
                    tls_conn_fail(c, true, "BIO_write failed");
                    goto out;
                }
                evbuffer_drain(src, (size_t)w);
                continue;
            }
            goto out;
        case SSL_ERROR_WANT_WRITE:
            goto out;
        case SSL_ERROR_ZERO_RETURN:
            tls_flush_wbio(c);
            tls_deliver_eof(c);
            goto out;
        default:
            tls_conn_fail(c, true, tls_error_text(ebuf, sizeof(ebuf), "SSL_read failed"));
            goto out;
        }
    }
out:
    if (c->dead)
        return;
    tls_flush_wbio(c); /* post-handshake messages (tickets, key updates) */
    if (c->mine != NULL && !c->peer_closed &&
        evbuffer_get_length(bufferevent_get_output(c->mine)) >= TLS_HIGH_WATER && !c->in_paused) {
        c->in_paused = true;
        bufferevent_disable(c->sock, EV_READ);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Callbacks                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
    tls_conn_t *c = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    mcplex_tls_ctx_t *picked;
    size_t tag = 0;

    (void)arg;
    if (c == NULL || !c->server)
        return SSL_TLSEXT_ERR_OK;
    if (name == NULL || name[0] == '\0') {
        if (c->tag != MCPLEX_TLS_TAG_NONE)
            return SSL_TLSEXT_ERR_OK; /* no SNI: the context picked at the start serves */
        mcplex_log_warn(TLS_LOG, "%s: no SNI, and no filter chain serves connections without one", c->peer);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    snprintf(c->server_name, sizeof(c->server_name), "%s", name);
    picked = c->select(c->select_arg, name, &tag);
    if (picked == NULL || tag == MCPLEX_TLS_TAG_NONE) {
        mcplex_log_info(TLS_LOG, "%s: no filter chain for server name '%s'", c->peer, name);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    c->tag = tag;
    if (picked != c->ctx) {
        SSL_set_SSL_CTX(ssl, picked->ssl_ctx);
        /* SSL_set_SSL_CTX switches certificates; verification and versions are per SSL. */
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(picked->ssl_ctx), NULL);
        SSL_set_min_proto_version(ssl, (uint16_t)picked->min_version);
        SSL_set_max_proto_version(ssl, (uint16_t)picked->max_version);
        mcplex_tls_ctx_unref(c->selected);
        c->selected = mcplex_tls_ctx_ref(picked);
    }
    return SSL_TLSEXT_ERR_OK;
}

static void
tls_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    tls_conn_t *c = arg;

    (void)fd;
    (void)what;
    mcplex_log(c->server ? MCPLEX_LOG_INFO : MCPLEX_LOG_WARN, TLS_LOG, "%s: TLS handshake timed out",
               c->peer);
    tls_conn_fail(c, true, NULL);
    tls_conn_destroy(c);
}

static void
tls_sock_read_cb(struct bufferevent *bev, void *arg)
{
    tls_conn_t *c = arg;

    (void)bev;
    tls_pump_in(c);
    if (c->dead)
        tls_conn_destroy(c);
}

static void
tls_sock_write_cb(struct bufferevent *bev, void *arg)
{
    tls_conn_t *c = arg;

    (void)bev;
    if (c->out_paused && !c->dead) {
        c->out_paused = false;
        bufferevent_enable(c->mine, EV_READ);
    }
    tls_pump_out(c);
    tls_maybe_fin(c);
    if (c->dead)
        tls_conn_destroy(c);
}

static void
tls_sock_event_cb(struct bufferevent *bev, short what, void *arg)
{
    tls_conn_t *c = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char why[160];

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        (void)SSL_do_handshake(c->ssl); /* the ClientHello */
        ERR_clear_error();
        tls_flush_wbio(c);
    } else if (what & BEV_EVENT_EOF) {
        tls_pump_in(c);
        if (!c->handshake_done) {
            mcplex_log_debug(TLS_LOG, "%s: closed during the TLS handshake", c->peer);
            tls_conn_fail(c, true, NULL);
        } else {
            tls_deliver_eof(c);
        }
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        snprintf(why, sizeof(why), "socket error: %s", evutil_socket_error_to_string(err));
        if (!c->server && !c->connected)
            mcplex_log_debug(TLS_LOG, "%s: connect failed: %s", c->peer, evutil_socket_error_to_string(err));
        tls_conn_fail(c, true, why);
    }
    if (c->dead)
        tls_conn_destroy(c);
}

static void
tls_mine_read_cb(struct bufferevent *bev, void *arg)
{
    tls_conn_t *c = arg;

    (void)bev;
    tls_pump_out(c);
    if (c->dead)
        tls_conn_destroy(c);
}

/* The codec took plaintext: read the socket again if we had paused. */
static void
tls_mine_write_cb(struct bufferevent *bev, void *arg)
{
    tls_conn_t *c = arg;

    (void)bev;
    if (c->in_paused && !c->dead) {
        c->in_paused = false;
        bufferevent_enable(c->sock, EV_READ);
        tls_pump_in(c);
    }
    if (c->dead)
        tls_conn_destroy(c);
}

/* EOF on our end: the codec half-closed (EOF|READING) or freed its end (EOF|READING|WRITING). */
static void
tls_mine_event_cb(struct bufferevent *bev, short what, void *arg)
{
    tls_conn_t *c = arg;

    if (what & BEV_EVENT_EOF) {
        if ((what & BEV_EVENT_WRITING) || bufferevent_pair_get_partner(bev) == NULL) {
            c->dead = true; /* the codec is gone: nothing to tell */
        } else {
            c->shut_pending = true;
            tls_pump_out(c);
        }
    }
    if (c->dead)
        tls_conn_destroy(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections: API                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* A new connection on |sock| (callbacks taken over), or NULL (|sock| untouched). */
static tls_conn_t *
tls_conn_new(struct event_base *base, struct bufferevent *sock, mcplex_tls_ctx_t *ctx, bool server,
             uint32_t handshake_timeout_ms)
{
    tls_conn_t *c = mcplex_calloc(1, sizeof(*c));
    struct timeval tv;

    c->base = base;
    c->sock = sock;
    c->server = server;
    c->ctx = mcplex_tls_ctx_ref(ctx);
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    c->timer = evtimer_new(base, tls_timer_cb, c);
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL || c->timer == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        ERR_clear_error();
        c->rbio = c->wbio = NULL;
        c->sock = NULL; /* not taken */
        tls_conn_destroy(c);
        return NULL;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    if (server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    if (handshake_timeout_ms == 0)
        handshake_timeout_ms = TLS_DEFAULT_HANDSHAKE_MS;
    tv.tv_sec = handshake_timeout_ms / 1000;
    tv.tv_usec = (handshake_timeout_ms % 1000) * 1000;
    evtimer_add(c->timer, &tv);
    bufferevent_setcb(sock, tls_sock_read_cb, tls_sock_write_cb, tls_sock_event_cb, c);
    bufferevent_setwatermark(sock, EV_WRITE, TLS_HIGH_WATER / 2, 0);
    return c;
}

int
mcplex_tls_server_start(struct event_base *base, struct bufferevent *sock, const struct sockaddr *peer,
                        mcplex_tls_select_fn select, void *select_arg, mcplex_tls_ready_fn ready,
                        void *ready_arg, uint32_t handshake_timeout_ms)
{
    tls_conn_t *c = NULL;
    mcplex_tls_ctx_t *initial;
    size_t tag = 0;
    char p[64];

    mcplex_conn_io_format_peer(p, sizeof(p), peer);
    initial = select(select_arg, NULL, &tag);
    if (initial == NULL || !initial->server) {
        mcplex_log_warn(TLS_LOG, "%s: no TLS filter chain", p);
        bufferevent_free(sock);
        return -1;
    }
    c = tls_conn_new(base, sock, initial, true, handshake_timeout_ms);
    if (c == NULL) {
        mcplex_log_error(TLS_LOG, "%s: cannot set up TLS", p);
        bufferevent_free(sock);
        return -1;
    }
    snprintf(c->peer, sizeof(c->peer), "%s", p);
    c->tag = tag;
    c->select = select;
    c->select_arg = select_arg;
    c->ready = ready;
    c->ready_arg = ready_arg;
    if (peer != NULL) {
        size_t len = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)
            memcpy(&c->peer_addr, peer, len);
    }
    bufferevent_enable(sock, EV_READ | EV_WRITE);
    /* A ClientHello already read (by a transport_protocol inspector) is handled from the loop. */
    if (evbuffer_get_length(bufferevent_get_input(sock)) > 0)
        bufferevent_trigger(sock, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return 0;
}

struct bufferevent *
mcplex_tls_client_wrap(struct event_base *base, struct bufferevent *sock, int connected,
                       mcplex_tls_ctx_t *ctx, const char *server_name, uint32_t handshake_timeout_ms)
{
    tls_conn_t *c;
    const char *name = server_name != NULL ? server_name : ctx->sni;
    struct bufferevent *codec;

    c = tls_conn_new(base, sock, ctx, false, handshake_timeout_ms);
    if (c == NULL) {
        mcplex_log_error(TLS_LOG, "upstream %s: cannot set up TLS", name != NULL ? name : "");
        bufferevent_free(sock);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), "upstream %s", name != NULL ? name : "");
    if (tls_conn_make_pair(c) != 0)
        goto fail;
    if (name != NULL && name[0] != '\0') {
        struct in6_addr a6;
        struct in_addr a4;
        bool ip = inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
        snprintf(c->server_name, sizeof(c->server_name), "%s", name);
        /* RFC 6066: no IP literals in SNI. */
        if (!ip && SSL_set_tlsext_host_name(c->ssl, name) != 1)
            goto fail;
        if (!ctx->insecure) {
            X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
            int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                        : X509_VERIFY_PARAM_set1_host(param, name, strlen(name));
            if (ok != 1)
                goto fail;
        }
    }
    c->connected = connected != 0;
    bufferevent_enable(sock, EV_READ | EV_WRITE);
    if (c->connected) {
        (void)SSL_do_handshake(c->ssl); /* the ClientHello */
        ERR_clear_error();
        tls_flush_wbio(c);
    }
    codec = c->theirs;
    c->theirs = NULL; /* the codec's from now on */
    return codec;

fail:
    {
        char ebuf[256];
        mcplex_log_error(TLS_LOG, "%s: cannot set up TLS: %s", c->peer,
                         tls_error_text(ebuf, sizeof(ebuf), "failed"));
    }
    tls_conn_destroy(c); /* frees the socket and both pair ends */
    return NULL;
}
