/*
 * test_base64.c - unit tests of the base64/base64url codecs (src/common/base64.c): RFC 4648
 * vectors, round trips of every length and byte, and strict refusal of bad input.
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64.h"

typedef int (*decode_fn)(const char *, size_t, void **, size_t *);

static void
assert_decodes(decode_fn fn, const char *text, const void *expect, size_t expect_len)
{
    void *out = (void *)1;
    size_t len = 99;

    if (fn(text, strlen(text), &out, &len) != 0)
        fail_msg("decode(\"%s\") refused", text);
    assert_int_equal(len, expect_len);
    assert_memory_equal(out, expect, expect_len);
    assert_int_equal(((unsigned char *)out)[len], 0); /* the convenience NUL */
    free(out);
}

static void
assert_refused(decode_fn fn, const char *text, size_t text_len)
{
    void *out = (void *)1;
    size_t len = 99;

    if (fn(text, text_len, &out, &len) != -1)
        fail_msg("decode(\"%.*s\") accepted", (int)text_len, text);
    assert_null(out);
    assert_int_equal(len, 0);
}

static void
test_rfc4648_vectors(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    size_t i;

    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char *s = mcplex_base64_encode(in[i], strlen(in[i]));

        assert_string_equal(s, std[i]);
        free(s);
        s = mcplex_base64url_encode(in[i], strlen(in[i]));
        assert_string_equal(s, url[i]);
        free(s);
        assert_decodes(mcplex_base64_decode, std[i], in[i], strlen(in[i]));
        assert_decodes(mcplex_base64url_decode, url[i], in[i], strlen(in[i]));
        assert_decodes(mcplex_base64_decode_any, std[i], in[i], strlen(in[i]));
        assert_decodes(mcplex_base64_decode_any, url[i], in[i], strlen(in[i]));
    }
}

static void
test_alphabets(void **state)
{
    static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    char *s;

    s = mcplex_base64_encode(bytes, sizeof(bytes));
    assert_string_equal(s, "+/+/");
    free(s);
    s = mcplex_base64url_encode(bytes, sizeof(bytes));
    assert_string_equal(s, "-_-_");
    free(s);
    assert_decodes(mcplex_base64_decode, "+/+/", bytes, sizeof(bytes));
    assert_decodes(mcplex_base64url_decode, "-_-_", bytes, sizeof(bytes));
    assert_decodes(mcplex_base64_decode_any, "-/+_", bytes, sizeof(bytes));
    assert_refused(mcplex_base64_decode, "-_-_", 4);
    assert_refused(mcplex_base64url_decode, "+/+/", 4);
    /* NULL data with zero length. */
    s = mcplex_base64_encode(NULL, 0);
    assert_string_equal(s, "");
    free(s);
}

static void
test_round_trip_all_lengths(void **state)
{
    unsigned char data[300];
    size_t n, i;

    for (i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (n = 0; n <= sizeof(data); n++) {
        char *a = mcplex_base64_encode(data, n);
        char *b = mcplex_base64url_encode(data, n);

        assert_int_equal(strlen(a), (n + 2) / 3 * 4);
        assert_int_equal(strlen(b), n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1));
        assert_decodes(mcplex_base64_decode, a, data, n);
        assert_decodes(mcplex_base64url_decode, b, data, n);
        assert_decodes(mcplex_base64_decode_any, a, data, n);
        assert_decodes(mcplex_base64_decode_any, b, data, n);
        free(a);
        free(b);
    }
}

static void
test_refuses_bad_input(void **state)
{
    static const char *const bad_std[] = {
        "Zg",       /* padding required */
        "Zg=",      /* short padding */
        "Zg===",    /* too much padding */
        "Z===",     /* too much padding */
        "====",
        "=",
        "Z",
        "Zm9vY",    /* 1 mod 4 */
        "Zm=9v",    /* '=' inside */
        "Zm9v\n",   /* whitespace */
        " Zm9v",
        "Zm9v Yg==",
        "Zh==",     /* non-zero unused bits ("Zg==" is canonical) */
        "Zm9=",     /* non-zero unused bits ("Zm8=" is canonical) */
        "Zm9v*A==",
        "Zm9v\xC3\xA9",
    };
    static const char *const bad_url[] = {
        "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v=", "Zm 9",
    };
    size_t i;

    for (i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
        assert_refused(mcplex_base64_decode, bad_std[i], strlen(bad_std[i]));
    for (i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
        assert_refused(mcplex_base64url_decode, bad_url[i], strlen(bad_url[i]));
    /* The lenient decoder still refuses junk, misplaced padding and unused bits. */
    assert_refused(mcplex_base64_decode_any, "Zg=", 3);
    assert_refused(mcplex_base64_decode_any, "Z", 1);
    assert_refused(mcplex_base64_decode_any, "Zm=9", 4);
    assert_refused(mcplex_base64_decode_any, "Zh", 2);
    assert_refused(mcplex_base64_decode_any, "Zm9v!", 5);
    /* An embedded NUL is a bad character, not the end. */
    assert_refused(mcplex_base64_decode, "Zm9v\0\0==", 8);
    /* NULL text with a length. */
    assert_refused(mcplex_base64_decode, NULL, 4);
}

static void
test_length_is_honoured(void **state)
{
    void *out;
    size_t len;

    /* Only the first 4 characters are read. */
    assert_int_equal(mcplex_base64_decode("Zm9vYmFy", 4, &out, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "foo", 3);
    free(out);
    assert_int_equal(mcplex_base64url_decode("Zm8!!!", 3, &out, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "fo", 2);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_round_trip_all_lengths),
        cmocka_unit_test(test_refuses_bad_input),
        cmocka_unit_test(test_length_is_honoured),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
