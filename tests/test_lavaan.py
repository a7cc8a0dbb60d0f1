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
        if c.marker or not c.in_model:  # MARK and KNOW stay out of the model (instrument/README.md)
            assert c.id not in model.indicators and not set(c.item_ids) & set(model.observed), c.id
        else:
            assert model.indicators[c.id] == c.item_ids
    assert len(model.indicators) == len(default_instrument.constructs) - 2 + 1  # and IM
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
    observed = set(model.observed)  # the control variables: observed covariates, simulate.covariates
    expected = {**{k: set(v) - observed for k, v in model.regressions.items()},
                **{k: set(v) for k, v in second_order.items()}}
    assert {k: set(v) for k, v in params.structural.items()} == expected
    assert {k: set(v) for k, v in params.covariates.items()} == \
        {k: set(v) & observed for k, v in model.regressions.items() if set(v) & observed}
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


# --------------------------------------------------------------------------- the rest of lavaan's syntax


def _rows(m):
    return {(s.lhs, s.op, s.rhs): s for s in m.statements}


def test_thresholds_composites_and_intercepts():
    m = parse_model("""
        f =~ x1 + x2 + x3
        x1 | t1 + a1*t2 + 0.5*t3
        x2 | t1
        comp <~ 1*x4 + x5 + w6*x6
        x1 ~ 1; f ~ 0*1; x2 ~ NA*1 + start(0.2)*1
        x3 ~ 0
        x4 ~~ x4
        x1 ~*~ 1*x1
    """)
    s = _rows(m)
    # the threshold line is its own statement, not terms of f =~ (lavaan's '|')
    assert m.indicators["f"] == ("x1", "x2", "x3")
    assert [k for k in s if k[1] == "|"] == [("x1", "|", "t1"), ("x1", "|", "t2"), ("x1", "|", "t3"),
                                             ("x2", "|", "t1")]
    assert s[("x1", "|", "t2")].label == "a1" and s[("x1", "|", "t3")].fixed == 0.5
    # '<~' is a composite, not an inequality
    assert m.latents == ("f", "comp") and s[("comp", "<~", "x4")].fixed == 1.0
    assert s[("comp", "<~", "x6")].label == "w6" and not m.constraints
    assert s[("x1", "~1", "")].free and s[("f", "~1", "")].fixed == 0.0
    assert s[("x2", "~1", "")].free_override and s[("x2", "~1", "")].start == 0.2
    assert s[("x3", "~1", "")].fixed == 0.0  # lavaan: y ~ 0 fixes the intercept
    assert s[("x1", "~*~", "x1")].fixed == 1.0
    assert m.observed == ("x1", "x2", "x3", "x4", "x5", "x6")


def test_constraints_with_arithmetic_keep_lavaans_form():
    m = parse_model("""
        f =~ x1 + a*x2 + b*x3 + c*x4
        g =~ x5 + b1*x6 + b2*x7
        a == 2*b
        b1 + b2 == 1
        c > 0; b < 1.5
        ab := a*b
        ratio := (a - b) / sqrt(abs(c)) ^ 2
        ab > 0
    """)
    assert [(s.lhs, s.op, s.rhs) for s in m.constraints] == [
        ("a", "==", "2*b"), ("b1+b2", "==", "1"), ("c", ">", "0"), ("b", "<", "1.5"), ("ab", ">", "0")]
    assert [(s.lhs, s.rhs) for s in m.defined] == [("ab", "a*b"), ("ratio", "(a-b)/sqrt(abs(c))^2")]
    assert m.constraints[1].line == 5 and m.defined[1].line == 8


def test_modifiers_all_kinds():
    m = parse_model("""
        f =~ x1 + NA*x2 + start(0.5)*x3 + label("l4")*x4 + equal("l4")*x5 + "q"*x6
        g =~ x7 + a*start(0.8)*x8 + 0.3?x9
        g =~ x10 + x10 + b*x10 + start(1.2)*x10
        h =~ c(1, NA)*y1 + c(l2a, l2b)*y2 + c(NA, NA)*y3 + start(c(0.4, 0.6))*y4 + c(a, NA)*y5
        y1 ~~ lower(0)*y1 + upper(2)*y1
        y6 + y7 ~ -0.5*x1 + 1/4*x2
    """)
    s = _rows(m)
    assert s[("f", "=~", "x2")].free_override and s[("f", "=~", "x3")].start == 0.5
    assert [s[("f", "=~", f"x{k}")].label for k in (4, 5, 6)] == ["l4", "l4", "q"]
    x8 = s[("g", "=~", "x8")]
    assert (x8.label, x8.start, x8.free) == ("a", 0.8, True)
    assert s[("g", "=~", "x9")].start == 0.3
    x10 = s[("g", "=~", "x10")]  # a repeated term merges its modifiers, as lavaan
    assert (x10.label, x10.start) == ("b", 1.2) and sum(k == ("g", "=~", "x10") for k in s) == 1
    assert s[("h", "=~", "y1")].fixed_by_group == (1.0, None) and s[("h", "=~", "y1")].group_wise
    assert s[("h", "=~", "y2")].label_by_group == ("l2a", "l2b")
    assert s[("h", "=~", "y3")].fixed_by_group == (None, None)
    assert s[("h", "=~", "y4")].start_by_group == (0.4, 0.6)
    assert s[("h", "=~", "y5")].label_by_group == ("a", "")
    assert (s[("y1", "~~", "y1")].lower, s[("y1", "~~", "y1")].upper) == ((0.0,), (2.0,))
    assert s[("y6", "~", "x1")].fixed == -0.5 and s[("y7", "~", "x2")].fixed == 0.25
    assert set(m.labels) >= {"l4", "q", "a", "b", "l2a", "l2b"}


