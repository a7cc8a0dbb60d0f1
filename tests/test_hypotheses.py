"""The hypotheses file's parts beyond a parameter's sign (analysis/hypotheses.py): its checks,
the verdict of parts, H8's "distinct" (the HTMT interval, and the chi-square test of the two
constructs' correlation fixed at +-1 against lavaan/semTools: tests/reference/hypotheses.R) and
H7's directional group contrasts (against lavaan's := contrast and lavTestWald, and on simulated
data with a known difference planted or absent); the sem stage's rows for them."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.hypotheses import check_hypotheses, distinct_chisq, group_expectations, htmt_part, verdict
from analysis.invariance import Specification, group_contrast, group_contrasts, structural_invariance
from analysis.structural import hypotheses_table
from pipeline.cli import main
from pipeline.sem import _invariance_rows, read_hypotheses

ROOT = Path(__file__).resolve().parents[1]
REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "hypotheses.json").read_text())
HS_MODEL = """visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
textual ~ visual
speed ~ visual + textual"""


# --------------------------------------------------------------------------- the file


def test_the_default_hypotheses_file_is_valid_and_has_the_two_new_parts():
    h = read_hypotheses(ROOT / "instrument" / "sustainability_gap.hypotheses.yaml")
    assert h["H8"]["distinct"] == {"constructs": ["VCC", "VCD"], "htmt_below": 0.85, "correlation_below": 1}
    assert h["H8"]["expect"] == {"VCC ~~ VCD": "negative"}
    assert h["H7"]["groups"]["expect"]["r2"] == {"larger_in": ["B2B", "B2G"], "than": ["B2C", "G2C"]}
    assert h["H7"]["source"] == "invariance"
    model = (ROOT / "instrument" / "sustainability_gap.lavaan").read_text()
    paths = {(e["parameter"], e["lhs"], e["rhs"]) for e in group_expectations(h, model)}
    assert paths == {("r2", "VCD", "TRST"), ("r5", "VCD", "ICHG")}


@pytest.mark.parametrize("spec, message", [
    ({"H": {"statement": "x"}}, "H: no part to test"),
    ({"H": {"expect": {"a": "up"}}}, "H.expect.a: positive or negative, got 'up'"),
    ({"H": {"expect": {"a": "positive"}, "colour": 1}}, "H.colour: unknown key"),
    ({"H": {"expect": {"a": "positive"}, "min_effect": 1.5}}, "H.min_effect"),
    ({"H": {"expect": {"a": "positive"}, "share_of": {"b": "a"}}}, "H.share_of.b: not a parameter of H.expect"),
    ({"H": {"source": "sem"}}, "H.source: 'invariance'"),
    ({"H": {"distinct": {"constructs": ["A"], "htmt_below": 0.85}}}, "H.distinct.constructs: a list of two"),
    ({"H": {"distinct": {"constructs": ["A", "A"], "htmt_below": 0.85}}}, "H.distinct.constructs"),
    ({"H": {"distinct": {"constructs": ["A", "B"]}}}, "H.distinct: no criterion"),
    ({"H": {"distinct": {"constructs": ["A", "B"], "htmt_below": 1.3}}}, "H.distinct.htmt_below: a number above 0"),
    ({"H": {"distinct": {"constructs": ["A", "B"], "correlation_below": 0}}}, "H.distinct.correlation_below"),
    ({"H": {"distinct": {"constructs": ["A", "B"], "versus": "x", "htmt_below": 0.9}}}, "H.distinct.versus: unknown"),
    ({"H": {"groups": {"expect": {"a": {"larger_in": ["x"], "than": ["y"]}}}}}, "H.groups.column"),
    ({"H": {"groups": {"column": "g", "expect": {}}}}, "H.groups.expect: a mapping"),
    ({"H": {"groups": {"column": "g", "expect": {"a": {"larger_in": ["x"]}}}}}, "H.groups.expect.a.than"),
    ({"H": {"groups": {"column": "g", "expect": {"a": {"larger_in": ["x"], "smaller_in": ["z"], "than": ["y"]}}}}},
     "give one of larger_in or smaller_in"),
    ({"H": {"groups": {"column": "g", "expect": {"a": {"larger_in": ["x", "y"], "than": ["y"]}}}}},
     "group 'y' is on both sides"),
    ({"H": {"groups": {"column": "g", "expect": {"a": {"larger_in": [], "than": ["y"]}}}}},
     "H.groups.expect.a.larger_in: a non-empty list"),
    (["H1"], "expected a mapping of hypothesis ids"),
])
def test_check_hypotheses_names_the_key_at_fault(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_hypotheses(spec, "h.yaml")


def test_group_values_are_read_as_text():
    h = check_hypotheses({"H": {"groups": {"column": "g", "expect": {"a": {"smaller_in": 1, "than": [2, 3]}}}}})
    assert h["H"]["groups"]["expect"]["a"] == {"smaller_in": ["1"], "than": ["2", "3"]}


@pytest.mark.parametrize("text, message", [
    # a malformed part: one line, exit 2
    ("H8:\n  distinct: {constructs: [VCC], htmt_below: 0.85}\n",
     "h.yaml: H8.distinct.constructs: a list of two different constructs"),
    # a construct the model lacks: refused before any fit
    ("H8:\n  distinct: {constructs: [VCC, VCX], correlation_below: 1}\n",
     "h.yaml: H8.distinct.constructs: 'VCX' is not a factor (=~) of sustainability_gap.lavaan"),
])
def test_a_bad_distinct_part_is_one_line_and_exit_status_2(tmp_path, capsys, text, message):
    hyp = tmp_path / "h.yaml"
    hyp.write_text(text)
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(data, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["sem", "--data", str(data), "--model", str(ROOT / "instrument" / "sustainability_gap.lavaan"),
              "--hypotheses", str(hyp), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert message in err


def test_verdict_of_parts():
    assert verdict([True, True]) == "supported"
    assert verdict([True, False]) == "partly supported"
    assert verdict([False, False]) == "not supported"
    assert verdict([True, None]) == "not fully tested"  # never "supported" on part of the evidence
    assert verdict([False, None]) == "not supported"
    assert verdict([None, float("nan")]) == "not tested"


def test_hypotheses_table_skips_a_hypothesis_without_a_sign_part():
    p = pd.DataFrame({"lhs": ["y"], "op": ["~"], "rhs": ["x"], "label": ["a"], "est": [0.5], "std_all": [0.4],
                      "ci_lower": [0.2], "ci_upper": [0.8], "pvalue": [0.001]})
    t = hypotheses_table(p, {"H1": {"expect": {"a": "positive"}}, "H2": {"distinct": {"constructs": ["A", "B"]}}})
    assert list(t["hypothesis"]) == ["H1"] and t["verdict"].iat[0] == "supported"
    assert len(hypotheses_table(p, {"H2": {"groups": {}, "source": "invariance"}})) == 0


# --------------------------------------------------------------------------- distinct: HTMT


def test_htmt_part_reads_the_interval_in_either_order_and_says_why_not_tested():
    htmt = pd.DataFrame({"construct_1": ["A", "B"], "construct_2": ["B", "C"], "htmt": [0.36, 0.80],
                         "ci_lower": [0.29, 0.74], "ci_upper": [0.42, 0.86], "n_boot_valid": [1000, 1000]})
    assert htmt_part(htmt, ("B", "A"), 0.85) == {"htmt": 0.36, "ci_lower": 0.29, "ci_upper": 0.42, "supported": True,
                                                   "note": ""}
    assert htmt_part(htmt, ("B", "C"), 0.85)["supported"] is False  # .80, but its upper limit .86 is not below .85
    assert htmt_part(htmt, ("B", "C"), 0.90)["supported"] is True
    assert htmt_part(None, ("A", "B"), 0.85)["supported"] is None
    assert "no HTMT of A and C" in htmt_part(htmt, ("A", "C"), 0.85)["note"]
    point = htmt_part(htmt[["construct_1", "construct_2", "htmt"]], ("A", "B"), 0.85)
    assert point["supported"] is None and point["htmt"] == 0.36 and "htmt_bootstrap: 0" in point["note"]


# --------------------------------------------------------------------------- distinct: chi-square


BFI = pd.read_csv(REF_DIR / "bfi_1000.csv")


def _distinct(key):
    r = REF["distinct"][key]
    names = [line.split("=~")[0].strip() for line in r["model"].splitlines()]
    return r, distinct_chisq(BFI, r["model"], names, r["cutoff"], estimator=r["estimator"], missing="fiml")


@pytest.mark.parametrize("key", ["negative_1", "close_09"])
def test_distinct_chisq_matches_semtools_discriminantValidity(key):
    """FIML on psych::bfi items: N vs E (r = -.17: fixed at -1) and two halves of N (r = .77,
    fixed at .9): the correlation, lavTestLRT's difference and p as semTools 0.5-6's
    discriminantValidity(fit, cutoff) (agreement ~1e-8)."""
    r, ours = _distinct(key)
    assert ours["converged"]
    assert ours["correlation"] == pytest.approx(r["cor"], abs=1e-5)
    assert ours["fixed_at"] == math.copysign(r["cutoff"], r["cor"])
    assert ours["chisq"] == pytest.approx(r["chisq"], abs=1e-4) and ours["df"] == r["df"]
    assert ours["delta_chisq"] == pytest.approx(r["delta_chisq"], abs=1e-3) and ours["delta_df"] == 1
    assert ours["delta_pvalue"] == pytest.approx(r["delta_pvalue"], rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["negative_09", "negative_1_mlr", "close_1"])
def test_distinct_chisq_matches_semtools_more_cases(key):
    """cutoff .9 for the negative pair, MLR (the Satorra-Bentler 2001 scaled difference; 207.1107 vs
    207.1096, relative 5e-6) and cutoff 1 for the close pair."""
    r, ours = _distinct(key)
    assert ours["correlation"] == pytest.approx(r["cor"], abs=1e-5)
    assert ours["delta_chisq"] == pytest.approx(r["delta_chisq"], rel=1e-4)
    assert ours["delta_pvalue"] == pytest.approx(r["delta_pvalue"], rel=1e-2)


def test_distinct_chisq_refuses_what_it_cannot_test():
    with pytest.raises(InputError, match="Q is not a factor"):
        distinct_chisq(BFI, REF["distinct"]["negative_1"]["model"], ("N", "Q"))
    second = "f1 =~ N1 + N2 + N3\nf2 =~ N4 + N5 + E3\ng =~ f1 + f2\n"
    with pytest.raises(InputError, match="f1 measures g"):
        distinct_chisq(BFI, second, ("f1", "g"))


@pytest.mark.slow
def test_distinct_chisq_gives_no_difference_when_the_correlation_is_beyond_the_cutoff():
    """semTools' rule: |r| = .77 >= .5: fixed at its estimate, difference 0, p 1 (not distinct)."""
    r = REF["distinct"]["close_09"]
    ours = distinct_chisq(BFI, r["model"], ("Na", "Nb"), 0.5, missing="fiml")
    assert ours["fixed_at"] == pytest.approx(r["cor"], abs=1e-5)
    assert ours["delta_chisq"] == 0 and ours["delta_pvalue"] == 1


