/* SPDX-License-Identifier: MIT */
/*
 * Small translations both formats need: listen addresses, user and group
 * ids, numbers, and the check that what goes into the JSON is UTF-8.
 */
#include "import/import_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Like psup's own configuration file. */
#define MAX_FILE_SIZE (16u << 20)

char *psup_import_listen_address(const char *host, int family, int port, bool udp)
{
    const char *scheme = udp ? "udp://" : "";
    char *out = NULL;
    int n;

    if (!host || strcmp(host, "*") == 0)
        host = family == 4 ? "0.0.0.0" : family == 6 ? "::" : "*";
    if (strchr(host, ':'))
        n = asprintf(&out, "%s[%s]:%d", scheme, host, port);
    else
        n = asprintf(&out, "%s%s:%d", scheme, host, port);
    return n < 0 ? NULL : out;
}

bool psup_import_listen_ephemeral(const char *address)
{
    size_t n = strlen(address);

    /* Port 0: each such address is a socket of its own (spec/config.md 4.1). */
    return n >= 2 && strcmp(address + n - 2, ":0") == 0;
}

long psup_import_number(const char *text, long max)
{
    long value = 0;

    if (!*text)
        return -1;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (value > (max - (*p - '0')) / 10)
            return -1;
        value = value * 10 + (*p - '0');
    }
    return value;
}

int psup_import_set_id(struct psup_import_id *id, const char *text)
{
    char *copy = strdup(text);

    if (!copy)
        return -ENOMEM;
    free(id->text);
    id->text = copy;
    /* psup reads a quoted number as a name ("no such user"), so a numeric
     * id is written as a JSON number (spec/config.md 4.4). */
    id->numeric = psup_import_number(text, 4294967294L) >= 0;
    return 0;
}

const char *psup_import_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

/* The length of the UTF-8 sequence at p, or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *p)
{
    size_t n;
    unsigned min;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, min = 0x80, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, min = 0x800, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, min = 0x10000, cp = p[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static bool utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = utf8_sequence(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

static bool strv_utf8(const struct psup_import_strv *v, const char **bad)
{
    for (size_t i = 0; i < v->count; i++) {
        if (!utf8(v->items[i])) {
            *bad = v->items[i];
            return false;
        }
    }
    return true;
}

static bool string_utf8(const char *s, const char **bad)
{
    if (s && !utf8(s)) {
        *bad = s;
        return false;
    }
    return true;
}

bool psup_import_service_utf8(const struct psup_import_service *s, const char **bad)
{
    return string_utf8(s->name, bad) && strv_utf8(&s->listen, bad) &&
           strv_utf8(&s->command, bad) && string_utf8(s->command_line, bad) &&
           string_utf8(s->user.text, bad) && string_utf8(s->group.text, bad) &&
           strv_utf8(&s->allow, bad) && strv_utf8(&s->deny, bad) &&
           strv_utf8(&s->env_names, bad) && strv_utf8(&s->env_values, bad) &&
           strv_utf8(&s->pass_env, bad);
}

/* Everything fd holds, NUL-terminated; -errno on failure. */
static int read_all(int fd, char **text)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);

    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len + 1 == cap) {
            char *more = cap < MAX_FILE_SIZE ? realloc(buf, cap * 2) : NULL;
            if (!more) {
                free(buf);
                return cap < MAX_FILE_SIZE ? -ENOMEM : -EFBIG;
            }
            buf = more;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            free(buf);
            return rc;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *text = buf;
    return 0;
}

int psup_import_read_file(const char *path, char **text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else
        rc = read_all(fd, text);
    close(fd);
    return rc;
}
