/*
 * children.h - child-process supervision: one SIGCHLD handler (a libevent signal event on the
 * main loop) reaps every exited child with waitpid(WNOHANG) and reports each exit to the
 * callback registered for that pid. Thread: the main loop (today also the only worker).
 */
#ifndef MCPLEX_EVENT_CHILDREN_H
#define MCPLEX_EVENT_CHILDREN_H

#include <stddef.h>
#include <sys/types.h>

struct event_base;

/*
 * Installs the SIGCHLD handler on |base| and makes the process ignore SIGPIPE. Call once at
 * start-up; a second call with the same |base| is a no-op returning 0, with another base it
 * fails. Every child of the process is reaped from then on (waitpid(-1)), watched or not.
 * Returns 0 or -1.
 */
int mcplex_children_init(struct event_base *base);
/* Removes the handler and forgets every watch (no callbacks). */
void mcplex_children_shutdown(void);

/* Called once when |pid| has exited and was reaped; |status| as from waitpid. */
typedef void (*mcplex_child_exit_fn)(void *arg, pid_t pid, int status);

/* Registers |cb| for |pid| (replacing an earlier watch). If the child already exited and was
 * reaped (within the last few seconds), cb still fires on the next loop turn, never from inside
 * this call. */
void mcplex_children_watch(pid_t pid, mcplex_child_exit_fn cb, void *arg);
/* Forgets the watch of |pid| (the child will still be reaped, silently). */
void mcplex_children_unwatch(pid_t pid);
/*
 * Names the loop of the calling thread: exits of children this thread watches are delivered
 * there (a worker thread calls it once at start). Without it, exits run on the supervision loop.
 */
void mcplex_children_set_thread_base(struct event_base *base);

/* Number of watched children that have not exited yet (shutdown waits for 0). */
size_t mcplex_children_count(void);

#endif
