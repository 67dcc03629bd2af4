/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the inetd.conf importer (lib/import/inetd.c): each field in
 * the forms of openbsd-inetd, inetutils, busybox and FreeBSD, continuation
 * and host lines, the argv[0] rule, tcpd and internal services, and the
 * syntax errors.
 */
#include "import_test.h"

struct run {
    struct psup_import_result r;
    int rc;
};

static struct run ind(const char *text)
{
    struct psup_import_options opts = {.services_path = services_path};
    struct run run;

    psup_import_result_init(&run.r);
    run.rc = psup_import_inetd_text("inetd.conf", text, &opts, &run.r);
    return run;
}

static void done(struct run *run)
{
    psup_import_result_free(&run->r);
}

struct line_case {
    const char *line;
    const char *name;
    const char *listen;
    const char *command;
    const char *user;
    const char *group;
    bool wait;
};

static void test_lines(void **state)
{
    (void)state;
    static const struct line_case cases[] = {
        {"finger stream tcp nowait nobody /usr/sbin/in.fingerd in.fingerd -w", "finger",
         "0.0.0.0:79", "/usr/sbin/in.fingerd -w", "nobody", NULL, false},
        {"finger\tstream\ttcp6\tnowait\tnobody.nogroup\t/usr/sbin/in.fingerd\tin.fingerd",
         "finger", "[::]:79", "/usr/sbin/in.fingerd", "nobody", "nogroup", false},
        {"finger stream tcp46 nowait nobody:nogroup /usr/sbin/in.fingerd", "finger", "*:79",
         "/usr/sbin/in.fingerd", "nobody", "nogroup", false},
        {"tftp dgram udp wait root /usr/sbin/in.tftpd /usr/sbin/in.tftpd -s /srv/tftp", "tftp",
         "udp://0.0.0.0:69", "/usr/sbin/in.tftpd -s /srv/tftp", "root", NULL, true},
        {"127.0.0.1:8080 stream tcp nowait www-data /usr/bin/prog prog", "8080",
         "127.0.0.1:8080", "/usr/bin/prog", "www-data", NULL, false},
        {"[::1]:ftp stream tcp6 nowait 0 /usr/bin/prog prog", "ftp", "[::1]:21",
         "/usr/bin/prog", "0", NULL, false},
        {"localhost:ftp stream tcp nowait u /usr/bin/prog", "ftp", "127.0.0.1:21",
         "/usr/bin/prog", "u", NULL, false},
        {"/run/s.sock stream unix nowait u /usr/bin/prog prog", "s.sock", "unix:/run/s.sock",
         "/usr/bin/prog", "u", NULL, false},
        {"echo stream tcp nowait root internal", "echo", "0.0.0.0:7", "cat", "root", NULL,
         false},
        {"echo dgram udp wait root internal", "echo", "udp://0.0.0.0:7", "cat", "root", NULL,
         false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct line_case *c = &cases[i];
        struct run run = ind(c->line);
        if (run.rc != 0 || run.r.n_services != 1)
            fail_msg("case %zu: rc %d, %zu services, %s", i, run.rc, run.r.n_services,
                     psup_import_message(&run.r, 0));
        const struct psup_import_service *s = run.r.services[0];
        assert_string_equal(s->name, c->name);
        assert_string_equal(joined(&s->listen), c->listen);
        assert_string_equal(joined(&s->command), c->command);
        assert_string_equal(s->user.text, c->user);
        if (c->group)
            assert_string_equal(s->group.text, c->group);
        else
            assert_null(s->group.text);
        assert_int_equal(s->mode, c->wait ? PSUP_IMPORT_MODE_WAIT : PSUP_IMPORT_MODE_DEFAULT);
        assert_messages(&run.r, NO_MESSAGES);
        done(&run);
    }
}

static void test_comments_continuation_and_host_lines(void **state)
{
    (void)state;
    struct run run = ind("# comment\n\n   # indented comment\n"
                         "ftp stream tcp nowait root /usr/sbin/in.ftpd in.ftpd -l\n"
                         "\t-a\n"
                         "127.0.0.1:\n"
                         "telnet stream tcp nowait root /usr/sbin/in.telnetd in.telnetd\n"
                         "*:\n"
                         "finger stream tcp nowait root /usr/sbin/in.fingerd in.fingerd\n");
    assert_int_equal(run.rc, 0);
    assert_messages(&run.r, NO_MESSAGES);
    assert_string_equal(joined(&service_named(&run.r, "ftp")->command), "/usr/sbin/in.ftpd -l -a");
    assert_string_equal(joined(&service_named(&run.r, "telnet")->listen), "127.0.0.1:23");
    assert_string_equal(joined(&service_named(&run.r, "finger")->listen), "0.0.0.0:79");
    done(&run);
}

static void test_the_same_service_twice(void **state)
{
    (void)state;
    struct run run = ind("echo stream tcp nowait root internal\n"
                         "echo dgram udp wait root internal\n"
                         "echo stream tcp6 nowait root internal\n"
                         "127.0.0.2:echo stream tcp nowait root internal\n"
                         "echo stream tcp nowait root internal\n");
    assert_int_equal(run.r.n_services, 4);
    assert_string_equal(run.r.services[1]->name, "echo-udp");
    assert_string_equal(run.r.services[2]->name, "echo-tcp6");
    assert_string_equal(run.r.services[3]->name, "echo-tcp");
    assert_messages(&run.r, MESSAGES("inetd.conf:5: service echo: not imported: 0.0.0.0:7 is "
                                     "already the address of echo"));
    done(&run);
}

static void test_wait_field_limits(void **state)
{
    (void)state;
    struct run run = ind("ftp stream tcp nowait.120 root /usr/bin/p p\n"
                         "telnet stream tcp nowait:30 root /usr/bin/p p\n"
                         "finger stream tcp nowait/10/60/2 root /usr/bin/p p\n"
                         "tftp dgram udp wait.10 root /usr/bin/p p\n"
                         "talk dgram udp nowait root /usr/bin/p p\n");
    const struct psup_import_service *ftp = service_named(&run.r, "ftp");
    assert_true(ftp->rate == 2);
    assert_int_equal(ftp->rate_burst, 120);
    assert_true(service_named(&run.r, "telnet")->rate == 0.5);
    const struct psup_import_service *finger = service_named(&run.r, "finger");
    assert_int_equal(finger->max_workers, 10);
    assert_false(finger->reject_overload);
    assert_int_equal(finger->max_per_source, 2);
    assert_int_equal(service_named(&run.r, "talk")->mode, PSUP_IMPORT_MODE_WAIT);
    assert_messages(
        &run.r,
        MESSAGES("inetd.conf:1: wait: note: .120: rate 120 a minute; above it inetd stops the "
                 "service for ten minutes, psup refuses only the connections over the rate",
                 "inetd.conf:2: wait: note: .30: rate 30 a minute; above it inetd stops the "
                 "service for ten minutes, psup refuses only the connections over the rate",
                 "inetd.conf:3: wait: not imported: 60 connections per address a minute: psup "
                 "limits the connections of an address at once (max_per_source), not a minute",
                 "inetd.conf:4: wait: not imported: .10: a wait-mode server is started once and "
                 "restarted with psup's backoff",
                 "inetd.conf:5: wait: note: nowait on a datagram socket: inetd gives the server "
                 "the socket whenever it is readable; psup's wait mode runs one server at a "
                 "time"));
    done(&run);
}

static void test_programs_and_argv0(void **state)
{
    (void)state;
    struct run run = ind("ftp stream tcp nowait root /usr/sbin/tcpd in.ftpd -l\n"
                         "telnet stream tcp nowait root /usr/sbin/tcpd /usr/lib/telnetd -h\n"
                         "finger stream tcp nowait root /bin/busybox fingerd -x\n"
                         "daytime stream tcp nowait root /usr/bin/prog other\n"
                         "time stream tcp nowait root /usr/bin/prog /usr/bin/prog -v\n"
                         "discard stream tcp nowait root /usr/sbin/tcpd\n");
    assert_string_equal(joined(&service_named(&run.r, "ftp")->command), "/usr/sbin/in.ftpd -l");
    assert_string_equal(joined(&service_named(&run.r, "telnet")->command), "/usr/lib/telnetd -h");
    assert_string_equal(joined(&service_named(&run.r, "finger")->command),
                        "/bin/busybox fingerd -x");
    assert_string_equal(joined(&service_named(&run.r, "daytime")->command), "/usr/bin/prog");
    assert_string_equal(joined(&service_named(&run.r, "time")->command), "/usr/bin/prog -v");
    assert_messages(
        &run.r,
        MESSAGES("inetd.conf:1: server: not imported: tcpd is left out and in.ftpd run directly: "
                 "the rules of /etc/hosts.allow and /etc/hosts.deny are not carried over (write "
                 "them as allow and deny)",
                 "inetd.conf:2: server: not imported: tcpd is left out and /usr/lib/telnetd run "
                 "directly: the rules of /etc/hosts.allow and /etc/hosts.deny are not carried "
                 "over (write them as allow and deny)",
                 "inetd.conf:3: server: note: argv[0] \"fingerd\": run as \"busybox fingerd\", "
                 "which busybox reads the same",
                 "inetd.conf:4: server: not imported: argv[0] \"other\": psup runs /usr/bin/prog "
                 "with its own path as argv[0]",
                 "inetd.conf:6: service discard: not imported: tcpd without the program it runs"));
    done(&run);
}

static void test_entries_not_imported(void **state)
{
    (void)state;
    struct run run = ind("tcpmux/+scp stream tcp nowait root /usr/bin/p p\n"
                         "rstatd/1-3 dgram rpc/udp wait root /usr/sbin/rpc.rstatd rpc.rstatd\n"
                         "nosuch stream tcp nowait root /usr/bin/p p\n"
                         "ftp raw tcp nowait root /usr/bin/p p\n"
                         "ftp stream udp nowait root /usr/bin/p p\n"
                         "ftp stream sctp nowait root /usr/bin/p p\n"
                         "ftp stream tcp sometimes root /usr/bin/p p\n"
                         "host.example.com:ftp stream tcp nowait root /usr/bin/p p\n"
                         "::1:ftp stream tcp nowait root /usr/bin/p p\n"
                         "chargen stream tcp nowait root internal\n"
                         "tcpmux stream tcp nowait root internal\n"
                         "ftp stream tcp,sndbuf=64k nowait root/daemon /usr/bin/p p\n");
    assert_int_equal(run.r.n_services, 2);
    assert_messages(
        &run.r,
        MESSAGES("inetd.conf:1: service tcpmux/+scp: not imported: a TCPMUX service: psup has no "
                 "TCPMUX multiplexer",
                 "inetd.conf:2: service rstatd/1-3: not imported: an RPC service: psup does not "
                 "register with the portmapper",
                 "inetd.conf:3: service nosuch: not imported: nosuch/tcp is not in SERVICES",
                 "inetd.conf:4: service ftp: not imported: socket type raw: psup serves stream "
                 "and dgram sockets",
                 "inetd.conf:5: service ftp: not imported: protocol udp with socket type stream: "
                 "no such socket",
                 "inetd.conf:6: service ftp: not imported: protocol sctp: psup serves tcp, tcp6, "
                 "tcp46, udp, udp6, udp46 and unix streams",
                 "inetd.conf:7: service ftp: not imported: expected wait or nowait, got sometimes",
                 "inetd.conf:8: service ftp: not imported: host host.example.com: psup binds "
                 "addresses, not names; write its address",
                 "inetd.conf:9: service ftp: not imported: host ::1 does not match protocol tcp",
                 "inetd.conf:11: service tcpmux: not imported: inetd's internal tcpmux/stream has "
                 "no psup equivalent",
                 "inetd.conf:12: protocol: not imported: sndbuf=64k: psup sets no socket buffer "
                 "sizes",
                 "inetd.conf:12: user: not imported: login class daemon: psup has no login "
                 "classes"));
    done(&run);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    struct run run = ind("ftp stream tcp nowait root\n");
    assert_int_equal(run.rc, -EINVAL);
    assert_true(run.r.failed);
    assert_messages(&run.r, MESSAGES("inetd.conf:1: expected a server program after \"root\""));
    done(&run);

    run = ind("# x\nftp\n");
    assert_int_equal(run.rc, -EINVAL);
    assert_messages(&run.r, MESSAGES("inetd.conf:2: expected a socket type after \"ftp\""));
    done(&run);

    struct psup_import_options opts = {0};
    psup_import_result_init(&run.r);
    assert_int_equal(psup_import_inetd("/nonexistent/inetd.conf", &opts, &run.r), -EINVAL);
    assert_messages(&run.r, MESSAGES("/nonexistent/inetd.conf: cannot read "
                                     "/nonexistent/inetd.conf: No such file or directory"));
    done(&run);
}

static void test_nothing_to_import(void **state)
{
    (void)state;
    struct run run = ind("# everything is commented out\n#ftp stream tcp nowait root /bin/p\n");
    assert_int_equal(run.rc, 0);
    assert_true(run.r.lost);
    assert_messages(&run.r, MESSAGES("psup import: no service to import: psup needs at least one"));
    done(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_comments_continuation_and_host_lines),
        cmocka_unit_test(test_the_same_service_twice),
        cmocka_unit_test(test_wait_field_limits),
        cmocka_unit_test(test_programs_and_argv0),
        cmocka_unit_test(test_entries_not_imported),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_nothing_to_import),
    };
    return cmocka_run_group_tests(tests, write_services, remove_services);
}
