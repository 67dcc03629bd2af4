// SPDX-License-Identifier: MIT
//
// psup-load: a connection-per-request load generator for the benchmark.
//
// CONC connections are kept in flight with epoll and non-blocking sockets.
// Each one: connect -> (optional) send PAYLOAD and shutdown(SHUT_WR) ->
// read to EOF -> close. The reply is verified (exact bytes, a prefix, or an
// echo of the payload). Every error is counted by kind and errno name.
//
// Measurement window: connections are started from t0; the window is
// [t0 + warmup, t0 + warmup + duration]. Everything that *finishes* inside
// the window counts towards conns/s and the latency percentiles (latency =
// from just before connect() to EOF), and how long EOF came after the last
// byte of the reply. Errors are counted whenever they
// happen (warm-up and drain included): they are never hidden.
//
// With --udp each request is one datagram from a new connected UDP socket,
// and the first datagram that comes back is the reply (a connected socket
// takes datagrams from the target's address and port only); its latency is
// from just before the send to the reply. A request without a reply within
// the timeout is an error of kind "timeout" (a lost datagram).
//
// With no payload the client does not half-close: the server (the handler's
// exit) closes first, so TIME_WAIT stays on the server side and the client
// does not run out of ephemeral ports. With a payload the client's FIN goes
// first and TIME_WAIT lands on the client side; on loopback Linux reuses
// those ports (net.ipv4.tcp_tw_reuse = 2, the default, enables it for
// loopback), so no sysctl change is needed at the rates measured here.

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MAX 160 // bytes of a reply kept per connection for diagnostics
#define ERRNO_MAX 256

enum phase { PH_CONNECT, PH_WRITE, PH_READ, PH_COUNT };
static const char *const phase_name[PH_COUNT] = {"connect", "write", "read"};

enum kind { K_REFUSED, K_RESET, K_TIMEOUT, K_WRONG, K_OTHER, K_COUNT };
static const char *const kind_name[K_COUNT] = {"refused", "reset", "timeout", "wrong",
                                               "other"};

enum check { CHK_NONE, CHK_EXACT, CHK_PREFIX };

enum cstate { ST_FREE, ST_CONNECTING, ST_READING };

struct conn {
  int fd;
  enum cstate state;
  uint64_t t0;
  uint64_t t_last; // when the last reply bytes arrived
  size_t rlen; // reply bytes received so far
  bool bad;    // reply already known to be wrong
  size_t slen;
  char sample[SAMPLE_MAX];
  struct conn *prev, *next; // in-flight list, ordered by start time
};

struct opts {
  int conc;
  uint64_t count; // 0 = unbounded
  double duration;
  double warmup;
  const char *addr;
  char *payload;
  size_t payload_len;
  char *expect;
  size_t expect_len;
  enum check check;
  unsigned timeout_ms;
  bool json;
  bool quiet;
  bool shut_always;
  bool udp;
};

static struct opts o = {
    .conc = 1,
    .timeout_ms = 10000,
};

// Resolved target.
static struct sockaddr_storage target;
static socklen_t target_len;
static int target_family;

// Results.
static uint64_t n_started, n_ok_window, n_ok_total, n_done;
static uint64_t kind_cnt[K_COUNT];
static uint64_t errno_cnt[PH_COUNT][ERRNO_MAX];
static uint64_t noerr_cnt[PH_COUNT][K_COUNT]; // errors without an errno (timeout, wrong)
static uint64_t bytes_in;
static uint32_t *lat; // microseconds, completions inside the window
static size_t lat_n, lat_cap;
static uint32_t *tail_lat; // microseconds from the last reply byte to EOF, same connections
static size_t tail_n, tail_cap;
static char wrong_sample[SAMPLE_MAX];
static size_t wrong_sample_len;
static bool have_wrong_sample;

// In-flight list (start order = deadline order, as every connection has
// the same timeout).
static struct conn *head, *tail;
static int inflight;
static int epfd;

