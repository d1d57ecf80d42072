/*
 * test_transport_sse.c - the legacy HTTP+SSE target transport (mcp/transport_sse.c) against real
 * servers: the npm server-everything in "sse" mode (GET /sse, POST /message?sessionId=...) for a
 * whole MCP exchange, and a small node server for what server-everything does not do (relative
 * and absolute endpoint URLs, another origin, no endpoint event, a stream that ends, hanging and
 * failing POSTs, batches). Also the RFC 3986 resolution of endpoint URLs (pure code). The servers
 * run in their own process groups on 127.0.0.1 and are stopped (and reaped) by the group teardown.
 * Thread: the test's main thread runs one event_base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/mem.h"
#include "config/model.h"
#include "mcp/transport.h"
#include "upstream/http_client.h"

extern char **environ;

#define MAX_MSGS 64
#define MAX_FAILS 16

typedef struct failure {
    uint64_t tag;
    int status;
    char reason[256];
} failure_t;

typedef struct owner {
    mcplex_transport_t *t;
    char *msgs[MAX_MSGS];
    size_t n_msgs;
    failure_t fails[MAX_FAILS];
    size_t n_fails;
    int n_closed;
    char closed_reason[512];
    int close_on_message;
    int close_on_closed;
    int owner_closed;
    int late_callbacks;
} owner_t;

static struct event_base *base;
static struct event *tick;
static pid_t everything_pid = -1, fixture_pid = -1;
static uint16_t everything_port, fixture_port, dead_port;
static mcplex_http_pool_t *everything_pool, *fixture_pool, *dead_pool;

/* The legacy-SSE fixture: GET <path> opens a stream whose endpoint event depends on the path;
 * POST /msg?s=<stream> answers 202 and writes the reply (echoing what it saw) on that stream. */
static const char fixture_js[] =
    "const http=require('http');let n=0;const streams={};"
    "http.createServer((req,res)=>{const u=new URL(req.url,'http://x');let b='';req.on('data',c=>b+=c);re"
    "q.on('end',()=>{"
    "if(req.method==='GET'){const k=String(++n);"
    "if(u.pathname==='/notsse'){res.writeHead(200,{'content-type':'text/plain'});res.end('hello');return;}"
    "if(u.pathname==='/missing'){res.writeHead(404,{'content-type':'text/plain'});res.end('no such stream"
    "\\nx');return;}"
    "res.writeHead(200,{'content-type':'text/event-stream','cache-control':'no-cache'});res.write(': hi"
    "\\n\\n');streams[k]=res;"
    "const ep={'/dir/sse':'msg?s='+k,'/abs':'http://127.0.0.1:'+process.env.PORT+'/x/../msg?s='+k+'#frag',"
    "'/evil':'http://evil.example/msg?s='+k,'/hang-sse':'/hang?s='+k,'/err-sse':'/err?s='+k,'/end':'/msg?"
    "s='+k}[u.pathname];"
    "if(ep!==undefined)setTimeout(()=>res.write('event: endpoint\\ndata: '+ep+'\\n\\n'),u.pathname==='/di"
    "r/sse'?200:0);"
    "if(u.pathname==='/end')setTimeout(()=>res.end(),300);return;}"
    "if(u.pathname==='/hang')return;"
    "if(u.pathname==='/err'){res.writeHead(500,{'content-type':'text/plain'});res.end('boom\\nmore');return;}"
    "const s=streams[u.searchParams.get('s')];if(!s){res.writeHead(404);res.end('unknown session');return;}"
    "res.writeHead(202);res.end('Accepted');const m=JSON.parse(b);"
    "const r={jsonrpc:'2.0',id:m.id,result:{path:req.url,pv:req.headers['mcp-protocol-version']||null,"
    "host:req.headers.host,extra:req.headers['x-extra']||null}};"
    "if(m.method==='batch')s.write('data: ['+JSON.stringify(r)+',{\"jsonrpc\":\"2.0\",\"method\":\"notifi"
    "cations/x\"}]\\n\\n');"
    "else s.write('event: message\\ndata: '+JSON.stringify(r)+'\\n\\n');});}).listen(+process.env.PORT,'1"
    "27.0.0.1');"
;

/* ---- owner ----------------------------------------------------------------------------------- */

static void
on_message(void *arg, const char *json, size_t len)
{
    owner_t *o = arg;

    assert_int_equal(json[len], '\0');
    if (o->owner_closed) {
        o->late_callbacks++;
        return;
    }
    if (o->n_msgs < MAX_MSGS)
        o->msgs[o->n_msgs++] = mcplex_strndup(json, len);
    if (o->close_on_message) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
}

