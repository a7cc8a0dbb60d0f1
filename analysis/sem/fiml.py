"""Full-information maximum likelihood (FIML) over any number of groups: lavaan's ``missing = "ml"``
(alias ``"fiml"``) as an estimator strategy of the engine.

**Data.** Per group the rows are grouped by missingness pattern k (observed variables
:math:`o_k`, :math:`n_k` rows, their mean :math:`\\bar y_k` and covariance :math:`S_k` on the
:math:`n_k` denominator). Rows missing every model variable carry no information and are
dropped; with fixed exogenous covariates (``fixed.x = TRUE``, ``exo = 1`` rows) a row missing a
covariate is dropped with a warning (:class:`~analysis.warnings.GapscaleWarning`), as lavaan does
("N cases were deleted due to missing values in exogenous variable(s), while fixed.x = TRUE").
The covariates' moments are then complete-data moments, fixed at their sample values.

**Log-likelihood** (Arbuckle, 1996), with :math:`M_k = \\Sigma_{o_ko_k}^{-1}`,
:math:`d_k = \\bar y_k - \\mu_{o_k}` and :math:`W_k = S_k + d_kd_k^\\top`:

.. math:: -\\log L_g = \\sum_k \\frac{n_k}{2}\\big[p_k\\log 2\\pi + \\log|\\Sigma_{o_ko_k}|
          + \\operatorname{tr}(M_kW_k)\\big].

The mean structure is the model's own (lavaan builds a table with intercepts for
``missing = "ml"``: :func:`analysis.sem.partable.lavaanify` with ``missing = "fiml"``). Each
:math:`M_k` comes from one :math:`K = \\Sigma^{-1}` by the partitioned inverse
:math:`M = K_{oo} - K_{om}K_{mm}^{-1}K_{mo}`, :math:`\\log|\\Sigma_{oo}| = \\log|\\Sigma| + \\log|K_{mm}|`.
The gradient in :math:`\\Sigma` is :math:`G = \\sum_k\\tfrac{n_k}{2}(M_k - M_kW_kM_k)` and in
:math:`\\mu`, :math:`g_\\mu = -\\sum_k n_kM_kd_k`. :func:`fiml_nll` evaluates both from the
sufficient statistics of the patterns (:func:`pattern_moments`, once per data set or bootstrap
draw: row weights), the patterns missing k variables batched into one stacked k x k operation,
batches of few rows merged by padding (:mod:`analysis.patterns`: the layout, the merging and the
partitioned-inverse blocks, shared with EM), the term :math:`\\sum_iw_i\\tilde\\zeta_ir_i^\\top` of the
gradient as a sparse placement matrix times the residuals, the
gradient by Fisher's identity as the complete-data one at the E-step's statistics; the chain rule
in matrix form (:func:`parameter_gradient`) gives the parameters'. A bootstrap draw reweights the
full sample's rows by their resample counts (``row_weights``): no pattern search per draw.

**Saturated model (H1)** by EM (:func:`analysis.missing.em_moments`, run to a change below 1e-10
of the standardised moments); its moments are the "sample statistics" of the fit (lavaan's
``sampstat`` with FIML: the start, fixed.x values, SRMR). The discrepancy the optimiser minimises
is :math:`F = 2(\\log L_1 - \\log L)/N`, so :math:`\\chi^2 = N F`. With fixed.x covariates
both log-likelihoods are conditional on them (the covariates' saturated log-likelihood is
subtracted), as lavaan's ``logl`` and ``unrestricted.logl``.

**Baseline** (lavaan's independence model under FIML): per group every non-exogenous variable
with its own mean and variance, uncorrelated with the others and the covariates, so its
log-likelihood is a sum of univariate normal log-likelihoods of each variable's observed values
(:math:`-\\tfrac{n_j}{2}(\\log 2\\pi + \\log s^2_j + 1)`, :math:`s^2_j` on the :math:`n_j`
denominator); :math:`\\chi^2_0 = 2(\\log L_1 - \\log L_0)`.

**Optimisation** uses :func:`~analysis.sem.estimate.optimise` with the complete-data expected
information at the implied moments as the scoring matrix (a positive-definite approximation of
the FIML Hessian; the gradient is exact, so the solution is the FIML one; convergence is linear
at the rate of the fraction of missing information; the matrix is recomputed only when the
parameters have moved by more than 1% since it was last computed).

**Standard errors** from the observed information (lavaan's default for ``missing = "ml"``:
``information = "observed"``, ``observed.information = "hessian"``): the Hessian of
:math:`-\\log L`, analytic (:meth:`FIMLEstimator.observed_information`); with ``information =
"expected"`` the expected information under the missingness patterns at the implied moments
(:meth:`FIMLEstimator.expected_information`, Savalei 2010), as lavaan's.

**Fit measures** through :func:`analysis.sem.fit.fit_measures`: the residual-based ones against
the EM moments; the robust CFI/TLI/RNI/RMSEA from Zhang & Savalei's (2023) FIML-corrected
statistics (:meth:`FIMLEstimator.robust_statistics`, lavaan's "V6"), with fixed.x covariates'
own moments fixed in the saturated and baseline models. GFI/AGFI/PGFI as lavaan's: the
available-case means and pairwise covariances against the implied moments, weighted by the
missing-data information of the patterns (:func:`analysis.sem.fit.ml_gfi`), the fixed.x
covariates' own moments out of both sums.

**MLR** (lavaan's ``estimator = "MLR", missing = "ml"``; :func:`analysis.sem.robust.robust_inference`
assembles it): Huber-White SEs from the observed information and the casewise scores
(:meth:`FIMLEstimator.casewise_scores`), the Yuan-Bentler scaled test from the saturated model's
observed information and casewise scores at the EM moments
(:meth:`FIMLEstimator.yuan_bentler_traces`), the robust indices from the FIML-corrected statistic
version "V3" (:meth:`FIMLEstimator.robust_statistics`).

In R: ``lavaan::cfa(model, data, missing = "ml")``; ``fitMeasures(fit)``;
``lavInspect(fit, "sampstat")`` (the EM moments).

References
----------
Arbuckle, J. L. (1996). Full information estimation in the presence of incomplete data. In
    G. A. Marcoulides & R. E. Schumacker (Eds.), Advanced structural equation modeling (pp.
    243-277). Erlbaum.
Savalei, V. (2010). Expected versus observed information in SEM with incomplete normal and
    nonnormal data. Psychological Methods 15(4), 352-367.
Little, R. J. A., & Rubin, D. B. (2019). Statistical Analysis with Missing Data (3rd ed.). Wiley.
Zhang, X., & Savalei, V. (2023). New computations for RMSEA and CFI following FIML and TS
    estimation with missing data. Psychological Methods 28(2), 263-283.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import blas, lapack

from analysis.errors import InputError
from analysis.missing import em_moments
from analysis.patterns import (PatternLayout, block_cells, conditional_blocks, conditional_shifts, merge_batches,
                               pattern_layout, spd_inverse)
from analysis.sem import fit as fitm
from analysis.sem import h1
from analysis.sem.estimate import MLEstimator
from analysis.sem.model import Model, SampleStats
from analysis.warnings import GapscaleWarning

__all__ = ["FIMLEstimator", "PatternMoments", "Patterns", "fiml_data", "fiml_nll", "free_rows",
           "model_free_rows", "nll_gradient", "parameter_gradient", "pattern_moments", "patterns_of_values"]

_LOG2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class Patterns:
    """One group's incomplete data by missingness pattern.

    ``observed[k]`` the indices (in ``block.ov`` order) of pattern k's observed variables,
    ``rows[k]`` its rows' values on them (:math:`n_k \\times p_k`), ``missing[k]`` the other
    indices; ``unrestricted_logl`` the EM (saturated) log-likelihood and ``logl_x`` the
    saturated log-likelihood of the fixed.x covariates (subtracted from both log-likelihoods);
    ``baseline_logl`` the independence model's (conditional on the covariates)."""

    observed: tuple[np.ndarray, ...]
    missing: tuple[np.ndarray, ...]
    rows: tuple[np.ndarray, ...]
    n: int
    unrestricted_logl: float
    logl_x: float
    baseline_logl: float
    em_converged: bool

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(r) for r in self.rows], dtype=float)

    @cached_property
    def layout(self) -> PatternLayout:
        """The rows (in pattern order) arranged for the batched likelihood
        (:func:`analysis.patterns.pattern_layout`), built once."""
        return pattern_layout(_values(self, len(self.observed[0]) + len(self.missing[0])))


