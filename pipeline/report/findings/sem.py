"""The structural model: fit, paths, R², indirect effects, hypotheses, competing models."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, admissible, as_bool, ci_label, estimator_reason, figure_gap,
                                             fit_checks, fit_sentence, fit_table, fit_table_note, not_run, num,
                                             ok, stage_warnings)
from pipeline.report.model import (SECTIONS, Figure, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["sem_section", "bootstrap_keys", "bootstrap_used", "part_evidence", "OTHER_PARTS"]

# Parts of a hypothesis that are not a parameter's sign (analysis/hypotheses.py): their numbers are
# in other units (an HTMT, a correlation, a contrast of group paths), so the table shows them in
# the Evidence column instead of the b, β and CI columns of the structural paths.
OTHER_PARTS = ("htmt", "chisq", "group_difference", "invariance", "paths_differ")


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def part_evidence(row, level) -> str:
    """The evidence of one part of a hypothesis (a row of sem_hypotheses.csv) in APA form: the
    HTMT and its bootstrap interval; the correlation of two constructs and the chi-square test of
    it fixed at +-1 (or a cut-off); the contrast of a path between groups with its interval, z and
    one-sided Holm-adjusted p; the measurement-invariance level; "not tested" with the reason.
    Empty for a parameter's sign (its own columns show it)."""
    part = _text(row.get("part"))
    note = _text(row.get("note"))
    if part not in OTHER_PARTS:
        return ""
    if not ok(row.get("supported")) and row.get("supported") not in (True, False, "True", "False"):
        if part != "invariance" or not _text(row.get("path")):
            return "not tested" + (f": {note}" if note else "")
    ci = apa.fmt_ci(row.get("ci_lower"), row.get("ci_upper"))
    if part == "htmt":
        text = f"HTMT = {apa.fmt_number(row.get('est'))}" + (f", {ci_label(level)} {ci} (bootstrap)" if ci else "")
    elif part == "chisq":
        text = (f"r = {apa.fmt_number(row.get('est'), 2, bounded=True)}; constrained: "
                f"Δ{apa.fmt_chisq(row.get('statistic'), row.get('df'), row.get('pvalue'))}")
    elif part == "group_difference":
        text = (f"difference of b = {apa.fmt_number(row.get('est'))}" + (f", {ci_label(level)} {ci}" if ci else "")
                + f", z = {apa.fmt_number(row.get('statistic'))}, one-sided p (Holm) "
                + apa.fmt_p_text(row.get("pvalue")).removeprefix("p ").strip())
    elif part == "paths_differ":
        text = apa.apa_p_in_text(_text(row.get("path")))
    else:
        text = _text(row.get("path"))
    return text + (f" ({note})" if note else "")


def bootstrap_keys(defined: pd.DataFrame, interval: str) -> list[str]:
    """The references behind the bootstrap intervals reported: percentile intervals (Preacher &
    Hayes, 2008) and, when bias-corrected ones are shown or used, Efron and Tibshirani (1993)."""
    bc = interval == "boot_bc" or (len(defined) > 0 and {"boot_bc_lower", "boot_bc_upper"} <= set(defined.columns))
    return ["preacher2008"] + (["efron1993"] if bc else [])


def bootstrap_used(defined: pd.DataFrame, interval: str, hypotheses: pd.DataFrame | None) -> bool:
    """Something reported rests on the bootstrap draws: a defined effect (:=) with its bootstrap
    intervals, or hypotheses judged by a bootstrap interval."""
    return len(defined) > 0 or (interval.startswith("boot") and hypotheses is not None and len(hypotheses) > 0)


