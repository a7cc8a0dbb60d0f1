"""Project contract: README commands match CI, dvc.yaml tracks every parameter a stage reads."""
from __future__ import annotations

import functools
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


@functools.cache
def dvc_vars() -> tuple:
    return tuple(dvc_pipeline()["vars"])


def expand(path: str) -> str:
    """Resolve dvc.yaml's ${vars} in a path."""
    for d in dvc_vars():
        for k, v in d.items():
            path = path.replace("${" + k + "}", v)
    return path


def test_stage_code_and_inputs_are_dependencies():
    for name, stage in dvc_pipeline()["stages"].items():
        deps = [expand(d) for d in stage["deps"]]
        for dep in deps:
            if not dep.startswith("data/"):  # data deps are written by earlier stages
                assert (ROOT / dep).exists(), (name, dep)
        assert covered(stage_module(name), deps), name


PACKAGES = ("analysis", "instrument", "pipeline")


def stage_module(stage: str) -> str:
    """The module a stage's command runs (``gapscale instrument render`` -> pipeline/instrument.py)."""
    name = "instrument" if stage == "render" else stage
    return f"pipeline/{name}.py" if (ROOT / "pipeline" / f"{name}.py").is_file() else f"pipeline/{name}/__init__.py"


def module_file(module: str) -> str | None:
    """The project file of a dotted module name (``analysis.sem`` -> analysis/sem/__init__.py), or None
    for a module outside the project (numpy, the standard library) or a namespace package."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(ROOT).as_posix()
    return None


@functools.cache
def imported_modules(path: str, top_level_only: bool = False) -> frozenset[str]:
    """Every module a project file imports, at the top or inside a function (lazy imports count: the
    stage runs them), with each package on the way (importing a.b.c runs a/__init__ and a/b/__init__)."""
    import ast

    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    package = path[:-3].replace("/", ".").rsplit(".", 1)[0]  # a/b/c.py and a/b/__init__.py: package a.b
    names: set[str] = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import submodule`
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    return frozenset(out)


@functools.cache
def import_closure(start: str) -> frozenset[str]:
    """The project files ``start`` runs: itself and, transitively, every project module it imports."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(f for f in map(module_file, imported_modules(path)) if f is not None and f not in seen)
    return frozenset(seen)


def covered(path: str, deps: list[str]) -> bool:
    """True when ``path`` is one of ``deps`` or inside a directory among them."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def stage_closure(name: str) -> frozenset[str]:
    """What ``gapscale <stage>`` runs: the CLI module with its module-level imports (each command
    imports its stage module inside its function) and the stage module's whole closure."""
    cli_imports = {f for f in map(module_file, imported_modules("pipeline/cli.py", True)) if f is not None}
    return frozenset({"pipeline/cli.py"}.union(*(import_closure(f) for f in cli_imports | {stage_module(name)})))


def uncovered_code(stage: dict, name: str) -> list[str]:
    deps = [expand(d) for d in stage["deps"]]
    return sorted(f for f in stage_closure(name) if not covered(f, deps))


def test_every_stage_depends_on_all_the_code_it_runs():
    """Each stage's deps cover the import closure of the CLI and its stage module, so an edit to any
    project file a stage runs makes `dvc repro` rerun it (issue 12: 37 files were missing)."""
    stages = dvc_pipeline()["stages"]
    for name, stage in stages.items():
        missing = uncovered_code(stage, name)
        assert missing == [], f"stage {name} runs {len(missing)} project file(s) that are not its deps: {missing}"
    # the walker itself finds what a stage imports, lazily or not
    cfa = import_closure(stage_module("cfa"))
    assert {"analysis/sem/ordinal.py", "analysis/missing.py", "instrument/lavaan.py", "analysis/sem/__init__.py",
            "analysis/errors.py", "pipeline/io.py"} <= cfa
    assert "analysis/polychoric.py" in import_closure(stage_module("efa"))  # imported inside a function


def test_the_deps_check_fails_when_a_module_is_not_a_dep():
    """Remove the analysis package from the cfa stage's deps, or list files by hand as before: the
    check names the files the stage runs without depending on them."""
    stage = dict(dvc_pipeline()["stages"]["cfa"])
    stage["deps"] = [d for d in stage["deps"] if d != "analysis"]
    missing = uncovered_code(stage, "cfa")
    assert {"analysis/sem/engine.py", "analysis/polychoric.py", "analysis/errors.py"} <= set(missing)
    stage["deps"] += ["analysis/sem", "analysis/errors.py"]
    assert "analysis/polychoric.py" in uncovered_code(stage, "cfa") and "analysis/sem/engine.py" not in uncovered_code(
        stage, "cfa")


def test_data_is_not_committed_to_git():
    gitignore = (ROOT / "data" / "raw" / ".gitignore").read_text().split()
    assert {"/responses.csv", "/truth.json", "/truth_respondents.csv"} <= set(gitignore)


def test_clean_and_split_stages_depend_on_their_parameters():
    from analysis.clean import IdParams, ScreenParams, parse_clean_params

    keys = {f.name for f in fields(ScreenParams)} | {f.name for f in fields(IdParams)}
    stages = dvc_pipeline()["stages"]
    assert set(stages["clean"]["params"]) == {f"clean.{k}" for k in keys}
    assert set(stages["split"]["params"]) == {"seed", "split.share", "split.stratify"}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["clean"]) == keys
    parse_clean_params(params["clean"])


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


def test_every_csv_is_written_by_the_one_neutralising_writer():
    """Formula cells are neutralised in every CSV written: only analysis/csvfile.py calls
    DataFrame.to_csv; stages and to_files methods go through its write_csv."""
    callers = [str(p.relative_to(ROOT)) for pkg in ("analysis", "instrument", "pipeline")
               for p in (ROOT / pkg).rglob("*.py") if ".to_csv(" in p.read_text(encoding="utf-8")]
    assert callers == ["analysis/csvfile.py"]
