/*
 * access_log.c - access-log formatting and file sinks (see access_log.h). Thread: any; the
 * logger registry is guarded by a mutex, writes are one write(2) per line.
 */
#include "admin/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "admin/server_stats.h"
#include "common/log.h"
#include "common/mem.h"

#define DEFAULT_FORMAT \
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% " \
    "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% \"%REQ(USER-AGENT)%\" \"%REQ(:AUTHORITY)%\" " \
    "\"%MCP_SESSION_ID%\" \"%MCP_METHOD%\" \"%MCP_NAME%\" \"%MCP_TARGET%\" %MCP_OUTCOME%\n"

struct mcplex_access_logger {
    mcplex_access_logger_t *next;
    char *path;
    char *format;
    char **json_keys;
    char **json_formats;
    size_t n_json;
    char *key; /* identity: path + formats */
    int fd;
};

static pthread_mutex_t loggers_lock = PTHREAD_MUTEX_INITIALIZER;
static mcplex_access_logger_t *loggers;

int64_t
mcplex_access_log_now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- formatting ----------------------------------------------------------------------------- */

/* The value of operator |op| (|oplen| bytes, without the '%'s) into |buf|; NULL = no value. */
static const char *
op_value(const char *op, size_t oplen, const mcplex_access_log_entry_t *e, char *buf, size_t buflen)
{
#define IS(name) (oplen == sizeof(name) - 1 && memcmp(op, name, oplen) == 0)
    if (IS("START_TIME")) {
        time_t t = (time_t)(e->start_ms / 1000);
        struct tm tm;
        size_t n;
        gmtime_r(&t, &tm);
        n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, buflen - n, ".%03dZ", (int)(e->start_ms % 1000));
        return buf;
    }
    if (oplen > 5 && memcmp(op, "REQ(", 4) == 0 && op[oplen - 1] == ')') {
        char name[128];
        size_t nlen = oplen - 5;
        const char *q;
        if (e->req == NULL || nlen >= sizeof(name))
            return NULL;
        memcpy(name, op + 4, nlen);
        name[nlen] = '\0';
        /* REQ(A?B): A, else B */
        if ((q = strchr(name, '?')) != NULL)
            name[q - name] = '\0';
        for (char *c = name; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        if (strcmp(name, ":method") == 0)
            return e->req->method;
        if (strcmp(name, ":path") == 0) {
            if (e->req->query == NULL)
                return e->req->path;
            snprintf(buf, buflen, "%s?%s", e->req->path, e->req->query);
            return buf;
        }
        if (strcmp(name, ":authority") == 0)
            return e->req->authority;
        return mcplex_http_request_header(e->req, name);
    }
    if (IS("PROTOCOL")) {
        if (e->req == NULL)
            return NULL;
        if (e->req->http_major == 2)
            return "HTTP/2";
        snprintf(buf, buflen, "HTTP/%d.%d", e->req->http_major, e->req->http_minor);
        return buf;
    }
    if (IS("RESPONSE_CODE")) {
        snprintf(buf, buflen, "%d", e->status);
        return buf;
    }
    if (IS("RESPONSE_FLAGS"))
        return NULL;
    if (IS("BYTES_RECEIVED")) {
        snprintf(buf, buflen, "%llu", (unsigned long long)e->bytes_received);
        return buf;
    }
    if (IS("BYTES_SENT")) {
        snprintf(buf, buflen, "%llu", (unsigned long long)e->bytes_sent);
        return buf;
    }
    if (IS("DURATION")) {
        snprintf(buf, buflen, "%lld", (long long)(e->duration_ms + 0.5));
        return buf;
    }
    if (IS("DOWNSTREAM_REMOTE_ADDRESS"))
        return e->peer;
    if (IS("ROUTE_NAME"))
        return e->route_name;
    if (IS("UPSTREAM_CLUSTER") || IS("MCP_BACKEND"))
        return e->cluster;
    if (IS("MCP_SESSION_ID"))
        return e->session_id;
    if (IS("MCP_METHOD"))
        return e->mcp_method;
    if (IS("MCP_NAME"))
        return e->mcp_name;
    if (IS("MCP_TARGET"))
        return e->mcp_target;
    if (IS("JSONRPC_ID"))
        return e->jsonrpc_id;
    if (IS("JSONRPC_CODE")) {
        if (!e->jsonrpc)
            return NULL;
        snprintf(buf, buflen, "%d", e->jsonrpc_code);
        return buf;
    }
    if (IS("MCP_OUTCOME"))
        return !e->jsonrpc ? NULL : e->jsonrpc_code == 0 ? "ok" : "error";
    return NULL;
#undef IS
}

