"""A methods-and-results text in APA prose, generated from the same stage outputs as the tables.

Each paragraph is written only when the stage behind it ran, and each method it names is cited
through the report's registry (:meth:`~pipeline.report.model.Findings.cite`), so the reference
list holds every method the numbers came from and no other. Numbers are formatted by
:mod:`analysis.apa` (fit indices with three decimals, no leading zero where APA wants none).

The text is a draft a researcher starts from: it states what was done and what came out, in the
order of a scale-validation paper (sample, screening and missing data, exploratory factor
analysis, estimator and its reason, fit, reliability, validity, invariance, structural model,
software); the interpretation stays with the researcher.
"""
from __future__ import annotations

import platform
from importlib import metadata

import pandas as pd

from analysis import apa
from pipeline.report.findings.common import (SCALED_ESTIMATORS, admissible, as_bool, estimator_reason,
                                             fit_index_citations, fit_sentence, num, ok, pct, shown_fit)
from pipeline.report.findings.cfa import parameter_text
from pipeline.report.findings.content import content_paragraph
from pipeline.report.findings.power import power_paragraph
from pipeline.report.findings.sample import DEFF_CONCERN
from pipeline.report.findings.sem import OTHER_PARTS, bootstrap_keys, bootstrap_used, part_evidence
from pipeline.report.model import SECTIONS, Findings, Section, StageOutputs

__all__ = ["methods_section", "software_versions", "profile_sentence", "SOFTWARE"]

SOFTWARE = ("numpy", "scipy", "pandas")  # the libraries the numbers are computed with (cited)
SOFTWARE_REFS = {"numpy": ("NumPy", "harris2020"), "scipy": ("SciPy", "virtanen2020"),
                 "pandas": ("pandas", "mckinney2010")}


def software_versions() -> dict[str, str]:
    """The versions of Python, gapscale and the libraries the numbers are computed with, as
    installed (``importlib.metadata``); "unknown" for one that is not installed as a distribution."""
    out = {"python": platform.python_version()}
    for name in ("gapscale", *SOFTWARE):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _range(values, bounded=True) -> str:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if v.empty:
        return ""
    lo, hi = apa.fmt_number(v.min(), bounded=bounded), apa.fmt_number(v.max(), bounded=bounded)
    return lo if lo == hi else f"{lo} to {hi}"


def _sample(clean: StageOutputs, split: StageOutputs, findings: Findings) -> list[str]:
    m = clean.metrics
    if m is None:
        return []
    flagged = m.get("excluded_by_screen") or {}
    screens = [name for key, name in (("attention", "failed attention checks"), ("speeder", "speeding"),
                                      ("longstring", "long strings of identical answers"),
                                      ("irv", "low intra-individual response variability"),
                                      ("mahalanobis", "multivariate outliers (Mahalanobis distance)"),
                                      ("duplicate", "duplicate submissions"), ("missing", "too many missing answers"))
               if key in flagged]
    refs = ["meade2012"] + (["dunn2018"] if "irv" in flagged else [])
    text = (f"Of the {apa.fmt_int(m.get('rows_in'))} submissions, {apa.fmt_int(m.get('excluded'))} were excluded by "
            f"screens for careless and invalid responding ({findings.cite(*refs)})"
            + (": " + ", ".join(screens) if screens else "")
            + f", leaving N = {apa.fmt_int(m.get('kept'))}.")
    sm = split.metrics
    if sm is not None:
        text += (" The sample was split at random" + (f", stratified by {sm['stratify']}," if sm.get("stratify") else "")
                 + f" into an exploration half (n = {apa.fmt_int(sm.get('n_efa'))}) for the exploratory factor "
                 f"analysis and a confirmation half (n = {apa.fmt_int(sm.get('n_cfa'))}) for the confirmatory, "
                 "reliability, invariance and structural analyses.")
    out = [text]
    profile = clean.table("sample_profile.csv")
    described = profile_sentence(profile) if profile is not None else ""
    if described:
        out.append(described)
    rate, mcar = m.get("missing_rate"), m.get("little_mcar")
    if ok(rate):
        t = f"Of the item answers, {pct(rate, 2)} were missing"
        if isinstance(mcar, dict) and ok(mcar.get("statistic")):
            p = num(mcar.get("pvalue"))
            t += (f"; Little's MCAR test ({findings.cite('little1988')}) "
                  f"{'did not reject' if p >= 0.05 else 'rejected'} that they are missing completely at random, "
                  f"{apa.fmt_chisq(mcar.get('statistic'), mcar.get('df'), mcar.get('pvalue'))}")
        out.append(t + ".")
    c = m.get("clusters")
    if isinstance(c, dict) and ok(num(c.get("max_design_effect"))):
        worst = num(c.get("max_design_effect"))
        out.append(f"The respondents came from {apa.fmt_int(c.get('n_clusters'))} organisations; the design effects "
                   f"of the construct scores ({findings.cite('kish1965')}), from their ICC(1) "
                   f"({findings.cite('bliese2000')}), were at most {apa.fmt_number(worst)}, "
                   + (f"under {apa.fmt_number(DEFF_CONCERN, 0)}, small enough to analyse the respondents as independent"
                      if worst < DEFF_CONCERN else f"{apa.fmt_number(DEFF_CONCERN, 0)} or more, so the standard errors "
                      "that treat respondents as independent are too small") + f" ({findings.cite('muthen1995')}).")
    return out


