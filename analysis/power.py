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

from analysis.distributions import norm_cdf, norm_ppf, norm_sf
from analysis.errors import InputError

__all__ = ["chisq_test_power", "contrast_power", "group_sample_size", "one_sided_z_power", "rmsea_power",
           "rmsea_sample_size", "rmsea_power_nested"]


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
    from scipy.stats import ncx2  # here: the stages that use no chi-square power skip its import

    return ncx2.sf(ncx2.isf(alpha, df, ncp0), df, ncp)


def _tail_power(ncp0, ncpA, df, alpha, close: bool):
    """Power of the chi-square test with null non-centrality ``ncp0`` at ``ncpA``."""
    if close:  # reject when the statistic is large
        return chisq_test_power(ncpA, df, alpha, ncp0)
    from scipy.stats import ncx2

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


def one_sided_z_power(delta, alpha: float = 0.05):
    r"""Power of the one-sided z test that rejects when :math:`z > z_{1-\alpha}` and
    :math:`z \sim N(\delta, 1)`: :math:`1-\beta = \Phi(\delta - z_{1-\alpha})` (the one-sided
    counterpart of the Wald power of Satorra & Saris, 1985, for one parameter).

    In R: ``pnorm(delta - qnorm(1 - alpha))``.
    """
    return norm_cdf(np.asarray(delta, dtype=float) - norm_ppf(1 - alpha))


