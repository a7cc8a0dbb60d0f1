"""Reliability and validity: alpha, composite reliability, AVE, Fornell-Larcker, HTMT, Harman.

The numbers agree with the R functions researchers cite: ``psych::alpha`` for coefficient
alpha and its item statistics, ``semTools::compRelSEM``, ``semTools::AVE`` and
``semTools::htmt`` for statistics from a fitted measurement model and for the HTMT ratio.

Nothing here fits a model. The statistics that need one take a *parameter table* as lavaan
writes it, ``lavaan::parameterEstimates(fit, standardized = TRUE)`` with the dots in column
names turned into underscores: a DataFrame with at least the columns ``lhs, op, rhs, est,
std_all``, where ``=~`` rows are loadings, ``~~`` rows variances and covariances and ``~`` rows
regressions among latent variables (a second-order factor's ``=~`` rows are read the same way).
From it,

.. math::

    \\Phi = (I - B)^{-1} \\Psi (I - B)^{-\\top}, \\qquad \\hat\\Sigma = \\Lambda \\Phi \\Lambda^\\top + \\Theta,

the latent covariance matrix (lavaan's ``lavInspect(fit, "cov.lv")``) and the model-implied
covariance matrix of the indicators (``lavInspect(fit, "fitted")$cov``). semTools' defaults
(``obs.var = TRUE``) divide by the *observed* variances, so those functions also take the
observed covariance matrix of the indicators, ``cov``: lavaan's sample statistics,
``lavInspect(fit, "sampstat")$cov``, which is the covariance with divisor ``n`` (not ``n - 1``)
for complete data, ``data[items].cov(ddof=0)``, and the EM (h1) covariance for
``missing = "ml"`` (:func:`analysis.missing.em_moments`). The divisor matters: ``n - 1`` instead
of ``n`` changes omega by a factor ``(n - 1) / n``.

Models with one group and one level and continuous indicators only; a parameter table with
several groups, thresholds (``|``, ordinal indicators) or regressions on observed variables is
refused with a ``ValueError``. Factors with fewer than two observed indicators (single
indicators, second-order factors) get no row, as semTools' ``dropSingle = TRUE``.

References
----------
Bentler, P. M. (2009). Alpha, dimension-free, and model-based internal consistency reliability.
    *Psychometrika, 74*(1), 137-143. https://doi.org/10.1007/s11336-008-9100-1
Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests. *Psychometrika,
    16*(3), 297-334. https://doi.org/10.1007/BF02310555
Duhachek, A., & Iacobucci, D. (2004). Alpha's standard error (ASE): An accurate and precise
    confidence interval estimate. *Journal of Applied Psychology, 89*(5), 792-808.
    https://doi.org/10.1037/0021-9010.89.5.792
Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for coefficient
    alpha. *Applied Psychological Measurement, 11*(1), 93-103.
    https://doi.org/10.1177/014662168701100107
Fornell, C., & Larcker, D. F. (1981). Evaluating structural equation models with unobservable
    variables and measurement error. *Journal of Marketing Research, 18*(1), 39-50.
    https://doi.org/10.1177/002224378101800104
Guttman, L. (1945). A basis for analyzing test-retest reliability. *Psychometrika, 10*(4),
    255-282. https://doi.org/10.1007/BF02288892
Harman, H. H. (1976). *Modern factor analysis* (3rd ed.). University of Chicago Press.
Henseler, J., Ringle, C. M., & Sarstedt, M. (2015). A new criterion for assessing discriminant
    validity in variance-based structural equation modeling. *Journal of the Academy of
    Marketing Science, 43*(1), 115-135. https://doi.org/10.1007/s11747-014-0403-8
Jorgensen, T. D., Pornprasertmanit, S., Schoemann, A. M., & Rosseel, Y. (2022). semTools:
    Useful tools for structural equation modeling. R package version 0.5-6.
McDonald, R. P. (1999). *Test theory: A unified treatment*. Erlbaum.
Podsakoff, P. M., MacKenzie, S. B., Lee, J.-Y., & Podsakoff, N. P. (2003). Common method biases
    in behavioral research: A critical review of the literature and recommended remedies.
    *Journal of Applied Psychology, 88*(5), 879-903. https://doi.org/10.1037/0021-9010.88.5.879
Raykov, T. (1997). Estimation of composite reliability for congeneric measures. *Applied
    Psychological Measurement, 21*(2), 173-184. https://doi.org/10.1177/01466216970212006
Revelle, W. (2022). psych: Procedures for psychological, psychometric, and personality
    research. R package version 2.2.9.
Roemer, E., Schuberth, F., & Henseler, J. (2021). HTMT2 - an improved criterion for assessing
    discriminant validity in structural equation modeling. *Industrial Management & Data
    Systems, 121*(12), 2637-2650. https://doi.org/10.1108/IMDS-02-2021-0082
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.checks import check_observed_values
from analysis.distributions import f_ppf, norm_ppf
from analysis.missing import EMSample, em_moments, em_moments_values, em_moments_weighted, pairwise_covariance
from analysis.warnings import ConvergenceWarning, CrossLoadingWarning, ReverseKeyWarning
from analysis.errors import InputError

__all__ = [
    "CrossLoadingWarning",
    "HTMT_MISSING",
    "ReverseKeyWarning",
    "ave",
    "composite_reliability",
    "cronbach_alpha",
    "fornell_larcker",
    "harman_single_factor",
    "htmt",
    "htmt_bootstrap",
    "item_statistics",
]


HTMT_MISSING = ("listwise", "pairwise", "ml")  # semTools::htmt(missing = ...), lavaan::lavCor's
ALPHA_COLUMNS = ["construct", "n_items", "n_obs", "raw_alpha", "std_alpha", "g6_smc", "average_r",
                 "median_r", "ase", "mean", "sd", "ci_level", "feldt_lower", "feldt_upper",
                 "duhachek_lower", "duhachek_upper"]
ITEM_COLUMNS = ["construct", "item", "reversed", "n", "raw_r", "std_r", "r_cor", "r_drop", "mean", "sd",
                "alpha_if_deleted", "std_alpha_if_deleted", "average_r_if_deleted"]


# --------------------------------------------------------------------------- alpha (psych)


def cronbach_alpha(data: pd.DataFrame, items: Sequence[str] | Mapping[str, Sequence[str]],
                   ci: float = 0.95, reverse: Sequence[str] = ()) -> pd.DataFrame:
    """Coefficient alpha per scale with Feldt's and Duhachek's confidence intervals, as psych::alpha.

    With :math:`C` the :math:`k \\times k` covariance matrix of a scale's items and :math:`R`
    their correlation matrix (``cov2cor(C)``),

    .. math::

        \\alpha = \\frac{k}{k - 1}\\Big(1 - \\frac{\\operatorname{tr} C}{1^\\top C 1}\\Big),\\qquad
        \\alpha_{std} = \\frac{k}{k - 1}\\Big(1 - \\frac{k}{1^\\top R 1}\\Big),\\qquad
        \\lambda_6 = 1 - \\frac{k - \\sum_i smc_i}{1^\\top R 1}

    (Cronbach, 1951; Guttman, 1945, with squared multiple correlations from the pseudo-inverse of
    :math:`R`). Confidence limits at level ``ci`` (:math:`p = 1 - ci`), with :math:`N` the
    number of rows:

    - Feldt, Woodruff & Salih (1987):
      :math:`1 - (1 - \\alpha) F_{1 - p/2}` and :math:`1 - (1 - \\alpha) F_{p/2}`, quantiles of
      :math:`F(N - 1, (N - 1)(k - 1))` (``psych::alpha.ci``).
    - Duhachek & Iacobucci (2004): :math:`\\alpha \\pm z_{1 - p/2} \\, ASE`, :math:`ASE = \\sqrt{Q/N}`,

      .. math::

          Q = \\frac{2k^2}{(k - 1)^2 (1^\\top C 1)^3}\\Big[(1^\\top C 1)\\big(\\operatorname{tr} C^2
              + (\\operatorname{tr} C)^2\\big) - 2 \\operatorname{tr} C \\; 1^\\top C^2 1\\Big].

    psych prints the Duhachek limits with :math:`z = 1.96`; here :math:`z` is the exact normal
    quantile (1.959964 at 95%), a difference of :math:`4 \\cdot 10^{-5} \\, ASE`.

    Missing values are handled as psych does (``use = "pairwise"``): :math:`C` from pairwise
    complete observations, :math:`R = cov2cor(C)`; :math:`N` is all rows of ``data`` (also in
    the Feldt interval and the ASE, as psych), and the scale score whose ``mean`` and ``sd`` are
    reported is the mean of the items a respondent answered.

    Parameters
    ----------
    data : DataFrame
        Item responses, one row per respondent.
    items : list of str or dict of str to list of str
        A scale's items, or ``{construct: items}`` for several scales (a plain list is named
        ``"scale"``). At least two items per scale.
    ci : float, default 0.95
        Confidence level of both intervals.
    reverse : list of str, default ()
        Items to reverse-key before anything is computed, as psych's ``keys``: :math:`x` becomes
        :math:`\\min + \\max - x` with the smallest and largest response over all items of the
        scale. Leave empty when the data are already reverse-coded.

    Returns
    -------
    DataFrame
        One row per scale: ``construct, n_items, n_obs, raw_alpha, std_alpha, g6_smc,
        average_r, median_r, ase, mean, sd, ci_level, feldt_lower, feldt_upper,
        duhachek_lower, duhachek_upper``; ``average_r`` and ``median_r`` are the mean and
        median inter-item correlation (psych's ``average_r``, ``median_r``).

    Raises
    ------
    ValueError
        An unknown item, a scale with fewer than two items, an item listed twice, a
        non-numeric, entirely missing or constant item (psych drops a constant item with a
        warning; here it is an error), ``reverse`` naming an item not in any scale, two items
        never answered together, or ``ci`` outside (0, 1).

    Warns
    -----
    ReverseKeyWarning
        An item loads negatively on the scale's first principal component (psych's check).

    Notes
    -----
    In R: ``psych::alpha(d[, items])``: ``$total`` (``raw_alpha, std.alpha, G6(smc),
    average_r, median_r, ase, mean, sd``), ``$feldt`` and the printed "Duhachek" row;
    ``psych::alpha(d[, items], keys = reverse)`` for reverse-keyed items.
    """
    level = _check_level(ci, "ci")
    rows = []
    for construct, names, x, rev in _scales(data, items, reverse):
        c = pairwise_covariance(x)
        _check_negative_loadings(c, names, construct)
        n_obs = x.shape[0]
        k = len(names)
        a = _alpha_parts(c)
        total = _row_means(x) if n_obs else np.empty(0)
        total = total[~np.isnan(total)]
        p = 1 - level
        df1, df2 = n_obs - 1, (n_obs - 1) * (k - 1)
        feldt_lower = 1 - (1 - a["raw"]) * f_ppf(1 - p / 2, df1, df2)
        feldt_upper = 1 - (1 - a["raw"]) * f_ppf(p / 2, df1, df2)
        ase = float(np.sqrt(a["q"] / n_obs))
        z = norm_ppf(1 - p / 2)
        rows.append((construct, k, n_obs, a["raw"], a["std"], a["g6"], a["average_r"], a["median_r"], ase,
                     float(total.mean()) if len(total) else np.nan,
                     float(total.std(ddof=1)) if len(total) > 1 else np.nan, level,
                     float(feldt_lower), float(feldt_upper), a["raw"] - z * ase, a["raw"] + z * ase))
    return pd.DataFrame(rows, columns=ALPHA_COLUMNS)


def item_statistics(data: pd.DataFrame, items: Sequence[str] | Mapping[str, Sequence[str]],
                    reverse: Sequence[str] = ()) -> pd.DataFrame:
    """Item-total correlations and alpha if the item is deleted, as psych::alpha.

    With :math:`C` the items' (pairwise) covariance matrix, :math:`R = cov2cor(C)` and, for item
    :math:`i`, :math:`C_{(i)}` the matrix without it:

    - ``r_drop`` (corrected item-total correlation, the item against the sum of the others):
      :math:`(1^\\top C_{\\cdot i} - C_{ii}) / \\sqrt{C_{ii} \\, 1^\\top C_{(i)} 1}`;
    - ``std_r``: :math:`1^\\top R_{\\cdot i} / \\sqrt{1^\\top R 1}`, the item against the sum of
      the standardised items;
    - ``r_cor``: the same with squared multiple correlations on the diagonal of :math:`R`
      (corrected for item overlap and reliability);
    - ``raw_r``: the Pearson correlation of the item with the scale score (the mean of the
      items answered), over the rows where both are present;
    - ``alpha_if_deleted``, ``std_alpha_if_deleted``, ``average_r_if_deleted``: raw alpha,
      standardised alpha and mean inter-item correlation of :math:`C_{(i)}` (see
      :func:`cronbach_alpha`). For a two-item scale psych reports, for deleting item 1,
      :math:`C_{12} / C_{22}` as the raw value and :math:`R_{12}` as the standardised value and
      mean correlation (alpha of one item is undefined); so does this function, to agree with it.

    Parameters
    ----------
    data : DataFrame
    items : list of str or dict of str to list of str
        As in :func:`cronbach_alpha`.
    reverse : list of str, default ()
        Items to reverse-key first, as in :func:`cronbach_alpha`; ``mean`` is then the mean of
        the reversed item.

    Returns
    -------
    DataFrame
        One row per item, scales in the given order: ``construct, item, reversed, n, raw_r,
        std_r, r_cor, r_drop, mean, sd, alpha_if_deleted, std_alpha_if_deleted,
        average_r_if_deleted`` (``n`` = responses to the item).

    Raises
    ------
    ValueError
        As :func:`cronbach_alpha`.

    Notes
    -----
    In R: ``psych::alpha(d[, items])$item.stats`` (``n, raw.r, std.r, r.cor, r.drop, mean,
    sd``) and ``$alpha.drop`` (``raw_alpha, std.alpha, average_r``).
    """
    rows = []
    for construct, names, x, rev in _scales(data, items, reverse):
        c = pairwise_covariance(x)
        _check_negative_loadings(c, names, construct)
        k = len(names)
        r = _cov2cor(c)
        rc = r.copy()
        np.fill_diagonal(rc, _smc(r))
        std_r = r.sum(axis=0) / np.sqrt(r.sum())
        r_cor = rc.sum(axis=0) / np.sqrt(rc.sum())
        total = _row_means(x)
        for i, name in enumerate(names):
            keep = [j for j in range(k) if j != i]
            r_drop = (c[:, i].sum() - c[i, i]) / np.sqrt(c[i, i] * c[np.ix_(keep, keep)].sum())
            if k > 2:
                a = _alpha_parts(c[np.ix_(keep, keep)])
                dropped = (a["raw"], a["std"], a["average_r"])
            else:  # psych's convention for a two-item scale
                other = keep[0]
                dropped = (c[0, 1] / c[other, other], r[0, 1], r[0, 1])
            col = x[:, i]
            both = ~np.isnan(col) & ~np.isnan(total)
            raw_r = np.corrcoef(col[both], total[both])[0, 1] if both.sum() > 1 else np.nan
            present = col[~np.isnan(col)]
            rows.append((construct, name, name in rev, int(len(present)), float(raw_r), float(std_r[i]),
                         float(r_cor[i]), float(r_drop), float(present.mean()), float(present.std(ddof=1)),
                         *(float(v) for v in dropped)))
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def _alpha_parts(c: np.ndarray) -> dict:
    """psych's alpha.1: raw and standardised alpha, G6, mean and median r, Duhachek's Q."""
    k = c.shape[0]
    r = _cov2cor(c)
    total, trace = c.sum(), np.trace(c)
    sum_r = r.sum()
    off = r[np.triu_indices(k, 1)]
    c2 = c @ c
    q = (2 * k**2 / ((k - 1) ** 2 * total**3)) * (total * (np.trace(c2) + trace**2) - 2 * trace * c2.sum())
    return {"raw": float((1 - trace / total) * k / (k - 1)),
            "std": float((1 - k / sum_r) * k / (k - 1)),
            "g6": float(1 - (k - _smc(r).sum()) / sum_r),
            "average_r": float((sum_r - k) / (k * (k - 1))),
            "median_r": float(np.median(off)),
            "q": float(q)}


def _check_negative_loadings(c: np.ndarray, names: list[str], construct: str) -> None:
    """Warn as psych::alpha does when an item loads negatively on the first principal component."""
    w, v = np.linalg.eigh(_cov2cor(c))
    first = v[:, np.argmax(w)]
    first = first * (1 if first.sum() >= 0 else -1)
    negative = [names[i] for i in np.flatnonzero(first < 0)]
    if negative:
        warnings.warn(f"scale {construct!r}: item(s) {', '.join(negative)} correlate negatively with the scale "
                      "(negative loading on its first principal component) and probably should be reverse-keyed; "
                      "pass them in reverse= or recode them", ReverseKeyWarning, stacklevel=3)


# --------------------------------------------------------------------------- from a fitted model (semTools)


def composite_reliability(partable: pd.DataFrame, cov: pd.DataFrame | None = None,
                          obs_var: bool = True) -> pd.DataFrame:
    """Composite reliability (omega) per factor, as semTools::compRelSEM, and the classic CR.

    ``omega`` is semTools' model-based reliability of the unit-weighted sum of a factor's
    indicators (McDonald, 1999; Raykov, 1997; with the observed total variance as in Bentler, 2009):

    .. math::

        \\omega_f = \\frac{\\big(\\sum_{i \\in f} \\lambda_{if}\\big)^2 \\phi_{ff}}
                         {1^\\top \\Sigma_{ff} 1},

    with unstandardised loadings :math:`\\lambda_{if}` (``est`` of the ``=~`` rows), the factor
    variance :math:`\\phi_{ff}` (from the implied latent covariance matrix :math:`\\Phi`) and
    :math:`\\Sigma_{ff}` the covariance matrix of the factor's indicators (every indicator with
    a non-zero loading on it, cross-loading ones included). semTools' default,
    ``obs.var = TRUE``, takes :math:`\\Sigma_{ff}` from the **observed** (sample) covariance
    matrix, so the denominator is the observed variance of the sum: pass ``cov``.
    ``obs_var=False`` takes the model-implied :math:`\\hat\\Sigma = \\Lambda\\Phi\\Lambda^\\top +
    \\Theta` built from the table (residual covariances count), as ``obs.var = FALSE``.

    ``cr`` is the classic composite (construct) reliability from the completely standardised
    solution (``std_all``), Fornell & Larcker's (1981) :math:`\\rho_c`:

    .. math::

        CR_f = \\frac{\\big(\\sum_i \\lambda^*_{if}\\big)^2}{\\big(\\sum_i \\lambda^*_{if}\\big)^2
               + \\sum_i \\theta^*_{ii}},

    which ignores residual covariances; for a congeneric factor without them it equals ``omega``
    with ``obs_var=False``.

    Parameters
    ----------
    partable : DataFrame
        lavaan-style parameter table with ``lhs, op, rhs, est, std_all`` (see the module
        docstring); one group, continuous indicators.
    cov : DataFrame, optional
        Observed covariance matrix of the indicators, labelled by item on both axes (more
        items are fine): ``lavInspect(fit, "sampstat")$cov``, i.e. divisor ``n`` for complete
        data. Needed when ``obs_var`` is true.
    obs_var : bool, default True
        Denominator from ``cov`` (semTools' default) or from the model-implied covariance.

    Returns
    -------
    DataFrame
        One row per factor with at least two indicators, in the order of the table:
        ``construct, n_items, omega, cr``.

    Raises
    ------
    ValueError
        A malformed parameter table (missing columns, several groups, ordinal thresholds,
        regressions on observed variables, a factor or indicator without a variance row,
        duplicated or missing estimates), ``obs_var`` true without ``cov``, or ``cov`` without
        an indicator.

    Notes
    -----
    In R: ``semTools::compRelSEM(fit)`` (``obs.var = TRUE``, ``tau.eq = FALSE``);
    ``semTools::compRelSEM(fit, obs.var = FALSE)`` for the model-implied denominator. Ordinal
    indicators (semTools' categorical omega), ``return.total`` and higher-order reliability are
    not implemented.
    """
    m = _measurement(partable)
    sigma = _denominator_cov(m, cov, obs_var)
    rows = []
    for f in m.factors:
        idx = m.indicators[f]
        lam = m.lam[idx, m.latents.index(f)]
        omega = lam.sum() ** 2 * m.phi[m.latents.index(f), m.latents.index(f)] / sigma[np.ix_(idx, idx)].sum()
        lam_std = m.lam_std[idx, m.latents.index(f)]
        theta_std = m.theta_std[idx]
        cr = lam_std.sum() ** 2 / (lam_std.sum() ** 2 + theta_std.sum())
        rows.append((f, len(idx), float(omega), float(cr)))
    return pd.DataFrame(rows, columns=["construct", "n_items", "omega", "cr"])


def ave(partable: pd.DataFrame, cov: pd.DataFrame | None = None, obs_var: bool = True) -> pd.DataFrame:
    """Average variance extracted per factor, as semTools::AVE, and from the standardised solution.

    semTools 0.5-6 defines AVE with the unstandardised solution, as the share of the summed
    indicator variances that the factor accounts for:

    .. math::

        AVE_f = \\frac{\\phi_{ff} \\sum_{i \\in f} \\lambda_{if}^2}{\\sum_{i \\in f} \\sigma_{ii}},

    with :math:`\\sigma_{ii}` the **observed** variances by default (``obs.var = TRUE``: pass
    ``cov``) or the model-implied ones (``obs_var=False``). This is Fornell & Larcker's (1981)
    :math:`\\rho_{vc} = \\sum\\lambda^2 / (\\sum\\lambda^2 + \\sum \\mathrm{var}(\\varepsilon))`
    on the scale of the data; it is not the mean of the squared standardised loadings unless
    the indicators have equal variances. That mean is ``ave_std``:

    .. math::

        AVE^*_f = \\frac{\\sum_i \\lambda^{*2}_{if}}{\\sum_i \\lambda^{*2}_{if} + \\sum_i \\theta^*_{ii}}
                = \\frac{1}{k}\\sum_i \\lambda^{*2}_{if},

    from ``std_all``, the form most applied papers report.

    A factor with an indicator that also loads on another factor gets ``NaN`` in both columns
    (semTools' ``NA``; the share is not that factor's alone) and a :class:`CrossLoadingWarning`.

    Parameters
    ----------
    partable, cov, obs_var
        As in :func:`composite_reliability`.

    Returns
    -------
    DataFrame
        One row per factor with at least two indicators: ``construct, n_items, ave, ave_std``.

    Raises
    ------
    ValueError
        As :func:`composite_reliability`.

    Notes
    -----
    In R: ``semTools::AVE(fit)``; ``semTools::AVE(fit, obs.var = FALSE)``; ``ave_std`` is
    ``tapply(std$est.std^2, std$lhs, mean)`` over the ``=~`` rows of
    ``lavaan::standardizedSolution(fit)``.
    """
    m = _measurement(partable)
    sigma = _denominator_cov(m, cov, obs_var)
    rows = []
    for f in m.factors:
        idx = m.indicators[f]
        crossing = [m.observed[i] for i in idx if m.n_factors_of[i] > 1]
        j = m.latents.index(f)
        if crossing:
            warnings.warn(f"factor {f!r}: indicator(s) {', '.join(crossing)} also load on another factor, so its "
                          "AVE is undefined (NaN, as semTools::AVE's NA)", CrossLoadingWarning, stacklevel=2)
            rows.append((f, len(idx), np.nan, np.nan))
            continue
        lam, lam_std = m.lam[idx, j], m.lam_std[idx, j]
        value = m.phi[j, j] * np.sum(lam**2) / np.trace(sigma[np.ix_(idx, idx)])
        value_std = np.sum(lam_std**2) / (np.sum(lam_std**2) + m.theta_std[idx].sum())
        rows.append((f, len(idx), float(value), float(value_std)))
    return pd.DataFrame(rows, columns=["construct", "n_items", "ave", "ave_std"])


def fornell_larcker(partable: pd.DataFrame, cov: pd.DataFrame | None = None, obs_var: bool = True) -> pd.DataFrame:
    """Fornell-Larcker table: sqrt(AVE) on the diagonal, factor correlations off it.

    A factor meets the Fornell & Larcker (1981) criterion of discriminant validity when
    :math:`\\sqrt{AVE_f} > |\\rho_{fg}|` for every other factor :math:`g`, i.e. it shares more
    variance with its indicators than with any other factor. AVE is semTools' (:func:`ave`,
    column ``ave``, with the same ``cov`` and ``obs_var``); the correlations are
    :math:`\\Phi` scaled to a correlation matrix, which for a CFA are the ``std_all`` values of
    the ``~~`` rows between factors (``lavInspect(fit, "cor.lv")``). Absolute correlations are
    compared, so a strong negative correlation also fails.

    Parameters
    ----------
    partable, cov, obs_var
        As in :func:`composite_reliability`.

    Returns
    -------
    DataFrame
        One row per factor with at least two indicators: ``construct``, one column per such
        factor (the table), then ``sqrt_ave``, ``max_abs_correlation`` (``NaN`` with one
        factor) and ``fornell_larcker_met`` (nullable boolean: ``<NA>`` when the AVE is
        undefined because of a cross-loading, ``True`` for a single factor).

    Raises
    ------
    ValueError
        As :func:`composite_reliability`, or a factor named like one of the fixed columns.

    Notes
    -----
    In R: ``sqrt(semTools::AVE(fit))`` and ``lavInspect(fit, "cor.lv")``.
    """
    m = _measurement(partable)
    clash = [f for f in m.factors if f in ("construct", "sqrt_ave", "max_abs_correlation", "fornell_larcker_met")]
    if clash:
        raise InputError(f"factor {clash[0]!r} has the name of a column of the Fornell-Larcker table; rename it")
    table = ave(partable, cov=cov, obs_var=obs_var)
    idx = [m.latents.index(f) for f in m.factors]
    phi = m.phi[np.ix_(idx, idx)]
    sd = np.sqrt(np.diag(phi))
    cor = phi / np.outer(sd, sd)
    root = np.sqrt(table["ave"].to_numpy())
    out = pd.DataFrame(cor, columns=m.factors)
    for k in range(len(m.factors)):
        out.iloc[k, k] = root[k]
    off = np.abs(cor)
    np.fill_diagonal(off, -np.inf)
    max_abs = off.max(axis=1) if len(m.factors) > 1 else np.full(len(m.factors), np.nan)
    met = pd.array([pd.NA if np.isnan(r) else (True if np.isnan(mx) else bool(r > mx))
                    for r, mx in zip(root, max_abs)], dtype="boolean")
    out.insert(0, "construct", m.factors)
    out["sqrt_ave"] = root
    out["max_abs_correlation"] = max_abs
    out["fornell_larcker_met"] = met
    return out


@dataclass(frozen=True)
class _Measurement:
    latents: list[str]
    observed: list[str]
    factors: list[str]  # latents with >= 2 observed indicators, table order
    indicators: dict[str, list[int]]  # factor -> rows of observed
    lam: np.ndarray  # observed x latents, est
    lam_std: np.ndarray  # observed x latents, std_all
    theta_std: np.ndarray  # residual variances, std_all
    phi: np.ndarray  # implied latent covariance
    sigma: np.ndarray  # implied observed covariance
    n_factors_of: np.ndarray  # per observed: number of multi-indicator factors it loads on


def _measurement(partable: pd.DataFrame) -> _Measurement:
    """Read Lambda, B, Psi, Theta from a lavaan parameter table (one group, continuous)."""
    if not isinstance(partable, pd.DataFrame):
        raise TypeError("partable: expected a pandas DataFrame (lavaan::parameterEstimates), "
                        f"got {type(partable).__name__}")
    missing = [c for c in ("lhs", "op", "rhs", "est", "std_all") if c not in partable.columns]
    if missing:
        raise InputError(f"the parameter table lacks column(s) {', '.join(missing)}; it needs lhs, op, rhs, est, "
                         "std_all as lavaan::parameterEstimates(fit, standardized = TRUE) gives (std.all -> std_all)")
    for col in ("group", "block", "level"):
        if col in partable.columns and partable[col].dropna().nunique() > 1:
            values = sorted(map(str, partable[col].dropna().unique()))
            raise InputError(f"the parameter table has several {col}s ({', '.join(values)}); pass one {col}'s rows "
                             f"at a time (partable[partable.{col} == ...])")
    pt = partable.reset_index(drop=True)
    ops = pt["op"].astype(str)
    if (ops == "|").any():
        k = int(np.flatnonzero(ops == "|")[0])
        raise InputError(f"the parameter table has thresholds ({pt.at[k, 'lhs']} | {pt.at[k, 'rhs']}): ordinal "
                         "indicators are not supported (semTools' categorical omega is not implemented)")
    load = pt[ops == "=~"]
    if load.empty:
        raise InputError("the parameter table has no loadings (op '=~'); it does not describe a measurement model")
    used = pt[ops.isin(["=~", "~~", "~"])]
    dup = used.duplicated(subset=["lhs", "op", "rhs"], keep=False)
    if dup.any():
        r = used[dup].iloc[0]
        raise InputError(f"the parameter table has the row {r['lhs']} {r['op']} {r['rhs']} more than once")
    latents = list(dict.fromkeys(load["lhs"].astype(str)))
    observed = [v for v in dict.fromkeys(load["rhs"].astype(str)) if v not in latents]
    li = {v: k for k, v in enumerate(latents)}
    oi = {v: k for k, v in enumerate(observed)}
    nl, no = len(latents), len(observed)
    lam, lam_std = np.zeros((no, nl)), np.zeros((no, nl))
    beta, psi, theta = np.zeros((nl, nl)), np.zeros((nl, nl)), np.zeros((no, no))
    theta_std = np.full(no, np.nan)
    has_var = set()

    def number(row, col):
        value = row[col]
        if pd.isna(value):
            raise InputError(f"the parameter table has no {col} for {row['lhs']} {row['op']} {row['rhs']}")
        return float(value)

    for _k, row in used.iterrows():
        lhs, op, rhs = str(row["lhs"]), str(row["op"]), str(row["rhs"])
        if op == "=~":
            if rhs in li:
                beta[li[rhs], li[lhs]] = number(row, "est")
            else:
                lam[oi[rhs], li[lhs]] = number(row, "est")
                lam_std[oi[rhs], li[lhs]] = number(row, "std_all")
        elif op == "~":
            if lhs not in li or rhs not in li:
                bad = lhs if lhs not in li else rhs
                raise InputError(f"the parameter table has the regression {lhs} ~ {rhs} on {bad!r}, which is not a "
                                 "factor; give the measurement model's table (a CFA) or one with regressions among "
                                 "factors only")
            beta[li[lhs], li[rhs]] = number(row, "est")
        else:  # ~~
            if lhs in li and rhs in li:
                psi[li[lhs], li[rhs]] = psi[li[rhs], li[lhs]] = number(row, "est")
                if lhs == rhs:
                    has_var.add(lhs)
            elif lhs in oi and rhs in oi:
                theta[oi[lhs], oi[rhs]] = theta[oi[rhs], oi[lhs]] = number(row, "est")
                if lhs == rhs:
                    theta_std[oi[lhs]] = number(row, "std_all")
                    has_var.add(lhs)
            elif (lhs in li) != (rhs in li) and (lhs in oi or rhs in oi):
                raise InputError(f"the parameter table has the covariance {lhs} ~~ {rhs} between a factor and an "
                                 "indicator, which a measurement model does not have")
            # covariances of variables outside the measurement model (covariates) are not needed
    for v in latents + observed:
        if v not in has_var:
            kind = "factor" if v in li else "indicator"
            raise InputError(f"the parameter table has no variance row {v} ~~ {v} for the {kind} {v!r}")
    try:
        inv = np.linalg.inv(np.eye(nl) - beta)
    except np.linalg.LinAlgError:
        raise InputError("the regressions among factors are circular (I - B is singular)") from None
    phi = inv @ psi @ inv.T
    sigma = lam @ phi @ lam.T + theta
    indicators = {f: [i for i in range(no) if lam[i, li[f]] != 0] for f in latents}
    factors = [f for f in latents if len(indicators[f]) >= 2]
    multi = np.array([li[f] for f in factors], dtype=int)
    n_factors_of = (np.round(lam[:, multi], 5) != 0).sum(axis=1) if len(multi) else np.zeros(no, dtype=int)
    return _Measurement(latents=latents, observed=observed, factors=factors, indicators=indicators, lam=lam,
                        lam_std=lam_std, theta_std=theta_std, phi=phi, sigma=sigma, n_factors_of=n_factors_of)


def _denominator_cov(m: _Measurement, cov, obs_var: bool) -> np.ndarray:
    if not isinstance(obs_var, (bool, np.bool_)):
        raise TypeError(f"obs_var: expected True or False, got {obs_var!r}")
    if not obs_var:
        return m.sigma
    if cov is None:
        raise ValueError("obs_var=True (semTools' default) divides by the observed variances: pass cov=, the "
                         "indicators' sample covariance matrix with divisor n (lavInspect(fit, 'sampstat')$cov; "
                         "data[items].cov(ddof=0) for complete data), or set obs_var=False for the model-implied one")
    if not isinstance(cov, pd.DataFrame):
        raise TypeError(f"cov: expected a DataFrame labelled by item on both axes, got {type(cov).__name__}")
    for v in m.observed:
        if v not in cov.index or v not in cov.columns:
            raise ValueError(f"indicator {v!r} is not in cov (its labels are {list(cov.columns)!r})")
    s = cov.loc[m.observed, m.observed].to_numpy(dtype=float)
    if not np.all(np.isfinite(s)):
        i, j = np.argwhere(~np.isfinite(s))[0]
        raise ValueError(f"cov has a missing or infinite value for {m.observed[i]!r}, {m.observed[j]!r}")
    if not np.allclose(s, s.T, rtol=1e-8, atol=1e-10):
        raise ValueError("cov is not symmetric")
    bad = [m.observed[i] for i in np.flatnonzero(np.diag(s) <= 0)]
    if bad:
        raise ValueError(f"cov has a variance <= 0 for {bad[0]!r}")
    return s


# --------------------------------------------------------------------------- HTMT (semTools)


def htmt(data: pd.DataFrame, constructs: Mapping[str, Sequence[str]], htmt2: bool = True,
         missing: str = "listwise") -> pd.DataFrame:
    """Heterotrait-monotrait ratio of correlations per pair of constructs, as semTools::htmt.

    .. math::

        HTMT_{ij} = \\frac{\\operatorname{M}_{g \\in i,\\, h \\in j} |r_{gh}|}
                         {\\sqrt{\\operatorname{M}_{g < g' \\in i} |r_{gg'}| \\;
                                 \\operatorname{M}_{h < h' \\in j} |r_{hh'}|}}

    the mean heterotrait-heteromethod correlation over the geometric mean of the two mean
    monotrait-heteromethod correlations (Henseler, Ringle & Sarstedt, 2015). semTools' default,
    ``htmt2 = TRUE``, takes every mean :math:`\\operatorname{M}` as a **geometric** mean
    (HTMT2, Roemer, Schuberth & Henseler, 2021), which does not assume tau-equivalent
    indicators; ``htmt2=False`` gives the original arithmetic means. Correlations are taken in
    absolute value (semTools' ``absolute = TRUE``), so reverse-keyed items need no recoding.
    Values near 1 signal a lack of discriminant validity; common cut-offs are .85 and .90.

    The item correlations follow the missing-data treatment (semTools' ``missing``, passed to
    ``lavaan::lavCor``), which should be the CFA's:

    ``"listwise"`` (semTools' default)
        Pearson correlations of the rows with every item of every construct present.
    ``"ml"`` (the CFA fitted with FIML)
        The correlations of the maximum-likelihood (EM) covariance matrix of the rows with any
        item observed, :func:`analysis.missing.em_moments`: lavaan's saturated-model (h1)
        moments, the sample statistics of a FIML fit (``lavInspect(fit, "sampstat")``).
    ``"pairwise"``
        :math:`s_{jk}/\\sqrt{s_{jj}s_{kk}}` from pairwise-complete covariances
        (:func:`analysis.missing.pairwise_covariance`), as ``lavCor(missing = "pairwise")``
        (``cov2cor(cov(x, use = "pairwise"))``; not ``cor(x, use = "pairwise")``, whose SDs
        are those of each pair's rows).

    Parameters
    ----------
    data : DataFrame
    constructs : dict of str to list of str
        ``{construct: items}``, at least two constructs with at least two items each, every
        item in one construct only.
    htmt2 : bool, default True
        Geometric (semTools' default) or arithmetic means.
    missing : {"listwise", "ml", "pairwise"}, default "listwise"
        How the item correlations treat missing values (above).

    Returns
    -------
    DataFrame
        One row per pair of constructs, in the order of ``constructs``:
        ``construct_1, construct_2, htmt``.

    Raises
    ------
    ValueError
        An unknown, non-numeric or constant item, a construct with fewer than two items, an
        item in two constructs, fewer than two constructs, an unknown ``missing``; for
        ``"listwise"`` fewer than three complete rows; for ``"pairwise"`` two items observed
        together in fewer than two rows; for ``"ml"`` what :func:`~analysis.missing.em_moments`
        refuses (linearly dependent items, two items never observed together).

    Notes
    -----
    In R: ``semTools::htmt(model, data, missing = "listwise")`` with ``model`` the constructs
    in lavaan syntax (``"A =~ a1 + a2 + a3; B =~ b1 + b2"``); ``htmt2 = FALSE`` for arithmetic
    means; ``missing = "ml"`` or ``"pairwise"``. With ``"ml"``, semTools runs lavaan's EM with
    its default tolerance (``em.h1.tol = 1e-5``) and agrees with this function to about 3e-6;
    ``htmt(model, sample.cov = lavCor(data, missing = "ml", em.h1.tol = 1e-12))`` agrees to
    1e-10 (``tests/reference/htmt_missing.R``).
    """
    missing = _htmt_missing(missing)
    names, x, blocks = _htmt_input(data, constructs)
    r = _htmt_correlations(x, names, missing)
    i, j = np.triu_indices(len(names), 1)
    values = _htmt_from_pairs(r[i, j][None, :], i, j, blocks, htmt2)[0]
    labels = list(constructs)
    pairs = [(a, b) for a in range(len(labels)) for b in range(a + 1, len(labels))]
    return pd.DataFrame({"construct_1": [labels[a] for a, _ in pairs], "construct_2": [labels[b] for _, b in pairs],
                         "htmt": values.astype(float)})


def htmt_bootstrap(data: pd.DataFrame, constructs: Mapping[str, Sequence[str]], n_boot: int,
                   rng: np.random.Generator, ci: float = 0.95, htmt2: bool = True, progress=None,
                   missing: str = "listwise") -> pd.DataFrame:
    """HTMT with percentile bootstrap confidence intervals.

    Each of ``n_boot`` resamples draws ``n`` of the ``n`` complete rows (``missing="listwise"``)
    or of the ``n`` rows with any item observed (``"ml"``, ``"pairwise"``) with replacement and
    computes :func:`htmt` on them under the same ``missing`` treatment (with ``"ml"`` an EM per
    resample started at the full sample's moments and stopped at a change below 1e-5 SD, lavaan's
    ``em.h1.tol``, on the sample's rows weighted by their counts in the draw,
    :func:`analysis.missing.em_moments_weighted`: about 9 CPU-ms for 81 items and 1,100 rows; a
    resample whose EM does not converge is left out and counted in one :class:`~analysis.warnings.ConvergenceWarning`; data with
    no missing cell are resampled as listwise, which is then the same); the limits are the :math:`(1 - ci)/2` and
    :math:`(1 + ci)/2` quantiles (linear interpolation, R's type 7) of the resampled values. A
    resample in which an item happens to be constant has no correlations, and one in which a
    construct's items happen to be uncorrelated has an infinite HTMT (a zero denominator); both are
    skipped, and ``n_boot_valid`` counts the resamples used. Discriminant validity is commonly inferred when
    the upper limit is below 1 (or .85/.90) (Henseler, Ringle & Sarstedt, 2015).

    A resample is its vector of counts :math:`w_b` (how often each row was drawn, summing to
    :math:`n`), so all resamples' moments come from one matrix product: with :math:`z` the rows
    centred and scaled by the full sample's means and SDs and :math:`o_i` the products
    :math:`z_{ij}z_{ik}` (:math:`j \\le k`) of row :math:`i`,

    .. math::

        m_b = \\tfrac1n W z, \\qquad C_b = \\tfrac1n W o - m_b m_b^\\top, \\qquad
        r_{b,jk} = C_{b,jk} / \\sqrt{C_{b,jj} C_{b,kk}},

    the same correlations as those of the resampled rows (to rounding), and every resample's
    HTMT from its correlations by sums over the item pairs of each pair of constructs. With
    whole-number items (Likert answers) the uncentred sums are used instead: whole numbers, held
    exactly, so a zero correlation or a constant item is recognised exactly. Otherwise a
    resample with an item of (near) zero variance is checked on its rows and, unless the item is
    constant there, computed from its centred rows.

    The limits depend on the random draws, so they agree with another implementation only in
    distribution; the point estimate ``htmt`` is :func:`htmt`'s.

    Parameters
    ----------
    data, constructs, htmt2, missing
        As in :func:`htmt`.
    n_boot : int
        Number of resamples, at least 1 (use 1000 or more for a report).
    rng : numpy.random.Generator
        The source of randomness (from the seed in params.yaml): resample ``b`` is
        ``rng.integers(0, n, size=n)``, in turn.
    ci : float, default 0.95
        Confidence level.
    progress : callable, optional
        Called as ``progress(k)`` after each ``k`` resamples (a progress bar's tick, see
        ``pipeline.progress``).

    Returns
    -------
    DataFrame
        ``construct_1, construct_2, htmt, ci_lower, ci_upper, n_boot_valid``, one row per pair.

    Raises
    ------
    ValueError
        As :func:`htmt`, ``n_boot`` < 1, ``ci`` outside (0, 1), or no valid resample.
    TypeError
        ``rng`` is not a ``numpy.random.Generator``.

    Notes
    -----
    In R (no packaged equivalent in semTools): ``boot::boot(d, function(d, i)
    semTools::htmt(model, d[i, ])[lower.tri(...)], R = n_boot)`` and ``boot.ci(type = "perc")``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng: expected a numpy.random.Generator (numpy.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot: need a whole number >= 1, got {n_boot!r}")
    level = _check_level(ci, "ci")
    point = htmt(data, constructs, htmt2=htmt2, missing=missing)
    names, x, blocks = _htmt_input(data, constructs)
    if missing != "listwise" and np.isnan(x).any():  # without missing cells every treatment is listwise's
        draws = _htmt_resampled_rows(x[~np.isnan(x).all(axis=1)], names, blocks, htmt2, missing, n_boot, rng,
                                     progress)
        return _htmt_intervals(point, draws, level)
    x = x[~np.isnan(x).any(axis=1)]
    n = len(x)
    draws = np.full((n_boot, len(point)), np.nan)
    for lo in range(0, n_boot, _BOOT_CHUNK):
        k = min(_BOOT_CHUNK, n_boot - lo)
        counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(k)])
        draws[lo:lo + k] = _htmt_resampled(x, counts.astype(float), blocks, htmt2)
        if progress is not None:
            progress(k)
    return _htmt_intervals(point, draws, level)


def _htmt_intervals(point: pd.DataFrame, draws: np.ndarray, level: float) -> pd.DataFrame:
    """:func:`htmt_bootstrap`'s percentile limits from the resamples' values (NaN rows left out)."""
    valid = np.isfinite(draws).all(axis=1)
    if not valid.any():
        raise InputError("no bootstrap resample had variance in every item; the data have too few distinct rows")
    lower, upper = np.quantile(draws[valid], [(1 - level) / 2, (1 + level) / 2], axis=0)
    return point.assign(ci_lower=lower, ci_upper=upper, n_boot_valid=int(valid.sum()))


def _htmt_resampled_rows(x: np.ndarray, names: list[str], blocks: list[list[int]], htmt2: bool, missing: str,
                         n_boot: int, rng: np.random.Generator, progress) -> np.ndarray:
    """:func:`htmt_bootstrap`'s resamples for ``missing`` "ml" or "pairwise": each resample's
    correlations by :func:`_htmt_correlations` on its rows (NaN: refused, or EM not converged).
    Under "ml" a resample is the sample's rows weighted by their counts in the draw
    (:func:`analysis.missing.em_moments_weighted`: the rows' patterns arranged once); the HTMT of
    all resamples comes from their correlations at the end, in one pass."""
    n = len(x)
    i, j = np.triu_indices(len(names), 1)
    pairs = np.full((n_boot, len(i)), np.nan)
    valid = np.zeros(n_boot, dtype=bool)
    # Each resample's EM starts at the full sample's moments and stops at a change below 1e-5 SD:
    # lavaan's em.h1.tol, the EM semTools::htmt(missing = "ml") runs (about half the iterations of
    # 1e-10; the interval's Monte Carlo error is ~1e-2).
    start = em_moments(pd.DataFrame(x, columns=names), names) if missing == "ml" else None
    sample = EMSample(x, names) if missing == "ml" else None
    unconverged = 0
    for b in range(n_boot):
        draw = rng.integers(0, n, size=n)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if sample is not None:
                    moments = em_moments_weighted(sample, np.bincount(draw, minlength=n), start=start,
                                                  tol=RESAMPLE_EM_TOL, loglik=False)
                    r = _cov2cor(moments.cov.to_numpy())
                else:
                    r = _htmt_correlations(x[draw], names, missing, start, tol=RESAMPLE_EM_TOL)
            except ValueError:  # an item constant or two never observed together in this resample
                r = None
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            unconverged += 1
            r = None
        for w in caught:  # anything else is passed on
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if r is not None:
            pairs[b] = r[i, j]
            valid[b] = True
        if progress is not None and ((b + 1) % _BOOT_CHUNK == 0 or b + 1 == n_boot):
            progress((b % _BOOT_CHUNK) + 1)
    if unconverged:
        warnings.warn(f"HTMT bootstrap: the EM did not converge in {unconverged} of {n_boot} resamples; they are left "
                      "out (n_boot_valid counts the resamples used)", ConvergenceWarning, stacklevel=3)
    draws = np.full((n_boot, len(blocks) * (len(blocks) - 1) // 2), np.nan)
    if valid.any():
        draws[valid] = _htmt_from_pairs(pairs[valid], i, j, blocks, htmt2)
    return draws


_BOOT_CHUNK = 250  # resamples per matrix product
RESAMPLE_EM_TOL = 1e-5  # EM tolerance of an HTMT resample under missing = "ml": lavaan's em.h1.tol
_PRODUCT_CELLS = 4_000_000  # rows x item pairs per block of the products o (32 MB)


def _htmt_resampled(x: np.ndarray, counts: np.ndarray, blocks: list[list[int]], htmt2: bool) -> np.ndarray:
    """HTMT of each resample (rows of ``counts``: how often each row of ``x`` was drawn), one
    column per pair of constructs (NaN: an item constant in the resample), as :func:`htmt` of the
    resampled rows. With whole-number items (Likert answers) the sums are whole numbers held
    exactly in floating point, so a zero correlation or a constant item is recognised exactly;
    otherwise the items are centred and scaled first."""
    n, p = x.shape
    iu, ju = np.triu_indices(p)
    exact = bool(np.all(x == np.rint(x))) and (n * float(np.abs(x).max())) ** 2 < 2.0**52
    z = x if exact else (x - x.mean(axis=0)) / x.std(axis=0)
    s1 = counts @ z
    num = np.empty((len(counts), len(iu)))  # n^2 times the resample's covariances
    step = max(1, _PRODUCT_CELLS // max(n, 1))
    for lo in range(0, len(iu), step):
        a, b = iu[lo:lo + step], ju[lo:lo + step]
        num[:, lo:lo + step] = n * (counts @ (z[:, a] * z[:, b])) - s1[:, a] * s1[:, b]
    var = num[:, iu == ju]
    off = iu != ju
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num[:, off] / np.sqrt(var[:, iu[off]] * var[:, ju[off]])
    out = _htmt_from_pairs(r, iu[off], ju[off], blocks, htmt2)
    if exact:
        out[(var == 0).any(axis=1)] = np.nan
        return out
    for k in np.flatnonzero((var < 1e-8 * n * n).any(axis=1)):  # a near-constant item: this resample's rows
        xb = np.repeat(x, counts[k].astype(np.int64), axis=0)
        centred = xb - xb.mean(axis=0)
        sd = np.sqrt((centred**2).sum(axis=0))
        if np.any(sd == 0):
            out[k] = np.nan
            continue
        zb = centred / sd
        rb = (zb.T @ zb)[iu[off], ju[off]]
        out[k] = _htmt_from_pairs(rb[None, :], iu[off], ju[off], blocks, htmt2)[0]
    return out


def _htmt_from_pairs(r: np.ndarray, i: np.ndarray, j: np.ndarray, blocks: list[list[int]], htmt2: bool) -> np.ndarray:
    """The HTMT of many correlation matrices at once: ``r`` holds one row per
    matrix, its columns the correlations of the item pairs ``(i, j)``, ``i < j``; returns one
    column per pair of blocks (in :func:`htmt`'s order). The sums over each block pair's items
    are ``np.add.reduceat`` over the pairs sorted by block pair."""
    owner = np.empty(max(max(b) for b in blocks) + 1, dtype=np.int64)
    for k, b in enumerate(blocks):
        owner[b] = k
    nb = len(blocks)
    bi, bj = owner[i], owner[j]
    lo, hi = np.minimum(bi, bj), np.maximum(bi, bj)
    group = lo * nb + hi  # block pair (a, b), a <= b; (a, a) the monotrait pairs of block a
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    keys = group[order][starts]
    size = np.diff(np.r_[starts, len(order)])
    a = np.abs(r[:, order])
    if htmt2:  # a zero correlation (log -inf) makes the geometric mean 0, as in R
        with np.errstate(divide="ignore"):
            a = np.log(a)
        means = np.exp(np.add.reduceat(a, starts, axis=1) / size)
    else:
        means = np.add.reduceat(a, starts, axis=1) / size
    col = {int(key): c for c, key in enumerate(keys)}
    mono = means[:, [col[k * nb + k] for k in range(nb)]]
    hetero = [(a_, b_) for a_ in range(nb) for b_ in range(a_ + 1, nb)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack([means[:, col[a_ * nb + b_]] / np.sqrt(mono[:, a_] * mono[:, b_])
                                for a_, b_ in hetero])


def _htmt_input(data, constructs):
    if not isinstance(constructs, Mapping):
        raise TypeError(f"constructs: expected a dict of construct -> items, got {type(constructs).__name__}")
    if len(constructs) < 2:
        raise InputError(f"HTMT compares constructs: need at least 2, got {len(constructs)}: {list(constructs)!r}")
    names, blocks, owner = [], [], {}
    for c, its in constructs.items():
        its = _item_list(its, f"constructs[{c!r}]")
        if len(its) < 2:
            raise InputError(f"construct {c!r} has {len(its)} item(s) ({', '.join(its)}); HTMT needs at least 2 per "
                             "construct (a mean monotrait correlation)")
        for i in its:
            if i in owner:
                raise InputError(f"item {i!r} is listed under both {owner[i]!r} and {c!r}")
            owner[i] = c
        blocks.append(list(range(len(names), len(names) + len(its))))
        names.extend(its)
    x = _numeric(data, names)
    return names, x, blocks


def _htmt_missing(missing) -> str:
    if missing not in HTMT_MISSING:
        raise InputError(f"missing: {missing!r} is not one of {', '.join(HTMT_MISSING)} (semTools::htmt's missing)")
    return missing


def _htmt_correlations(x: np.ndarray, names: list[str], missing: str, start=None, tol: float = 1e-10) -> np.ndarray:
    """The item correlations :func:`htmt` uses under ``missing`` (see there); ``start`` and
    ``tol``: the EM's start and tolerance for ``"ml"``."""
    if missing == "listwise":
        return _corr_complete(x, names)
    if missing == "pairwise":
        c = pairwise_covariance(x)
        if np.isnan(c).any():
            a, b = np.argwhere(np.isnan(c))[0]
            raise InputError(f"items {names[a]!r} and {names[b]!r} are observed together in fewer than 2 rows; their "
                             "pairwise covariance cannot be estimated")
        if np.any(np.diag(c) <= 0):
            raise InputError(f"item {names[int(np.flatnonzero(np.diag(c) <= 0)[0])]!r} is constant")
        return _cov2cor(c)
    moments = em_moments_values(x, names, start=start, tol=tol)  # the rows as they are: no data frame's checks
    return _cov2cor(moments.cov.to_numpy())


def _corr_complete(x: np.ndarray, names: list[str]) -> np.ndarray:
    complete = x[~np.isnan(x).any(axis=1)]
    if len(complete) < 3:
        raise InputError(f"only {len(complete)} row(s) have every item of {', '.join(names)}; HTMT uses complete rows "
                         "(listwise deletion, as semTools)")
    sd = complete.std(axis=0)
    if np.any(sd == 0):
        raise InputError(f"item {names[int(np.flatnonzero(sd == 0)[0])]!r} is constant in the complete rows")
    return np.corrcoef(complete, rowvar=False)


# --------------------------------------------------------------------------- Harman


def harman_single_factor(data: pd.DataFrame, items: Sequence[str], threshold: float = 0.5) -> pd.DataFrame:
    """Harman's single-factor test for common method variance: the first component's variance share.

    The share of the total variance of the standardised items that the first unrotated
    **principal component** accounts for, :math:`\\lambda_1 / p`, with :math:`\\lambda_1` the
    largest eigenvalue of the :math:`p \\times p` Pearson correlation matrix (pairwise complete
    observations). A share above ``threshold`` (conventionally 50%) is taken as a sign that a
    single (method) factor dominates (Podsakoff et al., 2003; Harman, 1976). The test is
    insensitive: a share below 50% does not show the absence of common method variance.
    Principal components rather than an unrotated common factor, so the number does not depend
    on an extraction method or its convergence.

    Parameters
    ----------
    data : DataFrame
    items : list of str
        All substantive items of the instrument, at least two.
    threshold : float, default 0.5
        Share above which ``exceeds_threshold`` is true.

    Returns
    -------
    DataFrame
        One row: ``n_items, n_obs, first_eigenvalue, variance_share, threshold,
        exceeds_threshold``.

    Raises
    ------
    ValueError
        Fewer than two items, an unknown, non-numeric, entirely missing or constant item, two
        items never observed together, or ``threshold`` outside (0, 1).

    Notes
    -----
    In R: ``eigen(cor(d[, items], use = "pairwise"))$values[1] / length(items)``, the same as
    ``psych::principal(d[, items], 1, rotate = "none")$Vaccounted["Proportion Var", 1]``.
    """
    level = _check_level(threshold, "threshold")
    names = _item_list(items, "items")
    if len(names) < 2:
        raise InputError(f"Harman's test needs at least 2 items, got {len(names)}: {names!r}")
    x = _numeric(data, names)
    r = _pairwise_corr(x, names)
    ev = float(np.linalg.eigvalsh(r)[-1])
    share = ev / len(names)
    return pd.DataFrame({"n_items": [len(names)], "n_obs": [int(x.shape[0])], "first_eigenvalue": [ev],
                         "variance_share": [share], "threshold": [level], "exceeds_threshold": [bool(share > level)]})


# --------------------------------------------------------------------------- helpers


def _check_level(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise InputError(f"{what}: need a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _item_list(items, what: str) -> list[str]:
    if isinstance(items, str):
        raise TypeError(f"{what}: expected a list of item names, got the string {items!r}")
    names = list(items)
    seen = set()
    for i in names:
        if i in seen:
            raise InputError(f"item {i!r} is listed twice in {what}")
        seen.add(i)
    return names


def _scales(data, items, reverse):
    """Yield (construct, item names, float matrix with reversed items flipped, reversed set)."""
    if isinstance(items, Mapping):
        scales = {str(c): _item_list(v, f"items[{c!r}]") for c, v in items.items()}
    else:
        scales = {"scale": _item_list(items, "items")}
    if not scales:
        raise InputError("items: no scale given")
    rev = set(_item_list(reverse, "reverse"))
    listed = {i for v in scales.values() for i in v}
    unknown = sorted(rev - listed, key=str)
    if unknown:
        raise InputError(f"reverse: item {unknown[0]!r} is not an item of any scale ({', '.join(map(str, listed))})")
    out = []
    for construct, names in scales.items():
        if len(names) < 2:
            raise InputError(f"scale {construct!r} has {len(names)} item(s) ({', '.join(map(str, names))}); alpha "
                             "needs at least 2 items")
        x = _numeric(data, names)
        flip = [k for k, n in enumerate(names) if n in rev]
        if flip:
            low, high = np.nanmin(x), np.nanmax(x)
            x[:, flip] = low + high - x[:, flip]
        _pairwise_corr(x, names)  # checks that every pair was observed together
        out.append((construct, names, x, rev & set(names)))
    return out


def _numeric(data: pd.DataFrame, names: list[str]) -> np.ndarray:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    for c in names:
        if c not in data.columns:
            raise InputError(f"item {c!r} is not a column of the data; columns are {list(data.columns)!r}")
    for c in names:
        col = data[c]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            raise InputError(f"item {c!r} is not numeric (dtype {col.dtype}); recode it to numbers")
    x = np.column_stack([data[c].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan) for c in names]) \
        if len(data) else np.empty((0, len(names)))
    check_observed_values(x, names, noun="item", advice="leave it out")
    return x


def _pairwise_corr(x: np.ndarray, names: list[str]) -> np.ndarray:
    """R's cor(x, use = "pairwise"); an error naming two items never observed together."""
    obs = (~np.isnan(x)).astype(np.int64)
    together = obs.T @ obs
    never = np.argwhere(together < 2)
    if len(never):
        a, b = never[0]
        raise InputError(f"items {names[a]!r} and {names[b]!r} are observed together in fewer than 2 rows; their "
                         "correlation cannot be estimated")
    r = pd.DataFrame(x).corr().to_numpy()
    if np.isnan(r).any():
        a, b = np.argwhere(np.isnan(r))[0]
        raise InputError(f"items {names[a]!r} and {names[b]!r} have no variance in the rows where both are present; "
                         "their correlation cannot be estimated")
    return r


def _cov2cor(c: np.ndarray) -> np.ndarray:
    d = 1 / np.sqrt(np.diag(c))
    return c * d[:, None] * d[None, :]


def _smc(r: np.ndarray) -> np.ndarray:
    """psych::smc: 1 - 1 / diag(R^+) with the Moore-Penrose inverse, as psych (Pinv)."""
    return 1 - 1 / np.diag(np.linalg.pinv(r))


def _row_means(x: np.ndarray) -> np.ndarray:
    """Mean of each row's observed values; NaN for a row with none (no empty-slice warning)."""
    count = (~np.isnan(x)).sum(axis=1)
    sums = np.nansum(x, axis=1)
    return np.divide(sums, count, out=np.full(len(x), np.nan), where=count > 0)
