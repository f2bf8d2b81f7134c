#!/usr/bin/env python3
"""Writes tests/data/hub/pycma_reference.json: how many evaluations pycma (the `cma` package)
needs to reach f <= 1e-8 on sphere, ellipsoid (condition 1e6) and Rosenbrock in 5, 10 and 20
dimensions — the published behaviour culora's CMA-ES (host/hub/cmaes.c) is checked against
(tests/hub/test_cmaes.cpp: median within a factor of 1.5).

Both configurations are recorded: pycma's defaults (with active covariance update) and
CMA_active=False, which is the standard algorithm of Hansen's tutorial that culora implements.
Start points: sphere and ellipsoid x0 = 1 (all coordinates), sigma0 = 1; Rosenbrock x0 = 0,
sigma0 = 0.5. Default population size 4 + floor(3 ln N). Evaluations are counted in whole
generations, up to the generation that first reaches 1e-8.

Run:  python3 tests/gen/gen_cmaes_reference.py   (needs `pip install cma`; not run by CI)
"""
import json
import os
import statistics

import cma
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "hub", "pycma_reference.json")
SEEDS = list(range(1, 12))  # 11 runs per problem


def sphere(x):
    return float(np.sum(np.asarray(x) ** 2))


def ellipsoid(x):
    x = np.asarray(x)
    n = len(x)
    return float(sum(10 ** (6.0 * i / (n - 1)) * x[i] ** 2 for i in range(n)))


def rosenbrock(x):
    x = np.asarray(x)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


PROBLEMS = {
    "sphere": (sphere, 1.0, 1.0),
    "ellipsoid": (ellipsoid, 1.0, 1.0),
    "rosenbrock": (rosenbrock, 0.0, 0.5),
}


def evals_to_target(f, n, x0v, sigma0, seed, active):
    opts = {"ftarget": 1e-8, "seed": seed, "verbose": -9, "CMA_active": active, "maxfevals": 200000,
            "tolfun": 0, "tolx": 0, "tolfunhist": 0, "tolstagnation": 10 ** 9}
    es = cma.CMAEvolutionStrategy([x0v] * n, sigma0, opts)
    while not es.stop():
        xs = es.ask()
        es.tell(xs, [f(x) for x in xs])
        if es.best.f <= 1e-8:
            break
    if es.best.f > 1e-8:
        return None  # did not reach the target (e.g. a Rosenbrock run stuck in the local minimum)
    return es.countevals


def main():
    rows = []
    for name, (f, x0v, sigma0) in PROBLEMS.items():
        for n in (5, 10, 20):
            for active in (False, True):
                evals = [evals_to_target(f, n, x0v, sigma0, s, active) for s in SEEDS]
                ok = [e for e in evals if e is not None]
                rows.append({"problem": name, "n": n, "x0": x0v, "sigma0": sigma0, "cma_active": active,
                             "evals": evals, "median": statistics.median(ok) if ok else None,
                             "successes": len(ok), "runs": len(evals)})
                print(name, n, "active" if active else "standard", rows[-1]["median"], f"{len(ok)}/{len(evals)}")
    doc = {"generator": "tests/gen/gen_cmaes_reference.py", "cma": cma.__version__, "ftarget": 1e-8,
           "popsize": "4 + floor(3 ln N)", "rows": rows}
    with open(OUT, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
