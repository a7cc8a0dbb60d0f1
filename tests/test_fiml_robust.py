"""MLR with FIML against lavaan 0.6-14 (tests/reference/fiml_robust.R), and the analytic FIML
information against numerical differentiation."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.sem.single import (_Model, _casewise_scores, _fiml_hessian, _saturated_hessian, fit_sem, parameter_table)

REF = Path(__file__).parent / "reference"
ROBUST = ("cfi.robust", "tli.robust", "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust")
SCALED = ("chisq.scaled", "chisq.scaling.factor", "baseline.chisq.scaled", "baseline.chisq.scaling.factor",
          "cfi.scaled", "tli.scaled", "rmsea.scaled")


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "fiml_robust.json").read_text())


def data_for(case: str) -> pd.DataFrame:
    return pd.read_csv(REF / ("sim40_missing.csv" if case.startswith("sim40") else "hs_missing.csv"))


@pytest.fixture(scope="module")
def fits(lavaan):
    """Our MLR + FIML fit of each reference model (the tight and default references share it);
    sim40 has 40 observed variables, 860 saturated-model parameters (the former limit was 500)."""
    out = {}
    for case in ("hs3", "hs_sem", "sim40"):
        out[case] = fit_sem(data_for(case), lavaan[case]["model"], missing="fiml", estimator="MLR")
    return out


def close(ours, ref, rel, abs_=1e-10):
    return ours == pytest.approx(ref, rel=rel, abs=abs_)


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_and_scaled_indices_match_lavaan_with_exact_em(fits, lavaan, case):
    """Against lavaan with its EM run to 1e-12 (``em.h1.tol``): every scaled and robust index.
    Largest relative differences seen: robust indices 5e-8 (hs3), 7e-8 (hs_sem), 2.1e-7 (sim40);
    scaled test 2.7e-7 (lavaan's estimates are converged to about 1e-6)."""
    ref, fit = lavaan[case + "_tight"], fits[case].fit
    assert ref["converged"]
    for name in SCALED + ROBUST + ("chisq", "cfi", "tli", "rmsea"):
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=2e-6), name
    assert fit["df_scaled"] == ref["fit"]["df.scaled"]


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_indices_match_lavaan_defaults(fits, lavaan, case):
    """Against lavaan's defaults, whose EM stops at a change of 1e-5: the robust indices depend on
    the EM moments to first order (T3 = N F(model; EM moments)), so they agree to 1e-4 relative
    (3.1e-5 seen); the scaled test and the other measures, which do not, to 2e-6 (3.6e-7 seen)."""
    ref, fit = lavaan[case], fits[case].fit
    for name in ROBUST:
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=1e-4), name
    for name in SCALED + ("chisq", "df", "cfi", "tli", "rmsea", "logl", "unrestricted.logl", "ntotal"):
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=2e-6), name
    assert not any("not computed" in w for w in fits[case].warnings)


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_standard_errors_match_lavaan(fits, lavaan, case):
    """Sandwich SEs with the analytic observed information: 1.1e-6 seen, as the estimates
    (lavaan's optimiser tolerance)."""
    pe = pd.DataFrame(lavaan[case]["pe"])
    m = pe.merge(fits[case].parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["est_r"] - m["est"]).max() < 1e-5
    assert np.abs(m["se_r"] - m["se"]).max() < 5e-6


def test_mlr_with_fiml_refuses_models_beyond_the_limit():
    """101 observed variables: 5252 saturated-model parameters, above MLR_FIML_MAX_H1 = 5200."""
    names = [f"v{k}" for k in range(101)]
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 101)), columns=names)
    model = "\n".join(f"F{f} =~ " + " + ".join(names[f * 10:(f + 1) * 10 + (f == 9)]) for f in range(10))
    with pytest.raises(ValueError, match="MLR with FIML is available for up to 5200 saturated-model parameters"):
        fit_sem(data, model, missing="fiml", estimator="MLR")


def test_ml_fiml_observed_information_matches_lavaan(lavaan):
    """ML with FIML on a model with regressions, an equality label and a residual covariance:
    SEs from the analytic Hessian, 4.4e-7 seen (lavaan: information "observed", by its Hessian)."""
    ref = lavaan["hs_sem_ml"]
    assert ref["information"][0] == "observed" and ref["observed_information"][0] == "hessian"
    fit = fit_sem(data_for("hs"), ref["model"], missing="fiml")
    pe = pd.DataFrame(ref["pe"])
    m = pe.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["se_r"] - m["se"]).max() < 5e-6
    assert fit.fit["chisq"] == pytest.approx(ref["fit"]["chisq"], rel=1e-6)


