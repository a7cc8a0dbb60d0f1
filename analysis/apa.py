"""Numbers and tables as a reviewer expects them in a paper: APA style (7th edition).

Pure formatting, no I/O: every function takes numbers (or a DataFrame) and returns strings (or
a DataFrame of strings). The conventions, from the *Publication Manual of the American
Psychological Association* (7th ed., 2020, sections 6.36 and 7.21):

- two decimal places for statistics (``2.35``), three for *p* values (``.031``), with
  *p* values below .001 written ``< .001``;
- three decimal places for the approximate fit indices CFI, TLI, RMSEA and SRMR and their
  changes, without the leading zero (``CFI = .952``, ``RMSEA = .078 [.075, .081]``,
  ``ΔCFI = -.004``), as SEM papers and reviewers print them (:func:`fmt_fit`): two decimals hide
  the differences the cut-offs are about (RMSEA .055 and .064 both print as 0.06), and the four
  indices are read on a 0-1 scale (TLI can exceed 1 a little and then prints ``1.002``);
- no zero before the decimal point for a statistic that cannot exceed 1 in absolute value
  (``.45``, ``-.12``), a zero before it otherwise (``0.45``);
- commas between groups of three digits from 1,000 upwards (``2,722.09``, ``1,020``), except
  in degrees of freedom (``χ²(2331)``, section 6.38);
- confidence intervals in square brackets, ``[.12, .34]``;
- rounding half away from zero on the decimal number printed (``0.125`` gives ``.13``, as a
  reader rounding by hand would, where ``format(0.125, ".2f")`` gives ``0.12``);
- a value that rounds to zero is written without a sign (``.00``, never ``-.00``).

Which statistics count as bounded by 1 (no leading zero), as used by the report:

========================================================  ==========================
bounded (``.45``)                                          not bounded (``0.45``)
========================================================  ==========================
*p*, correlations (factor, latent, Fornell-Larcker),       HTMT (a ratio; above 1
standardised loadings and coefficients (beta),             signals a problem), chi-square,
:math:`R^2`, communalities, alpha, omega, CR, AVE, sqrt    unstandardised estimates, SEs
AVE, KMO, proportions of variance; the fit indices CFI,
TLI, RMSEA, SRMR and the EFA's RMSR (three decimals,
:func:`fmt_fit`)
========================================================  ==========================

Standardised loadings and paths can exceed 1 in an inadmissible solution (a Heywood case);
they are printed without the zero all the same, as SEM papers do, and the inadmissible
solution is reported as such.

Rounding happens here and only here (never inside a computation); :func:`parse_number` turns
a printed number back into a float, so a test can check a report against the stage outputs.

References
----------
American Psychological Association. (2020). *Publication manual of the American Psychological
    Association* (7th ed.). https://doi.org/10.1037/0000165-000
"""
from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping

import pandas as pd

__all__ = [
    "BOUNDED", "FIT_INDICES", "fmt_number", "fmt_bounded", "fmt_fit", "fmt_fit_ci", "fmt_p", "fmt_p_text", "fmt_int", "fmt_df", "fmt_ci", "fmt_chisq",
    "stars", "fmt_yes_no", "fmt_against", "apa_table", "parse_number", "apa_p_in_text", "is_missing",
]

# Statistics (lavaan / gapscale column names) that cannot exceed 1 in absolute value.
BOUNDED = frozenset({
    "pvalue", "p", "delta_pvalue", "r", "correlation", "std_all", "std_lv", "r2", "h2", "communality",
    "raw_alpha", "alpha", "feldt_lower", "feldt_upper", "omega", "cr", "ave", "ave_std", "sqrt_ave",
    "max_abs_correlation", "cfi", "delta_cfi", "kmo", "proportion_var", "cumulative_var",
    "primary_loading", "cross_loading",
})

# Approximate fit indices (and their changes): three decimals, no leading zero (fmt_fit).
FIT_INDICES = frozenset({
    "cfi", "tli", "rmsea", "srmr", "rmsea_ci_lower", "rmsea_ci_upper", "delta_cfi", "delta_tli", "delta_rmsea",
    "delta_srmr", "cfi_scaled", "tli_scaled", "rmsea_scaled", "cfi_robust", "tli_robust", "rmsea_robust",
})


