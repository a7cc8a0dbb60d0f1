"""The report stage: APA formatting, the report built from real stage outputs, its numbers parsed
back and compared with the stage outputs, the page rendered in headless Chromium, DVC wiring,
and the progress bars of the long steps."""
from __future__ import annotations

import html
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, strategies as st

from analysis import apa
from pipeline import report as rp
from pipeline.progress import progress_bar, progress_enabled
from tests import small_study as small

ROOT = Path(__file__).resolve().parents[1]
from browser import ARTIFACTS, CHROMIUM_FLAGS, chromium, screenshot

# --------------------------------------------------------------------------------- APA formatting


@pytest.mark.parametrize("value, kwargs, expected", [
    (0.4567, dict(bounded=True), ".46"),
    (-0.4567, dict(bounded=True), "-.46"),
    (0.4567, {}, "0.46"),
    (0.125, {}, "0.13"),            # half away from zero on the printed decimal, not banker's rounding
    (0.285, dict(bounded=True), ".29"),
    (-0.0049, dict(bounded=True), ".00"),  # never "-.00"
    (-0.0049, {}, "0.00"),
    (0.9996, dict(bounded=True), "1.00"),  # the leading digit stays when it is not zero
    (2722.09447, {}, "2,722.09"),
    (-6685.391, {}, "-6,685.39"),
    (12345.678, dict(thousands=False), "12345.68"),
    (0.0195, dict(decimals=3), "0.020"),
    (None, {}, ""),
    (float("nan"), dict(missing="—"), "—"),
])
def test_fmt_number(value, kwargs, expected):
    assert apa.fmt_number(value, **kwargs) == expected


@pytest.mark.parametrize("p, expected", [(0.0312, ".031"), (0.00004, "< .001"), (0.001, ".001"), (0.0009999, "< .001"),
                                         (0.0495, ".050"), (1.0, "1.000"), (0.0, "< .001"), (None, "")])
def test_fmt_p(p, expected):
    assert apa.fmt_p(p) == expected


def test_p_in_text_chisq_df_ci_and_stars():
    assert apa.fmt_p_text(0.0001) == "p < .001" and apa.fmt_p_text(0.73) == "p = .730"
    assert apa.fmt_chisq(2722.09447, 2331, 2.6e-8) == "χ²(2331) = 2,722.09, p < .001"  # no comma in df (APA 6.38)
    assert apa.fmt_df(2331) == "2331" and apa.fmt_df(12.5) == "12.50"
    assert apa.fmt_int(1020) == "1,020"
    assert apa.fmt_ci(-0.123, 0.3, bounded=True) == "[-.12, .30]" and apa.fmt_ci(0.02, None) == ""
    assert [apa.stars(p) for p in (0.2, 0.04, 0.009, 0.0002, None)] == ["", "*", "**", "***", ""]
    assert [apa.fmt_yes_no(x) for x in (True, "False", "true", None)] == ["Yes", "No", "Yes", ""]


def test_fmt_against_shows_the_side_of_the_cut_off():
    assert apa.fmt_against(0.4994, 0.5, bounded=True) == ".499"
    assert apa.fmt_against(0.49999, 0.5, bounded=True) == ".5000"   # at most four decimals
    assert apa.fmt_against(0.46, 0.5, bounded=True) == ".46"
    assert apa.fmt_against(0.0604, 0.06) == "0.060" or apa.fmt_against(0.0604, 0.06) == "0.0604"
    assert apa.parse_number(apa.fmt_against(0.0604, 0.06)) > 0.06


def test_apa_table_formats_each_column_by_kind():
    df = pd.DataFrame({"construct": ["A", "B"], "n": [4, 1200], "alpha": [0.8123, 0.6], "chisq": [1234.5, 3.0],
                       "pvalue": [0.0001, 0.2], "ok": [True, False]})
    t = apa.apa_table(df, {"construct": "text", "n": "int", "alpha": "bounded", "chisq": "number", "pvalue": "p",
                           "ok": "yes_no"}, {"alpha": "α", "pvalue": "p"})
    assert list(t.columns) == ["construct", "n", "α", "chisq", "p", "ok"]
    assert t.iloc[0].tolist() == ["A", "4", ".81", "1,234.50", "< .001", "Yes"]
    assert t.iloc[1].tolist() == ["B", "1,200", ".60", "3.00", ".200", "No"]
    with pytest.raises(ValueError, match="'missing' not in the table"):
        apa.apa_table(df, {"missing": "text"})
    with pytest.raises(ValueError, match="unknown kind 'percent'"):
        apa.apa_table(df, {"n": "percent"})


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.booleans())
def test_printed_numbers_parse_back_within_half_a_unit(x, bounded):
    if bounded:
        x = max(-1.0, min(1.0, x / 1e6))
    text = apa.fmt_number(x, bounded=bounded)
    assert abs(apa.parse_number(text) - x) <= 0.005 + 1e-9 * max(1, abs(x))


def test_parse_number():
    assert apa.parse_number("-.45***") == -0.45 and apa.parse_number("2,722.09") == 2722.09
    assert apa.parse_number("< .001") == 0.001 and math.isnan(apa.parse_number("")) and math.isnan(apa.parse_number("GAP1"))


# --------------------------------------------------------------------------------- progress bars


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_quiet_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GAPSCALE_NO_PROGRESS", raising=False)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    assert not progress_enabled()
    with progress_bar(total=50, desc="HTMT bootstrap") as tick:
        for _ in range(50):
            tick()
    assert pipe.getvalue() == ""


