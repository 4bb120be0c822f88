# Generates tests/cases/pyrandom.jsonl with CPython's own random module.
import json, random, sys
out = []
seeds = [0, 1, 42, 1234, 2**32 + 5, 2**64 - 1, 123456789012345678901234567890 % 2**63]
for s in seeds:
    r = random.Random(s); out.append({"seed": s, "op": "u32", "out": [r.getrandbits(32) for _ in range(8)]})
    r = random.Random(s); out.append({"seed": s, "op": "random", "out": [r.random() for _ in range(8)]})
    for k in (1, 7, 31, 33, 63):
        r = random.Random(s); out.append({"seed": s, "op": "getrandbits", "k": k, "out": [r.getrandbits(k) for _ in range(4)]})
    for n in (1, 2, 3, 10, 7473, 2**31 + 1):
        r = random.Random(s); out.append({"seed": s, "op": "randbelow", "n": n, "out": [r._randbelow(n) for _ in range(6)]})
    for n in (1, 2, 10, 52):
        r = random.Random(s); x = list(range(n)); r.shuffle(x); out.append({"seed": s, "op": "shuffle", "n": n, "out": x})
    for n, k in ((7473, 5), (30, 6), (20, 20), (100, 10), (85, 10), (21, 5), (22, 5), (5, 0)):
        r = random.Random(s); xs = [r.sample(range(n), k) for _ in range(3)]
        out.append({"seed": s, "op": "sample", "n": n, "k": k, "out": xs})
for o in out:
    o["seed"] = str(o["seed"])
    sys.stdout.write(json.dumps(o) + "\n")
