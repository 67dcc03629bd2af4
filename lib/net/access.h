/* SPDX-License-Identifier: MIT */
/*
 * Access rules: parsing the CIDR allow/deny lists over IPv4 and IPv6 (an
 * IPv4 peer and its v4-mapped IPv6 form match the same rules). Matching runs
 * in workers and is in proto/inet.h.
 */
#ifndef PSUP_ACCESS_H
#define PSUP_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/inet.h"

/* Parse "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1". Host bits
 * beyond the prefix are an error (a typo like 10.1.0.0/8 is caught).
 * Returns 0, or -1 with *why set to a static sentence. */
int psup_cidr_parse(const char *text, struct psup_cidr *out, const char **why);

#endif
