"""Confirmatory factor analysis: item distributions (descriptives, Mardia's test) and what they mean
for the estimator, the fit of the measurement model, its loadings, the largest modification
indices and standardized residuals. An inadmissible solution is shown but not interpreted."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, admissible, estimator_reason, fit_checks,
                                             fit_sentence, fit_table, fit_table_note, not_run, num, ok, stage_warnings)
from pipeline.report.model import SECTIONS, Findings, Section, StageOutputs, Table

__all__ = ["cfa_section", "parameter_text", "normality_paragraph", "item_descriptives_table", "modindices_table", "residuals_table"]

RESIDUAL_CUT = 2.58  # |standardized residual| above which a pair is listed as misfitting (z at alpha = .01)
UNIVARIATE_SKEW, UNIVARIATE_KURTOSIS = 2.0, 7.0  # Curran, West & Finch (1996)


def item_descriptives_table(desc: pd.DataFrame) -> Table:
    spec = {c: k for c, k in {"item": "text", "n": "int", "mean": "number", "sd": "number", "skewness": "number",
                              "kurtosis": "number", "pct_missing": (lambda v: apa.fmt_number(v, 1))}.items()
            if c in desc}
    frame = apa.apa_table(desc, spec, {"item": "Item", "n": "n", "mean": "M", "sd": "SD", "skewness": "Skewness",
                                       "kurtosis": "Kurtosis", "pct_missing": "% missing"})
    return Table("item_descriptives", "Item descriptive statistics (CFA sample)", frame,
                 "Kurtosis is excess kurtosis (0 for a normal distribution); % missing of the rows of the CFA sample.")


def normality_paragraph(desc: pd.DataFrame | None, mardia: dict | None, estimator, findings: Findings) -> str:
    """Univariate and multivariate normality (Mardia, 1970) and the consequence for ML vs MLR."""
    parts = []
    rejected = None
    if desc is not None and {"skewness", "kurtosis"} <= set(desc.columns) and len(desc):
        sk, ku = desc["skewness"].abs().max(), desc["kurtosis"].abs().max()
        over = int(((desc["skewness"].abs() >= UNIVARIATE_SKEW) | (desc["kurtosis"].abs() >= UNIVARIATE_KURTOSIS)).sum())
        parts.append(f"The largest absolute skewness of an item is {apa.fmt_number(sk)} and the largest absolute excess "
                     f"kurtosis {apa.fmt_number(ku)}; "
                     + ("no item reaches" if over == 0 else f"{apa.fmt_int(over)} item(s) reach")
                     + f" |skewness| ≥ {apa.fmt_number(UNIVARIATE_SKEW, 0)} or |kurtosis| ≥ "
                     f"{apa.fmt_number(UNIVARIATE_KURTOSIS, 0)} ({findings.cite('curran1996')}).")
    if mardia:
        sp, kp = num(mardia.get("skew_pvalue")), num(mardia.get("kurt_pvalue"))
        rejected = (ok(sp) and sp < 0.05) or (ok(kp) and kp < 0.05)
        parts.append(
            f"Mardia's test of multivariate normality ({findings.cite('mardia1970')}; "
            f"N = {apa.fmt_int(mardia.get('n'))}): skewness b1,p = {apa.fmt_number(mardia.get('b1p'))}, "
            f"{apa.fmt_chisq(mardia.get('skew_chisq'), mardia.get('skew_df'), mardia.get('skew_pvalue'))}; kurtosis "
            f"b2,p = {apa.fmt_number(mardia.get('b2p'))}, z = {apa.fmt_number(mardia.get('kurt_z'))}, "
            f"{apa.fmt_p_text(mardia.get('kurt_pvalue'))}.")
        est = str(estimator or "").upper()
        if rejected:
            if est == "ML":
                parts.append("Multivariate normality is rejected, so ML's standard errors and χ² test, which assume "
                             "it, may be biased; MLR (robust standard errors and scaled test) is the safer estimator "
                             "(set cfa.estimator: MLR in params.yaml).")
            elif est in ("MLR", "MLM", "MLMV"):
                parts.append(f"Multivariate normality is rejected; {est}, the estimator used, corrects the standard "
                             "errors and the test for it.")
            else:
                parts.append("Multivariate normality is rejected.")
        else:
            parts.append("Multivariate normality is not rejected, so ML's normal-theory standard errors and test are "
                         "appropriate" + (f" ({est} was used)." if est and est != "ML" else "."))
    if rejected is not None:
        findings.check(not rejected or str(estimator or "").upper() != "ML",
                       "multivariate normality " + ("is not rejected (Mardia)" if not rejected else
                                                    "is rejected (Mardia), and the estimator corrects for it"
                                                    if str(estimator or "").upper() != "ML" else
                                                    "is rejected (Mardia) but ML was used: MLR is the safer estimator"))
    return " ".join(parts)


def parameter_text(lhs, op, rhs) -> str:
    """A parameter of lavaan syntax in words: ``x9 loads on visual``, ``x1 covaries with x2``."""
    op = str(op)
    if op == "=~":
        return f"{rhs} loads on {lhs}"
    return f"{lhs} {({'~~': 'covaries with', '~': 'regressed on'}).get(op, op)} {rhs}"


def modindices_table(mi: pd.DataFrame, top: int = 10) -> Table | None:
    if mi is None or not {"lhs", "op", "rhs", "mi"} <= set(mi.columns) or not len(mi):
        return None
    t = mi.sort_values("mi", ascending=False, kind="stable").head(top).copy()
    t["parameter"] = [parameter_text(r.lhs, r.op, r.rhs) for r in t.itertuples()]
    spec = {c: k for c, k in {"parameter": "text", "mi": "number", "epc": "number", "sepc_all": "bounded"}.items()
            if c in t}
    return Table("cfa_modindices", f"The {len(t)} largest modification indices",
                 apa.apa_table(t, spec, {"parameter": "Parameter freed", "mi": "MI", "epc": "EPC",
                                         "sepc_all": "Standardized EPC"}),
                 "MI = modification index (the expected drop in χ² with 1 df when the parameter is freed); EPC = "
                 "expected parameter change. cfa_modindices.csv has the stage's full list.")


def residuals_table(resid: pd.DataFrame, top: int = 10) -> tuple[Table | None, int, int]:
    """The ``top`` pairs with the largest absolute standardized residual, the number of pairs above
    :data:`RESIDUAL_CUT` and the number of pairs."""
    if resid is None or "variable" not in resid.columns or not len(resid):
        return None, 0, 0
    m = resid.set_index("variable")
    names = [c for c in m.columns if c in m.index]
    rows = []
    for i, a in enumerate(names):
        for b in names[:i]:
            v = num(m.at[a, b])
            if ok(v):
                rows.append({"pair": f"{b} – {a}", "z": v})
    if not rows:
        return None, 0, 0
    pairs = pd.DataFrame(rows)
    over = int((pairs["z"].abs() > RESIDUAL_CUT).sum())
    t = pairs.reindex(pairs["z"].abs().sort_values(ascending=False, kind="stable").index).head(top)
    return (Table("cfa_residuals", f"The {len(t)} largest standardized residuals",
                  apa.apa_table(t, {"pair": "text", "z": "number"}, {"pair": "Items", "z": "Standardized residual"}),
                  f"Standardized covariance residuals (z scores); {apa.fmt_int(over)} of {apa.fmt_int(len(pairs))} "
                  f"pairs exceed |z| = {apa.fmt_number(RESIDUAL_CUT)}. cfa_residuals.csv has them all."),
            over, len(pairs))


def cfa_section(cfa: StageOutputs, findings: Findings, cuts: dict, split_ran: bool = True) -> Section:
    """Confirmatory factor analysis: item descriptives and Mardia's test with the consequence for
    the estimator, the estimator and why, the fit (robust indices for a scaled estimator), loadings,
    the largest modification indices and standardized residuals. An inadmissible solution is shown
    for diagnosis and not interpreted (no check is drawn from it).

    Parameters
    ----------
    cfa : StageOutputs
        What the cfa stage wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).
    cuts : dict
        The report's cut-offs (params.yaml report:).
    split_ran : bool
        The data are the CFA half of a split (else the whole data set).

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("cfa", SECTIONS["cfa"])
    if cfa.metrics is None:
        sec.ran = False
        sec.blocks.append(not_run(cfa, findings))
        return sec
    m = cfa.metrics
    fit = m.get("fit") or {}
    est = m.get("estimator")
    good = admissible(m)
    desc, mardia = cfa.table("item_descriptives.csv"), cfa.document("mardia.json")
    if desc is not None and len(desc):
        sec.blocks.append(item_descriptives_table(desc))
    normality = normality_paragraph(desc, mardia, est, findings)
    if normality:
        sec.blocks.append(normality)
    why = estimator_reason(m, findings)
    missing = str(m.get("missing") or "")
    miss = (f"full-information maximum likelihood for missing answers ({findings.cite('arbuckle1996')})"
            if missing == "fiml" else f"{missing} deletion of incomplete rows" if missing else "")
    sample = "the CFA half" if split_ran else f"the data ({m['source']})" if m.get("source") else "the data"
    sec.blocks.append(
        f"The measurement model (one factor per construct) was fitted to {sample} by {est}"
        + (f" with {miss}" if miss else "")
        + f" (N = {apa.fmt_int(fit.get('ntotal'))} of {apa.fmt_int(m.get('n_rows'))} rows; "
        + ("converged" if m.get("converged") else "did NOT converge")
        + (f" in {m.get('iterations')} iterations" if m.get("iterations") is not None else "") + ")."
        + (f" {why[:1].upper() + why[1:]}." if why else "") + " Fit: " + fit_sentence(fit, est) + ".")
    findings.tested.append(f"the measurement model by CFA (N = {apa.fmt_int(fit.get('ntotal'))})")
    sec.blocks.append(Table("cfa_fit", "Fit of the measurement model", fit_table(fit, cuts, est),
                            fit_table_note(fit, est, good, findings)))
    if good:
        for met, text in fit_checks(fit, cuts, est):
            findings.check(met, f"CFA: {text}")
    params = cfa.table("cfa_parameters.csv")
    if params is not None and {"lhs", "op", "rhs"} <= set(params.columns):
        load = params[params["op"].astype(str) == "=~"].copy()
        cols = {"lhs": "text", "rhs": "text", "est": "number", "se": "number", "std_all": "bounded", "pvalue": "p"}
        cols = {c: k for c, k in cols.items() if c in load}
        load["se"] = load["se"].where(load["se"] > 0) if "se" in load else np.nan
        table = apa.apa_table(load, cols, {"lhs": "Construct", "rhs": "Item", "est": "b", "se": "SE",
                                           "std_all": "β", "pvalue": "p"})
        sec.blocks.append(Table("cfa_loadings", "Standardised loadings of the measurement model", table,
                                "b = unstandardised loading (the first of each construct fixed at 1, no SE); β = "
                                "standardised loading (lavaan's std.all)."))
        if "std_all" in load and good:
            low = load[load["std_all"] < 0.5]
            findings.check(low.empty, "every standardised CFA loading is at least .50" if low.empty else
                           f"{len(low)} standardised CFA loadings below .50: "
                           + ", ".join(f"{r.rhs} ({apa.fmt_against(r.std_all, 0.5, bounded=True)})" for r in low.itertuples()))
    else:
        sec.blocks.append(absent(cfa, "cfa_parameters.csv"))
    mi = modindices_table(cfa.table("cfa_modindices.csv"))
    resid, over, pairs = residuals_table(cfa.table("cfa_residuals.csv"))
    if good and (mi is not None or resid is not None):
        text = ("Local misfit: " if mi is not None else "")
        if mi is not None:
            top = cfa.table("cfa_modindices.csv")["mi"].max()
            text += (f"the largest modification index ({findings.cite('sorbom1989')}) is {apa.fmt_number(top)} "
                     f"(Table {{table:cfa_modindices}})")
        if resid is not None:
            text += ("; " if mi is not None else "Local misfit: ") + (
                f"{apa.fmt_int(over)} of {apa.fmt_int(pairs)} standardized residuals exceed |z| = "
                f"{apa.fmt_number(RESIDUAL_CUT)} (Table {{table:cfa_residuals}})")
        sec.blocks.append(text + ".")
    sec.blocks += [t for t in (mi, resid) if t is not None]
    lines = stage_warnings(cfa, findings, "inadmissible")
    if not good:
        sec.blocks.append("The solution is inadmissible" + (":" if lines else " (the estimation did not converge)."))
        if lines:
            sec.blocks.append(lines)
        sec.blocks.append("Its fit, loadings and local misfit are shown for diagnosis only and are not interpreted; "
                          "respecify the model (or the data) before reading them.")
        findings.not_held.append("CFA: the solution is inadmissible; its fit and loadings are not interpreted")
    if m.get("converged") is False:
        findings.warnings.append("CFA: the estimation did not converge")
    return sec