def fiml_data(model: Model, data: pd.DataFrame, group: str | None = None,
              group_labels: list[str] | None = None) -> tuple[list[SampleStats], list[Patterns], list[str], list[str]]:
    """Per group the EM moments (as :class:`~analysis.sem.model.SampleStats`, ``n`` the rows
    used), the :class:`Patterns`, the group labels and notes (rows dropped).

    Raises
    ------
    InputError
        A model variable missing from the data, non-numeric values, a group column/label not
        found, a number of groups not that of the model, a group without enough rows, or
        data whose EM covariance is singular.
    """
    ovs = list(dict.fromkeys(v for blk in model.blocks for v in blk.ov))
    absent = [v for v in ovs if v not in data.columns]
    if absent:
        raise InputError(f"data: column(s) {', '.join(absent)} of the model not found")
    if group is not None and group not in data.columns:
        raise InputError(f"data: group column {group!r} not found")
    x = data[ovs].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in ovs if (x[c].isna() & data[c].notna()).any()]
    if bad:
        c = bad[0]
        row = int(np.flatnonzero((x[c].isna() & data[c].notna()).to_numpy())[0])
        raise InputError(f"data: column {c!r} row {row + 1} is not numeric ({data[c].iloc[row]!r})")
    keep = pd.Series(True, index=data.index)
    if group is not None:
        keep &= data[group].notna()
    if group is None:
        labels = [""]
        gcol = None
    else:
        gcol = data.loc[keep, group].astype(str)
        labels = list(group_labels) if group_labels is not None else list(dict.fromkeys(gcol))
        unknown = [g for g in labels if g not in set(gcol)]
        if unknown:
            raise InputError(f"data: group {unknown[0]!r} not found in column {group!r}")
    if len(labels) != model.ngroups:
        raise InputError(f"the model has {model.ngroups} group(s) but the data {len(labels)} "
                         f"({'column ' + repr(group) if group else 'no group column'})")
    stats, pats, notes = [], [], []
    for blk, lab in zip(model.blocks, labels):
        part = x[keep] if gcol is None else x[keep][(gcol == lab).to_numpy()]
        part = part[list(blk.ov)]
        where = f" in group {lab!r}" if lab else ""
        if blk.ov_x:
            miss_x = part[list(blk.ov_x)].isna().any(axis=1)
            if miss_x.any():
                notes.append(f"{int(miss_x.sum())} cases{where} were deleted due to missing values in exogenous "
                             f"variable(s) ({', '.join(blk.ov_x)}), while fixed.x = TRUE (as lavaan)")
                warnings.warn(notes[-1], GapscaleWarning, stacklevel=3)
                part = part[~miss_x]
        y_cols = [v for v in blk.ov if v not in set(blk.ov_x)]
        empty = part[y_cols].isna().all(axis=1) if y_cols else pd.Series(False, index=part.index)
        if empty.any():
            notes.append(f"{int(empty.sum())} cases{where} have no observed value on the model's variables and "
                         "were ignored (as lavaan)")
            part = part[~empty]
        arr = part.to_numpy(dtype=float)
        n, p = arr.shape
        if n <= p:
            raise InputError(f"data: {n} cases{where} for {p} observed variables; too few for FIML")
        em = em_moments(part, list(blk.ov))
        cov, mean = em.cov.to_numpy(), em.mean.to_numpy()
        stats.append(SampleStats(label=lab, ov=blk.ov, n=n, cov=cov, mean=mean))
        obs = ~np.isnan(arr)
        ix = [blk.ov.index(v) for v in blk.ov_x]
        logl_x = 0.0
        if ix:
            sxx = cov[np.ix_(ix, ix)]
            logl_x = -n / 2 * (len(ix) * _LOG2PI + np.linalg.slogdet(sxx)[1] + len(ix))
        base = 0.0
        for j, v in enumerate(blk.ov):
            if v in blk.ov_x:
                continue
            col = arr[obs[:, j], j]
            base += -len(col) / 2 * (_LOG2PI + np.log(col.var()) + 1)
        grouped, _order = patterns_of_values(arr)
        pats.append(replace(grouped, unrestricted_logl=float(em.loglik) - logl_x, logl_x=float(logl_x),
                            baseline_logl=float(base), em_converged=bool(em.converged)))
    return stats, pats, labels, notes


def patterns_of_values(values: np.ndarray) -> tuple[Patterns, np.ndarray]:
    """The rows of ``values`` (n x p, NaN = missing) by missingness pattern as :class:`Patterns`
    (patterns in :func:`analysis.patterns.pattern_layout`'s order: the complete one first, then by
    number missing; the log-likelihood constants left at 0, ``em_converged`` True) and ``order``:
    the rows of ``values`` in the order the patterns list them (``values[order]``)."""
    values = np.asarray(values, dtype=float)
    lay = pattern_layout(values)
    flags = lay.flags
    order = np.argsort(lay.pattern, kind="stable")
    by_pattern = np.split(order, np.cumsum(lay.counts)[:-1])
    observed = tuple(np.flatnonzero(f) for f in flags)
    missing = tuple(np.flatnonzero(~f) for f in flags)
    rows = tuple(values[np.ix_(r, o)] for r, o in zip(by_pattern, observed))
    return Patterns(observed=observed, missing=missing, rows=rows, n=len(values), unrestricted_logl=0.0,
                    logl_x=0.0, baseline_logl=0.0, em_converged=True), order


# --------------------------------------------------------------------------- the batched likelihood


@dataclass(frozen=True)
class PatternMoments:
    r"""One group's weighted sufficient statistics for the FIML likelihood (:func:`fiml_nll`).

    With row weights :math:`w_i` (1, or a bootstrap draw's resample counts), :math:`y_i` the row
    with 0 where missing and :math:`o_i` its observed flags: ``n`` :math:`N = \sum w_i`; ``const``
    :math:`\sum_i w_ip_i\log 2\pi`; ``syy`` :math:`\sum w_iy_iy_i^\top`; ``sy`` :math:`\sum w_iy_i`;
    ``cnt`` :math:`\sum w_io_i`; ``ym`` :math:`\sum w_iy_io_i^\top`; ``mm`` :math:`\sum w_io_io_i^\top`.
    The rows of weight > 0 missing something, stacked with zero columns for the padding variables
    of :func:`analysis.patterns.merge_batches` (q >= p columns): ``y`` their values, ``obs``
    their flags, ``w`` their weights (a column); ``batches`` the layout's
    :class:`~analysis.patterns.PatternBatch` es merged by :func:`~analysis.patterns.merge_batches`
    (patterns of weight 0 left out), each ``(rows, half_n, n_pat, missing, row_pattern, cells)``: its
    slice of the stacked rows, its patterns' weights :math:`n_k` (and halves), missing variables
    (padded with p, p + 1, ...), each row's pattern, and its part of the gradient's buffer (:func:`fiml_nll`);
    ``scatter`` the flat q x q cells the batches' terms of Z add into, in that buffer's order,
    ``size`` its length; ``zeta_index`` the variable of each (row, slot) of the batches' stacked
    :math:`\zeta` (padding: >= p); ``placement`` the sparse p x rows matrix with a 1 at (m, i)
    for each row i missing m (:func:`fiml_nll` overwrites its values with the :math:`w_i\zeta_i`
    at ``pair_pos`` of the stacked :math:`\zeta` to place them, :math:`\sum_iw_i\tilde\zeta_i
    r_i^\top`: one PatternMoments is not for concurrent threads)."""

    n: float
    const: float
    syy: np.ndarray
    sy: np.ndarray
    cnt: np.ndarray
    ym: np.ndarray
    mm: np.ndarray
    y: np.ndarray
    obs: np.ndarray
    w: np.ndarray
    batches: tuple[tuple, ...]
    scatter: np.ndarray
    zeta_index: np.ndarray
    size: int
    placement: sparse.csr_matrix
    pair_pos: np.ndarray


def pattern_moments(layout: PatternLayout, weights: np.ndarray | None = None) -> PatternMoments:
    """The :class:`PatternMoments` of ``layout`` (:func:`analysis.patterns.pattern_layout` of one
    group's rows) with row ``weights`` (default 1; a bootstrap draw's counts of each row): the
    pattern structure is the layout's, only reweighted (patterns and rows of weight 0 left out)."""
    y = layout.values
    n_rows, p = y.shape
    w_all = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=float)
    use = w_all > 0
    root_w = np.sqrt(w_all)
    if not use.all():
        y, root_w = y[use], root_w[use]
    # sum w y y' by a symmetric rank-k update of sqrt(w) y (half a general product's work; the
    # upper triangle, mirrored)
    syy = blas.dsyrk(1.0, y * root_w[:, None], trans=1, lower=0) if len(y) else np.zeros((p, p))
    syy += np.triu(syy, 1).T
    sy = w_all @ layout.values
    n = float(w_all.sum())
    n_pat = np.bincount(layout.pattern, weights=w_all, minlength=layout.n_patterns)
    nobs = np.full(layout.n_patterns, p)
    for bt in layout.batches:
        nobs[bt.patterns] = p - bt.k
    # the batches with weight, then merged (padded) into fewer stacked operations
    kept = []
    for bt in layout.batches:
        n_b = n_pat[bt.patterns]
        keep = n_b > 0
        if not keep.any():
            continue
        sel = w_all[bt.rows] > 0
        lr = (np.cumsum(keep) - 1)[bt.row_pattern[sel]]  # the row's pattern among those kept
        kept.append((bt.k, n_b[keep], bt.missing[keep], bt.rows[sel], lr))
    groups = merge_batches([b[0] for b in kept], [len(b[3]) for b in kept], p)
    # the padding variables p, p + 1, ... (analysis.patterns.merge_batches): as many as a pattern lacks at most
    q = p + max([kept[g[-1]][0] - kept[g[0]][0] for g in groups], default=0)
    batches, scatter, pair_var, all_rows = [], [], [], []
    start = offset = 0
    for grp in groups:
        k_max = kept[grp[-1]][0]
        parts = [kept[i] for i in grp]
        n_b = np.concatenate([b[1] for b in parts])
        m_pat = np.empty((len(n_b), k_max), dtype=np.intp)
        lr, first = [], 0
        for k, nb, miss, rows, lrk in parts:
            m_pat[first:first + len(nb), :k] = miss
            m_pat[first:first + len(nb), k:] = p + np.arange(k_max - k)
            lr.append(lrk + first)
            first += len(nb)
            all_rows.append(rows)
        lr = np.concatenate(lr)
        m_rows = m_pat[lr]
        n_r = len(lr)
        # the gradient's terms of Z (fiml_nll), in this order: the cells (m_ia, m_ib) of the rows,
        # the cells (m_a, m_b) of the patterns
        cells = (offset, offset + n_r * k_max * k_max, offset + (n_r + len(n_b)) * k_max * k_max)
        offset = cells[2]
        scatter += [(m_rows[:, :, None] * q + m_rows[:, None, :]).ravel(), block_cells(m_pat, q)]
        pair_var.append(m_rows.ravel())
        batches.append((slice(start, start + n_r), 0.5 * n_b, n_b, m_pat, lr, cells))
        start += n_r
    rows = np.concatenate(all_rows) if all_rows else np.zeros(0, dtype=np.intp)
    y_part = np.zeros((len(rows), q))
    y_part[:, :p] = layout.values[rows]
    obs_part = np.zeros((len(rows), q))
    obs_part[:, :p] = layout.observed[rows]
    w_part = w_all[rows]
    # the (row, missing variable) pairs, the padding left out, by variable: a sparse p x rows
    # matrix whose values are set per evaluation (E_m placements: sum_i E_m_i v_i a_i' = M A)
    pair_var = np.concatenate(pair_var) if pair_var else np.zeros(0, dtype=np.intp)
    k_rows = [np.full(b[0].stop - b[0].start, b[3].shape[1]) for b in batches]
    pair_row = np.repeat(np.arange(len(rows)), np.concatenate(k_rows) if k_rows else np.zeros(0, dtype=np.intp))
    real = pair_var < p
    pair_pos = np.flatnonzero(real)[np.argsort(pair_var[real], kind="stable")]
    placement = sparse.csr_matrix((np.ones(len(pair_pos)), pair_row[pair_pos],
                                   np.searchsorted(pair_var[pair_pos], np.arange(p + 1))), shape=(p, len(rows)))
    miss_w = 1.0 - obs_part[:, :p]
    miss_w *= w_part[:, None]
    cm = placement @ w_part
    ym = sy[:, None] - (placement @ (y_part[:, :p] * w_part[:, None])).T
    mm = n - cm[:, None] - cm[None, :] + placement @ miss_w
    return PatternMoments(n=n, const=float(n_pat @ nobs) * _LOG2PI, syy=syy, sy=sy, cnt=n - cm, ym=ym,
                          mm=mm, y=y_part, obs=obs_part, w=w_part[:, None], batches=tuple(batches),
                          scatter=np.concatenate(scatter) if scatter else np.zeros(0, dtype=np.intp),
                          zeta_index=pair_var, size=offset, placement=placement, pair_pos=pair_pos)


