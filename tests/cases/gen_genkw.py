#!/usr/bin/env python3
"""Generates tests/cases/genkw.jsonl: lm-eval v0.4.9.2 --gen_kwargs parsing.

handle_arg_string / simple_parse_args_string below restate lm-eval's
lm_eval/utils.py (v0.4.9.2) behavior; each line holds the input text and
json.dumps of the dict Python produces, so test_genkw.c checks values AND
types (int vs float vs bool vs str). Run: python3 tests/cases/gen_genkw.py
"""
import json


def handle_arg_string(arg):
    if arg.lower() == "true":
        return True
    elif arg.lower() == "false":
        return False
    elif arg.isnumeric():
        return int(arg)
    try:
        return float(arg)
    except ValueError:
        return arg


def simple_parse_args_string(args_string):
    args_string = args_string.strip()
    if not args_string:
        return {}
    arg_list = [arg for arg in args_string.split(",") if arg]
    return {kv[0]: handle_arg_string("=".join(kv[1:])) for kv in [arg.split("=") for arg in arg_list]}


CASES = [
    "max_gen_toks=1024,temperature=0",
    "temperature=0.0",
    "temperature=0.6,top_p=0.95,top_k=20",
    "do_sample=True,temperature=0.7",
    "do_sample=FALSE",
    "top_k=-1",
    "seed=+5",
    "x=1e3",
    "x=1E-3",
    "x=.5",
    "x=5.",
    "x=1_000",
    "x=1_000.5",
    "x= 2.5 ",
    "x=0x10",
    "x=1__0",
    "x=_1",
    "x=abc",
    "x=",
    "x",
    "a=b=c",
    "a=1=2",
    ",,max_gen_toks=10,,",
    "  max_gen_toks=10  ",
    "",
    "   ",
    "a=1,a=2",
    "b=1,a=2,b=3",
    "until=Question:",
    "x=007",
    "x=-0",
    "x=1.5e",
    "x=e5",
    "x=True1",
    "x=99999999999999999",
]

with open("tests/cases/genkw.jsonl", "w") as f:
    for c in CASES:
        d = simple_parse_args_string(c)
        f.write(json.dumps({"text": c, "expect": d}, allow_nan=False) + "\n")
