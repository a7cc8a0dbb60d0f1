"""Monte Carlo power replications per CPU-second for the default model: local processes and a Dask
LocalCluster, listwise and FIML, and the scaling from 1 to 2 workers.

    python benchmarks/power_bench.py [--n 500] [--replications 8] [--missing listwise fiml]
        [--where local1 local2 dask1 dask2]

Each replication is what ``gapscale power`` runs for the default study: draw ``--n`` respondents
from the default population (params.yaml ``simulate:``: Likert answers, defects, missing cells),
clean them with the clean stage's screens (params ``clean:``), fit the hypothesised model
(instrument/sustainability_gap.lavaan, ML) with ``--missing``, and record the hypotheses' verdicts
(:func:`analysis.montecarlo.replicate`).

CPU seconds are user + sys:

- ``local1``: this process (``jobs=1``), ``resource.getrusage(RUSAGE_SELF)``;
- ``local2``: this process plus its 2 worker processes (``RUSAGE_CHILDREN``, counted when the pool
  has shut down);
- ``dask1``/``dask2``: a ``distributed.LocalCluster`` with 1 or 2 worker processes (one thread
  each): this process (client and scheduler) plus every process under it (nannies and workers),
  ``psutil.Process.cpu_times()`` before and after, cluster start-up excluded.

Also checked: every configuration gives the same records (the seeds travel with the tasks).
Not a test: timings belong here.

Measured 2026-12-02 on the shared 2-core machine (load average 5-6 from other developers' jobs, so
wall times and the wall speed-ups are noisy; CPU seconds are the figure to read), ``--n 500
--replications 8`` (about 440 rows fitted per replication; every configuration gave the same records)::

    missing   where     wall_s    cpu_s reps/cpu_s reps/wall_s
    listwise  local1     29.35     5.20      1.540       0.273
    listwise  local2     16.63     5.34      1.497       0.481   wall speed-up 1.76x
    listwise  dask1      20.88     6.50      1.231       0.383
    listwise  dask2      16.04     7.30      1.096       0.499   wall speed-up 1.30x
    fiml      local1     40.81    10.94      0.731       0.196
    fiml      local2     33.72    11.06      0.723       0.237   wall speed-up 1.21x
    fiml      dask1      61.61    17.92      0.446       0.130
    fiml      dask2      20.24    16.05      0.498       0.395   wall speed-up 3.04x

The analytic power of the same settings (``--analytic``, what the default ``power`` stage reports:
population values, one simulated study of 4,000 invited fitted to its moments, the standardised
covariance, 4,000 draws at each of ~120 N) costs about as much as one or two FIML replications
(measured 2026-12-02, load average ~12, ``--replications 1 --where local1``)::

    listwise  local1     10.54     0.62      1.606       0.095 yes (1/1 ok)
    listwise  analytic power (population values + 4000 invited, 124 N): 35.27 s wall, 2.29 CPU-s; N: H1 534,
              H2 179, H3 1000, H4 171, H5 4039, H6 -, H8 237
    fiml      local1     19.83     1.31      0.763       0.050 yes (1/1 ok)
    fiml      analytic power (population values + 4000 invited, 124 N): 29.62 s wall, 2.02 CPU-s; N: H1 327,
              H2 109, H3 612, H4 105, H5 2474, H6 -, H8 145

(listwise loses the ~40% of respondents with a missing cell, hence its larger N.)

A replication costs ~0.65 CPU-s listwise and ~1.4 CPU-s with FIML (simulate + clean ~0.3 of it);
local worker processes add almost nothing; the Dask cluster adds ~1-1.5 CPU-s per worker per run
(each worker imports gapscale and the scheduler's and nannies' own work), which a full run (1000
replications x 5 N) amortises. An earlier run of the same command: listwise local1/local2/dask1/dask2
1.67/1.26/0.93/1.02, fiml 0.72/0.71/0.50/0.48 reps per CPU-s.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import yaml  # noqa: E402

from analysis.clean import parse_clean_params  # noqa: E402
from analysis.montecarlo import (MonteCarloSettings, analytic_grid, analytic_power, instrument_population,  # noqa: E402
                                 population_values, run_power)
from analysis.simulate import parse_simulation_params  # noqa: E402
from instrument import load_instrument  # noqa: E402
from pipeline.sem import read_hypotheses  # noqa: E402


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _tree_cpu() -> float:
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:  # a process that ended between listing and reading
            pass
    return total


def _strip(records):
    """The records as text (repr round-trips every float; NaN compares equal as text)."""
    return repr([{k: v for k, v in r.items() if k != "cpu_s"} for r in records])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--replications", type=int, default=8)
    ap.add_argument("--missing", nargs="+", default=["listwise", "fiml"])
    ap.add_argument("--where", nargs="+", default=["local1", "local2", "dask1", "dask2"])
    ap.add_argument("--analytic", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the analytic power (analysis.montecarlo.analytic_power) of the same settings")
    args = ap.parse_args(argv)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    inst = load_instrument(ROOT / "instrument" / "sustainability_gap.yaml")
    pop = instrument_population(inst, parse_simulation_params(params["simulate"]),
                                parse_clean_params(params["clean"])[0])
    model = (ROOT / "instrument" / "sustainability_gap.lavaan").read_text()
    hyp = read_hypotheses(ROOT / "instrument" / "sustainability_gap.hypotheses.yaml")
    grid, reps, seed = [args.n], args.replications, int(params["seed"])

    print(f"default model, {args.n} respondents invited, {reps} replications per run; CPU = user + sys")
    print(f"{'missing':9s} {'where':7s} {'wall_s':>8s} {'cpu_s':>8s} {'reps/cpu_s':>10s} {'reps/wall_s':>11s} same")
    for missing in args.missing:
        s = MonteCarloSettings(model=model, hypotheses=hyp, missing=missing)
        reference = None
        walls = {}
        for where in args.where:
            if where.startswith("local"):
                jobs = int(where[5:])
                c0, k0, w0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
                records = run_power(pop, s, grid, reps, seed, jobs=jobs)
                wall = time.perf_counter() - w0
                cpu = _cpu(resource.RUSAGE_SELF) - c0 + _cpu(resource.RUSAGE_CHILDREN) - k0
            else:
                from distributed import Client, LocalCluster

                workers = int(where[4:])
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, Client(cluster) as client:
                    client.wait_for_workers(workers)
                    c0, w0 = _tree_cpu(), time.perf_counter()
                    records = run_power(pop, s, grid, reps, seed, scheduler=client)
                    wall = time.perf_counter() - w0
                    cpu = _tree_cpu() - c0
            walls[where] = wall
            same = reference is None or _strip(records) == reference
            reference = reference or _strip(records)
            ok = sum(r["status"] == "ok" for r in records)
            print(f"{missing:9s} {where:7s} {wall:8.2f} {cpu:8.2f} {reps / cpu:10.3f} {reps / wall:11.3f} "
                  f"{'yes' if same else 'NO'} ({ok}/{reps} ok)", flush=True)
        for a, b in (("local1", "local2"), ("dask1", "dask2")):
            if a in walls and b in walls:
                print(f"{missing:9s} scaling {a} -> {b}: wall speed-up {walls[a] / walls[b]:.2f}x")
        if args.analytic:
            c0, w0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
            truth = population_values(pop, s)
            res = analytic_power(pop, s, analytic_grid(50, 20000, 1.05), seed, truth=truth)
            cpu = _cpu(resource.RUSAGE_SELF) - c0
            need = ", ".join(f"{r.hypothesis} {r.n_required:.0f}" if r.n_required == r.n_required else f"{r.hypothesis} -"
                             for r in res.required_n.itertuples(index=False))
            print(f"{missing:9s} analytic power (population values + {res.basis['rows_invited']} invited, "
                  f"{res.basis['grid_points']} N): {time.perf_counter() - w0:.2f} s wall, {cpu:.2f} CPU-s; N: {need}")


if __name__ == "__main__":
    main()
