/* SPDX-License-Identifier: MIT */
/*
 * The imported configuration as JSON for people: keys in the order a
 * reader looks for them (what the service is, where it listens, what it
 * runs, as whom, under which limits), two spaces a level, objects one key
 * a line, arrays of strings on one line. Only what was set is written, so
 * psup's defaults stay defaults.
 *
 * Written by hand rather than with cJSON, which has no such layout; the
 * strings were checked for UTF-8 before (psup_import_service_utf8).
 */
#include "import/import_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

/* The layout state of the object being written: its indentation and
 * whether a key was written already (a comma goes before the next). */
struct object {
    FILE *out;
    int indent;
    bool any;
};

static void string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void key(struct object *o, const char *name)
{
    fprintf(o->out, "%s\n%*s", o->any ? "," : "", o->indent, "");
    o->any = true;
    string(o->out, name);
    fputs(": ", o->out);
}

static struct object open_object(struct object *parent)
{
    fputc('{', parent->out);
    return (struct object){.out = parent->out, .indent = parent->indent + 2};
}

static void close_object(struct object *o)
{
    fprintf(o->out, "\n%*s}", o->indent - 2, "");
}

static void key_string(struct object *o, const char *name, const char *value)
{
    key(o, name);
    string(o->out, value);
}

static void key_long(struct object *o, const char *name, long value)
{
    key(o, name);
    fprintf(o->out, "%ld", value);
}

static void key_bool(struct object *o, const char *name, bool value)
{
    key(o, name);
    fputs(value ? "true" : "false", o->out);
}

static void key_strings(struct object *o, const char *name, const struct psup_import_strv *v)
{
    key(o, name);
    fputc('[', o->out);
    for (size_t i = 0; i < v->count; i++) {
        if (i)
            fputs(", ", o->out);
        string(o->out, v->items[i]);
    }
    fputc(']', o->out);
}

static void key_id(struct object *o, const char *name, const struct psup_import_id *id)
{
    if (!id->text)
        return;
    key(o, name);
    if (id->numeric)
        fputs(id->text, o->out);
    else
        string(o->out, id->text);
}

static void pool(struct object *o, const struct psup_import_service *s)
{
    if (s->max_workers <= 0)
        return;
    key(o, "pool");
    struct object p = open_object(o);
    key_long(&p, "max_workers", s->max_workers);
    close_object(&p);
}

static void env(struct object *o, const struct psup_import_service *s)
{
    if (s->env_names.count == 0)
        return;
    key(o, "env");
    struct object e = open_object(o);
    for (size_t i = 0; i < s->env_names.count; i++)
        key_string(&e, s->env_names.items[i], s->env_values.items[i]);
    close_object(&e);
}

static void rlimits(struct object *o, const struct psup_import_service *s)
{
    static const char *const names[PSUP_IMPORT_RLIMIT_COUNT] = {"as", "cpu", "data", "nofile",
                                                               "stack"};
    struct object r = {.out = o->out};
    bool open = false;

    for (int i = 0; i < PSUP_IMPORT_RLIMIT_COUNT; i++) {
        const struct psup_import_limit *l = &s->rlimits[i];
        if (!l->set)
            continue;
        if (!open) {
            key(o, "rlimits");
            r = open_object(o);
            open = true;
        }
        key(&r, names[i]);
        if (l->unlimited)
            string(r.out, "unlimited");
        else
            fprintf(r.out, "%" PRIu64, l->value);
    }
    if (open)
        close_object(&r);
}

static void limits(struct object *o, const struct psup_import_service *s)
{
    pool(o, s);
    if (s->reject_overload)
        key_string(o, "on_overload", "reject");
    if (s->max_per_source > 0)
        key_long(o, "max_per_source", s->max_per_source);
    if (s->rate > 0) {
        key(o, "rate");
        fprintf(o->out, "%.6g", s->rate);
    }
    if (s->rate_burst > 0)
        key_long(o, "rate_burst", s->rate_burst);
    if (s->allow.count)
        key_strings(o, "allow", &s->allow);
    if (s->deny.count)
        key_strings(o, "deny", &s->deny);
}

static void process(struct object *o, const struct psup_import_service *s)
{
    key_id(o, "user", &s->user);
    key_id(o, "group", &s->group);
    if (s->supplementary_groups >= 0)
        key_bool(o, "supplementary_groups", s->supplementary_groups);
    env(o, s);
    if (s->clear_env)
        key_bool(o, "clear_env", true);
    if (s->pass_env.count)
        key_strings(o, "pass_env", &s->pass_env);
    if (s->nice_set)
        key_long(o, "nice", s->nice);
    if (s->umask >= 0) {
        char text[16];
        snprintf(text, sizeof(text), "%03o", (unsigned)s->umask & 0777u);
        key_string(o, "umask", text);
    }
    rlimits(o, s);
}

static void service(struct object *list, const struct psup_import_service *s, bool first)
{
    fprintf(list->out, "%s\n%*s", first ? "" : ",", list->indent, "");
    struct object o = open_object(list);
    key_string(&o, "name", s->name);
    key_strings(&o, "listen", &s->listen);
    if (s->mode == PSUP_IMPORT_MODE_WAIT)
        key_string(&o, "mode", "wait");
    if (s->command_line)
        key_string(&o, "command", s->command_line);
    else
        key_strings(&o, "command", &s->command);
    process(&o, s);
    limits(&o, s);
    close_object(&o);
}

int psup_import_emit(FILE *out, const struct psup_import_result *r)
{
    struct object top = {.out = out, .indent = 0};
    struct object doc = open_object(&top);

    key(&doc, "services");
    fputc('[', out);
    struct object list = {.out = out, .indent = doc.indent + 2};
    for (size_t i = 0; i < r->n_services; i++)
        service(&list, r->services[i], i == 0);
    if (r->n_services)
        fprintf(out, "\n%*s", doc.indent, "");
    fputc(']', out);
    close_object(&doc);
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out))
        return -(errno ? errno : EIO);
    return 0;
}
