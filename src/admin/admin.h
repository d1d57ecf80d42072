/*
 * admin.h - the admin listener (Envoy's admin interface, config.bootstrap.v3.Admin): a plain
 * HTTP/1.1 server on the bootstrap's admin.address (agentgateway-style file: config.adminAddr,
 * default 127.0.0.1:15000) serving Envoy's endpoints with Envoy's output formats (/ready,
 * /server_info, /stats, /stats/prometheus, /config_dump, /clusters, /listeners, /logging,
 * /healthcheck/fail|ok, /drain_listeners, /quitquitquit) plus the MCP additions /mcp/sessions
 * and /mcp/targets, and any handler other modules register (the web UI at /ui).
 *
 * Owns: the admin socket and its connections, the process-wide server state Envoy reports
 * (LIVE / DRAINING, health-check failed), the handler registry.
 * Thread: main (the admin's event_base is the main loop). With one worker on the main thread it
 * reads the worker's state directly; with worker threads the reads run on each worker's own
 * thread through its inbox, waited for (mcplex_admin_set_group, issue 6).
 */
#ifndef MCPLEX_ADMIN_ADMIN_H
#define MCPLEX_ADMIN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct event_base;
struct mcplex_worker;

typedef struct mcplex_admin mcplex_admin_t;

/*
 * A handler for admin requests: answers |req| on |stream| (mcplex_http_stream_respond or
 * start/write/finish; the stream API of http.h). |ctx| is the pointer given at registration.
 * Runs on the main thread.
 */
typedef void (*mcplex_admin_handler_fn)(void *ctx, mcplex_http_stream_t *stream,
                                        const mcplex_http_request_t *req);

/*
 * Registers |fn| for every admin request whose path is |path_prefix| or starts with
 * |path_prefix| followed by '/' (e.g. "/ui" serves "/ui", "/ui/" and "/ui/app.js"). The longest
 * registered prefix wins; registered handlers take precedence over the built-in endpoints.
 * |help| is the one-line text listed on the admin home page (GET /), may be NULL. Strings are
 * copied. Works before or after mcplex_admin_create (the registry is process-wide). A second
 * registration of the same prefix replaces the first. Returns 0, or -1 for a prefix that does
 * not start with '/'. Thread: main.
 */
int mcplex_admin_register(const char *path_prefix, const char *help, mcplex_admin_handler_fn fn, void *ctx);

/* Removes every registered handler (process exit; tests). Thread: main. */
void mcplex_admin_unregister_all(void);

/* What the admin needs from the process (main.c): the graceful exit of POST /quitquitquit. */
typedef struct mcplex_admin_hooks {
    /* Starts the same graceful shutdown as SIGTERM. Called from an admin callback after the
     * response was queued; the admin itself is destroyed by the caller later. */
    void (*quit)(void *arg);
    void *arg;
    /* argv of the process, for /server_info command_line_options (not owned; may be NULL). */
    int argc;
    char **argv;
} mcplex_admin_hooks_t;

/*
 * Opens the admin listener on |address|:|port| (an IP literal or "localhost"; port 0 = any,
 * see mcplex_admin_port) on |base|, reading state from the |n_workers| workers in |workers|
 * (the array is copied, the workers are not owned and must outlive the admin or be removed with
 * mcplex_admin_set_workers). The socket uses SO_REUSEADDR but not SO_REUSEPORT, so a second
 * process cannot share the port. Returns the admin, or NULL with a reason in |err|.
 */
mcplex_admin_t *mcplex_admin_create(struct event_base *base, const char *address, uint16_t port,
                                    struct mcplex_worker **workers, size_t n_workers,
                                    const mcplex_admin_hooks_t *hooks, char *err, size_t err_len);

/* Replaces the workers the admin reads (e.g. NULL, 0 once they are destroyed at shutdown).
 * Only for the one worker of the main thread; worker threads go through mcplex_admin_set_group. */
void mcplex_admin_set_workers(mcplex_admin_t *a, struct mcplex_worker **workers, size_t n_workers);

struct mcplex_worker_group;
/*
 * Worker threads (issue 6): the admin reads the sessions and listeners of |group|'s workers on
 * their own threads (mcplex_worker_group_run_sync: the admin request waits for every worker),
 * and their snapshot (set only by applies the main thread waits for) directly. NULL stops
 * reading them (at shutdown, before the worker loops end). Thread: main.
 */
void mcplex_admin_set_group(mcplex_admin_t *a, struct mcplex_worker_group *group);

/* The bound port. */
uint16_t mcplex_admin_port(const mcplex_admin_t *a);

/* Closes the listener and every admin connection, frees |a|. NULL is a no-op. */
void mcplex_admin_destroy(mcplex_admin_t *a);

/* ---- process-wide server state (Envoy's server.state / server.live; thread: any) ----------- */

/* Envoy's envoy.admin.v3.ServerInfo.State values. */
typedef enum mcplex_server_state {
    MCPLEX_SERVER_LIVE = 0,
    MCPLEX_SERVER_DRAINING = 1,
    MCPLEX_SERVER_PRE_INITIALIZING = 2,
    MCPLEX_SERVER_INITIALIZING = 3,
} mcplex_server_state_t;

void mcplex_admin_set_server_state(mcplex_server_state_t state);
mcplex_server_state_t mcplex_admin_server_state(void);
/* "LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING". */
const char *mcplex_admin_server_state_name(mcplex_server_state_t state);
/* 1 after POST /healthcheck/fail until POST /healthcheck/ok. */
int mcplex_admin_healthcheck_failed(void);

#endif
