/*
 * translate.c - the translators from protobuf-c messages (Envoy Bootstrap, Listener,
 * RouteConfiguration, Cluster, and the MCP extension messages inside them) to the internal
 * model (model.h), validating everything and collecting EVERY error as "path.to.field: message".
 * Also the cross-resource reference list (config.h) and the http(s) URL parser.
 *
 * Extensions are selected by the type URL of their Any (TypedStruct included), by name only when
 * typed_config is absent, as Envoy does (research/xds-subset.md 2.3).
 *
 * Thread: config loading, main thread. Pure code over its arguments and the read-only
 * descriptor registry, so xDS may run it on any thread.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/access_log.h" /* access_log (issue 7) */
#include "common/log.h"
#include "common/mem.h"
#include "config/pbmap.h"
#include "http/http.h" /* MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES */
#include "mcp/naming.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint_components.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/listener/v3/listener_components.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/clusters/mcp_multicluster/v3/cluster.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/mcp/v3/mcp.pb-c.h"
#include "envoy/extensions/filters/http/mcp_router/v3/mcp_router.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "net/tls.h" /* TLS (issue 4): certificates are loaded at translation */
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "envoy/type/matcher/v3/string.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "mcplex/extensions/clusters/mcp/v1/mcp.pb-c.h"
#include "mcplex/extensions/filters/http/mcp/v1/mcp_route.pb-c.h" /* origin (issue 3) */
#include "config/mcp_route.h"                                       /* origin (issue 3) */

#ifndef MCPLEX_VERSION
#define MCPLEX_VERSION "0.0.0"
#endif

#define PATH_MAX_LEN 768
#define TYPE_URL_MAX 512

#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define DEFAULT_ROUTE_TIMEOUT_MS 15000u
#define DEFAULT_TARGET_TIMEOUT_MS 5000u
#define DEFAULT_STREAM_IDLE_TIMEOUT_MS 300000u
#define DEFAULT_MAX_REQUEST_HEADERS_KB 60u
#define MAX_BODY_LIMIT_BYTES (1024ull * 1024 * 1024)
#define DEFAULT_DRAIN_TIMEOUT_MS 5000u /* HCM drain_timeout (Envoy's default), issue 4 */
#define ENVOY_SEPARATOR "__"

/* Full message names (the part of a type URL after the last '/'). */
#define T_HCM "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define T_ROUTER "envoy.extensions.filters.http.router.v3.Router"
#define T_CORS "envoy.extensions.filters.http.cors.v3.Cors"
#define T_CORS_POLICY "envoy.extensions.filters.http.cors.v3.CorsPolicy"
#define T_MCP "envoy.extensions.filters.http.mcp.v3.Mcp"
#define T_MCP_ROUTER "envoy.extensions.filters.http.mcp_router.v3.McpRouter"
#define T_MULTICLUSTER "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig"
#define T_MCPLEX_BACKEND "mcplex.extensions.clusters.mcp.v1.McpBackend"
#define T_FILTER_CONFIG "envoy.config.route.v3.FilterConfig"
#define T_HTTP_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define T_UPSTREAM_TLS "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define T_RAW_BUFFER "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
#define T_TLS_INSPECTOR "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"

#define N_HCM "envoy.filters.network.http_connection_manager"
#define N_ROUTER "envoy.filters.http.router"
#define N_CORS "envoy.filters.http.cors"
#define N_MCP "envoy.filters.http.mcp"
#define N_MCP_ROUTER "envoy.filters.http.mcp_router"
#define N_TLS_INSPECTOR "envoy.filters.listener.tls_inspector"
#define N_TLS_SOCKET "envoy.transport_sockets.tls"
#define N_RAW_BUFFER "envoy.transport_sockets.raw_buffer"

/*
 * The longest generated identifiers do not fit on a line: they are pasted together from parts.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define HCM_PKG ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__
#define HCM_ENUM(x) CAT(HCM_PKG, CAT(HTTP_CONNECTION_MANAGER__, x))
#define HCM_CODEC_AUTO HCM_ENUM(CODEC_TYPE__AUTO)
#define HCM_CODEC_HTTP1 HCM_ENUM(CODEC_TYPE__HTTP1)
#define HCM_CODEC_HTTP2 HCM_ENUM(CODEC_TYPE__HTTP2)
#define HCM_ROUTE_CONFIG HCM_ENUM(ROUTE_SPECIFIER_ROUTE_CONFIG)
#define HCM_RDS HCM_ENUM(ROUTE_SPECIFIER_RDS)
#define HF_CONFIG_DISCOVERY CAT(HCM_PKG, HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY)
#define HF_TYPED_CONFIG CAT(HCM_PKG, HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG)
#define HCM_DESCRIPTOR_PKG envoy__extensions__filters__network__http_connection_manager__v3__
#define HCM_DESCRIPTOR CAT(HCM_DESCRIPTOR_PKG, http_connection_manager__descriptor)
#define UPO_PKG ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__
#define UPO_EXPLICIT CAT(UPO_PKG, UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG)
#define UPO_EXPLICIT_H2 CAT(UPO_PKG, EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS)

typedef Google__Protobuf__Any pb_any_t;
typedef Google__Protobuf__Duration pb_duration_t;
typedef Envoy__Config__Core__V3__Address pb_address_t;
typedef Envoy__Config__Core__V3__SocketAddress pb_socket_address_t;
typedef Envoy__Config__Core__V3__HeaderValueOption pb_header_option_t;
typedef Envoy__Config__Listener__V3__FilterChain pb_filter_chain_t;
typedef Envoy__Config__Listener__V3__Filter pb_filter_t;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager pb_hcm_t;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter pb_http_filter_t;
typedef Envoy__Config__Route__V3__VirtualHost pb_vhost_t;
typedef Envoy__Config__Route__V3__Route pb_route_t;
typedef Envoy__Config__Route__V3__RouteMatch pb_route_match_t;
typedef Envoy__Config__Route__V3__RouteAction pb_route_action_t;
typedef Envoy__Config__Route__V3__CorsPolicy pb_route_cors_t;
typedef Envoy__Config__Route__V3__FilterConfig pb_filter_config_t;
typedef Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy pb_cors_policy_t;
typedef Envoy__Type__Matcher__V3__StringMatcher pb_string_matcher_t;
typedef Envoy__Extensions__Filters__Http__McpRouter__V3__McpRouter pb_mcp_router_t;
typedef Envoy__Extensions__Clusters__McpMulticluster__V3__ClusterConfig pb_multicluster_t;
typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions pb_http_options_t;
typedef Mcplex__Extensions__Clusters__Mcp__V1__McpBackend pb_mcp_backend_t;
typedef Mcplex__Extensions__Clusters__Mcp__V1__McpTarget pb_mcp_target_t;
typedef Mcplex__Extensions__Clusters__Mcp__V1__HttpTarget pb_http_target_t;
typedef Mcplex__Extensions__Clusters__Mcp__V1__Stdio pb_stdio_t;

/* ---- paths and small helpers ------------------------------------------------------------- */

static const char *pfmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *
pfmt(char *buf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
    return buf;
}

/* "<base>.<key>", or "<key>" when |base| is empty or NULL. */
static const char *
pkey(char *buf, const char *base, const char *key)
{
    if (base == NULL || base[0] == '\0')
        return pfmt(buf, "%s", key);
    return pfmt(buf, "%s.%s", base, key);
}

/* "<base>.<key>[<i>]" */
static const char *
pidx(char *buf, const char *base, const char *key, size_t i)
{
    if (base == NULL || base[0] == '\0')
        return pfmt(buf, "%s[%zu]", key, i);
    return pfmt(buf, "%s.%s[%zu]", base, key, i);
}

/* "<base>.<key>[\"<map key>\"]" (the mapper's spelling of map entries) */
static const char *
pmap(char *buf, const char *base, const char *key, const char *map_key)
{
    if (base == NULL || base[0] == '\0')
        return pfmt(buf, "%s[\"%s\"]", key, map_key);
    return pfmt(buf, "%s.%s[\"%s\"]", base, key, map_key);
}

static int
empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* NULL for NULL or "", else a copy. */
static char *
dup_nonempty(const char *s)
{
    return empty(s) ? NULL : mcplex_strdup(s);
}

/*
 * The message name an Any carries (its type URL after the last '/'; the inner type for a
 * TypedStruct), in |buf|; "" when it cannot be told (undecodable TypedStruct).
 */
static const char *
any_type_name(const pb_any_t *any, char *buf, size_t len)
{
    const char *url = mcplex_pb_any_real_type((const ProtobufCMessage *)any, buf, len);
    const char *slash;

    if (url == NULL)
        return "";
    slash = strrchr(url, '/');
    return slash != NULL ? slash + 1 : url;
}

/* Unpacks |any| as |want| (NULL, with errors, if it is another type or undecodable). */
static ProtobufCMessage *
any_unpack_as(const pb_any_t *any, const ProtobufCMessageDescriptor *want, const char *path,
              mcplex_errors_t *errs)
{
    const ProtobufCMessageDescriptor *desc = NULL;
    ProtobufCMessage *m = mcplex_pb_any_unpack((const ProtobufCMessage *)any, &desc, path, errs);

    if (m == NULL)
        return NULL;
    if (desc != want) {
        mcplex_errors_add(errs, path, "expected type %s, got %s", want->name, desc->name);
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

/*
 * A Duration in milliseconds into |*out| (|dflt| when absent). Returns 0, or -1 with an error
 * (negative, malformed, or over 2^32-1 ms).
 */
static int
duration_ms(const pb_duration_t *d, uint32_t dflt, const char *path, mcplex_errors_t *errs, uint32_t *out)
{
    uint64_t ms;

    *out = dflt;
    if (d == NULL)
        return 0;
    if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999) {
        mcplex_errors_add(errs, path, "invalid duration (must be non-negative)");
        return -1;
    }
    ms = (uint64_t)d->seconds * 1000u + (uint64_t)d->nanos / 1000000u;
    if ((uint64_t)d->seconds > UINT32_MAX || ms > UINT32_MAX) {
        mcplex_errors_add(errs, path, "duration too large (at most 4294967295 ms)");
        return -1;
    }
    *out = (uint32_t)ms;
    return 0;
}

/* ---- references ---------------------------------------------------------------------------- */

void
mcplex_config_refs_init(mcplex_config_refs_t *refs)
{
    memset(refs, 0, sizeof(*refs));
}

void
mcplex_config_refs_dispose(mcplex_config_refs_t *refs)
{
    for (size_t i = 0; i < refs->count; i++) {
        free(refs->items[i].path);
        free(refs->items[i].cluster);
    }
    free(refs->items);
    memset(refs, 0, sizeof(*refs));
}

void
mcplex_config_refs_add(mcplex_config_refs_t *refs, const char *path, const char *cluster,
                       mcplex_config_ref_kind_t kind)
{
    if (refs == NULL)
        return;
    if (refs->count == refs->cap) {
        refs->cap = refs->cap ? refs->cap * 2 : 16;
        refs->items = mcplex_realloc(refs->items, refs->cap * sizeof(*refs->items));
    }
    refs->items[refs->count].path = mcplex_strdup(path != NULL ? path : "");
    refs->items[refs->count].cluster = mcplex_strdup(cluster);
    refs->items[refs->count].kind = kind;
    refs->count++;
}

size_t
mcplex_config_refs_check(const mcplex_config_refs_t *refs, const mcplex_cluster_t *clusters,
                         size_t n_clusters, mcplex_errors_t *errs)
{
    size_t added = 0;

    for (size_t i = 0; i < refs->count; i++) {
        const mcplex_config_ref_t *r = &refs->items[i];
        const mcplex_cluster_t *c = NULL;

        for (size_t k = 0; k < n_clusters && c == NULL; k++) {
            if (strcmp(clusters[k].name, r->cluster) == 0)
                c = &clusters[k];
        }
        if (c == NULL) {
            mcplex_errors_add(errs, r->path, "unknown cluster '%s'", r->cluster);
            added++;
        } else if (r->kind == MCPLEX_REF_ENDPOINT_CLUSTER && c->type == MCPLEX_CLUSTER_MCP) {
            mcplex_errors_add(errs, r->path,
                              "cluster '%s' is an MCP backend; an MCP target needs a cluster with endpoints",
                              r->cluster);
            added++;
        }
    }
    return added;
}

/* ---- URLs and addresses -------------------------------------------------------------------- */

void
mcplex_url_dispose(mcplex_url_t *u)
{
    if (u == NULL)
        return;
    free(u->host);
    free(u->path);
    free(u->authority);
    memset(u, 0, sizeof(*u));
}

static int
valid_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int
mcplex_config_parse_url(const char *url, mcplex_url_t *out, char *why, size_t why_len)
{
    const char *p, *auth_end, *host_start, *host_end, *port_start = NULL;
    const char *reason = "bad host";
    unsigned char addr[sizeof(struct in6_addr)];
    unsigned long port = 0;

    memset(out, 0, sizeof(*out));
    if (url == NULL || url[0] == '\0') {
        url = "";
        reason = "empty URL";
        goto fail;
    }
    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        out->tls = 1;
    } else {
        reason = "expected http:// or https://";
        goto fail;
    }
    auth_end = p + strcspn(p, "/?#");
    if (strchr(auth_end, '#') != NULL) {
        reason = "fragments are not allowed";
        goto fail;
    }
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
        reason = "user info is not supported";
        goto fail;
    }
    if (*p == '[') {
        host_start = p + 1;
        host_end = memchr(p, ']', (size_t)(auth_end - p));
        if (host_end == NULL || (host_end + 1 < auth_end && host_end[1] != ':'))
            goto fail;
        if (host_end + 1 < auth_end)
            port_start = host_end + 2;
    } else {
        host_start = p;
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end != NULL)
            port_start = host_end + 1;
        else
            host_end = auth_end;
        for (const char *c = host_start; c < host_end; c++) {
            if (!valid_host_char(*c))
                goto fail;
        }
    }
    if (host_end == host_start)
        goto fail;
    out->host = mcplex_strndup(host_start, (size_t)(host_end - host_start));
    if (*p == '[' && inet_pton(AF_INET6, out->host, addr) != 1)
        goto fail;
    if (port_start != NULL) {
        char *end;
        reason = "bad port (1-65535)";
        if (port_start == auth_end)
            goto fail;
        for (const char *c = port_start; c < auth_end; c++) {
            if (*c < '0' || *c > '9')
                goto fail;
        }
        port = strtoul(port_start, &end, 10);
        if (end != auth_end || port < 1 || port > 65535)
            goto fail;
        out->port_given = 1;
    } else {
        port = out->tls ? 443 : 80;
    }
    out->port = (uint16_t)port;
    out->authority = mcplex_strndup(p, (size_t)(auth_end - p));
    if (*auth_end == '\0')
        out->path = mcplex_strdup("/");
    else if (*auth_end == '?')
        out->path = mcplex_sprintf("/%s", auth_end);
    else
        out->path = mcplex_strdup(auth_end);
    for (const char *c = out->path; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            reason = "the path has spaces or control characters";
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(why, why_len, "invalid URL '%s': %s", url, reason);
    mcplex_url_dispose(out);
    return -1;
}

