/*
 * local_config.c - the agentgateway-style local config file (the format of the seed examples)
 * -> an Envoy Bootstrap as a cJSON tree, so that it then goes through the same mapper and the
 * same translators as a bootstrap file (config.h). Owns no state.
 *
 * Thread: config loading, main thread (pure code: any thread could run it).
 *
 * What is read (everything else is an error: "unknown field", or "not supported by mcplex" for
 * agentgateway features mcplex does not implement):
 *   config: {adminAddr: "host:port"}        -> admin.address (default 127.0.0.1:15000)
 *   binds[]: {port, address?, listeners[]}  -> listener "bind/<port>" on address (default
 *       127.0.0.1: agentgateway binds every interface, mcplex binds loopback unless
 *       binds[].address says otherwise) with one HCM (stat_prefix "bind_<port>") and one
 *       route_config "bind/<port>"
 *   listeners[]: {name?, hostname?, protocol: HTTP, routes[]} -> a virtual host with domains
 *       [hostname] or ["*"]
 *   routes[]: {name?, matches[], policies: {cors}, backends[]} -> one Envoy route per match
 *       (`path: {pathPrefix: X}` -> prefix, `path: {exact: X}` -> path; no matches -> prefix "/"),
 *       timeout 0s (MCP streams are long-lived), the CORS policy as typed_per_filter_config
 *       envoy.filters.http.cors (and the cors HTTP filter before the router)
 *   policies: {dnsRebindingProtection: bool, allowedOrigins: [..], allowedHosts: [..]} (also in
 *       the short form) -> typed_per_filter_config mcplex.filters.http.mcp, mcplex's McpRoute
 *       (true = ON, false = OFF, absent = DEFAULT)
 *   backends[]: {mcp: {...} | backend: <name of a top-level backend>, weight?, name?} -> one
 *       backend: route.cluster; several: weighted_clusters with each `weight` (default 1)
 *   mcp: {targets[], prefixMode, failureMode, statefulMode} -> a cluster ("route<i>/backend<j>",
 *       or the backend's `name`) of cluster_type mcplex.clusters.mcp (McpBackend) with
 *       name_separator "_". statefulMode is accepted and ignored (mcplex sessions are always
 *       stateful); failureMode defaults to mcplex's failOpen, not agentgateway's failClosed.
 *   targets[]: {name, stdio: {cmd, args, env, clearEnv, workingDir, shared} | mcp: {host} | sse: {host},
 *       timeout?} where host is a URL, or host+port+path
 *   backends[] (top level): {name, mcp} -> a cluster named |name|
 *   mcp (top level, the short form): {port? (3000), targets[], ..., policies?} -> one bind with
 *       one route "/" to the backend "mcp"
 * Target names are checked here (separator "_") so their errors carry local-file paths.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "mcp/naming.h"

#define LC_PATH_MAX 512
#define LC_SEPARATOR "_"
#define LC_DEFAULT_ADMIN "127.0.0.1:15000"
#define LC_DEFAULT_SIMPLE_PORT 3000

#define TYPE_PREFIX "type.googleapis.com/"
#define TYPE_HCM                                                                                             \
    TYPE_PREFIX "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TYPE_ROUTER TYPE_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define TYPE_CORS TYPE_PREFIX "envoy.extensions.filters.http.cors.v3.Cors"
#define TYPE_CORS_POLICY TYPE_PREFIX "envoy.extensions.filters.http.cors.v3.CorsPolicy"
#define TYPE_MCP_BACKEND TYPE_PREFIX "mcplex.extensions.clusters.mcp.v1.McpBackend"
#define TYPE_MCP_ROUTE TYPE_PREFIX "mcplex.extensions.filters.http.mcp.v1.McpRoute" /* origin (issue 3) */
#define MCP_ROUTE_FILTER "mcplex.filters.http.mcp"                                   /* origin (issue 3) */

typedef struct lc {
    mcplex_errors_t *errs;
    cJSON *listeners;     /* static_resources.listeners being built */
    cJSON *clusters;      /* static_resources.clusters being built */
    const cJSON *named;   /* top-level backends[] (validated and emitted first), or NULL */
    char **cluster_names; /* every cluster emitted so far (uniqueness) */
    size_t n_cluster_names;
    size_t n_routes; /* global route counter: "route<i>/backend<j>" */
} lc_t;

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *pfmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *
pfmt(char *buf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, LC_PATH_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

/* "<base>.<key>", or "<key>" at the top level. */
static const char *
pkey(char *buf, const char *base, const char *key)
{
    return base[0] != '\0' ? pfmt(buf, "%s.%s", base, key) : pfmt(buf, "%s", key);
}

static int
in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0)
            return 1;
    }
    return 0;
}

/*
 * Every key of |obj| must be in |known| (or in |extra|); keys in |unsupported| are agentgateway
 * features mcplex does not implement. Returns the number of errors added.
 */
static size_t
check_keys(lc_t *lc, const cJSON *obj, const char *path, const char *const *known, const char *const *extra,
           const char *const *unsupported)
{
    char p[LC_PATH_MAX];
    size_t n = 0;
    const cJSON *it;

    cJSON_ArrayForEach (it, obj) {
        if (in_list(it->string, known) || in_list(it->string, extra))
            continue;
        if (in_list(it->string, unsupported))
            mcplex_errors_add(lc->errs, pkey(p, path, it->string), "not supported by mcplex");
        else
            mcplex_errors_add(lc->errs, pkey(p, path, it->string), "unknown field");
        n++;
    }
    return n;
}

static const cJSON *
get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * |obj|.|key| if |is| accepts it; NULL when absent (an error if |required|) or of another type
 * (an error "expected <what>").
 */
static const cJSON *
get_checked(lc_t *lc, const cJSON *obj, const char *key, const char *path, int required,
            cJSON_bool (*is)(const cJSON *), const char *what)
{
    char p[LC_PATH_MAX];
    const cJSON *v = get(obj, key);

    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            mcplex_errors_add(lc->errs, pkey(p, path, key), "is required");
        return NULL;
    }
    if (!is(v)) {
        mcplex_errors_add(lc->errs, pkey(p, path, key), "expected %s", what);
        return NULL;
    }
    return v;
}

static const cJSON *
get_object(lc_t *lc, const cJSON *obj, const char *key, const char *path, int required)
{
    return get_checked(lc, obj, key, path, required, cJSON_IsObject, "an object");
}

static const cJSON *
get_array(lc_t *lc, const cJSON *obj, const char *key, const char *path, int required)
{
    return get_checked(lc, obj, key, path, required, cJSON_IsArray, "a list");
}

static const char *
get_string(lc_t *lc, const cJSON *obj, const char *key, const char *path, int required)
{
    char p[LC_PATH_MAX];
    const cJSON *v = get_checked(lc, obj, key, path, required, cJSON_IsString, "a string");

    if (v == NULL)
        return NULL;
    if (required && v->valuestring[0] == '\0') {
        mcplex_errors_add(lc->errs, pkey(p, path, key), "must not be empty");
        return NULL;
    }
    return v->valuestring;
}

