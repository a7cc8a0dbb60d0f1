"""Missing data: where values are missing, in which patterns, and whether they are MCAR.

Counts per item, per respondent and per missingness pattern (``1`` = observed, ``0`` =
missing, as in ``mice::md.pattern`` but one tidy row per pattern), and Little's (1988) test of
missing completely at random.

Little's test compares each missingness pattern's observed means with the maximum-likelihood
means of all the data. With :math:`\\hat\\mu` and :math:`\\hat\\Sigma` estimated by EM under
multivariate normality, and for each pattern :math:`j` its :math:`n_j` rows, its :math:`p_j`
observed variables, their means :math:`\\bar y_j` and the matching parts :math:`\\hat\\mu_j`,
:math:`\\hat\\Sigma_j`,

.. math::

    d^2 = \\sum_j n_j (\\bar y_j - \\hat\\mu_j)^\\top \\hat\\Sigma_j^{-1} (\\bar y_j - \\hat\\mu_j)
    \\;\\sim\\; \\chi^2\\Big(\\sum_j p_j - p\\Big) \\text{ under MCAR.}

In R: ``naniar::mcar_test(d[, columns])`` (also ``misty::na.test``); the EM moments are
lavaan's unrestricted (h1) moments, ``lavInspect(sem(saturated, d, missing = "ml"), "sampstat")``.

References
----------
Little, R. J. A. (1988). A test of missing completely at random for multivariate data with
missing values. *Journal of the American Statistical Association, 83*(404), 1198-1202.
https://doi.org/10.1080/01621459.1988.10478722

Dempster, A. P., Laird, N. M., & Rubin, D. B. (1977). Maximum likelihood from incomplete data
via the EM algorithm. *Journal of the Royal Statistical Society B, 39*(1), 1-38.

Little, R. J. A., & Rubin, D. B. (2019). *Statistical analysis with missing data* (3rd ed.),
section 11.2. Wiley.

Varadhan, R., & Roland, C. (2008). Simple and globally convergent methods for accelerating the
convergence of any EM algorithm. *Scandinavian Journal of Statistics, 35*(2), 335-353.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.checks import check_observed_values
from analysis.distributions import chi2_sf
from analysis.patterns import (block_cells, conditional_blocks, conditional_shifts, merge_batches, pattern_layout,
                               small_inverse, spd_inverse)
from analysis.warnings import ConvergenceWarning
from analysis.errors import InputError

__all__ = [
    "ConvergenceWarning",
    "EMMoments",
    "EMSample",
    "LittleMCAR",
    "em_moments",
    "em_moments_values",
    "em_moments_weighted",
    "little_mcar_test",
    "missing_by_item",
    "missing_by_respondent",
    "missing_patterns",
    "observed_mahalanobis",
]


# --------------------------------------------------------------------------- counts


def missing_by_item(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Missing values per column.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        Columns to count, in the order wanted in the result. Any dtype: a value is missing
        when :func:`pandas.isna` says so (``NaN``, ``None``, ``pd.NA``, ``NaT``).

    Returns
    -------
    DataFrame
        One row per column, in the given order: ``variable, n, n_missing, pct_missing`` with
        ``n`` the number of rows of ``data`` and ``pct_missing = 100 * n_missing / n`` (percent,
        ``NaN`` for an empty frame).

    Notes
    -----
    In R: ``colSums(is.na(d[, columns]))`` and ``100 * colMeans(is.na(d[, columns]))``
    (``naniar::miss_var_summary(d)`` gives the same numbers sorted by count).
    """
    _check_columns(data, columns)
    n = len(data)
    n_missing = data[columns].isna().sum(axis=0).to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "variable": list(columns),
        "n": np.full(len(columns), n, dtype=np.int64),
        "n_missing": n_missing,
        "pct_missing": _percent(n_missing, n),
    })


def missing_by_respondent(data: pd.DataFrame, columns: list[str], id_column: str | None = None) -> pd.DataFrame:
    """Missing values per row (respondent) over ``columns``.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        Columns to count over.
    id_column : str, optional
        Column holding the respondent id; without it the id is the row number.

    Returns
    -------
    DataFrame
        One row per row of ``data``, in order: ``row`` (1-based position), ``respondent_id``,
        ``n_missing`` and ``pct_missing = 100 * n_missing / len(columns)``.

    Notes
    -----
    In R: ``rowSums(is.na(d[, columns]))`` (``naniar::miss_case_table`` tabulates these).
    """
    _check_columns(data, columns)
    if id_column is not None and id_column not in data.columns:
        raise InputError(f"id_column {id_column!r} is not a column of the data; columns are {list(data.columns)!r}")
    rows = np.arange(1, len(data) + 1, dtype=np.int64)
    n_missing = data[columns].isna().sum(axis=1).to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "row": rows,
        "respondent_id": data[id_column].to_numpy() if id_column is not None else rows,
        "n_missing": n_missing,
        "pct_missing": _percent(n_missing, len(columns)),
    })


