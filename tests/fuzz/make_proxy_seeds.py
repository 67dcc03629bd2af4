#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_proxy (tests/fuzz/corpus/proxy/): valid
PROXY v1 and v2 headers of every form spec/proxy.md accepts, some followed
by a request, and a few near misses. Run from anywhere; rewrites these
named seeds only. The seeds named by a hash were added by libFuzzer
(`fuzz_proxy -merge=1 corpus/proxy NEW`) from long runs: inputs that reach
code the named ones do not."""
import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "proxy")
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def v2(ver_cmd, fam, body):
    return SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body)) + body


def tcp(src, dst, sport, dport):
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return a.packed + b.packed + struct.pack("!HH", sport, dport)


def with_crc(ver_cmd, fam, body):
    header = v2(ver_cmd, fam, body + tlv(0x03, b"\0\0\0\0"))
    return header[:-4] + struct.pack("!I", crc32c(header))


SSL = tlv(0x20, b"\x07" + b"\0\0\0\0" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client.example"))

SEEDS = {
    "v1-tcp4": b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + REQUEST,
    "v1-tcp4-extremes": b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n" + REQUEST,
    "v1-tcp6-full": b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    b"FFFF:0:00:000:0000:1:2:3 65535 65535\r\n",
    "v1-tcp6-v4tail": b"PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:10.0.0.1 1234 80\r\n",
    "v1-tcp6-gaps": b"PROXY TCP6 1:: 1:2:3::6:7:8 9 10\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n" + REQUEST,
    "v1-unknown-longest": b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    "v1-leading-zero": b"PROXY TCP4 192.168.0.01 1.2.3.4 1 2\r\n",
    "v1-bare-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    "v1-truncated": b"PROXY TCP6 2001:db8::",
    "v2-tcp4": v2(0x21, 0x11, tcp("192.0.2.1", "198.51.100.2", 56324, 443)) + REQUEST,
    "v2-tcp6": v2(0x21, 0x21, tcp("2001:db8::7", "::ffff:10.1.2.3", 1, 65535)),
    "v2-local": v2(0x20, 0x00, b"") + REQUEST,
    "v2-local-with-block": v2(0x20, 0x11, tcp("10.0.0.1", "10.0.0.2", 1, 2)),
    "v2-tlvs": v2(0x21, 0x11, tcp("192.0.2.1", "198.51.100.2", 1, 2)
                  + tlv(0x01, b"h2") + tlv(0x02, b"www.example.com") + SSL
                  + tlv(0x05, bytes(range(32))) + tlv(0x04, b"") + tlv(0xEA, b"\x01vpce-0123")),
    "v2-crc32c": with_crc(0x21, 0x21, tcp("2001:db8::1", "2001:db8::2", 80, 443)
                          + tlv(0x02, b"example.org")),
    "v2-padded": v2(0x21, 0x11, tcp("192.0.2.1", "198.51.100.2", 1, 2)
                    + tlv(0x04, bytes(2048 - 12 - 3))),
    "v2-unix": v2(0x21, 0x31, bytes(216)),
    "v2-udp": v2(0x21, 0x12, tcp("192.0.2.1", "198.51.100.2", 1, 2)),
    "v2-version1": v2(0x11, 0x11, tcp("192.0.2.1", "198.51.100.2", 1, 2)),
    "v2-tlv-overrun": v2(0x21, 0x11, tcp("192.0.2.1", "198.51.100.2", 1, 2) + b"\x02\x00\x09abc"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
