# SPDX-License-Identifier: MIT
"""A WSGI application for examples/wait/web.json: gunicorn serves it on the
sockets psup gives it (LISTEN_FDS), in psup's wait mode."""

import os


def application(environ, start_response):
    body = ("hello from gunicorn worker %d (server %d), %s %s\n"
            % (os.getpid(), os.getppid(), environ["REQUEST_METHOD"],
               environ.get("PATH_INFO", "/"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