def test_comments_continuations_and_semicolons():
    m = parse_model("f =~ x1 + # first\n  x2 +\n\n  x3 ! third\ng =~ x4 + x5;  g ~~ f; x1 ~~ x2 # a '#' in a comment\n"
                    "ab := a\n  * b\nf =~ a*x6 + label('b')*x7")
    assert m.indicators == {"f": ("x1", "x2", "x3", "x6", "x7"), "g": ("x4", "x5")}
    assert _rows(m)[("ab", ":=", "a*b")].line == 6


def test_group_blocks():
    m = parse_model("group: 1\nf =~ x1 + x2\ngroup: 2\nf =~ x1 + x2\nx1 ~~ x2\ngroup: 1\nx1 ~ 1")
    assert m.blocks == ((("group", "1"),), (("group", "2"),))
    assert [(s.lhs, s.op, s.block) for s in m.statements] == [
        ("f", "=~", 1), ("f", "=~", 1), ("f", "=~", 2), ("f", "=~", 2), ("x1", "~~", 2), ("x1", "~1", 1)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("f =~ x1 + x2\nx3 ~~ x3\nind := a*b", r"line 3: ind := a\*b uses 'a', which labels no parameter"),
        ("f =~ a*x1 + x2\na == 2*bb", r"line 2: a == 2\*bb uses 'bb', which labels no parameter"),
        ("f =~ a*x1 + x2\nc > 0", r"line 2: c > 0 uses 'c'"),
        ("f =~ a*x1 + x2\nd := a*e\ne := 2*a", r"line 2: d := a\*e uses 'e', which is defined later \(line 3\)"),
        ("f =~ a*x1 + x2\na := 2", "line 2: a := ... reuses the name of a parameter label"),
        ("f =~ a*x1 + x2\nd := foo(a)", r"line 2: unknown function foo\(\)"),
        ("f =~ a*x1 + x2\nd := a +* 2", "line 2: .* is not an arithmetic expression"),
        ("f =~ a*x1 + x2\n1 == 1", "line 2: 1 == 1 constrains no parameter"),
        ("f =~ x1 + x2\nx1 | t1 + tau2", "line 2: threshold 'tau2': thresholds are named t1, t2"),
        ("f =~ x1 + a*b*x2", "line 1: two label modifiers for one parameter"),
        ("f =~ x1 + 1*x2 + 2*x2", "line 1: two fixed modifiers"),
        ("f =~ x1 + x2 +\ng =~ x3 + x4", "line 1: the statement ends with '\\+'"),
        ("x1 + x2\nf =~ x1", "line 1: no operator"),
        ("y ~ x1:x2", "line 1: the interaction term 'x1:x2' is not supported"),
        ("f =~ prior('normal(0,1)')*x1 + x2", r"line 1: the modifier prior\(\) is not supported"),
        ("f =~ x1 + f", "line 1: latent variable 'f' cannot be measured by itself"),
        ("f =~ x1 + x2\nf ~ x3 + f", "line 2: f ~ f regresses a variable on itself"),
        ("f =~ x1 + NA", "'NA' is not a variable name"),
        ("f =~ x1 + x2\nx1 ~~ x2\nx2 ~~ x1", "line 3: x2 ~~ x1 is already specified on line 2"),
        ("f =~ x1 + x2\ngroup:\nf =~ x1", "line 2: block identifier 'group' without a number"),
        ("f =~ x1 + (x2", r"line 1: a '\(' without its '\)'"),
    ],
)
def test_more_syntax_errors_name_the_line(text, message):
    with pytest.raises(LavaanSyntaxError, match=message):
        parse_model(text)


def test_labels_need_not_be_checked_in_a_fragment():
    m = parse_model("VCC ~ c1*GAP5\nind := a1*c1", check_labels=False)
    assert m.defined[0].rhs == "a1*c1"


# --------------------------------------------------------------------------- hostile input (issue 12)


def _refused_fast(text, message):
    import time

    start = time.process_time()
    with pytest.raises(LavaanSyntaxError, match=message) as exc:
        parse_model(text)
    assert time.process_time() - start < 0.5, "refused, but not fast"
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300
    return str(exc.value)


