"""Simulate a survey study from a population model, with the defects real data has.

The population model is a recursive structural equation model on standardised latent
variables (every latent has variance 1):

.. math::

    \\eta = B\\eta + \\zeta, \\qquad \\Sigma_\\eta = (I - B)^{-1} \\Psi (I - B)^{-\\top},

where ``B`` holds the standardised structural paths (``params.yaml`` ``simulate.structural``,
outcome -> {predictor: coefficient}), exogenous latents correlate at
``exogenous_correlation`` (the pairs listed in ``exogenous_correlations`` at their own value) and
each endogenous residual variance :math:`\\psi_{jj}` is solved so that :math:`\\operatorname{diag}(\\Sigma_\\eta) = 1` (then :math:`R^2_j = 1 - \\psi_{jj}`).
Each item has a latent response :math:`y^* = \\lambda\\,\\eta_c + \\sqrt{1-\\lambda^2}\\,\\varepsilon`
with standardised loading :math:`\\lambda`; a Likert answer is the category that
:math:`y^*` falls into between thresholds :math:`\\tau` (the same cut points for every item,
shifted by a per-item amount), and a reverse-keyed item is written reversed
(``min + max - x``), as a respondent would have answered it.

In R the clean part of this is ``lavaan::simulateData(pop.model, ordered = TRUE)`` with the
thresholds given in the population model.

Defects are then added at the rates in ``simulate.defects``; respondent-level defects are given
to disjoint sets of respondents (exact counts: ``round(rate * n)``):

``straightliner``     the same raw answer to every item and attention check
``random_responder``  uniformly random answers to every item and attention check
``speeder``           completion time a fraction (``speeder_fraction``) of the median
``inattentive``       a wrong answer to one attention check, otherwise valid answers
``duplicate``         a second submission of a clean respondent (half with the same id,
                      half with a new id), identical answers, appended as extra rows
``missing_cell``      item cells left empty (share of all item cells)
``typo_cell``         item cells replaced by an out-of-range value such as 55 on a 1-7 scale

Group-specific populations (``simulate.groups``): the respondents of each value of a
categorical context question (``column``, such as ``relationship_type``) can be drawn from
their own population, to produce measurement non-invariance or structural differences on
purpose. Per value, ``loadings`` (item or construct: standardised loading), ``intercepts``
(item or construct: shift of the latent response, in its SDs - an intercept difference),
``structural`` (outcome: {predictor: path}, replacing those paths; the residual variances are
solved again so every latent keeps variance 1) and ``latent_means`` (latent: the mean of an
exogenous latent or the intercept of an endogenous one, whose mean then follows the paths).
Thresholds are the same in every group. Without overrides (the default) the study is drawn
exactly as before, byte for byte; with them, group membership is drawn first.

Control variables (``simulate.covariates``): an outcome latent may depend on observed covariates,
the numeric model columns of the instrument's coded context questions (``role_management``,
``org_size_code``, ``experience_years``; see :mod:`analysis.coding`), with standardised effects

.. math::

    \\eta = B\\eta + \\Gamma z + \\zeta, \\qquad
    \\Sigma_\\eta = (I - B)^{-1} (\\Psi + \\Gamma\\Gamma^\\top) (I - B)^{-\\top},

where :math:`z` is each covariate standardised by its population mean and SD (from the
distribution of its context answers in ``simulate.context``: :func:`covariate_moments`); the
covariates are independent of each other and of the exogenous latents, the residual variances are
solved as before so every latent keeps variance 1, and a fitted model's ``std_all`` of
``VCC ~ role_management`` estimates the effect in ``covariates``. The context answers are then
drawn before the latent scores (without covariates, where they always were).

Organisations (``simulate.organisations``, when the instrument has a ``cluster_column``): the
``n`` respondents are nested in ``count`` organisations whose sizes vary (a respondent joins
organisation j with probability proportional to w_j ~ LogNormal(0, size_sigma^2)), and the random
part of every latent score is sqrt(1 - icc) zeta_i + sqrt(icc) u_j with u_j drawn like zeta_i,
so the latent covariance is unchanged and each latent's intraclass correlation is ``icc`` before
the covariates are added. The export's cluster column holds organisation names. The organisations
and their effects are drawn from a stream of their own (``default_rng([seed, 1])``), so every other
draw is the one of the same study without them (with ``icc: 0`` the answers are identical).

Answers outside the scale (``simulate.outside``, by the instrument's option names): a rate per
option for every item that offers it, or per item, or per item by the value of a categorical
context question (``{CMIS_2: {relationship_type: {G2C: 0.5, ...}}}``: "Not applicable" where the
item does not apply). They replace answers of the respondents without a respondent-level careless
defect (straightliners and random responders answer every item), on cells neither missing nor
typos, not-applicable options before the others in the order of the instrument.

A planted common-method effect (``simulate.method_factor``, empty by default): one latent
method factor :math:`M \\sim N(0, 1)`, uncorrelated with every substantive latent, loads items with
standardised loadings :math:`m` (``default``, then per construct, then per item, as
``loadings``; a marker construct's items included unless set to 0), so
:math:`y^* = \\lambda\\,\\eta_c + m\\,M + \\sqrt{1-\\lambda^2-m^2}\\,\\varepsilon` and every item keeps
variance 1; two items then correlate :math:`m_i m_j` more than their constructs imply (Podsakoff et
al., 2003; the effect a marker construct detects, Williams, Hartman & Cavazotte, 2010). The truth
file records the method loadings (``population.method_loadings``) and the population model's
lavaan syntax gains ``METHOD``. Without it the study is drawn exactly as before.

Cell defects fall on the ``n`` original respondents before duplication, so a duplicate is an
exact copy. Everything is drawn from one :class:`numpy.random.Generator`: the same seed gives
the same bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from analysis.coding import coded_values
from instrument.schema import Instrument, Scale, dummy_column
from analysis.checks import check_known_keys
from analysis.errors import InputError

MAX_RESPONDENTS = 100_000  # simulate.n: a study far larger than any survey, and under 1 GB

__all__ = [
    "DEFECTS",
    "CELL_DEFECTS",
    "PopulationModel",
    "SimulationParams",
    "SimulatedStudy",
    "covariate_moments",
    "parse_simulation_params",
    "population_model",
    "simulate_study",
]

DEFECTS = ("straightliner", "random_responder", "speeder", "inattentive", "duplicate")
GROUP_KEYS = ("loadings", "intercepts", "structural", "latent_means")
CELL_DEFECTS = ("missing_cell", "typo_cell")
SIMULATED_COLUMN = "simulated"


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of a simulated study (``params.yaml``, section ``simulate``).

    ``loadings`` maps ``default``, construct ids or item ids to standardised loadings (item
    beats construct beats default). ``structural`` maps an outcome latent to
    ``{predictor: standardised path}``; a latent without items (a higher-order factor such as
    IM) must be listed in ``extra_latents``. ``exogenous_correlations`` maps an exogenous latent
    to ``{other exogenous latent: correlation}`` for pairs that differ from
    ``exogenous_correlation``. ``covariates`` maps an outcome latent to ``{model
    column of a coded context question: standardised effect}``. ``residual_correlations`` maps an endogenous latent
    to ``{other endogenous latent: correlation of their residuals}``. ``context`` maps a context
    question to ``{value: probability}`` (categorical) or ``{mean, sd}`` (numeric); unlisted
    questions are uniform. ``groups`` is ``{column: context question, values: {value: {loadings,
    intercepts, structural, latent_means}}}`` (see the module docstring); empty: one population.
    ``method_factor`` maps ``default``, construct ids or item ids to standardised loadings in
    [0, 1) on one common-method factor (see the module docstring); empty: no method effect.
    """

    n: int = 1000
    extra_latents: tuple = ()
    loadings: dict = field(default_factory=lambda: {"default": 0.75})
    structural: dict = field(default_factory=dict)
    exogenous_correlation: float = 0.2
    exogenous_correlations: dict = field(default_factory=dict)
    residual_correlations: dict = field(default_factory=dict)
    thresholds: tuple = (-2.0, -1.3, -0.6, 0.1, 0.8, 1.5)
    threshold_jitter: float = 0.15
    context: dict = field(default_factory=dict)
    duration_median_s: float = 720.0
    duration_sigma: float = 0.35
    speeder_fraction: tuple = (0.1, 0.3)
    defects: dict = field(default_factory=lambda: {
        "straightliner": 0.03, "random_responder": 0.03, "speeder": 0.03, "inattentive": 0.03,
        "duplicate": 0.02, "missing_cell": 0.02, "typo_cell": 0.002,
    })
    personal_data: bool = True
    groups: dict = field(default_factory=dict)
    covariates: dict = field(default_factory=dict)
    outside: dict = field(default_factory=dict)  # option name: rate | {item: rate | {context question: {value: rate}}}
    organisations: dict = field(default_factory=dict)  # {count, size_sigma, icc}; with the instrument's cluster_column
    method_factor: dict = field(default_factory=dict)