static int
is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/*
 * A core.v3.Address at |path| -> host and port. |allow_hostname|: DNS names are accepted (DNS
 * clusters); otherwise an IP literal or "localhost" (-> 127.0.0.1). Returns 0, or -1 with errors.
 */
static int
socket_address(const pb_address_t *a, const char *path, int allow_hostname, char **host_out,
               uint16_t *port_out, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const pb_socket_address_t *sa;
    size_t before = errs->count;

    if (a == NULL) {
        mcplex_errors_add(errs, path, "is required");
        return -1;
    }
    if (a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
        mcplex_errors_add(errs, path, "only socket_address is supported");
        return -1;
    }
    sa = a->socket_address;
    pkey(p, path, "socket_address");
    if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
        mcplex_errors_add(errs, pkey(q, p, "protocol"), "only TCP is supported");
    if (empty(sa->address))
        mcplex_errors_add(errs, pkey(q, p, "address"), "is required");
    else if (!allow_hostname && strcmp(sa->address, "localhost") != 0 && !is_ip_literal(sa->address))
        mcplex_errors_add(errs, pkey(q, p, "address"), "expected an IP address, got '%s'", sa->address);
    if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE)
        mcplex_errors_add(errs, pkey(q, p, "port_value"), "is required");
    else if (sa->port_value < 1 || sa->port_value > 65535)
        mcplex_errors_add(errs, pkey(q, p, "port_value"), "must be from 1 to 65535, got %" PRIu32,
                          sa->port_value);
    if (errs->count != before)
        return -1;
    *host_out =
        mcplex_strdup(!allow_hostname && strcmp(sa->address, "localhost") == 0 ? "127.0.0.1" : sa->address);
    *port_out = (uint16_t)sa->port_value;
    return 0;
}

/* ---- CORS ---------------------------------------------------------------------------------- */

/* Both CorsPolicy messages (route.v3 and cors.v3) carry these fields. */
typedef struct cors_fields {
    pb_string_matcher_t **origins;
    size_t n_origins;
    const char *allow_methods;
    const char *allow_headers;
    const char *expose_headers;
    const char *max_age;
    const Google__Protobuf__BoolValue *allow_credentials;
} cors_fields_t;

static mcplex_cors_policy_t *
cors_build(const cors_fields_t *f, const char *path, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];
    mcplex_cors_policy_t *cp = mcplex_calloc(1, sizeof(*cp));
    size_t before = errs->count;

    cp->allow_origins = mcplex_calloc(f->n_origins, sizeof(char *));
    for (size_t i = 0; i < f->n_origins; i++) {
        const pb_string_matcher_t *m = f->origins[i];
        const char *origin = NULL;

        pidx(p, path, "allow_origin_string_match", i);
        switch (m->match_pattern_case) {
        case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
            origin = m->exact;
            break;
        case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
            if (empty(m->prefix))
                origin = "*";
            break;
        case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
            if (m->safe_regex != NULL && m->safe_regex->regex != NULL &&
                strcmp(m->safe_regex->regex, ".*") == 0)
                origin = "*";
            break;
        default:
            break;
        }
        if (empty(origin)) {
            mcplex_errors_add(errs, p,
                              "only exact origins and match-all (prefix \"\" or safe_regex \".*\") "
                              "are supported");
            continue;
        }
        cp->allow_origins[cp->n_allow_origins++] = mcplex_strdup(origin);
    }
    cp->allow_methods = dup_nonempty(f->allow_methods);
    cp->allow_headers = dup_nonempty(f->allow_headers);
    cp->expose_headers = dup_nonempty(f->expose_headers);
    if (!empty(f->max_age)) {
        for (const char *c = f->max_age; *c != '\0'; c++) {
            if (*c < '0' || *c > '9') {
                mcplex_errors_add(errs, pkey(p, path, "max_age"), "expected a number of seconds, got '%s'",
                                  f->max_age);
                break;
            }
        }
        cp->max_age = mcplex_strdup(f->max_age);
    }
    cp->allow_credentials = f->allow_credentials != NULL && f->allow_credentials->value;
    if (errs->count != before) {
        mcplex_cors_policy_free(cp);
        return NULL;
    }
    return cp;
}

static mcplex_cors_policy_t *
cors_from_route_policy(const pb_route_cors_t *c, const char *path, mcplex_errors_t *errs)
{
    cors_fields_t f = {c->allow_origin_string_match,
                       c->n_allow_origin_string_match,
                       c->allow_methods,
                       c->allow_headers,
                       c->expose_headers,
                       c->max_age,
                       c->allow_credentials};

    return cors_build(&f, path, errs);
}

static mcplex_cors_policy_t *
cors_from_filter_policy(const pb_cors_policy_t *c, const char *path, mcplex_errors_t *errs)
{
    cors_fields_t f = {c->allow_origin_string_match,
                       c->n_allow_origin_string_match,
                       c->allow_methods,
                       c->allow_headers,
                       c->expose_headers,
                       c->max_age,
                       c->allow_credentials};

    return cors_build(&f, path, errs);
}

/* What one level (route config, virtual host, route) says about CORS. */
typedef enum cors_level {
    CORS_UNSET = 0, /* nothing here: ask the next level */
    CORS_POLICY,    /* a policy */
    CORS_DISABLED,  /* FilterConfig{disabled: true}: no CORS, whatever the outer levels say */
} cors_level_t;

typedef struct cors_state {
    cors_level_t level;
    mcplex_cors_policy_t *policy; /* CORS_POLICY */
    mcplex_origin_policy_t *origin; /* origin (issue 3): McpRoute at this level, or NULL */
} cors_state_t;

/*
 * One typed_per_filter_config entry. A CorsPolicy (bare or in a FilterConfig) sets |st|; other
 * known types (McpOverride, ...) are accepted and ignored; unknown types are errors unless
 * wrapped in an optional FilterConfig.
 */
static void
tpfc_entry(const char *key, const pb_any_t *value, const char *path, cors_state_t *st, mcplex_errors_t *errs)
{
    char tbuf[TYPE_URL_MAX], p[PATH_MAX_LEN];
    const char *type;
    const pb_any_t *inner = value;
    ProtobufCMessage *wrapper = NULL, *m = NULL;
    int optional = 0;

    if (value == NULL)
        return;
    type = any_type_name(value, tbuf, sizeof(tbuf));
    pfmt(p, "%s", path);
    if (strcmp(type, T_FILTER_CONFIG) == 0) {
        const pb_filter_config_t *fc;
        wrapper = any_unpack_as(value, &envoy__config__route__v3__filter_config__descriptor, path, errs);
        if (wrapper == NULL)
            goto out;
        fc = (const pb_filter_config_t *)wrapper;
        optional = fc->is_optional;
        if (fc->disabled) {
            if (strcmp(key, N_CORS) == 0) {
                mcplex_cors_policy_free(st->policy);
                st->policy = NULL;
                st->level = CORS_DISABLED;
            }
            goto out;
        }
        inner = fc->config;
        if (inner == NULL)
            goto out;
        pkey(p, path, "config");
        type = any_type_name(inner, tbuf, sizeof(tbuf));
    }
    if (strcmp(type, T_CORS_POLICY) == 0) {
        mcplex_cors_policy_t *cp;
        m = any_unpack_as(inner, &envoy__extensions__filters__http__cors__v3__cors_policy__descriptor, p,
                          errs);
        if (m == NULL)
            goto out;
        cp = cors_from_filter_policy((const pb_cors_policy_t *)m, p, errs);
        if (cp != NULL) {
            mcplex_cors_policy_free(st->policy);
            st->policy = cp;
            st->level = CORS_POLICY;
        }
    } else if (strcmp(type, MCPLEX_MCP_ROUTE_TYPE) == 0) {
        /* --- origin (issue 3): mcplex's McpRoute (DNS rebinding protection) --- */
        mcplex_origin_policy_t *op;
        m = any_unpack_as(inner, &mcplex__extensions__filters__http__mcp__v1__mcp_route__descriptor, p, errs);
        if (m == NULL)
            goto out;
        op = mcplex_config_translate_mcp_route(
            (const Mcplex__Extensions__Filters__Http__Mcp__V1__McpRoute *)m, p, errs);
        if (op != NULL) {
            mcplex_origin_policy_free(st->origin);
            st->origin = op;
        }
        /* --- end origin --- */
    } else if (mcplex_pb_registry_find(type) == NULL && !optional) {
        mcplex_errors_add(errs, p, "Didn't find a registered implementation for '%s' with type URL: '%s'",
                          key, type);
    }
out:
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    if (wrapper != NULL)
        protobuf_c_message_free_unpacked(wrapper, NULL);
}

/* Scans a typed_per_filter_config map (any of the generated entry types: key + Any value). */
#define TPFC_SCAN(map, n, path, st, errs)                                                                    \
    do {                                                                                                     \
        char tpfc_p_[PATH_MAX_LEN];                                                                          \
        for (size_t tpfc_i_ = 0; tpfc_i_ < (n); tpfc_i_++) {                                                 \
            if ((map)[tpfc_i_] == NULL || (map)[tpfc_i_]->key == NULL)                                       \
                continue;                                                                                    \
            tpfc_entry((map)[tpfc_i_]->key, (map)[tpfc_i_]->value,                                           \
                       pmap(tpfc_p_, (path), "typed_per_filter_config", (map)[tpfc_i_]->key), (st), (errs)); \
        }                                                                                                    \
    } while (0)

static void
cors_state_dispose(cors_state_t *st)
{
    mcplex_cors_policy_free(st->policy);
    mcplex_origin_policy_free(st->origin); /* origin (issue 3) */
    memset(st, 0, sizeof(*st));
}

static mcplex_cors_policy_t *
cors_copy(const mcplex_cors_policy_t *src)
{
    mcplex_cors_policy_t *cp;

    if (src == NULL)
        return NULL;
    cp = mcplex_calloc(1, sizeof(*cp));
    cp->allow_origins = mcplex_calloc(src->n_allow_origins, sizeof(char *));
    for (size_t i = 0; i < src->n_allow_origins; i++)
        cp->allow_origins[i] = mcplex_strdup(src->allow_origins[i]);
    cp->n_allow_origins = src->n_allow_origins;
    cp->allow_methods = mcplex_strdup(src->allow_methods);
    cp->allow_headers = mcplex_strdup(src->allow_headers);
    cp->expose_headers = mcplex_strdup(src->expose_headers);
    cp->max_age = mcplex_strdup(src->max_age);
    cp->allow_credentials = src->allow_credentials;
    return cp;
}

/* |inner| if it says anything, else |outer|. */
static const cors_state_t *
cors_pick(const cors_state_t *inner, const cors_state_t *outer)
{
    return inner->level != CORS_UNSET ? inner : outer;
}

/* ---- MCP backends ---------------------------------------------------------------------------- */

/* A growable array of clusters (the implicit clusters of url targets). */
typedef struct cluster_vec {
    mcplex_cluster_t *items;
    size_t count;
} cluster_vec_t;

static mcplex_cluster_t *
cluster_vec_push(cluster_vec_t *v)
{
    v->items = mcplex_realloc(v->items, (v->count + 1) * sizeof(*v->items));
    memset(&v->items[v->count], 0, sizeof(*v->items));
    return &v->items[v->count++];
}

