"""Polychoric (and tetrachoric) correlations of ordinal items, as ``psych::polychoric`` computes them.

Each observed item :math:`x_j` with ordered categories :math:`1, \\dots, K_j` is taken to be a
coarsened standard-normal variable :math:`z_j`: :math:`x_j = k` when
:math:`\\tau_{j,k-1} < z_j \\le \\tau_{j,k}` (:math:`\\tau_{j,0} = -\\infty`,
:math:`\\tau_{j,K_j} = \\infty`), and the polychoric correlation of two items is the correlation
:math:`\\rho` of their latent pair. The estimate is Olsson's (1979) two-step estimator:

1. thresholds from each item's marginal proportions,
   :math:`\\hat\\tau_{j,k} = \\Phi^{-1}\\big(\\sum_{c \\le k} n_{j,c} / n_j\\big)`;
2. for each pair, :math:`\\hat\\rho` maximises the multinomial log-likelihood of the pair's
   two-way table :math:`n_{ab}` given those thresholds,

   .. math::

       \\ell(\\rho) = \\sum_{a,b} n_{ab} \\log \\pi_{ab}(\\rho), \\qquad
       \\pi_{ab}(\\rho) = \\Phi_2(\\tau_a, \\tau_b; \\rho) - \\Phi_2(\\tau_{a-1}, \\tau_b; \\rho)
       - \\Phi_2(\\tau_a, \\tau_{b-1}; \\rho) + \\Phi_2(\\tau_{a-1}, \\tau_{b-1}; \\rho),

   with :math:`\\Phi_2` the standard bivariate normal distribution function.

Missing values are handled pairwise, as psych does: thresholds use every observed value of an
item, each table the rows where both items of the pair are observed.

The bivariate normal probabilities come from Genz's (2004) implementation of Drezner &
Wesolowsky (1990), vectorised over every cell of every table. :math:`\\ell` is maximised for
all pairs at once by Newton steps inside a shrinking bracket, using
:math:`\\partial \\Phi_2 / \\partial \\rho = \\phi_2` (Plackett's identity), so each estimate is
exact to about 1e-10. psych's ``optimize`` stops at a tolerance of about 1e-4, which bounds
the difference between the two.

In R: ``psych::polychoric(d[, columns])$rho`` (thresholds ``$tau``).

References
----------
Olsson, U. (1979). Maximum likelihood estimation of the polychoric correlation coefficient.
*Psychometrika, 44*(4), 443-460. https://doi.org/10.1007/BF02296207

Drezner, Z., & Wesolowsky, G. O. (1990). On the computation of the bivariate normal integral.
*Journal of Statistical Computation and Simulation, 35*(1-2), 101-107.
https://doi.org/10.1080/00949659008811236

Genz, A. (2004). Numerical computation of rectangular bivariate and trivariate normal and t
probabilities. *Statistics and Computing, 14*(3), 251-260.
https://doi.org/10.1023/B:STCO.0000035304.20635.31

Plackett, R. L. (1954). A reduction formula for normal multivariate integrals. *Biometrika,
41*(3-4), 351-360. https://doi.org/10.1093/biomet/41.3-4.351

Revelle, W. (2022). *psych: Procedures for psychological, psychometric, and personality
research* (R package version 2.2.9). https://CRAN.R-project.org/package=psych
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from analysis.csvfile import write_csv
from analysis.warnings import ConvergenceWarning, GapscaleWarning, NotPositiveDefiniteWarning
from analysis.errors import InputError

__all__ = [
    "NotPositiveDefiniteWarning",
    "Polychoric",
    "bivariate_normal_cdf",
    "maximise_correlations",
    "nearest_positive_definite",
    "ordinal_codes",
    "pearson_start",
    "polychoric",
    "polychoric_one_step",
    "whole_number_values",
]

# psych::cor.smooth: smooth when the smallest eigenvalue is below machine epsilon; raise the
# eigenvalues below EIG_TOL to 100 * EIG_TOL.
_EIG_TOL = 1e-12
# The correlation is searched in [-_RHO_MAX, _RHO_MAX]. Where the likelihood rises all the way
# to |rho| = 1, the estimate is reported as +/-_RHO_MAX with a warning; psych's optimize() stops
# wherever the likelihood has become flat in floating point (0.9946 for a 2 x 2 table
# 30/0/30/40), so boundary estimates are not comparable with psych's.
_RHO_MAX = 1 - 1e-7
_TOL = 1e-10
_MAX_ITER = 100
_BOUNDARY_PROBE = 8
_BLOCK_ROWS = 20000


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Polychoric:
    """Polychoric correlation matrix with the thresholds it rests on.

    Attributes
    ----------
    correlation : DataFrame
        Items x items, unit diagonal; smoothed (see ``smoothed``) when the pairwise estimates
        do not form a positive-definite matrix and ``smooth=True``.
    thresholds : DataFrame
        Items x ``t1, t2, ...``: :math:`\\hat\\tau_{j,k}`, the cut point between the item's
        k-th and (k+1)-th smallest observed value, from all observed values of the item. An
        item with fewer categories than the longest is padded with NaN.
    n_pairs : DataFrame
        Items x items: rows in which both items are observed (the diagonal: rows in which the
        item is observed).
    n : int
        Rows of the data.
    smoothed : bool
        True when the matrix was not positive definite and was smoothed as by
        ``psych::cor.smooth`` (a :class:`NotPositiveDefiniteWarning` was emitted).
    n_eigenvalues_adjusted : int
        Eigenvalues raised by the smoothing (0 when not smoothed).
    global_thresholds : bool
        True when every pair's likelihood used the item thresholds above; False when the
        thresholds were estimated pair by pair from each pair's table (see :func:`polychoric`).
    n_corrected : int
        Item pairs whose table had empty cells that the continuity correction filled (only
        when ``global_thresholds`` is False).
    """

    correlation: pd.DataFrame
    thresholds: pd.DataFrame
    n_pairs: pd.DataFrame
    n: int
    smoothed: bool
    n_eigenvalues_adjusted: int
    global_thresholds: bool
    n_corrected: int

    def to_files(self, directory: str | Path, prefix: str = "polychoric_") -> list[Path]:
        """Write ``{prefix}correlation.csv`` and ``{prefix}thresholds.csv`` (first column ``item``)."""
        d = Path(directory)
        files = {f"{prefix}correlation.csv": self.correlation, f"{prefix}thresholds.csv": self.thresholds}
        for name, table in files.items():
            write_csv(table.rename_axis("item").reset_index(), d / name)
        return [d / name for name in files]


# --------------------------------------------------------------------------- polychoric


def polychoric(data: pd.DataFrame, columns: list[str] | None = None, correct: float = 0.5,
               smooth: bool = True, global_thresholds: bool = True,
               max_categories: int = 20, progress=None) -> Polychoric:
    """Polychoric correlation matrix by Olsson's (1979) two-step maximum likelihood.

    Step 1, thresholds from each item's observed values,
    :math:`\\hat\\tau_{j,k} = \\Phi^{-1}(\\text{proportion of the item's values} \\le \\text{its
    k-th category})`. Step 2, for each pair of items, :math:`\\hat\\rho` maximises
    :math:`\\sum_{a,b} n_{ab} \\log \\pi_{ab}(\\rho)` over the pair's two-way table, where
    :math:`\\pi_{ab}(\\rho)` is the bivariate standard normal probability of the rectangle the
    thresholds cut out for cell :math:`(a, b)` (see the module docstring). With two categories
    per item this is the tetrachoric correlation.

    Missing values are dropped pair by pair: a row missing one item of a pair is left out of
    that pair's table only. The categories of an item are its distinct observed values in
    increasing order (unused values in between do not matter).

    As in psych 2.2.9, the thresholds are "global" only when every item has the same highest
    value; otherwise (or with ``global_thresholds=False``) each pair gets its own thresholds
    from the margins of its table, after the categories empty in that table are dropped and
    every empty cell of the table is set to ``correct`` (a continuity correction in counts;
    psych sets it to ``correct / n_pair`` in proportions, which is the same). The
    thresholds are :math:`\\Phi^{-1}` of the cumulative corrected counts divided by the
    uncorrected count of the pair, exactly as psych computes them. When the correction makes
    such a cumulative share reach 1, psych 2.2.9 stops with an error ("NaNs produced"); here
    that pair's shares are divided by the corrected total instead and a
    :class:`~analysis.warnings.GapscaleWarning` names the pairs. With global thresholds
    psych applies no correction (empty cells add nothing to the likelihood), and neither does
    this function.

    When the matrix of pairwise estimates is not positive definite and ``smooth`` is True, it
    is smoothed as ``psych::cor.smooth`` does (see :func:`nearest_positive_definite`) and a
    :class:`~analysis.warnings.NotPositiveDefiniteWarning` says how many eigenvalues were
    raised.

    Parameters
    ----------
    data : DataFrame
    columns : list of str, optional
        At least two item columns; all columns of ``data`` when omitted. Values must be whole
        numbers (any numeric dtype, nullable integers included) or missing.
    correct : float, default 0.5
        Continuity correction for empty cells, used only with pair-by-pair thresholds (see
        above); 0 turns it off.
    smooth : bool, default True
        Smooth a matrix that is not positive definite.
    global_thresholds : bool, default True
        Use each item's thresholds from all its observed values (psych's ``global = TRUE``).
        Falls back to pair-by-pair thresholds, with a warning, when the items do not all have
        the same highest value, as psych does.
    max_categories : int, default 20
        Largest number of distinct values an item may have. psych's default ``max.cat = 8``
        is lower; it counts the values between the lowest and the highest value over all items.
    progress : callable, optional
        Called as ``progress(k)`` when ``k`` more item pairs are settled, up to
        ``p (p - 1) / 2`` in all (a progress bar's tick, see ``pipeline.progress``).

    Returns
    -------
    Polychoric

    Raises
    ------
    ValueError
        Fewer than two columns, an unknown, non-numeric, entirely missing or constant column,
        a value that is not a whole number (or is infinite), more than ``max_categories``
        distinct values in a column, or two columns never observed in the same row. Each
        message names the column.

    Warns
    -----
    GapscaleWarning
        Pair-by-pair thresholds forced by unequal highest values; continuity corrections
        applied; an estimate on the boundary :math:`|\\rho| \\to 1` (a table whose cells lie
        on one diagonal, typically a 2 x 2 table with an empty cell; reported as
        :math:`\\pm(1 - 10^{-7})`, where psych stops short of 1 at a point that depends on
        its optimiser, e.g. 0.9946); a correlation that cannot be estimated (pair-by-pair
        thresholds with an item constant within the pair: NaN, and no smoothing).
    NotPositiveDefiniteWarning
        The matrix was smoothed.
    ConvergenceWarning
        The maximisation stopped at its iteration limit for some pair.

    Notes
    -----
    In R: ``psych::polychoric(d[, columns])`` with its defaults (``smooth = TRUE, global =
    TRUE, correct = 0.5``); ``$rho`` is ``correlation`` and ``$tau`` the thresholds (psych's
    ``tau`` has one column per value in the overall range and gives ``Inf``/``-Inf`` or a
    repeated value where an item has no observations in a category; here such cut points are
    left out). psych's ``optimize`` tolerance (about 1e-4) limits the agreement; against psych
    on ``psych::bfi`` (6-point, with and without smoothing), ``psychTools::ability`` (binary)
    and a mix of 2-, 5- and 6-category items (pair-by-pair thresholds) the largest difference
    is 2.6e-5, the thresholds agree to 1e-14 (``tests/reference/polychoric.R``).

    Speed: 70 seven-point items (2,415 pairs) x 1,000 respondents take about 0.15 s on two
    cores, psych 2.2.9 about 17 s (``benchmarks/polychoric_bench.py``).

    Examples
    --------
    >>> r = polychoric(d, ["A1", "A2", "A3"]).correlation  # doctest: +SKIP
    """
    names, codes, categories = ordinal_codes(data, columns, max_categories)
    if isinstance(correct, bool) or not isinstance(correct, (int, float, np.integer, np.floating)) \
            or not np.isfinite(correct) or correct < 0:
        raise InputError(f"correct: need a number >= 0, got {correct!r}")
    p = len(names)
    n_cat = np.array([len(c) for c in categories])
    k_max = int(n_cat.max())

    # Step 1: each item's thresholds from all its observed values, padded with +inf.
    counts = np.zeros((p, k_max))
    for j in range(p):
        counts[j, :n_cat[j]] = np.bincount(codes[:, j][codes[:, j] >= 0], minlength=n_cat[j])
    cum = np.cumsum(counts, axis=1) / counts.sum(axis=1, keepdims=True)
    tau = np.full((p, k_max - 1), np.inf)
    for j in range(p):
        tau[j, :n_cat[j] - 1] = ndtri(cum[j, :n_cat[j] - 1])
    thresholds = pd.DataFrame(np.where(np.isinf(tau), np.nan, tau), index=names,
                              columns=[f"t{k + 1}" for k in range(k_max - 1)])

    # Two-way tables of every pair at once: cross-products of one-hot codes (rows x p*K),
    # in blocks of rows so that memory stays bounded (float32 counts are exact below 2**24).
    observed = codes >= 0
    tables_all = np.zeros((p * k_max, p * k_max))
    for first in range(0, codes.shape[0], _BLOCK_ROWS):
        block = codes[first:first + _BLOCK_ROWS]
        onehot = np.zeros((block.shape[0], p * k_max), dtype=np.float32)
        rows, cols = np.nonzero(block >= 0)
        onehot[rows, cols * k_max + block[rows, cols]] = 1.0
        tables_all += onehot.T @ onehot
    tables_all = tables_all.reshape(p, k_max, p, k_max)
    n_pairs = observed.T.astype(np.int64) @ observed.astype(np.int64)
    ii, jj = np.triu_indices(p, k=1)
    never = np.flatnonzero(n_pairs[ii, jj] == 0)
    if len(never):
        a, b = names[ii[never[0]]], names[jj[never[0]]]
        raise InputError(f"columns {a!r} and {b!r} are never observed in the same row; their polychoric "
                         "correlation cannot be estimated, so leave one of them out of columns")
    tables = tables_all[ii, :, jj, :]  # pairs x K x K, rows: item ii's categories

    highest = [c[-1] for c in categories]
    use_global = bool(global_thresholds)
    if use_global and len(set(highest)) > 1:
        use_global = False
        groups = {}
        for name, top in zip(names, highest):
            groups.setdefault(top, []).append(name)
        shown = "; ".join(f"{_fmt(top)}: " + _name_list(items) for top, items in sorted(groups.items()))
        warnings.warn(
            f"the items do not all have the same highest value (highest value {shown}); as psych::polychoric does "
            "(\"global set to FALSE\"), each pair's thresholds are estimated from its own table, with the "
            f"continuity correction correct={correct:g} in empty cells. Pass global_thresholds=False to "
            "ask for this explicitly", GapscaleWarning, stacklevel=2)

    rho = np.full(len(ii), np.nan)
    n_corrected = 0
    if use_global:
        grid = np.column_stack([np.full(p, -np.inf), tau, np.full(p, np.inf)])
        a_cuts, b_cuts, weights, fit = grid[ii], grid[jj], tables, np.ones(len(ii), dtype=bool)
    else:
        a_cuts, b_cuts, weights, fit, corrected, renormalised = _pairwise_cuts(tables, correct)
        n_corrected = int(corrected.sum())
        if n_corrected:
            warnings.warn(
                f"the continuity correction correct={correct:g} filled the empty cells of {n_corrected} of "
                f"{len(ii)} item pairs' tables (psych: \"cells were adjusted for 0 values\"); examine "
                "sparse categories", GapscaleWarning, stacklevel=2)
        if renormalised.any():
            shown = _pair_list(names, ii, jj, renormalised)
            warnings.warn(
                f"with the continuity correction the cumulative proportions of {shown} reached 1, where "
                "psych::polychoric stops with an error; their thresholds use the proportions of the "
                "corrected table", GapscaleWarning, stacklevel=2)
        if not fit.all():
            shown = _pair_list(names, ii, jj, ~fit)
            warnings.warn(
                f"the polychoric correlation of {shown} cannot be estimated (an item has a single category "
                "in the rows where both are observed) and is NaN; the matrix is not smoothed",
                GapscaleWarning, stacklevel=2)

    if progress is not None and not fit.all():
        progress(int((~fit).sum()))
    start = pearson_start(weights[fit])
    rho[fit], converged = maximise_correlations(a_cuts[fit], b_cuts[fit], weights[fit], start, progress)
    if not converged.all():
        shown = _pair_list(names, ii[fit], jj[fit], ~converged)
        warnings.warn(f"the likelihood maximisation did not converge in {_MAX_ITER} iterations for {shown}; "
                      "the last iterate is used", ConvergenceWarning, stacklevel=2)
    boundary = np.abs(rho) > _RHO_MAX - 1e-9
    if boundary.any():
        shown = _pair_list(names, ii, jj, boundary)
        warnings.warn(
            f"the maximum-likelihood polychoric correlation of {shown} is on the boundary |r| = 1 (the "
            f"table's cells lie on one diagonal, e.g. a 2 x 2 table with an empty cell); reported as "
            f"+/-{_RHO_MAX}", GapscaleWarning, stacklevel=2)

    r = np.eye(p)
    r[ii, jj] = rho
    r[jj, ii] = rho
    smoothed, n_adjusted = False, 0
    if smooth and not np.isnan(rho).any():
        r_new, n_adjusted, smallest = _cor_smooth(r)
        if n_adjusted:
            smoothed = True
            warnings.warn(_smooth_message("polychoric correlation matrix", p, smallest, n_adjusted),
                          NotPositiveDefiniteWarning, stacklevel=2)
            r = r_new
    return Polychoric(
        correlation=pd.DataFrame(r, index=names, columns=names),
        thresholds=thresholds,
        n_pairs=pd.DataFrame(n_pairs, index=names, columns=names),
        n=int(codes.shape[0]),
        smoothed=smoothed,
        n_eigenvalues_adjusted=int(n_adjusted),
        global_thresholds=use_global,
        n_corrected=n_corrected,
    )


def polychoric_one_step(data: pd.DataFrame, columns: list[str] | None = None, max_categories: int = 20) -> np.ndarray:
    """Polychoric correlations by one Fisher-scoring step from :math:`\\rho = 0`: the cheap
    equivalent for items that are independent by construction (parallel analysis' resampled
    data sets).

    With each item's thresholds from its own observed values (step 1 of :func:`polychoric`,
    global thresholds), category proportions :math:`p_k` and
    :math:`A_k = \\phi(\\tau_k) - \\phi(\\tau_{k-1})`, the cell probabilities at
    :math:`\\rho = 0` factor (:math:`\\pi_{kl} = p_k q_l`) and
    :math:`\\partial\\pi_{kl}/\\partial\\rho|_0 = A_k B_l`, so the score and the Fisher
    information of a pair's log-likelihood at 0 are

    .. math::

        U(0) = \\sum_i a(x_i)\\, b(y_i), \\qquad I(0) = n_{xy}\\, m_a m_b, \\qquad
        a(k) = A_k / p_k, \\quad m_a = \\textstyle\\sum_k A_k^2 / p_k,

    over the pair's :math:`n_{xy}` complete rows, and :math:`\\hat\\rho_1 = U(0)/I(0)`
    (:math:`-a(k)` is :math:`E(Z \\mid \\text{category } k)`, the item's normal score). One
    scoring step from a root-n consistent start is asymptotically efficient (Lehmann & Casella,
    1998, sec. 6.4); for independent items the true correlation is 0 and the step is taken from
    it, so :math:`\\hat\\rho_1` differs from the maximum-likelihood :func:`polychoric` by
    :math:`O_p(1/n)`, a small fraction of its sampling error :math:`O_p(n^{-1/2})`. The cost is
    one product of an ``n x p`` matrix with itself, against a likelihood maximised for every pair.

    Not for correlated items: away from 0 one step is not the maximum (at :math:`\\rho = 0.6`,
    three categories, n = 20,000: 0.605 against 0.599). A constant item is refused, as by
    :func:`polychoric`.

    Returns
    -------
    ndarray
        p x p correlation matrix, ones on the diagonal.

    References
    ----------
    Olsson, U. (1979). Maximum likelihood estimation of the polychoric correlation coefficient.
    *Psychometrika, 44*(4), 443-460.
    Lehmann, E. L., & Casella, G. (1998). *Theory of point estimation* (2nd ed.), sec. 6.4.
    Springer.
    """
    _names, codes, categories = ordinal_codes(data, columns, max_categories)
    n, p = codes.shape
    scores = np.zeros((n, p))
    m = np.empty(p)
    for j in range(p):
        present = codes[:, j] >= 0
        counts = np.bincount(codes[present, j], minlength=len(categories[j])).astype(np.float64)
        prop = counts / counts.sum()
        tau = np.concatenate([[-np.inf], ndtri(np.cumsum(prop)[:-1]), [np.inf]])
        dens = np.exp(-0.5 * tau ** 2) / np.sqrt(2 * np.pi)
        a = np.diff(dens)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_category = np.where(prop > 0, a / prop, 0.0)
        scores[present, j] = per_category[codes[present, j]]
        m[j] = np.sum(a ** 2 / np.where(prop > 0, prop, np.inf))
    observed = (codes >= 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (scores.T @ scores) / ((observed.T @ observed) * np.outer(m, m))
    np.fill_diagonal(r, 1.0)
    return r


def _pairwise_cuts(tables: np.ndarray, correct: float):
    """psych's ``global = FALSE`` thresholds: per pair, from its corrected table's margins.

    Returns (row cuts, column cuts, corrected tables, estimable, corrected, renormalised).
    """
    total = tables.sum(axis=(1, 2))
    row_used = tables.sum(axis=2) > 0
    col_used = tables.sum(axis=1) > 0
    fit = (row_used.sum(axis=1) >= 2) & (col_used.sum(axis=1) >= 2)
    empty = row_used[:, :, None] & col_used[:, None, :] & (tables == 0)
    if correct > 0:
        weights = np.where(empty, float(correct), tables)
        corrected = empty.any(axis=(1, 2)) & fit
    else:
        weights = tables
        corrected = np.zeros(len(tables), dtype=bool)

    def cuts(margin: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A cut after category k exists when some used category follows k; its share is the
        # cumulative corrected count over the uncorrected total (psych), or over the corrected
        # total where that share would reach 1.
        later = np.flip(np.cumsum(np.flip(used, axis=1), axis=1), axis=1)[:, 1:] > 0
        cum = np.cumsum(margin, axis=1)[:, :-1]
        share = cum / total[:, None]
        bad = (later & (share >= 1)).any(axis=1)
        share[bad] = cum[bad] / margin[bad].sum(axis=1, keepdims=True)
        inner = np.where(later, ndtri(np.minimum(share, 1.0)), np.inf)
        k = len(margin)
        return np.column_stack([np.full(k, -np.inf), inner, np.full(k, np.inf)]), bad

    a_cuts, bad_a = cuts(weights.sum(axis=2), row_used)
    b_cuts, bad_b = cuts(weights.sum(axis=1), col_used)
    return a_cuts, b_cuts, weights, fit, corrected, (bad_a | bad_b) & fit


def pearson_start(weights: np.ndarray) -> np.ndarray:
    """Pearson correlation of the category codes of each table, a starting value for rho."""
    k = weights.shape[1]
    score = np.arange(k, dtype=np.float64)
    total = weights.sum(axis=(1, 2))
    pa = weights.sum(axis=2) / total[:, None]
    pb = weights.sum(axis=1) / total[:, None]
    ma, mb = pa @ score, pb @ score
    va = pa @ score**2 - ma**2
    vb = pb @ score**2 - mb**2
    exy = np.einsum("pab,a,b->p", weights, score, score) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (exy - ma * mb) / np.sqrt(va * vb)
    return np.clip(np.nan_to_num(r, nan=0.0), -0.9, 0.9)


def maximise_correlations(a_cuts: np.ndarray, b_cuts: np.ndarray, weights: np.ndarray, start: np.ndarray,
                          progress=None):
    """Maximise each pair's log-likelihood in rho: Newton steps kept inside a bracket.

    The bracket [lo, hi] keeps the score positive at lo and negative at hi, so the iterate
    closes in on a local maximum (or the bound). A Newton step (observed information where the
    log-likelihood is concave, expected information elsewhere) that would leave the bracket is
    replaced by the bracket's midpoint. Returns (rho, converged).
    """
    m = len(start)
    rho = start.astype(np.float64).copy()
    lo = np.full(m, -_RHO_MAX)
    hi = np.full(m, _RHO_MAX)
    loglik = np.full(m, -np.inf)
    converged = np.zeros(m, dtype=bool)
    active = np.arange(m)
    for iteration in range(_MAX_ITER):
        if iteration == _BOUNDARY_PROBE and len(active):
            # Pairs still running are typically creeping towards |rho| = 1 because the
            # likelihood keeps rising: look at the bound they head for. Not falling there and
            # at least as likely, the estimate is the bound; otherwise the bound closes the bracket.
            bound = np.where(rho[active] >= 0, _RHO_MAX, -_RHO_MAX)
            ll_b, score_b, _hess, _info = _score(bound, a_cuts[active], b_cuts[active], weights[active])
            at_bound = (score_b * bound >= 0) & np.isfinite(ll_b) & (ll_b >= loglik[active])
            rho[active[at_bound]] = bound[at_bound]
            converged[active[at_bound]] = True
            if progress is not None and at_bound.any():
                progress(int(at_bound.sum()))
            lo[active] = np.where(~at_bound & (bound < 0), bound, lo[active])
            hi[active] = np.where(~at_bound & (bound > 0), bound, hi[active])
            active = active[~at_bound]
        if len(active) == 0:
            break
        r = rho[active]
        ll, score, hess, info = _score(r, a_cuts[active], b_cuts[active], weights[active])
        loglik[active] = ll
        lo[active] = np.where(score > 0, r, lo[active])
        hi[active] = np.where(score < 0, r, hi[active])
        lo_a, hi_a = lo[active], hi[active]
        curvature = np.where(hess < 0, hess, -info)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(score == 0, 0.0, -score / curvature)
        # Flat to machine precision (no cell probability moves with rho): only happens near
        # |rho| = 1 once the likelihood has reached its limit there; the estimate is the bound.
        flat = (info == 0) & (score == 0) & (r != 0)
        # A Newton step below the tolerance is taken even if rounding in the score has put the
        # bracket a hair to one side of the root.
        done = (np.abs(step) < _TOL) | (hi_a - lo_a < _TOL) | flat
        new = r + np.where(np.isfinite(step), step, 2.0)
        outside = ~((new > lo_a) & (new < hi_a)) & ~done
        new = np.where(outside, (lo_a + hi_a) / 2, new)
        new = np.where(flat, np.sign(r) * _RHO_MAX, new)
        rho[active] = np.clip(new, -_RHO_MAX, _RHO_MAX)
        converged[active[done]] = True
        active = active[~done]
        if progress is not None and done.any():
            progress(int(done.sum()))
    if progress is not None and len(active):
        progress(len(active))  # stopped at the iteration limit: settled all the same
    return rho, converged


def _score(rho: np.ndarray, a_cuts: np.ndarray, b_cuts: np.ndarray, weights: np.ndarray):
    """Score, observed second derivative and expected information of each pair's log-likelihood.

    With cell probabilities :math:`\\pi` obtained by differencing :math:`\\Phi_2` over the
    grid of cut points, :math:`\\pi'` by differencing :math:`\\phi_2` (Plackett's identity) and
    :math:`\\pi''` by differencing :math:`\\partial\\phi_2/\\partial\\rho`. A cell with
    observations whose probability is 0 in floating point (only with :math:`|\\rho|` near 1)
    makes the log-likelihood :math:`-\\infty` and the score point away from that bound; psych's
    ``polyF`` drops such cells instead. Returns (loglik, score, d2 loglik, information).
    """
    x = a_cuts[:, :, None]
    y = b_cuts[:, None, :]
    r = rho[:, None, None]
    x, y, r = np.broadcast_arrays(x, y, r)
    cdf = bivariate_normal_cdf(x, y, r)
    finite = np.isfinite(x) & np.isfinite(y)
    xf, yf, rf = x[finite], y[finite], r[finite]
    one_minus = (1 - rf) * (1 + rf)
    q = xf * xf - 2 * rf * xf * yf + yf * yf
    dens = np.exp(-q / (2 * one_minus)) / (2 * np.pi * np.sqrt(one_minus))
    d1 = np.zeros(x.shape)
    d2 = np.zeros(x.shape)
    d1[finite] = dens
    d2[finite] = dens * ((rf + xf * yf) / one_minus - rf * q / one_minus**2)

    def cells(g: np.ndarray) -> np.ndarray:
        return g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]

    prob, dprob, d2prob = cells(cdf), cells(d1), cells(d2)
    positive = prob > 0
    safe = np.where(positive, prob, 1.0)
    ratio = np.where(positive, dprob / safe, 0.0)
    observed = weights > 0
    used = positive & observed
    lost = (observed & ~positive).any(axis=(1, 2))
    loglik = np.where(lost, -np.inf, np.sum(np.where(used, weights * np.log(safe), 0.0), axis=(1, 2)))
    score = np.sum(np.where(used, weights * ratio, 0.0), axis=(1, 2))
    score = np.where(lost, np.where(rho >= 0, -np.inf, np.inf), score)
    hess = np.sum(np.where(used, weights * (d2prob / safe - ratio**2), 0.0), axis=(1, 2))
    info = weights.sum(axis=(1, 2)) * np.sum(np.where(positive, dprob * ratio, 0.0), axis=(1, 2))
    return loglik, score, hess, info


# --------------------------------------------------------------------------- bivariate normal


# Gauss-Legendre nodes and weights on [-1, 1] (half of each symmetric set), as in Genz's BVND.
_GL = {
    6: (np.array([0.9324695142031522, 0.6612093864662647, 0.2386191860831970]),
        np.array([0.1713244923791705, 0.3607615730481384, 0.4679139345726904])),
    12: (np.array([0.9815606342467191, 0.9041172563704750, 0.7699026741943050,
                   0.5873179542866171, 0.3678314989981802, 0.1252334085114692]),
         np.array([0.04717533638651177, 0.1069393259953183, 0.1600783285433464,
                   0.2031674267230659, 0.2334925365383547, 0.2491470458134029])),
    20: (np.array([0.9931285991850949, 0.9639719272779138, 0.9122344282513259,
                   0.8391169718222188, 0.7463319064601508, 0.6360536807265150,
                   0.5108670019508271, 0.3737060887154196, 0.2277858511416451,
                   0.07652652113349733]),
         np.array([0.01761400713915212, 0.04060142980038694, 0.06267204833410906,
                   0.08327674157670475, 0.1019301198172404, 0.1181945319615184,
                   0.1316886384491766, 0.1420961093183821, 0.1491729864726037,
                   0.1527533871307259])),
}
# Nodes 1 -/+ x on [0, 2] with their weights: the rule for an integral over [0, 1] scaled by 2.
_NODES = {k: (np.concatenate([1 - x, 1 + x]), np.concatenate([w, w])) for k, (x, w) in _GL.items()}


def bivariate_normal_cdf(x, y, rho) -> np.ndarray:
    """Standard bivariate normal distribution function :math:`\\Phi_2(x, y; \\rho)`, vectorised.

    .. math::

        \\Phi_2(x, y; \\rho) = P(Z_1 \\le x, Z_2 \\le y), \\quad
        (Z_1, Z_2) \\sim N\\Big(0, \\begin{pmatrix} 1 & \\rho \\\\ \\rho & 1 \\end{pmatrix}\\Big).

    Genz's (2004) algorithm: for :math:`|\\rho| < 0.925` Drezner & Wesolowsky's (1990)
    integral of :math:`\\phi_2` over :math:`\\arcsin\\rho` by Gauss-Legendre quadrature (6, 12
    or 20 points as :math:`|\\rho|` grows), otherwise their expansion around
    :math:`|\\rho| = 1`; absolute error about 1e-15. Infinite limits are exact.

    Parameters
    ----------
    x, y : array_like
        Upper limits (``-inf`` and ``inf`` allowed).
    rho : array_like
        Correlations in [-1, 1]. The three arguments broadcast together.

    Returns
    -------
    ndarray
        The probabilities, of the broadcast shape.

    Notes
    -----
    In R: ``mnormt::pmnorm(cbind(x, y), varcov = matrix(c(1, rho, rho, 1), 2))`` or
    ``mvtnorm::pmvnorm(upper = c(x, y), corr = matrix(c(1, rho, rho, 1), 2))``.
    """
    x, y, rho = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                                    np.asarray(rho, dtype=np.float64))
    if np.any(np.abs(rho) > 1) or np.any(np.isnan(rho)):
        raise ValueError(f"rho: need correlations in [-1, 1], got values from {np.nanmin(rho)} to {np.nanmax(rho)}")
    out = np.empty(x.shape)
    finite = np.isfinite(x) & np.isfinite(y)
    xi, yi = x[~finite], y[~finite]
    out[~finite] = np.where((xi == -np.inf) | (yi == -np.inf), 0.0,
                            np.where(xi == np.inf, ndtr(yi), ndtr(xi)))
    # Genz computes the upper orthant P(Z1 > h, Z2 > k); the lower one is that at (-x, -y).
    h, k, r = -x[finite], -y[finite], rho[finite]
    res = np.empty(h.shape)
    size = np.abs(r)
    for mask, order in ((size < 0.3, 6), ((size >= 0.3) & (size < 0.75), 12), ((size >= 0.75) & (size < 0.925), 20)):
        if mask.any():
            res[mask] = _upper_drezner(h[mask], k[mask], r[mask], order)
    high = size >= 0.925
    if high.any():
        res[high] = _upper_near_one(h[high], k[high], r[high])
    out[finite] = np.clip(res, 0.0, 1.0)
    return out


def _upper_drezner(h: np.ndarray, k: np.ndarray, r: np.ndarray, order: int) -> np.ndarray:
    """P(Z1 > h, Z2 > k) for |r| < 0.925: Phi(-h) Phi(-k) + integral of phi_2 over asin(r)."""
    nodes, weights = _NODES[order]
    hk = h * k
    hs = (h * h + k * k) / 2
    asr = np.arcsin(r) / 2
    sn = np.sin(asr[:, None] * nodes[None, :])
    terms = np.exp((sn * hk[:, None] - hs[:, None]) / (1 - sn * sn))
    return (terms @ weights) * asr / (2 * np.pi) + ndtr(-h) * ndtr(-k)


def _upper_near_one(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(Z1 > h, Z2 > k) for |r| >= 0.925: Drezner & Wesolowsky's expansion (Genz's BVND)."""
    nodes, weights = _NODES[20]
    negative = r < 0
    k = np.where(negative, -k, k)
    hk = h * k
    bvn = np.zeros(h.shape)
    inner = np.abs(r) < 1
    if inner.any():
        hh, kk, hki, ri = h[inner], k[inner], hk[inner], r[inner]
        as_ = (1 - ri) * (1 + ri)
        a = np.sqrt(as_)
        bs = (hh - kk) ** 2
        c = (4 - hki) / 8
        d = (12 - hki) / 80
        asr = -(bs / as_ + hki) / 2
        val = np.where(asr > -100, a * np.exp(asr) * (1 - c * (bs - as_) * (1 - d * bs) / 3 + c * d * as_**2), 0.0)
        b = np.sqrt(bs)
        sp = np.sqrt(2 * np.pi) * ndtr(-b / a)
        val = val - np.where(hki > -100, np.exp(-hki / 2) * sp * b * (1 - c * bs * (1 - d * bs) / 3), 0.0)
        half = a / 2
        xs = (half[:, None] * nodes[None, :]) ** 2
        asr_n = -(bs[:, None] / xs + hki[:, None]) / 2
        rs = np.sqrt(1 - xs)
        ep = np.exp(-(hki[:, None] / 2) * xs / (1 + rs) ** 2) / rs
        sp_n = 1 + c[:, None] * xs * (1 + 5 * d[:, None] * xs)
        terms = np.where(asr_n > -100, np.exp(asr_n) * (ep - sp_n), 0.0)
        val = val + half * (terms @ weights)
        bvn[inner] = -val / (2 * np.pi)
    low = np.where(h < 0, ndtr(k) - ndtr(h), ndtr(-h) - ndtr(-k))
    return np.where(~negative, bvn + ndtr(-np.maximum(h, k)), np.where(h >= k, -bvn, low - bvn))


# --------------------------------------------------------------------------- smoothing


def nearest_positive_definite(r: pd.DataFrame | np.ndarray, eig_tol: float = _EIG_TOL) -> pd.DataFrame | np.ndarray:
    """Smooth a correlation matrix that is not positive definite, as ``psych::cor.smooth`` does.

    With the eigendecomposition :math:`R = V \\Lambda V^\\top`: when the smallest eigenvalue
    is below machine epsilon (2.2e-16), every eigenvalue below ``eig_tol`` is set to
    ``100 * eig_tol``, the eigenvalues are rescaled to sum to :math:`p`
    (:math:`\\lambda \\leftarrow p \\lambda / \\sum \\lambda`), and
    :math:`S = V \\Lambda V^\\top` is turned back into a correlation matrix,
    :math:`R^* = D^{-1/2} S D^{-1/2}` with :math:`D = \\operatorname{diag}(S)`. This is an
    eigenvalue floor, not Higham's (2002) nearest correlation matrix in Frobenius norm; it is
    what psych, and so ``psych::fa`` on a polychoric matrix, uses. A positive-definite matrix
    is returned unchanged (a copy). A matrix whose smallest eigenvalue is between machine
    epsilon and ``eig_tol`` is left alone, as psych leaves it.

    Parameters
    ----------
    r : DataFrame or ndarray
        A symmetric matrix with unit diagonal and entries in [-1, 1].
    eig_tol : float, default 1e-12
        psych's ``eig.tol``.

    Returns
    -------
    DataFrame or ndarray
        Of the type of ``r`` (a DataFrame keeps its labels).

    Raises
    ------
    ValueError
        ``r`` is not square, not symmetric, has a diagonal entry other than 1, an entry outside
        [-1, 1] or a missing entry.

    Warns
    -----
    NotPositiveDefiniteWarning
        When the matrix was smoothed, with how many eigenvalues were raised and the smallest.

    Notes
    -----
    In R: ``psych::cor.smooth(r)``.

    References
    ----------
    Wothke, W. (1993). Nonpositive definite matrices in structural modeling. In K. A. Bollen &
    J. S. Long (Eds.), *Testing structural equation models* (pp. 256-293). Sage.

    Higham, N. J. (2002). Computing the nearest correlation matrix: a problem from finance.
    *IMA Journal of Numerical Analysis, 22*(3), 329-343.
    """
    if isinstance(eig_tol, bool) or not isinstance(eig_tol, (int, float)) or not np.isfinite(eig_tol) or eig_tol <= 0:
        raise InputError(f"eig_tol: need a number > 0, got {eig_tol!r}")
    frame = isinstance(r, pd.DataFrame)
    m = r.to_numpy(dtype=np.float64) if frame else np.array(r, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"r: need a square correlation matrix, got shape {m.shape}")
    if np.isnan(m).any():
        i, j = np.argwhere(np.isnan(m))[0]
        raise ValueError(f"r: entry [{i}, {j}] is missing; smoothing needs every correlation")
    asym = np.abs(m - m.T)
    if asym.max(initial=0.0) > 1e-8:
        i, j = np.unravel_index(np.argmax(asym), m.shape)
        raise ValueError(f"r is not symmetric: r[{i}, {j}] = {m[i, j]} but r[{j}, {i}] = {m[j, i]}")
    off = np.flatnonzero(np.abs(np.diag(m) - 1) > 1e-8)
    if len(off):
        raise ValueError(f"r is not a correlation matrix: diagonal entry {off[0]} is {m[off[0], off[0]]}, not 1")
    if np.abs(m).max() > 1 + 1e-8:
        i, j = np.unravel_index(np.argmax(np.abs(m)), m.shape)
        raise ValueError(f"r is not a correlation matrix: r[{i}, {j}] = {m[i, j]} is outside [-1, 1]")
    smoothed, n_adjusted, smallest = _cor_smooth(m, eig_tol)
    if n_adjusted:
        warnings.warn(_smooth_message("correlation matrix", m.shape[0], smallest, n_adjusted, eig_tol),
                      NotPositiveDefiniteWarning, stacklevel=2)
    else:
        smoothed = m
    if frame:
        return pd.DataFrame(smoothed, index=r.index, columns=r.columns)
    return smoothed


def _cor_smooth(r: np.ndarray, eig_tol: float = _EIG_TOL) -> tuple[np.ndarray, int, float]:
    """(smoothed matrix, eigenvalues raised, smallest eigenvalue); 0 raised means unchanged."""
    values, vectors = np.linalg.eigh((r + r.T) / 2)
    smallest = float(values[0])
    if smallest >= np.finfo(np.float64).eps:
        return r, 0, smallest
    low = values < eig_tol
    values = np.where(low, 100 * eig_tol, values)
    values = values * len(values) / values.sum()
    s = (vectors * values) @ vectors.T
    scale = 1 / np.sqrt(np.diag(s))
    out = s * np.outer(scale, scale)
    out = (out + out.T) / 2
    np.fill_diagonal(out, 1.0)
    return out, int(low.sum()), smallest


def _smooth_message(what: str, p: int, smallest: float, n_adjusted: int, eig_tol: float = _EIG_TOL) -> str:
    return (f"the {what} ({p} x {p}) is not positive definite (smallest eigenvalue {smallest:.3g}); "
            f"{n_adjusted} eigenvalue(s) below {eig_tol:g} were raised to {100 * eig_tol:g} and the matrix "
            "rescaled to a correlation matrix, as psych::cor.smooth does")


# --------------------------------------------------------------------------- input checks


def whole_number_values(col: pd.Series, name: str, need: str) -> np.ndarray:
    """An ordinal column's values as floats (NaN where missing), checked: numeric (not boolean)
    and every observed value a finite whole number.

    Raises
    ------
    InputError
        Naming the column, the first offending value and its row, and ``need`` (what the
        statistic needs, e.g. "WLSMV needs ordinal items coded as whole numbers").
    """
    if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        present = np.flatnonzero(col.notna().to_numpy())
        example = f"; first value {col.iloc[present[0]]!r} in row {present[0] + 1}" if len(present) else ""
        raise InputError(f"column {name!r} is not numeric (dtype {col.dtype}){example}; {need}")
    values = col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(values)
    bad = np.flatnonzero(present & ((values != np.round(values)) | np.isinf(values)))
    if len(bad):
        raise InputError(f"column {name!r} has the value {values[bad[0]]:g} in row {bad[0] + 1}, which is not a whole "
                         f"number; {need}")
    return values


def ordinal_codes(data: pd.DataFrame, columns, max_categories: int):
    """(names, n x p category codes with -1 for missing, sorted observed values per column)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if columns is None:
        columns = list(data.columns)
    elif isinstance(columns, str):
        raise TypeError(f"columns: expected a list of column names, got the string {columns!r}")
    names = list(columns)
    unknown = [c for c in names if c not in data.columns]
    if unknown:
        raise InputError(f"column {unknown[0]!r} is not in the data; columns are {list(data.columns)!r}")
    seen = set()
    for c in names:
        if c in seen:
            raise InputError(f"column {c!r} is listed twice in columns")
        seen.add(c)
    if len(names) < 2:
        raise InputError(f"polychoric correlations need at least 2 columns, got {len(names)}: {names!r}")
    if isinstance(max_categories, bool) or not isinstance(max_categories, (int, np.integer)) or max_categories < 2:
        raise InputError(f"max_categories: need a whole number >= 2, got {max_categories!r}")
    codes = np.full((len(data), len(names)), -1, dtype=np.int64)
    categories = []
    for j, c in enumerate(names):
        values = whole_number_values(data[c], c, "polychoric correlations need ordinal items coded as whole numbers")
        present = ~np.isnan(values)
        if not present.any():
            raise InputError(f"column {c!r} is entirely missing ({len(values)} rows); leave it out of columns")
        levels, inverse = np.unique(values[present], return_inverse=True)
        if len(levels) < 2:
            raise InputError(f"column {c!r} is constant (every observed value is {_fmt(levels[0])}); a polychoric "
                             "correlation needs at least 2 categories, so leave it out of columns")
        if len(levels) > max_categories:
            raise InputError(f"column {c!r} has {len(levels)} distinct values (more than max_categories="
                             f"{max_categories}); polychoric correlations are for ordinal items with few "
                             "categories, use Pearson correlations for (near-)continuous data")
        codes[present, j] = inverse.ravel()
        categories.append(levels)
    return names, codes, categories


def _pair_list(names: list[str], ii: np.ndarray, jj: np.ndarray, mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(f"{names[ii[k]]}-{names[jj[k]]}" for k in idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"{len(idx)} item pair(s) ({shown}{more})"


def _name_list(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _fmt(value: float) -> str:
    return f"{value:g}"
