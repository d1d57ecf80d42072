/*
 * delta.c - incremental ADS (envoy.service.discovery.v3 DeltaAggregatedResources):
 * DeltaDiscoveryRequest/DeltaDiscoveryResponse (research/xds-subset.md 1.3-1.5): wildcard LDS/CDS
 * (`*`), RDS/EDS subscribe/unsubscribe by name, resources keyed by Resource.name, removals from
 * removed_resources and removed_resource_names, every response ACKed or NACKed by nonce, and on a
 * new stream initial_resource_versions with what we already hold.
 *
 * Thread: main.
 */
#include "xds/ads_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define MAX_ERROR_DETAIL 16384

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry irv_entry_t;

static void
send_ack(mcplex_xds_t *x, xds_type_id_t type, const char *nonce, Google__Rpc__Status *error)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;

    req.type_url = (char *)x->types[type].type_url;
    req.response_nonce = (char *)nonce;
    req.error_detail = error;
    if (!x->node_sent) {
        req.node = &x->node;
        x->node_sent = 1;
    }
    mcplex_log_debug("xds", "-> delta %s nonce '%s'%s", req.type_url, nonce, error != NULL ? " NACK" : "");
    xds_send(x, &req.base);
}

/* The first request of |type| on a new stream: wildcard or the wanted names, plus the versions
 * of what the cache holds. */
static void
send_initial(mcplex_xds_t *x, xds_type_id_t type)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    xds_type_t *t = &x->types[type];
    char *star[1] = {(char *)"*"};
    irv_entry_t *entries = NULL, **eptrs = NULL;

    req.type_url = (char *)t->type_url;
    if (!x->node_sent) {
        req.node = &x->node;
        x->node_sent = 1;
    }
    if (t->wildcard) {
        req.n_resource_names_subscribe = 1;
        req.resource_names_subscribe = star;
    } else {
        xds_names_mark_sent(x, type);
        req.n_resource_names_subscribe = t->n_names;
        req.resource_names_subscribe = t->names;
    }
    if (t->cache.n > 0) {
        entries = mcplex_calloc(t->cache.n, sizeof(*entries));
        eptrs = mcplex_calloc(t->cache.n, sizeof(*eptrs));
        for (size_t i = 0; i < t->cache.n; i++) {
            irv_entry_t init =
                ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
            entries[i] = init;
            entries[i].key = t->cache.items[i]->name;
            entries[i].value = t->cache.items[i]->version;
            eptrs[i] = &entries[i];
        }
        req.n_initial_resource_versions = t->cache.n;
        req.initial_resource_versions = eptrs;
    }
    t->sent = 1;
    mcplex_log_debug("xds", "-> delta %s subscribe %zu, %zu initial versions", req.type_url,
                     req.n_resource_names_subscribe, req.n_initial_resource_versions);
    xds_send(x, &req.base);
    free(entries);
    free(eptrs);
}

void
xds_delta_start(mcplex_xds_t *x)
{
    for (int k = 0; k < XDS_TYPE_COUNT; k++) {
        if (!x->types[k].enabled)
            continue;
        if (!x->types[k].wildcard && x->n_want[k] == 0)
            continue;
        send_initial(x, (xds_type_id_t)k);
    }
}

void
xds_delta_resubscribe(mcplex_xds_t *x, xds_type_id_t type)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    xds_type_t *t = &x->types[type];
    char **sub = NULL, **unsub = NULL;
    size_t n_sub = 0, n_unsub = 0;

    if (x->call_id == 0)
        return;
    if (!t->sent) {
        send_initial(x, type);
        return;
    }
    sub = mcplex_calloc(x->n_want[type] + 1, sizeof(char *));
    unsub = mcplex_calloc(t->n_names + 1, sizeof(char *));
    for (size_t i = 0; i < x->n_want[type]; i++) {
        int had = 0;
        for (size_t j = 0; j < t->n_names && !had; j++)
            had = strcmp(t->names[j], x->want[type][i]) == 0;
        if (!had)
            sub[n_sub++] = x->want[type][i];
    }
    for (size_t j = 0; j < t->n_names; j++) {
        int keep = 0;
        for (size_t i = 0; i < x->n_want[type] && !keep; i++)
            keep = strcmp(t->names[j], x->want[type][i]) == 0;
        if (!keep)
            unsub[n_unsub++] = mcplex_strdup(t->names[j]);
    }
    req.type_url = (char *)t->type_url;
    req.n_resource_names_subscribe = n_sub;
    req.resource_names_subscribe = sub;
    req.n_resource_names_unsubscribe = n_unsub;
    req.resource_names_unsubscribe = unsub;
    /* no response_nonce: a spontaneous subscription change (1.3) */
    mcplex_log_debug("xds", "-> delta %s subscribe %zu unsubscribe %zu", req.type_url, n_sub, n_unsub);
    xds_send(x, &req.base);
    /* drop what we no longer want from the cache view at the next commit */
    xds_names_mark_sent(x, type);
    for (size_t j = 0; j < n_unsub; j++)
        free(unsub[j]);
    free(sub);
    free(unsub);
}

