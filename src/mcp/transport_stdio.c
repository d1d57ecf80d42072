/*
 * transport_stdio.c - the stdio target transport (see transport.h): one child process per
 * transport, newline-delimited JSON-RPC on its stdin/stdout, its stderr logged line by line.
 *
 * Owns the child (spawned with posix_spawnp, never fork: gRPC runs threads in this process), the
 * three pipes and their events, and the shutdown sequence. The child runs in its own process
 * group (pgid = pid) so that signals reach the whole tree (npx -> node). Child exits are
 * reported by children.c (SIGCHLD on the main loop).
 *
 * Lifetime: live -> (child exit and/or stdout EOF; both, or 1 s after the first) -> dead, on_closed
 * called once -> close() by the owner -> memory released once the child is reaped. close() on a
 * live transport closes stdin, sends SIGTERM to the process group after 2 s and SIGKILL after 2 s
 * more; no owner callback runs after close(). When close() is called from inside one of this
 * transport's callbacks the memory is released from a zero-timeout event, never on that stack.
 *
 * Thread: the main loop (child supervision runs there; today it is also the only worker).
 */
#include "mcp/transport.h"

#include "common/log.h"
#include "common/mem.h"
#include "config/model.h"
#include "event/children.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

extern char **environ;

#define STDOUT_LINE_CAP (16u * 1024 * 1024) /* one JSON-RPC message */
#define STDERR_LINE_CAP (8u * 1024)         /* longer stderr lines are logged truncated */
#define STDIN_PENDING_CAP (64u * 1024 * 1024)
#define READ_CHUNK (64 * 1024)
#define READS_PER_EVENT 16                  /* at most 1 MiB per wake-up, then yield to the loop */
#define STDERR_LINES_PER_SEC 100
#define EXIT_EOF_GRACE_MS 1000              /* wait for the other of child exit / stdout EOF */
#define TERM_AFTER_MS 2000                  /* close(): stdin closed -> SIGTERM */
#define KILL_AFTER_MS 2000                  /* close(): SIGTERM -> SIGKILL */

/* ---- types ---------------------------------------------------------------------------------- */

/* One pipe from the child, read into |buf| and split on '\n'. */
typedef struct line_reader {
    int fd; /* -1 once closed */
    struct event *ev;
    struct evbuffer *buf;
    size_t scanned;  /* leading bytes of |buf| known to hold no '\n' */
    size_t cap;      /* longest line accepted */
    int discarding;  /* dropping the rest of an over-long line */
    int eof;
} line_reader_t;

typedef enum close_stage {
    STAGE_NONE = 0,
    STAGE_WAIT_TERM, /* close() called; SIGTERM when the timer fires */
    STAGE_WAIT_KILL, /* SIGTERM sent; SIGKILL when the timer fires */
    STAGE_KILLED,    /* SIGKILL sent; waiting for the reap */
} close_stage_t;

typedef struct stdio_transport {
    mcplex_transport_t super;
    struct event_base *base;
    char *component; /* "target:<name>" for log lines */
    pid_t pid;       /* also the process group id */

    int in_fd;       /* -1 once closed */
    struct event *in_ev;
    struct evbuffer *in_buf;
    line_reader_t out;
    line_reader_t err;
    struct event *timer; /* exit/EOF grace while live; TERM/KILL steps after close() */

    int exited;      /* reaped by children.c; |status| valid */
    int status;
    int dead;        /* on_closed delivered */
    int closing;     /* close() called */
    close_stage_t stage;
    int in_cb;       /* owner callbacks on the stack */
    int releasing;   /* memory release scheduled or running */

    /* stderr rate limit: a window of one second */
    int64_t err_window_ms;
    unsigned err_lines;
    unsigned err_suppressed;
} stdio_transport_t;

static const mcplex_transport_ops_t stdio_ops;

/* ---- small helpers --------------------------------------------------------------------------- */

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
arm_timer(stdio_transport_t *t, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(t->timer, &tv);
}

