/*
 * test_transport_http.c - the streamable-HTTP target transport against real servers: the npm
 * server-everything in streamableHttp mode (SSE responses, Mcp-Session-Id, DELETE on close) and
 * a small node HTTP server for the JSON paths (batch bodies, error bodies, hangs). Both run in
 * their own process group and are stopped (and reaped) by the group teardown.
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
    int close_on_message;
    int owner_closed;
    int late_callbacks;
} owner_t;

static struct event_base *base;
static struct event *tick;
static pid_t everything_pid = -1, json_pid = -1;
static uint16_t everything_port, json_port, dead_port;
static mcplex_http_pool_t *everything_pool, *json_pool, *dead_pool;

/* A tiny streamable-HTTP-ish peer answering with JSON bodies (server-everything always uses SSE). */
static const char json_server_js[] =
    "const http=require('http');"
    "http.createServer((req,res)=>{let b='';req.on('data',c=>b+=c);req.on('end',()=>{"
    "if(req.url==='/err'){res.writeHead(500,{'content-type':'text/plain'});"
    "res.end('boom: broken\\nsecond line');return;}"
    "if(req.url==='/hang')return;"
    "if(req.url==='/empty-sse'){res.writeHead(200,{'content-type':'text/event-stream'});"
    "res.end(': comment\\nid: 1\\ndata:\\n\\n');return;}"
    "if(req.method==='DELETE'){res.writeHead(200);res.end();return;}"
    "const m=JSON.parse(b);"
    "if(m.id===undefined){res.writeHead(202);res.end();return;}"
    "res.writeHead(200,{'content-type':'application/json; charset=utf-8','mcp-session-id':'json-sess-1'});"
    "res.end(' ['+JSON.stringify({jsonrpc:'2.0',id:m.id,result:{extra:req.headers['x-extra']||null,"
    "sid:req.headers['mcp-session-id']||null,pv:req.headers['mcp-protocol-version']||null,"
    "host:req.headers.host}})+',\\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}] ');"
    "});}).listen(+process.env.PORT,'127.0.0.1');";

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
    ((owner_t *)arg)->n_closed++;
}

static const mcplex_transport_cbs_t cbs = {on_message, on_send_failed, on_closed};

static void
owner_dispose(owner_t *o)
{
    if (!o->owner_closed && o->t != NULL) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
    for (size_t i = 0; i < o->n_msgs; i++)
        free(o->msgs[i]);
    o->n_msgs = 0;
    assert_int_equal(o->late_callbacks, 0);
    assert_int_equal(o->n_closed, 0);
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

/* The message whose "id" is the number |id| (as text) and that has a result, or NULL. */
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
send_text(owner_t *o, const char *json, uint64_t tag)
{
    return mcplex_transport_send(o->t, json, strlen(json), tag);
}

static mcplex_transport_t *
make_transport(owner_t *o, mcplex_http_pool_t *pool, const char *path, uint32_t timeout_ms)
{
    mcplex_http_target_t cfg = {.cluster = "c", .path = (char *)path};

    o->t = mcplex_http_transport_create(base, "t", pool, &cfg, timeout_ms, &cbs, o);
    return o->t;
}

static const char init_msg[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
    "\"capabilities\":{},\"clientInfo\":{\"name\":\"mcplex-test\",\"version\":\"1\"}}}";

/* ---- server-everything (SSE responses, sessions) ---------------------------------------------- */

static void
test_everything_session(void **state)
{
    owner_t o = {0};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/mcp", 10000));
    assert_null(mcplex_http_transport_session_id(o.t));
    assert_int_equal(send_text(&o, init_msg, 1), 0);
    want_t w1 = {&o, "1"};
    assert_true(run_until(pred_result, &w1, 10000));
    cJSON *r = find_result(&o, "1");
    cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    cJSON *pv = cJSON_GetObjectItemCaseSensitive(res, "protocolVersion");
    assert_true(cJSON_IsString(pv));
    cJSON_Delete(r);
    const char *sid = mcplex_http_transport_session_id(o.t);
    assert_non_null(sid);
    assert_true(strlen(sid) > 8);
    char *saved_sid = mcplex_strdup(sid);
    mcplex_transport_set_protocol_version(o.t, "2025-06-18");

    /* A notification gets 202: nothing is delivered, nothing fails. */
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 0), 0);
    /* tools/list only works with the session id (server-everything answers 400 without it). */
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", 2), 0);
    want_t w2 = {&o, "2"};
    assert_true(run_until(pred_result, &w2, 10000));
    r = find_result(&o, "2");
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "result"), "tools");
    assert_true(cJSON_GetArraySize(tools) > 0);
    cJSON_Delete(r);

    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":\"c3\",\"method\":\"tools/call\",\"params\":"
                                   "{\"name\":\"echo\",\"arguments\":{\"message\":\"hi there\"}}}",
                               3),
                     0);
    want_t w3 = {&o, "\"c3\""};
    assert_true(run_until(pred_result, &w3, 10000));
    assert_int_equal(o.n_fails, 0);

    /* close() sends DELETE: the session is gone afterwards. */
    o.owner_closed = 1;
    mcplex_transport_close(o.t);
    run_for(500);

    owner_t o2 = {0};
    assert_non_null(make_transport(&o2, everything_pool, "/mcp", 10000));
    mcplex_http_transport_set_session_id(o2.t, saved_sid);
    assert_string_equal(mcplex_http_transport_session_id(o2.t), saved_sid);
    mcplex_transport_set_protocol_version(o2.t, "2025-06-18");
    assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\"}", 4), 0);
    assert_true(run_until(pred_failed, &o2, 10000));
    assert_int_equal(o2.fails[0].tag, 4);
    assert_true(o2.fails[0].status == 400 || o2.fails[0].status == 404);
    assert_non_null(strstr(o2.fails[0].reason, "HTTP 4"));
    free(saved_sid);
    owner_dispose(&o2);
    owner_dispose(&o);
}

