#!/bin/sh
# The test command: install what is missing, build with gcc and clang
# (-Werror), run every test, run the whole suite again under ASan+UBSan, then
# under valgrind memcheck, then each libFuzzer target briefly over its
# regression corpus (QEVAL_CI_FUZZ_SECONDS, default 10 s per target).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)" check
make valgrind
FUZZ_TIMEOUT=5 scripts/fuzz.sh "${QEVAL_CI_FUZZ_SECONDS:-10}"
