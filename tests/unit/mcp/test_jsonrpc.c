/*
 * test_jsonrpc.c - unit tests of the JSON-RPC codec (src/mcp/jsonrpc.c): raw id scanning,
 * classification, error codes, id restoration and reply builders. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/jsonrpc.h"

/* scan_id on a NUL-terminated string; returns the malloc'ed result. */
static char *
scan(const char *text)
{
    return mcplex_jsonrpc_scan_id(text, strlen(text));
}

static void
assert_scan(const char *text, const char *expected)
{
    char *id = scan(text);

    if (expected == NULL) {
        if (id != NULL)
            fail_msg("scan_id(%s) = %s, expected none", text, id);
    } else {
        if (id == NULL)
            fail_msg("scan_id(%s) = none, expected %s", text, expected);
        assert_string_equal(id, expected);
    }
    free(id);
}

static void
test_scan_id_values(void **state)
{
    assert_scan("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", "7");
    assert_scan("{\"id\":12345678901234567890}", "12345678901234567890");
    assert_scan("{\"id\":-12345678901234567890123}", "-12345678901234567890123");
    assert_scan("{\"id\":1.0}", "1.0");
    assert_scan("{\"id\":1e3}", "1e3");
    assert_scan("{\"id\":-0.5E-7}", "-0.5E-7");
    assert_scan("{\"id\":\"x\"}", "\"x\"");
    assert_scan("{\"id\":\"a\\\"b\\\\c\\u00e9\\/\"}", "\"a\\\"b\\\\c\\u00e9\\/\"");
    assert_scan("{\"id\":\"\"}", "\"\"");
    /* Whitespace around everything, trimmed from the token. */
    assert_scan(" \r\n\t{ \"jsonrpc\" : \"2.0\" ,\n  \"id\"  :\t 42 \n, \"method\":\"x\"} ", "42");
    /* UTF-8 BOM, as cJSON accepts. */
    assert_scan("\xEF\xBB\xBF{\"id\":3}", "3");
    /* The key written with escapes is still "id". */
    assert_scan("{\"\\u0069d\":5}", "5");
    assert_scan("{\"i\\u0064\":\"q\"}", "\"q\"");
}

static void
test_scan_id_not_fooled(void **state)
{
    /* "id" inside params, at depth 2 and deeper, before the real one. */
    assert_scan("{\"params\":{\"id\":99,\"x\":[{\"id\":1}]},\"id\":2}", "2");
    assert_scan("{\"params\":[[[{\"id\":\"deep\"}]]],\"method\":\"m\"}", NULL);
    /* "id" inside string values and keys. */
    assert_scan("{\"method\":\"\\\"id\\\":1\",\"id\":\"real\"}", "\"real\"");
    assert_scan("{\"x\":\"{\\\"id\\\":1}\",\"method\":\"m\"}", NULL);
    assert_scan("{\"xid\":1,\"idx\":2,\"ID\":3,\"id \":4}", NULL);
    assert_scan("{\"id\\u0000\":1}", NULL);
    /* Brackets inside strings do not change the depth. */
    assert_scan("{\"a\":\"}}]]{{\",\"b\":[\"]\",{\"c\":\"}\"}],\"id\":11}", "11");
    /* Literals and numbers before the id. */
    assert_scan("{\"a\":true,\"b\":false,\"c\":null,\"d\":-1.5e+3,\"e\":{},\"f\":[],\"id\":\"z\"}", "\"z\"");
    /* First id wins (parse() refuses duplicates). */
    assert_scan("{\"id\":1,\"id\":2}", "1");
}