static void
test_everything_wrong_path(void **state)
{
    owner_t o = {0};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/nope", 10000));
    assert_int_equal(send_text(&o, init_msg, 77), 0);
    assert_true(run_until(pred_failed, &o, 10000));
    assert_int_equal(o.fails[0].tag, 77);
    assert_int_equal(o.fails[0].status, 404);
    assert_non_null(strstr(o.fails[0].reason, "404"));
    assert_int_equal(o.n_msgs, 0);
    owner_dispose(&o);
}

/* close() from inside on_message while the SSE response is being parsed. */
static void
test_everything_close_in_callback(void **state)
{
    owner_t o = {.close_on_message = 1};

    if (everything_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, everything_pool, "/mcp", 10000));
    assert_int_equal(send_text(&o, init_msg, 1), 0);
    want_t w = {&o, "1"};
    assert_true(run_until(pred_result, &w, 10000));
    run_for(300); /* the deferred teardown and the DELETE */
    assert_int_equal(o.n_msgs, 1);
    owner_dispose(&o);
}

/* ---- JSON bodies, errors, timeouts --------------------------------------------------------------- */

static void
test_json_batch_and_headers(void **state)
{
    owner_t o = {0};
    mcplex_header_value_t extra[] = {{"x-extra", "hello"}};
    mcplex_http_target_t cfg = {.cluster = "c", .path = "/mcp", .authority = "upstream.example:8080",
                                .headers = extra, .n_headers = 1};

    if (json_pid == -1) {
        skip();
        return;
    }
    o.t = mcplex_http_transport_create(base, "json", json_pool, &cfg, 5000, &cbs, &o);
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}", 5), 0);
    want_t w = {&o, "5"};
    assert_true(run_until(pred_result, &w, 5000));
    run_for(50);
    /* The batch body became two messages, each trimmed. */
    assert_int_equal(o.n_msgs, 2);
    assert_string_equal(o.msgs[1], "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}");
    cJSON *r = find_result(&o, "5");
    cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "extra")->valuestring, "hello");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "host")->valuestring, "upstream.example:8080");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(res, "sid")));
    cJSON_Delete(r);
    assert_string_equal(mcplex_http_transport_session_id(o.t), "json-sess-1");

    /* The second request carries the session id and the protocol version. */
    mcplex_transport_set_protocol_version(o.t, "2025-11-25");
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}", 6), 0);
    want_t w6 = {&o, "6"};
    assert_true(run_until(pred_result, &w6, 5000));
    r = find_result(&o, "6");
    res = cJSON_GetObjectItemCaseSensitive(r, "result");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "sid")->valuestring, "json-sess-1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "pv")->valuestring, "2025-11-25");
    cJSON_Delete(r);
    assert_int_equal(o.n_fails, 0);
    owner_dispose(&o);
}