def test_progress_bar_draws_on_a_terminal_but_not_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GAPSCALE_NO_PROGRESS", raising=False)
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress_bar(total=3, desc="parallel analysis") as tick:
        tick(3)
    assert "parallel analysis" in term.getvalue()
    monkeypatch.setenv("CI", "true")
    term2 = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term2)
    with progress_bar(total=3, desc="parallel analysis") as tick:
        tick(3)
    assert term2.getvalue() == ""


def test_long_steps_report_their_progress():
    import numpy as np

    from analysis import efa as fa
    from analysis.polychoric import polychoric
    from analysis.reliability import htmt_bootstrap

    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 1))
    x = pd.DataFrame(np.clip(np.round(3 + z + rng.normal(size=(200, 6))), 1, 5).astype(int),
                     columns=[f"i{k}" for k in range(6)])
    done = []
    polychoric(x, progress=done.append)
    assert sum(done) == 15  # every pair settled once
    done.clear()
    fa.parallel_analysis(x, lambda d: d.corr().to_numpy(), rng, n_iter=4, progress=done.append)
    assert done == [1, 1, 1, 1]
    done.clear()
    htmt_bootstrap(x, {"a": ["i0", "i1", "i2"], "b": ["i3", "i4", "i5"]}, 7, rng, progress=done.append)
    assert sum(done) == 7


# --------------------------------------------------------------------------------- a small pipeline

INSTRUMENT = ("name: Small test scale\n" + small.HEAD + "personal_data: [email]\n" + small.ATTENTION + "context:\n"
              + small.GROUP + small.CONSTRUCTS)
PARAMS = {
    "seed": 7,
    "simulate": small.simulate(400),
    "split": {"share": 0.5, "stratify": "group"},
    "efa": {"parallel_iterations": 5, "correlation": "polychoric"},
    "cfa": {"missing": "fiml"},
    "reliability": {"htmt_bootstrap": 50, "method_factor": False},
    "report": dict(rp.DEFAULTS),
}


def fake_invariance(d: Path) -> None:
    """Outputs in the invariance stage's format (columns as agreed; values made up)."""
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, step in enumerate(("configural", "metric", "scalar", "strict")):
        first = i == 0
        rows.append(dict(model=step, chisq=120.4 + 15 * i, df=102 + 9 * i, pvalue=0.1 - 0.02 * i,
                         cfi=0.991 - 0.003 * i - (0.02 if step == "strict" else 0), tli=0.988 - 0.003 * i,
                         rmsea=0.031 + 0.002 * i, rmsea_ci_lower=0.0, rmsea_ci_upper=0.052 + 0.002 * i,
                         srmr=0.045 + 0.004 * i, aic=9000.5 + 3 * i, bic=9300.25 - 20 * i,
                         delta_chisq=None if first else 15.0, delta_df=None if first else 9,
                         delta_pvalue=None if first else 0.0907, delta_cfi=None if first else -0.003 - (0.02 if step == "strict" else 0),
                         delta_rmsea=None if first else 0.002, holds=None if first else step != "strict"))
    pd.DataFrame(rows).to_csv(d / "invariance_fit.csv", index=False)
    pd.DataFrame([dict(group="g1", n=176, used=True, reason=""), dict(group="g2", n=179, used=True, reason=""),
                  dict(group="g3", n=9, used=False, reason="fewer than 30 respondents")]).to_csv(
        d / "invariance_groups.csv", index=False)
    pd.DataFrame([dict(latent="A", group="g2", mean=0.12, se=0.08, pvalue=0.13)]).to_csv(
        d / "invariance_latent_means.csv", index=False)
    steps = {r["model"]: {"holds": bool(r["holds"]) if r["holds"] is not None else True, "passes": r["model"] != "strict",
                          "reason": "ΔCFI -0.023 < -0.01" if r["model"] == "strict" else ""} for r in rows}
    (d / "invariance.json").write_text(json.dumps({
        "simulated": True, "group": "group", "missing": "fiml", "estimator": "ML", "level": "scalar",
        "partial": [], "partial_invariance": False, "criterion": "fit_indices",
        "cutoffs": {"delta_cfi": -0.01, "delta_rmsea": 0.015, "alpha": 0.05, "configural_cfi": 0.9, "configural_rmsea": 0.08},
        "steps": steps, "structural": {"compared": True, "answer": "no evidence that the paths differ between groups"},
        "warnings": ["group g3 has 9 respondents: left out"]}))


