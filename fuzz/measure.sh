#!/bin/sh
# Long fuzzing runs for docs/fuzzing.md: runs the given targets one after the
# other (the machine is shared: one fuzzer at a time) for SECONDS each and
# keeps libFuzzer's whole output in build-fuzz/logs/<target>.log, ending with
# -print_final_stats. Each binary is copied first so a rebuild during the run
# does not disturb it. New coverage goes to build-fuzz/work/<target>/ (not
# committed); fuzz/corpus/<target>/ is only read.
#   fuzz/measure.sh 600 fuzz_plan fuzz_lmeval_score
# -timeout is 5 s (not 1 s) because on a loaded shared machine a stalled
# scheduler produced a false 1 s "timeout" on an input that runs in 0 ms;
# -report_slow_units=1 still logs (and saves as slow-unit-*) every input over
# 1 s, which is then re-timed alone.
set -eu
cd "$(dirname "$0")/.."
secs=$1; shift
mkdir -p build-fuzz/logs build-fuzz/run
for name in "$@"; do
    cp "build-fuzz/fuzz/$name" "build-fuzz/run/$name"
    mkdir -p "fuzz/corpus/$name" "build-fuzz/work/$name"
    "build-fuzz/run/$name" -max_total_time="$secs" -timeout=5 -report_slow_units=1 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/work/$name/" \
        "build-fuzz/work/$name" "fuzz/corpus/$name" >"build-fuzz/logs/$name.log" 2>&1 || true
    echo "== $name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "build-fuzz/logs/$name.log" | tail -n 1)"
done
