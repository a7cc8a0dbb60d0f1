r"""Missing-data patterns of a multivariate-normal sample, and the conditional quantities of each
pattern from one inverse of the full covariance matrix.

Every incomplete-data computation under multivariate normality (EM for the saturated moments,
Little's MCAR test, Mahalanobis distances over the observed entries, the FIML likelihood and its
gradient) needs, for a row with observed variables :math:`o` and missing variables :math:`m`,
quantities of :math:`\Sigma_{oo}^{-1}` or of the conditional distribution of :math:`y_m` given
:math:`y_o`. With :math:`P = \Sigma^{-1}` partitioned the same way, the partitioned inverse
(e.g. Magnus & Neudecker, 2019, ch. 1; Little & Rubin, 2019, sec. 11.2) gives them all from the
:math:`k \times k` block :math:`P_{mm}` (:math:`k = |m|`):

.. math::

    \Sigma_{oo}^{-1} = P_{oo} - P_{om}P_{mm}^{-1}P_{mo}, \qquad
    \log|\Sigma_{oo}| = \log|\Sigma| + \log|P_{mm}|,

    \Sigma_{mo}\Sigma_{oo}^{-1} = -P_{mm}^{-1}P_{mo}, \qquad
    \Sigma_{mm\cdot o} = \Sigma_{mm} - \Sigma_{mo}\Sigma_{oo}^{-1}\Sigma_{om} = P_{mm}^{-1}.

So for a residual :math:`e` (:math:`y - \mu` on :math:`o`, 0 on :math:`m`) and :math:`b = (Pe)_m`,
:math:`\zeta = P_{mm}^{-1}b`:

.. math::

    E(y_m - \mu_m \mid y_o) = -\zeta, \qquad
    e_o^\top\Sigma_{oo}^{-1}e_o = e^\top Pe - b^\top\zeta .

One :math:`p \times p` inverse serves every pattern, and the patterns missing the same number
:math:`k` of variables are handled as one stacked :math:`k \times k` operation
(:func:`conditional_blocks`, :func:`conditional_shifts`), so the cost grows with the number of
distinct values of :math:`k`, not with the number of patterns. :func:`pattern_layout` arranges a
data matrix for this: rows grouped by pattern, patterns by the number missing.

References
----------
Little, R. J. A., & Rubin, D. B. (2019). *Statistical analysis with missing data* (3rd ed.),
    ch. 11. Wiley.
Magnus, J. R., & Neudecker, H. (2019). *Matrix differential calculus with applications in
    statistics and econometrics* (3rd ed.), ch. 1, sec. 11 (partitioned matrices). Wiley.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

__all__ = ["PatternBatch", "PatternLayout", "block_cells", "conditional_blocks", "conditional_shifts",
           "merge_batches", "pattern_layout", "small_inverse", "spd_inverse"]

# elements of a stacked gather (rows x k x p) made at once: bounds the memory of
# conditional_shifts whatever the number of rows and missing variables (32 MB)
_CHUNK = 2 ** 22
# padded elements (rows x missing x p) a batch may add to save one stacked operation: its fixed
# cost, some twenty numpy calls (~20 us), is what ~10,000 padded elements cost (gathered, multiplied,
# ~2 ns each); measured on the default study's FIML bootstrap draws: 10,000 the fastest of 0-1e9
_PAD_ELEMENTS = 10000
_CLOSED_FORM = 3  # blocks up to 3 x 3: inverted in closed form (small_inverse)


@dataclass(frozen=True)
class PatternBatch:
    """The patterns of a :class:`PatternLayout` missing the same number ``k`` of variables.

    Attributes
    ----------
    missing : ndarray of int, (n_patterns, k)
        Each pattern's missing variables, ascending; patterns in lexicographic order of them.
    patterns : ndarray of int, (n_patterns,)
        The patterns' ids in the layout (:attr:`PatternLayout.pattern`).
    rows : ndarray of int
        The layout's rows with one of these patterns, ascending.
    row_pattern : ndarray of int
        Each of ``rows``' position in ``missing``.
    counts : ndarray of int, (n_patterns,)
        Rows per pattern.
    """

    missing: np.ndarray
    patterns: np.ndarray
    rows: np.ndarray
    row_pattern: np.ndarray
    counts: np.ndarray

    @property
    def k(self) -> int:
        """The number of missing variables of every pattern in the batch."""
        return self.missing.shape[1]


@dataclass(frozen=True)
class PatternLayout:
    """A data matrix arranged by missingness pattern (:func:`pattern_layout`).

    Attributes
    ----------
    values : ndarray, (n, p)
        The data with 0 where missing.
    observed : ndarray of bool, (n, p)
    pattern : ndarray of int, (n,)
        Each row's pattern id: the complete pattern (when there are complete rows) is 0, then the
        patterns by number missing, ascending, and within it in lexicographic order of the missing
        variables (the order of ``batches``).
    complete : ndarray of int
        The rows missing nothing, ascending.
    batches : tuple of PatternBatch
        One per number ``k >= 1`` of missing variables present, ``k`` ascending.
    n_patterns : int
        Distinct patterns (the complete one included).
    """

    values: np.ndarray
    observed: np.ndarray
    pattern: np.ndarray
    complete: np.ndarray
    batches: tuple[PatternBatch, ...]
    n_patterns: int

    @property
    def flags(self) -> np.ndarray:
        """The patterns' observed flags, (n_patterns, p), in id order."""
        p = self.values.shape[1]
        out = np.ones((self.n_patterns, p), dtype=bool)
        for b in self.batches:
            out[b.patterns[:, None], b.missing] = False
        return out

    @property
    def counts(self) -> np.ndarray:
        """Rows per pattern, in id order."""
        return np.bincount(self.pattern, minlength=self.n_patterns)


