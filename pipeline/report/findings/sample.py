"""Sample and screening: the flow of respondents through the screens, missing data."""
from __future__ import annotations


import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (absent, not_run, num, ok, pct, stage_warnings)
from pipeline.report.model import (SCREEN_ORDER, SECTIONS, Findings, Section, StageOutputs,
                                   Table)

__all__ = ["sample_section", "sample_profile_table", "outside_blocks", "design_effect_blocks"]

OUTSIDE_SHOWN_SHARE = 0.02  # items with at least this share of answers outside the scale get a row of their own
DEFF_CONCERN = 2.0  # Muthén & Satorra (1995): design effects under 2 are commonly ignored


def outside_blocks(clean: StageOutputs, findings: Findings) -> list:
    """Answers outside the scale ("Not applicable", "Don't know"): a sentence per option (answers,
    items offering it, range of the per-item share) and a table of the items where they reach
    :data:`OUTSIDE_SHOWN_SHARE` of the respondents (all items are in ``outside_answers.csv``)."""
    options = (clean.metrics or {}).get("outside_answers") or {}
    t = clean.table("outside_answers.csv")
    if not options:
        return []
    if t is None or not {"item", "n", "n_outside", "n_skipped", "n_missing"} <= set(t.columns) or not len(t):
        return [absent(clean, "outside_answers.csv")]
    parts = []
    for name, o in options.items():
        col = f"n_{name}"
        if col not in t:
            continue
        offered = t[t[col].notna()]
        share = offered[col].astype(float) / offered["n"].where(offered["n"] > 0)
        parts.append(f"“{o.get('label')}” (code {o.get('code')}) was offered on {apa.fmt_int(len(offered))} "
                     f"item{'s' if len(offered) != 1 else ''} and chosen {apa.fmt_int(o.get('n'))} times"
                     + (f" ({pct(share.min())} to {pct(share.max())} of the respondents per item)"
                        if len(offered) > 1 else f" ({pct(share.iat[0])} of the respondents)" if len(offered) else ""))
    blocks = ["Answers outside the scale: " + "; ".join(parts) + ". They are missing values in the analysis, not "
              "answers out of range, and the missing-data screen does not count them as unanswered items."]
    share = t["n_outside"] / t["n"].where(t["n"] > 0)
    shown = t[share >= OUTSIDE_SHOWN_SHARE].assign(_share=share).sort_values("_share", ascending=False, kind="stable")
    if len(shown):
        frame = pd.DataFrame({"Item": shown["item"].astype(str)})
        for name, o in options.items():
            if f"n_{name}" in shown:
                frame[str(o.get("label"))] = [apa.fmt_int(v) if ok(v) else "–" for v in shown[f"n_{name}"]]
        frame["Skipped"] = [apa.fmt_int(v) for v in shown["n_skipped"]]
        frame["Missing (%)"] = [pct(v) for v in shown["n_missing"] / shown["n"]]
        blocks.append(Table("outside_answers", "Items with many answers outside the scale", frame.astype(object),
                            f"Items where at least {pct(OUTSIDE_SHOWN_SHARE, 0)} of the analysed respondents answered "
                            "outside the scale; – = not offered on this item. Missing = outside the scale + skipped; "
                            "every item in outside_answers.csv."))
    return blocks


