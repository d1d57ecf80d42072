/*
 * test_origin.c - DNS rebinding protection rules (src/router/origin.c): loopback addresses,
 * hosts and origins; the DEFAULT/ON/OFF modes on loopback and non-loopback listeners; allowed
 * hosts (with and without port, "*") and origins (exact, case, trailing slash, "*", the CORS
 * policy's exact origins). Pure code, single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/origin.h"

#define OK MCPLEX_ORIGIN_OK
#define BAD_HOST MCPLEX_ORIGIN_BAD_HOST
#define BAD_ORIGIN MCPLEX_ORIGIN_BAD_ORIGIN

static void
test_loopback_names(void **state)
{
    assert_true(mcplex_origin_address_is_loopback("127.0.0.1"));
    assert_true(mcplex_origin_address_is_loopback("127.1.2.3"));
    assert_true(mcplex_origin_address_is_loopback("::1"));
    assert_true(mcplex_origin_address_is_loopback("::ffff:127.0.0.1"));
    assert_true(mcplex_origin_address_is_loopback("localhost"));
    assert_false(mcplex_origin_address_is_loopback("0.0.0.0"));
    assert_false(mcplex_origin_address_is_loopback("::"));
    assert_false(mcplex_origin_address_is_loopback("10.0.0.1"));
    assert_false(mcplex_origin_address_is_loopback(NULL));

    assert_true(mcplex_origin_host_is_loopback("localhost"));
    assert_true(mcplex_origin_host_is_loopback("LocalHost:3000"));
    assert_true(mcplex_origin_host_is_loopback("127.0.0.1"));
    assert_true(mcplex_origin_host_is_loopback("127.0.0.1:8080"));
    assert_true(mcplex_origin_host_is_loopback("[::1]"));
    assert_true(mcplex_origin_host_is_loopback("[::1]:3000"));
    assert_false(mcplex_origin_host_is_loopback("::1"));         /* IPv6 needs brackets */
    assert_false(mcplex_origin_host_is_loopback("localhost.evil.example"));
    assert_false(mcplex_origin_host_is_loopback("evil.localhost.example:80"));
    assert_false(mcplex_origin_host_is_loopback("127.0.0.1.nip.io"));
    assert_false(mcplex_origin_host_is_loopback("localhost:abc"));
    assert_false(mcplex_origin_host_is_loopback("localhost:80:80"));
    assert_false(mcplex_origin_host_is_loopback("user@localhost"));
    assert_false(mcplex_origin_host_is_loopback(""));
    assert_false(mcplex_origin_host_is_loopback(":80"));
    assert_false(mcplex_origin_host_is_loopback(NULL));

    assert_true(mcplex_origin_is_loopback("http://localhost:6274"));
    assert_true(mcplex_origin_is_loopback("https://127.0.0.1"));
    assert_true(mcplex_origin_is_loopback("HTTP://[::1]:5173/"));
    assert_false(mcplex_origin_is_loopback("http://evil.example"));
    assert_false(mcplex_origin_is_loopback("null"));
    assert_false(mcplex_origin_is_loopback("file://localhost"));
    assert_false(mcplex_origin_is_loopback("http://localhost/path"));
    assert_false(mcplex_origin_is_loopback("http://localhost.evil.example"));
}

static mcplex_origin_verdict_t
check(const mcplex_origin_policy_t *p, const char *addr, const char *host, const char *origin)
{
    char why[256] = "";
    mcplex_origin_verdict_t v = mcplex_origin_check(p, NULL, addr, host, origin, why, sizeof(why));

    if (v != MCPLEX_ORIGIN_OK)
        assert_true(strstr(why, v == MCPLEX_ORIGIN_BAD_HOST ? "Host" : "Origin") != NULL);
    return v;
}

static void
test_default_mode(void **state)
{
    /* loopback listener, no policy: the SDK's localhost protection */
    assert_int_equal(check(NULL, "127.0.0.1", "127.0.0.1:3000", NULL), OK);
    assert_int_equal(check(NULL, "127.0.0.1", "localhost:3000", "http://localhost:6274"), OK);
    assert_int_equal(check(NULL, "::1", "[::1]:3000", "http://127.0.0.1:5173"), OK);
    assert_int_equal(check(NULL, "127.0.0.1", "evil.example:3000", NULL), BAD_HOST);
    assert_int_equal(check(NULL, "127.0.0.1", NULL, NULL), BAD_HOST);
    assert_int_equal(check(NULL, "127.0.0.1", "localhost:3000", "http://evil.example"), BAD_ORIGIN);
    assert_int_equal(check(NULL, "127.0.0.1", "localhost:3000", "null"), BAD_ORIGIN);
    /* the conformance suite's rebinding probe: Host and Origin both the attacker's */
    assert_int_equal(check(NULL, "127.0.0.1", "evil.example", "http://evil.example"), BAD_HOST);

    /* another address, no policy: nothing is checked */
    assert_int_equal(check(NULL, "0.0.0.0", "evil.example", "http://evil.example"), OK);
    assert_int_equal(check(NULL, "10.1.2.3", NULL, NULL), OK);

    /* another address, lists set: each list checks its header only */
    char *hosts[] = {"mcp.example.com"};
    mcplex_origin_policy_t ph = {.allowed_hosts = hosts, .n_allowed_hosts = 1};
    assert_int_equal(check(&ph, "0.0.0.0", "mcp.example.com:443", "http://evil.example"), OK);
    assert_int_equal(check(&ph, "0.0.0.0", "localhost:3000", NULL), OK);
    assert_int_equal(check(&ph, "0.0.0.0", "evil.example", NULL), BAD_HOST);
    char *origins[] = {"https://app.example.com"};
    mcplex_origin_policy_t po = {.allowed_origins = origins, .n_allowed_origins = 1};
    assert_int_equal(check(&po, "0.0.0.0", "evil.example", "https://APP.example.com/"), OK);
    assert_int_equal(check(&po, "0.0.0.0", "evil.example", NULL), OK);
    assert_int_equal(check(&po, "0.0.0.0", "x", "https://app.example.com:8443"), BAD_ORIGIN);
}

