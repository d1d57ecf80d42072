/*
 * origin.c - DNS rebinding protection: Host and Origin checks of a route (see origin.h).
 * Pure code; any thread (the HCM calls it on the connection's worker).
 */
#include "router/origin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common/mem.h"

#define HOST_MAX 256

/*
 * Splits a Host value into its host part (IPv6 keeps its brackets) and port. Returns the host
 * length, or 0 if |h| is malformed (empty host, bad port, stray characters).
 */
static size_t
split_host(const char *h, size_t len, const char **port, size_t *port_len)
{
    size_t host_len;

    *port = NULL;
    *port_len = 0;
    if (len == 0)
        return 0;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (close == NULL || close == h + 1)
            return 0;
        host_len = (size_t)(close - h) + 1;
    } else {
        const char *colon = memchr(h, ':', len);
        host_len = colon != NULL ? (size_t)(colon - h) : len;
        if (host_len == 0 || (colon != NULL && memchr(colon + 1, ':', len - host_len - 1) != NULL))
            return 0;
    }
    if (host_len < len) {
        if (h[host_len] != ':')
            return 0;
        *port = h + host_len + 1;
        *port_len = len - host_len - 1;
        for (size_t i = 0; i < *port_len; i++)
            if ((*port)[i] < '0' || (*port)[i] > '9')
                return 0;
    }
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#')
            return 0;
    }
    return host_len;
}

/* Is the bare host name (no port; IPv6 in brackets) a loopback one? */
static int
name_is_loopback(const char *name, size_t len)
{
    char buf[HOST_MAX];
    struct in_addr a4;
    struct in6_addr a6;

    if (len == 0 || len >= sizeof(buf))
        return 0;
    if (len == 9 && strncasecmp(name, "localhost", 9) == 0)
        return 1;
    if (name[0] == '[') {
        if (len < 3 || name[len - 1] != ']')
            return 0;
        memcpy(buf, name + 1, len - 2);
        buf[len - 2] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int
mcplex_origin_address_is_loopback(const char *address)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (address == NULL)
        return 0;
    if (strcasecmp(address, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, address, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

int
mcplex_origin_host_is_loopback(const char *host)
{
    const char *port;
    size_t port_len, n;

    if (host == NULL)
        return 0;
    n = split_host(host, strlen(host), &port, &port_len);
    return n > 0 && name_is_loopback(host, n);
}

/* The authority of an http(s) origin ("http://h:1" -> "h:1", a trailing '/' dropped), or NULL. */
static const char *
origin_authority(const char *origin, size_t *len)
{
    const char *a;

    if (strncasecmp(origin, "http://", 7) == 0)
        a = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        a = origin + 8;
    else
        return NULL;
    *len = strlen(a);
    if (*len > 0 && a[*len - 1] == '/')
        (*len)--;
    return a;
}

int
mcplex_origin_is_loopback(const char *origin)
{
    const char *a, *port;
    size_t len, port_len, n;

    if (origin == NULL || (a = origin_authority(origin, &len)) == NULL)
        return 0;
    n = split_host(a, len, &port, &port_len);
    return n > 0 && name_is_loopback(a, n);
}

/* Does Host |host| match an allowed_hosts entry? */
static int
host_allowed(const mcplex_origin_policy_t *p, const char *host)
{
    const char *port;
    size_t port_len, len = strlen(host), n = split_host(host, len, &port, &port_len);

    if (n == 0)
        return 0;
    for (size_t i = 0; p != NULL && i < p->n_allowed_hosts; i++) {
        const char *e = p->allowed_hosts[i];
        const char *eport;
        size_t elen = strlen(e), eport_len, en;

        if (strcmp(e, "*") == 0)
            return 1;
        en = split_host(e, elen, &eport, &eport_len);
        if (en == 0 || en != n || strncasecmp(e, host, n) != 0)
            continue;
        if (eport == NULL || (port != NULL && eport_len == port_len && memcmp(eport, port, port_len) == 0))
            return 1;
    }
    return 0;
}

/* Case-insensitive equality of two origins, each with an optional trailing '/'. */
static int
origin_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '/')
        la--;
    if (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int
origin_allowed(const mcplex_origin_policy_t *p, const mcplex_cors_policy_t *cors, const char *origin)
{
    for (size_t i = 0; p != NULL && i < p->n_allowed_origins; i++)
        if (strcmp(p->allowed_origins[i], "*") == 0 || origin_equal(p->allowed_origins[i], origin))
            return 1;
    /* An origin the route's CORS policy names exactly was meant to reach it ("*" does not count). */
    for (size_t i = 0; cors != NULL && i < cors->n_allow_origins; i++)
        if (strcmp(cors->allow_origins[i], "*") != 0 && origin_equal(cors->allow_origins[i], origin))
            return 1;
    return 0;
}

mcplex_origin_verdict_t
mcplex_origin_check(const mcplex_origin_policy_t *p, const mcplex_cors_policy_t *cors,
                    const char *listener_address, const char *host, const char *origin, char *why,
                    size_t why_len)
{
    mcplex_dns_rebinding_t mode = p != NULL ? p->dns_rebinding_protection : MCPLEX_DNS_REBINDING_DEFAULT;
    int check_host, check_origin;

    if (mode == MCPLEX_DNS_REBINDING_OFF)
        return MCPLEX_ORIGIN_OK;
    if (mode == MCPLEX_DNS_REBINDING_ON || mcplex_origin_address_is_loopback(listener_address)) {
        check_host = check_origin = 1;
    } else {
        check_host = p != NULL && p->n_allowed_hosts > 0;
        check_origin = p != NULL && p->n_allowed_origins > 0;
    }
    if (check_host && (host == NULL || (!mcplex_origin_host_is_loopback(host) && !host_allowed(p, host)))) {
        if (why != NULL)
            snprintf(why, why_len, "%s%.200s", host == NULL ? "Missing Host header" : "Invalid Host header: ",
                     host != NULL ? host : "");
        return MCPLEX_ORIGIN_BAD_HOST;
    }
    if (check_origin && origin != NULL && !mcplex_origin_is_loopback(origin) &&
        !origin_allowed(p, cors, origin)) {
        if (why != NULL)
            snprintf(why, why_len, "Invalid Origin header: %.200s", origin);
        return MCPLEX_ORIGIN_BAD_ORIGIN;
    }
    return MCPLEX_ORIGIN_OK;
}

void
mcplex_origin_respond_forbidden(mcplex_http_stream_t *stream, const char *why)
{
    cJSON *root = cJSON_CreateObject(), *err;
    char *body;
    mcplex_http_header_t ct = {"content-type", 12, "application/json", 16};

    cJSON_AddStringToObject(root, "jsonrpc", "2.0");
    cJSON_AddNullToObject(root, "id");
    err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddNumberToObject(err, "code", -32000);
    cJSON_AddStringToObject(err, "message", why != NULL ? why : "Forbidden");
    body = cJSON_PrintUnformatted(root);
    if (body == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    mcplex_http_stream_respond(stream, 403, &ct, 1, body, strlen(body));
    cJSON_free(body);
    cJSON_Delete(root);
}
