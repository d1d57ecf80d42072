/*
 * test_translate.c - unit tests of the Envoy bootstrap path of config loading (src/config/load.c,
 * translate.c, snapshot.c): bootstraps with mcp_router and STATIC/STRICT_DNS clusters, the
 * mcplex McpBackend cluster type (typed and as TypedStruct), mcp_multicluster, weighted
 * clusters, CORS precedence, the single-resource translators, snapshot refcounting, and every
 * error case with its exact path (several at once). Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/mem.h"
#include "config/config.h"
#include "config/pbmap.h"
#include "config/yaml_tree.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"

#define TU "type.googleapis.com/"

/* ---- helpers ------------------------------------------------------------------------------- */

static mcplex_snapshot_t *
load_ok(const char *yaml)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "test.yaml", MCPLEX_CONFIG_FORMAT_AUTO, &errs);
    if (s == NULL || errs.count != 0) {
        char *all = mcplex_errors_join(&errs, "\n  ");
        fail_msg("load failed:\n  %s", all);
    }
    mcplex_errors_dispose(&errs);
    assert_int_equal(atomic_load(&s->refcount), 1);
    return s;
}

/* Loads |yaml| that must fail; each of |paths| must start one error ("<path>: "). */
static void
load_fails_with(const char *yaml, const char *const *paths, size_t min_errors)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;
    char *all;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "test.yaml", MCPLEX_CONFIG_FORMAT_ENVOY, &errs);
    all = mcplex_errors_join(&errs, "\n  ");
    if (s != NULL)
        fail_msg("load succeeded, expected errors at %s", paths[0]);
    if (errs.count < min_errors)
        fail_msg("expected at least %zu errors, got %zu:\n  %s", min_errors, errs.count, all);
    for (size_t i = 0; paths[i] != NULL; i++) {
        size_t len = strlen(paths[i]);
        int found = 0;
        for (size_t k = 0; k < errs.count && !found; k++)
            found = strncmp(errs.items[k], paths[i], len) == 0 && strncmp(errs.items[k] + len, ": ", 2) == 0;
        if (!found)
            fail_msg("no error at '%s'; errors:\n  %s", paths[i], all);
    }
    free(all);
    mcplex_errors_dispose(&errs);
}

/* Same, and the error at paths[0] contains |text|. */
static void
load_fails_with_text(const char *yaml, const char *path, const char *text)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;
    char *all;
    int found = 0;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "test.yaml", MCPLEX_CONFIG_FORMAT_ENVOY, &errs);
    all = mcplex_errors_join(&errs, "\n  ");
    assert_null(s);
    for (size_t k = 0; k < errs.count && !found; k++) {
        found = strncmp(errs.items[k], path, strlen(path)) == 0 && strstr(errs.items[k], text) != NULL;
    }
    if (!found)
        fail_msg("no error at '%s' containing '%s'; errors:\n  %s", path, text, all);
    free(all);
    mcplex_errors_dispose(&errs);
}

static const mcplex_cluster_t *
cluster(const mcplex_snapshot_t *s, const char *name)
{
    const mcplex_cluster_t *c = mcplex_snapshot_find_cluster(s, name);

    if (c == NULL)
        fail_msg("no cluster '%s'", name);
    return c;
}

/* A listener with one HCM, |filters| and |vhosts| spliced in (YAML flow/block text). */
#define LISTENER(port, filters, routes)                                                                      \
    "  - name: l" #port "\n"                                                                                 \
    "    address: {socket_address: {address: 127.0.0.1, port_value: " #port "}}\n"                         \
    "    filter_chains:\n"                                                                                   \
    "    - filters:\n"                                                                                       \
    "      - name: envoy.filters.network.http_connection_manager\n"                                          \
    "        typed_config:\n"                                                                                \
    "          \"@type\": " TU "envoy.extensions.filters.network.http_connection_manager.v3."  \
    "HttpConnectionManager\n"                                                                                \
    "          stat_prefix: s" #port "\n"                                                                    \
    "          http_filters:\n" filters "          route_config:\n"                                          \
    "            virtual_hosts:\n"                                                                           \
    "            - name: vh\n"                                                                               \
    "              domains: [\"*\"]\n"                                                                       \
    "              routes:\n" routes

#define ROUTER_FILTER                                                                                        \
    "          - name: envoy.filters.http.router\n"                                                          \
    "            typed_config: {\"@type\": " TU "envoy.extensions.filters.http.router.v3.Router}\n"

#define MCP_PATH_ROUTE                                                                                       \
    "              - match: {path: /mcp, case_sensitive: false}\n"                                           \
    "                route: {cluster: tools}\n"

#define STATIC_CLUSTER(name, port)                                                                           \
    "  - name: " name "\n"                                                                                   \
    "    type: STATIC\n"                                                                                     \
    "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "              \
    "{address: 127.0.0.1, port_value: " #port "}}}}]}]}\n"

/* ---- successful loads ----------------------------------------------------------------------- */

static const char mcp_router_yaml[] =
    "node: {id: proxy-1, cluster: gw}\n"
    "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}\n"
    "static_resources:\n"
    "  listeners:\n" LISTENER(
        8081,
        "          - name: envoy.filters.http.cors\n"
        "            typed_config: {\"@type\": " TU "envoy.extensions.filters.http.cors.v3.Cors}\n"
        "          - name: envoy.filters.http.mcp\n"
        "            typed_config: {\"@type\": " TU "envoy.extensions.filters.http.mcp.v3.Mcp}\n"
        "          - name: envoy.filters.http.mcp_router\n"
        "            typed_config:\n"
        "              \"@type\": " TU "envoy.extensions.filters.http.mcp_router.v3.McpRouter\n"
        "              servers:\n"
        "              - name: time\n"
        "                mcp_cluster: {cluster: time_srv, timeout: 2s}\n"
        "              - mcp_cluster: {cluster: memory, path: /other, host_rewrite_literal: memory.local}\n",
        "              - match: {prefix: /mcp}\n"
        "                route: {cluster: not_needed_with_mcp_router, timeout: 0s}\n"
        "                typed_per_filter_config:\n"
        "                  envoy.filters.http.cors:\n"
        "                    \"@type\": " TU "envoy.extensions.filters.http.cors.v3.CorsPolicy\n"
        "                    allow_origin_string_match: [{exact: \"http://localhost:6274\"},"
        " {prefix: \"\"}]\n"
        "                    allow_headers: content-type,mcp-protocol-version\n"
        "                    expose_headers: Mcp-Session-Id\n"
        "                    max_age: \"600\"\n"
        "                    allow_credentials: true\n")
    "  clusters:\n" STATIC_CLUSTER("time_srv", 3001) STATIC_CLUSTER("memory", 3002);

