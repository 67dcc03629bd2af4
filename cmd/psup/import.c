/* SPDX-License-Identifier: MIT */
/*
 * psup import xinetd PATH... | psup import inetd FILE: the psup
 * configuration on stdout, one line on stderr for each setting not carried
 * over, and the exit status (lib/import does the work).
 */
#include "import/import.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

/* The import's exit statuses (psup(1), IMPORT). */
enum {
    IMPORT_COMPLETE = 0,   /* everything was carried over */
    IMPORT_INCOMPLETE = 1, /* something was not; the configuration is written */
    IMPORT_FAILED = 2,     /* an input cannot be read or parsed, or a usage error */
};

static const char import_usage[] =
    "Usage: psup import xinetd [OPTIONS] PATH...\n"
    "       psup import inetd [OPTIONS] FILE\n"
    "\n"
    "Print a psup configuration made from xinetd files and directories (read as\n"
    "includedir reads them) or from an inetd.conf, and on stderr one line for\n"
    "each setting that is not carried over: FILE:LINE: NAME: not imported: REASON.\n"
    "\n"
    "Options:\n"
    "      --services=FILE     the services database for ports (default /etc/services)\n"
    "      --include-disabled  also import the services xinetd's files disable\n"
    "  -h, --help              print this help and exit\n"
    "\n"
    "Exit status: 0 everything was carried over, 1 something was not (the\n"
    "configuration is written all the same), 2 an input cannot be read or parsed,\n"
    "or a usage error. See psup(1) and docs/migrating.md.\n";

static int import_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "psup import: %s%s%s\nTry 'psup import --help' for more information.\n",
            what, arg ? " " : "", arg ? arg : "");
    return IMPORT_FAILED;
}

/* Returns -1 to go on, or the exit status to leave with. */
static int parse_import_args(int argc, char **argv, struct psup_import_options *opts)
{
    static const struct option options[] = {
        {"services", required_argument, NULL, 's'},
        {"include-disabled", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 's': opts->services_path = optarg; break;
        case 'd': opts->include_disabled = true; break;
        case 'h': fputs(import_usage, stdout); return IMPORT_COMPLETE;
        default: return import_usage_error("unknown option", argv[optind - 1]);
        }
    }
    return -1;
}

static int finish(struct psup_import_result *r, int rc)
{
    int status = IMPORT_COMPLETE;

    if (rc == 0) {
        int out = psup_import_emit(stdout, r);
        if (out < 0) {
            fprintf(stderr, "psup import: cannot write the configuration: %s\n", strerror(-out));
            rc = out;
        }
    }
    for (size_t i = 0; i < psup_import_message_count(r); i++)
        fprintf(stderr, "%s\n", psup_import_message(r, i));
    if (rc == -ENOMEM)
        fputs("psup import: out of memory\n", stderr);
    if (rc < 0)
        status = IMPORT_FAILED;
    else if (r->lost)
        status = IMPORT_INCOMPLETE;
    psup_import_result_free(r);
    return status;
}

int psup_cmd_import(int argc, char **argv)
{
    struct psup_import_options opts = {0};
    struct psup_import_result r;

    /* argv[0] is "import"; the format comes first, then its options. */
    if (argc < 2)
        return import_usage_error("expected xinetd or inetd", NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(import_usage, stdout);
        return IMPORT_COMPLETE;
    }
    const char *format = argv[1];
    bool xinetd = strcmp(format, "xinetd") == 0;
    if (!xinetd && strcmp(format, "inetd") != 0)
        return import_usage_error("expected xinetd or inetd, not", format);
    int rc = parse_import_args(argc - 1, argv + 1, &opts);
    if (rc >= 0)
        return rc;
    int n_paths = argc - 1 - optind;
    char **paths = argv + 1 + optind;
    if (n_paths == 0)
        return import_usage_error(xinetd ? "expected a file or directory" : "expected a file",
                                  NULL);
    if (!xinetd && n_paths > 1)
        return import_usage_error("unexpected argument", paths[1]);
    if (!xinetd && opts.include_disabled)
        return import_usage_error("--include-disabled is for xinetd", NULL);
    psup_import_result_init(&r);
    rc = xinetd ? psup_import_xinetd((const char *const *)paths, (size_t)n_paths, &opts, &r)
                : psup_import_inetd(paths[0], &opts, &r);
    return finish(&r, rc);
}