def pattern_layout(x: np.ndarray) -> PatternLayout:
    """Group the rows of ``x`` (NaN = missing) by missingness pattern and the patterns by their
    number of missing variables.

    Parameters
    ----------
    x : ndarray, (n, p)
        Data, NaN where missing. Rows missing everything are kept (a pattern with ``k = p``);
        callers that must drop them do so first.

    Returns
    -------
    PatternLayout
        Patterns ordered: complete first, then by number missing ascending, then lexicographically
        by the missing variables (the order of ``np.unique`` on the observed flags sorted stably by
        the number observed, descending).

    Notes
    -----
    Only the incomplete rows are searched for patterns (one ``np.unique`` of their missing
    columns per number missing), so complete rows cost nothing beyond a flag. In R:
    ``mice::md.pattern(x)`` lists the same patterns.
    """
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    observed = ~np.isnan(x)
    values = np.where(observed, x, 0.0)
    q = p - observed.sum(axis=1)
    complete = np.flatnonzero(q == 0)
    pattern = np.zeros(n, dtype=np.intp)
    next_id = 1 if len(complete) else 0
    batches = []
    for size in np.unique(q[q > 0]):
        rows = np.flatnonzero(q == size)
        cols = np.nonzero(~observed[rows])[1].reshape(len(rows), size)  # missing columns, ascending
        keys, which, counts = np.unique(cols, axis=0, return_inverse=True, return_counts=True)
        which = which.ravel()
        ids = next_id + np.arange(len(keys))
        pattern[rows] = ids[which]
        next_id += len(keys)
        batches.append(PatternBatch(missing=keys.astype(np.intp), patterns=ids, rows=rows,
                                    row_pattern=which.astype(np.intp), counts=counts))
    return PatternLayout(values=values, observed=observed, pattern=pattern, complete=complete,
                         batches=tuple(batches), n_patterns=int(next_id))


def conditional_blocks(precision: np.ndarray, missing: np.ndarray, logdet: bool = False):
    r"""The stacked blocks :math:`P_{mm}` of ``precision`` for the patterns with missing variables
    ``missing`` (n_patterns x k), their inverses and, if asked, their log-determinants.

    :math:`P_{mm}^{-1} = \Sigma_{mm\cdot o}`, the covariance of the missing variables given the
    observed ones, and :math:`\log|\Sigma_{oo}| = \log|\Sigma| + \log|P_{mm}|` (module docstring).

    Parameters
    ----------
    precision : ndarray, (p, p)
        :math:`P = \Sigma^{-1}`.
    missing : ndarray of int, (n_patterns, k)

    Returns
    -------
    inverse : ndarray, (n_patterns, k, k)
        :math:`P_{mm}^{-1}` per pattern.
    logdet : ndarray, (n_patterns,) or None
        :math:`\log|P_{mm}|` per pattern (None unless ``logdet``).
    """
    return small_inverse(precision[missing[:, :, None], missing[:, None, :]], logdet)


