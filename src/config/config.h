/*
 * config.h - config loading, from file to a validated snapshot: the snapshot lifecycle beyond
 * model.h, the translators from protobuf-c messages (Envoy bootstrap, Listener,
 * RouteConfiguration, Cluster) to the internal model, the agentgateway-style local file
 * translator (into an Envoy bootstrap tree), and the file/text loaders that tie them together.
 *
 * Every function here validates in full and collects EVERY error into an mcplex_errors_t as
 * "path.to.field: message"; none returns a half-built result.
 *
 * Thread: config loading runs on the main thread. The translators are pure code (they read only
 * their arguments and the read-only descriptor registry), so xDS may call them anywhere, but
 * one mcplex_errors_t / mcplex_config_refs_t must be used by one thread at a time.
 */
#ifndef MCPLEX_CONFIG_CONFIG_H
#define MCPLEX_CONFIG_CONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "config/model.h"

/* The generated protobuf-c message types the translators read (C11 allows the repeated
 * typedefs; the full definitions come from <build>/gen/envoy/...pb-c.h). */
typedef struct Envoy__Config__Bootstrap__V3__Bootstrap Envoy__Config__Bootstrap__V3__Bootstrap;
typedef struct Envoy__Config__Cluster__V3__Cluster Envoy__Config__Cluster__V3__Cluster;
typedef struct Envoy__Config__Listener__V3__Listener Envoy__Config__Listener__V3__Listener;
typedef struct Envoy__Config__Route__V3__RouteConfiguration Envoy__Config__Route__V3__RouteConfiguration;

/* ---- snapshot lifecycle (snapshot.c) ------------------------------------------------------- */

/*
 * Frees a snapshot that was never published (its refcount is ignored): every listener, route,
 * cluster, backend, string and array it owns, then |s| itself. NULL is a no-op. Use it on the
 * error paths of code that builds snapshots; published snapshots are released with
 * mcplex_snapshot_unref. Thread: the one that owns |s|.
 */
void mcplex_snapshot_free(mcplex_snapshot_t *s);

/* Returns the next config generation number (1, 2, ...; process-wide, atomic). Thread: any. */
uint64_t mcplex_snapshot_next_generation(void);

/* Frees what |c| / |l| / |rc| own (not the struct itself) and zeroes it. NULL is a no-op. */
void mcplex_cluster_dispose(mcplex_cluster_t *c);
void mcplex_listener_cfg_dispose(mcplex_listener_cfg_t *l);
/* Frees a TLS context of the model (issue 4) and everything it owns. NULL is a no-op. */
void mcplex_tls_context_free(mcplex_tls_context_t *t);
void mcplex_route_config_dispose(mcplex_route_config_t *rc);
/* Frees |b| / |p| and everything they own. NULL is a no-op. */
void mcplex_mcp_backend_free(mcplex_mcp_backend_t *b);
void mcplex_cors_policy_free(mcplex_cors_policy_t *p);

/* ---- cross-resource references (translate.c) -------------------------------------------- */

typedef enum mcplex_config_ref_kind {
    MCPLEX_REF_CLUSTER = 0,      /* any cluster (route.cluster, weighted_clusters) */
    MCPLEX_REF_ENDPOINT_CLUSTER, /* a cluster with endpoints, not an MCP backend (MCP targets) */
} mcplex_config_ref_kind_t;

typedef struct mcplex_config_ref {
    char *path;    /* where the name was written, for the error */
    char *cluster; /* the referenced cluster name */
    mcplex_config_ref_kind_t kind;
} mcplex_config_ref_t;

/*
 * The cluster names a set of resources refers to, recorded by the translators and checked once
 * every resource is translated (so the order of clusters and listeners in a file never
 * matters, and xDS can decide when to check). Owned by the caller.
 */
typedef struct mcplex_config_refs {
    mcplex_config_ref_t *items;
    size_t count;
    size_t cap;
} mcplex_config_refs_t;

void mcplex_config_refs_init(mcplex_config_refs_t *refs);
void mcplex_config_refs_dispose(mcplex_config_refs_t *refs);
/* Records a reference (|path| and |cluster| are copied). */
void mcplex_config_refs_add(mcplex_config_refs_t *refs, const char *path, const char *cluster,
                            mcplex_config_ref_kind_t kind);
