/*
 * test_local_config.c - unit tests of the agentgateway-style local file (src/config/local_config.c)
 * through the whole loader: the seed file of issue 2 (and examples/default.yaml), weighted
 * backends, URL and host/port/path targets, several matches, named and short-form backends, the
 * admin address, the bootstrap JSON shape, and every error case with its exact path (several at
 * once). Single-threaded.
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
#include "config/yaml_tree.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static mcplex_snapshot_t *
load_ok(const char *yaml, mcplex_config_format_t hint)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "local.yaml", hint, &errs);
    if (s == NULL || errs.count != 0) {
        char *all = mcplex_errors_join(&errs, "\n  ");
        fail_msg("load failed:\n  %s", all);
    }
    mcplex_errors_dispose(&errs);
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
    s = mcplex_config_load_text(yaml, strlen(yaml), "local.yaml", MCPLEX_CONFIG_FORMAT_LOCAL, &errs);
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

/* The error |line| ("path: message") must be among the errors of |yaml|. */
static void
load_fails_with_line(const char *yaml, const char *line)
{
    mcplex_errors_t errs;
    char *all;
    int found = 0;

    mcplex_errors_init(&errs);
    assert_null(mcplex_config_load_text(yaml, strlen(yaml), "local.yaml", MCPLEX_CONFIG_FORMAT_LOCAL, &errs));
    all = mcplex_errors_join(&errs, "\n  ");
    for (size_t k = 0; k < errs.count && !found; k++)
        found = strcmp(errs.items[k], line) == 0;
    if (!found)
        fail_msg("no error '%s'; errors:\n  %s", line, all);
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

/* ---- the seed file -------------------------------------------------------------------------- */

static const char seed_yaml[] =
    "binds:\n"
    "- port: 3000\n"
    "  listeners:\n"
    "  - routes:\n"
    "    - policies:\n"
    "        cors:\n"
    "          allowOrigins: [\"*\"]\n"
    "          allowHeaders: [mcp-protocol-version, content-type, cache-control]\n"
    "          exposeHeaders: [\"Mcp-Session-Id\"]\n"
    "      backends:\n"
    "      - mcp:\n"
    "          targets:\n"
    "          - name: time\n"
    "            stdio: {cmd: npx, args: [\"-y\", \"time-mcp\"]}\n"
    "          - name: everything\n"
    "            stdio: {cmd: npx, args: [\"-y\", \"@modelcontextprotocol/server-everything\"]}\n";

#define SEED_ALLOW "mcp-protocol-version,content-type,cache-control"
#define SEED_EXPOSE "Mcp-Session-Id"

/* The seed example (and examples/default.yaml, the same but for its CORS headers). */
static void
check_seed(const mcplex_snapshot_t *s, const char *allow_headers, const char *expose_headers)
{
    const mcplex_listener_cfg_t *l;
    const mcplex_route_t *r;
    const mcplex_cluster_t *c;
    const mcplex_mcp_backend_t *b;

    assert_string_equal(s->admin_address, "127.0.0.1");
    assert_int_equal(s->admin_port, 15000);
    assert_int_equal(s->n_listeners, 1);
    l = &s->listeners[0];
    assert_string_equal(l->name, "bind/3000");
    assert_string_equal(l->address, "127.0.0.1");
    assert_int_equal(l->port, 3000);
    assert_string_equal(l->hcm.stat_prefix, "bind_3000");
    assert_int_equal(l->hcm.cors_filter, 1);
    assert_null(l->hcm.mcp_router);
    assert_int_equal(l->hcm.route_config.n_virtual_hosts, 1);
    assert_int_equal(l->hcm.route_config.virtual_hosts[0].n_domains, 1);
    assert_string_equal(l->hcm.route_config.virtual_hosts[0].domains[0], "*");
    assert_int_equal(l->hcm.route_config.virtual_hosts[0].n_routes, 1);
    r = &l->hcm.route_config.virtual_hosts[0].routes[0];
    assert_string_equal(r->prefix, "/");
    assert_int_equal(r->action, MCPLEX_ROUTE_CLUSTER);
    assert_int_equal(r->n_clusters, 1);
    assert_string_equal(r->clusters[0].name, "route0/backend0");
    assert_int_equal(r->timeout_ms, 0);
    assert_non_null(r->cors);
    assert_int_equal(r->cors->n_allow_origins, 1);
    assert_string_equal(r->cors->allow_origins[0], "*");
    assert_string_equal(r->cors->allow_headers, allow_headers);
    assert_string_equal(r->cors->expose_headers, expose_headers);
    assert_null(r->cors->allow_methods);
    assert_int_equal(r->cors->allow_credentials, 0);

    assert_int_equal(s->n_clusters, 1);
    c = cluster(s, "route0/backend0");
    assert_int_equal(c->type, MCPLEX_CLUSTER_MCP);
    b = c->mcp;
    assert_string_equal(b->separator, "_");
    assert_int_equal(b->prefix_mode, MCPLEX_PREFIX_CONDITIONAL);
    assert_int_equal(b->failure_mode, MCPLEX_FAIL_OPEN);
    assert_string_equal(b->server_name, "mcplex");
    assert_int_equal(b->n_targets, 2);
    assert_string_equal(b->targets[0].name, "time");
    assert_int_equal(b->targets[0].kind, MCPLEX_TARGET_STDIO);
    assert_string_equal(b->targets[0].stdio.cmd, "npx");
    assert_int_equal(b->targets[0].stdio.n_args, 2);
    assert_string_equal(b->targets[0].stdio.args[0], "-y");
    assert_string_equal(b->targets[0].stdio.args[1], "time-mcp");
    assert_int_equal(b->targets[0].timeout_ms, 5000);
    assert_string_equal(b->targets[1].name, "everything");
    assert_string_equal(b->targets[1].stdio.args[1], "@modelcontextprotocol/server-everything");
}

static void
test_seed_file(void **state)
{
    mcplex_snapshot_t *s = load_ok(seed_yaml, MCPLEX_CONFIG_FORMAT_AUTO);

    check_seed(s, SEED_ALLOW, SEED_EXPOSE);
    mcplex_snapshot_unref(s);
    /* -c or -f does not matter when the keys tell */
    s = load_ok(seed_yaml, MCPLEX_CONFIG_FORMAT_ENVOY);
    check_seed(s, SEED_ALLOW, SEED_EXPOSE);
    mcplex_snapshot_unref(s);
}

static void
test_default_example(void **state)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_file(MCPLEX_SOURCE_DIR "/examples/default.yaml", MCPLEX_CONFIG_FORMAT_LOCAL,
                                &errs);
    if (s == NULL) {
        char *all = mcplex_errors_join(&errs, "\n  ");
        fail_msg("examples/default.yaml:\n  %s", all);
    }
    check_seed(s, "mcp-protocol-version,mcp-session-id,last-event-id,authorization,content-type,cache-control",
               "Mcp-Session-Id,Mcp-Protocol-Version");
    mcplex_snapshot_unref(s);
    mcplex_errors_dispose(&errs);
}

