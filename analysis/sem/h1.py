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

__all__ = ["jacobian", "missing_expected", "missing_first_order", "missing_observed", "moment_cells",
           "not_fixed_x"]


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


def _pattern_parts(observed, rows, sigma, mu, expected: bool):
    """Per pattern ``(n_k, M_k, C_k, v_k)``, all p-dimensional (zero outside the observed ones)."""
    p = len(sigma)
    for o, y in zip(observed, rows):
        m = np.zeros((p, p))
        inv = np.linalg.inv(sigma[np.ix_(o, o)])
        m[np.ix_(o, o)] = inv
        if expected:
            yield len(y), m, m, np.zeros(p)
            continue
        r = y - mu[o]
        w = r.T @ r / len(y)
        c = np.zeros((p, p))
        c[np.ix_(o, o)] = 2 * inv @ w @ inv - inv
        v = np.zeros(p)
        v[o] = inv @ r.mean(axis=0)
        yield len(y), m, c, v


def _information(patterns, sigma, mu, x, expected: bool) -> np.ndarray:
    p = len(sigma)
    rows, cols, s = moment_cells(p)
    nc = len(rows)
    parts = list(_pattern_parts(patterns.observed, patterns.rows, sigma, mu, expected))
    nk = np.array([q[0] for q in parts], dtype=float)
    m_all = np.stack([q[1] for q in parts]).reshape(len(parts), p * p)
    c_all = np.stack([q[2] for q in parts]).reshape(len(parts), p * p)
    v_all = np.stack([q[3] for q in parts])
    out = np.zeros((p + nc, p + nc))
    mw = nk[:, None] * m_all
    out[:p, :p] = mw.sum(axis=0).reshape(p, p)
    if not expected:  # Y[i, a, b] = sum_k n_k M_k[i, a] v_k[b]
        y = (mw.T @ v_all).reshape(p, p, p)
        out[:p, p:] = s[None, :] * (y[:, rows, cols] + y[:, cols, rows])
    # X[(i, j), (k, l)] = sum_k n_k M_k[i, j] C_k[k, l]: one product over the patterns, then read
    # M_bc C_ad + M_ad C_bc + M_bd C_ac + M_ac C_bd for every pair of cells (a, b), (c, d)
    big = mw.T @ c_all
    ix = rows.astype(np.int32)
    jx = cols.astype(np.int32)
    bc = jx[:, None] * p + ix[None, :]
    ad = ix[:, None] * p + jx[None, :]
    term = big[bc, ad]
    term += big[ad, bc]
    del bc, ad
    bd = jx[:, None] * p + jx[None, :]
    ac = ix[:, None] * p + ix[None, :]
    term += big[bd, ac]
    term += big[ac, bd]
    del big, bd, ac
    out[p:, p:] = 0.5 * np.outer(s, s) * term
    out[p:, :p] = out[:p, p:].T
    out = 0.5 * (out + out.T)
    if x:
        keep = not_fixed_x(p, x)
        out[~keep, :] = 0.0
        out[:, ~keep] = 0.0
    return out


def missing_expected(patterns, sigma: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """The expected information of the saturated model under missing data at ``sigma`` (summed
    over cases; see the module docstring). ``patterns``: a :class:`analysis.sem.fiml.Patterns`."""
    return _information(patterns, sigma, np.zeros(len(sigma)), list(x), expected=True)


def missing_observed(patterns, sigma: np.ndarray, mu: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """The observed information (Hessian of :math:`-\\log L`, summed over cases) of the saturated
    model under missing data at ``sigma``, ``mu`` (module docstring)."""
    return _information(patterns, sigma, mu, list(x), expected=False)


def missing_first_order(patterns, sigma: np.ndarray, mu: np.ndarray, x: list[int] = ()) -> np.ndarray:
    """:math:`\\sum_i g_ig_i^\\top`, the casewise scores of the saturated log-likelihood under
    missing data at ``sigma``, ``mu`` (module docstring)."""
    p = len(sigma)
    rows, cols, s = moment_cells(p)
    blocks = []
    for o, y in zip(patterns.observed, patterns.rows):
        inv = np.linalg.inv(sigma[np.ix_(o, o)])
        m = np.zeros((p, p))
        m[np.ix_(o, o)] = inv
        a = np.zeros((len(y), p))
        a[:, o] = (y - mu[o]) @ inv
        g_cov = a[:, rows] * a[:, cols] - m[rows, cols][None, :]
        blocks.append(np.hstack([a, s[None, :] * g_cov]))
    scores = np.vstack(blocks)
    out = scores.T @ scores
    if x:
        keep = not_fixed_x(p, list(x))
        out[~keep, :] = 0.0
        out[:, ~keep] = 0.0
    return out
