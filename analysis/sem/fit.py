r"""Fit indices: every one computed in one function, as lavaan keeps each in one ``lav_fit_*``.

The functions are pure functions of the statistics an estimator produces (test statistics,
degrees of freedom, scaling factors, sample and implied moments), so ML, MLR, MLM, FIML,
WLSMV/ULSMV and any number of groups call the same code. :func:`fit_measures` assembles them
into lavaan's ``fitMeasures(fit)`` (``fit.measures = "all"``), with lavaan's names, dots turned
into underscores, and NaN where lavaan gives NA.

Notation: :math:`T` the test statistic (chi-square) on :math:`df` degrees of freedom,
:math:`T_0, df_0` the baseline (independence) model's, :math:`N` the sample size lavaan uses in
the index (``lav_utils_get_ntotal``: the total N for ML, MLR, MLM; :math:`N - G` for the least-squares
estimators DWLS/ULS behind WLSMV/ULSMV), :math:`G` the number of groups, :math:`\hat c` a scaling
factor.

============================  ====================================================================
index                         formula (lavaan 0.6-14)
============================  ====================================================================
``pvalue``                    :math:`P(\chi^2_{df} > T)`; NA when df = 0
``cfi``                       :math:`1 - \max(T-df,0)/\max(T-df, T_0-df_0, 0)`; 1 when both are 0
``tli`` = ``nnfi``            :math:`1 - [(T-df)df_0]/[(T_0-df_0)df]`; 1 when df = 0; not truncated
``rni``                       :math:`1 - (T-df)/(T_0-df_0)`; not truncated; NA when :math:`T_0 = df_0`
``nfi``, ``pnfi``, ``rfi``,   Bentler & Bonett (1980), Bollen (1986, 1989), James et al. (1982)
``ifi``
``rmsea``                     :math:`\sqrt{\max(T/(N\,df) - \hat c/N, 0)}\sqrt G`; 0 when df = 0
``rmsea_ci_lower/upper``      :math:`\sqrt{\hat c\lambda/(N\,df)}\sqrt G` at the noncentralities
                              :math:`\lambda` where :math:`P(\chi^2_{df}(\lambda) \le T)` is .95, .05
``rmsea_pvalue``              :math:`P(\chi^2_{df}(\lambda_0) > T)`, :math:`\lambda_0 = N\,df\,\epsilon_0^2/(\hat cG)`,
                              :math:`\epsilon_0 = .05` (close fit); ``rmsea_notclose_pvalue`` the
                              lower tail at :math:`\epsilon_0 = .08`
``srmr`` and the other RMRs   root mean square residual (:func:`residual_measures`)
``gfi``, ``agfi``, ``pgfi``   :math:`1 - e^\top W e / s^\top W s` (:func:`gfi`); :math:`1 - (k/df)(1-GFI)`;
                              :math:`(df/k)GFI`, k the number of sample statistics
``aic``, ``bic``, ``bic2``    :math:`-2\log L + 2q`, :math:`+ q\log N`, :math:`+ q\log((N+2)/24)`
``ecvi``                      :math:`T/N + 2q/N`
``mfi``, ``cn_05/cn_01``      :math:`\exp(-(T-df)/(2N))`; :math:`\chi^2_{df,1-\alpha}/(T/N) + 1`
``wrmr``                      :math:`\sqrt{T/k}` (categorical data)
============================  ====================================================================

*Scaled* indices (``*_scaled``) put the scaled statistic in the same formulas. For the RMSEA
with a Satorra-Bentler or Yuan-Bentler test, lavaan uses the unscaled :math:`T` on
:math:`df_2 = \operatorname{tr}(U\Gamma) = \hat c\,df` (non-integer) degrees of freedom, which
gives the same point estimate as the scaled statistic on :math:`df` but a different interval and
p-value; with the scaled-and-shifted test (WLSMV) the scaled statistic on :math:`df`.

*Robust* indices (``*_robust``; Brosseau-Liard, Savalei & Li, 2012; Brosseau-Liard & Savalei,
2014; Savalei, 2018, 2021; Zhang & Savalei, 2023) replace :math:`df` by :math:`\hat c\,df`:
``cfi_robust`` :math:`= 1 - \max(T_3 - \hat c\,df, 0)/\max(T_3 - \hat c\,df, T_{3,0} - \hat c_0df_0, 0)`,
``rmsea_robust`` :math:`= \sqrt{\max(T_3/(N\,df) - \hat c/N, 0)}\sqrt G` and its interval from
:math:`T_3/\hat c`. For complete continuous data :math:`T_3 = T` and :math:`\hat c` the scaling
factor (with the scaled-and-shifted test :math:`\hat c = a(df - b)/df`, ``a`` lavaan's scaling
factor, ``b`` its shift); for FIML :math:`T_3, \hat c` of the FIML-corrected statistic; for
categorical data those of the ML discrepancy of the polychoric matrix (``catML``). The
estimator computes :math:`T_3, \hat c` (:class:`RobustStatistics`); this module only uses them.

References
----------
Bentler, P. M. (1990). Comparative fit indexes in structural models. *Psychological Bulletin,
    107*(2), 238-246.
Bentler, P. M., & Bonett, D. G. (1980). Significance tests and goodness of fit in the analysis of
    covariance structures. *Psychological Bulletin, 88*(3), 588-606.
Browne, M. W., & Cudeck, R. (1993). Alternative ways of assessing model fit. In K. A. Bollen &
    J. S. Long (Eds.), *Testing structural equation models* (pp. 136-162). Sage.
Brosseau-Liard, P. E., Savalei, V., & Li, L. (2012). An investigation of the sample performance
    of two nonnormality corrections for RMSEA. *Multivariate Behavioral Research, 47*(6), 904-930.
Brosseau-Liard, P. E., & Savalei, V. (2014). Adjusting incremental fit indices for
    nonnormality. *Multivariate Behavioral Research, 49*(5), 460-470.
Savalei, V. (2018). On the computation of the RMSEA and CFI from the mean-and-variance corrected
    test statistic with nonnormal data in SEM. *Multivariate Behavioral Research, 53*(3), 419-429.
Savalei, V. (2021). Improving fit indices in structural equation modeling with categorical
    data. *Multivariate Behavioral Research, 56*(3), 390-407.
Steiger, J. H. (1990). Structural model evaluation and modification: An interval estimation
    approach. *Multivariate Behavioral Research, 25*(2), 173-180.
Zhang, X., & Savalei, V. (2023). New computations for RMSEA and CFI following FIML and TS
    estimation with missing data. *Psychological Methods, 28*(2), 263-283.
Joreskog, K. G., & Sorbom, D. (1986). *LISREL VI*. Scientific Software (GFI, AGFI).
Sclove, S. L. (1987). Application of model-selection criteria to some problems in multivariate
    analysis. *Psychometrika, 52*(3), 333-343 (sample-size adjusted BIC).

In R: ``lavaan::fitMeasures(fit)`` (lavaan 0.6-14); the single functions are lavaan's internal
``lav_fit_cfi``, ``lav_fit_tli``, ``lav_fit_rni``, ``lav_fit_rmsea``, ``lav_fit_rmsea_ci``,
``lav_fit_rmsea_closefit``, ``lav_fit_srmr_lavobject``, ``lav_fit_gfi``, ``lav_fit_aic``,
``lav_fit_bic``, ``lav_fit_sabic``, ``lav_fit_ecvi``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize

from analysis.distributions import chi2_cdf, chi2_ppf, chi2_sf, ncx2_cdf, ncx2_sf
from analysis.missing import pairwise_covariance
from analysis.patterns import pattern_layout

__all__ = [
    "ScaledTest", "RobustStatistics", "fit_measures",
    "chisq_pvalue", "cfi", "tli", "nnfi", "rni", "nfi", "pnfi", "rfi", "ifi",
    "rmsea", "rmsea_ci", "rmsea_pvalue", "rmsea_notclose_pvalue",
    "residual_measures", "gfi", "ml_gfi", "missing_data_moments", "agfi", "pgfi",
    "aic", "bic", "bic2", "ecvi", "mfi", "cn", "wrmr", "sample_size",
]

# lavaan's isTRUE(all.equal(x, 0)): |x| below all.equal's default tolerance.
_ALL_EQUAL_TOL = 1.5e-8
# lavaan's lav_residuals_rescale leaves entries below this (in absolute value) unscaled.
_NEAR_ZERO = 1e-5
_ML_ESTIMATORS = ("ML", "MLR", "MLM", "MLMV", "MLMVS", "MLF")


def _nan(*values) -> bool:
    return any(v is None or (isinstance(v, float) and math.isnan(v)) or
               (isinstance(v, np.floating) and np.isnan(v)) for v in values)


def _missing(chisq, df, base_chisq, base_df, c_hat, c_hat_base) -> bool:
    """lavaan's anyNA(c(X2, df, X2.null, df.null, c.hat, c.hat.null)); a factor not given is 1."""
    return _nan(chisq, df, base_chisq, base_df) or _nan(*(c for c in (c_hat, c_hat_base) if c is not None))