static void
cluster_vec_dispose(cluster_vec_t *v)
{
    for (size_t i = 0; i < v->count; i++)
        mcplex_cluster_dispose(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

/* Checks a target name against |sep| and the names before it. */
static void
check_target_name(const mcplex_mcp_backend_t *b, size_t index, const char *name, const char *sep,
                  const char *path, mcplex_errors_t *errs)
{
    char why[256];

    if (empty(name)) {
        mcplex_errors_add(errs, path, "is required");
        return;
    }
    if (!mcplex_naming_target_name_valid(name, sep, why, sizeof(why))) {
        mcplex_errors_add(errs, path, "invalid target name '%s': %s", name, why);
        return;
    }
    for (size_t i = 0; i < index; i++) {
        if (b->targets[i].name != NULL && strcmp(b->targets[i].name, name) == 0) {
            mcplex_errors_add(errs, path, "duplicate target name '%s'", name);
            return;
        }
    }
}

static mcplex_mcp_backend_t *
backend_new(const char *sep, size_t n_targets)
{
    mcplex_mcp_backend_t *b = mcplex_calloc(1, sizeof(*b));

    b->separator = mcplex_strdup(sep);
    b->server_name = mcplex_strdup("mcplex");
    b->server_version = mcplex_strdup(MCPLEX_VERSION);
    b->replay_buffer_bytes = 1024 * 1024;
    b->heartbeat_ms = 15000;
    b->targets = mcplex_calloc(n_targets, sizeof(*b->targets));
    return b;
}

/* Envoy's McpRouter.McpBackend / ClusterConfig.McpBackend, field for field. */
typedef struct server_view {
    const char *name;
    int has_mcp_cluster;
    const char *cluster;
    const char *path;
    const pb_duration_t *timeout;
    const char *host_rewrite_literal;
} server_view_t;

/*
 * Envoy's servers[] (mcp_router filter or mcp_multicluster cluster) -> a backend with separator
 * "__" and one streamable-HTTP target per server. NULL with errors.
 */
static mcplex_mcp_backend_t *
backend_from_servers(const server_view_t *servers, size_t n, const char *path, mcplex_config_refs_t *refs,
                     mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], r[PATH_MAX_LEN];
    mcplex_mcp_backend_t *b = backend_new(ENVOY_SEPARATOR, n);
    size_t before = errs->count;

    if (n == 0)
        mcplex_errors_add(errs, pkey(p, path, "servers"), "at least one server is required");
    for (size_t i = 0; i < n; i++) {
        const server_view_t *s = &servers[i];
        mcplex_mcp_target_t *t = &b->targets[i];
        const char *name;

        pidx(p, path, "servers", i);
        if (!s->has_mcp_cluster) {
            mcplex_errors_add(errs, pkey(q, p, "mcp_cluster"), "is required");
            continue;
        }
        pkey(q, p, "mcp_cluster");
        if (empty(s->cluster)) {
            mcplex_errors_add(errs, pkey(r, q, "cluster"), "is required");
            continue;
        }
        mcplex_config_refs_add(refs, pkey(r, q, "cluster"), s->cluster, MCPLEX_REF_ENDPOINT_CLUSTER);
        name = empty(s->name) ? s->cluster : s->name;
        check_target_name(b, i, name, ENVOY_SEPARATOR, empty(s->name) ? r : pkey(r, p, "name"), errs);
        t->name = mcplex_strdup(name);
        t->kind = MCPLEX_TARGET_STREAMABLE_HTTP;
        t->http.cluster = mcplex_strdup(s->cluster);
        t->http.path = mcplex_strdup(empty(s->path) ? "/mcp" : s->path);
        t->http.authority = dup_nonempty(s->host_rewrite_literal);
        duration_ms(s->timeout, DEFAULT_TARGET_TIMEOUT_MS, pkey(r, q, "timeout"), errs, &t->timeout_ms);
        t->timeout_set = s->timeout != NULL;
    }
    b->n_targets = n;
    if (errs->count != before) {
        mcplex_mcp_backend_free(b);
        return NULL;
    }
    return b;
}

/* Reads McpRouter.servers[] or ClusterConfig.servers[] (field for field the same messages in
 * two packages, so one macro serves both generated types) into |v|. */
#define READ_SERVERS(m, v)                                                                         \
    for (size_t i_ = 0; i_ < (m)->n_servers; i_++) {                                                 \
        (v)[i_].name = (m)->servers[i_]->name;                                                       \
        if ((m)->servers[i_]->mcp_cluster != NULL) {                                                 \
            (v)[i_].has_mcp_cluster = 1;                                                             \
            (v)[i_].cluster = (m)->servers[i_]->mcp_cluster->cluster;                                \
            (v)[i_].path = (m)->servers[i_]->mcp_cluster->path;                                      \
            (v)[i_].timeout = (m)->servers[i_]->mcp_cluster->timeout;                                \
            (v)[i_].host_rewrite_literal = (m)->servers[i_]->mcp_cluster->host_rewrite_literal;      \
        }                                                                                            \
    }

static mcplex_mcp_backend_t *
backend_from_mcp_router(const pb_mcp_router_t *m, const char *path, mcplex_config_refs_t *refs,
                        mcplex_errors_t *errs)
{
    server_view_t *v = mcplex_calloc(m->n_servers, sizeof(*v));
    mcplex_mcp_backend_t *b;

    READ_SERVERS(m, v);
    b = backend_from_servers(v, m->n_servers, path, refs, errs);
    free(v);
    return b;
}

static mcplex_mcp_backend_t *
backend_from_multicluster(const pb_multicluster_t *m, const char *path, mcplex_config_refs_t *refs,
                          mcplex_errors_t *errs)
{
    server_view_t *v = mcplex_calloc(m->n_servers, sizeof(*v));
    mcplex_mcp_backend_t *b;

    READ_SERVERS(m, v);
    b = backend_from_servers(v, m->n_servers, path, refs, errs);
    free(v);
    return b;
}

static void
stdio_target(const pb_stdio_t *s, const char *path, mcplex_mcp_target_t *t, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];

    t->kind = MCPLEX_TARGET_STDIO;
    if (empty(s->cmd))
        mcplex_errors_add(errs, pkey(p, path, "cmd"), "is required");
    t->stdio.cmd = mcplex_strdup(s->cmd != NULL ? s->cmd : "");
    t->stdio.args = mcplex_calloc(s->n_args, sizeof(char *));
    for (size_t i = 0; i < s->n_args; i++)
        t->stdio.args[i] = mcplex_strdup(s->args[i] != NULL ? s->args[i] : "");
    t->stdio.n_args = s->n_args;
    t->stdio.env = mcplex_calloc(s->n_env, sizeof(*t->stdio.env));
    for (size_t i = 0; i < s->n_env; i++) {
        const char *k = s->env[i]->key, *v = s->env[i]->value;
        if (empty(k) || strchr(k, '=') != NULL)
            mcplex_errors_add(errs, pmap(p, path, "env", k != NULL ? k : ""),
                              "environment variable names must be non-empty and have no '='");
        t->stdio.env[i].name = mcplex_strdup(k != NULL ? k : "");
        t->stdio.env[i].value = mcplex_strdup(v != NULL ? v : "");
    }
    t->stdio.n_env = s->n_env;
    t->stdio.clear_env = s->clear_env;
    t->stdio.shared = s->shared;
    t->stdio.working_dir = dup_nonempty(s->working_dir);
}

static void
http_headers(pb_header_option_t **opts, size_t n, const char *path, mcplex_http_target_t *h,
             mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];

    h->headers = mcplex_calloc(n, sizeof(*h->headers));
    for (size_t i = 0; i < n; i++) {
        const Envoy__Config__Core__V3__HeaderValue *hv = opts[i]->header;
        pidx(p, path, "request_headers_to_add", i);
        if (hv == NULL || empty(hv->key)) {
            mcplex_errors_add(errs, hv == NULL ? pkey(q, p, "header") : pkey(q, p, "header.key"),
                              "is required");
            continue;
        }
        h->headers[h->n_headers].name = mcplex_strdup(hv->key);
        h->headers[h->n_headers].value = mcplex_strdup(hv->value != NULL ? hv->value : "");
        h->n_headers++;
    }
}

/* TLS (issue 4): defined with the transport sockets below. */
static mcplex_tls_context_t *tls_common_context(const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c,
                                                const char *path, mcplex_errors_t *errs);

/* An HttpTarget (streamable_http or sse) of target |t| in cluster |cluster_name|. */
static void
http_target(const pb_http_target_t *h, int sse, const char *path, const char *cluster_name,
            uint32_t connect_timeout_ms, mcplex_mcp_target_t *t, cluster_vec_t *implicit,
            mcplex_config_refs_t *refs, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], why[512];
    mcplex_url_t url;

    t->kind = sse ? MCPLEX_TARGET_SSE : MCPLEX_TARGET_STREAMABLE_HTTP;
    switch (h->destination_case) {
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__HTTP_TARGET__DESTINATION_URL:
        if (mcplex_config_parse_url(h->url, &url, why, sizeof(why)) != 0) {
            mcplex_errors_add(errs, pkey(p, path, "url"), "%s", why);
            break;
        }
        if (!empty(h->path))
            mcplex_errors_add(errs, pkey(p, path, "path"), "only with cluster (a url carries its own path)");
        {
            mcplex_cluster_t *c = cluster_vec_push(implicit);
            c->name = mcplex_sprintf("%s/%s", cluster_name, t->name != NULL ? t->name : "");
            c->type = MCPLEX_CLUSTER_STRICT_DNS;
            c->endpoints = mcplex_calloc(1, sizeof(*c->endpoints));
            c->endpoints[0].host = mcplex_strdup(url.host);
            c->endpoints[0].port = url.port;
            c->endpoints[0].weight = 1;
            c->n_endpoints = 1;
            c->connect_timeout_ms = connect_timeout_ms;
            c->tls = url.tls;
            if (url.tls) { /* TLS (issue 4): system roots (or h->tls), SNI and name check = the URL's host */
                char q[PATH_MAX_LEN];
                c->tls_context = tls_common_context(h->tls != NULL ? h->tls->common_tls_context : NULL,
                                                    pkey(q, path, "tls.common_tls_context"), errs);
                c->tls_context->sni = mcplex_strdup(h->tls != NULL && !empty(h->tls->sni) ? h->tls->sni : url.host);
                if (h->tls != NULL) { /* load the CA now, as for clusters */
                    mcplex_tls_ctx_t *x = mcplex_tls_ctx_new_client(c->tls_context, why, sizeof(why));
                    if (x == NULL)
                        mcplex_errors_add(errs, pkey(q, path, "tls"), "%s", why);
                    mcplex_tls_ctx_unref(x);
                }
            } else if (h->tls != NULL) {
                mcplex_errors_add(errs, pkey(p, path, "tls"), "only with an https:// url");
            }
            t->http.cluster = mcplex_strdup(c->name);
        }
        t->http.path = mcplex_strdup(url.path);
        t->http.authority = empty(h->host_rewrite_literal) ? mcplex_strdup(url.authority)
                                                           : mcplex_strdup(h->host_rewrite_literal);
        t->http.tls = url.tls;
        mcplex_url_dispose(&url);
        break;
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__HTTP_TARGET__DESTINATION_CLUSTER:
        if (empty(h->cluster)) {
            mcplex_errors_add(errs, pkey(p, path, "cluster"), "is required");
            break;
        }
        mcplex_config_refs_add(refs, pkey(p, path, "cluster"), h->cluster, MCPLEX_REF_ENDPOINT_CLUSTER);
        t->http.cluster = mcplex_strdup(h->cluster);
        t->http.path = mcplex_strdup(!empty(h->path) ? h->path : sse ? "/sse" : "/mcp");
        t->http.authority = dup_nonempty(h->host_rewrite_literal);
        break;
    default:
        mcplex_errors_add(errs, path, "one of url or cluster is required");
        break;
    }
    http_headers(h->request_headers_to_add, h->n_request_headers_to_add, path, &t->http, errs);
}

/*
 * mcplex's McpBackend -> a backend. URL targets add implicit clusters to |implicit|. NULL with
 * errors.
 */
/* McpTarget.tools -> the target's curation (globs checked by fnmatch at use; names non-empty). */
static void
tool_filter(const Mcplex__Extensions__Clusters__Mcp__V1__ToolFilter *f, const char *path, mcplex_mcp_target_t *t,
            mcplex_errors_t *errs)
{
    t->tool_allow = mcplex_calloc(f->n_allow + 1, sizeof(char *));
    for (size_t i = 0; i < f->n_allow; i++)
        t->tool_allow[t->n_tool_allow++] = mcplex_strdup(f->allow[i]);
    t->tool_deny = mcplex_calloc(f->n_deny + 1, sizeof(char *));
    for (size_t i = 0; i < f->n_deny; i++)
        t->tool_deny[t->n_tool_deny++] = mcplex_strdup(f->deny[i]);
    t->tool_overrides = mcplex_calloc(f->n_overrides + 1, sizeof(*t->tool_overrides));
    for (size_t i = 0; i < f->n_overrides; i++) {
        const Mcplex__Extensions__Clusters__Mcp__V1__ToolFilter__OverridesEntry *e = f->overrides[i];
        mcplex_tool_override_t *o = &t->tool_overrides[t->n_tool_overrides++];
        o->tool = mcplex_strdup(e->key != NULL ? e->key : "");
        if (e->value != NULL && e->value->name != NULL && e->value->name[0] != '\0')
            o->name = mcplex_strdup(e->value->name);
        if (e->value != NULL && e->value->description != NULL && e->value->description[0] != '\0')
            o->description = mcplex_strdup(e->value->description);
        if (o->tool[0] == '\0')
            mcplex_errors_add(errs, path, "overrides: a tool name (map key) must not be empty");
    }
}

