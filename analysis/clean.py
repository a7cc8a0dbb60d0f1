"""Turn the raw cells of a survey export into analysis-ready values, logging every change.

Policy for a cell that cannot be used (documented here, applied everywhere):

- an item or attention-check cell that is not a number and not one of the scale's labels
  (compared without case and surrounding space), or a number outside the scale, becomes
  missing and is logged in the cell-problem table with its row, column and value;
- a context cell that is not one of the allowed values (or, for Qualtrics numeric exports, not a
  valid choice number ``1..k`` of the ``k`` allowed values) becomes missing and is logged; a
  number outside ``min..max`` likewise;
- a duration that is not a positive number becomes missing and is logged;
- an empty id becomes ``row<N>`` and is logged.

Structural problems stop the stage instead (:class:`DataError`): an item column that is
missing or has no usable value at all, a declared id column that is absent. They are
collected and reported together.

Columns that carry personal data (the instrument's ``personal_data`` and Qualtrics' own,
:data:`PERSONAL_COLUMNS`) are dropped first; columns the instrument does not know are never
written (their names are listed in the notes), so no unknown column can carry personal data
into a derived file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import InputError
from instrument.schema import Instrument, Scale

__all__ = [
    "DataError",
    "PERSONAL_COLUMNS",
    "Prepared",
    "REVERSE_MARKER",
    "prepare",
    "recode_reverse",
]

QUALTRICS_ID = "ResponseId"
QUALTRICS_DURATION = "Duration (in seconds)"
PERSONAL_COLUMNS = (
    "IPAddress", "RecipientEmail", "RecipientFirstName", "RecipientLastName", "ExternalReference",
    "ExternalDataReference", "LocationLatitude", "LocationLongitude", "Email", "FirstName", "LastName",
)
REVERSE_MARKER = "reverse_recoded"
PASS_THROUGH = ("simulated",)
PROBLEM_COLUMNS = ["row", "respondent_id", "column", "value", "problem"]
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


class DataError(InputError):
    """Structural problems with a data file; ``problems`` lists each one."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{'; ...' if len(problems) > 4 else ''})" \
            if len(problems) > 1 else ""
        super().__init__(f"{source}: {problems[0]}{more}")


@dataclass(frozen=True)
class Prepared:
    """Values ready for screening.

    Attributes
    ----------
    data : DataFrame
        ``row`` (1-based data row of the file), the id column, context, items and attention
        checks as numbers (as answered: reverse keys not yet recoded), duration, and
        pass-through columns such as ``simulated``.
    problems : DataFrame
        One row per cell set missing: ``row, respondent_id, column, value, problem``.
    notes : tuple of str
        What was done that a reader should know (columns ignored, defaults used).
    id_column : str
        The column that identifies respondents in ``data``.
    """

    data: pd.DataFrame
    problems: pd.DataFrame
    notes: tuple[str, ...]
    id_column: str


