"""Reliability and validity: alpha, omega, CR, AVE, Fornell-Larcker, HTMT, common-method variance."""
from __future__ import annotations


import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, as_bool, ci_label, ci_level, lower_triangle, not_run, num, ok, pct, stage_warnings)
from pipeline.report.model import (SECTIONS, Findings, Section, StageOutputs,
                                   Table)


def reliability_section(rel: StageOutputs, findings: Findings, cuts: dict, labels: dict) -> Section:
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
            f"α = Cronbach's alpha with Feldt's confidence interval (level: {ci_level(m.get('ci'))}); ω = omega from the fitted model (semTools::compRelSEM); CR = "
            f"composite reliability; AVE = average variance extracted; Max. |r| = the largest latent correlation. "
            f"Cut-offs: α, ω, CR ≥ {apa.fmt_bounded(rmin)}; AVE ≥ {apa.fmt_bounded(amin)}."))
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

    fl = rel.table("fornell_larcker.csv")
    if fl is not None and "construct" in fl:
        names = [str(c) for c in fl["construct"]]
        matrix = fl.set_index("construct")[names]
        diag = dict(zip(fl["construct"], fl["sqrt_ave"])) if "sqrt_ave" in fl else None
        sec.blocks.append(Table("fornell_larcker", "Fornell–Larcker criterion",
                                lower_triangle(matrix, names, bounded=True, diagonal=diag),
                                "Diagonal: √AVE; below the diagonal: latent correlations. The criterion is met when "
                                "each construct's √AVE exceeds its correlations with every other construct."))
        violations = m.get("fornell_larcker_violations") or []
        findings.check(not violations, "Fornell–Larcker criterion met for every construct" if not violations else
                       "Fornell–Larcker criterion not met for " + ", ".join(violations))
    else:
        sec.blocks.append(absent(rel, "fornell_larcker.csv"))

    ht = rel.table("htmt.csv")
    if ht is not None and {"construct_1", "construct_2", "htmt"} <= set(ht.columns):
        names = list(dict.fromkeys(list(ht["construct_1"]) + list(ht["construct_2"])))
        matrix = pd.DataFrame(np.nan, index=names, columns=names)
        for r in ht.itertuples():
            matrix.at[r.construct_1, r.construct_2] = matrix.at[r.construct_2, r.construct_1] = r.htmt
        sec.blocks.append(Table("htmt", "Heterotrait–monotrait ratios (HTMT)", lower_triangle(matrix, names, False),
                                f"HTMT2 (semTools::htmt). Discriminant validity is supported below "
                                f"{apa.fmt_number(hmax)} (Henseler et al., 2015)."))
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
        text = (f"Common-method variance: the first unrotated factor of all items accounts for {pct(harman)} of "
                "their variance (Harman's single-factor test; a share above 50% would signal a common-method problem).")
        cmv = m.get("method_factor")
        if isinstance(cmv, dict):
            text += (f" Adding an unmeasured latent method factor changes the fit by Δχ²({apa.fmt_df(cmv.get('df_difference'))})"
                     f" = {apa.fmt_number(cmv.get('chisq_difference'))}, {apa.fmt_p_text(cmv.get('pvalue'))}, ΔCFI = "
                     f"{apa.fmt_number(cmv.get('cfi_change'), 3)}; the method factor explains {pct(cmv.get('method_variance_share'))} "
                     "of the items' variance on average.")
        sec.blocks.append(text)
        findings.check(num(harman) <= 0.5, f"Harman's single factor accounts for {pct(harman)} of the variance "
                       f"({'under' if num(harman) <= 0.5 else 'over'} 50%)")
    lines = stage_warnings(rel, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the reliability stage:")
        sec.blocks.append(lines)
    return sec