def is_missing(x) -> bool:
    """None, NaN or pandas' NA: a cell printed empty (anything else, text included, is a value)."""
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _round(x: float, decimals: int) -> Decimal:
    """``x`` rounded half away from zero, on its shortest decimal representation."""
    return Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def fmt_number(x, decimals: int = 2, bounded: bool = False, thousands: bool = True, missing: str = "") -> str:
    """A number as APA prints it.

    Parameters
    ----------
    x : float or None
        The value; ``None`` or NaN gives ``missing``.
    decimals : int, default 2
        Decimal places.
    bounded : bool, default False
        The statistic cannot exceed 1 in absolute value: no zero before the decimal point.
    thousands : bool, default True
        Commas between groups of three digits (``12,345.68``).
    missing : str, default ""
        What to print for a missing value (an empty table cell by default).

    Returns
    -------
    str

    Examples
    --------
    >>> fmt_number(0.4567, bounded=True)
    '.46'
    >>> fmt_number(-0.004, bounded=True)
    '.00'
    >>> fmt_number(2722.0945)
    '2,722.09'
    >>> fmt_number(0.125)
    '0.13'
    """
    if is_missing(x):
        return missing
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    d = _round(x, decimals)
    if d == 0:
        d = abs(d)
    text = f"{abs(d):,.{decimals}f}" if thousands else f"{abs(d):.{decimals}f}"
    if bounded and text.startswith("0."):
        text = text[1:]
    return ("-" if d < 0 else "") + text


def fmt_bounded(x, decimals: int = 2, missing: str = "") -> str:
    """A statistic bounded by 1 (a correlation, a standardised loading, CFI, alpha): ``.45``."""
    return fmt_number(x, decimals, bounded=True, missing=missing)


def fmt_fit(x, missing: str = "") -> str:
    """An approximate fit index (CFI, TLI, RMSEA, SRMR) or its change: three decimals, no
    leading zero.

    Examples
    --------
    >>> fmt_fit(0.95234), fmt_fit(0.0781), fmt_fit(1.0013), fmt_fit(-0.0042)
    ('.952', '.078', '1.001', '-.004')
    """
    return fmt_number(x, 3, bounded=True, missing=missing)


def fmt_fit_ci(lower, upper, missing: str = "") -> str:
    """The RMSEA's confidence interval as a fit index: ``[.075, .081]``."""
    return fmt_ci(lower, upper, 3, bounded=True, missing=missing)


def fmt_p(p, decimals: int = 3, missing: str = "") -> str:
    """A *p* value: three decimals without the leading zero, ``< .001`` below .001.

    Examples
    --------
    >>> fmt_p(0.0312), fmt_p(0.00004), fmt_p(1.0)
    ('.031', '< .001', '1.000')
    """
    if is_missing(p):
        return missing
    p = float(p)
    if p < 10 ** -decimals:
        return "< " + fmt_number(10 ** -decimals, decimals, bounded=True)
    return fmt_number(p, decimals, bounded=True)


def fmt_p_text(p, decimals: int = 3) -> str:
    """A *p* value in running text: ``p = .031`` or ``p < .001`` (empty when missing)."""
    shown = fmt_p(p, decimals)
    if not shown:
        return ""
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def fmt_int(n, missing: str = "") -> str:
    """A count with APA's thousands separator: ``1,020``."""
    if is_missing(n):
        return missing
    return f"{int(round(float(n))):,}"


def fmt_df(df, missing: str = "") -> str:
    """Degrees of freedom: a whole number without the thousands separator (APA 6.38), ``2331``;
    a fractional df (a scaled test) keeps two decimals."""
    if is_missing(df):
        return missing
    df = float(df)
    return f"{int(df)}" if df.is_integer() else fmt_number(df, 2, thousands=False)


def fmt_ci(lower, upper, decimals: int = 2, bounded: bool = False, missing: str = "") -> str:
    """A confidence interval in square brackets: ``[.12, .34]``."""
    if is_missing(lower) or is_missing(upper):
        return missing
    return f"[{fmt_number(lower, decimals, bounded)}, {fmt_number(upper, decimals, bounded)}]"


def fmt_chisq(chisq, df, p=None, decimals: int = 2) -> str:
    """A chi-square test in running text: ``χ²(2331) = 2,722.09, p < .001``."""
    if is_missing(chisq) or is_missing(df):
        return ""
    text = f"χ²({fmt_df(df)}) = {fmt_number(chisq, decimals)}"
    return f"{text}, {fmt_p_text(p)}" if not is_missing(p) else text


