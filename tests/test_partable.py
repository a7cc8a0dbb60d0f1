"""lavaan's parameter table (analysis/sem/partable.py) against lavaan 0.6-14's parTable(), row for row.

tests/reference/partable.R builds each case with ``cfa()``/``sem()`` on public data
(Holzinger & Swineford, Political Democracy, psych::bfi, and the default study's model on its
column names) and writes the table to partable.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.partable import PARTABLE_COLUMNS, lavaanify, variable_names
from instrument.lavaan import parse_model

REF = json.loads((Path(__file__).parent / "reference" / "partable.json").read_text())
CASES = REF["cases"]


def ours(case: dict) -> pd.DataFrame:
    opt = dict(case["options"])
    kwargs = {}
    for key in ("std_lv", "meanstructure", "fixed_x", "orthogonal", "estimator", "parameterization"):
        if key in opt:
            kwargs[key] = opt[key]
    if "group" in opt:
        kwargs["groups"] = case["groups"]
    for key in ("group_equal", "group_partial"):
        if key in opt:
            kwargs[key] = [opt[key]] if isinstance(opt[key], str) else opt[key]
    return lavaanify(case["model"], case["observed"], ordered=case["ordered"], **kwargs)


def reference(case: dict) -> pd.DataFrame:
    t = pd.DataFrame(case["table"])
    t["ustart"] = t["ustart"].astype(float)
    bounds = [c for c in ("lower", "upper") if c in t.columns]  # only when the syntax bounds a parameter
    for c in bounds:
        t[c] = [float(x) if x is not None else np.nan for x in t[c]]  # "-Inf"/"Inf" as text in the JSON
    return t[PARTABLE_COLUMNS + bounds]


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_matches_lavaan_row_for_row(name):
    """Every column of every row: a missing, extra, reordered or different row fails."""
    case = CASES[name]
    ref, got = reference(case), ours(case)
    assert list(got.columns) == list(ref.columns)
    assert len(got) == len(ref), f"{len(got)} rows, lavaan has {len(ref)}"
    for col in ref.columns:
        if col in ("ustart", "lower", "upper"):
            a, b = got[col].to_numpy(float), ref[col].to_numpy(float)
            same = (np.isnan(a) & np.isnan(b)) | (a == b)
            bad = np.flatnonzero(~same)
        else:
            bad = np.flatnonzero(got[col].astype(str).to_numpy() != ref[col].astype(str).to_numpy())
        assert bad.size == 0, (
            f"column {col}, rows {bad[:5].tolist()}:\nours\n{got.iloc[bad[:5]].to_string()}\nlavaan\n"
            f"{ref.iloc[bad[:5]].to_string()}")


def test_reference_covers_what_the_table_builds():
    """The cases hold every operator and every kind of row lavaan makes."""
    ops = set().union(*(set(c["table"]["op"]) for c in CASES.values()))
    assert ops >= {"=~", "<~", "~", "~~", "~1", "|", "~*~", "==", "<", ">", ":="}
    users = set().union(*(set(c["table"]["user"]) for c in CASES.values()))
    assert users == {0, 1, 2}
    assert any(1 in c["table"]["exo"] for c in CASES.values())
    assert REF["lavaan_version"] == "0.6.14"


def test_free_parameters_are_numbered_in_row_order():
    t = ours(CASES["poldem_labels_defined"])
    free = t.loc[t["free"] > 0, "free"].to_numpy()
    assert (free == np.arange(1, len(free) + 1)).all()
    # shared labels a, b, c: an == row per extra row, user 2, and the label kept
    eq = t[(t["op"] == "==") & (t["user"] == 2)]
    assert len(eq) == 3
    assert set(t.loc[t["rhs"].isin(["y2", "y6"]) & (t["op"] == "=~"), "label"]) == {"a"}


def test_observed_variables_must_be_in_the_data():
    with pytest.raises(InputError, match=r"line 1: observed variable\(s\) of the model not in the data: x3"):
        lavaanify("f =~ x1 + x2 + x3", ["x1", "x2"])


def test_group_vectors_must_match_the_groups():
    with pytest.raises(InputError, match=r"line 1: f =~ x2: the c\(...\) modifier gives 2 values but the model has "
                                         r"1 group"):
        lavaanify("f =~ x1 + c(1, NA)*x2 + x3")
    with pytest.raises(InputError, match="gives 2 values but the model has 3 group"):
        lavaanify("f =~ x1 + c(a, b)*x2 + x3", groups=["a", "b", "c"])


def test_options_are_checked():
    with pytest.raises(InputError, match="group_equal: unknown category 'loading'"):
        lavaanify("f =~ x1 + x2 + x3", groups=["a", "b"], group_equal=["loading"])
    with pytest.raises(InputError, match="group_partial: 'f=~x9' is not a parameter"):
        lavaanify("f =~ x1 + x2 + x3", groups=["a", "b"], group_equal=["loadings"], group_partial=["f =~ x9"])
    with pytest.raises(InputError, match="level: blocks"):
        lavaanify("level: 1\nf =~ x1 + x2\nlevel: 2\nf =~ x1 + x2")


def test_group_blocks_in_the_syntax():
    """``group:`` blocks give each group its own statements (lavaan's block syntax)."""
    t = lavaanify("group: 1\nf =~ x1 + a*x2 + x3\ngroup: 2\nf =~ x1 + b*x2 + x3\nx1 ~~ x3", groups=["1", "2"])
    g2 = t[t["group"] == 2]
    assert ("x1", "~~", "x3") in set(zip(g2["lhs"], g2["op"], g2["rhs"]))
    assert ("x1", "~~", "x3") not in set(zip(t.loc[t["group"] == 1, "lhs"], t.loc[t["group"] == 1, "op"],
                                             t.loc[t["group"] == 1, "rhs"]))
    assert list(t.loc[(t["rhs"] == "x2") & (t["op"] == "=~"), "label"]) == ["a", "b"]


def test_variable_kinds_of_a_mimic_model():
    m = parse_model(CASES["mimic"]["model"])
    v = variable_names([s.lhs for s in m.statements], [s.op for s in m.statements], [s.rhs for s in m.statements])
    assert v["ov_x"] == ["sex", "ageyr"]
    assert v["lv_y"] == ["visual", "textual", "speed"] and v["lv_x"] == []


def test_a_large_model_is_built():
    """A 600-item, 60-factor model with a structural chain (its cost: benchmarks/, not here)."""
    lines = [f"f{k} =~ " + " + ".join(f"x{k}_{j}" for j in range(10)) for k in range(60)]
    lines += [f"f{k} ~ f{k - 1}" for k in range(1, 60)]
    t = lavaanify("\n".join(lines))
    assert (t["op"] == "=~").sum() == 600


# --------------------------------------------------------------------------- the engine's input

ENGINE = json.loads((Path(__file__).parent / "reference" / "engine.json").read_text())
ENGINE_OPTIONS = {"hs3_stdlv": dict(std_lv=True), "hs3_mean": dict(meanstructure=True),
                  "mimic_mean": dict(meanstructure=True),
                  "mg": dict(groups=["Pasteur", "Grant-White"], group_equal=["loadings", "intercepts"]),
                  "mg_free": dict(groups=["Pasteur", "Grant-White"])}


@pytest.mark.parametrize("name", sorted(ENGINE["cases"]))
def test_the_engine_reference_tables_are_reproduced(name):
    """engine.R's lavaan tables (the engine core's input in tests/test_engine.py), from the syntax."""
    case = ENGINE["cases"][name]
    ref = pd.DataFrame(case["partable"])[PARTABLE_COLUMNS]
    got = lavaanify(case["model"], **ENGINE_OPTIONS.get(name, {}))
    assert len(got) == len(ref)
    for col in PARTABLE_COLUMNS:
        a, b = got[col].to_numpy(), ref[col].to_numpy()
        if col == "ustart":
            a, b = a.astype(float), b.astype(float)
            assert ((np.isnan(a) & np.isnan(b)) | (a == b)).all(), name
        else:
            assert (a.astype(str) == b.astype(str)).all(), (name, col)


@pytest.mark.parametrize("name", ["mimic", "constr", "mg"])
def test_the_engine_fits_our_table_as_lavaans(name):
    """Syntax -> lavaanify -> the engine core gives lavaan's estimates (test_engine's tolerances)."""
    from analysis.sem.engine import fit

    case = ENGINE["cases"][name]
    data = pd.read_csv(Path(__file__).parent / "reference" / ("hs_engine.csv" if case["data"] == "hs" else
                                                                "political_democracy.csv"))
    res = fit(lavaanify(case["model"], list(data.columns), **ENGINE_OPTIONS.get(name, {})), data,
              group=case["group"], group_labels=case["group_labels"] or None)
    ref = pd.DataFrame(case["parameters"])
    assert list(res.parameters["lhs"]) == list(ref["lhs"]) and list(res.parameters["op"]) == list(ref["op"])
    assert np.nanmax(np.abs(res.parameters["est"].to_numpy(float) - ref["est"].to_numpy(float))) < 3e-5


COMPOSITE = json.loads((Path(__file__).parent / "reference" / "engine_composite.json").read_text())["cases"]
COMPOSITE_DATA = {"hs": "hs_engine.csv", "pd": "political_democracy.csv"}


@pytest.mark.parametrize("name", sorted(COMPOSITE))
def test_composite_tables_match_lavaan_row_for_row(name):
    """Formative composites (engine_composite.R): the <~ rows free but the weight fixed in the
    syntax, the composite's disturbance variance fixed at 0, its indicators exo (fixed.x)."""
    case = COMPOSITE[name]
    observed = list(pd.read_csv(Path(__file__).parent / "reference" / COMPOSITE_DATA[case["data"]], nrows=1).columns)
    ref = pd.DataFrame(case["partable"])
    got = lavaanify(case["model"], observed)
    assert len(got) == len(ref)
    for col in ref.columns:
        if col == "ustart":
            a, b = got[col].to_numpy(float), ref[col].to_numpy(float)
            assert ((np.isnan(a) & np.isnan(b)) | (a == b)).all(), (name, col)
        else:
            assert list(got[col].astype(str)) == list(ref[col].astype(str)), (name, col)
    comp = got[(got["op"] == "~~") & (got["lhs"] == got["rhs"]) & got["lhs"].isin(got.loc[got["op"] == "<~", "lhs"])]
    assert len(comp) == 1 and comp["free"].iat[0] == 0 and comp["ustart"].iat[0] == 0
