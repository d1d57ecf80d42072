/*
 * test_sse.c - the SSE parser and writer (src/http/sse.c): every stream is also fed split at
 * every byte boundary and one byte at a time, and must give the same events.
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/sse.h"

/* The events of one run, rendered as "event|id|retry|data\n" lines for easy comparison. */
typedef struct capture {
    char text[4096];
    size_t len;
    int count;
} capture_t;

static void
on_event(void *arg, const mcplex_sse_event_t *ev)
{
    capture_t *cap = arg;

    assert_int_equal(strlen(ev->data), ev->data_len);
    cap->len += (size_t)snprintf(cap->text + cap->len, sizeof(cap->text) - cap->len, "%s|%s|%lld|%s\n",
                                 ev->event, ev->id != NULL ? ev->id : "-", (long long)ev->retry_ms, ev->data);
    cap->count++;
}

/* Feeds |in| in pieces of |step| bytes (0: split once at |split|). */
static int
run(const char *in, size_t in_len, size_t split, size_t step, size_t cap_bytes, capture_t *cap)
{
    mcplex_sse_parser_t *p = mcplex_sse_parser_create(on_event, cap, cap_bytes);
    int rc = 0;

    memset(cap, 0, sizeof(*cap));
    if (step == 0) {
        rc = mcplex_sse_parser_feed(p, in, split);
        if (rc == 0)
            rc = mcplex_sse_parser_feed(p, in + split, in_len - split);
    } else {
        for (size_t off = 0; off < in_len && rc == 0; off += step)
            rc = mcplex_sse_parser_feed(p, in + off, in_len - off < step ? in_len - off : step);
    }
    mcplex_sse_parser_destroy(p);
    return rc;
}

/* Parses |in| whole, split at every boundary and byte by byte; all must give |expect|. */
static void
check_len(const char *in, size_t in_len, const char *expect)
{
    capture_t cap;

    assert_int_equal(run(in, in_len, in_len, 0, 0, &cap), 0);
    assert_string_equal(cap.text, expect);
    for (size_t split = 0; split <= in_len; split++) {
        assert_int_equal(run(in, in_len, split, 0, 0, &cap), 0);
        if (strcmp(cap.text, expect) != 0)
            fail_msg("split at %zu: got\n%s\nwant\n%s", split, cap.text, expect);
    }
    assert_int_equal(run(in, in_len, 0, 1, 0, &cap), 0);
    assert_string_equal(cap.text, expect);
}

static void
check(const char *in, const char *expect)
{
    check_len(in, strlen(in), expect);
}

static void
test_simple(void **state)
{
    (void)state;
    check("data: hello\n\n", "message|-|-1|hello\n");
    check("event: ping\ndata: x\n\ndata: y\n\n", "ping|-|-1|x\nmessage|-|-1|y\n");
    /* Only one leading space is removed; no colon means an empty value. */
    check("data:  two\n\ndata\n\n", "message|-|-1| two\nmessage|-|-1|\n");
    /* Unknown fields are ignored; an incomplete event at the end is not dispatched. */
    check("foo: bar\ndata: a\n\ndata: b\n", "message|-|-1|a\n");
}

