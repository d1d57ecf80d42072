/*
 * mem.c - allocation helpers that abort on OOM (see mem.h). Thread: any.
 */
#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
mcplex_fatal(const char *file, int line, const char *msg)
{
    fprintf(stderr, "fatal: %s:%d: %s\n", file, line, msg);
    abort();
}

void *
mcplex_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return p;
}

void *
mcplex_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return p;
}

void *
mcplex_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return q;
}

char *
mcplex_strdup(const char *s)
{
    return s != NULL ? mcplex_strndup(s, strlen(s)) : NULL;
}

char *
mcplex_strndup(const char *s, size_t n)
{
    char *p;

    if (s == NULL)
        return NULL;
    p = mcplex_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
mcplex_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *out;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        mcplex_fatal(__FILE__, __LINE__, "bad format");
    out = mcplex_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}
