"""MLR with FIML in the unified engine (``analysis.sem.api.fit_model(..., estimator="MLR",
missing="fiml")``) against lavaan 0.6-14 (tests/reference/fiml_robust.R), and the analytic FIML
information against numerical differentiation.

The single-group references (hs3, hs_sem, sim40 with 40 items, a just-identified model) check the
scaled and robust measures named below; the ``engine`` references (two groups with and without
equal loadings, a MIMIC SEM with fixed.x covariates, hs_sem) every measure lavaan's
``fitMeasures`` reports, and estimates, SEs, std.lv and std.all. Each reference twice: with
lavaan's defaults (its EM for the saturated moments stops at a change of 1e-5) and with
``em.h1.tol = 1e-12`` ("_tight"); the measures built on the EM moments (the chi-square and the
scaled test, the FIML-corrected robust indices, the residual-based ones) agree with the tight ones
to a few 1e-7 and with the default ones to the EM tolerance's effect.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.api import fit_model
from analysis.sem import h1
from analysis.sem.fiml import FIMLEstimator, fiml_data
from analysis.sem.constraints import merge_simple_equalities
from analysis.sem.engine import fit as engine_fit
from analysis.sem.model import build_model, normalise_partable
from analysis.sem.partable import lavaanify

REF = Path(__file__).parent / "reference"
ROBUST = ("cfi.robust", "tli.robust", "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust")
SCALED = ("chisq.scaled", "chisq.scaling.factor", "baseline.chisq.scaled", "baseline.chisq.scaling.factor",
          "cfi.scaled", "tli.scaled", "rmsea.scaled")
LAVAAN = json.loads((REF / "fiml_robust.json").read_text())


def data_for(case: str) -> pd.DataFrame:
    return pd.read_csv(REF / ("sim40_missing.csv" if case.startswith("sim40") else "hs_missing.csv"))


def _fit(model, data, **kwargs):
    return fit_model(model, data, estimator="MLR", missing="fiml", **kwargs)


@pytest.fixture(scope="module")
def fits():
    """Our MLR + FIML fit of each reference model (the tight and default references share it);
    sim40 has 40 observed variables, 860 saturated-model parameters."""
    return {case: _fit(LAVAAN[case]["model"], data_for(case)) for case in ("hs3", "hs_sem", "sim40")}


def close(ours, ref, rel, abs_=1e-10):
    return ours == pytest.approx(ref, rel=rel, abs=abs_)


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_and_scaled_indices_match_lavaan_with_exact_em(fits, case):
    """Against lavaan with its EM run to 1e-12 (``em.h1.tol``): every scaled and robust index.
    Largest relative differences seen: 3.1e-7 (chisq.scaled, hs3; lavaan's estimates are
    converged to about 1e-6), robust indices 2.1e-7 (sim40)."""
    ref, fit = LAVAAN[case + "_tight"], fits[case].fit
    assert ref["converged"]
    for name in SCALED + ROBUST + ("chisq", "cfi", "tli", "rmsea"):
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=1e-6), name
    assert fit["df_scaled"] == ref["fit"]["df.scaled"]


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_indices_match_lavaan_defaults(fits, case):
    """Against lavaan's defaults, whose EM stops at a change of 1e-5: the robust indices depend on
    the EM moments to first order (T3 = N F(model; EM moments)), so they agree to 1e-4 relative
    (3.1e-5 seen); the scaled test and the other measures, which do not, to 2e-6 (3.1e-7 seen)."""
    ref, fit = LAVAAN[case], fits[case].fit
    for name in ROBUST:
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=1e-4), name
    for name in SCALED + ("chisq", "df", "cfi", "tli", "rmsea", "logl", "unrestricted.logl", "ntotal"):
        assert close(fit[name.replace(".", "_")], ref["fit"][name], rel=2e-6), name


@pytest.mark.parametrize("case", ["hs3", "hs_sem", "sim40"])
def test_robust_standard_errors_match_lavaan(fits, case):
    """Sandwich SEs with the analytic observed information: 1.4e-6 seen; estimates 2.5e-6
    (lavaan's optimiser tolerance)."""
    pe = pd.DataFrame(LAVAAN[case]["pe"])
    m = pe.merge(fits[case].parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["est_r"] - m["est"]).max() < 5e-6
    assert np.abs(m["se_r"] - m["se"]).max() < 3e-6


def test_ml_fiml_observed_information_matches_lavaan():
    """ML with FIML on a model with regressions, an equality label and a residual covariance:
    SEs from the analytic Hessian (lavaan: information "observed", by its Hessian)."""
    ref = LAVAAN["hs_sem_ml"]
    assert ref["information"][0] == "observed" and ref["observed_information"][0] == "hessian"
    fit = fit_model(ref["model"], data_for("hs"), missing="fiml")
    pe = pd.DataFrame(ref["pe"])
    m = pe.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["se_r"] - m["se"]).max() < 5e-6
    assert fit.fit["chisq"] == pytest.approx(ref["fit"]["chisq"], rel=1e-6)


