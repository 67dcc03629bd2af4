/* SPDX-License-Identifier: MIT */
/*
 * Creating workers: their stacks and the clone itself, on the supervisor's
 * side. The worker's own code is in lib/child.
 */
#include "spawn/spawn.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child/worker.h"
#include "proto/rawsys.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* AddressSanitizer's redzones make frames larger. */
#define STACK_SIZE (512 * 1024)
#else
#define STACK_SIZE (64 * 1024)
#endif

int psup_stack_map(struct psup_stack *stack)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t size = STACK_SIZE + (size_t)page;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

    if (base == MAP_FAILED)
        return -errno;
    /* A guard page below the stack: an overflow faults in the worker instead
     * of writing into the supervisor's memory. */
    if (mprotect(base, (size_t)page, PROT_NONE) < 0) {
        int err = errno;
        munmap(base, size);
        return -err;
    }
    stack->base = base;
    stack->size = size;
    return 0;
}

void psup_stack_unmap(struct psup_stack *stack)
{
    if (stack->base)
        munmap(stack->base, stack->size);
    stack->base = NULL;
    stack->size = 0;
}

/* The probe exits at once: returning makes glibc's clone trampoline call
 * the exit system call itself. */
static int probe_main(void *arg)
{
    (void)arg;
    return 0;
}

int psup_probe_slot(const struct psup_stack *stack)
{
    sigset_t all, saved;
    int status;

    /* CLONE_VFORK: psup resumes once the probe has exited, so it can be
     * reaped here, before the event loop's waitpid(-1) could see it. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &saved);
    pid_t pid = clone(probe_main, (char *)stack->base + stack->size,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    int err = errno;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    sigprocmask(SIG_SETMASK, &saved, NULL);
    return pid < 0 ? -err : 0;
}

pid_t psup_worker_spawn(struct psup_child *child, const struct psup_stack *stack,
                        bool share_memory)
{
    sigset_t all, saved;
    int flags = SIGCHLD;
    char *top = (char *)stack->base + stack->size;

    if (share_memory && PSUP_RAW_SYSCALLS)
        flags |= CLONE_VM;
#if defined(__SANITIZE_ADDRESS__)
    /* A reused stack may still carry the redzones of its last worker's
     * frames (it exited without returning): clear them. */
    __asan_unpoison_memory_region(stack->base, stack->size);
#endif
    /* Block everything, including the faults: the new process starts with
     * this mask, and no handler of the supervisor may run in it before it
     * has reset its dispositions. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &saved);
    pid_t pid = clone(psup_worker_main, top, flags, child);
    int err = errno;
    sigprocmask(SIG_SETMASK, &saved, NULL);
    return pid < 0 ? -err : pid;
}