def parse_simulation_params(raw: dict | None) -> SimulationParams:
    """Build :class:`SimulationParams` from the ``simulate`` mapping of a params file.

    Raises
    ------
    ValueError
        Naming the key (``simulate.defects.speeder``) and the value at fault.
    """
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError(f"simulate: expected a mapping, got {type(raw).__name__}")
    check_known_keys(raw, sorted(SimulationParams.__dataclass_fields__), "simulate")
    p = SimulationParams(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()})

    if isinstance(p.n, bool) or not isinstance(p.n, int) or not 2 <= p.n <= MAX_RESPONDENTS:
        raise InputError(f"simulate.n: need a whole number of respondents from 2 to {MAX_RESPONDENTS}, got {p.n!r}")
    for key in ("extra_latents", "thresholds", "speeder_fraction"):
        if not isinstance(getattr(p, key), tuple) or len(getattr(p, key)) > 100:
            raise InputError(f"simulate.{key}: expected a list (at most 100 entries), got {getattr(p, key)!r}")
    if not all(isinstance(v, str) for v in p.extra_latents):
        raise InputError(f"simulate.extra_latents: expected a list of names, got {list(p.extra_latents)!r}")
    for key in ("loadings", "structural", "residual_correlations", "exogenous_correlations", "context", "defects",
                "covariates", "method_factor"):
        if not isinstance(getattr(p, key), dict):
            raise InputError(f"simulate.{key}: expected a mapping, got {getattr(p, key)!r}")
    for key, value in p.loadings.items():
        if not _is_number(value) or not 0 < abs(value) < 1:
            raise InputError(f"simulate.loadings.{key}: a standardised loading must be in (-1, 1) and not 0, got {value!r}")
    for key, value in p.method_factor.items():
        if not _is_number(value) or not 0 <= value < 1:
            raise InputError(f"simulate.method_factor.{key}: a standardised method loading must be in [0, 1), got {value!r}")
    for outcome, preds in p.structural.items():
        if not isinstance(preds, dict) or not preds:
            raise InputError(f"simulate.structural.{outcome}: expected {{predictor: path}}, got {preds!r}")
        for pred, b in preds.items():
            if not _is_number(b):
                raise InputError(f"simulate.structural.{outcome}.{pred}: expected a number, got {b!r}")
    for outcome, effects in p.covariates.items():
        if not isinstance(effects, dict) or not effects:
            raise InputError(f"simulate.covariates.{outcome}: expected {{model column: standardised effect}}, "
                             f"got {effects!r}")
        for column, g in effects.items():
            if not _is_number(g) or not -1 < g < 1:
                raise InputError(f"simulate.covariates.{outcome}.{column}: a standardised effect must be in (-1, 1), "
                                 f"got {g!r}")
    if not _is_number(p.exogenous_correlation) or not -1 < p.exogenous_correlation < 1:
        raise InputError(f"simulate.exogenous_correlation: must be in (-1, 1), got {p.exogenous_correlation!r}")
    for key in ("residual_correlations", "exogenous_correlations"):
        for a, others in getattr(p, key).items():
            if not isinstance(others, dict):
                raise InputError(f"simulate.{key}.{a}: expected {{latent: correlation}}, got {others!r}")
            for b, r in others.items():
                if not _is_number(r) or not -1 < r < 1:
                    raise InputError(f"simulate.{key}.{a}.{b}: must be in (-1, 1), got {r!r}")
    t = p.thresholds
    if not t or not all(_is_number(x) for x in t) or any(b <= a for a, b in zip(t, t[1:])):
        raise InputError(f"simulate.thresholds: need increasing numbers, got {list(t)!r}")
    for key in ("threshold_jitter", "duration_sigma"):
        if not _is_number(getattr(p, key)) or getattr(p, key) < 0:
            raise InputError(f"simulate.{key}: must be a number >= 0, got {getattr(p, key)!r}")
    if not _is_number(p.duration_median_s) or p.duration_median_s <= 0:
        raise InputError(f"simulate.duration_median_s: must be > 0, got {p.duration_median_s!r}")
    sf = p.speeder_fraction
    if len(sf) != 2 or not all(_is_number(x) for x in sf) or not 0 < sf[0] <= sf[1] < 1:
        raise InputError(f"simulate.speeder_fraction: need [low, high] with 0 < low <= high < 1, got {list(sf)!r}")
    for key in p.defects:
        if key not in DEFECTS + CELL_DEFECTS:
            raise InputError(f"simulate.defects.{key}: unknown defect; known: {', '.join(DEFECTS + CELL_DEFECTS)}")
    for key in DEFECTS + CELL_DEFECTS:
        rate = p.defects.get(key, 0.0)
        if not _is_number(rate) or not 0 <= rate < 1:
            raise InputError(f"simulate.defects.{key}: a rate must be in [0, 1), got {rate!r}")
    share = sum(p.defects.get(k, 0.0) for k in DEFECTS)
    if share >= 1:
        raise InputError(f"simulate.defects: respondent-level rates add up to {share:g}; they must leave clean respondents (< 1)")
    if p.defects.get("missing_cell", 0) + p.defects.get("typo_cell", 0) >= 1:
        raise InputError("simulate.defects: missing_cell + typo_cell must be < 1")
    if not isinstance(p.personal_data, bool):
        raise InputError(f"simulate.personal_data: expected true or false, got {p.personal_data!r}")
    _check_group_params(p.groups)
    _check_outside_params(p.outside)
    _check_organisation_params(p.organisations)
    return p


ORGANISATION_KEYS = ("count", "size_sigma", "icc")
ORGANISATION_STREAM = 1  # the organisations' draws come from default_rng([seed, 1]): every other draw is the same with or without them


def _check_outside_params(outside) -> None:
    """The shape of ``simulate.outside``; names and items are checked against the instrument in
    :func:`_outside_rates`."""
    if not isinstance(outside, dict):
        raise InputError(f"simulate.outside: expected {{option name: rate or {{item: rate}}}}, got {outside!r}")

    def rate(value, path):
        if not _is_number(value) or not 0 <= value < 1:
            raise InputError(f"{path}: a rate must be a number in [0, 1), got {value!r}")

    for name, spec in outside.items():
        if not isinstance(spec, dict):
            rate(spec, f"simulate.outside.{name}")
            continue
        for item, by in spec.items():
            if not isinstance(by, dict):
                rate(by, f"simulate.outside.{name}.{item}")
                continue
            if len(by) != 1 or not isinstance(next(iter(by.values())), dict):
                raise InputError(f"simulate.outside.{name}.{item}: expected a rate or {{context question: {{value: "
                                 f"rate}}}}, got {by!r}")
            (question, rates), = by.items()
            for value, r in rates.items():
                rate(r, f"simulate.outside.{name}.{item}.{question}.{value}")


