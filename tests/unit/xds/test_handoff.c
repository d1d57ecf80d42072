/*
 * test_handoff.c - unit tests of xds/handoff.c, the one gRPC-thread -> main-loop hand-off: items
 * pushed from another thread arrive on the loop thread, all of them, in order, with their data;
 * items still queued at destroy are freed. Two threads: the test's main thread runs the
 * event_base, a producer pthread pushes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>

#include "common/mem.h"
#include "xds/handoff.h"

#define N_ITEMS 5000

typedef struct ctx {
    struct event_base *base;
    mcplex_xds_handoff_t *h;
    uint64_t next; /* the call_id expected next */
    int bad;
    pthread_t self; /* the loop thread */
} ctx_t;

static void
on_item(void *arg, const mcplex_xds_handoff_item_t *item)
{
    ctx_t *c = arg;

    if (!pthread_equal(pthread_self(), c->self) || item->call_id != c->next || item->len != 8 ||
        memcmp(item->data, &item->call_id, 8) != 0)
        c->bad++;
    c->next++;
    if (c->next == N_ITEMS)
        event_base_loopbreak(c->base);
}

static void *
producer(void *arg)
{
    ctx_t *c = arg;

    for (uint64_t i = 0; i < N_ITEMS; i++) {
        mcplex_xds_handoff_item_t *it = mcplex_calloc(1, sizeof(*it));
        it->kind = MCPLEX_XDS_HANDOFF_MESSAGE;
        it->call_id = i;
        it->data = mcplex_malloc(8);
        memcpy(it->data, &i, 8);
        it->len = 8;
        mcplex_xds_handoff_push(c->h, it);
    }
    return NULL;
}

static void
test_cross_thread_in_order(void **state)
{
    ctx_t c;
    pthread_t t;
    struct timeval limit = {20, 0};

    (void)state;
    memset(&c, 0, sizeof(c));
    c.base = event_base_new();
    c.self = pthread_self();
    c.h = mcplex_xds_handoff_create(c.base, on_item, &c);
    assert_non_null(c.h);
    assert_int_equal(pthread_create(&t, NULL, producer, &c), 0);
    event_base_loopexit(c.base, &limit); /* bounded in time */
    event_base_dispatch(c.base);
    pthread_join(t, NULL);
    assert_int_equal(c.next, N_ITEMS);
    assert_int_equal(c.bad, 0);
    mcplex_xds_handoff_destroy(c.h);
    event_base_free(c.base);
}

static void
test_destroy_frees_queued(void **state)
{
    ctx_t c;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.base = event_base_new();
    c.h = mcplex_xds_handoff_create(c.base, on_item, &c);
    for (int i = 0; i < 3; i++) {
        mcplex_xds_handoff_item_t *it = mcplex_calloc(1, sizeof(*it));
        it->kind = MCPLEX_XDS_HANDOFF_CLOSED;
        it->details = mcplex_strdup("bye");
        mcplex_xds_handoff_push(c.h, it);
    }
    mcplex_xds_handoff_destroy(c.h); /* never dispatched: the items are freed (ASan/valgrind check) */
    event_base_free(c.base);
    assert_int_equal(c.next, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_thread_in_order),
        cmocka_unit_test(test_destroy_frees_queued),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