/* The bootstrap JSON the translator writes, checked directly. */
static void
test_bootstrap_shape(void **state)
{
    mcplex_errors_t errs;
    cJSON *local, *bs;
    char *text;

    mcplex_errors_init(&errs);
    local = mcplex_yaml_parse(seed_yaml, strlen(seed_yaml), "seed", &errs);
    assert_non_null(local);
    bs = mcplex_local_config_to_bootstrap(local, &errs);
    assert_non_null(bs);
    assert_int_equal(errs.count, 0);
    text = cJSON_PrintUnformatted(bs);
    assert_non_null(strstr(text, "\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\","
                                 "\"port_value\":15000}}}"));
    assert_non_null(strstr(text, "\"name\":\"bind/3000\""));
    assert_non_null(strstr(text, "\"@type\":\"type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager\""));
    assert_non_null(strstr(text, "\"http_filters\":[{\"name\":\"envoy.filters.http.cors\""));
    assert_non_null(strstr(text, "\"cluster_type\":{\"name\":\"mcplex.clusters.mcp\","
                                 "\"typed_config\":{\"@type\":"
                                 "\"type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend\","
                                 "\"name_separator\":\"_\""));
    assert_non_null(strstr(text, "\"allow_origin_string_match\":[{\"prefix\":\"\"}]"));
    free(text);
    cJSON_Delete(bs);
    cJSON_Delete(local);
    mcplex_errors_dispose(&errs);
}