def _check_organisation_params(org) -> None:
    if not isinstance(org, dict):
        raise InputError(f"simulate.organisations: expected {{count, size_sigma, icc}}, got {org!r}")
    check_known_keys(org, ORGANISATION_KEYS, "simulate.organisations")
    count = org.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RESPONDENTS):
        raise InputError(f"simulate.organisations.count: need a whole number of organisations from 1 to "
                         f"{MAX_RESPONDENTS}, got {count!r}")
    sigma = org.get("size_sigma", 0.0)
    if not _is_number(sigma) or not 0 <= sigma <= 5:
        raise InputError(f"simulate.organisations.size_sigma: the SD of log organisation size must be in [0, 5], "
                         f"got {sigma!r}")
    icc = org.get("icc", 0.0)
    if not _is_number(icc) or not 0 <= icc < 1:
        raise InputError(f"simulate.organisations.icc: an intraclass correlation must be in [0, 1), got {icc!r}")


def _nesting(instrument: Instrument, params: SimulationParams, rng: np.random.Generator, n: int, n_latents: int):
    """``(organisation of each respondent, u: organisations x latents standard normal, icc)``, or
    None when the instrument has no cluster column. Without ``simulate.organisations.count`` there
    are ``max(1, n // 10)`` organisations."""
    if not instrument.cluster_column:
        if params.organisations:
            raise InputError("simulate.organisations: the instrument has no cluster_column to hold the organisations; "
                             "add one (e.g. cluster_column: org_id) or remove simulate.organisations")
        return None
    org = params.organisations
    count = org.get("count") or max(1, n // 10)
    weights = np.exp(float(org.get("size_sigma", 0.0)) * rng.standard_normal(count))
    member = rng.choice(count, size=n, p=weights / weights.sum())
    u = rng.standard_normal((count, n_latents))
    return member, u, float(org.get("icc", 0.0))


def _nested(x: np.ndarray, nesting, chol: np.ndarray | None) -> np.ndarray:
    """Random latent parts ``x`` (n x latents; standard normal when ``chol`` is None, else with
    covariance ``chol chol'``) given intraclass correlation ``icc``: ``sqrt(1-icc) x + sqrt(icc) u[org]``."""
    member, u, icc = nesting
    b = u[member] if chol is None else u[member] @ chol.T
    return np.sqrt(1 - icc) * x + np.sqrt(icc) * b


def _organisation_names(member: np.ndarray, count: int) -> np.ndarray:
    """Synthetic organisation names (as a respondent or a panel would give them: identifying in
    real data, so the clean stage pseudonymises them)."""
    width = len(str(count))
    return np.array([f"Example Organisation {k + 1:0{width}d}" for k in range(count)], dtype=object)[member]


def _outside_rates(instrument: Instrument, params: SimulationParams, context: dict, n: int) -> list:
    """``[(item, option, rate per respondent)]`` from ``simulate.outside``, not-applicable-like options
    (those restricted to some items) first."""
    options = {o.name: o for o in instrument.outside_options}
    questions = {q.id: q for q in instrument.context}
    out = []
    for name, spec in params.outside.items():
        if name not in options:
            known = ", ".join(options) or "the instrument offers none (scale.outside)"
            raise InputError(f"simulate.outside.{name}: not an answer outside the scale of the instrument; options: {known}")
        offering = [i for i in instrument.items if any(o.name == name for o in i.outside)]
        per_item = spec if isinstance(spec, dict) else {i.id: spec for i in offering}
        for item_id, by in per_item.items():
            item = next((i for i in offering if i.id == item_id), None)
            if item is None:
                raise InputError(f"simulate.outside.{name}.{item_id}: not an item that offers {name!r} "
                                 f"({', '.join(i.id for i in offering)})")
            if isinstance(by, dict):
                (qid, rates), = by.items()
                q = questions.get(qid)
                if q is None or q.type != "categorical" or qid not in context:
                    raise InputError(f"simulate.outside.{name}.{item_id}.{qid}: not a categorical context question")
                bad = [v for v in rates if v not in q.values]
                if bad:
                    raise InputError(f"simulate.outside.{name}.{item_id}.{qid}.{bad[0]}: not a value of {qid!r} "
                                     f"({q.describe()})")
                answers = np.asarray(context[qid], dtype=object)
                rate = np.array([rates.get(v, 0.0) for v in answers], dtype=float)
            else:
                rate = np.full(n, float(by))
            out.append((item, options[name], rate))
    return sorted(out, key=lambda t: options[t[1].name].items is None)


def _answer_outside(answers: dict, rates: list, careless: np.ndarray, rng: np.random.Generator) -> dict:
    """Replace answers by outside-the-scale codes at ``rates``; returns ``{option name: count}``
    and adds them to ``answers`` in place. Careless respondents, missing cells and typos keep
    their values; a cell takes at most one option."""
    counts: dict = {}
    for item, option, rate in rates:
        x = answers[item.id]
        valid = ~np.isnan(x) & (x >= item.scale.min) & (x <= item.scale.max) & ~careless if item.scale.bounded \
            else ~np.isnan(x) & ~careless
        hit = valid & (rng.random(len(x)) < rate)
        x[hit] = option.code
        counts[option.name] = counts.get(option.name, 0) + int(hit.sum())
    return counts


def _check_group_params(groups) -> None:
    """The shape of ``simulate.groups`` (names are checked against the instrument later)."""
    if groups is None:
        return
    if not isinstance(groups, dict):
        raise InputError(f"simulate.groups: expected {{column, values}}, got {groups!r}")
    check_known_keys(groups, ("column", "values"), "simulate.groups")
    values = groups.get("values") or {}
    if not isinstance(values, dict):
        raise InputError(f"simulate.groups.values: expected {{value: overrides}}, got {values!r}")
    if values and not isinstance(groups.get("column"), str):
        raise InputError(f"simulate.groups.column: the context question that defines the groups, got "
                         f"{groups.get('column')!r}")
    for value, spec in values.items():
        where = f"simulate.groups.values.{value}"
        if not isinstance(spec, dict):
            raise InputError(f"{where}: expected a mapping of {', '.join(GROUP_KEYS)}, got {spec!r}")
        check_known_keys(spec, GROUP_KEYS, where)
        for key in ("loadings", "intercepts", "latent_means", "structural"):
            if not isinstance(spec.get(key, {}), dict):
                raise InputError(f"{where}.{key}: expected a mapping, got {spec[key]!r}")
        for name, lam in spec.get("loadings", {}).items():
            if not _is_number(lam) or not 0 < abs(lam) < 1:
                raise InputError(f"{where}.loadings.{name}: a standardised loading must be in (-1, 1) and not 0, "
                                 f"got {lam!r}")
        for key in ("intercepts", "latent_means"):
            for name, x in spec.get(key, {}).items():
                if not _is_number(x):
                    raise InputError(f"{where}.{key}.{name}: expected a number, got {x!r}")
        for outcome, preds in spec.get("structural", {}).items():
            if not isinstance(preds, dict) or not preds:
                raise InputError(f"{where}.structural.{outcome}: expected {{predictor: path}}, got {preds!r}")
            for pred, b in preds.items():
                if not _is_number(b):
                    raise InputError(f"{where}.structural.{outcome}.{pred}: expected a number, got {b!r}")


# --------------------------------------------------------------------------- population


@dataclass(frozen=True)
class PopulationModel:
    """Standardised population model.

    Attributes
    ----------
    beta : DataFrame
        Structural paths, rows = outcomes, columns = predictors (latents x latents).
    psi : DataFrame
        Covariance matrix of the structural residuals (exogenous latents: their covariance).
    loadings : Series
        Standardised loading of each item on its construct (construct direction).
    thresholds : DataFrame
        Likert items x cut points (standard-normal scale, before reverse-keying).
    gamma : DataFrame or None
        Standardised effects of the observed covariates (``simulate.covariates``), latents x
        covariate columns; None without covariates.
    covariates : DataFrame or None
        Population ``mean`` and ``sd`` of each covariate column (rows), as
        :func:`covariate_moments` gives them.
    method_loadings : Series or None
        Standardised loading of each item on the common-method factor (``simulate.method_factor``);
        None without one.
    """

    beta: pd.DataFrame
    psi: pd.DataFrame
    loadings: pd.Series
    construct_of: pd.Series
    thresholds: pd.DataFrame
    gamma: pd.DataFrame | None = None
    covariates: pd.DataFrame | None = None
    method_loadings: pd.Series | None = None

    @property
    def latents(self) -> tuple[str, ...]:
        return tuple(self.beta.index)

    @property
    def exogenous(self) -> tuple[str, ...]:
        return tuple(v for v in self.latents if not (self.beta.loc[v] != 0).any()
                     and not (self.gamma is not None and (self.gamma.loc[v] != 0).any()))

    def latent_covariance(self) -> pd.DataFrame:
        """:math:`(I-B)^{-1}(\\Psi + \\Gamma\\Gamma^\\top)(I-B)^{-\\top}`; with standardised parameters a
        correlation matrix."""
        a = np.linalg.inv(np.eye(len(self.latents)) - self.beta.to_numpy())
        cov = a @ self._zeta_and_covariates() @ a.T
        return pd.DataFrame(cov, index=self.beta.index, columns=self.beta.index)

    def residual_covariance(self) -> np.ndarray:
        """:math:`(I-B)^{-1}\\Psi(I-B)^{-\\top}`: the latent covariance that is not the covariates'."""
        a = np.linalg.inv(np.eye(len(self.latents)) - self.beta.to_numpy())
        return a @ self.psi.to_numpy() @ a.T

    def covariate_paths(self) -> np.ndarray:
        """:math:`(I-B)^{-1}\\Gamma`, latents x covariates: the latent scores are this times the
        standardised covariates plus the residual part."""
        a = np.linalg.inv(np.eye(len(self.latents)) - self.beta.to_numpy())
        return a @ self.gamma.to_numpy() if self.gamma is not None else np.zeros((len(self.latents), 0))

    def _zeta_and_covariates(self) -> np.ndarray:
        g = self.gamma.to_numpy() if self.gamma is not None else np.zeros((len(self.latents), 0))
        return self.psi.to_numpy() + g @ g.T

    def to_lavaan(self) -> str:
        """The population model in lavaan syntax with every value fixed.

        Latent-response scale: item residual variances are ``1 - lambda^2``, so every item and
        latent has variance 1. In R, ``lavaan(model, sample.cov = ..., do.fit = FALSE)`` gives
        the implied covariances (``lavInspect(fit, "cov.lv")``) and ``lavaan::simulateData(model)``
        draws continuous data from it.
        """
        num = lambda x: repr(float(x))  # noqa: E731  (shortest text that round-trips the double)
        lines = ["# gapscale population model (standardised; all values fixed)"]
        for latent in dict.fromkeys(self.construct_of):
            items = self.construct_of.index[self.construct_of == latent]
            lines.append(f"{latent} =~ " + " + ".join(f"{num(self.loadings[i])}*{i}" for i in items))
        # A latent without items is defined in lavaan as a higher-order factor: its paths to
        # latents it alone predicts are written as loadings (the same parameter), other paths
        # as regressions; if it predicts nothing alone, all its paths are loadings.
        as_loading = set()
        for extra in (v for v in self.latents if v not in set(self.construct_of)):
            out = self.beta[extra][self.beta[extra] != 0]
            alone = [o for o in out.index if (self.beta.loc[o] != 0).sum() == 1] or list(out.index)
            if alone:
                lines.append(f"{extra} =~ " + " + ".join(f"{num(out[o])}*{o}" for o in alone))
            as_loading |= {(o, extra) for o in alone}
        for outcome in self.latents:
            preds = self.beta.loc[outcome]
            preds = preds[(preds != 0) & np.array([(outcome, p) not in as_loading for p in preds.index])]
            # covariates in their own units: the standardised effect over the covariate's SD
            terms = [f"{num(b)}*{p}" for p, b in preds.items()]
            if self.gamma is not None:
                terms += [f"{num(g / self.covariates.at[c, 'sd'])}*{c}" for c, g in self.gamma.loc[outcome].items()
                          if g != 0]
            if terms:
                lines.append(f"{outcome} ~ " + " + ".join(terms))
        latents = list(self.latents)
        for a, la in enumerate(latents):
            for lb in latents[a:]:
                v = self.psi.at[la, lb]
                if v != 0 or la == lb:
                    lines.append(f"{la} ~~ {num(v)}*{lb}")
        method = self.method_loadings if self.method_loadings is not None else pd.Series(0.0, index=self.loadings.index)
        if self.method_loadings is not None:
            lines.append("METHOD =~ " + " + ".join(f"{num(m)}*{i}" for i, m in method.items()))
            lines.append("METHOD ~~ 1.0*METHOD")
            lines += [f"METHOD ~~ 0.0*{v}" for v in latents]
        for i, lam in self.loadings.items():
            lines.append(f"{i} ~~ {num(1 - lam**2 - method[i]**2)}*{i}")
        if self.covariates is not None:
            for c, row in self.covariates.iterrows():
                lines.append(f"{c} ~~ {num(row['sd'] ** 2)}*{c}")
        return "\n".join(lines) + "\n"

    def r_squared(self) -> pd.Series:
        """Share of each endogenous latent's variance explained by its predictors."""
        endo = [v for v in self.latents if v not in self.exogenous]
        var = np.diag(self.latent_covariance().loc[endo, endo].to_numpy())
        return pd.Series(1 - np.diag(self.psi.loc[endo, endo].to_numpy()) / var, index=endo)


def population_model(instrument: Instrument, params: SimulationParams, rng: np.random.Generator | None,
                     thresholds: pd.DataFrame | None = None) -> PopulationModel:
    """Build the standardised population model for ``instrument`` from ``params``.

    ``rng`` draws the per-item threshold shifts (``threshold_jitter``; ``None``: no shifts);
    with ``thresholds`` given (a group's population shares the thresholds of the study),
    nothing is drawn.

    Raises
    ------
    ValueError
        For a path that names an item or refers to itself, a cycle, residual correlations on
        exogenous latents, or paths that would explain more than all of a latent's variance.
    """
    constructs = list(instrument.construct_ids)
    items = set(instrument.item_ids)
    extra = list(params.extra_latents)
    for name in extra:
        if name in constructs or name in items:
            raise InputError(f"simulate.extra_latents: {name!r} is already a construct or item of the instrument")
    for outcome, preds in params.structural.items():
        for name in [outcome, *preds]:
            if name in items:
                raise InputError(f"simulate.structural.{outcome}: {name!r} is an item, not a latent; paths join constructs")
            if name not in constructs and name not in extra:
                raise InputError(
                    f"simulate.structural.{outcome}: {name!r} is not a construct of the instrument; a latent "
                    "without items (such as a second-order factor) must be listed in simulate.extra_latents"
                )
        if outcome in preds:
            raise InputError(f"simulate.structural.{outcome}: a latent cannot predict itself")
    latents = constructs + extra
    k = len(latents)
    pos = {v: i for i, v in enumerate(latents)}
    beta = np.zeros((k, k))
    for outcome, preds in params.structural.items():
        for pred, b in preds.items():
            beta[pos[outcome], pos[pred]] = b
    _topological(latents, params.structural)  # raises on a cycle

    gamma, moments = _covariates(instrument, params, latents)
    endo = [v for v in latents if v in params.structural or v in params.covariates]
    exo = [v for v in latents if v not in endo]
    psi = np.zeros((k, k))
    for a in exo:
        for b in exo:
            psi[pos[a], pos[b]] = 1.0 if a == b else params.exogenous_correlation
    for a, others in params.exogenous_correlations.items():
        for b, r in others.items():
            bad = next((v for v in (a, b) if v not in exo), None)
            if bad is not None or a == b:
                raise InputError(f"simulate.exogenous_correlations.{a}.{b}: {bad or a!r} is not "
                                 f"{'an exogenous latent' if bad else 'another latent'} (exogenous: {', '.join(exo)})")
            psi[pos[a], pos[b]] = psi[pos[b], pos[a]] = r
    exo_idx = [pos[v] for v in exo]
    if np.linalg.eigvalsh(psi[np.ix_(exo_idx, exo_idx)]).min() <= 0:
        if params.exogenous_correlations:
            raise InputError(
                f"simulate.exogenous_correlations: with exogenous_correlation {params.exogenous_correlation} they give "
                f"a correlation matrix of the {len(exo)} exogenous latents that is not positive definite")
        raise InputError(
            f"simulate.exogenous_correlation: {params.exogenous_correlation} gives a correlation matrix of the "
            f"{len(exo)} exogenous latents that is not positive definite; use a value above {-1 / (len(exo) - 1):.3f}"
        )
    pairs = []
    for a, others in params.residual_correlations.items():
        for b, r in others.items():
            for name in (a, b):
                if name not in endo:
                    raise InputError(
                        f"simulate.residual_correlations.{a}.{b}: {name!r} is not an endogenous latent "
                        "(exogenous latents correlate through exogenous_correlation)"
                    )
            pairs.append((pos[a], pos[b], r))

    # Solve the residual variances so that every latent has variance 1 (Gauss-Seidel in
    # topological order: exact in one pass without residual correlations, a few passes with).
    inv = np.linalg.inv(np.eye(k) - beta)
    explained = gamma @ gamma.T if gamma is not None else np.zeros((k, k))  # the covariates' share
    order = [pos[v] for v in _topological(latents, params.structural) if v in endo]
    for j in order:
        psi[j, j] = 1.0
    for _ in range(200):
        change = 0.0
        for j in order:
            for a, b, r in pairs:
                psi[a, b] = psi[b, a] = r * np.sqrt(max(psi[a, a], 0) * max(psi[b, b], 0))
            var = (inv @ (psi + explained) @ inv.T)[j, j]
            step = 1.0 - var
            psi[j, j] += step
            change = max(change, abs(step))
        if change < 1e-13:
            break
    for j in order:
        if psi[j, j] <= 1e-6:
            preds = {**params.structural.get(latents[j], {}), **params.covariates.get(latents[j], {})}
            raise InputError(
                f"simulate.structural.{latents[j]}: the standardised paths from {', '.join(preds)} explain "
                f"{1 - psi[j, j]:.2f} of its variance (R^2 must be < 1); make them smaller"
            )

    loadings = {}
    for item in instrument.items:
        lam = params.loadings.get(item.id, params.loadings.get(item.construct, params.loadings.get("default")))
        if lam is None:
            raise InputError(f"simulate.loadings: no loading for item {item.id!r}; add a 'default' key")
        loadings[item.id] = float(lam)
    for key in params.loadings:
        if key != "default" and key not in items and key not in constructs:
            raise InputError(f"simulate.loadings.{key}: not an item or construct of the instrument")
    method_loadings = None
    if params.method_factor:
        mf = params.method_factor
        for key in mf:
            if key != "default" and key not in items and key not in constructs:
                raise InputError(f"simulate.method_factor.{key}: not an item or construct of the instrument")
        method_loadings = pd.Series({i.id: float(mf.get(i.id, mf.get(i.construct, mf.get("default", 0.0))))
                                     for i in instrument.items})
        for i, m in method_loadings.items():
            if loadings[i] ** 2 + m ** 2 >= 1:
                raise InputError(f"simulate.method_factor: item {i!r} has loading {loadings[i]} and method loading {m}; "
                                 "their squares must add up to less than 1")

    if thresholds is None:
        likert = [i for i in instrument.items if i.scale.type == "likert"]
        width = max((len(i.scale.points) - 1 for i in likert), default=0)
        thr = np.full((len(likert), width), np.nan)
        shifts = rng.normal(0.0, params.threshold_jitter, size=len(likert)) if rng is not None else np.zeros(len(likert))
        for r, item in enumerate(likert):
            base = _base_thresholds(item.scale, params.thresholds)
            thr[r, : len(base)] = np.asarray(base) + shifts[r]
        thresholds = pd.DataFrame(thr, index=[i.id for i in likert], columns=[f"t{j + 1}" for j in range(width)])

    frame = lambda m: pd.DataFrame(m, index=latents, columns=latents)  # noqa: E731
    return PopulationModel(
        beta=frame(beta), psi=frame(psi), loadings=pd.Series(loadings),
        construct_of=pd.Series({i.id: i.construct for i in instrument.items}), thresholds=thresholds,
        gamma=None if gamma is None else pd.DataFrame(gamma, index=latents, columns=list(moments.index)),
        covariates=moments, method_loadings=method_loadings,
    )


def _covariates(instrument: Instrument, params: SimulationParams, latents: list[str]):
    """``(gamma, moments)``: the latents x covariates matrix of ``simulate.covariates`` and the
    covariates' population moments (None, None without covariates)."""
    if not params.covariates:
        return None, None
    columns = instrument.model_columns
    names = list(dict.fromkeys(c for effects in params.covariates.values() for c in effects))
    for outcome, effects in params.covariates.items():
        if outcome not in latents:
            raise InputError(f"simulate.covariates.{outcome}: not a latent of the population model (a construct "
                             "or one of simulate.extra_latents)")
        for c in effects:
            if c not in columns:
                known = ", ".join(columns) or "none: give a context question a coding"
                raise InputError(f"simulate.covariates.{outcome}.{c}: not a model column of the instrument's context "
                                 f"questions ({known})")
    moments = covariate_moments(instrument, params.context).loc[names]
    for c, sd in moments["sd"].items():
        if not sd > 0:
            raise InputError(f"simulate.covariates: {c!r} does not vary under simulate.context, so it can have no "
                             "effect; give its values probabilities that are not all 0 but one")
    gamma = np.zeros((len(latents), len(names)))
    for outcome, effects in params.covariates.items():
        for c, g in effects.items():
            gamma[latents.index(outcome), names.index(c)] = g
    return gamma, moments


def covariate_moments(instrument: Instrument, context: dict) -> pd.DataFrame:
    """Population ``mean`` and ``sd`` of every model column of the instrument's coded context
    questions, under the answer distribution :func:`simulate_study` draws from (``context``:
    ``simulate.context``; an unlisted question is uniform over its values, or its range).

    A dummy is a Bernoulli(p) variable (mean p, variance p(1 - p)); an ordinal code and an
    integer answer take each value with its probability (an integer drawn from
    ``N(mean, sd)``, clipped to ``[min, max]`` and rounded: the normal probabilities of the
    intervals ``k +- 1/2``, the tails on the end points); a number drawn from ``N(mean, sd)``
    and clipped to ``[min, max]``: a censored normal, integrated numerically.
    """
    rows = {}
    for q in instrument.context:
        cols = q.model_columns
        if not cols:
            continue
        spec = context.get(q.id)
        if q.type == "categorical":
            probs = np.array([spec.get(v, 0.0) for v in q.values] if spec else [1.0] * len(q.values), dtype=float)
            probs = probs / probs.sum()
            for name in cols:
                if q.coding == "ordinal":
                    x = np.arange(1, len(q.values) + 1, dtype=float)
                else:
                    x = np.array([float(dummy_column(q.id, v) == name) for v in q.values])
                mean = float(probs @ x)
                rows[name] = (mean, float(np.sqrt(max(probs @ (x - mean) ** 2, 0.0))))
            continue
        lo = q.min if q.min is not None else (0 if spec is None else -np.inf)
        hi = q.max if q.max is not None else (10 if spec is None else np.inf)
        if spec is None:
            if q.type == "integer":
                x = np.arange(lo, hi + 1, dtype=float)
                rows[q.id] = (float(x.mean()), float(x.std()))
            else:
                rows[q.id] = ((lo + hi) / 2, (hi - lo) / np.sqrt(12))
            continue
        m, sd = spec["mean"], spec["sd"]
        a, b = max(lo, m - 12 * sd), min(hi, m + 12 * sd)
        if q.type == "integer":
            ks = np.arange(np.rint(a), np.rint(b) + 1)
            cdf = np.vectorize(NormalDist(m, sd).cdf)
            upper = np.append(cdf(ks[:-1] + 0.5), 1.0)
            p = np.diff(np.concatenate([[0.0], upper]))
            x = ks
        else:
            grid = np.linspace(a, b, 200_001)
            dens = np.vectorize(NormalDist(m, sd).pdf)(grid)
            inner = dens / dens.sum() * (NormalDist(m, sd).cdf(b) - NormalDist(m, sd).cdf(a))
            x = np.concatenate([[a], grid, [b]])
            p = np.concatenate([[NormalDist(m, sd).cdf(a)], inner, [1 - NormalDist(m, sd).cdf(b)]])
        mean = float(p @ x)
        rows[q.id] = (mean, float(np.sqrt(p @ (x - mean) ** 2)))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "sd"])


