#!/bin/sh
# Runs every test binary given, from the repository root, and ends with the
# plain closing line "N passed, N failed" (one per binary). A binary passes
# when it exits 0 (cmocka exits non-zero on any failed assertion).
pass=0; fail=0; failed=""
for t in "$@"; do
    echo "== $t"
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $t"; fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
