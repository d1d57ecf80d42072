/*
 * log.c - the error log (see log.h). Thread: any.
 */
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = MCPLEX_LOG_INFO;

static const char *const level_names[] = {"trace", "debug", "info", "warning", "error", "critical", "off"};

void
mcplex_log_set_level(mcplex_log_level_t level)
{
    atomic_store(&log_level, (int)level);
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

    if (!MCPLEX_LOG_ENABLED(level))
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
