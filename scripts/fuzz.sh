#!/bin/sh
# Runs every libFuzzer target in fuzz/ for SECONDS each (default 30), seeded
# from fuzz/corpus/<target>/ (the regression corpus: every crash found is
# added there and replayed by `make check` via tests/test_fuzz_regress).
#   scripts/fuzz.sh 600          # ten minutes each
#   scripts/fuzz.sh 60 fuzz_yaml # one target
set -eu
cd "$(dirname "$0")/.."
secs=${1:-30}; only=${2:-}
make -j"$(nproc)" CC=clang BUILD=build-fuzz FUZZ=1 fuzzers >/dev/null
for f in build-fuzz/fuzz/fuzz_*; do
    name=$(basename "$f")
    [ -n "$only" ] && [ "$only" != "$name" ] && continue
    mkdir -p "fuzz/corpus/$name" "build-fuzz/work/$name"
    echo "== $name ($secs s)"
    "$f" -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 \
        -artifact_prefix="build-fuzz/work/$name/" \
        "build-fuzz/work/$name" "fuzz/corpus/$name" 2>&1 | tail -n 3
done
