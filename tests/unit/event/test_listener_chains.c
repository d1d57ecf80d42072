/*
 * test_listener_chains.c - filter chains and TLS in the config model (src/config/translate.c:
 * transport_socket with Downstream/UpstreamTlsContext, filter_chain_match, default_filter_chain)
 * and filter chain selection (src/event/listener_chains.c). Certificates are made by the openssl
 * CLI at test start under a temporary directory (the translator loads them, as Envoy does).
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/log.h"
#include "config/config.h"
#include "event/listener_chains.h"

static char g_dir[200];

static int
setup(void **state)
{
    char cmd[1024];

    (void)state;
    snprintf(g_dir, sizeof(g_dir), "mcplex-chains-XXXXXX"); /* in the build tree */
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout k.pem -out c.pem -days 2 -subj /CN=localhost >/dev/null 2>&1",
             g_dir);
    mcplex_log_set_level(MCPLEX_LOG_OFF);
    return system(cmd) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Builds a listener YAML with |spec| chains; each: server names or NULL, tls flag, default flag. */
typedef struct chain_spec {
    const char *names; /* YAML flow list, e.g. "[a.example.com]", or NULL */
    int tls;
    int dflt;
} chain_spec_t;

static char *
bootstrap(const chain_spec_t *spec, size_t n)
{
    size_t cap = 16384;
    char *out = malloc(cap);
    size_t len;

    snprintf(out, cap,
             "static_resources:\n"
             "  listeners:\n"
             "  - name: l\n"
             "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
             "    filter_chains:\n");
    for (size_t i = 0; i < n; i++) {
        len = strlen(out);
        snprintf(out + len, cap - len, "%s",
                 spec[i].dflt ? "    default_filter_chain:\n      name: d\n" : "    - name: c\n");
        if (spec[i].names != NULL) {
            len = strlen(out);
            snprintf(out + len, cap - len, "      filter_chain_match: {server_names: %s}\n", spec[i].names);
        }
        if (spec[i].tls) {
            len = strlen(out);
            snprintf(out + len, cap - len,
                     "      transport_socket:\n"
                     "        name: envoy.transport_sockets.tls\n"
                     "        typed_config:\n"
                     "          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                     "DownstreamTlsContext\n"
                     "          common_tls_context:\n"
                     "            alpn_protocols: [http/1.1]\n"
                     "            tls_params: {tls_minimum_protocol_version: TLSv1_3}\n"
                     "            tls_certificates:\n"
                     "            - certificate_chain: {filename: \"%s/c.pem\"}\n"
                     "              private_key: {filename: \"%s/k.pem\"}\n",
                     g_dir, g_dir);
        }
        len = strlen(out);
        snprintf(out + len, cap - len,
                 "      filters:\n"
                 "      - name: envoy.filters.network.http_connection_manager\n"
                 "        typed_config:\n"
                 "          \"@type\": type.googleapis.com/"
                 "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
                 "          stat_prefix: s%zu\n"
                 "          route_config: {virtual_hosts: [{name: v, domains: [\"*\"], "
                 "routes: [{match: {prefix: /}, direct_response: {status: 200}}]}]}\n"
                 "          http_filters: [{name: envoy.filters.http.router, typed_config: {\"@type\": "
                 "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]\n",
                 i);
    }
    return out;
}

static mcplex_snapshot_t *
load(const char *yaml, mcplex_errors_t *errs)
{
    mcplex_errors_init(errs);
    return mcplex_config_load_text(yaml, strlen(yaml), "t.yaml", MCPLEX_CONFIG_FORMAT_ENVOY, errs);
}