static void
test_json_error_body(void **state)
{
    owner_t o = {0};

    if (json_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, json_pool, "/err", 5000));
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 9), 0);
    assert_true(run_until(pred_failed, &o, 5000));
    assert_int_equal(o.fails[0].tag, 9);
    assert_int_equal(o.fails[0].status, 500);
    assert_non_null(strstr(o.fails[0].reason, "boom: broken"));
    assert_null(strstr(o.fails[0].reason, "second line"));
    /* A failed notification (tag 0) is only logged. */
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", 0), 0);
    run_for(300);
    assert_int_equal(o.n_fails, 1);
    owner_dispose(&o);
}

static void
test_timeout_and_empty_stream(void **state)
{
    owner_t o = {0}, o2 = {0};

    if (json_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, json_pool, "/hang", 300));
    int64_t start = now_ms();
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 11), 0);
    assert_true(run_until(pred_failed, &o, 3000));
    assert_true(now_ms() - start < 2000);
    assert_int_equal(o.fails[0].tag, 11);
    assert_int_equal(o.fails[0].status, 0);
    owner_dispose(&o);

    assert_non_null(make_transport(&o2, json_pool, "/empty-sse", 3000));
    assert_int_equal(send_text(&o2, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 12), 0);
    assert_true(run_until(pred_failed, &o2, 3000));
    assert_int_equal(o2.fails[0].tag, 12);
    assert_int_equal(o2.fails[0].status, 0);
    assert_int_equal(o2.n_msgs, 0);
    owner_dispose(&o2);
}

static void
test_connection_refused(void **state)
{
    owner_t o = {0};

    assert_non_null(make_transport(&o, dead_pool, "/mcp", 3000));
    assert_int_equal(send_text(&o, init_msg, 21), 0);
    assert_int_equal(send_text(&o, init_msg, 22), 0);
    assert_true(run_until(pred_failed, &o, 5000));
    run_for(100);
    assert_int_equal(o.n_fails, 2);
    assert_int_equal(o.fails[0].status, 0);
    assert_int_equal(o.fails[1].status, 0);
    owner_dispose(&o);
}

/* close() with POSTs in flight: they are cancelled, nothing is reported. */
static void
test_close_in_flight(void **state)
{
    owner_t o = {0};

    if (json_pid == -1) {
        skip();
        return;
    }
    assert_non_null(make_transport(&o, json_pool, "/hang", 0));
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1), 0);
    assert_int_equal(send_text(&o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", 2), 0);
    run_for(100);
    mcplex_http_transport_set_session_id(o.t, "will-be-deleted");
    o.owner_closed = 1;
    mcplex_transport_close(o.t);
    run_for(200);
    owner_dispose(&o);
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
    char *ev_argv[] = {"node", "-r", shim, script, "streamableHttp", NULL};
    if (access(script, R_OK) == 0)
        everything_pid = start_server(ev_argv, everything_port);
    if (everything_pid == -1)
        fprintf(stderr, "server-everything not available: its tests are skipped\n");

    json_port = free_port();
    char *js_argv[] = {"node", "-e", (char *)json_server_js, NULL};
    json_pid = start_server(js_argv, json_port);

    dead_port = free_port(); /* nothing listens there */
    everything_pool = make_pool(everything_port);
    json_pool = make_pool(json_port);
    dead_pool = make_pool(dead_port);
    return everything_pool != NULL && json_pool != NULL && dead_pool != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    mcplex_http_pool_destroy(everything_pool);
    mcplex_http_pool_destroy(json_pool);
    mcplex_http_pool_destroy(dead_pool);
    stop_server(&everything_pid);
    stop_server(&json_pid);
    event_free(tick);
    event_base_free(base);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_session),
        cmocka_unit_test(test_everything_wrong_path),
        cmocka_unit_test(test_everything_close_in_callback),
        cmocka_unit_test(test_json_batch_and_headers),
        cmocka_unit_test(test_json_error_body),
        cmocka_unit_test(test_timeout_and_empty_stream),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_close_in_flight),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