static void
on_send_failed(void *arg, uint64_t tag, int status, const char *reason)
{
    owner_t *o = arg;

    if (o->owner_closed) {
        o->late_callbacks++;
        return;
    }
    if (o->n_fails < MAX_FAILS) {
        failure_t *f = &o->fails[o->n_fails++];
        f->tag = tag;
        f->status = status;
        snprintf(f->reason, sizeof(f->reason), "%s", reason);
    }
}

static void
on_closed(void *arg, const char *reason)
{
    owner_t *o = arg;

    if (o->owner_closed) {
        o->late_callbacks++;
        return;
    }
    o->n_closed++;
    snprintf(o->closed_reason, sizeof(o->closed_reason), "%s", reason);
    if (o->close_on_closed) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
}

static const mcplex_transport_cbs_t cbs = {on_message, on_send_failed, on_closed};

static void
owner_dispose(owner_t *o, int expect_closed)
{
    if (!o->owner_closed && o->t != NULL) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
    for (size_t i = 0; i < o->n_msgs; i++)
        free(o->msgs[i]);
    o->n_msgs = 0;
    assert_int_equal(o->late_callbacks, 0);
    assert_int_equal(o->n_closed, expect_closed);
}

/* ---- loop helpers -------------------------------------------------------------------------------- */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
run_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    while (!pred(arg) && now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return pred(arg);
}

static int
pred_never(void *arg)
{
    return 0;
}

static void
run_for(int ms)
{
    run_until(pred_never, NULL, ms);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
}

typedef struct want {
    owner_t *o;
    const char *id;
} want_t;

/* The message whose "id" has the JSON text |id| and that has a result, or NULL. */
static cJSON *
find_result(owner_t *o, const char *id)
{
    for (size_t i = 0; i < o->n_msgs; i++) {
        cJSON *root = cJSON_Parse(o->msgs[i]);
        cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "id");
        char *text = jid != NULL ? cJSON_PrintUnformatted(jid) : NULL;
        int ok = text != NULL && strcmp(text, id) == 0
                 && cJSON_GetObjectItemCaseSensitive(root, "result") != NULL;
        free(text);
        if (ok)
            return root;
        cJSON_Delete(root);
    }
    return NULL;
}

static int
pred_result(void *arg)
{
    want_t *w = arg;
    cJSON *r = find_result(w->o, w->id);

    cJSON_Delete(r);
    return r != NULL;
}

static int
pred_failed(void *arg)
{
    return ((owner_t *)arg)->n_fails > 0;
}

static int
pred_closed(void *arg)
{
    return ((owner_t *)arg)->n_closed > 0;
}

static int
pred_endpoint(void *arg)
{
    return mcplex_sse_transport_endpoint(((owner_t *)arg)->t) != NULL;
}

static int
send_text(owner_t *o, const char *json, uint64_t tag)
{
    return mcplex_transport_send(o->t, json, strlen(json), tag);
}

static mcplex_transport_t *
make_transport(owner_t *o, mcplex_http_pool_t *pool, const char *path, const char *authority,
               uint32_t timeout_ms)
{
    mcplex_http_target_t cfg = {.cluster = "c", .path = (char *)path, .authority = (char *)authority};

    o->t = mcplex_sse_transport_create(base, "t", pool, &cfg, timeout_ms, &cbs, o);
    return o->t;
}

/* The string member |key| of the result of the reply with id |id|, copied, or NULL. */
static char *
result_string(owner_t *o, const char *id, const char *key)
{
    cJSON *r = find_result(o, id);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), key);
    char *s = cJSON_IsString(v) ? mcplex_strdup(v->valuestring) : NULL;

    cJSON_Delete(r);
    return s;
}

/* ---- RFC 3986 resolution --------------------------------------------------------------------- */

static void
expect_resolved(const char *sse_path, int tls, const char *authority, const char *ref, const char *want)
{
    char err[256] = "";
    char *got = mcplex_sse_resolve_endpoint(sse_path, tls, authority, ref, err, sizeof(err));

    if (got == NULL)
        fail_msg("'%s' against '%s': %s", ref, sse_path, err);
    if (strcmp(got, want) != 0)
        fail_msg("'%s' against '%s': got '%s', want '%s'", ref, sse_path, got, want);
    free(got);
}