def fake_sem(d: Path) -> None:
    """Outputs in the sem stage's format for A -> B -> C with an indirect effect."""
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for lat in "ABC":
        for k in range(1, 5):
            rows.append(dict(lhs=lat, op="=~", rhs=f"{lat}_{k}", label="", est=1.0 if k == 1 else 0.93 + 0.01 * k,
                             se=None if k == 1 else 0.07, z=None if k == 1 else 13.1, pvalue=None if k == 1 else 1e-30,
                             ci_lower=None, ci_upper=None, std_all=0.71 + 0.013 * k))
    rows.append(dict(lhs="B", op="~", rhs="A", label="a", est=0.4312, se=0.061, z=7.07, pvalue=1.5e-12,
                     ci_lower=0.3116, ci_upper=0.5508, std_all=0.4123))
    rows.append(dict(lhs="C", op="~", rhs="B", label="b", est=0.5234, se=0.058, z=9.02, pvalue=2e-19,
                     ci_lower=0.4097, ci_upper=0.6371, std_all=0.4987))
    rows.append(dict(lhs="C", op="~", rhs="A", label="c", est=0.0312, se=0.055, z=0.57, pvalue=0.5706,
                     ci_lower=-0.0766, ci_upper=0.139, std_all=0.0287))
    rows.append(dict(lhs="ab", op=":=", rhs="a*b", label="ab", est=0.2257, se=0.041, z=5.5, pvalue=3.8e-8,
                     ci_lower=0.1453, ci_upper=0.3061, std_all=0.2056, boot_pct_lower=0.1502, boot_pct_upper=0.3113,
                     boot_bc_lower=0.1534, boot_bc_upper=0.3170))
    pd.DataFrame(rows).to_csv(d / "sem_parameters.csv", index=False)
    pd.DataFrame({"variable": ["B", "C"], "r2": [0.17, 0.2601]}).to_csv(d / "sem_r2.csv", index=False)
    pd.DataFrame([dict(hypothesis="H1", statement="A raises B", parameter="a", est=0.4312, std_all=0.4123,
                       ci_lower=0.3116, ci_upper=0.5508, pvalue=1.5e-12, supported=True),
                  dict(hypothesis="H2", statement="A raises C directly", parameter="c", est=0.0312, std_all=0.0287,
                       ci_lower=-0.0766, ci_upper=0.139, pvalue=0.5706, supported=False)]).to_csv(
        d / "sem_hypotheses.csv", index=False)
    pd.DataFrame([dict(model="hypothesised", npar=27, chisq=60.2, df=51, cfi=0.994, rmsea=0.021, aic=9100.4,
                       bic=9190.8, delta_chisq=None, delta_df=None, delta_pvalue=None, preferred=True),
                  dict(model="full mediation", npar=26, chisq=60.5, df=52, cfi=0.995, rmsea=0.02, aic=9098.7,
                       bic=9185.9, delta_chisq=0.3, delta_df=1, delta_pvalue=0.58, preferred=False)]).to_csv(
        d / "sem_competing.csv", index=False)
    (d / "sem.json").write_text(json.dumps({
        "simulated": True, "estimator": "ML",
        "fit": {"chisq": 60.2, "df": 51, "pvalue": 0.176, "cfi": 0.994, "tli": 0.992, "rmsea": 0.021,
                "rmsea_ci_lower": 0.0, "rmsea_ci_upper": 0.043, "srmr": 0.041, "aic": 9100.4, "bic": 9190.8,
                "ntotal": 355},
        "source": "cfa.csv", "missing": "fiml", "interval": "boot_pct", "ci": 0.95,
        "bootstrap": {"requested": 500, "converged": 498, "failed": 2, "inadmissible": 0},
        "warnings": ["2 of 500 bootstrap draws did not converge"]}))


def fake_power(directory):
    """power.json and power_hypotheses.csv in the format of `gapscale power` (pipeline/power.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    metrics = {"simulated": True, "n": [200, 400], "replications": 50, "alpha": 0.05, "target": 0.8,
               "estimator": "ML", "missing": "listwise", "clean": True, "model_df": 24,
               "required_n": {"H1": {"n_grid": 400, "n_interpolated": 310.0, "power_at_largest_n": 0.9, "note": ""},
                              "H2": {"n_grid": None, "n_interpolated": None, "power_at_largest_n": 0.4,
                                     "note": "not reached on the grid (largest N 400)"}},
               "convergence": {"200": {"convergence_rate": 0.98}, "400": {"convergence_rate": 1.0}},
               "rmsea_power": {"close": {"rmsea0": 0.05, "rmseaA": 0.08, "n_required": 342.0}},
               "analytic": {"required_n": {"H1": {"n_required": 301.2, "n_grid": 302, "power_at_largest_n": 1.0,
                                                  "note": ""},
                                           "H2": {"n_required": None, "n_grid": None, "power_at_largest_n": 0.0,
                                                  "note": "population value of b below min_effect 0.1 (0.05): no N "
                                                          "reaches it"}},
                            "rows_invited": 4000, "rows_kept": 3500, "rows_complete": 2100, "missing_cell_share": 0.007,
                            "effective_share": 0.87, "draws": 4000, "n_min": 50, "n_max": 20000, "grid_points": 120},
               "check": {"max_abs_z": 1.1, "within_3_se": True, "median_se_ratio": 1.02,
                         "rows": [{"n": 200, "hypothesis": "H1"}, {"n": 400, "hypothesis": "H1"}]}}
    (directory / "power.json").write_text(json.dumps(metrics))
    pd.DataFrame({"n": [200, 200, 400, 400], "hypothesis": ["H1", "H2", "H1", "H2"],
                  "power": [0.62, 0.2, 0.9, 0.4]}).to_csv(directory / "power_hypotheses.csv", index=False)
    n = [100, 200, 400, 800]
    pd.DataFrame({"n": n * 2, "hypothesis": ["H1"] * 4 + ["H2"] * 4,
                  "power": [0.3, 0.6, 0.9, 1.0, 0.05, 0.1, 0.2, 0.4]}).to_csv(directory / "power_analytic.csv", index=False)


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """simulate -> clean -> split -> efa -> cfa -> reliability on a 3-construct instrument (a few
    seconds), plus invariance and sem outputs in the agreed format."""
    from pipeline import cfa, clean, content, efa, reliability, simulate, split

    d = tmp_path_factory.mktemp("pipeline")
    inst = d / "instrument.yaml"
    inst.write_text(INSTRUMENT)
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    simulate.run(inst, params, d / "raw")
    clean.run(inst, d / "raw" / "responses.csv", d / "clean", params, truth_path=d / "raw" / "truth_respondents.csv")
    split.run(d / "clean" / "clean.csv", d / "split", params)
    efa.run(d / "split" / "efa.csv", d / "efa", inst, None, params)
    cfa.run(d / "split" / "cfa.csv", d / "cfa", inst, None, params)
    reliability.run(d / "split" / "cfa.csv", d / "reliability", inst, None, params)
    content.simulate(inst, d / "panel", params_path=params)
    content.run(inst, d / "panel" / "ratings.csv", d / "content", params_path=params, truth_path=d / "panel" / "truth.json")
    fake_invariance(d / "invariance")
    fake_sem(d / "sem")
    fake_power(d / "power")
    dirs = {s: d / s for s in rp.STAGE_FILES}
    return {"root": d, "instrument": inst, "params": params, "dirs": dirs}


@pytest.fixture(scope="module")
def built(stages):
    out = stages["root"] / "report"
    metrics = rp.run(stages["dirs"], out, stages["params"], stages["instrument"])
    return {"out": out, "metrics": metrics, "md": (out / "report.md").read_text(encoding="utf-8"),
            "html": (out / "report.html").read_text(encoding="utf-8")}


class TableParser(HTMLParser):
    """The report's HTML tables (by their data-key) as lists of rows of cell strings."""

    def __init__(self):
        super().__init__()
        self.tables, self.key, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "data-key" in a:
            self.key = a["data-key"]
            self.tables[self.key] = []
        elif tag == "tr" and self.key:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[self.key].append(self.row)
            self.row = None
        elif tag == "table":
            self.key = None


