"""Stage ``invariance``: measurement invariance across groups and the comparison of the
structural paths across them (analysis/invariance.py), on the CFA half."""
from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import pandas as pd

from analysis.hypotheses import group_expectations
from analysis.invariance import CRITERIA, Criteria, Specification, invariance
from analysis.warnings import GapscaleWarning
from instrument import LavaanModel, LavaanSyntaxError, parse_model, read_model
from pipeline.cfa import model_text
from pipeline.io import (estimation_settings, is_simulated, output_dir, read_data, read_params, section,
                         write_csv, write_json)
from analysis.errors import InputError

try:  # installed with scikit-learn/DVC's stack here, but not a declared dependency: optional
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings"]

OUTPUTS = ("invariance_fit.csv", "invariance_groups.csv", "invariance_latent_means.csv", "invariance_paths.csv",
           "invariance_parameters.csv", "invariance_contrasts.csv", "invariance.json")
DEFAULTS = {"group": None, "min_group_size": 100, "missing": "fiml", "estimator": "ML", "ordered": None,
            "std_lv": False, "reference_group": None, "partial": [],
            "criterion": "fit_indices", "delta_cfi": -0.010, "delta_rmsea": 0.015, "alpha": 0.05,
            "configural_cfi": 0.90, "configural_rmsea": 0.08}


