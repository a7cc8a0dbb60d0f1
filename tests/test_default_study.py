"""The default study: control variables (the instrument's coding of context questions, the
simulated effects, the hypothesised model with covariates) and the competing models."""
from __future__ import annotations

import ast
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.clean import recode_reverse
from analysis.coding import code_context, coded_values
from analysis.errors import InputError
from analysis.sem.api import fit_model
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify
from analysis.simulate import covariate_moments, parse_simulation_params, population_model, simulate_study
from instrument import InstrumentError, parse_instrument, parse_model
from instrument.schema import model_problems

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = ("role_management", "experience_years", "org_size_code")

DOC = {
    "name": "Own scale",
    "scale": {"type": "likert", "min": 1, "max": 5},
    "constructs": [{"id": "A", "items": [{"id": "A_1"}, {"id": "A_2"}, {"id": "A_3"}]}],
    "context": [
        {"id": "tier", "type": "categorical", "values": [1, 2, 3], "coding": "dummy", "reference": 2},
        {"id": "size", "type": "categorical", "values": ["1-9", "10+"], "coding": "ordinal"},
        {"id": "market", "type": "categorical", "values": ["EU", "non-EU"], "coding": "dummy"},
        {"id": "age", "type": "number", "min": 16},
        {"id": "site", "type": "categorical", "values": ["a", "b"]},
        {"id": "remark", "type": "text"},
    ],
}


def instrument_of(**changes):
    doc = copy.deepcopy(DOC)
    for k, change in changes.items():
        doc["context"][int(k[1:])].update(change)
    return parse_instrument(doc, source="own.yaml")


# --------------------------------------------------------------------------- coding for models


def test_the_instrument_names_the_model_columns_of_its_context_questions():
    inst = instrument_of()
    assert list(inst.model_columns) == ["tier_1", "tier_3", "size_code", "market_non_EU", "age"]
    assert inst.model_columns["tier_1"] == "1 if tier is 1, else 0 (reference: 2)"
    assert inst.model_columns["size_code"] == "size in order: 1 = 1-9, 2 = 10+"
    by_id = {q.id: q for q in inst.context}
    assert by_id["market"].reference == "EU"  # the first value unless given
    assert by_id["site"].model_columns == {} and by_id["remark"].model_columns == {}


def test_code_context_writes_dummies_codes_and_leaves_missing_answers_missing():
    inst = instrument_of()
    data = pd.DataFrame({"tier": [1, 2, 3, None], "size": ["10+", "1-9", None, "10+"],
                         "market": ["non-EU", "EU", "EU", "moon"], "age": [20.0, 31.5, None, 40.0]})
    out = code_context(data, inst)
    def values(col):
        return out[col].astype(float).fillna(-1).tolist()

    assert values("tier_1") == [1, 0, 0, -1] and values("tier_3") == [0, 0, 1, -1]  # 1.0 read as the value 1
    assert values("size_code") == [2, 1, -1, 2]
    assert values("market_non_EU") == [1, 0, 0, -1]  # a value the instrument does not allow: missing
    assert out["age"].equals(data["age"]) and str(out["tier_1"].dtype) == "Int64"
    assert list(out.columns[:4]) == list(data.columns)  # the answers are kept beside their coding
    # the columns a question's model_columns names, with the values the simulation uses too
    assert set(coded_values(inst.context[0], data["tier"])) == {"tier_1", "tier_3"}


@pytest.mark.parametrize("change, path, message", [
    ({"coding": "effect"}, "context[0].coding", "must be one of dummy, ordinal, numeric"),
    ({"coding": "numeric"}, "context[0].coding", "a categorical question is coded dummy or ordinal"),
    ({"reference": 9}, "context[0].reference", "9 is not one of the values (1; 2; 3)"),
    ({"coding": "ordinal"}, "context[0].reference", "only coding: dummy has a reference category"),
    ({"personal": True}, "context[0].coding", "a personal question's answers are never written"),
    ({"values": ["a-b", "a b", "c"], "reference": "c"}, "context[0].values", "same dummy column 'tier_a_b'"),
])
def test_bad_codings_are_named_by_their_yaml_path(change, path, message):
    with pytest.raises(InstrumentError) as exc:
        instrument_of(q0=change)
    assert any(p.startswith(f"{path}: ") and message in p for p in exc.value.problems), exc.value.problems