/* ---- other shapes --------------------------------------------------------------------------- */

static void
test_weighted_backends(void **state)
{
    static const char yaml[] =
        "binds:\n"
        "- port: 3001\n"
        "  listeners:\n"
        "  - routes:\n"
        "    - name: split\n"
        "      matches: [{path: {pathPrefix: /mcp}}, {path: {exact: /other}}]\n"
        "      backends:\n"
        "      - weight: 80\n"
        "        mcp:\n"
        "          prefixMode: always\n"
        "          failureMode: failClosed\n"
        "          statefulMode: stateful\n"
        "          targets: [{name: a, stdio: {cmd: a-server}}]\n"
        "      - weight: 20\n"
        "        name: blue\n"
        "        mcp:\n"
        "          targets: [{name: b, stdio: {cmd: b-server, env: {X: 1, Y: \"two\"}, clearEnv: true}}]\n";
    mcplex_snapshot_t *s = load_ok(yaml, MCPLEX_CONFIG_FORMAT_AUTO);
    const mcplex_virtual_host_t *vh = &s->listeners[0].hcm.route_config.virtual_hosts[0];
    const mcplex_route_t *r;

    assert_int_equal(s->listeners[0].hcm.cors_filter, 0);
    assert_int_equal(vh->n_routes, 2);
    r = &vh->routes[0];
    assert_string_equal(r->name, "split");
    assert_string_equal(r->prefix, "/mcp");
    assert_int_equal(r->action, MCPLEX_ROUTE_WEIGHTED_CLUSTERS);
    assert_int_equal(r->n_clusters, 2);
    assert_string_equal(r->clusters[0].name, "route0/backend0");
    assert_int_equal(r->clusters[0].weight, 80);
    assert_string_equal(r->clusters[1].name, "blue");
    assert_int_equal(r->clusters[1].weight, 20);
    assert_int_equal(r->total_weight, 100);
    assert_null(r->cors);
    r = &vh->routes[1];
    assert_null(r->prefix);
    assert_string_equal(r->path, "/other");
    assert_int_equal(r->total_weight, 100);
    assert_int_equal(cluster(s, "route0/backend0")->mcp->prefix_mode, MCPLEX_PREFIX_ALWAYS);
    assert_int_equal(cluster(s, "route0/backend0")->mcp->failure_mode, MCPLEX_FAIL_CLOSED);
    assert_int_equal(cluster(s, "blue")->mcp->targets[0].stdio.n_env, 2);
    assert_string_equal(cluster(s, "blue")->mcp->targets[0].stdio.env[0].value, "1");
    assert_int_equal(cluster(s, "blue")->mcp->targets[0].stdio.clear_env, 1);
    mcplex_snapshot_unref(s);
}

