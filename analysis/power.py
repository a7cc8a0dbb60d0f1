"""Analytic power of SEM fit tests: the RMSEA framework of MacCallum, Browne & Sugawara (1996).

Under a model with ``df`` degrees of freedom fitted to ``n`` respondents, the likelihood-ratio
chi-square follows (approximately) a non-central chi-square distribution with non-centrality

.. math:: \\lambda = (n - 1)\\, df\\, \\varepsilon^2 / G,

where :math:`\\varepsilon` is the population RMSEA and :math:`G` the number of groups (the
multi-group RMSEA of Steiger 1998, as semTools writes it). A test of :math:`H_0: \\varepsilon =
\\varepsilon_0` against :math:`H_A: \\varepsilon = \\varepsilon_A` rejects

- for :math:`\\varepsilon_0 < \\varepsilon_A` (the test of *close* fit, :math:`\\varepsilon_0 = .05`,
  or of *exact* fit, :math:`\\varepsilon_0 = 0`) when the statistic exceeds the upper
  :math:`\\alpha` quantile of :math:`\\chi^2_{df}(\\lambda_0)`; power is the upper tail of
  :math:`\\chi^2_{df}(\\lambda_A)` beyond it;
- for :math:`\\varepsilon_0 > \\varepsilon_A` (the test of *not-close* fit) when the statistic
  falls below the lower :math:`\\alpha` quantile of :math:`\\chi^2_{df}(\\lambda_0)`; power is the
  lower tail of :math:`\\chi^2_{df}(\\lambda_A)` below it.

The required sample size is the smallest whole ``n`` whose power exceeds the target. The nested
comparison of two models (MacCallum, Browne & Cai 2006) uses the difference of the two
non-centralities, :math:`(n - 1)(df_A \\varepsilon_A^2 - df_B \\varepsilon_B^2)/G`, on
:math:`df_A - df_B` degrees of freedom.

References
----------
MacCallum, R. C., Browne, M. W., & Sugawara, H. M. (1996). Power analysis and determination of
sample size for covariance structure modeling. *Psychological Methods, 1*(2), 130-149.
MacCallum, R. C., Browne, M. W., & Cai, L. (2006). Testing differences between nested covariance
structure models: Power analysis and null hypotheses. *Psychological Methods, 11*(1), 19-35.
Steiger, J. H. (1998). A note on multiple sample extensions of the RMSEA fit index. *Structural
Equation Modeling, 5*(4), 411-419.

In R: ``semTools::findRMSEApower``, ``semTools::findRMSEAsamplesize``,
``semTools::findRMSEApowernested`` (semTools 0.5-6; on the grid of ``tests/reference/power_rmsea.R`` the powers agree to 1e-11
and the sample sizes exactly, except where semTools' scan skips ``n``; see
:func:`rmsea_sample_size`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import ncx2

from analysis.errors import InputError

__all__ = ["chisq_test_power", "group_sample_size", "rmsea_power", "rmsea_sample_size", "rmsea_power_nested"]


def _check(rmsea0, rmseaA, df, alpha, group) -> None:
    for name, value in (("rmsea0", rmsea0), ("rmseaA", rmseaA)):
        if not np.isfinite(value) or value < 0:
            raise InputError(f"{name} = {value}: an RMSEA must be a number >= 0")
    if rmsea0 == rmseaA:
        raise InputError(f"rmsea0 = rmseaA = {rmsea0}: the null and the alternative RMSEA must differ")
    if not (df >= 1 and float(df) == int(df)):
        raise InputError(f"df = {df}: the degrees of freedom must be a whole number >= 1")
    if not 0 < alpha < 1:
        raise InputError(f"alpha = {alpha}: must lie between 0 and 1")
    if not (group >= 1 and float(group) == int(group)):
        raise InputError(f"group = {group}: the number of groups must be a whole number >= 1")


def chisq_test_power(ncp, df, alpha: float = 0.05, ncp0=0.0):
    r"""Power of a chi-square test that rejects above the upper ``alpha`` quantile of
    :math:`\chi^2_{df}(\lambda_0)` when the statistic follows :math:`\chi^2_{df}(\lambda)`:
    :math:`P\{\chi^2_{df}(\lambda) > \chi^2_{df,1-\alpha}(\lambda_0)\}`. With
    :math:`\lambda_0 = 0` the power of a Wald or likelihood-ratio test of non-centrality
    :math:`\lambda` (Satorra & Saris, 1985).

    In R: ``pchisq(qchisq(1 - alpha, df, ncp = ncp0), df, ncp = ncp, lower.tail = FALSE)``.
    """
    return ncx2.sf(ncx2.isf(alpha, df, ncp0), df, ncp)


def _tail_power(ncp0, ncpA, df, alpha, close: bool):
    """Power of the chi-square test with null non-centrality ``ncp0`` at ``ncpA``."""
    if close:  # reject when the statistic is large
        return chisq_test_power(ncpA, df, alpha, ncp0)
    return ncx2.cdf(ncx2.ppf(alpha, df, ncp0), df, ncpA)  # reject when it is small


def rmsea_power(rmsea0: float, rmseaA: float, df: int, n, alpha: float = 0.05,
                group: int = 1):
    """Power of the RMSEA test of ``rmsea0`` against ``rmseaA`` (MacCallum et al. 1996).

    Parameters
    ----------
    rmsea0, rmseaA : float
        Population RMSEA under the null and the alternative hypothesis. ``rmsea0 < rmseaA`` is a
        test of close (``rmsea0 = .05``) or exact (``rmsea0 = 0``) fit; ``rmsea0 > rmseaA`` a
        test of not-close fit.
    df : int
        Degrees of freedom of the model.
    n : int or array of int
        Total sample size (all groups together).
    alpha : float
        Significance level.
    group : int
        Number of groups: the non-centrality is divided by it (Steiger 1998), as in semTools.

    Returns
    -------
    float or numpy.ndarray
        The power, one value per ``n``.

    Notes
    -----
    :math:`\\lambda_j = (n-1)\\,df\\,\\varepsilon_j^2/G`; see the module docstring for the tails.
    In R: ``semTools::findRMSEApower(rmsea0, rmseaA, df, n, alpha, group)``.
    """
    _check(rmsea0, rmseaA, df, alpha, group)
    n_arr = np.asarray(n, dtype=float)
    if np.any(n_arr < 2):
        raise InputError(f"n = {n}: the sample size must be at least 2")
    ncp0 = (n_arr - 1) * df * rmsea0**2 / group
    ncpA = (n_arr - 1) * df * rmseaA**2 / group
    power = _tail_power(ncp0, ncpA, df, alpha, close=rmsea0 < rmseaA)
    return float(power) if np.ndim(power) == 0 else np.asarray(power, dtype=float)


def rmsea_sample_size(rmsea0: float, rmseaA: float, df: int, power: float = 0.80,
                      alpha: float = 0.05, group: int = 1) -> float:
    """Smallest sample size whose RMSEA-test power exceeds ``power`` (MacCallum et al. 1996).

    Parameters
    ----------
    rmsea0, rmseaA, df, alpha, group
        As in :func:`rmsea_power`.
    power : float
        The power wanted (strictly exceeded, as semTools counts it).

    Returns
    -------
    float
        The smallest whole total ``n`` >= 5 with power > ``power``, divided by ``group`` (the
        size of each group, as semTools returns it). If already ``n = 5`` has the power, 5.0
        divided by ``group`` is returned (semTools prints "Sample Size <= 5" there).

    Notes
    -----
    Power grows with ``n`` for both tails, so the whole ``n`` is found by doubling an upper
    bound and bisecting. semTools scans ``n = 5..500``, then ``505..1000``, ``1005..1500``, ...,
    so it never returns ``n = 501..504``, ``1001..1004``, ...; there it gives the next ``n`` it
    tries and this function the true smallest one (2 of the 160 reference cases).
    In R: ``semTools::findRMSEAsamplesize(rmsea0, rmseaA, df, power, alpha, group)``.
    """
    _check(rmsea0, rmseaA, df, alpha, group)
    if not 0 < power < 1:
        raise InputError(f"power = {power}: must lie between 0 and 1")
    low = 5
    if rmsea_power(rmsea0, rmseaA, df, low, alpha, group) > power:
        return low / group
    high = 10
    while rmsea_power(rmsea0, rmseaA, df, high, alpha, group) <= power:
        low, high = high, high * 2
        if high > 1e12:
            raise InputError(
                f"no sample size up to 1e12 reaches power {power} for rmsea0 = {rmsea0}, "
                f"rmseaA = {rmseaA}, df = {df}")
    while high - low > 1:  # power(low) <= target < power(high)
        mid = (low + high) // 2
        if rmsea_power(rmsea0, rmseaA, df, mid, alpha, group) > power:
            high = mid
        else:
            low = mid
    return high / group


def rmsea_power_nested(rmsea0A: float, rmsea0B: float, rmsea1A: float, rmsea1B: float,
                       dfA: int, dfB: int, n, alpha: float = 0.05, group: int = 1):
    """Power of the chi-square difference test between nested models (MacCallum et al. 2006).

    Parameters
    ----------
    rmsea0A, rmsea0B : float
        RMSEA of the more restricted model A and the less restricted model B under the null
        hypothesis (``0, 0`` for the test of no difference).
    rmsea1A, rmsea1B : float
        Their RMSEA under the alternative.
    dfA, dfB : int
        Degrees of freedom, ``dfA > dfB``.
    n, alpha, group
        As in :func:`rmsea_power`.

    Returns
    -------
    float or numpy.ndarray
        Power of the difference test, one value per ``n``.

    Notes
    -----
    :math:`\\lambda_j = (n-1)(df_A\\varepsilon_{jA}^2 - df_B\\varepsilon_{jB}^2)/G` on
    :math:`df_A - df_B` degrees of freedom; power is the upper tail beyond the null's upper
    :math:`\\alpha` quantile.
    In R: ``semTools::findRMSEApowernested(rmsea0A, rmsea0B, rmsea1A, rmsea1B, dfA, dfB, n,
    alpha, group)``.
    """
    if not dfA > dfB >= 0:
        raise InputError(f"dfA = {dfA}, dfB = {dfB}: the more restricted model A needs more "
                         "degrees of freedom than model B")
    if rmsea0A < rmsea0B or rmsea1A < rmsea1B:
        raise InputError("the more restricted model A cannot fit better than model B: "
                         f"rmsea0A = {rmsea0A} < rmsea0B = {rmsea0B} or rmsea1A = {rmsea1A} "
                         f"< rmsea1B = {rmsea1B}")
    n_arr = np.asarray(n, dtype=float)
    ddiff = dfA - dfB
    ncp0 = (n_arr - 1) * (dfA * rmsea0A**2 - dfB * rmsea0B**2) / group
    ncp1 = (n_arr - 1) * (dfA * rmsea1A**2 - dfB * rmsea1B**2) / group
    power = _tail_power(ncp0, ncp1, ddiff, alpha, close=True)
    return float(power) if np.ndim(power) == 0 else np.asarray(power, dtype=float)


def group_sample_size(min_group_size: int, smallest_share: float, kept_share: float = 1.0,
                      analysed_share: float = 1.0) -> int:
    r"""Respondents to invite so that the smallest group is expected to reach ``min_group_size``
    analysed rows: :math:`N = \lceil m / (\pi_{\min}\, k\, a) \rceil` with :math:`\pi_{\min}` the
    smallest group's share of respondents, :math:`k` the share kept by the screens and :math:`a`
    the share of the kept rows the analysis uses (the CFA half of a split: ``1 - split.share``).

    This is the size requirement of a multi-group (invariance) analysis whose decision is not a
    significance test (e.g. Chen's 2007 ΔCFI/ΔRMSEA criteria), where power is not defined; it is an
    expectation (half of the draws fall short of it).

    Raises
    ------
    InputError
        A share outside (0, 1] or a size below 1.
    """
    for name, v in (("smallest_share", smallest_share), ("kept_share", kept_share),
                    ("analysed_share", analysed_share)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise InputError(f"{name}: a share in (0, 1], got {v!r}")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise InputError(f"min_group_size: a whole number >= 1, got {min_group_size!r}")
    return int(math.ceil(min_group_size / (smallest_share * kept_share * analysed_share) - 1e-9))
