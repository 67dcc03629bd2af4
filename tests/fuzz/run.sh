#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds and runs one libFuzzer target for a while:
#   tests/fuzz/run.sh TARGET SECONDS [LIBFUZZER OPTIONS...]
# compiles tests/fuzz/fuzz_TARGET.c with the sources named on its
# "fuzz-sources:" line, using clang (CC_FUZZ, default clang-14) with
# -fsanitize=fuzzer,address,undefined, then runs it SECONDS seconds on
# tests/fuzz/corpus/TARGET (read only) plus a work corpus in FUZZ_DIR
# (default build/fuzz) where new inputs go, with TARGET.dict if present.
# Exits non-zero on a crash; the reproducer is left in FUZZ_DIR.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 TARGET SECONDS [LIBFUZZER OPTIONS...]" >&2; exit 2; }
target=$1
seconds=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
src="$root/tests/fuzz/fuzz_$target.c"
[ -f "$src" ] || { echo "$0: no $src" >&2; exit 2; }
cc=${CC_FUZZ:-clang-14}
dir=${FUZZ_DIR:-$root/build/fuzz}
mkdir -p "$dir/corpus-$target"

sources=""
for s in $(sed -n 's/^.*fuzz-sources: *//p' "$src"); do
    sources="$sources $root/$s"
done
# shellcheck disable=SC2086 # the list of sources is split on purpose
"$cc" -std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/lib" -o "$dir/fuzz_$target" "$src" $sources

dict=""
[ -f "$root/tests/fuzz/$target.dict" ] && dict="-dict=$root/tests/fuzz/$target.dict"
cd "$dir"
# shellcheck disable=SC2086 # an empty $dict must vanish
exec "./fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -artifact_prefix="$dir/crash-$target-" $dict "$@" \
    "$dir/corpus-$target" "$root/tests/fuzz/corpus/$target"
