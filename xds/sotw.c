/*
 * sotw.c - state-of-the-world ADS (envoy.service.discovery.v3 StreamAggregatedResources):
 * DiscoveryRequest/DiscoveryResponse, ACK/NACK exactly as research/xds-subset.md 1.4 says
 * (per-type nonce and version; a NACK carries the previous accepted version, the response's
 * nonce and error_detail with every validation error joined), wildcard LDS/CDS, RDS and EDS by
 * name (the full union in every request, with the newest nonce of that type, since
 * go-control-plane ignores stale nonces), LDS/CDS responses as full sets, RDS/EDS as partial.
 * An LDS/CDS response with invalid resources applies the valid ones and is NACKed (Envoy's rule,
 * xds-subset.md 1.4 item 3); RDS/EDS responses are rejected whole.
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

#define WRAPPER_URL "type.googleapis.com/envoy.service.discovery.v3.Resource"
#define MAX_ERROR_DETAIL 16384

/* Sends one request of |type|: current accepted version, newest nonce, the full subscription
 * (names for RDS/EDS; none for the wildcard types), optional error detail. */
static void
send_request(mcplex_xds_t *x, xds_type_id_t type, const char *nonce, Google__Rpc__Status *error)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest req =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    xds_type_t *t = &x->types[type];

    req.version_info = t->version;
    req.type_url = (char *)t->type_url;
    req.response_nonce = (char *)(nonce != NULL ? nonce : "");
    if (!x->node_sent) {
        req.node = &x->node;
        x->node_sent = 1;
    }
    if (!t->wildcard) {
        xds_names_mark_sent(x, type);
        req.n_resource_names = t->n_names;
        req.resource_names = t->names;
        if (t->n_names > 0)
            t->sent_nonempty = 1;
    }
    req.error_detail = error;
    t->sent = 1;
    mcplex_log_debug("xds", "-> %s version '%s' nonce '%s' (%zu names)%s", t->type_url, req.version_info,
                     req.response_nonce, req.n_resource_names, error != NULL ? " NACK" : "");
    xds_send(x, &req.base);
}

void
xds_sotw_start(mcplex_xds_t *x)
{
    for (int k = 0; k < XDS_TYPE_COUNT; k++) {
        xds_type_t *t = &x->types[k];

        if (!t->enabled)
            continue;
        /* RDS/EDS with no names yet: nothing to ask (an empty list would be a wildcard) */
        if (!t->wildcard && x->n_want[k] == 0)
            continue;
        send_request(x, (xds_type_id_t)k, "", NULL);
    }
}

void
xds_sotw_resubscribe(mcplex_xds_t *x, xds_type_id_t type)
{
    xds_type_t *t = &x->types[type];

    if (x->call_id == 0)
        return; /* the next call sends the full state */
    if (x->n_want[type] == 0 && !t->sent_nonempty)
        return; /* still nothing to ask, and nothing to unsubscribe */
    send_request(x, type, t->nonce, NULL);
}

/*
 * Decodes the response's resources of |type| into |out| (new references), collecting errors.
 * Returns the number of errors that spoil the whole response (a wrong type_url, an undecodable
 * resource, no name, a duplicate name): the response must then be rejected as a whole, since the
 * set of names is not known. A resource that decodes but fails validation is not counted: for
 * LDS/CDS (Envoy applies the valid part of a batch and NACKs) |out| gets the cached version of
 * that name instead, if there is one; for RDS/EDS the caller rejects the response.
 */
