/*
 * ads.c - the xDS client's core (xds.h): reads dynamic_resources from the bootstrap, resolves
 * the control plane, builds the node, runs the ADS call through xds/grpc_stream.c with jittered
 * reconnect backoff (500 ms .. 30 s, research/xds-subset.md 1.8), keeps the per-type resource
 * caches, serves them to the config translators (the xDS source of config.h: rds and EDS),
 * assembles complete snapshots and publishes them through the caller's publish function (to
 * one worker or to every worker of a group).
 * The protocol state machines are in sotw.c and delta.c.
 *
 * Thread: main (the hand-off delivers the gRPC thread's events here).
 */
#include "xds/ads_internal.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/random.h"
#include "config/pbmap.h"
#include "config/yaml_tree.h"
#include "net/tls.h" /* mcplex_tls_data_read */
#include "event/worker.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/core/v3/grpc_service.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "google/protobuf/duration.pb-c.h"

#ifndef MCPLEX_VERSION
#define MCPLEX_VERSION "0.0.0"
#endif

#define BACKOFF_BASE_MS 500u
#define BACKOFF_CAP_MS 30000u
#define DEFAULT_INITIAL_FETCH_TIMEOUT_MS 15000u

#define SOTW_METHOD "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define DELTA_METHOD "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

#define CS_ENUM(x) ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_##x
#define API_TYPE(x) ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__##x
#define GS_ENUM(x) ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_##x

static void stream_start(mcplex_xds_t *x);

/* ---- resources and sets ---------------------------------------------------------------------- */

xds_res_t *
xds_res_new(const char *name, const char *version, ProtobufCMessage *msg)
{
    xds_res_t *r = mcplex_calloc(1, sizeof(*r));

    r->name = mcplex_strdup(name != NULL ? name : "");
    r->version = mcplex_strdup(version != NULL ? version : "");
    r->msg = msg;
    r->refs = 1;
    return r;
}

void
xds_res_unref(xds_res_t *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    if (r->msg != NULL)
        protobuf_c_message_free_unpacked(r->msg, NULL);
    free(r->name);
    free(r->version);
    free(r);
}

void
xds_set_add(xds_res_set_t *s, xds_res_t *r)
{
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 16 : s->cap * 2;
        s->items = mcplex_realloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = r;
}

size_t
xds_set_index(const xds_res_set_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i]->name, name) == 0)
            return i;
    }
    return (size_t)-1;
}

xds_res_t *
xds_set_find(const xds_res_set_t *s, const char *name)
{
    size_t i = xds_set_index(s, name);

    return i == (size_t)-1 ? NULL : s->items[i];
}

void
xds_set_copy(xds_res_set_t *to, const xds_res_set_t *from)
{
    memset(to, 0, sizeof(*to));
    for (size_t i = 0; i < from->n; i++) {
        from->items[i]->refs++;
        xds_set_add(to, from->items[i]);
    }
}

void
xds_set_dispose(xds_res_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        xds_res_unref(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

xds_type_id_t
xds_type_of(const mcplex_xds_t *x, const char *type_url)
{
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        if (type_url != NULL && strcmp(x->types[t].type_url, type_url) == 0)
            return (xds_type_id_t)t;
    }
    return XDS_TYPE_COUNT;
}

/* ---- the translators' xDS source ------------------------------------------------------------- */

static int
name_in(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0)
            return 1;
    }
    return 0;
}

static void
want_name(mcplex_xds_t *x, xds_type_id_t t, const char *name)
{
    if (!x->collecting || name_in(x->want[t], x->n_want[t], name))
        return;
    x->want[t] = mcplex_realloc(x->want[t], (x->n_want[t] + 1) * sizeof(char *));
    x->want[t][x->n_want[t]++] = mcplex_strdup(name);
}

static const Envoy__Config__Route__V3__RouteConfiguration *
source_route_config(void *arg, const char *name)
{
    mcplex_xds_t *x = arg;
    xds_res_t *r;

    want_name(x, XDS_RDS, name);
    r = xds_set_find(x->types[XDS_RDS].view, name);
    if (r == NULL && !name_in(x->expired, x->n_expired, name))
        x->n_warm_missing++;
    return r != NULL ? (const Envoy__Config__Route__V3__RouteConfiguration *)r->msg : NULL;
}

static const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *
source_endpoints(void *arg, const char *name)
{
    mcplex_xds_t *x = arg;
    xds_res_t *r;

    want_name(x, XDS_EDS, name);
    r = xds_set_find(x->types[XDS_EDS].view, name);
    return r != NULL ? (const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *)r->msg : NULL;
}

/* ---- checking and assembling ----------------------------------------------------------------- */