def profile_sentence(profile: pd.DataFrame, max_levels: int = 8) -> str:
    """The analysed sample's context variables in a sentence: each categorical one by its levels'
    percentages (the most frequent first; a variable with more than ``max_levels`` levels by its
    count of levels), each numeric one by M and SD."""
    if not {"variable", "level", "n"} <= set(profile.columns) or not len(profile):
        return ""
    parts = []
    for var, rows in profile.groupby("variable", sort=False):
        numeric = "mean" in rows and rows["mean"].notna().any()
        if numeric:
            r = rows[rows["mean"].notna()].iloc[0]
            parts.append(f"{var}: M = {apa.fmt_number(r['mean'])}, SD = {apa.fmt_number(r.get('sd'))}")
            continue
        levels = rows[rows["level"].astype(str) != "(missing)"]
        if len(levels) > max_levels:
            parts.append(f"{var}: {len(levels)} levels")
            continue
        if "percent" in levels:
            levels = levels.sort_values("percent", ascending=False, kind="stable")
            parts.append(f"{var}: " + ", ".join(f"{r['level']} {apa.fmt_number(r['percent'], 1)}%"
                                                 for r in levels.to_dict("records")))
    return ("The analysed sample: " + "; ".join(parts) + ".") if parts else ""


def _efa(efa: StageOutputs, findings: Findings) -> list[str]:
    m = efa.metrics
    if m is None:
        return []
    refs = {"polychoric": "olsson1979", "minres": "harman1966", "oblimin": "jennrich1966", "varimax": "kaiser1958",
            "promax": "hendrickson1964"}

    def named(x, what):
        return f"{x} {what} ({findings.cite(refs[x])})" if x in refs else f"{x} {what}"

    nf, b, fit = m.get("n_factors") or {}, m.get("bartlett") or {}, m.get("fit") or {}
    text = (f"An exploratory factor analysis of the {apa.fmt_int(m.get('items'))} items in the exploration half "
            f"(N = {apa.fmt_int(m.get('n'))}) used {named(m.get('correlation'), 'correlations')}, "
            f"{named(m.get('extraction'), 'extraction')} and {named(m.get('rotation'), 'rotation')}. The data were "
            f"suitable for factoring: KMO = {apa.fmt_bounded(m.get('kmo'))} ({findings.cite('kaiser1974')}), "
            f"Bartlett's test of sphericity ({findings.cite('bartlett1950')}) "
            f"{apa.fmt_chisq(b.get('chisq'), b.get('df'), b.get('pvalue'))}.")
    crit = []
    if nf.get("parallel_fa") is not None:
        crit.append(f"parallel analysis ({findings.cite('horn1965')}) suggested {nf['parallel_fa']} factors")
    if nf.get("map") is not None:
        crit.append(f"Velicer's MAP ({findings.cite('velicer1976')}) {nf['map']}")
    if nf.get("kaiser") is not None:
        crit.append(f"the Kaiser rule ({findings.cite('kaiser1960')}) {nf['kaiser']}")
    if crit:
        text += " To decide the number of factors, " + ", ".join(crit) + "."
    if nf.get("used") is not None:
        text += (f" The {nf['used']}-factor solution was retained"
                 + (f" ({nf['constructs']} constructs in the instrument)" if nf.get("constructs") is not None else "")
                 + (f": {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}, TLI = "
                    f"{apa.fmt_fit(fit.get('tli'))}, RMSEA = {apa.fmt_fit(fit.get('rmsea'))} "
                    f"{apa.fmt_fit_ci(fit.get('rmsea_ci_lower'), fit.get('rmsea_ci_upper'))}" if fit else "") + ".")
    agreement = m.get("structure_agreement")
    if ok(agreement):
        text += (" Every item loaded highest on the factor of its own construct." if num(agreement) >= 1 else
                 f" Of the items, {pct(agreement, 0)} loaded highest on the factor of their own construct.")
    return [text]


