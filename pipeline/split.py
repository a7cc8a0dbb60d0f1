"""Stage ``split``: divide the clean data into an EFA half and a CFA half.

Only instrument-defined columns are written. With ``--instrument`` the halves keep ``row``,
``respondent_id`` (when the data come from the clean stage, which pseudonymised it), the items,
attention checks, context questions that are not personal and their model columns (the coding the
instrument declares, written by the clean stage), ``duration_s``, ``simulated`` and ``reverse_recoded``; every other column is dropped and named in ``split.json``. Without an
instrument the data must be the clean stage's output (it carries ``reverse_recoded``), whose
columns the clean stage already limited to the instrument's. Cells are copied as text, exactly
as read: a group label stays ``2`` (never ``2.0``) and no number is re-formatted.
"""
from __future__ import annotations

from pathlib import Path

from analysis.clean import DURATION_COLUMN, ID_COLUMN, PASS_THROUGH, REVERSE_MARKER
from analysis.checks import check_known_keys
from analysis.errors import InputError
from analysis.split import split_sample, stage_rng
from instrument import load_instrument
from pipeline.io import is_simulated, output_dir, read_data, read_params, write_csv, write_json

__all__ = ["run", "OUTPUTS"]

OUTPUTS = ("efa.csv", "cfa.csv", "split.json")


def run(data_path, out, params_path=None, seed=None, share=None, stratify=None, instrument_path=None) -> dict:
    """Split ``data_path`` (the clean data) and write ``efa.csv``, ``cfa.csv`` and ``split.json``."""
    params = read_params(params_path)
    settings = params.get("split") or {}
    if not isinstance(settings, dict):
        raise InputError(f"split: expected a mapping, got {settings!r}")
    check_known_keys(settings, ("share", "stratify"), "split")
    seed = params.get("seed", 0) if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed: need a whole number >= 0, got {seed!r}")
    share = settings.get("share", 0.5) if share is None else share
    stratify = settings.get("stratify") if stratify is None else (stratify or None)
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise InputError(f"split.share: expected a number in (0, 1), got {share!r}")
    inst = load_instrument(instrument_path) if instrument_path is not None else None
    data = read_data(data_path, dtype=str, keep_default_na=False, na_values=[""])
    from_clean = REVERSE_MARKER in data.columns
    if inst is None and not from_clean:
        raise InputError(f"{data_path}: not the output of the clean stage (no {REVERSE_MARKER!r} column), so its "
                         "columns may hold personal data; run 'gapscale clean' first, or pass --instrument so only "
                         "the instrument's columns are written")
    if inst is not None:
        allowed = {"row", DURATION_COLUMN, REVERSE_MARKER, *PASS_THROUGH, *inst.item_ids,
                   *(c.id for c in inst.attention_checks), *(q.id for q in inst.context if not q.personal),
                   *inst.model_columns}
        if from_clean:
            allowed.add(ID_COLUMN)
        dropped = [c for c in data.columns if c not in allowed]
        data = data[[c for c in data.columns if c in allowed]]
    else:
        dropped = []
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
    if dropped:
        metrics["dropped_columns"] = dropped
    write_json(metrics, out / "split.json")
    return metrics
