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
# hendrycks_math500 with --num_fewshot 3 (lm-eval 0.4.9.2): no training or
# fewshot split, so the few-shot pool is the test docs; fewshot_split (None)
# != test_split, so exactly 3 are drawn and the evaluated doc is dropped.
import random
docs = [json.loads(l) for l in open(d + "/hendrycks_math500.jsonl", encoding="utf-8")]
rnd = random.Random(1234)
for i, doc in enumerate(docs[:12]):
    picks = rnd.sample(docs, 3)
    if i not in (0, 7, 11):
        continue
    ctx = "".join("Problem: " + x["problem"] + "\nAnswer: " + x["answer"] + "\n\n" for x in picks if x != doc)
    p = ctx + "Problem: " + doc["problem"] + "\nAnswer:"
    print(json.dumps({"task": "hendrycks_math500", "doc_id": i, "system_instruction": None,
                      "num_fewshot": 3, "prompt_sha256": H(p), "prompt_len": len(p.encode()),
                      "target": doc["answer"],
                      "doc_hash": H(json.dumps(doc, indent=2, ensure_ascii=False))},
                     ensure_ascii=False))
