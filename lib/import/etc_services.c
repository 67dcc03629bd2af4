/* SPDX-License-Identifier: MIT */
/*
 * The services database, read from the file itself rather than through
 * getservbyname: the file to read can be named (psup import --services),
 * tests do not depend on the machine's, and a missing file (common in
 * containers) is an error the caller can word, not a silent "unknown".
 *
 * Format (services(5)): "NAME PORT/PROTOCOL [ALIAS...]", '#' to the end of
 * the line is a comment.
 */
#include "import/import_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct psup_import_services_db {
    char *path;
    bool loaded;
    int error;   /* -errno of reading the file, once loaded */
    char *lines; /* the file, one NUL-terminated line after another */
    size_t size;
};

struct psup_import_services_db *psup_import_services_open(const char *path)
{
    struct psup_import_services_db *db = calloc(1, sizeof(*db));

    if (!db)
        return NULL;
    db->path = strdup(path ? path : "/etc/services");
    if (!db->path) {
        free(db);
        return NULL;
    }
    return db;
}

void psup_import_services_close(struct psup_import_services_db *db)
{
    if (!db)
        return;
    free(db->path);
    free(db->lines);
    free(db);
}

const char *psup_import_services_path(const struct psup_import_services_db *db)
{
    return db->path;
}

static int load(struct psup_import_services_db *db)
{
    FILE *f = fopen(db->path, "re");
    size_t cap = 0;

    if (!f)
        return -errno;
    /* getdelim over the whole file; lines are split at lookup. */
    errno = 0;
    ssize_t n = getdelim(&db->lines, &cap, '\0', f);
    int rc = ferror(f) ? -(errno ? errno : EIO) : 0;
    fclose(f);
    if (rc < 0)
        return rc;
    db->size = n < 0 ? 0 : (size_t)n;
    return 0;
}

/* Whether the line (up to end) declares name for proto; *port if so. */
static bool line_matches(char *line, const char *name, const char *proto, int *port)
{
    char *hash = strchr(line, '#');
    char *save = NULL;

    if (hash)
        *hash = '\0';
    char *first = strtok_r(line, " \t\r", &save);
    char *port_proto = first ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *slash = port_proto ? strchr(port_proto, '/') : NULL;
    if (!slash || strcmp(slash + 1, proto) != 0)
        return false;
    *slash = '\0';
    long value = psup_import_number(port_proto, 65535);
    if (value < 0)
        return false;
    for (char *alias = first; alias; alias = strtok_r(NULL, " \t\r", &save)) {
        if (strcmp(alias, name) == 0) {
            *port = (int)value;
            return true;
        }
    }
    return false;
}

int psup_import_services_lookup(struct psup_import_services_db *db, const char *name,
                                const char *proto, int *port)
{
    if (!db->loaded) {
        db->error = load(db);
        db->loaded = true;
    }
    if (db->error < 0)
        return db->error;
    size_t start = 0;
    while (start < db->size) {
        size_t end = start;
        while (end < db->size && db->lines[end] != '\n')
            end++;
        char *line = strndup(db->lines + start, end - start);
        if (!line)
            return -ENOMEM;
        bool found = line_matches(line, name, proto, port);
        free(line);
        if (found)
            return 0;
        start = end + 1;
    }
    return 1;
}
