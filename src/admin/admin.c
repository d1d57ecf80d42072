/*
 * admin.c - the admin listener and Envoy's admin endpoints (see admin.h). Output formats follow
 * Envoy's admin API (envoy.admin.v3: ServerInfo, ConfigDump, Clusters, Listeners) as documented at
 * envoyproxy.io/docs/envoy/latest/operations/admin.
 * Thread: main.
 */
#include "admin/admin.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "admin/mcp_stats.h"
#include "admin/server_stats.h"
#include "admin/stats.h"
#include "common/log.h"
#include "common/mem.h"
#include "event/worker.h"
#include "event/workers.h" /* worker threads (issue 6) */
#include "http/h1_server.h"
#include "mcp/session.h"
#include "net/listener.h"

/* ---- process-wide state -------------------------------------------------------------------- */

static _Atomic int server_state = MCPLEX_SERVER_LIVE;
static _Atomic int hc_failed;

void
mcplex_admin_set_server_state(mcplex_server_state_t state)
{
    atomic_store(&server_state, (int)state);
}

mcplex_server_state_t
mcplex_admin_server_state(void)
{
    return (mcplex_server_state_t)atomic_load(&server_state);
}

const char *
mcplex_admin_server_state_name(mcplex_server_state_t state)
{
    switch (state) {
    case MCPLEX_SERVER_LIVE:
        return "LIVE";
    case MCPLEX_SERVER_DRAINING:
        return "DRAINING";
    case MCPLEX_SERVER_PRE_INITIALIZING:
        return "PRE_INITIALIZING";
    case MCPLEX_SERVER_INITIALIZING:
        return "INITIALIZING";
    }
    return "UNKNOWN";
}

int
mcplex_admin_healthcheck_failed(void)
{
    return atomic_load(&hc_failed);
}

/* Envoy's Utility::serverState: a failed health check reports DRAINING. */
static mcplex_server_state_t
effective_state(void)
{
    mcplex_server_state_t s = mcplex_admin_server_state();
    return s == MCPLEX_SERVER_LIVE && mcplex_admin_healthcheck_failed() ? MCPLEX_SERVER_DRAINING : s;
}

/* ---- handler registry ---------------------------------------------------------------------- */

typedef struct admin_route {
    char *prefix;
    char *help;
    mcplex_admin_handler_fn fn;
    void *ctx;
} admin_route_t;

static admin_route_t *routes;
static size_t n_routes;

int
mcplex_admin_register(const char *path_prefix, const char *help, mcplex_admin_handler_fn fn, void *ctx)
{
    if (path_prefix == NULL || path_prefix[0] != '/' || fn == NULL)
        return -1;
    for (size_t i = 0; i < n_routes; i++) {
        if (strcmp(routes[i].prefix, path_prefix) == 0) {
            free(routes[i].help);
            routes[i].help = help != NULL ? mcplex_strdup(help) : NULL;
            routes[i].fn = fn;
            routes[i].ctx = ctx;
            return 0;
        }
    }
    routes = mcplex_realloc(routes, (n_routes + 1) * sizeof(*routes));
    routes[n_routes].prefix = mcplex_strdup(path_prefix);
    routes[n_routes].help = help != NULL ? mcplex_strdup(help) : NULL;
    routes[n_routes].fn = fn;
    routes[n_routes].ctx = ctx;
    n_routes++;
    return 0;
}

void
mcplex_admin_unregister_all(void)
{
    for (size_t i = 0; i < n_routes; i++) {
        free(routes[i].prefix);
        free(routes[i].help);
    }
    free(routes);
    routes = NULL;
    n_routes = 0;
}

static const admin_route_t *
find_registered(const char *path)
{
    const admin_route_t *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < n_routes; i++) {
        size_t n = strlen(routes[i].prefix);
        int match = strncmp(path, routes[i].prefix, n) == 0 &&
                    (path[n] == '\0' || path[n] == '/' || (n > 0 && routes[i].prefix[n - 1] == '/'));
        if (match && n >= best_len) {
            best = &routes[i];
            best_len = n;
        }
    }
    return best;
}

/* ---- the admin server ---------------------------------------------------------------------- */

struct mcplex_admin {
    struct event_base *base;
    struct evconnlistener *lev;
    uint16_t port;
    mcplex_worker_t **workers; /* workers[i]->index == i */
    size_t n_workers;
    mcplex_worker_group_t *group; /* worker threads: their state is read on their own threads */
    mcplex_admin_hooks_t hooks;
    mcplex_h1_conn_t **conns;
    size_t n_conns, cap_conns;
    struct event *quit_ev;
    char *startup_bootstrap; /* the bootstrap JSON of the config mcplex started with */
    int64_t startup_loaded_at_ms;
};

static void admin_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req);

static void
conn_closed(void *arg, mcplex_h1_conn_t *conn)
{
    mcplex_admin_t *a = arg;

    for (size_t i = 0; i < a->n_conns; i++) {
        if (a->conns[i] == conn) {
            a->conns[i] = a->conns[--a->n_conns];
            break;
        }
    }
}

static void
admin_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *peer, int peer_len, void *arg)
{
    mcplex_admin_t *a = arg;
    mcplex_h1_conn_t *conn;
    mcplex_http_limits_t limits;

    (void)lev;
    (void)peer_len;
    memset(&limits, 0, sizeof(limits));
    evutil_make_socket_closeonexec(fd);
    conn = mcplex_h1_conn_create(a->base, fd, peer, &limits, admin_handle, a);
    if (conn == NULL)
        return;
    if (a->n_conns == a->cap_conns) {
        a->cap_conns = a->cap_conns ? a->cap_conns * 2 : 8;
        a->conns = mcplex_realloc(a->conns, a->cap_conns * sizeof(*a->conns));
    }
    a->conns[a->n_conns++] = conn;
    mcplex_h1_conn_set_close_cb(conn, conn_closed, a);
}

