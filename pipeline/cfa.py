"""Stage ``cfa``: confirmatory factor analysis on the CFA half, with lavaan's numbers."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.descriptives import MARDIA_KEYS, item_descriptives, mardia
from analysis.errors import InputError
from analysis.sem.api import PARAMETER_COLUMNS, fit_model
from analysis.sem.diagnostics import modification_indices, standardized_residuals
from analysis.warnings import GapscaleWarning
from instrument import LavaanSyntaxError, load_instrument, parse_model
from pipeline.io import (estimation_settings, is_simulated, output_dir, read_data, read_params, section,
                         write_csv, write_json)

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings", "model_text", "engine_warnings", "write_normality"]

OUTPUTS = ("cfa_parameters.csv", "cfa_modindices.csv", "cfa_residuals.csv", "cfa.json", "item_descriptives.csv",
           "mardia.json")
DEFAULTS = {"estimator": "ML", "missing": "listwise", "std_lv": False, "ordered": None, "top_modindices": 20}
MI_COLUMNS = ["lhs", "op", "rhs", "mi", "epc", "sepc_all"]
ORDINAL_NOTE = ("{est} (lavaan's cfa(ordered = ..., estimator = '{est}')): the ordered items are ordinal; thresholds "
                "as rows with op '|'; their residual variances are 1 - R^2 (delta parameterisation, se 0 as lavaan); "
                "modification indices and standardized residuals are lavaan's for a {est} fit (those of the "
                "polychoric correlations); judge fit by the scaled (cfi_scaled, tli_scaled, rmsea_scaled) or robust "
                "indices")


def settings(params: dict, overrides: dict) -> dict:
    """The ``cfa:`` settings over :data:`DEFAULTS`, checked: the estimator and missing-data
    method, their combination, ``std_lv``, ``ordered`` (None, ``"all"``, a list of columns or
    comma-separated columns) and ``top_modindices``."""
    s = section(params, "cfa", DEFAULTS, overrides)
    s.update(estimation_settings(s, "cfa"))
    if isinstance(s["top_modindices"], bool) or not isinstance(s["top_modindices"], int) or s["top_modindices"] < 0:
        raise InputError(f"cfa.top_modindices: a whole number >= 0, got {s['top_modindices']!r}")
    return s


def engine_warnings(fitted, records) -> list[str]:
    """The fit's notes (non-convergence, data notes, inadmissible solutions: the engine's
    :func:`~analysis.sem.inference.inadmissible_notes`) and the gapscale warnings raised while
    fitting that say something else (``Class: message``), each once."""
    notes = list(fitted.warnings)
    caught = [f"{w.category.__name__}: {w.message}" for w in records
              if issubclass(w.category, GapscaleWarning) and str(w.message) not in notes]
    return list(dict.fromkeys(notes + caught))


def model_text(instrument_path, model_path, drop_items) -> str:
    """The measurement model: one factor per construct of the instrument (minus dropped items),
    or the lavaan file given."""
    if model_path is not None:
        try:
            return Path(model_path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{model_path}: cannot be read as UTF-8 text ({exc})") from None
    inst = load_instrument(instrument_path)
    if not isinstance(drop_items, list) or not all(isinstance(i, str) for i in drop_items):
        raise InputError(f"efa.drop_items: expected a list of item ids, got {drop_items!r}"[:300])
    unknown = [i for i in drop_items if i not in inst.item_ids]
    if unknown:
        raise InputError(f"efa.drop_items: {', '.join(unknown)} not among the instrument's items")
    lines = []
    for c in inst.constructs:
        kept = [i for i in c.item_ids if i not in set(drop_items)]
        if not kept:
            raise InputError(f"efa.drop_items: drops every item of construct {c.id} ({', '.join(c.item_ids)}); keep at "
                             "least one item of each construct (or leave the construct out of the instrument)")
        lines.append(f"{c.id} =~ {' + '.join(kept)}")
    return "\n".join(lines) + "\n"


def run(data_path, out, instrument_path=None, model_path=None, params_path=None, overrides=None) -> dict:
    """Fit the CFA with the unified engine (:func:`analysis.sem.api.fit_model`) and write
    parameters, modification indices, standardized residuals and metrics, and the observed
    variables' descriptives and Mardia's test (:func:`write_normality`)."""
    params = read_params(params_path)
    s = settings(params, overrides or {})
    drop = (params.get("efa") or {}).get("drop_items") or []
    text = model_text(instrument_path, model_path, drop)
    where = str(model_path or instrument_path)
    try:
        model = parse_model(text)
    except LavaanSyntaxError as exc:
        raise InputError(f"{where}: {exc}") from None
    data = read_data(data_path)
    ordered = s["estimation"].ordered_columns(text, data)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        try:
            fit = fit_model(model, data, estimator=s["estimator"], std_lv=s["std_lv"], missing=s["missing"],
                            ordered=ordered)
        except InputError as exc:
            if str(exc).startswith("the model is not identified"):
                raise InputError(f"{where}: {exc}") from None
            raise
        mi = modification_indices(fit).sort_values("mi", ascending=False, kind="stable")
        mi = mi[MI_COLUMNS].head(s["top_modindices"]).reset_index(drop=True)
        try:
            resid, resid_note = standardized_residuals(fit, data)[0][0], ""  # the cases: MLR with complete data
        except InputError as exc:  # not computed for this kind of model (lavaan neither): NaN, said in cfa.json
            ov = list(fit.model.blocks[0].ov)
            resid, resid_note = pd.DataFrame(np.nan, index=ov, columns=ov), str(exc)
    flags = engine_warnings(fit, records)
    loadings = fit.parameters[fit.parameters["op"] == "=~"]
    metrics = {
        "simulated": is_simulated(data),
        "source": Path(data_path).name, "estimator": s["estimator"], "missing": s["missing"],
        "std_lv": s["std_lv"], "ordered": ordered,
        "n_rows": len(data), "converged": bool(fit.converged), "iterations": int(fit.optimum.iterations),
        "fit": fit.fit, "min_std_loading": float(loadings["std_all"].min()),
        "dropped_items": drop, "inadmissible": flags, "admissible": not flags and bool(fit.converged),
    }
    if s["estimation"].ordinal:
        metrics["note"] = ORDINAL_NOTE.format(est=s["estimator"])
    if resid_note:
        metrics["note"] = f"{metrics.get('note', '')} {resid_note}.".strip()
    out = output_dir(out)
    write_csv(fit.parameters[PARAMETER_COLUMNS + ["std_all_se"]], out / "cfa_parameters.csv")
    write_csv(mi, out / "cfa_modindices.csv")
    write_csv(resid.rename_axis("variable").reset_index(), out / "cfa_residuals.csv")
    write_json(metrics, out / "cfa.json")
    write_normality(data, list(fit.model.blocks[0].ov), out)
    return metrics


def write_normality(data: pd.DataFrame, observed: list[str], out: Path) -> None:
    """The CFA's observed variables described (``item_descriptives.csv``: every row, each item's
    observed cells) and Mardia's test on the complete rows (``mardia.json``; when it cannot be
    computed, its keys are null and ``note`` says why)."""
    write_csv(item_descriptives(data, observed), out / "item_descriptives.csv")
    try:
        result = mardia(data, observed)
    except InputError as exc:
        result = {**dict.fromkeys(MARDIA_KEYS), "note": f"Mardia's test not computed: {exc}"}
    write_json(result, out / "mardia.json")
