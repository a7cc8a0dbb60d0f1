r"""Information matrices of the saturated (h1) model of one group under missing data, in the
sample moments (the p means, then the covariances :math:`\sigma_{ab}`, :math:`a \ge b`, in
``np.tril_indices`` order), and the Jacobian of the model's moments in the same order: the
building blocks of :mod:`analysis.sem.diagnostics` for FIML fits (lavaan's
``lav_mvnorm_missing_information_expected``, ``lav_mvnorm_missing_information_observed_samplestats``
and ``lav_mvnorm_missing_information_firstorder``, here summed over cases, not divided by them).

Per missingness pattern k (:math:`n_k` rows, observed variables o, :math:`M_k = \Sigma_{oo}^{-1}`
zero outside o, :math:`W_k = \frac1{n_k}\sum_i (y_i - \mu_o)(y_i - \mu_o)^\top`,
:math:`d_k = \bar y_k - \mu_o`, :math:`C_k = 2M_kW_kM_k - M_k`), with :math:`s_{ab} = 1/2` on the
diagonal and 1 elsewhere, the Hessian of :math:`-\log L` (observed information) is

.. math::

    H_{\mu\mu} = \sum_k n_kM_k,\qquad
    H_{\mu_i,\sigma_{ab}} = \sum_k n_k s_{ab}\,(M_{k,ia}v_{k,b} + M_{k,ib}v_{k,a}),\quad v_k = M_kd_k,

    H_{\sigma_{ab},\sigma_{cd}} = \sum_k \tfrac{n_k}{2}s_{ab}s_{cd}\,(M_{bc}C_{ad} + M_{ad}C_{bc}
        + M_{bd}C_{ac} + M_{ac}C_{bd})_k,

and the expected information is the same with :math:`W_k = \Sigma_{oo}` (:math:`C_k = M_k`,
:math:`v_k = 0`): :math:`s_{ab}s_{cd}\sum_k n_k(M_{ac}M_{bd} + M_{ad}M_{bc})_k` (Savalei, 2010).
The first-order information is :math:`\sum_i g_ig_i^\top` of the casewise scores of
:math:`\log L`: :math:`g_\mu = a_i`, :math:`g_{\sigma_{ab}} = s_{ab}\,(a_ia_i^\top - M_k)_{ab}` with
:math:`a_i = M_k(y_i - \mu)`.
With fixed.x covariates (``x``) their own moments are fixed: their rows and columns are zero,
as lavaan's ``x.idx``.

References
----------
Savalei, V. (2010). Expected versus observed information in SEM with incomplete normal and
    nonnormal data. Psychological Methods 15(4), 352-367.

In R: ``lavaan:::lav_mvnorm_missing_information_observed_samplestats(Yp, Mu, Sigma) * N``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

__all__ = ["jacobian", "missing_expected", "missing_first_order", "missing_observed", "missing_scores", "moment_cells",
           "not_fixed_x", "pattern_parts"]


def moment_cells(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The covariance cells (``np.tril_indices``: a >= b) and their weights :math:`s_{ab}`."""
    rows, cols = np.tril_indices(p)
    return rows, cols, np.where(rows == cols, 0.5, 1.0)


def not_fixed_x(p: int, x: list[int]) -> np.ndarray:
    """Boolean mask over (means, covariances): False for the fixed.x covariates' own moments."""
    rows, cols, _ = moment_cells(p)
    is_x = np.isin(np.arange(p), x)
    return np.concatenate([~is_x, ~(is_x[rows] & is_x[cols])])


def jacobian(d_sigma: np.ndarray, d_mu: np.ndarray) -> np.ndarray:
    """The derivatives of (means, covariances) in the parameters (moments x q) from
    ``d_sigma`` (q x p x p) and ``d_mu`` (q x p)."""
    rows, cols, _ = moment_cells(d_mu.shape[1])
    return np.concatenate([d_mu.T, d_sigma[:, rows, cols].T], axis=0)