static mcplex_mcp_backend_t *
backend_from_mcplex(const pb_mcp_backend_t *m, const char *path, const char *cluster_name,
                    uint32_t connect_timeout_ms, cluster_vec_t *implicit, mcplex_config_refs_t *refs,
                    mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const char *sep = empty(m->name_separator) ? ENVOY_SEPARATOR : m->name_separator;
    mcplex_mcp_backend_t *b;
    uint32_t default_timeout;
    int backend_timeout_set = m->timeout != NULL;
    size_t before = errs->count;

    if (strcmp(sep, "__") != 0 && strcmp(sep, "_") != 0) {
        mcplex_errors_add(errs, pkey(p, path, "name_separator"), "must be \"__\" or \"_\", got '%s'", sep);
        sep = ENVOY_SEPARATOR;
    }
    b = backend_new(sep, m->n_targets);
    duration_ms(m->timeout, DEFAULT_TARGET_TIMEOUT_MS, pkey(p, path, "timeout"), errs, &default_timeout);
    if (m->timeout != NULL && default_timeout == 0)
        mcplex_errors_add(errs, pkey(p, path, "timeout"), "must be greater than 0");
    switch (m->prefix_mode) {
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_BACKEND__PREFIX_MODE__CONDITIONAL:
        b->prefix_mode = MCPLEX_PREFIX_CONDITIONAL;
        break;
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_BACKEND__PREFIX_MODE__ALWAYS:
        b->prefix_mode = MCPLEX_PREFIX_ALWAYS;
        break;
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_BACKEND__PREFIX_MODE__NEVER:
        b->prefix_mode = MCPLEX_PREFIX_NEVER;
        break;
    default:
        mcplex_errors_add(errs, pkey(p, path, "prefix_mode"), "unknown value %d", (int)m->prefix_mode);
        break;
    }
    if (m->server_stream != NULL) {
        b->server_stream_disabled = m->server_stream->disabled;
        if (m->server_stream->replay_buffer_bytes > 0)
            b->replay_buffer_bytes = m->server_stream->replay_buffer_bytes;
        if (m->server_stream->heartbeat_interval != NULL)
            duration_ms(m->server_stream->heartbeat_interval, 15000,
                        pkey(p, path, "server_stream.heartbeat_interval"), errs, &b->heartbeat_ms);
    }
    switch (m->failure_mode) {
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_BACKEND__FAILURE_MODE__FAIL_OPEN:
        b->failure_mode = MCPLEX_FAIL_OPEN;
        break;
    case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_BACKEND__FAILURE_MODE__FAIL_CLOSED:
        b->failure_mode = MCPLEX_FAIL_CLOSED;
        break;
    default:
        mcplex_errors_add(errs, pkey(p, path, "failure_mode"), "unknown value %d", (int)m->failure_mode);
        break;
    }
    if (m->server_info != NULL) {
        if (!empty(m->server_info->name)) {
            free(b->server_name);
            b->server_name = mcplex_strdup(m->server_info->name);
        }
        if (!empty(m->server_info->version)) {
            free(b->server_version);
            b->server_version = mcplex_strdup(m->server_info->version);
        }
        b->server_title = dup_nonempty(m->server_info->title);
    }
    if (m->n_targets == 0)
        mcplex_errors_add(errs, pkey(p, path, "targets"), "at least one target is required");
    for (size_t i = 0; i < m->n_targets; i++) {
        const pb_mcp_target_t *pt = m->targets[i];
        mcplex_mcp_target_t *t = &b->targets[i];

        b->n_targets = i + 1;
        pidx(p, path, "targets", i);
        check_target_name(b, i, pt->name, sep, pkey(q, p, "name"), errs);
        t->name = mcplex_strdup(pt->name != NULL ? pt->name : "");
        if (duration_ms(pt->timeout, default_timeout, pkey(q, p, "timeout"), errs, &t->timeout_ms) == 0 &&
            pt->timeout != NULL && t->timeout_ms == 0)
            mcplex_errors_add(errs, q, "must be greater than 0");
        t->timeout_set = pt->timeout != NULL || backend_timeout_set;
        if (pt->tools != NULL)
            tool_filter(pt->tools, pkey(q, p, "tools"), t, errs);
        switch (pt->transport_case) {
        case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_TARGET__TRANSPORT_STDIO:
            stdio_target(pt->stdio, pkey(q, p, "stdio"), t, errs);
            break;
        case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_TARGET__TRANSPORT_STREAMABLE_HTTP:
            http_target(pt->streamable_http, 0, pkey(q, p, "streamable_http"), cluster_name,
                        connect_timeout_ms, t, implicit, refs, errs);
            break;
        case MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__MCP_TARGET__TRANSPORT_SSE:
            http_target(pt->sse, 1, pkey(q, p, "sse"), cluster_name, connect_timeout_ms, t, implicit, refs,
                        errs);
            break;
        default:
            mcplex_errors_add(errs, p, "one of stdio, streamable_http or sse is required");
            break;
        }
    }
    if (errs->count != before) {
        mcplex_mcp_backend_free(b);
        return NULL;
    }
    return b;
}

/* ---- clusters ------------------------------------------------------------------------------ */

/* --- xDS (issue 5) --- */
static mcplex_config_xds_source_t *xds_source; /* main thread only; NULL: no xDS */

void
mcplex_config_set_xds_source(mcplex_config_xds_source_t *src)
{
    xds_source = src;
}

static void cluster_endpoints(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path,
                              mcplex_cluster_t *c, mcplex_errors_t *errs);

/* EDS cluster: endpoints of the ClusterLoadAssignment named eds_cluster_config.service_name, or
 * the cluster name, from the xDS source; none yet = no endpoints (warming, counted). */
static void
cluster_eds_endpoints(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path, mcplex_cluster_t *c,
                      mcplex_errors_t *errs)
{
    Envoy__Config__Cluster__V3__Cluster tmp = *msg;
    const char *name = msg->name;

    if (msg->eds_cluster_config != NULL && !empty(msg->eds_cluster_config->service_name))
        name = msg->eds_cluster_config->service_name;
    tmp.load_assignment = (Envoy__Config__Endpoint__V3__ClusterLoadAssignment *)xds_source->endpoints(
        xds_source->arg, name != NULL ? name : "");
    if (tmp.load_assignment == NULL) {
        xds_source->n_missing++;
        return;
    }
    cluster_endpoints(&tmp, path, c, errs);
}
/* --- end xDS --- */

static void
cluster_endpoints(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path, mcplex_cluster_t *c,
                  mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], r[PATH_MAX_LEN], s[PATH_MAX_LEN];
    const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la = msg->load_assignment;
    size_t total = 0;

    if (la == NULL) {
        mcplex_errors_add(errs, pkey(p, path, "load_assignment"), "is required (at least one endpoint)");
        return;
    }
    pkey(p, path, "load_assignment");
    for (size_t i = 0; i < la->n_endpoints; i++)
        total += la->endpoints[i]->n_lb_endpoints;
    if (total == 0) {
        mcplex_errors_add(errs, pkey(q, p, "endpoints"), "at least one endpoint is required");
        return;
    }
    if (c->type == MCPLEX_CLUSTER_LOGICAL_DNS && total != 1)
        mcplex_errors_add(errs, pkey(q, p, "endpoints"),
                          "LOGICAL_DNS clusters must have exactly one endpoint");
    c->endpoints = mcplex_calloc(total, sizeof(*c->endpoints));
    for (size_t i = 0; i < la->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = la->endpoints[i];
        pidx(q, p, "endpoints", i);
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lbe = loc->lb_endpoints[j];
            mcplex_endpoint_t *e = &c->endpoints[c->n_endpoints];
            char *host = NULL;
            uint16_t port = 0;

            pidx(r, q, "lb_endpoints", j);
            if (lbe->host_identifier_case !=
                ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT) {
                mcplex_errors_add(errs, pkey(s, r, "endpoint"), "is required");
                continue;
            }
            if (socket_address(lbe->endpoint->address, pkey(s, r, "endpoint.address"),
                               c->type != MCPLEX_CLUSTER_STATIC, &host, &port, errs) != 0)
                continue;
            if (c->type == MCPLEX_CLUSTER_STATIC && !is_ip_literal(host)) {
                mcplex_errors_add(errs, pkey(s, r, "endpoint.address.socket_address.address"),
                                  "STATIC clusters need IP addresses, got '%s' (use STRICT_DNS for names)",
                                  host);
                free(host);
                continue;
            }
            e->host = host;
            e->port = port;
            e->weight = 1;
            if (lbe->load_balancing_weight != NULL) {
                if (lbe->load_balancing_weight->value < 1)
                    mcplex_errors_add(errs, pkey(s, r, "load_balancing_weight"), "must be at least 1");
                e->weight = lbe->load_balancing_weight->value;
            }
            c->n_endpoints++;
        }
    }
}

static void
cluster_protocol_options(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path,
                         mcplex_cluster_t *c, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];

    if (msg->http2_protocol_options != NULL) /* the deprecated direct form */
        c->http2 = 1;
    for (size_t i = 0; i < msg->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            msg->typed_extension_protocol_options[i];
        const char *key = e->key != NULL ? e->key : "";
        const char *type;
        const pb_http_options_t *o;
        ProtobufCMessage *m;

        pmap(p, path, "typed_extension_protocol_options", key);
        if (e->value == NULL)
            continue;
        type = any_type_name(e->value, tbuf, sizeof(tbuf));
        if (strcmp(key, T_HTTP_OPTIONS) != 0 || strcmp(type, T_HTTP_OPTIONS) != 0) {
            mcplex_errors_add(errs, p, "Didn't find a registered implementation for '%s' with type URL: '%s'",
                              key, type);
            continue;
        }
        m = any_unpack_as(
            e->value, &envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor, p, errs);
        if (m == NULL)
            continue;
        o = (const pb_http_options_t *)m;
        if (o->upstream_protocol_options_case == UPO_EXPLICIT && o->explicit_http_config != NULL &&
            o->explicit_http_config->protocol_config_case == UPO_EXPLICIT_H2)
            c->http2 = 1;
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* ---- TLS transport sockets (issue 4) --------------------------------------------------------- */

#define T_DOWNSTREAM_TLS "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define TLS_V3(x) CAT(ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__, x)
#define CTC_VALIDATION_CONTEXT TLS_V3(COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT)
#define CTC_COMBINED TLS_V3(COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT)
#define CTC_NOT_SET TLS_V3(COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE__NOT_SET)
#define DS_CASE(x) CAT(ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_, x)

typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext pb_common_tls_t;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext pb_cert_validation_t;
typedef Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext pb_downstream_tls_t;
typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext pb_upstream_tls_t;

/* config.core.v3.DataSource -> the model (environment_variable is read now, into inline data). */
static void
tls_data_source(const Envoy__Config__Core__V3__DataSource *d, const char *path, mcplex_data_source_t *out,
                mcplex_errors_t *errs)
{
    const char *v = NULL;
    size_t len = 0;

    if (d == NULL) {
        mcplex_errors_add(errs, path, "is required");
        return;
    }
    switch (d->specifier_case) {
    case DS_CASE(FILENAME):
        if (empty(d->filename))
            mcplex_errors_add(errs, path, "filename is empty");
        else
            out->filename = mcplex_strdup(d->filename);
        return;
    case DS_CASE(INLINE_BYTES):
        v = (const char *)d->inline_bytes.data;
        len = d->inline_bytes.len;
        break;
    case DS_CASE(INLINE_STRING):
        v = d->inline_string != NULL ? d->inline_string : "";
        len = strlen(v);
        break;
    case DS_CASE(ENVIRONMENT_VARIABLE):
        v = empty(d->environment_variable) ? NULL : getenv(d->environment_variable);
        if (v == NULL) {
            mcplex_errors_add(errs, path, "environment variable '%s' is not set",
                              d->environment_variable != NULL ? d->environment_variable : "");
            return;
        }
        len = strlen(v);
        break;
    default:
        mcplex_errors_add(errs, path, "one of filename, inline_bytes, inline_string, environment_variable is required");
        return;
    }
    if (len == 0) {
        mcplex_errors_add(errs, path, "is empty");
        return;
    }
    out->inline_data = mcplex_malloc(len + 1);
    memcpy(out->inline_data, v, len);
    out->inline_data[len] = '\0';
    out->inline_len = len;
}

static void
tls_validation_context(const pb_cert_validation_t *v, const char *path, mcplex_tls_context_t *out,
                       mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];

    if (v == NULL)
        return;
    if (v->trusted_ca != NULL)
        tls_data_source(v->trusted_ca, pkey(p, path, "trusted_ca"), &out->trusted_ca, errs);
    if (v->n_match_typed_subject_alt_names > 0 || v->n_match_subject_alt_names > 0)
        mcplex_errors_add(errs, pkey(p, path, "match_typed_subject_alt_names"), "is not supported yet");
    if (v->n_verify_certificate_hash > 0 || v->n_verify_certificate_spki > 0)
        mcplex_errors_add(errs, pkey(p, path, "verify_certificate_hash"), "is not supported yet");
    if (v->crl != NULL)
        mcplex_errors_add(errs, pkey(p, path, "crl"), "is not supported yet");
    if (v->trust_chain_verification == TLS_V3(CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__ACCEPT_UNTRUSTED))
        out->insecure = 1;
}