static void
test_mcp_router_static_clusters(void **state)
{
    mcplex_snapshot_t *s = load_ok(mcp_router_yaml);
    const mcplex_listener_cfg_t *l;
    const mcplex_mcp_backend_t *b;
    const mcplex_route_t *r;

    assert_string_equal(s->node_id, "proxy-1");
    assert_string_equal(s->node_cluster, "gw");
    assert_string_equal(s->admin_address, "127.0.0.1");
    assert_int_equal(s->admin_port, 9901);
    assert_int_equal(s->n_listeners, 1);
    l = &s->listeners[0];
    assert_string_equal(l->name, "l8081");
    assert_string_equal(l->address, "127.0.0.1");
    assert_int_equal(l->port, 8081);
    assert_string_equal(l->hcm.stat_prefix, "s8081");
    assert_int_equal(l->hcm.codec_type, MCPLEX_CODEC_AUTO);
    assert_int_equal(l->hcm.cors_filter, 1);
    assert_int_equal(l->hcm.mcp_filter, 1);
    assert_int_equal(l->hcm.max_request_headers_kb, 60);
    assert_int_equal(l->hcm.stream_idle_timeout_ms, 300000);
    b = l->hcm.mcp_router;
    assert_non_null(b);
    assert_string_equal(b->separator, "__");
    assert_string_equal(b->server_name, "mcplex");
    assert_string_equal(b->server_version, MCPLEX_VERSION);
    assert_int_equal(b->prefix_mode, MCPLEX_PREFIX_CONDITIONAL);
    assert_int_equal(b->failure_mode, MCPLEX_FAIL_OPEN);
    assert_int_equal(b->n_targets, 2);
    assert_string_equal(b->targets[0].name, "time");
    assert_int_equal(b->targets[0].kind, MCPLEX_TARGET_STREAMABLE_HTTP);
    assert_string_equal(b->targets[0].http.cluster, "time_srv");
    assert_string_equal(b->targets[0].http.path, "/mcp");
    assert_null(b->targets[0].http.authority);
    assert_int_equal(b->targets[0].timeout_ms, 2000);
    assert_string_equal(b->targets[1].name, "memory"); /* defaults to the cluster name */
    assert_string_equal(b->targets[1].http.path, "/other");
    assert_string_equal(b->targets[1].http.authority, "memory.local");
    assert_int_equal(b->targets[1].timeout_ms, 5000);

    assert_int_equal(l->hcm.route_config.n_virtual_hosts, 1);
    assert_string_equal(l->hcm.route_config.virtual_hosts[0].domains[0], "*");
    r = &l->hcm.route_config.virtual_hosts[0].routes[0];
    assert_string_equal(r->prefix, "/mcp");
    assert_null(r->path);
    assert_int_equal(r->case_sensitive, 1);
    assert_int_equal(r->action, MCPLEX_ROUTE_CLUSTER);
    assert_string_equal(r->clusters[0].name, "not_needed_with_mcp_router");
    assert_int_equal(r->timeout_ms, 0);
    assert_non_null(r->cors);
    assert_int_equal(r->cors->n_allow_origins, 2);
    assert_string_equal(r->cors->allow_origins[0], "http://localhost:6274");
    assert_string_equal(r->cors->allow_origins[1], "*");
    assert_string_equal(r->cors->allow_headers, "content-type,mcp-protocol-version");
    assert_string_equal(r->cors->expose_headers, "Mcp-Session-Id");
    assert_null(r->cors->allow_methods);
    assert_string_equal(r->cors->max_age, "600");
    assert_int_equal(r->cors->allow_credentials, 1);

    assert_int_equal(s->n_clusters, 2);
    assert_int_equal(cluster(s, "time_srv")->type, MCPLEX_CLUSTER_STATIC);
    assert_int_equal(cluster(s, "time_srv")->connect_timeout_ms, 5000);
    assert_int_equal(cluster(s, "memory")->endpoints[0].port, 3002);
    assert_int_equal(cluster(s, "memory")->endpoints[0].weight, 1);
    mcplex_snapshot_unref(s);
}

#define MCPLEX_BACKEND_BODY                                                                                  \
    "        prefix_mode: ALWAYS\n"                                                                          \
    "        failure_mode: FAIL_CLOSED\n"                                                                    \
    "        name_separator: _\n"                                                                            \
    "        timeout: 7s\n"                                                                                  \
    "        server_info: {name: gw, title: Gateway}\n"                                                      \
    "        targets:\n"                                                                                     \
    "        - name: time\n"                                                                                 \
    "          stdio: {cmd: npx, args: [\"-y\", time-mcp], env: {TZ: UTC, A: \"1\"}, clear_env: true,"       \
    " working_dir: /tmp}\n"                                                                              \
    "        - name: remote\n"                                                                               \
    "          streamable_http:\n"                                                                           \
    "            url: \"https://mcp.example.com:8443/v1/mcp?x=1\"\n"                                         \
    "            request_headers_to_add: [{header: {key: authorization, value: Bearer t}}]\n"                \
    "          timeout: 0.25s\n"                                                                             \
    "        - name: legacy\n"                                                                               \
    "          sse: {cluster: plain, host_rewrite_literal: legacy.local}\n"                                  \
    "        - name: bare\n"                                                                                 \
    "          streamable_http: {url: \"http://[::1]\"}\n"

static const char mcplex_backend_yaml[] =
    "static_resources:\n"
    "  listeners:\n" LISTENER(3000, ROUTER_FILTER, MCP_PATH_ROUTE)
    "  clusters:\n"
    "  - name: tools\n"
    "    connect_timeout: 2s\n"
    "    cluster_type:\n"
    "      name: mcplex.clusters.mcp\n"
    "      typed_config:\n"
    "        \"@type\": " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n" MCPLEX_BACKEND_BODY
        STATIC_CLUSTER("plain", 3005);

