"""Reliability and validity: alpha, omega, CR, AVE, Fornell-Larcker, HTMT, common-method variance."""
from __future__ import annotations


import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, as_bool, ci_label, ci_level, lower_triangle, not_run, num, ok, pct, stage_warnings)
from pipeline.report.model import (SECTIONS, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["reliability_section", "method_factor_problems", "htmt_missing_note"]


def method_factor_problems(m: dict) -> list[str]:
    """Why the method-factor model is inadmissible (empty when it is admissible): its own
    ``admissible``/``converged`` keys, and the stage's warnings about it (Heywood cases,
    standardised loadings above 1, a non-positive-definite matrix)."""
    cmv = m.get("method_factor") or {}
    out = []
    if cmv.get("converged") is False:
        out.append("it did not converge")
    if cmv.get("identified") is False:
        out.append("its information matrix is singular at the solution (not identified)")
    notes = [str(w) for w in (m.get("warnings") or []) if str(w).startswith("method factor model:")]
    heywood = sum("Heywood" in w for w in notes)
    if heywood:
        out.append(f"{heywood} Heywood case(s): negative variances")
    above = sum("(> 1)" in w for w in notes)
    if above:
        out.append(f"{above} standardised loading(s) above 1")
    if any("not positive definite" in w for w in notes):
        out.append("a non-positive-definite latent covariance matrix")
    if cmv.get("admissible") is False and not out:
        out.append("flagged inadmissible by the reliability stage")
    return out


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
    if harman is not None:
        text = (f"Common-method variance ({findings.cite('podsakoff2003')}): the first unrotated factor of all items "
                f"accounts for {pct(harman)} of their variance (Harman's single-factor test; a share above 50% would "
                "signal a common-method problem).")
        cmv = m.get("method_factor")
        if isinstance(cmv, dict):
            problems = method_factor_problems(m)
            if problems:
                text += (" The model with an unmeasured latent method factor is inadmissible (" + "; ".join(problems)
                         + "), so its fit change and method variance are not interpreted.")
                findings.not_held.append("the method-factor model is inadmissible; common-method variance rests on "
                                         "Harman's test alone")
            else:
                text += (f" Adding an unmeasured latent method factor changes the fit by Δχ²({apa.fmt_df(cmv.get('df_difference'))})"
                         f" = {apa.fmt_number(cmv.get('chisq_difference'))}, {apa.fmt_p_text(cmv.get('pvalue'))}, ΔCFI = "
                         f"{apa.fmt_fit(cmv.get('cfi_change'))}; the method factor explains "
                         f"{pct(cmv.get('method_variance_share'))} of the items' variance on average.")
        sec.blocks.append(text)
        findings.check(num(harman) <= 0.5, f"Harman's single factor accounts for {pct(harman)} of the variance "
                       f"({'under' if num(harman) <= 0.5 else 'over'} 50%)")
    lines = stage_warnings(rel, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the reliability stage:")
        sec.blocks.append(lines)
    return sec

