/*
 * worker.h - a worker: one thread with its own libevent event_base, owning the downstream
 * connections it accepts, the MCP sessions created on them, and the upstream HTTP connection
 * pools those sessions use. `--concurrency 1` runs one worker on the main thread; otherwise the
 * worker group (workers.h, issue 6) creates one per thread on SO_REUSEPORT sockets. Everything a
 * request touches is reached through its worker, never through globals. Thread: the worker's own.
 */
#ifndef MCPLEX_EVENT_WORKER_H
#define MCPLEX_EVENT_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "common/strmap.h"
#include "config/model.h"

struct event_base;
struct evdns_base;
struct mcplex_tcp_listener;
struct mcplex_http_pool;
struct mcplex_session_table;
struct mcplex_seal_key;

typedef struct mcplex_worker mcplex_worker_t;

/*
 * What an accepted connection needs to find its config: the worker and the listener name (the
 * HCM looks the listener up by name in the worker's current snapshot on every request). Each is
 * heap-allocated and keeps its address for the worker's life: connections hold the pointer, so a
 * listener removed or replaced by a config swap is only retired (socket closed, |tcp| NULL) and
 * freed with the worker.
 */
typedef struct mcplex_listener_ctx {
    mcplex_worker_t *worker;
    char *listener_name;
    struct mcplex_tcp_listener *tcp;   /* NULL once retired */
    char *address;                     /* as configured, to tell a changed listener */
    uint16_t port;                     /* as configured (0 = ephemeral) */
    struct mcplex_listener_ctx *next_retired;
    /* --- TLS and filter chains (issue 4; event/listener_chains.h) --- */
    size_t filter_chain;                     /* the chain whose HCM serves (0 = the listener's hcm) */
    struct mcplex_listener_chains *chains;   /* owned; NULL until a TLS or multi-chain accept */
    /* --- end TLS --- */
} mcplex_listener_ctx_t;

/* A worker's HTTP pool and the snapshots it was handed out for (see mcplex_worker_http_pool). */
typedef struct mcplex_worker_pool mcplex_worker_pool_t;

struct mcplex_worker {
    int index;
    struct event_base *base;
    struct evdns_base *dns;
    mcplex_snapshot_t *snapshot;          /* the current config; one reference held */
    /* pool key (mcplex_config_pool_key: cluster name + endpoint set) -> mcplex_worker_pool_t * */
    mcplex_strmap_t http_pools;
    /* Every snapshot some pool was handed out for, one reference each (see
     * mcplex_worker_http_pool); dropped once nothing else holds them. */
    mcplex_snapshot_t **pool_snaps;
    size_t n_pool_snaps;
    size_t cap_pool_snaps;
    struct mcplex_session_table *sessions;
    const struct mcplex_seal_key *seal_key; /* seals Mcp-Session-Id values; shared, immutable */
    mcplex_listener_ctx_t **listeners;  /* open listeners, in snapshot order */
    size_t n_listeners;
    mcplex_listener_ctx_t *retired;     /* closed by config swaps; freed with the worker */
    uint64_t swaps;                     /* snapshots applied by mcplex_worker_apply_snapshot */
    struct event *reaper;               /* ends idle sessions */
    uint32_t session_idle_timeout_s;    /* default 1800 (agentgateway's sessionTtl) */
    /* Worker threads (issue 6): the inbox other threads post to, and the group this worker is
     * part of (NULL when mcplex runs a single worker on the main thread). */
    struct mcplex_inbox *inbox;
    struct mcplex_worker_group *group;
};

/*
 * Creates a worker on |base| (not owned) with a reference to |snapshot|, an evdns resolver and
 * an empty session table. Returns NULL on failure.
 */
mcplex_worker_t *mcplex_worker_create(struct event_base *base, int index, mcplex_snapshot_t *snapshot,
                                      const struct mcplex_seal_key *seal_key);
/*
 * Opens every listener of the worker's snapshot (SO_REUSEPORT) with the HCM as the request
 * handler. Returns 0, or -1 with a message in |err| (then nothing stays open).
 */
int mcplex_worker_start_listeners(mcplex_worker_t *w, char *err, size_t err_len);
/* Closes listeners, ends every session (children stopped), frees pools and the worker. */
void mcplex_worker_destroy(mcplex_worker_t *w);

/*
 * Returns the HTTP/1.1 pool of cluster |name| as |snapshot| defines it (created on first use from
 * the cluster's endpoints), or NULL if the cluster does not exist or has no endpoints.
 *
 * Pools are keyed by cluster name AND endpoint set (mcplex_config_pool_key), so after a config
 * swap that changes a cluster's endpoints, sessions started before it keep the pool of their own
 * snapshot while new sessions get a pool of the new endpoints. The worker remembers (with one
 * reference each) the snapshots every pool was handed out for; a pool is destroyed once none of
 * those snapshots is referenced by anything but the worker's pool bookkeeping (no session, no
 * request in flight, not the current config): see mcplex_worker_collect_pools. |snapshot| must
 * be one the caller holds a reference to (a session's, or a request's). Thread: the worker.
 */
struct mcplex_http_pool *mcplex_worker_http_pool(mcplex_worker_t *w, const mcplex_snapshot_t *snapshot,
                                                 const char *name);

/*
 * Destroys the HTTP pools no holder of a snapshot can reach any more (see
 * mcplex_worker_http_pool). Runs after every swap and on the worker's idle-session timer; safe
 * to call at any time outside the pools' own callbacks. Returns how many pools were destroyed.
 * Thread: the worker.
 */
size_t mcplex_worker_collect_pools(mcplex_worker_t *w);

/*
 * Makes |next| the worker's current config: THE live-swap path of mcplex, used by hot reload
 * (SIGHUP, inotify) and by xDS alike (the architecture's "snapshot": requests in flight keep the
 * snapshot they hold, as in Envoy's listener/cluster managers, where in-flight streams finish on
 * the config they started with).
 *
 * |next| must be a validated snapshot (mcplex_config_load_* or the translators); the worker takes
 * its own reference, the caller keeps (and later drops) its own. In order:
 *  1. Listeners (Envoy LDS semantics, matched by name): a new name opens a socket; a listener
 *     whose address or port changed gets a new socket; if ANY of these cannot bind, every socket
 *     just opened is closed, an error per listener is added to |errs|, and NOTHING changes
 *     (return -1). Unchanged listeners keep their socket (their routes and filters come from the
 *     snapshot on each request, so route changes apply to the next request at once).
 *  2. The snapshot is swapped; removed and replaced listeners stop accepting (their existing
 *     connections finish; a later request on a connection of a removed listener gets 503).
 *  3. Sessions keep the snapshot they started with. A session whose backend (cluster name, or
 *     "<listener>/mcp_router") is gone from |next| or is no longer equal by value
 *     (mcplex_config_backend_equal: targets, commands, endpoints, modes, curation) is ended with
 *     mcplex_session_close(s, "backend removed/changed by config update"), which answers its
 *     pending requests with a JSON-RPC error; the others keep running.
 *  4. Pools nobody can reach any more are collected (mcplex_worker_collect_pools).
 * Returns 0 (logged with the generation and what changed), or -1 with errors in |errs|.
 * Thread: the worker (today the main thread, which also loads configs and runs xDS hand-off).
 */
int mcplex_worker_apply_snapshot(mcplex_worker_t *w, mcplex_snapshot_t *next, mcplex_errors_t *errs);

#endif