static void
test_http_targets_and_named_backends(void **state)
{
    static const char yaml[] =
        "config: {adminAddr: \"localhost:15001\"}\n"
        "backends:\n"
        "- name: shared\n"
        "  mcp:\n"
        "    targets:\n"
        "    - name: remote\n"
        "      mcp: {host: \"https://mcp.example.com/v1/mcp\"}\n"
        "      timeout: 1m\n"
        "    - name: legacy\n"
        "      sse: {host: localhost, port: 3005, path: /sse}\n"
        "      timeout: 250ms\n"
        "    - name: plain\n"
        "      mcp: {host: \"127.0.0.1:3006\"}\n"
        "binds:\n"
        "- port: 3002\n"
        "  address: \"::1\"\n"
        "  listeners:\n"
        "  - name: main\n"
        "    hostname: mcp.local\n"
        "    protocol: HTTP\n"
        "    routes:\n"
        "    - backends: [{backend: shared}]\n"
        "      policies: {cors: {allowOrigins: [\"http://localhost:6274\"], allowMethods: [GET, POST],"
        " maxAge: 10m, allowCredentials: true}}\n"
        "  - routes:\n"
        "    - backends: [{backend: shared, weight: 2}, {backend: shared, weight: 1}]\n";
    mcplex_snapshot_t *s = load_ok(yaml, MCPLEX_CONFIG_FORMAT_AUTO);
    const mcplex_listener_cfg_t *l = &s->listeners[0];
    const mcplex_mcp_backend_t *b = cluster(s, "shared")->mcp;
    const mcplex_route_t *r;

    assert_string_equal(s->admin_address, "127.0.0.1");
    assert_int_equal(s->admin_port, 15001);
    assert_string_equal(l->address, "::1");
    assert_int_equal(l->port, 3002);
    assert_int_equal(l->hcm.route_config.n_virtual_hosts, 2);
    assert_string_equal(l->hcm.route_config.virtual_hosts[0].name, "main");
    assert_string_equal(l->hcm.route_config.virtual_hosts[0].domains[0], "mcp.local");
    assert_string_equal(l->hcm.route_config.virtual_hosts[1].domains[0], "*");
    r = &l->hcm.route_config.virtual_hosts[0].routes[0];
    assert_string_equal(r->clusters[0].name, "shared");
    assert_string_equal(r->cors->allow_origins[0], "http://localhost:6274");
    assert_string_equal(r->cors->allow_methods, "GET,POST");
    assert_string_equal(r->cors->max_age, "600");
    assert_int_equal(r->cors->allow_credentials, 1);
    r = &l->hcm.route_config.virtual_hosts[1].routes[0];
    assert_int_equal(r->action, MCPLEX_ROUTE_WEIGHTED_CLUSTERS);
    assert_int_equal(r->total_weight, 3);

    assert_string_equal(b->separator, "_");
    assert_int_equal(b->targets[0].kind, MCPLEX_TARGET_STREAMABLE_HTTP);
    assert_string_equal(b->targets[0].http.cluster, "shared/remote");
    assert_string_equal(b->targets[0].http.path, "/v1/mcp");
    assert_string_equal(b->targets[0].http.authority, "mcp.example.com");
    assert_int_equal(b->targets[0].http.tls, 1);
    assert_int_equal(b->targets[0].timeout_ms, 60000);
    assert_int_equal(cluster(s, "shared/remote")->endpoints[0].port, 443);
    assert_int_equal(b->targets[1].kind, MCPLEX_TARGET_SSE);
    assert_string_equal(b->targets[1].http.path, "/sse");
    assert_string_equal(b->targets[1].http.authority, "localhost:3005");
    assert_int_equal(b->targets[1].timeout_ms, 250);
    assert_string_equal(cluster(s, "shared/legacy")->endpoints[0].host, "localhost");
    assert_string_equal(b->targets[2].http.path, "/");
    assert_int_equal(cluster(s, "shared/plain")->endpoints[0].port, 3006);
    assert_int_equal(s->n_clusters, 4);
    mcplex_snapshot_unref(s);
}

static void
test_short_mcp_form(void **state)
{
    static const char yaml[] = "mcp:\n"
                               "  port: 3010\n"
                               "  prefixMode: never\n"
                               "  policies: {cors: {allowOrigins: [\"*\"]}}\n"
                               "  targets:\n"
                               "  - {name: time, stdio: {cmd: npx, args: [-y, time-mcp]}}\n";
    static const char minimal[] = "mcp: {targets: [{name: t, stdio: {cmd: x}}]}\n";
    mcplex_snapshot_t *s = load_ok(yaml, MCPLEX_CONFIG_FORMAT_AUTO);

    assert_int_equal(s->listeners[0].port, 3010);
    assert_string_equal(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].clusters[0].name, "mcp");
    assert_non_null(s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].cors);
    assert_int_equal(s->listeners[0].hcm.cors_filter, 1);
    assert_int_equal(cluster(s, "mcp")->mcp->prefix_mode, MCPLEX_PREFIX_NEVER);
    mcplex_snapshot_unref(s);
    s = load_ok(minimal, MCPLEX_CONFIG_FORMAT_AUTO);
    assert_int_equal(s->listeners[0].port, 3000);
    assert_int_equal(s->listeners[0].hcm.cors_filter, 0);
    mcplex_snapshot_unref(s);
}