static void
check_mcplex_backend(const mcplex_snapshot_t *s)
{
    const mcplex_cluster_t *c = cluster(s, "tools"), *imp;
    const mcplex_mcp_backend_t *b = c->mcp;
    const mcplex_mcp_target_t *t;

    assert_int_equal(c->type, MCPLEX_CLUSTER_MCP);
    assert_non_null(b);
    assert_string_equal(b->separator, "_");
    assert_int_equal(b->prefix_mode, MCPLEX_PREFIX_ALWAYS);
    assert_int_equal(b->failure_mode, MCPLEX_FAIL_CLOSED);
    assert_string_equal(b->server_name, "gw");
    assert_string_equal(b->server_version, MCPLEX_VERSION);
    assert_string_equal(b->server_title, "Gateway");
    assert_int_equal(b->n_targets, 4);

    t = &b->targets[0];
    assert_string_equal(t->name, "time");
    assert_int_equal(t->kind, MCPLEX_TARGET_STDIO);
    assert_string_equal(t->stdio.cmd, "npx");
    assert_int_equal(t->stdio.n_args, 2);
    assert_string_equal(t->stdio.args[0], "-y");
    assert_string_equal(t->stdio.args[1], "time-mcp");
    assert_int_equal(t->stdio.n_env, 2);
    assert_string_equal(t->stdio.env[0].name, "TZ");
    assert_string_equal(t->stdio.env[0].value, "UTC");
    assert_string_equal(t->stdio.env[1].value, "1");
    assert_int_equal(t->stdio.clear_env, 1);
    assert_string_equal(t->stdio.working_dir, "/tmp");
    assert_int_equal(t->timeout_ms, 7000); /* the backend's default */

    t = &b->targets[1];
    assert_int_equal(t->kind, MCPLEX_TARGET_STREAMABLE_HTTP);
    assert_string_equal(t->http.cluster, "tools/remote");
    assert_string_equal(t->http.path, "/v1/mcp?x=1");
    assert_string_equal(t->http.authority, "mcp.example.com:8443");
    assert_int_equal(t->http.tls, 1);
    assert_int_equal(t->http.n_headers, 1);
    assert_string_equal(t->http.headers[0].name, "authorization");
    assert_string_equal(t->http.headers[0].value, "Bearer t");
    assert_int_equal(t->timeout_ms, 250);
    imp = cluster(s, "tools/remote");
    assert_int_equal(imp->type, MCPLEX_CLUSTER_STRICT_DNS);
    assert_int_equal(imp->n_endpoints, 1);
    assert_string_equal(imp->endpoints[0].host, "mcp.example.com");
    assert_int_equal(imp->endpoints[0].port, 8443);
    assert_int_equal(imp->tls, 1);
    assert_int_equal(imp->connect_timeout_ms, 2000);

    t = &b->targets[2];
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.cluster, "plain");
    assert_string_equal(t->http.path, "/sse");
    assert_string_equal(t->http.authority, "legacy.local");
    assert_int_equal(t->http.tls, 0);

    t = &b->targets[3];
    assert_string_equal(t->http.path, "/");
    assert_string_equal(t->http.authority, "[::1]");
    imp = cluster(s, "tools/bare");
    assert_string_equal(imp->endpoints[0].host, "::1");
    assert_int_equal(imp->endpoints[0].port, 80);
    assert_int_equal(imp->tls, 0);

    assert_int_equal(s->n_clusters, 4);
    assert_string_equal(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].path, "/mcp");
    assert_int_equal(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].case_sensitive, 0);
    assert_int_equal(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].timeout_ms, 15000);
    assert_null(s->listeners[0].hcm.mcp_router);
    assert_int_equal(s->listeners[0].hcm.cors_filter, 0);
}

static void
test_mcplex_backend_typed(void **state)
{
    mcplex_snapshot_t *s = load_ok(mcplex_backend_yaml);

    check_mcplex_backend(s);
    mcplex_snapshot_unref(s);
}

static const char typed_struct_yaml[] =
    "static_resources:\n"
    "  listeners:\n" LISTENER(3000, ROUTER_FILTER, MCP_PATH_ROUTE)
    "  clusters:\n"
    "  - name: tools\n"
    "    connect_timeout: 2s\n"
    "    cluster_type:\n"
    "      name: mcplex.clusters.mcp\n"
    "      typed_config:\n"
    "        \"@type\": " TU "xds.type.v3.TypedStruct\n"
    "        type_url: " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n"
    "        value:\n" MCPLEX_BACKEND_BODY STATIC_CLUSTER("plain", 3005);

static void
test_mcplex_backend_typed_struct(void **state)
{
    char *yaml = mcplex_strdup(typed_struct_yaml);
    mcplex_snapshot_t *s;

    /* the TypedStruct's value is a Struct: indent the body two more spaces */
    {
        const char *body = strstr(typed_struct_yaml, "        value:\n") + strlen("        value:\n");
        size_t head = (size_t)(body - typed_struct_yaml);
        size_t cap = strlen(typed_struct_yaml) * 2;
        char *out = mcplex_malloc(cap), *o = out;
        const char *tail = strstr(body, "  - name: plain");
        memcpy(o, typed_struct_yaml, head);
        o += head;
        for (const char *c = body; c < tail; c++) {
            if (c == body || c[-1] == '\n') {
                *o++ = ' ';
                *o++ = ' ';
            }
            *o++ = *c;
        }
        strcpy(o, tail);
        free(yaml);
        yaml = out;
    }
    s = load_ok(yaml);
    check_mcplex_backend(s);
    mcplex_snapshot_unref(s);
    free(yaml);
}

