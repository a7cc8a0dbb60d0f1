"""Sample size and power: the Monte Carlo power runs of ``gapscale power`` (analysis/montecarlo.py)
and the RMSEA power of MacCallum, Browne & Sugawara (1996) (analysis/power.py)."""
from __future__ import annotations

import math

import pandas as pd

from analysis import apa
from pipeline.report.findings.common import figure_gap, not_run, num, ok
from pipeline.report.model import SECTIONS, Figure, Findings, Section, StageOutputs, Table

__all__ = ["power_section", "power_paragraph"]

MC_POWER_FROM = 20  # replications per N from which the check's powers are compared in the text
MC_TABLES_FROM = 100  # replications per N from which the Monte Carlo powers get tables beside the analytic ones
RMSEA_TESTS = {"close": "close fit (H0: RMSEA = .050 against .080)",
               "not_close": "not-close fit (H0: RMSEA = .050 against .010)",
               "exact": "exact fit (H0: RMSEA = .000 against .050)"}


def power_section(power: StageOutputs, findings: Findings, figures: dict | None = None) -> Section:
    """Sample size and power: per hypothesis the smallest N of the grid with power at the target
    and the interpolated N, the power at each N with its Monte Carlo standard error, convergence,
    and the N the RMSEA tests of model fit need.

    Parameters
    ----------
    power : StageOutputs
        What ``gapscale power`` wrote (power.json, power_hypotheses.csv).
    findings : Findings
        The report's collector (citations, numbers).
    figures : dict, optional
        The report's figures by key: the power curve (``power_analytic.csv``) goes in as
        ``power_curve``.

    Returns
    -------
    Section
        ``ran`` False when no power outputs were given.
    """
    sec = Section("power", SECTIONS["power"])
    figures = {} if figures is None else figures
    m = power.metrics
    if m is None:
        sec.ran = False
        sec.blocks.append(not_run(power, findings))
        figure_gap(figures, "power_curve", "the power curve", "the power stage has not run")
        return sec
    reps, grid, target = m.get("replications"), list(m.get("n") or []), num(m.get("target"))
    if m.get("analytic"):
        findings.tested.append("statistical power (analytic, checked by Monte Carlo simulation)")
        sec.blocks.extend(_analytic_blocks(m, findings))
        curve = power.table("power_analytic.csv")
        if curve is not None and len(curve) and {"n", "hypothesis", "power"} <= set(curve):
            figures["power_curve"] = Figure("power_curve", "Power per hypothesis against the sample size (analytic)",
                                            "power_curve", {"curve": curve, "target": target},
                                            "Analytic power of each hypothesis at each N invited; dashed line at the "
                                            "target power.")
            sec.blocks.append(figures["power_curve"])
        else:
            sec.blocks.append(figure_gap(figures, "power_curve", "the power curve", "power_analytic.csv is absent"))
        if not reps or reps < MC_TABLES_FROM:  # a check of a few replications: its powers say little alone
            _rmsea_block(sec, m, target, findings)
            return sec
        sec.blocks.append(f"The Monte Carlo powers ({reps} replications per N):")
    else:
        findings.tested.append("statistical power by Monte Carlo simulation")
        figure_gap(figures, "power_curve", "the analytic power curve", "the power stage ran without its analytic part")
    sec.blocks.append(
        f"Power was estimated by Monte Carlo simulation ({findings.cite('muthen2002')}): {reps} data sets were drawn "
        f"from the population model at each N of {', '.join(apa.fmt_int(n) for n in grid)}"
        + (" respondents invited (with the simulated defects, missing answers and screening)" if m.get("clean") else "")
        + f", and the hypothesised model was fitted to each by {m.get('estimator')} ({m.get('missing')}). A hypothesis "
        f"counts as detected in a replication when every part of it is supported; power is the share of converged "
        f"replications that detect it (Monte Carlo standard error √(p(1 − p)/R)).")
    required = m.get("required_n") or {}
    rows = []
    for hid, r in required.items():
        rows.append({"hypothesis": hid, "n_grid": r.get("n_grid"), "n_interpolated": r.get("n_interpolated"),
                     "power_at_largest_n": r.get("power_at_largest_n"), "note": r.get("note") or ""})
    if rows:
        t = pd.DataFrame(rows)
        sec.blocks.append(Table("power_required_n_mc" if m.get("analytic") else "power_required_n",
                                f"N needed for power {apa.fmt_bounded(target, 2)} per hypothesis"
                                + (" (Monte Carlo)" if m.get("analytic") else ""),
                                apa.apa_table(t, {"hypothesis": "text", "n_grid": "int", "n_interpolated": "int",
                                                  "power_at_largest_n": "bounded", "note": "text"},
                                              {"hypothesis": "Hypothesis", "n_grid": "Smallest N on the grid",
                                               "n_interpolated": "Interpolated N",
                                               "power_at_largest_n": f"Power at N = {apa.fmt_int(max(grid))}"
                                               if grid else "Power at the largest N", "note": "Note"}),
                                f"{reps} replications per N: a power near {apa.fmt_bounded(target, 2)} is known to "
                                f"±{apa.fmt_bounded(2 * math.sqrt(target * (1 - target) / reps), 2)} (two Monte Carlo "
                                "standard errors)." if reps and ok(target) else ""))
        missed = [h for h, r in required.items() if r.get("n_grid") is None]
        if not m.get("analytic"):
            findings.numbers["power_not_reached"] = len(missed)
        if missed:
            sec.blocks.append(f"Not reached on the grid: {', '.join(missed)}; a larger N, or a revised hypothesis, is "
                              "needed.")
    by_h = power.table("power_hypotheses.csv")
    if by_h is not None and len(by_h) and {"n", "hypothesis", "power"} <= set(by_h.columns):
        wide = by_h.pivot(index="hypothesis", columns="n", values="power")
        wide = wide.reindex([h for h in dict.fromkeys(by_h["hypothesis"])])
        frame = pd.DataFrame({"Hypothesis": wide.index.astype(str)})
        for n in wide.columns:
            frame[f"N = {apa.fmt_int(n)}"] = [apa.fmt_bounded(v, 2) for v in wide[n]]
        sec.blocks.append(Table("power_by_n", "Power per hypothesis and N", frame.reset_index(drop=True),
                                "Share of converged replications in which every part of the hypothesis is supported."))
    conv = m.get("convergence") or {}
    low = [f"N = {apa.fmt_int(int(n))}: {apa.fmt_bounded(c.get('convergence_rate'), 2)}" for n, c in conv.items()
           if ok(num(c.get("convergence_rate"))) and num(c.get("convergence_rate")) < 1]
    if conv:
        sec.blocks.append("Convergence below 1: " + "; ".join(low) + "." if low else "Every replication converged.")
    _rmsea_block(sec, m, target, findings)
    return sec


