/*
 * test_seal.c - unit tests of session-id sealing (src/common/seal.c): round trips, and refusal
 * of every flipped bit, another key, truncation, garbage and oversize input. Single-threaded
 * except test_threads, which shares one key between threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/seal.h"

static const char msg[] = "{\"b\":\"backend-1\",\"s\":[\"upstream-session-\xC3\xA9\",null]}";

static void
assert_unseals_to(const mcplex_seal_key_t *key, const char *text, const void *expect, size_t expect_len)
{
    void *out = NULL;
    size_t len = 0;

    assert_int_equal(mcplex_unseal(key, text, &out, &len), 0);
    assert_int_equal(len, expect_len);
    assert_memory_equal(out, expect, expect_len);
    assert_int_equal(((unsigned char *)out)[len], 0);
    free(out);
}

static void
assert_unseal_fails(const mcplex_seal_key_t *key, const char *text)
{
    void *out = (void *)1;
    size_t len = 99;

    if (mcplex_unseal(key, text, &out, &len) != -1)
        fail_msg("unseal(\"%.80s\") accepted", text ? text : "(null)");
    assert_null(out);
    assert_int_equal(len, 0);
}

static void
test_round_trip(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    char *a, *b, *empty;
    size_t i;

    a = mcplex_seal(key, msg, sizeof(msg) - 1);
    assert_non_null(a);
    /* Visible ASCII only (an Mcp-Session-Id rule): base64url. */
    for (i = 0; a[i] != '\0'; i++)
        assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]) != NULL);
    assert_unseals_to(key, a, msg, sizeof(msg) - 1);
    /* Fresh nonce each time: same plaintext, different text, both valid. */
    b = mcplex_seal(key, msg, sizeof(msg) - 1);
    assert_string_not_equal(a, b);
    assert_unseals_to(key, b, msg, sizeof(msg) - 1);
    /* Empty plaintext works (NULL pointer allowed with length 0). */
    empty = mcplex_seal(key, NULL, 0);
    assert_non_null(empty);
    assert_unseals_to(key, empty, "", 0);
    free(a);
    free(b);
    free(empty);
    mcplex_seal_key_destroy(key);
    mcplex_seal_key_destroy(NULL);
}

static void
test_key_constructors(void **state)
{
    unsigned char raw[MCPLEX_SEAL_KEY_LEN];
    mcplex_seal_key_t *k1, *k2, *s1, *s2, *s3;
    char *t;

    memset(raw, 0x42, sizeof(raw));
    k1 = mcplex_seal_key_create(raw);
    k2 = mcplex_seal_key_create(raw);
    t = mcplex_seal(k1, "hi", 2);
    assert_unseals_to(k2, t, "hi", 2); /* same bytes, same key */
    free(t);

    /* Derived keys: same secret, same key (what replicas rely on); another secret differs. */
    s1 = mcplex_seal_key_create_from_secret("correct horse battery staple", 28);
    s2 = mcplex_seal_key_create_from_secret("correct horse battery staple", 28);
    s3 = mcplex_seal_key_create_from_secret("correct horse battery stapl", 27);
    t = mcplex_seal(s1, "hi", 2);
    assert_unseals_to(s2, t, "hi", 2);
    assert_unseal_fails(s3, t);
    assert_unseal_fails(k1, t);
    free(t);
    mcplex_seal_key_destroy(k1);
    mcplex_seal_key_destroy(k2);
    mcplex_seal_key_destroy(s1);
    mcplex_seal_key_destroy(s2);
    mcplex_seal_key_destroy(s3);
}

static void
test_every_flipped_bit_fails(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    char *text = mcplex_seal(key, msg, sizeof(msg) - 1);
    unsigned char *raw;
    size_t raw_len, byte;
    int bit;

    /* Flip each bit of the decoded form (version, nonce, ciphertext, tag) and re-encode. */
    assert_int_equal(mcplex_base64url_decode(text, strlen(text), (void **)&raw, &raw_len), 0);
    assert_int_equal(raw_len, 1 + 12 + (sizeof(msg) - 1) + 16);
    for (byte = 0; byte < raw_len; byte++) {
        for (bit = 0; bit < 8; bit++) {
            char *bad;

            raw[byte] ^= (unsigned char)(1u << bit);
            bad = mcplex_base64url_encode(raw, raw_len);
            assert_unseal_fails(key, bad);
            free(bad);
            raw[byte] ^= (unsigned char)(1u << bit);
        }
    }
    /* Changing any character of the text fails too (including non-canonical last chars). */
    for (byte = 0; text[byte] != '\0'; byte++) {
        char saved = text[byte];

        text[byte] = saved == 'A' ? 'B' : 'A';
        assert_unseal_fails(key, text);
        text[byte] = saved;
    }
    assert_unseals_to(key, text, msg, sizeof(msg) - 1);
    free(raw);
    free(text);
    mcplex_seal_key_destroy(key);
}