static void
test_scan_id_absent_or_unusable(void **state)
{
    assert_scan("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL);
    assert_scan("{\"id\":null}", NULL);
    assert_scan("{\"id\":true}", NULL);
    assert_scan("{\"id\":{\"a\":1}}", NULL);
    assert_scan("{\"id\":[1]}", NULL);
    assert_scan("{}", NULL);
    assert_scan("[{\"id\":1}]", NULL);
    assert_scan("\"id\"", NULL);
    assert_scan("", NULL);
    assert_scan("{\"id\":01}", NULL);
    assert_scan("{\"id\":1.}", NULL);
    assert_scan("{\"id\":-}", NULL);
    assert_scan("{\"id\":\"unterminated}", NULL);
    assert_scan("{\"id\":\"bad \\x escape\"}", NULL);
    assert_scan("{\"a\":[1,2}, \"id\":1}", NULL);
    assert_scan("{\"a\":{\"b\":1], \"id\":1}", NULL);
    assert_scan("{\"id\" 1}", NULL);
    assert_scan("{\"a\":1 \"id\":1}", NULL);
    /* Length is honoured: the id lies past |len|. */
    assert_null(mcplex_jsonrpc_scan_id("{\"a\":1,\"id\":1}", 8));
    assert_null(mcplex_jsonrpc_scan_id(NULL, 0));
}

static void
test_scan_id_deep_nesting(void **state)
{
    size_t depth = 5000, i, n = 0;
    char *text = malloc(depth * 2 + 64);

    n += (size_t)sprintf(text + n, "{\"p\":");
    for (i = 0; i < depth; i++)
        text[n++] = '[';
    for (i = 0; i < depth; i++)
        text[n++] = ']';
    n += (size_t)sprintf(text + n, ",\"id\":1}");
    /* Deeper than the scanner follows: no id, and no crash. */
    assert_null(mcplex_jsonrpc_scan_id(text, n));
    free(text);

    assert_scan("{\"p\":[[[[[[[[[[{\"q\":[{}]}]]]]]]]]]],\"id\":1}", "1");
}

/* Parses |text|, asserting the return code; returns the message (caller disposes). */
static mcplex_jsonrpc_msg_t
parse(const char *text, int expect_rc)
{
    mcplex_jsonrpc_msg_t msg;
    const char *why = "unset";
    int rc = mcplex_jsonrpc_parse(text, strlen(text), &msg, &why);

    if (rc != expect_rc)
        fail_msg("parse(%s) = %d (%s), expected %d", text, rc, why ? why : "-", expect_rc);
    if (rc == 0) {
        assert_null(why);
        assert_non_null(msg.root);
    } else {
        assert_non_null(why);
        assert_null(msg.root);
    }
    return msg;
}

static void
test_parse_request(void **state)
{
    mcplex_jsonrpc_msg_t m;

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_REQUEST);
    assert_string_equal(m.method, "tools/call");
    assert_true(cJSON_IsObject(m.params));
    assert_string_equal(m.id_raw, "1");
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,\"method\":\"ping\"}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_REQUEST);
    assert_null(m.params);
    assert_string_equal(m.id_raw, "12345678901234567890");
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"method\":\"ping\",\"params\":[]}", 0);
    assert_string_equal(m.id_raw, "\"a\\\"b\"");
    assert_true(cJSON_IsArray(m.params));
    mcplex_jsonrpc_msg_dispose(&m);

    /* "id" inside params does not make a notification a request. */
    m = parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"id\":3}}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_NOTIFICATION);
    assert_null(m.id_raw);
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_NOTIFICATION);
    assert_string_equal(m.method, "notifications/initialized");
    mcplex_jsonrpc_msg_dispose(&m);

    /* Surrounding whitespace is fine; a length that excludes trailing bytes too. */
    m = parse("  {\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"ping\"}\r\n", 0);
    assert_string_equal(m.id_raw, "1.0");
    mcplex_jsonrpc_msg_dispose(&m);
    {
        const char *t = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}GARBAGE";
        const char *why;

        assert_int_equal(mcplex_jsonrpc_parse(t, strlen(t) - 7, &m, &why), 0);
        assert_string_equal(m.id_raw, "4");
        mcplex_jsonrpc_msg_dispose(&m);
    }
}

static void
test_parse_responses(void **state)
{
    mcplex_jsonrpc_msg_t m;

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"result\":{\"tools\":[]}}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_RESULT);
    assert_true(cJSON_IsObject(m.result));
    assert_string_equal(m.id_raw, "\"s-1\"");
    assert_null(m.method);
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":null}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_RESULT);
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":9,"
              "\"error\":{\"code\":-32601,\"message\":\"nope\",\"data\":1}}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_ERROR);
    assert_true(cJSON_IsObject(m.error));
    assert_string_equal(m.id_raw, "9");
    mcplex_jsonrpc_msg_dispose(&m);

    /* An error may have a null id (the request could not be read). */
    m = parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}", 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_ERROR);
    assert_null(m.id_raw);
    mcplex_jsonrpc_msg_dispose(&m);
}

