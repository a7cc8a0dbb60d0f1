"""Stage ``cfa``: confirmatory factor analysis on the CFA half, with lavaan's numbers."""
from __future__ import annotations

import warnings
from pathlib import Path

from analysis.errors import InputError
from analysis.sem.api import PARAMETER_COLUMNS, fit_model
from analysis.sem.diagnostics import modification_indices, standardized_residuals
from analysis.warnings import GapscaleWarning
from instrument import LavaanSyntaxError, load_instrument, parse_model
from pipeline.io import is_simulated, output_dir, read_data, read_params, section, write_csv, write_json

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings", "model_text", "ordered_items", "engine_warnings"]

OUTPUTS = ("cfa_parameters.csv", "cfa_modindices.csv", "cfa_residuals.csv", "cfa.json")
DEFAULTS = {"estimator": "ML", "missing": "listwise", "std_lv": False, "ordered": None, "top_modindices": 20}
ESTIMATORS = ("ML", "MLR", "MLM", "WLSMV", "ULSMV")
ORDINAL = ("WLSMV", "ULSMV")
MISSING = ("listwise", "fiml")
MI_COLUMNS = ["lhs", "op", "rhs", "mi", "epc", "sepc_all"]
# Estimators that take complete cases only, and what to use instead with fiml.
COMPLETE_ONLY = {
    "MLM": "its Satorra-Bentler test needs complete data, as lavaan's",
    "WLSMV": "lavaan's WLSMV deletes incomplete rows listwise",
    "ULSMV": "lavaan's ULSMV deletes incomplete rows listwise",
}
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
    if not isinstance(s["estimator"], str) or s["estimator"].upper() not in ESTIMATORS:
        raise InputError(f"cfa.estimator: {s['estimator']!r} is not available; use {', '.join(ESTIMATORS)}")
    s["estimator"] = s["estimator"].upper()
    if s["missing"] not in MISSING:
        raise InputError(f"cfa.missing: {s['missing']!r} is not available; use {', '.join(MISSING)}")
    est = s["estimator"]
    if s["missing"] == "fiml" and est in COMPLETE_ONLY:
        others = [e for e in ESTIMATORS if e not in COMPLETE_ONLY]
        raise InputError(f"cfa.missing: 'fiml' is not available with estimator {est}: {COMPLETE_ONLY[est]}; use "
                         f"--missing listwise with {est}, or --estimator {' or '.join(others)} with fiml")
    if not isinstance(s["std_lv"], bool):
        raise InputError(f"cfa.std_lv: true or false, got {s['std_lv']!r}")
    s["ordered"] = _ordered_setting(s["ordered"])
    if s["ordered"] is not None and est not in ORDINAL:
        raise InputError(f"cfa.ordered: ordered items need estimator {' or '.join(ORDINAL)} (thresholds and "
                         f"polychoric correlations), got {est}; use --estimator WLSMV, or leave --ordered out to treat "
                         "the items as continuous")
    if isinstance(s["top_modindices"], bool) or not isinstance(s["top_modindices"], int) or s["top_modindices"] < 0:
        raise InputError(f"cfa.top_modindices: a whole number >= 0, got {s['top_modindices']!r}")
    return s


def _ordered_setting(value):
    """None, ``"all"`` or a list of column names, from a params value or a comma-separated option."""
    if value is None or value is False:
        return None
    if value is True:
        return "all"
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return "all"
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"cfa.ordered: 'all' or a list of column names (on the command line comma-separated, e.g. "
                         f"--ordered A1,A2), got {value!r}"[:300])
    return list(dict.fromkeys(value))


def ordered_items(setting, estimator: str, observed) -> list[str] | None:
    """The ordered items to fit: ``setting`` (None, ``"all"`` or columns) resolved against the
    model's ``observed`` variables; with WLSMV/ULSMV and no setting, all of them (lavaan's
    ``ordered = TRUE``)."""
    if estimator not in ORDINAL:
        return None
    if setting is None or setting == "all":
        return list(observed)
    return list(setting)


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
    parameters, modification indices, standardized residuals and metrics."""
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
    ordered = ordered_items(s["ordered"], s["estimator"], model.observed)
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
        resid = standardized_residuals(fit, data)[0][0]  # the cases: MLR with complete data needs them
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
    if s["estimator"] in ORDINAL:
        metrics["note"] = ORDINAL_NOTE.format(est=s["estimator"])
    out = output_dir(out)
    write_csv(fit.parameters[PARAMETER_COLUMNS + ["std_all_se"]], out / "cfa_parameters.csv")
    write_csv(mi, out / "cfa_modindices.csv")
    write_csv(resid.rename_axis("variable").reset_index(), out / "cfa_residuals.csv")
    write_json(metrics, out / "cfa.json")
    return metrics
