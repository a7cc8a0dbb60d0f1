"""H7 in the power stage: its measurement part (fit-index criteria: no power) and its directional
group contrasts (one-sided z tests, Holm-adjusted within the hypothesis)."""
from __future__ import annotations

from pipeline.power import other_hypotheses
from pipeline.report.findings.power import power_section
from pipeline.report.model import Findings, StageOutputs, Table

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
