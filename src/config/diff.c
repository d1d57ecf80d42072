/*
 * diff.c - comparisons between config snapshots for live swaps (see diff.h). Pure functions;
 * any thread.
 */
#include "config/diff.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"

/* NULL-safe string equality: NULL equals only NULL. */
static int
str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int
strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return 0;
    return 1;
}

const mcplex_mcp_backend_t *
mcplex_config_find_backend(const mcplex_snapshot_t *s, const char *name)
{
    const mcplex_cluster_t *c;
    size_t len, suffix = strlen(MCPLEX_MCP_ROUTER_SUFFIX);

    if (s == NULL || name == NULL)
        return NULL;
    c = mcplex_snapshot_find_cluster(s, name);
    if (c != NULL)
        return c->mcp;
    len = strlen(name);
    if (len <= suffix || strcmp(name + len - suffix, MCPLEX_MCP_ROUTER_SUFFIX) != 0)
        return NULL;
    for (size_t i = 0; i < s->n_listeners; i++) {
        const mcplex_listener_cfg_t *l = &s->listeners[i];
        if (strlen(l->name) == len - suffix && strncmp(l->name, name, len - suffix) == 0)
            return l->hcm.mcp_router;
    }
    return NULL;
}

static int
data_source_eq(const mcplex_data_source_t *a, const mcplex_data_source_t *b)
{
    if (!str_eq(a->filename, b->filename) || a->inline_len != b->inline_len)
        return 0;
    if (a->inline_data == NULL || b->inline_data == NULL)
        return a->inline_data == b->inline_data;
    return memcmp(a->inline_data, b->inline_data, a->inline_len) == 0;
}

/* TLS contexts by value (issue 4's flattened Upstream/DownstreamTlsContext). */
static int
tls_context_eq(const mcplex_tls_context_t *a, const mcplex_tls_context_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->n_tls_certificates != b->n_tls_certificates || !data_source_eq(&a->trusted_ca, &b->trusted_ca) ||
        a->require_client_certificate != b->require_client_certificate ||
        !strv_eq(a->alpn_protocols, a->n_alpn_protocols, b->alpn_protocols, b->n_alpn_protocols) ||
        a->tls_minimum_protocol_version != b->tls_minimum_protocol_version ||
        a->tls_maximum_protocol_version != b->tls_maximum_protocol_version || !str_eq(a->sni, b->sni) ||
        a->insecure != b->insecure)
        return 0;
    for (size_t i = 0; i < a->n_tls_certificates; i++)
        if (!data_source_eq(&a->tls_certificates[i].certificate_chain,
                            &b->tls_certificates[i].certificate_chain) ||
            !data_source_eq(&a->tls_certificates[i].private_key, &b->tls_certificates[i].private_key))
            return 0;
    return 1;
}

int
mcplex_config_cluster_endpoints_equal(const mcplex_cluster_t *a, const mcplex_cluster_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type || a->n_endpoints != b->n_endpoints ||
        a->connect_timeout_ms != b->connect_timeout_ms || a->http2 != b->http2 || a->tls != b->tls ||
        !tls_context_eq(a->tls_context, b->tls_context))
        return 0;
    for (size_t i = 0; i < a->n_endpoints; i++) {
        const mcplex_endpoint_t *x = &a->endpoints[i], *y = &b->endpoints[i];
        if (!str_eq(x->host, y->host) || x->port != y->port || x->weight != y->weight)
            return 0;
    }
    return 1;
}

static int
stdio_eq(const mcplex_stdio_target_t *a, const mcplex_stdio_target_t *b)
{
    if (!str_eq(a->cmd, b->cmd) || !strv_eq(a->args, a->n_args, b->args, b->n_args) || a->n_env != b->n_env ||
        a->clear_env != b->clear_env || !str_eq(a->working_dir, b->working_dir) || a->shared != b->shared)
        return 0;
    for (size_t i = 0; i < a->n_env; i++)
        if (!str_eq(a->env[i].name, b->env[i].name) || !str_eq(a->env[i].value, b->env[i].value))
            return 0;
    return 1;
}

static int
http_eq(const mcplex_snapshot_t *sa, const mcplex_http_target_t *a, const mcplex_snapshot_t *sb,
        const mcplex_http_target_t *b)
{
    if (!str_eq(a->cluster, b->cluster) || !str_eq(a->path, b->path) || !str_eq(a->authority, b->authority) ||
        a->tls != b->tls || a->n_headers != b->n_headers)
        return 0;
    for (size_t i = 0; i < a->n_headers; i++)
        if (!str_eq(a->headers[i].name, b->headers[i].name) ||
            !str_eq(a->headers[i].value, b->headers[i].value))
            return 0;
    return mcplex_config_cluster_endpoints_equal(mcplex_snapshot_find_cluster(sa, a->cluster),
                                                 mcplex_snapshot_find_cluster(sb, b->cluster));
}