def test_coding_errors_on_numbers_and_text_and_column_clashes():
    with pytest.raises(InstrumentError, match=r"context\[3\].coding: a number question is coded numeric"):
        instrument_of(q3={"coding": "dummy"})
    with pytest.raises(InstrumentError, match=r"context\[5\].coding: free text cannot be coded"):
        instrument_of(q5={"coding": "dummy", "personal": False})
    doc = copy.deepcopy(DOC)
    doc["constructs"][0]["items"][0]["id"] = "size_code"
    with pytest.raises(InstrumentError, match="column name 'size_code' is used twice: as item in A and as model "
                                              "column of context question size"):
        parse_instrument(doc, source="own.yaml")


def test_a_model_naming_an_uncoded_categorical_question_is_told_to_code_it(default_instrument, tmp_path):
    from dataclasses import replace

    bad = tmp_path / "bad.lavaan"
    bad.write_text(default_instrument.model.read_text().replace("+ org_size_code", "+ sector"))
    problems = model_problems(replace(default_instrument, model=bad))
    assert problems == ["model: 'sector' in bad.lavaan is a context question that is categorical: say how a model "
                        "codes it (coding: dummy or ordinal in the instrument) and use its coded columns"]
    assert model_problems(default_instrument) == []


# --------------------------------------------------------------------------- the simulated controls


def test_covariate_moments_are_those_of_the_drawn_answers(default_instrument, default_params):
    sim = dict(default_params["simulate"], n=40000, defects={}, personal_data=False)
    study = simulate_study(default_instrument, parse_simulation_params(sim), seed=5)
    coded = code_context(study.responses, default_instrument)
    moments = covariate_moments(default_instrument, sim["context"])
    assert sorted(moments.index) == sorted(CONTROLS)
    assert moments.loc["role_management"].tolist() == pytest.approx([0.3, np.sqrt(0.21)], abs=1e-12)
    assert moments.at["org_size_code", "mean"] == pytest.approx(1 * .25 + 2 * .3 + 3 * .25 + 4 * .2, abs=1e-12)
    for c in CONTROLS:  # sampling error of a mean is sd/200 at n = 40000; of an sd about sd/280
        x = coded[c].astype(float)
        assert x.mean() == pytest.approx(moments.at[c, "mean"], abs=4 * moments.at[c, "sd"] / 200), c
        assert x.std() == pytest.approx(moments.at[c, "sd"], abs=4 * moments.at[c, "sd"] / 280), c
    # every latent keeps variance 1 with the controls' share in it
    pop = population_model(default_instrument, parse_simulation_params(sim), None)
    assert np.diag(pop.latent_covariance().to_numpy()) == pytest.approx(1.0, abs=1e-12)
    assert pop.gamma.at["VCC", "experience_years"] == 0.12 and "GAP5" not in pop.exogenous


def test_without_covariates_the_draw_is_unchanged_by_their_code(default_instrument, default_params):
    """No covariates: latents and context answers come from the stream in the old order, so the
    study is the one drawn before controls existed (the latent covariance is the same matrix)."""
    base = {k: v for k, v in default_params["simulate"].items() if k != "covariates"}
    params = parse_simulation_params(dict(base, n=300))
    pop = population_model(default_instrument, params, None)
    assert pop.gamma is None and np.array_equal(pop.residual_covariance(), pop.latent_covariance().to_numpy())
    with_controls = simulate_study(default_instrument, parse_simulation_params(
        dict(default_params["simulate"], n=300)), seed=2)
    without = simulate_study(default_instrument, params, seed=2)
    assert not with_controls.responses.equals(without.responses)


