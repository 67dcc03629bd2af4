/* SPDX-License-Identifier: MIT */
/*
 * A handler that reports, from inside, what psup gave it: its open fds,
 * signal mask and dispositions, process group and session, credentials,
 * working directory, umask, limits, nice value and environment (and
 * whether main's third argument holds the same), one "key=value" line
 * each, then exits. With an argument "read" it first reads
 * its input to EOF (so the client's half-close is seen); with "child" it
 * also reports, from a child shell it runs as system(3) does, how many of
 * LD_PRELOAD and PSUP_PRESTART that child's environment holds.
 */
#include <dirent.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static void report_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int self = dirfd(d);

    printf("fds=");
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self)
            continue;
        char path[300], target[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        printf("%s:%s,", e->d_name, target);
    }
    printf("\n");
    closedir(d);
}

static void report_status(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];

    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7) ||
            !strncmp(line, "SigCgt:", 7) || !strncmp(line, "NoNewPrivs:", 11)) {
            char key[32], val[64];
            if (sscanf(line, "%31[^:]:%63s", key, val) == 2)
                printf("%s=%s\n", key, val);
        }
    }
    fclose(f);
}

static void report_ids(void)
{
    gid_t groups[256];
    int n = getgroups(256, groups);

    printf("pid=%d\nppid=%d\npgid=%d\nsid=%d\n", getpid(), getppid(), getpgrp(), getsid(0));
    printf("uid=%d\neuid=%d\ngid=%d\negid=%d\ngroups=", getuid(), geteuid(), getgid(), getegid());
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", groups[i]);
    printf("\n");
}

static void report_process(void)
{
    char cwd[4096];
    mode_t mask = umask(0);
    struct rlimit rl;

    printf("cwd=%s\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    printf("umask=%04o\n", mask);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("rlimit_nofile=%llu:%llu\n", (unsigned long long)rl.rlim_cur,
           (unsigned long long)rl.rlim_max);
    getrlimit(RLIMIT_CORE, &rl);
    printf("rlimit_core=%llu:%llu\n", (unsigned long long)rl.rlim_cur,
           (unsigned long long)rl.rlim_max);
    printf("nice=%d\n", getpriority(PRIO_PROCESS, 0));
}

/* Whether main's third argument is the environment environ holds. */
static int same_environment(char **envp)
{
    size_t i = 0;

    for (; envp[i] && environ[i]; i++)
        if (strcmp(envp[i], environ[i]) != 0)
            return 0;
    return !envp[i] && !environ[i];
}

static int has_arg(int argc, char **argv, const char *word)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], word) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    if (has_arg(argc, argv, "read")) {
        char buf[4096];
        while (read(0, buf, sizeof(buf)) > 0)
            ;
    }
    report_fds();
    report_status();
    report_ids();
    report_process();
    printf("main_envp=%s\n", same_environment(envp) ? "environ" : "other");
    for (char **e = environ; *e; e++)
        printf("env:%s\n", *e);
    if (has_arg(argc, argv, "child")) {
        fflush(stdout);
        if (system("echo child_env=$(env | grep -c -e ^LD_PRELOAD= -e ^PSUP_PRESTART=)") != 0)
            printf("child_env=failed\n");
    }
    printf("end=1\n");
    return 0;
}
