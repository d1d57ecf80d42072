/*
 * naming.c - joining and splitting prefixed tool/prompt names and resource URIs, and the rule
 * that keeps target names splittable (see naming.h). Owns no state.
 *
 * Pure code, any thread.
 */
#include "mcp/naming.h"

#include <stdio.h>
#include <string.h>

#include "common/mem.h"

#define TARGET_NAME_MAX 64

char *
mcplex_naming_join_name(const char *target, const char *sep, const char *name)
{
    return mcplex_sprintf("%s%s%s", target, sep, name);
}

/* Index of the target named exactly |name| (|len| bytes), or -1. */
static int
find_target(const char *name, size_t len, const char *const *targets, size_t n_targets)
{
    size_t i;

    for (i = 0; i < n_targets; i++) {
        if (targets[i] != NULL && strlen(targets[i]) == len && memcmp(targets[i], name, len) == 0)
            return (int)i;
    }
    return -1;
}

int
mcplex_naming_split_name(const char *full, const char *sep, const char *const *targets, size_t n_targets,
                         const char **rest)
{
    const char *at;
    int idx;

    if (full == NULL || sep == NULL || *sep == '\0')
        return -1;
    at = strstr(full, sep);
    if (at == NULL)
        return -1;
    idx = find_target(full, (size_t)(at - full), targets, n_targets);
    if (idx >= 0 && rest != NULL)
        *rest = at + strlen(sep);
    return idx;
}

char *
mcplex_naming_join_uri(const char *target, const char *uri)
{
    return mcplex_sprintf("%s+%s", target, uri);
}

int
mcplex_naming_split_uri(const char *full, const char *const *targets, size_t n_targets, const char **rest)
{
    return mcplex_naming_split_name(full, "+", targets, n_targets, rest);
}

int
mcplex_naming_target_name_valid(const char *name, const char *sep, char *why, size_t why_len)
{
    const char *reason = NULL;
    size_t len, i;

    len = name != NULL ? strlen(name) : 0;
    if (len == 0) {
        reason = "target name is empty";
        goto fail;
    }
    if (len > TARGET_NAME_MAX) {
        reason = "target name is longer than 64 characters";
        goto fail;
    }
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-')) {
            reason = "target name may only contain A-Z a-z 0-9 . _ -";
            goto fail;
        }
    }
    if (sep != NULL && *sep != '\0' && strstr(name, sep) != NULL) {
        reason = "target name contains the name separator";
        goto fail;
    }
    if (name[0] == '_' || name[len - 1] == '_') {
        reason = "target name may not start or end with '_'";
        goto fail;
    }
    return 1;

fail:
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", reason);
    return 0;
}