def design_effect_blocks(clean: StageOutputs, findings: Findings) -> list:
    """Respondents nested in organisations: the clusters, ICC(1) and the design effect of each
    construct score, and what a design effect means for the standard errors."""
    c = (clean.metrics or {}).get("clusters")
    if not isinstance(c, dict):
        return []
    t = clean.table("design_effect.csv")
    if t is None or not {"variable", "n_clusters", "icc1", "design_effect", "n_effective"} <= set(t.columns):
        return [absent(clean, "design_effect.csv")]
    worst = num(c.get("max_design_effect"))
    text = (f"The analysed respondents came from {apa.fmt_int(c.get('n_clusters'))} organisations (column "
            f"{c.get('column')}; mean {apa.fmt_number(c.get('mean_cluster_size'), 1)} respondents per organisation, "
            f"largest {apa.fmt_int(c.get('largest_cluster'))}"
            + (f"; {apa.fmt_int(c.get('without_cluster'))} without one" if num(c.get("without_cluster")) > 0 else "")
            + "). Respondents of one organisation are not independent: Table {table:design_effect} gives the "
            f"intraclass correlation ICC(1) of each construct score (the mean of its items; {findings.cite('bliese2000')}) "
            f"and the design effect 1 + (m̄ − 1) ICC(1) ({findings.cite('kish1965')}), the factor by which nesting "
            "inflates the variance of an estimate compared with independent respondents. ")
    if ok(worst):
        text += (f"The largest design effect is {apa.fmt_number(worst)}: standard errors that treat respondents as "
                 f"independent (those of the CFA and SEM) may be too small, for a construct mean by a factor of "
                 f"{apa.fmt_number(worst ** 0.5)} (its square root)"
                 + (f", more than design effects under {apa.fmt_number(DEFF_CONCERN, 0)} are usually taken to allow "
                    f"({findings.cite('muthen1995')}); cluster-robust standard errors or a multilevel model are advised."
                    if worst >= DEFF_CONCERN else
                    f"; design effects under {apa.fmt_number(DEFF_CONCERN, 0)} are usually taken as small enough to "
                    f"ignore the nesting ({findings.cite('muthen1995')})."))
        findings.check(worst < DEFF_CONCERN, f"design effects of the organisations at most {apa.fmt_number(worst)} "
                                             f"(under {apa.fmt_number(DEFF_CONCERN, 0)})")
        findings.numbers["max_design_effect"] = worst
    frame = apa.apa_table(t[["variable", "n_clusters", "icc1", "design_effect", "n_effective"]],
                          {"variable": "text", "n_clusters": "int", "icc1": (lambda v: apa.fmt_number(v, 3, bounded=True)),
                           "design_effect": "number", "n_effective": (lambda v: apa.fmt_number(v, 0))},
                          {"variable": "Construct", "n_clusters": "Organisations", "icc1": "ICC(1)",
                           "design_effect": "Design effect", "n_effective": "Effective N"})
    return [text, Table("design_effect", "Nesting in organisations: intraclass correlation and design effect", frame,
                        "ICC(1) from the one-way ANOVA of each construct score on the organisations (as "
                        "multilevel::ICC1 in R, mean organisation size m̄); design effect 1 + (m̄ − 1) ICC(1), 1 for a "
                        "negative ICC(1); effective N = N / design effect.")]


def sample_profile_table(profile: pd.DataFrame) -> Table:
    """The context variables of the analysed sample: counts and percentages of each level of a
    categorical variable, mean and SD of a numeric one (the variable named once)."""
    t = profile.copy()
    if "variable" in t:
        repeat = t["variable"].astype(str).eq(t["variable"].astype(str).shift())
        t["variable"] = t["variable"].astype(object).where(~repeat, "")
    spec = {c: k for c, k in {"variable": "text", "level": "text", "n": "int",
                              "percent": (lambda v: apa.fmt_number(v, 1)), "mean": "number", "sd": "number"}.items()
            if c in t}
    return Table("sample_profile", "Sample profile (context variables)",
                 apa.apa_table(t, spec, {"variable": "Variable", "level": "Level", "n": "n", "percent": "%",
                                         "mean": "M", "sd": "SD"}),
                 "The analysed sample after screening; % of the respondents who answered the question.")