static uint64_t t_start, t_win_begin, t_win_end; // ns, CLOCK_MONOTONIC
static uint64_t last_done;                       // ns, last connection finished
static bool window_by_time;
static struct conn **free_stack; // free connection slots
static int free_n;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "psup-load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void usage(FILE *f) {
  fputs("usage: psup-load [options] -a HOST:PORT\n"
        "  -a, --addr HOST:PORT    target (IPv4, [IPv6]:PORT, name, or unix:/path)\n"
        "  -c, --conc N            connections kept in flight (default 1)\n"
        "  -n, --count N           stop after N connections (after warm-up)\n"
        "  -d, --duration SEC      stop starting connections after SEC seconds\n"
        "                          (default 5 when -n is not given)\n"
        "  -w, --warmup SEC        run SEC seconds before the window opens (default 0)\n"
        "  -p, --payload STR       send STR (C escapes: \\r \\n \\t \\\\ \\xHH), then\n"
        "                          shutdown(SHUT_WR)\n"
        "      --payload-file F    send the contents of F\n"
        "  -e, --expect STR        the reply must be exactly STR (C escapes)\n"
        "      --expect-prefix     ... or only start with STR\n"
        "      --echo              the reply must be exactly the payload\n"
        "      --shut-always       half-close even without a payload\n"
        "      --udp               one datagram per request, one back as the reply\n"
        "  -t, --timeout MS        per-connection timeout (default 10000)\n"
        "  -j, --json              print one JSON line instead of text\n"
        "  -q, --quiet             no text report (exit status only)\n"
        "  -h, --help\n"
        "exit status: 0 no errors, 1 some errors, 2 usage or setup error\n",
        f);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Decode C escapes into a new buffer; returns its length.
static char *unescape(const char *s, size_t *len) {
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (!out)
    die("malloc");
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\' || i + 1 == n) {
      out[j++] = s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
    case 'n': out[j++] = '\n'; break;
    case 'r': out[j++] = '\r'; break;
    case 't': out[j++] = '\t'; break;
    case '0': out[j++] = '\0'; break;
    case '\\': out[j++] = '\\'; break;
    case 'x': {
      int h1 = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
      int h2 = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
      if (h1 < 0 || h2 < 0) {
        fprintf(stderr, "psup-load: bad \\x escape in '%s'\n", s);
        exit(2);
      }
      out[j++] = (char)(h1 * 16 + h2);
      i += 2;
      break;
    }
    default:
      out[j++] = '\\';
      out[j++] = c;
    }
  }
  out[j] = '\0';
  *len = j;
  return out;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    die(path);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (!buf)
    die("malloc");
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf)
        die("realloc");
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  fclose(f);
  *len = n;
  return buf;
}

static void resolve(const char *a) {
  memset(&target, 0, sizeof target);
  if (strncmp(a, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&target;
    size_t l = strlen(a + 5);
    if (l == 0 || l >= sizeof un->sun_path) {
      fprintf(stderr, "psup-load: bad unix path '%s'\n", a);
      exit(2);
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, a + 5, l + 1);
    target_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
    target_family = AF_UNIX;
    return;
  }
  char host[256];
  const char *port;
  if (a[0] == '[') {
    const char *e = strchr(a, ']');
    if (!e || e[1] != ':' || (size_t)(e - a - 1) >= sizeof host)
      goto bad;
    memcpy(host, a + 1, (size_t)(e - a - 1));
    host[e - a - 1] = '\0';
    port = e + 2;
  } else {
    const char *c = strrchr(a, ':');
    if (!c || (size_t)(c - a) >= sizeof host)
      goto bad;
    memcpy(host, a, (size_t)(c - a));
    host[c - a] = '\0';
    port = c + 1;
  }
  if (!*port)
    goto bad;
  struct addrinfo hints = {.ai_socktype = o.udp ? SOCK_DGRAM : SOCK_STREAM}, *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "psup-load: %s: %s\n", a, gai_strerror(rc));
    exit(2);
  }
  memcpy(&target, res->ai_addr, res->ai_addrlen);
  target_len = res->ai_addrlen;
  target_family = res->ai_family;
  freeaddrinfo(res);
  return;
bad:
  fprintf(stderr, "psup-load: bad address '%s' (want HOST:PORT, [V6]:PORT or unix:/path)\n",
          a);
  exit(2);
}

static void push(uint32_t **v, size_t *n, size_t *cap, uint32_t us) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 65536;
    *v = realloc(*v, *cap * sizeof **v);
    if (!*v)
      die("realloc");
  }
  (*v)[(*n)++] = us;
}