static void
test_mcp_multicluster(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000, ROUTER_FILTER,
                                  "              - match: {prefix: /}\n"
                                  "                route: {weighted_clusters: {clusters: "
                                  "[{name: multi, weight: 3}, {name: multi2, weight: 1}]}, timeout: 30s}\n")
        "  clusters:\n"
        "  - name: multi\n"
        "    lb_policy: CLUSTER_PROVIDED\n"
        "    cluster_type:\n"
        "      name: envoy.clusters.mcp_multicluster\n"
        "      typed_config:\n"
        "        \"@type\": " TU "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig\n"
        "        servers:\n"
        "        - {name: a, mcp_cluster: {cluster: a_srv}}\n"
        "        - {mcp_cluster: {cluster: b.srv, path: /b, timeout: 10s}}\n"
        "  - name: multi2\n"
        "    cluster_type:\n"
        "      name: envoy.clusters.mcp_multicluster\n"
        "      typed_config:\n"
        "        \"@type\": " TU "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig\n"
        "        servers: [{name: a, mcp_cluster: {cluster: a_srv}}]\n"
        "  - name: a_srv\n"
        "    type: STRICT_DNS\n"
        "    typed_extension_protocol_options:\n"
        "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
        "        \"@type\": " TU "envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
        "        explicit_http_config: {http2_protocol_options: {}}\n"
        "    transport_socket:\n"
        "      name: envoy.transport_sockets.tls\n"
        "      typed_config:\n"
        "        \"@type\": " TU "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n"
        "        sni: a.example.com\n"
        "    load_assignment: {endpoints: [{lb_endpoints: [\n"
        "      {endpoint: {address: {socket_address: {address: a.example.com, port_value: 443}}},"
        " load_balancing_weight: 3},\n"
        "      {endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 443}}}}]}]}\n"
        "  - name: b.srv\n"
        "    type: LOGICAL_DNS\n"
        "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
        "{address: localhost, port_value: 3002}}}}]}]}\n";
    mcplex_snapshot_t *s = load_ok(yaml);
    const mcplex_cluster_t *c = cluster(s, "multi");
    const mcplex_route_t *r = &s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0];

    assert_int_equal(c->type, MCPLEX_CLUSTER_MCP);
    assert_string_equal(c->mcp->separator, "__");
    assert_int_equal(c->mcp->n_targets, 2);
    assert_string_equal(c->mcp->targets[0].name, "a");
    assert_string_equal(c->mcp->targets[0].http.cluster, "a_srv");
    assert_string_equal(c->mcp->targets[0].http.path, "/mcp");
    assert_int_equal(c->mcp->targets[0].timeout_ms, 5000);
    assert_string_equal(c->mcp->targets[1].name, "b.srv");
    assert_string_equal(c->mcp->targets[1].http.path, "/b");
    assert_int_equal(c->mcp->targets[1].timeout_ms, 10000);
    c = cluster(s, "a_srv");
    assert_int_equal(c->type, MCPLEX_CLUSTER_STRICT_DNS);
    assert_int_equal(c->http2, 1);
    assert_int_equal(c->tls, 1);
    assert_int_equal(c->n_endpoints, 2);
    assert_int_equal(c->endpoints[0].weight, 3);
    assert_int_equal(c->endpoints[1].weight, 1);
    c = cluster(s, "b.srv");
    assert_int_equal(c->type, MCPLEX_CLUSTER_LOGICAL_DNS);
    assert_string_equal(c->endpoints[0].host, "localhost");
    assert_int_equal(c->http2, 0);

    assert_int_equal(r->action, MCPLEX_ROUTE_WEIGHTED_CLUSTERS);
    assert_int_equal(r->n_clusters, 2);
    assert_string_equal(r->clusters[0].name, "multi");
    assert_int_equal(r->clusters[0].weight, 3);
    assert_int_equal(r->total_weight, 4);
    assert_int_equal(r->timeout_ms, 30000);
    assert_null(r->cors);
    mcplex_snapshot_unref(s);
}

static void
test_cors_precedence_and_direct_response(void **state)
{
#define CORS_TPFC(indent, origin)                                                                            \
    indent "typed_per_filter_config:\n" indent "  envoy.filters.http.cors:\n" indent                         \
           "    \"@type\": " TU "envoy.extensions.filters.http.cors.v3.CorsPolicy\n" indent        \
           "    allow_origin_string_match: [{exact: " origin "}]\n"
    static const char yaml[] =
        "static_resources:\n"
        "  listeners:\n"
        "  - address: {socket_address: {address: \"::1\", port_value: 3000}}\n"
        "    filter_chains:\n"
        "    - filters:\n"
        "      - name: hcm\n"
        "        typed_config:\n"
        "          \"@type\": " TU "envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager\n"
        "          stat_prefix: s\n"
        "          codec_type: HTTP2\n"
        "          max_request_headers_kb: 96\n"
        "          stream_idle_timeout: 0s\n"
        "          http_filters:\n"
        "          - name: envoy.filters.http.cors\n"
        "          - name: envoy.filters.http.router\n"
        "          route_config:\n"
        "            name: rc\n"
        "            virtual_hosts:\n"
        "            - name: a\n"
        "              domains: [a.example.com, \"*.b.example.com\"]\n"
        "              cors: {allow_origin_string_match: [{exact: vh-field}]}\n" CORS_TPFC("              ",
                                                                                        "vh-tpfc")
        "              routes:\n"
        "              - match: {prefix: /1}\n"
        "                route: {cluster: c, cors: {allow_origin_string_match: [{exact: route-field}]}}\n"
        CORS_TPFC("                ", "route-tpfc")
        "              - match: {prefix: /2}\n"
        "                route: {cluster: c, cors: {allow_origin_string_match: [{exact: route-field}],"
        " allow_methods: GET}}\n"
        "              - match: {prefix: /3}\n"
        "                route: {cluster: c}\n"
        "              - match: {prefix: /4}\n"
        "                direct_response: {status: 204, body: {inline_string: ok}}\n"
        "                typed_per_filter_config:\n"
        "                  envoy.filters.http.cors:\n"
        "                    \"@type\": " TU "envoy.config.route.v3.FilterConfig\n"
        "                    disabled: true\n"
        "            - name: b\n"
        "              domains: [\"*\"]\n"
        "              cors: {allow_origin_string_match: [{safe_regex: {regex: \".*\"}}]}\n"
        "              routes:\n"
        "              - match: {prefix: /}\n"
        "                route: {cluster: c}\n"
        "  clusters:\n" STATIC_CLUSTER("c", 3001);
    mcplex_snapshot_t *s = load_ok(yaml);
    const mcplex_listener_cfg_t *l = &s->listeners[0];
    const mcplex_virtual_host_t *a = &l->hcm.route_config.virtual_hosts[0];
    const mcplex_virtual_host_t *b = &l->hcm.route_config.virtual_hosts[1];

    assert_string_equal(l->name, "::1:3000");
    assert_string_equal(l->address, "::1");
    assert_int_equal(l->hcm.codec_type, MCPLEX_CODEC_HTTP2);
    assert_int_equal(l->hcm.max_request_headers_kb, 96);
    assert_int_equal(l->hcm.stream_idle_timeout_ms, 0);
    assert_int_equal(l->hcm.cors_filter, 1);
    assert_string_equal(l->hcm.route_config.name, "rc");
    assert_int_equal(a->n_domains, 2);
    assert_string_equal(a->routes[0].cors->allow_origins[0], "route-tpfc");
    assert_string_equal(a->routes[1].cors->allow_origins[0], "route-field");
    assert_string_equal(a->routes[1].cors->allow_methods, "GET");
    assert_string_equal(a->routes[2].cors->allow_origins[0], "vh-tpfc");
    assert_null(a->routes[3].cors); /* disabled on the route */
    assert_int_equal(a->routes[3].action, MCPLEX_ROUTE_DIRECT_RESPONSE);
    assert_int_equal(a->routes[3].direct_status, 204);
    assert_string_equal(a->routes[3].direct_body, "ok");
    assert_string_equal(b->routes[0].cors->allow_origins[0], "*");
    mcplex_snapshot_unref(s);
#undef CORS_TPFC
}

