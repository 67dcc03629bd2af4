/* SPDX-License-Identifier: MIT */
/*
 * The environment of a CGI script (RFC 3875 section 4.1): the inherited
 * environment (psup's per-connection variables among it) minus any
 * variable a request could be mistaken for, plus the meta-variables of one
 * request. Pure: the caller provides the memory.
 */
#ifndef PSUP_CGI_ENV_H
#define PSUP_CGI_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "http/http_request.h"

struct psup_cgi_env_input {
    const struct psup_http_request *req; /* body NONE for an internal redirect */
    uint64_t body_len;                   /* CONTENT_LENGTH when req->body is not NONE */
    char *const *inherited;              /* NULL-terminated "NAME=value" list */
    const char *server_name;             /* when the request names no host; NULL: local address */
    const char *software;                /* SERVER_SOFTWARE, "psup/0.1.0" */
};

/*
 * Sizes that are always enough for psup_cgi_env_build: bytes of strings
 * and entries of the array (its NULL included).
 */
void psup_cgi_env_bounds(const struct psup_cgi_env_input *in, size_t *bytes_out,
                         size_t *entries_out);

/*
 * Builds the environment into envp (entries) with its strings in arena
 * (bytes). Returns 0, or -ENOSPC if either is too small.
 */
int psup_cgi_env_build(const struct psup_cgi_env_input *in, char *arena, size_t bytes,
                       char **envp, size_t entries);

#endif
