r"""Ordinal items by least squares on thresholds and polychoric correlations: WLSMV and ULSMV.

Every ordered item :math:`y_j` is a coarsened latent response :math:`y^*_j`, cut at thresholds
:math:`\tau_{j1} < \dots < \tau_{j,K_j-1}`; the model of :mod:`analysis.sem.model` describes the
:math:`y^*` (Muthen, 1984). Per group :math:`g` the sample statistics
:math:`s_g = (\hat\tau_g, \hat\rho_g)` (thresholds item by item, then the polychoric correlations
of the pairs :math:`i > j`, column by column of the lower triangle: lavaan's ``wls.obs``) and the
asymptotic covariance matrix :math:`\Gamma_g` of :math:`\sqrt{n_g}s_g` (lavaan's ``NACOV``) come
from :func:`analysis.sem.ordinal.ordinal_statistics`, one call per group, as lavaan's ``muthen1984()``.

**Model side** (lavaan's delta parameterization, its default for ordered items): with the
scale factors :math:`\delta_j` (``~*~`` rows; fixed at 1 unless freed across groups), the
residual variances :math:`\theta_{jj} = 1/\delta_j^2 - [\Lambda A\Psi A^\top\Lambda^\top]_{jj}`
(:class:`~analysis.sem.model.Model` fills them), :math:`\Sigma` and :math:`\mu = \nu + \Lambda A\alpha`
the model's implied moments,

.. math::

    \sigma_g(x) = \big( (\tau_{jk} - \mu_j)\,\delta_j,\ \ \delta_i\delta_j\Sigma_{ij}\ (i > j) \big),

so :math:`\operatorname{diag}\Sigma^* = 1` and the implied thresholds are on the :math:`y^*` scale
(lavaan's ``computeTH`` and ``computeSigmaHat`` with ``delta = TRUE``). The derivatives
:math:`\Delta_g = \partial\sigma_g/\partial x^\top` follow from
:meth:`~analysis.sem.model.Model.derivatives` (:math:`\partial\Sigma, \partial\mu`) by the chain
rule, plus :math:`\partial/\partial\tau_{jk} = \delta_j` and
:math:`\partial/\partial\delta_j` of the two parts.

**Estimation.** The discrepancy of DWLS (WLSMV: :math:`W_g = \operatorname{diag}(\Gamma_g)^{-1}`,
lavaan's ``WLS.VD``) or ULS (ULSMV: :math:`W_g = I`), as lavaan's ``lav_model_objective``:

.. math::

    F_{\mathrm{lavaan}} = \sum_g \frac{n_g}{N}\,\frac12\,\frac{n_g-1}{n_g}
        (s_g - \sigma_g)^\top W_g (s_g - \sigma_g),\qquad T = 2N F_{\mathrm{lavaan}}
        = \sum_g (n_g - 1)(s_g-\sigma_g)^\top W_g(s_g-\sigma_g),

minimised by :func:`~analysis.sem.estimate.optimise` (Gauss-Newton is its Fisher scoring here:
the "information" is :math:`\sum_g (n_g-1)\Delta_g^\top W_g\Delta_g`), with the same equality and
inequality constraints as every estimator.

**Robust standard errors** (``se = "robust.sem"``): with :math:`f_g = n_g/N`,
:math:`E = \sum_g f_g\Delta_g^\top W_g\Delta_g` (inverted on the constraint surface as
:func:`~analysis.sem.inference.covariance`) and
:math:`B = \sum_g f_g\Delta_g^\top W_g\Gamma_g W_g\Delta_g`,
:math:`\widehat{\operatorname{Var}}(\hat x) = E^{-1}BE^{-1}/(N - G)` (lavaan's
``lav_model_nvcov_robust_sem`` with its :math:`N - G` for estimators other than ML). ``:=``
parameters and the standardised solutions by the delta method
(:func:`~analysis.sem.inference.parameter_estimates`).

**Mean-and-variance adjusted test** (``test = "scaled.shifted"``; Asparouhov & Muthen, 2010): with
:math:`V = \oplus_g f_gW_g`, :math:`\Gamma = \oplus_g\Gamma_g/f_g`, :math:`\Delta` the stacked
:math:`\Delta_g` and :math:`U = V - V\Delta E^{-1}\Delta^\top V`,
:math:`a = \sqrt{df/\operatorname{tr}[(U\Gamma)^2]}`, :math:`b = df - a\operatorname{tr}(U\Gamma)`,
``chisq.scaled`` :math:`= aT + b` on :math:`df` degrees of freedom, ``chisq.scaling.factor``
:math:`= 1/a`, shift :math:`b` (lavaan's ``lav_test_satorra_bentler``). :math:`df` = the
thresholds and correlations of every group less the free parameters (less the rank of the
equality constraints). The traces are computed through the casewise influence functions
:math:`\Xi_g` (:math:`\Gamma_g = n_g\Xi_g^\top\Xi_g`), in the cheaper of the cases x cases and
statistics x statistics forms.

**Baseline**: thresholds free, correlations zero, so :math:`T_0 = \sum_g (n_g-1)\sum w\hat\rho^2`
on as many df as correlations; its :math:`U` keeps the correlation block of :math:`V`, so
:math:`\operatorname{tr}(U\Gamma) = \sum_g\operatorname{tr}(W_{\rho g}\Gamma_{\rho g})` and likewise
the square. Every fit index is :func:`analysis.sem.fit.fit_measures` with lavaan's :math:`N - G`;
SRMR (categorical: the correlation residuals), WRMR and GFI from :mod:`analysis.sem.fit`.
ULSMV's unscaled statistic has no reference distribution (lavaan: p-value NA). Nested
models (an invariance ladder) are compared by :func:`scaled_difference`.

The "robust" CFI/TLI/RMSEA of lavaan 0.6-13+ for categorical data (Savalei, 2021) come from the
ML discrepancy of the polychoric matrices (lavaan's ``catML``; :func:`_catml_robust`; NaN with
continuous variables, as lavaan 0.6-14's NA).

**Continuous indicators with ordered items** (lavaan's ``ordered = c(some items)``; listwise):
the statistics of a continuous variable j are :math:`-\bar y_j` (in the thresholds' place), its
variance, and its covariances (polyserial or Pearson correlations times the standard deviations;
:func:`analysis.sem.ordinal.ordinal_statistics`); the model's are :math:`-\mu_j`,
:math:`\Sigma_{jj}` and :math:`\delta_i\Sigma_{ij}` (:math:`\delta = 1` for a continuous
variable: no ``~*~`` row; its intercept and residual variance are free parameters). SRMR counts
the thresholds proper, not the means (lavaan). Not built yet: observed covariates
(lavaan's ``conditional.x``), and the theta parameterization; each is
refused with a message, or NaN as said. Incomplete data: listwise (lavaan's default) or
``missing = "pairwise"`` (:mod:`analysis.sem.ordinal`).

In R: ``lavaan::sem(model, data, ordered = TRUE, estimator = "WLSMV")`` (or ``"ULSMV"``, and
``group = ...``, ``group.equal = c("thresholds", "loadings")``); ``fitMeasures(fit)``,
``parameterEstimates(fit, standardized = TRUE)``, ``lavInspect(fit, "test")``.

References
----------
Muthen, B. (1984). A general structural equation model with dichotomous, ordered categorical,
    and continuous latent variable indicators. *Psychometrika, 49*(1), 115-132.
Muthen, B., du Toit, S. H. C., & Spisic, D. (1997). Robust inference using weighted least
    squares and quadratic estimating equations in latent variable modeling with categorical and
    continuous outcomes. Unpublished manuscript.
Asparouhov, T., & Muthen, B. (2010). Simple second order chi-square correction. Mplus
    technical appendix.
Satorra, A. (2000). Scaled and adjusted restricted tests in multi-sample analysis of moment
    structures. In R. D. H. Heijmans et al. (Eds.), *Innovations in multivariate statistical
    analysis* (pp. 233-247). Kluwer.
Savalei, V. (2021). Improving fit indices in structural equation modeling with categorical
    data. *Multivariate Behavioral Research, 56*(3), 390-407.
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. *Journal of
    Statistical Software, 48*(2), 1-36.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.sem import fit as fitm
from analysis.sem.constraints import build_constraints, jacobian
from analysis.sem.engine import EngineFit
from analysis.sem.estimate import optimise, start_values
from analysis.sem.inference import check_identified, covariance, inadmissible_notes, parameter_estimates
from analysis.sem.model import Model, SampleStats, build_model
from analysis.sem.ordinal import (MISSING_METHODS, OrdinalStatistics, check_categories, check_items,
                                  ordinal_statistics)
from analysis.warnings import ConvergenceWarning, GapscaleWarning, InadmissibleWarning

__all__ = ["WLS_ESTIMATORS", "WLSEstimator", "fit_wls", "scaled_difference"]

WLS_ESTIMATORS = ("WLSMV", "ULSMV")


class WLSEstimator:
    """DWLS (``"WLSMV"``) or ULS (``"ULSMV"``) over the groups of ``model`` with the ordinal
    statistics ``stats`` (one :class:`~analysis.sem.ordinal.OrdinalStatistics` per group, its items in
    the block's order). Provides the interface :func:`~analysis.sem.estimate.optimise` uses:
    ``objective``, ``gradient``, ``information``, ``scoring`` and ``ntotal``."""

    def __init__(self, model: Model, stats: list[OrdinalStatistics], estimator: str = "WLSMV"):
        if estimator not in WLS_ESTIMATORS:
            raise InputError(f"estimator must be one of {', '.join(WLS_ESTIMATORS)}, got {estimator!r}")
        self.name = estimator
        self.model = model
        self.stats = stats
        self.nobs = np.array([s.n for s in stats], dtype=float)
        self.ntotal = int(self.nobs.sum())
        self.factor = (self.nobs - 1) / self.ntotal  # (n_g - 1)/N: T = N * objective
        self.sample = [s.sample for s in stats]
        self.weight = [s.weights if estimator == "WLSMV" else np.ones(len(s.sample)) for s in stats]
        lhs, rhs = model.partable["lhs"].to_numpy(), model.partable["rhs"].to_numpy()
        self._layout = [self._statistics_layout(blk, st, lhs[blk.rows], rhs[blk.rows])
                        for blk, st in zip(model.blocks, stats)]

    @staticmethod
    def _statistics_layout(blk, st: OrdinalStatistics, lhs: np.ndarray, rhs: np.ndarray) -> dict:
        """Where each sample statistic sits in the block: the tau entry and item of every
        threshold, the item pairs of the correlations, the block's free rows."""
        if tuple(st.names) != tuple(blk.ov):
            raise InputError(f"ordinal statistics of items {list(st.names)} do not match the model's {list(blk.ov)}")
        tau_rows = blk.matrix == "tau"
        pt_index = {}
        for k in np.flatnonzero(tau_rows):
            pt_index[(blk.ov.index(lhs[k]), rhs[k])] = blk.row[k]
        ov_ix = {v: k for k, v in enumerate(blk.ov)}
        th_item, th_pos = [], []
        for label in st.thresholds.index:
            if label.endswith("~1"):  # a continuous variable's mean (its statistic is minus the mean)
                th_item.append(ov_ix[label[:-2]])
                th_pos.append(-1)
                continue
            item, t = label.split("|")
            key = (ov_ix[item], t)
            if key not in pt_index:
                raise InputError(f"item {item!r} has threshold {t} in the data of group {blk.index} but not in the "
                                 "model: the number of categories differs from the parameter table's ('ordered')")
            th_item.append(ov_ix[item])
            th_pos.append(pt_index.pop(key))
        if pt_index:
            (j, t), _ = next(iter(pt_index.items()))
            raise InputError(f"item {blk.ov[j]!r} has threshold {t} in the model but fewer categories in the data of "
                             f"group {blk.index}; every category must be observed in every group")
        var_item = np.array([ov_ix[v] for v in st.continuous], dtype=int)
        has_delta = np.zeros(blk.p, dtype=bool)
        has_delta[blk.row[blk.matrix == "delta"]] = True
        return {"th_item": np.array(th_item, dtype=int), "th_pos": np.array(th_pos, dtype=int),
                "mean": np.array(th_pos, dtype=int) < 0, "var_item": var_item, "has_delta": has_delta,
                "ii": st.pairs[:, 0], "jj": st.pairs[:, 1], "nth": len(th_item), "nuni": len(th_item) + len(var_item)}

    # ------------------------------------------------------------------ implied statistics
    def _delta(self, g: int, mats: dict) -> np.ndarray:
        """The scale factors of the block's variables: an ordered item's delta, 1 for a continuous one."""
        if "delta" not in mats:
            return np.ones(self.model.blocks[g].p)
        return np.where(self._layout[g]["has_delta"], mats["delta"], 1.0)

    def implied(self, x: np.ndarray) -> list[np.ndarray]:
        """Per group the implied thresholds and correlations, in the order of the sample statistics."""
        out = []
        for g, st in enumerate(self.model.state(x)):
            lay = self._layout[g]
            d = self._delta(g, st)
            tau = np.where(lay["mean"], 0.0, st["tau"][lay["th_pos"]]) if lay["nth"] else np.zeros(0)
            th = (tau - st["mu"][lay["th_item"]]) * d[lay["th_item"]]  # minus the mean of a continuous one
            ii, jj, vi = lay["ii"], lay["jj"], lay["var_item"]
            out.append(np.concatenate([th, st["sigma"][vi, vi], d[ii] * d[jj] * st["sigma"][ii, jj]]))
        return out

    def implied_correlation(self, x: np.ndarray) -> list[np.ndarray]:
        """Per group the implied correlation matrix :math:`\\Sigma^*` of the latent responses
        (with continuous variables: their implied variances and covariances)."""
        out = []
        for g, st in enumerate(self.model.state(x)):
            d = self._delta(g, st)
            r = d[:, None] * st["sigma"] * d[None, :]
            ordered = np.ones(len(d), dtype=bool)
            ordered[self._layout[g]["var_item"]] = False
            r[np.flatnonzero(ordered), np.flatnonzero(ordered)] = 1.0
            out.append(r)
        return out

    def jacobians(self, x: np.ndarray) -> list[np.ndarray]:
        """Per group :math:`\\Delta_g = \\partial\\sigma_g/\\partial x^\\top` (statistics x free parameters)."""
        model = self.model
        q = model.nfree
        out = []
        for g, (st, (index, ds, dm)) in enumerate(zip(model.state(x), model.derivatives(x))):
            blk, lay = model.blocks[g], self._layout[g]
            pos = np.flatnonzero(model.free[blk.rows] > 0)
            mat, row = blk.matrix[pos], blk.row[pos]
            d = self._delta(g, st)
            ii, jj, ti, tp, vi = lay["ii"], lay["jj"], lay["th_item"], lay["th_pos"], lay["var_item"]
            jac = np.concatenate([-d[ti][None, :] * dm[:, ti], ds[:, vi, vi], (d[ii] * d[jj])[None, :] * ds[:, ii, jj]],
                                 axis=1)
            for k in np.flatnonzero(mat == "tau"):
                jac[k, :lay["nth"]] += np.where(tp == row[k], d[ti], 0.0)
            sig, mu = st["sigma"], st["mu"]
            for k in np.flatnonzero(mat == "delta"):
                j = row[k]
                jac[k, :lay["nth"]] += np.where(ti == j, st["tau"][tp] - mu[ti], 0.0)
                jac[k, lay["nuni"]:] += ((ii == j) * d[jj] + (jj == j) * d[ii]) * sig[ii, jj]
            full = np.zeros((q, jac.shape[1]))
            if len(np.unique(index)) == len(index):
                full[index] = jac
            else:  # rows sharing a free index add
                np.add.at(full, index, jac)
            out.append(full.T)
        return out

    # ------------------------------------------------------------------ the discrepancy
    def objective(self, x: np.ndarray) -> float:
        """:math:`T/N = \\sum_g \\frac{n_g-1}{N}(s_g-\\sigma_g)^\\top W_g(s_g-\\sigma_g)` (twice lavaan's fmin)."""
        return float(sum(c * np.sum(w * (s - e) ** 2)
                         for c, w, s, e in zip(self.factor, self.weight, self.sample, self.implied(x))))

    def scoring(self, x: np.ndarray, information: bool = True):
        """``(objective, its gradient, sum_g (n_g - 1) Delta_g' W_g Delta_g)`` (Gauss-Newton)."""
        q = self.model.nfree
        f, grad = 0.0, np.zeros(q)
        info = np.zeros((q, q)) if information else None
        for c, w, s, e, dg in zip(self.factor, self.weight, self.sample, self.implied(x), self.jacobians(x)):
            r = s - e
            f += c * np.sum(w * r * r)
            grad -= 2 * c * dg.T @ (w * r)
            if information:
                info += c * self.ntotal * dg.T @ (w[:, None] * dg)
        return float(f), grad, info

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.scoring(x, information=False)[1]

    def information(self, x: np.ndarray) -> np.ndarray:
        return self.scoring(x)[2]


def _start(model: Model, pseudo: list[SampleStats], ostats: list[OrdinalStatistics]) -> np.ndarray:
    """:func:`~analysis.sem.estimate.start_values` on the polychoric matrices, with the thresholds
    at their sample values, free scale factors at 1 (lavaan's start for ``~*~``) and the first
    loading of a latent without a marker positive (lavaan's sign)."""
    x = start_values(model, pseudo)
    pt = model.partable
    user = pt["ustart"].to_numpy(dtype=float)
    lhs, op, rhs = pt["lhs"].to_numpy(), pt["op"].to_numpy(), pt["rhs"].to_numpy()
    for blk, st in zip(model.blocks, ostats):
        for k in blk.rows:
            f = model.free[k]
            if f == 0 or np.isfinite(user[k]):
                continue
            if op[k] == "|":
                x[f - 1] = float(st.thresholds[f"{lhs[k]}|{rhs[k]}"])
            elif op[k] == "~*~":
                x[f - 1] = 1.0
        # A latent scaled by its variance (std.lv) starts with its first loading positive, as
        # lavaan's start values, which picks lavaan's sign of the (sign-free) solution.
        for lat in dict.fromkeys(lhs[blk.rows][op[blk.rows] == "=~"]):
            load = [k for k in blk.rows if op[k] == "=~" and lhs[k] == lat]
            marker = any(model.free[k] == 0 and model.values[k] != 0 for k in load)
            if not marker and model.free[load[0]] > 0 and x[model.free[load[0]] - 1] < 0:
                for k in load:
                    if model.free[k] > 0:
                        x[model.free[k] - 1] = -x[model.free[k] - 1]
    return x


def _residual_rows(model: Model, params: pd.DataFrame, x: np.ndarray, vcov: np.ndarray,
                   std_se: bool = True) -> pd.DataFrame:
    """The ordered items' residual variances as lavaan reports them: the computed
    :math:`\\theta_{jj}` (standard error 0: not a parameter), std.all :math:`\\theta_{jj}\\delta_j^2`
    with its delta-method standard error; the scale factors' std.all 1 (lavaan's
    ``lav_standardize_all``)."""
    pt = model.partable
    rows = []
    for g, blk in enumerate(model.blocks):
        items = set(pt["lhs"].to_numpy()[blk.rows][blk.matrix == "delta"])
        for pos, k in enumerate(blk.rows):
            if blk.matrix[pos] == "theta" and blk.row[pos] == blk.col[pos] and blk.ov[blk.row[pos]] in items:
                rows.append((g, blk.row[pos], k))
    params = params.copy()
    scale = (params["op"] == "~*~").to_numpy()  # lavaan's std.all of a scale factor is 1
    params.loc[scale, "std_all"] = 1.0
    params.loc[scale, "std_all_se"] = 0.0 if std_se else np.nan
    if not rows:
        return params

    # theta_jj = 1/delta_j^2 - c_j and theta_jj delta_j^2 = 1 - delta_j^2 c_j with c_j the common
    # variance [Lambda A Psi A' Lambda']_jj, whose derivatives are the diagonal of dSigma.
    mats = model.matrices(x)
    derivs = model.derivatives(x)
    q = model.nfree
    val = np.zeros(2 * len(rows))
    jac = np.zeros((2 * len(rows), q))
    for n, (g, j, _) in enumerate(rows):
        blk = model.blocks[g]
        index, ds, _ = derivs[g]
        d = mats[g]["delta"][j] if "delta" in mats[g] else 1.0
        theta = mats[g]["theta"][j, j]
        common = 1.0 / d ** 2 - theta
        val[2 * n], val[2 * n + 1] = theta, theta * d * d
        dc = np.zeros(q)
        np.add.at(dc, index, ds[:, j, j])
        ddelta = np.zeros(q)
        pos = np.flatnonzero(model.free[blk.rows] > 0)
        on = (blk.matrix[pos] == "delta") & (blk.row[pos] == j)
        np.add.at(ddelta, index[on], 1.0)
        jac[2 * n] = -dc - 2.0 / d ** 3 * ddelta
        jac[2 * n + 1] = -d * d * dc - 2.0 * d * common * ddelta
    se = np.sqrt(np.maximum(np.einsum("ik,kl,il->i", jac, vcov, jac), 0)) if std_se else np.full(len(val), np.nan)
    key = {(r.lhs, r.op, r.rhs, r.block): i for i, r in enumerate(params.itertuples())}
    lhs, rhs, block = pt["lhs"].to_numpy(), pt["rhs"].to_numpy(), pt["block"].to_numpy()
    for n, (g, j, k) in enumerate(rows):
        i = key[(lhs[k], "~~", rhs[k], block[k])]
        params.iloc[i, params.columns.get_loc("est")] = val[2 * n]
        params.iloc[i, params.columns.get_loc("std_lv")] = val[2 * n]
        params.iloc[i, params.columns.get_loc("std_lv_se")] = se[2 * n]
        params.iloc[i, params.columns.get_loc("std_all")] = val[2 * n + 1]
        params.iloc[i, params.columns.get_loc("std_all_se")] = se[2 * n + 1]
        for c in ("ci_lower", "ci_upper"):
            params.iloc[i, params.columns.get_loc(c)] = val[2 * n]
    return params


# --------------------------------------------------------------------------- robust inference


def _min_form_traces(z: np.ndarray, v: np.ndarray, dlt: np.ndarray, e_inv: np.ndarray) -> tuple[float, float]:
    """tr(U Gamma) and tr[(U Gamma)^2] for Gamma = Z'Z and U = diag(v) - (v Delta) E^-1 (v Delta)'."""
    vd = v[:, None] * dlt
    n, k = z.shape
    if n <= k:
        a = z * v[None, :]
        p = z @ vd
        m = a @ z.T - p @ e_inv @ p.T
        return float(np.trace(m)), float(np.sum(m * m))
    gam = z.T @ z
    ug = v[:, None] * gam - vd @ e_inv @ (vd.T @ gam)
    return float(np.trace(ug)), float(np.sum(ug * ug.T))


def _scaled_shifted(chisq: float, df: float, trace1: float, trace2: float) -> fitm.ScaledTest:
    """``a T + b`` with :math:`a = \\sqrt{df/\\operatorname{tr}[(U\\Gamma)^2]}`,
    :math:`b = df - a\\operatorname{tr}(U\\Gamma)`;
    NaN (lavaan's NA) for df = 0 or a trace that could not be computed."""
    if df > 0 and np.isfinite(trace1) and np.isfinite(trace2) and trace2 > 0:
        a = np.sqrt(df / trace2)
        shift = df - a * trace1
        return fitm.ScaledTest(float(a * chisq + shift), float(1 / a), method="scaled.shifted", shift=float(shift),
                               trace_ugamma=float(trace1))
    return fitm.ScaledTest(float(chisq) if df == 0 else np.nan, np.nan, method="scaled.shifted", shift=np.nan)


_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))
_CHUNK = 1000  # cases per batch in the robust scaling factor


