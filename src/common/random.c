/*
 * random.c - CSPRNG wrappers and the per-thread fast generator (see random.h). The only state
 * is the thread-local xorshift128+ state of mcplex_fast_rand().
 *
 * Any thread. Relies on RAND_bytes being thread-safe (OpenSSL >= 1.1 and BoringSSL). A forked
 * child that does not exec inherits its parent's fast state, so it must not use
 * mcplex_fast_rand() for anything that has to differ from the parent (we only fork to exec).
 */
#include "common/random.h"

#include <openssl/rand.h>

#include "common/mem.h"

/* xorshift128+ state of this thread; both words zero means "not seeded yet". */
static _Thread_local uint64_t fast_state[2];

void
mcplex_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    /* RAND_bytes takes an int length (size_t in BoringSSL): feed it in bounded chunks. */
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;

        if (RAND_bytes(p, (int)chunk) != 1)
            mcplex_fatal(__FILE__, __LINE__, "RAND_bytes failed");
        p += chunk;
        n -= chunk;
    }
}

uint64_t
mcplex_random_u64(void)
{
    uint64_t v;

    mcplex_random_bytes(&v, sizeof(v));
    return v;
}

uint32_t
mcplex_fast_rand(void)
{
    uint64_t s1, s0;

    while (fast_state[0] == 0 && fast_state[1] == 0)
        mcplex_random_bytes(fast_state, sizeof(fast_state));
    s1 = fast_state[0];
    s0 = fast_state[1];
    fast_state[0] = s0;
    s1 ^= s1 << 23;
    fast_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    /* The high half of the sum has the better statistical quality. */
    return (uint32_t)((fast_state[1] + s0) >> 32);
}

uint32_t
mcplex_fast_rand_below(uint32_t bound)
{
    return (uint32_t)(((uint64_t)mcplex_fast_rand() * bound) >> 32);
}
