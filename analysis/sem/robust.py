r"""Robust ML estimators over the engine: MLR (complete data and FIML) and MLM (complete data), any
number of groups.

Both keep the ML estimates (:class:`~analysis.sem.estimate.MLEstimator`) and replace the
standard errors and the test statistic with ones valid under non-normality.

Notation, per group :math:`g` with :math:`n_g` cases (:math:`f_g = n_g/N`): the sample moments
:math:`s_g = (\bar y_g, \operatorname{vech} S_g)` (means only with a mean structure; the moments
of fixed.x covariates left out, as lavaan zeroes them), the model's Jacobian
:math:`\Delta_g = \partial\sigma_g(x)/\partial x^\top` (:meth:`~analysis.sem.model.Model.derivatives`),
the saturated model's normal-theory information per case at moments :math:`(\mu, \Sigma)`,

.. math:: V(\mu,\Sigma) = \Sigma^{-1} \oplus \tfrac12 D^\top(\Sigma^{-1}\otimes\Sigma^{-1})D,

its case-wise scores

.. math::

   u_i = \big(\Sigma^{-1}d_i,\ \tfrac12 D^\top\operatorname{vec}(\Sigma^{-1}(d_id_i^\top-\Sigma)\Sigma^{-1})\big),

:math:`d_i = y_i - \mu`, their cross-product :math:`B(\mu,\Sigma) = \frac1{n_g}\sum_i u_iu_i^\top`, and
the asymptotic covariance of the sample moments (lavaan's ``NACOV``, denominator :math:`n_g`)
:math:`\Gamma_g = \frac1{n_g}\sum_i (z_i-\bar z)(z_i-\bar z)^\top`,
:math:`z_i = (y_i, \operatorname{vech}((y_i-\bar y)(y_i-\bar y)^\top))` (with fixed.x covariates,
:math:`z_i` of :math:`y_i` less that of its least-squares prediction from them, as lavaan's
``lav_samplestats_Gamma``). :math:`J` is the model's
information per case, :math:`E^{-1} = K(K^\top JK)^{-1}K^\top` its inverse augmented by the
equality (and active inequality) constraints (:func:`analysis.sem.inference.covariance`).

**MLR** (lavaan ``estimator = "MLR"``: ``se = "robust.huber.white"``, ``test = "yuan.bentler.mplus"``,
``information = "observed"``, ``observed.information = "hessian"``, ``h1.information =
"structured"``; lavaan 0.6-14's defaults for complete data). :math:`J` is the observed
information (the Hessian of the log-likelihood, :meth:`~analysis.sem.estimate.MLEstimator.observed_information`),
:math:`B_{0g} = \Delta_g^\top B(\hat\mu_g,\hat\Sigma_g)\Delta_g` (scores at the implied moments) and

.. math:: \widehat{\operatorname{Var}}(\hat x) = \tfrac1N E^{-1}\Big(\sum_g f_g B_{0g}\Big)E^{-1}.

The Yuan-Bentler scaling factor (Mplus' variant; Yuan & Bentler, 2000; Asparouhov & Muthén, 2005):

.. math:: \hat c = \frac1{df}\sum_g\Big[\operatorname{tr}\big(V(\bar y_g,S_g)^{-1}B(\bar y_g,S_g)\big)
   - f_g\operatorname{tr}(B_{0g}E^{-1})\Big],

the first trace of the saturated model at the sample moments (``h1.information = "unstructured"``);
lavaan's ``scaling.factor.h1`` and ``scaling.factor.h0`` are the two sums divided by the number of
sample moments and of free parameters.

**MLM** (lavaan ``estimator = "MLM"``: ``se = "robust.sem"``, ``test = "satorra.bentler"``,
``information = "expected"``). :math:`J` is the expected information,
:math:`V_g = V(\hat\mu_g,\hat\Sigma_g)` and

.. math::

   \widehat{\operatorname{Var}}(\hat x)
      = \tfrac1N E^{-1}\Big(\sum_g f_g \Delta_g^\top V_g\Gamma_gV_g\Delta_g\Big)E^{-1},

   \hat c = \frac1{df}\sum_g\Big[\operatorname{tr}(V_g\Gamma_g)
      - f_g\operatorname{tr}(E^{-1}\Delta_g^\top V_g\Gamma_gV_g\Delta_g)\Big]

(Satorra & Bentler, 1994: :math:`\operatorname{tr}(U\Gamma)/df`).

With complete data (lavaan's ``missing = "listwise"``) the cases are those of
:func:`~analysis.sem.model.sample_statistics`, taken again per group by :func:`group_data`. With
incomplete data (``missing = "fiml"``, lavaan's ``"ml"``) MLR is :func:`_fiml_mlr` on the
:class:`~analysis.sem.fiml.FIMLEstimator` (casewise FIML scores, the saturated model's observed
information at the EM moments, the FIML-corrected robust indices); MLM needs complete data, as
lavaan's (an InputError).
lavaan reports 0 as the robust SE of a parameter held at an active inequality bound (its
sandwich is a quadratic form); gapscale reports NaN, as for ML (no SE at a bound).

**Clustered respondents** (lavaan ``sem(..., cluster = "org", estimator = "MLR")`` for a
single-level model; complete data): in every :math:`B` above (the meat :math:`B_{0g}`, the
saturated model's and the baseline's) the case-wise scores are first summed within each cluster
of the group, :math:`\tilde u_c = \sum_{i\in c}u_i`, and scaled by :math:`\sqrt{C_g/(C_g-1)}`
(:math:`C_g` clusters), as lavaan's ``lav_mvnorm_information_firstorder(cluster.idx = )``:
:math:`B = \frac{C_g}{C_g-1}\frac1{n_g}\sum_c\tilde u_c\tilde u_c^\top`
(:func:`cluster_sums`; Muthén & Satorra, 1995). lavaan fits such a model with a mean structure.

For both the scaled statistic is :math:`T/\hat c` on :math:`df`, and the baseline (independence)
model gets its own factor :math:`\hat c_0` the same way (its free parameters are the variances and,
with a mean structure, the means of the non-exogenous variables; its information is
block-diagonal). The scaled and robust CFI, TLI, RNI and RMSEA with its interval are
:func:`analysis.sem.fit.fit_measures` of these statistics (:func:`fit_measures` here).

**Scaled difference test** (:func:`scaled_difference`; Satorra & Bentler, 2001): for nested models
with statistics :math:`T_0` (restricted, :math:`r_0` df, factor :math:`c_0`) and :math:`T_1`,

.. math:: \bar c_d = \frac{r_0c_0 - r_1c_1}{r_0 - r_1},\qquad
   T_d = \frac{T_0 - T_1}{\bar c_d}\sim\chi^2_{r_0-r_1},

with :math:`c_1 = 1` when :math:`r_1 = 0`, lavaan's ``lavTestLRT(m0, m1, method = "satorra.bentler.2001")``
(its default for both scaled tests).

References
----------
Satorra, A., & Bentler, P. M. (1994). Corrections to test statistics and standard errors in
    covariance structure analysis. In A. von Eye & C. C. Clogg (Eds.), *Latent variables
    analysis* (pp. 399-419). Sage.
Satorra, A., & Bentler, P. M. (2001). A scaled difference chi-square test statistic for moment
    structure analysis. *Psychometrika, 66*(4), 507-514.
Yuan, K.-H., & Bentler, P. M. (2000). Three likelihood-based methods for mean and covariance
    structure analysis with nonnormal missing data. *Sociological Methodology, 30*, 165-200.
Asparouhov, T., & Muthén, B. (2005). Multivariate statistical modeling with survey data.
    Proceedings of the FCSM Research Conference.
Muthén, B. O., & Satorra, A. (1995). Complex sample data in structural equation modeling.
    *Sociological Methodology, 25*, 267-316.
Savalei, V. (2014). Understanding robust corrections in structural equation modeling.
    *Structural Equation Modeling, 21*(1), 149-160.

In R: ``cfa(model, data, estimator = "MLR")`` / ``"MLM"``; ``parameterEstimates(fit)``;
``lavInspect(fit, "test")``; ``fitMeasures(fit)``; ``lavTestLRT(metric, configural, method =
"satorra.bentler.2001")``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.sem import fit as fitm
from analysis.sem.estimate import baseline, chisq_pvalue
from analysis.sem.fiml import FIMLEstimator
from analysis.sem.inference import covariance
from analysis.sem.model import Block, Model, SampleStats

__all__ = ["ROBUST_ESTIMATORS", "RobustResult", "cluster_sums", "fit_measures", "group_data", "robust_inference",
           "scaled_difference"]

#: estimator -> (its default information, the scaled test as lavaan names it)
ROBUST_ESTIMATORS = {"MLR": ("observed", "yuan.bentler.mplus"), "MLM": ("expected", "satorra.bentler")}


@dataclass(frozen=True)
class RobustResult:
    """The robust part of an MLR or MLM fit.

    Attributes
    ----------
    estimator : {"MLR", "MLM"}
    information : {"observed", "expected"}
        The information in the sandwich's bread (and :math:`E^{-1}` of the scaling factor).
    vcov : ndarray
        The robust covariance matrix of the free parameters (q x q).
    scaled, baseline_scaled : analysis.sem.fit.ScaledTest
        The scaled test of the model and of the baseline model (``stat / scaling_factor``);
        scaling factor NaN when df = 0 (lavaan's NA).
    """

    estimator: str
    information: str
    vcov: np.ndarray
    scaled: fitm.ScaledTest
    baseline_scaled: fitm.ScaledTest
    fiml_corrected: fitm.RobustStatistics | None = None  # MLR with FIML: the robust indices' statistics


# --------------------------------------------------------------------------- data and moments


def group_data(model: Model, stats: list[SampleStats], data: pd.DataFrame, group: str | None,
               group_labels: list[str]) -> list[np.ndarray]:
    """The complete cases of each group (``n_g x p_g``, columns in ``block.ov`` order), the rows
    :func:`~analysis.sem.model.sample_statistics` used (lavaan's ``missing = "listwise"``)."""
    return [arr for arr, _ in _group_rows(model, stats, data, group, group_labels)]


def _group_rows(model: Model, stats: list[SampleStats], data: pd.DataFrame, group: str | None,
                group_labels: list[str]) -> list[tuple[np.ndarray, pd.Index]]:
    """:func:`group_data` with each group's row labels of ``data``."""
    ovs = list(dict.fromkeys(v for blk in model.blocks for v in blk.ov))
    x = data[ovs].apply(pd.to_numeric, errors="coerce")
    keep = x.notna().all(axis=1)
    if group is not None:
        keep &= data[group].notna()
    x = x[keep]
    out = []
    for blk, st, lab in zip(model.blocks, stats, group_labels):
        part = x if group is None else x[(data.loc[keep, group].astype(str) == lab).to_numpy()]
        arr = part[list(blk.ov)].to_numpy(dtype=float)
        if len(arr) != st.n or not np.allclose(arr.mean(axis=0), st.mean, rtol=0, atol=1e-10 * (1 + np.abs(st.mean))):
            raise RuntimeError(f"robust: the cases of group {lab!r} are not those of its sample statistics")
        out.append((arr, part.index))
    return out


def cluster_sums(scores: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    r"""Case-wise scores summed within clusters, times :math:`\sqrt{C/(C-1)}` (:math:`C` clusters).

    ``scores`` n x k, ``clusters`` n labels; returns C x k, clusters in order of first
    appearance, so that ``out.T @ out`` is :math:`rac{C}{C-1}\sum_c	ilde u_c	ilde u_c^	op`.
    In R: ``sqrt(C / (C - 1)) * rowsum(scores, cluster, reorder = FALSE)`` (lavaan's
    ``lav_mvnorm_information_firstorder``).
    """
    codes, uniques = pd.factorize(np.asarray(clusters, dtype=object))
    c = len(uniques)
    out = np.zeros((c, scores.shape[1]))
    np.add.at(out, codes, scores)
    return out * np.sqrt(c / (c - 1)) if c > 1 else out * np.nan


@dataclass(frozen=True)
class _Coords:
    """The sample moments of a group in use: mean positions ``mi`` and the lower-triangle
    pairs ``(ri, ci)`` (``ri >= ci``), fixed.x moments left out."""

    mi: np.ndarray
    ri: np.ndarray
    ci: np.ndarray

    @property
    def k(self) -> int:
        return len(self.mi) + len(self.ri)


def _coords(blk: Block, meanstructure: bool) -> _Coords:
    p = blk.p
    is_x = np.array([v in set(blk.ov_x) for v in blk.ov], dtype=bool)
    ri, ci = np.tril_indices(p)
    keep = ~(is_x[ri] & is_x[ci])
    mi = np.flatnonzero(~is_x) if meanstructure else np.zeros(0, dtype=int)
    return _Coords(mi=mi, ri=ri[keep], ci=ci[keep])


def _h1_information(sigma: np.ndarray, c: _Coords) -> np.ndarray:
    """:math:`V(\\mu, \\Sigma)`, the saturated model's expected information per case in the
    coordinates ``c``: :math:`\\Sigma^{-1}` for the means and
    :math:`c_ac_b(S_{ik}S_{jl} + S_{il}S_{jk})` for vech elements :math:`a = (i,j)`, :math:`b = (k,l)`
    (:math:`S = \\Sigma^{-1}`, :math:`c = 1/2` on the diagonal, 1 off it)."""
    s = np.linalg.inv(sigma)
    i, j = c.ri, c.ci
    w = np.where(i == j, 0.5, 1.0)
    cov = (s[np.ix_(i, i)] * s[np.ix_(j, j)] + s[np.ix_(i, j)] * s[np.ix_(j, i)]) * np.outer(w, w)
    km = len(c.mi)
    out = np.zeros((c.k, c.k))
    out[:km, :km] = s[np.ix_(c.mi, c.mi)]
    out[km:, km:] = cov
    return out


def _h1_scores(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, c: _Coords) -> np.ndarray:
    """Case-wise scores of the saturated model at :math:`(\\mu, \\Sigma)` (n x k)."""
    s = np.linalg.inv(sigma)
    m = (y - mu) @ s
    w = np.where(c.ri == c.ci, 0.5, 1.0)
    cov = (m[:, c.ri] * m[:, c.ci] - s[c.ri, c.ci]) * w
    return np.concatenate([m[:, c.mi], cov], axis=1)


def _moment_rows(y: np.ndarray, c: _Coords) -> np.ndarray:
    d = y - y.mean(axis=0)
    return np.concatenate([y[:, c.mi], d[:, c.ri] * d[:, c.ci]], axis=1)


def _gamma(y: np.ndarray, c: _Coords, x_idx: np.ndarray) -> np.ndarray:
    """lavaan's NACOV of the sample moments (denominator n, ADF; ``lav_samplestats_Gamma``).

    With fixed.x covariates (columns ``x_idx``) the moments are those of :math:`y` less those of
    its least-squares prediction :math:`\\hat y` from the covariates (with an intercept;
    :math:`\\hat y = y` in the covariates' own columns), so the covariates' sampling variability
    does not enter."""
    z = _moment_rows(y, c)
    if len(x_idx):
        design = np.column_stack([np.ones(len(y)), y[:, x_idx]])
        y_idx = np.setdiff1d(np.arange(y.shape[1]), x_idx)
        yhat = y.copy()
        yhat[:, y_idx] = design @ np.linalg.lstsq(design, y[:, y_idx], rcond=None)[0]
        z = z - _moment_rows(yhat, c)
    z = z - z.mean(axis=0)
    return z.T @ z / len(y)


def _delta(model: Model, x: np.ndarray, coords: list[_Coords]) -> list[np.ndarray]:
    """Per group the Jacobian of the moments in use in the free parameters (k_g x q)."""
    out = []
    for (index, ds, dm), c in zip(model.derivatives(x), coords):
        rows = np.concatenate([dm[:, c.mi], ds[:, c.ri, c.ci]], axis=1).T  # k x r
        d = np.zeros((c.k, model.nfree))
        np.add.at(d.T, index, rows.T)
        out.append(d)
    return out


def _baseline_moments(blk: Block, st: SampleStats) -> np.ndarray:
    """The baseline model's implied covariance: :math:`\\operatorname{diag}(S_{yy})\\oplus S_{xx}`."""
    is_x = np.array([v in set(blk.ov_x) for v in blk.ov], dtype=bool)
    sigma = np.diag(np.diag(st.cov))
    sigma[np.ix_(is_x, is_x)] = st.cov[np.ix_(is_x, is_x)]
    return sigma


# --------------------------------------------------------------------------- the estimators


def robust_inference(estimator: str, est, x: np.ndarray, con_jac: np.ndarray, data: pd.DataFrame,
                     group: str | None, group_labels: list[str], df: int, chisq: float,
                     information: str | None = None, components: list[np.ndarray] | None = None,
                     cluster: str | None = None) -> RobustResult:
    """Robust standard errors and the scaled tests of an ML solution (see the module docstring).

    Parameters
    ----------
    estimator : {"MLR", "MLM"}
    est : analysis.sem.estimate.MLEstimator or analysis.sem.fiml.FIMLEstimator
        The ML strategy the model was fitted with (its model, sample statistics, information);
        a FIML one (MLR only) gives :func:`_fiml_mlr`'s result.
    x, con_jac : ndarray
        The estimates and the Jacobian of the equality and active inequality constraints
        (:class:`~analysis.sem.estimate.Optimum`).
    data, group, group_labels
        The data the model was fitted to (complete cases are taken again per group).
    df, chisq : int, float
        The model's degrees of freedom and ML statistic.
    information : {"observed", "expected"}, optional
        Default: lavaan's for the estimator (MLR observed, MLM expected).
    components : list of ndarray, optional
        Blocks of parameters with zero cross-information (FIML: inverted block by block).
    cluster : str, optional
        A column of ``data`` naming each case's cluster: cluster-robust SEs and scaled tests
        (MLR with complete data; see the module docstring).

    Raises
    ------
    InputError
        An unknown estimator or information; MLM (or expected information) with FIML; a cluster
        with MLM, with FIML, absent from the data or missing for a case; fewer than 2 clusters.
    """
    if estimator not in ROBUST_ESTIMATORS:
        raise InputError(f"robust estimator must be one of {', '.join(ROBUST_ESTIMATORS)}, got {estimator!r}")
    information = information or ROBUST_ESTIMATORS[estimator][0]
    if information not in ("observed", "expected"):
        raise InputError(f"information must be 'expected' or 'observed', got {information!r}")
    if cluster is not None and (estimator != "MLR" or isinstance(est, FIMLEstimator)):
        raise InputError(f"cluster {cluster!r}: cluster-robust standard errors are available for estimator MLR with "
                         "complete data (missing = 'listwise'); got "
                         f"{estimator}{' with FIML' if isinstance(est, FIMLEstimator) else ''}")
    if isinstance(est, FIMLEstimator):
        if estimator != "MLR":
            raise InputError(f"estimator {estimator}: with missing data only MLR is robust (lavaan: {estimator} "
                             "needs complete data; use missing = 'listwise' or estimator MLR)")
        if information != "observed":
            raise InputError(f"information: MLR with FIML uses the observed information (lavaan's), got {information!r}")
        return _fiml_mlr(est, x, con_jac, df, chisq, components)
    model, stats = est.model, est.stats
    n_total = est.ntotal
    frac = np.array([st.n / n_total for st in stats])
    rows = _group_rows(model, stats, data, group, group_labels)
    ys = [arr for arr, _ in rows]
    clusters = _clusters(data, cluster, [index for _, index in rows], group_labels) if cluster is not None \
        else [None] * len(ys)

    def summed(u, cl):
        return u if cl is None else cluster_sums(u, cl)
    coords = [_coords(blk, model.meanstructure) for blk in model.blocks]
    deltas = _delta(model, x, coords)
    implied = est.moments(x)
    info = est.observed_information(x) if information == "observed" else est.information(x)
    e_inv = covariance(info / n_total, con_jac)
    base_chisq, base_df = baseline(model, stats)

    if estimator == "MLR":
        meat = np.zeros_like(e_inv)
        h1 = h0 = 0.0
        h1_base = h0_base = 0.0
        ndat = 0
        for f, y, st, blk, c, dlt, (sigma, mu), cl in zip(frac, ys, stats, model.blocks, coords, deltas, implied,
                                                          clusters):
            u = summed(_h1_scores(y, mu, sigma, c) @ dlt, cl)
            b0 = u.T @ u / st.n
            meat += f * b0
            h0 += f * np.sum(b0 * e_inv)
            us = summed(_h1_scores(y, st.mean, st.cov, c), cl)
            h1 += np.trace(np.linalg.solve(_h1_information(st.cov, c), us.T @ us / st.n))
            ndat += c.k
            # the baseline: its parameters are coordinates of the saturated model
            sb = _baseline_moments(blk, st)
            sel = _baseline_coords(c, blk)
            ub = summed(_h1_scores(y, st.mean, sb, c)[:, sel], cl)
            vb = _h1_information(sb, c)[np.ix_(sel, sel)]
            h0_base += np.trace(np.linalg.solve(vb, ub.T @ ub / st.n))
        h1_base = h1
        vcov = e_inv @ meat @ e_inv / n_total
        trace = h1 - h0
        trace_base = h1_base - h0_base
        extra = dict(scaling_factor_h1=h1 / ndat, scaling_factor_h0=h0 / model.nfree_input)
    else:
        meat = np.zeros_like(e_inv)
        trace = trace_base = 0.0
        for f, y, st, blk, c, dlt, (sigma, mu) in zip(frac, ys, stats, model.blocks, coords, deltas, implied):
            gam = _gamma(y, c, np.flatnonzero([v in set(blk.ov_x) for v in blk.ov]))
            v = _h1_information(sigma, c)
            vd = v @ dlt
            meat += f * vd.T @ gam @ vd
            trace += np.sum(v * gam)
            sb = _baseline_moments(blk, st)
            sel = _baseline_coords(c, blk)
            vb = _h1_information(sb, c)
            vbd = vb[:, sel]
            trace_base += np.sum(vb * gam) - np.trace(np.linalg.solve(vbd[sel], vbd.T @ gam @ vbd))
        vcov = e_inv @ meat @ e_inv / n_total
        trace -= np.sum(e_inv * meat)
        extra = {}
    method = ROBUST_ESTIMATORS[estimator][1]
    c_model = trace / df if df > 0 else float("nan")
    c_base = trace_base / base_df if base_df > 0 else float("nan")
    c_model, c_base = (float("nan") if c < 0 else c for c in (c_model, c_base))  # lavaan: a negative factor is NA
    scaled = fitm.ScaledTest(chisq=chisq / c_model, scaling_factor=float(c_model), method=method,
                             trace_ugamma=float(trace) if df > 0 else None, **extra)
    baseline_scaled = fitm.ScaledTest(chisq=base_chisq / c_base, scaling_factor=float(c_base), method=method,
                                      trace_ugamma=float(trace_base) if base_df > 0 else None)
    return RobustResult(estimator=estimator, information=information, vcov=0.5 * (vcov + vcov.T), scaled=scaled,
                        baseline_scaled=baseline_scaled)


def _fiml_mlr(est: FIMLEstimator, x: np.ndarray, con_jac: np.ndarray, df: int, chisq: float,
              components: list[np.ndarray] | None = None) -> RobustResult:
    r"""MLR with FIML over any number of groups, as lavaan 0.6-14's ``estimator = "MLR",
    missing = "ml"`` (``se = "robust.huber.white"``, ``test = "yuan.bentler.mplus"``,
    ``information = "observed"``, ``observed.information = "hessian"``).

    *Robust SEs*: :math:`A_0^{-1}B_0A_0^{-1}` with :math:`A_0` the observed information (the
    analytic Hessian of :math:`-\log L`, :meth:`~analysis.sem.fiml.FIMLEstimator.observed_information`;
    its inverse augmented by the constraints, :func:`analysis.sem.inference.covariance`) and
    :math:`B_0 = \sum_i s_is_i^\top` of the casewise FIML scores at the estimates
    (:meth:`~analysis.sem.fiml.FIMLEstimator.casewise_scores`, all groups).

    *Scaled test*: :math:`\hat c = [\sum_g\operatorname{tr}(A_{1,g}^{-1}B_{1,g})
    - \operatorname{tr}(A_0^{-1}B_0)]/df` with the saturated model's observed information and
    casewise-score cross-product at the EM moments
    (:meth:`~analysis.sem.fiml.FIMLEstimator.yuan_bentler_traces`); the baseline's
    :math:`\hat c_0` the same with its own trace. ``scaling_factor_h1`` and ``scaling_factor_h0``
    are the two traces over the number of saturated-model parameters and of free parameters.

    *Robust CFI/TLI/RNI/RMSEA*: the FIML-corrected statistic, version "V3"
    (:meth:`~analysis.sem.fiml.FIMLEstimator.robust_statistics`).

    df = 0: no scaling factor (NaN, lavaan's NA), the scaled statistic 0 as lavaan's.
    """
    a_inv = covariance(est.observed_information(x), con_jac, components)
    b0 = sum(s.T @ s for s in est.casewise_scores(x))
    vcov = a_inv @ b0 @ a_inv
    trace_h0 = float(np.sum(b0 * a_inv))
    trace_h1, trace_base, n_h1 = est.yuan_bentler_traces()
    base_chisq, base_df = est.baseline()
    method = ROBUST_ESTIMATORS["MLR"][1]
    c_model = (trace_h1 - trace_h0) / df if df > 0 else float("nan")
    c_base = (trace_h1 - trace_base) / base_df if base_df > 0 else float("nan")
    c_model, c_base = (float("nan") if c < 0 else c for c in (c_model, c_base))  # lavaan: a negative factor is NA
    scaled = fitm.ScaledTest(chisq=chisq / c_model if df > 0 else 0.0, scaling_factor=float(c_model), method=method,
                             trace_ugamma=float(trace_h1 - trace_h0) if df > 0 else None,
                             scaling_factor_h1=trace_h1 / n_h1, scaling_factor_h0=trace_h0 / est.model.nfree_input)
    baseline_scaled = fitm.ScaledTest(chisq=base_chisq / c_base, scaling_factor=float(c_base), method=method,
                                      trace_ugamma=float(trace_h1 - trace_base) if base_df > 0 else None)
    corrected = est.robust_statistics(x, df, base_df, con_jac, version="V3")
    return RobustResult(estimator="MLR", information="observed", vcov=0.5 * (vcov + vcov.T), scaled=scaled,
                        baseline_scaled=baseline_scaled, fiml_corrected=corrected)


def _clusters(data: pd.DataFrame, cluster: str, indexes: list, group_labels: list[str]) -> list[np.ndarray]:
    """Each group's cluster labels of its cases (``indexes``: their row labels in ``data``)."""
    if cluster not in data.columns:
        raise InputError(f"data: cluster column {cluster!r} not found")
    out = []
    for index, lab in zip(indexes, group_labels):
        cl = data.loc[index, cluster]
        where = f" in group {lab!r}" if lab else ""
        if cl.isna().any():
            raise InputError(f"data: cluster column {cluster!r} is missing in {int(cl.isna().sum())} case(s){where} "
                             "the model uses; give every case its cluster (or leave it out)")
        if cl.nunique() < 2:
            raise InputError(f"data: cluster column {cluster!r} has {cl.nunique()} cluster(s){where}; cluster-robust "
                             "standard errors need at least 2 (and are reliable with many more)")
        out.append(cl.to_numpy(dtype=object))
    return out


def _baseline_coords(c: _Coords, blk: Block) -> np.ndarray:
    """Positions (within ``c``) of the baseline model's free parameters: the means and the
    variances of the non-exogenous variables."""
    is_x = np.array([v in set(blk.ov_x) for v in blk.ov], dtype=bool)
    var = np.flatnonzero((c.ri == c.ci) & ~is_x[c.ri])
    return np.concatenate([np.arange(len(c.mi)), len(c.mi) + var])


# --------------------------------------------------------------------------- fit measures and tests


def fit_measures(result) -> dict:
    """lavaan's ``fitMeasures`` of an :class:`~analysis.sem.engine.EngineFit` from
    :func:`analysis.sem.fit.fit_measures`: with MLR or MLM the scaled and robust CFI, TLI, RNI,
    RMSEA (and interval, p-values) from the scaled tests of :attr:`EngineFit.robust`.

    Only the measures of the test statistics and the log-likelihood: the residual-based ones
    (SRMR, RMR, CRMR) and GFI/AGFI need the implied moments passed to
    :func:`analysis.sem.fit.residual_measures` and :func:`analysis.sem.fit.ml_gfi`, which this
    function does not do.

    In R: ``fitMeasures(fit)``.
    """
    f = result.fit
    rob = getattr(result, "robust", None)
    return fitm.fit_measures(npar=f["npar"], ntotal=f["ntotal"], chisq=f["chisq"], df=f["df"],
                             baseline_chisq=f["baseline_chisq"], baseline_df=f["baseline_df"],
                             n_groups=f["ngroups"], estimator=rob.estimator if rob is not None else "ML",
                             fmin=f["fmin"], scaled=rob.scaled if rob is not None else None,
                             baseline_scaled=rob.baseline_scaled if rob is not None else None,
                             logl=f["logl"], unrestricted_logl=f["unrestricted_logl"])


def _statistics(fitted) -> tuple[float, float, float]:
    f = getattr(fitted, "fit", fitted)
    try:
        return float(f["chisq"]), float(f["df"]), float(f["chisq_scaling_factor"])
    except KeyError as err:
        raise InputError(f"scaled difference test: the fit has no {err.args[0]!r} (fit with estimator MLR or MLM)") \
            from None


def scaled_difference(restricted, general) -> dict:
    """The Satorra-Bentler (2001) scaled chi-square difference test of nested models.

    Parameters
    ----------
    restricted, general
        The more constrained model and the model it is nested in: an
        :class:`~analysis.sem.engine.EngineFit` fitted with MLR or MLM, or a dict with ``chisq``,
        ``df`` and ``chisq_scaling_factor`` (the unscaled statistic, its df and its scaling factor).

    Returns
    -------
    dict
        ``chisq_diff`` (:math:`T_d`), ``df_diff``, ``pvalue``, ``scaling_factor`` (:math:`\\bar c_d`);
        ``scaling_factor`` NaN and ``chisq_diff`` the plain difference when the df are equal, as
        lavaan; NaN statistic when :math:`\\bar c_d < 0` (lavaan warns "scaling factor is negative").

    Raises
    ------
    InputError
        A fit without a scaling factor, or a "restricted" model with fewer df than the general one.

    In R: ``lavTestLRT(restricted, general, method = "satorra.bentler.2001")``.
    """
    t0, r0, c0 = _statistics(restricted)
    t1, r1, c1 = _statistics(general)
    if r1 == 0:
        c1 = 1.0
    m = r0 - r1
    if m < 0:
        raise InputError(f"scaled difference test: the restricted model has fewer degrees of freedom ({r0:g}) than "
                         f"the general one ({r1:g}); pass the more constrained model first")
    if m == 0:
        return {"chisq_diff": t0 - t1, "df_diff": 0, "pvalue": float("nan"), "scaling_factor": float("nan")}
    cd = (r0 * c0 - r1 * c1) / m
    if not cd > 0:
        cd = float("nan")
    td = (t0 - t1) / cd
    return {"chisq_diff": float(td), "df_diff": int(m), "pvalue": chisq_pvalue(td, int(m)),
            "scaling_factor": float(cd)}