def settings(params: dict, overrides: dict) -> dict:
    """``invariance:`` of params.yaml over :data:`DEFAULTS`, then the command-line options."""
    s = section(params, "invariance", DEFAULTS, overrides)
    if s["group"] is not None and not isinstance(s["group"], str):
        raise InputError(f"invariance.group: the name of the grouping column, got {s['group']!r}")
    s.update(estimation_settings(s, "invariance"))  # as the cfa and sem stages: "invariance.KEY: ..."
    try:
        specification(s)  # what the ladder refuses beyond that (missing: pairwise)
    except InputError as exc:
        raise InputError(f"invariance.{exc}") from None
    size = s["min_group_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise InputError(f"invariance.min_group_size: a whole number >= 2, got {size!r}")
    if isinstance(s["partial"], str) or not isinstance(s["partial"], (list, tuple)) \
            or not all(isinstance(x, str) for x in s["partial"]):
        raise InputError(f"invariance.partial: a list of parameters such as ['GAP1_2 ~ 1', 'GAP1 =~ GAP1_4'], "
                         f"got {s['partial']!r}")
    if s["criterion"] not in CRITERIA:
        raise InputError(f"invariance.criterion: {s['criterion']!r} is not one of {', '.join(CRITERIA)}")
    if s["reference_group"] is not None and not isinstance(s["reference_group"], (str, int)):
        raise InputError(f"invariance.reference_group: a group value or null, got {s['reference_group']!r}")
    try:
        criteria(s)
    except InputError as exc:
        raise InputError(f"invariance.{exc}") from None
    return s


def specification(s: dict) -> Specification:
    """Estimator, missing-data method, ordered items and std.lv of the settings."""
    return Specification(estimator=s["estimator"], missing=s["missing"], ordered=s["ordered"] or (),
                         std_lv=s["std_lv"])


def criteria(s: dict) -> Criteria:
    return Criteria(criterion=s["criterion"], delta_cfi=s["delta_cfi"], delta_rmsea=s["delta_rmsea"],
                    alpha=s["alpha"], configural_cfi=s["configural_cfi"], configural_rmsea=s["configural_rmsea"])


def structural_model(path, drop_items) -> LavaanModel:
    """The structural model file, without the items dropped after the EFA (their ``=~`` terms)."""
    model = read_model(path)
    kept = tuple(st for st in model.statements if not (st.op == "=~" and st.rhs in set(drop_items)))
    return LavaanModel(kept)


def _json_ready(value):
    """NaN and infinities as null, numpy scalars as Python numbers, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if value is pd.NA:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(data_path, out, instrument_path=None, model_path=None, structural_path=None, params_path=None,
        overrides=None, hypotheses_path=None) -> dict:
    """Run the invariance ladder (and the structural comparison) and write the outputs.

    ``hypotheses_path``: the hypotheses file; its ``groups`` parts (directional differences of
    paths between groups) are tested in the model with free paths
    (:func:`analysis.invariance.group_contrasts`): ``invariance_contrasts.csv`` and
    ``contrasts`` in invariance.json, which the sem stage's hypotheses table reports."""
    from pipeline.sem import read_hypotheses

    params = read_params(params_path)
    s = settings(params, overrides or {})
    if s["group"] is None:
        raise InputError("no grouping column: give --group or set invariance.group in the params file")
    drop = (params.get("efa") or {}).get("drop_items") or []
    text = model_text(instrument_path, model_path, drop)
    try:
        model = parse_model(text)
    except LavaanSyntaxError as exc:
        raise InputError(f"{model_path or instrument_path}: {exc}") from None
    structural = structural_model(structural_path, drop) if structural_path is not None else None
    hypotheses = read_hypotheses(hypotheses_path) if hypotheses_path else {}
    try:
        expectations = group_expectations(hypotheses, structural)
    except InputError as exc:
        raise InputError(f"{hypotheses_path}: {exc}") from None
    data = read_data(data_path, dtype={s["group"]: str})  # group labels as written: 2, never 2.0
    if s["group"] not in data.columns:
        raise InputError(f"{data_path}: no column {s['group']!r} to group by; columns are "
                         f"{', '.join(map(str, data.columns))}")
    values = set(data[s["group"]].dropna().astype(str))
    for e in expectations:  # a group a hypothesis names must be in the data (a typo is not "not tested")
        absent = [g for g in e["first"] + e["than"] if g not in values] if e["column"] == s["group"] else []
        if absent:
            raise InputError(f"{hypotheses_path}: {e['hypothesis']}.groups.expect.{e['parameter']}: {absent[0]!r} is "
                             f"not a value of {s['group']} in {data_path} ({', '.join(sorted(values))})")
    # One BLAS thread: the matrices are a few hundred wide, where threads gain little, and a
    # busy machine makes OpenBLAS threads spin (the default study: 16 s instead of 60 s on 2 busy
    # cores). The numbers do not depend on it.
    limit = threadpool_limits(limits=1, user_api="blas") if threadpool_limits is not None else contextlib.nullcontext()
    with limit, warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        result = invariance(data, model, s["group"], structural_model=structural, group_partial=s["partial"],
                            min_group_size=s["min_group_size"], reference_group=s["reference_group"],
                            criteria=criteria(s), spec=specification(s), contrasts=expectations)
    caught = [f"{w.category.__name__}: {w.message}" for w in records if issubclass(w.category, GapscaleWarning)]
    summary = dict(result.summary)
    summary["warnings"] = list(dict.fromkeys(summary["warnings"] + caught))
    metrics = _json_ready({
        "simulated": is_simulated(data), "source": Path(data_path).name,
        "structural_model": Path(structural_path).name if structural_path is not None else None,
        "n_rows": len(data), **summary, "dropped_items": drop,
        "contrasts": result.contrasts.to_dict("records"),
        "fit": result.fit.drop(columns=[c for c in result.fit.columns if c.startswith("delta_")]).to_dict("records"),
    })
    out = output_dir(out)
    write_csv(result.fit, out / "invariance_fit.csv")
    write_csv(result.groups, out / "invariance_groups.csv")
    write_csv(result.latent_means, out / "invariance_latent_means.csv")
    write_csv(result.paths, out / "invariance_paths.csv")
    write_csv(result.parameters, out / "invariance_parameters.csv")
    write_csv(result.contrasts, out / "invariance_contrasts.csv")
    write_json(metrics, out / "invariance.json")
    return metrics
