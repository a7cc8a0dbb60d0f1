"""Answers outside the scale (scale.outside) and organisations (cluster_column) through validate and clean."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.clean import cluster_pseudonyms, outside_answers, parse_screen_params, prepare, screen
from instrument import parse_instrument
from instrument.schema import InstrumentError

INSTRUMENT = """\
name: Outside and clusters
scale:
  type: likert
  min: 1
  max: 5
  labels: {1: Disagree, 5: Agree}
  outside:
    - {code: 8, label: Not applicable, items: [A_2]}
    - {code: 9, label: "Don't know"}
id_column: id
cluster_column: Organisation
constructs:
  - id: A
    items: [{id: A_1}, {id: A_2}, {id: A_3}, {id: A_4, reverse: true}]
"""

ROWS = [  # id, Organisation, A_1..A_4
    ("r1", "ACME Ltd", "1", "8", "3", "4"),      # N/A on A_2: offered
    ("r2", " acme  ltd", "8", "2", "3", "4"),    # 8 on A_1: not offered there, outside the scale (logged)
    ("r3", "Beta plc", "Don't know", "9", "9", "2"),  # 3 of 4 don't know: not excluded by max_missing_share
    ("r4", "Beta plc", "", "", "", "5"),          # 3 of 4 skipped: excluded
    ("r5", "", "2", "not applicable", "4", "9"),  # the label works too; no organisation
    ("r6", "Gamma", "5", "5", "5", "1"),
]


def _cells():
    return pd.DataFrame(ROWS, columns=["id", "Organisation", "A_1", "A_2", "A_3", "A_4"]).replace({"": None})


def test_outside_codes_become_missing_counted_not_logged():
    inst = parse_instrument(__import__("yaml").safe_load(INSTRUMENT))
    assert [o.name for o in inst.outside_options] == ["not_applicable", "dont_know"]
    assert [o.name for o in inst.item("A_1").outside] == ["dont_know"]
    prepared = prepare(_cells(), inst, key=b"k" * 16)
    d = prepared.data
    assert d["A_2"].isna().tolist() == [True, False, True, True, True, False]
    # only the 8 on A_1 (not offered there) is a problem; the offered answers are not
    logged = prepared.problems
    assert logged[["row", "column", "value"]].values.tolist() == [[5, "Organisation", ""], [2, "A_1", "8"]]
    assert "outside the scale" in logged["problem"].iat[1] and "empty organisation" in logged["problem"].iat[0]
    result = screen(prepared, inst, parse_screen_params({"max_missing_share": 0.5, "longstring_share": None,
                                                         "irv_min": None, "mahalanobis_alpha": None,
                                                         "speeder_fraction": None}))
    assert result.clean["row"].tolist() == [1, 2, 3, 5, 6]  # r4 skipped 3 of 4: out; r3 said don't know: kept
    assert result.exclusions["screen"].tolist() == ["missing"]
    table = outside_answers(result.clean, result.outside, inst)
    assert list(table.columns) == ["item", "n", "n_not_applicable", "n_dont_know", "n_outside", "n_skipped", "n_missing"]
    want = {"A_1": [5, pd.NA, 1, 1, 1, 2], "A_2": [5, 2, 1, 3, 0, 3], "A_3": [5, pd.NA, 1, 1, 0, 1],
            "A_4": [5, pd.NA, 1, 1, 0, 1]}
    for item, row in want.items():
        got = table.set_index("item").loc[item].tolist()
        assert [pd.isna(a) if pd.isna(b) else a == b for a, b in zip(got, row)] == [True] * 6, (item, got)


def test_organisations_pseudonymised_and_grouped():
    assert cluster_pseudonyms(["ACME Ltd", " acme  ltd", None, "Beta"], None).tolist() == \
        ["cluster1", "cluster1", None, "cluster2"]
    keyed = cluster_pseudonyms(["ACME Ltd", "acme ltd", "Beta"], b"k" * 16)
    assert keyed[0] == keyed[1] != keyed[2] and keyed[0].startswith("c") and len(keyed[0]) == 17
    # HMAC-SHA256(key, "cluster:acme ltd"): printf 'cluster:acme ltd' | openssl dgst -sha256 -hmac kkkkkkkkkkkkkkkk
    assert keyed[0] == "c" + __import__("hmac").new(b"k" * 16, b"cluster:acme ltd", "sha256").hexdigest()[:16]


def test_clean_stage_writes_counts_and_design_effect_without_names(run_cli, write_yaml, tmp_path):
    inst = write_yaml(INSTRUMENT)
    data = tmp_path / "data.csv"
    _cells().to_csv(data, index=False)
    params = write_yaml("clean: {longstring_share: null, irv_min: null, mahalanobis_alpha: null, speeder_fraction: null}\n",
                        "params.yaml")
    code, out, err = run_cli("clean", "--instrument", inst, "--data", data, "--params", params, "--out", tmp_path / "clean")
    assert code == 0, err
    written = "".join(p.read_text() for p in (tmp_path / "clean").iterdir()) + out + err
    assert "ACME" not in written and "acme" not in written and "Beta" not in written and "Gamma" not in written
    clean = pd.read_csv(tmp_path / "clean" / "clean.csv")
    assert clean["cluster_id"].tolist()[:2] == ["cluster1", "cluster1"] and clean["cluster_id"].isna().sum() == 1
    counts = pd.read_csv(tmp_path / "clean" / "outside_answers.csv")
    assert counts["n_dont_know"].sum() == 4 and counts["n_not_applicable"].sum() == 2
    metrics = json.loads((tmp_path / "clean" / "clean.json").read_text())
    assert metrics["outside_answers"]["dont_know"] == {"code": 9, "label": "Don't know", "n": 4, "items": 4}
    assert metrics["clusters"]["n_clusters"] == 3 and metrics["clusters"]["without_cluster"] == 1
    deff = pd.read_csv(tmp_path / "clean" / "design_effect.csv")
    assert deff["variable"].tolist() == ["A"] and deff["n"].iat[0] == 4 and deff["n_clusters"].iat[0] == 3
    respondents = pd.read_csv(tmp_path / "clean" / "missing_respondents.csv")
    assert respondents["n_outside"].tolist() == [1, 0, 3, 2, 0]


@pytest.mark.parametrize("change, message", [
    ("- {code: 9, label: \"Don't know\"}", "scale.outside[1].code: 4 is a value of the scale (1..5)"),
    ("items: [A_2]", "scale.outside[0].items[0]: 'B_9' is not an item id"),
    ("label: Not applicable", "scale.outside[0].label: 'agree' is also the label of scale value 5"),
])
def test_bad_outside_options_are_one_line_errors(run_cli, write_yaml, change, message):
    bad = INSTRUMENT.replace(change, {
        "- {code: 9, label: \"Don't know\"}": "- {code: 4, label: \"Don't know\"}",
        "items: [A_2]": "items: [B_9]",
        "label: Not applicable": "label: agree"}[change])
    code, out, err = run_cli("instrument", "validate", write_yaml(bad))
    assert code == 2 and message in err and "Traceback" not in err
    with pytest.raises(InstrumentError):
        parse_instrument(__import__("yaml").safe_load(bad))


def test_missing_cluster_column_is_a_one_line_error(run_cli, write_yaml, tmp_path):
    data = tmp_path / "data.csv"
    _cells().drop(columns=["Organisation"]).to_csv(data, index=False)
    code, out, err = run_cli("clean", "--instrument", write_yaml(INSTRUMENT), "--data", data, "--out", tmp_path / "c")
    assert code == 2 and "cluster column 'Organisation'" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- the report


def _clean_outputs(metrics: dict, tables: dict):
    from pipeline.report.model import StageOutputs
    return StageOutputs("clean", None, metrics, tables, ())


def test_report_counts_outside_answers_and_flags_large_design_effects():
    from pipeline.report.findings.sample import design_effect_blocks, outside_blocks
    from pipeline.report.model import Findings, Table
    options = {"not_applicable": {"code": 8, "label": "Not applicable", "n": 30, "items": 1},
               "dont_know": {"code": 9, "label": "Don't know", "n": 12, "items": 3}}
    table = pd.DataFrame({"item": ["A_1", "A_2", "A_3"], "n": [100, 100, 100],
                          "n_not_applicable": pd.array([pd.NA, 30, pd.NA], dtype="Int64"),
                          "n_dont_know": [1, 10, 1], "n_outside": [1, 40, 1], "n_skipped": [0, 2, 5],
                          "n_missing": [1, 42, 6]})
    findings = Findings()
    blocks = outside_blocks(_clean_outputs({"outside_answers": options}, {"outside_answers.csv": table}), findings)
    assert "“Not applicable” (code 8) was offered on 1 item and chosen 30 times (30.0% of the respondents)" in blocks[0]
    assert "chosen 12 times (1.0% to 10.0% of the respondents per item)" in blocks[0]
    shown = blocks[1]
    assert isinstance(shown, Table) and shown.frame["Item"].tolist() == ["A_2"]  # A_1, A_3: 1% < 2%
    assert shown.frame.iloc[0].tolist() == ["A_2", "30", "10", "2", "42.0%"]
    deff = pd.DataFrame({"variable": ["A"], "n": [100], "n_clusters": [10], "mean_cluster_size": [10.0],
                         "ms_between": [3.0], "ms_within": [1.0], "icc1": [0.2], "design_effect": [2.8],
                         "n_effective": [35.7]})
    clusters = {"column": "org_id", "n_clusters": 10, "without_cluster": 0, "mean_cluster_size": 10.0,
                "largest_cluster": 14, "max_design_effect": 2.8}
    findings = Findings()
    text, t = design_effect_blocks(_clean_outputs({"clusters": clusters}, {"design_effect.csv": deff}), findings)
    assert "The largest design effect is 2.80" in text and "cluster-robust standard errors" in text
    assert t.frame.iloc[0].tolist() == ["A", "10", ".200", "2.80", "36"]
    assert findings.not_held and "2.80" in findings.not_held[0]
    assert design_effect_blocks(_clean_outputs({"clusters": None}, {}), Findings()) == []


def test_outside_option_scope_and_qualtrics_codes():
    import yaml
    doc = yaml.safe_load(INSTRUMENT)
    doc["scale"]["outside"] = [{"code": -99, "label": "Not applicable", "items": ["A_2"]}]
    doc["constructs"][0]["items"][1]["scale"] = {"type": "likert", "min": 1, "max": 5}
    with pytest.raises(InstrumentError, match=r"scale.outside\[0\].items\[0\]: item 'A_2' has a scale of its own"):
        parse_instrument(doc)
    del doc["constructs"][0]["items"][1]["scale"]
    inst = parse_instrument(doc)
    assert [o.code for o in inst.item("A_2").outside] == [-99] and inst.item("A_1").outside == ()
    cells = _cells().assign(A_2=["-99", "2", "3", "-99", "1", "5"])
    prepared = prepare(cells, inst)
    assert (prepared.outside["A_2"] > 0).tolist() == [True, False, False, True, False, False]
    assert prepared.data["A_2"].isna().tolist() == [True, False, False, True, False, False]
