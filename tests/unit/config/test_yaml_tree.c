/*
 * test_yaml_tree.c - unit tests of the config text -> cJSON loader (src/config/yaml_tree.c):
 * scalar resolution, numbers keeping their source text, tags, key order, anchors, aliases and
 * merge keys, the alias-bomb and depth guards, JSON input, and error messages with line and
 * column. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/mem.h"
#include "config/yaml_tree.h"

static cJSON *
parse_ok(const char *text)
{
    mcplex_errors_t errs;
    cJSON *root;

    mcplex_errors_init(&errs);
    root = mcplex_yaml_parse(text, strlen(text), "test.yaml", &errs);
    if (root == NULL || errs.count != 0) {
        char *all = mcplex_errors_join(&errs, "; ");

        fail_msg("parse failed: %s", all);
    }
    mcplex_errors_dispose(&errs);
    return root;
}

/* Parses text that must fail; returns the joined errors (caller frees). */
static char *
parse_fail(const char *text)
{
    mcplex_errors_t errs;
    cJSON *root;
    char *all;

    mcplex_errors_init(&errs);
    root = mcplex_yaml_parse(text, strlen(text), "test.yaml", &errs);
    if (root != NULL)
        fail_msg("parse of \"%.60s\" succeeded", text);
    assert_true(errs.count > 0);
    all = mcplex_errors_join(&errs, "; ");
    mcplex_errors_dispose(&errs);
    return all;
}

static void
assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void
assert_number_text(const cJSON *item, double value, const char *text)
{
    assert_non_null(item);
    assert_true(cJSON_IsNumber(item));
    assert_true(item->valuedouble == value);
    assert_non_null(item->valuestring);
    assert_string_equal(item->valuestring, text);
}

static void
test_plain_scalars(void **state)
{
    cJSON *root = parse_ok("t1: true\nt2: True\nt3: TRUE\nf1: false\nf2: FALSE\n"
                           "n1: null\nn2: ~\nn3:\nn4: Null\n"
                           "yes_is_text: yes\non_is_text: on\n"
                           "i: 42\nneg: -7\nplus: +3\nf: -3.5e2\nhex: 0x1F\noct: 0o17\n"
                           "version: 1.10\nlead: 007\ndot: .5\n"
                           "word: hello world\nip: 127.0.0.1\nts: 2024-01-01\nport_colon: 3000:3001\n");

    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "t1")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "t2")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "t3")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "f1")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "f2")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "n1")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "n2")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "n3")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "n4")));
    assert_string_equal(cJSON_GetObjectItem(root, "yes_is_text")->valuestring, "yes");
    assert_string_equal(cJSON_GetObjectItem(root, "on_is_text")->valuestring, "on");
    assert_number_text(cJSON_GetObjectItem(root, "i"), 42, "42");
    assert_number_text(cJSON_GetObjectItem(root, "neg"), -7, "-7");
    assert_number_text(cJSON_GetObjectItem(root, "plus"), 3, "+3");
    assert_number_text(cJSON_GetObjectItem(root, "f"), -350, "-3.5e2");
    assert_number_text(cJSON_GetObjectItem(root, "hex"), 31, "0x1F");
    assert_number_text(cJSON_GetObjectItem(root, "oct"), 15, "0o17");
    /* The text survives where the double would lose it ("1.10" is not "1.1"). */
    assert_number_text(cJSON_GetObjectItem(root, "version"), 1.1, "1.10");
    assert_number_text(cJSON_GetObjectItem(root, "lead"), 7, "007");
    assert_number_text(cJSON_GetObjectItem(root, "dot"), 0.5, ".5");
    assert_string_equal(cJSON_GetObjectItem(root, "word")->valuestring, "hello world");
    assert_string_equal(cJSON_GetObjectItem(root, "ip")->valuestring, "127.0.0.1");
    assert_string_equal(cJSON_GetObjectItem(root, "ts")->valuestring, "2024-01-01");
    assert_string_equal(cJSON_GetObjectItem(root, "port_colon")->valuestring, "3000:3001");
    cJSON_Delete(root);
}

static void
test_quoted_and_tagged(void **state)
{
    cJSON *root = parse_ok("a: \"3000\"\nb: 'true'\nc: \"\"\nd: !!str 123\ne: !!int \"42\"\n"
                           "f: !!float '2.5'\ng: !!bool \"false\"\nh: !!null ''\ni: ! 12\n"
                           "j: |\n  123\nk: >-\n  folded\n  text\nl: !Custom 5\n");
    cJSON *item;

    item = cJSON_GetObjectItem(root, "a");
    assert_true(cJSON_IsString(item));
    assert_string_equal(item->valuestring, "3000");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "b")));
    assert_string_equal(cJSON_GetObjectItem(root, "c")->valuestring, "");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "d")));
    assert_string_equal(cJSON_GetObjectItem(root, "d")->valuestring, "123");
    assert_number_text(cJSON_GetObjectItem(root, "e"), 42, "42");
    assert_number_text(cJSON_GetObjectItem(root, "f"), 2.5, "2.5");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "g")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "h")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "i")));
    assert_string_equal(cJSON_GetObjectItem(root, "j")->valuestring, "123\n");
    assert_string_equal(cJSON_GetObjectItem(root, "k")->valuestring, "folded text");
    /* Application tags are ignored: resolved by content. */
    assert_number_text(cJSON_GetObjectItem(root, "l"), 5, "5");
    cJSON_Delete(root);
}

