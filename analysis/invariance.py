r"""Measurement invariance across groups, and the comparison of structural paths across them.

The measurement model is fitted to every group at once by gapscale's SEM engine
(:func:`analysis.sem.engine.fit` on lavaan's parameter table, :func:`analysis.sem.partable.lavaanify`)
up the usual ladder of nested models, each adding equality constraints across groups. For
continuous items (estimators ML, MLR, MLM):

==============  ========================================  ================================
level           equal across groups                       lavaan ``group.equal``
==============  ========================================  ================================
configural      nothing (same pattern of loadings)        ``character(0)``
metric          loadings                                  ``"loadings"``
scalar          loadings, intercepts                      ``c("loadings", "intercepts")``
strict          loadings, intercepts, residual variances  ``c(..., "residuals")``
==============  ========================================  ================================

For ordered items (estimators WLSMV, ULSMV; delta parameterization) the ladder is semTools'
``measEq.syntax(ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016")`` (Wu & Estabrook, 2016):

==============  ===============================  ==============================================
level           equal across groups              identification in groups 2..G
==============  ===============================  ==============================================
configural      nothing                          latent means 0, variances 1, item intercepts 0,
                                                 scale factors 1 (every group)
thresholds      thresholds                       item intercepts and scale factors free
metric          thresholds, loadings             latent variances free too
scalar          thresholds, loadings, intercepts item intercepts 0 again, latent means free
==============  ===============================  ==============================================

(semTools refuses residual variances under the delta parameterization: no ``strict`` step for
ordered items; the ordinal ladder is identified by std.lv whatever ``std_lv`` says.)

Incomplete data: complete cases (``missing = "listwise"``), or with ML and MLR every case by
full-information ML (``"fiml"``, lavaan's ``missing = "ml"``; MLR then has lavaan's robust
Huber-White SEs and Yuan-Bentler test); MLM, WLSMV and ULSMV take complete cases, as lavaan.

Each step is compared with the one before by the chi-square difference test and by the
change in CFI and RMSEA. The difference test is ``lavTestLRT``'s default for the estimator:
ML the plain :math:`\Delta\chi^2`; MLR and MLM the Satorra-Bentler (2001) scaled difference
(:func:`analysis.sem.robust.scaled_difference`); WLSMV and ULSMV the scaled-and-shifted
difference of Satorra (2000) and Asparouhov & Muthén (2010)
(:func:`analysis.sem.wls.scaled_difference`). The fit indices of the decisions (ΔCFI, ΔRMSEA,
the configural CFI and RMSEA) are the ones semTools' ``compareFit`` summary shows
(``summary(compareFit(...))``): the robust ones (``cfi.robust``, ``rmsea.robust``; Brosseau-Liard &
Savalei, 2014; Savalei, 2018) when the estimator has them and they are defined for every model
of the ladder, else the scaled ones (``cfi.scaled``, ``rmsea.scaled``), else the standard ones
(ML). Which set was used is ``summary["indices"]`` (``"standard"``, ``"scaled"`` or ``"robust"``);
every set is in the fit table. lavaan leaves the robust indices of WLSMV fits with equal
thresholds undefined (NA), so the ordinal ladder is judged on the scaled ones.

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
(``group_partial = ["x3 ~ 1", "visual =~ x2", "A1 | t2", "x1 ~~ x1"]``, lavaan's
``group.partial``: any parameter, thresholds included). Latent means are compared when scalar
invariance holds: in the scalar model the means of the reference group are fixed at 0 and
those of the other groups are differences from it (Sörbom, 1974), reported with their standard
errors (robust ones with MLR/MLM/WLSMV), z and p.

A group too small to fit is left out and reported with its size: it needs more rows than the
model has observed variables (otherwise its covariance matrix is singular) and at least
``min_group_size`` rows; a group in which an item does not vary or is never answered cannot be
fitted either, nor (ordered items) one in which a category of an item is never chosen (lavaan
refuses empty categories). Rows without a group value are reported the same way.

The structural comparison (:func:`structural_invariance`) fits a structural model (loadings
equal across groups - metric invariance is what comparing paths needs; thresholds too for
ordered items) with the regressions free in every group and with them equal, tests the
difference (the estimator's :math:`\Delta\chi^2`), and tests each path on its own by a Wald test
of its equality across groups (G - 1 df, ``lavTestWald``, on the estimator's covariance of the
estimates) in the model with free paths, with Holm-adjusted p values over the paths.

In R (semTools 0.5-6, lavaan 0.6-14)::

    configural <- cfa(model, data, group = "g", estimator = "MLR")
    metric <- cfa(model, data, group = "g", estimator = "MLR", group.equal = "loadings")
    scalar <- cfa(model, data, group = "g", estimator = "MLR", group.equal = c("loadings", "intercepts"))
    lavTestLRT(configural, metric, scalar); summary(semTools::compareFit(configural, metric, scalar))
    # ordered items
    measEq.syntax(configural.model = model, data = d, ordered = items, parameterization = "delta",
                  ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016", group = "g",
                  group.equal = c("thresholds", "loadings"), return.fit = TRUE)
    free <- sem(structural, data, group = "g", group.equal = "loadings")
    equal <- sem(structural, data, group = "g", group.equal = c("loadings", "regressions"))

References
----------
Asparouhov, T., & Muthén, B. (2010). Simple second order chi-square correction. Mplus
    technical appendix.
Brosseau-Liard, P. E., & Savalei, V. (2014). Adjusting incremental fit indices for nonnormality.
    Multivariate Behavioral Research 49(5), 460-470.
Byrne, B. M., Shavelson, R. J., & Muthén, B. (1989). Testing for the equivalence of factor
    covariance and mean structures: the issue of partial measurement invariance. Psychological
    Bulletin 105(3), 456-466.
Chen, F. F. (2007). Sensitivity of goodness of fit indexes to lack of measurement invariance.
    Structural Equation Modeling 14(3), 464-504.
Cheung, G. W., & Rensvold, R. B. (2002). Evaluating goodness-of-fit indexes for testing
    measurement invariance. Structural Equation Modeling 9(2), 233-255.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
    Journal of Statistics 6(2), 65-70.
Marsh, H. W., Hau, K.-T., & Wen, Z. (2004). In search of golden rules. Structural Equation
    Modeling 11(3), 320-341.
Meredith, W. (1993). Measurement invariance, factor analysis and factorial invariance.
    Psychometrika 58(4), 525-543.
Satorra, A., & Bentler, P. M. (2001). A scaled difference chi-square test statistic for moment
    structure analysis. Psychometrika 66(4), 507-514.
Savalei, V. (2018). On the computation of the RMSEA and CFI from the mean-and-variance corrected
    test statistic with nonnormal data in SEM. Multivariate Behavioral Research 53(3), 419-429.
Wu, H., & Estabrook, R. (2016). Identification of confirmatory factor analysis models of different
    levels of invariance for ordered categorical outcomes. Psychometrika 81(4), 1014-1045.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.checks import numeric_columns
from analysis.csvfile import write_csv
from analysis.distributions import norm_cdf, norm_ppf, norm_sf
from analysis.errors import InputError
from analysis.missing import em_moments
from analysis.sem import robust as sem_robust
from analysis.sem import wls as sem_wls
from analysis.sem.engine import EngineFit
from analysis.sem.engine import fit as engine_fit
from analysis.sem.engine import with_standard_errors
from analysis.sem.api import categories
from analysis.sem.fit import chisq_pvalue
from analysis.sem.options import ESTIMATORS, ORDINAL, Estimation
from analysis.sem.partable import lavaanify, variable_names
from analysis.warnings import GapscaleWarning
from instrument.lavaan import LavaanModel, parse_model

__all__ = ["CRITERIA", "ESTIMATORS", "LEVELS", "ORDINAL_LEVELS", "Criteria", "GroupExcludedWarning",
           "InvarianceResult", "Specification", "difference_test", "eligible_groups", "fit_level", "holm",
           "invariance", "measurement_invariance", "structural_invariance", "wald_equal", "group_contrast",
           "group_contrasts", "CONTRAST_COLUMNS"]

LEVELS = ("configural", "metric", "scalar", "strict")
ORDINAL_LEVELS = ("configural", "thresholds", "metric", "scalar")
CONSTRAINTS = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts"),
               "strict": ("loadings", "intercepts", "residuals")}
ORDINAL_CONSTRAINTS = {"configural": (), "thresholds": ("thresholds",), "metric": ("thresholds", "loadings"),
                       "scalar": ("thresholds", "loadings", "intercepts")}
CRITERIA = ("fit_indices", "cfi", "chisq")
SCALED_COLUMNS = ["chisq_scaled", "df_scaled", "pvalue_scaled", "chisq_scaling_factor", "cfi_scaled", "tli_scaled",
                  "rmsea_scaled", "cfi_robust", "tli_robust", "rmsea_robust"]
FIT_COLUMNS = (["model", "chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea_ci_lower", "rmsea_ci_upper", "srmr",
                "aic", "bic", "rni", "srmr_bentler", "gfi", "agfi", "bic2", "ecvi"] + SCALED_COLUMNS
               + ["delta_chisq", "delta_df", "delta_pvalue", "delta_cfi", "delta_rmsea", "delta_srmr", "holds"])
GROUP_COLUMNS = ["group", "n", "used", "reason"]
PARAMETER_COLUMNS = ["lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper",
                     "std_all"]
MEAN_COLUMNS = ["group", "reference", "latent", "est", "se", "z", "pvalue", "ci_lower", "ci_upper", "std_all"]
PATH_COLUMNS = ["lhs", "op", "rhs", "label", "group", "est", "se", "pvalue", "std_all", "wald_chisq", "wald_df",
                "wald_pvalue", "pvalue_holm", "differs"]
INDEX_SUFFIX = {"standard": "", "scaled": "_scaled", "robust": "_robust"}
CONTRAST_COLUMNS = ["hypothesis", "parameter", "lhs", "op", "rhs", "direction", "groups", "than", "est", "se", "z",
                    "pvalue", "pvalue_holm", "ci_lower", "ci_upper", "supported", "note"]


class GroupExcludedWarning(GapscaleWarning):
    """A group was left out of a multi-group analysis (too small, or an item without variance)."""


@dataclass(frozen=True)
class Specification(Estimation):
    """How every model of the analysis is estimated: an
    :class:`~analysis.sem.options.Estimation` (estimator, missing-data method, ordered items,
    std.lv, checked there) with the ladder of its kind of items.

    ``missing`` is ``"listwise"`` or ``"fiml"`` (ML and MLR; lavaan's ``missing = "ml"``);
    ``ordered`` (with WLSMV/ULSMV; ``"all"`` or none given: every observed variable of the
    model); ``std_lv``: latent variances fixed at 1 instead of the first loadings (continuous
    items; the ordinal ladder is always identified so, as ``measEq.syntax``'s
    ``ID.fac = "std.lv"``).

    Raises
    ------
    InputError
        What :class:`~analysis.sem.options.Estimation` refuses, and ``missing = "pairwise"``.
    """

    def __post_init__(self):
        super().__post_init__()
        if self.missing == "pairwise":
            raise InputError("missing: 'pairwise' is not available for invariance; use listwise or fiml")

    @property
    def ladder(self) -> tuple[str, ...]:
        return ORDINAL_LEVELS if self.ordinal else LEVELS

    def constraints(self, level: str) -> tuple[str, ...]:
        return (ORDINAL_CONSTRAINTS if self.ordinal else CONSTRAINTS)[level]

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
        if not delta["delta_cfi"] > self.delta_cfi:
            why.append(f"ΔCFI {delta['delta_cfi']:.4f} <= {self.delta_cfi:g}")
        if self.criterion == "fit_indices" and not delta["delta_rmsea"] < self.delta_rmsea:
            why.append(f"ΔRMSEA {delta['delta_rmsea']:.4f} >= {self.delta_rmsea:g}")
        if self.criterion == "chisq":
            why = []
            if not delta["delta_pvalue"] >= self.alpha:
                why.append(f"Δχ² {delta['delta_chisq']:.2f} on {delta['delta_df']} df, p {delta['delta_pvalue']:.3g} "
                           f"< {self.alpha:g}")
        return not why, "; ".join(why)

    def configural(self, fit: dict, indices: str = "standard") -> tuple[bool, str]:
        """Whether the configural model fits acceptably, on the ``indices`` set (see the module
        docstring: ``"standard"``, ``"scaled"`` or ``"robust"``)."""
        s = INDEX_SUFFIX[indices]
        cfi, rmsea = fit.get("cfi" + s, np.nan), fit.get("rmsea" + s, np.nan)
        name = "" if indices == "standard" else f" ({indices})"
        why = []
        if not cfi >= self.configural_cfi:
            why.append(f"CFI{name} {cfi:.3f} < {self.configural_cfi:g}")
        if not rmsea <= self.configural_rmsea:
            why.append(f"RMSEA{name} {rmsea:.3f} > {self.configural_rmsea:g}")
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
    contrasts : DataFrame
        The directional group hypotheses on paths (:func:`group_contrasts`,
        :data:`CONTRAST_COLUMNS`; empty when none were given).
    """

    fit: pd.DataFrame
    groups: pd.DataFrame
    latent_means: pd.DataFrame
    paths: pd.DataFrame
    parameters: pd.DataFrame
    summary: dict = field(default_factory=dict)
    contrasts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONTRAST_COLUMNS))

    @property
    def level(self) -> str:
        return self.summary["level"]

    def to_files(self, directory: str | Path) -> list[Path]:
        """Write the six tables as CSV into ``directory`` (created); returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in (("invariance_fit.csv", self.fit), ("invariance_groups.csv", self.groups),
                            ("invariance_latent_means.csv", self.latent_means),
                            ("invariance_paths.csv", self.paths), ("invariance_parameters.csv", self.parameters),
                            ("invariance_contrasts.csv", self.contrasts)):
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
    """The observed variables of ``model`` in lavaan's order (``lavNames(fit, "ov")``)."""
    pt = lavaanify(model, list(columns))
    model_rows = ~pt["op"].isin(("==", "<", ">", ":="))
    pt = pt[model_rows]
    return list(variable_names(list(pt["lhs"]), list(pt["op"]), list(pt["rhs"]), list(pt["user"]),
                               list(pt["exo"]))["ov"])


