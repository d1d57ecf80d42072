/*
 * listener.c - TCP listening sockets (see listener.h).
 *
 * Owns one listening socket and the evconnlistener that accepts on it. The socket is made here
 * (not by evconnlistener_new_bind) so every failing step is reported with its own errno.
 * Accepted sockets are non-blocking and close-on-exec (libevent's accept4 path).
 * When accept fails for lack of descriptors or memory the listener pauses for
 * LISTENER_BACKOFF_MS instead of spinning on a readable socket it cannot accept from.
 * Thread: the worker whose event_base was given.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/log.h"
#include "common/mem.h"

#define LISTENER_BACKOFF_MS 100
#define LISTENER_LOG "listener"

struct mcplex_tcp_listener {
    struct evconnlistener *evl;
    struct event *backoff; /* re-enables accepting after a resource error */
    mcplex_accept_fn cb;
    void *arg;
    uint16_t port;
    char name[64]; /* "host:port" for logs */
};

static void
listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *peer, int peer_len,
                   void *arg)
{
    mcplex_tcp_listener_t *l = arg;

    l->cb(l->arg, fd, peer, peer_len);
}

static void
listener_on_backoff(evutil_socket_t fd, short what, void *arg)
{
    mcplex_tcp_listener_t *l = arg;

    evconnlistener_enable(l->evl);
}

static void
listener_on_error(struct evconnlistener *evl, void *arg)
{
    mcplex_tcp_listener_t *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {.tv_sec = 0, .tv_usec = LISTENER_BACKOFF_MS * 1000};

    mcplex_log_warn(LISTENER_LOG, "%s: accept: %s", l->name, strerror(err));
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        evconnlistener_disable(l->evl);
        evtimer_add(l->backoff, &tv);
    }
}

/*
 * Fills |ss| from |host| (IPv4 literal, IPv6 literal with or without brackets, or "localhost",
 * which means 127.0.0.1: no name lookups here). Returns the address length, or 0.
 */
static socklen_t
listener_parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    char buf[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(host);

    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return sizeof(*in);
    }
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return sizeof(*in6);
    }
    return 0;
}

mcplex_tcp_listener_t *
mcplex_tcp_listener_create(struct event_base *base, const char *host, uint16_t port, int backlog,
                           mcplex_accept_fn cb, void *arg, char *err, size_t err_len)
{
    mcplex_tcp_listener_t *l = NULL;
    struct sockaddr_storage ss;
    socklen_t ss_len;
    const char *step = NULL;
    int fd = -1, one = 1, saved;

    ss_len = listener_parse_host(host, port, &ss);
    if (ss_len == 0) {
        snprintf(err, err_len, "%s: not an IP address (use an IPv4/IPv6 literal or localhost)", host);
        return NULL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        step = "socket";
        goto fail;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        step = "SO_REUSEADDR";
        goto fail;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        step = "SO_REUSEPORT";
        goto fail;
    }
    /* "::" means IPv6 only, as in Envoy (no ipv4_compat); bind 0.0.0.0 separately for IPv4. */
    if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
        step = "IPV6_V6ONLY";
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, ss_len) != 0) {
        step = "bind";
        goto fail;
    }
    if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
        step = "listen";
        goto fail;
    }
    ss_len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) != 0) {
        step = "getsockname";
        goto fail;
    }

    l = mcplex_calloc(1, sizeof(*l));
    l->cb = cb;
    l->arg = arg;
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(l->name, sizeof(l->name), "%s:%u", host, (unsigned)l->port);
    l->backoff = evtimer_new(base, listener_on_backoff, l);
    if (l->backoff == NULL) {
        step = "evtimer_new";
        goto fail;
    }
    /* Backlog 0: the socket is already listening. */
    l->evl = evconnlistener_new(base, listener_on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
                                fd);
    if (l->evl == NULL) {
        step = "evconnlistener_new";
        goto fail;
    }
    evconnlistener_set_error_cb(l->evl, listener_on_error);
    mcplex_log_debug(LISTENER_LOG, "listening on %s", l->name);
    return l;

fail:
    saved = errno;
    snprintf(err, err_len, "%s:%u: %s: %s", host, (unsigned)port, step, strerror(saved));
    if (l != NULL) {
        if (l->backoff != NULL)
            event_free(l->backoff);
        free(l);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

void
mcplex_tcp_listener_destroy(mcplex_tcp_listener_t *l)
{
    if (l == NULL)
        return;
    evconnlistener_free(l->evl); /* closes the socket */
    event_free(l->backoff);
    free(l);
}

uint16_t
mcplex_tcp_listener_port(const mcplex_tcp_listener_t *l)
{
    return l->port;
}
