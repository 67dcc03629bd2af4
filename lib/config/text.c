/* SPDX-License-Identifier: MIT */
/*
 * The raw text of a configuration file, read once more after cJSON parsed
 * it, for what cJSON lets through and RFC 8259 does not: white space other
 * than space, tab, CR and LF (cJSON skips every byte up to 0x20); numbers
 * such as 01 or 1.; and in strings, raw control characters, bytes that are
 * not UTF-8, and \u0000, at which cJSON's C strings end: "root\u0000x"
 * would be used as "root". Problems in strings are named by JSON path, like
 * every other problem; the path is built only when there is one to report.
 */
#include "config/internal.h"

#include "base/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One object or array open around the current position. */
struct frame {
    bool object;
    unsigned n;      /* members or elements begun */
    const char *key; /* an object's current key, raw (escapes not undone) */
    size_t key_len;
};

struct scan {
    struct ctx *c;
    const char *text, *p, *end;
    const char *line_start;
    unsigned line;
    struct frame *stack;
    size_t depth, cap;
    bool in_key; /* the string being read is a member's key */
};

void cfg_fail_syntax(struct ctx *c, const char *text, const char *at)
{
    unsigned line = 1, col = 1;

    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    cfg_fail(c, "invalid JSON at line %u, column %u", line, col);
}

/* ---- the path, built when a problem is reported --------------------------- */

static unsigned hex4(const char *p)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v = v << 4 | (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The value of a raw key (escapes undone) into out, cut to size: enough to
 * name it in a path. Every byte is kept, NUL and invalid ones too (the path
 * escapes them). cJSON checked the escapes, surrogate pairs included. */
static size_t decode_key(const char *raw, size_t n, char *out, size_t size)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t o = 0;

    for (size_t i = 0; i < n && o + 4 < size;) {
        if (raw[i] != '\\' || i + 1 >= n) {
            out[o++] = raw[i++];
            continue;
        }
        const char *e = strchr(from, raw[i + 1]);
        if (raw[i + 1] != 'u' || i + 6 > n) {
            out[o++] = e ? to[e - from] : raw[i + 1];
            i += 2;
            continue;
        }
        unsigned cp = hex4(raw + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n && raw[i] == '\\' && raw[i + 1] == 'u') {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(raw + i + 2) - 0xdc00);
            i += 6;
        }
        o += put_utf8(cp, out + o);
    }
    return o;
}

/* Report at the current path: each open object's current key, each open
 * array's current element. */
static void report(struct scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct scan *s, const char *fmt, ...)
{
    char msg[256], name[CFG_QUOTE_MAX];
    va_list ap;

    if (cfg_stopped(s->c))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < s->depth; i++) {
        const struct frame *f = &s->stack[i];
        if (f->object)
            cfg_push_key_n(s->c, name, decode_key(f->key, f->key_len, name, sizeof(name)),
                           f->n - 1);
        else
            cfg_push_index(s->c, f->n - 1);
    }
    cfg_fail(s->c, "%s", msg);
    for (size_t i = 0; i < s->depth; i++)
        cfg_path_pop(s->c);
}

/* ---- strings -------------------------------------------------------------- */

static void newline(struct scan *s, const char *at)
{
    s->line++;
    s->line_start = at + 1;
}

static unsigned column(const struct scan *s, const char *at)
{
    return (unsigned)(at - s->line_start) + 1;
}