/*
 * Checks every reference against |clusters|: "<path>: unknown cluster 'x'", or for
 * MCPLEX_REF_ENDPOINT_CLUSTER "<path>: cluster 'x' is an MCP backend; an MCP target needs a
 * cluster with endpoints". Returns the number of errors added.
 */
size_t mcplex_config_refs_check(const mcplex_config_refs_t *refs, const mcplex_cluster_t *clusters,
                                size_t n_clusters, mcplex_errors_t *errs);

/* ---- translators: protobuf-c messages -> model (translate.c) ------------------------------ */

/*
 * Translates a whole bootstrap: node, admin address, static_resources (clusters first, then
 * listeners), then checks every cluster reference, cluster-name and listener-name uniqueness.
 * dynamic_resources and EDS clusters are rejected for now (xDS is a later issue).
 * Returns a new snapshot with refcount 1 and a fresh generation (the caller owns the reference;
 * unref it once published, or mcplex_snapshot_free it), or NULL when any error was added to
 * |errs| (then nothing is allocated).
 */
mcplex_snapshot_t *mcplex_config_translate_bootstrap(const Envoy__Config__Bootstrap__V3__Bootstrap *b,
                                                     mcplex_errors_t *errs);

/*
 * Translates one Cluster whose error paths start with |path| (e.g. "static_resources.clusters[0]";
 * "" or NULL for none). Returns a malloc'ed array of |*n_out| clusters: the cluster itself first,
 * then the implicit clusters of its MCP url targets ("<cluster>/<target>", STRICT_DNS, one
 * endpoint). The caller owns the array (mcplex_cluster_dispose each, then free). Records the
 * clusters it refers to in |refs| (may be NULL: not recorded). Returns NULL with errors added.
 */
mcplex_cluster_t *mcplex_config_translate_cluster(const Envoy__Config__Cluster__V3__Cluster *msg,
                                                  const char *path, mcplex_config_refs_t *refs, size_t *n_out,
                                                  mcplex_errors_t *errs);

/*
 * Translates one Listener (address, the single filter chain with the HTTP connection manager,
 * its HTTP filters and inline route_config) into |*out| (zeroed first). Returns 0, or -1 with
 * errors added and |*out| left zeroed. Cluster references go to |refs| (may be NULL).
 */
int mcplex_config_translate_listener(const Envoy__Config__Listener__V3__Listener *msg, const char *path,
                                     mcplex_config_refs_t *refs, mcplex_listener_cfg_t *out,
                                     mcplex_errors_t *errs);

/*
 * Translates one RouteConfiguration into |*out| (zeroed first). |mcp_router| is nonzero when
 * the HCM that uses it ends in envoy.filters.http.mcp_router (route clusters are then not
 * required to exist: the filter answers from its servers[]). Returns 0, or -1 with errors added
 * and |*out| left zeroed. Cluster references go to |refs| (may be NULL).
 */
int mcplex_config_translate_route_configuration(const Envoy__Config__Route__V3__RouteConfiguration *msg,
                                                const char *path, int mcp_router, mcplex_config_refs_t *refs,
                                                mcplex_route_config_t *out, mcplex_errors_t *errs);

/* ---- xDS source (issue 5; translate.c, used by xds/) --------------------------------------- */

typedef struct Envoy__Config__Endpoint__V3__ClusterLoadAssignment
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment;

/*
 * Where the translators find what a bootstrap with dynamic_resources leaves to xDS (Envoy's RDS
 * and EDS, research/xds-subset.md 1.5/1.6): an HCM's rds.route_config_name and an EDS cluster's
 * eds_cluster_config.service_name (else its name). The callbacks return the cached message or
 * NULL when it has not arrived; for NULL the translators count |n_missing| and go on (listener
 * warming: an empty route configuration; cluster warming: no endpoints) instead of failing.
 * Clusters named by RDS route configurations are not checked (Envoy's validate_clusters default
 * for RDS: an unknown cluster is a 503 at request time). Owned by xds/.
 */
typedef struct mcplex_config_xds_source {
    const Envoy__Config__Route__V3__RouteConfiguration *(*route_config)(void *arg, const char *name);
    const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *(*endpoints)(void *arg, const char *name);
    void *arg;
    size_t n_missing; /* names asked for that had no resource; reset it before translating */
} mcplex_config_xds_source_t;

