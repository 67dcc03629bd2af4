/* SPDX-License-Identifier: MIT */
/*
 * A statically linked program that waits for ever: the dynamic loader
 * never runs in it, so psup's prestart library never does either. With
 * "exit" as its argument it exits at once instead.
 */
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        return 0;
    for (;;)
        pause();
}