def _catml_robust(est: "WLSEstimator", x: np.ndarray, dlts: list[np.ndarray], e_inv: np.ndarray, df: float,
                  plain: bool) -> tuple[fitm.RobustStatistics, str]:
    """The statistics behind lavaan's robust CFI/TLI/RMSEA for categorical data (Savalei, 2021;
    lavaan's ``lav_fit_catml_dwls``): the ML discrepancy of the polychoric matrices :math:`R_g`
    from the implied :math:`\\Sigma^*_g` at the DWLS/ULS estimates,
    :math:`T_3 = \\sum_g n_g[\\log|\\Sigma^*_g| + \\operatorname{tr}(R_g\\Sigma_g^{*-1}) - \\log|R_g| - p_g]`,
    its scaling factor :math:`\\hat c = \\operatorname{tr}(M^\\top VM\\Gamma_\\rho)/df` with
    :math:`M = I - \\Delta_\\rho E^{-1}\\Delta_\\rho^\\top W_\\rho` (correlation rows, weights
    :math:`f_gW_g`, :math:`\\Gamma_\\rho = \\oplus_g\\Gamma_{\\rho g}/f_g`) and :math:`V = \\oplus_g f_gV_g`,
    :math:`V_g` the normal-theory weight of a correlation structure at :math:`\\Sigma^*_g`
    (:math:`g^\\top V_g g = \\tfrac12\\operatorname{tr}(G\\Sigma^{*-1}G\\Sigma^{*-1})`, G the symmetric matrix
    with off-diagonal entries g); the baseline :math:`T_{3,0} = -\\sum_g n_g\\log|R_g|`,
    :math:`\\hat c_0 = \\operatorname{tr}(\\Gamma_\\rho)/df_0`.

    NaN with the reason, as lavaan's NA: a polychoric matrix not positive definite, or a model
    whose catML refit lavaan 0.6-14 cannot build (free means or scale factors, constraints on
    thresholds: ``plain`` False), or continuous variables among the items (lavaan: NA)."""
    nan = fitm.RobustStatistics(np.nan, np.nan, np.nan, np.nan)
    if any(len(st.variances) for st in est.stats):  # continuous variables: lavaan 0.6-14 gives NA
        return nan, ""
    cors = [st.correlation.to_numpy() for st in est.stats]
    if any(np.linalg.eigvalsh(r).min() < _SQRT_EPS for r in cors):
        return nan, ("a polychoric correlation matrix is not positive definite: the robust fit indices (cfi_robust, "
                     "tli_robust, rmsea_robust) are not computed, as lavaan")
    if not plain or df <= 0:
        return nan, ""
    n_tot = est.ntotal
    fg = est.nobs / n_tot
    sig = est.implied_correlation(x)
    t3 = t30 = 0.0
    for n, r, s in zip(est.nobs, cors, sig):
        t3 += n * (np.linalg.slogdet(s)[1] + np.sum(r * np.linalg.inv(s)) - np.linalg.slogdet(r)[1] - len(r))
        t30 -= n * np.linalg.slogdet(r)[1]
    d_rho = np.vstack([d[lay["nuni"]:] for d, lay in zip(dlts, est._layout)])
    w_rho = np.concatenate([f * w[lay["nuni"]:] for f, w, lay in zip(fg, est.weight, est._layout)])
    proj = e_inv @ (d_rho.T * w_rho[None, :])  # E^-1 Delta' W (q x K)
    sizes = [len(lay["ii"]) for lay in est._layout]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    ks = kbs = 0.0
    for g, st in enumerate(est.stats):
        lay = est._layout[g]
        z = np.sqrt(n_tot) * st.influence[:, lay["nuni"]:]  # Gamma_rho,g / f_g = Z'Z
        kbs += float(np.sum(z * z))
        cols = slice(starts[g], starts[g + 1])
        hz = z @ proj[:, cols].T  # the cases' E^-1 Delta' W z
        for h, blk in enumerate(est.model.blocks):
            other = est._layout[h]
            s_inv = np.linalg.inv(sig[h])
            for first in range(0, len(z), _CHUNK):
                part = -(hz[first:first + _CHUNK] @ d_rho[starts[h]:starts[h + 1]].T)
                if h == g:
                    part = part + z[first:first + _CHUNK]
                gm = np.zeros((len(part), blk.p, blk.p))
                gm[:, other["ii"], other["jj"]] = part
                gm[:, other["jj"], other["ii"]] = part
                gs = gm @ s_inv
                ks += fg[h] * 0.5 * float(np.einsum("nij,nji->", gs, gs))
    df0 = float(sum(sizes))
    return fitm.RobustStatistics(float(t3), ks / df, float(t30), kbs / df0), ""


