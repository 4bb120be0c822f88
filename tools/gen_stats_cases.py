#!/usr/bin/env python3
"""Writes tests/cases/stats_*.jsonl: golden values for src/stats.c computed
independently in Python (exact rationals with fractions where possible,
statistics.NormalDist for quantiles), plus hand-worked lines. Data tool
only; the C tests read the JSONL, never run this.

Usage: python3 tools/gen_stats_cases.py tests/cases
"""
import json, math, os, sys
from fractions import Fraction
from statistics import NormalDist

out = sys.argv[1]
Z = NormalDist().inv_cdf(0.975)


def w(name, rows):
    with open(os.path.join(out, name), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


# ---- McNemar exact: p = min(1, 2 * sum_{i<=m} C(N,i) / 2^N), exact fractions
def mcnemar(b, c):
    N, m = b + c, min(b, c)
    if N == 0:
        return 1.0
    s, t = 0, 1
    for i in range(m + 1):  # t = C(N, i), exact integers
        s += t
        t = t * (N - i) // (i + 1)
    return float(min(Fraction(1), Fraction(2 * s, 2 ** N)))

rows = [
    {"b": 1, "c": 7, "p": 0.0703125, "source": "hand: 2*(1+8)/256 (Bentur et al. data used by Fagerland 2014)"},
    {"b": 0, "c": 0, "p": 1.0, "source": "hand: no discordant pairs"},
    {"b": 0, "c": 5, "p": 0.0625, "source": "hand: 2/32"},
    {"b": 5, "c": 5, "p": 1.0, "source": "hand: symmetric"},
    {"b": 3, "c": 4, "p": 1.0, "source": "hand: 2*P(X<=3), X~Bin(7,1/2) = 2*64/128 -> capped 1"},
    {"b": 2, "c": 10, "p": 0.03857421875, "source": "hand: 2*(1+12+66)/4096 = 158/4096"},
]
for b, c in [(10, 20), (25, 50), (100, 130), (7, 170), (4, 12), (30, 11), (500, 560),
             (1000, 1200), (4900, 5100), (20000, 20500), (45000, 55000), (49900, 50100), (0, 100000)]:
    rows.append({"b": b, "c": c, "p": mcnemar(b, c),
                 "source": "python3 fractions: exact binomial tail sum"})
w("stats_mcnemar.jsonl", rows)

# ---- Wilson score interval
def wilson(k, n, z=Z):
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (c - h) / d), min(1.0, (c + h) / d)

rows = [
    {"k": 81, "n": 263, "lo": 0.2553, "hi": 0.3662, "tol": 6e-5, "source": "Newcombe 1998 Stat Med 17:857 Table II method 3"},
    {"k": 15, "n": 148, "lo": 0.0624, "hi": 0.1605, "tol": 6e-5, "source": "Newcombe 1998 Stat Med 17:857 Table II method 3"},
    {"k": 0, "n": 20, "lo": 0.0, "hi": 0.1611, "tol": 6e-5, "source": "Newcombe 1998 Stat Med 17:857 Table II method 3"},
    {"k": 1, "n": 29, "lo": 0.0061, "hi": 0.1718, "tol": 6e-5, "source": "Newcombe 1998 Stat Med 17:857 Table II method 3"},
]
for k, n in [(425, 500), (263, 500), (23, 90), (0, 1), (1, 1), (50, 100), (99999, 100000)]:
    lo, hi = wilson(k, n)
    rows.append({"k": k, "n": n, "lo": lo, "hi": hi, "tol": 1e-12, "source": "python3 float Wilson formula, z=NormalDist.inv_cdf(0.975)"})
w("stats_wilson.jsonl", rows)

# ---- Newcombe method 10 and Wald for paired proportions
def newcombe(e, f, g, h):
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson(e + f, n)
    l2, u2 = wilson(e + g, n)
    den = (e + f) * (g + h) * (e + g) * (f + h)
    phi = (e * h - f * g) / math.sqrt(den) if den > 0 else 0.0
    d = p1 - p2
    dl = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, d - math.sqrt(max(dl, 0))), min(1.0, d + math.sqrt(max(du, 0)))

def wald(e, f, g, h):
    n = e + f + g + h
    d = (f - g) / n
    v = (f + g) / n - d * d
    hw = Z * math.sqrt(max(v, 0)) / math.sqrt(n)
    return max(-1.0, d - hw), min(1.0, d + hw)

rows = []
for t in [(1, 1, 7, 12), (12, 2, 4, 22), (400, 10, 20, 70), (250, 13, 175, 62), (415, 6, 10, 69),
          (50, 0, 0, 50), (0, 5, 0, 0), (30, 0, 10, 60), (90, 3, 2, 5)]:
    lo, hi = newcombe(*t)
    wl, wh = wald(*t)
    rows.append({"both": t[0], "x_only": t[1], "y_only": t[2], "neither": t[3],
                 "lo": lo, "hi": hi, "wald_lo": wl, "wald_hi": wh, "tol": 1e-12,
                 "source": "python3 float, Newcombe 1998 Stat Med 17:2635 method 10 (phi without continuity correction)"})
w("stats_newcombe.jsonl", rows)

# ---- pass@k, exact
def passk(n, c, k):
    if n - c < k:
        return 1.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))

rows = [{"n": 1, "c": 1, "k": 1, "v": 1.0, "source": "hand"},
        {"n": 2, "c": 1, "k": 1, "v": 0.5, "source": "hand"},
        {"n": 4, "c": 1, "k": 2, "v": 0.5, "source": "hand: 1 - C(3,2)/C(4,2) = 1 - 3/6"},
        {"n": 10, "c": 0, "k": 5, "v": 0.0, "source": "hand"}]
