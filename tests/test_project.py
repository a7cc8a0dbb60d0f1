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


def expand(path: str) -> str:
    """Resolve dvc.yaml's ${vars} in a path."""
    for d in dvc_pipeline()["vars"]:
        for k, v in d.items():
            path = path.replace("${" + k + "}", v)
    return path


def test_stage_code_and_inputs_are_dependencies():
    for name, stage in dvc_pipeline()["stages"].items():
        deps = [expand(d) for d in stage["deps"]]
        for dep in deps:
            if not dep.startswith("data/"):  # data deps are written by earlier stages
                assert (ROOT / dep).exists(), (name, dep)
        assert f"pipeline/{'instrument' if name == 'render' else name}.py" in deps, name


def test_data_is_not_committed_to_git():
    gitignore = (ROOT / "data" / "raw" / ".gitignore").read_text().split()
    assert {"/responses.csv", "/truth.json", "/truth_respondents.csv"} <= set(gitignore)


def test_clean_and_split_stages_depend_on_their_parameters():
    from analysis.clean import ScreenParams, parse_screen_params

    stages = dvc_pipeline()["stages"]
    assert set(stages["clean"]["params"]) == {f"clean.{f.name}" for f in fields(ScreenParams)}
    assert set(stages["split"]["params"]) == {"seed", "split.share", "split.stratify"}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["clean"]) == {f.name for f in fields(ScreenParams)}
    parse_screen_params(params["clean"])


def test_stages_chain_in_order():
    """simulate -> clean -> split: each stage reads what the one before writes."""
    stages = dvc_pipeline()["stages"]
    outs = {name: {expand(o if isinstance(o, str) else next(iter(o))) for o in s.get("outs", [])}
            for name, s in stages.items()}
    deps = {name: {expand(d) for d in s["deps"]} for name, s in stages.items()}
    assert "data/raw/responses.csv" in outs["simulate"] & deps["clean"]
    assert "data/interim/clean/clean.csv" in outs["clean"] & deps["split"]


def test_efa_stage_depends_on_its_parameters():
    from pipeline.efa import DEFAULTS, settings

    stage = dvc_pipeline()["stages"]["efa"]
    assert set(stage["params"]) == {"seed"} | {f"efa.{k}" for k in DEFAULTS}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["efa"]) == set(DEFAULTS)
    settings(params, {})
    assert "data/processed/split/efa.csv" in {expand(d) for d in stage["deps"]}


def test_cfa_stage_depends_on_its_parameters():
    from pipeline.cfa import DEFAULTS, settings

    stage = dvc_pipeline()["stages"]["cfa"]
    assert set(stage["params"]) == {f"cfa.{k}" for k in DEFAULTS} | {"efa.drop_items"}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["cfa"]) == set(DEFAULTS)
    settings(params, {})
    assert "data/processed/split/cfa.csv" in {expand(d) for d in stage["deps"]}


def test_reliability_stage_depends_on_its_parameters():
    from pipeline.reliability import DEFAULTS, settings

    stage = dvc_pipeline()["stages"]["reliability"]
    assert set(stage["params"]) == {"seed", "cfa.missing", "efa.drop_items"} | {f"reliability.{k}" for k in DEFAULTS}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["reliability"]) == set(DEFAULTS)
    settings(params, {})