/* CommonTlsContext -> a new model context (NULL |c|: defaults). */
static mcplex_tls_context_t *
tls_common_context(const pb_common_tls_t *c, const char *path, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    mcplex_tls_context_t *t = mcplex_calloc(1, sizeof(*t));

    if (c == NULL)
        return t;
    if (c->tls_params != NULL) {
        t->tls_minimum_protocol_version = (mcplex_tls_version_t)c->tls_params->tls_minimum_protocol_version;
        t->tls_maximum_protocol_version = (mcplex_tls_version_t)c->tls_params->tls_maximum_protocol_version;
        if (t->tls_minimum_protocol_version > MCPLEX_TLS_V1_3 || t->tls_maximum_protocol_version > MCPLEX_TLS_V1_3)
            mcplex_errors_add(errs, pkey(p, path, "tls_params"), "unknown TLS protocol version");
        if (c->tls_params->n_cipher_suites > 0 || c->tls_params->n_ecdh_curves > 0 ||
            c->tls_params->n_signature_algorithms > 0)
            mcplex_errors_add(errs, pkey(p, path, "tls_params"),
                              "cipher_suites, ecdh_curves and signature_algorithms are not supported yet");
    }
    if (c->n_tls_certificates > 1)
        mcplex_errors_add(errs, pidx(p, path, "tls_certificates", 1), "only one certificate is supported yet");
    if (c->n_tls_certificates > 0) {
        const Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc = c->tls_certificates[0];
        t->tls_certificates = mcplex_calloc(1, sizeof(*t->tls_certificates));
        t->n_tls_certificates = 1;
        pidx(p, path, "tls_certificates", 0);
        tls_data_source(tc->certificate_chain, pkey(q, p, "certificate_chain"),
                        &t->tls_certificates[0].certificate_chain, errs);
        tls_data_source(tc->private_key, pkey(q, p, "private_key"), &t->tls_certificates[0].private_key, errs);
        if (tc->password != NULL || tc->pkcs12 != NULL || tc->private_key_provider != NULL)
            mcplex_errors_add(errs, p, "password, pkcs12 and private_key_provider are not supported");
    }
    if (c->n_tls_certificate_sds_secret_configs > 0)
        mcplex_errors_add(errs, pkey(p, path, "tls_certificate_sds_secret_configs"), "SDS is not supported yet");
    switch (c->validation_context_type_case) {
    case CTC_VALIDATION_CONTEXT:
        tls_validation_context(c->validation_context, pkey(p, path, "validation_context"), t, errs);
        break;
    case CTC_COMBINED:
        if (c->combined_validation_context != NULL)
            tls_validation_context(c->combined_validation_context->default_validation_context,
                                   pkey(p, path, "combined_validation_context.default_validation_context"), t, errs);
        break;
    case CTC_NOT_SET:
        break;
    default:
        mcplex_errors_add(errs, path, "only validation_context or combined_validation_context is supported");
        break;
    }
    if (c->n_alpn_protocols > 0) {
        t->alpn_protocols = mcplex_calloc(c->n_alpn_protocols, sizeof(char *));
        for (size_t i = 0; i < c->n_alpn_protocols; i++) {
            const char *a = c->alpn_protocols[i] != NULL ? c->alpn_protocols[i] : "";
            if (a[0] == '\0' || strlen(a) > 255)
                mcplex_errors_add(errs, pidx(p, path, "alpn_protocols", i), "must be 1 to 255 bytes");
            t->alpn_protocols[t->n_alpn_protocols++] = mcplex_strdup(a);
        }
    }
    return t;
}

/*
 * A transport_socket of a filter chain (|downstream|) or a cluster: envoy.transport_sockets.tls
 * with a DownstreamTlsContext / UpstreamTlsContext, or raw_buffer. Returns the TLS context
 * (caller owns), or NULL for plaintext or on errors (added to |errs|).
 */
static mcplex_tls_context_t *
tls_transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts, const char *path, int downstream,
                     mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];
    const char *name = ts->name != NULL ? ts->name : "";
    const char *type = "";
    const char *want = downstream ? T_DOWNSTREAM_TLS : T_UPSTREAM_TLS;
    ProtobufCMessage *m;
    mcplex_tls_context_t *t = NULL;
    size_t before = errs->count;

    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG &&
        ts->typed_config != NULL) {
        pkey(p, path, "typed_config");
        type = any_type_name(ts->typed_config, tbuf, sizeof(tbuf));
        if (strcmp(type, T_RAW_BUFFER) == 0)
            return NULL;
        if (strcmp(type, want) != 0)
            goto unknown;
        m = any_unpack_as(ts->typed_config,
                          downstream ? &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor
                                     : &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor,
                          p, errs);
        if (m == NULL)
            return NULL;
        if (downstream) {
            const pb_downstream_tls_t *d = (const pb_downstream_tls_t *)m;
            char q[PATH_MAX_LEN];
            t = tls_common_context(d->common_tls_context, pkey(q, p, "common_tls_context"), errs);
            t->require_client_certificate = d->require_client_certificate != NULL && d->require_client_certificate->value;
            if (t->n_tls_certificates == 0)
                mcplex_errors_add(errs, pkey(q, p, "common_tls_context.tls_certificates"),
                                  "a server certificate is required");
            if (t->require_client_certificate && t->trusted_ca.filename == NULL && t->trusted_ca.inline_data == NULL)
                mcplex_errors_add(errs, pkey(q, p, "require_client_certificate"),
                                  "needs common_tls_context.validation_context.trusted_ca");
        } else {
            const pb_upstream_tls_t *u = (const pb_upstream_tls_t *)m;
            char q[PATH_MAX_LEN];
            t = tls_common_context(u->common_tls_context, pkey(q, p, "common_tls_context"), errs);
            t->sni = dup_nonempty(u->sni);
        }
        protobuf_c_message_free_unpacked(m, NULL);
        if (errs->count == before) {
            /* Load the certificates now, as Envoy does: a bad file rejects the config. */
            char err[256] = "";
            mcplex_tls_ctx_t *ctx = downstream ? mcplex_tls_ctx_new_server(t, NULL, 0, err, sizeof(err))
                                               : mcplex_tls_ctx_new_client(t, err, sizeof(err));
            if (ctx == NULL)
                mcplex_errors_add(errs, p, "%s", err);
            mcplex_tls_ctx_unref(ctx);
        }
        if (errs->count != before) {
            mcplex_tls_context_free(t);
            return NULL;
        }
        return t;
    }
    if (strcmp(name, N_RAW_BUFFER) == 0)
        return NULL;
    if (strcmp(name, N_TLS_SOCKET) == 0) {
        if (!downstream)
            return mcplex_calloc(1, sizeof(mcplex_tls_context_t)); /* defaults: system roots */
        mcplex_errors_add(errs, path, "typed_config (a DownstreamTlsContext) is required");
        return NULL;
    }
unknown:
    mcplex_errors_add(errs, path, "Didn't find a registered implementation for '%s' with type URL: '%s'",
                      name, type);
    return NULL;
}

/* ---- end TLS --- */

/* A cluster's transport_socket: UpstreamTlsContext (issue 4) or raw_buffer. */
static void
cluster_transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts, const char *path,
                         mcplex_cluster_t *c, mcplex_errors_t *errs)
{
    size_t before = errs->count;
    mcplex_tls_context_t *t = tls_transport_socket(ts, path, 0, errs);

    if (t != NULL) {
        c->tls = 1;
        mcplex_tls_context_free(c->tls_context);
        c->tls_context = t;
    } else if (errs->count == before) {
        c->tls = 0; /* raw_buffer */
    }
}

/* cluster_type {name, typed_config}: the MCP cluster types. */
static void
cluster_custom_type(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path, mcplex_cluster_t *c,
                    cluster_vec_t *implicit, mcplex_config_refs_t *refs, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];
    const Envoy__Config__Cluster__V3__Cluster__CustomClusterType *ct = msg->cluster_type;
    const char *name = ct != NULL && ct->name != NULL ? ct->name : "";
    const char *type;
    ProtobufCMessage *m;

    pkey(p, path, "cluster_type");
    if (ct == NULL || ct->typed_config == NULL) {
        mcplex_errors_add(errs, pkey(q, p, "typed_config"), "is required (cluster type '%s')", name);
        return;
    }
    pkey(q, p, "typed_config");
    type = any_type_name(ct->typed_config, tbuf, sizeof(tbuf));
    c->type = MCPLEX_CLUSTER_MCP;
    if (strcmp(type, T_MCPLEX_BACKEND) == 0) {
        m = any_unpack_as(ct->typed_config, &mcplex__extensions__clusters__mcp__v1__mcp_backend__descriptor,
                          q, errs);
        if (m == NULL)
            return;
        c->mcp = backend_from_mcplex((const pb_mcp_backend_t *)m, q, c->name, c->connect_timeout_ms, implicit,
                                     refs, errs);
        protobuf_c_message_free_unpacked(m, NULL);
    } else if (strcmp(type, T_MULTICLUSTER) == 0) {
        m = any_unpack_as(ct->typed_config,
                          &envoy__extensions__clusters__mcp_multicluster__v3__cluster_config__descriptor, q,
                          errs);
        if (m == NULL)
            return;
        c->mcp = backend_from_multicluster((const pb_multicluster_t *)m, q, refs, errs);
        protobuf_c_message_free_unpacked(m, NULL);
    } else {
        mcplex_errors_add(errs, q, "Didn't find a registered implementation for '%s' with type URL: '%s'",
                          name, type);
    }
}

mcplex_cluster_t *
mcplex_config_translate_cluster(const Envoy__Config__Cluster__V3__Cluster *msg, const char *path,
                                mcplex_config_refs_t *refs, size_t *n_out, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];
    size_t before = errs->count;
    cluster_vec_t implicit = {0};
    mcplex_cluster_t c = {0}, *out = NULL;

    *n_out = 0;
    if (empty(msg->name))
        mcplex_errors_add(errs, pkey(p, path, "name"), "is required");
    c.name = mcplex_strdup(msg->name != NULL ? msg->name : "");
    if (duration_ms(msg->connect_timeout, DEFAULT_CONNECT_TIMEOUT_MS, pkey(p, path, "connect_timeout"), errs,
                    &c.connect_timeout_ms) == 0 &&
        c.connect_timeout_ms == 0)
        mcplex_errors_add(errs, p, "must be greater than 0");

    if (msg->cluster_discovery_type_case ==
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE) {
        cluster_custom_type(msg, path, &c, &implicit, refs, errs);
    } else {
        /* unset = STATIC, Envoy's default */
        switch (msg->cluster_discovery_type_case ==
                        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE
                    ? msg->type
                    : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC) {
        case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC:
            c.type = MCPLEX_CLUSTER_STATIC;
            cluster_endpoints(msg, path, &c, errs);
            break;
        case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS:
            c.type = MCPLEX_CLUSTER_STRICT_DNS;
            cluster_endpoints(msg, path, &c, errs);
            break;
        case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS:
            c.type = MCPLEX_CLUSTER_LOGICAL_DNS;
            cluster_endpoints(msg, path, &c, errs);
            break;
        case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS:
            c.type = MCPLEX_CLUSTER_EDS;
            /* --- xDS (issue 5): endpoints from EDS through the xDS source --- */
            if (xds_source == NULL)
                mcplex_errors_add(errs, pkey(p, path, "type"), "EDS needs xDS (dynamic_resources)");
            else
                cluster_eds_endpoints(msg, path, &c, errs);
            /* --- end xDS --- */
            break;
        default:
            mcplex_errors_add(errs, pkey(p, path, "type"), "unsupported discovery type %d", (int)msg->type);
            break;
        }
    }
    cluster_protocol_options(msg, path, &c, errs);
    if (msg->transport_socket != NULL)
        cluster_transport_socket(msg->transport_socket, pkey(p, path, "transport_socket"), &c, errs);
    if (errs->count != before)
        goto fail;
    out = mcplex_calloc(1 + implicit.count, sizeof(*out));
    out[0] = c;
    if (implicit.count > 0)
        memcpy(&out[1], implicit.items, implicit.count * sizeof(*out));
    *n_out = 1 + implicit.count;
    free(implicit.items);
    return out;
fail:
    mcplex_cluster_dispose(&c);
    cluster_vec_dispose(&implicit);
    return NULL;
}

/* ---- routes -------------------------------------------------------------------------------- */

