"""The batched FIML likelihood (:func:`analysis.sem.fiml.fiml_nll`), its chain rule
(:func:`analysis.sem.fiml.parameter_gradient`) and the bootstrap's reweighted draws against
plain per-pattern and per-row computations written out here.

The reference is the textbook form (Arbuckle, 1996): per pattern the inverse of the observed
block of Sigma, :math:`-\\log L = \\sum_k\\tfrac{n_k}2[p_k\\log 2\\pi + \\log|\\Sigma_{oo}| +
\\operatorname{tr}(\\Sigma_{oo}^{-1}W_k)]`, the gradient in Sigma
:math:`\\sum_k\\tfrac{n_k}{2}(M_k - M_kW_kM_k)` and in mu :math:`-\\sum_kn_kM_kd_k`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis.bootstrap import Resampler, bfgs, bootstrap_sem
from analysis.sem.api import fit_model
from analysis.sem.constraints import merge_simple_equalities
from analysis.patterns import pattern_layout
from analysis.sem.fiml import FIMLEstimator, fiml_data, fiml_nll, free_rows, parameter_gradient, pattern_moments
from analysis.sem.model import build_model, normalise_partable
from analysis.sem.partable import lavaanify

REF = Path(__file__).parent / "reference"
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"


def loop_nll(pt, sigma: np.ndarray, mu: np.ndarray, weights=None):
    """-log L, its gradient in Sigma and in mu, pattern by pattern, row weights ``weights`` (one
    array per pattern, default 1)."""
    p = len(mu)
    value, g_sigma, g_mu = 0.0, np.zeros((p, p)), np.zeros(p)
    for k, (o, y) in enumerate(zip(pt.observed, pt.rows)):
        w = np.ones(len(y)) if weights is None else weights[k]
        nk = w.sum()
        if nk == 0:
            continue
        inv = np.linalg.inv(sigma[np.ix_(o, o)])
        r = y - mu[o]
        wk = (r * w[:, None]).T @ r / nk
        value += nk / 2 * (len(o) * np.log(2 * np.pi) + np.linalg.slogdet(sigma[np.ix_(o, o)])[1]
                           + np.sum(inv * wk))
        g_sigma[np.ix_(o, o)] += nk / 2 * (inv - inv @ wk @ inv)
        g_mu[o] -= inv @ (w @ r)
    return value, g_sigma, g_mu


def small_data(seed: int = 3, n: int = 240, p: int = 6) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Normal data with rows missing 0, 1, 2 and 3 of 6 variables (several patterns of each),
    and a positive-definite Sigma and a mu away from the sample moments."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((p, p))
    sigma = a @ a.T / p + np.eye(p)
    y = rng.multivariate_normal(np.arange(p, dtype=float), sigma, size=n)
    for i in range(n):
        k = i % 4  # 0..3 missing
        if k:
            y[i, rng.choice(p, size=k, replace=False)] = np.nan
    data = pd.DataFrame(y, columns=[f"y{j + 1}" for j in range(p)])
    b = rng.standard_normal((p, p))
    return data, b @ b.T / p + 0.5 * np.eye(p), rng.standard_normal(p)


def patterns_of(data: pd.DataFrame, syntax: str):
    model = build_model(merge_simple_equalities(normalise_partable(lavaanify(syntax, list(data.columns),
                                                                              missing="fiml"))))
    stats, patterns, _, _ = fiml_data(model, data)
    return model.with_sample(stats), stats, patterns


ONE_FACTOR = "f =~ y1 + y2 + y3 + y4 + y5 + y6\n"


def test_batched_likelihood_equals_the_pattern_loop():
    """Patterns missing 1, 2 and 3 of 6 variables: value, gradient in Sigma and in mu to 1e-10."""
    data, sigma, mu = small_data()
    _, _, (pt,) = patterns_of(data, ONE_FACTOR)
    assert {len(m) for m in pt.missing} == {0, 1, 2, 3}
    value, g_sigma, g_mu = fiml_nll(pattern_moments(pt.layout), sigma, mu, gradient=True)
    ref_value, ref_sigma, ref_mu = loop_nll(pt, sigma, mu)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert np.abs(g_sigma - ref_sigma).max() < 1e-10 * np.abs(ref_sigma).max()
    assert np.abs(g_mu - ref_mu).max() < 1e-10 * np.abs(ref_mu).max()
    assert fiml_nll(pattern_moments(pt.layout), sigma, mu)[0] == pytest.approx(ref_value, rel=1e-12)


def test_reweighted_moments_equal_the_replicated_rows():
    """Row weights (a bootstrap draw's resample counts, zeros included) give the likelihood of
    the data with each row repeated that many times."""
    data, sigma, mu = small_data(seed=8)
    _, _, (pt,) = patterns_of(data, ONE_FACTOR)
    rng = np.random.default_rng(4)
    counts = np.bincount(rng.integers(0, pt.n, pt.n), minlength=pt.n)
    assert (counts == 0).any() and (counts > 1).any()
    value, g_sigma, g_mu = fiml_nll(pattern_moments(pt.layout, counts), sigma, mu, gradient=True)
    start = np.cumsum([0] + [len(r) for r in pt.rows])
    per_pattern = [counts[start[k]:start[k + 1]].astype(float) for k in range(len(pt.rows))]
    ref_value, ref_sigma, ref_mu = loop_nll(pt, sigma, mu, per_pattern)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert np.abs(g_sigma - ref_sigma).max() < 1e-10 * np.abs(ref_sigma).max()
    assert np.abs(g_mu - ref_mu).max() < 1e-10 * np.abs(ref_mu).max()


def test_not_positive_definite_is_inadmissible():
    data, sigma, mu = small_data()
    _, _, (pt,) = patterns_of(data, ONE_FACTOR)
    bad = sigma.copy()
    bad[0, 1] = bad[1, 0] = 10 * np.sqrt(bad[0, 0] * bad[1, 1])
    assert fiml_nll(pattern_moments(pt.layout), bad, mu, gradient=True) == (np.inf, None, None)


SEM = ("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
       "textual ~ visual\nspeed ~ textual + visual\nx1 ~~ x4\nvisual ~ 1\n")


def test_parameter_gradient_equals_the_jacobian_chain_rule():
    """Loadings, regressions, (co)variances of latents and residuals, intercepts and a latent
    mean: the matrix-form chain rule equals the sum over the Jacobian of Sigma and mu
    (:meth:`analysis.sem.model.Model.derivatives`), at a point away from any optimum."""
    data = pd.read_csv(REF / "hs_missing.csv")
    model, _, _ = patterns_of(data, SEM)
    x = 0.3 + 0.1 * np.sin(np.arange(model.nfree))
    rng = np.random.default_rng(2)
    g = rng.standard_normal((9, 9))
    g_sigma, g_mu = g + g.T, rng.standard_normal(9)
    (state,), (blk,) = model.state(x), model.blocks
    f = model.free[blk.rows]
    pos = np.flatnonzero(f > 0)
    kinds = set(blk.matrix[pos])
    assert {"lambda", "beta", "psi", "theta", "nu", "alpha"} <= kinds
    ours = parameter_gradient(state, free_rows(blk.matrix[pos], blk.row[pos], blk.col[pos]), g_sigma, g_mu)
    (index, ds, dm), = model.derivatives(x)
    ref = np.einsum("ij,kij->k", g_sigma, ds) + dm @ g_mu
    assert np.abs(ours - ref).max() < 1e-12 * np.abs(ref).max()


def test_estimator_gradient_equals_numerical_differentiation():
    """The FIML discrepancy's analytic gradient in the free parameters (batched likelihood and
    matrix chain rule) against central differences, two groups' worth of patterns in one."""
    data = pd.read_csv(REF / "hs_missing.csv")
    model, stats, patterns = patterns_of(data, SEM.replace("visual ~ 1\n", ""))
    est = FIMLEstimator(model, stats, patterns)
    x = fit_model(SEM.replace("visual ~ 1\n", ""), data, missing="fiml").x + 0.02
    grad = est.gradient(x)
    h = 1e-6
    num = np.array([(est.objective(x + h * e) - est.objective(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    assert np.abs(grad - num).max() < 1e-7 * np.abs(num).max()


# --------------------------------------------------------------------------- the bootstrap


def test_bfgs_matches_scipy_on_a_smooth_problem():
    """The bootstrap's BFGS (O(q^2) update, Armijo steps) reaches scipy's minimum of the
    Rosenbrock function from the identity and from a good inverse Hessian."""
    x0 = np.array([-1.2, 1.0, -0.5, 0.8])
    ref = optimize.minimize(optimize.rosen, x0, jac=optimize.rosen_der, method="BFGS", options={"gtol": 1e-9})
    x, ok, it = bfgs(lambda z: (optimize.rosen(z), optimize.rosen_der(z)), x0, None, 1e-9)
    assert ok and np.abs(x - ref.x).max() < 1e-8 and np.abs(x - 1).max() < 1e-8
    h = np.linalg.inv(optimize.rosen_hess(np.ones(4)))
    x, ok, it2 = bfgs(lambda z: (optimize.rosen(z), optimize.rosen_der(z)), np.full(4, 0.9), h, 1e-9)
    assert ok and np.abs(x - 1).max() < 1e-8 and it2 < it


def test_reweighted_draw_equals_the_refit_of_its_rows():
    """A bootstrap draw refits the full sample's patterns with the resample counts as weights;
    the refit of the same rows as a new data set (patterns found anew) gives the same estimates."""
    data = pd.read_csv(REF / "hs_missing.csv")
    fit = fit_model(HS, data, missing="fiml")
    r = Resampler(fit, data, missing="fiml")
    for seed in np.random.SeedSequence(7).spawn(3):
        rng = np.random.default_rng(seed)
        rows = [rng.integers(0, len(v), len(v)) for v in r.values]
        weighted, ok, _ = r.refit([v[i] for v, i in zip(r.values, rows)], rows)
        plain, ok2, _ = r.refit([v[i] for v, i in zip(r.values, rows)])
        assert ok and ok2
        assert np.abs(weighted - plain).max() < 1e-9
        assert np.abs(weighted - fit.x).max() > 1e-3  # a draw moves


def test_fiml_bootstrap_with_fixed_x_covariates_matches_a_direct_fit():
    """A draw of a model with fixed.x covariates (their moments refitted per draw from the
    resampled rows, as lavaan) equals the engine's own FIML fit of the resampled data."""
    data = pd.read_csv(REF / "hs_missing.csv")
    model = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nvisual ~ x7 + x8\ntextual ~ x9\n"
    data = data.dropna(subset=["x7", "x8", "x9"]).reset_index(drop=True)
    fit = fit_model(model, data, missing="fiml")
    boot = bootstrap_sem(data, fit, draws=2, seed=11, jobs=1, missing="fiml")
    rng = np.random.default_rng(np.random.SeedSequence(11).spawn(2)[1])
    rows = rng.integers(0, len(data), len(data))
    direct = fit_model(model, data.iloc[rows].reset_index(drop=True), missing="fiml")
    assert np.abs(boot.draws.iloc[1].to_numpy()[:len(direct.x)] - direct.x).max() < 1e-5


def test_a_draws_fixed_x_values_are_with_samples():
    """The draw's shortcut for the covariates' fixed moments fills the rows
    :meth:`~analysis.sem.model.Model.with_sample` fills, with the same values."""
    from analysis.bootstrap import _fixed_x_cells, _with_fixed_x
    from analysis.sem.model import SampleStats
    data = pd.read_csv(REF / "hs_missing.csv").dropna(subset=["x7", "x8", "x9"])
    fit = fit_model("visual =~ x1 + x2 + x3\nvisual ~ x7 + x8\nx1 ~ x9\n", data, missing="fiml")
    rng = np.random.default_rng(0)
    stats = [SampleStats(label=st.label, ov=st.ov, n=st.n, cov=st.cov + np.diag(rng.random(len(st.ov))),
                         mean=st.mean + rng.random(len(st.ov))) for st in fit.stats]
    ours = _with_fixed_x(fit.model, _fixed_x_cells(fit.model), stats)
    ref = fit.model.with_sample(stats)
    assert np.array_equal(np.isnan(ours.values), np.isnan(ref.values))
    assert np.nanmax(np.abs(ours.values - ref.values)) == 0
    assert np.nanmax(np.abs(ours.values - fit.model.values)) > 0


def test_a_reweighted_estimator_refuses_row_level_computations():
    """With row weights only the discrepancy and its gradient are defined (they use the weighted
    moments); the information matrices, casewise scores and fit measures read unweighted rows."""
    data = pd.read_csv(REF / "hs_missing.csv")
    model, stats, (pt,) = patterns_of(data, HS)
    est = FIMLEstimator(model, stats, [pt], row_weights=[np.full(pt.n, 2.0)])
    plain = FIMLEstimator(model, stats, [pt])
    x = fit_model(HS, data, missing="fiml").x
    assert est.ntotal == 2 * plain.ntotal
    assert np.abs(est.gradient(x) - plain.gradient(x)).max() < 1e-12  # doubling every row: same F' (per case)
    for call in (lambda: est.observed_information(x), lambda: est.expected_information(x),
                 lambda: est.casewise_scores(x), lambda: est.robust_statistics(x, 24, 36)):
        with pytest.raises(ValueError, match="row weights"):
            call()


def test_merged_batches_equal_the_unmerged(monkeypatch):
    """The likelihood and gradients with every batch its own stacked operation (budget 0) and with
    the batches merged into one padded one (budget unbounded) agree to rounding."""
    from analysis import patterns

    data, sigma, mu = small_data(seed=11)
    _, _, (pt,) = patterns_of(data, ONE_FACTOR)
    out = []
    for budget in (0, 10 ** 9):
        monkeypatch.setattr(patterns.merge_batches, "__defaults__", (budget,))
        mom = pattern_moments(pt.layout)
        out.append((len(mom.batches), fiml_nll(mom, sigma, mu, gradient=True)))
    (n0, (v0, gs0, gm0)), (n1, (v1, gs1, gm1)) = out
    assert n0 == 3 and n1 == 1
    assert v1 == pytest.approx(v0, rel=1e-13)
    assert np.abs(gs1 - gs0).max() < 1e-12 * np.abs(gs0).max()
    assert np.abs(gm1 - gm0).max() < 1e-12 * np.abs(gm0).max()