def html_tables(text: str) -> dict[str, pd.DataFrame]:
    p = TableParser()
    p.feed(text)
    return {k: pd.DataFrame(rows[1:], columns=rows[0]) for k, rows in p.tables.items()}


def md_tables(text: str) -> dict[str, pd.DataFrame]:
    out = {}
    for m in re.finditer(r"<!-- table: (\w+) -->\n(?:.*\n)*?((?:\|.*\|\n)+)", text):
        lines = [ln for ln in m.group(2).strip().splitlines()]
        split = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
        out[m.group(1)] = pd.DataFrame(split[2:], columns=split[0])
    return out


def close(text: str, value: float) -> bool:
    """A printed number agrees with the stage's value to within half a unit of its last decimal."""
    text = str(text).strip()
    if text.startswith("<"):
        return value < apa.parse_number(text)
    shown = apa.parse_number(text)
    decimals = len(text.split(".")[1].rstrip("*")) if "." in text else 0
    return abs(shown - value) <= 0.5 * 10 ** -decimals + 1e-9


# --------------------------------------------------------------------------------- the report


def test_report_has_every_section_in_paper_order(built):
    headings = re.findall(r"^## (.+)$", built["md"], flags=re.M)
    assert headings == list(rp.SECTIONS.values())
    h2 = re.findall(r'<section id="(\w+)"><h2>', built["html"])
    assert h2 == list(rp.SECTIONS)
    assert built["metrics"]["sections_not_run"] == []


def test_every_figure_is_written_embedded_and_referenced(built):
    out = built["out"]
    for key in rp.FIGURES:
        svg = (out / "figures" / f"{key}.svg").read_bytes()
        assert svg.startswith(b"<?xml") and b"<svg" in svg and len(svg) > 2000, key
        assert f"](figures/{key}.svg)" in built["md"]
        assert f'data-key="{key}"' in built["html"]
    assert built["html"].count('<img src="data:image/svg+xml;base64,') == len(rp.FIGURES)


def test_tables_are_written_as_csv_and_agree_with_markdown_and_html(built):
    out = built["out"]
    from_html, from_md = html_tables(built["html"]), md_tables(built["md"])
    assert set(from_html) == set(from_md) == {p.stem for p in (out / "tables").glob("*.csv")}
    for key, frame in from_html.items():
        csv = pd.read_csv(out / "tables" / f"{key}.csv", dtype=str, keep_default_na=False)
        assert csv.values.tolist() == frame.values.tolist() == from_md[key].values.tolist(), key
    for key in ("screening_flow", "missing_data", "factor_count", "efa_loadings", "cfa_fit", "cfa_loadings",
                "reliability", "htmt", "invariance_fit", "invariance_groups", "sem_fit", "sem_paths",
                "sem_r2", "sem_indirect", "sem_hypotheses", "sem_competing"):
        assert key in from_html, key
    # the latent correlations with sqrt(AVE) on the diagonal: from construct_correlations.csv when the
    # reliability stage writes it, else from fornell_larcker.csv (an older stage)
    assert ("construct_correlations" in from_html) != ("fornell_larcker" in from_html)


