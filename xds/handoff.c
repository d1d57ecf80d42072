/*
 * handoff.c - the gRPC-thread -> main-loop hand-off (handoff.h): a mutex-protected FIFO and a
 * self-pipe whose read end is a libevent event on the main event_base. The pipe carries one
 * wake-up byte per empty->non-empty transition, so it never fills up.
 *
 * Threads: push from any thread; the event callback, create and destroy on the main thread.
 */
#include "xds/handoff.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

struct mcplex_xds_handoff {
    pthread_mutex_t lock;
    mcplex_xds_handoff_item_t *head; /* guarded by |lock| */
    mcplex_xds_handoff_item_t *tail;
    int pipe_rd;
    int pipe_wr;
    struct event *ev;
    mcplex_xds_handoff_cb cb;
    void *arg;
};

void
mcplex_xds_handoff_item_free(mcplex_xds_handoff_item_t *item)
{
    if (item == NULL)
        return;
    free(item->data);
    free(item->details);
    free(item);
}

static void
handoff_ready(evutil_socket_t fd, short what, void *arg)
{
    mcplex_xds_handoff_t *h = arg;
    mcplex_xds_handoff_item_t *list, *next;
    char buf[64];

    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&h->lock);
    list = h->head;
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->lock);
    for (; list != NULL; list = next) {
        next = list->next;
        h->cb(h->arg, list);
        mcplex_xds_handoff_item_free(list);
    }
}

mcplex_xds_handoff_t *
mcplex_xds_handoff_create(struct event_base *base, mcplex_xds_handoff_cb cb, void *arg)
{
    mcplex_xds_handoff_t *h = mcplex_calloc(1, sizeof(*h));
    int fds[2] = {-1, -1};

    pthread_mutex_init(&h->lock, NULL);
    h->cb = cb;
    h->arg = arg;
    h->pipe_rd = h->pipe_wr = -1;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        mcplex_log_error("xds", "hand-off pipe: %s", strerror(errno));
        goto fail;
    }
    h->pipe_rd = fds[0];
    h->pipe_wr = fds[1];
    h->ev = event_new(base, h->pipe_rd, EV_READ | EV_PERSIST, handoff_ready, h);
    if (h->ev == NULL || event_add(h->ev, NULL) != 0) {
        mcplex_log_error("xds", "hand-off event: cannot create");
        goto fail;
    }
    return h;
fail:
    mcplex_xds_handoff_destroy(h);
    return NULL;
}

void
mcplex_xds_handoff_push(mcplex_xds_handoff_t *h, mcplex_xds_handoff_item_t *item)
{
    int wake;
    ssize_t n;

    item->next = NULL;
    pthread_mutex_lock(&h->lock);
    wake = h->head == NULL;
    if (h->tail != NULL)
        h->tail->next = item;
    else
        h->head = item;
    h->tail = item;
    pthread_mutex_unlock(&h->lock);
    if (wake) {
        do {
            n = write(h->pipe_wr, "x", 1);
        } while (n < 0 && errno == EINTR);
        /* EAGAIN: the pipe already holds a wake-up byte */
    }
}

void
mcplex_xds_handoff_destroy(mcplex_xds_handoff_t *h)
{
    mcplex_xds_handoff_item_t *next;

    if (h == NULL)
        return;
    if (h->ev != NULL)
        event_free(h->ev);
    if (h->pipe_rd >= 0)
        close(h->pipe_rd);
    if (h->pipe_wr >= 0)
        close(h->pipe_wr);
    for (; h->head != NULL; h->head = next) {
        next = h->head->next;
        mcplex_xds_handoff_item_free(h->head);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}
