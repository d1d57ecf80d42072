/*
 * test_golden.c - golden wire tests of the xDS messages: DiscoveryResponses and a
 * DeltaDiscoveryResponse encoded by protobufjs from Envoy's GENUINE .proto files (written at test
 * time by tests/integration/98-xds-golden.mjs into $MCPLEX_XDS_GOLDEN_DIR) must decode with our
 * protobuf-c subset and translate into the expected model; and the DiscoveryRequest and
 * DeltaDiscoveryRequest we encode here are written back for that test to decode with protobufjs.
 * Without $MCPLEX_XDS_GOLDEN_DIR (the plain ctest unit run) only the self-contained round trip
 * runs and the golden tests are skipped. Single-threaded.
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

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define TU "type.googleapis.com/"

static const char *
golden_dir(void)
{
    const char *d = getenv("MCPLEX_XDS_GOLDEN_DIR");

    return d != NULL && *d != '\0' ? d : NULL;
}

static uint8_t *
read_golden(const char *name, size_t *len)
{
    char *path = mcplex_sprintf("%s/%s", golden_dir(), name);
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = mcplex_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(path);
    *len = (size_t)n;
    return buf;
}

static void
write_golden(const char *name, const ProtobufCMessage *msg)
{
    char *path = mcplex_sprintf("%s/%s", golden_dir(), name);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = mcplex_malloc(len + 1);
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    protobuf_c_message_pack(msg, buf);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
    free(path);
}

static Envoy__Service__Discovery__V3__DiscoveryResponse *
load_response(const char *name, const char *type_url)
{
    size_t len;
    uint8_t *buf = read_golden(name, &len);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);

    free(buf);
    assert_non_null(r);
    assert_string_equal(r->type_url, type_url);
    assert_string_equal(r->version_info, "g1");
    assert_non_null(r->control_plane);
    assert_string_equal(r->control_plane->identifier, "golden");
    return r;
}

static void
assert_no_errors(mcplex_errors_t *errs)
{
    if (errs->count != 0) {
        char *all = mcplex_errors_join(errs, "\n  ");
        fail_msg("errors:\n  %s", all);
    }
}

/* ---- golden responses --------------------------------------------------------------------- */

static void
test_cds_response(void **state)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    mcplex_errors_t errs;

    (void)state;
    if (golden_dir() == NULL)
        skip();
    r = load_response("cds.bin", TU "envoy.config.cluster.v3.Cluster");
    assert_string_equal(r->nonce, "n-cds");
    assert_int_equal(r->n_resources, 2);
    mcplex_errors_init(&errs);
    for (size_t i = 0; i < 2; i++) {
        Envoy__Config__Cluster__V3__Cluster *c;
        mcplex_cluster_t *arr;
        size_t n = 0;

        assert_string_equal(r->resources[i]->type_url, TU "envoy.config.cluster.v3.Cluster");
        c = envoy__config__cluster__v3__cluster__unpack(NULL, r->resources[i]->value.len,
                                                        r->resources[i]->value.data);
        assert_non_null(c);
        arr = mcplex_config_translate_cluster(c, "", NULL, &n, &errs);
        assert_no_errors(&errs);
        assert_non_null(arr);
        assert_int_equal(arr[0].type, MCPLEX_CLUSTER_MCP);
        assert_string_equal(arr[0].name, i == 0 ? "typed" : "struct");
        assert_int_equal(arr[0].mcp->n_targets, 1);
        assert_string_equal(arr[0].mcp->targets[0].name, i == 0 ? "t1" : "t2");
        assert_int_equal(arr[0].mcp->targets[0].kind, MCPLEX_TARGET_STDIO);
        assert_string_equal(arr[0].mcp->targets[0].stdio.cmd, "node");
        assert_int_equal(arr[0].mcp->targets[0].stdio.n_args, 1);
        assert_string_equal(arr[0].mcp->targets[0].stdio.args[0], "server.mjs");
        assert_int_equal(arr[0].mcp->targets[0].timeout_ms, 7000);
        assert_int_equal(arr[0].mcp->prefix_mode, MCPLEX_PREFIX_ALWAYS);
        for (size_t k = 0; k < n; k++)
            mcplex_cluster_dispose(&arr[k]);
        free(arr);
        envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
    }
    mcplex_errors_dispose(&errs);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static const Envoy__Config__Route__V3__RouteConfiguration *