# --------------------------------------------------------------------------- the fit


def _means(blk, st: OrdinalStatistics) -> np.ndarray:
    """Sample means of a block's variables: a continuous variable's mean, 0 for an ordered item."""
    mean = np.zeros(blk.p)
    for label, value in st.thresholds.items():
        if label.endswith("~1"):
            mean[list(blk.ov).index(label[:-2])] = -value
    return mean


def _group_parts(model: Model, data: pd.DataFrame, group: str | None, group_labels, missing: str = "listwise",
                 items: list[str] = ()) -> tuple[list[pd.DataFrame], list[str]]:
    """The rows of each group (listwise: complete; pairwise: some item answered); ``items`` (the
    ordered ones) checked as ordinal data, before and after the rows are chosen."""
    ovs = list(dict.fromkeys(v for blk in model.blocks for v in blk.ov))
    absent = [v for v in ovs if v not in data.columns]
    if absent:
        raise InputError(f"data: column(s) {', '.join(absent)} of the model not found")
    if group is not None and group not in data.columns:
        raise InputError(f"data: group column {group!r} not found")
    if items:
        check_items(data, list(items), 20, minimum=1)  # before rows are dropped: the row numbers are the data's
    # listwise: complete rows; pairwise: rows with some item answered (lavaan ignores empty cases)
    keep = data[ovs].notna().all(axis=1) if missing == "listwise" else data[ovs].notna().any(axis=1)
    if group is not None:
        keep &= data[group].notna()
    d = data.loc[keep]
    if not len(d):
        raise InputError(f"data: no row has every item of the model observed ({len(data)} rows); WLSMV/ULSMV delete "
                         "incomplete rows listwise (missing='pairwise' uses every answered pair)"
                         if missing == "listwise" else f"data: no row has an item of the model observed")
    if group is None:
        parts, labels = [d[ovs].reset_index(drop=True)], [""]
    else:
        gcol = d[group].astype(str)
        labels = list(group_labels) if group_labels is not None else list(dict.fromkeys(gcol))
        unknown = [g for g in labels if g not in set(gcol)]
        if unknown:
            raise InputError(f"data: group {unknown[0]!r} not found in column {group!r}")
        parts = [d.loc[gcol == g, ovs].reset_index(drop=True) for g in labels]
    for part in parts:
        check_categories(part, list(items))
    return parts, labels


