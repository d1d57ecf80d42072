/*
 * test_mcp_route.c - issue 3 config through the whole loader: legacy HTTP+SSE targets (Envoy
 * bootstrap McpTarget.sse with url or cluster, the local file's `sse: {host}`) become
 * MCPLEX_TARGET_SSE with the right cluster, path and authority; mcplex's McpRoute
 * (typed_per_filter_config "mcplex.filters.http.mcp", typed or as a TypedStruct) on a route, a
 * virtual host and a route configuration gives each route its effective origin policy; the
 * local file's dnsRebindingProtection / allowedOrigins / allowedHosts policies; and the errors
 * of bad values, with their paths. Single-threaded.
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

static mcplex_snapshot_t *
load_ok(const char *yaml, mcplex_config_format_t hint)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "test.yaml", hint, &errs);
    if (s == NULL || errs.count != 0) {
        char *all = mcplex_errors_join(&errs, "\n  ");
        fail_msg("load failed:\n  %s", all);
    }
    mcplex_errors_dispose(&errs);
    return s;
}

/* |yaml| must fail with an error that contains |needle|. */
static void
load_fails_with(const char *yaml, mcplex_config_format_t hint, const char *needle)
{
    mcplex_errors_t errs;
    char *all;

    mcplex_errors_init(&errs);
    assert_null(mcplex_config_load_text(yaml, strlen(yaml), "test.yaml", hint, &errs));
    all = mcplex_errors_join(&errs, "\n  ");
    if (strstr(all, needle) == NULL)
        fail_msg("no error containing '%s'; errors:\n  %s", needle, all);
    free(all);
    mcplex_errors_dispose(&errs);
}

static const mcplex_mcp_target_t *
find_target(const mcplex_snapshot_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_clusters; i++) {
        const mcplex_mcp_backend_t *b = s->clusters[i].mcp;
        for (size_t k = 0; b != NULL && k < b->n_targets; k++)
            if (strcmp(b->targets[k].name, name) == 0)
                return &b->targets[k];
    }
    fail_msg("no target '%s'", name);
    return NULL;
}

static const mcplex_route_t *
find_route(const mcplex_snapshot_t *s, const char *name)
{
    const mcplex_route_config_t *rc = &s->listeners[0].hcm.route_config;

    for (size_t v = 0; v < rc->n_virtual_hosts; v++)
        for (size_t r = 0; r < rc->virtual_hosts[v].n_routes; r++)
            if (rc->virtual_hosts[v].routes[r].name != NULL &&
                strcmp(rc->virtual_hosts[v].routes[r].name, name) == 0)
                return &rc->virtual_hosts[v].routes[r];
    fail_msg("no route '%s'", name);
    return NULL;
}

/* ---- Envoy bootstrap -------------------------------------------------------------------------- */

static const char envoy_yaml[] =
    "static_resources:\n"
    "  listeners:\n"
    "  - name: l\n"
    "    address: {socket_address: {address: 127.0.0.1, port_value: 3000}}\n"
    "    filter_chains:\n"
    "    - filters:\n"
    "      - name: envoy.filters.network.http_connection_manager\n"
    "        typed_config:\n"
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager\n"
    "          stat_prefix: s\n"
    "          http_filters:\n"
    "          - name: envoy.filters.http.router\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n"
    "          route_config:\n"
    "            name: rc\n"
    "            typed_per_filter_config:\n"
    "              mcplex.filters.http.mcp:\n"
    "                \"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n"
    "                type_url: type.googleapis.com/mcplex.extensions.filters.http.mcp.v1.McpRoute\n"
    "                value: {allowed_hosts: [\"mcp.example.com\"]}\n"
    "            virtual_hosts:\n"
    "            - name: a\n"
    "              domains: [\"a.example\"]\n"
    "              typed_per_filter_config:\n"
    "                mcplex.filters.http.mcp:\n"
    "                  \"@type\": type.googleapis.com/mcplex.extensions.filters.http.mcp.v1.McpRoute\n"
    "                  dns_rebinding_protection: ON\n"
    "                  allowed_origins: [\"https://app.example.com\"]\n"
    "              routes:\n"
    "              - name: own\n"
    "                match: {prefix: /off}\n"
    "                route: {cluster: tools, timeout: 0s}\n"
    "                typed_per_filter_config:\n"
    "                  mcplex.filters.http.mcp:\n"
    "                    \"@type\": type.googleapis.com/mcplex.extensions.filters.http.mcp.v1.McpRoute\n"
    "                    dns_rebinding_protection: OFF\n"
    "              - name: from_vhost\n"
    "                match: {prefix: /}\n"
    "                route: {cluster: tools, timeout: 0s}\n"
    "            - name: b\n"
    "              domains: [\"*\"]\n"
    "              routes:\n"
    "              - name: from_rc\n"
    "                match: {prefix: /}\n"
    "                route: {cluster: tools, timeout: 0s}\n"
    "  clusters:\n"
    "  - name: legacy\n"
    "    type: STATIC\n"
    "    load_assignment:\n"
    "      cluster_name: legacy\n"
    "      endpoints:\n"
    "      - lb_endpoints:\n"
    "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 3933}}}\n"
    "  - name: tools\n"
    "    cluster_type:\n"
    "      name: mcplex.clusters.mcp\n"
    "      typed_config:\n"
    "        \"@type\": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend\n"
    "        targets:\n"
    "        - name: byurl\n"
    "          sse: {url: \"http://127.0.0.1:3933/events?x=1\"}\n"
    "        - name: bycluster\n"
    "          sse: {cluster: legacy, host_rewrite_literal: legacy.example}\n"
    "        - name: bypath\n"
    "          sse: {cluster: legacy, path: /v1/sse}\n"
    "        - name: streamable\n"
    "          streamable_http: {cluster: legacy}\n";