def fiml_nll(mom: PatternMoments, sigma: np.ndarray, mu: np.ndarray, gradient: bool = False):
    r""":math:`-\log L` of one group under FIML and, if asked, its gradients in :math:`\Sigma` (p x p,
    G with :math:`d(-\log L) = \operatorname{tr}(G\,d\Sigma)`) and :math:`\mu`, from the weighted
    sufficient statistics ``mom`` (:func:`pattern_moments`), batched by the number of missing
    variables: ``(inf, None, None)`` where Sigma is not positive definite.

    With :math:`K = \Sigma^{-1}`, a row i missing the variables m (k of them) and
    :math:`r_i = y_i - \mu` on its observed variables (0 elsewhere):
    :math:`\Sigma_{oo}^{-1} = K_{oo} - K_{om}K_{mm}^{-1}K_{mo}` and
    :math:`\log|\Sigma_{oo}| = \log|\Sigma| + \log|K_{mm}|` (partitioned inverse), so with
    :math:`b_i = K_{m\cdot}r_i` and :math:`\zeta_i = K_{mm}^{-1}b_i` (minus the conditional mean of
    the missing part given the observed one, :math:`\zeta_i = -\Sigma_{mo}\Sigma_{oo}^{-1}r_{io}`)

    .. math:: -\log L = \tfrac12\Big[\sum_i w_ip_i\log 2\pi + N\log|\Sigma|
              + \sum_{\text{patterns}} n_k\log|K_{mm}| + \operatorname{tr}(KT)
              - \sum_i w_i\zeta_i^\top b_i\Big],\qquad T = \sum_i w_ir_ir_i^\top,

    T from the moments: :math:`T = S_{yy} - Y_m\circ 1\mu^\top - (Y_m\circ 1\mu^\top)^\top
    + M_m\circ\mu\mu^\top`. A pattern missing k variables costs a k x k inverse; the patterns
    missing k are one stacked operation, the rows missing k another (batches of few rows merged,
    padded: :func:`analysis.patterns.merge_batches`). By Fisher's identity the
    gradient is that of the complete-data likelihood at the E-step's expected statistics
    (Dempster, Laird & Rubin, 1977): with :math:`\tilde\zeta_i` the p-vector holding
    :math:`\zeta_i` at m and 0 elsewhere (:math:`r_i - \tilde\zeta_i`: the residual completed by
    the conditional mean) and

    .. math:: X = \sum_i w_i(r_i - \tilde\zeta_i)(r_i - \tilde\zeta_i)^\top
              + \sum_{\text{patterns}} n_k\,E_mK_{mm}^{-1}E_m^\top

    (:math:`K_{mm}^{-1}` the conditional covariance of the missing part),
    :math:`G = \tfrac12(NK - KXK)` and :math:`g_\mu = -K\sum_i w_i(r_i - \tilde\zeta_i)`. This equals
    the per-pattern sum :math:`G = \sum_k\tfrac{n_k}{2}(M_k - M_kW_kM_k)` of the module docstring.

    References
    ----------
    Dempster, A. P., Laird, N. M., & Rubin, D. B. (1977). Maximum likelihood from incomplete data
        via the EM algorithm. Journal of the Royal Statistical Society B 39(1), 1-38.
    """
    p = len(mu)
    chol = spd_inverse(sigma)
    if chol is None:
        return np.inf, None, None
    k_inv, logdet = chol
    ymu = mom.ym * mu
    t = mom.syy - ymu
    t -= ymu.T
    t += mom.mm * np.outer(mu, mu)
    value = mom.const + mom.n * logdet + np.vdot(k_inv, t)
    if mom.batches:
        q = mom.y.shape[1]  # K and the residuals with the padding variables (analysis.patterns.merge_batches)
        k_pad = np.zeros((q, q))
        k_pad[:p, :p] = k_inv
        k_pad.flat[p * (q + 1)::q + 1] = 1.0
        r = mom.obs * np.concatenate([mu, np.zeros(q - p)])
        np.subtract(mom.y, r, out=r)  # in place: y - obs * mu measured ~10x slower on these sizes
        if gradient:  # in mom.scatter's order: the rows' zeta zeta' / 2, the patterns' K_mm^-1 / 2
            weight, zeta_w, z_at = np.empty(mom.size), np.empty(len(mom.zeta_index)), 0
        for rows, half_n, n_pat, m_pat, lr, cells in mom.batches:
            kmm_inv, logdet_mm = conditional_blocks(k_pad, m_pat, logdet=True)
            value += n_pat @ logdet_mm
            r_b = r[rows]
            b, zeta = conditional_shifts(k_pad, r_b, m_pat, kmm_inv, lr)
            wz = mom.w[rows] * zeta
            value -= np.vdot(wz, b)
            if gradient:
                n_r, k = zeta.shape
                np.multiply(0.5 * wz[:, :, None], zeta[:, None, :], out=weight[cells[0]:cells[1]].reshape(n_r, k, k))
                np.multiply(half_n[:, None, None], kmm_inv, out=weight[cells[1]:cells[2]].reshape(-1, k, k))
                zeta_w[z_at:z_at + n_r * k] = wz.ravel()
                z_at += n_r * k
    value = float(value) / 2
    if not gradient:
        return value, None, None
    x = t
    zsum = np.zeros(p)
    if mom.batches:  # X = T - Y - Y' + Z = T + half + half' with half = -Y' + Z / 2
        # Y' = sum_i w_i zeta~_i r_i': the sparse placement (its values overwritten: no copy) times the residuals
        np.take(zeta_w, mom.pair_pos, out=mom.placement.data)
        half = np.bincount(mom.scatter, weights=weight, minlength=q * q).reshape(q, q)[:p, :p]
        half -= (mom.placement @ r)[:, :p]
        x = t + half + half.T
        zsum = np.bincount(mom.zeta_index, weights=zeta_w, minlength=q)[:p]
    kx = k_inv @ x
    g_sigma = 0.5 * (mom.n * k_inv - kx @ k_inv)
    g_mu = -k_inv @ (mom.sy - mom.cnt * mu - zsum)
    return value, 0.5 * (g_sigma + g_sigma.T), g_mu


