/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the xinetd importer (lib/import/xinetd*.c): the file
 * syntax and its errors, defaults and their inheritance, every attribute's
 * translation or the message saying why it has none, and the services
 * xinetd itself would refuse. Each case imports a small text with a
 * services database of its own and compares the services and the exact
 * messages.
 */
#include "import_test.h"

#include <sys/stat.h>

struct run {
    struct psup_import_result r;
    int rc;
};

static struct run xin_opts(const char *text, bool include_disabled)
{
    struct psup_import_options opts = {.services_path = services_path,
                                       .include_disabled = include_disabled};
    struct run run;

    psup_import_result_init(&run.r);
    run.rc = psup_import_xinetd_text("x.conf", text, &opts, &run.r);
    return run;
}

static struct run xin(const char *text)
{
    return xin_opts(text, false);
}

/* One service called "t" on port 7000 running /bin/cat, plus lines. */
#define SVC(lines)                                                                               \
    "service t\n{\n\ttype = UNLISTED\n\tport = 7000\n\tsocket_type = stream\n\twait = no\n"     \
    "\tuser = nobody\n\tserver = /bin/cat\n" lines "}\n"

static void done(struct run *run)
{
    psup_import_result_free(&run->r);
}

/* ---- the basics ------------------------------------------------------- */

static void test_a_plain_service(void **state)
{
    (void)state;
    struct run run = xin("# a comment\n\n" SVC("\tserver_args = -u -v\n"));
    assert_int_equal(run.rc, 0);
    assert_false(run.r.lost);
    assert_messages(&run.r, NO_MESSAGES);
    assert_int_equal(run.r.n_services, 1);
    const struct psup_import_service *s = run.r.services[0];
    assert_string_equal(s->name, "t");
    assert_string_equal(joined(&s->listen), "*:7000");
    assert_string_equal(joined(&s->command), "/bin/cat -u -v");
    assert_string_equal(s->user.text, "nobody");
    assert_false(s->user.numeric);
    /* xinetd's groups defaults to no. */
    assert_int_equal(s->supplementary_groups, 0);
    assert_int_equal(s->mode, PSUP_IMPORT_MODE_DEFAULT);
    done(&run);
}

static void test_port_from_the_services_database(void **state)
{
    (void)state;
    struct run run = xin("service finger\n{\n socket_type = stream\n wait = no\n user = 65534\n"
                         " server = /usr/sbin/in.fingerd\n}\n"
                         "service discard\n{\n  protocol = tcp\n  wait = no\n  type = INTERNAL\n}\n"
                         "service sink\n{\n  protocol = tcp\n  wait = no\n  type = INTERNAL\n"
                         "  port = 10\n}\n");
    assert_int_equal(run.rc, 0);
    assert_string_equal(joined(&service_named(&run.r, "finger")->listen), "*:79");
    assert_true(service_named(&run.r, "finger")->user.numeric);
    assert_string_equal(joined(&service_named(&run.r, "discard")->listen), "*:9");
    assert_messages(&run.r, MESSAGES("x.conf:14: service sink: not imported: port 10, but "
                                     "SERVICES gives sink/tcp port 9: xinetd refuses it"));
    done(&run);
}

static void test_services_that_xinetd_refuses(void **state)
{
    (void)state;
    struct run run = xin(
        "service nosuch\n{\n socket_type = stream\n wait = no\n user = u\n server = /bin/cat\n}\n"
        "service u\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n user = u\n"
        " server = /bin/cat\n}\n"
        "service talk\n{\n socket_type = dgram\n wait = no\n user = u\n server = /bin/cat\n}\n"
        "service echo\n{\n socket_type = stream\n user = u\n server = /bin/cat\n}\n"
        "service ftp\n{\n socket_type = stream\n wait = no\n server = /bin/cat\n}\n"
        "service telnet\n{\n socket_type = raw\n wait = no\n user = u\n server = /bin/cat\n}\n");
    assert_int_equal(run.rc, 0);
    assert_true(run.r.lost);
    assert_int_equal(run.r.n_services, 0);
    assert_messages(
        &run.r,
        MESSAGES("x.conf:1: service nosuch: not imported: nosuch/tcp is not in SERVICES and type "
                 "is not UNLISTED: xinetd refuses it",
                 "x.conf:8: service u: not imported: type UNLISTED without port: xinetd refuses it",
                 "x.conf:16: service talk: not imported: socket_type dgram with wait = no: xinetd "
                 "refuses it (a datagram server must wait)",
                 "x.conf:23: service echo: not imported: no wait: xinetd refuses the service",
                 "x.conf:29: service ftp: not imported: no user: xinetd refuses the service",
                 "x.conf:35: service telnet: not imported: socket_type raw: psup serves stream and "
                 "dgram sockets",
                 "psup import: no service to import: psup needs at least one"));
    done(&run);
}