def prepare(cells: pd.DataFrame, instrument: Instrument, source: str = "data", qualtrics: bool = False,
            id_column: str | None = None) -> Prepared:
    """Match an export's columns to ``instrument`` and coerce every cell.

    Parameters
    ----------
    cells : DataFrame
        Raw cells as text (``None`` for empty), one row per submission.
    instrument : Instrument
    source : str
        The file name, for messages.
    qualtrics : bool
        The export came from Qualtrics: ``ResponseId`` and ``Duration (in seconds)`` stand in
        for the instrument's id and duration columns when those are absent, and categorical
        context answers may be choice numbers.
    id_column : str, optional
        Overrides the instrument's ``id_column``.

    Raises
    ------
    DataError
        Missing item columns, a missing id column, an item without any usable answer.
    """
    notes: list[str] = []
    personal = [c for c in cells.columns if c in set(instrument.personal_data) | set(PERSONAL_COLUMNS)]
    cells = cells.drop(columns=personal)
    if personal:
        notes.append(f"dropped {len(personal)} personal-data column(s): {', '.join(personal)}")
    if REVERSE_MARKER in cells.columns:
        raise DataError(source, [f"column {REVERSE_MARKER!r} shows the reverse-keyed items are already recoded; "
                                 "pass the raw export, not the output of the clean stage"])

    problems: list[str] = []
    missing_items = [i for i in instrument.item_ids if i not in cells.columns]
    if missing_items:
        hint = (f" (the file was read as a single column {cells.columns[0][:30]!r}...: is it delimited by "
                "something other than a comma, semicolon or tab?)") if len(cells.columns) == 1 else ""
        problems.append(f"{len(missing_items)} item column(s) missing: {', '.join(missing_items[:12])}"
                        f"{' ...' if len(missing_items) > 12 else ''}; the file must have a column per item id{hint}")

    id_col = id_column or instrument.id_column
    if id_col and id_col not in cells.columns:
        if qualtrics and QUALTRICS_ID in cells.columns:
            notes.append(f"id column {id_col!r} not found; using Qualtrics' {QUALTRICS_ID}")
            cells = cells.rename(columns={QUALTRICS_ID: id_col})
        else:
            problems.append(f"id column {id_col!r} not found; name it in the instrument (id_column) or pass --id-column")
    if id_col is None:
        id_col = "respondent_id"
        if id_col in cells.columns:
            notes.append(f"no id column declared; using the file's {id_col!r} column")
        else:
            notes.append("no id column declared: respondents are identified by row number")
    duration_col = instrument.duration_column
    if duration_col and duration_col not in cells.columns and qualtrics and QUALTRICS_DURATION in cells.columns:
        cells = cells.rename(columns={QUALTRICS_DURATION: duration_col})
        notes.append(f"using Qualtrics' {QUALTRICS_DURATION!r} as {duration_col!r}")
    if problems:
        raise DataError(source, problems)

    n = len(cells)
    rows = np.arange(1, n + 1)
    out = {"row": rows}
    log: list[tuple] = []

    ids = cells[id_col] if id_col in cells.columns else pd.Series([None] * n, dtype=object)
    ids = [f"row{r}" if _blank(v) else str(v) for r, v in zip(rows, ids)]
    for r, v in zip(rows, cells[id_col] if id_col in cells.columns else [None] * n):
        if _blank(v) and id_col in cells.columns:
            log.append((r, f"row{r}", id_col, "", "empty id; set to row number"))
    out[id_col] = ids

    def scale_column(col: str, scale: Scale) -> np.ndarray:
        lookup = {str(label).strip().lower(): value for value, label in scale.labels.items()}
        values = np.full(n, np.nan)
        for k, raw in enumerate(cells[col]):
            if _blank(raw):
                continue
            text = str(raw).strip()
            if _NUMBER.match(text):
                x = float(text.replace(",", "."))
            elif text.lower() in lookup:
                x = float(lookup[text.lower()])
            else:
                log.append((rows[k], ids[k], col, _show(text), "not a number or a scale label; set missing"))
                continue
            if not scale.contains(x):
                log.append((rows[k], ids[k], col, _show(text), f"outside the scale ({_range(scale)}); set missing"))
                continue
            values[k] = x
        return values

    absent_context = [q.id for q in instrument.context if q.id not in cells.columns]
    if absent_context:
        notes.append(f"context column(s) not in the file: {', '.join(absent_context)}")
    for q in instrument.context:
        if q.id in cells.columns and q.position == "before":
            out[q.id] = _context_column(cells[q.id], q, qualtrics, rows, ids, log)
    for item in instrument.items:
        out[item.id] = scale_column(item.id, item.scale)
    absent_checks = [c.id for c in instrument.attention_checks if c.id not in cells.columns]
    if absent_checks:
        notes.append(f"attention check column(s) not in the file: {', '.join(absent_checks)}")
    for check in instrument.attention_checks:
        if check.id in cells.columns:
            out[check.id] = scale_column(check.id, check.scale)
    for q in instrument.context:
        if q.id in cells.columns and q.position == "after":
            out[q.id] = _context_column(cells[q.id], q, qualtrics, rows, ids, log)
    if duration_col:
        if duration_col in cells.columns:
            dur = np.full(n, np.nan)
            for k, raw in enumerate(cells[duration_col]):
                if _blank(raw):
                    continue
                text = str(raw).strip()
                if _NUMBER.match(text) and float(text.replace(",", ".")) > 0:
                    dur[k] = float(text.replace(",", "."))
                else:
                    log.append((rows[k], ids[k], duration_col, _show(text), "not a positive number of seconds; set missing"))
            out[duration_col] = dur
        else:
            notes.append(f"duration column {duration_col!r} not in the file: the speeder screen cannot run")
    for col in PASS_THROUGH:
        if col in cells.columns:
            out[col] = cells[col].to_numpy()

    data = pd.DataFrame(out)
    empty = [i for i in instrument.item_ids if data[i].isna().all()]
    if empty:
        raise DataError(source, [f"item {i!r} has no usable answer in any row (all empty or invalid)" for i in empty])
    known = {"row", id_col, duration_col, QUALTRICS_ID, QUALTRICS_DURATION, *instrument.item_ids,
             *(c.id for c in instrument.attention_checks), *(q.id for q in instrument.context), *PASS_THROUGH}
    ignored = [c for c in cells.columns if c not in known]
    if ignored:
        notes.append(f"ignored {len(ignored)} column(s) the instrument does not define (never written): "
                     f"{', '.join(ignored[:10])}{' ...' if len(ignored) > 10 else ''}")
    problems_df = pd.DataFrame(log, columns=PROBLEM_COLUMNS)
    return Prepared(data=data, problems=problems_df, notes=tuple(notes), id_column=id_col)


