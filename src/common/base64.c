/*
 * base64.c - base64 and base64url codecs (see base64.h). One encoder and one strict decoder,
 * parameterized by alphabet and padding rule. Owns no state.
 *
 * Pure code, any thread.
 */
#include "common/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

enum {
    ALPHA_STD = 1, /* "+/" */
    ALPHA_URL = 2, /* "-_" */
};

enum {
    PAD_REQUIRED = 0,
    PAD_FORBIDDEN,
    PAD_OPTIONAL,
};

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
encode(const void *data, size_t len, const char *chars, int pad)
{
    const unsigned char *in = data;
    size_t groups, i;
    char *out, *o;

    MCPLEX_BUG_ON(len > (SIZE_MAX - 1) / 4 * 3 - 3);
    groups = (len + 2) / 3;
    out = mcplex_malloc(groups * 4 + 1);
    o = out;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        *o++ = chars[v >> 18 & 63];
        *o++ = chars[v >> 12 & 63];
        *o++ = chars[v >> 6 & 63];
        *o++ = chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        *o++ = chars[v >> 18 & 63];
        *o++ = chars[v >> 12 & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

        *o++ = chars[v >> 18 & 63];
        *o++ = chars[v >> 12 & 63];
        *o++ = chars[v >> 6 & 63];
        if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

char *
mcplex_base64_encode(const void *data, size_t len)
{
    return encode(data, len, std_chars, 1);
}

char *
mcplex_base64url_encode(const void *data, size_t len)
{
    return encode(data, len, url_chars, 0);
}

/* The 6-bit value of |c| in the alphabets allowed by |alpha|, or -1. */
static int
decode_char(unsigned char c, int alpha)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (alpha & ALPHA_STD) {
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
    }
    if (alpha & ALPHA_URL) {
        if (c == '-')
            return 62;
        if (c == '_')
            return 63;
    }
    return -1;
}

static int
decode(const char *text, size_t text_len, int alpha, int pad, void **out, size_t *out_len)
{
    unsigned char *buf = NULL, *o;
    size_t n = text_len, npad = 0, rem, i;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    if (text == NULL && text_len > 0)
        goto fail;
    /* Padding: up to two '=' at the very end, and only where the rule allows them. */
    while (npad < 2 && n > 0 && text[n - 1] == '=') {
        n--;
        npad++;
    }
    if (npad > 0 && pad == PAD_FORBIDDEN)
        goto fail;
    rem = n % 4;
    if (rem == 1)
        goto fail;
    if (npad > 0 || pad == PAD_REQUIRED) {
        /* Padded form: total length a multiple of 4 and exactly the padding it needs. */
        if ((n + npad) % 4 != 0 || (rem == 0 ? 0 : 4 - rem) != npad)
            goto fail;
    }
    buf = mcplex_malloc(n / 4 * 3 + 3);
    o = buf;
    for (i = 0; i < n; i++) {
        int v = decode_char((unsigned char)text[i], alpha);

        if (v < 0)
            goto fail;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-zero unused bits: not the canonical encoding */
        goto fail;
    *o = '\0';
    *out = buf;
    *out_len = (size_t)(o - buf);
    return 0;

fail:
    free(buf);
    return -1;
}

int
mcplex_base64_decode(const char *text, size_t text_len, void **out, size_t *out_len)
{
    return decode(text, text_len, ALPHA_STD, PAD_REQUIRED, out, out_len);
}

int
mcplex_base64url_decode(const char *text, size_t text_len, void **out, size_t *out_len)
{
    return decode(text, text_len, ALPHA_URL, PAD_FORBIDDEN, out, out_len);
}

int
mcplex_base64_decode_any(const char *text, size_t text_len, void **out, size_t *out_len)
{
    return decode(text, text_len, ALPHA_STD | ALPHA_URL, PAD_OPTIONAL, out, out_len);
}