@pytest.mark.parametrize("covariates, message", [
    ({"VCC": {"role": 0.1}}, r"simulate.covariates.VCC.role: not a model column of the instrument's context "
                             r"questions \(role_management, org_size_code, experience_years\)"),
    ({"VCC_1": {"role_management": 0.1}}, "simulate.covariates.VCC_1: not a latent of the population model"),
    ({"VCC": {"role_management": 1.5}}, r"simulate.covariates.VCC.role_management: a standardised effect must be in"),
    ({"VCC": []}, r"simulate.covariates.VCC: expected \{model column: standardised effect\}"),
])
def test_bad_covariates_are_named(default_instrument, default_params, covariates, message):
    with pytest.raises(InputError, match=message):
        sim = parse_simulation_params(dict(default_params["simulate"], n=50, covariates=covariates))
        simulate_study(default_instrument, sim, seed=1)


def test_a_covariate_that_cannot_vary_is_refused(default_instrument, default_params):
    context = dict(default_params["simulate"]["context"], role={"management": 0.0, "employee": 1.0})
    sim = parse_simulation_params(dict(default_params["simulate"], n=50, context=context))
    with pytest.raises(InputError, match="'role_management' does not vary under simulate.context"):
        simulate_study(default_instrument, sim, seed=1)


def test_the_stages_carry_the_coded_columns_to_the_cfa_half(run_cli, tmp_path):
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace("  n: 2500 ", "  n: 300 ")
    params.write_text(text)
    inst = ROOT / "instrument" / "sustainability_gap.yaml"
    assert run_cli("simulate", "--instrument", inst, "--params", params, "--out", tmp_path / "raw")[0] == 0
    assert run_cli("clean", "--instrument", inst, "--data", tmp_path / "raw" / "responses.csv", "--params", params,
                   "--out", tmp_path / "clean")[0] == 0
    assert run_cli("split", "--data", tmp_path / "clean" / "clean.csv", "--instrument", inst, "--params", params,
                   "--out", tmp_path / "split")[0] == 0
    clean = pd.read_csv(tmp_path / "clean" / "clean.csv")
    cfa = pd.read_csv(tmp_path / "split" / "cfa.csv")
    for frame in (clean, cfa):
        assert set(CONTROLS) <= set(frame.columns)
        assert frame["role_management"].eq(frame["role"].eq("management").astype(int)).all()
        sizes = {"1-49": 1, "50-249": 2, "250-999": 3, "1000+": 4}
        assert frame["org_size_code"].eq(frame["org_size"].map(sizes)).all()
    assert "sector_retail" not in cfa.columns  # only declared codings


# --------------------------------------------------------------------------- the hypothesised model


def _defined_truth(model_text: str, labels: dict) -> dict:
    """The true value of each ``:=`` effect: its arithmetic of labels at the true paths."""
    out = {}
    for line in model_text.splitlines():
        line = line.split("#")[0]
        if ":=" not in line:
            continue
        name, expr = (s.strip() for s in line.split(":="))
        tree = ast.parse(expr, mode="eval")
        assert all(isinstance(n, (ast.Expression, ast.BinOp, ast.Add, ast.Mult, ast.Name, ast.Load))
                   for n in ast.walk(tree)), expr
        out[name] = eval(compile(tree, "<defined>", "eval"), {"__builtins__": {}}, labels)  # noqa: S307
    return out


@pytest.fixture(scope="module")
def default_fit(default_instrument, default_params):
    """The hypothesised model with controls on a simulated study of 5000 respondents without
    defects and without answers outside the scale (every answer present), and the population it
    was drawn from: one population (the group-specific paths planted for H7 are left out, or the
    pooled paths would be a mixture of the groups' and not the population model's). The
    respondents are nested in organisations (simulate.organisations), so the standard errors are
    cluster-robust (MLR with the organisations as clusters, lavaan's ``cluster =``); at this seed the
    naive ML ones pass the coverage test too (the ICC of .05 is small beside the loadings' error)."""
    one = dict(default_params["simulate"]["groups"], values={})
    sim = parse_simulation_params(dict(default_params["simulate"], n=5000, defects={}, outside={}, personal_data=False,
                                       groups=one))
    study = simulate_study(default_instrument, sim, seed=default_params["seed"])
    data = code_context(recode_reverse(study.responses, default_instrument), default_instrument)
    data = data[list(default_instrument.item_ids) + list(CONTROLS)].astype(float)
    data[default_instrument.cluster_column] = study.responses[default_instrument.cluster_column].to_numpy()
    model = default_instrument.model.read_text(encoding="utf-8")
    # the engine's own parameter table (fit_model keeps the pipeline's columns, without std_all_se)
    fitted = engine_fit(lavaanify(model, list(data.columns)), data, estimator="MLR",
                        cluster=default_instrument.cluster_column)
    return fitted, population_model(default_instrument, sim, None), model


