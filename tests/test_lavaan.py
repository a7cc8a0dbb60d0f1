"""The lavaan syntax reader, and the default model against the instrument and params."""
from __future__ import annotations

import pytest

from analysis.simulate import parse_simulation_params
from instrument import LavaanSyntaxError, parse_model, read_model
from instrument.schema import model_problems


def test_operators_modifiers_and_continuations():
    m = parse_model("""
        # Holzinger & Swineford, as in lavaan's documentation
        visual  =~ x1 + x2 +
                   x3               ! a continuation line
        textual =~ x4 + 1*x5 + NA*x6
        speed   =~ x7 + a*x8 + start(0.5)*x9; speed ~~ speed
        visual ~ b1*textual
               + label("b2")*speed
        x1 ~ 1
        x1 ~~ 0.3*x4
        ab := b1*b2
        b1 == b2
        b1 > 0
    """)
    assert m.latents == ("visual", "textual", "speed")
    assert m.indicators["visual"] == ("x1", "x2", "x3")
    assert m.observed == tuple(f"x{k}" for k in range(1, 10))
    s = {(st.lhs, st.op, st.rhs): st for st in m.statements}
    assert s[("textual", "=~", "x5")].fixed == 1.0
    assert s[("textual", "=~", "x6")].free_override and s[("textual", "=~", "x6")].free
    assert s[("speed", "=~", "x8")].label == "a"
    assert s[("speed", "=~", "x9")].start == 0.5 and s[("speed", "=~", "x9")].free
    assert s[("visual", "~", "speed")].label == "b2"
    assert s[("x1", "~1", "")].op == "~1"
    assert s[("x1", "~~", "x4")].fixed == 0.3
    assert s[("ab", ":=", "b1*b2")].op == ":="
    assert ("b1", "==", "b2") in s and ("b1", ">", "0") in s
    assert m.regressions == {"visual": ("textual", "speed")}
    assert set(m.labels) == {"a", "b1", "b2"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the model is empty"),
        ("# only a comment", "the model is empty"),
        ("f1 =~ x1 + x2\nf1 =~ x1", "line 2: f1 =~ x1 is already specified on line 1"),
        ("f1 =~ x1 + + x2", "empty term"),
        ("f1 =~ c(a, 1)*x1 + x2", "mixes numbers and labels"),
        ("1f =~ x1 + x2", "'1f' is not a variable name"),
        ("f1 =~ x1 + x-2", "'x-2' is not a variable name"),
        ("f1 =~", "nothing on the right"),
    ],
)
def test_syntax_errors_name_the_line(text, message):
    with pytest.raises(LavaanSyntaxError, match=message):
        parse_model(text)


def test_read_model_names_the_file(tmp_path):
    path = tmp_path / "m.lavaan"
    path.write_text("f =~ x1 + x2\ng =~\n")
    with pytest.raises(LavaanSyntaxError, match=r"m\.lavaan: line 2: nothing on the right"):
        read_model(path)
    with pytest.raises(LavaanSyntaxError, match="model file not found"):
        read_model(tmp_path / "missing.lavaan")


def test_default_model_matches_the_instrument(default_instrument):
    assert model_problems(default_instrument) == []
    model = read_model(default_instrument.model)
    for c in default_instrument.constructs:
        assert model.indicators[c.id] == c.item_ids
    assert model.indicators["IM"] == ("IMVI", "IMVG", "IMVE")
    assert {s.lhs for s in model.by_op(":=")} >= {"ind_serial_vcc", "ind_serial_vcd"}


def test_model_problems_catch_unknown_variables(default_instrument, tmp_path):
    from dataclasses import replace

    bad = tmp_path / "bad.lavaan"
    bad.write_text(default_instrument.model.read_text().replace("GAP1_4", "GAP1_9"))
    problems = model_problems(replace(default_instrument, model=bad))
    assert any("'GAP1_9'" in p and "neither a latent" in p for p in problems)
    assert any("item 'GAP1_4' is not in bad.lavaan" in p for p in problems)


def test_default_params_simulate_the_hypothesised_model(default_instrument, default_params):
    """The population model in params.yaml has exactly the paths of the hypothesised model."""
    model = read_model(default_instrument.model)
    params = parse_simulation_params(default_params["simulate"])
    second_order = {ind: (lat,) for lat, inds in model.indicators.items()
                    if lat not in default_instrument.construct_ids for ind in inds}
    expected = {**{k: set(v) for k, v in model.regressions.items()}, **{k: set(v) for k, v in second_order.items()}}
    assert {k: set(v) for k, v in params.structural.items()} == expected
    assert set(params.extra_latents) == set(model.latents) - set(default_instrument.construct_ids)
    covs = {frozenset((s.lhs, s.rhs)) for s in model.by_op("~~")}
    assert {frozenset((a, b)) for a, o in params.residual_correlations.items() for b in o} == covs
    # Signs follow the hypotheses: IM narrows gaps (H1), gaps chain and widen GAP5 (H2, H3),
    # GAP5 lowers VCC and raises VCD (H4), every reason raises VCD (H5), H8 residuals negative.
    s = params.structural
    assert all(s[g]["IM"] < 0 for g in ("GAP1", "GAP2", "GAP3", "GAP4"))
    assert all(b > 0 for b in s["GAP5"].values())
    assert s["VCC"]["GAP5"] < 0 and all(b > 0 for b in s["VCD"].values())
    assert params.residual_correlations["VCC"]["VCD"] < 0
