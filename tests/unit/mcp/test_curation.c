/*
 * test_curation.c - tool curation per target: allow/deny by name and glob, renames and
 * description overrides, and the reverse mapping used for tools/call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/curation.h"

static void
test_no_rules_exposes_everything(void **state)
{
    mcplex_mcp_target_t t = {.name = "t"};
    const char *exposed, *desc;

    (void)state;
    assert_int_equal(mcplex_curation_expose(&t, "anything", &exposed, &desc), 1);
    assert_string_equal(exposed, "anything");
    assert_null(desc);
    assert_string_equal(mcplex_curation_resolve(&t, "anything"), "anything");
}

static void
test_allow_then_deny_with_globs(void **state)
{
    char *allow[] = {"echo", "get-*"};
    char *deny[] = {"get-env"};
    mcplex_mcp_target_t t = {.name = "t", .tool_allow = allow, .n_tool_allow = 2, .tool_deny = deny,
                             .n_tool_deny = 1};
    const char *exposed, *desc;

    (void)state;
    assert_int_equal(mcplex_curation_expose(&t, "echo", &exposed, &desc), 1);
    assert_int_equal(mcplex_curation_expose(&t, "get-sum", &exposed, &desc), 1);
    assert_int_equal(mcplex_curation_expose(&t, "get-env", &exposed, &desc), 0);
    assert_int_equal(mcplex_curation_expose(&t, "trigger-x", &exposed, &desc), 0);
    assert_non_null(mcplex_curation_resolve(&t, "get-sum"));
    assert_null(mcplex_curation_resolve(&t, "get-env"));
    assert_null(mcplex_curation_resolve(&t, "trigger-x"));
}

static void
test_rename_and_describe(void **state)
{
    mcplex_tool_override_t o[] = {{.tool = "whoami", .name = "identity", .description = "Who answers"},
                                  {.tool = "add", .name = NULL, .description = "Sum of two numbers"}};
    char *deny[] = {"secret*"};
    mcplex_mcp_target_t t = {.name = "t", .tool_overrides = o, .n_tool_overrides = 2, .tool_deny = deny,
                             .n_tool_deny = 1};
    const char *exposed, *desc;

    (void)state;
    assert_int_equal(mcplex_curation_expose(&t, "whoami", &exposed, &desc), 1);
    assert_string_equal(exposed, "identity");
    assert_string_equal(desc, "Who answers");
    assert_int_equal(mcplex_curation_expose(&t, "add", &exposed, &desc), 1);
    assert_string_equal(exposed, "add");
    assert_string_equal(desc, "Sum of two numbers");
    /* A renamed tool answers to its new name only. */
    assert_string_equal(mcplex_curation_resolve(&t, "identity"), "whoami");
    assert_null(mcplex_curation_resolve(&t, "whoami"));
    assert_string_equal(mcplex_curation_resolve(&t, "add"), "add");
    /* Deny applies to the target's own name, whatever it is renamed to. */
    o[0].tool = "secret-tool";
    assert_null(mcplex_curation_resolve(&t, "identity"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_rules_exposes_everything),
        cmocka_unit_test(test_allow_then_deny_with_globs),
        cmocka_unit_test(test_rename_and_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