static const char *const TYPE_LABEL[XDS_TYPE_COUNT] = {"Cluster", "ClusterLoadAssignment", "Listener",
                                                       "RouteConfiguration"};

size_t
xds_check_resource(mcplex_xds_t *x, xds_type_id_t type, const char *name, const ProtobufCMessage *msg,
                   mcplex_errors_t *errs)
{
    mcplex_errors_t local;
    size_t n = 0;
    char *prefix;

    mcplex_errors_init(&local);
    prefix = mcplex_sprintf("%s '%s'", TYPE_LABEL[type], name);
    switch (type) {
    case XDS_CDS: {
        size_t count = 0;
        mcplex_cluster_t *arr = mcplex_config_translate_cluster(
            (const Envoy__Config__Cluster__V3__Cluster *)msg, prefix, NULL, &count, &local);
        for (size_t i = 0; arr != NULL && i < count; i++)
            mcplex_cluster_dispose(&arr[i]);
        free(arr);
        break;
    }
    case XDS_LDS: {
        mcplex_listener_cfg_t l;
        if (mcplex_config_translate_listener((const Envoy__Config__Listener__V3__Listener *)msg, prefix, NULL,
                                             &l, &local) == 0)
            mcplex_listener_cfg_dispose(&l);
        break;
    }
    case XDS_RDS: {
        mcplex_route_config_t rc;
        if (mcplex_config_translate_route_configuration(
                (const Envoy__Config__Route__V3__RouteConfiguration *)msg, prefix, 1, NULL, &rc, &local) == 0)
            mcplex_route_config_dispose(&rc);
        break;
    }
    case XDS_EDS:
    default:
        break;
    }
    n = local.count;
    mcplex_errors_move(errs, &local);
    mcplex_errors_dispose(&local);
    free(prefix);
    return n;
}

static void
free_names(char ***names, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
    *n = 0;
}

/*
 * Translates every listener and cluster (static and dynamic) once on its own, with the source
 * recording the RDS and EDS names asked for; marks the dynamic listeners still waiting for their
 * route configuration in |warming| (one flag per LDS view item).
 */
static void
collect_wanted(mcplex_xds_t *x, unsigned char *warming)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = x->bootstrap->static_resources;
    const xds_res_set_t *lds = x->types[XDS_LDS].view, *cds = x->types[XDS_CDS].view;
    mcplex_errors_t scratch;

    free_names(&x->want[XDS_RDS], &x->n_want[XDS_RDS]);
    free_names(&x->want[XDS_EDS], &x->n_want[XDS_EDS]);
    mcplex_errors_init(&scratch);
    x->collecting = 1;
    for (size_t i = 0; i < (sr != NULL ? sr->n_listeners : 0); i++) {
        mcplex_listener_cfg_t l;
        if (mcplex_config_translate_listener(sr->listeners[i], "", NULL, &l, &scratch) == 0)
            mcplex_listener_cfg_dispose(&l);
    }
    for (size_t i = 0; i < lds->n; i++) {
        const Envoy__Config__Listener__V3__Listener *msg =
            (const Envoy__Config__Listener__V3__Listener *)lds->items[i]->msg;
        mcplex_listener_cfg_t l;

        x->n_warm_missing = 0;
        if (mcplex_config_translate_listener(msg, "", NULL, &l, &scratch) == 0)
            mcplex_listener_cfg_dispose(&l);
        warming[i] = x->n_warm_missing > 0;
    }
    for (size_t k = 0; k < 2; k++) {
        size_t n = k == 0 ? (sr != NULL ? sr->n_clusters : 0) : cds->n;
        for (size_t i = 0; i < n; i++) {
            const Envoy__Config__Cluster__V3__Cluster *c =
                k == 0 ? sr->clusters[i] : (const Envoy__Config__Cluster__V3__Cluster *)cds->items[i]->msg;
            size_t count = 0;
            mcplex_cluster_t *arr;

            if (c->cluster_discovery_type_case !=
                    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE ||
                c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
                continue;
            arr = mcplex_config_translate_cluster(c, "", NULL, &count, &scratch);
            for (size_t j = 0; arr != NULL && j < count; j++)
                mcplex_cluster_dispose(&arr[j]);
            free(arr);
        }
    }
    x->collecting = 0;
    mcplex_errors_dispose(&scratch);
}

/* The whole config from the views: bootstrap static resources + dynamic ones (warming listeners
 * left out). Returns a new snapshot or NULL with errors. */
