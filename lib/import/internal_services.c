/* SPDX-License-Identifier: MIT */
/*
 * The services xinetd and inetd answer themselves (RFC 862, 863, 864, 867,
 * 868), replaced by small commands that need only /bin/sh, cat, date and
 * awk, so the imported file runs wherever psup does. They are written
 * into the configuration rather than shipped as files: what a service does
 * stays visible where it is configured.
 *
 * For UDP, psup's datagram mode gives the handler one datagram on stdin
 * and sends each write to stdout back as one datagram, so the same
 * commands answer a datagram.
 */
#include "import/import_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct internal {
    const char *name;
    bool dgram;
    const char *argv0; /* a program run directly, or NULL */
    const char *line;  /* else a line for /bin/sh -c */
};

/* The printable ASCII ring of RFC 864, lines of 72 characters, each one
 * starting a character later; awk dies of SIGPIPE when the client leaves. */
#define CHARGEN_RING "for (c = 32; c < 127; c++) r = r sprintf(\"%c\", c); r = r r; "

static const struct internal internals[] = {
    {"echo", false, "cat", NULL},
    {"echo", true, "cat", NULL},
    {"discard", false, NULL, "exec cat >/dev/null"},
    {"discard", true, NULL, "exec cat >/dev/null"},
    /* xinetd's format: "02 DEC 2026 15:27:00 UTC" and CR LF. */
    {"daytime", false, NULL, "printf '%s\\r\\n' \"$(date '+%d %^b %Y %H:%M:%S %Z')\""},
    {"daytime", true, NULL, "printf '%s\\r\\n' \"$(date '+%d %^b %Y %H:%M:%S %Z')\""},
    /* Seconds since 1900 as 32 bits, most significant byte first; the
     * inner printf writes the octal escapes the outer one turns into bytes. */
    {"time", false, NULL,
     "t=$(($(date +%s) + 2208988800)); printf \"$(printf '\\\\%03o' $((t >> 24 & 255)) "
     "$((t >> 16 & 255)) $((t >> 8 & 255)) $((t & 255)))\""},
    {"time", true, NULL,
     "t=$(($(date +%s) + 2208988800)); printf \"$(printf '\\\\%03o' $((t >> 24 & 255)) "
     "$((t >> 16 & 255)) $((t >> 8 & 255)) $((t & 255)))\""},
    {"chargen", false, NULL,
     "exec awk 'BEGIN { " CHARGEN_RING
     "for (i = 0; ; i++) printf \"%s\\r\\n\", substr(r, i % 95 + 1, 72) }'"},
    /* One datagram of 0 to 512 characters. */
    {"chargen", true, NULL,
     "exec awk 'BEGIN { srand(); n = int(rand() * 513); " CHARGEN_RING
     "while (length(s) < n) s = s r; printf \"%s\", substr(s, 1, n) }'"},
};

int psup_import_internal_command(struct psup_import_service *s, const char *name, bool dgram)
{
    for (size_t i = 0; i < sizeof(internals) / sizeof(internals[0]); i++) {
        const struct internal *in = &internals[i];
        if (strcmp(in->name, name) != 0 || in->dgram != dgram)
            continue;
        if (in->argv0)
            return psup_import_strv_push(&s->command, in->argv0);
        s->command_line = strdup(in->line);
        return s->command_line ? 0 : -ENOMEM;
    }
    return -ENOENT;
}
