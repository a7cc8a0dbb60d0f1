"""Time the 72-item FIML CFA: the engine (analysis.sem.engine.fit, missing="fiml") beside the old
single-group code (analysis.sem.single.fit_sem, missing="fiml") and, with --lavaan, lavaan.

    python benchmarks/fiml_bench.py [--n 1000] [--missing 0.005] [--repeat 2] [--lavaan]

Data: sem_bench's default-instrument study (18 constructs x 4 items, complete), then each cell
deleted with probability ``--missing`` (seed 1; the default study's ``missing_cell`` is 0.005).
Times are CPU seconds of this process (user + sys), the old and new fits alternating, the
smallest of ``--repeat`` runs each; lavaan's is ``system.time`` user + sys of
``cfa(model, data, missing = "ml")`` with ``fitMeasures`` (slow: more than 15 CPU minutes on the
defaults, stopped unfinished on 2026-12-02). Not a test.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sem_bench import data  # noqa: E402

from analysis.sem.engine import fit  # noqa: E402
from analysis.sem.partable import lavaanify  # noqa: E402
from analysis.sem.single import fit_sem  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--missing", type=float, default=0.005)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--lavaan", action="store_true")
    args = ap.parse_args()
    x, model, _ = data(args.n)
    x = x.mask(np.random.default_rng(1).random(x.shape) < args.missing)
    print(f"data: {x.shape[1]} items x {x.shape[0]} respondents, {int(x.isna().any(axis=1).sum())} with a missing "
          f"cell, {len(x.isna().drop_duplicates())} patterns")
    best = {"single.py": np.inf, "engine": np.inf}
    for _ in range(args.repeat):
        t = time.process_time()
        old = fit_sem(x, model, missing="fiml")
        best["single.py"] = min(best["single.py"], time.process_time() - t)
        t = time.process_time()
        new = fit(lavaanify(model, list(x.columns), missing="fiml"), x, missing="fiml")
        best["engine"] = min(best["engine"], time.process_time() - t)
    for name, res in (("single.py", old), ("engine", new)):
        print(f"{name:10s} {best[name]:6.2f} s CPU  chisq {res.fit['chisq']:.6f}  logl {res.fit['logl']:.6f}  "
              f"cfi.robust {res.fit.get('cfi_robust')}")
    m = new.parameters.merge(old.parameters, on=["lhs", "op", "rhs"], suffixes=("", "_old"))
    print(f"engine vs single.py: {len(m)} parameters, est {np.nanmax(np.abs(m.est - m.est_old)):.1e}, "
          f"se {np.nanmax(np.abs(m.se - m.se_old)):.1e}; "
          f"ratio engine / single.py {best['engine'] / best['single.py']:.2f}")
    if args.lavaan and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            x.to_csv(Path(tmp) / "x.csv", index=False)
            (Path(tmp) / "m.lavaan").write_text(model)
            script = (f'suppressPackageStartupMessages(library(lavaan)); x <- read.csv("{tmp}/x.csv"); '
                      f'm <- paste(readLines("{tmp}/m.lavaan"), collapse = "\\n"); '
                      't <- system.time({f <- cfa(m, x, missing = "ml"); fm <- fitMeasures(f)}); '
                      'cat(t[["user.self"]] + t[["sys.self"]], fm[["chisq"]], "\\n")')
            out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
            if out.returncode == 0:
                secs, chisq = out.stdout.split()[:2]
                print(f"lavaan     {float(secs):6.2f} s CPU  chisq {float(chisq):.6f}")
            else:
                print("lavaan failed: " + (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1])


if __name__ == "__main__":
    main()