static void
expect_refused(const char *sse_path, int tls, const char *authority, const char *ref)
{
    char err[256] = "";
    char *got = mcplex_sse_resolve_endpoint(sse_path, tls, authority, ref, err, sizeof(err));

    if (got != NULL)
        fail_msg("'%s' against '%s' resolved to '%s'", ref, sse_path, got);
    assert_true(err[0] != '\0');
}

static void
test_resolve_endpoint(void **state)
{
    /* what server-everything and the SDK's SSEServerTransport send */
    expect_resolved("/sse", 0, "127.0.0.1:3933", "/message?sessionId=abc", "/message?sessionId=abc");
    /* relative paths merge with the SSE path's directory (RFC 3986 5.2.3) */
    expect_resolved("/a/b/sse", 0, NULL, "message?x=1", "/a/b/message?x=1");
    expect_resolved("/a/b/sse?k=v", 0, NULL, "../m", "/a/m");
    expect_resolved("/a/b/sse", 0, NULL, "./m/./n/../o", "/a/b/m/o");
    expect_resolved("/sse", 0, NULL, "../../x", "/x");
    expect_resolved("/a/sse", 0, NULL, "..", "/");
    expect_resolved("/a/b/sse", 0, NULL, "/c/./d/../e", "/c/e");
    /* a query alone keeps the base path; an empty reference is the base itself */
    expect_resolved("/a/sse?old=1", 0, NULL, "?sessionId=2", "/a/sse?sessionId=2");
    expect_resolved("/a/sse?old=1", 0, NULL, "", "/a/sse?old=1");
    expect_resolved("/a/sse", 0, NULL, "#frag", "/a/sse");
    /* absolute URLs on the same origin; the fragment is dropped; default ports and case ignored */
    expect_resolved("/sse", 0, "127.0.0.1:3933", "http://127.0.0.1:3933/m?s=1#f", "/m?s=1");
    expect_resolved("/sse", 0, "Example.COM", "HTTP://example.com:80/m", "/m");
    expect_resolved("/sse", 1, "example.com:443", "https://example.com/m", "/m");
    expect_resolved("/sse", 0, "[::1]:8080", "http://[::1]:8080/x/../m", "/m");
    expect_resolved("/sse", 0, "h:1", "//h:1?q", "/?q");
    expect_resolved("/sse", 0, "h:1", "http://h:1", "/");
    /* unknown authority (a cluster target without host_rewrite_literal): any host, same scheme */
    expect_resolved("/sse", 0, NULL, "http://10.1.2.3:9/m", "/m");
    expect_resolved(" /sse", 0, NULL, "  /m  ", "/m");
    /* another origin, odd forms, bytes that cannot go on a request line */
    expect_refused("/sse", 0, "127.0.0.1:3933", "http://evil.example/m");
    expect_refused("/sse", 0, "127.0.0.1:3933", "http://127.0.0.1:3934/m");
    expect_refused("/sse", 0, "127.0.0.1:3933", "//evil.example/m");
    expect_refused("/sse", 0, "h", "https://h/m");
    expect_refused("/sse", 1, "h", "http://h/m");
    expect_refused("/sse", 0, NULL, "ftp://h/m");
    expect_refused("/sse", 0, NULL, "javascript:alert(1)");
    expect_refused("/sse", 0, NULL, "http://user@h/m");
    expect_refused("/sse", 0, NULL, "http:///m");
    expect_refused("/sse", 0, NULL, "/m x");
    expect_refused("/sse", 0, NULL, "/m\r\nX-Evil: 1");
}

/* ---- server-everything (sse mode) -------------------------------------------------------------- */