def eligible_groups(data: pd.DataFrame, group: str, observed: list[str], missing: str = "listwise",
                    min_group_size: int = 100, reference_group=None,
                    ordered=()) -> tuple[pd.DataFrame, list[str]]:
    """Which groups of ``data[group]`` can be fitted, in model order.

    A group is used when it has more rows than ``observed`` variables and at least
    ``min_group_size`` rows (complete cases for ``missing = "listwise"``, rows with an observed
    value for ``"fiml"``), every item varies and is answered in it, and its (EM) covariance
    matrix is not singular; an ``ordered`` item must have every one of its categories (over all
    the rows with a group) chosen in the group (lavaan refuses empty categories). The reference group (``reference_group``, default the largest used
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
    ordered = [c for c in observed if c in set(ordered)]
    categories = {}
    if ordered:
        grouped = x_all[labels.notna().to_numpy()]
        grouped = grouped.dropna() if missing == "listwise" else grouped
        categories = {c: np.unique(grouped[c].dropna().to_numpy(dtype=float)) for c in ordered}
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
                if c in categories:
                    empty = np.setdiff1d(categories[c], col)
                    if len(empty):
                        reason = (f"{c}: category {', '.join(f'{v:g}' for v in empty)} never chosen in this group "
                                  "(ordered items need every category in every group)")
                        break
        if not reason and not ordered:
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


# --------------------------------------------------------------------------- one model of the ladder


_PARTIAL = re.compile(r"^\s*([A-Za-z.][A-Za-z0-9._]*)\s*(=~|~~|~|\|)\s*([A-Za-z.][A-Za-z0-9._]*|1)\s*$")


def _parse_partial(spec: str) -> tuple[str, str, str]:
    """``"x3 ~ 1"`` -> ``("x3", "~1", "")``; ``"visual =~ x2"``; ``"x1 ~~ x2"``; ``"A1 | t2"``."""
    if not isinstance(spec, str):
        raise TypeError(f"group_partial: expected strings such as 'x3 ~ 1' or 'visual =~ x2', got {spec!r}")
    m = _PARTIAL.match(spec)
    if m is None:
        raise InputError(f"group_partial: cannot read {spec!r}; write a parameter as lavaan does, "
                         "e.g. 'x3 ~ 1', 'visual =~ x2', 'x1 ~~ x1', 'textual ~ visual', 'A1 | t2'")
    lhs, op, rhs = m.groups()
    if op == "~" and rhs == "1":
        return lhs, "~1", ""
    if rhs == "1":
        raise InputError(f"group_partial: cannot read {spec!r}")
    return lhs, op, rhs


def _partial_labels(partial, model: LavaanModel, columns) -> tuple[str, ...]:
    """``group_partial`` entries as lavaan's parameter names (``"x3~1"``, ``"x1~~x2"`` in the order
    of the parameter table), for :func:`analysis.sem.partable.lavaanify`."""
    if not partial:
        return ()
    pt = lavaanify(model, list(columns), meanstructure=True)
    known = {(a, o, b) for a, o, b in zip(pt["lhs"], pt["op"], pt["rhs"])}
    out = []
    for spec in partial:
        lhs, op, rhs = _parse_partial(spec)
        if op == "~~" and (lhs, op, rhs) not in known and (rhs, op, lhs) in known:
            lhs, rhs = rhs, lhs
        if op != "|" and (lhs, op, rhs) not in known:  # thresholds: checked by lavaanify with the categories
            raise InputError(f"group_partial: {spec!r} is not a parameter of the model; write it as lavaan does, "
                             "e.g. 'visual =~ x2', 'x3 ~ 1' or 'A1 | t2'")
        out.append(f"{lhs}{op}{rhs}")
    return tuple(out)


def _ordinal_table(model: LavaanModel, columns, groups: list[str], equal: tuple, partial: tuple,
                   categories: dict, estimator: str) -> pd.DataFrame:
    """The parameter table of one step of the ordinal ladder, as ``measEq.syntax(ID.fac =
    "std.lv", ID.cat = "Wu.Estabrook.2016", parameterization = "delta")`` builds it: lavaan's
    table with ``group.equal`` (std.lv), then in groups 2..G the item intercepts and scale
    factors freed once the thresholds are equal (an item whose thresholds are all freed by
    ``partial`` keeps them fixed), the latent variances once the loadings are, and with equal
    intercepts the item intercepts fixed at 0 again (unless in ``partial``) and the latent
    means freed."""
    pt = lavaanify(model, list(columns), std_lv=True, groups=groups, group_equal=equal, group_partial=partial,
                   ordered=categories, estimator=estimator).copy()
    attrs = dict(pt.attrs)
    pt.attrs = {}
    lv = set(variable_names(list(pt["lhs"]), list(pt["op"]), list(pt["rhs"]))["lv"])
    partial = set(partial)
    later = (pt["group"] > 1).to_numpy()
    op, lhs, rhs = pt["op"].to_numpy(), pt["lhs"].to_numpy(), pt["rhs"].to_numpy()
    items = set(categories)
    free_rows = np.zeros(len(pt), dtype=bool)
    fix_rows = np.zeros(len(pt), dtype=bool)
    if "thresholds" in equal:
        all_free = {v for v in items if all(f"{v}|t{k}" in partial for k in range(1, categories[v]))}
        scale = later & (op == "~*~") & np.isin(lhs, list(items - all_free))
        intercept = later & (op == "~1") & np.isin(lhs, list(items - all_free))
        if "intercepts" in equal:
            intercept &= np.array([f"{a}~1" in partial for a in lhs])
        free_rows |= scale | intercept
    if "loadings" in equal:
        free_rows |= later & (op == "~~") & (lhs == rhs) & np.isin(lhs, list(lv))
    if "intercepts" in equal:
        free_rows |= later & (op == "~1") & np.isin(lhs, list(lv))
        fix_rows |= (op == "~1") & np.isin(lhs, list(items)) & ~free_rows
    else:  # lavaan's own group.equal frees them with equal thresholds; measEq does not
        fix_rows |= (op == "~1") & np.isin(lhs, list(lv))
    # the == rows lavaanify wrote for intercepts (fixed now, or freed by partial) are dropped
    eq_int = (op == "==") & np.isin(lhs, pt.loc[(pt["op"] == "~1") & pt["lhs"].isin(items), "plabel"].to_list())
    free = pt["free"].to_numpy().copy()
    free[free_rows & (free == 0)] = -1
    free[fix_rows] = 0
    ustart = pt["ustart"].to_numpy(dtype=float).copy()
    ustart[free == -1] = np.nan
    ustart[fix_rows] = 0.0
    pt["ustart"] = ustart
    counter = 0
    for k in range(len(free)):  # renumber 1..q in row order, as lavaan
        if free[k] != 0:
            counter += 1
            free[k] = counter
    pt["free"] = free
    pt = pt[~eq_int].reset_index(drop=True)
    pt["id"] = np.arange(1, len(pt) + 1)
    pt.attrs = attrs
    return pt


def fit_level(data: pd.DataFrame, model, group: str, groups: list[str], level: str, group_partial=(),
              spec: Specification | None = None, std_se: bool = False, equal: tuple | None = None,
              start: EngineFit | pd.DataFrame | None = None, se: bool = True) -> EngineFit:
    """One model of the ladder (``level``, or the categories ``equal`` of ``group.equal``) fitted by
    the engine to the rows of ``data`` in ``groups`` (in that order: lavaan's ``group.label``).

    ``start``: a fit of the same rows and groups (the rung before), or a parameter table (lhs, op,
    rhs, group number, est); its estimates start the optimiser, and a fit's sample moments (FIML:
    the EM moments per group) are reused when the observed variables are the same
    (:func:`analysis.sem.engine.fit`'s ``start`` and ``sample``). The estimates are those of a
    fit from the default start to the optimiser's tolerance. ``se = False``: no standard errors
    (ML; :func:`analysis.sem.engine.fit`), for a rung read only for its fit measures; they can be
    added afterwards by :func:`analysis.sem.engine.with_standard_errors`.

    In R: ``cfa(model, data, group = group, group.label = groups, estimator = ...,
    group.equal = ..., group.partial = ...)``, or ``measEq.syntax(...)`` for ordered items.

    Raises
    ------
    InputError
        As :func:`analysis.sem.engine.fit` (bad data, a model that is not identified, ...).
    """
    spec = spec or Specification()
    model = _as_model(model)
    equal = spec.constraints(level) if equal is None else tuple(equal)
    columns = list(data.columns)
    partial = _partial_labels(group_partial, model, columns)
    if spec.ordinal:
        pt = _ordinal_table(model, columns, groups, equal, partial, categories(data, spec.ordered), spec.estimator)
    else:
        pt = lavaanify(model, columns, std_lv=spec.std_lv, groups=groups, group_equal=equal, group_partial=partial,
                       estimator=spec.estimator, missing=spec.missing)
    data = data.assign(**{group: data[group].astype("string")})
    return engine_fit(pt, data, group=group, group_labels=list(groups), estimator=spec.estimator,
                      missing=spec.missing, ordered=list(spec.ordered) or None, std_se=std_se, se=se,
                      robust_indices=index_set_needs_robust(spec),
                      **({} if start is None else dict(start=start) if isinstance(start, pd.DataFrame)
                         else dict(start=start.parameters, sample=start.sample)))


def index_set_needs_robust(spec: Specification) -> bool:
    """Whether the rungs need robust indices: not with ML, whose steps are judged on the
    standard CFI/RMSEA (:func:`index_set`); lavaan's FIML-corrected robust indices of an ML fit
    (NaN in the fit table then) cost more than the rest of a large rung's fit."""
    return spec.estimator != "ML"


def index_set(fits, spec: Specification) -> str:
    """Which fit indices judge the steps, as ``summary(semTools::compareFit(...))`` chooses them:
    ``"robust"`` when every fit has ``cfi_robust`` (defined), else ``"scaled"`` when the estimator
    has a scaled test, else ``"standard"``."""
    fits = list(fits)
    if spec.estimator == "ML" or not all("cfi_scaled" in f.fit for f in fits):
        return "standard"
    if all(np.isfinite(f.fit.get("cfi_robust", np.nan)) for f in fits):
        return "robust"
    return "scaled"


def difference_test(restricted: EngineFit, general: EngineFit, spec: Specification,
                    indices: str = "standard") -> dict:
    """The chi-square difference test of two nested fits, ``lavTestLRT``'s default for the
    estimator (plain for ML, Satorra-Bentler 2001 for MLR/MLM, scaled-and-shifted for
    WLSMV/ULSMV), and the differences in CFI, RMSEA (of the ``indices`` set) and SRMR
    (restricted minus general).

    Returns
    -------
    dict
        ``delta_chisq, delta_df, delta_pvalue, delta_cfi, delta_rmsea, delta_srmr``.

    Raises
    ------
    InputError
        Fits on different data, or ``restricted`` without more degrees of freedom.

    In R: ``lavTestLRT(general, restricted)``.
    """
    fr, fg = restricted.fit, general.fit
    if fr["ntotal"] != fg["ntotal"]:
        raise InputError(f"the fits are on different data ({fr['ntotal']} and {fg['ntotal']} rows)")
    ddf = int(fr["df"] - fg["df"])
    if ddf <= 0:
        raise InputError(f"the restricted model must have more degrees of freedom ({fr['df']}) than the general "
                         f"one ({fg['df']})")
    if spec.estimator in ORDINAL:
        d = sem_wls.scaled_difference(general, restricted)
        dchi, pval = d["chisq_diff"], d["pvalue"]
    elif spec.estimator in ("MLR", "MLM"):
        d = sem_robust.scaled_difference(restricted, general)
        dchi, pval = d["chisq_diff"], d["pvalue"]
    else:
        dchi = fr["chisq"] - fg["chisq"]
        pval = chisq_pvalue(max(dchi, 0.0), ddf)
    s = INDEX_SUFFIX[indices]
    return {"delta_chisq": float(dchi), "delta_df": ddf, "delta_pvalue": float(pval),
            "delta_cfi": float(fr["cfi" + s] - fg["cfi" + s]), "delta_rmsea": float(fr["rmsea" + s] - fg["rmsea" + s]),
            "delta_srmr": float(fr["srmr"] - fg["srmr"])}


def _per_group_free(fit: EngineFit, lhs: str, op: str, rhs: str = "") -> pd.DataFrame:
    """The rows of one parameter in every group (``free``: its index in ``fit.x``, from 1),
    refused when it is fixed or equal in some groups."""
    p = fit.parameters
    sel = p[(p["lhs"] == lhs) & (p["op"] == op) & (p["rhs"] == rhs)]
    if op == "~~" and sel.empty:
        sel = p[(p["lhs"] == rhs) & (p["op"] == op) & (p["rhs"] == lhs)]
    if sel.empty:
        raise InputError(f"{lhs} {op} {rhs} is not a parameter of the model".replace("  ", " "))
    idx = sel["free"].to_numpy(dtype=int)
    if (idx == 0).any() or len(set(idx)) != len(idx):
        raise InputError(f"{lhs} {op} {rhs} is fixed or already equal in some groups; a test across groups "
                         "needs it free in every group")
    return sel


def wald_equal(fit: EngineFit, lhs: str, op: str, rhs: str = "") -> dict:
    r"""Wald test that one parameter is equal in every group:
    :math:`W = (C\hat\theta)^\top (C V C^\top)^{-1} C\hat\theta` on G - 1 df, with C the
    differences from group 1 and V the fit's covariance of the estimates (robust with
    MLR/MLM/WLSMV). In R: ``lavTestWald(fit, "b.g1 == b.g2")`` with per-group labels
    ``c(b.g1, b.g2)*x``.

    Raises
    ------
    InputError
        An unknown parameter, or one that is fixed or already equal in some groups.
    """
    idx = _per_group_free(fit, lhs, op, rhs)["free"].to_numpy(dtype=int)
    k = len(idx)
    c = np.zeros((k - 1, len(fit.x)))
    for j in range(1, k):
        c[j - 1, idx[j] - 1] = 1.0
        c[j - 1, idx[0] - 1] = -1.0
    diff = c @ fit.x
    stat = float(diff @ np.linalg.solve(c @ fit.vcov @ c.T, diff))
    return {"chisq": stat, "df": k - 1, "pvalue": chisq_pvalue(stat, k - 1)}


def group_contrast(fit: EngineFit, lhs: str, op: str, rhs: str, first, than, direction: str = "larger_in",
                   level: float = 0.95) -> dict:
    r"""One-sided test that a parameter is larger (or smaller) in the groups ``first`` than in
    the groups ``than``: the contrast of its mean over each set of groups, every group weighted
    equally (a relationship type counts once, whatever its size),

    .. math::

        d = \frac{1}{|F|}\sum_{g \in F} \hat\theta_g - \frac{1}{|T|}\sum_{h \in T} \hat\theta_h
          = c^\top \hat\theta, \qquad SE(d) = \sqrt{c^\top V c}, \qquad z = d / SE(d),

    with V the fit's covariance of the estimates (robust with MLR/MLM/WLSMV; the groups share the
    equal loadings, so their estimates are not independent), and the one-sided p value
    :math:`1 - \Phi(z)` for ``larger_in`` (:math:`\Phi(z)` for ``smaller_in``). The Wald
    statistic of :math:`d = 0` is :math:`z^2` on 1 df. ``ci_lower``/``ci_upper``: the two-sided
    Wald interval of d at ``level``.

    Returns
    -------
    dict
        ``est, se, z, pvalue, ci_lower, ci_upper``.

    Raises
    ------
    InputError
        An unknown parameter or group, a group on both sides, or a parameter fixed or equal in
        some groups.

    In R: per-group labels ``c(b.1, b.2, b.3, b.4)*x`` and ``d := (b.1 + b.3)/2 - (b.2 + b.4)/2``
    (``parameterEstimates``: est, se, z; one-sided ``pnorm(z, lower.tail = FALSE)``), or
    ``lavTestWald(fit, "(b.1 + b.3)/2 - (b.2 + b.4)/2 == 0")`` (:math:`z^2`).
    """
    if direction not in ("larger_in", "smaller_in"):
        raise InputError(f"direction: larger_in or smaller_in, got {direction!r}")
    sel = _per_group_free(fit, lhs, op, rhs)
    index = dict(zip(sel["group_label"].astype(str), sel["free"].to_numpy(dtype=int)))
    first, than = [str(g) for g in first], [str(g) for g in than]
    unknown = [g for g in first + than if g not in index]
    if unknown or not first or not than or set(first) & set(than):
        raise InputError(f"{lhs} {op} {rhs}: groups {first} against {than}: "
                         + (f"{unknown[0]!r} is not a group of the fit ({', '.join(index)})" if unknown else
                            "each side needs at least one group, and no group may be on both sides"))
    c = np.zeros(len(fit.x))
    for g in first:
        c[index[g] - 1] += 1.0 / len(first)
    for g in than:
        c[index[g] - 1] -= 1.0 / len(than)
    est = float(c @ fit.x)
    se = float(np.sqrt(c @ fit.vcov @ c))
    z = est / se if se > 0 else np.nan
    p = float(norm_sf(z) if direction == "larger_in" else norm_cdf(z))
    q = float(norm_ppf(0.5 + level / 2))
    return {"est": est, "se": se, "z": float(z), "pvalue": p, "ci_lower": est - q * se, "ci_upper": est + q * se}


def group_contrasts(fit: EngineFit | None, expectations, group: str, groups_used, all_groups, alpha: float = 0.05,
                    reason: str = "") -> pd.DataFrame:
    """The directional group hypotheses on paths (:func:`analysis.hypotheses.group_expectations`)
    tested by :func:`group_contrast` in ``fit`` (the multigroup model with free paths), with
    Holm's adjustment (:func:`holm`) over the tested contrasts of each hypothesis; a contrast is
    supported when its Holm-adjusted one-sided p is below ``alpha``. The interval is at level
    1 - ``alpha``.

    A contrast is not tested (``supported`` None, ``note`` why) when ``fit`` is None (``reason``:
    the paths were not compared), when it is about another grouping column than ``group``, or
    when a side keeps no group after the groups too small to fit were left out (those are left
    out of the means and named in ``note``).

    Returns
    -------
    DataFrame
        :data:`CONTRAST_COLUMNS`, one row per expectation.

    Raises
    ------
    InputError
        A group value that is not in the data (``all_groups``), named by hypothesis and path.
    """
    used = [str(g) for g in groups_used]
    every = {str(g) for g in all_groups}
    rows = []
    for e in expectations:
        row = {k: e[k] for k in ("hypothesis", "parameter", "lhs", "op", "rhs", "direction")}
        row.update(groups=", ".join(e["first"]), than=", ".join(e["than"]), est=np.nan, se=np.nan, z=np.nan,
                   pvalue=np.nan, pvalue_holm=np.nan, ci_lower=np.nan, ci_upper=np.nan, supported=None, note="")
        if e["column"] != group:
            rows.append({**row, "note": f"about groups of {e['column']}; the paths were compared across {group}"})
            continue
        absent = [g for g in e["first"] + e["than"] if g not in every]
        if absent:
            raise InputError(f"{e['hypothesis']}.groups.expect.{e['parameter']}: {absent[0]!r} is not a value of "
                             f"{group} in the data ({', '.join(sorted(every))})")
        if fit is None:
            rows.append({**row, "note": reason or "the paths were not compared across groups"})
            continue
        first = [g for g in e["first"] if g in used]
        than = [g for g in e["than"] if g in used]
        left = [g for g in e["first"] + e["than"] if g not in used]
        note = f"left out (too small to fit): {', '.join(left)}" if left else ""
        if not first or not than:
            rows.append({**row, "note": f"no group left on one side ({note})"})
            continue
        rows.append({**row, **group_contrast(fit, e["lhs"], e["op"], e["rhs"], first, than, e["direction"],
                                             1 - alpha), "note": note})
    table = pd.DataFrame(rows, columns=CONTRAST_COLUMNS)
    for _, part in table.groupby("hypothesis", sort=False):
        tested = part.index[part["pvalue"].notna()]
        if len(tested):
            adjusted = holm(table.loc[tested, "pvalue"])
            table.loc[tested, "pvalue_holm"] = adjusted
            table.loc[tested, "supported"] = pd.Series(adjusted < alpha, index=tested).astype(object)
    return table


# --------------------------------------------------------------------------- the ladder


def _fit_row(name: str, fit: EngineFit, delta: dict | None, holds: bool) -> dict:
    f = fit.fit
    row = {k: f.get(k, np.nan) for k in FIT_COLUMNS[1:-7]}  # GFI is not available with FIML
    delta = delta or {}
    row.update({k: delta.get(k, np.nan) for k in ("delta_chisq", "delta_df", "delta_pvalue", "delta_cfi",
                                                   "delta_rmsea", "delta_srmr")})
    return {"model": name, **row, "holds": bool(holds)}


def _fit_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=FIT_COLUMNS)
    return table.astype({"df": "int64", "delta_df": "Int64"})