static mcplex_snapshot_t *
assemble(mcplex_xds_t *x, const unsigned char *warming, mcplex_errors_t *errs)
{
    Envoy__Config__Bootstrap__V3__Bootstrap b = *x->bootstrap;
    Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources sr =
        ENVOY__CONFIG__BOOTSTRAP__V3__BOOTSTRAP__STATIC_RESOURCES__INIT;
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *orig = x->bootstrap->static_resources;
    const xds_res_set_t *lds = x->types[XDS_LDS].view, *cds = x->types[XDS_CDS].view;
    size_t n_sl = orig != NULL ? orig->n_listeners : 0, n_sc = orig != NULL ? orig->n_clusters : 0;
    mcplex_snapshot_t *snap;

    sr.listeners = mcplex_calloc(n_sl + lds->n + 1, sizeof(*sr.listeners));
    sr.clusters = mcplex_calloc(n_sc + cds->n + 1, sizeof(*sr.clusters));
    for (size_t i = 0; i < n_sl; i++)
        sr.listeners[sr.n_listeners++] = orig->listeners[i];
    for (size_t i = 0; i < lds->n; i++) {
        if (!warming[i])
            sr.listeners[sr.n_listeners++] = (Envoy__Config__Listener__V3__Listener *)lds->items[i]->msg;
    }
    for (size_t i = 0; i < n_sc; i++)
        sr.clusters[sr.n_clusters++] = orig->clusters[i];
    for (size_t i = 0; i < cds->n; i++)
        sr.clusters[sr.n_clusters++] = (Envoy__Config__Cluster__V3__Cluster *)cds->items[i]->msg;
    b.static_resources = &sr;
    snap = mcplex_config_translate_bootstrap(&b, errs);
    free(sr.listeners);
    free(sr.clusters);
    return snap;
}

int
xds_names_changed(const mcplex_xds_t *x, xds_type_id_t type)
{
    const xds_type_t *t = &x->types[type];

    if (t->n_names != x->n_want[type])
        return 1;
    for (size_t i = 0; i < t->n_names; i++) {
        if (!name_in(x->want[type], x->n_want[type], t->names[i]))
            return 1;
    }
    return 0;
}

void
xds_names_mark_sent(mcplex_xds_t *x, xds_type_id_t type)
{
    xds_type_t *t = &x->types[type];

    free_names(&t->names, &t->n_names);
    t->names = mcplex_calloc(x->n_want[type] + 1, sizeof(char *));
    for (size_t i = 0; i < x->n_want[type]; i++)
        t->names[i] = mcplex_strdup(x->want[type][i]);
    t->n_names = x->n_want[type];
}

/* Drops RDS/EDS resources nothing refers to any more (unsubscribed names). */
static void
prune_unwanted(mcplex_xds_t *x, xds_type_id_t type)
{
    xds_res_set_t *c = &x->types[type].cache;
    size_t kept = 0;

    for (size_t i = 0; i < c->n; i++) {
        if (name_in(x->want[type], x->n_want[type], c->items[i]->name))
            c->items[kept++] = c->items[i];
        else
            xds_res_unref(c->items[i]);
    }
    c->n = kept;
}

int
xds_commit(mcplex_xds_t *x, xds_type_id_t type, xds_res_set_t *candidate, mcplex_errors_t *errs)
{
    xds_type_t *t = &x->types[type];
    size_t n_lds;
    unsigned char *warming;
    mcplex_snapshot_t *snap;
    mcplex_errors_t local;
    int rc = -1;

    mcplex_errors_init(&local);
    t->view = candidate;
    n_lds = x->types[XDS_LDS].view->n;
    warming = mcplex_calloc(n_lds + 1, 1);
    collect_wanted(x, warming);
    snap = assemble(x, warming, &local);
    if (snap == NULL)
        goto fail;
    if (x->publish(x->publish_arg, snap, &local) != 0) {
        mcplex_snapshot_unref(snap);
        goto fail;
    }
    {
        size_t n_warm = 0;
        for (size_t i = 0; i < n_lds; i++)
            n_warm += warming[i];
        mcplex_log_info("xds",
                        "published config generation %llu (%zu listeners, %zu clusters; %zu listener%s "
                        "warming)",
                        (unsigned long long)snap->generation, snap->n_listeners, snap->n_clusters, n_warm,
                        n_warm == 1 ? "" : "s");
    }
    mcplex_snapshot_unref(snap);
    xds_set_dispose(&t->cache);
    t->cache = *candidate;
    memset(candidate, 0, sizeof(*candidate));
    t->view = &t->cache;
    free(warming);
    /* the subscription follows the accepted config (LDS -> RDS names, CDS -> EDS names) */
    for (int k = XDS_EDS; k <= XDS_RDS; k += XDS_RDS - XDS_EDS) {
        if (x->types[k].enabled && xds_names_changed(x, (xds_type_id_t)k)) {
            xds_arm_missing_timer(x);
            if (x->delta)
                xds_delta_resubscribe(x, (xds_type_id_t)k);
            else
                xds_sotw_resubscribe(x, (xds_type_id_t)k);
        }
        prune_unwanted(x, (xds_type_id_t)k);
    }
    rc = 0;
    goto done;
fail:
    free(warming);
    t->view = &t->cache;
    xds_set_dispose(candidate);
    /* recompute the wanted names from the cache as it stays */
    warming = mcplex_calloc(x->types[XDS_LDS].view->n + 1, 1);
    collect_wanted(x, warming);
    free(warming);
    mcplex_errors_move(errs, &local);
done:
    mcplex_errors_dispose(&local);
    return rc;
}

