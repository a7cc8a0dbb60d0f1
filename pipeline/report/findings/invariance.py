"""Measurement invariance: the configural-metric-scalar-strict ladder, latent means, paths by group."""
from __future__ import annotations


import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, as_bool, auto_table, not_run, num, ok, stage_warnings)
from pipeline.report.model import (INVARIANCE_STEPS, SECTIONS, Figure, Findings, Section, StageOutputs,
                                   Table)


def level_reached(m: dict, fit: pd.DataFrame | None) -> str | None:
    for key in ("level_reached", "level", "invariance_level", "highest_level"):
        if isinstance(m.get(key), str):
            return m[key]
    if fit is not None and {"model", "holds"} <= set(fit.columns):
        level = None
        for i, r in enumerate(fit.itertuples()):
            if i == 0 or as_bool(r.holds):
                level = str(r.model)
            else:
                break
        return level
    return None


def invariance_section(inv: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    sec = Section("invariance", SECTIONS["invariance"])
    fit = inv.table("invariance_fit.csv")
    if not inv.ran or fit is None:
        sec.ran = False
        sec.blocks.append(not_run(inv, findings) if not inv.ran else absent(inv, "invariance_fit.csv"))
        figures["invariance_ladder"] = Figure("invariance_ladder", "Invariance ladder",
                                              "placeholder", {"text": "Invariance stage not run"})
        return sec
    m = inv.metrics or {}
    fit = fit.copy()
    fit["_order"] = fit["model"].astype(str).str.lower().map({s: i for i, s in enumerate(INVARIANCE_STEPS)})
    fit = fit.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    groups = inv.table("invariance_groups.csv")
    group_col = m.get("group") or m.get("group_column")
    intro = "Measurement invariance was tested step by step (configural, metric, scalar, strict)"
    intro += f" across the groups of {group_col}" if group_col else " across groups"
    if m.get("estimator") or m.get("missing"):
        intro += f" by multi-group {m.get('estimator', 'ML')} ({m.get('missing', '')})"
    crit = m.get("criterion")
    cut = m.get("cutoffs") or {}
    rules = []
    if ok(cut.get("configural_cfi")) or ok(cut.get("configural_rmsea")):
        rules.append("the configural model must fit on its own (" + " and ".join(
            x for x in (f"CFI ≥ {apa.fmt_bounded(cut['configural_cfi'])}" if ok(cut.get("configural_cfi")) else "",
                        f"RMSEA ≤ {apa.fmt_number(cut['configural_rmsea'])}" if ok(cut.get("configural_rmsea")) else "")
            if x) + ")")
    if crit and "chisq" in str(crit) and ok(cut.get("alpha")):
        rules.append(f"a later step holds when its χ² difference test gives p ≥ {apa.fmt_p(cut['alpha'])}")
    elif ok(cut.get("delta_cfi")) or ok(cut.get("delta_rmsea")):
        dc = num(cut.get("delta_cfi"))
        rules.append("a later step holds when " + " and ".join(
            x for x in (f"ΔCFI ≥ {apa.fmt_number(-abs(dc), 3, bounded=True)}" if ok(dc) else "",
                        f"ΔRMSEA ≤ {apa.fmt_number(cut.get('delta_rmsea'), 3)}" if ok(cut.get("delta_rmsea")) else "")
            if x) + " (Chen, 2007)")
    rule = (" Criteria (" + str(crit) + "): " if crit else " Criteria: ") + "; ".join(rules) + "." if rules else ""
    sec.blocks.append(intro + "; each step is compared with the one before." + rule)
    findings.tested.append("measurement invariance" + (f" across {group_col}" if group_col else ""))
    if groups is not None and len(groups):
        spec = {c: k for c, k in {"group": "text", "n": "int", "used": "yes_no", "reason": "text"}.items() if c in groups}
        sec.blocks.append(Table("invariance_groups", "Groups compared", apa.apa_table(groups, spec, {
            "group": "Group", "n": "n", "used": "Used", "reason": "Reason"})))
        stage_lines = " ".join(str(w) for w in (m.get("warnings") or []))
        if "used" in groups:
            for r in groups[~groups["used"].map(as_bool)].itertuples():
                if str(r.group) in stage_lines and "left out" in stage_lines:
                    continue  # the stage's own warning says it
                reason = getattr(r, "reason", None)
                findings.warnings.append(f"invariance: group {r.group} (n = {apa.fmt_int(getattr(r, 'n', None))}) "
                                         "left out" + (f": {reason}" if isinstance(reason, str) and reason else ""))
    t = fit.copy()
    if {"rmsea_ci_lower", "rmsea_ci_upper"} <= set(t.columns):
        t["rmsea_ci"] = [apa.fmt_ci(a, b) for a, b in zip(t["rmsea_ci_lower"], t["rmsea_ci_upper"])]
    steps = m.get("steps") if isinstance(m.get("steps"), dict) else {}
    if steps:
        t["reason"] = [str((steps.get(str(x)) or {}).get("reason") or "") for x in t["model"]]
    spec = {"model": "text", "chisq": "number", "df": "df", "cfi": "bounded", "tli": "number", "rmsea": "number",
            "rmsea_ci": "text", "srmr": "number", "delta_chisq": "number", "delta_df": "df", "delta_pvalue": "p",
            "delta_cfi": "number", "delta_rmsea": "number", "delta_srmr": "number", "holds": "yes_no",
            "reason": "text"}
    spec = {c: k for c, k in spec.items() if c in t}
    for c in ("delta_cfi", "delta_rmsea", "delta_srmr"):  # small changes: three decimals, as is the custom
        if c in spec:
            spec[c] = (lambda v, b=(c == "delta_cfi"): apa.fmt_number(v, 3, bounded=b))
    sec.blocks.append(Table("invariance_fit", "The invariance ladder", apa.apa_table(t, spec, {
        "model": "Model", "chisq": "χ²", "df": "df", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA",
        "rmsea_ci": "90% CI", "srmr": "SRMR", "delta_chisq": "Δχ²", "delta_df": "Δdf", "delta_pvalue": "p",
        "delta_cfi": "ΔCFI", "delta_rmsea": "ΔRMSEA", "delta_srmr": "ΔSRMR", "holds": "Holds", "reason": "Why"}),
        "Each Δ compares a model with the one above it, with three decimals. Holds: this step and every step "
        "before it meet the criteria."))
    figures["invariance_ladder"] = Figure("invariance_ladder", "The invariance ladder: fit at each step",
                                          "invariance_ladder", {"fit": fit, "cuts": cuts},
                                          "CFI and RMSEA of each model; dashed lines at the cut-offs.")
    sec.blocks.append(figures["invariance_ladder"])
    level = level_reached(m, fit)
    if level == "none":
        sec.blocks.append("Not even configural invariance holds: the groups do not share the factor structure.")
    elif level:
        partial = " (partial invariance: " + ", ".join(m.get("partial") or []) + " free)" if m.get("partial_invariance") else ""
        sec.blocks.append(f"Invariance holds up to the **{level}** level{partial}.")
    if "holds" in fit:  # each step that holds, then the first that does not (the later ones cannot)
        for r in fit.itertuples():
            if not ok(r.holds) and not isinstance(r.holds, (bool, str)):
                continue
            if as_bool(r.holds):
                findings.held.append(f"{r.model} invariance holds")
                continue
            why = str((steps.get(str(r.model)) or {}).get("reason") or "")
            findings.not_held.append(f"{r.model} invariance does not hold" + (f" ({why})" if why else "")
                                     + ("; the steps above it are not reached" if str(r.model) != INVARIANCE_STEPS[-1] else ""))
            break
    means = inv.table("invariance_latent_means.csv")
    if means is not None and len(means):
        sec.blocks.append(Table("invariance_latent_means", "Latent mean differences from the reference group",
                                auto_table(means), "Estimated under the scalar model (means of the reference "
                                "group fixed at 0)."))
    structural = m.get("structural") if isinstance(m.get("structural"), dict) else {}
    if structural.get("answer"):
        sec.blocks.append(f"Structural paths across groups: {structural['answer']}.")
    elif structural.get("reason"):
        sec.blocks.append(f"Structural paths were not compared across groups: {structural['reason']}.")
    paths = inv.table("invariance_paths.csv")
    if paths is not None and len(paths):
        sec.blocks.append(Table("invariance_paths", "Structural paths by group", auto_table(paths),
                                "Wald tests of equality across groups; pvalue_holm adjusted for the number of paths."))
    lines = stage_warnings(inv, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the invariance stage:")
        sec.blocks.append(lines)
    return sec

