/* SPDX-License-Identifier: MIT */
/*
 * Reading xinetd configuration files the way xinetd's parser does
 * (src/parse.c, src/parsesup.c, src/includedir.c in xinetd 2.3.15):
 *
 * - a line whose first non-blank character is '#' is a comment, anywhere;
 *   a '#' later in a line is an ordinary character; blank lines are
 *   skipped; there are no continuation lines;
 * - an entry starts with "service NAME" or "defaults" on one line, then a
 *   line holding only "{"; it ends at a line holding only "}";
 * - inside, one attribute a line: NAME, blanks, then "=", "+=" or "-="
 *   (a blank is required before the operator), then values separated by
 *   spaces and tabs;
 * - "include FILE" and "includedir DIR" between entries; includedir reads
 *   the directory's files in strcmp order, skipping names that contain a
 *   dot or end in '~', and anything that is not a regular file.
 *
 * xinetd logs a malformed entry and skips it; an import stops there instead
 * (exit status 2), naming the line and what was expected. Two departures: a
 * carriage return before a newline is dropped (xinetd would keep it in the
 * last value), and a relative include is taken relative to the including
 * file's directory (xinetd opens it relative to its working directory),
 * so that a copied configuration tree imports as a whole.
 */
#include "import/xinetd_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* xinetd nests includes without limit (a loop never ends); an import stops. */
#define MAX_DEPTH 16

struct cursor {
    const char *text;
    size_t pos;
    int line;
    struct psup_import_where where; /* file, file_seq; line of the last line read */
};

static void attr_free(struct xinetd_attr *a)
{
    free(a->name);
    psup_import_strv_clear(&a->values);
    free(a->values.items);
}

static void entry_free(struct xinetd_entry *e)
{
    for (size_t i = 0; i < e->n_attrs; i++)
        attr_free(&e->attrs[i]);
    free(e->attrs);
    free(e->name);
}

void psup_import_xinetd_input_free(struct xinetd_input *in)
{
    for (size_t i = 0; i < in->n_entries; i++)
        entry_free(&in->entries[i]);
    free(in->entries);
    psup_import_strv_clear(&in->files);
    free(in->files.items);
    memset(in, 0, sizeof(*in));
}

/* ------------------------------------------------------------------------ */
/* Lines. */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* The next line that is not blank or a comment, as a new string (NULL at
 * the end); *rc is -ENOMEM if it could not be copied. */
static char *next_line(struct cursor *c, int *rc)
{
    *rc = 0;
    while (c->text[c->pos]) {
        const char *start = c->text + c->pos;
        const char *nl = strchr(start, '\n');
        size_t len = nl ? (size_t)(nl - start) : strlen(start);
        c->pos += len + (nl ? 1 : 0);
        c->where.line = ++c->line;
        if (len && start[len - 1] == '\r')
            len--;
        size_t i = 0;
        while (i < len && blank(start[i]))
            i++;
        if (i == len || start[i] == '#')
            continue;
        char *line = strndup(start, len);
        if (!line)
            *rc = -ENOMEM;
        return line;
    }
    return NULL;
}

/* Whether the line holds exactly one ch and blanks (line_has_only_1_char). */
static bool only_char(const char *line, char ch)
{
    int seen = 0;

    for (const char *p = line; *p; p++) {
        if (*p == ch)
            seen++;
        else if (!blank(*p))
            return false;
    }
    return seen == 1;
}

/* Split text on spaces and tabs into v. */
static int split_words(const char *text, struct psup_import_strv *v)
{
    const char *p = text;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return 0;
        size_t n = strcspn(p, " \t");
        int rc = psup_import_strv_push_owned(v, strndup(p, n));
        if (rc < 0)
            return rc;
        p += n;
    }
}

/* ------------------------------------------------------------------------ */
/* Attribute lines. */

/* "NAME OP VALUES": returns 0, -ENOMEM, or -EINVAL with the reason given. */
static int parse_attribute(struct cursor *c, char *line, struct xinetd_attr *a,
                           struct psup_import_result *r)
{
    char *p = line;

    while (blank(*p))
        p++;
    char *name = p;
    while (*p && !blank(*p) && *p != '=')
        p++;
    size_t name_len = (size_t)(p - name);
    if (*p == '=')
        return psup_import_fail(r, &c->where,
                                "expected a space between the attribute %.*s and \"=\"",
                                (int)name_len, name);
    while (blank(*p))
        p++;
    if (*p == '=') {
        a->op = XINETD_SET;
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] == '=') {
        a->op = *p == '+' ? XINETD_ADD : XINETD_REMOVE;
        p += 2;
    } else {
        return psup_import_fail(r, &c->where, "expected \"=\", \"+=\" or \"-=\" after %.*s",
                                (int)name_len, name);
    }
    a->name = strndup(name, name_len);
    a->where = c->where;
    if (!a->name)
        return -ENOMEM;
    return split_words(p, &a->values);
}

