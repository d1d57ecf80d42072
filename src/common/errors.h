/*
 * errors.h - a list of error messages collected while validating input (config files, xDS
 * resources), each "path.to.field: message", so every error is reported at once.
 *
 * Owned by whoever declares it; not thread-safe (one list per validation run).
 */
#ifndef MCPLEX_COMMON_ERRORS_H
#define MCPLEX_COMMON_ERRORS_H

#include <stddef.h>

typedef struct mcplex_errors {
    char **items; /* "path: message", each malloc'ed and owned by the list */
    size_t count;
    size_t cap;
} mcplex_errors_t;

/* Initializes an empty list in caller-provided storage. */
void mcplex_errors_init(mcplex_errors_t *errs);
/* Frees every message; the list is empty and reusable afterwards. */
void mcplex_errors_dispose(mcplex_errors_t *errs);
/*
 * Appends "<path>: <formatted message>" (just the message when |path| is NULL or empty).
 * Never fails: on OOM the process aborts.
 */
void mcplex_errors_add(mcplex_errors_t *errs, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Moves every message of |from| to the end of |to|; |from| is left empty. */
void mcplex_errors_move(mcplex_errors_t *to, mcplex_errors_t *from);
/*
 * Joins all messages with |sep| into one malloc'ed string (caller frees), "" when empty.
 */
char *mcplex_errors_join(const mcplex_errors_t *errs, const char *sep);

#endif
