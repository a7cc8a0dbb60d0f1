"""gapscale's numbers where a Python package computes the same thing: Holm's adjustment against
R's p.adjust (tests/reference/p_adjust.R) and statsmodels' multipletests (a test-only dependency:
gapscale computes the adjustment itself, the import of statsmodels cost more than the arithmetic),
coefficient alpha is cross-checked against pingouin's cronbach_alpha (a test-only dependency).

Largest differences seen: Holm vs p.adjust 1e-16 (exact arithmetic on the same products);
alpha vs pingouin 1e-15 (pingouin's nan_policy="pairwise" is psych's pairwise covariance); the
Feldt limits vs pingouin's 5e-4 (pingouin rounds its interval to three decimals).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest

from analysis import reliability as rel
from analysis.invariance import holm

REF = Path(__file__).parent / "reference"
P_ADJUST = json.loads((REF / "p_adjust.json").read_text())


def _array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.mark.parametrize("case", [k for k in P_ADJUST if k != "versions"])
def test_holm_matches_r_p_adjust(case):
    got = holm(_array(P_ADJUST[case]["p"]))
    want = _array(P_ADJUST[case]["holm"])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=0, atol=1e-15)


def test_holm_is_the_step_down_rule():
    """m p-values times m, m-1, ... in ascending order, made monotone and capped at 1; no tests, none."""
    p = np.array([0.04, 0.001, 0.03, 0.2])
    np.testing.assert_allclose(holm(p), [0.09, 0.004, 0.09, 0.2], rtol=0, atol=1e-15)
    assert holm([]).shape == (0,)


def test_holm_agrees_with_statsmodels():
    """Random p values with ties, zeros, ones and NaNs: the same numbers as multipletests."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 40):
        p = rng.uniform(0, 0.3, m)
        p[rng.integers(0, m, m // 3)] = p[0]  # ties
        if m > 4:
            p[[1, 2]] = [0.0, 1.0]
        got = holm(np.append(p, np.nan))
        assert np.isnan(got[-1])
        np.testing.assert_allclose(got[:-1], multipletests(p, method="holm")[1], rtol=0, atol=1e-15)


HS = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
BFI = {c: [f"{c}{k}" for k in range(1, 6)] for c in "ACENO"}


@pytest.mark.parametrize("name", ["hs", "bfi"])
def test_alpha_agrees_with_pingouin(name):
    """Raw alpha and its Feldt interval beside pingouin.cronbach_alpha on the same columns (bfi
    with NAs: pingouin's pairwise policy is psych's; items as given, not reverse-keyed)."""
    data = pd.read_csv(REF / ("holzinger_swineford.csv" if name == "hs" else "bfi_600.csv"))
    constructs = HS if name == "hs" else BFI
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = rel.cronbach_alpha(data, constructs).set_index("construct")
    # bfi's negatively keyed items (A1, C4, C5, E1, E2, O2, O5) are flagged, and nothing else is
    assert [w.category for w in caught] == [rel.ReverseKeyWarning] * len(caught) and bool(caught) == (name == "bfi")
    for construct, items in constructs.items():
        alpha, ci = pingouin.cronbach_alpha(data[items], nan_policy="pairwise", ci=0.95)
        assert ours.loc[construct, "raw_alpha"] == pytest.approx(alpha, abs=1e-12), construct
        np.testing.assert_allclose(ours.loc[construct, ["feldt_lower", "feldt_upper"]].to_numpy(dtype=float), ci,
                                   rtol=0, atol=5.0001e-4)