void
xds_delta_on_message(mcplex_xds_t *x, const uint8_t *data, size_t len)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *resp;
    xds_res_set_t candidate;
    mcplex_errors_t errs;
    xds_type_id_t type;
    xds_type_t *t;
    size_t invalid = 0; /* resources that decoded but failed validation */

    memset(&candidate, 0, sizeof(candidate));
    mcplex_errors_init(&errs);
    resp = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, data);
    if (resp == NULL) {
        mcplex_log_error("xds", "undecodable DeltaDiscoveryResponse (%zu bytes); ignored", len);
        goto done;
    }
    type = xds_type_of(x, resp->type_url);
    if (type == XDS_TYPE_COUNT) {
        mcplex_log_warn("xds", "DeltaDiscoveryResponse for unknown type '%s'; ignored", resp->type_url);
        goto done;
    }
    t = &x->types[type];
    t->received = 1;
    mcplex_log_debug("xds", "<- delta %s nonce '%s' (%zu resources, %zu removed)", t->type_url, resp->nonce,
                     resp->n_resources, resp->n_removed_resources + resp->n_removed_resource_names);
    xds_set_copy(&candidate, &t->cache);
    /* As in SotW: a resource that fails validation keeps its cached version; for LDS/CDS the
     * rest of the response is applied (Envoy's behaviour) and it is NACKed all the same. */
    for (size_t i = 0; i < resp->n_resources; i++) {
        const Envoy__Service__Discovery__V3__Resource *r = resp->resources[i];
        ProtobufCMessage *msg;
        size_t at;

        if (r->name == NULL || *r->name == '\0') {
            mcplex_errors_add(&errs, NULL, "resources[%zu]: a Resource without a name", i);
            continue;
        }
        if (r->resource == NULL)
            continue; /* TTL heartbeat, not a deletion */
        for (size_t j = 0; j < i; j++) {
            if (resp->resources[j]->name != NULL && strcmp(resp->resources[j]->name, r->name) == 0)
                mcplex_errors_add(&errs, NULL, "resources[%zu]: duplicate resource name '%s'", i, r->name);
        }
        if (r->resource->type_url == NULL || strcmp(r->resource->type_url, t->type_url) != 0) {
            mcplex_errors_add(&errs, NULL, "resources[%zu]: type_url '%s' is not the response's '%s'", i,
                              r->resource->type_url != NULL ? r->resource->type_url : "", t->type_url);
            continue;
        }
        msg = protobuf_c_message_unpack(t->desc, NULL, r->resource->value.len, r->resource->value.data);
        if (msg == NULL) {
            mcplex_errors_add(&errs, NULL, "resources[%zu]: cannot decode %s", i, t->type_url);
            continue;
        }
        if (xds_check_resource(x, type, r->name, msg, &errs) != 0) {
            invalid++;
            protobuf_c_message_free_unpacked(msg, NULL);
            continue;
        }
        at = xds_set_index(&candidate, r->name);
        if (at != (size_t)-1) {
            xds_res_unref(candidate.items[at]);
            candidate.items[at] = xds_res_new(r->name, r->version, msg);
        } else {
            xds_set_add(&candidate, xds_res_new(r->name, r->version, msg));
        }
    }
    for (size_t k = 0; k < resp->n_removed_resources + resp->n_removed_resource_names; k++) {
        const char *name = k < resp->n_removed_resources
                               ? resp->removed_resources[k]
                               : resp->removed_resource_names[k - resp->n_removed_resources]->name;
        size_t at = name != NULL ? xds_set_index(&candidate, name) : (size_t)-1;

        if (at == (size_t)-1)
            continue;
        xds_res_unref(candidate.items[at]);
        candidate.items[at] = candidate.items[--candidate.n];
    }
    if (errs.count == invalid && (invalid == 0 || t->wildcard))
        xds_commit(x, type, &candidate, &errs);
    if (errs.count == 0) {
        send_ack(x, type, resp->nonce, NULL);
    } else {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        char *joined = mcplex_errors_join(&errs, "; ");

        if (strlen(joined) > MAX_ERROR_DETAIL)
            strcpy(joined + MAX_ERROR_DETAIL - 4, "...");
        st.code = 3;
        st.message = joined;
        mcplex_log_warn("xds", "NACK delta %s nonce '%s': %s", t->type_url, resp->nonce, joined);
        send_ack(x, type, resp->nonce, &st);
        free(joined);
    }
done:
    xds_set_dispose(&candidate);
    mcplex_errors_dispose(&errs);
    if (resp != NULL)
        envoy__service__discovery__v3__delta_discovery_response__free_unpacked(resp, NULL);
}