def contrast_power(values: dict, covariances: dict, shares: dict, contrasts, n, alpha: float = 0.05,
                   min_group_size: int = 0, kept: dict | None = None, draws: int = 4000, seed: int = 0) -> dict:
    r"""Analytic power of directional group contrasts of a multigroup model, each a one-sided z
    test, and of all of them together with Holm's adjustment (the test of
    :func:`analysis.invariance.group_contrasts`).

    For part :math:`k` (a parameter larger in the groups :math:`A_k` than in :math:`B_k`) and
    :math:`N` invited respondents, group :math:`g` contributes :math:`N_g = N\pi_g` invited
    respondents (:math:`\pi_g` = ``shares[g]``: its share of the respondents times the share of
    them the analysis uses) whose estimate :math:`\hat b_{gk}` is normal around :math:`b_{gk}`
    (``values[g][k]``) with covariance :math:`V_g/N_g` (``covariances[g]``: per invited respondent
    of the group, in a metric common to the groups, e.g. the marker loading's when the loadings
    are equal). Groups are independent samples, so the contrast

    .. math::

        d_k = \frac{1}{|A_k|}\sum_{g\in A_k} b_{gk} - \frac{1}{|B_k|}\sum_{h\in B_k} b_{hk},\qquad
        \operatorname{Cov}(\hat d)_{kl} = \sum_g c_{kg} c_{lg} V_{g,kl}/N_g,

    with :math:`c_{kg}` the contrast weights (:math:`1/|A_k|`, :math:`-1/|B_k|`, 0). The
    :math:`z_k = \hat d_k/SE_k` are jointly normal with means :math:`\delta_k = d_k/SE_k` and the
    correlation of :math:`\hat d`. Part :math:`k` alone: :func:`one_sided_z_power` of
    :math:`\delta_k` (Satorra & Saris 1985 for the Wald test of one parameter). Jointly: ``draws``
    draws of :math:`z` (the same standard normal draws at every N); Holm's step-down test (Holm
    1979) on the one-sided p values :math:`1-\Phi(z_k)` rejects every part when the
    :math:`j`-th smallest is below :math:`\alpha/(K-j+1)` for every :math:`j`; the power is the
    share of draws in which it does. A group whose expected analysed rows
    :math:`N\pi_g\kappa_g` (:math:`\kappa_g` = ``kept[g]``, the share kept by the screens) fall
    below ``min_group_size`` is left out of the means, as the invariance stage leaves it out; a
    part with no group left on a side is not tested (power 0).

    Parameters
    ----------
    values : dict
        ``{group: sequence of K values}``, the parameters of the K parts in each group.
    covariances : dict
        ``{group: K x K covariance per invited respondent of the group}``.
    shares : dict
        ``{group: share of N}`` whose information the analysis uses (group share times the
        analysed share, e.g. the CFA half).
    contrasts : sequence of (first, than)
        Per part, the groups where the parameter is expected larger and those it is compared with
        (for ``smaller_in``, swap them).
    n : sequence of int
        N invited.
    alpha : float
        One-sided level of each test (before Holm's adjustment).
    min_group_size : int
        Smallest number of analysed rows for a group to be fitted.
    kept : dict, optional
        ``{group: share kept by the screens}`` (default 1): counts the rows for ``min_group_size``
        only, the information of a kept row being in ``covariances`` already.
    draws, seed
        Normal draws for the joint power and the seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict
        ``parts``: K x len(n) array of each part's power alone; ``joint``: len(n) array, the
        power of every part passing Holm; ``effect``: the K contrasts :math:`d_k`; ``se1``: K x
        len(n) array, :math:`SE_k\sqrt N` (NaN where a side has no group).

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal
    of Statistics, 6*, 65-70.
    Satorra, A., & Saris, W. E. (1985). Power of the likelihood ratio test in covariance structure
    analysis. *Psychometrika, 50*(1), 83-90.

    In R, per part and N: ``pnorm(d / sqrt(sum(c^2 * v / (N * share))) - qnorm(1 - alpha))``;
    jointly ``MASS::mvrnorm`` draws of z and ``all(p.adjust(pnorm(z, lower.tail = FALSE), "holm")
    < alpha)``.
    """
    groups = list(values)
    k_parts = len(contrasts)
    if not k_parts:
        raise InputError("contrasts: at least one part")
    for g in groups:
        if g not in covariances or g not in shares:
            raise InputError(f"group {g!r}: give its covariance and its share")
        if not 0 <= float(shares[g]) <= 1:
            raise InputError(f"shares[{g!r}]: a share in [0, 1], got {shares[g]!r}")
    for first, than in contrasts:
        unknown = [g for g in list(first) + list(than) if g not in values]
        if unknown or not first or not than or set(first) & set(than):
            raise InputError(f"contrast {list(first)} against {list(than)}: "
                             + (f"{unknown[0]!r} is not a group" if unknown else
                                "each side needs a group, and no group may be on both sides"))
    b = {g: np.asarray(values[g], dtype=float).reshape(k_parts) for g in groups}
    v = {g: np.asarray(covariances[g], dtype=float).reshape(k_parts, k_parts) for g in groups}
    kept = kept or {}
    n = np.asarray(n, dtype=float)
    z0 = np.random.default_rng(seed).standard_normal((int(draws), k_parts))
    crit = alpha / (k_parts - np.arange(k_parts))  # Holm: alpha / K, alpha / (K - 1), ..., alpha
    parts = np.zeros((k_parts, len(n)))
    se1 = np.full((k_parts, len(n)), np.nan)
    joint = np.zeros(len(n))
    effect = np.full(k_parts, np.nan)
    for i, ng in enumerate(n):
        used = [g for g in groups if shares[g] > 0 and ng * shares[g] * kept.get(g, 1.0) >= min_group_size]
        c = np.zeros((k_parts, len(groups)))
        testable = np.ones(k_parts, dtype=bool)
        for k, (first, than) in enumerate(contrasts):
            a, o = [g for g in first if g in used], [g for g in than if g in used]
            if not a or not o:
                testable[k] = False
                continue
            for g in a:
                c[k, groups.index(g)] = 1.0 / len(a)
            for g in o:
                c[k, groups.index(g)] = -1.0 / len(o)
        d = sum(c[:, j] * b[g] for j, g in enumerate(groups))
        cov1 = sum(np.outer(c[:, j], c[:, j]) * v[g] / shares[g] for j, g in enumerate(groups) if g in used)
        if np.isscalar(cov1):  # no group used
            continue
        sd1 = np.sqrt(np.clip(np.diag(cov1), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(testable & (sd1 > 0), d * math.sqrt(ng) / sd1, -np.inf)
            corr = cov1 / np.outer(sd1, sd1)
        effect = np.where(testable, d, effect)
        se1[:, i] = np.where(testable, sd1, np.nan)
        parts[:, i] = one_sided_z_power(delta, alpha)
        if not testable.all():
            continue
        try:  # Cholesky: no sign ambiguity, so the same draws whatever the last bits of corr
            root = np.linalg.cholesky(0.5 * (corr + corr.T))
        except np.linalg.LinAlgError:  # semi-definite (a part repeated)
            w, u = np.linalg.eigh(0.5 * (corr + corr.T))
            root = u * np.sqrt(np.clip(w, 0, None))
        z = delta + z0 @ root.T
        p = np.sort(norm_sf(z), axis=1)
        joint[i] = (p < crit).all(axis=1).mean()
    return {"parts": parts, "joint": joint, "effect": effect, "se1": se1}
