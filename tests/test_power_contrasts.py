"""H7 in the power stage: its measurement part (fit-index criteria: no power) and its directional
group contrasts (one-sided z tests, Holm-adjusted within the hypothesis)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.power import other_hypotheses
from pipeline.report.findings.power import power_section
from pipeline.report.model import Findings, StageOutputs, Table

ROOT = Path(__file__).resolve().parents[1]

H7 = {"H7": {"statement": "invariant; trust matters more in B2B and B2G", "source": "invariance",
             "groups": {"column": "relationship_type",
                        "expect": {"r2": {"larger_in": ["B2B", "B2G"], "than": ["B2C", "G2C"]},
                                   "r5": {"larger_in": ["B2C", "G2C"], "than": ["B2B", "B2G"]}}}}}


def test_h7_measurement_part_has_no_power_its_contrasts_are_tests():
    entry = other_hypotheses(H7, {}, None, None)["H7"]
    assert "no power" in entry["measurement"]
    assert [(c["parameter"], c["direction"], c["groups"], c["than"]) for c in entry["contrasts"]] == [
        ("r2", "larger_in", ["B2B", "B2G"], ["B2C", "G2C"]), ("r5", "larger_in", ["B2C", "G2C"], ["B2B", "B2G"])]
    metrics = {"target": 0.8, "alpha": 0.05, "missing": "fiml", "clean": True,
               "analytic": {"required_n": {}, "rows_invited": 4000, "rows_kept": 3500, "effective_share": 0.87,
                            "missing_cell_share": 0.01, "draws": 4000, "n_min": 50, "n_max": 20000},
               "other_hypotheses": {"H7": {**entry, "smallest_group": "G2C", "smallest_share": 0.1,
                                           "min_group_size": 100, "n_invited": 2273}}}
    sec = power_section(StageOutputs("power", None, metrics, {}, ()), Findings())
    note = next(b for b in sec.blocks if isinstance(b, Table) and b.key == "power_required_n").frame.iloc[0, 2]
    assert note.startswith("measurement invariance: decided by the invariance stage's fit-index criteria")
    assert "2,273 invited" in note
    assert "r2 larger in B2B, B2G than in B2C, G2C" in note and "one-sided z tests" in note and "Holm" in note


def test_contrast_power_of_two_groups_by_hand():
    """Group A (60% of N, b = .3, variance 2 per respondent) against B (40%, b = .1, variance 3):
    at N = 400, SE(d) = sqrt(2/240 + 3/160) = .16457, delta = .2/.16457 = 1.2153, one-sided power
    Phi(1.2153 - 1.6449) = .3338 (pnorm(0.2 / sqrt(2/240 + 3/160)) - qnorm(.95)) in R)."""
    import numpy as np

    from analysis.power import contrast_power

    res = contrast_power({"A": [0.3], "B": [0.1]}, {"A": [[2.0]], "B": [[3.0]]}, {"A": 0.6, "B": 0.4},
                         [(["A"], ["B"])], [400, 4000], draws=20000, seed=1)
    assert abs(res["parts"][0, 0] - 0.33376) < 1e-4
    assert abs(res["joint"][0] - 0.33376) < 0.01  # one part: Holm is the test itself (draws)
    assert abs(res["se1"][0, 0] - np.sqrt(2 / 0.6 + 3 / 0.4)) < 1e-12
    # the wrong direction has no power; a group below min_group_size (240 < 300 rows at N = 400) leaves a side empty
    assert contrast_power({"A": [0.1], "B": [0.3]}, {"A": [[2.0]], "B": [[3.0]]}, {"A": 0.6, "B": 0.4},
                          [(["A"], ["B"])], [400])["parts"][0, 0] < 0.01
    small = contrast_power({"A": [0.3], "B": [0.1]}, {"A": [[2.0]], "B": [[3.0]]}, {"A": 0.6, "B": 0.4},
                           [(["A"], ["B"])], [400, 4000], min_group_size=300)
    assert small["parts"][0, 0] == 0 and small["joint"][0] == 0
    assert abs(small["parts"][0, 1] - 0.98603) < 1e-4  # N = 4000: Phi(3.8432 - 1.6449)


def test_contrast_power_holm_of_two_independent_parts():
    """Two independent parts with the same delta: every part passes Holm when the smaller p is below
    alpha/2 and the larger below alpha: P = P(both z > z_.95) - P(both in (z_.95, z_.975))... =
    p1^2 - (p1 - p2)^2 with p1 = Phi(delta - z_.95), p2 = Phi(delta - z_.975)."""
    from scipy.stats import norm

    from analysis.power import contrast_power

    res = contrast_power({"A": [0.3, 0.3], "B": [0.0, 0.0]}, {"A": [[1.0, 0], [0, 1.0]], "B": [[1.0, 0], [0, 1.0]]},
                         {"A": 0.5, "B": 0.5}, [(["A"], ["B"]), (["A"], ["B"])], [100], draws=40000, seed=2)
    delta = 0.3 * 10 / 2
    p1, p2 = norm.cdf(delta - norm.ppf(0.95)), norm.cdf(delta - norm.ppf(0.975))
    assert abs(res["parts"][0, 0] - p1) < 1e-9
    assert abs(res["joint"][0] - (p1 ** 2 - (p1 - p2) ** 2)) < 0.01


@pytest.mark.slow
def test_group_information_against_each_groups_simulated_study():
    """group_information takes each group's information from its exact population moments and the
    loss to defects, screens, missing cells and 7-point answers from the whole study; the full
    analytic_power of each group's own simulated study (16,000 invited, its own screens; its own
    sampling error about 3% in z) gives z per root invited respondent of r2 and r5 within 8% (N
    within 16%): the approximation's error (the loss to missing cells grows with a path's size,
    which the whole study's r2 = r5 = .10 does not show)."""
    from dataclasses import replace

    import yaml

    from analysis.clean import parse_clean_params
    from analysis.montecarlo import (MonteCarloSettings, analytic_power, group_information, instrument_population,
                                     population_values)
    from analysis.simulate import parse_simulation_params
    from instrument import load_instrument

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    inst = load_instrument(ROOT / "instrument" / "sustainability_gap.yaml")
    mc = MonteCarloSettings(model=(ROOT / "instrument" / "sustainability_gap.lavaan").read_text(), hypotheses={},
                            missing="fiml")
    sim = parse_simulation_params(params["simulate"])
    screens = parse_clean_params(params["clean"])[0]
    whole = instrument_population(inst, sim, screens)
    truth = population_values(whole, mc)
    info = group_information(inst, sim, mc, ["r2", "r5"], analytic_power(whole, mc, [50, 100], 3, rows=8000,
                                                                         draws=100, truth=truth), truth)
    for group in ("B2B", "B2C"):
        spec = sim.groups["values"][group]
        structural = {o: {**p, **spec["structural"].get(o, {})} for o, p in sim.structural.items()}
        own = instrument_population(inst, replace(sim, structural=structural, groups={}), screens)
        paths = analytic_power(own, mc, [50, 100], 4, rows=16000, draws=100).paths.set_index("name")
        for k, name in enumerate(("r2", "r5")):
            value = info[group]["values"][k]
            if abs(value) < 0.05:
                continue
            z_info = value / np.sqrt(info[group]["covariance"][k, k])
            print(group, name, z_info, paths.loc[name, "z1"])
            assert abs(z_info / paths.loc[name, "z1"] - 1) < 0.08, (group, name, z_info, paths.loc[name, "z1"])
