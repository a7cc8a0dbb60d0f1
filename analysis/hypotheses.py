r"""The hypotheses file: its format, its checks, and the tests of the parts of a hypothesis that
are not the sign of one parameter.

A hypotheses file (YAML) maps an id to a hypothesis made of *parts*; each part is tested on its
own and the hypothesis' verdict combines them (:func:`verdict`):

``statement``
    The hypothesis in words (text).
``expect``
    ``{parameter: positive | negative}``: the sign of a parameter of the structural model (a
    label, a ``:=`` name, or ``"lhs op rhs"``), supported when its interval excludes zero on
    that side (:func:`analysis.structural.hypotheses_table`), with optional ``min_effect`` (the
    smallest standardised size of interest) and ``share_of`` (``{indirect: total}``: the share of
    a total effect an indirect effect carries).
``distinct``
    Two constructs are distinct (discriminant validity), by up to two criteria, each a part:

    - ``htmt_below: h``: the upper limit of the bootstrap interval of their HTMT (the
      reliability stage's ``htmt.csv``) is below ``h`` (Henseler, Ringle & Sarstedt, 2015:
      .85 for distinct constructs, .90 for conceptually close ones; :func:`htmt_part`);
    - ``correlation_below: c``: the CFA of the two constructs with their correlation fixed at
      :math:`\pm c` (the sign of its estimate) fits worse than with it free, by the estimator's
      chi-square difference on 1 df; ``c = 1`` is "they are one factor" (Anderson & Gerbing's
      1988 test, Rönkkö & Cho's 2022 :math:`\chi^2(1)`), ``c < 1`` Rönkkö & Cho's
      :math:`\chi^2(\text{cut})` (:func:`distinct_chisq`).

    ``{constructs: [A, B], htmt_below: 0.85, correlation_below: 1}``; at least one criterion.
``groups``
    Directional differences of regression paths between groups: ``{column: C, expect:
    {path: {larger_in: [g, ...], than: [h, ...]}}}`` (or ``smaller_in``), each tested in the
    invariance stage's multigroup model (loadings equal, paths free per group) as the one-sided
    test of the contrast "mean of the path in the first groups minus its mean in the others"
    (:func:`analysis.invariance.group_contrast`), Holm-adjusted over the hypothesis' contrasts.
    ``path`` is a label or ``"y ~ x"`` of a regression of the structural model; ``larger``
    means more positive (a negative path that should be stronger in some groups is
    ``smaller_in`` there).
``source: invariance``
    The measurement model is invariant across the invariance stage's groups (scalar or strict
    invariance reached); without ``groups``, also the stage's omnibus test that the paths differ.

Which stage tests what: ``expect`` and ``distinct`` the sem stage (the HTMT interval read from
the reliability stage's output), ``groups`` the invariance stage (reported by the sem stage's
hypotheses table from ``invariance.json``), ``source: invariance`` the invariance stage.

References
----------
Anderson, J. C., & Gerbing, D. W. (1988). Structural equation modeling in practice: A review and
    recommended two-step approach. Psychological Bulletin, 103(3), 411-423.
Henseler, J., Ringle, C. M., & Sarstedt, M. (2015). A new criterion for assessing discriminant
    validity in variance-based structural equation modeling. Journal of the Academy of Marketing
    Science, 43(1), 115-135.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal
    of Statistics, 6(2), 65-70.
Rönkkö, M., & Cho, E. (2022). An updated guideline for assessing discriminant validity.
    Organizational Research Methods, 25(1), 6-47.
"""
from __future__ import annotations

import math
import warnings

import pandas as pd

from analysis.checks import check_known_keys
from analysis.errors import InputError
from analysis.warnings import GapscaleWarning
from instrument.lavaan import LavaanModel, parse_model

__all__ = ["KEYS", "SIGNS", "check_hypotheses", "verdict", "htmt_part", "distinct_chisq", "group_expectations"]

KEYS = ("statement", "expect", "min_effect", "share_of", "source", "distinct", "groups")
SIGNS = ("positive", "negative")
DISTINCT_KEYS = ("constructs", "htmt_below", "correlation_below")
GROUP_KEYS = ("column", "expect")
DIRECTIONS = ("larger_in", "smaller_in")