def _zero(x: float) -> bool:
    return abs(x) < _ALL_EQUAL_TOL


def _robust_terms(chisq, df, base_chisq, base_df, c_hat, c_hat_base):
    """(T - c df, T0 - c0 df0): the robust form when df > 0 and both factors differ from 1."""
    if c_hat is not None and c_hat_base is not None and df > 0 and c_hat != 1 and c_hat_base != 1:
        return chisq - c_hat * df, base_chisq - c_hat_base * base_df
    return chisq - df, base_chisq - base_df


# --------------------------------------------------------------------------- chi-square and incremental indices


def chisq_pvalue(chisq: float, df: float) -> float:
    """Upper-tail p-value of the test statistic, :math:`P(\\chi^2_{df} > T)`; NaN when df = 0
    (lavaan's NA for a saturated model) or the statistic is not available.

    In R: ``fitMeasures(fit, "pvalue")``; ``pchisq(chisq, df, lower.tail = FALSE)``.
    """
    if _nan(chisq, df) or df <= 0 or not np.isfinite(chisq):
        return float("nan")
    return float(chi2_sf(chisq, df))


def cfi(chisq: float, df: float, base_chisq: float, base_df: float, c_hat: float | None = None,
        c_hat_base: float | None = None) -> float:
    r"""Comparative fit index (Bentler, 1990), lavaan's ``lav_fit_cfi``.

    .. math:: CFI = 1 - \frac{\max(T - df, 0)}{\max(T - df,\ T_0 - df_0,\ 0)}

    1 when numerator and denominator are both 0 (to 1.5e-8, R's ``all.equal``): a model that fits
    at least as well as its df, and a baseline no worse than its df. With ``c_hat`` and
    ``c_hat_base`` (both given, both not 1, df > 0) the robust CFI: :math:`df` becomes
    :math:`\hat c\,df` and :math:`df_0` becomes :math:`\hat c_0 df_0` (Brosseau-Liard & Savalei,
    2014; pass :math:`T_3`, :math:`T_{3,0}` as ``chisq``, ``base_chisq``). NaN if any input is.

    In R: ``fitMeasures(fit, c("cfi", "cfi.scaled", "cfi.robust"))``.
    """
    if _missing(chisq, df, base_chisq, base_df, c_hat, c_hat_base):
        return float("nan")
    num, base = _robust_terms(chisq, df, base_chisq, base_df, c_hat, c_hat_base)
    t1, t2 = max(num, 0.0), max(num, base, 0.0)
    if _zero(t1) and _zero(t2):
        return 1.0
    return float(1 - t1 / t2)


def tli(chisq: float, df: float, base_chisq: float, base_df: float, c_hat: float | None = None,
        c_hat_base: float | None = None) -> float:
    r"""Tucker-Lewis index (non-normed fit index), lavaan's ``lav_fit_tli``.

    .. math:: TLI = 1 - \frac{(T - df)\,df_0}{(T_0 - df_0)\,df}

    Not truncated (it can exceed 1 or be negative). 1 when df = 0 or :math:`T_0 = df_0`; robust
    form with ``c_hat``, ``c_hat_base`` as :func:`cfi`. NaN if any input is.

    In R: ``fitMeasures(fit, c("tli", "tli.scaled", "tli.robust"))``.
    """
    if _missing(chisq, df, base_chisq, base_df, c_hat, c_hat_base):
        return float("nan")
    num, base = _robust_terms(chisq, df, base_chisq, base_df, c_hat, c_hat_base)
    t1, t2 = num * base_df, base * df
    if df > 0 and abs(t2) > 0:
        return float(1 - t1 / t2)
    if not (np.isfinite(t1) and np.isfinite(t2)):
        return float("nan")
    return 1.0


nnfi = tli  # lavaan reports the same number as ``nnfi``


def rni(chisq: float, df: float, base_chisq: float, base_df: float, c_hat: float | None = None,
        c_hat_base: float | None = None) -> float:
    r"""Relative noncentrality index (McDonald & Marsh, 1990), lavaan's ``lav_fit_rni``.

    .. math:: RNI = 1 - \frac{T - df}{T_0 - df_0}

    The CFI without its truncations (above 1 when :math:`T < df`). NaN when :math:`T_0 = df_0`
    (to 1.5e-8) or any input is NaN; robust form with ``c_hat``, ``c_hat_base`` as :func:`cfi`.

    In R: ``fitMeasures(fit, c("rni", "rni.scaled", "rni.robust"))``.
    """
    if _missing(chisq, df, base_chisq, base_df, c_hat, c_hat_base):
        return float("nan")
    t1, t2 = _robust_terms(chisq, df, base_chisq, base_df, c_hat, c_hat_base)
    if _zero(t2) or not (np.isfinite(t1) and np.isfinite(t2)):
        return float("nan")
    return float(1 - t1 / t2)


