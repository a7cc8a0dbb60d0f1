"""Cluster-robust MLR (lavaan: sem(..., cluster = "org", estimator = "MLR")) against lavaan 0.6-14.

tests/reference/cluster_robust.R on cluster_robust.csv (cluster_robust.make.py: 40 organisations,
ICC .2): standard errors, the Yuan-Bentler scaled test of the model and the baseline, robust CFI
and RMSEA. The clustered SEs differ from the unclustered ones by up to a factor of 2 (intercepts),
so a fit that ignored the clusters fails.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.api import fit_model
from analysis.sem.robust import cluster_sums

REF = Path(__file__).parent / "reference"
MODELS = {"cfa": "f1 =~ y1 + y2 + y3\n f2 =~ y4 + y5 + y6",
          "sem": "f1 =~ y1 + y2 + y3\n f2 =~ y4 + y5 + y6\n f2 ~ f1 + x"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REF / "cluster_robust.csv")


@pytest.mark.parametrize("name", list(MODELS))
def test_cluster_robust_mlr_matches_lavaan(data, name):
    ref = json.loads((REF / "cluster_robust.json").read_text())[name]
    fitted = fit_model(MODELS[name], data, estimator="MLR", cluster="org")
    want = pd.DataFrame(ref["parameters"])
    got = want[["lhs", "op", "rhs"]].merge(fitted.parameters, on=["lhs", "op", "rhs"], how="left")
    assert len(got) == len(fitted.parameters) == len(want)  # lavaan's mean structure included
    np.testing.assert_allclose(got["est"], want["est"], atol=1e-5)
    free = want["se"].to_numpy() > 0
    np.testing.assert_allclose(got["se"].to_numpy()[free], want["se"].to_numpy()[free], rtol=1e-4)
    unclustered = np.asarray(ref["se_unclustered"])[free]
    assert np.max(np.abs(want["se"].to_numpy()[free] / unclustered - 1)) > 0.3  # the test can fail
    for key, value in ref["fit"].items():
        assert fitted.fit[key.replace(".", "_")] == pytest.approx(value, rel=1e-5), key


def test_cluster_sums_and_refusals(data):
    u = np.arange(8.0).reshape(4, 2)
    np.testing.assert_allclose(cluster_sums(u, ["a", "b", "a", "c"]),
                               np.sqrt(3 / 2) * np.array([[4.0, 6], [2, 3], [6, 7]]))
    with pytest.raises(InputError, match="need estimator MLR"):
        fit_model(MODELS["cfa"], data, estimator="ML", cluster="org")
    with pytest.raises(InputError, match="not found"):
        fit_model(MODELS["cfa"], data, estimator="MLR", cluster="team")
    with pytest.raises(InputError, match="missing in 1 case"):
        fit_model(MODELS["cfa"], data.assign(org=data["org"].where(data.index != 3)), estimator="MLR", cluster="org")
