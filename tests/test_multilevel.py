"""analysis.multilevel.design_effect against R (tests/reference/multilevel.R: aov + multilevel::ICC1)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.multilevel import DESIGN_EFFECT_COLUMNS, design_effect

REF = Path(__file__).parent / "reference"


@pytest.mark.parametrize("data, columns, cluster", [
    ("bh1996", ["LEAD", "HRS", "WBEING"], "GRP"),          # Bliese & Halverson (1996): ICC1(WBEING) = .0434
    ("clustered_missing", ["x", "z"], "cluster"),          # a singleton, missing values, rows without a cluster
])
def test_design_effect_matches_r(data, columns, cluster):
    ref = pd.DataFrame(json.loads((REF / "multilevel.json").read_text())[data])
    got = design_effect(pd.read_csv(REF / f"{data}.csv"), columns, cluster)
    assert list(got.columns) == DESIGN_EFFECT_COLUMNS
    assert got["variable"].tolist() == ref["variable"].tolist()
    assert got["n"].tolist() == ref["n"].tolist() and got["n_clusters"].tolist() == ref["n_clusters"].tolist()
    for col in DESIGN_EFFECT_COLUMNS[3:]:
        np.testing.assert_allclose(got[col].to_numpy(), ref[col].to_numpy(dtype=float), rtol=1e-9, err_msg=col)


def test_published_wbeing_icc():
    # Bliese (2016), Multilevel Modeling in R, section 3.2: ICC(1) of well-being in bh1996 is .04337
    got = design_effect(pd.read_csv(REF / "bh1996.csv"), ["WBEING"], "GRP")
    assert got["icc1"].iat[0] == pytest.approx(0.04337, abs=5e-6)


def test_negative_icc_gives_design_effect_one_and_known_truth():
    d = pd.DataFrame({"g": list("aabbcc"), "y": [1.0, 2, 1, 2, 1, 2]})  # all variance within: ICC1 = -1/(m-1)... < 0
    row = design_effect(d, ["y"], "g").iloc[0]
    assert row["ms_between"] == 0 and row["icc1"] == pytest.approx(-1.0)  # (0 - .5) / (0 + 1 * .5)
    assert row["design_effect"] == 1 and row["n_effective"] == 6
    d = pd.DataFrame({"g": list("aabbcc"), "y": [1.0, 1, 2, 2, 3, 3]})  # all variance between: ICC1 = 1
    row = design_effect(d, ["y"], "g").iloc[0]
    assert row["icc1"] == pytest.approx(1.0) and row["design_effect"] == pytest.approx(2.0)


def test_too_few_clusters_and_bad_columns():
    row = design_effect(pd.DataFrame({"g": ["a", "a"], "y": [1.0, 2]}), ["y"], "g").iloc[0]
    assert row["n_clusters"] == 1 and np.isnan(row["icc1"]) and row["mean_cluster_size"] == 2
    with pytest.raises(InputError, match="'org'"):
        design_effect(pd.DataFrame({"y": [1.0]}), ["y"], "org")
