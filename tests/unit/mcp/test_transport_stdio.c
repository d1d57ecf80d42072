/*
 * test_transport_stdio.c - the stdio target transport and child supervision against real
 * processes: cat as an echo peer, the real server-everything from npm, sh scripts for exit
 * status, stderr, env/working_dir, and a child that ignores SIGTERM. Every test ends (and reaps)
 * the processes it started.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/mem.h"
#include "config/model.h"
#include "event/children.h"
#include "mcp/transport.h"

#define MAX_MSGS 64

extern char **environ;

typedef struct owner {
    mcplex_transport_t *t;
    char *msgs[MAX_MSGS];
    size_t n_msgs;
    int n_closed;
    char closed_reason[128];
    int n_failed;
    int close_on_message; /* call close() from inside the first on_message */
    int close_on_closed;  /* call close() from inside on_closed */
    int owner_closed;     /* close() was called; no callback may follow */
    int late_callbacks;
} owner_t;

static struct event_base *base;
static struct event *tick;

static void
on_message(void *arg, const char *json, size_t len)
{
    owner_t *o = arg;

    assert_int_equal(json[len], '\0');
    if (o->owner_closed) {
        o->late_callbacks++;
        return;
    }
    if (o->n_msgs < MAX_MSGS)
        o->msgs[o->n_msgs++] = mcplex_strndup(json, len);
    if (o->close_on_message) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
}

static void
on_send_failed(void *arg, uint64_t tag, int status, const char *reason)
{
    owner_t *o = arg;

    if (o->owner_closed)
        o->late_callbacks++;
    o->n_failed++;
}

static void
on_closed(void *arg, const char *reason)
{
    owner_t *o = arg;

    if (o->owner_closed) {
        o->late_callbacks++;
        return;
    }
    o->n_closed++;
    snprintf(o->closed_reason, sizeof(o->closed_reason), "%s", reason);
    if (o->close_on_closed) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
}

static const mcplex_transport_cbs_t cbs = {on_message, on_send_failed, on_closed};

