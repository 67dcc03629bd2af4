/* SPDX-License-Identifier: MIT */
/*
 * The endpoint's JSON as psup ctl's text (render.h). Fields a document
 * lacks are shown as "-", so that an older or newer psup still gives a
 * table.
 */
#include "ctl/render.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; on allocation failure it stays NULL. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (t->len + (size_t)n + 1 > cap)
            cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static char *finish(struct text *t)
{
    if (t->failed || !t->s) {
        free(t->s);
        return NULL;
    }
    return t->s;
}

static const cJSON *field(const cJSON *obj, const char *path)
{
    char name[64];

    /* "a.b.c": members of members. */
    while (obj && *path) {
        size_t n = strcspn(path, ".");
        snprintf(name, sizeof(name), "%.*s", (int)n, path);
        obj = cJSON_GetObjectItemCaseSensitive(obj, name);
        path += n + (path[n] == '.');
    }
    return obj;
}

static const char *str(const cJSON *obj, const char *path, const char *fallback)
{
    const cJSON *v = field(obj, path);

    return cJSON_IsString(v) ? v->valuestring : fallback;
}

/* A count as text ("-" if it is missing). */
static const char *num(const cJSON *obj, const char *path, char buf[32])
{
    const cJSON *v = field(obj, path);

    if (!cJSON_IsNumber(v))
        return "-";
    snprintf(buf, 32, "%.0f", v->valuedouble);
    return buf;
}

static double sum_members(const cJSON *obj)
{
    double total = 0;
    const cJSON *v;

    cJSON_ArrayForEach(v, obj)
        total += cJSON_IsNumber(v) ? v->valuedouble : 0;
    return total;
}