static void
free_strv(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* A pipe whose ends are CLOEXEC and above 2, so dup2 onto 0..2 in the child always clears
 * CLOEXEC (dup2 of an fd onto itself would not). */
static int
make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            if (fd == -1) {
                int saved = errno;
                close(p[0]);
                close(p[1]);
                p[0] = p[1] = -1;
                errno = saved;
                return -1;
            }
            close(p[i]);
            p[i] = fd;
        }
    }
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd != -1) {
        close(*fd);
        *fd = -1;
    }
}

static void
set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- environment and command ----------------------------------------------------------------- */

static int
env_name_eq(const char *entry, const char *name)
{
    size_t n = strlen(name);

    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static int
cfg_sets(const mcplex_stdio_target_t *cfg, const char *entry)
{
    for (size_t i = 0; i < cfg->n_env; i++) {
        if (cfg->env[i].name != NULL && env_name_eq(entry, cfg->env[i].name))
            return 1;
    }
    return 0;
}

/*
 * The child's environment: mcplex's environ with cfg->env added (same names replaced), or with
 * clear_env only cfg->env plus mcplex's PATH unless cfg->env sets PATH (so that "npx" and
 * friends still resolve). A name repeated in cfg->env takes its last value.
 */
static char **
build_env(const mcplex_stdio_target_t *cfg)
{
    size_t n_environ = 0;
    size_t k = 0;
    char **envp;

    while (environ != NULL && environ[n_environ] != NULL)
        n_environ++;
    envp = mcplex_calloc(n_environ + cfg->n_env + 2, sizeof(char *));
    if (!cfg->clear_env) {
        for (size_t i = 0; i < n_environ; i++) {
            if (strchr(environ[i], '=') != NULL && !cfg_sets(cfg, environ[i]))
                envp[k++] = mcplex_strdup(environ[i]);
        }
    } else {
        const char *path = getenv("PATH");
        int has_path = 0;
        for (size_t i = 0; i < cfg->n_env; i++)
            has_path |= cfg->env[i].name != NULL && strcmp(cfg->env[i].name, "PATH") == 0;
        if (!has_path && path != NULL)
            envp[k++] = mcplex_sprintf("PATH=%s", path);
    }
    for (size_t i = 0; i < cfg->n_env; i++) {
        const mcplex_env_var_t *v = &cfg->env[i];
        int later = 0;
        if (v->name == NULL || v->name[0] == '\0' || strchr(v->name, '=') != NULL)
            continue;
        for (size_t j = i + 1; j < cfg->n_env && !later; j++)
            later = cfg->env[j].name != NULL && strcmp(cfg->env[j].name, v->name) == 0;
        if (!later)
            envp[k++] = mcplex_sprintf("%s=%s", v->name, v->value != NULL ? v->value : "");
    }
    envp[k] = NULL;
    return envp;
}

/*
 * Resolves a bare command name through the PATH of the child's environment (glibc's
 * posix_spawnp would search mcplex's own PATH). Returns a malloc'ed path, or NULL when |cmd|
 * contains a '/' or nothing matched (then posix_spawnp searches as usual).
 */
static char *
resolve_command(const char *cmd, char *const *envp)
{
    const char *path = NULL;

    if (strchr(cmd, '/') != NULL)
        return NULL;
    for (size_t i = 0; envp[i] != NULL; i++) {
        if (env_name_eq(envp[i], "PATH")) {
            path = envp[i] + 5;
            break;
        }
    }
    while (path != NULL && *path != '\0') {
        const char *colon = strchr(path, ':');
        size_t n = colon != NULL ? (size_t)(colon - path) : strlen(path);
        char *cand = n == 0 ? mcplex_sprintf("./%s", cmd) : mcplex_sprintf("%.*s/%s", (int)n, path, cmd);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path = colon != NULL ? colon + 1 : NULL;
    }
    return NULL;
}

static char **
build_argv(const mcplex_stdio_target_t *cfg)
{
    char **argv = mcplex_calloc(cfg->n_args + 2, sizeof(char *));

    argv[0] = mcplex_strdup(cfg->cmd);
    for (size_t i = 0; i < cfg->n_args; i++)
        argv[i + 1] = mcplex_strdup(cfg->args[i] != NULL ? cfg->args[i] : "");
    return argv;
}

/* ---- release ---------------------------------------------------------------------------------- */

static void
reader_dispose(line_reader_t *r)
{
    if (r->ev != NULL)
        event_free(r->ev);
    r->ev = NULL;
    close_fd(&r->fd);
    if (r->buf != NULL)
        evbuffer_free(r->buf);
    r->buf = NULL;
}

static void
close_stdin(stdio_transport_t *t)
{
    if (t->in_ev != NULL)
        event_free(t->in_ev);
    t->in_ev = NULL;
    close_fd(&t->in_fd);
    evbuffer_drain(t->in_buf, evbuffer_get_length(t->in_buf));
}

static void
do_free(stdio_transport_t *t)
{
    if (!t->exited)
        mcplex_children_unwatch(t->pid);
    close_stdin(t);
    evbuffer_free(t->in_buf);
    reader_dispose(&t->out);
    reader_dispose(&t->err);
    event_free(t->timer);
    free(t->component);
    free(t->super.target_name);
    free(t);
}

static void
on_deferred_free(evutil_socket_t fd, short what, void *arg)
{
    do_free(arg);
}

/* Frees |t| now, or from a zero-timeout event when an owner callback of |t| is on the stack. */
static void
release(stdio_transport_t *t)
{
    static const struct timeval zero = {0, 0};

    if (t->releasing)
        return;
    t->releasing = 1;
    evtimer_del(t->timer);
    if (t->in_cb > 0 && event_base_once(t->base, -1, EV_TIMEOUT, on_deferred_free, t, &zero) == 0)
        return;
    do_free(t);
}

/* ---- stderr ----------------------------------------------------------------------------------- */

static void
flush_suppressed(stdio_transport_t *t)
{
    if (t->err_suppressed > 0)
        mcplex_log_warn(t->component, "%u stderr lines suppressed", t->err_suppressed);
    t->err_suppressed = 0;
}

static void
log_stderr_line(stdio_transport_t *t, const char *line, size_t len, int truncated)
{
    int64_t now = mono_ms();

    if (len == 0)
        return;
    if (now - t->err_window_ms >= 1000) {
        flush_suppressed(t);
        t->err_window_ms = now;
        t->err_lines = 0;
    }
    if (t->err_lines >= STDERR_LINES_PER_SEC) {
        t->err_suppressed++;
        return;
    }
    t->err_lines++;
    mcplex_log_info(t->component, "%.*s%s", (int)len, line, truncated ? " [truncated]" : "");
}

/* ---- stdout ----------------------------------------------------------------------------------- */

static void
deliver(stdio_transport_t *t, const char *json, size_t len)
{
    t->in_cb++;
    t->super.cbs->on_message(t->super.owner, json, len);
    t->in_cb--;
}

/* One stdout line (NUL-terminated, '\r' stripped): a JSON-RPC message, a batch, or junk. */
static void
handle_stdout_line(stdio_transport_t *t, char *line, size_t len)
{
    size_t i = 0;

    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return; /* empty line */
    if (line[i] == '{') {
        deliver(t, line, len);
        return;
    }
    if (line[i] == '[') {
        size_t pos = 0, off, n;
        int r;
        while (!t->closing && !t->dead && (r = mcplex_json_array_next(line, len, &pos, &off, &n)) == 1) {
            char saved = line[off + n];
            line[off + n] = '\0';
            deliver(t, line + off, n);
            line[off + n] = saved;
        }
        if (r == -1)
            mcplex_log_warn(t->component, "malformed JSON-RPC batch on stdout skipped");
        return;
    }
    mcplex_log_warn(t->component, "non-JSON line on stdout skipped: %.120s%s", line + i,
                    len - i > 120 ? "..." : "");
}

/* ---- line splitting ---------------------------------------------------------------------------- */

/*
 * Reads what the pipe has (up to READS_PER_EVENT chunks). Sets r->eof on end of file or a read
 * error. Returns the number of bytes read.
 */
static size_t
reader_fill(stdio_transport_t *t, line_reader_t *r)
{
    size_t total = 0;

    for (int i = 0; i < READS_PER_EVENT && !r->eof; i++) {
        int n = evbuffer_read(r->buf, r->fd, READ_CHUNK);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n == 0) {
            r->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            mcplex_log_warn(t->component, "read from child pipe: %s", strerror(errno));
            r->eof = 1;
        }
        break;
    }
    if (r->eof && evbuffer_get_length(r->buf) > 0 && !r->discarding)
        evbuffer_add(r->buf, "\n", 1); /* a last line without newline still counts */
    return total;
}

