"""Item descriptives and Mardia's test against psych (tests/reference/descriptives.R), bad input.

The R script runs psych::describe (types 1-3) and psych::mardia on psych::bfi's first 600 rows
(with NAs), HolzingerSwineford1939 x1-x9 and the same with cells deleted (hs_missing.csv).
Regenerate with
    Rscript tests/reference/descriptives.R
Largest differences from R seen when the reference was made: describe's n, mean, sd, skew and
kurtosis 6e-15 (types 2 and 3; type 1 on complete data, see item_descriptives' Notes for psych's
type-1 kurtosis with NAs); mardia's b1p, b2p, skew chi-square and kurtosis z 2e-14 relative, the
p values 2e-17 where psych's 1 - pchisq does not underflow to 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.descriptives import (DESCRIPTIVE_COLUMNS, MARDIA_KEYS, PROFILE_COLUMNS, item_descriptives, mardia,
                                   sample_profile)
from analysis.errors import InputError
from instrument.schema import ContextQuestion

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "descriptives.json").read_text())
HS = [f"x{i}" for i in range(1, 10)]
TOL = 1e-10


def _data(name: str) -> pd.DataFrame:
    if name == "bfi":
        return pd.read_csv(REF / "bfi_600.csv")
    if name == "hs":
        return pd.read_csv(REF / "holzinger_swineford.csv")
    return pd.read_csv(REF / "hs_missing.csv")[HS]


@pytest.mark.parametrize("name", ["bfi", "hs", "hs_missing"])
@pytest.mark.parametrize("type_", [1, 2, 3])
def test_item_descriptives_match_psych_describe(name, type_):
    d = _data(name)
    got = item_descriptives(d, list(d.columns), type=type_)
    ref = R["describe"][name][f"type{type_}"]
    assert list(got.columns) == DESCRIPTIVE_COLUMNS
    assert got["item"].tolist() == ref["item"]
    np.testing.assert_array_equal(got["n"], ref["n"])
    for ours, theirs in [("mean", "mean"), ("sd", "sd"), ("skewness", "skew"), ("pct_missing", "pct_missing")]:
        np.testing.assert_allclose(got[ours], ref[theirs], rtol=0, atol=TOL, err_msg=ours)
    if type_ == 1 and d.isna().any().any():
        # psych's data-frame kurtosi(type = 1) multiplies by all rows, NAs included (a psych bug);
        # its formula with the observed n is what is computed here: recompute R's from ours.
        n_all, n_obs = len(d), got["n"].to_numpy()
        np.testing.assert_allclose((got["kurtosis"] + 3) * n_all / n_obs - 3, ref["kurtosis"], rtol=0, atol=TOL)
    else:
        np.testing.assert_allclose(got["kurtosis"], ref["kurtosis"], rtol=0, atol=TOL)


def test_item_descriptives_default_is_psych_type_3():
    d = _data("bfi")
    np.testing.assert_allclose(item_descriptives(d, ["A1", "C5"])["skewness"],
                               np.array(R["describe"]["bfi"]["type3"]["skew"])[[0, 9]], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", ["bfi", "hs", "hs_missing"])
def test_mardia_matches_psych(name):
    d = _data(name)
    got = mardia(d, list(d.columns))
    ref = R["mardia"][name]
    assert tuple(got) == MARDIA_KEYS
    assert got["n"] == ref["n"] and got["p"] == ref["p"] and got["skew_df"] == ref["df"]
    for ours, theirs in [("b1p", "b1p"), ("b2p", "b2p"), ("skew_chisq", "skew"), ("kurt_z", "kurtosis")]:
        np.testing.assert_allclose(got[ours], ref[theirs], rtol=1e-12, atol=0, err_msg=ours)
    for ours, theirs in [("skew_pvalue", "p_skew"), ("kurt_pvalue", "p_kurt")]:
        np.testing.assert_allclose(got[ours], ref[theirs], rtol=1e-9, atol=1e-15, err_msg=ours)


def test_mardia_by_blocks_equals_the_n_by_n_matrix():
    """The third-moment tensor route gives sum(D^3) of the n x n matrix D = X S^-1 X'; 3000 rows
    span several blocks of the accumulation."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 6)) @ rng.standard_normal((6, 6)) + rng.exponential(size=(3000, 6))
    d = pd.DataFrame(x, columns=list("abcdef"))
    xc = x - x.mean(axis=0)
    dd = xc @ np.linalg.solve(np.cov(x, rowvar=False), xc.T)
    got = mardia(d, list(d.columns))
    assert got["b1p"] == pytest.approx((dd**3).sum() / 3000**2, rel=1e-10)
    assert got["b2p"] == pytest.approx((np.diag(dd) ** 2).mean(), rel=1e-10)


