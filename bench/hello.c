/* SPDX-License-Identifier: MIT */
/*
 * bench-hello: the benchmark's minimal handler. Writes "hello\n" to stdout
 * (the connection) and exits, with no C library at all: a static glibc
 * program spends most of its life in start-up code (on a VM, its CPUID
 * probing of the processor traps to the hypervisor and costs more than the
 * server's whole work). Without it, what remains is exec itself and the
 * server's own cost of running a process per connection.
 *
 * It does not read its input; the load generator sends none for this
 * handler, so closing the socket with unread data (which makes the kernel
 * answer with RST) cannot happen.
 */
#if defined(__x86_64__) || defined(__aarch64__)

static long sys3(long n, long a, long b, long c)
{
    long ret;
#if defined(__x86_64__)
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
#else
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory", "cc");
    ret = x0;
#endif
    return ret;
}

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_EXIT_GROUP 231
#else
#define NR_WRITE 64
#define NR_EXIT_GROUP 94
#endif

void _start(void);

void _start(void)
{
    static const char msg[] = "hello\n";
    long n = sys3(NR_WRITE, 1, (long)msg, sizeof(msg) - 1);

    for (;;)
        sys3(NR_EXIT_GROUP, n == (long)(sizeof(msg) - 1) ? 0 : 1, 0, 0);
}

#else

#include <unistd.h>

int main(void)
{
    static const char msg[] = "hello\n";
    return write(STDOUT_FILENO, msg, sizeof(msg) - 1) == (ssize_t)(sizeof(msg) - 1) ? 0 : 1;
}

#endif