def _cfa(cfa: StageOutputs, findings: Findings, split_ran: bool = True) -> list[str]:
    m = cfa.metrics
    if m is None:
        return []
    fit, est = m.get("fit") or {}, m.get("estimator")
    out = []
    mardia = cfa.document("mardia.json")
    desc = cfa.table("item_descriptives.csv")
    normal = ""
    if desc is not None and {"skewness", "kurtosis"} <= set(desc.columns) and len(desc):
        normal = (f"Item skewness ranged from {_range(desc['skewness'], False)} and excess kurtosis from "
                  f"{_range(desc['kurtosis'], False)} (severe non-normality: |skewness| ≥ 2 or |kurtosis| ≥ 7; "
                  f"{findings.cite('curran1996')}).")
    if mardia:
        rejected = num(mardia.get("skew_pvalue")) < 0.05 or num(mardia.get("kurt_pvalue")) < 0.05
        normal += (f" Mardia's test ({findings.cite('mardia1970')}) {'rejected' if rejected else 'did not reject'} "
                   f"multivariate normality (skewness {apa.fmt_chisq(mardia.get('skew_chisq'), mardia.get('skew_df'), mardia.get('skew_pvalue'))}; "
                   f"kurtosis z = {apa.fmt_number(mardia.get('kurt_z'))}, {apa.fmt_p_text(mardia.get('kurt_pvalue'))}).")
    if normal:
        out.append(normal.strip())
    why = estimator_reason(m, findings)
    missing = str(m.get("missing") or "")
    half = "the confirmation half" if split_ran else "the full sample"
    text = (f"The measurement model, each item loading on its own construct, was estimated in {half} by {est}"
            + (f", with full-information maximum likelihood for missing answers ({findings.cite('arbuckle1996')})"
               if missing == "fiml" else f", with {missing} deletion of incomplete rows" if missing else "") + "."
            + (f" {why[:1].upper() + why[1:]}." if why else ""))
    if mardia and str(est).upper() == "ML" and (num(mardia.get("skew_pvalue")) < 0.05
                                               or num(mardia.get("kurt_pvalue")) < 0.05):
        text += " Because multivariate normality was rejected, ML's standard errors and χ² test may be biased."
    good = admissible(m)
    if not good:
        text += (" The solution was inadmissible (" + "; ".join(str(x) for x in (m.get("inadmissible") or [])[:3])
                 + ("" if m.get("inadmissible") else "it did not converge") + "); its estimates are not interpreted.")
        out.append(text)
        return out
    kind = shown_fit(fit, est).kind
    text += (f" Its fit, judged by conventional cut-offs ({fit_index_citations(fit, est, findings)})"
             + (f" with the {kind} indices" if kind != "standard" else "") + f", was {fit_sentence(fit, est)}.")
    params = cfa.table("cfa_parameters.csv")
    if params is not None and {"op", "std_all"} <= set(params.columns):
        load = params[params["op"].astype(str) == "=~"]
        if len(load):
            text += f" Standardised loadings ranged from {_range(load['std_all'])}."
    mi = cfa.table("cfa_modindices.csv")
    if mi is not None and "mi" in mi and len(mi):
        top = mi.sort_values("mi", ascending=False).iloc[0]
        text += (f" The largest modification index ({findings.cite('sorbom1989')}) was {apa.fmt_number(top['mi'])} "
                 f"({parameter_text(top['lhs'], top['op'], top['rhs'])}).")
    out.append(text)
    return out


