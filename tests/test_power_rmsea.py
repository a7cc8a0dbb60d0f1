"""analysis.power against semTools 0.5-6 (tests/reference/power_rmsea.R writes the JSON)."""
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.errors import InputError
from analysis.power import rmsea_power, rmsea_power_nested, rmsea_sample_size

REF = json.loads((Path(__file__).parent / "reference" / "power_rmsea.json").read_text())


def test_semtools_documented_examples():
    ex = REF["examples"]
    assert rmsea_power(.05, .08, 20, 200) == pytest.approx(ex["power"], abs=1e-10)
    assert rmsea_sample_size(.05, .08, 20, power=.80) == ex["samplesize"]
    assert rmsea_power_nested(.06, .05, .08, .05, 22, 20, 200) == pytest.approx(ex["nested"], abs=1e-10)


def test_power_grid_matches_semtools():
    diffs = []
    for row in REF["grid"]:
        ours = rmsea_power(row["rmsea0"], row["rmseaA"], row["df"], row["n"], row["alpha"],
                           row["group"])
        diffs.append(abs(ours - row["power"]))
    assert len(diffs) == 1080
    assert max(diffs) < 1e-6


def test_power_vectorised_over_n_equals_scalar_calls():
    ns = [30, 100, 500]
    vec = rmsea_power(.05, .08, 24, ns)
    assert vec.shape == (3,)
    assert np.allclose(vec, [rmsea_power(.05, .08, 24, n) for n in ns], atol=0, rtol=1e-14)


def test_sample_size_grid_matches_semtools():
    """Equal to semTools except where its scan has holes, and ours is then the true smallest n.

    semTools scans n = 5..500 and then 505..1000, 1005..1500, ... (``n <- n + 500`` on the
    vector 5:500), so it can never return n = 501..504, 1001..1004, ...: there it returns the
    next n it tries. We find the smallest whole n by bisection.
    """
    holes = 0
    for row in REF["sizes"]:
        ours = rmsea_sample_size(row["rmsea0"], row["rmseaA"], row["df"], row["power"],
                                 row["alpha"], row["group"])
        if ours == row["n"]:
            continue
        total = round(ours * row["group"])
        assert total > 500 and total % 500 in (1, 2, 3, 4), row  # inside a hole of the scan
        assert round(row["n"] * row["group"]) == total + (5 - total % 500), row
        args = (row["rmsea0"], row["rmseaA"], row["df"])
        assert rmsea_power(*args, total, row["alpha"], row["group"]) > row["power"]
        assert rmsea_power(*args, total - 1, row["alpha"], row["group"]) <= row["power"]
        holes += 1
    assert len(REF["sizes"]) == 160 and holes == 2


def test_sample_size_is_the_first_n_past_the_target():
    n = rmsea_sample_size(0, .05, 10, power=.8)
    assert rmsea_power(0, .05, 10, n) > .8 >= rmsea_power(0, .05, 10, n - 1)


def test_nested_grid_matches_semtools():
    for row in REF["nested"]:
        ours = rmsea_power_nested(row["rmsea0A"], row["rmsea0B"], row["rmsea1A"], row["rmsea1B"],
                                  row["dfA"], row["dfB"], row["n"], row["alpha"], row["group"])
        assert ours == pytest.approx(row["power"], abs=1e-6), row


@pytest.mark.parametrize("args, word", [
    ((.05, .05, 10, 200), "must differ"),
    ((-.01, .05, 10, 200), "rmsea0"),
    ((.05, .08, 0, 200), "df"),
    ((.05, .08, 10, 1), "sample size"),
    ((.05, .08, 10, 200, 1.5), "alpha"),
])
def test_bad_input_is_an_input_error(args, word):
    with pytest.raises(InputError, match=word):
        rmsea_power(*args)


def test_nested_refuses_a_less_restricted_model_a():
    with pytest.raises(InputError, match="degrees of freedom"):
        rmsea_power_nested(0, 0, .05, .03, 20, 22, 200)
