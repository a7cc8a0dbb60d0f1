"""Stage ``simulate``: draw the simulated study from the population model in params.yaml."""
from __future__ import annotations

from pathlib import Path

from analysis.simulate import DEFECTS, CELL_DEFECTS, parse_simulation_params, simulate_study
from instrument import load_instrument
from pipeline.io import output_dir, read_params, write_csv, write_json
from pipeline.progress import progress_bar
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS"]

OUTPUTS = ("responses.csv", "truth.json", "truth_respondents.csv", "simulate.json")


def run(instrument_path, params_path, out, n: int | None = None, seed: int | None = None) -> dict:
    """Simulate, write the four outputs into ``out`` and return the metrics.

    Outputs: ``responses.csv`` (what a survey platform would export), ``truth.json``
    (population parameters and defect counts), ``truth_respondents.csv`` (which submission
    carries which defect) and ``simulate.json`` (metrics for DVC).
    """
    inst = load_instrument(instrument_path)
    params = read_params(params_path)
    sim = dict(params.get("simulate") or {})
    if n is not None:
        sim["n"] = n
    seed = params.get("seed", 0) if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed: need a whole number >= 0, got {seed!r}")
    with progress_bar(total=1, desc="simulate") as tick:  # one step: the draw itself takes no progress callable
        study = simulate_study(inst, parse_simulation_params(sim), seed)
        tick()

    out = output_dir(out)
    write_csv(study.responses, out / "responses.csv")
    write_json({**study.truth, "instrument": Path(instrument_path).name}, out / "truth.json")
    write_csv(study.respondents, out / "truth_respondents.csv")
    metrics = {
        "simulated": True,
        "rows": len(study.responses),
        "respondents": study.truth["n"],
        **{d: study.truth["defects"][d]["count"] for d in DEFECTS + CELL_DEFECTS},
        "clean_respondents": int(study.respondents["clean"].sum()),
    }
    write_json(metrics, out / "simulate.json")
    return metrics