static int
target_eq(const mcplex_snapshot_t *sa, const mcplex_mcp_target_t *a, const mcplex_snapshot_t *sb,
          const mcplex_mcp_target_t *b)
{
    if (!str_eq(a->name, b->name) || a->kind != b->kind || a->timeout_ms != b->timeout_ms)
        return 0;
    if (a->kind == MCPLEX_TARGET_STDIO) {
        if (!stdio_eq(&a->stdio, &b->stdio))
            return 0;
    } else if (!http_eq(sa, &a->http, sb, &b->http)) {
        return 0;
    }
    if (!strv_eq(a->tool_allow, a->n_tool_allow, b->tool_allow, b->n_tool_allow) ||
        !strv_eq(a->tool_deny, a->n_tool_deny, b->tool_deny, b->n_tool_deny) ||
        a->n_tool_overrides != b->n_tool_overrides)
        return 0;
    for (size_t i = 0; i < a->n_tool_overrides; i++) {
        const mcplex_tool_override_t *x = &a->tool_overrides[i], *y = &b->tool_overrides[i];
        if (!str_eq(x->tool, y->tool) || !str_eq(x->name, y->name) || !str_eq(x->description, y->description))
            return 0;
    }
    return 1;
}

int
mcplex_config_backend_equal(const mcplex_snapshot_t *sa, const mcplex_mcp_backend_t *a,
                            const mcplex_snapshot_t *sb, const mcplex_mcp_backend_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->n_targets != b->n_targets || a->prefix_mode != b->prefix_mode ||
        a->failure_mode != b->failure_mode || !str_eq(a->separator, b->separator))
        return 0;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!target_eq(sa, &a->targets[i], sb, &b->targets[i]))
            return 0;
    return 1;
}

/* FNV-1a over |len| bytes (and a separator), continuing from |h|. */
static uint64_t
fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

static uint64_t
fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s != NULL ? s : "", s != NULL ? strlen(s) + 1 : 0);
}

static uint64_t
fnv_ds(uint64_t h, const mcplex_data_source_t *d)
{
    h = fnv_str(h, d->filename);
    return fnv(h, d->inline_data != NULL ? d->inline_data : "", d->inline_data != NULL ? d->inline_len : 0);
}

/* A fingerprint of a TLS context (0 for none), for pool keys. */
static uint64_t
tls_fingerprint(const mcplex_tls_context_t *t)
{
    uint64_t h = 14695981039346656037ULL;
    int nums[4];

    if (t == NULL)
        return 0;
    for (size_t i = 0; i < t->n_tls_certificates; i++) {
        h = fnv_ds(h, &t->tls_certificates[i].certificate_chain);
        h = fnv_ds(h, &t->tls_certificates[i].private_key);
    }
    h = fnv_ds(h, &t->trusted_ca);
    for (size_t i = 0; i < t->n_alpn_protocols; i++)
        h = fnv_str(h, t->alpn_protocols[i]);
    h = fnv_str(h, t->sni);
    nums[0] = t->require_client_certificate;
    nums[1] = (int)t->tls_minimum_protocol_version;
    nums[2] = (int)t->tls_maximum_protocol_version;
    nums[3] = t->insecure;
    return fnv(h, nums, sizeof(nums));
}

char *
mcplex_config_pool_key(const mcplex_cluster_t *c)
{
    size_t cap = strlen(c->name) + 64, len;
    char *key;

    for (size_t i = 0; i < c->n_endpoints; i++)
        cap += strlen(c->endpoints[i].host) + 24;
    key = mcplex_malloc(cap);
    len = (size_t)snprintf(key, cap, "%s|t%u|h%d|s%d:%016llx|", c->name, (unsigned)c->connect_timeout_ms,
                           c->http2, c->tls, (unsigned long long)tls_fingerprint(c->tls_context));
    for (size_t i = 0; i < c->n_endpoints && len < cap; i++)
        len += (size_t)snprintf(key + len, cap - len, "%s:%u*%u,", c->endpoints[i].host,
                                (unsigned)c->endpoints[i].port, (unsigned)c->endpoints[i].weight);
    return key;
}
