/*
 * worker.h - a worker: one thread with its own libevent event_base, owning the downstream
 * connections it accepts, the MCP sessions created on them, and the upstream HTTP connection
 * pools those sessions use. Today mcplex runs one worker on the main thread; the N-worker
 * SO_REUSEPORT model (issue 6) creates one of these per thread, and everything a request touches
 * is reached through its worker, never through globals. Thread: the worker's own.
 */
#ifndef MCPLEX_EVENT_WORKER_H
#define MCPLEX_EVENT_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/strmap.h"
#include "config/model.h"

struct event_base;
struct evdns_base;
struct mcplex_tcp_listener;
struct mcplex_http_pool;
struct mcplex_session_table;
struct mcplex_seal_key;

typedef struct mcplex_worker mcplex_worker_t;

/* What an accepted connection needs to find its config: the worker and the listener name. */
typedef struct mcplex_listener_ctx {
    mcplex_worker_t *worker;
    char *listener_name;
    struct mcplex_tcp_listener *tcp;
} mcplex_listener_ctx_t;

struct mcplex_worker {
    int index;
    struct event_base *base;
    struct evdns_base *dns;
    mcplex_snapshot_t *snapshot;          /* the current config; one reference held */
    mcplex_strmap_t http_pools;           /* cluster name -> struct mcplex_http_pool * */
    struct mcplex_session_table *sessions;
    const struct mcplex_seal_key *seal_key; /* seals Mcp-Session-Id values; shared, immutable */
    mcplex_listener_ctx_t *listeners;
    size_t n_listeners;
    struct event *reaper;               /* ends idle sessions */
    uint32_t session_idle_timeout_s;    /* default 1800 (agentgateway's sessionTtl) */
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
 * Returns the HTTP/1.1 pool of cluster |name| in |snapshot| (created on first use from the
 * cluster's endpoints), or NULL if the cluster does not exist or has no endpoints.
 */
struct mcplex_http_pool *mcplex_worker_http_pool(mcplex_worker_t *w, const mcplex_snapshot_t *snapshot,
                                                 const char *name);

#endif