def test_mardia_normal_data_is_not_rejected_and_skewed_data_is():
    rng = np.random.default_rng(11)
    normal = pd.DataFrame(rng.standard_normal((2000, 4)), columns=list("abcd"))
    m = mardia(normal, list("abcd"))
    assert m["skew_pvalue"] > 0.01 and m["kurt_pvalue"] > 0.01
    assert m["b2p"] == pytest.approx(4 * 6, abs=0.6)
    skewed = normal.apply(np.exp)
    s = mardia(skewed, list("abcd"))
    assert s["skew_pvalue"] < 1e-10 and s["kurt_z"] > 5


def test_item_descriptives_edge_cases():
    d = pd.DataFrame({"a": pd.array([1, 2, None, 4, 4], dtype="Int64"), "b": [3.0] * 5,
                      "c": [np.nan] * 5})
    got = item_descriptives(d, ["a", "b", "c"]).set_index("item")
    assert got.loc["a", "n"] == 4 and got.loc["a", "pct_missing"] == 20.0
    assert got.loc["a", "mean"] == pytest.approx(2.75) and got.loc["a", "sd"] == pytest.approx(np.std([1, 2, 4, 4], ddof=1))
    assert got.loc["b", "sd"] == 0 and np.isnan(got.loc["b", "skewness"]) and np.isnan(got.loc["b", "kurtosis"])
    assert got.loc["c", "n"] == 0 and got.loc["c", "pct_missing"] == 100 and np.isnan(got.loc["c", "mean"])


@pytest.mark.parametrize("call, message", [
    (lambda d: item_descriptives(d, ["a", "zz"]), "'zz' not in the data"),
    (lambda d: item_descriptives(d, ["a", "a"]), "listed twice"),
    (lambda d: item_descriptives(d, ["txt"]), "'txt': not numeric"),
    (lambda d: item_descriptives(d, ["a"], type=4), "type: 1, 2 or 3"),
    (lambda d: item_descriptives(d, "a"), "list of column names"),
    (lambda d: mardia(d, ["a"]), "at least 2 items"),
    (lambda d: mardia(d, ["a", "twice_a"]), "singular"),
    (lambda d: mardia(d.head(2), ["a", "b"]), "need more complete rows than items"),
    (lambda d: mardia(d.assign(b=[1.0, np.inf, 2.0, 3.0, 4.0, 5.0]), ["a", "b"]), "row 2: infinite"),
])
def test_bad_input_is_an_input_error(call, message):
    d = pd.DataFrame({"a": [1.0, 2, 3, 5, 4, 7], "b": [2.0, 1, 4, 3, 6, 5], "twice_a": [2.0, 4, 6, 10, 8, 14],
                      "txt": list("uvwxyz")})
    with pytest.raises(InputError, match=message):
        call(d)


# --------------------------------------------------------------------------- the cfa stage's outputs

HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"


def test_cfa_stage_writes_item_descriptives_and_mardia(run_cli, tmp_path):
    """On the data the CFA analyses: every row (FIML or not), the model's observed variables;
    Mardia on the complete rows. The numbers are psych's (hs_missing.csv, descriptives.R)."""
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, _, err = run_cli("cfa", "--data", REF / "hs_missing.csv", "--model", tmp_path / "m.lavaan",
                           "--missing", "fiml", "--out", tmp_path / "o")
    assert code == 0, err
    desc = pd.read_csv(tmp_path / "o" / "item_descriptives.csv")
    assert list(desc.columns) == DESCRIPTIVE_COLUMNS and desc["item"].tolist() == HS
    ref = R["describe"]["hs_missing"]["type3"]
    np.testing.assert_allclose(desc["skewness"], ref["skew"], rtol=0, atol=TOL)
    np.testing.assert_allclose(desc["pct_missing"], ref["pct_missing"], rtol=0, atol=TOL)
    m = json.loads((tmp_path / "o" / "mardia.json").read_text())
    assert set(m) == set(MARDIA_KEYS) and m["n"] == R["mardia"]["hs_missing"]["n"] == 106
    assert m["b2p"] == pytest.approx(R["mardia"]["hs_missing"]["b2p"], rel=1e-12)


