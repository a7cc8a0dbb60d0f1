"""Stage ``reliability``: reliability, convergent and discriminant validity, common-method variance.

Common-method variance (:mod:`analysis.cmv`; ``reliability.method_factor``): Harman's
single-factor test (a convention only), the unmeasured latent method factor in the variants of
``reliability.method_variants`` (each flagged admissible or not, with the parameters at fault),
and, when the instrument has a marker construct (``marker: true``), the CFA marker technique of
Williams, Hartman & Cavazotte (2010), Lindell & Whitney's (2001) adjusted correlations of the
construct scores and the structural paths of the instrument's model adjusted for the method
effect. The CMV models are fitted with ``reliability.cmv_missing`` (listwise by default: FIML
costs several times more for models read by their chi-squares only)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import cmv as cmvlib
from analysis import reliability as rel
from analysis.csvfile import restore_cell
from analysis.missing import em_moments
from analysis.sem.api import fit_model
from analysis.split import stage_rng
from analysis.warnings import GapscaleWarning
from pipeline.cfa import model_text
from pipeline.io import is_simulated, output_dir, read_data, read_params, read_seed, section, write_csv, write_json
from pipeline.stage_metrics import read_metrics
from pipeline.progress import progress_bar
from instrument import load_instrument, parse_model
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS", "DEFAULTS"]

OUTPUTS = ("reliability.csv", "item_statistics.csv", "fornell_larcker.csv", "htmt.csv", "reliability.json",
           "construct_correlations.csv", "cmv_models.csv", "cmv_tests.csv", "cmv_lindell_whitney.csv", "cmv_paths.csv")
CMV_MODEL_COLUMNS = ["family", "model", "chisq", "df", "pvalue", "cfi", "rmsea", "converged", "identified",
                     "admissible", "reasons", "method_variance_share"]
CMV_TEST_COLUMNS = ["family", "comparison", "restricted", "general", "delta_chisq", "delta_df", "delta_pvalue",
                    "significant", "decision"]
# HTMT's item correlations under the CFA's missing-data treatment (semTools::htmt(missing = ...))
HTMT_MISSING = {"fiml": "ml", "pairwise": "pairwise", "listwise": "listwise"}
DEFAULTS = {"htmt_bootstrap": 1000, "ci": 0.95, "method_factor": True, "method_variants": ["equal"],
            "cmv_missing": "listwise"}


def settings(params: dict, overrides: dict) -> dict:
    s = section(params, "reliability", DEFAULTS, overrides)
    if isinstance(s["htmt_bootstrap"], bool) or not isinstance(s["htmt_bootstrap"], int) \
            or not 0 <= s["htmt_bootstrap"] <= 100_000:
        raise InputError(f"reliability.htmt_bootstrap: a whole number from 0 to 100000, got {s['htmt_bootstrap']!r}")
    if not isinstance(s["ci"], (int, float)) or not 0 < s["ci"] < 1:
        raise InputError(f"reliability.ci: a level in (0, 1), got {s['ci']!r}")
    if not isinstance(s["method_factor"], bool):
        raise InputError(f"reliability.method_factor: true or false, got {s['method_factor']!r}")
    v = s["method_variants"]
    if not isinstance(v, list) or not v or any(x not in cmvlib.VARIANTS for x in v):
        raise InputError(f"reliability.method_variants: a list from {', '.join(cmvlib.VARIANTS)}, got {v!r}"[:300])
    if s["cmv_missing"] not in ("listwise", "fiml"):
        raise InputError(f"reliability.cmv_missing: listwise or fiml, got {s['cmv_missing']!r}"[:300])
    return s


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
    cov = base.cov if base.cov is not None else observed_covariance(data, items, missing)
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
    inst = load_instrument(instrument_path) if instrument_path is not None and model_path is None else None
    cmv, cmv_tables = common_method(data, constructs, inst, s, drop) if s["method_factor"] else (None, {})
    cmv_notes = [f"common-method variance: {w}" for w in (cmv or {}).get("warnings", [])]
    notes = list(base.warnings)  # as engine_warnings: the fit's notes, then other gapscale warnings, each once
    caught = list(dict.fromkeys(notes + [f"{w.category.__name__}: {w.message}" for w in recorded + list(records)
                                         if issubclass(w.category, GapscaleWarning) and str(w.message) not in notes]))
    caught += cmv_notes

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
        "cmv": cmv,
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
    write_csv(cmv_tables.get("models", pd.DataFrame(columns=CMV_MODEL_COLUMNS)), out / "cmv_models.csv")
    write_csv(cmv_tables.get("tests", pd.DataFrame(columns=CMV_TEST_COLUMNS)), out / "cmv_tests.csv")
    write_csv(cmv_tables.get("lindell_whitney", pd.DataFrame(columns=cmvlib.LW_COLUMNS)), out / "cmv_lindell_whitney.csv")
    write_csv(cmv_tables.get("paths", pd.DataFrame(columns=cmvlib.PATH_COLUMNS)), out / "cmv_paths.csv")
    write_json(metrics, out / "reliability.json")
    return metrics


def common_method(data: pd.DataFrame, constructs: dict[str, list[str]], inst, s: dict,
                  drop: list) -> tuple[dict, dict]:
    """Common-method variance beyond Harman's test (:mod:`analysis.cmv`): the unmeasured method
    factor's variants; with a marker construct in the instrument ``inst``, the CFA marker
    technique, Lindell & Whitney's adjustment of the construct-score correlations (marker: the
    marker construct's score; :math:`r_M` its smallest positive correlation) and the method-adjusted
    paths of the instrument's structural model. Returns the metrics block and the tables."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        info, tables = _common_method(data, constructs, inst, s, drop)
    info["warnings"] += list(dict.fromkeys(str(w.message) for w in records if issubclass(w.category, GapscaleWarning)))
    return info, tables


