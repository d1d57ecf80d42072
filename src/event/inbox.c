/*
 * inbox.c - a worker's inbox (see inbox.h). Producers: any thread. Consumer: the owner's loop.
 */
#include "event/inbox.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

typedef struct inbox_item {
    struct inbox_item *next;
    mcplex_inbox_fn fn;
    void *arg;
} inbox_item_t;

struct mcplex_inbox {
    pthread_mutex_t lock;
    inbox_item_t *head;
    inbox_item_t *tail;
    int fd;            /* eventfd: a write wakes the owner */
    struct event *ev;
};

/* Takes the whole queue under the lock, then runs it outside the lock, in order. */
static void
inbox_drain(mcplex_inbox_t *in)
{
    inbox_item_t *items;

    pthread_mutex_lock(&in->lock);
    items = in->head;
    in->head = in->tail = NULL;
    pthread_mutex_unlock(&in->lock);
    while (items != NULL) {
        inbox_item_t *next = items->next;
        items->fn(items->arg);
        free(items);
        items = next;
    }
}

static void
inbox_on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;

    (void)what;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another wake-up was already consumed; the queue is drained below anyway. */
    }
    inbox_drain(arg);
}

mcplex_inbox_t *
mcplex_inbox_create(struct event_base *base)
{
    mcplex_inbox_t *in = mcplex_calloc(1, sizeof(*in));

    in->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->fd == -1) {
        mcplex_log_error("worker", "eventfd: cannot create an inbox");
        free(in);
        return NULL;
    }
    pthread_mutex_init(&in->lock, NULL);
    in->ev = event_new(base, in->fd, EV_READ | EV_PERSIST, inbox_on_wake, in);
    event_add(in->ev, NULL);
    return in;
}

void
mcplex_inbox_destroy(mcplex_inbox_t *in)
{
    if (in == NULL)
        return;
    inbox_drain(in);
    event_free(in->ev);
    close(in->fd);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

void
mcplex_inbox_post(mcplex_inbox_t *in, mcplex_inbox_fn fn, void *arg)
{
    inbox_item_t *item = mcplex_malloc(sizeof(*item));
    uint64_t one = 1;
    int was_empty;

    item->next = NULL;
    item->fn = fn;
    item->arg = arg;
    pthread_mutex_lock(&in->lock);
    was_empty = in->head == NULL;
    if (in->tail != NULL)
        in->tail->next = item;
    else
        in->head = item;
    in->tail = item;
    pthread_mutex_unlock(&in->lock);
    /* One wake-up per empty -> non-empty transition is enough: the owner drains everything. */
    if (was_empty && write(in->fd, &one, sizeof(one)) < 0)
        mcplex_log_debug("worker", "inbox wake-up write failed (the counter is already set)");
}