def spd_inverse(a: np.ndarray):
    r"""``(inverse, log-determinant)`` of a symmetric positive-definite ``a`` (a covariance
    :math:`\Sigma`, its precision :math:`P = \Sigma^{-1}` and :math:`\log|\Sigma|`) from its
    Cholesky factor (LAPACK ``dpotrf`` + ``dpotri``: half the work of a general inverse, and the
    log-determinant for free), or None when the factorisation fails (``a`` not positive
    definite). The inverse is exactly symmetric."""
    factor, info = lapack.dpotrf(a, lower=1, clean=1)  # clean: zeros above the diagonal
    if info != 0:
        return None
    logdet = 2.0 * float(np.sum(np.log(np.diagonal(factor))))
    lower, info = lapack.dpotri(factor, lower=1, overwrite_c=1)  # the inverse's lower triangle, zeros above
    if info != 0:
        return None
    inverse = lower + lower.T
    inverse.flat[::len(a) + 1] *= 0.5  # the diagonal counted twice (exactly)
    return inverse, logdet


def small_inverse(blocks: np.ndarray, logdet: bool = False):
    r"""Inverses of a stack of small symmetric positive-definite matrices (n x k x k) and, if
    asked, their log-determinants: for :math:`k \le 3` in closed form (the adjugate over the
    determinant: a few whole-stack operations instead of a LAPACK call per matrix, ten times
    faster for hundreds of 2 x 2 blocks; equal to LU's to rounding), larger by
    :func:`numpy.linalg.inv` and :func:`numpy.linalg.slogdet`. Used for the blocks :math:`P_{mm}`
    of a precision matrix (:func:`conditional_blocks`, EM's E-step), whose conditioning is at most
    that of :math:`P`. Only the lower triangle of a 2 x 2 or 3 x 3 block is read."""
    k = blocks.shape[-1]
    if k == 1:  # 1 x 1: what LAPACK's LU gives, without the batched call's overhead
        return 1.0 / blocks, (np.log(np.abs(blocks[:, 0, 0])) if logdet else None)
    if k == 2:
        a00, a01, a11 = blocks[:, 0, 0], blocks[:, 1, 0], blocks[:, 1, 1]
        det = a00 * a11 - a01 * a01
        out = np.empty_like(blocks)
        out[:, 0, 0] = a11 / det
        out[:, 1, 1] = a00 / det
        out[:, 0, 1] = out[:, 1, 0] = -a01 / det
        return out, (np.log(np.abs(det)) if logdet else None)
    if k == 3:
        a00, a01, a02 = blocks[:, 0, 0], blocks[:, 1, 0], blocks[:, 2, 0]
        a11, a12, a22 = blocks[:, 1, 1], blocks[:, 2, 1], blocks[:, 2, 2]
        c00 = a11 * a22 - a12 * a12
        c01 = a02 * a12 - a01 * a22
        c02 = a01 * a12 - a02 * a11
        det = a00 * c00 + a01 * c01 + a02 * c02
        out = np.empty_like(blocks)
        out[:, 0, 0] = c00 / det
        out[:, 0, 1] = out[:, 1, 0] = c01 / det
        out[:, 0, 2] = out[:, 2, 0] = c02 / det
        out[:, 1, 1] = (a00 * a22 - a02 * a02) / det
        out[:, 1, 2] = out[:, 2, 1] = (a01 * a02 - a00 * a12) / det
        out[:, 2, 2] = (a00 * a11 - a01 * a01) / det
        return out, (np.log(np.abs(det)) if logdet else None)
    return np.linalg.inv(blocks), (np.linalg.slogdet(blocks)[1] if logdet else None)