def _check_ordinal_model(model: Model, ordered) -> None:
    """The table is one WLSMV/ULSMV fits: some ordered items (with thresholds and ``~*~`` rows);
    the other observed variables continuous (lavaan's ``ordered = c(some items)``), no observed
    variable in a regression (lavaan's ``conditional.x``)."""
    pt = model.partable
    for blk in model.blocks:
        op = pt["op"].to_numpy()[blk.rows]
        lhs = pt["lhs"].to_numpy()[blk.rows]
        with_th = set(lhs[op == "|"])
        if not with_th:
            raise InputError("no ordered item (no thresholds in the parameter table): WLSMV/ULSMV here are for ordered "
                             "items (build the table with lavaanify(..., ordered={item: categories})); fit continuous "
                             "data by ML or MLR")
        if blk.dummy:
            raise InputError(f"observed variable(s) {', '.join(blk.dummy)} in a regression or covariance with a "
                             "latent: not supported with WLSMV/ULSMV yet (lavaan's conditional.x); regress the "
                             "factors instead")
        if ordered is not None:
            missing = [v for v in blk.ov if v in with_th and v not in set(ordered)]
            if missing:
                raise InputError(f"item(s) {', '.join(missing)} have thresholds in the parameter table but are not in "
                                 "'ordered'")
            no_th = [v for v in blk.ov if v in set(ordered) and v not in with_th]
            if no_th:
                raise InputError(f"item(s) {', '.join(no_th)} are in 'ordered' but have no thresholds in the parameter "
                                 "table (build it with lavaanify(..., ordered={item: categories}))")
        theta_items = set(lhs[(op == "~*~")])
        if with_th - theta_items:
            raise InputError("ordered items without a scale factor (~*~ row): the parameter table must use lavaan's "
                             "delta parameterization (lavaanify(..., ordered=...) builds it)")
        if theta_items - with_th:
            raise InputError(f"variable(s) {', '.join(sorted(theta_items - with_th))} have a scale factor (~*~) but no "
                             "thresholds")


