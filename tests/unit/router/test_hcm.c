/*
 * test_hcm.c - virtual host and route matching (Envoy order) and the CORS filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/cors.h"
#include "router/hcm.h"

static char *dom_star[] = {"*"};
static char *dom_exact[] = {"api.example.com"};
static char *dom_suffix[] = {"*.example.com"};
static char *dom_prefix[] = {"api.*"};

static mcplex_route_t routes_a[] = {
    {.name = "exact", .path = "/mcp", .case_sensitive = 1},
    {.name = "prefix", .prefix = "/mcp", .case_sensitive = 1},
    {.name = "ci", .prefix = "/ADMIN", .case_sensitive = 0},
    {.name = "root", .prefix = "/", .case_sensitive = 1},
};

static void
test_route_first_match_wins(void **state)
{
    mcplex_virtual_host_t vh = {.name = "vh", .routes = routes_a, .n_routes = 4};

    (void)state;
    assert_string_equal(mcplex_hcm_match_route(&vh, "/mcp")->name, "exact");
    assert_string_equal(mcplex_hcm_match_route(&vh, "/mcp/x")->name, "prefix");
    assert_string_equal(mcplex_hcm_match_route(&vh, "/admin/ui")->name, "ci");
    assert_string_equal(mcplex_hcm_match_route(&vh, "/other")->name, "root");
    vh.n_routes = 2;
    assert_null(mcplex_hcm_match_route(&vh, "/other"));
    /* Matching is case sensitive by default. */
    assert_null(mcplex_hcm_match_route(&vh, "/MCP"));
}

static void
test_vhost_order(void **state)
{
    mcplex_virtual_host_t vhs[] = {
        {.name = "star", .domains = dom_star, .n_domains = 1},
        {.name = "prefix", .domains = dom_prefix, .n_domains = 1},
        {.name = "suffix", .domains = dom_suffix, .n_domains = 1},
        {.name = "exact", .domains = dom_exact, .n_domains = 1},
    };
    mcplex_route_config_t rc = {.name = "rc", .virtual_hosts = vhs, .n_virtual_hosts = 4};

    (void)state;
    assert_string_equal(mcplex_hcm_match_vhost(&rc, "api.example.com")->name, "exact");
    assert_string_equal(mcplex_hcm_match_vhost(&rc, "api.example.com:8080")->name, "exact");
    assert_string_equal(mcplex_hcm_match_vhost(&rc, "www.example.com")->name, "suffix");
    assert_string_equal(mcplex_hcm_match_vhost(&rc, "api.other.org")->name, "prefix");
    assert_string_equal(mcplex_hcm_match_vhost(&rc, "127.0.0.1:3000")->name, "star");
    assert_string_equal(mcplex_hcm_match_vhost(&rc, NULL)->name, "star");
    rc.n_virtual_hosts = 3;
    rc.virtual_hosts = &vhs[1];
    assert_null(mcplex_hcm_match_vhost(&rc, "nothing.org"));
}

static mcplex_http_request_t
request(const char *method, mcplex_http_header_t *hdrs, size_t n)
{
    mcplex_http_request_t req;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = "/mcp";
    req.headers = hdrs;
    req.n_headers = n;
    return req;
}

static const char *
find(const mcplex_cors_result_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void
test_cors(void **state)
{
    char *origins[] = {"*"};
    char *only[] = {"http://good.example"};
    mcplex_cors_policy_t p = {.allow_origins = origins, .n_allow_origins = 1,
                              .allow_headers = "mcp-protocol-version,content-type",
                              .expose_headers = "Mcp-Session-Id"};
    mcplex_http_header_t pre[] = {{"origin", 6, "http://x.example", 16},
                                  {"access-control-request-method", 29, "POST", 4}};
    mcplex_http_header_t actual[] = {{"origin", 6, "http://x.example", 16}};
    mcplex_cors_result_t r;
    mcplex_http_request_t req;

    (void)state;
    req = request("OPTIONS", pre, 2);
    mcplex_cors_evaluate(&p, &req, &r);
    assert_true(r.preflight);
    assert_string_equal(find(&r, "access-control-allow-origin"), "http://x.example");
    assert_string_equal(find(&r, "access-control-allow-headers"), "mcp-protocol-version,content-type");
    assert_non_null(find(&r, "access-control-allow-methods"));

    req = request("POST", actual, 1);
    mcplex_cors_evaluate(&p, &req, &r);
    assert_false(r.preflight);
    assert_string_equal(find(&r, "access-control-expose-headers"), "Mcp-Session-Id");

    /* An origin the policy does not allow gets no CORS headers. */
    p.allow_origins = only;
    mcplex_cors_evaluate(&p, &req, &r);
    assert_int_equal(r.n_headers, 0);
    /* No Origin, no policy: nothing. */
    req = request("POST", NULL, 0);
    mcplex_cors_evaluate(&p, &req, &r);
    assert_int_equal(r.n_headers, 0);
    mcplex_cors_evaluate(NULL, &req, &r);
    assert_int_equal(r.n_headers, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_first_match_wins),
        cmocka_unit_test(test_vhost_order),
        cmocka_unit_test(test_cors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
