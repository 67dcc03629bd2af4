/* SPDX-License-Identifier: MIT */
/*
 * The JSON writer (json.h).
 */
#include "admin/json.h"

#include <string.h>

void psup_json_init(struct psup_json *j, struct psup_buf *b)
{
    memset(j, 0, sizeof(*j));
    j->b = b;
    j->first[0] = true;
}

/* The comma before a member and its "key":. */
static void member(struct psup_json *j, const char *key)
{
    if (!j->first[j->depth])
        psup_buf_put(j->b, ",", 1);
    j->first[j->depth] = false;
    if (key) {
        psup_buf_put(j->b, "\"", 1);
        psup_buf_put_json(j->b, key, strlen(key));
        psup_buf_put(j->b, "\":", 2);
    }
}

static void open_value(struct psup_json *j, const char *key, const char *bracket)
{
    member(j, key);
    if (j->depth == PSUP_JSON_DEPTH) {
        j->b->failed = true;
        return;
    }
    psup_buf_puts(j->b, bracket);
    j->first[++j->depth] = true;
}

static void close_value(struct psup_json *j, const char *bracket)
{
    if (j->depth > 0)
        j->depth--;
    psup_buf_puts(j->b, bracket);
}

void psup_json_object(struct psup_json *j, const char *key)
{
    open_value(j, key, "{");
}

void psup_json_array(struct psup_json *j, const char *key)
{
    open_value(j, key, "[");
}

void psup_json_end_object(struct psup_json *j)
{
    close_value(j, "}");
}

void psup_json_end_array(struct psup_json *j)
{
    close_value(j, "]");
}

void psup_json_string(struct psup_json *j, const char *key, const char *value)
{
    member(j, key);
    psup_buf_put(j->b, "\"", 1);
    psup_buf_put_json(j->b, value, strlen(value));
    psup_buf_put(j->b, "\"", 1);
}

void psup_json_uint(struct psup_json *j, const char *key, unsigned long long value)
{
    member(j, key);
    psup_buf_printf(j->b, "%llu", value);
}

void psup_json_int(struct psup_json *j, const char *key, long long value)
{
    member(j, key);
    psup_buf_printf(j->b, "%lld", value);
}

void psup_json_secs(struct psup_json *j, const char *key, double value)
{
    member(j, key);
    psup_buf_printf(j->b, "%.3f", value);
}

void psup_json_bool(struct psup_json *j, const char *key, bool value)
{
    member(j, key);
    psup_buf_puts(j->b, value ? "true" : "false");
}

void psup_json_null(struct psup_json *j, const char *key)
{
    member(j, key);
    psup_buf_puts(j->b, "null");
}