# --------------------------------------------------------------------------- groups: contrasts


def _hs(missing: bool) -> pd.DataFrame:
    hs = pd.read_csv(REF_DIR / "hs_full.csv")
    sex = pd.read_csv(REF_DIR / "hs_sex.csv")
    hs["g"] = hs["school"] + "_" + sex["sex"].astype(str)
    if missing:
        return pd.read_csv(REF_DIR / "hs_missing.csv").merge(hs[["id", "g"]], on="id")
    return hs


def _check_contrasts(key, spec, data):
    free = structural_invariance(data, HS_MODEL, "g", REF["groups"], spec=spec)["free"]
    for r in REF[key]:
        lhs, _, rhs = r["path"].split()
        larger = r["larger"] if isinstance(r["larger"], list) else [r["larger"]]
        ours = group_contrast(free, lhs, "~", rhs, larger, r["than"])
        assert ours["est"] == pytest.approx(r["est"], abs=1e-4)
        assert ours["se"] == pytest.approx(r["se"], abs=1e-4)
        assert ours["z"] == pytest.approx(r["z"], abs=1e-3)
        assert ours["z"] ** 2 == pytest.approx(r["wald_chisq"], abs=1e-3)  # lavTestWald of the same contrast
        assert ours["pvalue"] == pytest.approx(r["pvalue_one_sided"], abs=1e-4)
        assert (ours["ci_lower"], ours["ci_upper"]) == pytest.approx((r["ci_lower"], r["ci_upper"]), abs=1e-4)
        smaller = group_contrast(free, lhs, "~", rhs, larger, r["than"], "smaller_in")
        assert smaller["pvalue"] == pytest.approx(1 - ours["pvalue"], abs=1e-12)


