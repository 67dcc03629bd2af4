/* SPDX-License-Identifier: MIT */
/*
 * A small JSON writer into a struct psup_buf, for /status: objects and
 * arrays with the commas placed for the caller, strings escaped as psup's
 * JSON log records escape them. key is NULL for an array's elements and the
 * outermost value. Nesting deeper than PSUP_JSON_DEPTH fails the buffer.
 */
#ifndef PSUP_ADMIN_JSON_H
#define PSUP_ADMIN_JSON_H

#include <stdbool.h>

#include "base/buf.h"

#define PSUP_JSON_DEPTH 8

struct psup_json {
    struct psup_buf *b;
    unsigned depth;
    bool first[PSUP_JSON_DEPTH + 1]; /* no member written yet at that depth */
};

void psup_json_init(struct psup_json *j, struct psup_buf *b);
void psup_json_object(struct psup_json *j, const char *key);
void psup_json_array(struct psup_json *j, const char *key);
void psup_json_end_object(struct psup_json *j);
void psup_json_end_array(struct psup_json *j);
void psup_json_string(struct psup_json *j, const char *key, const char *value);
void psup_json_uint(struct psup_json *j, const char *key, unsigned long long value);
void psup_json_int(struct psup_json *j, const char *key, long long value);
/* A number with three decimals (seconds with milliseconds). */
void psup_json_secs(struct psup_json *j, const char *key, double value);
void psup_json_bool(struct psup_json *j, const char *key, bool value);
void psup_json_null(struct psup_json *j, const char *key);

#endif
