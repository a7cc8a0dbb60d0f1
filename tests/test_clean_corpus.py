"""The malformed-input corpus (tests/corpus): one-line errors with exit 2, or the documented repair."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_corpus_is_complete():
    files = {p.name for p in CORPUS.iterdir() if not p.name.startswith("instrument")} \
        - {"expected.yaml", "make_corpus.py", "__pycache__"}
    assert files == set(EXPECTED)
    assert len(EXPECTED) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(run_cli, tmp_path, name):
    case = EXPECTED[name]
    out = tmp_path / "out"
    instrument = CORPUS / case.get("instrument", "instrument.yaml")
    code, stdout, stderr = run_cli("clean", "--instrument", instrument, "--data", CORPUS / name,
                                   "--out", out, *case.get("args", []))
    assert "Traceback" not in stdout + stderr
    assert code == case["exit"], stderr
    if code == 2:
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("Error: ")
        assert case["message"] in stderr
        assert not out.exists()
        return
    clean = pd.read_csv(out / "clean.csv")
    exclusions = pd.read_csv(out / "exclusions.csv")
    problems = pd.read_csv(out / "cell_problems.csv")
    rows_in = case.get("rows", 6)
    # The accounting rule: every input row is kept or excluded, never both, never lost.
    assert len(clean) + exclusions["row"].nunique() == rows_in
    assert set(clean["row"]) | set(exclusions["row"]) == set(range(1, rows_in + 1))
    assert len(clean) == case["kept"]
    if "excluded" in case:
        assert exclusions["row"].nunique() == case["excluded"]
    if "exclusion" in case:
        assert exclusions["value"].str.contains(case["exclusion"], regex=False).any()
    if "problems" in case:
        assert len(problems) == case["problems"]
    if "problem" in case:
        assert (problems["problem"] == case["problem"]).any()
    if "note" in case:
        assert case["note"] in stdout
    if "warning" in case:
        assert case["warning"] in stderr
    for problem, count in case.get("problem_count", {}).items():
        assert (problems["problem"] == problem).sum() == count, (problem, problems)
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    for token in case.get("absent", []):
        leaks = [n for n, text in written.items() if token in text] + \
            [s for s, text in (("stdout", stdout), ("stderr", stderr)) if token in text]
        assert leaks == [], (token, leaks)
    for col, cells in case.get("clean_values", {}).items():
        text = pd.read_csv(out / "clean.csv", dtype=str, keep_default_na=False)
        assert text[col].tolist() == cells
    if "json_warning" in case:
        metrics = json.loads(written["clean.json"])
        assert any(case["json_warning"] in w for w in metrics["warnings"]), metrics["warnings"]
    for s in case.get("screens", []):
        assert s in json.loads(written["clean.json"])["excluded_by_screen"]
    if case.get("no_formulas"):
        number = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
        for n in written:
            if n.endswith(".csv"):
                frame = pd.read_csv(out / n, dtype=str, keep_default_na=False, header=None)
                cells = [c for c in frame.to_numpy().ravel() if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
                assert all(number.match(c) for c in cells), (n, cells)
    # Items are recoded once: A_3 is reverse-keyed on 1..5.
    assert clean["reverse_recoded"].eq(1).all()
    assert "email" not in clean.columns and "ATT1" not in clean.columns