def _reliability(rel: StageOutputs, findings: Findings, cuts: dict) -> list[str]:
    m = rel.metrics
    if m is None:
        return []
    t = rel.table("reliability.csv")
    out = []
    if t is not None and "construct" in t:
        parts = []
        if "raw_alpha" in t:
            parts.append(f"Cronbach's α ({findings.cite('cronbach1951')}; Feldt intervals, {findings.cite('feldt1987')}) "
                         f"ranged from {_range(t['raw_alpha'])}")
        if "omega" in t:
            parts.append(f"ω ({findings.cite('mcdonald1999')}) from {_range(t['omega'])}")
        if "cr" in t:
            parts.append(f"composite reliability from {_range(t['cr'])}")
        text = "Reliability: " + ", ".join(parts) + f" (criterion ≥ {apa.fmt_bounded(cuts['reliability_min'])}; " \
            f"{findings.cite('nunnally1994')})." if parts else ""
        if "ave" in t:
            low = t[t["ave"] < cuts["ave_min"]]
            text += (f" Convergent validity: the average variance extracted ({findings.cite('fornell1981')}) ranged from "
                     f"{_range(t['ave'])}; " + ("every construct reached " if low.empty else
                                               ", ".join(f"{r.construct} ({apa.fmt_against(r.ave, cuts['ave_min'], bounded=True)})"
                                                         for r in low.itertuples()) + " fell below ")
                     + f"{apa.fmt_bounded(cuts['ave_min'])}.")
        out.append(text.strip())
    disc = []
    violations = m.get("fornell_larcker_violations")
    if violations is not None and (rel.table("fornell_larcker.csv") is not None
                                   or rel.table("construct_correlations.csv") is not None):
        disc.append(f"the Fornell–Larcker criterion ({findings.cite('fornell1981')}) was "
                    + ("met for every construct" if not violations else "not met for " + ", ".join(violations)))
    ht = rel.table("htmt.csv")
    if ht is not None and "htmt" in ht and len(ht):
        top = ht.loc[ht["htmt"].idxmax()]
        over = int((ht["htmt"] >= cuts["htmt_max"]).sum())
        disc.append(f"the largest heterotrait–monotrait ratio ({findings.cite('henseler2015', 'roemer2021')}) was "
                    f"{apa.fmt_number(top['htmt'])} ({top['construct_1']}–{top['construct_2']}), "
                    + ("every ratio below " if over == 0 else f"{over} pair(s) at or above ")
                    + apa.fmt_number(cuts["htmt_max"]))
    if disc:
        out.append("Discriminant validity: " + "; ".join(disc) + ".")
    harman = m.get("harman_first_factor_share")
    if ok(harman):
        cmv = m.get("cmv") or {}
        text = (f"Common-method variance: by convention, Harman's single-factor test ({findings.cite('podsakoff2003')}) "
                f"was computed (a single unrotated component accounted for {pct(harman)} of the item variance), "
                "although it cannot show that common-method variance is absent.")
        variants = (cmv.get("method_factor") or {}).get("variants") or []
        good = [v for v in variants if v.get("admissible")]
        bad = [v.get("variant") for v in variants if not v.get("admissible")]
        if bad:
            text += (" The unmeasured latent method factor model (" + ", ".join(bad) + ") was inadmissible and is not "
                     "interpreted.")
        for v in good:
            text += (f" An unmeasured latent method factor ({v.get('variant')}) changed the fit by "
                     f"Δχ²({apa.fmt_df(v.get('delta_df'))}) = {apa.fmt_number(v.get('delta_chisq'))}, "
                     f"{apa.fmt_p_text(v.get('delta_pvalue'))}.")
        marker = cmv.get("marker")
        if marker:
            text += (f" With the marker construct {marker.get('construct')}, the CFA marker technique "
                     f"({findings.cite('williams2010')}) {'detected' if marker.get('method_detected') else 'did not detect'}"
                     f" method variance (the {'Method-U' if marker.get('retained') == 'method_u' else 'Method-C'} model "
                     f"retained; {pct(marker.get('method_variance_share'))} of item variance), which "
                     f"{'biased' if marker.get('correlations_biased') else 'did not bias'} the construct correlations; "
                     f"Lindell and Whitney's adjustment ({findings.cite('lindell2001')}) left "
                     f"{apa.fmt_int(marker.get('lw_significant_adjusted'))} of {apa.fmt_int(marker.get('lw_pairs'))} "
                     "construct correlations significant.")
            ap = cmv.get("adjusted_paths") or {}
            if ap:
                text += (f" Holding the method effect fixed changed the standardised structural paths by at most "
                         f"{apa.fmt_number(ap.get('max_abs_difference'))} ({findings.cite('richardson2009')}).")
        else:
            text += (" The instrument had no marker variable, so the CFA marker technique "
                     f"({findings.cite('williams2010')}) was not available.")
        out.append(text)
    return out


