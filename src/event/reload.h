/*
 * reload.h - hot reload of the config file given with -c/-f: the file is watched with inotify
 * (its DIRECTORY is watched and events are matched by file name, so editors that write a temp
 * file and rename it over the original, and Kubernetes ConfigMap "..data" symlink swaps, are
 * seen), changes are debounced (100 ms), the file is loaded and validated in full
 * (mcplex_config_load_text with main's format hint) and handed to an apply function (in mcplex:
 * mcplex_worker_apply_snapshot, the same path xDS updates take). A file that does not validate
 * is rejected with every error logged as "config reload rejected: ..." and the config in force
 * keeps serving. A bootstrap with dynamic_resources is never reloaded from the file (xDS owns its
 * listeners and clusters, which the file does not hold): such an edit is rejected the same way.
 * SIGHUP calls mcplex_reload_now. Counters are process-wide (for the admin
 * listener's stats).
 *
 * Owns the inotify descriptor, its event and the debounce timer. Thread: main (the thread of the
 * event_base given; today also the only worker). The counters may be read from any thread.
 */
#ifndef MCPLEX_EVENT_RELOAD_H
#define MCPLEX_EVENT_RELOAD_H

#include <stdint.h>
#include <time.h>

#include "common/errors.h"
#include "config/config.h"

struct event_base;

typedef struct mcplex_reload mcplex_reload_t;

/*
 * Applies a validated snapshot. |next| is borrowed (the reloader drops its own reference after
 * the call; the apply function takes its own if it keeps it). Returns 0, or -1 with every reason
 * added to |errs| (then the old config must still be in force).
 */
typedef int (*mcplex_reload_apply_fn)(void *arg, mcplex_snapshot_t *next, mcplex_errors_t *errs);

/*
 * Starts watching |file| (copied) on |base|. |hint| is the format main loaded it with
 * (MCPLEX_CONFIG_FORMAT_ENVOY for -c, LOCAL for -f); |apply| and |arg| receive each good
 * snapshot. The file's bytes are read once at start, so a save that changes nothing is not
 * re-applied. Never returns NULL: if inotify cannot be set up, a warning is logged and only
 * mcplex_reload_now (SIGHUP) reloads. Free with mcplex_reload_destroy. Thread: main.
 */
mcplex_reload_t *mcplex_reload_create(struct event_base *base, const char *file, mcplex_config_format_t hint,
                                      mcplex_reload_apply_fn apply, void *arg);

/* Stops watching and frees |r| (NULL is a no-op). Thread: main. */
void mcplex_reload_destroy(mcplex_reload_t *r);

/*
 * Loads, validates and applies the file now (|why| is logged, e.g. "SIGHUP"); also used for
 * watched changes. Unlike a watched change, this applies even when the bytes did not change.
 * Returns 0 when applied, 1 when a watched change was skipped because the file is unchanged,
 * -1 when rejected (errors logged, old config kept). Thread: main.
 */
int mcplex_reload_now(mcplex_reload_t *r, const char *why);

/* Process-wide reload counters (Envoy-style names in the admin stats: config_reload.*). */
typedef struct mcplex_reload_stats {
    uint64_t attempts;       /* config_reload.attempt */
    uint64_t success;        /* config_reload.success: applied */
    uint64_t rejected;       /* config_reload.rejected: did not load/validate or apply */
    uint64_t unchanged;      /* config_reload.unchanged: watched saves with identical bytes */
    int64_t last_success_s;  /* unix time of the last applied reload, 0 if none */
    uint64_t last_generation; /* generation of the last applied snapshot, 0 if none */
} mcplex_reload_stats_t;

/* Copies the counters into |out|. Thread: any. */
void mcplex_reload_get_stats(mcplex_reload_stats_t *out);

#endif
