/*
 * workers.h - the worker group (issue 6): N threads, each running one worker (its own
 * event_base, SO_REUSEPORT listeners, sessions, upstream pools, inbox). The main thread keeps
 * config, signals, child supervision and admin, and talks to workers only through their
 * inboxes. Thread: main, except where said.
 */
#ifndef MCPLEX_EVENT_WORKERS_H
#define MCPLEX_EVENT_WORKERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/errors.h"
#include "config/model.h"
#include "event/worker.h"

struct mcplex_seal_key;

typedef struct mcplex_worker_group {
    size_t n;
    mcplex_worker_t **workers;   /* workers[i]->index == i */
    struct event_base **bases;
    pthread_t *threads;
    size_t n_started;
    _Atomic int stopping;        /* set once shutdown began: hand-offs are refused */
} mcplex_worker_group_t;

/*
 * Creates |n| (>= 1) workers for |snapshot|, each with its own event_base and inbox, and opens
 * every worker's listeners (SO_REUSEPORT: the kernel spreads connections over them). The
 * threads are not started yet. Returns NULL with a message in |err| if a listener cannot be
 * opened (nothing stays open). Needs evthread_use_pthreads() to have been called.
 */
mcplex_worker_group_t *mcplex_worker_group_create(size_t n, mcplex_snapshot_t *snapshot,
                                                  const struct mcplex_seal_key *seal_key, char *err,
                                                  size_t err_len);
/* Starts one thread per worker, each running its loop until mcplex_worker_group_stop. */
int mcplex_worker_group_start(mcplex_worker_group_t *g);

/*
 * Runs |fn|(worker, |arg|) on every worker's thread, through its inbox (config swaps, admin
 * reads). Returns at once; |arg| must stay valid until every call ran.
 */
void mcplex_worker_group_run_on_all(mcplex_worker_group_t *g, void (*fn)(mcplex_worker_t *, void *), void *arg);

/*
 * Runs |fn|(worker, |arg|) on every worker's thread and returns when all have run (the main
 * thread waits on a condition variable). For config swaps and admin reads that need an answer.
 * Thread: main, never a worker (it would wait on itself).
 */
void mcplex_worker_group_run_sync(mcplex_worker_group_t *g, void (*fn)(mcplex_worker_t *, void *), void *arg);

/*
 * Applies |next| on every worker (mcplex_worker_apply_snapshot on each worker's thread, waited
 * for). Returns 0 if every worker took it, or -1 with every worker's errors in |errs|.
 * Thread: main.
 */
int mcplex_worker_group_apply_snapshot(mcplex_worker_group_t *g, mcplex_snapshot_t *next, mcplex_errors_t *errs);

/*
 * Begins shutdown: every worker closes its listeners and ends its sessions (stdio children get
 * stdin EOF, then SIGTERM, then SIGKILL on that worker's loop). Returns at once.
 */
void mcplex_worker_group_drain(mcplex_worker_group_t *g);
/* Ends every worker loop, joins the threads and frees the workers, their loops and the group. */
void mcplex_worker_group_destroy(mcplex_worker_group_t *g);

#endif
