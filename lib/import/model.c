/* SPDX-License-Identifier: MIT */
/*
 * What an import builds: the services, the string lists inside them, and
 * the messages with the file and line they are about.
 */
#include "import/import_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void psup_import_result_init(struct psup_import_result *r)
{
    memset(r, 0, sizeof(*r));
}

void psup_import_result_free(struct psup_import_result *r)
{
    for (size_t i = 0; i < r->n_services; i++)
        psup_import_service_free(r->services[i]);
    free(r->services);
    for (size_t i = 0; i < r->n_messages; i++)
        free(r->messages[i].text);
    free(r->messages);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------ */
/* Messages. */

static bool message_exists(const struct psup_import_result *r, const char *text)
{
    for (size_t i = 0; i < r->n_messages; i++)
        if (strcmp(r->messages[i].text, text) == 0)
            return true;
    return false;
}

/* Takes text. */
static int add_message(struct psup_import_result *r, size_t file_seq, int line, char *text)
{
    if (message_exists(r, text)) {
        free(text);
        return 0;
    }
    if (r->n_messages == r->cap_messages) {
        size_t cap = r->cap_messages ? r->cap_messages * 2 : 16;
        struct psup_import_message *m = realloc(r->messages, cap * sizeof(*m));
        if (!m) {
            free(text);
            return -ENOMEM;
        }
        r->messages = m;
        r->cap_messages = cap;
    }
    r->messages[r->n_messages] = (struct psup_import_message){
        .file_seq = file_seq, .line = line, .seq = r->n_messages, .text = text};
    r->n_messages++;
    return 0;
}

static int add_setting_message(struct psup_import_result *r, const struct psup_import_where *w,
                               const char *name, const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static int add_setting_message(struct psup_import_result *r, const struct psup_import_where *w,
                               const char *name, const char *kind, const char *fmt, va_list ap)
{
    char *reason = NULL;
    char *text = NULL;

    if (vasprintf(&reason, fmt, ap) < 0)
        return -ENOMEM;
    int n = w->line > 0 ? asprintf(&text, "%s:%d: %s: %s: %s", w->file, w->line, name, kind, reason)
                        : asprintf(&text, "%s: %s: %s: %s", w->file, name, kind, reason);
    free(reason);
    if (n < 0)
        return -ENOMEM;
    return add_message(r, w->file_seq, w->line, text);
}

int psup_import_lostv(struct psup_import_result *r, const struct psup_import_where *w,
                      const char *name, const char *fmt, va_list ap)
{
    r->lost = true;
    return add_setting_message(r, w, name, "not imported", fmt, ap);
}

int psup_import_lost(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = psup_import_lostv(r, w, name, fmt, ap);
    va_end(ap);
    return rc;
}

int psup_import_note(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = add_setting_message(r, w, name, "note", fmt, ap);
    va_end(ap);
    return rc;
}

int psup_import_fail(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *fmt, ...)
{
    va_list ap;
    char *what = NULL;
    char *text = NULL;

    r->failed = true;
    va_start(ap, fmt);
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    n = w->line > 0 ? asprintf(&text, "%s:%d: %s", w->file, w->line, what)
                    : asprintf(&text, "%s: %s", w->file, what);
    free(what);
    if (n < 0)
        return -ENOMEM;
    int rc = add_message(r, w->file_seq, w->line, text);
    return rc < 0 ? rc : -EINVAL;
}

int psup_import_global(struct psup_import_result *r, bool lost, const char *fmt, ...)
{
    va_list ap;
    char *what = NULL;
    char *text = NULL;

    r->lost = r->lost || lost;
    va_start(ap, fmt);
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    n = asprintf(&text, "psup import: %s", what);
    free(what);
    if (n < 0)
        return -ENOMEM;
    return add_message(r, SIZE_MAX, 0, text);
}

static int compare_messages(const void *a, const void *b)
{
    const struct psup_import_message *x = a, *y = b;

    if (x->file_seq != y->file_seq)
        return x->file_seq < y->file_seq ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void psup_import_sort_messages(struct psup_import_result *r)
{
    if (r->n_messages > 1)
        qsort(r->messages, r->n_messages, sizeof(*r->messages), compare_messages);
}

size_t psup_import_message_count(const struct psup_import_result *r)
{
    return r->n_messages;
}

const char *psup_import_message(const struct psup_import_result *r, size_t i)
{
    return i < r->n_messages ? r->messages[i].text : NULL;
}

/* ------------------------------------------------------------------------ */
/* String lists. */

int psup_import_strv_push_owned(struct psup_import_strv *v, char *s)
{
    if (!s)
        return -ENOMEM;
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        char **items = realloc(v->items, cap * sizeof(*items));
        if (!items) {
            free(s);
            return -ENOMEM;
        }
        v->items = items;
        v->cap = cap;
    }
    v->items[v->count++] = s;
    return 0;
}

int psup_import_strv_push(struct psup_import_strv *v, const char *s)
{
    return psup_import_strv_push_owned(v, strdup(s));
}

int psup_import_strv_find(const struct psup_import_strv *v, const char *s)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->items[i], s) == 0)
            return (int)i;
    return -1;
}

void psup_import_strv_remove(struct psup_import_strv *v, size_t i)
{
    free(v->items[i]);
    memmove(&v->items[i], &v->items[i + 1], (v->count - i - 1) * sizeof(*v->items));
    v->count--;
}

void psup_import_strv_clear(struct psup_import_strv *v)
{
    for (size_t i = 0; i < v->count; i++)
        free(v->items[i]);
    v->count = 0;
}

static void strv_free(struct psup_import_strv *v)
{
    psup_import_strv_clear(v);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

int psup_import_strv_copy(struct psup_import_strv *to, const struct psup_import_strv *from)
{
    psup_import_strv_clear(to);
    for (size_t i = 0; i < from->count; i++) {
        int rc = psup_import_strv_push(to, from->items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Services. */

struct psup_import_service *psup_import_service_new(void)
{
    struct psup_import_service *s = calloc(1, sizeof(*s));

    if (s) {
        s->supplementary_groups = -1;
        s->umask = -1;
    }
    return s;
}

void psup_import_service_free(struct psup_import_service *s)
{
    if (!s)
        return;
    free(s->name);
    strv_free(&s->listen);
    strv_free(&s->command);
    free(s->command_line);
    free(s->user.text);
    free(s->group.text);
    strv_free(&s->allow);
    strv_free(&s->deny);
    strv_free(&s->env_names);
    strv_free(&s->env_values);
    strv_free(&s->pass_env);
    free(s);
}

int psup_import_add_service(struct psup_import_result *r, struct psup_import_service *s)
{
    if (r->n_services == r->cap_services) {
        size_t cap = r->cap_services ? r->cap_services * 2 : 8;
        struct psup_import_service **v = realloc(r->services, cap * sizeof(*v));
        if (!v) {
            psup_import_service_free(s);
            return -ENOMEM;
        }
        r->services = v;
        r->cap_services = cap;
    }
    r->services[r->n_services++] = s;
    return 0;
}

bool psup_import_name_taken(const struct psup_import_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_services; i++)
        if (strcmp(r->services[i]->name, name) == 0)
            return true;
    return false;
}

static bool name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

char *psup_import_service_name(const char *text)
{
    /* psup's names are 1 to 64 characters (spec/config.md 4.1). */
    size_t n = strnlen(text, 64);
    char *name = malloc(n + 2);

    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        name[i] = name_char((unsigned char)text[i]) ? text[i] : '_';
    if (n == 0)
        name[n++] = '_';
    name[n] = '\0';
    return name;
}