static void
route_match(const pb_route_match_t *m, const char *path, mcplex_route_t *r, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];

    if (m == NULL) {
        mcplex_errors_add(errs, path, "is required");
        return;
    }
    switch (m->path_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
        r->prefix = mcplex_strdup(m->prefix != NULL ? m->prefix : "");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
        r->path = mcplex_strdup(m->path != NULL ? m->path : "");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
        mcplex_errors_add(errs, pkey(p, path, "safe_regex"),
                          "regex matches are not supported yet; only prefix and path matches are supported");
        break;
    default:
        mcplex_errors_add(errs, path, "only prefix and path matches are supported");
        break;
    }
    r->case_sensitive = m->case_sensitive != NULL ? m->case_sensitive->value : 1;
    if (m->n_headers > 0)
        mcplex_errors_add(errs, pkey(p, path, "headers"), "header matchers are not supported yet");
    if (m->n_query_parameters > 0)
        mcplex_errors_add(errs, pkey(p, path, "query_parameters"),
                          "query parameter matchers are not supported yet");
    if (m->runtime_fraction != NULL)
        mcplex_errors_add(errs, pkey(p, path, "runtime_fraction"), "is not supported");
    if (m->grpc != NULL)
        mcplex_errors_add(errs, pkey(p, path, "grpc"), "is not supported");
    if (m->tls_context != NULL)
        mcplex_errors_add(errs, pkey(p, path, "tls_context"), "is not supported");
}

static void
route_action(const pb_route_action_t *a, const char *path, int mcp_router, mcplex_config_refs_t *refs,
             mcplex_route_t *r, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], s[PATH_MAX_LEN];
    int missing_weight;

    r->action = MCPLEX_ROUTE_CLUSTER;
    switch (a->cluster_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
        pkey(p, path, "cluster");
        if (empty(a->cluster)) {
            mcplex_errors_add(errs, p, "must not be empty");
            break;
        }
        r->clusters = mcplex_calloc(1, sizeof(*r->clusters));
        r->clusters[0].name = mcplex_strdup(a->cluster);
        r->clusters[0].weight = 1;
        r->n_clusters = 1;
        r->total_weight = 1;
        if (!mcp_router)
            mcplex_config_refs_add(refs, p, a->cluster, MCPLEX_REF_CLUSTER);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS: {
        const Envoy__Config__Route__V3__WeightedCluster *wc = a->weighted_clusters;
        r->action = MCPLEX_ROUTE_WEIGHTED_CLUSTERS;
        pkey(p, path, "weighted_clusters");
        if (wc->n_clusters == 0) {
            mcplex_errors_add(errs, pkey(q, p, "clusters"), "at least one cluster is required");
            break;
        }
        r->clusters = mcplex_calloc(wc->n_clusters, sizeof(*r->clusters));
        missing_weight = 0;
        for (size_t i = 0; i < wc->n_clusters; i++) {
            const Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = wc->clusters[i];
            pidx(q, p, "clusters", i);
            if (empty(cw->name)) {
                mcplex_errors_add(errs, pkey(s, q, "name"), "is required");
            } else if (!mcp_router) {
                mcplex_config_refs_add(refs, pkey(s, q, "name"), cw->name, MCPLEX_REF_CLUSTER);
            }
            if (!empty(cw->cluster_header))
                mcplex_errors_add(errs, pkey(s, q, "cluster_header"), "is not supported");
            if (cw->weight == NULL) {
                mcplex_errors_add(errs, pkey(s, q, "weight"), "weight is required");
                missing_weight = 1;
            }
            r->clusters[i].name = mcplex_strdup(cw->name != NULL ? cw->name : "");
            r->clusters[i].weight = cw->weight != NULL ? cw->weight->value : 0;
            r->total_weight += r->clusters[i].weight;
            r->n_clusters = i + 1;
        }
        if (r->total_weight == 0 && !missing_weight)
            mcplex_errors_add(errs, p, "the sum of the weights must be greater than 0");
        else if (r->total_weight > UINT32_MAX)
            mcplex_errors_add(errs, p, "the sum of the weights must be at most 4294967295");
        break;
    }
    default:
        mcplex_errors_add(errs, path,
                          "one of cluster or weighted_clusters is required "
                          "(cluster_header and cluster specifier plugins are not supported)");
        break;
    }
    if (!empty(a->prefix_rewrite))
        mcplex_errors_add(errs, pkey(p, path, "prefix_rewrite"), "is not supported yet");
    if (a->regex_rewrite != NULL)
        mcplex_errors_add(errs, pkey(p, path, "regex_rewrite"), "is not supported yet");
    if (a->host_rewrite_specifier_case !=
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER__NOT_SET)
        mcplex_errors_add(errs, path, "host rewrites are not supported yet");
    duration_ms(a->timeout, DEFAULT_ROUTE_TIMEOUT_MS, pkey(p, path, "timeout"), errs, &r->timeout_ms);
}

static void
direct_response(const Envoy__Config__Route__V3__DirectResponseAction *d, const char *path, mcplex_route_t *r,
                mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];

    r->action = MCPLEX_ROUTE_DIRECT_RESPONSE;
    if (d->status < 200 || d->status > 599)
        mcplex_errors_add(errs, pkey(p, path, "status"), "must be from 200 to 599, got %" PRIu32, d->status);
    r->direct_status = (int)d->status;
    if (d->body == NULL)
        return;
    switch (d->body->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        r->direct_body = mcplex_strdup(d->body->inline_string != NULL ? d->body->inline_string : "");
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        if (memchr(d->body->inline_bytes.data, '\0', d->body->inline_bytes.len) != NULL)
            mcplex_errors_add(errs, pkey(p, path, "body.inline_bytes"), "must not contain NUL bytes");
        r->direct_body = mcplex_strndup((const char *)d->body->inline_bytes.data, d->body->inline_bytes.len);
        break;
    default:
        mcplex_errors_add(errs, pkey(p, path, "body"), "only inline_string and inline_bytes are supported");
        break;
    }
}

/*
 * A body limit: request_body_buffer_limit (UInt64Value) wins over the deprecated
 * per_request_buffer_limit_bytes (UInt32Value); both unset leaves |*out| alone. 0 and values
 * above 1 GiB are refused (the codecs keep a whole body in memory).
 */
static void
body_limit(const Google__Protobuf__UInt64Value *limit64, const Google__Protobuf__UInt32Value *limit32,
           const char *path, mcplex_errors_t *errs, uint64_t *out)
{
    char p[PATH_MAX_LEN];
    uint64_t v;

    if (limit64 != NULL) {
        v = limit64->value;
        pkey(p, path, "request_body_buffer_limit");
    } else if (limit32 != NULL) {
        v = limit32->value;
        pkey(p, path, "per_request_buffer_limit_bytes");
    } else {
        return;
    }
    if (v == 0 || v > MAX_BODY_LIMIT_BYTES) {
        mcplex_errors_add(errs, p, "must be from 1 to %llu bytes", (unsigned long long)MAX_BODY_LIMIT_BYTES);
        return;
    }
    *out = v;
}

static void
translate_route(const pb_route_t *pr, const char *path, int mcp_router, const cors_state_t *outer_cors,
                mcplex_config_refs_t *refs, mcplex_route_t *r, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];
    cors_state_t tpfc = {0}, action_cors = {0};
    const cors_state_t *eff;

    r->name = dup_nonempty(pr->name);
    r->case_sensitive = 1;
    route_match(pr->match, pkey(p, path, "match"), r, errs);
    switch (pr->action_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE:
        route_action(pr->route, pkey(p, path, "route"), mcp_router, refs, r, errs);
        if (pr->route->cors != NULL) {
            action_cors.policy = cors_from_route_policy(pr->route->cors, pkey(p, path, "route.cors"), errs);
            action_cors.level = action_cors.policy != NULL ? CORS_POLICY : CORS_UNSET;
        }
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE:
        direct_response(pr->direct_response, pkey(p, path, "direct_response"), r, errs);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION:
        if (!mcp_router)
            mcplex_errors_add(
                errs, pkey(p, path, "non_forwarding_action"),
                "needs a terminal filter that answers by itself (envoy.filters.http.mcp_router)");
        r->action = MCPLEX_ROUTE_CLUSTER;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT:
        mcplex_errors_add(errs, pkey(p, path, "redirect"), "is not supported yet");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_FILTER_ACTION:
        mcplex_errors_add(errs, pkey(p, path, "filter_action"), "is not supported");
        break;
    default:
        mcplex_errors_add(errs, path, "one of route, direct_response or non_forwarding_action is required");
        break;
    }
    TPFC_SCAN(pr->typed_per_filter_config, pr->n_typed_per_filter_config, path, &tpfc, errs);
    /* precedence: route typed_per_filter_config, route.route.cors, then the outer levels */
    eff = cors_pick(&tpfc, cors_pick(&action_cors, outer_cors));
    if (eff->level == CORS_POLICY)
        r->cors = cors_copy(eff->policy);
    /* origin (issue 3): the route's own McpRoute; translate_vhost() fills in the outer one */
    r->origin = tpfc.origin;
    tpfc.origin = NULL;
    /* body limit (issue 4): the route's own; translate_vhost() fills in the virtual host's */
    body_limit(pr->request_body_buffer_limit, pr->per_request_buffer_limit_bytes, path, errs,
               &r->max_request_body_bytes);
    cors_state_dispose(&tpfc);
    cors_state_dispose(&action_cors);
}

/* A virtual host domain: exact, "*", "*.suffix" or "prefix.*" (one wildcard, at an end). */
static int
domain_valid(const char *d)
{
    const char *star = strchr(d, '*');

    if (d[0] == '\0')
        return 0;
    if (star == NULL || strcmp(d, "*") == 0)
        return 1;
    if (strchr(star + 1, '*') != NULL)
        return 0;
    return star == d || star[1] == '\0';
}

static void
translate_vhost(const pb_vhost_t *v, const char *path, int mcp_router, const cors_state_t *rc_cors,
                mcplex_config_refs_t *refs, mcplex_virtual_host_t *vh, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    cors_state_t tpfc = {0}, field = {0};
    const cors_state_t *eff;

    if (empty(v->name))
        mcplex_errors_add(errs, pkey(p, path, "name"), "is required");
    vh->name = mcplex_strdup(v->name != NULL ? v->name : "");
    if (v->n_domains == 0)
        mcplex_errors_add(errs, pkey(p, path, "domains"), "at least one domain is required");
    vh->domains = mcplex_calloc(v->n_domains, sizeof(char *));
    for (size_t i = 0; i < v->n_domains; i++) {
        const char *d = v->domains[i] != NULL ? v->domains[i] : "";
        if (!domain_valid(d))
            mcplex_errors_add(errs, pidx(p, path, "domains", i),
                              "invalid domain '%s' (exact, \"*\", \"*.suffix\" or \"prefix.*\")", d);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(vh->domains[k], d) == 0)
                mcplex_errors_add(errs, pidx(p, path, "domains", i), "duplicate domain '%s'", d);
        }
        vh->domains[i] = mcplex_strdup(d);
        vh->n_domains = i + 1;
    }
    if (v->cors != NULL) {
        field.policy = cors_from_route_policy(v->cors, pkey(p, path, "cors"), errs);
        field.level = field.policy != NULL ? CORS_POLICY : CORS_UNSET;
    }
    TPFC_SCAN(v->typed_per_filter_config, v->n_typed_per_filter_config, path, &tpfc, errs);
    eff = cors_pick(&tpfc, cors_pick(&field, rc_cors));
    vh->routes = mcplex_calloc(v->n_routes, sizeof(*vh->routes));
    for (size_t i = 0; i < v->n_routes; i++) {
        translate_route(v->routes[i], pidx(q, path, "routes", i), mcp_router, eff, refs, &vh->routes[i],
                        errs);
        vh->n_routes = i + 1;
        if (vh->routes[i].max_request_body_bytes == 0)
            body_limit(v->request_body_buffer_limit, v->per_request_buffer_limit_bytes, path, errs,
                       &vh->routes[i].max_request_body_bytes);
        /* origin (issue 3): McpRoute of the virtual host, else of the route configuration */
        if (vh->routes[i].origin == NULL)
            vh->routes[i].origin =
                mcplex_origin_policy_copy(tpfc.origin != NULL ? tpfc.origin : rc_cors->origin);
    }
    cors_state_dispose(&tpfc);
    cors_state_dispose(&field);
}

