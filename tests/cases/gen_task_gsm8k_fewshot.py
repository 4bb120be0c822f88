# Emulates lm-eval v0.4.9.2's gsm8k 5-shot context with Python's own random
# module (independent oracle for src/task.c). One Random(1234) is shared by
# all docs and advanced once per doc, in doc order; each doc draws
# rnd.sample(train_docs, 5) (fewshot_split train != test_split test, so no
# extra draw) and drops a drawn doc equal to the evaluated one.
# Usage: python3 gen_task_gsm8k_fewshot.py data/ > tests/cases/task_gsm8k_fewshot.jsonl
import hashlib, json, random, sys
d = sys.argv[1]
train = [json.loads(l) for l in open(d + "/gsm8k_train.jsonl", encoding="utf-8")]
test = [json.loads(l) for l in open(d + "/gsm8k_test.jsonl", encoding="utf-8")]
idx = list(range(len(train)))
rnd = random.Random(1234)
for doc_id, doc in enumerate(test[:60]):
    picks = rnd.sample(idx, 5)
    sel = [i for i in picks if train[i] != doc][:5]
    ctx = ""
    for i in sel:
        ctx += "Question: " + train[i]["question"] + "\nAnswer:" + " " + train[i]["answer"] + "\n\n"
    ctx += "Question: " + doc["question"] + "\nAnswer:"
    print(json.dumps({"doc_id": doc_id, "fewshot": sel,
                      "prompt_sha256": hashlib.sha256(ctx.encode("utf-8")).hexdigest(),
                      "prompt_len": len(ctx.encode("utf-8"))}))
