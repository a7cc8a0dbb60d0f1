"""The console report (pipeline/console.py): lavaan's summary layout checked against lavaan's own
text (tests/reference/console.R), the one-line summaries (the scaled indices of a WLSMV fit),
--quiet, `gapscale show` on every stage's output directory, the headline metrics files and
their declaration in dvc.yaml."""
from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import console
from pipeline.cli import main
from pipeline.stage_metrics import HEADLINE_FILE, headline, headline_fit
from tests import small_study as small

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "reference" / "console.json").read_text())
FITS = ("ml", "mlr", "wlsmv")
PARAMETER_SECTIONS = ("Latent Variables", "Regressions", "Covariances", "Intercepts", "Thresholds", "Variances",
                      "Scales y*", "R-Square", "Defined Parameters", "Constraints")


# --- lavaan's text, parsed ---------------------------------------------------------------------

def _fields(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None


def fit_lines(lines: list[str]) -> dict:
    """(section, label, occurrence) -> printed values, for every line of the fit block that
    prints numbers (from "Model Test User Model:" up to "Parameter Estimates:")."""
    out, section, seen = {}, None, {}
    for line in lines:
        if line.startswith("Parameter Estimates:"):
            break
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            section = line.strip()
            continue
        if section is None or not line.strip():
            continue
        f = _fields(line)
        values = f[1:]
        if not values or not all(_is_number(v) for v in values):
            continue
        key = (section, f[0])
        seen[key] = seen.get(key, 0) + 1
        out[(section, f[0], seen[key])] = values
    return out


def parameter_rows(lines: list[str], drop_std_lv: bool) -> dict:
    """section -> list of (name, label, values) of the parameter table (lavaan's Std.lv column
    dropped: gapscale prints Std.all only); group headers (``agree =~``) as (header, '', [])."""
    out, section = {}, None
    for line in lines:
        title = line.strip().rstrip(":")
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            section = title if title in PARAMETER_SECTIONS else None
            if section:
                out[section] = []
            continue
        if section is None or not line.strip():
            continue
        f = _fields(line)
        if f[0] == "Estimate":
            continue
        name, rest = f[0], f[1:]
        label = ""
        if rest and rest[0].startswith("("):
            label, rest = rest[0], rest[1:]
        if drop_std_lv and section != "R-Square" and rest:
            rest = rest[:1] + rest[2:] if len(rest) == 3 else rest[:4] + rest[5:]
        out[section].append((name, label, rest))
    return out


def lavaan_table(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    pe = pd.DataFrame(REF[name]["pe"]).rename(columns={"std.all": "std_all"})
    r2 = pe[pe["op"] == "r2"].rename(columns={"lhs": "variable", "est": "r2"})[["variable", "r2"]]
    return pe[pe["op"] != "r2"].reset_index(drop=True), r2.reset_index(drop=True)


# --- the fit block and the parameter table against lavaan's summary ----------------------------

@pytest.mark.parametrize("name", FITS)
def test_fit_block_prints_what_lavaan_prints(name):
    """Every number line of lavaan's fit block (the model and baseline tests with their Standard
    and Scaled columns, CFI/TLI and the robust ones, log-likelihood and criteria, RMSEA with its
    interval and p-values, the robust RMSEA, SRMR) is printed by gapscale with the same label and
    the same digits, from lavaan's own fitMeasures; and gapscale prints no number line lavaan lacks."""
    ours = fit_lines(console.fit_block(REF[name]["fit"]).splitlines())
    theirs = fit_lines(REF[name]["summary"][REF[name]["summary"].index("Model Test User Model:"):])
    assert len(theirs) >= 17
    assert {k: ours.get(k) for k in theirs} == theirs
    assert set(ours) <= set(theirs)


def test_fit_block_has_the_scaled_column_only_with_a_scaled_test():
    ml = console.fit_block(REF["ml"]["fit"])
    wlsmv = console.fit_block(REF["wlsmv"]["fit"])
    assert "Scaled" not in ml and "Robust" not in ml
    assert re.search(r"Standard\s+Scaled", wlsmv) and "Robust Comparative Fit Index (CFI)" in wlsmv


@pytest.mark.parametrize("name", FITS)
def test_parameter_table_prints_what_lavaan_prints(name):
    """Sections in lavaan's order, each row's name (with lavaan's dot for a residual), label and
    Estimate, Std.Err, z-value, P(>|z|), Std.all as lavaan prints them (its Std.lv column aside)."""
    pe, r2 = lavaan_table(name)
    ours = parameter_rows(console.parameter_table(pe, r2).splitlines(), drop_std_lv=False)
    summary = REF[name]["summary"]
    theirs = parameter_rows(summary[summary.index("Parameter Estimates:"):], drop_std_lv=True)
    assert list(ours) == list(theirs)
    for section in theirs:
        assert ours[section] == theirs[section], section


def test_parameter_table_columns_are_aligned():
    """Every value ends in the same column as its header, in every section."""
    pe, r2 = lavaan_table("mlr")
    text = console.parameter_table(pe, r2)
    header = next(line for line in text.splitlines() if "Std.all" in line)
    ends = [m.end() for m in re.finditer(r"\S+", header)]
    for line in text.splitlines():
        if re.search(r"\d\.\d{3}$", line) and "Estimate" not in line and len(line.split()) >= 6:
            row_ends = [m.end() for m in re.finditer(r"-?\d+\.\d{3}", line)]
            assert set(row_ends) <= set(ends), line


def test_a_fixed_parameter_shows_no_standard_error():
    pe, _ = lavaan_table("ml")
    line = next(x for x in console.parameter_table(pe).splitlines() if x.strip().startswith("x1"))
    assert _fields(line) == ["x1", "1.000", "0.772"]


def test_numbers_are_rounded_half_away_from_zero_and_never_negative_zero():
    assert console.num(0.0005) == "0.001" and console.num(-0.0004) == "0.000" and console.num(None) == ""
    assert console.num(float("nan")) == "" and console.count(87.0) == "87" and console.pct(0.173) == "17.3%"


def test_one_line_fit_of_a_scaled_test_gives_the_scaled_and_robust_indices():
    """lavaan's summary for the WLSMV fit shows CFI 0.958 (standard) and 0.887 (scaled), and the
    robust CFI 0.829; the one line names the scaled and robust ones and never the standard CFI."""
    line = console.fit_summary(REF["wlsmv"]["fit"])
    f = REF["wlsmv"]["fit"]
    assert f"scaled CFI {f['cfi_scaled']:.3f}" in line and f"robust CFI {f['cfi_robust']:.3f}" in line
    assert f"{f['cfi']:.3f}" not in line
    ml = console.fit_summary(REF["ml"]["fit"])
    assert ml.startswith(f"chisq {REF['ml']['fit']['chisq']:.2f} (df 24, p < .001), CFI 0.931")


def test_headline_fit_uses_lavaan_names_for_the_scaled_figures():
    assert set(headline_fit(REF["wlsmv"]["fit"])) == {
        "chisq_scaled", "df", "pvalue_scaled", "cfi_scaled", "tli_scaled", "rmsea_scaled", "rmsea_ci_lower_scaled",
        "rmsea_ci_upper_scaled", "cfi_robust", "rmsea_robust", "srmr"}
    assert "cfi" in headline_fit(REF["ml"]["fit"]) and "cfi_scaled" not in headline_fit(REF["ml"]["fit"])


# --- the commands: one line, --quiet, the WLSMV line against lavaan -----------------------------

def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def wlsmv_cfa(tmp_path_factory):
    d = tmp_path_factory.mktemp("wlsmv")
    model = d / "three.lavaan"
    model.write_text("agree =~ A1 + A2 + A3 + A4 + A5\nconsc =~ C1 + C2 + C3 + C4 + C5\n"
                     "extra =~ E1 + E2 + E3 + E4 + E5\n")
    data = ROOT / "tests" / "reference" / "bfi_600.csv"
    loud = run("cfa", "--data", data, "--model", model, "--estimator", "WLSMV", "--out", d / "loud")
    quiet = run("cfa", "--data", data, "--model", model, "--estimator", "WLSMV", "--out", d / "quiet", "--quiet")
    return {"dir": d, "loud": loud, "quiet": quiet}


def test_wlsmv_one_line_shows_lavaans_scaled_and_robust_cfi(wlsmv_cfa):
    """The CFA command's line for a WLSMV fit of psych::bfi: lavaan's cfi.scaled 0.887 and
    cfi.robust 0.829 (tests/reference/console.json), not the standard 0.958."""
    code, out, _ = wlsmv_cfa["loud"]
    line = out.splitlines()[0]
    ref = REF["wlsmv"]["fit"]
    assert code == 0
    scaled = float(re.search(r"scaled CFI (\d\.\d{3})", line).group(1))
    robust = float(re.search(r"robust CFI (\d\.\d{3})", line).group(1))
    rmsea = float(re.search(r"RMSEA (\d\.\d{3}) \[", line).group(1))
    assert scaled == pytest.approx(ref["cfi_scaled"], abs=5e-4)
    assert robust == pytest.approx(ref["cfi_robust"], abs=5e-4)
    assert rmsea == pytest.approx(ref["rmsea_scaled"], abs=5e-4)
    assert re.search(r"\bCFI 0\.958", line) is None


def test_quiet_prints_one_line(wlsmv_cfa):
    code, out, err = wlsmv_cfa["quiet"]
    assert code == 0 and len(out.splitlines()) == 1 and out.startswith("CFA (WLSMV, listwise) on 559 of 600 rows")
    loud = wlsmv_cfa["loud"][1]
    assert loud.splitlines()[0] == out.splitlines()[0].replace("/quiet", "/loud")
    assert "Model Test User Model:" in loud and "Thresholds:" in loud and "Scales y*:" in loud


def test_the_command_prints_what_show_prints(wlsmv_cfa):
    out = wlsmv_cfa["loud"][1]
    code, shown, err = run("show", wlsmv_cfa["dir"] / "loud")
    assert code == 0 and err == ""
    assert out.split("\n", 2)[2] == shown  # after the one line and a blank line: the same report


def test_the_report_of_the_wlsmv_fit_has_lavaans_numbers(wlsmv_cfa):
    """The report read back from the stage's files (gapscale's own estimates) prints the fit
    block's lines with lavaan's digits except where gapscale's estimates differ in the 3rd decimal."""
    out = wlsmv_cfa["loud"][1]
    ours = fit_lines(out.splitlines()[out.splitlines().index("Model Test User Model:"):])
    theirs = fit_lines(REF["wlsmv"]["summary"][REF["wlsmv"]["summary"].index("Model Test User Model:"):])
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert [float(x) for x in ours[k]] == pytest.approx([float(x) for x in v], abs=1.01e-3), k


# --- every stage: run it, show it ---------------------------------------------------------------

INSTRUMENT = "name: Small console scale\n" + small.HEAD + small.ATTENTION + "context:\n" + small.GROUP + small.CONSTRUCTS
MODEL = small.MODEL
PARAMS = {
    "seed": 11,
    "simulate": small.simulate(500),
    "split": {"share": 0.5, "stratify": "group"},
    "efa": {"parallel_iterations": 5},
    "cfa": {"missing": "fiml"},
    "reliability": {"htmt_bootstrap": 20, "method_factor": False},
    "invariance": {"group": "group", "min_group_size": 50},
    "sem": {"bootstrap": 20, "missing": "fiml"},
}
HYPOTHESES = {"H1": {"statement": "A raises C through B", "expect": {"ab": "positive"}}}

# stage -> (command arguments after the data dir d, the sections its report shows)
STAGE_RUNS = {
    "clean": (lambda d: ["clean", "--instrument", d / "i.yaml", "--data", d / "raw" / "responses.csv", "--params",
                         d / "p.yaml", "--truth", d / "raw" / "truth_respondents.csv", "--out", d / "clean"],
              ["Respondents:", "Exclusions by screen", "Little's MCAR test:"]),
    "split": (lambda d: ["split", "--data", d / "clean" / "clean.csv", "--params", d / "p.yaml", "--out", d / "split"],
              ["Split:", "Strata:"]),
    "efa": (lambda d: ["efa", "--data", d / "split" / "efa.csv", "--instrument", d / "i.yaml", "--params", d / "p.yaml",
                       "--out", d / "efa"],
            ["Sampling adequacy:", "Number of factors:", "Pattern loadings", "Factor correlations:"]),
    "cfa": (lambda d: ["cfa", "--data", d / "split" / "cfa.csv", "--instrument", d / "i.yaml", "--params", d / "p.yaml",
                       "--out", d / "cfa"],
            ["Model Test User Model:", "Latent Variables:", "Covariances:", "Intercepts:", "Variances:",
             "Largest modification indices"]),
    "reliability": (lambda d: ["reliability", "--data", d / "split" / "cfa.csv", "--instrument", d / "i.yaml",
                               "--params", d / "p.yaml", "--cfa", d / "cfa", "--out", d / "reliability"],
                    ["Reliability and convergent validity:", "Heterotrait-monotrait ratio"]),
    "invariance": (lambda d: ["invariance", "--data", d / "split" / "cfa.csv", "--instrument", d / "i.yaml",
                              "--structural-model", d / "m.lavaan", "--params", d / "p.yaml", "--out", d / "invariance"],
                   ["Groups (group):", "Invariance ladder", "Structural paths across groups:"]),
    "sem": (lambda d: ["sem", "--data", d / "split" / "cfa.csv", "--model", d / "m.lavaan", "--hypotheses",
                       d / "h.yaml", "--params", d / "p.yaml", "--out", d / "sem"],
            ["Model Test User Model:", "Regressions:", "R-Square:", "Defined Parameters:", "Hypotheses (",
             "Competing models ("]),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small simulated study run stage by stage through the CLI (about half a minute)."""
    d = tmp_path_factory.mktemp("study")
    (d / "i.yaml").write_text(INSTRUMENT)
    (d / "m.lavaan").write_text(MODEL)
    (d / "p.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (d / "h.yaml").write_text(yaml.safe_dump(HYPOTHESES))
    code, _, err = run("simulate", "--instrument", d / "i.yaml", "--params", d / "p.yaml", "--out", d / "raw")
    assert code == 0, err
    results = {}
    for stage, (args, _) in STAGE_RUNS.items():
        results[stage] = run(*args(d))
        assert results[stage][0] == 0, (stage, results[stage][2])
    return {"dir": d, "results": results}


@pytest.mark.parametrize("stage", list(STAGE_RUNS))
def test_each_stage_prints_its_report_and_show_prints_it_again(study, stage):
    code, out, err = study["results"][stage]
    lines = out.splitlines()
    assert lines[0].endswith(f"outputs in {study['dir'] / stage}") and lines[1] == ""
    for section in STAGE_RUNS[stage][1]:
        assert section in out, section
    assert max(len(x) for x in lines[1:]) <= 160  # no runaway line
    code, shown, show_err = run("show", study["dir"] / stage)
    assert code == 0 and show_err == ""
    warnings = [x[len("WARNING: "):] for x in err.splitlines() if x.startswith("WARNING: ")]
    body = out.split("\n", 2)[2]
    if warnings:  # show adds the warnings the command printed on stderr, as a block at the end
        assert shown.startswith(body) and all(w in shown[len(body):] for w in warnings)
    else:
        assert shown == body


@pytest.mark.parametrize("stage", list(STAGE_RUNS))
def test_each_stage_writes_a_dozen_headline_figures(study, stage):
    path = study["dir"] / stage / HEADLINE_FILE.format(stage=stage)
    figures = json.loads(path.read_text())
    assert 4 <= len(figures) <= 16
    assert all(not isinstance(v, (dict, list)) for v in figures.values())  # flat: one column each in dvc
    full = json.loads((study["dir"] / stage / console.STAGES[stage][0]).read_text())
    assert figures == json.loads(json.dumps(headline(stage, full)))


def test_headline_figures_of_cfa_are_its_fit(study):
    d = study["dir"] / "cfa"
    full = json.loads((d / "cfa.json").read_text())
    figures = json.loads((d / "cfa_metrics.json").read_text())
    for k in ("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "srmr"):
        assert figures[k] == full["fit"][k]
    assert figures["n"] == full["fit"]["ntotal"] and figures["estimator"] == "ML"


def test_the_sem_report_prints_r2_and_the_bootstrap_interval(study):
    out = study["results"]["sem"][1]
    r2 = pd.read_csv(study["dir"] / "sem" / "sem_r2.csv")
    block = out[out.index("R-Square:"):].split("\n\n")[0].splitlines()[2:]
    assert [_fields(x)[0] for x in block] == list(r2["variable"])
    assert [float(_fields(x)[1]) for x in block] == pytest.approx(list(r2["r2"]), abs=5.01e-4)
    assert "ci.lower" in out and "95% bootstrap percentile" in out


def test_show_of_the_simulate_stage(study):
    code, out, err = run("show", study["dir"] / "raw")
    full = json.loads((study["dir"] / "raw" / "simulate.json").read_text())
    assert code == 0 and out.startswith("gapscale simulate") and "[SIMULATED data]" in out
    assert re.search(rf"respondents\s+{full['respondents']}\n", out)


@pytest.mark.parametrize("where", ["nothing", "file", "missing"])
def test_show_of_a_directory_without_a_stage_is_one_line_and_exit_2(tmp_path, where):
    target = tmp_path / "d"
    if where == "nothing":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    elif where == "file":
        target.write_text("x")
    code, out, err = run("show", target)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"Error: {target}") and "Traceback" not in err


def test_show_refuses_a_stage_file_that_is_not_gapscales(tmp_path):
    (tmp_path / "cfa.json").write_text('{"fit": {"cfi": {"x": 1}}}')
    code, out, err = run("show", tmp_path)
    assert code == 2 and "cfa.json" in err and "fit.cfi" in err


def test_show_works_on_the_default_studys_stage_directories():
    """`gapscale show` on each output directory of the default study, when it has been run."""
    dirs = [ROOT / "data" / "raw", ROOT / "data" / "interim" / "clean"] + [
        ROOT / "data" / "processed" / s for s in ("questionnaire", "split", "efa", "cfa", "reliability", "invariance",
                                                  "sem", "report")]
    present = [d for d in dirs if d.is_dir() and (any(d.glob("*.json")) or (d / "codebook.csv").is_file())]
    if not present:
        pytest.skip("the default study has not been run here (dvc repro)")
    for d in present:
        code, out, err = run("show", d)
        assert code == 0 and out.startswith(f"gapscale {console.detect_stage(d)} ({d})"), err


# --- dvc.yaml ---------------------------------------------------------------------------------

def test_dvc_metrics_are_the_headline_files_and_the_full_jsons_are_plain_outputs():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for stage, (full, _) in console.STAGES.items():
        s = dvc["stages"][stage]
        metrics = [next(iter(m)) if isinstance(m, dict) else m for m in s.get("metrics", [])]
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in s.get("outs", [])]
        assert len(metrics) == 1 and metrics[0].endswith(f"/{HEADLINE_FILE.format(stage=stage)}"), stage
        assert any(o.endswith(f"/{full}") for o in outs), stage


def test_show_prints_the_content_stage(run_cli, tmp_path):
    """`gapscale show` on the content stage's directory: the panel, S-CVI per construct and the
    flagged items with their reasons."""
    from instrument import DEFAULT_INSTRUMENT
    from pipeline import content

    content.simulate(DEFAULT_INSTRUMENT, tmp_path / "panel")
    content.run(DEFAULT_INSTRUMENT, tmp_path / "panel" / "ratings.csv", tmp_path / "content",
                truth_path=tmp_path / "panel" / "truth.json")
    code, out, err = run_cli("show", tmp_path / "content", "--no-pager")
    assert code == 0, err
    flagged = json.loads((tmp_path / "content" / "content.json").read_text())["flagged_items"]
    assert out.startswith("gapscale content") and "S-CVI/Ave" in out and "Planted items: recall" in out
    assert flagged and all(item in out.split("Flagged items:")[1] for item in flagged)
