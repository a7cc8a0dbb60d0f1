"""Hostile non-data inputs: every one ends with one line and exit status 2, within 30 s and 1 GB.

The corpus is tests/hostile/ with tests/hostile/expected.yaml (command, expected exit status, a
substring of the message); data-file inputs live in tests/corpus. A hypothesis-based fuzz test
throws random command lines, instrument YAMLs and params YAMLs at the CLI: exit status 0 or 2,
never 1 (an internal error), never a traceback.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import MAX_LINE

HERE = Path(__file__).resolve().parent / "hostile"
ROOT = HERE.parents[1]
CASES = yaml.safe_load((HERE / "expected.yaml").read_text(encoding="utf-8"))
LIMIT_SECONDS = 30
LIMIT_BYTES = 1 << 30


@pytest.fixture(scope="module", autouse=True)
def imported_stages():
    """Import every stage module first: imports under tracemalloc are slow and not what is measured."""
    import importlib

    for name in ("instrument", "simulate", "clean", "split", "efa", "cfa", "reliability", "invariance", "sem",
                 "report"):
        importlib.import_module(f"pipeline.{name}")
    import analysis.polychoric  # noqa: F401  (imported lazily by efa)


def case_id(k: int, case: dict) -> str:
    return f"{k:02d}-{case['command'][0]}-{case['file'].split()[0]}"


def materialise(case: dict, tmp: Path) -> list[str]:
    """The command line of a case, with its generated files written into ``tmp``."""
    gen = case.get("generate")
    if gen:
        body = gen.get("head", "") + gen["text"] * gen["repeat"] + gen.get("tail", "")
        (tmp / gen["name"]).write_text(body, encoding="utf-8")
    values = {"here": str(HERE), "tmp": str(tmp), "long": "x" * 100_000}
    return [str(a).format(**values) for a in case["command"]]


def check_output(code, out: str, err: str, expected_code: int | None = None) -> None:
    assert "Traceback" not in out + err
    if expected_code is not None:
        assert code == expected_code, err
    if code != 0:
        error_lines = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(error_lines) == 1 and err.rstrip().splitlines()[-1] == error_lines[0], err[-2000:]
        assert len(error_lines[0]) <= MAX_LINE + 300, len(error_lines[0])  # bounded, whatever the input
    for line in (out + err).splitlines():
        assert len(line) <= 20_000, len(line)


def test_the_corpus_is_large_and_each_file_is_used():
    assert len(CASES) >= 25
    used = {Path(a.replace("{here}/", "")).parts[0] for c in CASES for a in c["command"] if "{here}/" in a}
    present = {p.name for p in HERE.iterdir()} - {"expected.yaml", "small.yaml", "small.csv", "small.lavaan",
                                                   "params_sem_ci.yaml"}
    assert present <= used, present - used


@pytest.mark.parametrize("k", range(len(CASES)), ids=[case_id(k, c) for k, c in enumerate(CASES)])
def test_hostile_input(run_cli, tmp_path, k):
    case = CASES[k]
    args = materialise(case, tmp_path)
    tracemalloc.start()
    tracemalloc.reset_peak()
    cpu = time.process_time()
    try:
        code, out, err = run_cli(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    seconds = time.process_time() - cpu
    check_output(code, out, err, case["exit"])
    for part in ([case["message"]] if isinstance(case["message"], str) else case["message"]):
        assert part in err, err
    assert seconds < LIMIT_SECONDS, seconds
    assert peak < LIMIT_BYTES, peak


RUNNER = """
import json, resource, sys, time
from pipeline.cli import main
stats = []
for args in json.loads(sys.stdin.read()):
    cpu = time.process_time()
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    stats.append([code, time.process_time() - cpu])
print(json.dumps({"stats": stats, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def test_the_whole_corpus_stays_under_1_gb_of_resident_memory(tmp_path):
    """The peak resident set of one process running every case (what tracemalloc cannot see:
    BLAS buffers, the interpreter itself) stays under 1 GB."""
    commands = []
    for k, case in enumerate(CASES):
        d = tmp_path / str(k)
        d.mkdir()
        commands.append(materialise(case, d))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(commands), capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [code for code, _ in result["stats"]] == [c["exit"] for c in CASES]
    assert max(s for _, s in result["stats"]) < LIMIT_SECONDS
    assert result["maxrss_kb"] * 1024 < LIMIT_BYTES, result["maxrss_kb"]
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- fuzzing

SMALL = str(HERE / "small.yaml")
DATA = str(HERE / "small.csv")
MODEL = str(HERE / "small.lavaan")

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), text)
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.one_of(text, st.integers()), inner, max_size=4)),
                     max_leaves=12)