def stars(p) -> str:
    """Significance stars: ``*`` p < .05, ``**`` p < .01, ``***`` p < .001 (empty otherwise)."""
    if is_missing(p):
        return ""
    p = float(p)
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def fmt_against(x, cut, decimals: int = 2, bounded: bool = False, max_decimals: int = 4) -> str:
    """``x`` with enough decimals to show on which side of ``cut`` it lies.

    A value just under a cut-off would print as the cut-off itself (AVE = 0.4994 as ``.50``,
    next to "AVE < .50"); one or two more decimals keep the text honest (``.499``).

    Examples
    --------
    >>> fmt_against(0.4994, 0.5, bounded=True), fmt_against(0.46, 0.5, bounded=True)
    ('.499', '.46')
    """
    if is_missing(x) or is_missing(cut):
        return fmt_number(x, decimals, bounded)
    x, cut = float(x), float(cut)
    for d in range(decimals, max_decimals + 1):
        shown = float(_round(x, d))
        if (shown < cut) == (x < cut) and (shown > cut) == (x > cut):
            return fmt_number(x, d, bounded)
    return fmt_number(x, max_decimals, bounded)


def fmt_yes_no(x, missing: str = "") -> str:
    """A boolean (or "True"/"False" text read from a CSV) as ``Yes``/``No``."""
    if is_missing(x):
        return missing
    if isinstance(x, str):
        low = x.strip().lower()
        if low in ("true", "yes", "1"):
            return "Yes"
        if low in ("false", "no", "0"):
            return "No"
        return x
    return "Yes" if bool(x) else "No"


_KINDS: dict[str, Callable] = {
    "text": lambda x: "" if is_missing(x) else str(x),
    "int": fmt_int,
    "df": fmt_df,
    "number": fmt_number,
    "bounded": fmt_bounded,
    "fit": fmt_fit,
    "p": fmt_p,
    "yes_no": fmt_yes_no,
    "stars": stars,
}


def apa_table(df: pd.DataFrame, formats: Mapping[str, str | Callable], headers: Mapping[str, str] | None = None,
              ) -> pd.DataFrame:
    """A table of strings, each column formatted by its kind, ready to print or paste.

    Parameters
    ----------
    df : DataFrame
        The numbers, as a stage wrote them.
    formats : mapping of column -> kind
        Columns to keep, in this order, each with its kind: ``"text"``, ``"int"``, ``"df"``,
        ``"number"`` (two decimals), ``"bounded"`` (two decimals, no leading zero), ``"fit"``
        (a fit index: three decimals, no leading zero), ``"p"``,
        ``"yes_no"``, ``"stars"``, or a callable taking the value and returning a string.
    headers : mapping of column -> header, optional
        Column headings as printed (``{"std_all": "β"}``); columns not named keep theirs.

    Returns
    -------
    DataFrame
        Strings only, one row per row of ``df``, a fresh 0..n-1 index.

    Raises
    ------
    ValueError
        A column of ``formats`` is not in ``df``, or a kind is unknown.
    """
    missing = [c for c in formats if c not in df.columns]
    if missing:
        raise ValueError(f"apa_table: column(s) {', '.join(map(repr, missing))} not in the table "
                         f"(it has {', '.join(map(str, df.columns))})")
    out = {}
    for col, kind in formats.items():
        if callable(kind):
            f = kind
        elif kind in _KINDS:
            f = _KINDS[kind]
        else:
            raise ValueError(f"apa_table: unknown kind {kind!r} for column {col!r}; use one of {', '.join(_KINDS)} "
                             "or a callable")
        out[(headers or {}).get(col, col)] = [f(v) for v in df[col].tolist()]
    return pd.DataFrame(out, dtype=object)


def apa_p_in_text(text: str) -> str:
    """Text written elsewhere (a stage's message) with its *p* values in APA form: ``p = 0.431``
    becomes ``p = .431``, ``p < 0.001`` becomes ``p < .001``. Other numbers are left as they are
    (whether they are bounded by 1 cannot be told from the text).

    Examples
    --------
    >>> apa_p_in_text("no evidence (Δχ² = 91.69, Δdf = 90, p = 0.431)")
    'no evidence (Δχ² = 91.69, Δdf = 90, p = .431)'
    """
    return re.sub(r"\b(p\s*[=<>≤≥]\s*)0(\.\d)", r"\1\2", str(text))


def parse_number(text) -> float:
    """The number an APA-formatted string shows (``'-.45'`` -> -0.45, ``'2,722.09'`` -> 2722.09).

    Stars, brackets and a ``<`` are ignored (``'< .001'`` gives 0.001, the bound). An empty or
    non-numeric string gives NaN.
    """
    if is_missing(text):
        return float("nan")
    s = str(text).strip().replace("\u2212", "-").replace(",", "").rstrip("*").lstrip("<").strip()
    s = s.strip("[]() ")
    try:
        return float(s)
    except ValueError:
        return float("nan")
