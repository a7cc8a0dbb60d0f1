r"""Measurement invariance across groups, and the comparison of structural paths across them.

The measurement model is fitted to every group at once (:func:`analysis.multigroup.fit_multigroup`)
up the usual ladder of nested models, each adding equality constraints across groups:

==============  ========================================  ================================
level           equal across groups                       lavaan ``group.equal``
==============  ========================================  ================================
configural      nothing (same pattern of loadings)        ``character(0)``
metric          loadings                                  ``"loadings"``
scalar          loadings, intercepts                      ``c("loadings", "intercepts")``
strict          loadings, intercepts, residual variances  ``c(..., "residuals")``
==============  ========================================  ================================

Each step is compared with the one before by the chi-square difference test
(:math:`\Delta\chi^2` on :math:`\Delta df`, ``lavTestLRT``) and by the change in CFI and RMSEA.
With ``criterion = "fit_indices"`` (default) a step holds when
:math:`\Delta CFI > -0.010` and :math:`\Delta RMSEA < 0.015` (Chen, 2007: a drop of .010 in
CFI together with a rise of .015 in RMSEA signals non-invariance of loadings; Cheung &
Rensvold, 2002: :math:`\Delta CFI \le -0.01`); ``"cfi"`` uses the CFI rule alone; ``"chisq"``
requires :math:`p(\Delta\chi^2) \ge \alpha`. The chi-square difference is always reported;
with many respondents it rejects trivial differences, which is why the fit-index rules exist.
The configural model holds when it fits acceptably (CFI >= ``configural_cfi`` and RMSEA <=
``configural_rmsea``; .90 and .08 by default, the "acceptable" bounds of Marsh, Hau & Wen,
2004). The level reached is the last step of an unbroken run that holds; the steps after a
failed one are still fitted and reported, with ``holds`` false.

Partial invariance (Byrne, Shavelson & Muthén, 1989) frees named parameters in every model
(``group_partial = ["x3 ~ 1", "visual =~ x2"]``, lavaan's ``group.partial``). Latent means are
compared when scalar invariance holds: in the scalar model the means of the reference group
are fixed at 0 and those of the other groups are differences from it (Sörbom, 1974), reported
with their standard errors, z and p.

A group too small to fit is left out and reported with its size: it needs more rows than the
model has observed variables (otherwise its covariance matrix is singular) and at least
``min_group_size`` rows; a group in which an item does not vary or is never answered cannot be
fitted either. Rows without a group value are reported the same way.

The structural comparison (:func:`structural_invariance`) fits a structural model (loadings
equal across groups - metric invariance is what comparing paths needs) with the regressions
free in every group and with them equal, tests the difference (:math:`\Delta\chi^2`), and tests
each path on its own by a Wald test of its equality across groups (G - 1 df, ``lavTestWald``)
in the model with free paths, with Holm-adjusted p values over the paths.

In R (semTools 0.5-6, lavaan 0.6)::

    configural <- cfa(model, data, group = "g")
    metric <- cfa(model, data, group = "g", group.equal = "loadings")
    scalar <- cfa(model, data, group = "g", group.equal = c("loadings", "intercepts"))
    lavTestLRT(configural, metric, scalar); semTools::compareFit(configural, metric, scalar)
    free <- sem(structural, data, group = "g", group.equal = "loadings")
    equal <- sem(structural, data, group = "g", group.equal = c("loadings", "regressions"))

References
----------
Byrne, B. M., Shavelson, R. J., & Muthén, B. (1989). Testing for the equivalence of factor
    covariance and mean structures: the issue of partial measurement invariance. Psychological
    Bulletin 105(3), 456-466.
Chen, F. F. (2007). Sensitivity of goodness of fit indexes to lack of measurement invariance.
    Structural Equation Modeling 14(3), 464-504.
Cheung, G. W., & Rensvold, R. B. (2002). Evaluating goodness-of-fit indexes for testing
    measurement invariance. Structural Equation Modeling 9(2), 233-255.
Marsh, H. W., Hau, K.-T., & Wen, Z. (2004). In search of golden rules. Structural Equation
    Modeling 11(3), 320-341.
Meredith, W. (1993). Measurement invariance, factor analysis and factorial invariance.
    Psychometrika 58(4), 525-543.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
    Journal of Statistics 6(2), 65-70.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.checks import numeric_columns
from analysis.csvfile import write_csv
from analysis.missing import em_moments
from analysis.multigroup import (
    MULTIGROUP_COLUMNS,
    MultiGroupFit,
    _lavaan_table,
    _parse_partial,
    fit_multigroup,
    lr_test,
    wald_equal,
)
from analysis.warnings import GapscaleWarning
from instrument.lavaan import LavaanModel, parse_model
from analysis.errors import InputError

__all__ = ["CRITERIA", "LEVELS", "Criteria", "GroupExcludedWarning", "InvarianceResult", "eligible_groups",
           "invariance", "measurement_invariance", "structural_invariance"]

LEVELS = ("configural", "metric", "scalar", "strict")
CONSTRAINTS = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts"),
               "strict": ("loadings", "intercepts", "residuals")}
CRITERIA = ("fit_indices", "cfi", "chisq")
FIT_COLUMNS = ["model", "chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea_ci_lower", "rmsea_ci_upper", "srmr",
               "aic", "bic", "rni", "srmr_bentler", "gfi", "agfi", "bic2", "ecvi", "delta_chisq", "delta_df", "delta_pvalue", "delta_cfi", "delta_rmsea", "delta_srmr",
               "holds"]
GROUP_COLUMNS = ["group", "n", "used", "reason"]
MEAN_COLUMNS = ["group", "reference", "latent", "est", "se", "z", "pvalue", "ci_lower", "ci_upper", "std_all"]
PATH_COLUMNS = ["lhs", "op", "rhs", "label", "group", "est", "se", "pvalue", "std_all", "wald_chisq", "wald_df",
                "wald_pvalue", "pvalue_holm", "differs"]


class GroupExcludedWarning(GapscaleWarning):
    """A group was left out of a multi-group analysis (too small, or an item without variance)."""


@dataclass(frozen=True)
class Criteria:
    """When a step of the invariance ladder holds (see the module docstring).

    ``criterion``: ``"fit_indices"`` (ΔCFI and ΔRMSEA), ``"cfi"`` or ``"chisq"``. A step fails
    when ΔCFI <= ``delta_cfi`` or (``fit_indices``) ΔRMSEA >= ``delta_rmsea``, or (``chisq``)
    p(Δχ²) < ``alpha``; ``alpha`` is also the level of the path tests.
    """

    criterion: str = "fit_indices"
    delta_cfi: float = -0.010
    delta_rmsea: float = 0.015
    alpha: float = 0.05
    configural_cfi: float = 0.90
    configural_rmsea: float = 0.08

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise InputError(f"criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        for name in ("delta_cfi", "delta_rmsea", "alpha", "configural_cfi", "configural_rmsea"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise InputError(f"{name} must be a number, got {value!r}")
        if not self.delta_cfi < 0:
            raise InputError(f"delta_cfi is the CFI drop that signals non-invariance, a negative number such as "
                             f"-0.010; got {self.delta_cfi!r}")
        if not self.delta_rmsea > 0:
            raise InputError(f"delta_rmsea must be > 0 (e.g. 0.015), got {self.delta_rmsea!r}")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not 0 < self.configural_cfi <= 1 or not 0 < self.configural_rmsea < 1:
            raise InputError(f"configural_cfi must be in (0, 1] and configural_rmsea in (0, 1), got "
                             f"{self.configural_cfi!r} and {self.configural_rmsea!r}")

    def step(self, delta: dict) -> tuple[bool, str]:
        """Whether a step with these differences holds, and why."""
        why = []
        if delta["delta_cfi"] <= self.delta_cfi:
            why.append(f"ΔCFI {delta['delta_cfi']:.4f} <= {self.delta_cfi:g}")
        if self.criterion == "fit_indices" and delta["delta_rmsea"] >= self.delta_rmsea:
            why.append(f"ΔRMSEA {delta['delta_rmsea']:.4f} >= {self.delta_rmsea:g}")
        if self.criterion == "chisq":
            why = []
            if delta["delta_pvalue"] < self.alpha:
                why.append(f"Δχ² {delta['delta_chisq']:.2f} on {delta['delta_df']} df, p {delta['delta_pvalue']:.3g} "
                           f"< {self.alpha:g}")
        return not why, "; ".join(why)

    def configural(self, fit: dict) -> tuple[bool, str]:
        why = []
        if fit["cfi"] < self.configural_cfi:
            why.append(f"CFI {fit['cfi']:.3f} < {self.configural_cfi:g}")
        if fit["rmsea"] > self.configural_rmsea:
            why.append(f"RMSEA {fit['rmsea']:.3f} > {self.configural_rmsea:g}")
        return not why, "; ".join(why)


@dataclass(frozen=True)
class InvarianceResult:
    """Everything the invariance analysis found.

    Attributes
    ----------
    fit : DataFrame
        One row per model of the ladder (:data:`FIT_COLUMNS`): lavaan's fit measures, the
        differences from the model before (``delta_*``), and ``holds``.
    groups : DataFrame
        ``group, n, used, reason``: every group (and rows without a group), its size, whether
        it was used, and why not.
    latent_means : DataFrame
        Latent mean differences from the reference group in the scalar model (empty unless
        scalar invariance holds).
    paths : DataFrame
        Per structural path and group: the estimate in the model with free paths, and the Wald
        test of its equality across groups (empty without a structural comparison).
    parameters : DataFrame
        Parameter estimates of the model at the level reached (``model`` column first), as
        lavaan's parameterEstimates with a ``group`` column.
    summary : dict
        Level reached, groups, the decision of each step, the structural comparison, warnings.
    """

    fit: pd.DataFrame
    groups: pd.DataFrame
    latent_means: pd.DataFrame
    paths: pd.DataFrame
    parameters: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def level(self) -> str:
        return self.summary["level"]

    def to_files(self, directory: str | Path) -> list[Path]:
        """Write the five tables as CSV into ``directory`` (created); returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in (("invariance_fit.csv", self.fit), ("invariance_groups.csv", self.groups),
                            ("invariance_latent_means.csv", self.latent_means),
                            ("invariance_paths.csv", self.paths), ("invariance_parameters.csv", self.parameters)):
            write_csv(table, directory / name)
            written.append(directory / name)
        return written