static const char init_msg[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2024-11-05\","
    "\"capabilities\":{},\"clientInfo\":{\"name\":\"mcplex-test\",\"version\":\"1\"}}}";

static void
test_everything_session(void **state)
{
    owner_t o = {0};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/sse", NULL, 5000));
    /* sent before the endpoint event: queued, then POSTed in order */
    assert_int_equal(send_text(&o, init_msg, 1), 0);
    assert_null(mcplex_sse_transport_endpoint(o.t));
    want_t w1 = {&o, "1"};
    assert_true(run_until(pred_result, &w1, 10000));
    const char *ep = mcplex_sse_transport_endpoint(o.t);
    assert_non_null(ep);
    assert_true(strncmp(ep, "/message?sessionId=", 19) == 0);
    char *pv = result_string(&o, "1", "protocolVersion");
    assert_string_equal(pv, "2024-11-05");
    free(pv);
    mcplex_transport_set_protocol_version(o.t, "2024-11-05");

    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 0), 0);
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", 2), 0);
    want_t w2 = {&o, "2"};
    assert_true(run_until(pred_result, &w2, 10000));
    cJSON *r = find_result(&o, "2");
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "tools");
    assert_true(cJSON_GetArraySize(tools) > 0);
    cJSON_Delete(r);

    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":\"c3\",\"method\":\"tools/call\",\"params\":"
                                   "{\"name\":\"echo\",\"arguments\":{\"message\":\"hi there\"}}}",
                               3),
                     0);
    want_t w3 = {&o, "\"c3\""};
    assert_true(run_until(pred_result, &w3, 10000));
    r = find_result(&o, "\"c3\"");
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "result"));
    assert_non_null(strstr(text, "hi there"));
    free(text);
    cJSON_Delete(r);
    assert_int_equal(o.n_fails, 0);

    /* not a JSON-RPC message: server-everything answers 400, reported for that tag */
    assert_int_equal(send_text(&o, "{\"nonsense\":true}", 44), 0);
    assert_true(run_until(pred_failed, &o, 10000));
    assert_int_equal(o.fails[0].tag, 44);
    assert_int_equal(o.fails[0].status, 400);
    assert_non_null(strstr(o.fails[0].reason, "HTTP 400"));
    /* the session still works */
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}", 5), 0);
    want_t w5 = {&o, "5"};
    assert_true(run_until(pred_result, &w5, 10000));
    assert_int_equal(o.n_closed, 0);
    owner_dispose(&o, 0);
    run_for(100);
}

static void
test_everything_close_in_callback(void **state)
{
    owner_t o = {.close_on_message = 1};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/sse", NULL, 5000));
    assert_int_equal(send_text(&o, init_msg, 1), 0);
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", 2), 0);
    want_t w = {&o, "1"};
    assert_true(run_until(pred_result, &w, 10000));
    run_for(300);
    assert_int_equal(o.n_msgs, 1);
    owner_dispose(&o, 0);
}

static void
test_everything_wrong_path(void **state)
{
    owner_t o = {0};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/nope", NULL, 5000));
    assert_int_equal(send_text(&o, init_msg, 1), 0);
    assert_true(run_until(pred_closed, &o, 10000));
    assert_non_null(strstr(o.closed_reason, "404"));
    assert_int_equal(o.n_fails, 0);
    /* a dead transport takes nothing more; the owner still closes it */
    assert_int_equal(send_text(&o, init_msg, 2), -1);
    run_for(100);
    owner_dispose(&o, 1);
}

/* ---- the fixture --------------------------------------------------------------------------------- */

/* Relative endpoint, sends queued in order before it, headers and protocol version on POSTs,
 * batches split. */
static void
test_fixture_relative_and_order(void **state)
{
    owner_t o = {0};
    mcplex_header_value_t extra[] = {{"x-extra", "hello"}};
    mcplex_http_target_t cfg = {.cluster = "c", .path = "/dir/sse", .authority = "upstream.example:8080",
                                .headers = extra, .n_headers = 1};
    char msg[128];

    if (fixture_pid == -1) {
        skip();
        return;
    }
    o.t = mcplex_sse_transport_create(base, "fx", fixture_pool, &cfg, 3000, &cbs, &o);
    mcplex_transport_set_protocol_version(o.t, "2024-11-05");
    for (int i = 1; i <= 6; i++) {
        snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"ping\"}", i);
        assert_int_equal(send_text(&o, msg, (uint64_t)i), 0);
    }
    want_t w6 = {&o, "6"};
    assert_true(run_until(pred_result, &w6, 5000));
    assert_int_equal(o.n_msgs, 6);
    for (int i = 1; i <= 6; i++) {
        snprintf(msg, sizeof(msg), "%d", i);
        cJSON *r = find_result(&o, msg);
        assert_non_null(r);
        cJSON_Delete(r);
        /* in the order sent */
        snprintf(msg, sizeof(msg), "\"id\":%d,", i);
        assert_non_null(strstr(o.msgs[i - 1], msg));
    }
    char *path = result_string(&o, "1", "path");
    assert_true(strncmp(path, "/dir/msg?s=", 11) == 0);
    free(path);
    char *host = result_string(&o, "1", "host");
    assert_string_equal(host, "upstream.example:8080");
    free(host);
    char *pv = result_string(&o, "1", "pv");
    assert_string_equal(pv, "2024-11-05");
    free(pv);
    char *x = result_string(&o, "1", "extra");
    assert_string_equal(x, "hello");
    free(x);

    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"batch\"}", 7), 0);
    want_t w7 = {&o, "7"};
    assert_true(run_until(pred_result, &w7, 5000));
    run_for(50);
    assert_int_equal(o.n_msgs, 8);
    assert_string_equal(o.msgs[7], "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}");
    assert_int_equal(o.n_fails, 0);
    owner_dispose(&o, 0);
}