def _base_thresholds(scale: Scale, given: tuple) -> list[float]:
    """``given`` when it fits the number of categories, else equal-probability cut points."""
    k = len(scale.points)
    if len(given) == k - 1:
        return list(given)
    return [NormalDist().inv_cdf(j / k) for j in range(1, k)]


def _topological(latents: list[str], structural: dict) -> list[str]:
    done, out = set(), []

    def visit(v, stack):
        if v in done:
            return
        if v in stack:
            cycle = " -> ".join([*stack[stack.index(v):], v])
            raise InputError(f"simulate.structural: the paths form a cycle ({cycle}); only recursive models can be simulated")
        for p in structural.get(v, {}):
            visit(p, [*stack, v])
        done.add(v)
        out.append(v)

    for v in latents:
        visit(v, [])
    return out


# --------------------------------------------------------------------------- study


@dataclass(frozen=True)
class SimulatedStudy:
    """A simulated data set and what is true about it.

    Attributes
    ----------
    responses : DataFrame
        One row per submission, as a survey platform would export it (reverse-keyed items as
        answered, defects included), with a ``simulated`` column set to 1.
    respondents : DataFrame
        One row per submission: ``row`` (1-based row of ``responses``), the id, one boolean
        column per respondent-level defect, ``duplicate_of`` (row of the original),
        ``failed_attention_check`` (from the data, whatever the cause), ``n_missing_cells``,
        ``n_typo_cells`` and ``clean`` (no respondent-level defect).
    truth : dict
        Population parameters and defect counts (JSON-ready).
    """

    responses: pd.DataFrame
    respondents: pd.DataFrame
    truth: dict