def nfi(chisq: float, df: float, base_chisq: float, base_df: float) -> float:
    r"""Normed fit index (Bentler & Bonett, 1980), lavaan's ``lav_fit_nfi``:
    :math:`(T_0 - T)/T_0`; 1 when df = 0; NaN when :math:`df > df_0` or :math:`T_0 = 0`.

    In R: ``fitMeasures(fit, "nfi")``.
    """
    if _nan(chisq, df, base_chisq, base_df) or df > base_df or _zero(base_chisq):
        return float("nan")
    return float((base_chisq - chisq) / base_chisq) if df > 0 else 1.0


def pnfi(chisq: float, df: float, base_chisq: float, base_df: float) -> float:
    r"""Parsimony normed fit index (James, Mulaik & Brett, 1982), lavaan's ``lav_fit_pnfi``:
    :math:`(df/df_0)(T_0 - T)/T_0`; NaN unless :math:`df_0 > 0` and :math:`T_0 > 0`.

    In R: ``fitMeasures(fit, "pnfi")``.
    """
    if _nan(chisq, df, base_chisq, base_df) or not (base_df > 0 and base_chisq > 0):
        return float("nan")
    return float(df / base_df * (base_chisq - chisq) / base_chisq)


def rfi(chisq: float, df: float, base_chisq: float, base_df: float) -> float:
    r"""Relative fit index (Bollen, 1986), lavaan's ``lav_fit_rfi``:
    :math:`(T_0/df_0 - T/df)/(T_0/df_0)`, 1 when either term is negative or df = 0, NaN when
    :math:`df > df_0`.

    In R: ``fitMeasures(fit, "rfi")``.
    """
    if _nan(chisq, df, base_chisq, base_df) or df > base_df:
        return float("nan")
    if df > 0 and base_df > 0:
        t1, t2 = base_chisq / base_df - chisq / df, base_chisq / base_df
        if not (np.isfinite(t1) and np.isfinite(t2)):
            return float("nan")
        return 1.0 if t1 < 0 or t2 < 0 else float(t1 / t2)
    return 1.0


def ifi(chisq: float, df: float, base_chisq: float, base_df: float) -> float:
    r"""Incremental fit index (Bollen, 1989), lavaan's ``lav_fit_ifi``:
    :math:`(T_0 - T)/(T_0 - df)`; 1 when :math:`T_0 < df`, NaN when :math:`T_0 = df`.

    In R: ``fitMeasures(fit, "ifi")``.
    """
    if _nan(chisq, df, base_chisq, base_df):
        return float("nan")
    t1, t2 = base_chisq - chisq, base_chisq - df
    if not (np.isfinite(t1) and np.isfinite(t2)):
        return float("nan")
    if t2 < 0:
        return 1.0
    if _zero(t2):
        return float("nan")
    return float(t1 / t2)


# --------------------------------------------------------------------------- RMSEA


def rmsea(chisq: float, df: float, n: float, groups: int = 1, c_hat: float = 1.0,
          n_correction: float | None = None) -> float:
    r"""Root mean square error of approximation (Steiger, 1990), lavaan's ``lav_fit_rmsea``.

    .. math:: RMSEA = \sqrt{\max\left(\frac{T}{N\,df} - \frac{\hat c}{N_c},\ 0\right)}\ \sqrt G

    :math:`N_c` = ``n_correction``, by default ``n`` (lavaan); psych's ``fa.stats`` puts
    :math:`N - 1` there (and :math:`N` in the first term): ``rmsea(chisq, df, n,
    n_correction=n - 1)`` is psych's ``fa(...)$RMSEA[1]``.
    0 when df = 0; the :math:`\sqrt G` is lavaan's multiple-group RMSEA (Steiger, 1998). With
    ``c_hat`` the robust RMSEA (pass :math:`T_3`). For the scaled RMSEA pass the scaled statistic
    on df, or the unscaled one on :math:`\hat c\,df` (the same number). ``n`` is
    :func:`sample_size` (N for ML, N - G for least squares). NaN if an input is.

    In R: ``fitMeasures(fit, c("rmsea", "rmsea.scaled", "rmsea.robust"))``.
    """
    n_c = n if n_correction is None else n_correction
    if _nan(chisq, df, n, c_hat, n_c):
        return float("nan")
    if not df > 0:
        return 0.0
    return float(np.sqrt(max(chisq / n / df - c_hat / n_c, 0.0)) * np.sqrt(groups))


def _ncp_root(chisq: float, df: float, prob: float, upper: float) -> float:
    """Noncentrality lambda in [0, upper] with P(chi2_df(lambda) <= chisq) = prob."""
    f = lambda lam: ncx2_cdf(chisq, df, lam) - prob  # noqa: E731
    lo = 1e-12  # scipy's ncx2 needs a positive noncentrality; the cdf is continuous at 0
    if f(lo) < 0:
        return 0.0
    if f(upper) > 0:  # not bracketed: lavaan's uniroot fails and the bound is NA
        return float("nan")
    return float(optimize.brentq(f, lo, upper, xtol=1e-12, rtol=4 * np.finfo(float).eps))


def rmsea_ci(chisq: float, df: float, n: float, groups: int = 1, c_hat: float = 1.0,
             level: float = 0.90) -> tuple[float, float]:
    r"""Confidence interval of the RMSEA (Browne & Cudeck, 1993), lavaan's ``lav_fit_rmsea_ci``.

    With :math:`F_\lambda` the cdf of the noncentral :math:`\chi^2_{df}(\lambda)` at :math:`T`, the
    bounds are :math:`\sqrt{\hat c\,\lambda/(N\,df)}\sqrt G` at :math:`F_{\lambda_L} = (1+level)/2`
    and :math:`F_{\lambda_U} = (1-level)/2`. lavaan's edge rules: df < 1 gives (0, 0); the lower
    bound is 0 when :math:`F_0 < (1+level)/2`; the upper bound is 0 when :math:`F_0 < (1-level)/2`
    or when :math:`F_\lambda` is still above :math:`(1-level)/2` at
    :math:`\lambda = \max(N, 4T)`, the end of lavaan's search interval. For the scaled interval
    with a Satorra-Bentler or Yuan-Bentler test pass the unscaled T on :math:`\hat c\,df`
    degrees of freedom (lavaan's ``rmsea.ci.lower.scaled``); for the robust interval
    :math:`T_3/\hat c` on df with ``c_hat``. NaN bounds when an input is not finite.

    lavaan's ``uniroot`` stops at a tolerance of 1.2e-4 in :math:`\lambda`; the roots here are
    exact to 1e-12, so the bounds agree with lavaan's to about 1e-6.

    In R: ``fitMeasures(fit, c("rmsea.ci.lower", "rmsea.ci.upper"))`` (and ``.scaled``, ``.robust``).
    """
    if _nan(chisq, df, n, c_hat) or not (np.isfinite(chisq) and np.isfinite(df) and np.isfinite(n)):
        return float("nan"), float("nan")
    if not 0 <= level <= 1:
        raise ValueError(f"level must be in [0, 1], got {level!r}")
    if df < 1:
        return 0.0, 0.0
    upper_p, lower_p = 1 - (1 - level) / 2, (1 - level) / 2
    scale = np.sqrt(groups) if groups > 1 else 1.0
    lam_lo = _ncp_root(chisq, df, upper_p, max(chisq, 1e-10))
    lower = float(np.sqrt(c_hat * lam_lo / (n * df)) * scale) if not lam_lo == 0 else 0.0
    n_rmsea = max(n, 4 * chisq)
    if ncx2_cdf(chisq, df, n_rmsea) - lower_p > 0 or chi2_cdf(chisq, df) - lower_p < 0:
        upper = 0.0
    else:
        lam_hi = _ncp_root(chisq, df, lower_p, n_rmsea)
        upper = float(np.sqrt(c_hat * lam_hi / (n * df)) * scale)
    return lower, upper