/* ---- sending --------------------------------------------------------------------------------- */

void
xds_send(mcplex_xds_t *x, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = mcplex_malloc(len > 0 ? len : 1);

    protobuf_c_message_pack(msg, buf);
    if (x->call_id != 0 && mcplex_grpc_stream_send(x->stream, buf, len) != 0)
        mcplex_log_debug("xds", "send: no live call (the next call resends the state)");
    free(buf);
}

/* ---- the stream lifecycle -------------------------------------------------------------------- */

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_start(arg);
}

static void
schedule_retry(mcplex_xds_t *x)
{
    uint32_t cap = BACKOFF_BASE_MS;
    uint32_t delay;
    struct timeval tv;

    for (unsigned i = 0; i < x->failures && cap < BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_CAP_MS)
        cap = BACKOFF_CAP_MS;
    /* full jitter over the upper half: [cap/2, cap] */
    delay = cap / 2 + mcplex_fast_rand_below(cap / 2 + 1);
    x->failures++;
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    mcplex_log_info("xds", "ADS stream to %s: retrying in %u ms (failure %u)", x->target, delay, x->failures);
    evtimer_add(x->retry_timer, &tv);
}

static void
stream_start(mcplex_xds_t *x)
{
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        xds_type_t *ty = &x->types[t];
        free(ty->nonce);
        ty->nonce = mcplex_strdup(""); /* nonces never survive a stream */
        ty->sent = 0;
        ty->sent_nonempty = 0;
        free_names(&ty->names, &ty->n_names);
    }
    x->node_sent = 0;
    x->call_id = mcplex_grpc_stream_start(x->stream);
    if (x->call_id == 0) {
        schedule_retry(x);
        return;
    }
    mcplex_log_info("xds", "ADS stream to %s started (%s)", x->target,
                    x->delta ? "delta" : "state of the world");
    if (x->delta)
        xds_delta_start(x);
    else
        xds_sotw_start(x);
}

static void
on_handoff(void *arg, const mcplex_xds_handoff_item_t *item)
{
    mcplex_xds_t *x = arg;

    if (item->call_id != x->call_id)
        return; /* from an earlier call */
    switch (item->kind) {
    case MCPLEX_XDS_HANDOFF_READY:
        mcplex_log_debug("xds", "ADS stream to %s is up", x->target);
        break;
    case MCPLEX_XDS_HANDOFF_MESSAGE:
        x->failures = 0; /* Envoy resets the backoff once a stream gets a response */
        if (x->delta)
            xds_delta_on_message(x, item->data, item->len);
        else
            xds_sotw_on_message(x, item->data, item->len);
        break;
    case MCPLEX_XDS_HANDOFF_CLOSED:
        mcplex_log_warn("xds", "ADS stream to %s ended: status %d%s%s; the last good config keeps serving",
                        x->target, item->status, item->details != NULL && *item->details ? ": " : "",
                        item->details != NULL ? item->details : "");
        x->call_id = 0;
        schedule_retry(x);
        break;
    }
}

static void
fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mcplex_xds_t *x = arg;
    size_t newly = 0;

    (void)fd;
    (void)what;
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        if (x->types[t].enabled && !x->types[t].received && (x->types[t].wildcard || x->n_want[t] > 0))
            mcplex_log_warn("xds", "initial_fetch_timeout: no %s from %s yet; serving without them",
                            x->types[t].type_url, x->target);
    }
    /* does-not-exist: wanted RDS/EDS names that never came are treated as absent */
    for (int t = XDS_EDS; t <= XDS_RDS; t += XDS_RDS - XDS_EDS) {
        for (size_t i = 0; i < x->n_want[t]; i++) {
            const char *name = x->want[t][i];
            if (xds_set_find(&x->types[t].cache, name) != NULL || name_in(x->expired, x->n_expired, name))
                continue;
            mcplex_log_warn("xds", "%s '%s' does not exist (nothing after %u ms); going on without it",
                            x->types[t].type_url, name, x->initial_fetch_timeout_ms);
            x->expired = mcplex_realloc(x->expired, (x->n_expired + 1) * sizeof(char *));
            x->expired[x->n_expired++] = mcplex_strdup(name);
            newly++;
        }
    }
    if (newly > 0) {
        /* re-evaluate warming listeners: same resources, new snapshot */
        xds_res_set_t candidate;
        mcplex_errors_t errs;

        mcplex_errors_init(&errs);
        xds_set_copy(&candidate, &x->types[XDS_LDS].cache);
        if (xds_commit(x, XDS_LDS, &candidate, &errs) != 0) {
            char *all = mcplex_errors_join(&errs, "; ");
            mcplex_log_error("xds", "after the does-not-exist timeout: %s", all);
            free(all);
        }
        mcplex_errors_dispose(&errs);
    }
}

