"""Exploratory factor analysis that agrees with psych::fa.

Suitability (KMO, Bartlett), how many factors (parallel analysis, Velicer's MAP, Kaiser, scree),
extraction (minimum residual, maximum likelihood, principal axis), rotation (via
:mod:`analysis.rotation`), and the results psych reports: loadings, communalities,
uniquenesses, item complexity, factor correlations, variance accounted for, and the fit of the
factor model.

References
----------
Bartlett, M. S. (1950). Tests of significance in factor analysis. British Journal of
    Psychology 3(2), 77-85.
Buja, A., & Eyuboglu, N. (1992). Remarks on parallel analysis. Multivariate Behavioral
    Research 27(4), 509-540.
Harman, H. H., & Jones, W. H. (1966). Factor analysis by minimizing residuals (minres).
    Psychometrika 31(3), 351-368.
Hofmann, R. J. (1978). Complexity and simplicity as objective indices descriptive of factor
    solutions. Multivariate Behavioral Research 13(2), 247-250.
Horn, J. L. (1965). A rationale and test for the number of factors in factor analysis.
    Psychometrika 30(2), 179-185.
Kaiser, H. F. (1970). A second generation little jiffy. Psychometrika 35(4), 401-415.
Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality
    Research. R package version 2.2.9.
Velicer, W. F. (1976). Determining the number of components from the matrix of partial
    correlations. Psychometrika 41(3), 321-327.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from analysis.csvfile import write_csv
from analysis.distributions import chi2_sf
from analysis.errors import InputError
from analysis.sem import fit as fitm
from analysis.warnings import ConvergenceWarning, GapscaleWarning

__all__ = [
    "EFAResult",
    "HeywoodWarning",
    "bartlett_sphericity",
    "efa",
    "extract",
    "kaiser_rule",
    "kmo",
    "max_factors",
    "parallel_analysis",
    "parallel_suggestion",
    "reduced_eigenvalues",
    "smc",
    "velicer_map",
]

EXTRACTION = ("minres", "ml", "pa")


class HeywoodWarning(GapscaleWarning):
    """A communality at or above 1 (an (ultra-)Heywood case): the solution is inadmissible."""


def _corr(r) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise InputError(f"expected a square correlation matrix, got shape {r.shape}")
    if np.isnan(r).any():
        raise InputError("the correlation matrix has missing values (an item without variance or no pairs)")
    return r


def smc(r) -> np.ndarray:
    """Squared multiple correlations, ``1 - 1 / diag(R^-1)`` (``psych::smc``)."""
    return _squared_multiple_correlations(_corr(r))


def _squared_multiple_correlations(r: np.ndarray) -> np.ndarray:
    return 1 - 1 / np.diag(np.linalg.inv(r))


# --------------------------------------------------------------------------- suitability


def kmo(r: pd.DataFrame) -> tuple[float, pd.Series]:
    """Kaiser-Meyer-Olkin measure of sampling adequacy, overall and per item (Kaiser, 1970).

    .. math:: MSA = \\frac{\\sum_{i \\ne j} r_{ij}^2}{\\sum_{i \\ne j} r_{ij}^2 + \\sum_{i \\ne j} q_{ij}^2}

    with :math:`q_{ij}` the partial (anti-image) correlations from :math:`R^{-1}`; per item, the
    sums run over its row. In R: ``psych::KMO(r)`` (``$MSA``, ``$MSAi``).
    """
    names = list(r.index) if isinstance(r, pd.DataFrame) else None
    r = _corr(r)
    inv = np.linalg.inv(r)
    d = 1 / np.sqrt(np.diag(inv))
    q = inv * d[:, None] * d[None, :]
    np.fill_diagonal(q, 0)
    r0 = r.copy()
    np.fill_diagonal(r0, 0)
    r2, q2 = (r0**2).sum(axis=0), (q**2).sum(axis=0)
    overall = r2.sum() / (r2.sum() + q2.sum())
    return float(overall), pd.Series(r2 / (r2 + q2), index=names, name="msa")


def bartlett_sphericity(r, n: int) -> dict:
    """Bartlett's (1950) test that the correlation matrix is an identity matrix.

    .. math:: \\chi^2 = -\\left(n - 1 - \\frac{2p + 5}{6}\\right)\\ln|R|,\\qquad df = p(p-1)/2

    In R: ``psych::cortest.bartlett(r, n)``.
    """
    r = _corr(r)
    p = r.shape[0]
    sign, logdet = np.linalg.slogdet(r)
    if sign <= 0:
        raise InputError("the correlation matrix is singular (an item is a linear combination of others); "
                         "Bartlett's test is not defined")
    chisq = -(n - 1 - (2 * p + 5) / 6) * logdet
    df = p * (p - 1) / 2
    return {"chisq": float(chisq), "df": int(df), "pvalue": float(chi2_sf(chisq, df))}


# --------------------------------------------------------------------------- how many factors


def kaiser_rule(r) -> int:
    """Number of eigenvalues of the correlation matrix above 1 (Kaiser-Guttman)."""
    return int((np.linalg.eigvalsh(_corr(r)) > 1).sum())


def velicer_map(r, max_factors: int | None = None) -> pd.DataFrame:
    """Velicer's (1976) minimum average partial correlation, with principal components.

    For m = 0, 1, ... components, the average squared off-diagonal partial correlation after
    partialling out the first m components; the number of factors is the m with the smallest
    value (m >= 1). Returns ``m, map`` rows. In R: ``psych::VSS(r, n, fm = "pc", rotate = "none")$map``
    gives the values for m = 1..n.
    """
    r = _corr(r)
    p = r.shape[0]
    max_factors = p - 1 if max_factors is None else min(max_factors, p - 1)
    w, v = np.linalg.eigh(r)
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    out = []
    for m in range(0, max_factors + 1):
        a = v[:, :m] * np.sqrt(np.maximum(w[:m], 0))
        c = r - a @ a.T
        d = np.sqrt(np.diag(c))
        if np.any(d <= 1e-12):
            break
        partial = c / d[:, None] / d[None, :]
        out.append((m, (np.sum(partial**2) - p) / (p * (p - 1))))
    return pd.DataFrame(out, columns=["m", "map"])


def max_factors(n_items: int) -> int:
    """The most factors an EFA of ``n_items`` items can extract.

    The largest m < p whose degrees of freedom
    :math:`p(p-1)/2 - pm + m(m-1)/2` are not negative (psych's ``dof``; with more factors the
    model has more free parameters than the correlations it must reproduce). 0 below 3 items.
    """
    p = int(n_items)
    ok = [m for m in range(1, p) if p * (p - 1) / 2 - p * m + m * (m - 1) / 2 >= 0]
    return max(ok) if ok else 0


def _eigen_pc(r):
    return np.sort(np.linalg.eigvalsh(r))[::-1]


def reduced_eigenvalues(r, smc: bool = False) -> np.ndarray:
    """Eigenvalues, largest first, of the reduced correlation matrix: psych's factor eigenvalues.

    The diagonal of ``r`` is replaced by communalities: by default (``smc=False``) those of the
    one-factor minimum-residual solution, :math:`h_i^2 = \\lambda_i^2` from
    :func:`extract` ``(r, 1, "minres")``, as ``psych::fa.parallel`` does with its default
    ``SMC = FALSE``; with ``smc=True`` the squared multiple correlations (:func:`smc`), as
    ``fa.parallel(SMC = TRUE)`` and most textbook accounts of parallel analysis do. The SMCs are
    lower bounds of the communalities, so the SMC-reduced eigenvalues are smaller, the random ones
    more so, and more factors pass (on psych::bfi's 25 items, 2800 respondents: 8 against 6).

    In R: ``psych::fa(r, nfactors = 1, fm = "minres", rotate = "none")$values``; with
    ``smc=True``: ``{diag(r) <- psych::smc(r); eigen(r)$values}``.
    """
    r = _corr(r)
    reduced = r.copy()
    if smc:
        np.fill_diagonal(reduced, _squared_multiple_correlations(r))
    else:
        loadings = extract(r, 1, "minres").loadings
        np.fill_diagonal(reduced, np.sum(loadings**2, axis=1))
    return np.sort(np.linalg.eigvalsh(reduced))[::-1]


PARALLEL_COLUMNS = [
    "factor", "observed_pc", "random_pc", "observed_fa", "random_fa",
    "random_pc_mean", "random_pc_sd", "random_fa_mean", "random_fa_sd",
    "resampled_pc", "resampled_pc_mean", "resampled_pc_sd",
    "resampled_fa", "resampled_fa_mean", "resampled_fa_sd",
]
_MAX_RESAMPLE_TRIES = 100


def _resample(x: np.ndarray, columns, correlate, rng: np.random.Generator) -> np.ndarray:
    """A correlation matrix of data drawn column by column with replacement from ``x`` (NaN
    cells included), redrawn while it has missing entries (a column drawn without variance)."""
    n = len(x)
    for _ in range(_MAX_RESAMPLE_TRIES):
        drawn = np.column_stack([x[rng.integers(0, n, n), j] for j in range(x.shape[1])])
        rr = np.asarray(correlate(pd.DataFrame(drawn, columns=columns)), dtype=float)
        if not np.isnan(rr).any():
            return rr
    raise InputError(f"parallel analysis: {_MAX_RESAMPLE_TRIES} resampled data sets in a row had an item without "
                     "variance or without pairs; an item has too few answers off its most common value")


def parallel_analysis(data: pd.DataFrame, correlate, rng: np.random.Generator, n_iter: int = 20,
                      percentile: float = 95.0, progress=None, smc: bool = False,
                      resampled_correlate=None) -> pd.DataFrame:
    """Horn's (1965) parallel analysis, as ``psych::fa.parallel`` does it by default.

    Two sets of observed eigenvalues: of the correlation matrix (components, ``pc``) and of the
    reduced correlation matrix (factors, ``fa``; :func:`reduced_eigenvalues`: one-factor
    minres communalities on the diagonal, or with ``smc=True`` the squared multiple
    correlations). ``correlate`` maps a DataFrame to its correlation matrix (Pearson, or
    polychoric).

    Each of ``n_iter`` iterations makes two random data sets of the same size as ``data``
    (``n`` rows, missing cells counted) and takes the same two sets of eigenvalues of each:

    * simulated: ``n x p`` independent standard normal values, Pearson correlations;
    * resampled: every column drawn with replacement from its own values (missing cells
      included), independently of the others (Buja & Eyuboglu, 1992), which keeps each item's
      distribution and removes the correlations; correlated with ``resampled_correlate``
      (default ``correlate``), so polychoric data get polychoric random matrices. Drawn again if
      a column comes out without variance.

    The number of factors (components) is the number of leading observed eigenvalues that
    exceed the ``percentile`` (linear interpolation, R's ``quantile`` type 7) of the
    simulated ones, counted up to the first that does not (:func:`parallel_suggestion`): the
    ``nfact`` and ``ncomp`` psych reports with ``sim = TRUE`` (its default), which compares
    with the simulated data even when it resamples too. The resampled eigenvalues are reported
    beside them, as psych's ``fa.simr``/``pc.simr``.

    The random eigenvalues come from gapscale's generator, not R's, so they agree with psych's
    in distribution (the means to within Monte Carlo error: tests/test_parallel.py); the
    observed eigenvalues and, away from ties, the counts agree exactly.

    Parameters
    ----------
    data : DataFrame
        Respondents x items, numeric, missing cells as NaN.
    correlate : callable
        DataFrame -> correlation matrix (array), as used for the observed matrix.
    rng : numpy.random.Generator
        The stage's generator; iterations draw from it in turn.
    n_iter : int
        Iterations (psych's ``n.iter``, default 20).
    percentile : float
        Percentile of the random eigenvalues an observed one must exceed, in (0, 100]
        (psych's ``quant`` times 100; default 95).
    progress : callable, optional
        Called as ``progress(1)`` after each iteration (a progress bar's tick, see
        ``pipeline.progress``).
    smc : bool
        Reduce with squared multiple correlations instead of the one-factor minres
        communalities (psych's ``SMC = TRUE``), for the observed and the random matrices.
    resampled_correlate : callable, optional
        The correlation of the resampled data sets, if not ``correlate``. The gapscale efa stage
        passes :func:`analysis.polychoric.polychoric_one_step` with polychoric correlations:
        the resampled items are independent by construction, and one Fisher-scoring step of
        the polychoric likelihood from 0 differs from its maximum by O(1/n), far inside the
        Monte Carlo spread of the random eigenvalues, at the cost of one matrix product instead
        of a likelihood maximised per pair (20 polychoric matrices of 300 items: ~170 CPU-s).
        It draws nothing from ``rng``, so the simulated eigenvalues, and with them the number of
        factors, are the same whichever is used; only the reported ``resampled_*`` columns
        change, by far less than their Monte Carlo SD.

    Returns
    -------
    DataFrame
        One row per eigenvalue (``factor`` 1..p), columns :data:`PARALLEL_COLUMNS`:
        ``observed_pc``, ``observed_fa``; ``random_pc``, ``random_fa`` (simulated data, at the
        percentile: the criterion) with ``random_*_mean`` and ``random_*_sd`` (psych's
        ``pc.sim``, ``fa.sim``); ``resampled_*`` likewise (psych's ``pc.simr``, ``fa.simr``).
        SDs have n - 1 in the denominator (NaN for one iteration).

    Notes
    -----
    In R: ``psych::fa.parallel(data, fa = "both", n.iter = n_iter, quant = percentile / 100,
    SMC = smc, cor = "cor" | "poly")``; ``$fa.values``, ``$pc.values``, ``$nfact``, ``$ncomp``.
    psych gives ``NA`` when every observed eigenvalue exceeds the random one; gapscale gives
    the number of items. Warnings raised while correlating the resampled data sets (e.g.
    polychoric continuity corrections) are re-issued once per class, with how many data sets
    gave them and the first message; non-convergence of the random one-factor fits, once with
    its count (psych does not check it).
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise InputError(f"parallel analysis: n_iter = {n_iter!r}: use a whole number >= 1")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.integer, np.floating)) \
            or not 0 < percentile <= 100:
        raise InputError(f"parallel analysis: percentile = {percentile!r}: use a number in (0, 100], "
                         "e.g. 95 (psych's quant = .95)")
    r = _corr(correlate(data))
    x = data.to_numpy(dtype=float)
    n, p = x.shape
    draws = {key: np.empty((n_iter, p)) for key in ("random_pc", "random_fa", "resampled_pc", "resampled_fa")}
    unconverged, others = 0, {}
    for k in range(n_iter):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GapscaleWarning)
            rr = _resample(x, data.columns, correlate if resampled_correlate is None else resampled_correlate, rng)
            rs = np.corrcoef(rng.standard_normal((n, p)), rowvar=False)
            draws["resampled_pc"][k], draws["resampled_fa"][k] = _eigen_pc(rr), reduced_eigenvalues(rr, smc)
            draws["random_pc"][k], draws["random_fa"][k] = _eigen_pc(rs), reduced_eigenvalues(rs, smc)
        seen = set()
        for w in caught:
            if issubclass(w.category, ConvergenceWarning) and "extraction did not converge" in str(w.message):
                unconverged += 1
            elif issubclass(w.category, GapscaleWarning):
                seen.add(w.category)
                others.setdefault(w.category, [0, 0, str(w.message)])[1] += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for category in seen:
            others[category][0] += 1
        if progress is not None:
            progress(1)
    # Warnings of the random data sets (e.g. a polychoric continuity correction), once per kind.
    for category, (sets, count, first) in others.items():
        warnings.warn(f"parallel analysis: {sets} of the {n_iter} resampled data sets gave {count} warning(s) "
                      f"({category.__name__}), the first: {first}", category, stacklevel=2)
    if unconverged:
        warnings.warn(f"parallel analysis: the one-factor minres solution did not converge for {unconverged} of "
                      f"{2 * n_iter} random correlation matrices", ConvergenceWarning, stacklevel=2)
    table = {"factor": np.arange(1, p + 1), "observed_pc": _eigen_pc(r), "observed_fa": reduced_eigenvalues(r, smc)}
    for key, values in draws.items():
        table[key] = np.percentile(values, percentile, axis=0)
        table[f"{key}_mean"] = values.mean(axis=0)
        table[f"{key}_sd"] = values.std(axis=0, ddof=1) if n_iter > 1 else np.full(p, np.nan)
    return pd.DataFrame(table)[PARALLEL_COLUMNS]


def parallel_suggestion(table: pd.DataFrame, kind: str = "fa") -> int:
    """The number of leading observed eigenvalues above the random ones, up to the first that is not.

    ``kind`` is ``"fa"`` (factors) or ``"pc"`` (components); the comparison is with the
    ``random_{kind}`` column of :func:`parallel_analysis` (psych's "first below" rule,
    ``which(!(observed > random))[1] - 1``). The number of items when every eigenvalue is above.
    """
    above = (table[f"observed_{kind}"] > table[f"random_{kind}"]).to_numpy()
    return int(np.argmin(above)) if not above.all() else len(above)


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Extraction:
    loadings: np.ndarray  # unrotated, p x m
    uniquenesses: np.ndarray
    converged: bool
    iterations: int


def _top_eigen(s: np.ndarray, m: int):
    w, v = np.linalg.eigh(s)
    order = np.argsort(w)[::-1][:m]
    return w[order], v[:, order]


def _minres_objective(psi, r, m):
    s = r.copy()
    np.fill_diagonal(s, 1 - psi)
    w, v = _top_eigen(s, m)
    w = np.where(w < np.finfo(float).eps, 100 * np.finfo(float).eps, w)
    load = v * np.sqrt(w)
    res = r - load @ load.T
    return float(np.sum(res[np.tril_indices_from(res, -1)] ** 2))


def _minres_gradient(psi, r, m):
    w, v = _top_eigen(r - np.diag(psi), m)
    load = v * np.sqrt(np.maximum(w, 0))
    return np.diag(load @ load.T + np.diag(psi) - r)


def _ml_objective(psi, r, m):
    sc = 1 / np.sqrt(psi)
    e = np.sort(np.linalg.eigvalsh(r * sc[:, None] * sc[None, :]))[::-1][m:]
    return -float(np.sum(np.log(e) - e) - m + r.shape[0])


def _ml_gradient(psi, r, m):
    sc = 1 / np.sqrt(psi)
    w, v = _top_eigen(r * sc[:, None] * sc[None, :], m)
    load = np.sqrt(psi)[:, None] * (v * np.sqrt(np.maximum(w - 1, 0)))
    g = load @ load.T + np.diag(psi) - r
    return np.diag(g) / psi**2


def extract(r: np.ndarray, n_factors: int, method: str = "minres", max_iter: int = 50,
            min_err: float = 0.001, ftol: float = 1e-12) -> Extraction:
    """Unrotated factor loadings by psych::fa's algorithms.

    ``minres``: minimise the sum of squared off-diagonal residuals over the uniquenesses
    (Harman & Jones, 1966), L-BFGS-B from ``1 - smc`` within [.005, 1], with psych's gradient.
    ``ml``: maximise the normal likelihood over the uniquenesses (as ``factanal``), the same
    optimiser. ``pa``: iterated principal axes from SMC communalities until the sum of
    communalities changes by less than ``min_err`` (at most ``max_iter`` iterations), as psych.
    Loadings are ``V_m sqrt(L_m)`` of the reduced matrix (ML: of the scaled matrix), with column
    signs made so each column sums positive. ``ftol`` is L-BFGS-B's relative-reduction stopping
    tolerance; psych stops at R's optim default (factr 1e7, ``ftol = 1e7 * 2.22e-16``), a little
    earlier, which moves its one-factor communalities by up to 1e-6 on public data
    (tests/test_parallel.py). ``converged``: L-BFGS-B's own test, or a failed
    line search at a stationary point (projected gradient below 1e-4 in the optimiser's units).
    In R: ``psych::fa(r, m, rotate = "none", fm = method)``.
    """
    r = _corr(r)
    p = r.shape[0]
    if method not in EXTRACTION:
        raise InputError(f"unknown extraction method {method!r}; use one of {', '.join(EXTRACTION)}")
    start_h2 = smc(r)
    if method == "pa":
        h2 = start_h2.copy()
        comm = h2.sum()
        err, it, converged = comm, 0, True
        while err > min_err:
            reduced = r.copy()
            np.fill_diagonal(reduced, h2)
            w, v = _top_eigen(reduced, n_factors)
            load = v * np.sqrt(w)
            h2 = np.sum(load**2, axis=1)
            err = abs(comm - h2.sum())
            comm = h2.sum()
            it += 1
            if it >= max_iter:
                converged = err <= min_err
                break
        if not converged:
            warnings.warn(f"principal axis factoring did not converge in {max_iter} iterations "
                          f"(change in communalities {err:.2g} > {min_err})", ConvergenceWarning, stacklevel=2)
        loadings, psi, iterations = load, 1 - h2, it
    else:
        fun, jac = (_minres_objective, _minres_gradient) if method == "minres" else (_ml_objective, _ml_gradient)
        start = np.clip(1 - start_h2, 0.005, 1)
        scale = 0.01  # psych's parscale: optimise psi / 0.01
        res = optimize.minimize(lambda z: fun(z * scale, r, n_factors), start / scale,
                                jac=lambda z: jac(z * scale, r, n_factors) * scale, method="L-BFGS-B",
                                bounds=[(0.005 / scale, 1 / scale)] * p,
                                options={"maxiter": 1000, "ftol": ftol, "gtol": 1e-10})
        psi = res.x * scale
        converged, iterations = bool(res.success), int(res.nit)
        if not converged and str(res.message).startswith("ABNORMAL"):
            # The line search failed (psych's minres gradient is not the exact gradient of its
            # objective, so near the optimum it can point slightly wrong): a stationary point
            # all the same when the projected gradient, in the optimiser's units, is below 1e-4
            # (runs that end by the ftol rule stop as far as 8e-4 from stationarity).
            z, g = res.x, jac(res.x * scale, r, n_factors) * scale
            converged = bool(np.abs(np.clip(z - g, 0.005 / scale, 1 / scale) - z).max() < 1e-4)
        if not converged:
            warnings.warn(f"{method} extraction did not converge: {res.message}", ConvergenceWarning, stacklevel=2)
        if method == "minres":
            reduced = r - np.diag(psi)
            w, v = _top_eigen(reduced, n_factors)
            loadings = v * np.sqrt(np.maximum(w, 0))
        else:
            sc = 1 / np.sqrt(psi)
            w, v = _top_eigen(r * sc[:, None] * sc[None, :], n_factors)
            loadings = np.sqrt(psi)[:, None] * (v * np.sqrt(np.maximum(w - 1, 0)))
    signs = np.sign(loadings.sum(axis=0))
    signs[signs == 0] = 1
    loadings = loadings * signs
    uniq = 1 - np.sum(loadings**2, axis=1)
    return Extraction(loadings=loadings, uniquenesses=uniq, converged=converged, iterations=iterations)


def _fit(r, loadings, phi, n_obs, m) -> dict:
    """psych's fa.stats: chi-square with Bartlett's correction, TLI, RMSEA with 90% CI, BIC.

    The RMS (lavaan's ``crmr_nomean``), p-value, TLI, RMSEA and its interval are
    :mod:`analysis.sem.fit`'s, with psych's conventions as arguments: the TLI of both objectives
    times the model's Bartlett factor, N - 1 in the RMSEA's correction and interval. The BIC is
    psych's chi-square BIC, chisq - df log N (not lavaan's likelihood BIC)."""
    p = r.shape[0]
    model = loadings @ phi @ loadings.T
    np.fill_diagonal(model, np.diag(r))
    dof = p * (p - 1) / 2 - p * m + m * (m - 1) / 2
    m_inv_r = np.linalg.solve(model, r)
    objective = np.trace(m_inv_r) - np.linalg.slogdet(m_inv_r)[1] - p
    # psych's rms (the off-diagonal residuals of the correlations) is lavaan's CRMR without means
    out = {"objective": float(objective), "df": int(dof),
           "rms": fitm.residual_measures(r, model, 1)["crmr_nomean"]}
    if n_obs is None:
        return out
    factor = (n_obs - 1) - (2 * p + 5) / 6 - (2 * m) / 3
    chisq = max(objective * factor, 0.0)
    f0 = np.trace(r) - np.linalg.slogdet(r)[1] - p
    out.update(chisq=float(chisq), pvalue=fitm.chisq_pvalue(chisq, dof) if dof > 0 else None,
               # psych's (M0 - Mm)/(M0 - 1/factor), M = objective/df: lavaan's TLI of both objectives times factor
               tli=fitm.tli(objective * factor, dof, f0 * factor, p * (p - 1) / 2) if dof > 0 else None,
               null_chisq=float(f0 * ((n_obs - 1) - (2 * p + 5) / 6)), null_df=int(p * (p - 1) / 2))
    if dof > 0:
        out["rmsea"] = fitm.rmsea(chisq, dof, n_obs, n_correction=n_obs - 1)  # psych: N - 1 in the correction
        lower, upper = _rmsea_ci(chisq, dof, n_obs)
        out.update(rmsea_ci_lower=lower, rmsea_ci_upper=upper, bic=float(chisq - dof * np.log(n_obs)))
    return out


def _rmsea_ci(chisq, df, n, level=0.90):
    """psych's 90% RMSEA interval: the noncentrality interval of :func:`analysis.sem.fit.rmsea_ci`
    on psych's N - 1. psych searches the noncentrality up to max(N, chisq) + 2N and gives NA for a
    bound on the wrong side of its point estimate; lavaan's rule (used here) searches up to
    max(N, 4 chisq) and gives 0: they differ only in such extreme cases."""
    return fitm.rmsea_ci(chisq, df, n - 1, level=level)


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class EFAResult:
    """An exploratory factor analysis, in psych::fa's terms.

    Attributes
    ----------
    loadings : DataFrame
        Rotated pattern loadings, items x factors (``F1``...), factors ordered by variance
        accounted for and reflected to positive column sums, as psych.
    communalities, uniquenesses, complexity : Series
        Per item: ``h2`` (row sums of the unrotated squared loadings), ``u2 = 1 - h2``, and
        Hofmann's complexity of the pattern row.
    phi : DataFrame
        Factor correlations (identity for orthogonal rotations).
    variance : DataFrame
        ``ss_loadings, proportion_var, cumulative_var, proportion_explained,
        cumulative_proportion`` per factor (psych's Vaccounted).
    fit : dict
        ``objective, df, rms, chisq, pvalue, tli, rmsea, rmsea_ci_lower, rmsea_ci_upper, bic``.
    """

    loadings: pd.DataFrame
    communalities: pd.Series
    uniquenesses: pd.Series
    complexity: pd.Series
    phi: pd.DataFrame
    variance: pd.DataFrame
    fit: dict
    extraction: str
    rotation: str
    converged: bool

    def sorted_loadings(self) -> pd.DataFrame:
        """Loadings with items grouped by their primary factor (largest absolute loading), in
        factor order, and by that loading from high to low within a factor (``psych::fa.sort``);
        with ``h2``, ``u2`` and ``complexity``."""
        primary = self.loadings.abs().idxmax(axis=1)
        strength = self.loadings.abs().max(axis=1)
        order = sorted(self.loadings.index, key=lambda i: (list(self.loadings.columns).index(primary[i]), -strength[i]))
        table = self.loadings.loc[order].copy()
        table.insert(0, "item", order)
        return table.assign(h2=self.communalities[order].to_numpy(), u2=self.uniquenesses[order].to_numpy(),
                            complexity=self.complexity[order].to_numpy())

    def to_files(self, directory: str | Path, prefix: str = "efa_", write=None) -> list[Path]:
        """Write the sorted loadings (with h2, u2, complexity), phi and variance as CSV
        (through ``write(frame, path)`` when given: the stages pass their one CSV writer)."""
        d = Path(directory)
        table = self.sorted_loadings()
        files = {f"{prefix}loadings.csv": table,
                 f"{prefix}factor_correlations.csv": self.phi.rename_axis("factor").reset_index(),
                 f"{prefix}variance.csv": self.variance.rename_axis("factor").reset_index()}
        for name, df in files.items():
            (write or write_csv)(df, d / name)
        return [d / n for n in files]


def efa(r: pd.DataFrame, n_factors: int, extraction: str = "minres", rotation: str = "oblimin",
        n_obs: int | None = None) -> EFAResult:
    """Extract and rotate ``n_factors`` factors from the correlation matrix ``r``.

    In R: ``psych::fa(r, nfactors, n.obs = n_obs, fm = extraction, rotate = rotation)``.

    Raises
    ------
    InputError
        Fewer than 1 factor, or more than :func:`max_factors` (the items do not identify them).
    ValueError
        An unknown method.
    """
    from analysis.rotation import align_factors, rotate

    names = list(r.index)
    rr = _corr(r)
    p = rr.shape[0]
    if isinstance(n_factors, bool) or not isinstance(n_factors, (int, np.integer)) or n_factors < 1:
        raise InputError(f"n_factors = {n_factors!r}: the number of factors must be a whole number >= 1")
    most = max_factors(p)
    if n_factors > most:
        dof = p * (p - 1) / 2 - p * n_factors + n_factors * (n_factors - 1) / 2
        why = f"degrees of freedom {dof:g} < 0" if dof < 0 else "not fewer factors than items"
        allowed = f"at most {most} factors can be extracted from {p} items" if most else \
            f"an EFA needs at least 3 items, got {p}"
        raise InputError(f"n_factors = {n_factors}: {n_factors} factors for {p} items are not identified ({why}); "
                         f"{allowed}")
    ex = extract(rr, n_factors, extraction)
    rot = rotate(ex.loadings, rotation if n_factors > 1 else "none")
    loadings, phi = align_factors(rot.loadings, rot.phi)
    h2 = np.sum(ex.loadings**2, axis=1)
    if (h2 >= 1).any():
        bad = [names[i] for i in np.flatnonzero(h2 >= 1)]
        warnings.warn(f"Heywood case: communality >= 1 for {', '.join(bad)}; the solution is inadmissible",
                      HeywoodWarning, stacklevel=2)
    cols = [f"F{k + 1}" for k in range(n_factors)]
    vx = np.diag(phi @ loadings.T @ loadings)
    total = p
    variance = pd.DataFrame({
        "ss_loadings": vx, "proportion_var": vx / total, "cumulative_var": np.cumsum(vx / total),
        "proportion_explained": vx / vx.sum(), "cumulative_proportion": np.cumsum(vx / vx.sum()),
    }, index=cols)
    complexity = np.sum(loadings**2, axis=1) ** 2 / np.sum(loadings**4, axis=1)
    return EFAResult(
        loadings=pd.DataFrame(loadings, index=names, columns=cols),
        communalities=pd.Series(h2, index=names, name="h2"),
        uniquenesses=pd.Series(1 - h2, index=names, name="u2"),
        complexity=pd.Series(complexity, index=names, name="complexity"),
        phi=pd.DataFrame(phi, index=cols, columns=cols),
        variance=variance, fit=_fit(rr, loadings, phi, n_obs, n_factors),
        extraction=extraction, rotation=rotation, converged=ex.converged and rot.converged,
    )


# --------------------------------------------------------------------------- diagnostics

DIAGNOSTIC_COLUMNS = ["item", "construct", "primary_factor", "primary_loading", "cross_loading",
                      "communality", "flagged", "reasons"]


def item_diagnostics(result: EFAResult, construct_of: dict[str, str], min_loading: float = 0.5,
                     max_cross_loading: float = 0.3, min_communality: float = 0.4) -> pd.DataFrame:
    """Each item's primary factor and loading, largest cross-loading, communality, and flags.

    An item is flagged when its largest absolute pattern loading is below ``min_loading``, its
    second largest is above ``max_cross_loading``, or its communality is below
    ``min_communality``; ``reasons`` says which, with the values. Items are never dropped here:
    dropping is the researcher's explicit list (``efa.drop_items`` in params.yaml).
    """
    rows = []
    for item, row in result.loadings.iterrows():
        a = row.abs().sort_values(ascending=False)
        primary, cross = a.index[0], (a.iloc[1] if len(a) > 1 else 0.0)
        h2 = result.communalities[item]
        reasons = []
        if a.iloc[0] < min_loading:
            reasons.append(f"primary loading {row[primary]:.2f} < {min_loading:g}")
        if cross > max_cross_loading:
            reasons.append(f"cross-loading {row[a.index[1]]:.2f} on {a.index[1]} > {max_cross_loading:g}")
        if h2 < min_communality:
            reasons.append(f"communality {h2:.2f} < {min_communality:g}")
        rows.append((item, construct_of.get(item), primary, float(row[primary]), float(cross), float(h2),
                     bool(reasons), "; ".join(reasons)))
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


def structure_agreement(diagnostics: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """How well the EFA structure reproduces the intended constructs.

    Each construct is matched to one factor so that as many items as possible load highest on
    their construct's factor (an assignment problem, solved exactly); the agreement is the
    share of items that do. Returns the share and the construct -> factor table with counts.
    """
    table = pd.crosstab(diagnostics["construct"], diagnostics["primary_factor"])
    rows, cols = optimize.linear_sum_assignment(-table.to_numpy())
    matched = pd.DataFrame({
        "construct": table.index[rows], "factor": table.columns[cols],
        "items": table.sum(axis=1).to_numpy()[rows], "on_factor": table.to_numpy()[rows, cols],
    })
    return float(matched["on_factor"].sum() / len(diagnostics)), matched.reset_index(drop=True)
