/* SPDX-License-Identifier: MIT */
/* The subcommands of psup's command line, each returning its exit status. */
#ifndef PSUP_CMD_H
#define PSUP_CMD_H

/* psup import xinetd|inetd ... (argv[0] is "import"). */
int psup_cmd_import(int argc, char **argv);

/* psup ctl [--admin ADDR] COMMAND ... (argv[0] is "ctl"). */
int psup_cmd_ctl(int argc, char **argv);

#endif
