"""Nonparametric bootstrap of a fitted structural equation model, as lavaan's
``se = "bootstrap"`` with percentile and bias-corrected intervals.

Each draw resamples the respondents with replacement (Efron & Tibshirani, 1993), refits the
model and keeps the free parameters and the defined (``:=``) parameters. Draws are independent
of each other and of the number of worker processes: draw b uses its own random stream, the
b-th child of ``numpy.random.SeedSequence(seed)``, so the same seed gives the same draws on one
core or many.

A draw starts from the full-sample estimates and takes quasi-Newton steps with the full-sample
information matrix as a fixed metric and the exact gradient of the draw's own discrepancy
(ML, or FIML's -log L), so most draws converge in a few cheap iterations; a draw that does not
converge that way is refitted from the same start by Fisher scoring/BFGS
(:func:`analysis.sem._ml_fisher_scoring`) or BFGS. A draw that still does not converge is
counted as failed: its row is NaN, it is reported, and the intervals are based on the
converged draws (as lavaan does; lavaan also keeps inadmissible draws, and so does this module,
counting them).

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

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from analysis.sem.single import SEMFit, ParameterTable, _information, _ml_fisher_scoring, _Model, _row_values, defined_values
from analysis.errors import InputError

__all__ = ["BootstrapResult", "bootstrap_sem", "norm_inter"]

CHUNK = 25  # draws per task sent to a worker process
GTOL = 1e-6  # largest gradient element at convergence (F, or -log L / N)


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap draws of a fitted model.

    Attributes
    ----------
    draws : DataFrame
        One row per draw (``draw`` 0..B-1), one column per free parameter (``lhs op rhs`` of
        its first row in the parameter table) and per defined parameter; NaN for a failed draw.
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

    def intervals(self, fit: SEMFit, level: float = 0.95) -> pd.DataFrame:
        """Bootstrap SE and intervals for every row of ``fit.parameters``: ``boot_se``,
        ``boot_pct_lower``, ``boot_pct_upper``, ``boot_bc_lower``, ``boot_bc_upper``. Fixed
        parameters get their value at both ends (as lavaan); rows the bootstrap does not
        cover (intercepts added by FIML) get NaN."""
        ok = self.draws.dropna()
        keys = _keys(fit.partable)
        est_by_key = _estimates_by_key(fit)
        alpha = np.array([(1 - level) / 2, (1 + level) / 2])
        z_alpha = stats.norm.ppf(alpha)
        out = []
        fixed = {(r.lhs, r.op, r.rhs): r.value for r in fit.partable.rows.itertuples() if r.free == 0}
        for row in fit.parameters.itertuples():
            key = (row.lhs, row.op, row.rhs)
            column = keys.get(key)
            if column is None:
                value = fixed.get(key, np.nan)
                out.append((np.nan if key not in fixed else 0.0, value, value, value, value))
                continue
            t = ok[column].to_numpy()
            t0 = est_by_key[column]
            se = float(np.std(t, ddof=1)) if len(t) > 1 else np.nan
            if len(t) < 2 or np.var(t) == 0:
                out.append((se, t0, t0, t0, t0))
                continue
            perc = norm_inter(t, alpha)
            w = stats.norm.ppf(np.mean(t < t0))
            bc = norm_inter(t, stats.norm.cdf(2 * w + z_alpha)) if np.isfinite(w) else np.array([np.nan, np.nan])
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
            lo, hi = stats.norm.ppf(k / (r_count + 1)), stats.norm.ppf((k + 1) / (r_count + 1))
            out.append(t[k - 1] + (stats.norm.ppf(a) - lo) / (hi - lo) * (t[k] - t[k - 1]))
    return np.asarray(out)


def _keys(pt: ParameterTable) -> dict[tuple[str, str, str], str]:
    """(lhs, op, rhs) of each free-parameter row and each defined parameter -> its draw column."""
    out = {}
    rows = pt.rows
    first = rows[rows["free"] > 0].drop_duplicates("free").sort_values("free")
    columns = [f"{r.lhs} {r.op} {r.rhs}" for r in first.itertuples()]
    for r in rows[rows["free"] > 0].itertuples():
        out[(r.lhs, r.op, r.rhs)] = columns[r.free - 1]
    for name, expression in pt.defined:
        out[(name, ":=", expression)] = name
    return out


def _columns(pt: ParameterTable) -> list[str]:
    rows = pt.rows
    first = rows[rows["free"] > 0].drop_duplicates("free").sort_values("free")
    return [f"{r.lhs} {r.op} {r.rhs}" for r in first.itertuples()] + [name for name, _ in pt.defined]


def _estimates_by_key(fit: SEMFit) -> dict[str, float]:
    pt = fit.partable
    values = np.concatenate([fit.theta, defined_values(pt, _row_values(pt, fit.theta))])
    return dict(zip(_columns(pt), values))


# --------------------------------------------------------------------------- refitting


def _fiml_groups(values: np.ndarray):
    """The rows by missingness pattern: ``(single, other)``. ``single`` stacks the patterns that
    miss at most one variable (arrays: missing index or -1, n, mean and covariance on n with
    zeros at the missing variable); ``other`` lists the rest as (observed, missing, n, mean, cov)."""
    observed = ~np.isnan(values)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    p = values.shape[1]
    single, other = ([], [], [], []), []
    for k, pattern in enumerate(patterns):
        rows = values[inverse.ravel() == k][:, pattern]
        mean = rows.mean(axis=0)
        dev = rows - mean
        cov = dev.T @ dev / len(rows)
        o, m = np.flatnonzero(pattern), np.flatnonzero(~pattern)
        if len(m) <= 1:
            full_mean, full_cov = np.zeros(p), np.zeros((p, p))
            full_mean[o], full_cov[np.ix_(o, o)] = mean, cov
            for store, value in zip(single, (m[0] if len(m) else -1, len(rows), full_mean, full_cov)):
                store.append(value)
        else:
            other.append((o, m, len(rows), mean, cov))
    return tuple(np.asarray(s) for s in single), other


def fiml_value_and_gradient(mdl: _Model, groups, z: np.ndarray) -> tuple[float, np.ndarray]:
    r"""-log L / N of FIML (without the :math:`2\pi` constant) and its gradient in
    (theta, intercepts).

    With :math:`P = \Sigma^{-1}`, a pattern missing one variable j has
    :math:`\Sigma_{oo}^{-1} = P - u u^\top / c` (zero at j) with :math:`u = P_{\cdot j}`,
    :math:`c = P_{jj}`, and :math:`\log|\Sigma_{oo}| = \log|\Sigma| + \log c` (the partitioned
    inverse); the sums over these patterns are then rank-one updates of one :math:`O(p^3)`
    product, so a survey with scattered missing answers costs little more than complete data.
    Patterns missing more variables are inverted one by one."""
    q = mdl.q
    th, nu = z[:q], z[q:]
    sig = mdl.sigma(th)[0]
    sign, logdet = np.linalg.slogdet(sig)
    if sign <= 0:
        return np.inf, np.zeros_like(z)
    prec = np.linalg.inv(sig)
    (miss, n_k, means, covs), other = groups
    n = n_k.sum() + sum(g[2] for g in other)
    # Patterns missing at most one variable (j = -1: complete).
    has = miss >= 0
    j = np.where(has, miss, 0)
    u = np.where(has[:, None], prec[:, j].T, 0.0)                    # k x p
    c = np.where(has, prec[j, j], 1.0)
    d = means - nu[None, :]
    d[has, j[has]] = 0.0
    pd_ = d @ prec                                                   # k x p: P d
    ud = np.einsum("kp,kp->k", u, d)
    cu = np.einsum("kij,kj->ki", covs, u)                            # C u
    ucu = np.einsum("ki,ki->k", u, cu)
    w = pd_ - u * (ud / c)[:, None]                                  # Sigma_oo^-1 d, zero at j
    total_c = np.einsum("k,kij->ij", n_k, covs)
    value = 0.5 * (np.sum(n_k * (logdet + np.log(c) - ucu / c + np.einsum("kp,kp->k", d, pd_) - ud**2 / c))
                   + np.sum(prec * total_c))
    v = cu @ prec                                                    # (P C u)^T, k x p
    pcp = prec @ total_c @ prec
    a = (n_k / c)[:, None] * u
    cross = v.T @ a
    g_sigma = 0.5 * (n_k.sum() * prec - u.T @ a - pcp + cross + cross.T
                     - u.T @ ((n_k * ucu / c**2)[:, None] * u) - w.T @ (n_k[:, None] * w))
    g_nu = -(n_k[:, None] * w).sum(axis=0)
    for o, m, nk, mean, cov in other:
        if len(m) <= len(o):  # partitioned inverse: O(p^2 |m|) instead of a new inversion
            pmm = prec[np.ix_(m, m)]
            sign_o, logdet_m = np.linalg.slogdet(pmm)
            pom = prec[np.ix_(o, m)]
            inv = prec[np.ix_(o, o)] - pom @ np.linalg.solve(pmm, pom.T)
            logdet_o = logdet + logdet_m
        else:
            sign_o, logdet_o = np.linalg.slogdet(sig[np.ix_(o, o)])
            inv = np.linalg.inv(sig[np.ix_(o, o)])
        if sign_o <= 0:
            return np.inf, np.zeros_like(z)
        dd = mean - nu[o]
        inv_d = inv @ dd
        value += nk / 2 * (logdet_o + np.sum(inv * cov) + dd @ inv_d)
        g_sigma[np.ix_(o, o)] += nk / 2 * (inv - inv @ cov @ inv - np.outer(inv_d, inv_d))
        g_nu[o] -= nk * inv_d
    return value / n, np.concatenate([mdl.trace_gradient(th, g_sigma), g_nu]) / n


def _ml_value_and_gradient(mdl: _Model, s: np.ndarray, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """The ML discrepancy to ``s`` (up to a constant) and its gradient."""
    sig = mdl.sigma(theta)[0]
    sign, logdet = np.linalg.slogdet(sig)
    if sign <= 0:
        return np.inf, np.zeros_like(theta)
    sinv = np.linalg.inv(sig)
    return logdet + np.sum(s * sinv), mdl.trace_gradient(theta, sinv - sinv @ s @ sinv)


def _refit(task) -> tuple[int, np.ndarray, bool, bool]:
    """One bootstrap draw: resample, refit, return (draw, values, converged, admissible)."""
    draw, seed_seq, values, pt, start, hess_inv, missing = task
    mdl = _Model(pt)
    rng = np.random.default_rng(seed_seq)
    sample = values[rng.integers(0, len(values), len(values))]
    q = mdl.q
    if missing == "fiml":
        groups = _fiml_groups(sample)
        objective = lambda z: fiml_value_and_gradient(mdl, groups, z)  # noqa: E731
    else:
        s = np.cov(sample, rowvar=False, bias=True)
        objective = lambda th: _ml_value_and_gradient(mdl, s, th)  # noqa: E731
    # BFGS from the full-sample estimates, its inverse Hessian started at the full-sample
    # (inverse) information: the draws are near the full sample, so a few steps suffice.
    res = optimize.minimize(objective, start, jac=True, method="BFGS",
                            options={"gtol": GTOL, "maxiter": 2000, "hess_inv0": hess_inv})
    ok = bool(res.success or np.max(np.abs(res.jac)) < 10 * GTOL)
    theta = res.x[:q]
    if not ok and missing != "fiml":  # e.g. a line search that lost precision: Fisher scoring, then BFGS
        theta, _, ok, _ = _ml_fisher_scoring(mdl, s, res.x, 500, 1e-12, alternatives=(start,))
    elif not ok:
        res = optimize.minimize(objective, res.x, jac=True, method="BFGS", options={"gtol": GTOL, "maxiter": 5000})
        ok, theta = bool(res.success or np.max(np.abs(res.jac)) < 10 * GTOL), res.x[:q]
    if not ok:
        return draw, np.full(q + len(pt.defined), np.nan), False, True
    mats = mdl.matrices(theta)
    admissible = bool(np.all(np.diag(mats["theta"]) >= 0) and np.all(np.diag(mats["psi"]) >= 0))
    return draw, np.concatenate([theta, defined_values(pt, _row_values(pt, theta))]), True, admissible


def _run(tasks):
    # One BLAS thread per worker: the draws are the parallel unit; threaded BLAS inside each of
    # them would oversubscribe the cores.
    with threadpool_limits(1):
        return [_refit(t) for t in tasks]


def bootstrap_sem(data: pd.DataFrame, fit: SEMFit, draws: int = 2000, seed: int = 0, jobs: int | None = None,
                  missing: str = "listwise", progress: Callable[[int], None] | None = None) -> BootstrapResult:
    """Bootstrap the model of ``fit`` on ``data`` (the data it was fitted to).

    Parameters
    ----------
    data : DataFrame
        The respondents; with ``missing = "listwise"`` the complete cases on the model's observed
        variables are resampled (as lavaan), with ``"fiml"`` every respondent with an answer.
    fit : SEMFit
        The full-sample fit (:func:`analysis.sem.fit_sem`, estimator ML or MLR: the estimates
        are the same).
    draws : int
        Number of bootstrap samples B (lavaan's ``bootstrap = 1000`` default; gapscale 2000).
    seed : int or numpy.random.SeedSequence
        Seed of the draws; the same seed gives the same draws for any ``jobs``.
    jobs : int, optional
        Worker processes (default: the machine's cores). 1 runs in this process.
    progress : callable, optional
        Called with the number of draws just finished.

    In R: ``sem(model, data, se = "bootstrap", bootstrap = B)``;
    ``parameterEstimates(fit, boot.ci.type = "perc")`` or ``"bca.simple"``.
    """
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 2:
        raise InputError(f"bootstrap draws: a whole number >= 2, got {draws!r}")
    if missing not in ("listwise", "fiml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    pt = fit.partable
    obs = list(pt.observed)
    x = data[obs].apply(pd.to_numeric, errors="coerce")
    x = x.dropna() if missing == "listwise" else x[x.notna().any(axis=1)]
    values = x.to_numpy(dtype=float)
    mdl = _Model(pt)
    sinv = np.linalg.inv(mdl.sigma(fit.theta)[0])
    info = _information(sinv, mdl.derivatives(fit.theta))  # per case, of F/2
    q, p = mdl.q, mdl.p
    if missing == "fiml":
        intercepts = fit.parameters[fit.parameters["op"] == "~1"].set_index("lhs")["est"]
        means = np.nanmean(values, axis=0)
        start = np.concatenate([fit.theta, [intercepts.get(v, means[k]) for k, v in enumerate(obs)]])
        hessian = np.block([[info, np.zeros((q, p))], [np.zeros((p, q)), sinv]])
    else:
        start = fit.theta
        hessian = 2 * info  # F's Hessian is twice the information
    try:
        hess_inv = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        hess_inv = np.linalg.pinv(hessian)
    hess_inv = (hess_inv + hess_inv.T) / 2
    if np.linalg.eigvalsh(hess_inv).min() <= 0:  # a singular information: start BFGS from the identity
        hess_inv = None
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seeds = root.spawn(draws)
    tasks = [(b, seeds[b], values, pt, start, hess_inv, missing) for b in range(draws)]
    chunks = [tasks[i:i + CHUNK] for i in range(0, draws, CHUNK)]
    jobs = (os.cpu_count() or 1) if jobs is None else int(jobs)
    if jobs < 1:
        raise InputError(f"jobs: a whole number >= 1, got {jobs!r}")
    results = []
    if jobs == 1:
        for chunk in chunks:
            results.extend(_run(chunk))
            if progress:
                progress(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for done in pool.map(_run, chunks):
                results.extend(done)
                if progress:
                    progress(len(done))
    results.sort(key=lambda r: r[0])
    table = pd.DataFrame(np.vstack([r[1] for r in results]), columns=_columns(pt))
    table.insert(0, "draw", np.arange(draws))
    converged = sum(r[2] for r in results)
    inadmissible = sum(1 for r in results if r[2] and not r[3])
    return BootstrapResult(draws=table.set_index("draw"), requested=draws, converged=converged,
                           failed=draws - converged, inadmissible=inadmissible,
                           seed=int(root.entropy) if isinstance(root.entropy, int) else 0)
