"""Formative composites (``<~``) in the unified engine against lavaan 0.6-14
(tests/reference/engine_composite.R on Holzinger & Swineford and Political Democracy).

lavaan's treatment, which lavaanify and the engine reproduce: the composite is a latent
variable with its disturbance variance fixed at 0, regressed on its formative indicators
(the ``<~`` weights; one fixed to 1 in the syntax scales it); indicators that only form the
composite are fixed.x covariates. Three models: a composite predicting two factors, a
composite between two factors, and Political Democracy's industrialisation as a composite with
labels and a ``:=`` indirect effect. Their lavaan parameter tables are checked row for row in
tests/test_partable.py.

Tolerances are the largest differences seen times about two: lavaan's nlminb stops at a
relative change of 1e-10 in F and the engine goes further (its chi-square is lower by at most
8e-9), so the estimates differ by lavaan's convergence error: estimates 1.4e-5, SEs 1.5e-5
(the weakly determined composite weights of the mediator model), std.all 5.4e-6, its SEs
9.0e-7, fit measures 2.7e-7 relative.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.sem.api import fit_model
from analysis.sem.engine import fit
from analysis.sem.partable import lavaanify

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "engine_composite.json").read_text())["cases"]
DATA = {"hs": pd.read_csv(REF / "hs_engine.csv"), "pd": pd.read_csv(REF / "political_democracy.csv")}


@pytest.fixture(scope="module")
def fits():
    return {name: fit(lavaanify(c["model"], list(DATA[c["data"]].columns)), DATA[c["data"]])
            for name, c in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_estimates_match_lavaan(fits, name):
    ref = pd.DataFrame(CASES[name]["parameters"])
    mine = fits[name].parameters
    assert list(mine["lhs"]) == list(ref["lhs"]) and list(mine["op"]) == list(ref["op"])
    assert list(mine["rhs"]) == list(ref["rhs"])
    for col, rcol, tol in [("est", "est", 3e-5), ("se", "se", 3e-5), ("std_lv", "std.lv", 3e-5),
                           ("std_all", "std.all", 1.1e-5), ("std_all_se", "std.all.se", 2e-6)]:
        a, b = mine[col].to_numpy(float), ref[rcol].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), (name, col)
        ok = np.isfinite(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=tol, err_msg=f"{name} {col}")
    comp = mine[(mine["op"] == "~~") & (mine["lhs"] == mine["rhs"]) & mine["lhs"].isin(mine.loc[mine["op"] == "<~",
                                                                                                 "lhs"])]
    assert (comp["est"] == 0).all() and (comp["se"] == 0).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_measures_match_lavaan(fits, name):
    ref, res = CASES[name]["fit"], fits[name]
    assert res.converged
    for key in ("npar", "df", "baseline_df", "ntotal"):
        assert res.fit[key] == ref[key.replace("_", ".")], key
    assert res.fit["chisq"] <= ref["chisq"] + 1e-9  # the engine's optimum is at least as good as lavaan's
    for key, r in ref.items():
        assert res.fit[key.replace(".", "_")] == pytest.approx(r, abs=5e-7 * max(1.0, abs(r))), key


def test_defined_effect_through_the_front_door():
    """api.fit_model (syntax to fit) gives the := indirect effect through the composite as lavaan."""
    case = CASES["poldem"]
    res = fit_model(case["model"], DATA["pd"])
    ref = pd.DataFrame(case["parameters"])
    r = ref[ref["op"] == ":="].iloc[0]
    m = res.parameters[res.parameters["op"] == ":="].iloc[0]
    assert m["lhs"] == "ind"
    assert m["est"] == pytest.approx(r["est"], abs=2e-5) and m["se"] == pytest.approx(r["se"], abs=1e-5)
    assert m["std_all"] == pytest.approx(r["std.all"], abs=5e-6)