def test_the_default_model_with_controls_recovers_the_true_effects(default_fit):
    """Every regression (the 21 latent paths and the 9 control effects), the second-order
    loadings and the defined effects, in the standardised metric against the population.

    lavaan's std.all of ``VCC ~ role_management`` standardises by the covariate's SD, which is
    how the simulation defines the effect. Each estimate must lie within its 99.9% interval
    (|z| < 3.29) and 90% of them within 95%; each control effect must also be distinguishable
    from no effect and from the opposite sign (true value beyond 3.29 SEs of 0), so that a model
    without the controls, a wrong coding (the dummy's reference flipped) or a wrong
    standardisation fails."""
    fit, pop, model = default_fit
    assert fit.converged
    p = fit.parameters
    truth = {}
    for row in p[p["op"] == "~"].itertuples():
        truth[(row.lhs, "~", row.rhs)] = (pop.gamma.at[row.lhs, row.rhs] if row.rhs in CONTROLS
                                          else pop.beta.at[row.lhs, row.rhs])
    for row in p[(p["op"] == "=~") & p["lhs"].eq("IM")].itertuples():
        truth[(row.lhs, "=~", row.rhs)] = pop.beta.at[row.rhs, row.lhs]
    labelled = p[p["label"].fillna("").ne("") & p["op"].ne(":=")]
    defined = _defined_truth(model, {r.label: truth[(r.lhs, r.op, r.rhs)] for r in labelled.itertuples()})
    z, controls = [], []
    for row in p.itertuples():
        value = defined.get(row.lhs) if row.op == ":=" else truth.get((row.lhs, row.op, row.rhs))
        if value is None:
            continue
        z.append((row.std_all - value) / row.std_all_se)
        if row.rhs in CONTROLS:
            controls.append((row.lhs, row.rhs, row.std_all, row.std_all_se, value))
    z = np.abs(np.array(z))
    assert len(z) == 21 + 9 + 3 + 4
    assert np.mean(z < 1.96) >= 0.90, np.round(z, 2)
    assert z.max() < 3.29, np.round(z, 2)
    assert len(controls) == 9
    for lhs, rhs, est, se, value in controls:
        assert abs(est - value) < 3.29 * se and abs(value) > 3.29 * se, (lhs, rhs, est, se, value)
        assert np.sign(est) == np.sign(value)


def test_the_controls_are_fixed_x_covariates_as_lavaan_treats_them(default_fit):
    """fixed.x: the covariates' variances and covariances are their sample values (not free
    parameters, no SE), they do not covary with the exogenous latents, and df counts only the
    moments of the modelled variables given the covariates."""
    fit, _, _ = default_fit
    p = fit.parameters
    x = p[(p["op"] == "~~") & p["lhs"].isin(CONTROLS) & p["rhs"].isin(CONTROLS)]
    assert len(x) == 6 and x["se"].fillna(0).eq(0).all()
    assert not ((p["op"] == "~~") & p["lhs"].isin(CONTROLS) & ~p["rhs"].isin(CONTROLS)).any()
    items, k = 73, 3  # the model's items: MARK and KNOW are not in it
    moments = items * (items + 1) / 2 + items * k
    assert fit.fit["df"] == moments - fit.fit["npar"]


# --------------------------------------------------------------------------- competing models


def default_model() -> str:
    return (ROOT / "instrument" / "sustainability_gap.lavaan").read_text(encoding="utf-8")