def test_numbers_in_the_report_are_the_stage_outputs(built, stages):
    t = html_tables(built["html"])
    d = stages["dirs"]
    # CFA fit and loadings
    fit = json.loads((d["cfa"] / "cfa.json").read_text())["fit"]
    cf = t["cfa_fit"].set_index("Index")
    for name, key in (("CFI", "cfi"), ("TLI", "tli"), ("RMSEA", "rmsea"), ("SRMR", "srmr"), ("χ²", "chisq"),
                      ("AIC", "aic"), ("BIC", "bic")):
        assert close(cf.at[name, "Value"], fit[key]), name
    assert int(cf.at["df", "Value"]) == fit["df"]
    assert cf.at["CFI", "Meets"] == ("Yes" if fit["cfi"] >= 0.95 else "No")
    params = pd.read_csv(d["cfa"] / "cfa_parameters.csv")
    params["op"] = params["op"].str.lstrip("'")  # write_csv's guard against spreadsheet formulas wrote "'=~"
    load = params[params["op"] == "=~"].set_index("rhs")
    assert len(t["cfa_loadings"]) == len(load) > 0  # every loading (the table was once empty: ops read as "'=~")
    for row in t["cfa_loadings"].itertuples():
        assert close(row.β, load.at[row.Item, "std_all"]) and close(row.b, load.at[row.Item, "est"]), row.Item
    # Reliability, Fornell-Larcker, HTMT
    rel = pd.read_csv(d["reliability"] / "reliability.csv").set_index("construct")
    for row in t["reliability"].itertuples():
        for col, key in (("α", "raw_alpha"), ("ω", "omega"), ("CR", "cr"), ("AVE", "ave")):
            assert close(getattr(row, col), rel.at[row.Construct, key]), (row.Construct, col)
    fl = pd.read_csv(d["reliability"] / "fornell_larcker.csv").set_index("construct")
    shown = t.get("construct_correlations", t.get("fornell_larcker")).set_index("")
    for a in shown.index:
        assert close(shown.at[a, a], fl.at[a, "sqrt_ave"])
        for b in shown.columns:
            if shown.at[a, b] and a != b:
                assert close(shown.at[a, b], fl.at[a, b]), (a, b)
    htmt = pd.read_csv(d["reliability"] / "htmt.csv")
    shown = t["htmt"].set_index("")
    for r in htmt.itertuples():
        cell = shown.at[r.construct_2, r.construct_1] if r.construct_2 in shown.index else shown.at[r.construct_1, r.construct_2]
        assert close(cell, r.htmt)
    # EFA: criteria and loadings (blank cells are the loadings below the display threshold)
    efa = json.loads((d["efa"] / "efa.json").read_text())
    fc = dict(t["factor_count"].values.tolist())
    assert int(fc["Velicer's MAP"]) == efa["n_factors"]["map"]
    assert int(fc["Parallel analysis, factor eigenvalues"]) == efa["n_factors"]["parallel_fa"]
    loadings = pd.read_csv(d["efa"] / "efa_loadings.csv").set_index("item")
    for row in t["efa_loadings"].to_dict("records"):
        for f in [c for c in row if re.fullmatch(r"F\d+", c)]:
            value = loadings.at[row["Item"], f]
            assert close(row[f], value) if row[f] else abs(value) < rp.DEFAULTS["hide_loadings_below"]
        assert close(row["h²"], loadings.at[row["Item"], "h2"])
    # Screening flow
    clean = json.loads((d["clean"] / "clean.json").read_text())
    split = json.loads((d["split"] / "split.json").read_text())
    flow = t["screening_flow"].set_index("Step")
    assert apa.parse_number(flow.at["Submissions received", "Remaining"]) == clean["rows_in"]
    assert apa.parse_number(flow.at["Analysed sample", "Remaining"]) == clean["kept"]
    assert apa.parse_number(flow.at["Analysed sample", "Removed"]) == clean["excluded"]
    assert sum(apa.parse_number(x) for x in flow["Removed"].iloc[1:-3] if x) == clean["excluded"]
    assert apa.parse_number(flow.at["EFA half (random split)", "Remaining"]) == split["n_efa"]
    # Invariance and SEM (outputs in the agreed format)
    inv = pd.read_csv(d["invariance"] / "invariance_fit.csv").set_index("model")
    for row in t["invariance_fit"].itertuples():
        assert close(row.CFI, inv.at[row.Model, "cfi"]) and close(row.RMSEA, inv.at[row.Model, "rmsea"])
        assert row.df == str(inv.at[row.Model, "df"])
    sem = pd.read_csv(d["sem"] / "sem_parameters.csv")
    paths = sem[sem["op"] == "~"].set_index(["lhs", "rhs"])
    for row in t["sem_paths"].itertuples():
        assert close(row.β, paths.at[(row.Outcome, row.Predictor), "std_all"])
        assert close(row.p, paths.at[(row.Outcome, row.Predictor), "pvalue"])
    ind = sem[sem["op"] == ":="].set_index("lhs")
    for row in t["sem_indirect"].to_dict("records"):
        lo, hi = (apa.parse_number(x) for x in row["95% CI (percentile bootstrap)"].strip("[]").split(","))
        assert abs(lo - ind.at[row["Effect"], "boot_pct_lower"]) < 5e-4 and abs(hi - ind.at[row["Effect"], "boot_pct_upper"]) < 5e-4
        assert close(row["β"], ind.at[row["Effect"], "std_all"])
    r2 = pd.read_csv(d["sem"] / "sem_r2.csv").set_index("variable")
    for row in t["sem_r2"].itertuples():
        assert close(row._2, r2.at[row.Variable, "r2"])
    hyp = t["sem_hypotheses"].set_index("Hypothesis")
    assert hyp.at["H1", "Supported"] == "Yes" and hyp.at["H2", "Supported"] == "No"


