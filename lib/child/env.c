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

static void env_bytes(struct env_writer *w, const char *name, const void *value, size_t len)
{
    if (w->used + strlen(name) + len + 2 > PSUP_ENVBUF_SIZE)
        return;
    memcpy(env_start(w, name), value, len);
    env_end(w, len);
}

static void env_str(struct env_writer *w, const char *name, const char *value)
{
    env_bytes(w, name, value, strlen(value));
}

static void env_uint(struct env_writer *w, const char *name, unsigned long long v)
{
    char digits[24];

    psup_fmt_uint(v, digits);
    env_str(w, name, digits);
}

static void env_peer(struct env_writer *w, const char *ip_name, const char *port_name,
                     const struct psup_peer *p)
{
    char ip[PSUP_IP_STRLEN];

    psup_ip_key_format(p->addr, ip);
    env_str(w, ip_name, ip);
    env_uint(w, port_name, p->port);
}

/* Whether every byte is visible ASCII: a unique id that is not (the
 * protocol allows any bytes) is left out rather than encoded. */
static bool visible_ascii(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x21 || b[i] > 0x7e)
            return false;
    return true;
}

/* What a version 2 header says beyond the addresses (spec/proxy.md). */
static void env_proxy_tlvs(struct env_writer *w, const struct psup_proxy_header *h)
{
    if (h->authority_len)
        env_bytes(w, "PROXYAUTHORITY", h->raw + h->authority_off, h->authority_len);
    if (h->unique_id_len && visible_ascii(h->raw + h->unique_id_off, h->unique_id_len))
        env_bytes(w, "PROXYUNIQUEID", h->raw + h->unique_id_off, h->unique_id_len);
}

/* PROTO and the local and remote addresses of TCP and UDP, in this order
 * (PROTO=TCP for IPv6 too, as s6-tcpserver does). */
enum { NAME_PROTO, NAME_LOCAL_IP, NAME_LOCAL_PORT, NAME_REMOTE_IP, NAME_REMOTE_PORT, N_NAMES };
static const char *const tcp_names[N_NAMES] = {"TCP", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP",
                                               "TCPREMOTEPORT"};
static const char *const udp_names[N_NAMES] = {"UDP", "UDPLOCALIP", "UDPLOCALPORT", "UDPREMOTEIP",
                                               "UDPREMOTEPORT"};

static void env_inet(struct env_writer *w, const char *const names[N_NAMES],
                     const struct psup_peer *local, const struct psup_peer *remote)
{
    env_str(w, "PROTO", names[NAME_PROTO]);
    env_peer(w, names[NAME_LOCAL_IP], names[NAME_LOCAL_PORT], local);
    env_peer(w, names[NAME_REMOTE_IP], names[NAME_REMOTE_PORT], remote);
    /* As systemd Accept=yes, CGI and websocketd set them. */
    env_peer(w, "REMOTE_ADDR", "REMOTE_PORT", remote);
}

char **psup_child_env(struct psup_child *c, const struct psup_plan_listener *l,
                      const struct psup_peer *local, const struct psup_peer *peer,
                      const struct psup_peer *proxy, unsigned connnum)
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
        env_inet(&w, udp_names, local, peer);
    } else {
        env_inet(&w, tcp_names, local, peer);
        env_uint(&w, "TCPCONNNUM", connnum);
        if (proxy && proxy->family) {
            env_peer(&w, "PROXYREMOTEIP", "PROXYREMOTEPORT", proxy);
            env_proxy_tlvs(&w, &c->proxy);
        }
    }
    env_uint(&w, "PSUP_CONN_ID", c->conn_id);
    w.envp[w.n] = NULL;
    return w.envp;
}

