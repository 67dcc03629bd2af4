/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader's bottom layer: the JSON path being read, the
 * problems found (each with its path, put in document order at the end,
 * whatever order the checks ran in), and allocation that records failure
 * instead of returning it. Calls nothing else of the loader.
 */
#include "config/internal.h"

#include "base/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One problem, kept with the position of its JSON node (the index of each
 * key or element on the way down) so that the list can be put in document
 * order at the end, whatever order the checks ran in. */
struct problem {
    unsigned ord[MAX_DEPTH];
    unsigned depth;
    size_t seq;
    char *text;
};

/* ---- text that is safe to print ----------------------------------------- */

/* The escape for one byte that must not be printed as is: JSON's own for
 * control characters, \xNN for a byte that is not UTF-8 (JSON has none). */
static size_t escape_byte(unsigned char ch, bool valid, char out[7])
{
    static const char hex[] = "0123456789abcdef";
    const char *named = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : NULL;

    if (named)
        return (size_t)snprintf(out, 7, "%s", named);
    if (!valid)
        return (size_t)snprintf(out, 7, "\\x%c%c", hex[ch >> 4], hex[ch & 15]);
    return (size_t)snprintf(out, 7, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
}

/* Copy the next character of s (n bytes left) to out: as is, or escaped
 * when it is a control character, not UTF-8, or (with json) a quote or a
 * backslash. Returns the bytes of s used; *w is how many were written. */
static size_t safe_char(const char *s, size_t n, bool json, char out[7], size_t *w)
{
    unsigned char ch = (unsigned char)s[0];
    size_t len = psup_utf8_len((const unsigned char *)s, n);

    if (len == 0 || ch < 0x20 || ch == 0x7f) {
        *w = escape_byte(ch, len != 0, out);
        return 1;
    }
    if (json && (ch == '"' || ch == '\\')) {
        out[0] = '\\';
        out[1] = (char)ch;
        *w = 2;
        return 1;
    }
    memcpy(out, s, len);
    *w = len;
    return len;
}

void cfg_json_string(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0, w;
    bool cut = false;
    char one[7];

    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        size_t used = safe_char(s + i, n - i, true, one, &w);
        if (o + w + sizeof("\"...") > size) {
            cut = true;
            break;
        }
        memcpy(out + o, one, w);
        o += w;
        i += used;
    }
    memcpy(out + o, cut ? "\"..." : "\"", cut ? sizeof("\"...") : sizeof("\""));
}

const char *cfg_quote(struct ctx *c, const char *s)
{
    char *out = c->quoted[c->next_quote++ % 2];

    cfg_json_string(s, strlen(s), out, CFG_QUOTE_MAX);
    return out;
}

char *cfg_printable(const char *s)
{
    size_t n = strlen(s), o = 0, w;
    char *out = malloc(6 * n + 1), one[7];

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        i += safe_char(s + i, n - i, false, one, &w);
        memcpy(out + o, one, w);
        o += w;
    }
    out[o] = '\0';
    return out;
}

/* ---- paths and problems ------------------------------------------------ */

static void path_push(struct ctx *c, unsigned ord, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_push(struct ctx *c, unsigned ord, const char *fmt, ...)
{
    size_t len = c->path_len[c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH];
    va_list ap;

    if (c->depth < MAX_DEPTH)
        c->ord[c->depth] = ord;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + len, sizeof(c->path) - len, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len >= sizeof(c->path))
        len = sizeof(c->path) - 1;
    c->depth++;
    if (c->depth <= MAX_DEPTH)
        c->path_len[c->depth] = len;
}

void cfg_path_pop(struct ctx *c)
{
    c->depth--;
    c->path[c->path_len[c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH]] = '\0';
}

static bool plain_key(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '$'))
            return false;
    }
    return true;
}

/* A key is written .name, or ["..."] when it holds other characters, so a
 * path stays unambiguous whatever the file contains. */
void cfg_push_key_n(struct ctx *c, const char *name, size_t len, unsigned ord)
{
    char quoted[CFG_QUOTE_MAX];

    if (plain_key(name, len)) {
        path_push(c, ord, "%s%.*s", c->depth ? "." : "", (int)len, name);
        return;
    }
    cfg_json_string(name, len, quoted, sizeof(quoted));
    path_push(c, ord, "[%s]", quoted);
}

void cfg_push_key(struct ctx *c, const char *name, unsigned ord)
{
    cfg_push_key_n(c, name, strlen(name), ord);
}

