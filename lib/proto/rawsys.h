/* SPDX-License-Identifier: MIT */
/*
 * Raw Linux system calls that return -errno instead of setting errno.
 *
 * A worker is created with clone(CLONE_VM): until it execs, it shares the
 * supervisor's memory, including the thread pointer and so errno and every
 * other thread-local of the supervisor. Anything it calls must therefore
 * leave libc state alone; these wrappers are how it makes system calls.
 * On architectures without an inline version here, psup creates workers
 * with a plain fork-like clone instead (see PSUP_RAW_SYSCALLS), where the
 * libc syscall() fallback below is harmless.
 */
#ifndef PSUP_RAWSYS_H
#define PSUP_RAWSYS_H

#include <sys/syscall.h>

#if defined(__x86_64__)
#define PSUP_RAW_SYSCALLS 1
static inline long psup_raw6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define PSUP_RAW_SYSCALLS 1
static inline long psup_raw6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a1;
    register long x1 __asm__("x1") = a2;
    register long x2 __asm__("x2") = a3;
    register long x3 __asm__("x3") = a4;
    register long x4 __asm__("x4") = a5;
    register long x5 __asm__("x5") = a6;

    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory", "cc");
    return x0;
}
#else
#include <errno.h>
#include <unistd.h>
#define PSUP_RAW_SYSCALLS 0
static inline long psup_raw6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long ret = syscall(n, a1, a2, a3, a4, a5, a6);
    return ret < 0 ? -errno : ret;
}
#endif

#define PSUP_RAW_ARGS6(a, b, c, d, e, f, ...) (long)(a), (long)(b), (long)(c), (long)(d), \
                                              (long)(e), (long)(f)
/* psup_sys(SYS_close, fd): one to six arguments (pass 0 for a call that
 * takes none), missing ones are zero. */
#define psup_sys(n, ...) psup_raw6((n), PSUP_RAW_ARGS6(__VA_ARGS__, 0, 0, 0, 0, 0, 0))

#endif
