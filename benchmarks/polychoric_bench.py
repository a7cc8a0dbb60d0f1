"""Time gapscale's polychoric correlations against psych::polychoric on the same data.

Run from anywhere:
    python benchmarks/polychoric_bench.py [--items 70] [--n 1000] [--categories 7] [--repeats 3] [--seed 20240601]

Simulates ``--n`` respondents answering ``--items`` items on a ``--categories``-point scale
(five correlated factors, loadings .4-.8, the latent responses cut at fixed thresholds, 2% of
the answers missing), times ``analysis.polychoric.polychoric`` (best of ``--repeats`` runs, and
the first run), and, when ``Rscript`` with psych is on the PATH, times
``psych::polychoric`` with its defaults on the same data (written to a temporary CSV; the time
is measured inside R, without R's start-up) and prints the ratio and the largest difference
between the two matrices. Without R it prints gapscale's time and says that R was not found.
This is a script, not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.polychoric import polychoric  # noqa: E402

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(psych))
x <- read.csv(args[1])
elapsed <- system.time(p <- polychoric(x))[["elapsed"]]
write.csv(p$rho, args[2], row.names = FALSE)
cat(sprintf("%.6f %d %s\n", elapsed, getOption("mc.cores", 2L), as.character(packageVersion("psych"))))
"""


def simulate(n_items: int, n: int, categories: int, seed: int) -> pd.DataFrame:
    """Ordinal responses from a five-factor model; every category is used by every item."""
    rng = np.random.default_rng(seed)
    n_factors = min(5, n_items)
    loadings = np.zeros((n_items, n_factors))
    loadings[np.arange(n_items), np.arange(n_items) % n_factors] = rng.uniform(0.4, 0.8, n_items)
    phi = np.full((n_factors, n_factors), 0.3)
    np.fill_diagonal(phi, 1.0)
    sigma = loadings @ phi @ loadings.T
    np.fill_diagonal(sigma, 1.0)
    z = rng.multivariate_normal(np.zeros(n_items), sigma, size=n)
    cuts = ndtri_grid(categories)
    x = pd.DataFrame(np.searchsorted(cuts, z) + 1, columns=[f"item{k + 1:02d}" for k in range(n_items)])
    x = x.astype("float64").mask(rng.random(x.shape) < 0.02)
    # psych's thresholds are global only when every item has the same highest value: make sure.
    top = x.max()
    if (top < categories).any():
        raise SystemExit(f"simulation: items {list(top.index[top < categories])} never use category {categories}; "
                         "use more respondents or fewer categories")
    return x


def ndtri_grid(categories: int) -> np.ndarray:
    """Cut points giving a mildly skewed distribution over the categories."""
    from scipy.special import ndtri

    weights = np.linspace(1.0, 1.6, categories)
    return ndtri(np.cumsum(weights)[:-1] / weights.sum())


def time_gapscale(x: pd.DataFrame, repeats: int) -> tuple[float, float, pd.DataFrame]:
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = polychoric(x)
        times.append(time.perf_counter() - start)
    return times[0], min(times), result.correlation


def time_psych(x: pd.DataFrame) -> tuple[float, int, str, np.ndarray] | str:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript was not found on the PATH"
    with tempfile.TemporaryDirectory() as tmp:
        data_csv, rho_csv, script = (os.path.join(tmp, f) for f in ("data.csv", "rho.csv", "bench.R"))
        x.to_csv(data_csv, index=False, na_rep="NA")
        Path(script).write_text(R_SCRIPT)
        try:
            done = subprocess.run([rscript, script, data_csv, rho_csv], capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return "psych::polychoric did not finish within 30 minutes"
        if done.returncode != 0:
            return f"Rscript failed (is psych installed?): {done.stderr.strip().splitlines()[-1:]}"
        elapsed, cores, version = done.stdout.strip().splitlines()[-1].split()
        return float(elapsed), int(cores), version, pd.read_csv(rho_csv).to_numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=70, help="number of items (default 70)")
    parser.add_argument("--n", type=int, default=1000, help="number of respondents (default 1000)")
    parser.add_argument("--categories", type=int, default=7, help="scale points (default 7)")
    parser.add_argument("--repeats", type=int, default=3, help="gapscale runs; the best is reported (default 3)")
    parser.add_argument("--seed", type=int, default=20240601, help="simulation seed")
    args = parser.parse_args(argv)

    x = simulate(args.items, args.n, args.categories, args.seed)
    pairs = args.items * (args.items - 1) // 2
    print(f"data: {args.items} items ({pairs} pairs) x {args.n} respondents, {args.categories}-point scale, "
          f"{int(x.isna().to_numpy().sum())} missing answers; machine: {os.cpu_count()} cores")
    first, best, r_gapscale = time_gapscale(x, args.repeats)
    print(f"gapscale polychoric: {best:.3f} s (best of {args.repeats}; first run {first:.3f} s)")
    psych = time_psych(x)
    if isinstance(psych, str):
        print(f"psych::polychoric: not timed, {psych}")
        return
    elapsed, cores, version, r_psych = psych
    print(f"psych::polychoric:   {elapsed:.3f} s (psych {version}, mc.cores = {cores}; time inside R)")
    print(f"ratio psych / gapscale: {elapsed / best:.1f}")
    print(f"largest |difference| between the two matrices: {np.abs(r_psych - r_gapscale.to_numpy()).max():.2g}")


if __name__ == "__main__":
    main()
