"""Nonparametric bootstrap of a fitted structural equation model, as lavaan's
``se = "bootstrap"`` with percentile and bias-corrected intervals.

Each draw resamples the respondents with replacement (Efron & Tibshirani, 1993; within each
group when there are several, as lavaan), refits the model with the engine
(:mod:`analysis.sem`) and keeps the free parameters and the defined (``:=``) parameters. Draws
are independent of each other and of the number of worker processes: draw b uses its own random
stream, the b-th child of ``numpy.random.SeedSequence(seed)``, so the same seed gives the same
draws on one core or many.

A draw is a refit of the same :class:`~analysis.sem.model.Model` to the resampled data — the
fixed.x covariates' moments at the draw's own sample moments, as lavaan refits them — with the
engine's estimator strategy (:class:`~analysis.sem.estimate.MLEstimator` for listwise complete
data, :class:`~analysis.sem.fiml.FIMLEstimator` for FIML; ML, MLR and MLM share the ML
estimates). Only the estimates are computed (no standard errors, no standardised solution). A
draw starts from the full-sample estimates and takes quasi-Newton (BFGS) steps whose inverse
Hessian starts at the full-sample one (the inverse of :math:`2\\mathcal I/N`, the expected
information of the discrepancy), with the exact gradient of the draw's own discrepancy, so most
draws converge in a few cheap iterations; a draw that does not converge that way, and every draw
of a model with equality or inequality constraints, is refitted by the engine's optimiser
(:func:`analysis.sem.estimate.optimise`: Fisher scoring on the constraints' null space). A draw
that still does not converge is counted as failed: its row is NaN, it is reported, and the
intervals are based on the converged draws (as lavaan does; lavaan also keeps inadmissible
draws, and so does this module, counting them).

Intervals (lavaan's ``parameterEstimates(fit, boot.ci.type = ...)``):

- ``"perc"``: the (1 -/+ level)/2 quantiles of the draws, interpolated on the normal scale
  between order statistics (Davison & Hinkley, 1997, eq. 5.8; R's ``boot:::norm.inter``);
- ``"bca.simple"``: bias-corrected without acceleration: with
  :math:`w = \\Phi^{-1}(\\#\\{t_b < \\hat t\\}/B)`, the quantiles
  :math:`\\Phi(2w + z_{\\alpha})` of the draws (Efron, 1982), interpolated the same way.

References
----------
Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their Application. Cambridge
    University Press.
Efron, B. (1982). The Jackknife, the Bootstrap and Other Resampling Plans. SIAM.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from analysis.distributions import norm_cdf, norm_ppf
from analysis.errors import InputError
from analysis.executor import run_tasks
from analysis.sem.constraints import ConstraintSystem, build_constraints
from analysis.sem.engine import EngineFit
from analysis.sem.estimate import MLEstimator, optimise
from analysis.sem.fiml import FIMLEstimator, model_free_rows, nll_gradient, pattern_moments, patterns_of_values
from analysis.sem.model import CONSTRAINT_OPS, Model, SampleStats
from analysis.sem.wls import WLSEstimator

__all__ = ["BootstrapResult", "Resampler", "bfgs", "bootstrap_sem", "norm_inter"]

CHUNK = 25  # draws per batch at least (every batch pickles the resampler; in this process: per progress update)
# (2.2 MB on the default model, ~11 ms to send and rebuild its constraints) and enters a BLAS thread limit
# largest gradient element of the discrepancy F = chi-square / N at convergence: 1e-6 of -log L / N
# (the old code's criterion for FIML); moves the estimates by < 1e-4 SE (3e-5 on the default model)
GTOL = 2e-6


def _row_columns(fit: EngineFit) -> np.ndarray:
    """For each row of ``fit.parameters``, its column among the draws (free parameter index, then
    the defined parameters), or -1 for a fixed row. The engine's tables list the model rows of
    the parameter table (constraint rows left out), then the defined parameters."""
    pt = fit.model.partable
    keep = ~pt["op"].isin(CONSTRAINT_OPS).to_numpy()
    free = pt["free"].to_numpy(dtype=int)[keep] - 1
    n_def = int((pt["op"] == ":=").sum())
    columns = np.concatenate([free, fit.model.nfree + np.arange(n_def)])
    p = fit.parameters
    if len(columns) != len(p) or list(p["op"]) != list(pt["op"].to_numpy()[keep]) + [":="] * n_def:
        raise ValueError("the fit's parameter table is not the engine's (rows added, removed or reordered)")
    return columns


def draw_columns(fit: EngineFit) -> list[str]:
    """The names of the draws' columns: each free parameter (``lhs op rhs`` of its first row,
    with the group when there are several) and each defined parameter."""
    pt = fit.model.partable
    return fit.model.free_names() + list(pt.loc[pt["op"] == ":=", "lhs"])


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap draws of a fitted model.

    Attributes
    ----------
    draws : DataFrame
        One row per draw (``draw`` 0..B-1), one column per free parameter (:func:`draw_columns`)
        and per defined parameter; NaN for a failed draw.
    requested, converged, failed, inadmissible : int
        Draws asked for, converged, not converged, and converged with a negative variance.
    seed : int
    """

    draws: pd.DataFrame
    requested: int
    converged: int
    failed: int
    inadmissible: int
    seed: int

    def column(self, fit: EngineFit, lhs: str, op: str, rhs: str) -> str | None:
        """The draws' column of the parameter-table row ``lhs op rhs`` of ``fit`` (None: fixed)."""
        p = fit.parameters
        hit = np.flatnonzero(((p["lhs"] == lhs) & (p["op"] == op) & (p["rhs"] == rhs)).to_numpy())
        if not len(hit):
            raise KeyError(f"{lhs} {op} {rhs}")
        c = _row_columns(fit)[hit[0]]
        return None if c < 0 else self.draws.columns[c]

    def intervals(self, fit: EngineFit, level: float = 0.95) -> pd.DataFrame:
        """Bootstrap SE and intervals for every row of ``fit.parameters``: ``boot_se``,
        ``boot_pct_lower``, ``boot_pct_upper``, ``boot_bc_lower``, ``boot_bc_upper``. Fixed
        parameters (fixed.x covariates' moments included) get their value at both ends and a
        zero SE (as lavaan)."""
        ok = self.draws.dropna().to_numpy()
        columns = _row_columns(fit)
        alpha = np.array([(1 - level) / 2, (1 + level) / 2])
        z_alpha = norm_ppf(alpha)
        out = []
        for c, t0 in zip(columns, fit.parameters["est"].to_numpy(dtype=float)):
            if c < 0:
                out.append((0.0, t0, t0, t0, t0))
                continue
            t = ok[:, c]
            se = float(np.std(t, ddof=1)) if len(t) > 1 else np.nan
            if len(t) < 2 or np.var(t) == 0:
                out.append((se, t0, t0, t0, t0))
                continue
            perc = norm_inter(t, alpha)
            w = norm_ppf(np.mean(t < t0))
            bc = norm_inter(t, norm_cdf(2 * w + z_alpha)) if np.isfinite(w) else np.array([np.nan, np.nan])
            out.append((se, perc[0], perc[1], bc[0], bc[1]))
        return pd.DataFrame(out, columns=["boot_se", "boot_pct_lower", "boot_pct_upper", "boot_bc_lower",
                                          "boot_bc_upper"], index=fit.parameters.index)

    def summary(self) -> dict:
        return {"requested": self.requested, "converged": self.converged, "failed": self.failed,
                "inadmissible": self.inadmissible, "seed": self.seed}


def norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    r"""Quantiles of the draws ``t`` at probabilities ``alpha``, interpolated on the normal scale.

    With the R sorted draws :math:`t_{(1)} \le \dots \le t_{(R)}` and :math:`r = (R+1)\alpha`,
    :math:`k = \lfloor r \rfloor`: if r is whole, :math:`t_{(k)}`; at the ends :math:`t_{(1)}` or
    :math:`t_{(R)}`; otherwise
    :math:`t_{(k)} + \frac{\Phi^{-1}(\alpha) - \Phi^{-1}(k/(R+1))}{\Phi^{-1}((k+1)/(R+1)) -
    \Phi^{-1}(k/(R+1))}(t_{(k+1)} - t_{(k)})` (Davison & Hinkley, 1997, eq. 5.8).
    """
    t = np.sort(np.asarray(t, dtype=float)[np.isfinite(t)])
    r_count = len(t)
    out = []
    for a in np.atleast_1d(alpha):
        rk = (r_count + 1) * a
        k = int(np.floor(rk))
        if k <= 0:
            out.append(t[0])
        elif k >= r_count:
            out.append(t[-1])
        elif k == rk:
            out.append(t[k - 1])
        else:
            lo, hi = norm_ppf(k / (r_count + 1)), norm_ppf((k + 1) / (r_count + 1))
            out.append(t[k - 1] + (norm_ppf(a) - lo) / (hi - lo) * (t[k] - t[k - 1]))
    return np.asarray(out)


