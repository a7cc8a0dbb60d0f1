"""`gapscale init`: a study of your own instrument and export that `dvc repro` runs to a report
(issue 14, section 1).

The third-party study is tests/fixtures/bfi: psych::bfi's 25 IPIP personality items with gender,
education and age, as a Qualtrics export (make_export.R writes it) and an instrument and model
written for it. The README's bring-your-own commands are the ones the slow test runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.init import (CODE_STAMP, code_stamp, default_context, render_dvc, render_params)

from browser import chromium, screenshot

ROOT = Path(__file__).resolve().parents[1]
BFI = ROOT / "tests" / "fixtures" / "bfi"
INSTRUMENT, EXPORT, MODEL = BFI / "bfi.yaml", BFI / "export.csv", BFI / "bfi.lavaan"


def init(*args):
    return CliRunner().invoke(cli, ["init", *map(str, args)])


def readme_commands() -> list[str]:
    """The shell lines of the README's bring-your-own block (the ```sh block after its heading)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Bring your own instrument"):]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


# --------------------------------------------------------------------------- one template


def test_the_default_dvc_yaml_is_the_template_rendered():
    """The default study's dvc.yaml and the one init writes share one template (python -m pipeline.init
    prints the default's): an edit of one without the other fails here."""
    assert render_dvc(default_context()) == (ROOT / "dvc.yaml").read_text(encoding="utf-8"), (
        "dvc.yaml is pipeline/templates/study/dvc.yaml.jinja rendered: edit the template, then "
        "`python -m pipeline.init > dvc.yaml`")


def test_the_default_dvc_yaml_hard_codes_no_path_in_a_command():
    """Model, hypotheses, structural model and data: every path of a command is a ${var}."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        for token in cmd.split():
            if "/" in token or token.endswith((".yaml", ".lavaan", ".csv")):
                assert token.startswith("${") or token == "params.yaml", (name, token)


def test_the_study_params_are_the_default_study_params_without_the_simulation():
    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    study = yaml.safe_load(render_params("relationship_type", "relationship_type", seed=default["seed"]))
    fix = "pipeline/templates/study/params.yaml.jinja is the default params.yaml without simulate: edit both"
    assert set(default) - set(study) == {"simulate"} and set(study) <= set(default), fix
    assert study["sem"].pop("competing") == {}
    default["sem"].pop("competing")
    for section in study:
        assert study[section] == default[section], (section, fix)


# --------------------------------------------------------------------------- a study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    directory = tmp_path_factory.mktemp("init") / "bfi_study"
    result = init(directory, "--instrument", INSTRUMENT, "--data", EXPORT, "--model", MODEL)
    assert result.exit_code == 0, result.output
    return directory, result.output


def test_init_writes_a_ready_study(study):
    directory, output = study
    assert "grouping column: gender (female 1881, male 919)" in output
    assert "cd " in output and "dvc repro" in output
    for path in ("dvc.yaml", "params.yaml", "README.md", "instrument/bfi.yaml", "instrument/bfi.lavaan",
                 "instrument/bfi.hypotheses.yaml", "data/raw/export.csv", "data/raw/export.csv.dvc", ".dvc"):
        assert (directory / path).exists(), path
    assert (directory / "data/raw/export.csv").read_bytes() == EXPORT.read_bytes()
    assert (directory / "instrument/bfi.lavaan").read_text() == MODEL.read_text()
    pipeline = yaml.safe_load((directory / "dvc.yaml").read_text())
    stages = pipeline["stages"]
    assert list(stages) == ["code", "render", "clean", "split", "efa", "cfa", "reliability", "invariance", "sem",
                            "report"]
    text = (directory / "dvc.yaml").read_text()
    assert "simulate" not in stages and "truth" not in text.replace("simulation's truth", "")
    variables = {k: v for d in pipeline["vars"] for k, v in d.items()}
    assert variables["instrument"] == "instrument/bfi.yaml" and variables["model"] == "instrument/bfi.lavaan"
    assert variables["responses"] == "data/raw/export.csv" and variables["code"] == CODE_STAMP
    for name, stage in stages.items():  # every path through vars; every stage depends on the code stamp
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        for token in cmd.split():
            if "/" in token or token.endswith((".yaml", ".lavaan", ".csv", ".json")):
                assert token.startswith("${") or token == "params.yaml", (name, token)
        if name != "code":
            assert "${code}" in stage["deps"], name
    assert stages["code"]["always_changed"] is True
    params = yaml.safe_load((directory / "params.yaml").read_text())
    assert params["split"]["stratify"] == "gender" and params["invariance"]["group"] == "gender"
    assert params["sem"]["competing"] == {} and "simulate" not in params
    assert yaml.safe_load((directory / "instrument/bfi.hypotheses.yaml").read_text()) == {}
    hypotheses_comments = (directory / "instrument/bfi.hypotheses.yaml").read_text()
    assert "#   a   (C ~ N)" in hypotheses_comments and "#   ind   (defined" in hypotheses_comments


def test_the_study_params_pass_every_stage_check(study):
    from analysis.clean import parse_clean_params
    from pipeline import efa, invariance, sem

    params = yaml.safe_load((study[0] / "params.yaml").read_text())
    parse_clean_params(params["clean"])
    efa.settings(params, {})
    invariance.settings(params, {})
    sem.settings(params, {})


def test_dvc_reads_the_study(study):
    done = subprocess.run([sys.executable, "-m", "dvc", "stage", "list"], cwd=study[0], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        "code", "render", "clean", "split", "efa", "cfa", "reliability", "invariance",
        "sem", "report"]


def test_without_a_model_or_a_group_big_enough_the_stages_are_left_out(tmp_path):
    small = tmp_path / "small.csv"
    lines = EXPORT.read_text(encoding="utf-8").splitlines(keepends=True)
    small.write_text("".join(lines[:3 + 300]), encoding="utf-8")  # 3 header rows, 300 respondents
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", small)
    assert result.exit_code == 0, result.output
    assert "no grouping column fits" in result.output and "gender: female 176, male 124" in result.output
    assert "age: 18 28, 17 23" in result.output
    assert "the invariance stage is left out" in result.output and "the sem stage is left out" in result.output
    stages = yaml.safe_load((tmp_path / "s/dvc.yaml").read_text())["stages"]
    assert "invariance" not in stages and "sem" not in stages
    assert "--invariance" not in stages["report"]["cmd"] and "--sem" not in stages["report"]["cmd"]
    params = yaml.safe_load((tmp_path / "s/params.yaml").read_text())
    assert params["split"]["stratify"] is None


def repro(directory: Path) -> subprocess.CompletedProcess:
    """`dvc repro` in ``directory`` with this interpreter's `gapscale` first on the PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=directory, env=env, capture_output=True,
                          text=True)


