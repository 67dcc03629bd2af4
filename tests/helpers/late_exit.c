/* SPDX-License-Identifier: MIT */
/*
 * A handler that writes in three places a prestarted program's exit must
 * not cut: main (buffered, never flushed by the program), an atexit
 * handler and a destructor. It is linked with libpsup-test-late.so
 * (late_hook.c), whose exit handler runs after all of them, and with
 * libpsup-test-forge.so (forge_hook.c).
 */
#include <stdio.h>
#include <stdlib.h>

void psup_test_late_hook(void);
void psup_test_forge_hook(void);

static void at_exit(void)
{
    printf("atexit\n");
}

__attribute__((destructor)) static void destructor(void)
{
    printf("destructor\n");
}

int main(void)
{
    psup_test_late_hook();
    psup_test_forge_hook();
    atexit(at_exit);
    printf("main\n");
    return 0;
}
