"""Stage ``clean``: read any export, drop personal data, coerce, screen, report missing data.

Respondent ids are pseudonymised (see :mod:`analysis.clean`): the key comes from
``--id-key-file`` / ``clean.id_key_file`` or the environment variable ``clean.id_key_env``
(default ``GAPSCALE_ID_KEY``), never from the data; without a key the pseudonyms are row
numbers. The mapping from ids to pseudonyms is written only when ``--id-map FILE`` asks for it,
and never into the stage's output directory. The context questions a model uses as covariates are
written also as the numeric columns the instrument's ``coding`` declares (:mod:`analysis.coding`).

Answers outside the scale (the instrument's ``scale.outside``) are missing in ``clean.csv`` and
counted in ``outside_answers.csv`` (per item: ``n_<option>``, ``n_outside``, ``n_skipped``,
``n_missing``) and in ``missing_respondents.csv`` (``n_outside``). With a ``cluster_column`` the
organisations are written as ``cluster_id`` (pseudonymised) and ``design_effect.csv`` holds ICC(1),
the design effect and the effective N of every construct score (mean of its answered items);
without one it has the columns and no rows.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis.clean import (CLUSTER_COLUMN, SCREENS, IdParams, outside_answers, parse_clean_params, prepare,
                            score_screens, screen)
from analysis.coding import code_context
from analysis.descriptives import sample_profile
from analysis.errors import InputError
from analysis.missing import little_mcar_test, missing_by_item, missing_by_respondent
from analysis.multilevel import DESIGN_EFFECT_COLUMNS, construct_means, design_effect
from analysis.warnings import GapscaleWarning
from instrument import load_instrument
from pipeline.ingest import read_export
from pipeline.io import is_simulated, output_dir, read_params, write_csv, write_json

__all__ = ["run", "OUTPUTS"]

OUTPUTS = ("clean.csv", "exclusions.csv", "cell_problems.csv", "missing_items.csv",
           "missing_respondents.csv", "clean.json", "sample_profile.csv", "outside_answers.csv", "design_effect.csv")


MIN_KEY_BYTES = 16


def id_key(ids: IdParams, source: str = "clean") -> bytes | None:
    """The pseudonymisation key: the key file's bytes (white space stripped), else the
    environment variable's value, else None. A key shorter than 16 bytes is refused."""
    if ids.id_key_file:
        path = Path(ids.id_key_file)
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the id key file ({exc.strerror})") from None
        where = f"{path}"
    else:
        value = os.environ.get(ids.id_key_env or "")
        if not value:
            return None
        key, where = value.strip().encode("utf-8"), f"environment variable {ids.id_key_env}"
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"{where}: the id key must be at least {MIN_KEY_BYTES} bytes (a random string, e.g. from "
                         f"'openssl rand -hex 32'), got {len(key)}")
    return key


def run(instrument_path, data_path, out, params_path=None, overrides: dict | None = None, encoding=None,
        sheet=None, id_column=None, truth_path=None, id_map=None) -> dict:
    """Clean ``data_path`` for ``instrument_path`` and write the outputs into ``out``.

    ``overrides`` may carry screen settings and the id keys (``respondent_ids``,
    ``id_key_file``); ``id_map`` is a file for the id -> pseudonym mapping (outside ``out``).
    Returns the metrics written to ``clean.json``.
    """
    inst = load_instrument(instrument_path)
    params = read_params(params_path)
    settings, ids = parse_clean_params({**(params.get("clean") or {}), **(overrides or {})})
    if id_map is not None and Path(out).resolve() in (Path(id_map).resolve(), *Path(id_map).resolve().parents):
        raise InputError(f"{id_map}: the id mapping holds the original ids; write it outside the output "
                         f"directory {out} (and outside the DVC outputs)")
    key = id_key(ids) if ids.respondent_ids == "pseudonymise" else None
    raw = read_export(data_path, encoding=encoding, sheet=sheet)
    prepared = prepare(raw.cells, inst, source=str(data_path), qualtrics=raw.qualtrics, id_column=id_column,
                       declared_missing=raw.declared_missing, ids=ids, key=key)
    result = screen(prepared, inst, settings)

    items = list(inst.item_ids)
    clean = result.clean
    by_item = missing_by_item(clean, items)
    by_respondent = missing_by_respondent(clean, items, id_column=prepared.id_column)
    by_respondent.insert(0, "source_row", clean["row"].to_numpy())
    outside = outside_answers(clean, result.outside, inst)
    by_respondent["n_outside"] = ((result.outside.to_numpy() > 0).sum(axis=1) if result.outside is not None
                                  and len(result.outside.columns) else 0)
    if inst.cluster_column:
        scores = construct_means(clean, {c.id: list(c.item_ids) for c in inst.constructs})
        deff = design_effect(scores.assign(**{CLUSTER_COLUMN: clean[CLUSTER_COLUMN].to_numpy()}),
                             list(scores.columns), CLUSTER_COLUMN)
    else:
        deff = pd.DataFrame(columns=DESIGN_EFFECT_COLUMNS)
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
        "cells_set_missing": int(prepared.problems["problem"].str.endswith("set missing").sum()),
        "cells_changed": int((~prepared.problems["problem"].str.endswith("set missing")).sum()),
        "respondent_ids": ids.respondent_ids if ids.respondent_ids == "keep" else
        ("pseudonymised (keyed HMAC-SHA256)" if key is not None else "pseudonymised (row numbers)"),
        "missing_rate": float(clean[items].isna().to_numpy().sum() / cells) if cells else None,
        "little_mcar": mcar,
        "outside_answers": {o.name: {"code": o.code, "label": o.label,
                                     "n": int(outside[f"n_{o.name}"].sum()),
                                     "items": int(outside[f"n_{o.name}"].notna().sum())}
                            for o in inst.outside_options},
        "clusters": None if not inst.cluster_column else {
            "column": inst.cluster_column,
            "n_clusters": int(clean[CLUSTER_COLUMN].nunique()),
            "without_cluster": int(clean[CLUSTER_COLUMN].isna().sum()),
            "mean_cluster_size": float(clean[CLUSTER_COLUMN].notna().sum() / max(1, clean[CLUSTER_COLUMN].nunique())),
            "largest_cluster": int(clean[CLUSTER_COLUMN].value_counts().max()) if clean[CLUSTER_COLUMN].notna().any()
            else 0,
            "max_design_effect": float(deff["design_effect"].max()) if deff["design_effect"].notna().any() else None,
        },
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
    for q in inst.context:  # and integer answers, also with gaps (2, not 2.0: a group label stays a label)
        if q.type == "integer" and q.id in clean.columns:
            clean[q.id] = clean[q.id].astype("Int64")
    clean = code_context(clean, inst)  # the context questions' model columns (instrument: coding)
    write_csv(clean, out / "clean.csv")
    write_csv(result.exclusions, out / "exclusions.csv")
    write_csv(prepared.problems, out / "cell_problems.csv")
    write_csv(by_item, out / "missing_items.csv")
    write_csv(by_respondent, out / "missing_respondents.csv")
    write_json(metrics, out / "clean.json")
    write_csv(sample_profile(clean, inst.context), out / "sample_profile.csv")  # the context questions kept
    write_csv(outside, out / "outside_answers.csv")
    write_csv(deff, out / "design_effect.csv")
    if id_map is not None:
        mapping = pd.DataFrame({"row": prepared.data["row"], "original_id": prepared.original_ids.to_numpy(),
                                "respondent_id": prepared.data[prepared.id_column].to_numpy()})
        write_csv(mapping, Path(id_map))
    return metrics
