/*
 * ads_internal.h - state shared by the ADS client's files (ads.c: bootstrap, stream lifecycle,
 * resource caches, snapshot assembly and publishing; sotw.c: state-of-the-world requests and
 * responses; delta.c: incremental requests and responses). Not a public API.
 *
 * Thread: main only.
 */
#ifndef MCPLEX_XDS_ADS_INTERNAL_H
#define MCPLEX_XDS_ADS_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "config/config.h"
#include "xds/grpc_stream.h"
#include "xds/handoff.h"
#include "xds/xds.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"

/* The ADS resource types, in the order their first requests go out (CDS, EDS, LDS, RDS:
 * Envoy's start-up order, research/xds-subset.md 1.6). */
typedef enum xds_type_id {
    XDS_CDS = 0,
    XDS_EDS,
    XDS_LDS,
    XDS_RDS,
    XDS_TYPE_COUNT
} xds_type_id_t;

/* One cached resource: immutable once made, shared between the committed cache and candidates. */
typedef struct xds_res {
    char *name;
    char *version;         /* delta Resource.version, or the SotW response version */
    ProtobufCMessage *msg; /* unpacked with the type's descriptor */
    int refs;
} xds_res_t;

typedef struct xds_res_set {
    xds_res_t **items;
    size_t n;
    size_t cap;
} xds_res_set_t;

typedef struct xds_type {
    const char *type_url;
    const ProtobufCMessageDescriptor *desc;
    int wildcard;          /* LDS, CDS: always wildcard */
    int enabled;           /* subscribed at all (lds_config/cds_config, and EDS/RDS with them) */
    xds_res_set_t cache;   /* the accepted resources */
    xds_res_set_t *view;   /* what the translators see: &cache, or a candidate being checked */
    char *version;         /* SotW: last accepted version_info ("" at first) */
    char *nonce;           /* latest nonce received for this type on this stream */
    char **names;          /* RDS/EDS: the subscription as last sent on this stream */
    size_t n_names;
    int sent;              /* a request of this type went out on this stream */
    int sent_nonempty;     /* SotW: a non-empty name list went out on this stream */
    int received;          /* a response arrived once (initial fetch done) */
} xds_type_t;

struct mcplex_xds {
    mcplex_config_xds_source_t source;
    struct event_base *base;
    mcplex_xds_publish_fn publish; /* to the worker(s) */
    void *publish_arg;
    Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap; /* as loaded; static resources, node */
    int delta;                 /* DELTA_GRPC */
    char *target;              /* gRPC target of the control plane */
    /* TLS to the control plane (PEM, owned; tls_on = 0: plaintext) */
    int tls_on;
    char *tls_root_certs, *tls_private_key, *tls_cert_chain, *tls_name;
    uint32_t initial_fetch_timeout_ms;
    mcplex_xds_handoff_t *handoff;
    mcplex_grpc_stream_t *stream;
    uint64_t call_id;          /* the live call, 0 = none */
    int node_sent;             /* the node went out on this call */
    struct event *retry_timer;
    struct event *fetch_timer; /* initial_fetch_timeout */
    uint32_t backoff_ms;
    unsigned failures;
    xds_type_t types[XDS_TYPE_COUNT];
    /* does-not-exist: RDS/EDS names still missing when the timer (initial_fetch_timeout, re-armed
     * on each subscription change) fired; a listener waiting only on such names stops warming
     * and serves with an empty route configuration (Envoy's behaviour after the timeout) */
    char **expired;
    size_t n_expired;
    size_t n_warm_missing;     /* per listener in the collecting pass: missing, not expired */
    /* names the translators asked for (collecting pass) */
    int collecting;
    char **want[XDS_TYPE_COUNT]; /* only RDS and EDS used */
    size_t n_want[XDS_TYPE_COUNT];
    /* the node we send (built from the bootstrap's node) */
    Envoy__Config__Core__V3__Node node;
    Envoy__Config__Core__V3__Extension ext_mcp;
    Envoy__Config__Core__V3__Extension ext_multi;
    Envoy__Config__Core__V3__Extension *exts[2];
    char *ext_mcp_urls[1];
    char *ext_multi_urls[1];
    char *features[1];
};

/* ---- ads.c --------------------------------------------------------------------------------- */

/* Resource helpers. */
xds_res_t *xds_res_new(const char *name, const char *version, ProtobufCMessage *msg);
void xds_res_unref(xds_res_t *r);
void xds_set_add(xds_res_set_t *s, xds_res_t *r);            /* takes one reference */
xds_res_t *xds_set_find(const xds_res_set_t *s, const char *name);
size_t xds_set_index(const xds_res_set_t *s, const char *name); /* or (size_t)-1 */
void xds_set_copy(xds_res_set_t *to, const xds_res_set_t *from); /* new refs */
void xds_set_dispose(xds_res_set_t *s);

/*
 * Checks one decoded resource of |type| on its own with the translators (Listener, Cluster,
 * RouteConfiguration; ClusterLoadAssignment needs a cluster_name) and adds its errors, each
 * prefixed with "<type> '<name>': ". Returns the number of errors added.
 */
size_t xds_check_resource(mcplex_xds_t *x, xds_type_id_t type, const char *name, const ProtobufCMessage *msg,
                          mcplex_errors_t *errs);

/*
 * Makes |candidate| the view of |type|, recomputes the RDS/EDS names wanted, assembles the whole
 * snapshot and publishes it. On success the candidate becomes the cache (old entries released),
 * then the subscription of RDS/EDS is updated (requests sent when it changed); returns 0. On
 * failure |candidate| is released, the cache and live config stay as they were, the errors are
 * in |errs|; returns -1.
 */
int xds_commit(mcplex_xds_t *x, xds_type_id_t type, xds_res_set_t *candidate, mcplex_errors_t *errs);

/* Finds the type of |type_url|, or XDS_TYPE_COUNT. */
xds_type_id_t xds_type_of(const mcplex_xds_t *x, const char *type_url);

/* Packs and sends |msg| on the live call (no-op without one). */
void xds_send(mcplex_xds_t *x, const ProtobufCMessage *msg);

/* (Re)arms the does-not-exist timer (initial_fetch_timeout; none if 0). */
void xds_arm_missing_timer(mcplex_xds_t *x);

/* Whether the subscription names of |type| differ from what was last sent. */
int xds_names_changed(const mcplex_xds_t *x, xds_type_id_t type);
/* Records the wanted names of |type| as sent. */
void xds_names_mark_sent(mcplex_xds_t *x, xds_type_id_t type);

/* ---- sotw.c / delta.c ---------------------------------------------------------------------- */

/* The first requests of every enabled type on a new call. */
void xds_sotw_start(mcplex_xds_t *x);
void xds_delta_start(mcplex_xds_t *x);
/* One response from the server (serialized). */
void xds_sotw_on_message(mcplex_xds_t *x, const uint8_t *data, size_t len);
void xds_delta_on_message(mcplex_xds_t *x, const uint8_t *data, size_t len);
/* The RDS/EDS subscription changed: send the update for |type|. */
void xds_sotw_resubscribe(mcplex_xds_t *x, xds_type_id_t type);
void xds_delta_resubscribe(mcplex_xds_t *x, xds_type_id_t type);

#endif
