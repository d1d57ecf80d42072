/*
 * test_worker_swap.c - unit tests of the live config swap (src/event/worker.c):
 * mcplex_worker_apply_snapshot opens new listeners and closes removed ones, fails atomically
 * when a new listener cannot bind, and HTTP pools follow endpoint changes: a pool is keyed by
 * cluster name + endpoint set, old snapshots keep their pool while anything holds them, and
 * mcplex_worker_collect_pools releases it afterwards. Runs on one thread with a real
 * event_base and real sockets on 127.0.0.1 (no event loop iteration needed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/errors.h"
#include "config/config.h"
#include "event/worker.h"
#include "net/listener.h"

/* A port that was free a moment ago on 127.0.0.1; with |keep| the socket stays bound and
 * listening (no SO_REUSEPORT, so mcplex cannot bind it) and its fd is returned there. */
static unsigned
free_port(int *keep)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (keep != NULL) {
        assert_int_equal(listen(fd, 1), 0);
        *keep = fd;
    } else {
        close(fd);
    }
    return ntohs(a.sin_port);
}

/* One bind on |port| routing to a backend with a streamable-HTTP target on 127.0.0.1:|web|;
 * with |port2| a second bind. */
static mcplex_snapshot_t *
load(unsigned port, unsigned port2, unsigned web)
{
    char yaml[2048];
    size_t n;
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    n = (size_t)snprintf(yaml, sizeof(yaml),
                         "binds:\n"
                         "- port: %u\n"
                         "  listeners:\n"
                         "  - routes:\n"
                         "    - backends:\n"
                         "      - name: b\n"
                         "        mcp:\n"
                         "          targets:\n"
                         "          - name: web\n"
                         "            mcp: {host: 127.0.0.1, port: %u, path: /mcp}\n",
                         port, web);
    if (port2 != 0)
        snprintf(yaml + n, sizeof(yaml) - n,
                 "- port: %u\n"
                 "  listeners:\n"
                 "  - routes:\n"
                 "    - backends:\n"
                 "      - name: b2\n"
                 "        mcp:\n"
                 "          targets:\n"
                 "          - name: web\n"
                 "            mcp: {host: 127.0.0.1, port: %u, path: /mcp}\n",
                 port2, web);
    mcplex_errors_init(&errs);
    s = mcplex_config_load_text(yaml, strlen(yaml), "swap.yaml", MCPLEX_CONFIG_FORMAT_LOCAL, &errs);
    if (s == NULL)
        fail_msg("load failed: %s", errs.count > 0 ? errs.items[0] : "?");
    mcplex_errors_dispose(&errs);
    return s;
}

static const char *
web_cluster(const mcplex_snapshot_t *s)
{
    const mcplex_cluster_t *b = mcplex_snapshot_find_cluster(s, "b");

    assert_non_null(b);
    assert_non_null(b->mcp);
    return b->mcp->targets[0].http.cluster;
}

static void
test_swap_listeners_and_pools(void **state)
{
    struct event_base *base = event_base_new();
    unsigned port = free_port(NULL), port2 = free_port(NULL);
    int blocker = -1;
    unsigned taken = free_port(&blocker);
    mcplex_snapshot_t *a = load(port, 0, 4000), *b = load(port, port2, 4001), *c = load(port, taken, 4001);
    mcplex_worker_t *w = mcplex_worker_create(base, 0, a, NULL);
    struct mcplex_http_pool *pa, *pb;
    mcplex_errors_t errs;
    char err[256];

    (void)state;
    mcplex_errors_init(&errs);
    assert_int_equal(mcplex_worker_start_listeners(w, err, sizeof(err)), 0);
    assert_int_equal(w->n_listeners, 1);
    pa = mcplex_worker_http_pool(w, a, web_cluster(a));
    assert_non_null(pa);
    assert_ptr_equal(mcplex_worker_http_pool(w, a, web_cluster(a)), pa);

    /* b: a second listener; the web target's endpoint moved (4000 -> 4001). */
    assert_int_equal(mcplex_worker_apply_snapshot(w, b, &errs), 0);
    assert_int_equal(errs.count, 0);
    assert_ptr_equal(w->snapshot, b);
    assert_int_equal(w->n_listeners, 2);
    assert_int_equal(mcplex_tcp_listener_port(w->listeners[1]->tcp), port2);
    pb = mcplex_worker_http_pool(w, b, web_cluster(b));
    assert_non_null(pb);
    assert_ptr_not_equal(pb, pa);
    /* The old snapshot is still held here (as a session would): its pool stays. */
    assert_int_equal(mcplex_worker_collect_pools(w), 0);
    assert_ptr_equal(mcplex_worker_http_pool(w, a, web_cluster(a)), pa);

    /* c: moves the second listener to a taken port: rejected, nothing changes. */
    assert_int_equal(mcplex_worker_apply_snapshot(w, c, &errs), -1);
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.items[0], "bind"));
    assert_ptr_equal(w->snapshot, b);
    assert_int_equal(w->n_listeners, 2);
    assert_non_null(w->listeners[1]->tcp);

    /* The last holder of a lets go: its pool is released; b's stays (current config). */
    mcplex_snapshot_unref(a);
    a = NULL;
    assert_int_equal(mcplex_worker_collect_pools(w), 1);
    assert_ptr_equal(mcplex_worker_http_pool(w, b, web_cluster(b)), pb);
    assert_int_equal(mcplex_worker_collect_pools(w), 0);

    mcplex_worker_destroy(w);
    mcplex_snapshot_unref(b);
    mcplex_snapshot_unref(c);
    mcplex_errors_dispose(&errs);
    close(blocker);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_listeners_and_pools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
