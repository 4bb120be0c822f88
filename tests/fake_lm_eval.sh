#!/bin/sh
# fake_lm_eval.sh: stands in for `python -m lm_eval` in tests/test_sweep.c
# (installed as `python` first on PATH). It accepts the command line qeval's
# lm-eval engine builds, appends it to $FAKE_LMEVAL_RECORD (one line: the
# arguments joined by '|', then ' HF_HOME=<value>'), and writes what lm-eval
# (>= 0.4.3) writes for an --output_path ending in .json:
#   <dir>/<stem>_<date>.json            results (exact_match 0.5, n = limit)
#   <dir>/samples_<task>_<date>.jsonl   one line per sample
# $FAKE_LMEVAL_FAIL=<task>: print a CUDA OOM traceback and exit 1 for it.
# $FAKE_LMEVAL_SLEEP=<seconds>: sleep first (for stop tests).
[ "$1" = "-m" ] && [ "$2" = "lm_eval" ] || { echo "fake python: expected -m lm_eval" >&2; exit 2; }
shift 2
task=""; limit=""; out=""; all=""
while [ $# -gt 0 ]; do
    all="$all|$1"
    case "$1" in
        --tasks) task="$2"; all="$all|$2"; shift ;;
        --limit) limit="$2"; all="$all|$2"; shift ;;
        --output_path) out="$2"; all="$all|$2"; shift ;;
        --model|--model_args|--batch_size|--gen_kwargs|--system_instruction|--seed) all="$all|$2"; shift ;;
        --apply_chat_template|--log_samples) ;;
        *) echo "lm_eval: error: unrecognized arguments: $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$FAKE_LMEVAL_RECORD" ] && echo "${all#|} HF_HOME=${HF_HOME:-}" >> "$FAKE_LMEVAL_RECORD"
[ -n "$FAKE_LMEVAL_SLEEP" ] && sleep "$FAKE_LMEVAL_SLEEP"
if [ "$FAKE_LMEVAL_FAIL" = "$task" ]; then
    echo "INFO lm_eval: Evaluating vllm"
    echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.25 GiB."
    exit 1
fi
[ -n "$task" ] && [ -n "$out" ] || { echo "lm_eval: need --tasks and --output_path" >&2; exit 2; }
n=${limit:-30}
dir=$(dirname "$out"); stem=$(basename "$out" .json)
date=$(date +%Y-%m-%dT%H-%M-%S.%N | cut -c1-26)
mkdir -p "$dir"
printf '{\n  "results": {\n    "%s": {\n      "alias": "%s",\n      "exact_match,none": 0.5,\n      "exact_match_stderr,none": 0.1\n    }\n  },\n  "n-samples": {\n    "%s": {\n      "original": 30,\n      "effective": %s\n    }\n  }\n}\n' \
    "$task" "$task" "$task" "$n" > "$dir/${stem}_$date.json"
i=0
while [ "$i" -lt "$n" ]; do
    printf '{"doc_id": %d, "exact_match": %d}\n' "$i" $((i % 2)) >> "$dir/samples_${task}_$date.jsonl"
    i=$((i + 1))
done
echo "fake lm_eval: wrote $dir/${stem}_$date.json"
