"""Issue 11's identification criterion at the command line: the non-recursive unidentified model,
an under-identified CFA and a model with negative degrees of freedom are refused by ``gapscale cfa``
and ``gapscale sem`` with exit status 2 and one line naming the parameters involved (the unified
engine's check, analysis.sem.api.refuse_unidentified, before the fit)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REF = Path(__file__).parent / "reference"

NONRECURSIVE = "A ~ B\nB ~ A\nA ~~ B\n"
UNDER_CFA = "f =~ x1 + x2\ng =~ x3 + x4 + x5\nf ~~ 0*g\n"  # a two-indicator factor on its own
NEGATIVE_DF = "f =~ x1 + x2 + x3\nx1 ~~ x2\nx2 ~~ x3\nx1 ~~ x3\n"  # 9 parameters, 6 moments


@pytest.fixture()
def hs(tmp_path):
    data = pd.read_csv(REF / "hs_full.csv")
    data["A"], data["B"] = data["x1"], data["x2"]
    path = tmp_path / "hs.csv"
    data.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["cfa", "sem"])
@pytest.mark.parametrize("model, names", [
    (NONRECURSIVE, ["A ~ B", "B ~ A", "A ~~ B"]),
    (UNDER_CFA, ["f =~ x2", "f ~~ f"]),
    (NEGATIVE_DF, ["degrees of freedom -3", "x1 ~~ x2"]),
])
def test_unidentified_models_exit_2_naming_the_parameters(run_cli, tmp_path, hs, command, model, names):
    path = tmp_path / "m.lavaan"
    path.write_text(model)
    code, out, err = run_cli(command, "--data", hs, "--model", path, "--out", tmp_path / "o")
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "the model is not identified" in line and str(path) in line
    for name in names:
        assert name in line, (name, line)
    assert not (tmp_path / "o" / f"{command}.json").exists()


def test_an_identified_model_still_runs(run_cli, tmp_path, hs):
    path = tmp_path / "m.lavaan"
    path.write_text("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n")
    code, out, err = run_cli("cfa", "--data", hs, "--model", path, "--out", tmp_path / "o")
    assert code == 0, err