/*
 * Splits complete lines off |r| and hands each to stdout or stderr handling. Stops early when the
 * transport was closed by a callback.
 */
static void
reader_split(stdio_transport_t *t, line_reader_t *r, int is_stdout)
{
    for (;;) {
        size_t have = evbuffer_get_length(r->buf);
        struct evbuffer_ptr eol;

        if (t->closing && is_stdout)
            return;
        eol.pos = -1;
        if (r->scanned < have) {
            struct evbuffer_ptr start;
            evbuffer_ptr_set(r->buf, &start, r->scanned, EVBUFFER_PTR_SET);
            eol = evbuffer_search_eol(r->buf, &start, NULL, EVBUFFER_EOL_LF);
        }
        if (eol.pos < 0) {
            r->scanned = have;
            if (r->discarding) {
                evbuffer_drain(r->buf, have);
                r->scanned = 0;
            } else if (have > r->cap) {
                if (is_stdout) {
                    mcplex_log_error(t->component, "stdout line over %u bytes discarded", (unsigned)r->cap);
                } else {
                    char *p = (char *)evbuffer_pullup(r->buf, r->cap);
                    log_stderr_line(t, p, r->cap, 1);
                }
                evbuffer_drain(r->buf, have);
                r->scanned = 0;
                r->discarding = 1;
            }
            return;
        }
        size_t n = (size_t)eol.pos;
        size_t consumed = n + 1;
        if (r->discarding || (n > r->cap && is_stdout)) {
            if (!r->discarding)
                mcplex_log_error(t->component, "stdout line over %u bytes discarded", (unsigned)r->cap);
            evbuffer_drain(r->buf, consumed);
            r->scanned = 0;
            r->discarding = 0;
            continue;
        }
        int truncated = n > r->cap;
        char *line = (char *)evbuffer_pullup(r->buf, (ev_ssize_t)consumed);
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (is_stdout)
            handle_stdout_line(t, line, n);
        else
            log_stderr_line(t, line, truncated ? r->cap : n, truncated);
        evbuffer_drain(r->buf, consumed);
        r->scanned = 0;
    }
}

