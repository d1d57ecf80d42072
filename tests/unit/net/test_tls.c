/*
 * test_tls.c - the TLS layer (src/net/tls.c) and the conn_io seam (src/net/conn_io.c): real
 * handshakes over socketpairs, server and client both on one event_base, certificates made by
 * the openssl CLI at test start under a temporary directory. Built against OpenSSL 3 by
 * default and against BoringSSL with -DMCPLEX_TLS_BORINGSSL=ON (the same source).
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "net/conn_io.h"
#include "net/tls.h"

static char g_dir[256];

/* ---- certificates --------------------------------------------------------------------------- */

static void
path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%.255s/%.63s", g_dir, name);
}

/* Runs a shell command in g_dir; fails the test on error. */
static void
sh(const char *fmt, ...)
{
    char cmd[2048], full[2400 + 256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", g_dir, cmd);
    if (system(full) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        abort();
    }
}

/* A key and certificate <name>.key/.crt for |cn| with |san|, signed by <ca>. */
static void
make_cert(const char *name, const char *cn, const char *san, const char *ca)
{
    sh("printf 'subjectAltName=%s\\n' > %s.ext && "
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s.key -out %s.csr "
       "-subj /CN=%s && "
       "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial -out %s.crt -days 2 "
       "-extfile %s.ext",
       san, name, name, name, cn, name, ca, ca, name, name);
}

static int
setup_certs(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "%s/mcplex-tls-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt "
       "-days 2 -subj /CN=mcplex-test-ca");
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout evil.key "
       "-out evil.crt "
       "-days 2 -subj /CN=other-ca");
    make_cert("a", "a.example.com", "DNS:a.example.com,DNS:localhost,IP:127.0.0.1", "ca");
    make_cert("b", "b.example.com", "DNS:b.example.com", "ca");
    make_cert("client", "client", "DNS:client", "ca");
    make_cert("stranger", "stranger", "DNS:stranger", "evil");
    signal(SIGPIPE, SIG_IGN);
    mcplex_log_set_level(getenv("MCPLEX_TEST_DEBUG") ? MCPLEX_LOG_TRACE : MCPLEX_LOG_CRITICAL);
    return 0;
}