/* "1d02h", "3h04m", "5m06s", "7s". */
static void duration(double secs, char buf[32])
{
    unsigned long long s = secs > 0 ? (unsigned long long)secs : 0;

    if (s >= 86400)
        snprintf(buf, 32, "%llud%02lluh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, 32, "%lluh%02llum", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, 32, "%llum%02llus", s / 60, s % 60);
    else
        snprintf(buf, 32, "%llus", s);
}

#define COLUMNS 9

static const char *const headings[COLUMNS] = {
    "SERVICE", "STATE", "IDLE", "BUSY", "MAX", "ACCEPTED", "REFUSED", "FAILURES", "LISTEN",
};

/* The cells of one service's row (each at most 256 bytes). */
static void service_row(const cJSON *svc, char cells[COLUMNS][256])
{
    char n[32];
    const cJSON *v;
    size_t used = 0;

    snprintf(cells[0], 256, "%s", str(svc, "name", "?"));
    const cJSON *paused = field(svc, "paused");
    snprintf(cells[1], 256, "%s", cJSON_IsTrue(paused) ? "paused" : str(svc, "state", "-"));
    snprintf(cells[2], 256, "%s", num(svc, "pool.idle", n));
    snprintf(cells[3], 256, "%s", num(svc, "pool.busy", n));
    snprintf(cells[4], 256, "%s", num(svc, "pool.max_workers", n));
    snprintf(cells[5], 256, "%s", num(svc, "counters.accepted", n));
    const cJSON *refused = field(svc, "counters.refused");
    snprintf(cells[6], 256, "%.0f", sum_members(refused));
    if (!cJSON_IsObject(refused))
        snprintf(cells[6], 256, "-");
    snprintf(cells[7], 256, "%s", num(svc, "counters.worker_failures", n));
    cells[8][0] = '\0';
    cJSON_ArrayForEach(v, field(svc, "listeners")) {
        if (!cJSON_IsString(v) || used >= 255)
            continue;
        int k = snprintf(cells[8] + used, 256 - used, "%s%s", used ? "," : "", v->valuestring);
        used = k < 0 ? used : used + (size_t)k;
    }
}

static void status_header(struct text *t, const cJSON *doc)
{
    char n[32], up[32];
    const cJSON *ready = field(doc, "ready");
    const cJSON *uptime = field(doc, "uptime");

    duration(cJSON_IsNumber(uptime) ? uptime->valuedouble : 0, up);
    put(t, "psup %s, pid %s, up %s, %s, %s\n", str(doc, "version", "?"), num(doc, "pid", n), up,
        str(doc, "state", "?"), cJSON_IsTrue(ready) ? "ready" : "not ready");
    const cJSON *last = field(doc, "last_reload");
    put(t, "config %s, last reload %s%s%s\n\n", str(doc, "config", "?"),
        cJSON_IsObject(last) ? str(last, "time", "?") : "none",
        cJSON_IsObject(last) ? " " : "", cJSON_IsObject(last) ? str(last, "result", "?") : "");
}

/* Every row, each cell padded to its column's width (numbers right). */
static void put_table(struct text *t, char (*rows)[COLUMNS][256], size_t n)
{
    size_t width[COLUMNS];

    for (int c = 0; c < COLUMNS; c++) {
        width[c] = strlen(headings[c]);
        for (size_t r = 0; r < n; r++)
            width[c] = strlen(rows[r][c]) > width[c] ? strlen(rows[r][c]) : width[c];
    }
    for (size_t r = 0; r <= n; r++) {
        for (int c = 0; c < COLUMNS; c++) {
            const char *cell = r == 0 ? headings[c] : rows[r - 1][c];
            bool right = c >= 2 && c <= 7;
            if (c == COLUMNS - 1)
                put(t, "%s\n", cell);
            else
                put(t, right ? "%*s  " : "%-*s  ", (int)width[c], cell);
        }
    }
}

char *psup_ctl_render_status(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    struct text t = {0};
    const cJSON *services = field(doc, "services"), *svc;

    if (!cJSON_IsObject(doc) || !cJSON_IsArray(services)) {
        cJSON_Delete(doc);
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(services), r = 0;
    char(*rows)[COLUMNS][256] = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        cJSON_Delete(doc);
        return NULL;
    }
    status_header(&t, doc);
    cJSON_ArrayForEach(svc, services)
        service_row(svc, rows[r++]);
    put_table(&t, rows, n);
    free(rows);
    cJSON_Delete(doc);
    return finish(&t);
}

static void put_names(struct text *t, const char *what, const cJSON *names)
{
    const cJSON *v;
    bool first = true;

    if (!cJSON_GetArraySize(names))
        return;
    put(t, "%s: ", what);
    cJSON_ArrayForEach(v, names) {
        if (cJSON_IsString(v))
            put(t, "%s%s", first ? "" : ", ", v->valuestring);
        first = false;
    }
    put(t, "\n");
}

char *psup_ctl_render_reload(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    struct text t = {0};
    const char *result = str(doc, "result", NULL);
    const cJSON *v;
    char n[32];

    if (!result) {
        cJSON_Delete(doc);
        return NULL;
    }
    if (strcmp(result, "ok") == 0) {
        put(&t, "reloaded %s\n", str(doc, "config", ""));
        put_names(&t, "added", field(doc, "added"));
        put_names(&t, "removed", field(doc, "removed"));
        put_names(&t, "changed", field(doc, "changed"));
        put(&t, "unchanged: %s\n", num(doc, "unchanged", n));
    } else if (strcmp(result, "invalid") == 0) {
        put(&t, "%s is invalid; psup runs on with its configuration:\n", str(doc, "config", "the file"));
        cJSON_ArrayForEach(v, field(doc, "problems"))
            if (cJSON_IsString(v))
                put(&t, "%s\n", v->valuestring);
    } else {
        put(&t, "reload failed: %s\n", str(doc, "error", result));
    }
    cJSON_Delete(doc);
    return finish(&t);
}

char *psup_ctl_render_control(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    struct text t = {0};
    const char *name = str(doc, "service", NULL);
    const cJSON *paused = field(doc, "paused"), *pool = field(doc, "pool");
    char a[32], b[32], c[32];

    if (name && cJSON_IsObject(pool)) {
        put(&t, "%s: min_spare %s, max_spare %s, max_workers %s until the next reload\n", name,
            num(pool, "min_spare", a), num(pool, "max_spare", b), num(pool, "max_workers", c));
    } else if (name && cJSON_IsBool(paused)) {
        bool changed = cJSON_IsTrue(field(doc, "changed"));
        put(&t, "%s: %s%s\n", name, changed ? "" : "already ",
            cJSON_IsTrue(paused) ? "paused" : "serving");
    }
    cJSON_Delete(doc);
    return name ? finish(&t) : (free(t.s), NULL);
}

/* A text answer's lines joined by ": " ("403 Forbidden: control requests
 * are taken on unix: admin listeners only"), at most 500 bytes. */
static void put_text_lines(struct text *t, const char *body)
{
    size_t total = 0;

    while (*body && total < 500) {
        size_t line = strcspn(body, "\r\n");
        if (line) {
            if (total > 500 - line)
                line = 500 - total;
            put(t, "%s%.*s", total ? ": " : "", (int)line, body);
            total += line;
        }
        body += line;
        body += strspn(body, "\r\n");
    }
}

char *psup_ctl_render_error(int status, const char *content_type, const char *body)
{
    struct text t = {0};
    cJSON *doc = strncmp(content_type, "application/json", 16) == 0 ? cJSON_Parse(body) : NULL;
    const char *why = str(doc, "error", NULL);

    if (why)
        put(&t, "%d: %s", status, why);
    else if (!doc && strncmp(content_type, "text/plain", 10) == 0 && *body)
        put_text_lines(&t, body);
    else
        put(&t, "HTTP status %d", status);
    cJSON_Delete(doc);
    return finish(&t);
}