mcplex_admin_t *
mcplex_admin_create(struct event_base *base, const char *address, uint16_t port,
                    struct mcplex_worker **workers, size_t n_workers, const mcplex_admin_hooks_t *hooks,
                    char *err, size_t err_len)
{
    mcplex_admin_t *a = mcplex_calloc(1, sizeof(*a));
    struct sockaddr_storage ss;
    socklen_t sl;
    const char *host = address != NULL ? address : "127.0.0.1";
    char h[64];
    size_t hl = strlen(host);

    memset(&ss, 0, sizeof(ss));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(h)) {
        memcpy(h, host + 1, hl - 2);
        h[hl - 2] = '\0';
        host = h;
    }
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, err_len, "admin address '%s' is not an IP literal", host);
        goto fail;
    }
    a->base = base;
    a->lev = evconnlistener_new_bind(base, admin_accept, a,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
                                     (struct sockaddr *)&ss, (int)sl);
    if (a->lev == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%u: %s", host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    {
        struct sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        getsockname(evconnlistener_get_fd(a->lev), (struct sockaddr *)&bound, &bl);
        a->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (hooks != NULL)
        a->hooks = *hooks;
    mcplex_admin_set_workers(a, workers, n_workers);
    if (n_workers > 0 && workers[0]->snapshot->bootstrap_json != NULL) {
        a->startup_bootstrap = mcplex_strdup(workers[0]->snapshot->bootstrap_json);
        a->startup_loaded_at_ms = workers[0]->snapshot->loaded_at_ms;
    }
    mcplex_server_stats_init();
    mcplex_log_info("admin", "admin listener serving on %s:%u", host, a->port);
    return a;
fail:
    free(a);
    return NULL;
}

void
mcplex_admin_set_workers(mcplex_admin_t *a, struct mcplex_worker **workers, size_t n_workers)
{
    free(a->workers);
    a->workers = NULL;
    a->n_workers = 0;
    if (n_workers > 0) {
        a->workers = mcplex_calloc(n_workers, sizeof(*a->workers));
        memcpy(a->workers, workers, n_workers * sizeof(*workers));
        a->n_workers = n_workers;
    }
}

void
mcplex_admin_set_group(mcplex_admin_t *a, struct mcplex_worker_group *group)
{
    a->group = group;
    if (group != NULL)
        mcplex_admin_set_workers(a, group->workers, group->n);
    else
        mcplex_admin_set_workers(a, NULL, 0);
}

/*
 * Runs |fn|(worker, |arg|) for every worker and returns when all ran: on each worker's own
 * thread with worker threads (they run at the same time, so |fn| writes only to the slot of
 * worker->index), directly with the one worker of the main thread.
 */
static void
for_each_worker(mcplex_admin_t *a, void (*fn)(mcplex_worker_t *, void *), void *arg)
{
    if (a->group != NULL) {
        mcplex_worker_group_run_sync(a->group, fn, arg);
        return;
    }
    for (size_t i = 0; i < a->n_workers; i++)
        fn(a->workers[i], arg);
}

/* A visit of every session of every worker; args[worker->index] is the visitor's argument. */
typedef struct session_visit {
    void (*visit)(void *arg, const char *key, void *value);
    void **args;
} session_visit_t;

static void
visit_worker_sessions(mcplex_worker_t *w, void *arg)
{
    session_visit_t *sv = arg;

    if (w->sessions != NULL)
        mcplex_strmap_foreach(&w->sessions->by_id, sv->visit, sv->args[w->index]);
}

static void
visit_sessions(mcplex_admin_t *a, void (*visit)(void *, const char *, void *), void **args)
{
    session_visit_t sv = {visit, args};

    for_each_worker(a, visit_worker_sessions, &sv);
}

uint16_t
mcplex_admin_port(const mcplex_admin_t *a)
{
    return a->port;
}

void
mcplex_admin_destroy(mcplex_admin_t *a)
{
    if (a == NULL)
        return;
    if (a->lev != NULL)
        evconnlistener_free(a->lev);
    /* Detach first: a connection whose close is already deferred must not call back into |a|. */
    for (size_t i = 0; i < a->n_conns; i++) {
        mcplex_h1_conn_set_close_cb(a->conns[i], NULL, NULL);
        mcplex_h1_conn_close(a->conns[i]);
    }
    if (a->quit_ev != NULL)
        event_free(a->quit_ev);
    free(a->conns);
    free(a->workers);
    free(a->startup_bootstrap);
    free(a);
}

/* ---- worker state the admin reads or changes (thread: the worker's, today main) ---------- */

/* The bound port of listener |name| of |w| (the configured |port| when not open). */
static unsigned
worker_listener_port(const mcplex_worker_t *w, const char *name, unsigned port)
{
    for (size_t i = 0; w != NULL && i < w->n_listeners; i++) {
        const mcplex_listener_ctx_t *l = w->listeners[i];
        if (l != NULL && l->tcp != NULL && strcmp(l->listener_name, name) == 0)
            return mcplex_tcp_listener_port(l->tcp);
    }
    return port;
}

/* Envoy's /drain_listeners: closes every listening socket of |w| (connections already accepted
 * finish their requests). Returns how many were closed. */
