/*
 * mem.h - allocation helpers. Small allocations abort the process on OOM (as h2o does):
 * callers never check for NULL. Sizes a peer controls must be capped by config before they
 * reach these functions. Thread: any.
 */
#ifndef MCPLEX_COMMON_MEM_H
#define MCPLEX_COMMON_MEM_H

#include <stddef.h>

/* malloc/calloc/realloc that abort with a message on failure. Free with free(3). */
void *mcplex_malloc(size_t size);
void *mcplex_calloc(size_t n, size_t size);
void *mcplex_realloc(void *p, size_t size);
/* strdup/strndup that abort on failure; NULL in gives NULL out. Free with free(3). */
char *mcplex_strdup(const char *s);
char *mcplex_strndup(const char *s, size_t n);
/* Returns a malloc'ed formatted string (caller frees). */
char *mcplex_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Aborts the process with "file:line: message" on stderr; for invariant violations. */
void mcplex_fatal(const char *file, int line, const char *msg) __attribute__((noreturn));

/* Always-on invariant check (HAProxy BUG_ON). */
#define MCPLEX_BUG_ON(cond) \
    do { if (__builtin_expect(!!(cond), 0)) mcplex_fatal(__FILE__, __LINE__, "BUG_ON(" #cond ")"); } while (0)

#define MCPLEX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MCPLEX_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