def _common_method(data, constructs, inst, s, drop):
    missing = s["cmv_missing"]
    markers = [m for m in (inst.marker_ids if inst is not None else ()) if m in constructs]
    substantive = {c: its for c, its in constructs.items() if c not in markers}
    info: dict = {"missing": missing, "marker": None, "warnings": []}
    tables: dict = {}
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        ulmc = cmvlib.unmeasured_method_factor(data, substantive, missing=missing, variants=s["method_variants"])
    t = ulmc.table
    # an inadmissible variant's engine warnings (Heywood cases, loadings beyond 1, a non-positive-definite
    # matrix) are its reasons: one line per variant instead of one per parameter
    bad = t[t["identified"] & ~t["admissible"].astype(bool)]
    info["warnings"] += [f"the unmeasured method factor model ({r.variant}) is inadmissible and not interpreted: "
                         f"{r.reasons}" for r in bad.itertuples()]
    if bad.empty:
        info["warnings"] += list(dict.fromkeys(str(w.message) for w in records
                                               if issubclass(w.category, GapscaleWarning)))
    models = pd.DataFrame({"family": "unmeasured_method_factor", "model": t["variant"], "chisq": t["chisq"],
                           "df": t["df"], "identified": t["identified"], "admissible": t["admissible"],
                           "reasons": t["reasons"], "method_variance_share": t["method_variance_share"]})
    tests = pd.DataFrame({"family": "unmeasured_method_factor", "comparison": "method factor added (" + t["variant"]
                          + " vs " + t["compared_with"] + ")", "restricted": t["compared_with"], "general": t["variant"],
                          "delta_chisq": t["delta_chisq"], "delta_df": t["delta_df"], "delta_pvalue": t["delta_pvalue"]})
    tests["significant"] = tests["delta_pvalue"] < 0.05
    info["method_factor"] = {
        "variants": [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
                     for row in t.drop(columns=["compared_with"]).to_dict("records")],
        "recommended": ulmc.recommended}
    if not markers:
        info["marker_note"] = ("the instrument has no marker construct (marker: true): common-method variance rests "
                               "on the unmeasured method factor and Harman's test only" if inst is not None else
                               "no instrument given (--model): no marker construct, so only the unmeasured method "
                               "factor and Harman's test")
    else:
        marker = markers[0]
        m_items = constructs[marker]
        res = cmvlib.marker_technique(data, substantive, m_items, marker=marker, missing=missing)
        mf = res.fits.assign(family="marker")
        models = pd.concat([models, mf.assign(identified=True, admissible=mf["converged"], reasons="",
                                              method_variance_share=np.nan)], ignore_index=True)
        tests = pd.concat([tests, res.tests.assign(family="marker")], ignore_index=True)
        scores = pd.DataFrame({c: data[its].apply(pd.to_numeric, errors="coerce").mean(axis=1, skipna=False)
                               for c, its in constructs.items()})
        lw = cmvlib.lindell_whitney(scores, marker, list(substantive))
        tables["lindell_whitney"] = lw
        info["marker"] = {
            "construct": marker, "items": m_items, **res.summary,
            "r_marker": float(lw["r_marker"].iloc[0]), "lw_pairs": int(len(lw)), "lw_n": int(lw["df"].iloc[0]) + 3,
            "lw_significant_unadjusted": int((_r_pvalue(lw["r"], lw["df"].iloc[0] + 1) < 0.05).sum()),
            "lw_significant_adjusted": int((lw["pvalue"] < 0.05).sum()),
            "lw_mean_abs_change": float((lw["r"] - lw["r_adjusted"]).abs().mean())}
        if len(markers) > 1:
            info["warnings"].append(f"several marker constructs ({', '.join(markers)}); {marker} used")
        if inst.model is not None and not drop:
            text = Path(inst.model).read_text(encoding="utf-8-sig")
            paths, fits = cmvlib.method_adjusted_paths(data, text, res, marker=marker, missing=missing)
            tables["paths"] = paths
            info["adjusted_paths"] = {**fits, "n_paths": int(len(paths)),
                                      "max_abs_difference": float(paths["std_all_difference"].abs().max()),
                                      "mean_abs_difference": float(paths["std_all_difference"].abs().mean())}
        else:
            info["adjusted_paths"] = None
            info["warnings"].append("method-adjusted paths not computed: " + (
                "the instrument has no structural model file" if inst.model is None else
                "efa.drop_items removes items the structural model file still names"))
    models = models.reindex(columns=CMV_MODEL_COLUMNS)
    tables["models"], tables["tests"] = models, tests.reindex(columns=CMV_TEST_COLUMNS)
    return info, tables


def _r_pvalue(r, df) -> np.ndarray:
    """Two-sided p of Pearson's r on ``df`` = N - 2 degrees of freedom (``cor.test``)."""
    from analysis.distributions import t_sf

    r = np.asarray(r, dtype=float)
    t = r * np.sqrt(df / (1 - r ** 2))
    return 2 * t_sf(np.abs(t), df)


def sample_covariance(fitted) -> pd.DataFrame:
    """lavaan's sample covariance matrix of a one-group fit (``lavInspect(fit, "sampstat")$cov``:
    divisor n for complete data, the EM estimate with FIML), labelled by variable."""
    st = fitted.stats[0]
    return pd.DataFrame(st.cov, index=list(st.ov), columns=list(st.ov))


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