def pattern_parts(patterns, sigma: np.ndarray, mu: np.ndarray, first: int = 0, last: int | None = None,
                  expected: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the patterns ``first..last-1`` of ``patterns`` (a :class:`analysis.sem.fiml.Patterns`),
    stacked: :math:`M_k`, :math:`C_k`, :math:`v_k` (p x p, p x p, p; zero outside the observed
    variables; module docstring) and :math:`n_k`. ``expected``: :math:`W_k = \\Sigma_{oo}`, so
    :math:`C_k = M_k`, :math:`v_k = 0`."""
    p = len(sigma)
    last = len(patterns.rows) if last is None else last
    kk = last - first
    m_all, c_all, v_all, nk = np.zeros((kk, p, p)), np.zeros((kk, p, p)), np.zeros((kk, p)), np.zeros(kk)
    observed = patterns.observed[first:last]
    inverses = [None] * kk
    n_obs = np.array([len(o) for o in observed])
    for size in np.unique(n_obs):  # the patterns observing as many variables: one stacked inverse
        at = np.flatnonzero(n_obs == size)
        stack = np.linalg.inv(np.stack([sigma[np.ix_(observed[t], observed[t])] for t in at]))
        for t, inv in zip(at, stack):
            inverses[t] = inv
    for t, (o, y, inv) in enumerate(zip(observed, patterns.rows[first:last], inverses)):
        nk[t] = len(y)
        m_all[t][np.ix_(o, o)] = inv
        if expected:
            c_all[t][np.ix_(o, o)] = inv
            continue
        r = y - mu[o]
        c_all[t][np.ix_(o, o)] = 2 * inv @ (r.T @ r / len(y)) @ inv - inv
        v_all[t][o] = inv @ r.mean(axis=0)
    return m_all, c_all, v_all, nk


def _information(patterns, sigma, mu, x, expected: bool) -> np.ndarray:
    r"""The module docstring's Hessian, accumulated over blocks of patterns (memory independent of
    the number of cases and patterns: a few :math:`p^* \times p^*` arrays). The covariance block
    from one product over the patterns of the cells of :math:`M_k` and :math:`C_k` (both symmetric,
    so their :math:`p^*` lower-triangle cells suffice):
    :math:`T_{(xy),(uv)} = \sum_kn_kM_{k,xy}C_{k,uv}`, then
    :math:`H_{\sigma_{ab},\sigma_{cd}} = \tfrac12s_{ab}s_{cd}(T_{bc,ad} + T_{ad,bc} + T_{bd,ac} + T_{ac,bd})`:
    :math:`2n_{pat}p^{*2}` flops, not the :math:`2n_{pat}p^4` of all p x p x p x p products
    (:func:`_assemble_covariance_block`). The result is symmetric as computed (bit for bit)
    except the means' block, a sum of numerical inverses, which is symmetrised."""
    p = len(sigma)
    rows, cols, s = moment_cells(p)
    nc = len(rows)
    t = np.zeros((nc, nc), order="F" if expected else "C")
    h_mu = np.zeros((p, p))
    cross = np.zeros((p, p, p))
    n_pat = len(patterns.rows)
    block = max(1, min(n_pat, int(4e6 // max(p * p, 1))))
    for first in range(0, n_pat, block):
        m_all, c_all, v_all, sizes = pattern_parts(patterns, sigma, mu, first, min(first + block, n_pat), expected)
        m_w = m_all * sizes[:, None, None]
        if expected:  # C_k = M_k: T = sum n_k m_k m_k' is symmetric: the upper triangle of 2T by syrk (half the flops)
            root = m_all[:, rows, cols] * np.sqrt(sizes)[:, None]
            t = blas.dsyrk(2.0, root, beta=1.0, c=t, trans=1, lower=0, overwrite_c=1)
        else:
            t += m_w[:, rows, cols].T @ c_all[:, rows, cols]
            # Y[i, a, b] = sum_k n_k M_k[i, a] v_k[b]
            cross += np.einsum("kia,kb->iab", m_w, v_all)
        h_mu += m_w.sum(axis=0)
    del m_all, c_all, m_w
    # T_(xy),(uv) + T_(uv),(xy): the four terms are two of these
    t += t.T
    if expected:  # the upper triangle of 2T (zeros below) plus its transpose: 2T, the diagonal twice over
        t.flat[::nc + 1] *= 0.5
        t = t.T  # syrk's Fortran order: the transpose (C order) is the same symmetric matrix
    out = np.empty((p + nc, p + nc))
    _assemble_covariance_block(t, p, out[p:, p:])
    del t
    out[:p, :p] = 0.5 * (h_mu + h_mu.T)
    out[:p, p:] = s[None, :] * (cross[:, rows, cols] + cross[:, cols, rows])
    out[p:, :p] = out[:p, p:].T
    if x:
        keep = not_fixed_x(p, x)
        out[~keep, :] = 0.0
        out[:, ~keep] = 0.0
    return out


def _assemble_covariance_block(t: np.ndarray, p: int, out: np.ndarray) -> None:
    r"""``out`` (:math:`p^* \times p^*`, the covariances' block) :math:`=\tfrac12s_{ab}s_{cd}(T_{bc,ad} + T_{bd,ac})`
    from the symmetric ``t`` (:math:`T + T^\top` over the lower-triangle cells of :func:`_information`).
    One slab per b: the rows :math:`T_{bc,\cdot}` (contiguous), their columns :math:`(a, d)`
    for every :math:`a \ge b` (a p x (p - b) x p array, :math:`F_{c,a,d} = T_{bc,ad}`), then
    :math:`F_{c,a,d} + F_{d,a,c}` read at the cells :math:`c \ge d` into the rows (a, b):
    each element read from a small slab, not gathered from the whole :math:`p^{*2}` array.
    Symmetric in (ab), (cd) bit for bit (``t`` is, and the sum's terms are in the same order)."""
    rows, cols, s = moment_cells(p)
    nc = len(rows)
    position = np.zeros((p, p), dtype=np.intp)
    position[rows, cols] = np.arange(nc)
    position[cols, rows] = np.arange(nc)
    tril_flat = rows * p + cols
    half_s = 0.5 * s
    for b in range(p):
        slab = t[position[b]][:, position[b:]]  # (c, a, d): T_(bc),(ad), a >= b
        z = slab.transpose(1, 0, 2) + slab.transpose(1, 2, 0)  # (a, c, d): T_(bc),(ad) + T_(bd),(ac)
        target = position[b:, b]  # the rows (a, b), a >= b
        out[target] = (half_s[target, None] * s[None, :]) * z.reshape(p - b, p * p)[:, tril_flat]


def missing_expected(patterns, sigma: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """The expected information of the saturated model under missing data at ``sigma`` (summed
    over cases; see the module docstring). ``patterns``: a :class:`analysis.sem.fiml.Patterns`."""
    return _information(patterns, sigma, np.zeros(len(sigma)), list(x), expected=True)


def missing_observed(patterns, sigma: np.ndarray, mu: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """The observed information (Hessian of :math:`-\\log L`, summed over cases) of the saturated
    model under missing data at ``sigma``, ``mu`` (module docstring)."""
    return _information(patterns, sigma, mu, list(x), expected=False)


def missing_scores(patterns, sigma: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """The casewise scores :math:`g_i` of the saturated log-likelihood under missing data at
    ``sigma``, ``mu`` (module docstring): n x (p + p(p+1)/2), the means then the covariances,
    cases in pattern order; 0 for a moment a case does not observe.
    lavaan: ``lav_mvnorm_missing_scores_mu_vech_sigma``."""
    p = len(sigma)
    rows, cols, s = moment_cells(p)
    out = np.empty((sum(len(y) for y in patterns.rows), p + len(rows)))
    step = max(1, int(2e6 // len(rows)))  # rows at a time: no temporary as large as the result
    start = 0
    for o, y in zip(patterns.observed, patterns.rows):
        inv = np.linalg.inv(sigma[np.ix_(o, o)])
        m = np.zeros((p, p))
        m[np.ix_(o, o)] = inv
        m_cells = m[rows, cols]
        for first in range(0, len(y), step):
            yy = y[first:first + step]
            a = np.zeros((len(yy), p))
            a[:, o] = (yy - mu[o]) @ inv
            block = out[start:start + len(yy)]
            block[:, :p] = a
            cov = block[:, p:]
            np.multiply(a[:, rows], a[:, cols], out=cov)
            cov -= m_cells
            cov *= s
            start += len(yy)
    return out


def missing_first_order(patterns, sigma: np.ndarray, mu: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """:math:`\\sum_i g_ig_i^\\top`, the casewise scores of the saturated log-likelihood under
    missing data at ``sigma``, ``mu`` (:func:`missing_scores`)."""
    p = len(sigma)
    scores = missing_scores(patterns, sigma, mu)
    out = scores.T @ scores
    if x:
        keep = not_fixed_x(p, list(x))
        out[~keep, :] = 0.0
        out[:, ~keep] = 0.0
    return out