/* ---- errors -------------------------------------------------------------------------------- */

#define ROUTE "binds[0].listeners[0].routes[0]"

static void
test_error_unknown_and_unsupported_fields(void **state)
{
    static const char yaml[] =
        "frontendPolicies: {}\n"
        "bogus: 1\n"
        "binds:\n"
        "- port: 3000\n"
        "  listeners:\n"
        "  - foo: bar\n"
        "    tls: {cert: a, key: b}\n"
        "    routes:\n"
        "    - policies: {jwtAuth: {}, cors: {allowOrigin: [x]}}\n"
        "      matches: [{path: {regex: \"/a.*\"}}, {headers: []}]\n"
        "      backends:\n"
        "      - mcp:\n"
        "          targets:\n"
        "          - name: a\n"
        "            stdio: {cmd: x, argv: [y]}\n"
        "            openapi: {}\n";
    static const char *const paths[] = {"frontendPolicies",
                                        "bogus",
                                        "binds[0].listeners[0].foo",
                                        "binds[0].listeners[0].tls",
                                        ROUTE ".policies.jwtAuth",
                                        ROUTE ".policies.cors.allowOrigin",
                                        ROUTE ".matches[0].path.regex",
                                        ROUTE ".matches[1].headers",
                                        ROUTE ".backends[0].mcp.targets[0].openapi",
                                        NULL};

    load_fails_with(yaml, paths, 9);
    load_fails_with_line(yaml, "binds[0].listeners[0].foo: unknown field");
    load_fails_with_line(yaml, "binds[0].listeners[0].tls: not supported by mcplex");
    load_fails_with_line(yaml, "bogus: unknown field");
}

static void
test_error_targets(void **state)
{
    static const char yaml[] =
        "binds:\n"
        "- port: 3000\n"
        "  listeners:\n"
        "  - routes:\n"
        "    - backends:\n"
        "      - mcp:\n"
        "          targets:\n"
        "          - {name: my_server, stdio: {cmd: x}}\n"
        "          - {name: ok, stdio: {cmd: x}}\n"
        "          - {name: ok, stdio: {cmd: y}}\n"
        "          - {name: u, mcp: {host: \"ftp://x\"}}\n"
        "          - {name: v, sse: {host: \"http://h:99999/sse\"}}\n"
        "          - {name: w, mcp: {host: h, port: 80}}\n"
        "          - {name: x}\n"
        "          - {name: y, stdio: {cmd: x}, mcp: {host: \"http://h/\"}}\n"
        "          - {name: z, stdio: {}}\n"
        "          - {name: t, stdio: {cmd: x}, timeout: soon}\n"
        "          prefixMode: sometimes\n";
#define T(i) ROUTE ".backends[0].mcp.targets[" #i "]"
    static const char *const paths[] = {T(0) ".name",
                                        T(2) ".name",
                                        T(3) ".mcp.host",
                                        T(4) ".sse.host",
                                        T(5) ".mcp",
                                        T(6),
                                        T(7),
                                        T(8) ".stdio.cmd",
                                        T(9) ".timeout",
                                        ROUTE ".backends[0].mcp.prefixMode",
                                        NULL};

    load_fails_with(yaml, paths, 10);
    load_fails_with_line(yaml, T(2) ".name: duplicate target name 'ok'");
#undef T
}