# --------------------------------------------------------------------------- refitting


def bfgs(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, hess_inv: np.ndarray | None,
         gtol: float, max_iter: int = 500) -> tuple[np.ndarray, bool, int]:
    r"""Minimise f by BFGS from ``x0`` with the inverse Hessian starting at ``hess_inv`` (None:
    the identity), until :math:`\max_k|\partial f/\partial x_k| <` ``gtol``: ``(x, converged,
    iterations)``; ``fg`` returns f (inf where not admissible) and its gradient.

    The step :math:`d = -H\nabla f` is taken whole when it decreases f enough (Armijo,
    :math:`f(x + td) \le f(x) + 10^{-4}t\nabla f^\top d`), else shortened by quadratic
    interpolation; H is updated by the BFGS formula in its O(q^2) form (Nocedal & Wright, 2006,
    eq. 6.17, written out with :math:`s = x_{k+1} - x_k`, :math:`y = \nabla f_{k+1} - \nabla f_k`,
    :math:`\rho = 1/s^\top y`):

    .. math:: H_{k+1} = H_k + \rho^2(s^\top y + y^\top H_ky)ss^\top - \rho(H_kys^\top + sy^\top H_k),

    skipped when :math:`s^\top y \le 0`. H is kept in compact form, :math:`H_0` and the pairs
    :math:`(s_j, H_jy_j)` of the updates (
    :math:`H_kv = H_0v + \sum_j [c_js_j(s_j^\top v) - \rho_j(s_j(H_jy_j)^\top v + H_jy_j(s_j^\top v))]`,
    :math:`c_j = \rho_j^2(s_j^\top y_j + y_j^\top H_jy_j)`): one product with :math:`H_0` per
    step (:math:`H_0g_{k+1}`; :math:`H_ky = H_kg_{k+1} - H_kg_k`), O(kq) for the updates, instead
    of updating a q x q matrix (scipy's BFGS forms :math:`(I-\rho sy^\top)H(I-\rho ys^\top)` with
    two q x q x q products per step: 7 ms at q = 286, more than the FIML likelihood).

    References
    ----------
    Nocedal, J., & Wright, S. J. (2006). Numerical Optimization (2nd ed.). Springer.
    """
    x = np.asarray(x0, dtype=float).copy()
    h0 = None if hess_inv is None else np.asarray(hess_inv, dtype=float)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (s_j, H_j y_j)
    coefs: list[tuple[float, float]] = []  # (c_j, rho_j)

    def h0_dot(v):
        return v.copy() if h0 is None else h0 @ v

    def h_dot(v, h0v):  # H_k v from H_0 v
        if not pairs:
            return h0v
        s_, hy_ = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        c_, rho_ = np.array([c[0] for c in coefs]), np.array([c[1] for c in coefs])
        sv, hyv = s_ @ v, hy_ @ v
        return h0v + (c_ * sv - rho_ * hyv) @ s_ - (rho_ * sv) @ hy_

    f, g = fg(x)
    if not np.isfinite(f):
        return x, False, 0
    h0g = h0_dot(g)
    hg = h0g
    for it in range(max_iter):
        if np.max(np.abs(g)) < gtol:
            return x, True, it
        d = -hg
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction (H lost definiteness): restart from H_0
            pairs.clear()
            coefs.clear()
            hg = h0g
            d = -hg
            slope = float(g @ d)
        t = 1.0
        for _ in range(40):
            f_new, g_new = fg(x + t * d)
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * slope:
                break
            # the minimum of the quadratic through f, the slope and f_new, kept within [0.1t, 0.5t]
            shrink = 0.5 if not np.isfinite(f_new) else -slope * t / (2 * (f_new - f - slope * t))
            t *= min(0.5, max(0.1, shrink))
        else:
            return x, False, it
        s = t * d
        y = g_new - g
        sy = float(s @ y)
        h0g = h0_dot(g_new)
        hg_new = h_dot(g_new, h0g)  # H_k g_{k+1}
        if sy > 0:
            hy = hg_new - hg  # H_k y
            c, rho = (sy + float(y @ hy)) / sy ** 2, 1.0 / sy
            pairs.append((s, hy))
            coefs.append((c, rho))
            sg, hyg = float(s @ g_new), float(hy @ g_new)
            hg_new = hg_new + (c * sg - rho * hyg) * s - (rho * sg) * hy
        x, f, g, hg = x + s, f_new, g_new, hg_new
    return x, bool(np.max(np.abs(g)) < gtol), max_iter


