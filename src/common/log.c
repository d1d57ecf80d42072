/*
 * log.c - the error log (see log.h). Thread: any.
 */
#include "common/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = MCPLEX_LOG_INFO;

static const char *const level_names[] = {"trace", "debug", "info", "warning", "error", "critical", "off"};

/* ---- per-component overrides (issue 7): a small table under a mutex, written by /logging;
 * |log_floor| keeps the fast path (MCPLEX_LOG_ENABLED) one atomic load. ---- */
#define LOG_MAX_OVERRIDES 64
static pthread_mutex_t overrides_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { char name[48]; int level; } overrides[LOG_MAX_OVERRIDES];
static size_t n_overrides;
static _Atomic int log_floor = MCPLEX_LOG_INFO;
static _Atomic int have_overrides;
static const char *const known_components[] = {"main", "config", "mcp", "http", "router", "upstream",
                                               "net", "children", "target", "xds", "admin", "access_log",
                                               NULL};

/* Recomputes |log_floor|; overrides_lock held. */
static void
recompute_floor(void)
{
    int floor = atomic_load(&log_level);
    for (size_t i = 0; i < n_overrides; i++)
        if (overrides[i].level < floor)
            floor = overrides[i].level;
    atomic_store(&log_floor, floor);
    atomic_store(&have_overrides, n_overrides > 0);
}

void
mcplex_log_set_level(mcplex_log_level_t level)
{
    pthread_mutex_lock(&overrides_lock);
    atomic_store(&log_level, (int)level);
    n_overrides = 0;
    recompute_floor();
    pthread_mutex_unlock(&overrides_lock);
}

int
mcplex_log_set_component_level(const char *component, mcplex_log_level_t level)
{
    int rc = -1;
    size_t i;

    pthread_mutex_lock(&overrides_lock);
    for (i = 0; i < n_overrides; i++)
        if (strcmp(overrides[i].name, component) == 0)
            break;
    if (i < LOG_MAX_OVERRIDES) {
        snprintf(overrides[i].name, sizeof(overrides[i].name), "%.47s", component);
        overrides[i].level = (int)level;
        if (i == n_overrides)
            n_overrides++;
        recompute_floor();
        rc = 0;
    }
    pthread_mutex_unlock(&overrides_lock);
    return rc;
}

/* The override for |component| ("target:time" matches "target"), or -1; lock held. */
static int
override_of(const char *component)
{
    int best = -1;
    size_t best_len = 0;

    for (size_t i = 0; component != NULL && i < n_overrides; i++) {
        size_t n = strlen(overrides[i].name);
        if (strncmp(component, overrides[i].name, n) == 0 && (component[n] == '\0' || component[n] == ':') &&
            n >= best_len) {
            best = overrides[i].level;
            best_len = n;
        }
    }
    return best;
}

mcplex_log_level_t
mcplex_log_component_level(const char *component)
{
    int level;

    if (!atomic_load(&have_overrides))
        return (mcplex_log_level_t)atomic_load(&log_level);
    pthread_mutex_lock(&overrides_lock);
    level = override_of(component);
    if (level < 0)
        level = atomic_load(&log_level);
    pthread_mutex_unlock(&overrides_lock);
    return (mcplex_log_level_t)level;
}

mcplex_log_level_t
mcplex_log_floor(void)
{
    return (mcplex_log_level_t)atomic_load(&log_floor);
}

void
mcplex_log_foreach_component(mcplex_log_component_fn fn, void *arg)
{
    char names[LOG_MAX_OVERRIDES + 16][48];
    size_t n = 0;

    for (size_t i = 0; known_components[i] != NULL; i++)
        snprintf(names[n++], sizeof(names[0]), "%s", known_components[i]);
    pthread_mutex_lock(&overrides_lock);
    for (size_t i = 0; i < n_overrides; i++) {
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(names[k], overrides[i].name) == 0)
                break;
        if (k == n)
            snprintf(names[n++], sizeof(names[0]), "%.47s", overrides[i].name);
    }
    pthread_mutex_unlock(&overrides_lock);
    for (size_t i = 0; i < n; i++)
        fn(arg, names[i], mcplex_log_component_level(names[i]));
}

mcplex_log_level_t
mcplex_log_get_level(void)
{
    return (mcplex_log_level_t)atomic_load(&log_level);
}

int
mcplex_log_parse_level(const char *name, mcplex_log_level_t *out)
{
    static const struct { const char *name; mcplex_log_level_t level; } names[] = {
        {"trace", MCPLEX_LOG_TRACE}, {"debug", MCPLEX_LOG_DEBUG}, {"info", MCPLEX_LOG_INFO},
        {"warn", MCPLEX_LOG_WARN},   {"warning", MCPLEX_LOG_WARN}, {"error", MCPLEX_LOG_ERROR},
        {"critical", MCPLEX_LOG_CRITICAL}, {"off", MCPLEX_LOG_OFF},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name != NULL && strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *
mcplex_log_level_name(mcplex_log_level_t level)
{
    if ((int)level < 0 || (int)level > MCPLEX_LOG_OFF)
        return "unknown";
    return level_names[level];
}

void
mcplex_logv(mcplex_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    if (!MCPLEX_LOG_ENABLED(level) || (int)level < (int)mcplex_log_component_level(component))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03dZ [%s] [%s] ", (int)(tv.tv_usec / 1000),
                 mcplex_log_level_name(level), component != NULL ? component : "-");
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line so concurrent lines do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void
mcplex_log(mcplex_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mcplex_logv(level, component, fmt, ap);
    va_end(ap);
}