def test_model_parts_split_measurement_from_the_rest():
    from analysis.structural import model_parts

    measurement, structural = model_parts(default_model())
    m, s = parse_model(measurement), parse_model(structural, check_labels=False)
    assert {st.op for st in m.statements} == {"=~"} and len(m.latents) == 19  # 18 substantive constructs and IM
    assert "=~" not in {st.op for st in s.statements} and len(s.by_op(":=")) == 4
    assert parse_model(measurement + structural).statements == parse_model(default_model()).statements
    text = "f =~ x1 +\n  x2 + x3  # continued\n# about g\ng ~ f\n\nh =~ y1 + y2 + y3\n"
    assert model_parts(text) == ("f =~ x1 +\n  x2 + x3  # continued\n\nh =~ y1 + y2 + y3\n", "# about g\ng ~ f\n")
    with pytest.raises(InputError, match=r"line 2: 'g =~ y1 \+ y2; g ~ f' mixes =~ with other operators"):
        model_parts("f =~ x1 + x2 + x3\ng =~ y1 + y2; g ~ f\n")


def test_a_competing_entry_replaces_either_part_or_the_whole_model():
    from analysis.structural import competing_model, model_parts

    hyp = default_model()
    measurement, structural = model_parts(hyp)
    new_structural = "GAP1 ~ IM\nVCC ~ GAP5\n"
    new_measurement = measurement.replace("IM   =~ IMVI + IMVG + IMVE", "")
    assert competing_model(hyp, new_structural) == measurement + new_structural + "\n"  # the old form: text
    assert competing_model(hyp, {"structural": new_structural}) == measurement + new_structural
    kept = competing_model(hyp, {"measurement": new_measurement + "IM =~ IMVE + IMVG + IMVI\n"})
    assert kept.endswith(structural) and "IM =~ IMVE + IMVG + IMVI" in kept  # the hypothesised structural part
    both = competing_model(hyp, {"measurement": new_measurement, "structural": "IMVG ~ IMVI\n"})
    assert parse_model(both).latents == tuple(c for c in parse_model(hyp).latents if c != "IM")
    assert competing_model(hyp, {"model": "f =~ x1 + x2 + x3"}) == "f =~ x1 + x2 + x3\n"


@pytest.mark.parametrize("entry, message", [
    (["GAP1 ~ IM"], "sem.competing.m: expected lavaan syntax (a new structural part) or a mapping with measurement "
                    "and/or structural (or model: a whole model), got a list"),
    ({"measurment": "f =~ x"}, "sem.competing.m.measurment: unknown key; known keys are measurement, structural, "
                               "model"),
    ({}, "sem.competing.m: an empty mapping; give measurement and/or structural, or model"),
    ({"model": "f =~ x1 + x2 + x3", "structural": "f ~~ f"}, "sem.competing.m: model is a whole model; give it alone"),
    ({"structural": 3}, "sem.competing.m.structural: expected lavaan syntax (text), got a number"),
    ({"measurement": "  "}, "sem.competing.m.measurement: expected lavaan syntax (text), got text"),
    ({"measurement": "f =~ x1 + x2\nf ~ g\n"}, "sem.competing.m.measurement: line 2: f ~ g is not a measurement "
                                                "statement (=~); put it in structural"),
    ({"structural": "GAP1 ~ IM\nGAP2 ~~ ~\n"}, "sem.competing.m.structural: line 2: "),
    ("GAP1 ~ IM +", "sem.competing.m: line 1: "),
    ({"structural": "GAP1 ~ a*IM\nx := a*zz\n"}, "sem.competing.m: line "),
    ({"model": "f =~ x1 + x2\nd := b*2\n"}, "sem.competing.m.model: line 2: "),
])
def test_bad_competing_entries_are_refused_in_one_line(entry, message):
    from analysis.structural import check_competing, competing_model

    with pytest.raises(InputError) as exc:
        competing_model(default_model(), entry, "sem.competing.m")
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value), str(exc.value)
    if "zz" not in str(entry):
        # the checks that need no hypothesised model run on params.yaml before any fit
        with pytest.raises(InputError, match="^" + message.split(":")[0]):
            check_competing({"m": entry})