def conditional_shifts(precision: np.ndarray, residuals: np.ndarray, missing: np.ndarray,
                       inverse: np.ndarray, row_pattern: np.ndarray,
                       max_elements: int = _CHUNK) -> tuple[np.ndarray, np.ndarray]:
    r"""Per row, :math:`b = (Pe)_m` and :math:`\zeta = P_{mm}^{-1}b` (minus the conditional mean
    of the missing part given the observed one, :math:`E(y_m - \mu_m \mid y_o) = -\zeta`; and
    :math:`e_o^\top\Sigma_{oo}^{-1}e_o = e^\top Pe - b^\top\zeta`).

    Parameters
    ----------
    precision : ndarray, (p, p)
        :math:`P = \Sigma^{-1}`.
    residuals : ndarray, (n_rows, p)
        The rows' :math:`e = y - \mu` on the observed variables, 0 on the missing ones.
    missing : ndarray of int, (n_patterns, k)
        The patterns' missing variables (all with the same k).
    inverse : ndarray, (n_patterns, k, k)
        :math:`P_{mm}^{-1}` per pattern (:func:`conditional_blocks`).
    row_pattern : ndarray of int, (n_rows,)
        Each row's pattern (position in ``missing``).
    max_elements : int, default 2**22
        Rows are taken in chunks of at most ``max_elements / (k * max(k, p))`` (at least one), so
        the stacked gathers hold at most about this many numbers (32 MB by default).

    Returns
    -------
    b, zeta : ndarray, (n_rows, k)

    Notes
    -----
    :math:`b` from the k rows of P a row needs (a gather of :math:`k \times p` per row, fewer
    operations than the full product :math:`eP`), in chunks of rows that bound the memory.
    """
    n_rows, p = residuals.shape
    k = missing.shape[1]
    step = max(1, int(max_elements) // (k * max(k, p)))
    if step >= n_rows:  # one chunk
        bb = np.matmul(precision[missing[row_pattern]], residuals[:, :, None])
        return bb[:, :, 0], np.matmul(inverse[row_pattern], bb)[:, :, 0]
    b = np.empty((n_rows, k))
    zeta = np.empty((n_rows, k))
    for a in range(0, n_rows, step):
        sl = slice(a, a + step)
        w = row_pattern[sl]
        bb = np.matmul(precision[missing[w]], residuals[sl, :, None])
        b[sl] = bb[:, :, 0]
        zeta[sl] = np.matmul(inverse[w], bb)[:, :, 0]
    return b, zeta


def block_cells(missing: np.ndarray, p: int) -> np.ndarray:
    r"""The flat positions (row-major, in a p x p matrix) of the cells :math:`(m_a, m_b)` of each
    pattern's :math:`k \times k` block, patterns in the order of ``missing`` (n_patterns x k): with
    ``blocks`` (n_patterns x k x k), ``np.bincount(block_cells(missing, p), blocks.ravel(),
    p * p).reshape(p, p)`` is :math:`\sum_j E_{m_j}B_jE_{m_j}^\top` (e.g. the summed conditional
    covariances :math:`\sum_j n_jE_{m_j}P_{m_jm_j}^{-1}E_{m_j}^\top` of EM's E-step and of the
    FIML gradient)."""
    return (missing[:, :, None] * p + missing[:, None, :]).ravel()


def merge_batches(ks, n_rows, p: int, budget: int = _PAD_ELEMENTS) -> list[list[int]]:
    r"""Groups of consecutive batches (``ks`` their numbers missing, ascending; ``n_rows`` their
    rows) to compute as one at the group's largest k: a batch joins the group of the next larger
    ones when padding its rows to that k adds at most ``budget`` elements
    (:math:`n_{rows}(k_{max} - k)p`), so many small batches cost one stacked operation; batches
    with :math:`k \le 3`, whose blocks :func:`small_inverse` inverts in closed form, join only
    each other.

    Padding: each pattern's missing variables are completed to :math:`k_{max}` with the indices
    p, p + 1, ... of extra variables whose rows and columns of the precision matrix are unit
    vectors, :math:`P^+ = \begin{pmatrix}P & 0\\ 0 & I\end{pmatrix}`, and whose residuals are 0. Its blocks
    are then :math:`\operatorname{diag}(P_{mm}, I)` (the same log-determinant, the inverse
    :math:`\operatorname{diag}(P_{mm}^{-1}, I)`) and :math:`b` and :math:`\zeta` are 0 at the
    padded places: :func:`conditional_blocks` and :func:`conditional_shifts` of :math:`P^+`
    give every pattern's own quantities.

    Returns
    -------
    list of lists of int
        The batches' positions, groups in ascending k, each group ascending.
    """
    groups: list[list[int]] = []
    for i in reversed(range(len(ks))):
        top = int(ks[groups[-1][0]]) if groups else 0
        if groups and (top <= _CLOSED_FORM or int(ks[i]) > _CLOSED_FORM) \
                and int(n_rows[i]) * (top - int(ks[i])) * p <= budget:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [g[::-1] for g in reversed(groups)]
