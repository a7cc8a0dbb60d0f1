"""Reliability and validity: alpha, omega, CR, AVE, Fornell-Larcker, HTMT, common-method variance."""
from __future__ import annotations


import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, as_bool, ci_label, ci_level, lower_triangle, not_run, num, ok, pct, stage_warnings)
from pipeline.report.model import (SECTIONS, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["reliability_section", "method_factor_problems", "cmv_blocks", "htmt_missing_note"]


def method_factor_problems(m: dict) -> list[str]:
    """Why each unmeasured-method-factor variant the stage fitted is inadmissible (``cmv`` of
    reliability.json: one line per inadmissible variant with its reasons; empty when all are
    admissible or none was fitted)."""
    variants = ((m.get("cmv") or {}).get("method_factor") or {}).get("variants") or []
    return [f"{v.get('variant')}: {v.get('reasons') or 'inadmissible'}" for v in variants if not v.get("admissible")]


def cmv_blocks(rel: StageOutputs, findings: Findings) -> list:
    """The common-method-variance part of the section: Harman's test as a convention with its
    caveat, the unmeasured method factor (each variant's admissibility; the admissible one
    interpreted), and with a marker construct the CFA marker technique's model sequence and
    tests (Williams et al., 2010), Lindell & Whitney's adjusted correlations and the
    method-adjusted structural paths; without a marker, a sentence saying so."""
    m = rel.metrics or {}
    blocks: list = []
    harman = m.get("harman_first_factor_share")
    if harman is None:
        return blocks
    cmv = m.get("cmv") or {}
    blocks.append(f"**Common-method variance.** Harman's single-factor test is reported as a convention only "
                  f"({findings.cite('podsakoff2003')}): the first unrotated component of all items accounts for "
                  f"{pct(harman)} of their variance. The test is insensitive: a share below 50% does not show that "
                  "common-method variance is absent, so the conclusions below rest on the model-based tests.")
    variants = (cmv.get("method_factor") or {}).get("variants") or []
    for v in variants:
        name = {"equal": "with one equal method loading", "free": "with free method loadings",
                "fixed_correlations": "with free method loadings and the construct correlations fixed at the CFA's"
                }.get(v.get("variant"), v.get("variant"))
        if not v.get("admissible"):
            blocks.append(f"The unmeasured latent method factor model {name} is inadmissible "
                          f"({v.get('reasons') or 'see cmv_models.csv'}), so it is not interpreted.")
            findings.not_held.append(f"the unmeasured method factor model ({v.get('variant')}) is inadmissible")
        else:
            blocks.append(f"The unmeasured latent method factor model {name} is admissible: adding the method factor "
                          f"changes the fit by Δχ²({apa.fmt_df(v.get('delta_df'))}) = "
                          f"{apa.fmt_number(v.get('delta_chisq'))}, {apa.fmt_p_text(v.get('delta_pvalue'))}; the "
                          f"method factor accounts for {pct(v.get('method_variance_share'))} of the items' variance on "
                          "average.")
    if variants and not any(v.get("admissible") for v in variants):
        blocks.append("An admissible variant fixes the construct correlations at their CFA values "
                      "(reliability.method_variants: fixed_correlations), so the method factor can only take what "
                      "the CFA leaves in the items' residual covariances.")
    marker = cmv.get("marker")
    if not marker:
        note = cmv.get("marker_note") or "the instrument has no marker construct"
        blocks.append(f"No marker variable: {note}. A marker construct (theoretically unrelated to the model, "
                      f"marker: true in the instrument) would allow the CFA marker technique "
                      f"({findings.cite('williams2010')}).")
        return blocks
    fits, tests = rel.table("cmv_models.csv"), rel.table("cmv_tests.csv")
    if fits is not None and "family" in fits:
        f = fits[fits["family"] == "marker"].copy()
        names = {"cfa": "CFA", "baseline": "Baseline", "method_c": "Method-C", "method_u": "Method-U",
                 "method_r": "Method-R"}
        f["model"] = f["model"].map(names).fillna(f["model"])
        blocks.append(Table("cmv_marker_models", "CFA marker technique: models",
                            apa.apa_table(f, {"model": "text", "chisq": "number", "df": "int", "cfi": "fit",
                                              "rmsea": "fit"},
                                          {"model": "Model", "chisq": "χ²", "df": "df", "cfi": "CFI",
                                           "rmsea": "RMSEA"}),
                            f"The marker construct {marker.get('construct')} (items {', '.join(marker.get('items') or [])}) "
                            f"measured the method ({findings.cite('williams2010')}): Baseline fixes its loadings and "
                            "error variances at the CFA's and keeps it orthogonal; Method-C adds one equal loading on "
                            "every substantive item, Method-U free loadings; Method-R fixes the construct correlations "
                            "at Baseline's."))
    if tests is not None and "family" in tests:
        t = tests[tests["family"] == "marker"].copy()
        t["test"] = [apa.fmt_chisq(c, d, p) for c, d, p in zip(t["delta_chisq"], t["delta_df"], t["delta_pvalue"])]
        blocks.append(Table("cmv_marker_tests", "CFA marker technique: chi-square difference tests",
                            apa.apa_table(t, {"comparison": "text", "test": "text", "decision": "text"},
                                          {"comparison": "Comparison", "test": "Δχ² test", "decision": "Decision"}),
                            "Decisions as Williams et al. describe them: Method-C against Baseline (is there method "
                            "variance?), Method-U against Method-C (are the method effects equal?), Method-R against the "
                            "retained model (does the method bias the construct correlations?)."))
    blocks.append(f"The marker technique {'found' if marker.get('method_detected') else 'did not find'} method variance "
                  f"in the substantive items; the method accounts for {pct(marker.get('method_variance_share'))} of "
                  f"their variance on average, and it {'biases' if marker.get('correlations_biased') else 'does not bias'}"
                  " the construct correlations. The marker-variable adjustment of the construct-score correlations "
                  f"({findings.cite('lindell2001')}), with r_M = {apa.fmt_number(marker.get('r_marker'), bounded=True)} "
                  "(the smallest positive correlation of the marker's score with a construct score), leaves "
                  f"{apa.fmt_int(marker.get('lw_significant_adjusted'))} of {apa.fmt_int(marker.get('lw_pairs'))} construct "
                  f"correlations significant ({apa.fmt_int(marker.get('lw_significant_unadjusted'))} before); the mean "
                  f"absolute change is {apa.fmt_number(marker.get('lw_mean_abs_change'), bounded=True)} "
                  "(cmv_lindell_whitney.csv).")
    findings.check(not marker.get("correlations_biased"), "common-method variance does not bias the construct "
                   "correlations (CFA marker technique)" if not marker.get("correlations_biased") else
                   "common-method variance biases the construct correlations (CFA marker technique)")
    paths = rel.table("cmv_paths.csv")
    if paths is not None and len(paths) and "std_all_unadjusted" in paths:
        p = paths.copy()
        p["path"] = p["lhs"] + " ← " + p["rhs"]
        blocks.append(Table("cmv_paths", "Structural paths with and without the method effect",
                            apa.apa_table(p, {"path": "text", "std_all_unadjusted": "number",
                                              "std_all_adjusted": "number", "std_all_difference": "number"},
                                          {"path": "Path", "std_all_unadjusted": "β unadjusted",
                                           "std_all_adjusted": "β method-adjusted", "std_all_difference": "Difference"}),
                            "Standardised paths of the structural model with the marker factor orthogonal (unadjusted) "
                            "and with its loadings on every item fixed at the retained method model's "
                            f"({findings.cite('williams2010', 'richardson2009')}); fitted on the reliability stage's "
                            "data and missing-data treatment."))
    return blocks


def htmt_missing_note(m: dict) -> str:
    """How the HTMT treated missing answers, against the rest of the analysis (reliability.json's
    ``htmt_missing`` and ``missing``)."""
    hm, missing = m.get("htmt_missing"), m.get("missing")
    if hm is None:
        return ""
    if hm == "ml" and missing == "fiml":
        return (" Correlations for the HTMT from the FIML (EM) estimate of the item covariances, the same treatment "
                "of missing answers as the CFA (semTools::htmt(missing = \"ml\")).")
    if missing and ((hm == "ml") != (missing == "fiml")):
        return (f" The HTMT used {hm} treatment of missing answers, the CFA {missing}: the two rest on different "
                "missing-data treatments.")
    return f" Missing answers: {hm} for the HTMT, as for the CFA."


def reliability_section(rel: StageOutputs, findings: Findings, cuts: dict, labels: dict) -> Section:
    """Reliability and validity: alpha (Feldt interval), omega, CR, AVE, the construct correlations
    with sqrt(AVE) on the diagonal, HTMT (and its missing-data treatment against the CFA's), and
    common-method variance; an inadmissible method-factor model is named and not interpreted.

    Parameters
    ----------
    rel : StageOutputs
        What the reliability stage wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).
    cuts : dict
        The report's cut-offs (params.yaml report:).
    labels : dict
        Construct id -> label, from the instrument.

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("reliability", SECTIONS["reliability"])
    if rel.metrics is None:
        sec.ran = False
        sec.blocks.append(not_run(rel, findings))
        return sec
    m = rel.metrics
    findings.tested.append("reliability and convergent and discriminant validity")
    table = rel.table("reliability.csv")
    rmin, amin, hmax = cuts["reliability_min"], cuts["ave_min"], cuts["htmt_max"]
    if table is not None and "construct" in table:
        t = table.copy()
        flags = []
        for r in t.itertuples():
            f = []
            for col, name in (("raw_alpha", "α"), ("omega", "ω"), ("cr", "CR")):
                if ok(getattr(r, col, None)) and num(getattr(r, col)) < rmin:
                    f.append(f"{name} {apa.fmt_against(getattr(r, col), rmin, bounded=True)} < {apa.fmt_bounded(rmin)}")
            if ok(getattr(r, "ave", None)) and num(r.ave) < amin:
                f.append(f"AVE {apa.fmt_against(r.ave, amin, bounded=True)} < {apa.fmt_bounded(amin)}")
            if "fornell_larcker_met" in t and not as_bool(r.fornell_larcker_met):
                f.append("Fornell–Larcker not met")
            flags.append("; ".join(f))
        t["flags"] = flags
        if labels:
            t.insert(1, "label", t["construct"].map(labels).fillna(""))
        if {"feldt_lower", "feldt_upper"} <= set(t.columns):
            t["alpha_ci"] = [apa.fmt_ci(a, b, bounded=True) for a, b in zip(t["feldt_lower"], t["feldt_upper"])]
        spec = {"construct": "text", "label": "text", "n_items": "int", "raw_alpha": "bounded", "alpha_ci": "text",
                "omega": "bounded", "cr": "bounded", "ave": "bounded", "sqrt_ave": "bounded",
                "max_abs_correlation": "bounded", "flags": "text"}
        spec = {c: k for c, k in spec.items() if c in t}
        sec.blocks.append(Table(
            "reliability", "Reliability and convergent validity",
            apa.apa_table(t, spec, {"construct": "Construct", "label": "Label", "n_items": "k", "raw_alpha": "α",
                                    "alpha_ci": ci_label(m.get("ci")), "omega": "ω", "cr": "CR", "ave": "AVE",
                                    "sqrt_ave": "√AVE", "max_abs_correlation": "Max. |r|", "flags": "Below cut-off"}),
            f"α = Cronbach's alpha ({findings.cite('cronbach1951')}) with Feldt's confidence interval "
            f"({findings.cite('feldt1987')}; level: {ci_level(m.get('ci'))}); ω = omega from the fitted model "
            f"({findings.cite('mcdonald1999')}); CR = composite reliability; AVE = average variance extracted "
            f"({findings.cite('fornell1981')}); Max. |r| = the largest latent correlation. Cut-offs: α, ω, CR ≥ "
            f"{apa.fmt_bounded(rmin)} ({findings.cite('nunnally1994')}); AVE ≥ {apa.fmt_bounded(amin)}."))
        for col, name in (("raw_alpha", "alpha"), ("omega", "omega"), ("cr", "CR")):
            if col in t:
                low = t[t[col] < rmin]
                findings.check(low.empty, f"{name} ≥ {apa.fmt_bounded(rmin)} for every construct" if low.empty else
                               f"{name} < {apa.fmt_bounded(rmin)} for " + ", ".join(
                                   f"{r.construct} ({apa.fmt_against(getattr(r, col), rmin, bounded=True)})"
                                   for r in low.itertuples()))
        if "ave" in t:
            low = t[t["ave"] < amin]
            findings.check(low.empty, f"AVE ≥ {apa.fmt_bounded(amin)} for every construct" if low.empty else
                           f"AVE < {apa.fmt_bounded(amin)} for " + ", ".join(
                               f"{r.construct} ({apa.fmt_against(r.ave, amin, bounded=True)})" for r in low.itertuples()))
    else:
        sec.blocks.append(absent(rel, "reliability.csv"))

    cc = rel.table("construct_correlations.csv")
    fl = rel.table("fornell_larcker.csv")
    violations = m.get("fornell_larcker_violations") or []
    if cc is not None and len(cc) and len(cc.columns) > 1:
        first = cc.columns[0]
        names = [str(c) for c in cc[first]]
        matrix = cc.set_index(first)[[c for c in cc.columns[1:] if str(c) in names]]
        matrix.index = [str(i) for i in matrix.index]
        matrix.columns = [str(c) for c in matrix.columns]
        diag = {n: matrix.at[n, n] for n in names if n in matrix.columns}
        sec.blocks.append(Table("construct_correlations", "Construct correlations with √AVE on the diagonal",
                                lower_triangle(matrix, names, bounded=True, diagonal=diag),
                                "Diagonal: √AVE; below it: latent correlations. The Fornell–Larcker criterion "
                                f"({findings.cite('fornell1981')}) is met when each construct's √AVE exceeds its "
                                "correlations with every other construct."))
    elif fl is not None and "construct" in fl:
        names = [str(c) for c in fl["construct"]]
        matrix = fl.set_index("construct")[names]
        diag = dict(zip(fl["construct"], fl["sqrt_ave"])) if "sqrt_ave" in fl else None
        sec.blocks.append(Table("fornell_larcker", "Fornell–Larcker criterion",
                                lower_triangle(matrix, names, bounded=True, diagonal=diag),
                                "Diagonal: √AVE; below the diagonal: latent correlations. The criterion "
                                f"({findings.cite('fornell1981')}) is met when each construct's √AVE exceeds its "
                                "correlations with every other construct."))
    else:
        sec.blocks.append(absent(rel, "fornell_larcker.csv"))
    if (cc is not None and len(cc)) or (fl is not None and "construct" in fl):
        findings.check(not violations, "Fornell–Larcker criterion met for every construct" if not violations else
                       "Fornell–Larcker criterion not met for " + ", ".join(violations))

    ht = rel.table("htmt.csv")
    if ht is not None and {"construct_1", "construct_2", "htmt"} <= set(ht.columns):
        names = list(dict.fromkeys(list(ht["construct_1"]) + list(ht["construct_2"])))
        matrix = pd.DataFrame(np.nan, index=names, columns=names)
        for r in ht.itertuples():
            matrix.at[r.construct_1, r.construct_2] = matrix.at[r.construct_2, r.construct_1] = r.htmt
        sec.blocks.append(Table("htmt", "Heterotrait–monotrait ratios (HTMT)", lower_triangle(matrix, names, False),
                                f"HTMT2 ({findings.cite('roemer2021')}; semTools::htmt). Discriminant validity is "
                                f"supported below {apa.fmt_number(hmax)} ({findings.cite('henseler2015')})."
                                + htmt_missing_note(m)))
        top = ht.sort_values("htmt", ascending=False).head(10).copy()
        top["pair"] = top["construct_1"] + " – " + top["construct_2"]
        spec = {"pair": "text", "htmt": "number"}
        if {"ci_lower", "ci_upper"} <= set(top.columns):
            top["ci"] = [apa.fmt_ci(a, b) for a, b in zip(top["ci_lower"], top["ci_upper"])]
            spec["ci"] = "text"
        if "n_boot_valid" in top:
            spec["n_boot_valid"] = "int"
        sec.blocks.append(Table("htmt_highest", "The highest HTMT ratios with bootstrap intervals",
                                apa.apa_table(top, spec, {"pair": "Constructs", "htmt": "HTMT",
                                                          "ci": ci_label(m.get("ci")) + " (percentile bootstrap)",
                                                          "n_boot_valid": "Valid draws"}),
                                "htmt.csv has every pair with its interval."))
        over = ht[ht["htmt"] >= hmax]
        findings.check(over.empty, f"HTMT < {apa.fmt_number(hmax)} for every pair of constructs (highest "
                       f"{apa.fmt_number(ht['htmt'].max())}, {m.get('highest_htmt_pair', '')})" if over.empty else
                       f"HTMT ≥ {apa.fmt_number(hmax)} for " + ", ".join(
                           f"{r.construct_1}–{r.construct_2} ({apa.fmt_against(r.htmt, hmax)})" for r in over.itertuples()))
        if "ci_upper" in ht:
            over_ci = ht[ht["ci_upper"] >= 1]
            if not over_ci.empty:
                findings.not_held.append("HTMT interval reaches 1 for " + ", ".join(
                    f"{r.construct_1}–{r.construct_2}" for r in over_ci.itertuples()))
        if "n_boot_valid" in ht and ht["n_boot_valid"].nunique() == 1:
            valid = int(ht["n_boot_valid"].iloc[0])
            sec.blocks.append(f"The HTMT intervals rest on {apa.fmt_int(valid)} valid bootstrap draws.")
    else:
        sec.blocks.append(absent(rel, "htmt.csv"))

    harman = m.get("harman_first_factor_share")
    sec.blocks += cmv_blocks(rel, findings)
    if harman is not None:
        findings.check(num(harman) <= 0.5, f"Harman's single factor accounts for {pct(harman)} of the variance "
                       f"({'under' if num(harman) <= 0.5 else 'over'} 50%; a convention only)")
    lines = stage_warnings(rel, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the reliability stage:")
        sec.blocks.append(lines)
    return sec