def test_params_competing_entries_are_well_formed(default_params):
    from analysis.structural import check_competing

    entries = check_competing(default_params["sem"]["competing"])
    assert set(entries) == {"parallel_gaps", "partial_mediation", "reasons_by_time", "im_chain", "bipolar_value"}
    assert check_competing(None) == {}
    with pytest.raises(InputError, match="sem.competing.hypothesised: the name of the hypothesised model"):
        check_competing({"hypothesised": "GAP1 ~ IM"})
    with pytest.raises(InputError, match="sem.competing: a mapping of model names"):
        check_competing(["GAP1 ~ IM"])


# Free parameters each competing model has fewer than the hypothesised one (216 on complete data,
# with the controls; FIML adds the 73 intercepts):
# im_chain: IM's 2 loadings, variance, 8 covariances with the reasons and 4 paths to the gaps (15)
# become 2 chain paths, IMVI's variance and 8 covariances, 4 paths from IMVE (15), and IMVI's
# disturbance is gone (-1); reasons_by_time: the reasons' 8 variances, 28 covariances, 8 with IM
# and 8 paths to VCD (52) become 5 loadings, 8 disturbances, 3 variances, 3 + 3 covariances,
# 3 paths (25): -27; bipolar_value: VCC and VCD's 7 loadings, 2 disturbances, 1 covariance and
# 2 x 8 paths (26) become 8 loadings, 1 disturbance and 9 + 3 paths (21): -5.
FEWER = {"parallel_gaps": -3, "partial_mediation": -2, "reasons_by_time": 27, "im_chain": 1, "bipolar_value": 5}


@pytest.fixture(scope="module")
def cfa_half(default_instrument, default_params):
    """A simulated CFA half of the default study: 1100 respondents, every answer present."""
    sim = parse_simulation_params(dict(default_params["simulate"], n=1100, defects={}, personal_data=False))
    study = simulate_study(default_instrument, sim, seed=default_params["seed"] + 1)
    data = code_context(recode_reverse(study.responses, default_instrument), default_instrument)
    return data[list(default_instrument.item_ids) + list(CONTROLS)].astype(float)


def test_each_competing_model_is_identified_and_fits_the_simulated_study(default_params, cfa_half):
    import warnings

    from analysis.sem.api import check_model
    from analysis.structural import competing_model
    from analysis.warnings import GapscaleWarning

    hyp = default_model()
    fits = {}
    for name, entry in {"hypothesised": None, **default_params["sem"]["competing"]}.items():
        text = hyp if entry is None else competing_model(hyp, entry, f"sem.competing.{name}")
        check_model(text, cfa_half)  # raises when not identified
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GapscaleWarning)
            fits[name] = fit_model(text, cfa_half)
        assert fits[name].converged, name
        assert not [w for w in caught if issubclass(w.category, GapscaleWarning)], (name, [str(w.message) for w in caught])
        assert fits[name].fit["df"] > 0
    npar = fits["hypothesised"].fit["npar"]
    assert npar == 216
    for name, fewer in FEWER.items():
        assert fits[name].fit["npar"] == npar - fewer, name
        assert fits[name].fit["df"] == fits["hypothesised"].fit["df"] + fewer, name
    # the data were drawn from the hypothesised model: the competing structures that contradict it fit worse
    for name in ("im_chain", "bipolar_value"):
        assert fits[name].fit["chisq"] - fits["hypothesised"].fit["chisq"] > 50, name
    # parallel_gaps frees the gaps' residual covariances for the chain it drops: the hypothesised
    # chain is it with 3 constraints, true in the population, so chi-square(3) differs little and
    # BIC prefers the chain
    from analysis.structural import chisq_difference, nested

    assert nested(fits["hypothesised"], fits["parallel_gaps"])
    diff = chisq_difference(fits["hypothesised"], fits["parallel_gaps"])
    assert diff["delta_df"] == 3 and 0 <= diff["delta_chisq"] < 16.27, diff  # p > .001
    assert fits["hypothesised"].fit["bic"] < fits["parallel_gaps"].fit["bic"]
    p = fits["bipolar_value"].parameters
    vcd = p[(p["lhs"] == "VALUE") & (p["op"] == "=~") & p["rhs"].str.startswith("VCD")]
    assert (vcd["est"] < 0).all()  # co-destruction's items at the other pole