def rmsea_pvalue(chisq: float, df: float, n: float, groups: int = 1, c_hat: float = 1.0, h0: float = 0.05) -> float:
    r"""Test of close fit (Browne & Cudeck, 1993), lavaan's ``lav_fit_rmsea_closefit``:
    :math:`P(\chi^2_{df}(\lambda_0) > T)` with :math:`\lambda_0 = N\,df\,\epsilon_0^2/(\hat c\,G)`,
    the p-value of H0: RMSEA <= ``h0``. NaN when df = 0 or an input is not finite.

    In R: ``fitMeasures(fit, c("rmsea.pvalue", "rmsea.pvalue.scaled", "rmsea.pvalue.robust"))``.
    """
    if _nan(chisq, df, n, c_hat) or not (np.isfinite(chisq) and np.isfinite(df) and np.isfinite(n)) or not df > 0:
        return float("nan")
    try:
        return float(ncx2_sf(chisq, df, n * df * h0**2 / (c_hat * groups)))
    except OverflowError:  # scipy/boost's sf overflows at chisq ~ 0 with a large ncp (an exact fit): 1 - cdf
        return float(1.0 - ncx2_cdf(chisq, df, n * df * h0**2 / (c_hat * groups)))


def rmsea_notclose_pvalue(chisq: float, df: float, n: float, groups: int = 1, c_hat: float = 1.0,
                          h0: float = 0.08) -> float:
    r"""Test of not-close fit (MacCallum, Browne & Sugawara, 1996), lavaan's
    ``lav_fit_rmsea_notclosefit``: :math:`P(\chi^2_{df}(\lambda_0) \le T)`, the p-value of
    H0: RMSEA >= ``h0``. NaN when df = 0.

    In R: ``fitMeasures(fit, "rmsea.notclose.pvalue")``.
    """
    if _nan(chisq, df, n, c_hat) or not (np.isfinite(chisq) and np.isfinite(df) and np.isfinite(n)) or not df > 0:
        return float("nan")
    return float(ncx2_cdf(chisq, df, n * df * h0**2 / (c_hat * groups)))


# --------------------------------------------------------------------------- residual-based indices


def _as_list(x, n_groups=None):
    if x is None:
        return [None] * (n_groups or 1)
    if isinstance(x, np.ndarray) and x.ndim <= 2 and x.dtype != object:
        return [np.asarray(x, dtype=float)]
    return [None if v is None else np.asarray(v, dtype=float) for v in x]


def _rescale(cov, mean, var_cov, var_mean):
    """lavaan's lav_residuals_rescale: divide by sqrt(var_i var_j) (means by sqrt(var_i)),
    leaving entries below 1e-5 in absolute value unscaled."""
    sc = 1 / np.sqrt(np.outer(var_cov, var_cov))
    sc = np.where(np.abs(cov) < _NEAR_ZERO, 1.0, sc)
    out_mean = None
    if mean is not None:
        sm = 1 / np.sqrt(var_mean)
        out_mean = mean * np.where(np.abs(mean) < _NEAR_ZERO, 1.0, sm)
    return cov * sc, out_mean


