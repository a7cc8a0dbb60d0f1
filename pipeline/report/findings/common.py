"""Helpers shared by the findings functions: formatting shortcuts, the sentences for a stage
not run or a file absent, a stage's warnings, and the fit table every model section prints."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis import apa
from pipeline.report.model import STAGE_FILES, STAGE_NAMES, Figure, Findings, StageOutputs, as_bool, num, ok

__all__ = ["num", "ok", "as_bool", "pct", "ci_level", "ci_label", "not_run", "absent", "figure_gap", "stage_warnings",
           "admissible", "estimator_reason", "fit_index_citations", "SCALED_ESTIMATORS", "FitShown", "shown_fit",
           "fit_sentence", "fit_table", "fit_table_note", "fit_checks", "lower_triangle"]


def pct(x, decimals: int = 1) -> str:
    """A proportion as a percentage: ``0.133`` -> ``"13.3%"`` (empty when missing)."""
    return f"{apa.fmt_number(100 * num(x), decimals)}%" if ok(x) else ""


def ci_level(level) -> str:
    """``0.95`` -> ``"95%"``; the params key when the stage did not record its level."""
    return f"{100 * num(level):g}%" if ok(level) else "reliability.ci in params.yaml"


def ci_label(level) -> str:
    """A confidence interval's column header: ``0.95`` -> ``"95% CI"``."""
    return f"{100 * num(level):g}% CI" if ok(level) else "CI"


def not_run(stage: StageOutputs, findings: Findings) -> str:
    """The sentence for a stage whose outputs are absent (and the stage noted as not run)."""
    where = stage.where(STAGE_FILES[stage.name][0])
    findings.not_run.append(STAGE_NAMES[stage.name])
    return (f"The {STAGE_NAMES[stage.name]} stage was not run: its outputs ({where} and its tables) are absent, "
            "so this section has no results.")


def absent(stage: StageOutputs, name: str) -> str:
    """The sentence for one absent file of a stage that ran."""
    return f"{stage.where(name)} is absent: not reported."


def figure_gap(figures: dict, key: str, what: str, reason: str) -> str:
    """A figure that cannot be drawn: a placeholder is registered under ``key`` (DVC declares the
    file, so it is still written) but it is not shown or numbered; the sentence returned states
    the gap where the figure would have been."""
    figures[key] = Figure(key, what, "placeholder", {"text": f"Not drawn: {reason}"})
    return f"No figure of {what}: {reason}."


def stage_warnings(stage: StageOutputs, findings: Findings, *keys: str) -> list[str]:
    """The stage's warnings under ``keys`` of its metrics, each once, p values in APA form; also
    added to the summary's warnings, prefixed by the stage's name."""
    m = stage.metrics or {}
    lines = []
    for key in keys:
        value = m.get(key)
        if isinstance(value, list):
            lines += [str(v) for v in value]
        elif isinstance(value, str) and value:
            lines.append(value)
    lines = list(dict.fromkeys(apa.apa_p_in_text(x) for x in lines))
    findings.warnings += [f"{STAGE_NAMES[stage.name]}: {w}" for w in lines]
    return lines


# Estimators whose test statistic is scaled (lavaan's "Robust"/"Scaled" columns): their fit is
# judged by the robust indices when the stage wrote them (Brosseau-Liard & Savalei, 2014;
# Savalei, 2021, for categorical data), else by the scaled ones.
SCALED_ESTIMATORS = frozenset({"MLR", "MLM", "MLMV", "MLMVS", "WLSM", "WLSMV", "ULSM", "ULSMV"})


@dataclass(frozen=True)
class FitShown:
    """The fit measures a report shows for one model: the test and the indices the estimator
    calls for (``kind``: "standard", "scaled" or "robust"), each None when absent."""

    kind: str
    chisq: float | None
    df: float | None
    pvalue: float | None
    cfi: float | None
    tli: float | None
    rmsea: float | None
    rmsea_ci_lower: float | None
    rmsea_ci_upper: float | None
    srmr: float | None

    @property
    def label(self) -> str:
        return "" if self.kind == "standard" else f" ({self.kind})"


