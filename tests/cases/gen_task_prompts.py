# Oracle for tests/cases/task_prompts.jsonl: lm-eval 0.4.9.2 zero-shot raw
# prompts (system_instruction + doc_to_text), targets and doc_hash, computed
# with Python. Usage: python3 gen_task_prompts.py data/ > task_prompts.jsonl
import hashlib, json, sys
d = sys.argv[1]
H = lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest()
spec = {"hendrycks_math500": ("hendrycks_math500.jsonl", "Problem: ", "problem", "answer"),
        "aime24": ("aime24.jsonl", "Question: ", "Problem", "Answer"),
        "aime25": ("aime25.jsonl", "Question: ", "problem", "answer")}
for task, (f, pre, tf, gf) in spec.items():
    docs = [json.loads(l) for l in open(d + "/" + f, encoding="utf-8")]
    for i in sorted({0, 1, 7, len(docs) - 1}):
        doc = docs[i]
        for sysi in (None, "Put the final answer in \\boxed{}. "):
            p = (sysi or "") + pre + doc[tf] + "\nAnswer:"
            print(json.dumps({"task": task, "doc_id": i, "system_instruction": sysi,
                              "prompt_sha256": H(p), "prompt_len": len(p.encode()),
                              "target": str(doc[gf]),
                              "doc_hash": H(json.dumps(doc, indent=2, ensure_ascii=False))},
                             ensure_ascii=False))