def _what(value) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_hypotheses(data, where: str = "hypotheses") -> dict:
    """Check a hypotheses file's content (the format in this module's description).

    Each hypothesis is a mapping with known keys and at least one part (``expect``,
    ``distinct``, ``groups`` or ``source``); ``expect`` maps parameters to positive/negative;
    ``min_effect`` is a standardised size in [0, 1); ``share_of`` pairs parameters of
    ``expect``; ``distinct`` names two different constructs and at least one criterion
    (``htmt_below`` a number in (0, 1], ``correlation_below`` in (0, 1]); ``groups`` names the
    grouping column and per path ``larger_in`` (or ``smaller_in``) and ``than``, non-empty
    disjoint lists of group values (numbers are read as text: ``1`` is the group ``"1"``).
    Whether the parameters, constructs and groups exist is checked where the model and the data
    are known.

    Returns
    -------
    dict
        The hypotheses, with group values as text (``{}`` for an empty file).

    Raises
    ------
    InputError
        One line, ``WHERE: ID.KEY: what is wrong, got VALUE``.
    """
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of hypothesis ids to {{statement, expect, ...}}, got "
                         f"{_what(data)}")
    out = {}
    for hid, spec in data.items():
        at = f"{where}: {hid}"
        if not isinstance(spec, dict):
            raise InputError(f"{at}: expected a mapping with statement and expect (or distinct, groups, source), got "
                             f"{_what(spec)}")
        check_known_keys(spec, KEYS, at)
        if not any(spec.get(k) is not None for k in ("expect", "distinct", "groups", "source")):
            raise InputError(f"{at}: no part to test; give expect, distinct, groups or source: invariance")
        if "statement" in spec and not isinstance(spec["statement"], str):
            raise InputError(f"{at}.statement: text, got {_what(spec['statement'])}")
        spec = dict(spec)
        expect = spec.get("expect")
        if expect is not None:
            if not isinstance(expect, dict) or not expect:
                raise InputError(f"{at}.expect: a mapping of parameters to positive or negative, got {_what(expect)}")
            for ref, sign in expect.items():
                if sign not in SIGNS:
                    raise InputError(f"{at}.expect.{ref}: positive or negative, got {sign!r}")
        m = spec.get("min_effect")
        if m is not None and (not _number(m) or not 0 <= m < 1):
            raise InputError(f"{at}.min_effect: a standardised size from 0 to below 1, got {m!r}")
        share = spec.get("share_of")
        if share is not None:
            if not isinstance(share, dict):
                raise InputError(f"{at}.share_of: a mapping of an indirect effect to its total effect, got {_what(share)}")
            absent = [k for k in share if k not in (expect or {})]
            if absent:
                raise InputError(f"{at}.share_of.{absent[0]}: not a parameter of {hid}.expect")
        if spec.get("source") is not None and spec["source"] != "invariance":
            raise InputError(f"{at}.source: 'invariance' (the invariance stage answers the hypothesis), got "
                             f"{spec['source']!r}")
        if spec.get("distinct") is not None:
            spec["distinct"] = _check_distinct(spec["distinct"], f"{at}.distinct")
        if spec.get("groups") is not None:
            spec["groups"] = _check_groups(spec["groups"], f"{at}.groups")
        out[hid] = spec
    return out


def _check_distinct(d, at: str) -> dict:
    if not isinstance(d, dict):
        raise InputError(f"{at}: a mapping {{constructs: [A, B], htmt_below: 0.85, correlation_below: 1}}, got "
                         f"{_what(d)}")
    check_known_keys(d, DISTINCT_KEYS, at)
    c = d.get("constructs")
    if not isinstance(c, list) or len(c) != 2 or not all(isinstance(x, str) and x for x in c) or c[0] == c[1]:
        raise InputError(f"{at}.constructs: a list of two different constructs (factors of the model), got {c!r}")
    if d.get("htmt_below") is None and d.get("correlation_below") is None:
        raise InputError(f"{at}: no criterion; give htmt_below (e.g. 0.85) and/or correlation_below (e.g. 1)")
    for key in ("htmt_below", "correlation_below"):
        v = d.get(key)
        if v is not None and (not _number(v) or not 0 < v <= 1):
            raise InputError(f"{at}.{key}: a number above 0 and at most 1, got {v!r}")
    return dict(d)


