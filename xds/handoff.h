/*
 * handoff.h - the ONE hand-off from the gRPC completion-queue thread (xds/grpc_stream.c) to the
 * main loop: a mutex-protected FIFO of items plus a self-pipe that wakes a libevent read event on
 * the main event_base. The producer side never touches libevent state or config; the consumer
 * callback runs on the main thread only (research/xds-subset.md 6.2, "CQ thread + wake-up").
 *
 * Threads: mcplex_xds_handoff_push from any thread; everything else on the main thread.
 */
#ifndef MCPLEX_XDS_HANDOFF_H
#define MCPLEX_XDS_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef enum mcplex_xds_handoff_kind {
    MCPLEX_XDS_HANDOFF_MESSAGE = 0, /* a received gRPC message (|data|, |len|) */
    MCPLEX_XDS_HANDOFF_READY,       /* the server's initial metadata arrived (stream is up) */
    MCPLEX_XDS_HANDOFF_CLOSED,      /* the call ended: |status| (grpc_status_code), |details| */
} mcplex_xds_handoff_kind_t;

typedef struct mcplex_xds_handoff_item {
    mcplex_xds_handoff_kind_t kind;
    uint64_t call_id;  /* which call (stream attempt) it belongs to; stale ones are dropped */
    uint8_t *data;     /* MESSAGE: the serialized protobuf, malloc'ed */
    size_t len;
    int status;        /* CLOSED: grpc_status_code */
    char *details;     /* CLOSED: status details, malloc'ed, or NULL */
    struct mcplex_xds_handoff_item *next;
} mcplex_xds_handoff_item_t;

typedef struct mcplex_xds_handoff mcplex_xds_handoff_t;

/*
 * Called on the main thread once per item, in push order. The callback borrows |item|; the
 * hand-off frees it (mcplex_xds_handoff_item_free) when the callback returns.
 */
typedef void (*mcplex_xds_handoff_cb)(void *arg, const mcplex_xds_handoff_item_t *item);

/*
 * Creates the hand-off on |base| (not owned): a non-blocking pipe and a persistent read event.
 * Returns NULL (logged) if the pipe or the event cannot be created. Thread: main.
 */
mcplex_xds_handoff_t *mcplex_xds_handoff_create(struct event_base *base, mcplex_xds_handoff_cb cb, void *arg);

/*
 * Queues |item| (ownership moves to the hand-off) and wakes the main loop. Never blocks on the
 * loop; safe from any thread, including the gRPC completion-queue thread.
 */
void mcplex_xds_handoff_push(mcplex_xds_handoff_t *h, mcplex_xds_handoff_item_t *item);

/* Frees an item and what it owns. NULL is a no-op. Thread: any. */
void mcplex_xds_handoff_item_free(mcplex_xds_handoff_item_t *item);

/*
 * Frees the hand-off: the event, the pipe and any item still queued (not delivered). No
 * producer may push after this starts (stop the gRPC thread first). Thread: main.
 */
void mcplex_xds_handoff_destroy(mcplex_xds_handoff_t *h);

#endif
