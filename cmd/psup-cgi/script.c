/* SPDX-License-Identifier: MIT */
/*
 * Running the CGI script: its environment, stdin (the buffered body or
 * /dev/null), stdout (a pipe to the relay), stderr (the relay's own, which
 * psup pointed where the service's `stderr` says), and stopping it.
 *
 * The script leads its own process group, so the relay can stop the
 * script and everything it started, and never itself, when its own
 * deadline passes; signals psup sends to the relay's group are passed on
 * (io.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/cgi_env.h"
#include "relay.h"

extern char **environ;

static char **build_env(const struct relay *r, const struct psup_http_request *req, char **arena_out)
{
    struct psup_cgi_env_input in = {
        .req = req,
        .body_len = r->body_len,
        .inherited = environ,
        .server_name = r->opt.server_name,
        .software = r->server,
    };
    size_t bytes, entries;
    char *arena;
    char **envp;

    psup_cgi_env_bounds(&in, &bytes, &entries);
    arena = malloc(bytes);
    envp = malloc(entries * sizeof *envp);
    if (!arena || !envp || psup_cgi_env_build(&in, arena, bytes, envp, entries) < 0) {
        free(arena);
        free(envp);
        return NULL;
    }
    *arena_out = arena;
    return envp;
}

static int stdin_fd(const struct relay *r, const struct psup_http_request *req)
{
    int fd;

    if (req->body != PSUP_HTTP_BODY_NONE && r->body_fd >= 0) {
        /* The body was written into the memfd: the script reads it from
         * the start, and can seek in it. */
        return lseek(r->body_fd, 0, SEEK_SET) < 0 ? -errno : r->body_fd;
    }
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Signals the relay blocks or ignores come back to their defaults, and the
 * mask is emptied: the script gets what psup gives any handler
 * (spec/handler.md). */
static int spawn_attributes(posix_spawnattr_t *attr)
{
    sigset_t defaults, empty;
    int rc;

    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGCHLD);
    rc = posix_spawnattr_init(attr);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETSIGMASK);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &defaults);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(attr, &empty);
    return -rc;
}

static int spawn(struct relay *r, char **envp, int in_fd, int out_fd)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = spawn_attributes(&attr);

    if (rc < 0)
        return rc;
    rc = -posix_spawn_file_actions_init(&actions);
    if (rc == 0)
        rc = -posix_spawn_file_actions_adddup2(&actions, in_fd, STDIN_FILENO);
    if (rc == 0)
        rc = -posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);

    /* glibc's posix_spawnp uses clone(CLONE_VM | CLONE_VFORK) and reports
     * a failed exec as its return value: nothing is copied, and no exec
     * failure goes unnoticed. */
    if (rc == 0)
        rc = -posix_spawnp(&r->script, r->opt.program[0], &actions, &attr, r->opt.program, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc < 0)
        r->script = 0;
    return rc;
}

int relay_script_start(struct relay *r, const struct psup_http_request *req)
{
    char *arena = NULL;
    char **envp = build_env(r, req, &arena);
    int pipefd[2] = {-1, -1}, in_fd = -1, rc;

    if (!envp)
        return -ENOMEM;
    in_fd = stdin_fd(r, req);
    rc = in_fd < 0 ? in_fd : pipe2(pipefd, O_CLOEXEC) < 0 ? -errno : 0;
    if (rc == 0)
        rc = spawn(r, envp, in_fd, pipefd[1]);
    if (in_fd >= 0 && in_fd != r->body_fd)
        close(in_fd);
    if (pipefd[1] >= 0)
        close(pipefd[1]); /* the script holds the only write end: EOF when it is done */
    if (rc < 0 && pipefd[0] >= 0)
        close(pipefd[0]);
    r->script_out = rc < 0 ? -1 : pipefd[0];
    r->script_reaped = false;
    free(envp);
    free(arena);
    return rc;
}

void relay_script_signal(struct relay *r, int sig)
{
    if (r->script > 0 && !r->script_reaped)
        kill(-r->script, sig);
}

/* Reaps the script if it has ended. */
static bool reaped(struct relay *r, int options)
{
    int status;
    pid_t pid;

    do
        pid = waitpid(r->script, &status, options);
    while (pid < 0 && errno == EINTR);
    if (pid != r->script)
        return false;
    r->script_reaped = true;
    r->script_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    return true;
}

static bool wait_until(struct relay *r, int64_t deadline_ms)
{
    while (!reaped(r, WNOHANG)) {
        int why = relay_wait(r, -1, deadline_ms, true);
        if (why == WAIT_TIMEOUT || why < 0)
            return reaped(r, WNOHANG);
    }
    return true;
}

void relay_script_finish(struct relay *r, int64_t deadline_ms)
{
    if (r->script_out >= 0)
        close(r->script_out);
    r->script_out = -1;
    if (r->script <= 0 || r->script_reaped || wait_until(r, deadline_ms))
        return;

    /* Past the deadline: the script's whole group, as psup would stop a
     * handler's (spec/signals.md), and the relay stays to report it. */
    kill(-r->script, SIGTERM);
    if (wait_until(r, relay_now_ms() + r->opt.kill_grace_ms))
        return;
    kill(-r->script, SIGKILL);
    reaped(r, 0);
}

/* A script that answered with a local redirect is done: once its output
 * is closed it gets kill_grace to exit before it is stopped, so a script
 * that lingers cannot hold the request after it answered. */
void relay_script_discard(struct relay *r)
{
    int64_t grace = relay_now_ms() + r->opt.kill_grace_ms;

    relay_script_finish(r, grace < r->deadline_ms ? grace : r->deadline_ms);
    r->script = 0;
}
