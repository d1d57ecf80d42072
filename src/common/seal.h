/*
 * seal.h - authenticated encryption of small values handed to clients, chiefly the
 * Mcp-Session-Id (ARCHITECTURE "Threads and sessions"): the id carries what another replica
 * needs to rebuild a session, and must be unreadable and unforgeable for the client.
 *
 * Format of a sealed text: base64url without padding of
 *     version (1 byte, = 1) || nonce (12 random bytes) || ciphertext || tag (16 bytes)
 * with AES-256-GCM, the version byte as additional authenticated data. Only the OpenSSL API
 * subset BoringSSL also has is used (EVP_CIPHER_CTX + EVP_aes_256_gcm + EVP_CTRL_GCM_*).
 * Random 96-bit nonces: keep one key for well under 2^32 seals (rotate keys, not more).
 *
 * Thread: a key is immutable after creation, so one key may be used by any number of threads
 * at once (each call builds its own cipher context); create/destroy on one thread, destroy only
 * when no other thread still uses the key.
 */
#ifndef MCPLEX_COMMON_SEAL_H
#define MCPLEX_COMMON_SEAL_H

#include <stddef.h>

#define MCPLEX_SEAL_KEY_LEN 32
#define MCPLEX_SEAL_VERSION 1
/* Longest sealed text mcplex_unseal() accepts (characters, without the NUL). */
#define MCPLEX_SEAL_MAX_TEXT 4096
/* Longest plaintext mcplex_seal() accepts: its sealed text is exactly MCPLEX_SEAL_MAX_TEXT. */
#define MCPLEX_SEAL_MAX_PLAINTEXT (MCPLEX_SEAL_MAX_TEXT / 4 * 3 - 1 - 12 - 16)

typedef struct mcplex_seal_key mcplex_seal_key_t;

/* A key of 32 fresh random bytes (good for one process: sealed ids die with it). Aborts on
 * OOM or CSPRNG failure; never NULL. */
mcplex_seal_key_t *mcplex_seal_key_create_random(void);
/* A key holding a copy of the MCPLEX_SEAL_KEY_LEN bytes at |key|. Never NULL. */
mcplex_seal_key_t *mcplex_seal_key_create(const void *key);
/*
 * A key derived from an arbitrary secret (e.g. from config, shared by all replicas):
 * SHA-256("mcplex seal key v1" || 0x00 || secret). |secret| is |len| bytes, any content.
 * This is not a password hash: the secret must itself be high-entropy. Never NULL.
 */
mcplex_seal_key_t *mcplex_seal_key_create_from_secret(const void *secret, size_t len);
/* Wipes and frees |key| (NULL is fine). */
void mcplex_seal_key_destroy(mcplex_seal_key_t *key);

/*
 * Seals |len| bytes of |plaintext| (may be NULL when |len| is 0). Returns the NUL-terminated
 * base64url text (malloc'ed; caller frees), or NULL if |len| > MCPLEX_SEAL_MAX_PLAINTEXT or the
 * cipher fails. Aborts on OOM or CSPRNG failure. Any thread.
 */
char *mcplex_seal(const mcplex_seal_key_t *key, const void *plaintext, size_t len);
/*
 * Opens |text| (NUL-terminated) sealed with |key|. Returns 0 and sets |*plaintext| (malloc'ed,
 * caller frees; a NUL byte follows the data, not counted) and |*len|; or -1 (then |*plaintext|
 * is NULL and |*len| 0) if |text| is NULL, longer than MCPLEX_SEAL_MAX_TEXT, not base64url, of
 * an unknown version, too short, sealed with another key, or altered in any way. Any thread.
 */
int mcplex_unseal(const mcplex_seal_key_t *key, const char *text, void **plaintext, size_t *len);

#endif
