"""Time the CFA fit and the SEM bootstrap: the unified engine beside the old code (a checkout
given by --baseline) and lavaan, same data, same run, CPU seconds.

    python benchmarks/sem_bench.py [--what cfa|bootstrap|both] [--draws 50] [--repeat 2]
        [--data CSV] [--missing listwise|fiml] [--baseline DIR] [--lavaan]

Data: the default instrument (18 constructs x 4 items, 7-point), N = 1,000 complete
respondents simulated from the default population (no defects, no missing answers; reverse-keyed
items recoded); or ``--data`` (e.g. the default study's CFA half, data/processed/split/cfa.csv,
with ``--missing fiml`` as its sem stage fits it).

- ``cfa``: one factor per construct, ML: :func:`analysis.sem.api.fit_model` (estimates, SEs,
  std.all with SEs, every fit index).
- ``bootstrap``: the hypothesised structural model (instrument/sustainability_gap.lavaan),
  ``--draws`` bootstrap draws in this process (CPU seconds per draw do not depend on the number
  of worker processes): :func:`analysis.bootstrap.bootstrap_sem` on the engine's fit.

``--baseline DIR`` runs the same in a child process with ``PYTHONPATH=DIR`` on the old
single-group code (``analysis.sem.single.fit_sem`` and the ``analysis.bootstrap`` of that
checkout, e.g. a worktree of commit afa1727), alternating with the engine, best of ``--repeat``.
``--lavaan``: ``cfa(model, data)`` with ``fitMeasures``, and ``bootstrapLavaan(fit, R = draws,
FUN = "coef")``, user + sys of ``system.time``. Not a test: timings belong here.

Measured 2026-12-02 on the default study's CFA half (1,097 rows, FIML, the model of commit afa1727),
``--what bootstrap --missing fiml --draws 30 --repeat 2 --baseline <afa1727>`` on a loaded 2-core
machine: fit 8.47 CPU-s (engine) vs 16.37 (single.py), both chisq 2530.384; bootstrap 0.467 vs
0.309 CPU-s per draw (engine / old 1.51: the engine's FIML likelihood loops over the 173
missingness patterns, where the old bootstrap batched those missing one answer as rank-one updates).
The whole ``gapscale sem`` stage with 400 draws, jobs 1: 210.2 CPU-s (engine) vs 177.5 (old).

After the batched FIML likelihood and the reweighted draws (branch fiml, 2026-12-02, same data and
model, 20-30 draws, jobs 1, ``OMP_NUM_THREADS=1``, user + sys): 15.7-22 CPU-ms per FIML draw (0.454
before; 0.309 the old code), 11.5-14.7 listwise (45.5 before); FIML fit 4.4-5.7 CPU-s; draws equal
to the earlier engine's to 3e-13. The figures beside lavaan: ``benchmarks/fiml_bench.py bootstrap``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from analysis.bootstrap import bootstrap_sem
from analysis.clean import recode_reverse
from analysis.sem.api import fit_model
from analysis.simulate import parse_simulation_params, simulate_study
from instrument import DEFAULT_INSTRUMENT, load_instrument

ROOT = Path(__file__).resolve().parents[1]

# The old code's timing, run in a child process on the baseline checkout.
BASELINE = """
import json, sys, time
import pandas as pd
from analysis.sem.single import fit_sem
from analysis.bootstrap import bootstrap_sem
x = pd.read_csv(sys.argv[1]); model = open(sys.argv[2]).read()
what, draws, missing = sys.argv[3], int(sys.argv[4]), sys.argv[5]
t = time.process_time(); fit = fit_sem(x, model, missing=missing); t_fit = time.process_time() - t
out = {"fit": t_fit, "chisq": fit.fit["chisq"]}
if what == "bootstrap":
    t = time.process_time(); b = bootstrap_sem(x, fit, draws=draws, seed=1, jobs=1, missing=missing)
    out.update(boot=time.process_time() - t, converged=b.converged)
print(json.dumps(out))
"""


def simulated(n: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The default population's respondents without defects (seed 1): the responses, the items
    recoded (reverse-keyed ones turned), and the one-factor-per-construct CFA syntax."""
    inst = load_instrument(DEFAULT_INSTRUMENT)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["simulate"]
    raw = {**raw, "n": n, "personal_data": False, "defects": {k: 0.0 for k in raw["defects"]}}
    sim = simulate_study(inst, parse_simulation_params(raw), seed=1)
    x = recode_reverse(sim.responses, inst)[list(inst.item_ids)].astype(float)
    cfa = "\n".join(f"{c.id} =~ {' + '.join(c.item_ids)}" for c in inst.constructs) + "\n"
    return sim.responses, x, cfa


