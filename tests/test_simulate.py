"""The simulated study: population model, recovery from the data, defect rates, determinism."""
from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import DEFECTS, SimulationParams, parse_simulation_params, population_model, simulate_study
from instrument import load_instrument, parse_instrument
from tests.conftest import CONTINUOUS


@pytest.fixture(scope="module")
def study(default_instrument, default_params):
    return simulate_study(default_instrument, parse_simulation_params(default_params["simulate"]), seed=20261122)


def items_frame(instrument, data: pd.DataFrame) -> pd.DataFrame:
    """Item answers with out-of-range values set missing and reverse-keyed items recoded."""
    out = {}
    for item in instrument.items:
        x = data[item.id].astype("float64")
        x = x.where(x.map(lambda v: np.isnan(v) or item.scale.contains(v)))
        out[item.id] = item.scale.reverse(x) if item.reverse else x
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- population model


def test_population_model_is_standardised():
    inst = parse_instrument({"name": "t", "scale": {"type": "continuous"}, "constructs": [
        {"id": c, "items": [{"id": f"{c}_{k}"} for k in range(3)]} for c in ("X", "Y", "Z", "W")]})
    params = parse_simulation_params({
        "structural": {"Y": {"X": 0.5}, "Z": {"Y": 0.5, "W": 0.3}},
        "exogenous_correlation": 0.4,
        "residual_correlations": {"Y": {"Z": -0.2}},
    })
    pop = population_model(inst, params, np.random.default_rng(0))
    cov = pop.latent_covariance()
    assert np.allclose(np.diag(cov), 1.0, atol=1e-12)
    assert cov.at["X", "W"] == pytest.approx(0.4)
    assert cov.at["X", "Y"] == pytest.approx(0.5)
    assert pop.r_squared()["Y"] == pytest.approx(0.25)
    # Z = .5 Y + .3 W + e with cov(Y, W) = .5 * .4 and cov(Y, e) from the residual correlation.
    psi_y, psi_z = pop.psi.at["Y", "Y"], pop.psi.at["Z", "Z"]
    assert pop.psi.at["Y", "Z"] == pytest.approx(-0.2 * np.sqrt(psi_y * psi_z))
    explained = 0.25 + 0.09 + 2 * 0.5 * 0.3 * 0.2
    assert 1 - psi_z == pytest.approx(explained + 2 * 0.5 * pop.psi.at["Y", "Z"])


@pytest.mark.parametrize(
    "simulate, message",
    [
        ({"structural": {"A": {"B": 0.5}, "B": {"A": 0.5}}}, r"cycle \(A -> B -> A\)"),
        ({"structural": {"A": {"B": 0.9, "C": 0.9}}}, r"simulate.structural.A: .* explain 1.94 .* \(R\^2 must be < 1\)"),
        ({"structural": {"A": {"Q": 0.3}}}, "'Q' is not a construct .* simulate.extra_latents"),
        ({"structural": {"A": {"A_1": 0.3}}}, "'A_1' is an item"),
        ({"loadings": {"default": 1.0}}, r"simulate.loadings.default: .* \(-1, 1\)"),
        ({"loadings": {"default": 0.7, "Z_9": 0.5}}, "simulate.loadings.Z_9: not an item or construct"),
        ({"defects": {"straightliner": 0.6, "speeder": 0.5}}, "add up to 1.1"),
        ({"defects": {"sleepers": 0.1}}, "simulate.defects.sleepers: unknown defect"),
        ({"n": 1}, "simulate.n"),
        ({"thresholds": [0.5, 0.1]}, "simulate.thresholds: need increasing"),
        ({"exogenous_correlation": -0.9}, "not positive definite"),
        ({"residual_correlations": {"A": {"B": 0.3}}}, "'A' is not an endogenous latent"),
        ({"context": {"nope": {"x": 1.0}}}, "simulate.context.nope: not a context question"),
        ({"wrong_key": 1}, "simulate.wrong_key: unknown key"),
    ],
)
def test_bad_simulation_params_are_named(simulate, message):
    inst = parse_instrument({"name": "t", "scale": {"type": "likert", "min": 1, "max": 5}, "constructs": [
        {"id": c, "items": [{"id": f"{c}_{k}"} for k in range(1, 4)]} for c in ("A", "B", "C")]})
    with pytest.raises(ValueError, match=message):
        simulate_study(inst, parse_simulation_params(simulate), seed=1)


