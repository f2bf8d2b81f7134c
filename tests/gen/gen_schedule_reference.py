#!/usr/bin/env python3
"""Writes tests/data/train/lr_schedules.json: learning-rate multipliers per step computed by the
reference implementations culora's schedules (host/train/schedule.c) must reproduce:

  * transformers' get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup;
  * ReLoRA's own lambdas (Guitaricet/relora, peft_pretraining/training_utils.py):
    _get_cyclical_cosine_schedule_with_min_lr_lambda ("cosine" with min_lr_ratio) and
    _get_cosine_schedule_with_multiple_warmups_lambda (the jagged "cosine_restarts").
    That module imports wandb, loguru and the repo's LLaMA code, so the two functions are taken
    out of the file with `ast` and executed as they are (no re-typing).

Run:  python3 tests/gen/gen_schedule_reference.py PATH/TO/relora/peft_pretraining/training_utils.py
      (needs torch and transformers; `git clone https://github.com/Guitaricet/relora` for the file)
"""
import ast
import json
import math
import os
import subprocess
import sys
from functools import partial

import torch
import transformers

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "train", "lr_schedules.json")


def relora_lambdas(path):
    src = open(path).read()
    tree = ast.parse(src)
    wanted = {"_get_cyclical_cosine_schedule_with_min_lr_lambda", "_get_cosine_schedule_with_multiple_warmups_lambda"}
    ns = {"math": math}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in wanted:
            exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), ns)
    missing = wanted - set(ns)
    if missing:
        sys.exit(f"{path}: functions not found: {missing}")
    return ns


def hf_multipliers(kind, total, warmup):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    make = transformers.get_linear_schedule_with_warmup if kind == "linear" else transformers.get_cosine_schedule_with_warmup
    sched = make(opt, num_warmup_steps=warmup, num_training_steps=total)
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    ns = relora_lambdas(path)
    cyc = ns["_get_cyclical_cosine_schedule_with_min_lr_lambda"]
    jag = ns["_get_cosine_schedule_with_multiple_warmups_lambda"]
    cases = []
    for kind in ("linear", "cosine"):
        cases.append({"kind": kind, "total": 100, "warmup": 10, "multipliers": hf_multipliers(kind, 100, 10)})
    cases.append({"kind": "cosine", "total": 7, "warmup": 0, "multipliers": hf_multipliers("cosine", 7, 0)})
    f = partial(cyc, num_warmup_steps=10, cycle_length=50, min_lr_ratio=0.1)
    cases.append({"kind": "relora_cosine", "total": 100, "warmup": 10, "cycle_length": 50, "min_lr_ratio": 0.1,
                  "multipliers": [f(s) for s in range(101)]})
    for total, first, rw, every, adjust in ((200, 20, 5, 50, 0), (200, 10, 5, 40, 10), (1000, 100, 50, 250, 0)):
        g = partial(jag, num_training_steps=total, first_warmup_steps=first, restart_warmup_steps=rw,
                    restart_every=every, min_lr_ratio=0.1, adjust_step=adjust)
        cases.append({"kind": "cosine_restarts", "total": total, "warmup": first, "restart_warmup": rw,
                      "cycle_length": every, "adjust_step": adjust, "min_lr_ratio": 0.1,
                      "multipliers": [g(s) for s in range(total + 1)]})
    try:
        rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(path)), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ""
    doc = {"generator": "tests/gen/gen_schedule_reference.py", "transformers": transformers.__version__,
           "relora_commit": rev or "unknown", "cases": cases}
    with open(OUT, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")
    print(f"wrote {OUT}: {len(cases)} schedules")


if __name__ == "__main__":
    main()
