"""FIML speed: the bootstrap draw of the default model beside lavaan's ``bootstrapLavaan``, and the
72-item FIML CFA fit beside the old single-group code.

    python benchmarks/fiml_bench.py bootstrap [--data CSV] [--model M] [--draws 50]
        [--missing fiml,listwise] [--lavaan] [--lavaan-draws 2]
    python benchmarks/fiml_bench.py fit [--n 1000] [--missing-rate 0.005] [--repeat 2] [--lavaan] [--ref afa1727]

``bootstrap`` (issue 13: <= 25 CPU-ms per FIML draw, >= 10x faster than lavaan, listwise and
FIML): the default study's sem stage data (``--data``, default data/processed/split/cfa.csv: 1,099
rows, 41% missing an answer, 164 patterns) and model (``--model``, instrument/sustainability_gap.lavaan:
75 observed variables with 3 fixed.x covariates, q = 286), fitted by
:func:`analysis.sem.api.fit_model` with each ``--missing``, then ``--draws`` draws of
:func:`analysis.bootstrap.bootstrap_sem` (seed 1, jobs 1) in this process, CPU-ms per draw (user +
sys, ``os.times``, one BLAS thread). ``--lavaan``: ``sem(model, data, missing = "ml" | "listwise")``
and ``bootstrapLavaan(fit, R = --lavaan-draws, FUN = "coef")`` in Rscript in the same run (user + sys
of ``proc.time``, one BLAS thread), printed beside ours as a ratio. lavaan's FIML draw takes minutes
on this model, hence the separate, smaller number of draws (CPU per draw does not depend on it).

``fit``: the ``fiml`` section of :mod:`engine_bench` (its docstring): the engine's 72-item FIML CFA
beside ``analysis/sem/single.py`` of ``--ref``, each in its own process, best of ``--repeat``.

Measured 2026-12-02 (2-core machine shared with four other developers, load 7-11; figures vary
by about 20% with the load), default study, 20 draws, ``OMP_NUM_THREADS=1``:

=================================  ==============================  ==============================
CPU-ms per draw                    FIML                            listwise
=================================  ==============================  ==============================
a7a08ac (before this work)         454                             45.5
batched likelihood (47fa97d)       25.5
+ free rows, fixed.x (d30415c)     20.0-22.5
+ listwise on it (8b82f03)         20-22                           11.5-14.7
lavaan 0.6 ``bootstrapLavaan``     19,870 (3 draws; fit 227.8 s)   194 (20 draws; fit 4.9 s)
lavaan / gapscale                  about 900x                      13-17x
=================================  ==============================  ==============================

(lavaan's chi-squares equal ours: 2579.183 FIML, 2722.998 listwise.) After merging main (cbf2cfa):
15.7-16.0 CPU-ms per FIML draw at load ~5, 24-28 at load 5-8 with the same code (50 draws: 8-10
BFGS steps each, no fallback to the engine's optimiser; ``os.times`` ticks are 10 ms, so per-draw
figures come from totals), 13.4 listwise. The CPU a draw takes grows with the machine's load (two
cores shared by five developers): compare figures from one run only.

Draws with the same seed equal a7a08ac's to 2.7e-13 (FIML; the iterates are the same) and to
1e-15 (median; max 2.1e-6, one draw whose line search differed) listwise. Where a FIML draw's time
goes (8-10 BFGS steps, one likelihood and gradient each, ~1.5-2 ms): the batched likelihood
(:func:`analysis.sem.fiml.fiml_nll`) ~45%, the model's matrices ~15%, the chain rule ~10%, the
draw's weighted moments ~7%, BFGS ~6%. The FIML fit of the default sem model: 8.1 -> 5.7 CPU-s.

The FIML draw made cheaper (branch semboot, 2026-12-02, load 2-3, back to back with main in
one run of this script, 50 draws; the two lines of each are two runs): FIML 20.0 / 18.6 -> 12.8 /
14.6 CPU-ms per draw, listwise 10.8 / 6.6 -> 7.6 / 7.4 (noise). Draw by draw in one process
alternating main's code and this (60-200 draws, the same seeds, load 2-4): 0.75-0.78 of main's CPU;
the draws equal main's to 1.3e-14 from the same full-sample fit. The sem stage in one process
(jobs 1), back to back with main at load ~3.5: the bootstrap 37.4 / 38.9 -> 28.5 / 31.1 CPU-s, the
stage 45.3 / 47.1 -> 36.7 / 39.6; its outputs within 5.3e-9 of main's (sem_parameters.csv's
bootstrap columns; the estimates within 7.8e-10 relative: the fit's optimiser stops at a point
that moves with the gradient's rounding; the EM moments identical). Where it came from: the batches of few rows
merged into one padded stacked operation (:func:`analysis.patterns.merge_batches`), 2 x 2 blocks in
closed form, the gradient's :math:`\sum_iw_i\tilde\zeta_ir_i^\top` as a sparse placement matrix
times the residuals (it was a rows x k x p bincount, the largest cost), the moments' syy by a
rank-k update, BFGS in compact form (one product with :math:`H_0` per step), the model matrices
from one flat buffer, :math:`(I-B)^{-1}` by LAPACK directly. Per likelihood evaluation the
remainder is numpy's: the stacked k x k gathers and products (~35%), the p x p Cholesky, inverse
and two products (~25%), the moments' p x p terms.

Not a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

LAVAAN = r"""
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(TRUE)
x <- read.csv(args[1]); m <- paste(readLines(args[2]), collapse = "\n"); R <- as.integer(args[4])
cpu <- function(t) t[["user.self"]] + t[["sys.self"]] + t[["user.child"]] + t[["sys.child"]]
t <- system.time(f <- sem(m, x, missing = args[3]))
fit_cpu <- cpu(t)
set.seed(1)
t <- system.time(b <- bootstrapLavaan(f, R = R, FUN = "coef"))
cat(fit_cpu, fitMeasures(f, "chisq"), cpu(t) / R, sum(!is.na(b[, 1])), "\n")
"""


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def lavaan(csv: Path, model: Path, missing: str, draws: int) -> list[float] | None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(LAVAAN)
    out = subprocess.run(["Rscript", f.name, str(csv), str(model), "ml" if missing == "fiml" else "listwise",
                          str(draws)], capture_output=True, text=True, env=env)
    os.unlink(f.name)
    if out.returncode != 0:
        print("lavaan failed: " + " | ".join(out.stderr.strip().splitlines()[-3:]))
        return None
    return [float(v) for v in out.stdout.split()]


def bootstrap(args) -> None:
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from analysis.bootstrap import bootstrap_sem
    from analysis.sem.api import fit_model

    csv, model_path = Path(args.data), Path(args.model)
    data = pd.read_csv(csv)
    model = model_path.read_text(encoding="utf-8")
    print(f"data: {csv} ({len(data)} rows), model: {model_path}")
    for missing in args.missing.split(","):
        with threadpool_limits(1):
            t = cpu()
            fit = fit_model(model, data, missing=missing)
            t_fit = cpu() - t
            t = cpu()
            boot = bootstrap_sem(data, fit, draws=args.draws, seed=1, jobs=1, missing=missing)
            per = (cpu() - t) / args.draws
        line = (f"{missing}: gapscale fit {t_fit:.2f} CPU-s (chisq {fit.fit['chisq']:.3f}); bootstrap "
                f"{1000 * per:.1f} CPU-ms per draw ({args.draws} draws, {boot.converged} converged)")
        if args.lavaan and shutil.which("Rscript"):
            draws = args.lavaan_draws if missing == "fiml" else max(args.lavaan_draws, min(args.draws, 20))
            res = lavaan(csv, model_path, missing, draws)
            if res:
                line += (f"; lavaan fit {res[0]:.2f} CPU-s (chisq {res[1]:.3f}), bootstrapLavaan "
                         f"{1000 * res[2]:.1f} CPU-ms per draw ({draws} draws, {int(res[3])} converged); "
                         f"lavaan / gapscale {res[2] / per:.1f}x")
        print(line, flush=True)


def fit(args) -> None:
    import engine_bench

    argv = ["--what", "fiml", "--n", str(args.n), "--missing", str(args.missing_rate), "--repeat",
            str(args.repeat), "--ref", args.ref] + ([] if args.lavaan else ["--no-lavaan"])
    sys.argv = [sys.argv[0]] + argv
    engine_bench.main()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bootstrap", help="CPU per bootstrap draw, FIML and listwise, beside bootstrapLavaan")
    b.add_argument("--data", default=str(ROOT / "data" / "processed" / "split" / "cfa.csv"))
    b.add_argument("--model", default=str(ROOT / "instrument" / "sustainability_gap.lavaan"))
    b.add_argument("--draws", type=int, default=50)
    b.add_argument("--missing", default="fiml,listwise")
    b.add_argument("--lavaan", action="store_true")
    b.add_argument("--lavaan-draws", type=int, default=2, help="lavaan's FIML draws (listwise: --draws, at most 20)")
    f = sub.add_parser("fit", help="the 72-item FIML CFA beside the old single-group code (engine_bench)")
    f.add_argument("--n", type=int, default=1000)
    f.add_argument("--missing-rate", type=float, default=0.005)
    f.add_argument("--repeat", type=int, default=2)
    f.add_argument("--lavaan", action="store_true")
    f.add_argument("--ref", default="afa1727")
    args = ap.parse_args()
    bootstrap(args) if args.what == "bootstrap" else fit(args)


if __name__ == "__main__":
    main()
