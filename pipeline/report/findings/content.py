"""Content validity: the expert panel's ratings (the content stage, :mod:`analysis.content`)."""
from __future__ import annotations

import pandas as pd

from analysis import apa
from pipeline.report.findings.common import not_run, num, ok
from pipeline.report.model import SECTIONS, Findings, Section, StageOutputs, Table

__all__ = ["content_section", "content_paragraph"]

REASONS = {"i_cvi_low": "I-CVI below .78", "cvr_below_critical": "CVR below its critical value",
           "sort_not_significant": "item sort not significant", "csv_below_critical": "c_sv below its critical value"}


def content_section(content: StageOutputs, findings: Findings) -> Section:
    """Content validity: the panel, S-CVI/Ave and S-CVI/UA per construct, the flagged items with
    their reasons and, for a simulated panel, how many planted items the flags found.

    Parameters
    ----------
    content : StageOutputs
        What ``gapscale content`` wrote (content.json, content_scale.csv, content_table_apa.csv).
    findings : Findings
        The report's collector (checks, citations).

    Returns
    -------
    Section
        ``ran`` False when no content outputs were given.
    """
    sec = Section("content", SECTIONS["content"])
    m = content.metrics
    if m is None:
        sec.ran = False
        sec.blocks.append(not_run(content, findings))
        return sec
    findings.tested.append("content validity by an expert panel")
    n_experts, n_items = m.get("n_experts"), m.get("n_items_rated")
    flagged = list(m.get("flagged_items") or [])
    text = (f"{n_experts} experts rated the relevance of {n_items} items (1–4)"
            + (" and sorted each item into the construct it measures" if m.get("item_sort") else "")
            + f". Each item has its content validity index (I-CVI) and modified kappa ({findings.cite('polit2007')}) "
            f"and its content validity ratio (CVR; ratings of {m.get('essential_min')} or more counted as essential; "
            f"{findings.cite('lawshe1975')}), tested against exact critical values ({findings.cite('ayre2014')})")
    if m.get("item_sort"):
        text += (f"; the item sort gives the proportion of substantive agreement (p_sa) and the substantive validity "
                 f"coefficient (c_sv; {findings.cite('anderson1991')}) with their binomial tests "
                 f"({findings.cite('howard2016')})")
    text += (f". Across the scale S-CVI/Ave = {apa.fmt_bounded(m.get('s_cvi_ave'), 2)} and S-CVI/UA = "
             f"{apa.fmt_bounded(m.get('s_cvi_ua'), 2)}.")
    sec.blocks.append(text)
    ave = num(m.get("s_cvi_ave"))
    if ok(ave):
        findings.check(ave >= 0.90, f"S-CVI/Ave = {apa.fmt_bounded(ave, 2)} (at least .90 is excellent, "
                                    f"{findings.cite('polit2007')})")
    reasons = {k: v for k, v in (m.get("reason_counts") or {}).items() if v}
    if flagged:
        why = "; ".join(f"{REASONS.get(k, k)}: {v}" for k, v in reasons.items())
        sec.blocks.append(f"{len(flagged)} of {n_items} items are flagged for revision ({why}): "
                          f"{', '.join(flagged)}.")
    else:
        sec.blocks.append("No item is flagged: every item meets every content-validity criterion.")
    findings.check(not flagged, "every item meets the content-validity criteria" if not flagged else
                   f"{len(flagged)} items flagged by the expert panel ({', '.join(flagged)})")
    recovery = m.get("recovery")
    if m.get("simulated") and recovery:
        sec.blocks.append(f"The panel is simulated with planted ambiguous items: the flags found them with precision "
                          f"{apa.fmt_bounded(recovery.get('precision'), 2)} and recall "
                          f"{apa.fmt_bounded(recovery.get('recall'), 2)}.")
    scale = content.table("content_scale.csv")
    if scale is not None and len(scale):
        sec.blocks.append(scale_table(scale))
    items = content.table("content_items.csv")
    if items is not None and len(items) and flagged:
        sec.blocks.append(flagged_table(items[items["item"].astype(str).isin(flagged)], content))
    for note in m.get("notes") or []:
        sec.blocks.append(str(note))
    findings.numbers["content_flagged"] = len(flagged)
    return sec


def scale_table(scale: pd.DataFrame) -> Table:
    """S-CVI/Ave and S-CVI/UA per construct and for the scale."""
    t = scale.copy()
    t["construct"] = [("Scale" if str(lv) == "scale" else str(c)) for lv, c in zip(t.get("level", ""), t["construct"])]
    spec = {"construct": "text", "n_items": "int", "s_cvi_ave": "bounded", "s_cvi_ua": "bounded", "n_flagged": "int"}
    return Table("content_scale", "Scale content validity per construct",
                 apa.apa_table(t[[c for c in spec if c in t]], spec,
                               {"construct": "Construct", "n_items": "Items", "s_cvi_ave": "S-CVI/Ave",
                                "s_cvi_ua": "S-CVI/UA", "n_flagged": "Flagged"}),
                 "S-CVI/Ave: mean I-CVI; S-CVI/UA: share of items every expert rated relevant (Polit et al., 2007).")


def flagged_table(rows: pd.DataFrame, content: StageOutputs) -> Table:
    """The flagged items' indices and the criteria each failed."""
    t = rows.copy()
    t["reasons"] = [", ".join(REASONS.get(r.strip(), r.strip()) for r in str(v).split(";") if r.strip())
                    if isinstance(v, str) else "" for v in t.get("reasons", [""] * len(t))]
    spec = {"item": "text", "construct": "text", "i_cvi": "bounded", "kappa": "bounded", "cvr": "bounded",
            "cvr_critical": "bounded", "p_sa": "bounded", "c_sv": "bounded", "reasons": "text"}
    return Table("content_flagged", "Items flagged by the expert panel",
                 apa.apa_table(t[[c for c in spec if c in t]], spec,
                               {"item": "Item", "construct": "Construct", "i_cvi": "I-CVI", "kappa": "κ*",
                                "cvr": "CVR", "cvr_critical": "CVR crit.", "p_sa": "Agreement (psa)", "c_sv": "Validity (csv)",
                                "reasons": "Criteria not met"}),
                 f"κ*: modified kappa; psa, csv: proportion of substantive agreement and substantive validity coefficient of the item sort. Every item's indices: {content.where('content_table_apa.csv')}.")


def content_paragraph(content: StageOutputs, findings: Findings) -> str:
    """The methods text's paragraph on content validity (empty when the stage did not run)."""
    m = content.metrics
    if m is None:
        return ""
    flagged = list(m.get("flagged_items") or [])
    return (f"Content validity was judged by a panel of {m.get('n_experts')} experts, who rated the relevance of each "
            f"of the {m.get('n_items_rated')} items"
            + (" and sorted the items into constructs" if m.get("item_sort") else "")
            + f". The scale-level content validity index was S-CVI/Ave = {apa.fmt_bounded(m.get('s_cvi_ave'), 2)} "
            f"(S-CVI/UA = {apa.fmt_bounded(m.get('s_cvi_ua'), 2)}; {findings.cite('polit2007')}); "
            + (f"{len(flagged)} items did not meet the I-CVI, CVR ({findings.cite('lawshe1975', 'ayre2014')})"
               + (f" or item-sort ({findings.cite('anderson1991', 'howard2016')})" if m.get("item_sort") else "")
               + f" criteria and were flagged for revision ({', '.join(flagged)})." if flagged else
               "every item met the I-CVI and CVR criteria."))