/* 1 / 0 for a boolean, |dflt| when absent, -1 (with an error) for anything else. */
static int
get_bool(lc_t *lc, const cJSON *obj, const char *key, const char *path, int dflt)
{
    char p[LC_PATH_MAX];
    const cJSON *v = get(obj, key);

    if (v == NULL || cJSON_IsNull(v))
        return dflt;
    if (!cJSON_IsBool(v)) {
        mcplex_errors_add(lc->errs, pkey(p, path, key), "expected true or false");
        return -1;
    }
    return cJSON_IsTrue(v) ? 1 : 0;
}

/* An integer in [min, max] at |obj|.|key|: 1 and *out set; 0 when absent; -1 with an error. */
static int
get_uint(lc_t *lc, const cJSON *obj, const char *key, const char *path, uint64_t min, uint64_t max,
         uint64_t *out)
{
    char p[LC_PATH_MAX];
    const cJSON *v = get(obj, key);
    double d;

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        goto bad;
    d = v->valuedouble;
    if (d != floor(d) || d < (double)min || d > (double)max)
        goto bad;
    *out = (uint64_t)d;
    return 1;
bad:
    mcplex_errors_add(lc->errs, pkey(p, path, key), "expected an integer from %" PRIu64 " to %" PRIu64, min,
                      max);
    return -1;
}

/* The text of a scalar (string, number as written, boolean), malloc'ed; NULL otherwise. */
static char *
scalar_text(const cJSON *v)
{
    if (cJSON_IsString(v))
        return mcplex_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        if (v->valuestring != NULL)
            return mcplex_strdup(v->valuestring);
        if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
            return mcplex_sprintf("%.0f", v->valuedouble);
        return mcplex_sprintf("%.17g", v->valuedouble);
    }
    if (cJSON_IsBool(v))
        return mcplex_strdup(cJSON_IsTrue(v) ? "true" : "false");
    return NULL;
}

static void
add_string(cJSON *obj, const char *key, const char *value)
{
    cJSON_AddItemToObject(obj, key, cJSON_CreateString(value));
}

static void
add_number(cJSON *obj, const char *key, double value)
{
    cJSON_AddItemToObject(obj, key, cJSON_CreateNumber(value));
}

static cJSON *
add_object(cJSON *obj, const char *key)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(obj, key, o);
    return o;
}

static cJSON *
add_array(cJSON *obj, const char *key)
{
    cJSON *a = cJSON_CreateArray();

    cJSON_AddItemToObject(obj, key, a);
    return a;
}

/* {"socket_address": {"address": A, "port_value": P}} */
static cJSON *
socket_address_json(const char *address, unsigned port)
{
    cJSON *addr = cJSON_CreateObject();
    cJSON *sa = add_object(addr, "socket_address");

    add_string(sa, "address", address);
    add_number(sa, "port_value", port);
    return addr;
}

/*
 * A duration as agentgateway writes it ("5s", "100ms", "1m", "1.5s", "1h30m", or a number of
 * seconds) -> a proto3 JSON Duration string ("5.000s"). NULL with an error if malformed.
 */
static char *
parse_duration(lc_t *lc, const cJSON *v, const char *path)
{
    uint64_t total_ms = 0;
    const char *s;
    char *end;

    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < 0 || v->valuedouble > 315576000000.0)
            goto bad;
        total_ms = (uint64_t)llround(v->valuedouble * 1000.0);
        goto done;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        goto bad;
    s = v->valuestring;
    while (*s != '\0') {
        double n;
        uint64_t unit_ms;

        if (!isdigit((unsigned char)*s))
            goto bad;
        n = strtod(s, &end);
        if (end == s)
            goto bad;
        s = end;
        if (strncmp(s, "ms", 2) == 0) {
            unit_ms = 1;
            s += 2;
        } else if (*s == 's') {
            unit_ms = 1000;
            s++;
        } else if (*s == 'm') {
            unit_ms = 60000;
            s++;
        } else if (*s == 'h') {
            unit_ms = 3600000;
            s++;
        } else {
            goto bad;
        }
        if (n * (double)unit_ms > 315576000000000.0)
            goto bad;
        total_ms += (uint64_t)llround(n * (double)unit_ms);
    }
done:
    return mcplex_sprintf("%" PRIu64 ".%03" PRIu64 "s", total_ms / 1000, total_ms % 1000);
bad:
    mcplex_errors_add(lc->errs, path, "invalid duration (expected e.g. \"5s\", \"100ms\", \"1m\")");
    return NULL;
}

static int
cluster_name_taken(const lc_t *lc, const char *name)
{
    for (size_t i = 0; i < lc->n_cluster_names; i++) {
        if (strcmp(lc->cluster_names[i], name) == 0)
            return 1;
    }
    return 0;
}

static void
remember_cluster_name(lc_t *lc, const char *name)
{
    lc->cluster_names = mcplex_realloc(lc->cluster_names, (lc->n_cluster_names + 1) * sizeof(char *));
    lc->cluster_names[lc->n_cluster_names++] = mcplex_strdup(name);
}

/* ---- targets and MCP backends -------------------------------------------------------------- */

