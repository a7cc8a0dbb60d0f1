"""Exploratory factor analysis: suitability, number of factors, the rotated solution."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import absent, as_bool, figure_gap, not_run, num, ok, pct, stage_warnings
from pipeline.report.model import (SECTIONS, Figure, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["efa_section", "nonconvergence"]


def nonconvergence(m: dict) -> str:
    """Which part of the EFA did not converge: the stage's ``extraction_converged`` and
    ``rotation_converged`` when it wrote them, else its warnings (the extraction's say
    "extraction"/"factoring did not converge", the rotation's name the rotation), else a sentence
    that says it cannot tell."""
    parts = []
    if "extraction_converged" in m or "rotation_converged" in m:
        if m.get("extraction_converged") is False:
            parts.append(f"the {m.get('extraction') or ''} extraction".replace("  ", " "))
        if m.get("rotation_converged") is False:
            parts.append(f"the {m.get('rotation') or ''} rotation".replace("  ", " "))
    else:
        text = " ".join(str(w) for w in (m.get("warnings") or [])).lower()
        rotation = str(m.get("rotation") or "rotation").lower()
        if "extraction did not converge" in text or "factoring did not converge" in text:
            parts.append(f"the {m.get('extraction')} extraction")
        if f"{rotation} did not converge" in text or "rotation did not converge" in text:
            parts.append(f"the {m.get('rotation')} rotation")
    if not parts:
        return "the solution did not converge (efa.json does not say whether the extraction or the rotation)"
    return " and ".join(parts) + (" did not converge")


def efa_section(efa: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    """Exploratory factor analysis: suitability (KMO, Bartlett), the number of factors by each
    criterion, the retained solution's fit and convergence (naming the part that did not converge),
    the loadings table, the scree and loadings figures, flagged items.

    Parameters
    ----------
    efa : StageOutputs
        What the efa stage wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).
    cuts : dict
        The report's cut-offs (params.yaml report:).
    figures : dict
        Filled with the figures by key (a placeholder where one cannot be drawn).

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("efa", SECTIONS["efa"])
    if efa.metrics is None:
        sec.ran = False
        sec.blocks.append(not_run(efa, findings))
        sec.blocks.append(figure_gap(figures, "scree", "the scree plot", "the EFA stage was not run"))
        sec.blocks.append(figure_gap(figures, "loadings", "the EFA loadings", "the EFA stage was not run"))
        return sec
    m = efa.metrics
    nf = m.get("n_factors") or {}
    b = m.get("bartlett") or {}
    corr = str(m.get("correlation") or "")
    extraction, rotation = str(m.get("extraction") or ""), str(m.get("rotation") or "")
    method_refs = {"polychoric": "olsson1979", "minres": "harman1966", "oblimin": "jennrich1966",
                   "varimax": "kaiser1958", "promax": "hendrickson1964"}

    def named(x):
        return f"{x} ({findings.cite(method_refs[x])})" if x in method_refs else x

    sec.blocks.append(
        f"The exploratory factor analysis used the EFA half (N = {apa.fmt_int(m.get('n'))}, {apa.fmt_int(m.get('items'))} "
        f"items): {named(corr)} correlations, {named(extraction)} extraction and {named(rotation)} rotation. "
        f"The data suit factoring: KMO = {apa.fmt_bounded(m.get('kmo'))} ({findings.cite('kaiser1974')}; lowest item, "
        f"{m.get('kmo_min_item_id')}: {apa.fmt_bounded(m.get('kmo_min_item'))}) and Bartlett's test of sphericity "
        f"({findings.cite('bartlett1950')}) {apa.fmt_chisq(b.get('chisq'), b.get('df'), b.get('pvalue'))}.")
    findings.tested.append(f"the factor structure, first by EFA (N = {apa.fmt_int(m.get('n'))})")
    findings.check(num(m.get("kmo")) >= 0.60, f"KMO = {apa.fmt_bounded(m.get('kmo'))} "
                   f"({'at least' if num(m.get('kmo')) >= 0.60 else 'below'} .60, the usual floor for factoring)")
    rows = [("Parallel analysis, factor eigenvalues", nf.get("parallel_fa")),
            ("Parallel analysis, component eigenvalues", nf.get("parallel_pc")),
            ("Velicer's MAP", nf.get("map")),
            ("Kaiser rule (eigenvalues > 1)", nf.get("kaiser")),
            ("Constructs in the instrument", nf.get("constructs")),
            ("Retained" + (" (set in params.yaml)" if nf.get("rule") == "params" else f", by {nf.get('rule')}"
                       if nf.get("rule") else ""), nf.get("used"))]
    refs = [k for k, v in (("horn1965", nf.get("parallel_fa")), ("velicer1976", nf.get("map")),
                           ("kaiser1960", nf.get("kaiser"))) if v is not None]
    sec.blocks.append(Table("factor_count", "How many factors: what each criterion suggests",
                            pd.DataFrame([{"Criterion": a, "Factors": apa.fmt_int(v)} for a, v in rows if v is not None],
                                         dtype=object),
                            f"Parallel analysis with {m.get('correlation')} correlations of permuted data; a factor is "
                            "retained while its observed eigenvalue exceeds the random ones' percentile"
                            + (f" ({findings.cite(*refs)})." if refs else ".")))
    if nf.get("constructs") is not None and nf.get("parallel_fa") is not None:
        same = nf["parallel_fa"] == nf["constructs"]
        findings.check(same, f"parallel analysis suggests {nf['parallel_fa']} factors for {nf['constructs']} constructs")
    fit = m.get("fit") or {}
    sec.blocks.append(
        f"The {nf.get('used')}-factor solution: {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}, "
        f"TLI = {apa.fmt_fit(fit.get('tli'))}, RMSEA = {apa.fmt_fit(fit.get('rmsea'))} "
        f"{apa.fmt_fit_ci(fit.get('rmsea_ci_lower'), fit.get('rmsea_ci_upper'))}, RMSR = "
        f"{apa.fmt_fit(fit.get('rms'))}, BIC = {apa.fmt_number(fit.get('bic'))}"
        + ("" if m.get("converged", True) else "; " + nonconvergence(m)) + ".")
    var = efa.table("efa_variance.csv")
    if var is not None and "cumulative_var" in var and len(var):
        sec.blocks.append(f"The factors account for {pct(var['cumulative_var'].iloc[-1])} of the item variance.")

    scree = efa.table("efa_scree.csv")
    if scree is not None and {"factor", "observed_fa", "random_fa"} <= set(scree.columns):
        figures["scree"] = Figure("scree", "Scree plot with the parallel-analysis curve",
                                  "scree", {"scree": scree, "n_used": nf.get("used")},
                                  "Observed eigenvalues against the parallel-analysis percentile of eigenvalues of "
                                  f"random (permuted) data; {nf.get('used')} factors retained.")
        sec.blocks.append(figures["scree"])
    else:
        sec.blocks.append(figure_gap(figures, "scree", "the scree plot", f"{efa.where('efa_scree.csv')} is absent"))

    loadings = efa.table("efa_loadings.csv")
    diag = efa.table("efa_diagnostics.csv")
    construct_of = dict(zip(diag["item"], diag["construct"])) if diag is not None and "construct" in diag else {}
    if loadings is not None and "item" in loadings:
        factors = [c for c in loadings.columns if re.fullmatch(r"F\d+", str(c))]
        hide = cuts["hide_loadings_below"]
        fmt = {"item": "text"}
        frame = loadings.copy()
        if construct_of:
            frame.insert(1, "construct", frame["item"].map(construct_of))
            fmt["construct"] = "text"
        for f in factors:
            fmt[f] = (lambda v, hide=hide: apa.fmt_bounded(v) if ok(v) and abs(num(v)) >= hide else "")
        for c, kind in (("h2", "bounded"), ("complexity", "number")):
            if c in frame:
                fmt[c] = kind
        table = apa.apa_table(frame, fmt, {"item": "Item", "construct": "Construct", "h2": "h²",
                                           "complexity": "Complexity"})
        sec.blocks.append(Table("efa_loadings", "Rotated factor loadings", table,
                                f"{m.get('extraction')} extraction, {m.get('rotation')} rotation, "
                                f"{m.get('correlation')} correlations. Loadings with absolute value below "
                                f"{apa.fmt_bounded(hide)} are left blank (efa_loadings.csv has every loading). "
                                "h² = communality; Complexity = Hofmann's index."))
        figures["loadings"] = Figure("loadings", "Heat map of the rotated loadings",
                                     "loadings", {"loadings": loadings, "factors": factors, "construct_of": construct_of},
                                     "Items sorted by their primary factor (psych::fa.sort); red positive, blue negative.")
        sec.blocks.append(figures["loadings"])
        values = loadings[factors].abs()
        prim = values.max(axis=1)
        cross = values.apply(lambda r: r.nlargest(2).iloc[-1] if len(r) > 1 else 0.0, axis=1)
        findings.numbers.update(efa_mean_primary_loading=float(prim.mean()), efa_max_cross_loading=float(cross.max()))
    else:
        sec.blocks.append(absent(efa, "efa_loadings.csv"))
        sec.blocks.append(figure_gap(figures, "loadings", "the EFA loadings", f"{efa.where('efa_loadings.csv')} is absent"))
    corr = efa.table("efa_factor_correlations.csv")
    if corr is not None and "factor" in corr and len(corr) > 1:
        r = corr.set_index("factor").to_numpy(dtype=float)
        off = np.abs(r[~np.eye(len(r), dtype=bool)])
        findings.numbers["efa_max_abs_factor_correlation"] = float(off.max())
        sec.blocks.append(f"The largest factor correlation is {apa.fmt_bounded(off.max())} in absolute value "
                          "(efa_factor_correlations.csv has them all).")
    agreement = m.get("structure_agreement")
    flagged = m.get("flagged_items")
    if agreement is not None:
        findings.check(num(agreement) >= 1, f"{pct(agreement, 0)} of the items load highest on their own "
                       "construct's factor")
    if flagged is not None:
        if diag is not None and "flagged" in diag and flagged:
            bad = diag[diag["flagged"].map(as_bool)]
            sec.blocks.append("Items flagged by the diagnostics (efa_diagnostics.csv; none is dropped unless "
                              "efa.drop_items names it):")
            sec.blocks.append([f"{r.item} ({r.construct}): {r.reasons}" for r in bad.itertuples()])
        count = "no item" if not flagged else f"{apa.fmt_int(flagged)} item(s)"
        findings.check(not flagged, f"{count} flagged by the EFA item diagnostics (weak primary loading, "
                       "cross-loading, low communality)")
    stage_warnings(efa, findings, "warnings")
    return sec

