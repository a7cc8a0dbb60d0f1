"""Estimation: the ML discrepancy over any number of groups, starting values, and the optimiser
with equality and inequality constraints.

The discrepancy of complete-data normal-theory ML (lavaan's ``estimator = "ML"``,
``likelihood = "normal"``), summed over groups with weights :math:`n_g/N`:

.. math::

    F(x) = \\sum_g \\frac{n_g}{N}\\Big[\\log|\\Sigma_g| + \\operatorname{tr}(S_g\\Sigma_g^{-1})
      + (\\bar y_g-\\mu_g)^\\top\\Sigma_g^{-1}(\\bar y_g-\\mu_g) - \\log|S_g| - p_g\\Big],

so that :math:`\\chi^2 = N F(\\hat x)` (lavaan's ``2 N fmin``). Without a mean structure
:math:`\\mu_g = \\bar y_g`. Its gradient is
:math:`\\sum_g \\frac{n_g}{N}\\big[\\operatorname{tr}(W_g\\,\\partial\\Sigma_g) - 2(\\bar y_g-\\mu_g)^\\top
\\Sigma_g^{-1}\\partial\\mu_g\\big]` with :math:`W_g = \\Sigma_g^{-1} - \\Sigma_g^{-1}(S_g +
(\\bar y_g-\\mu_g)(\\bar y_g-\\mu_g)^\\top)\\Sigma_g^{-1}`, and the expected (Fisher) information of
the log-likelihood is
:math:`\\mathcal I = \\sum_g n_g\\big[\\tfrac12\\operatorname{tr}(\\Sigma_g^{-1}\\partial_a\\Sigma_g
\\Sigma_g^{-1}\\partial_b\\Sigma_g) + \\partial_a\\mu_g^\\top\\Sigma_g^{-1}\\partial_b\\mu_g\\big]`
(computed as a Gram matrix of :math:`U^\\top\\partial\\Sigma\\,U`, :math:`UU^\\top = \\Sigma^{-1}`).

The optimiser is Fisher scoring (:math:`E[\\nabla^2F] = 2\\mathcal I/N`) with step halving, on
the null space of the equality constraints' Jacobian (linear ``==`` and equal labels: an
exact reparametrisation :math:`x = x_0 + Kz`; nonlinear ``==``: the same step at the
linearisation, a sequential quadratic programme). Inequalities (``>``, ``<``) are first solved by
SLSQP (lavaan uses ``nlminb.constr``, an augmented Lagrangian), then the active ones are kept as
equalities and Fisher scoring polishes the solution to the tolerance of the unconstrained case.
BFGS with the analytic gradient is the fallback when scoring stalls.

**Ending.** The optimiser stops when the largest (projected) gradient of :math:`F` is below
1e-9. Near the optimum a step lowers :math:`F` by about :math:`\\tfrac12 g^\\top H^{-1}g`, which
falls below the rounding of :math:`F` itself (64 ulps, about :math:`1.4\\cdot10^{-14}F`) long
before the gradient is that small; a step whose objective change is within that rounding is
therefore judged by the gradient (accepted if it shrinks it) instead of being halved to nothing
by the Armijo test. On the default 4-group model this ends the secant phase in 12 steps instead
of 62, and FIML's scoring at max|g| 6e-10 instead of a stalled line search at 2e-8. (lavaan's
``nlminb`` stops on a relative change of the objective of 1e-10 instead, ``rel.tol``.)

**Estimator strategies.** :class:`MLEstimator` is one strategy; an estimator provides
``objective(x)``, ``gradient(x)`` and ``information(x)`` (per-observation sum, the log-likelihood's
or the weighted least-squares' :math:`\\Delta^\\top W\\Delta`) over the same :class:`~analysis.sem.model.Model`
and its :meth:`~analysis.sem.model.Model.derivatives`, and :func:`optimise` works for all.

Starting values follow lavaan's ``start = "simple"`` (residual variances half the observed
variances, latent variances .05, regressions and covariances 0, intercepts the sample means,
fixed.x values the sample moments) except that free loadings start at the first principal
component of the latent's indicators scaled to its marker, which converges in fewer steps.
A fit may start instead from a neighbouring model's estimates (:func:`warm_start`: the rung
before on an invariance ladder, the hypothesised model for a competing one), which changes the
path, not the optimum.

In R: ``lavaan::sem(model, data)``; ``lavInspect(fit, "optim")``; ``fitMeasures(fit, c("chisq",
"df", "npar", "logl", "unrestricted.logl", "baseline.chisq", "baseline.df"))``.

References
----------
Lee, S.-Y., & Jennrich, R. I. (1979). A study of algorithms for covariance structure analysis
    with specific comparisons using factor analysis. Psychometrika 44, 99-113.
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36.
Nocedal, J., & Wright, S. J. (2006). Numerical Optimization (2nd ed.), ch. 15 and 18. Springer.
"""
from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from analysis.sem.constraints import Constraints, ConstraintSystem, linear_reduction
from analysis.sem.fit import chisq_pvalue  # noqa: F401  (one p-value function; robust.py imports it from here)
from analysis.sem.model import Model, SampleStats

