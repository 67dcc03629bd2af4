#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/cgi.sh: bench/http.sh as a CGI script, for a "protocol": "cgi"
# service. psup's relay has read and checked the request, so the script
# only answers: a CGI header block and the same body, with shell builtins
# only (one exec of /bin/sh, as http.sh). The relay turns it into
# "HTTP/1.1 200 OK" with Date, Server and Connection: close.
printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'