def test_group_contrast_matches_lavaan_defined_contrast_and_lavtestwald():
    """Holzinger & Swineford in four groups (school x sex), loadings equal, paths free, ML: the
    contrast (mean of the path in some groups minus in the others) as lavaan's := parameter
    (est, se, z; one-sided pnorm(z, lower.tail = FALSE)) and lavTestWald (z^2); ~1e-5."""
    _check_contrasts("contrast_ml", Specification("ML", "listwise"), _hs(False))


@pytest.mark.slow
@pytest.mark.parametrize("key, estimator", [("contrast_fiml", "ML"), ("contrast_mlr", "MLR")])
def test_group_contrast_matches_lavaan_with_fiml(key, estimator):
    _check_contrasts(key, Specification(estimator, "fiml"), _hs(True))


def _two_factor_groups(slopes: dict, n: int, seed: int) -> pd.DataFrame:
    """y =~ y1..y3 regressed on x =~ x1..x3 with slope ``slopes[group]``; loadings .8, equal in
    every group (metric invariance holds), latent variances 1."""
    rng = np.random.default_rng(seed)
    frames = []
    for g, b in slopes.items():
        x = rng.standard_normal(n)
        y = b * x + np.sqrt(1 - b ** 2) * rng.standard_normal(n)
        cols = {f"x{i}": 0.8 * x + 0.6 * rng.standard_normal(n) for i in (1, 2, 3)}
        cols.update({f"y{i}": 0.8 * y + 0.6 * rng.standard_normal(n) for i in (1, 2, 3)})
        frames.append(pd.DataFrame({**cols, "g": g}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("planted", [True, False])
def test_group_contrasts_find_a_planted_difference_and_not_an_absent_one(planted):
    """Four groups of 250: the slope .5 in A and B and .1 in C and D (planted: z about 6) or .3
    everywhere (absent): the one-sided contrast A, B > C, D is supported only when planted; the
    opposite direction never is; Holm's adjustment over the hypothesis' two contrasts."""
    slopes = {"A": 0.5, "B": 0.5, "C": 0.1, "D": 0.1} if planted else dict.fromkeys("ABCD", 0.3)
    data = _two_factor_groups(slopes, 250, seed=11)
    model = "x =~ x1 + x2 + x3\ny =~ y1 + y2 + y3\ny ~ b*x\n"
    free = structural_invariance(data, model, "g", list("ABCD"), spec=Specification("ML", "listwise"))["free"]
    hyp = check_hypotheses({"H": {"groups": {"column": "g", "expect": {
        "b": {"larger_in": ["A", "B"], "than": ["C", "D"]}, "y ~ x": {"smaller_in": ["A", "B"], "than": ["C", "D"]}}}}})
    t = group_contrasts(free, group_expectations(hyp, model), "g", list("ABCD"), list("ABCD"), 0.05)
    assert list(t["parameter"]) == ["b", "y ~ x"] and list(t["lhs"]) == ["y", "y"]
    assert t["supported"].tolist() == [planted, False]
    assert abs(t["est"].iat[0] - (0.4 if planted else 0.0)) < 3 * t["se"].iat[0]  # slopes in the marker metric
    p = t["pvalue"].to_numpy()
    holm = np.minimum(1, np.maximum.accumulate(np.sort(p) * [2, 1]))[np.argsort(np.argsort(p))]
    assert t["pvalue_holm"].to_numpy() == pytest.approx(holm)


def test_group_contrasts_not_tested_and_bad_groups():
    hyp = check_hypotheses({"H": {"groups": {"column": "g", "expect": {"b": {"larger_in": ["A"], "than": ["C"]}}}},
                            "K": {"groups": {"column": "other", "expect": {"b": {"larger_in": ["A"], "than": ["C"]}}}}})
    model = "x =~ x1 + x2 + x3\ny =~ y1 + y2 + y3\ny ~ b*x\n"
    e = group_expectations(hyp, model)
    t = group_contrasts(None, e, "g", ["A", "C"], ["A", "C"], reason="metric invariance does not hold")
    assert t["supported"].isna().all()
    assert t["note"].tolist() == ["metric invariance does not hold",
                                  "about groups of other; the paths were compared across g"]
    data = _two_factor_groups({"A": 0.3, "C": 0.3}, 150, seed=2)
    free = structural_invariance(data, model, "g", ["A", "C"], spec=Specification("ML", "listwise"))["free"]
    left = group_contrasts(free, e[:1], "g", ["A"], ["A", "C"])  # C was left out (too small)
    assert left["supported"].isna().all() and "left out (too small to fit): C" in left["note"].iat[0]
    with pytest.raises(InputError, match="H.groups.expect.b: 'Z' is not a value of g"):
        group_contrasts(free, [{**e[0], "than": ["Z"]}], "g", ["A", "C"], ["A", "C"])
    with pytest.raises(InputError, match="H.groups.expect.nope: not a label"):
        group_expectations({"H": {"groups": {"column": "g", "expect": {"nope": {}}}}}, model)


# --------------------------------------------------------------------------- the sem stage's rows


def test_sem_rows_of_a_group_hypothesis_from_invariance_json(tmp_path):
    spec = check_hypotheses({"H7": {"statement": "s", "source": "invariance", "groups": {
        "column": "g", "expect": {"r2": {"larger_in": ["A"], "than": ["B"]},
                                  "r5": {"smaller_in": ["A"], "than": ["B"]}}}}})["H7"]
    inv = tmp_path / "invariance.json"
    inv.write_text(json.dumps({"level": "scalar", "structural": {"compared": True, "paths_differ": False},
                               "contrasts": [{"hypothesis": "H7", "parameter": "r2", "lhs": "y", "rhs": "x",
                                              "est": 0.3, "se": 0.1, "z": 3.0, "pvalue": 0.0013,
                                              "pvalue_holm": 0.0027, "ci_lower": 0.1, "ci_upper": 0.5,
                                              "supported": True, "note": None}]}))
    rows = _invariance_rows("H7", spec, inv)
    assert [r["part"] for r in rows] == ["invariance", "group_difference", "group_difference"]  # no omnibus row
    assert rows[1]["path"] == "y ~ x" and rows[1]["pvalue"] == 0.0027 and rows[1]["supported"] is True
    assert rows[1]["expected"] == "larger in A than in B"
    assert rows[2]["supported"] is None and "--hypotheses" in rows[2]["note"]
    assert verdict([r["supported"] for r in rows]) == "not fully tested"
    missing = _invariance_rows("H7", spec, None)
    assert all(r["supported"] is None for r in missing) and verdict([r["supported"] for r in missing]) == "not tested"


# --------------------------------------------------------------------------- the report


def test_the_report_gives_each_part_its_evidence():
    """The Evidence column and the invariance section's lines, in APA form (no 'p = 0.')."""
    from pipeline.report.findings.invariance import contrast_lines
    from pipeline.report.findings.sem import part_evidence

    assert part_evidence({"part": "htmt", "est": 0.3402, "ci_lower": 0.2745, "ci_upper": 0.4001, "supported": True},
                         0.95) == "HTMT = 0.34, 95% CI [0.27, 0.40] (bootstrap)"
    assert part_evidence({"part": "chisq", "est": -0.3465, "statistic": 1630.76, "df": 1, "pvalue": 0.0,
                          "supported": True}, 0.95) == "r = -.35; constrained: Δχ²(1) = 1,630.76, p < .001"
    assert part_evidence({"part": "group_difference", "est": 0.4444, "ci_lower": 0.2596, "ci_upper": 0.6292,
                          "statistic": 4.714, "pvalue": 0.0312, "supported": True}, 0.95) == \
        "difference of b = 0.44, 95% CI [0.26, 0.63], z = 4.71, one-sided p (Holm) = .031"
    assert part_evidence({"part": "htmt", "supported": float("nan"), "note": "no HTMT results given"}, 0.95) == \
        "not tested: no HTMT results given"
    assert part_evidence({"part": "sign", "est": 0.5, "supported": True}, 0.95) == ""
    lines = contrast_lines([
        {"hypothesis": "H7", "parameter": "r2", "lhs": "VCD", "rhs": "TRST", "direction": "larger_in",
         "groups": "B2B, B2G", "than": "B2C, G2C", "est": 0.44, "ci_lower": 0.26, "ci_upper": 0.63, "z": 4.71,
         "pvalue_holm": 2e-6, "supported": True, "note": None},
        {"hypothesis": "H7", "parameter": "r5", "lhs": "VCD", "rhs": "ICHG", "direction": "smaller_in",
         "groups": "B2C", "than": "B2B", "supported": None, "note": "metric invariance does not hold"}], 0.05)
    assert lines == ["H7 r2 (VCD ~ TRST): larger in B2B, B2G than in B2C, G2C: difference of b = 0.44, 95% CI "
                     "[0.26, 0.63], z = 4.71, one-sided p (Holm) < .001: supported",
                     "H7 r5 (VCD ~ ICHG): smaller in B2C than in B2B: not tested (metric invariance does not hold)"]
