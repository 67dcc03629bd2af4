/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation, one sequence at a time: for the log, which escapes what
 * is not text, and for the configuration loader, which refuses it.
 */
#ifndef PSUP_UTF8_H
#define PSUP_UTF8_H

#include <stddef.h>

/* The length of the valid UTF-8 sequence at s (n bytes left, n > 0), or 0
 * when there is none: a stray continuation byte, a sequence cut short, an
 * overlong form, a surrogate (U+D800 to U+DFFF) or a code point past
 * U+10FFFF. An ASCII byte, control characters included, is 1. */
size_t psup_utf8_len(const unsigned char *s, size_t n);

#endif
