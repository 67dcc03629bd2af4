/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the importer's unit tests: a services database of their
 * own (the machine's may differ, or be missing), running an import on text
 * and comparing its messages and services.
 */
#ifndef PSUP_TEST_IMPORT_H
#define PSUP_TEST_IMPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import.h"

/* A services database written for the tests. */
static const char test_services[] = "# a test services(5)\n"
                                    "tcpmux\t\t1/tcp\n"
                                    "echo\t\t7/tcp\n"
                                    "echo\t\t7/udp\n"
                                    "discard\t\t9/tcp\t\tsink null\n"
                                    "daytime\t\t13/tcp\n"
                                    "chargen\t\t19/tcp\n"
                                    "ftp\t\t21/tcp\n"
                                    "telnet\t\t23/tcp\n"
                                    "tftp\t\t69/udp\n"
                                    "finger\t\t79/tcp\n"
                                    "time\t\t37/tcp\n"
                                    "talk\t\t517/udp\n"
                                    "check_mk\t6556/tcp\t# no such entry in Debian's\n";

static char services_path[64];

static int write_services(void **state)
{
    (void)state;
    snprintf(services_path, sizeof(services_path), "/tmp/psup-test-services-XXXXXX");
    int fd = mkstemp(services_path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, test_services, sizeof(test_services) - 1);
    close(fd);
    return n == (ssize_t)sizeof(test_services) - 1 ? 0 : -1;
}

static int remove_services(void **state)
{
    (void)state;
    unlink(services_path);
    return 0;
}

/* A message with the test's services path written SERVICES. */
static const char *message(const struct psup_import_result *r, size_t i)
{
    static char buf[4096];
    const char *text = psup_import_message(r, i);
    const char *at = text ? strstr(text, services_path) : NULL;

    if (!at)
        return text;
    snprintf(buf, sizeof(buf), "%.*sSERVICES%s", (int)(at - text), text,
             at + strlen(services_path));
    return buf;
}

/* r's messages are exactly want (NULL-terminated), in order. */
static void assert_messages(const struct psup_import_result *r, const char *const *want)
{
    size_t n = 0;

    while (want[n])
        n++;
    for (size_t i = 0; i < psup_import_message_count(r) || i < n; i++) {
        const char *got = message(r, i);
        if (i >= n)
            fail_msg("unexpected message: %s", got);
        if (!got)
            fail_msg("missing message: %s", want[i]);
        if (strcmp(got, want[i]) != 0)
            fail_msg("message %zu:\n  got  %s\n  want %s", i, got, want[i]);
    }
}

static const struct psup_import_service *service_named(const struct psup_import_result *r,
                                                       const char *name)
{
    for (size_t i = 0; i < r->n_services; i++)
        if (strcmp(r->services[i]->name, name) == 0)
            return r->services[i];
    fail_msg("no service %s", name);
    return NULL;
}

/* The strings of v joined with spaces, for one comparison per list. */
static const char *joined(const struct psup_import_strv *v)
{
    static char buf[4096];
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < v->count; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " " : "", v->items[i]);
    return buf;
}

#define NO_MESSAGES ((const char *const[]){NULL})
#define MESSAGES(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
