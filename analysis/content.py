"""Content validity from an expert panel: I-CVI, S-CVI, modified kappa, Lawshe's CVR, item-sort indices.

Pure functions on DataFrames (no file I/O). The ratings come in a long table, one row per
expert and item (:data:`RATINGS_COLUMNS`)::

    expert,item,relevance,assigned
    E01,GAP1_1,4,GAP1
    E01,GAP1_2,3,GAP2
    E02,GAP1_1,2,

- ``expert``: any non-empty label of the panel member;
- ``item``: an item id of the instrument;
- ``relevance``: the expert's rating of the item's relevance to its construct's definition, a
  whole number 1-4 (1 = not relevant, 2 = somewhat relevant, 3 = quite relevant, 4 = highly
  relevant; Davis 1992, the scale of Lynn 1986 and Polit & Beck 2006);
- ``assigned`` (optional column; a blank cell means the expert did not sort that item): the
  construct id the expert put the item in, in an item-sort task (Anderson & Gerbing 1991) where
  the expert sees the construct definitions, not the item's intended construct;
- ``comment`` (optional): free text, carried nowhere.

An expert may leave an item out (no row); each item's N is the number of experts who rated it.
An expert who rates the same item twice, an unknown item or construct, or a relevance outside
1-4 is an :class:`~analysis.errors.InputError` naming the file, row, column and value.

What is computed, per item (:func:`content_validity`):

- **I-CVI** = A / N, A the number of experts rating the item 3 or 4 (Lynn 1986; Polit & Beck
  2006). Criterion: I-CVI >= .78, as Polit, Beck & Owen (2007) recommend after Lynn (1986)
  (Lynn asked small panels, five experts or fewer, to agree unanimously; with those the exact
  CVR test below is as strict: N = 5 needs all five).
- **modified kappa** (Polit, Beck & Owen 2007): the I-CVI adjusted for chance agreement,
  p_c = C(N, A) * 0.5**N, kappa* = (I-CVI - p_c) / (1 - p_c), read with Cicchetti & Sparrow's
  (1981) bands: < .40 poor, .40-.59 fair, .60-.74 good, >= .75 excellent (:func:`kappa_band`).
- **CVR** (Lawshe 1975) = (n_e - N/2) / (N/2), n_e the experts who call the item "essential".
  Lawshe's panel answered essential / useful but not essential / not necessary; on the 4-point
  relevance scale gapscale counts **3 or 4 as essential** by default (``essential_min=3``, the
  usual mapping), so that n_e = A and CVR = 2 * I-CVI - 1: the two indices then differ only in
  their criterion. ``essential_min=4`` counts only "highly relevant" as essential (stricter).
  The critical value is Ayre & Scally's (2014) exact one: n_crit is the smallest n_e with
  P(X >= n_e | N, 0.5) < alpha (one-tailed, alpha = .05), CVR_crit = (n_crit - N/2) / (N/2)
  (:func:`critical_count`, :func:`cvr_critical`). With N < 5 no count is significant at .05 and
  the CVR cannot be tested (critical value NaN, no flag).
- **item-sort indices** (Anderson & Gerbing 1991): p_sa = n_c / N, the share of the
  experts who sorted the item into its intended construct, and c_sv = (n_c - n_o) / N, n_o the
  largest count for any one other construct (N here: the experts who sorted the item).
  Their significance, two tests reported side by side:

  * ``n_c_critical`` (Howard & Melloy 2016): n_c is tested against chance assignment among the
    k constructs the experts chose from, n_c ~ Binomial(N, 1/k) under the null; the item is
    significant when n_c >= the smallest count c with P(X >= c | N, 1/k) < alpha. k is the
    number of constructs offered in the sort task (``sort_choices``; default: every construct
    of the instrument). With k = 2 this is the same test as Anderson & Gerbing's, as Howard &
    Melloy note; with more choices it is far more lenient.
  * ``csv_critical`` (Anderson & Gerbing's two-choice derivation): with two choices n_o = N - n_c,
    c_sv = (2 n_c - N) / N and n_c ~ Binomial(N, 1/2), so c_sv is significant when
    c_sv >= (2 c - N) / N with c = :func:`critical_count` (N, 0.5). Applied to more than two
    choices this is conservative (Howard & Melloy's criticism); gapscale keeps it as the
    reason that catches an item split between its own construct and one neighbour, which the
    1/k test with many constructs does not.

  gapscale implements these two tests from the definitions above; Howard & Melloy's printed
  table of critical values was not available to check against (say so when citing).

A flag per item lists its reasons (:data:`REASONS`): ``i_cvi_low`` (I-CVI < .78),
``cvr_below_critical``, ``sort_not_significant`` (n_c below the Howard-Melloy critical count) and
``csv_below_critical``. Scale level (per construct and for the whole instrument): S-CVI/Ave, the
mean I-CVI, and S-CVI/UA, the share of items every expert rated 3 or 4 (I-CVI = 1) (Polit &
Beck 2006; criterion S-CVI/Ave >= .90).

Checks against published worked examples (tests/test_content.py, which says for each number
what it was checked against):

- Polit, Beck & Owen (2007), their table of I-CVI, p_c, kappa* and evaluation for N = 3..9
  experts: I-CVI and p_c to the printed two (p_c three) decimals, kappa* from the exact fractions
  (gapscale never rounds inside a computation). The table itself could not be opened to check it;
  the I-CVI and p_c columns are their formulas and agree with a published application
  (PMC5557472). For four rows (N/A = 6/5, 6/4, 7/5, 8/7) kappa* computed from the *rounded* I-CVI
  and p_c is .01 away from the exact value (.81 vs .82, .57 vs .56, .65 vs .66, .88 vs .87);
  which of the two the paper prints is not verified. The evaluation band is the same;
- Ayre & Scally (2014): n_crit and CVR_crit for N = 5..20 equal the exact one-tailed binomial
  definition (computed with fractions for N = 5..40, independent of scipy) and an independent
  transcription of their table; the article's table itself was not available to check;
- S-CVI/Ave = .97 and S-CVI/UA = .83 of a published 6-expert, 12-item worked table (PMC7253559,
  Table 4, checked cell by cell), the computation Polit & Beck (2006) define;
- Anderson & Gerbing (1991): p_sa and c_sv from their definitions (as independent implementations
  state them) on a hand-computed example (N = 10; 7 intended, 2 and 1 elsewhere: p_sa = .70,
  c_sv = .50); no worked example from the paper was available.

No R package computes these (psych and semTools have none); ``# In R`` the same numbers follow
from ``choose(N, A) * 0.5^N`` and ``qbinom(1 - alpha, N, p) + 1`` (the smallest c with
``pbinom(c - 1, N, p, lower.tail = FALSE) < alpha``; equal to it whenever the tail is not exactly alpha).

References
----------
Anderson, J. C., & Gerbing, D. W. (1991). Predicting the performance of measures in a
confirmatory factor analysis with a pretest assessment of their substantive validities.
*Journal of Applied Psychology, 76*(5), 732-740.
Ayre, C., & Scally, A. J. (2014). Critical values for Lawshe's content validity ratio: Revisiting
the original methods of calculation. *Measurement and Evaluation in Counseling and Development,
47*(1), 79-86.
Cicchetti, D. V., & Sparrow, S. A. (1981). Developing criteria for establishing interrater
reliability of specific items. *American Journal of Mental Deficiency, 86*(2), 127-137.
Howard, M. C., & Melloy, R. C. (2016). Evaluating item-sort task methods: The presentation of a
new statistical significance formula and methodological best practices. *Journal of Business
and Psychology, 31*(1), 173-186.
Lawshe, C. H. (1975). A quantitative approach to content validity. *Personnel Psychology, 28*(4),
563-575.
Lynn, M. R. (1986). Determination and quantification of content validity. *Nursing Research,
35*(6), 382-385.
Polit, D. F., & Beck, C. T. (2006). The content validity index: Are you sure you know what's
being reported? *Research in Nursing & Health, 29*(5), 489-497.
Polit, D. F., Beck, C. T., & Owen, S. V. (2007). Is the CVI an acceptable indicator of content
validity? Appraisal and recommendations. *Research in Nursing & Health, 30*(4), 459-467.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.distributions import binom_sf
from analysis.errors import InputError

__all__ = [
    "RATINGS_COLUMNS", "OPTIONAL_COLUMNS", "REASONS", "ICVI_MIN",
    "validate_ratings", "chance_agreement", "modified_kappa", "kappa_band", "critical_count",
    "cvr", "cvr_critical", "item_sort_indices", "content_validity", "ContentResult",
    "simulate_panel", "choose_ambiguous", "recovery", "apa_content_table",
]

RATINGS_COLUMNS = ("expert", "item", "relevance")
OPTIONAL_COLUMNS = ("assigned", "comment")
ICVI_MIN = 0.78
REASONS = {
    "i_cvi_low": "I-CVI below .78 (Lynn 1986; Polit, Beck & Owen 2007)",
    "cvr_below_critical": "CVR below the exact critical value (Ayre & Scally 2014)",
    "sort_not_significant": "experts did not sort it into its construct more often than chance (Howard & Melloy 2016)",
    "csv_below_critical": "c_sv below the critical value: sorted into another construct too often (Anderson & Gerbing 1991)",
}


# --------------------------------------------------------------------------- input

def validate_ratings(ratings: pd.DataFrame, items: Mapping[str, str], source: str = "ratings") -> pd.DataFrame:
    """Check a panel's ratings (read as text) and return them typed.

    Parameters
    ----------
    ratings : DataFrame
        The long table of the module docstring, every cell a string (empty for a blank cell).
    items : mapping item id -> construct id
        The instrument's items; the construct ids are the allowed ``assigned`` values.
    source : str
        The file name used in error messages.

    Returns
    -------
    DataFrame
        Columns ``expert`` (str), ``item`` (str), ``relevance`` (int), ``assigned`` (str or
        None), in the file's order.

    Raises
    ------
    InputError
        ``"<source>: row R (line L), column C: value 'V' ..."`` for the first bad cell: a
        missing required column, an unknown column, an empty expert, an unknown item, a
        relevance that is not a whole number 1-4, an expert rating an item twice, or an assigned
        construct the instrument does not have.
    """
    cols = [str(c) for c in ratings.columns]
    for c in RATINGS_COLUMNS:
        if c not in cols:
            raise InputError(f"{source}: no column {c!r}; the ratings need columns expert, item, relevance "
                             f"(and optionally assigned, comment); found {', '.join(cols)[:200]}")
    for c in cols:
        if c not in RATINGS_COLUMNS + OPTIONAL_COLUMNS:
            raise InputError(f"{source}: unknown column {c[:80]!r}; allowed are expert, item, relevance, assigned, comment")
    if ratings.empty:
        raise InputError(f"{source}: no ratings (the file has a header but no rows)")
    constructs = set(items.values())
    has_sort = "assigned" in cols
    seen: dict[tuple[str, str], int] = {}
    rows = []
    for i, rec in enumerate(ratings.to_dict(orient="records")):
        r, line = i + 1, i + 2

        def bad(col, value, what):
            return InputError(f"{source}: row {r} (line {line}), column {col}: value {str(value)[:80]!r} {what}")

        expert = _cell(rec["expert"])
        if not expert:
            raise bad("expert", "", "is empty; every row needs the expert's label")
        item = _cell(rec["item"])
        if item not in items:
            raise bad("item", item, "is not an item of the instrument")
        rel = _cell(rec["relevance"])
        try:
            value = float(rel)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value == int(value) and 1 <= value <= 4):
            raise bad("relevance", rel, "is not a whole number from 1 to 4 (1 = not relevant ... 4 = highly relevant)")
        key = (expert, item)
        if key in seen:
            raise bad("item", item, f"was already rated by expert {expert!r} in row {seen[key]}; one row per "
                                    "expert and item")
        seen[key] = r
        assigned = _cell(rec["assigned"]) if has_sort else ""
        if assigned and assigned not in constructs:
            raise bad("assigned", assigned, "is not a construct id of the instrument")
        rows.append((expert, item, int(value), assigned or None))
    return pd.DataFrame(rows, columns=["expert", "item", "relevance", "assigned"])


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


# --------------------------------------------------------------------------- formulas

def chance_agreement(n: int, a: int) -> float:
    """Probability of chance agreement p_c = C(N, A) * 0.5**N (Polit, Beck & Owen 2007).

    Examples
    --------
    N = 6, A = 4 (a row of Polit, Beck & Owen's 2007 table): p_c = 15/64 = .234.

    >>> round(chance_agreement(6, 4), 3)
    0.234
    """
    return math.comb(n, a) * 0.5 ** n


def modified_kappa(a: int, n: int) -> float:
    """Modified kappa of an item: kappa* = (I-CVI - p_c) / (1 - p_c), I-CVI = A / N.

    Examples
    --------
    N = 6, A = 4 (a row of Polit, Beck & Owen's 2007 table): I-CVI .67, kappa* = .56 ("fair") from the
    exact fractions; .57 from the rounded I-CVI and p_c (which one the paper prints is unverified).

    >>> round(modified_kappa(4, 6), 2)
    0.56
    """
    pc = chance_agreement(n, a)
    return (a / n - pc) / (1 - pc)


def kappa_band(kappa: float) -> str:
    """Cicchetti & Sparrow's (1981) reading of a kappa, as Polit, Beck & Owen (2007) use it:
    ``poor`` < .40 <= ``fair`` < .60 <= ``good`` < .75 <= ``excellent``."""
    if kappa is None or not math.isfinite(kappa):
        return ""
    if kappa >= 0.75:
        return "excellent"
    if kappa >= 0.60:
        return "good"
    if kappa >= 0.40:
        return "fair"
    return "poor"


def critical_count(n: int, p: float = 0.5, alpha: float = 0.05) -> int | None:
    """The smallest count c with P(X >= c | n, p) < alpha, X ~ Binomial(n, p) (one-tailed exact
    test); ``None`` when even c = n is not significant (e.g. n = 4, p = .5: 1/16 = .0625).

    Examples
    --------
    Ayre & Scally (2014), N = 10: 9 experts (P(X >= 9) = 11/1024 = .011; P(X >= 8) = 56/1024 = .055).

    >>> critical_count(10)
    9
    """
    if n < 1:
        return None
    c = np.arange(0, n + 1)
    tail = binom_sf(c - 1, n, p)  # P(X >= c)
    ok = np.flatnonzero(tail < alpha)
    return int(c[ok[0]]) if ok.size else None


def cvr(n_e: int | np.ndarray, n: int | np.ndarray):
    """Lawshe's (1975) content validity ratio, (n_e - N/2) / (N/2).

    >>> cvr(8, 10)
    0.6
    """
    return (n_e - n / 2) / (n / 2)


def cvr_critical(n: int, alpha: float = 0.05) -> float:
    """Ayre & Scally's (2014) exact critical CVR for a panel of ``n``: (c - N/2)/(N/2), c =
    :func:`critical_count` (n, .5, alpha); NaN when no count is significant (N < 5 at .05).

    >>> round(cvr_critical(12), 3)
    0.667
    """
    c = critical_count(n, 0.5, alpha)
    return math.nan if c is None else cvr(c, n)


def item_sort_indices(assigned: Sequence[str], intended: str) -> dict:
    """Anderson & Gerbing's (1991) p_sa and c_sv of one item from the constructs its sorters chose.

    Returns ``n_sort`` (N), ``n_correct`` (n_c), ``other_construct`` (the most chosen other
    construct, ties broken by name; "" when none), ``n_other`` (n_o), ``p_sa`` = n_c/N and
    ``c_sv`` = (n_c - n_o)/N (NaN when nobody sorted the item).

    Examples
    --------
    Ten experts: 7 chose the intended construct A, 2 chose B, 1 chose C.

    >>> d = item_sort_indices(["A"] * 7 + ["B"] * 2 + ["C"], "A")
    >>> d["p_sa"], d["c_sv"]
    (0.7, 0.5)
    """
    counts = pd.Series([a for a in assigned if a], dtype=object).value_counts()
    n = int(counts.sum())
    n_c = int(counts.get(intended, 0))
    others = counts.drop(intended, errors="ignore")
    if len(others):
        top = int(others.max())
        other = sorted(others.index[others == top])[0]
    else:
        top, other = 0, ""
    return {"n_sort": n, "n_correct": n_c, "other_construct": other, "n_other": top,
            "p_sa": n_c / n if n else math.nan, "c_sv": (n_c - top) / n if n else math.nan}


# --------------------------------------------------------------------------- the analysis

@dataclass(frozen=True)
class ContentResult:
    """Per-item indices and flags, per-construct and scale S-CVI, the flags long table and a summary."""

    items: pd.DataFrame
    scale: pd.DataFrame
    flags: pd.DataFrame
    summary: dict = field(default_factory=dict)


ITEM_COLUMNS = [
    "item", "construct", "n_experts", "n_relevant", "i_cvi", "p_c", "kappa", "kappa_band",
    "n_essential", "cvr", "n_e_critical", "cvr_critical", "cvr_significant",
    "n_sort", "n_correct", "other_construct", "n_other", "p_sa", "c_sv",
    "n_c_critical", "sort_significant", "csv_critical", "csv_significant", "flagged", "reasons",
]


def content_validity(ratings: pd.DataFrame, items: Mapping[str, str], *, essential_min: int = 3,
                     icvi_min: float = ICVI_MIN, alpha: float = 0.05, sort_choices: int | None = None
                     ) -> ContentResult:
    """All content-validity indices of a panel's ratings.

    Parameters
    ----------
    ratings : DataFrame
        Output of :func:`validate_ratings` (``expert, item, relevance, assigned``).
    items : mapping item id -> construct id
        The instrument's items in its order (items nobody rated are listed in the summary).
    essential_min : {3, 4}, default 3
        Lowest relevance counted as "essential" for Lawshe's CVR (see the module docstring).
    icvi_min : float, default .78
        The I-CVI criterion.
    alpha : float, default .05
        One-tailed level of the binomial tests (CVR, item sort).
    sort_choices : int, optional
        k, the number of constructs the sorters chose from (Howard & Melloy's chance 1/k);
        default: the number of constructs in ``items``.

    Returns
    -------
    ContentResult
    """
    if essential_min not in (3, 4):
        raise InputError(f"essential_min: must be 3 or 4 (the lowest relevance counted as essential), got {essential_min!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha: must be in (0, 1), got {alpha!r}")
    k = len(set(items.values())) if sort_choices is None else int(sort_choices)
    if k < 2:
        raise InputError(f"sort_choices: the item sort needs at least 2 constructs to choose from, got {k}")
    rated = [i for i in items if i in set(ratings["item"])]
    rows = []
    for item in rated:
        d = ratings[ratings["item"] == item]
        construct = items[item]
        n = len(d)
        a = int((d["relevance"] >= 3).sum())
        n_e = int((d["relevance"] >= essential_min).sum())
        n_e_crit = critical_count(n, 0.5, alpha)
        row = {"item": item, "construct": construct, "n_experts": n, "n_relevant": a, "i_cvi": a / n,
               "p_c": chance_agreement(n, a), "kappa": modified_kappa(a, n)}
        row["kappa_band"] = kappa_band(row["kappa"])
        row.update(n_essential=n_e, cvr=cvr(n_e, n), n_e_critical=n_e_crit,
                   cvr_critical=math.nan if n_e_crit is None else cvr(n_e_crit, n))
        row["cvr_significant"] = None if n_e_crit is None else n_e >= n_e_crit
        s = item_sort_indices(d["assigned"].dropna().tolist(), construct)
        row.update(s)
        if s["n_sort"]:
            nc_crit = critical_count(s["n_sort"], 1 / k, alpha)
            cs_crit = critical_count(s["n_sort"], 0.5, alpha)
            row["n_c_critical"] = nc_crit
            row["sort_significant"] = None if nc_crit is None else s["n_correct"] >= nc_crit
            row["csv_critical"] = math.nan if cs_crit is None else (2 * cs_crit - s["n_sort"]) / s["n_sort"]
            # compare counts, not rounded ratios: c_sv >= (2c - N)/N  <=>  n_c - n_o >= 2c - N
            row["csv_significant"] = None if cs_crit is None else \
                s["n_correct"] - s["n_other"] >= 2 * cs_crit - s["n_sort"]
        else:
            row.update(n_c_critical=None, sort_significant=None, csv_critical=math.nan, csv_significant=None)
        reasons = []
        if row["i_cvi"] < icvi_min:
            reasons.append("i_cvi_low")
        if row["cvr_significant"] is False:
            reasons.append("cvr_below_critical")
        if row["sort_significant"] is False:
            reasons.append("sort_not_significant")
        if row["csv_significant"] is False:
            reasons.append("csv_below_critical")
        row["flagged"] = bool(reasons)
        row["reasons"] = ";".join(reasons)
        rows.append(row)
    table = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    for c in ("n_e_critical", "n_c_critical"):
        table[c] = table[c].astype("Int64")

    scale_rows = []
    order = list(dict.fromkeys(items.values()))
    for level, groups in (("construct", [(c, table[table["construct"] == c]) for c in order]),
                          ("scale", [("all", table)])):
        for name, g in groups:
            if g.empty:
                continue
            scale_rows.append({"level": level, "construct": name, "n_items": len(g),
                               "n_experts": int(g["n_experts"].max()),
                               "s_cvi_ave": float(g["i_cvi"].mean()), "s_cvi_ua": float((g["i_cvi"] == 1).mean()),
                               "n_flagged": int(g["flagged"].sum())})
    scale = pd.DataFrame(scale_rows, columns=["level", "construct", "n_items", "n_experts", "s_cvi_ave", "s_cvi_ua",
                                              "n_flagged"])

    values = {"i_cvi_low": ("i_cvi", f"I-CVI >= {icvi_min:g}"),
              "cvr_below_critical": ("cvr", "CVR >= cvr_critical"),
              "sort_not_significant": ("n_correct", "n_correct >= n_c_critical"),
              "csv_below_critical": ("c_sv", "c_sv >= csv_critical")}
    flag_rows = []
    for row in rows:
        for reason in filter(None, row["reasons"].split(";")):
            col, criterion = values[reason]
            crit = {"i_cvi_low": icvi_min, "cvr_below_critical": row["cvr_critical"],
                    "sort_not_significant": row["n_c_critical"], "csv_below_critical": row["csv_critical"]}[reason]
            flag_rows.append({"item": row["item"], "construct": row["construct"], "reason": reason,
                              "value": row[col], "criterion": crit, "rule": criterion, "explanation": REASONS[reason]})
    flags = pd.DataFrame(flag_rows, columns=["item", "construct", "reason", "value", "criterion", "rule", "explanation"])

    whole = scale[scale["level"] == "scale"]
    notes = []
    untestable = table.loc[table["n_e_critical"].isna(), "item"].tolist()
    if untestable:
        notes.append(f"{len(untestable)} item(s) rated by fewer than 5 experts: no CVR is significant at alpha = "
                     f"{alpha:g}, so the CVR is not tested for them ({', '.join(untestable[:10])})")
    not_rated = [i for i in items if i not in set(rated)]
    if not_rated:
        notes.append(f"{len(not_rated)} item(s) of the instrument were not rated ({', '.join(not_rated[:10])})")
    sorted_any = bool(ratings["assigned"].notna().any())
    if not sorted_any:
        notes.append("no item-sort answers (column 'assigned' absent or empty): p_sa and c_sv not computed")
    elif (table["n_sort"] == 0).any():
        unsorted = table.loc[table["n_sort"] == 0, "item"].tolist()
        notes.append(f"{len(unsorted)} item(s) rated but sorted by nobody ({', '.join(unsorted[:10])})")
    summary = {
        "n_experts": int(ratings["expert"].nunique()),
        "n_items_rated": len(table),
        "items_not_rated": not_rated,
        "item_sort": sorted_any,
        "sort_choices": k,
        "essential_min": essential_min, "icvi_min": icvi_min, "alpha": alpha,
        "n_flagged": int(table["flagged"].sum()),
        "flagged_items": table.loc[table["flagged"], "item"].tolist(),
        "reason_counts": {r: int((flags["reason"] == r).sum()) for r in REASONS},
        "s_cvi_ave": float(whole["s_cvi_ave"].iloc[0]) if len(whole) else math.nan,
        "s_cvi_ua": float(whole["s_cvi_ua"].iloc[0]) if len(whole) else math.nan,
        "notes": notes,
    }
    return ContentResult(items=table, scale=scale, flags=flags, summary=summary)


def apa_content_table(items: pd.DataFrame) -> pd.DataFrame:
    """The per-item table as a paper prints it (strings; APA 7: bounded statistics without the
    leading zero, two decimals). Columns: Item, Construct, N, I-CVI, κ*, Evaluation, CVR,
    CVR crit., p_sa, c_sv, Flag."""
    from analysis.apa import apa_table, fmt_bounded

    t = items.copy()
    t["flag"] = t["reasons"].map(lambda r: ", ".join(x.replace("_", " ") for x in r.split(";")) if r else "")
    return apa_table(t, {"item": "text", "construct": "text", "n_experts": "int", "i_cvi": "bounded",
                         "kappa": "bounded", "kappa_band": "text", "cvr": "bounded", "cvr_critical": "bounded",
                         "p_sa": "bounded", "c_sv": "bounded", "flag": "text"},
                     headers={"item": "Item", "construct": "Construct", "n_experts": "N", "i_cvi": "I-CVI",
                              "kappa": "κ*", "kappa_band": "Evaluation", "cvr": "CVR", "cvr_critical": "CVR crit.",
                              "p_sa": "p_sa", "c_sv": "c_sv", "flag": "Flag"})


# --------------------------------------------------------------------------- simulated panel

def choose_ambiguous(items: Mapping[str, str], n_ambiguous: int, rng: np.random.Generator) -> list[str]:
    """``n_ambiguous`` items to make ambiguous, each from a different construct where possible,
    in the instrument's order."""
    by_construct: dict[str, list[str]] = {}
    for i, c in items.items():
        by_construct.setdefault(c, []).append(i)
    constructs = list(by_construct)
    if not 0 <= n_ambiguous <= len(items):
        raise InputError(f"ambiguous: need 0..{len(items)} items, got {n_ambiguous}")
    picked_constructs = list(rng.permutation(constructs))
    chosen = []
    while len(chosen) < n_ambiguous:
        for c in picked_constructs:
            left = [i for i in by_construct[c] if i not in chosen]
            if left and len(chosen) < n_ambiguous:
                chosen.append(left[int(rng.integers(len(left)))])
    order = list(items)
    return sorted(chosen, key=order.index)


def simulate_panel(items: Mapping[str, str], neighbours: Mapping[str, str], ambiguous: Sequence[str],
                   rng: np.random.Generator, n_experts: int = 12, *, p_relevant: float = 0.98,
                   p_relevant_ambiguous: float = 0.55, p_correct: float = 0.98, p_neighbour: float = 0.45,
                   p_correct_ambiguous: float = 0.45) -> pd.DataFrame:
    """A simulated expert panel (long ratings table with ``assigned``) with planted ambiguous items.

    A clear item is rated 3 or 4 with probability ``p_relevant`` (4 with .7 of that, else 2 or 1)
    and sorted into its construct with ``p_correct`` (else into a random other construct). An
    ambiguous item is rated 3-4 with ``p_relevant_ambiguous`` only and sorted into its construct
    with ``p_correct_ambiguous``, into ``neighbours[construct]`` with ``p_neighbour``, else into a
    random other construct. Row order: experts, then items in the instrument's order.
    """
    constructs = list(dict.fromkeys(items.values()))
    amb = set(ambiguous)
    rows = []
    for e in range(1, n_experts + 1):
        for item, c in items.items():
            is_amb = item in amb
            if rng.random() < (p_relevant_ambiguous if is_amb else p_relevant):
                rel = 4 if rng.random() < 0.7 else 3
            else:
                rel = 2 if rng.random() < 0.7 else 1
            u = rng.random()
            others = [x for x in constructs if x != c]
            if is_amb:
                if u < p_correct_ambiguous:
                    assigned = c
                elif u < p_correct_ambiguous + p_neighbour:
                    assigned = neighbours[c]
                else:
                    assigned = others[int(rng.integers(len(others)))]
            else:
                assigned = c if u < p_correct else others[int(rng.integers(len(others)))]
            rows.append((f"E{e:02d}", item, rel, assigned))
    return pd.DataFrame(rows, columns=["expert", "item", "relevance", "assigned"])


def recovery(flagged: Sequence[str], planted: Sequence[str]) -> dict:
    """Precision (share of flagged items that were planted) and recall (share of planted items
    flagged); NaN when the denominator is 0."""
    f, p = set(flagged), set(planted)
    tp = len(f & p)
    return {"true_positives": tp, "false_positives": sorted(f - p), "missed": sorted(p - f),
            "precision": tp / len(f) if f else math.nan, "recall": tp / len(p) if p else math.nan}