static size_t
decode_resources(mcplex_xds_t *x, xds_type_id_t type,
                 const Envoy__Service__Discovery__V3__DiscoveryResponse *resp, xds_res_set_t *out,
                 mcplex_errors_t *errs)
{
    const xds_type_t *t = &x->types[type];
    size_t fatal = errs->count;
    size_t invalid = 0;

    for (size_t i = 0; i < resp->n_resources; i++) {
        const Google__Protobuf__Any *any = resp->resources[i];
        ProtobufCMessage *msg;
        const char *name = NULL;

        if (any->type_url == NULL || strcmp(any->type_url, t->type_url) != 0) {
            mcplex_errors_add(errs, NULL, "resources[%zu]: type_url '%s' is not the response's '%s'", i,
                              any->type_url != NULL ? any->type_url : "", t->type_url);
            continue;
        }
        msg = protobuf_c_message_unpack(t->desc, NULL, any->value.len, any->value.data);
        if (msg == NULL) {
            mcplex_errors_add(errs, NULL, "resources[%zu]: cannot decode %s", i, t->type_url);
            continue;
        }
        /* the name is field 1 of all four types (cluster_name for ClusterLoadAssignment) */
        {
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(t->desc, 1);
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
                name = *(const char *const *)((const char *)msg + f->offset);
        }
        if (name == NULL || *name == '\0') {
            mcplex_errors_add(errs, NULL, "resources[%zu]: %s without a name", i, t->type_url);
            protobuf_c_message_free_unpacked(msg, NULL);
            continue;
        }
        if (xds_set_find(out, name) != NULL) {
            mcplex_errors_add(errs, NULL, "resources[%zu]: duplicate resource name '%s'", i, name);
            protobuf_c_message_free_unpacked(msg, NULL);
            continue;
        }
        if (xds_check_resource(x, type, name, msg, errs) != 0) {
            invalid++;
            if (t->wildcard) {
                xds_res_t *old = xds_set_find(&t->cache, name);
                if (old != NULL) {
                    old->refs++;
                    xds_set_add(out, old);
                }
                protobuf_c_message_free_unpacked(msg, NULL);
                continue;
            }
        }
        xds_set_add(out, xds_res_new(name, resp->version_info, msg));
    }
    return errs->count - fatal - invalid;
}

void
xds_sotw_on_message(mcplex_xds_t *x, const uint8_t *data, size_t len)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp;
    xds_res_set_t fresh, candidate;
    mcplex_errors_t errs;
    xds_type_id_t type;
    xds_type_t *t;

    memset(&fresh, 0, sizeof(fresh));
    memset(&candidate, 0, sizeof(candidate));
    mcplex_errors_init(&errs);
    resp = envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    if (resp == NULL) {
        mcplex_log_error("xds", "undecodable DiscoveryResponse (%zu bytes); ignored", len);
        goto done;
    }
    type = xds_type_of(x, resp->type_url);
    if (type == XDS_TYPE_COUNT) {
        mcplex_log_warn("xds", "DiscoveryResponse for unknown type '%s'; ignored", resp->type_url);
        goto done;
    }
    t = &x->types[type];
    free(t->nonce);
    t->nonce = mcplex_strdup(resp->nonce != NULL ? resp->nonce : "");
    t->received = 1;
    mcplex_log_debug("xds", "<- %s version '%s' nonce '%s' (%zu resources)", t->type_url, resp->version_info,
                     resp->nonce, resp->n_resources);
    /* LDS/CDS with invalid resources: the valid ones are applied and the response still NACKed */
    if (decode_resources(x, type, resp, &fresh, &errs) == 0 && (errs.count == 0 || t->wildcard)) {
        if (t->wildcard) {
            candidate = fresh; /* LDS/CDS: the full set; absent names are deleted */
            memset(&fresh, 0, sizeof(fresh));
        } else {
            /* RDS/EDS: only what was sent changes; keep only names still subscribed */
            for (size_t i = 0; i < t->cache.n; i++) {
                xds_res_t *r = t->cache.items[i];
                if (xds_set_find(&fresh, r->name) == NULL) {
                    r->refs++;
                    xds_set_add(&candidate, r);
                }
            }
            for (size_t i = 0; i < fresh.n; i++) {
                fresh.items[i]->refs++;
                xds_set_add(&candidate, fresh.items[i]);
            }
        }
        xds_commit(x, type, &candidate, &errs);
    }
    if (errs.count == 0) {
        free(t->version);
        t->version = mcplex_strdup(resp->version_info != NULL ? resp->version_info : "");
        send_request(x, type, resp->nonce, NULL); /* ACK */
    } else {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        char *joined = mcplex_errors_join(&errs, "; ");

        if (strlen(joined) > MAX_ERROR_DETAIL)
            strcpy(joined + MAX_ERROR_DETAIL - 4, "...");
        st.code = 3; /* INVALID_ARGUMENT, as gRPC's xDS clients send */
        st.message = joined;
        mcplex_log_warn("xds", "NACK %s version '%s': %s", t->type_url, resp->version_info, joined);
        send_request(x, type, resp->nonce, &st); /* version_info stays the previous accepted one */
        free(joined);
    }
done:
    xds_set_dispose(&fresh);
    xds_set_dispose(&candidate);
    mcplex_errors_dispose(&errs);
    if (resp != NULL)
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
}
