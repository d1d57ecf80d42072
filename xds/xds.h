/*
 * xds.h - mcplex's xDS client: ADS (aggregated discovery over one gRPC stream, state of the world
 * or delta) for Listener, RouteConfiguration, Cluster and ClusterLoadAssignment, driven by the
 * bootstrap's dynamic_resources (Envoy's envoy.config.bootstrap.v3.Bootstrap.DynamicResources;
 * protocol rules in research/xds-subset.md 1.x). Every accepted change assembles a complete
 * snapshot (bootstrap static resources + the dynamic ones, rds and EDS resolved through the
 * config translators' xDS source), validates it and publishes it with
 * mcplex_worker_apply_snapshot; a rejected update is a NACK and changes nothing.
 *
 * Threads: the main thread (the loop that owns the worker); the gRPC completion queue runs on
 * its own thread inside xds/grpc_stream.c and reaches us only through xds/handoff.c.
 */
#ifndef MCPLEX_XDS_XDS_H
#define MCPLEX_XDS_XDS_H

#include "common/errors.h"
#include "config/model.h"

struct event_base;
typedef struct mcplex_worker mcplex_worker_t;

typedef struct mcplex_xds mcplex_xds_t;

/*
 * Creates the xDS client and installs its config source (mcplex_config_set_xds_source), so a
 * bootstrap with dynamic_resources loads (rds listeners and EDS clusters warm, empty, until
 * xDS delivers). Call it before loading the config. Never fails (aborts on OOM).
 */
mcplex_xds_t *mcplex_xds_create(void);

/*
 * Publishes a complete snapshot built from the bootstrap and the control plane's resources:
 * applies |next| (a reference the callee takes for each worker it installs it on; the caller
 * keeps its own) on every worker. Returns 0, or -1 with the reasons in |errs| (the update is then
 * NACKed and the previous config keeps serving). Called on the main thread.
 */
typedef int (*mcplex_xds_publish_fn)(void *arg, mcplex_snapshot_t *next, mcplex_errors_t *errs);

/*
 * Reads |config_file| again (NULL: the embedded default; then nothing to do) and, if it is an
 * Envoy bootstrap with dynamic_resources, checks them (ads_config with api_type GRPC or
 * DELTA_GRPC and a grpc_service: envoy_grpc.cluster_name resolved to the first endpoint of that
 * static cluster of |initial|, or google_grpc.target_uri; lds_config/cds_config must be
 * `ads: {}`), then opens the ADS stream to the control plane and hands every accepted update to
 * |publish|(|publish_arg|, ...) on |base| (one worker, or every worker of a group). Without
 * dynamic_resources the source is uninstalled and 0 is returned (static config only).
 * Returns 0, or -1 with every problem in |errs| (the stream is then not started).
 * Thread: main.
 */
int mcplex_xds_start(mcplex_xds_t *x, struct event_base *base, mcplex_xds_publish_fn publish, void *publish_arg,
                     const char *config_file, const mcplex_snapshot_t *initial, mcplex_errors_t *errs);

/*
 * The checks of mcplex_xds_start without starting anything (for --validate): dynamic_resources
 * of |config_file| (if any) against |initial|. Returns 0, or -1 with every problem in |errs|.
 * Thread: main.
 */
int mcplex_xds_validate(mcplex_xds_t *x, const char *config_file, const mcplex_snapshot_t *initial,
                        mcplex_errors_t *errs);

/* Whether |x| runs an ADS stream (mcplex_xds_start found dynamic_resources). NULL: 0. Thread: main. */
int mcplex_xds_running(const mcplex_xds_t *x);

/* Stops the stream (cancel, drain, join: grpc_stream.h), frees caches and |x|, uninstalls the
 * source. NULL is a no-op. Thread: main. */
void mcplex_xds_destroy(mcplex_xds_t *x);

#endif
