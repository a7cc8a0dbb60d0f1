"""CPU seconds of every stage of the default ``dvc repro``, run in a fresh clone.

    python benchmarks/repro.py [--repo .] [--keep DIR] [--stages render,simulate,...]

Clones ``--repo`` (its committed HEAD) into a scratch directory with ``../shared`` linked beside
it, installs nothing (the active virtual environment's ``gapscale`` and ``dvc`` are used), and
runs ``dvc repro --single-item --force STAGE`` for each stage of ``dvc.yaml`` in order. Printed per
stage: CPU seconds (user + sys of the children, from :func:`os.times`), wall seconds and peak
resident memory of the largest child so far (``ru_maxrss`` only grows); then the totals and the figure of issue 13
(the whole default study in at most 120 CPU-s).

CPU seconds are the measure: wall time on a shared 2-core machine varies with the load. BLAS
threads are left as the user has them (gapscale's CLI sets its own limits).
Not a test: timings belong here.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

TARGET_CPU_S = 120.0


def stage_names(repo: Path) -> list[str]:
    """The stages of ``dvc.yaml`` in the order they are written (the order they run)."""
    return list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])


def run_stage(clone: Path, stage: str) -> tuple[float, float, float]:
    """Run one stage; return (CPU seconds, wall seconds, peak RSS of the largest child in MB)."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(["dvc", "repro", "--single-item", "--force", stage], cwd=clone,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"stage {stage} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return cpu, wall, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", type=Path, default=None,
                        help="clone into this directory and keep it (default: a scratch one)")
    parser.add_argument("--stages", default=None, help="comma-separated subset, in order")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gapscale-repro-")) if args.keep is None else args.keep
    scratch.mkdir(parents=True, exist_ok=True)
    clone = scratch / "gapscale"
    shared = args.repo.resolve().parent / "shared"
    try:
        subprocess.run(["git", "clone", "--quiet", str(args.repo), str(clone)], check=True)
        if not (scratch / "shared").exists():
            (scratch / "shared").symlink_to(shared)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone,
                              capture_output=True, text=True, check=True).stdout.strip()
        stages = stage_names(clone) if args.stages is None else args.stages.split(",")
        print(f"dvc repro of the default study at {head}, stage by stage ({len(stages)} stages)")
        print(f"{'stage':<12} {'CPU s':>9} {'wall s':>9} {'max RSS MB':>11}")
        total_cpu = total_wall = 0.0
        for stage in stages:
            cpu, wall, peak = run_stage(clone, stage)
            total_cpu += cpu
            total_wall += wall
            print(f"{stage:<12} {cpu:9.1f} {wall:9.1f} {peak:11.0f}", flush=True)
        print(f"{'total':<12} {total_cpu:9.1f} {total_wall:9.1f}")
        verdict = "meets" if total_cpu <= TARGET_CPU_S else "misses"
        print(f"target <= {TARGET_CPU_S:.0f} CPU-s: {verdict} it ({total_cpu / TARGET_CPU_S:.1f}x)")
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
