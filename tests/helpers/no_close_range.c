/* SPDX-License-Identifier: MIT */
/*
 * Runs a program as it would run on an older kernel, for psup's fallback
 * when close_range cannot be used (spec/handler.md): a seccomp filter makes
 *
 *   enosys   close_range fail with ENOSYS (Linux before 5.9);
 *   eperm    close_range fail with EPERM (a container runtime whose seccomp
 *            profile predates it);
 *   einval   close_range with CLOSE_RANGE_CLOEXEC fail with EINVAL (5.9 and
 *            5.10 know close_range, not that flag);
 *   noproc   as enosys, and every open of a directory fail with ENOENT (no
 *            /proc to list descriptors from).
 *
 * Usage: no_close_range MODE PROGRAM [ARG...]. The filter is inherited by
 * everything the program starts. Installing it needs root or no_new_privs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "no seccomp architecture for this machine"
#endif

#define CLOEXEC_FLAG 4u /* CLOSE_RANGE_CLOEXEC */

#define LOAD(field) (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define RET(value) (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (value))
#define FAIL(err) RET(SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))
/* Skip the next instruction unless the accumulator equals k. */
#define UNLESS_EQ(k) (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), 0, 1)
/* Skip the next instruction unless the accumulator has a bit of k. */
#define UNLESS_SET(k) (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), 0, 1)

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s enosys|eperm|einval|noproc PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    unsigned err = strcmp(mode, "eperm") == 0 ? EPERM : ENOSYS;
    struct sock_filter filter[32];
    unsigned short n = 0;

    filter[n++] = LOAD(arch);
    filter[n++] = UNLESS_EQ(ARCH);
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0);
    filter[n++] = RET(SECCOMP_RET_ALLOW);
    filter[n++] = LOAD(nr);
    if (strcmp(mode, "einval") == 0) {
        /* close_range(first, last, flags): refuse the CLOEXEC flag only. */
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 3);
        filter[n++] = LOAD(args[2]);
        filter[n++] = UNLESS_SET(CLOEXEC_FLAG);
        filter[n++] = FAIL(EINVAL);
        filter[n++] = RET(SECCOMP_RET_ALLOW);
    } else {
        filter[n++] = UNLESS_EQ(__NR_close_range);
        filter[n++] = FAIL(err);
    }
    if (strcmp(mode, "noproc") == 0) {
        /* openat(dirfd, path, flags): refuse O_DIRECTORY. */
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3);
        filter[n++] = LOAD(args[2]);
        filter[n++] = UNLESS_SET(O_DIRECTORY);
        filter[n++] = FAIL(ENOENT);
    }
    filter[n++] = RET(SECCOMP_RET_ALLOW);

    struct sock_fprog prog = {.len = n, .filter = filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        return 2;
    }
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
}