def _invariance(inv: StageOutputs, findings: Findings) -> list[str]:
    m = inv.metrics
    fit = inv.table("invariance_fit.csv")
    if m is None or fit is None or not len(fit):
        return []
    n_used = m.get("n_used") if isinstance(m.get("n_used"), dict) else {}
    groups = "; ".join(f"{g}, n = {apa.fmt_int(n)}" for g, n in n_used.items())
    cut = m.get("cutoffs") or {}
    est = m.get("estimator")
    crit = str(m.get("criterion") or "")
    scaled = str(est or "").upper() in SCALED_ESTIMATORS
    if "chisq" in crit and ok(cut.get("alpha")):
        rule = (f"χ² difference tests{' (' + findings.cite('satorra2001') + ')' if scaled else ''} at "
                f"α = {apa.fmt_p(cut.get('alpha'))}")
    elif ok(cut.get("delta_cfi")) or ok(cut.get("delta_rmsea")):
        rule = "changes in fit of " + " and ".join(
            x for x in (f"ΔCFI ≥ {apa.fmt_fit(-abs(num(cut.get('delta_cfi'))))}" if ok(cut.get("delta_cfi")) else "",
                        f"ΔRMSEA ≤ {apa.fmt_fit(cut.get('delta_rmsea'))}" if ok(cut.get("delta_rmsea")) else "")
            if x) + f" ({findings.cite('chen2007')})"
    else:
        rule = "the criteria of the invariance stage"
    text = (f"Measurement invariance across {m.get('group') or 'groups'}" + (f" ({groups})" if groups else "")
            + f" was tested by the configural, metric, scalar and strict models ({findings.cite('vandenberg2000')}), "
            f"each step judged by {rule}.")
    first = fit[fit["model"].astype(str) == "configural"]
    if len(first):
        text += f" The configural model fitted {fit_sentence(first.iloc[0].to_dict(), None)}."
    level = m.get("level")
    if level == "none":
        text += " Not even configural invariance held."
    elif level:
        text += f" Invariance held up to the {level} level" + (
            " (partial: " + ", ".join(m.get("partial") or []) + " freed)" if m.get("partial_invariance") else "") + "."
    paths = inv.table("invariance_paths.csv")
    st = m.get("structural") if isinstance(m.get("structural"), dict) else {}
    if ok(st.get("delta_chisq")):
        text += (f" Constraining the structural paths equal across groups changed the fit by "
                 f"Δχ²({apa.fmt_df(st.get('delta_df'))}) = {apa.fmt_number(st.get('delta_chisq'))}, "
                 f"{apa.fmt_p_text(st.get('delta_pvalue'))}")
        if paths is not None and "pvalue_holm" in paths:
            nd = int(num(st.get("n_paths_differ")) if ok(st.get("n_paths_differ")) else 0)
            text += (f"; Wald tests of each path, Holm-adjusted ({findings.cite('holm1979')}), found "
                     + (f"no path of {apa.fmt_int(st.get('n_paths'))} different" if nd == 0 else
                        f"{apa.fmt_int(nd)} of {apa.fmt_int(st.get('n_paths'))} paths different"))
        text += "."
    elif paths is not None and "pvalue_holm" in paths:
        differ = int(paths.drop_duplicates(["lhs", "rhs"])["differs"].map(as_bool).sum()) if "differs" in paths else 0
        text += (f" Wald tests of each structural path's equality across groups, Holm-adjusted "
                 f"({findings.cite('holm1979')}), found {differ} path(s) different.")
    return [text]