no_route(void *arg, const char *name)
{
    (void)arg;
    assert_string_equal(name, "golden_route");
    return NULL;
}

static const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *
no_endpoints(void *arg, const char *name)
{
    (void)arg;
    (void)name;
    return NULL;
}

static void
test_lds_response(void **state)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    Envoy__Config__Listener__V3__Listener *l;
    mcplex_config_xds_source_t src = {no_route, no_endpoints, NULL, 0};
    mcplex_listener_cfg_t out;
    mcplex_errors_t errs;

    (void)state;
    if (golden_dir() == NULL)
        skip();
    r = load_response("lds.bin", TU "envoy.config.listener.v3.Listener");
    assert_int_equal(r->n_resources, 1);
    l = envoy__config__listener__v3__listener__unpack(NULL, r->resources[0]->value.len,
                                                      r->resources[0]->value.data);
    assert_non_null(l);
    mcplex_errors_init(&errs);
    mcplex_config_set_xds_source(&src);
    assert_int_equal(mcplex_config_translate_listener(l, "", NULL, &out, &errs), 0);
    mcplex_config_set_xds_source(NULL);
    assert_no_errors(&errs);
    assert_string_equal(out.name, "golden_listener");
    assert_string_equal(out.address, "127.0.0.1");
    assert_int_equal(out.port, 18080);
    assert_int_equal(src.n_missing, 1); /* rds: warming until its RouteConfiguration arrives */
    mcplex_listener_cfg_dispose(&out);
    mcplex_errors_dispose(&errs);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static void
test_rds_response(void **state)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    Envoy__Config__Route__V3__RouteConfiguration *rc;
    mcplex_route_config_t out;
    mcplex_errors_t errs;
    const mcplex_route_t *route;

    (void)state;
    if (golden_dir() == NULL)
        skip();
    r = load_response("rds.bin", TU "envoy.config.route.v3.RouteConfiguration");
    rc = envoy__config__route__v3__route_configuration__unpack(NULL, r->resources[0]->value.len,
                                                               r->resources[0]->value.data);
    assert_non_null(rc);
    mcplex_errors_init(&errs);
    assert_int_equal(mcplex_config_translate_route_configuration(rc, "", 0, NULL, &out, &errs), 0);
    assert_no_errors(&errs);
    assert_string_equal(out.name, "golden_route");
    route = &out.virtual_hosts[0].routes[0];
    assert_int_equal(route->action, MCPLEX_ROUTE_WEIGHTED_CLUSTERS);
    assert_int_equal(route->n_clusters, 2);
    assert_string_equal(route->clusters[0].name, "typed");
    assert_int_equal(route->clusters[0].weight, 70);
    assert_string_equal(route->clusters[1].name, "struct");
    assert_int_equal(route->clusters[1].weight, 30);
    mcplex_route_config_dispose(&out);
    mcplex_errors_dispose(&errs);
    envoy__config__route__v3__route_configuration__free_unpacked(rc, NULL);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static void
test_eds_response(void **state)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla;

    (void)state;
    if (golden_dir() == NULL)
        skip();
    r = load_response("eds.bin", TU "envoy.config.endpoint.v3.ClusterLoadAssignment");
    cla = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, r->resources[0]->value.len,
                                                                       r->resources[0]->value.data);
    assert_non_null(cla);
    assert_string_equal(cla->cluster_name, "golden_eds");
    assert_int_equal(cla->n_endpoints, 1);
    assert_int_equal(cla->endpoints[0]->n_lb_endpoints, 2);
    assert_int_equal(cla->endpoints[0]->lb_endpoints[1]->endpoint->address->socket_address->port_value, 9002);
    assert_non_null(cla->endpoints[0]->lb_endpoints[1]->load_balancing_weight);
    assert_int_equal(cla->endpoints[0]->lb_endpoints[1]->load_balancing_weight->value, 5);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(cla, NULL);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static void