for n, c, k in [(10, 3, 1), (10, 3, 5), (16, 2, 8), (100, 1, 10), (200, 7, 50), (1000, 10, 100), (64, 63, 1)]:
    rows.append({"n": n, "c": c, "k": k, "v": passk(n, c, k), "source": "python3 fractions: 1 - C(n-c,k)/C(n,k)"})
w("stats_passk.jsonl", rows)

# ---- mean / stderr as lm-eval: sqrt(sum((x-mu)**2)/(n-1))/sqrt(n), python left fold
def lm_stderr(a):
    mu = sum(a) / len(a)
    return math.sqrt(sum([(x - mu) ** 2 for x in a]) / (len(a) - 1)) / math.sqrt(len(a))

rows = [{"x": [1, 0, 1, 1], "mean": 0.75, "stderr": 0.25, "source": "hand: var 0.25, sd 0.5, /2"},
        {"x": [1], "mean": 1.0, "stderr": None, "source": "hand: n<=1 is N/A"}]
import random
rnd = random.Random(7)
for n in [2, 3, 30, 100, 500]:
    x = [float(rnd.random() < 0.6) for _ in range(n)]
    rows.append({"x": x, "mean": sum(x) / n, "stderr": lm_stderr(x), "source": "python3: lm-eval mean_stderr formula"})
x = [rnd.random() for _ in range(50)]
rows.append({"x": x, "mean": sum(x) / 50, "stderr": lm_stderr(x), "source": "python3: lm-eval formula on fractional values"})
w("stats_stderr.jsonl", rows)

# ---- power (Connor 1987): n = (za sqrt(psi) + zb sqrt(psi - d^2))^2 / d^2
za, zb = NormalDist().inv_cdf(0.975), NormalDist().inv_cdf(0.8)
def n_needed(d, psi):
    psi = max(psi, d)
    return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - d * d, 0))) ** 2 / (d * d)
def mdd(n, psi):
    # smallest delta whose n_needed (psi raised to delta) is <= n
    lo, hi = 0.0, 1.0
    for _ in range(200):
        m = (lo + hi) / 2
        if n_needed(m, psi) > n: lo = m
        else: hi = m
    return hi
rows = []
for d, psi in [(0.01, 0.05), (0.02, 0.05), (0.01, 0.2), (0.02, 0.1), (0.05, 0.3), (0.1, 0.05)]:
    rows.append({"fn": "n_needed", "delta": d, "psi": psi, "v": n_needed(d, psi), "tol_rel": 1e-9,
                 "source": "python3 NormalDist, Connor 1987 formula"})
for n, psi in [(500, 0.032), (500, 0.38), (100, 0.1), (90, 0.2), (30, 0.5), (1000, 0.01), (500, 0.002), (500, 0.0)]:
    rows.append({"fn": "mdd", "n": n, "psi": psi, "v": mdd(n, psi), "tol_rel": 1e-9,
                 "source": "python3 NormalDist + bisection on Connor 1987 formula"})
rows.append({"fn": "n_needed", "delta": 0.1, "psi": 0.2, "v": (1.959963984540054 * math.sqrt(0.2) + 0.8416212335729143 * math.sqrt(0.19)) ** 2 / 0.01,
             "tol_rel": 1e-9, "source": "hand: z values from published normal tables (1.959964, 0.841621)"})
w("stats_power.jsonl", rows)

# ---- normal quantile
rows = [{"p": p, "z": NormalDist().inv_cdf(p), "source": "python3 statistics.NormalDist.inv_cdf"}
        for p in [0.5, 0.8, 0.9, 0.95, 0.975, 0.995, 0.999, 1e-6, 0.025]]
rows.append({"p": 0.975, "z": 1.959963984540054, "source": "published normal table (1.959963985)"})
w("stats_quantile.jsonl", rows)

# ---- bootstrap: the same algorithm re-implemented (splitmix64 -> xoshiro256**,
# rejection sampling, type-7 quantile), so the C code must match exactly.
M = (1 << 64) - 1
class Rng:
    def __init__(self, seed):
        self.s = []
        x = seed
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & M
            z = x
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
            self.s.append(z ^ (z >> 31))
    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r
    def below(self, b):
        lim = M - (M % b)
        while True:
            v = self.next()
            if v < lim:
                return v % b
def q7(v, q):
    h = (len(v) - 1) * q
    i = math.floor(h)
    if i + 1 >= len(v):
        return v[-1]
    return v[i] + (h - i) * (v[i + 1] - v[i])
rows = []
r = Rng(1)
rows.append({"fn": "rng", "seed": 1, "first": [str(r.next()) for _ in range(5)], "source": "python3 re-implementation of splitmix64 + xoshiro256**"})
r = Rng(0)
rows.append({"fn": "rng", "seed": 0, "first": [str(r.next()) for _ in range(5)], "source": "python3 re-implementation of splitmix64 + xoshiro256**"})
for seed, n, iters in [(42, 40, 200), (7, 100, 1000)]:
    rr = random.Random(seed)
    x = [float(rr.random() < 0.7) for _ in range(n)]
    y = [float(rr.random() < 0.6) for _ in range(n)]
    g = Rng(seed)
    diffs = []
    for _ in range(iters):
        s = 0.0
        for _ in range(n):
            k = g.below(n)
            s += x[k] - y[k]
        diffs.append(s / n)
    diffs.sort()
    rows.append({"fn": "bootstrap", "seed": seed, "iters": iters, "x": x, "y": y, "conf": 0.95,
                 "lo": q7(diffs, 0.025), "hi": q7(diffs, 0.975),
                 "source": "python3 re-implementation of the documented resampling procedure"})
w("stats_bootstrap.jsonl", rows)
