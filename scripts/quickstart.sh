#!/bin/sh
# The main job on built-in defaults: install what is missing, build, then run
# the demo that needs no GPU — the shipped real per-problem verdicts of
# DeepSeek-R1-Distill-Qwen-1.5B at BF16 and five quantized settings
# (examples/r1-distill-1.5b-quant, MIT): summary, paired comparison against
# BF16, and a self-contained HTML report in qeval-demo/.
set -eu
cd "$(dirname "$0")/.."
QEVAL_NO_BROWSER=1 scripts/deps.sh
make -j"$(nproc)" >/dev/null
Q=build/qeval
EX=examples/r1-distill-1.5b-quant
echo "== qeval summarize $EX"
$Q summarize "$EX"
echo
echo "== qeval compare (baseline bf16)"
$Q compare --flips 3 "$EX/bf16" "$EX/awq-w3g128" "$EX/awq-w4g128" "$EX/gptq-w3g128" "$EX/gptq-w4g128" "$EX/kvquant-kv4"
mkdir -p qeval-demo
out="qeval-demo/r1-distill-1.5b-quant-$(date +%Y%m%d-%H%M%S).html"
echo
echo "== qeval report $out"
$Q report "$out" "$EX/bf16" "$EX/awq-w3g128" "$EX/awq-w4g128" "$EX/gptq-w3g128" "$EX/gptq-w4g128" "$EX/kvquant-kv4"
echo
echo "== the reference experiment's plan, as qeval would run it on a GPU machine"
$Q sweep --dry-run examples/qwen3-32b-precision.yaml