def _as_model(model) -> LavaanModel:
    return parse_model(model) if isinstance(model, str) else model


def _parameters(fit: EngineFit) -> pd.DataFrame:
    p = fit.parameters
    out = p[[c for c in PARAMETER_COLUMNS if c != "group"]].copy()
    out.insert(3, "group", p["group_label"].where(p["group"] > 0, ""))
    return out.reset_index(drop=True)


def _all_ordered(spec: Specification, observed) -> Specification:
    """``ordered = "all"``: every observed variable of the model."""
    return replace(spec, ordered=tuple(observed)) if spec.ordered == ("all",) else spec


def _spec(spec, estimator, missing, ordered, std_lv) -> Specification:
    if spec is not None:
        return spec
    ordered = (ordered,) if isinstance(ordered, str) else tuple(ordered or ())
    return Specification(estimator=estimator, missing=missing, ordered=ordered, std_lv=std_lv)


def measurement_invariance(data: pd.DataFrame, model, group: str, levels=None, group_partial=(),
                           missing: str = "listwise", min_group_size: int = 100, reference_group=None,
                           criteria: Criteria | None = None, estimator: str = "ML", ordered=(),
                           std_lv: bool = False, spec: Specification | None = None) -> InvarianceResult:
    """Fit the invariance ladder of ``model`` across the groups of ``data[group]``.

    Parameters
    ----------
    data : DataFrame
    model : str or LavaanModel
        The measurement model, lavaan syntax.
    group : str
        Grouping column.
    levels : sequence of str, optional
        The steps to fit, in order, starting with ``"configural"`` (default the whole ladder:
        :data:`LEVELS`, or :data:`ORDINAL_LEVELS` for ordered items).
    group_partial : sequence of str
        Parameters left free across groups in every model (partial invariance).
    missing : {"listwise", "fiml"}
    min_group_size : int
        Smallest group used (see :func:`eligible_groups`).
    reference_group : str, optional
        Reference group of the latent means (default: the largest group).
    criteria : Criteria, optional
    estimator : {"ML", "MLR", "MLM", "WLSMV", "ULSMV"}
    ordered : sequence of str
        The ordered items (WLSMV/ULSMV).
    std_lv : bool
        lavaan's ``std.lv`` (continuous items).
    spec : Specification, optional
        ``estimator``, ``missing``, ``ordered`` and ``std_lv`` at once (they are ignored then).

    Returns
    -------
    InvarianceResult
        Without a structural comparison (``paths`` empty).

    Raises
    ------
    InputError
        Bad ``levels``, an impossible estimator/missing/ordered combination, a ``group_partial``
        entry that is not a parameter of the model, fewer than two usable groups, and the input
        errors of :func:`analysis.sem.engine.fit`.
    """
    criteria = criteria or Criteria()
    spec = _spec(spec, estimator, missing, ordered, std_lv)
    ladder = spec.ladder
    levels = ladder if levels is None else tuple(levels)
    if not levels or levels[0] != "configural" or any(lv not in ladder for lv in levels) \
            or list(levels) != sorted(levels, key=ladder.index) or len(set(levels)) != len(levels):
        raise InputError(f"levels must start with 'configural' and follow the order {', '.join(ladder)}"
                         + (" (ordered items)" if spec.ordinal else "") + f"; got {list(levels)!r}")
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    group_partial = tuple(group_partial)
    for s in group_partial:
        _parse_partial(s)
    model = _as_model(model)
    observed = _observed(model, data.columns)
    spec = _all_ordered(spec, observed)
    unknown = [c for c in spec.ordered if c not in observed]
    if unknown:
        raise InputError(f"ordered: {', '.join(unknown)} not observed variables of the model "
                         f"(its observed variables: {', '.join(observed)})")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        groups_table, order = eligible_groups(data, group, observed, spec.missing, min_group_size, reference_group,
                                              ordered=spec.ordered)
        for r in groups_table[~groups_table["used"]].itertuples():
            message = (f"group {r.group!r} of {group!r} (n = {r.n}) left out: {r.reason}" if r.group
                       else f"{r.n} row(s) without a value in {group!r} left out")
            warnings.warn(message, GroupExcludedWarning, stacklevel=2)
        used = data[data[group].astype("string").isin(order).fillna(False).to_numpy()]
        used = used[[c for c in dict.fromkeys(observed + [group])]]
        fits: dict[str, EngineFit] = {}
        for name in levels:  # each rung from the one before: its estimates and its (EM) moments; the
            # standard errors (ML: a FIML fit's observed information) only for the rungs reported, below
            fits[name] = fit_level(used, model, group, order, name, group_partial, spec,
                                   start=fits[levels[levels.index(name) - 1]] if fits else None, se=False)
    notes += _reraise(records)
    indices = index_set(fits.values(), spec)
    rows, steps = [], {}
    previous, held = None, True
    for name in levels:
        fit = fits[name]
        if previous is None:
            ok, why = criteria.configural(fit.fit, indices)
            delta = None
        else:
            delta = difference_test(fit, previous, spec, indices)
            ok, why = criteria.step(delta)
        if not fit.converged:
            ok, why = False, "the model did not converge"
        held = held and ok
        steps[name] = {"holds": held, "passes": ok, "reason": why}
        rows.append(_fit_row(name, fit, delta, held))
        previous = fit
    level = "none"
    for name in levels:
        if steps[name]["holds"]:
            level = name
    accepted = level if level != "none" else "configural"
    fits[accepted] = final = with_standard_errors(fits[accepted], std_se=False)
    scalar = with_standard_errors(fits["scalar"], std_se=False) if level in ("scalar", "strict") else None
    latent_means = _latent_means(scalar, order[0]) if scalar is not None else pd.DataFrame(columns=MEAN_COLUMNS)
    parameters = _parameters(final)
    parameters.insert(0, "model", accepted)
    partial_used = [s for s in group_partial if _category_of(s, model, observed) in spec.constraints(accepted)]
    summary = {
        "group": group, "missing": spec.missing, "estimator": spec.estimator, "ordered": list(spec.ordered),
        "std_lv": bool(spec.std_lv or spec.ordinal),
        "identification": ("measEq.syntax ID.fac = std.lv, ID.cat = Wu.Estabrook.2016 (delta parameterization)"
                           if spec.ordinal else ("std.lv" if spec.std_lv else "marker (first loading 1)")),
        "indices": indices, "difference_test": _test_name(spec), "reference_group": order[0],
        "groups_used": order, "n_groups_used": len(order),
        "n_used": {g: int(n) for g, n in zip(order, _group_sizes(final))},
        "groups_left_out": [{"group": r.group, "n": int(r.n), "reason": r.reason}
                            for r in groups_table[~groups_table["used"]].itertuples()],
        "levels": list(levels), "level": level, "partial": list(group_partial),
        "partial_invariance": bool(partial_used), "criterion": criteria.criterion,
        "cutoffs": {"delta_cfi": criteria.delta_cfi, "delta_rmsea": criteria.delta_rmsea, "alpha": criteria.alpha,
                    "configural_cfi": criteria.configural_cfi, "configural_rmsea": criteria.configural_rmsea},
        "steps": steps, "latent_means_compared": scalar is not None,
        "converged": all(f.converged for f in fits.values()),
        "warnings": list(dict.fromkeys(notes + [w for f in fits.values() for w in f.warnings])),
    }
    return InvarianceResult(fit=_fit_table(rows), groups=groups_table,
                            latent_means=latent_means, paths=pd.DataFrame(columns=PATH_COLUMNS),
                            parameters=parameters, summary=summary)