static void
test_on_off_and_lists(void **state)
{
    mcplex_origin_policy_t off = {.dns_rebinding_protection = MCPLEX_DNS_REBINDING_OFF};
    mcplex_origin_policy_t on = {.dns_rebinding_protection = MCPLEX_DNS_REBINDING_ON};
    char *hosts[] = {"mcp.example.com", "api.example.com:8443", "[2001:db8::1]"};
    char *origins[] = {"https://app.example.com", "http://LOCAL.test:8080/"};
    mcplex_origin_policy_t lists = {.dns_rebinding_protection = MCPLEX_DNS_REBINDING_ON,
                                    .allowed_hosts = hosts, .n_allowed_hosts = 3,
                                    .allowed_origins = origins, .n_allowed_origins = 2};
    char *star[] = {"*"};
    mcplex_origin_policy_t any = {.allowed_hosts = star, .n_allowed_hosts = 1,
                                  .allowed_origins = star, .n_allowed_origins = 1};

    assert_int_equal(check(&off, "127.0.0.1", "evil.example", "http://evil.example"), OK);
    assert_int_equal(check(&off, "127.0.0.1", NULL, NULL), OK);
    assert_int_equal(check(&on, "0.0.0.0", "localhost", "http://localhost:1"), OK);
    assert_int_equal(check(&on, "0.0.0.0", "evil.example", NULL), BAD_HOST);
    assert_int_equal(check(&on, "0.0.0.0", "localhost", "http://evil.example"), BAD_ORIGIN);

    assert_int_equal(check(&lists, "0.0.0.0", "mcp.example.com", NULL), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "MCP.example.com:9999", NULL), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "api.example.com:8443", NULL), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "api.example.com", NULL), BAD_HOST);
    assert_int_equal(check(&lists, "0.0.0.0", "api.example.com:443", NULL), BAD_HOST);
    assert_int_equal(check(&lists, "0.0.0.0", "[2001:db8::1]:80", NULL), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "sub.mcp.example.com", NULL), BAD_HOST);
    assert_int_equal(check(&lists, "0.0.0.0", "localhost", "https://app.example.com"), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "localhost", "http://local.test:8080"), OK);
    assert_int_equal(check(&lists, "0.0.0.0", "localhost", "http://app.example.com"), BAD_ORIGIN);
    assert_int_equal(check(&lists, "0.0.0.0", "localhost", "https://app.example.com.evil"),
                     MCPLEX_ORIGIN_BAD_ORIGIN);

    assert_int_equal(check(&any, "127.0.0.1", "anything.example", "http://anything.example"), OK);
    assert_int_equal(check(&any, "127.0.0.1", NULL, NULL), BAD_HOST); /* Host is required */
}

static void
test_cors_origins_count(void **state)
{
    char *exact[] = {"https://inspector.example", "*"};
    mcplex_cors_policy_t cors = {.allow_origins = exact, .n_allow_origins = 2};
    char why[128];

    assert_int_equal(mcplex_origin_check(NULL, &cors, "127.0.0.1", "localhost", "https://inspector.example",
                                         why, sizeof(why)),
                     MCPLEX_ORIGIN_OK);
    /* a CORS "*" does not open the rebinding check */
    assert_int_equal(mcplex_origin_check(NULL, &cors, "127.0.0.1", "localhost", "https://other.example", why,
                                         sizeof(why)),
                     MCPLEX_ORIGIN_BAD_ORIGIN);
    assert_string_equal(why, "Invalid Origin header: https://other.example");
    assert_int_equal(mcplex_origin_check(NULL, &cors, "127.0.0.1", "evil:1", NULL, why, sizeof(why)),
                     MCPLEX_ORIGIN_BAD_HOST);
    assert_string_equal(why, "Invalid Host header: evil:1");
    assert_int_equal(mcplex_origin_check(NULL, NULL, "127.0.0.1", NULL, NULL, NULL, 0), BAD_HOST);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_names),
        cmocka_unit_test(test_default_mode),
        cmocka_unit_test(test_on_off_and_lists),
        cmocka_unit_test(test_cors_origins_count),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
