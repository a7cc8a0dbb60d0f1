"""CPU seconds of every stage of the default ``dvc repro``, run in a fresh clone.

    python benchmarks/repro.py [--repo .] [--keep DIR]

Clones ``--repo`` (its committed HEAD) into a scratch directory with ``../shared`` linked beside
it, installs nothing (the active virtual environment's ``gapscale`` and ``dvc`` are used, with the
clone first on ``PYTHONPATH`` so that the clone's code runs), and
runs one ``dvc repro`` of the whole default study, as a user does. Each ``gapscale`` command of
the pipeline appends its CPU seconds to the file named by ``GAPSCALE_CPU_LOG`` on exit
(:func:`pipeline.cli.record_cpu`: user + sys, its bootstrap workers included). Printed: every
stage's CPU seconds, DVC's own share (the total less the stages), the total (user + sys of
``dvc repro`` and everything it ran, from :func:`os.times`), wall seconds and the peak resident
memory of the largest process (``ru_maxrss``); then the figure of issue 13 (the whole default
study in at most 120 CPU-s).

CPU seconds are the measure: wall time on a shared 2-core machine varies with the load.
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

TARGET_CPU_S = 120.0


def run_repro(clone: Path, log: Path) -> tuple[float, float]:
    """Run ``dvc repro`` in ``clone``; return (CPU seconds of it and its children, wall seconds)."""
    # the clone's code, not the code the virtual environment was installed from
    env = dict(os.environ, GAPSCALE_CPU_LOG=str(log), PYTHONPATH=str(clone))
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(["dvc", "repro"], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"dvc repro failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", type=Path, default=None,
                        help="clone into this directory and keep it (default: a scratch one)")
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
        log = scratch / "cpu.log"
        log.unlink(missing_ok=True)
        total, wall = run_repro(clone, log)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        stages = [line.split("\t") for line in log.read_text().splitlines()]
        print(f"dvc repro of the default study at {head}: CPU seconds (user + sys) per stage")
        for command, cpu in stages:
            print(f"  {command:<20} {float(cpu):8.1f}")
        in_stages = sum(float(cpu) for _, cpu in stages)
        print(f"  {'dvc itself':<20} {total - in_stages:8.1f}")
        print(f"  {'total':<20} {total:8.1f}   (wall {wall:.1f} s, largest process {peak_mb:.0f} MB)")
        verdict = "meets" if total <= TARGET_CPU_S else "misses"
        print(f"target <= {TARGET_CPU_S:.0f} CPU-s: {verdict} it ({total / TARGET_CPU_S:.2f} x the target)")
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