static void
test_example_data_file(void **state)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;
    char *all;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_file(MCPLEX_TEST_DATA "/envoy_static_bootstrap.yaml", MCPLEX_CONFIG_FORMAT_AUTO,
                                &errs);
    all = mcplex_errors_join(&errs, "\n  ");
    if (s == NULL)
        fail_msg("load failed:\n  %s", all);
    free(all);
    assert_int_equal(s->n_listeners, 2);
    assert_non_null(s->listeners[1].hcm.mcp_router);
    assert_int_equal(cluster(s, "mcp_multi")->type, MCPLEX_CLUSTER_MCP);
    assert_int_equal(cluster(s, "local_tools")->mcp->n_targets, 2);
    assert_non_null(mcplex_snapshot_find_cluster(s, "local_tools/remote"));
    mcplex_snapshot_unref(s);
    mcplex_errors_dispose(&errs);
}

/* ---- snapshot lifecycle, single-resource translators -------------------------------------------- */

static void
test_snapshot_refcount_and_generation(void **state)
{
    mcplex_snapshot_t *a = load_ok(mcp_router_yaml), *b = load_ok(mcp_router_yaml);

    assert_true(b->generation > a->generation);
    assert_ptr_equal(mcplex_snapshot_ref(a), a);
    assert_int_equal(atomic_load(&a->refcount), 2);
    mcplex_snapshot_unref(a);
    assert_int_equal(atomic_load(&a->refcount), 1);
    assert_null(mcplex_snapshot_find_cluster(a, "nope"));
    assert_null(mcplex_snapshot_find_cluster(NULL, "nope"));
    mcplex_snapshot_unref(a); /* frees (ASan checks) */
    mcplex_snapshot_free(b);
    mcplex_snapshot_free(NULL);
    mcplex_snapshot_unref(NULL);
}

static ProtobufCMessage *
map_json(const char *yaml, const ProtobufCMessageDescriptor *desc)
{
    mcplex_errors_t errs;
    cJSON *tree;
    ProtobufCMessage *m;

    mcplex_errors_init(&errs);
    tree = mcplex_yaml_parse(yaml, strlen(yaml), "t", &errs);
    assert_non_null(tree);
    m = mcplex_pbmap_from_json(tree, desc, "", 0, &errs);
    assert_non_null(m);
    cJSON_Delete(tree);
    mcplex_errors_dispose(&errs);
    return m;
}

static void
test_single_resource_translators(void **state)
{
    mcplex_errors_t errs;
    mcplex_config_refs_t refs;
    ProtobufCMessage *m;
    mcplex_cluster_t *arr;
    mcplex_route_config_t rc;
    size_t n = 0;

    mcplex_errors_init(&errs);
    mcplex_config_refs_init(&refs);
    m = map_json("name: be\n"
                 "cluster_type:\n"
                 "  name: mcplex.clusters.mcp\n"
                 "  typed_config:\n"
                 "    \"@type\": " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n"
                 "    targets:\n"
                 "    - {name: a, streamable_http: {url: \"http://h:1/x\"}}\n"
                 "    - {name: b, sse: {cluster: up}}\n",
                 &envoy__config__cluster__v3__cluster__descriptor);
    arr = mcplex_config_translate_cluster((const Envoy__Config__Cluster__V3__Cluster *)m, "res", &refs, &n,
                                          &errs);
    protobuf_c_message_free_unpacked(m, NULL);
    assert_int_equal(errs.count, 0);
    assert_non_null(arr);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].name, "be");
    assert_string_equal(arr[1].name, "be/a");
    assert_int_equal(refs.count, 1);
    assert_string_equal(refs.items[0].cluster, "up");
    assert_string_equal(refs.items[0].path, "res.cluster_type.typed_config.targets[1].sse.cluster");
    /* the reference check: missing, then an MCP cluster, then a plain one */
    assert_int_equal(mcplex_config_refs_check(&refs, arr, n, &errs), 1);
    assert_string_equal(errs.items[0],
                        "res.cluster_type.typed_config.targets[1].sse.cluster: unknown cluster 'up'");
    free(arr[1].name);
    arr[1].name = mcplex_strdup("up");
    arr[1].type = MCPLEX_CLUSTER_MCP;
    assert_int_equal(mcplex_config_refs_check(&refs, arr, n, &errs), 1);
    assert_non_null(strstr(errs.items[1], "is an MCP backend"));
    arr[1].type = MCPLEX_CLUSTER_STRICT_DNS;
    assert_int_equal(mcplex_config_refs_check(&refs, arr, n, &errs), 0);
    for (size_t i = 0; i < n; i++)
        mcplex_cluster_dispose(&arr[i]);
    free(arr);
    mcplex_config_refs_dispose(&refs);
    mcplex_errors_dispose(&errs);

    /* a route configuration on its own, refs not recorded */
    m = map_json("name: r\nvirtual_hosts: [{name: v, domains: [\"*\"], routes: [{match: {prefix: /}, "
                 "route: {cluster: anywhere}}]}]\n",
                 &envoy__config__route__v3__route_configuration__descriptor);
    assert_int_equal(mcplex_config_translate_route_configuration(
                         (const Envoy__Config__Route__V3__RouteConfiguration *)m, "", 0, NULL, &rc, &errs),
                     0);
    assert_string_equal(rc.virtual_hosts[0].routes[0].clusters[0].name, "anywhere");
    mcplex_route_config_dispose(&rc);
    protobuf_c_message_free_unpacked(m, NULL);

    /* errors leave the output zeroed */
    m = map_json("virtual_hosts: [{name: v, domains: [], routes: []}]\n",
                 &envoy__config__route__v3__route_configuration__descriptor);
    assert_int_equal(mcplex_config_translate_route_configuration(
                         (const Envoy__Config__Route__V3__RouteConfiguration *)m, "rds", 0, NULL, &rc, &errs),
                     -1);
    assert_null(rc.virtual_hosts);
    assert_string_equal(errs.items[0], "rds.virtual_hosts[0].domains: at least one domain is required");
    protobuf_c_message_free_unpacked(m, NULL);
    mcplex_errors_dispose(&errs);
}