def _sem(sem: StageOutputs, findings: Findings) -> list[str]:
    m = sem.metrics
    params = sem.table("sem_parameters.csv")
    if m is None or params is None:
        return []
    fit, est = m.get("fit") or {}, m.get("estimator")
    p = params.copy()
    p["op"] = p["op"].astype(str).str.strip()
    defined = p[p["op"] == ":="]
    why = estimator_reason(m, findings)
    missing = str(m.get("missing") or "")
    text = (f"The hypothesised structural model was estimated by {est}"
            + (f" with full-information maximum likelihood for missing answers ({findings.cite('arbuckle1996')})"
               if missing == "fiml" else f" ({missing})" if missing else ""))
    boot = m.get("bootstrap") or {}
    draws = boot.get("draws", boot.get("requested"))
    interval = str(m.get("interval") or "")
    if boot and draws and bootstrap_used(defined, interval, sem.table("sem_hypotheses.csv")):
        text += (f"; confidence intervals of {'its indirect and total effects' if len(defined) else 'its parameters'}"
                 f" came from {apa.fmt_int(draws)} bootstrap draws ({findings.cite(*bootstrap_keys(defined, interval))})")
    text += "." + (f" {why[:1].upper() + why[1:]}." if why else "")
    if not admissible(m):
        return [text + " Its solution was inadmissible; its estimates are not interpreted."]
    text += (f" It fitted {fit_sentence(fit, est)} ({fit_index_citations(fit, est, findings)})." if fit else "")
    r2 = sem.table("sem_r2.csv")
    latents = set(p.loc[p["op"] == "=~", "lhs"])
    if r2 is not None and {"variable", "r2"} <= set(r2.columns):
        endo = r2[r2["variable"].astype(str).isin(set(p.loc[p["op"] == "~", "lhs"]) & latents)]
        if len(endo):
            text += f" It explained R² = {_range(endo['r2'])} of the variance of the endogenous constructs."
    out = [text]
    hyp = sem.table("sem_hypotheses.csv")
    if hyp is not None and len(hyp) and "hypothesis" in hyp:
        parts = []
        for name, rows in hyp.groupby("hypothesis", sort=False):
            first = rows.iloc[0]
            if isinstance(first.get("verdict"), str):
                v = first["verdict"]
            elif "supported" in rows:
                held = rows["supported"].map(as_bool)
                v = "supported" if held.all() else "partly supported" if held.any() else "not supported"
            else:
                v = "tested"
            if len(rows) > 1 and "supported" in rows:
                untested = int(rows["supported"].isna().sum())
                other = [r for r in rows.to_dict("records") if str(r.get("part")) in OTHER_PARTS]
                evidence = "; ".join(f"{r.get('parameter')}: {part_evidence(r, m.get('ci'))}" for r in other)
                parts.append(f"{name} was {v} ({int(rows['supported'].map(as_bool).sum())} of {len(rows)} parts "
                             "supported" + (f", {untested} not tested" if untested else "")
                             + (f"; {evidence}" if evidence else "") + ")")
                continue
            small = str(first.get("parameter")) in set(defined["lhs"])
            d = 3 if small else 2
            ci = apa.fmt_ci(first.get("ci_lower"), first.get("ci_upper"), d)
            numbers = ", ".join(x for x in (
                f"b = {apa.fmt_number(first.get('est'), d)}" if ok(first.get("est")) else "",
                f"{ci_level_text(m.get('ci'))} CI {ci}" if ci else "",
                f"β = {apa.fmt_number(first.get('std_all'), d, bounded=True)}" if ok(first.get("std_all")) else "") if x)
            parts.append(f"{name} was {v}" + (f" ({numbers})" if numbers else ""))
        kinds = set(hyp["part"].astype(str)) if "part" in hyp else set()
        how = []
        if "htmt" in kinds:
            how.append("the upper limit of the bootstrap interval of their HTMT below the cut-off "
                       f"({findings.cite('henseler2015')})")
        if "chisq" in kinds:
            how.append("a CFA of the two with their correlation fixed at ±1 fitting worse than with it free, by the "
                       f"chi-square difference ({findings.cite('anderson1988', 'ronkko2022')})")
        out.append("Hypotheses: " + "; ".join(parts) + "."
                   + (f" Two constructs counted as distinct by {' and by '.join(how)}." if how else "")
                   + (" A path's difference between groups was the one-sided test of its mean over the groups "
                      "expected larger minus its mean over the others in the multigroup model with equal loadings, "
                      f"Holm-adjusted ({findings.cite('holm1979')})." if "group_difference" in kinds else ""))
    if len(defined) and {"boot_pct_lower", "boot_pct_upper"} <= set(defined.columns):
        sig = [r for r in defined.itertuples() if ok(r.boot_pct_lower)
               and (num(r.boot_pct_lower) > 0 or num(r.boot_pct_upper) < 0)]
        out.append(f"Of the {len(defined)} indirect and total effects defined in the model, {len(sig)} had percentile "
                   "bootstrap intervals that exclude zero"
                   + (": " + ", ".join(f"{r.lhs} (b = {apa.fmt_number(r.est, 3)}, "
                                       f"[{apa.fmt_number(r.boot_pct_lower, 3)}, {apa.fmt_number(r.boot_pct_upper, 3)}])"
                                       for r in sig) if sig else "") + ".")
    return out


