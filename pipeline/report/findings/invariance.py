"""Measurement invariance: the configural-metric-scalar-strict ladder, latent means, paths by group."""
from __future__ import annotations


import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (SCALED_ESTIMATORS, absent, as_bool, ci_label, figure_gap, not_run,
                                             num, ok, stage_warnings)
from pipeline.report.model import (INVARIANCE_STEPS, SECTIONS, Figure, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["invariance_section", "index_suffix", "step_reason", "latent_means_table", "paths_by_group_table",
           "structural_sentence", "level_reached", "contrast_lines"]


def contrast_lines(contrasts: list, alpha=None) -> list[str]:
    """One line per directional group hypothesis of invariance.json's ``contrasts``: the path,
    the groups compared, the difference with its interval, z and the Holm-adjusted one-sided p,
    and whether it is supported (or why it was not tested)."""
    out = []
    for c in contrasts:
        if not isinstance(c, dict):
            continue
        word = "larger" if c.get("direction") == "larger_in" else "smaller"
        head = (f"{c.get('hypothesis')} {c.get('parameter')} ({c.get('lhs')} ~ {c.get('rhs')}): {word} in "
                f"{c.get('groups')} than in {c.get('than')}")
        note = c.get("note") or ""
        if c.get("supported") is None:
            out.append(f"{head}: not tested" + (f" ({note})" if note else ""))
            continue
        ci = apa.fmt_ci(c.get("ci_lower"), c.get("ci_upper"))
        p = apa.fmt_p_text(c.get("pvalue_holm")).removeprefix("p ").strip()
        out.append(f"{head}: difference of b = {apa.fmt_number(c.get('est'))}"
                   + (f", {ci_label(1 - num(alpha) if ok(alpha) else None)} {ci}" if ci else "")
                   + f", z = {apa.fmt_number(c.get('z'))}, one-sided p (Holm) {p}: "
                   + ("supported" if c.get("supported") else "not supported") + (f" ({note})" if note else ""))
    return out

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


def index_suffix(fit: pd.DataFrame, estimator) -> str:
    """``"_robust"`` or ``"_scaled"`` when the estimator is scaled and the ladder has those
    columns filled, else ``""`` (the standard indices)."""
    if str(estimator or "").upper() not in SCALED_ESTIMATORS:
        return ""
    for sfx in ("_robust", "_scaled"):
        if "cfi" + sfx in fit and pd.to_numeric(fit["cfi" + sfx], errors="coerce").notna().any():
            return sfx
    return ""


def step_reason(row: dict, crit, cut: dict, steps: dict) -> str:
    """Why a step does not hold, from its numbers and the criteria (APA-formatted); the stage's
    own reason when the numbers do not show it; empty for a step that holds."""
    if as_bool(row.get("holds")) or row.get("holds") is None or (not isinstance(row.get("holds"), (bool, str))
                                                                  and not ok(row.get("holds"))):
        return ""
    out = []
    if crit and "chisq" in str(crit):
        p, a = num(row.get("delta_pvalue")), num(cut.get("alpha"))
        if ok(p) and ok(a) and p < a:
            out.append(f"Δχ²({apa.fmt_df(row.get('delta_df'))}) = {apa.fmt_number(row.get('delta_chisq'))}, "
                       f"{apa.fmt_p_text(p)}")
    else:
        dc, dr = num(row.get("delta_cfi")), num(row.get("delta_rmsea"))
        if ok(dc) and ok(cut.get("delta_cfi")) and dc < -abs(num(cut["delta_cfi"])):
            out.append(f"ΔCFI = {apa.fmt_fit(dc)} < {apa.fmt_fit(-abs(num(cut['delta_cfi'])))}")
        if ok(dr) and ok(cut.get("delta_rmsea")) and dr > num(cut["delta_rmsea"]):
            out.append(f"ΔRMSEA = {apa.fmt_fit(dr)} > {apa.fmt_fit(cut['delta_rmsea'])}")
    if not out and str(row.get("model")) == "configural":
        c, r = num(row.get("cfi")), num(row.get("rmsea"))
        if ok(c) and ok(cut.get("configural_cfi")) and c < num(cut["configural_cfi"]):
            out.append(f"CFI = {apa.fmt_fit(c)} < {apa.fmt_fit(cut['configural_cfi'])}")
        if ok(r) and ok(cut.get("configural_rmsea")) and r > num(cut["configural_rmsea"]):
            out.append(f"RMSEA = {apa.fmt_fit(r)} > {apa.fmt_fit(cut['configural_rmsea'])}")
    if out:
        return "; ".join(out)
    reason = str((steps.get(str(row.get("model"))) or {}).get("reason") or "")
    return apa.apa_p_in_text(reason) if reason else "a step below it does not hold"


def latent_means_table(means: pd.DataFrame) -> Table | None:
    """Latent mean differences from the reference group, one row per latent variable and a pair of
    columns (difference, p) per compared group, instead of one row per latent and group."""
    est = "est" if "est" in means else "mean" if "mean" in means else None
    if est is None or not {"latent", "group"} <= set(means.columns):
        return None
    groups = list(dict.fromkeys(means["group"].astype(str)))
    latents = list(dict.fromkeys(means["latent"].astype(str)))
    rows = []
    by = {(str(r["latent"]), str(r["group"])): r for r in means.to_dict("records")}
    for lat in latents:
        row = {"Latent variable": lat}
        for g in groups:
            r = by.get((lat, g), {})
            row[f"Δ ({g})"] = apa.fmt_number(r.get(est))
            if "std_all" in means:
                row[f"d ({g})"] = apa.fmt_number(r.get("std_all"))
            if "pvalue" in means:
                row[f"p ({g})"] = apa.fmt_p(r.get("pvalue"))
        rows.append(row)
    ref = ""
    if "reference" in means and means["reference"].notna().any():
        ref = str(means["reference"].dropna().iloc[0])
    return Table("invariance_latent_means", "Latent mean differences from the reference group",
                 pd.DataFrame(rows, dtype=object),
                 "Estimated under the scalar model, the latent means of the reference group"
                 + (f" ({ref})" if ref else "") + " fixed at 0. Δ = difference in the latent variable's units"
                 + ("; d = the difference in units of the latent variable's SD in that group (lavaan's std.all)"
                    if "std_all" in means else "")
                 + "; p of the z test.")


def paths_by_group_table(paths: pd.DataFrame, findings: Findings) -> Table | None:
    """Each structural path once, its standardised coefficient in each group side by side, then the
    Wald test of equality across groups (and its Holm-adjusted p)."""
    if not {"lhs", "rhs", "group"} <= set(paths.columns):
        return None
    p = paths.copy()
    p["path"] = p["lhs"].astype(str) + " ← " + p["rhs"].astype(str)
    groups = list(dict.fromkeys(p["group"].astype(str)))
    value = "std_all" if "std_all" in p else "est"
    rows = []
    for path, sub in p.groupby("path", sort=False):
        r0 = sub.iloc[0]
        row = {"Path": path}
        by = {str(g): r for g, r in zip(sub["group"].astype(str), sub.to_dict("records"))}
        for g in groups:
            r = by.get(g, {})
            row[f"β ({g})" if value == "std_all" else f"b ({g})"] = (
                apa.fmt_number(r.get(value), bounded=value == "std_all") + apa.stars(r.get("pvalue")))
        if "wald_chisq" in p:
            row["Wald χ²"] = apa.fmt_number(r0.get("wald_chisq"))
        if "wald_df" in p:
            row["df"] = apa.fmt_df(r0.get("wald_df"))
        if "wald_pvalue" in p:
            row["p"] = apa.fmt_p(r0.get("wald_pvalue"))
        if "pvalue_holm" in p:
            row["p (Holm)"] = apa.fmt_p(r0.get("pvalue_holm"))
        if "differs" in p:
            row["Differs"] = apa.fmt_yes_no(r0.get("differs"))
        rows.append(row)
    note = (("β = standardised coefficient (std.all) in each group" if value == "std_all" else
             "b = coefficient in each group") + "; * p < .05, ** p < .01, *** p < .001.")
    if "wald_chisq" in p:
        note += " Wald test of the path's equality across the groups."
    if "pvalue_holm" in p:
        note += f" p (Holm): adjusted for the number of paths ({findings.cite('holm1979')})."
    return Table("invariance_paths", "Structural paths by group", pd.DataFrame(rows, dtype=object), note)


def structural_sentence(structural: dict) -> str:
    """The comparison of the structural paths across groups, from its numbers (the stage's own
    ``answer`` text when it gave no numbers)."""
    if not structural:
        return ""
    if structural.get("compared") is False or (structural.get("reason") and not structural.get("answer")):
        return (f"Structural paths were not compared across groups: {structural['reason']}."
                if structural.get("reason") else "")
    if ok(structural.get("delta_chisq")):
        n, nd = structural.get("n_paths"), structural.get("n_paths_differ")
        text = (f"Structural paths across groups: constraining the {apa.fmt_int(n) + ' ' if ok(n) else ''}paths "
                f"equal across groups changes the fit by Δχ²({apa.fmt_df(structural.get('delta_df'))}) = "
                f"{apa.fmt_number(structural.get('delta_chisq'))}, {apa.fmt_p_text(structural.get('delta_pvalue'))}")
        if ok(structural.get("delta_cfi")):
            text += f", ΔCFI = {apa.fmt_fit(structural['delta_cfi'])}"
        if ok(structural.get("delta_rmsea")):
            text += f", ΔRMSEA = {apa.fmt_fit(structural['delta_rmsea'])}"
        differ = structural.get("paths_differ")
        if differ is True:
            listed = ", ".join(str(x) for x in structural.get("paths_differing") or [])
            text += (": the paths differ between groups" + (f" ({apa.fmt_int(nd)} of {apa.fmt_int(n)} by their Wald "
                     "tests" + (f": {listed}" if listed else "") + ")" if ok(nd) and ok(n) else ""))
        elif differ is False:
            text += ": no evidence that the paths differ between groups"
        return text + "."
    if structural.get("answer"):
        return f"Structural paths across groups: {apa.apa_p_in_text(structural['answer'])}."
    return ""


def invariance_section(inv: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    """Measurement invariance: the criteria, the groups, the ladder (robust or scaled indices for a
    scaled estimator) with why a step does not hold, the ladder figure, the level reached, latent
    means and structural paths by group (wide: one row per latent variable or path).

    Parameters
    ----------
    inv : StageOutputs
        What the invariance stage wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).
    cuts : dict
        The report's cut-offs (params.yaml report:).
    figures : dict
        Filled with the ladder figure (a placeholder when it cannot be drawn).

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("invariance", SECTIONS["invariance"])
    fit = inv.table("invariance_fit.csv")
    if not inv.ran or fit is None:
        sec.ran = False
        sec.blocks.append(not_run(inv, findings) if not inv.ran else absent(inv, "invariance_fit.csv"))
        sec.blocks.append(figure_gap(figures, "invariance_ladder", "the invariance ladder",
                                     "the invariance stage was not run" if not inv.ran else
                                     f"{inv.where('invariance_fit.csv')} is absent"))
        return sec
    m = inv.metrics or {}
    fit = fit.copy()
    fit["_order"] = fit["model"].astype(str).str.lower().map({s: i for i, s in enumerate(INVARIANCE_STEPS)})
    fit = fit.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    groups = inv.table("invariance_groups.csv")
    group_col = m.get("group") or m.get("group_column")
    intro = (f"Measurement invariance ({findings.cite('vandenberg2000')}) was tested step by step (configural, metric, "
             "scalar, strict)")
    intro += f" across the groups of {group_col}" if group_col else " across groups"
    if m.get("estimator") or m.get("missing"):
        intro += f" by multi-group {m.get('estimator', 'ML')} ({m.get('missing', '')})"
    crit = m.get("criterion")
    cut = m.get("cutoffs") or {}
    sfx = index_suffix(fit, m.get("estimator"))
    scaled = str(m.get("estimator") or "").upper() in SCALED_ESTIMATORS
    rules = []
    if ok(cut.get("configural_cfi")) or ok(cut.get("configural_rmsea")):
        rules.append("the configural model must fit on its own (" + " and ".join(
            x for x in (f"CFI ≥ {apa.fmt_bounded(cut['configural_cfi'])}" if ok(cut.get("configural_cfi")) else "",
                        f"RMSEA ≤ {apa.fmt_bounded(cut['configural_rmsea'])}" if ok(cut.get("configural_rmsea")) else "")
            if x) + ")")
    if crit and "chisq" in str(crit) and ok(cut.get("alpha")):
        rules.append(f"a later step holds when its χ² difference test gives p ≥ {apa.fmt_p(cut['alpha'])}"
                     + (f" ({findings.cite('satorra2001')})" if scaled else ""))
    elif ok(cut.get("delta_cfi")) or ok(cut.get("delta_rmsea")):
        dc = num(cut.get("delta_cfi"))
        rules.append("a later step holds when " + " and ".join(
            x for x in (f"ΔCFI ≥ {apa.fmt_fit(-abs(dc))}" if ok(dc) else "",
                        f"ΔRMSEA ≤ {apa.fmt_fit(cut.get('delta_rmsea'))}" if ok(cut.get("delta_rmsea")) else "")
            if x) + f" ({findings.cite('chen2007')})")
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
    lo, hi = "rmsea_ci_lower" + sfx, "rmsea_ci_upper" + sfx
    if {lo, hi} <= set(t.columns):
        t["rmsea_ci"] = [apa.fmt_fit_ci(a, b) for a, b in zip(t[lo], t[hi])]
    steps = m.get("steps") if isinstance(m.get("steps"), dict) else {}
    t["reason"] = [step_reason(r, crit, cut, steps) for r in t.to_dict("records")]
    kind = {"_robust": " (robust)", "_scaled": " (scaled)"}.get(sfx, "")
    chisq_col = "chisq_scaled" if scaled and "chisq_scaled" in t and t["chisq_scaled"].notna().any() else "chisq"
    spec = {"model": "text", chisq_col: "number", "df": "df", "cfi" + sfx: "fit", "tli" + sfx: "fit",
            "rmsea" + sfx: "fit", "rmsea_ci": "text", "srmr": "fit", "delta_chisq": "number", "delta_df": "df",
            "delta_pvalue": "p", "delta_cfi": "fit", "delta_rmsea": "fit", "delta_srmr": "fit", "holds": "yes_no",
            "reason": "text"}
    spec = {c: k for c, k in spec.items() if c in t}
    if not t["reason"].astype(bool).any():
        spec.pop("reason", None)
    sec.blocks.append(Table("invariance_fit", "The invariance ladder", apa.apa_table(t, spec, {
        "model": "Model", chisq_col: "χ²" + (" (scaled)" if chisq_col != "chisq" else ""), "df": "df",
        "cfi" + sfx: "CFI" + kind, "tli" + sfx: "TLI" + kind, "rmsea" + sfx: "RMSEA" + kind,
        "rmsea_ci": "90% CI", "srmr": "SRMR", "delta_chisq": "Δχ²", "delta_df": "Δdf", "delta_pvalue": "p",
        "delta_cfi": "ΔCFI", "delta_rmsea": "ΔRMSEA", "delta_srmr": "ΔSRMR", "holds": "Holds", "reason": "Why not"}),
        "Each Δ compares a model with the one above it. Holds: this step and every step before it meet the criteria."))
    figures["invariance_ladder"] = Figure("invariance_ladder", "The invariance ladder: fit at each step",
                                          "invariance_ladder", {"fit": fit, "cuts": cuts, "suffix": sfx},
                                          "CFI and RMSEA of each model; dashed lines at the cut-offs.")
    sec.blocks.append(figures["invariance_ladder"])
    level = level_reached(m, fit)
    if level == "none":
        sec.blocks.append("Not even configural invariance holds: the groups do not share the factor structure.")
    elif level:
        partial = " (partial invariance: " + ", ".join(m.get("partial") or []) + " free)" if m.get("partial_invariance") else ""
        sec.blocks.append(f"Invariance holds up to the **{level}** level{partial}.")
    if "holds" in fit:  # each step that holds, then the first that does not (the later ones cannot)
        for r in fit.to_dict("records"):
            h = r.get("holds")
            if not ok(h) and not isinstance(h, (bool, str)):
                continue
            if as_bool(h):
                findings.held.append(f"{r['model']} invariance holds")
                continue
            why = step_reason(r, crit, cut, steps)
            findings.not_held.append(f"{r['model']} invariance does not hold" + (f" ({why})" if why else "")
                                     + ("; the steps above it are not reached" if str(r["model"]) != INVARIANCE_STEPS[-1] else ""))
            break
    means = inv.table("invariance_latent_means.csv")
    if means is not None and len(means):
        table = latent_means_table(means)
        if table is not None:
            sec.blocks.append(table)
    structural = m.get("structural") if isinstance(m.get("structural"), dict) else {}
    sentence = structural_sentence(structural)
    if sentence:
        sec.blocks.append(sentence)
    paths = inv.table("invariance_paths.csv")
    if paths is not None and len(paths):
        table = paths_by_group_table(paths, findings)
        if table is not None:
            sec.blocks.append(table)
    contrasts = contrast_lines(m.get("contrasts") or [], (m.get("cutoffs") or {}).get("alpha"))
    if contrasts:
        sec.blocks.append("Directional hypotheses about the paths across groups (the hypotheses file's groups parts: "
                          "the mean of a path over some groups minus its mean over others in the model with free "
                          f"paths, one-sided, Holm-adjusted, {findings.cite('holm1979')}):")
        sec.blocks.append(contrasts)
    lines = stage_warnings(inv, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the invariance stage:")
        sec.blocks.append(lines)
    return sec