static void
test_parse_url(void **state)
{
    mcplex_url_t u;
    char why[256];

    assert_int_equal(mcplex_config_parse_url("http://localhost:3001/mcp", &u, why, sizeof(why)), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 3001);
    assert_int_equal(u.port_given, 1);
    assert_string_equal(u.path, "/mcp");
    assert_string_equal(u.authority, "localhost:3001");
    assert_int_equal(u.tls, 0);
    mcplex_url_dispose(&u);
    assert_int_equal(mcplex_config_parse_url("https://example.com?q", &u, why, sizeof(why)), 0);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/?q");
    mcplex_url_dispose(&u);
    assert_int_equal(mcplex_config_parse_url("ftp://x/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://h:0/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://h:99999/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://h:/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://[::1/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://u@h/", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://h/a b", &u, why, sizeof(why)), -1);
    assert_int_equal(mcplex_config_parse_url("http://h/#f", &u, why, sizeof(why)), -1);
    assert_null(u.host);
}

/* ---- errors -------------------------------------------------------------------------------- */

#define HCM_PATH "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
#define ROUTE0 HCM_PATH ".route_config.virtual_hosts[0].routes[0]"

static void
test_error_unknown_field(void **state)
{
    static const char yaml[] = "static_resources:\n"
                               "  clusters:\n"
                               "  - name: c\n"
                               "    typ: STATIC\n";
    static const char *const paths[] = {"static_resources.clusters[0].typ", NULL};

    load_fails_with(yaml, paths, 1);
}

static void
test_error_missing_cluster_and_weights(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000, ROUTER_FILTER,
                                  "              - match: {prefix: /a}\n"
                                  "                route: {cluster: nope}\n"
                                  "              - match: {prefix: /b}\n"
                                  "                route: {weighted_clusters: {clusters: "
                                  "[{name: c, weight: 0}, {name: also_nope, weight: 0}]}}\n"
                                  "              - match: {prefix: /c}\n"
                                  "                route: {weighted_clusters: {clusters: [{name: c}]}}\n")
        "  clusters:\n" STATIC_CLUSTER("c", 3001);
    static const char *const paths[] = {
        ROUTE0 ".route.cluster",
        HCM_PATH ".route_config.virtual_hosts[0].routes[1].route.weighted_clusters",
        HCM_PATH ".route_config.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[1].name",
        HCM_PATH ".route_config.virtual_hosts[0].routes[2].route.weighted_clusters.clusters[0].weight",
        NULL};

    load_fails_with(yaml, paths, 4);
    load_fails_with_text(yaml, ROUTE0 ".route.cluster", "unknown cluster 'nope'");
    load_fails_with_text(yaml, HCM_PATH ".route_config.virtual_hosts[0].routes[1].route.weighted_clusters: ",
                         "the sum of the weights must be greater than 0");
}

static void
test_error_mcp_targets(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  clusters:\n"
        "  - name: be\n"
        "    cluster_type:\n"
        "      name: mcplex.clusters.mcp\n"
        "      typed_config:\n"
        "        \"@type\": " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n"
        "        name_separator: \"-\"\n"
        "        targets:\n"
        "        - {name: a, stdio: {cmd: x}}\n"
        "        - {name: a, stdio: {cmd: y}}\n"
        "        - {name: b__c, stdio: {cmd: y}}\n"
        "        - {name: d, stdio: {args: [x]}}\n"
        "        - {name: e, streamable_http: {url: \"ftp://nope\"}}\n"
        "        - {name: f, sse: {cluster: be}}\n"
        "        - {name: g}\n"
        "  - name: be2\n"
        "    cluster_type:\n"
        "      name: mcplex.clusters.mcp\n"
        "      typed_config:\n"
        "        \"@type\": " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n"
        "  - name: other\n"
        "    cluster_type: {name: foo.cluster, typed_config: {\"@type\": " TU "google.protobuf.Empty}}\n";
#define T(i) "static_resources.clusters[0].cluster_type.typed_config.targets[" #i "]"
    static const char *const paths[] = {"static_resources.clusters[0].cluster_type.typed_config."
                                        "name_separator",
                                        T(1) ".name",
                                        T(2) ".name",
                                        T(3) ".stdio.cmd",
                                        T(4) ".streamable_http.url",
                                        T(6),
                                        "static_resources.clusters[1].cluster_type.typed_config.targets",
                                        "static_resources.clusters[2].cluster_type.typed_config",
                                        NULL};

    load_fails_with(yaml, paths, 8);
    load_fails_with_text(yaml, T(1) ".name", "duplicate target name 'a'");
    load_fails_with_text(yaml, "static_resources.clusters[2].cluster_type.typed_config",
                         "Didn't find a registered implementation for 'foo.cluster'");
#undef T
}

static void
test_error_mcp_target_cluster_refs(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  clusters:\n"
        "  - name: be\n"
        "    cluster_type:\n"
        "      name: mcplex.clusters.mcp\n"
        "      typed_config:\n"
        "        \"@type\": " TU "mcplex.extensions.clusters.mcp.v1.McpBackend\n"
        "        targets:\n"
        "        - {name: f, sse: {cluster: be}}\n"
        "        - {name: g, streamable_http: {cluster: missing}}\n";
#define T(i) "static_resources.clusters[0].cluster_type.typed_config.targets[" #i "]"
    static const char *const paths[] = {T(0) ".sse.cluster", T(1) ".streamable_http.cluster", NULL};

    load_fails_with(yaml, paths, 2);
    load_fails_with_text(yaml, T(0) ".sse.cluster", "is an MCP backend");
#undef T
}

static void
test_error_duplicate_clusters_and_ports(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  listeners:\n"
        "  - name: l\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n"
        "    filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: "
        "{\"@type\": " TU "google.protobuf.Empty}}]}]\n"
        "  - name: l2\n"
        "    address: {socket_address: {address: example.com, port_value: 70000}}\n"
        "  clusters:\n" STATIC_CLUSTER("c", 3001) STATIC_CLUSTER("c", 3002)
        "  - name: d\n"
        "    type: STATIC\n"
        "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
        "{address: not-an-ip, port_value: 1}}}, load_balancing_weight: 0}]}]}\n"
        "  - name: e\n"
        "    type: EDS\n"
        "  - name: f\n"
        "    type: STRICT_DNS\n";
    static const char *const paths[] = {
        "static_resources.clusters[1].name",
        "static_resources.listeners[0].address.socket_address.port_value",
        "static_resources.listeners[0].filter_chains[0].filters[0]",
        "static_resources.listeners[1].address.socket_address.address",
        "static_resources.listeners[1].address.socket_address.port_value",
        "static_resources.listeners[1].filter_chains",
        "static_resources.clusters[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address."
        "socket_address.address",
        "static_resources.clusters[3].type",
        "static_resources.clusters[4].load_assignment",
        NULL};

    load_fails_with(yaml, paths, 9);
    load_fails_with_text(yaml, "static_resources.clusters[1].name", "duplicate cluster name 'c'");
    load_fails_with_text(yaml, "static_resources.clusters[3].type", "EDS needs xDS (dynamic_resources)");
    load_fails_with_text(yaml, "static_resources.listeners[0].filter_chains[0].filters[0]",
                         "Didn't find a registered implementation for 'envoy.filters.network.tcp_proxy'");
}

static void
test_error_http_filters(void **state)
{
    static const char unknown[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000,
                                  "          - name: envoy.filters.http.lua\n"
                                  "            typed_config: {\"@type\": " TU "google.protobuf.Empty}\n"
                                  "          - name: envoy.filters.http.cors\n",
                                  "              - match: {prefix: /}\n"
                                  "                direct_response: {status: 200}\n");
    static const char *const unknown_paths[] = {HCM_PATH ".http_filters[0]", HCM_PATH ".http_filters[1]",
                                                NULL};
    static const char optional[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000,
                                  "          - name: envoy.filters.http.lua\n"
                                  "            is_optional: true\n"
                                  "            typed_config: {\"@type\": " TU "google.protobuf.Empty}\n"
                                  ROUTER_FILTER,
                                  "              - match: {prefix: /}\n"
                                  "                direct_response: {status: 200}\n");
    static const char terminal_first[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000, ROUTER_FILTER "          - name: envoy.filters.http.cors\n",
                                  "              - match: {prefix: /}\n"
                                  "                direct_response: {status: 200}\n");
    static const char *const terminal_paths[] = {HCM_PATH ".http_filters[0]", HCM_PATH ".http_filters[1]",
                                                 NULL};
    mcplex_snapshot_t *s;

    load_fails_with(unknown, unknown_paths, 2);
    load_fails_with_text(unknown, HCM_PATH ".http_filters[0]",
                         "Didn't find a registered implementation for 'envoy.filters.http.lua' "
                         "with type URL: 'google.protobuf.Empty'");
    load_fails_with_text(unknown, HCM_PATH ".http_filters[1]",
                         "non-terminal filter named 'envoy.filters.http.cors' is the last filter");
    s = load_ok(optional);
    assert_int_equal(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].action,
                     MCPLEX_ROUTE_DIRECT_RESPONSE);
    mcplex_snapshot_unref(s);
    load_fails_with(terminal_first, terminal_paths, 2);
    load_fails_with_text(terminal_first, HCM_PATH ".http_filters[0]", "must be the last filter");
}

