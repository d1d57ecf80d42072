/*
 * main.c - the mcplex process: command line, config loading (Envoy bootstrap with -c,
 * agentgateway-style file with -f, or the embedded default example), --validate, then one
 * worker serving the listeners until SIGINT/SIGTERM, after which sessions end (stdio children
 * stopped and reaped) and the process exits. Thread: main (today also the only worker).
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"        /* admin listener (issue 7) */
#include "admin/server_stats.h" /* issue 7 */
#include "common/errors.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/seal.h"
#include "config/config.h"
#include "event/children.h"
#include "event/reload.h" /* hot reload (issue 7) */
#include "admin/ui.h"     /* web UI at /ui on the admin listener (issue 7) */
#include "event/worker.h"
#include "event/workers.h"
#include "http/h2_server.h" /* HTTP/2 drain (issue 4) */
#include "xds/xds.h"

extern const char mcplex_default_config_yaml[];
extern const unsigned long mcplex_default_config_yaml_len;

/* How long shutdown waits for stdio children (stdin EOF, SIGTERM after 2 s, SIGKILL after 4 s). */
#define SHUTDOWN_GRACE_MS 5000
/* The longest the shutdown waits for HTTP/2 streams after GOAWAY (each HCM's drain_timeout
 * applies per connection first). HTTP/2 drain (issue 4). */
#define H2_DRAIN_MAX_MS 10000

typedef struct main_state {
    struct event_base *base;
    mcplex_worker_t *worker;
    mcplex_worker_group_t *group; /* worker threads (--concurrency > 1), or NULL */
    mcplex_xds_t *xds; /* xDS client (issue 5); stopped before the worker */
    struct event *sigint;
    struct event *sigterm;
    struct event *shutdown_poll;
    int shutdown_ticks;
    /* ---- hot reload (issue 7): the -c/-f file is watched; SIGHUP reloads it too ---- */
    mcplex_reload_t *reload;
    struct event *sighup;
    mcplex_admin_t *admin; /* admin listener (issue 7); lives until exit */
    /* ---- HTTP/2 drain (issue 4): GOAWAY, then the worker goes once streams are done ---- */
    int h2_draining;
    struct event *h2_drain_poll;
    int h2_drain_ticks;
} main_state_t;

/* Hot reload and SIGHUP hand validated snapshots to the worker's live swap (as xDS does). */
/* xDS (issue 5): a snapshot from the control plane, to the one worker or to every worker. */
static int
publish_xds(void *arg, mcplex_snapshot_t *next, mcplex_errors_t *errs)
{
    main_state_t *st = arg;

    if (st->group != NULL)
        return mcplex_worker_group_apply_snapshot(st->group, next, errs);
    if (st->worker != NULL)
        return mcplex_worker_apply_snapshot(st->worker, next, errs);
    mcplex_errors_add(errs, NULL, "shutting down");
    return -1;
}

static int
apply_reloaded(void *arg, mcplex_snapshot_t *next, mcplex_errors_t *errs)
{
    main_state_t *st = arg;

    if (st->worker == NULL && st->group == NULL) {
        mcplex_errors_add(errs, NULL, "shutting down");
        return -1;
    }
    /* xDS (issue 5): the live config is bootstrap + control plane; a reloaded bootstrap alone
     * would drop every dynamic resource, so (like Envoy) bootstrap changes need a restart */
    if (mcplex_xds_running(st->xds)) {
        mcplex_errors_add(errs, "dynamic_resources",
                          "the config comes from an xDS control plane; restart mcplex to change the bootstrap");
        return -1;
    }
    {
        int rc = st->group != NULL ? mcplex_worker_group_apply_snapshot(st->group, next, errs)
                                   : mcplex_worker_apply_snapshot(st->worker, next, errs);
        mcplex_server_stats_config_applied(rc == 0 ? next : NULL, rc != 0); /* stats (issue 7) */
        return rc;
    }
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
    main_state_t *st = arg;

    (void)sig;
    (void)what;
    if (st->reload == NULL || (st->worker == NULL && st->group == NULL))
        mcplex_log_warn("main", "SIGHUP: no config file to reload (started without -c/-f)");
    else
        mcplex_reload_now(st->reload, "SIGHUP");
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: mcplex [-c FILE | -f FILE] [--validate] [--log-level LEVEL] [--concurrency N]\n"
            "  -c, --config-path FILE  Envoy bootstrap (YAML or JSON)\n"
            "  -f, --file FILE         agentgateway-style config (binds/listeners/routes/backends)\n"
            "                          (the format is detected from the content either way)\n"
            "  --validate              check the config, print every error, exit 0 or 1\n"
            "  --mode validate         same as --validate (Envoy's flag)\n"
            "  -l, --log-level LEVEL   trace, debug, info, warning, error, critical, off\n"
            "  --concurrency N         worker threads (default: one per CPU; see README \"Worker threads\")\n"
            "  --version               print the version\n"
            "Without -c or -f, mcplex serves its embedded default example on 127.0.0.1:3000/mcp.\n");
}

