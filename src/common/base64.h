/*
 * base64.h - base64 (RFC 4648 section 4, "+/", padded with '=') and base64url (section 5, "-_",
 * no padding) encoding and strict decoding. Used for Mcp-Session-Id values (base64url, see
 * seal.h), protobuf JSON bytes fields and HTTP headers. Pure code, any thread.
 */
#ifndef MCPLEX_COMMON_BASE64_H
#define MCPLEX_COMMON_BASE64_H

#include <stddef.h>

/*
 * Encodes |len| bytes of |data| (may be NULL when |len| is 0) as padded standard base64.
 * Returns NUL-terminated text (malloc'ed; caller frees; "" for no input). Aborts on OOM.
 */
char *mcplex_base64_encode(const void *data, size_t len);
/* Same, as base64url without padding (safe in URLs, headers and file names). */
char *mcplex_base64url_encode(const void *data, size_t len);

/*
 * Decodes |text_len| characters of padded standard base64. Strict: the length must be a
 * multiple of 4, '=' may only appear as 1 or 2 final characters, every other character must
 * be in the alphabet (no whitespace), and the unused low bits of the last group must be zero
 * (so each byte string has exactly one accepted encoding). Returns 0 and sets |*out|
 * (malloc'ed, caller frees, with one extra NUL byte after the data for convenience) and
 * |*out_len| (bytes); or -1 on invalid input, leaving |*out| NULL and |*out_len| 0.
 */
int mcplex_base64_decode(const char *text, size_t text_len, void **out, size_t *out_len);
/* Same for base64url without padding: '=' is refused; the length may not be 1 modulo 4. */
int mcplex_base64url_decode(const char *text, size_t text_len, void **out, size_t *out_len);
/*
 * Lenient decoder for inputs that may come in either form (protobuf JSON "bytes" fields):
 * accepts characters of both alphabets (even mixed) and padding present or not,
 * still refusing other characters, misplaced '=' and non-zero unused bits. Same return rules.
 */
int mcplex_base64_decode_any(const char *text, size_t text_len, void **out, size_t *out_len);

#endif
