"""The structural model: R², competing models and the hypotheses table.

The fitting itself is :func:`analysis.sem.api.fit_model` (the unified engine, as the CFA) and the
bootstrap :func:`analysis.bootstrap.bootstrap_sem`; this module holds what a researcher reports
beside the path estimates. Every function takes the engine's
:class:`~analysis.sem.engine.EngineFit`.

References
----------
Asparouhov, T., & Muthen, B. (2010). Simple second order chi-square correction. Mplus technical
    appendix.
Satorra, A. (2000). Scaled and adjusted restricted tests in multi-sample analysis of moment
    structures. In Innovations in Multivariate Statistical Analysis (pp. 233-247). Kluwer.
Satorra, A., & Bentler, P. M. (2001). A scaled difference chi-square test statistic for moment
    structure analysis. Psychometrika 66, 507-514.
Raftery, A. E. (1995). Bayesian model selection in social research. Sociological Methodology
    25, 111-163.
Bentler, P. M., & Satorra, A. (2010). Testing model nesting and equivalence. Psychological
    Methods 15, 111-123.
Burnham, K. P., & Anderson, D. R. (2002). Model Selection and Multimodel Inference (2nd ed.).
    Springer.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd

from analysis.checks import check_known_keys
from analysis.errors import InputError
from analysis.sem import robust, wls
from analysis.sem.constraints import build_constraints
from analysis.sem.engine import EngineFit
from analysis.sem.estimate import MLEstimator, optimise
from analysis.sem.model import SampleStats
from analysis.sem.fit import chisq_pvalue
from instrument.lavaan import parse_model

__all__ = ["r_squared", "chisq_difference", "nested", "compare_models", "replace_structural", "model_parts", "competing_model",
           "check_competing", "check_competing_entry", "hypotheses_table", "HYPOTHESIS_COLUMNS"]


def r_squared(fit: EngineFit) -> pd.DataFrame:
    r"""R² of every endogenous variable, as lavaan: the indicators of the latents (first- and
    higher-order) and the left-hand sides of the regressions, each
    :math:`R^2 = 1 - \text{std.all of its residual variance}` (residual over model-implied
    variance), in the order of their variance rows in the parameter table; ``group`` (lavaan's
    group number) when there are several groups. Ordinal indicators (WLSMV, ULSMV) are their
    latent responses'.

    In R: ``lavInspect(fit, "r2")`` (``inspect(fit, "r2")``).
    """
    p = fit.parameters
    several = len(fit.group_labels) > 1
    groups = p["group"].to_numpy() if "group" in p.columns else np.ones(len(p), dtype=int)
    rows = []
    for g in sorted(set(groups)) if len(p) else []:
        in_g = groups == g
        op = p["op"].to_numpy()
        y = set(p.loc[in_g & (op == "=~"), "rhs"]) | set(p.loc[in_g & (op == "~"), "lhs"])
        var = p[in_g & (op == "~~") & (p["lhs"] == p["rhs"]).to_numpy() & p["lhs"].isin(y).to_numpy()]
        for r in var.itertuples():
            rows.append(((r.lhs, int(g)) if several else (r.lhs,)) + (1.0 - float(r.std_all),))
    return pd.DataFrame(rows, columns=["variable", "group", "r2"] if several else ["variable", "r2"])


def _kind(fit: EngineFit) -> str:
    """``"wls"`` (WLSMV/ULSMV), ``"scaled"`` (MLR/MLM: a scaling factor) or ``"ml"``."""
    if isinstance(fit.estimator, wls.WLSEstimator):
        return "wls"
    return "scaled" if fit.fit.get("chisq_scaling_factor") is not None else "ml"


def chisq_difference(restricted: EngineFit, full: EngineFit) -> dict:
    r"""Chi-square difference test of two nested models (``restricted`` nested in ``full``).

    - ML: :math:`\Delta\chi^2 = \chi^2_0 - \chi^2_1` on :math:`df_0 - df_1` (the likelihood ratio);
    - MLR, MLM (a scaled test): the Satorra-Bentler (2001) scaled difference
      (:func:`analysis.sem.robust.scaled_difference`): with the unscaled statistics T and the
      scaling factors c, :math:`c_d = (df_0 c_0 - df_1 c_1)/(df_0 - df_1)`,
      :math:`\Delta T = (T_0 - T_1)/c_d`;
    - WLSMV, ULSMV: the scaled-and-shifted difference of Satorra (2000) and Asparouhov & Muthen
      (2010) (:func:`analysis.sem.wls.scaled_difference`).

    Both fits must come from the same estimator. Nesting is the researcher's claim; the test is
    not valid for non-nested models (compare them by AIC/BIC).

    Returns
    -------
    dict
        ``delta_chisq, delta_df, delta_pvalue, scaled`` (lavaan's ``Chisq diff``, ``Df diff``,
        ``Pr(>Chisq)``; ``scaled`` False for the plain ML difference).

    Raises
    ------
    InputError
        The restricted model does not have more degrees of freedom, or the fits' estimators differ.

    In R: ``lavTestLRT(restricted, full)`` (``method = "satorra.bentler.2001"`` for MLR/MLM; its
    default ``"satorra.2000"`` for WLSMV/ULSMV).
    """
    f0, f1 = restricted.fit, full.fit
    ddf = f0["df"] - f1["df"]
    if ddf <= 0:
        raise InputError(f"the restricted model must have more degrees of freedom ({f0['df']}) than the full "
                         f"model ({f1['df']})")
    kind = _kind(restricted)
    if kind != _kind(full):
        raise InputError("the chi-square difference needs two fits by the same estimator")
    if kind == "wls":
        test = wls.scaled_difference(full, restricted)
    elif kind == "scaled":
        test = robust.scaled_difference(restricted, full)
    else:
        diff = float(f0["chisq"] - f1["chisq"])
        test = {"chisq_diff": diff, "df_diff": int(ddf), "pvalue": chisq_pvalue(diff, int(ddf))}
    return {"delta_chisq": float(test["chisq_diff"]), "delta_df": int(test["df_diff"]),
            "delta_pvalue": float(test["pvalue"]), "scaled": kind != "ml"}


NESTING_TOLERANCE = 1e-6  # N * F of the general model fitted to the restricted one's implied moments


def nested(restricted: EngineFit, general: EngineFit) -> bool:
    """Whether ``restricted`` is nested in ``general``, by Bentler & Satorra's (2010) nesting
    and equivalence test (NET): ``general`` is fitted (same estimator, starting from its own
    estimates) to the moments ``restricted`` implies; ``restricted`` is nested when ``general``
    reproduces them exactly (:math:`N F` below :data:`NESTING_TOLERANCE`) and has fewer
    degrees of freedom. This recognises covariance nesting whatever the parameterisation (latent
    covariances in place of regressions, a parameter fixed or constrained, a second-order factor
    in place of the correlations of its first-order factors); models with other observed
    variables, or ordinal fits with other thresholds structure, are never nested. Complete-data
    ML is the discrepancy for ML-family fits (their moments are the EM moments under FIML);
    WLSMV/ULSMV fits use their own least-squares discrepancy on the thresholds and polychorics.

    In R: ``semTools::net(restricted, general)``.
    """
    if restricted.fit["df"] <= general.fit["df"]:
        return False
    if [tuple(b.ov) for b in restricted.model.blocks] != [tuple(b.ov) for b in general.model.blocks]:
        return False
    model = general.model
    if isinstance(general.estimator, wls.WLSEstimator) or isinstance(restricted.estimator, wls.WLSEstimator):
        if not (isinstance(general.estimator, wls.WLSEstimator) and isinstance(restricted.estimator, wls.WLSEstimator)):
            return False
        implied = restricted.estimator.implied(restricted.x)
        if [len(v) for v in implied] != [len(v) for v in general.estimator.sample]:
            return False
        est = copy.copy(general.estimator)
        est.sample = implied
        ntotal = est.ntotal
    else:
        stats = [SampleStats(label=st.label, ov=st.ov, n=st.n, cov=sigma.to_numpy(), mean=mu.to_numpy())
                 for st, (sigma, mu) in zip(general.stats, restricted.implied)]
        model = model.with_sample(stats)
        est = MLEstimator(model, stats)
        ntotal = est.ntotal
    opt = optimise(est, model, build_constraints(model.partable), general.x)  # not converged: not shown nested
    return bool(np.isfinite(opt.fmin) and ntotal * opt.fmin < NESTING_TOLERANCE)


def compare_models(fits: dict[str, EngineFit], reference: str, criterion: str = "bic") -> pd.DataFrame:
    """One row per model: fit, AIC, BIC (the engine's ``fitMeasures``; NaN for WLSMV/ULSMV,
    which have no likelihood, as lavaan), and the chi-square difference against ``reference``
    (:func:`chisq_difference`).

    Each other model nested in the reference, or in which the reference is nested
    (:func:`nested`, the NET; ``nested`` column), is tested against it, the model with more degrees of
    freedom as the restricted one; a model not recognised as nested gets no test (NaN: only
    AIC/BIC compare non-nested models). ``preferred`` marks the model with the
    lowest ``criterion`` (``"bic"``, Raftery 1995, or ``"aic"``, Burnham & Anderson 2002) among
    the converged models; none when no converged model has one.
    """
    if reference not in fits:
        raise InputError(f"reference model {reference!r} not among {', '.join(fits)}")
    if criterion not in ("aic", "bic"):
        raise InputError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
    rows = []
    for name, fit in fits.items():
        f = fit.fit
        row = {"model": name, "npar": f["npar"], "chisq": f["chisq"], "df": f["df"], "pvalue": f["pvalue"],
               "chisq_scaled": f.get("chisq_scaled", np.nan), "cfi": f["cfi"], "tli": f["tli"],
               "rmsea": f["rmsea"], "srmr": f.get("srmr", np.nan), "aic": f.get("aic", np.nan),
               "bic": f.get("bic", np.nan), "converged": fit.converged,
               "nested": False, "delta_chisq": np.nan, "delta_df": np.nan, "delta_pvalue": np.nan}
        if name != reference and f["df"] != fits[reference].fit["df"]:
            pair = (fit, fits[reference]) if f["df"] > fits[reference].fit["df"] else (fits[reference], fit)
            if nested(*pair):
                row["nested"] = True
                row.update({k: v for k, v in chisq_difference(*pair).items() if k != "scaled"})
        rows.append(row)
    table = pd.DataFrame(rows)
    ok = table["converged"] & table[criterion].notna()
    best = table.loc[ok, criterion].astype(float).idxmin() if ok.any() else None
    table["preferred"] = table.index == best
    return table


def model_parts(model: str) -> tuple[str, str]:
    """The measurement part (``=~`` statements) and the structural part (everything else:
    ``~``, ``~~``, ``:=``, constraints, intercepts) of lavaan syntax, each as the lines that
    hold its statements (a statement continued over several lines keeps them all; comment and
    blank lines go with the statement below them).

    Raises
    ------
    InputError
        A syntax error (with its line), a line that mixes ``=~`` with other operators
        (``f =~ x1 + x2; y ~ f``: write them on separate lines), or ``group:`` blocks.
    """
    parsed = parse_model(model)
    if parsed.blocks:
        raise InputError("a model with group: blocks cannot be split into a measurement and a structural part")
    lines = model.splitlines()
    ops: dict[int, set] = {}
    for st in parsed.statements:
        ops.setdefault(st.line, set()).add(st.op)
    parts: dict[bool, list[str]] = {True: [], False: []}
    current, pending = True, []
    for number, line in enumerate(lines, start=1):
        if number in ops:
            current = ops[number] == {"=~"}
            if "=~" in ops[number] and not current:
                raise InputError(f"line {number}: {line.strip()!r} mixes =~ with other operators; write the "
                                 "measurement (=~) and the structural statements on separate lines")
        elif not line.split("#")[0].strip():  # a comment or blank line goes with the statement below it
            pending.append(line)
            continue
        parts[current].extend(pending + [line])  # a statement, or a continued one's next line
        pending = []
    parts[current].extend(pending)
    return "\n".join(parts[True]) + "\n", "\n".join(parts[False]) + "\n"


def replace_structural(model: str, structural: str) -> str:
    """The measurement part (``=~`` statements, :func:`model_parts`) of ``model`` with a new
    structural part (its ``~``, ``~~``, ``:=`` ... statements replaced by ``structural``): how
    a competing model is written."""
    measurement, _ = model_parts(model)
    parse_model(structural, check_labels=False)  # syntax errors name the line; labels may be the measurement part's
    if not measurement.strip():
        raise InputError("the model has no measurement part (=~ lines) to keep")
    return measurement + structural + "\n"


COMPETING_KEYS = ("measurement", "structural", "model")


def competing_model(model: str, entry, where: str = "sem.competing") -> str:
    """The lavaan syntax of a competing model: the hypothesised ``model`` with a part replaced.

    ``entry`` is one value of ``sem.competing`` (``where`` names it in errors):

    - text: a new structural part, the measurement part of ``model`` kept
      (:func:`replace_structural`);
    - ``{measurement: text, structural: text}``: either part or both replaced; a missing one is
      the hypothesised model's (:func:`model_parts`). ``measurement`` holds only ``=~``
      statements (first- and higher-order factors); the structural part whatever else the
      model needs (regressions, covariances, labels, ``:=``);
    - ``{model: text}``: a whole model of its own.

    So competing measurement models (a second-order factor against a chain of first-order
    factors, one bipolar factor against two) are compared on the same data as the hypothesised
    model. Whether one model is nested in another is the researcher's claim
    (:func:`compare_models`); non-nested models are compared by AIC/BIC.

    Raises
    ------
    InputError
        One line, starting with ``where`` (and the key at fault): an entry that is neither
        text nor such a mapping, an unknown or empty key, ``model`` beside a part, a
        measurement part with other statements than ``=~``, or a syntax error (its line in
        the part it is in).
    """
    check_competing_entry(entry, where)
    try:
        if isinstance(entry, str):
            return replace_structural(model, entry)
        if "model" in entry:
            return entry["model"].rstrip("\n") + "\n"
        measurement, structural = model_parts(model)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    text = (entry.get("measurement", measurement).rstrip("\n") + "\n"
            + entry.get("structural", structural).rstrip("\n") + "\n")
    try:
        parse_model(text)  # the labels of := and constraints must be the combined model's
    except InputError as exc:
        raise InputError(f"{where}: {exc} (lines of the measurement part, then of the structural part)") from None
    return text


def check_competing_entry(entry, where: str = "sem.competing") -> None:
    """The checks of :func:`competing_model` that need no hypothesised model: the entry's shape
    and keys, and the syntax of each part (a ``params.yaml`` is checked before any fit)."""
    if isinstance(entry, str):
        try:
            parse_model(entry, check_labels=False)  # its labels may be the measurement part's
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        return
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected lavaan syntax (a new structural part) or a mapping with measurement "
                         f"and/or structural (or model: a whole model), got {_what(entry)}")
    check_known_keys(entry, COMPETING_KEYS, where)
    if not entry:
        raise InputError(f"{where}: an empty mapping; give measurement and/or structural, or model")
    if "model" in entry and len(entry) > 1:
        raise InputError(f"{where}: model is a whole model; give it alone, or give measurement and/or structural")
    for key, text in entry.items():
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}.{key}: expected lavaan syntax (text), got {_what(text)}")
        try:
            parsed = parse_model(text, check_labels=key == "model")
        except InputError as exc:
            raise InputError(f"{where}.{key}: {exc}") from None
        if key == "measurement":
            other = next((st for st in parsed.statements if st.op != "=~"), None)
            if other is not None:
                raise InputError(f"{where}.measurement: line {other.line}: {other.lhs} {other.op} {other.rhs} is not a "
                                 "measurement statement (=~); put it in structural")
            if parsed.blocks:
                raise InputError(f"{where}.measurement: group: blocks are not a measurement part")


def check_competing(entries) -> dict:
    """``sem.competing``: a mapping of model names to entries of :func:`competing_model`, each
    checked by :func:`check_competing_entry`; returned as it is (``{}`` for none: an empty key)."""
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise InputError(f"sem.competing: a mapping of model names to a structural part (lavaan syntax), "
                         f"{{measurement, structural}} or {{model}}, got {_what(entries)}")
    for name, entry in entries.items():
        if name == "hypothesised":
            raise InputError("sem.competing.hypothesised: the name of the hypothesised model; name the competing "
                             "model otherwise")
        check_competing_entry(entry, f"sem.competing.{name}")
    return entries


def _what(value) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _lookup(parameters: pd.DataFrame, ref: str) -> pd.Series:
    """The row of ``parameters`` a hypothesis names: a label, a defined parameter, or
    ``lhs op rhs`` (``VCC ~~ VCD``)."""
    hit = parameters[parameters["label"] == ref]
    if len(hit):
        return hit.iloc[0]
    parts = ref.split()
    if len(parts) == 3:
        lhs, op, rhs = parts
        hit = parameters[(parameters["lhs"] == lhs) & (parameters["op"] == op) & (parameters["rhs"] == rhs)]
        if not len(hit) and op == "~~":
            hit = parameters[(parameters["lhs"] == rhs) & (parameters["op"] == op) & (parameters["rhs"] == lhs)]
        if len(hit):
            return hit.iloc[0]
    raise InputError(f"hypothesis parameter {ref!r} is neither a label, a defined parameter nor 'lhs op rhs' "
                     "of the model")


HYPOTHESIS_COLUMNS = ["hypothesis", "statement", "parameter", "path", "expected", "est", "std_all", "ci_lower",
                      "ci_upper", "interval", "pvalue", "min_effect", "share", "supported", "verdict"]


def hypotheses_table(parameters: pd.DataFrame, hypotheses: dict, interval: str = "ci") -> pd.DataFrame:
    """One row per (hypothesis, parameter): estimate, standardised estimate, interval, p, and
    whether the data support the expected sign (and size).

    ``hypotheses`` maps an id to ``{"statement": str, "expect": {parameter: "positive" |
    "negative"}}`` (parameter as in :func:`_lookup`), optionally with

    - ``min_effect``: the smallest effect of interest, a standardised size (``std_all``): a part
      is then supported only when its interval excludes zero on the expected side *and*
      |β| ≥ ``min_effect`` (Lakens, Scheel & Isager, 2018, on smallest effect sizes
      of interest); without it any nonzero effect counts;
    - ``share_of``: ``{indirect: total}`` pairs of defined parameters: the row of ``indirect``
      gets ``share`` = indirect / total, the proportion of the total effect that runs through
      that path (the "proportion mediated" of Preacher & Kelley, 2011, with its caveats: it is
      unbounded when the total is near zero or the effects differ in sign).

    A part is supported when the conditions hold; ``verdict`` per hypothesis is ``supported``
    (all parts), ``partly supported`` or ``not supported``. ``interval`` names the interval
    columns: ``"ci"`` (Wald, ``ci_lower``/``ci_upper``), ``"boot_pct"`` or ``"boot_bc"``.
    The other parts a hypothesis may have (``distinct``, ``groups``, ``source``:
    :mod:`analysis.hypotheses`) are tested elsewhere; a hypothesis with none of ``expect`` gives
    no row here.

    References
    ----------
    Lakens, D., Scheel, A. M., & Isager, P. M. (2018). Equivalence testing for psychological
        research: A tutorial. Advances in Methods and Practices in Psychological Science, 1(2), 259-269.
    Preacher, K. J., & Kelley, K. (2011). Effect size measures for mediation models: Quantitative
        strategies for communicating indirect effects. Psychological Methods, 16(2), 93-115.
    """
    lower, upper = f"{interval}_lower", f"{interval}_upper"
    if lower not in parameters:
        raise ValueError(f"no {interval} interval in the parameter table")
    rows = []
    for hid, spec in hypotheses.items():
        expect = spec.get("expect") or {}
        if not expect and any(spec.get(k) is not None for k in ("distinct", "groups", "source")):
            continue  # no sign to test: the hypothesis' other parts are tested elsewhere
        if not isinstance(expect, dict) or not expect:
            raise InputError(f"hypothesis {hid}: 'expect' must map parameters to positive or negative")
        min_effect = spec.get("min_effect")
        if min_effect is not None and (isinstance(min_effect, bool) or not isinstance(min_effect, (int, float))
                                       or not 0 <= min_effect < 1):
            raise InputError(f"hypothesis {hid}: min_effect: a standardised size between 0 and 1, got {min_effect!r}")
        share_of = spec.get("share_of") or {}
        if not isinstance(share_of, dict):
            raise InputError(f"hypothesis {hid}: share_of must map an indirect effect to its total effect")
        for ref, sign in expect.items():
            if sign not in ("positive", "negative"):
                raise InputError(f"hypothesis {hid}: {ref}: expected 'positive' or 'negative', got {sign!r}")
            row = _lookup(parameters, ref)
            lo, hi = row[lower], row[upper]
            ok = bool(lo > 0) if sign == "positive" else bool(hi < 0)
            large = True if min_effect is None else bool(abs(row["std_all"]) >= min_effect)
            share = math.nan
            if ref in share_of:
                total = _lookup(parameters, share_of[ref])["est"]
                share = row["est"] / total if total != 0 else math.nan
            rows.append({"hypothesis": hid, "statement": spec.get("statement", ""), "parameter": ref,
                         "path": f"{row['lhs']} {row['op']} {row['rhs']}" if row["op"] != ":=" else row["lhs"],
                         "expected": sign, "est": row["est"], "std_all": row["std_all"], "ci_lower": lo,
                         "ci_upper": hi, "interval": interval, "pvalue": row["pvalue"],
                         "min_effect": math.nan if min_effect is None else float(min_effect),
                         "share": share, "supported": ok and large})
    table = pd.DataFrame(rows, columns=HYPOTHESIS_COLUMNS[:-1])
    verdict = table.groupby("hypothesis", sort=False)["supported"].agg(
        lambda s: "supported" if s.all() else ("partly supported" if s.any() else "not supported"))
    table["verdict"] = table["hypothesis"].map(verdict)
    return table