void
xds_arm_missing_timer(mcplex_xds_t *x)
{
    struct timeval tv;

    if (x->fetch_timer == NULL || x->initial_fetch_timeout_ms == 0)
        return;
    tv.tv_sec = x->initial_fetch_timeout_ms / 1000;
    tv.tv_usec = (x->initial_fetch_timeout_ms % 1000) * 1000;
    evtimer_add(x->fetch_timer, &tv);
}

/* ---- bootstrap ------------------------------------------------------------------------------- */

static void
check_config_source(const Envoy__Config__Core__V3__ConfigSource *cs, const char *path, uint32_t *fetch_ms,
                    mcplex_errors_t *errs)
{
    if (cs->config_source_specifier_case != CS_ENUM(ADS))
        mcplex_errors_add(errs, path, "only ads: {} is supported (aggregated discovery over ads_config)");
    if (cs->initial_fetch_timeout != NULL) {
        *fetch_ms = (uint32_t)(cs->initial_fetch_timeout->seconds * 1000 +
                               cs->initial_fetch_timeout->nanos / 1000000);
    }
}

#define CC_ENUM(x) ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__GOOGLE_GRPC__CHANNEL_CREDENTIALS__CREDENTIAL_SPECIFIER_##x
#define DS_ENUM(x) ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_##x

/* Reads a model DataSource into |*out| (PEM), or adds an error at |path|. */
static void
read_pem(const mcplex_data_source_t *d, const char *path, char **out, mcplex_errors_t *errs)
{
    char err[256];
    size_t len = 0;

    if (mcplex_tls_data_read(d, path, out, &len, err, sizeof(err)) != 0)
        mcplex_errors_add(errs, path, "%s", err);
}

/* Reads a config.core.v3.DataSource (filename, inline_string/bytes, environment_variable) into
 * |*out| (PEM); an absent one leaves |*out| NULL. */
static void
read_pem_pb(const Envoy__Config__Core__V3__DataSource *pb, const char *path, char **out, mcplex_errors_t *errs)
{
    mcplex_data_source_t d;
    const char *env;

    if (pb == NULL)
        return;
    memset(&d, 0, sizeof(d));
    switch (pb->specifier_case) {
    case DS_ENUM(FILENAME):
        d.filename = pb->filename;
        break;
    case DS_ENUM(INLINE_STRING):
        d.inline_data = pb->inline_string;
        d.inline_len = strlen(pb->inline_string);
        break;
    case DS_ENUM(INLINE_BYTES):
        d.inline_data = (char *)pb->inline_bytes.data;
        d.inline_len = pb->inline_bytes.len;
        break;
    case DS_ENUM(ENVIRONMENT_VARIABLE):
        env = getenv(pb->environment_variable);
        if (env == NULL) {
            mcplex_errors_add(errs, path, "environment variable '%s' is not set", pb->environment_variable);
            return;
        }
        d.inline_data = (char *)env;
        d.inline_len = strlen(env);
        break;
    default:
        break;
    }
    read_pem(&d, path, out, errs);
}

/*
 * TLS to the control plane from google_grpc.channel_credentials (ssl_credentials: root_certs,
 * private_key, cert_chain; none: plaintext) into |x|'s tls_* fields.
 */
