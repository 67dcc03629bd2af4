/* SPDX-License-Identifier: MIT */
/*
 * psup ctl: the command-line client of a running psup's admin endpoint
 * (spec/control.md). One request a run; the answer printed for a person
 * (or, with status --json, as the endpoint wrote it), and the exit status:
 * 0 done, 1 the request failed (psup unreachable, or it said no), 2 usage.
 * lib/ctl speaks HTTP and turns the JSON into text.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ctl/client.h"
#include "ctl/render.h"

/* psup ctl's exit statuses (psup(1), CTL). */
enum {
    CTL_DONE = 0,   /* psup did what was asked */
    CTL_FAILED = 1, /* psup could not be reached, or refused or failed the request */
    CTL_USAGE = 2,  /* a usage error */
};

static const char ctl_usage[] =
    "Usage: psup ctl [OPTIONS] COMMAND [NAME]\n"
    "\n"
    "Ask a running psup, through its admin endpoint, for its state or to act.\n"
    "\n"
    "Commands:\n"
    "  status                  psup and every service as a table (GET /status)\n"
    "  metrics                 the Prometheus metrics (GET /metrics)\n"
    "  reload                  reload the configuration file; an invalid one is\n"
    "                          rejected and its problems printed\n"
    "  pause NAME              take no new connections for service NAME (they\n"
    "                          wait in the listen backlog)\n"
    "  resume NAME             take them again\n"
    "  scale NAME              set NAME's pool bounds until the next reload\n"
    "\n"
    "Options:\n"
    "  -a, --admin=ADDR        the admin listener: unix:/path, HOST:PORT or\n"
    "                          [V6]:PORT (default: $PSUP_ADMIN)\n"
    "  -t, --timeout=SECONDS   how long to wait for the answer (default 10)\n"
    "      --json              status: print the /status document as it is\n"
    "      --min-spare=N       scale: the new min_spare\n"
    "      --max-spare=N       scale: the new max_spare\n"
    "      --max-workers=N     scale: the new max_workers\n"
    "  -h, --help              print this help and exit\n"
    "\n"
    "Control (reload, pause, resume, scale) is taken on unix: admin listeners\n"
    "only. Exit status: 0 done, 1 the request failed (psup could not be reached,\n"
    "or refused or failed the request), 2 usage error. See psup(1).\n";

struct ctl_args {
    const char *admin;
    double timeout;
    bool json;
    long long scale[3]; /* min_spare, max_spare, max_workers; -1: not given */
    const char *command;
    const char *name;
};

static int ctl_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "psup ctl: %s%s%s\nTry 'psup ctl --help' for more information.\n", what,
            arg ? " " : "", arg ? arg : "");
    return CTL_USAGE;
}

static bool parse_count(const char *s, long long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return !errno && !*end;
}

/* Returns -1 to go on, or the exit status to leave with. */
static int parse_options(int argc, char **argv, struct ctl_args *a)
{
    static const struct option options[] = {
        {"admin", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"min-spare", required_argument, NULL, '0'},
        {"max-spare", required_argument, NULL, '1'},
        {"max-workers", required_argument, NULL, '2'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    char *end;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'a': a->admin = optarg; break;
        case 'j': a->json = true; break;
        case 'h': fputs(ctl_usage, stdout); return CTL_DONE;
        case 't':
            a->timeout = strtod(optarg, &end);
            if (*end || end == optarg || !(a->timeout > 0 && a->timeout <= 3600))
                return ctl_usage_error("--timeout must be seconds between 0 and 3600, not",
                                       optarg);
            break;
        case '0': case '1': case '2':
            if (!parse_count(optarg, &a->scale[opt - '0']))
                return ctl_usage_error("a pool bound must be a number, not", optarg);
            break;
        default:
            return ctl_usage_error(optopt ? "an option needs a value:" : "unknown option",
                                   argv[optind - 1]);
        }
    }
    return -1;
}

static bool valid_name(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

    return n >= 1 && n <= 64 && !s[n];
}

