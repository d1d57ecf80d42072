/*
 * children.c - child-process supervision (see children.h).
 *
 * Owns the process-wide SIGCHLD handling: one libevent signal event on the main loop. On each
 * signal every exited child is reaped with waitpid(-1, WNOHANG) and its exit is handed to the
 * watch registered for that pid. An exit whose pid has no watch yet is remembered for a while
 * (EXIT_MEMORY_SEC, at most MAX_REMEMBERED entries), so a watch registered just after the
 * child died still fires; such late deliveries run from a zero-timeout event, never from inside
 * mcplex_children_watch(). The memory is short because a pid may be reused once reaped; an
 * unwatched (but still running) child is marked so that its exit is not remembered at all.
 * Also makes the process ignore SIGPIPE (writes to dead peers fail with EPIPE instead of killing
 * mcplex).
 *
 * Watches live in a plain list: mcplex has one child per stdio target, a few dozen at most.
 * Threads: the SIGCHLD handler runs on the loop that called mcplex_children_init (the main loop;
 * libevent delivers a signal to one event_base). Worker threads spawn children too: a mutex
 * guards the list, and each exit is delivered on the loop of the thread that registered the
 * watch (mcplex_children_set_thread_base), through event_base_once. Callbacks always run with
 * the lock released.
 */
#include "event/children.h"

#include "common/log.h"
#include "common/mem.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/event.h>

#define EXIT_MEMORY_SEC 5
#define MAX_REMEMBERED 256

typedef enum watch_state {
    WATCH_ACTIVE = 0, /* running child with a callback */
    WATCH_IGNORED,    /* running child that was unwatched: reap it silently */
    WATCH_REMEMBERED, /* reaped before anyone watched it; |status| valid */
    WATCH_DUE,        /* reaped and watched; delivery pending on the zero-timeout event */
} watch_state_t;

typedef struct child_watch {
    struct child_watch *next;
    pid_t pid;
    watch_state_t state;
    mcplex_child_exit_fn cb;
    void *arg;
    struct event_base *owner; /* the loop the exit is delivered on (NULL: the supervision loop) */
    int status;
    time_t reaped_at; /* monotonic seconds, for remembered exits */
} child_watch_t;

/* An exit taken off the list, to deliver once the lock is released. */
typedef struct child_exit {
    struct child_exit *next;
    mcplex_child_exit_fn cb;
    void *arg;
    struct event_base *owner;
    pid_t pid;
    int status;
} child_exit_t;

static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct event_base *thread_base;

static struct {
    struct event_base *base;
    struct event *sigchld;
    struct event *deliver; /* zero-timeout event for exits that were already reaped */
    child_watch_t *watches;
    size_t n_remembered;
} children;

static time_t
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static child_watch_t **
find_link(pid_t pid)
{
    child_watch_t **link;

    for (link = &children.watches; *link != NULL; link = &(*link)->next) {
        if ((*link)->pid == pid)
            return link;
    }
    return NULL;
}

/* Drops remembered (unwatched) exits that are too old, and the oldest ones beyond the cap. */
static void
prune_remembered(void)
{
    time_t now = mono_now();
    child_watch_t **link = &children.watches;

    while (*link != NULL) {
        child_watch_t *w = *link;
        if (w->state == WATCH_REMEMBERED
            && (now - w->reaped_at > EXIT_MEMORY_SEC || children.n_remembered > MAX_REMEMBERED)) {
            *link = w->next;
            children.n_remembered--;
            free(w);
            continue;
        }
        link = &w->next;
    }
}

static void
remember_exit(pid_t pid, int status)
{
    child_watch_t *w = mcplex_calloc(1, sizeof(*w));

    w->pid = pid;
    w->state = WATCH_REMEMBERED;
    w->status = status;
    w->reaped_at = mono_now();
    /* Appended at the tail so that pruning beyond the cap drops the oldest first. */
    child_watch_t **link = &children.watches;
    while (*link != NULL)
        link = &(*link)->next;
    *link = w;
    children.n_remembered++;
}

/* Unlinks the watch at |link| and queues its exit on |out| (delivered after the unlock). */
static void
fire(child_watch_t **link, int status, child_exit_t **out)
{
    child_watch_t *w = *link;
    child_exit_t *e = mcplex_calloc(1, sizeof(*e));

    e->cb = w->cb;
    e->arg = w->arg;
    e->owner = w->owner;
    e->pid = w->pid;
    e->status = status;
    e->next = *out;
    *out = e;
    *link = w->next;
    free(w);
}

static void
deliver_on_owner(evutil_socket_t fd, short what, void *arg)
{
    child_exit_t *e = arg;

    (void)fd;
    (void)what;
    e->cb(e->arg, e->pid, e->status);
    free(e);
}

/* Delivers queued exits: on this thread when it owns them, else on the owner's loop. */
static void
deliver_exits(child_exit_t *list, struct event_base *here)
{
    static const struct timeval zero = {0, 0};

    while (list != NULL) {
        child_exit_t *e = list;
        list = e->next;
        if (e->owner == NULL || e->owner == here ||
            event_base_once(e->owner, -1, EV_TIMEOUT, deliver_on_owner, e, &zero) != 0)
            deliver_on_owner(-1, EV_TIMEOUT, e);
    }
}