def test_fit_indices_figures_headers_and_citations_of_the_whole_report(built):
    """Every fit index in report.md with three decimals and no leading zero; figures numbered 1, 2,
    ... in the order of first mention; no table headed by a raw column name; the methods text cites
    every reference of the list and no other (checks of tests/test_report_findings.py)."""
    from test_report_findings import citation_problems, figure_order_problems, fit_index_problems, raw_headers

    tables = md_tables(built["md"])
    bad, n = fit_index_problems(built["md"], tables)
    assert not bad and n >= 40, (bad, n)  # CFA, SEM, EFA, invariance ladder, competing models, summary
    assert not figure_order_problems(built["md"])
    assert not re.findall(r"\bp\s*[=<>≤≥]\s*0\.\d+", built["md"])  # p values without the leading zero, everywhere
    assert re.findall(r"\*\*Figure (\d+)\*\*", built["md"]) == ["1", "2", "3", "4", "5"]  # scree, loadings, ladder, path diagram, power curve
    assert not raw_headers(tables), raw_headers(tables)
    assert not citation_problems(built["md"]), citation_problems(built["md"])
    methods = built["md"].split("## " + rp.SECTIONS["methods"])[1].split("## ")[0]
    assert "Hu & Bentler, 1999" in methods and "Horn, 1965" in methods and "Preacher & Hayes, 2008" in methods
    # The methods text is written from the same numbers as the tables.
    cfa_par = next(p for p in methods.split("\n\n") if p.startswith("The measurement model"))
    fit = tables["cfa_fit"].set_index("Index")["Value"]
    for name in ("CFI", "TLI", "RMSEA", "SRMR"):
        assert f"{name} = {fit[name]}" in cfa_par, name
    sem_par = next(p for p in methods.split("\n\n") if p.startswith("The hypothesised structural model"))
    assert f"CFI = {tables['sem_fit'].set_index('Index')['Value']['CFI']}" in sem_par


def test_summary_says_what_held_what_did_not_and_every_warning(built):
    summary = built["md"].split("## Sample and screening")[0]
    assert "What was tested:" in summary and "What held:" in summary and "What did not hold:" in summary
    assert "Hypotheses supported: H1" in summary and "Hypotheses not supported: H2" in summary
    assert "Strict invariance does not hold (ΔCFI = -.023 < -.010)" in summary and "Scalar invariance holds" in summary
    for warning in ("invariance: group g3 has 9 respondents: left out",
                    "structural model (sem): 2 of 500 bootstrap draws did not converge"):
        assert warning in summary, warning
    assert "(n = 9) left out" not in summary and "draws failed" not in summary  # said once, by the stage
    assert "Invariance holds up to the **scalar** level." in built["md"]
    assert "a later step holds when ΔCFI ≥ -.010 and ΔRMSEA ≤ .015" in built["md"]
    assert "Structural paths across groups: no evidence that the paths differ between groups." in built["md"]


def test_small_groups_and_failed_draws_are_warned_about_even_if_the_stage_did_not(stages, tmp_path):
    dirs = dict(stages["dirs"])
    for stage in ("invariance", "sem"):
        shutil.copytree(stages["dirs"][stage], tmp_path / stage)
        j = tmp_path / stage / f"{stage}.json"
        m = json.loads(j.read_text())
        m["warnings"] = []
        j.write_text(json.dumps(m))
        dirs[stage] = tmp_path / stage
    report = rp.build_report(rp.read_outputs(dirs), rp.DEFAULTS)
    warnings = report.findings.warnings
    assert "invariance: group g3 (n = 9) left out: fewer than 30 respondents" in warnings
    assert "structural model (sem): 2 of 500 bootstrap draws failed" in warnings


def test_simulated_data_are_named_on_the_first_line(built, stages, tmp_path):
    assert built["md"].splitlines()[0].startswith("> **SIMULATED DATA")
    body = built["html"].split("<body>", 1)[1]
    assert body.lstrip().startswith('<p class="simulated"')
    # The same outputs without the simulation's mark: no such line.
    dirs = {}
    for stage, src in stages["dirs"].items():
        shutil.copytree(src, tmp_path / stage)
        for j in (tmp_path / stage).glob("*.json"):
            m = json.loads(j.read_text())
            m["simulated"] = False
            j.write_text(json.dumps(m))
        dirs[stage] = tmp_path / stage
    rp.run(dirs, tmp_path / "report", stages["params"], stages["instrument"])
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.splitlines()[0] == "# Small test scale: scale validation report" and "SIMULATED" not in md


def test_absent_stages_are_reported_as_not_run(run_cli, stages, tmp_path):
    d = stages["dirs"]
    code, out, err = run_cli("report", "--clean", d["clean"], "--split", d["split"], "--efa", d["efa"],
                             "--invariance", tmp_path / "nope", "--sem", tmp_path / "nope2", "--out", tmp_path / "r")
    assert code == 0, err
    assert "not run: content, cfa, reliability, invariance, sem, power" in out
    md = (tmp_path / "r" / "report.md").read_text()
    assert re.findall(r"^## (.+)$", md, flags=re.M) == list(rp.SECTIONS.values())
    for stage in ("content validity (content)", "CFA", "reliability", "invariance", "structural model (sem)", "power"):
        assert f"The {stage} stage was not run" in md, stage
    assert f"{tmp_path / 'nope' / 'invariance.json'}" in md
    for key in rp.FIGURES:  # declared outputs exist even then
        assert (tmp_path / "r" / "figures" / f"{key}.svg").stat().st_size > 0
    assert pd.read_csv(tmp_path / "r" / "plots" / "structural_paths.csv").empty


def test_no_personal_data_and_no_raw_rows_in_the_report(built, stages):
    raw = pd.read_csv(stages["root"] / "raw" / "responses.csv", dtype=str)
    texts = [built["md"], built["html"]] + [p.read_text() for p in (built["out"] / "tables").glob("*.csv")]
    everything = "\n".join(texts)
    for col in ("email", "respondent_id"):
        for value in raw[col].dropna().unique():
            assert value not in everything, (col, value)
    excl = pd.read_csv(stages["dirs"]["clean"] / "exclusions.csv", dtype=str)
    for value in excl["value"].dropna().unique():
        if "=" in value:  # the answers behind an exclusion
            assert value not in everything


