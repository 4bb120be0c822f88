#!/usr/bin/env python3
"""One-off converter: the r1-distill-1.5b-quant per-problem verdicts
(junsu0306/Quantized-Reasoning-Models, MIT) -> qeval verdicts JSONL.

Usage: python3 tools/convert_r1_example.py SRC_DIR OUT_DIR
Writes OUT_DIR/<setting>/<task>.verdicts.jsonl and prints accuracies and
sha256 of the sources. Data tool only; qeval never runs python.
"""
import hashlib, json, os, sys

SETTINGS = {
    "bf16": "DeepSeek-R1-Distill-Qwen-1.5B",
    "awq-w3g128": "DeepSeek-R1-Distill-Qwen-1.5B-awq-w3g128-tp1",
    "awq-w4g128": "DeepSeek-R1-Distill-Qwen-1.5B-awq-w4g128-tp1",
    "gptq-w3g128": "DeepSeek-R1-Distill-Qwen-1.5B-gptq-w3g128-tp1",
    "gptq-w4g128": "DeepSeek-R1-Distill-Qwen-1.5B-gptq-w4g128-tp1",
    "kvquant-kv4": "DeepSeek-R1-Distill-Qwen-1.5B-kvquant_star-kv4-tp1",
}
TASKS = {"math500": "MATH-500", "aime90": "AIME-90"}


def last_boxed(s):
    """Content of the last \\boxed{...} (brace-matched), or None."""
    i = s.rfind("\\boxed")
    if i < 0:
        return None
    j = s.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return s[j + 1:k]
    return None


def gold_of(task, g):
    g = g[0] if isinstance(g, list) else g
    if task == "math500":
        b = last_boxed(g)
        return b if b is not None else g
    return g


def main():
    src, out = sys.argv[1], sys.argv[2]
    for setting, stem in SETTINGS.items():
        os.makedirs(os.path.join(out, setting), exist_ok=True)
        for task, ds in TASKS.items():
            path = os.path.join(src, f"{stem}_{ds}.json")
            raw = open(path, "rb").read()
            d = json.loads(raw)
            rows = sorted(d["response_analyses"], key=lambda r: r["idx"])
            idxs = [r["idx"] for r in rows]
            assert len(set(idxs)) == len(idxs), path
            n_ok = 0
            with open(os.path.join(out, setting, f"{task}.verdicts.jsonl"), "w") as f:
                for r in rows:
                    ok = bool(r["is_correct"])
                    n_ok += ok
                    rec = {
                        "doc_id": r["idx"],
                        "correct": ok,
                        "model": setting,
                        "task": task,
                        "filter": "none",
                        "gold": gold_of(task, r["gold_answer"]),
                        "word_count": r["word_count"],
                        "has_boxed_answer": r.get("has_boxed_answer"),
                    }
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            assert n_ok == d["correct_count"], path
            print(f"{setting:12s} {task:8s} {n_ok}/{len(rows)} = {100.0*n_ok/len(rows):.1f}%  "
                  f"sha256 {hashlib.sha256(raw).hexdigest()}  {os.path.basename(path)}")


if __name__ == "__main__":
    main()