void cfg_push_index(struct ctx *c, size_t i)
{
    path_push(c, (unsigned)i, "[%zu]", i);
}

static void add_problem(struct ctx *c, char *text)
{
    if (c->n_problems >= CFG_MAX_PROBLEMS) {
        c->stopped = true;
        free(text);
        return;
    }
    if (c->n_problems == c->cap_problems) {
        size_t cap = c->cap_problems ? 2 * c->cap_problems : 16;
        struct problem *p = realloc(c->problems, cap * sizeof(*p));
        if (!p) {
            free(text);
            c->oom = true;
            return;
        }
        c->problems = p;
        c->cap_problems = cap;
    }

    struct problem *p = &c->problems[c->n_problems];
    p->depth = c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH;
    memcpy(p->ord, c->ord, sizeof(p->ord));
    p->seq = c->n_problems++;
    p->text = text;
}

/* Format the message and add it at the current path (fail's contract is in
 * internal.h). */
static void vfail(struct ctx *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vfail(struct ctx *c, const char *fmt, va_list ap)
{
    char *msg = NULL, *text = NULL, *safe = NULL;

    if (c->n_problems >= CFG_MAX_PROBLEMS) {
        c->stopped = true;
        return;
    }

    int n = vasprintf(&msg, fmt, ap);

    if (n < 0 || asprintf(&text, "%s: %s", c->depth ? c->path : c->origin, msg) < 0) {
        free(msg);
        c->oom = true;
        return;
    }
    free(msg);
    /* Values are quoted with escapes where they are formatted; this also
     * catches what is printed bare (paths, the origin): no problem may put
     * a control character or a byte that is not UTF-8 on a terminal. */
    safe = cfg_printable(text);
    free(text);
    if (!safe) {
        c->oom = true;
        return;
    }
    add_problem(c, safe);
}

void cfg_fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
}

const cJSON *cfg_enter(struct ctx *c, const struct fields *f, int k)
{
    if (!f->item[k])
        return NULL;
    cfg_push_key(c, f->names[k], f->ord[k]);
    return f->item[k];
}

void cfg_fail_at(struct ctx *c, const struct fields *f, int k, const char *fmt, ...)
{
    va_list ap;

    cfg_push_key(c, f->names[k], f->item[k] ? f->ord[k] : f->n_children);
    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
    cfg_path_pop(c);
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem *p = a, *q = b;
    unsigned n = p->depth < q->depth ? p->depth : q->depth;

    for (unsigned i = 0; i < n; i++) {
        if (p->ord[i] != q->ord[i])
            return p->ord[i] < q->ord[i] ? -1 : 1;
    }
    if (p->depth != q->depth)
        return p->depth < q->depth ? -1 : 1;
    return p->seq < q->seq ? -1 : p->seq > q->seq;
}

bool cfg_stopped(const struct ctx *c)
{
    return c->stopped;
}

void cfg_drop_problems(struct ctx *c, size_t keep)
{
    while (c->n_problems > keep)
        free(c->problems[--c->n_problems].text);
    c->stopped = false;
}

/* Move the problems, sorted into document order, to the caller's list.
 * Returns how many there were. */
size_t cfg_flush_problems(struct ctx *c, struct psup_diag *diag)
{
    size_t n = c->n_problems;

    if (n)
        qsort(c->problems, n, sizeof(*c->problems), problem_cmp);
    for (size_t i = 0; i < n; i++) {
        psup_diag_addf(diag, "%s", c->problems[i].text);
        free(c->problems[i].text);
    }
    if (c->stopped)
        psup_diag_addf(diag, "%s: more problems not checked: psup stops after %d", c->origin,
                       CFG_MAX_PROBLEMS);
    if (c->oom) {
        psup_diag_addf(diag, "%s: out of memory while loading the configuration", c->origin);
        n++;
    }
    free(c->problems);
    c->problems = NULL;
    c->n_problems = 0;
    return n;
}

/* ---- allocation that records failure instead of returning it ---------- */

void *cfg_xcalloc(struct ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p)
        c->oom = true;
    return p;
}

char *cfg_xstrdup(struct ctx *c, const char *s)
{
    char *p = strdup(s);

    if (!p)
        c->oom = true;
    return p;
}

char *cfg_xasprintf(struct ctx *c, const char *fmt, ...)
{
    char *p = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->oom = true;
        return NULL;
    }
    return p;
}

