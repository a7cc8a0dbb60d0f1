"""Careless-response and data-quality screens, one function per screen.

Each screen takes the prepared data (one row per submission) and returns a DataFrame with the
same index and two columns: ``value`` (what the screen measured, as the exclusions table shows
it) and ``flagged`` (bool). A respondent may be flagged by several screens; every flag is kept.

References
----------
Curran, P. G. (2016). Methods for the detection of carelessly invalid responses in survey data.
    Journal of Experimental Social Psychology 66, 4-19.
Dunn, A. M., Heggestad, E. D., Shanock, L. R., & Theilgard, N. (2018). Intra-individual response
    variability as an indicator of insufficient effort responding. Journal of Business and
    Psychology 33, 105-121.
Greszki, R., Meyer, M., & Schoen, H. (2015). Exploring the effects of removing "too fast"
    responses and respondents from web surveys. Public Opinion Quarterly 79(2), 471-503.
Johnson, J. A. (2005). Ascertaining the validity of individual protocols from web-based
    personality inventories. Journal of Research in Personality 39, 103-129.
Meade, A. W., & Craig, S. B. (2012). Identifying careless responses in survey data.
    Psychological Methods 17(3), 437-455.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.distributions import chi2_sf
from analysis.missing import observed_mahalanobis, pairwise_covariance

__all__ = [
    "attention_checks",
    "duplicates",
    "irv",
    "longstring",
    "mahalanobis",
    "mahalanobis_unavailable",
    "missing_share",
    "speeders",
]


def _result(value, flagged, index) -> pd.DataFrame:
    return pd.DataFrame({"value": value, "flagged": np.asarray(flagged, dtype=bool)}, index=index)


def attention_checks(data: pd.DataFrame, expected: dict[str, tuple]) -> pd.DataFrame:
    """Flag a respondent whose answer to any attention check is not the instructed one.

    A missing answer counts as a failure (the respondent did not follow the instruction).
    ``value`` lists each failed check, e.g. ``ATT1=4 (expected 2)``.
    """
    n = len(data)
    failed = {}  # column -> (rows that failed it, their answers)
    for col, ok in expected.items():
        x = data[col].to_numpy(dtype=float)
        rows = np.flatnonzero(np.isnan(x) | ~np.isin(x, np.asarray(ok, dtype=float)))
        failed[col] = (rows, x[rows], " or ".join(f"{v:g}" for v in ok))
    flagged = np.zeros(n, dtype=bool)
    for rows, _x, _e in failed.values():
        flagged[rows] = True
    failures = {k: [] for k in np.flatnonzero(flagged).tolist()}  # only the rows that failed get a text
    for col, (rows, x, expected_text) in failed.items():
        for k, v in zip(rows.tolist(), x.tolist()):
            failures[k].append(f"{col}={'missing' if np.isnan(v) else f'{v:g}'} (expected {expected_text})")
    value = np.full(n, "", dtype=object)
    for k, f in failures.items():
        value[k] = "; ".join(f)
    return _result(value, flagged, data.index)


def speeders(duration: pd.Series, fraction: float) -> pd.DataFrame:
    """Flag completion times under ``fraction`` of the median time (Greszki et al., 2015).

    ``value`` is, for a flagged respondent, the time in seconds and its ratio to the median (None
    for the others: the text is built only where it is reported). A missing time is not flagged.
    """
    d = duration.to_numpy(dtype=float)
    median = np.nanmedian(d)
    ratio = d / median
    flagged = np.nan_to_num(ratio, nan=np.inf) < fraction
    value = np.full(len(d), None, dtype=object)
    for k in np.flatnonzero(flagged):
        value[k] = f"{d[k]:g} s ({ratio[k]:.2f} of the median {median:g} s)"
    return _result(value, flagged, duration.index)


def longstring(data: pd.DataFrame, items: list[str], share: float) -> pd.DataFrame:
    """Flag a longest run of identical consecutive answers of at least ``share`` of the items.

    Answers are taken as given (before reverse keys are recoded) in questionnaire order; missing
    answers are skipped, not counted as breaking a run (Johnson, 2005; ``careless::longstring``).
    """
    n = len(data)
    runs = np.zeros(n, dtype=int)
    current = np.zeros(n, dtype=int)  # the run ending at the last answered item so far
    last = np.full(n, np.nan)  # the last answer so far (missing answers are skipped)
    for item in items:  # a run grows while the next answer equals the last one given
        x = data[item].to_numpy(dtype=float)
        answered = ~np.isnan(x)
        same = x == last
        current = np.where(answered, np.where(same, current + 1, 1), current)
        np.maximum(runs, current, out=runs)
        last = np.where(answered, x, last)
    limit = share * len(items)
    return _result(runs, runs >= limit, data.index)


def irv(data: pd.DataFrame, items: list[str], minimum: float) -> pd.DataFrame:
    """Flag intra-individual response variability below ``minimum`` (Dunn et al., 2018).

    IRV is the standard deviation (n - 1 denominator) of a respondent's answers across the items,
    as given, ignoring missing ones: ``careless::irv``. Respondents with fewer than two answers
    get no value and are not flagged.
    """
    x = data[items].astype(float)
    sd = x.std(axis=1, ddof=1, skipna=True).to_numpy()
    return _result(sd, np.nan_to_num(sd, nan=np.inf) < minimum, data.index)


def mahalanobis_unavailable(data: pd.DataFrame, items: list[str]) -> str | None:
    """Why the Mahalanobis screen cannot run on ``data``, or ``None`` when it can.

    It needs ``max(2 * items, 50)`` respondents, every pair of items answered together by at
    least two respondents (else their pairwise covariance is undefined, e.g. when two halves of
    an export answered different items), and at least one item that varies.
    """
    return _checked_covariance(data, items)[1]


def _checked_covariance(data: pd.DataFrame, items: list[str], x: np.ndarray | None = None
                        ) -> tuple[np.ndarray | None, str | None]:
    """The items' pairwise covariance and None, or None and why the Mahalanobis screen cannot
    run (:func:`mahalanobis_unavailable`): one covariance for the check and the screen. ``x``:
    the items as a float matrix, when the caller has it."""
    need = max(2 * len(items), 50)
    if len(data) < need:
        return None, (f"it needs at least max(2 x {len(items)} items, 50) = {need} respondents, the data have "
                      f"{len(data)}")
    cov = pairwise_covariance(data[items].to_numpy(dtype=float, na_value=np.nan) if x is None else x)
    undefined = np.argwhere(np.isnan(np.triu(cov)) & np.triu(np.ones_like(cov, dtype=bool)))
    if len(undefined):
        i, j = undefined[0]
        return None, (f"{len(undefined)} pair(s) of items are never answered together by two respondents (first: "
                      f"{items[i]} and {items[j]}), so their covariance is undefined")
    if not np.any(np.diag(cov) > 0):
        return None, "no item varies across respondents"
    return cov, None


def mahalanobis(data: pd.DataFrame, items: list[str], alpha: float) -> pd.DataFrame:
    """Flag multivariate outliers: Mahalanobis D^2 with p < ``alpha`` under chi-square(df).

    .. math:: D^2_i = (x_i - \\bar{x})^\\top S^{-1} (x_i - \\bar{x})

    with the sample mean and covariance (n - 1) of the items (Meade & Craig, 2012;
    ``careless::mahad``; in R ``mahalanobis(x, colMeans(x), cov(x))`` on complete data). With
    missing answers the mean and the covariance are estimated pairwise and each respondent's
    D^2 uses the items they answered, with df = that number of items. A pairwise covariance
    matrix that is not positive definite is replaced by its nearest positive-definite neighbour
    (eigenvalues floored at 1e-8 of the largest). ``value`` is ``D2 (df, p)`` for a flagged
    respondent (None for the others); the numbers are also returned in columns ``d2``, ``df`` and ``pvalue``.

    The screen needs a covariance matrix it can trust; when it has none
    (:func:`mahalanobis_unavailable` says why) it does not run and returns ``None`` (the caller
    reports the reason).
    """
    x = data[items].to_numpy(dtype=float, na_value=np.nan)
    cov, why = _checked_covariance(data, items, x)
    if why is not None:
        return None
    mean = np.nanmean(x, axis=0)
    w, v = np.linalg.eigh(cov)
    if w.min() <= 1e-8 * w.max():
        cov = (v * np.maximum(w, 1e-8 * w.max())) @ v.T
    d2, df = observed_mahalanobis(x, mean, cov)
    p = np.where(df > 0, chi2_sf(d2, np.maximum(df, 1)), np.nan)
    flagged = np.nan_to_num(p, nan=1.0) < alpha
    value = np.full(len(d2), None, dtype=object)
    for k in np.flatnonzero(flagged):
        value[k] = f"D2={d2[k]:.1f} (df {df[k]}, p={p[k]:.2g})"
    out = _result(value, flagged, data.index)
    return out.assign(d2=d2, df=df, pvalue=p)


def duplicates(data: pd.DataFrame, id_column: str, columns: list[str], rows: pd.Series) -> pd.DataFrame:
    """Flag repeated submissions: the same id as an earlier row, or identical answers to one.

    The first submission is kept. Identical answers are compared over ``columns`` (items,
    attention checks and context, missing cells included); answer vectors with no variability
    at all (straight-lining) are left to the long-string screen, since two straight-liners who
    chose the same answer are not the same person.
    """
    n = len(data)
    rows = np.asarray(rows)
    ids = pd.factorize(data[id_column].to_numpy(dtype=object), use_na_sentinel=False)[0]
    first_of_id = _first_occurrence(ids)
    same_id = first_of_id != np.arange(n)
    # identical answers: equal over every column, missing equal to missing
    key = _row_groups(data, columns) if columns and n else np.zeros(n, dtype=np.int64)
    high = np.full(n, -np.inf)  # varied: two different answers at least (nunique > 1 over the row)
    low = np.full(n, np.inf)
    for c in columns:
        if pd.api.types.is_numeric_dtype(data[c]):
            x = data[c].to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(x)
            np.maximum(high, np.where(missing, -np.inf, x), out=high)
            np.minimum(low, np.where(missing, np.inf, x), out=low)
    varied = high > low
    # rows with equal answers are equally varied, so the first of a key is the first varied one
    first_of_key = _first_occurrence(key)
    same_answers = varied & (first_of_key != np.arange(n))
    value = [None] * n
    for k in np.flatnonzero(same_id | same_answers):
        notes = ([f"same id as row {rows[first_of_id[k]]}"] if same_id[k] else []) + \
                ([f"identical answers to row {rows[first_of_key[k]]}"] if same_answers[k] else [])
        value[k] = "; ".join(notes)
    return _result(value, same_id | same_answers, data.index)


def _row_groups(data: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A label per row, equal for rows equal over ``columns`` (missing equal to missing): what
    ``data.groupby(columns, dropna=False).ngroup()`` tells apart, column by column: each column's
    codes are combined with the running label and the pairs factorized again (exact, no hashing
    of whole rows)."""
    label, size = np.zeros(len(data), dtype=np.int64), 1
    for c in columns:
        codes, uniques = pd.factorize(data[c], use_na_sentinel=True)
        levels = len(uniques) + 1  # missing: a value of its own
        if size * levels >= 2 ** 62:  # the mixed-radix label would overflow: renumber it first
            label, distinct = pd.factorize(label)
            size = len(distinct)
        label = label * levels + np.where(codes < 0, levels - 1, codes)
        size *= levels
    return label


def _first_occurrence(codes: np.ndarray) -> np.ndarray:
    """For each position, the position of the first occurrence of its code."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    _u, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def missing_share(data: pd.DataFrame, items: list[str], maximum: float, answered=None) -> pd.DataFrame:
    """Flag respondents who left more than ``maximum`` (a share, 0-1) of the items unanswered.

    ``answered`` (bool array, rows x items), optional: missing cells that are answers outside
    the scale ("Not applicable", "Don't know"); they count as answered, not as skipped.
    """
    missing = data[items].isna().to_numpy()
    if answered is not None:
        missing = missing & ~np.asarray(answered, dtype=bool)
    share = missing.mean(axis=1)
    return _result(share, share > maximum, data.index)