def test_just_identified_model_gives_nan_where_lavaan_gives_na():
    """df = 0: lavaan reports no scaling factor, no scaled p-value and no scaled RMSEA (NA; NaN
    here), scaled and robust CFI/TLI 1 (the robust CFI 1 - 2e-11), robust RMSEA and its interval
    0, the baseline's scaled test as usual."""
    ref = LAVAAN["just_identified"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = _fit(ref["model"], data_for("hs"))
    assert not record, [str(w.message) for w in record]  # df = 0 is no error: nothing to warn about
    f = fit.fit
    for name, value in ref["fit"].items():
        key = name.replace(".", "_")
        if name in ("chisq.scaling.factor", "rmsea.scaled", "pvalue.scaled", "pvalue"):
            assert value is None and np.isnan(f[key]), name
        elif name in SCALED + ROBUST or name in ("df.scaled",):
            assert close(f[key], value, rel=1e-6, abs_=1e-9), name


# --------------------------------------------------------------------------- every measure, two groups

ENGINE = LAVAAN["engine"]
COV_DATA = pd.read_csv(REF / "hs_missing_cov.csv")
# Tolerance per (reference, kind of measure), relative except the p-values (absolute). Against the
# tight references: 7.3e-7 seen (the scaled test and its RMSEA interval; lavaan's estimates are
# converged to about 1e-6), the residual-based measures 2.0e-6 (srmr_mplus with two groups uses
# the implied means and SDs, so lavaan's estimate error shows), the robust indices 4.5e-7, the
# p-values 7.3e-7. Against the defaults (lavaan's EM stops at a change of 1e-5): the other
# measures 1.0e-6, the residual-based ones 6.8e-6, the FIML-corrected robust indices 3.1e-5 and
# their p-values 2.6e-5.
TOL = {("tight", "other"): 2e-6, ("default", "other"): 2e-6,
       ("tight", "residual"): 3e-6, ("default", "residual"): 1e-5,
       ("tight", "robust"): 1e-6, ("default", "robust"): 5e-5,
       ("tight", "p"): 2e-6, ("default", "p"): 5e-5}
RESIDUAL = ("rmr", "rmr_nomean", "srmr", "srmr_bentler", "srmr_bentler_nomean", "crmr", "crmr_nomean", "srmr_mplus",
            "srmr_mplus_nomean")
# estimates, SEs and std.all, absolute: lavaan's nlminb stops at its relative tolerance (5.5e-6,
# 8.5e-6 and 1.1e-5 seen, two groups with equal loadings)
EST_TOL, SE_TOL, STD_TOL = 1e-5, 1e-5, 1.5e-5


def _kind(name: str) -> str:
    return ("p" if "pvalue" in name else "residual" if name in RESIDUAL
            else "robust" if name.endswith("_robust") else "other")


@pytest.fixture(scope="module")
def engine_fits():
    out = {}
    for name in ENGINE:
        if name.endswith("_tight"):
            continue
        case = ENGINE[name]
        data = COV_DATA if name != "hs_sem" else data_for("hs")
        group = case["group"] or None
        equal = ("loadings",) if name.startswith("mg_loadings") else ()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = _fit(case["model"], data, group=group, group_labels=case["group_labels"] if group else None,
                       group_equal=equal)
        out[name] = (res, caught)
    return out


@pytest.mark.parametrize("name", list(ENGINE))
def test_every_fit_measure_matches_lavaan(engine_fits, name):
    """Every measure lavaan's fitMeasures reports for MLR with FIML, two groups included: the
    scaled test and the baseline's, scaled and robust CFI/TLI/RNI/NNFI/RMSEA with interval and
    p-values, GFI/AGFI/PGFI, the SRMRs, information criteria, scaling.factor.h1/h0; NaN where
    lavaan gives NA."""
    case = ENGINE[name]
    res = engine_fits[name.removesuffix("_tight")][0]
    kind = "tight" if name.endswith("_tight") else "default"
    assert case["converged"] and res.converged
    for key, value in case["fit"].items():
        ours = key.replace(".", "_")
        assert ours in res.fit, key
        tol = TOL[kind, _kind(ours)]
        assert res.fit[ours] == (pytest.approx(value, rel=0, abs=tol) if _kind(ours) == "p"
                                 else pytest.approx(value, rel=tol, abs=1e-12)), key
    for key in case["fit_na"]:
        assert np.isnan(res.fit[key.replace(".", "_")]), key
    assert len(case["fit"]) >= 75
    assert res.fit["ntotal"] == int(np.sum(case["nobs"]))


@pytest.mark.parametrize("name", [n for n in ENGINE if not n.endswith("_tight")])
def test_estimates_standard_errors_and_standardised_match_lavaan(engine_fits, name):
    case = ENGINE[name]
    res = engine_fits[name][0]
    ref = pd.DataFrame(case["pe"])
    ref = ref[~ref["op"].isin(["==", ":="])]
    mine = res.parameters.copy()
    if "group" not in mine.columns:
        mine["group"] = 1
    m = ref.merge(mine, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(mine)
    assert np.abs(m["est_r"] - m["est"]).max() < EST_TOL
    se_r, se = m["se_r"].astype(float), m["se"].astype(float)
    assert np.array_equal(np.isnan(se_r) | (se_r == 0), np.isnan(se) | (se == 0))
    assert np.nanmax(np.abs(se_r - se)) < SE_TOL
    assert np.nanmax(np.abs(m["std.all"].astype(float) - m["std_all"])) < STD_TOL


def test_rows_missing_a_fixed_covariate_are_dropped_as_lavaan(engine_fits):
    res, caught = engine_fits["mimic"]
    assert res.fit["ntotal"] == 295
    assert any("6 cases were deleted" in str(w.message) for w in caught)


def test_mlm_with_missing_data_is_refused():
    """lavaan: MLM needs complete data; so does the engine (InputError, the CLI's exit 2)."""
    with pytest.raises(InputError, match="MLM.*needs complete data"):
        fit_model(LAVAAN["hs3"]["model"], data_for("hs"), estimator="MLM", missing="fiml")


# --------------------------------------------------------------------------- the analytic information


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


def _estimator(syntax: str, data: pd.DataFrame) -> FIMLEstimator:
    """The engine's FIML strategy for ``syntax`` (equal labels merged into one free index, as
    :func:`analysis.sem.engine.fit` builds it)."""
    model = build_model(merge_simple_equalities(normalise_partable(lavaanify(syntax, list(data.columns),
                                                                              missing="fiml"))))
    stats, patterns, _, _ = fiml_data(model, data)
    return FIMLEstimator(model.with_sample(stats), stats, patterns)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_analytic_hessian_equals_numerical_differentiation(shape):
    """At the FIML estimates and at a point away from them (where the second derivatives of
    Sigma count): agreement to 1e-7 of the largest element (numerical noise)."""
    data = pd.read_csv(REF / "hs_missing.csv")
    est = _estimator(SHAPES[shape], data)
    fit = fit_model(SHAPES[shape], data, missing="fiml")
    x = fit.x
    shifted = x + 0.05 * np.random.default_rng(1).standard_normal(len(x))
    for point in (x, shifted):
        ours = est.observed_information(point)
        numerical = _five_point(lambda v: est.gradient(v) * est.ntotal / 2, point)
        assert np.abs(ours - numerical).max() < 1e-7 * np.abs(numerical).max()


def test_saturated_information_equals_numerical_differentiation():
    """The closed-form Hessian of the saturated model under FIML against differences of the
    summed casewise scores, away from the EM moments."""
    data = pd.read_csv(REF / "hs_missing.csv")
    est = _estimator(HS, data)
    pt = est.patterns[0]
    p = 9
    rows, cols = np.tril_indices(p)
    sig = np.cov(data[[f"x{k}" for k in range(1, 10)]].dropna().to_numpy(), rowvar=False) + 0.1 * np.eye(p)
    mu = est.stats[0].mean + 0.1

    def total_score(w):  # the scores of -log L: the means, then the covariances (h1's order)
        s = np.zeros((p, p))
        s[rows, cols] = s[cols, rows] = w[p:]
        return -h1.missing_scores(pt, s, w[:p]).sum(axis=0)

    point = np.concatenate([mu, sig[rows, cols]])
    numerical = _five_point(total_score, point, h=1e-4)
    ours = h1.missing_observed(pt, sig, mu)
    assert np.abs(ours - numerical).max() < 1e-7 * np.abs(numerical).max()


def test_casewise_scores_sum_to_the_gradient():
    """The saturated scores summed over cases vanish at the EM moments (their maximum); the
    model's casewise scores sum to the gradient of -log L in the free parameters."""
    data = pd.read_csv(REF / "hs_missing.csv")
    est = _estimator(HS, data)
    st, pt = est.stats[0], est.patterns[0]
    scores = h1.missing_scores(pt, st.cov, st.mean)
    assert len(scores) == pt.n
    assert np.abs(scores.sum(axis=0)).max() < 1e-6
    x = fit_model(HS, data, missing="fiml").x + 0.02
    model_scores = est.casewise_scores(x)[0]
    assert np.abs(model_scores.sum(axis=0) - est.gradient(x) * est.ntotal / 2).max() < 1e-8 * est.ntotal


@pytest.mark.parametrize("name", list(LAVAAN["expected"]))
def test_ml_fiml_expected_information_matches_lavaan(name):
    """ML with FIML and information = "expected": the expected information under the missingness
    patterns at the implied moments (lavaan's, Savalei 2010), one and two groups, fixed.x
    covariates. SEs 1.0e-6 seen (two groups), estimates as the observed-information fits."""
    case = LAVAAN["expected"][name]
    assert case["information"][0] == "expected"
    group = case["group"] or None
    data = data_for("hs") if name == "hs_sem" else COV_DATA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rows missing a fixed.x covariate (tested above)
        res = fit_model(case["model"], data, missing="fiml", group=group,
                        group_labels=case["group_labels"] if group else None,
                        group_equal=("loadings",) if group else ())
        exp = engine_fit(lavaanify(case["model"], list(data.columns), groups=case["group_labels"] if group else None,
                                   group_equal=("loadings",) if group else (), missing="fiml"),
                         data, group=group, group_labels=case["group_labels"] if group else None, missing="fiml",
                         information="expected")
    pe = pd.DataFrame(case["pe"])
    mine = exp.parameters.copy()
    if "group" not in mine.columns or len(exp.group_labels) == 1:
        mine["group"] = 1
    m = pe.merge(mine, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["est_r"] - m["est"]).max() < EST_TOL
    assert np.nanmax(np.abs(m["se_r"].astype(float) - m["se"])) < 3e-6
    # not the observed-information SEs (the two informations differ in a sample)
    assert not np.allclose(exp.parameters["se"].fillna(0), res.parameters["se"].fillna(0), rtol=1e-4, atol=0)