/* Writes |v| JSON-escaped (without quotes). */
static void
json_escape(FILE *f, const char *v)
{
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/* Expands |format| into |f|; |json| writes each operator value escaped for a JSON string. */
static void
expand(FILE *f, const char *format, const mcplex_access_log_entry_t *e, int json)
{
    const char *p = format;

    while (*p != '\0') {
        const char *end;
        if (*p == '%' && (end = strchr(p + 1, '%')) != NULL && end > p + 1) {
            char buf[512];
            const char *v = op_value(p + 1, (size_t)(end - p - 1), e, buf, sizeof(buf));
            if (v == NULL || *v == '\0')
                v = "-";
            if (json)
                json_escape(f, v);
            else
                for (; *v; v++)
                    fputc(*v == '\n' || *v == '\r' ? ' ' : *v, f);
            p = end + 1;
        } else {
            if (json && (*p == '"' || *p == '\\'))
                fputc('\\', f);
            fputc(*p++, f);
        }
    }
}

/* A json_format value that is exactly one operator gets its natural JSON type (null, number). */
static void
json_value(FILE *f, const char *format, const mcplex_access_log_entry_t *e)
{
    size_t len = strlen(format);
    char buf[512];

    if (len > 2 && format[0] == '%' && format[len - 1] == '%' &&
        strchr(format + 1, '%') == format + len - 1) {
        const char *v = op_value(format + 1, len - 2, e, buf, sizeof(buf));
        const char *op = format + 1;
        if (v == NULL || *v == '\0') {
            fputs("null", f);
            return;
        }
        if (strncmp(op, "RESPONSE_CODE", 13) == 0 || strncmp(op, "BYTES_", 6) == 0 ||
            strncmp(op, "DURATION", 8) == 0 || strncmp(op, "JSONRPC_CODE", 12) == 0) {
            fputs(v, f);
            return;
        }
    }
    fputc('"', f);
    expand(f, format, e, 1);
    fputc('"', f);
}

char *
mcplex_access_log_format(const char *format, char *const *json_keys, char *const *json_formats, size_t n_json,
                         const mcplex_access_log_entry_t *e)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        abort();
    if (n_json > 0) {
        fputc('{', f);
        for (size_t i = 0; i < n_json; i++) {
            fprintf(f, "%s\"", i ? "," : "");
            json_escape(f, json_keys[i]);
            fputs("\":", f);
            json_value(f, json_formats[i], e);
        }
        fputs("}\n", f);
    } else {
        expand(f, format != NULL ? format : DEFAULT_FORMAT, e, 0);
    }
    fclose(f);
    if (len == 0 || buf[len - 1] != '\n') {
        buf = mcplex_realloc(buf, len + 2);
        buf[len] = '\n';
        buf[len + 1] = '\0';
    }
    return buf;
}

/* ---- loggers -------------------------------------------------------------------------------- */

static char *
logger_key(const mcplex_access_log_cfg_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        abort();
    fprintf(f, "%s\n%s\n", cfg->path != NULL ? cfg->path : "", cfg->format != NULL ? cfg->format : "");
    for (size_t i = 0; i < cfg->n_json; i++)
        fprintf(f, "%s\t%s\n", cfg->json_keys[i], cfg->json_formats[i]);
    fclose(f);
    return buf;
}

mcplex_access_logger_t *
mcplex_access_logger_get(const mcplex_access_log_cfg_t *cfg)
{
    char *key = logger_key(cfg);
    mcplex_access_logger_t *lg;
    int fd = -1;

    pthread_mutex_lock(&loggers_lock);
    for (lg = loggers; lg != NULL; lg = lg->next)
        if (strcmp(lg->key, key) == 0)
            goto done;
    /* Share the descriptor of another logger of the same path. */
    for (mcplex_access_logger_t *o = loggers; o != NULL; o = o->next)
        if (strcmp(o->path, cfg->path) == 0)
            fd = o->fd;
    if (fd < 0) {
        if (strcmp(cfg->path, "/dev/stdout") == 0)
            fd = STDOUT_FILENO;
        else if (strcmp(cfg->path, "/dev/stderr") == 0)
            fd = STDERR_FILENO;
        else
            fd = open(cfg->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) {
        mcplex_log_error("access_log", "cannot open access log '%s': %s", cfg->path, strerror(errno));
        lg = NULL;
        goto done;
    }
    lg = mcplex_calloc(1, sizeof(*lg));
    lg->path = mcplex_strdup(cfg->path);
    lg->format = cfg->format != NULL ? mcplex_strdup(cfg->format) : NULL;
    lg->n_json = cfg->n_json;
    if (cfg->n_json > 0) {
        lg->json_keys = mcplex_calloc(cfg->n_json, sizeof(char *));
        lg->json_formats = mcplex_calloc(cfg->n_json, sizeof(char *));
        for (size_t i = 0; i < cfg->n_json; i++) {
            lg->json_keys[i] = mcplex_strdup(cfg->json_keys[i]);
            lg->json_formats[i] = mcplex_strdup(cfg->json_formats[i]);
        }
    }
    lg->key = key;
    key = NULL;
    lg->fd = fd;
    lg->next = loggers;
    loggers = lg;
done:
    pthread_mutex_unlock(&loggers_lock);
    free(key);
    return lg;
}

void
mcplex_access_logger_write(mcplex_access_logger_t *lg, const mcplex_access_log_entry_t *e)
{
    char *line;
    size_t len;
    ssize_t w;

    if (lg == NULL)
        return;
    line = mcplex_access_log_format(lg->format, lg->json_keys, lg->json_formats, lg->n_json, e);
    len = strlen(line);
    w = write(lg->fd, line, len);
    (void)w;
    free(line);
}

void
mcplex_access_log_exchange(mcplex_http_stream_t *stream, const mcplex_access_log_entry_t *e)
{
    mcplex_access_log_entry_t copy = *e;
    size_t n = 0;
    mcplex_access_logger_t *const *lgs =
        stream != NULL ? mcplex_server_stats_stream_loggers(stream, &n) : NULL;

    copy.jsonrpc = 1;
    if (copy.start_ms == 0)
        copy.start_ms = mcplex_access_log_now_ms();
    if (lgs != NULL) {
        for (size_t i = 0; i < n; i++)
            mcplex_access_logger_write(lgs[i], &copy);
        stream->exchange_logged = 1; /* its JSON-RPC line says all the HTTP line would */
        return;
    }
    if (stream != NULL)
        return; /* the HCM of this request has no access log */
    pthread_mutex_lock(&loggers_lock);
    for (mcplex_access_logger_t *lg = loggers; lg != NULL; lg = lg->next)
        mcplex_access_logger_write(lg, &copy);
    pthread_mutex_unlock(&loggers_lock);
}