def _group_list(v, at: str) -> list[str]:
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        raise InputError(f"{at}: a non-empty list of group values, got {v!r}")
    out = [str(x) for x in v]
    if len(set(out)) != len(out):
        raise InputError(f"{at}: a group is listed twice in {out}")
    return out


def _check_groups(g, at: str) -> dict:
    if not isinstance(g, dict):
        raise InputError(f"{at}: a mapping {{column: C, expect: {{path: {{larger_in: [...], than: [...]}}}}}}, got "
                         f"{_what(g)}")
    check_known_keys(g, GROUP_KEYS, at)
    if not isinstance(g.get("column"), str) or not g["column"]:
        raise InputError(f"{at}.column: the grouping column (the invariance stage's group), got {g.get('column')!r}")
    expect = g.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise InputError(f"{at}.expect: a mapping of paths to {{larger_in: [...], than: [...]}}, got {_what(expect)}")
    checked = {}
    for ref, d in expect.items():
        here = f"{at}.expect.{ref}"
        if not isinstance(d, dict):
            raise InputError(f"{here}: a mapping {{larger_in: [...], than: [...]}} (or smaller_in), got {_what(d)}")
        check_known_keys(d, DIRECTIONS + ("than",), here)
        given = [k for k in DIRECTIONS if k in d]
        if len(given) != 1:
            raise InputError(f"{here}: give one of larger_in or smaller_in, and than")
        if "than" not in d:
            raise InputError(f"{here}.than: the groups the path is compared with (a list), missing")
        first = _group_list(d[given[0]], f"{here}.{given[0]}")
        than = _group_list(d["than"], f"{here}.than")
        both = [x for x in first if x in than]
        if both:
            raise InputError(f"{here}: group {both[0]!r} is on both sides of the comparison")
        checked[str(ref)] = {given[0]: first, "than": than}
    return {"column": g["column"], "expect": checked}


def verdict(parts) -> str:
    """A hypothesis' verdict from its parts (True: supported, False: not, None: not tested):
    ``supported`` (every part), ``partly supported``, ``not supported``; ``not tested`` when no
    part could be tested; ``not fully tested`` when every tested part is supported but some could
    not be tested (a hypothesis is never called supported on part of its evidence)."""
    parts = list(parts)
    tested = [bool(p) for p in parts if p is not None and not (isinstance(p, float) and math.isnan(p))]
    if not tested:
        return "not tested"
    if all(tested):
        return "supported" if len(tested) == len(parts) else "not fully tested"
    return "partly supported" if any(tested) else "not supported"


def htmt_part(htmt: pd.DataFrame | None, constructs, below: float) -> dict:
    """The HTMT criterion of ``distinct``: the upper limit of the HTMT interval of the two
    constructs is below ``below`` (Henseler et al., 2015, HTMT_inference).

    Parameters
    ----------
    htmt : DataFrame or None
        The reliability stage's ``htmt.csv`` (``construct_1, construct_2, htmt, ci_lower,
        ci_upper``: percentile bootstrap limits; :func:`analysis.reliability.htmt_bootstrap`),
        None when not given.

    Returns
    -------
    dict
        ``htmt, ci_lower, ci_upper, supported`` (None when not tested) and ``note`` (why not).

    In R: ``semTools::htmt(model, data)`` for the point value; its interval from a bootstrap of it.
    """
    a, b = constructs
    row = {"htmt": math.nan, "ci_lower": math.nan, "ci_upper": math.nan, "supported": None, "note": ""}
    if htmt is None:
        return {**row, "note": "no HTMT results given (the reliability stage's htmt.csv)"}
    if not {"construct_1", "construct_2", "htmt"} <= set(htmt.columns):
        return {**row, "note": "the HTMT table has no construct_1, construct_2 and htmt columns"}
    pair = htmt[((htmt["construct_1"] == a) & (htmt["construct_2"] == b))
                | ((htmt["construct_1"] == b) & (htmt["construct_2"] == a))]
    if pair.empty:
        return {**row, "note": f"no HTMT of {a} and {b} in the reliability stage's results"}
    r = pair.iloc[0]
    row["htmt"] = float(r["htmt"])
    lo, hi = (float(r[c]) if c in pair.columns else math.nan for c in ("ci_lower", "ci_upper"))
    row.update(ci_lower=lo, ci_upper=hi)
    if not math.isfinite(hi):
        return {**row, "note": "the HTMT has no bootstrap interval (reliability.htmt_bootstrap: 0)"}
    row["supported"] = bool(hi < below)
    return row


