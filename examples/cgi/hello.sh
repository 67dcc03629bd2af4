#!/bin/sh
# SPDX-License-Identifier: MIT
# A CGI script (spec/cgi.md): psup-cgi has already read and checked the
# request; the script reads the meta-variables, the body on stdin
# (CONTENT_LENGTH bytes), and prints a CGI header block, a blank line and
# the body. The same greeting as examples/hello-http.sh, without any HTTP.
#
#   {"name": "hello-cgi", "listen": ["127.0.0.1:8082"], "protocol": "cgi",
#    "command": ["examples/cgi/hello.sh"]}
echo "hello.sh: $REQUEST_METHOD $REQUEST_URI from $REMOTE_ADDR" >&2
if [ "$PATH_INFO" = "/form" ] && [ "$REQUEST_METHOD" = POST ]; then
    printf 'Content-Type: text/plain; charset=utf-8\n\n'
    printf 'You sent %s bytes of %s:\n' "${CONTENT_LENGTH:-0}" "${CONTENT_TYPE:-nothing}"
    cat
    echo
    exit 0
fi
if [ "$PATH_INFO" = "/old" ]; then
    printf 'Status: 301 Moved Permanently\nLocation: /\n\n'
    exit 0
fi
printf 'Content-Type: text/plain; charset=utf-8\n\n'
printf 'Hello from psup! You asked for %s (query "%s"); you are %s:%s (connection %s).\n' \
    "$PATH_INFO" "$QUERY_STRING" "$REMOTE_ADDR" "$REMOTE_PORT" "$PSUP_CONN_ID"