# --------------------------------------------------------------------------- through the sem stage

PD_MODEL = """ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
"""


def test_the_sem_stage_fits_competing_measurement_models(tmp_path, run_cli):
    """On lavaan's PoliticalDemocracy: a competing measurement part (democracy as one factor
    over both years), a competing whole model, and the old form (a structural part) beside
    each other in sem_competing.csv, each with the fit the engine gives its combined syntax."""
    data = pd.read_csv(ROOT / "tests" / "reference" / "political_democracy.csv")
    (tmp_path / "data.csv").write_text(data.to_csv(index=False))
    (tmp_path / "model.lavaan").write_text(PD_MODEL)
    one_factor = "ind60 =~ x1 + x2 + x3\ndem =~ y1 + y2 + y3 + y4 + y5 + y6 + y7 + y8\n"
    (tmp_path / "params.yaml").write_text(
        "sem:\n  missing: listwise\n  bootstrap: 0\n  competing:\n"
        "    one_democracy:\n      measurement: |\n        ind60 =~ x1 + x2 + x3\n"
        "        dem =~ y1 + y2 + y3 + y4 + y5 + y6 + y7 + y8\n      structural: |\n        dem ~ ind60\n"
        "    no_direct: |\n      dem60 ~ ind60\n      dem65 ~ dem60\n"
        "    cfa_only:\n      model: |\n        ind60 =~ x1 + x2 + x3\n        dem60 =~ y1 + y2 + y3 + y4\n"
        "        dem65 =~ y5 + y6 + y7 + y8\n")
    code, out, err = run_cli("sem", "--data", tmp_path / "data.csv", "--model", tmp_path / "model.lavaan",
                             "--params", tmp_path / "params.yaml", "--out", tmp_path / "out")
    assert code == 0, err
    comp = pd.read_csv(tmp_path / "out" / "sem_competing.csv").set_index("model")
    assert list(comp.index) == ["hypothesised", "one_democracy", "no_direct", "cfa_only"]
    expected = {"one_democracy": one_factor + "dem ~ ind60\n",
                "no_direct": PD_MODEL.replace("dem65 ~ ind60 + dem60", "dem65 ~ dem60"),
                "cfa_only": PD_MODEL.split("dem60 ~")[0], "hypothesised": PD_MODEL}
    for name, text in expected.items():
        f = fit_model(text, data).fit
        assert comp.at[name, "chisq"] == pytest.approx(f["chisq"], rel=1e-6) and comp.at[name, "df"] == f["df"], name
    assert comp.at["no_direct", "df"] == comp.at["hypothesised", "df"] + 1
    assert comp.at["cfa_only", "df"] == comp.at["hypothesised", "df"]  # the same model, written as a CFA


@pytest.mark.parametrize("competing, message", [
    ("    m:\n      measurement: 'dem60 ~ ind60'\n", "sem.competing.m.measurement: line 1: dem60 ~ ind60 is not a "
                                                     "measurement statement (=~); put it in structural"),
    ("    m: [dem60 ~ ind60]\n", "sem.competing.m: expected lavaan syntax"),
    ("    m: {measurement: 'f =~ y1 + y2', model: 'f =~ y1 + y2'}\n", "sem.competing.m: model is a whole model"),
])
def test_the_sem_stage_refuses_bad_competing_entries_in_one_line(tmp_path, run_cli, competing, message):
    data = pd.read_csv(ROOT / "tests" / "reference" / "political_democracy.csv")
    (tmp_path / "data.csv").write_text(data.to_csv(index=False))
    (tmp_path / "model.lavaan").write_text(PD_MODEL)
    (tmp_path / "params.yaml").write_text("sem:\n  bootstrap: 0\n  competing:\n" + competing)
    code, out, err = run_cli("sem", "--data", tmp_path / "data.csv", "--model", tmp_path / "model.lavaan",
                             "--params", tmp_path / "params.yaml", "--out", tmp_path / "out")
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