/* An absolute endpoint URL on the same origin works; one on another origin closes the transport. */
static void
test_fixture_origins(void **state)
{
    owner_t o = {0}, o2 = {.close_on_closed = 1};
    char authority[64];

    if (fixture_pid == -1) {
        skip();
        return;
    }
    snprintf(authority, sizeof(authority), "127.0.0.1:%u", fixture_port);
    assert_non_null(make_transport(&o, fixture_pool, "/abs", authority, 3000));
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1), 0);
    want_t w = {&o, "1"};
    assert_true(run_until(pred_result, &w, 5000));
    assert_true(strncmp(mcplex_sse_transport_endpoint(o.t), "/msg?s=", 7) == 0);
    owner_dispose(&o, 0);

    assert_non_null(make_transport(&o2, fixture_pool, "/evil", authority, 3000));
    assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1), 0);
    assert_true(run_until(pred_closed, &o2, 5000));
    assert_non_null(strstr(o2.closed_reason, "origin"));
    assert_int_equal(o2.n_fails, 0);
    assert_int_equal(o2.n_msgs, 0);
    run_for(50);
    owner_dispose(&o2, 1);
}

/* A POST that is never answered times out; one answered 500 fails with its status; a failure does
 * not block the messages queued behind it. */
static void
test_fixture_post_failures(void **state)
{
    owner_t o = {0}, o2 = {0};

    if (fixture_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, fixture_pool, "/hang-sse", NULL, 300));
    assert_true(run_until(pred_endpoint, &o, 5000));
    int64_t start = now_ms();
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 11), 0);
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", 12), 0);
    assert_true(run_until(pred_failed, &o, 3000));
    assert_true(now_ms() - start < 2000);
    assert_int_equal(o.fails[0].tag, 11);
    assert_int_equal(o.fails[0].status, 0);
    run_for(700);
    assert_int_equal(o.n_fails, 2);
    assert_int_equal(o.fails[1].tag, 12);
    assert_int_equal(o.n_closed, 0);
    owner_dispose(&o, 0);

    assert_non_null(make_transport(&o2, fixture_pool, "/err-sse", NULL, 3000));
    assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 21), 0);
    assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}", 0), 0);
    assert_true(run_until(pred_failed, &o2, 5000));
    run_for(200);
    assert_int_equal(o2.n_fails, 1); /* the failed notification (tag 0) is only logged */
    assert_int_equal(o2.fails[0].tag, 21);
    assert_int_equal(o2.fails[0].status, 500);
    assert_non_null(strstr(o2.fails[0].reason, "HTTP 500"));
    assert_non_null(strstr(o2.fails[0].reason, "boom"));
    assert_null(strstr(o2.fails[0].reason, "more"));
    owner_dispose(&o2, 0);
}

/* The stream ending, a non-SSE answer, an error status, no endpoint event, no server at all. */
static void
test_fixture_stream_failures(void **state)
{
    static const struct {
        mcplex_http_pool_t **pool;
        const char *path;
        uint32_t timeout_ms;
        const char *reason;
    } cases[] = {
        {&fixture_pool, "/end", 3000, "ended"},
        {&fixture_pool, "/notsse", 3000, "text/event-stream"},
        {&fixture_pool, "/missing", 3000, "HTTP 404 Not Found: no such stream"},
        {&fixture_pool, "/silent", 300, "no endpoint event"},
        {&dead_pool, "/sse", 3000, "SSE stream failed"},
    };

    if (fixture_pid == -1) {
        skip();
        return;
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        owner_t o = {.close_on_closed = 1};
        assert_non_null(make_transport(&o, *cases[i].pool, cases[i].path, NULL, cases[i].timeout_ms));
        assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1), 0);
        if (!run_until(pred_closed, &o, 5000))
            fail_msg("%s: not closed", cases[i].path);
        if (strstr(o.closed_reason, cases[i].reason) == NULL)
            fail_msg("%s: reason '%s'", cases[i].path, o.closed_reason);
        run_for(50);
        owner_dispose(&o, 1);
    }
}

