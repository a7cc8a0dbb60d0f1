"""Personal data never reaches a derived file, a log or a report (issue 12).

A small simulated study is exported as a panel would export it: respondent ids that are e-mail
addresses, an e-mail column, a free-text question, Qualtrics' IP and location columns and
columns the instrument does not know, every one of them holding a planted token. Every stage
then runs through the command line (clean, split, efa, cfa, reliability, invariance, sem,
report) and every file written, and every line printed, is searched for every token.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.io import neutralise_cell, write_csv
from tests import small_study as small

CORPUS = Path(__file__).parent / "corpus"

HEAD = "name: Planted-token scale\n" + small.HEAD + "personal_data: [email]\n" + small.ATTENTION
# What the simulation draws (no free text), and what the study's instrument says.
SIMULATED = HEAD + "context:\n" + small.GROUP + small.CONSTRUCTS
INSTRUMENT = (HEAD + "context:\n" + small.GROUP + '  - {id: comments, text: "Anything else you want to tell us?", '
              "type: text}\n" + small.CONSTRUCTS)
MODEL = small.MODEL
PARAMS = {
    "seed": 11,
    "simulate": small.simulate(400),
    "split": {"share": 0.5, "stratify": "group"},
    "efa": {"parallel_iterations": 5},
    "reliability": {"htmt_bootstrap": 0, "method_factor": False},
    "invariance": {"group": "group", "min_group_size": 30},
    "sem": {"bootstrap": 0, "interval": "ci"},
}
MARK = "qzx"  # every planted token holds it (any case); nothing else gapscale writes does
IP = re.compile(r"203\.0\.113\.\d+")


def plant(responses: pd.DataFrame) -> pd.DataFrame:
    """The export with a planted token in every personal or unknown column."""
    d = responses.copy()
    n = len(d)
    k = range(1, n + 1)
    # Ids that are e-mail addresses; a duplicate submission keeps its person's id.
    first = {rid: f"QZX.person{j}@example.org" for j, rid in enumerate(dict.fromkeys(d["respondent_id"]), 1)}
    d["respondent_id"] = d["respondent_id"].map(first)
    d["email"] = [f"qzxmail{j}@example.com" for j in k]
    d["comments"] = [f'=HYPERLINK("http://qzx{j}.example")' if j % 7 == 0 else f"I am QZXfree{j}, call +1 555 01{j:02d}"
                     for j in k]
    d["IPAddress"] = [f"203.0.113.{j % 250}" for j in k]
    d["LocationLatitude"] = [f"QZXlat{j}" for j in k]
    d["LocationLongitude"] = [f"QZXlon{j}" for j in k]
    d["city"] = [f"QZXcity{j}" for j in k]          # columns the instrument does not define
    d["phone_number"] = [f"+358 40 QZX{j:04d}" for j in k]
    return d


def leaks(text: str) -> list[str]:
    found = [m.group(0) for m in re.finditer(MARK + r"[\w.@-]*", text, flags=re.I)]
    return found + IP.findall(text)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Every stage run through the CLI on the planted export; the texts they wrote and printed."""
    from pipeline.cli import main

    d = tmp_path_factory.mktemp("planted")
    (d / "simulated.yaml").write_text(SIMULATED)
    inst = d / "instrument.yaml"
    inst.write_text(INSTRUMENT)
    (d / "model.lavaan").write_text(MODEL)
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    out = d / "out"
    printed: dict[str, tuple[int, str, str]] = {}
    # An internal error's traceback log would land in the study directory, where it is searched too.
    saved_log = os.environ.get("GAPSCALE_ERROR_LOG")
    os.environ["GAPSCALE_ERROR_LOG"] = str(d / "gapscale-error.log")

    def run(name, *args):
        import contextlib
        import io

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code
        printed[name] = (code, stdout.getvalue(), stderr.getvalue())
        assert code == 0, (name, stderr.getvalue())

    try:
        run("simulate", "simulate", "--instrument", d / "simulated.yaml", "--params", params, "--out", d / "raw")
        export = d / "export.csv"
        plant(pd.read_csv(d / "raw" / "responses.csv", dtype=str, keep_default_na=False)).to_csv(export, index=False)
        common = ("--instrument", inst, "--params", params)
        run("clean", "clean", "--data", export, *common, "--out", out / "clean")
        run("split", "split", "--data", out / "clean" / "clean.csv", *common, "--out", out / "split")
        half = out / "split" / "cfa.csv"
        run("efa", "efa", "--data", out / "split" / "efa.csv", *common, "--out", out / "efa")
        run("cfa", "cfa", "--data", half, *common, "--out", out / "cfa")
        run("reliability", "reliability", "--data", half, *common, "--out", out / "reliability")
        run("invariance", "invariance", "--data", half, *common, "--out", out / "invariance")
        run("sem", "sem", "--data", half, "--model", d / "model.lavaan", "--params", params, "--out", out / "sem")
        run("report", "report", *(x for s in ("clean", "split", "efa", "cfa", "reliability", "invariance", "sem")
                                  for x in (f"--{s}", out / s)), *common, "--out", out / "report")
        # Everything under the study directory except the planted export itself, and any log anywhere in it.
        files = {p: p.read_bytes().decode("utf-8", errors="replace") for p in d.rglob("*")
                 if p.is_file() and p != export and "raw" not in p.relative_to(d).parts}
    finally:
        if saved_log is None:
            os.environ.pop("GAPSCALE_ERROR_LOG")
        else:
            os.environ["GAPSCALE_ERROR_LOG"] = saved_log
    return {"dir": d, "out": out, "export": export, "files": files, "printed": printed}