def _missing_name(missing) -> str:
    return "FIML" if missing == "fiml" else str(missing)


def _rmsea_block(sec: Section, m: dict, target, findings: Findings) -> None:
    rmsea = m.get("rmsea_power") or {}
    if rmsea and m.get("model_df"):
        parts = [f"{RMSEA_TESTS.get(k, k)} N = {apa.fmt_int(v.get('n_required'))}" for k, v in rmsea.items()
                 if ok(num(v.get("n_required")))]
        if parts:
            sec.blocks.append(f"For the test of model fit ({apa.fmt_int(m.get('model_df'))} degrees of freedom), the "
                              f"RMSEA tests of {findings.cite('maccallum1996')} need, for power "
                              f"{apa.fmt_bounded(target, 2)}: " + "; ".join(parts) + "." + _rmsea_caveat(m))


def _analytic_blocks(m: dict, findings: Findings) -> list:
    """The analytic power: how the N were obtained, the N per hypothesis (with the hypotheses the
    power study does not test and what applies to them), and the Monte Carlo check."""
    a, target = m["analytic"], num(m.get("target"))
    invited = " invited (before screening)" if m.get("clean") is not None else ""
    blocks = [
        f"The sample size each hypothesis needs for power {apa.fmt_bounded(target, 2)} was computed analytically "
        f"from the population model, as the Wald tests' asymptotic power ({findings.cite('satorra1985')}): the "
        f"effects are the standardised population values; their sampling covariance "
        f"per respondent comes from one simulated study of {apa.fmt_int(a.get('rows_invited'))} respondents"
        + (f" with the study's defects, missing answers ({apa.fmt_number(100 * num(a.get('missing_cell_share')), 1)}% "
           f"of item cells) and screening ({apa.fmt_int(a.get('rows_kept'))} kept)" if m.get("clean") else "")
        + f", fitted by ML; with {_missing_name(m.get('missing'))} each invited respondent counts as "
        f"{apa.fmt_number(num(a.get('effective_share')), 3)} of a complete one. A hypothesis is detected when "
        f"every part's {apa.fmt_number(100 * (1 - num(m.get('alpha'))), 0)}% interval excludes zero on the "
        f"expected side (and its standardised size reaches min_effect, where the hypothesis sets one); its power is "
        f"the share of {apa.fmt_int(a.get('draws'))} draws from the estimates' joint normal distribution that do, "
        f"at each N from {apa.fmt_int(a.get('n_min'))} to {apa.fmt_int(a.get('n_max'))}."]
    rows = []
    for hid, r in (a.get("required_n") or {}).items():
        rows.append({"hypothesis": hid, "n": r.get("n_required"), "note": r.get("note") or ""})
    for hid, r in (m.get("other_hypotheses") or {}).items():
        rows.append({"hypothesis": hid, "n": (r.get("contrast_power") or {}).get("n_required"),
                     "note": _invariance_note(r)})
    rows.sort(key=lambda r: str(r["hypothesis"]))
    findings.numbers["power_not_reached"] = sum(1 for h, r in (a.get("required_n") or {}).items()
                                                if r.get("n_required") is None)
    if rows:
        blocks.append(Table("power_required_n",
                            f"N needed for power {apa.fmt_bounded(target, 2)} per hypothesis (analytic)",
                            apa.apa_table(pd.DataFrame(rows), {"hypothesis": "text", "n": "int", "note": "text"},
                                          {"hypothesis": "Hypothesis", "n": f"N{invited}", "note": "Note"}),
                            "N at which the hypothesis' power crosses the target, interpolated on the grid; the "
                            "simulated study behind the information leaves a few percent of sampling error in N."))
    check = m.get("check")
    if check and check.get("rows"):
        reps = m.get("replications") or 0
        ratio = num(check.get("median_se_ratio"))
        z = num(check.get("max_abs_z")) if reps >= MC_POWER_FROM else float("nan")
        ns = sorted({int(r["n"]) for r in check["rows"]})
        whose = "replications'" if reps != 1 else "replication's"
        blocks.append(
            f"Monte Carlo check ({reps} replication{'s' if reps != 1 else ''} at "
            f"N = {', '.join(apa.fmt_int(n) for n in ns)}, each simulated, screened and fitted by "
            f"{m.get('estimator')} with {_missing_name(m.get('missing'))}): "
            + (f"the {whose} standard errors of the hypotheses' "
               f"parameters were {apa.fmt_number(ratio, 3)} times the analytic ones (median)" if ok(ratio) else "")
            + (f"{'; ' if ok(ratio) else ''}the Monte Carlo powers differ from the analytic ones by at most "
               f"{apa.fmt_number(z, 2)} binomial standard errors" if ok(z) else "")
            + ". The full run (1,000 replications at each of five N) is documented with the tool.")
    return blocks


