"""Helpers shared by the findings functions: formatting shortcuts, the sentences for a stage
not run or a file absent, a stage's warnings, and the fit table every model section prints."""
from __future__ import annotations

import pandas as pd

from analysis import apa
from pipeline.report.model import STAGE_FILES, STAGE_NAMES, Findings, StageOutputs, as_bool, num, ok

__all__ = ["num", "ok", "as_bool", "pct", "ci_level", "ci_label", "not_run", "absent", "stage_warnings",
           "fit_table", "fit_checks", "auto_table", "lower_triangle"]


def pct(x, decimals: int = 1) -> str:
    return f"{apa.fmt_number(100 * num(x), decimals)}%" if ok(x) else ""


def ci_level(level) -> str:
    """``0.95`` -> ``"95%"``; the params key when the stage did not record its level."""
    return f"{100 * num(level):g}%" if ok(level) else "reliability.ci in params.yaml"


def ci_label(level) -> str:
    return f"{100 * num(level):g}% CI" if ok(level) else "CI"


def not_run(stage: StageOutputs, findings: Findings) -> str:
    where = stage.where(STAGE_FILES[stage.name][0])
    findings.not_run.append(STAGE_NAMES[stage.name])
    return (f"The {STAGE_NAMES[stage.name]} stage was not run: its outputs ({where} and its tables) are absent, "
            "so this section has no results.")


def absent(stage: StageOutputs, name: str) -> str:
    return f"{stage.where(name)} is absent: not reported."


def stage_warnings(stage: StageOutputs, findings: Findings, *keys: str) -> list[str]:
    m = stage.metrics or {}
    lines = []
    for key in keys:
        value = m.get(key)
        if isinstance(value, list):
            lines += [str(v) for v in value]
        elif isinstance(value, str) and value:
            lines.append(value)
    lines = list(dict.fromkeys(lines))
    findings.warnings += [f"{STAGE_NAMES[stage.name]}: {w}" for w in lines]
    return lines



def fit_table(fit: dict, cuts: dict, estimator: str | None = None) -> pd.DataFrame:
    """Fit measures with the conventional cut-offs marked (Hu & Bentler, 1999)."""
    rows = []

    def add(name, value, kind="number", cut="", meets=None, ci=""):
        if value is None or not ok(value):
            return
        text = {"number": apa.fmt_number, "bounded": apa.fmt_bounded, "p": apa.fmt_p, "df": apa.fmt_df,
                "int": apa.fmt_int}[kind](value)
        rows.append({"Index": name, "Value": text, "90% CI": ci, "Cut-off": cut,
                     "Meets": "" if meets is None else ("Yes" if meets else "No")})

    add("χ²", fit.get("chisq"))
    add("df", fit.get("df"), "df")
    add("p", fit.get("pvalue"), "p")
    if estimator == "MLR" and ok(fit.get("chisq_scaled")):
        add("χ² (scaled)", fit.get("chisq_scaled"))
        add("p (scaled)", fit.get("pvalue_scaled"), "p")
    robust = estimator == "MLR" and ok(fit.get("cfi_robust"))
    sfx = "_robust" if robust else ""
    label = " (robust)" if robust else ""
    cfi, tli, rmsea, srmr = (fit.get("cfi" + sfx), fit.get("tli" + sfx), fit.get("rmsea" + sfx), fit.get("srmr"))
    add("CFI" + label, cfi, "bounded", f"≥ {apa.fmt_bounded(cuts['cfi_min'])}",
        ok(cfi) and num(cfi) >= cuts["cfi_min"])
    add("TLI" + label, tli, "number", f"≥ {apa.fmt_number(cuts['tli_min'])}", ok(tli) and num(tli) >= cuts["tli_min"])
    lo, hi = fit.get("rmsea_ci_lower" + sfx), fit.get("rmsea_ci_upper" + sfx)
    add("RMSEA" + label, rmsea, "number", f"≤ {apa.fmt_number(cuts['rmsea_max'])}",
        ok(rmsea) and num(rmsea) <= cuts["rmsea_max"], apa.fmt_ci(lo, hi))
    add("SRMR", srmr, "number", f"≤ {apa.fmt_number(cuts['srmr_max'])}", ok(srmr) and num(srmr) <= cuts["srmr_max"])
    add("AIC", fit.get("aic"))
    add("BIC", fit.get("bic"))
    add("N", fit.get("ntotal"), "int")
    return pd.DataFrame(rows, columns=["Index", "Value", "90% CI", "Cut-off", "Meets"], dtype=object)


def fit_checks(fit: dict, cuts: dict, estimator: str | None = None) -> list[tuple[bool, str]]:
    robust = estimator == "MLR" and ok(fit.get("cfi_robust"))
    sfx = "_robust" if robust else ""
    out = []
    for key, name, cut, above, bounded in (("cfi", "CFI", cuts["cfi_min"], True, True),
                                           ("tli", "TLI", cuts["tli_min"], True, False),
                                           ("rmsea", "RMSEA", cuts["rmsea_max"], False, False),
                                           ("srmr", "SRMR", cuts["srmr_max"], False, False)):
        v = fit.get(key + sfx if key != "srmr" else key)
        if not ok(v):
            continue
        met = num(v) >= cut if above else num(v) <= cut
        sign = "≥" if above else "≤"
        out.append((met, f"{name} = {apa.fmt_against(v, cut, bounded=bounded)} ({'meets' if met else 'misses'} "
                        f"{sign} {apa.fmt_number(cut, bounded=bounded)})"))
    return out


def auto_table(df: pd.DataFrame) -> pd.DataFrame:
    """Format a table whose columns are not known in advance: p columns as p, bounded
    statistics without the leading zero, whole-number columns as counts, others two decimals."""
    formats = {}
    for c in df.columns:
        name = str(c).lower()
        s = df[c]
        if name in ("pvalue", "p", "delta_pvalue") or name.endswith("_pvalue") or name.startswith("pvalue_"):
            formats[c] = "p"
        elif s.dtype == bool or set(s.dropna().astype(str).str.lower()) <= {"true", "false"} and s.notna().any():
            formats[c] = "yes_no"
        elif name in ("df", "delta_df") or name.endswith("_df"):
            formats[c] = "df"
        elif pd.api.types.is_integer_dtype(s):
            formats[c] = "int"
        elif pd.api.types.is_numeric_dtype(s):
            formats[c] = "bounded" if name in apa.BOUNDED else "number"
        else:
            formats[c] = "text"
    return apa.apa_table(df, formats)


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


