"""Project contract: README commands match CI, dvc.yaml tracks every parameter a stage reads."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from analysis.simulate import SimulationParams, parse_simulation_params

ROOT = Path(__file__).resolve().parents[1]


def ci_command(name: str) -> str:
    text = (ROOT / ".ci" / "run").read_text()
    return re.search(rf"^{name}='(.+)'$", text, flags=re.M).group(1)


def test_readme_holds_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    for name in ("RUN_CMD", "TEST_CMD"):
        assert ci_command(name) in readme, name
    assert "dvc repro" in ci_command("RUN_CMD") and "pytest" in ci_command("TEST_CMD")


def dvc_pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_simulate_stage_depends_on_every_simulation_parameter():
    stage = dvc_pipeline()["stages"]["simulate"]
    listed = set(stage["params"])
    assert listed == {"seed"} | {f"simulate.{f.name}" for f in fields(SimulationParams)}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["simulate"]) == {f.name for f in fields(SimulationParams)}
    parse_simulation_params(params["simulate"])


def test_stage_code_and_inputs_are_dependencies():
    pipeline = dvc_pipeline()
    variables = {k: v for d in pipeline["vars"] for k, v in d.items()}
    for name, stage in pipeline["stages"].items():
        deps = [d.replace("${instrument}", variables["instrument"]) for d in stage["deps"]]
        for dep in deps:
            assert (ROOT / dep).exists(), (name, dep)
        assert f"pipeline/{'instrument' if name == 'render' else name}.py" in deps, name


def test_data_is_not_committed_to_git():
    gitignore = (ROOT / "data" / "raw" / ".gitignore").read_text().split()
    assert {"/responses.csv", "/truth.json", "/truth_respondents.csv"} <= set(gitignore)