def _test_name(spec: Specification) -> str:
    if spec.estimator in ORDINAL:
        return "scaled-and-shifted difference (Satorra 2000; lavTestLRT default)"
    if spec.estimator in ("MLR", "MLM"):
        return "Satorra-Bentler (2001) scaled difference"
    return "likelihood ratio (chi-square difference)"


def _group_sizes(fit: EngineFit) -> list[int]:
    return [int(st.n) for st in fit.stats]


def _category_of(spec: str, model: LavaanModel, observed) -> str:
    lhs, op, rhs = _parse_partial(spec)
    if op == "=~":
        return "loadings"
    if op == "|":
        return "thresholds"
    if op == "~1":
        return "intercepts" if lhs in observed else "means"
    if op == "~~" and lhs in observed:
        return "residuals" if lhs == rhs else "residual.covariances"
    return "regressions" if op == "~" else "lv"


def _latent_means(fit: EngineFit, reference: str) -> pd.DataFrame:
    p = fit.parameters
    latents = set(variable_names(list(p["lhs"]), list(p["op"]), list(p["rhs"]))["lv"])
    sel = p[(p["op"] == "~1") & p["lhs"].isin(latents) & (p["group_label"] != reference) & (p["free"] > 0)]
    out = pd.DataFrame({"group": sel["group_label"], "reference": reference, "latent": sel["lhs"], "est": sel["est"],
                        "se": sel["se"], "z": sel["z"], "pvalue": sel["pvalue"], "ci_lower": sel["ci_lower"],
                        "ci_upper": sel["ci_upper"], "std_all": sel["std_all"]})
    return out.reset_index(drop=True)[MEAN_COLUMNS]