def _contrast_text(c: dict) -> str:
    """``r2 larger in B2B, B2G than in B2C, G2C``: one directional group contrast."""
    word = "larger" if c.get("direction") == "larger_in" else "smaller"
    return f"{c.get('parameter')} {word} in {', '.join(map(str, c.get('groups') or []))} than in " \
           f"{', '.join(map(str, c.get('than') or []))}"


def _invariance_note(r: dict) -> str:
    """The note of a hypothesis the invariance stage decides: its measurement part by fit-index
    criteria (no power) with the N its smallest group needs; its group contrasts, if any, by
    one-sided z tests (Holm-adjusted), with their analytic power when the stage computed it."""
    contrasts = r.get("contrasts") or []
    note = ("measurement invariance: decided by the invariance stage's fit-index criteria (not a significance "
            "test: no power)" if contrasts else
            "decided by the invariance stage (fit-index criteria, not a significance test: no power)")
    if r.get("n_invited") is not None:
        note += (f"; {apa.fmt_int(r['n_invited'])} invited give its smallest group ({r.get('smallest_group')}, "
                 f"{apa.fmt_number(100 * num(r.get('smallest_share')), 0)}%) the {apa.fmt_int(r.get('min_group_size'))} "
                 f"rows min_group_size asks in the CFA half")
    if contrasts:
        note += ("; its group contrasts (" + "; ".join(_contrast_text(c) for c in contrasts)
                 + ") are one-sided z tests in the multigroup model, Holm-adjusted within the hypothesis")
        cp = r.get("contrast_power") or {}
        if ok(num(cp.get("n_required"))):
            parts = [f"{c.get('parameter')} N = {apa.fmt_int(c.get('n_required'))}" for c in cp.get("parts") or []
                     if ok(num(c.get("n_required")))]
            note += (": N is theirs, jointly (analytic power; groups below min_group_size left out"
                     + (f"; each alone: {', '.join(parts)}" if parts else "")
                     + "; each group's information is approximated from the whole study's, which can put this N "
                     "below that of a simulation of each group: 6–14% below on the default study)")
            if ok(num(r.get("n_invited"))):
                note += (f"; the hypothesis as a whole "
                         f"needs the larger N, {apa.fmt_int(max(num(r['n_invited']), num(cp['n_required'])))}")
        elif cp:
            note += f": power {apa.fmt_bounded(num(cp.get('power_at_largest_n')), 2)} at the largest N"
        else:
            note += " (their power not computed)"
    return note


