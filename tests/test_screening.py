"""Careless-response screens against base R on psych::bfi (tests/reference/screening.R)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import screening

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(REF / "bfi_600.csv")


@pytest.fixture(scope="module")
def r():
    return json.loads((REF / "screening.json").read_text())


def test_irv_matches_r(bfi, r):
    ours = screening.irv(bfi, list(bfi.columns), 0.5)["value"].to_numpy()
    ref = np.array([np.nan if v is None else v for v in r["irv"]])
    assert np.nanmax(np.abs(ours - ref)) < 1e-12
    assert np.array_equal(np.isnan(ours), np.isnan(ref))


def test_longstring_matches_r(bfi, r):
    ours = screening.longstring(bfi, list(bfi.columns), 0.5)["value"].to_numpy()
    assert ours.tolist() == r["longstring"]


def test_mahalanobis_matches_r_on_complete_cases(bfi, r):
    complete = bfi.iloc[np.asarray(r["complete_rows"]) - 1].reset_index(drop=True)
    result = screening.mahalanobis(complete, list(bfi.columns), 0.001)
    assert np.abs(result["d2"].to_numpy() - np.asarray(r["mahalanobis_d2"])).max() < 1e-9
    assert np.abs(result["pvalue"].to_numpy() - np.asarray(r["mahalanobis_p"])).max() < 1e-12
    assert (result["df"] == 25).all()
    assert (result["flagged"].to_numpy() == (np.asarray(r["mahalanobis_p"]) < 0.001)).all()


def test_attention_speeders_duplicates_missing_on_a_small_table():
    data = pd.DataFrame({
        "id": ["a", "b", "a", "c", "d"], "row": [1, 2, 3, 4, 5],
        "x1": [1, 2, 1, 4, 2], "x2": [2, np.nan, 2, 4, 3], "att": [2, 3, np.nan, 2, 2],
        "t": [600, 100, 620, 590, np.nan],
    })
    att = screening.attention_checks(data, {"att": (2.0,)})
    assert att["flagged"].tolist() == [False, True, True, False, False]
    assert att["value"].iat[1] == "att=3 (expected 2)" and att["value"].iat[2] == "att=missing (expected 2)"
    sp = screening.speeders(data["t"], 0.333)
    assert sp["flagged"].tolist() == [False, True, False, False, False]  # 100 / 595 = .17
    dup = screening.duplicates(data, "id", ["x1", "x2"], data["row"])
    assert dup["flagged"].tolist() == [False, False, True, False, False]
    assert dup["value"].iat[2] == "same id as row 1; identical answers to row 1"
    miss = screening.missing_share(data, ["x1", "x2"], 0.4)
    assert miss["flagged"].tolist() == [False, True, False, False, False]


def test_mahalanobis_screen_names_why_it_cannot_run():
    """Two halves of an export that answered different items (choice text in another language
    set missing) leave pairwise covariances undefined; constant answers leave no variance. The
    screen says why instead of failing inside the eigen-decomposition."""
    from analysis.screening import mahalanobis, mahalanobis_unavailable

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.integers(1, 6, size=(120, 4)).astype(float), columns=["a1", "a2", "b1", "b2"])
    x.loc[x.index % 2 == 0, ["b1", "b2"]] = np.nan
    x.loc[x.index % 2 == 1, ["a1", "a2"]] = np.nan
    why = mahalanobis_unavailable(x, list(x.columns))
    assert why.startswith("4 pair(s) of items are never answered together") and "a1 and b1" in why
    assert mahalanobis(x, list(x.columns), 0.001) is None
    assert mahalanobis_unavailable(pd.DataFrame(3.0, index=range(60), columns=["a", "b"]), ["a", "b"]) == \
        "no item varies across respondents"
    assert "needs at least" in mahalanobis_unavailable(x.iloc[:10], list(x.columns))
    complete = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    assert mahalanobis_unavailable(complete, list("abcd")) is None
    assert len(mahalanobis(complete, list("abcd"), 0.001)) == 120
