#!/bin/sh
# SPDX-License-Identifier: MIT
# The developer's entry point (see README.md):
#   ./dev.sh run    install what is missing, build, serve examples/services.json
#   ./dev.sh test   install what is missing, build with ASan+UBSan, run every test
#   ./dev.sh bench  build (release) and run the side-by-side benchmark
# Installing needs root on Debian 12; with everything installed it does not.
set -eu
cd "$(dirname "$0")"

build_deps="cmake gcc libc6-dev make pkg-config libuv1-dev libcjson-dev"
test_deps="libcmocka-dev python3 python3-pytest python3-pytest-timeout python3-yaml git python3-prometheus-client chromium procps util-linux groff-base netcat-openbsd tftp-hpa tftpd-hpa curl haproxy gunicorn systemd clang-14 libclang-rt-14-dev"
bench_deps="ucspi-tcp ipsvd socat xinetd"

install_missing() {
    missing=""
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: missing Debian packages:$missing (run as root, or install them)" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

jobs=$(nproc 2>/dev/null || echo 2)
case "${1:-}" in
run)
    install_missing $build_deps
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSUP_BUILD_TESTS=OFF
    cmake --build build -j "$jobs"
    echo "dev.sh: serving examples/services.json (Ctrl-C stops psup gracefully)" >&2
    exec build/cmd/psup/psup examples/services.json
    ;;
test)
    install_missing $build_deps $test_deps $bench_deps
    cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DPSUP_SANITIZE=ON
    cmake --build build-test -j "$jobs"
    ctest --test-dir build-test --output-on-failure -j "$jobs"
    ;;
bench)
    install_missing $build_deps $bench_deps python3
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPSUP_BUILD_TESTS=OFF
    cmake --build build-release -j "$jobs"
    shift
    exec /usr/bin/python3 bench/run.py --psup build-release/cmd/psup/psup --bin-dir build-release/bench "$@"
    ;;
*)
    echo "usage: ./dev.sh run|test|bench" >&2
    exit 2
    ;;
esac
