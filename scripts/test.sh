#!/bin/sh
# The test command: install what is missing, build with gcc and clang
# (-Werror), run every test, then the whole suite again under ASan+UBSan.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)" check