static void
test_error_bad_duration_and_misc(void **state)
{
    static const char yaml[] =
        "dynamic_resources: {}\n"
        "static_resources:\n"
        "  listeners:\n"
        "  - name: l\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 3000}}\n"
        "    filter_chains:\n"
        "    - filters:\n"
        "      - name: envoy.filters.network.http_connection_manager\n"
        "        typed_config:\n"
        "          \"@type\": " TU "envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager\n"
        "          rds: {route_config_name: r}\n"
        "          http_filters: []\n"
        "  clusters:\n"
        "  - name: c\n"
        "    connect_timeout: 5x\n";
    static const char *const paths[] = {"static_resources.clusters[0].connect_timeout", NULL};
    static const char yaml2[] =
        "dynamic_resources: {}\n"
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000, "            []\n",
                                  "              - match: {safe_regex: {regex: \"/a.*\"}}\n"
                                  "                route: {cluster: c}\n"
                                  "              - match: {prefix: /, headers: "
                                  "[{name: x, present_match: true}]}\n"
                                  "                redirect: {path_redirect: /x}\n"
                                  "              - route: {cluster: c}\n"
                                  "              - match: {path: /}\n"
                                  "                direct_response: {status: 99}\n")
        "  clusters:\n" STATIC_CLUSTER("c", 3001);
    static const char *const paths2[] = {"dynamic_resources",
                                         HCM_PATH ".http_filters",
                                         ROUTE0 ".match.safe_regex",
                                         HCM_PATH ".route_config.virtual_hosts[0].routes[1].match.headers",
                                         HCM_PATH ".route_config.virtual_hosts[0].routes[1].redirect",
                                         HCM_PATH ".route_config.virtual_hosts[0].routes[2].match",
                                         HCM_PATH
                                         ".route_config.virtual_hosts[0].routes[3].direct_response.status",
                                         NULL};
    static const char yaml3[] =
        "static_resources:\n"
        "  listeners:\n"
        "  - name: l\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 3000}}\n"
        "    filter_chains:\n"
        "    - filters:\n"
        "      - name: envoy.filters.network.http_connection_manager\n"
        "        typed_config:\n"
        "          \"@type\": " TU "envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager\n"
        "          stat_prefix: s\n"
        "          rds: {route_config_name: r}\n"
        "          http_filters: [{name: envoy.filters.http.router}]\n";

    load_fails_with(yaml, paths, 1);
    /* the mapper stops at malformed values, so the translator's errors come in a second load */
    load_fails_with(yaml2, paths2, 7);
    load_fails_with_text(yaml2, ROUTE0 ".match.safe_regex", "only prefix and path matches are supported");
    load_fails_with_text(yaml3, HCM_PATH ".rds", "rds is not supported in static config yet");
}

