#!/bin/sh
# SPDX-License-Identifier: MIT
# Build a fuzz target with clang and libFuzzer, straight from the sources,
# and run it for a while on its seed corpus:
#
#   tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# The target is tests/fuzz/fuzz_TARGET.c; the code under test is named on
# its "fuzz-sources:" line (paths from the top of the tree). The seeds in
# tests/fuzz/corpus/TARGET are only read; new inputs go to a scratch corpus
# removed at the end (kept with FUZZ_KEEP=1). A crash or a broken invariant
# is saved as FUZZ_DIR/TARGET-crash-* and fails the script.
# Environment: CC_FUZZ (default clang-14), FUZZ_DIR (default build/fuzz).
# Exit status: 0 clean, 1 a crash, 2 usage, 77 no clang (CTest: skipped).
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC_FUZZ:-clang-14}
out=${FUZZ_DIR:-$root/build/fuzz}
harness=$here/fuzz_$target.c

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "$0: $cc not found: skipped" >&2
    exit 77
fi
if [ ! -f "$harness" ]; then
    echo "$0: no $harness" >&2
    exit 2
fi
maxlen=$(sed -n 's/^.*fuzz-max-len: *//p' "$harness")
sources=
for s in $(sed -n 's/^.*fuzz-sources: *//p' "$harness"); do
    sources="$sources $root/$s"
done

mkdir -p "$out"
binary=$out/fuzz_$target
# The project's warnings, the sanitizers libFuzzer supports together, and
# undefined behaviour made fatal so that the fuzzer sees it.
# shellcheck disable=SC2086 # the list of sources is split on purpose
"$cc" -std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/lib" -o "$binary" "$harness" $sources

scratch=$(mktemp -d "$out/corpus-$target.XXXXXX")
if [ "${FUZZ_KEEP:-}" != 1 ]; then
    trap 'rm -rf "$scratch"' EXIT
fi
dict=
if [ -f "$here/$target.dict" ]; then
    dict=-dict=$here/$target.dict
fi
# The first corpus directory receives new inputs. A harness may bound the
# input size on a "fuzz-max-len:" line (the PROXY reader: its longest
# header and some bytes after it).
# shellcheck disable=SC2086 # an empty $dict must vanish
"$binary" -max_total_time="$seconds" -max_len="${maxlen:-16384}" -timeout=10 \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$out/$target-" $dict "$@" "$scratch" "$here/corpus/$target"