def _reraise(records) -> list[str]:
    """Warnings recorded while fitting: raised again (never silenced) and returned as lines
    ``Class: message`` for the summary."""
    lines = []
    for w in records:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, GapscaleWarning):
            lines.append(f"{w.category.__name__}: {w.message}")
    return lines


# --------------------------------------------------------------------------- groups


def _observed(model: LavaanModel, columns) -> list[str]:
    return list(_lavaan_table(model, list(columns)).observed)


def eligible_groups(data: pd.DataFrame, group: str, observed: list[str], missing: str = "listwise",
                    min_group_size: int = 100, reference_group=None) -> tuple[pd.DataFrame, list[str]]:
    """Which groups of ``data[group]`` can be fitted, in model order.

    A group is used when it has more rows than ``observed`` variables and at least
    ``min_group_size`` rows (complete cases for ``missing = "listwise"``, rows with an observed
    value for ``"fiml"``), every item varies and is answered in it, and its (EM) covariance
    matrix is not singular. The reference group (``reference_group``, default the largest used
    group) comes first, then the others in order of appearance.

    Returns
    -------
    (DataFrame, list of str)
        ``group, n, used, reason`` for every group (rows without a group value as group "",
        never used), and the used groups in order.

    Raises
    ------
    ValueError
        A missing group column, an unknown ``reference_group`` or one that cannot be used,
        fewer than two usable groups (the message lists every group's size and reason), or
        a bad ``min_group_size``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if group not in data.columns:
        raise InputError(f"group column {group!r} is not in the data; columns are {', '.join(map(str, data.columns))}")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 2:
        raise InputError(f"min_group_size must be a whole number >= 2, got {min_group_size!r}")
    if missing not in ("listwise", "fiml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    p = len(observed)
    x_all = numeric_columns(data, observed)
    labels = data[group].astype("string")
    rows = []
    if labels.isna().any():
        rows.append(dict(group="", n=int(labels.isna().sum()), used=False,
                         reason=f"no value in {group!r}"))
    usable = []
    for g in dict.fromkeys(labels.dropna()):
        x = x_all[(labels == g).fillna(False).to_numpy()].to_numpy(dtype=float)
        x = x[~np.isnan(x).any(axis=1)] if missing == "listwise" else x[~np.isnan(x).all(axis=1)]
        n = len(x)
        reason = ""
        if n <= p:
            reason = f"{n} rows for {p} observed variables (a group needs more rows than variables)"
        elif n < min_group_size:
            reason = f"fewer than min_group_size = {min_group_size} rows"
        else:
            for k, c in enumerate(observed):
                col = x[:, k][~np.isnan(x[:, k])]
                if len(col) == 0:
                    reason = f"{c} is never answered in this group"
                    break
                if np.all(col == col[0]):
                    reason = f"{c} does not vary in this group (every answer is {col[0]:g})"
                    break
        if not reason:
            try:
                if missing == "listwise":
                    s = np.cov(x, rowvar=False, bias=True)
                    w = np.linalg.eigvalsh(s / np.sqrt(np.outer(np.diag(s), np.diag(s))))
                    if w[0] <= 1e-10 * w[-1]:
                        raise ValueError("singular")
                else:
                    em_moments(pd.DataFrame(x, columns=observed), observed)
            except ValueError:
                reason = "its covariance matrix is singular (items linearly dependent in this group)"
        rows.append(dict(group=str(g), n=n, used=not reason, reason=reason))
        if not reason:
            usable.append((str(g), n))
    table = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    if len(usable) < 2:
        listing = "; ".join(f"{r['group'] or '(none)'}: n = {r['n']}" + (f" ({r['reason']})" if r["reason"] else "")
                            for r in rows)
        raise InputError(f"invariance across {group!r} needs at least two groups that can be fitted; "
                         f"groups: {listing}")
    names = [g for g, _ in usable]
    if reference_group is None:
        reference = max(usable, key=lambda t: t[1])[0]
    else:
        reference = str(reference_group)
        if reference not in names:
            known = ", ".join(names)
            raise InputError(f"reference group {reference!r} is not a usable group of {group!r} (usable: {known})")
    order = [reference] + [g for g in names if g != reference]
    return table, order


# --------------------------------------------------------------------------- the ladder


def _fit_row(name: str, fit: MultiGroupFit, delta: dict | None, holds: bool) -> dict:
    f = fit.fit
    row = {k: f.get(k, np.nan) for k in FIT_COLUMNS[1:18]}  # GFI is not available with FIML
    delta = delta or {}
    row.update({k: delta.get(k, np.nan) for k in ("delta_chisq", "delta_df", "delta_pvalue", "delta_cfi",
                                                   "delta_rmsea", "delta_srmr")})
    return {"model": name, **row, "holds": bool(holds)}


def _fit_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=FIT_COLUMNS)
    return table.astype({"df": "int64", "delta_df": "Int64"})


def _as_model(model) -> LavaanModel:
    return parse_model(model) if isinstance(model, str) else model


def measurement_invariance(data: pd.DataFrame, model, group: str, levels=LEVELS, group_partial=(),
                           missing: str = "listwise", min_group_size: int = 100, reference_group=None,
                           criteria: Criteria | None = None) -> InvarianceResult:
    """Fit the invariance ladder of ``model`` across the groups of ``data[group]``.

    Parameters
    ----------
    data : DataFrame
    model : str or LavaanModel
        The measurement model, lavaan syntax.
    group : str
        Grouping column.
    levels : sequence of str
        The steps to fit, in order, starting with ``"configural"`` (default all four).
    group_partial : sequence of str
        Parameters left free across groups in every model (partial invariance).
    missing : {"listwise", "fiml"}
    min_group_size : int
        Smallest group used (see :func:`eligible_groups`).
    reference_group : str, optional
        Reference group of the latent means (default: the largest group).
    criteria : Criteria, optional

    Returns
    -------
    InvarianceResult
        Without a structural comparison (``paths`` empty).

    Raises
    ------
    ValueError
        Bad ``levels``, a ``group_partial`` entry that is not a parameter of the model, fewer
        than two usable groups, and the input errors of :func:`analysis.multigroup.fit_multigroup`.
    """
    criteria = criteria or Criteria()
    levels = tuple(levels)
    if not levels or levels[0] != "configural" or any(lv not in LEVELS for lv in levels) \
            or list(levels) != sorted(levels, key=LEVELS.index) or len(set(levels)) != len(levels):
        raise ValueError(f"levels must start with 'configural' and follow the order {', '.join(LEVELS)}; "
                         f"got {list(levels)!r}")
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    group_partial = tuple(group_partial)
    for spec in group_partial:
        _parse_partial(spec)
    model = _as_model(model)
    observed = _observed(model, data.columns)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        groups_table, order = eligible_groups(data, group, observed, missing, min_group_size, reference_group)
        for r in groups_table[~groups_table["used"]].itertuples():
            message = (f"group {r.group!r} of {group!r} (n = {r.n}) left out: {r.reason}" if r.group
                       else f"{r.n} row(s) without a value in {group!r} left out")
            warnings.warn(message, GroupExcludedWarning, stacklevel=2)
        used = data[data[group].astype("string").isin(order).fillna(False).to_numpy()]
        fits: dict[str, MultiGroupFit] = {}
        rows, steps = [], {}
        previous, held = None, True
        for name in levels:
            fit = fit_multigroup(used, model, group, CONSTRAINTS[name], group_partial, missing, groups=order,
                                 se=False, start=previous)
            fits[name] = fit
            if previous is None:
                ok, why = criteria.configural(fit.fit)
                delta = None
            else:
                delta = lr_test(fit, previous)
                ok, why = criteria.step(delta)
            if not fit.converged:
                ok, why = False, "the model did not converge"
            held = held and ok
            steps[name] = {"holds": held, "passes": ok, "reason": why}
            rows.append(_fit_row(name, fit, delta, held))
            previous = fit
    notes += _reraise(records)
    level = "none"
    for name in levels:
        if steps[name]["holds"]:
            level = name
    accepted = level if level != "none" else "configural"
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        final = fit_multigroup(used, model, group, CONSTRAINTS[accepted], group_partial, missing, groups=order,
                               se=True, start=fits[accepted])
        scalar = None
        if level in ("scalar", "strict"):
            scalar = final if accepted == "scalar" else fit_multigroup(
                used, model, group, CONSTRAINTS["scalar"], group_partial, missing, groups=order, se=True,
                start=fits["scalar"])
    notes += _reraise(records)
    latent_means = _latent_means(scalar) if scalar is not None else pd.DataFrame(columns=MEAN_COLUMNS)
    parameters = final.parameters[MULTIGROUP_COLUMNS].copy()
    parameters.insert(0, "model", accepted)
    partial_used = [s for s in group_partial if _category_of(s, model, observed) in CONSTRAINTS.get(accepted, ())]
    summary = {
        "group": group, "missing": missing, "estimator": "ML", "reference_group": order[0],
        "groups_used": order, "n_groups_used": len(order),
        "n_used": {g: int(final.n[g]) for g in order},
        "groups_left_out": [{"group": r.group, "n": int(r.n), "reason": r.reason}
                            for r in groups_table[~groups_table["used"]].itertuples()],
        "level": level, "partial": list(group_partial), "partial_invariance": bool(partial_used),
        "criterion": criteria.criterion,
        "cutoffs": {"delta_cfi": criteria.delta_cfi, "delta_rmsea": criteria.delta_rmsea, "alpha": criteria.alpha,
                    "configural_cfi": criteria.configural_cfi, "configural_rmsea": criteria.configural_rmsea},
        "steps": steps, "latent_means_compared": scalar is not None,
        "converged": all(f.converged for f in fits.values()),
        "warnings": list(dict.fromkeys(notes)),
    }
    return InvarianceResult(fit=_fit_table(rows), groups=groups_table,
                            latent_means=latent_means, paths=pd.DataFrame(columns=PATH_COLUMNS),
                            parameters=parameters, summary=summary)


def _category_of(spec: str, model: LavaanModel, observed) -> str:
    lhs, op, rhs = _parse_partial(spec)
    if op == "=~":
        return "loadings"
    if op == "~1":
        return "intercepts" if lhs in observed else "means"
    if op == "~~" and lhs in observed:
        return "residuals" if lhs == rhs else "residual.covariances"
    return "regressions" if op == "~" else "lv"


def _latent_means(fit: MultiGroupFit) -> pd.DataFrame:
    p = fit.parameters
    latents = list(fit.table.latents)
    sel = p[(p["op"] == "~1") & p["lhs"].isin(latents) & (p["group"] != fit.groups[0]) & (p["free"] > 0)]
    out = pd.DataFrame({"group": sel["group"], "reference": fit.groups[0], "latent": sel["lhs"], "est": sel["est"],
                        "se": sel["se"], "z": sel["z"], "pvalue": sel["pvalue"], "ci_lower": sel["ci_lower"],
                        "ci_upper": sel["ci_upper"], "std_all": sel["std_all"]})
    return out.reset_index(drop=True)[MEAN_COLUMNS]


# --------------------------------------------------------------------------- structural paths


def structural_invariance(data: pd.DataFrame, model, group: str, groups, group_partial=(),
                          missing: str = "listwise", criteria: Criteria | None = None) -> dict:
    """Compare the structural paths of ``model`` across ``groups``: regressions free in every
    group versus equal, with loadings equal in both (and the loadings of ``group_partial``
    free). Labels in the model tie parameters within a group only (``labels="per_group"``),
    so that labelled paths are free across groups; ``:=`` lines are skipped.

    Returns
    -------
    dict
        ``fit`` (DataFrame: rows ``structural_free`` and ``structural_equal`` with the
        difference), ``paths`` (DataFrame, :data:`PATH_COLUMNS`), ``summary`` (dict),
        ``free`` and ``equal`` (the fits).

    Raises
    ------
    ValueError
        A model without regressions among latent variables, and the input errors of
        :func:`analysis.multigroup.fit_multigroup`.
    """
    criteria = criteria or Criteria()
    model = _as_model(model)
    if not model.by_op("~"):
        raise InputError("the structural model has no regressions (~) to compare across groups")
    loadings_partial = tuple(s for s in (group_partial or ()) if _parse_partial(s)[1] == "=~")
    free = fit_multigroup(data, model, group, ("loadings",), loadings_partial, missing, groups=groups,
                          labels="per_group", se=True)
    equal = fit_multigroup(data, model, group, ("loadings", "regressions"), loadings_partial, missing,
                           groups=groups, labels="per_group", se=False, start=free)
    delta = lr_test(equal, free)
    differ = delta["delta_pvalue"] < criteria.alpha
    fit = _fit_table([_fit_row("structural_free", free, None, True),
                      _fit_row("structural_equal", equal, delta, not differ)])
    p = free.parameters
    regs = p[p["op"] == "~"]
    tests = []
    for (lhs, rhs), rows in regs.groupby(["lhs", "rhs"], sort=False):
        w = wald_equal(free, lhs, "~", rhs)
        tests.append((lhs, rhs, w))
    pvals = np.array([w["pvalue"] for *_, w in tests])
    holm = _holm(pvals)
    out = []
    for (lhs, rhs, w), ph in zip(tests, holm):
        for r in regs[(regs["lhs"] == lhs) & (regs["rhs"] == rhs)].itertuples():
            out.append({"lhs": lhs, "op": "~", "rhs": rhs, "label": r.label, "group": r.group, "est": r.est,
                        "se": r.se, "pvalue": r.pvalue, "std_all": r.std_all, "wald_chisq": w["chisq"],
                        "wald_df": w["df"], "wald_pvalue": w["pvalue"], "pvalue_holm": ph,
                        "differs": bool(ph < criteria.alpha)})
    paths = pd.DataFrame(out, columns=PATH_COLUMNS)
    differing = [f"{lhs} ~ {rhs}" for (lhs, rhs, _), ph in zip(tests, holm) if ph < criteria.alpha]
    summary = {
        "groups": list(free.groups), "measurement": "loadings equal" + (
            f" (free: {', '.join(loadings_partial)})" if loadings_partial else ""),
        "delta_chisq": delta["delta_chisq"], "delta_df": delta["delta_df"], "delta_pvalue": delta["delta_pvalue"],
        "delta_cfi": delta["delta_cfi"], "delta_rmsea": delta["delta_rmsea"],
        "paths_differ": bool(differ), "n_paths": len(tests), "n_paths_differ": len(differing),
        "paths_differing": differing, "converged": bool(free.converged and equal.converged),
        "answer": ("the paths differ between groups" if differ else "no evidence that the paths differ between groups")
        + f" (Δχ² = {delta['delta_chisq']:.2f}, Δdf = {delta['delta_df']}, p = {delta['delta_pvalue']:.3g})"
        + (f"; on its own (Wald, Holm-adjusted p < {criteria.alpha:g}): {', '.join(differing)}" if differing else ""),
    }
    return {"fit": fit, "paths": paths, "summary": summary, "free": free, "equal": equal}


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p values (``p.adjust(p, "holm")`` in R)."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


# --------------------------------------------------------------------------- both


def invariance(data: pd.DataFrame, model, group: str, structural_model=None, levels=LEVELS, group_partial=(),
               missing: str = "listwise", min_group_size: int = 100, reference_group=None,
               criteria: Criteria | None = None) -> InvarianceResult:
    """The invariance ladder (:func:`measurement_invariance`) and, once metric invariance holds
    and a ``structural_model`` is given, the comparison of its paths across the same groups
    (:func:`structural_invariance`). Without metric invariance the paths are not compared
    (their scale would differ between groups) and the summary says so.

    Raises
    ------
    ValueError
        As :func:`measurement_invariance` and :func:`structural_invariance`.
    """
    criteria = criteria or Criteria()
    result = measurement_invariance(data, model, group, levels, group_partial, missing, min_group_size,
                                    reference_group, criteria)
    summary = dict(result.summary)
    paths = result.paths
    fit = result.fit
    if structural_model is None:
        summary["structural"] = {"compared": False, "reason": "no structural model given"}
    elif result.level not in ("metric", "scalar", "strict"):
        summary["structural"] = {"compared": False,
                                 "reason": f"metric invariance does not hold (level reached: {result.level}); "
                                           "paths are compared only between groups whose loadings are equal"}
    else:
        used = data[data[group].astype("string").isin(summary["groups_used"]).fillna(False).to_numpy()]
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always", GapscaleWarning)
            s = structural_invariance(used, structural_model, group, summary["groups_used"], group_partial, missing,
                                      criteria)
        notes = _reraise(records)
        summary["warnings"] = list(dict.fromkeys(summary["warnings"] + notes))
        summary["structural"] = {"compared": True, **s["summary"]}
        paths = s["paths"]
        summary["structural_fit"] = s["fit"].to_dict(orient="records")
    return InvarianceResult(fit=fit, groups=result.groups, latent_means=result.latent_means, paths=paths,
                            parameters=result.parameters, summary=summary)
