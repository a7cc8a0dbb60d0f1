"""Time the 72-item FIML CFA: the engine beside the old single-group code and, with --lavaan, lavaan.

    python benchmarks/fiml_bench.py [--n 1000] [--missing 0.005] [--repeat 2] [--lavaan] [--ref afa1727]

The ``fiml`` section of :mod:`engine_bench` (see its docstring) with this benchmark's defaults:
sem_bench's default-instrument study (18 constructs x 4 items, seed 1), N = 1000, each cell
deleted with probability ``--missing`` (seed 1), the engine (``analysis.sem.api.fit_model``,
``missing="fiml"``) beside ``analysis/sem/single.py``'s ``fit_sem`` run from ``git archive`` of
``--ref`` (afa1727, the last commit with it), each in its own process, CPU seconds (user + sys,
children included) and wall, the smallest of ``--repeat`` runs; estimates and SEs compared.
lavaan (``cfa(model, data, missing = "ml")``) only with ``--lavaan``: on 2026-12-02 it ran for more
than 15 CPU minutes and was stopped. Earlier figures (in-process, 2026-12-02): engine 5.84 s vs
single.py 7.14 s CPU (0.82), estimates equal to 1.7e-9. Not a test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_bench  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--missing", type=float, default=0.005)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--lavaan", action="store_true")
    ap.add_argument("--ref", default="afa1727")
    args = ap.parse_args()
    argv = ["--what", "fiml", "--n", str(args.n), "--missing", str(args.missing), "--repeat", str(args.repeat),
            "--ref", args.ref] + ([] if args.lavaan else ["--no-lavaan"])
    sys.argv = [sys.argv[0]] + argv
    engine_bench.main()


if __name__ == "__main__":
    main()
