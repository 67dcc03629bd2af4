/* SPDX-License-Identifier: MIT */
/*
 * An attacker who can write a directory on a unix socket's path: swaps the
 * paths A and B (two directories, or a socket and a regular file) with one
 * atomic renameat2(RENAME_EXCHANGE) after another, as fast as it can, for
 * SECONDS seconds, then prints how many swaps it made.
 *
 *     flipper A B SECONDS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: flipper A B SECONDS\n");
        return 2;
    }
    double end = now() + atof(argv[3]);
    unsigned long swaps = 0;

    while (now() < end) {
        for (int i = 0; i < 1000; i++) {
            if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0) {
                perror("renameat2");
                return 1;
            }
        }
        swaps += 1000;
    }
    printf("%lu\n", swaps);
    return 0;
}