def simulate_study(instrument: Instrument, params: SimulationParams, seed: int) -> SimulatedStudy:
    """Draw a study of ``params.n`` respondents for ``instrument``.

    Parameters
    ----------
    instrument : Instrument
    params : SimulationParams
    seed : int
        Seed of the one :class:`numpy.random.Generator` every draw comes from.

    Returns
    -------
    SimulatedStudy
    """
    rng = np.random.default_rng(seed)
    pop = population_model(instrument, params, rng)
    _check_context_params(instrument, params)
    if params.defects.get("inattentive", 0) > 0 and not instrument.attention_checks:
        raise InputError("simulate.defects.inattentive: the instrument has no attention checks; set the rate to 0")
    n = params.n
    items = list(instrument.items)

    # Latent scores and latent responses.
    nesting = _nesting(instrument, params, np.random.default_rng([seed, ORGANISATION_STREAM]), n, len(pop.latents))
    group_pops = _group_populations(instrument, params, pop)
    membership = None
    context = None
    if group_pops is not None:
        column = group_pops[0]
        question = next(q for q in instrument.context if q.id == column)
        membership = _draw_context(question, params.context.get(column), rng, n)
    if pop.gamma is not None:  # covariates: the context answers first, standardised as the population
        context = _context_answers(instrument, params, rng, n, membership, group_pops)
        zc = _standardised_covariates(instrument, context, pop.covariates)
    if group_pops is None:
        cov = pop.residual_covariance()
        eta = rng.multivariate_normal(np.zeros(len(pop.latents)), cov, size=n, method="cholesky")
        if nesting is not None:
            eta = _nested(eta, nesting, np.linalg.cholesky(cov))
        if pop.gamma is not None:
            eta = eta + zc @ pop.covariate_paths().T
        eta = pd.DataFrame(eta, columns=pop.latents)
        lam_of = {item.id: pop.loadings[item.id] for item in items}
        shift_of = {}
    else:
        column, gpops = group_pops
        z = rng.standard_normal((n, len(pop.latents)))
        if nesting is not None:
            z = _nested(z, nesting, None)
        eta = np.zeros((n, len(pop.latents)))
        lam_of = {item.id: np.zeros(n) for item in items}
        shift_of = {item.id: np.zeros(n) for item in items}
        for value, gp in gpops.items():
            rows = membership == value
            eta[rows] = gp["mean"] + z[rows] @ np.linalg.cholesky(gp["cov"]).T
            if pop.gamma is not None:
                eta[rows] += zc[rows] @ gp["covariate_paths"].T
            for item in items:
                lam_of[item.id][rows] = gp["loadings"][item.id]
                shift_of[item.id][rows] = gp["intercepts"][item.id]
        eta = pd.DataFrame(eta, columns=pop.latents)
    answers = {}
    # the common-method factor (simulate.method_factor): drawn only when planted, so a study
    # without one is drawn as before
    method = rng.standard_normal(n) if pop.method_loadings is not None else None
    for item in items:
        lam = lam_of[item.id]
        m = 0.0 if method is None else float(pop.method_loadings[item.id])
        ystar = lam * eta[item.construct].to_numpy() + np.sqrt(1 - lam**2 - m**2) * rng.standard_normal(n)
        if m:
            ystar = ystar + m * method
        if membership is not None:
            ystar = ystar + shift_of[item.id]
        x = _respond(item.scale, ystar, pop.thresholds.loc[item.id].dropna().to_numpy() if item.id in pop.thresholds.index else None)
        answers[item.id] = item.scale.reverse(x) if item.reverse else x
    for check in instrument.attention_checks:
        answers[check.id] = np.full(n, check.expected[0], dtype=float)

    # Respondent-level defects on disjoint sets.
    counts = {d: int(round(params.defects.get(d, 0.0) * n)) for d in DEFECTS}
    order = rng.permutation(n)
    groups, start = {}, 0
    for d in DEFECTS[:-1]:
        groups[d] = np.sort(order[start:start + counts[d]])
        start += counts[d]
    flags = {d: np.zeros(n, dtype=bool) for d in DEFECTS}
    for d in DEFECTS[:-1]:
        flags[d][groups[d]] = True

    answered = items + list(instrument.attention_checks)
    for r in groups["straightliner"]:
        value = _uniform(instrument.scale, rng, 1)[0]
        for q in answered:
            answers[q.id][r] = value if q.scale.contains(value) else _clip(q.scale, value)
    for q in answered:
        rows = groups["random_responder"]
        answers[q.id][rows] = _uniform(q.scale, rng, len(rows))
    checks = list(instrument.attention_checks)
    for r in groups["inattentive"]:
        check = checks[rng.integers(len(checks))]
        wrong = [v for v in (check.scale.points or []) if v not in check.expected]
        answers[check.id][r] = rng.choice(wrong) if wrong else check.expected[0] + 1.0

    # Completion time.
    duration = np.rint(params.duration_median_s * np.exp(params.duration_sigma * rng.standard_normal(n)))
    lo, hi = params.speeder_fraction
    duration[groups["speeder"]] = np.rint(params.duration_median_s * rng.uniform(lo, hi, counts["speeder"]))
    duration = np.maximum(duration, 1.0)

    # Cell defects on the item cells of the n original respondents.
    n_missing = np.zeros(n, dtype=int)
    n_typo = np.zeros(n, dtype=int)
    cells = [(c, item) for c, item in enumerate(items)]
    n_cells = n * len(cells)
    n_missing_cells = int(round(params.defects.get("missing_cell", 0.0) * n_cells))
    picked = rng.choice(n_cells, size=n_missing_cells, replace=False)
    for cell in picked:
        r, c = divmod(int(cell), len(cells))
        answers[items[c].id][r] = np.nan
        n_missing[r] += 1
    bounded = [c for c, item in cells if item.scale.bounded]
    eligible = np.setdiff1d(
        (np.arange(n)[:, None] * len(cells) + np.asarray(bounded, dtype=int)[None, :]).ravel(), picked
    ) if bounded else np.array([], dtype=int)
    n_typo_cells = int(round(params.defects.get("typo_cell", 0.0) * n * len(bounded)))
    for cell in rng.choice(eligible, size=min(n_typo_cells, len(eligible)), replace=False):
        r, c = divmod(int(cell), len(cells))
        answers[items[c].id][r] = _typo(items[c].scale, answers[items[c].id][r])
        n_typo[r] += 1

    # Context answers (drawn first when covariates need them).
    if context is None:
        context = _context_answers(instrument, params, rng, n, membership, group_pops)
    outside_counts = _answer_outside(answers, _outside_rates(instrument, params, context, n),
                                     flags["straightliner"] | flags["random_responder"], rng) if params.outside else {}

    values = {**answers, **context}
    data = pd.DataFrame({q.id: values[q.id] for page in instrument.pages() for q in page.questions})
    if nesting is not None:
        data.insert(0, instrument.cluster_column, _organisation_names(nesting[0], len(nesting[1])))
    if instrument.duration_column:
        data[instrument.duration_column] = duration.astype(int)
    if params.personal_data:  # drawn per person, so a duplicate submission carries the same values
        for col in instrument.personal_data:
            data[col] = _personal(col, n)

    truth_rows = pd.DataFrame({d: flags[d] for d in DEFECTS})
    truth_rows["duplicate_of"] = -1
    truth_rows["n_missing_cells"] = n_missing
    truth_rows["n_typo_cells"] = n_typo

    # Duplicate submissions: copies of clean respondents, the first half keeping the original id.
    clean_pool = np.flatnonzero(~np.any([flags[d] for d in DEFECTS], axis=0))
    if counts["duplicate"] > len(clean_pool):
        raise InputError("simulate.defects.duplicate: more duplicates than clean respondents to copy")
    sources = np.sort(rng.choice(clean_pool, size=counts["duplicate"], replace=False))
    dup = data.iloc[sources].copy()
    dup_truth = truth_rows.iloc[sources].copy()
    dup_truth["duplicate"] = True
    dup_truth["duplicate_of"] = sources
    same_id = np.zeros(len(sources), dtype=bool)
    same_id[: (len(sources) + 1) // 2] = True
    data = pd.concat([data, dup], ignore_index=True)
    truth_rows = pd.concat([truth_rows, dup_truth], ignore_index=True)
    keeps_id = np.concatenate([np.zeros(n, dtype=bool), same_id])

    # Shuffle the submissions, then number them.
    perm = rng.permutation(len(data))
    # A resubmission comes after the first submission: put each copy after its original.
    where = np.empty(len(perm), dtype=int)
    where[perm] = np.arange(len(perm))
    for copy, original in zip(range(n, len(data)), sources):
        if where[copy] < where[original]:
            a, b = where[copy], where[original]
            perm[a], perm[b] = original, copy
            where[original], where[copy] = a, b
    data = data.iloc[perm].reset_index(drop=True)
    truth_rows = truth_rows.iloc[perm].reset_index(drop=True)
    keeps_id = keeps_id[perm]
    new_row = np.empty(len(perm), dtype=int)
    new_row[perm] = np.arange(len(perm))
    orig_rows = truth_rows["duplicate_of"].to_numpy()
    truth_rows["duplicate_of"] = np.where(orig_rows >= 0, new_row[np.maximum(orig_rows, 0)] + 1, -1)

    width = len(str(len(data)))
    ids = np.empty(len(data), dtype=object)
    k = 0
    for r in range(len(data)):
        if not keeps_id[r]:
            k += 1
            ids[r] = f"R{k:0{width}d}"
    for r in np.flatnonzero(keeps_id):
        ids[r] = ids[truth_rows.at[r, "duplicate_of"] - 1]
    id_col = instrument.id_column or "respondent_id"

    data.insert(0, id_col, ids)
    data[SIMULATED_COLUMN] = 1
    for item in items:
        if item.scale.type == "likert":
            data[item.id] = pd.array(data[item.id], dtype="Int64")
    for check in instrument.attention_checks:
        if check.scale.type == "likert":
            data[check.id] = pd.array(data[check.id], dtype="Int64")

    failed = np.zeros(len(data), dtype=bool)
    for check in instrument.attention_checks:
        failed |= ~data[check.id].isin(check.expected).to_numpy()
    truth_rows.insert(0, id_col, ids)
    truth_rows.insert(0, "row", np.arange(1, len(data) + 1))
    truth_rows["failed_attention_check"] = failed
    truth_rows["clean"] = ~truth_rows[list(DEFECTS)].any(axis=1)
    truth_rows[SIMULATED_COLUMN] = 1

    truth = _truth(instrument, params, pop, seed, counts, n_missing_cells, n_cells,
                   min(n_typo_cells, len(eligible)), n * len(bounded), len(data))
    truth["outside"] = outside_counts
    if nesting is not None:
        sizes = np.bincount(nesting[0], minlength=len(nesting[1]))
        truth["organisations"] = {"column": instrument.cluster_column, "count": len(nesting[1]),
                                  "with_respondents": int((sizes > 0).sum()), "icc": nesting[2],
                                  "size_sigma": float(params.organisations.get("size_sigma", 0.0)),
                                  "largest": int(sizes.max()), "mean_size": float(n / max(1, (sizes > 0).sum()))}
    if group_pops is not None:
        truth["groups"] = {"column": group_pops[0], "values": {
            value: {"overrides": (params.groups.get("values") or {}).get(value, {}),
                    "latent_means": {lat: float(m) for lat, m in zip(pop.latents, gp["mean"])},
                    "n": int(np.sum(membership == value))}
            for value, gp in group_pops[1].items()}}
    return SimulatedStudy(responses=data, respondents=truth_rows, truth=truth)


def _group_populations(instrument: Instrument, params: SimulationParams, pop: PopulationModel):
    """``(column, {value: {cov, mean, loadings, intercepts}})`` of the group-specific populations,
    or None when ``simulate.groups`` overrides nothing.

    Raises
    ------
    ValueError
        A column that is not a categorical context question, an unknown value, item,
        construct or latent, or group paths that do not make a valid population model.
    """
    groups = params.groups or {}
    values = groups.get("values") or {}
    if not values:
        return None
    column = groups["column"]
    question = next((q for q in instrument.context if q.id == column), None)
    if question is None or question.type != "categorical":
        raise InputError(f"simulate.groups.column: {column!r} is not a categorical context question of the instrument")
    items, constructs = list(instrument.item_ids), set(instrument.construct_ids)
    construct_of = {i.id: i.construct for i in instrument.items}
    out = {}
    for value in question.values:
        spec = values.get(value, {})
        where = f"simulate.groups.values.{value}"
        structural = {o: dict(preds) for o, preds in params.structural.items()}
        for outcome, preds in spec.get("structural", {}).items():
            structural.setdefault(outcome, {}).update(preds)
        try:
            gp = population_model(instrument, replace(params, structural=structural), None, pop.thresholds)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        per_item = {}
        for key in ("loadings", "intercepts"):
            given = spec.get(key, {})
            for name in given:
                if name not in constructs and name not in items:
                    raise InputError(f"{where}.{key}.{name}: not an item or construct of the instrument")
            base = gp.loadings if key == "loadings" else pd.Series(0.0, index=items)
            per_item[key] = {i: float(given.get(i, given.get(construct_of[i], base[i]))) for i in items}
        alpha = np.zeros(len(gp.latents))
        for lat, m in spec.get("latent_means", {}).items():
            if lat not in gp.latents:
                raise InputError(f"{where}.latent_means.{lat}: not a latent of the population model")
            alpha[gp.latents.index(lat)] = m
        mean = np.linalg.solve(np.eye(len(alpha)) - gp.beta.to_numpy(), alpha)
        out[value] = {"cov": gp.residual_covariance(), "covariate_paths": gp.covariate_paths(), "mean": mean,
                      **per_item}
    unknown = [v for v in values if v not in question.values]
    if unknown:
        raise InputError(f"simulate.groups.values.{unknown[0]}: not a value of {column!r} ({question.describe()})")
    return column, out


def _context_answers(instrument: Instrument, params: SimulationParams, rng: np.random.Generator, n: int,
                     membership, group_pops) -> dict:
    """Every context question's answers (the group column's are the drawn membership)."""
    return {q.id: membership if membership is not None and q.id == group_pops[0]
            else _draw_context(q, params.context.get(q.id), rng, n) for q in instrument.context}


def _standardised_covariates(instrument: Instrument, context: dict, moments: pd.DataFrame) -> np.ndarray:
    """The covariate columns (rows of ``moments``) coded from the context answers as the clean
    stage codes them (:func:`analysis.coding.coded_values`), standardised by the population
    moments: n x covariates."""
    coded = {}
    for q in instrument.context:
        coded.update(coded_values(q, context[q.id]))
    return np.column_stack([(coded[c] - moments.at[c, "mean"]) / moments.at[c, "sd"] for c in moments.index])


def _respond(scale: Scale, ystar: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    if scale.type == "likert":
        return scale.min + (ystar[:, None] > thresholds[None, :]).sum(axis=1).astype(float)
    if scale.bounded:
        mid, sd = (scale.min + scale.max) / 2, (scale.max - scale.min) / 6
        return np.clip(mid + sd * ystar, scale.min, scale.max)
    return ystar


def _uniform(scale: Scale, rng: np.random.Generator, size: int) -> np.ndarray:
    if scale.type == "likert":
        return rng.integers(scale.min, scale.max + 1, size=size).astype(float)
    if scale.bounded:
        return rng.uniform(scale.min, scale.max, size=size)
    return rng.normal(0.0, 3.0, size=size)


def _clip(scale: Scale, value: float) -> float:
    lo = -np.inf if scale.min is None else scale.min
    hi = np.inf if scale.max is None else scale.max
    return float(np.clip(value, lo, hi))


def _typo(scale: Scale, value: float) -> float:
    """An out-of-range value a hurried typist makes: the digit twice (5 -> 55), else max + 1."""
    if np.isnan(value):
        value = scale.max
    candidate = value * 11 if scale.type == "likert" else value * 10
    if scale.contains(candidate):
        candidate = scale.max + (1 if scale.type == "likert" else scale.max - scale.min)
    return float(candidate)


def _check_context_params(instrument: Instrument, params: SimulationParams) -> None:
    questions = {q.id: q for q in instrument.context}
    for qid, spec in params.context.items():
        if qid not in questions:
            raise InputError(f"simulate.context.{qid}: not a context question of the instrument")
        q = questions[qid]
        if not isinstance(spec, dict):
            raise InputError(f"simulate.context.{qid}: expected a mapping, got {spec!r}")
        if q.type == "categorical":
            bad = [v for v in spec if v not in q.values]
            if bad:
                raise InputError(f"simulate.context.{qid}.{bad[0]}: not an allowed value ({q.describe()})")
            probs = list(spec.values())
            if not all(_is_number(p) and p >= 0 for p in probs) or abs(sum(probs) - 1) > 1e-9:
                raise InputError(f"simulate.context.{qid}: probabilities must be >= 0 and add up to 1, got {spec}")
        elif q.type in ("integer", "number"):
            if set(spec) != {"mean", "sd"} or not all(_is_number(v) for v in spec.values()) or spec["sd"] <= 0:
                raise InputError(f"simulate.context.{qid}: expected {{mean: number, sd: number > 0}}, got {spec}")


def _draw_context(q, spec, rng: np.random.Generator, n: int):
    if q.type == "categorical":
        values = list(q.values)
        probs = [spec.get(v, 0.0) for v in values] if spec else None
        return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs)]
    if q.type in ("integer", "number"):
        lo = q.min if q.min is not None else (0 if spec is None else -np.inf)
        hi = q.max if q.max is not None else (10 if spec is None else np.inf)
        if spec is None:
            x = rng.integers(lo, hi + 1, size=n).astype(float) if q.type == "integer" else rng.uniform(lo, hi, size=n)
        else:
            x = np.clip(rng.normal(spec["mean"], spec["sd"], size=n), lo, hi)
        return np.rint(x).astype(int) if q.type == "integer" else x
    return np.asarray([f"answer {k}" for k in rng.integers(1, 4, size=n)], dtype=object)