static int
teardown_certs(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Fills a config whose strings point into |paths| (4 entries of PATH_MAX). */
typedef struct cfg_buf {
    mcplex_tls_context_t cfg;
    mcplex_tls_certificate_t cert;
    char chain[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    char *alpn[4];
} cfg_buf_t;

static mcplex_tls_context_t *
cfg_init(cfg_buf_t *b, const char *cert, const char *ca)
{
    char name[64];

    memset(b, 0, sizeof(*b));
    if (cert != NULL) {
        snprintf(name, sizeof(name), "%s.crt", cert);
        path_of(b->chain, sizeof(b->chain), name);
        snprintf(name, sizeof(name), "%s.key", cert);
        path_of(b->key, sizeof(b->key), name);
        b->cert.certificate_chain.filename = b->chain;
        b->cert.private_key.filename = b->key;
        b->cfg.tls_certificates = &b->cert;
        b->cfg.n_tls_certificates = 1;
    }
    if (ca != NULL) {
        snprintf(name, sizeof(name), "%s.crt", ca);
        path_of(b->ca, sizeof(b->ca), name);
        b->cfg.trusted_ca.filename = b->ca;
    }
    return &b->cfg;
}

static mcplex_tls_ctx_t *
server_ctx(mcplex_tls_context_t *cfg)
{
    static const char *const dflt[] = {"h2", "http/1.1"};
    char err[256] = "";
    mcplex_tls_ctx_t *c = mcplex_tls_ctx_new_server(cfg, dflt, 2, err, sizeof(err));

    if (c == NULL)
        fprintf(stderr, "server ctx: %s\n", err);
    assert_non_null(c);
    return c;
}

static mcplex_tls_ctx_t *
client_ctx(mcplex_tls_context_t *cfg)
{
    char err[256] = "";
    mcplex_tls_ctx_t *c = mcplex_tls_ctx_new_client(cfg, err, sizeof(err));

    if (c == NULL)
        fprintf(stderr, "client ctx: %s\n", err);
    assert_non_null(c);
    return c;
}

/* ---- one exchange ------------------------------------------------------------------------------ */

typedef struct run {
    struct event_base *base;
    mcplex_tls_ctx_t *sctx[2]; /* [0]: default / a.example.com, [1]: b.example.com */
    int select_null;           /* the select callback refuses every name */
    struct bufferevent *server_plain;
    struct bufferevent *client_plain;
    char alpn[32];
    char sni[128];
    char version[16];
    size_t tag;
    int ready;
    int client_connected;
    int client_error;
    int client_eof;
    int server_eof;
    size_t payload;      /* bytes the client sends */
    size_t echoed;       /* bytes the client got back */
    size_t sent;
    bool done;
} run_t;

static mcplex_tls_ctx_t *
select_cb(void *arg, const char *server_name, size_t *tag)
{
    run_t *r = arg;

    if (r->select_null)
        return NULL;
    if (server_name != NULL && r->sctx[1] != NULL &&
        mcplex_tls_server_name_match("b.example.com", server_name)) {
        *tag = 2;
        return r->sctx[1];
    }
    if (server_name != NULL && strcmp(server_name, "nobody.test") == 0)
        return NULL;
    *tag = 1;
    return r->sctx[0];
}

static void
server_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    /* Echo. */
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void
server_event(struct bufferevent *bev, short what, void *arg)
{
    run_t *r = arg;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        r->server_eof++;
        mcplex_conn_io_free(bev);
        r->server_plain = NULL;
    }
}

static void
ready_cb(void *arg, struct bufferevent *plaintext, const struct sockaddr *peer, const mcplex_tls_info_t *info)
{
    run_t *r = arg;

    (void)peer;
    r->ready++;
    r->tag = info->tag;
    snprintf(r->alpn, sizeof(r->alpn), "%s", info->alpn ? info->alpn : "");
    snprintf(r->sni, sizeof(r->sni), "%s", info->server_name ? info->server_name : "");
    snprintf(r->version, sizeof(r->version), "%s", info->version ? info->version : "");
    r->server_plain = plaintext;
    bufferevent_setcb(plaintext, server_read, NULL, server_event, r);
    bufferevent_enable(plaintext, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(plaintext)) > 0)
        server_read(plaintext, r);
}

static void
client_send_more(run_t *r)
{
    char chunk[8192];

    while (r->sent < r->payload && evbuffer_get_length(bufferevent_get_output(r->client_plain)) < 65536) {
        size_t n = r->payload - r->sent < sizeof(chunk) ? r->payload - r->sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)('a' + (r->sent + i) % 26);
        bufferevent_write(r->client_plain, chunk, n);
        r->sent += n;
    }
}

static void
client_read(struct bufferevent *bev, void *arg)
{
    run_t *r = arg;
    char buf[16384];
    size_t n;

    while ((n = bufferevent_read(bev, buf, sizeof(buf))) > 0) {
        for (size_t i = 0; i < n; i++)
            assert_int_equal(buf[i], (char)('a' + (r->echoed + i) % 26));
        r->echoed += n;
    }
    if (r->echoed == r->payload) {
        /* All back: half-close, then the server's EOF ends the run. */
        mcplex_conn_io_shutdown_write(bev);
    }
}