static int add_attribute(struct xinetd_entry *e, struct xinetd_attr *a)
{
    if (e->n_attrs == e->cap_attrs) {
        size_t cap = e->cap_attrs ? e->cap_attrs * 2 : 16;
        struct xinetd_attr *v = realloc(e->attrs, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        e->attrs = v;
        e->cap_attrs = cap;
    }
    e->attrs[e->n_attrs++] = *a;
    return 0;
}

/* The lines between "{" and "}". */
static int read_body(struct cursor *c, struct xinetd_entry *e, struct psup_import_result *r)
{
    const char *what = e->kind == XINETD_DEFAULTS ? "defaults" : e->name;
    int rc;

    for (;;) {
        char *line = next_line(c, &rc);
        if (!line) {
            if (rc < 0)
                return rc;
            return psup_import_fail(r, &e->where, "the entry of %s has no closing \"}\"", what);
        }
        if (only_char(line, '}')) {
            free(line);
            return 0;
        }
        struct xinetd_attr a = {0};
        rc = parse_attribute(c, line, &a, r);
        free(line);
        if (rc == 0)
            rc = add_attribute(e, &a);
        if (rc < 0) {
            attr_free(&a);
            return rc;
        }
    }
}

static int add_entry(struct xinetd_input *in, struct xinetd_entry *e)
{
    if (in->n_entries == in->cap_entries) {
        size_t cap = in->cap_entries ? in->cap_entries * 2 : 16;
        struct xinetd_entry *v = realloc(in->entries, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        in->entries = v;
        in->cap_entries = cap;
    }
    in->entries[in->n_entries++] = *e;
    return 0;
}

/* "service NAME" or "defaults" was read: "{", the body, "}". */
static int read_entry(struct xinetd_input *in, struct cursor *c, enum xinetd_entry_kind kind,
                      const char *name, struct psup_import_result *r)
{
    struct xinetd_entry e = {.kind = kind, .where = c->where};
    int rc;

    if (name && !(e.name = strdup(name)))
        return -ENOMEM;
    char *line = next_line(c, &rc);
    if (!line || !only_char(line, '{')) {
        free(line);
        if (rc == 0 && name)
            rc = psup_import_fail(r, &e.where,
                                  "expected \"{\" alone on the line after \"service %s\"", name);
        else if (rc == 0)
            rc = psup_import_fail(r, &e.where,
                                  "expected \"{\" alone on the line after \"defaults\"");
        entry_free(&e);
        return rc;
    }
    free(line);
    rc = read_body(c, &e, r);
    if (rc == 0)
        rc = add_entry(in, &e);
    if (rc < 0)
        entry_free(&e);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Files and directories. */

static int read_text(struct xinetd_input *in, const char *origin, const char *text,
                     struct psup_import_result *r);

/* path relative to the directory of the file that names it. */
static char *relative_to(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    char *out = NULL;

    if (path[0] == '/' || !slash)
        return strdup(path);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, path) < 0)
        return NULL;
    return out;
}

static int read_file(struct xinetd_input *in, const char *path, const struct psup_import_where *at,
                     struct psup_import_result *r)
{
    char *text = NULL;
    int rc = psup_import_read_file(path, &text);

    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        struct psup_import_where w = at ? *at : (struct psup_import_where){.file = path};
        return psup_import_fail(r, &w, "cannot read %s: %s", path, strerror(-rc));
    }
    rc = read_text(in, path, text, r);
    free(text);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name in the directory but . and .., sorted as xinetd sorts them. */
static int directory_names(DIR *dir, struct psup_import_strv *names)
{
    struct dirent *d;
    int rc = 0;

    errno = 0;
    while (rc == 0 && (d = readdir(dir))) {
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
            rc = psup_import_strv_push(names, d->d_name);
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    if (names->count > 1)
        qsort(names->items, names->count, sizeof(*names->items), compare_names);
    return rc;
}

/* Why includedir passes over a file, or NULL if it reads it. */
static const char *skipped(const char *name, const char *file)
{
    struct stat st;

    if (strchr(name, '.') || name[strlen(name) - 1] == '~')
        return "skipped, as xinetd skips a name with a dot or ending in ~";
    if (stat(file, &st) == 0 && !S_ISREG(st.st_mode))
        return "skipped, as xinetd skips what is not a regular file";
    return NULL;
}

static int read_directory_files(struct xinetd_input *in, const char *path,
                                const struct psup_import_strv *names,
                                struct psup_import_result *r)
{
    for (size_t i = 0; i < names->count; i++) {
        char *file = NULL;
        if (asprintf(&file, "%s/%s", path, names->items[i]) < 0)
            return -ENOMEM;
        const char *why = skipped(names->items[i], file);
        int rc;
        if (why) {
            /* Ordered before the file read next. */
            struct psup_import_where w = {.file = file, .file_seq = in->files.count};
            rc = psup_import_note(r, &w, "includedir", "%s", why);
        } else {
            rc = read_file(in, file, NULL, r);
        }
        free(file);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int read_directory(struct xinetd_input *in, const char *path,
                          const struct psup_import_where *at, struct psup_import_result *r)
{
    DIR *dir = opendir(path);
    struct psup_import_strv names = {0};

    if (!dir) {
        struct psup_import_where w = at ? *at : (struct psup_import_where){.file = path};
        return psup_import_fail(r, &w, "cannot read the directory %s: %s", path, strerror(errno));
    }
    int rc = directory_names(dir, &names);
    closedir(dir);
    if (rc == 0)
        rc = read_directory_files(in, path, &names, r);
    else if (rc != -ENOMEM)
        rc = psup_import_fail(r, at ? at : &(struct psup_import_where){.file = path},
                              "cannot read the directory %s: %s", path, strerror(-rc));
    psup_import_strv_clear(&names);
    free(names.items);
    return rc;
}

/* "include FILE" or "includedir DIR" at c's line. */
static int read_include(struct xinetd_input *in, struct cursor *c, bool dir, const char *arg,
                        struct psup_import_result *r)
{
    if (!arg)
        return psup_import_fail(r, &c->where, "expected a %s after %s", dir ? "directory" : "file",
                                dir ? "includedir" : "include");
    if (in->depth >= MAX_DEPTH)
        return psup_import_fail(r, &c->where, "includes nested more than %d deep (a loop?)",
                                MAX_DEPTH);
    char *path = relative_to(c->where.file, arg);
    if (!path)
        return -ENOMEM;
    in->depth++;
    int rc = dir ? read_directory(in, path, &c->where, r) : read_file(in, path, &c->where, r);
    in->depth--;
    free(path);
    return rc;
}

/* One line between entries. */
static int read_top_line(struct xinetd_input *in, struct cursor *c, char *line,
                         struct psup_import_result *r)
{
    struct psup_import_strv words = {0};
    int rc = split_words(line, &words);

    if (rc < 0)
        goto out;
    const char *keyword = words.count ? words.items[0] : "";
    const char *arg = words.count > 1 ? words.items[1] : NULL;
    if (strcmp(keyword, "service") == 0 && arg)
        rc = read_entry(in, c, XINETD_SERVICE, arg, r);
    else if (strcmp(keyword, "service") == 0)
        rc = psup_import_fail(r, &c->where, "expected a name after service");
    else if (strcmp(keyword, "defaults") == 0)
        rc = read_entry(in, c, XINETD_DEFAULTS, NULL, r);
    else if (strcmp(keyword, "include") == 0 || strcmp(keyword, "includedir") == 0)
        rc = read_include(in, c, strcmp(keyword, "includedir") == 0, arg, r);
    else
        rc = psup_import_fail(r, &c->where,
                              "expected service, defaults, include or includedir, got \"%s\"",
                              keyword);
out:
    psup_import_strv_clear(&words);
    free(words.items);
    return rc;
}

static int read_text(struct xinetd_input *in, const char *origin, const char *text,
                     struct psup_import_result *r)
{
    int rc = psup_import_strv_push(&in->files, origin);

    if (rc < 0)
        return rc;
    struct cursor c = {.text = text};
    c.where.file = in->files.items[in->files.count - 1];
    c.where.file_seq = in->files.count - 1;
    for (;;) {
        char *line = next_line(&c, &rc);
        if (!line)
            return rc;
        rc = read_top_line(in, &c, line, r);
        free(line);
        if (rc < 0)
            return rc;
    }
}

int psup_import_xinetd_read_text(struct xinetd_input *in, const char *origin, const char *text,
                                 struct psup_import_result *r)
{
    return read_text(in, origin, text, r);
}

int psup_import_xinetd_read_path(struct xinetd_input *in, const char *path,
                                 struct psup_import_result *r)
{
    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return read_directory(in, path, NULL, r);
    return read_file(in, path, NULL, r);
}