def ci_level_text(level) -> str:
    return f"{100 * num(level):g}%" if ok(level) else "95%"


def _software(versions: dict, findings: Findings) -> str:
    libs = ", ".join(f"{SOFTWARE_REFS[k][0]} {versions.get(k, 'unknown')} ({findings.cite(SOFTWARE_REFS[k][1])})"
                     for k in SOFTWARE)
    return (f"The analyses were run with gapscale {versions.get('gapscale', 'unknown')} in Python "
            f"{versions.get('python', 'unknown')}, with {libs}.")


def methods_section(outputs: dict[str, StageOutputs], findings: Findings, cuts: dict,
                    versions: dict | None = None) -> Section:
    """The methods-and-results text: one paragraph per stage that ran, then the software."""
    sec = Section("methods", SECTIONS["methods"])
    content = outputs.get("content")
    paragraphs = ([content_paragraph(content, findings)] if content is not None else []) + (
        _sample(outputs["clean"], outputs["split"], findings) + _efa(outputs["efa"], findings)
                  + _cfa(outputs["cfa"], findings, outputs["split"].ran) + _reliability(outputs["reliability"], findings, cuts)
                  + _invariance(outputs["invariance"], findings) + _sem(outputs["sem"], findings)) + (
        [power_paragraph(outputs["power"], findings)] if outputs.get("power") is not None else [])
    if versions:
        paragraphs.append(_software(versions, findings))
    sec.blocks += [p for p in paragraphs if p]
    if not sec.blocks:
        sec.ran = False
        sec.blocks.append("No stage outputs: nothing to write.")
    return sec
