"""Warm starts and reused moments (issue 13): a fit started from a neighbouring model's estimates
(:func:`analysis.sem.estimate.warm_start`) with the sample moments of a fit of the same data
(:class:`analysis.sem.engine.Sample`) reaches the optimum of a fit from the default start; the
optimiser ends on its gradient criterion, not on a line search lost in the objective's rounding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.invariance import Specification, fit_level
from analysis.sem.api import fit_model
from analysis.sem.estimate import warm_start
from analysis.sem.model import build_model, normalise_partable
from analysis.sem.partable import lavaanify

REF = Path(__file__).parent / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
SCHOOLS = ["Pasteur", "Grant-White"]


@pytest.fixture(scope="module")
def hs_missing():
    hs = pd.read_csv(REF / "hs_full.csv")
    return pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")


def _same(a: pd.DataFrame, b: pd.DataFrame, col: str) -> float:
    return float(np.nanmax(np.abs(a[col].to_numpy(float) - b[col].to_numpy(float))))


@pytest.mark.parametrize("missing", ["listwise", "fiml"])
def test_a_rung_started_from_the_one_before_is_the_cold_fit(hs_missing, missing):
    spec = Specification(missing=missing)
    if missing == "listwise":  # the complete data (the incomplete rows' complete cases give Heywood cases)
        hs_missing = pd.read_csv(REF / "hs_full.csv")
    configural = fit_level(hs_missing, HS_MODEL, "school", SCHOOLS, "configural", spec=spec)
    cold = fit_level(hs_missing, HS_MODEL, "school", SCHOOLS, "scalar", spec=spec)
    warm = fit_level(hs_missing, HS_MODEL, "school", SCHOOLS, "scalar", spec=spec, start=configural)
    assert cold.converged and warm.converged
    assert warm.fit["chisq"] == pytest.approx(cold.fit["chisq"], abs=1e-7)
    assert _same(warm.parameters, cold.parameters, "est") < 1e-6
    assert _same(warm.parameters, cold.parameters, "se") < 1e-6
    # the moments (FIML: the EM moments per group) are the configural fit's, not recomputed
    assert all(a is b for a, b in zip(warm.sample.stats, configural.sample.stats))
    if missing == "fiml":
        assert all(a is b for a, b in zip(warm.sample.patterns, configural.sample.patterns))
    # the optimiser ends at its gradient tolerance (1e-9 on the constraints' null space), not at a
    # line search stalled in the objective's rounding (max|grad| about 2e-8 before)
    if missing == "fiml":
        grad = warm.fiml.gradient(warm.x)
        jac = warm.optimum.con_jac
        if jac.size:
            _, s, vt = np.linalg.svd(jac)
            grad = vt[int(np.sum(s > 1e-10 * s.max())):] @ grad
        assert np.max(np.abs(grad)) < 1e-9


def test_a_sample_serves_only_a_model_with_the_same_variables_and_groups(hs_missing):
    full = fit_model(HS_MODEL, hs_missing, group="school", group_labels=SCHOOLS, missing="fiml")
    two = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\n"
    fewer = fit_model(two, hs_missing, group="school", group_labels=SCHOOLS, missing="fiml", sample=full.sample,
                      start=full.parameters)
    alone = fit_model(two, hs_missing, group="school", group_labels=SCHOOLS, missing="fiml")
    assert fewer.sample.stats[0] is not full.sample.stats[0]
    assert fewer.fit["chisq"] == pytest.approx(alone.fit["chisq"], abs=1e-7)
    assert _same(fewer.parameters, alone.parameters, "est") < 1e-6
    swapped = fit_model(HS_MODEL, hs_missing, group="school", group_labels=SCHOOLS[::-1], missing="fiml",
                        sample=full.sample)
    assert swapped.group_labels == tuple(SCHOOLS[::-1])
    assert swapped.sample.stats[0].n == full.sample.stats[1].n


def test_warm_start_takes_the_estimates_a_previous_fit_shares():
    pt = lavaanify("f =~ x1 + x2 + x3\nx1 ~~ x2\n", ["x1", "x2", "x3"])
    model = build_model(normalise_partable(pt))
    start = np.arange(1.0, model.nfree + 1)
    previous = pd.DataFrame({"lhs": ["f", "x2", "f", "g"], "op": ["=~", "~~", "~~", "=~"],
                             "rhs": ["x2", "x1", "f", "x1"], "est": [0.7, 0.3, np.nan, 9.0]})
    x = warm_start(model, start, previous)
    names = model.free_names()
    got = dict(zip(names, x))
    assert got["f =~ x2"] == 0.7 and got["x1 ~~ x2"] == 0.3  # ~~ in either order
    untouched = [k for k, n in enumerate(names) if n not in ("f =~ x2", "x1 ~~ x2")]
    assert np.array_equal(x[untouched], start[untouched])  # NaN and unknown rows leave the start
    assert np.array_equal(start, np.arange(1.0, model.nfree + 1))  # not modified in place