def _measurement(model: LavaanModel, constructs) -> str:
    """The ``=~`` lines of the two constructs and of every latent they are measured by
    (higher-order factors: their first-order factors too)."""
    indicators = model.indicators
    for c in constructs:
        if c not in indicators:
            raise InputError(f"{c} is not a factor (=~) of the model; factors are {', '.join(indicators)}")
    lines, todo, seen = [], list(constructs), set()
    while todo:
        f = todo.pop(0)
        if f in seen:
            continue
        seen.add(f)
        lines.append(f"{f} =~ {' + '.join(indicators[f])}")
        todo.extend(x for x in indicators[f] if x in indicators)
    a, b = constructs
    for x, y in ((a, b), (b, a)):
        if x in _below(indicators, y):
            raise InputError(f"{x} measures {y} (a higher-order factor); their correlation is not a parameter to "
                             "test")
    return "\n".join(lines) + "\n"


def _below(indicators: dict, f: str) -> set:
    """The latents that measure ``f``, directly or through lower-order factors."""
    out, todo = set(), [f]
    while todo:
        for i in indicators.get(todo.pop(), ()):
            if i in indicators and i not in out:
                out.add(i)
                todo.append(i)
    return out


def distinct_chisq(data: pd.DataFrame, model, constructs, cutoff: float = 1.0, *, estimator: str = "ML",
                   missing: str = "listwise", ordered=None) -> dict:
    r"""Are two constructs distinct? The chi-square difference test of their correlation fixed at
    :math:`\pm` ``cutoff`` against free, in the CFA of the two constructs alone.

    The model is the constructs' measurement part of ``model`` (their ``=~`` lines, and those of
    the factors they are measured by when one is a higher-order factor), identified by unit
    latent variances (std.lv), so their covariance is their correlation :math:`\phi`. The
    constrained model fixes :math:`\phi = \operatorname{sign}(\hat\phi)\,c` (semTools' rule:
    when :math:`|\hat\phi| \ge c` it is fixed at :math:`\hat\phi`, so the difference is 0 and
    the constructs are not shown distinct). The test is :func:`analysis.structural.chisq_difference`
    (ML: :math:`\Delta\chi^2` on 1 df; MLR/MLM Satorra-Bentler 2001; WLSMV/ULSMV scaled and
    shifted). With :math:`c = 1` this is Anderson & Gerbing's (1988) test that the two are one
    factor (:math:`\chi^2(1)` of Rönkkö & Cho, 2022; its null value is on the boundary of the
    parameter space, so the :math:`\chi^2_1` p value is conservative: the null distribution is a
    50:50 mixture of :math:`\chi^2_0` and :math:`\chi^2_1`); with :math:`c < 1`, their
    :math:`\chi^2(\text{cut})`, the test that the correlation is below ``c``.

    Why the CFA of the pair and not a competing structural model with one factor: a model in which
    the two constructs' items load on one bipolar factor that has the union of both constructs'
    predictors is not nested in a structural model where they have different predictors (a chi-
    square difference needs nested models), while the constrained CFA is nested in the free one
    by a single fixed parameter. Anderson & Gerbing (1988, p. 416) test "one pair of factors at a
    time"; the pair's own CFA also makes the test cost two small fits.

    Parameters
    ----------
    data : DataFrame
    model : str or LavaanModel
        A model holding the constructs' ``=~`` lines (the hypothesised model).
    constructs : (str, str)
    cutoff : float
        In (0, 1].
    estimator, missing, ordered
        As :func:`analysis.sem.api.fit_model`.

    Returns
    -------
    dict
        ``correlation`` (:math:`\hat\phi`), ``fixed_at``, ``delta_chisq``, ``delta_df``,
        ``delta_pvalue``, ``chisq``, ``df`` (the free model's), ``converged`` (both fits).

    Raises
    ------
    InputError
        A construct that is not a factor of the model, or one measured by the other.

    In R (semTools 0.5-6)::

        fit <- cfa("A =~ a1 + a2 + a3; B =~ b1 + b2 + b3", data, std.lv = TRUE, missing = "ml")
        discriminantValidity(fit, cutoff = 1)   # Chisq diff, Df diff, Pr(>Chisq)
    """
    from analysis.sem.api import fit_model
    from analysis.structural import chisq_difference

    if not _number(cutoff) or not 0 < cutoff <= 1:
        raise InputError(f"correlation_below: a number above 0 and at most 1, got {cutoff!r}")
    parsed = parse_model(model) if isinstance(model, str) else model
    text = _measurement(parsed, constructs)
    a, b = constructs
    common = dict(estimator=estimator, missing=missing, std_lv=True)
    if estimator == "ML":  # only the chi-squares and the estimate are used: no SEs, no robust indices
        common.update(se=False, robust_indices=False)
    if ordered:
        common["ordered"] = [c for c in ordered if c in set(parse_model(text).observed)]
    free = fit_model(text, data, **common)
    p = free.parameters
    hit = p[(p["op"] == "~~") & (((p["lhs"] == a) & (p["rhs"] == b)) | ((p["lhs"] == b) & (p["rhs"] == a)))]
    phi = float(hit["est"].iat[0])
    fixed = phi if abs(phi) >= cutoff else math.copysign(float(cutoff), phi)
    with warnings.catch_warnings(record=True):  # a correlation fixed at 1 makes the latent matrix singular: the
        warnings.simplefilter("always", GapscaleWarning)  # constraint under test, not a problem of the data
        constrained = fit_model(text + f"{a} ~~ {fixed!r}*{b}\n", data, start=free.parameters, **common)
    if abs(phi) >= cutoff:
        test = {"delta_chisq": 0.0, "delta_df": 1, "delta_pvalue": 1.0}
    else:
        test = chisq_difference(constrained, free)
    return {"correlation": phi, "fixed_at": fixed, "delta_chisq": float(test["delta_chisq"]),
            "delta_df": int(test["delta_df"]), "delta_pvalue": float(test["delta_pvalue"]),
            "chisq": float(free.fit["chisq"]), "df": int(free.fit["df"]),
            "converged": bool(free.converged and constrained.converged)}


