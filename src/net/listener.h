/*
 * listener.h - TCP listening sockets (Envoy "listener" address part). Each worker opens its own
 * socket with SO_REUSEPORT so the kernel spreads connections across workers.
 * Thread: the worker whose event_base is given.
 */
#ifndef MCPLEX_NET_LISTENER_H
#define MCPLEX_NET_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sockaddr;

typedef struct mcplex_tcp_listener mcplex_tcp_listener_t;

/* Called with each accepted, non-blocking socket; the callee owns |fd|. */
typedef void (*mcplex_accept_fn)(void *arg, int fd, const struct sockaddr *peer, int peer_len);

/*
 * Binds |host| (IPv4/IPv6 literal or "localhost") : |port| with SO_REUSEADDR and SO_REUSEPORT
 * and starts accepting. Returns NULL on failure with a message in |err| (|err_len| bytes).
 * No name lookups: "localhost" means 127.0.0.1; an IPv6 address (brackets allowed) binds
 * IPv6 only (IPV6_V6ONLY, Envoy's default without ipv4_compat). |backlog| <= 0 means SOMAXCONN.
 * Accepted sockets are non-blocking and close-on-exec. When accept() runs out of descriptors
 * or memory, accepting pauses for 100 ms instead of spinning.
 */
mcplex_tcp_listener_t *mcplex_tcp_listener_create(struct event_base *base, const char *host, uint16_t port,
                                                  int backlog, mcplex_accept_fn cb, void *arg, char *err,
                                                  size_t err_len);
/* Stops accepting and closes the socket. */
void mcplex_tcp_listener_destroy(mcplex_tcp_listener_t *l);
/* The bound port (useful with port 0). */
uint16_t mcplex_tcp_listener_port(const mcplex_tcp_listener_t *l);

#endif