/* The closing quote of the string whose text begins at q. */
static const char *string_end(const char *q, const char *end)
{
    while (q < end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    return q < end ? q : end;
}

/* The first problem of the string from q to its closing quote at close, if
 * any; the position is still counted to the end. */
static void check_string(struct scan *s, const char *q, const char *close)
{
    const char *what = s->in_key ? " in the key" : "";
    bool reported = false;

    while (q < close) {
        unsigned char b = (unsigned char)*q;
        size_t len = b < 0x80 ? 1 : psup_utf8_len((const unsigned char *)q, (size_t)(close - q));

        if (b == '\\') {
            if (!reported && q[1] == 'u' && close - q >= 6 && memcmp(q + 2, "0000", 4) == 0) {
                report(s, "contains \\u0000, which would cut the %s short",
                       s->in_key ? "key" : "string");
                reported = true;
            }
            q += q[1] == 'u' ? 6 : 2;
            continue;
        }
        if (b < 0x20 && !reported) {
            report(s, "unescaped control character U+%04X%s at line %u, column %u (write "
                   "\\u%04x)", b, what, s->line, column(s, q), b);
            reported = true;
        } else if (len == 0 && !reported) {
            report(s, "invalid UTF-8%s (byte 0x%02X) at line %u, column %u", what, b, s->line,
                   column(s, q));
            reported = true;
        }
        if (b == '\n')
            newline(s, q);
        q += len ? len : 1;
    }
}

static bool push_frame(struct scan *s, bool object)
{
    if (s->depth == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct frame *f = realloc(s->stack, cap * sizeof(*f));
        if (!f) {
            s->c->oom = true;
            return false;
        }
        s->stack = f;
        s->cap = cap;
    }
    s->stack[s->depth++] = (struct frame){.object = object};
    return true;
}

static struct frame *top(struct scan *s)
{
    return s->depth ? &s->stack[s->depth - 1] : NULL;
}

/* A value begins: in an array, it is the next element. */
static void begin_value(struct scan *s)
{
    struct frame *f = top(s);

    if (f && !f->object)
        f->n++;
}

/* A string: a member's key when an object expects one (after { or ,). */
static void scan_string(struct scan *s, bool *expect_key)
{
    const char *q = s->p + 1, *close = string_end(q, s->end);
    struct frame *f = top(s);

    s->in_key = f && f->object && *expect_key;
    if (s->in_key) {
        f->n++;
        f->key = q;
        f->key_len = (size_t)(close - q);
        *expect_key = false;
    } else {
        begin_value(s);
    }
    check_string(s, q, close);
    s->p = close + 1;
}

/* ---- numbers and the rest ------------------------------------------------- */

static bool digit(const char *q, const char *end)
{
    return q < end && *q >= '0' && *q <= '9';
}

/* RFC 8259's number at q: where it ends, or the first byte that is wrong
 * (*ok false). cJSON also reads 01, -01, 1. and 1.e5. */
static const char *rfc_number(const char *q, const char *end, bool *ok)
{
    *ok = false;
    if (q < end && *q == '-')
        q++;
    if (q < end && *q == '0')
        q++; /* a digit after a leading 0 is wrong: found below */
    else if (!digit(q, end))
        return q;
    else
        while (digit(q, end))
            q++;
    if (q < end && *q == '.') {
        if (!digit(++q, end))
            return q;
        while (digit(q, end))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (!digit(q, end))
            return q;
        while (digit(q, end))
            q++;
    }
    *ok = !(q < end && *q != '\0' && strchr("0123456789+-.eE", *q));
    return q;
}

/* One token at s->p. Returns false at a syntax error (s->p names it). */
static bool scan_token(struct scan *s, bool *expect_key)
{
    char ch = *s->p;
    bool ok = true;

    switch (ch) {
    case ' ': case '\t': case '\r':
        s->p++;
        return true;
    case '\n':
        newline(s, s->p++);
        return true;
    case '{': case '[':
        begin_value(s);
        *expect_key = ch == '{';
        s->p++;
        return push_frame(s, ch == '{');
    case '}': case ']':
        s->depth -= s->depth > 0; /* cJSON checked that brackets match */
        s->p++;
        return true;
    case ',':
        *expect_key = top(s) && top(s)->object;
        s->p++;
        return true;
    case ':':
        s->p++;
        return true;
    case '"':
        scan_string(s, expect_key);
        return true;
    case 't': case 'f': case 'n':
        begin_value(s);
        while (s->p < s->end && *s->p >= 'a' && *s->p <= 'z')
            s->p++;
        return true;
    default:
        break;
    }
    if (ch != '-' && (ch < '0' || ch > '9'))
        return false; /* white space that cJSON skips and RFC 8259 does not allow */
    begin_value(s);
    s->p = rfc_number(s->p, s->end, &ok);
    return ok;
}

bool cfg_check_text(struct ctx *c, const char *text, size_t len)
{
    struct scan s = {.c = c, .text = text, .p = text, .end = text + len, .line_start = text,
                     .line = 1};
    size_t before = c->n_problems;
    bool expect_key = false;

    while (s.p < s.end && !c->oom) {
        if (!scan_token(&s, &expect_key)) {
            /* Not JSON: that is the only problem, as for cJSON's own. */
            cfg_drop_problems(c, before);
            cfg_fail_syntax(c, text, s.p);
            break;
        }
    }
    free(s.stack);
    return c->n_problems == before && !c->oom;
}