def fit_wls(partable: pd.DataFrame, data: pd.DataFrame, group: str | None = None,
            group_labels: list[str] | None = None, estimator: str = "WLSMV", ordered=None, level: float = 0.95,
            max_iter: int = 500, std_se: bool = True, missing: str = "listwise") -> EngineFit:
    """Fit the model of a lavaan parameter table with ordered items by WLSMV or ULSMV.

    The table comes from :func:`analysis.sem.partable.lavaanify` with ``ordered`` (thresholds,
    ``~*~`` rows, the items' means and variances fixed), as lavaan's ``parTable``. Rows with a
    missing item are dropped (lavaan's ``missing = "listwise"``); ``missing = "pairwise"``
    computes each threshold from the cases that answered its item and each polychoric
    correlation from the cases that answered both items, with lavaan's pairwise NACOV
    (:func:`analysis.sem.ordinal.ordinal_statistics`; every formula below unchanged, with
    :math:`n_g` the cases with some item answered). ``ordered`` (item names), when
    given, must be the items with thresholds. ``std_se = False`` skips the delta-method SEs of
    the standardised solutions (NaN). See the module docstring for every formula.

    Returns
    -------
    EngineFit
        ``parameters`` as :func:`~analysis.sem.inference.parameter_estimates` (the ordered items'
        residual variances are the computed :math:`\\theta_{jj}`, standard error 0, as lavaan);
        ``fit`` as :func:`analysis.sem.fit.fit_measures` (``chisq_scaled``,
        ``chisq_scaling_factor``, ``chisq_shift_parameters``, ``cfi_scaled``, ``rmsea_scaled``,
        ``cfi_robust``, ...); ``stats`` per group a
        :class:`~analysis.sem.model.SampleStats` whose ``cov`` is the polychoric matrix (``mean``
        zeros); ``implied`` per group the implied correlation matrix and thresholds (a Series
        indexed ``"item|t1"``, ...); ``information`` :math:`\\sum_g (n_g-1)\\Delta_g^\\top W_g\\Delta_g`;
        ``vcov`` the robust covariance matrix.

    Raises
    ------
    InputError
        As :func:`analysis.sem.ordinal.ordinal_statistics` (items not whole numbers, a single
        category, ...), a variable without thresholds, categories of an item that differ
        between the data and the table, negative degrees of freedom, or an information matrix
        singular at the solution (the parameters involved are named).

    In R: ``lavaan::sem(model, data, ordered = ..., estimator = "WLSMV")``.
    """
    estimator = str(estimator).upper()
    if estimator not in WLS_ESTIMATORS:
        raise InputError(f"estimator must be one of {', '.join(WLS_ESTIMATORS)}, got {estimator!r}")
    if missing not in MISSING_METHODS:
        raise InputError(f"missing: {estimator} takes 'listwise' (lavaan's default) or 'pairwise', got {missing!r}")
    model = build_model(partable)  # its normalised copy drops lavaanify's attrs (model.normalise_partable)
    pt = model.partable
    items = list(ordered) if ordered is not None else list(dict.fromkeys(pt.loc[pt["op"] == "|", "lhs"]))
    parts, labels = _group_parts(model, data, group, group_labels, missing, [v for v in items if v in data.columns])
    _check_ordinal_model(model, ordered)
    constraints = build_constraints(model.partable)
    if len(parts) != model.ngroups:
        raise InputError(f"the model has {model.ngroups} group(s) but the data {len(parts)} "
                         f"({'column ' + repr(group) if group else 'no group column'})")
    with_th = set(pt.loc[pt["op"] == "|", "lhs"])
    ostats = [ordinal_statistics(part, list(blk.ov), missing=missing,
                                 continuous=[v for v in blk.ov if v not in with_th])
              for part, blk in zip(parts, model.blocks)]
    est = WLSEstimator(model, ostats, estimator)
    pseudo = [SampleStats(label=lab, ov=blk.ov, n=st.n, cov=st.covariance.to_numpy(), mean=_means(blk, st))
              for lab, blk, st in zip(labels, model.blocks, ostats)]
    x0 = _start(model, pseudo, ostats)
    q = model.nfree
    names = model.free_names()
    ndat = int(sum(len(s) for s in est.sample))
    h_fun = lambda xx: constraints.h(model.row_values(xx))  # noqa: E731
    eq_jac = jacobian(h_fun, x0) if constraints.equality else np.zeros((0, q))
    eq_rank = int(np.linalg.matrix_rank(eq_jac)) if eq_jac.size else 0
    if q - eq_rank > ndat:
        raise InputError(f"the model is not identified: {q - eq_rank} free parameters but only {ndat} sample "
                         f"statistics (thresholds and polychoric correlations; degrees of freedom {ndat - q + eq_rank})"
                         "; fix parameters, add constraints or indicators")
    opt = optimise(est, model, constraints, x0, max_iter=max_iter)
    x = opt.x
    info = est.information(x)
    check_identified(info, opt.con_jac, names)
    notes = []
    if not opt.converged:
        notes.append(f"the optimiser did not converge in {opt.iterations} iterations ({opt.method})")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)

    n_tot, n_groups = est.ntotal, model.ngroups
    fg = est.nobs / n_tot
    dlts = est.jacobians(x)
    e_unit = sum(f * d.T @ (w[:, None] * d) for f, d, w in zip(fg, dlts, est.weight))
    e_inv = covariance(e_unit, opt.con_jac)
    meat = np.zeros((q, q))
    zs = []
    for f, d, w, st in zip(fg, dlts, est.weight, ostats):
        zwd = st.influence @ (w[:, None] * d)  # Xi W Delta: Gamma_g = n_g Xi'Xi
        meat += f * st.n * zwd.T @ zwd
        zs.append(np.sqrt(n_tot) * st.influence)  # Gamma_g / f_g = N Xi'Xi
    vcov = e_inv @ meat @ e_inv / (n_tot - n_groups)
    params = parameter_estimates(model, constraints, x, vcov, level=level, group_labels=labels, std_se=std_se)
    params = _residual_rows(model, params, x, vcov, std_se)
    for note in inadmissible_notes(model, x, params):  # variances free or computed (an item's theta_jj)
        notes.append(note)
        warnings.warn(note, InadmissibleWarning, stacklevel=2)

    resid = [s - e for s, e in zip(est.sample, est.implied(x))]
    chisq = float(sum((n - 1) * np.sum(w * r * r) for n, w, r in zip(est.nobs, est.weight, resid)))
    df = ndat - (q - opt.eq_rank)
    # stacked U Gamma: Z block diagonal (cases x statistics)
    k_sizes = [len(s) for s in est.sample]
    z_all = np.zeros((n_tot, sum(k_sizes)))
    r0 = c0 = 0
    for z in zs:
        z_all[r0:r0 + z.shape[0], c0:c0 + z.shape[1]] = z
        r0, c0 = r0 + z.shape[0], c0 + z.shape[1]
    v_all = np.concatenate([f * w for f, w in zip(fg, est.weight)])
    tr1, tr2 = _min_form_traces(z_all, v_all, np.vstack(dlts), e_inv)
    scaled = _scaled_shifted(chisq, df, tr1, tr2)
    base_chisq, base_df, b_tr1, b_tr2 = 0.0, 0, 0.0, 0.0
    for n, w, s, lay, st in zip(est.nobs, est.weight, est.sample, est._layout, ostats):
        nth = lay["nuni"]  # thresholds, means and variances: free in the baseline
        base_chisq += (n - 1) * float(np.sum(w[nth:] * s[nth:] ** 2))
        base_df += len(s) - nth
        y = st.influence[:, nth:] * np.sqrt(w[nth:])[None, :]
        b_tr1 += st.n * float(np.sum(y * y))
        gram = y.T @ y if y.shape[1] <= y.shape[0] else y @ y.T
        b_tr2 += st.n ** 2 * float(np.sum(gram * gram))
    base_scaled = _scaled_shifted(base_chisq, base_df, b_tr1, b_tr2)

    pt = model.partable
    op, free = pt["op"].to_numpy(), model.free
    plain = not (((op == "~1") | (op == "~*~")) & (free > 0)).any()
    if plain and constraints.equality:  # lavaan's catML table drops the | and ~1 rows their constraints name
        dropped = set(pt.loc[(op == "|") | (op == "~1"), "plabel"]) | set(pt.loc[(op == "|") | (op == "~1"), "label"])
        dropped.discard("")
        text = " ".join(pt.loc[op == "==", "lhs"].astype(str) + " " + pt.loc[op == "==", "rhs"].astype(str))
        plain = not set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", text)) & dropped
    robust, robust_note = _catml_robust(est, x, dlts, e_inv, df, plain)
    if robust_note:
        notes.append(robust_note)
        warnings.warn(robust_note, GapscaleWarning, stacklevel=2)
    cors = est.implied_correlation(x)
    implied_stats = est.implied(x)
    # the thresholds proper (not the continuous variables' means), as lavaan's residuals
    th_obs = [s[:lay["nth"]][~lay["mean"]] for s, lay in zip(est.sample, est._layout)]
    th_est = [e[:lay["nth"]][~lay["mean"]] for e, lay in zip(implied_stats, est._layout)]
    fit_measures = fitm.fit_measures(
        npar=int(q - opt.eq_rank), ntotal=n_tot, chisq=chisq, df=df, baseline_chisq=base_chisq,
        baseline_df=base_df, n_groups=n_groups, estimator=estimator, fmin=chisq / (2 * n_tot), scaled=scaled,
        baseline_scaled=base_scaled, robust=robust,
        residuals=fitm.residual_measures([st.covariance.to_numpy() for st in ostats], cors, est.nobs,
                                         sample_thresholds=th_obs, implied_thresholds=th_est, categorical=True),
        gfi_value=fitm.gfi(est.sample, implied_stats, est.weight, est.nobs), nel=ndat, categorical=True)
    # lavaan 0.6-14's WRMR counts the sample statistics of the first group only (its
    # length(WLS.obs[[1]])), also with several groups.
    fit_measures["wrmr"] = fitm.wrmr(chisq, k_sizes[0])
    if estimator == "ULSMV":  # lavaan: the ULS statistic has no reference distribution
        fit_measures["pvalue"] = fit_measures["baseline_pvalue"] = float("nan")
    implied = tuple((pd.DataFrame(c, index=blk.ov, columns=blk.ov),
                     pd.Series(e[:lay["nth"]], index=st.thresholds.index))
                    for c, e, lay, blk, st in zip(cors, implied_stats, est._layout, model.blocks, ostats))
    return EngineFit(parameters=params, fit=fit_measures, x=x, vcov=vcov, information=info, model=model,
                     stats=tuple(pseudo), group_labels=tuple(labels), implied=implied, optimum=opt,
                     converged=opt.converged, warnings=tuple(notes), estimator=est)


