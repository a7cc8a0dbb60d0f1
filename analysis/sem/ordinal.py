r"""lavaan's sample statistics for ordinal items: thresholds, polychoric correlations and their
asymptotic covariance matrix (NACOV), the input of the WLSMV/ULSMV estimators
(:mod:`analysis.sem.wls`).

Each item :math:`y_j` with categories :math:`1, \dots, K_j` is a coarsened standard-normal
variable :math:`y_j^*`, cut at the thresholds :math:`\tau_{j,1} < \dots < \tau_{j,K_j-1}`
(Muthen, 1984). lavaan's two-step estimates:

1. *Thresholds* from each item's marginal proportions,
   :math:`\hat\tau_{j,k} = \Phi^{-1}(\text{share of values} \le k)`; then each polychoric
   correlation :math:`\hat\rho_{ij}` maximises its pair's bivariate log-likelihood with those
   thresholds held fixed (:func:`analysis.polychoric.maximise_correlations`). The vector
   :math:`s = (\hat\tau, \hat\rho)` is lavaan's ``wls.obs``.
2. *Their asymptotic covariance matrix* :math:`\Gamma` (lavaan's ``NACOV``) from the casewise
   scores, as lavaan's ``muthen1984()``: with the univariate threshold scores :math:`S_\tau`
   (N x thresholds) and the bivariate correlation scores :math:`S_\rho` (N x pairs),
   :math:`A_{11}` the block-diagonal (per item) cross-product of :math:`S_\tau`,
   :math:`A_{22} = \operatorname{diag}(S_\rho^\top S_\rho)`, :math:`A_{21}` the cross-product of
   each pair's correlation score with the pair's bivariate threshold scores, and

   .. math:: B^{-1} = \begin{pmatrix} A_{11}^{-1} & 0 \\ -A_{22}^{-1} A_{21} A_{11}^{-1} & A_{22}^{-1}
             \end{pmatrix}, \qquad \Gamma = N\, B^{-1} (S^\top S) B^{-\top}, \quad S = (S_\tau, S_\rho).

   Equivalently :math:`\Gamma = N\,\Xi^\top \Xi` with the casewise influence functions
   :math:`\Xi = S B^{-\top}`, which is how it is computed here (vectorised over item pairs and
   respondents; cells whose probability is below :math:`\sqrt{\epsilon}` give zero scores, as
   lavaan's ``NA`` scores do).

**Missing values** (lavaan's ``missing = "pairwise"``): the thresholds of an item come from the
cases that answered it, each polychoric correlation from the cases that answered both items
(with the items' thresholds from step 1); a case's score is 0 for every statistic whose items it
did not answer (lavaan's ``NA`` scores, dropped from every cross-product), so :math:`A_{11}`,
:math:`A_{21}`, :math:`A_{22}` and :math:`S^\top S` sum over the available cases; :math:`N` counts
the cases with at least one item answered (lavaan ignores empty cases).

In R: ``fit <- lavaan::cfa(model, d, ordered = TRUE, estimator = "WLSMV")`` (``missing =
"pairwise"``), then ``lavInspect(fit, "wls.obs")`` and ``lavInspect(fit, "gamma")``.

References
----------
Muthen, B. (1984). A general structural equation model with dichotomous, ordered categorical,
    and continuous latent variable indicators. *Psychometrika, 49*(1), 115-132.
    https://doi.org/10.1007/BF02294210
Muthen, B., du Toit, S. H. C., & Spisic, D. (1997). Robust inference using weighted least
    squares and quadratic estimating equations in latent variable modeling with categorical and
    continuous outcomes. Unpublished manuscript.
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. *Journal of
    Statistical Software, 48*(2), 1-36. https://doi.org/10.18637/jss.v048.i02
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import ndtr, ndtri

from analysis.distributions import norm_pdf
from analysis.errors import InputError
from analysis.polychoric import (bivariate_normal_cdf, maximise_correlations, ordinal_codes, pearson_start,
                                 whole_number_values)
from analysis.warnings import ConvergenceWarning, GapscaleWarning

__all__ = ["MISSING_METHODS", "OrdinalStatistics", "check_categories", "check_items", "ordinal_statistics"]

MISSING_METHODS = ("listwise", "pairwise")
# lavaan's bivariate scores are NA (and dropped from every cross-product) in cells whose
# probability is at or below sqrt(machine epsilon).
_SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))
# lavaan bounds each polychoric correlation to [-0.999, 0.999] and warns above 0.99.
_RHO_BOUND = 0.999
_RHO_WARN = 0.99


@dataclass(frozen=True)
class OrdinalStatistics:
    """Thresholds, polychoric correlations and their asymptotic covariance matrix.

    The statistics are stacked as lavaan's ``wls.obs``: every item's thresholds (item by
    item), then the correlations of the pairs (i, j), i > j, column by column of the lower
    triangle, named ``"A1|t1"`` and ``"A1~~A2"``.

    Attributes
    ----------
    names : tuple of str
        The items, in the order of the columns.
    n : int
        Respondents: complete rows (``missing="listwise"``), or rows with at least one item
        answered (``"pairwise"``).
    missing : str
        ``"listwise"`` or ``"pairwise"``, how the statistics were computed.
    thresholds : Series
        :math:`\\hat\\tau`, indexed ``"item|t1"``, ``"item|t2"``, ...
    correlation : DataFrame
        The polychoric correlation matrix (items x items), not smoothed.
    influence : ndarray
        N x (thresholds + pairs): the casewise influence functions :math:`\\Xi` of the
        statistics, so that :math:`\\Gamma = N\\,\\Xi^\\top\\Xi` (see the module docstring).
    pairs : ndarray
        Pairs x 2 item indices (i, j), i > j, in the order of the correlations.
    """

    names: tuple[str, ...]
    n: int
    thresholds: pd.Series
    correlation: pd.DataFrame
    influence: np.ndarray
    pairs: np.ndarray
    missing: str = "listwise"
    variances: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype=float))

    @property
    def continuous(self) -> tuple[str, ...]:
        """The continuous (numeric) variables, with a mean and a variance among the statistics."""
        return tuple(v.split("~~")[0] for v in self.variances.index)

    @property
    def sd(self) -> np.ndarray:
        """Per variable the scale of its covariances: the standard deviation of a continuous
        variable, 1 for an ordered item."""
        sd = np.ones(len(self.names))
        for v, var in zip(self.continuous, self.variances.to_numpy()):
            sd[self.names.index(v)] = np.sqrt(var)
        return sd

    @property
    def covariance(self) -> pd.DataFrame:
        """Polychoric, polyserial and Pearson correlations times the continuous variables'
        standard deviations (lavaan's ``sampstat`` ``cov``)."""
        sd = self.sd
        return pd.DataFrame(self.correlation.to_numpy() * np.outer(sd, sd), index=self.names, columns=self.names)

    @property
    def n_univariate(self) -> int:
        """Thresholds (and the continuous variables' means) and variances: the statistics before
        the covariances."""
        return len(self.thresholds) + len(self.variances)

    @property
    def labels(self) -> list[str]:
        """Names of the statistics, as lavaan's ``names(lavInspect(fit, "wls.obs"))``."""
        return (list(self.thresholds.index) + list(self.variances.index)
                + [f"{self.names[j]}~~{self.names[i]}" for i, j in self.pairs])

    @property
    def sample(self) -> np.ndarray:
        """The statistics :math:`s` (lavaan's ``wls.obs``): thresholds (minus the mean of a
        continuous variable), the continuous variables' variances, the covariances."""
        r = self.covariance.to_numpy()
        return np.concatenate([self.thresholds.to_numpy(), self.variances.to_numpy(),
                               r[self.pairs[:, 0], self.pairs[:, 1]]])

    @property
    def nacov(self) -> pd.DataFrame:
        """:math:`\\Gamma`, the asymptotic covariance matrix of :math:`\\sqrt{N} s`
        (``lavInspect(fit, "gamma")``)."""
        return pd.DataFrame(self.n * self.influence.T @ self.influence, index=self.labels, columns=self.labels)

    @property
    def weights(self) -> np.ndarray:
        """The DWLS weights :math:`1/\\operatorname{diag}(\\Gamma)` (``diag(lavInspect(fit, "wls.v"))``)."""
        return 1.0 / (self.n * np.einsum("ij,ij->j", self.influence, self.influence))

    @property
    def n_thresholds(self) -> int:
        return len(self.thresholds)


def ordinal_statistics(data: pd.DataFrame, columns: list[str] | None = None,
                       max_categories: int = 20, missing: str = "listwise", continuous=()) -> OrdinalStatistics:
    """lavaan's sample statistics for ordinal items: thresholds, polychoric correlations, Gamma.

    Thresholds from each item's marginal proportions; each polychoric correlation maximises
    its pair's likelihood with those thresholds fixed (Olsson's two-step estimator, exact to
    about 1e-10; lavaan's ``nlminb`` stops earlier, which bounds the agreement to about 1e-6),
    bounded to [-0.999, 0.999] as lavaan; the asymptotic covariance matrix from the casewise
    scores as lavaan's ``muthen1984()`` (see the module docstring). As lavaan, a 2 x 2 table
    (two binary items) with one empty cell has 0.5 moved into that cell and its diagonal
    opposite (margins kept) before its correlation is estimated; larger tables are not
    corrected. The categories of an item are its distinct observed values in increasing order.

    Parameters
    ----------
    data : DataFrame
        The items. With ``missing="listwise"`` complete data (no missing values in
        ``columns``: drop incomplete rows first, as :func:`analysis.sem.wls.fit_wls` does);
        with ``"pairwise"`` missing cells are allowed (rows with no item answered are left out).
    columns : list of str, optional
        At least two item columns; all columns when omitted. Whole numbers only.
    max_categories : int, default 20
        Most distinct values an item may have; more suggests a continuous variable.
    missing : {"listwise", "pairwise"}, default "listwise"
        ``"pairwise"``: lavaan's pairwise statistics (see the module docstring).
    continuous : list of str, optional
        Columns that are continuous (lavaan: not ``ordered``): their means and variances, and
        polyserial (with an ordered item) or Pearson (two continuous) correlations, as lavaan's
        ``muthen1984()``; listwise only. See :func:`_mixed_statistics`.

    Returns
    -------
    OrdinalStatistics

    Raises
    ------
    ValueError
        A column that is not numeric, has a value that is not a whole number, too many
        distinct values, a single category or (``listwise``) a missing value; two binary items whose 2 x 2
        table has two empty cells (their correlation is +/-1). Each message names the column.

    Warns
    -----
    GapscaleWarning
        A polychoric correlation above 0.99 in absolute value (lavaan: "correlation between
        variables ... is (nearly) 1.0").
    ConvergenceWarning
        A correlation's maximisation stopped at its iteration limit.

    Notes
    -----
    In R: ``fit <- lavaan::cfa(model, d, ordered = TRUE, estimator = "WLSMV")``, then
    ``lavInspect(fit, "wls.obs")`` and ``lavInspect(fit, "gamma")``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    columns = list(data.columns) if columns is None else list(columns)
    if missing not in MISSING_METHODS:
        raise InputError(f"missing must be one of {', '.join(MISSING_METHODS)} for ordinal statistics, got {missing!r}")
    continuous = [c for c in columns if c in set(continuous)]
    if continuous:
        if missing != "listwise":
            raise InputError(f"missing='pairwise' with continuous variables ({', '.join(continuous)}) among ordered "
                             "items is not supported; use listwise deletion")
        return _mixed_statistics(data, columns, continuous, max_categories)
    check_items(data, columns, max_categories)
    incomplete = [c for c in columns if data[c].isna().any()]
    if missing == "pairwise":
        data = data.loc[data[columns].notna().any(axis=1)]
    elif incomplete:
        c = incomplete[0]
        row = int(np.flatnonzero(data[c].isna().to_numpy())[0]) + 1
        raise InputError(f"column {c!r} has {int(data[c].isna().sum())} missing value(s) (first in row {row}); the "
                         "ordinal statistics need complete rows: drop incomplete rows first (fit_wls deletes them "
                         "listwise, as lavaan does for WLSMV by default) or use missing='pairwise'")
    check_categories(data, columns)
    names, codes, categories = ordinal_codes(data, columns, max_categories)
    n, p = codes.shape
    seen = codes >= 0  # answered cells (all of them with listwise)
    n_cat = np.array([len(c) for c in categories])
    k_max = int(n_cat.max())
    n_th = n_cat - 1
    th_start = np.concatenate([[0], np.cumsum(n_th)[:-1]])
    nth = int(n_th.sum())

    # Step 1: thresholds from the marginal proportions; grid of cut points padded with +inf.
    counts = np.zeros((p, k_max))
    for j in range(p):
        counts[j, :n_cat[j]] = np.bincount(codes[seen[:, j], j], minlength=n_cat[j])
    tau = np.full((p, k_max - 1), np.inf)
    for j in range(p):  # each item's own answered cases (all rows with listwise)
        tau[j, :n_th[j]] = ndtri(np.cumsum(counts[j, :n_cat[j]])[:-1] / counts[j].sum())
    grid = np.column_stack([np.full(p, -np.inf), tau, np.full(p, np.inf)])

    # Pairs in lavaan's order: (i, j) with i > j, column by column of the lower triangle.
    jj, ii = np.triu_indices(p, k=1)
    onehot = np.zeros((n, p * k_max))
    rows_seen, cols_seen = np.nonzero(seen)
    onehot[rows_seen, cols_seen * k_max + codes[rows_seen, cols_seen]] = 1.0
    tables = (onehot.T @ onehot).reshape(p, k_max, p, k_max)[ii, :, jj, :]  # rows: item i's categories

    together = tables.sum(axis=(1, 2))
    if (together < 2).any():
        k = int(np.flatnonzero(together < 2)[0])
        raise InputError(f"items {names[jj[k]]!r} and {names[ii[k]]!r} are answered together in {int(together[k])} "
                         "row(s): their polychoric correlation cannot be estimated; leave one of them out")
    # Step 2: polychoric correlations given the thresholds (lavaan's 2 x 2 zero-cell rule first).
    fit_tables = _zero_cell_adjusted(tables, n_cat[ii], n_cat[jj], names, ii, jj)
    rho, converged = maximise_correlations(grid[ii], grid[jj], fit_tables, pearson_start(fit_tables))
    if not converged.all():
        warnings.warn(f"the polychoric correlation did not converge for {_pairs_text(names, ii, jj, ~converged)}; "
                      "the last iterate is used", ConvergenceWarning, stacklevel=2)
    rho = np.clip(rho, -_RHO_BOUND, _RHO_BOUND)
    high = np.abs(rho) > _RHO_WARN
    if high.any():
        warnings.warn(f"the polychoric correlation of {_pairs_text(names, ii, jj, high)} is (nearly) 1 in absolute "
                      f"value (above {_RHO_WARN}); the items are (almost) redundant", GapscaleWarning, stacklevel=2)

    # Scores. Cell probabilities, their derivatives in rho and in each item's thresholds.
    prob, d_rho, d_tau1, d_tau2 = _cell_derivatives(grid[ii], grid[jj], rho)
    bad = prob <= _SQRT_EPS
    safe = np.where(bad, 1.0, prob)
    g = np.where(bad, 0.0, d_rho / safe)            # correlation score of a respondent in cell (a, b)
    m = np.where(bad, 0.0, tables * g / safe)       # n_ab g_ab / pi_ab: weights of the threshold cross-products
    a22 = np.einsum("pab,pab->p", tables, g * g)
    empty = np.flatnonzero(a22 <= 0)
    if len(empty):
        raise InputError(f"the polychoric correlation of {names[jj[empty[0]]]!r} and {names[ii[empty[0]]]!r} carries "
                         "no information (its score is 0 for every respondent); leave one of the items out")
    # A21: cross-products of the correlation score with the bivariate threshold scores; a cut
    # point t is the upper bound of category t and the lower bound of category t + 1.
    a21_first = np.einsum("ptb,ptb->pt", d_tau1, m[:, :-1, :] - m[:, 1:, :])
    a21_second = np.einsum("pta,pat->pt", d_tau2, m[:, :, :-1] - m[:, :, 1:])
    a21 = np.zeros((len(ii), nth))
    t_idx = np.arange(k_max - 1)
    for items, block in ((ii, a21_first), (jj, a21_second)):
        valid = t_idx[None, :] < n_th[items][:, None]
        rows, ts = np.nonzero(valid)
        a21[rows, th_start[items][rows] + ts] = block[rows, ts]

    # Univariate threshold scores and their influence functions S_tau A11^-1, item by item.
    infl_tau = np.zeros((n, nth))
    for j in range(p):
        k = n_cat[j]
        cuts = grid[j, :k + 1]
        p_cat = np.diff(ndtr(cuts))
        dens = norm_pdf(cuts[1:k])                  # phi at the K - 1 thresholds
        score = np.zeros((k, k - 1))                      # score of a respondent in category c
        score[np.arange(k - 1), np.arange(k - 1)] = dens / p_cat[:k - 1]
        score[np.arange(1, k), np.arange(k - 1)] -= dens / p_cat[1:]
        a11 = score.T @ (counts[j, :k, None] * score)
        infl_tau[seen[:, j], th_start[j]:th_start[j] + k - 1] = (score @ np.linalg.inv(a11))[codes[seen[:, j], j]]
    # a case's score is 0 for a pair it did not answer (lavaan's NA scores)
    score_rho = np.where(seen[:, ii] & seen[:, jj], g[np.arange(len(ii))[None, :], codes[:, ii], codes[:, jj]], 0.0)
    infl_rho = (score_rho - infl_tau @ a21.T) / a22

    r = np.eye(p)
    r[ii, jj] = rho
    r[jj, ii] = rho
    labels = [f"{names[j]}|t{t + 1}" for j in range(p) for t in range(n_th[j])]
    return OrdinalStatistics(
        names=tuple(names), n=int(n),
        thresholds=pd.Series(np.concatenate([tau[j, :n_th[j]] for j in range(p)]), index=labels),
        correlation=pd.DataFrame(r, index=names, columns=names),
        influence=np.hstack([infl_tau, infl_rho]), pairs=np.column_stack([ii, jj]), missing=missing)


def _cell_derivatives(x_cuts: np.ndarray, y_cuts: np.ndarray, rho: np.ndarray):
    """Per pair and cell: probability, d/d rho, d/d first item's cut t (t x columns), d/d second
    item's cut t (t x rows). Cell (a, b) lies between cuts a and a+1 of the first item."""
    x = x_cuts[:, :, None]
    y = y_cuts[:, None, :]
    r = rho[:, None, None]
    cdf = bivariate_normal_cdf(x, y, r)
    xb, yb, rb = np.broadcast_arrays(x, y, r)
    finite = np.isfinite(xb) & np.isfinite(yb)
    one_minus = (1 - rb[finite]) * (1 + rb[finite])
    xf, yf = xb[finite], yb[finite]
    dens = np.zeros(xb.shape)
    dens[finite] = np.exp(-(xf * xf - 2 * rb[finite] * xf * yf + yf * yf) / (2 * one_minus)) / (
        2 * np.pi * np.sqrt(one_minus))

    def cells(v):
        return v[:, 1:, 1:] - v[:, :-1, 1:] - v[:, 1:, :-1] + v[:, :-1, :-1]

    root = np.sqrt((1 - rho) * (1 + rho))[:, None, None]

    def cut_derivative(cuts, other):
        # d Phi2(c, y) / dc = phi(c) Phi((y - rho c) / R), differenced over the other item's cuts.
        c = cuts[:, 1:-1]
        ok = np.isfinite(c)
        c0 = np.where(ok, c, 0.0)[:, :, None]
        cond = ndtr((other[:, None, :] - rho[:, None, None] * c0) / root)
        return np.where(ok[:, :, None], norm_pdf(c0) * np.diff(cond, axis=2), 0.0)

    return cells(cdf), cells(dens), cut_derivative(x_cuts, y_cuts), cut_derivative(y_cuts, x_cuts)


def _zero_cell_adjusted(tables, k_first, k_second, names, ii, jj) -> np.ndarray:
    """lavaan's rule for 2 x 2 tables: one empty cell gets 0.5 (and its diagonal opposite
    too, the other two cells lose 0.5: margins kept); two empty cells are refused."""
    out = tables.copy()
    binary = (k_first == 2) & (k_second == 2)
    zeros = (tables[:, :2, :2] == 0).sum(axis=(1, 2))
    two = np.flatnonzero(binary & (zeros >= 2))
    if len(two):
        k = two[0]
        raise InputError(f"binary items {names[jj[k]]!r} and {names[ii[k]]!r}: their 2 x 2 table has two empty cells, "
                         "so their tetrachoric correlation is +/-1 (lavaan sets it to +/-1 and warns); leave one of "
                         "them out of the model")
    for k in np.flatnonzero(binary & (zeros == 1)):
        t = out[k]
        sign = 1.0 if t[0, 0] == 0 or t[1, 1] == 0 else -1.0
        t[0, 0] += 0.5 * sign
        t[1, 1] += 0.5 * sign
        t[0, 1] -= 0.5 * sign
        t[1, 0] -= 0.5 * sign
    return out


# --------------------------------------------------------------------------- input checks


def check_items(data: pd.DataFrame, columns: list[str], max_categories: int, minimum: int = 2) -> None:
    """Refuse (:class:`~analysis.errors.InputError`, naming the column, row and value) items
    that are not ordinal: a column absent, not numeric, with a value that is not a whole number,
    entirely missing or with more than ``max_categories`` distinct values; fewer than 2 columns.
    Missing cells are allowed (checked before rows are deleted)."""
    if isinstance(max_categories, bool) or not isinstance(max_categories, (int, np.integer)) or max_categories < 2:
        raise InputError(f"max_categories: need a whole number >= 2, got {max_categories!r}")
    unknown = [c for c in columns if c not in data.columns]
    if unknown:
        raise InputError(f"column {unknown[0]!r} is not in the data; columns are {list(data.columns)!r}")
    if len(columns) < minimum:
        raise InputError(f"WLSMV needs at least {minimum} ordinal items, got {len(columns)}: {columns!r}")
    for c in columns:
        values = whole_number_values(data[c], c, "WLSMV is for ordinal (Likert) items coded as whole numbers (e.g. "
                                     "1-7); for continuous data use estimator ML or MLR")
        present = ~np.isnan(values)
        if not present.any():
            raise InputError(f"column {c!r} is entirely missing ({len(values)} rows); leave it out of the model")
        distinct = len(np.unique(values[present]))
        if distinct > max_categories:
            raise InputError(f"column {c!r} has {distinct} distinct values (more than max_categories={max_categories}); "
                             "it looks continuous, not ordinal: use estimator ML or MLR")


def check_categories(data: pd.DataFrame, columns: list[str]) -> None:
    """Refuse (:class:`~analysis.errors.InputError`) an item with fewer than 2 observed categories
    in the rows used (``data``: after listwise deletion)."""
    for c in columns:
        values = data[c].dropna().unique()
        if len(values) == 0:
            raise InputError(f"column {c!r} has no observed value in the rows used; leave it out of the model")
        if len(values) < 2:
            raise InputError(f"column {c!r} has a single observed category (every value is {values[0]:g} in the "
                             f"{int(data[c].notna().sum())} rows used); an ordinal item needs at least 2 categories: "
                             "leave it out of the model")


def _pairs_text(names, ii, jj, mask, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(f"{names[jj[k]]}-{names[ii[k]]}" for k in idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"{len(idx)} item pair(s) ({shown}{more})"




# --------------------------------------------------------------------------- mixed data


_POLYSERIAL_BOUND = 0.995  # lavaan's bounds of a polyserial (and two-step Pearson) correlation


def _threshold_part(y: np.ndarray):
    """One ordered item (complete): codes, thresholds and the influence functions of the
    thresholds (n x K-1), the cut grid (-inf, tau, inf)."""
    levels, codes = np.unique(y, return_inverse=True)
    k = len(levels)
    counts = np.bincount(codes, minlength=k).astype(float)
    tau = ndtri(np.cumsum(counts)[:-1] / len(y))
    grid = np.concatenate([[-np.inf], tau, [np.inf]])
    p_cat = np.diff(ndtr(grid))
    dens = norm_pdf(tau)
    score = np.zeros((k, k - 1))
    score[np.arange(k - 1), np.arange(k - 1)] = dens / p_cat[:k - 1]
    score[np.arange(1, k), np.arange(k - 1)] -= dens / p_cat[1:]
    a11 = score.T @ (counts[:, None] * score)
    return codes, tau, grid, (score @ np.linalg.inv(a11))[codes]


def _polyserial(z: np.ndarray, sd: float, var: float, codes: np.ndarray, grid: np.ndarray):
    r"""lavaan's two-step polyserial correlation of a continuous variable (standardised values
    ``z``) and an ordered item (category ``codes``, cuts ``grid``): rho maximises
    :math:`\sum\log[\Phi((\tau_k - \rho z)/R) - \Phi((\tau_{k-1} - \rho z)/R)]`,
    :math:`R = \sqrt{1-\rho^2}`, on [-0.995, 0.995]; the casewise scores of rho and of the
    bivariate log-likelihood in the mean, the variance and the thresholds (lavaan's
    ``lav_bvmix_cor_scores``)."""
    upper, lower = grid[codes + 1], grid[codes]

    def parts(rho):
        r = np.sqrt(1 - rho * rho)
        a_u = np.where(np.isfinite(upper), (np.where(np.isfinite(upper), upper, 0) - rho * z) / r, upper)
        a_l = np.where(np.isfinite(lower), (np.where(np.isfinite(lower), lower, 0) - rho * z) / r, lower)
        prob = np.maximum(ndtr(a_u) - ndtr(a_l), np.finfo(float).eps)
        return r, a_u, a_l, prob

    res = optimize.minimize_scalar(lambda rho: -np.sum(np.log(parts(rho)[3])), method="bounded",
                                   bounds=(-_POLYSERIAL_BOUND, _POLYSERIAL_BOUND), options={"xatol": 1e-13})
    rho = float(res.x)
    r, a_u, a_l, prob = parts(rho)
    phi_u, phi_l = norm_pdf(a_u), norm_pdf(a_l)  # 0 at infinite cuts
    diff = phi_u - phi_l
    d_mu = (z + rho / r * diff / prob) / sd
    d_var = ((z * z - 1) + rho * z / r * diff / prob) / (2 * var)
    k1 = len(grid) - 2
    d_th = np.zeros((len(z), k1))
    rows = np.arange(len(z))
    up = codes < k1  # the case's category has an upper cut: threshold codes
    d_th[rows[up], codes[up]] += phi_u[up] / (r * prob[up])
    low = codes > 0
    d_th[rows[low], codes[low] - 1] -= phi_l[low] / (r * prob[low])
    tu = np.where(np.isfinite(upper), phi_u * (np.where(np.isfinite(upper), upper, 0) * rho - z), 0.0)
    tl = np.where(np.isfinite(lower), phi_l * (np.where(np.isfinite(lower), lower, 0) * rho - z), 0.0)
    d_rho = (tu - tl) / (prob * r ** 3)
    return rho, d_rho, d_mu, d_var, d_th


def _pearson(y1: np.ndarray, y2: np.ndarray, m1, m2, v1, v2):
    r"""lavaan's two-step correlation of two continuous variables: rho maximises the bivariate
    normal log-likelihood with the means and (ML) variances fixed, on [-0.995, 0.995]; the
    casewise scores (lavaan's ``lav_bvreg_cor_scores``)."""
    c1, c2 = y1 - m1, y2 - m2
    s1, s2 = np.sqrt(v1), np.sqrt(v2)
    q11, q12, q22 = c1 * c1 / v1, c1 * c2 / (s1 * s2), c2 * c2 / v2

    def nll(rho):
        r = 1 - rho * rho
        return 0.5 * len(y1) * np.log(r) + np.sum(q11 - 2 * rho * q12 + q22) / (2 * r)

    res = optimize.minimize_scalar(nll, method="bounded", bounds=(-_POLYSERIAL_BOUND, _POLYSERIAL_BOUND),
                                   options={"xatol": 1e-13})
    rho = float(res.x)
    r = 1 - rho * rho
    d_mu1 = (2 * c1 / v1 - 2 * rho * c2 / (s1 * s2)) / (2 * r)
    d_mu2 = -(2 * rho * c1 / (s1 * s2) - 2 * c2 / v2) / (2 * r)
    d_var1 = -(0.5 / v1 - (c1 * c1 / (v1 * v1) - rho * c1 * c2 / (v1 * s1 * s2)) / (2 * r))
    d_var2 = -(0.5 / v2 + (rho * c1 * c2 / (v2 * s1 * s2) - c2 * c2 / (v2 * v2)) / (2 * r))
    q = q11 - 2 * rho * q12 + q22
    d_rho = rho / r + (q12 / r - q * rho / (r * r))
    return rho, d_rho, (d_mu1, d_var1), (d_mu2, d_var2)


def _mixed_statistics(data: pd.DataFrame, columns: list[str], continuous: list[str],
                      max_categories: int) -> OrdinalStatistics:
    r"""lavaan's ``muthen1984()`` for ordered items with continuous variables (complete rows).

    Univariate: an ordered item's thresholds (as :func:`ordinal_statistics`); a continuous
    variable's mean :math:`\bar y` and ML variance :math:`v` with the scores
    :math:`(y-\bar y)/v` and :math:`-1/(2v) + (y-\bar y)^2/(2v^2)` (their :math:`A_{11}` block
    the cross-product of the two). Correlations: polychoric (two ordered items), polyserial
    (:func:`_polyserial`), Pearson (:func:`_pearson`), each with :math:`A_{21}` the cross-product
    of its score with the bivariate scores of the univariate parameters. The influence functions
    :math:`\Xi = SB^{-\top}` as :func:`ordinal_statistics`; then lavaan's delta rule to the
    covariance metric, :math:`\sigma_{ij} = \rho_{ij}s_is_j` (:math:`s` the standard deviation of a
    continuous variable, 1 for an ordered item), and the sign of a mean's row reversed, as its
    statistic is :math:`-\bar y` (lavaan's ``wls.obs``).
    """
    cont = set(continuous)
    ordinal = [c for c in columns if c not in cont]
    if ordinal:
        check_items(data, ordinal, max_categories, minimum=1)
    for c in continuous:
        if c not in data.columns:
            raise InputError(f"column {c!r} is not in the data; columns are {list(data.columns)!r}")
        col = data[c]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            raise InputError(f"column {c!r} is not numeric (dtype {col.dtype})")
    incomplete = [c for c in columns if data[c].isna().any()]
    if incomplete:
        c = incomplete[0]
        raise InputError(f"column {c!r} has {int(data[c].isna().sum())} missing value(s); the statistics of "
                         "continuous and ordered variables need complete rows (listwise deletion)")
    check_categories(data, ordinal)
    n, p = len(data), len(columns)
    values = {c: data[c].to_numpy(dtype=float) for c in columns}
    th_labels, th_cols, var_labels, var_vals, var_col = [], {}, [], [], {}
    blocks, th_values = [], []
    info = {}
    col = 0
    for c in columns:
        y = values[c]
        if c in cont:
            m = float(y.mean())
            v = float(np.mean((y - m) ** 2))
            if v <= 0:
                raise InputError(f"column {c!r} is constant; leave it out of the model")
            sc = np.column_stack([(y - m) / v, -1 / (2 * v) + (y - m) ** 2 / (2 * v * v)])
            infl = sc @ np.linalg.inv(sc.T @ sc)
            info[c] = ("num", m, v, infl)
            th_labels.append(f"{c}~1")
            th_values.append(-m)
            th_cols[c] = [col]
            col += 1
        else:
            codes, tau, grid, infl = _threshold_part(y)
            info[c] = ("ord", codes, grid, infl)
            th_labels += [f"{c}|t{t + 1}" for t in range(len(tau))]
            th_values += list(tau)
            th_cols[c] = list(range(col, col + len(tau)))
            col += len(tau)
    nth = col
    for c in columns:
        if c in cont:
            var_col[c] = col
            var_labels.append(f"{c}~~{c}")
            var_vals.append(info[c][2])
            col += 1
    uni = np.zeros((n, col))
    for c in columns:
        kind = info[c][0]
        if kind == "num":
            uni[:, th_cols[c][0]] = info[c][3][:, 0]
            uni[:, var_col[c]] = info[c][3][:, 1]
        else:
            uni[:, th_cols[c]] = info[c][3]

    poly = ordinal_statistics(data[ordinal], ordinal, max_categories) if len(ordinal) >= 2 else None
    jj, ii = np.triu_indices(p, k=1)
    rho = np.zeros(len(ii))
    infl_rho = np.zeros((n, len(ii)))
    for k, (i, j) in enumerate(zip(ii, jj)):
        a, b = columns[i], columns[j]
        if a not in cont and b not in cont:
            oi, oj = ordinal.index(a), ordinal.index(b)
            pk = int(np.flatnonzero((poly.pairs[:, 0] == oi) & (poly.pairs[:, 1] == oj))[0])
            rho[k] = poly.correlation.iat[oi, oj]
            infl_rho[:, k] = poly.influence[:, poly.n_thresholds + pk]
            continue
        a21 = np.zeros(col)
        if a in cont and b in cont:
            (_, m1, v1, _), (_, m2, v2, _) = info[a], info[b]
            r, score, (dm1, dv1), (dm2, dv2) = _pearson(values[a], values[b], m1, m2, v1, v2)
            for name, dm, dv in ((a, dm1, dv1), (b, dm2, dv2)):
                a21[th_cols[name][0]] = score @ dm
                a21[var_col[name]] = score @ dv
        else:
            num, ordi = (a, b) if a in cont else (b, a)
            _, m, v, _ = info[num]
            _, codes, grid, _ = info[ordi]
            r, score, dm, dv, dth = _polyserial((values[num] - m) / np.sqrt(v), np.sqrt(v), v, codes, grid)
            a21[th_cols[num][0]] = score @ dm
            a21[var_col[num]] = score @ dv
            a21[th_cols[ordi]] = score @ dth
        rho[k] = r
        infl_rho[:, k] = (score - uni @ a21) / (score @ score)
    high = np.abs(rho) > _RHO_WARN
    if high.any():
        warnings.warn(f"the correlation of {_pairs_text(columns, ii, jj, high)} is (nearly) 1 in absolute value "
                      f"(above {_RHO_WARN}); the variables are (almost) redundant", GapscaleWarning, stacklevel=3)
    # delta rule to covariances: sigma_ij = rho_ij s_i s_j
    sd = np.array([np.sqrt(info[c][2]) if c in cont else 1.0 for c in columns])
    infl_cov = infl_rho * (sd[ii] * sd[jj])[None, :]
    for k, (i, j) in enumerate(zip(ii, jj)):
        for x, y in ((i, j), (j, i)):
            if columns[x] in cont:
                infl_cov[:, k] += rho[k] * sd[y] / (2 * sd[x]) * uni[:, var_col[columns[x]]]
    for c in continuous:  # the statistic is minus the mean
        uni[:, th_cols[c][0]] *= -1
    r_mat = np.eye(p)
    r_mat[ii, jj] = rho
    r_mat[jj, ii] = rho
    return OrdinalStatistics(
        names=tuple(columns), n=int(n), thresholds=pd.Series(np.array(th_values, dtype=float), index=th_labels),
        correlation=pd.DataFrame(r_mat, index=columns, columns=columns), influence=np.hstack([uni, infl_cov]),
        pairs=np.column_stack([ii, jj]), variances=pd.Series(np.array(var_vals, dtype=float), index=var_labels))