static void
test_wrong_key_fails(void **state)
{
    mcplex_seal_key_t *k1 = mcplex_seal_key_create_random();
    mcplex_seal_key_t *k2 = mcplex_seal_key_create_random();
    char *text = mcplex_seal(k1, msg, sizeof(msg) - 1);

    assert_unseal_fails(k2, text);
    assert_unseals_to(k1, text, msg, sizeof(msg) - 1);
    free(text);
    mcplex_seal_key_destroy(k1);
    mcplex_seal_key_destroy(k2);
}

static void
test_truncated_fails(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    char *text = mcplex_seal(key, msg, sizeof(msg) - 1);
    size_t n = strlen(text), i;

    for (i = 0; i < n; i++) {
        char *cut = strndup(text, i);

        assert_unseal_fails(key, cut);
        free(cut);
    }
    /* Appending characters fails as well. */
    {
        char *longer = malloc(n + 3);

        memcpy(longer, text, n);
        memcpy(longer + n, "AA", 3);
        assert_unseal_fails(key, longer);
        free(longer);
    }
    free(text);
    mcplex_seal_key_destroy(key);
}

static void
test_garbage_fails(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    unsigned char raw[64];
    char *text, *huge;

    assert_unseal_fails(key, NULL);
    assert_unseal_fails(key, "");
    assert_unseal_fails(key, "x");
    assert_unseal_fails(key, "not a session id");
    assert_unseal_fails(key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_unseal_fails(key, "AQ==");
    assert_unseal_fails(key, "00000000-0000-0000-0000-000000000000");
    /* Right length and version, random content. */
    memset(raw, 0x5a, sizeof(raw));
    raw[0] = MCPLEX_SEAL_VERSION;
    text = mcplex_base64url_encode(raw, sizeof(raw));
    assert_unseal_fails(key, text);
    free(text);
    /* Another version byte is refused before any crypto. */
    raw[0] = 2;
    text = mcplex_base64url_encode(raw, sizeof(raw));
    assert_unseal_fails(key, text);
    free(text);
    /* Oversize input: refused without reading past the cap. */
    huge = malloc(MCPLEX_SEAL_MAX_TEXT + 2);
    memset(huge, 'A', MCPLEX_SEAL_MAX_TEXT + 1);
    huge[MCPLEX_SEAL_MAX_TEXT + 1] = '\0';
    assert_unseal_fails(key, huge);
    free(huge);
    mcplex_seal_key_destroy(key);
}

static void
test_size_limits(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    unsigned char *big = calloc(1, MCPLEX_SEAL_MAX_PLAINTEXT + 1);
    char *text;

    /* The largest plaintext seals to exactly the largest text unseal accepts. */
    text = mcplex_seal(key, big, MCPLEX_SEAL_MAX_PLAINTEXT);
    assert_non_null(text);
    assert_int_equal(strlen(text), MCPLEX_SEAL_MAX_TEXT);
    assert_unseals_to(key, text, big, MCPLEX_SEAL_MAX_PLAINTEXT);
    free(text);
    assert_null(mcplex_seal(key, big, MCPLEX_SEAL_MAX_PLAINTEXT + 1));
    free(big);
    mcplex_seal_key_destroy(key);
}

static void *
thread_main(void *arg)
{
    const mcplex_seal_key_t *key = arg;
    int i;

    for (i = 0; i < 200; i++) {
        char buf[32], *text;
        void *out;
        size_t len;

        snprintf(buf, sizeof(buf), "session-%d", i);
        text = mcplex_seal(key, buf, strlen(buf));
        if (text == NULL || mcplex_unseal(key, text, &out, &len) != 0 || len != strlen(buf) ||
            memcmp(out, buf, len) != 0)
            return (void *)1;
        free(out);
        free(text);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    mcplex_seal_key_t *key = mcplex_seal_key_create_random();
    pthread_t th[4];
    size_t i;

    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, key), 0);
    for (i = 0; i < 4; i++) {
        void *rv;

        assert_int_equal(pthread_join(th[i], &rv), 0);
        assert_null(rv);
    }
    mcplex_seal_key_destroy(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_key_constructors),
        cmocka_unit_test(test_every_flipped_bit_fails),
        cmocka_unit_test(test_wrong_key_fails),
        cmocka_unit_test(test_truncated_fails),
        cmocka_unit_test(test_garbage_fails),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
