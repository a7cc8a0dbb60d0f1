"""Stage ``cfa``: confirmatory factor analysis on the CFA half, with lavaan's numbers."""
from __future__ import annotations

import warnings
from pathlib import Path


from analysis.sem import PARAMETER_COLUMNS, fit_sem, modification_indices, standardized_residuals
from analysis.sem.api import refuse_unidentified
from analysis.warnings import GapscaleWarning
from analysis.wlsmv import fit_wlsmv, wlsmv_modification_indices, wlsmv_standardized_residuals
from instrument import LavaanSyntaxError, load_instrument, parse_model
from pipeline.io import is_simulated, output_dir, read_data, read_params, section, write_csv, write_json
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS", "DEFAULTS"]

OUTPUTS = ("cfa_parameters.csv", "cfa_modindices.csv", "cfa_residuals.csv", "cfa.json")
DEFAULTS = {"estimator": "ML", "missing": "listwise", "top_modindices": 20}
SUPPORTED = {"estimator": ("ML", "MLR", "WLSMV"), "missing": ("listwise", "fiml")}
PLANNED = {"estimator": (), "missing": ()}
# With WLSMV the modification indices and standardized residuals are lavaan's for a WLSMV fit.
WLSMV_NOTE = ("WLSMV (lavaan's cfa(ordered = TRUE, estimator = 'WLSMV')): items treated as ordinal; thresholds as "
              "rows with op '|'; residual variances are 1 - R^2 (delta parameterisation, se 0 as lavaan); "
              "modification indices use the DWLS information and standardized residuals are those of the "
              "polychoric correlations, as lavaan's modindices() and residuals(type = 'standardized'); judge fit "
              "by the scaled (cfi_scaled, tli_scaled, rmsea_scaled) or robust indices")


def settings(params: dict, overrides: dict) -> dict:
    s = section(params, "cfa", DEFAULTS, overrides)
    for key, allowed in SUPPORTED.items():
        if s[key] not in allowed:
            hint = " (planned, not available yet)" if s[key] in PLANNED[key] else ""
            raise InputError(f"cfa.{key}: {s[key]!r} is not available{hint}; use {', '.join(allowed)}")
    if s["estimator"] == "WLSMV" and s["missing"] != "listwise":
        raise InputError(f"cfa.missing: {s['missing']!r} is not available with estimator WLSMV (lavaan's WLSMV deletes "
                         "incomplete rows listwise); use missing listwise (--missing listwise), or estimator ML/MLR "
                         "with fiml")
    if isinstance(s["top_modindices"], bool) or not isinstance(s["top_modindices"], int) or s["top_modindices"] < 0:
        raise InputError(f"cfa.top_modindices: a whole number >= 0, got {s['top_modindices']!r}")
    return s


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
    """Fit the CFA and write parameters, modification indices, residuals and metrics."""
    params = read_params(params_path)
    s = settings(params, overrides or {})
    drop = (params.get("efa") or {}).get("drop_items") or []
    text = model_text(instrument_path, model_path, drop)
    try:
        parse_model(text)
    except LavaanSyntaxError as exc:
        raise InputError(f"{model_path or instrument_path}: {exc}") from None
    data = read_data(data_path)
    refuse_unidentified(text, data, where=str(model_path or instrument_path))  # the unified engine's check (issue 11)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        if s["estimator"] == "WLSMV":
            fit = fit_wlsmv(data, text)
            mi = wlsmv_modification_indices(fit).head(s["top_modindices"])
            resid = wlsmv_standardized_residuals(fit)
        else:
            fit = fit_sem(data, text, missing=s["missing"], estimator=s["estimator"])
            mi = modification_indices(fit).head(s["top_modindices"])
            resid = standardized_residuals(fit)
    caught = [f"{w.category.__name__}: {w.message}" for w in records if issubclass(w.category, GapscaleWarning)]
    flags = list(dict.fromkeys(list(fit.warnings) + caught))
    loadings = fit.parameters[fit.parameters["op"] == "=~"]
    metrics = {
        "simulated": is_simulated(data),
        "source": Path(data_path).name, "estimator": s["estimator"], "missing": s["missing"],
        "n_rows": len(data), "converged": fit.converged, "iterations": fit.iterations,
        "fit": fit.fit, "min_std_loading": float(loadings["std_all"].min()),
        "dropped_items": drop, "inadmissible": flags, "admissible": not flags and fit.converged,
    }
    if s["estimator"] == "WLSMV":
        metrics["note"] = WLSMV_NOTE
    out = output_dir(out)
    write_csv(fit.parameters[PARAMETER_COLUMNS + ["std_all_se"]], out / "cfa_parameters.csv")
    write_csv(mi, out / "cfa_modindices.csv")
    write_csv(resid.rename_axis("variable").reset_index(), out / "cfa_residuals.csv")
    write_json(metrics, out / "cfa.json")
    return metrics