static void
shutdown_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    main_state_t *st = arg;

    (void)fd;
    (void)what;
    st->shutdown_ticks++;
    if (mcplex_children_count() == 0 || st->shutdown_ticks * 100 >= SHUTDOWN_GRACE_MS)
        event_base_loopexit(st->base, NULL);
}

/* --- HTTP/2 drain (issue 4) --- */
static void on_signal(evutil_socket_t sig, short what, void *arg);

/* Every 100 ms while draining: GOAWAY to connections accepted meanwhile; go on when none is left. */
static void
h2_drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    main_state_t *st = arg;

    (void)fd;
    (void)what;
    st->h2_drain_ticks++;
    if (mcplex_h2_drain_all() == 0 || st->h2_drain_ticks * 100 >= H2_DRAIN_MAX_MS) {
        event_free(st->h2_drain_poll);
        st->h2_drain_poll = NULL;
        on_signal(SIGTERM, 0, st);
    }
}

/*
 * Starts the drain of the HTTP/2 connections (each closes when its streams are done, or after
 * its HCM drain_timeout). Returns 1 if the shutdown waits for them, 0 if there are none.
 */
static int
h2_drain_start(main_state_t *st)
{
    struct timeval tick = {0, 100 * 1000};

    if (st->h2_draining)
        return 0; /* second call: the drain is over (or a second signal: hurry) */
    st->h2_draining = 1;
    if (mcplex_h2_drain_all() == 0)
        return 0;
    mcplex_log_info("main", "draining %zu HTTP/2 connection(s)", mcplex_h2_conn_count());
    st->h2_drain_poll = event_new(st->base, -1, EV_PERSIST, h2_drain_poll_cb, st);
    event_add(st->h2_drain_poll, &tick);
    return 1;
}
/* --- end HTTP/2 drain --- */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state_t *st = arg;
    struct timeval tick = {0, 100 * 1000};

    (void)what;
    if (st->group != NULL) {
        /* Worker threads: each worker sends GOAWAY, closes its listeners and ends its sessions
         * on its own loop; the main loop waits for the children, then the threads are joined. */
        if (st->shutdown_poll != NULL)
            return;
        mcplex_log_info("main", "caught signal %d, shutting down %zu workers", (int)sig, st->group->n);
        mcplex_admin_set_server_state(MCPLEX_SERVER_DRAINING);
        if (st->admin != NULL)
            mcplex_admin_set_group(st->admin, NULL); /* the worker loops end soon */
        mcplex_reload_destroy(st->reload);
        st->reload = NULL;
        mcplex_worker_group_drain(st->group);
        st->shutdown_poll = event_new(st->base, -1, EV_PERSIST, shutdown_poll_cb, st);
        event_add(st->shutdown_poll, &tick);
        return;
    }
    if (st->worker == NULL)
        return;
    if (st->h2_drain_poll != NULL) { /* --- HTTP/2 drain (issue 4): a second signal hurries --- */
        event_free(st->h2_drain_poll);
        st->h2_drain_poll = NULL;
    } else if (h2_drain_start(st)) {
        mcplex_admin_set_server_state(MCPLEX_SERVER_DRAINING);
        return;
    }
    mcplex_log_info("main", "caught signal %d, shutting down", (int)sig);
    /* admin (issue 7): stays up while draining, but stops reading the worker */
    mcplex_admin_set_server_state(MCPLEX_SERVER_DRAINING);
    if (st->admin != NULL)
        mcplex_admin_set_workers(st->admin, NULL, 0);
    mcplex_xds_destroy(st->xds); /* xDS (issue 5): no more snapshots for the worker */
    st->xds = NULL;
    mcplex_reload_destroy(st->reload);
    st->reload = NULL;
    mcplex_worker_destroy(st->worker);
    st->worker = NULL;
    st->shutdown_poll = event_new(st->base, -1, EV_PERSIST, shutdown_poll_cb, st);
    event_add(st->shutdown_poll, &tick);
}