static void
owner_dispose(owner_t *o)
{
    for (size_t i = 0; i < o->n_msgs; i++)
        free(o->msgs[i]);
    o->n_msgs = 0;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until |pred| holds or |timeout_ms| passes; returns the final |pred|. */
static int
run_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    while (!pred(arg) && now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return pred(arg);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static int
pred_reaped(void *arg)
{
    pid_t pid = *(pid_t *)arg;

    return kill(pid, 0) == -1 && errno == ESRCH;
}

static int
pred_group_gone(void *arg)
{
    pid_t pid = *(pid_t *)arg;

    return kill(-pid, 0) == -1 && errno == ESRCH;
}

static int
pred_closed(void *arg)
{
    return ((owner_t *)arg)->n_closed > 0;
}

typedef struct want_msgs {
    owner_t *o;
    size_t n;
} want_msgs_t;

static int
pred_msgs(void *arg)
{
    want_msgs_t *w = arg;

    return w->o->n_msgs >= w->n;
}

/* Closes |o|'s transport (unless the owner already did) and waits until its child is reaped. */
static void
close_and_reap(owner_t *o, pid_t pid, int timeout_ms)
{
    if (!o->owner_closed) {
        o->owner_closed = 1;
        mcplex_transport_close(o->t);
    }
    assert_true(run_until(pred_reaped, &pid, timeout_ms));
    /* One more turn for deferred releases. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(o->late_callbacks, 0);
}

static mcplex_transport_t *
spawn_sh(owner_t *o, const char *name, const char *script, char *err, size_t err_len)
{
    char *args[] = {"-c", (char *)script};
    mcplex_stdio_target_t cfg = {.cmd = "sh", .args = args, .n_args = 2};

    o->t = mcplex_stdio_transport_create(base, name, &cfg, &cbs, o, err, err_len);
    return o->t;
}

/* ---- (a) cat echoes two messages ------------------------------------------------------------- */

static void
test_cat_echo(void **state)
{
    owner_t o = {0};
    char err[256] = "";
    mcplex_stdio_target_t cfg = {.cmd = "cat"};
    const char *m1 = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    const char *m2 = "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"ping\",\"params\":{\"s\":\"a\\nb\"}}";
    /* Pretty-printed input: its raw newlines must not break the framing. */
    const char *m3 = "{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": 3\n}";

    o.t = mcplex_stdio_transport_create(base, "cat", &cfg, &cbs, &o, err, sizeof(err));
    assert_non_null(o.t);
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_true(pid > 0);
    assert_int_equal(mcplex_transport_send(o.t, m1, strlen(m1), 1), 0);
    assert_int_equal(mcplex_transport_send(o.t, m2, strlen(m2), 2), 0);
    assert_int_equal(mcplex_transport_send(o.t, m3, strlen(m3), 3), 0);
    want_msgs_t w = {&o, 3};
    assert_true(run_until(pred_msgs, &w, 5000));
    assert_string_equal(o.msgs[0], m1);
    assert_string_equal(o.msgs[1], m2);
    assert_string_equal(o.msgs[2], "{   \"jsonrpc\": \"2.0\",    \"id\": 3 }");
    assert_int_equal(o.n_closed, 0);
    close_and_reap(&o, pid, 3000);
    owner_dispose(&o);
}

/* close() from inside on_message: no more callbacks, memory released later, child reaped. */
static void
test_close_inside_callback(void **state)
{
    owner_t o = {.close_on_message = 1};
    char err[256] = "";
    mcplex_stdio_target_t cfg = {.cmd = "cat"};
    const char *two = "[{\"id\":1},{\"id\":2}]";

    o.t = mcplex_stdio_transport_create(base, "cat2", &cfg, &cbs, &o, err, sizeof(err));
    assert_non_null(o.t);
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    /* A batch line is split into its messages; the owner closes on the first one. */
    assert_int_equal(mcplex_transport_send(o.t, two, strlen(two), 0), 0);
    want_msgs_t w = {&o, 1};
    assert_true(run_until(pred_msgs, &w, 5000));
    assert_string_equal(o.msgs[0], "{\"id\":1}");
    close_and_reap(&o, pid, 3000);
    assert_int_equal(o.n_msgs, 1);
    owner_dispose(&o);
}

/* ---- (b) the real server-everything over stdio ------------------------------------------------ */

static int
has_id(owner_t *o, int id)
{
    for (size_t i = 0; i < o->n_msgs; i++) {
        cJSON *root = cJSON_Parse(o->msgs[i]);
        cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "id");
        int ok = cJSON_IsNumber(jid) && jid->valueint == id
                 && cJSON_GetObjectItemCaseSensitive(root, "result") != NULL;
        cJSON_Delete(root);
        if (ok)
            return 1;
    }
    return 0;
}

static int
pred_ids_1_2(void *arg)
{
    return has_id(arg, 1) && has_id(arg, 2);
}

static void
test_server_everything(void **state)
{
    owner_t o = {0};
    char err[256] = "";
    char script[PATH_MAX];
    snprintf(script, sizeof(script), "%s/tests/node_modules/@modelcontextprotocol/server-everything/%s",
             MCPLEX_SOURCE_DIR, "dist/index.js");
    char *args[] = {script, "stdio"};
    mcplex_stdio_target_t cfg = {.cmd = "node", .args = args, .n_args = 2};
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                       "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                       "\"clientInfo\":{\"name\":\"mcplex-test\",\"version\":\"1\"}}}";
    const char *inited = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    const char *list = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}";

    if (access(script, R_OK) != 0) {
        skip(); /* npm peers not installed */
        return;
    }
    o.t = mcplex_stdio_transport_create(base, "everything", &cfg, &cbs, &o, err, sizeof(err));
    assert_non_null(o.t);
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_int_equal(mcplex_transport_send(o.t, init, strlen(init), 1), 0);
    assert_int_equal(mcplex_transport_send(o.t, inited, strlen(inited), 0), 0);
    assert_int_equal(mcplex_transport_send(o.t, list, strlen(list), 2), 0);
    assert_true(run_until(pred_ids_1_2, &o, 30000));
    /* tools/list carries the echo tool. */
    int found_echo = 0;
    for (size_t i = 0; i < o.n_msgs; i++)
        found_echo |= strstr(o.msgs[i], "\"echo\"") != NULL && strstr(o.msgs[i], "\"tools\"") != NULL;
    assert_true(found_echo);
    assert_int_equal(o.n_closed, 0);
    /* The server exits by itself on stdin EOF. */
    close_and_reap(&o, pid, 5000);
    owner_dispose(&o);
}