def free_rows(kind: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple:
    """The rows of one group by matrix, for :func:`parameter_gradient`: per matrix name the rows'
    positions, cells and the factor 2 of an off-diagonal (co)variance (it sits at (i, j) and
    (j, i)); built once per model."""
    out = []
    for name in ("lambda", "beta", "psi", "theta", "nu", "alpha"):
        sel = np.flatnonzero(kind == name)
        if len(sel):
            out.append((name, sel, i[sel], j[sel], np.where(i[sel] != j[sel], 2.0, 1.0)))
    return len(kind), tuple(out)


def parameter_gradient(state: dict, rows: tuple, g_sigma: np.ndarray, g_mu: np.ndarray) -> np.ndarray:
    r"""The gradient of a function of the implied moments in parameter-table rows (``rows`` from
    :func:`free_rows`: the matrix and cell of each), from its gradients in :math:`\Sigma`
    (``g_sigma``, symmetric, :math:`df = \operatorname{tr}(G\,d\Sigma) + g_\mu^\top d\mu`) and
    :math:`\mu`, by the chain rule in matrix form (O(p m^2 + p^2 m), not the q x p x p Jacobian).

    With :math:`L = \Lambda A`, :math:`\Phi = A\Psi A^\top`, :math:`\bar\eta = A\alpha`
    (:mod:`analysis.sem.model`): :math:`\partial f/\partial\Lambda = 2G\Lambda\Phi + g_\mu\bar\eta^\top`,
    :math:`\partial f/\partial B = 2L^\top G\Lambda\Phi + L^\top g_\mu\bar\eta^\top` (:math:`dA = A\,dB\,A`),
    :math:`\partial f/\partial\Psi = L^\top GL`, :math:`\partial f/\partial\Theta = G` (an off-diagonal
    (co)variance counted twice: it sits at (i, j) and (j, i)), :math:`\partial f/\partial\nu = g_\mu`,
    :math:`\partial f/\partial\alpha = L^\top g_\mu` (Neudecker & Satorra, 1991). Rows of ``tau`` or
    ``delta`` get 0 (the continuous moments do not depend on them).
    """
    n_rows, by_matrix = rows
    lam, a, phi, eta = state["lambda"], state["a"], state["veta"], state["eeta"]
    ell = lam @ a
    g_lam_phi = g_sigma @ lam @ phi
    l_g = ell.T @ g_mu
    out = np.zeros(n_rows)
    for name, sel, ii, jj, twice in by_matrix:
        if name == "lambda":
            out[sel] = 2 * g_lam_phi[ii, jj] + g_mu[ii] * eta[jj]
        elif name == "beta":
            out[sel] = 2 * (ell.T @ g_lam_phi)[ii, jj] + l_g[ii] * eta[jj]
        elif name == "psi":
            out[sel] = (ell.T @ g_sigma @ ell)[ii, jj] * twice
        elif name == "theta":
            out[sel] = g_sigma[ii, jj] * twice
        elif name == "nu":
            out[sel] = g_mu[ii]
        else:
            out[sel] = l_g[ii]
    return out

def model_free_rows(model: Model) -> list[tuple[tuple, np.ndarray]]:
    """Per group :func:`free_rows` of its free parameter-table rows and their free index (0-based;
    rows sharing an index add)."""
    out = []
    for blk in model.blocks:
        f = model.free[blk.rows]
        pos = np.flatnonzero(f > 0)
        out.append((free_rows(blk.matrix[pos], blk.row[pos], blk.col[pos]), f[pos] - 1))
    return out


def nll_gradient(model: Model, moments: list[PatternMoments], rows: list, x: np.ndarray,
                 means: list[np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    """:math:`-\\log L` summed over the groups (``moments`` from :func:`pattern_moments`) at the free
    parameters ``x`` and its gradient in them (``rows`` from :func:`model_free_rows`): the
    gradients in Sigma and mu of :func:`fiml_nll` through :func:`parameter_gradient`;
    ``(inf, zeros)`` where an implied Sigma is not positive definite. ``means``: per group the
    mean vector to use instead of the model's (a model without a mean structure, complete data:
    the sample means, their gradient not propagated)."""
    grad = np.zeros(model.nfree)
    total = 0.0
    for g, (mom, state, (by_matrix, index)) in enumerate(zip(moments, model.state(x), rows)):
        mu = state["mu"] if means is None else means[g]
        v, g_sigma, g_mu = fiml_nll(mom, state["sigma"], mu, gradient=True)
        if not np.isfinite(v):
            return np.inf, np.zeros(model.nfree)
        total += v
        if means is not None:
            g_mu = np.zeros_like(g_mu)
        grad += np.bincount(index, weights=parameter_gradient(state, by_matrix, g_sigma, g_mu), minlength=model.nfree)
    return total, grad


class FIMLEstimator:
    """FIML over the groups of ``model``: EM moments ``stats`` (from :func:`fiml_data`, which also
    gives ``patterns``). Same interface as :class:`~analysis.sem.estimate.MLEstimator`:
    ``objective``, ``gradient``, ``scoring``, ``information``, ``observed_information``,
    ``loglik``, ``moments``; plus ``baseline`` and ``fit_measures``."""

    name = "ML"

    # its scoring matrix is the complete-data information, not its objective's: the secant phase
    # adds the difference (it stalled here in a line search lost in the objective's rounding,
    # 290 CPU-s on the default model, until estimate._in_noise: now 10 steps, 0.1 CPU-s)
    secant_polish = True

    def __init__(self, model: Model, stats: list[SampleStats], patterns: list[Patterns],
                 row_weights: list[np.ndarray] | None = None):
        if not model.meanstructure:
            raise InputError("FIML needs a mean structure (intercepts): build the parameter table with "
                             "missing = 'fiml' (lavaan's missing = 'ml' adds the ~ 1 rows)")
        self.model = model
        self.stats = stats
        self.patterns = patterns
        self.row_weights = None if row_weights is None else [np.asarray(w, dtype=float) for w in row_weights]
        self._moments = [pattern_moments(pt.layout, None if row_weights is None else w)
                         for pt, w in zip(patterns, row_weights or [None] * len(patterns))]
        self.ntotal = int(round(sum(mom.n for mom in self._moments)))
        self.weights = np.array([mom.n / self.ntotal for mom in self._moments])
        self._h1 = float(sum(pt.unrestricted_logl + pt.logl_x for pt in patterns))  # joint, covariates included
        self._complete = MLEstimator(model, stats)
        self._free_rows = model_free_rows(model)
        self._scoring_cache: list = []  # [(x, information)]: the scoring matrix where it was last computed

    def _unweighted(self, what: str) -> None:
        """The row-level computations (information, casewise scores, fit measures) read the
        patterns' rows unweighted: refuse them for a reweighted (bootstrap) estimator."""
        if self.row_weights is not None:
            raise ValueError(f"FIMLEstimator.{what} is not available with row weights (a bootstrap draw's "
                             "estimator computes only the discrepancy and its gradient)")

    @property
    def pattern_moments(self) -> list[PatternMoments]:
        """Per group the (weighted) sufficient statistics of the likelihood."""
        return self._moments

    def moments(self, x: np.ndarray):
        return self.model.implied(x)

    # ------------------------------------------------------------------ likelihood
    def _nll(self, x: np.ndarray) -> float:
        """:math:`-\\log L` summed over groups (covariates included; :func:`fiml_nll`)."""
        total = 0.0
        for mom, (sigma, mu) in zip(self._moments, self.moments(x)):
            v = fiml_nll(mom, sigma, mu)[0]
            if not np.isfinite(v):
                return np.inf
            total += v
        return total

    def objective(self, x: np.ndarray) -> float:
        """:math:`F = 2(\\log L_1 - \\log L)/N` (chi-square / N); +inf where not admissible."""
        nll = self._nll(x)
        return float(2 * (self._h1 + nll) / self.ntotal) if np.isfinite(nll) else np.inf

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.scoring(x, information=False)[1]

    def _nll_grad(self, x: np.ndarray):
        """:math:`-\\log L` and its gradient in the free parameters (:func:`nll_gradient`)."""
        return nll_gradient(self.model, self._moments, self._free_rows, x)

    def scoring(self, x: np.ndarray, information: bool = True):
        """``(F, gradient of F, scoring matrix)``: the scoring matrix is the complete-data expected
        information at the implied moments (see the module docstring)."""
        nll, grad = self._nll_grad(x)
        f = 2 * (self._h1 + nll) / self.ntotal if np.isfinite(nll) else np.inf
        info = None
        if information:
            # The scoring matrix only sets the step, not the solution: it is recomputed when the
            # parameters have moved by more than 1% since it was last computed.
            cached = self._scoring_cache[0] if self._scoring_cache else None
            if cached is not None and np.all(np.abs(x - cached[0]) <= 0.01 * np.maximum(1.0, np.abs(cached[0]))):
                info = cached[1]
            elif np.isfinite(f):
                info = self._complete.information(x)
                self._scoring_cache[:] = [(x.copy(), info)]
            else:
                info = np.zeros((self.model.nfree, self.model.nfree))
        return float(f), 2 * grad / self.ntotal, info

    def information(self, x: np.ndarray) -> np.ndarray:
        """The complete-data expected information at the implied moments (for the optimiser and
        the identification check at a generic point); SEs use :meth:`observed_information`."""
        return self._complete.scoring(x)[2]

    def observed_information(self, x: np.ndarray) -> np.ndarray:
        """The Hessian of :math:`-\\log L` in the free parameters (lavaan's ``information =
        "observed"``, ``observed.information = "hessian"``), analytic, summed over groups
        (:func:`_group_hessian`). lavaan differentiates its analytic gradient numerically; the two
        agree to about 1e-9."""
        self._unweighted("observed_information")
        q = self.model.nfree
        out = np.zeros((q, q))
        for g, state in enumerate(self.model.state(x)):
            blk = self.model.blocks[g]
            f = self.model.free[blk.rows]
            pos = np.flatnonzero(f > 0)
            h = _group_hessian(state, blk.matrix[pos], blk.row[pos], blk.col[pos], self.patterns[g])
            proj = np.zeros((q, len(pos)))
            proj[f[pos] - 1, np.arange(len(pos))] = 1.0
            out += proj @ h @ proj.T
        return 0.5 * (out + out.T)

    def expected_information(self, x: np.ndarray) -> np.ndarray:
        r"""The expected information under the missingness patterns at the implied moments
        (lavaan's ``information = "expected"`` with ``missing = "ml"``, ``h1.information =
        "structured"``; Savalei, 2010), summed over cases and groups:
        :math:`\sum_g\Delta_g^\top A_g\Delta_g` with :math:`A_g` the saturated model's expected
        information (:func:`analysis.sem.h1.missing_expected`, the fixed.x covariates' own moments
        zero) and :math:`\Delta_g` the derivatives of (mu, vech Sigma) (:func:`analysis.sem.h1.jacobian`)."""
        self._unweighted("expected_information")
        q = self.model.nfree
        out = np.zeros((q, q))
        for blk, pt, (sigma, _), (index, ds, dm) in zip(self.model.blocks, self.patterns, self.moments(x),
                                                        self.model.derivatives(x)):
            d_s, d_m = np.zeros((q, blk.p, blk.p)), np.zeros((q, blk.p))
            np.add.at(d_s, index, ds)
            np.add.at(d_m, index, dm)
            jac = h1.jacobian(d_s, d_m)
            out += jac.T @ h1.missing_expected(pt, sigma, [blk.ov.index(v) for v in blk.ov_x]) @ jac
        return 0.5 * (out + out.T)

    def numerical_observed_information(self, x: np.ndarray) -> np.ndarray:
        """The same Hessian by central differences of the analytic gradient (2q gradients; a check)."""
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        q = len(x)
        hess = np.zeros((q, q))
        for k in range(q):
            up, down = x.copy(), x.copy()
            up[k] += h[k]
            down[k] -= h[k]
            hess[:, k] = (self._nll_grad(up)[1] - self._nll_grad(down)[1]) / (2 * h[k])
        return 0.5 * (hess + hess.T)

    def loglik(self, x: np.ndarray) -> tuple[float, float]:
        """The log-likelihood at ``x`` and the saturated (EM) one, both conditional on the fixed.x
        covariates as lavaan's ``logl`` and ``unrestricted.logl``."""
        logl_x = sum(pt.logl_x for pt in self.patterns)
        return float(-self._nll(x) - logl_x), float(self._h1 - logl_x)

    # ------------------------------------------------------------------ baseline and fit measures
    def baseline(self) -> tuple[float, int]:
        """The independence model under FIML (module docstring): :math:`(\\chi^2_0, df_0)`."""
        chisq = 2 * sum(pt.unrestricted_logl - pt.baseline_logl for pt in self.patterns)
        df = 0
        for blk in self.model.blocks:
            p, px = blk.p, len(blk.ov_x)
            df += p * (p + 1) // 2 - px * (px + 1) // 2 - (p - px)
        return float(chisq), int(df)

    def fit_measures(self, x: np.ndarray, npar: int, chisq: float, df: int, baseline_chisq: float,
                     baseline_df: int, con_jac: np.ndarray | None = None, estimator: str = "ML",
                     scaled: fitm.ScaledTest | None = None, baseline_scaled: fitm.ScaledTest | None = None,
                     robust: fitm.RobustStatistics | None = None, robust_indices: bool = True) -> dict:
        """lavaan's ``fitMeasures`` for the FIML fit (:func:`analysis.sem.fit.fit_measures`): the
        residual-based ones against the EM moments with the means (lavaan's ``sampstat``); GFI,
        AGFI and PGFI with lavaan's FIML statistics (:func:`analysis.sem.fit.ml_gfi` on the
        available-case means and pairwise covariances, weighted by the missing-data information
        of the patterns: :func:`analysis.sem.fit.missing_data_moments`); the robust
        CFI/TLI/RNI/RMSEA from the FIML-corrected statistics (``robust``, default
        :meth:`robust_statistics` version "V6", lavaan's for ML; ``con_jac`` the Jacobian of the
        equality constraints at ``x``). With MLR (``estimator``) the scaled tests of the model
        and the baseline (``scaled``, ``baseline_scaled``) and ``robust`` from
        :meth:`robust_statistics` version "V3". ``robust_indices = False`` (ML) leaves the robust
        indices out: their FIML-corrected statistics are most of a large model's fit measures'
        cost (an invariance ladder decided on the standard indices needs none)."""
        self._unweighted("fit_measures")
        logl, unres = self.loglik(x)
        moments = self.moments(x)
        res = fitm.residual_measures([st.cov for st in self.stats], [s for s, _ in moments],
                                     [st.n for st in self.stats], sample_mean=[st.mean for st in self.stats],
                                     implied_mean=[m for _, m in moments])
        if robust is None and robust_indices:
            robust = self.robust_statistics(x, df, baseline_df, con_jac)
        pair = [fitm.missing_data_moments(_values(pt, len(st.mean))) for pt, st in zip(self.patterns, self.stats)]
        gfi_value = fitm.ml_gfi([c for c, _, _ in pair], [s for s, _ in moments], [st.n for st in self.stats],
                                [m for _, m, _ in pair], [m for _, m in moments], patterns=[pt for _, _, pt in pair],
                                fixed_x=[[blk.ov.index(v) for v in blk.ov_x] for blk in self.model.blocks])
        nel = sum(len(st.mean) * (len(st.mean) + 3) // 2 for st in self.stats)
        out = fitm.fit_measures(npar=npar, ntotal=self.ntotal, chisq=chisq, df=df, baseline_chisq=baseline_chisq,
                                baseline_df=baseline_df, n_groups=len(self.stats), estimator=estimator,
                                fmin=chisq / (2 * self.ntotal), logl=logl, unrestricted_logl=unres, residuals=res,
                                scaled=scaled, baseline_scaled=baseline_scaled, robust=robust,
                                gfi_value=gfi_value, nel=nel)
        return out

    # ------------------------------------------------------------------ the saturated model's parts
    def _h1_parts(self) -> list[dict]:
        """Per group, at the EM moments (cached: they do not depend on the parameters): the cells
        of the saturated model in use (``keep``: the fixed.x covariates' own moments are fixed),
        its observed information under FIML ``a1`` (:func:`analysis.sem.h1.missing_observed`) and
        its Cholesky factor (None when not positive definite), the complete-data information ``wc``
        (:func:`_complete_information`), the casewise scores ``scores`` (None until
        :meth:`_h1_scores` computes them: MLR only), the baseline's cells ``base`` (each non-exogenous
        mean and variance) and the baseline's ``trace`` :math:`\\operatorname{tr}(A_b^{-1}B_b)`
        (:func:`_baseline_trace`); all in the kept cells, in :mod:`analysis.sem.h1`'s order (the
        means, then the covariances)."""
        self._unweighted("_h1_parts")
        if getattr(self, "_h1_cache", None) is not None:
            return self._h1_cache
        out = []
        for blk, st, pt in zip(self.model.blocks, self.stats, self.patterns):
            p = len(st.mean)
            rows, cols, _ = h1.moment_cells(p)
            ix = [blk.ov.index(v) for v in blk.ov_x]
            is_x = np.isin(np.arange(p), ix)
            keep = h1.not_fixed_x(p, ix)
            a1, wc = h1.missing_observed(pt, st.cov, st.mean), _complete_information(st.cov)
            if not keep.all():  # (a copy: only then)
                a1, wc = a1[np.ix_(keep, keep)], wc[np.ix_(keep, keep)]
            c, info = lapack.dpotrf(a1, lower=0, clean=1)
            out.append(dict(keep=keep, a1=a1, chol=None if info != 0 else c, wc=wc, scores=None,
                            base=np.concatenate([~is_x, (rows == cols) & ~is_x[rows]])[keep],
                            trace=_baseline_trace(pt, ~is_x)))
        self._h1_cache = out
        return out

    def _h1_scores(self, g: int) -> np.ndarray:
        """Group g's casewise scores of the saturated model at the EM moments on the kept cells
        (:func:`analysis.sem.h1.missing_scores`; n x p*, the largest array of a fit), computed on
        first use (the MLR statistics; ML's V6 does not read them) and kept in the parts."""
        part = self._h1_parts()[g]
        if part["scores"] is None:
            st, pt = self.stats[g], self.patterns[g]
            scores = h1.missing_scores(pt, st.cov, st.mean)
            if not part["keep"].all():  # copied only when fixed.x cells are dropped (0.9 GB at N = 44,000)
                scores = scores[:, part["keep"]]
            part["scores"] = scores
        return part["scores"]

    def saturated_observed_information(self) -> list[np.ndarray]:
        """Per group the saturated model's observed information at the EM moments,
        :func:`analysis.sem.h1.missing_observed` with the fixed.x covariates (their own moments'
        rows and columns 0): from the parts the robust indices cached (:math:`A_1`), the same
        numbers, when the fit measures have computed them, else computed."""
        self._unweighted("saturated_observed_information")
        cached = getattr(self, "_h1_cache", None)
        out = []
        for g, (blk, st, pt) in enumerate(zip(self.model.blocks, self.stats, self.patterns)):
            if cached is None:
                out.append(h1.missing_observed(pt, st.cov, st.mean, [blk.ov.index(v) for v in blk.ov_x]))
                continue
            keep = cached[g]["keep"]
            full = np.zeros((len(keep), len(keep)))
            full[np.ix_(keep, keep)] = cached[g]["a1"]
            out.append(full)
        return out

    def saturated_inverse_root(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        r"""Per group ``(R, keep)``: ``keep`` the saturated model's moments that are not the fixed.x
        covariates' own, and R the inverse of the upper Cholesky factor U of the observed information
        at the EM moments on them (:math:`A_1 = U^\top U`, :meth:`saturated_observed_information`), so
        :math:`A_1^{-1} = RR^\top` (R upper triangular; LAPACK trtri: half the flops of an inverse by
        potri), computed once and cached: the robust indices' V6 trace and the FIML standardized
        residuals (:mod:`analysis.sem.diagnostics`) read it. None for a group whose information is
        not positive definite. The arrays are read-only."""
        self._unweighted("saturated_inverse_root")
        return [None if part["chol"] is None else (_part_root(part), part["keep"]) for part in self._h1_parts()]

    def _deltas(self, x: np.ndarray, kmat: np.ndarray | None = None, keep: bool = True) -> list[np.ndarray]:
        """Per group the derivatives of (mu, vech Sigma in ``np.tril_indices`` order: the order of
        :mod:`analysis.sem.h1`) in the free parameters (times ``kmat``, the null space of the
        equality constraints, when given), the kept cells only unless ``keep`` is False."""
        q = self.model.nfree
        parts = self._h1_parts() if keep else None
        out = []
        for g, (index, ds, dm) in enumerate(self.model.derivatives(x)):
            p = ds.shape[1]
            rows, cols, _ = h1.moment_cells(p)
            delta = np.zeros((len(rows) + p, q))
            np.add.at(delta.T, index, np.concatenate([dm, ds[:, rows, cols]], axis=1))
            if keep:
                delta = delta[parts[g]["keep"]]
            out.append(delta if kmat is None else delta @ kmat)
        return out

    def casewise_scores(self, x: np.ndarray) -> list[np.ndarray]:
        """Per group the gradients of each case's :math:`-\\log L` in the free parameters at ``x``
        (:math:`n_g \\times q`): the saturated model's casewise scores at the implied moments
        (:func:`analysis.sem.h1.missing_scores`, of :math:`\\log L`: negated) times the model's
        derivatives. Their cross-product is the first-order information (lavaan's ``B0`` with
        ``h1.information = "structured"``)."""
        self._unweighted("casewise_scores")
        return [-h1.missing_scores(pt, sigma, mu) @ delta
                for pt, (sigma, mu), delta in zip(self.patterns, self.moments(x), self._deltas(x, keep=False))]

    def yuan_bentler_traces(self) -> tuple[float, float, int]:
        """The saturated model's and the baseline's traces of the Yuan-Bentler (Mplus) scaling
        factor under FIML: :math:`\\sum_g\\operatorname{tr}(A_{1,g}^{-1}B_{1,g})` (observed
        information and casewise-score cross-product at the EM moments, lavaan's
        ``h1.information = "unstructured"``), the baseline's
        :math:`\\sum_g\\operatorname{tr}(A_{b,g}^{-1}B_{b,g})` at its FIML estimates (each
        variable's observed mean and variance), and the number of saturated-model parameters
        (lavaan's divisor of ``scaling.factor.h1``). NaN traces when an information is singular."""
        h1 = base = 0.0
        n_h1 = 0
        for g, part in enumerate(self._h1_parts()):
            n_h1 += int(part["keep"].sum())
            base += part["trace"]
            if part["chol"] is None:
                h1 = float("nan")
                continue
            scores = self._h1_scores(g)
            t = _cho_solve(part["chol"], scores.T)
            h1 += float(np.sum(t * scores.T))
        return float(h1), float(base), n_h1

    def robust_statistics(self, x: np.ndarray, df: int, baseline_df: int,
                          con_jac: np.ndarray | None = None, version: str = "V6") -> fitm.RobustStatistics:
        r"""lavaan's statistics behind the robust CFI/TLI/RMSEA with FIML: Zhang & Savalei's
        (2023) FIML-corrected statistic, ``lavaan:::lav_fit_fiml_corrected(fit, version)``:
        "V6" for ML (no scaled test), "V3" for MLR.

        :math:`T_3` is the complete-data ML statistic with the EM moments as the sample moments,
        at the FIML estimates (:math:`T_{3,0}` the same for the independence model at its FIML
        estimates), and :math:`\hat c = k/df`. With, per group g, :math:`A_{1,g}` the observed
        information of the saturated model at the EM moments (:func:`analysis.sem.h1.missing_observed`),
        :math:`W_{c,g}` its complete-data information per case, :math:`\Delta_g` the derivatives of
        (vech :math:`\Sigma_g`, :math:`\mu_g`) in the free parameters on the null space of the
        equality constraints and :math:`H = \sum_g\Delta_g^\top A_{1,g}\Delta_g`:

        V6: :math:`k = \sum_g n_g\operatorname{tr}(W_{c,g}A_{1,g}^{-1})
        - \operatorname{tr}\big[\big(\sum_g n_g\Delta_g^\top W_{c,g}\Delta_g\big)H^{-1}\big]`.

        V3 (lavaan's :math:`\operatorname{tr}(UW_m^{-1}W_cW_m^{-1}U\Gamma)` with
        :math:`\Gamma_g = W_{m,g}^{-1}J_{m,g}W_{m,g}^{-1}/f_g`, written in totals): with
        :math:`s_i` case i's saturated scores (:func:`analysis.sem.h1.missing_scores`, group g),
        :math:`t_i = A_{1,g}^{-1}s_i` and :math:`z_i = H^{-1}\Delta_g^\top s_i`, the residual
        :math:`y_{ih} = [h = g]\,t_i - \Delta_hz_i` in every group h and

        .. math:: k = \sum_i\sum_h n_h\,y_{ih}^\top W_{c,h}\,y_{ih}.

        :math:`k_0` the same with the baseline's cells (each variance and mean; its information
        is block-diagonal over groups, so only :math:`h = g`). NaN where the saturated
        information is singular.
        """
        if version not in ("V3", "V6"):
            raise InputError(f"FIML-corrected statistic: version must be 'V3' or 'V6', got {version!r}")
        q = self.model.nfree
        t3 = self.ntotal * self._complete.objective(x)
        kmat = np.eye(q)
        if con_jac is not None and con_jac.size:
            _, sv, vt = np.linalg.svd(con_jac, full_matrices=True)
            rank = int(np.sum(sv > 1e-10 * max(1.0, sv.max())))
            kmat = vt[rank:].T
        parts = self._h1_parts()
        nan = float("nan")
        if any(part["chol"] is None for part in parts):
            return fitm.RobustStatistics(nan, nan, nan, nan)
        deltas = self._deltas(x, kmat)
        den = sum(_sandwich(d, part["chol"]) for d, part in zip(deltas, parts))
        t3b = 0.0
        for blk, st, pt in zip(self.model.blocks, self.stats, self.patterns):
            p = len(st.mean)
            is_x = np.isin(np.arange(p), [blk.ov.index(v) for v in blk.ov_x])
            # the independence model at its FIML estimates: each variable's observed mean and
            # variance, the covariates' block at its sample moments
            columns = _columns(pt, p)
            sig0 = np.diag([np.var(c) for c in columns])
            mu0 = np.array([np.mean(c) for c in columns])
            sig0[np.ix_(is_x, is_x)] = st.cov[np.ix_(is_x, is_x)]
            mu0[is_x] = st.mean[is_x]
            inv0 = np.linalg.inv(sig0)
            d0 = st.mean - mu0
            t3b += st.n * (np.linalg.slogdet(sig0)[1] + np.sum(st.cov * inv0) - np.linalg.slogdet(st.cov)[1] - p
                           + d0 @ inv0 @ d0)
        if version == "V6":
            total, kb_total = 0.0, 0.0
            num = np.zeros_like(den)
            for st, part, delta in zip(self.stats, parts, deltas):
                n, a1, wc, base = st.n, part["a1"], part["wc"], part["base"]
                keep = part["keep"]
                total += n * _complete_trace(_embed(_part_root(part), keep), st.cov)  # tr(Wc A1^-1)
                kb_total += n * np.sum(wc[np.ix_(base, base)] * np.linalg.inv(a1[np.ix_(base, base)]))
                num += n * _complete_sandwich(_embed(delta, keep), st.cov)
            k = total - np.sum(num * np.linalg.inv(den).T)
            kb = total - kb_total
        else:
            den_inv = np.linalg.inv(0.5 * (den + den.T))
            k = kb = 0.0
            for g, (part, delta) in enumerate(zip(parts, deltas)):
                s_t = self._h1_scores(g).T
                t = _cho_solve(part["chol"], s_t)  # A1^-1 s_i, every case of group g
                z = den_inv @ (delta.T @ s_t)
                for h, (st_h, part_h, delta_h) in enumerate(zip(self.stats, parts, deltas)):
                    y = -(delta_h @ z)
                    if h == g:
                        y += t
                    k += st_h.n * float(np.sum(y * (part_h["wc"] @ y)))
                b = part["base"]
                yb = t.copy()
                yb[b] -= np.linalg.solve(part["a1"][np.ix_(b, b)], s_t[b])
                kb += self.stats[g].n * float(np.sum(yb * (part["wc"] @ yb)))
        c = k / df if df > 0 else np.inf  # lavaan: k/0
        return fitm.RobustStatistics(float(t3), float(c), float(t3b), float(kb / baseline_df))


def _sandwich(delta: np.ndarray, upper: np.ndarray) -> np.ndarray:
    r""":math:`\Delta^\top A\Delta` over the columns of ``delta`` that are not zero (a group's
    derivatives vanish in the other groups' own parameters: a quarter of the columns with four
    groups), zero elsewhere, from the upper Cholesky factor U of A (``upper``,
    :math:`A = U^\top U`, zeros below) as :math:`(U\Delta)^\top(U\Delta)`: a triangular product and
    a symmetric one, half the flops of :math:`A\Delta`."""
    cols = np.flatnonzero(np.any(delta != 0, axis=0))
    out = np.zeros((delta.shape[1], delta.shape[1]))
    ud = blas.dtrmm(1.0, upper, delta[:, cols], side=0, lower=0, trans_a=0)
    out[np.ix_(cols, cols)] = ud.T @ ud
    return out


def _complete_sandwich(delta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    r""":math:`\Delta^\top W_c\Delta` (over the columns of ``delta`` that are not zero, as
    :func:`_sandwich`) of the complete-data information :func:`_complete_information` at ``sigma``
    (``delta``: rows for every moment, :func:`_embed`) without that :math:`p^* \times p^*` matrix:
    with :math:`K = \Sigma^{-1}` and :math:`D_j` the symmetric p x p matrix of column j's covariance cells,
    :math:`W_c\Delta_j` is :math:`K\Delta_{\mu,j}` on the means and :math:`s_{ab}(KD_jK)_{ab}`
    on the covariances (:math:`\sum_{c\ge d}s_{cd}(K_{ac}K_{bd} + K_{ad}K_{bc})D_{cd} = (KDK)_{ab}`),
    so :math:`\Delta^\top W_c\Delta` costs q p x p products, not :math:`p^{*2}q`."""
    p = len(sigma)
    rows, cols, s = h1.moment_cells(p)
    k_inv = np.linalg.inv(sigma)
    used = np.flatnonzero(np.any(delta != 0, axis=0))
    d = delta[:, used]
    d_mat = np.zeros((len(used), p, p))
    d_mat[:, rows, cols] = d[p:].T
    d_mat[:, cols, rows] = d[p:].T
    kdk = k_inv @ d_mat @ k_inv  # q' x p x p
    w_d = np.concatenate([k_inv @ d[:p], (kdk[:, rows, cols] * s).T])  # W_c Delta, moments x q'
    out = np.zeros((delta.shape[1], delta.shape[1]))
    prod = d.T @ w_d
    out[np.ix_(used, used)] = 0.5 * (prod + prod.T)
    return out


def _cho_solve(upper: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:math:`A^{-1}b` from the upper Cholesky factor of A."""
    return lapack.dpotrs(upper, b, lower=0)[0]


def _values(pt: Patterns, p: int) -> np.ndarray:
    """The group's data as an n x p array with NaN where missing (patterns in order)."""
    out = np.full((pt.n, p), np.nan)
    start = 0
    for o, y in zip(pt.observed, pt.rows):
        out[start:start + len(y), o] = y
        start += len(y)
    return out


def _baseline_trace(pt: Patterns, free: np.ndarray) -> float:
    r""":math:`\operatorname{tr}(A_b^{-1}B_b)` of the independence model under FIML at its estimates
    (each ``free`` variable's observed mean and variance; the others, fixed.x covariates, fixed):
    its log-likelihood is a sum over the variables, so :math:`A_b` is block diagonal with, per
    variable j (residuals r of its observed values, variance v),
    :math:`\partial^2/\partial v^2 = \sum(r^2/v^3 - 1/(2v^2))`, :math:`\partial^2/\partial\mu^2 = n_j/v`,
    :math:`\partial^2/\partial v\partial\mu = \sum r/v^2`, and the casewise scores
    :math:`(1/v - r^2/v^2)/2` and :math:`-r/v`."""
    total = 0.0
    columns = _columns(pt, len(free))
    for j in np.flatnonzero(free):
        y = columns[j]
        r, v = y - y.mean(), y.var()
        a = np.array([[np.sum(r**2 / v**3 - 0.5 / v**2), np.sum(r) / v**2], [np.sum(r) / v**2, len(y) / v]])
        s = np.column_stack([0.5 * (1 / v - r**2 / v**2), -r / v])
        total += np.sum(np.linalg.inv(a) * (s.T @ s))
    return float(total)


def _part_root(part: dict) -> np.ndarray:
    r"""R with :math:`A_1^{-1} = RR^\top` of one group's saturated parts (:meth:`FIMLEstimator._h1_parts`,
    positive definite: ``chol`` not None): the inverse of the upper Cholesky factor (upper
    triangular, zeros below), computed once and kept in ``part`` (read-only)."""
    root = part.get("root")
    if root is None:
        root, info = lapack.dtrtri(part["chol"], lower=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"trtri: info {info}")
        root.setflags(write=False)
        part["root"] = root
    return root


def _embed(rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``rows`` (one per kept moment) as rows of all the moments, zero at the others (the fixed.x
    covariates' own): a quadratic form of :math:`W_c` on the kept cells is then one of the whole
    :math:`W_c` (its other rows and columns meet zeros). ``rows`` itself when every moment is kept."""
    if keep.all():
        return rows
    out = np.zeros((len(keep), rows.shape[1]))
    out[keep] = rows
    return out


def _complete_trace(root: np.ndarray, sigma: np.ndarray) -> float:
    r""":math:`\operatorname{tr}(W_cA_1^{-1})` with :math:`A_1^{-1} = RR^\top` (``root``, rows for
    every moment: zero at the fixed.x covariates' own, :func:`_embed`) and :math:`W_c` the
    complete-data information at ``sigma`` (:func:`_complete_information`):
    :math:`\sum_j r_j^\top W_cr_j` over the columns :math:`r_j` of R, each
    :math:`r_{\mu}^\top Kr_{\mu} + \tfrac12\operatorname{tr}(KY_jKY_j)` (:math:`K = \Sigma^{-1}`,
    :math:`Y_j` the symmetric p x p matrix of the column's covariance cells; see
    :func:`_complete_sandwich`): p x p products per column, not the :math:`p^{*3}` of an inverse."""
    p = len(sigma)
    rows, cols, _ = h1.moment_cells(p)
    k_inv = np.linalg.inv(sigma)
    total = float(np.sum((k_inv @ root[:p]) * root[:p]))
    step = 256  # columns at a time (256 x p x p)
    for lo in range(0, root.shape[1], step):
        cells = root[p:, lo:lo + step].T  # columns x covariance cells
        y = np.zeros((len(cells), p, p))
        y[:, rows, cols] = cells
        y[:, cols, rows] = cells
        ky = k_inv @ y
        total += 0.5 * float(np.einsum("jab,jba->", ky, ky))
    return total


def _columns(pt: Patterns, p: int) -> list[np.ndarray]:
    """Per variable its observed values (all patterns, in the patterns' order)."""
    values = _values(pt, p)
    return [col[~np.isnan(col)] for col in values.T]


def _complete_information(sigma: np.ndarray) -> np.ndarray:
    r"""The complete-data information of the saturated model per case at ``sigma``, in
    :mod:`analysis.sem.h1`'s order: :math:`\Sigma^{-1}` for the means, then
    :math:`\tfrac12 D^\top(\Sigma^{-1}\otimes\Sigma^{-1})D` for the covariances (``np.tril_indices``
    order)."""
    p = len(sigma)
    k_inv = np.linalg.inv(sigma)
    rows, cols, w = h1.moment_cells(p)
    out = np.zeros((len(rows) + p, len(rows) + p))
    out[:p, :p] = k_inv
    wc_cov = out[p:, p:]
    k_c, k_d = k_inv[:, rows], k_inv[:, cols]  # K_ic, K_id for every cell (c, d)
    # the rows (a, b), b <= a, are consecutive: per a, K_ac K_bd + K_bc K_ad for b <= a, times the
    # weights (powers of 2: exact)
    for a in range(p):
        lo = a * (a + 1) // 2
        z = wc_cov[lo:lo + a + 1]
        np.multiply(k_c[a][None, :], k_d[:a + 1], out=z)
        z += k_c[:a + 1] * k_d[a][None, :]
        z *= w[None, :]
        z[a] *= 0.5  # the row (a, a)
    return out


# --------------------------------------------------------------------------- the analytic Hessian


def _group_hessian(state: dict, kind: np.ndarray, i: np.ndarray, j: np.ndarray, pt: Patterns) -> np.ndarray:
    r"""The Hessian of one group's :math:`-\log L` in its free parameter-table rows (``kind``
    the matrix, ``i, j`` the cell of each row).

    Every row's derivatives are of rank two and one in the columns of
    :math:`B = [I_p,\ \Lambda\Phi,\ \Lambda A]` (:math:`\Phi = A\Psi A^\top`, :math:`\eta = A\alpha`):
    :math:`\dot\Sigma_r = w_r(u_rv_r^\top + v_ru_r^\top)` and :math:`\dot\mu_r = s_rc_r`,
    with a loading :math:`\lambda_{ij}`: :math:`u = e_i,\ v = (\Lambda\Phi)_{\cdot j},\ c = e_i,\ s = \eta_j`;
    a regression :math:`\beta_{ij}`: :math:`u = (\Lambda A)_{\cdot i},\ v = (\Lambda\Phi)_{\cdot j}`,
    :math:`c = u,\ s = \eta_j`;
    :math:`\psi_{ij}`: :math:`u = (\Lambda A)_{\cdot i},\ v = (\Lambda A)_{\cdot j}`; :math:`\theta_{ij}`:
    :math:`u = e_i, v = e_j` (:math:`w = 1/2` on the diagonals, else 1); an intercept
    :math:`\nu_i`: :math:`c = e_i`; a latent mean :math:`\alpha_i`: :math:`c = (\Lambda A)_{\cdot i}`.
    Per pattern k (:math:`M_k = \Sigma_{oo}^{-1}`, :math:`C_k = M_k(2W_k - \Sigma_{oo})M_k`,
    :math:`d_k`, all zero outside o),

    .. math:: H_{ab} = \sum_k n_k\Big[\tfrac12\operatorname{tr}(\dot\Sigma_aM_k\dot\Sigma_bC_k)
              + \dot\mu_a^\top M_k\dot\Sigma_bM_kd_k + \dot\mu_b^\top M_k\dot\Sigma_aM_kd_k
              + \dot\mu_a^\top M_k\dot\mu_b\Big]
              + \sum_{ij}G_{ij}\frac{\partial^2\Sigma_{ij}}{\partial_a\partial_b}
              + g_\mu^\top\frac{\partial^2\mu}{\partial_a\partial_b},

    the traces read from :math:`B^\top M_kB`, :math:`B^\top C_kB` and :math:`B^\top M_kd_k`
    ((p + 2m) square per pattern, a few large products per block of patterns), G and
    :math:`g_\mu` the gradients in Sigma and mu (module docstring), the second derivatives of
    Sigma by :func:`_sigma_second` and of mu in closed form: :math:`(\lambda_{ij},\alpha_k)`:
    :math:`e_iA_{jk}`; :math:`(\lambda_{ij},\beta_{kl})`: :math:`e_iA_{jk}\eta_l`;
    :math:`(\beta_{ij},\alpha_k)`: :math:`(\Lambda A)_{\cdot i}A_{jk}`; :math:`(\beta_{ij},\beta_{kl})`:
    :math:`(\Lambda A)_{\cdot i}A_{jk}\eta_l + (\Lambda A)_{\cdot k}A_{li}\eta_j`.
    """
    lam, a, psi, sigma, mu, eta = state["lambda"], state["a"], state["psi"], state["sigma"], state["mu"], state["eeta"]
    p, m = lam.shape
    ell = lam @ a
    basis = np.hstack([np.eye(p), lam @ state["veta"], ell])
    nb = basis.shape[1]
    r = len(kind)
    bu, bv, bc = np.zeros(r, dtype=int), np.zeros(r, dtype=int), np.zeros(r, dtype=int)
    w, s = np.zeros(r), np.zeros(r)
    diag = np.where(i == j, 0.5, 1.0)
    for name in ("lambda", "beta", "psi", "theta", "nu", "alpha"):
        sel = kind == name
        if not sel.any():
            continue
        ii, jj = i[sel], j[sel]
        if name in ("lambda", "beta"):
            bu[sel] = ii if name == "lambda" else p + m + ii
            bv[sel], w[sel], bc[sel], s[sel] = p + jj, 1.0, bu[sel], eta[jj]
        elif name in ("psi", "theta"):
            off = p + m if name == "psi" else 0
            bu[sel], bv[sel], w[sel] = off + ii, off + jj, diag[sel]
        else:
            bc[sel], s[sel] = (ii if name == "nu" else p + m + ii), 1.0
    g_sigma, g_mu = np.zeros((p, p)), np.zeros(p)
    # the rows that move Sigma (w != 0) and mu (s != 0); every term below is between those only
    sig, mean = np.flatnonzero(w != 0), np.flatnonzero(s != 0)
    su, sv = bu[sig], bv[sig]
    # flat cells of a pattern's nb x nb B'MB (B'CB) read by the Sigma-Sigma terms: with n_k folded
    # into B'MB, term1 = M[v_a, u_b] C[u_a, v_b] (its transpose is the fourth term), then the
    # symmetric M[v_a, v_b] C[u_a, u_b] + M[u_a, u_b] C[v_a, v_b]
    cell_vu, cell_uv = sv[:, None] * nb + su[None, :], su[:, None] * nb + sv[None, :]
    ns = len(sig)
    upper = np.triu_indices(ns)  # the symmetric terms on the upper triangle only
    cell_vv, cell_uu = sv[upper[0]] * nb + sv[upper[1]], su[upper[0]] * nb + su[upper[1]]
    h1_term, h23 = np.zeros((ns, ns)), np.zeros(len(upper[0]))
    tmp, tmp_u = np.empty((ns, ns)), np.empty(len(upper[0]))
    bmb_sum = np.zeros((nb, nb))  # sum n_k B'M_kB: the mu-mu block
    q_sum = np.zeros((nb * nb, nb))  # Q[x, y, v] = sum n_k (B'M_kB)[x, y] (B'M_kd_k)[v]: the mu-Sigma block
    n_pat = len(pt.rows)
    block = 64  # patterns at a time: bounded memory (64 x (p + nb) x nb)
    for first in range(0, n_pat, block):
        m_all, c_all, v_all, nk = h1.pattern_parts(pt, sigma, mu, first, min(first + block, n_pat))
        kk = len(nk)
        # G = sum n_k/2 (M_k - M_k W_k M_k) with M W M = (C + M)/2; g_mu = -sum n_k M_k d_k
        g_sigma += np.tensordot(nk / 4, m_all - c_all, axes=1)
        g_mu -= nk @ v_all
        bmb = np.matmul(basis.T, (m_all.reshape(-1, p) @ basis).reshape(kk, p, nb))
        bcb = np.matmul(basis.T, (c_all.reshape(-1, p) @ basis).reshape(kk, p, nb))
        z = v_all @ basis
        bmb_n = bmb.reshape(kk, nb * nb) * nk[:, None]
        bmb_sum += bmb_n.sum(axis=0).reshape(nb, nb)
        q_sum += bmb_n.T @ z
        for mk, ck in zip(bmb_n * 0.5, bcb.reshape(kk, nb * nb)):
            np.multiply(mk.take(cell_vu), ck.take(cell_uv), out=tmp)
            h1_term += tmp
            np.multiply(mk.take(cell_vv), ck.take(cell_uu), out=tmp_u)
            h23 += tmp_u
            np.multiply(mk.take(cell_uu), ck.take(cell_vv), out=tmp_u)
            h23 += tmp_u
    sym = np.zeros((ns, ns))
    sym[upper] = h23
    sym[upper[1], upper[0]] = h23
    out = np.zeros((r, r))
    out[np.ix_(sig, sig)] = (h1_term + h1_term.T + sym) * np.outer(w[sig], w[sig])
    q_sum = q_sum.reshape(nb, nb, nb)
    bm, um, vm = bc[mean][:, None], bu[sig][None, :], bv[sig][None, :]
    cross = (q_sum[bm, um, vm] + q_sum[bm, vm, um]) * (s[mean][:, None] * w[sig][None, :])
    out[np.ix_(mean, sig)] += cross
    out[np.ix_(sig, mean)] += cross.T
    out[np.ix_(mean, mean)] += bmb_sum[np.ix_(bc[mean], bc[mean])] * np.outer(s[mean], s[mean])
    out += _sigma_second(lam, psi, a, g_sigma, kind, i, j)
    out += _mu_second(a, ell, eta, g_mu, kind, i, j)
    return out


def _sigma_second(lam: np.ndarray, psi: np.ndarray, a: np.ndarray, g: np.ndarray, kind, i, j) -> np.ndarray:
    r"""Second derivatives of :math:`\operatorname{tr}(G\,\Sigma)` for a fixed symmetric G between
    parameter-table rows (``kind``, ``i``, ``j``).

    With :math:`L = \Lambda A`, :math:`\Phi = A\Psi A^\top`, :math:`K = L^\top GL`, the gradient in
    the matrix elements is :math:`2G\Lambda\Phi` (:math:`\Lambda`), :math:`K` (:math:`\Psi`),
    :math:`2K\Psi A^\top` (B) and G (:math:`\Theta`); column s is its derivative along row s
    (:math:`dA = A\,dB\,A`), read at every row. :math:`\Theta`, intercepts and means: zero."""
    ell = lam @ a
    phi = a @ psi @ a.T
    g_ell = g @ ell
    g_lam = g @ lam
    kk = ell.T @ g_ell
    n_rows, m = len(kind), a.shape[0]
    is_lam, is_psi, is_beta = kind == "lambda", kind == "psi", kind == "beta"
    psi_off = i[is_psi] != j[is_psi]
    out = np.zeros((n_rows, n_rows))

    def read(d_lam, d_psi, d_beta):
        col = np.zeros(n_rows)
        if d_lam is not None:
            col[is_lam] = d_lam[i[is_lam], j[is_lam]]
        if d_psi is not None:
            col[is_psi] = d_psi[i[is_psi], j[is_psi]] + np.where(psi_off, d_psi[j[is_psi], i[is_psi]], 0.0)
        if d_beta is not None:
            col[is_beta] = d_beta[i[is_beta], j[is_beta]]
        return col

    for t, (name, k, l_) in enumerate(zip(kind, i, j)):
        if name == "lambda":
            d_k = np.outer(a[l_], g_ell[k])
            d_k = d_k + d_k.T
            out[:, t] = read(2 * np.outer(g[:, k], phi[l_]), d_k, 2 * d_k @ psi @ a.T)
        elif name == "psi":
            e = np.zeros((m, m))
            e[k, l_] = e[l_, k] = 1.0
            out[:, t] = read(2 * g_ell @ e @ a.T, None, 2 * kk @ e @ a.T)
        elif name == "beta":
            d_a = np.outer(a[:, k], a[l_])
            d_phi = d_a @ psi @ a.T
            d_k = np.outer(ell[:, k], a[l_]).T @ g_ell
            d_k = d_k + d_k.T
            out[:, t] = read(2 * g_lam @ (d_phi + d_phi.T), d_k, 2 * (d_k @ psi @ a.T + kk @ psi @ d_a.T))
    return out


def _mu_second(a: np.ndarray, ell: np.ndarray, eta: np.ndarray, g_mu: np.ndarray, kind, i, j) -> np.ndarray:
    r""":math:`g_\mu^\top\partial^2\mu` between rows (:func:`_group_hessian`), symmetric."""
    n_rows = len(kind)
    out = np.zeros((n_rows, n_rows))
    gl = ell.T @ g_mu
    lam_r, beta_r, alpha_r = (np.flatnonzero(kind == k) for k in ("lambda", "beta", "alpha"))
    if len(lam_r) and len(alpha_r):
        out[np.ix_(lam_r, alpha_r)] = g_mu[i[lam_r]][:, None] * a[np.ix_(j[lam_r], i[alpha_r])]
    if len(lam_r) and len(beta_r):
        out[np.ix_(lam_r, beta_r)] = (g_mu[i[lam_r]][:, None] * a[np.ix_(j[lam_r], i[beta_r])]
                                      * eta[j[beta_r]][None, :])
    if len(beta_r) and len(alpha_r):
        out[np.ix_(beta_r, alpha_r)] = gl[i[beta_r]][:, None] * a[np.ix_(j[beta_r], i[alpha_r])]
    out = out + out.T  # the blocks above are between different rows
    if len(beta_r):
        bi, bj = i[beta_r], j[beta_r]
        half = gl[bi][:, None] * a[np.ix_(bj, bi)] * eta[bj][None, :]  # gl_i A_jk eta_l for (ij, kl)
        out[np.ix_(beta_r, beta_r)] += half + half.T
    return out