int
mcplex_config_translate_route_configuration(const Envoy__Config__Route__V3__RouteConfiguration *msg,
                                            const char *path, int mcp_router, mcplex_config_refs_t *refs,
                                            mcplex_route_config_t *out, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];
    size_t before = errs->count;
    cors_state_t tpfc = {0};

    memset(out, 0, sizeof(*out));
    out->name = mcplex_strdup(msg->name != NULL ? msg->name : "");
    TPFC_SCAN(msg->typed_per_filter_config, msg->n_typed_per_filter_config, path, &tpfc, errs);
    if (msg->vhds != NULL)
        mcplex_errors_add(errs, pkey(p, path, "vhds"), "is not supported");
    out->virtual_hosts = mcplex_calloc(msg->n_virtual_hosts, sizeof(*out->virtual_hosts));
    for (size_t i = 0; i < msg->n_virtual_hosts; i++) {
        translate_vhost(msg->virtual_hosts[i], pidx(p, path, "virtual_hosts", i), mcp_router, &tpfc, refs,
                        &out->virtual_hosts[i], errs);
        out->n_virtual_hosts = i + 1;
        for (size_t j = 0; j < out->virtual_hosts[i].n_routes; j++) {
            uint64_t limit = out->virtual_hosts[i].routes[j].max_request_body_bytes;
            if (limit == 0)
                limit = MCPLEX_HTTP_DEFAULT_MAX_BODY_BYTES;
            if (limit > out->max_request_body_bytes)
                out->max_request_body_bytes = limit;
        }
    }
    /* Envoy: a domain may appear in one virtual host only */
    for (size_t i = 0; i < out->n_virtual_hosts; i++) {
        for (size_t j = 0; j < out->virtual_hosts[i].n_domains; j++) {
            const char *d = out->virtual_hosts[i].domains[j];
            for (size_t k = 0; k < i; k++) {
                for (size_t l = 0; l < out->virtual_hosts[k].n_domains; l++) {
                    if (strcmp(out->virtual_hosts[k].domains[l], d) == 0) {
                        char q[PATH_MAX_LEN];
                        mcplex_errors_add(errs, pidx(q, pidx(p, path, "virtual_hosts", i), "domains", j),
                                          "domain '%s' is already used by virtual host '%s'", d,
                                          out->virtual_hosts[k].name);
                    }
                }
            }
        }
    }
    cors_state_dispose(&tpfc);
    if (errs->count != before) {
        mcplex_route_config_dispose(out);
        return -1;
    }
    return 0;
}

/* ---- HTTP connection manager -------------------------------------------------------------- */

typedef enum http_filter_kind {
    HF_UNKNOWN = 0,
    HF_ROUTER,
    HF_CORS,
    HF_MCP,
    HF_MCP_ROUTER,
} http_filter_kind_t;

static http_filter_kind_t
http_filter_by_type(const char *type)
{
    if (strcmp(type, T_ROUTER) == 0)
        return HF_ROUTER;
    if (strcmp(type, T_CORS) == 0)
        return HF_CORS;
    if (strcmp(type, T_MCP) == 0)
        return HF_MCP;
    if (strcmp(type, T_MCP_ROUTER) == 0)
        return HF_MCP_ROUTER;
    return HF_UNKNOWN;
}

static http_filter_kind_t
http_filter_by_name(const char *name)
{
    if (strcmp(name, N_ROUTER) == 0)
        return HF_ROUTER;
    if (strcmp(name, N_CORS) == 0)
        return HF_CORS;
    if (strcmp(name, N_MCP) == 0)
        return HF_MCP;
    if (strcmp(name, N_MCP_ROUTER) == 0)
        return HF_MCP_ROUTER;
    return HF_UNKNOWN;
}

/*
 * The http_filters: sets cors_filter, mcp_filter, mcp_router; enforces Envoy's terminal-filter
 * rule (the last filter is terminal, a terminal filter is last).
 */
static void
hcm_http_filters(const pb_hcm_t *h, const char *path, mcplex_config_refs_t *refs, mcplex_hcm_t *out,
                 mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];
    size_t *effective = mcplex_calloc(h->n_http_filters, sizeof(size_t));
    int *terminal = mcplex_calloc(h->n_http_filters, sizeof(int));
    size_t n_effective = 0;

    if (h->n_http_filters == 0)
        mcplex_errors_add(errs, pkey(p, path, "http_filters"),
                          "at least one HTTP filter is required (the last one envoy.filters.http.router or "
                          "envoy.filters.http.mcp_router)");
    for (size_t i = 0; i < h->n_http_filters; i++) {
        const pb_http_filter_t *f = h->http_filters[i];
        const char *name = f->name != NULL ? f->name : "";
        const char *type = "";
        http_filter_kind_t kind;
        ProtobufCMessage *m = NULL;

        pidx(p, path, "http_filters", i);
        if (empty(f->name))
            mcplex_errors_add(errs, pkey(q, p, "name"), "is required");
        if (f->config_type_case == HF_CONFIG_DISCOVERY) {
            if (!f->is_optional)
                mcplex_errors_add(errs, pkey(q, p, "config_discovery"), "is not supported (ECDS)");
            continue;
        }
        if (f->config_type_case == HF_TYPED_CONFIG && f->typed_config != NULL) {
            type = any_type_name(f->typed_config, tbuf, sizeof(tbuf));
            kind = http_filter_by_type(type);
        } else {
            kind = http_filter_by_name(name);
        }
        if (kind == HF_UNKNOWN) {
            if (f->is_optional) {
                mcplex_log_warn("config",
                                "%s: skipping optional HTTP filter '%s' (type '%s'): not implemented", p,
                                name, type);
            } else {
                mcplex_errors_add(errs, p,
                                  "Didn't find a registered implementation for '%s' with type URL: '%s'",
                                  name, type);
            }
            continue;
        }
        if (f->disabled && (kind == HF_ROUTER || kind == HF_MCP_ROUTER)) {
            mcplex_errors_add(errs, pkey(q, p, "disabled"), "the terminal filter cannot be disabled");
            continue;
        }
        effective[n_effective] = i;
        terminal[n_effective] = kind == HF_ROUTER || kind == HF_MCP_ROUTER;
        n_effective++;
        if (f->disabled)
            continue; /* per-route enabling is not supported: a disabled filter stays off */
        pkey(q, p, "typed_config");
        switch (kind) {
        case HF_ROUTER:
            if (f->typed_config != NULL)
                m = any_unpack_as(f->typed_config,
                                  &envoy__extensions__filters__http__router__v3__router__descriptor, q, errs);
            break;
        case HF_CORS:
            out->cors_filter = 1;
            if (f->typed_config != NULL)
                m = any_unpack_as(f->typed_config,
                                  &envoy__extensions__filters__http__cors__v3__cors__descriptor, q, errs);
            break;
        case HF_MCP:
            out->mcp_filter = 1;
            if (f->typed_config != NULL)
                m = any_unpack_as(f->typed_config,
                                  &envoy__extensions__filters__http__mcp__v3__mcp__descriptor, q, errs);
            break;
        case HF_MCP_ROUTER:
            if (f->typed_config == NULL) {
                mcplex_errors_add(errs, q, "is required (servers[])");
                break;
            }
            m = any_unpack_as(f->typed_config,
                              &envoy__extensions__filters__http__mcp_router__v3__mcp_router__descriptor, q,
                              errs);
            if (m != NULL && out->mcp_router == NULL)
                out->mcp_router = backend_from_mcp_router((const pb_mcp_router_t *)m, q, refs, errs);
            break;
        default:
            break;
        }
        if (m != NULL)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    for (size_t k = 0; k < n_effective; k++) {
        const pb_http_filter_t *f = h->http_filters[effective[k]];
        const char *name = f->name != NULL ? f->name : "";
        pidx(p, path, "http_filters", effective[k]);
        if (terminal[k] && k + 1 < n_effective)
            mcplex_errors_add(
                errs, p, "terminal filter named '%s' must be the last filter in a http filter chain", name);
        else if (!terminal[k] && k + 1 == n_effective)
            mcplex_errors_add(
                errs, p, "non-terminal filter named '%s' is the last filter in a http filter chain", name);
    }
    free(effective);
    free(terminal);
}

/*
 * --- HTTP/2 (issue 4) ---
 * Http2ProtocolOptions of an HCM (config.core.v3): max_concurrent_streams (1..2^31-1),
 * initial_stream_window_size and initial_connection_window_size (65535..2^31-1, Envoy's bounds).
 * Unset fields stay 0: the codec's defaults. Other fields are accepted and ignored.
 */
static void
hcm_http2_options(const Envoy__Config__Core__V3__Http2ProtocolOptions *o, const char *path, mcplex_hcm_t *out,
                  mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];

    if (o == NULL)
        return;
    if (o->max_concurrent_streams != NULL) {
        if (o->max_concurrent_streams->value < 1 || o->max_concurrent_streams->value > 2147483647u)
            mcplex_errors_add(errs, pkey(p, path, "max_concurrent_streams"), "must be from 1 to 2147483647");
        out->http2_max_concurrent_streams = o->max_concurrent_streams->value;
    }
    if (o->initial_stream_window_size != NULL) {
        if (o->initial_stream_window_size->value < 65535 || o->initial_stream_window_size->value > 2147483647u)
            mcplex_errors_add(errs, pkey(p, path, "initial_stream_window_size"),
                              "must be from 65535 to 2147483647");
        out->http2_initial_stream_window_size = o->initial_stream_window_size->value;
    }
    if (o->initial_connection_window_size != NULL) {
        if (o->initial_connection_window_size->value < 65535 ||
            o->initial_connection_window_size->value > 2147483647u)
            mcplex_errors_add(errs, pkey(p, path, "initial_connection_window_size"),
                              "must be from 65535 to 2147483647");
        out->http2_initial_connection_window_size = o->initial_connection_window_size->value;
    }
}
/* --- end HTTP/2 --- */

/* The HttpConnectionManager in |any| (its path is |path|). */
static void
translate_hcm(const pb_any_t *any, const char *path, mcplex_config_refs_t *refs, mcplex_hcm_t *out,
              mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN];
    const pb_hcm_t *h;
    ProtobufCMessage *m;

    m = any_unpack_as(any, &HCM_DESCRIPTOR, path, errs);
    if (m == NULL)
        return;
    h = (const pb_hcm_t *)m;
    if (empty(h->stat_prefix))
        mcplex_errors_add(errs, pkey(p, path, "stat_prefix"), "is required");
    out->stat_prefix = mcplex_strdup(h->stat_prefix != NULL ? h->stat_prefix : "");
    switch (h->codec_type) {
    case HCM_CODEC_AUTO:
        out->codec_type = MCPLEX_CODEC_AUTO;
        break;
    case HCM_CODEC_HTTP1:
        out->codec_type = MCPLEX_CODEC_HTTP1;
        break;
    case HCM_CODEC_HTTP2:
        out->codec_type = MCPLEX_CODEC_HTTP2;
        break;
    default:
        mcplex_errors_add(errs, pkey(p, path, "codec_type"), "only AUTO, HTTP1 and HTTP2 are supported");
        break;
    }
    out->max_request_headers_kb = DEFAULT_MAX_REQUEST_HEADERS_KB;
    if (h->max_request_headers_kb != NULL) {
        if (h->max_request_headers_kb->value < 1 || h->max_request_headers_kb->value > 8192)
            mcplex_errors_add(errs, pkey(p, path, "max_request_headers_kb"), "must be from 1 to 8192");
        out->max_request_headers_kb = h->max_request_headers_kb->value;
    }
    duration_ms(h->stream_idle_timeout, DEFAULT_STREAM_IDLE_TIMEOUT_MS, pkey(p, path, "stream_idle_timeout"),
                errs, &out->stream_idle_timeout_ms);
    /* --- HTTP/2 (issue 4): http2_protocol_options limits and drain_timeout --- */
    hcm_http2_options(h->http2_protocol_options, pkey(p, path, "http2_protocol_options"), out, errs);
    duration_ms(h->drain_timeout, DEFAULT_DRAIN_TIMEOUT_MS, pkey(p, path, "drain_timeout"), errs,
                &out->drain_timeout_ms);
    /* --- end HTTP/2 --- */
    hcm_http_filters(h, path, refs, out, errs);
    /* --- access_log (issue 7): the file sink, see admin/access_log.h --- */
    mcplex_access_log_translate((const void *const *)h->access_log, h->n_access_log, pkey(p, path, "access_log"),
                                &out->access_logs, &out->n_access_logs, errs);
    switch (h->route_specifier_case) {
    case HCM_ROUTE_CONFIG:
        mcplex_config_translate_route_configuration(h->route_config, pkey(p, path, "route_config"),
                                                    out->mcp_router != NULL, refs, &out->route_config, errs);
        break;
    case HCM_RDS:
        /* --- xDS (issue 5): route configurations from RDS through the xDS source --- */
        if (xds_source == NULL) {
            mcplex_errors_add(errs, pkey(p, path, "rds"), "rds is not supported in static config yet");
        } else if (h->rds == NULL || empty(h->rds->route_config_name)) {
            mcplex_errors_add(errs, pkey(p, path, "rds.route_config_name"), "is required");
        } else {
            const Envoy__Config__Route__V3__RouteConfiguration *rc =
                xds_source->route_config(xds_source->arg, h->rds->route_config_name);
            if (rc != NULL) {
                /* refs NULL: Envoy's validate_clusters defaults to false for RDS (an unknown
                 * cluster is a 503 at request time, so CDS/RDS may arrive in any order) */
                mcplex_config_translate_route_configuration(rc, pkey(p, path, "rds"), out->mcp_router != NULL,
                                                            NULL, &out->route_config, errs);
            } else {
                xds_source->n_missing++;
                out->route_config.name = mcplex_strdup(h->rds->route_config_name);
            }
        }
        /* --- end xDS --- */
        break;
    default:
        mcplex_errors_add(errs, pkey(p, path, "route_config"), "is required (route_config or rds)");
        break;
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- listeners ----------------------------------------------------------------------------- */

static void
listener_filters(const Envoy__Config__Listener__V3__Listener *msg, const char *path, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];

    for (size_t i = 0; i < msg->n_listener_filters; i++) {
        const Envoy__Config__Listener__V3__ListenerFilter *lf = msg->listener_filters[i];
        const char *name = lf->name != NULL ? lf->name : "";
        const char *type = "";

        if (lf->config_type_case == ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG &&
            lf->typed_config != NULL) {
            type = any_type_name(lf->typed_config, tbuf, sizeof(tbuf));
            if (strcmp(type, T_TLS_INSPECTOR) == 0)
                continue;
        } else if (strcmp(name, N_TLS_INSPECTOR) == 0) {
            continue;
        }
        mcplex_errors_add(errs, pidx(p, path, "listener_filters", i),
                          "Didn't find a registered implementation for '%s' with type URL: '%s'", name, type);
    }
}