static void
google_grpc_tls(mcplex_xds_t *x, const Envoy__Config__Core__V3__GrpcService__GoogleGrpc *gg, mcplex_errors_t *errs)
{
    static const char path[] = "dynamic_resources.ads_config.grpc_services[0].google_grpc";
    const Envoy__Config__Core__V3__GrpcService__GoogleGrpc__SslCredentials *ssl;

    if (gg->n_call_credentials > 0)
        mcplex_errors_add(errs, path, "call_credentials are not supported");
    if (gg->channel_credentials == NULL)
        return;
    if (gg->channel_credentials->credential_specifier_case != CC_ENUM(SSL_CREDENTIALS)) {
        mcplex_errors_add(errs, path, "channel_credentials: only ssl_credentials is supported");
        return;
    }
    ssl = gg->channel_credentials->ssl_credentials;
    x->tls_on = 1;
    read_pem_pb(ssl->root_certs, "google_grpc.channel_credentials.ssl_credentials.root_certs", &x->tls_root_certs,
                errs);
    read_pem_pb(ssl->private_key, "google_grpc.channel_credentials.ssl_credentials.private_key",
                &x->tls_private_key, errs);
    read_pem_pb(ssl->cert_chain, "google_grpc.channel_credentials.ssl_credentials.cert_chain", &x->tls_cert_chain,
                errs);
    if ((x->tls_private_key == NULL) != (x->tls_cert_chain == NULL))
        mcplex_errors_add(errs, path, "ssl_credentials: private_key and cert_chain go together");
}

/* TLS to the control plane from the envoy_grpc cluster's UpstreamTlsContext (trusted_ca or the
 * default roots, a client certificate, sni). */
static void
cluster_tls(mcplex_xds_t *x, const mcplex_cluster_t *c, mcplex_errors_t *errs)
{
    const mcplex_tls_context_t *t = c->tls_context;

    if (!c->tls)
        return;
    x->tls_on = 1;
    if (t == NULL)
        return;
    if (t->insecure)
        mcplex_errors_add(errs, "dynamic_resources.ads_config", "the xds cluster '%s' cannot skip certificate checks",
                          c->name);
    if (t->trusted_ca.filename != NULL || t->trusted_ca.inline_data != NULL)
        read_pem(&t->trusted_ca, "trusted_ca", &x->tls_root_certs, errs);
    if (t->n_tls_certificates > 0) {
        read_pem(&t->tls_certificates[0].private_key, "private_key", &x->tls_private_key, errs);
        read_pem(&t->tls_certificates[0].certificate_chain, "certificate_chain", &x->tls_cert_chain, errs);
    }
    if (t->sni != NULL)
        x->tls_name = mcplex_strdup(t->sni);
}

/* The gRPC target of ads_config.grpc_services[0], and its channel's TLS settings into |x|. */
static char *
resolve_target(mcplex_xds_t *x, const Envoy__Config__Core__V3__ApiConfigSource *ads,
               const mcplex_snapshot_t *initial, mcplex_errors_t *errs)
{
    const Envoy__Config__Core__V3__GrpcService *gs;
    const mcplex_cluster_t *c;

    if (ads->n_grpc_services == 0) {
        mcplex_errors_add(errs, "dynamic_resources.ads_config.grpc_services", "at least one is required");
        return NULL;
    }
    if (ads->n_grpc_services > 1) {
        /* Envoy: "... must have a single gRPC service specified" */
        mcplex_errors_add(errs, "dynamic_resources.ads_config.grpc_services", "must have a single gRPC service");
        return NULL;
    }
    gs = ads->grpc_services[0];
    switch (gs->target_specifier_case) {
    case GS_ENUM(GOOGLE_GRPC):
        if (gs->google_grpc->target_uri == NULL || *gs->google_grpc->target_uri == '\0')
            break;
        google_grpc_tls(x, gs->google_grpc, errs);
        return mcplex_strdup(gs->google_grpc->target_uri);
    case GS_ENUM(ENVOY_GRPC):
        if (gs->envoy_grpc->cluster_name == NULL || *gs->envoy_grpc->cluster_name == '\0')
            break;
        c = initial != NULL ? mcplex_snapshot_find_cluster(initial, gs->envoy_grpc->cluster_name) : NULL;
        if (c == NULL || c->n_endpoints == 0) {
            mcplex_errors_add(errs, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name",
                              "'%s' must be a static cluster with an endpoint", gs->envoy_grpc->cluster_name);
            return NULL;
        }
        cluster_tls(x, c, errs);
        if (strchr(c->endpoints[0].host, ':') != NULL)
            return mcplex_sprintf("ipv6:[%s]:%u", c->endpoints[0].host, (unsigned)c->endpoints[0].port);
        return mcplex_sprintf("%s:%u", c->endpoints[0].host, (unsigned)c->endpoints[0].port);
    default:
        break;
    }
    mcplex_errors_add(errs, "dynamic_resources.ads_config.grpc_services[0]",
                      "envoy_grpc.cluster_name or google_grpc.target_uri is required");
    return NULL;
}