def shown_fit(fit: dict, estimator: str | None = None) -> FitShown:
    """Which fit measures to report: for a scaled estimator (MLR, MLM, WLSMV, ...) the scaled test
    (``chisq_scaled``, ``df_scaled``, ``pvalue_scaled``) and the robust indices (``cfi_robust``,
    ``tli_robust``, ``rmsea_robust`` with its interval) when present, else the scaled ones
    (``cfi_scaled``, ...); for ML (GLS, ULS, ...) the standard ones. SRMR has one version."""
    def get(key):
        v = fit.get(key)
        return float(v) if ok(v) else None

    scaled = str(estimator or "").upper() in SCALED_ESTIMATORS and get("chisq_scaled") is not None
    chisq = (get("chisq_scaled"), get("df_scaled") if get("df_scaled") is not None else get("df"),
             get("pvalue_scaled")) if scaled else (get("chisq"), get("df"), get("pvalue"))
    for kind in (("robust", "scaled") if scaled else ("standard",)):
        sfx = "" if kind == "standard" else "_" + kind
        if kind != "standard" and get("cfi" + sfx) is None:
            continue
        return FitShown(kind, *chisq, get("cfi" + sfx), get("tli" + sfx), get("rmsea" + sfx),
                        get("rmsea_ci_lower" + sfx), get("rmsea_ci_upper" + sfx), get("srmr"))
    return FitShown("scaled", *chisq, None, None, None, None, None, get("srmr"))


def fit_sentence(fit: dict, estimator: str | None = None) -> str:
    """The fit of a model in APA prose: ``χ²(2331) = 2,722.09, p < .001, CFI = .952, TLI = .948,
    RMSEA = .078 [.075, .081], SRMR = .041`` (scaled test and robust indices when the estimator
    calls for them, named as such)."""
    f = shown_fit(fit, estimator)
    parts = []
    if f.chisq is not None and f.df is not None:
        parts.append(("scaled " if f.kind != "standard" else "") + apa.fmt_chisq(f.chisq, f.df, f.pvalue))
    lab = f.label
    for name, v in (("CFI", f.cfi), ("TLI", f.tli)):
        if v is not None:
            parts.append(f"{name}{lab} = {apa.fmt_fit(v)}")
    if f.rmsea is not None:
        ci = apa.fmt_fit_ci(f.rmsea_ci_lower, f.rmsea_ci_upper)
        parts.append(f"RMSEA{lab} = {apa.fmt_fit(f.rmsea)}" + (f" {ci}" if ci else ""))
    if f.srmr is not None:
        parts.append(f"SRMR = {apa.fmt_fit(f.srmr)}")
    return ", ".join(parts)


def admissible(m: dict) -> bool:
    """The stage's verdict: converged, and no flag of an inadmissible solution (Heywood case,
    non-positive-definite matrix)."""
    return bool(m.get("admissible", True)) and not m.get("inadmissible") and m.get("converged") is not False


def estimator_reason(m: dict, findings: Findings) -> str:
    """Why the estimator: a sentence with its citation (empty for plain ML)."""
    est = str(m.get("estimator") or "").upper()
    if m.get("ordered"):
        return (f"{est} treats the items as ordinal (polychoric correlations, diagonally weighted least squares "
                f"with a mean- and variance-adjusted test; {findings.cite('flora2004')})")
    if est == "MLR":
        return ("MLR gives standard errors and a test statistic robust to non-normality "
                f"({findings.cite('yuan2000')})")
    if est in ("MLM", "MLMV"):
        return f"{est} corrects the standard errors and the test for non-normality ({findings.cite('satorra1994')})"
    return ""


def fit_index_citations(fit: dict, estimator, findings: Findings) -> str:
    """The citations behind the fit indices shown: the cut-offs (Hu & Bentler, 1999) and, for
    robust indices, the correction (Brosseau-Liard et al.; Savalei for categorical data)."""
    keys = ["hu1999"]
    kind = shown_fit(fit, estimator).kind
    if kind == "robust":
        keys += ["savalei2021"] if str(estimator).upper() in ("WLSMV", "ULSMV", "WLSM", "ULSM") else \
            ["brosseau2012", "brosseau2014"]
    return findings.cite(*keys)


