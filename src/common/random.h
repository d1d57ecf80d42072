/*
 * random.h - randomness: cryptographic bytes from the OpenSSL/BoringSSL CSPRNG (session ids,
 * nonces, keys) and a fast non-cryptographic per-thread generator for load-balancing picks.
 * Any thread.
 */
#ifndef MCPLEX_COMMON_RANDOM_H
#define MCPLEX_COMMON_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Fills |buf| with |n| cryptographically strong random bytes (RAND_bytes). Never fails: if the
 * CSPRNG cannot deliver, the process aborts (nothing safe can be done without it). Any thread.
 */
void mcplex_random_bytes(void *buf, size_t n);
/* A cryptographically strong random 64-bit value (same rules as mcplex_random_bytes). */
uint64_t mcplex_random_u64(void);
/*
 * A fast, NOT cryptographic, uniformly distributed 32-bit value (xorshift128+ state per thread,
 * seeded on first use in each thread from mcplex_random_bytes). For load-balancing picks and
 * jitter only; never for anything a peer must not predict. Any thread, lock-free.
 */
uint32_t mcplex_fast_rand(void);
/*
 * A fast non-cryptographic value in [0, |bound|) by Lemire's multiply-shift (bias at most
 * |bound| / 2^32, irrelevant for load balancing); |bound| 0 returns 0. Same rules as
 * mcplex_fast_rand.
 */
uint32_t mcplex_fast_rand_below(uint32_t bound);

#endif
