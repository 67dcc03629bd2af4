/* SPDX-License-Identifier: MIT */
/*
 * libpsup-test-forge.so, linked into late_exit: what a library of a
 * prestarted program could do before psup's library runs, while psup's
 * channel is open in the process (spec/prestart.md). With FORGE_FILE in
 * the environment, its constructor waits (up to 5 s) for that file to hold
 * a pid, sends psup a SETUP_FAILED that claims to come from that pid, and
 * writes FORGE_FILE.sent; once that file exists it does nothing. psup must
 * take the message as the forger's own (test_prestart.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"

void psup_test_forge_hook(void);
void psup_test_forge_hook(void)
{
}

/* psup's channel: the one SOCK_SEQPACKET socket the process holds. */
static int find_channel(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        int type = 0;
        socklen_t len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET)
            return fd;
    }
    return -1;
}

static long victim_pid(const char *file)
{
    FILE *f = fopen(file, "r");
    long pid = 0;

    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

__attribute__((constructor)) static void forge(void)
{
    const char *file = getenv("FORGE_FILE");
    char sent[4096];
    struct stat st;
    long pid = 0;

    if (!file)
        return;
    snprintf(sent, sizeof(sent), "%s.sent", file);
    if (stat(sent, &st) == 0)
        return;
    for (int waited = 0; waited < 5000 && !(pid = victim_pid(file)); waited += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    int fd = find_channel();
    if (!pid || fd < 0)
        return;
    struct psup_msg m = {.kind = PSUP_MSG_SETUP_FAILED, .pid = (int32_t)pid, .err = EPERM,
                         .step = PSUP_STEP_CREDENTIALS};
    if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m)) {
        FILE *f = fopen(sent, "w");
        if (f)
            fclose(f);
    }
}