/* close() at every stage: before the GET started, while POSTs are in flight or queued. */
static void
test_fixture_close_anytime(void **state)
{
    owner_t o = {0}, o2 = {0};

    if (fixture_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, fixture_pool, "/dir/sse", NULL, 3000));
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1), 0);
    owner_dispose(&o, 0);
    run_for(100);

    assert_non_null(make_transport(&o2, fixture_pool, "/hang-sse", NULL, 0));
    assert_true(run_until(pred_endpoint, &o2, 5000));
    for (int i = 1; i <= 3; i++)
        assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", (uint64_t)i),
                         0);
    run_for(100);
    owner_dispose(&o2, 0);
    run_for(100);
}

/* ---- servers --------------------------------------------------------------------------------------- */

static uint16_t
free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int
port_open(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static void
stop_server(pid_t *pid)
{
    int st;

    if (*pid == -1)
        return;
    kill(-*pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = -1;
            return;
        }
        usleep(30 * 1000);
    }
    kill(-*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = -1;
}

/* Starts |argv| (node ...) with PORT=|port| in its own process group; waits for the port. */
static pid_t
start_server(char *const argv[], uint16_t port)
{
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    size_t n = 0;
    pid_t pid;
    char port_env[32];

    while (environ[n] != NULL)
        n++;
    char **envp = mcplex_calloc(n + 2, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "PORT=", 5) != 0)
            envp[k++] = environ[i];
    }
    snprintf(port_env, sizeof(port_env), "PORT=%u", port);
    envp[k++] = port_env;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(envp);
    if (rc != 0)
        return -1;
    for (int i = 0; i < 300; i++) {
        if (port_open(port))
            return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(50 * 1000);
    }
    stop_server(&pid);
    return -1;
}

static mcplex_http_pool_t *
make_pool(uint16_t port)
{
    mcplex_http_endpoint_t ep = {"127.0.0.1", port, 1};
    mcplex_http_pool_config_t cfg = {.endpoints = &ep, .n_endpoints = 1, .connect_timeout_ms = 2000};

    return mcplex_http_pool_create(base, NULL, &cfg);
}

static int
group_setup(void **state)
{
    struct timeval tv = {0, 20 * 1000};
    char script[PATH_MAX], shim[PATH_MAX];

    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL)
        return -1;
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &tv);

    snprintf(script, sizeof(script), "%s/tests/node_modules/@modelcontextprotocol/server-everything/%s",
             MCPLEX_SOURCE_DIR, "dist/index.js");
    snprintf(shim, sizeof(shim), "%s/tests/integration/lib/loopback-shim.cjs", MCPLEX_SOURCE_DIR);
    everything_port = free_port();
    char *ev_argv[] = {"node", "-r", shim, script, "sse", NULL};
    if (access(script, R_OK) == 0)
        everything_pid = start_server(ev_argv, everything_port);
    if (everything_pid == -1)
        fprintf(stderr, "server-everything not available: its tests are skipped\n");

    fixture_port = free_port();
    char *fx_argv[] = {"node", "-e", (char *)fixture_js, NULL};
    fixture_pid = start_server(fx_argv, fixture_port);
    if (fixture_pid == -1)
        fprintf(stderr, "node not available: the fixture tests are skipped\n");

    dead_port = free_port(); /* nothing listens there */
    everything_pool = make_pool(everything_port);
    fixture_pool = make_pool(fixture_port);
    dead_pool = make_pool(dead_port);
    return everything_pool != NULL && fixture_pool != NULL && dead_pool != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    mcplex_http_pool_destroy(everything_pool);
    mcplex_http_pool_destroy(fixture_pool);
    mcplex_http_pool_destroy(dead_pool);
    stop_server(&everything_pid);
    stop_server(&fixture_pid);
    event_free(tick);
    event_base_free(base);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_endpoint),
        cmocka_unit_test(test_everything_session),
        cmocka_unit_test(test_everything_close_in_callback),
        cmocka_unit_test(test_everything_wrong_path),
        cmocka_unit_test(test_fixture_relative_and_order),
        cmocka_unit_test(test_fixture_origins),
        cmocka_unit_test(test_fixture_post_failures),
        cmocka_unit_test(test_fixture_stream_failures),
        cmocka_unit_test(test_fixture_close_anytime),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