__all__ = ["MLEstimator", "Optimum", "baseline", "optimise", "start_values", "warm_start"]


class MLEstimator:
    """Complete-data ML over the groups of ``model`` with sample moments ``stats``."""

    name = "ML"

    def __init__(self, model: Model, stats: list[SampleStats]):
        self.model = model
        self.stats = stats
        self.ntotal = int(sum(s.n for s in stats))
        self.weights = np.array([s.n / self.ntotal for s in stats])
        self._logdet_s = [np.linalg.slogdet(s.cov)[1] for s in stats]

    def moments(self, x: np.ndarray):
        out = []
        for (sigma, mu), st in zip(self.model.implied(x), self.stats):
            if not self.model.meanstructure:
                mu = st.mean
            out.append((sigma, mu))
        return out

    def objective(self, x: np.ndarray) -> float:
        """F(x) (chi-square / N); +inf where an implied covariance matrix is not positive definite."""
        total = 0.0
        for w, (sigma, mu), st, lds in zip(self.weights, self.moments(x), self.stats, self._logdet_s):
            try:
                c = np.linalg.cholesky(sigma)
            except np.linalg.LinAlgError:
                return np.inf
            logdet = 2 * np.sum(np.log(np.diag(c)))
            ci = np.linalg.inv(c)
            sinv = ci.T @ ci
            d = st.mean - mu
            total += w * (logdet + np.sum(st.cov * sinv) + d @ sinv @ d - lds - len(mu))
        return float(total)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.scoring(x, information=False)[1]

    def information(self, x: np.ndarray) -> np.ndarray:
        """The expected information of the log-likelihood, summed over cases and groups (q x q)."""
        return self.scoring(x)[2]

    def observed_information(self, x: np.ndarray) -> np.ndarray:
        """The observed information :math:`-\\partial^2\\log L = \\tfrac N2\\,\\partial^2 F`
        (lavaan's ``information = "observed"``, ``observed.information = "hessian"``), by
        central differences of the analytic gradient (2q gradient evaluations)."""
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        q = len(x)
        hess = np.zeros((q, q))
        for k in range(q):
            up, down = x.copy(), x.copy()
            up[k] += h[k]
            down[k] -= h[k]
            hess[:, k] = (self.gradient(up) - self.gradient(down)) / (2 * h[k])
        return self.ntotal / 2 * 0.5 * (hess + hess.T)

    def scoring(self, x: np.ndarray, information: bool = True):
        """``(F, gradient of F, expected information)`` at ``x`` (information None if not asked)."""
        q = self.model.nfree
        grad = np.zeros(q)
        info = np.zeros((q, q)) if information else None
        f = 0.0
        for w, (sigma, mu), st, lds, (index, da, db, dc, dm) in zip(self.weights, self.moments(x), self.stats,
                                                                    self._logdet_s,
                                                                    self.model.factored_derivatives(x)):
            try:
                c = np.linalg.cholesky(sigma)
            except np.linalg.LinAlgError:
                return np.inf, grad, info
            ci = np.linalg.inv(c)  # Sigma^-1 = ci' ci
            sinv = ci.T @ ci
            d = st.mean - mu
            f += w * (2 * np.sum(np.log(np.diag(c))) + np.sum(st.cov * sinv) + d @ sinv @ d - lds - len(mu))
            sd = sinv @ d
            wmat = sinv - sinv @ (st.cov + np.outer(d, d)) @ sinv
            # tr(W dSigma_k) = 2 c_k a_k' W b_k
            g_rows = 2 * dc * np.einsum("kp,kp->k", da @ wmat, db)
            if self.model.meanstructure:
                g_rows -= 2 * dm @ sd
            np.add.at(grad, index, w * g_rows)
            if information:
                r = len(index)
                # 1/2 tr(V dS_k V dS_l) = c_k c_l [(a_k'Va_l)(b_k'Vb_l) + (a_k'Vb_l)(b_k'Va_l)]
                au, bu = da @ ci.T, db @ ci.T
                aa, bb, ab = au @ au.T, bu @ bu.T, au @ bu.T
                block = np.outer(dc, dc) * (aa * bb + ab * ab.T)
                if self.model.meanstructure:
                    dmc = dm @ ci.T
                    block += dmc @ dmc.T
                block *= st.n
                if len(np.unique(index)) == r:
                    info[np.ix_(index, index)] += block
                else:
                    proj = np.zeros((q, r))
                    proj[index, np.arange(r)] = 1.0
                    info += proj @ block @ proj.T
        return float(f), grad, info

    def loglik(self, x: np.ndarray) -> tuple[float, float]:
        """The log-likelihood at ``x`` and that of the unrestricted (saturated) model.

        With fixed exogenous covariates (fixed.x) both are conditional on them, as lavaan's:
        the saturated log-likelihood of the covariates' own block,
        :math:`-\\tfrac{n}{2}(p_x\\log 2\\pi + \\log|S_{xx}| + p_x)`, is subtracted.
        """
        logl = unres = 0.0
        for blk, (sigma, mu), st, lds in zip(self.model.blocks, self.moments(x), self.stats, self._logdet_s):
            p = len(mu)
            sinv = np.linalg.inv(sigma)
            d = st.mean - mu
            logl += -st.n / 2 * (p * np.log(2 * np.pi) + np.linalg.slogdet(sigma)[1] + np.sum(st.cov * sinv)
                                 + d @ sinv @ d)
            unres += -st.n / 2 * (p * np.log(2 * np.pi) + lds + p)
            if blk.ov_x:
                ix = [st.ov.index(v) for v in blk.ov_x]
                px = len(ix)
                logl_x = -st.n / 2 * (px * np.log(2 * np.pi) + np.linalg.slogdet(st.cov[np.ix_(ix, ix)])[1] + px)
                logl -= logl_x
                unres -= logl_x
        return float(logl), float(unres)