static void
test_error_mcp_router(void **state)
{
    static const char yaml[] =
        "static_resources:\n"
        "  listeners:\n" LISTENER(3000,
                                  "          - name: envoy.filters.http.mcp_router\n"
                                  "            typed_config:\n"
                                  "              \"@type\": " TU "envoy.extensions.filters.http."
                                  "mcp_router.v3.McpRouter\n"
                                  "              servers:\n"
                                  "              - mcp_cluster: {cluster: be}\n"
                                  "              - mcp_cluster: {cluster: nope}\n"
                                  "              - name: be\n"
                                  "                mcp_cluster: {cluster: plain}\n"
                                  "              - name: x\n"
                                  "              - name: \"bad+name\"\n"
                                  "                mcp_cluster: {cluster: plain}\n",
                                  "              - match: {prefix: /}\n"
                                  "                route: {cluster: any_name_is_fine}\n")
        "  clusters:\n"
        "  - name: be\n"
        "    cluster_type:\n"
        "      name: envoy.clusters.mcp_multicluster\n"
        "      typed_config:\n"
        "        \"@type\": " TU "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig\n"
        "        servers: [{name: p, mcp_cluster: {cluster: plain}}]\n"
        "  - name: be_empty\n"
        "    cluster_type:\n"
        "      name: envoy.clusters.mcp_multicluster\n"
        "      typed_config:\n"
        "        \"@type\": " TU "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig\n"
        "        servers: []\n" STATIC_CLUSTER("plain", 3001);
#define S(i) HCM_PATH ".http_filters[0].typed_config.servers[" #i "]"
    static const char *const paths[] = {
        S(0) ".mcp_cluster.cluster", S(1) ".mcp_cluster.cluster", S(2) ".name", S(3) ".mcp_cluster",
        S(4) ".name",
        "static_resources.clusters[1].cluster_type.typed_config.servers", NULL};

    load_fails_with(yaml, paths, 6);
    load_fails_with_text(yaml, S(0) ".mcp_cluster.cluster", "is an MCP backend");
    load_fails_with_text(yaml, S(2) ".name", "duplicate target name 'be'");
#undef S
}

static void
test_error_format_detection(void **state)
{
    static const char neither[] = "foo: 1\n";
    mcplex_errors_t errs;

    mcplex_errors_init(&errs);
    assert_null(mcplex_config_load_text(neither, strlen(neither), "t", MCPLEX_CONFIG_FORMAT_AUTO, &errs));
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.items[0], "cannot tell the config format"));
    mcplex_errors_dispose(&errs);
    /* with -c it is an Envoy bootstrap with an unknown field */
    assert_null(mcplex_config_load_text(neither, strlen(neither), "t", MCPLEX_CONFIG_FORMAT_ENVOY, &errs));
    assert_true(errs.count >= 1);
    assert_int_equal(strncmp(errs.items[0], "foo: ", 5), 0);
    mcplex_errors_dispose(&errs);
    assert_null(mcplex_config_load_file("/nonexistent/mcplex.yaml", MCPLEX_CONFIG_FORMAT_AUTO, &errs));
    assert_true(errs.count >= 1);
    mcplex_errors_dispose(&errs);
}

/* --- HTTP/2 (issue 4): http2_protocol_options and drain_timeout of an HCM --- */
#define H2_HCM_YAML(opts)                                                                                    \
    "static_resources:\n"                                                                                    \
    "  listeners:\n"                                                                                         \
    "  - name: l\n"                                                                                          \
    "    address: {socket_address: {address: 127.0.0.1, port_value: 3000}}\n"                               \
    "    filter_chains:\n"                                                                                   \
    "    - filters:\n"                                                                                       \
    "      - name: hcm\n"                                                                                    \
    "        typed_config:\n"                                                                                \
    "          \"@type\": " TU "envoy.extensions.filters.network.http_connection_manager.v3."                  \
    "HttpConnectionManager\n"                                                                                \
    "          stat_prefix: s\n" opts                                                                       \
    "          route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: [{match: {prefix: /},"     \
    " direct_response: {status: 200}}]}]}\n"                                                                 \
    "          http_filters:\n"                                                                              \
    "          - name: envoy.filters.http.router\n"                                                          \
    "            typed_config: {\"@type\": " TU "envoy.extensions.filters.http.router.v3.Router}\n"

static void
test_hcm_http2_options(void **state)
{
    static const char yaml[] = H2_HCM_YAML(
        "          drain_timeout: 2.5s\n"
        "          http2_protocol_options: {max_concurrent_streams: 7, initial_stream_window_size: 70000,"
        " initial_connection_window_size: 1048576, hpack_table_size: 4096}\n");
    static const char defaults[] = H2_HCM_YAML("");
    static const char bad[] = H2_HCM_YAML(
        "          http2_protocol_options: {max_concurrent_streams: 0, initial_stream_window_size: 100}\n");
    static const char *const bad_paths[] = {
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http2_protocol_options."
        "max_concurrent_streams",
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http2_protocol_options."
        "initial_stream_window_size",
        NULL};
    mcplex_snapshot_t *s;

    (void)state;
    s = load_ok(yaml);
    assert_int_equal(s->listeners[0].hcm.http2_max_concurrent_streams, 7);
    assert_int_equal(s->listeners[0].hcm.http2_initial_stream_window_size, 70000);
    assert_int_equal(s->listeners[0].hcm.http2_initial_connection_window_size, 1048576);
    assert_int_equal(s->listeners[0].hcm.drain_timeout_ms, 2500);
    mcplex_snapshot_unref(s);
    s = load_ok(defaults);
    assert_int_equal(s->listeners[0].hcm.http2_max_concurrent_streams, 0); /* the codec's default */
    assert_int_equal(s->listeners[0].hcm.drain_timeout_ms, 5000);
    mcplex_snapshot_unref(s);
    load_fails_with(bad, bad_paths, 2);
}
/* --- end HTTP/2 --- */

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hcm_http2_options), /* HTTP/2 (issue 4) */
        cmocka_unit_test(test_mcp_router_static_clusters),
        cmocka_unit_test(test_mcplex_backend_typed),
        cmocka_unit_test(test_mcplex_backend_typed_struct),
        cmocka_unit_test(test_mcp_multicluster),
        cmocka_unit_test(test_cors_precedence_and_direct_response),
        cmocka_unit_test(test_example_data_file),
        cmocka_unit_test(test_snapshot_refcount_and_generation),
        cmocka_unit_test(test_single_resource_translators),
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_error_unknown_field),
        cmocka_unit_test(test_error_missing_cluster_and_weights),
        cmocka_unit_test(test_error_mcp_targets),
        cmocka_unit_test(test_error_mcp_target_cluster_refs),
        cmocka_unit_test(test_error_duplicate_clusters_and_ports),
        cmocka_unit_test(test_error_http_filters),
        cmocka_unit_test(test_error_bad_duration_and_misc),
        cmocka_unit_test(test_error_mcp_router),
        cmocka_unit_test(test_error_format_detection),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