static size_t
worker_drain_listeners(mcplex_worker_t *w)
{
    size_t n = 0;

    for (size_t i = 0; i < w->n_listeners; i++) {
        mcplex_listener_ctx_t *l = w->listeners[i];
        if (l != NULL && l->tcp != NULL) {
            mcplex_tcp_listener_destroy(l->tcp);
            l->tcp = NULL;
            n++;
        }
    }
    return n;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void
respond(mcplex_http_stream_t *stream, int status, const char *ctype, const char *body, size_t len)
{
    mcplex_http_header_t hdrs[3];
    size_t n = 0;

    hdrs[n++] = (mcplex_http_header_t){"content-type", 12, ctype, strlen(ctype)};
    hdrs[n++] = (mcplex_http_header_t){"cache-control", 13, "no-cache, max-age=0", 19};
    hdrs[n++] = (mcplex_http_header_t){"x-content-type-options", 22, "nosniff", 7};
    mcplex_http_stream_respond(stream, status, hdrs, n, body, len);
}

static void
respond_text(mcplex_http_stream_t *stream, int status, const char *text)
{
    respond(stream, status, "text/plain; charset=UTF-8", text, strlen(text));
}

static void
respond_json(mcplex_http_stream_t *stream, int status, cJSON *json)
{
    char *text = cJSON_Print(json);

    if (text == NULL)
        abort();
    respond(stream, status, "application/json", text, strlen(text));
    free(text);
    cJSON_Delete(json);
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes |n| bytes of |s| ('+' = space) into a new string. */
static char *
url_decode(const char *s, size_t n)
{
    char *out = mcplex_malloc(n + 1);
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[k] = '\0';
    return out;
}

/* The decoded value of query parameter |key| (malloc'ed; "" for a bare key), or NULL. */
static char *
query_param(const char *query, const char *key)
{
    size_t klen = strlen(key);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= klen && strncmp(p, key, klen) == 0 && (len == klen || p[klen] == '='))
            return len == klen ? mcplex_strdup("") : url_decode(p + klen + 1, len - klen - 1);
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

static int
is_post(const mcplex_http_request_t *req)
{
    return strcmp(req->method, "POST") == 0;
}

static double
uptime_s(void)
{
    return mcplex_server_stats_uptime_s();
}

/* ---- /ready, /server_info ----------------------------------------------------------------- */

static void
h_ready(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    mcplex_server_state_t s = effective_state();
    char body[64];

    (void)a;
    (void)req;
    snprintf(body, sizeof(body), "%s\n", mcplex_admin_server_state_name(s));
    respond_text(stream, s == MCPLEX_SERVER_LIVE ? 200 : 503, body);
}

static const char *
arg_value(const mcplex_admin_t *a, const char *short_opt, const char *long_opt)
{
    for (int i = 1; a->hooks.argv != NULL && i < a->hooks.argc; i++) {
        const char *arg = a->hooks.argv[i];
        size_t ll = long_opt != NULL ? strlen(long_opt) : 0;
        if (((short_opt != NULL && strcmp(arg, short_opt) == 0) ||
             (long_opt != NULL && strcmp(arg, long_opt) == 0)) &&
            i + 1 < a->hooks.argc)
            return a->hooks.argv[i + 1];
        if (long_opt != NULL && strncmp(arg, long_opt, ll) == 0 && arg[ll] == '=')
            return arg + ll + 1;
    }
    return NULL;
}

static void
h_server_info(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    cJSON *root = cJSON_CreateObject(), *opts, *node;
    const mcplex_snapshot_t *snap = a->n_workers > 0 ? a->workers[0]->snapshot : NULL;
    const char *config = arg_value(a, "-c", "--config-path");
    char up[32];

    (void)req;
    if (config == NULL)
        config = arg_value(a, "-f", "--file");
    snprintf(up, sizeof(up), "%.0fs", uptime_s());
    cJSON_AddStringToObject(root, "version", "mcplex/" MCPLEX_VERSION "/Clean/RELEASE/BoringSSL-compatible");
    cJSON_AddStringToObject(root, "state", mcplex_admin_server_state_name(effective_state()));
    cJSON_AddStringToObject(root, "hot_restart_version", "disabled");
    opts = cJSON_AddObjectToObject(root, "command_line_options");
    cJSON_AddStringToObject(opts, "base_id", "0");
    cJSON_AddNumberToObject(opts, "concurrency", a->n_workers > 0 ? (double)a->n_workers : 1);
    cJSON_AddStringToObject(opts, "config_path", config != NULL ? config : "");
    cJSON_AddStringToObject(opts, "config_yaml", "");
    cJSON_AddStringToObject(opts, "admin_address_path", "");
    cJSON_AddStringToObject(opts, "local_address_ip_version", "v4");
    cJSON_AddStringToObject(opts, "log_level", mcplex_log_level_name(mcplex_log_get_level()));
    cJSON_AddStringToObject(opts, "component_log_level", "");
    cJSON_AddStringToObject(opts, "log_format", "%Y-%m-%dT%T.%eZ [%l] [%n] %v");
    cJSON_AddStringToObject(opts, "service_cluster",
                            snap != NULL && snap->node_cluster ? snap->node_cluster : "");
    cJSON_AddStringToObject(opts, "service_node", snap != NULL && snap->node_id ? snap->node_id : "");
    cJSON_AddStringToObject(opts, "mode", "Serve");
    {
        cJSON *args = cJSON_AddArrayToObject(opts, "restart_epoch_args");
        (void)args;
    }
    node = cJSON_AddObjectToObject(root, "node");
    cJSON_AddStringToObject(node, "id", snap != NULL && snap->node_id ? snap->node_id : "");
    cJSON_AddStringToObject(node, "cluster", snap != NULL && snap->node_cluster ? snap->node_cluster : "");
    cJSON_AddStringToObject(node, "user_agent_name", "mcplex");
    cJSON_AddStringToObject(node, "user_agent_version", MCPLEX_VERSION);
    cJSON_AddStringToObject(root, "uptime_current_epoch", up);
    cJSON_AddStringToObject(root, "uptime_all_epochs", up);
    respond_json(stream, 200, root);
}

/* ---- /stats ----------------------------------------------------------------------------------- */

static void
count_worker_sessions(mcplex_worker_t *w, void *arg)
{
    size_t *counts = arg;

    counts[w->index] = w->sessions != NULL ? w->sessions->by_id.count : 0;
}

static void
refresh_gauges(mcplex_admin_t *a)
{
    size_t sessions = 0;
    size_t *counts = mcplex_calloc(a->n_workers + 1, sizeof(*counts));

    for_each_worker(a, count_worker_sessions, counts);
    for (size_t i = 0; i < a->n_workers; i++)
        sessions += counts[i];
    free(counts);
    mcplex_server_stats_refresh(effective_state() == MCPLEX_SERVER_LIVE, (int)effective_state(),
                                a->n_workers > 0 ? a->n_workers : 1, sessions);
}

static void
h_stats_common(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req, int prom)
{
    char *filter = query_param(req->query, "filter");
    char *format = query_param(req->query, "format");
    char *used = query_param(req->query, "usedonly");
    char *type = query_param(req->query, "type");
    mcplex_stats_query_t q = {filter, used != NULL, type};
    char err[256] = "";
    char *text;
    const char *ctype = "text/plain; charset=UTF-8";

    refresh_gauges(a);
    if (format != NULL && strcmp(format, "prometheus") == 0)
        prom = 1;
    if (prom) {
        text = mcplex_stats_render_prometheus(&q, err, sizeof(err));
        ctype = "text/plain; version=0.0.4; charset=UTF-8";
    } else if (format != NULL && strcmp(format, "json") == 0) {
        text = mcplex_stats_render_json(&q, err, sizeof(err));
        ctype = "application/json";
    } else if (format == NULL || strcmp(format, "text") == 0) {
        text = mcplex_stats_render_text(&q, err, sizeof(err));
    } else {
        text = NULL;
        snprintf(err, sizeof(err), "usage: /stats?format=(html|active-html|json|prometheus|text)");
    }
    if (text == NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s\n", err);
        respond_text(stream, 400, msg);
    } else {
        respond(stream, 200, ctype, text, strlen(text));
    }
    free(text);
    free(filter);
    free(format);
    free(used);
    free(type);
}

static void
h_stats(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    h_stats_common(a, stream, req, 0);
}

static void
h_stats_prometheus(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    h_stats_common(a, stream, req, 1);
}

/* ---- /config_dump --------------------------------------------------------------------------- */

static void
add_timestamp(cJSON *obj, const char *key, int64_t ms)
{
    char buf[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ", (int)(ms % 1000));
    cJSON_AddStringToObject(obj, key, buf);
}

/* Adds "@type" first to a copy of |msg|. */
static cJSON *
typed(const char *type_url, const cJSON *msg)
{
    cJSON *out = cJSON_CreateObject();

    cJSON_AddStringToObject(out, "@type", type_url);
    for (const cJSON *c = msg != NULL ? msg->child : NULL; c != NULL; c = c->next)
        cJSON_AddItemToObject(out, c->string, cJSON_Duplicate(c, 1));
    return out;
}

/* The snapshot's bootstrap tree as the loader mapped it (kept by load.c); for a snapshot built
 * by xDS (none kept), the bootstrap mcplex started with. NULL when neither exists. */
static cJSON *
snapshot_bootstrap(const mcplex_admin_t *a, const mcplex_snapshot_t *s, int64_t *at)
{
    const char *text = s->bootstrap_json;

    *at = s->loaded_at_ms;
    if (text == NULL) {
        text = a->startup_bootstrap;
        *at = a->startup_loaded_at_ms;
    }
    return text != NULL ? cJSON_Parse(text) : NULL;
}

/* 1 if |arr| (static clusters or listeners of the bootstrap) has an item named |name|. */
static int
has_named(const cJSON *arr, const char *name)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

static const char *
cluster_type_name(mcplex_cluster_type_t t)
{
    switch (t) {
    case MCPLEX_CLUSTER_STATIC:
        return "STATIC";
    case MCPLEX_CLUSTER_STRICT_DNS:
        return "STRICT_DNS";
    case MCPLEX_CLUSTER_LOGICAL_DNS:
        return "LOGICAL_DNS";
    case MCPLEX_CLUSTER_EDS:
        return "EDS";
    default:
        return NULL;
    }
}

/* A Cluster as JSON from the model (for clusters that came over xDS: their source is gone). */
static cJSON *
cluster_json(const mcplex_cluster_t *c)
{
    cJSON *o = cJSON_CreateObject(), *la, *eps, *lbs;
    char ct[32];

    cJSON_AddStringToObject(o, "@type", "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    cJSON_AddStringToObject(o, "name", c->name);
    if (c->mcp != NULL) {
        cJSON *t = cJSON_AddObjectToObject(o, "cluster_type");
        cJSON_AddStringToObject(t, "name", "mcplex.clusters.mcp");
        return o;
    }
    if (cluster_type_name(c->type) != NULL)
        cJSON_AddStringToObject(o, "type", cluster_type_name(c->type));
    snprintf(ct, sizeof(ct), "%gs", c->connect_timeout_ms / 1000.0);
    cJSON_AddStringToObject(o, "connect_timeout", ct);
    la = cJSON_AddObjectToObject(o, "load_assignment");
    cJSON_AddStringToObject(la, "cluster_name", c->name);
    eps = cJSON_AddArrayToObject(la, "endpoints");
    lbs = cJSON_CreateArray();
    for (size_t i = 0; i < c->n_endpoints; i++) {
        cJSON *lb = cJSON_CreateObject(), *ep = cJSON_AddObjectToObject(lb, "endpoint");
        cJSON *sa = cJSON_AddObjectToObject(cJSON_AddObjectToObject(ep, "address"), "socket_address");
        cJSON_AddStringToObject(sa, "address", c->endpoints[i].host);
        cJSON_AddNumberToObject(sa, "port_value", c->endpoints[i].port);
        cJSON_AddNumberToObject(lb, "load_balancing_weight", c->endpoints[i].weight);
        cJSON_AddItemToArray(lbs, lb);
    }
    {
        cJSON *locality = cJSON_CreateObject();
        cJSON_AddItemToObject(locality, "lb_endpoints", lbs);
        cJSON_AddItemToArray(eps, locality);
    }
    return o;
}

/* A Listener as JSON from the model (name and address; its filters are in the routes dump). */
static cJSON *
listener_json(const mcplex_listener_cfg_t *l)
{
    cJSON *o = cJSON_CreateObject(), *sa;

    cJSON_AddStringToObject(o, "@type", "type.googleapis.com/envoy.config.listener.v3.Listener");
    cJSON_AddStringToObject(o, "name", l->name);
    sa = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "address"), "socket_address");
    cJSON_AddStringToObject(sa, "address", l->address);
    cJSON_AddNumberToObject(sa, "port_value", l->port);
    return o;
}

static cJSON *
get_any(const cJSON *obj, const char *snake, const char *camel)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, snake);
    return v != NULL ? v : cJSON_GetObjectItemCaseSensitive(obj, camel);
}