INSTRUMENT_KEYS = ["name", "version", "description", "instructions", "scale", "id_column", "duration_column",
                   "personal_data", "model", "sections", "constructs", "attention_checks", "context", "bogus"]
SCALE = st.fixed_dictionaries({}, optional={"type": st.sampled_from(["likert", "continuous", "x"]) | value,
                                            "min": st.integers(-5, 5) | value, "max": st.integers(-5, 200) | value,
                                            "labels": st.dictionaries(st.integers(-3, 9), text, max_size=3) | value})
ITEM = st.fixed_dictionaries({"id": st.sampled_from(["a1", "a2", "b1", "x y", "1a", ""]) | value},
                             optional={"text": text, "reverse": st.booleans() | value, "scale": SCALE})
CONSTRUCT = st.fixed_dictionaries({"id": st.sampled_from(["F1", "F2", "a1"]) | value},
                                  optional={"items": st.lists(ITEM, max_size=4) | value, "scale": SCALE,
                                            "section": text | value})
CONTEXT = st.fixed_dictionaries({"id": st.sampled_from(["grp", "age"]) | value,
                                 "type": st.sampled_from(["categorical", "integer", "number", "text"]) | value},
                                optional={"values": st.lists(scalar, max_size=4) | value, "min": value,
                                          "max": value, "position": st.sampled_from(["before", "after"]) | value})
INSTRUMENT = st.fixed_dictionaries(
    {"name": text | value, "scale": SCALE, "constructs": st.lists(CONSTRUCT, min_size=1, max_size=3) | value},
    optional={"id_column": text | value, "duration_column": text | value, "personal_data": value,
              "sections": st.lists(st.fixed_dictionaries({"id": text | value}), max_size=2) | value,
              "attention_checks": st.lists(st.fixed_dictionaries({"id": text | value, "expected": value},
                                                                 optional={"after": value}), max_size=2) | value,
              "context": st.lists(CONTEXT, max_size=2) | value,
              "model": st.sampled_from([MODEL, "nope.lavaan"]) | value,
              "bogus": value})

PARAMS = st.fixed_dictionaries({}, optional={
    "seed": st.integers(-3, 10**6) | value,
    "split": st.fixed_dictionaries({}, optional={"share": st.floats(0, 1) | value,
                                                 "stratify": st.sampled_from(["grp", "nope", ""]) | value}),
    "simulate": st.fixed_dictionaries({}, optional={
        "n": st.integers(-5, 60) | value, "thresholds": st.lists(st.floats(-3, 3), max_size=6) | value,
        "loadings": st.dictionaries(st.sampled_from(["default", "F1", "a1", "zz"]), st.floats(-1.5, 1.5) | value,
                                    max_size=3) | value,
        "structural": st.dictionaries(st.sampled_from(["F1", "F2"]), st.dictionaries(
            st.sampled_from(["F1", "F2", "a1"]), st.floats(-1, 1) | value, max_size=2) | value, max_size=2) | value,
        "defects": st.dictionaries(st.sampled_from(["speeder", "duplicate", "missing_cell", "typo_cell", "bogus"]),
                                   st.floats(0, 1) | value, max_size=3) | value,
        "groups": value, "context": value, "extra_latents": value}),
    "efa": st.fixed_dictionaries({}, optional={"drop_items": st.lists(st.sampled_from(["a1", "a2", "a3", "b1"]),
                                                                      max_size=3) | value}),
    "bogus": value,
})


def dump(obj) -> str:
    try:
        return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        return "name: [unclosed\n"


