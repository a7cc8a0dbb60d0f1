"""The command line: help everywhere, and bad input gives one line and exit status 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import CONTINUOUS, MINIMAL_LIKERT


@pytest.mark.parametrize("args", [[], ["--help"], ["instrument", "--help"], ["instrument", "validate", "--help"],
                                  ["instrument", "render", "--help"], ["simulate", "--help"]])
def test_help_everywhere(run_cli, args):
    code, out, err = run_cli(*args)
    assert code == 0 and "Usage: gapscale" in out and err == ""


def test_validate_lists_every_problem_and_exits_2(run_cli, write_yaml):
    path = write_yaml(MINIMAL_LIKERT.replace("reverse: false", "reverse: maybe").replace("min: 1", "min: 8"))
    code, out, err = run_cli("instrument", "validate", path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines == [
        f"{path}: scale: min (8) must be less than max (7)",
        f"{path}: scale.labels.1: value 1 is outside the scale 8..7; an answer outside the scale (not applicable, don't know) goes under outside",
        f"{path}: scale.labels.7: value 7 is outside the scale 8..7; an answer outside the scale (not applicable, don't know) goes under outside",
        f"{path}: constructs[0].items[0].reverse: expected true or false, got text 'maybe'",
        f"Error: {path}: 4 problem(s); the instrument is not valid",
    ]


def test_validate_reports_a_yaml_syntax_error_with_its_line(run_cli, write_yaml):
    path = write_yaml("name: [unclosed\n")
    code, out, err = run_cli("instrument", "validate", path)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0].startswith(f"{path}: line 2, column 1: YAML syntax error")


def test_validate_accepts_valid_instruments(run_cli, write_yaml):
    code, out, _ = run_cli("instrument", "validate", "instrument/sustainability_gap.yaml")
    assert code == 0 and "20 constructs, 81 items (0 reverse-keyed)" in out
    code, out, _ = run_cli("instrument", "validate", write_yaml(CONTINUOUS))
    assert code == 0 and "3 constructs, 10 items" in out


def test_render_writes_the_four_files(run_cli, tmp_path):
    code, out, _ = run_cli("instrument", "render", "instrument/sustainability_gap.yaml", "--out", tmp_path / "r")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "codebook.csv", "qualtrics.txt", "questionnaire.html", "questionnaire.md"]


BAD_INPUTS = {
    "validate: missing file": (["instrument", "validate", "{tmp}/nope.yaml"], "does not exist"),
    "render: invalid instrument": (["instrument", "render", "{invalid}", "--out", "{tmp}/r"],
                                   "invalid instrument: scale: min (8) must be less than max (7)"),
    "render: out is a file": (["instrument", "render", "instrument/sustainability_gap.yaml", "--out", "{file}"],
                              "is a file"),
    "render: no --out": (["instrument", "render", "instrument/sustainability_gap.yaml"], "Missing option '--out'"),
    "simulate: missing instrument": (["simulate", "--instrument", "{tmp}/nope.yaml", "--out", "{tmp}/s"],
                                     "does not exist"),
    "simulate: invalid instrument": (["simulate", "--instrument", "{invalid}", "--out", "{tmp}/s"],
                                     "invalid instrument"),
    "simulate: params not YAML": (["simulate", "--params", "{bad_yaml}", "--out", "{tmp}/s"], "YAML syntax error"),
    "simulate: params not a mapping": (["simulate", "--params", "{list_yaml}", "--out", "{tmp}/s"],
                                       "expected a mapping of parameters"),
    "simulate: bad rate": (["simulate", "--params", "{bad_rate}", "--out", "{tmp}/s"],
                           "simulate.defects.speeder: a rate must be in [0, 1), got 1.5"),
    "simulate: unknown construct": (["simulate", "--params", "{bad_path}", "--out", "{tmp}/s"],
                                    "simulate.structural.GAP2: 'GAPP1' is not a construct"),
    "simulate: bad seed in params": (["simulate", "--params", "{bad_seed}", "--out", "{tmp}/s"],
                                     "seed: need a whole number >= 0, got 'abc'"),
    "simulate: n too small": (["simulate", "--n", "1", "--out", "{tmp}/s"], "1 is not in the range x>=2"),
    "simulate: out is a file": (["simulate", "--out", "{file}"], "is a file"),
    "unknown command": (["analyse"], "No such command 'analyse'"),
    "unknown option": (["simulate", "--out", "{tmp}/s", "--colour", "red"], "No such option '--colour'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, write_yaml, case):
    args, message = BAD_INPUTS[case]
    paths = {
        "tmp": tmp_path,
        "bad_yaml": write_yaml("name: [unclosed\n", "bad.yaml"),
        "list_yaml": write_yaml("- 1\n- 2\n", "list.yaml"),
        "invalid": write_yaml(MINIMAL_LIKERT.replace("min: 1", "min: 8"), "invalid.yaml"),
        "file": write_yaml("x", "a_file"),
        "bad_rate": write_yaml("simulate: {defects: {speeder: 1.5}}\n", "rate.yaml"),
        "bad_path": write_yaml("simulate: {structural: {GAP2: {GAPP1: 0.3}}}\n", "path.yaml"),
        "bad_seed": write_yaml("seed: abc\n", "seed.yaml"),
    }
    code, out, err = run_cli(*[a.format(**paths) for a in args])
    assert code == 2
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err
    assert message in err


def test_console_script_never_shows_a_traceback(tmp_path):
    """The installed entry point, as a user runs it, on an instrument with a YAML error."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nconstructs: [\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "simulate", "--instrument", str(bad),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: {bad}: invalid instrument: line 3")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_imports_neither_numpy_nor_the_instrument_package():
    """`gapscale --help` stays quick: the stage modules, numpy, pandas and the instrument package
    (yaml) are imported only by the commands that use them (issue 13)."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'instrument', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_blas_limited_to_one_thread_unless_the_user_says_otherwise():
    from pipeline.cli import BLAS_THREAD_VARIABLES, limit_blas_threads

    env = {}
    with limit_blas_threads(env, None):
        pass
    assert env == {name: "1" for name in BLAS_THREAD_VARIABLES}
    env = {"OMP_NUM_THREADS": "4"}
    with limit_blas_threads(env, "4"):
        pass
    assert env == {"OMP_NUM_THREADS": "4"}
    import numpy  # noqa: F401  (loaded: the limit is applied to the running libraries too)
    from threadpoolctl import threadpool_info

    with limit_blas_threads({}, None):
        assert all(info["num_threads"] == 1 for info in threadpool_info())