def residual_measures(sample_cov, implied_cov, nobs, sample_mean=None, implied_mean=None,
                      sample_thresholds=None, implied_thresholds=None, categorical: bool = False) -> dict:
    r"""Root mean square residuals, lavaan's ``lav_fit_srmr_lavobject`` (single level).

    Per group, with :math:`S, \hat\Sigma` the sample and implied covariance matrices (for
    categorical data the polychoric and implied correlation matrices), :math:`m, \hat\mu` the
    means (when the model has a mean structure), p variables:

    - ``rmr``: raw residuals :math:`S - \hat\Sigma` over the :math:`p(p+1)/2` non-duplicated
      elements (and :math:`m - \hat\mu` over p more);
    - ``srmr_bentler``: residuals divided by :math:`\sqrt{s_{ii}s_{jj}}` (means by
      :math:`\sqrt{s_{ii}}`), the sample standard deviations (Bentler's, EQS);
    - ``crmr``: correlation residuals :math:`r_{ij} - \hat\rho_{ij}` (Bollen), over the
      :math:`p(p-1)/2` off-diagonal elements (the means over :math:`\sqrt{s_{ii}}`; with means the
      denominator is :math:`p(p+1)/2`);
    - ``srmr_mplus``: Mplus' definition, correlation residuals below the diagonal, mean
      residuals :math:`m_i/\sqrt{s_{ii}} - \hat\mu_i/\sqrt{\hat\sigma_{ii}}` and variance residuals
      :math:`(s_{ii} - \hat\sigma_{ii})/s_{ii}`, over :math:`p(p+1)/2` (+ p);
    - ``*_nomean``: the covariance part alone;

    each :math:`\sqrt{\sum e^2 / k}`, averaged over groups with weights :math:`n_g/N`. lavaan's
    ``srmr`` is ``srmr_bentler`` (with the means when there is a mean structure: FIML, several
    groups, intercepts) for continuous data and ``srmr_bentler_nomean`` for categorical data;
    for categorical data the off-diagonal correlation residuals are over :math:`p(p+1)/2`
    (``rmr``, ``srmr``) or :math:`p(p-1)/2` (``crmr``), the totals add the threshold residuals,
    and ``srmr_mplus`` is NaN. As lavaan, entries below 1e-5 in absolute value are not rescaled.

    Parameters
    ----------
    sample_cov, implied_cov : array or sequence of arrays
        One p x p matrix per group (a single array for one group).
    nobs : int or sequence of int
        Cases per group.
    sample_mean, implied_mean : array or sequence, optional
        Means per group, when the model has a mean structure.
    sample_thresholds, implied_thresholds : array or sequence, optional
        Thresholds per group (categorical data).

    Returns
    -------
    dict
        ``rmr, rmr_nomean, srmr, srmr_bentler, srmr_bentler_nomean, crmr, crmr_nomean,
        srmr_mplus, srmr_mplus_nomean``.

    In R: ``fitMeasures(fit, c("srmr", "srmr_bentler", "crmr", "srmr_mplus", "rmr"))``.
    """
    s_list, sig_list = _as_list(sample_cov), _as_list(implied_cov)
    g_count = len(s_list)
    m_list, mu_list = _as_list(sample_mean, g_count), _as_list(implied_mean, g_count)
    th_list, thi_list = _as_list(sample_thresholds, g_count), _as_list(implied_thresholds, g_count)
    ns = np.atleast_1d(np.asarray(nobs, dtype=float))
    if len(ns) != g_count:
        raise ValueError(f"nobs: {len(ns)} group sizes for {g_count} groups")
    keys = ("rmr", "rmr_nomean", "srmr_bentler", "srmr_bentler_nomean", "crmr", "crmr_nomean", "srmr_mplus",
            "srmr_mplus_nomean")
    total = dict.fromkeys(keys, 0.0)
    for s, sig, m, mu, th, thi, n_g in zip(s_list, sig_list, m_list, mu_list, th_list, thi_list, ns):
        p = s.shape[0]
        w = n_g / ns.sum()
        var_obs, var_est = np.diag(s).copy(), np.diag(sig).copy()
        raw = s - sig
        res_mean = None if m is None or mu is None else m - mu
        s_b, m_b = _rescale(s, m, var_obs, var_obs)
        sig_b, mu_b = _rescale(sig, mu, var_obs, var_obs)
        bentler = s_b - sig_b
        bentler_mean = None if m_b is None or mu_b is None else m_b - mu_b
        s_c, m_c = _rescale(s, m, var_obs, var_obs)
        sig_c, mu_c = _rescale(sig, mu, var_est, var_obs)
        bollen = s_c - sig_c
        bollen_mean = None if m_c is None or mu_c is None else m_c - mu_c
        low = np.tril_indices(p)
        off = np.tril_indices(p, -1)
        out = {}
        if categorical:
            th_res = np.zeros(0) if th is None or thi is None else th - thi
            for name, r in (("rmr", raw), ("srmr_bentler", bentler), ("crmr", bollen)):
                stats_cor = r[off]
                k_cor = len(stats_cor) + (0 if name == "crmr" else p)
                k_tot = len(stats_cor) + len(th_res) + (0 if name == "crmr" else p)
                out[name + "_nomean"] = np.sqrt(np.sum(stats_cor**2) / k_cor) if k_cor else 0.0
                out[name] = np.sqrt((np.sum(stats_cor**2) + np.sum(th_res**2)) / k_tot) if k_tot else 0.0
            out["srmr_mplus"] = out["srmr_mplus_nomean"] = np.nan
        else:
            pstar = p * (p + 1) // 2
            for name, r, rm in (("rmr", raw, res_mean), ("srmr_bentler", bentler, bentler_mean),
                                ("crmr", bollen, bollen_mean)):
                cov_part = np.sum(r[low] ** 2)
                k = pstar - (p if name == "crmr" else 0)
                out[name + "_nomean"] = np.sqrt(cov_part / k) if k else 0.0
                if rm is not None:
                    out[name] = np.sqrt((cov_part + np.sum(rm**2)) / (k + p))
                else:
                    out[name] = out[name + "_nomean"]
            sd_obs, sd_est = np.sqrt(var_obs), np.sqrt(var_est)
            r_cor = s / np.outer(sd_obs, sd_obs) - sig / np.outer(sd_est, sd_est)
            var_part = np.sum(((var_obs - var_est) / var_obs) ** 2)
            cor_part = np.sum(r_cor[off] ** 2)
            out["srmr_mplus_nomean"] = np.sqrt((cor_part + var_part) / pstar)
            if m is not None and mu is not None:
                mean_part = np.sum((m / sd_obs - mu / sd_est) ** 2)
                out["srmr_mplus"] = np.sqrt((cor_part + mean_part + var_part) / (pstar + p))
            else:
                out["srmr_mplus"] = out["srmr_mplus_nomean"]
        for k in keys:
            total[k] += w * float(out[k])
    result = {"rmr": total["rmr"], "rmr_nomean": total["rmr_nomean"],
              "srmr": total["srmr_bentler_nomean"] if categorical else total["srmr_bentler"]}
    result.update({k: total[k] for k in keys[2:]})
    return result


def gfi(wls_obs, wls_est, wls_v, nobs) -> float:
    r"""Goodness-of-fit index (Joreskog & Sorbom, 1986), lavaan's ``lav_fit_gfi``.

    Per group, with :math:`s` the sample statistics (lavaan's ``WLS.obs``: means, variances and
    covariances; thresholds and correlations for categorical data), :math:`\hat\sigma` their
    model-implied values and :math:`W` the estimator's weight (``lavInspect(fit, "wls.v")``; a
    vector for a diagonal weight, DWLS/ULS). One group: three 1-D arrays (W 1-D or 2-D); several:
    sequences of them.

    .. math:: GFI_g = 1 - \frac{(s - \hat\sigma)^\top W (s - \hat\sigma)}{s^\top W s},

    averaged over groups with weights :math:`n_g/N`. For ML use :func:`ml_gfi`.

    In R: ``fitMeasures(fit, "gfi")``.
    """
    single = isinstance(wls_obs, np.ndarray) and wls_obs.ndim == 1
    obs = [wls_obs] if single else list(wls_obs)
    est = [wls_est] if single else list(wls_est)
    ws = [wls_v] if single else list(wls_v)
    values = []
    for s, e, w in zip(obs, est, ws):
        s, e, w = np.asarray(s, float), np.asarray(e, float), np.asarray(w, float)
        d = s - e
        if w.ndim == 2:
            values.append(1 - (d @ w @ d) / (s @ w @ s))
        else:
            values.append(1 - np.sum(w * d**2) / np.sum(w * s**2))
    ns = np.atleast_1d(np.asarray(nobs, dtype=float))
    return float(values[0]) if len(values) == 1 else float(ns @ np.asarray(values) / ns.sum())


