/*
 * test_diff.c - unit tests of the snapshot comparisons behind live swaps (src/config/diff.c):
 * which MCP backends of an old snapshot are still there with an equal config in a new one, and
 * pool keys that follow a cluster's endpoint set. Configs are loaded through the real loader
 * (agentgateway-style files). Single-threaded.
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
#include "config/config.h"
#include "config/diff.h"

/* A local file: one bind on 3000, route /mcp (and |extra_route| if non-empty) to one MCP
 * backend with the stdio target "time" (args |time_args|) and a streamable-HTTP target "web"
 * on 127.0.0.1:|web_port|. Unnamed backends are named by position ("route<i>/backend<j>"), so
 * the extra route goes last. */
static mcplex_snapshot_t *
load(const char *time_args, unsigned web_port, const char *extra_route)
{
    char yaml[4096];
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    snprintf(yaml, sizeof(yaml),
             "binds:\n"
             "- port: 3000\n"
             "  listeners:\n"
             "  - routes:\n"
             "    - matches: [{path: {pathPrefix: /mcp}}]\n"
             "      backends:\n"
             "      - mcp:\n"
             "          targets:\n"
             "          - name: time\n"
             "            stdio: {cmd: node, args: [%s]}\n"
             "          - name: web\n"
             "            mcp: {host: 127.0.0.1, port: %u, path: /mcp}\n"
             "%s",
             time_args, web_port, extra_route);
    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "diff.yaml", MCPLEX_CONFIG_FORMAT_LOCAL, &errs);
    if (s == NULL) {
        char *all = mcplex_errors_join(&errs, "\n  ");
        fail_msg("load failed:\n  %s\n%s", all, yaml);
    }
    mcplex_errors_dispose(&errs);
    return s;
}

/* The MCP backend the first route of the first listener leads to, and its name. */
static const mcplex_mcp_backend_t *
backend_of(const mcplex_snapshot_t *s, const char **name)
{
    const mcplex_virtual_host_t *vh = &s->listeners[0].hcm.route_config.virtual_hosts[0];
    const mcplex_route_t *r = &vh->routes[0];

    assert_true(r->n_clusters >= 1);
    *name = r->clusters[0].name;
    assert_non_null(mcplex_config_find_backend(s, *name));
    return mcplex_config_find_backend(s, *name);
}

static const mcplex_cluster_t *
web_cluster(const mcplex_snapshot_t *s, const mcplex_mcp_backend_t *b)
{
    for (size_t i = 0; i < b->n_targets; i++)
        if (strcmp(b->targets[i].name, "web") == 0)
            return mcplex_snapshot_find_cluster(s, b->targets[i].http.cluster);
    fail_msg("no web target");
    return NULL;
}

static void
test_same_file_is_equal(void **state)
{
    mcplex_snapshot_t *a = load("a.js", 4000, ""), *b = load("a.js", 4000, "");
    const char *na, *nb;
    const mcplex_mcp_backend_t *ba = backend_of(a, &na), *bb = backend_of(b, &nb);
    char *ka, *kb;

    (void)state;
    assert_string_equal(na, nb);
    assert_true(mcplex_config_backend_equal(a, ba, b, bb));
    ka = mcplex_config_pool_key(web_cluster(a, ba));
    kb = mcplex_config_pool_key(web_cluster(b, bb));
    assert_string_equal(ka, kb);
    free(ka);
    free(kb);
    mcplex_snapshot_unref(a);
    mcplex_snapshot_unref(b);
}

/* A new route beside the backend's own does not change the backend. */
static void
test_new_route_keeps_backend(void **state)
{
    mcplex_snapshot_t *a = load("a.js", 4000, ""), *b;
    const char *na, *nb;
    const mcplex_mcp_backend_t *ba = backend_of(a, &na), *bb;

    (void)state;
    b = load("a.js", 4000,
             "    - matches: [{path: {pathPrefix: /alt}}]\n"
             "      backends:\n"
             "      - mcp:\n"
             "          targets:\n"
             "          - name: other\n"
             "            stdio: {cmd: node, args: [other.js]}\n");
    bb = backend_of(b, &nb);
    assert_string_equal(na, nb);
    assert_int_equal(b->listeners[0].hcm.route_config.virtual_hosts[0].n_routes, 2);
    assert_true(mcplex_config_backend_equal(a, ba, b, mcplex_config_find_backend(b, na)));
    (void)bb;
    mcplex_snapshot_unref(a);
    mcplex_snapshot_unref(b);
}

static void
test_changed_command_is_not_equal(void **state)
{
    mcplex_snapshot_t *a = load("a.js", 4000, ""), *b = load("b.js", 4000, "");
    const char *na, *nb;
    const mcplex_mcp_backend_t *ba = backend_of(a, &na), *bb = backend_of(b, &nb);

    (void)state;
    assert_false(mcplex_config_backend_equal(a, ba, b, bb));
    mcplex_snapshot_unref(a);
    mcplex_snapshot_unref(b);
}

/* The web target's endpoint moved: backend changed, and its pool key differs (old sessions keep
 * the old pool, new ones get a new one). */
static void
test_changed_endpoint(void **state)
{
    mcplex_snapshot_t *a = load("a.js", 4000, ""), *b = load("a.js", 4001, "");
    const char *na, *nb;
    const mcplex_mcp_backend_t *ba = backend_of(a, &na), *bb = backend_of(b, &nb);
    const mcplex_cluster_t *ca = web_cluster(a, ba), *cb = web_cluster(b, bb);
    char *ka = mcplex_config_pool_key(ca), *kb = mcplex_config_pool_key(cb);

    (void)state;
    assert_string_equal(ca->name, cb->name);
    assert_false(mcplex_config_cluster_endpoints_equal(ca, cb));
    assert_false(mcplex_config_backend_equal(a, ba, b, bb));
    assert_string_not_equal(ka, kb);
    free(ka);
    free(kb);
    mcplex_snapshot_unref(a);
    mcplex_snapshot_unref(b);
}

static void
test_find_backend_misses(void **state)
{
    mcplex_snapshot_t *a = load("a.js", 4000, "");

    (void)state;
    assert_null(mcplex_config_find_backend(a, "no-such-cluster"));
    assert_null(mcplex_config_find_backend(a, "no-such-listener/mcp_router"));
    assert_null(mcplex_config_find_backend(a, "/mcp_router"));
    assert_null(mcplex_config_find_backend(a, NULL));
    assert_true(mcplex_config_backend_equal(a, NULL, a, NULL));
    mcplex_snapshot_unref(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_file_is_equal),
        cmocka_unit_test(test_new_route_keeps_backend),
        cmocka_unit_test(test_changed_command_is_not_equal),
        cmocka_unit_test(test_changed_endpoint),
        cmocka_unit_test(test_find_backend_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