# --------------------------------------------------------------------------- structural paths


def _per_group(model: LavaanModel) -> LavaanModel:
    """The model with its labels dropped and without ``:=``/``==``/``<``/``>`` lines: labels in
    a multi-group lavaan model tie a parameter across groups, and the comparison needs each
    path free in every group."""
    kept = tuple(replace(s, label="", label_by_group=()) for s in model.statements
                 if s.op not in (":=", "==", "<", ">"))
    return LavaanModel(kept)


def structural_invariance(data: pd.DataFrame, model, group: str, groups, group_partial=(),
                          missing: str = "listwise", criteria: Criteria | None = None, estimator: str = "ML",
                          ordered=(), std_lv: bool = False, spec: Specification | None = None,
                          start: pd.DataFrame | None = None) -> dict:
    """Compare the structural paths of ``model`` across ``groups``: regressions free in every
    group versus equal, with loadings (and, for ordered items, thresholds) equal in both (the
    loadings of ``group_partial`` free). Labels in the model are dropped (each path is free in
    every group) and ``:=``/constraint lines skipped. ``start``: estimates of the measurement
    model (lhs, op, rhs, group number, est) that start the model with free paths, whose
    estimates start the one with equal paths (optimiser starts only: the same optimum).

    Returns
    -------
    dict
        ``fit`` (DataFrame: rows ``structural_free`` and ``structural_equal`` with the
        difference), ``paths`` (DataFrame, :data:`PATH_COLUMNS`), ``summary`` (dict),
        ``free`` and ``equal`` (the fits).

    Raises
    ------
    InputError
        A model without regressions, and the input errors of :func:`analysis.sem.engine.fit`.
    """
    criteria = criteria or Criteria()
    spec = _spec(spec, estimator, missing, ordered, std_lv)
    model = _as_model(model)
    if not model.by_op("~"):
        raise InputError("the structural model has no regressions (~) to compare across groups")
    model = _per_group(model)
    spec = _all_ordered(spec, _observed(model, data.columns))
    keep = ("=~", "|")
    partial = tuple(s for s in (group_partial or ()) if _parse_partial(s)[1] in keep)
    base = ("thresholds", "loadings") if spec.ordinal else ("loadings",)
    groups = list(groups)
    free = fit_level(data, model, group, groups, "", partial, spec, std_se=False, equal=base,
                     start=start)
    equal = fit_level(data, model, group, groups, "", partial, spec, std_se=False, equal=base + ("regressions",),
                      start=free)
    indices = index_set((free, equal), spec)
    delta = difference_test(equal, free, spec, indices)
    differ = not delta["delta_pvalue"] >= criteria.alpha
    fit = _fit_table([_fit_row("structural_free", free, None, True),
                      _fit_row("structural_equal", equal, delta, not differ)])
    p = free.parameters
    regs = p[p["op"] == "~"]
    tests = []
    for (lhs, rhs), _ in regs.groupby(["lhs", "rhs"], sort=False):
        tests.append((lhs, rhs, wald_equal(free, lhs, "~", rhs)))
    adjusted = holm([w["pvalue"] for *_, w in tests])
    out = []
    for (lhs, rhs, w), ph in zip(tests, adjusted):
        for r in regs[(regs["lhs"] == lhs) & (regs["rhs"] == rhs)].itertuples():
            out.append({"lhs": lhs, "op": "~", "rhs": rhs, "label": r.label, "group": r.group_label, "est": r.est,
                        "se": r.se, "pvalue": r.pvalue, "std_all": r.std_all, "wald_chisq": w["chisq"],
                        "wald_df": w["df"], "wald_pvalue": w["pvalue"], "pvalue_holm": ph,
                        "differs": bool(ph < criteria.alpha)})
    paths = pd.DataFrame(out, columns=PATH_COLUMNS)
    differing = [f"{lhs} ~ {rhs}" for (lhs, rhs, _), ph in zip(tests, adjusted) if ph < criteria.alpha]
    measurement = ("thresholds and loadings equal" if spec.ordinal else "loadings equal") + (
        f" (free: {', '.join(partial)})" if partial else "")
    summary = {
        "groups": groups, "measurement": measurement, "estimator": spec.estimator,
        "difference_test": _test_name(spec), "indices": indices,
        "delta_chisq": delta["delta_chisq"], "delta_df": delta["delta_df"], "delta_pvalue": delta["delta_pvalue"],
        "delta_cfi": delta["delta_cfi"], "delta_rmsea": delta["delta_rmsea"],
        "paths_differ": bool(differ), "n_paths": len(tests), "n_paths_differ": len(differing),
        "paths_differing": differing, "converged": bool(free.converged and equal.converged),
        "answer": ("the paths differ between groups" if differ else "no evidence that the paths differ between groups")
        + f" (Δχ² = {delta['delta_chisq']:.2f}, Δdf = {delta['delta_df']}, p = {delta['delta_pvalue']:.3g})"
        + (f"; on its own (Wald, Holm-adjusted p < {criteria.alpha:g}): {', '.join(differing)}" if differing else ""),
    }
    return {"fit": fit, "paths": paths, "summary": summary, "free": free, "equal": equal}


