/*
 * snapshot.c - the config snapshot's lifecycle: references (atomic refcount), lookup, the
 * generation counter, and freeing every string and array the model owns (model.h, config.h).
 *
 * Thread: snapshots are built on the main thread; once published, any thread may ref, unref
 * and read them (the last unref frees, on whichever thread drops it).
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "config/mcp_route.h" /* origin (issue 3) */

static _Atomic uint64_t generation_counter;

uint64_t
mcplex_snapshot_next_generation(void)
{
    return atomic_fetch_add(&generation_counter, 1) + 1;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
mcplex_cors_policy_free(mcplex_cors_policy_t *p)
{
    if (p == NULL)
        return;
    free_strv(p->allow_origins, p->n_allow_origins);
    free(p->allow_methods);
    free(p->allow_headers);
    free(p->expose_headers);
    free(p->max_age);
    free(p);
}

static void
target_dispose(mcplex_mcp_target_t *t)
{
    free(t->name);
    free(t->stdio.cmd);
    free_strv(t->stdio.args, t->stdio.n_args);
    for (size_t i = 0; i < t->stdio.n_env; i++) {
        free(t->stdio.env[i].name);
        free(t->stdio.env[i].value);
    }
    free(t->stdio.env);
    free(t->stdio.working_dir);
    free(t->http.cluster);
    free(t->http.path);
    free(t->http.authority);
    for (size_t i = 0; i < t->http.n_headers; i++) {
        free(t->http.headers[i].name);
        free(t->http.headers[i].value);
    }
    free(t->http.headers);
    free_strv(t->tool_allow, t->n_tool_allow);
    free_strv(t->tool_deny, t->n_tool_deny);
    for (size_t i = 0; i < t->n_tool_overrides; i++) {
        free(t->tool_overrides[i].tool);
        free(t->tool_overrides[i].name);
        free(t->tool_overrides[i].description);
    }
    free(t->tool_overrides);
    memset(t, 0, sizeof(*t));
}

void
mcplex_mcp_backend_free(mcplex_mcp_backend_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_targets; i++)
        target_dispose(&b->targets[i]);
    free(b->targets);
    free(b->separator);
    free(b->server_name);
    free(b->server_version);
    free(b->server_title);
    free(b);
}

void
mcplex_cluster_dispose(mcplex_cluster_t *c)
{
    if (c == NULL)
        return;
    free(c->name);
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i].host);
    free(c->endpoints);
    mcplex_mcp_backend_free(c->mcp);
    mcplex_tls_context_free(c->tls_context);
    memset(c, 0, sizeof(*c));
}

/* ---- TLS contexts and filter chains (issue 4) ---- */

static void
data_source_dispose(mcplex_data_source_t *d)
{
    free(d->filename);
    free(d->inline_data);
    memset(d, 0, sizeof(*d));
}

void
mcplex_tls_context_free(mcplex_tls_context_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_tls_certificates; i++) {
        data_source_dispose(&t->tls_certificates[i].certificate_chain);
        data_source_dispose(&t->tls_certificates[i].private_key);
    }
    free(t->tls_certificates);
    data_source_dispose(&t->trusted_ca);
    for (size_t i = 0; i < t->n_alpn_protocols; i++)
        free(t->alpn_protocols[i]);
    free(t->alpn_protocols);
    free(t->sni);
    free(t);
}

static void
hcm_dispose(mcplex_hcm_t *h)
{
    free(h->stat_prefix);
    mcplex_route_config_dispose(&h->route_config);
    mcplex_mcp_backend_free(h->mcp_router);
    /* --- access_log (issue 7) --- */
    for (size_t i = 0; i < h->n_access_logs; i++) {
        mcplex_access_log_cfg_t *a = &h->access_logs[i];
        free(a->path);
        free(a->format);
        for (size_t k = 0; k < a->n_json; k++) {
            free(a->json_keys[k]);
            free(a->json_formats[k]);
        }
        free(a->json_keys);
        free(a->json_formats);
    }
    free(h->access_logs);
    memset(h, 0, sizeof(*h));
}
/* ---- end TLS ---- */

static void
route_dispose(mcplex_route_t *r)
{
    free(r->name);
    free(r->prefix);
    free(r->path);
    for (size_t i = 0; i < r->n_clusters; i++)
        free(r->clusters[i].name);
    free(r->clusters);
    free(r->direct_body);
    mcplex_cors_policy_free(r->cors);
    mcplex_origin_policy_free(r->origin); /* origin (issue 3) */
    memset(r, 0, sizeof(*r));
}

static void
virtual_host_dispose(mcplex_virtual_host_t *vh)
{
    free(vh->name);
    free_strv(vh->domains, vh->n_domains);
    for (size_t i = 0; i < vh->n_routes; i++)
        route_dispose(&vh->routes[i]);
    free(vh->routes);
    memset(vh, 0, sizeof(*vh));
}

void
mcplex_route_config_dispose(mcplex_route_config_t *rc)
{
    if (rc == NULL)
        return;
    free(rc->name);
    for (size_t i = 0; i < rc->n_virtual_hosts; i++)
        virtual_host_dispose(&rc->virtual_hosts[i]);
    free(rc->virtual_hosts);
    memset(rc, 0, sizeof(*rc));
}

void
mcplex_listener_cfg_dispose(mcplex_listener_cfg_t *l)
{
    if (l == NULL)
        return;
    free(l->name);
    free(l->address);
    hcm_dispose(&l->hcm);
    for (size_t i = 0; i < l->n_filter_chains; i++) {
        mcplex_filter_chain_t *fc = &l->filter_chains[i];
        free(fc->name);
        for (size_t k = 0; k < fc->n_server_names; k++)
            free(fc->server_names[k]);
        free(fc->server_names);
        free(fc->transport_protocol);
        mcplex_tls_context_free(fc->tls);
        if (i > 0)
            hcm_dispose(&fc->hcm);
    }
    free(l->filter_chains);
    memset(l, 0, sizeof(*l));
}

void
mcplex_snapshot_free(mcplex_snapshot_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_listeners; i++)
        mcplex_listener_cfg_dispose(&s->listeners[i]);
    free(s->listeners);
    for (size_t i = 0; i < s->n_clusters; i++)
        mcplex_cluster_dispose(&s->clusters[i]);
    free(s->clusters);
    free(s->admin_address);
    free(s->bootstrap_json);
    free(s->node_id);
    free(s->node_cluster);
    free(s);
}

mcplex_snapshot_t *
mcplex_snapshot_ref(mcplex_snapshot_t *s)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
    return s;
}

void
mcplex_snapshot_unref(mcplex_snapshot_t *s)
{
    if (s == NULL)
        return;
    /* acq_rel: every reader's last access happens before the free */
    if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1)
        mcplex_snapshot_free(s);
}

const mcplex_cluster_t *
mcplex_snapshot_find_cluster(const mcplex_snapshot_t *s, const char *name)
{
    if (s == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < s->n_clusters; i++) {
        if (strcmp(s->clusters[i].name, name) == 0)
            return &s->clusters[i];
    }
    return NULL;
}