# --------------------------------------------------------------------------- starting values


def start_values(model: Model, stats: list[SampleStats]) -> np.ndarray:
    """Starting values of the free parameters (see the module docstring); a user's start
    (``ustart`` of a free row, lavaan's ``start(0.5)*x``) is kept."""
    pt = model.partable
    start = np.full(len(pt), np.nan)
    lhs, op, rhs = pt["lhs"].to_numpy(), pt["op"].to_numpy(), pt["rhs"].to_numpy()
    free = model.free
    exo_col = pt["exo"].to_numpy()
    for blk, st in zip(model.blocks, stats):
        ov_ix = {v: k for k, v in enumerate(st.ov)}
        rows = blk.rows
        lv_real = blk.lv[:blk.m - len(blk.dummy)]
        var_start: dict[str, float] = {}
        for lat in lv_real:
            ind_rows = [k for k in rows if op[k] == "=~" and lhs[k] == lat and rhs[k] in ov_ix]
            if not ind_rows:
                continue
            inds = [ov_ix[rhs[k]] for k in ind_rows]
            sub = st.cov[np.ix_(inds, inds)]
            w, v = np.linalg.eigh(sub)
            load = v[:, -1] * np.sqrt(max(w[-1], 1e-6))
            fixed = [(pos, model.values[k]) for pos, k in enumerate(ind_rows) if free[k] == 0 and model.values[k] != 0]
            var_row = [k for k in rows if op[k] == "~~" and lhs[k] == lat and rhs[k] == lat]
            if fixed:  # the scale is set by the marker
                pos, val = fixed[0]
                if abs(load[pos]) < 1e-8:
                    load = np.ones(len(inds)) * np.sqrt(max(w[-1], 1e-6) / len(inds))
                    pos_load = load[pos]
                else:
                    pos_load = load[pos]
                scaled = load / pos_load * val
                var_start[lat] = (pos_load / val) ** 2
            else:  # the scale is set by the variance
                var = model.values[var_row[0]] if var_row and free[var_row[0]] == 0 else 1.0
                load = load * (np.sign(load.sum()) or 1.0)
                scaled = load / np.sqrt(var if var > 0 else 1.0)
            for k, value in zip(ind_rows, scaled):
                start[k] = value
        dummy = set(blk.dummy)
        for k in rows:
            if not np.isnan(start[k]):
                continue
            a, o, z = lhs[k], op[k], rhs[k]
            if o == "=~":
                start[k] = 1.0
            elif o == "~~":
                if a in ov_ix and z in ov_ix:
                    if a == z:
                        exo = exo_col[k] == 1
                        start[k] = st.cov[ov_ix[a], ov_ix[a]] * (1.0 if exo else 0.5)
                    else:
                        start[k] = st.cov[ov_ix[a], ov_ix[z]] if (a in dummy and exo_col[k] == 1) else 0.0
                elif a == z:
                    start[k] = var_start.get(a, 0.05)
                else:
                    start[k] = 0.0
            elif o == "~1":
                start[k] = st.mean[ov_ix[a]] if a in ov_ix else 0.0
            else:
                start[k] = 0.0
    user = pt["ustart"].to_numpy(dtype=float)
    start = np.where((free > 0) & ~np.isnan(user), user, start)
    x = np.zeros(model.nfree)
    seen = np.zeros(model.nfree, dtype=bool)
    for k in range(len(pt)):
        f = free[k]
        if f > 0 and not seen[f - 1]:
            x[f - 1] = start[k] if np.isfinite(start[k]) else 0.0
            seen[f - 1] = True
    return x