static uint32_t us_between(uint64_t from, uint64_t to) {
  uint64_t us = (to - from) / 1000u;
  return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void list_append(struct conn *c) {
  c->next = NULL;
  c->prev = tail;
  if (tail)
    tail->next = c;
  else
    head = c;
  tail = c;
}

static void list_remove(struct conn *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    tail = c->prev;
  c->prev = c->next = NULL;
}

static void finish(struct conn *c, uint64_t t) {
  if (c->fd >= 0)
    close(c->fd); // also removes it from the epoll set
  c->fd = -1;
  c->state = ST_FREE;
  list_remove(c);
  inflight--;
  n_done++;
  last_done = t;
  free_stack[free_n++] = c;
}

static void fail(struct conn *c, enum kind k, enum phase ph, int err, uint64_t t) {
  kind_cnt[k]++;
  if (err > 0 && err < ERRNO_MAX)
    errno_cnt[ph][err]++;
  else
    noerr_cnt[ph][k]++;
  if (k == K_WRONG && !have_wrong_sample) {
    have_wrong_sample = true;
    wrong_sample_len = c->slen;
    memcpy(wrong_sample, c->sample, c->slen);
  }
  finish(c, t);
}

static enum kind classify(int err) {
  switch (err) {
  case ECONNREFUSED:
    return K_REFUSED;
  case ECONNRESET:
  case EPIPE:
    return K_RESET;
  case ETIMEDOUT:
    return K_TIMEOUT;
  default:
    return K_OTHER;
  }
}

static void succeed(struct conn *c, uint64_t t) {
  n_ok_total++;
  bool in_window = t >= t_win_begin && t <= t_win_end;
  if (in_window) {
    n_ok_window++;
    push(&lat, &lat_n, &lat_cap, us_between(c->t0, t));
    // How long the end of the reply took after its last byte: the
    // handler's exit, or what it does after writing (docs/performance.md).
    // A datagram reply has no end but itself.
    if (c->rlen && !o.udp)
      push(&tail_lat, &tail_n, &tail_cap, us_between(c->t_last, t));
  }
  finish(c, t);
}

// Check newly received bytes against the expectation.
static void check_bytes(struct conn *c, const char *buf, size_t n) {
  if (c->slen < SAMPLE_MAX) {
    size_t k = SAMPLE_MAX - c->slen < n ? SAMPLE_MAX - c->slen : n;
    memcpy(c->sample + c->slen, buf, k);
    c->slen += k;
  }
  if (!c->bad && o.check != CHK_NONE) {
    size_t off = c->rlen;
    if (off < o.expect_len) {
      size_t k = o.expect_len - off < n ? o.expect_len - off : n;
      if (memcmp(o.expect + off, buf, k) != 0)
        c->bad = true;
      else if (o.check == CHK_EXACT && k < n)
        c->bad = true;
    } else if (o.check == CHK_EXACT) {
      c->bad = true;
    }
  }
  c->rlen += n;
  bytes_in += n;
}

// UDP: one datagram is the whole reply.
static void on_datagram(struct conn *c) {
  static char buf[65536];
  ssize_t r;
  do {
    r = recv(c->fd, buf, sizeof buf, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  uint64_t t = now_ns();
  if (r < 0) {
    int e = errno;
    fail(c, classify(e), PH_READ, e, t);
    return;
  }
  check_bytes(c, buf, (size_t)r);
  if (c->bad || (o.check != CHK_NONE && c->rlen < o.expect_len))
    fail(c, K_WRONG, PH_READ, 0, t);
  else
    succeed(c, t);
}

static void on_readable(struct conn *c) {
  static char buf[65536];
  if (o.udp) {
    on_datagram(c);
    return;
  }
  for (;;) {
    ssize_t r = read(c->fd, buf, sizeof buf);
    if (r > 0) {
      check_bytes(c, buf, (size_t)r);
      c->t_last = now_ns();
      continue;
    }
    uint64_t t = now_ns();
    if (r == 0) {
      bool ok = !c->bad;
      if (ok && o.check != CHK_NONE && c->rlen < o.expect_len)
        ok = false;
      if (ok)
        succeed(c, t);
      else
        fail(c, K_WRONG, PH_READ, 0, t);
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
    if (errno == EINTR)
      continue;
    int e = errno;
    // Without a payload the socket waits for EPOLLIN from the start, so a
    // failed connect shows up here: report it as the connect's.
    fail(c, classify(e), c->rlen == 0 && e == ECONNREFUSED ? PH_CONNECT : PH_READ, e, t);
    return;
  }
}

// Phase of a connection that timed out: still connecting or waiting for
// the reply (a socket waiting for EPOLLIN may still be in SYN_SENT).
static enum phase timeout_phase(const struct conn *c) {
  if (c->state == ST_CONNECTING)
    return PH_CONNECT;
  if (c->rlen == 0 && target_family != AF_UNIX && !o.udp) {
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && ti.tcpi_state == TCP_SYN_SENT)
      return PH_CONNECT;
  }
  return PH_READ;
}

// Connection established: send the payload and half-close, then wait for
// the reply. The payload must fit the socket buffer (it does for the
// request sizes a per-connection benchmark uses; a partial write is an
// error of kind "other" with errno EMSGSIZE).
static void on_connected(struct conn *c, bool registered) {
  if (o.payload_len > 0) {
    ssize_t w = send(c->fd, o.payload, o.payload_len, MSG_NOSIGNAL);
    if (w < 0) {
      int e = errno;
      fail(c, classify(e), PH_WRITE, e, now_ns());
      return;
    }
    if ((size_t)w != o.payload_len) {
      fail(c, K_OTHER, PH_WRITE, EMSGSIZE, now_ns());
      return;
    }
  }
  if (o.payload_len > 0 || o.shut_always) {
    if (shutdown(c->fd, SHUT_WR) < 0) {
      int e = errno;
      fail(c, classify(e), PH_WRITE, e, now_ns());
      return;
    }
  }
  c->state = ST_READING;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
    die("epoll_ctl");
  on_readable(c); // the reply may already be there
}

// UDP: a new socket connected to the target (a new client each time), the
// request sent at once, the reply awaited. connect() on a UDP socket only
// sets the peer: it never waits.
static bool start_datagram(struct conn *c) {
  if (connect(c->fd, (struct sockaddr *)&target, target_len) < 0 ||
      send(c->fd, o.payload, o.payload_len, 0) < 0) {
    int e = errno;
    fail(c, classify(e), PH_WRITE, e, now_ns());
    return false;
  }
  c->state = ST_READING;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
    die("epoll_ctl ADD");
  return true;
}

// Returns false when the connect failed synchronously (the caller then
// backs off a little instead of spinning on immediate failures).
static bool start_conn(struct conn *c, uint64_t t) {
  c->t0 = t;
  c->rlen = 0;
  c->slen = 0;
  c->bad = false;
  c->fd = socket(target_family, (o.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 0);
  n_started++;
  inflight++;
  list_append(c);
  if (c->fd < 0) {
    int e = errno;
    fail(c, classify(e), PH_CONNECT, e, t);
    return false;
  }
  if (o.udp)
    return start_datagram(c);
  int rc = connect(c->fd, (struct sockaddr *)&target, target_len);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    fail(c, classify(e), PH_CONNECT, e, now_ns());
    return false;
  }
  c->state = ST_CONNECTING;
  if (rc == 0) { // connected at once: skip the EPOLLOUT round
    on_connected(c, false);
    return true;
  }
  if (o.payload_len == 0 && !o.shut_always) {
    // Nothing to send: wait for the reply straight away. Data or EOF implies
    // the connect succeeded; a failed connect makes read() return its error.
    // Saves the EPOLLOUT wake-up, getsockopt and EPOLL_CTL_MOD.
    c->state = ST_READING;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
      die("epoll_ctl ADD");
    return true;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
    die("epoll_ctl ADD");
  return true;
}

static void on_event(struct conn *c, uint32_t events) {
  if (c->state == ST_CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t l = sizeof err;
      if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        err = errno;
      if (err != 0) {
        fail(c, classify(err), PH_CONNECT, err, now_ns());
        return;
      }
    }
    if (events & EPOLLOUT)
      on_connected(c, true);
    else
      fail(c, K_OTHER, PH_CONNECT, 0, now_ns());
    return;
  }
  if (c->state == ST_READING)
    on_readable(c);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

// The q-quantile of the sorted v[0..n), nearest rank.
static uint32_t quantile(const uint32_t *v, size_t n, double q) {
  if (n == 0)
    return 0;
  size_t rank = (size_t)(q * (double)n + 0.999999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return v[rank - 1];
}

static uint32_t pct(double q) {
  return quantile(lat, lat_n, q);
}

static uint32_t tail_pct(double q) {
  return quantile(tail_lat, tail_n, q);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", f);
    else if (ch == '\r')
      fputs("\\r", f);
    else if (ch == '\t')
      fputs("\\t", f);
    else if (ch < 0x20 || ch >= 0x7f)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static void text_str(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n')
      fputs("\\n", f);
    else if (ch == '\r')
      fputs("\\r", f);
    else if (ch == '\\')
      fputs("\\\\", f);
    else if (ch < 0x20 || ch >= 0x7f)
      fprintf(f, "\\x%02x", ch);
    else
      fputc(ch, f);
  }
}

static const char *errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static double parse_double(const char *s, const char *what) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < 0) {
    fprintf(stderr, "psup-load: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

static unsigned long long parse_ull(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') {
    fprintf(stderr, "psup-load: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  enum { OPT_PREFIX = 1000, OPT_ECHO, OPT_PFILE, OPT_SHUT, OPT_UDP };
  static const struct option lo[] = {
      {"addr", required_argument, 0, 'a'},
      {"conc", required_argument, 0, 'c'},
      {"count", required_argument, 0, 'n'},
      {"duration", required_argument, 0, 'd'},
      {"warmup", required_argument, 0, 'w'},
      {"payload", required_argument, 0, 'p'},
      {"payload-file", required_argument, 0, OPT_PFILE},
      {"expect", required_argument, 0, 'e'},
      {"expect-prefix", no_argument, 0, OPT_PREFIX},
      {"echo", no_argument, 0, OPT_ECHO},
      {"shut-always", no_argument, 0, OPT_SHUT},
      {"udp", no_argument, 0, OPT_UDP},
      {"timeout", required_argument, 0, 't'},
      {"json", no_argument, 0, 'j'},
      {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0},
  };
  bool prefix = false, echo = false;
  const char *expect_arg = NULL;
  int ch;
  while ((ch = getopt_long(argc, argv, "a:c:n:d:w:p:e:t:jqh", lo, NULL)) != -1) {
    switch (ch) {
    case 'a': o.addr = optarg; break;
    case 'c': {
      unsigned long long v = parse_ull(optarg, "concurrency");
      if (v < 1 || v > 100000) {
        fprintf(stderr, "psup-load: concurrency must be 1..100000\n");
        return 2;
      }
      o.conc = (int)v;
      break;
    }
    case 'n': o.count = parse_ull(optarg, "count"); break;
    case 'd': o.duration = parse_double(optarg, "duration"); break;
    case 'w': o.warmup = parse_double(optarg, "warm-up"); break;
    case 'p': o.payload = unescape(optarg, &o.payload_len); break;
    case OPT_PFILE: o.payload = read_file(optarg, &o.payload_len); break;
    case 'e': expect_arg = optarg; break;
    case OPT_PREFIX: prefix = true; break;
    case OPT_ECHO: echo = true; break;
    case OPT_SHUT: o.shut_always = true; break;
    case OPT_UDP: o.udp = true; break;
    case 't': {
      unsigned long long v = parse_ull(optarg, "timeout");
      if (v < 1 || v > 3600000) {
        fprintf(stderr, "psup-load: timeout must be 1..3600000 ms\n");
        return 2;
      }
      o.timeout_ms = (unsigned)v;
      break;
    }
    case 'j': o.json = true; break;
    case 'q': o.quiet = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !o.addr) {
    usage(stderr);
    return 2;
  }
  if (echo && expect_arg) {
    fprintf(stderr, "psup-load: --echo and --expect exclude each other\n");
    return 2;
  }
  if (echo) {
    o.expect = o.payload ? o.payload : "";
    o.expect_len = o.payload_len;
    o.check = CHK_EXACT;
  } else if (expect_arg) {
    o.expect = unescape(expect_arg, &o.expect_len);
    o.check = prefix ? CHK_PREFIX : CHK_EXACT;
  } else if (prefix) {
    fprintf(stderr, "psup-load: --expect-prefix needs --expect\n");
    return 2;
  }
  if (o.count == 0 && o.duration == 0)
    o.duration = 5;
  if (o.udp && strncmp(o.addr, "unix:", 5) == 0) {
    fprintf(stderr, "psup-load: --udp wants HOST:PORT\n");
    return 2;
  }
  resolve(o.addr);
  raise_nofile();

  struct conn *conns = calloc((size_t)o.conc, sizeof *conns);
  if (!conns)
    die("calloc");
  free_stack = calloc((size_t)o.conc, sizeof *free_stack);
  if (!free_stack)
    die("calloc");
  for (int i = o.conc - 1; i >= 0; i--) {
    conns[i].fd = -1;
    free_stack[free_n++] = &conns[i];
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");

  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  t_start = now_ns();
  t_win_begin = t_start + (uint64_t)(o.warmup * 1e9);
  window_by_time = o.duration > 0;
  t_win_end = window_by_time ? t_win_begin + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
  uint64_t measured_started = 0; // connections started after warm-up
  last_done = t_start;
  const uint64_t tmo_ns = (uint64_t)o.timeout_ms * 1000000u;
  bool stopping = false;
  struct epoll_event evs[512];

  for (;;) {
    uint64_t t = now_ns();
    if (!stopping) {
      if (window_by_time && t >= t_win_end)
        stopping = true;
      if (o.count && measured_started >= o.count)
        stopping = true;
    }
    bool backoff = false;
    while (!stopping && inflight < o.conc) {
      if (free_n == 0)
        break;
      struct conn *c = free_stack[--free_n];
      t = now_ns();
      if (t >= t_win_begin)
        measured_started++;
      if (!start_conn(c, t)) {
        backoff = true;
        break;
      }
      if (o.count && measured_started >= o.count) {
        stopping = true;
        break;
      }
    }
    if (stopping && inflight == 0)
      break;
    // Sleep until an event, the next timeout, or the end of the window.
    t = now_ns();
    uint64_t wake = UINT64_MAX;
    if (head)
      wake = head->t0 + tmo_ns;
    if (!stopping && window_by_time && t_win_end < wake)
      wake = t_win_end;
    int ms;
    if (backoff)
      ms = 1;
    else if (wake == UINT64_MAX)
      ms = -1;
    else if (wake <= t)
      ms = 0;
    else
      ms = (int)((wake - t + 999999u) / 1000000u);
    int n = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), ms);
    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int i = 0; i < n; i++)
      on_event(evs[i].data.ptr, evs[i].events);
    t = now_ns();
    while (head && head->t0 + tmo_ns <= t) {
      fail(head, K_TIMEOUT, timeout_phase(head), 0, t);
    }
  }
  uint64_t t_finish = now_ns();
  getrusage(RUSAGE_SELF, &ru1);

  // Window length for the rate.
  uint64_t win_end = window_by_time ? t_win_end : last_done;
  if (win_end > t_finish)
    win_end = t_finish;
  double window_s = win_end > t_win_begin ? (double)(win_end - t_win_begin) / 1e9 : 0;
  double rate = window_s > 0 ? (double)n_ok_window / window_s : 0;
  double wall_s = (double)(t_finish - t_start) / 1e9;
  double user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
  double sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
  double cpu_pct = wall_s > 0 ? 100.0 * (user_s + sys_s) / wall_s : 0;
  double cpu_us_conn = n_done ? 1e6 * (user_s + sys_s) / (double)n_done : 0;

  qsort(lat, lat_n, sizeof *lat, cmp_u32);
  qsort(tail_lat, tail_n, sizeof *tail_lat, cmp_u32);
  double mean = 0;
  for (size_t i = 0; i < lat_n; i++)
    mean += lat[i];
  mean = lat_n ? mean / (double)lat_n : 0;
  uint64_t errors = 0;
  for (int k = 0; k < K_COUNT; k++)
    errors += kind_cnt[k];

  if (o.json) {
    FILE *f = stdout;
    fprintf(f, "{\"tool\":\"psup-load\",\"addr\":");
    json_str(f, o.addr, strlen(o.addr));
    fprintf(f,
            ",\"conc\":%d,\"warmup_s\":%.3f,\"window_s\":%.6f,\"wall_s\":%.6f,"
            "\"started\":%llu,\"done\":%llu,\"ok\":%llu,\"ok_total\":%llu,"
            "\"conns_per_s\":%.2f,\"bytes_in\":%llu,",
            o.conc, o.warmup, window_s, wall_s, (unsigned long long)n_started,
            (unsigned long long)n_done, (unsigned long long)n_ok_window,
            (unsigned long long)n_ok_total, rate, (unsigned long long)bytes_in);
    fprintf(f,
            "\"latency_us\":{\"n\":%zu,\"min\":%u,\"mean\":%.1f,\"p50\":%u,\"p90\":%u,"
            "\"p99\":%u,\"max\":%u},",
            lat_n, lat_n ? lat[0] : 0, mean, pct(0.50), pct(0.90), pct(0.99),
            lat_n ? lat[lat_n - 1] : 0);
    // None measured (UDP: a reply has no EOF): no quantiles.
    if (tail_n)
      fprintf(f, "\"eof_after_last_byte_us\":{\"n\":%zu,\"p50\":%u,\"p90\":%u},", tail_n,
              tail_pct(0.50), tail_pct(0.90));
    else
      fprintf(f, "\"eof_after_last_byte_us\":{\"n\":0},");
    fprintf(f, "\"errors\":{\"total\":%llu", (unsigned long long)errors);
    for (int k = 0; k < K_COUNT; k++)
      fprintf(f, ",\"%s\":%llu", kind_name[k], (unsigned long long)kind_cnt[k]);
    fprintf(f, ",\"by_errno\":{");
    bool first = true;
    for (int p = 0; p < PH_COUNT; p++) {
      for (int e = 1; e < ERRNO_MAX; e++)
        if (errno_cnt[p][e]) {
          fprintf(f, "%s\"%s:%s\":%llu", first ? "" : ",", phase_name[p], errno_name(e),
                  (unsigned long long)errno_cnt[p][e]);
          first = false;
        }
      for (int k = 0; k < K_COUNT; k++)
        if (noerr_cnt[p][k]) {
          fprintf(f, "%s\"%s:%s\":%llu", first ? "" : ",", phase_name[p], kind_name[k],
                  (unsigned long long)noerr_cnt[p][k]);
          first = false;
        }
    }
    fprintf(f, "}}");
    if (have_wrong_sample) {
      fprintf(f, ",\"wrong_sample\":");
      json_str(f, wrong_sample, wrong_sample_len);
    }
    fprintf(f,
            ",\"cpu\":{\"user_s\":%.6f,\"sys_s\":%.6f,\"pct_of_core\":%.2f,"
            "\"us_per_conn\":%.2f}}\n",
            user_s, sys_s, cpu_pct, cpu_us_conn);
  } else if (!o.quiet) {
    FILE *f = stdout;
    fprintf(f, "target      %s, concurrency %d\n", o.addr, o.conc);
    fprintf(f, "window      %.3f s (warm-up %.3f s, wall %.3f s)\n", window_s, o.warmup,
            wall_s);
    fprintf(f, "connections %llu started, %llu ok in window (%llu ok in all)\n",
            (unsigned long long)n_started, (unsigned long long)n_ok_window,
            (unsigned long long)n_ok_total);
    fprintf(f, "rate        %.1f conns/s\n", rate);
    fprintf(f, "latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (mean %.3f ms)\n",
            pct(0.50) / 1e3, pct(0.90) / 1e3, pct(0.99) / 1e3,
            (lat_n ? lat[lat_n - 1] : 0) / 1e3, mean / 1e3);
    if (tail_n)
      fprintf(f, "end         EOF p50 %.3f ms, p90 %.3f ms after the last reply byte\n",
              tail_pct(0.50) / 1e3, tail_pct(0.90) / 1e3);
    fprintf(f, "errors      %llu", (unsigned long long)errors);
    for (int k = 0; k < K_COUNT; k++)
      if (kind_cnt[k])
        fprintf(f, "  %s=%llu", kind_name[k], (unsigned long long)kind_cnt[k]);
    fputc('\n', f);
    for (int p = 0; p < PH_COUNT; p++) {
      for (int e = 1; e < ERRNO_MAX; e++)
        if (errno_cnt[p][e])
          fprintf(f, "            %s: %s (%s) x %llu\n", phase_name[p], errno_name(e),
                  strerror(e), (unsigned long long)errno_cnt[p][e]);
      for (int k = 0; k < K_COUNT; k++)
        if (noerr_cnt[p][k])
          fprintf(f, "            %s: %s x %llu\n", phase_name[p], kind_name[k],
                  (unsigned long long)noerr_cnt[p][k]);
    }
    if (have_wrong_sample) {
      fputs("wrong reply e.g. \"", f);
      text_str(f, wrong_sample, wrong_sample_len);
      fputs(wrong_sample_len == SAMPLE_MAX ? "...\"\n" : "\"\n", f);
    }
    fprintf(f, "load CPU    %.3f s user + %.3f s sys = %.1f%% of one core, %.1f us/conn\n",
            user_s, sys_s, cpu_pct, cpu_us_conn);
  }
  return errors ? 1 : 0;
}
