#!/bin/sh
# Runs every libFuzzer target in fuzz/ for SECONDS each (default 30), seeded
# from fuzz/corpus/<target>/ (the regression corpus: every crash found is
# added there and replayed by `make check` via tests/test_fuzz_regress).
# Exits non-zero when any target finds a crash, leak, timeout or UB; the
# reproducer is in build-fuzz/work/<target>/ (see docs/fuzzing.md).
#   scripts/fuzz.sh 600          # ten minutes each
#   scripts/fuzz.sh 60 fuzz_plan # one target
#   FUZZ_TIMEOUT=5 scripts/fuzz.sh 10   # per-input timeout (s), default 1
set -eu
cd "$(dirname "$0")/.."
secs=${1:-30}; only=${2:-}
make -j"$(nproc)" CC=clang BUILD=build-fuzz FUZZ=1 fuzzers >/dev/null
status=0
for src in fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    f=build-fuzz/fuzz/$name
    [ -n "$only" ] && [ "$only" != "$name" ] && continue
    mkdir -p "fuzz/corpus/$name" "build-fuzz/work/$name"
    echo "== $name ($secs s)"
    log=build-fuzz/work/$name.log
    if "$f" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-1}" -rss_limit_mb=2048 \
        -artifact_prefix="build-fuzz/work/$name/" \
        "build-fuzz/work/$name" "fuzz/corpus/$name" >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1
    else
        tail -n 40 "$log"
        echo "FAILED: $name (reproducer in build-fuzz/work/$name/, full log $log)"
        status=1
    fi
done
exit "$status"