def _fixed_x_cells(model: Model) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per group the parameter-table rows :meth:`~analysis.sem.model.Model.with_sample` fills with
    the sample moments of the fixed.x covariates (``exo == 1``, fixed, no ``ustart``): the rows of
    covariances (and their cells a, b) and of means (and their variable), in the group's ``ov``
    order."""
    pt = model.partable
    exo, free, ustart = pt["exo"].to_numpy(), model.free, pt["ustart"].to_numpy(dtype=float)
    lhs, op, rhs = pt["lhs"].to_numpy(), pt["op"].to_numpy(), pt["rhs"].to_numpy()
    out = []
    for blk in model.blocks:
        ix = {v: k for k, v in enumerate(blk.ov)}
        rows = [k for k in blk.rows if exo[k] == 1 and free[k] == 0 and np.isnan(ustart[k])]
        cov = [k for k in rows if op[k] == "~~"]
        mean = [k for k in rows if op[k] == "~1"]
        out.append((np.array(cov, dtype=int), np.array([ix[lhs[k]] for k in cov], dtype=int),
                    np.array([ix[rhs[k]] for k in cov], dtype=int), np.array(mean, dtype=int),
                    np.array([ix[lhs[k]] for k in mean], dtype=int)))
    return out


def _with_fixed_x(model: Model, cells, stats: list[SampleStats]) -> Model:
    """``model.with_sample(stats)`` for a draw, without its search of the parameter table: the
    same model with the fixed.x rows (``cells`` from :func:`_fixed_x_cells`) at ``stats``."""
    values = model.values.copy()
    for (cov, a, b, mean, m), st in zip(cells, stats):
        values[cov] = st.cov[a, b]
        values[mean] = st.mean[m]
    out = copy.copy(model)
    out.values = values
    return out


def _once(build: Callable[[], object]) -> Callable[[], object]:
    """``build``, called at most once: later calls return its first result."""
    made: list = []

    def get():
        if not made:
            made.append(build())
        return made[0]
    return get


class Resampler:
    """Refits ``fit``'s model to resampled data: built once from the full-sample fit and its data,
    called once per draw (in a worker process: it pickles without the compiled constraints).

    ``missing = "listwise"`` resamples the complete cases on the model's observed variables,
    ``"fiml"`` the rows FIML used (at least one answer, every fixed.x covariate present), each
    group on its own. :meth:`refit` fits given rows; :meth:`draw` resamples them with a seed.
    """

    def __init__(self, fit: EngineFit, data: pd.DataFrame, missing: str = "listwise", group: str | None = None):
        if missing not in ("listwise", "fiml"):
            raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
        model = fit.model
        fiml = missing == "fiml"
        if fiml != model.meanstructure and fiml:
            raise InputError("bootstrap with missing = 'fiml' needs a fit with a mean structure (missing = 'fiml')")
        if group is None and model.ngroups > 1:
            raise InputError("bootstrap of a model with several groups: name the group column")
        self.model, self.fiml, self.x = model, fiml, np.asarray(fit.x, dtype=float)
        self.stats = fit.stats
        self.values = []
        for blk, st in zip(model.blocks, fit.stats):
            part = data if group is None else data[data[group].astype(str) == st.label]
            x = part[list(blk.ov)].apply(pd.to_numeric, errors="coerce")
            if fiml:
                y_cols = [v for v in blk.ov if v not in set(blk.ov_x)]
                x = x[x[list(blk.ov_x)].notna().all(axis=1) & x[y_cols].notna().any(axis=1)]
            else:
                x = x.dropna()
            if len(x) != st.n:
                raise ValueError(f"bootstrap: {len(x)} rows to resample but the fit used {st.n}: "
                                 "pass the data and missing-data method of the fit")
            self.values.append(x.to_numpy(dtype=float))
        # the full sample's patterns (their layout built once; listwise: one, complete): a draw
        # reweights their rows by its resample counts
        full = [patterns_of_values(v) for v in self.values]
        self.full_patterns = [pt for pt, _ in full]
        self.order = [order for _, order in full]
        self.free_rows = model_free_rows(model)
        self.exo = [np.array([blk.ov.index(v) for v in blk.ov_x], dtype=int) for blk in model.blocks]
        self.fixed_x = _fixed_x_cells(model)
        system = ConstraintSystem(model, build_constraints(model.partable))
        self.constrained = bool(system.n_eq or system.n_in)
        hessian = 2.0 * np.asarray(fit.information, dtype=float) / sum(st.n for st in fit.stats)
        try:
            hess_inv = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            hess_inv = np.linalg.pinv(hessian)
        hess_inv = (hess_inv + hess_inv.T) / 2
        # a singular information: BFGS starts from the identity
        self.hess_inv = hess_inv if np.all(np.isfinite(hess_inv)) and np.linalg.eigvalsh(hess_inv).min() > 0 else None
        self._constraints = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_constraints"] = None  # compiled expressions do not pickle: rebuilt in the worker
        return state

    @property
    def constraints(self):
        if self._constraints is None:
            self._constraints = build_constraints(self.model.partable)
        return self._constraints

    @property
    def width(self) -> int:
        return self.model.nfree + len(self.constraints.defined)

    def _estimator(self, samples: list[np.ndarray], rows: list[np.ndarray] | None = None):
        """The model with the samples' fixed.x moments, a function returning the engine's
        estimator of the samples (built at the first call: a draw that converges by BFGS on its
        moments never needs it) and, when ``rows`` (their row numbers in :attr:`values`) are given, the draw's
        :class:`~analysis.sem.fiml.PatternMoments` per group: the resample counts as row weights
        on the full sample's patterns (no pattern search per draw; listwise one complete pattern)."""
        stats_, pats, weights, moments = [], [], [], []
        for g, (st, ix) in enumerate(zip(self.stats, self.exo)):
            y = None if samples is None else samples[g]
            n_g = len(y) if rows is None else len(rows[g])
            w = None if rows is None else np.bincount(rows[g], minlength=len(self.values[g]))[self.order[g]]
            if self.fiml:
                cov, mean = st.cov.copy(), st.mean.copy()  # only the covariates' block is used: theirs
                if len(ix):
                    xs = y[:, ix] if y is not None else self.values[g][rows[g][:, None], ix]
                    mx = xs.mean(axis=0)
                    cov[np.ix_(ix, ix)] = (xs - mx).T @ (xs - mx) / n_g
                    mean[ix] = mx
                if rows is None:
                    pats.append(patterns_of_values(y)[0])
                else:
                    pats.append(self.full_patterns[g])
                    weights.append(w)
            elif rows is None:
                mean = y.mean(axis=0)
                cov = (y - mean).T @ (y - mean) / len(y)
            else:
                moments.append(pattern_moments(self.full_patterns[g].layout, w))
                mean = moments[-1].sy / moments[-1].n
                cov = moments[-1].syy / moments[-1].n - np.outer(mean, mean)
            stats_.append(SampleStats(label=st.label, ov=st.ov, n=n_g, cov=cov, mean=mean))
        model = _with_fixed_x(self.model, self.fixed_x, stats_) if any(len(ix) for ix in self.exo) else self.model
        if not self.fiml:
            return model, _once(lambda: MLEstimator(model, stats_)), moments or None
        if rows is None:
            return model, _once(lambda: FIMLEstimator(model, stats_, pats)), None
        # a resample: its moments alone (what FIMLEstimator computes first), the estimator itself
        # only if the draw falls back on the engine's optimiser
        moments = [pattern_moments(pt.layout, w) for pt, w in zip(pats, weights)]
        return model, _once(lambda: FIMLEstimator(model, stats_, pats, row_weights=weights)), moments

    def refit(self, samples: list[np.ndarray] | None,
              rows: list[np.ndarray] | None = None) -> tuple[np.ndarray, bool, bool]:
        """Fit the model to ``samples`` (one array of rows per group, columns in the block's
        ``ov`` order; ``rows`` their row numbers in :attr:`values`, if they are resampled from
        them; with ``rows``, ``samples`` may be None: ``values[g][rows[g]]``) from the full-sample
        estimates: (free and defined values, converged, admissible).

        The draw's discrepancy is :math:`-2\\log L/N` up to a constant: from its
        weighted moments (:func:`analysis.sem.fiml.nll_gradient`: complete data are one pattern;
        without a mean structure the means are the draw's sample means), or the estimator's
        when the rows are not given."""
        model, estimator, moments = self._estimator(samples, rows)
        x, ok = self.x, False
        if not self.constrained:
            if moments is not None:
                n = sum(m.n for m in moments)
                means = None if model.meanstructure else [m.sy / m.n for m in moments]

                def objective(z):
                    nll, grad = nll_gradient(model, moments, self.free_rows, z, means)
                    return (2 * nll / n, 2 * grad / n) if np.isfinite(nll) else (np.inf, np.zeros_like(z))
            else:
                est = estimator()

                def objective(z):
                    f, g, _ = est.scoring(z, information=False)
                    return (f, g) if np.isfinite(f) else (np.inf, np.zeros_like(z))

            x, ok, _ = bfgs(objective, self.x, self.hess_inv, GTOL)
        if not ok:  # constraints, or a line search that lost precision: the engine's optimiser
            with np.errstate(all="ignore"):
                opt = optimise(estimator(), model, self.constraints, self.x)
            x, ok = opt.x, opt.converged
        if not ok:
            return np.full(self.width, np.nan), False, True
        mats = model.matrices(x)
        admissible = all(bool(np.all(np.diag(m["theta"]) >= 0) and np.all(np.diag(m["psi"]) >= 0)) for m in mats)
        return np.concatenate([x, self.constraints.defined_values(model.row_values(x))]), True, admissible

    def draw(self, seed) -> tuple[np.ndarray, bool, bool]:
        """One bootstrap draw: each group's rows resampled with replacement by the stream of
        ``seed`` (a ``SeedSequence``), then :meth:`refit`."""
        rng = np.random.default_rng(seed)
        rows = [rng.integers(0, len(v), len(v)) for v in self.values]
        return self.refit(None, rows)  # the rows' values are read from their numbers