def holm(pvalues) -> np.ndarray:
    """Holm's (1979) step-down adjusted p values, as R's ``p.adjust(p, "holm")``.

    With the :math:`m` p values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`,

    .. math::

        \\tilde p_{(i)} = \\min\\Bigl(1, \\max_{j \\le i} (m - j + 1)\\, p_{(j)}\\Bigr),

    which controls the family-wise error rate without assuming independent tests: the products
    :math:`(m - j + 1)\\,p_{(j)}`, their running maximum and the cap, as R's ``p.adjust`` computes
    them (equal to it to 1e-15, ``tests/reference/p_adjust.R``; to statsmodels'
    ``multipletests(p, method="holm")``, which costs a second of imports per process, too).
    A NaN p value (a test that could not be computed) stays NaN
    and is not counted in :math:`m`, as R's ``p.adjust`` does with ``NA``.

    Parameters
    ----------
    pvalues : array-like of float

    Returns
    -------
    ndarray
        The adjusted p values in the order given.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
    Journal of Statistics, 6*(2), 65-70.

    Notes
    -----
    In R: ``p.adjust(p, method = "holm")``.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q = p[ok]
        m = len(q)
        order = np.argsort(q, kind="stable")
        stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
        out[np.flatnonzero(ok)[order]] = stepped
    return out


# --------------------------------------------------------------------------- both


def invariance(data: pd.DataFrame, model, group: str, structural_model=None, levels=None, group_partial=(),
               missing: str = "listwise", min_group_size: int = 100, reference_group=None,
               criteria: Criteria | None = None, estimator: str = "ML", ordered=(), std_lv: bool = False,
               spec: Specification | None = None, contrasts=()) -> InvarianceResult:
    """The invariance ladder (:func:`measurement_invariance`) and, once metric invariance holds
    and a ``structural_model`` is given, the comparison of its paths across the same groups
    (:func:`structural_invariance`), with the same estimator. Without metric invariance the
    paths are not compared (their scale would differ between groups) and the summary says so.
    ``contrasts``: directional group hypotheses on the paths
    (:func:`analysis.hypotheses.group_expectations`), tested in the model with free paths by
    :func:`group_contrasts` at ``criteria.alpha`` (``result.contrasts``; not tested, with the
    reason, when the paths are not compared).

    Raises
    ------
    InputError
        As :func:`measurement_invariance` and :func:`structural_invariance`.
    """
    criteria = criteria or Criteria()
    spec = _all_ordered(_spec(spec, estimator, missing, ordered, std_lv), _observed(_as_model(model), data.columns))
    result = measurement_invariance(data, model, group, levels, group_partial, min_group_size=min_group_size,
                                    reference_group=reference_group, criteria=criteria, spec=spec)
    summary = dict(result.summary)
    paths = result.paths
    free = None
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
            number = {g: k + 1 for k, g in enumerate(summary["groups_used"])}
            start = result.parameters.assign(group=result.parameters["group"].map(number).fillna(0).astype(int))
            s = structural_invariance(used, structural_model, group, summary["groups_used"], group_partial,
                                      criteria=criteria, spec=spec, start=start)
        notes = _reraise(records) + [w for f in (s["free"], s["equal"]) for w in f.warnings]
        summary["warnings"] = list(dict.fromkeys(summary["warnings"] + notes))
        summary["structural"] = {"compared": True, **s["summary"]}
        paths = s["paths"]
        summary["structural_fit"] = s["fit"].to_dict(orient="records")
        free = s["free"]
    tests = group_contrasts(free, contrasts, group, summary["groups_used"], result.groups["group"].dropna(),
                            criteria.alpha, summary["structural"].get("reason", ""))
    return InvarianceResult(fit=result.fit, groups=result.groups, latent_means=result.latent_means, paths=paths,
                            parameters=result.parameters, summary=summary, contrasts=tests)