static void
client_write(struct bufferevent *bev, void *arg)
{
    run_t *r = arg;

    (void)bev;
    if (r->client_connected)
        client_send_more(r);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
    run_t *r = arg;

    if (what & BEV_EVENT_CONNECTED) {
        r->client_connected = 1;
        client_send_more(r);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        r->client_error = 1;
    if (what & BEV_EVENT_EOF)
        r->client_eof = 1;
    mcplex_conn_io_free(bev);
    r->client_plain = NULL;
    r->done = true;
    event_base_loopexit(r->base, NULL);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    run_t *r = arg;

    (void)fd;
    (void)what;
    event_base_loopexit(r->base, NULL);
}

/*
 * Runs one connection: a TLS server with |r|'s contexts and a TLS client with |cctx| naming
 * |server_name|; the client sends |payload| bytes, expects them echoed, half-closes.
 */
static void
run_exchange(run_t *r, mcplex_tls_ctx_t *cctx, const char *server_name, size_t payload)
{
    int sv[2];
    struct bufferevent *s, *c;
    struct event *t;
    struct timeval tv = {10, 0};

    r->base = event_base_new();
    r->payload = payload;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    s = bufferevent_socket_new(r->base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    c = bufferevent_socket_new(r->base, sv[1], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    assert_int_equal(mcplex_tls_server_start(r->base, s, NULL, select_cb, r, ready_cb, r, 5000), 0);
    r->client_plain = mcplex_tls_client_wrap(r->base, c, 1, cctx, server_name, 5000);
    assert_non_null(r->client_plain);
    bufferevent_setcb(r->client_plain, client_read, client_write, client_event, r);
    bufferevent_enable(r->client_plain, EV_READ | EV_WRITE);
    t = evtimer_new(r->base, timeout_cb, r);
    evtimer_add(t, &tv);
    event_base_dispatch(r->base);
    /* Let the server side finish its close. */
    tv.tv_sec = 0;
    tv.tv_usec = 50000;
    evtimer_add(t, &tv);
    event_base_dispatch(r->base);
    if (r->client_plain != NULL)
        mcplex_conn_io_free(r->client_plain);
    if (r->server_plain != NULL)
        mcplex_conn_io_free(r->server_plain);
    /* The TLS connections free themselves on the EOF events of the frees above. */
    tv.tv_usec = 20000;
    evtimer_add(t, &tv);
    event_base_dispatch(r->base);
    event_free(t);
    event_base_free(r->base);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_handshake_and_alpn(void **state)
{
    cfg_buf_t sb, cb;
    run_t r;
    mcplex_tls_ctx_t *cctx;
    char *h1[] = {"http/1.1"};
    char *both[] = {"h2", "http/1.1"};
    char *other[] = {"spdy/3"};

    (void)state;
    /* Client offers only http/1.1: the server's h2-first list still agrees on http/1.1. */
    memset(&r, 0, sizeof(r));
    r.sctx[0] = server_ctx(cfg_init(&sb, "a", NULL));
    cfg_init(&cb, NULL, "ca");
    cb.cfg.alpn_protocols = h1;
    cb.cfg.n_alpn_protocols = 1;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "localhost", 100000);
    assert_int_equal(r.ready, 1);
    assert_string_equal(r.alpn, "http/1.1");
    assert_int_equal(r.echoed, 100000);
    assert_int_equal(r.client_error, 0);
    assert_int_equal(r.client_eof, 1);
    mcplex_tls_ctx_unref(cctx);

    /* Both: the server's preference (h2) wins. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cb.cfg.alpn_protocols = both;
    cb.cfg.n_alpn_protocols = 2;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "localhost", 10);
    assert_string_equal(r.alpn, "h2");
    assert_int_equal(r.echoed, 10);
    mcplex_tls_ctx_unref(cctx);

    /* No overlap: no ALPN, the handshake still succeeds (Envoy's behaviour). */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cb.cfg.alpn_protocols = other;
    cb.cfg.n_alpn_protocols = 1;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "127.0.0.1", 10);
    assert_int_equal(r.ready, 1);
    assert_string_equal(r.alpn, "");
    assert_int_equal(r.echoed, 10);
    mcplex_tls_ctx_unref(cctx);

    /* Wrong name: the client refuses a.example.com's certificate for "b.example.com". */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cb.cfg.n_alpn_protocols = 0;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "b.example.com", 10);
    assert_int_equal(r.client_error, 1);
    assert_int_equal(r.echoed, 0);
    mcplex_tls_ctx_unref(cctx);
    mcplex_tls_ctx_unref(r.sctx[0]);
}

static void
test_large_transfer_backpressure(void **state)
{
    cfg_buf_t sb, cb;
    run_t r;
    mcplex_tls_ctx_t *cctx;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.sctx[0] = server_ctx(cfg_init(&sb, "a", NULL));
    cctx = client_ctx(cfg_init(&cb, NULL, "ca"));
    run_exchange(&r, cctx, "localhost", 8 * 1024 * 1024);
    assert_int_equal(r.echoed, 8 * 1024 * 1024);
    assert_int_equal(r.client_error, 0);
    mcplex_tls_ctx_unref(cctx);
    mcplex_tls_ctx_unref(r.sctx[0]);
}

static void
test_sni_picks_certificate(void **state)
{
    cfg_buf_t sa, sb, cb;
    run_t r;
    mcplex_tls_ctx_t *cctx;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.sctx[0] = server_ctx(cfg_init(&sa, "a", NULL));
    r.sctx[1] = server_ctx(cfg_init(&sb, "b", NULL));
    cctx = client_ctx(cfg_init(&cb, NULL, "ca"));
    /* The client checks the name, so only b's certificate lets this handshake finish. */
    run_exchange(&r, cctx, "b.example.com", 1000);
    assert_int_equal(r.ready, 1);
    assert_int_equal(r.tag, 2);
    assert_string_equal(r.sni, "b.example.com");
    assert_int_equal(r.echoed, 1000);

    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    run_exchange(&r, cctx, "a.example.com", 1000);
    assert_int_equal(r.tag, 1);
    assert_int_equal(r.echoed, 1000);

    /* A name no chain serves: unrecognized_name. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    run_exchange(&r, cctx, "nobody.test", 10);
    assert_int_equal(r.ready, 0);
    assert_int_equal(r.client_error, 1);
    mcplex_tls_ctx_unref(cctx);
    mcplex_tls_ctx_unref(r.sctx[0]);
    mcplex_tls_ctx_unref(r.sctx[1]);

    /* Wildcards. */
    assert_true(mcplex_tls_server_name_match("*.example.com", "x.example.com") > 0);
    assert_true(mcplex_tls_server_name_match("*.example.com", "y.x.example.com") > 0);
    assert_int_equal(mcplex_tls_server_name_match("*.example.com", "example.com"), 0);
    assert_int_equal(mcplex_tls_server_name_match("*.example.com", "xexample.com"), 0);
    assert_true(mcplex_tls_server_name_match("A.Example.com", "a.example.COM") == SIZE_MAX);
    assert_true(mcplex_tls_server_name_match("*.b.example.com", "x.b.example.com") >
                mcplex_tls_server_name_match("*.example.com", "x.b.example.com"));
}

static void
test_client_certificates(void **state)
{
    cfg_buf_t sb, cb;
    run_t r;
    mcplex_tls_ctx_t *cctx;
    char err[256];

    (void)state;
    memset(&r, 0, sizeof(r));
    cfg_init(&sb, "a", "ca");
    sb.cfg.require_client_certificate = 1;
    r.sctx[0] = server_ctx(&sb.cfg);

    /* No client certificate: refused. */
    cctx = client_ctx(cfg_init(&cb, NULL, "ca"));
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 0);
    assert_int_equal(r.echoed, 0);
    mcplex_tls_ctx_unref(cctx);

    /* One from the trusted CA: accepted. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cctx = client_ctx(cfg_init(&cb, "client", "ca"));
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 1);
    assert_int_equal(r.echoed, 10);
    mcplex_tls_ctx_unref(cctx);

    /* One from another CA: refused. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cctx = client_ctx(cfg_init(&cb, "stranger", "ca"));
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 0);
    assert_int_equal(r.echoed, 0);
    mcplex_tls_ctx_unref(cctx);
    mcplex_tls_ctx_unref(r.sctx[0]);

    /* require_client_certificate without trusted_ca is a config error. */
    cfg_init(&sb, "a", NULL);
    sb.cfg.require_client_certificate = 1;
    assert_null(mcplex_tls_ctx_new_server(&sb.cfg, NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "trusted_ca"));
    /* A key that does not match the certificate. */
    cfg_init(&sb, "a", NULL);
    path_of(sb.key, sizeof(sb.key), "b.key");
    assert_null(mcplex_tls_ctx_new_server(&sb.cfg, NULL, 0, err, sizeof(err)));
    /* A missing file. */
    cfg_init(&sb, "nope", NULL);
    assert_null(mcplex_tls_ctx_new_server(&sb.cfg, NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read"));
}

static void
test_versions(void **state)
{
    cfg_buf_t sb, cb;
    run_t r;
    mcplex_tls_ctx_t *cctx;
    char err[256];

    (void)state;
    /* Server at most 1.2, client at least 1.3: no common version. */
    memset(&r, 0, sizeof(r));
    cfg_init(&sb, "a", NULL);
    sb.cfg.tls_maximum_protocol_version = MCPLEX_TLS_V1_2;
    r.sctx[0] = server_ctx(&sb.cfg);
    cfg_init(&cb, NULL, "ca");
    cb.cfg.tls_minimum_protocol_version = MCPLEX_TLS_V1_3;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 0);
    assert_int_equal(r.client_error, 1);
    mcplex_tls_ctx_unref(cctx);

    /* A default client agrees on 1.2 with it. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cctx = client_ctx(cfg_init(&cb, NULL, "ca"));
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 1);
    assert_string_equal(r.version, "TLSv1.2");
    assert_int_equal(r.echoed, 10);
    mcplex_tls_ctx_unref(r.sctx[0]);

    /* Server 1.3 only, default client: 1.3. */
    memset(&r, 0, sizeof(r));
    cfg_init(&sb, "a", NULL);
    sb.cfg.tls_minimum_protocol_version = MCPLEX_TLS_V1_3;
    r.sctx[0] = server_ctx(&sb.cfg);
    run_exchange(&r, cctx, "localhost", 10);
    assert_string_equal(r.version, "TLSv1.3");
    mcplex_tls_ctx_unref(cctx);

    /* Client at most 1.2 against it: refused. */
    memset(&r.ready, 0, sizeof(r) - offsetof(run_t, ready));
    r.server_plain = r.client_plain = NULL;
    cfg_init(&cb, NULL, "ca");
    cb.cfg.tls_maximum_protocol_version = MCPLEX_TLS_V1_2;
    cctx = client_ctx(&cb.cfg);
    run_exchange(&r, cctx, "localhost", 10);
    assert_int_equal(r.ready, 0);
    mcplex_tls_ctx_unref(cctx);
    mcplex_tls_ctx_unref(r.sctx[0]);

    /* min above max is a config error. */
    cfg_init(&sb, "a", NULL);
    sb.cfg.tls_minimum_protocol_version = MCPLEX_TLS_V1_3;
    sb.cfg.tls_maximum_protocol_version = MCPLEX_TLS_V1_2;
    assert_null(mcplex_tls_ctx_new_server(&sb.cfg, NULL, 0, err, sizeof(err)));
}

/* Raw bytes instead of a ClientHello: the server closes, never calls ready, does not crash. */
static void
garbage_once(const void *bytes, size_t len, bool close_after)
{
    cfg_buf_t sb;
    run_t r;
    int sv[2];
    struct bufferevent *s;
    char buf[4096];
    ssize_t n;
    struct timeval tv = {0, 20000};
    int rounds = 0;

    memset(&r, 0, sizeof(r));
    r.base = event_base_new();
    r.sctx[0] = server_ctx(cfg_init(&sb, "a", NULL));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    s = bufferevent_socket_new(r.base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    assert_int_equal(mcplex_tls_server_start(r.base, s, NULL, select_cb, &r, ready_cb, &r, 500), 0);
    assert_int_equal(write(sv[1], bytes, len), (ssize_t)len);
    if (close_after)
        shutdown(sv[1], SHUT_WR);
    /* Loop until the server closed its side (read returns 0), at most ~2 s. */
    for (;;) {
        event_base_loopexit(r.base, &tv);
        event_base_dispatch(r.base);
        n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        assert_true(++rounds < 100);
    }
    assert_int_equal(r.ready, 0);
    close(sv[1]);
    event_base_free(r.base);
    mcplex_tls_ctx_unref(r.sctx[0]);
}

static void
test_garbage_instead_of_client_hello(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    static const unsigned char bad_record[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00,
                                               0x00, 0x05, 1,    2,    3,    4,    5};
    unsigned char noise[3000];

    (void)state;
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (unsigned char)(i * 131 + 7);
    garbage_once(http, sizeof(http) - 1, false);
    garbage_once(bad_record, sizeof(bad_record), false);
    garbage_once(noise, sizeof(noise), false);
    /* A truncated ClientHello and a FIN: closed during the handshake. */
    garbage_once(bad_record, 5, true);
    /* Nothing at all until the handshake timeout (500 ms). */
    garbage_once("", 0, false);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_alpn),
        cmocka_unit_test(test_large_transfer_backpressure),
        cmocka_unit_test(test_sni_picks_certificate),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_garbage_instead_of_client_hello),
    };

    fprintf(stderr, "TLS library: %s\n", mcplex_tls_library());
    return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
