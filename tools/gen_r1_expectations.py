#!/usr/bin/env python3
"""Expected paired counts for the shipped r1-distill example, derived from
the ORIGINAL source JSON files (not from our converted JSONL), with the
exact McNemar p-value in rational arithmetic. Data tool only.

Usage: python3 tools/gen_r1_expectations.py SRC_DIR > tests/cases/stats_r1_example.jsonl
"""
import json, math, os, sys
from fractions import Fraction

src = sys.argv[1]
STEM = {"bf16": "DeepSeek-R1-Distill-Qwen-1.5B",
        "awq-w3g128": "DeepSeek-R1-Distill-Qwen-1.5B-awq-w3g128-tp1",
        "awq-w4g128": "DeepSeek-R1-Distill-Qwen-1.5B-awq-w4g128-tp1",
        "gptq-w3g128": "DeepSeek-R1-Distill-Qwen-1.5B-gptq-w3g128-tp1",
        "gptq-w4g128": "DeepSeek-R1-Distill-Qwen-1.5B-gptq-w4g128-tp1",
        "kvquant-kv4": "DeepSeek-R1-Distill-Qwen-1.5B-kvquant_star-kv4-tp1"}
TASKS = {"math500": "MATH-500", "aime90": "AIME-90"}

def load(setting, task):
    d = json.load(open(os.path.join(src, f"{STEM[setting]}_{TASKS[task]}.json")))
    return {r["idx"]: bool(r["is_correct"]) for r in d["response_analyses"]}

def mcnemar(b, c):
    N, m = b + c, min(b, c)
    if N == 0:
        return 1.0
    s, t = 0, 1
    for i in range(m + 1):
        s += t
        t = t * (N - i) // (i + 1)
    return float(min(Fraction(1), Fraction(2 * s, 2 ** N)))

for task in TASKS:
    base = load("bf16", task)
    for setting in STEM:
        if setting == "bf16":
            continue
        m = load(setting, task)
        keys = sorted(set(base) & set(m))
        both = sum(1 for k in keys if m[k] and base[k])
        gained = sum(1 for k in keys if m[k] and not base[k])
        lost = sum(1 for k in keys if base[k] and not m[k])
        neither = len(keys) - both - gained - lost
        n = len(keys)
        print(json.dumps({"task": task, "model": setting, "baseline": "bf16", "n_paired": n,
                          "both": both, "gained": gained, "lost": lost, "neither": neither,
                          "accuracy": (both + gained) / n, "baseline_accuracy": (both + lost) / n,
                          "delta_points": 100 * (gained - lost) / n, "mcnemar_p": mcnemar(gained, lost),
                          "source": "python3 from the source JSON files (is_correct by idx), exact McNemar with fractions"}))
