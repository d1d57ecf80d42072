/*
 * test_naming.c - unit tests of tool/prompt name and resource URI prefixing
 * (src/mcp/naming.c). Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/naming.h"

static const char *const targets[] = {"a", "everything", "time", "t", "memory-1", "x.y"};
#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

static void
test_join(void **state)
{
    char *s;

    s = mcplex_naming_join_name("everything", "_", "get_env");
    assert_string_equal(s, "everything_get_env");
    free(s);
    s = mcplex_naming_join_name("a", "__", "b__c");
    assert_string_equal(s, "a__b__c");
    free(s);
    s = mcplex_naming_join_uri("everything", "demo://resource/{id}");
    assert_string_equal(s, "everything+demo://resource/{id}");
    free(s);
}

static void
test_split_first_separator(void **state)
{
    const char *rest = NULL;

    /* "__": target "a", tool "b__c" (the remainder is verbatim). */
    assert_int_equal(mcplex_naming_split_name("a__b__c", "__", targets, N_TARGETS, &rest), 0);
    assert_string_equal(rest, "b__c");
    /* "_": tool names with underscores. */
    assert_int_equal(mcplex_naming_split_name("everything_get_env", "_", targets, N_TARGETS, &rest), 1);
    assert_string_equal(rest, "get_env");
    assert_int_equal(mcplex_naming_split_name("everything_get_tiny_image", "_", targets, N_TARGETS, &rest),
                     1);
    assert_string_equal(rest, "get_tiny_image");
    assert_int_equal(mcplex_naming_split_name("time_get_current_time", "_", targets, N_TARGETS, &rest), 2);
    assert_string_equal(rest, "get_current_time");
    assert_int_equal(mcplex_naming_split_name("memory-1__read_graph", "__", targets, N_TARGETS, &rest), 4);
    assert_string_equal(rest, "read_graph");
    assert_int_equal(mcplex_naming_split_name("x.y__a.b", "__", targets, N_TARGETS, &rest), 5);
    assert_string_equal(rest, "a.b");
    /* Empty remainder is still a split (the upstream decides whether "" exists). */
    assert_int_equal(mcplex_naming_split_name("a__", "__", targets, N_TARGETS, &rest), 0);
    assert_string_equal(rest, "");
    /* A NULL |rest| is allowed. */
    assert_int_equal(mcplex_naming_split_name("t_x", "_", targets, N_TARGETS, NULL), 3);
}

static void
test_split_unknown(void **state)
{
    const char *rest = "untouched";

    /* Unknown target, prefix of a known target, no separator, separator first. */
    assert_int_equal(mcplex_naming_split_name("nope__echo", "__", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("every_echo", "_", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("everythingecho", "_", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("__echo", "__", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("", "__", targets, N_TARGETS, &rest), -1);
    /* With "__", "everything_echo" has no separator at all. */
    assert_int_equal(mcplex_naming_split_name("everything_echo", "__", targets, N_TARGETS, &rest), -1);
    /* Exact match only: "ab" is not "a"... */
    assert_int_equal(mcplex_naming_split_name("ab__c", "__", targets, N_TARGETS, &rest), -1);
    /* ...no targets, empty or NULL separator. */
    assert_int_equal(mcplex_naming_split_name("a__b", "__", NULL, 0, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("a__b", "", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name("a__b", NULL, targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_name(NULL, "__", targets, N_TARGETS, &rest), -1);
    assert_string_equal(rest, "untouched");
}

static void
test_split_uri(void **state)
{
    const char *rest = NULL;

    assert_int_equal(mcplex_naming_split_uri("everything+demo://x", targets, N_TARGETS, &rest), 1);
    assert_string_equal(rest, "demo://x");
    /* Split at the first '+': the scheme "git+ssh" survives. */
    assert_int_equal(mcplex_naming_split_uri("t+git+ssh://h", targets, N_TARGETS, &rest), 3);
    assert_string_equal(rest, "git+ssh://h");
    assert_int_equal(mcplex_naming_split_uri("everything+demo://resource/{id}", targets, N_TARGETS, &rest),
                     1);
    assert_string_equal(rest, "demo://resource/{id}");
    assert_int_equal(mcplex_naming_split_uri("a+file:///tmp/a+b", targets, N_TARGETS, &rest), 0);
    assert_string_equal(rest, "file:///tmp/a+b");
    rest = NULL;
    assert_int_equal(mcplex_naming_split_uri("demo://x", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_uri("git+ssh://h", targets, N_TARGETS, &rest), -1);
    assert_int_equal(mcplex_naming_split_uri("+demo://x", targets, N_TARGETS, &rest), -1);
    assert_null(rest);
}

static void
assert_valid(const char *name, const char *sep)
{
    char why[128] = "";

    if (!mcplex_naming_target_name_valid(name, sep, why, sizeof(why)))
        fail_msg("\"%s\" with separator \"%s\" refused: %s", name, sep, why);
}

static void
assert_invalid(const char *name, const char *sep)
{
    char why[128] = "";

    if (mcplex_naming_target_name_valid(name, sep, why, sizeof(why)))
        fail_msg("\"%s\" with separator \"%s\" accepted", name ? name : "(null)", sep);
    assert_true(why[0] != '\0');
}

static void
test_target_names(void **state)
{
    char big[66], tiny[4];

    assert_valid("everything", "_");
    assert_valid("everything", "__");
    assert_valid("memory-1", "_");
    assert_valid("x.y", "__");
    assert_valid("A", "__");
    assert_valid("my_server", "__"); /* a single '_' is fine with "__" */
    assert_valid("0abc", "__");

    assert_invalid("my_server", "_");   /* contains the separator */
    assert_invalid("my__server", "__"); /* contains the separator */
    assert_invalid("a_", "__");         /* "a___b" would split as "a" + "_b" */
    assert_invalid("_a", "__");
    assert_invalid("a+b", "__");        /* '+' splits URIs */
    assert_invalid("a b", "__");
    assert_invalid("a/b", "__");
    assert_invalid("caf\xC3\xA9", "__");
    assert_invalid("", "__");
    assert_invalid(NULL, "__");

    memset(big, 'a', 64);
    big[64] = '\0';
    assert_valid(big, "__");
    big[64] = 'a';
    big[65] = '\0';
    assert_invalid(big, "__");

    /* The reason is truncated to the buffer, never overflowing it; a NULL buffer is fine. */
    assert_false(mcplex_naming_target_name_valid("a b", "__", tiny, sizeof(tiny)));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_false(mcplex_naming_target_name_valid("a b", "__", NULL, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_split_first_separator),
        cmocka_unit_test(test_split_unknown),
        cmocka_unit_test(test_split_uri),
        cmocka_unit_test(test_target_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
