"""The console report: what a researcher reads in a terminal after a stage, and ``gapscale show``.

Pure functions from a stage's outputs (its metrics dict and tables as DataFrames) to text, laid
out as ``lavaan::summary(fit, fit.measures = TRUE, standardized = TRUE)`` prints a fitted model:

* the fit block: the model test (with a "Standard  Scaled" pair of columns when the estimator
  has a scaled test: MLR, MLM, WLSMV, ULSMV), the baseline test, CFI/TLI (and the robust ones),
  the log-likelihood and information criteria (ML family), RMSEA with its 90% interval and
  close-fit p-values (and the robust RMSEA), SRMR;
* the parameter table in lavaan's groups (Latent Variables, Regressions, Covariances,
  Intercepts, Thresholds, Variances, Scales y*, R-Square, Defined Parameters, Constraints) with
  Estimate, Std.Err, z-value, P(>|z|) (and an interval when asked) and Std.all; an indicator or
  an endogenous variable is written with lavaan's leading dot (its residual);
* the warnings.

Every stage has a report (:func:`report_for`), built from the files the stage wrote
(:func:`read_stage_dir`), so a stage command and ``gapscale show DIR`` print the same text, and
a one-line summary (:func:`summary_line`). With a scaled test the one-line summary gives the
scaled test and indices and the robust CFI and RMSEA (lavaan's ``cfi.scaled``, ``cfi.robust``),
never the unscaled ones alone: for a WLSMV fit the unscaled CFI is the naive DWLS one.

Numbers: three decimals as lavaan prints them (``0.958``, ``-0.440``), rounded half away from
zero by :func:`analysis.apa.fmt_number`; counts as whole numbers; a missing value as a blank.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from analysis.apa import fmt_number, fmt_p, is_missing
from analysis.errors import InputError
from pipeline.io import read_table

__all__ = ["STAGES", "detect_stage", "fit_block", "fit_summary", "num", "parameter_table", "read_stage_dir",
           "report_for", "show", "summary_line", "table", "warnings_block"]

# stage -> (its metrics JSON, the tables the report reads); the JSON identifies the stage
STAGES = {
    "clean": ("clean.json", ("missing_items.csv",)),
    "split": ("split.json", ()),
    "efa": ("efa.json", ("efa_loadings.csv", "efa_variance.csv", "efa_diagnostics.csv", "efa_factor_correlations.csv")),
    "cfa": ("cfa.json", ("cfa_parameters.csv", "cfa_modindices.csv")),
    "reliability": ("reliability.json", ("reliability.csv", "htmt.csv")),
    "invariance": ("invariance.json", ("invariance_fit.csv", "invariance_groups.csv", "invariance_latent_means.csv",
                                       "invariance_paths.csv")),
    "sem": ("sem.json", ("sem_parameters.csv", "sem_r2.csv", "sem_hypotheses.csv", "sem_competing.csv")),
}

# the other stages' output directories, shown too: (the file that identifies it, the tables read)
OTHER_STAGES = {
    "content": ("content.json", ("content_scale.csv", "content_items.csv")),
    "simulate": ("simulate.json", ()),
    "render": ("codebook.csv", ("codebook.csv",)),
    "report": ("report.json", ()),
}

RULE = "-" * 78
_SHORT = 16  # characters of a value right-aligned in a block's column
MAX_CELL = 60  # characters of a table cell; a longer text is cut (the CSV has it whole)


# ---------------------------------------------------------------------------------------------
# numbers and plain tables

def num(x, decimals: int = 3) -> str:
    """A number as lavaan's summary prints it: fixed decimals, a leading zero, no thousands
    separator, ``-0.000`` written ``0.000``; None/NaN as an empty string."""
    if is_missing(x) or isinstance(x, str):
        return "" if is_missing(x) else str(x)
    return fmt_number(float(x), decimals, thousands=False)


def count(x) -> str:
    """A whole number (a count, degrees of freedom); a fractional one keeps three decimals."""
    if is_missing(x):
        return ""
    x = float(x)
    return str(int(x)) if x.is_integer() else num(x)


def pct(x, decimals: int = 1) -> str:
    """A proportion as a percentage: ``0.173`` -> ``17.3%``."""
    return "" if is_missing(x) else f"{num(100 * float(x), decimals)}%"


def p_value(x) -> str:
    """A p-value with three decimals as lavaan prints it (``0.000`` below .0005)."""
    return num(x, 3)


def table(rows: list[list], headers: list[str], align: str | None = None, indent: int = 2,
          max_cell: int | None = None) -> str:
    """A plain aligned table: ``align`` one letter per column (``l`` left, ``r`` right; default:
    the first column left, the rest right); cells are strings already formatted, a text longer
    than ``max_cell`` (default :data:`MAX_CELL`) characters cut."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[_cut(str(c), max_cell or MAX_CELL) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(headers)]

    def line(r):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)]
        return (" " * indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


def _cut(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def warnings_block(warnings: Iterable, title: str = "Warnings") -> str:
    """The warnings, one per line (empty when there are none)."""
    items = [str(w if not isinstance(w, dict) else "; ".join(f"{k}: {v}" for k, v in w.items())) for w in warnings or []]
    if not items:
        return ""
    return f"{title}:\n" + "\n".join(f"  - {w}" for w in items)


def _block(title: str, rows: list[tuple[str, str]]) -> str:
    """``title:`` then ``label  value`` lines, values right-aligned in one column."""
    rows = [(a, b) for a, b in rows if b not in ("", None)]
    if not rows:
        return ""
    w = max(len(a) for a, _ in rows)
    short = [len(b) for _, b in rows if len(b) <= _SHORT]
    v = max(short) if short else 0  # numbers right-aligned in one column; a long text starts where it starts
    return f"{title}:\n" + "\n".join(f"  {a.ljust(w)}  {b.rjust(v) if len(b) <= _SHORT else b}" for a, b in rows)


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p) + "\n"


# ---------------------------------------------------------------------------------------------
# the fit block

def _has(fit: Mapping, key: str) -> bool:
    return key in fit and not is_missing(fit.get(key))


def fit_block(fit: Mapping, estimator: str = "") -> str:
    """The fit measures as ``summary(fit, fit.measures = TRUE)`` prints them.

    ``fit`` holds lavaan's ``fitMeasures`` with underscores (``chisq``, ``chisq_scaled``,
    ``cfi_robust``, ``rmsea_ci_lower_scaled``, ...). With a scaled test (``chisq_scaled``) every
    index has a "Scaled" column beside the "Standard" one and the robust CFI, TLI and RMSEA follow.
    """
    scaled = _has(fit, "chisq_scaled")
    robust = any(_has(fit, k) for k in ("cfi_robust", "rmsea_robust"))
    label_w, col_w = 44, 12

    def row(label, standard="", scaled_value=""):
        return f"  {label.ljust(label_w)}{standard.rjust(col_w)}{scaled_value.rjust(col_w) if scaled else ''}".rstrip()

    def pair(key, fmt=num, scaled_key=None):
        sk = scaled_key or f"{key}_scaled"
        return fmt(fit.get(key)), (fmt(fit.get(sk)) if scaled else "")

    out = []
    head = "Model Test User Model:"
    out.append(head + ("\n" + " " * (2 + label_w) + "Standard".rjust(col_w) + "Scaled".rjust(col_w) if scaled else "\n"))
    out.append(row("Test Statistic" if scaled else "Test statistic", *pair("chisq")))  # as lavaan spells them
    out.append(row("Degrees of freedom", count(fit.get("df")), count(fit.get("df_scaled", fit.get("df"))) if scaled else ""))
    out.append(row("P-value (Chi-square)", *pair("pvalue", p_value)))
    if scaled:
        out.append(row("Scaling correction factor", "", num(fit.get("chisq_scaling_factor"))))
        if _has(fit, "chisq_shift_parameters"):
            out.append(row("Shift parameter", "", num(fit.get("chisq_shift_parameters"))))
    blocks = ["\n".join(out)]

    if _has(fit, "baseline_chisq"):
        b = ["Model Test Baseline Model:", "",
             row("Test statistic", *pair("baseline_chisq")),
             row("Degrees of freedom", count(fit.get("baseline_df")), count(fit.get("baseline_df")) if scaled else ""),
             row("P-value", *pair("baseline_pvalue", p_value))]
        if scaled and _has(fit, "baseline_chisq_scaling_factor"):
            b.append(row("Scaling correction factor", "", num(fit.get("baseline_chisq_scaling_factor"))))
        blocks.append("\n".join(b))

    if _has(fit, "cfi"):
        u = ["User Model versus Baseline Model:", "",
             row("Comparative Fit Index (CFI)", *pair("cfi")),
             row("Tucker-Lewis Index (TLI)", *pair("tli"))]
        if robust and (_has(fit, "cfi_robust") or _has(fit, "tli_robust")):
            u += ["", row("Robust Comparative Fit Index (CFI)", "", num(fit.get("cfi_robust"))) if scaled
                  else row("Robust Comparative Fit Index (CFI)", num(fit.get("cfi_robust"))),
                  row("Robust Tucker-Lewis Index (TLI)", "", num(fit.get("tli_robust"))) if scaled
                  else row("Robust Tucker-Lewis Index (TLI)", num(fit.get("tli_robust")))]
        blocks.append("\n".join(u))

    if _has(fit, "logl"):
        def same(key):  # the log-likelihood and criteria are not scaled: the same in both columns
            return num(fit.get(key)), num(fit.get(key)) if scaled else ""

        ll = ["Loglikelihood and Information Criteria:", "", row("Loglikelihood user model (H0)", *same("logl"))]
        if scaled and _has(fit, "scaling_factor_h0"):
            ll += [row("Scaling correction factor", "", num(fit.get("scaling_factor_h0"))),
                   row("    for the MLR correction")]
        ll.append(row("Loglikelihood unrestricted model (H1)", *same("unrestricted_logl")))
        if scaled and _has(fit, "scaling_factor_h1"):
            ll += [row("Scaling correction factor", "", num(fit.get("scaling_factor_h1"))),
                   row("    for the MLR correction")]
        ll += ["", row("Akaike (AIC)", *same("aic")), row("Bayesian (BIC)", *same("bic"))]
        if _has(fit, "bic2"):
            ll.append(row("Sample-size adjusted Bayesian (SABIC)", *same("bic2")))
        blocks.append("\n".join(ll))

    if _has(fit, "rmsea"):
        level = fit.get("rmsea_ci_level") or 0.9
        close, notclose = fit.get("rmsea_close_h0") or 0.05, fit.get("rmsea_notclose_h0") or 0.08
        r = ["Root Mean Square Error of Approximation:", "",
             row("RMSEA", *pair("rmsea")),
             row(f"{count(100 * level)} Percent confidence interval - lower", num(fit.get("rmsea_ci_lower")),
                 num(fit.get("rmsea_ci_lower_scaled")) if scaled else ""),
             row(f"{count(100 * level)} Percent confidence interval - upper", num(fit.get("rmsea_ci_upper")),
                 num(fit.get("rmsea_ci_upper_scaled")) if scaled else "")]
        if _has(fit, "rmsea_pvalue"):
            r.append(row(f"P-value H_0: RMSEA <= {num(close)}", *pair("rmsea_pvalue", p_value)))
        if _has(fit, "rmsea_notclose_pvalue"):
            r.append(row(f"P-value H_0: RMSEA >= {num(notclose)}", *pair("rmsea_notclose_pvalue", p_value)))
        if robust and _has(fit, "rmsea_robust"):
            def rr(label, key, fmt=num):
                return row(label, "", fmt(fit.get(key))) if scaled else row(label, fmt(fit.get(key)))
            r += ["", rr("Robust RMSEA", "rmsea_robust"),
                  rr(f"{count(100 * level)} Percent confidence interval - lower", "rmsea_ci_lower_robust"),
                  rr(f"{count(100 * level)} Percent confidence interval - upper", "rmsea_ci_upper_robust")]
            if _has(fit, "rmsea_pvalue_robust"):
                r.append(rr(f"P-value H_0: Robust RMSEA <= {num(close)}", "rmsea_pvalue_robust", p_value))
            if _has(fit, "rmsea_notclose_pvalue_robust"):
                r.append(rr(f"P-value H_0: Robust RMSEA >= {num(notclose)}", "rmsea_notclose_pvalue_robust", p_value))
        blocks.append("\n".join(r))

    if _has(fit, "srmr"):
        blocks.append("\n".join(["Standardized Root Mean Square Residual:", "",
                                 row("SRMR", num(fit.get("srmr")), num(fit.get("srmr")) if scaled else "")]))
    return "\n\n".join(blocks)


def fit_summary(fit: Mapping) -> str:
    """The fit in one line: the standard test and indices, or with a scaled test (MLR, MLM,
    WLSMV, ULSMV) the scaled test, the scaled CFI/TLI/RMSEA and the robust CFI and RMSEA.

    ``chisq 85.31 (df 24, p < .001), CFI 0.931, TLI 0.896, RMSEA 0.092 [0.071, 0.114], SRMR 0.065``
    """
    f = fit
    if _has(f, "chisq_scaled"):
        parts = [f"scaled chisq {num(f.get('chisq_scaled'), 2)} (df {count(f.get('df_scaled', f.get('df')))}, "
                 f"p {_p_text(f.get('pvalue_scaled'))})",
                 f"scaled CFI {num(f.get('cfi_scaled'))}", f"TLI {num(f.get('tli_scaled'))}",
                 f"RMSEA {num(f.get('rmsea_scaled'))} [{num(f.get('rmsea_ci_lower_scaled'))}, "
                 f"{num(f.get('rmsea_ci_upper_scaled'))}]"]
        robust = [f"CFI {num(f.get('cfi_robust'))}" if _has(f, "cfi_robust") else "",
                  f"RMSEA {num(f.get('rmsea_robust'))}" if _has(f, "rmsea_robust") else ""]
        robust = [r for r in robust if r]
        text = ", ".join(parts)
        if robust:
            text += "; robust " + ", ".join(robust)
    else:
        text = (f"chisq {num(f.get('chisq'), 2)} (df {count(f.get('df'))}, p {_p_text(f.get('pvalue'))}), "
                f"CFI {num(f.get('cfi'))}, TLI {num(f.get('tli'))}, RMSEA {num(f.get('rmsea'))} "
                f"[{num(f.get('rmsea_ci_lower'))}, {num(f.get('rmsea_ci_upper'))}]")
        if not _has(f, "chisq_scaled") and (_has(f, "cfi_robust") and _has(f, "rmsea_robust")
                                            and not math.isclose(f["cfi_robust"], f.get("cfi") or 0, abs_tol=5e-4)):
            text += f"; robust CFI {num(f.get('cfi_robust'))}, RMSEA {num(f.get('rmsea_robust'))}"
    if _has(f, "srmr"):
        text += f", SRMR {num(f.get('srmr'))}"
    return text


def _p_text(p) -> str:
    """``< .001`` or ``= .706``: APA's p in running text (:func:`analysis.apa.fmt_p`) after "p "."""
    if is_missing(p):
        return "NA"
    shown = fmt_p(p)
    return shown if shown.startswith("<") else f"= {shown}"


# ---------------------------------------------------------------------------------------------
# the parameter table

_SECTIONS = (("lv", "Latent Variables"), ("reg", "Regressions"), ("cov", "Covariances"), ("int", "Intercepts"),
             ("thr", "Thresholds"), ("var", "Variances"), ("scale", "Scales y*"), ("r2", "R-Square"),
             ("def", "Defined Parameters"), ("con", "Constraints"))
_OPS = {"=~": "lv", "~": "reg", "~1": "int", "|": "thr", "~*~": "scale", ":=": "def", "==": "con", "<": "con",
        ">": "con", "<~": "lv"}
_GROUPED = {"lv", "reg", "cov"}


def _section(op: str, lhs: str, rhs: str) -> str | None:
    if op == "~~":
        return "var" if lhs == rhs else "cov"
    return _OPS.get(op)


def parameter_table(params: pd.DataFrame, r2: pd.DataFrame | None = None, ci: tuple[str, str] | None = None,
                    std: str = "std_all") -> str:
    """The parameter estimates in lavaan's summary layout.

    Parameters
    ----------
    params : DataFrame
        lavaan's ``parameterEstimates`` columns with underscores: ``lhs, op, rhs, label, est,
        se, z, pvalue`` and ``std_all`` (optional ``group``: one block per group).
    r2 : DataFrame, optional
        ``variable, r2`` (the R-Square block, as ``summary(..., rsquare = TRUE)``).
    ci : (str, str), optional
        Columns of an interval to print after P(>|z|) (``ci_lower, ci_upper`` or a bootstrap one).
    std : str
        The standardised column (``std_all``), printed as Std.all.

    A fixed parameter (no z) shows its estimate and Std.all only, as lavaan.
    """
    p = params.copy()
    for c in ("lhs", "op", "rhs"):
        p[c] = p[c].astype(str).str.strip()
    if "label" not in p:
        p["label"] = ""
    p["label"] = ["" if is_missing(v) else str(v) for v in p["label"]]
    # lavaan's dot: an indicator or an endogenous (regressed) variable is written as its residual
    endo = set(p.loc[p["op"] == "=~", "rhs"]) | set(p.loc[p["op"] == "~", "lhs"])
    latent = set(p.loc[p["op"].isin(["=~", "<~"]), "lhs"])

    def dotted(name: str, section: str) -> str:
        return f".{name}" if section in ("cov", "int", "var") and name in endo else name

    headers = ["Estimate", "Std.Err", "z-value", "P(>|z|)"]
    if ci:
        headers += ["ci.lower", "ci.upper"]
    headers.append("Std.all")
    groups = list(dict.fromkeys(p["group"])) if "group" in p.columns else [None]
    blocks = []
    # (section, name cell, value cells) of every row, to size the columns once for all blocks
    laid: list[tuple] = []
    for g in groups:
        q = p if g is None else p[p["group"] == g]
        q = q.assign(_s=[_section(o, a, b) for o, a, b in zip(q["op"], q["lhs"], q["rhs"])])
        for key, title in _SECTIONS:
            if key == "r2":
                if r2 is not None and len(r2) and g is None:
                    laid.append((g, key, title, None, [(f"    {v}", "", [num(x)]) for v, x in zip(r2["variable"], r2["r2"])]))
                continue
            rows = q[q["_s"] == key]
            if not len(rows):
                continue
            lines = []
            last = None
            for r in rows.itertuples(index=False):
                fixed = is_missing(r.z)
                vals = [num(r.est), "" if fixed else num(r.se), "" if fixed else num(r.z),
                        "" if fixed else p_value(r.pvalue)]
                if ci:
                    vals += [num(getattr(r, ci[0])), num(getattr(r, ci[1]))]
                vals.append(num(getattr(r, std)) if std in rows.columns else "")
                label = f"({r.label})" if r.label and not r.label.startswith(".") and key != "def" else ""
                if key in _GROUPED:
                    if last != r.lhs:
                        lines.append((f"  {dotted(r.lhs, key)} {r.op}", None, None))
                        last = r.lhs
                    lines.append((f"    {dotted(r.rhs, key)}", label, vals))
                elif key == "thr":
                    lines.append((f"    {r.lhs}|{r.rhs}", label, vals))
                elif key == "def":
                    lines.append((f"    {r.lhs}", "", vals))
                elif key == "con":
                    lines.append((f"    {r.lhs} {r.op} {r.rhs}", "", vals))
                else:
                    name = dotted(r.lhs, key)
                    lines.append((f"   {name}" if name.startswith(".") else f"    {name}", label, vals))
            laid.append((g, key, title, headers, lines))
    name_w = max([18] + [len(n) + (len(lb) + 2 if lb else 0) for *_, lines in laid for n, lb, _ in lines])
    ncol = len(headers)
    val_w = [max([9, len(h) + 2] + [len(v[j]) + 2 for *_, lines in laid for _, _, v in lines if v and j < len(v)])
             for j, h in enumerate(headers)]
    current = object()
    for g, key, title, hdr, lines in laid:
        if g != current and g is not None:
            blocks.append(f"Group [{g}]:")
        current = g
        if key == "r2":
            text = [f"{title}:", " " * name_w + "Estimate".rjust(val_w[0])]
        else:
            text = [f"{title}:", " " * name_w + "".join(h.rjust(w) for h, w in zip(hdr, val_w))]
        for name, label, vals in lines:
            if vals is None:
                text.append(name)
                continue
            cell = name.ljust(name_w - len(label)) + label if label else name.ljust(name_w)
            if len(cell) > name_w:
                cell = cell[:name_w]
            text.append((cell + "".join(v.rjust(w) for v, w in zip(vals, val_w[:ncol]))).rstrip())
        blocks.append("\n".join(text))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------
# reading a stage's output directory

def _read_csv(path: Path) -> pd.DataFrame:
    return read_table(path)


def detect_stage(directory) -> str:
    """The stage whose outputs ``directory`` holds, by its metrics file (``cfa.json`` -> cfa);
    an InputError naming the directory when it holds no stage's outputs."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d}: not a directory; give a stage's output directory (e.g. data/processed/cfa)")
    found = [s for s, (metrics, _) in {**STAGES, **OTHER_STAGES}.items() if (d / metrics).is_file()]
    if len(found) != 1:
        what = "no stage's outputs" if not found else f"the outputs of several stages ({', '.join(found)})"
        known = ", ".join(m for m, _ in {**STAGES, **OTHER_STAGES}.values())
        raise InputError(f"{d}: holds {what}; expected one of {known} (a stage's output directory, "
                         "e.g. data/processed/cfa)")
    return found[0]


def read_stage_dir(directory, stage: str | None = None) -> tuple[str, dict, dict[str, pd.DataFrame]]:
    """``(stage, metrics, tables)`` read from a stage's output directory; tables that are absent
    are left out (the report says so)."""
    from pipeline.stage_metrics import read_metrics

    d = Path(directory)
    stage = stage or detect_stage(d)
    metrics_name, names = {**STAGES, **OTHER_STAGES}[stage]
    metrics = read_metrics(d / metrics_name) if metrics_name.endswith(".json") else {}
    tables = {n: _read_csv(d / n) for n in names if (d / n).is_file()}
    return stage, metrics, tables


def show(directory, warnings: bool = True) -> str:
    """The report of the stage whose outputs ``directory`` holds (``gapscale show DIR``)."""
    stage, metrics, tables = read_stage_dir(directory)
    return report_for(stage, metrics, tables, Path(directory), warnings=warnings)


# ---------------------------------------------------------------------------------------------
# one-line summaries

def summary_line(stage: str, m: Mapping, out) -> str:
    """The one line a stage command prints first (and alone with ``--quiet``)."""
    return _SUMMARY[stage](m, out)


def _clean_line(m, out):
    reasons = ", ".join(f"{k} {v}" for k, v in (m.get("excluded_by_screen") or {}).items() if v)
    return (f"{m['rows_in']} rows in: {m['kept']} kept, {m['excluded']} excluded ({reasons or 'none'}); "
            f"{m.get('cells_set_missing', m.get('cell_problems'))} cells set missing, {m.get('cells_changed', 0)} changed "
            f"(cell_problems.csv); outputs in {out}")


def _split_line(m, out):
    return (f"split {m['n']} respondents: {m['n_efa']} EFA, {m['n_cfa']} CFA"
            f"{' (stratified by ' + m['stratify'] + ')' if m.get('stratify') else ''}; outputs in {out}")


def _efa_line(m, out):
    k = m["n_factors"]
    agreement = m.get("structure_agreement")
    share = "" if is_missing(agreement) else f"{float(agreement):.0%}"
    return (f"EFA on {m['n']} respondents, {m['items']} items ({m['correlation']}): KMO {num(m.get('kmo'), 2)}; "
            f"factors used {k['used']} (parallel {k.get('parallel_fa')}, MAP {k.get('map')}, Kaiser {k.get('kaiser')}); "
            f"{share or 'NA'} of items load highest on their construct's factor; "
            f"{m['flagged_items']} items flagged; outputs in {out}")


def _cfa_line(m, out):
    f = m["fit"]
    return (f"CFA ({m['estimator']}, {m['missing']}) on {f.get('ntotal')} of {m['n_rows']} rows: {fit_summary(f)}"
            f"{'' if m.get('admissible', True) else '; NOT ADMISSIBLE (see warnings)'}; outputs in {out}")


def _reliability_line(m, out):
    return (f"reliability on {m['n']} respondents: lowest alpha {num(m.get('min_alpha'), 2)} ({m.get('min_alpha_construct')}), "
            f"lowest omega {num(m.get('min_omega'), 2)}, lowest AVE {num(m.get('lowest_ave'), 2)} "
            f"({m.get('lowest_ave_construct')}), highest HTMT {num(m.get('highest_htmt'), 2)} ({m.get('highest_htmt_pair')}); "
            f"Harman first factor {pct(m.get('harman_first_factor_share'), 0)}; outputs in {out}")


def _invariance_line(m, out):
    used = ", ".join(f"{g} n={n}" for g, n in (m.get("n_used") or {}).items())
    left = "; left out: " + ", ".join(f"{g['group'] or '(no group)'} n={g['n']}" for g in m["groups_left_out"]) \
        if m.get("groups_left_out") else ""
    s = m.get("structural") or {}
    structural = f"; paths: {s.get('answer')}" if s.get("compared") else f"; paths not compared ({s.get('reason')})"
    partial_note = f" (partial: {', '.join(m['partial'])})" if m.get("partial_invariance") else ""
    return (f"invariance across {m['group']} ({used}{left}; {m['estimator']}, {m.get('indices')} indices): "
            f"level reached: {m['level']}{partial_note}{structural}; outputs in {out}")


def _sem_line(m, out):
    f, b = m["fit"], m.get("bootstrap") or {}
    boot = f"; bootstrap {b.get('converged')} of {b['requested']} draws converged" if b.get("requested") else ""
    hyp = f"; hypotheses supported: {m['hypotheses_supported']} of {len(m['hypotheses'])}" if m.get("hypotheses") else ""
    return (f"SEM ({m['estimator']}, {m['missing']}) on {f.get('ntotal')} of {m['n_rows']} rows: {fit_summary(f)}"
            f"{boot}{hyp}; preferred model: {m.get('preferred_model')}; outputs in {out}")


_SUMMARY = {"clean": _clean_line, "split": _split_line, "efa": _efa_line, "cfa": _cfa_line,
            "reliability": _reliability_line, "invariance": _invariance_line, "sem": _sem_line}


# ---------------------------------------------------------------------------------------------
# the stage reports

def report_for(stage: str, metrics: Mapping, tables: Mapping[str, pd.DataFrame], directory=None,
               warnings: bool = True) -> str:
    """The console report of ``stage`` from its metrics and tables (see :data:`STAGES`);
    ``warnings=False`` leaves the warnings out (a stage command prints them on stderr)."""
    title = _title(stage, metrics, directory)
    body = _REPORTS[stage](metrics, tables)
    absent = [n for n in {**STAGES, **OTHER_STAGES}[stage][1] if n not in tables]
    note = f"Not found (not shown): {', '.join(absent)}" if absent else ""
    w = warnings_block(_warnings_of(stage, metrics)) if warnings else ""
    return _join(title, body, note, w)


def _title(stage, m, directory) -> str:
    where = f" ({directory})" if directory is not None else ""
    sim = "  [SIMULATED data]" if m.get("simulated") else ""
    return f"gapscale {stage}{where}{sim}\n{RULE}"


def _warnings_of(stage: str, m: Mapping) -> list:
    if stage == "cfa":
        return list(m.get("inadmissible") or [])
    if stage == "reliability":
        return list(m.get("flags") or []) + list(m.get("warnings") or [])
    w = m.get("warnings")
    return list(w) if isinstance(w, list) else []


def _clean_report(m, t):
    head = _block("Respondents", [
        ("Source", f"{m.get('source', '')} ({m.get('format', '')})" if m.get("format") else str(m.get("source", ""))),
        ("Rows read", count(m.get("rows_in"))), ("Kept", count(m.get("kept"))),
        ("Excluded", f"{count(m.get('excluded'))} ({pct((m.get('excluded') or 0) / m['rows_in'])})" if m.get("rows_in") else ""),
        ("Cells set missing", count(m.get("cells_set_missing", m.get("cell_problems")))),
        ("Cells changed", count(m.get("cells_changed"))),
        ("Missing cells (kept data)", pct(m.get("missing_rate"), 2)),
        *[(f"Answered {o.get('label')} ({o.get('code')})", count(o.get("n")))
          for o in (m.get("outside_answers") or {}).values()],
        ("Respondent ids", str(m.get("respondent_ids") or "")),
        *([("Organisations", count((m.get("clusters") or {}).get("n_clusters"))),
           ("Largest design effect", num((m.get("clusters") or {}).get("max_design_effect"), 2))]
          if m.get("clusters") else [])])
    screens = m.get("excluded_by_screen") or {}
    truth = m.get("screens_vs_truth") or {}
    settings = m.get("screens") or {}
    rows = []
    for s, n in screens.items():
        v = truth.get(s) or {}
        rows.append([s, count(n), num(v.get("precision"), 2) if v else "", num(v.get("recall"), 2) if v else ""])
    hdr = ["Screen", "Excluded"] + (["Precision", "Recall"] if truth else [])
    screen_text = "Exclusions by screen (a respondent may fail several):\n" + table(
        [r if truth else r[:2] for r in rows], hdr) if rows else ""
    sett = _block("Screen settings", [(k, str(v)) for k, v in settings.items()])
    mcar = m.get("little_mcar") or {}
    mcar_text = _block("Little's MCAR test", [
        ("Chi-square", num(mcar.get("statistic"))), ("Degrees of freedom", count(mcar.get("df"))),
        ("P-value", p_value(mcar.get("pvalue"))), ("Missing-data patterns", count(mcar.get("n_patterns")))]) if mcar else ""
    items = t.get("missing_items.csv")
    miss = ""
    if items is not None and len(items) and "pct_missing" in items:
        top = items.sort_values("pct_missing", ascending=False, kind="stable").head(5)
        miss = "Items with the most missing cells:\n" + table(
            [[r.variable, count(r.n_missing), f"{num(r.pct_missing, 1)}%"] for r in top.itertuples()],
            ["Item", "Missing", "Percent"])
    notes = warnings_block(m.get("notes"), "Notes")
    return _join(head, screen_text, sett, mcar_text, miss, notes).rstrip("\n")


def _split_report(m, t):
    head = _block("Split", [("Respondents", count(m.get("n"))), ("EFA half", count(m.get("n_efa"))),
                            ("CFA half", count(m.get("n_cfa"))), ("Share to the EFA half", num(m.get("share"), 2)),
                            ("Stratified by", str(m.get("stratify") or "none")), ("Seed", count(m.get("seed")))])
    strata = m.get("strata") or []
    st = "Strata:\n" + table([[str(s.get("stratum")), count(s.get("n")), count(s.get("n_efa")), count(s.get("n_cfa"))]
                              for s in strata], ["Stratum", "N", "EFA", "CFA"]) if strata else ""
    return _join(head, st).rstrip("\n")


def _efa_report(m, t):
    k = m.get("n_factors") or {}
    b = m.get("bartlett") or {}
    f = m.get("fit") or {}
    head = _block("Data", [("Respondents", count(m.get("n"))), ("Items", count(m.get("items"))),
                           ("Correlations", str(m.get("correlation", ""))), ("Extraction", str(m.get("extraction", ""))),
                           ("Rotation", str(m.get("rotation", ""))),
                           ("Items dropped (efa.drop_items)", ", ".join(map(str, m.get("dropped_items") or [])) or "none")])
    adequacy = _block("Sampling adequacy", [
        ("Kaiser-Meyer-Olkin (overall MSA)", num(m.get("kmo"))),
        (f"Lowest item MSA ({m.get('kmo_min_item_id', '')})", num(m.get("kmo_min_item"))),
        ("Bartlett's test: chi-square", num(b.get("chisq"))), ("Bartlett's test: df", count(b.get("df"))),
        ("Bartlett's test: p-value", p_value(b.get("pvalue")))])
    nf = _block("Number of factors", [
        ("Used", f"{count(k.get('used'))} ({k.get('rule', '')})"), ("Constructs in the instrument", count(k.get("constructs"))),
        ("Parallel analysis (factors)", count(k.get("parallel_fa"))),
        ("Parallel analysis (components)", count(k.get("parallel_pc"))),
        ("Velicer's MAP", count(k.get("map"))), ("Kaiser (eigenvalues > 1)", count(k.get("kaiser"))),
        ("Note", str(k.get("note") or ""))])
    fit = _block("Fit of the factor model", [
        ("Chi-square", num(f.get("chisq"))), ("Degrees of freedom", count(f.get("df"))),
        ("P-value", p_value(f.get("pvalue"))), ("Tucker-Lewis Index (TLI)", num(f.get("tli"))),
        ("RMSEA", num(f.get("rmsea"))),
        ("90 Percent confidence interval", f"[{num(f.get('rmsea_ci_lower'))}, {num(f.get('rmsea_ci_upper'))}]"
         if _has(f, "rmsea_ci_lower") else ""),
        ("Root mean square of residuals (RMSR)", num(f.get("rms"))), ("BIC", num(f.get("bic"))),
        ("Converged", "yes" if m.get("converged") else "no")])
    var = t.get("efa_variance.csv")
    var_text = ""
    if var is not None and len(var):
        var_text = "Variance accounted for:\n" + table(
            [[r.factor, num(r.ss_loadings, 2), num(r.proportion_var, 3), num(r.cumulative_var, 3)]
             for r in var.itertuples()], ["Factor", "SS loadings", "Proportion", "Cumulative"])
    loads = t.get("efa_loadings.csv")
    diag = t.get("efa_diagnostics.csv")
    load_text = ""
    factors = [c for c in (loads.columns if loads is not None else []) if re.fullmatch(r"F\d+", str(c))]
    if loads is not None and len(loads) and 0 < len(factors) <= 8:
        rows = [[str(r["item"])] + [num(r[c], 2) if abs(r[c]) >= 0.3 else "" for c in factors]
                + [num(r.get("h2"), 2), num(r.get("u2"), 2), num(r.get("complexity"), 1)] for _, r in loads.iterrows()]
        load_text = ("Pattern loadings (|loading| < .30 left blank; efa_loadings.csv has every one):\n"
                     + table(rows, ["Item"] + factors + ["h2", "u2", "com"]))
    elif diag is not None and len(diag):
        rows = [[str(r.item), str(r.construct), str(r.primary_factor), num(r.primary_loading, 2),
                 num(r.cross_loading, 2), num(r.communality, 2), "yes" if r.flagged else "",
                 "" if is_missing(r.reasons) else str(r.reasons)] for r in diag.itertuples()]
        load_text = ("Items: the factor each loads highest on (efa_loadings.csv has the pattern matrix):\n"
                     + table(rows, ["Item", "Construct", "Factor", "Loading", "Cross", "h2", "Flagged", "Reasons"],
                             "lllrrrll"))
    phi = t.get("efa_factor_correlations.csv")
    phi_text = ""
    if phi is not None and len(phi) and "factor" in phi:
        names = [c for c in phi.columns if c != "factor"]
        if len(names) <= 8:
            phi_text = "Factor correlations:\n" + table(
                [[r["factor"]] + [num(r[c], 2) for c in names] for _, r in phi.iterrows()], ["Factor"] + names)
        else:
            pairs = [(a, c, phi.iloc[i][c]) for i, a in enumerate(phi["factor"]) for c in names[i + 1:]]
            pairs.sort(key=lambda x: -abs(x[2]) if not is_missing(x[2]) else 0)
            phi_text = "Largest factor correlations (efa_factor_correlations.csv has them all):\n" + table(
                [[a, c, num(r, 2)] for a, c, r in pairs[:10]], ["Factor", "Factor", "r"], "llr")
    summary = _block("Structure", [("Items loading highest on their construct's factor",
                                    pct(m.get("structure_agreement"), 0)),
                                   ("Items flagged", count(m.get("flagged_items")))])
    return _join(head, adequacy, nf, fit, var_text, load_text, phi_text, summary).rstrip("\n")


def _estimation_block(m) -> str:
    f = m.get("fit") or {}
    rows = [("Estimator", str(m.get("estimator", ""))), ("Missing data", str(m.get("missing", ""))),
            ("Identification", "latent variances fixed at 1 (std.lv)" if m.get("std_lv") else
             "first loading fixed at 1" if "std_lv" in m else ""),
            ("Ordered items", _names(m.get("ordered"))),
            ("Number of model parameters", count(f.get("npar"))),
            ("Number of observations (used / rows)", f"{count(f.get('ntotal'))} / {count(m.get('n_rows'))}"),
            ("Converged", ("yes" if m.get("converged") else "NO") + (f" ({m['iterations']} iterations)"
                                                                     if m.get("iterations") is not None else ""))]
    if "admissible" in m:
        rows.append(("Admissible solution", "yes" if m.get("admissible") else "NO (see warnings)"))
    return _block("Estimation", rows)


def _names(names) -> str:
    """A list of names, shortened when long: ``15 (A1, A2, A3, ..., E5)``."""
    if not isinstance(names, list):
        return str(names or "")
    if len(names) <= 6:
        return ", ".join(map(str, names))
    return f"{len(names)} ({', '.join(map(str, names[:3]))}, ..., {names[-1]})"


def _cfa_report(m, t):
    params = t.get("cfa_parameters.csv")
    ptext = parameter_table(params) if params is not None and len(params) else ""
    mi = t.get("cfa_modindices.csv")
    mi_text = ""
    if mi is not None and len(mi):
        top = mi.head(10)
        mi_text = "Largest modification indices (cfa_modindices.csv):\n" + table(
            [[f"{r.lhs} {r.op} {r.rhs}", num(r.mi), num(r.epc), num(r.sepc_all)] for r in top.itertuples()],
            ["Parameter", "mi", "epc", "sepc.all"])
    note = f"Note: {m['note']}" if m.get("note") else ""
    return _join(_estimation_block(m), fit_block(m.get("fit") or {}, m.get("estimator", "")),
                 "Parameter Estimates:" if ptext else "", ptext, mi_text, note).rstrip("\n")


def _reliability_report(m, t):
    rel = t.get("reliability.csv")
    rel_text = ""
    if rel is not None and len(rel):
        rows = [[str(r.construct), count(r.n_items), num(r.raw_alpha, 2),
                 f"[{num(r.feldt_lower, 2)}, {num(r.feldt_upper, 2)}]" if not is_missing(r.feldt_lower) else "",
                 num(r.omega, 2), num(r.cr, 2), num(r.ave, 2), num(r.sqrt_ave, 2), num(r.max_abs_correlation, 2),
                 "yes" if r.fornell_larcker_met else "NO"] for r in rel.itertuples()]
        rel_text = ("Reliability and convergent validity:\n"
                    + table(rows, ["Construct", "Items", "Alpha", "95% CI (Feldt)", "Omega", "CR", "AVE", "sqrt(AVE)",
                                   "max |r|", "Fornell-Larcker"]))
    htmt = t.get("htmt.csv")
    h_text = ""
    if htmt is not None and len(htmt):
        top = htmt.sort_values("htmt", ascending=False, kind="stable").head(10)
        has_ci = "ci_lower" in top and top["ci_lower"].notna().any()
        rows = [[f"{r.construct_1} - {r.construct_2}", num(r.htmt, 3)]
                + ([f"[{num(r.ci_lower, 3)}, {num(r.ci_upper, 3)}]"] if has_ci else []) for r in top.itertuples()]
        h_text = (f"Heterotrait-monotrait ratio (HTMT), the {len(top)} highest of {len(htmt)} pairs (htmt.csv):\n"
                  + table(rows, ["Pair", "HTMT"] + (["95% bootstrap CI"] if has_ci else [])))
    cmv_m = m.get("cmv") or {}
    rows = [("Harman's single factor: share of variance (a convention only)", pct(m.get("harman_first_factor_share")))]
    for v in (cmv_m.get("method_factor") or {}).get("variants") or []:
        rows.append((f"Unmeasured method factor ({v.get('variant')})",
                     ("admissible" if v.get("admissible") else "NOT admissible: " + str(v.get("reasons") or ""))[:160]))
        if v.get("admissible"):
            rows.append((f"  ({v.get('variant')}) chi-square difference, df, p",
                         f"{num(v.get('delta_chisq'))}, {count(v.get('delta_df'))}, {p_value(v.get('delta_pvalue'))}"))
    mk = cmv_m.get("marker")
    if mk:
        rows += [("Marker construct", str(mk.get("construct"))),
                 ("Marker technique: method variance present", "yes" if mk.get("method_detected") else "no"),
                 ("Marker technique: model retained", str(mk.get("retained"))),
                 ("Marker technique: correlations biased", "yes" if mk.get("correlations_biased") else "no"),
                 ("Marker technique: method share of item variance", pct(mk.get("method_variance_share"))),
                 ("Lindell-Whitney r_M", num(mk.get("r_marker"))),
                 ("Lindell-Whitney significant correlations (before -> after)",
                  f"{count(mk.get('lw_significant_unadjusted'))} -> {count(mk.get('lw_significant_adjusted'))} "
                  f"of {count(mk.get('lw_pairs'))}")]
        ap = cmv_m.get("adjusted_paths") or {}
        if ap:
            rows.append(("Method-adjusted paths: largest change in std. path", num(ap.get("max_abs_difference"))))
    elif cmv_m:
        rows.append(("Marker construct", "none (" + str(cmv_m.get("marker_note") or "") + ")"))
    cmv = _block("Common-method variance (cmv_models.csv, cmv_tests.csv)", rows)
    head = _block("Data", [("Respondents", count(m.get("n"))), ("Missing data", str(m.get("missing", ""))),
                           ("Measurement model", str(m.get("cfa_fit") or ""))])
    return _join(head, rel_text, h_text, cmv).rstrip("\n")


def _invariance_report(m, t):
    idx = m.get("indices") or "standard"
    suffix = "" if idx == "standard" else f"_{idx}"
    groups = t.get("invariance_groups.csv")
    g_text = ""
    if groups is not None and len(groups):
        g_text = f"Groups ({m.get('group')}):\n" + table(
            [[str(r.group), count(r.n), "yes" if r.used else "no", "" if is_missing(r.reason) else str(r.reason)]
             for r in groups.itertuples()], ["Group", "N", "Fitted", "Reason"], "lrll")
    head = _block("Estimation", [("Estimator", str(m.get("estimator", ""))), ("Missing data", str(m.get("missing", ""))),
                                 ("Identification", str(m.get("identification") or "")),
                                 ("Fit indices judged", idx), ("Difference test", str(m.get("difference_test") or "")),
                                 ("Criterion", str(m.get("criterion") or "")),
                                 ("Reference group", str(m.get("reference_group") or "")),
                                 ("Converged", "yes" if m.get("converged") else "NO")])
    fit = t.get("invariance_fit.csv")
    f_text = ""
    if fit is not None and len(fit):
        def col(r, name):  # the test is the scaled one with robust or scaled indices (lavaan has no robust test)
            v = getattr(r, f"{name}{'_scaled' if name in ('chisq', 'pvalue') else suffix}", None) if suffix else None
            return getattr(r, name, None) if is_missing(v) else v
        rows = [[str(r.model), num(col(r, "chisq")), count(r.df), p_value(col(r, "pvalue")), num(col(r, "cfi")),
                 num(col(r, "rmsea")), num(r.srmr), num(r.delta_chisq), count(r.delta_df), p_value(r.delta_pvalue),
                 num(r.delta_cfi), num(r.delta_rmsea), "yes" if r.holds is True or r.holds == "True" else "NO"]
                for r in fit.itertuples()]
        label = "" if idx == "standard" else f" (scaled chi-square; {idx} CFI and RMSEA)"
        f_text = f"Invariance ladder{label}:\n" + table(
            rows, ["Model", "Chisq", "Df", "P", "CFI", "RMSEA", "SRMR", "dChisq", "dDf", "P(d)", "dCFI", "dRMSEA",
                   "Holds"])
    level = _block("Result", [("Level reached", str(m.get("level", ""))),
                              ("Freed (partial invariance)", ", ".join(map(str, m.get("partial") or [])))])
    lm = t.get("invariance_latent_means.csv")
    lm_text = ""
    if lm is not None and len(lm):
        lm_text = (f"Latent mean differences (reference group {m.get('reference_group')} fixed at 0):\n"
                   + table([[str(r.group), str(r.latent), num(r.est), num(r.se), num(r.z), p_value(r.pvalue),
                             num(r.std_all)] for r in lm.itertuples()],
                           ["Group", "Latent", "Estimate", "Std.Err", "z-value", "P(>|z|)", "Std.all"], "llrrrrr"))
    s = m.get("structural") or {}
    s_text = ""
    if s:
        s_text = _block("Structural paths across groups", [
            ("Compared", "yes" if s.get("compared") else f"no ({s.get('reason', '')})"),
            ("Measurement held equal", str(s.get("measurement") or "")),
            ("Chi-square difference", num(s.get("delta_chisq"))), ("df difference", count(s.get("delta_df"))),
            ("P-value", p_value(s.get("delta_pvalue"))), ("Paths tested", count(s.get("n_paths"))),
            ("Paths that differ (Holm)", count(s.get("n_paths_differ"))), ("Answer", str(s.get("answer") or ""))])
    paths = t.get("invariance_paths.csv")
    p_text = ""
    if paths is not None and len(paths) and "group" in paths:
        paths = paths.assign(path=paths["lhs"].astype(str).str.strip() + " ~ " + paths["rhs"].astype(str).str.strip())
        gs = list(dict.fromkeys(paths["group"]))
        rows = []
        for path, q in paths.groupby("path", sort=False):
            first = q.iloc[0]
            by = dict(zip(q["group"], q["std_all"]))
            rows.append([path] + [num(by.get(g), 2) for g in gs]
                        + [num(first.wald_chisq, 2), count(first.wald_df), p_value(first.pvalue_holm),
                           "yes" if first.differs is True or first.differs == "True" else ""])
        p_text = ("Standardised paths by group and the Wald test of their equality (p Holm-adjusted):\n"
                  + table(rows, ["Path"] + [str(g) for g in gs] + ["Wald", "Df", "P(Holm)", "Differs"]))
    return _join(head, g_text, f_text, level, lm_text, s_text, p_text).rstrip("\n")


def _sem_report(m, t):
    params = t.get("sem_parameters.csv")
    interval = m.get("interval") or "ci"
    ci = None
    if params is not None and len(params):
        cols = ("ci_lower", "ci_upper") if interval == "ci" else (f"{interval}_lower", f"{interval}_upper")
        ci = cols if all(c in params for c in cols) else None
    ptext = parameter_table(params, t.get("sem_r2.csv"), ci=ci) if params is not None and len(params) else ""
    b = m.get("bootstrap") or {}
    level = m.get("ci")
    what = {"ci": "Wald (delta method)", "boot_pct": "bootstrap percentile", "boot_bc": "bootstrap bias-corrected"}
    boot = _block("Intervals", [("Interval (ci.lower, ci.upper)", f"{pct(level, 0)} {what.get(interval, interval)}"
                                 if level is not None else ""),
                                ("Bootstrap draws requested", count(b.get("requested")) if b.get("requested") else ""),
                                ("Bootstrap draws converged", count(b.get("converged")) if b.get("requested") else ""),
                                ("Bootstrap seed", count(b.get("seed")) if b.get("requested") else "")])
    hyp = t.get("sem_hypotheses.csv")
    h_text = ""
    if hyp is not None and len(hyp):
        rows, last = [], None
        for r in hyp.itertuples():  # the verdict once per hypothesis, on its first row
            rows.append([str(r.hypothesis) if r.hypothesis != last else "", str(r.path), str(r.expected), num(r.est),
                         num(r.std_all), f"[{num(r.ci_lower)}, {num(r.ci_upper)}]" if not is_missing(r.ci_lower) else "",
                         p_value(r.pvalue), "yes" if r.supported is True or r.supported == "True" else "no",
                         str(r.verdict) if r.hypothesis != last else ""])
            last = r.hypothesis
        h_text = "Hypotheses (sem_hypotheses.csv has each statement and path in full):\n" + table(
            rows, ["Id", "Path", "Expected", "Estimate", "Std.all", "Interval", "P", "Supported", "Verdict"],
            "lllrrrrll", max_cell=36)
    comp = t.get("sem_competing.csv")
    c_text = ""
    if comp is not None and len(comp):
        scaled = "chisq_scaled" in comp and comp["chisq_scaled"].notna().any()
        rows = [[str(r.model), count(r.npar), num(r.chisq)] + ([num(r.chisq_scaled)] if scaled else [])
                + [count(r.df), num(r.cfi), num(r.rmsea), num(r.srmr), num(r.aic, 1), num(r.bic, 1),
                   num(r.delta_chisq), count(r.delta_df), p_value(r.delta_pvalue),
                   "<-" if r.preferred is True or r.preferred == "True" else ""] for r in comp.itertuples()]
        c_text = "Competing models (<- the preferred one, by sem.criterion{}):\n".format(
            "; CFI, RMSEA and SRMR are the standard ones" if scaled else "") + table(
            rows, ["Model", "Npar", "Chisq"] + (["Scaled"] if scaled else [])
            + ["Df", "CFI", "RMSEA", "SRMR", "AIC", "BIC", "dChisq", "dDf", "P(d)", ""])
    return _join(_estimation_block(m), fit_block(m.get("fit") or {}, m.get("estimator", "")),
                 "Parameter Estimates:" if ptext else "", ptext, boot, h_text, c_text).rstrip("\n")


def _plain_block(title: str, m: Mapping) -> str:
    """Every scalar of ``m`` (lists joined, nested mappings flattened) as a label-value block."""
    rows = []
    for k, v in m.items():
        if isinstance(v, Mapping):
            rows += [(f"{k}.{a}", b) for a, b in v.items() if not isinstance(b, (Mapping, list))]
        elif isinstance(v, list):
            rows.append((k, ", ".join(map(str, v)) or "none"))
        else:
            rows.append((k, v))
    return _block(title, [(str(k), count(v) if isinstance(v, int) and not isinstance(v, bool) else
                           num(v) if isinstance(v, float) else str(v)) for k, v in rows if k != "simulated"])


def _simulate_report(m, t):
    return _plain_block("Simulated study (counts of rows, respondents and defects drawn)", m)


def _content_report(m, t):
    rec = m.get("recovery") or {}
    head = _block("Expert panel (content validity)", [
        ("Experts", count(m.get("n_experts"))), ("Items rated", count(m.get("n_items_rated"))),
        ("Item sort", "yes" if m.get("item_sort") else "no"), ("Essential: ratings >=", count(m.get("essential_min"))),
        ("S-CVI/Ave", num(m.get("s_cvi_ave"), 3)), ("S-CVI/UA", num(m.get("s_cvi_ua"), 3)),
        ("Items flagged", count(m.get("n_flagged")))]
        + ([("Planted items: precision", num(rec.get("precision"), 3)), ("Planted items: recall", num(rec.get("recall"), 3))]
           if rec else []))
    scale = t.get("content_scale.csv")
    per = ""
    if scale is not None and len(scale):
        per = "Per construct:\n" + table(
            [[str(r.construct) if str(r.level) != "scale" else "Scale", count(r.n_items), num(r.s_cvi_ave, 3),
              num(r.s_cvi_ua, 3), count(r.n_flagged)] for r in scale.itertuples()],
            ["Construct", "Items", "S-CVI/Ave", "S-CVI/UA", "Flagged"])
    items = t.get("content_items.csv")
    flagged = ""
    if items is not None and "flagged" in items and items["flagged"].astype(str).eq("True").any():
        rows = items[items["flagged"].astype(str).eq("True")]
        flagged = "Flagged items:\n" + table(
            [[str(r.item), num(r.i_cvi, 2), num(r.cvr, 2), num(r.c_sv, 2) if "c_sv" in items else "",
              str(r.reasons).replace(";", ", ")] for r in rows.itertuples()],
            ["Item", "I-CVI", "CVR", "c_sv", "Reasons"])
    return _join(head, per, flagged).rstrip("\n")


def _report_report(m, t):
    return _plain_block("Report (report.md, report.html)", m)


def _render_report(m, t):
    book = t.get("codebook.csv")
    if book is None or not len(book) or "kind" not in book:
        return ""
    kinds = book["kind"].value_counts(sort=False)
    constructs = book["construct"].dropna().nunique() if "construct" in book else 0
    return _block("Questionnaire (questionnaire.md, questionnaire.html, qualtrics.txt, codebook.csv)",
                  [("Constructs", count(constructs))] + [(f"Columns of kind {k}", count(n)) for k, n in kinds.items()])


_REPORTS = {"content": _content_report, "simulate": _simulate_report, "render": _render_report, "report": _report_report, "clean": _clean_report, "split": _split_report, "efa": _efa_report, "cfa": _cfa_report,
            "reliability": _reliability_report, "invariance": _invariance_report, "sem": _sem_report}