/* `mcp`/`sse` {host} or {host, port, path} -> a URL (malloc'ed), or NULL with errors. */
static char *
http_target_url(lc_t *lc, const cJSON *spec, const char *path)
{
    static const char *const known[] = {"host", "port", "path", NULL};
    static const char *const unsupported[] = {"backend", NULL};
    char p[LC_PATH_MAX], why[256];
    const char *host, *upath;
    uint64_t port = 0;
    int has_port;
    char *url = NULL;
    mcplex_url_t parsed;

    if (!cJSON_IsObject(spec)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    if (check_keys(lc, spec, path, known, NULL, unsupported) > 0)
        return NULL;
    host = get_string(lc, spec, "host", path, 1);
    has_port = get_uint(lc, spec, "port", path, 1, 65535, &port);
    upath = get_string(lc, spec, "path", path, 0);
    if (host == NULL || has_port < 0)
        return NULL;
    if (has_port == 0 && upath == NULL) {
        /* host is a URL; agentgateway defaults a missing scheme to http */
        url = strstr(host, "://") != NULL ? mcplex_strdup(host) : mcplex_sprintf("http://%s", host);
    } else if (has_port == 1 && upath != NULL) {
        int v6 = strchr(host, ':') != NULL && host[0] != '[';
        url = mcplex_sprintf("http://%s%s%s:%" PRIu64 "%s%s", v6 ? "[" : "", host, v6 ? "]" : "", port,
                             upath[0] == '/' ? "" : "/", upath);
    } else {
        mcplex_errors_add(lc->errs, path,
                          "if port or path is set, both must be set; otherwise, use only host");
        return NULL;
    }
    if (mcplex_config_parse_url(url, &parsed, why, sizeof(why)) != 0) {
        mcplex_errors_add(lc->errs, pkey(p, path, "host"), "%s", why);
        free(url);
        return NULL;
    }
    mcplex_url_dispose(&parsed);
    return url;
}

static cJSON *
stdio_json(lc_t *lc, const cJSON *spec, const char *path)
{
    static const char *const known[] = {"cmd", "args", "env", "clearEnv", "workingDir", "shared", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    const cJSON *args, *env, *it;
    const char *cmd, *wd;
    cJSON *out;
    size_t before = lc->errs->count, i = 0;
    int clear_env, shared;

    if (!cJSON_IsObject(spec)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    check_keys(lc, spec, path, known, NULL, NULL);
    cmd = get_string(lc, spec, "cmd", path, 1);
    args = get_array(lc, spec, "args", path, 0);
    env = get_object(lc, spec, "env", path, 0);
    clear_env = get_bool(lc, spec, "clearEnv", path, 0);
    shared = get_bool(lc, spec, "shared", path, 0);
    wd = get_string(lc, spec, "workingDir", path, 0);
    out = cJSON_CreateObject();
    if (cmd != NULL)
        add_string(out, "cmd", cmd);
    if (args != NULL) {
        cJSON *a = add_array(out, "args");
        cJSON_ArrayForEach (it, args) {
            char *text = scalar_text(it);
            if (text == NULL)
                mcplex_errors_add(lc->errs, pfmt(q, "%s[%zu]", pkey(p, path, "args"), i),
                                  "expected a string");
            else
                cJSON_AddItemToArray(a, cJSON_CreateString(text));
            free(text);
            i++;
        }
    }
    if (env != NULL) {
        cJSON *e = add_object(out, "env");
        cJSON_ArrayForEach (it, env) {
            char *text = scalar_text(it);
            if (text == NULL)
                mcplex_errors_add(lc->errs, pfmt(q, "%s.%s", pkey(p, path, "env"), it->string),
                                  "expected a string");
            else
                add_string(e, it->string, text);
            free(text);
        }
    }
    if (clear_env == 1)
        cJSON_AddItemToObject(out, "clear_env", cJSON_CreateTrue());
    if (shared == 1)
        cJSON_AddItemToObject(out, "shared", cJSON_CreateTrue());
    if (wd != NULL)
        add_string(out, "working_dir", wd);
    if (lc->errs->count != before) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* --- TLS (issue 4) --- */
/*
 * A target's policies: only backendTLS {root: CA file, insecure: bool} -> an UpstreamTlsContext
 * JSON for HttpTarget.tls (owned by the caller), or NULL (none, or errors added).
 */
static cJSON *
target_tls_json(lc_t *lc, const cJSON *policies, const char *path)
{
    static const char *const known[] = {"backendTLS", NULL};
    static const char *const tls_known[] = {"root", "insecure", NULL};
    char p[LC_PATH_MAX];
    const cJSON *bt;
    const char *root;
    int insecure;
    cJSON *out, *vc;

    if (policies == NULL || cJSON_IsNull(policies))
        return NULL;
    if (!cJSON_IsObject(policies)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    if (check_keys(lc, policies, path, known, NULL, NULL) > 0)
        return NULL;
    bt = get(policies, "backendTLS");
    if (bt == NULL || cJSON_IsNull(bt))
        return NULL;
    pkey(p, path, "backendTLS");
    if (!cJSON_IsObject(bt)) {
        mcplex_errors_add(lc->errs, p, "expected an object");
        return NULL;
    }
    if (check_keys(lc, bt, p, tls_known, NULL, NULL) > 0)
        return NULL;
    root = get_string(lc, bt, "root", p, 0);
    insecure = get_bool(lc, bt, "insecure", p, 0);
    out = cJSON_CreateObject();
    vc = add_object(add_object(out, "common_tls_context"), "validation_context");
    if (root != NULL)
        add_string(add_object(vc, "trusted_ca"), "filename", root);
    if (insecure == 1)
        add_string(vc, "trust_chain_verification", "ACCEPT_UNTRUSTED");
    return out;
}
/* --- end TLS --- */

/* One targets[] entry -> an McpTarget JSON object, or NULL with errors. */
static cJSON *
target_json(lc_t *lc, const cJSON *t, const char *path, const cJSON *targets, size_t index)
{
    static const char *const known[] = {"name", "stdio", "mcp", "sse", "timeout", "tools", "policies", NULL};
    static const char *const unsupported[] = {"openapi", NULL};
    static const char *const kinds[] = {"stdio", "mcp", "sse", "openapi"};
    char p[LC_PATH_MAX], why[256];
    const char *name, *kind = NULL;
    size_t before = lc->errs->count, n_kinds = 0;
    cJSON *out = NULL;
    const cJSON *v;

    if (!cJSON_IsObject(t)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    check_keys(lc, t, path, known, NULL, unsupported);
    name = get_string(lc, t, "name", path, 1);
    if (name != NULL) {
        if (!mcplex_naming_target_name_valid(name, LC_SEPARATOR, why, sizeof(why))) {
            mcplex_errors_add(lc->errs, pkey(p, path, "name"), "invalid target name '%s': %s", name, why);
        } else {
            for (size_t i = 0; i < index; i++) {
                const cJSON *other = get(cJSON_GetArrayItem(targets, (int)i), "name");
                if (cJSON_IsString(other) && strcmp(other->valuestring, name) == 0) {
                    mcplex_errors_add(lc->errs, pkey(p, path, "name"), "duplicate target name '%s'", name);
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(kinds); i++) {
        if (get(t, kinds[i]) != NULL) {
            kind = kinds[i];
            n_kinds++;
        }
    }
    if (n_kinds == 0)
        mcplex_errors_add(lc->errs, path, "one of stdio, mcp or sse is required");
    else if (n_kinds > 1)
        mcplex_errors_add(lc->errs, path, "only one of stdio, mcp or sse may be set");
    if (lc->errs->count != before)
        goto fail;

    out = cJSON_CreateObject();
    add_string(out, "name", name);
    if (strcmp(kind, "stdio") == 0) {
        cJSON *s = stdio_json(lc, get(t, "stdio"), pkey(p, path, "stdio"));
        if (s == NULL)
            goto fail;
        cJSON_AddItemToObject(out, "stdio", s);
    } else {
        char *url = http_target_url(lc, get(t, kind), pkey(p, path, kind));
        cJSON *h;
        if (url == NULL)
            goto fail;
        h = add_object(out, strcmp(kind, "mcp") == 0 ? "streamable_http" : "sse");
        add_string(h, "url", url);
        free(url);
        /* TLS (issue 4): policies.backendTLS */
        {
            cJSON *tls = target_tls_json(lc, get(t, "policies"), pkey(p, path, "policies"));
            if (tls != NULL)
                cJSON_AddItemToObject(h, "tls", tls);
        }
    }
    if (strcmp(kind, "stdio") == 0 && get(t, "policies") != NULL)
        mcplex_errors_add(lc->errs, pkey(p, path, "policies"), "backendTLS applies to mcp and sse targets only");
    v = get(t, "timeout");
    if (v != NULL) {
        char *d = parse_duration(lc, v, pkey(p, path, "timeout"));
        if (d == NULL)
            goto fail;
        add_string(out, "timeout", d);
        free(d);
    }
    /* Tool curation: the McpTarget.tools shape as is ({allow, deny, overrides}); the mapper
     * checks it. */
    v = get(t, "tools");
    if (v != NULL)
        cJSON_AddItemToObject(out, "tools", cJSON_Duplicate(v, 1));
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/*
 * An `mcp:` object (a backend) -> a cluster named |cluster_name| appended to the bootstrap.
 * |extra| lists keys the caller handles (the short form's port and policies).
 */
static void
emit_mcp_backend(lc_t *lc, const cJSON *mcp, const char *path, const char *cluster_name,
                 const char *const *extra)
{
    static const char *const known[] = {"targets", "prefixMode", "failureMode", "statefulMode", "serverStream",
                                        "serverInfo", NULL};
    char p[LC_PATH_MAX];
    const cJSON *targets, *it;
    const char *prefix_mode, *failure_mode, *stateful_mode;
    cJSON *cluster, *ct, *tc, *tarr;
    size_t before = lc->errs->count, i = 0;

    if (!cJSON_IsObject(mcp)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return;
    }
    check_keys(lc, mcp, path, known, extra, NULL);
    cluster = cJSON_CreateObject();
    add_string(cluster, "name", cluster_name);
    add_string(cluster, "connect_timeout", "5s");
    ct = add_object(cluster, "cluster_type");
    add_string(ct, "name", "mcplex.clusters.mcp");
    tc = add_object(ct, "typed_config");
    add_string(tc, "@type", TYPE_MCP_BACKEND);
    add_string(tc, "name_separator", LC_SEPARATOR);

    prefix_mode = get_string(lc, mcp, "prefixMode", path, 0);
    if (prefix_mode != NULL) {
        if (strcmp(prefix_mode, "always") == 0)
            add_string(tc, "prefix_mode", "ALWAYS");
        else if (strcmp(prefix_mode, "conditional") == 0)
            add_string(tc, "prefix_mode", "CONDITIONAL");
        else if (strcmp(prefix_mode, "never") == 0)
            add_string(tc, "prefix_mode", "NEVER");
        else
            mcplex_errors_add(lc->errs, pkey(p, path, "prefixMode"),
                              "expected always, conditional or never, got '%s'", prefix_mode);
    }
    failure_mode = get_string(lc, mcp, "failureMode", path, 0);
    if (failure_mode != NULL) {
        if (strcmp(failure_mode, "failOpen") == 0)
            add_string(tc, "failure_mode", "FAIL_OPEN");
        else if (strcmp(failure_mode, "failClosed") == 0)
            add_string(tc, "failure_mode", "FAIL_CLOSED");
        else
            mcplex_errors_add(lc->errs, pkey(p, path, "failureMode"),
                              "expected failOpen or failClosed, got '%s'", failure_mode);
    }
    /* accepted for compatibility; mcplex sessions are always stateful */
    stateful_mode = get_string(lc, mcp, "statefulMode", path, 0);
    if (stateful_mode != NULL && strcmp(stateful_mode, "stateful") != 0 &&
        strcmp(stateful_mode, "stateless") != 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "statefulMode"), "expected stateful or stateless, got '%s'",
                          stateful_mode);

    /* serverStream: {disabled, replayBufferBytes, heartbeatInterval}: McpBackend.server_stream in
     * its JSON names, checked by the mapper. */
    if (get(mcp, "serverStream") != NULL)
        cJSON_AddItemToObject(tc, "server_stream", cJSON_Duplicate(get(mcp, "serverStream"), 1));
    /* serverInfo: {name, version, title} of the merged initialize (McpBackend.server_info). */
    if (get(mcp, "serverInfo") != NULL)
        cJSON_AddItemToObject(tc, "server_info", cJSON_Duplicate(get(mcp, "serverInfo"), 1));
    tarr = add_array(tc, "targets");
    targets = get_array(lc, mcp, "targets", path, 1);
    if (targets != NULL && cJSON_GetArraySize(targets) == 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "targets"), "at least one target is required");
    if (targets != NULL) {
        cJSON_ArrayForEach (it, targets) {
            char tp[LC_PATH_MAX];
            cJSON *t = target_json(lc, it, pfmt(tp, "%s[%zu]", pkey(p, path, "targets"), i), targets, i);
            if (t != NULL)
                cJSON_AddItemToArray(tarr, t);
            i++;
        }
    }
    if (lc->errs->count != before) {
        cJSON_Delete(cluster);
        return;
    }
    cJSON_AddItemToArray(lc->clusters, cluster);
}

/* ---- routes ------------------------------------------------------------------------------ */

/* A list of strings -> "a,b,c" (malloc'ed), or NULL with an error. */
static char *
join_list(lc_t *lc, const cJSON *v, const char *path)
{
    size_t len = 1, i = 0;
    const cJSON *it;
    char *out, q[LC_PATH_MAX];

    if (!cJSON_IsArray(v)) {
        mcplex_errors_add(lc->errs, path, "expected a list of strings");
        return NULL;
    }
    cJSON_ArrayForEach (it, v) {
        if (!cJSON_IsString(it)) {
            mcplex_errors_add(lc->errs, pfmt(q, "%s[%zu]", path, i), "expected a string");
            return NULL;
        }
        len += strlen(it->valuestring) + 1;
        i++;
    }
    out = mcplex_calloc(1, len);
    cJSON_ArrayForEach (it, v) {
        if (out[0] != '\0')
            strcat(out, ",");
        strcat(out, it->valuestring);
    }
    return out;
}

/* policies.cors -> an Envoy CorsPolicy JSON (with "@type"), or NULL with errors. */
static cJSON *
cors_json(lc_t *lc, const cJSON *cors, const char *path)
{
    static const char *const known[] = {
        "allowOrigins", "allowHeaders", "exposeHeaders", "allowMethods", "maxAge", "allowCredentials", NULL};
    static const char *const lists[][2] = {
        {"allowHeaders", "allow_headers"},
        {"exposeHeaders", "expose_headers"},
        {"allowMethods", "allow_methods"},
    };
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    size_t before = lc->errs->count, i = 0;
    const cJSON *origins, *it, *max_age;
    cJSON *out;
    int creds;

    if (!cJSON_IsObject(cors)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    check_keys(lc, cors, path, known, NULL, NULL);
    out = cJSON_CreateObject();
    add_string(out, "@type", TYPE_CORS_POLICY);
    origins = get_array(lc, cors, "allowOrigins", path, 0);
    if (origins != NULL) {
        cJSON *arr = add_array(out, "allow_origin_string_match");
        cJSON_ArrayForEach (it, origins) {
            cJSON *m;
            pfmt(q, "%s[%zu]", pkey(p, path, "allowOrigins"), i++);
            if (!cJSON_IsString(it)) {
                mcplex_errors_add(lc->errs, q, "expected a string");
                continue;
            }
            m = cJSON_CreateObject();
            if (strcmp(it->valuestring, "*") == 0) {
                add_string(m, "prefix", "");
            } else if (strchr(it->valuestring, '*') != NULL) {
                mcplex_errors_add(lc->errs, q, "wildcard origins other than \"*\" are not supported");
            } else {
                add_string(m, "exact", it->valuestring);
            }
            cJSON_AddItemToArray(arr, m);
        }
    }
    for (size_t k = 0; k < MCPLEX_ARRAY_SIZE(lists); k++) {
        const cJSON *v = get(cors, lists[k][0]);
        char *joined;
        if (v == NULL || cJSON_IsNull(v))
            continue;
        joined = join_list(lc, v, pkey(p, path, lists[k][0]));
        if (joined != NULL)
            add_string(out, lists[k][1], joined);
        free(joined);
    }
    max_age = get(cors, "maxAge");
    if (max_age != NULL && !cJSON_IsNull(max_age)) {
        char *d = parse_duration(lc, max_age, pkey(p, path, "maxAge"));
        if (d != NULL) {
            /* Envoy's max_age is whole seconds as text */
            char *secs = mcplex_sprintf("%llu", strtoull(d, NULL, 10));
            add_string(out, "max_age", secs);
            free(secs);
        }
        free(d);
    }
    creds = get_bool(lc, cors, "allowCredentials", path, 0);
    if (creds == 1)
        cJSON_AddItemToObject(out, "allow_credentials", cJSON_CreateTrue());
    if (lc->errs->count != before) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* policies -> the CORS policy JSON or NULL (also NULL on errors, which are added). */
static cJSON *
policies_json(lc_t *lc, const cJSON *policies, const char *path)
{
    static const char *const known[] = {"cors", "dnsRebindingProtection", "allowedOrigins", "allowedHosts",
                                        NULL};
    static const char *const unsupported[] = {"requestHeaderModifier",
                                              "responseHeaderModifier",
                                              "requestRedirect",
                                              "urlRewrite",
                                              "requestMirror",
                                              "directResponse",
                                              "mcpAuthorization",
                                              "mcpAuthentication",
                                              "a2a",
                                              "ai",
                                              "backendTLS",
                                              "backendAuth",
                                              "localRateLimit",
                                              "remoteRateLimit",
                                              "jwtAuth",
                                              "extAuthz",
                                              "extProc",
                                              "transformations",
                                              "csrf",
                                              "timeout",
                                              "retry",
                                              "basicAuth",
                                              "apiKey",
                                              "oidc",
                                              "authorization",
                                              "http",
                                              "tcp",
                                              "extMcp",
                                              "backendTunnel",
                                              "inferenceRouting",
                                              "health",
                                              NULL};
    char p[LC_PATH_MAX];
    const cJSON *cors;

    if (policies == NULL || cJSON_IsNull(policies))
        return NULL;
    if (!cJSON_IsObject(policies)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return NULL;
    }
    check_keys(lc, policies, path, known, NULL, unsupported);
    cors = get(policies, "cors");
    if (cors == NULL || cJSON_IsNull(cors))
        return NULL;
    return cors_json(lc, cors, pkey(p, path, "cors"));
}

/* --- origin (issue 3) --- */
/*
 * policies.{dnsRebindingProtection, allowedOrigins, allowedHosts} -> an McpRoute JSON (with
 * "@type"), or NULL when none is set or on errors (added). Values are checked by the translator.
 */
static cJSON *
mcp_route_json(lc_t *lc, const cJSON *policies, const char *path)
{
    static const char *const lists[][2] = {{"allowedOrigins", "allowed_origins"},
                                           {"allowedHosts", "allowed_hosts"}};
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    size_t before = lc->errs->count;
    cJSON *out;
    int on;

    if (!cJSON_IsObject(policies))
        return NULL;
    on = get_bool(lc, policies, "dnsRebindingProtection", path, -2);
    if (on == -2 && get(policies, "allowedOrigins") == NULL && get(policies, "allowedHosts") == NULL)
        return NULL;
    out = cJSON_CreateObject();
    add_string(out, "@type", TYPE_MCP_ROUTE);
    if (on >= 0)
        add_string(out, "dns_rebinding_protection", on ? "ON" : "OFF");
    for (size_t k = 0; k < 2; k++) {
        const cJSON *arr = get_array(lc, policies, lists[k][0], path, 0), *it;
        cJSON *dst;
        size_t i = 0;
        if (arr == NULL)
            continue;
        dst = add_array(out, lists[k][1]);
        cJSON_ArrayForEach (it, arr) {
            if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
                mcplex_errors_add(lc->errs, pfmt(q, "%s[%zu]", pkey(p, path, lists[k][0]), i),
                                  "expected a non-empty string");
            else
                cJSON_AddItemToArray(dst, cJSON_CreateString(it->valuestring));
            i++;
        }
    }
    if (lc->errs->count != before) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
/* --- end origin --- */

/* matches[] -> an array of Envoy RouteMatch JSON objects, or NULL with errors. */
static cJSON *
matches_json(lc_t *lc, const cJSON *route, const char *path)
{
    static const char *const known[] = {"path", NULL};
    static const char *const unsupported[] = {"headers", "method", "query", NULL};
    static const char *const path_known[] = {"pathPrefix", "exact", NULL};
    static const char *const path_unsupported[] = {"regex", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX], r[LC_PATH_MAX];
    const cJSON *matches, *it;
    cJSON *out = cJSON_CreateArray();
    size_t before = lc->errs->count, i = 0;

    matches = get(route, "matches");
    if (matches == NULL || cJSON_IsNull(matches)) {
        cJSON *m = cJSON_CreateObject();
        add_string(m, "prefix", "/");
        cJSON_AddItemToArray(out, m);
        return out;
    }
    pkey(p, path, "matches");
    if (!cJSON_IsArray(matches)) {
        mcplex_errors_add(lc->errs, p, "expected a list");
        goto fail;
    }
    if (cJSON_GetArraySize(matches) == 0) {
        mcplex_errors_add(lc->errs, p, "must not be empty (leave it out to match every path)");
        goto fail;
    }
    cJSON_ArrayForEach (it, matches) {
        const cJSON *pm;
        cJSON *m;
        pfmt(q, "%s[%zu]", p, i++);
        if (!cJSON_IsObject(it)) {
            mcplex_errors_add(lc->errs, q, "expected an object");
            continue;
        }
        check_keys(lc, it, q, known, NULL, unsupported);
        m = cJSON_CreateObject();
        cJSON_AddItemToArray(out, m);
        pm = get_object(lc, it, "path", q, 0);
        if (pm == NULL) {
            add_string(m, "prefix", "/");
            continue;
        }
        pkey(r, q, "path");
        if (check_keys(lc, pm, r, path_known, NULL, path_unsupported) > 0)
            continue;
        if (cJSON_GetArraySize(pm) != 1) {
            mcplex_errors_add(lc->errs, r, "exactly one of pathPrefix or exact is required");
            continue;
        }
        if (get(pm, "pathPrefix") != NULL) {
            const char *s = get_string(lc, pm, "pathPrefix", r, 1);
            if (s != NULL)
                add_string(m, "prefix", s);
        } else {
            const char *s = get_string(lc, pm, "exact", r, 1);
            if (s != NULL)
                add_string(m, "path", s);
        }
    }
    if (lc->errs->count == before)
        return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

static int
has_any_key(const cJSON *obj, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (get(obj, keys[i]) != NULL)
            return 1;
    }
    return 0;
}

static int
named_backend_exists(const lc_t *lc, const char *name)
{
    const cJSON *it;

    cJSON_ArrayForEach (it, lc->named) {
        const cJSON *n = get(it, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

/*
 * One route -> Envoy routes appended to |routes_out|; sets *any_cors when it has a CORS policy.
 * |route_index| names its inline backends' clusters.
 */
static void
translate_route(lc_t *lc, const cJSON *route, const char *path, cJSON *routes_out, int *any_cors)
{
    static const char *const known[] = {"name",     "namespace", "ruleName", "matches",
                                        "policies", "backends",  NULL};
    static const char *const unsupported[] = {"hostnames", NULL};
    static const char *const be_known[] = {"mcp", "backend", "weight", "name", NULL};
    static const char *const be_unsupported[] = {"host",    "service",    "ai",       "aws",
                                                 "dynamic", "routeGroup", "policies", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX], r[LC_PATH_MAX];
    size_t before = lc->errs->count, route_index = lc->n_routes++, j = 0, n_backends;
    const cJSON *backends, *it;
    const char *name;
    cJSON *cors, *matches, *action = NULL, *weighted;
    cJSON *mcp_route; /* origin (issue 3) */
    uint64_t total_weight = 0;

    if (!cJSON_IsObject(route)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return;
    }
    check_keys(lc, route, path, known, NULL, unsupported);
    name = get_string(lc, route, "name", path, 0);
    matches = matches_json(lc, route, path);
    cors = policies_json(lc, get(route, "policies"), pkey(p, path, "policies"));
    mcp_route = mcp_route_json(lc, get(route, "policies"), pkey(p, path, "policies")); /* origin (issue 3) */

    backends = get_array(lc, route, "backends", path, 1);
    n_backends = backends != NULL ? (size_t)cJSON_GetArraySize(backends) : 0;
    if (backends != NULL && n_backends == 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "backends"), "at least one backend is required");
    weighted = cJSON_CreateArray();
    if (backends != NULL) {
        pkey(p, path, "backends");
        cJSON_ArrayForEach (it, backends) {
            uint64_t weight = 1;
            const char *bname, *ref;
            char *cluster = NULL;
            cJSON *cw;

            pfmt(q, "%s[%zu]", p, j);
            if (!cJSON_IsObject(it)) {
                mcplex_errors_add(lc->errs, q, "expected an object");
                j++;
                continue;
            }
            check_keys(lc, it, q, be_known, NULL, be_unsupported);
            get_uint(lc, it, "weight", q, 0, UINT32_MAX, &weight);
            bname = get_string(lc, it, "name", q, 0);
            ref = get_string(lc, it, "backend", q, 0);
            if (get(it, "mcp") != NULL && ref != NULL) {
                mcplex_errors_add(lc->errs, q, "only one of mcp or backend may be set");
            } else if (get(it, "mcp") != NULL) {
                cluster = bname != NULL ? mcplex_strdup(bname)
                                        : mcplex_sprintf("route%zu/backend%zu", route_index, j);
                if (cluster_name_taken(lc, cluster)) {
                    mcplex_errors_add(lc->errs, pkey(r, q, "name"), "duplicate backend name '%s'", cluster);
                } else {
                    remember_cluster_name(lc, cluster);
                    emit_mcp_backend(lc, get(it, "mcp"), pkey(r, q, "mcp"), cluster, NULL);
                }
            } else if (ref != NULL) {
                if (bname != NULL)
                    mcplex_errors_add(lc->errs, pkey(r, q, "name"), "only inline mcp backends take a name");
                if (!named_backend_exists(lc, ref))
                    mcplex_errors_add(lc->errs, pkey(r, q, "backend"),
                                      "unknown backend '%s' (not in the top-level backends)", ref);
                cluster = mcplex_strdup(ref);
            } else if (!has_any_key(it, be_unsupported)) {
                mcplex_errors_add(lc->errs, q, "one of mcp or backend is required");
            }
            if (cluster != NULL) {
                cw = cJSON_CreateObject();
                add_string(cw, "name", cluster);
                add_number(cw, "weight", (double)weight);
                cJSON_AddItemToArray(weighted, cw);
                total_weight += weight;
            }
            free(cluster);
            j++;
        }
        if (n_backends > 1 && total_weight == 0 && lc->errs->count == before)
            mcplex_errors_add(lc->errs, p, "the sum of the backends' weights must be greater than 0");
        if (total_weight > UINT32_MAX)
            mcplex_errors_add(lc->errs, p, "the sum of the backends' weights must be at most 4294967295");
    }
    if (lc->errs->count != before)
        goto out;

    action = cJSON_CreateObject();
    if (n_backends == 1) {
        add_string(action, "cluster", get(cJSON_GetArrayItem(weighted, 0), "name")->valuestring);
    } else {
        cJSON *wc = add_object(action, "weighted_clusters");
        cJSON_AddItemToObject(wc, "clusters", weighted);
        weighted = NULL;
    }
    add_string(action, "timeout", "0s");
    cJSON_ArrayForEach (it, matches) {
        cJSON *er = cJSON_CreateObject();
        if (name != NULL)
            add_string(er, "name", name);
        cJSON_AddItemToObject(er, "match", cJSON_Duplicate(it, 1));
        cJSON_AddItemToObject(er, "route", cJSON_Duplicate(action, 1));
        if (cors != NULL) {
            cJSON *tpfc = add_object(er, "typed_per_filter_config");
            cJSON_AddItemToObject(tpfc, "envoy.filters.http.cors", cJSON_Duplicate(cors, 1));
            *any_cors = 1;
        }
        if (mcp_route != NULL) { /* origin (issue 3) */
            cJSON *tpfc = cJSON_GetObjectItemCaseSensitive(er, "typed_per_filter_config");
            if (tpfc == NULL)
                tpfc = add_object(er, "typed_per_filter_config");
            cJSON_AddItemToObject(tpfc, MCP_ROUTE_FILTER, cJSON_Duplicate(mcp_route, 1));
        }
        cJSON_AddItemToArray(routes_out, er);
    }
out:
    cJSON_Delete(action);
    cJSON_Delete(weighted);
    cJSON_Delete(matches);
    cJSON_Delete(cors);
    cJSON_Delete(mcp_route); /* origin (issue 3) */
}

/* ---- listeners and binds ----------------------------------------------------------------- */

static int
vhosts_have_domain(const cJSON *vhosts, const char *domain)
{
    const cJSON *vh, *d;

    cJSON_ArrayForEach (vh, vhosts) {
        cJSON_ArrayForEach (d, get(vh, "domains")) {
            if (strcmp(d->valuestring, domain) == 0)
                return 1;
        }
    }
    return 0;
}

static void
translate_listener(lc_t *lc, const cJSON *l, const char *path, size_t index, cJSON *vhosts, int *any_cors)
{
    static const char *const known[] = {"name", "namespace", "hostname", "protocol", "routes", NULL};
    static const char *const unsupported[] = {"tls", "tcpRoutes", "policies", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    const char *name, *hostname, *protocol;
    const cJSON *routes, *it;
    cJSON *vh, *rarr;
    size_t i = 0;

    if (!cJSON_IsObject(l)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return;
    }
    check_keys(lc, l, path, known, NULL, unsupported);
    name = get_string(lc, l, "name", path, 0);
    hostname = get_string(lc, l, "hostname", path, 0);
    protocol = get_string(lc, l, "protocol", path, 0);
    if (protocol != NULL && strcmp(protocol, "HTTP") != 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "protocol"), "only HTTP listeners are supported, not '%s'",
                          protocol);
    if (hostname == NULL || hostname[0] == '\0')
        hostname = "*";
    if (vhosts_have_domain(vhosts, hostname))
        mcplex_errors_add(lc->errs, pkey(p, path, "hostname"),
                          "another listener of this bind already serves hostname '%s'", hostname);
    vh = cJSON_CreateObject();
    if (name != NULL)
        add_string(vh, "name", name);
    else
        add_string(vh, "name", pfmt(p, "listener%zu", index));
    cJSON_AddItemToArray(add_array(vh, "domains"), cJSON_CreateString(hostname));
    rarr = add_array(vh, "routes");
    cJSON_AddItemToArray(vhosts, vh);
    routes = get_array(lc, l, "routes", path, 0);
    if (routes == NULL)
        return;
    cJSON_ArrayForEach (it, routes) {
        translate_route(lc, it, pfmt(q, "%s[%zu]", pkey(p, path, "routes"), i), rarr, any_cors);
        i++;
    }
}

/* An IP literal or "localhost" -> the address to bind (malloc'ed), or NULL. */
static char *
bind_address(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (strcmp(s, "localhost") == 0)
        return mcplex_strdup("127.0.0.1");
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
        return mcplex_strdup(s);
    return NULL;
}

/* Appends one Envoy listener with its HCM. Takes ownership of |vhosts|. */
static void
emit_listener(lc_t *lc, const char *address, unsigned port, cJSON *vhosts, int any_cors)
{
    char name[64], stat[64];
    cJSON *l, *fc, *f, *hcm, *rc, *filters, *hf;

    snprintf(name, sizeof(name), "bind/%u", port);
    snprintf(stat, sizeof(stat), "bind_%u", port);
    l = cJSON_CreateObject();
    add_string(l, "name", name);
    cJSON_AddItemToObject(l, "address", socket_address_json(address, port));
    fc = cJSON_CreateObject();
    cJSON_AddItemToArray(add_array(l, "filter_chains"), fc);
    f = cJSON_CreateObject();
    cJSON_AddItemToArray(add_array(fc, "filters"), f);
    add_string(f, "name", "envoy.filters.network.http_connection_manager");
    hcm = add_object(f, "typed_config");
    add_string(hcm, "@type", TYPE_HCM);
    add_string(hcm, "stat_prefix", stat);
    add_string(hcm, "codec_type", "AUTO");
    rc = add_object(hcm, "route_config");
    add_string(rc, "name", name);
    cJSON_AddItemToObject(rc, "virtual_hosts", vhosts);
    filters = add_array(hcm, "http_filters");
    if (any_cors) {
        hf = cJSON_CreateObject();
        add_string(hf, "name", "envoy.filters.http.cors");
        add_string(add_object(hf, "typed_config"), "@type", TYPE_CORS);
        cJSON_AddItemToArray(filters, hf);
    }
    hf = cJSON_CreateObject();
    add_string(hf, "name", "envoy.filters.http.router");
    add_string(add_object(hf, "typed_config"), "@type", TYPE_ROUTER);
    cJSON_AddItemToArray(filters, hf);
    cJSON_AddItemToArray(lc->listeners, l);
}

static void
translate_bind(lc_t *lc, const cJSON *bind, const char *path)
{
    static const char *const known[] = {"port", "address", "listeners", NULL};
    static const char *const unsupported[] = {"tunnelProtocol", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    const cJSON *listeners, *it;
    const char *address;
    char *addr = NULL;
    uint64_t port = 0;
    cJSON *vhosts = NULL;
    size_t before = lc->errs->count, i = 0;
    int any_cors = 0;

    if (!cJSON_IsObject(bind)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return;
    }
    check_keys(lc, bind, path, known, NULL, unsupported);
    if (get_uint(lc, bind, "port", path, 1, 65535, &port) == 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "port"), "is required");
    address = get_string(lc, bind, "address", path, 0);
    if (address != NULL) {
        addr = bind_address(address);
        if (addr == NULL)
            mcplex_errors_add(lc->errs, pkey(p, path, "address"),
                              "expected an IP address or localhost, got '%s'", address);
    }
    vhosts = cJSON_CreateArray();
    listeners = get_array(lc, bind, "listeners", path, 1);
    if (listeners != NULL && cJSON_GetArraySize(listeners) == 0)
        mcplex_errors_add(lc->errs, pkey(p, path, "listeners"), "at least one listener is required");
    if (listeners != NULL) {
        cJSON_ArrayForEach (it, listeners) {
            translate_listener(lc, it, pfmt(q, "%s[%zu]", pkey(p, path, "listeners"), i), i, vhosts,
                               &any_cors);
            i++;
        }
    }
    if (lc->errs->count != before)
        goto out;
    emit_listener(lc, addr != NULL ? addr : "127.0.0.1", (unsigned)port, vhosts, any_cors);
    vhosts = NULL;
out:
    cJSON_Delete(vhosts);
    free(addr);
}

/* The short top-level form: mcp: {port?, targets, ..., policies?}. */
static void
translate_simple_mcp(lc_t *lc, const cJSON *mcp)
{
    static const char *const extra[] = {"port", "policies", NULL};
    const char *path = "mcp";
    size_t before = lc->errs->count;
    uint64_t port = LC_DEFAULT_SIMPLE_PORT;
    cJSON *cors, *vhosts, *vh, *route, *action;
    cJSON *mcp_route; /* origin (issue 3) */
    char p[LC_PATH_MAX];

    if (!cJSON_IsObject(mcp)) {
        mcplex_errors_add(lc->errs, path, "expected an object");
        return;
    }
    get_uint(lc, mcp, "port", path, 1, 65535, &port);
    cors = policies_json(lc, get(mcp, "policies"), pkey(p, path, "policies"));
    mcp_route = mcp_route_json(lc, get(mcp, "policies"), pkey(p, path, "policies")); /* origin (issue 3) */
    if (cluster_name_taken(lc, "mcp"))
        mcplex_errors_add(lc->errs, path, "a top-level backend is already named 'mcp'");
    else
        remember_cluster_name(lc, "mcp");
    emit_mcp_backend(lc, mcp, path, "mcp", extra);
    if (lc->errs->count != before) {
        cJSON_Delete(cors);
        cJSON_Delete(mcp_route); /* origin (issue 3) */
        return;
    }
    vhosts = cJSON_CreateArray();
    vh = cJSON_CreateObject();
    cJSON_AddItemToArray(vhosts, vh);
    add_string(vh, "name", "mcp");
    cJSON_AddItemToArray(add_array(vh, "domains"), cJSON_CreateString("*"));
    route = cJSON_CreateObject();
    cJSON_AddItemToArray(add_array(vh, "routes"), route);
    add_string(add_object(route, "match"), "prefix", "/");
    action = add_object(route, "route");
    add_string(action, "cluster", "mcp");
    add_string(action, "timeout", "0s");
    if (cors != NULL)
        cJSON_AddItemToObject(add_object(route, "typed_per_filter_config"), "envoy.filters.http.cors", cors);
    if (mcp_route != NULL) { /* origin (issue 3) */
        cJSON *tpfc = (cJSON *)get(route, "typed_per_filter_config");
        if (tpfc == NULL)
            tpfc = add_object(route, "typed_per_filter_config");
        cJSON_AddItemToObject(tpfc, MCP_ROUTE_FILTER, mcp_route);
    }
    emit_listener(lc, "127.0.0.1", (unsigned)port, vhosts, cors != NULL);
}

/* Top-level backends[]: {name, mcp} -> clusters named |name|. */
static void
translate_named_backends(lc_t *lc, const cJSON *backends)
{
    static const char *const known[] = {"name", "mcp", NULL};
    static const char *const unsupported[] = {"host", "ai", "aws", "policies", NULL};
    char p[LC_PATH_MAX], q[LC_PATH_MAX];
    const cJSON *it;
    size_t i = 0;

    cJSON_ArrayForEach (it, backends) {
        const char *name;
        pfmt(p, "backends[%zu]", i++);
        if (!cJSON_IsObject(it)) {
            mcplex_errors_add(lc->errs, p, "expected an object");
            continue;
        }
        check_keys(lc, it, p, known, NULL, unsupported);
        name = get_string(lc, it, "name", p, 1);
        if (get_object(lc, it, "mcp", p, 1) == NULL || name == NULL)
            continue;
        if (cluster_name_taken(lc, name)) {
            mcplex_errors_add(lc->errs, pkey(q, p, "name"), "duplicate backend name '%s'", name);
            continue;
        }
        remember_cluster_name(lc, name);
        emit_mcp_backend(lc, get(it, "mcp"), pkey(q, p, "mcp"), name, NULL);
    }
}

/* config: {adminAddr} -> the bootstrap's admin block. */
static void
translate_admin(lc_t *lc, const cJSON *config, cJSON *bootstrap)
{
    static const char *const known[] = {"adminAddr", NULL};
    const char *addr = LC_DEFAULT_ADMIN, *colon;
    char host[128], p[LC_PATH_MAX], *ip = NULL;
    const cJSON *it;
    unsigned long port;
    char *end;

    if (config != NULL && !cJSON_IsNull(config)) {
        const char *given;
        if (!cJSON_IsObject(config)) {
            mcplex_errors_add(lc->errs, "config", "expected an object");
            return;
        }
        /* the rest of agentgateway's `config` (logging, tracing, workers, ...) is not mcplex's */
        cJSON_ArrayForEach (it, config) {
            if (!in_list(it->string, known))
                mcplex_errors_add(lc->errs, pkey(p, "config", it->string), "not supported by mcplex");
        }
        given = get_string(lc, config, "adminAddr", "config", 0);
        if (given != NULL)
            addr = given;
    }
    colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        goto bad;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 1 || port > 65535)
        goto bad;
    ip = bind_address(host);
    if (ip == NULL)
        goto bad;
    cJSON_AddItemToObject(add_object(bootstrap, "admin"), "address", socket_address_json(ip, (unsigned)port));
    free(ip);
    return;
bad:
    mcplex_errors_add(lc->errs, "config.adminAddr", "expected <ip>:<port> or localhost:<port>, got '%s'",
                      addr);
}

cJSON *
mcplex_local_config_to_bootstrap(const cJSON *local, mcplex_errors_t *errs)
{
    static const char *const known[] = {"binds", "backends", "mcp", "config", NULL};
    static const char *const unsupported[] = {"frontendPolicies", "policies", "workloads", "services",
                                              "routeGroups",      "llm",      NULL};
    lc_t lc = {.errs = errs};
    size_t before = errs->count, i = 0;
    const cJSON *binds, *it;
    cJSON *bootstrap, *sr;
    char p[LC_PATH_MAX];

    bootstrap = cJSON_CreateObject();
    if (!cJSON_IsObject(local)) {
        mcplex_errors_add(errs, NULL, "the local config must be a mapping at the top level");
        goto fail;
    }
    if (get(local, "listeners") != NULL)
        mcplex_errors_add(errs, "listeners", "top-level listeners are not supported; put them under binds[]");
    {
        static const char *const extra[] = {"listeners", NULL};
        check_keys(&lc, local, "", known, extra, unsupported);
    }
    translate_admin(&lc, get(local, "config"), bootstrap);
    sr = add_object(bootstrap, "static_resources");
    lc.listeners = add_array(sr, "listeners");
    lc.clusters = add_array(sr, "clusters");
    lc.named = get_array(&lc, local, "backends", "", 0);
    if (lc.named != NULL)
        translate_named_backends(&lc, lc.named);
    if (get(local, "mcp") != NULL && !cJSON_IsNull(get(local, "mcp")))
        translate_simple_mcp(&lc, get(local, "mcp"));
    binds = get_array(&lc, local, "binds", "", 0);
    if (binds != NULL) {
        cJSON_ArrayForEach (it, binds) {
            translate_bind(&lc, it, pfmt(p, "binds[%zu]", i));
            i++;
        }
    }
fail:
    if (errs->count != before) {
        cJSON_Delete(bootstrap);
        bootstrap = NULL;
    }
    for (size_t k = 0; k < lc.n_cluster_names; k++)
        free(lc.cluster_names[k]);
    free(lc.cluster_names);
    return bootstrap;
}
