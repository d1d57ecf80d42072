/*
 * test_random.c - unit tests of the random helpers (src/common/random.c): CSPRNG output looks
 * random, the fast generator differs per thread and stays in range. Single-threaded except
 * test_fast_rand_threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "common/random.h"

static void
test_random_bytes(void **state)
{
    unsigned char a[64], b[64], zero[64] = {0};

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    mcplex_random_bytes(a, sizeof(a));
    mcplex_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    mcplex_random_bytes(a, 0);
    assert_true(mcplex_random_u64() != mcplex_random_u64());
}

static void
test_fast_rand_spread(void **state)
{
    unsigned counts[10] = {0};
    uint32_t first = mcplex_fast_rand(), same = 0;
    int i;

    for (i = 0; i < 100000; i++) {
        uint32_t v = mcplex_fast_rand_below(10);

        assert_true(v < 10);
        counts[v]++;
        same += mcplex_fast_rand() == first;
    }
    for (i = 0; i < 10; i++)
        assert_in_range(counts[i], 9000, 11000);
    assert_true(same < 3);
    assert_int_equal(mcplex_fast_rand_below(0), 0);
    assert_int_equal(mcplex_fast_rand_below(1), 0);
}

static void *
thread_first(void *arg)
{
    *(uint32_t *)arg = mcplex_fast_rand();
    return NULL;
}

static void
test_fast_rand_threads(void **state)
{
    uint32_t v[4];
    pthread_t th[4];
    int i;

    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_first, &v[i]), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* Each thread seeds its own state: the first values differ (2^-32 chance of a false alarm). */
    assert_true(v[0] != v[1] || v[1] != v[2] || v[2] != v[3]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_fast_rand_spread),
        cmocka_unit_test(test_fast_rand_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
