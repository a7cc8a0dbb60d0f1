"""The report's findings functions on small fixtures (no pipeline run): APA precision of fit
indices, the scaled/robust indices, readable table headers, figure numbering and stated gaps, the
inadmissible-model rule, the nothing-behind-it rule, the new inputs (item descriptives, Mardia,
sample profile, construct correlations, HTMT's missing-data treatment) and the methods text's
citations against its reference list.

The checks on a rendered report (:func:`fit_index_problems`, :func:`figure_order_problems`,
:func:`raw_headers`, :func:`citation_problems`) are also run on the full report built from a
small pipeline in tests/test_report.py.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import apa
from pipeline import report as rp
from pipeline.report import findings as fd
from pipeline.report.findings import common
from pipeline.report.model import Findings, ReferenceList, StageOutputs, Table
from pipeline.report.references import REFERENCES
from pipeline.report.render import render_markdown

# Column names as the stages write them (lavaan's parameterEstimates and fitMeasures, gapscale's
# own): none may head a printed table.
RAW_NAMES = frozenset({
    "lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper", "std_all", "std_all_se",
    "boot_se", "boot_pct_lower", "boot_pct_upper", "boot_bc_lower", "boot_bc_upper", "wald_chisq", "wald_df",
    "wald_pvalue", "pvalue_holm", "differs", "group", "latent", "reference", "model", "chisq", "cfi", "tli", "rmsea",
    "srmr", "aic", "bic", "holds", "delta_chisq", "delta_df", "delta_pvalue", "delta_cfi", "delta_rmsea",
    "delta_srmr", "rmsea_ci_lower", "rmsea_ci_upper", "chisq_scaled", "cfi_robust", "cfi_scaled", "npar",
    "preferred", "construct", "construct_1", "construct_2", "htmt", "n_boot_valid", "variable", "r2", "h2", "item",
    "mean", "sd", "skewness", "kurtosis", "pct_missing", "percent", "level", "mi", "epc", "sepc_all", "raw_alpha",
    "omega", "cr", "ave", "sqrt_ave", "feldt_lower", "feldt_upper", "hypothesis", "statement", "parameter",
    "expected", "supported", "verdict", "used", "reason", "n_items", "max_abs_correlation", "complexity",
})
FIT_NAMES = ("CFI", "TLI", "RMSEA", "SRMR", "ΔCFI", "ΔTLI", "ΔRMSEA", "ΔSRMR")
FIT_VALUE = re.compile(r"^-?(?:\.\d{3}|[1-9]\d*\.\d{3})$")  # three decimals, no leading zero


# --------------------------------------------------------------------------------- checks on a report

def fit_index_problems(md: str, tables: dict[str, pd.DataFrame]) -> tuple[list[str], int]:
    """Every fit index printed in the text (``CFI = .952``, ``RMSEA (robust) = .078 [.075, .081]``,
    ``ΔCFI = -.004``) and in the tables (an ``Index`` row, or a column headed by the index) that is not
    printed with three decimals and no leading zero; and how many were checked."""
    bad, n = [], 0
    text = re.sub(r"\|.*\|", "", md)  # prose only (tables are checked cell by cell below)
    pattern = re.compile(r"(Δ?(?:CFI|TLI|RMSEA|SRMR))(?: \((?:robust|scaled)\))? = (-?[\d.]*\d)(?: \[(-?[\d.]*\d), (-?[\d.]*\d)\])?")
    for m in pattern.finditer(text):
        for v in (x for x in m.groups()[1:] if x is not None):
            n += 1
            if not FIT_VALUE.match(v):
                bad.append(f"text: {m.group(0)}")
    for key, t in tables.items():
        if "Index" in t.columns and "Value" in t.columns:
            for name, value, ci in zip(t["Index"], t["Value"], t.get("90% CI", [""] * len(t))):
                if str(name).split(" ")[0] in FIT_NAMES:
                    n += 1
                    if not FIT_VALUE.match(value):
                        bad.append(f"{key}: {name} = {value}")
                    for v in re.findall(r"-?[\d.]+", ci or ""):
                        n += 1
                        if not FIT_VALUE.match(v):
                            bad.append(f"{key}: {name} CI {ci}")
        for col in t.columns:
            if str(col).split(" ")[0] in FIT_NAMES:
                for v in t[col]:
                    if str(v).strip():
                        n += 1
                        if not FIT_VALUE.match(str(v).rstrip("*")):
                            bad.append(f"{key}: {col} = {v}")
    return bad, n


def figure_order_problems(md: str) -> list[str]:
    """Figures must be numbered 1, 2, 3, ... in the order of their first mention, with no gap."""
    first = list(dict.fromkeys(int(x) for x in re.findall(r"Figure (\d+)", md)))
    expected = list(range(1, len(first) + 1))
    return [] if first == expected else [f"figures in order of first mention: {first}, expected {expected}"]


def raw_headers(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Table headers that are a stage's raw column name (or look like one: snake_case)."""
    return [f"{key}: {c}" for key, t in tables.items() for c in t.columns
            if str(c) in RAW_NAMES or re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", str(c))]


def md_tables(text: str) -> dict[str, pd.DataFrame]:
    out = {}
    for m in re.finditer(r"<!-- table: (\w+) -->\n(?:.*\n)*?((?:\|.*\|\n)+)", text):
        lines = m.group(2).strip().splitlines()
        split = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
        out[m.group(1)] = pd.DataFrame(split[2:], columns=split[0])
    return out


CITATION = re.compile(r"([A-ZÖ][\w\-öä]+(?: & [A-ZÖ][\w\-öä]+| et al\.)?), (\d{4})")


def section_text(md: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, flags=re.S | re.M)
    return m.group(1) if m else ""


def citation_problems(md: str) -> list[str]:
    """The methods text cites every reference of the list and no other; and no section cites a work
    missing from the list. Citations are matched as (first author's surname, year)."""
    refs = section_text(md, rp.SECTIONS["references"])
    listed = {(m.group(1), m.group(2)) for m in re.finditer(r"^([A-ZÖ][\w\-öä]+), [^\n]*?\((\d{4})\)", refs, re.M)}

    def cited(text):
        return {(m.group(1).split(" ")[0], m.group(2)) for m in CITATION.finditer(text)}

    methods = cited(section_text(md, rp.SECTIONS["methods"]))
    body = cited(md.split(f"## {rp.SECTIONS['references']}")[0])
    out = []
    if methods != listed:
        out.append(f"methods text cites {sorted(methods - listed)} not in the list; the list has {sorted(listed - methods)} "
                   "the methods text does not cite")
    if not body <= listed:
        out.append(f"cited but not listed: {sorted(body - listed)}")
    if not listed:
        out.append("no reference list")
    return out


# --------------------------------------------------------------------------------- fixtures

CUTS = dict(rp.DEFAULTS)


def stage(name, metrics=None, tables=None, documents=None) -> StageOutputs:
    return StageOutputs(name, None, metrics, tables or {}, (), documents or {})


def outputs(**given) -> dict[str, StageOutputs]:
    return {name: given.get(name, stage(name)) for name in rp.STAGE_FILES}


FIT = {"chisq": 812.4, "df": 246, "pvalue": 1e-9, "cfi": 0.9524, "tli": 0.9461, "rmsea": 0.0781,
       "rmsea_ci_lower": 0.0752, "rmsea_ci_upper": 0.0813, "srmr": 0.0412, "aic": 30111.2, "bic": 30400.9,
       "ntotal": 600}
ROBUST = dict(FIT, chisq_scaled=700.2, df_scaled=246, pvalue_scaled=1e-7, cfi_scaled=0.9611, tli_scaled=0.9561,
              rmsea_scaled=0.0702, cfi_robust=0.9587, tli_robust=0.9535, rmsea_robust=0.0723,
              rmsea_ci_lower_robust=0.0689, rmsea_ci_upper_robust=0.0757)


def cfa_params() -> pd.DataFrame:
    rows = [dict(lhs=f, op="'=~", rhs=f"{f}{k}", label="", est=1.0 if k == 1 else 0.9, se=0.0 if k == 1 else 0.05,
                 z=None if k == 1 else 18.0, pvalue=None if k == 1 else 1e-20, ci_lower=None, ci_upper=None,
                 std_all=0.7 + 0.02 * k) for f in ("A", "B") for k in (1, 2, 3)]
    return pd.DataFrame(rows)


def cfa_stage(**metrics) -> StageOutputs:
    m = {"estimator": "ML", "missing": "fiml", "n_rows": 600, "converged": True, "iterations": 12, "fit": FIT,
         "inadmissible": [], "admissible": True}
    m.update(metrics)
    return stage("cfa", m, {"cfa_parameters.csv": cfa_params()})


def section_text_of(sec) -> str:
    return "\n".join(b if isinstance(b, str) else "\n".join(b) if isinstance(b, list) else "" for b in sec.blocks)


# --------------------------------------------------------------------------------- fit indices

def test_fit_indices_print_with_three_decimals_and_no_leading_zero():
    assert [apa.fmt_fit(x) for x in (0.95234, 0.0781, 1.0013, -0.0042, 0.0, None)] == \
        [".952", ".078", "1.001", "-.004", ".000", ""]
    assert apa.fmt_fit_ci(0.0752, 0.0813) == "[.075, .081]"
    text = common.fit_sentence(FIT, "ML")
    assert text == "χ²(246) = 812.40, p < .001, CFI = .952, TLI = .946, RMSEA = .078 [.075, .081], SRMR = .041"
    table = common.fit_table(FIT, CUTS, "ML").set_index("Index")
    assert table.at["CFI", "Value"] == ".952" and table.at["RMSEA", "90% CI"] == "[.075, .081]"
    assert table.at["TLI", "Cut-off"] == "≥ .95" and table.at["TLI", "Meets"] == "No"
    bad, n = fit_index_problems(text, {"fit": table.reset_index()})
    assert not bad and n == 12


def test_p_values_written_by_a_stage_are_put_in_apa_form():
    assert apa.apa_p_in_text("no evidence (Δχ² = 91.69, Δdf = 90, p = 0.431); p<0.001; gap = 0.5; p = 1.000") == \
        "no evidence (Δχ² = 91.69, Δdf = 90, p = .431); p<.001; gap = 0.5; p = 1.000"
    inv = stage("invariance", {"structural": {"answer": "no evidence that the paths differ (p = 0.431)"},
                               "warnings": ["group g3: Wald p = 0.012"]},
                {"invariance_fit.csv": pd.DataFrame([dict(model="configural", chisq=10.0, df=5, cfi=0.99, holds=True)])})
    f = Findings()
    text = section_text_of(fd.invariance_section(inv, f, CUTS, {}))
    assert "(p = .431)" in text and "p = .012" in text and "invariance: group g3: Wald p = .012" in f.warnings


def test_the_precision_check_catches_two_decimals_and_leading_zeros():
    bad, _ = fit_index_problems("CFI = 0.95, RMSEA = .08 [.075, .081], SRMR = .041", {})
    assert bad == ["text: CFI = 0.95", "text: RMSEA = .08 [.075, .081]"]


@pytest.mark.parametrize("estimator, kind, cfi", [("ML", "standard", ".952"), ("MLR", "robust", ".959"),
                                                  ("WLSMV", "robust", ".959")])
def test_scaled_estimators_show_the_robust_indices(estimator, kind, cfi):
    shown = common.shown_fit(ROBUST, estimator)
    assert shown.kind == kind
    table = common.fit_table(ROBUST, CUTS, estimator).set_index("Index")
    label = "" if kind == "standard" else f" ({kind})"
    assert table.at["CFI" + label, "Value"] == cfi
    if kind != "standard":
        assert table.at["χ² (scaled)", "Value"] == "700.20" and table.at["RMSEA (robust)", "90% CI"] == "[.069, .076]"
        assert "CFI (robust) = .959" in common.fit_sentence(ROBUST, estimator)
        assert common.fit_sentence(ROBUST, estimator).startswith("scaled χ²(246) = 700.20")


def test_scaled_indices_when_the_stage_wrote_no_robust_ones():
    fit = {k: v for k, v in ROBUST.items() if "robust" not in k}
    assert common.shown_fit(fit, "WLSMV").kind == "scaled"
    assert "CFI (scaled) = .961" in common.fit_sentence(fit, "WLSMV")


# --------------------------------------------------------------------------------- tables

def test_per_group_tables_are_wide_with_readable_headers():
    groups = ("g1", "g2", "g3")
    paths = pd.DataFrame([dict(lhs=y, op="~", rhs=x, label="", group=g, est=0.3, se=0.05, pvalue=0.001, std_all=-0.31,
                               wald_chisq=2.5, wald_df=2, wald_pvalue=0.29, pvalue_holm=0.58, differs=False)
                          for y, x in (("B", "A"), ("C", "B"), ("C", "A")) for g in groups])
    means = pd.DataFrame([dict(group=g, reference="g1", latent=lat, est=0.1, se=0.05, z=2.0, pvalue=0.045, ci_lower=0.0,
                               ci_upper=0.2, std_all=0.09) for lat in "ABC" for g in groups[1:]])
    inv = stage("invariance", {"group": "grp", "estimator": "ML", "steps": {}},
                {"invariance_fit.csv": pd.DataFrame([dict(model="configural", chisq=10.0, df=5, cfi=0.99, tli=0.98,
                                                          rmsea=0.03, srmr=0.02, holds=True)]),
                 "invariance_paths.csv": paths, "invariance_latent_means.csv": means})
    f = Findings()
    sec = fd.invariance_section(inv, f, CUTS, {})
    tables = {b.key: b.frame for b in sec.blocks if isinstance(b, Table)}
    assert len(tables["invariance_paths"]) == 3 and len(tables["invariance_latent_means"]) == 3
    assert list(tables["invariance_paths"].columns) == ["Path", "β (g1)", "β (g2)", "β (g3)", "Wald χ²", "df", "p",
                                                        "p (Holm)", "Differs"]
    assert tables["invariance_paths"].iloc[0].tolist()[:2] == ["B ← A", "-.31**"]
    assert not raw_headers(tables)
    assert raw_headers({"t": pd.DataFrame(columns=["lhs", "Path", "wald_chisq"])}) == ["t: lhs", "t: wald_chisq"]


# --------------------------------------------------------------------------------- figures

def test_figures_numbered_in_order_of_appearance_and_a_missing_stage_is_a_stated_gap(tmp_path):
    scree = pd.DataFrame({"factor": [1, 2, 3], "observed_fa": [3.1, 1.2, 0.4], "random_fa": [1.3, 1.1, 1.0]})
    efa = stage("efa", {"n": 300, "items": 6, "correlation": "pearson", "extraction": "minres", "rotation": "oblimin",
                        "kmo": 0.8, "n_factors": {"used": 2}, "fit": {}, "converged": True},
                {"efa_scree.csv": scree})
    report = fd.build_report(outputs(efa=efa, cfa=cfa_stage()), CUTS)
    md = render_markdown(report)
    assert not figure_order_problems(md)
    assert re.findall(r"\*\*Figure (\d+)\*\*", md) == ["1"]  # the scree plot; no path diagram, no ladder
    assert "No figure of the EFA loadings:" in md and "No figure of the path diagram: the structural model" in md
    assert "No figure of the invariance ladder: the invariance stage was not run" in md
    assert set(report.figures) == {"scree", "loadings", "path_diagram", "invariance_ladder", "power_curve"}  # files for DVC
    assert report.metrics["figures"] == 1
    assert figure_order_problems("Figure 2 ... Figure 1") and figure_order_problems("Figure 1 ... Figure 3")


# --------------------------------------------------------------------------------- inadmissible models

EQUAL_BAD = {"variant": "equal", "identified": False, "admissible": False, "chisq": None, "df": None,
             "reasons": "not identified at its solution (singular information matrix): the data do not determine "
                        "172 parameters (18 factor variances, 153 factor covariances, 1 method variance)",
             "delta_chisq": None, "delta_df": None, "delta_pvalue": None, "method_variance_share": None}
FIXED_OK = {"variant": "fixed_correlations", "identified": True, "admissible": True, "reasons": "", "chisq": 2237.43,
            "df": 2412, "delta_chisq": 116.86, "delta_df": 72, "delta_pvalue": 0.00066, "method_variance_share": 0.0071}
MARKER = {"construct": "MARK", "items": ["MARK_1", "MARK_2"], "method_detected": True, "equal_method_effects": True,
          "retained": "method_c", "correlations_biased": False, "method_variance_share": 0.032, "alpha": 0.05,
          "r_marker": 0.12, "lw_pairs": 3, "lw_n": 3000, "lw_significant_unadjusted": 3, "lw_significant_adjusted": 2,
          "lw_mean_abs_change": 0.08}


def reliability_stage(variants=(EQUAL_BAD,), marker=None, tables=None) -> StageOutputs:
    cmv = {"missing": "listwise", "method_factor": {"variants": list(variants), "recommended": None},
           "marker": marker, "warnings": []}
    if marker is None:
        cmv["marker_note"] = "the instrument has no marker construct (marker: true)"
    else:
        cmv["adjusted_paths"] = {"n_paths": 2, "max_abs_difference": 0.0285, "mean_abs_difference": 0.027}
    m = {"missing": "fiml", "harman_first_factor_share": 0.21, "fornell_larcker_violations": [], "cmv": cmv,
         "warnings": []}
    return stage("reliability", m, tables)


def marker_tables() -> dict:
    models = pd.DataFrame({"family": ["unmeasured_method_factor"] + ["marker"] * 5,
                           "model": ["equal", "cfa", "baseline", "method_c", "method_u", "method_r"],
                           "chisq": [np.nan, 101.2, 320.5, 118.0, 103.1, 108.2], "df": [np.nan, 98, 108, 107, 96, 99],
                           "cfi": [np.nan, .999, .98, .998, .999, .999], "rmsea": [np.nan, .01, .03, .012, .01, .01]})
    tests = pd.DataFrame({"family": ["marker"] * 3,
                          "comparison": ["method variance present (Baseline vs Method-C)",
                                         "equal method effects (Method-C vs Method-U)",
                                         "bias in the substantive correlations (Method-C vs Method-R)"],
                          "delta_chisq": [202.46, 14.89, 5.13], "delta_df": [1, 11, 3],
                          "delta_pvalue": [6e-46, 0.188, 0.163],
                          "decision": ["method variance in the substantive items", "equal method effects: Method-C retained",
                                       "no bias in the factor correlations"]})
    paths = pd.DataFrame({"lhs": ["Y", "Z"], "op": "~", "rhs": ["X", "Y"], "label": "",
                          "std_all_unadjusted": [0.4719, 0.4782], "std_all_adjusted": [0.4433, 0.4533],
                          "std_all_difference": [-0.0285, -0.0249]})
    return {"cmv_models.csv": models, "cmv_tests.csv": tests, "cmv_paths.csv": paths}


def test_an_inadmissible_method_factor_model_is_not_interpreted():
    f = Findings()
    text = section_text_of(fd.reliability_section(reliability_stage(), f, CUTS, {}))
    assert "Harman's single-factor test is reported as a convention only" in text and "21.0%" in text
    assert "insensitive" in text
    assert "with one equal method loading is inadmissible (not identified at its solution" in text
    assert "so it is not interpreted" in text and "Δχ²" not in text
    assert "fixed_correlations" in text  # the admissible variant is named
    assert "No marker variable: the instrument has no marker construct" in text
    assert "the unmeasured method factor model (equal) is inadmissible" in f.not_held
    methods = section_text_of(fd.methods_section(outputs(reliability=reliability_stage()), Findings(), CUTS))
    assert "inadmissible" in methods and "Δχ²" not in methods and "no marker variable" in methods
    # the admissible variant is interpreted
    text = section_text_of(fd.reliability_section(reliability_stage([EQUAL_BAD, FIXED_OK]), Findings(), CUTS, {}))
    assert "is admissible: adding the method factor changes the fit by Δχ²(72) = 116.86, p < .001" in text
    assert "0.7%" in text


def test_marker_technique_section():
    f = Findings()
    sec = fd.reliability_section(reliability_stage([EQUAL_BAD], MARKER, marker_tables()), f, CUTS, {})
    tables = {b.key: b for b in sec.blocks if isinstance(b, Table)}
    assert {"cmv_marker_models", "cmv_marker_tests", "cmv_paths"} <= set(tables)
    models = tables["cmv_marker_models"].frame
    assert list(models.iloc[:, 0]) == ["CFA", "Baseline", "Method-C", "Method-U", "Method-R"]
    tests = tables["cmv_marker_tests"].frame
    assert tests.iloc[0, 1] == "χ²(1) = 202.46, p < .001" and tests.iloc[1, 1] == "χ²(11) = 14.89, p = .188"
    assert list(tables["cmv_paths"].frame.iloc[:, 3]) == ["-0.03", "-0.02"]
    text = section_text_of(sec)
    assert "found method variance" in text and "3.2%" in text and "does not bias" in text
    assert "r_M = .12" in text and "leaves 2 of 3 construct correlations significant (3 before)" in text
    assert "common-method variance does not bias the construct correlations (CFA marker technique)" in f.held
    keys = set(f.citations.keys)
    assert {"williams2010", "lindell2001", "richardson2009", "podsakoff2003"} <= keys
    methods = section_text_of(fd.methods_section(outputs(reliability=reliability_stage([EQUAL_BAD], MARKER,
                                                                                       marker_tables())),
                                                 Findings(), CUTS))
    assert "the CFA marker technique (Williams et al., 2010) detected method variance (the Method-C model" in methods
    assert "by at most 0.03 (Richardson et al., 2009)" in methods


def test_an_inadmissible_cfa_or_sem_draws_no_conclusion():
    f = Findings()
    bad = cfa_stage(admissible=False, inadmissible=["Heywood case: the variance of A1 is negative (-0.12)"])
    text = section_text_of(fd.cfa_section(bad, f, CUTS))
    assert "The solution is inadmissible:" in text and "not interpreted" in text
    assert not [x for x in f.held + f.not_held if x.startswith("CFA: CFI") or "standardised CFA loading" in x]
    assert "CFA: the solution is inadmissible; its fit and loadings are not interpreted" in f.not_held
    good = Findings()
    fd.cfa_section(cfa_stage(), good, CUTS)
    assert any(x.startswith("CFA: CFI = .952") for x in good.held + good.not_held)

    params = pd.DataFrame([dict(lhs="B", op="~", rhs="A", label="a", est=0.4, se=0.05, pvalue=1e-9, std_all=0.38)])
    hyp = pd.DataFrame([dict(hypothesis="H1", parameter="a", est=0.4, std_all=0.38, ci_lower=0.3, ci_upper=0.5,
                             supported=True, verdict="supported")])
    sem = stage("sem", {"estimator": "ML", "fit": FIT, "admissible": False, "warnings": ["Heywood case"]},
                {"sem_parameters.csv": params, "sem_hypotheses.csv": hyp})
    f = Findings()
    text = section_text_of(fd.sem_section(sem, f, CUTS, {}))
    assert "inadmissible" in text and not any("hypotheses supported" in x for x in f.held)
    assert not any(x.startswith("structural model: CFI") for x in f.held + f.not_held)


# --------------------------------------------------------------------------------- nothing behind it

def sem_stage(defined: bool, interval: str = "boot_pct") -> StageOutputs:
    rows = [dict(lhs="B", op="~", rhs="A", label="a", est=0.4, se=0.05, pvalue=1e-9, std_all=0.38),
            dict(lhs="C", op="~", rhs="B", label="b", est=0.5, se=0.05, pvalue=1e-12, std_all=0.47)]
    if defined:
        rows.append(dict(lhs="ab", op=":=", rhs="a*b", label="ab", est=0.2, se=0.04, pvalue=1e-6, std_all=0.18,
                         boot_pct_lower=0.12, boot_pct_upper=0.29))
    m = {"estimator": "ML", "fit": FIT, "interval": interval, "ci": 0.95,
         "bootstrap": {"requested": 200, "failed": 0, "inadmissible": 0}}
    return stage("sem", m, {"sem_parameters.csv": pd.DataFrame(rows)})


def test_no_sentence_without_something_behind_it():
    # Bootstrap draws but no defined effect and Wald intervals for the hypotheses: no bootstrap sentence.
    f = Findings()
    text = section_text_of(fd.sem_section(sem_stage(defined=False, interval="wald"), f, CUTS, {}))
    assert "bootstrap" not in text.lower() and "Indirect" not in text and "preacher2008" not in f.citations.keys
    # With an indirect effect the sentence says what the draws are for.
    text = section_text_of(fd.sem_section(sem_stage(defined=True, interval="wald"), Findings(), CUTS, {}))
    assert "Confidence intervals of indirect and total effects (the model's defined parameters) come from 200 " \
           "bootstrap draws (Preacher & Hayes, 2008): percentile intervals." in text
    # Bootstrap intervals named for the hypotheses, but no hypothesis table: nothing rests on the draws.
    text = section_text_of(fd.sem_section(sem_stage(defined=False), Findings(), CUTS, {}))
    assert "bootstrap" not in text.lower()
    # Hypotheses on bootstrap intervals without a defined effect: the draws are for the parameters.
    hyp = sem_stage(defined=False)
    hyp.tables["sem_hypotheses.csv"] = pd.DataFrame([dict(hypothesis="H1", parameter="a", est=0.4, std_all=0.38,
                                                          ci_lower=0.3, ci_upper=0.5, supported=True)])
    text = section_text_of(fd.sem_section(hyp, Findings(), CUTS, {}))
    assert "Confidence intervals of the hypothesised parameters come from 200 bootstrap draws" in text


@pytest.mark.parametrize("metrics, expected", [
    ({"rotation_converged": False, "extraction_converged": True}, "the oblimin rotation did not converge"),
    ({"extraction_converged": False, "rotation_converged": True}, "the minres extraction did not converge"),
    ({"warnings": ["ConvergenceWarning: the oblimin rotation did not converge in max_iter=1000 iterations"]},
     "the oblimin rotation did not converge"),
    ({"warnings": ["minres extraction did not converge: ABNORMAL"]}, "the minres extraction did not converge"),
    ({}, "the solution did not converge (efa.json does not say whether the extraction or the rotation)"),
])
def test_the_efa_says_which_part_did_not_converge(metrics, expected):
    m = {"n": 300, "items": 6, "correlation": "pearson", "extraction": "minres", "rotation": "oblimin", "kmo": 0.8,
         "n_factors": {"used": 2}, "fit": {"chisq": 10.0, "df": 4, "pvalue": 0.04, "tli": 0.95}, "converged": False,
         **metrics}
    text = section_text_of(fd.efa_section(stage("efa", m), Findings(), CUTS, {}))
    assert expected in text
    if "rotation" in expected:
        assert "extraction did not converge" not in text


def test_screens_with_nothing_off_the_scale_say_so():
    m = {"rows_in": 100, "kept": 90, "excluded": 10, "cells_set_missing": 0, "excluded_by_screen": {"attention": 10}}
    text = section_text_of(fd.sample_section(stage("clean", m), stage("split"), Findings()))
    assert "no answer was off the scale" in text and "0 answers" not in text
    assert "counts each excluded respondent once" in text
    m.update(kept=100, excluded=0, excluded_by_screen={"attention": 0})
    text = section_text_of(fd.sample_section(stage("clean", m), stage("split"), Findings()))
    assert "excluded none of them: all 100 were kept" in text and "counts each excluded respondent" not in text


# --------------------------------------------------------------------------------- new inputs

DESCRIPTIVES = pd.DataFrame({"item": ["A1", "A2", "B1"], "n": [600, 598, 590], "mean": [4.12, 3.9, 5.55],
                             "sd": [1.2, 1.31, 1.02], "skewness": [-0.41, 0.12, -2.3], "kurtosis": [0.3, -0.5, 7.9],
                             "pct_missing": [0.0, 0.33, 1.67]})
MARDIA = {"b1p": 12.4, "b2p": 60.2, "skew_chisq": 1240.2, "skew_df": 56, "skew_pvalue": 1e-30, "kurt_z": 9.1,
          "kurt_pvalue": 1e-19, "n": 600}


@pytest.mark.parametrize("estimator, consequence", [
    ("ML", "MLR (robust standard errors and scaled test) is the safer estimator"),
    ("MLR", "MLR, the estimator used, corrects the standard errors and the test for it"),
])
def test_item_descriptives_and_mardia_with_the_consequence_for_the_estimator(estimator, consequence):
    cfa = cfa_stage(estimator=estimator, fit=ROBUST)
    cfa.tables["item_descriptives.csv"] = DESCRIPTIVES
    cfa.documents["mardia.json"] = MARDIA
    f = Findings()
    sec = fd.cfa_section(cfa, f, CUTS)
    tables = {b.key: b.frame for b in sec.blocks if isinstance(b, Table)}
    assert list(tables["item_descriptives"].columns) == ["Item", "n", "M", "SD", "Skewness", "Kurtosis", "% missing"]
    assert tables["item_descriptives"].iloc[2].tolist() == ["B1", "590", "5.55", "1.02", "-2.30", "7.90", "1.7"]
    text = section_text_of(sec)
    assert "1 item(s) reach |skewness| ≥ 2 or |kurtosis| ≥ 7 (Curran et al., 1996)" in text
    assert "Mardia's test of multivariate normality (Mardia, 1970; N = 600)" in text and "χ²(56) = 1,240.20, p < .001" in text and consequence in text
    assert {"mardia1970", "curran1996"} <= set(f.citations.keys)
    held = f.held if estimator == "MLR" else f.not_held
    assert any(x.startswith("multivariate normality is rejected") for x in held)


def test_sample_profile_construct_correlations_and_htmt_missing():
    profile = pd.DataFrame([dict(variable="gender", level="female", n=300, percent=50.0, mean=None, sd=None),
                            dict(variable="gender", level="male", n=300, percent=50.0, mean=None, sd=None),
                            dict(variable="age", level="", n=598, percent=None, mean=41.23, sd=12.5)])
    clean = stage("clean", {"rows_in": 650, "kept": 600, "excluded": 50, "excluded_by_screen": {}},
                  {"sample_profile.csv": profile})
    sec = fd.sample_section(clean, stage("split"), Findings())
    t = next(b.frame for b in sec.blocks if isinstance(b, Table) and b.key == "sample_profile")
    assert list(t.columns) == ["Variable", "Level", "n", "%", "M", "SD"]
    assert t["Variable"].tolist() == ["gender", "", "age"] and t.iloc[2].tolist()[2:] == ["598", "", "41.23", "12.50"]
    methods = section_text_of(fd.methods_section(outputs(clean=clean), Findings(), CUTS))
    assert "The analysed sample: gender: female 50.0%, male 50.0%; age: M = 41.23, SD = 12.50." in methods

    cc = pd.DataFrame({"construct": ["A", "B"], "A": [0.81, 0.42], "B": [0.42, 0.77]})
    htmt = pd.DataFrame({"construct_1": ["A"], "construct_2": ["B"], "htmt": [0.51]})
    for hm, expected in (("ml", "the same treatment of missing answers as the CFA"),
                         ("pairwise", "The HTMT used pairwise treatment of missing answers, the CFA fiml")):
        rel = stage("reliability", {"missing": "fiml", "htmt_missing": hm, "fornell_larcker_violations": []},
                    {"construct_correlations.csv": cc, "htmt.csv": htmt})
        sec = fd.reliability_section(rel, Findings(), CUTS, {})
        tables = {b.key: b for b in sec.blocks if isinstance(b, Table)}
        assert tables["construct_correlations"].frame.values.tolist() == [["A", ".81", ""], ["B", ".42", ".77"]]
        assert expected in tables["htmt"].note


def test_software_versions_are_read_from_the_installed_packages():
    v = fd.software_versions()
    assert set(v) == {"python", "gapscale", "numpy", "scipy", "pandas"}
    import numpy
    import scipy
    assert v["numpy"] == numpy.__version__ and v["scipy"] == scipy.__version__ and v["pandas"] == pd.__version__
    text = section_text_of(fd.methods_section(outputs(cfa=cfa_stage()), Findings(), CUTS, v))
    assert f"NumPy {numpy.__version__} (Harris et al., 2020)" in text


# --------------------------------------------------------------------------------- citations

def test_every_reference_is_complete_and_citable():
    for key, (authors, year, entry) in REFERENCES.items():
        assert entry.startswith(authors.split(" ")[0].split("&")[0].rstrip(",")), key
        assert f"({year})" in entry, key
    with pytest.raises(KeyError, match="no reference 'nobody2020'"):
        Findings().cite("nobody2020")


def test_methods_text_cites_every_method_used_and_no_other():
    report = fd.build_report(outputs(cfa=cfa_stage(), reliability=reliability_stage(),
                                     sem=sem_stage(defined=True)), CUTS, versions=fd.software_versions())
    md = render_markdown(report)
    assert not citation_problems(md), citation_problems(md)
    refs = next(b for s in report.sections if s.key == "references" for b in s.blocks if isinstance(b, ReferenceList))
    assert len(refs.entries) == len(report.findings.citations.keys) and refs.entries == tuple(sorted(refs.entries,
                                                                                                 key=str.lower))
    # Not cited, not listed: no EFA, no invariance, no screening ran here.
    assert not {"horn1965", "chen2007", "meade2012"} & set(report.findings.citations.keys)
    # A text citing a work missing from the list is caught.
    assert citation_problems(md.replace("## References\n", "## References\n\nNobody, A. (2020). Nothing.\n"))


# --------------------------------------------------------------------------------- packaging

def test_the_templates_ship_with_the_package():
    """pyproject.toml installs the report's subpackages and every file of its templates/ directory
    (a template an installed gapscale could not find would fail only at `gapscale report`)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    import pipeline.report.render as render

    root = Path(__file__).resolve().parents[1]
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"pipeline.report", "pipeline.report.findings"} <= set(tool["packages"])
    patterns = tool["package-data"]["pipeline.report"]
    files = [p.relative_to(render.TEMPLATES.parent).as_posix() for p in render.TEMPLATES.iterdir() if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)
    assert {"report.md.j2", "report.html.j2"} <= {Path(f).name for f in files}


# --------------------------------------------------------------------------------- content validity

def _content(flagged=("A_2",), simulated=True):
    metrics = {"n_experts": 10, "n_items_rated": 4, "item_sort": True, "essential_min": 3, "s_cvi_ave": 0.875,
               "s_cvi_ua": 0.5, "flagged_items": list(flagged), "simulated": simulated,
               "reason_counts": {"i_cvi_low": len(flagged), "cvr_below_critical": 0, "sort_not_significant": 0,
                                 "csv_below_critical": 0},
               "recovery": {"precision": 1.0, "recall": 0.5}}
    items = pd.DataFrame({"item": ["A_1", "A_2", "B_1", "B_2"], "construct": ["A", "A", "B", "B"],
                          "i_cvi": [1.0, 0.5, 1.0, 1.0], "kappa": [1.0, 0.32, 1.0, 1.0], "cvr": [1.0, 0.0, 1.0, 1.0],
                          "cvr_critical": [0.8] * 4, "p_sa": [1.0, 0.6, 0.9, 1.0], "c_sv": [1.0, 0.3, 0.8, 1.0],
                          "reasons": [None, "i_cvi_low", None, None]})
    scale = pd.DataFrame({"level": ["construct", "construct", "scale"], "construct": ["A", "B", None],
                          "n_items": [2, 2, 4], "s_cvi_ave": [0.75, 1.0, 0.875], "s_cvi_ua": [0.5, 1.0, 0.75],
                          "n_flagged": [1, 0, 1]})
    return StageOutputs("content", None, metrics, {"content_items.csv": items, "content_scale.csv": scale}, ())


def test_content_validity_section_reports_indices_flags_and_cites_each_method():
    findings = Findings()
    sec = fd.content_section(_content(), findings)
    text = " ".join(b for b in sec.blocks if isinstance(b, str))
    assert "S-CVI/Ave = .88" in text and "S-CVI/UA = .50" in text
    assert "1 of 4 items are flagged for revision (I-CVI below .78: 1): A_2." in text
    assert "precision 1.00 and recall .50" in text
    assert set(findings.citations.keys) == {"polit2007", "lawshe1975", "ayre2014", "anderson1991", "howard2016"}
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    assert [t.key for t in tables] == ["content_scale", "content_flagged"]
    assert tables[0].frame.iloc[-1].tolist()[:2] == ["Scale", "4"]
    assert tables[1].frame["Item"].tolist() == ["A_2"]
    assert tables[1].frame["Criteria not met"].tolist() == ["I-CVI below .78"]
    assert "lhs" not in " ".join(c for t in tables for c in t.frame.columns)


def test_content_validity_without_a_panel_is_a_stated_gap_and_cites_nothing():
    findings = Findings()
    sec = fd.content_section(StageOutputs("content", None, None, {}, ("content.json",)), findings)
    assert not sec.ran and findings.not_run and not findings.citations.keys


def test_no_flag_no_flagged_table_and_real_panels_claim_no_recovery():
    findings = Findings()
    sec = fd.content_section(_content(flagged=(), simulated=False), findings)
    text = " ".join(b for b in sec.blocks if isinstance(b, str))
    assert "No item is flagged" in text and "precision" not in text
    assert [b.key for b in sec.blocks if isinstance(b, Table)] == ["content_scale"]


# --------------------------------------------------------------------------------- power

def test_power_section_states_the_n_needed_its_precision_and_the_gaps():
    metrics = {"n": [200, 400], "replications": 50, "target": 0.8, "estimator": "ML", "missing": "fiml",
               "clean": False, "model_df": 24,
               "required_n": {"H1": {"n_grid": 400, "n_interpolated": 310.0, "power_at_largest_n": 0.9, "note": ""},
                              "H2": {"n_grid": None, "n_interpolated": None, "power_at_largest_n": 0.4, "note": ""}},
               "convergence": {"200": {"convergence_rate": 0.98}, "400": {"convergence_rate": 1.0}},
               "rmsea_power": {"close": {"rmsea0": 0.05, "rmseaA": 0.08, "n_required": 342.0}}}
    by_n = pd.DataFrame({"n": [200, 200, 400, 400], "hypothesis": ["H1", "H2", "H1", "H2"], "power": [.62, .2, .9, .4]})
    findings = Findings()
    sec = fd.power_section(StageOutputs("power", None, metrics, {"power_hypotheses.csv": by_n}, ()), findings)
    text = " ".join(b for b in sec.blocks if isinstance(b, str))
    tables = {b.key: b for b in sec.blocks if isinstance(b, Table)}
    assert tables["power_required_n"].frame["Interpolated N"].tolist() == ["310", ""]
    assert "±.11" in tables["power_required_n"].note  # 2 * sqrt(.8 * .2 / 50) = .113
    assert tables["power_by_n"].frame.columns.tolist() == ["Hypothesis", "N = 200", "N = 400"]
    assert "Not reached on the grid: H2" in text and "N = 200: .98" in text
    assert "close fit (H0: RMSEA = .050 against .080) N = 342" in text
    assert set(findings.citations.keys) == {"muthen2002", "maccallum1996"}
    assert not fd.power_section(StageOutputs("power", None, None, {}, ()), Findings()).ran


def test_power_section_states_the_analytic_n_per_hypothesis_h7_and_the_check():
    """The default study's power stage: the analytic N per hypothesis (how it was obtained), H6 not
    reached with its reason, H7 answered by the invariance stage with its group-size N, the check."""
    metrics = {"n": [500], "replications": 1, "target": 0.8, "alpha": 0.05, "estimator": "ML", "missing": "fiml",
               "clean": True, "model_df": 2600, "required_n": {"H1": {"n_grid": 500, "n_interpolated": 500.0,
                                                                    "power_at_largest_n": 1.0, "note": ""}},
               "analytic": {"required_n": {
                   "H1": {"n_required": 327.4, "n_grid": 329, "power_at_largest_n": 1.0, "note": ""},
                   "H6": {"n_required": None, "n_grid": None, "power_at_largest_n": 0.0,
                          "note": "population value of ind_serial_vcc below min_effect 0.01 (0.0029): no N reaches it"}},
                   "rows_invited": 4000, "rows_kept": 3520, "rows_complete": 2139, "missing_cell_share": 0.0067,
                   "effective_share": 0.8741, "draws": 4000, "n_min": 50, "n_max": 20000, "grid_points": 120},
               "check": {"max_abs_z": 1.2, "within_3_se": True, "median_se_ratio": 1.018,
                         "rows": [{"n": 500, "hypothesis": "H1", "power_mc": 1.0}]},
               "other_hypotheses": {"H7": {"source": "invariance", "group": "relationship_type", "smallest_group": "G2C",
                                           "smallest_share": 0.1, "min_group_size": 100, "n_invited": 2273}},
               "rmsea_power": {"close": {"rmsea0": 0.05, "rmseaA": 0.08, "n_required": 60.0}}}
    findings = Findings()
    sec = fd.power_section(StageOutputs("power", None, metrics, {}, ()), findings)
    text = " ".join(b for b in sec.blocks if isinstance(b, str))
    tables = {b.key: b for b in sec.blocks if isinstance(b, Table)}
    frame = tables["power_required_n"].frame
    assert frame.iloc[:, 0].tolist() == ["H1", "H6", "H7"]
    assert frame.iloc[:, 1].tolist() == ["327", "", ""]
    assert "below min_effect" in frame.iloc[1, 2] and "2,273 invited" in frame.iloc[2, 2] and "G2C" in frame.iloc[2, 2]
    assert "one simulated study of 4,000 respondents" in text and "0.7% of item cells" in text
    assert "1.018 times the analytic ones" in text and "1 replication at N = 500" in text
    assert "binomial standard errors" not in text  # one replication: no power comparison
    assert "power_required_n_mc" not in tables  # one replication: no Monte Carlo table of its own
    assert findings.numbers["power_not_reached"] == 1
    from pipeline.report.findings.power import power_paragraph

    paragraph = power_paragraph(StageOutputs("power", None, metrics, {}, ()), Findings())
    assert "H1 N = 327" in paragraph and "H6 not reached" in paragraph