static void
h_config_dump(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    const mcplex_snapshot_t *snap = a->n_workers > 0 ? a->workers[0]->snapshot : NULL;
    cJSON *root = cJSON_CreateObject(), *configs = cJSON_AddArrayToObject(root, "configs");
    int64_t at = 0;
    cJSON *boot = snap != NULL ? snapshot_bootstrap(a, snap, &at) : NULL;
    cJSON *sr = boot != NULL ? get_any(boot, "static_resources", "staticResources") : NULL;
    cJSON *sr_clusters = sr != NULL ? cJSON_GetObjectItemCaseSensitive(sr, "clusters") : NULL;
    cJSON *sr_listeners = sr != NULL ? cJSON_GetObjectItemCaseSensitive(sr, "listeners") : NULL;
    cJSON *dump, *arr, *item;
    char version[32];

    (void)req;
    snprintf(version, sizeof(version), "%llu", snap != NULL ? (unsigned long long)snap->generation : 0ULL);
    /* BootstrapConfigDump */
    dump = cJSON_CreateObject();
    cJSON_AddStringToObject(dump, "@type", "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump");
    cJSON_AddItemToObject(dump, "bootstrap", boot != NULL ? cJSON_Duplicate(boot, 1) : cJSON_CreateObject());
    add_timestamp(dump, "last_updated", at);
    cJSON_AddItemToArray(configs, dump);
    /* ClustersConfigDump */
    dump = cJSON_CreateObject();
    cJSON_AddStringToObject(dump, "@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump");
    cJSON_AddStringToObject(dump, "version_info", version);
    arr = cJSON_AddArrayToObject(dump, "static_clusters");
    cJSON_ArrayForEach(item, sr_clusters)
    {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "cluster",
                              typed("type.googleapis.com/envoy.config.cluster.v3.Cluster", item));
        add_timestamp(e, "last_updated", at);
        cJSON_AddItemToArray(arr, e);
    }
    /* clusters of the live config that the bootstrap does not have came over xDS */
    arr = cJSON_AddArrayToObject(dump, "dynamic_active_clusters");
    for (size_t i = 0; snap != NULL && i < snap->n_clusters; i++) {
        cJSON *e;
        if (has_named(sr_clusters, snap->clusters[i].name) || strchr(snap->clusters[i].name, '/') != NULL)
            continue; /* static, or an implicit cluster of an MCP url target */
        e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "version_info", version);
        cJSON_AddItemToObject(e, "cluster", cluster_json(&snap->clusters[i]));
        if (snap->loaded_at_ms > 0)
            add_timestamp(e, "last_updated", snap->loaded_at_ms);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToArray(configs, dump);
    /* ListenersConfigDump */
    dump = cJSON_CreateObject();
    cJSON_AddStringToObject(dump, "@type", "type.googleapis.com/envoy.admin.v3.ListenersConfigDump");
    cJSON_AddStringToObject(dump, "version_info", version);
    arr = cJSON_AddArrayToObject(dump, "static_listeners");
    cJSON_ArrayForEach(item, sr_listeners)
    {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "listener",
                              typed("type.googleapis.com/envoy.config.listener.v3.Listener", item));
        add_timestamp(e, "last_updated", at);
        cJSON_AddItemToArray(arr, e);
    }
    arr = cJSON_AddArrayToObject(dump, "dynamic_listeners");
    for (size_t i = 0; snap != NULL && i < snap->n_listeners; i++) {
        cJSON *e, *active;
        if (has_named(sr_listeners, snap->listeners[i].name))
            continue;
        e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", snap->listeners[i].name);
        active = cJSON_AddObjectToObject(e, "active_state");
        cJSON_AddStringToObject(active, "version_info", version);
        cJSON_AddItemToObject(active, "listener", listener_json(&snap->listeners[i]));
        if (snap->loaded_at_ms > 0)
            add_timestamp(active, "last_updated", snap->loaded_at_ms);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToArray(configs, dump);
    /* RoutesConfigDump: the inline route configs of the static listeners' HCMs */
    dump = cJSON_CreateObject();
    cJSON_AddStringToObject(dump, "@type", "type.googleapis.com/envoy.admin.v3.RoutesConfigDump");
    arr = cJSON_AddArrayToObject(dump, "static_route_configs");
    cJSON_ArrayForEach(item, sr_listeners)
    {
        cJSON *chain;
        cJSON_ArrayForEach(chain, get_any(item, "filter_chains", "filterChains"))
        {
            cJSON *f;
            cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(chain, "filters"))
            {
                cJSON *tc = get_any(f, "typed_config", "typedConfig");
                cJSON *rc = tc != NULL ? get_any(tc, "route_config", "routeConfig") : NULL;
                if (rc != NULL) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddItemToObject(
                        e, "route_config",
                        typed("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", rc));
                    add_timestamp(e, "last_updated", at);
                    cJSON_AddItemToArray(arr, e);
                }
            }
        }
    }
    cJSON_AddArrayToObject(dump, "dynamic_route_configs");
    cJSON_AddItemToArray(configs, dump);
    cJSON_Delete(boot);
    respond_json(stream, 200, root);
}

