"""gapscale at scale: CPU seconds, wall seconds and peak memory of the early stages (issue 13).

    python benchmarks/scale.py [--work /tmp/gapscale-scale] [--parts help,n,million,wide]
                               [--sizes 25000,50000,100000]

Every command runs as ``gapscale ...`` in a child process (the active virtual environment's
``gapscale``; BLAS threads as the CLI sets them: one unless OMP_NUM_THREADS is set). Printed per
command: CPU seconds (user + sys of the child, :func:`os.times`), wall seconds, and the peak
resident memory of that child (``ru_maxrss`` of a small wrapper process whose only child it is).
Data are written under ``--work`` and reused when present (their generation is not timed).

Parts and the targets of issue 13:

``help``     ``gapscale --help``: under 0.5 s.
``n``        the default study simulated at each of ``--sizes`` respondents (``gapscale simulate
             --n``; params.yaml otherwise), then clean + split + efa + cfa with params.yaml:
             at N = 100,000 in <= 2 GB and <= 120 CPU-s. The slope of CPU seconds against N
             (least squares over the sizes, CPU-s per 10,000 rows) and the ratio of the cost per
             row at the largest and the smallest N (1.0 = linear) are printed.
``million``  clean of 1,000,000 rows x 72 items (ten simulated studies of 100,000, seeds 1..10,
             their ids prefixed to stay unique): <= 60 CPU-s.
``wide``     a synthetic instrument of 300 items (60 constructs of 5 seven-point items, factor
             correlations 0.3, loadings 0.5-0.8, 5% of the cells missing at random), 1,000 rows,
             through clean and efa (polychoric, parallel analysis): <= 60 CPU-s.

Not a test: timings belong here.

Measured on 2026-12-02 (2-core machine shared with four other sessions, load far above 2: wall
times are many times the CPU times; CPU seconds user + sys):

before (main at a7a08ac, figures of issue 13 and a profile): ``gapscale --help`` 0.23 CPU-s;
clean of 25,500 rows ~90 CPU-s (176 under cProfile: Little's EM 76, prepare 53, screens 27);
clean of 1,000,000 rows did not finish in 10 minutes; 300 items x 1,000 rows did not finish in 5
minutes (EM kept patterns x p x p arrays); at N = 100,000 clean peaked at 2.2 GB; efa of
300 items x 1,000 rows 88.7 CPU-s (20 polychoric matrices of resampled data: ~170 s of a
216 s profile).

after (branch scale):

    gapscale --help                    0.13-0.22 CPU-s (0.34 s wall when the machine is idle)
    N = 25,000   clean 4.74  split 2.44  efa  7.36  = 14.5 (270 MB)    (cfa 43.7, 1215 MB)
    N = 50,000   clean 6.92  split 3.38  efa 10.08  = 20.4 (398 MB)    (cfa 78.8, 1588 MB)
    N = 100,000  clean 11.87 split 5.93  efa 19.41  = 37.2 (646 MB)    (cfa 93.7, 2322 MB)
    (split of 100,000 after the write_csv change: 4.24)
    slope of clean + split + efa: 3.07 CPU-s per 10,000 rows, intercept 6.1 CPU-s (start-up);
      cost per row at 100,000 / at 25,000: 0.64
    clean + split + efa + cfa at N = 100,000: 130.8 CPU-s, peak 2322 MB (in cfa): target missed
      by the cfa stage (the SEM engine's FIML information matrices, modification indices and
      standardized residuals; not this branch's files); the earlier stages take 37 CPU-s, 646 MB
    clean of 1,000,000 rows x 72 items: 105.9 CPU-s, peak 5030 MB (a second run, beside a cfa
      run: 124.0 CPU-s, 4999 MB): finishes, about 10 x the 100,000 figure (linear), but the
      target of 60 CPU-s is missed and memory is 5 GB (the raw text cells as Python strings)
    after merging main (fiml, relcfa, optim): cfa at N = 100,000 (43,958 rows of the CFA half)
      89.2 CPU-s, peak 2431 MB; with clean + split + efa (37.2) 126 CPU-s: still over 120 and 2 GB
    300 items x 1,000 rows: clean 5.0-5.8 + efa 20.9 = 26.7 CPU-s (743 MB): target met

clean of 100,000 rows by phase (in-process CPU-s): imports 1.9, read 2.3, prepare 1.2, screens 3.1
(Mahalanobis 1.2: pairwise covariance and a formatted value for every row), Little's test 0.85,
writing clean.csv 2.5.

branch bign (2026-12-02, same machine, loaded; CPU-s user + sys of the child, peak RSS):

    cfa at N = 25,000 (10,993 rows): 36.3 (main) -> 27.1 CPU-s, 1.09 GB both; outputs equal to
      main's to 3e-14
    cfa at N = 100,000 (43,958 rows): 89.2 -> 53.7-57.9 CPU-s (41.0 in the run below), peak 2.4 GB
      unchanged: the peak is in the fit (FIMLEstimator._h1_parts keeps the n x p* casewise scores
      of the saturated model, 925 MB, and copies them with [:, keep]: analysis/sem/fiml.py, not
      this branch's file); h1.missing_scores no longer adds n x p* temporaries
      lever: h1's saturated-model information from one product of the patterns' lower-triangle
      cells, 2 n_pat p*^2 instead of 2 n_pat p^4 flops (72 items, 1,000 patterns: 3.9 -> 1.3-1.9 s)
    N = 100,000, python benchmarks/scale.py --parts n --sizes 100000:
      clean 10.22  split 3.65  efa 15.61  cfa 40.96  = 70.4 CPU-s (target 120: met),
      peak 2381 MB in cfa (target 2048 MB: missed, see above)
    clean of 100,000 rows of the million file: 11.5 (main) -> 9.0 CPU-s, 0.63 GB
      levers: speeder and Mahalanobis values formatted for flagged rows only; write_csv formats
      each column's distinct values once and writes through the csv writer pandas uses (clean.csv
      of 100,000 rows 2.12 -> 1.26 CPU-s, bytes equal); ids judged blank once in prepare
    clean of 1,000,000 rows x 72 items: 105.9-124.0 -> 83.6 CPU-s (62.8 user + 20.8 sys), peak
      5.05 GB: target of 60 CPU-s missed. Outputs byte-identical to main's. In-process phases at
      1,000,000 (before the ingest change): read 15.7, prepare 7.5, screens 24 (three pairwise
      covariances: mahalanobis_unavailable is called by clean.screen and again inside
      screening.mahalanobis), Little's test 9, writing 13; memory: read 2.7 GB (now less: the
      C parser reads UTF-8 bytes, not a StringIO of 4 bytes a character, 100,000 rows at a
      time), screens +1.2 GB, Little's test +1.0 GB -> 4.9 GB. Left: numeric columns read as
      numbers (prepare still judges every cell's text), Little's test and the screens on float32
      or in blocks of rows.
      With one pairwise covariance in the screens (was three): clean of 100,000 rows 7.2 CPU-s;
      of 1,000,000 rows 72.5 CPU-s (54.5 user + 18.0 sys), peak 5.3 GB; outputs byte-identical.
    after merging main at 0496e48: cfa at N = 25,000 65.4 CPU-s (27.1 before the merge): 40 s in
      estimate.py's _secant_polish (14,648 FIML objective evaluations), not in this branch's files

branch clean1m (2026-12-02, machine loaded: load average 6-8 on 2 cores; CPU-s user + sys of the
child, peak RSS). clean of 1,000,000 rows x 72 items (``--parts million``): 72.5-78.7 CPU-s,
5.3 GB at e448e2e -> 50.7 CPU-s, 4.57 GB (10c1abd) -> 54.4 CPU-s, 4.11 GB (9bde281) -> 53.6 CPU-s,
4.10 GB after merging main (sample_profile.csv added to the stage) -> 51.5 CPU-s, 4.59 GB at
110e9bd (Little's test copies its rows into C order again, as main does, for byte-identical
sums): target of 60 CPU-s met. In-process phases at 1,000,000 rows (b2572ab, 42.5 user + 7.8 sys
= 50.0 CPU-s): read 10.8 (was 15.7), prepare 3.6 (7.5), screens 13.9 (20-24), Little's test 5.5
(9-9.5), code_context 1.4, writing 10.6 (13); peak after read 1.2 GB, prepare 1.8, screens 3.5,
Little's test 4.2 (was 4.8-5.3).
Outputs byte-identical to the base's at 1,000,000 and 200,000 rows, on the default study (with
and without an id key) and on the 62 files of tests/corpus (exit codes and messages too).
Levers: text columns read as categoricals (each block's column factorized once, its distinct
texts stripped once) and judged per distinct text in prepare (200,000 rows: read 2.60 -> 1.8,
prepare 1.35 -> 0.5 CPU-s); screens without a per-row sort (longstring), without a groupby over
80 columns (duplicates: a mixed-radix label of the columns' codes), attention-check texts only for
failing rows, the kept rows recoded in place (screens at 200,000 rows 3.24 -> 2.3); fewer n x p
temporaries in Little's test and the Mahalanobis screen; write_csv without a deep copy of the
frame. Tried and dropped: splitting the quote-free text with numpy (cells as 64-bit words of
their bytes) was no faster than pandas' C parser on this loaded machine (10.7 CPU-s each for
the read of 1,000,000 rows) and held more memory.
``--parts n --sizes 25000,50000,100000`` at f3f423b:

    N = 25,000   clean 2.86  split 1.30  efa  5.62  cfa 22.79  = 32.6 (1070 MB)
    N = 50,000   clean 4.52  split 2.49  efa  9.38  cfa 29.35  = 45.7 (1331 MB)
    N = 100,000  clean 6.14  split 3.06  efa 14.72  cfa 37.16  = 61.1 (1933 MB)
    slope (CPU-s per 10,000 rows) and fixed cost (CPU-s): clean 0.42 + 2.0, split 0.22 + 1.0,
    efa 1.19 + 2.9, cfa 1.87 + 18.9, total 3.70 + 24.9; cost per row at 100,000 / at 25,000:
    0.47 (less than linear: the fixed cost dominates at these sizes)

2026-12-02 07:52 (main at 1132af2: the FIML casewise scores no longer copied), ``--parts n --sizes
100000``: clean 9.52, split 5.11, efa 18.53, cfa 48.04 CPU-s, total 81.20 CPU-s (120.6 s wall),
peak 1931 MB (cfa; 2381 MB before): both targets at N = 100,000 met.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
INSTRUMENT = REPO / "instrument" / "sustainability_gap.yaml"
PARAMS = REPO / "params.yaml"

# run CMD as the only child of a small wrapper and print the child's peak RSS (kB) last
_WRAPPER = ("import resource, subprocess, sys\n"
            "code = subprocess.run(sys.argv[1:]).returncode\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)\n")


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; return (CPU seconds of it and its children, wall seconds, peak RSS in MB)."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    peak_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
    return cpu, wall, peak_mb


def line(name: str, cpu: float, wall: float, peak: float) -> None:
    print(f"  {name:<28} {cpu:9.2f} {wall:9.2f} {peak:10.0f}", flush=True)


def header(title: str) -> None:
    print(f"\n{title}\n  {'command':<28} {'CPU s':>9} {'wall s':>9} {'peak MB':>10}", flush=True)


def simulated(work: Path, n: int, seed: int = 1) -> Path:
    """The default study simulated with ``n`` respondents (cached)."""
    out = work / f"sim_{n}_{seed}"
    if not (out / "responses.csv").exists():
        subprocess.run(["gapscale", "simulate", "--instrument", str(INSTRUMENT), "--params", str(PARAMS),
                        "--n", str(n), "--seed", str(seed), "--out", str(out)], check=True, capture_output=True)
    return out / "responses.csv"


def million(work: Path, rows: int = 1_000_000, block: int = 100_000) -> Path:
    """``rows`` rows: simulated studies of ``block`` respondents with seeds 1, 2, ..., ids prefixed."""
    path = work / f"responses_{rows}.csv"
    if path.exists():
        return path
    written, seed = 0, 1
    with open(path, "w", encoding="utf-8") as out:
        while written < rows:
            lines = simulated(work, block, seed).read_text(encoding="utf-8").splitlines()
            if seed == 1:
                out.write(lines[0] + "\n")
            body = lines[1:][: rows - written]
            out.writelines(f"s{seed}-{text}\n" for text in body)
            written += len(body)
            seed += 1
    return path


def wide(work: Path, n_items: int = 300, n_rows: int = 1000, per_construct: int = 5, seed: int = 1) -> tuple[Path, Path]:
    """A synthetic instrument of ``n_items`` seven-point items and ``n_rows`` responses to it."""
    inst_path, data_path = work / f"wide_{n_items}.yaml", work / f"wide_{n_items}_{n_rows}.csv"
    if inst_path.exists() and data_path.exists():
        return inst_path, data_path
    rng = np.random.default_rng(seed)
    k = n_items // per_construct
    constructs = []
    for c in range(k):
        items = "\n".join(f"      - {{id: W{c + 1:03d}_{i + 1}, text: \"Statement {i + 1} about topic {c + 1}.\", "
                          f"reverse: false}}" for i in range(per_construct))
        constructs.append(f"  - id: W{c + 1:03d}\n    label: Topic {c + 1}\n    definition: Synthetic construct {c + 1}.\n"
                          f"    source: benchmarks/scale.py\n    section: s\n    items:\n{items}")
    inst_path.write_text(
        "name: Wide synthetic scale\nversion: \"0.1\"\ndescription: A synthetic instrument for benchmarks.\n"
        "instructions: Answer every statement.\nscale:\n  type: likert\n  min: 1\n  max: 7\n"
        "id_column: respondent_id\nduration_column: duration_s\n"
        "sections:\n  - {id: s, title: Statements, intro: Please answer.}\n"
        "constructs:\n" + "\n".join(constructs) + "\n", encoding="utf-8")
    phi = np.full((k, k), 0.3) + 0.7 * np.eye(k)
    eta = rng.standard_normal((n_rows, k)) @ np.linalg.cholesky(phi).T
    loadings = rng.uniform(0.5, 0.8, n_items)
    owner = np.repeat(np.arange(k), per_construct)
    y = eta[:, owner] * loadings + rng.standard_normal((n_rows, n_items)) * np.sqrt(1 - loadings ** 2)
    answers = 1 + np.searchsorted(np.array([-1.5, -0.9, -0.3, 0.3, 0.9, 1.5]), y).astype(float)
    answers[rng.random(answers.shape) < 0.05] = np.nan
    names = [f"W{c + 1:03d}_{i + 1}" for c in range(k) for i in range(per_construct)]
    with open(data_path, "w", encoding="utf-8") as out:
        out.write(",".join(["respondent_id", *names, "duration_s"]) + "\n")
        durations = rng.lognormal(np.log(900), 0.3, n_rows)
        for r in range(n_rows):
            cells = ["" if np.isnan(v) else str(int(v)) for v in answers[r]]
            out.write(",".join([f"W{r + 1:05d}", *cells, f"{durations[r]:.0f}"]) + "\n")
    return inst_path, data_path


def early_stages(data: Path, out: Path, instrument: Path = INSTRUMENT, stages=("clean", "split", "efa", "cfa"),
                 params: Path = PARAMS) -> list[tuple[str, float, float, float]]:
    """clean (+ split + efa + cfa) of ``data``; [(stage, CPU s, wall s, peak MB)]."""
    inst, par = ["--instrument", str(instrument)], ["--params", str(params)]
    cmds = {
        "clean": ["gapscale", "clean", *inst, "--data", str(data), *par, "--out", str(out / "clean")],
        "split": ["gapscale", "split", "--data", str(out / "clean" / "clean.csv"), *inst, *par, "--out", str(out / "split")],
        "efa": ["gapscale", "efa", "--data", str(out / "split" / "efa.csv"), *inst, *par, "--out", str(out / "efa")],
        "cfa": ["gapscale", "cfa", "--data", str(out / "split" / "cfa.csv"), *inst, *par, "--out", str(out / "cfa")],
    }
    if "split" not in stages:  # efa straight on the clean data
        cmds["efa"][3] = str(out / "clean" / "clean.csv")
    results = []
    for stage in stages:
        cpu, wall, peak = timed(cmds[stage])
        line(stage, cpu, wall, peak)
        results.append((stage, cpu, wall, peak))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gapscale-scale"))
    parser.add_argument("--parts", default="help,n,million,wide")
    parser.add_argument("--sizes", default="25000,50000,100000")
    parser.add_argument("--stages", default="clean,split,efa,cfa", help="stages of the 'n' part, in order")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")

    if "help" in parts:
        header("gapscale --help (target < 0.5 s)")
        runs = [timed(["gapscale", "--help"]) for _ in range(3)]
        cpu, wall, peak = min(runs, key=lambda r: r[1])
        line("--help (best of 3)", cpu, wall, peak)

    if "n" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        totals, by_stage = [], {}
        for n in sizes:
            data = simulated(work, n)
            header(f"default study, N = {n:,} respondents (target at 100,000: <= 120 CPU-s, <= 2048 MB)")
            res = early_stages(data, work / f"out_{n}", stages=tuple(args.stages.split(",")))
            cpu = sum(r[1] for r in res)
            peak = max(r[3] for r in res)
            totals.append(cpu)
            for stage, stage_cpu, _w, _p in res:
                by_stage.setdefault(stage, []).append(stage_cpu)
            line("total", cpu, sum(r[2] for r in res), peak)
        if len(sizes) > 1:
            print(f"\n  cost against N (least squares over N = {', '.join(f'{n:,}' for n in sizes)}): "
                  "slope in CPU-s per 10,000 rows, fixed cost (intercept) in CPU-s")
            for name, cpus in [*by_stage.items(), ("total", totals)]:
                slope, intercept = np.polyfit(sizes, cpus, 1)
                per_row = [c / n for c, n in zip(cpus, sizes)]
                print(f"  {name:<8} slope {slope * 1e4:6.2f} CPU-s per 10,000 rows, fixed cost {intercept:6.1f} CPU-s; "
                      f"cost per row at N = {sizes[-1]:,} / at N = {sizes[0]:,}: {per_row[-1] / per_row[0]:.2f} "
                      "(1.0 = linear)", flush=True)

    if "million" in parts:
        data = million(work)
        header("clean of 1,000,000 rows x 72 items (target <= 60 CPU-s)")
        early_stages(data, work / "out_million", stages=("clean",))

    if "wide" in parts:
        inst, data = wide(work)
        header("300 items x 1,000 rows: clean and efa (target <= 60 CPU-s together)")
        res = early_stages(data, work / "out_wide", instrument=inst, stages=("clean", "efa"))
        line("total", sum(r[1] for r in res), sum(r[2] for r in res), max(r[3] for r in res))


if __name__ == "__main__":
    main()