def _context_column(col: pd.Series, q, qualtrics: bool, rows, ids, log) -> np.ndarray:
    n = len(col)
    if q.type == "text":
        return col.to_numpy(dtype=object)
    if q.type in ("integer", "number"):
        values = np.full(n, np.nan)
        for k, raw in enumerate(col):
            if _blank(raw):
                continue
            text = str(raw).strip()
            x = float(text.replace(",", ".")) if _NUMBER.match(text) else None
            bad = x is None or (q.type == "integer" and not float(x).is_integer()) \
                or (q.min is not None and x < q.min) or (q.max is not None and x > q.max)
            if bad:
                log.append((rows[k], ids[k], q.id, _show(text), f"not an allowed answer ({q.describe()}); set missing"))
            else:
                values[k] = x
        return values
    allowed = {str(v).strip().lower(): v for v in q.values}
    values = np.empty(n, dtype=object)
    values[:] = None
    for k, raw in enumerate(col):
        if _blank(raw):
            continue
        text = str(raw).strip()
        if text.lower() in allowed:
            values[k] = allowed[text.lower()]
        elif qualtrics and text.isdigit() and 1 <= int(text) <= len(q.values):
            values[k] = q.values[int(text) - 1]
        else:
            log.append((rows[k], ids[k], q.id, _show(text), f"not an allowed value ({q.describe()}); set missing"))
    return values


