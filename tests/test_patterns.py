"""analysis.patterns: the pattern layout and the partitioned-inverse quantities of each pattern,
checked against the direct computation (Sigma_oo inverted pattern by pattern)."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.missing import observed_mahalanobis
from analysis.patterns import block_cells, conditional_blocks, conditional_shifts, merge_batches, pattern_layout


def _data(seed=0, n=400, p=7, rate=0.25, empty_rows=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(p, p))
    sigma = a @ a.T + p * np.eye(p)
    mu = rng.normal(size=p)
    x = rng.multivariate_normal(mu, sigma, size=n)
    x[rng.random((n, p)) < rate] = np.nan
    x[:empty_rows] = np.nan
    return x, sigma, mu


def test_layout_groups_rows_by_pattern_in_fiml_order():
    """Complete pattern first, then by number missing, then the np.unique order of the observed
    flags (the order analysis.sem.fiml.Patterns has always had); each batch's rows ascending."""
    x, _, _ = _data(empty_rows=3)
    lay = pattern_layout(x)
    obs = ~np.isnan(x)
    uniq, inverse = np.unique(obs, axis=0, return_inverse=True)
    order = np.argsort(-uniq.sum(axis=1), kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    assert lay.n_patterns == len(uniq)
    np.testing.assert_array_equal(lay.pattern, rank[inverse.ravel()])
    np.testing.assert_array_equal(lay.flags, uniq[order])
    np.testing.assert_array_equal(lay.counts, np.bincount(rank[inverse.ravel()]))
    np.testing.assert_array_equal(lay.complete, np.flatnonzero(obs.all(axis=1)))
    np.testing.assert_array_equal(lay.values, np.where(obs, x, 0.0))
    ks = [b.k for b in lay.batches]
    assert ks == sorted(set((~obs).sum(axis=1)) - {0}) and ks[-1] == x.shape[1]  # rows missing all kept
    for b in lay.batches:
        assert (np.diff(b.rows) > 0).all()
        np.testing.assert_array_equal(lay.pattern[b.rows], b.patterns[b.row_pattern])
        np.testing.assert_array_equal(np.bincount(b.row_pattern, minlength=len(b.patterns)), b.counts)
        for j, m in zip(b.patterns, b.missing):
            np.testing.assert_array_equal(np.flatnonzero(~lay.flags[j]), m)


def test_layout_of_complete_and_empty_data():
    lay = pattern_layout(np.arange(12.0).reshape(4, 3))
    assert lay.n_patterns == 1 and lay.batches == () and (lay.pattern == 0).all()
    lay = pattern_layout(np.empty((0, 3)))
    assert lay.n_patterns == 0 and lay.batches == () and len(lay.complete) == 0


@pytest.mark.parametrize("max_elements", [2 ** 22, 1, 50])
def test_partitioned_inverse_equals_the_direct_inverse(max_elements):
    """Per row: P_mm^-1 = Sigma_mm.o, -zeta = Sigma_mo Sigma_oo^-1 e_o, e'Pe - b'zeta =
    e_o' Sigma_oo^-1 e_o and log|Sigma| + log|P_mm| = log|Sigma_oo|, to 1e-12 relative (chunks of
    one row and of a few rows included)."""
    x, sigma, mu = _data(seed=3)
    lay = pattern_layout(x)
    precision = np.linalg.inv(sigma)
    logdet_sigma = np.linalg.slogdet(sigma)[1]
    checked = set()
    for b in lay.batches:
        inv, logdet = conditional_blocks(precision, b.missing, logdet=True)
        e = (lay.values[b.rows] - mu) * lay.observed[b.rows]
        bb, zeta = conditional_shifts(precision, e, b.missing, inv, b.row_pattern, max_elements=max_elements)
        for t, row in enumerate(b.rows):
            m = b.missing[b.row_pattern[t]]
            o = np.setdiff1d(np.arange(len(mu)), m)
            soo = sigma[np.ix_(o, o)]
            eo = x[row, o] - mu[o]
            cond_cov = sigma[np.ix_(m, m)] - sigma[np.ix_(m, o)] @ np.linalg.solve(soo, sigma[np.ix_(o, m)])
            np.testing.assert_allclose(inv[b.row_pattern[t]], cond_cov, rtol=1e-12, atol=1e-12 * np.abs(cond_cov).max())
            np.testing.assert_allclose(-zeta[t], sigma[np.ix_(m, o)] @ np.linalg.solve(soo, eo), rtol=1e-11, atol=1e-12)
            quad = eo @ np.linalg.solve(soo, eo)
            assert e[t] @ precision @ e[t] - bb[t] @ zeta[t] == pytest.approx(quad, rel=1e-12)
            assert logdet_sigma + logdet[b.row_pattern[t]] == pytest.approx(np.linalg.slogdet(soo)[1], rel=1e-12)
            checked.add(len(m))
    assert checked >= {1, 2, 3}


def test_observed_mahalanobis_rows_in_their_own_order():
    """Rows of many patterns in shuffled order: each row's distance over its own entries
    (R's mahalanobis(x[i, o], mu[o], S[o, o])), NaN and df 0 for a row with no entry."""
    x, sigma, mu = _data(seed=5, empty_rows=2)
    x = x[np.random.default_rng(1).permutation(len(x))]
    d2, df = observed_mahalanobis(x, mu, sigma)
    for i in range(len(x)):
        o = np.flatnonzero(~np.isnan(x[i]))
        assert df[i] == len(o)
        if not len(o):
            assert np.isnan(d2[i])
            continue
        e = x[i, o] - mu[o]
        assert d2[i] == pytest.approx(e @ np.linalg.solve(sigma[np.ix_(o, o)], e), rel=1e-12)


def test_fiml_patterns_of_values_match_the_bootstrap_grouping():
    """analysis.sem.fiml.patterns_of_values: each pattern's rows (in their order in the data) on
    its observed variables; ``order`` lists the rows as the patterns do."""
    from analysis.sem.fiml import patterns_of_values

    x, _, _ = _data(seed=7)
    pt, order = patterns_of_values(x)
    assert pt.n == len(x) and sorted(order) == list(range(len(x)))
    assert [len(m) for m in pt.missing] == sorted(len(m) for m in pt.missing) and len(pt.missing[0]) == 0
    stacked = np.full_like(x, np.nan)
    start = 0
    for o, m, y in zip(pt.observed, pt.missing, pt.rows):
        assert sorted(np.concatenate([o, m])) == list(range(x.shape[1]))
        stacked[start:start + len(y), o] = y
        start += len(y)
    np.testing.assert_array_equal(stacked, x[order])
    assert (np.diff(order[:len(pt.rows[0])]) > 0).all()


def test_block_cells_scatter_each_block_into_its_cells():
    """sum_j E_mj B_j E_mj' by one bincount equals adding each block into its rows and columns."""
    rng = np.random.default_rng(2)
    p = 6
    missing = np.array([[0, 2], [1, 5], [0, 2], [3, 4]])
    blocks = rng.normal(size=(len(missing), 2, 2))
    expected = np.zeros((p, p))
    for m, b in zip(missing, blocks):
        expected[np.ix_(m, m)] += b
    got = np.bincount(block_cells(missing, p), weights=blocks.ravel(), minlength=p * p).reshape(p, p)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_merge_batches_pads_the_small_batches_into_the_next_larger():
    """A batch joins the group of the larger ones while padding its rows to that k adds at most
    the budget's elements, batches of k <= 3 (closed-form inverses) only each other; groups in
    ascending k."""
    ks, rows = [1, 2, 3, 4, 6], [400, 150, 30, 5, 1]
    assert merge_batches(ks, rows, 76, budget=10_000) == [[0], [1], [2], [3, 4]]  # 5 x 2 x 76 = 760
    assert merge_batches(ks, rows, 76, budget=0) == [[0], [1], [2], [3], [4]]
    assert merge_batches(ks, rows, 76, budget=10 ** 9) == [[0, 1, 2], [3, 4]]
    assert merge_batches([4, 5, 7], [50, 20, 1], 76, budget=10_000) == [[0], [1, 2]]  # 50 x 3 x 76 = 11,400
    assert merge_batches([], [], 76) == []


def test_padded_precision_gives_each_pattern_its_own_blocks():
    """Patterns missing 1, 2 and 3 variables padded to k = 3 with unit-precision variables p, p + 1
    (merge_batches' padding): the same log-determinants, inverses and shifts as unpadded."""
    x, sigma, mu = _data(seed=5)
    lay = pattern_layout(x)
    p = len(mu)
    precision = np.linalg.inv(sigma)
    padded = np.eye(p + 2)
    padded[:p, :p] = precision
    for b in lay.batches:
        if b.k > 3:
            continue
        m_pad = np.hstack([b.missing, p + np.arange(3 - b.k)[None, :].repeat(len(b.missing), axis=0)])
        e = (lay.values[b.rows] - mu) * lay.observed[b.rows]
        inv, logdet = conditional_blocks(precision, b.missing, logdet=True)
        inv_pad, logdet_pad = conditional_blocks(padded, m_pad, logdet=True)
        bb, zeta = conditional_shifts(precision, e, b.missing, inv, b.row_pattern)
        bb_pad, zeta_pad = conditional_shifts(padded, np.hstack([e, np.zeros((len(e), 2))]), m_pad, inv_pad,
                                              b.row_pattern)
        np.testing.assert_allclose(logdet_pad, logdet, rtol=1e-12)
        np.testing.assert_allclose(inv_pad[:, :b.k, :b.k], inv, rtol=1e-12)
        unit = np.broadcast_to(np.eye(3 - b.k), (len(inv), 3 - b.k, 3 - b.k))
        np.testing.assert_allclose(inv_pad[:, b.k:, b.k:], unit)
        np.testing.assert_allclose(zeta_pad[:, :b.k], zeta, rtol=1e-12, atol=1e-14)
        assert np.all(zeta_pad[:, b.k:] == 0) and np.all(bb_pad[:, b.k:] == 0)
        np.testing.assert_allclose(bb_pad[:, :b.k], bb, rtol=1e-12, atol=1e-14)
