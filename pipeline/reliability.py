"""Stage ``reliability``: reliability, convergent and discriminant validity, common-method variance."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import reliability as rel
from analysis.csvfile import restore_cell
from analysis.missing import em_moments
from analysis.sem.api import fit_model, parameter_table
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify
from analysis.split import stage_rng
from analysis.warnings import GapscaleWarning
from pipeline.cfa import engine_warnings, model_text
from pipeline.io import is_simulated, output_dir, read_data, read_params, read_seed, section, write_csv, write_json
from pipeline.stage_metrics import read_metrics
from pipeline.progress import progress_bar
from instrument import parse_model
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS", "DEFAULTS"]

OUTPUTS = ("reliability.csv", "item_statistics.csv", "fornell_larcker.csv", "htmt.csv", "reliability.json",
           "construct_correlations.csv")
# HTMT's item correlations under the CFA's missing-data treatment (semTools::htmt(missing = ...))
HTMT_MISSING = {"fiml": "ml", "pairwise": "pairwise", "listwise": "listwise"}
DEFAULTS = {"htmt_bootstrap": 1000, "ci": 0.95, "method_factor": True}


def settings(params: dict, overrides: dict) -> dict:
    s = section(params, "reliability", DEFAULTS, overrides)
    if isinstance(s["htmt_bootstrap"], bool) or not isinstance(s["htmt_bootstrap"], int) \
            or not 0 <= s["htmt_bootstrap"] <= 100_000:
        raise InputError(f"reliability.htmt_bootstrap: a whole number from 0 to 100000, got {s['htmt_bootstrap']!r}")
    if not isinstance(s["ci"], (int, float)) or not 0 < s["ci"] < 1:
        raise InputError(f"reliability.ci: a level in (0, 1), got {s['ci']!r}")
    if not isinstance(s["method_factor"], bool):
        raise InputError(f"reliability.method_factor: true or false, got {s['method_factor']!r}")
    return s


def method_factor_model(text: str, constructs: dict[str, list[str]]) -> str:
    """The measurement model plus an unmeasured latent method factor (Podsakoff et al., 2003):
    every item loads 1 on ``METHOD``, whose variance is free (the same model as one common
    loading with the method variance fixed at 1), uncorrelated with the construct factors."""
    items = [i for its in constructs.values() for i in its]
    lines = [text.rstrip(), "METHOD =~ " + " + ".join(f"1*{i}" for i in items)]
    lines += [f"METHOD ~~ 0*{c}" for c in constructs]
    return "\n".join(lines) + "\n"


def run(data_path, out, instrument_path=None, model_path=None, params_path=None, overrides=None, seed=None,
        cfa_dir=None) -> dict:
    """Compute the reliability and validity tables; write them and ``reliability.json``.

    HTMT's item correlations follow the CFA's missing-data treatment (``cfa.missing``: FIML gives
    semTools' ``htmt(missing = "ml")``, the EM correlations, also in each bootstrap resample;
    ``reliability.json`` ``htmt_missing`` says which). ``construct_correlations.csv`` is the
    square part of the Fornell-Larcker table: the factor correlations with sqrt(AVE) on the
    diagonal.

    ``cfa_dir``: the cfa stage's outputs (``cfa.json``, ``cfa_parameters.csv``) for the same
    data and measurement model: its estimates and fit are used instead of fitting the CFA again
    (:func:`read_cfa`; when they are not for this data, model and missing-data method, the CFA is
    fitted here and ``reliability.json`` says why in ``cfa_fit``)."""
    params = read_params(params_path)
    s = settings(params, overrides or {})
    missing = (params.get("cfa") or {}).get("missing", "listwise")
    if missing not in HTMT_MISSING:
        raise InputError(f"cfa.missing: {missing!r} is not one of {', '.join(HTMT_MISSING)}"[:300])
    seed = read_seed(params, seed)
    drop = (params.get("efa") or {}).get("drop_items") or []
    text = model_text(instrument_path, model_path, drop)
    model = parse_model(text)
    constructs = {lat: [i for i in inds if i not in model.latents]
                  for lat, inds in model.indicators.items() if any(i not in model.latents for i in inds)}
    data = read_data(data_path)
    items = [i for its in constructs.values() for i in its]

    base, cfa_note = read_cfa(cfa_dir, data, data_path, model, missing) if cfa_dir is not None else (None, "")
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        if base is None:
            fit = fit_model(model, data, missing=missing)
            base = CFAResult(parameters=fit.parameters, fit=fit.fit, warnings=tuple(fit.warnings),
                             cov=sample_covariance(fit))
    recorded = list(records)
    cmv = with_method = None
    if s["method_factor"]:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always", GapscaleWarning)
            try:
                with_method = fit_method_factor(method_factor_model(text, constructs), data, missing)
            except InputError as exc:  # an inadmissible solution the information cannot identify: a finding
                head, _, rest = str(exc).partition(", so these parameters are not determined by the data: ")
                involved = f" ({rest.split('; ')[0].count(', ') + 1} parameters involved)" if rest else ""
                cmv, method_notes = {"admissible": False, "identified": False}, [f"method factor model: {head}{involved}"]
            else:
                cmv = compare_method_factor(base.fit, with_method)
        if with_method is not None:
            method_notes = [f"method factor model: {w}" for w in engine_warnings(with_method, records)]
    # lavaan's sample covariance: the CFA's, or the method-factor model's (the same items and data)
    cov = base.cov if base.cov is not None else \
        sample_covariance(with_method).loc[items, items] if with_method is not None else \
        observed_covariance(data, items, missing)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        alpha = rel.cronbach_alpha(data, constructs, ci=s["ci"])
        item_stats = rel.item_statistics(data, constructs)
        cr = rel.composite_reliability(base.parameters, cov=cov)
        ave = rel.ave(base.parameters, cov=cov)
        fl = rel.fornell_larcker(base.parameters, cov=cov)
        htmt_missing = HTMT_MISSING[missing]
        if s["htmt_bootstrap"] > 0:
            with progress_bar(total=s["htmt_bootstrap"], desc="HTMT bootstrap") as tick:
                htmt = rel.htmt_bootstrap(data, constructs, s["htmt_bootstrap"], stage_rng(seed, "reliability"),
                                          ci=s["ci"], progress=tick, missing=htmt_missing)
        else:
            htmt = rel.htmt(data, constructs, missing=htmt_missing)
        harman = rel.harman_single_factor(data, items).iloc[0]
    notes = list(base.warnings)  # as engine_warnings: the fit's notes, then other gapscale warnings, each once
    caught = list(dict.fromkeys(notes + [f"{w.category.__name__}: {w.message}" for w in recorded + list(records)
                                         if issubclass(w.category, GapscaleWarning) and str(w.message) not in notes]))
    if s["method_factor"]:
        caught += method_notes

    table = (alpha[["construct", "n_items", "raw_alpha", "feldt_lower", "feldt_upper"]]
             .merge(cr[["construct", "omega", "cr"]], on="construct", how="left")
             .merge(ave[["construct", "ave", "ave_std"]], on="construct", how="left")
             .merge(fl[["construct", "sqrt_ave", "max_abs_correlation", "fornell_larcker_met"]], on="construct",
                    how="left"))
    lowest_ave = table.loc[table["ave"].idxmin()]
    top = htmt.loc[htmt["htmt"].idxmax()]
    metrics = {
        "simulated": is_simulated(data),
        "source": Path(data_path).name, "missing": missing, "n": int(base.fit["ntotal"]),
        "cfa_fit": cfa_note or ("the cfa stage's" if cfa_dir is not None else "fitted here"),
        "min_alpha": float(table["raw_alpha"].min()), "min_alpha_construct": str(table.loc[table["raw_alpha"].idxmin(), "construct"]),
        "min_omega": float(table["omega"].min()),
        "lowest_ave": float(lowest_ave["ave"]), "lowest_ave_construct": str(lowest_ave["construct"]),
        "highest_htmt": float(top["htmt"]), "highest_htmt_pair": f"{top['construct_1']}-{top['construct_2']}",
        "htmt_missing": htmt_missing,
        "fornell_larcker_violations": [str(c) for c in table.loc[~table["fornell_larcker_met"].astype(bool), "construct"]],
        "harman_first_factor_share": float(harman["variance_share"]),
        "harman_exceeds_half": bool(harman["exceeds_threshold"]),
        "method_factor": cmv,
        "flags": flag_lines(table, htmt),
        "warnings": caught,
    }
    out = output_dir(out)
    write_csv(table, out / "reliability.csv")
    write_csv(item_stats, out / "item_statistics.csv")
    write_csv(fl, out / "fornell_larcker.csv")
    write_csv(htmt, out / "htmt.csv")
    # the factor correlations with sqrt(AVE) on the diagonal: the Fornell-Larcker table's square part
    write_csv(fl[["construct"] + list(fl["construct"])], out / "construct_correlations.csv")
    write_json(metrics, out / "reliability.json")
    return metrics


def sample_covariance(fitted) -> pd.DataFrame:
    """lavaan's sample covariance matrix of a one-group fit (``lavInspect(fit, "sampstat")$cov``:
    divisor n for complete data, the EM estimate with FIML), labelled by variable."""
    st = fitted.stats[0]
    return pd.DataFrame(st.cov, index=list(st.ov), columns=list(st.ov))


def compare_method_factor(base_fit: dict, with_method) -> dict:
    """Chi-square difference and fit change when an unmeasured method factor is added
    (``base_fit``: the CFA's fit measures)."""
    from scipy import stats

    d_chisq = base_fit["chisq"] - with_method.fit["chisq"]
    d_df = base_fit["df"] - with_method.fit["df"]
    loading = with_method.parameters[(with_method.parameters["lhs"] == "METHOD") & (with_method.parameters["op"] == "=~")]
    return {
        "chisq_difference": float(d_chisq), "df_difference": int(d_df),
        "pvalue": float(stats.chi2.sf(d_chisq, d_df)) if d_df > 0 else None,
        "cfi_change": float(with_method.fit["cfi"] - base_fit["cfi"]),
        "rmsea_change": float(with_method.fit["rmsea"] - base_fit["rmsea"]),
        "mean_std_method_loading": float(np.mean(loading["std_all"])),
        "method_variance_share": float(np.mean(loading["std_all"] ** 2)),
        "converged": bool(with_method.converged),
    }


def fit_method_factor(text: str, data: pd.DataFrame, missing: str):
    """Fit the method-factor model (:func:`method_factor_model`) as :func:`fit_model` does, without
    FIML's robust fit indices (``cfi_robust``, ...; not reported here, the larger part of the
    fit measures' cost) and without standard errors (:func:`compare_method_factor` reads the fit
    measures and the standardised loadings only; with FIML the observed information's 2q
    gradients). lavaan's ``cfa(model, data, missing = ...)``."""
    pt = lavaanify(text, list(data.columns), missing=missing)
    kwargs = {"missing": missing} if missing != "listwise" else {}
    fitted = engine_fit(pt, data, robust_indices=False, se=False, **kwargs)
    return replace(fitted, parameters=parameter_table(fitted))


@dataclass(frozen=True)
class CFAResult:
    """What the stage needs of the CFA: the parameter table (``parameterEstimates`` columns),
    the fit measures, the fit's warnings and lavaan's sample covariance (None: compute it)."""

    parameters: pd.DataFrame
    fit: dict
    warnings: tuple[str, ...]
    cov: pd.DataFrame | None


def read_cfa(cfa_dir, data: pd.DataFrame, data_path, model, missing: str) -> tuple[CFAResult | None, str]:
    """The cfa stage's results (``cfa.json``, ``cfa_parameters.csv`` in ``cfa_dir``) when they
    are for this data (file name and rows), this measurement model (its loadings) and missing-data
    method with an ML estimator (ML, MLR and MLM share the estimates); otherwise None and why."""
    cfa_dir = Path(cfa_dir)
    try:
        meta = read_metrics(cfa_dir / "cfa.json")
        params = read_data(cfa_dir / "cfa_parameters.csv", keep_default_na=False, na_values=[""])
    except (OSError, InputError) as exc:
        return None, f"fitted here: the cfa stage's outputs in {cfa_dir} cannot be read ({exc})"
    for col in ("lhs", "op", "rhs", "label"):
        if col in params.columns:  # write_csv's guard against spreadsheet formulas: "'=~" is "=~"
            params[col] = [_unquoted(v) for v in params[col]]
    loads = {(a, b) for a, o, b in zip(params.get("lhs", []), params.get("op", []), params.get("rhs", [])) if o == "=~"}
    wanted = {(lat, i) for lat, inds in model.indicators.items() for i in inds}
    reasons = []
    if meta.get("source") != Path(data_path).name or meta.get("n_rows") != len(data):
        reasons.append(f"it is for {meta.get('source')} ({meta.get('n_rows')} rows), not {Path(data_path).name} "
                       f"({len(data)} rows)")
    if str(meta.get("estimator", "")).upper() not in ("ML", "MLR", "MLM") or meta.get("missing") != missing:
        reasons.append(f"its estimator {meta.get('estimator')} with missing {meta.get('missing')} is not ML with "
                       f"missing {missing}")
    if loads != wanted:
        reasons.append("its loadings are not those of this measurement model")
    if reasons:
        return None, f"fitted here: the cfa stage's fit in {cfa_dir} is not this one ({'; '.join(reasons)})"
    fit = meta.get("fit") or {}
    return CFAResult(parameters=params, fit=fit, warnings=tuple(meta.get("inadmissible") or ()), cov=None), ""


def _unquoted(value) -> str:
    """A text cell as :func:`analysis.csvfile.write_csv` wrote it, read back (empty for NaN)."""
    return "" if pd.isna(value) else restore_cell(str(value))


def observed_covariance(data: pd.DataFrame, items: list[str], missing: str) -> pd.DataFrame:
    """lavaan's sample covariance of the items (``lavInspect(fit, "sampstat")$cov``) without a fit:
    with ``missing = "fiml"`` the EM estimate (:func:`analysis.missing.em_moments`, the engine's,
    over the rows with any item observed), else the complete rows' covariance with divisor n."""
    x = data[items].apply(pd.to_numeric, errors="coerce")
    if missing != "listwise":
        x = x[x.notna().any(axis=1)]
        return em_moments(x, items).cov.loc[items, items]
    return x.dropna().cov(ddof=0)


def flag_lines(table: pd.DataFrame, htmt: pd.DataFrame) -> list[str]:
    """Conventional cut-offs a reviewer checks: alpha and omega >= .70, AVE >= .50, HTMT < .85."""
    flags = []
    for row in table.itertuples():
        if row.raw_alpha < 0.7:
            flags.append(f"{row.construct}: alpha {row.raw_alpha:.3f} < .70")
        if row.omega < 0.7:
            flags.append(f"{row.construct}: omega {row.omega:.3f} < .70")
        if row.ave < 0.5:
            flags.append(f"{row.construct}: AVE {row.ave:.3f} < .50")
    for row in htmt.itertuples():
        if row.htmt >= 0.85:
            flags.append(f"{row.construct_1}-{row.construct_2}: HTMT {row.htmt:.3f} >= .85")
    return flags