def test_hostile_model_texts_are_refused_fast():
    from analysis.errors import InputError

    assert issubclass(LavaanSyntaxError, InputError)
    _refused_fast("f =~ x1 + x2\n" + "# padding\n" * 150_000, r"line 100000: the model text passes the limit of "
                                                                r"1000000 characters")
    _refused_fast("f =~ a*x1 + x2\n" + "ind := a*a\n" * 230_000, "passes the limit")  # 2.5 MB
    _refused_fast("f =~ a*x1\n" + "d:=a;" * 199_000, r"line 2: the model has more than 10000 statements")
    _refused_fast("f =~ a*x1\nd := " + "(" * 100_000 + "a" + ")" * 100_000, "line 2: parentheses nested more than "
                                                                          "100 deep")
    _refused_fast("f =~ " + "(" * 100_000 + "x1" + ")" * 100_000, "line 1: parentheses nested more than 100 deep")
    _refused_fast("f =~ a*x1\nd := " + "+".join(["a"] * 150_000), "line 2: the expression has 300004 characters")
    _refused_fast("f =~ " + " + ".join(f"x{k}" for k in range(25_000)), "line 1: the statement has more than "
                                                                        "20000 terms")
    _refused_fast("f =~ a*x1 + x2\n" + "\n" * 5000 + "ind := a*zz", "line 5002: ind := a\\*zz uses 'zz'")


def test_a_huge_model_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.lavaan"
    with path.open("w") as f:
        f.write("f =~ x1 + x2\n")
        f.truncate(50_000_000)  # sparse: 50 MB of NUL bytes
    with pytest.raises(LavaanSyntaxError, match=r"huge\.lavaan: the model file has 50000000 bytes"):
        read_model(path)


def test_validate_refuses_a_defined_parameter_with_unknown_labels(run_cli, tmp_path):
    import shutil

    for name in ("sustainability_gap.yaml", "sustainability_gap.lavaan"):
        shutil.copy(f"instrument/{name}", tmp_path / name)
    model = tmp_path / "sustainability_gap.lavaan"
    text = model.read_text()
    n = text.count("\n") + 1
    model.write_text(text + "ind_typo := a1*d21*d99\n")
    code, out, err = run_cli("instrument", "validate", tmp_path / "sustainability_gap.yaml")
    assert code == 2 and "Traceback" not in err
    assert f"line {n}: ind_typo := a1*d21*d99 uses 'd99', which labels no parameter of the model" in err


# --------------------------------------------------------------------------- the engine refuses what it cannot fit


@pytest.mark.parametrize(
    "extra, message",
    [
        ("x1 | t1 + t2", r"ordered items \(thresholds\) need estimator WLSMV or ULSMV, got 'ML'"),
        ("visual =~ c(1, NA)*x4", r"line 4: visual =~ x4: the c\(...\) modifier gives 2 values but the model has 1 "
                                  r"group"),
        ("comp <~ x1 + x2", r"the model is not identified: .*comp <~ x1, comp <~ x2"),
    ],
)
def test_the_engine_refuses_what_it_cannot_fit_in_one_line(extra, message):
    """What lavaan's syntax allows but the data or the model cannot support is refused with an
    InputError naming the line or the parameters (a composite of indicators that also load on
    factors has no variance left to identify it)."""
    import pandas as pd

    from analysis.errors import InputError
    from analysis.sem import fit_model

    data = pd.read_csv("tests/reference/hs_full.csv")
    model = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n" + extra
    with pytest.raises(InputError, match=message) as err:
        fit_model(data=data, model=model)
    assert "\n" not in str(err.value)


def test_the_engine_fits_bounds_and_intercepts():
    """``lower()`` bounds and ``~ 1`` intercepts, once refused, are fitted as lavaan does (the
    bound inactive and the intercept free: the chi-square and df of the plain model)."""
    import pandas as pd

    from analysis.sem import fit_model

    data = pd.read_csv("tests/reference/hs_full.csv")
    base = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
    plain = fit_model(base, data)
    for extra in ("x1 ~~ lower(0)*x1", "x1 ~ 1"):
        f = fit_model(base + extra, data)
        assert f.fit["df"] == plain.fit["df"] == 24
        assert f.fit["chisq"] == pytest.approx(plain.fit["chisq"], rel=1e-8)
        assert f.fit["chisq"] == pytest.approx(85.30552, abs=1e-4)  # lavaan: cfa(HS.model, HolzingerSwineford1939)


TOKENS = ["f", "g", "x1", "x2", "a", "b", "=~", "~", "~~", "<~", "|", "t1", ":=", "==", "<", ">", "+", "*", "1", "0",
          "NA", "0.5", "(", ")", ",", "c(", "start(", "label(", '"a"', "\n", ";", "#", " ", "group:", "?", "-", "/",
          "^", "sqrt(", "lower(", "efa(", ":", "=", "~*~", ".", "\u00e9", "\x00"]


def test_fuzzed_syntax_is_read_or_refused_as_input():
    """Any text is either a model or a LavaanSyntaxError: never another exception (a bug)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from analysis.errors import InputError
    from analysis.sem.partable import lavaanify

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30))
    def check(tokens):
        text = "".join(tokens)
        try:
            model = parse_model(text)
        except LavaanSyntaxError as exc:
            assert "\n" not in str(exc)
            return
        try:
            lavaanify(model)
        except InputError:
            pass

    check()