def warm_start(model: Model, start: np.ndarray, previous: pd.DataFrame) -> np.ndarray:
    """``start`` with each free parameter that ``previous`` also estimates set to its estimate.

    ``previous`` is a fitted model's parameter table (columns ``lhs, op, rhs, est`` and, with
    several groups, ``group``: lavaan's group number); a free parameter of ``model`` takes the
    estimate of the row with the same ``lhs, op, rhs`` (either order for ``~~``) in the same group,
    its first such row when equality constraints share it. Parameters without a match keep
    ``start``. Nested models (the rungs of an invariance ladder, competing structural models of the
    same data) then start at the neighbouring solution: the optimiser needs fewer steps and the
    optimum is the same (the estimates are those of the optimiser's tolerance from any start).
    lavaan has no such option (each ``cfa()`` starts from ``start = "default"``); it is an
    optimiser's start, not a change of the model.
    """
    x = np.array(start, dtype=float, copy=True)
    if previous is None or not len(previous):
        return x
    groups = previous["group"].to_numpy() if "group" in previous.columns else np.ones(len(previous))
    known: dict = {}
    for lhs, op, rhs, g, est in zip(previous["lhs"], previous["op"], previous["rhs"], groups, previous["est"]):
        if op in ("=~", "~~", "~", "~1") and np.isfinite(est):
            known.setdefault((lhs, op, rhs, int(g)), float(est))
            if op == "~~":
                known.setdefault((rhs, op, lhs, int(g)), float(est))
    pt = model.partable
    free = model.free
    seen = np.zeros(len(x), dtype=bool)
    for k, lhs, op, rhs, g in zip(range(len(pt)), pt["lhs"], pt["op"], pt["rhs"], pt["group"]):
        f = free[k] - 1
        if f < 0 or seen[f]:
            continue
        value = known.get((lhs, op, rhs, int(g)))
        if value is not None:
            x[f] = value
            seen[f] = True
    return x


