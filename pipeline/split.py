"""Stage ``split``: divide the clean data into an EFA half and a CFA half."""
from __future__ import annotations

from pathlib import Path


from analysis.split import split_sample, stage_rng
from pipeline.io import is_simulated, output_dir, read_data, read_params, write_csv, write_json
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS"]

OUTPUTS = ("efa.csv", "cfa.csv", "split.json")


def run(data_path, out, params_path=None, seed=None, share=None, stratify=None) -> dict:
    """Split ``data_path`` (the clean data) and write ``efa.csv``, ``cfa.csv`` and ``split.json``."""
    params = read_params(params_path)
    settings = params.get("split") or {}
    if not isinstance(settings, dict):
        raise InputError(f"split: expected a mapping, got {settings!r}")
    unknown = set(settings) - {"share", "stratify"}
    if unknown:
        raise InputError(f"split.{sorted(unknown)[0]}: unknown key; known keys are share, stratify")
    seed = params.get("seed", 0) if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed: need a whole number >= 0, got {seed!r}")
    share = settings.get("share", 0.5) if share is None else share
    stratify = settings.get("stratify") if stratify is None else (stratify or None)
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise InputError(f"split.share: expected a number in (0, 1), got {share!r}")
    data = read_data(data_path, dtype={"respondent_id": str})
    efa, cfa, sizes = split_sample(data, stage_rng(seed, "split"), share=share, stratify=stratify)
    out = output_dir(out)
    write_csv(efa, out / "efa.csv")
    write_csv(cfa, out / "cfa.csv")
    metrics = {
        "simulated": is_simulated(data),
        "source": Path(data_path).name, "seed": seed, "share": share, "stratify": stratify,
        "n": len(data), "n_efa": len(efa), "n_cfa": len(cfa),
        "strata": sizes.to_dict(orient="records"),
    }
    write_json(metrics, out / "split.json")
    return metrics
