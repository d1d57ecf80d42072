/*
 * workers.c - the worker group (see workers.h). The group is created and destroyed on the main
 * thread; each worker's loop runs on its own thread and is reached only through its inbox.
 */
#include "event/workers.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "event/children.h"
#include "event/inbox.h"
#include "mcp/session.h"
#include "http/h2_server.h"
#include "net/listener.h"

typedef struct run_on_all {
    void (*fn)(mcplex_worker_t *, void *);
    void *arg;
    mcplex_worker_t *w;
} run_on_all_t;

static void *
worker_thread(void *arg)
{
    mcplex_worker_t *w = arg;

    /* Exits of the stdio children this worker spawns are delivered on its own loop. */
    mcplex_children_set_thread_base(w->base);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

mcplex_worker_group_t *
mcplex_worker_group_create(size_t n, mcplex_snapshot_t *snapshot, const struct mcplex_seal_key *seal_key,
                           char *err, size_t err_len)
{
    mcplex_worker_group_t *g = mcplex_calloc(1, sizeof(*g));

    g->n = n;
    g->workers = mcplex_calloc(n, sizeof(*g->workers));
    g->bases = mcplex_calloc(n, sizeof(*g->bases));
    g->threads = mcplex_calloc(n, sizeof(*g->threads));
    atomic_init(&g->stopping, 0);
    for (size_t i = 0; i < n; i++) {
        g->bases[i] = event_base_new();
        if (g->bases[i] == NULL) {
            snprintf(err, err_len, "cannot create the event loop of worker %zu", i);
            goto fail;
        }
        g->workers[i] = mcplex_worker_create(g->bases[i], (int)i, snapshot, seal_key);
        if (g->workers[i] == NULL) {
            snprintf(err, err_len, "cannot create worker %zu", i);
            goto fail;
        }
        g->workers[i]->group = g;
        g->workers[i]->inbox = mcplex_inbox_create(g->bases[i]);
        if (g->workers[i]->inbox == NULL) {
            snprintf(err, err_len, "cannot create the inbox of worker %zu", i);
            goto fail;
        }
        /* Every worker binds the same addresses; SO_REUSEPORT spreads the connections. */
        if (mcplex_worker_start_listeners(g->workers[i], err, err_len) != 0)
            goto fail;
    }
    return g;
fail:
    mcplex_worker_group_destroy(g);
    return NULL;
}

int
mcplex_worker_group_start(mcplex_worker_group_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        if (pthread_create(&g->threads[i], NULL, worker_thread, g->workers[i]) != 0) {
            mcplex_log_error("worker", "cannot start the thread of worker %zu", i);
            return -1;
        }
        g->n_started = i + 1;
    }
    mcplex_log_info("worker", "%zu worker threads running", g->n);
    return 0;
}

static void
run_one(void *arg)
{
    run_on_all_t *r = arg;

    r->fn(r->w, r->arg);
    free(r);
}

void
mcplex_worker_group_run_on_all(mcplex_worker_group_t *g, void (*fn)(mcplex_worker_t *, void *), void *arg)
{
    for (size_t i = 0; i < g->n; i++) {
        run_on_all_t *r = mcplex_malloc(sizeof(*r));
        r->fn = fn;
        r->arg = arg;
        r->w = g->workers[i];
        mcplex_inbox_post(g->workers[i]->inbox, run_one, r);
    }
}

typedef struct run_sync {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t left;
    void (*fn)(mcplex_worker_t *, void *);
    void *arg;
} run_sync_t;

static void
run_sync_one(mcplex_worker_t *w, void *arg)
{
    run_sync_t *r = arg;

    r->fn(w, r->arg);
    pthread_mutex_lock(&r->lock);
    if (--r->left == 0)
        pthread_cond_signal(&r->done);
    pthread_mutex_unlock(&r->lock);
}

void
mcplex_worker_group_run_sync(mcplex_worker_group_t *g, void (*fn)(mcplex_worker_t *, void *), void *arg)
{
    run_sync_t r;

    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.done, NULL);
    r.left = g->n;
    r.fn = fn;
    r.arg = arg;
    mcplex_worker_group_run_on_all(g, run_sync_one, &r);
    pthread_mutex_lock(&r.lock);
    while (r.left > 0)
        pthread_cond_wait(&r.done, &r.lock);
    pthread_mutex_unlock(&r.lock);
    pthread_cond_destroy(&r.done);
    pthread_mutex_destroy(&r.lock);
}

typedef struct apply_ctx {
    mcplex_snapshot_t *next;
    mcplex_errors_t *errs; /* one list per worker: they run at the same time */
    int *rc;
} apply_ctx_t;

static void
apply_one(mcplex_worker_t *w, void *arg)
{
    apply_ctx_t *a = arg;

    a->rc[w->index] = mcplex_worker_apply_snapshot(w, a->next, &a->errs[w->index]);
}

int
mcplex_worker_group_apply_snapshot(mcplex_worker_group_t *g, mcplex_snapshot_t *next, mcplex_errors_t *errs)
{
    apply_ctx_t a;
    int rc = 0;

    a.next = next;
    a.errs = mcplex_calloc(g->n, sizeof(*a.errs));
    a.rc = mcplex_calloc(g->n, sizeof(*a.rc));
    for (size_t i = 0; i < g->n; i++)
        mcplex_errors_init(&a.errs[i]);
    mcplex_worker_group_run_sync(g, apply_one, &a);
    for (size_t i = 0; i < g->n; i++) {
        if (a.rc[i] != 0)
            rc = -1;
        mcplex_errors_move(errs, &a.errs[i]);
    }
    free(a.errs);
    free(a.rc);
    return rc;
}

/* On a worker's thread: stop accepting and end every session (children stopped on this loop). */
static void
drain_one(mcplex_worker_t *w, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i] != NULL && w->listeners[i]->tcp != NULL) {
            mcplex_tcp_listener_destroy(w->listeners[i]->tcp);
            w->listeners[i]->tcp = NULL;
        }
    }
    mcplex_session_table_destroy(w->sessions);
    w->sessions = mcplex_session_table_create();
    mcplex_h2_drain_all(); /* this worker's HTTP/2 connections (their registry is per thread) */
}

void
mcplex_worker_group_drain(mcplex_worker_group_t *g)
{
    atomic_store(&g->stopping, 1);
    mcplex_worker_group_run_on_all(g, drain_one, NULL);
}

static void
break_loop(mcplex_worker_t *w, void *arg)
{
    (void)arg;
    event_base_loopbreak(w->base);
}

void
mcplex_worker_group_destroy(mcplex_worker_group_t *g)
{
    if (g == NULL)
        return;
    atomic_store(&g->stopping, 1);
    if (g->n_started > 0) {
        mcplex_worker_group_run_on_all(g, break_loop, NULL);
        for (size_t i = 0; i < g->n_started; i++)
            pthread_join(g->threads[i], NULL);
    }
    /* Every loop has stopped: the main thread may touch the workers now. */
    for (size_t i = 0; i < g->n; i++) {
        mcplex_worker_t *w = g->workers[i];
        if (w == NULL)
            continue;
        if (w->inbox != NULL)
            mcplex_inbox_destroy(w->inbox);
        w->inbox = NULL;
        mcplex_worker_destroy(w);
    }
    for (size_t i = 0; i < g->n; i++)
        if (g->bases[i] != NULL)
            event_base_free(g->bases[i]);
    free(g->workers);
    free(g->bases);
    free(g->threads);
    free(g);
}