/* --- filter chains (issue 4): matches, TLS, one HCM each --- */

/* The network filters of a chain: exactly one HCM, translated into |hcm|. */
static void
filter_chain_hcm(const pb_filter_chain_t *fc, const char *p, mcplex_config_refs_t *refs, mcplex_hcm_t *hcm,
                 mcplex_errors_t *errs)
{
    char q[PATH_MAX_LEN], r[PATH_MAX_LEN], tbuf[TYPE_URL_MAX];

    if (fc->n_filters != 1) {
        mcplex_errors_add(errs, pkey(q, p, "filters"), "exactly one network filter (%s) is required, got %zu", N_HCM,
                          fc->n_filters);
    }
    if (fc->n_filters >= 1) {
        const pb_filter_t *f = fc->filters[0];
        const char *name = f->name != NULL ? f->name : "";
        const char *type = "";
        pidx(q, p, "filters", 0);
        if (f->config_type_case == ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG &&
            f->typed_config != NULL)
            type = any_type_name(f->typed_config, tbuf, sizeof(tbuf));
        if (strcmp(type, T_HCM) == 0) {
            translate_hcm(f->typed_config, pkey(r, q, "typed_config"), refs, hcm, errs);
        } else if (type[0] == '\0' && strcmp(name, N_HCM) == 0) {
            mcplex_errors_add(errs, pkey(r, q, "typed_config"), "is required");
        } else {
            mcplex_errors_add(errs, q, "Didn't find a registered implementation for '%s' with type URL: '%s'", name,
                              type);
        }
    }
}

/* filter_chain_match (the subset mcplex matches on: server_names, transport_protocol) and TLS. */
static void
filter_chain_match(const pb_filter_chain_t *fc, const char *p, mcplex_filter_chain_t *out, mcplex_errors_t *errs)
{
    char q[PATH_MAX_LEN];
    const Envoy__Config__Listener__V3__FilterChainMatch *m = fc->filter_chain_match;

    out->name = dup_nonempty(fc->name);
    if (fc->transport_socket != NULL)
        out->tls = tls_transport_socket(fc->transport_socket, pkey(q, p, "transport_socket"), 1, errs);
    if (m == NULL)
        return;
    pkey(q, p, "filter_chain_match");
    if (m->n_prefix_ranges > 0 || m->n_source_prefix_ranges > 0 || m->n_source_ports > 0 ||
        m->destination_port != NULL || m->n_direct_source_prefix_ranges > 0 || m->n_application_protocols > 0 ||
        m->source_type != 0)
        mcplex_errors_add(errs, q, "only server_names and transport_protocol are supported");
    if (!empty(m->transport_protocol)) {
        if (strcmp(m->transport_protocol, "tls") != 0 && strcmp(m->transport_protocol, "raw_buffer") != 0)
            mcplex_errors_add(errs, q, "transport_protocol must be 'tls' or 'raw_buffer'");
        out->transport_protocol = mcplex_strdup(m->transport_protocol);
    }
    if (m->n_server_names > 0) {
        out->server_names = mcplex_calloc(m->n_server_names, sizeof(char *));
        for (size_t i = 0; i < m->n_server_names; i++) {
            const char *n = m->server_names[i] != NULL ? m->server_names[i] : "";
            char r[PATH_MAX_LEN];
            if (n[0] == '\0' || (strchr(n, '*') != NULL && (strncmp(n, "*.", 2) != 0 || strchr(n + 1, '*') != NULL)))
                mcplex_errors_add(errs, pidx(r, q, "server_names", i),
                                  "'%s' is not a server name or a '*.' wildcard", n);
            out->server_names[out->n_server_names++] = mcplex_strdup(n);
        }
    }
    if (out->tls == NULL && out->n_server_names > 0)
        mcplex_errors_add(errs, pkey(q, p, "filter_chain_match.server_names"),
                          "needs a TLS transport_socket (plaintext connections have no SNI)");
    if (out->transport_protocol != NULL && (strcmp(out->transport_protocol, "tls") == 0) != (out->tls != NULL))
        mcplex_errors_add(errs, pkey(q, p, "filter_chain_match.transport_protocol"),
                          "'%s' does not fit the chain's transport_socket", out->transport_protocol);
}

/* Do two chains match the same connections? (Envoy rejects that listener.) */
static int
filter_chain_same_match(const mcplex_filter_chain_t *a, const mcplex_filter_chain_t *b)
{
    if ((a->tls != NULL) != (b->tls != NULL) || a->n_server_names != b->n_server_names)
        return 0;
    for (size_t i = 0; i < a->n_server_names; i++) {
        int found = 0;
        for (size_t k = 0; k < b->n_server_names && !found; k++)
            found = strcasecmp(a->server_names[i], b->server_names[k]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}
/* --- end filter chains --- */

int
mcplex_config_translate_listener(const Envoy__Config__Listener__V3__Listener *msg, const char *path,
                                 mcplex_config_refs_t *refs, mcplex_listener_cfg_t *out,
                                 mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    size_t before = errs->count;
    size_t n = msg->n_filter_chains + (msg->default_filter_chain != NULL ? 1 : 0);

    memset(out, 0, sizeof(*out));
    socket_address(msg->address, pkey(p, path, "address"), 0, &out->address, &out->port, errs);
    listener_filters(msg, path, errs);
    if (n == 0)
        mcplex_errors_add(errs, pkey(p, path, "filter_chains"), "at least one filter chain is required");
    /* filter_chains[], then default_filter_chain; chain 0's HCM is the listener's |hcm|. */
    out->filter_chains = n > 0 ? mcplex_calloc(n, sizeof(*out->filter_chains)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const pb_filter_chain_t *fc;
        mcplex_filter_chain_t *c = &out->filter_chains[i];
        if (i < msg->n_filter_chains) {
            fc = msg->filter_chains[i];
            pidx(p, path, "filter_chains", i);
        } else {
            fc = msg->default_filter_chain;
            pkey(p, path, "default_filter_chain");
            c->is_default = 1;
        }
        out->n_filter_chains = i + 1;
        filter_chain_match(fc, p, c, errs);
        filter_chain_hcm(fc, p, refs, i == 0 ? &out->hcm : &c->hcm, errs);
        for (size_t k = 0; k < i && !c->is_default; k++)
            if (!out->filter_chains[k].is_default && filter_chain_same_match(&out->filter_chains[k], c))
                mcplex_errors_add(errs, p, "multiple filter chains with the same matching rules are defined (%s)",
                                  pidx(q, path, "filter_chains", k));
    }
    if (!empty(msg->name))
        out->name = mcplex_strdup(msg->name);
    else if (out->address != NULL)
        out->name = mcplex_sprintf("%s:%u", out->address, (unsigned)out->port);
    if (errs->count != before) {
        mcplex_listener_cfg_dispose(out);
        return -1;
    }
    return 0;
}

/* ---- bootstrap ----------------------------------------------------------------------------- */

/* Removes the references to any of |names|. */
static void
refs_drop_clusters(mcplex_config_refs_t *refs, const char *const *names, size_t n)
{
    size_t kept = 0;

    for (size_t i = 0; i < refs->count; i++) {
        int drop = 0;
        for (size_t k = 0; k < n && !drop; k++)
            drop = strcmp(refs->items[i].cluster, names[k]) == 0;
        if (drop) {
            free(refs->items[i].path);
            free(refs->items[i].cluster);
        } else {
            refs->items[kept++] = refs->items[i];
        }
    }
    refs->count = kept;
}

static void
append_clusters(mcplex_snapshot_t *s, mcplex_cluster_t *arr, size_t n)
{
    s->clusters = mcplex_realloc(s->clusters, (s->n_clusters + n) * sizeof(*s->clusters));
    memcpy(&s->clusters[s->n_clusters], arr, n * sizeof(*arr));
    s->n_clusters += n;
}

mcplex_snapshot_t *
mcplex_config_translate_bootstrap(const Envoy__Config__Bootstrap__V3__Bootstrap *b, mcplex_errors_t *errs)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    mcplex_snapshot_t *s = mcplex_calloc(1, sizeof(*s));
    mcplex_config_refs_t refs;
    size_t before = errs->count;
    char **cluster_paths = NULL; /* the resource each cluster of |s| came from */
    char **failed = NULL;        /* names of the clusters that did not translate */
    size_t n_failed = 0;
    mcplex_config_xds_source_t *saved_source; /* xDS (issue 5) */

    mcplex_config_refs_init(&refs);
    if (b->node != NULL) {
        s->node_id = dup_nonempty(b->node->id);
        s->node_cluster = dup_nonempty(b->node->cluster);
    }
    if (b->admin != NULL && b->admin->address != NULL)
        socket_address(b->admin->address, "admin.address", 0, &s->admin_address, &s->admin_port, errs);
    /* --- xDS (issue 5): the xDS source resolves rds and EDS only for bootstraps with
     * dynamic_resources (xds/ reads and checks them); static bootstraps behave as before --- */
    if (b->dynamic_resources != NULL && xds_source == NULL)
        mcplex_errors_add(errs, "dynamic_resources",
                          "xDS (dynamic_resources) needs the xDS client (mcplex_xds)");
    saved_source = xds_source;
    if (b->dynamic_resources == NULL)
        xds_source = NULL;
    /* --- end xDS --- */
    if (sr != NULL) {
        if (sr->n_secrets > 0)
            mcplex_errors_add(errs, "static_resources.secrets", "is not supported yet");
        for (size_t i = 0; i < sr->n_clusters; i++) {
            size_t n = 0;
            mcplex_cluster_t *arr;

            pidx(p, "static_resources", "clusters", i);
            arr = mcplex_config_translate_cluster(sr->clusters[i], p, &refs, &n, errs);
            if (arr == NULL) {
                if (!empty(sr->clusters[i]->name)) {
                    failed = mcplex_realloc(failed, (n_failed + 1) * sizeof(char *));
                    failed[n_failed++] = mcplex_strdup(sr->clusters[i]->name);
                }
                continue;
            }
            cluster_paths = mcplex_realloc(cluster_paths, (s->n_clusters + n) * sizeof(char *));
            for (size_t k = 0; k < n; k++) {
                /* a name clash is reported where the name was written */
                cluster_paths[s->n_clusters + k] = k == 0 ? mcplex_sprintf("%s.name", p) : mcplex_strdup(p);
                for (size_t j = 0; j < s->n_clusters; j++) {
                    if (strcmp(s->clusters[j].name, arr[k].name) == 0) {
                        mcplex_errors_add(errs, cluster_paths[s->n_clusters + k],
                                          "duplicate cluster name '%s' (also %s)", arr[k].name,
                                          cluster_paths[j]);
                        break;
                    }
                }
            }
            append_clusters(s, arr, n);
            free(arr);
        }
        s->listeners = mcplex_calloc(sr->n_listeners, sizeof(*s->listeners));
        for (size_t i = 0; i < sr->n_listeners; i++) {
            mcplex_listener_cfg_t *l = &s->listeners[s->n_listeners];

            pidx(p, "static_resources", "listeners", i);
            if (mcplex_config_translate_listener(sr->listeners[i], p, &refs, l, errs) != 0)
                continue;
            for (size_t j = 0; j < s->n_listeners; j++) {
                if (strcmp(s->listeners[j].name, l->name) == 0)
                    mcplex_errors_add(errs, pkey(q, p, "name"), "duplicate listener name '%s'", l->name);
                else if (s->listeners[j].port == l->port && strcmp(s->listeners[j].address, l->address) == 0)
                    mcplex_errors_add(errs, pkey(q, p, "address"), "listener '%s' already uses %s port %u",
                                      s->listeners[j].name, l->address, (unsigned)l->port);
            }
            s->n_listeners++;
        }
    }
    /* a reference to a cluster that failed is not reported again: its own errors say why */
    refs_drop_clusters(&refs, (const char *const *)failed, n_failed);
    mcplex_config_refs_check(&refs, s->clusters, s->n_clusters, errs);
    mcplex_config_refs_dispose(&refs);
    for (size_t i = 0; i < s->n_clusters; i++)
        free(cluster_paths[i]);
    free(cluster_paths);
    for (size_t i = 0; i < n_failed; i++)
        free(failed[i]);
    free(failed);
    xds_source = saved_source; /* xDS (issue 5) */
    if (errs->count != before)
        goto fail;
    atomic_init(&s->refcount, 1);
    s->generation = mcplex_snapshot_next_generation();
    return s;
fail:
    mcplex_snapshot_free(s);
    return NULL;
}