def ml_gfi(sample_cov, implied_cov, nobs, sample_mean=None, implied_mean=None, patterns=None,
           fixed_x=None) -> float:
    r"""GFI for normal-theory ML, :func:`gfi` with lavaan's ML weight at the implied moments,
    :math:`W = \operatorname{blockdiag}(\hat\Sigma^{-1},\ \tfrac12 D^\top(\hat\Sigma^{-1}\otimes\hat\Sigma^{-1})D)`
    (the expected information of the saturated model, ``h1.information = "structured"``), in
    closed form:

    .. math:: GFI_g = 1 - \frac{\tfrac12\operatorname{tr}[(\hat\Sigma^{-1}(S-\hat\Sigma))^2] + (m-\hat\mu)^\top\hat\Sigma^{-1}(m-\hat\mu)}
              {\tfrac12\operatorname{tr}[(\hat\Sigma^{-1}S)^2] + m^\top\hat\Sigma^{-1}m},

    the mean terms only with a mean structure; averaged over groups with weights :math:`n_g/N`.

    With incomplete data (FIML) lavaan's weight is the expected information of the missing-data
    likelihood, the sum over missingness patterns k (observed variables o, :math:`n_k` cases) of
    the same blocks of :math:`\hat\Sigma_{oo}`, and its sample statistics are the available-case
    means and the pairwise-complete covariances times :math:`(N-1)/N` (not the EM estimates):
    pass those as ``sample_cov``, ``sample_mean`` and per group ``patterns = (observed, counts)``,
    the boolean pattern matrix (patterns x p) and the cases per pattern.

    ``fixed_x`` (per group the indices of the fixed.x covariates) leaves their own variances,
    covariances and means out of both sums, as lavaan's weight zeroes them
    (``lav_mvnorm_information_expected`` with ``x.idx``; complete data).

    In R: ``fitMeasures(fit, "gfi")`` for an ML fit (``lavInspect(fit, "wls.obs")``,
    ``lavInspect(fit, "wls.v")`` are the statistics and the weight).
    """
    s_list, sig_list = _as_list(sample_cov), _as_list(implied_cov)
    m_list, mu_list = _as_list(sample_mean, len(s_list)), _as_list(implied_mean, len(s_list))
    pat_list = [None] * len(s_list) if patterns is None else list(patterns)
    x_list = [()] * len(s_list) if fixed_x is None else list(fixed_x)
    values = []
    for s, sig, m, mu, pat, xi in zip(s_list, sig_list, m_list, mu_list, pat_list, x_list):
        p = len(s)
        sig_w = sig  # the weight is always the full implied matrix's
        if len(xi):  # the covariates' own moments are not fitted: out of both sums
            xi = np.asarray(xi, dtype=int)
            s, sig = np.array(s, dtype=float), np.array(sig, dtype=float)
            s[np.ix_(xi, xi)] = sig[np.ix_(xi, xi)] = 0.0
            if m is not None and mu is not None:
                m, mu = np.array(m, dtype=float), np.array(mu, dtype=float)
                m[xi] = mu[xi] = 0.0
        blocks = [(np.ones(p, dtype=bool), 1.0)] if pat is None else list(zip(np.asarray(pat[0], bool), pat[1]))
        num = den = 0.0
        for observed, n_k in blocks:
            o = np.flatnonzero(observed)
            sinv = np.linalg.inv(sig_w[np.ix_(o, o)])
            s_oo = s[np.ix_(o, o)]
            a, b = sinv @ (s_oo - sig[np.ix_(o, o)]), sinv @ s_oo
            num += n_k * 0.5 * np.sum(a * a.T)
            den += n_k * 0.5 * np.sum(b * b.T)
            if m is not None and mu is not None:
                num += n_k * (m[o] - mu[o]) @ sinv @ (m[o] - mu[o])
                den += n_k * m[o] @ sinv @ m[o]
        values.append(1 - num / den)
    ns = np.atleast_1d(np.asarray(nobs, dtype=float))
    return float(values[0]) if len(values) == 1 else float(ns @ np.asarray(values) / ns.sum())


def missing_data_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """lavaan's sample statistics of incomplete data (``lavInspect(fit, "wls.obs")`` with FIML):
    the available-case means, the pairwise-complete covariances (each pair's complete rows, its
    own means, :math:`n_{ij} - 1` denominator, R's ``cov(use = "pairwise")``) times
    :math:`(N-1)/N`, and the missingness patterns with their counts, for :func:`ml_gfi`.
    ``values`` is N x p with NaN for missing (rows with no value already removed)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    cov = pairwise_covariance(x) * (n - 1) / n
    layout = pattern_layout(x)
    return cov, np.nanmean(x, axis=0), (layout.flags, layout.counts)


def agfi(gfi_value: float, nel: int, df: float) -> float:
    r"""Adjusted GFI, lavaan's ``lav_fit_agfi``: :math:`1 - (k/df)(1 - GFI)` with k the number of
    sample statistics (``nel``, all groups); 1 when df = 0.

    In R: ``fitMeasures(fit, "agfi")``.
    """
    if _nan(gfi_value, nel, df) or not np.isfinite(gfi_value):
        return float("nan")
    return float(1 - nel / df * (1 - gfi_value)) if df > 0 else 1.0


def pgfi(gfi_value: float, nel: int, df: float) -> float:
    r"""Parsimony GFI (Mulaik et al., 1989), lavaan's ``lav_fit_pgfi``: :math:`(df/k)\,GFI`.

    In R: ``fitMeasures(fit, "pgfi")``.
    """
    if _nan(gfi_value, nel, df) or not np.isfinite(gfi_value) or nel == 0:
        return float("nan")
    return float(df / nel * gfi_value)


# --------------------------------------------------------------------------- information criteria and others


def aic(logl: float, npar: int) -> float:
    """Akaike's information criterion, :math:`-2\\log L + 2q`. In R: ``AIC(fit)``, ``fitMeasures(fit, "aic")``."""
    return float(-2 * logl + 2 * npar) if not _nan(logl) else float("nan")


def bic(logl: float, npar: int, n: float) -> float:
    """Schwarz's Bayesian information criterion, :math:`-2\\log L + q\\log N`.
    In R: ``BIC(fit)``, ``fitMeasures(fit, "bic")``."""
    return float(-2 * logl + npar * np.log(n)) if not _nan(logl) else float("nan")


def bic2(logl: float, npar: int, n: float) -> float:
    """Sample-size adjusted BIC (Sclove, 1987), :math:`-2\\log L + q\\log((N+2)/24)`, lavaan's
    ``lav_fit_sabic``. In R: ``fitMeasures(fit, "bic2")``."""
    return float(-2 * logl + npar * np.log((n + 2) / 24)) if not _nan(logl) else float("nan")


def ecvi(chisq: float, npar: int, n: float) -> float:
    """Expected cross-validation index (Browne & Cudeck, 1989), lavaan's ``lav_fit_ecvi``:
    :math:`T/N + 2q/N`. In R: ``fitMeasures(fit, "ecvi")``."""
    return float(chisq / n + 2 * npar / n) if not _nan(chisq) else float("nan")


def mfi(chisq: float, df: float, n: float) -> float:
    """McDonald's fit index (1989), :math:`\\exp(-(T - df)/(2N))`. In R: ``fitMeasures(fit, "mfi")``."""
    return float(np.exp(-0.5 * (chisq - df) / n)) if not _nan(chisq, df) else float("nan")