static void
test_parse_invalid_shapes(void **state)
{
    static const char *const bad[] = {
        "{\"id\":1,\"method\":\"ping\"}",                                   /* no jsonrpc */
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",               /* wrong version */
        "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}",                   /* version not a string */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",                      /* method not a string */
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",            /* null request id */
        "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",            /* bool id */
        "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",              /* object id */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}",  /* scalar params */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"result\":{}}",    /* method + result */
        "{\"jsonrpc\":\"2.0\"}",                                            /* nothing */
        "{\"jsonrpc\":\"2.0\",\"id\":1}",                                   /* no result/error */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"m\"}}",
        "{\"jsonrpc\":\"2.0\",\"result\":{}}",                              /* response without id */
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}",                  /* result with null id */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}",                 /* error not an object */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\"}}",     /* no code */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"m\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1e12,\"message\":\"m\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",            /* no message */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":2}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}",       /* duplicate id */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"method\":\"b\"}",  /* duplicate method */
        "{\"jsonrpc\":\"2.0\",\"id\\u0000\":1,\"method\":\"ping\"}",        /* cJSON sees "id" */
        "\"just a string\"",
        "42",
        "null",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mcplex_jsonrpc_msg_t m = parse(bad[i], MCPLEX_JSONRPC_INVALID_REQUEST);

        mcplex_jsonrpc_msg_dispose(&m);
    }
}

static void
test_parse_invalid_keeps_id(void **state)
{
    mcplex_jsonrpc_msg_t m;

    m = parse("{\"jsonrpc\":\"1.0\",\"id\":\"keep\",\"method\":\"ping\"}", MCPLEX_JSONRPC_INVALID_REQUEST);
    assert_string_equal(m.id_raw, "\"keep\"");
    mcplex_jsonrpc_msg_dispose(&m);

    m = parse("{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":{}}", MCPLEX_JSONRPC_INVALID_REQUEST);
    assert_string_equal(m.id_raw, "77");
    mcplex_jsonrpc_msg_dispose(&m);

    /* Ambiguous ids are never reported. */
    m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", MCPLEX_JSONRPC_INVALID_REQUEST);
    assert_null(m.id_raw);
    mcplex_jsonrpc_msg_dispose(&m);
}

static void
test_parse_errors(void **state)
{
    static const char *const garbage[] = {
        "", "   ", "{", "{\"jsonrpc\":\"2.0\",", "not json", "{\"a\":1}}", "{\"a\":1} x", "{} {}",
        "{\"id\":1,}", "\x01\x02\x03",
    };
    const char *why = NULL;
    mcplex_jsonrpc_msg_t m;
    size_t i;

    for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        m = parse(garbage[i], MCPLEX_JSONRPC_PARSE_ERROR);
        assert_null(m.id_raw);
        mcplex_jsonrpc_msg_dispose(&m);
    }
    /* Arrays (batches) are valid JSON but not accepted; nothing is filled. */
    m = parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCPLEX_JSONRPC_INVALID_REQUEST);
    assert_null(m.id_raw);
    mcplex_jsonrpc_msg_dispose(&m);
    assert_int_equal(mcplex_jsonrpc_parse("[]", 2, &m, &why), MCPLEX_JSONRPC_INVALID_REQUEST);
    assert_string_equal(why, "batches are not supported");
    mcplex_jsonrpc_msg_dispose(&m);
    /* A NULL |why| is allowed. */
    assert_int_equal(mcplex_jsonrpc_parse("x", 1, &m, NULL), MCPLEX_JSONRPC_PARSE_ERROR);
    mcplex_jsonrpc_msg_dispose(&m);
    /* Dispose twice is harmless. */
    mcplex_jsonrpc_msg_dispose(&m);
    mcplex_jsonrpc_msg_dispose(NULL);
}

