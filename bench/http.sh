#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/http.sh: a CGI-style HTTP handler for the benchmark. It reads the
# whole request header (up to the empty line) before answering: a handler
# that exits with unread input makes the kernel reset the connection, which
# can destroy the reply in flight. No fork: only shell builtins are used
# (read, printf, test), so the cost is one exec of /bin/sh.
#
# A line is blank when it is empty or only "\r" (length <= 1); every real
# header line is longer. EOF before the blank line is answered too.
while IFS= read -r line; do
	[ ${#line} -le 1 ] && break
done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n'