/* POST /quitquitquit (issue 7): the same graceful exit as SIGTERM. */
static void
admin_quit(void *arg)
{
    on_signal(SIGTERM, 0, arg);
}

static void
print_errors(const mcplex_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "%s\n", errs->items[i]);
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config-path", required_argument, NULL, 'c'},
        {"file", required_argument, NULL, 'f'},
        {"validate", no_argument, NULL, 'V'},
        {"mode", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"concurrency", required_argument, NULL, 'n'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    mcplex_config_format_t hint = MCPLEX_CONFIG_FORMAT_AUTO;
    int validate = 0, opt, rc = 1;
    long concurrency = 0; /* 0 = the number of online CPUs (Envoy's default) */
    mcplex_log_level_t level;
    mcplex_errors_t errs;
    mcplex_snapshot_t *snapshot = NULL;
    mcplex_seal_key_t *seal_key = NULL;
    main_state_t st;
    char err[512];

    memset(&st, 0, sizeof(st));
    mcplex_errors_init(&errs);
    while ((opt = getopt_long(argc, argv, "c:f:l:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            hint = MCPLEX_CONFIG_FORMAT_ENVOY;
            break;
        case 'f':
            file = optarg;
            hint = MCPLEX_CONFIG_FORMAT_LOCAL;
            break;
        case 'V':
            validate = 1;
            break;
        case 'm':
            if (strcmp(optarg, "validate") == 0) {
                validate = 1;
            } else if (strcmp(optarg, "serve") != 0) {
                fprintf(stderr, "mcplex: unknown --mode '%s' (serve or validate)\n", optarg);
                return 1;
            }
            break;
        case 'l':
            if (mcplex_log_parse_level(optarg, &level) != 0) {
                fprintf(stderr, "mcplex: unknown log level '%s'\n", optarg);
                return 1;
            }
            mcplex_log_set_level(level);
            break;
        case 'n':
            concurrency = atol(optarg);
            if (concurrency < 1 || concurrency > 256) {
                fprintf(stderr, "mcplex: --concurrency takes a number from 1 to 256\n");
                return 1;
            }
            break;
        case 'v':
            printf("mcplex %s\n", MCPLEX_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }

    st.xds = mcplex_xds_create(); /* xDS (issue 5): lets a bootstrap with dynamic_resources load */
    if (file != NULL)
        snapshot = mcplex_config_load_file(file, hint, &errs);
    else
        snapshot = mcplex_config_load_text(mcplex_default_config_yaml, mcplex_default_config_yaml_len,
                                           "default.yaml", MCPLEX_CONFIG_FORMAT_LOCAL, &errs);
    if (snapshot == NULL) {
        print_errors(&errs);
        fprintf(stderr, "mcplex: %s: %zu error%s; not starting\n", file != NULL ? file : "default config",
                errs.count, errs.count == 1 ? "" : "s");
        goto done;
    }
    if (validate && mcplex_xds_validate(st.xds, file, snapshot, &errs) != 0) { /* xDS (issue 5) */
        print_errors(&errs);
        fprintf(stderr, "mcplex: %s: %zu error%s in dynamic_resources\n", file, errs.count,
                errs.count == 1 ? "" : "s");
        goto done;
    }
    if (validate) {
        printf("configuration '%s' OK\n", file != NULL ? file : "default config");
        rc = 0;
        goto done;
    }

    signal(SIGPIPE, SIG_IGN);
    if (concurrency == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        concurrency = cpus < 1 ? 1 : cpus > 256 ? 256 : cpus;
    }
    /* Worker threads post to each other's loops: libevent's locking must be on first. */
    if (concurrency > 1 && evthread_use_pthreads() != 0) {
        fprintf(stderr, "mcplex: libevent has no thread support\n");
        goto done;
    }
    st.base = event_base_new();
    if (st.base == NULL || mcplex_children_init(st.base) != 0) {
        fprintf(stderr, "mcplex: cannot create the event loop\n");
        goto done;
    }
    seal_key = mcplex_seal_key_create_random();
    if (concurrency > 1) {
        /* Worker threads (issue 6): the main loop keeps signals, children, reload and admin. */
        st.group = mcplex_worker_group_create((size_t)concurrency, snapshot, seal_key, err, sizeof(err));
        if (st.group == NULL || mcplex_worker_group_start(st.group) != 0) {
            fprintf(stderr, "mcplex: %s\n", st.group != NULL ? "cannot start the worker threads" : err);
            goto done;
        }
    } else {
        st.worker = mcplex_worker_create(st.base, 0, snapshot, seal_key);
        if (st.worker == NULL || mcplex_worker_start_listeners(st.worker, err, sizeof(err)) != 0) {
            fprintf(stderr, "mcplex: %s\n", st.worker != NULL ? err : "cannot create the worker");
            goto done;
        }
    }
    /* xDS (issue 5): ADS when the bootstrap has dynamic_resources; static listeners already serve */
    if (mcplex_xds_start(st.xds, st.base, publish_xds, &st, file, snapshot, &errs) != 0) {
        print_errors(&errs);
        fprintf(stderr, "mcplex: %s: dynamic_resources: not starting\n", file);
        goto done;
    }
    st.sigint = evsignal_new(st.base, SIGINT, on_signal, &st);
    st.sigterm = evsignal_new(st.base, SIGTERM, on_signal, &st);
    event_add(st.sigint, NULL);
    event_add(st.sigterm, NULL);
    if (file != NULL)
        st.reload = mcplex_reload_create(st.base, file, hint, apply_reloaded, &st);
    st.sighup = evsignal_new(st.base, SIGHUP, on_sighup, &st);
    event_add(st.sighup, NULL);
    /* ---- admin listener (issue 7): bootstrap admin.address / config.adminAddr ---- */
    mcplex_server_stats_config_applied(snapshot, 0);
    mcplex_ui_register(); /* issue 7: /ui */
    if (snapshot->admin_address != NULL) {
        mcplex_admin_hooks_t hooks = {admin_quit, &st, argc, argv};
        st.admin = mcplex_admin_create(st.base, snapshot->admin_address, snapshot->admin_port,
                                       st.worker != NULL ? &st.worker : NULL, st.worker != NULL ? 1 : 0, &hooks,
                                       err, sizeof(err));
        if (st.admin == NULL)
            mcplex_log_error("admin", "admin listener not started: %s", err);
        else if (st.group != NULL)
            mcplex_admin_set_group(st.admin, st.group); /* worker threads (issue 6) */
    }
    mcplex_log_info("main", "mcplex %s started (config generation %llu)", MCPLEX_VERSION,
                    (unsigned long long)snapshot->generation);
    event_base_dispatch(st.base);
    rc = 0;
done:
    mcplex_admin_destroy(st.admin); /* issue 7 */
    mcplex_xds_destroy(st.xds); /* xDS (issue 5) */
    if (st.worker != NULL)
        mcplex_worker_destroy(st.worker);
    if (st.group != NULL)
        mcplex_worker_group_destroy(st.group);
    if (st.sigint != NULL)
        event_free(st.sigint);
    if (st.sigterm != NULL)
        event_free(st.sigterm);
    if (st.shutdown_poll != NULL)
        event_free(st.shutdown_poll);
    if (st.h2_drain_poll != NULL) /* HTTP/2 drain (issue 4) */
        event_free(st.h2_drain_poll);
    mcplex_reload_destroy(st.reload);
    if (st.sighup != NULL)
        event_free(st.sighup);
    if (st.base != NULL) {
        mcplex_children_shutdown();
        event_base_free(st.base);
    }
    if (seal_key != NULL)
        mcplex_seal_key_destroy(seal_key);
    if (snapshot != NULL)
        mcplex_snapshot_unref(snapshot);
    mcplex_errors_dispose(&errs);
    return rc;
}
