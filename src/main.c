/*
 * main.c - the mcplex process: command line, config loading (Envoy bootstrap with -c,
 * agentgateway-style file with -f, or the embedded default example), --validate, then one
 * worker serving the listeners until SIGINT/SIGTERM, after which sessions end (stdio children
 * stopped and reaped) and the process exits. Thread: main (today also the only worker).
 */
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/seal.h"
#include "config/config.h"
#include "event/children.h"
#include "event/worker.h"

extern const char mcplex_default_config_yaml[];
extern const unsigned long mcplex_default_config_yaml_len;

/* How long shutdown waits for stdio children (stdin EOF, SIGTERM after 2 s, SIGKILL after 4 s). */
#define SHUTDOWN_GRACE_MS 5000

typedef struct main_state {
    struct event_base *base;
    mcplex_worker_t *worker;
    struct event *sigint;
    struct event *sigterm;
    struct event *shutdown_poll;
    int shutdown_ticks;
} main_state_t;

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
            "  --concurrency N         worker threads (only 1 today)\n"
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

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state_t *st = arg;
    struct timeval tick = {0, 100 * 1000};

    (void)what;
    if (st->worker == NULL)
        return;
    mcplex_log_info("main", "caught signal %d, shutting down", (int)sig);
    mcplex_worker_destroy(st->worker);
    st->worker = NULL;
    st->shutdown_poll = event_new(st->base, -1, EV_PERSIST, shutdown_poll_cb, st);
    event_add(st->shutdown_poll, &tick);
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
            if (atoi(optarg) != 1)
                mcplex_log_warn("main", "--concurrency %s: mcplex runs one worker today", optarg);
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
    if (validate) {
        printf("configuration '%s' OK\n", file != NULL ? file : "default config");
        rc = 0;
        goto done;
    }

    signal(SIGPIPE, SIG_IGN);
    st.base = event_base_new();
    if (st.base == NULL || mcplex_children_init(st.base) != 0) {
        fprintf(stderr, "mcplex: cannot create the event loop\n");
        goto done;
    }
    seal_key = mcplex_seal_key_create_random();
    st.worker = mcplex_worker_create(st.base, 0, snapshot, seal_key);
    if (st.worker == NULL || mcplex_worker_start_listeners(st.worker, err, sizeof(err)) != 0) {
        fprintf(stderr, "mcplex: %s\n", st.worker != NULL ? err : "cannot create the worker");
        goto done;
    }
    st.sigint = evsignal_new(st.base, SIGINT, on_signal, &st);
    st.sigterm = evsignal_new(st.base, SIGTERM, on_signal, &st);
    event_add(st.sigint, NULL);
    event_add(st.sigterm, NULL);
    mcplex_log_info("main", "mcplex %s started (config generation %llu)", MCPLEX_VERSION,
                    (unsigned long long)snapshot->generation);
    event_base_dispatch(st.base);
    rc = 0;
done:
    if (st.worker != NULL)
        mcplex_worker_destroy(st.worker);
    if (st.sigint != NULL)
        event_free(st.sigint);
    if (st.sigterm != NULL)
        event_free(st.sigterm);
    if (st.shutdown_poll != NULL)
        event_free(st.shutdown_poll);
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