def test_the_tokens_are_in_the_export(study):
    text = study["export"].read_text()
    assert len(leaks(text)) > 8 * 400  # the test can fail: the tokens are there to be found


def test_every_stage_wrote_its_outputs(study):
    names = {p.relative_to(study["out"]).as_posix() for p in study["files"] if study["out"] in p.parents}
    for stage, must in {"clean": "clean.csv", "split": "cfa.csv", "efa": "efa.json", "cfa": "cfa_parameters.csv",
                        "reliability": "reliability.csv", "invariance": "invariance.json", "sem": "sem.json",
                        "report": "report.html"}.items():
        assert f"{stage}/{must}" in names, stage
    assert len(names) > 40


def test_no_planted_token_reaches_any_output_or_message(study):
    found = {str(p.relative_to(study["dir"])): leaks(text)[:3] for p, text in study["files"].items() if leaks(text)}
    for name, (_, stdout, stderr) in study["printed"].items():
        if leaks(stdout + stderr):
            found[f"{name} stdout/stderr"] = leaks(stdout + stderr)[:3]
    assert found == {}


def test_only_instrument_columns_in_the_data_files(study):
    out = study["out"]
    instrument = {"row", "respondent_id", "group", "ATT1", "duration_s", "simulated", "reverse_recoded",
                  *(f"{c}_{k}" for c in "ABC" for k in range(1, 5))}
    for f in ("clean/clean.csv", "split/efa.csv", "split/cfa.csv"):
        columns = set(pd.read_csv(out / f, nrows=1).columns)
        assert columns <= instrument, (f, columns - instrument)
        assert "comments" not in columns
    ids = pd.read_csv(out / "clean" / "clean.csv", dtype=str)["respondent_id"]
    rows = pd.read_csv(out / "clean" / "clean.csv")["row"]
    assert (ids == "row" + rows.astype(str)).all()  # no key given: row numbers


def test_the_notes_say_what_was_dropped(study):
    stdout = study["printed"]["clean"][1]
    assert "dropped 4 personal-data column(s): email, IPAddress, LocationLatitude, LocationLongitude" in stdout
    assert "dropped the answers to 1 personal context question(s)" in stdout and "comments" in stdout
    assert "ignored 2 column(s) the instrument does not define (never written): city, phone_number" in stdout
    assert "pseudonymised (replaced by row numbers: no key given)" in stdout


