/* SPDX-License-Identifier: MIT */
/*
 * The handler's environment: the service's base environment (built once per
 * generation by the supervisor, policy/env.c) followed by the connection's
 * own variables, written into the worker's record (spec/handler.md). Child
 * code: lib/child/README.md.
 */
#include "child/child.h"

#include <string.h>

struct env_writer {
    char **envp;
    size_t n;
    char *buf;
    size_t used;
};

static char *env_start(struct env_writer *w, const char *name)
{
    size_t len = strlen(name);
    char *s = w->buf + w->used;

    memcpy(s, name, len);
    s[len] = '=';
    w->envp[w->n++] = s;
    w->used += len + 1;
    return w->buf + w->used;
}

static void env_end(struct env_writer *w, size_t value_len)
{
    w->buf[w->used + value_len] = '\0';
    w->used += value_len + 1;
}

static void env_str(struct env_writer *w, const char *name, const char *value)
{
    size_t len = strlen(value);

    if (w->used + strlen(name) + len + 2 > PSUP_ENVBUF_SIZE)
        return;
    memcpy(env_start(w, name), value, len);
    env_end(w, len);
}

static void env_uint(struct env_writer *w, const char *name, unsigned long long v)
{
    char digits[24];

    psup_fmt_uint(v, digits);
    env_str(w, name, digits);
}

static void env_ip(struct env_writer *w, const char *name, const struct sockaddr *sa)
{
    char ip[PSUP_IP_STRLEN];

    psup_ip_format(sa, ip);
    env_str(w, name, ip);
}

/* PROTO and the local and remote addresses of TCP and UDP, in this order
 * (PROTO=TCP for IPv6 too, as s6-tcpserver does). */
enum { NAME_PROTO, NAME_LOCAL_IP, NAME_LOCAL_PORT, NAME_REMOTE_IP, NAME_REMOTE_PORT, N_NAMES };
static const char *const tcp_names[N_NAMES] = {"TCP", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP",
                                               "TCPREMOTEPORT"};
static const char *const udp_names[N_NAMES] = {"UDP", "UDPLOCALIP", "UDPLOCALPORT", "UDPREMOTEIP",
                                               "UDPREMOTEPORT"};

static void env_inet(struct env_writer *w, const char *const names[N_NAMES],
                     const struct sockaddr *local, const struct sockaddr *remote)
{
    env_str(w, "PROTO", names[NAME_PROTO]);
    env_ip(w, names[NAME_LOCAL_IP], local);
    env_uint(w, names[NAME_LOCAL_PORT], psup_sockaddr_port(local));
    env_ip(w, names[NAME_REMOTE_IP], remote);
    env_uint(w, names[NAME_REMOTE_PORT], psup_sockaddr_port(remote));
    /* As systemd Accept=yes, CGI and websocketd set them. */
    env_ip(w, "REMOTE_ADDR", remote);
    env_uint(w, "REMOTE_PORT", psup_sockaddr_port(remote));
}

char **psup_child_env(struct psup_child *c, const struct psup_plan_listener *l,
                        const struct sockaddr *remote, const struct sockaddr *local,
                        const struct psup_peer *peer, unsigned connnum)
{
    const struct psup_plan *p = c->plan;
    struct env_writer w = {.envp = c->envp, .buf = c->envbuf};

    memcpy(w.envp, c->env_base, p->n_env * sizeof(char *));
    w.n = p->n_env;
    if (l->proto == PSUP_PROTO_UNIX) {
        env_str(&w, "PROTO", "UNIX");
        /* "unix:/path" or "unix:@name": UNIXLOCALPATH is what follows. */
        env_str(&w, "UNIXLOCALPATH", l->text + 5);
        env_uint(&w, "UNIXREMOTEEUID", peer->uid);
        env_uint(&w, "UNIXREMOTEEGID", peer->gid);
        env_uint(&w, "UNIXREMOTEPID", (unsigned long long)peer->pid);
    } else if (l->proto == PSUP_PROTO_UDP) {
        /* No count of the client's datagrams: a datagram is no connection
         * (spec/udp.md). */
        env_inet(&w, udp_names, local, remote);
    } else {
        env_inet(&w, tcp_names, local, remote);
        env_uint(&w, "TCPCONNNUM", connnum);
    }
    env_uint(&w, "PSUP_CONN_ID", c->conn_id);
    w.envp[w.n] = NULL;
    return w.envp;
}

