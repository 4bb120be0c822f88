#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into fuzz/corpus/<target>/ from the
project's own test cases (tests/cases, tests/fixtures, examples). Run from the
repository root; existing files are kept (seed names are the SHA-1 of the
content, as libFuzzer names its own corpus files, so reruns add nothing).
Test-data generation only: nothing in the build or the tests runs Python."""
import glob, hashlib, json, os, sys

def put(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)

def field(d, name):
    if name + "_hex" in d:
        return bytes.fromhex(d[name + "_hex"])
    v = d.get(name)
    if v is None:
        return b""
    return str(v).encode("utf-8")

def lmeval_score():
    for path in ["tests/cases/lmeval_equiv.jsonl", "tests/cases/lmeval_fuzz.jsonl"]:
        for line in open(path, encoding="utf-8"):
            d = json.loads(line)
            gold = field(d, "gold")
            doc = d.get("doc")
            if not gold and isinstance(doc, dict):
                for k in ("solution", "answer", "Answer"):
                    if k in doc:
                        gold = str(doc[k]).encode("utf-8")
                        break
            put("fuzz_lmeval_score", field(d, "pred") + b"\0" + gold)

def plans():
    for p in sorted(glob.glob("tests/cases/plans/*.yaml") + glob.glob("examples/*.yaml")):
        put("fuzz_plan", open(p, "rb").read())

def engine_logs():
    for s in ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
              "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
              "vllm serve: error: unrecognized arguments: --foo",
              "Repository Not Found for url: https://huggingface.co/api/models/x/y",
              "OSError: [Errno 98] Address already in use",
              "INFO 01-01 00:00:00 api_server.py:1 vLLM API server version 0.11.0\nSegmentation fault (core dumped)\n",
              ""]:
        put("fuzz_engine_log", s)

def lmio():
    for line in open("tests/cases/pyjson.jsonl", encoding="utf-8"):
        d = json.loads(line)
        put("fuzz_pyjson", d["input"])
        put("fuzz_pyjson", d["compact"])
    for i, line in enumerate(open("tests/cases/pyjson_floats.jsonl", encoding="utf-8")):
        if i % 20 == 0:
            put("fuzz_pyjson", json.loads(line)["repr"])
    for p in sorted(glob.glob("tests/fixtures/**/*.json", recursive=True)):
        data = open(p, "rb").read()
        put("fuzz_lmeval_results", data)
        if len(data) < 20000:
            put("fuzz_pyjson", data)
    for p in sorted(glob.glob("tests/fixtures/**/*.jsonl", recursive=True)):
        lines = open(p, "rb").read().split(b"\n")
        # one seed per file start (a few lines) and a few single lines
        put("fuzz_lmeval_samples", b"\n".join(lines[:3]) + b"\n")
        for l in lines[:2]:
            if l:
                put("fuzz_pyjson", l)

def client():
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "Qwen/Qwen3-32B",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is $\\boxed{7}$.",
                                                 "reasoning_content": None}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}}
    put("fuzz_client_reply", json.dumps(chat))
    chat["choices"][0]["message"] = {"role": "assistant", "content": None, "reasoning_content": "<think>hm"}
    chat["choices"][0]["finish_reason"] = "length"
    put("fuzz_client_reply", json.dumps(chat))
    put("fuzz_client_reply", json.dumps({"object": "text_completion", "model": "m",
                                         "choices": [{"index": 0, "text": " 42", "finish_reason": None}]}))
    for s in ['{"error":{"message":"nested msg","type":"BadRequestError","code":400}}',
              '{"object":"error","message":"flat msg","type":"BadRequestError","code":400}',
              '{"detail":"Not Found"}', '{"error":"Unauthorized"}', "<h1>Bad\nGateway</h1>", "",
              '{"choices":[{"message":{"content":"cut', '{"choices":[{"message":{"content":5}}]}',
              '{"choices":[]}', '[1,2]', '{"choices":[{"message":{"content":"\\u0000x"}}]}',
              b'{"choices":[{"message":{"content":"\xff\xfe ok"}}]}']:
        put("fuzz_client_reply", s)

def verify():
    # the same pred/gold pairs the lm-eval scorer is seeded with
    for path in ["tests/cases/lmeval_equiv.jsonl"]:
        for line in open(path, encoding="utf-8"):
            d = json.loads(line)
            gold = field(d, "gold")
            if gold:
                put("fuzz_verify", field(d, "pred") + b"\0" + gold)
    # the verifier's own golden pairs (all hand-made ones, a sample of the large files)
    for path, every in [("tests/cases/verify_handmade.jsonl", 1), ("tests/cases/verify_hendrycks.jsonl", 1),
                        ("tests/cases/verify_lmeval.jsonl", 1), ("tests/cases/verify_mathverify.jsonl", 1),
                        ("tests/cases/verify_real_outputs.jsonl", 5), ("tests/cases/verify_math500.jsonl", 30)]:
        if not os.path.exists(path):
            continue
        for i, line in enumerate(open(path, encoding="utf-8")):
            if i % every == 0:
                d = json.loads(line)
                put("fuzz_verify", field(d, "pred") + b"\0" + field(d, "gold"))
    for p, g in [("\\frac{1}{2}", "0.5"), ("\\{1,2\\}", "\\{2,1\\}"), ("(1,2]", "(1, 2]"),
                 ("x^2+2x+1", "(x+1)^2"), ("90^\\circ", "\\frac{\\pi}{2}"), ("50\\%", "0.5"),
                 ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "[[1,2],[3,4]]"), ("\\sqrt{8}", "2\\sqrt{2}"),
                 ("2^{10000000}", "2"), ("x=3", "3"), ("<think>7</think>The answer is \\boxed{8}", "8")]:
        put("fuzz_verify", p.encode() + b"\0" + g.encode())

def report():
    files = sorted(glob.glob("tests/fixtures/**/*.verdicts.jsonl", recursive=True) +
                   glob.glob("examples/**/*.verdicts.jsonl", recursive=True))
    by_task = {}
    for f in files:
        by_task.setdefault(os.path.basename(f), []).append(f)
    for task, fs in sorted(by_task.items()):
        for other in fs[1:]:
            a = open(fs[0], "rb").read().split(b"\n")[:12]
            b = open(other, "rb").read().split(b"\n")[:12]
            put("fuzz_report", b"\n".join(x for pair in zip(a, b) for x in pair) + b"\n")
    put("fuzz_report", b'{"doc_id":1,"correct":true,"response":"</script><script>alert(1)</script>","gold":"<b>"}\n'
                       b'{"doc_id":1,"correct":false,"response":"\\"\'&","extracted":"<img src=x>","finish_reason":"length"}\n')

if __name__ == "__main__":
    if not os.path.isdir("fuzz"):
        sys.exit("run from the repository root")
    lmeval_score()
    plans()
    engine_logs()
    lmio()
    report()
    verify()
    client()
