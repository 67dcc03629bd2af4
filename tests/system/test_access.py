# SPDX-License-Identifier: MIT
"""Access rules (spec/config.md 4.6, spec/pool.md): allow and deny in both
families and on a dual-stack listener, deny wins, no allow means everyone.
A handler that appends to a marker file proves that a denied connection ran
nothing; refused clients get deny_message; refusals are counted in the
shutdown summary and logged, rate-limited; a flood of denied connections
creates no process."""

import signal
import socket
import time

from conftest import children_of, config, connect, read_all, service, talk, wait_for


def marker_service(tmp_path, name="svc", listen=("127.0.0.1:0", "[::1]:0", "*:0"), **kw):
    """A service whose handler appends the client's address to a marker file
    before answering "served"."""
    marker = tmp_path / f"{name}.marker"
    return service(name, list(listen), f'echo "$TCPREMOTEIP" >> {marker}; echo served', **kw)


def marker_lines(tmp_path, name="svc"):
    try:
        return (tmp_path / f"{name}.marker").read_text().split()
    except FileNotFoundError:
        return []


def outcome(addr, timeout=10.0):
    """What a client gets: b"served\\n" from the handler, or whatever psup
    sends a refused client before closing (b"" without a message)."""
    return talk(addr, timeout=timeout)


def v4(p, name="svc", index=0):
    return ("127.0.0.1", p.addr(name, index)[1])


def v6(p, name="svc", index=1):
    return ("::1", p.addr(name, index)[1])


def dual(p, family, name="svc", index=2):
    """The dual-stack `*:0` listener reached over IPv4 or IPv6."""
    return ("127.0.0.1" if family == 4 else "::1", p.addr(name, index)[1])


def served_addresses(tmp_path, count, name="svc"):
    """The marker's lines once it has `count` of them (the handler writes it
    before answering, so it is complete once the client has its answer)."""
    lines = marker_lines(tmp_path, name)
    assert len(lines) == count, f"marker file: {lines}"
    return lines


def assert_nothing_more_runs(tmp_path, count, name="svc", window=0.5):
    """A bounded negative check: the marker stays at `count` lines."""
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        assert len(marker_lines(tmp_path, name)) == count
        time.sleep(0.05)


# --------------------------------------------------------------------------
# Rules.


def test_allow_ipv4_only_refuses_ipv6(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, allow=["127.0.0.0/8"])))
    assert outcome(v4(p)) == b"served\n"
    assert outcome(dual(p, 4)) == b"served\n"
    assert outcome(v6(p)) == b""
    assert outcome(dual(p, 6)) == b""
    assert served_addresses(tmp_path, 2) == ["127.0.0.1", "127.0.0.1"]
    assert_nothing_more_runs(tmp_path, 2)
    denied = p.wait_event("denied", 2, service="svc")
    assert {d["remote_ip"] for d in denied} == {"::1"}


def test_allow_ipv6_only_refuses_ipv4(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, allow=["::1/128"])))
    assert outcome(v6(p)) == b"served\n"
    assert outcome(dual(p, 6)) == b"served\n"
    assert outcome(v4(p)) == b""
    assert outcome(dual(p, 4)) == b""
    assert served_addresses(tmp_path, 2) == ["::1", "::1"]
    denied = p.wait_event("denied", 2, service="svc")
    assert {d["remote_ip"] for d in denied} == {"127.0.0.1"}, "a dual-stack IPv4 client is logged as IPv4"


def test_deny_ipv4_address_on_plain_and_dual_stack_listeners(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, deny=["127.0.0.1"])))
    assert outcome(v4(p)) == b""
    assert outcome(dual(p, 4)) == b"", "an IPv4 client on *:PORT (::ffff:127.0.0.1) matches IPv4 rules"
    assert outcome(v6(p)) == b"served\n"
    assert outcome(dual(p, 6)) == b"served\n"
    assert served_addresses(tmp_path, 2) == ["::1", "::1"]