static void
test_line_ends(void **state)
{
    (void)state;
    check("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "message|-|-1|a\nmessage|-|-1|b\nmessage|-|-1|c\n");
    /* CR then LF split across feeds is one line end, not two (checked at every split). */
    check("data: x\r\ndata: y\r\n\r\n", "message|-|-1|x\ny\n");
    /* CR CR is a blank line. */
    check("data: z\r\r", "message|-|-1|z\n");
}

static void
test_multiline_data(void **state)
{
    (void)state;
    check("data: line1\ndata: line2\ndata:\ndata: line4\n\n", "message|-|-1|line1\nline2\n\nline4\n");
}

static void
test_priming_event(void **state)
{
    capture_t cap;
    mcplex_sse_parser_t *p;

    (void)state;
    /* MCP priming event: an id and an empty data field is dispatched with data "". */
    check("id: 42\ndata:\n\n", "message|42|-1|\n");
    check("id: 42\ndata\n\n", "message|42|-1|\n");
    /* The id persists across events until changed; "id:" clears it. */
    check("id: 7\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n",
          "message|7|-1|a\nmessage|7|-1|b\nmessage|-|-1|c\n");
    /* A block without data is not dispatched, but its id is still recorded. */
    memset(&cap, 0, sizeof(cap));
    p = mcplex_sse_parser_create(on_event, &cap, 0);
    assert_null(mcplex_sse_parser_last_event_id(p));
    assert_int_equal(mcplex_sse_parser_feed(p, "id: only\n\n", 10), 0);
    assert_int_equal(cap.count, 0);
    assert_string_equal(mcplex_sse_parser_last_event_id(p), "only");
    assert_int_equal(mcplex_sse_parser_feed(p, "data: d\n\n", 9), 0);
    assert_string_equal(cap.text, "message|only|-1|d\n");
    mcplex_sse_parser_destroy(p);
}

static void
test_id_with_nul_ignored(void **state)
{
    static const char in[] = "id: good\ndata: a\n\nid: b\0d\ndata: b\n\n";

    (void)state;
    check_len(in, sizeof(in) - 1, "message|good|-1|a\nmessage|good|-1|b\n");
}

static void
test_comments(void **state)
{
    (void)state;
    check(": keep-alive\n\n: another comment\ndata: x\n: inside\n\n", "message|-|-1|x\n");
    check(":\n:\r\n:\rdata: y\n\n", "message|-|-1|y\n");
}

static void
test_bom(void **state)
{
    (void)state;
    check("\xEF\xBB\xBF" "data: bom\n\n", "message|-|-1|bom\n");
    /* Only one BOM is skipped; a second one is part of the field name (and so unknown). */
    check("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\ndata: y\n\n", "message|-|-1|y\n");
    /* A partial BOM is ordinary input. */
    check("\xEF" "data: x\n\ndata: y\n\n", "message|-|-1|y\n");
}

static void
test_retry(void **state)
{
    capture_t cap;
    mcplex_sse_parser_t *p;

    (void)state;
    check("retry: 3000\ndata: a\n\ndata: b\n\n", "message|-|3000|a\nmessage|-|-1|b\n");
    /* Digits only. */
    check("retry: 30x\ndata: a\n\nretry: -1\ndata: b\n\nretry:\ndata: c\n\nretry: 1 \ndata: d\n\n",
          "message|-|-1|a\nmessage|-|-1|b\nmessage|-|-1|c\nmessage|-|-1|d\n");
    /* A retry-only block is not dispatched but is reported. */
    memset(&cap, 0, sizeof(cap));
    p = mcplex_sse_parser_create(on_event, &cap, 0);
    assert_int_equal(mcplex_sse_parser_retry_ms(p), -1);
    assert_int_equal(mcplex_sse_parser_feed(p, "retry: 500\n\n", 12), 0);
    assert_int_equal(cap.count, 0);
    assert_int_equal(mcplex_sse_parser_retry_ms(p), 500);
    mcplex_sse_parser_destroy(p);
}

static void
test_cap(void **state)
{
    char big[300];
    capture_t cap;

    (void)state;
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\n';
    /* 292 bytes of data: fine under 1000, refused under 100, whatever the split. */
    assert_int_equal(run(big, sizeof(big), sizeof(big), 0, 1000, &cap), 0);
    assert_int_equal(cap.count, 1);
    assert_int_equal(run(big, sizeof(big), sizeof(big), 0, 100, &cap), -1);
    assert_int_equal(cap.count, 0);
    assert_int_equal(run(big, sizeof(big), 50, 0, 100, &cap), -1);
    assert_int_equal(run(big, sizeof(big), 0, 7, 100, &cap), -1);
    /* Many small data lines add up. */
    {
        char many[600];
        size_t n = 0;
        while (n + 8 < sizeof(many)) {
            memcpy(many + n, "data: 1\n", 8);
            n += 8;
        }
        many[n++] = '\n';
        assert_int_equal(run(many, n, n, 0, 100, &cap), -1);
        assert_int_equal(run(many, n, n, 0, 10000, &cap), 0);
        assert_int_equal(cap.count, 1);
    }
    /* Comments are skipped without buffering, so a long comment is not over the cap. */
    {
        char comment[500];
        memset(comment, 'c', sizeof(comment));
        comment[0] = ':';
        comment[sizeof(comment) - 1] = '\n';
        assert_int_equal(run(comment, sizeof(comment), 0, 3, 100, &cap), 0);
    }
    /* After a failure the parser refuses more input. */
    {
        mcplex_sse_parser_t *p = mcplex_sse_parser_create(on_event, &cap, 10);
        assert_int_equal(mcplex_sse_parser_feed(p, "data: 0123456789abc\n", 20), -1);
        assert_int_equal(mcplex_sse_parser_feed(p, "\n", 1), -1);
        mcplex_sse_parser_destroy(p);
    }
}

static void
on_event_destroy(void *arg, const mcplex_sse_event_t *ev)
{
    mcplex_sse_parser_t **pp = arg;

    mcplex_sse_parser_destroy(*pp);
}

static void
test_destroy_from_callback(void **state)
{
    mcplex_sse_parser_t *p;

    (void)state;
    p = mcplex_sse_parser_create(on_event_destroy, &p, 0);
    assert_int_equal(mcplex_sse_parser_feed(p, "data: a\n\ndata: b\n\n", 18), 0);
    /* No leak and no use after free (ASan). */
}

static void
test_writer(void **state)
{
    struct evbuffer *out = evbuffer_new();
    capture_t cap;
    char text[512];
    size_t len;

    (void)state;
    mcplex_sse_write_event(out, "5", "message", "{\"a\":1}", 7);
    mcplex_sse_write_event(out, NULL, NULL, "l1\nl2\r\nl3\rl4", 12);
    mcplex_sse_write_event(out, "9", NULL, "", 0);
    mcplex_sse_write_event(out, "bad\nid", "ev\r\nx", "end\n", 4);
    len = evbuffer_get_length(out);
    assert_true(len < sizeof(text));
    evbuffer_remove(out, text, len);
    text[len] = '\0';
    assert_string_equal(text, "id: 5\nevent: message\ndata: {\"a\":1}\n\n"
                              "data: l1\ndata: l2\ndata: l3\ndata: l4\n\n"
                              "id: 9\ndata: \n\n"
                              "id: bad\nevent: ev\ndata: end\ndata: \n\n");
    /* What the writer writes, the parser reads back. */
    assert_int_equal(run(text, len, len, 0, 0, &cap), 0);
    assert_string_equal(cap.text, "message|5|-1|{\"a\":1}\nmessage|5|-1|l1\nl2\nl3\nl4\n"
                                  "message|9|-1|\nev|bad|-1|end\n\n");
    evbuffer_free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_priming_event),
        cmocka_unit_test(test_id_with_nul_ignored),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_destroy_from_callback),
        cmocka_unit_test(test_writer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