def test_keyed_pseudonyms_and_the_mapping_only_where_asked(run_cli, tmp_path, monkeypatch):
    key = "k" * 32
    monkeypatch.setenv("GAPSCALE_ID_KEY", key)
    data = CORPUS / "email_ids.csv"
    inst = CORPUS / "instrument.yaml"
    mapping = tmp_path / "private" / "ids.csv"
    mapping.parent.mkdir()
    code, stdout, stderr = run_cli("clean", "--instrument", inst, "--data", data, "--out", tmp_path / "o", "--id-map", mapping)
    assert code == 0, stderr
    clean = pd.read_csv(tmp_path / "o" / "clean.csv", dtype=str)
    expected = ["p" + hmac.new(key.encode(), f"person{k}.secret@example.org".encode(), hashlib.sha256).hexdigest()[:16]
                for k in range(1, 7)]
    assert clean["respondent_id"].tolist() == expected
    m = pd.read_csv(mapping, dtype=str)
    assert m["original_id"].tolist() == [f"person{k}.secret@example.org" for k in range(1, 7)]
    assert m["respondent_id"].tolist() == expected
    for p in (tmp_path / "o").iterdir():
        assert "secret@" not in p.read_text()
    # The same key gives the same pseudonyms; a different key different ones.
    code, _, _ = run_cli("clean", "--instrument", inst, "--data", data, "--out", tmp_path / "o2")
    assert pd.read_csv(tmp_path / "o2" / "clean.csv", dtype=str)["respondent_id"].tolist() == expected
    monkeypatch.setenv("GAPSCALE_ID_KEY", "another key of 16+ bytes")
    code, _, _ = run_cli("clean", "--instrument", inst, "--data", data, "--out", tmp_path / "o3")
    assert set(pd.read_csv(tmp_path / "o3" / "clean.csv", dtype=str)["respondent_id"]).isdisjoint(expected)