static void
test_set_id_roundtrip(void **state)
{
    static const char *const ids[] = {
        "12345678901234567890", "1.0", "1e3", "-0", "\"x\"", "\"a\\\"b\\u00e9\\/\"",
        "0.1000000000000000055511",
    };
    size_t i;

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char in[256], expect[256], *out;
        mcplex_jsonrpc_msg_t m;

        snprintf(in, sizeof(in), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}", ids[i]);
        m = parse(in, 0);
        assert_string_equal(m.id_raw, ids[i]);
        /* Upstream gets our own id... */
        mcplex_jsonrpc_set_id(m.root, "1001");
        out = mcplex_json_print(m.root);
        assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":1001,\"method\":\"ping\"}");
        free(out);
        /* ...and the client's id comes back byte for byte, in the same place. */
        mcplex_jsonrpc_set_id(m.root, ids[i]);
        out = mcplex_json_print(m.root);
        snprintf(expect, sizeof(expect), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}", ids[i]);
        assert_string_equal(out, expect);
        free(out);
        mcplex_jsonrpc_msg_dispose(&m);
    }
}

static void
test_set_id_adds_and_nulls(void **state)
{
    mcplex_jsonrpc_msg_t m = parse("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}", 0);
    char *out;

    mcplex_jsonrpc_set_id(m.root, "\"new\"");
    out = mcplex_json_print(m.root);
    assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":\"new\"}");
    free(out);
    mcplex_jsonrpc_set_id(m.root, NULL);
    out = mcplex_json_print(m.root);
    assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":null}");
    free(out);
    mcplex_jsonrpc_msg_dispose(&m);
}

static void
test_error_text(void **state)
{
    static const char tricky[] = "bad \"x\" \\ \n\t\x01 caf\xC3\xA9";
    cJSON *data = cJSON_CreateObject();
    char *t;
    mcplex_jsonrpc_msg_t m;

    t = mcplex_jsonrpc_error_text("12345678901234567890", MCPLEX_JSONRPC_METHOD_NOT_FOUND, "Method not found",
                                  NULL);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,"
                           "\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}");
    free(t);

    t = mcplex_jsonrpc_error_text(NULL, MCPLEX_JSONRPC_PARSE_ERROR, "Parse error", NULL);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":null,"
                           "\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}");
    free(t);

    /* Quotes, backslashes, control characters and UTF-8 in the message. */
    cJSON_AddStringToObject(data, "target", "every\"thing");
    t = mcplex_jsonrpc_error_text("\"r\"", MCPLEX_JSONRPC_INTERNAL_ERROR, tricky, data);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"error\":{\"code\":-32603,"
                           "\"message\":\"bad \\\"x\\\" \\\\ \\n\\t\\u0001 caf\xC3\xA9\","
                           "\"data\":{\"target\":\"every\\\"thing\"}}}");
    /* It parses back as an error response with the same id. */
    m = parse(t, 0);
    assert_int_equal(m.kind, MCPLEX_JSONRPC_ERROR);
    assert_string_equal(m.id_raw, "\"r\"");
    assert_string_equal(cJSON_GetObjectItem(m.error, "message")->valuestring, tricky);
    mcplex_jsonrpc_msg_dispose(&m);
    free(t);
    cJSON_Delete(data); /* still ours: error_text copies it */

    t = mcplex_jsonrpc_error_text("1", MCPLEX_JSONRPC_INVALID_PARAMS, NULL, NULL);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"\"}}");
    free(t);
}

static void
test_result_text(void **state)
{
    cJSON *result = cJSON_CreateObject();
    char *t;

    cJSON_AddArrayToObject(result, "tools");
    t = mcplex_jsonrpc_result_text("\"abc\"", result); /* takes ownership */
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"result\":{\"tools\":[]}}");
    free(t);

    t = mcplex_jsonrpc_result_text("0", NULL);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}");
    free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_id_values),
        cmocka_unit_test(test_scan_id_not_fooled),
        cmocka_unit_test(test_scan_id_absent_or_unusable),
        cmocka_unit_test(test_scan_id_deep_nesting),
        cmocka_unit_test(test_parse_request),
        cmocka_unit_test(test_parse_responses),
        cmocka_unit_test(test_parse_invalid_shapes),
        cmocka_unit_test(test_parse_invalid_keeps_id),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_set_id_roundtrip),
        cmocka_unit_test(test_set_id_adds_and_nulls),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_result_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