# --------------------------------------------------------------------------- nested models


def _equality_basis(fit: EngineFit) -> np.ndarray:
    """An orthonormal basis K of the null space of the fit's equality constraints (identity without)."""
    q = fit.model.nfree
    jac = fit.optimum.con_jac[:fit.optimum.n_eq]
    if jac.size == 0:
        return np.eye(q)
    _, sv, vt = np.linalg.svd(jac, full_matrices=True)
    rank = int(np.sum(sv > 1e-10 * max(1.0, sv.max())))
    return vt[rank:].T


def scaled_difference(less: EngineFit, more: EngineFit) -> dict:
    r"""The scaled-and-shifted chi-square difference test of two nested WLSMV/ULSMV fits
    (Satorra, 2000; Asparouhov & Muthen, 2010), lavaan's ``lavTestLRT`` default for these
    estimators (``method = "satorra.2000"``, ``A.method = "delta"``, ``scaled.shifted = TRUE``).

    With :math:`\Delta_1, \Delta_0` the stacked Jacobians of the implied statistics of the less
    and the more restricted model, :math:`K_1, K_0` bases of their equality-constraint null
    spaces, :math:`H = (\Delta_1K_1)^+\Delta_0K_0` and :math:`A` the rows spanning the orthogonal
    complement of H's columns (times :math:`K_1^	op`): with :math:`P^{-1}` the less restricted
    model's inverted unit information :math:`E^{-1}`,
    :math:`M = P^{-1}A^	op(AP^{-1}A^	op)^+AP^{-1}` and
    :math:`C = \sum_g f_g\Delta_g^	op W_g\Gamma_gW_g\Delta_g`,
    :math:`\operatorname{tr}(U\Gamma) = \operatorname{tr}(MC)`,
    :math:`\operatorname{tr}[(U\Gamma)^2] = \operatorname{tr}[(MC)^2]`, :math:`m = df_0 - df_1`,
    :math:`a = \sqrt{m/\operatorname{tr}[(U\Gamma)^2]}`, :math:`b = m - a\operatorname{tr}(U\Gamma)`
    and :math:`\Delta T = a(T_0 - T_1) + b` on m degrees of freedom.

    Returns
    -------
    dict
        ``chisq_diff, df_diff, pvalue, a, b`` (lavaan's ``Chisq diff``, ``Df diff``, ``Pr(>Chisq)``).

    Raises
    ------
    InputError
        A fit that is not WLSMV/ULSMV, fits of different estimators or data sizes, or ``more``
        not having more degrees of freedom than ``less``.

    In R: ``lavTestLRT(fit1, fit0)``.
    """
    for f in (less, more):
        if not isinstance(f.estimator, WLSEstimator):
            raise InputError("scaled_difference: both fits must be WLSMV or ULSMV fits of the engine")
    e1, e0 = less.estimator, more.estimator
    if e1.name != e0.name or e1.ntotal != e0.ntotal or len(e1.stats) != len(e0.stats):
        raise InputError("scaled_difference: the two fits must use the same estimator on the same data")
    m = int(more.fit["df"] - less.fit["df"])
    if m <= 0:
        raise InputError(f"scaled_difference: the second model must be the more restricted one (more degrees of "
                         f"freedom); got df {less.fit['df']} and {more.fit['df']}")
    d1 = np.vstack(e1.jacobians(less.x))
    d0 = np.vstack(e0.jacobians(more.x))
    k1, k0 = _equality_basis(less), _equality_basis(more)
    h = np.linalg.pinv(d1 @ k1) @ (d0 @ k0)
    u, sv, _ = np.linalg.svd(h, full_matrices=True)
    rank = int(np.sum(sv > 1e-10 * max(1.0, sv.max(initial=0.0))))
    a_mat = u[:, rank:].T @ k1.T
    fg = e1.nobs / e1.ntotal
    dl = e1.jacobians(less.x)
    e_unit = sum(f * d.T @ (w[:, None] * d) for f, d, w in zip(fg, dl, e1.weight))
    p_inv = covariance(e_unit, less.optimum.con_jac)
    apa = a_mat @ p_inv @ a_mat.T
    keep = ~((np.abs(apa.sum(axis=0)) < _SQRT_EPS) & (np.abs(apa.sum(axis=1)) < _SQRT_EPS))
    a_mat = a_mat[keep]
    mmat = p_inv @ a_mat.T @ np.linalg.pinv(a_mat @ p_inv @ a_mat.T) @ a_mat @ p_inv
    cmat = np.zeros_like(e_unit)
    for f, d, w, st in zip(fg, dl, e1.weight, e1.stats):
        zwd = st.influence @ (w[:, None] * d)
        cmat += f * st.n * zwd.T @ zwd
    mc = mmat @ cmat
    tr1, tr2 = float(np.trace(mc)), float(np.sum(mc * mc.T))
    a = np.sqrt(m / tr2)
    b = m - a * tr1
    stat = float((more.fit["chisq"] - less.fit["chisq"]) * a + b)
    return {"chisq_diff": stat, "df_diff": m, "pvalue": fitm.chisq_pvalue(stat, m), "a": float(a), "b": float(b)}