static void
build_node(mcplex_xds_t *x)
{
    const Envoy__Config__Core__V3__Node *bn = x->bootstrap->node;
    Envoy__Config__Core__V3__Node init = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Envoy__Config__Core__V3__Extension ext = ENVOY__CONFIG__CORE__V3__EXTENSION__INIT;

    x->node = init;
    if (bn != NULL) {
        x->node.id = bn->id;
        x->node.cluster = bn->cluster;
        x->node.metadata = bn->metadata;
        x->node.locality = bn->locality;
    }
    x->node.user_agent_name = (char *)"mcplex";
    x->node.user_agent_version_type_case =
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
    x->node.user_agent_version = (char *)MCPLEX_VERSION;
    x->ext_mcp = ext;
    x->ext_mcp.name = (char *)"mcplex.clusters.mcp";
    x->ext_mcp.category = (char *)"envoy.clusters";
    x->ext_mcp_urls[0] = (char *)"type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend";
    x->ext_mcp.n_type_urls = 1;
    x->ext_mcp.type_urls = x->ext_mcp_urls;
    x->ext_multi = ext;
    x->ext_multi.name = (char *)"envoy.clusters.mcp_multicluster";
    x->ext_multi.category = (char *)"envoy.clusters";
    x->ext_multi_urls[0] =
        (char *)"type.googleapis.com/envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig";
    x->ext_multi.n_type_urls = 1;
    x->ext_multi.type_urls = x->ext_multi_urls;
    x->exts[0] = &x->ext_mcp;
    x->exts[1] = &x->ext_multi;
    x->node.n_extensions = 2;
    x->node.extensions = x->exts;
    x->features[0] = (char *)"envoy.lb.does_not_support_overprovisioning";
    x->node.n_client_features = 1;
    x->node.client_features = x->features;
}

mcplex_xds_t *
mcplex_xds_create(void)
{
    static const char *const urls[XDS_TYPE_COUNT] = {
        "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "type.googleapis.com/envoy.config.listener.v3.Listener",
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    };
    const ProtobufCMessageDescriptor *descs[XDS_TYPE_COUNT] = {
        &envoy__config__cluster__v3__cluster__descriptor,
        &envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
        &envoy__config__listener__v3__listener__descriptor,
        &envoy__config__route__v3__route_configuration__descriptor,
    };
    mcplex_xds_t *x = mcplex_calloc(1, sizeof(*x));

    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        x->types[t].type_url = urls[t];
        x->types[t].desc = descs[t];
        x->types[t].wildcard = t == XDS_CDS || t == XDS_LDS;
        x->types[t].view = &x->types[t].cache;
        x->types[t].version = mcplex_strdup("");
        x->types[t].nonce = mcplex_strdup("");
    }
    x->source.route_config = source_route_config;
    x->source.endpoints = source_endpoints;
    x->source.arg = x;
    x->initial_fetch_timeout_ms = DEFAULT_INITIAL_FETCH_TIMEOUT_MS;
    mcplex_config_set_xds_source(&x->source);
    return x;
}

/*
 * Reads |config_file| and checks its dynamic_resources into |x| (bootstrap, target, types, api
 * type). Returns 1 when the bootstrap has dynamic_resources and they are good, 0 when there are
 * none (static config), -1 with every problem in |errs|.
 */
static int
configure(mcplex_xds_t *x, const char *config_file, const mcplex_snapshot_t *initial, mcplex_errors_t *errs)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *dr;
    mcplex_errors_t scratch;
    cJSON *tree = NULL;
    size_t before = errs->count;
    int rc = -1;

    mcplex_errors_init(&scratch);
    if (config_file == NULL)
        goto static_only;
    tree = mcplex_yaml_parse_file(config_file, &scratch);
    if (tree == NULL ||
        mcplex_config_detect_format(tree, MCPLEX_CONFIG_FORMAT_ENVOY) != MCPLEX_CONFIG_FORMAT_ENVOY ||
        cJSON_GetObjectItemCaseSensitive(tree, "dynamic_resources") == NULL)
        goto static_only;
    x->bootstrap = (Envoy__Config__Bootstrap__V3__Bootstrap *)mcplex_pbmap_from_json(
        tree, &envoy__config__bootstrap__v3__bootstrap__descriptor, "",
        MCPLEX_PBMAP_PARTIAL | MCPLEX_PBMAP_DEFER_UNKNOWN_TYPES, &scratch);
    if (x->bootstrap == NULL || x->bootstrap->dynamic_resources == NULL) {
        mcplex_errors_move(errs, &scratch);
        goto fail;
    }
    dr = x->bootstrap->dynamic_resources;
    if (dr->ads_config == NULL) {
        mcplex_errors_add(errs, "dynamic_resources.ads_config", "is required (mcplex speaks ADS only)");
    } else {
        if (dr->ads_config->api_type == API_TYPE(DELTA_GRPC))
            x->delta = 1;
        else if (dr->ads_config->api_type != API_TYPE(GRPC))
            mcplex_errors_add(errs, "dynamic_resources.ads_config.api_type", "must be GRPC or DELTA_GRPC");
        x->target = resolve_target(x, dr->ads_config, initial, errs);
    }
    if (dr->lds_config != NULL) {
        check_config_source(dr->lds_config, "dynamic_resources.lds_config", &x->initial_fetch_timeout_ms,
                            errs);
        x->types[XDS_LDS].enabled = 1;
    }
    if (dr->cds_config != NULL) {
        check_config_source(dr->cds_config, "dynamic_resources.cds_config", &x->initial_fetch_timeout_ms,
                            errs);
        x->types[XDS_CDS].enabled = 1;
    }
    /* RDS and EDS: for dynamic and static listeners with rds and clusters of type EDS alike */
    x->types[XDS_RDS].enabled = x->types[XDS_EDS].enabled = 1;
    if (x->bootstrap->node == NULL || x->bootstrap->node->id == NULL || *x->bootstrap->node->id == '\0')
        mcplex_errors_add(errs, "node.id", "is required with dynamic_resources (the control plane's key)");
    rc = errs->count != before ? -1 : 1;
    goto done;