def _personal(column: str, n: int) -> list:
    """Synthetic stand-ins for personal data: RFC 5737 documentation addresses, example.org
    mail, and ``synthetic-<column>-<k>`` for anything else; never a real person's data."""
    low = column.lower()
    if "mail" in low:
        return [f"respondent{k + 1}@example.org" for k in range(n)]
    if low.startswith("ip"):
        return [f"192.0.2.{k % 254 + 1}" for k in range(n)]
    return [f"synthetic-{column}-{k + 1}" for k in range(n)]


def _truth(instrument, params, pop: PopulationModel, seed, counts, n_missing, n_cells, n_typo, n_bounded, rows) -> dict:
    latent_cor = pop.latent_covariance()
    endo = [v for v in pop.latents if v not in pop.exogenous]
    return {
        "simulated": True,
        "note": "Simulated data drawn by gapscale from the population model below; not real responses.",
        "seed": seed,
        "n": params.n,
        "rows": rows,
        "population": {
            "latents": list(pop.latents),
            "exogenous": list(pop.exogenous),
            "loadings": {i: float(v) for i, v in pop.loadings.items()},
            "method_loadings": ({} if pop.method_loadings is None else
                                {i: float(v) for i, v in pop.method_loadings.items()}),
            "construct_of": {i: c for i, c in pop.construct_of.items()},
            "reverse_keyed": [i.id for i in instrument.items if i.reverse],
            "structural": {o: {p: float(b) for p, b in preds.items()} for o, preds in params.structural.items()},
            "covariates": {o: {c: float(g) for c, g in effects.items()} for o, effects in params.covariates.items()},
            "covariate_moments": ({} if pop.covariates is None else
                                  {c: {"mean": float(r["mean"]), "sd": float(r["sd"])}
                                   for c, r in pop.covariates.iterrows()}),
            "exogenous_correlation": params.exogenous_correlation,
            "exogenous_correlations": params.exogenous_correlations,
            "residual_variances": {v: float(pop.psi.at[v, v]) for v in endo},
            "residual_correlations": params.residual_correlations,
            "r_squared": {v: float(x) for v, x in pop.r_squared().items()},
            "latent_correlations": {a: {b: float(latent_cor.at[a, b]) for b in pop.latents} for a in pop.latents},
            "thresholds": {i: [float(t) for t in row.dropna()] for i, row in pop.thresholds.iterrows()},
            "lavaan": pop.to_lavaan(),
        },
        "defects": {
            **{d: {"rate": float(params.defects.get(d, 0.0)), "count": counts[d], "of": params.n} for d in DEFECTS},
            "missing_cell": {"rate": float(params.defects.get("missing_cell", 0.0)), "count": n_missing, "of": n_cells},
            "typo_cell": {"rate": float(params.defects.get("typo_cell", 0.0)), "count": n_typo, "of": n_bounded},
        },
    }


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
