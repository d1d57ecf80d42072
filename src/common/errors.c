/*
 * errors.c - collected validation errors (see errors.h).
 */
#include "common/errors.h"

#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
mcplex_errors_init(mcplex_errors_t *errs)
{
    memset(errs, 0, sizeof(*errs));
}

void
mcplex_errors_dispose(mcplex_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->items[i]);
    free(errs->items);
    memset(errs, 0, sizeof(*errs));
}

static void
errors_push(mcplex_errors_t *errs, char *msg)
{
    if (errs->count == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 8;
        errs->items = mcplex_realloc(errs->items, errs->cap * sizeof(char *));
    }
    errs->items[errs->count++] = msg;
}

void
mcplex_errors_add(mcplex_errors_t *errs, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path != NULL && path[0] != '\0')
        errors_push(errs, mcplex_sprintf("%s: %s", path, msg));
    else
        errors_push(errs, mcplex_strdup(msg));
}

void
mcplex_errors_move(mcplex_errors_t *to, mcplex_errors_t *from)
{
    for (size_t i = 0; i < from->count; i++)
        errors_push(to, from->items[i]);
    free(from->items);
    memset(from, 0, sizeof(*from));
}

char *
mcplex_errors_join(const mcplex_errors_t *errs, const char *sep)
{
    size_t len = 1, seplen = strlen(sep);
    char *out, *p;

    for (size_t i = 0; i < errs->count; i++)
        len += strlen(errs->items[i]) + seplen;
    p = out = mcplex_malloc(len);
    for (size_t i = 0; i < errs->count; i++) {
        size_t n = strlen(errs->items[i]);
        if (i > 0) {
            memcpy(p, sep, seplen);
            p += seplen;
        }
        memcpy(p, errs->items[i], n);
        p += n;
    }
    *p = '\0';
    return out;
}
