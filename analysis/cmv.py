r"""Common-method variance (CMV) with a marker variable and with an unmeasured method factor.

- :func:`lindell_whitney`: the marker-variable correlation adjustment of Lindell & Whitney (2001);
- :func:`marker_technique`: the CFA marker technique of Williams, Hartman & Cavazotte (2010),
  its CFA, Baseline, Method-C, Method-U and Method-R models and their chi-square difference tests
  (the model strings from :func:`marker_models`);
- :func:`unmeasured_method_factor`: the unmeasured latent method construct (ULMC; Podsakoff et
  al., 2003) with free loadings, its equal-loading form, and an admissible variant with the
  substantive correlations fixed at the CFA's, each flagged admissible or not with the reasons.

Every model is lavaan syntax fitted with :func:`analysis.sem.api.fit_model` (ML, complete data
or FIML); the difference tests are :func:`analysis.structural.chisq_difference`. Each model is
written in the ``std.lv`` parameterisation explicitly (``F =~ NA*x1 + ...``, ``F ~~ 1*F``), so
the strings mean the same in lavaan's ``cfa()`` with its defaults.

References
----------
Lindell, M. K., & Whitney, D. J. (2001). Accounting for common method variance in
cross-sectional research designs. *Journal of Applied Psychology, 86*(1), 114-121.

Williams, L. J., Hartman, N., & Cavazotte, F. (2010). Method variance and marker variables: A
review and comprehensive CFA marker technique. *Organizational Research Methods, 13*(3), 477-514.

Podsakoff, P. M., MacKenzie, S. B., Lee, J.-Y., & Podsakoff, N. P. (2003). Common method biases
in behavioral research. *Journal of Applied Psychology, 88*(5), 879-903.

Richardson, H. A., Simmering, M. J., & Sturman, M. C. (2009). A tale of three perspectives:
Examining post hoc statistical techniques for detection and correction of common method
variance. *Organizational Research Methods, 12*(4), 762-800.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.distributions import t_sf
from analysis.errors import InputError
from analysis.sem.api import fit_model
from analysis.sem.engine import EngineFit
from analysis.structural import chisq_difference

__all__ = ["LW_COLUMNS", "PATH_COLUMNS", "VARIANTS", "MarkerResult", "MethodFactorResult", "lindell_whitney",
           "lindell_whitney_adjust", "marker_correlation", "marker_models", "marker_technique", "method_adjusted_paths",
           "unmeasured_method_factor", "unmeasured_method_models"]

LW_COLUMNS = ["variable_1", "variable_2", "r", "r_marker", "r_adjusted", "t", "df", "pvalue"]
METHOD = "METHOD"


# --------------------------------------------------------------------------- Lindell & Whitney


def marker_correlation(correlations) -> float:
    r"""The marker correlation :math:`r_M` of Lindell & Whitney (2001): the smallest positive
    correlation of the marker variable with the substantive variables (their conservative
    estimate of the common-method variance; the second smallest is their sensitivity check).

    Parameters
    ----------
    correlations : sequence of float
        The marker's correlations with the substantive variables.

    Raises
    ------
    InputError
        No positive correlation (then CMV cannot be estimated from this marker), or a value
        outside [-1, 1].

    Notes
    -----
    In R: ``r <- cor(d)[marker, vars]; min(r[r > 0])``.
    """
    r = np.asarray(list(correlations), dtype=float)
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(np.abs(r) > 1):
        raise InputError(f"marker correlations: need finite values in [-1, 1], got {r.tolist()!r}")
    positive = r[r > 0]
    if positive.size == 0:
        raise InputError("marker correlations: none is positive, so the marker gives no estimate of common-method "
                         f"variance (got {r.tolist()!r})")
    return float(positive.min())


def lindell_whitney_adjust(r, r_marker: float, n: int) -> pd.DataFrame:
    r"""Lindell & Whitney's (2001) adjustment of correlations for common-method variance.

    .. math:: r_A = \frac{r_U - r_M}{1 - r_M}, \qquad
              t = \frac{r_A}{\sqrt{(1 - r_A^2)/(N - 3)}}

    with :math:`r_U` the observed (unadjusted) correlation, :math:`r_M` the marker correlation
    and the two-sided p value of :math:`t` on :math:`N - 3` degrees of freedom (Lindell &
    Whitney: one more degree of freedom is lost for estimating :math:`r_M`).

    Parameters
    ----------
    r : float or array-like
        Observed correlations :math:`r_U`.
    r_marker : float
        :math:`r_M` in [0, 1), e.g. :func:`marker_correlation`.
    n : int
        Sample size, at least 4.

    Returns
    -------
    DataFrame
        ``r, r_marker, r_adjusted, t, df, pvalue``, one row per correlation.

    Notes
    -----
    In R: ``ra <- (r - rm) / (1 - rm); t <- ra / sqrt((1 - ra^2) / (n - 3));
    2 * pt(-abs(t), n - 3)``.
    """
    r_u = np.atleast_1d(np.asarray(r, dtype=float))
    if not np.all(np.isfinite(r_u)) or np.any(np.abs(r_u) > 1):
        raise InputError(f"r: correlations must be in [-1, 1], got {r_u.tolist()!r}")
    if isinstance(r_marker, bool) or not 0 <= float(r_marker) < 1:
        raise InputError(f"r_marker: need a value in [0, 1), got {r_marker!r}")
    if isinstance(n, bool) or int(n) != n or n < 4:
        raise InputError(f"n: need a whole number of at least 4, got {n!r}")
    r_m = float(r_marker)
    r_a = (r_u - r_m) / (1.0 - r_m)
    df = int(n) - 3
    with np.errstate(divide="ignore"):
        t = r_a / np.sqrt((1.0 - r_a ** 2) / df)
    p = 2.0 * t_sf(np.abs(t), df)
    return pd.DataFrame({"r": r_u, "r_marker": r_m, "r_adjusted": r_a, "t": t, "df": df, "pvalue": p})


def lindell_whitney(data: pd.DataFrame, marker: str, variables: Sequence[str],
                    r_marker: float | None = None) -> pd.DataFrame:
    r"""Every correlation among ``variables`` adjusted for common-method variance with the marker
    variable ``marker`` (:func:`lindell_whitney_adjust`).

    Correlations are Pearson's on the complete rows of ``[marker] + variables`` (listwise, one N
    for the t tests). ``r_marker`` None: the smallest positive correlation of the marker with
    the variables (:func:`marker_correlation`); give a value to use another estimate (e.g. the
    marker construct's correlation from :func:`marker_technique`'s CFA, or the second smallest).

    Returns
    -------
    DataFrame
        :data:`LW_COLUMNS`, one row per pair of variables (in the order given).

    Raises
    ------
    InputError
        A column not in ``data`` or not numeric, fewer than two variables, the marker among them,
        fewer than 4 complete rows, or no positive marker correlation.

    Notes
    -----
    In R: ``d <- na.omit(d[, c(marker, vars)]); r <- cor(d); rm <- min(r[marker, vars][r[marker,
    vars] > 0])`` and then the formulas of :func:`lindell_whitney_adjust` on ``r[vars, vars]``.
    """
    names = list(variables)
    if len(names) < 2 or marker in names:
        raise InputError(f"lindell_whitney: need at least two variables other than the marker {marker!r}, got {names!r}")
    absent = [c for c in [marker] + names if c not in data.columns]
    if absent:
        raise InputError(f"data: column(s) {', '.join(map(str, absent))} not found")
    try:
        x = data[[marker] + names].astype(float).dropna()
    except (TypeError, ValueError) as exc:
        raise InputError(f"data: the marker and variables must be numeric ({exc})") from None
    n = len(x)
    if n < 4:
        raise InputError(f"lindell_whitney: {n} complete rows of {[marker] + names!r}, need at least 4")
    r = x.corr().to_numpy()
    r_m = marker_correlation(r[0, 1:]) if r_marker is None else float(r_marker)
    i, j = np.triu_indices(len(names), 1)
    out = lindell_whitney_adjust(r[1:, 1:][i, j], r_m, n)
    out.insert(0, "variable_2", [names[k] for k in j])
    out.insert(0, "variable_1", [names[k] for k in i])
    return out[LW_COLUMNS]


# --------------------------------------------------------------------------- model syntax


def _num(value: float) -> str:
    """A fixed value in lavaan syntax, to full double precision."""
    return f"{float(value):.17g}"


def _check_constructs(constructs: Mapping[str, Sequence[str]], what: str = "constructs") -> dict[str, list[str]]:
    if not isinstance(constructs, Mapping) or not constructs:
        raise InputError(f"{what}: need a mapping of factor name to its items, got {constructs!r}")
    out = {str(c): list(items) for c, items in constructs.items()}
    bad = [c for c, items in out.items() if len(items) < 1 or isinstance(constructs[c], str)]
    if bad:
        raise InputError(f"{what}: factor(s) {', '.join(bad)} need a list of item names")
    seen: dict[str, str] = {}
    for c, items in out.items():
        for i in items:
            if i in seen:
                raise InputError(f"{what}: item {i!r} is listed under both {seen[i]} and {c}")
            seen[i] = c
    return out


def _measurement(constructs: Mapping[str, Sequence[str]]) -> list[str]:
    """Each factor with every loading free and its variance fixed at 1 (lavaan's std.lv)."""
    lines = []
    for c, items in constructs.items():
        lines.append(f"{c} =~ NA*{items[0]}" + "".join(f" + {i}" for i in items[1:]))
        lines.append(f"{c} ~~ 1*{c}")
    return lines


def _fixed_correlations(correlations: Mapping[tuple[str, str], float]) -> list[str]:
    return [f"{a} ~~ {_num(v)}*{b}" for (a, b), v in correlations.items()]


def marker_models(constructs: Mapping[str, Sequence[str]], marker_items: Sequence[str], *, marker: str = "MARKER",
                  marker_loadings: Mapping[str, float] | None = None,
                  marker_residuals: Mapping[str, float] | None = None,
                  correlations: Mapping[tuple[str, str], float] | None = None,
                  method_r_from: str = "method_u") -> dict[str, str]:
    r"""lavaan syntax of Williams, Hartman & Cavazotte's (2010) CFA marker technique.

    Every factor has variance 1 and free loadings (std.lv). With :math:`x` the substantive items,
    :math:`m` the marker items and :math:`M` the marker factor:

    - ``cfa``: the substantive factors and :math:`M` (measured by :math:`m` only), all correlated;
    - ``baseline``: :math:`M` orthogonal to the substantive factors, its loadings and its items'
      error variances fixed at their ``cfa`` estimates (``marker_loadings``, ``marker_residuals``);
    - ``method_c``: ``baseline`` + :math:`M` loads every substantive item with one equal loading
      (label ``mc``);
    - ``method_u``: ``baseline`` + :math:`M` loads every substantive item, loadings free;
    - ``method_r``: ``method_r_from`` (``"method_u"`` or ``"method_c"``, the method model
      retained) with the substantive factor correlations fixed at their ``baseline`` estimates
      (``correlations``, keyed by factor pairs).

    The models needing estimates (``baseline`` onwards) are left out while those are None.

    Returns
    -------
    dict
        model name -> lavaan syntax (``lavaan::cfa(syntax, data)`` fits it with lavaan's
        defaults).
    """
    cons = _check_constructs(constructs)
    m_items = list(marker_items)
    if not m_items or isinstance(marker_items, str):
        raise InputError(f"marker_items: need a list of the marker construct's items, got {marker_items!r}")
    overlap = [i for i in m_items if any(i in its for its in cons.values())]
    if overlap or marker in cons:
        raise InputError(f"marker: the marker construct {marker!r} and its items {overlap or m_items!r} must not "
                         "be part of the substantive model")
    if method_r_from not in ("method_u", "method_c"):
        raise InputError(f"method_r_from: 'method_u' or 'method_c', got {method_r_from!r}")
    sub_items = [i for its in cons.values() for i in its]
    models = {"cfa": "\n".join(_measurement({**cons, marker: m_items})) + "\n"}
    if marker_loadings is None or marker_residuals is None:
        return models
    fixed = " + ".join(f"{_num(marker_loadings[i])}*{i}" for i in m_items)
    common = _measurement(cons) + [f"{i} ~~ {_num(marker_residuals[i])}*{i}" for i in m_items] + \
        [f"{marker} ~~ 1*{marker}"] + [f"{marker} ~~ 0*{c}" for c in cons]
    method = {"baseline": f"{marker} =~ {fixed}",
              "method_c": f"{marker} =~ {fixed}" + "".join(f" + mc*{i}" for i in sub_items),
              "method_u": f"{marker} =~ {fixed}" + "".join(f" + {i}" for i in sub_items)}
    for name, line in method.items():
        models[name] = "\n".join(common[:2 * len(cons)] + [line] + common[2 * len(cons):]) + "\n"
    if correlations is not None:
        models["method_r"] = models[method_r_from] + "\n".join(_fixed_correlations(correlations)) + "\n"
    return models


def _fit(model: str, data: pd.DataFrame, missing: str, **kwargs) -> EngineFit:
    """:func:`fit_model` without standard errors and FIML's robust indices: the CMV models are
    read by their chi-squares and standardised estimates only (``se`` NaN)."""
    return fit_model(model, data, missing=missing, se=False, robust_indices=False, **kwargs)


def _loadings(p: pd.DataFrame, factor: str, items: Sequence[str]) -> pd.DataFrame:
    rows = p[(p["op"] == "=~") & (p["lhs"] == factor) & p["rhs"].isin(list(items))]
    return rows.set_index("rhs").loc[list(items)]


def _residuals(p: pd.DataFrame, items: Sequence[str]) -> dict[str, float]:
    rows = p[(p["op"] == "~~") & (p["lhs"] == p["rhs"]) & p["lhs"].isin(list(items))]
    return dict(zip(rows["lhs"], rows["est"].astype(float)))


def _factor_correlations(p: pd.DataFrame, factors: Sequence[str]) -> dict[tuple[str, str], float]:
    f = list(factors)
    rows = p[(p["op"] == "~~") & (p["lhs"] != p["rhs"]) & p["lhs"].isin(f) & p["rhs"].isin(f)]
    return {(r.lhs, r.rhs): float(r.est) for r in rows.itertuples()}


def _fit_row(name: str, fit: EngineFit) -> dict:
    f = fit.fit
    return {"model": name, "chisq": float(f["chisq"]), "df": int(f["df"]), "pvalue": float(f["pvalue"]),
            "cfi": float(f["cfi"]), "rmsea": float(f["rmsea"]), "converged": bool(fit.converged)}


@dataclass(frozen=True)
class MarkerResult:
    """The CFA marker technique (:func:`marker_technique`).

    ``models``: the lavaan syntax of each model; ``fits``: one row per model (``model, chisq,
    df, pvalue, cfi, rmsea, converged``); ``tests``: one row per comparison (``comparison,
    restricted, general, delta_chisq, delta_df, delta_pvalue, significant, decision``);
    ``method_loadings``: the retained method model's loadings of the substantive items on the
    marker factor (``item, est, std_all``); ``summary``: ``method_detected, equal_method_effects,
    retained, correlations_biased, method_variance_share, alpha``; ``marker_values``: the CFA's
    marker loadings and error variances that Baseline onwards fix (``item, loading, residual``)."""
    models: dict
    fits: pd.DataFrame
    tests: pd.DataFrame
    method_loadings: pd.DataFrame
    summary: dict
    marker_values: pd.DataFrame | None = None


def marker_technique(data: pd.DataFrame, constructs: Mapping[str, Sequence[str]], marker_items: Sequence[str], *,
                     marker: str = "MARKER", alpha: float = 0.05, missing: str = "listwise") -> MarkerResult:
    r"""The CFA marker technique of Williams, Hartman & Cavazotte (2010), its phase 1 and 2.

    The models of :func:`marker_models` are fitted in turn (ML; ``missing`` ``"listwise"`` or
    ``"fiml"``): ``cfa`` gives the marker's loadings and error variances, fixed in ``baseline``;
    ``baseline`` gives the substantive correlations, fixed in ``method_r``. The chi-square
    difference tests (:func:`analysis.structural.chisq_difference`) and their decisions, as the
    paper describes them:

    1. ``baseline`` vs ``method_c`` (1 df): significant means the marker factor's method
       variance is present in the substantive items (``method_detected``);
    2. ``method_c`` vs ``method_u``: significant means the method effects are unequal; the
       method model retained is ``method_u``, else ``method_c``;
    3. the retained model vs ``method_r`` (its substantive correlations fixed at the baseline's):
       significant means the method variance biases the substantive correlations
       (``correlations_biased``).

    ``method_variance_share`` is the mean over the substantive items of the squared
    standardised loading on the marker factor in the retained model (the share of an item's
    variance due to the method; Williams et al.'s phase 3 decomposes reliabilities the same
    way). It is reported whether or not the method effect is significant.

    Parameters
    ----------
    data : DataFrame
        The substantive and marker items.
    constructs : mapping
        Substantive factor -> its items (the measurement model; the marker excluded).
    marker_items : list of str
        The marker construct's items (theoretically unrelated to the substantive constructs).
    alpha : float
        Level of the difference tests.

    Returns
    -------
    MarkerResult

    Raises
    ------
    InputError
        Bad constructs, items or data, or a model that is not identified.

    Notes
    -----
    In R (lavaan 0.6): ``fit <- lapply(models, cfa, data = d)`` with ``models`` the strings of
    ``MarkerResult.models`` (the fixed values from the previous fits), in the order above,
    ``lavTestLRT(fit$baseline, fit$method_c)``, ``lavTestLRT(fit$method_c, fit$method_u)``,
    ``lavTestLRT(fit$method_r, fit$method_u)``; the share is
    ``mean(subset(standardizedSolution(fit$method_u), lhs == "MARKER" & rhs %in% items)$est.std^2)``.
    """
    if isinstance(alpha, bool) or not 0 < alpha < 1:
        raise InputError(f"alpha: need a level in (0, 1), got {alpha!r}")
    cons = _check_constructs(constructs)
    m_items = list(marker_items)
    sub_items = [i for its in cons.values() for i in its]
    models = marker_models(cons, m_items, marker=marker)
    fits = {"cfa": _fit(models["cfa"], data, missing)}
    p = fits["cfa"].parameters
    loadings = dict(zip(m_items, _loadings(p, marker, m_items)["est"].astype(float)))
    models = marker_models(cons, m_items, marker=marker, marker_loadings=loadings,
                           marker_residuals=_residuals(p, m_items))
    # each method model starts from the baseline's estimates (lavaan's own start, 0 for the new
    # loadings): the engine's default start can stop at a different, singular point
    fits["baseline"] = _fit(models["baseline"], data, missing, start=fits["cfa"].parameters,
                            sample=fits["cfa"].sample)
    for name in ("method_c", "method_u"):
        fits[name] = _fit(models[name], data, missing, start=fits["baseline"].parameters,
                               sample=fits["baseline"].sample)
    tests = []

    def test(restricted: str, general: str, what: str, yes: str, no: str) -> bool:
        d = chisq_difference(fits[restricted], fits[general])
        significant = bool(d["delta_pvalue"] < alpha)
        tests.append({"comparison": what, "restricted": restricted, "general": general,
                      "delta_chisq": d["delta_chisq"], "delta_df": d["delta_df"], "delta_pvalue": d["delta_pvalue"],
                      "significant": significant, "decision": yes if significant else no})
        return significant

    detected = test("baseline", "method_c", "method variance present (Baseline vs Method-C)",
                    "method variance in the substantive items", "no method variance detected")
    unequal = test("method_c", "method_u", "equal method effects (Method-C vs Method-U)",
                   "unequal method effects: Method-U retained", "equal method effects: Method-C retained")
    retained = "method_u" if unequal else "method_c"
    correlations = _factor_correlations(fits["baseline"].parameters, list(cons))
    models = marker_models(cons, m_items, marker=marker, marker_loadings=loadings,
                           marker_residuals=_residuals(p, m_items), correlations=correlations,
                           method_r_from=retained)
    fits["method_r"] = _fit(models["method_r"], data, missing, start=fits[retained].parameters,
                                 sample=fits["baseline"].sample)
    biased = test("method_r", retained, f"bias in the substantive correlations ({'Method-U' if unequal else 'Method-C'}"
                  " vs Method-R)", "the method effect biases the factor correlations",
                  "no bias in the factor correlations")
    ml = _loadings(fits[retained].parameters, marker, sub_items)
    method_loadings = pd.DataFrame({"item": sub_items, "est": ml["est"].to_numpy(float),
                                    "std_all": ml["std_all"].to_numpy(float)})
    summary = {"method_detected": detected, "equal_method_effects": not unequal, "retained": retained,
               "correlations_biased": biased, "alpha": float(alpha),
               "method_variance_share": float(np.mean(method_loadings["std_all"] ** 2))}
    residuals = _residuals(p, m_items)
    marker_values = pd.DataFrame({"item": m_items, "loading": [loadings[i] for i in m_items],
                                  "residual": [residuals[i] for i in m_items]})
    return MarkerResult(models=models, fits=pd.DataFrame([_fit_row(k, v) for k, v in fits.items()]),
                        tests=pd.DataFrame(tests), method_loadings=method_loadings, summary=summary,
                        marker_values=marker_values)


# --------------------------------------------------------------------------- method-adjusted paths

PATH_COLUMNS = ["lhs", "op", "rhs", "label", "est_unadjusted", "std_all_unadjusted", "est_adjusted",
                "std_all_adjusted", "std_all_difference"]


def _without(model: str, name: str) -> list[str]:
    """The statements of lavaan ``model`` (one per line or ``;``) that do not mention ``name``."""
    import re

    token = re.compile(rf"(?<![\w.]){re.escape(name)}(?![\w.])")
    out = []
    for line in model.splitlines():
        for code in line.split("#", 1)[0].split(";"):
            code = code.strip()
            if code and not token.search(code):
                out.append(code)
    return out


def method_adjusted_paths(data: pd.DataFrame, model: str, marker_result: MarkerResult, *, marker: str = "MARKER",
                          missing: str = "listwise") -> tuple[pd.DataFrame, dict]:
    r"""The structural model's paths with and without the marker's method effect held fixed
    (the CFA marker technique's structural step: Williams, Hartman & Cavazotte, 2010;
    Richardson, Simmering & Sturman, 2009).

    Two fits of the structural ``model`` (lavaan syntax; any statement mentioning ``marker`` is
    dropped, then the marker factor is added with its Baseline values):

    - *unadjusted*: the marker factor measured by its items only, orthogonal to every
      substantive latent, its loadings and error variances fixed at the CFA's
      (:attr:`MarkerResult.marker_values`): the structural model as it stands;
    - *adjusted*: the same, and the marker factor also loads every substantive item with the
      loading of the retained method model (Method-C or Method-U,
      :attr:`MarkerResult.method_loadings`), fixed: the substantive paths are estimated net of
      the method variance.

    A common-method effect inflates the covariances of every pair of items and so the paths;
    the adjusted paths take it out. ``std_all_difference`` = adjusted minus unadjusted.

    Parameters
    ----------
    data : DataFrame
    model : str
        The structural model in lavaan syntax (measurement part included), without the marker.
    marker_result : MarkerResult
        :func:`marker_technique` on the same data and missing-data method.

    Returns
    -------
    (DataFrame, dict)
        :data:`PATH_COLUMNS`, one row per regression path (``op`` ``~``); and the two fits'
        ``chisq`` and ``df`` (``unadjusted_chisq, unadjusted_df, adjusted_chisq, adjusted_df``).

    Notes
    -----
    In R: ``sem(paste(model, baseline_marker_lines), d)`` and ``sem(paste(model,
    adjusted_marker_lines), d)`` with the values fixed as :attr:`MarkerResult.models` writes them
    (``MARKER =~ l1*m1 + ... + mu1*x1 + ...``), ``standardizedSolution(fit)`` for ``~`` rows.
    """
    mv = marker_result.marker_values
    if mv is None or not len(mv):
        raise InputError("method_adjusted_paths: the marker result has no marker values (run marker_technique)")
    body = _without(model, marker)
    if not any("~" in line and "=~" not in line and "~~" not in line for line in body):
        raise InputError("method_adjusted_paths: the model has no regression (~) to adjust")
    fixed = [f"{_num(r.loading)}*{r.item}" for r in mv.itertuples()]
    tail = [f"{r.item} ~~ {_num(r.residual)}*{r.item}" for r in mv.itertuples()] + [f"{marker} ~~ 1*{marker}"]
    base = body + [f"{marker} =~ " + " + ".join(fixed)] + tail
    method = [f"{_num(r.est)}*{r.item}" for r in marker_result.method_loadings.itertuples()]
    adjusted = body + [f"{marker} =~ " + " + ".join(fixed + method)] + tail
    # the marker orthogonal to every substantive latent (lavaan's sem() would correlate it with
    # the exogenous ones)
    latents = list(dict.fromkeys(line.split("=~", 1)[0].strip() for line in body if "=~" in line))
    orth = [f"{marker} ~~ 0*{v}" for v in latents]
    unadj = _fit("\n".join(base + orth) + "\n", data, missing)
    adj = _fit("\n".join(adjusted + orth) + "\n", data, missing, start=unadj.parameters, sample=unadj.sample)

    def paths(fit):
        p = fit.parameters
        return p[p["op"] == "~"].set_index(["lhs", "op", "rhs"])

    a, b = paths(unadj), paths(adj)
    out = pd.DataFrame({"label": a["label"].fillna("") if "label" in a else "",
                        "est_unadjusted": a["est"].astype(float), "std_all_unadjusted": a["std_all"].astype(float),
                        "est_adjusted": b["est"].reindex(a.index).astype(float),
                        "std_all_adjusted": b["std_all"].reindex(a.index).astype(float)}).reset_index()
    out["std_all_difference"] = out["std_all_adjusted"] - out["std_all_unadjusted"]
    info = {"unadjusted_chisq": float(unadj.fit["chisq"]), "unadjusted_df": int(unadj.fit["df"]),
            "adjusted_chisq": float(adj.fit["chisq"]), "adjusted_df": int(adj.fit["df"]),
            "converged": bool(unadj.converged and adj.converged)}
    return out[PATH_COLUMNS], info


# --------------------------------------------------------------------------- unmeasured method factor


def unmeasured_method_models(constructs: Mapping[str, Sequence[str]],
                             correlations: Mapping[tuple[str, str], float] | None = None) -> dict[str, str]:
    r"""lavaan syntax of the unmeasured latent method construct (ULMC; Podsakoff et al., 2003).

    The substantive factors have variance 1 and free loadings (std.lv); the method factor
    ``METHOD`` loads every substantive item and is orthogonal to the substantive factors:

    - ``cfa``: the measurement model alone;
    - ``free``: ``METHOD`` with variance 1 and free loadings (the ULMC as usually specified);
    - ``equal``: every loading 1 and the variance of ``METHOD`` free, i.e. one equal loading
      (Williams et al.'s Method-C without a marker), written with lavaan's default scaling of the
      substantive factors (first loading 1, variances free): the same model as with std.lv, whose
      start the engine reaches in a few seconds where the std.lv form takes minutes;
    - ``fixed_correlations`` (with ``correlations``): ``free`` with the substantive factor
      correlations fixed at their ``cfa`` estimates (the idea of Williams et al.'s Method-R);
    - ``cfa_fixed`` (with ``correlations``): ``cfa`` with the same correlations fixed: the model
      ``fixed_correlations`` is tested against (its chi-square is the CFA's, on more df).
    """
    cons = _check_constructs(constructs)
    items = [i for its in cons.values() for i in its]
    meas = _measurement(cons)
    orth = [f"{METHOD} ~~ 0*{c}" for c in cons]
    free = meas + [f"{METHOD} =~ NA*{items[0]}" + "".join(f" + {i}" for i in items[1:]), f"{METHOD} ~~ 1*{METHOD}"]
    marker_scaled = [f"{c} =~ " + " + ".join(its) for c, its in cons.items()]
    models = {"cfa": "\n".join(meas) + "\n",
              "free": "\n".join(free + orth) + "\n",
              "equal": "\n".join(marker_scaled + [f"{METHOD} =~ " + " + ".join(f"1*{i}" for i in items)] + orth)
              + "\n"}
    if correlations is not None:
        fixed = _fixed_correlations(correlations)
        models["fixed_correlations"] = "\n".join(free + orth + fixed) + "\n"
        models["cfa_fixed"] = "\n".join(meas + fixed) + "\n"
    return models


def _short_identification(message: str) -> str:
    """The engine's "not identified" message with its list of parameters summarised: how many,
    of which kinds (factor variances, factor covariances, method loadings or variance)."""
    head, sep, rest = message.partition("not determined by the data: ")
    if not sep:
        return message
    names = [n.strip() for n in rest.split(";")[0].split(",") if n.strip()]
    kinds = {"factor variances": sum(1 for n in names if "~~" in n and n.split("~~")[0].strip() == n.split("~~")[1].strip()
                                     and not n.startswith(METHOD)),
             "factor covariances": sum(1 for n in names if "~~" in n and n.split("~~")[0].strip() != n.split("~~")[1].strip()),
             "method loadings": sum(1 for n in names if n.startswith(f"{METHOD} =~")),
             "method variance": sum(1 for n in names if n.replace(" ", "") == f"{METHOD}~~{METHOD}")}
    what = ", ".join(f"{v} {k}" for k, v in kinds.items() if v)
    return ("not identified at its solution (singular information matrix): the data do not determine "
            f"{len(names)} parameters ({what or ', '.join(names[:5])}); the method factor trades off against the "
            "substantive factors' (co)variances")


def _inadmissible(fit: EngineFit) -> list[str]:
    """Why a fit is not an admissible solution: not converged, a negative variance, a
    standardised loading beyond 1, a latent covariance matrix that is not positive definite."""
    p = fit.parameters
    reasons = [] if fit.converged else ["did not converge"]
    var = p[(p["op"] == "~~") & (p["lhs"] == p["rhs"]) & (p["est"] < 0)]
    reasons += [f"negative variance of {r.lhs} ({r.est:.3f})" for r in var.itertuples()]
    load = p[(p["op"] == "=~") & (p["std_all"].abs() > 1)]
    if len(load) > 2:  # one reason for many loadings: the count and the largest
        top = load.loc[load["std_all"].abs().idxmax()]
        reasons.append(f"{len(load)} standardised loadings beyond 1 (largest: {top['rhs']} on {top['lhs']}, "
                       f"{top['std_all']:.3f})")
    else:
        reasons += [f"standardised loading of {r.rhs} on {r.lhs} is {r.std_all:.3f}" for r in load.itertuples()]
    latents = list(dict.fromkeys(p.loc[p["op"] == "=~", "lhs"]))
    cov = pd.DataFrame(0.0, index=latents, columns=latents)
    rows = p[(p["op"] == "~~") & p["lhs"].isin(latents) & p["rhs"].isin(latents)]
    for r in rows.itertuples():
        cov.loc[r.lhs, r.rhs] = cov.loc[r.rhs, r.lhs] = float(r.est)
    values, vectors = np.linalg.eigh(cov.to_numpy())
    if values[0] < 0:
        # the latents that make up the direction of negative variance (|eigenvector| >= .2)
        v = vectors[:, 0]
        involved = [latents[k] for k in np.argsort(-np.abs(v)) if abs(v[k]) >= 0.2]
        reasons.append("the latent covariance matrix is not positive definite (smallest eigenvalue "
                       f"{values[0]:.3f}; its direction involves {', '.join(involved)})")
    return reasons


@dataclass(frozen=True)
class MethodFactorResult:
    """The unmeasured method factor (:func:`unmeasured_method_factor`).

    ``models``: the lavaan syntax of each model; ``table``: one row per method-factor variant
    (``variant, identified, admissible, reasons, chisq, df, compared_with, delta_chisq,
    delta_df, delta_pvalue, method_variance_share``); ``recommended``: the first admissible
    variant in the order free, fixed_correlations, equal (None if none is; ``equal`` last: when
    it is admissible its method factor can still hold the factors' common covariance); ``parameters``: each
    fitted variant's parameter table."""
    models: dict
    table: pd.DataFrame
    recommended: str | None
    parameters: dict


VARIANTS = ("free", "fixed_correlations", "equal")


def unmeasured_method_factor(data: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                             missing: str = "listwise", variants: Sequence[str] = VARIANTS) -> MethodFactorResult:
    r"""The unmeasured latent method factor in three variants, each flagged admissible or not.

    Fits the models of :func:`unmeasured_method_models` (ML, ``missing`` ``"listwise"`` or
    ``"fiml"``). A variant is admissible when it is identified at its solution (the engine's
    check of the information matrix), converged, and has no negative variance, no standardised
    loading beyond 1 and a positive definite latent covariance matrix; ``reasons`` says which
    parameters fail.

    Why the usual forms fail (the diagnosis the table gives on the default study): with the
    substantive factors freely correlated, a method factor loading every item competes with the
    factors' covariances. In ``equal`` (one loading), when each construct's loadings are close
    to proportional to the method loadings, adding :math:`c` to the method variance and
    subtracting it from every factor (co)variance leaves the implied covariance matrix almost
    unchanged, :math:`\Lambda(\Phi - cJ)\Lambda^\top + c\,\lambda_M\lambda_M^\top`: the data
    cannot separate them (the identification check names the factor variances and covariances
    and the method variance), and the optimum slides to negative factor variances, a latent
    covariance matrix that is not positive definite. In ``free`` without a real method effect
    the loadings sit at zero, where the method factor's sign and scale are not determined (a
    singular information matrix naming its loadings). Fixing the substantive correlations at
    the CFA's (``fixed_correlations``) removes the trade-off: the method factor can take only
    what the CFA left in the items' residual covariances, a model that is identified and
    admissible; it is tested against ``cfa_fixed`` (the CFA with the same correlations fixed).
    ``free`` and ``equal`` are tested against the CFA.

    ``method_variance_share``: the mean squared standardised method loading.

    ``variants``: which to fit (a subset of :data:`VARIANTS`, in that order). Every model is fitted
    without standard errors (only chi-squares and standardised estimates are read). Costs on the
    default study (72 items, 1,099 rows, listwise; a shared 2-core machine, so +-30%):
    ``fixed_correlations`` 10-15 CPU-s (about 75 optimiser iterations from the CFA's estimates),
    ``equal`` 12-18 CPU-s before the engine finds its information matrix singular (with FIML it
    is identified at its optimum and inadmissible instead: every factor variance negative, a
    latent covariance matrix that is not positive definite), ``free`` over 100 CPU-s.

    Returns
    -------
    MethodFactorResult

    Raises
    ------
    InputError
        Bad constructs or data, or a CFA that is not identified. A method-factor variant that is
        not identified is a result (``identified`` False), not an error.

    Notes
    -----
    In R: ``cfa(models$free, d)`` etc. (lavaan warns "some estimated lv variances are negative"
    or "could not compute standard errors" for an inadmissible variant);
    ``lavTestLRT(fit$cfa_fixed, fit$fixed_correlations)``.
    """
    cons = _check_constructs(constructs)
    chosen = [v for v in VARIANTS if v in variants]
    if isinstance(variants, str) or not chosen or len(chosen) != len(set(variants)):
        raise InputError(f"variants: a non-empty list from {', '.join(VARIANTS)}, got {variants!r}")
    models = unmeasured_method_models(cons)
    cfa = _fit(models["cfa"], data, missing)
    models = unmeasured_method_models(cons, _factor_correlations(cfa.parameters, list(cons)))
    cfa_fixed = _fit(models["cfa_fixed"], data, missing, start=cfa.parameters, sample=cfa.sample) \
        if "fixed_correlations" in chosen else None
    rows, parameters = [], {}
    for variant in chosen:
        reference = cfa_fixed if variant == "fixed_correlations" else cfa
        row = {"variant": variant, "identified": True, "admissible": False, "reasons": "", "chisq": np.nan,
               "df": np.nan, "compared_with": "cfa_fixed" if variant == "fixed_correlations" else "cfa",
               "delta_chisq": np.nan, "delta_df": np.nan, "delta_pvalue": np.nan, "method_variance_share": np.nan}
        try:
            # equal: the engine's own start for a method factor (a start from the std.lv CFA is on
            # another scale and takes minutes to leave)
            start = None if variant == "equal" else reference.parameters
            fit = _fit(models[variant], data, missing, start=start, sample=cfa.sample)
        except InputError as exc:
            if "not identified" not in str(exc):
                raise
            row.update(identified=False, reasons=_short_identification(str(exc)))
            rows.append(row)
            continue
        reasons = _inadmissible(fit)
        d = chisq_difference(reference, fit)
        p = fit.parameters
        load = p[(p["op"] == "=~") & (p["lhs"] == METHOD)]
        row.update(admissible=not reasons, reasons="; ".join(reasons), chisq=float(fit.fit["chisq"]),
                   df=int(fit.fit["df"]), delta_chisq=d["delta_chisq"], delta_df=d["delta_df"],
                   delta_pvalue=d["delta_pvalue"], method_variance_share=float(np.mean(load["std_all"] ** 2)))
        parameters[variant] = p
        rows.append(row)
    table = pd.DataFrame(rows)
    ok = table.loc[table["admissible"], "variant"]
    return MethodFactorResult(models=models, table=table, recommended=str(ok.iloc[0]) if len(ok) else None,
                              parameters=parameters)
