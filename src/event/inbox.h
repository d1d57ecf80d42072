/*
 * inbox.h - a worker's inbox: the one way other threads hand work to a worker (ARCHITECTURE
 * "Threads and sessions"). Any thread posts a function and its argument; the owner's event loop
 * runs them in posting order. Multiple producers, one consumer; a mutex guards only the queue
 * splice, and an eventfd wakes the loop. Nothing else crosses threads.
 */
#ifndef MCPLEX_EVENT_INBOX_H
#define MCPLEX_EVENT_INBOX_H

struct event_base;

typedef struct mcplex_inbox mcplex_inbox_t;

/* Work posted to an inbox: runs on the owner's thread with |arg|. */
typedef void (*mcplex_inbox_fn)(void *arg);

/* Creates the inbox of the loop |base| (thread: the owner, before other threads post). NULL if
 * the eventfd cannot be created. */
mcplex_inbox_t *mcplex_inbox_create(struct event_base *base);
/*
 * Runs what is still queued, then frees the inbox. Thread: the owner, once no other thread can
 * post any more.
 */
void mcplex_inbox_destroy(mcplex_inbox_t *inbox);
/* Queues |fn|(|arg|) for the owner's loop. Thread: any. Never fails (aborts on OOM). */
void mcplex_inbox_post(mcplex_inbox_t *inbox, mcplex_inbox_fn fn, void *arg);

#endif