/* ---- /clusters, /listeners ------------------------------------------------------------------- */

static void
h_clusters(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    const mcplex_snapshot_t *snap = a->n_workers > 0 ? a->workers[0]->snapshot : NULL;
    char *format = query_param(req->query, "format");
    int json = format != NULL && strcmp(format, "json") == 0;
    cJSON *root = cJSON_CreateObject(), *statuses = cJSON_AddArrayToObject(root, "cluster_statuses");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        abort();
    for (size_t i = 0; snap != NULL && i < snap->n_clusters; i++) {
        const mcplex_cluster_t *c = &snap->clusters[i];
        cJSON *cs = cJSON_CreateObject(), *hosts;
        cJSON_AddStringToObject(cs, "name", c->name);
        cJSON_AddBoolToObject(cs, "added_via_api", snap->generation > 1 ? 0 : 0);
        hosts = cJSON_AddArrayToObject(cs, "host_statuses");
        fprintf(f, "%s::observability_name::%s\n", c->name, c->name);
        fprintf(f, "%s::default_priority::max_connections::1024\n", c->name);
        fprintf(f, "%s::default_priority::max_pending_requests::1024\n", c->name);
        fprintf(f, "%s::default_priority::max_requests::1024\n", c->name);
        fprintf(f, "%s::default_priority::max_retries::3\n", c->name);
        fprintf(f, "%s::added_via_api::false\n", c->name);
        for (size_t e = 0; e < c->n_endpoints; e++) {
            const mcplex_endpoint_t *ep = &c->endpoints[e];
            char host[300];
            cJSON *hs = cJSON_CreateObject(), *addr, *sa, *stats, *st;
            uint64_t rq = mcplex_stat_value(
                mcplex_stats_counter("cluster.{envoy_cluster_name}.upstream_rq_total", c->name));
            snprintf(host, sizeof(host), "%s:%u", ep->host, ep->port);
            fprintf(f, "%s::%s::cx_active::0\n", c->name, host);
            fprintf(f, "%s::%s::rq_total::%llu\n", c->name, host, (unsigned long long)rq);
            fprintf(f, "%s::%s::hostname::%s\n", c->name, host, ep->host);
            fprintf(f, "%s::%s::health_flags::healthy\n", c->name, host);
            fprintf(f, "%s::%s::weight::%u\n", c->name, host, ep->weight);
            addr = cJSON_AddObjectToObject(hs, "address");
            sa = cJSON_AddObjectToObject(addr, "socket_address");
            cJSON_AddStringToObject(sa, "address", ep->host);
            cJSON_AddNumberToObject(sa, "port_value", ep->port);
            stats = cJSON_AddArrayToObject(hs, "stats");
            st = cJSON_CreateObject();
            cJSON_AddStringToObject(st, "name", "rq_total");
            cJSON_AddNumberToObject(st, "value", (double)rq);
            cJSON_AddStringToObject(st, "type", "COUNTER");
            cJSON_AddItemToArray(stats, st);
            cJSON_AddItemToObject(hs, "health_status", cJSON_CreateObject());
            cJSON_AddStringToObject(cJSON_GetObjectItem(hs, "health_status"), "eds_health_status", "HEALTHY");
            cJSON_AddNumberToObject(hs, "weight", ep->weight);
            cJSON_AddStringToObject(hs, "hostname", ep->host);
            cJSON_AddItemToArray(hosts, hs);
        }
        /* MCP backends: each target is a host of the cluster ("<kind>:<target>"). */
        for (size_t t = 0; c->mcp != NULL && t < c->mcp->n_targets; t++) {
            const mcplex_mcp_target_t *tg = &c->mcp->targets[t];
            const char *kind = tg->kind == MCPLEX_TARGET_STDIO ? "stdio"
                               : tg->kind == MCPLEX_TARGET_SSE ? "sse"
                                                               : "mcp";
            mcplex_mcp_target_record_t rec;
            cJSON *hs = cJSON_CreateObject();
            mcplex_mcp_stats_target_record(c->name, tg->name, &rec);
            fprintf(f, "%s::%s:%s::health_flags::%s\n", c->name, kind, tg->name,
                    strcmp(rec.state, "failed") == 0 ? "/failed_active_hc" : "healthy");
            fprintf(f, "%s::%s:%s::weight::1\n", c->name, kind, tg->name);
            cJSON_AddStringToObject(hs, "hostname", tg->name);
            cJSON_AddStringToObject(hs, "mcp_target_kind", kind);
            cJSON_AddItemToObject(hs, "health_status", cJSON_CreateObject());
            cJSON_AddStringToObject(cJSON_GetObjectItem(hs, "health_status"), "eds_health_status",
                                    strcmp(rec.state, "failed") == 0 ? "UNHEALTHY" : "HEALTHY");
            cJSON_AddItemToArray(hosts, hs);
        }
        cJSON_AddItemToArray(statuses, cs);
    }
    fclose(f);
    if (json)
        respond_json(stream, 200, root);
    else {
        cJSON_Delete(root);
        respond_text(stream, 200, buf);
    }
    free(buf);
    free(format);
}

