/*
 * strmap.h - a string-keyed hash map (chained, FNV-1a, grows at load 1). Keys are copied;
 * values are opaque pointers owned by the caller. Not thread-safe: one owner thread.
 */
#ifndef MCPLEX_COMMON_STRMAP_H
#define MCPLEX_COMMON_STRMAP_H

#include <stddef.h>

typedef struct mcplex_strmap_entry mcplex_strmap_entry_t;

typedef struct mcplex_strmap {
    mcplex_strmap_entry_t **buckets;
    size_t n_buckets;
    size_t count;
} mcplex_strmap_t;

/* Initializes an empty map in caller storage. */
void mcplex_strmap_init(mcplex_strmap_t *m);
/* Frees the entries and keys (not the values). */
void mcplex_strmap_dispose(mcplex_strmap_t *m);
/* Returns the value for |key| or NULL. */
void *mcplex_strmap_get(const mcplex_strmap_t *m, const char *key);
/* Sets |key| to |value|; returns the previous value or NULL. */
void *mcplex_strmap_put(mcplex_strmap_t *m, const char *key, void *value);
/* Removes |key|; returns its value or NULL. */
void *mcplex_strmap_remove(mcplex_strmap_t *m, const char *key);

/* Calls |fn| for every entry; |fn| must not modify the map. */
void mcplex_strmap_foreach(const mcplex_strmap_t *m, void (*fn)(void *arg, const char *key, void *value), void *arg);

#endif
