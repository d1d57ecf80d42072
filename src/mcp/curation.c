/*
 * curation.c - tool curation per target (see curation.h). Pure code, any thread.
 */
#include "mcp/curation.h"

#include <fnmatch.h>
#include <string.h>

static int
matches_any(char *const *patterns, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0)
            return 1;
    return 0;
}

static const mcplex_tool_override_t *
override_of(const mcplex_mcp_target_t *t, const char *tool)
{
    for (size_t i = 0; i < t->n_tool_overrides; i++)
        if (strcmp(t->tool_overrides[i].tool, tool) == 0)
            return &t->tool_overrides[i];
    return NULL;
}

static int
allowed(const mcplex_mcp_target_t *t, const char *name)
{
    if (t->n_tool_allow > 0 && !matches_any(t->tool_allow, t->n_tool_allow, name))
        return 0;
    return !matches_any(t->tool_deny, t->n_tool_deny, name);
}

int
mcplex_curation_expose(const mcplex_mcp_target_t *t, const char *name, const char **exposed,
                       const char **description)
{
    const mcplex_tool_override_t *o;

    if (!allowed(t, name))
        return 0;
    o = override_of(t, name);
    *exposed = o != NULL && o->name != NULL ? o->name : name;
    *description = o != NULL ? o->description : NULL;
    return 1;
}

const char *
mcplex_curation_resolve(const mcplex_mcp_target_t *t, const char *exposed)
{
    const mcplex_tool_override_t *o;

    /* A renamed tool answers to its new name only. */
    for (size_t i = 0; i < t->n_tool_overrides; i++) {
        o = &t->tool_overrides[i];
        if (o->name != NULL && strcmp(o->name, exposed) == 0)
            return allowed(t, o->tool) ? o->tool : NULL;
    }
    o = override_of(t, exposed);
    if (o != NULL && o->name != NULL)
        return NULL;
    return allowed(t, exposed) ? exposed : NULL;
}