void
mcplex_children_set_thread_base(struct event_base *base)
{
    thread_base = base;
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct event_base *here = children.base;
    child_exit_t *exits = NULL;
    pid_t pid;
    int status;

    pthread_mutex_lock(&children_lock);
    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0)
            break;
        if (pid == -1) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left to reap */
        }
        child_watch_t **link = find_link(pid);
        if (link != NULL && (*link)->state == WATCH_ACTIVE) {
            fire(link, status, &exits);
        } else if (link != NULL && (*link)->state == WATCH_IGNORED) {
            child_watch_t *w = *link;
            *link = w->next;
            free(w);
        } else if (link == NULL) {
            mcplex_log_debug("children", "pid %d exited (status 0x%x) before it was watched", (int)pid,
                             status);
            remember_exit(pid, status);
        }
    }
    prune_remembered();
    pthread_mutex_unlock(&children_lock);
    deliver_exits(exits, here);
}

/* Delivers exits that were reaped before their watch was registered. */
static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct event_base *here = children.base;
    child_exit_t *exits = NULL;
    child_watch_t **link;

    pthread_mutex_lock(&children_lock);
    link = &children.watches;
    while (*link != NULL) {
        child_watch_t *w = *link;
        if (w->state == WATCH_DUE) {
            fire(link, w->status, &exits);
            continue;
        }
        link = &w->next;
    }
    pthread_mutex_unlock(&children_lock);
    deliver_exits(exits, here);
}

int
mcplex_children_init(struct event_base *base)
{
    /* One supervision loop per process: later calls (worker threads' transports) find it. */
    if (children.base != NULL)
        return 0;
    signal(SIGPIPE, SIG_IGN);
    children.sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
    children.deliver = evtimer_new(base, on_deliver, NULL);
    if (children.sigchld == NULL || children.deliver == NULL || event_add(children.sigchld, NULL) != 0)
        goto fail;
    children.base = base;
    /* Reap whatever exited before the handler existed. */
    on_sigchld(SIGCHLD, EV_SIGNAL, NULL);
    return 0;

fail:
    mcplex_log_error("children", "cannot install the SIGCHLD handler");
    if (children.deliver != NULL)
        event_free(children.deliver);
    if (children.sigchld != NULL)
        event_free(children.sigchld);
    children.deliver = NULL;
    children.sigchld = NULL;
    return -1;
}

void
mcplex_children_shutdown(void)
{
    if (children.base == NULL)
        return;
    event_free(children.sigchld);
    event_free(children.deliver);
    pthread_mutex_lock(&children_lock);
    while (children.watches != NULL) {
        child_watch_t *w = children.watches;
        children.watches = w->next;
        free(w);
    }
    children.sigchld = NULL;
    children.deliver = NULL;
    children.n_remembered = 0;
    children.base = NULL;
    pthread_mutex_unlock(&children_lock);
}

void
mcplex_children_watch(pid_t pid, mcplex_child_exit_fn cb, void *arg)
{
    child_watch_t **link;
    child_watch_t *w;

    MCPLEX_BUG_ON(cb == NULL);
    pthread_mutex_lock(&children_lock);
    link = find_link(pid);
    if (link != NULL) {
        w = *link;
        w->cb = cb;
        w->arg = arg;
        w->owner = thread_base;
        if (w->state == WATCH_REMEMBERED) {
            static const struct timeval zero = {0, 0};
            children.n_remembered--;
            w->state = WATCH_DUE;
            evtimer_add(children.deliver, &zero);
        } else if (w->state == WATCH_IGNORED) {
            w->state = WATCH_ACTIVE;
        }
        pthread_mutex_unlock(&children_lock);
        return;
    }
    w = mcplex_calloc(1, sizeof(*w));
    w->pid = pid;
    w->cb = cb;
    w->arg = arg;
    w->owner = thread_base;
    w->next = children.watches;
    children.watches = w;
    pthread_mutex_unlock(&children_lock);
}

void
mcplex_children_unwatch(pid_t pid)
{
    child_watch_t **link;

    pthread_mutex_lock(&children_lock);
    link = find_link(pid);
    if (link == NULL) {
        pthread_mutex_unlock(&children_lock);
        return;
    }
    child_watch_t *w = *link;
    if (w->state == WATCH_ACTIVE) {
        w->state = WATCH_IGNORED;
        w->cb = NULL;
        w->arg = NULL;
    } else if (w->state == WATCH_DUE) {
        *link = w->next;
        free(w);
    }
    pthread_mutex_unlock(&children_lock);
}

size_t
mcplex_children_count(void)
{
    size_t n = 0;

    pthread_mutex_lock(&children_lock);
    for (const child_watch_t *w = children.watches; w != NULL; w = w->next)
        n += w->state == WATCH_ACTIVE;
    pthread_mutex_unlock(&children_lock);
    return n;
}