def test_inattentive_rate_needs_attention_checks(write_yaml):
    inst = load_instrument(write_yaml(CONTINUOUS))
    with pytest.raises(ValueError, match="no attention checks"):
        simulate_study(inst, parse_simulation_params({}), seed=1)


# --------------------------------------------------------------------------- recovery


def test_items_correlate_most_with_their_own_construct(default_instrument, study):
    """A simulator that lost the factor structure or the reverse keys fails this."""
    clean = study.respondents["clean"].to_numpy()
    r = items_frame(default_instrument, study.responses[clean]).corr()
    constructs = {c.id: list(c.item_ids) for c in default_instrument.constructs}
    for c, items in constructs.items():
        for item in items:
            own = r.loc[item, [i for i in items if i != item]].mean()
            others = max(r.loc[item, o].mean() for k, o in constructs.items() if k != c)
            assert own > others + 0.1, (item, own, others)


def test_continuous_data_reproduce_the_implied_correlations(write_yaml):
    """Sample correlations of a continuous instrument match lambda_i lambda_j phi_cd."""
    inst = load_instrument(write_yaml(CONTINUOUS))
    params = parse_simulation_params({
        "n": 20000, "loadings": {"default": 0.7, "verbal": 0.8, "s1": 0.5},
        "structural": {"speed": {"verbal": 0.4, "spatial": 0.3}}, "exogenous_correlation": 0.5,
        "defects": {"inattentive": 0.0, "missing_cell": 0.0, "typo_cell": 0.0, "straightliner": 0.0,
                    "random_responder": 0.0, "speeder": 0.0, "duplicate": 0.0},
    })
    sim = simulate_study(inst, params, seed=7)
    pop = population_model(inst, params, np.random.default_rng(7))
    phi = pop.latent_covariance()
    lam = pop.loadings
    ids = list(inst.item_ids)
    implied = pd.DataFrame(
        [[1.0 if a == b else lam[a] * lam[b] * phi.at[pop.construct_of[a], pop.construct_of[b]] for b in ids]
         for a in ids], index=ids, columns=ids)
    sample = sim.responses[ids].astype(float).corr()
    # Standard error of r near .5 at n = 20000 is about .005; allow about 5 SE.
    assert np.abs(sample - implied).to_numpy().max() < 0.025
    assert phi.at["speed", "verbal"] == pytest.approx(0.4 + 0.3 * 0.5)


def test_answer_categories_follow_the_thresholds(default_instrument, default_params):
    params = parse_simulation_params({**default_params["simulate"], "n": 20000,
                                      "defects": {k: 0.0 for k in DEFECTS + ("missing_cell", "typo_cell")}})
    sim = simulate_study(default_instrument, params, seed=3)
    phi = NormalDist().cdf
    for item_id in ("GAP1_1", "VCD_2", "IMVI_4", "MARK_1"):
        item = default_instrument.item(item_id)
        tau = sim.truth["population"]["thresholds"][item_id]
        expected = np.diff([0.0, *[phi(t) for t in tau], 1.0])
        x = sim.responses[item_id].astype(float)
        x = item.scale.reverse(x) if item.reverse else x
        observed = x.value_counts(normalize=True).reindex(range(1, 8), fill_value=0).to_numpy()
        # SE of a proportion at n = 20000 is at most .0035.
        assert np.abs(observed - expected).max() < 0.015, item_id


def test_context_answers_follow_params(study, default_params):
    shares = study.responses["relationship_type"].value_counts(normalize=True)
    for value, p in default_params["simulate"]["context"]["relationship_type"].items():
        assert abs(shares[value] - p) < 3 * np.sqrt(p * (1 - p) / 1000) + 0.005, value
    assert study.responses["experience_years"].between(0, 50).all()
    assert set(study.responses["org_size"]) <= {"1-49", "50-249", "250-999", "1000+"}


# --------------------------------------------------------------------------- defects


