/* SPDX-License-Identifier: MIT */
/*
 * Warnings for psup --check: listeners a valid file names that will likely
 * fail to bind, found without binding anything. --check does not bind (as
 * nginx -t does) because the usual time to run it is before a SIGHUP, while
 * psup holds the very addresses the file names: every bind would fail. What
 * is certain in the file alone (the same address twice, a wildcard beside
 * another address of its family) is an error of the loader instead.
 */
#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add_warning(struct psup_diag *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A warning, printable: a path in it comes from the file. */
static void add_warning(struct psup_diag *out, const char *fmt, ...)
{
    char *text = NULL, *safe;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    safe = n < 0 ? NULL : cfg_printable(text);
    psup_diag_addf(out, "%s", safe ? safe : "out of memory while reporting a warning");
    free(text);
    free(safe);
}

/* The directory a unix socket file is created in, into dir. */
static void parent_dir(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Creating the socket file needs its directory, writable and searchable
 * (as is removing a stale socket there). */
static size_t warn_unix(const char *at, const struct psup_addr *a, struct psup_diag *out)
{
    char dir[sizeof(a->u.un.sun_path)];
    struct stat st;

    if (a->u.un.sun_path[0] == '\0')
        return 0; /* abstract: no file */
    parent_dir(a->u.un.sun_path, dir, sizeof(dir));
    if (stat(dir, &st) < 0) {
        add_warning(out, "%s: the directory %s %s: the socket cannot be created", at, dir,
                       errno == ENOENT || errno == ENOTDIR ? "does not exist"
                                                           : "cannot be examined");
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        add_warning(out, "%s: %s is not a directory: the socket cannot be created", at, dir);
        return 1;
    }
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
        add_warning(out, "%s: psup cannot create files in %s (%s)", at, dir, strerror(errno));
        return 1;
    }
    return 0;
}

/* A port below net.ipv4.ip_unprivileged_port_start (which covers IPv6
 * too) needs CAP_NET_BIND_SERVICE. */
static size_t warn_port(const char *at, const struct psup_addr *a, unsigned long long caps,
                        unsigned long long unprivileged, struct psup_diag *out)
{
    unsigned port = psup_sockaddr_port(&a->u.sa);

    if (port == 0 || port >= unprivileged || (caps >> CAP_NET_BIND_SERVICE & 1))
        return 0;
    add_warning(out, "%s: port %u is privileged (below %llu) and psup lacks "
                   "CAP_NET_BIND_SERVICE: binding it will fail unless psup runs as root",
                   at, port, unprivileged);
    return 1;
}

static size_t warn_address(const char *at, const struct psup_addr *a, unsigned long long caps,
                           unsigned long long unprivileged, struct psup_diag *out)
{
    return a->proto == PSUP_PROTO_UNIX ? warn_unix(at, a, out)
                                       : warn_port(at, a, caps, unprivileged, out);
}

/* Without CAP_NET_ADMIN (SO_RCVBUFFORCE) the kernel caps a receive buffer
 * at net.core.rmem_max: said once per service, at its first UDP listener. */
static size_t warn_recv_buffer(const char *at, const struct psup_service_config *svc,
                               unsigned long long caps, unsigned long long rmem_max,
                               struct psup_diag *out)
{
    if ((caps >> CAP_NET_ADMIN & 1) || (unsigned long long)svc->recv_buffer <= rmem_max)
        return 0;
    add_warning(out, "%s: recv_buffer %d is above net.core.rmem_max (%llu) and psup lacks "
                "CAP_NET_ADMIN: the kernel will give %llu bytes (raise the sysctl, or run psup "
                "as root)", at, svc->recv_buffer, rmem_max, rmem_max);
    return 1;
}

size_t psup_config_warn(const struct psup_config *cfg, struct psup_diag *out)
{
    unsigned long long caps = cfg_effective_capabilities();
    unsigned long long unprivileged =
        cfg_read_proc_number("/proc/sys/net/ipv4/ip_unprivileged_port_start", 1024);
    unsigned long long rmem_max = cfg_read_proc_number("/proc/sys/net/core/rmem_max", 212992);
    size_t n = 0;
    char at[64];

    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct psup_service_config *svc = &cfg->services[i];
        bool udp_seen = false;
        for (size_t j = 0; j < svc->n_listen; j++) {
            bool udp = svc->listen[j].proto == PSUP_PROTO_UDP;
            snprintf(at, sizeof(at), "services[%zu].listen[%zu]", i, j);
            n += warn_address(at, &svc->listen[j], caps, unprivileged, out);
            if (udp && !udp_seen)
                n += warn_recv_buffer(at, svc, caps, rmem_max, out);
            udp_seen |= udp;
        }
    }
    for (size_t j = 0; j < cfg->admin.n_listen; j++) {
        snprintf(at, sizeof(at), "admin.listen[%zu]", j);
        n += warn_address(at, &cfg->admin.listen[j], caps, unprivileged, out);
    }
    return n;
}
