"""The estimation options every model-fitting command shares (analysis/sem/options.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.options import Estimation, ordered_columns, parse_ordered


@pytest.mark.parametrize("value, expected", [
    (None, ()), (False, ()), ("", ()), ([], ()), (True, ("all",)), ("all", ("all",)), (" ALL ", ("all",)),
    ("A1, A2,A1", ("A1", "A2")), (["A2", "A1"], ("A2", "A1")),
])
def test_parse_ordered(value, expected):
    assert parse_ordered(value) == expected


@pytest.mark.parametrize("value", [3, ["A1", 2], {"A1": 1}, [""]])
def test_parse_ordered_refuses(value):
    with pytest.raises(InputError, match="cfa.ordered: 'all' or a list of column names"):
        parse_ordered(value, "cfa.ordered")


def test_estimation_defaults_and_normalisation():
    e = Estimation("mlr", "fiml")
    assert (e.estimator, e.missing, e.ordered, e.std_lv, e.ordinal) == ("MLR", "fiml", (), False, False)
    w = Estimation("WLSMV")  # no ordered items named: all of them, lavaan's ordered = TRUE
    assert w.ordered == ("all",) and w.ordinal
    assert Estimation("ULSMV", "pairwise", "A1,A2").ordered == ("A1", "A2")


@pytest.mark.parametrize("kwargs, message", [
    (dict(estimator="GLS"), "estimator: 'GLS' is not available; use ML, MLR, MLM, WLSMV, ULSMV"),
    (dict(estimator=None), "estimator: None is not available"),
    (dict(missing="ml"), "missing: 'ml' is not available; use listwise, fiml, pairwise"),
    (dict(estimator="MLM", missing="fiml"), "missing: 'fiml' is not available with estimator MLM"),
    (dict(estimator="WLSMV", missing="fiml"), "missing: 'fiml' is not available with estimator WLSMV"),
    (dict(estimator="ML", missing="pairwise"), "missing: 'pairwise' is for WLSMV and ULSMV"),
    (dict(estimator="MLR", ordered="all"), "ordered: ordered items need estimator WLSMV or ULSMV"),
    (dict(std_lv="yes"), "std_lv: true or false"),
])
def test_impossible_combinations_are_input_errors(kwargs, message):
    with pytest.raises(InputError) as err:
        Estimation(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ordered_columns_all_leaves_out_exogenous_covariates_and_latents():
    data = pd.DataFrame({c: [1, 2, 3] for c in ("y1", "y2", "y3", "z", "age")})
    model = "f =~ y1 + y2 + y3\nz ~ f + age\n"
    assert ordered_columns(("all",), model, data) == ["y1", "y2", "y3", "z"]
    assert ordered_columns(("y1", "y2"), model, data) == ["y1", "y2"]
    assert ordered_columns((), model, data) == []
    assert Estimation("ML").ordered_columns(model, data) is None
    assert Estimation("WLSMV").ordered_columns(model, data) == ["y1", "y2", "y3", "z"]
    with pytest.raises(InputError, match="ordered: column.*q9 not found in the data"):
        ordered_columns(("y1", "q9"), model, data)