def test_the_report_is_deterministic(built, stages, tmp_path):
    rp.run(stages["dirs"], tmp_path / "again", stages["params"], stages["instrument"])
    for rel in ["report.md", "report.html", "report.json"] + [f"figures/{k}.svg" for k in rp.FIGURES]:
        assert (tmp_path / "again" / rel).read_bytes() == (built["out"] / rel).read_bytes(), rel


def test_html_is_self_contained(built):
    refs = re.findall(r'(?:src|href)="([^"]+)"', built["html"])
    assert refs and all(r.startswith(("#", "data:")) for r in refs), [r for r in refs if not r.startswith(("#", "data:"))]
    assert "<link" not in built["html"] and "@import" not in built["html"]


def test_report_cli_errors_are_one_line(run_cli, stages, tmp_path):
    code, _, err = run_cli("report", "--out", tmp_path / "r")
    assert code == 2 and err.startswith("Error: give at least one stage output directory")
    bad = tmp_path / "cfa"
    bad.mkdir()
    (bad / "cfa.json").write_text("{not json")
    code, _, err = run_cli("report", "--cfa", bad, "--out", tmp_path / "r")
    assert code == 2 and f"{bad / 'cfa.json'}: not valid JSON" in err and len(err.strip().splitlines()) == 1
    params = tmp_path / "p.yaml"
    params.write_text("report: {cfi_min: high}\n")
    code, _, err = run_cli("report", "--efa", stages["dirs"]["efa"], "--params", params, "--out", tmp_path / "r")
    assert code == 2 and "report.cfi_min: a number between 0 and 1, got 'high'" in err
    params.write_text("report: {cfi: 0.9}\n")
    code, _, err = run_cli("report", "--efa", stages["dirs"]["efa"], "--params", params, "--out", tmp_path / "r")
    assert code == 2 and "report.cfi: unknown key" in err


def test_efa_stage_is_quiet_in_a_pipe(run_cli, stages, tmp_path):
    """Under pytest stderr is captured, not a terminal: the polychoric and parallel-analysis bars stay off."""
    code, out, err = run_cli("efa", "--data", stages["dirs"]["split"] / "efa.csv", "--instrument", stages["instrument"],
                             "--correlation", "polychoric", "--params", stages["params"], "--out", tmp_path / "efa")
    assert code == 0, err
    # No bar ("desc: 40%|..."); a warning may still name parallel analysis's resampled data sets.
    assert "%|" not in err and "polychoric correlations" not in err and "\r" not in err


