#!/bin/sh
# SPDX-License-Identifier: MIT
# A tiny HTTP/1.0 server in sh, run by psup once per connection: read the
# request up to the empty line (a handler that exits with unread input makes
# the kernel reset the connection and can destroy the reply), then answer.
read -r method path version || exit 0
while IFS= read -r header; do
    [ "${header%$(printf '\r')}" = "" ] && break
done
echo "hello-http: $method $path from $REMOTE_ADDR" >&2
body="Hello from psup! You asked for $path; you are $REMOTE_ADDR:$REMOTE_PORT (connection $PSUP_CONN_ID).
"
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body"
