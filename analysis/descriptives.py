"""Item descriptives, Mardia's test of multivariate normality and the sample profile.

What a reviewer asks of the items before a CFA: each item's mean, SD, skewness, kurtosis and
share missing (``psych::describe``), and whether the items are multivariate normal, the
assumption behind ML's standard errors and chi-square (``psych::mardia``). Marked
non-normality is the reason for robust (MLR) standard errors and a scaled test statistic. And
who answered: the sample described by the instrument's context questions (:func:`sample_profile`).

The numbers agree with psych 2.2.9 (``tests/reference/descriptives.R``) to 1e-10.

References
----------
Joanes, D. N., & Gill, C. A. (1998). Comparing measures of sample skewness and kurtosis.
    *Journal of the Royal Statistical Society: Series D (The Statistician), 47*(1), 183-189.
    https://doi.org/10.1111/1467-9884.00122
Mardia, K. V. (1970). Measures of multivariate skewness and kurtosis with applications.
    *Biometrika, 57*(3), 519-530. https://doi.org/10.1093/biomet/57.3.519
Mardia, K. V. (1974). Applications of some measures of multivariate skewness and kurtosis in
    testing normality and robustness studies. *Sankhya: The Indian Journal of Statistics,
    Series B, 36*(2), 115-128.
Revelle, W. (2022). psych: Procedures for psychological, psychometric, and personality
    research. R package version 2.2.9.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg

from analysis.distributions import chi2_sf, norm_sf
from analysis.errors import InputError

__all__ = ["item_descriptives", "mardia", "sample_profile", "DESCRIPTIVE_COLUMNS", "MARDIA_KEYS", "PROFILE_COLUMNS"]

DESCRIPTIVE_COLUMNS = ["item", "n", "mean", "sd", "skewness", "kurtosis", "pct_missing"]
PROFILE_COLUMNS = ["variable", "level", "n", "percent", "mean", "sd"]
MISSING_LEVEL = "(missing)"
MARDIA_KEYS = ("b1p", "b2p", "skew_chisq", "skew_df", "skew_pvalue", "kurt_z", "kurt_pvalue", "n", "p")


def item_descriptives(data: pd.DataFrame, items: Sequence[str], type: int = 3) -> pd.DataFrame:
    """Per item: observed count, mean, SD, skewness, excess kurtosis and percent missing.

    With :math:`x_1, \\dots, x_n` the item's observed values, :math:`m_k = \\frac1n\\sum (x_i -
    \\bar x)^k` and :math:`s = \\sqrt{\\sum (x_i - \\bar x)^2 / (n - 1)}` (the SD, divisor
    :math:`n - 1`), the three estimators of Joanes & Gill (1998), psych's ``type``:

    .. math::

        g_1 = m_3 / m_2^{3/2}, \\quad G_1 = g_1 \\frac{\\sqrt{n(n-1)}}{n-2}, \\quad
        b_1 = m_3 / s^3 \\quad\\text{(type 1, 2, 3: skewness)}

        g_2 = m_4 / m_2^2 - 3, \\quad
        G_2 = \\frac{n-1}{(n-2)(n-3)}\\left[(n+1) g_2 + 6\\right], \\quad
        b_2 = m_4 / s^4 - 3 \\quad\\text{(type 1, 2, 3: kurtosis)}.

    Type 3 (:math:`b_1, b_2`) is psych's and MINITAB's default; type 2 is SAS's and SPSS's. The
    kurtosis is *excess* kurtosis (0 for a normal distribution). ``pct_missing`` is
    :math:`100 \\times` missing cells / all rows; ``n`` counts the observed cells.

    Parameters
    ----------
    data : DataFrame
        All rows, including incomplete ones (each item uses its observed cells).
    items : list of str
        Numeric columns (nullable integers fine).
    type : {1, 2, 3}, default 3
        The skewness and kurtosis estimator, as psych's ``describe(type = )``.

    Returns
    -------
    DataFrame
        One row per item in the given order: ``item, n, mean, sd, skewness, kurtosis,
        pct_missing``. SD, skewness and kurtosis are NaN where they are undefined (fewer than
        2, 3 or 4 observed values for type 2, a constant item).

    Raises
    ------
    InputError
        No items, an unknown, repeated or non-numeric column, or ``type`` not 1, 2 or 3.

    Notes
    -----
    In R: ``psych::describe(d[items], type = 3)`` (columns ``n, mean, sd, skew, kurtosis``) and
    ``100 * colMeans(is.na(d[items]))``. One difference: for ``type = 1`` and a column with missing
    values, psych 2.2.9's ``kurtosi`` on a data frame multiplies by the number of *all* rows
    instead of the observed ones (its vector form and the formula use the observed :math:`n`, as
    here); types 2 and 3 and every skewness agree to 1e-12.
    """
    if type not in (1, 2, 3) or isinstance(type, bool):
        raise InputError(f"type: 1, 2 or 3 (Joanes & Gill's estimators, psych's describe(type = )), got {type!r}")
    names = _columns(data, items)
    x = _numeric(data, names)
    rows = []
    for k, name in enumerate(names):
        v = x[:, k][~np.isnan(x[:, k])]
        n = len(v)
        mean = float(v.mean()) if n else np.nan
        sd = float(v.std(ddof=1)) if n > 1 else np.nan
        rows.append((name, n, mean, sd, *_moments(v, type), 100.0 * (len(x) - n) / len(x) if len(x) else np.nan))
    return pd.DataFrame(rows, columns=DESCRIPTIVE_COLUMNS)


def _moments(v: np.ndarray, type: int) -> tuple[float, float]:
    """Skewness and excess kurtosis of the observed values ``v`` (:func:`item_descriptives`)."""
    n = len(v)
    if n < 2:
        return np.nan, np.nan
    d = v - v.mean()
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    if m2 == 0:
        return np.nan, np.nan
    g1, g2 = m3 / m2**1.5, m4 / m2**2 - 3.0
    if type == 1:
        return float(g1), float(g2)
    if type == 2:
        skew = g1 * np.sqrt(n * (n - 1)) / (n - 2) if n > 2 else np.nan
        kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6) if n > 3 else np.nan
        return float(skew), float(kurt)
    s2 = m2 * n / (n - 1)
    return float(m3 / s2**1.5), float(m4 / s2**2 - 3.0)


def mardia(data: pd.DataFrame, items: Sequence[str]) -> dict:
    """Mardia's (1970) multivariate skewness and kurtosis and their tests, on the complete rows.

    With :math:`x_i` the :math:`n` complete rows centred at their means, :math:`S` their
    covariance (divisor :math:`n - 1`, as psych) and :math:`d_{ij} = x_i^\\top S^{-1} x_j`,

    .. math::

        b_{1,p} = \\frac{1}{n^2} \\sum_{i,j} d_{ij}^3, \\qquad
        b_{2,p} = \\frac1n \\sum_i d_{ii}^2,

        \\chi^2_{skew} = \\frac{n\\, b_{1,p}}{6} \\sim \\chi^2_{p(p+1)(p+2)/6}, \\qquad
        z_{kurt} = \\frac{b_{2,p} - p(p+2)}{\\sqrt{8p(p+2)/n}} \\sim N(0, 1),

    the skewness test one-sided, the kurtosis test two-sided. Under multivariate normality
    :math:`b_{2,p} \\to p(p+2)`; large values (heavy tails) inflate ML's chi-square and shrink
    its standard errors, the case for MLR (robust SEs, a scaled test statistic).

    :math:`\\sum_{i,j} d_{ij}^3` is not formed from the :math:`n \\times n` matrix
    :math:`D`: with :math:`y_i = L^{-1} x_i` (:math:`S = LL^\\top`),
    :math:`d_{ij} = y_i^\\top y_j` and :math:`\\sum_{i,j} d_{ij}^3 = \\sum_{a,b,c} T_{abc}^2`,
    :math:`T_{abc} = \\sum_i y_{ia} y_{ib} y_{ic}` (the third-moment tensor, accumulated over
    blocks of rows), so time is linear in :math:`n` and memory does not grow with it.

    Parameters
    ----------
    data : DataFrame
    items : list of str
        At least two numeric columns.

    Returns
    -------
    dict
        ``b1p, b2p, skew_chisq, skew_df, skew_pvalue, kurt_z, kurt_pvalue, n, p``: the two
        statistics, the skewness chi-square with its df and p value, the kurtosis z and its
        p value, the complete rows used and the number of items.

    Raises
    ------
    InputError
        Fewer than two items, an unknown or non-numeric column, no more complete rows than
        items, or a singular covariance matrix of the complete rows (a constant item, linearly
        dependent items).

    Notes
    -----
    In R: ``psych::mardia(d[items], plot = FALSE)`` (``na.rm = TRUE``: complete rows):
    ``b1p, b2p, skew, p.skew, kurtosis, p.kurt``. psych computes the p values as
    ``1 - pchisq``/``1 - pnorm``, which are 0 below about 1e-16; here they are the survival
    functions, so tiny p values are kept. psych's small-sample skewness (``small.skew``) is not
    reported. ``MVN::mvn(mvnTest = "mardia")`` uses the divisor :math:`n` for :math:`S` and
    gives slightly different statistics.
    """
    names = _columns(data, items)
    if len(names) < 2:
        raise InputError(f"Mardia's test is multivariate: need at least 2 items, got {len(names)}")
    x = _numeric(data, names)
    x = x[~np.isnan(x).any(axis=1)]
    n, p = x.shape
    if n <= p:
        raise InputError(f"Mardia's test: {n} complete row(s) for {p} items ({', '.join(names)}); need more complete "
                         "rows than items")
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / (n - 1)
    try:
        chol = linalg.cholesky(s, lower=True)
        if np.any(np.diag(chol) ** 2 <= 1e-12 * np.diag(s)):  # an item (near) a combination of the others
            raise linalg.LinAlgError
    except linalg.LinAlgError:
        raise InputError(f"Mardia's test: the covariance matrix of the {n} complete rows of {', '.join(names)} is "
                         "singular (a constant item or linearly dependent items)") from None
    y = linalg.solve_triangular(chol, xc.T, lower=True).T
    b2p = float(np.mean(np.einsum("ij,ij->i", y, y) ** 2))
    ia, ib = np.triu_indices(p)
    weight = np.where(ia == ib, 1.0, 2.0)
    tensor = np.zeros((len(ia), p))
    step = max(1, 2_000_000 // len(ia))  # rows per block: at most 16 MB of products
    for lo in range(0, n, step):
        block = y[lo:lo + step]
        tensor += (block[:, ia] * block[:, ib]).T @ block
    b1p = float(weight @ (tensor**2).sum(axis=1) / n**2)
    df = p * (p + 1) * (p + 2) // 6
    skew = n * b1p / 6.0
    kurt = (b2p - p * (p + 2)) / np.sqrt(8.0 * p * (p + 2) / n)
    return {"b1p": b1p, "b2p": b2p, "skew_chisq": float(skew), "skew_df": int(df),
            "skew_pvalue": float(chi2_sf(skew, df)), "kurt_z": float(kurt),
            "kurt_pvalue": float(2.0 * norm_sf(abs(kurt))), "n": int(n), "p": int(p)}


def sample_profile(data: pd.DataFrame, questions) -> pd.DataFrame:
    """The sample described by its context questions (the "participants" table of a paper).

    For each context question of the instrument whose column is in ``data`` and that is not
    personal data: a ``categorical`` question gives one row per level, in the instrument's
    order (levels no one chose included, with n 0), then any other value found, then
    ``(missing)`` when answers are missing, each with its count ``n`` and ``percent`` =
    :math:`100 n / N` of all :math:`N` rows (so a question's percentages add to 100); an
    ``integer`` or ``number`` question gives one row with the count of answers ``n``, their
    ``mean`` and ``sd`` (divisor :math:`n - 1`), and ``percent`` the share answered. Free-text
    questions are left out.

    Parameters
    ----------
    data : DataFrame
        The cleaned responses (one row per respondent kept).
    questions : sequence of instrument.schema.ContextQuestion
        The instrument's ``context`` questions.

    Returns
    -------
    DataFrame
        ``variable, level, n, percent, mean, sd``; ``level`` empty for a numeric question,
        ``mean`` and ``sd`` empty for a categorical one.

    Notes
    -----
    In R: ``table(d$q, useNA = "ifany")`` and ``100 * prop.table(...)`` for a categorical
    question; ``psych::describe(d$q)[, c("n", "mean", "sd")]`` for a numeric one.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    total = len(data)
    rows = []

    def pct(k):
        return 100.0 * k / total if total else np.nan

    for q in questions:
        if q.personal or q.id not in data.columns or q.type not in ("categorical", "integer", "number"):
            continue
        col = data[q.id]
        if q.type == "categorical":
            answered = col.dropna().map(_as_level)
            counts = answered.value_counts(sort=False)
            declared = [_as_level(v) for v in q.values]
            levels = declared + sorted(set(counts.index) - set(declared))
            rows += [(q.id, lv, int(counts.get(lv, 0)), pct(int(counts.get(lv, 0))), np.nan, np.nan) for lv in levels]
            if total - len(answered):
                rows.append((q.id, MISSING_LEVEL, total - len(answered), pct(total - len(answered)), np.nan, np.nan))
        else:
            v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            v = v[~np.isnan(v)]
            rows.append((q.id, "", len(v), pct(len(v)), float(v.mean()) if len(v) else np.nan,
                         float(v.std(ddof=1)) if len(v) > 1 else np.nan))
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _as_level(v) -> str:
    """An answer as the text of a level: ``2.0`` (a whole number read as float) is ``"2"``."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _columns(data: pd.DataFrame, items) -> list[str]:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if isinstance(items, str) or not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
        raise InputError(f"items: expected a list of column names, got {items!r}"[:300])
    names = list(items)
    if not names:
        raise InputError("items: no columns given")
    seen = set()
    for i in names:
        if i in seen:
            raise InputError(f"items: column {i!r} is listed twice")
        seen.add(i)
    missing = [i for i in names if i not in data.columns]
    if missing:
        raise InputError(f"items: column(s) {', '.join(map(repr, missing))} not in the data")
    return names


def _numeric(data: pd.DataFrame, names: list[str]) -> np.ndarray:
    out = np.empty((len(data), len(names)))
    for k, name in enumerate(names):
        col = data[name]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise InputError(f"column {name!r}: not numeric (dtype {col.dtype})")
        v = col.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(v).any():
            row = int(np.flatnonzero(np.isinf(v))[0])
            raise InputError(f"column {name!r}, row {row + 1}: infinite value {v[row]!r}")
        out[:, k] = v
    return out
