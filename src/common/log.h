/*
 * log.h - the error log: leveled, per-component lines on stderr.
 *
 * Owns the process-wide log level. Any thread may log; each call writes one whole line with a
 * single write(2), so lines from different threads never interleave. The level can change at
 * run time (admin /logging, issue 7) from any thread.
 */
#ifndef MCPLEX_COMMON_LOG_H
#define MCPLEX_COMMON_LOG_H

#include <stdarg.h>

/* Levels, lowest to highest (names as Envoy's --log-level). */
typedef enum mcplex_log_level {
    MCPLEX_LOG_TRACE = 0,
    MCPLEX_LOG_DEBUG,
    MCPLEX_LOG_INFO,
    MCPLEX_LOG_WARN,
    MCPLEX_LOG_ERROR,
    MCPLEX_LOG_CRITICAL,
    MCPLEX_LOG_OFF,
    /* MCPLEX_LOG_COUNT */
} mcplex_log_level_t;

/* Sets the minimum level that is written. Thread: any. */
void mcplex_log_set_level(mcplex_log_level_t level);
/* Returns the current minimum level. Thread: any. */
mcplex_log_level_t mcplex_log_get_level(void);
/* Parses "trace|debug|info|warn|warning|error|critical|off"; returns 0 and sets *out, or -1. */
int mcplex_log_parse_level(const char *name, mcplex_log_level_t *out);
/* Returns the lower-case name of |level| (static storage). */
const char *mcplex_log_level_name(mcplex_log_level_t level);

/*
 * Writes "<iso time> [<level>] [<component>] <message>\n" to stderr if |level| is enabled.
 * |component| is a short static string such as "mcp", "config", "target:time".
 * Thread: any.
 */
void mcplex_log(mcplex_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mcplex_logv(mcplex_log_level_t level, const char *component, const char *fmt, va_list ap);

/* ---- per-component levels (admin /logging?<component>=<level>, issue 7) ---- */
/*
 * Sets the level of |component| alone (a name as passed to mcplex_log, e.g. "mcp"; components
 * whose name starts with "<component>:" follow it too, so "target" covers "target:time").
 * Overrides the process-wide level for that component until mcplex_log_set_level() resets every
 * override. Returns 0, or -1 when the table of overrides (64) is full. Thread: any.
 */
int mcplex_log_set_component_level(const char *component, mcplex_log_level_t level);
/* The level that applies to |component| (its override, else the process-wide level). */
mcplex_log_level_t mcplex_log_component_level(const char *component);
/* The lowest level any component may log at (the fast-path check of the macros below). */
mcplex_log_level_t mcplex_log_floor(void);
/* Calls |fn| for each known component (mcplex's own and every override) with its level. */
typedef void (*mcplex_log_component_fn)(void *arg, const char *component, mcplex_log_level_t level);
void mcplex_log_foreach_component(mcplex_log_component_fn fn, void *arg);

#define MCPLEX_LOG_ENABLED(lvl) ((lvl) >= mcplex_log_floor())

#define mcplex_log_trace(comp, ...) \
    do { if (MCPLEX_LOG_ENABLED(MCPLEX_LOG_TRACE)) mcplex_log(MCPLEX_LOG_TRACE, comp, __VA_ARGS__); } while (0)
#define mcplex_log_debug(comp, ...) \
    do { if (MCPLEX_LOG_ENABLED(MCPLEX_LOG_DEBUG)) mcplex_log(MCPLEX_LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define mcplex_log_info(comp, ...) mcplex_log(MCPLEX_LOG_INFO, comp, __VA_ARGS__)
#define mcplex_log_warn(comp, ...) mcplex_log(MCPLEX_LOG_WARN, comp, __VA_ARGS__)
#define mcplex_log_error(comp, ...) mcplex_log(MCPLEX_LOG_ERROR, comp, __VA_ARGS__)

#endif