def group_expectations(hypotheses: dict, model) -> list[dict]:
    """The ``groups`` parts of the hypotheses as a list of contrasts on the paths of ``model``
    (the structural model whose paths the invariance stage compares): one dict per path with
    ``hypothesis, parameter`` (as written), ``lhs, op, rhs`` (``~``), ``direction``
    (``larger_in``/``smaller_in``), ``first`` (its groups), ``than`` and ``column``.

    ``model`` None (no structural model to compare): the paths are not resolved (``lhs``, ``rhs``
    empty) and the contrasts are reported as not tested.

    Raises
    ------
    InputError
        A path that is neither a label nor ``"y ~ x"`` of a regression of the model.
    """
    parsed = parse_model(model) if isinstance(model, str) else model
    regressions = {(s.lhs, s.rhs) for s in parsed.by_op("~")} if parsed is not None else set()
    labels = {lab: s for s in parsed.by_op("~") for lab in s.labels} if parsed is not None else {}
    out = []
    for hid, spec in hypotheses.items():
        g = (spec or {}).get("groups")
        if not g:
            continue
        for ref, d in g["expect"].items():
            parts = str(ref).split()
            if ref in labels:
                lhs, rhs = labels[ref].lhs, labels[ref].rhs
            elif len(parts) == 3 and parts[1] == "~" and (parts[0], parts[2]) in regressions:
                lhs, rhs = parts[0], parts[2]
            elif parsed is None:
                lhs, rhs = "", ""
            else:
                raise InputError(f"{hid}.groups.expect.{ref}: not a label or 'y ~ x' of a regression of the "
                                 "structural model")
            direction = "larger_in" if "larger_in" in d else "smaller_in"
            out.append({"hypothesis": hid, "parameter": str(ref), "lhs": lhs, "op": "~", "rhs": rhs,
                        "direction": direction, "first": list(d[direction]), "than": list(d["than"]),
                        "column": g["column"]})
    return out