static void
h_listeners(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    const mcplex_snapshot_t *snap = a->n_workers > 0 ? a->workers[0]->snapshot : NULL;
    char *format = query_param(req->query, "format");
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "listener_statuses");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        abort();
    for (size_t i = 0; snap != NULL && i < snap->n_listeners; i++) {
        const mcplex_listener_cfg_t *l = &snap->listeners[i];
        unsigned port = worker_listener_port(a->workers[0], l->name, l->port);
        cJSON *ls = cJSON_CreateObject(), *la = cJSON_AddObjectToObject(ls, "local_address");
        cJSON *sa = cJSON_AddObjectToObject(la, "socket_address");
        cJSON_AddStringToObject(ls, "name", l->name);
        cJSON_AddStringToObject(sa, "address", l->address);
        cJSON_AddNumberToObject(sa, "port_value", port);
        cJSON_AddItemToArray(arr, ls);
        fprintf(f, "%s::%s:%u\n", l->name, l->address, port);
    }
    fclose(f);
    if (format != NULL && strcmp(format, "json") == 0) {
        respond_json(stream, 200, root);
    } else {
        cJSON_Delete(root);
        respond_text(stream, 200, buf);
    }
    free(buf);
    free(format);
}

/* ---- /logging ----------------------------------------------------------------------------- */

static void
list_component(void *arg, const char *component, mcplex_log_level_t level)
{
    fprintf((FILE *)arg, "  %s: %s\n", component, mcplex_log_level_name(level));
}

static void
h_logging(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    int status = 200;
    const char *p = req->query;

    (void)a;
    if (!is_post(req) && p != NULL && *p != '\0') {
        respond_text(stream, 405, "This endpoint requires POST to change levels\n");
        return;
    }
    f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    /* Each "name=value": level=<l> sets every component; <component>=<l> one of them. */
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        if (eq != NULL) {
            char *key = url_decode(p, (size_t)(eq - p));
            char *val = url_decode(eq + 1, plen - (size_t)(eq - p) - 1);
            mcplex_log_level_t level;
            if (mcplex_log_parse_level(val, &level) != 0) {
                fprintf(f, "error: unknown level '%s'\n", val);
                status = 400;
            } else if (strcmp(key, "level") == 0) {
                mcplex_log_set_level(level);
                mcplex_log_info("admin", "log level set to %s", mcplex_log_level_name(level));
            } else if (strcmp(key, "paths") == 0) {
                fprintf(f, "error: paths= is not supported\n");
                status = 400;
            } else if (mcplex_log_set_component_level(key, level) != 0) {
                fprintf(f, "error: too many component levels\n");
                status = 400;
            } else {
                mcplex_log_info("admin", "log level of '%s' set to %s", key, mcplex_log_level_name(level));
            }
            free(key);
            free(val);
        } else {
            status = 400;
            fprintf(f, "usage: /logging?<name>=<level> (change single level)\n"
                       "usage: /logging?level=<level> (change all levels)\n"
                       "levels: trace debug info warning error critical off\n");
        }
        p = end != NULL ? end + 1 : NULL;
    }
    fprintf(f, "active loggers:\n");
    mcplex_log_foreach_component(list_component, f);
    fclose(f);
    respond_text(stream, status, buf);
    free(buf);
}

/* ---- health checks, draining, quitting ------------------------------------------------------- */

static void
h_healthcheck_fail(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    (void)a;
    (void)req;
    atomic_store(&hc_failed, 1);
    mcplex_log_info("admin", "health check failed by /healthcheck/fail");
    respond_text(stream, 200, "OK\n");
}

static void
h_healthcheck_ok(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    (void)a;
    (void)req;
    atomic_store(&hc_failed, 0);
    mcplex_log_info("admin", "health check restored by /healthcheck/ok");
    respond_text(stream, 200, "OK\n");
}

static void
drain_worker_listeners(mcplex_worker_t *w, void *arg)
{
    size_t *counts = arg;

    counts[w->index] = worker_drain_listeners(w);
}

static void
h_drain_listeners(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    size_t n = 0;

    size_t *counts = mcplex_calloc(a->n_workers + 1, sizeof(*counts));

    (void)req;
    for_each_worker(a, drain_worker_listeners, counts);
    for (size_t i = 0; i < a->n_workers; i++)
        n += counts[i];
    free(counts);
    mcplex_admin_set_server_state(MCPLEX_SERVER_DRAINING);
    mcplex_log_info("admin", "/drain_listeners: closed %zu listener socket%s", n, n == 1 ? "" : "s");
    respond_text(stream, 200, "OK\n");
}