# --------------------------------------------------------------------------- optimiser


@dataclass(frozen=True)
class Optimum:
    """The optimiser's result: estimates ``x``, discrepancy ``fmin`` (chi-square / N), whether it
    converged, the iterations, the equality-constraint Jacobian at the solution including the
    active inequalities (``con_jac``, rows), the number of equality constraints ``n_eq`` (its
    first rows; their rank is ``eq_rank``) and the active inequalities (row indices of the
    parameter table)."""

    x: np.ndarray
    fmin: float
    converged: bool
    iterations: int
    con_jac: np.ndarray
    n_eq: int
    eq_rank: int
    active: tuple[int, ...]
    method: str


def _null_space(jac: np.ndarray, q: int, tol: float = 1e-10):
    if jac.size == 0:
        return np.eye(q), 0
    _, s, vt = np.linalg.svd(jac, full_matrices=True)
    rank = int(np.sum(s > tol * max(1.0, s.max())))
    return vt[rank:].T, rank


def _in_noise(f_new: float, f: float) -> bool:
    """Whether ``f_new`` equals ``f`` up to the rounding of the objective's sums (64 ulps): near
    the optimum a step's decrease, of the order of the squared gradient, falls below it, and an
    Armijo test on the objective can no longer accept a step that the gradient shows is good."""
    return bool(np.isfinite(f_new) and abs(f_new - f) <= 64 * np.finfo(float).eps * max(1.0, abs(f)))


def _secant_polish(est, x: np.ndarray, f: float, grad: np.ndarray, kh: np.ndarray, k, comps, max_iter: int,
                   tol: float):
    """BFGS from the Fisher matrix ``kh`` (reduced to the null space ``k`` of linear constraints,
    or None): Fisher scoring converges only linearly when the model misfits (its matrix lacks the
    residual term of the Hessian); the secant updates add it, so the last digits come in a few
    steps of a gradient each. Per block of ``comps`` when there are no constraints (the Hessian
    is block diagonal over groups that share nothing). Returns (x, f, grad, converged, iterations)."""
    proj = (lambda v: v) if k is None else (lambda v: k.T @ v)
    lift = (lambda v: v) if k is None else (lambda v: k @ v)
    blocks = [(c, kh[np.ix_(c, c)].copy()) for c in comps]
    pg = proj(grad)
    for it in range(1, max_iter + 1):
        if np.max(np.abs(pg), initial=0.0) < tol:
            return x, f, grad, True, it - 1
        dz = np.zeros(len(pg))
        for c, b in blocks:
            try:  # a numerically singular secant matrix is a stall, as a failed Cholesky
                with warnings.catch_warnings():
                    warnings.simplefilter("error", linalg.LinAlgWarning)
                    dz[c] = linalg.solve(b, -pg[c], assume_a="pos", check_finite=False)
            except (np.linalg.LinAlgError, ValueError, linalg.LinAlgWarning):
                return x, f, grad, False, it
        slope = float(pg @ dz)
        if slope >= 0:
            return x, f, grad, False, it
        t = 1.0
        grad_new = None
        while t > 1e-10:
            new = x + t * lift(dz)
            f_new = est.objective(new)
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * slope + 1e-15:
                break
            if t == 1.0 and _in_noise(f_new, f):  # the objective cannot tell: judge the step by the gradient
                grad_try = est.scoring(new, information=False)[1]
                if np.max(np.abs(proj(grad_try)), initial=0.0) < np.max(np.abs(pg), initial=0.0):
                    grad_new = grad_try
                    break
            t /= 2
        else:
            return x, f, grad, False, it
        if grad_new is None:
            _, grad_new, _ = est.scoring(new, information=False)
        pg_new = proj(grad_new)
        if t < 1.0 and _in_noise(f_new, f) and np.max(np.abs(pg_new), initial=0.0) >= np.max(np.abs(pg), initial=0.0):
            # a shortened step the objective cannot see and the gradient does not reward: the
            # secant phase has stalled (left alone it took ~30 halvings per step for hundreds of
            # steps: 14,648 FIML evaluations, 40 CPU-s, on a 25,000-row CFA); scoring takes over
            return x, f, grad, False, it
        sv, yv = t * dz, pg_new - pg
        for c, b in blocks:
            sc, yc = sv[c], yv[c]
            ys = float(yc @ sc)
            if ys > 1e-12 * max(1.0, float(np.linalg.norm(yc) * np.linalg.norm(sc))):
                bs = b @ sc
                b += np.outer(yc, yc) / ys - np.outer(bs, bs) / float(sc @ bs)
        x, f, grad, pg = new, f_new, grad_new, pg_new
    return x, f, grad, bool(np.max(np.abs(pg), initial=0.0) < tol), max_iter


