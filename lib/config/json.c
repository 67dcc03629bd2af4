/* SPDX-License-Identifier: MIT */
/*
 * Reading JSON values with checks: the members of an object against a table
 * of known keys (with "did you mean" for typos), and typed values (integers
 * in a range, seconds, strings, choices, lists of CIDRs) that report what
 * they got instead.
 * Pure: no look-ups on the system.
 */
#include "config/config.h"
#include "config/internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_SECONDS 31536000.0 /* one year: keeps timer arithmetic far from overflow */
#define MAX_MESSAGE 1024       /* one write to a fresh socket never blocks */

/* ---- objects: known keys, duplicates, suggestions --------------------- */

static char fold(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Levenshtein distance, case-insensitive, both strings at most 64 bytes.
 * Once a whole row is above limit the distance can only grow: a value above
 * limit is returned at once, so that a file of many unknown keys stays
 * cheap. */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], least = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (fold(a[i - 1]) != fold(b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
            if (best < least)
                least = best;
        }
        if (least > limit)
            return least;
    }
    return row[lb];
}

const char *psup_config_suggest(const char *unknown, const char *const *known)
{
    size_t lu = strlen(unknown), best_d = SIZE_MAX;
    const char *best = NULL;

    if (lu > 64)
        return NULL;
    for (; *known; known++) {
        size_t lk = strlen(*known);
        size_t limit = lk / 3 > 2 ? lk / 3 : 2;
        if (lk > 64 || (lu > lk ? lu - lk : lk - lu) > limit)
            continue; /* the distance is at least the difference in length */

        /* Close means at most 2 edits, or a third of a long name; and never
         * as many edits as the longer name has letters, which would suggest
         * "as" for "xy". */
        size_t d = edit_distance(unknown, *known, limit);
        if (d <= limit && d < (lu > lk ? lu : lk) && d < best_d) {
            best = *known;
            best_d = d;
        }
    }
    return best;
}

int cfg_key_index(const char *const *names, const char *key)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], key) == 0)
            return i;
    }
    return -1;
}

void cfg_read_fields(struct ctx *c, const cJSON *obj, const char *const *names, struct fields *f)
{
    struct cfg_names seen;
    unsigned ord = 0;

    memset(f, 0, sizeof(*f));
    f->names = names;
    cfg_names_init(&seen);
    for (const cJSON *it = obj->child; it; it = it->next, ord++) {
        bool repeated = cfg_names_add(c, &seen, it->string);
        int k = repeated ? -1 : cfg_key_index(names, it->string);
        const char *hint = k < 0 && !repeated ? psup_config_suggest(it->string, names) : NULL;

        cfg_push_key(c, it->string, ord);
        if (repeated)
            cfg_fail(c, "duplicate key");
        else if (k < 0 && hint)
            cfg_fail(c, "unknown key; did you mean \"%s\"?", hint);
        else if (k < 0)
            cfg_fail(c, "unknown key");
        else {
            f->item[k] = it;
            f->ord[k] = ord;
        }
        cfg_path_pop(c);
    }
    cfg_names_free(&seen);
    f->n_children = ord;
}

/* ---- typed values --------------------------------------------------- */

const char *cfg_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return cJSON_GetArraySize(v) ? "an array" : "an empty array";
    return "an object";
}

const char *cfg_fmt_number(double d, char buf[40])
{
    if (d >= -1e15 && d <= 1e15 && d == (double)(long long)d)
        snprintf(buf, 40, "%lld", (long long)d);
    else
        snprintf(buf, 40, "%g", d);
    return buf;
}

bool cfg_is_integer(double d)
{
    return d >= -9e18 && d <= 9e18 && d == (double)(long long)d;
}

bool cfg_want_int(struct ctx *c, const cJSON *v, long long min, long long max, long long *out)
{
    const char *what = min >= 0 ? "a non-negative integer" : "an integer";
    char num[40];

    if (!cJSON_IsNumber(v)) {
        cfg_fail(c, "expected %s, got %s", what, cfg_type_name(v));
        return false;
    }
    double d = v->valuedouble;
    if (!cfg_is_integer(d) || (min >= 0 && d < 0)) {
        cfg_fail(c, "expected %s, got %s", what, cfg_fmt_number(d, num));
        return false;
    }
    if (d < (double)min || d > (double)max) {
        cfg_fail(c, "must be between %lld and %lld, got %s", min, max, cfg_fmt_number(d, num));
        return false;
    }
    *out = (long long)d;
    return true;
}