# --------------------------------------------------------------------------------- headless Chromium


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {key: i.getAttribute('data-key'), w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}; });
  var heads = Array.prototype.map.call(document.querySelectorAll('section > h2'), function (h) { return h.textContent; });
  var tables = Array.prototype.map.call(document.querySelectorAll('table[data-key]'), function (t) { return t.getAttribute('data-key'); });
  var pre = document.createElement('pre');
  pre.id = 'gapscale-check';
  pre.textContent = JSON.stringify({imgs: imgs, heads: heads, tables: tables,
    first: document.body.firstElementChild.textContent});
  document.body.appendChild(pre);
});
</script>"""

@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (CI has none); the rendering "
                                               "check runs where /usr/bin/chromium exists")
def test_report_renders_in_headless_chromium(built, tmp_path):
    browser = chromium()
    page = tmp_path / "check.html"
    page.write_text(built["html"].replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    flags = CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="gapscale-check">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, f"no check output from Chromium: {dom.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    assert check["first"].startswith("SIMULATED DATA")
    assert check["heads"] == list(rp.SECTIONS.values())
    assert sorted(i["key"] for i in check["imgs"]) == sorted(rp.FIGURES)
    broken = [i for i in check["imgs"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, broken
    assert {t.stem for t in (built["out"] / "tables").glob("*.csv")} == set(check["tables"])

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = subprocess.run([browser, *flags, "--window-size=1280,8000", f"--screenshot={shot}",
                           (built["out"] / "report.html").as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 8000) and len(data) > 50_000  # a page with content, not a blank image


# The default study's outputs (dvc repro of this project; GAPSCALE_DEFAULT_STUDY names another checkout).
STUDY = Path(os.environ.get("GAPSCALE_DEFAULT_STUDY", ROOT))
STUDY_DIRS = {"clean": STUDY / "data/interim/clean", **{s: STUDY / "data/processed" / s for s in
                                                         ("split", "efa", "cfa", "reliability", "invariance", "sem")}}


@pytest.mark.skipif(not all((d / f).is_file() for s, d in STUDY_DIRS.items()
                            for f in (rp.STAGE_FILES[s][0], *rp.STAGE_FILES[s][1])),
                    reason="the default study's stage outputs are not here (run dvc repro; git holds only the metrics)")
def test_the_default_study_report(tmp_path):
    """The report of the default study (20 constructs, FIML, 4 groups, 2,000 bootstrap draws): every
    fit index with three decimals, figures 1-4 in order, no raw header, references = citations, no
    'p = 0.', the per-group tables wide; a headless-Chromium screenshot kept as a test artifact."""
    from test_report_findings import citation_problems, figure_order_problems, fit_index_problems, raw_headers

    out = tmp_path / "report"
    rp.run(STUDY_DIRS, out, STUDY / "params.yaml", STUDY / "instrument/sustainability_gap.yaml")
    md = (out / "report.md").read_text(encoding="utf-8")
    tables = md_tables(md)
    bad, n = fit_index_problems(md, tables)
    assert not bad and n >= 60, (bad, n)
    assert not figure_order_problems(md) and re.findall(r"\*\*Figure (\d+)\*\*", md) == ["1", "2", "3", "4"]  # without --power: no power curve
    assert not raw_headers(tables), raw_headers(tables)
    assert not citation_problems(md), citation_problems(md)
    assert not re.findall(r"\bp\s*[=<>≤≥]\s*0\.\d+", md)
    paths = pd.read_csv(STUDY_DIRS["invariance"] / "invariance_paths.csv")
    assert len(tables["invariance_paths"]) == len(paths.drop_duplicates(["lhs", "rhs"])) < len(paths)
    cfa = pd.read_csv(STUDY_DIRS["cfa"] / "cfa_parameters.csv")
    assert len(tables["cfa_loadings"]) == int((cfa["op"].str.lstrip("'") == "=~").sum()) > 0
    rel = json.loads((STUDY_DIRS["reliability"] / "reliability.json").read_text())
    variants = ((rel.get("cmv") or {}).get("method_factor") or {}).get("variants") or []
    if any(not v.get("admissible") for v in variants):  # an inadmissible method-factor model is not interpreted
        assert "so it is not interpreted" in md
    if "cmv" in rel:  # outputs of this version of the reliability stage: the common-method section
        assert "Harman's single-factor test is reported as a convention only" in md
        assert ("CFA marker technique: models" in md) == bool(rel["cmv"].get("marker"))
    if chromium() is not None:
        screenshot(out / "report.html", "default_report.png", tmp_path / "profile")


# --------------------------------------------------------------------------------- DVC


def dvc_pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def expand(path: str) -> str:
    for d in dvc_pipeline()["vars"]:
        for k, v in d.items():
            path = path.replace("${" + k + "}", v)
    return path


def test_report_stage_depends_on_its_parameters_and_every_stage_output_it_reads():
    pipeline = dvc_pipeline()
    stage = pipeline["stages"]["report"]
    assert set(stage["params"]) == {f"report.{k}" for k in rp.DEFAULTS}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["report"]) == set(rp.DEFAULTS)
    rp.settings(params)
    deps = {expand(d) for d in stage["deps"]}
    assert {"pipeline", "analysis", "instrument"} <= deps  # the code packages (see dvc.yaml)
    cmd = expand(stage["cmd"])
    # power is a stage of the default study (the analytic N per hypothesis with a small Monte Carlo
    # check, a few CPU-s): it reads no data, only the instrument, model, hypotheses and params
    power = pipeline["stages"]["power"]
    assert "--power" in cmd
    assert not [d for d in map(expand, power["deps"]) if d.startswith("data/")], power["deps"]
    assert {"seed", "power", "simulate", "clean"} <= set(power["params"])
    for name, (metrics, tables) in rp.STAGE_FILES.items():
        m = re.search(rf"--{name} (\S+)", cmd)
        assert m, f"the report command does not pass --{name}"
        if name in pipeline["stages"]:  # a stage in the pipeline: the report must rerun when its outputs change
            missing = [f for f in (metrics, *tables) if f"{m.group(1)}/{f}" not in deps]
            assert not missing, f"report stage: add {', '.join(missing)} of the {name} stage to its deps"
    assert list(pipeline["stages"])[-1] == "report", "the report is the last stage"
    # Files the report shows when present: a dependency as soon as the stage that writes them declares them.
    from pipeline.report.model import OPTIONAL_FILES

    for name, files in OPTIONAL_FILES.items():
        m = re.search(rf"--{name} (\S+)", cmd)
        outs = {expand(next(iter(o)) if isinstance(o, dict) else o)
                for o in pipeline["stages"].get(name, {}).get("outs", []) + pipeline["stages"].get(name, {}).get("metrics", [])}
        missing = [f for f in files if f"{m.group(1)}/{f}" in outs and f"{m.group(1)}/{f}" not in deps]
        assert not missing, f"report stage: add {', '.join(missing)} of the {name} stage to its deps"


def test_report_plots_and_metrics_are_declared():
    pipeline = dvc_pipeline()
    stage = pipeline["stages"]["report"]
    plots = {expand(next(iter(p)) if isinstance(p, dict) else p) for p in stage["plots"]}
    assert plots == {f"data/processed/report/figures/{k}.svg" for k in rp.FIGURES}
    metrics = {expand(next(iter(p))) for p in stage["metrics"]}
    assert metrics == {"data/processed/report/report.json"}
    top = {next(iter(p)): next(iter(p.values())) for p in pipeline["plots"]}
    assert {"scree_parallel_analysis", "invariance_ladder", "structural_paths"} <= set(top)


@pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc is not on PATH")
def test_dvc_plots_show_and_metrics_show_read_the_report_outputs(built, stages, tmp_path):
    """The plots of dvc.yaml's top-level section, and the report's metrics, in a scratch DVC project."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": dvc_pipeline()["plots"]}, sort_keys=False))
    efa = tmp_path / "data/processed/efa"
    efa.mkdir(parents=True)
    for f in ("efa_scree.csv", "efa_map.csv"):
        shutil.copy(stages["dirs"]["efa"] / f, efa / f)
    shutil.copytree(built["out"], tmp_path / "data/processed/report")
    shown = subprocess.run(["dvc", "plots", "show", "--json"], cwd=tmp_path, capture_output=True, text=True,
                           env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)["data"]
    for plot_id in ("scree_parallel_analysis", "velicer_map", "invariance_ladder", "structural_paths"):
        assert data.get(plot_id), f"dvc plots show has no data for {plot_id}"
    metrics = subprocess.run(["dvc", "metrics", "show", "--json", "data/processed/report/report.json"], cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=120)
    assert metrics.returncode == 0, metrics.stderr
    assert '"tables"' in metrics.stdout and '"simulated": true' in metrics.stdout