static void test_services_file_that_cannot_be_read(void **state)
{
    (void)state;
    struct psup_import_options opts = {.services_path = "/nonexistent/services"};
    struct psup_import_result r;

    psup_import_result_init(&r);
    int rc = psup_import_xinetd_text(
        "x.conf", "service ftp\n{\n socket_type = stream\n wait = no\n user = u\n"
                  " server = /bin/cat\n}\n" SVC(""), &opts, &r);
    assert_int_equal(rc, 0);
    assert_int_equal(r.n_services, 1);
    assert_messages(&r, MESSAGES("x.conf:1: service ftp: not imported: cannot read "
                                 "/nonexistent/services (No such file or directory) for the port "
                                 "of ftp/tcp: set port and type = UNLISTED, or name the file with "
                                 "--services"));
    psup_import_result_free(&r);
}

/* ---- syntax ------------------------------------------------------------ */

struct syntax_case {
    const char *text;
    const char *message;
};

static void test_syntax_errors(void **state)
{
    (void)state;
    static const struct syntax_case cases[] = {
        {"service t {\n port = 1\n}\n",
         "x.conf:1: expected \"{\" alone on the line after \"service t\""},
        {"service t\n{\n port = 1\n", "x.conf:1: the entry of t has no closing \"}\""},
        {"defaults\n{\n", "x.conf:1: the entry of defaults has no closing \"}\""},
        {"service t\n{\n port=1\n}\n",
         "x.conf:3: expected a space between the attribute port and \"=\""},
        {"service t\n{\n port : 1\n}\n", "x.conf:3: expected \"=\", \"+=\" or \"-=\" after port"},
        {"service t\n{\n port\n}\n", "x.conf:3: expected \"=\", \"+=\" or \"-=\" after port"},
        {"# ok\nservices t\n", "x.conf:2: expected service, defaults, include or includedir, "
                               "got \"services\""},
        {"service\n", "x.conf:1: expected a name after service"},
        {"include\n", "x.conf:1: expected a file after include"},
        {"include /nonexistent/x\n",
         "x.conf:1: cannot read /nonexistent/x: No such file or directory"},
        {"includedir /nonexistent/d\n",
         "x.conf:1: cannot read the directory /nonexistent/d: No such file or directory"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct run run = xin(cases[i].text);
        if (run.rc != -EINVAL || !run.r.failed)
            fail_msg("case %zu: rc %d, failed %d", i, run.rc, run.r.failed);
        assert_messages(&run.r, MESSAGES(cases[i].message));
        done(&run);
    }
}

static void test_blanks_comments_and_carriage_returns(void **state)
{
    (void)state;
    /* '#' is a comment at the start of a line only; CR LF line ends. */
    struct run run = xin("\t# comment\r\n   \r\nservice t\r\n  {  \r\n\ttype\t= UNLISTED\r\n"
                         "port   =\t7000\r\n socket_type = stream\r\n wait = no\r\n"
                         " # comment inside\r\n user = nobody\r\n server = /bin/echo\r\n"
                         " server_args = a#b # c\r\n\t}\t\r\n");
    assert_int_equal(run.rc, 0);
    assert_messages(&run.r, NO_MESSAGES);
    assert_string_equal(joined(&run.r.services[0]->command), "/bin/echo a#b # c");
    done(&run);
}

/* ---- attributes set twice, with the wrong operator or count ------------- */

static void test_attribute_rules(void **state)
{
    (void)state;
    struct run run = xin(SVC("\tuser = root\n\tnice += 3\n\tbogus = 1\n\tcps = 5\n"
                             "\tlog_on_success += PID HOST\n"));
    assert_int_equal(run.rc, 0);
    assert_string_equal(run.r.services[0]->user.text, "nobody");
    assert_false(run.r.services[0]->nice_set);
    assert_true(run.r.services[0]->rate == 0);
    assert_messages(
        &run.r,
        MESSAGES("x.conf:9: user: not imported: set again: xinetd keeps line 7",
                 "x.conf:10: nice: not imported: xinetd takes only \"=\" here and ignores the line",
                 "x.conf:11: bogus: not imported: unknown attribute: xinetd ignores it",
                 "x.conf:12: cps: not imported: expects 2 values, got 1: xinetd ignores the line",
                 "x.conf:13: log_on_success: note: psup logs every connection, refusal and "
                 "failure on its standard error (psup(1), LOGS); xinetd's log settings are not "
                 "needed"));
    done(&run);
}

static void test_values_xinetd_refuses_disable_the_service(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "\twait = maybe\n", "\tinstances = -1\n", "\tflags = IPv5\n",   "\tumask = 0899\n",
        "\tenv -= A=1\n",   "\tenv = A\n",        "\tonly_from = 1,2\n", "\tport = 70000\n",
        "\tlog_on_failure = RECORD\n",
    };
    static const char *const reasons[] = {
        "wait: not imported: xinetd disables service t: expected yes or no",
        "instances: not imported: xinetd disables service t: expected a number or UNLIMITED",
        "flags: not imported: xinetd disables service t: unknown flag",
        "umask: not imported: xinetd disables service t: expected an octal mask up to 777",
        "env: not imported: xinetd disables service t: env does not take -=",
        "env: not imported: xinetd disables service t: expected NAME=value",
        "only_from: not imported: xinetd disables service t: xinetd refuses an address with a "
        "comma (outside braces) and disables the service",
        "port: not imported: xinetd disables service t: expected a port number",
        "log_on_failure: not imported: xinetd disables service t: unknown log_on_failure flag",
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
        char text[512], want[512];
        /* The bad line comes first, so that a duplicate wait or port is not the reason. */
        snprintf(text, sizeof(text), "service t\n{\n%s\ttype = UNLISTED\n\tport = 1\n"
                 "\tsocket_type = stream\n\twait = no\n\tuser = u\n\tserver = /bin/cat\n}\n",
                 lines[i]);
        snprintf(want, sizeof(want), "x.conf:3: %s", reasons[i]);
        struct run run = xin(text);
        assert_int_equal(run.rc, 0);
        assert_int_equal(run.r.n_services, 0);
        assert_string_equal(message(&run.r, 0), want);
        done(&run);
    }
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults_lists_are_copied_when_the_service_is_read(void **state)
{
    (void)state;
    struct run run = xin(
        "service early\n{\n type = UNLISTED\n port = 1\n socket_type = stream\n wait = no\n"
        " user = u\n server = /bin/cat\n}\n"
        "defaults\n{\n only_from = 10.0.0.0\n only_from = 192.168.1.0\n instances = 8\n"
        " passenv = TZ\n}\n"
        "service plus\n{\n type = UNLISTED\n port = 2\n socket_type = stream\n wait = no\n"
        " user = u\n server = /bin/cat\n only_from += 172.16.0.0/12\n}\n"
        "service replaced\n{\n type = UNLISTED\n port = 3\n socket_type = stream\n wait = no\n"
        " user = u\n server = /bin/cat\n only_from = 127.0.0.1\n instances = 2\n}\n"
        "service minus\n{\n type = UNLISTED\n port = 4\n socket_type = stream\n wait = no\n"
        " user = u\n server = /bin/cat\n only_from -= 10.0.0.0/8\n passenv = LANG\n}\n");
    assert_int_equal(run.rc, 0);
    assert_messages(&run.r, NO_MESSAGES);
    const struct psup_import_service *early = service_named(&run.r, "early");
    /* The lists were copied before the defaults existed; instances applies at the end. */
    assert_int_equal(early->allow.count, 0);
    assert_int_equal(early->max_workers, 8);
    assert_true(early->reject_overload);
    assert_true(early->clear_env);
    assert_string_equal(joined(&early->pass_env), "TZ");
    assert_string_equal(joined(&service_named(&run.r, "plus")->allow),
                        "10.0.0.0/8 192.168.1.0/24 172.16.0.0/12");
    assert_string_equal(joined(&service_named(&run.r, "replaced")->allow), "127.0.0.1");
    assert_int_equal(service_named(&run.r, "replaced")->max_workers, 2);
    assert_string_equal(joined(&service_named(&run.r, "minus")->allow), "192.168.1.0/24");
    assert_string_equal(joined(&service_named(&run.r, "minus")->pass_env), "LANG");
    done(&run);
}

static void test_defaults_errors_and_lists(void **state)
{
    (void)state;
    struct run run = xin("defaults\n{\n disabled = a\n disabled = b\n enabled = a b c\n"
                         " server = /bin/cat\n}\n"
                         "defaults\n{\n instances = 3\n}\n" SVC(""));
    assert_int_equal(run.rc, 0);
    assert_int_equal(run.r.n_services, 0);
    assert_messages(
        &run.r,
        MESSAGES("x.conf:6: server: not imported: xinetd does not take it in defaults and "
                 "ignores it",
                 "x.conf:8: defaults: not imported: a second defaults entry in one file: xinetd "
                 "ignores it",
                 "x.conf:12: service t: note: not in the enabled list of defaults: not imported "
                 "(--include-disabled imports it)",
                 "psup import: no service to import: psup needs at least one"));
    done(&run);

    run = xin("defaults\n{\n instances = lots\n}\n");
    assert_int_equal(run.rc, -EINVAL);
    assert_messages(&run.r, MESSAGES("x.conf:3: instances: expected a number or UNLIMITED "
                                     "(xinetd exits on an invalid defaults entry)"));
    done(&run);
}

static void test_disabled_services(void **state)
{
    (void)state;
    static const char text[] = "defaults\n{\n disabled = off\n}\n"
                               "service t\n{\n disable = yes\n type = UNLISTED\n port = 7\n"
                               " socket_type = stream\n wait = no\n user = u\n server = /bin/cat\n}\n"
                               "service off\n{\n type = UNLISTED\n port = 8\n socket_type = stream\n"
                               " wait = no\n user = u\n server = /bin/cat\n}\n";
    struct run run = xin(text);
    assert_int_equal(run.r.n_services, 0);
    assert_messages(&run.r,
                    MESSAGES("x.conf:5: service t: note: disabled (disable = yes): not imported "
                             "(--include-disabled imports it)",
                             "x.conf:15: service off: note: in the disabled list of defaults: not "
                             "imported (--include-disabled imports it)",
                             "psup import: no service to import: psup needs at least one"));
    done(&run);

    run = xin_opts(text, true);
    assert_int_equal(run.r.n_services, 2);
    assert_false(run.r.lost);
    assert_messages(&run.r,
                    MESSAGES("x.conf:5: service t: note: disabled (disable = yes): imported all "
                             "the same",
                             "x.conf:15: service off: note: in the disabled list of defaults: "
                             "imported all the same"));
    done(&run);
}

/* ---- addresses ---------------------------------------------------------- */

struct listen_case {
    const char *lines;
    const char *listen;
};

static void test_listen_addresses(void **state)
{
    (void)state;
    static const struct listen_case cases[] = {
        {"", "*:7000"},
        {"\tflags = IPv4\n", "0.0.0.0:7000"},
        {"\tflags = IPv6\n", "*:7000"},
        {"\tflags = IPv4 IPv6\n", "*:7000"},
        {"\tbind = 127.0.0.1\n", "127.0.0.1:7000"},
        {"\tinterface = ::1\n", "[::1]:7000"},
        {"\tbind = localhost\n", "127.0.0.1:7000"},
        {"\tbind = localhost\n\tflags = IPv6\n", "[::1]:7000"},
        {"\tv6only = yes\n", "[::]:7000"},
        {"\tbind = ::\n", "*:7000"},
        {"\tbind = ::\n\tv6only = yes\n", "[::]:7000"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[512];
        snprintf(text, sizeof(text), SVC("%s"), cases[i].lines);
        struct run run = xin(text);
        assert_int_equal(run.r.n_services, 1);
        assert_string_equal(joined(&run.r.services[0]->listen), cases[i].listen);
        done(&run);
    }
}

static void test_v6only_quirk_and_bind_names(void **state)
{
    (void)state;
    struct run run = xin("defaults\n{\n v6only = yes\n}\n" SVC("") "service u\n{\n"
                         " type = UNLISTED\n port = 2\n socket_type = stream\n wait = no\n"
                         " user = u\n server = /bin/cat\n v6only = no\n}\n"
                         "service w\n{\n type = UNLISTED\n port = 3\n socket_type = stream\n"
                         " wait = no\n user = u\n server = /bin/cat\n bind = intranet\n}\n");
    assert_string_equal(joined(&service_named(&run.r, "t")->listen), "*:7000");
    assert_string_equal(joined(&service_named(&run.r, "u")->listen), "[::]:2");
    assert_messages(
        &run.r,
        MESSAGES("x.conf:3: v6only: note: xinetd applies v6only only where a service sets it: "
                 "IPv4 and IPv6, as under xinetd",
                 "x.conf:22: v6only: note: xinetd sets IPV6_V6ONLY when a service names v6only "
                 "at all, even \"no\": IPv6 only, as under xinetd",
                 "x.conf:24: service w: not imported: bind intranet: psup binds addresses, not "
                 "names; write its address"));
    done(&run);
}

struct access_case {
    const char *lines;
    const char *allow;
    const char *deny;
    const char *message;
};

static void test_access_lists(void **state)
{
    (void)state;
    static const struct access_case cases[] = {
        {"\tonly_from = 10.0.0.0 192.168.1.0 172.16.5.9 0.0.0.0\n",
         "10.0.0.0/8 192.168.1.0/24 172.16.5.9 0.0.0.0/0", "", NULL},
        {"\tonly_from = 10.1.2.3/8 2001:db8::1/32 ::1\n", "10.0.0.0/8 2001:db8::/32 ::1", "",
         NULL},
        {"\tonly_from = 128.138.{200,201} 10.{1,2}\n",
         "128.138.200.0/24 128.138.201.0/24 10.1.0.0/16 10.2.0.0/16", "", NULL},
        {"\tonly_from = 10.0.0.0\n\tno_access = 10.1.0.0/16\n", "10.0.0.0/8", "10.1.0.0/16",
         NULL},
        {"\tonly_from = 10.1\n", "10.0.0.1", "",
         "x.conf:9: only_from: note: 10.0.0.1: xinetd reads an address of fewer than four "
         "numbers as inet_aton does"},
        {"\tonly_from = 127.0.0.1 .example.com\n", "127.0.0.1", "",
         "x.conf:9: only_from: not imported: .example.com: a host, domain or network name: xinetd "
         "matches it by reverse DNS, psup matches addresses only"},
        {"\tonly_from = ::1/128 127.0.0.1\n", "127.0.0.1", "",
         "x.conf:9: only_from: not imported: ::1/128: xinetd takes an IPv6 address with /128 for "
         "a host name and never matches it; write the address without /128"},
        {"\tno_access = badhost 10.9.9.9\n", "", "10.9.9.9",
         "x.conf:9: no_access: not imported: badhost: a host, domain or network name: xinetd "
         "matches it by reverse DNS, psup matches addresses only; psup does not refuse these "
         "clients"},
        {"\tonly_from = trusted.example.com\n", NULL, NULL,
         "x.conf:1: service t: not imported: only_from has nothing psup can match; without it "
         "every client would be let in"},
        {"\tonly_from =\n", NULL, NULL,
         "x.conf:1: service t: not imported: only_from is empty: xinetd refuses every client"},
        {"\tonly_from = 10.0.0.0\n\tonly_from -= 10.0.0.0/8\n", NULL, NULL,
         "x.conf:1: service t: not imported: only_from is empty: xinetd refuses every client"},
        {"\tonly_from = 128.{1,,2}\n", NULL, NULL,
         "x.conf:9: only_from: not imported: xinetd disables service t: xinetd cannot read this "
         "factorized address and disables the service"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[512];
        snprintf(text, sizeof(text), SVC("%s"), cases[i].lines);
        struct run run = xin(text);
        assert_int_equal(run.rc, 0);
        if (cases[i].allow) {
            assert_int_equal(run.r.n_services, 1);
            assert_string_equal(joined(&run.r.services[0]->allow), cases[i].allow);
            assert_string_equal(joined(&run.r.services[0]->deny), cases[i].deny);
        } else {
            assert_int_equal(run.r.n_services, 0);
        }
        if (cases[i].message)
            assert_string_equal(message(&run.r, 0), cases[i].message);
        else
            assert_messages(&run.r, NO_MESSAGES);
        done(&run);
    }
}

/* ---- programs ------------------------------------------------------------ */

static void test_internal_services(void **state)
{
    (void)state;
    struct run run = xin("service echo\n{\n type = INTERNAL\n id = echo-stream\n"
                         " socket_type = stream\n wait = no\n}\n"
                         "service echo\n{\n type = INTERNAL\n id = echo-dgram\n"
                         " socket_type = dgram\n wait = yes\n}\n"
                         "service daytime\n{\n type = INTERNAL\n socket_type = stream\n"
                         " wait = no\n}\n"
                         "service servers\n{\n type = INTERNAL UNLISTED\n port = 9099\n"
                         " socket_type = stream\n wait = no\n}\n");
    assert_int_equal(run.rc, 0);
    const struct psup_import_service *stream = service_named(&run.r, "echo-stream");
    assert_string_equal(joined(&stream->command), "cat");
    assert_string_equal(joined(&stream->listen), "*:7");
    const struct psup_import_service *dgram = service_named(&run.r, "echo-dgram");
    assert_string_equal(joined(&dgram->listen), "udp://*:7");
    /* Answered per datagram: psup's datagram mode, not wait. */
    assert_int_equal(dgram->mode, PSUP_IMPORT_MODE_DEFAULT);
    assert_non_null(service_named(&run.r, "daytime")->command_line);
    assert_messages(&run.r, MESSAGES("x.conf:21: service servers: not imported: xinetd's "
                                     "internal servers lists xinetd's own state; psup logs its "
                                     "own on SIGUSR1"));
    done(&run);
}

static void test_wait_mode(void **state)
{
    (void)state;
    struct run run = xin("service tftp\n{\n socket_type = dgram\n protocol = udp\n wait = yes\n"
                         " user = root\n server = /usr/sbin/in.tftpd\n server_args = -s /srv\n"
                         " per_source = 11\n cps = 100 2\n instances = 30\n only_from = 10.0.0.0\n"
                         " flags = IPv4\n}\n");
    assert_int_equal(run.rc, 0);
    const struct psup_import_service *s = service_named(&run.r, "tftp");
    assert_int_equal(s->mode, PSUP_IMPORT_MODE_WAIT);
    assert_string_equal(joined(&s->listen), "udp://0.0.0.0:69");
    assert_string_equal(joined(&s->command), "/usr/sbin/in.tftpd -s /srv");
    assert_int_equal(s->max_workers, 0);
    assert_int_equal(s->max_per_source, 0);
    assert_int_equal(s->allow.count, 0);
    assert_messages(&run.r,
                    MESSAGES("x.conf:10: cps: not imported: a wait-mode server is started once "
                             "and restarted with psup's backoff; there are no connections to "
                             "count",
                             "x.conf:12: only_from: not imported: psup cannot filter what a "
                             "wait-mode server reads from its socket (xinetd checks only the "
                             "client that starts it)"));
    done(&run);
}

static void test_nameinargs_tcpd_and_busybox(void **state)
{
    (void)state;
    struct run run = xin(
        "service ftp\n{\n socket_type = stream\n wait = no\n user = root\n"
        " server = /usr/sbin/tcpd\n server_args = in.ftpd -l\n flags = NAMEINARGS\n}\n"
        "service a\n{\n type = UNLISTED\n port = 1\n socket_type = stream\n wait = no\n"
        " user = u\n server = /bin/busybox\n server_args = httpd -i\n flags = NAMEINARGS\n}\n"
        "service b\n{\n type = UNLISTED\n port = 2\n socket_type = stream\n wait = no\n"
        " user = u\n server = /usr/bin/prog\n server_args = other -x\n flags = NAMEINARGS\n}\n"
        "service c\n{\n type = UNLISTED\n port = 3\n socket_type = stream\n wait = no\n"
        " user = u\n server = /usr/bin/prog\n server_args = prog -x\n flags = NAMEINARGS\n}\n"
        "service d\n{\n type = UNLISTED\n port = 4\n socket_type = stream\n wait = no\n"
        " user = u\n server = /usr/bin/prog\n flags = NAMEINARGS\n}\n");
    assert_int_equal(run.rc, 0);
    assert_string_equal(joined(&service_named(&run.r, "ftp")->command), "/usr/sbin/in.ftpd -l");
    assert_string_equal(joined(&service_named(&run.r, "a")->command), "/bin/busybox httpd -i");
    assert_string_equal(joined(&service_named(&run.r, "b")->command), "/usr/bin/prog -x");
    assert_string_equal(joined(&service_named(&run.r, "c")->command), "/usr/bin/prog -x");
    assert_messages(
        &run.r,
        MESSAGES("x.conf:6: server: not imported: tcpd is left out and in.ftpd run directly: "
                 "the rules of /etc/hosts.allow and /etc/hosts.deny are not carried over (write "
                 "them as allow and deny)",
                 "x.conf:18: server_args: note: argv[0] \"httpd\": run as \"busybox httpd\", "
                 "which busybox reads the same",
                 "x.conf:29: server_args: not imported: argv[0] \"other\": psup runs "
                 "/usr/bin/prog with its own path as argv[0]",
                 "x.conf:43: service d: not imported: flags NAMEINARGS without server_args: "
                 "xinetd refuses it"));
    done(&run);
}

/* ---- limits, environment, process ----------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    struct run run = xin(SVC("\tinstances = 50\n\tper_source = 5\n\tcps = 20 10\n"));
    const struct psup_import_service *s = run.r.services[0];
    assert_int_equal(s->max_workers, 50);
    assert_true(s->reject_overload);
    assert_int_equal(s->max_per_source, 5);
    assert_true(s->rate == 20);
    assert_messages(&run.r, MESSAGES("x.conf:11: cps: note: rate 20: above it xinetd stops the "
                                     "whole service for 10 seconds, psup refuses only the "
                                     "connections over the rate"));
    done(&run);

    run = xin(SVC("\tinstances = UNLIMITED\n\tper_source = UNLIMITED\n\tcps = 0 0\n"));
    s = run.r.services[0];
    assert_int_equal(s->max_workers, 0);
    assert_int_equal(s->max_per_source, 0);
    assert_true(s->rate == 0);
    assert_messages(&run.r, NO_MESSAGES);
    done(&run);

    run = xin(SVC("\tinstances = 0\n"));
    assert_int_equal(run.r.n_services, 0);
    assert_messages(&run.r, MESSAGES("x.conf:1: service t: not imported: instances = 0: xinetd "
                                     "refuses every connection",
                                     "psup import: no service to import: psup needs at least "
                                     "one"));
    done(&run);
}

static void test_environment(void **state)
{
    (void)state;
    struct run run = xin(SVC("\tenv = LANG=C A=1\n\tenv += A=2 PROTO=x 1X=y\n\tpassenv = TZ\n"
                             "\tpassenv += HOME TZ\n\tpassenv -= HOME\n"));
    const struct psup_import_service *s = run.r.services[0];
    assert_string_equal(joined(&s->env_names), "LANG A");
    assert_string_equal(joined(&s->env_values), "C 2");
    assert_true(s->clear_env);
    assert_string_equal(joined(&s->pass_env), "TZ");
    assert_messages(&run.r,
                    MESSAGES("x.conf:10: env: not imported: PROTO: psup sets it for each "
                             "connection",
                             "x.conf:10: env: not imported: 1X: not a variable name psup accepts "
                             "(letters, digits and _)"));
    done(&run);
}

static void test_process_settings(void **state)
{
    (void)state;
    struct run run = xin(SVC("\tnice = 25\n\tumask = 027\n\trlimit_as = 64M\n\trlimit_cpu = 10\n"
                             "\trlimit_data = 512K\n\trlimit_stack = UNLIMITED\n"
                             "\trlimit_files = UNLIMITED\n\trlimit_rss = 1M\n\tgroups = yes\n"
                             "\tgroup = 0\n"));
    const struct psup_import_service *s = run.r.services[0];
    assert_int_equal(s->nice, 19);
    assert_int_equal(s->umask, 027);
    assert_true(s->rlimits[PSUP_IMPORT_RLIMIT_AS].value == 64u << 20);
    assert_true(s->rlimits[PSUP_IMPORT_RLIMIT_CPU].value == 10);
    assert_true(s->rlimits[PSUP_IMPORT_RLIMIT_DATA].value == 512u << 10);
    assert_true(s->rlimits[PSUP_IMPORT_RLIMIT_STACK].unlimited);
    assert_false(s->rlimits[PSUP_IMPORT_RLIMIT_NOFILE].set);
    assert_int_equal(s->supplementary_groups, -1);
    assert_true(s->group.numeric);
    assert_messages(&run.r,
                    MESSAGES("x.conf:15: rlimit_files: not imported: Linux has no unlimited "
                             "open-files limit: xinetd's setrlimit fails and the limit stays as "
                             "it was",
                             "x.conf:16: rlimit_rss: not imported: Linux ignores RLIMIT_RSS, and "
                             "psup does not set it"));
    done(&run);
}

static void test_what_has_no_equivalent(void **state)
{
    (void)state;
    struct run run = xin(SVC("\tbanner = /etc/b\n\tbanner_fail = /etc/f\n\taccess_times = 8:00-17:00\n"
                             "\tmax_load = 2.5\n\tflags = KEEPALIVE IDONLY REUSE NOLIBWRAP\n"
                             "\tlog_type = SYSLOG daemon\n"));
    assert_int_equal(run.r.n_services, 1);
    assert_messages(
        &run.r,
        MESSAGES("x.conf:9: banner: not imported: psup sends no file to a client: let the command "
                 "print it, as in \"cat FILE; exec PROGRAM\"",
                 "x.conf:10: banner_fail: not imported: psup's refusal messages are text in the "
                 "configuration (deny_message, per_source_message, rate_message, "
                 "overload_message), not files: copy the file's text there",
                 "x.conf:11: access_times: not imported: psup has no time-of-day rules",
                 "x.conf:12: max_load: not imported: psup does not watch the load average",
                 "x.conf:13: flags: not imported: IDONLY: psup makes no ident lookups, so a client "
                 "without ident is no longer refused",
                 "x.conf:13: flags: not imported: KEEPALIVE: psup sets no TCP socket options",
                 "x.conf:14: log_type: note: psup logs every connection, refusal and failure on "
                 "its standard error (psup(1), LOGS); xinetd's log settings are not needed"));
    done(&run);

    run = xin(SVC("\tredirect = 10.0.0.2 80\n"));
    assert_int_equal(run.r.n_services, 0);
    assert_string_equal(message(&run.r, 0),
                        "x.conf:1: service t: not imported: redirect: xinetd relays the "
                        "connection to 10.0.0.2 port 80 itself; psup runs a command per "
                        "connection, which can relay it: [\"socat\", \"-\", \"TCP:10.0.0.2:80\"]");
    done(&run);
}

/* ---- names --------------------------------------------------------------- */

static void test_names_and_addresses(void **state)
{
    (void)state;
    struct run run = xin("service t\n{\n id = my+svc/1\n type = UNLISTED\n port = 1\n"
                         " socket_type = stream\n wait = no\n user = u\n server = /bin/cat\n}\n"
                         "service t\n{\n id = my_svc_1\n type = UNLISTED\n port = 2\n"
                         " socket_type = stream\n wait = no\n user = u\n server = /bin/cat\n}\n"
                         "service x\n{\n type = UNLISTED\n port = 2\n"
                         " socket_type = stream\n wait = no\n user = u\n server = /bin/cat\n}\n");
    assert_int_equal(run.r.n_services, 2);
    assert_string_equal(run.r.services[0]->name, "my_svc_1");
    assert_string_equal(run.r.services[1]->name, "my_svc_1-2");
    assert_messages(&run.r,
                    MESSAGES("x.conf:1: service my+svc/1: note: named my_svc_1 (psup names are 1 "
                             "to 64 characters from A-Z a-z 0-9 _ . -)",
                             "x.conf:11: service my_svc_1: note: the name is taken: named "
                             "my_svc_1-2",
                             "x.conf:21: service x: not imported: *:2 is already the address of "
                             "my_svc_1-2: xinetd cannot bind it twice"));
    done(&run);
}

/* ---- includedir ------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_includedir_reads_as_xinetd_does(void **state)
{
    (void)state;
    char dir[] = "/tmp/psup-test-xinetd-XXXXXX";
    char sub[300], conf[300];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/d", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(sub, "b", SVC(""));
    write_file(sub, "a", "defaults\n{\n instances = 4\n}\n");
    write_file(sub, "b.rpmsave", "garbage\n");
    write_file(sub, "c~", "garbage\n");
    snprintf(conf, sizeof(conf), "%s/xinetd.conf", dir);
    write_file(dir, "xinetd.conf", "includedir d\n");

    struct psup_import_options opts = {.services_path = services_path};
    struct psup_import_result r;
    const char *paths[] = {conf};
    psup_import_result_init(&r);
    assert_int_equal(psup_import_xinetd(paths, 1, &opts, &r), 0);
    assert_int_equal(r.n_services, 1);
    /* "a" is read before "b": its defaults apply. */
    assert_int_equal(r.services[0]->max_workers, 4);
    assert_int_equal(psup_import_message_count(&r), 2);
    assert_non_null(strstr(psup_import_message(&r, 0), "/d/b.rpmsave: includedir: note: skipped, "
                                                       "as xinetd skips a name with a dot or "
                                                       "ending in ~"));
    assert_non_null(strstr(psup_import_message(&r, 1), "/d/c~: includedir: note: skipped"));
    psup_import_result_free(&r);

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_plain_service),
        cmocka_unit_test(test_port_from_the_services_database),
        cmocka_unit_test(test_services_that_xinetd_refuses),
        cmocka_unit_test(test_services_file_that_cannot_be_read),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_blanks_comments_and_carriage_returns),
        cmocka_unit_test(test_attribute_rules),
        cmocka_unit_test(test_values_xinetd_refuses_disable_the_service),
        cmocka_unit_test(test_defaults_lists_are_copied_when_the_service_is_read),
        cmocka_unit_test(test_defaults_errors_and_lists),
        cmocka_unit_test(test_disabled_services),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_v6only_quirk_and_bind_names),
        cmocka_unit_test(test_access_lists),
        cmocka_unit_test(test_internal_services),
        cmocka_unit_test(test_wait_mode),
        cmocka_unit_test(test_nameinargs_tcpd_and_busybox),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_process_settings),
        cmocka_unit_test(test_what_has_no_equivalent),
        cmocka_unit_test(test_names_and_addresses),
        cmocka_unit_test(test_includedir_reads_as_xinetd_does),
    };
    return cmocka_run_group_tests(tests, write_services, remove_services);
}
