/* SPDX-License-Identifier: MIT */
/*
 * A program whose arguments start with argv[0] (inetd.conf, and xinetd's
 * NAMEINARGS), as a psup command. psup runs command[0] with that same
 * string as argv[0], so a different argv[0] cannot be carried over, except
 * where the program reads it from elsewhere too:
 *
 * - busybox takes the applet's name as its first argument as well;
 * - tcpd runs the program named by its argv[0] after checking
 *   /etc/hosts.allow and /etc/hosts.deny: the program is run directly
 *   (a bare name is in /usr/sbin, Debian's REAL_DAEMON_DIR), and the
 *   rules are reported as not carried over.
 */
#include "import/import_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is(const char *value, const char *text)
{
    return value && strcmp(value, text) == 0;
}

static int push_all(struct psup_import_service *s, char *const *argv, size_t argc)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < argc; i++)
        rc = psup_import_strv_push(&s->command, argv[i]);
    return rc;
}

static int unwrap_tcpd(const struct psup_import_argv0 *a, struct psup_import_service *s)
{
    const char *program = a->argv[0];
    char *path = NULL;

    if (strchr(program, '/'))
        path = strdup(program);
    else if (asprintf(&path, "/usr/sbin/%s", program) < 0)
        path = NULL;
    int rc = psup_import_strv_push_owned(&s->command, path);
    if (rc == 0)
        rc = push_all(s, a->argv + 1, a->argc - 1);
    if (rc == 0)
        rc = psup_import_lost(a->r, a->where, a->name,
                              "tcpd is left out and %s run directly: the rules of "
                              "/etc/hosts.allow and /etc/hosts.deny are not carried over (write "
                              "them as allow and deny)", program);
    return rc;
}

int psup_import_argv0_command(const struct psup_import_argv0 *a, struct psup_import_service *s)
{
    const char *base = psup_import_basename(a->server);
    const char *argv0 = a->argc ? a->argv[0] : NULL;

    if (is(base, "tcpd"))
        return argv0 ? unwrap_tcpd(a, s) : -ENOENT;
    bool same = !argv0 || is(argv0, a->server) || is(argv0, base);
    bool busybox = !same && is(base, "busybox");
    int rc = psup_import_strv_push(&s->command, a->server);
    if (rc == 0 && busybox)
        rc = psup_import_strv_push(&s->command, argv0);
    if (rc == 0 && a->argc > 1)
        rc = push_all(s, a->argv + 1, a->argc - 1);
    if (rc == 0 && busybox)
        rc = psup_import_note(a->r, a->where, a->name,
                              "argv[0] \"%s\": run as \"busybox %s\", which busybox reads the same",
                              argv0, argv0);
    else if (rc == 0 && !same)
        rc = psup_import_lost(a->r, a->where, a->name,
                              "argv[0] \"%s\": psup runs %s with its own path as argv[0]", argv0,
                              a->server);
    return rc;
}