def recode_reverse(data: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """Reverse-key the instrument's reverse items (``min + max - x``), exactly once.

    The result carries a ``reverse_recoded`` column set to 1; data that already carry it are
    refused, so a second recoding cannot happen silently.

    Raises
    ------
    ValueError
        If ``data`` were already recoded.
    """
    if REVERSE_MARKER in data.columns:
        raise InputError(f"the reverse-keyed items are already recoded (column {REVERSE_MARKER!r}); "
                         "recoding twice would undo it")
    out = data.copy()
    for item in instrument.items:
        if item.reverse and item.id in out.columns:
            out[item.id] = item.scale.reverse(out[item.id])
    out[REVERSE_MARKER] = 1
    return out


def _blank(v) -> bool:
    """An empty cell: None, NaN or only white space."""
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def _show(text: str) -> str:
    """A cell value as logged: at most 40 characters."""
    return text if len(text) <= 40 else text[:37] + "..."


def _range(scale: Scale) -> str:
    if scale.type == "likert":
        return f"{scale.min}..{scale.max}"
    lo = "-inf" if scale.min is None else f"{scale.min:g}"
    hi = "inf" if scale.max is None else f"{scale.max:g}"
    return f"{lo}..{hi}"


# --------------------------------------------------------------------------- screening

SCREENS = ("attention", "speeder", "longstring", "irv", "mahalanobis", "duplicate", "missing")
# The simulation truth each screen is scored against (tests and metrics on simulated data).
TRUTH_OF = {
    "attention": "failed_attention_check", "speeder": "speeder", "longstring": "straightliner",
    "irv": "straightliner", "mahalanobis": "random_responder", "duplicate": "duplicate",
}
EXCLUSION_COLUMNS = ["row", "respondent_id", "screen", "value"]


@dataclass(frozen=True)
class ScreenParams:
    """Screen settings (``params.yaml`` section ``clean``); ``null``/``false`` switches a screen off.

    ``speeder_fraction``: share of the median completion time under which a respondent is a
    speeder. ``longstring_share``: longest identical run, as a share of the items, that flags.
    ``irv_min``: response SD under which a respondent flags. ``mahalanobis_alpha``: p-value of
    D^2 under which a respondent flags. ``max_missing_share``: share of unanswered items above
    which a respondent flags.
    """

    attention_checks: bool = True
    speeder_fraction: float | None = 0.333
    longstring_share: float | None = 0.5
    irv_min: float | None = 0.5
    mahalanobis_alpha: float | None = 0.001
    duplicates: bool = True
    max_missing_share: float | None = 0.5


def parse_screen_params(raw: dict | None) -> ScreenParams:
    """Build :class:`ScreenParams` from the ``clean`` mapping; ValueError names the bad key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError(f"clean: expected a mapping, got {raw!r}")
    known = set(ScreenParams.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise InputError(f"clean.{key}: unknown key; known keys are {', '.join(sorted(known))}")
    p = ScreenParams(**{k: (None if v is False else v) for k, v in raw.items()})
    for key in ("attention_checks", "duplicates"):
        if getattr(p, key) is None:
            object.__setattr__(p, key, False)
        elif not isinstance(getattr(p, key), bool):
            raise InputError(f"clean.{key}: expected true or false, got {getattr(p, key)!r}")
    limits = {"speeder_fraction": (0, 1), "longstring_share": (0, 1), "mahalanobis_alpha": (0, 1),
              "max_missing_share": (0, 1), "irv_min": (0, float("inf"))}
    for key, (lo, hi) in limits.items():
        v = getattr(p, key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v < hi \
                and not (key == "longstring_share" and v == 1):
            raise InputError(f"clean.{key}: must be a number in ({lo}, {hi}) or null to switch the screen off, got {v!r}")
    return p


@dataclass(frozen=True)
class Screened:
    """The outcome of the screens.

    Attributes
    ----------
    clean : DataFrame
        Kept respondents, reverse-keyed items recoded; ``row`` links back to the file.
    exclusions : DataFrame
        One row per (excluded respondent, reason): ``row, respondent_id, screen, value``.
    flags : DataFrame
        ``row`` and one boolean column per screen that ran, for every submission.
    warnings : tuple of str
        Items without variance among kept respondents and similar findings.
    """

    clean: pd.DataFrame
    exclusions: pd.DataFrame
    flags: pd.DataFrame
    warnings: tuple[str, ...]


def screen(prepared: Prepared, instrument: Instrument, params: ScreenParams) -> Screened:
    """Run every enabled screen, exclude each flagged respondent, recode reverse keys.

    The accounting rule ``rows in = kept + excluded`` is checked here: a violation is a bug and
    raises ``RuntimeError``.
    """
    from analysis import screening

    data = prepared.data
    items = list(instrument.item_ids)
    results: dict[str, pd.DataFrame] = {}
    checks = {c.id: c.expected for c in instrument.attention_checks if c.id in data.columns}
    if params.attention_checks and checks:
        results["attention"] = screening.attention_checks(data, checks)
    duration = instrument.duration_column
    if params.speeder_fraction is not None and duration and duration in data.columns:
        results["speeder"] = screening.speeders(data[duration], params.speeder_fraction)
    if params.longstring_share is not None:
        results["longstring"] = screening.longstring(data, items, params.longstring_share)
    if params.irv_min is not None:
        results["irv"] = screening.irv(data, items, params.irv_min)
    skipped = []
    if params.mahalanobis_alpha is not None:
        result = screening.mahalanobis(data, items, params.mahalanobis_alpha)
        if result is None:
            skipped.append(f"Mahalanobis screen not run: it needs at least max(2 x {len(items)} items, 50) = "
                           f"{max(2 * len(items), 50)} respondents, the data have {len(data)}")
        else:
            results["mahalanobis"] = result
    if params.duplicates:
        compared = items + list(checks) + [q.id for q in instrument.context if q.id in data.columns]
        results["duplicate"] = screening.duplicates(data, prepared.id_column, compared, data["row"])
    if params.max_missing_share is not None:
        results["missing"] = screening.missing_share(data, items, params.max_missing_share)

    flags = pd.DataFrame({"row": data["row"], **{k: r["flagged"] for k, r in results.items()}})
    excluded = flags[list(results)].any(axis=1).to_numpy() if results else np.zeros(len(data), dtype=bool)
    records = []
    for name, r in results.items():
        for k in np.flatnonzero(r["flagged"].to_numpy()):
            records.append((int(data["row"].iat[k]), data[prepared.id_column].iat[k], name, _as_value(r["value"].iat[k])))
    exclusions = pd.DataFrame(records, columns=EXCLUSION_COLUMNS).sort_values(["row", "screen"], kind="stable")
    kept = data.loc[~excluded].drop(columns=list(checks))
    clean = recode_reverse(kept, instrument).reset_index(drop=True)

    n_in, n_kept, n_out = len(data), len(clean), int(excluded.sum())
    rows_out = set(exclusions["row"])
    if n_in != n_kept + n_out or rows_out & set(clean["row"]) or rows_out | set(clean["row"]) != set(data["row"]):
        raise RuntimeError(f"accounting rule broken: {n_in} rows in, {n_kept} kept + {n_out} excluded")
    warnings = tuple(skipped) + tuple(f"item {i!r} has no variance among the kept respondents (every answer {clean[i].dropna().iat[0]:g})"
                     for i in items if clean[i].nunique() == 1)
    return Screened(clean=clean, exclusions=exclusions.reset_index(drop=True), flags=flags.reset_index(drop=True),
                    warnings=warnings)


def score_screens(flags: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Precision and recall of each screen against a simulation's truth table.

    ``truth`` is ``truth_respondents.csv`` of ``gapscale simulate`` (matched on ``row``).
    Also returns the share of the respondents the simulation left clean that were excluded.
    """
    t = truth.set_index("row").loc[flags["row"]]
    out = {}
    for name, target in TRUTH_OF.items():
        if name not in flags.columns:
            continue
        pred = flags[name].to_numpy(dtype=bool)
        true = t[target].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        tp, fp, fn = int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())
        out[name] = {
            "truth": target, "flagged": int(pred.sum()), "true_positives": tp,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
    screens = [c for c in flags.columns if c != "row"]
    excluded = flags[screens].any(axis=1).to_numpy()
    clean = t["clean"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    out["clean_excluded_share"] = float(excluded[clean].mean()) if clean.any() else None
    return out


def _as_value(v):
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v
