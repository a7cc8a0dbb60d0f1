"""The engine's FIML estimator (analysis/sem/fiml.py; lavaan's missing = "ml") against lavaan 0.6-14.

tests/reference/engine_fiml.R fits four models to Holzinger & Swineford with 10% of the cells
missing (hs_missing_cov.csv) and writes lavaan's parameter tables with its numbers, so the
estimator is checked independently of the syntax parser: a three-factor CFA, two groups with
equal loadings, a MIMIC SEM (fixed.x covariates, 6 rows missing a covariate: lavaan drops them)
and a model with intercepts, latent means and an equality of intercepts. Each case twice: with
lavaan's defaults (its EM for the saturated model stops at a change of 1e-5) and with
em.h1.tol = 1e-12 ("_tight"). gapscale's EM runs to 1e-10, so the measures that depend on the
EM moments (unrestricted logl, chisq, baseline and every index from them, SRMR and the other
residual measures) agree with the tight references to 2e-6 relative and with the default ones
to 7.4e-6 (the SRMR family; chisq-based indices 2e-7; the FIML-corrected robust indices 3e-5);
estimates and SEs do not depend on the EM.

The other existing FIML references are checked through the syntax: cfa.json (``fiml``),
invariance.json (``fiml``, configural and scalar across schools) and fiml_robust.json
(``hs_sem_ml``: equal regression labels and a residual covariance).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.engine import fit
from analysis.sem.estimate import MLEstimator, start_values
from analysis.sem.fiml import FIMLEstimator, fiml_data
from analysis.sem.model import build_model
from analysis.sem.partable import lavaanify
from analysis.warnings import GapscaleWarning

REF = Path(__file__).parent / "reference"
FIML = json.loads((REF / "engine_fiml.json").read_text())
DATA = pd.read_csv(REF / "hs_missing_cov.csv")
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"

# Largest differences seen over the eight cases: estimates 6.5e-6 (lavaan's nlminb stops at its
# relative tolerance; gapscale's gradient is below 1e-9), SEs 2.8e-6, std.all 1.1e-5 (two groups).
EST_TOL, SE_TOL, STD_TOL = 1e-5, 4e-6, 1.5e-5
# Fit measures, relative, per (reference, kind of measure). Chi-square-based: 1.8e-7
# (rmsea.ci.lower, a root of the noncentral chi-square). The SRMR family: 6.8e-7 against the tight
# references except srmr_mplus with two groups, 2.0e-6 (it uses the implied means and SDs, so
# lavaan's estimate error of 3e-6 shows), and 7.4e-6 against the default ones (lavaan's EM
# tolerance). The robust (FIML-corrected) indices depend on the EM moments to first order: 1.5e-7
# against the tight references, 3e-5 against the default ones; their RMSEA p-value, a tail
# probability of 1e-6 to 1e-4 here, 4.1e-6 and 7.5e-4 (absolute 5e-11).
FIT_TOL = {("tight", "other"): 5e-7, ("default", "other"): 5e-7,
           ("tight", "residual"): 3e-6, ("default", "residual"): 1e-5,
           ("tight", "robust"): 5e-7, ("default", "robust"): 5e-5,
           ("tight", "robust_p"): 1e-5, ("default", "robust_p"): 1e-3,
           ("tight", "gfi"): 5e-8, ("default", "gfi"): 5e-8}
RESIDUAL = ("rmr", "rmr_nomean", "srmr", "srmr_bentler", "srmr_bentler_nomean", "crmr", "crmr_nomean", "srmr_mplus",
            "srmr_mplus_nomean")
# GFI, AGFI, PGFI under FIML: lavaan's statistics are the available-case means and pairwise
# covariances, its weight the missing-data information of the patterns (fit.ml_gfi): 2.2e-9 seen
# (mimic, fixed.x covariates out of both sums), the others 1.2e-8.
GFI = ("gfi", "agfi", "pgfi")


def _case(name):
    case = FIML["cases"][name]
    group = case["group"] or None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(pd.DataFrame(case["partable"]), DATA, group=group,
                  group_labels=case["group_labels"] if group else None, missing="fiml")
    return case, res, caught


@pytest.fixture(scope="module")
def fits():
    return {name: _case(name) for name in FIML["cases"]}


@pytest.mark.parametrize("name", list(FIML["cases"]))
def test_estimates_and_standard_errors_match_lavaan(fits, name):
    case, res, _ = fits[name]
    ref = pd.DataFrame(case["parameters"])
    mine = res.parameters
    assert res.converged and case["converged"]
    assert list(mine["lhs"]) == list(ref["lhs"]) and list(mine["op"]) == list(ref["op"])
    assert list(mine["rhs"]) == list(ref["rhs"]) and list(mine["group"]) == list(ref["group"])
    for col, rcol, tol in [("est", "est", EST_TOL), ("se", "se", SE_TOL), ("std_all", "std.all", STD_TOL),
                           ("std_lv", "std.lv", STD_TOL)]:
        a, b = mine[col].to_numpy(float), ref[rcol].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        assert np.nanmax(np.abs(a - b)) < tol, col


@pytest.mark.parametrize("name", list(FIML["cases"]))
def test_fit_measures_match_lavaan(fits, name):
    case, res, _ = fits[name]
    kind = "tight" if name.endswith("_tight") else "default"
    compared = 0
    for key, value in case["fit"].items():
        ours = key.replace(".", "_")
        assert ours in res.fit, key
        cat = ("gfi" if ours in GFI else "residual" if ours in RESIDUAL else "robust_p" if ours == "rmsea_pvalue_robust"
               else "robust" if ours.endswith("_robust") else "other")
        tol = FIT_TOL[kind, cat]
        assert res.fit[ours] == pytest.approx(value, rel=tol, abs=1e-12), key
        compared += 1
    assert compared >= 52
    assert res.fit["ntotal"] == int(np.sum(case["nobs"]))
    assert case["fit_na"] == []


def test_gfi_and_robust_indices_are_reported(fits):
    """GFI/AGFI/PGFI under FIML are reported (lavaan's, test_fit_measures_match_lavaan), and the
    robust indices (9 keys), but no scaled ones (ML: no scaled test)."""
    _, res, _ = fits["hs3"]
    assert all(np.isfinite(res.fit[k]) for k in GFI)
    assert sum(k.endswith("_robust") for k in res.fit) == 9
    assert not any(k.endswith("_scaled") for k in res.fit)


def test_rows_missing_a_fixed_covariate_are_dropped_as_lavaan(fits):
    _, res, caught = fits["mimic"]
    assert res.fit["ntotal"] == 295  # 301 less the 6 rows with ageyr missing
    assert any(issubclass(w.category, GapscaleWarning) and "6 cases were deleted" in str(w.message) for w in caught)
    assert any("6 cases were deleted" in note for note in res.warnings)


@pytest.mark.parametrize("name", ["hs3", "mg_loadings", "mimic", "intercepts"])
def test_observed_information_is_the_hessian(name):
    """The analytic observed information against central differences of the analytic gradient at
    a point away from the optimum (every kind of row: loadings, regressions with nonzero latent
    means, variances, covariances, intercepts, latent means, two groups)."""
    case = FIML["cases"][name]
    model = build_model(pd.DataFrame(case["partable"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GapscaleWarning)
        stats, patterns, _, _ = fiml_data(model, DATA, case["group"] or None,
                                          case["group_labels"] if case["group"] else None)
    model = model.with_sample(stats)
    est = FIMLEstimator(model, stats, patterns)
    x = start_values(model, stats)
    x = x + 0.05 * np.sin(1.3 * np.arange(len(x)))
    a, b = est.observed_information(x), est.numerical_observed_information(x)
    assert np.abs(a - b).max() < 1e-7 * np.abs(b).max()


def test_gradient_is_the_derivative_of_the_objective():
    model = build_model(lavaanify(HS, list(DATA.columns), missing="fiml"))
    stats, patterns, _, _ = fiml_data(model, DATA)
    model = model.with_sample(stats)
    est = FIMLEstimator(model, stats, patterns)
    x = start_values(model, stats) + 0.03
    h = 1e-6
    num = np.array([(est.objective(x + h * e) - est.objective(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    assert np.abs(est.gradient(x) - num).max() < 1e-6 * max(1.0, np.abs(num).max())


def test_complete_data_fiml_is_ml_with_a_mean_structure():
    """Without missing values FIML is ML: the same estimates, chi-square and logl as the
    complete-data estimator with intercepts, and observed-information SEs equal to the ML fit's
    observed-information SEs."""
    complete = DATA.dropna(subset=[f"x{k}" for k in range(1, 10)])
    pt = lavaanify(HS, list(DATA.columns), missing="fiml")
    a = fit(pt, complete, missing="fiml")
    b = fit(pt, complete, information="observed")
    assert a.fit["chisq"] == pytest.approx(b.fit["chisq"], rel=1e-8)
    assert a.fit["logl"] == pytest.approx(b.fit["logl"], rel=1e-10)
    assert a.fit["baseline_chisq"] == pytest.approx(b.fit["baseline_chisq"], rel=1e-8)
    # the two optimisers stop at their own tolerance (logl equal to 1e-10): estimates to 5e-7
    assert np.abs(a.parameters["est"] - b.parameters["est"]).max() < 5e-7
    assert np.abs(a.parameters["se"] - b.parameters["se"]).max() < 1e-6


@pytest.fixture(scope="module")
def hs_missing():
    hs = pd.read_csv(REF / "hs_full.csv")
    return pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")


def _assert_matches(res, ref_fit, ref_pe, est_tol, se_tol, fit_tol):
    for key, value in ref_fit.items():
        if key.endswith(".1"):
            continue
        assert res.fit[key.replace(".", "_")] == pytest.approx(value, rel=fit_tol, abs=1e-12), key
    pe = pd.DataFrame(ref_pe)
    mine = res.parameters.copy()
    keys = ["lhs", "op", "rhs"]
    if "group" in pe.columns:
        mine["group"] = mine["group_label"]
        keys.append("group")
    m = pe.merge(mine, on=keys, suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.nanmax(np.abs(m["est_r"].astype(float) - m["est"])) < est_tol
    assert np.nanmax(np.abs(m["se_r"].astype(float) - m["se"])) < se_tol


def test_through_the_syntax_cfa_reference(hs_missing):
    """cfa.json's FIML fit (lavaan defaults): measures 1e-5 relative (srmr 6.5e-6: lavaan's EM
    tolerance, the rest 2e-7), estimates 1.3e-6, SEs 5.4e-7."""
    ref = json.loads((REF / "cfa.json").read_text())["fiml"]
    res = fit(lavaanify(HS, list(hs_missing.columns), missing="fiml"), hs_missing, missing="fiml")
    _assert_matches(res, ref["fit"], ref["pe"], 2e-6, 1e-6, 1e-5)


def test_through_the_syntax_invariance_reference(hs_missing):
    """invariance.json's configural and scalar FIML fits across schools: measures 1e-5 relative,
    estimates and SEs 1e-5 (lavaan's optimiser)."""
    ref = json.loads((REF / "invariance.json").read_text())["fiml"]
    labels = ref["group_label"]
    for step, equal in (("configural", ()), ("scalar", ("loadings", "intercepts"))):
        pt = lavaanify(HS, list(hs_missing.columns), groups=labels, group_equal=equal, missing="fiml")
        res = fit(pt, hs_missing, group="school", group_labels=labels, missing="fiml")
        _assert_matches(res, ref[step]["fit"], ref[step]["pe"], 1e-5, 1e-5, 1e-5)


def test_through_the_syntax_sem_with_equal_labels(hs_missing):
    """fiml_robust.json's ML + FIML SEM (equal regression labels, a residual covariance)."""
    ref = json.loads((REF / "fiml_robust.json").read_text())["hs_sem_ml"]
    res = fit(lavaanify(ref["model"], list(hs_missing.columns), missing="fiml"), hs_missing, missing="fiml")
    _assert_matches(res, ref["fit"], ref["pe"], 1e-5, 1e-5, 1e-5)


def test_input_errors():
    pt = lavaanify(HS, list(DATA.columns))  # no mean structure
    with pytest.raises(InputError, match="FIML needs a mean structure"):
        fit(pt, DATA, missing="fiml")
    with pytest.raises(InputError, match="missing must be"):
        fit(pt, DATA, missing="pairwise")
    bad = DATA.copy()
    bad["x3"] = bad["x3"].astype(object)
    bad.loc[4, "x3"] = "n/a?"
    with pytest.raises(InputError, match=r"column 'x3' row 5 is not numeric"):
        fit(lavaanify(HS, list(DATA.columns), missing="fiml"), bad, missing="fiml")
    with pytest.raises(InputError, match="group 'Nowhere' not found"):
        fit(lavaanify(HS, list(DATA.columns), groups=["Pasteur", "Nowhere"], missing="fiml"), DATA, group="school",
            group_labels=["Pasteur", "Nowhere"], missing="fiml")


def test_scoring_matrix_is_the_complete_data_information():
    """The optimiser's scoring matrix is the complete-data expected information at the implied
    moments (positive definite; the gradient is exact, so the solution is the FIML one)."""
    model = build_model(lavaanify(HS, list(DATA.columns), missing="fiml"))
    stats, patterns, _, _ = fiml_data(model, DATA)
    model = model.with_sample(stats)
    x = start_values(model, stats)
    a = FIMLEstimator(model, stats, patterns).information(x)
    b = MLEstimator(model, stats).information(x)
    assert np.allclose(a, b) and np.linalg.eigvalsh(a).min() > 0


def test_information_is_the_observed_information_the_ses_use(fits):
    """EngineFit.information of a FIML fit is the observed information (the Hessian of -log L)
    whose inverse gives the SEs, not the complete-data approximation the optimiser steps with."""
    _, res, _ = fits["hs3"]
    model = res.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GapscaleWarning)
        stats, patterns, _, _ = fiml_data(model, DATA)
    est = FIMLEstimator(model, stats, patterns)
    assert np.allclose(res.information, est.observed_information(res.x), rtol=1e-12, atol=0)
    assert not np.allclose(res.information, est.information(res.x), rtol=1e-3, atol=0)
    free = res.parameters[res.parameters["free"] > 0].drop_duplicates("free").sort_values("free")
    assert np.allclose(np.sqrt(np.diag(np.linalg.inv(res.information))), free["se"].to_numpy(), rtol=1e-10, atol=0)
