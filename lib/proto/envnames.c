/* SPDX-License-Identifier: MIT */
/*
 * The names in a handler's environment that belong to psup: the one list
 * that the configuration (what `env` may not set) and the base environment
 * (what is not inherited) both read. Pure, built as child code.
 */
#include "proto/envnames.h"

#include <string.h>

/* The one list of the variables psup sets for each connection (and for
 * each generation: PSUP_SERVICE): a service may not set them, and an
 * inherited value must never reach a handler, or a unix-socket handler
 * could see a stale TCPREMOTEIP, or a UDP handler a TCP one. */
static const char *const set_by_psup[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT",
    "TCPCONNNUM", "REMOTE_ADDR", "REMOTE_PORT", "UNIXLOCALPATH", "UNIXREMOTEEUID",
    "UNIXREMOTEEGID", "UNIXREMOTEPID", "UDPLOCALIP", "UDPLOCALPORT", "UDPREMOTEIP",
    "UDPREMOTEPORT", "PSUP_SERVICE", "PSUP_CONN_ID", NULL,
};

/* Other servers' per-connection variables, which psup never sets: an
 * inherited one would describe some other connection. */
static const char *const set_by_others[] = {
    "TCPLOCALHOST", "TCPREMOTEHOST", "TCPREMOTEINFO", NULL,
};

/* Meant for psup itself: a handler holding NOTIFY_SOCKET could tell systemd
 * READY or STOPPING in psup's name; the watchdog's are psup's to honour. */
static const char *const for_psup[] = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
    "LISTEN_FDNAMES", NULL,
};

static bool in_list(const char *const *list, const char *name, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && memcmp(*list, name, len) == 0)
            return true;
    return false;
}

bool psup_env_set_by_psup(const char *name, size_t len)
{
    return in_list(set_by_psup, name, len);
}

bool psup_env_for_psup(const char *name, size_t len)
{
    return in_list(for_psup, name, len);
}

bool psup_env_is_reserved(const char *name, size_t len)
{
    return psup_env_set_by_psup(name, len) || in_list(set_by_others, name, len) ||
           psup_env_for_psup(name, len) || (len >= 5 && memcmp(name, "PSUP_", 5) == 0);
}

