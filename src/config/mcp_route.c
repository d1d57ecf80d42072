/*
 * mcp_route.c - McpRoute (mcplex.extensions.filters.http.mcp.v1) -> mcplex_origin_policy_t, and
 * the policy's copy and free (see mcp_route.h). Thread: any (pure code; no state).
 */
#include "config/mcp_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "mcplex/extensions/filters/http/mcp/v1/mcp_route.pb-c.h"

#define PATH_MAX_LEN 512 /* an error path */

/* No spaces, controls or non-ASCII bytes (these go into header comparisons only). */
static int
printable(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* "host", "host:port" or "[v6]" / "[v6]:port" with a non-empty host and a decimal port. */
static int
authority_valid(const char *a, size_t len)
{
    const char *colon;
    size_t host_len;

    if (len == 0)
        return 0;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || close == a + 1)
            return 0;
        host_len = (size_t)(close - a) + 1;
    } else {
        colon = memchr(a, ':', len);
        host_len = colon != NULL ? (size_t)(colon - a) : len;
        if (host_len == 0 || memchr(a, '/', len) != NULL || memchr(a, '@', len) != NULL)
            return 0;
    }
    if (host_len == len)
        return 1;
    if (a[host_len] != ':' || host_len + 1 == len || len - host_len - 1 > 5)
        return 0;
    for (size_t i = host_len + 1; i < len; i++)
        if (a[i] < '0' || a[i] > '9')
            return 0;
    return 1;
}

static int
origin_valid(const char *o)
{
    size_t len = strlen(o);

    if (strcmp(o, "*") == 0)
        return 1;
    if (len > 0 && o[len - 1] == '/')
        len--; /* "http://h/" is taken as "http://h" */
    if (strncasecmp(o, "http://", 7) == 0)
        return authority_valid(o + 7, len - 7);
    if (strncasecmp(o, "https://", 8) == 0)
        return authority_valid(o + 8, len - 8);
    return 0;
}

static char **
copy_strings(char *const *src, size_t n)
{
    char **out = mcplex_calloc(n > 0 ? n : 1, sizeof(char *));

    for (size_t i = 0; i < n; i++)
        out[i] = mcplex_strdup(src[i]);
    return out;
}

mcplex_origin_policy_t *
mcplex_config_translate_mcp_route(const Mcplex__Extensions__Filters__Http__Mcp__V1__McpRoute *msg,
                                  const char *path, mcplex_errors_t *errs)
{
    mcplex_origin_policy_t *p = mcplex_calloc(1, sizeof(*p));
    size_t before = errs->count;
    char q[PATH_MAX_LEN];

    switch (msg->dns_rebinding_protection) {
    case MCPLEX__EXTENSIONS__FILTERS__HTTP__MCP__V1__MCP_ROUTE__DNS_REBINDING_PROTECTION__ON:
        p->dns_rebinding_protection = MCPLEX_DNS_REBINDING_ON;
        break;
    case MCPLEX__EXTENSIONS__FILTERS__HTTP__MCP__V1__MCP_ROUTE__DNS_REBINDING_PROTECTION__OFF:
        p->dns_rebinding_protection = MCPLEX_DNS_REBINDING_OFF;
        break;
    case MCPLEX__EXTENSIONS__FILTERS__HTTP__MCP__V1__MCP_ROUTE__DNS_REBINDING_PROTECTION__DEFAULT:
        p->dns_rebinding_protection = MCPLEX_DNS_REBINDING_DEFAULT;
        break;
    default:
        snprintf(q, sizeof(q), "%s.dns_rebinding_protection", path);
        mcplex_errors_add(errs, q, "unknown value %d", (int)msg->dns_rebinding_protection);
        break;
    }
    for (size_t i = 0; i < msg->n_allowed_origins; i++) {
        const char *o = msg->allowed_origins[i] != NULL ? msg->allowed_origins[i] : "";
        snprintf(q, sizeof(q), "%s.allowed_origins[%zu]", path, i);
        if (!printable(o) || !origin_valid(o))
            mcplex_errors_add(errs, q, "'%s' is not an origin (\"*\" or http(s)://host[:port])", o);
    }
    for (size_t i = 0; i < msg->n_allowed_hosts; i++) {
        const char *h = msg->allowed_hosts[i] != NULL ? msg->allowed_hosts[i] : "";
        snprintf(q, sizeof(q), "%s.allowed_hosts[%zu]", path, i);
        if (!printable(h) || (strcmp(h, "*") != 0 && !authority_valid(h, strlen(h))))
            mcplex_errors_add(errs, q, "'%s' is not a host (\"*\", host or host:port)", h);
    }
    if (errs->count != before)
        goto fail;
    p->allowed_origins = copy_strings(msg->allowed_origins, msg->n_allowed_origins);
    p->n_allowed_origins = msg->n_allowed_origins;
    p->allowed_hosts = copy_strings(msg->allowed_hosts, msg->n_allowed_hosts);
    p->n_allowed_hosts = msg->n_allowed_hosts;
    return p;
fail:
    mcplex_origin_policy_free(p);
    return NULL;
}

mcplex_origin_policy_t *
mcplex_origin_policy_copy(const mcplex_origin_policy_t *src)
{
    mcplex_origin_policy_t *p;

    if (src == NULL)
        return NULL;
    p = mcplex_calloc(1, sizeof(*p));
    p->dns_rebinding_protection = src->dns_rebinding_protection;
    p->allowed_origins = copy_strings(src->allowed_origins, src->n_allowed_origins);
    p->n_allowed_origins = src->n_allowed_origins;
    p->allowed_hosts = copy_strings(src->allowed_hosts, src->n_allowed_hosts);
    p->n_allowed_hosts = src->n_allowed_hosts;
    return p;
}

void
mcplex_origin_policy_free(mcplex_origin_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_allowed_origins; i++)
        free(p->allowed_origins[i]);
    free(p->allowed_origins);
    for (size_t i = 0; i < p->n_allowed_hosts; i++)
        free(p->allowed_hosts[i]);
    free(p->allowed_hosts);
    free(p);
}
