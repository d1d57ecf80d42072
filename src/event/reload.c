/*
 * reload.c - hot reload of the config file (see reload.h): an inotify watch on the file's
 * directory, a 100 ms debounce timer, load + validate + apply, and the process-wide counters.
 * Thread: main (the event_base given to mcplex_reload_create); counters are atomics.
 */
#include "event/reload.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

#define RELOAD_DEBOUNCE_MS 100
#define RELOAD_MAX_BYTES (64u << 20) /* a config file larger than this is refused */
#define RELOAD_LOG "config"

struct mcplex_reload {
    struct event_base *base;
    char *file;          /* as given on the command line */
    char *dir;           /* its directory (watched) */
    char *name;          /* its base name (matched against events) */
    mcplex_config_format_t hint;
    mcplex_reload_apply_fn apply;
    void *arg;
    int inotify_fd;      /* -1 when watching is unavailable */
    struct event *ev;    /* readable inotify_fd */
    struct event *debounce;
    char *last_text;     /* the bytes last loaded (start or applied reload) */
    size_t last_len;
};

static _Atomic uint64_t stat_attempts, stat_success, stat_rejected, stat_unchanged, stat_last_generation;
static _Atomic int64_t stat_last_success_s;

/* Reads |path| whole into a malloc'ed NUL-terminated buffer. Returns it, or NULL with |err| set. */
static char *
read_file(const char *path, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = mcplex_realloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > RELOAD_MAX_BYTES) {
            snprintf(err, err_len, "%s: larger than %u bytes", path, RELOAD_MAX_BYTES);
            goto fail;
        }
    } while (got > 0);
    if (ferror(f)) {
        snprintf(err, err_len, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/*
 * 1 if |s| came from a bootstrap with dynamic_resources: xDS owns that config (its listeners and
 * clusters are not in the file), so a file reload would drop them; such files are not reloaded.
 */
static int
has_dynamic_resources(const mcplex_snapshot_t *s)
{
    cJSON *boot = s->bootstrap_json != NULL ? cJSON_Parse(s->bootstrap_json) : NULL;
    int dynamic = boot != NULL && (cJSON_GetObjectItemCaseSensitive(boot, "dynamic_resources") != NULL ||
                                   cJSON_GetObjectItemCaseSensitive(boot, "dynamicResources") != NULL);

    cJSON_Delete(boot);
    return dynamic;
}

static int
reload_run(mcplex_reload_t *r, const char *why, int skip_unchanged)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *next = NULL;
    char err[512];
    size_t len = 0;
    char *text;
    int rc = -1;

    mcplex_errors_init(&errs);
    text = read_file(r->file, &len, err, sizeof(err));
    if (text == NULL) {
        /* Mid-rename or deleted: a later event (or SIGHUP) tries again; nothing changes. */
        atomic_fetch_add(&stat_attempts, 1);
        atomic_fetch_add(&stat_rejected, 1);
        mcplex_log_error(RELOAD_LOG, "config reload rejected: %s", err);
        goto done;
    }
    if (skip_unchanged && r->last_text != NULL && len == r->last_len &&
        memcmp(text, r->last_text, len) == 0) {
        atomic_fetch_add(&stat_unchanged, 1);
        mcplex_log_debug(RELOAD_LOG, "%s: saved without changes; nothing to reload", r->file);
        rc = 1;
        goto done;
    }
    atomic_fetch_add(&stat_attempts, 1);
    mcplex_log_info(RELOAD_LOG, "reloading %s (%s)", r->file, why);
    next = mcplex_config_load_text(text, len, r->file, r->hint, &errs);
    if (next != NULL && has_dynamic_resources(next))
        mcplex_errors_add(&errs, "dynamic_resources",
                          "a bootstrap with dynamic_resources is not hot-reloaded (xDS owns that config); "
                          "restart mcplex to change it");
    if (next == NULL || errs.count > 0 || r->apply(r->arg, next, &errs) != 0) {
        atomic_fetch_add(&stat_rejected, 1);
        if (errs.count == 0)
            mcplex_errors_add(&errs, r->file, "not applied");
        for (size_t i = 0; i < errs.count; i++)
            mcplex_log_error(RELOAD_LOG, "config reload rejected: %s", errs.items[i]);
        mcplex_log_error(RELOAD_LOG,
                         "config reload rejected: %s: %zu error%s; the previous config keeps serving",
                         r->file, errs.count, errs.count == 1 ? "" : "s");
        /* The rejected bytes are remembered too: saving them again is not retried, but a fix is. */
        goto remember;
    }
    atomic_fetch_add(&stat_success, 1);
    atomic_store(&stat_last_success_s, (int64_t)time(NULL));
    atomic_store(&stat_last_generation, next->generation);
    mcplex_log_info(RELOAD_LOG, "config reload applied: %s (generation %llu)", r->file,
                    (unsigned long long)next->generation);
    rc = 0;
remember:
    free(r->last_text);
    r->last_text = text;
    r->last_len = len;
    text = NULL;
done:
    if (next != NULL)
        mcplex_snapshot_unref(next);
    free(text);
    mcplex_errors_dispose(&errs);
    return rc;
}

int
mcplex_reload_now(mcplex_reload_t *r, const char *why)
{
    return reload_run(r, why, 0);
}

static void
on_debounce(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reload_run(arg, "file changed", 1);
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
    mcplex_reload_t *r = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timeval debounce = {0, RELOAD_DEBOUNCE_MS * 1000};
    int hit = 0;
    ssize_t n;

    (void)what;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len > 0 && (strcmp(ev->name, r->name) == 0 || strcmp(ev->name, "..data") == 0))
                hit = 1;
            if (ev->mask & IN_Q_OVERFLOW)
                hit = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
    if (hit)
        evtimer_add(r->debounce, &debounce); /* re-arming restarts the 100 ms */
}

