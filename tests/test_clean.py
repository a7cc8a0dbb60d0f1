"""The clean and split stages: screens against the simulation's truth, accounting, personal data."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analysis.clean import (DataError, ScreenParams, parse_clean_params, parse_number, parse_screen_params, prepare,
                            recode_reverse, score_screens, screen)
from analysis.simulate import parse_simulation_params, simulate_study
from analysis.split import split_sample, stage_rng
from instrument import load_instrument
from pipeline.ingest import read_export

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="module")
def simulated(default_instrument, default_params, tmp_path_factory):
    """The default study, written and read back as a file, cleaned with the default screens."""
    study = simulate_study(default_instrument, parse_simulation_params(default_params["simulate"]), seed=99)
    path = tmp_path_factory.mktemp("sim") / "responses.csv"
    study.responses.to_csv(path, index=False)
    raw = read_export(path)
    prepared = prepare(raw.cells, default_instrument, source=str(path))
    result = screen(prepared, default_instrument, parse_clean_params(default_params["clean"])[0])
    return study, prepared, result


def test_screens_find_what_the_simulation_planted(simulated):
    study, _, result = simulated
    scores = score_screens(result.flags, study.respondents)
    for name in ("longstring", "speeder", "duplicate", "attention"):
        assert scores[name]["precision"] >= 0.9, (name, scores[name])
        assert scores[name]["recall"] >= 0.9, (name, scores[name])
    assert scores["clean_excluded_share"] <= 0.02
    assert scores["mahalanobis"]["recall"] >= 0.9  # random responders stand out too


def test_every_input_row_is_kept_or_excluded_with_a_reason(simulated):
    study, prepared, result = simulated
    assert len(result.clean) + result.exclusions["row"].nunique() == len(study.responses)
    assert set(result.clean["row"]).isdisjoint(result.exclusions["row"])
    assert result.exclusions["value"].notna().all() and result.exclusions["screen"].notna().all()
    # Typos became missing and were logged, one line per cell.
    assert len(prepared.problems) == (study.respondents["n_typo_cells"]).sum()


def test_reverse_keys_are_recoded_exactly_once(default_instrument, simulated):
    study, prepared, result = simulated
    row = result.clean.iloc[0]
    raw = prepared.data.set_index("row").loc[row["row"]]
    for item in default_instrument.items:
        if not np.isnan(raw[item.id]):
            assert row[item.id] == (8 - raw[item.id] if item.reverse else raw[item.id])
    with pytest.raises(ValueError, match="already recoded"):
        recode_reverse(result.clean, default_instrument)
    with pytest.raises(DataError, match="already recoded"):
        prepare(result.clean.astype(object).where(result.clean.notna(), None).astype(str), default_instrument)


def test_personal_data_never_reaches_an_output(run_cli, tmp_path):
    """Plant unique strings in every personal-data column and scan every file written."""
    text = (CORPUS / "qualtrics_numeric.csv").read_text()
    lines = text.splitlines()
    header = lines[0].split(",")
    personal = ["IPAddress", "RecipientLastName", "RecipientFirstName", "RecipientEmail", "ExternalReference",
                "LocationLatitude", "LocationLongitude"]
    tokens = []
    body = []
    for k, line in enumerate(lines[3:], start=1):
        cells = line.split(",")
        for col in personal:
            token = f"PII{col}{k}X9"
            cells[header.index(col)] = token
            tokens.append(token)
        body.append(",".join(cells))
    export = tmp_path / "qualtrics_pii.csv"
    export.write_text("\n".join(lines[:3] + body) + "\n")
    out = tmp_path / "outputs"
    code, stdout, stderr = run_cli("clean", "--instrument", CORPUS / "instrument.yaml", "--data", export,
                                   "--out", out / "clean")
    assert code == 0, stderr
    code2, stdout2, stderr2 = run_cli("split", "--data", out / "clean" / "clean.csv", "--out", out / "split")
    assert code2 == 0, stderr2
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 14  # clean: 9 files (sample_profile, outside_answers, design_effect included) +
    # clean_metrics.json, split: 3 + split_metrics.json
    everything = "".join(p.read_text() for p in written) + stdout + stderr + stdout2 + stderr2
    leaked = [t for t in tokens if t in everything]
    assert leaked == []
    # Column names of personal data are named in the notes (so the researcher knows), values never.
    assert "dropped 7 personal-data column(s)" in stdout


def test_qualtrics_numeric_choice_text_and_plain_csv_agree():
    inst = load_instrument(CORPUS / "instrument.yaml")
    frames = []
    for name in ("good.csv", "qualtrics_numeric.csv", "qualtrics_choice_text.csv", "spss_value_labels.sav", "excel.xlsx"):
        raw = read_export(CORPUS / name)
        data = prepare(raw.cells, inst, qualtrics=raw.qualtrics).data
        frames.append(data[["relationship_type", *inst.item_ids, "ATT1", "experience_years", "duration_s"]])
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other, check_dtype=False)


# --------------------------------------------------------------------------- property test

ITEM_CELLS = st.one_of(st.sampled_from(["1", "2", "3", "4", "5", "Agree", "strongly disagree", " 3 "]),
                       st.sampled_from(["0", "6", "77", "-1", "2.5", "abc", "", "NA", "4,0"]), st.none())


@st.composite
def messy_exports(draw):
    n = draw(st.integers(min_value=1, max_value=30))
    columns = ["respondent_id", "relationship_type", "A_1", "A_2", "A_3", "ATT1", "B_1", "B_2", "B_3",
               "experience_years", "duration_s", "email", "StartDate"]
    ids = draw(st.lists(st.sampled_from(["R1", "R2", "R3", "R4", None, "R5", "x y"]), min_size=n, max_size=n))
    rows = []
    for k in range(n):
        row = {"respondent_id": ids[k],
               "relationship_type": draw(st.sampled_from(["B2B", "b2c", "G2C", "B2X", None])),
               "ATT1": draw(st.sampled_from(["2", "3", None])),
               "experience_years": draw(st.sampled_from(["5", "60", "x", None])),
               "duration_s": draw(st.sampled_from(["600", "30", "-4", "", None, "900"])),
               "email": "someone@example.org", "StartDate": "2026-01-01"}
        for item in ("A_1", "A_2", "A_3", "B_1", "B_2", "B_3"):
            row[item] = draw(ITEM_CELLS)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns, dtype=object)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=messy_exports(), duplicates=st.booleans(), speeder=st.sampled_from([None, 0.333, 0.9]))
def test_accounting_rule_holds_on_messy_exports(cells, duplicates, speeder):
    inst = load_instrument(CORPUS / "instrument.yaml")
    try:
        prepared = prepare(cells, inst)
    except DataError as exc:
        # the only structural problems these inputs can have
        assert "has no usable answer" in str(exc) or "rows repeat an earlier id" in str(exc)
        return
    result = screen(prepared, inst, ScreenParams(duplicates=duplicates, speeder_fraction=speeder))
    rows = set(range(1, len(cells) + 1))
    kept, excluded = set(result.clean["row"]), set(result.exclusions["row"])
    assert kept | excluded == rows and not kept & excluded
    assert len(result.clean) + len(excluded) == len(cells)
    assert "email" not in result.clean.columns and "StartDate" not in result.clean.columns
    # Every cell that could not be used as it is was set missing or changed and logged ("4,0" is
    # read as 4 and logged); no other cell was changed.
    valid = {"1", "2", "3", "4", "5", "agree", "strongly disagree"}
    for item in inst.item_ids:
        bad = sum(1 for v in cells[item] if v not in (None, "") and str(v).strip().lower() not in valid)
        assert bad == (prepared.problems["column"] == item).sum()


# --------------------------------------------------------------------------- split


def test_split_is_stratified_reproducible_and_complete():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"row": range(1, 1001), "g": rng.choice(["a", "b", "c", None], size=1000, p=[.5, .3, .15, .05])})
    efa, cfa, sizes = split_sample(data, stage_rng(7, "split"), 0.5, "g")
    assert len(efa) + len(cfa) == 1000 and set(efa["row"]).isdisjoint(cfa["row"])
    for _, s in sizes.iterrows():
        assert abs(s["n_efa"] - s["n_cfa"]) <= 1
    assert set(sizes["stratum"]) == {"a", "b", "c", "(missing)"}
    again, _, _ = split_sample(data, stage_rng(7, "split"), 0.5, "g")
    pd.testing.assert_frame_equal(efa, again)
    other, _, _ = split_sample(data, stage_rng(8, "split"), 0.5, "g")
    assert not efa["row"].equals(other["row"])
    assert list(efa["row"]) == sorted(efa["row"])  # original order kept


@pytest.mark.parametrize("kwargs, message", [({"share": 1.0}, "share must be in"), ({"stratify": "nope"}, "'nope' is not in the data")])
def test_split_errors(kwargs, message):
    data = pd.DataFrame({"row": range(10)})
    with pytest.raises(ValueError, match=message):
        split_sample(data, np.random.default_rng(0), **{"share": 0.5, **kwargs})


def test_clean_and_split_cli_write_metrics(run_cli, tmp_path):
    code, out, err = run_cli("simulate", "--params", "params.yaml", "--out", tmp_path / "raw", "--n", 300)
    assert code == 0, err
    code, out, err = run_cli("clean", "--data", tmp_path / "raw" / "responses.csv", "--params", "params.yaml",
                             "--truth", tmp_path / "raw" / "truth_respondents.csv", "--out", tmp_path / "clean")
    assert code == 0, err
    m = json.loads((tmp_path / "clean" / "clean.json").read_text())
    assert m["rows_in"] == m["kept"] + m["excluded"] == 306
    assert m["simulated"] is True and m["screens_vs_truth"]["duplicate"]["recall"] == 1.0
    assert m["little_mcar"]["df"] > 0
    code, out, err = run_cli("split", "--data", tmp_path / "clean" / "clean.csv", "--params", "params.yaml",
                             "--out", tmp_path / "split")
    assert code == 0, err
    s = json.loads((tmp_path / "split" / "split.json").read_text())
    assert s["n_efa"] + s["n_cfa"] == m["kept"] and s["stratify"] == "relationship_type"


@pytest.mark.parametrize("bad, message", [
    ({"speeder_fraction": 2}, "clean.speeder_fraction: must be a number in (0, 1)"),
    ({"irv_min": "low"}, "clean.irv_min"),
    ({"duplicates": "yes"}, "clean.duplicates: expected true or false"),
    ({"colour": 1}, "clean.colour: unknown key"),
])
def test_bad_screen_params(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_screen_params(bad)


def test_screens_switch_off():
    p = parse_screen_params({"speeder_fraction": None, "duplicates": False, "mahalanobis_alpha": False})
    assert p.speeder_fraction is None and p.duplicates is False and p.mahalanobis_alpha is None


def test_efa_refuses_infinite_values_that_skipped_the_clean_stage(run_cli, tmp_path):
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.integers(1, 6, size=(60, 6)), columns=["A_1", "A_2", "A_3", "B_1", "B_2", "B_3"]).astype(object)
    data.loc[7, "B_2"] = "inf"
    data.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run_cli("efa", "--data", tmp_path / "d.csv", "--instrument", CORPUS / "instrument.yaml",
                           "--out", tmp_path / "o")
    assert code == 2 and "column 'B_2' holds an infinite value (data row 8)" in err


def test_clean_writes_integer_groups_and_invariance_reads_them_as_written(run_cli, tmp_path):
    """An integer context column with gaps stays 1, 2 in clean.csv and the split halves (not 1.0, 2.0)."""
    code, _, err = run_cli("clean", "--instrument", CORPUS / "instrument.yaml", "--data", CORPUS / "integer_gaps.csv",
                           "--out", tmp_path / "c")
    assert code == 0, err
    code, _, err = run_cli("split", "--data", tmp_path / "c" / "clean.csv", "--out", tmp_path / "s", "--stratify",
                           "experience_years")
    assert code == 0, err
    strata = json.loads((tmp_path / "s" / "split.json").read_text())["strata"]
    assert sorted(s["stratum"] for s in strata) == ["(missing)", "1", "10", "2", "7"]
    halves = (tmp_path / "s" / "efa.csv").read_text() + (tmp_path / "s" / "cfa.csv").read_text()
    assert not re.search(r",(10|1|2|7)\.0,", halves)


def test_accounting_holds_on_hostile_corpus_files():
    """Every input row is kept or excluded with a reason, also for the hostile files that clean."""
    inst = load_instrument(CORPUS / "instrument.yaml")
    for name in ("arabic_digits.csv", "inf_values.csv", "formula_cells.csv", "email_ids.csv", "spss_user_missing.sav",
                 "long_cell_item.csv", "decimal_comma_items.csv"):
        raw = read_export(CORPUS / name)
        prepared = prepare(raw.cells, inst, declared_missing=raw.declared_missing)
        result = screen(prepared, inst, ScreenParams())
        kept, excluded = set(result.clean["row"]), set(result.exclusions["row"])
        assert kept | excluded == set(range(1, len(raw.cells) + 1)) and not kept & excluded, name


@pytest.mark.parametrize("bad, message", [
    ({"respondent_ids": "hash"}, "clean.respondent_ids: must be pseudonymise or keep"),
    ({"id_key_env": ""}, "clean.id_key_env: expected a name"),
])
def test_bad_id_params(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_clean_params(bad)


@pytest.mark.parametrize("text, value, note", [
    ("3", 3.0, None), (" -2.5 ", -2.5, None), ("3,0", 3.0, "decimal comma; read as 3"),
    ("\u0663", 3.0, "non-ASCII digits; read as 3"), ("\uff14", 4.0, "non-ASCII digits; read as 4"),
    ("inf", None, None), ("-Infinity", None, None), ("nan", None, None), ("1e999", None, None),
    ("1,234", None, None), ("\u00b2", None, None), ("3\u200b", None, None), ("0x10", None, None),
])
def test_parse_number(text, value, note):
    assert parse_number(text) == (value, note)


def test_a_screen_that_cannot_run_is_a_warning_in_clean_json_and_the_report(run_cli, tmp_path):
    code, _, err = run_cli("clean", "--instrument", CORPUS / "instrument.yaml", "--data", CORPUS / "no_duration.csv",
                           "--out", tmp_path / "c")
    assert code == 0 and "speeder screen asked for" in err
    warning = next(w for w in json.loads((tmp_path / "c" / "clean.json").read_text())["warnings"] if "speeder" in w)
    code, _, err = run_cli("report", "--clean", tmp_path / "c", "--out", tmp_path / "r")
    assert code == 0, err
    assert warning in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    # Switched off, it is no warning.
    (tmp_path / "p.yaml").write_text("clean: {speeder_fraction: null}\n")
    code, _, err = run_cli("clean", "--instrument", CORPUS / "instrument.yaml", "--data", CORPUS / "no_duration.csv",
                           "--out", tmp_path / "c2", "--params", tmp_path / "p.yaml")
    assert code == 0 and "speeder" not in err
    assert not any("speeder" in w for w in json.loads((tmp_path / "c2" / "clean.json").read_text())["warnings"])


# --------------------------------------------------------------------------- fuzz: file contents

HOSTILE = ["4,0", "\u0663", "\uff15", "inf", "-inf", "nan", "1e999", "1,234", "=1+1", "+A1", "-A1", "@SUM(A1)", "\t3",
           "3\u200b", "", " ", "NA", '"', '""', "a,b", "x\ny", "\r", "fuzz.person@example.org",
           "call fuzz.person@example.org now", "+358 40 123 4567", "77", "-1", "2.5"]
VALID = ["1", "2", "3", "4", "5", "B2B", "b2c", "Agree", "10", "600"]
# Mostly usable answers (so most files clean and the outputs are searched), often hostile ones.
HOSTILE_CELLS = st.one_of(st.sampled_from(VALID), st.sampled_from(VALID), st.sampled_from(HOSTILE),
                          st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=8))
FUZZ_COLUMNS = ["respondent_id", "relationship_type", "A_1", "A_2", "A_3", "ATT1", "B_1", "B_2", "B_3",
                "experience_years", "duration_s", "email", "notes"]


@st.composite
def hostile_exports(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    ids = [draw(st.sampled_from([f"R{k}", f"R{k}", f"R{k}", "R1", f"fuzz.person{k}@example.org", "", f"=HYPER{k}"]))
           for k in range(n)]
    rows = [[ids[k]] + [draw(HOSTILE_CELLS) for _ in FUZZ_COLUMNS[1:-2]] + ["fuzz.person@example.org", draw(HOSTILE_CELLS)]
            for k in range(n)]
    import csv as _csv
    import io as _io
    buf = _io.StringIO()
    _csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([FUZZ_COLUMNS] + rows)
    text = buf.getvalue()
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # damage the text: a stray quote or delimiter
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', ";", ",", "\n", "\ufeff", ""])) + text[cut:]
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=hostile_exports())
def test_fuzzed_exports_give_exit_0_or_one_line_and_leak_nothing(text, tmp_path_factory):
    """Any file content: exit 0 with every row accounted for and no e-mail in any output, or exit 2
    with one line; never a traceback, never exit 1."""
    from pipeline.cli import main
    import contextlib
    import io

    d = tmp_path_factory.mktemp("fuzz")
    (d / "export.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main(["clean", "--instrument", str(CORPUS / "instrument.yaml"), "--data", str(d / "export.csv"),
              "--out", str(d / "o")])
    stdout, stderr = out.getvalue(), err.getvalue()
    assert exc.value.code in (0, 2), stderr
    assert "Traceback" not in stdout + stderr
    event(f"exit {exc.value.code}: {stderr.split(':')[2].strip()[:30] if exc.value.code else 'cleaned'}")
    if exc.value.code == 2:
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("Error: ")
        return
    m = json.loads((d / "o" / "clean.json").read_text())
    clean = pd.read_csv(d / "o" / "clean.csv")
    exclusions = pd.read_csv(d / "o" / "exclusions.csv")
    assert m["rows_in"] == len(clean) + exclusions["row"].nunique() == m["kept"] + m["excluded"]
    for p in (d / "o").iterdir():
        text = p.read_text(encoding="utf-8")
        assert "fuzz.person" not in text and "123 4567" not in text, p.name
    assert "fuzz.person" not in stdout + stderr and "123 4567" not in stdout + stderr