/*
 * Installs |src| (NULL removes it). Without a source, rds, EDS clusters and dynamic_resources
 * are errors, as for any static bootstrap. With one, mcplex_config_translate_bootstrap accepts
 * dynamic_resources and, only for a bootstrap that has them, resolves rds and EDS through it;
 * mcplex_config_translate_listener/_cluster always use it. Not owned. Thread: main (the
 * translators read it; one thread translates at a time).
 */
void mcplex_config_set_xds_source(mcplex_config_xds_source_t *src);

/* A parsed http(s) URL (mcplex_config_parse_url). */
typedef struct mcplex_url {
    int tls;         /* https */
    char *host;      /* without brackets for IPv6 literals */
    uint16_t port;   /* explicit, or 80 / 443 */
    int port_given;  /* the URL named the port */
    char *path;      /* path and query, "/" when the URL has none */
    char *authority; /* host[:port] as written in the URL (brackets kept) */
} mcplex_url_t;

/*
 * Parses "http://host[:port][/path][?query]" or https. Returns 0 and fills |*out| (free with
 * mcplex_url_dispose), or -1 with a reason in |why| (|*out| left zeroed). Pure code.
 */
int mcplex_config_parse_url(const char *url, mcplex_url_t *out, char *why, size_t why_len);
void mcplex_url_dispose(mcplex_url_t *u);

/* ---- agentgateway-style local file (local_config.c) ---------------------------------------- */

/*
 * Translates an agentgateway-style local config tree (binds[].listeners[].routes[] with
 * backends[].mcp.targets[], the short top-level `mcp:` form, named top-level `backends:`,
 * `config.adminAddr`) into a new cJSON tree in the exact JSON shape of an Envoy Bootstrap, so it
 * then goes through the same mapper and translators as a bootstrap file. Unknown keys are
 * errors ("binds[0].listeners[0].foo: unknown field"), as are agentgateway features mcplex does
 * not implement ("...: not supported by mcplex"). Returns the tree (caller cJSON_Deletes it), or
 * NULL with every error added to |errs|. Pure code.
 *
 * Mapping (details in local_config.c): each bind -> a listener "bind/<port>" on 127.0.0.1
 * (agentgateway binds every interface; mcplex binds loopback unless binds[].address is given),
 * each of its listeners -> a virtual host (hostname or "*"), each route match -> an Envoy route,
 * each MCP backend -> a cluster of type mcplex McpBackend with name_separator "_".
 */
cJSON *mcplex_local_config_to_bootstrap(const cJSON *local, mcplex_errors_t *errs);

/* ---- loading (load.c) -------------------------------------------------------------------- */

typedef enum mcplex_config_format {
    MCPLEX_CONFIG_FORMAT_AUTO = 0, /* detect from the top-level keys */
    MCPLEX_CONFIG_FORMAT_ENVOY,    /* -c: an Envoy bootstrap */
    MCPLEX_CONFIG_FORMAT_LOCAL,    /* -f: an agentgateway-style local file */
} mcplex_config_format_t;

/*
 * Detects the format of a parsed file: top-level binds/listeners/backends/mcp -> LOCAL;
 * static_resources/dynamic_resources/admin/node -> ENVOY; neither or both -> |hint| (which may
 * be AUTO: undecided).
 */
mcplex_config_format_t mcplex_config_detect_format(const cJSON *tree, mcplex_config_format_t hint);

/*
 * Loads |len| bytes of |text| (YAML or JSON; |name| labels parse errors, may be NULL): parse,
 * detect the format (|hint| decides ambiguous files: MCPLEX_CONFIG_FORMAT_ENVOY for -c,
 * MCPLEX_CONFIG_FORMAT_LOCAL for -f), turn a local file into a bootstrap tree, map the
 * bootstrap onto the protobuf-c Bootstrap (unknown fields are errors), translate. Returns a new
 * snapshot (refcount 1, fresh generation; the caller owns it), or NULL whenever anything was
 * added to |errs|. Thread: main.
 */
mcplex_snapshot_t *mcplex_config_load_text(const char *text, size_t len, const char *name,
                                           mcplex_config_format_t hint, mcplex_errors_t *errs);
/* Same as mcplex_config_load_text for the file at |filename|. */
mcplex_snapshot_t *mcplex_config_load_file(const char *filename, mcplex_config_format_t hint,
                                           mcplex_errors_t *errs);

#endif