def sample_section(clean: StageOutputs, split: StageOutputs, findings: Findings) -> Section:
    """Sample and screening: the flow of respondents through the screens (each excluded respondent
    counted once, at the first screen that flagged them), missing data and Little's MCAR test, the
    sample profile (context variables) and, for simulated data, the screens against the truth.

    Parameters
    ----------
    clean, split : StageOutputs
        What the clean and split stages wrote.
    findings : Findings
        Collects what was tested, what held and what did not, the stages' warnings and the
        citations (each method a sentence reports is cited through ``findings.cite``).

    Returns
    -------
    Section
        Paragraphs, bullet lists, :class:`~pipeline.report.model.Table` and
        :class:`~pipeline.report.model.Figure` blocks; ``ran`` False when the stage did not run.
    """
    sec = Section("sample", SECTIONS["sample"])
    if clean.metrics is None:
        sec.ran = False
        sec.blocks.append(not_run(clean, findings))
        return sec
    m = clean.metrics
    rows_in, kept, excluded = m.get("rows_in"), m.get("kept"), m.get("excluded")
    off_scale = m.get("cells_set_missing", m.get("cell_problems"))
    flagged_any = m.get("excluded_by_screen") or {}
    screen_refs = ["meade2012"] + (["dunn2018"] if "irv" in flagged_any else [])
    sec.blocks.append(
        f"The survey export held {apa.fmt_int(rows_in)} submissions. The screens for careless and invalid responding "
        f"({findings.cite(*screen_refs)}) "
        + (f"excluded {apa.fmt_int(excluded)} of them" + (f" ({pct(num(excluded) / num(rows_in))})" if num(rows_in) else "")
           + f" and kept {apa.fmt_int(kept)} for analysis; " if num(excluded) > 0 else
           f"excluded none of them: all {apa.fmt_int(kept)} were kept for analysis; ")
        + (f"{apa.fmt_int(off_scale)} answers that were not on the scale (out of range or unreadable) were set missing."
           if num(off_scale) > 0 else "no answer was off the scale." if ok(off_scale) else "")
        + (" A respondent may fail several screens; Table {flow} counts each excluded respondent once, at the first "
           "screen (in the order shown) that flagged them." if num(excluded) > 0 else
           " Table {flow} shows the screens."))
    findings.tested.append(f"{apa.fmt_int(rows_in)} submissions screened, {apa.fmt_int(kept)} kept")
    screens = m.get("screens") or {}
    flagged = m.get("excluded_by_screen") or {}
    order = [s for s in SCREEN_ORDER if s in flagged] + [s for s in flagged if s not in SCREEN_ORDER]
    excl = clean.table("exclusions.csv")
    removed = {}
    if excl is not None and {"row", "screen"} <= set(excl.columns) and len(excl):
        rank = {s: i for i, s in enumerate(order)}
        first = (excl.assign(_rank=excl["screen"].map(rank).fillna(len(order)))
                 .sort_values(["row", "_rank"], kind="stable").drop_duplicates("row"))
        removed = first["screen"].value_counts().to_dict()
    labels = {
        "attention": "Failed an attention check",
        "speeder": f"Speeder (under {pct(screens.get('speeder_fraction'), 0)} of the median time)"
        if ok(screens.get("speeder_fraction")) else "Speeder",
        "longstring": f"Long-string (identical answers to {pct(screens.get('longstring_share'), 0)} of the items or more)"
        if ok(screens.get("longstring_share")) else "Long-string",
        "irv": f"Low response variability (SD < {apa.fmt_number(screens.get('irv_min'))})"
        if ok(screens.get("irv_min")) else "Low response variability",
        "mahalanobis": f"Multivariate outlier (Mahalanobis D², p < {apa.fmt_p(screens.get('mahalanobis_alpha')).lstrip('< ')})"
        if ok(screens.get("mahalanobis_alpha")) else "Multivariate outlier (Mahalanobis D²)",
        "duplicate": "Duplicate submission",
        "missing": f"Too many missing items (more than {pct(screens.get('max_missing_share'), 0)})"
        if ok(screens.get("max_missing_share")) else "Too many missing items",
    }
    rows = [{"Step": "Submissions received", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(rows_in)}]
    remaining = num(rows_in)
    for s in order:
        r = int(removed.get(s, 0))
        remaining -= r
        rows.append({"Step": labels.get(s, s), "Flagged": apa.fmt_int(flagged.get(s)), "Removed": apa.fmt_int(r),
                     "Remaining": apa.fmt_int(remaining)})
    rows.append({"Step": "Analysed sample", "Flagged": "", "Removed": apa.fmt_int(excluded), "Remaining": apa.fmt_int(kept)})
    sm = split.metrics
    if sm is not None:
        rows.append({"Step": "EFA half (random split)", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(sm.get("n_efa"))})
        rows.append({"Step": "CFA half (random split)", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(sm.get("n_cfa"))})
    note = ("Flagged = respondents the screen flagged (some also failed an earlier screen); Removed = respondents "
            "excluded at this step.")
    if ok(remaining) and ok(kept) and int(remaining) != int(num(kept)):
        note += (f" The steps account for {apa.fmt_int(num(rows_in) - remaining)} exclusions, clean.json for "
                 f"{apa.fmt_int(excluded)}.")
        findings.warnings.append("report: the exclusions in exclusions.csv do not add up to clean.json's count")
    if sm is not None and sm.get("stratify"):
        note += f" The split is stratified by {sm['stratify']}."
    flow = Table("screening_flow", "Flow of respondents through the screens", pd.DataFrame(rows, dtype=object), note)
    sec.blocks[0] = sec.blocks[0].replace("{flow}", "{table:screening_flow}")
    sec.blocks.append(flow)
    if excl is None:
        sec.blocks.append(absent(clean, "exclusions.csv"))
    if split.metrics is None:
        sec.blocks.append(f"The split stage was not run ({split.where('split.json')} is absent): the EFA and CFA "
                          "halves are not reported.")

    # Missing data
    rows = []
    mi = clean.table("missing_items.csv")
    mr = clean.table("missing_respondents.csv")
    rows.append({"Measure": "Item cells missing", "Value": pct(m.get("missing_rate"), 2)})
    if mr is not None and "n_missing" in mr:
        complete = int((mr["n_missing"] == 0).sum())
        rows.append({"Measure": "Respondents with every item answered",
                     "Value": f"{apa.fmt_int(complete)} ({pct(complete / len(mr) if len(mr) else float('nan'))})"})
        rows.append({"Measure": "Most items missing for one respondent", "Value": apa.fmt_int(mr["n_missing"].max())})
    if mi is not None and {"variable", "pct_missing"} <= set(mi.columns) and len(mi):
        top = mi.loc[mi["pct_missing"].idxmax()]
        rows.append({"Measure": "Item with the most missing answers",
                     "Value": f"{top['variable']} ({apa.fmt_number(top['pct_missing'])}%)"})
    rows.append({"Measure": "Answers off the scale, set missing", "Value": apa.fmt_int(m.get("cell_problems"))})
    for o in (m.get("outside_answers") or {}).values():
        rows.append({"Measure": f"Answered “{o.get('label')}” (code {o.get('code')}), set missing",
                     "Value": f"{apa.fmt_int(o.get('n'))} on {apa.fmt_int(o.get('items'))} item"
                              f"{'s' if num(o.get('items')) != 1 else ''}"})
    mcar = m.get("little_mcar")
    if isinstance(mcar, dict):
        rows.append({"Measure": "Little's MCAR test",
                     "Value": apa.fmt_chisq(mcar.get("statistic"), mcar.get("df"), mcar.get("pvalue"))})
        findings.check(num(mcar.get("pvalue")) >= 0.05,
                       f"Little's test {'does not reject' if num(mcar.get('pvalue')) >= 0.05 else 'rejects'} that the "
                       f"data are missing completely at random ({apa.fmt_p_text(mcar.get('pvalue'))})")
    sec.blocks.append(Table("missing_data", "Missing data after screening", pd.DataFrame(rows, dtype=object),
                            "Percentages of the analysed sample. Missing cells stay missing; the CFA handles them "
                            "as params.yaml says (listwise or FIML)."
                            + (f" Little's MCAR test: {findings.cite('little1988')}." if isinstance(mcar, dict) else "")))
    sec.blocks += outside_blocks(clean, findings)
    profile = clean.table("sample_profile.csv")
    if profile is not None and len(profile):
        sec.blocks.append(sample_profile_table(profile))
    sec.blocks += design_effect_blocks(clean, findings)
    for note in m.get("notes") or []:
        sec.blocks.append(f"Note from the clean stage: {apa.apa_p_in_text(note)}.")
    stage_warnings(clean, findings, "warnings")

    truth = m.get("screens_vs_truth")
    if isinstance(truth, dict):
        rows = [{"Screen": labels.get(s, s), "Flagged": apa.fmt_int(v.get("flagged")),
                 "True positives": apa.fmt_int(v.get("true_positives")),
                 "Precision": apa.fmt_bounded(v.get("precision")), "Recall": apa.fmt_bounded(v.get("recall"))}
                for s, v in truth.items() if isinstance(v, dict)]
        if rows:
            sec.blocks.append(Table("screen_accuracy", "Screens against the simulation's truth",
                                    pd.DataFrame(rows, dtype=object),
                                    "Only for simulated data: each screen scored against the defects the simulation "
                                    "planted. Precision = share of flagged respondents that carry the defect; recall "
                                    "= share of carriers flagged."))
    return sec

