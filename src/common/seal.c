/*
 * seal.c - AES-256-GCM sealing of client-facing values (see seal.h). Owns the key objects.
 *
 * Any thread: a key is read-only after creation and every call uses its own EVP_CIPHER_CTX.
 * Relies on the OpenSSL/BoringSSL common subset: EVP_aes_256_gcm, EVP_CTRL_GCM_SET_IVLEN,
 * EVP_CTRL_GCM_GET_TAG, EVP_CTRL_GCM_SET_TAG, EVP_Digest* with EVP_sha256, OPENSSL_cleanse.
 */
#include "common/seal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/base64.h"
#include "common/mem.h"
#include "common/random.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (1 + NONCE_LEN)
#define OVERHEAD (HEADER_LEN + TAG_LEN)

static const char derive_label[] = "mcplex seal key v1";

struct mcplex_seal_key {
    unsigned char bytes[MCPLEX_SEAL_KEY_LEN];
};

mcplex_seal_key_t *
mcplex_seal_key_create(const void *key)
{
    mcplex_seal_key_t *k = mcplex_malloc(sizeof(*k));

    memcpy(k->bytes, key, MCPLEX_SEAL_KEY_LEN);
    return k;
}

mcplex_seal_key_t *
mcplex_seal_key_create_random(void)
{
    mcplex_seal_key_t *k = mcplex_malloc(sizeof(*k));

    mcplex_random_bytes(k->bytes, sizeof(k->bytes));
    return k;
}

mcplex_seal_key_t *
mcplex_seal_key_create_from_secret(const void *secret, size_t len)
{
    mcplex_seal_key_t *k = mcplex_malloc(sizeof(*k));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int out_len = 0;

    if (md == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    /* The label (with its NUL) separates this use of the secret from any other hash of it. */
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, derive_label, sizeof(derive_label)) != 1 ||
        (len > 0 && EVP_DigestUpdate(md, secret, len) != 1) ||
        EVP_DigestFinal_ex(md, k->bytes, &out_len) != 1 || out_len != MCPLEX_SEAL_KEY_LEN)
        mcplex_fatal(__FILE__, __LINE__, "SHA-256 failed");
    EVP_MD_CTX_free(md);
    return k;
}

void
mcplex_seal_key_destroy(mcplex_seal_key_t *key)
{
    if (key == NULL)
        return;
    OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
    free(key);
}

char *
mcplex_seal(const mcplex_seal_key_t *key, const void *plaintext, size_t len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    char *text = NULL;
    int n;

    if (len > MCPLEX_SEAL_MAX_PLAINTEXT)
        goto fail;
    buf = mcplex_malloc(OVERHEAD + len);
    buf[0] = MCPLEX_SEAL_VERSION;
    mcplex_random_bytes(buf + 1, NONCE_LEN);
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key->bytes, buf + 1) != 1)
        goto fail;
    /* The version byte is authenticated, so a future format cannot be confused with this one. */
    if (EVP_EncryptUpdate(ctx, NULL, &n, buf, 1) != 1)
        goto fail;
    if (len > 0 &&
        (EVP_EncryptUpdate(ctx, buf + HEADER_LEN, &n, plaintext, (int)len) != 1 || (size_t)n != len))
        goto fail;
    if (EVP_EncryptFinal_ex(ctx, buf + HEADER_LEN + len, &n) != 1 || n != 0)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, buf + HEADER_LEN + len) != 1)
        goto fail;
    text = mcplex_base64url_encode(buf, OVERHEAD + len);
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    return text;

fail:
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    return NULL;
}

int
mcplex_unseal(const mcplex_seal_key_t *key, const char *text, void **plaintext, size_t *len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL, *out = NULL;
    size_t raw_len = 0, text_len, clen = 0;
    int n;

    *plaintext = NULL;
    *len = 0;
    if (text == NULL)
        goto fail;
    text_len = strnlen(text, MCPLEX_SEAL_MAX_TEXT + 1);
    if (text_len > MCPLEX_SEAL_MAX_TEXT)
        goto fail;
    if (mcplex_base64url_decode(text, text_len, (void **)&raw, &raw_len) != 0)
        goto fail;
    if (raw_len < OVERHEAD || raw[0] != MCPLEX_SEAL_VERSION)
        goto fail;
    clen = raw_len - OVERHEAD;
    out = mcplex_malloc(clen + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, raw + 1) != 1)
        goto fail;
    if (EVP_DecryptUpdate(ctx, NULL, &n, raw, 1) != 1)
        goto fail;
    if (clen > 0 &&
        (EVP_DecryptUpdate(ctx, out, &n, raw + HEADER_LEN, (int)clen) != 1 || (size_t)n != clen))
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + HEADER_LEN + clen) != 1)
        goto fail;
    /* The tag check: fails on any altered byte, a wrong key or a truncated text. */
    if (EVP_DecryptFinal_ex(ctx, out + clen, &n) != 1)
        goto fail;
    out[clen] = '\0';
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    *plaintext = out;
    *len = clen;
    return 0;

fail:
    EVP_CIPHER_CTX_free(ctx);
    if (out != NULL) {
        OPENSSL_cleanse(out, clen + 1); /* unauthenticated plaintext never leaves */
        free(out);
    }
    free(raw);
    return -1;
}