def missing_patterns(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Distinct missingness patterns and how many rows have each.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        Columns that make up a pattern, in the order wanted in the result.

    Returns
    -------
    DataFrame
        One row per distinct pattern: one ``int`` column per entry of ``columns`` (``1`` =
        observed, ``0`` = missing), then ``n`` (rows with that pattern). Sorted by ``n``
        descending; ties by fewer missing values first, then by the pattern itself with
        observed before missing from left to right. The ``n`` add up to ``len(data)``.

    Notes
    -----
    In R: ``mice::md.pattern(d[, columns], plot = FALSE)`` (rows ordered differently, with
    margins); ``table(apply(!is.na(d[, columns]), 1, paste, collapse = ""))``.
    """
    _check_columns(data, columns)
    if "n" in columns:
        raise InputError("missing_patterns: a column named 'n' clashes with the count column 'n'; rename it")
    observed = (~data[columns].isna()).to_numpy(dtype=bool)
    if len(observed) == 0:
        return pd.DataFrame({**{c: pd.Series(dtype=np.int64) for c in columns}, "n": pd.Series(dtype=np.int64)})
    layout = pattern_layout(np.where(observed, 0.0, np.nan))
    patterns, counts = layout.flags.astype(np.int64), layout.counts
    # lexsort: last key is primary. Observed-first order: sort by -pattern, column 0 most significant.
    keys = [-patterns[:, k] for k in reversed(range(len(columns)))]
    order = np.lexsort(keys + [(1 - patterns).sum(axis=1), -counts])
    out = pd.DataFrame(patterns[order], columns=list(columns))
    out["n"] = counts[order].astype(np.int64)
    return out


# --------------------------------------------------------------------------- EM and Little's test


@dataclass(frozen=True)
class EMMoments:
    """Maximum-likelihood mean and covariance of incomplete multivariate-normal data.

    Attributes
    ----------
    mean : Series
        ML means, indexed by column.
    cov : DataFrame
        ML covariance matrix (denominator ``n``), columns x columns.
    loglik : float
        Observed-data log-likelihood at the estimate (lavaan's ``unrestricted.logl``).
    n : int
        Rows used (rows missing every column are dropped).
    n_iter : int
        EM iterations run.
    converged : bool
    """

    mean: pd.Series
    cov: pd.DataFrame
    loglik: float
    n: int
    n_iter: int
    converged: bool


@dataclass(frozen=True)
class LittleMCAR:
    """Result of Little's (1988) MCAR test.

    Attributes
    ----------
    statistic : float
        :math:`d^2`.
    df : int
        :math:`\\sum_j p_j - p`.
    pvalue : float
        :math:`P(\\chi^2_{df} \\ge d^2)`.
    n_patterns : int
        Missingness patterns among the rows used.
    n : int
        Rows used (rows missing every column are dropped).
    """

    statistic: float
    df: int
    pvalue: float
    n_patterns: int
    n: int

    def to_dict(self) -> dict:
        """JSON-ready ``{statistic, df, pvalue, n_patterns, n}``."""
        return {"statistic": float(self.statistic), "df": int(self.df), "pvalue": float(self.pvalue),
                "n_patterns": int(self.n_patterns), "n": int(self.n)}


def em_moments(data: pd.DataFrame, columns: list[str], max_iter: int = 10000, tol: float = 1e-10,
               start: EMMoments | None = None) -> EMMoments:
    """ML mean and covariance of incomplete data by EM under multivariate normality.

    E-step, for the rows of each missingness pattern with observed part :math:`o` and missing
    part :math:`m`: replace :math:`y_m` by
    :math:`\\mu_m + \\Sigma_{mo}\\Sigma_{oo}^{-1}(y_o - \\mu_o)` and add
    :math:`\\Sigma_{mm} - \\Sigma_{mo}\\Sigma_{oo}^{-1}\\Sigma_{om}` to its cross-products.
    M-step: :math:`\\mu = T_1/n`, :math:`\\Sigma = T_2/n - \\mu\\mu^\\top` (Dempster, Laird &
    Rubin, 1977; Little & Rubin, 2019, sec. 11.2). The E-step uses the partitioned inverse: with
    :math:`P = \\Sigma^{-1}`, :math:`\\Sigma_{mo}\\Sigma_{oo}^{-1} = -P_{mm}^{-1}P_{mo}` and
    :math:`\\Sigma_{mm\\cdot o} = P_{mm}^{-1}`, so an iteration costs one :math:`p\\times p`
    inverse, an inverse of each pattern's missing block (batched over the patterns with the same
    number missing, :mod:`analysis.patterns`) and a product over the incomplete rows; complete rows enter through sums computed once. Memory is that of the
    data, whatever the number of patterns (300 items with every row its own pattern included).

    Rows missing every column carry no information and are dropped. The start is the observed
    means and variances with zero covariances, or ``start`` (e.g. the full sample's estimates
    when the rows are a bootstrap resample of it: EM then needs fewer iterations to the same
    fixed point). (SQUAREM acceleration, Varadhan & Roland, 2008, halved the E-steps from the
    default start but saved ~0.2 CPU-s a study and moved the estimate within the tolerance's
    reach, enough to leave a FIML fit started from it on a stalled line search: not used.) An
    iterate whose covariance fails the final positive-definiteness test (smallest eigenvalue
    below 1e-10 of the largest) stops EM with that test's error, as the estimate would (a
    singular ML covariance is approached slowly: before, thousands of iterations). Computation is
    on the columns standardised by their observed mean and standard deviation; the estimates
    are transformed back. Many reweightings of the same rows (bootstrap draws):
    :func:`em_moments_weighted`.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        At least two numeric columns (nullable integer columns are fine).
    max_iter : int, default 10000
        Iteration limit; reaching it emits :class:`ConvergenceWarning` and returns the last
        iterate with ``converged=False``.
    tol : float, default 1e-10
        Converged when no mean or covariance of the standardised columns changes by ``tol`` or
        more between two iterations (that is, relative to each column's observed SD).
    start : EMMoments, optional
        Starting mean and covariance of ``columns`` (positive definite).

    Returns
    -------
    EMMoments

    Raises
    ------
    ValueError
        Fewer than two columns, an unknown, non-numeric, entirely missing or constant column,
        an infinite value, two columns never observed in the same row, or linearly dependent
        columns (singular covariance).

    Notes
    -----
    In R: ``lavInspect(sem(model, d, missing = "ml"), "sampstat")`` for a saturated ``model``
    (every variance, covariance and intercept free), or ``norm::em.norm(norm::prelim.norm(x))``.
    """
    x, names = _numeric_matrix(data, columns)
    return _em(x, names, max_iter, tol, start)[0]


def em_moments_values(x: np.ndarray, names: list[str], max_iter: int = 10000, tol: float = 1e-10,
                      start: EMMoments | None = None) -> EMMoments:
    """:func:`em_moments` of a float array ``x`` (n x p, NaN = missing; its columns ``names``),
    e.g. a bootstrap resample's rows, without the data frame and its per-column type checks
    (the values are checked as there): the same estimates, bit for bit.

    Raises
    ------
    ValueError
        As :func:`em_moments`: fewer than two columns, a column entirely missing, constant or with
        an infinite value, two columns never observed in the same row, a singular covariance.
    """
    names = list(names)
    if len(names) < 2:
        raise InputError(f"Little's MCAR test needs at least 2 columns, got {len(names)}: {names!r}")
    # column-major, as a data frame of float columns gives its values to em_moments: the same
    # layout, so the same BLAS sums
    x = np.array(x, dtype=np.float64, order="F")
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"x: expected an n x {len(names)} array, got shape {x.shape}")
    return _em(_checked_values(x, names), names, max_iter, tol, start)[0]


def little_mcar_test(data: pd.DataFrame, columns: list[str], max_iter: int = 10000, tol: float = 1e-10) -> LittleMCAR:
    """Little's (1988) chi-square test of missing completely at random (MCAR).

    .. math::

        d^2 = \\sum_j n_j (\\bar y_j - \\hat\\mu_j)^\\top \\hat\\Sigma_j^{-1} (\\bar y_j - \\hat\\mu_j),
        \\qquad df = \\sum_j p_j - p,

    over the missingness patterns :math:`j` (:math:`n_j` rows, :math:`p_j` observed variables
    with means :math:`\\bar y_j`), with :math:`\\hat\\mu_j, \\hat\\Sigma_j` the parts of the ML
    mean and covariance (EM under multivariate normality, denominator ``n``, see
    :func:`em_moments`) for the observed variables. Under MCAR :math:`d^2` is asymptotically
    :math:`\\chi^2_{df}`; a small p-value says the missingness is related to the values
    (MAR or MNAR). Not rejecting does not show MCAR; the test has little power for small
    patterns and assumes multivariate normality.

    Rows missing every column are dropped before anything is computed (they carry no
    information; ``naniar::mcar_test`` keeps them as a pattern that adds 0 to ``d2`` and 0 to
    ``df``, so the statistic and df agree but its pattern count is one higher). Data without
    any missing value (one pattern) give ``statistic=0.0, df=0, pvalue=1.0``: nothing to test.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        At least two numeric columns.
    max_iter : int, default 10000
        EM iteration limit; reaching it emits :class:`ConvergenceWarning` and the test uses
        the last iterate.
    tol : float, default 1e-10
        EM convergence: largest change of a standardised mean or covariance between two
        iterations.

    Returns
    -------
    LittleMCAR

    Raises
    ------
    ValueError
        Fewer than two columns, an unknown, non-numeric, entirely missing or constant column
        (each message names the column), an infinite value, two columns never observed in the
        same row, or linearly dependent columns.

    Notes
    -----
    In R: ``naniar::mcar_test(d[, columns])`` (statistic, df, p.value, missing.patterns);
    ``misty::na.test(d[, columns])`` gives the same. naniar's EM (``norm::em.norm``) stops at
    a relative change of 1e-4, so its statistic differs in about the fifth significant digit
    (airquality: 35.10613 there, 35.10617 exactly). Checked against the test written out in
    R, ``tests/reference/little_mcar.R``.

    References
    ----------
    Little, R. J. A. (1988). A test of missing completely at random for multivariate data with
    missing values. *Journal of the American Statistical Association, 83*(404), 1198-1202.
    """
    x, names = _numeric_matrix(data, columns)
    moments, _z, scale_mean, scale_sd, patterns = _em(x, names, max_iter, tol)
    if patterns.n_patterns == 1:  # no missing values: the pattern means are the ML means
        return LittleMCAR(statistic=0.0, df=0, pvalue=1.0, n_patterns=1, n=moments.n)
    mu_z = (moments.mean.to_numpy() - scale_mean) / scale_sd
    sigma_z = moments.cov.to_numpy() / np.outer(scale_sd, scale_sd)
    d2, df = patterns.little(mu_z, np.linalg.inv(sigma_z))
    pvalue = float(chi2_sf(d2, df))
    return LittleMCAR(statistic=float(d2), df=int(df), pvalue=pvalue, n_patterns=patterns.n_patterns, n=moments.n)


def pairwise_covariance(x: np.ndarray) -> np.ndarray:
    """Covariances from pairwise-complete rows (n - 1 denominator), as ``DataFrame.cov()``.

    .. math:: s_{jk} = \\frac{\\sum_i x_{ij}x_{ik} - n_{jk}\\bar x_{j(k)}\\bar x_{k(j)}}{n_{jk} - 1}

    over the :math:`n_{jk}` rows with both values, :math:`\\bar x_{j(k)}` the mean of column j
    over those rows; computed by three matrix products (columns centred first, for accuracy).
    NaN where fewer than two rows have both. In R: ``cov(x, use = "pairwise.complete.obs")``.
    """
    x = np.asarray(x, dtype=np.float64)
    observed = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        centre = np.where(observed.any(axis=0), np.nanmean(np.where(observed.any(axis=0), x, 0.0), axis=0), 0.0)
    z = np.where(observed, x - centre, 0.0)
    m = observed.astype(np.float64)
    n = m.T @ m
    sums = z.T @ m  # [j, k]: sum of column j over the rows where k is observed (and j)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (z.T @ z - sums * sums.T / n) / (n - 1)
    cov[n < 2] = np.nan
    return cov


def observed_mahalanobis(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's squared Mahalanobis distance over the entries it has, and their number.

    .. math:: D^2_i = (x_{i,o} - \\mu_o)^\\top \\Sigma_{oo}^{-1} (x_{i,o} - \\mu_o), \\qquad df_i = |o|

    for the observed entries :math:`o` of row :math:`i` (NaN = missing), computed by the
    partitioned inverse (:math:`P = \\Sigma^{-1}`, :math:`e` the centred row with zeros on the
    missing part, :math:`r = Pe`: :math:`D^2 = e^\\top P e - r_m^\\top P_{mm}^{-1} r_m`), batched
    over the patterns. A row with no entry has ``D2`` NaN and ``df`` 0.

    In R: ``mahalanobis(x[i, o], mu[o], S[o, o])`` row by row.
    """
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    observed = ~np.isnan(x)
    df = observed.sum(axis=1)
    d2 = np.full(n, np.nan)
    precision = np.linalg.inv(cov)
    complete = df == p
    e = x[complete] - mean
    d2[complete] = np.einsum("ni,ni->n", e @ precision, e)
    partial = np.flatnonzero((df > 0) & ~complete)
    if len(partial):
        pat = _Patterns(x[partial])
        quad, _logdet = pat.observed_quadratic_forms(np.asarray(mean, dtype=np.float64), precision, 0.0)
        d2[partial[pat.incomplete_rows]] = quad[:-1]
    return d2, df


def _em(x: np.ndarray, names: list[str], max_iter: int, tol: float, start: EMMoments | None = None):
    """EM on the standardised matrix; returns (EMMoments, standardised data, centre, scale, patterns).

    One iteration costs one p x p inverse, small inverses per pattern and a product over the
    incomplete rows only, whatever the number of patterns (see :class:`_Patterns`).
    """
    _check_em_options(max_iter, tol)
    some = (~np.isnan(x)).any(axis=1)
    # rows in C order either way (a frame's to_numpy may be column-major: sums over the rows would
    # be added in another order), copied only when there are rows to drop or the order differs
    x = x[some] if not some.all() else np.ascontiguousarray(x)
    centre = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    z = x - centre
    z /= scale  # in place: one n x p temporary fewer
    pat = _Patterns(z)
    moments = _em_fit(pat, centre, scale, names, max_iter, tol, start)
    return moments, z, centre, scale, pat


def _check_em_options(max_iter, tol) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter: need a whole number >= 1, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not np.isfinite(tol) or tol <= 0:
        raise InputError(f"tol: need a number > 0, got {tol!r}")


class EMSample:
    """The rows of an incomplete sample arranged once by missingness pattern, for the EM of many
    reweightings of them (:func:`em_moments_weighted`): a bootstrap resample is the sample's rows
    with weights their counts in the draw, so its patterns need not be searched again.

    Parameters
    ----------
    x : ndarray, (n, p)
        The rows, NaN = missing, checked as :func:`em_moments_values` checks them (every column
        observed, finite, not constant, every pair observed together).
    names : list of str
        The columns' names.
    """

    def __init__(self, x: np.ndarray, names: list[str]):
        names = list(names)
        if len(names) < 2:
            raise InputError(f"Little's MCAR test needs at least 2 columns, got {len(names)}: {names!r}")
        x = np.array(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"x: expected an n x {len(names)} array, got shape {x.shape}")
        _checked_values(x, names)
        some = (~np.isnan(x)).any(axis=1)
        self.names = names
        self.index = pd.Index(names)
        self.n_rows = len(x)
        self.used = None if some.all() else np.flatnonzero(some)  # rows missing everything carry nothing
        self.layout = pattern_layout(x[some])
        self.mask = self.layout.observed.astype(np.float64)
        self.tiny_scale = 1e-10 * np.max(np.abs(self.layout.values), axis=0)
        self.n_observed = self.mask.sum(axis=1)
        self.groups, self.n_pad = _grouped_batches(self.layout, len(names))
        self.cells = [block_cells(g.missing, len(names) + self.n_pad) for g in self.groups]


def em_moments_weighted(sample: EMSample, weights: np.ndarray, max_iter: int = 10000, tol: float = 1e-10,
                        start: EMMoments | None = None, loglik: bool = True) -> EMMoments:
    r""":func:`em_moments` of the rows of ``sample`` each taken ``weights`` times: with ``weights``
    a bootstrap draw's counts (:math:`w_i` = how often row :math:`i` was drawn), the estimates of
    :func:`em_moments_values` on the drawn rows (the same iterations, equal up to rounding:
    :math:`T_1 = \sum_i w_i E(y_i - \mu \mid y_{i,o})`,
    :math:`T_2 = \sum_i w_i E((y_i - \mu)(y_i - \mu)^\top \mid y_{i,o})`, :math:`n = \sum_i w_i`;
    the columns standardised by their weighted observed mean and SD), without searching the
    draw's patterns again or copying its rows. Rows of weight 0 take no part, as rows not drawn.

    Parameters
    ----------
    sample : EMSample
    weights : ndarray, (n,)
        A non-negative weight per row of the sample (whole numbers for a bootstrap draw).
    max_iter, tol, start
        As :func:`em_moments`.
    loglik : bool, default True
        Compute the log-likelihood at the estimate (an E-step's work); without it ``loglik`` is NaN.

    Returns
    -------
    EMMoments
        ``n`` is the sum of the weights of the rows with an observed value (rounded).

    Raises
    ------
    ValueError
        As :func:`em_moments_values` on the drawn rows: a column unobserved or constant among the
        rows of positive weight, two columns never observed together among them, a singular
        covariance.

    Notes
    -----
    In R, for whole-number weights: ``lavInspect(sem(saturated, d[rep(seq_len(nrow(d)), w), ],
    missing = "ml"), "sampstat")``.
    """
    _check_em_options(max_iter, tol)
    names, layout = sample.names, sample.layout
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (sample.n_rows,):
        raise ValueError(f"weights: expected {sample.n_rows} values (one per row), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError("weights: need finite numbers >= 0")
    if sample.used is not None:
        w = w[sample.used]
    drawn = np.flatnonzero(w > 0)  # the rows that take part, and each row's position among them
    position = np.full(len(w), -1, dtype=np.intp)
    position[drawn] = np.arange(len(drawn))
    w, v, mask = w[drawn], layout.values[drawn], sample.mask[drawn]
    count = w @ mask
    # every pair of columns observed together: at once when a complete row has weight
    together = bool(np.any(position[layout.complete] >= 0)) or bool(np.all(mask.T @ mask > 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (w @ v) / count
        z = v - centre
        z *= mask
        scale = np.sqrt((w @ (z * z)) / count)
    # a column constant among the drawn rows has a computed SD of at most ~n eps |value| (rounding
    # of its mean), far below 1e-10 of the column's largest |value|: a larger SD is a spread; a
    # smaller one (or a column unobserved, or a pair never together) is checked on the values
    if not (np.all(count > 0) and np.all(scale > sample.tiny_scale) and together):
        _checked_values(np.where(mask > 0, v, np.nan), names)  # the drawn rows' own message
    z /= scale
    pat = _Patterns.weighted(layout, z, w, mask, sample.n_observed[drawn], sample.groups, sample.n_pad, sample.cells,
                             position)
    return _em_fit(pat, centre, scale, names, max_iter, tol, start, with_loglik=loglik, index=sample.index)


def _em_fit(pat: "_Patterns", centre: np.ndarray, scale: np.ndarray, names: list[str], max_iter: int, tol: float,
            start: EMMoments | None, with_loglik: bool = True, index: pd.Index | None = None) -> EMMoments:
    """EM on the standardised rows of ``pat`` from ``start`` (or the observed means and variances,
    zero covariances), the log-likelihood at the estimate, and the estimates back on the scale of
    the data."""
    p = pat.p
    n = pat.n

    def step(mu, sigma):
        """One EM step from (mu, sigma): the next iterate and the largest change."""
        precision = _precision(sigma, names)
        # an iterate that the estimate's quick test does not pass at once (_bound_passes) is tested
        # as the estimate will be, and one singular by that test stops EM with its error (as an
        # iterate whose inverse fails does), instead of creeping along the boundary to max_iter
        if not _bound_passes(precision, sigma):
            _check_positive_definite(sigma, names)
        t1, t2 = pat.centred_moments(mu, precision)  # sums of (y - mu) and (y - mu)(y - mu)' given y_o
        shift = t1 / n
        mu_new = mu + shift
        sigma_new = t2 / n - np.outer(shift, shift)
        sigma_new = (sigma_new + sigma_new.T) / 2
        change = max(np.abs(mu_new - mu).max(), np.abs(sigma_new - sigma).max())
        return mu_new, sigma_new, change

    if start is None:
        mu, sigma = np.zeros(p), np.eye(p)
    else:  # the start on the standardised scale of these rows
        same = start.mean.index.tolist() == names and start.cov.index.tolist() == names \
            and start.cov.columns.tolist() == names
        mean = start.mean if same else start.mean.reindex(names)
        cov = start.cov if same else start.cov.reindex(index=names, columns=names)
        mu = (mean.to_numpy(dtype=float) - centre) / scale
        sigma = cov.to_numpy(dtype=float) / np.outer(scale, scale)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        mu, sigma, change = step(mu, sigma)
        if change < tol:
            converged = True
            break
    if with_loglik:
        precision, logdet = _final_precision(sigma, names)
    elif not _passes_positive_definite(sigma):
        _check_positive_definite(sigma, names)
    if not converged:
        warnings.warn(
            f"EM for the mean and covariance of {', '.join(names)} did not converge in max_iter={max_iter} "
            f"iterations (last change {change:.3g} >= tol={tol:g}); results use the last iterate",
            ConvergenceWarning, stacklevel=4)

    # Observed-data log-likelihood: for each row, log N(y_o; mu_o, Sigma_oo), with
    # log|Sigma_oo| = log|Sigma| + log|P_mm| and e_o' Sigma_oo^-1 e_o = e'Pe - r_m' P_mm^-1 r_m
    # (P = Sigma^-1, e = y - mu with zeros on the missing part, r = Pe).
    loglik = np.nan
    if with_loglik:
        quad, logdet_oo = pat.observed_quadratic_forms(mu, precision, logdet)
        if pat.w_incomplete is None:
            quad_sum, logdet_sum = quad.sum(), logdet_oo.sum()
        else:
            quad_sum = float(pat.w_incomplete @ quad[:-1]) + quad[-1]
            logdet_sum = float(pat.w_incomplete @ logdet_oo[:-1]) + logdet_oo[-1]
        loglik = -0.5 * (pat.n_observed_sum * np.log(2 * np.pi) + logdet_sum + quad_sum)
        # Back to the original scale: the density of x is that of z divided by the scales.
        loglik -= float(pat.observed_per_column @ np.log(scale))

    if index is None:
        index = pd.Index(names)
    return EMMoments(
        mean=pd.Series(centre + scale * mu, index=index, name="mean"),
        cov=pd.DataFrame(sigma * np.outer(scale, scale), index=index, columns=index),
        loglik=float(loglik), n=int(round(n)), n_iter=int(n_iter), converged=converged,
    )


@dataclass(frozen=True)
class _Group:
    """Patterns handled as one stacked operation: their missing variables padded to the group's
    largest number missing ``K`` with padding variables p, p+1, ... (see :func:`_grouped_batches`)."""

    missing: np.ndarray  # (n_patterns, K): each pattern's missing variables, then padding
    k: np.ndarray  # (n_patterns,): each pattern's own number missing
    rows: np.ndarray  # the layout's rows with one of these patterns
    row_pattern: np.ndarray  # each row's position in missing
    counts: np.ndarray  # rows per pattern


def _grouped_batches(layout, p: int) -> tuple[list[_Group], int]:
    r"""The layout's batches (one per number missing ``k``) joined into fewer groups by
    :func:`analysis.patterns.merge_batches`, and the number of padding variables they need.

    A pattern missing :math:`m` (:math:`k` variables) is padded to :math:`K > k` with padding
    variables :math:`p, p+1, \dots`, which the E-step's precision matrix extends by an identity
    block (:math:`\tilde P = \mathrm{diag}(P, I)`) and the residuals by zeros: then
    :math:`\tilde P_{\tilde m\tilde m} = \mathrm{diag}(P_{mm}, I)`, whose inverse is
    :math:`\mathrm{diag}(P_{mm}^{-1}, I)`, and :math:`\tilde b = (b, 0)`,
    :math:`\tilde\zeta = (\zeta, 0)`: the same conditional quantities, for patterns with different
    ``k`` in one stacked call of :func:`~analysis.patterns.conditional_blocks` and
    :func:`~analysis.patterns.conditional_shifts` (the FIML likelihood's padding,
    :mod:`analysis.sem.fiml`).
    """
    merged = merge_batches([b.k for b in layout.batches], [len(b.rows) for b in layout.batches], p)
    groups, n_pad = [], 0
    for positions in merged:  # k ascending, in each group too
        group = [layout.batches[i] for i in positions]
        top = group[-1].k
        n_pad = max(n_pad, top - group[0].k)
        padding = [np.broadcast_to(p + np.arange(top - b.k), (len(b.missing), top - b.k)) for b in group]
        missing = np.vstack([np.hstack([b.missing, pad]) for b, pad in zip(group, padding)]).astype(np.intp)
        offsets = np.cumsum([0] + [len(b.missing) for b in group])
        groups.append(_Group(
            missing=missing,
            k=np.concatenate([np.full(len(b.missing), b.k) for b in group]),
            rows=np.concatenate([b.rows for b in group]),
            row_pattern=np.concatenate([b.row_pattern + o for b, o in zip(group, offsets)]),
            counts=np.concatenate([b.counts for b in group])))
    return groups, n_pad


class _Patterns:
    """The missingness patterns of a standardised matrix ``z`` (NaN = missing), arranged for EM,
    Little's test and the observed-data likelihood.

    The rows are grouped by pattern and the patterns by number missing
    (:func:`analysis.patterns.pattern_layout`); with :math:`P = \\Sigma^{-1}` and, for a row with
    observed part :math:`o` and missing part :math:`m`, :math:`e` = :math:`y - \\mu` on :math:`o`
    and 0 on :math:`m`, :math:`b = (Pe)_m`, :math:`\\zeta = P_{mm}^{-1}b` (partitioned inverse,
    :mod:`analysis.patterns`):

    - the conditional mean of the missing part is :math:`E(y_m - \\mu_m \\mid y_o) = -\\zeta`,
    - its conditional covariance is :math:`\\Sigma_{mm\\cdot o} = P_{mm}^{-1}`,
    - :math:`e_o^\\top\\Sigma_{oo}^{-1}e_o = e^\\top Pe - b^\\top\\zeta` and
      :math:`\\log|\\Sigma_{oo}| = \\log|\\Sigma| + \\log|P_{mm}|`,

    so each pattern needs only its :math:`k \\times k` block :math:`P_{mm}`, batched over the
    patterns with the same ``k`` (:func:`~analysis.patterns.conditional_blocks`,
    :func:`~analysis.patterns.conditional_shifts`), batches of few rows joined by padding
    (:func:`_grouped_batches`; the residuals then carry the padding columns, zero). Complete rows
    enter through their sums and cross-products, computed once; the incomplete rows (kept group
    after group, each a contiguous block) through one matrix product per iteration. Memory is that
    of the data.

    :meth:`weighted`: the same for rows with weights (a bootstrap draw's counts), the rows of
    weight 0 left out; sums over rows are then weighted sums (Little's test is unweighted only).
    """

    def __init__(self, z: np.ndarray):
        layout = pattern_layout(z)
        p = z.shape[1]
        groups, n_pad = _grouped_batches(layout, p)
        self._setup(layout, layout.values, None, layout.observed, layout.observed.sum(axis=1).astype(np.float64),
                    groups, n_pad, [block_cells(g.missing, p + n_pad) for g in groups])

    @classmethod
    def weighted(cls, layout, z: np.ndarray, weights: np.ndarray, mask: np.ndarray, n_observed: np.ndarray,
                 groups: list, n_pad: int, cells: list, position: np.ndarray) -> "_Patterns":
        """From a layout of rows, the standardised values ``z`` (0 where missing) of those taking
        part (weight > 0), their weights, float observed flags and numbers observed, the layout's
        groups (:func:`_grouped_batches`), each group's block cells and each layout row's position
        among those taking part (-1: none)."""
        self = cls.__new__(cls)
        self._setup(layout, z, np.asarray(weights, dtype=np.float64), mask, n_observed, groups, n_pad, cells, position)
        return self

    def _setup(self, layout, z, w, observed, n_observed, groups, n_pad, cells, position=None):
        n, p = z.shape
        self.p = p
        self.q = q = p + n_pad  # columns of the residuals: the variables, then the padding
        complete = layout.complete
        if position is not None:
            complete = position[complete]
            complete = complete[complete >= 0]
        zc = z[complete]
        if w is None:
            self.n = n
            self.observed_per_column = observed.sum(axis=0).astype(np.float64)
            self.n_observed_sum = float(n_observed.sum())
            self.n_complete = float(len(zc))
            self.sum_complete = zc.sum(axis=0)
            self.cross_complete = zc.T @ zc
        else:
            self.n = float(w.sum())
            self.observed_per_column = w @ observed
            self.n_observed_sum = float(w @ n_observed)
            wc = w[complete]
            self.n_complete = float(wc.sum())
            self.sum_complete = wc @ zc
            zc *= np.sqrt(wc)[:, None]
            self.cross_complete = zc.T @ zc
        # each group: its slice of the incomplete rows, missing variables (padded), rows' patterns,
        # counts (weighted), the flat positions of its rows' missing cells among the incomplete
        # rows' residuals, and each pattern's own number missing
        self.batches = []
        parts, used_cells = [], []
        start = 0
        for g, cell in zip(groups, cells):
            rows, which, counts = g.rows, g.row_pattern, g.counts
            if position is not None:
                rows = position[rows]
                keep = rows >= 0
                if not keep.any():
                    continue
                rows, which = rows[keep], which[keep]
                counts = np.bincount(which, weights=w[rows], minlength=len(g.missing))
            m = len(rows)
            fill = ((start + np.arange(m))[:, None] * q + g.missing[which]).ravel()
            self.batches.append((slice(start, start + m), g.missing, which, counts, fill, g.k, cell))
            parts.append(rows)
            used_cells.append(cell)
            start += m
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
        self.incomplete_rows = rows  # the rows of z_incomplete (and of the per-row results) in z
        self.z_incomplete = np.zeros((len(rows), q))
        self.z_incomplete[:, :p] = z[rows]
        self.mask_incomplete = np.zeros((len(rows), q))
        self.mask_incomplete[:, :p] = observed[rows]
        self.w_incomplete = None if w is None else w[rows]
        self.root_w = None if w is None else np.sqrt(self.w_incomplete)[:, None]
        self.cells = np.concatenate(used_cells) if used_cells else np.zeros(0, dtype=np.intp)
        self.n_patterns = layout.n_patterns
        self._extended = np.eye(q)  # diag(P, I): P written in at each use
        self._mu = np.zeros(q)

    def _residuals(self, mu):
        self._mu[:self.p] = mu
        e = np.subtract(self.z_incomplete, self._mu)
        e *= self.mask_incomplete
        return e

    def _precision(self, precision):
        if self.q == self.p:
            return precision
        self._extended[:self.p, :self.p] = precision
        return self._extended

    def _fill(self, e, precision, with_covariance):
        """Conditional means of the missing parts (written into ``e``), the summed conditional
        covariances (p x p, with ``with_covariance``) and, per incomplete row (otherwise),
        b' zeta = b' P_mm^-1 b and log|P_mm|."""
        flat = e.reshape(-1)  # e is a new C-ordered array: a view
        extended = self._precision(precision)
        parts = []
        quad = logdet = None
        if not with_covariance:
            quad, logdet = np.empty(len(e)), np.empty(len(e))
        flat_precision = extended.reshape(-1)
        for sl, keys, which, counts, fill, _k, cell in self.batches:
            if with_covariance:  # each iteration: the blocks P_mm by their flat positions, closed-form inverses
                size = keys.shape[1]
                inv_mm = small_inverse(flat_precision[cell].reshape(len(keys), size, size))[0]
                parts.append((counts[:, None, None] * inv_mm).ravel())
            else:
                inv_mm, logdet_mm = conditional_blocks(extended, keys, logdet=True)
                logdet[sl] = logdet_mm[which]
            b, zeta = conditional_shifts(extended, e[sl], keys, inv_mm, which)
            if not with_covariance:
                quad[sl] = np.einsum("ni,ni->n", b, zeta)
            flat[fill] = -zeta.ravel()
        cov_sum = None
        if with_covariance:
            q = self.q
            cov_sum = np.bincount(self.cells, weights=np.concatenate(parts) if parts else None,
                                  minlength=q * q).reshape(q, q)[:self.p, :self.p]
        return cov_sum, quad, logdet

    def centred_moments(self, mu, precision):
        """Sums of E(y - mu | y_o) and E((y - mu)(y - mu)' | y_o) over all rows (weighted)."""
        e = self._residuals(mu)
        cov_sum, _q, _l = self._fill(e, precision, with_covariance=True)
        if self.q > self.p:
            e = e[:, :self.p]
        s, nc = self.sum_complete, self.n_complete
        if self.root_w is None:
            e_sum = e.sum(axis=0)
        else:
            e *= self.root_w
            e_sum = self.root_w[:, 0] @ e
        d = s - nc * mu  # sum of (y - mu) over the complete rows
        t1 = d + e_sum
        # sum over the complete rows of (y - mu)(y - mu)' = C - s mu' - mu d'
        t2 = self.cross_complete - np.outer(s, mu)
        t2 -= np.outer(mu, d)
        t2 += e.T @ e
        t2 += cov_sum
        return t1, t2

    def observed_quadratic_forms(self, mu, precision, logdet_sigma):
        """Per incomplete row (in ``incomplete_rows`` order), then the complete rows summed
        (weighted) as one last entry: e_o' Sigma_oo^-1 e_o and log|Sigma_oo|, as two arrays."""
        e = self._residuals(mu)
        ep = e[:, :self.p]
        quad_e = np.einsum("ni,ni->n", ep @ precision, ep) if len(e) else np.empty(0)
        _c, quad_m, logdet_mm = self._fill(e, precision, with_covariance=False)
        s, nc = self.sum_complete, self.n_complete
        centred = self.cross_complete - np.outer(s, mu) - np.outer(mu, s) + nc * np.outer(mu, mu)
        quad_complete = float(np.sum(precision * centred))
        quad = np.concatenate([quad_e - quad_m, [quad_complete]])
        logdet = np.concatenate([logdet_sigma + logdet_mm, [nc * logdet_sigma]])
        return quad, logdet

    def little(self, mu, precision):
        """Little's d^2 and df (unweighted rows): sum over patterns of n_j ebar_o' Sigma_oo^-1 ebar_o,
        with ebar the pattern's mean of e, by the same partitioned inverse; df = sum_j p_j - p."""
        p = self.p
        d2, df = 0.0, -p
        if self.n_complete:
            ebar = self.sum_complete / self.n_complete - mu
            d2 += self.n_complete * float(ebar @ precision @ ebar)
            df += p
        e = self._residuals(mu)
        extended = self._precision(precision)
        for sl, keys, which, counts, _fill, k, _cell in self.batches:
            order = np.argsort(which, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            ebar = np.add.reduceat(e[sl][order], starts, axis=0) / counts[:, None]
            inv_mm, _ = conditional_blocks(extended, keys)
            b, zeta = conditional_shifts(extended, ebar, keys, inv_mm, np.arange(len(keys)))
            ebar_p = ebar[:, :p]
            quad = np.einsum("ni,ni->n", ebar_p @ precision, ebar_p) - np.einsum("ni,ni->n", b, zeta)
            d2 += float(counts @ quad)
            df += int(np.sum(p - k))
        return d2, df


def _precision(sigma: np.ndarray, names: list[str]) -> np.ndarray:
    """An EM iterate's inverse: from its Cholesky factor (half the work of LU); an iterate that is
    not positive definite by the inverse of its LU factors, as before."""
    inverse = spd_inverse(sigma)
    return inverse[0] if inverse is not None else _inv(sigma, names, sigma)


def _final_precision(sigma: np.ndarray, names: list[str]):
    """(inverse, log-determinant) of the estimate after :func:`_check_positive_definite`'s test.
    Its eigenvalue test is passed at once when the Cholesky factor exists and the bound
    lambda_min >= 1 / ||P||_F (P the inverse) exceeds twice the threshold 1e-10 * max(tr Sigma, 1),
    which is at least 1e-10 * max(lambda_max, 1); otherwise the eigenvalues are computed."""
    chol = spd_inverse(sigma)
    if chol is not None and _bound_passes(chol[0], sigma):
        return chol
    _check_positive_definite(sigma, names)
    return np.linalg.inv(sigma), float(np.linalg.slogdet(sigma)[1])


def _bound_passes(precision: np.ndarray, sigma: np.ndarray) -> bool:
    return 1.0 / np.linalg.norm(precision) > 2e-10 * max(float(np.trace(sigma)), 1.0)


def _passes_positive_definite(sigma: np.ndarray) -> bool:
    """:func:`_final_precision`'s quick pass of the positive-definiteness test, without the
    inverse's use: True when passed at once (False: the eigenvalues decide)."""
    chol = spd_inverse(sigma)
    return chol is not None and _bound_passes(chol[0], sigma)


def _inv(a: np.ndarray, names: list[str], sigma: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        _check_positive_definite(sigma, names)
        raise InputError(f"the covariance of {', '.join(names)} became singular during EM; "
                         "check for linearly dependent columns") from None


def _check_positive_definite(sigma: np.ndarray, names: list[str]) -> None:
    values, vectors = np.linalg.eigh(sigma)
    if values[0] > 1e-10 * max(values[-1], 1.0):
        return
    involved = [names[k] for k in np.flatnonzero(np.abs(vectors[:, 0]) > 1e-3)]
    raise InputError(f"columns {', '.join(involved)} are linearly dependent (the ML covariance is singular, "
                     f"smallest eigenvalue {values[0]:.3g} of the standardised covariance); drop one of them")


# --------------------------------------------------------------------------- input checks


def _check_columns(data: pd.DataFrame, columns: list[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if isinstance(columns, str):
        raise TypeError(f"columns: expected a list of column names, got the string {columns!r}")
    columns = list(columns)
    unknown = [c for c in columns if c not in data.columns]
    if unknown:
        raise InputError(f"column {unknown[0]!r} is not in the data; columns are {list(data.columns)!r}")
    seen = set()
    for c in columns:
        if c in seen:
            raise InputError(f"column {c!r} is listed twice in columns")
        seen.add(c)


def _numeric_matrix(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    _check_columns(data, columns)
    names = list(columns)
    if len(names) < 2:
        raise InputError(f"Little's MCAR test needs at least 2 columns, got {len(names)}: {names!r}")
    dtypes = data.dtypes
    for c in names:
        dtype = dtypes[c]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            col = data[c]
            present = col.dropna()
            example = f"; first value {present.iloc[0]!r} in row {int(np.flatnonzero(col.notna())[0]) + 1}" if len(present) else ""
            raise InputError(f"column {c!r} is not numeric (dtype {dtype}){example}; "
                             "recode it to numbers or leave it out of columns")
    x = data[names].to_numpy(dtype=np.float64, na_value=np.nan) if len(data) else np.empty((0, len(names)))
    return _checked_values(x, names), names


def _checked_values(x: np.ndarray, names: list[str]) -> np.ndarray:
    """``x`` (float, NaN = missing) after the checks of its values: every column observed, finite
    and not constant, every pair of columns observed together somewhere."""
    check_observed_values(x, names)
    # float: BLAS (an integer product is not); single precision: a sum of 0s and 1s is 0 only
    # when every term is, which is all this asks
    observed = (~np.isnan(x)).astype(np.float32)
    together = observed.T @ observed
    never = np.argwhere(together == 0)
    if len(never):
        a, b = never[0]
        raise InputError(f"columns {names[a]!r} and {names[b]!r} are never observed in the same row; "
                         "their covariance cannot be estimated, so leave one of them out of columns")
    return x


def _percent(count: np.ndarray, total: int) -> np.ndarray:
    count = np.asarray(count, dtype=np.float64)
    if total == 0:
        return np.full(count.shape, np.nan)
    return 100.0 * count / total