def cn(chisq: float, df: float, n: float, alpha: float = 0.05) -> float:
    r"""Hoelter's critical N, lavaan's ``lav_fit_cn``: :math:`\chi^2_{df,1-\alpha}/(T/N) + 1`;
    NaN when df = 0 and T = 0. In R: ``fitMeasures(fit, c("cn_05", "cn_01"))``."""
    if _nan(chisq, df) or (df == 0 and chisq < np.finfo(float).eps):
        return float("nan")
    with np.errstate(divide="ignore"):
        return float(chi2_ppf(1 - alpha, df) / (chisq / n) + 1)


def wrmr(chisq: float, nel: int) -> float:
    r"""Weighted root mean square residual, :math:`\sqrt{T/k}` (k sample statistics), lavaan's
    ``lav_fit_wrmr`` (categorical data). In R: ``fitMeasures(fit, "wrmr")``."""
    return float(np.sqrt(chisq / nel)) if nel > 0 and not _nan(chisq) else float("nan")


def sample_size(ntotal: int, n_groups: int = 1, estimator: str = "ML") -> int:
    """The N of the RMSEA, ECVI, MFI and CN, lavaan's ``lav_utils_get_ntotal``: the total sample
    size for the likelihood estimators (ML, MLR, MLM, ...), N - G otherwise (WLSMV, ULSMV, DWLS, ULS)."""
    return int(ntotal) if estimator.upper() in _ML_ESTIMATORS else int(ntotal - n_groups)


# --------------------------------------------------------------------------- all of them


@dataclass(frozen=True)
class ScaledTest:
    """A scaled test statistic as lavaan's ``lavInspect(fit, "test")`` element.

    Attributes
    ----------
    chisq : float
        The scaled statistic (``chisq.scaled``).
    scaling_factor : float
        ``chisq.scaling.factor``: c of ``T/c`` (Satorra-Bentler, Yuan-Bentler), 1/a for the
        scaled-and-shifted test ``a T + b``.
    method : {"yuan.bentler.mplus", "satorra.bentler", "yuan.bentler", "scaled.shifted"}
    shift : float, optional
        b of the scaled-and-shifted test.
    trace_ugamma : float, optional
        :math:`\\operatorname{tr}(U\\Gamma)`; defaults to ``scaling_factor * df`` (its value for
        the Satorra-Bentler and Yuan-Bentler tests).
    scaling_factor_h1, scaling_factor_h0 : float, optional
        Yuan-Bentler: :math:`\\operatorname{tr}(A_1^{-1}B_1)/p^*` of the saturated model and
        :math:`\\operatorname{tr}(A_0^{-1}B_0)/q` of the model (lavaan's ``scaling.factor.h1``,
        ``scaling.factor.h0``), reported after ``bic2`` when given.
    """

    chisq: float
    scaling_factor: float
    method: str = "yuan.bentler.mplus"
    shift: float | None = None
    trace_ugamma: float | None = None
    scaling_factor_h1: float | None = None
    scaling_factor_h0: float | None = None


@dataclass(frozen=True)
class RobustStatistics:
    """The statistics behind the robust CFI/TLI/RNI/RMSEA when they are not the scaled test's
    own: :math:`T_3, \\hat c` and :math:`T_{3,0}, \\hat c_0` of the FIML-corrected statistic
    (``lavaan:::lav_fit_fiml_corrected``) or of the categorical ML statistic
    (``lavaan:::lav_fit_catml_dwls``); ``df`` the degrees of freedom of :math:`T_3` (default: the
    model's). NaN (or None) entries give NaN indices, as lavaan's NA."""

    chisq: float
    c_hat: float
    baseline_chisq: float
    baseline_c_hat: float
    df: float | None = None


def _f(x) -> float:
    return float("nan") if x is None else float(x)