static void
test_envoy_sse_targets_and_routes(void **state)
{
    mcplex_snapshot_t *s = load_ok(envoy_yaml, MCPLEX_CONFIG_FORMAT_ENVOY);
    const mcplex_mcp_target_t *t;
    const mcplex_route_t *r;

    t = find_target(s, "byurl");
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.path, "/events?x=1");
    assert_string_equal(t->http.authority, "127.0.0.1:3933");
    assert_non_null(mcplex_snapshot_find_cluster(s, t->http.cluster));
    t = find_target(s, "bycluster");
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.cluster, "legacy");
    assert_string_equal(t->http.path, "/sse");
    assert_string_equal(t->http.authority, "legacy.example");
    t = find_target(s, "bypath");
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.path, "/v1/sse");
    t = find_target(s, "streamable");
    assert_int_equal(t->kind, MCPLEX_TARGET_STREAMABLE_HTTP);
    assert_string_equal(t->http.path, "/mcp");

    r = find_route(s, "own");
    assert_non_null(r->origin);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_OFF);
    assert_int_equal(r->origin->n_allowed_origins, 0);
    r = find_route(s, "from_vhost");
    assert_non_null(r->origin);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_ON);
    assert_int_equal(r->origin->n_allowed_origins, 1);
    assert_string_equal(r->origin->allowed_origins[0], "https://app.example.com");
    assert_int_equal(r->origin->n_allowed_hosts, 0);
    r = find_route(s, "from_rc");
    assert_non_null(r->origin);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_DEFAULT);
    assert_int_equal(r->origin->n_allowed_hosts, 1);
    assert_string_equal(r->origin->allowed_hosts[0], "mcp.example.com");
    mcplex_snapshot_unref(s);
}

static void
test_envoy_bad_mcp_route(void **state)
{
    char *yaml = mcplex_strdup(envoy_yaml);
    char *at = strstr(yaml, "https://app.example.com");

    /* overwritten in place with the same length: not an origin */
    memcpy(at, "ftp://app.example.com/x", strlen("https://app.example.com"));
    load_fails_with(yaml, MCPLEX_CONFIG_FORMAT_ENVOY,
                    "allowed_origins[0]: 'ftp://app.example.com/x' is not an origin");
    free(yaml);

    yaml = mcplex_strdup(envoy_yaml);
    at = strstr(yaml, "mcp.example.com");
    memcpy(at, "mcp example.co", strlen("mcp example.co"));
    load_fails_with(yaml, MCPLEX_CONFIG_FORMAT_ENVOY, "allowed_hosts[0]: 'mcp example.com' is not a host");
    free(yaml);
}

/* ---- agentgateway-style file -------------------------------------------------------------------- */

