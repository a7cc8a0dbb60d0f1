"""Confirmatory factor analysis: fit of the measurement model and its loadings."""
from __future__ import annotations

import numpy as np

from analysis import apa
from pipeline.report.findings.common import (absent, fit_checks, fit_table,
                                             not_run, stage_warnings)
from pipeline.report.model import (SECTIONS, Findings, Section, StageOutputs,
                                   Table)


def cfa_section(cfa: StageOutputs, findings: Findings, cuts: dict) -> Section:
    sec = Section("cfa", SECTIONS["cfa"])
    if cfa.metrics is None:
        sec.ran = False
        sec.blocks.append(not_run(cfa, findings))
        return sec
    m = cfa.metrics
    fit = m.get("fit") or {}
    sec.blocks.append(
        f"The measurement model (one factor per construct) was fitted to the CFA half by {m.get('estimator')} with "
        f"{m.get('missing')} handling of missing data (N = {apa.fmt_int(fit.get('ntotal'))} of "
        f"{apa.fmt_int(m.get('n_rows'))} rows; {'converged' if m.get('converged') else 'did NOT converge'} in "
        f"{m.get('iterations')} iterations): {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}.")
    findings.tested.append(f"the measurement model by CFA (N = {apa.fmt_int(fit.get('ntotal'))})")
    sec.blocks.append(Table("cfa_fit", "Fit of the measurement model", fit_table(fit, cuts, m.get("estimator")),
                            "Cut-offs of Hu and Bentler (1999), set in params.yaml (report:). RMSEA with its 90% "
                            "confidence interval."))
    for met, text in fit_checks(fit, cuts, m.get("estimator")):
        findings.check(met, f"CFA: {text}")
    params = cfa.table("cfa_parameters.csv")
    if params is not None and {"lhs", "op", "rhs"} <= set(params.columns):
        load = params[params["op"] == "=~"].copy()
        cols = {"lhs": "text", "rhs": "text", "est": "number", "se": "number", "std_all": "bounded", "pvalue": "p"}
        cols = {c: k for c, k in cols.items() if c in load}
        load["se"] = load["se"].where(load["se"] > 0) if "se" in load else np.nan
        table = apa.apa_table(load, cols, {"lhs": "Construct", "rhs": "Item", "est": "b", "se": "SE",
                                           "std_all": "β", "pvalue": "p"})
        sec.blocks.append(Table("cfa_loadings", "Standardised loadings of the measurement model", table,
                                "b = unstandardised loading (the first of each construct fixed at 1, no SE); β = "
                                "standardised loading (lavaan's std.all)."))
        if "std_all" in load:
            low = load[load["std_all"] < 0.5]
            findings.check(low.empty, "every standardised CFA loading is at least .50" if low.empty else
                           f"{len(low)} standardised CFA loadings below .50: "
                           + ", ".join(f"{r.rhs} ({apa.fmt_against(r.std_all, 0.5, bounded=True)})" for r in low.itertuples()))
    else:
        sec.blocks.append(absent(cfa, "cfa_parameters.csv"))
    lines = stage_warnings(cfa, findings, "inadmissible")
    if lines:
        sec.blocks.append("The solution is inadmissible:")
        sec.blocks.append(lines)
    if m.get("converged") is False:
        findings.warnings.append("CFA: the estimation did not converge")
    return sec

