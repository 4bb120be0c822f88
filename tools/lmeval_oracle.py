#!/usr/bin/env python3
"""Oracle for tests/cases/lmeval_*.jsonl: computes every verdict with
lm-evaluation-harness's own code, loaded from a checkout given on the command
line (nothing of lm-eval is copied here). Used only to generate and re-check
test data; qeval never runs Python.

    git -C <mirror> archive HEAD lm_eval | tar -x -C /tmp/lmeval
    tools/lmeval_oracle.py /tmp/lmeval IN.jsonl > OUT.jsonl     # fill "expected"
    tools/lmeval_oracle.py --check /tmp/lmeval tests/cases/lmeval_equiv.jsonl

Input lines: {"fn": ..., "pred"|"pred_hex": ..., "gold"|"gold_hex": ..., "doc": {...}}.
*_hex fields carry raw bytes (possibly invalid UTF-8), decoded with
surrogateescape, which is how qeval maps invalid UTF-8.
"""
import ast
import importlib.util
import json
import os
import re
import string
import sys
import types

import numpy as np
import yaml


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def extract_def(path, name, glb):
    """Exec one top-level def/class from a source file into glb."""
    src = open(path, encoding="utf-8").read()
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            code = ast.get_source_segment(src, node)
            code = "from __future__ import annotations\n" + code
            exec(compile(code, path, "exec"), glb)
            return glb[name]
    raise SystemExit(f"{name} not found in {path}")


class Lm:
    def __init__(self, root):
        stub = types.ModuleType("datasets")  # utils.py imports it for a type hint
        stub.Dataset = object
        sys.modules.setdefault("datasets", stub)
        t = os.path.join(root, "lm_eval", "tasks")
        self.hm = load_module("hm_utils", os.path.join(t, "hendrycks_math", "utils.py"))
        self.aime = load_module("aime_utils", os.path.join(t, "aime", "utils.py"))
        with open(os.path.join(t, "gsm8k", "gsm8k.yaml"), encoding="utf-8") as f:
            self.gsm = yaml.safe_load(f)

        class Filter:  # stand-in for lm_eval.api.filter.Filter
            def __init__(self, **kw):
                pass

        glb = {"Filter": Filter, "register_filter": lambda name: (lambda c: c), "re": re,
               "__name__": "lmeval_extraction"}
        self.RegexFilter = extract_def(os.path.join(root, "lm_eval", "filters", "extraction.py"),
                                       "RegexFilter", glb)
        mglb = {"np": np, "re": re, "string": string}
        self.em = extract_def(os.path.join(root, "lm_eval", "api", "metrics.py"),
                              "exact_match_hf_evaluate", mglb)
        m = self.gsm["metric_list"][0]
        assert m["metric"] == "exact_match"
        self.em_kwargs = {k: v for k, v in m.items()
                          if k not in ("metric", "aggregation", "higher_is_better")}
        self.filters = []
        for fl in self.gsm["filter_list"]:
            steps = fl["filter"]
            assert steps[0]["function"] == "regex" and steps[1]["function"] == "take_first"
            kw = {k: v for k, v in steps[0].items() if k != "function"}
            self.filters.append((fl["name"], self.RegexFilter(**kw)))

    def gsm8k(self, resp, target):
        out = {}
        for name, flt in self.filters:
            filtered = list(flt.apply([[resp]], [None]))[0][0]  # then take_first
            em = self.em(predictions=[filtered], references=[target], **self.em_kwargs)
            out[name] = [filtered, int(em["exact_match"])]
        return out


def exc(f, *a):
    try:
        return f(*a)
    except Exception as e:  # the verdict is the exception type
        return "EXCEPTION:" + type(e).__name__


def text(d, k):
    if k + "_hex" in d:
        return bytes.fromhex(d[k + "_hex"]).decode("utf-8", "surrogateescape")
    return d.get(k)


def enc(s):
    """JSON-safe form: plain str, or hex of the surrogateescape bytes."""
    if isinstance(s, str):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return {"hex": s.encode("utf-8", "surrogateescape").hex()}
    return s


def compute(lm, d):
    fn = d["fn"]
    p, g = text(d, "pred"), text(d, "gold")
    u = lm.hm
    if fn == "is_equiv":
        ss = lambda x: None if x is None else enc(exc(u.strip_string, x))  # noqa: E731
        return {"expected": u.is_equiv(p, g), "ss_pred": ss(p), "ss_gold": ss(g)}
    if fn == "strip_string":
        return {"expected": enc(exc(u.strip_string, p))}
    if fn == "last_boxed_only_string":
        return {"expected": enc(exc(u.last_boxed_only_string, p))}
    if fn == "remove_boxed":
        return {"expected": enc(exc(u.remove_boxed, p))}
    if fn == "hendrycks_math500.process_results":
        return {"expected": lm.hm.process_results(d["doc"], [p])["exact_match"]}
    if fn in ("aime24.process_results", "aime25.process_results"):
        return {"expected": lm.aime.process_results(d["doc"], [p])["exact_match"]}
    if fn == "gsm8k":
        return {"expected": lm.gsm8k(p, str(d["doc"]["answer"]))}
    if fn == "gsm8k.exact_match":
        em = lm.em(predictions=[p], references=[g], **lm.em_kwargs)
        return {"expected": int(em["exact_match"])}
    raise SystemExit(f"unknown fn {fn}")


def how_note(root):
    return ("expected computed by lm-eval's own code (%s) via tools/lmeval_oracle.py, "
            "CPython %d.%d.%d, numpy %s" % (os.environ.get("LMEVAL_REV", root), *sys.version_info[:3],
                                            np.__version__))


def main():
    args = sys.argv[1:]
    check = args and args[0] == "--check"
    if check:
        args = args[1:]
    root, path = args
    lm = Lm(root)
    bad = 0
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        d = json.loads(line)
        got = compute(lm, d)
        if check:
            for k, v in got.items():
                if d.get(k) != v:
                    bad += 1
                    print(f"{path}:{n}: {k}: file has {d.get(k)!r}, lm-eval gives {v!r}")
        else:
            d.update(got)
            d.setdefault("how", how_note(root))
            print(json.dumps(d, ensure_ascii=False))
    if check:
        print(f"{bad} mismatches", file=sys.stderr)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