bool cfg_want_uint(struct ctx *c, const cJSON *v, unsigned min, unsigned max, unsigned *out)
{
    long long x;

    if (!cfg_want_int(c, v, min, max, &x))
        return false;
    *out = (unsigned)x;
    return true;
}

/* A number in [min, max], or (min, max] when min itself is excluded. */
bool cfg_want_number(struct ctx *c, const cJSON *v, const char *what, double min, bool min_ok,
                 double max, double *out)
{
    char num[40], lim[40];

    if (!cJSON_IsNumber(v)) {
        cfg_fail(c, "expected %s, got %s", what, cfg_type_name(v));
        return false;
    }
    double d = v->valuedouble;
    if (d < min || (d == min && !min_ok)) {
        cfg_fail(c, "must be %s %s, got %s", min_ok ? ">=" : ">", cfg_fmt_number(min, lim),
             cfg_fmt_number(d, num));
        return false;
    }
    if (!(d <= max)) {
        cfg_fail(c, "must be at most %s, got %s", cfg_fmt_number(max, lim), cfg_fmt_number(d, num));
        return false;
    }
    *out = d;
    return true;
}

bool cfg_want_seconds(struct ctx *c, const cJSON *v, bool zero_ok, double *out)
{
    return cfg_want_number(c, v, "a number of seconds", 0, zero_ok, MAX_SECONDS, out);
}

bool cfg_want_string(struct ctx *c, const cJSON *v, bool non_empty, const char **out)
{
    if (!cJSON_IsString(v)) {
        cfg_fail(c, "expected a string, got %s", cfg_type_name(v));
        return false;
    }
    if (non_empty && !v->valuestring[0]) {
        cfg_fail(c, "must not be empty");
        return false;
    }
    *out = v->valuestring;
    return true;
}

bool cfg_want_bool(struct ctx *c, const cJSON *v, bool *out)
{
    if (!cJSON_IsBool(v)) {
        cfg_fail(c, "expected true or false, got %s", cfg_type_name(v));
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* A string out of a fixed list; *out is its index. */
bool cfg_want_choice(struct ctx *c, const cJSON *v, const char *const *choices, int *out)
{
    char list[128];
    size_t n = 0;

    for (int i = 0; choices[i]; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", sep, choices[i]);
    }
    if (cJSON_IsString(v)) {
        int k = cfg_key_index(choices, v->valuestring);
        if (k >= 0) {
            *out = k;
            return true;
        }
        cfg_fail(c, "expected %s, got %s", list, cfg_quote(c, v->valuestring));
        return false;
    }
    cfg_fail(c, "expected %s, got %s", list, cfg_type_name(v));
    return false;
}

void cfg_want_message(struct ctx *c, const cJSON *v, char **out)
{
    const char *s;

    if (!cfg_want_string(c, v, false, &s))
        return;
    if (strlen(s) > MAX_MESSAGE) {
        cfg_fail(c, "must be at most %d bytes, got %zu", MAX_MESSAGE, strlen(s));
        return;
    }
    *out = cfg_xstrdup(c, s);
}

bool cfg_want_array(struct ctx *c, const cJSON *v, const char *what)
{
    if (!cJSON_IsArray(v)) {
        cfg_fail(c, "expected %s, got %s", what, cfg_type_name(v));
        return false;
    }
    if (cJSON_GetArraySize(v) == 0) {
        cfg_fail(c, "expected %s, got an empty array", what);
        return false;
    }
    return true;
}

bool cfg_parse_cidrs(struct ctx *c, const struct fields *f, int k, const char *what,
                     bool allow_empty, struct psup_cidr **out, size_t *n_out)
{
    const cJSON *v = cfg_enter(c, f, k), *el;
    bool ok = true;
    size_t i = 0;

    if (!v)
        return true;
    if (!cJSON_IsArray(v) || (!allow_empty && cJSON_GetArraySize(v) == 0)) {
        cfg_fail(c, "expected %s, got %s", what, cfg_type_name(v));
        cfg_path_pop(c);
        return false;
    }
    *out = cfg_xcalloc(c, (size_t)cJSON_GetArraySize(v), sizeof(**out));
    cJSON_ArrayForEach(el, v) {
        const char *s, *why = NULL;

        cfg_push_index(c, i++);
        if (!cfg_want_string(c, el, false, &s))
            ok = false;
        else if (*out && psup_cidr_parse(s, &(*out)[*n_out], &why) < 0) {
            cfg_fail(c, "invalid CIDR %s: %s", cfg_quote(c, s), why);
            ok = false;
        } else if (*out)
            (*n_out)++;
        cfg_path_pop(c);
    }
    cfg_path_pop(c);
    return ok;
}
