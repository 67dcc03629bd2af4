#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The seeds' WSGI application, run once per request as a CGI script by
psup-cgi (spec/cgi.md): wsgiref's CGIHandler reads the request from the
environment and stdin and writes a CGI response to stdout.

    {"name": "wsgi", "listen": ["127.0.0.1:8081", "[::1]:8081"],
     "protocol": "cgi", "command": ["/usr/bin/python3", "examples/cgi/wsgi_app.py"]}
"""

from wsgiref.handlers import CGIHandler


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"Hallo Welt!"


if __name__ == "__main__":
    CGIHandler().run(app)
