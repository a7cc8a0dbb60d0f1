"""Time the CFA fit and the SEM bootstrap: gapscale beside lavaan, same data, same run.

    python benchmarks/sem_bench.py [--what cfa|bootstrap|both] [--draws 2000] [--jobs N]

Data: the default instrument (18 constructs x 4 items, 7-point), N = 1,000 complete
respondents simulated from the default population (no defects, no missing answers; reverse-keyed
items recoded).

- ``cfa``: one factor per construct, ML: gapscale's ``fit_sem`` (estimates, SEs, std.all with
  SEs, every fit index) beside ``lavaan::cfa(model, data)`` followed by ``fitMeasures`` and
  ``standardizedSolution``.
- ``bootstrap``: the hypothesised structural model (instrument/sustainability_gap.lavaan), B
  bootstrap draws: gapscale's ``bootstrap_sem`` on ``--jobs`` processes beside
  ``sem(model, data, se = "bootstrap", bootstrap = B, parallel = "multicore", ncpus = jobs)``.

Prints wall times and ratios; without Rscript on the PATH, gapscale's times alone. Not a test:
timings belong here, not in the test suite.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from analysis.bootstrap import bootstrap_sem
from analysis.clean import recode_reverse
from analysis.sem import fit_sem
from analysis.simulate import parse_simulation_params, simulate_study
from instrument import DEFAULT_INSTRUMENT, load_instrument

ROOT = Path(__file__).resolve().parents[1]


def data(n: int = 1000) -> tuple[pd.DataFrame, str, str]:
    inst = load_instrument(DEFAULT_INSTRUMENT)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["simulate"]
    raw = {**raw, "n": n, "personal_data": False, "defects": {k: 0.0 for k in raw["defects"]}}
    sim = simulate_study(inst, parse_simulation_params(raw), seed=1)
    items = list(inst.item_ids)
    x = recode_reverse(sim.responses, inst)[items].astype(float)
    cfa = "\n".join(f"{c.id} =~ {' + '.join(c.item_ids)}" for c in inst.constructs) + "\n"
    sem = Path(DEFAULT_INSTRUMENT).with_suffix(".lavaan").read_text(encoding="utf-8")
    return x, cfa, sem


def run_r(script: str) -> list[str] | None:
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    if out.returncode != 0:
        print("lavaan failed: " + (" | ".join(out.stderr.strip().splitlines()[-3:]) if out.stderr.strip() else str(out.returncode)))
        return None
    return out.stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=["cfa", "bootstrap", "both"], default="both")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    x, cfa_model, sem_model = data()
    have_r = shutil.which("Rscript") is not None
    print(f"data: {x.shape[1]} items x {x.shape[0]} respondents (default instrument, complete)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        x.to_csv(path, index=False)
        (Path(tmp) / "cfa.lavaan").write_text(cfa_model)
        (Path(tmp) / "sem.lavaan").write_text(sem_model)
        head = (f'suppressPackageStartupMessages(library(lavaan)); x <- read.csv("{path}"); '
                f'cfa_m <- paste(readLines("{tmp}/cfa.lavaan"), collapse = "\\n"); '
                f'sem_m <- paste(readLines("{tmp}/sem.lavaan"), collapse = "\\n"); ')
        if args.what in ("cfa", "both"):
            t0 = time.perf_counter()
            fit = fit_sem(x, cfa_model)
            ours = time.perf_counter() - t0
            print(f"CFA, 18 factors, ML: gapscale {ours:.2f} s (chisq {fit.fit['chisq']:.3f}, df {fit.fit['df']}, "
                  f"CFI {fit.fit['cfi']:.4f})")
            if have_r:
                out = run_r(head + 't <- system.time({f <- cfa(cfa_m, x); m <- fitMeasures(f); '
                            's <- standardizedSolution(f)})[["elapsed"]]; cat(t, m[["chisq"]], "\\n")')
                if out:
                    print(f"CFA, 18 factors, ML: lavaan   {float(out[0]):.2f} s (chisq {float(out[1]):.3f})")
                    print(f"ratio gapscale / lavaan (CFA): {ours / float(out[0]):.2f}")
        if args.what in ("bootstrap", "both"):
            fit = fit_sem(x, sem_model)
            t0 = time.perf_counter()
            boot = bootstrap_sem(x, fit, draws=args.draws, seed=1, jobs=args.jobs)
            ours = time.perf_counter() - t0
            print(f"bootstrap, {args.draws} draws on {args.jobs} processes: gapscale {ours:.1f} s "
                  f"({boot.converged} converged, {boot.failed} failed)")
            if have_r:
                par = "multicore" if args.jobs > 1 else "no"
                out = run_r(head + f'f <- sem(sem_m, x); set.seed(1); t <- system.time(b <- bootstrapLavaan(f, R = '
                            f'{args.draws}, FUN = "coef", parallel = "{par}", ncpus = {args.jobs}))[["elapsed"]]; '
                            'cat(t, sum(is.finite(b[, 1])), "\\n")')
                if out:
                    print(f"bootstrap, {args.draws} draws on {args.jobs} processes: lavaan   {float(out[0]):.1f} s "
                          f"({out[1]} converged)")
                    print(f"ratio gapscale / lavaan (bootstrap): {ours / float(out[0]):.2f}")


if __name__ == "__main__":
    main()