/* The command and its name, and options only where they mean something. */
static int check_command(int argc, char **argv, struct ctl_args *a)
{
    static const char *const named[] = {"pause", "resume", "scale", NULL};
    static const char *const plain[] = {"status", "metrics", "reload", NULL};
    bool takes_name = false, known = false;

    if (optind == argc)
        return ctl_usage_error("missing COMMAND (status, metrics, reload, pause, resume, scale)",
                               NULL);
    a->command = argv[optind++];
    for (size_t i = 0; named[i]; i++)
        takes_name |= strcmp(a->command, named[i]) == 0;
    for (size_t i = 0; plain[i]; i++)
        known |= strcmp(a->command, plain[i]) == 0;
    if (!known && !takes_name)
        return ctl_usage_error("unknown command", a->command);
    if (takes_name && optind == argc)
        return ctl_usage_error("missing the service's NAME after", a->command);
    if (takes_name)
        a->name = argv[optind++];
    if (a->name && !valid_name(a->name))
        return ctl_usage_error("not a service name (1 to 64 of A-Z a-z 0-9 _ . -):", a->name);
    if (optind < argc)
        return ctl_usage_error("unexpected argument", argv[optind]);
    if (a->json && strcmp(a->command, "status") != 0)
        return ctl_usage_error("--json goes with status only", NULL);
    bool scaling = a->scale[0] >= 0 || a->scale[1] >= 0 || a->scale[2] >= 0;
    if (scaling != (strcmp(a->command, "scale") == 0))
        return ctl_usage_error(scaling ? "--min-spare, --max-spare and --max-workers go with "
                                         "scale only"
                                       : "scale needs --min-spare, --max-spare or --max-workers",
                               NULL);
    return -1;
}

/* The request line's target for the command. */
static void build_target(const struct ctl_args *a, char *out, size_t size)
{
    static const char *const keys[] = {"min_spare", "max_spare", "max_workers"};

    if (!a->name) {
        snprintf(out, size, "/%s", a->command);
        return;
    }
    int n = snprintf(out, size, "/%s?service=%s", a->command, a->name);
    for (int i = 0; i < 3 && n > 0 && (size_t)n < size; i++)
        if (a->scale[i] >= 0)
            n += snprintf(out + n, size - (size_t)n, "&%s=%lld", keys[i], a->scale[i]);
}

/* What to print for a successful answer (the caller frees it), or NULL if
 * the answer is not what the command expects. */
static char *success_text(const struct ctl_args *a, const struct psup_ctl_response *r)
{
    if (strcmp(a->command, "metrics") == 0 || (a->json && strcmp(a->command, "status") == 0))
        return strdup(r->body);
    if (strcmp(a->command, "status") == 0)
        return psup_ctl_render_status(r->body);
    if (strcmp(a->command, "reload") == 0)
        return psup_ctl_render_reload(r->body);
    return psup_ctl_render_control(r->body);
}

/* Print the answer; returns the exit status. A rejected reload prints
 * its problems, like a successful one its changes. */
static int report(const struct ctl_args *a, const struct psup_ctl_response *r)
{
    bool ok = r->status >= 200 && r->status < 300;
    bool reload_answer = strcmp(a->command, "reload") == 0 && (r->status == 422 || ok);
    char *text = ok || reload_answer ? success_text(a, r) : NULL;

    if (!text && ok) {
        fprintf(stderr, "psup ctl: psup's answer (HTTP %d) is not what %s expects\n", r->status,
                a->command);
        return CTL_FAILED;
    }
    if (!text) {
        text = psup_ctl_render_error(r->status, r->content_type, r->body);
        fprintf(stderr, "psup ctl: %s\n", text ? text : "out of memory");
    } else {
        fputs(text, ok ? stdout : stderr);
    }
    free(text);
    return ok ? CTL_DONE : CTL_FAILED;
}

int psup_cmd_ctl(int argc, char **argv)
{
    struct ctl_args a = {.timeout = 10, .scale = {-1, -1, -1}};
    struct psup_ctl_response resp;
    struct psup_addr addr;
    const char *why = NULL;
    char target[256];

    int rc = parse_options(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if ((rc = check_command(argc, argv, &a)) >= 0)
        return rc;
    if (!a.admin)
        a.admin = getenv("PSUP_ADMIN");
    if (!a.admin || !*a.admin)
        return ctl_usage_error("no admin address: give --admin ADDR or set PSUP_ADMIN", NULL);
    if (psup_ctl_parse_addr(a.admin, &addr, &why) < 0) {
        fprintf(stderr, "psup ctl: invalid admin address %s: %s\n", a.admin, why);
        return CTL_USAGE;
    }
    build_target(&a, target, sizeof(target));
    bool get = strcmp(a.command, "status") == 0 || strcmp(a.command, "metrics") == 0;
    rc = psup_ctl_request(&addr, get ? "GET" : "POST", target, (int)(a.timeout * 1000), &resp,
                          &why);
    if (rc < 0) {
        fprintf(stderr, "psup ctl: %s: cannot %s: %s\n", a.admin, why, strerror(-rc));
        return CTL_FAILED;
    }
    rc = report(&a, &resp);
    psup_ctl_response_free(&resp);
    return rc;
}