/* ---- (c) spawn failures ------------------------------------------------------------------------- */

static void
test_spawn_failures(void **state)
{
    owner_t o = {0};
    char err[256] = "";
    mcplex_stdio_target_t cfg = {.cmd = "mcplex-no-such-command-xyz"};

    assert_null(mcplex_stdio_transport_create(base, "nope", &cfg, &cbs, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "mcplex-no-such-command-xyz"));
    assert_non_null(strstr(err, "not found"));

    mcplex_stdio_target_t cfg2 = {.cmd = "/nonexistent/dir/binary"};
    err[0] = '\0';
    assert_null(mcplex_stdio_transport_create(base, "nope", &cfg2, &cbs, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));

    mcplex_stdio_target_t cfg3 = {.cmd = "cat", .working_dir = "/nonexistent/wd"};
    err[0] = '\0';
    assert_null(mcplex_stdio_transport_create(base, "nope", &cfg3, &cbs, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "working_dir"));

    mcplex_stdio_target_t cfg4 = {.cmd = "/etc/hostname"}; /* not executable */
    err[0] = '\0';
    assert_null(mcplex_stdio_transport_create(base, "nope", &cfg4, &cbs, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot start"));
    assert_int_equal(o.n_msgs + o.n_closed + o.n_failed, 0);
}

/* ---- (d) junk on stdout, exit status ------------------------------------------------------------ */

static void
test_non_json_and_exit_status(void **state)
{
    owner_t o = {0};
    char err[256] = "";

    assert_non_null(spawn_sh(&o, "sh", "echo notjson; echo; printf '{\"a\":1}\\r\\n'; echo '  '; "
                                       "printf '{\"last\":true}'; exit 3",
                             err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_true(run_until(pred_closed, &o, 5000));
    assert_int_equal(o.n_msgs, 2);
    assert_string_equal(o.msgs[0], "{\"a\":1}");
    assert_string_equal(o.msgs[1], "{\"last\":true}"); /* unterminated last line at EOF */
    assert_string_equal(o.closed_reason, "exited with status 3");
    assert_int_equal(o.n_closed, 1);
    /* Dead: sends fail; close() releases at once (already reaped). */
    assert_int_equal(mcplex_transport_send(o.t, "{}", 2, 9), -1);
    close_and_reap(&o, pid, 1000);
    owner_dispose(&o);
}

/* A stdout line over 16 MiB is dropped up to its newline; the next line still arrives. */
static void
test_overlong_line(void **state)
{
    owner_t o = {0};
    char err[256] = "";

    assert_non_null(spawn_sh(&o, "big", "head -c 17000000 /dev/zero | tr '\\0' 'a'; echo; echo '{\"ok\":1}'",
                             err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_true(run_until(pred_closed, &o, 20000));
    assert_int_equal(o.n_msgs, 1);
    assert_string_equal(o.msgs[0], "{\"ok\":1}");
    close_and_reap(&o, pid, 1000);
    owner_dispose(&o);
}

/* Killed by a signal; close() called from inside on_closed. */
static void
test_killed_close_in_on_closed(void **state)
{
    owner_t o = {.close_on_closed = 1};
    char err[256] = "";

    assert_non_null(spawn_sh(&o, "sh", "kill -9 $$", err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_true(run_until(pred_closed, &o, 5000));
    assert_non_null(strstr(o.closed_reason, "killed by signal 9"));
    close_and_reap(&o, pid, 1000);
}

/* ---- (e) stderr is logged, rate-limited ---------------------------------------------------------- */

static void
test_stderr_logged(void **state)
{
    owner_t o = {0};
    char err[256] = "";
    char path[] = "mcplex-test-stderr-XXXXXX"; /* in the build tree */
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);

    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, STDERR_FILENO);
    assert_non_null(spawn_sh(&o, "errtest",
                             "echo 'hello from stderr' >&2; i=0; while [ $i -lt 300 ]; do echo \"n $i\" >&2; "
                             "i=$((i+1)); done; echo '{\"done\":1}'",
                             err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    int ok = run_until(pred_closed, &o, 5000);
    close_and_reap(&o, pid, 1000);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_true(ok);
    assert_int_equal(o.n_msgs, 1);

    char *buf = mcplex_calloc(1, 1 << 20);
    ssize_t n = pread(fd, buf, (1 << 20) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "[target:errtest] hello from stderr"));
    assert_non_null(strstr(buf, "[target:errtest] n 0\n"));
    assert_non_null(strstr(buf, "stderr lines suppressed"));
    assert_null(strstr(buf, "[target:errtest] n 299\n")); /* over 100 lines in one second */
    free(buf);
    owner_dispose(&o);
}

/* ---- (f) a child that ignores stdin EOF and SIGTERM -------------------------------------------- */

static void
test_sigkill_escalation(void **state)
{
    owner_t o = {0};
    char err[256] = "";

    assert_non_null(spawn_sh(&o, "stubborn", "trap '' TERM; sleep 30; sleep 30", err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    /* Let the shell install its trap first. */
    struct timeval tv = {0, 200 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    int64_t start = now_ms();
    o.owner_closed = 1;
    mcplex_transport_close(o.t);
    assert_true(run_until(pred_reaped, &pid, 6000));
    int64_t took = now_ms() - start;
    assert_true(took >= 3800);
    assert_true(took <= 4600);
    /* The whole process group went (sleep included). */
    assert_true(run_until(pred_group_gone, &pid, 2000));
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(o.late_callbacks, 0);
}

/* A child that exits on SIGTERM is stopped after about 2 s. */
static void
test_sigterm(void **state)
{
    owner_t o = {0};
    char err[256] = "";

    assert_non_null(spawn_sh(&o, "sleeper", "sleep 30; sleep 30", err, sizeof(err)));
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    int64_t start = now_ms();
    close_and_reap(&o, pid, 4000);
    int64_t took = now_ms() - start;
    assert_true(took >= 1800 && took <= 3000);
}

/* ---- (g) env and working_dir -------------------------------------------------------------------- */

static void
test_env_and_working_dir(void **state)
{
    owner_t o = {0};
    char err[256] = "";
    char wd[PATH_MAX];
    char *args[] = {"-c", "printf '{\"cwd\":\"%s\",\"v\":\"%s\",\"home\":\"%s\"}\\n' "
                          "\"$(pwd)\" \"$FOO\" \"$HOME\""};
    mcplex_env_var_t env[] = {{"FOO", "first"}, {"FOO", "bar"}};
    mcplex_stdio_target_t cfg = {.cmd = "sh", .args = args, .n_args = 2, .env = env, .n_env = 2,
                                 .working_dir = wd};

    assert_non_null(realpath("/tmp", wd));
    setenv("HOME", "/home/mcplex-test", 1);
    setenv("FOO", "from-parent", 1);
    o.t = mcplex_stdio_transport_create(base, "env", &cfg, &cbs, &o, err, sizeof(err));
    assert_non_null(o.t);
    pid_t pid = mcplex_stdio_transport_pid(o.t);
    assert_true(run_until(pred_closed, &o, 5000));
    assert_int_equal(o.n_msgs, 1);
    char want[PATH_MAX + 100];
    snprintf(want, sizeof(want), "{\"cwd\":\"%s\",\"v\":\"bar\",\"home\":\"/home/mcplex-test\"}", wd);
    assert_string_equal(o.msgs[0], want);
    close_and_reap(&o, pid, 1000);
    owner_dispose(&o);

    /* clear_env: only the configured variables, plus mcplex's PATH so "sh" still resolves. */
    owner_t o2 = {0};
    cfg.clear_env = 1;
    o2.t = mcplex_stdio_transport_create(base, "env2", &cfg, &cbs, &o2, err, sizeof(err));
    assert_non_null(o2.t);
    pid = mcplex_stdio_transport_pid(o2.t);
    assert_true(run_until(pred_closed, &o2, 5000));
    assert_int_equal(o2.n_msgs, 1);
    snprintf(want, sizeof(want), "{\"cwd\":\"%s\",\"v\":\"bar\",\"home\":\"\"}", wd);
    assert_string_equal(o2.msgs[0], want);
    close_and_reap(&o2, pid, 1000);
    owner_dispose(&o2);
    unsetenv("FOO");
}

/* ---- children.c: an exit reaped before the watch still fires ---------------------------------- */

static int child_fired;
static int child_status;

static void
on_child(void *arg, pid_t pid, int status)
{
    child_fired++;
    child_status = status;
}

static int
pred_fired(void *arg)
{
    return child_fired > 0;
}

static void
test_children_late_watch(void **state)
{
    /* A raw child nobody watches yet: its exit is remembered and delivered on watch. */
    char *argv[] = {"sh", "-c", "exit 5", NULL};
    pid_t raw;
    assert_int_equal(posix_spawnp(&raw, "sh", NULL, NULL, argv, environ), 0);
    assert_true(run_until(pred_reaped, &raw, 5000));
    child_fired = 0;
    mcplex_children_watch(raw, on_child, NULL);
    assert_int_equal(child_fired, 0); /* never from inside watch() */
    assert_true(run_until(pred_fired, NULL, 1000));
    assert_true(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 5);

    /* Unwatched while running: reaped silently, nothing fires. */
    child_fired = 0;
    assert_int_equal(posix_spawnp(&raw, "sh", NULL, NULL, argv, environ), 0);
    mcplex_children_watch(raw, on_child, NULL);
    mcplex_children_unwatch(raw);
    assert_true(run_until(pred_reaped, &raw, 5000));
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(child_fired, 0);
}

/* ---- mcplex_json_array_next --------------------------------------------------------------------- */

static void
test_json_array_next(void **state)
{
    const char *a = " [ {\"id\":1,\"s\":\"x,]}\\\"\"} , [1,2] ,\"str\" ,3 ] ";
    size_t pos = 0, off, n;

    assert_int_equal(mcplex_json_array_next(a, strlen(a), &pos, &off, &n), 1);
    assert_int_equal(n, strlen("{\"id\":1,\"s\":\"x,]}\\\"\"}"));
    assert_memory_equal(a + off, "{\"id\":1,\"s\":\"x,]}\\\"\"}", n);
    assert_int_equal(mcplex_json_array_next(a, strlen(a), &pos, &off, &n), 1);
    assert_memory_equal(a + off, "[1,2]", n);
    assert_int_equal(mcplex_json_array_next(a, strlen(a), &pos, &off, &n), 1);
    assert_memory_equal(a + off, "\"str\"", n);
    assert_int_equal(mcplex_json_array_next(a, strlen(a), &pos, &off, &n), 1);
    assert_memory_equal(a + off, "3", n);
    assert_int_equal(mcplex_json_array_next(a, strlen(a), &pos, &off, &n), 0);

    const char *bad[] = {"", "{}", "[", "[1,", "[1,]", "[,1]", "[1}", "[{]", "[1] x", "[\"abc]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r;
        pos = 0;
        while ((r = mcplex_json_array_next(bad[i], strlen(bad[i]), &pos, &off, &n)) == 1)
            ;
        assert_int_equal(r, -1);
    }
    pos = 0;
    assert_int_equal(mcplex_json_array_next("[ ]", 3, &pos, &off, &n), 0);
}

static int
group_setup(void **state)
{
    struct timeval tv = {0, 20 * 1000};

    base = event_base_new();
    if (base == NULL || mcplex_children_init(base) != 0)
        return -1;
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &tv);
    return 0;
}

static int
group_teardown(void **state)
{
    event_free(tick);
    mcplex_children_shutdown();
    event_base_free(base);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_array_next),
        cmocka_unit_test(test_cat_echo),
        cmocka_unit_test(test_close_inside_callback),
        cmocka_unit_test(test_server_everything),
        cmocka_unit_test(test_spawn_failures),
        cmocka_unit_test(test_non_json_and_exit_status),
        cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_killed_close_in_on_closed),
        cmocka_unit_test(test_stderr_logged),
        cmocka_unit_test(test_sigkill_escalation),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_env_and_working_dir),
        cmocka_unit_test(test_children_late_watch),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