def _scoring_loop(est, x: np.ndarray, eq, max_iter: int, tol: float, secant: bool = False):
    """Fisher scoring on the null space of the equality constraints ``eq(x) -> (h, J)``, with a
    restoration step for nonlinear ones (SQP with the Fisher matrix as Hessian). With
    ``secant`` (no constraints, or linear ones), once the gradient is below 1e-3 the last digits
    come from :func:`_secant_polish`."""
    q = len(x)
    n = est.ntotal
    components = est.model.components()
    f, grad, info = est.scoring(x)
    it = 0
    converged = False
    cache: dict = {}

    def null_space(jac):  # linear constraints: the same Jacobian every step, one SVD
        if "jac" not in cache or cache["jac"].shape != jac.shape or not np.array_equal(cache["jac"], jac):
            cache["jac"], cache["k"], cache["pinv"] = jac, _null_space(jac, q)[0], np.linalg.pinv(jac)
        return cache["k"], cache["pinv"]

    for it in range(1, max_iter + 1):
        if not np.isfinite(f):
            break
        h, jac = eq(x)
        hess = 2.0 * info / n
        if len(h):
            k, pinv = null_space(jac)
            restore = -pinv @ h
            kh = k.T @ hess @ k
            rhs = -k.T @ (grad + hess @ restore)
            pg = k.T @ grad
        else:  # no constraints: plain Fisher scoring, block by block when groups share nothing
            k, restore, kh, rhs, pg = None, np.zeros(q), hess, -grad, grad
        dz = np.zeros(len(rhs))
        for comp in (components if k is None else [np.arange(len(rhs))]):
            sub, r_sub = kh[np.ix_(comp, comp)], rhs[comp]
            try:  # the Fisher matrix is positive definite at an admissible point: Cholesky
                with warnings.catch_warnings():  # numerically singular (near a ridge): least squares
                    warnings.simplefilter("error", linalg.LinAlgWarning)
                    dz[comp] = linalg.solve(sub, r_sub, assume_a="pos", check_finite=False)
            except (np.linalg.LinAlgError, ValueError, linalg.LinAlgWarning):
                dz[comp] = np.linalg.lstsq(sub, r_sub, rcond=None)[0]
        step = restore + (k @ dz if k is not None else dz)
        hnorm = float(np.abs(h).sum()) if len(h) else 0.0
        if np.max(np.abs(pg), initial=0.0) < tol and hnorm < 1e-10:
            converged = True
            break
        if secant and hnorm < 1e-10 and np.max(np.abs(pg), initial=0.0) < 1e-3:
            comps = components if k is None else [np.arange(len(rhs))]
            x_s, f_s, grad_s, conv_s, it_s = _secant_polish(est, x, f, grad, kh, k, comps, max_iter, tol)
            if conv_s:
                return x_s, f_s, True, it + it_s
            secant = False  # the secant phase stalled: back to plain scoring from where it was
            if f_s <= f:
                x, f = x_s, f_s
                f, grad, info = est.scoring(x)
                continue
        merit = f + 100.0 * hnorm
        t = 1.0
        accepted = False
        scored = None
        while t > 1e-10:
            new = x + t * step
            f_new = est.objective(new)
            h_new = eq(new)[0]
            m_new = f_new + 100.0 * (float(np.abs(h_new).sum()) if len(h_new) else 0.0)
            if np.isfinite(f_new) and m_new <= merit + 1e-15:
                accepted = True
                break
            if t == 1.0 and hnorm < 1e-10 and _in_noise(f_new, f) and np.max(np.abs(pg), initial=0.0) < 1e-4:
                # the objective cannot tell the points apart: the full step stands if the gradient shrinks
                scored = est.scoring(new)
                pg_new = null_space(eq(new)[1])[0].T @ scored[1] if len(h) else scored[1]
                if np.max(np.abs(pg_new), initial=0.0) < np.max(np.abs(pg), initial=0.0):
                    accepted = True
                    break
                scored = None
            t /= 2
        if not accepted:  # no decrease left in the objective's last digits: converged if the gradient is tiny
            converged = bool(hnorm < 1e-10 and np.max(np.abs(pg), initial=0.0) < 1e-6)
            break
        x = new
        f, grad, info = scored if scored is not None else est.scoring(x)
        if np.max(np.abs(t * step)) < 1e-12:
            h, jac = eq(x)
            pg = null_space(jac)[0].T @ grad if len(h) else grad
            converged = bool(np.max(np.abs(pg), initial=0.0) < 1e-6)
            break
    return x, f, converged, it