test_delta_response(void **state)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
    size_t len;
    uint8_t *buf;

    (void)state;
    if (golden_dir() == NULL)
        skip();
    buf = read_golden("delta.bin", &len);
    r = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    assert_string_equal(r->type_url, TU "envoy.config.cluster.v3.Cluster");
    assert_string_equal(r->nonce, "n-delta");
    assert_string_equal(r->system_version_info, "sys1");
    assert_int_equal(r->n_resources, 1);
    assert_string_equal(r->resources[0]->name, "typed");
    assert_string_equal(r->resources[0]->version, "rv1");
    assert_string_equal(r->resources[0]->resource->type_url, TU "envoy.config.cluster.v3.Cluster");
    assert_int_equal(r->n_removed_resources, 1);
    assert_string_equal(r->removed_resources[0], "gone");
    assert_int_equal(r->n_removed_resource_names, 1);
    assert_string_equal(r->removed_resource_names[0]->name, "gone2");
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
}

/* ---- our requests -------------------------------------------------------------------------- */

static void
build_requests(Envoy__Service__Discovery__V3__DiscoveryRequest *req,
               Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *dreq,
               Envoy__Config__Core__V3__Node *node, Envoy__Config__Core__V3__Extension *ext,
               Google__Rpc__Status *st,
               Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *irv)
{
    static char *names[] = {"r1", "r2"};
    static char *ext_urls[] = {TU "mcplex.extensions.clusters.mcp.v1.McpBackend"};
    static char *star[] = {"*"};
    static Envoy__Config__Core__V3__Extension *exts[1];
    static Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *irvs[1];

    node->id = "golden-node";
    node->cluster = "golden-cluster";
    node->user_agent_name = "mcplex";
    node->user_agent_version_type_case =
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
    node->user_agent_version = "9.9.9";
    ext->name = "mcplex.clusters.mcp";
    ext->category = "envoy.clusters";
    ext->n_type_urls = 1;
    ext->type_urls = ext_urls;
    exts[0] = ext;
    node->n_extensions = 1;
    node->extensions = exts;
    st->code = 3;
    st->message = "Cluster 'x': bad";
    req->version_info = "v7";
    req->node = node;
    req->n_resource_names = 2;
    req->resource_names = names;
    req->type_url = TU "envoy.config.route.v3.RouteConfiguration";
    req->response_nonce = "n9";
    req->error_detail = st;
    irv->key = "typed";
    irv->value = "rv1";
    irvs[0] = irv;
    dreq->node = node;
    dreq->type_url = TU "envoy.config.cluster.v3.Cluster";
    dreq->n_resource_names_subscribe = 1;
    dreq->resource_names_subscribe = star;
    dreq->n_initial_resource_versions = 1;
    dreq->initial_resource_versions = irvs;
}

static void
test_requests(void **state)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest dreq =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Envoy__Config__Core__V3__Extension ext = ENVOY__CONFIG__CORE__V3__EXTENSION__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry irv =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
    Envoy__Service__Discovery__V3__DiscoveryRequest *back;
    size_t len;
    uint8_t *buf;

    (void)state;
    build_requests(&req, &dreq, &node, &ext, &st, &irv);
    /* self-contained round trip (always) */
    len = protobuf_c_message_get_packed_size(&req.base);
    buf = mcplex_malloc(len);
    protobuf_c_message_pack(&req.base, buf);
    back = envoy__service__discovery__v3__discovery_request__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_string_equal(back->node->id, "golden-node");
    assert_string_equal(back->error_detail->message, "Cluster 'x': bad");
    envoy__service__discovery__v3__discovery_request__free_unpacked(back, NULL);
    free(buf);
    if (golden_dir() == NULL)
        return;
    write_golden("request.bin", &req.base);
    write_golden("delta-request.bin", &dreq.base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cds_response),   cmocka_unit_test(test_lds_response),
        cmocka_unit_test(test_rds_response),   cmocka_unit_test(test_eds_response),
        cmocka_unit_test(test_delta_response), cmocka_unit_test(test_requests),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