static void
test_local_sse_and_policies(void **state)
{
    static const char yaml[] =
        "binds:\n"
        "- port: 3000\n"
        "  listeners:\n"
        "  - routes:\n"
        "    - name: open\n"
        "      matches: [{path: {pathPrefix: /open}}]\n"
        "      policies: {dnsRebindingProtection: false}\n"
        "      backends:\n"
        "      - mcp:\n"
        "          targets:\n"
        "          - name: legacy\n"
        "            sse: {host: \"http://127.0.0.1:3933/sse\"}\n"
        "    - name: web\n"
        "      policies:\n"
        "        cors: {allowOrigins: [\"*\"]}\n"
        "        dnsRebindingProtection: true\n"
        "        allowedOrigins: [\"https://app.example.com\"]\n"
        "        allowedHosts: [\"mcp.example.com:3000\"]\n"
        "      backends:\n"
        "      - mcp:\n"
        "          targets:\n"
        "          - name: legacy2\n"
        "            sse: {host: 127.0.0.1, port: 3934, path: /events}\n"
        "    - name: plain\n"
        "      backends:\n"
        "      - mcp:\n"
        "          targets:\n"
        "          - name: legacy3\n"
        "            sse: {host: \"http://127.0.0.1:3935/sse\"}\n";
    mcplex_snapshot_t *s = load_ok(yaml, MCPLEX_CONFIG_FORMAT_LOCAL);
    const mcplex_mcp_target_t *t;
    const mcplex_route_t *r;

    t = find_target(s, "legacy");
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.path, "/sse");
    assert_string_equal(t->http.authority, "127.0.0.1:3933");
    t = find_target(s, "legacy2");
    assert_int_equal(t->kind, MCPLEX_TARGET_SSE);
    assert_string_equal(t->http.path, "/events");
    assert_string_equal(t->http.authority, "127.0.0.1:3934");

    r = find_route(s, "open");
    assert_non_null(r->origin);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_OFF);
    r = find_route(s, "web");
    assert_non_null(r->origin);
    assert_non_null(r->cors);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_ON);
    assert_int_equal(r->origin->n_allowed_origins, 1);
    assert_string_equal(r->origin->allowed_origins[0], "https://app.example.com");
    assert_int_equal(r->origin->n_allowed_hosts, 1);
    assert_string_equal(r->origin->allowed_hosts[0], "mcp.example.com:3000");
    r = find_route(s, "plain");
    assert_null(r->origin);
    mcplex_snapshot_unref(s);
}

static void
test_local_short_form_and_errors(void **state)
{
    static const char short_form[] =
        "mcp:\n"
        "  port: 3001\n"
        "  policies: {allowedHosts: [\"gw.example\"]}\n"
        "  targets:\n"
        "  - name: legacy\n"
        "    sse: {host: \"http://127.0.0.1:3933/sse\"}\n";
    mcplex_snapshot_t *s = load_ok(short_form, MCPLEX_CONFIG_FORMAT_LOCAL);
    const mcplex_route_t *r = &s->listeners[0].hcm.route_config.virtual_hosts[0].routes[0];

    assert_non_null(r->origin);
    assert_int_equal(r->origin->dns_rebinding_protection, MCPLEX_DNS_REBINDING_DEFAULT);
    assert_int_equal(r->origin->n_allowed_hosts, 1);
    assert_string_equal(r->origin->allowed_hosts[0], "gw.example");
    mcplex_snapshot_unref(s);

    load_fails_with("mcp:\n  policies: {dnsRebindingProtection: maybe}\n  targets:\n"
                    "  - {name: a, sse: {host: \"http://127.0.0.1:1/sse\"}}\n",
                    MCPLEX_CONFIG_FORMAT_LOCAL,
                    "mcp.policies.dnsRebindingProtection: expected true or false");
    load_fails_with("mcp:\n  policies: {allowedOrigins: [\"\"]}\n  targets:\n"
                    "  - {name: a, sse: {host: \"http://127.0.0.1:1/sse\"}}\n",
                    MCPLEX_CONFIG_FORMAT_LOCAL,
                    "mcp.policies.allowedOrigins[0]: expected a non-empty string");
    load_fails_with("mcp:\n  policies: {allowedOrigins: [\"app.example.com\"]}\n  targets:\n"
                    "  - {name: a, sse: {host: \"http://127.0.0.1:1/sse\"}}\n",
                    MCPLEX_CONFIG_FORMAT_LOCAL, "'app.example.com' is not an origin");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envoy_sse_targets_and_routes),
        cmocka_unit_test(test_envoy_bad_mcp_route),
        cmocka_unit_test(test_local_sse_and_policies),
        cmocka_unit_test(test_local_short_form_and_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