def test_deny_ipv6_address(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, deny=["::1"])))
    assert outcome(v6(p)) == b""
    assert outcome(dual(p, 6)) == b""
    assert outcome(v4(p)) == b"served\n"
    assert outcome(dual(p, 4)) == b"served\n"
    assert served_addresses(tmp_path, 2) == ["127.0.0.1", "127.0.0.1"]


def test_ipv4_prefix_that_does_not_match(psup, tmp_path):
    # 127.0.0.1 is outside 127.0.1.0/24; another loopback source inside it is allowed.
    p = psup(config(marker_service(tmp_path, listen=["127.0.0.1:0"], allow=["127.0.1.0/24"])))
    assert outcome(v4(p)) == b""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.bind(("127.0.1.7", 0))
        s.connect(v4(p))
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b"served\n"
    assert served_addresses(tmp_path, 1) == ["127.0.1.7"]


def test_ipv6_everything_does_not_mean_ipv4_clients(psup, tmp_path):
    """::/0 is every IPv6 client, not every client: an IPv4 client on the
    dual-stack listener is not denied by it."""
    p = psup(config(marker_service(tmp_path, deny=["::/0"])))
    assert outcome(dual(p, 6)) == b""
    assert outcome(v6(p)) == b""
    assert outcome(dual(p, 4)) == b"served\n"
    assert outcome(v4(p)) == b"served\n"
    assert served_addresses(tmp_path, 2) == ["127.0.0.1", "127.0.0.1"]


def test_v4_mapped_rule_matches_ipv4_clients(psup, tmp_path):
    """Entries written in the ::ffff:0:0/96 form match IPv4 clients."""
    p = psup(config(marker_service(tmp_path, deny=["::ffff:127.0.0.1"])))
    assert outcome(dual(p, 4)) == b""
    assert outcome(v4(p)) == b""
    assert outcome(v6(p)) == b"served\n"
    assert served_addresses(tmp_path, 1) == ["::1"]


def test_deny_wins_over_allow(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, allow=["127.0.0.0/8", "::1"], deny=["127.0.0.1/32"])))
    assert outcome(v4(p)) == b""
    assert outcome(dual(p, 4)) == b""
    assert outcome(v6(p)) == b"served\n"
    assert served_addresses(tmp_path, 1) == ["::1"]
    p2 = psup(config(marker_service(tmp_path, "both", allow=["::/0", "0.0.0.0/0"], deny=["::1"])))
    assert outcome(v6(p2, "both")) == b""
    assert outcome(v4(p2, "both")) == b"served\n"
    assert served_addresses(tmp_path, 1, "both") == ["127.0.0.1"]


def test_no_allow_means_everyone(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, deny=["10.0.0.0/8", "2001:db8::/32"]),
                    marker_service(tmp_path, "open")))
    for name in ("svc", "open"):
        assert outcome(v4(p, name)) == b"served\n"
        assert outcome(v6(p, name)) == b"served\n"
        assert outcome(dual(p, 4, name)) == b"served\n"
        assert outcome(dual(p, 6, name)) == b"served\n"
        assert sorted(served_addresses(tmp_path, 4, name)) == ["127.0.0.1", "127.0.0.1", "::1", "::1"]
    assert not p.events("denied")


def test_deny_message_is_sent_to_the_refused_client_only(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, deny=["::1"], deny_message="go away\r\n")))
    with connect(v6(p)) as s:
        # The message comes without the client sending anything, then EOF.
        assert read_all(s) == b"go away\r\n"
    assert outcome(dual(p, 6)) == b"go away\r\n"
    assert outcome(v4(p)) == b"served\n"
    assert served_addresses(tmp_path, 1) == ["127.0.0.1"]


# --------------------------------------------------------------------------
# Counting and logging.