def test_defect_rates_in_the_data_match_params(default_instrument, default_params, study):
    """Measure each defect in the data itself and compare with the rate in params.yaml."""
    rates = default_params["simulate"]["defects"]
    n = default_params["simulate"]["n"]
    data, truth = study.responses, study.respondents
    items = list(default_instrument.item_ids)
    assert len(data) == n + round(rates["duplicate"] * n)

    original = ~truth["duplicate"].to_numpy()
    raw = data.loc[original, items].astype("float64")
    n_cells = raw.size
    assert raw.isna().to_numpy().sum() == round(rates["missing_cell"] * n_cells)
    outside = raw.isin([8, 9])  # the instrument's answers outside the scale (counted in their own test)
    assert outside.to_numpy().sum() == sum(study.truth["outside"].values())
    in_range = raw.isna() | raw.isin(range(1, 8)) | outside
    assert (~in_range).to_numpy().sum() == round(rates["typo_cell"] * n_cells)
    assert set(np.unique(raw.to_numpy()[~in_range.to_numpy()])) <= {11.0, 22.0, 33.0, 44.0, 55.0, 66.0, 77.0}

    valid = raw.where(in_range & ~outside)
    straight = valid.nunique(axis=1) == 1
    assert straight.sum() == round(rates["straightliner"] * n)
    assert (straight.to_numpy() == truth.loc[original, "straightliner"].to_numpy()).all()

    duration = data.loc[original, "duration_s"]
    fast = (duration <= 0.3 * default_params["simulate"]["duration_median_s"]).to_numpy()
    speeders = truth.loc[original, "speeder"].to_numpy()
    assert speeders.sum() == round(rates["speeder"] * n) and fast[speeders].all()
    # Honest respondents are log-normal (sigma .35): about 0.03% of them are as fast by chance.
    assert fast[~speeders].sum() <= 2

    failed = ~(data["ATT1"].eq(2) & data["ATT2"].eq(5))
    assert (failed.to_numpy() == truth["failed_attention_check"].to_numpy()).all()
    careful = original & ~truth["straightliner"].to_numpy() & ~truth["random_responder"].to_numpy()
    assert failed[careful].sum() == round(rates["inattentive"] * n)

    answers = data.drop(columns=["respondent_id"])
    repeated = answers.duplicated(keep="first")
    assert repeated.sum() == round(rates["duplicate"] * n)
    assert (repeated.to_numpy() == truth["duplicate"].to_numpy()).all()
    same_id = data["respondent_id"].duplicated(keep=False)
    assert same_id.sum() == 2 * ((round(rates["duplicate"] * n) + 1) // 2)

    for defect in DEFECTS:
        assert study.truth["defects"][defect]["count"] == round(rates[defect] * n)
    assert truth["clean"].sum() == n - sum(round(rates[d] * n) for d in DEFECTS if d != "duplicate")


def test_random_responders_are_uniform(default_instrument, study):
    rows = study.respondents["random_responder"].to_numpy()
    x = items_frame(default_instrument, study.responses[rows]).stack()
    counts = x.value_counts(normalize=True)
    assert np.abs(counts - 1 / 7).max() < 0.02  # about 2,100 answers: SE .008


def test_duplicates_point_at_their_original(study):
    truth = study.respondents.set_index("row")
    data = study.responses
    for row, original in truth.loc[truth["duplicate"], "duplicate_of"].items():
        a = data.iloc[row - 1].drop(["respondent_id"])
        b = data.iloc[original - 1].drop(["respondent_id"])
        assert a.equals(b)
        assert truth.at[original, "clean"]


# --------------------------------------------------------------------------- outputs


def test_every_output_says_simulated(tmp_path, run_cli):
    code, out, _ = run_cli("simulate", "--params", "params.yaml", "--out", tmp_path, "--n", 200)
    assert code == 0 and "SIMULATED" in out
    assert (pd.read_csv(tmp_path / "responses.csv")["simulated"] == 1).all()
    assert (pd.read_csv(tmp_path / "truth_respondents.csv")["simulated"] == 1).all()
    assert json.loads((tmp_path / "truth.json").read_text())["simulated"] is True
    assert json.loads((tmp_path / "simulate.json").read_text())["simulated"] is True


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, run_cli):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        code, _, err = run_cli("simulate", "--params", "params.yaml", "--out", tmp_path / name, "--seed", seed, "--n", 300)
        assert code == 0, err
    for f in ("responses.csv", "truth.json", "truth_respondents.csv", "simulate.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "responses.csv").read_bytes() != (tmp_path / "c" / "responses.csv").read_bytes()


def test_personal_data_columns_are_synthetic_or_absent(default_instrument, default_params, study):
    assert study.responses["IPAddress"].str.startswith("192.0.2.").all()  # RFC 5737 documentation range
    assert study.responses["RecipientEmail"].str.endswith("@example.org").all()
    params = parse_simulation_params({**default_params["simulate"], "n": 50, "personal_data": False})
    sim = simulate_study(default_instrument, params, seed=1)
    assert not {"IPAddress", "RecipientEmail"} & set(sim.responses.columns)


def test_builtin_defaults_simulate_any_instrument(write_yaml):
    """No params file: every construct exogenous, default loadings, no attention checks needed."""
    inst = load_instrument(write_yaml(CONTINUOUS))
    params = SimulationParams(defects={**SimulationParams().defects, "inattentive": 0.0})
    sim = simulate_study(inst, params, seed=2)
    assert list(sim.responses.columns) == ["respondent_id", *inst.item_ids, "simulated"]
    assert len(sim.responses) == 1000 + 20


# --------------------------------------------------------------------------- group-specific populations


def test_no_group_overrides_draw_the_same_bytes(default_instrument, default_params):
    """`simulate.groups` without overrides leaves the study exactly as it was (dvc.lock stays valid)."""
    base = {k: v for k, v in default_params["simulate"].items() if k != "groups"}
    base["n"] = 300
    plain = simulate_study(default_instrument, parse_simulation_params(base), seed=9)
    empty = simulate_study(default_instrument, parse_simulation_params(
        {**base, "groups": {"column": "relationship_type", "values": {}}}), seed=9)
    assert plain.responses.to_csv() == empty.responses.to_csv()
    assert json.dumps(plain.truth) == json.dumps(empty.truth)


def test_group_overrides_change_only_their_group(default_instrument, default_params):
    sim = dict(default_params["simulate"], n=6000, defects={}, personal_data=False)
    sim["groups"] = {"column": "relationship_type", "values": {
        "G2C": {"loadings": {"GAP1_2": 0.3}, "intercepts": {"GAP1_5": 1.0}, "latent_means": {"TRST": 0.8}}}}
    study = simulate_study(default_instrument, parse_simulation_params(sim), seed=4)
    data = study.responses
    assert study.truth["groups"]["values"]["G2C"]["latent_means"]["TRST"] == 0.8
    assert study.truth["groups"]["values"]["G2C"]["n"] == (data["relationship_type"] == "G2C").sum()
    g2c, rest = data[data["relationship_type"] == "G2C"], data[data["relationship_type"] != "G2C"]
    corr = lambda d, a, b: d[[a, b]].astype(float).corr().iat[0, 1]  # noqa: E731
    assert corr(g2c, "GAP1_1", "GAP1_2") < corr(rest, "GAP1_1", "GAP1_2") - 0.2  # the weaker loading
    shift = lambda col: g2c[col].astype(float).mean() - rest[col].astype(float).mean()  # noqa: E731
    assert shift("GAP1_5") > 0.8 and abs(shift("GAP1_4")) < 0.2  # an intercept difference on one item only
    assert shift("TRST_1") > 0.5 and shift("TRST_4") > 0.5  # a latent mean difference on every TRST item
    assert data["relationship_type"].value_counts(normalize=True)["B2B"] == pytest.approx(0.4, abs=0.03)


@pytest.mark.parametrize("groups, message", [
    ({"column": "role", "values": {"x": {}}}, "'x' is not an allowed value|not a value of 'role'"),
    ({"column": "experience_years", "values": {"1": {}}}, "not a categorical context question"),
    ({"column": "relationship_type", "values": {"B2B": {"loadings": {"GAP9_1": 0.5}}}},
     "simulate.groups.values.B2B.loadings.GAP9_1: not an item or construct"),
    ({"column": "relationship_type", "values": {"B2B": {"loadings": {"GAP1_1": 1.5}}}}, r"\(-1, 1\)"),
    ({"column": "relationship_type", "values": {"B2B": {"slopes": {}}}}, "B2B.slopes: unknown key"),
    ({"column": "relationship_type", "values": {"B2B": {"latent_means": {"GAP1_1": 0.5}}}}, "not a latent"),
    ({"column": "relationship_type", "values": {"B2B": {"structural": {"GAP1": {"IM": 1.2}}}}},
     r"simulate.groups.values.B2B: simulate.structural.GAP1: .* \(R\^2 must be < 1\)"),
    ({"colum": "relationship_type"}, "simulate.groups.colum: unknown key"),
])
def test_bad_group_params_are_named(default_instrument, default_params, groups, message):
    sim = dict(default_params["simulate"], n=100, groups=groups)
    with pytest.raises(ValueError, match=message):
        simulate_study(default_instrument, parse_simulation_params(sim), seed=1)


# --------------------------------------------------------------------------- answers outside the scale, organisations


def test_outside_answers_follow_params(default_instrument, default_params, study):
    """N/A (code 8) only on CMIS_2 and ICHG_3, at the rates of params.yaml per relationship type; don't
    know (code 9) on every item at its rate; never for straightliners or random responders."""
    spec = default_params["simulate"]["outside"]
    data, truth = study.responses, study.respondents
    original = ~truth["duplicate"].to_numpy()
    raw = data.loc[original, list(default_instrument.item_ids)].astype("float64")
    na = raw == 8
    assert set(na.columns[na.any()]) == {"CMIS_2", "ICHG_3"}
    careful = ~(truth.loc[original, "straightliner"] | truth.loc[original, "random_responder"]).to_numpy()
    assert not (raw.isin([8, 9]).to_numpy()[~careful]).any()
    rtype = data.loc[original, "relationship_type"].to_numpy()
    for item, by in spec["not_applicable"].items():
        for value, rate in by["relationship_type"].items():
            rows = careful & (rtype == value) & ~np.isnan(raw[item].to_numpy())
            share = na[item].to_numpy()[rows].mean()
            assert abs(share - rate) < 4 * np.sqrt(rate * (1 - rate) / rows.sum()), (item, value, share)
    dk = (raw == 9).to_numpy()[careful]
    cells = (~np.isnan(raw.to_numpy()[careful])).sum()
    assert abs(dk.sum() / cells - spec["dont_know"]) < 4 * np.sqrt(spec["dont_know"] / cells)
    assert study.truth["outside"] == {"not_applicable": int(na.to_numpy().sum()), "dont_know": int((raw == 9).to_numpy().sum())}


def test_organisations_nest_respondents_with_the_icc_of_params(default_instrument, default_params, study):
    """The export names each respondent's organisation; the latent ICC shows in the items: the
    ICC(1) of a construct's mean score is about icc x (share of its variance that is the latent)."""
    from analysis.multilevel import construct_means, design_effect
    org = default_params["simulate"]["organisations"]
    data, truth = study.responses, study.respondents
    assert data["org_id"].str.startswith("Example Organisation ").all()
    original = data.loc[~truth["duplicate"].to_numpy()]
    assert original["org_id"].nunique() <= org["count"] and study.truth["organisations"]["icc"] == org["icc"]
    sizes = original["org_id"].value_counts()
    assert sizes.max() > 3 * sizes.median()  # size_sigma: some organisations much larger than most
    items = items_frame(default_instrument, original).where(lambda d: ~d.isin([8, 9]))
    scores = construct_means(items, {c.id: list(c.item_ids) for c in default_instrument.constructs})
    deff = design_effect(scores.assign(org=original["org_id"].to_numpy()), list(scores.columns), "org")
    icc = deff["icc1"].mean()  # 18 constructs: mean score reliability about .8, careless respondents add noise
    assert 0.5 * org["icc"] < icc < org["icc"], deff[["variable", "icc1"]]


def test_no_organisations_without_a_cluster_column():
    inst = parse_instrument({"name": "t", "scale": {"type": "likert", "min": 1, "max": 5}, "constructs": [
        {"id": "X", "items": [{"id": f"X_{k}"} for k in range(3)]}]})
    with pytest.raises(ValueError, match="cluster_column"):
        simulate_study(inst, parse_simulation_params({"n": 50, "organisations": {"count": 5}, "defects": {}}), seed=1)
    for bad, match in [({"organisations": {"icc": 1.2}}, "icc"), ({"organisations": {"size": 3}}, "size"),
                       ({"outside": {"dont_know": 2}}, "dont_know"),
                       ({"outside": {"na": {"X_1": {"q": 0.1}}}}, "X_1")]:
        with pytest.raises(ValueError, match=match):
            parse_simulation_params(bad)
    with pytest.raises(ValueError, match="not an answer outside the scale"):
        simulate_study(inst, parse_simulation_params({"n": 50, "outside": {"dont_know": 0.1}, "defects": {}}), seed=1)


def test_organisations_leave_the_other_draws_as_they_were(default_instrument, default_params):
    """The organisations come from their own stream: with icc 0 the answers are those of the study
    drawn without a cluster column; with icc > 0 they differ."""
    import dataclasses
    base = dict(default_params["simulate"], n=300)
    flat = parse_simulation_params(dict(base, organisations=dict(base["organisations"], icc=0.0)))
    without = dataclasses.replace(default_instrument, cluster_column=None)
    a = simulate_study(default_instrument, flat, seed=5).responses
    b = simulate_study(without, dataclasses.replace(flat, organisations={}), seed=5).responses
    assert a.drop(columns="org_id").equals(b)
    c = simulate_study(default_instrument, parse_simulation_params(base), seed=5).responses
    assert not c.drop(columns="org_id").equals(b)
