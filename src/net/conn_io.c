/*
 * conn_io.c - the transport seam under the HTTP codecs (see conn_io.h). Owns nothing: it tells
 * a TLS pair end from a socket bufferevent by asking for its pair partner. Thread: the worker
 * that owns the connection.
 *
 * How a TLS end learns about the codec's calls: both go through bufferevent_flush(BEV_FINISHED)
 * on the codec's pair end, which libevent turns into BEV_EVENT_EOF on the partner (the TLS
 * side), with BEV_EVENT_READING for a flush of EV_WRITE and BEV_EVENT_WRITING added for
 * EV_READ. A half-close flushes EV_WRITE only (EOF|READING: send close_notify and FIN once the
 * output drains); a free flushes both (EOF|READING|WRITING: the codec is gone, close). The
 * flags are needed because libevent unlinks a freed pair end only when its last reference
 * goes, which may be after the partner's deferred callback ran.
 */
#include "net/conn_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"

int
mcplex_conn_io_shutdown_write(struct bufferevent *bev)
{
    evutil_socket_t fd;

    if (bev == NULL)
        return -1;
    if (bufferevent_pair_get_partner(bev) != NULL)
        return bufferevent_flush(bev, EV_WRITE, BEV_FINISHED) < 0 ? -1 : 0;
    fd = bufferevent_getfd(bev);
    if (fd < 0)
        return -1;
    if (shutdown(fd, SHUT_WR) != 0) {
        int err = errno;
        mcplex_log_debug("net", "shutdown: %s", strerror(err));
        return -1;
    }
    return 0;
}

void
mcplex_conn_io_free(struct bufferevent *bev)
{
    if (bev == NULL)
        return;
    /* A pair end: tell the TLS side (EOF|READING|WRITING on its end: "gone"). */
    if (bufferevent_pair_get_partner(bev) != NULL)
        (void)bufferevent_flush(bev, EV_READ | EV_WRITE, BEV_FINISHED);
    bufferevent_free(bev);
}

void
mcplex_conn_io_format_peer(char *out, size_t out_len, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN];

    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, out_len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, out_len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else if (sa != NULL && sa->sa_family == AF_UNIX) {
        snprintf(out, out_len, "unix");
    } else {
        snprintf(out, out_len, "unknown");
    }
}
