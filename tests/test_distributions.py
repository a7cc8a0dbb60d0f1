"""analysis/distributions.py gives scipy.stats' numbers bit for bit (it replaces scipy.stats in
the stages to save its import, ~0.6 CPU-s a process): every function against its scipy.stats
method on random grids and on the edge cases (0, the support's ends, infinities, NaN, invalid
degrees of freedom, noncentrality 0), as numpy scalars for scalars."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis import distributions as d

RNG = np.random.default_rng(20261202)
EDGE_X = np.array([-np.inf, -5.0, -1.0, -0.0, 0.0, 1e-300, 1e-12, 0.5, 1.0, 3.0, 40.0, 1e4, np.inf, np.nan])
EDGE_Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.025, 0.5, 0.975, 1 - 1e-12, 1.0, 1.1, np.nan])
EDGE_DF = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 7.0, 250.0, 2630.0, np.inf, np.nan])


def same(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours, theirs, equal_nan=True), np.nanmax(np.abs(ours - theirs))
    # the same zeros' signs too
    assert np.array_equal(np.signbit(ours[ours == 0]), np.signbit(theirs[theirs == 0]))


def test_normal():
    x = np.concatenate([EDGE_X, -EDGE_X, RNG.normal(0, 3, 2000)])
    q = np.concatenate([EDGE_Q, RNG.uniform(0, 1, 2000)])
    same(d.norm_cdf(x), stats.norm.cdf(x))
    same(d.norm_sf(x), stats.norm.sf(x))
    same(d.norm_pdf(x), stats.norm.pdf(x))
    same(d.norm_ppf(q), stats.norm.ppf(q))
    for v in (0.3, -2.0, 0.0, np.inf, np.nan):
        same(d.norm_cdf(v), stats.norm.cdf(v))
        same(d.norm_sf(v), stats.norm.sf(v))
        same(d.norm_pdf(v), stats.norm.pdf(v))
    for v in (0.975, 0.5, 0.0, 1.0, np.nan, 2.0):
        same(d.norm_ppf(v), stats.norm.ppf(v))
        assert type(d.norm_ppf(v)) is type(stats.norm.ppf(v))


def test_chi_square():
    x, df = np.meshgrid(np.concatenate([EDGE_X, RNG.uniform(0, 3000, 60)]), np.concatenate([EDGE_DF, RNG.integers(1, 3000, 20)]))
    same(d.chi2_sf(x, df), stats.chi2.sf(x, df))
    same(d.chi2_cdf(x, df), stats.chi2.cdf(x, df))
    q, dq = np.meshgrid(np.concatenate([EDGE_Q, RNG.uniform(0, 1, 30)]), np.concatenate([EDGE_DF, RNG.integers(1, 3000, 10)]))
    same(d.chi2_ppf(q, dq), stats.chi2.ppf(q, dq))
    for args in ((2579.18, 2630), (0.0, 3), (12.5, 0), (3.0, np.nan), (np.inf, 4)):
        same(d.chi2_sf(*args), stats.chi2.sf(*args))
        same(d.chi2_cdf(*args), stats.chi2.cdf(*args))
        assert type(d.chi2_sf(*args)) is type(stats.chi2.sf(*args))
    same(d.chi2_ppf(0.95, 2630), stats.chi2.ppf(0.95, 2630))


def test_noncentral_chi_square():
    n = 3000
    x = np.concatenate([EDGE_X, RNG.uniform(0, 6000, n)])
    df = np.concatenate([np.resize(EDGE_DF, len(EDGE_X)), RNG.integers(1, 3000, n).astype(float)])
    nc = np.concatenate([np.resize([0.0, -1.0, 1e-12, 5.0, 500.0, np.nan, np.inf], len(EDGE_X)), RNG.uniform(0, 3000, n)])
    nc[len(EDGE_X):len(EDGE_X) + 200] = 0.0  # the central branch among ordinary values
    with np.errstate(all="ignore"):
        same(d.ncx2_cdf(x, df, nc), stats.ncx2.cdf(x, df, nc))
        same(d.ncx2_sf(x, df, nc), stats.ncx2.sf(x, df, nc))
    # the RMSEA's calls: a statistic, its df and a noncentrality from N df eps^2
    for args in ((2579.18, 2630, 1097 * 2630 * 0.05 ** 2), (2579.18, 2630, 1e-12), (2579.18, 2630, 0.0),
                 (12.0, 5, 3000.0)):
        same(d.ncx2_cdf(*args), stats.ncx2.cdf(*args))
        same(d.ncx2_sf(*args), stats.ncx2.sf(*args))


def test_overflow_is_raised_as_scipy_raises_it():
    """fit.rmsea_pvalue catches scipy's OverflowError of the upper tail at a statistic near 0
    with a large noncentrality: the replacement must raise where scipy does, and only there."""
    args = (1e-8, 2.0, 5e4)
    try:
        want = stats.ncx2.sf(*args)
    except OverflowError:
        with pytest.raises(OverflowError):
            d.ncx2_sf(*args)
    else:
        same(d.ncx2_sf(*args), want)


def test_binomial_upper_tail():
    """content.py's P(X >= c) = binom.sf(c - 1, n, p), on every whole and fractional k around the
    support, invalid n and p included."""
    k, n = np.meshgrid(np.concatenate([np.arange(-2, 40), [-np.inf, np.inf, np.nan, 2.5, 11.9999]]),
                       [0.0, 1.0, 5.0, 12.0, 30.0, -1.0, 2.5, np.nan])
    for p in (0.0, 0.5, 0.3, 1.0, 1.2, -0.1, np.nan):
        same(d.binom_sf(k, n, p), stats.binom.sf(k, n, p))
    for args in ((9, 12, 0.5), (0, 12, 0.5), (12, 12, 0.5), (-1, 12, 0.5)):
        same(d.binom_sf(*args), stats.binom.sf(*args))
        assert type(d.binom_sf(*args)) is type(stats.binom.sf(*args))


def test_student_t_upper_tail():
    x, df = np.meshgrid(np.concatenate([EDGE_X, -EDGE_X, RNG.normal(0, 4, 60)]), np.concatenate([EDGE_DF, RNG.uniform(0.2, 500, 20)]))
    same(d.t_sf(x, df), stats.t.sf(x, df))
    for args in ((2.1, 30), (-1.5, 4), (0.0, 1), (3.0, np.nan), (np.inf, 4), (1.0, 0)):
        same(d.t_sf(*args), stats.t.sf(*args))
        assert type(d.t_sf(*args)) is type(stats.t.sf(*args))


def test_f_quantile():
    q = np.concatenate([EDGE_Q, RNG.uniform(0, 1, 30)])
    dfs = np.concatenate([EDGE_DF, RNG.integers(1, 3000, 8).astype(float)])
    q3, a3, b3 = np.meshgrid(q, dfs, dfs[::2])
    same(d.f_ppf(q3, a3, b3), stats.f.ppf(q3, a3, b3))
    for args in ((0.975, 1099, 3296), (0.025, 1099, 3296), (0.5, 0, 4), (1.0, 3, 5), (np.nan, 2, 2)):
        same(d.f_ppf(*args), stats.f.ppf(*args))
        assert type(d.f_ppf(*args)) is type(stats.f.ppf(*args))