def test_just_identified_model_gives_none_where_lavaan_gives_na(lavaan):
    """df = 0: lavaan reports no scaling factor, no scaled p-value and no scaled RMSEA (NA),
    scaled and robust CFI/TLI 1 (the robust CFI 1 - 2e-11), robust RMSEA and its interval 0."""
    ref = lavaan["just_identified"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = fit_sem(data_for("hs"), ref["model"], missing="fiml", estimator="MLR")
    assert not record, [str(w.message) for w in record]  # df = 0 is no error: nothing to warn about
    f = fit.fit
    for name, value in ref["fit"].items():
        key = name.replace(".", "_")
        if name in ("chisq.scaling.factor", "rmsea.scaled", "pvalue.scaled"):
            assert value is None and f[key] is None, name
        elif name in SCALED + ROBUST or name in ("df.scaled",):
            assert close(f[key], value, rel=1e-6, abs_=1e-9), name
    assert any("just identified" in w and "lavaan reports NA as well" in w for w in fit.warnings)


# --------------------------------------------------------------------------- the analytic information


def _groups(values: np.ndarray):
    observed = ~np.isnan(values)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    out = []
    for k, pattern in enumerate(patterns):
        rows = values[inverse.ravel() == k][:, pattern]
        dev = rows - rows.mean(axis=0)
        out.append((np.flatnonzero(pattern), len(rows), rows.mean(axis=0), dev.T @ dev / len(rows)))
    return out


def _gradient(mdl: _Model, groups, z: np.ndarray) -> np.ndarray:
    """The gradient of -log L under FIML from the dense derivatives of Sigma (independent of the
    factored form the analytic Hessian uses)."""
    q = mdl.pt.n_free
    theta, nu = z[:q], z[q:]
    sig = mdl.sigma(theta)[0]
    g_sigma, g_nu = np.zeros_like(sig), np.zeros(len(nu))
    for o, nk, mean, cov in groups:
        inv = np.linalg.inv(sig[np.ix_(o, o)])
        d = mean - nu[o]
        g_sigma[np.ix_(o, o)] += nk / 2 * (inv - inv @ (cov + np.outer(d, d)) @ inv)
        g_nu[o] -= nk * inv @ d
    return np.concatenate([np.einsum("ij,aij->a", g_sigma, mdl.derivatives(theta)), g_nu])


def _five_point(func, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    cols = []
    for k in range(len(x)):
        e = np.zeros(len(x))
        e[k] = h
        cols.append((func(x - 2 * e) - 8 * func(x - e) + 8 * func(x + e) - func(x + 2 * e)) / (12 * h))
    jac = np.column_stack(cols)
    return (jac + jac.T) / 2


HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
SHAPES = {
    "cfa": HS,
    "fixed_variances": "visual =~ NA*x1 + x2 + x3\ntextual =~ NA*x4 + x5 + x6\nspeed =~ NA*x7 + x8 + x9\n"
                       "visual ~~ 1*visual\ntextual ~~ 1*textual\nspeed ~~ 1*speed\n",
    "regressions_labels_residual_covariance": HS + "textual ~ b*visual\nspeed ~ b*visual + textual\nx2 ~~ x3\n"
                                                   "x7 ~~ x9\n",
    "second_order": HS + "g =~ visual + textual + speed\n",
    "equal_loadings": "visual =~ x1 + a*x2 + a*x3\ntextual =~ x4 + t*x5 + t*x6\nspeed =~ x7 + x8 + x9\n",
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_analytic_hessian_equals_numerical_differentiation(shape):
    """At the FIML estimates and at a point away from them (where the second derivatives of
    Sigma count): agreement to 1e-7 of the largest element (numerical noise)."""
    data = pd.read_csv(REF / "hs_missing.csv")
    pt = parameter_table(SHAPES[shape], list(data.columns))
    x = data[list(pt.observed)]
    values = x[x.notna().any(axis=1)].to_numpy(dtype=float)
    groups = _groups(values)
    mdl = _Model(pt)
    fit = fit_sem(data, SHAPES[shape], missing="fiml")
    nu = fit.parameters[fit.parameters["op"] == "~1"].set_index("lhs").loc[list(pt.observed), "est"].to_numpy()
    z = np.concatenate([fit.theta, nu])
    shifted = z + 0.05 * np.random.default_rng(1).standard_normal(len(z))
    for point in (z, shifted):
        q = pt.n_free
        ours = _fiml_hessian(mdl, point[:q], point[q:], groups)
        numerical = _five_point(lambda v: _gradient(mdl, groups, v), point)
        assert np.abs(ours - numerical).max() < 1e-7 * np.abs(numerical).max()


def test_saturated_information_equals_numerical_differentiation():
    """The closed-form Hessian of the saturated model under FIML against differences of the
    summed casewise scores, at the EM moments and away from them."""
    data = pd.read_csv(REF / "hs_missing.csv")[[f"x{k}" for k in range(1, 10)]]
    values = data[data.notna().any(axis=1)].to_numpy(dtype=float)
    groups = _groups(values)
    p = values.shape[1]
    rows, cols = np.tril_indices(p)
    sig = np.cov(data.dropna().to_numpy(), rowvar=False) + 0.1 * np.eye(p)
    mu = np.nanmean(values, axis=0) + 0.1

    def total_score(w):
        s = np.zeros((p, p))
        s[rows, cols] = s[cols, rows] = w[:len(rows)]
        return _casewise_scores(values, s, w[len(rows):]).sum(axis=0)

    point = np.concatenate([sig[rows, cols], mu])
    numerical = _five_point(total_score, point, h=1e-4)
    ours = _saturated_hessian(groups, sig, mu)
    assert np.abs(ours - numerical).max() < 1e-7 * np.abs(numerical).max()


def test_casewise_scores_sum_to_the_gradient():
    """The saturated scores summed over cases are the gradient of -log L (zero at the EM
    moments); the model scores are the chain rule of the saturated ones."""
    from analysis.missing import em_moments
    data = pd.read_csv(REF / "hs_missing.csv")[[f"x{k}" for k in range(1, 10)]]
    data = data[data.notna().any(axis=1)]
    em = em_moments(data, list(data.columns))
    values = data.to_numpy(dtype=float)
    scores = _casewise_scores(values, em.cov.to_numpy(), em.mean.to_numpy())
    assert np.abs(scores.sum(axis=0)).max() < 1e-6
    p = 9
    rows, cols = np.tril_indices(p)
    units = np.zeros((len(rows), p, p))
    units[np.arange(len(rows)), rows, cols] = 1
    units[np.arange(len(rows)), cols, rows] = 1
    dense = _casewise_scores(values, em.cov.to_numpy(), em.mean.to_numpy(), units)
    assert np.abs(dense - scores).max() < 1e-12