static void
test_bad_tagged_scalar(void **state)
{
    char *err = parse_fail("a: 1\nb: !!int abc\n");

    assert_contains(err, "test.yaml: line 2 column 4: 'abc' is not a !!int");
    free(err);
}

static void
test_key_order_and_key_text(void **state)
{
    cJSON *root = parse_ok("zeta: 1\nalpha: 2\n8080: port\ntrue: t\nnull: n\n\"quoted key\": q\n");
    const char *expect[] = {"zeta", "alpha", "8080", "true", "null", "quoted key"};
    size_t i = 0;

    for (const cJSON *c = root->child; c != NULL; c = c->next, i++) {
        assert_true(i < MCPLEX_ARRAY_SIZE(expect));
        assert_string_equal(c->string, expect[i]);
    }
    assert_int_equal(i, MCPLEX_ARRAY_SIZE(expect));
    cJSON_Delete(root);
}

static void
test_anchors_aliases_and_merge(void **state)
{
    cJSON *root = parse_ok("defaults: &d\n  timeout: 5s\n  retries: 3\n  tags: &t [a, b]\n"
                           "copy: *d\n"
                           "tags_again: *t\n"
                           "merged:\n  <<: *d\n  retries: 9\n  extra: x\n"
                           "multi:\n  <<: [{p: 1, q: 1}, {q: 2, r: 2}]\n"
                           "scalar: &s 8080\nport: *s\n");
    cJSON *copy, *merged, *multi;

    copy = cJSON_GetObjectItem(root, "copy");
    assert_string_equal(cJSON_GetObjectItem(copy, "timeout")->valuestring, "5s");
    assert_number_text(cJSON_GetObjectItem(copy, "retries"), 3, "3");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(copy, "tags")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "tags_again")), 2);
    merged = cJSON_GetObjectItem(root, "merged");
    /* The mapping's own keys win over merged ones; "<<" itself does not appear. */
    assert_number_text(cJSON_GetObjectItem(merged, "retries"), 9, "9");
    assert_string_equal(cJSON_GetObjectItem(merged, "timeout")->valuestring, "5s");
    assert_string_equal(cJSON_GetObjectItem(merged, "extra")->valuestring, "x");
    assert_null(cJSON_GetObjectItem(merged, "<<"));
    assert_int_equal(cJSON_GetArraySize(merged), 4);
    multi = cJSON_GetObjectItem(root, "multi");
    /* Earlier merge sources win. */
    assert_number_text(cJSON_GetObjectItem(multi, "q"), 1, "1");
    assert_number_text(cJSON_GetObjectItem(multi, "r"), 2, "2");
    assert_number_text(cJSON_GetObjectItem(root, "port"), 8080, "8080");
    cJSON_Delete(root);
}

static void
test_alias_bomb_refused(void **state)
{
    /* "Billion laughs": 9^9 nodes if expanded. */
    char *err = parse_fail("a: &a [x, x, x, x, x, x, x, x, x]\n"
                           "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                           "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                           "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                           "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                           "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                           "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                           "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n");

    assert_contains(err, "alias expansion");
    free(err);
}

static void
test_recursive_and_unknown_alias(void **state)
{
    char *err = parse_fail("a: &a [1, *a]\n");

    assert_contains(err, "unknown anchor 'a'");
    free(err);
    err = parse_fail("a: *nope\n");
    assert_contains(err, "test.yaml: line 1 column 4: unknown anchor 'nope'");
    free(err);
}

static void
test_depth_limit(void **state)
{
    char text[1200];
    char *err;
    size_t n = 0;

    for (int i = 0; i < 500; i++)
        text[n++] = '[';
    text[n] = '\0';
    err = parse_fail(text);
    assert_contains(err, "nesting deeper than");
    free(err);
    /* 100 levels are fine. */
    n = 0;
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n] = '\0';
    cJSON_Delete(parse_ok(text));
}

static void
test_malformed_yaml_reports_line(void **state)
{
    char *err = parse_fail("admin:\n  address: 1\nstatic_resources:\n  clusters: [a, b\n  other: 1\n");

    assert_contains(err, "test.yaml: line ");
    free(err);
    err = parse_fail("a: 1\n  b: 2\n");
    assert_contains(err, "test.yaml: line 2 column 4: mapping values are not allowed in this context");
    free(err);
    err = parse_fail("a:\n\t- b\n");
    assert_contains(err, "test.yaml: line 2 column 1: found character that cannot start any token");
    free(err);
}