def power_paragraph(power: StageOutputs, findings: Findings) -> str:
    """The methods text's sentences on power (empty when the power stage did not run)."""
    m = power.metrics
    if m is None:
        return ""
    if m.get("analytic"):
        req = m["analytic"].get("required_n") or {}
        reached = [f"{h} N = {apa.fmt_int(r.get('n_required'))}" for h, r in req.items()
                   if r.get("n_required") is not None]
        missed = [h for h, r in req.items() if r.get("n_required") is None]
        return (f"The sample size for power {apa.fmt_bounded(num(m.get('target')), 2)} per hypothesis was computed "
                f"analytically from the population model (the Wald tests' asymptotic power, "
                f"{findings.cite('satorra1985')}, with the information of a "
                f"simulated study with the defects, missing answers and screening) and checked by Monte Carlo "
                f"simulation ({findings.cite('muthen2002')}): " + "; ".join(reached)
                + (f"; {', '.join(missed)} not reached at any N up to {apa.fmt_int(m['analytic'].get('n_max'))}"
                   if missed else "") + "." + _contrast_sentence(m) + _rmsea_sentence(m, findings))
    required = m.get("required_n") or {}
    reached = [f"{h} N = {apa.fmt_int(r.get('n_interpolated'))}" for h, r in required.items()
               if r.get("n_interpolated") is not None]
    missed = [h for h, r in required.items() if r.get("n_interpolated") is None]
    grid = list(m.get("n") or [])
    return (f"Statistical power was estimated by Monte Carlo simulation ({findings.cite('muthen2002')}) with "
            f"{m.get('replications')} replications at each of {len(grid)} sample sizes. "
            + (f"The sample size for power {apa.fmt_bounded(num(m.get('target')), 2)} was {'; '.join(reached)}"
               if reached else "")
            + (f"{'; ' if reached else ''}{', '.join(missed)} did not reach it by N = "
               f"{apa.fmt_int(max(grid)) if grid else ''}" if missed else "") + "." + _rmsea_sentence(m, findings))


def _contrast_sentence(m: dict) -> str:
    """The methods text's sentence on the hypotheses the invariance stage decides: the N for their
    group contrasts' power (Holm within the hypothesis) and for their smallest group's size."""
    out = []
    for h, r in (m.get("other_hypotheses") or {}).items():
        cp = r.get("contrast_power") or {}
        if ok(num(cp.get("n_required"))):
            out.append(f" For {h}, decided by the invariance stage, its group contrasts (one-sided z tests, "
                       f"Holm-adjusted) need N = {apa.fmt_int(cp['n_required'])} for that power jointly"
                       + (f", and its measurement invariance (fit-index criteria, without a power) "
                          f"N = {apa.fmt_int(r['n_invited'])} for {apa.fmt_int(r.get('min_group_size'))} rows of its "
                          f"smallest group" if ok(num(r.get("n_invited"))) else "") + ".")
    return "".join(out)


def _rmsea_sentence(m: dict, findings: Findings) -> str:
    """The methods text's sentence on the RMSEA tests' sample size (empty without them)."""
    rmsea = m.get("rmsea_power") or {}
    parts = [f"{k.replace('_', '-')} fit N = {apa.fmt_int(v.get('n_required'))}" for k, v in rmsea.items()
             if ok(num(v.get("n_required")))]
    if not parts or not m.get("model_df"):
        return ""
    return (f" For the tests of model fit by the RMSEA ({findings.cite('maccallum1996')}), the model's "
            f"{apa.fmt_int(m.get('model_df'))} degrees of freedom need {'; '.join(parts)}." + _rmsea_caveat(m))


def _rmsea_caveat(m: dict) -> str:
    """A sentence when the RMSEA tests need fewer respondents than every hypothesis: with many
    degrees of freedom their power is high at sample sizes far too small to estimate the model,
    so the hypotheses' N, not the RMSEA's, sizes the study (MacCallum et al., 1996)."""
    rmsea = [num(v.get("n_required")) for v in (m.get("rmsea_power") or {}).values()]
    hyp = [num(v.get("n_required")) for v in ((m.get("analytic") or {}).get("required_n") or {}).values()]
    rmsea, hyp = [v for v in rmsea if ok(v)], [v for v in hyp if ok(v)]
    if not rmsea or not hyp or max(rmsea) >= min(hyp):
        return ""
    return (" With this many degrees of freedom the RMSEA tests reach that power at sample sizes far too small to "
            "estimate the model, so it is the hypotheses' N that sizes the study.")