mcplex_reload_t *
mcplex_reload_create(struct event_base *base, const char *file, mcplex_config_format_t hint,
                     mcplex_reload_apply_fn apply, void *arg)
{
    mcplex_reload_t *r = mcplex_calloc(1, sizeof(*r));
    char *copy, err[512];

    r->base = base;
    r->file = mcplex_strdup(file);
    copy = mcplex_strdup(file);
    r->dir = mcplex_strdup(dirname(copy));
    free(copy);
    copy = mcplex_strdup(file);
    r->name = mcplex_strdup(basename(copy));
    free(copy);
    r->hint = hint;
    r->apply = apply;
    r->arg = arg;
    r->debounce = evtimer_new(base, on_debounce, r);
    r->last_text = read_file(file, &r->last_len, err, sizeof(err));
    r->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->inotify_fd < 0) {
        mcplex_log_warn(RELOAD_LOG, "inotify: %s; %s is not watched (SIGHUP reloads it)", strerror(errno),
                        file);
        goto done;
    }
    if (inotify_add_watch(r->inotify_fd, r->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF) <
        0) {
        mcplex_log_warn(RELOAD_LOG, "inotify on %s: %s; %s is not watched (SIGHUP reloads it)", r->dir,
                        strerror(errno), file);
        close(r->inotify_fd);
        r->inotify_fd = -1;
        goto done;
    }
    r->ev = event_new(base, r->inotify_fd, EV_READ | EV_PERSIST, on_inotify, r);
    event_add(r->ev, NULL);
    mcplex_log_info(RELOAD_LOG, "watching %s for changes (hot reload; SIGHUP also reloads)", file);
done:
    return r;
}

void
mcplex_reload_destroy(mcplex_reload_t *r)
{
    if (r == NULL)
        return;
    if (r->ev != NULL)
        event_free(r->ev);
    if (r->inotify_fd >= 0)
        close(r->inotify_fd);
    if (r->debounce != NULL)
        event_free(r->debounce);
    free(r->last_text);
    free(r->file);
    free(r->dir);
    free(r->name);
    free(r);
}

void
mcplex_reload_get_stats(mcplex_reload_stats_t *out)
{
    out->attempts = atomic_load(&stat_attempts);
    out->success = atomic_load(&stat_success);
    out->rejected = atomic_load(&stat_rejected);
    out->unchanged = atomic_load(&stat_unchanged);
    out->last_success_s = atomic_load(&stat_last_success_s);
    out->last_generation = atomic_load(&stat_last_generation);
}