def data(n: int = 1000) -> tuple[pd.DataFrame, str, str]:
    _, x, cfa = simulated(n)
    sem = Path(DEFAULT_INSTRUMENT).with_suffix(".lavaan").read_text(encoding="utf-8")
    return x, cfa, sem


def run_r(script: str) -> list[str] | None:
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    if out.returncode != 0:
        print("lavaan failed: " + (" | ".join(out.stderr.strip().splitlines()[-3:]) if out.stderr.strip() else str(out.returncode)))
        return None
    return out.stdout.split()


def baseline(directory: str, csv: Path, model: Path, what: str, draws: int, missing: str) -> dict | None:
    env = {**os.environ, "PYTHONPATH": directory, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", BASELINE, str(csv), str(model), what, str(draws), missing],
                         capture_output=True, text=True, env=env, cwd=directory)
    if out.returncode != 0:
        print("baseline failed: " + " | ".join(out.stderr.strip().splitlines()[-3:]))
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=["cfa", "bootstrap", "both"], default="both")
    ap.add_argument("--draws", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--data", default=None, help="a CSV instead of the simulated study")
    ap.add_argument("--missing", choices=["listwise", "fiml"], default="listwise")
    ap.add_argument("--baseline", default=None, help="checkout of the old code (analysis.sem.single)")
    ap.add_argument("--lavaan", action="store_true")
    args = ap.parse_args()
    x, cfa_model, sem_model = data()
    if args.data:
        x = pd.read_csv(args.data)
    print(f"data: {x.shape[0]} respondents ({args.data or 'default instrument, complete'}), missing={args.missing}")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "x.csv"
        x.to_csv(csv, index=False)
        files = {"cfa": Path(tmp) / "cfa.lavaan", "bootstrap": Path(tmp) / "sem.lavaan"}
        files["cfa"].write_text(cfa_model)
        files["bootstrap"].write_text(sem_model)
        for what in (["cfa", "bootstrap"] if args.what == "both" else [args.what]):
            model = files[what].read_text()
            best = {"engine_fit": float("inf"), "engine_boot": float("inf"), "old_fit": float("inf"),
                    "old_boot": float("inf")}
            for _ in range(args.repeat):
                t = time.process_time()
                fit = fit_model(model, x, missing=args.missing)
                best["engine_fit"] = min(best["engine_fit"], time.process_time() - t)
                if what == "bootstrap":
                    t = time.process_time()
                    boot = bootstrap_sem(x, fit, draws=args.draws, seed=1, jobs=1, missing=args.missing)
                    best["engine_boot"] = min(best["engine_boot"], time.process_time() - t)
                if args.baseline:
                    old = baseline(args.baseline, csv, files[what], what, args.draws, args.missing)
                    if old:
                        best["old_fit"] = min(best["old_fit"], old["fit"])
                        best["old_boot"] = min(best["old_boot"], old.get("boot", float("inf")))
            line = (f"{what}: engine fit {best['engine_fit']:.2f} CPU-s (chisq {fit.fit['chisq']:.3f}, "
                    f"df {fit.fit['df']})")
            if args.baseline and best["old_fit"] < float("inf"):
                line += f"; old single.py fit {best['old_fit']:.2f} CPU-s (chisq {old['chisq']:.3f})"
            print(line)
            if what == "bootstrap":
                per = best["engine_boot"] / args.draws
                line = f"bootstrap, {args.draws} draws: engine {per:.3f} CPU-s per draw ({boot.converged} converged)"
                if args.baseline and best["old_boot"] < float("inf"):
                    line += (f"; old {best['old_boot'] / args.draws:.3f} CPU-s per draw; "
                             f"ratio engine / old {best['engine_boot'] / best['old_boot']:.2f}")
                print(line)
            if args.lavaan and shutil.which("Rscript"):
                head = (f'suppressPackageStartupMessages(library(lavaan)); x <- read.csv("{csv}"); '
                        f'm <- paste(readLines("{files[what]}"), collapse = "\\n"); '
                        f'mis <- if ("{args.missing}" == "fiml") "ml" else "listwise"; ')
                cpu = 't <- system.time({EXPR}); cat(t[["user.self"]] + t[["sys.self"]], "\\n")'
                if what == "cfa":
                    out = run_r(head + cpu.replace("{EXPR}", "f <- cfa(m, x, missing = mis); fm <- fitMeasures(f)"))
                    if out:
                        print(f"cfa: lavaan fit {float(out[0]):.2f} CPU-s")
                else:
                    out = run_r(head + "f <- sem(m, x, missing = mis); set.seed(1); " + cpu.replace(
                        "{EXPR}", f'b <- bootstrapLavaan(f, R = {args.draws}, FUN = "coef")'))
                    if out:
                        print(f"bootstrap: lavaan {float(out[0]) / args.draws:.3f} CPU-s per draw")


if __name__ == "__main__":
    main()