def test_denied_connections_are_counted_and_logged_with_a_rate_limit(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, listen=["127.0.0.1:0"], deny=["127.0.0.1"])))
    total = 0
    for _ in range(40):
        assert outcome(v4(p)) == b""
        total += 1
    # A flood logs a handful of lines, not one per connection.
    wait_for(lambda: p.events("denied"), 5, "a denied line")
    first = p.events("denied")
    assert 1 <= len(first) <= 8, f"{len(first)} denied lines for {total} connections"
    for d in first:
        assert d["service"] == "svc" and d["remote_ip"] == "127.0.0.1" and d["level"] == "warn"
    # Later, a denied line says how many were not logged meanwhile.

    def one_more_with_suppressed():
        nonlocal total
        assert outcome(v4(p)) == b""
        total += 1
        return [d for d in p.events("denied") if d.get("suppressed")]

    later = wait_for(one_more_with_suppressed, 6, "a denied line with a suppressed count", interval=0.2)
    denied = p.events("denied")
    logged_plus_suppressed = len(denied) + sum(d.get("suppressed", 0) for d in denied)
    assert later[0]["suppressed"] >= total - 10
    assert total - 8 <= logged_plus_suppressed <= total
    assert marker_lines(tmp_path) == []
    assert p.stop() == 0
    summary = p.events("summary", service="svc")
    assert len(summary) == 1
    assert summary[0]["denied"] == total
    assert summary[0]["accepted"] == 0


def test_summary_counts_accepted_and_denied_separately(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, allow=["::1"])))
    for _ in range(3):
        assert outcome(v6(p)) == b"served\n"
    for _ in range(2):
        assert outcome(v4(p)) == b""
        assert outcome(dual(p, 4)) == b""
    p.wait_event("conn_end", 3, service="svc")
    assert p.stop() == 0
    summary = p.events("summary", service="svc")[0]
    assert (summary["accepted"], summary["denied"]) == (3, 4)
    assert len(marker_lines(tmp_path)) == 3


def test_a_flood_from_a_denied_address_creates_no_process(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, listen=["127.0.0.1:0", "[::1]:0"], deny=["127.0.0.1"],
                                   pool={"min_spare": 3, "max_spare": 3})))
    before = wait_for(lambda: len(p.workers()) == 3 and sorted(p.workers()), 5, "3 idle workers")
    seen = set()
    for _ in range(100):
        assert outcome(v4(p)) == b""
        seen.update(children_of(p.pid))
    assert seen == set(before), f"processes appeared during the flood: {seen - set(before)}"
    assert sorted(p.workers()) == before
    assert marker_lines(tmp_path) == []
    # The same workers still serve an allowed client.
    assert outcome(v6(p)) == b"served\n"
    assert p.stop() == 0
    assert p.events("summary", service="svc")[0]["denied"] == 100
    ends = p.events("conn_end", service="svc")
    assert [e["remote_ip"] for e in ends] == ["::1"], "a denied connection has no handler, no conn_end"


def test_rules_apply_to_tcp_clients_only_not_unix_ones(psup, tmp_path):
    """allow/deny are about TCP clients: a unix socket client has no address
    to match and is served."""
    sock = str(tmp_path / "a.sock")
    p = psup(config(service("svc", ["127.0.0.1:0", f"unix:{sock}"],
                            f'echo "$PROTO" >> {tmp_path / "svc.marker"}; echo served',
                            allow=["10.0.0.0/8"], deny_message="no\n")))
    assert outcome(v4(p)) == b"no\n"
    assert talk(sock) == b"served\n"
    assert served_addresses(tmp_path, 1) == ["UNIX"]


def test_a_reload_that_adds_a_deny_rule_applies_to_new_connections(psup, tmp_path):
    p = psup(config(marker_service(tmp_path, listen=["127.0.0.1:0"], pool={"min_spare": 3, "max_spare": 3})))
    assert outcome(v4(p)) == b"served\n"
    p.write_config(config(marker_service(tmp_path, listen=["127.0.0.1:0"], deny=["127.0.0.1"],
                                         deny_message="denied now\n", pool={"min_spare": 3, "max_spare": 3})))
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    answers = [outcome(v4(p)) for _ in range(20)]
    assert answers == [b"denied now\n"] * 20
    assert served_addresses(tmp_path, 1) == ["127.0.0.1"]