static void
test_error_weights_ports_backends(void **state)
{
    static const char yaml[] =
        "backends:\n"
        "- name: named\n"
        "  mcp: {targets: [{name: a, stdio: {cmd: a}}]}\n"
        "binds:\n"
        "- port: 0\n"
        "  listeners: [{routes: [{backends: [{backend: named}]}]}]\n"
        "- port: 70000\n"
        "  address: example.com\n"
        "  listeners: [{routes: [{backends: [{backend: named}]}]}]\n"
        "- port: 3000\n"
        "  listeners:\n"
        "  - routes:\n"
        "    - backends:\n"
        "      - {weight: 0, mcp: {targets: [{name: a, stdio: {cmd: a}}]}}\n"
        "      - {weight: 0, backend: named}\n"
        "    - backends: []\n"
        "    - backends: [{backend: missing}, {weight: -1, backend: named}, {}]\n"
        "    - backends: [{name: named, mcp: {targets: [{name: a, stdio: {cmd: a}}]}}]\n"
        "  - routes: []\n"
        "- listeners: []\n";
    static const char *const paths[] = {"binds[0].port",
                                        "binds[1].port",
                                        "binds[1].address",
                                        "binds[2].listeners[0].routes[0].backends",
                                        "binds[2].listeners[0].routes[1].backends",
                                        "binds[2].listeners[0].routes[2].backends[0].backend",
                                        "binds[2].listeners[0].routes[2].backends[1].weight",
                                        "binds[2].listeners[0].routes[2].backends[2]",
                                        "binds[2].listeners[0].routes[3].backends[0].name",
                                        "binds[2].listeners[1].hostname",
                                        "binds[3].port",
                                        "binds[3].listeners",
                                        NULL};

    load_fails_with(yaml, paths, 12);
    load_fails_with_line(yaml, "binds[2].listeners[0].routes[0].backends: "
                               "the sum of the backends' weights must be greater than 0");
    load_fails_with_line(yaml, "binds[0].port: expected an integer from 1 to 65535");
}

static void
test_error_admin_and_detection(void **state)
{
    static const char yaml[] = "config: {adminAddr: \"nohost\", logging: {level: debug}}\n"
                               "listeners: []\n";
    static const char *const paths[] = {"config.adminAddr", "config.logging", "listeners", NULL};
    static const char both[] = "binds: []\nstatic_resources: {}\n";
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    load_fails_with(yaml, paths, 3);
    /* both kinds of keys: the hint decides; without one, an error */
    mcplex_errors_init(&errs);
    assert_null(mcplex_config_load_text(both, strlen(both), "t", MCPLEX_CONFIG_FORMAT_AUTO, &errs));
    assert_non_null(strstr(errs.items[0], "cannot tell the config format"));
    mcplex_errors_dispose(&errs);
    assert_null(mcplex_config_load_text(both, strlen(both), "t", MCPLEX_CONFIG_FORMAT_LOCAL, &errs));
    assert_string_equal(errs.items[0], "static_resources: unknown field");
    mcplex_errors_dispose(&errs);
    assert_null(mcplex_config_load_text(both, strlen(both), "t", MCPLEX_CONFIG_FORMAT_ENVOY, &errs));
    assert_int_equal(strncmp(errs.items[0], "binds: ", 7), 0);
    mcplex_errors_dispose(&errs);
    /* an empty local file is a valid, empty config */
    s = load_ok("{}", MCPLEX_CONFIG_FORMAT_LOCAL);
    assert_int_equal(s->n_listeners, 0);
    assert_int_equal(s->admin_port, 15000);
    mcplex_snapshot_unref(s);
    assert_int_equal(mcplex_config_detect_format(NULL, MCPLEX_CONFIG_FORMAT_LOCAL),
                     MCPLEX_CONFIG_FORMAT_LOCAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_file),
        cmocka_unit_test(test_default_example),
        cmocka_unit_test(test_bootstrap_shape),
        cmocka_unit_test(test_weighted_backends),
        cmocka_unit_test(test_http_targets_and_named_backends),
        cmocka_unit_test(test_short_mcp_form),
        cmocka_unit_test(test_error_unknown_and_unsupported_fields),
        cmocka_unit_test(test_error_targets),
        cmocka_unit_test(test_error_weights_ports_backends),
        cmocka_unit_test(test_error_admin_and_detection),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