static void
test_duplicate_and_complex_keys(void **state)
{
    char *err = parse_fail("name: a\nport: 1\nname: b\n");

    assert_contains(err, "test.yaml: line 3 column 1: duplicate key 'name'");
    free(err);
    err = parse_fail("? [a, b]\n: c\n");
    assert_contains(err, "mapping keys must be scalars");
    free(err);
    err = parse_fail("a: 1\n<<: 5\n");
    assert_contains(err, "line 2 column 1: the value of '<<' must be a mapping");
    free(err);
}

static void
test_json_input(void **state)
{
    cJSON *root = parse_ok("{\"a\": [1, 2.50, \"x\", true, null, {\"b\": \"c\"}],\n"
                           "\t\"port\": 3000, \"s\": \"esc\\\"aped\\u00e9\\/\", \"e\": {}, \"l\": []}\n");
    cJSON *a = cJSON_GetObjectItem(root, "a");

    assert_int_equal(cJSON_GetArraySize(a), 6);
    assert_number_text(cJSON_GetArrayItem(a, 0), 1, "1");
    assert_number_text(cJSON_GetArrayItem(a, 1), 2.5, "2.50");
    assert_string_equal(cJSON_GetArrayItem(a, 2)->valuestring, "x");
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(a, 3)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(a, 4)));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 5), "b")->valuestring, "c");
    assert_number_text(cJSON_GetObjectItem(root, "port"), 3000, "3000");
    assert_string_equal(cJSON_GetObjectItem(root, "s")->valuestring, "esc\"aped\xc3\xa9/");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(root, "e")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(root, "l")));
    cJSON_Delete(root);
}

static void
test_empty_and_multi_documents(void **state)
{
    const char *empties[] = {"", "\n\n", "# only a comment\n", "---\n", "--- ~\n"};
    cJSON *root;

    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(empties); i++) {
        root = parse_ok(empties[i]);
        assert_true(cJSON_IsObject(root));
        assert_null(root->child);
        cJSON_Delete(root);
    }
    root = parse_ok("---\na: 1\n---\nb: 2\n");
    assert_non_null(cJSON_GetObjectItem(root, "a"));
    assert_null(cJSON_GetObjectItem(root, "b"));
    cJSON_Delete(root);
    /* A top-level list is returned as is. */
    root = parse_ok("- 1\n- 2\n");
    assert_true(cJSON_IsArray(root));
    cJSON_Delete(root);
}

static void
test_not_nul_terminated(void **state)
{
    const char text[] = "a: 12345";
    mcplex_errors_t errs;
    cJSON *root;

    mcplex_errors_init(&errs);
    root = mcplex_yaml_parse(text, 5, NULL, &errs); /* "a: 12" */
    assert_non_null(root);
    assert_number_text(cJSON_GetObjectItem(root, "a"), 12, "12");
    cJSON_Delete(root);
    mcplex_errors_dispose(&errs);
}

static void
test_parse_file(void **state)
{
    char path[] = "mcplex_test_yaml_XXXXXX"; /* in the working directory (the build tree) */
    const char *text = "listeners:\n- name: l1\n  port: 3000\n";
    mcplex_errors_t errs;
    cJSON *root;
    char *all;
    int fd;

    mcplex_errors_init(&errs);
    root = mcplex_yaml_parse_file("/nonexistent/mcplex.yaml", &errs);
    assert_null(root);
    all = mcplex_errors_join(&errs, "; ");
    assert_contains(all, "/nonexistent/mcplex.yaml: cannot open: ");
    free(all);
    mcplex_errors_dispose(&errs);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    root = mcplex_yaml_parse_file(path, &errs);
    assert_non_null(root);
    assert_int_equal(errs.count, 0);
    assert_number_text(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "listeners"), 0),
                                           "port"),
                       3000, "3000");
    cJSON_Delete(root);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a: [1\n", 6), 6);
    close(fd);
    root = mcplex_yaml_parse_file(path, &errs);
    assert_null(root);
    all = mcplex_errors_join(&errs, "; ");
    assert_contains(all, path);
    assert_contains(all, ": line 2 column 1: ");
    free(all);
    mcplex_errors_dispose(&errs);
    unlink(path);
}

static void
test_invalid_utf8(void **state)
{
    char *err = parse_fail("a: \"\xff\xfe\"\n");

    assert_contains(err, "test.yaml: ");
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_scalars),
        cmocka_unit_test(test_quoted_and_tagged),
        cmocka_unit_test(test_bad_tagged_scalar),
        cmocka_unit_test(test_key_order_and_key_text),
        cmocka_unit_test(test_anchors_aliases_and_merge),
        cmocka_unit_test(test_alias_bomb_refused),
        cmocka_unit_test(test_recursive_and_unknown_alias),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_malformed_yaml_reports_line),
        cmocka_unit_test(test_duplicate_and_complex_keys),
        cmocka_unit_test(test_json_input),
        cmocka_unit_test(test_empty_and_multi_documents),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_invalid_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