static void
h_reset_counters(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    (void)a;
    (void)req;
    mcplex_stats_reset_counters();
    respond_text(stream, 200, "OK\n");
}

static void
quit_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_admin_t *a = arg;

    (void)fd;
    (void)what;
    if (a->hooks.quit != NULL)
        a->hooks.quit(a->hooks.arg);
}

static void
h_quitquitquit(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    struct timeval soon = {0, 20 * 1000};

    (void)req;
    mcplex_log_info("admin", "/quitquitquit: shutting down");
    mcplex_admin_set_server_state(MCPLEX_SERVER_DRAINING);
    respond_text(stream, 200, "OK\n");
    /* After this turn, so the answer is flushed before the shutdown tears things down. */
    if (a->quit_ev == NULL)
        a->quit_ev = event_new(a->base, -1, 0, quit_cb, a);
    event_add(a->quit_ev, &soon);
}

/* ---- /mcp/sessions, /mcp/targets ------------------------------------------------------------- */

static const char *
upstream_state_name(mcplex_upstream_state_t s)
{
    switch (s) {
    case MCPLEX_UPSTREAM_NEW:
        return "new";
    case MCPLEX_UPSTREAM_INITIALIZING:
        return "initializing";
    case MCPLEX_UPSTREAM_READY:
        return "ready";
    case MCPLEX_UPSTREAM_FAILED:
        return "failed";
    }
    return "unknown";
}

typedef struct session_walk {
    cJSON *arr;
    time_t now;
    int full_ids;
} session_walk_t;