def test_a_measurement_only_study_runs_to_a_report(tmp_path):
    """init, then `dvc repro` with no edit, on 300 respondents, no model and no group big enough
    (about 12 CPU-s): the report says which stages were left out; a second repro reruns only the
    code stamp."""
    small = tmp_path / "small.csv"
    lines = EXPORT.read_text(encoding="utf-8").splitlines(keepends=True)
    small.write_text("".join(lines[:3 + 300]), encoding="utf-8")
    assert init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", small).exit_code == 0
    done = repro(tmp_path / "s")
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert re.findall(r"Running stage '(\w+)'", done.stdout) == ["code", "render", "clean", "split", "efa", "cfa",
                                                                 "reliability", "report"]
    report = tmp_path / "s" / "data" / "processed" / "report"
    assert (report / "report.html").is_file() and (report / "report.json").is_file()
    assert "Big Five Inventory" in (report / "report.md").read_text() and "SIMULATED" not in (report / "report.md").read_text()
    assert not (report.parent / "invariance").exists() and not (report.parent / "sem").exists()
    cfa = json.loads((tmp_path / "s" / "data" / "processed" / "cfa" / "cfa.json").read_text())
    assert cfa["fit"]["df"] == 265  # 5 factors x 5 items: 325 moments - 60 parameters
    stamp = (tmp_path / "s" / CODE_STAMP).read_text()
    again = repro(tmp_path / "s")
    assert again.returncode == 0, again.stderr[-3000:]
    rerun_only_code(again.stdout, stamp, (tmp_path / "s" / CODE_STAMP).read_text())