# 40 fixed examples per test keep CI fast and repeatable; GAPSCALE_FUZZ_EXAMPLES=500 explores afresh.
EXAMPLES = int(os.environ.get("GAPSCALE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 40, deadline=None, derandomize=not EXAMPLES, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@FUZZ
@given(doc=INSTRUMENT, garble=st.one_of(st.none(), st.tuples(st.integers(0, 400), text)))
def test_fuzz_instrument_yaml(run_cli, tmp_path, doc, garble):
    body = dump(doc)
    if garble is not None:  # a random edit of the YAML text itself
        at, insert = garble
        body = body[:at] + insert + body[at:]
    path = tmp_path / "fuzz_instrument.yaml"
    path.write_text(body, encoding="utf-8")
    code, out, err = run_cli("instrument", "validate", path)
    check_output(code, out, err)
    assert code in (0, 2)
    code, out, err = run_cli("instrument", "render", path, "--out", tmp_path / "r")
    check_output(code, out, err)
    assert code in (0, 2)
    if code == 0:
        code, out, err = run_cli("simulate", "--instrument", path, "--n", "30", "--out", tmp_path / "s")
        check_output(code, out, err)
        assert code in (0, 2)


@FUZZ
@given(doc=PARAMS | value)
def test_fuzz_params_yaml(run_cli, tmp_path, doc):
    path = tmp_path / "fuzz_params.yaml"
    path.write_text(dump(doc), encoding="utf-8")
    code, out, err = run_cli("split", "--data", DATA, "--instrument", SMALL, "--params", path, "--out", tmp_path / "sp")
    check_output(code, out, err)
    assert code in (0, 2)
    code, out, err = run_cli("simulate", "--instrument", SMALL, "--params", path, "--n", "40", "--out", tmp_path / "s")
    check_output(code, out, err)
    assert code in (0, 2)


COMMANDS = {
    "instrument validate": [SMALL], "instrument render": [SMALL], "simulate": [], "split": ["--data", DATA, "--instrument", SMALL],
    "efa": ["--data", DATA], "cfa": ["--data", DATA], "reliability": ["--data", DATA],
    "invariance": ["--data", DATA], "sem": ["--data", DATA], "report": [], "clean": ["--data", DATA],
}
OPTIONS = ["--instrument", "--model", "--params", "--out", "--n", "--seed", "--share", "--stratify", "--n-factors",
           "--estimator", "--missing", "--group", "--partial", "--bootstrap", "--jobs", "--top-modindices",
           "--htmt-bootstrap", "--clean", "--efa", "--rotation", "--extraction", "--criterion", "--min-group-size",
           "--id-column", "--encoding", "--sheet", "--title", "--hypotheses", "--invariance", "--bogus"]
ARG_VALUES = st.one_of(
    st.sampled_from([SMALL, DATA, MODEL, str(HERE / "alias_bomb.yaml"), str(HERE / "likert_huge.yaml"),
                     str(HERE / "report_bad_clean"), str(HERE), "-1", "0", "1", "2", "1e999", "nan", "auto",
                     "grp", "F1 =~ a1", "ML", "WLSMV", "fiml", "", "--", "-h"]),
    text)


@FUZZ
@given(command=st.sampled_from(sorted(COMMANDS)),
       options=st.lists(st.tuples(st.sampled_from(OPTIONS), ARG_VALUES), max_size=4))
def test_fuzz_command_line(run_cli, tmp_path, command, options):
    args = command.split() + COMMANDS[command]
    for opt, val in options:
        args += [opt, val]
    if command not in ("instrument validate",):
        args += ["--out", str(tmp_path / "o")] if "--out" not in args else []
    # keep every run fast: no bootstrap, few simulated respondents
    if command == "sem":
        args += ["--bootstrap", "0", "--params", str(HERE / "params_sem_ci.yaml")]
    if command == "simulate":
        args += ["--n", "30"]
    if command == "reliability":
        args += ["--htmt-bootstrap", "0", "--no-method-factor"]
    code, out, err = run_cli(*args)
    check_output(code, out, err)
    assert code in (0, 2), (args, err)


# --------------------------------------------------------------------------- the two kinds of failure


@pytest.mark.parametrize("exc, code", [
    (ValueError("Length of values (6) does not match length of index (100)"), 1),  # a library's error: a bug
    (TypeError("unhashable type: 'list'"), 1),
    (KeyError("fit"), 1),
    (OSError("no filename: not about a path the user gave"), 1),
    (PermissionError(13, "Permission denied", "/usr/lib/gapscale/template.md"), 1),  # not a path the user gave
    (PermissionError(13, "Permission denied", "{out}/efa.csv"), 2),  # inside the --out directory the user gave
])
def test_only_input_errors_are_exit_2(run_cli, tmp_path, monkeypatch, exc, code):
    import pipeline.split

    if isinstance(exc, OSError) and exc.filename:
        exc = type(exc)(exc.errno, exc.strerror, exc.filename.format(out=tmp_path / "o"))

    def broken(*args, **kwargs):
        raise exc

    log = tmp_path / "error.log"
    monkeypatch.setenv("GAPSCALE_ERROR_LOG", str(log))
    monkeypatch.setattr(pipeline.split, "run", broken)
    status, out, err = run_cli("split", "--data", DATA, "--out", tmp_path / "o")
    assert status == code and "Traceback" not in out + err and len(err.strip().splitlines()) == 1
    if code == 1:
        assert err.startswith("Error: internal error of gapscale (a bug, not a problem with your input): ")
        assert f"the traceback is in {log}" in err
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and type(exc).__name__ in text
        assert "gapscale split --data" in text  # the command line, to reproduce it
    else:
        assert err.startswith(f"Error: {tmp_path / 'o' / 'efa.csv'}: Permission denied") and not log.exists()


def test_an_input_error_is_exit_2_and_its_line_is_bounded(run_cli, tmp_path, monkeypatch):
    import pipeline.split
    from analysis.errors import InputError

    def bad(*args, **kwargs):
        raise InputError("clean.csv: column 'x', row 3: value " + "9" * 10**6 + " is not allowed")

    monkeypatch.setattr(pipeline.split, "run", bad)
    status, out, err = run_cli("split", "--data", DATA, "--out", tmp_path / "o")
    assert status == 2 and err.startswith("Error: clean.csv: column 'x', row 3: value 999")
    assert err.rstrip().endswith("is not allowed") and "characters cut" in err and len(err) < MAX_LINE + 50


def test_internal_error_log_goes_to_a_new_temporary_file_by_default(run_cli, tmp_path, monkeypatch):
    import pipeline.split

    monkeypatch.delenv("GAPSCALE_ERROR_LOG", raising=False)
    monkeypatch.setattr(pipeline.split, "run", lambda *a, **k: {}["n"])
    status, out, err = run_cli("split", "--data", DATA, "--out", tmp_path / "o")
    assert status == 1
    log = Path(err.split("the traceback is in ")[1].split(";")[0])
    try:
        assert log.name.startswith("gapscale-error-") and log.suffix == ".log"
        assert "KeyError: <value>" in log.read_text()  # the quoted key is withheld like any value
    finally:
        log.unlink()


def test_internal_error_withholds_the_values_its_message_quotes(run_cli, tmp_path, monkeypatch):
    """A bug's message may quote a respondent's answer (pandas and numpy quote values): neither
    the error line nor the log shows it; the traceback's frames (source lines) are kept."""
    import pipeline.split

    answers = ["jane.doe@example.org", "+358 40 123 4567", "10.1.2.3"]  # data, not source code

    def broken(*args, **kwargs):
        raise ValueError(f"could not convert string to float: {answers[0]!r} near {answers[1]}, host {answers[2]}")

    log = tmp_path / "error.log"
    monkeypatch.setenv("GAPSCALE_ERROR_LOG", str(log))
    monkeypatch.setattr(pipeline.split, "run", broken)
    status, out, err = run_cli("split", "--data", DATA, "--out", tmp_path / "o")
    text = log.read_text()
    assert status == 1 and "could not convert string to float: <value>" in err
    assert "in broken" in text and "raise ValueError(" in text
    assert "jane.doe" in repr(answers)  # the tokens exist; only the outputs must not hold them
    for token in ("jane.doe", "123 4567", "10.1.2.3"):
        assert token not in err + text, token


def test_efa_on_items_never_answered_together_is_an_input_error(run_cli, tmp_path):
    """The efa side of "Eigenvalues did not converge": an export whose answers were half choice text
    the clean stage could not read leaves items never answered together; the EFA names the pair."""
    import pandas as pd

    data = pd.read_csv(DATA)
    data.loc[:119, ["b1", "b2", "b3"]] = None
    data.loc[120:, ["a1", "a2", "a3"]] = None
    path = tmp_path / "disjoint.csv"
    data.to_csv(path, index=False)
    code, out, err = run_cli("efa", "--data", path, "--instrument", SMALL, "--out", tmp_path / "e")
    check_output(code, out, err, 2)
    assert "the correlation of items 'a1' and 'b1' cannot be computed (never answered together" in err