def fit_measures(*, npar: int, ntotal: int, chisq: float, df: float, baseline_chisq: float, baseline_df: float,
                 n_groups: int = 1, estimator: str = "ML", fmin: float | None = None,
                 scaled: ScaledTest | None = None, baseline_scaled: ScaledTest | None = None,
                 robust: RobustStatistics | None = None, robust_available: bool = False,
                 logl: float | None = None, unrestricted_logl: float | None = None,
                 residuals: dict | None = None, gfi_value: float | None = None, nel: int | None = None,
                 categorical: bool = False, level: float = 0.90, close_h0: float = 0.05,
                 notclose_h0: float = 0.08) -> dict:
    r"""lavaan's ``fitMeasures(fit)`` (all measures) from an estimator's statistics.

    Parameters
    ----------
    npar, ntotal : int
        Free parameters (less the rank of the equality constraints) and cases (all groups).
    chisq, df, baseline_chisq, baseline_df : float
        The model's and the baseline (independence) model's test statistics.
    n_groups : int
        G; the RMSEA is multiplied by :math:`\sqrt G`.
    estimator : str
        ML, MLR, MLM (N in the RMSEA) or WLSMV, ULSMV, DWLS, ULS (N - G): :func:`sample_size`.
    fmin : float, optional
        The minimum of lavaan's objective (``fmin``), reported when given.
    scaled, baseline_scaled : ScaledTest, optional
        The scaled tests (MLR, MLM, WLSMV, ...): adds the ``*_scaled`` measures and the robust ones.
    robust : RobustStatistics, optional
        :math:`T_3, \hat c` for FIML or categorical data; without it the robust indices come from
        the scaled test (complete continuous data).
    robust_available : bool
        Report the ``*_robust`` keys even without a scaled test (lavaan does for FIML and
        categorical data); NaN unless ``robust`` is given.
    logl, unrestricted_logl : float, optional
        Log-likelihoods of the model and the saturated model (ML family): adds ``logl,
        unrestricted_logl, aic, bic, bic2``.
    residuals : dict, optional
        :func:`residual_measures`' result.
    gfi_value, nel : float, int, optional
        :func:`gfi` or :func:`ml_gfi` and the number of sample statistics: adds ``gfi, agfi, pgfi``.
    categorical : bool
        Categorical data: ``wrmr`` instead of ``ecvi`` (as lavaan).
    level, close_h0, notclose_h0 : float
        RMSEA interval level and the close and not-close fit hypotheses (lavaan's defaults).

    Returns
    -------
    dict
        lavaan's names with underscores, in lavaan's order, plus ``ntotal`` and ``ngroups``;
        NaN where lavaan gives NA (callers writing JSON turn it into null).

    In R: ``fitMeasures(fit)``.
    """
    g = int(n_groups)
    n = sample_size(ntotal, g, estimator)
    out: dict = {"npar": int(npar)}
    if fmin is not None:
        out["fmin"] = float(fmin)
    out.update(chisq=float(chisq), df=df, pvalue=chisq_pvalue(chisq, df))
    scaled_flag = scaled is not None
    robust_flag = scaled_flag or robust_available or robust is not None
    if scaled_flag:
        out.update(chisq_scaled=_f(scaled.chisq), df_scaled=df, pvalue_scaled=chisq_pvalue(_f(scaled.chisq), df),
                   chisq_scaling_factor=_f(scaled.scaling_factor))
        if scaled.method == "scaled.shifted":
            out["chisq_shift_parameters"] = _f(scaled.shift)
    out.update(baseline_chisq=float(baseline_chisq), baseline_df=baseline_df,
               baseline_pvalue=chisq_pvalue(baseline_chisq, baseline_df))
    t0s = float("nan")
    if scaled_flag:
        bs = baseline_scaled
        t0s = _f(bs.chisq) if bs is not None else float("nan")
        out.update(baseline_chisq_scaled=t0s, baseline_df_scaled=baseline_df,
                   baseline_pvalue_scaled=chisq_pvalue(t0s, baseline_df),
                   baseline_chisq_scaling_factor=_f(bs.scaling_factor) if bs is not None else float("nan"))

    # The robust statistics: T3, c (model), T3_0, c_0 (baseline), and the interval's T and c.
    if robust is not None:
        t3, c3, t30, c30 = _f(robust.chisq), _f(robust.c_hat), _f(robust.baseline_chisq), _f(robust.baseline_c_hat)
        df3 = df if robust.df is None else robust.df
        ci_t, ci_c = (t3 / c3 if c3 != 0 else float("nan")), c3  # c3 infinite (df = 0): 0, as lavaan
    elif scaled_flag:
        t3, df3 = float(chisq), df
        if scaled.method == "scaled.shifted":
            a, b = _f(scaled.scaling_factor), _f(scaled.shift)
            c3 = a * (df - b) / df if df > 0 else float("nan")
            bs = baseline_scaled
            c30 = (_f(bs.scaling_factor) * (baseline_df - _f(bs.shift)) / baseline_df
                   if bs is not None and baseline_df > 0 else float("nan"))
        else:
            c3 = _f(scaled.scaling_factor)
            c30 = _f(baseline_scaled.scaling_factor) if baseline_scaled is not None else float("nan")
        t30 = float(baseline_chisq)
        ci_t, ci_c = _f(scaled.chisq), _f(scaled.scaling_factor)
    else:
        t3 = c3 = t30 = c30 = ci_t = ci_c = float("nan")
        df3 = df
    ts = _f(scaled.chisq) if scaled_flag else float("nan")

    args = (float(chisq), df, float(baseline_chisq), baseline_df)
    out.update(cfi=cfi(*args), tli=tli(*args))
    if scaled_flag:
        out.update(cfi_scaled=cfi(ts, df, t0s, baseline_df), tli_scaled=tli(ts, df, t0s, baseline_df))
    if robust_flag:
        out.update(cfi_robust=cfi(t3, df, t30, baseline_df, c3, c30), tli_robust=tli(t3, df, t30, baseline_df, c3, c30))
    out.update(nnfi=nnfi(*args), rfi=rfi(*args), nfi=nfi(*args), pnfi=pnfi(*args), ifi=ifi(*args), rni=rni(*args))
    if scaled_flag:
        sargs = (ts, df, t0s, baseline_df)
        out.update(nnfi_scaled=nnfi(*sargs), rfi_scaled=rfi(*sargs), nfi_scaled=nfi(*sargs), pnfi_scaled=pnfi(*sargs),
                   ifi_scaled=ifi(*sargs), rni_scaled=rni(*sargs))
    if robust_flag:
        out.update(nnfi_robust=nnfi(t3, df, t30, baseline_df, c3, c30), rni_robust=rni(t3, df, t30, baseline_df, c3, c30))

    if logl is not None:
        out.update(logl=float(logl), unrestricted_logl=_f(unrestricted_logl), aic=aic(logl, npar),
                   bic=bic(logl, npar, ntotal), bic2=bic2(logl, npar, ntotal))
        if scaled_flag and scaled.scaling_factor_h1 is not None:
            out.update(scaling_factor_h1=_f(scaled.scaling_factor_h1), scaling_factor_h0=_f(scaled.scaling_factor_h0))

    lo, hi = rmsea_ci(chisq, df, n, g, level=level)
    out.update(rmsea=rmsea(chisq, df, n, g), rmsea_ci_lower=lo, rmsea_ci_upper=hi, rmsea_ci_level=level,
               rmsea_pvalue=rmsea_pvalue(chisq, df, n, g, h0=close_h0), rmsea_close_h0=close_h0,
               rmsea_notclose_pvalue=rmsea_notclose_pvalue(chisq, df, n, g, h0=notclose_h0),
               rmsea_notclose_h0=notclose_h0)
    if scaled_flag:
        if scaled.method == "scaled.shifted":
            x2, df2 = ts, df
        else:
            x2 = float(chisq)
            df2 = _f(scaled.trace_ugamma) if scaled.trace_ugamma is not None else _f(scaled.scaling_factor) * df
            if not np.isfinite(df2) or df2 == 0:
                df2 = float("nan")
        lo_s, hi_s = rmsea_ci(x2, df2, n, g, level=level)
        out.update(rmsea_scaled=rmsea(x2, df2, n, g), rmsea_ci_lower_scaled=lo_s, rmsea_ci_upper_scaled=hi_s,
                   rmsea_pvalue_scaled=rmsea_pvalue(x2, df2, n, g, h0=close_h0),
                   rmsea_notclose_pvalue_scaled=rmsea_notclose_pvalue(x2, df2, n, g, h0=notclose_h0))
    if robust_flag:
        lo_r, hi_r = rmsea_ci(ci_t, df3, n, g, c_hat=ci_c, level=level)
        out.update(rmsea_robust=rmsea(t3, df3, n, g, c_hat=c3), rmsea_ci_lower_robust=lo_r,
                   rmsea_ci_upper_robust=hi_r,
                   rmsea_pvalue_robust=rmsea_pvalue(ci_t, df3, n, g, c_hat=ci_c, h0=close_h0),
                   rmsea_notclose_pvalue_robust=rmsea_notclose_pvalue(ci_t, df3, n, g, c_hat=ci_c, h0=notclose_h0))

    if residuals is not None:
        out.update({k: float(residuals[k]) for k in ("rmr", "rmr_nomean", "srmr", "srmr_bentler",
                                                       "srmr_bentler_nomean", "crmr", "crmr_nomean", "srmr_mplus",
                                                       "srmr_mplus_nomean")})
    out.update(cn_05=cn(chisq, df, n, 0.05), cn_01=cn(chisq, df, n, 0.01))
    if gfi_value is not None and nel is not None:
        out.update(gfi=float(gfi_value), agfi=agfi(gfi_value, nel, df), pgfi=pgfi(gfi_value, nel, df))
    out["mfi"] = mfi(chisq, df, n)
    if categorical:
        if nel is not None:
            out["wrmr"] = wrmr(chisq, nel)
    else:
        out["ecvi"] = ecvi(chisq, npar, n)
    out["ntotal"] = int(ntotal)
    out["ngroups"] = g
    return out