/* ---- death ----------------------------------------------------------------------------------- */

static void
drain_stderr(stdio_transport_t *t)
{
    if (t->err.fd == -1)
        return;
    reader_fill(t, &t->err);
    reader_split(t, &t->err, 0);
    if (t->err.eof) {
        event_free(t->err.ev);
        t->err.ev = NULL;
        close_fd(&t->err.fd);
    }
    flush_suppressed(t);
}

static void
exit_reason(const stdio_transport_t *t, char *buf, size_t len)
{
    if (!t->exited)
        snprintf(buf, len, "closed its stdout (pid %d still running)", (int)t->pid);
    else if (WIFEXITED(t->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(t->status));
    else if (WIFSIGNALED(t->status))
        snprintf(buf, len, "killed by signal %d (SIG%s)", WTERMSIG(t->status),
                 sigabbrev_np(WTERMSIG(t->status)) != NULL ? sigabbrev_np(WTERMSIG(t->status)) : "?");
    else
        snprintf(buf, len, "ended (wait status 0x%x)", t->status);
}

/* The child is gone (exit and stdout EOF seen, or the grace time passed): tell the owner once. */
static void
report_closed(stdio_transport_t *t)
{
    char reason[96];

    if (t->dead || t->closing)
        return;
    t->dead = 1;
    evtimer_del(t->timer);
    drain_stderr(t);
    if (t->out.ev != NULL)
        event_del(t->out.ev);
    if (t->in_ev != NULL)
        event_del(t->in_ev);
    exit_reason(t, reason, sizeof(reason));
    mcplex_log_info(t->component, "child %s", reason);
    t->in_cb++;
    t->super.cbs->on_closed(t->super.owner, reason);
    t->in_cb--;
}

/* One of (child exit, stdout EOF) happened while live: report now if both did, else soon. */
static void
check_dead(stdio_transport_t *t)
{
    if (t->dead || t->closing)
        return;
    if (t->exited && t->out.eof)
        report_closed(t);
    else if (!evtimer_pending(t->timer, NULL))
        arm_timer(t, EXIT_EOF_GRACE_MS);
}

static void
on_child_exit(void *arg, pid_t pid, int status)
{
    stdio_transport_t *t = arg;

    t->exited = 1;
    t->status = status;
    /* Descendants left in the group (the leader's pid cannot be reused yet, the group id is
     * still taken while they live) are asked to go too. */
    kill(-pid, SIGTERM);
    if (t->closing) {
        drain_stderr(t);
        release(t);
        return;
    }
    check_dead(t);
}

/* ---- events ----------------------------------------------------------------------------------- */

static void
on_stdout(evutil_socket_t fd, short what, void *arg)
{
    stdio_transport_t *t = arg;

    reader_fill(t, &t->out);
    t->in_cb++; /* keep |t| alive across owner callbacks */
    reader_split(t, &t->out, 1);
    t->in_cb--;
    if (t->closing || t->dead)
        return;
    if (t->out.eof) {
        event_free(t->out.ev);
        t->out.ev = NULL;
        close_fd(&t->out.fd);
        check_dead(t);
    }
}

static void
on_stderr(evutil_socket_t fd, short what, void *arg)
{
    stdio_transport_t *t = arg;

    reader_fill(t, &t->err);
    reader_split(t, &t->err, 0);
    if (t->err.eof) {
        flush_suppressed(t);
        event_free(t->err.ev);
        t->err.ev = NULL;
        close_fd(&t->err.fd);
    }
}

/* Writes pending stdin bytes; returns -1 if the pipe is broken (the child closed its stdin). */
static int
flush_stdin(stdio_transport_t *t)
{
    while (evbuffer_get_length(t->in_buf) > 0) {
        int n = evbuffer_write(t->in_buf, t->in_fd);
        if (n >= 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            event_add(t->in_ev, NULL);
            return 0;
        }
        mcplex_log_warn(t->component, "write to child stdin: %s", strerror(errno));
        close_stdin(t);
        return -1;
    }
    event_del(t->in_ev);
    return 0;
}

static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
    flush_stdin(arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    stdio_transport_t *t = arg;

    switch (t->stage) {
    case STAGE_NONE:
        report_closed(t);
        break;
    case STAGE_WAIT_TERM:
        mcplex_log_info(t->component, "pid %d did not exit after stdin closed; sending SIGTERM", (int)t->pid);
        kill(-t->pid, SIGTERM);
        t->stage = STAGE_WAIT_KILL;
        arm_timer(t, KILL_AFTER_MS);
        break;
    case STAGE_WAIT_KILL:
        mcplex_log_warn(t->component, "pid %d ignored SIGTERM; sending SIGKILL", (int)t->pid);
        kill(-t->pid, SIGKILL);
        t->stage = STAGE_KILLED;
        break;
    case STAGE_KILLED:
        break;
    }
}

/* ---- ops --------------------------------------------------------------------------------------- */

static int
stdio_send(mcplex_transport_t *base, const char *json, size_t len, uint64_t tag)
{
    stdio_transport_t *t = (stdio_transport_t *)base;

    if (t->closing || t->dead || t->in_fd == -1)
        return -1;
    if (evbuffer_get_length(t->in_buf) + len + 1 > STDIN_PENDING_CAP) {
        mcplex_log_warn(t->component, "child is not reading stdin (%zu bytes pending); message dropped",
                        evbuffer_get_length(t->in_buf));
        return -1;
    }
    if (memchr(json, '\n', len) != NULL || memchr(json, '\r', len) != NULL) {
        /* Raw CR/LF can only be whitespace in valid JSON (inside strings they must be escaped),
         * so blanking them keeps the message intact and the framing sound. */
        char *copy = mcplex_malloc(len);
        memcpy(copy, json, len);
        for (size_t i = 0; i < len; i++) {
            if (copy[i] == '\n' || copy[i] == '\r')
                copy[i] = ' ';
        }
        evbuffer_add(t->in_buf, copy, len);
        free(copy);
    } else {
        evbuffer_add(t->in_buf, json, len);
    }
    evbuffer_add(t->in_buf, "\n", 1);
    return flush_stdin(t);
}

static void
stdio_set_protocol_version(mcplex_transport_t *base, const char *version)
{
    /* Nothing to carry on a pipe. */
}

static void
stdio_close(mcplex_transport_t *base)
{
    stdio_transport_t *t = (stdio_transport_t *)base;

    if (t->closing)
        return;
    t->closing = 1;
    evtimer_del(t->timer);
    close_stdin(t);
    /* Nobody reads stdout any more; a child writing to it now gets EPIPE. stderr stays open so
     * that shutdown messages are still logged. The buffer stays until the release: a stdout
     * callback may be on the stack. */
    if (t->out.ev != NULL)
        event_del(t->out.ev);
    close_fd(&t->out.fd);
    if (t->exited) {
        drain_stderr(t);
        release(t);
        return;
    }
    t->stage = STAGE_WAIT_TERM;
    arm_timer(t, TERM_AFTER_MS);
}

static const mcplex_transport_ops_t stdio_ops = {
    .send = stdio_send,
    .set_protocol_version = stdio_set_protocol_version,
    .close = stdio_close,
};

/* ---- API ------------------------------------------------------------------------------------- */

pid_t
mcplex_stdio_transport_pid(const mcplex_transport_t *t)
{
    if (t == NULL || t->ops != &stdio_ops)
        return -1;
    return ((const stdio_transport_t *)t)->pid;
}

static void
reader_init(stdio_transport_t *t, line_reader_t *r, int fd, size_t cap, event_callback_fn cb)
{
    r->fd = fd;
    r->cap = cap;
    r->buf = evbuffer_new();
    r->ev = event_new(t->base, fd, EV_READ | EV_PERSIST, cb, t);
    MCPLEX_BUG_ON(r->buf == NULL || r->ev == NULL);
    event_add(r->ev, NULL);
}

mcplex_transport_t *
mcplex_stdio_transport_create(struct event_base *base, const char *target_name,
                              const struct mcplex_stdio_target *cfg, const mcplex_transport_cbs_t *cbs,
                              void *owner, char *err, size_t err_len)
{
    stdio_transport_t *t = NULL;
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    char **argv = NULL, **envp = NULL;
    char *resolved = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_init = 0, attr_init = 0;
    sigset_t mask, defaults;
    pid_t pid;
    int rc;

    if (cfg == NULL || cfg->cmd == NULL || cfg->cmd[0] == '\0') {
        snprintf(err, err_len, "no command configured");
        goto fail;
    }
    if (mcplex_children_init(base) != 0) {
        snprintf(err, err_len, "child supervision is not available on this event loop");
        goto fail;
    }
    if (cfg->working_dir != NULL && cfg->working_dir[0] != '\0') {
        struct stat st;
        if (stat(cfg->working_dir, &st) != 0) {
            snprintf(err, err_len, "working_dir '%s': %s", cfg->working_dir, strerror(errno));
            goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "working_dir '%s': not a directory", cfg->working_dir);
            goto fail;
        }
    }
    if (make_pipe(in_p) != 0 || make_pipe(out_p) != 0 || make_pipe(err_p) != 0) {
        snprintf(err, err_len, "pipe: %s", strerror(errno));
        goto fail;
    }
    envp = build_env(cfg);
    argv = build_argv(cfg);
    resolved = resolve_command(cfg->cmd, envp);

    posix_spawn_file_actions_init(&fa);
    fa_init = 1;
    posix_spawn_file_actions_adddup2(&fa, in_p[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_p[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, in_p[0]);
    posix_spawn_file_actions_addclose(&fa, in_p[1]);
    posix_spawn_file_actions_addclose(&fa, out_p[0]);
    posix_spawn_file_actions_addclose(&fa, out_p[1]);
    posix_spawn_file_actions_addclose(&fa, err_p[0]);
    posix_spawn_file_actions_addclose(&fa, err_p[1]);
    if (cfg->working_dir != NULL && cfg->working_dir[0] != '\0')
        posix_spawn_file_actions_addchdir_np(&fa, cfg->working_dir);

    posix_spawnattr_init(&attr);
    attr_init = 1;
    sigemptyset(&mask);
    posix_spawnattr_setsigmask(&attr, &mask);
    /* mcplex ignores SIGPIPE and handles SIGCHLD; the child starts with default handling. */
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    rc = posix_spawnp(&pid, resolved != NULL ? resolved : cfg->cmd, &fa, &attr, argv, envp);
    if (rc != 0) {
        if (rc == ENOENT && strchr(cfg->cmd, '/') == NULL)
            snprintf(err, err_len, "cannot start '%s': command not found in PATH", cfg->cmd);
        else
            snprintf(err, err_len, "cannot start '%s': %s", cfg->cmd, strerror(rc));
        goto fail;
    }

    t = mcplex_calloc(1, sizeof(*t));
    t->super.ops = &stdio_ops;
    t->super.cbs = cbs;
    t->super.owner = owner;
    t->super.target_name = mcplex_strdup(target_name != NULL ? target_name : "?");
    t->base = base;
    t->component = mcplex_sprintf("target:%s", t->super.target_name);
    t->pid = pid;
    close_fd(&in_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    t->in_fd = in_p[1];
    set_nonblocking(in_p[1]);
    set_nonblocking(out_p[0]);
    set_nonblocking(err_p[0]);
    t->in_buf = evbuffer_new();
    t->in_ev = event_new(base, in_p[1], EV_WRITE | EV_PERSIST, on_stdin, t);
    t->timer = evtimer_new(base, on_timer, t);
    MCPLEX_BUG_ON(t->in_buf == NULL || t->in_ev == NULL || t->timer == NULL);
    reader_init(t, &t->out, out_p[0], STDOUT_LINE_CAP, on_stdout);
    reader_init(t, &t->err, err_p[0], STDERR_LINE_CAP, on_stderr);
    t->err_window_ms = mono_ms();
    mcplex_children_watch(pid, on_child_exit, t);
    mcplex_log_info(t->component, "started '%s' (pid %d)", resolved != NULL ? resolved : cfg->cmd, (int)pid);

    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    free(resolved);
    free_strv(argv);
    free_strv(envp);
    return &t->super;

fail:
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    free(resolved);
    free_strv(argv);
    free_strv(envp);
    for (int i = 0; i < 2; i++) {
        close_fd(&in_p[i]);
        close_fd(&out_p[i]);
        close_fd(&err_p[i]);
    }
    return NULL;
}
