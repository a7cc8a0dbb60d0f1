"""Time parallel analysis: gapscale beside psych::fa.parallel, on the same data, in one run.

    python benchmarks/parallel_bench.py [--correlation pearson|polychoric] [--iterations 20]

Data: 70 items x 1,000 respondents on a 7-point scale, simulated by gapscale (14 factors of 5
items). Both resample columns and simulate normal data, as psych::fa.parallel(x, fa = "both",
n.iter = k, cor = "cor" | "poly") does by default. Prints wall times and their ratio; without
Rscript on the PATH, prints gapscale's time alone. Not a test: timings belong here.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import efa as fa
from analysis.simulate import SimulationParams, simulate_study
from instrument import parse_instrument


def data(n: int = 1000, items: int = 70, per_factor: int = 5) -> pd.DataFrame:
    constructs = [{"id": f"F{k}", "items": [{"id": f"F{k}_{j}"} for j in range(1, per_factor + 1)]}
                  for k in range(1, items // per_factor + 1)]
    inst = parse_instrument({"name": "bench", "scale": {"type": "likert", "min": 1, "max": 7}, "constructs": constructs})
    params = SimulationParams(n=n, loadings={"default": 0.7}, exogenous_correlation=0.3, personal_data=False,
                              defects={k: 0.0 for k in SimulationParams().defects})
    sim = simulate_study(inst, params, seed=1)
    return sim.responses[list(inst.item_ids)].astype(float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--correlation", choices=["pearson", "polychoric"], default="pearson")
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    x = data()
    if args.correlation == "pearson":
        correlate = lambda d: d.astype(float).corr().to_numpy()  # noqa: E731
    else:
        from analysis.polychoric import polychoric

        correlate = lambda d: polychoric(d).correlation.to_numpy()  # noqa: E731
    t0 = time.perf_counter()
    table = fa.parallel_analysis(x, correlate, np.random.default_rng(1), n_iter=args.iterations)
    ours = time.perf_counter() - t0
    print(f"data: {x.shape[1]} items x {x.shape[0]} respondents, {args.correlation}, {args.iterations} iterations")
    print(f"gapscale parallel analysis: {ours:.2f} s (suggests {fa.parallel_suggestion(table, 'fa')} factors, "
          f"{fa.parallel_suggestion(table, 'pc')} components)")
    if shutil.which("Rscript") is None:
        print("psych: Rscript not found; install R and psych to compare (apt-get install r-base-core r-cran-psych)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        x.to_csv(path, index=False)
        cor = "cor" if args.correlation == "pearson" else "poly"
        script = (f'suppressPackageStartupMessages(library(psych)); x <- read.csv("{path}"); '
                  f't <- system.time(p <- fa.parallel(x, fa = "both", n.iter = {args.iterations}, cor = "{cor}", '
                  f'plot = FALSE))[["elapsed"]]; cat(t, p$nfact, p$ncomp, "\\n")')
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"psych failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            return
        t, nfact, ncomp = out.stdout.split()[-3:]
        print(f"psych::fa.parallel:         {float(t):.2f} s (suggests {nfact} factors, {ncomp} components)")
        print(f"ratio gapscale / psych:     {ours / float(t):.2f}")


if __name__ == "__main__":
    main()