def optimise(est, model: Model, constraints: Constraints, start: np.ndarray, max_iter: int = 500,
             tol: float = 1e-9) -> Optimum:
    """Minimise ``est.objective`` subject to the constraints, from ``start`` (see module docstring)."""
    q = model.nfree
    system = ConstraintSystem(model, constraints)
    h_fun, g_fun = system.h, system.g
    n_eq, n_in = system.n_eq, system.n_in
    linear_eq = system.linear("eq", start)
    x = start.copy()
    h_jac_const = system.h_jac(x) if n_eq and linear_eq else None
    if n_eq and linear_eq:
        x0, k, _ = linear_reduction(h_jac_const, h_fun(np.zeros(q)) if q else np.zeros(n_eq), q)
        x = x0 + k @ (k.T @ (x - x0))  # project the start onto the constraints
    g_linear = system.linear("in", start)
    g_jac_const = system.g_jac(x) if n_in and g_linear else None

    def eq_with(active):
        def eq(xx):
            hs = [h_fun(xx)] if n_eq else []
            js = [h_jac_const if h_jac_const is not None else system.h_jac(xx)] if n_eq else []
            if active:
                gi = g_fun(xx)[list(active)]
                gj = (g_jac_const if g_jac_const is not None else system.g_jac(xx))[list(active)]
                hs.append(gi)
                js.append(gj)
            if not hs:
                return np.zeros(0), np.zeros((0, q))
            return np.concatenate(hs), np.vstack(js)
        return eq

    active: tuple[int, ...] = ()
    method = "fisher"
    if n_in or (n_eq and not linear_eq):
        method = "slsqp+fisher"
        cons = []
        if n_eq:
            cons.append({"type": "eq", "fun": h_fun, "jac": lambda xx: system.h_jac(xx)})
        if n_in:
            cons.append({"type": "ineq", "fun": g_fun, "jac": lambda xx: system.g_jac(xx)})

        def fg(xx):
            f, gr, _ = est.scoring(xx, information=False)
            return (f, gr) if np.isfinite(f) else (1e10, np.zeros(q))

        res = optimize.minimize(fg, x, jac=True, method="SLSQP", constraints=cons,
                                options={"maxiter": 20 * max_iter, "ftol": 1e-14})
        x = res.x
        if n_in:
            gv = g_fun(x)
            active = tuple(int(i) for i in np.flatnonzero(gv < 1e-6))
    linear_active = h_jac_const is not None or not n_eq
    # an estimator whose scoring matrix is not the Fisher information of its objective (FIML:
    # the complete-data information) opts out of the secant phase (``secant_polish = False``)
    x_fs, f, converged, it = _scoring_loop(est, x, eq_with(active), max_iter, tol,
                                           secant=linear_active and (not active or g_linear)
                                           and getattr(est, "secant_polish", True))
    if n_in:
        # release an active inequality whose multiplier has the wrong sign (it does not bind)
        for _ in range(n_in):
            h, jac = eq_with(active)(x_fs)
            if not active or not converged:
                break
            grad = est.scoring(x_fs, information=False)[1]
            lam = np.linalg.lstsq(jac.T, grad, rcond=None)[0][n_eq:]
            drop = [a for a, l_ in zip(active, lam) if l_ < -1e-8]
            if not drop:
                break
            active = tuple(a for a in active if a not in drop)
            x_try, f_try, conv_try, it_try = _scoring_loop(est, x_fs, eq_with(active), max_iter, tol)
            if np.all(g_fun(x_try) >= -1e-9):
                x_fs, f, converged, it = x_try, f_try, conv_try, it + it_try
            else:
                break
    x = x_fs
    if not converged and not n_in and (not n_eq or linear_eq):
        # Fisher scoring can stall on a ridge: BFGS with the analytic gradient in the null space.
        if n_eq:
            x0, k, _ = linear_reduction(h_jac_const, h_fun(np.zeros(q)), q)
        else:
            x0, k = np.zeros(q), np.eye(q)

        def fz(z):
            f_, g_, _ = est.scoring(x0 + k @ z, information=False)
            return (f_, k.T @ g_) if np.isfinite(f_) else (1e10, np.zeros(k.shape[1]))

        res = optimize.minimize(fz, k.T @ (x - x0), jac=True, method="BFGS",
                                options={"gtol": 1e-10, "maxiter": 20 * max_iter})
        x = x0 + k @ res.x
        x, f, converged, it2 = _scoring_loop(est, x, eq_with(()), max_iter, tol)
        method = "fisher+bfgs"
        it += it2
    h, jac = eq_with(active)(x)
    eq_rank = _null_space(jac[:n_eq], q)[1] if n_eq else 0
    return Optimum(x=x, fmin=float(est.objective(x)), converged=bool(converged), iterations=int(it), con_jac=jac,
                   n_eq=n_eq, eq_rank=eq_rank, active=tuple(constraints.inequality[a][0] for a in active),
                   method=method)


