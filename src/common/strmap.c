/*
 * strmap.c - string-keyed hash map (see strmap.h). Thread: the owner's.
 */
#include "common/strmap.h"

#include "common/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mcplex_strmap_entry {
    mcplex_strmap_entry_t *next;
    uint64_t hash;
    void *value;
    char key[];
};

static uint64_t
strmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

void
mcplex_strmap_init(mcplex_strmap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void
mcplex_strmap_dispose(mcplex_strmap_t *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        mcplex_strmap_entry_t *e = m->buckets[i];
        while (e != NULL) {
            mcplex_strmap_entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}

static mcplex_strmap_entry_t **
strmap_find(const mcplex_strmap_t *m, const char *key, uint64_t hash)
{
    mcplex_strmap_entry_t **slot;

    if (m->n_buckets == 0)
        return NULL;
    slot = &m->buckets[hash & (m->n_buckets - 1)];
    while (*slot != NULL && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->next;
    return slot;
}

static void
strmap_grow(mcplex_strmap_t *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 16;
    mcplex_strmap_entry_t **buckets = mcplex_calloc(n, sizeof(*buckets));

    for (size_t i = 0; i < m->n_buckets; i++) {
        mcplex_strmap_entry_t *e = m->buckets[i];
        while (e != NULL) {
            mcplex_strmap_entry_t *next = e->next;
            e->next = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->n_buckets = n;
}

void *
mcplex_strmap_get(const mcplex_strmap_t *m, const char *key)
{
    mcplex_strmap_entry_t **slot = strmap_find(m, key, strmap_hash(key));

    return slot != NULL && *slot != NULL ? (*slot)->value : NULL;
}

void *
mcplex_strmap_put(mcplex_strmap_t *m, const char *key, void *value)
{
    uint64_t hash = strmap_hash(key);
    mcplex_strmap_entry_t **slot = strmap_find(m, key, hash);
    mcplex_strmap_entry_t *e;
    size_t klen;

    if (slot != NULL && *slot != NULL) {
        void *old = (*slot)->value;
        (*slot)->value = value;
        return old;
    }
    if (m->count + 1 > m->n_buckets)
        strmap_grow(m);
    klen = strlen(key);
    e = mcplex_malloc(sizeof(*e) + klen + 1);
    memcpy(e->key, key, klen + 1);
    e->hash = hash;
    e->value = value;
    e->next = m->buckets[hash & (m->n_buckets - 1)];
    m->buckets[hash & (m->n_buckets - 1)] = e;
    m->count++;
    return NULL;
}

void *
mcplex_strmap_remove(mcplex_strmap_t *m, const char *key)
{
    mcplex_strmap_entry_t **slot = strmap_find(m, key, strmap_hash(key));
    mcplex_strmap_entry_t *e;
    void *value;

    if (slot == NULL || *slot == NULL)
        return NULL;
    e = *slot;
    value = e->value;
    *slot = e->next;
    free(e);
    m->count--;
    return value;
}

void
mcplex_strmap_foreach(const mcplex_strmap_t *m, void (*fn)(void *arg, const char *key, void *value), void *arg)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (mcplex_strmap_entry_t *e = m->buckets[i]; e != NULL; e = e->next)
            fn(arg, e->key, e->value);
}