def test_cfa_stage_mardia_not_computable_is_a_note(run_cli, tmp_path):
    """Fewer complete rows than items: the CFA runs under FIML, Mardia's keys are null with a note."""
    d = pd.read_csv(REF / "holzinger_swineford.csv")
    d.loc[d.index[:150], "x1"] = np.nan
    d.loc[d.index[150:295], "x5"] = np.nan
    d.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, _, err = run_cli("cfa", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--missing", "fiml", "--out", tmp_path / "o")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "mardia.json").read_text())
    assert m["b1p"] is None and m["n"] is None and "need more complete rows than items" in m["note"]


# --------------------------------------------------------------------------- sample profile

def test_sample_profile_counts_levels_in_the_instruments_order_and_describes_numbers():
    questions = [ContextQuestion(id="sector", type="categorical", values=("a", "b", "c")),
                 ContextQuestion(id="years", type="integer"),
                 ContextQuestion(id="band", type="categorical", values=(1, 2)),
                 ContextQuestion(id="comment", type="text", personal=False),
                 ContextQuestion(id="postcode", type="categorical", values=("x",), personal=True),
                 ContextQuestion(id="not_in_data", type="integer")]
    d = pd.DataFrame({"sector": ["b", "a", None, "b", "zz"], "years": pd.array([3, None, 5, 10, 1], dtype="Int64"),
                      "band": [1.0, 2.0, 2.0, np.nan, 1.0], "comment": list("vwxyz"), "postcode": ["x"] * 5})
    got = sample_profile(d, questions)
    assert list(got.columns) == PROFILE_COLUMNS
    assert got["variable"].unique().tolist() == ["sector", "years", "band"]  # no text, personal or absent column
    sector = got[got["variable"] == "sector"]
    assert sector["level"].tolist() == ["a", "b", "c", "zz", "(missing)"]
    assert sector["n"].tolist() == [1, 2, 0, 1, 1] and sector["percent"].sum() == pytest.approx(100)
    assert sector["mean"].isna().all() and sector["sd"].isna().all()
    years = got[got["variable"] == "years"].iloc[0]
    assert years["n"] == 4 and years["percent"] == 80 and years["mean"] == pytest.approx(4.75)
    assert years["sd"] == pytest.approx(np.std([3, 5, 10, 1], ddof=1))
    band = got[got["variable"] == "band"]
    assert band["level"].tolist() == ["1", "2", "(missing)"] and band["n"].tolist() == [2, 2, 1]


def test_clean_stage_writes_the_sample_profile_without_personal_data(run_cli, tmp_path):
    corpus = Path(__file__).parent / "corpus"
    code, _, err = run_cli("clean", "--instrument", corpus / "instrument.yaml", "--data", corpus / "integer_gaps.csv",
                           "--out", tmp_path / "c")
    assert code == 0, err
    profile = pd.read_csv(tmp_path / "c" / "sample_profile.csv", keep_default_na=False, na_values=[""])
    clean = pd.read_csv(tmp_path / "c" / "clean.csv")
    assert list(profile.columns) == PROFILE_COLUMNS
    assert set(profile["variable"]) == {"relationship_type", "experience_years"} <= set(clean.columns)
    rel = profile[profile["variable"] == "relationship_type"].set_index("level")["n"]
    assert rel.loc[["B2B", "B2C", "B2G", "G2C"]].sum() + rel.get("(missing)", 0) == len(clean)
    assert rel.to_dict() == {k: int(v) for k, v in clean["relationship_type"].value_counts().items()} | \
        {k: 0 for k in {"B2B", "B2C", "B2G", "G2C"} - set(clean["relationship_type"])}
    years = profile[profile["variable"] == "experience_years"].iloc[0]
    assert years["n"] == clean["experience_years"].notna().sum()
    assert years["mean"] == pytest.approx(clean["experience_years"].mean(), rel=1e-12)
    assert years["sd"] == pytest.approx(clean["experience_years"].std(), rel=1e-12)
    assert "@" not in (tmp_path / "c" / "sample_profile.csv").read_text()
