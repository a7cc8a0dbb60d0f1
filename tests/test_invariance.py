"""Multi-group CFA and measurement invariance against lavaan 0.6-14 / semTools 0.5-6
(tests/reference/invariance.R), parameter recovery on simulated groups, the stage, bad input."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.invariance import Criteria, GroupExcludedWarning, eligible_groups, invariance, measurement_invariance
from analysis.multigroup import (IdentificationWarning, fit_multigroup, lr_test, multigroup_table, wald_equal)
from analysis.simulate import parse_simulation_params, simulate_study
from instrument import parse_instrument

REF = Path(__file__).parent / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
HS_STRUCTURAL = HS_MODEL + "textual ~ visual\nspeed ~ visual + textual\n"
LADDER = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts"),
          "strict": ("loadings", "intercepts", "residuals")}


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "invariance.json").read_text())


@pytest.fixture(scope="module")
def hs():
    return pd.read_csv(REF / "hs_full.csv")


@pytest.fixture(scope="module")
def ladder(hs):
    fits, previous = {}, None
    for name, equal in LADDER.items():
        fits[name] = previous = fit_multigroup(hs, HS_MODEL, "school", equal, start=previous)
    return fits


def assert_fit_matches(ours: dict, ref: dict, tol: float = 1e-5):
    for name, value in ref.items():
        assert ours[name.replace(".", "_")] == pytest.approx(value, rel=tol, abs=tol), name


def assert_parameters_match(ours: pd.DataFrame, ref: list, est_tol=1e-4, se_tol=1e-4):
    ref = pd.DataFrame(ref)
    m = ref.merge(ours, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(ours)
    for r_col, col, tol in [("est_r", "est", est_tol), ("se_r", "se", se_tol), ("ci.lower", "ci_lower", se_tol),
                            ("std.all", "std_all", est_tol)]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < tol, col
    free = m["se"] > 0
    assert np.abs(m.loc[free, "z_r"] - m.loc[free, "z"]).max() < 1e-3


# --------------------------------------------------------------------------- lavaan


@pytest.mark.parametrize("name", list(LADDER))
def test_ladder_matches_lavaan(ladder, lavaan, name):
    """Fit measures (chisq, df, CFI, TLI, RMSEA and its CI, SRMR, logL, AIC, BIC) to 2.3e-7
    relative; estimates 1.7e-5, SEs 2.7e-6, std.all 1.0e-5 (the largest differences seen over
    the four models; lavaan's own convergence tolerance). Four groups: estimates 1.6e-5."""
    assert_fit_matches(ladder[name].fit, lavaan[name]["fit"])
    assert_parameters_match(ladder[name].parameters, lavaan[name]["pe"])


def test_groups_are_in_lavaans_order(ladder, lavaan):
    assert list(ladder["configural"].groups) == lavaan["group_label"]


def test_chisq_difference_tests_match_lavtestlrt(ladder, lavaan):
    ref = lavaan["lrt"]
    names = list(LADDER)
    for k in range(1, len(names)):
        d = lr_test(ladder[names[k]], ladder[names[k - 1]])
        assert d["delta_chisq"] == pytest.approx(ref["delta_chisq"][k], abs=1e-4)
        assert d["delta_df"] == ref["delta_df"][k]
        assert d["delta_pvalue"] == pytest.approx(ref["delta_pvalue"][k], abs=1e-6)
    fit = pd.DataFrame(lavaan["compare_fit"]["fit"])
    d = lr_test(ladder["metric"], ladder["configural"])
    assert d["delta_cfi"] == pytest.approx(fit["cfi"][1] - fit["cfi"][0], abs=1e-6)
    assert d["delta_rmsea"] == pytest.approx(fit["rmsea"][1] - fit["rmsea"][0], abs=1e-6)


def test_partial_scalar_invariance_matches_lavaan(hs, lavaan):
    fit = fit_multigroup(hs, HS_MODEL, "school", ("loadings", "intercepts"), ["x3 ~ 1", "x7~1"])
    assert_fit_matches(fit.fit, lavaan["partial_scalar"]["fit"])
    assert_parameters_match(fit.parameters, lavaan["partial_scalar"]["pe"])
    p = fit.parameters.set_index(["lhs", "op", "group"])
    assert p.loc[("x3", "~1", "Pasteur"), "free"] != p.loc[("x3", "~1", "Grant-White"), "free"]
    assert p.loc[("x1", "~1", "Pasteur"), "free"] == p.loc[("x1", "~1", "Grant-White"), "free"]


def test_four_groups_match_lavaan(hs, lavaan):
    """sqrt(G) in RMSEA and its interval, df over four groups."""
    ref = lavaan["four_groups"]
    data = hs.merge(pd.read_csv(REF / "hs_sex.csv"), on="id")
    data["school_sex"] = data["school"] + "_" + data["sex"].astype(str)
    configural = fit_multigroup(data, HS_MODEL, "school_sex")
    assert list(configural.groups) == ref["group_label"]
    assert_fit_matches(configural.fit, ref["configural"])
    metric = fit_multigroup(data, HS_MODEL, "school_sex", "loadings", start=configural)
    assert_fit_matches(metric.fit, ref["metric"])
    scalar = fit_multigroup(data, HS_MODEL, "school_sex", ("loadings", "intercepts"), start=metric)
    assert_fit_matches(scalar.fit, ref["scalar"]["fit"])
    assert_parameters_match(scalar.parameters, ref["scalar"]["pe"])


def test_second_order_means_follow_lavaan_and_are_flagged(hs, lavaan):
    """lavaan frees every latent mean of group 2 when intercepts are equal, the first-order ones
    under a second-order factor too: not identified. Same chi-square and df, and a warning."""
    model = HS_MODEL + "g =~ visual + textual + speed\n"
    with pytest.warns(IdentificationWarning, match="not be identified"):
        fit = fit_multigroup(hs, model, "school", ("loadings", "intercepts"))
    assert_fit_matches(fit.fit, lavaan["second_order_scalar"]["fit"])


def test_structural_comparison_matches_lavaan(hs, lavaan):
    free = fit_multigroup(hs, HS_STRUCTURAL, "school", "loadings")
    equal = fit_multigroup(hs, HS_STRUCTURAL, "school", ("loadings", "regressions"), start=free)
    assert_fit_matches(free.fit, lavaan["structural_free"]["fit"])
    assert_fit_matches(equal.fit, lavaan["structural_equal"]["fit"])
    assert_parameters_match(equal.parameters, lavaan["structural_equal"]["pe"])
    d = lr_test(equal, free)
    assert d["delta_chisq"] == pytest.approx(lavaan["structural_lrt"]["delta_chisq"][1], abs=1e-4)
    assert d["delta_df"] == 3
    for path, ref in lavaan["structural_wald"].items():
        lhs, rhs = path.split("~")
        w = wald_equal(free, lhs, "~", rhs)
        assert w["chisq"] == pytest.approx(ref["chisq"], abs=1e-3) and w["df"] == ref["df"]
        assert w["pvalue"] == pytest.approx(ref["pvalue"], abs=1e-4)


def test_fiml_matches_lavaan(hs, lavaan):
    """missing = "fiml" per group and pattern: fit measures to 4.5e-7 relative, estimates
    7.3e-6, SEs (observed information) 2.9e-6."""
    ref = lavaan["fiml"]
    data = pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")
    configural = fit_multigroup(data, HS_MODEL, "school", missing="fiml")
    assert list(configural.groups) == ref["group_label"]
    scalar = fit_multigroup(data, HS_MODEL, "school", ("loadings", "intercepts"), missing="fiml", start=configural)
    for fit, name in ((configural, "configural"), (scalar, "scalar")):
        assert_fit_matches(fit.fit, ref[name]["fit"])
        assert_parameters_match(fit.parameters, ref[name]["pe"])
    assert lr_test(scalar, configural)["delta_chisq"] == pytest.approx(ref["lrt"]["delta_chisq"][1], abs=1e-4)


def test_labels_are_shared_across_groups_unless_per_group():
    table = multigroup_table("f =~ x1 + a*x2 + a*x3", ["A", "B"]).rows
    loads = table[(table["op"] == "=~") & (table["rhs"] != "x1")]
    assert loads["free"].nunique() == 1  # one parameter: lavaan's meaning of a label in every group
    table = multigroup_table("f =~ x1 + a*x2 + a*x3", ["A", "B"], labels="per_group").rows
    loads = table[(table["op"] == "=~") & (table["rhs"] != "x1")]
    assert loads.groupby("group")["free"].nunique().tolist() == [1, 1] and loads["free"].nunique() == 2


def test_group_vectors_are_refused_clearly():
    with pytest.raises(InputError, match=r"line 1: f =~ x2: per-group modifiers c\(...\) are not supported"):
        multigroup_table("f =~ x1 + c(a, b)*x2 + x3", ["A", "B"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, message", [
    (dict(group="nope"), "group column 'nope' is not in the data"),
    (dict(group="school", group_equal="slopes"), "unknown category 'slopes'"),
    (dict(group="school", group_equal="loadings", group_partial=["visual =~ x4"]), "'visual =~ x4' is not a parameter"),
    (dict(group="school", group_partial=["x3 ~ "]), "cannot read"),
    (dict(group="school", missing="pairwise"), "missing must be"),
    (dict(group="school", groups=["Pasteur", "Eton"]), "'Eton' is not a value of 'school'"),
    (dict(group="school", groups=["Pasteur"]), "at least two groups"),
])
def test_bad_arguments_are_named(hs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_multigroup(hs, HS_MODEL, **kwargs)


def test_bad_data_is_named(hs):
    one = hs.copy()
    one.loc[one.index[-1], "school"] = "Solo"
    with pytest.raises(ValueError, match="group 'Solo' of 'school' has 1 complete cases for 9 observed variables"):
        fit_multigroup(one, HS_MODEL, "school")
    const = hs.copy()
    const.loc[const["school"] == "Pasteur", "x4"] = 3.0
    with pytest.raises(ValueError, match="column 'x4' is constant in group 'Pasteur'"):
        fit_multigroup(const, HS_MODEL, "school")
    blank = hs.copy()
    blank.loc[[4, 9], "school"] = np.nan
    with pytest.raises(ValueError, match=r"group column 'school' is empty in 2 row\(s\) \(rows 5, 10\)"):
        fit_multigroup(blank, HS_MODEL, "school")
    text = hs.astype({"x2": object})
    text.loc[7, "x2"] = "n/a"
    with pytest.raises(ValueError, match="column 'x2' is not numeric: 'n/a' in row 8"):
        fit_multigroup(text, HS_MODEL, "school")
    with pytest.raises(ValueError, match="constraints are not supported"):
        fit_multigroup(hs, HS_MODEL.replace("x2", "a*x2").replace("x3", "b*x3") + "a == b\n", "school")


def test_small_groups_are_left_out_and_reported(hs):
    data = hs.copy()
    rows = np.random.default_rng(1).permutation(len(data))
    data.loc[rows[:8], "school"] = "Tiny"  # 8 rows for 9 variables
    data.loc[rows[8:60], "school"] = "Small"  # 52 rows
    data.loc[rows[60:130], "school"] = "Flat"
    data.loc[rows[60:130], "x5"] = 4.0
    data.loc[rows[130], "school"] = np.nan
    table, order = eligible_groups(data, "school", [f"x{k}" for k in range(1, 10)], min_group_size=60)
    t = table.set_index("group")
    assert t.loc["Tiny", "n"] == 8 and not t.loc["Tiny", "used"] and "more rows than variables" in t.loc["Tiny", "reason"]
    assert not t.loc["Small", "used"] and "min_group_size = 60" in t.loc["Small", "reason"]
    assert not t.loc["Flat", "used"] and "x5 does not vary" in t.loc["Flat", "reason"]
    assert t.loc["", "n"] == 1 and "no value" in t.loc["", "reason"]
    assert order[0] == t.loc[["Pasteur", "Grant-White"], "n"].idxmax()  # the largest group is the reference
    assert sorted(order) == ["Grant-White", "Pasteur"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = measurement_invariance(data, HS_MODEL, "school", levels=("configural", "metric"), min_group_size=60)
    excluded = " | ".join(str(w.message) for w in caught if issubclass(w.category, GroupExcludedWarning))
    for expected in ("group 'Tiny' of 'school' (n = 8) left out", "group 'Small'", "group 'Flat'",
                     "without a value in 'school' left out"):
        assert expected in excluded, expected  # every exclusion is announced
    assert result.summary["groups_used"] == order
    assert {g["group"] for g in result.summary["groups_left_out"]} == {"Tiny", "Small", "Flat", ""}
    with pytest.raises(ValueError, match="needs at least two groups that can be fitted; groups: .*Tiny: n = 8"):
        eligible_groups(data, "school", [f"x{k}" for k in range(1, 10)], min_group_size=200)


def test_bad_criteria_and_levels(hs):
    with pytest.raises(ValueError, match="delta_cfi is the CFI drop"):
        Criteria(delta_cfi=0.01)
    with pytest.raises(ValueError, match="criterion must be one of"):
        Criteria(criterion="bic")
    with pytest.raises(ValueError, match="levels must start with 'configural'"):
        measurement_invariance(hs, HS_MODEL, "school", levels=("metric", "scalar"))


# --------------------------------------------------------------------------- the ladder on HS


def test_ladder_decisions_on_hs(hs):
    """By school, scalar invariance fails on ΔCFI (the intercepts of x3 and x7 differ); freeing
    them gives partial scalar invariance and latent mean differences."""
    criteria = Criteria(configural_rmsea=0.10)  # HS's configural RMSEA is .097
    full = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                  criteria=criteria)
    assert full.level == "metric"
    assert full.fit["holds"].tolist() == [True, True, False, False]
    assert "ΔCFI -0.0385" in full.summary["steps"]["scalar"]["reason"]
    assert full.latent_means.empty
    partial = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                     group_partial=["x3 ~ 1", "x7 ~ 1"], criteria=criteria, levels=LADDER)
    assert partial.level == "strict" and partial.summary["partial_invariance"]
    means = partial.latent_means.set_index("latent")
    assert list(means.index) == ["visual", "textual", "speed"] and (means["group"] == "Grant-White").all()
    ref = json.loads((REF / "invariance.json").read_text())["partial_scalar"]["pe"]
    ref = pd.DataFrame(ref)
    ref = ref[(ref["op"] == "~1") & (ref["group"] == "Grant-White")].set_index("lhs")
    for lat in means.index:
        assert means.at[lat, "est"] == pytest.approx(ref.at[lat, "est"], abs=1e-4)
        assert means.at[lat, "se"] == pytest.approx(ref.at[lat, "se"], abs=1e-4)
    assert means.at["textual", "pvalue"] < 0.001


def test_structural_paths_compared_once_metric_holds(hs):
    result = invariance(hs, HS_MODEL, "school", structural_model=HS_STRUCTURAL, min_group_size=50,
                        reference_group="Pasteur", criteria=Criteria(configural_rmsea=0.10))
    s = result.summary["structural"]
    assert s["compared"] and s["delta_df"] == 3 and not s["paths_differ"]
    assert set(result.paths["rhs"] + "->" + result.paths["lhs"]) == {"visual->textual", "visual->speed",
                                                                     "textual->speed"}
    assert len(result.paths) == 6  # three paths x two groups
    none = invariance(hs, HS_MODEL, "school", structural_model=HS_STRUCTURAL, min_group_size=50)
    assert none.level == "none" and not none.summary["structural"]["compared"]
    assert "metric invariance does not hold" in none.summary["structural"]["reason"]


# --------------------------------------------------------------------------- simulated groups


SIM_INSTRUMENT = """\
name: Three constructs
scale: {type: continuous}
constructs:
  - id: A
    items: [{id: a1}, {id: a2}, {id: a3}, {id: a4}]
  - id: B
    items: [{id: b1}, {id: b2}, {id: b3}, {id: b4}]
  - id: C
    items: [{id: c1}, {id: c2}, {id: c3}, {id: c4}]
context:
  - {id: kind, type: categorical, values: [north, south, east]}
"""
SIM_MODEL = "A =~ a1 + a2 + a3 + a4\nB =~ b1 + b2 + b3 + b4\nC =~ c1 + c2 + c3 + c4\n"
SIM_STRUCTURAL = SIM_MODEL + "B ~ A\nC ~ A + B\n"
NO_DEFECTS = {d: 0.0 for d in ("straightliner", "random_responder", "speeder", "inattentive", "duplicate",
                               "missing_cell", "typo_cell")}


def simulated(groups: dict | None, n: int = 2400, seed: int = 11, missing_cell: float = 0.0) -> pd.DataFrame:
    import yaml

    inst = parse_instrument(yaml.safe_load(SIM_INSTRUMENT))
    params = {"n": n, "loadings": {"default": 0.7}, "structural": {"B": {"A": 0.4}, "C": {"A": 0.3, "B": 0.3}},
              "context": {"kind": {"north": 0.4, "south": 0.35, "east": 0.25}},
              "defects": {**NO_DEFECTS, "missing_cell": missing_cell}, "personal_data": False}
    if groups is not None:
        params["groups"] = groups
    study = simulate_study(inst, parse_simulation_params(params), seed)
    return study.responses


def test_scalar_invariant_simulation_reaches_scalar():
    data = simulated({"column": "kind", "values": {"south": {"latent_means": {"A": 0.5}}}})
    result = invariance(data, SIM_MODEL, "kind", structural_model=SIM_STRUCTURAL, min_group_size=100)
    assert result.level in ("scalar", "strict")
    assert result.summary["n_groups_used"] == 3 and result.summary["reference_group"] == "north"
    means = result.latent_means.set_index(["group", "latent"])
    # latent SD 1 in the population, marker loading .7: the mean on the marker's scale is .7 * .5
    assert means.loc[("south", "A"), "est"] == pytest.approx(0.7 * 0.5, abs=0.08)
    assert means.loc[("south", "A"), "pvalue"] < 0.001
    assert abs(means.loc[("east", "A"), "z"]) < 3
    assert not result.summary["structural"]["paths_differ"]


def test_non_invariant_loading_is_caught_at_the_metric_step():
    data = simulated({"column": "kind", "values": {"east": {"loadings": {"a2": 0.25, "b3": 0.3}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100)
    assert result.level == "configural"
    assert result.fit.set_index("model").at["metric", "delta_pvalue"] < 0.001
    assert not result.summary["steps"]["metric"]["passes"]
    freed = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100,
                                   group_partial=["A =~ a2", "B =~ b3"], levels=("configural", "metric"))
    assert freed.level == "metric"


def test_one_non_invariant_loading_is_caught_by_the_chisq_difference():
    """One loading of eight (.7 in two groups, .3 in the third): the chi-square difference
    rejects metric invariance (p ~ 1e-6); the fit-index rules are less sensitive to a single
    loading (here ΔCFI is -.004), which is why the criterion is a parameter."""
    data = simulated({"column": "kind", "values": {"east": {"loadings": {"a2": 0.3}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100, criteria=Criteria(criterion="chisq"))
    assert result.level == "configural"
    assert result.fit.set_index("model").at["metric", "delta_pvalue"] < 1e-3


def test_non_invariant_intercept_is_caught_at_the_scalar_step():
    data = simulated({"column": "kind", "values": {"south": {"intercepts": {"c2": 0.8, "a4": -0.8}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100)
    assert result.level == "metric" and result.latent_means.empty


def test_a_path_that_differs_is_found():
    data = simulated({"column": "kind", "values": {"east": {"structural": {"C": {"A": -0.3, "B": 0.3}}}}})
    result = invariance(data, SIM_MODEL, "kind", structural_model=SIM_STRUCTURAL, min_group_size=100)
    s = result.summary["structural"]
    assert s["paths_differ"] and s["paths_differing"] == ["C ~ A"]
    east = result.paths[(result.paths["group"] == "east") & (result.paths["lhs"] == "C") & (result.paths["rhs"] == "A")]
    assert east["std_all"].iat[0] == pytest.approx(-0.3, abs=0.1)


def test_fiml_ladder_on_incomplete_simulated_data():
    data = simulated({"column": "kind", "values": {}}, n=1500, missing_cell=0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupExcludedWarning)
        result = measurement_invariance(data, SIM_MODEL, "kind", missing="fiml", min_group_size=100)
    assert result.level in ("scalar", "strict")
    assert sum(result.summary["n_used"].values()) == len(data)


# --------------------------------------------------------------------------- the stage


def test_stage_writes_its_outputs(run_cli, tmp_path, hs):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    (tmp_path / "s.lavaan").write_text(HS_STRUCTURAL.replace("textual ~ visual", "textual ~ a*visual") + "ind := a*2\n")
    (tmp_path / "p.yaml").write_text("invariance:\n  group: school\n  min_group_size: 50\n  missing: listwise\n"
                                     "  configural_rmsea: 0.10\n  reference_group: Pasteur\n")
    code, out, err = run_cli("invariance", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                             "--structural-model", tmp_path / "s.lavaan", "--params", tmp_path / "p.yaml",
                             "--partial", "x3 ~ 1", "--partial", "x7 ~ 1", "--out", tmp_path / "o")
    assert code == 0, err
    assert "level reached: strict (partial: x3 ~ 1, x7 ~ 1)" in out and "no evidence that the paths differ" in out
    o = tmp_path / "o"
    fit = pd.read_csv(o / "invariance_fit.csv")
    assert fit["model"].tolist() == list(LADDER) and fit["holds"].all()
    assert fit.columns.tolist()[:2] == ["model", "chisq"] and fit["delta_df"].tolist()[1:] == [6, 4, 9]
    groups = pd.read_csv(o / "invariance_groups.csv")
    assert groups.columns.tolist() == ["group", "n", "used", "reason"] and groups["n"].sum() == 301
    means = pd.read_csv(o / "invariance_latent_means.csv")
    assert len(means) == 3 and (means["reference"] == "Pasteur").all()
    paths = pd.read_csv(o / "invariance_paths.csv")
    assert len(paths) == 6 and not paths["differs"].any()
    params = pd.read_csv(o / "invariance_parameters.csv")
    assert (params["model"] == "strict").all() and {"group", "est", "se", "std_all"} <= set(params.columns)
    m = json.loads((o / "invariance.json").read_text())
    assert m["level"] == "strict" and m["group"] == "school" and m["simulated"] is False
    assert m["structural"]["compared"] and m["structural"]["delta_df"] == 3
    assert m["n_groups_used"] == 2 and m["partial"] == ["x3 ~ 1", "x7 ~ 1"]


def test_stage_reports_left_out_groups_and_refuses_too_few(run_cli, tmp_path, hs):
    data = hs.copy()
    data.loc[data.index[:3], "school"] = "Three"
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                             "--group", "school", "--min-group-size", "50", "--missing", "listwise",
                             "--out", tmp_path / "o")
    assert code == 0, err
    assert "left out: Three n=3" in out and "WARNING: GroupExcludedWarning: group 'Three'" in err
    groups = pd.read_csv(tmp_path / "o" / "invariance_groups.csv").set_index("group")
    assert not groups.at["Three", "used"] and "3 rows for 9 observed variables" in groups.at["Three", "reason"]
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "school", "--min-group-size", "150", "--out", tmp_path / "o2")
    assert code == 2 and err.count("\n") == 1
    assert "needs at least two groups that can be fitted" in err and "Grant-White: n = 145" in err
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "grade", "--out", tmp_path / "o3")
    assert code == 2 and "no column 'grade' to group by" in err
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "school", "--partial", "visual =~ x9", "--out", tmp_path / "o4")
    assert code == 2 and "'visual =~ x9' is not a parameter of the model" in err


def test_stage_parameters_are_dvc_params():
    import yaml

    from pipeline.invariance import DEFAULTS, settings

    root = Path(__file__).resolve().parents[1]
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["invariance"]
    assert set(stage["params"]) == {f"invariance.{k}" for k in DEFAULTS} | {"efa.drop_items"}
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert set(params["invariance"]) == set(DEFAULTS)
    settings(params, {})
    assert "data/processed/split/cfa.csv" in " ".join(stage["deps"]).replace("${processed}", "data/processed")
    assert "instrument/sustainability_gap.lavaan" in stage["deps"] and "--structural-model" in stage["cmd"]


@pytest.mark.parametrize("section, message", [
    ({"missing": "pairwise"}, "invariance.missing"),
    ({"min_group_size": 1}, "invariance.min_group_size"),
    ({"partial": "x3 ~ 1"}, "invariance.partial"),
    ({"criterion": "bic"}, "invariance.criterion"),
    ({"delta_cfi": 0.01}, "invariance.delta_cfi"),
    ({"groups": "school"}, "invariance.groups: unknown key"),
])
def test_bad_stage_params_are_named(section, message):
    from pipeline.invariance import settings

    with pytest.raises(ValueError, match=message):
        settings({"invariance": section}, {})


def test_analytic_gradient_matches_differences(hs):
    """The chain-rule gradient (loadings, regressions, variances, intercepts, latent means) of
    the FIML -log L against central differences, at a point away from the optimum."""
    from analysis import multigroup as mg

    data = pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")
    observed = [f"x{k}" for k in range(1, 10)]
    groups, xs = mg._numeric_groups(data, "school", observed, None, "fiml")
    table = mg.multigroup_table(HS_STRUCTURAL, groups, ("loadings", "intercepts"))
    models = [mg._GroupModel(table, gi) for gi in range(2)]
    gdata = [mg._group_data(g, x, "fiml", observed) for g, x in zip(groups, xs)]
    theta = mg._starting_values(table, models, gdata, None) + np.random.default_rng(3).normal(0, 0.05, table.n_free)

    def value(th):
        return sum(mg._group_objective(*m.implied(th[m.idx])[:2], d, False)[0] for m, d in zip(models, gdata))

    grad = np.zeros(table.n_free)
    for m, d in zip(models, gdata):
        parts = m.implied(theta[m.idx])
        _, gs, gmu = mg._group_objective(parts[0], parts[1], d, True)
        np.add.at(grad, m.idx, m.gradient(theta[m.idx], gs, gmu, parts))
    numeric = np.array([(value(theta + e) - value(theta - e)) / 2e-6 for e in np.eye(table.n_free) * 1e-6])
    assert np.max(np.abs(grad - numeric)) < 1e-4 * max(1, np.abs(grad).max())
    means = table.rows[(table.rows["matrix"] == "alpha") & (table.rows["free"] > 0)]
    assert len(means) == 3  # the latent means of group 2 are free and in the check