static void
test_translate_chains(void **state)
{
    const chain_spec_t spec[] = {
        {"[a.example.com]", 1, 0},
        {"[\"*.example.com\", b.example.com]", 1, 0},
        {NULL, 0, 0},
        {NULL, 1, 1},
    };
    mcplex_errors_t errs;
    char *y = bootstrap(spec, 4);
    mcplex_snapshot_t *s = load(y, &errs);
    const mcplex_listener_cfg_t *l;

    (void)state;
    if (s == NULL)
        fail_msg("load failed: %s", mcplex_errors_join(&errs, "; "));
    l = &s->listeners[0];
    assert_int_equal(l->n_filter_chains, 4);
    assert_non_null(l->filter_chains[0].tls);
    assert_int_equal(l->filter_chains[0].tls->n_tls_certificates, 1);
    assert_int_equal(l->filter_chains[0].tls->tls_minimum_protocol_version, MCPLEX_TLS_V1_3);
    assert_string_equal(l->filter_chains[0].tls->alpn_protocols[0], "http/1.1");
    assert_string_equal(l->filter_chains[1].server_names[0], "*.example.com");
    assert_null(l->filter_chains[2].tls);
    assert_true(l->filter_chains[3].is_default);
    /* chain 0's HCM is the listener's; the others have their own */
    assert_ptr_equal(mcplex_listener_chain_hcm(l, 0), &l->hcm);
    assert_string_equal(mcplex_listener_chain_hcm(l, 0)->stat_prefix, "s0");
    assert_string_equal(mcplex_listener_chain_hcm(l, 2)->stat_prefix, "s2");
    assert_string_equal(mcplex_listener_chain_hcm(l, 9)->stat_prefix, "s0");
    assert_true(mcplex_listener_chains_needed(l));

    /* selection */
    assert_int_equal(mcplex_filter_chain_select(l, "a.example.com", 1), 0);
    assert_int_equal(mcplex_filter_chain_select(l, "A.Example.COM", 1), 0);
    assert_int_equal(mcplex_filter_chain_select(l, "b.example.com", 1), 1);
    assert_int_equal(mcplex_filter_chain_select(l, "x.example.com", 1), 1);
    assert_int_equal(mcplex_filter_chain_select(l, "other.test", 1), 3); /* default (TLS) */
    assert_int_equal(mcplex_filter_chain_select(l, NULL, 1), 3);
    assert_int_equal(mcplex_filter_chain_select(l, NULL, 0), 2); /* plaintext */
    mcplex_snapshot_unref(s);
    mcplex_errors_dispose(&errs);
    free(y);
}

static void
test_translate_errors(void **state)
{
    const chain_spec_t dup[] = {{"[a.example.com]", 1, 0}, {"[a.example.com]", 1, 0}};
    const chain_spec_t plain_sni[] = {{"[a.example.com]", 0, 0}};
    mcplex_errors_t errs;
    char *y, *all;

    (void)state;
    y = bootstrap(dup, 2);
    assert_null(load(y, &errs));
    all = mcplex_errors_join(&errs, "; ");
    assert_non_null(strstr(all, "same matching rules"));
    free(all);
    mcplex_errors_dispose(&errs);
    free(y);

    y = bootstrap(plain_sni, 1);
    assert_null(load(y, &errs));
    all = mcplex_errors_join(&errs, "; ");
    assert_non_null(strstr(all, "needs a TLS transport_socket"));
    free(all);
    mcplex_errors_dispose(&errs);
    free(y);
}

static void
test_plain_single_chain_unchanged(void **state)
{
    const chain_spec_t one[] = {{NULL, 0, 0}};
    mcplex_errors_t errs;
    char *y = bootstrap(one, 1);
    mcplex_snapshot_t *s = load(y, &errs);

    (void)state;
    assert_non_null(s);
    assert_int_equal(s->listeners[0].n_filter_chains, 1);
    assert_false(mcplex_listener_chains_needed(&s->listeners[0]));
    assert_string_equal(s->listeners[0].hcm.stat_prefix, "s0");
    mcplex_snapshot_unref(s);
    mcplex_errors_dispose(&errs);
    free(y);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_chains),
        cmocka_unit_test(test_translate_errors),
        cmocka_unit_test(test_plain_single_chain_unchanged),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