# --------------------------------------------------------------------------- baseline


def baseline(model: Model, stats: list[SampleStats]) -> tuple[float, int]:
    """lavaan's baseline (independence) model: per group the observed variables uncorrelated,
    variances (and means) free, the fixed.x covariates' block at its sample values.

    .. math:: \\chi^2_0 = \\sum_g n_g\\big[\\log|D_g| - \\log|S_g|\\big],\\quad
       D_g = \\operatorname{diag}(S_{yy}) \\oplus S_{xx}

    with :math:`df_0` the sample moments less the variances (and means) of the non-exogenous
    variables. In R: ``fitMeasures(fit, c("baseline.chisq", "baseline.df"))``.
    """
    chisq, df = 0.0, 0
    for blk, st in zip(model.blocks, stats):
        x_ix = [k for k, v in enumerate(st.ov) if v in set(blk.ov_x)]
        y_ix = [k for k in range(len(st.ov)) if k not in set(x_ix)]
        logdet_d = np.sum(np.log(np.diag(st.cov)[y_ix]))
        if x_ix:
            logdet_d += np.linalg.slogdet(st.cov[np.ix_(x_ix, x_ix)])[1]
        chisq += st.n * (logdet_d - np.linalg.slogdet(st.cov)[1])
        p, px = len(st.ov), len(x_ix)
        df += p * (p + 1) // 2 - px * (px + 1) // 2 - (p - px)
    return float(chisq), int(df)