def _refit(task) -> tuple[int, np.ndarray, bool, bool]:
    """One bootstrap draw: (draw, values, converged, admissible)."""
    draw, seed_seq, resampler = task
    return (draw, *resampler.draw(seed_seq))


def bootstrap_sem(data: pd.DataFrame, fit: EngineFit, draws: int = 2000, seed: int = 0, jobs: int | None = None,
                  missing: str = "listwise", progress: Callable[[int], None] | None = None,
                  group: str | None = None, scheduler=None) -> BootstrapResult:
    """Bootstrap the model of ``fit`` on ``data`` (the data it was fitted to).

    Parameters
    ----------
    data : DataFrame
        The respondents; with ``missing = "listwise"`` the complete cases on the model's observed
        variables are resampled (as lavaan), with ``"fiml"`` every respondent FIML used.
    fit : EngineFit
        The full-sample fit (:func:`analysis.sem.api.fit_model`, estimator ML, MLR or MLM: the
        estimates are the same), with the same ``missing``.
    draws : int
        Number of bootstrap samples B (lavaan's ``bootstrap = 1000`` default; gapscale 2000).
    seed : int or numpy.random.SeedSequence
        Seed of the draws; the same seed gives the same draws for any ``jobs``.
    jobs : int, optional
        Worker processes (default: the machine's cores). 1 runs in this process.
    progress : callable, optional
        Called with the number of draws just finished.
    group : str, optional
        The group column of a multi-group fit (rows are resampled within groups).
    scheduler : str or distributed.Client, optional
        Run the draws on this Dask cluster instead of local processes
        (:func:`analysis.executor.run_tasks`); the draws are the same.

    Raises
    ------
    InputError
        Too few draws, bad ``jobs`` or ``missing``, or a fit by an estimator the bootstrap does
        not refit (WLSMV, ULSMV).

    In R: ``sem(model, data, se = "bootstrap", bootstrap = B)``;
    ``parameterEstimates(fit, boot.ci.type = "perc")`` or ``"bca.simple"``.
    """
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 2:
        raise InputError(f"bootstrap draws: a whole number >= 2, got {draws!r}")
    if isinstance(fit.estimator, WLSEstimator):
        raise InputError(f"bootstrap: refits with estimator {fit.estimator.name} are not available; use bootstrap 0 "
                         "(the estimator's own intervals)")
    resampler = Resampler(fit, data, missing=missing, group=group)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seeds = root.spawn(draws)
    tasks = [(b, seeds[b], resampler) for b in range(draws)]
    results = run_tasks(_refit, tasks, jobs=jobs, scheduler=scheduler, minimum_batch=CHUNK, progress=progress)
    table = pd.DataFrame(np.vstack([r[1] for r in results]), columns=draw_columns(fit))
    table.insert(0, "draw", np.arange(draws))
    converged = sum(r[2] for r in results)
    inadmissible = sum(1 for r in results if r[2] and not r[3])
    return BootstrapResult(draws=table.set_index("draw"), requested=draws, converged=converged,
                           failed=draws - converged, inadmissible=inadmissible,
                           seed=int(root.entropy) if isinstance(root.entropy, int) else 0)