def fit_table(fit: dict, cuts: dict, estimator: str | None = None) -> pd.DataFrame:
    """Fit measures with the conventional cut-offs marked (Hu & Bentler, 1999): the standard
    test, the scaled test for a scaled estimator, and the indices :func:`shown_fit` picks."""
    rows = []

    def add(name, value, kind="number", cut="", meets=None, ci=""):
        if value is None or not ok(value):
            return
        text = {"number": apa.fmt_number, "fit": apa.fmt_fit, "p": apa.fmt_p, "df": apa.fmt_df,
                "int": apa.fmt_int}[kind](value)
        rows.append({"Index": name, "Value": text, "90% CI": ci, "Cut-off": cut,
                     "Meets": "" if meets is None else ("Yes" if meets else "No")})

    f = shown_fit(fit, estimator)
    add("χ²", fit.get("chisq"))
    add("df", fit.get("df"), "df")
    add("p", fit.get("pvalue"), "p")
    if f.kind != "standard":
        add("χ² (scaled)", f.chisq)
        if f.df is not None and f.df != num(fit.get("df")):
            add("df (scaled)", f.df, "df")
        add("p (scaled)", f.pvalue, "p")
    lab = f.label
    add("CFI" + lab, f.cfi, "fit", f"≥ {apa.fmt_bounded(cuts['cfi_min'])}", ok(f.cfi) and f.cfi >= cuts["cfi_min"])
    add("TLI" + lab, f.tli, "fit", f"≥ {apa.fmt_bounded(cuts['tli_min'])}", ok(f.tli) and f.tli >= cuts["tli_min"])
    add("RMSEA" + lab, f.rmsea, "fit", f"≤ {apa.fmt_bounded(cuts['rmsea_max'])}",
        ok(f.rmsea) and f.rmsea <= cuts["rmsea_max"], apa.fmt_fit_ci(f.rmsea_ci_lower, f.rmsea_ci_upper))
    add("SRMR", f.srmr, "fit", f"≤ {apa.fmt_bounded(cuts['srmr_max'])}", ok(f.srmr) and f.srmr <= cuts["srmr_max"])
    if f.kind == "robust":  # the scaled versions too (what Mplus and lavaan before 0.6-13 print), not judged
        add("CFI (scaled)", fit.get("cfi_scaled"), "fit")
        add("TLI (scaled)", fit.get("tli_scaled"), "fit")
        add("RMSEA (scaled)", fit.get("rmsea_scaled"), "fit",
            ci=apa.fmt_fit_ci(fit.get("rmsea_ci_lower_scaled"), fit.get("rmsea_ci_upper_scaled")))
    add("AIC", fit.get("aic"))
    add("BIC", fit.get("bic"))
    add("N", fit.get("ntotal"), "int")
    return pd.DataFrame(rows, columns=["Index", "Value", "90% CI", "Cut-off", "Meets"], dtype=object)


def fit_table_note(fit: dict, estimator, admissible_model: bool, findings: Findings) -> str:
    """The note under a fit table: where the cut-offs come from (cited only for a model whose fit is
    judged), which indices the estimator calls for, the RMSEA's interval."""
    kind = shown_fit(fit, estimator).kind
    note = "Cut-offs set in params.yaml (report:" + (
        f"; defaults after {fit_index_citations(fit, estimator, findings)})." if admissible_model else ").")
    if kind != "standard":
        note += (f" The {kind} indices are those the {estimator} estimator calls for; χ², df and p in the first rows "
                 "are the unscaled test.")
    if kind == "robust":
        note += " The scaled indices after SRMR are shown for comparison, not judged."
    if ok(fit.get("rmsea_ci_lower")):
        note += " RMSEA with its 90% confidence interval."
    return note


def fit_checks(fit: dict, cuts: dict, estimator: str | None = None) -> list[tuple[bool, str]]:
    """Each shown index against its cut-off: ``(met, "CFI = .952 (meets ≥ .95)")``."""
    f = shown_fit(fit, estimator)
    out = []
    for name, v, cut, above in (("CFI", f.cfi, cuts["cfi_min"], True), ("TLI", f.tli, cuts["tli_min"], True),
                                ("RMSEA", f.rmsea, cuts["rmsea_max"], False), ("SRMR", f.srmr, cuts["srmr_max"], False)):
        if v is None:
            continue
        met = v >= cut if above else v <= cut
        sign = "≥" if above else "≤"
        label = f.label if name != "SRMR" else ""
        out.append((met, f"{name}{label} = {apa.fmt_against(v, cut, 3, bounded=True, max_decimals=5)} "
                         f"({'meets' if met else 'misses'} {sign} {apa.fmt_bounded(cut)})"))
    return out


def lower_triangle(matrix: pd.DataFrame, names: list[str], bounded: bool, diagonal: dict | None = None) -> pd.DataFrame:
    """A table of strings with the lower triangle filled (and the diagonal from ``diagonal``;
    without a diagonal the empty first row and last column are left out)."""
    rows = []
    rows_shown = names if diagonal is not None else names[1:]
    cols_shown = names if diagonal is not None else names[:-1]
    for a in rows_shown:
        i = names.index(a)
        row = {"": a}
        for j, b in enumerate(cols_shown):
            if j < i:
                row[b] = apa.fmt_number(matrix.at[a, b], bounded=bounded)
            elif j == i and diagonal is not None:
                row[b] = apa.fmt_number(diagonal.get(a), bounded=bounded)
            else:
                row[b] = ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["", *cols_shown], dtype=object)