@pytest.mark.parametrize("args, message", [
    (("--id-map", "{out}/ids.csv"), "the id mapping holds the original ids; write it outside the output directory"),
    (("--id-key-file", "{short}"), "the id key must be at least 16 bytes"),
])
def test_id_options_refused(run_cli, tmp_path, args, message):
    (tmp_path / "short.key").write_text("tooshort\n")
    args = [a.format(out=tmp_path / "o", short=tmp_path / "short.key") for a in args]
    code, _, stderr = run_cli("clean", "--instrument", CORPUS / "instrument.yaml", "--data", CORPUS / "good.csv",
                              "--out", tmp_path / "o", *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


def test_split_refuses_data_with_unknown_columns_without_an_instrument(run_cli, tmp_path):
    code, _, stderr = run_cli("split", "--data", CORPUS / "good.csv", "--out", tmp_path / "s")
    assert code == 2 and "not the output of the clean stage" in stderr
    code, _, stderr = run_cli("split", "--data", CORPUS / "good.csv", "--instrument", CORPUS / "instrument.yaml",
                              "--out", tmp_path / "s", "--stratify", "")
    assert code == 0, stderr
    halves = pd.concat([pd.read_csv(tmp_path / "s" / f, dtype=str) for f in ("efa.csv", "cfa.csv")])
    assert "email" not in halves.columns and "respondent_id" not in halves.columns
    assert set(halves.columns) == {"relationship_type", "A_1", "A_2", "A_3", "ATT1", "B_1", "B_2", "B_3",
                                   "experience_years", "duration_s"}


def test_split_keeps_group_labels_as_written(run_cli, tmp_path):
    """A numeric group column with gaps stays 1 and 2 (pandas would read 1.0 and 2.0)."""
    data = pd.DataFrame({"row": range(1, 9), "respondent_id": [f"row{k}" for k in range(1, 9)],
                         "grp": ["1", "2", "", "1", "2", "1", "", "2"], "A_1": ["3"] * 8, "reverse_recoded": ["1"] * 8})
    data.to_csv(tmp_path / "clean.csv", index=False)
    code, _, stderr = run_cli("split", "--data", tmp_path / "clean.csv", "--stratify", "grp", "--out", tmp_path / "s")
    assert code == 0, stderr
    text = (tmp_path / "s" / "efa.csv").read_text() + (tmp_path / "s" / "cfa.csv").read_text()
    assert ".0" not in text
    strata = pd.read_json(tmp_path / "s" / "split.json", typ="series")["strata"]
    assert sorted(s["stratum"] for s in strata) == ["(missing)", "1", "2"]


@pytest.mark.parametrize("cell, written", [
    ("=1+1", "'=1+1"), ("+A1", "'+A1"), ("-A1", "'-A1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-3", "-3"), ("+2.5", "+2.5"), ("-1e3", "-1e3"), ("ok", "ok"), ("'=x", "'=x"), (None, None),
])
def test_formula_cells_are_neutralised(cell, written):
    assert neutralise_cell(cell) == written
    assert neutralise_cell(neutralise_cell(cell)) == written


def test_write_csv_neutralises_text_never_numbers(tmp_path):
    df = pd.DataFrame({"=name": ["=x", "-y", "3"], "n": [-1.5, 2.0, -3.0], "k": pd.array([-1, None, 2], dtype="Int64")})
    write_csv(df, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "'=name,n,k\n'=x,-1.5,-1\n'-y,2.0,\n3,-3.0,2\n"


def test_read_table_restores_what_write_csv_guarded(tmp_path):
    """The one reader of stage tables (pipeline.io.read_table) gives back lavaan's operators and
    any guarded text: ``'=~`` in the file is ``=~`` in the table, numbers stay numbers."""
    from pipeline.io import read_table

    df = pd.DataFrame({"=name": ["=x", "-y", "3", None], "op": ["=~", "~", "==", ":="],
                       "n": [-1.5, 2.0, -3.0, 0.5]})
    write_csv(df, tmp_path / "t.csv")
    assert "'=~" in (tmp_path / "t.csv").read_text()
    back = read_table(tmp_path / "t.csv")
    assert list(back.columns) == ["=name", "op", "n"]
    assert back["op"].tolist() == ["=~", "~", "==", ":="]
    assert back["=name"].tolist()[:3] == ["=x", "-y", "3"]
    assert back["n"].tolist() == [-1.5, 2.0, -3.0, 0.5]
    assert read_table(tmp_path / "t.csv", keep_default_na=False)["=name"].tolist()[3] == ""


def test_instrument_personal_flag_and_export_column_names():
    from instrument.schema import InstrumentError, parse_instrument

    base = yaml.safe_load((CORPUS / "instrument.yaml").read_text())
    base["duration_column"] = "Duration (in seconds)"
    base["id_column"] = "Response ID"
    base["personal_data"] = ["Recipient E-mail"]
    base["context"] += [{"id": "comments", "type": "text"}, {"id": "remark", "type": "text", "personal": False},
                        {"id": "country", "type": "categorical", "values": ["FI", "SE"], "personal": True}]
    inst = parse_instrument(base)
    assert inst.duration_column == "Duration (in seconds)" and inst.id_column == "Response ID"
    assert {q.id: q.personal for q in inst.context} == {"relationship_type": False, "experience_years": False,
                                                        "comments": True, "remark": False, "country": True}
    bad = dict(base, id_column="a\tb", context=base["context"] + [{"id": "x", "type": "text", "personal": "no"}])
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(bad)
    assert exc.value.problems == ["context[5].personal: expected true or false, got text 'no'",
                                  "id_column: a column name must be at most 200 characters without control "
                                  "characters, got 'a\\tb'"]


def test_pseudonym_agrees_with_r_digest_hmac():
    from analysis.clean import pseudonym

    # In R: digest::hmac("0123456789abcdef0123", "R001", "sha256") (digest 0.6) gives
    # 4d3fe34de7ca472a7657be3b8029758e5a85d20eef35854dfcb2a5118eaf92e8; so does
    # printf R001 | openssl dgst -sha256 -hmac 0123456789abcdef0123.
    assert pseudonym("R001", 1, b"0123456789abcdef0123") == "p4d3fe34de7ca472a"
    assert pseudonym("R001", 7, None) == "row7"