def _other_parts_note(hyp: pd.DataFrame, findings: Findings) -> str:
    """The table note's sentences for the parts beyond a parameter's sign that the table has."""
    parts = set(hyp["part"].astype(str)) if "part" in hyp else set()
    out = []
    if "htmt" in parts:
        out.append("HTMT: supported when the upper limit of its bootstrap interval (reliability stage) is below the "
                   f"cut-off the hypotheses file sets ({findings.cite('henseler2015')}).")
    if "chisq" in parts:
        out.append("Distinct constructs: the CFA of the two constructs with their correlation fixed at ±1 (or the "
                   "file's cut-off) against free, by the chi-square difference on 1 df "
                   f"({findings.cite('anderson1988', 'ronkko2022')}); supported when it fits significantly worse (p "
                   "below 1 minus the level of the intervals).")
    if "group_difference" in parts:
        out.append("Group differences: the mean of the unstandardised path over the first groups minus its mean "
                   "over the others (each group weighted once) in the invariance stage's multigroup model (loadings "
                   "equal, paths free), one-sided, Holm-adjusted over the hypothesis' paths "
                   f"({findings.cite('holm1979')}).")
    return " " + " ".join(out) if out else ""


def sem_section(sem: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    """The structural model: estimator and fit, what the bootstrap draws are for (only when
    something uses them), paths, R² of the latent variables, indirect effects, hypotheses,
    competing models and the path diagram. An inadmissible solution draws no conclusion.

    Parameters
    ----------
    sem : StageOutputs
        What the sem stage wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).
    cuts : dict
        The report's cut-offs (params.yaml report:).
    figures : dict
        Filled with the path diagram (a placeholder when it cannot be drawn).

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("sem", SECTIONS["sem"])
    params = sem.table("sem_parameters.csv")
    if not sem.ran or params is None:
        sec.ran = False
        sec.blocks.append(not_run(sem, findings) if not sem.ran else absent(sem, "sem_parameters.csv"))
        sec.blocks.append(figure_gap(figures, "path_diagram", "the path diagram",
                                     "the structural model (sem stage) was not run" if not sem.ran else
                                     f"{sem.where('sem_parameters.csv')} is absent"))
        return sec
    m = sem.metrics or {}
    fit = m.get("fit") or {}
    boot = m.get("bootstrap") or {}
    findings.tested.append("the structural model and its hypotheses")
    good = admissible(m)
    est = m.get("estimator")
    p = params.copy()
    for c in ("lhs", "op", "rhs"):
        p[c] = p[c].astype(str).str.strip()
    defined = p[p["op"] == ":="].copy()
    why = estimator_reason(m, findings)
    missing = str(m.get("missing") or "")
    text = "The hypothesised structural model was fitted to " + (
        f"{m['source']}" if m.get("source") else "the data") + (f" by {est}" if est else "") + (
        f" with full-information maximum likelihood for missing answers ({findings.cite('arbuckle1996')})"
        if missing == "fiml" else f" ({missing})" if missing else "")
    text += (f" (N = {apa.fmt_int(fit.get('ntotal'))})." if fit else ".") + (
        f" {why[:1].upper() + why[1:]}." if why else "")
    if fit:
        text += f" Fit: {fit_sentence(fit, est)}."
    draws = boot.get("draws", boot.get("requested"))
    interval = str(m.get("interval") or "")
    hyp_table = sem.table("sem_hypotheses.csv")
    uses_boot = bootstrap_used(defined, interval, hyp_table)
    if boot and draws and uses_boot:
        failed, inadmissible = boot.get("failed"), boot.get("inadmissible")
        what = ("indirect and total effects (the model's defined parameters)" if len(defined) else
                "the hypothesised parameters")
        kinds = []
        if len(defined) and {"boot_pct_lower", "boot_pct_upper"} <= set(defined.columns):
            kinds.append("percentile")
        if len(defined) and {"boot_bc_lower", "boot_bc_upper"} <= set(defined.columns):
            kinds.append("bias-corrected")
        refs = bootstrap_keys(defined, interval)
        text += (f" Confidence intervals of {what} come from {apa.fmt_int(draws)} bootstrap draws "
                 f"({findings.cite(*refs)})"
                 + (f", of which {apa.fmt_int(failed)} failed (did not converge) and were left out" if failed else "")
                 + (f"; {apa.fmt_int(inadmissible)} gave an inadmissible solution" if inadmissible else "")
                 + (f": {' and '.join(kinds)} intervals" if kinds else "")
                 + (f" (the hypotheses use the {'percentile' if interval == 'boot_pct' else 'bias-corrected' if interval == 'boot_bc' else interval} interval)"
                    if interval.startswith("boot") else "")
                 + ".")
        stage_lines = " ".join(str(w) for w in (m.get("warnings") or []))
        if failed and "bootstrap" not in stage_lines:
            findings.warnings.append(f"structural model (sem): {apa.fmt_int(failed)} of {apa.fmt_int(draws)} "
                                     "bootstrap draws failed")
        if inadmissible:
            findings.warnings.append(f"structural model (sem): {apa.fmt_int(inadmissible)} of {apa.fmt_int(draws)} "
                                     "bootstrap draws gave an inadmissible solution")
    sec.blocks.append(text)
    if not good:
        sec.blocks.append("The structural model's solution is inadmissible (see its warnings below): its fit, paths, "
                          "effects and hypotheses are shown for diagnosis only and are not interpreted.")
        findings.not_held.append("structural model: the solution is inadmissible; its paths and hypotheses are not "
                                 "interpreted")
    if fit:
        sec.blocks.append(Table("sem_fit", "Fit of the structural model", fit_table(fit, cuts, est),
                                fit_table_note(fit, est, good, findings)))
        if good:
            for met, t in fit_checks(fit, cuts, est):
                findings.check(met, f"structural model: {t}")
    paths = p[p["op"] == "~"].copy()
    if len(paths):
        if {"ci_lower", "ci_upper"} <= set(paths.columns):
            paths["ci"] = [apa.fmt_ci(a, b) for a, b in zip(paths["ci_lower"], paths["ci_upper"])]
        spec = {"lhs": "text", "rhs": "text", "label": "text", "est": "number", "se": "number", "std_all": "bounded",
                "pvalue": "p", "ci": "text"}
        spec = {c: k for c, k in spec.items() if c in paths}
        sec.blocks.append(Table("sem_paths", "Structural paths", apa.apa_table(paths, spec, {
            "lhs": "Outcome", "rhs": "Predictor", "label": "Label", "est": "b", "se": "SE", "std_all": "β",
            "pvalue": "p", "ci": ci_label(m.get("ci")) + " (Wald, b)"}), "b = unstandardised, β = standardised coefficient (std.all)."))
    r2 = sem.table("sem_r2.csv")
    latents = set(p.loc[p["op"] == "=~", "lhs"])
    if r2 is not None and {"variable", "r2"} <= set(r2.columns):
        shown = r2[r2["variable"].astype(str).isin(latents)] if latents else r2
        sec.blocks.append(Table("sem_r2", "Variance explained (R²) in the latent variables",
                                apa.apa_table(shown, {"variable": "text", "r2": "bounded"}, {"variable": "Variable", "r2": "R²"}),
                                "For endogenous factors and the first-order factors of a second-order factor; "
                                "sem_r2.csv also has every indicator's R²."))
    elif r2 is None:
        sec.blocks.append(absent(sem, "sem_r2.csv"))
    if len(defined):
        for a, b, name in (("boot_pct_lower", "boot_pct_upper", "pct"), ("boot_bc_lower", "boot_bc_upper", "bc"),
                           ("ci_lower", "ci_upper", "ci")):
            if {a, b} <= set(defined.columns):
                defined[name] = [apa.fmt_ci(x, y, 3) for x, y in zip(defined[a], defined[b])]
        three = (lambda v: apa.fmt_number(v, 3))
        spec = {"lhs": "text", "rhs": "text", "est": three, "std_all": (lambda v: apa.fmt_number(v, 3, bounded=True)),
                "se": three, "boot_se": three, "pvalue": "p", "pct": "text", "bc": "text"}
        if "pct" not in defined and "ci" in defined:
            spec["ci"] = "text"
        spec = {c: k for c, k in spec.items() if c in defined}
        sec.blocks.append(Table("sem_indirect", "Indirect and total effects", apa.apa_table(defined, spec, {
            "lhs": "Effect", "rhs": "Definition", "est": "b", "std_all": "β", "se": "SE", "boot_se": "Bootstrap SE",
            "pvalue": "p",
            "pct": ci_label(m.get("ci")) + " (percentile bootstrap)",
            "bc": ci_label(m.get("ci")) + " (bias-corrected bootstrap)", "ci": ci_label(m.get("ci"))}),
            "Defined parameters (:=) of the model: products of path coefficients, with three decimals because "
            "they are small. An effect is supported when its bootstrap interval excludes zero."))
        if {"boot_pct_lower", "boot_pct_upper"} <= set(defined.columns) and good:
            for r in defined.itertuples():
                excl = ok(r.boot_pct_lower) and (num(r.boot_pct_lower) > 0 or num(r.boot_pct_upper) < 0)
                ci = f"[{apa.fmt_against(r.boot_pct_lower, 0, 3)}, {apa.fmt_against(r.boot_pct_upper, 0, 3)}]"
                findings.check(excl, f"indirect effect {r.lhs} {'differs' if excl else 'does not differ'} from zero "
                               f"(b = {apa.fmt_against(getattr(r, 'est', np.nan), 0, 3)}, percentile bootstrap "
                               f"{ci_label(m.get('ci'))} {ci}; β = "
                               f"{apa.fmt_against(getattr(r, 'std_all', np.nan), 0, 3, bounded=True)})")
    hyp = sem.table("sem_hypotheses.csv")
    if hyp is not None and len(hyp):
        h = hyp.copy()
        other = h["part"].astype(str).isin(OTHER_PARTS) if "part" in h else pd.Series(False, index=h.index)
        if other.any():  # the parts in other units: their numbers in the Evidence column only
            h["evidence"] = [part_evidence(r, m.get("ci")) for r in hyp.to_dict("records")]
            for c in ("est", "std_all", "ci_lower", "ci_upper", "pvalue"):
                if c in h:
                    h.loc[other, c] = np.nan
            h.loc[other, "path"] = [_text(x) if k in ("group_difference", "chisq", "htmt") else ""
                                    for x, k in zip(h.loc[other, "path"], h.loc[other, "part"].astype(str))]
            untested = h["supported"].isna() if "supported" in h else pd.Series(False, index=h.index)
            h["supported"] = h["supported"].astype(object).where(~untested, "not tested")
        defined_names = set(p.loc[p["op"] == ":=", "lhs"])
        small = h["parameter"].astype(str).isin(defined_names) if "parameter" in h else pd.Series(False, index=h.index)
        if {"ci_lower", "ci_upper"} <= set(h.columns):
            h["ci"] = [apa.fmt_ci(a, b, 3 if sm else 2) for a, b, sm in zip(h["ci_lower"], h["ci_upper"], small)]
        for c, bounded in (("std_all", True), ("est", False)):  # defined effects (products) with three decimals
            if c in h:
                h[c] = [apa.fmt_number(v, 3 if sm else 2, bounded=bounded) for v, sm in zip(h[c], small)]
        if "hypothesis" in h:  # a hypothesis tested on several parameters: its name, statement and verdict once
            repeat = h["hypothesis"].astype(str).eq(h["hypothesis"].astype(str).shift())
            for c in ("hypothesis", "statement", "verdict"):
                if c in h:
                    h[c] = h[c].astype(object).where(~repeat, "")
        for c in ("statement", "path", "verdict"):  # stage-written text: its p values in APA form
            if c in h:
                h[c] = [apa.apa_p_in_text(v) if isinstance(v, str) else v for v in h[c]]
        sesoi = "min_effect" in h and pd.to_numeric(h["min_effect"], errors="coerce").notna().any()
        shares = "share" in h and pd.to_numeric(h["share"], errors="coerce").notna().any()
        spec = {"hypothesis": "text", "statement": "text", "parameter": "text", "path": "text", "expected": "text",
                "std_all": "text", "est": "text", "ci": "text", "pvalue": "p",
                **({"min_effect": "bounded"} if sesoi else {}), **({"share": "number"} if shares else {}),
                **({"evidence": "text"} if other.any() else {}), "supported": "yes_no", "verdict": "text"}
        spec = {c: k for c, k in spec.items() if c in h}
        sec.blocks.append(Table("sem_hypotheses", "Hypotheses", apa.apa_table(h, spec, {
            "hypothesis": "Hypothesis", "statement": "Statement", "parameter": "Parameter", "path": "Path",
            "expected": "Expected", "std_all": "β", "est": "b", "ci": ci_label(m.get("ci")), "pvalue": "p",
            "min_effect": "Smallest β of interest", "share": "Share of total", "evidence": "Evidence",
            "supported": "Supported", "verdict": "Verdict"}), "Supported: the parameter's estimate has the expected "
            "sign and its interval excludes zero" + (", and |β| reaches the smallest effect of interest the "
                                                     "hypotheses file sets" if sesoi else "")
            + "; Verdict: the hypothesis as a whole (not fully tested: every part tested is supported, but a part "
            "could not be tested). Defined effects (:=) with three decimals."
            + (" Share of total: the indirect effect as a proportion of the total effect it belongs to."
               if shares else "") + (_other_parts_note(hyp, findings) if other.any() else "")))
        verdicts = {}
        if "verdict" in hyp:
            for r in hyp.drop_duplicates("hypothesis").itertuples():
                verdicts[str(r.hypothesis)] = str(r.verdict)
        elif "supported" in hyp:
            for name, rows in hyp.groupby("hypothesis", sort=False):
                held = rows["supported"].map(as_bool)
                verdicts[str(name)] = "supported" if held.all() else "partly supported" if held.any() else "not supported"
        by = {}
        for name, v in verdicts.items():
            by.setdefault(v, []).append(name)
        findings.numbers.update(hypotheses=len(verdicts), hypotheses_supported=len(by.get("supported", [])))
        if not good:
            by = {}
        if by.get("supported"):
            findings.held.append("hypotheses supported: " + ", ".join(by["supported"]))
        for v, names in by.items():
            if v != "supported":
                findings.not_held.append(f"hypotheses {v}: " + ", ".join(names))
    elif hyp is None:
        sec.blocks.append(absent(sem, "sem_hypotheses.csv"))
    comp = sem.table("sem_competing.csv")
    if comp is not None and len(comp):
        spec = {"model": "text", "npar": "int", "chisq": "number", "df": "df", "cfi": "fit", "tli": "fit",
                "rmsea": "fit", "srmr": "fit", "aic": "number", "bic": "number", "delta_chisq": "number",
                "delta_df": "df", "delta_pvalue": "p", "preferred": "yes_no"}
        spec = {c: k for c, k in spec.items() if c in comp}
        sec.blocks.append(Table("sem_competing", "Competing models", apa.apa_table(comp, spec, {
            "model": "Model", "npar": "Parameters", "chisq": "χ²", "df": "df", "cfi": "CFI", "tli": "TLI",
            "rmsea": "RMSEA", "srmr": "SRMR",
            "aic": "AIC", "bic": "BIC", "delta_chisq": "Δχ²", "delta_df": "Δdf", "delta_pvalue": "p",
            "preferred": "Preferred"}), "Δ against the hypothesised model; lower AIC and BIC are better."))
        if "preferred" in comp:
            pref = [str(x) for x in comp.loc[comp["preferred"].map(as_bool), "model"]]
            if pref:
                sec.blocks.append(f"Preferred model: {', '.join(pref)}.")
    figures["path_diagram"] = Figure("path_diagram", "Path diagram of the structural model",
                                     "path_diagram", {"params": p, "r2": r2},
                                     "Standardised coefficients (std.all); the note under the diagram gives the "
                                     "significance marks and what is not drawn.")
    sec.blocks.append(figures["path_diagram"])
    lines = stage_warnings(sem, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the structural model:")
        sec.blocks.append(lines)
    return sec

