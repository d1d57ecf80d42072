/*
 * cors.c - CORS as Envoy's cors filter does it (see cors.h). Pure code, any thread.
 */
#include "router/cors.h"

#include <stdio.h>
#include <string.h>

static int
origin_allowed(const mcplex_cors_policy_t *p, const char *origin)
{
    for (size_t i = 0; i < p->n_allow_origins; i++)
        if (strcmp(p->allow_origins[i], "*") == 0 || strcmp(p->allow_origins[i], origin) == 0)
            return 1;
    return 0;
}

static const char *
keep(mcplex_cors_result_t *out, size_t *used, const char *s)
{
    size_t n = strlen(s);
    char *dst;

    if (*used + n + 1 > sizeof(out->storage))
        return "";
    dst = out->storage + *used;
    memcpy(dst, s, n + 1);
    *used += n + 1;
    return dst;
}

static void
add(mcplex_cors_result_t *out, const char *name, const char *value)
{
    if (out->n_headers >= sizeof(out->headers) / sizeof(out->headers[0]) || value == NULL)
        return;
    out->headers[out->n_headers++] = (mcplex_http_header_t){name, strlen(name), value, strlen(value)};
}

void
mcplex_cors_evaluate(const mcplex_cors_policy_t *p, const mcplex_http_request_t *req, mcplex_cors_result_t *out)
{
    const char *origin = mcplex_http_request_header(req, "origin");
    const char *req_method = mcplex_http_request_header(req, "access-control-request-method");
    const char *req_headers = mcplex_http_request_header(req, "access-control-request-headers");
    size_t used = 0;

    memset(out, 0, sizeof(*out));
    if (p == NULL || origin == NULL || !origin_allowed(p, origin))
        return;
    /* Echo the origin (Envoy does so even for a match-all policy); responses vary by Origin. */
    add(out, "access-control-allow-origin", keep(out, &used, origin));
    if (p->allow_credentials)
        add(out, "access-control-allow-credentials", "true");
    if (strcmp(req->method, "OPTIONS") == 0 && req_method != NULL) {
        out->preflight = 1;
        add(out, "access-control-allow-methods",
            p->allow_methods != NULL ? p->allow_methods : "GET, POST, DELETE, OPTIONS");
        if (p->allow_headers != NULL)
            add(out, "access-control-allow-headers", p->allow_headers);
        else if (req_headers != NULL)
            add(out, "access-control-allow-headers", keep(out, &used, req_headers));
        if (p->max_age != NULL)
            add(out, "access-control-max-age", p->max_age);
        return;
    }
    if (p->expose_headers != NULL)
        add(out, "access-control-expose-headers", p->expose_headers);
    add(out, "vary", "Origin");
}
