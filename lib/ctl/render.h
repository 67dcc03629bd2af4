/* SPDX-License-Identifier: MIT */
/*
 * psup ctl's text from the endpoint's JSON answers (spec/control.md): the
 * /status document as an aligned table, the result of a reload with the
 * problems of an invalid file, a control request's answer, an error's
 * sentence. Each returns a new string (the caller frees it), or NULL when
 * the answer is not the JSON expected. No I/O: cmd/psup/ctl.c prints.
 */
#ifndef PSUP_CTL_RENDER_H
#define PSUP_CTL_RENDER_H

#include <stddef.h>

/* A summary line of psup, then one row a service. */
char *psup_ctl_render_status(const char *json);

/* POST /reload's answer: what changed, or (result "invalid") one problem
 * a line. */
char *psup_ctl_render_reload(const char *json);

/* The answer to pause, resume or scale: one line. */
char *psup_ctl_render_control(const char *json);

/* Why a request failed, in one line: the "error" of a JSON answer, else
 * the first line of a text one (404, 403 ...), else the status. */
char *psup_ctl_render_error(int status, const char *content_type, const char *body);

#endif