static_only:
    rc = 0;
    goto done;
fail:
    rc = -1;
done:
    cJSON_Delete(tree);
    mcplex_errors_dispose(&scratch);
    return rc;
}

int
mcplex_xds_validate(mcplex_xds_t *x, const char *config_file, const mcplex_snapshot_t *initial,
                    mcplex_errors_t *errs)
{
    return configure(x, config_file, initial, errs) < 0 ? -1 : 0;
}

int
mcplex_xds_start(mcplex_xds_t *x, struct event_base *base, mcplex_xds_publish_fn publish, void *publish_arg,
                 const char *config_file, const mcplex_snapshot_t *initial, mcplex_errors_t *errs)
{
    int rc = configure(x, config_file, initial, errs);

    if (rc <= 0) {
        if (rc == 0)
            mcplex_config_set_xds_source(NULL); /* static config only */
        return rc;
    }
    build_node(x);
    x->base = base;
    x->publish = publish;
    x->publish_arg = publish_arg;
    x->retry_timer = evtimer_new(base, retry_cb, x);
    x->fetch_timer = evtimer_new(base, fetch_timeout_cb, x);
    x->handoff = mcplex_xds_handoff_create(base, on_handoff, x);
    if (x->handoff == NULL) {
        mcplex_errors_add(errs, "dynamic_resources", "cannot create the xDS hand-off");
        return -1;
    }
    {
        mcplex_grpc_tls_t tls = {x->tls_root_certs, x->tls_private_key, x->tls_cert_chain, x->tls_name};
        x->stream = mcplex_grpc_stream_create(x->target, x->delta ? DELTA_METHOD : SOTW_METHOD,
                                              x->tls_on ? &tls : NULL, x->handoff);
    }
    if (x->stream == NULL) {
        mcplex_errors_add(errs, "dynamic_resources.ads_config", "cannot open a gRPC channel to '%s'",
                          x->target);
        return -1;
    }
    {
        unsigned char *warming = mcplex_calloc(1, 1);
        collect_wanted(x, warming); /* RDS/EDS names the static resources need */
        free(warming);
    }
    xds_arm_missing_timer(x);
    mcplex_log_info("xds", "ADS (%s) to %s as node '%s'", x->delta ? "delta" : "state of the world",
                    x->target, x->node.id);
    stream_start(x);
    return 0;
}

int
mcplex_xds_running(const mcplex_xds_t *x)
{
    return x != NULL && x->stream != NULL;
}

void
mcplex_xds_destroy(mcplex_xds_t *x)
{
    if (x == NULL)
        return;
    mcplex_config_set_xds_source(NULL);
    mcplex_grpc_stream_destroy(x->stream);
    mcplex_xds_handoff_destroy(x->handoff);
    if (x->retry_timer != NULL)
        event_free(x->retry_timer);
    if (x->fetch_timer != NULL)
        event_free(x->fetch_timer);
    for (int t = 0; t < XDS_TYPE_COUNT; t++) {
        xds_set_dispose(&x->types[t].cache);
        free(x->types[t].version);
        free(x->types[t].nonce);
        free_names(&x->types[t].names, &x->types[t].n_names);
        free_names(&x->want[t], &x->n_want[t]);
    }
    free_names(&x->expired, &x->n_expired);
    if (x->bootstrap != NULL)
        protobuf_c_message_free_unpacked(&x->bootstrap->base, NULL);
    free(x->target);
    free(x->tls_root_certs);
    free(x->tls_private_key);
    free(x->tls_cert_chain);
    free(x->tls_name);
    free(x);
}