def rerun_only_code(stdout: str, stamp_before: str, stamp_after: str) -> None:
    """A second `dvc repro` reruns only the code stage, unless gapscale's code changed in between
    (then the stamp differs and every stage reruns: no stale result is kept)."""
    ran = re.findall(r"Running stage '(\w+)'", stdout)
    if stamp_after == stamp_before:
        assert ran == ["code"], stdout[-3000:]
    else:  # the code changed under the test (another checkout's package on the path was edited)
        assert len(ran) > 1 and json.loads(stamp_after)["code_sha256"] != json.loads(stamp_before)["code_sha256"]


# --------------------------------------------------------------------------- refused inputs


def refused(result, *needles):
    """Exit status 2, no traceback, and one stderr line per problem naming what is given."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert any(all(n in line for n in needle) for line in result.output.splitlines()), (needle, result.output)


def test_a_missing_item_column_is_named_with_the_file(tmp_path):
    data = pd.read_csv(EXPORT, dtype=str, keep_default_na=False).drop(columns=["C3"])
    bad = tmp_path / "export.csv"
    data.to_csv(bad, index=False)
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", bad, "--model", MODEL)
    refused(result, (str(bad), "no column 'C3'", "construct C", str(INSTRUMENT)))
    assert not (tmp_path / "s").exists()  # nothing written


def test_a_bad_group_column_is_named(tmp_path):
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", EXPORT, "--group", "age")
    refused(result, ("--group age", str(EXPORT), "at least 2 groups with 100 or more respondents in the CFA half"))
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", EXPORT, "--group", "country")
    refused(result, ("--group country", "not a context question", str(INSTRUMENT), "gender, education, age"))
    assert not (tmp_path / "s").exists()


def test_a_model_variable_the_data_lack_is_named(tmp_path):
    model = tmp_path / "m.lavaan"
    model.write_text(MODEL.read_text() + "A ~ Age\nC ~ education\nN ~ StartDate\n")
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", EXPORT, "--model", model)
    refused(result, (str(model), "'Age'", "neither a latent variable"),
            (str(model), "'education'", "education_code"),
            (str(model), "'StartDate'", f"a column of {EXPORT}", "not an item or context question"))
    assert result.output.count("Error:") == 4  # three problems, one line each, and the summary


def test_every_problem_is_listed_at_once(tmp_path):
    instrument = tmp_path / "bfi.yaml"
    instrument.write_text(INSTRUMENT.read_text().replace('{id: A4, text: "Love children."}',
                                                         '{id: A4, text: "Love children.", reverse: "yes"}'))
    data = pd.read_csv(EXPORT, dtype=str, keep_default_na=False).drop(columns=["O5"])
    bad = tmp_path / "export.csv"
    data.to_csv(bad, index=False)
    model = tmp_path / "m.lavaan"
    model.write_text("A =~ A1 + A2 + \n")
    result = init(tmp_path / "s", "--instrument", instrument, "--data", bad, "--model", model)
    refused(result, (str(instrument), "constructs[0].items[3].reverse"), (str(model),))
    # the instrument is unusable, so the data are read but not matched against it
    assert "2 problem(s); no study written" in result.output


def test_an_unidentified_model_is_refused(tmp_path):
    model = tmp_path / "m.lavaan"
    model.write_text("A =~ A1 + A2\nC =~ C1 + C2 + C3 + C4 + C5\nA ~ C\nC ~ A\nA ~~ C\n")
    result = init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", EXPORT, "--model", model)
    refused(result, (str(model), "not identified"))


def test_a_directory_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    refused(init(tmp_path / "s", "--instrument", INSTRUMENT, "--data", EXPORT), (str(tmp_path / "s"), "not an empty"))
    refused(init(tmp_path / "t", "--instrument", INSTRUMENT), ("missing --data",))


# --------------------------------------------------------------------------- the code stamp


def test_the_code_stamp_is_stable_and_follows_the_code(tmp_path, monkeypatch):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert init("--code-stamp", first).exit_code == 0 and init("--code-stamp", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    stamp = json.loads(first.read_text())
    assert set(stamp) == {"gapscale", "code_sha256", "files"} and stamp["files"] > 50
    # a package edited (or a .pyc written) changes the stamp only in the first case
    package = tmp_path / "lib" / "fakepkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    monkeypatch.setattr("pipeline.init.CODE_PACKAGES", ("fakepkg",))
    before = code_stamp()["code_sha256"]
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    assert code_stamp()["code_sha256"] == before
    (package / "__init__.py").write_text("x = 2\n")
    assert code_stamp()["code_sha256"] != before
    refused(init("s", "--code-stamp", first), ("--code-stamp FILE is given alone",))


# --------------------------------------------------------------------------- the README's commands


def test_the_readme_bring_your_own_commands_are_init_then_repro():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert commands[0].startswith("gapscale init ") and "--instrument" in commands[0] and "--data" in commands[0]
    assert re.fullmatch(r"cd \S+ && dvc repro", commands[1])
    for path in re.findall(r"tests/fixtures/\S+", commands[0]):  # runnable from a clone as they are
        assert (ROOT / path).is_file(), path


@pytest.mark.slow
def test_the_readme_commands_run_a_third_party_study_to_a_report(tmp_path):
    """The README's two commands, verbatim, in a scratch directory holding the fixture: init, then
    `dvc repro` with no edit, to a report; a second `dvc repro` reruns nothing but the code stamp.
    (About 110 CPU-s: 2000 FIML bootstrap draws and 1000 HTMT draws on 1,346 respondents.)"""
    shutil.copytree(BFI, tmp_path / "tests" / "fixtures" / "bfi")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    runs = []
    for command in readme_commands():
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
        runs.append(done.stdout)
    directory = tmp_path / re.fullmatch(r"cd (\S+) && dvc repro", readme_commands()[1]).group(1)
    processed = directory / "data" / "processed"
    for path in ("report/report.html", "report/report.md", "report/report.json", "cfa/cfa.json", "sem/sem.json",
                 "invariance/invariance.json", "reliability/reliability.json", "efa/efa.json"):
        assert (processed / path).is_file(), path
    report = (processed / "report" / "report.md").read_text(encoding="utf-8")
    assert "Big Five Inventory" in report and "SIMULATED" not in report
    if chromium() is not None:  # the third-party study's report as a reader sees it (tests/artifacts/)
        screenshot(processed / "report" / "report.html", "third_party_report.png", tmp_path / "profile")
    sem = json.loads((processed / "sem" / "sem.json").read_text())
    assert sem["converged"] and sem["bootstrap"]["converged"] > 1900 and sem["fit"]["df"] > 0
    invariance = json.loads((processed / "invariance" / "invariance.json").read_text())
    assert invariance["group"] == "gender"
    cfa = json.loads((processed / "cfa" / "cfa.json").read_text())
    assert cfa["fit"]["ntotal"] == 1346 and 0 < cfa["fit"]["cfi"] < 1
    clean = json.loads((directory / "data" / "interim" / "clean" / "clean.json").read_text())
    assert clean["qualtrics"] and clean["rows_in"] == 2800 and "screens_vs_truth" not in clean
    stamp = (directory / CODE_STAMP).read_text()
    again = subprocess.run(["bash", "-c", readme_commands()[1]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun_only_code(again.stdout, stamp, (directory / CODE_STAMP).read_text())


def test_the_theory_of_the_default_instrument_is_in_the_project():
    """The README points to instrument/README.md, not to a file outside the repository; it cites
    both source papers."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme and "instrument/README.md" in readme
    theory = (ROOT / "instrument" / "README.md").read_text(encoding="utf-8")
    assert "Brown, D. M." in theory and "(2024)" in theory and "Järvi, H." in theory and "(2018)" in theory
    for construct in ("IMVI", "GAP5", "AINF", "BLAM", "VCC", "VCD"):
        assert f"`{construct}`" in theory, construct
    for path in ("sustainability_gap.lavaan", "sustainability_gap.hypotheses.yaml"):
        assert "shared/" not in (ROOT / "instrument" / path).read_text(encoding="utf-8"), path


@pytest.mark.parametrize("column", ["gender", "Gender group", "yes", "null", "2", None])
def test_the_grouping_column_reads_back_as_written(column):
    params = yaml.safe_load(render_params(column, column))
    assert params["split"]["stratify"] == column and params["invariance"]["group"] == column