static void
add_session(void *arg, const char *key, void *value)
{
    session_walk_t *sw = arg;
    const mcplex_session_t *s = value;
    cJSON *o = cJSON_CreateObject(), *targets;
    char prefix[16];

    (void)key;
    snprintf(prefix, sizeof(prefix), "%.8s", s->id != NULL ? s->id : "");
    cJSON_AddStringToObject(o, "id_prefix", prefix);
    cJSON_AddStringToObject(o, "backend", s->backend_name != NULL ? s->backend_name : "");
    cJSON_AddStringToObject(o, "protocol_version", s->protocol_version != NULL ? s->protocol_version : "");
    cJSON_AddNumberToObject(o, "age_seconds", (double)(sw->now - s->created));
    cJSON_AddNumberToObject(o, "idle_seconds", (double)(sw->now - s->last_used));
    cJSON_AddBoolToObject(o, "legacy_sse", s->legacy_sse);
    cJSON_AddBoolToObject(o, "server_stream_open", s->server_stream != NULL);
    cJSON_AddItemToObject(o, "client_info",
                          s->client_info != NULL ? cJSON_Duplicate(s->client_info, 1) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "config_generation",
                            s->snapshot != NULL ? (double)s->snapshot->generation : 0);
    targets = cJSON_AddArrayToObject(o, "targets");
    for (size_t i = 0; i < s->n_upstreams; i++) {
        const mcplex_upstream_t *u = &s->upstreams[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", u->target != NULL ? u->target->name : "");
        cJSON_AddStringToObject(t, "state", upstream_state_name(u->state));
        cJSON_AddNumberToObject(t, "restarts", u->restarts);
        if (u->failure != NULL)
            cJSON_AddStringToObject(t, "failure", u->failure);
        if (u->protocol_version != NULL)
            cJSON_AddStringToObject(t, "protocol_version", u->protocol_version);
        cJSON_AddItemToArray(targets, t);
    }
    cJSON_AddItemToArray(sw->arr, o);
}

static void
h_mcp_sessions(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(root, "sessions");
    size_t n = a->n_workers;
    session_walk_t *sw = mcplex_calloc(n + 1, sizeof(*sw));
    void **args = mcplex_calloc(n + 1, sizeof(*args));

    (void)req;
    /* one array per worker (they fill them at the same time), joined here */
    for (size_t i = 0; i < n; i++) {
        sw[i].arr = cJSON_CreateArray();
        sw[i].now = time(NULL);
        args[i] = &sw[i];
    }
    visit_sessions(a, add_session, args);
    for (size_t i = 0; i < n; i++) {
        cJSON *item;
        while ((item = cJSON_DetachItemFromArray(sw[i].arr, 0)) != NULL)
            cJSON_AddItemToArray(all, item);
        cJSON_Delete(sw[i].arr);
    }
    free(sw);
    free(args);
    cJSON_AddNumberToObject(root, "count", cJSON_GetArraySize(all));
    respond_json(stream, 200, root);
}

typedef struct target_walk {
    const char *backend;
    const char *target;
    size_t sessions, ready, failed, other;
    uint64_t restarts;
    char failure[256];
} target_walk_t;

static void
count_target(void *arg, const char *key, void *value)
{
    target_walk_t *tw = arg;
    const mcplex_session_t *s = value;

    (void)key;
    if (s->backend_name == NULL || strcmp(s->backend_name, tw->backend) != 0)
        return;
    for (size_t i = 0; i < s->n_upstreams; i++) {
        const mcplex_upstream_t *u = &s->upstreams[i];
        if (u->target == NULL || strcmp(u->target->name, tw->target) != 0)
            continue;
        tw->sessions++;
        tw->restarts += u->restarts;
        if (u->state == MCPLEX_UPSTREAM_READY)
            tw->ready++;
        else if (u->state == MCPLEX_UPSTREAM_FAILED)
            tw->failed++;
        else
            tw->other++;
        if (u->failure != NULL)
            snprintf(tw->failure, sizeof(tw->failure), "%s", u->failure);
    }
}

static void
add_backend_targets(mcplex_admin_t *a, cJSON *arr, const char *backend, const mcplex_mcp_backend_t *b)
{
    for (size_t t = 0; t < b->n_targets; t++) {
        const mcplex_mcp_target_t *tg = &b->targets[t];
        target_walk_t tw;
        mcplex_mcp_target_record_t rec;
        cJSON *o = cJSON_CreateObject();
        const char *state;

        memset(&tw, 0, sizeof(tw));
        tw.backend = backend;
        tw.target = tg->name;
        {
            /* one tally per worker (they count at the same time), summed here */
            target_walk_t *per = mcplex_calloc(a->n_workers + 1, sizeof(*per));
            void **args = mcplex_calloc(a->n_workers + 1, sizeof(*args));
            for (size_t i = 0; i < a->n_workers; i++) {
                per[i] = tw;
                args[i] = &per[i];
            }
            visit_sessions(a, count_target, args);
            for (size_t i = 0; i < a->n_workers; i++) {
                tw.sessions += per[i].sessions;
                tw.ready += per[i].ready;
                tw.failed += per[i].failed;
                tw.other += per[i].other;
                tw.restarts += per[i].restarts;
                if (per[i].failure[0] != '\0')
                    memcpy(tw.failure, per[i].failure, sizeof(tw.failure));
            }
            free(per);
            free(args);
        }
        mcplex_mcp_stats_target_record(backend, tg->name, &rec);
        if (tw.sessions > 0)
            state = tw.failed == tw.sessions ? "failed" : tw.ready > 0 ? "ready" : "initializing";
        else
            state = rec.state[0] != '\0' ? rec.state : "idle";
        cJSON_AddStringToObject(o, "backend", backend);
        cJSON_AddStringToObject(o, "name", tg->name);
        cJSON_AddStringToObject(o, "kind",
                                tg->kind == MCPLEX_TARGET_STDIO ? "stdio"
                                : tg->kind == MCPLEX_TARGET_SSE ? "sse"
                                                                : "streamable_http");
        cJSON_AddStringToObject(o, "state", state);
        cJSON_AddNumberToObject(o, "sessions", (double)tw.sessions);
        cJSON_AddNumberToObject(o, "sessions_ready", (double)tw.ready);
        cJSON_AddNumberToObject(o, "sessions_failed", (double)tw.failed);
        cJSON_AddNumberToObject(o, "restarts",
                                (double)(rec.restarts > tw.restarts ? rec.restarts : tw.restarts));
        cJSON_AddNumberToObject(o, "failures", (double)rec.failures);
        if (rec.last_error[0] != '\0') {
            cJSON_AddStringToObject(o, "last_error", rec.last_error);
            add_timestamp(o, "last_error_time", (int64_t)rec.last_error_at * 1000);
        } else if (tw.failure[0] != '\0') {
            cJSON_AddStringToObject(o, "last_error", tw.failure);
        } else {
            cJSON_AddItemToObject(o, "last_error", cJSON_CreateNull());
        }
        cJSON_AddNumberToObject(o, "timeout_ms", tg->timeout_ms);
        cJSON_AddItemToArray(arr, o);
    }
}

static void
h_mcp_targets(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    const mcplex_snapshot_t *snap = a->n_workers > 0 ? a->workers[0]->snapshot : NULL;
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "targets");
    char name[300];

    (void)req;
    for (size_t i = 0; snap != NULL && i < snap->n_clusters; i++)
        if (snap->clusters[i].mcp != NULL)
            add_backend_targets(a, arr, snap->clusters[i].name, snap->clusters[i].mcp);
    for (size_t i = 0; snap != NULL && i < snap->n_listeners; i++) {
        if (snap->listeners[i].hcm.mcp_router == NULL)
            continue;
        snprintf(name, sizeof(name), "%s/mcp_router", snap->listeners[i].name);
        add_backend_targets(a, arr, name, snap->listeners[i].hcm.mcp_router);
    }
    respond_json(stream, 200, root);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef void (*builtin_fn)(mcplex_admin_t *a, mcplex_http_stream_t *stream, const mcplex_http_request_t *req);

static const struct builtin {
    const char *path;
    int post_only;
    builtin_fn fn;
    const char *help;
} builtins[] = {
    {"/ready", 0, h_ready, "print server state, return 200 if LIVE, otherwise return 503"},
    {"/server_info", 0, h_server_info, "print server version/status information"},
    {"/stats", 0, h_stats, "print server stats (?filter=<regex>, ?format=json|prometheus, ?usedonly)"},
    {"/stats/prometheus", 0, h_stats_prometheus, "print server stats in prometheus format"},
    {"/config_dump", 0, h_config_dump, "dump current Envoy configs"},
    {"/clusters", 0, h_clusters, "upstream cluster status (?format=json)"},
    {"/listeners", 0, h_listeners, "print listener info (?format=json)"},
    {"/logging", 0, h_logging, "query/change logging levels (POST ?level=<l> or ?<component>=<l>)"},
    {"/healthcheck/fail", 1, h_healthcheck_fail, "cause the server to fail health checks"},
    {"/healthcheck/ok", 1, h_healthcheck_ok, "cause the server to pass health checks"},
    {"/drain_listeners", 1, h_drain_listeners, "drain listeners (stop accepting connections)"},
    {"/reset_counters", 1, h_reset_counters, "reset all counters to zero"},
    {"/quitquitquit", 1, h_quitquitquit, "exit the server"},
    {"/mcp/sessions", 0, h_mcp_sessions, "live MCP sessions: backend, targets, age, client info"},
    {"/mcp/targets", 0, h_mcp_targets, "MCP targets per backend: state, restarts, last error"},
};

static void
h_home(mcplex_admin_t *a, mcplex_http_stream_t *stream)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    (void)a;
    if (f == NULL)
        abort();
    fprintf(f, "admin commands are:\n");
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(builtins); i++)
        fprintf(f, "  %s%s: %s\n", builtins[i].path, builtins[i].post_only ? " (POST)" : "",
                builtins[i].help);
    for (size_t i = 0; i < n_routes; i++)
        fprintf(f, "  %s: %s\n", routes[i].prefix, routes[i].help != NULL ? routes[i].help : "");
    fclose(f);
    respond_text(stream, 200, buf);
    free(buf);
}

static void
admin_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    mcplex_admin_t *a = ctx;
    const admin_route_t *r = find_registered(req->path);

    mcplex_log_debug("admin", "%s %s%s%s", req->method, req->path, req->query != NULL ? "?" : "",
                     req->query != NULL ? req->query : "");
    if (r != NULL) {
        r->fn(r->ctx, stream, req);
        return;
    }
    if (strcmp(req->path, "/") == 0) {
        h_home(a, stream);
        return;
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(builtins); i++) {
        if (strcmp(req->path, builtins[i].path) != 0)
            continue;
        if (builtins[i].post_only && !is_post(req)) {
            respond_text(stream, 405, "This endpoint requires POST\n");
            return;
        }
        builtins[i].fn(a, stream, req);
        return;
    }
    respond_text(stream, 404, "invalid path. admin commands are listed at /\n");
}
