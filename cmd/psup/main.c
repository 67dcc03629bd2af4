/* SPDX-License-Identifier: MIT */
/*
 * psup's command line: arguments, --check, --version, --help, and the exit
 * status. Everything else is in lib/. This is the only main() and the only
 * place that chooses an exit status (spec/signals.md lists them).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config/config.h"
#include "base/fd.h"
#include "base/log.h"
#include "loop/supervisor.h"

static const char usage_text[] =
    "Usage: psup [OPTIONS] CONFIG.json\n"
    "       psup ctl [--admin ADDR] COMMAND ...  (see psup ctl --help)\n"
    "       psup import xinetd|inetd ...  (see psup import --help)\n"
    "\n"
    "Serve every service of CONFIG.json from pools of pre-forked workers:\n"
    "each connection runs the service's command with the socket on stdin\n"
    "and stdout. Runs in the foreground; logs go to stderr.\n"
    "\n"
    "Options:\n"
    "  -c, --check             validate CONFIG.json, print one line per service,\n"
    "                          exit 0 if it is valid and 1 if not\n"
    "      --log-format=FMT    text (logfmt, the default) or json (one object a line)\n"
    "      --ready-fd=N        write a newline to descriptor N and close it once\n"
    "                          every service is serving (s6's notification-fd)\n"
    "  -v, --verbose           also log debug events (reaped orphans)\n"
    "  -V, --version           print the version and exit\n"
    "  -h, --help              print this help and exit\n"
    "\n"
    "Signals: TERM or INT stop gracefully (a second one stops at once), QUIT\n"
    "stops at once, HUP reloads CONFIG.json, USR1 logs the state of every pool.\n"
    "Exit status: 0 after a clean stop, 1 invalid configuration, 2 usage error,\n"
    "3 could not start (e.g. an address cannot be bound), 4 an essential service\n"
    "kept failing, 128+N stopped at once by signal N. See psup(1) and psup.json(5).\n";

struct cli {
    const char *config;
    bool check;
    bool verbose;
    bool format_given;
    enum psup_log_format format;
    int ready_fd;
};

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "psup: %s%s%s\nTry 'psup --help' for more information.\n", what,
            arg ? " " : "", arg ? arg : "");
    return PSUP_EXIT_USAGE;
}

/* --ready-fd N: an open descriptor above psup's standard three (closing
 * one of those once ready would let a later socket take its number). It
 * is made close-on-exec: no handler may write to it in psup's name. */
static int ready_fd_arg(const char *arg, int *fd)
{
    char *end;

    errno = 0;
    long n = strtol(arg, &end, 10);
    if (errno || end == arg || *end || n < 3 || n > INT_MAX)
        return usage_error("--ready-fd must be a descriptor number of 3 or more, not", arg);
    int flags = fcntl((int)n, F_GETFD);
    if (flags < 0 || fcntl((int)n, F_SETFD, flags | FD_CLOEXEC) < 0)
        return usage_error("--ready-fd names a descriptor that is not open:", arg);
    *fd = (int)n;
    return -1;
}

/* Returns -1 to go on, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
    static const struct option options[] = {
        {"check", no_argument, NULL, 'c'},
        {"log-format", required_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"ready-fd", required_argument, NULL, 'r'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, rc;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+cvVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': cli->check = true; break;
        case 'r':
            if ((rc = ready_fd_arg(optarg, &cli->ready_fd)) >= 0)
                return rc;
            break;
        case 'v': cli->verbose = true; break;
        case 'V': printf("psup %s\n", PSUP_VERSION); return PSUP_EXIT_OK;
        case 'h': fputs(usage_text, stdout); return PSUP_EXIT_OK;
        case 'f':
            cli->format_given = true;
            if (strcmp(optarg, "text") == 0)
                cli->format = PSUP_LOG_TEXT;
            else if (strcmp(optarg, "json") == 0)
                cli->format = PSUP_LOG_JSON;
            else
                return usage_error("--log-format must be text or json, not", optarg);
            break;
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return usage_error("missing CONFIG.json", NULL);
    if (optind + 1 < argc)
        return usage_error("unexpected argument", argv[optind + 1]);
    cli->config = argv[optind];
    return -1;
}

/* --check prints problems for a person; a run logs them as records. */
static void report_problems(const struct cli *cli, const struct psup_diag *diag)
{
    if (!cli->check) {
        psup_log_problems("config_invalid", diag);
        return;
    }
    for (size_t i = 0; i < diag->count; i++)
        fprintf(stderr, "psup: %s\n", diag->items[i]);
}

/* The summary of a valid file, with what may still fail when psup binds
 * (warnings do not change the exit status: psup may run elsewhere, later,
 * or with other privileges than --check). */
static int check_only(const struct psup_config *cfg, const char *path)
{
    struct psup_diag warnings;
    char line[1024];

    psup_diag_init(&warnings);
    size_t n = psup_config_warn(cfg, &warnings);
    for (size_t i = 0; i < warnings.count; i++)
        fprintf(stderr, "psup: warning: %s\n", warnings.items[i]);
    psup_diag_free(&warnings);
    for (size_t i = 0; i < cfg->n_services; i++) {
        psup_config_describe(&cfg->services[i], line, sizeof(line));
        printf("%s\n", line);
    }
    if (cfg->admin.n_listen) {
        printf("admin: listen");
        for (size_t i = 0; i < cfg->admin.n_listen; i++)
            printf(" %s", cfg->admin.listen_text[i]);
        printf("; at most %u clients\n", cfg->admin.max_clients);
    }
    printf("%s: OK, %zu service%s", path, cfg->n_services, cfg->n_services == 1 ? "" : "s");
    if (n)
        printf(", %zu warning%s", n, n == 1 ? "" : "s");
    printf("\n");
    return PSUP_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli cli = {.format = PSUP_LOG_TEXT, .ready_fd = -1};
    struct psup_diag diag;

    /* 1. fds 0-2 open, so no socket can land on them (xinetd#22). */
    if (psup_fd_ensure_stdio() < 0)
        return PSUP_EXIT_START;

    /* 2. Arguments; "psup import" is a command of its own. */
    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return psup_cmd_import(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return psup_cmd_ctl(argc - 1, argv + 1);
    int rc = parse_args(argc, argv, &cli);
    if (rc >= 0)
        return rc;
    psup_log_setup(2, cli.format, cli.verbose ? PSUP_LOG_DEBUG : PSUP_LOG_INFO);

    /* 3. The configuration, in full, before anything is bound. */
    psup_diag_init(&diag);
    struct psup_config *cfg = psup_config_load(cli.config, &diag);
    report_problems(&cli, &diag);
    psup_diag_free(&diag);
    if (!cfg) {
        if (!cli.check)
            psup_log_exit(PSUP_EXIT_CONFIG);
        return PSUP_EXIT_CONFIG;
    }
    if (cli.check) {
        rc = check_only(cfg, cli.config);
        psup_config_unref(cfg);
        return rc;
    }
    if (!cli.format_given && cfg->log_format_set)
        psup_log_set_format(cfg->log_format);

    /* 4. Serve until stopped. PSUP_SPAWN=fork is a diagnostic switch that
     *    creates workers by copying memory (docs/design.md). */
    const char *spawn = getenv("PSUP_SPAWN");
    struct psup_supervisor_options opts = {
        .config_path = cli.config,
        .log_format_forced = cli.format_given,
        .use_fork = spawn && strcmp(spawn, "fork") == 0,
        .ready_fd = cli.ready_fd,
    };
    rc = psup_supervisor_run(cfg, &opts);
    psup_config_unref(cfg);
    return rc;
}
