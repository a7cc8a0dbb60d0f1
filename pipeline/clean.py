"""Stage ``clean``: read any export, drop personal data, coerce, screen, report missing data."""
from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis.clean import SCREENS, parse_screen_params, prepare, score_screens, screen
from analysis.missing import little_mcar_test, missing_by_item, missing_by_respondent
from analysis.warnings import GapscaleWarning
from instrument import load_instrument
from pipeline.ingest import read_export
from pipeline.io import is_simulated, output_dir, read_params, write_csv, write_json

__all__ = ["run", "OUTPUTS"]

OUTPUTS = ("clean.csv", "exclusions.csv", "cell_problems.csv", "missing_items.csv",
           "missing_respondents.csv", "clean.json")


def run(instrument_path, data_path, out, params_path=None, overrides: dict | None = None, encoding=None,
        sheet=None, id_column=None, truth_path=None) -> dict:
    """Clean ``data_path`` for ``instrument_path`` and write the outputs into ``out``.

    Returns the metrics written to ``clean.json``.
    """
    inst = load_instrument(instrument_path)
    params = read_params(params_path)
    settings = parse_screen_params({**(params.get("clean") or {}), **(overrides or {})})
    raw = read_export(data_path, encoding=encoding, sheet=sheet)
    prepared = prepare(raw.cells, inst, source=str(data_path), qualtrics=raw.qualtrics, id_column=id_column)
    result = screen(prepared, inst, settings)

    items = list(inst.item_ids)
    clean = result.clean
    by_item = missing_by_item(clean, items)
    by_respondent = missing_by_respondent(clean, items, id_column=prepared.id_column)
    by_respondent.insert(0, "source_row", clean["row"].to_numpy())
    mcar_note = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GapscaleWarning)
        try:
            mcar = little_mcar_test(clean, items).to_dict()
        except ValueError as exc:  # e.g. a constant item or linearly dependent items
            mcar, mcar_note = None, f"Little's MCAR test not computed: {exc}"
    stage_warnings = [f"Little's MCAR test: {w.message}" for w in caught if issubclass(w.category, GapscaleWarning)]

    cells = len(clean) * len(items)
    metrics = {
        "simulated": is_simulated(clean),
        "source": Path(data_path).name,
        "format": raw.format,
        "qualtrics": raw.qualtrics,
        "rows_in": len(prepared.data),
        "kept": len(clean),
        "excluded": int(result.exclusions["row"].nunique()),
        "excluded_by_screen": {s: int((result.exclusions["screen"] == s).sum()) for s in SCREENS
                               if s in result.flags.columns},
        "cell_problems": len(prepared.problems),
        "missing_rate": float(clean[items].isna().to_numpy().sum() / cells) if cells else None,
        "little_mcar": mcar,
        "screens": asdict(settings),
        "notes": list(raw.notes) + list(prepared.notes) + ([mcar_note] if mcar_note else []),
        "warnings": list(result.warnings) + stage_warnings,
    }
    if truth_path is not None:
        metrics["screens_vs_truth"] = score_screens(result.flags, pd.read_csv(truth_path))

    out = output_dir(out)
    for item in inst.items:  # whole numbers on a Likert scale are written as such (4, not 4.0)
        if item.scale.type == "likert":
            clean[item.id] = clean[item.id].astype("Int64")
    write_csv(clean, out / "clean.csv")
    write_csv(result.exclusions, out / "exclusions.csv")
    write_csv(prepared.problems, out / "cell_problems.csv")
    write_csv(by_item, out / "missing_items.csv")
    write_csv(by_respondent, out / "missing_respondents.csv")
    write_json(metrics, out / "clean.json")
    return metrics
