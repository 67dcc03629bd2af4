# SPDX-License-Identifier: MIT
# psup as a container image (docs/container.md explains every line):
#   docker build -t psup:0.2.0 .
#   docker run --rm -p 7000:7000 -p 9100:9100 psup:0.2.0
# It serves examples/container/services.json: an echo service (/bin/cat) on
# port 7000 and the admin endpoint on port 9100 (/livez, /readyz, /metrics,
# /status). Build your own image FROM this one, with your services.json and
# handlers.

# Build stage: the CMake build, no tests (CI runs them), installed under /usr
# as the Debian package is, staged in /out for the runtime stage.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake gcc libc6-dev make pkg-config libuv1-dev libcjson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
          -DPSUP_BUILD_TESTS=OFF -DPSUP_BUILD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build --strip \
 && rm -rf /out/usr/share/man \
 && /out/usr/bin/psup --version

# Runtime stage: the two libraries psup links with, and what CMake installed
# (psup, and any helper it installs under /usr/lib).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libcjson1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/ /usr/

# psup needs root only to bind ports below 1024 or to run handlers as other
# users (`user`, `group`); this image does neither, so it runs as a user of
# its own. The numeric id lets Kubernetes' runAsNonRoot check it. /run/psup
# holds the admin socket (`psup ctl reload` through `docker exec`).
RUN groupadd --system --gid 10001 psup \
 && useradd --system --uid 10001 --gid psup --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin psup \
 && install -d -o psup -g psup -m 0755 /run/psup
COPY examples/container/services.json /etc/psup/services.json
USER 10001:10001
# --check makes the checks of a start (programs, users) as the user psup
# runs as: a broken file fails the build, not the container.
RUN ["psup", "--check", "/etc/psup/services.json"]

# `docker exec CONTAINER psup ctl status` (or reload, pause NAME, ...) finds
# the admin socket through PSUP_ADMIN.
ENV PSUP_ADMIN=unix:/run/psup/admin.sock
EXPOSE 7000 9100
# psup's graceful stop; Docker's default, written out because SIGQUIT or
# SIGKILL here would cut every connection.
STOPSIGNAL SIGTERM
# Healthy while psup's loop answers on the admin port. `psup ctl status`
# exits 0 when psup answers and 1 when it does not; slim has no curl, and
# psup's own client needs nothing more in the image. An image whose
# services.json has no admin listener on 127.0.0.1:9100 (or 0.0.0.0:9100)
# must replace this line (or say HEALTHCHECK NONE).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["psup", "ctl", "--admin", "127.0.0.1:9100", "status"]
# Exec form: psup is PID 1 and gets SIGTERM itself (a shell would swallow
# it). `docker run IMAGE /etc/psup/other.json` replaces only the file.
ENTRYPOINT ["psup"]
CMD ["/etc/psup/services.json"]
