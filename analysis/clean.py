"""Turn the raw cells of a survey export into analysis-ready values, logging every change.

Policy for a cell that cannot be used as it is (documented here, applied everywhere); each
such cell is one row of the cell-problem table (``row, respondent_id, column, value, problem``):

- an item or attention-check cell that is not a number and not one of the scale's labels
  (compared without case and surrounding space), or a number outside the scale, becomes
  missing and is logged;
- a context cell that is not one of the allowed values (or, for Qualtrics numeric exports, not a
  valid choice number ``1..k`` of the ``k`` allowed values) becomes missing and is logged; a
  number outside ``min..max`` likewise;
- a duration that is not a positive number becomes missing and is logged;
- a number is ASCII digits with an optional sign, ``.`` decimal point and exponent; it must be
  finite: ``inf``, ``nan``, ``Infinity`` or ``1e999`` are not numbers and are set missing and
  logged;
- a number written with a decimal comma (``3,0``) or with non-ASCII digits (``٣``, ``３``) is
  read as that number and **logged** ("decimal comma; read as 3"), so no cell changes silently;
- a cell an SPSS file declares missing (user-missing codes such as 98/99) becomes missing and is
  logged with the code;
- an empty id becomes ``row<N>`` and is logged;
- an answer outside the scale that the item offers (``scale.outside`` in the instrument: "Not
  applicable", "Don't know"), given as its code or its label, becomes missing and is **not**
  logged as a problem: it is an answer the respondent chose. It is counted per item and option
  (:func:`outside_answers`) and per respondent. A code the item does not offer (an N/A code on an
  item without N/A) is outside the scale like any other number. An outside option's code wins
  over an SPSS file's user-missing declaration of the same code.

Answers outside the scale and the missing-data screen: ``max_missing_share`` counts only items
left empty or unusable (skipped), never answers outside the scale, so a respondent who says
"Not applicable" or "Don't know" is not excluded for it. Such answers are missing in the analysis
(FIML uses the rest of the respondent's answers); a kept respondent without a single usable item
answer is named in the stage's warnings.

A logged value is cut to 40 characters; a value that looks like personal data (an e-mail
address, a phone number, an IP address) is not shown at all.

Structural problems stop the stage instead (:class:`DataError`): an item column that is
missing or has no usable value at all, a declared id column that is absent, an id column that
is an item (or another column the instrument defines), an id column where more than half the
rows repeat an earlier id (:data:`MAX_DUPLICATE_ID_SHARE`). They are collected and reported
together.

Personal data
-------------
Columns that carry personal data are dropped first: the instrument's ``personal_data``,
Qualtrics' own (:data:`PERSONAL_COLUMNS`), and the answers to context questions that are
personal (free text unless the instrument says ``personal: false``). Columns the instrument
does not know are never written (their names are listed in the notes). So every output holds
only instrument-defined columns: ``row``, ``respondent_id``, context, items, ``duration_s``,
``simulated``.

Respondent ids are pseudonymised by default (:class:`IdParams`): with a key (bytes kept outside
the data, from a key file or an environment variable) an id becomes ``p`` + the first 16 hex
digits of HMAC-SHA256(key, id) -- the same id gives the same pseudonym in every run with that
key, so waves can be linked; without a key it becomes ``row<N>``, its row in the file. The
original ids live only in memory (the duplicate screen compares them) and in the mapping file a
researcher asks for. ``respondent_ids: keep`` writes the ids as they are, for ids that do not
identify anyone (a platform's random response ids); ids that look like e-mail addresses, phone
numbers or IP addresses are refused even then.

Organisations (the instrument's ``cluster_column``) are always pseudonymised, whatever
``respondent_ids`` says, since an organisation's name identifies it: each distinct value (white
space trimmed and collapsed, case ignored, so ``ACME  Ltd`` and ``acme ltd`` are one organisation)
becomes ``c`` + 16 hex digits of HMAC-SHA256(key, ``"cluster:" + value``) with a key, else
``cluster<K>`` numbered in order of first appearance. The column is written as ``cluster_id``;
an empty cell leaves it missing (logged) and the respondent out of the design effect only.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.checks import check_known_keys
from analysis.errors import InputError
from instrument.schema import Instrument, Scale

__all__ = [
    "CLUSTER_COLUMN",
    "DataError",
    "IdParams",
    "MAX_DUPLICATE_ID_SHARE",
    "PERSONAL_COLUMNS",
    "Prepared",
    "REVERSE_MARKER",
    "cluster_pseudonyms",
    "looks_personal",
    "outside_answers",
    "parse_clean_params",
    "parse_number",
    "parse_screen_params",
    "prepare",
    "pseudonym",
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
ID_COLUMN = "respondent_id"      # the id column of every output, whatever the export called it
CLUSTER_COLUMN = "cluster_id"    # the organisation of every output (pseudonymised), from the instrument's cluster_column
DURATION_COLUMN = "duration_s"   # the duration column of every output
PROBLEM_COLUMNS = ["row", "respondent_id", "column", "value", "problem"]
MAX_DUPLICATE_ID_SHARE = 0.5
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_COMMA_NUMBER = re.compile(r"^[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?$", re.ASCII)
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2},\d{3}$", re.ASCII)  # 1,234: a decimal comma or a thousands separator?
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"^\+?\(?\d[\d\s().\-/]{5,}\d$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class DataError(InputError):
    """Structural problems with a data file; ``problems`` lists each one."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{'; ...' if len(problems) > 4 else ''})" \
            if len(problems) > 1 else ""
        super().__init__(f"{source}: {problems[0]}{more}")


@dataclass(frozen=True)
class IdParams:
    """How respondent ids reach the outputs (``params.yaml`` section ``clean``, all optional).

    ``respondent_ids``: ``pseudonymise`` (the default) or ``keep``. ``id_key_env``: the
    environment variable holding the pseudonymisation key (default ``GAPSCALE_ID_KEY``).
    ``id_key_file``: a file holding the key (its bytes, surrounding white space stripped), kept
    outside the data and the repository. The key must be at least 16 bytes.
    """

    respondent_ids: str = "pseudonymise"
    id_key_env: str = "GAPSCALE_ID_KEY"
    id_key_file: str | None = None


def looks_personal(text: str) -> str | None:
    """What personal datum ``text`` looks like (``"an e-mail address"``, ...), or None."""
    t = str(text).strip()
    if "@" in t and any(_EMAIL.fullmatch(tok) for tok in t.split() if "@" in tok):  # linear in len(t)
        return "an e-mail address"
    if _IPV4.match(t):
        return "an IP address"
    if _PHONE.match(t) and sum(ch.isdigit() for ch in t) >= 7 and not t.isdigit():
        return "a phone number"
    return None


def pseudonym(respondent_id: str, row: int, key: bytes | None) -> str:
    """The pseudonym of one id: ``p`` + 16 hex digits of HMAC-SHA256(key, id), or ``row<N>``
    without a key.

    In R: ``digest::hmac(key, id, "sha256")`` gives the same hex digits (as does
    ``printf ID | openssl dgst -sha256 -hmac KEY``).
    """
    if key is None:
        return f"row{row}"
    return "p" + hmac.new(key, str(respondent_id).encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def cluster_pseudonyms(values, key: bytes | None) -> np.ndarray:
    """Pseudonyms of organisation names (the instrument's ``cluster_column``), one per value.

    A value is trimmed, its inner white space collapsed and its case folded, so spellings that
    differ only in these are one organisation. With a key it becomes ``c`` + 16 hex digits of
    HMAC-SHA256(key, ``"cluster:" + value``) (the prefix keeps an organisation's pseudonym apart
    from a respondent's with the same text); without one, ``cluster<K>`` numbered in order of
    first appearance. Empty values (None, NaN, white space) stay None.

    In R: ``digest::hmac(key, paste0("cluster:", tolower(value)), "sha256")`` gives the hex digits.
    """
    arr = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    norm = [None if _blank(v) else " ".join(str(v).split()).casefold() for v in uniques]
    made: dict[str, str] = {}
    for t in norm:  # in order of first appearance (factorize keeps it)
        if t is not None and t not in made:
            made[t] = ("c" + hmac.new(key, ("cluster:" + t).encode("utf-8"), hashlib.sha256).hexdigest()[:16]
                       if key is not None else f"cluster{len(made) + 1}")
    table = np.array([None if t is None else made[t] for t in norm] + [None], dtype=object)
    return table[codes]


def parse_number(text: str) -> tuple[float | None, str | None]:
    """Read a cell as a finite number: ``(value, note)``; ``(None, None)`` when it is not one.

    ASCII digits, optional sign, ``.`` decimal point and exponent are read as they are
    (``note`` None). A decimal comma (``3,5``) and non-ASCII decimal digits (Arabic-Indic,
    full-width, ...) are read too, with a note saying what was changed, for the cell log.
    ``inf``, ``nan`` and numbers that overflow to infinity (``1e999``) are not numbers, nor is
    ``1,234`` (a decimal comma or a thousands separator: it cannot be told).
    """
    t = str(text).strip()
    notes = []
    if any(ch.isdigit() and not ch.isascii() for ch in t):
        try:
            t = "".join(str(unicodedata.decimal(ch)) if ch.isdigit() and not ch.isascii() else ch for ch in t)
        except ValueError:  # a digit-like character without a decimal value (superscripts)
            return None, None
        notes.append("non-ASCII digits")
    if not _NUMBER.match(t):
        if _COMMA_NUMBER.match(t) and not _THOUSANDS.match(t):
            t = t.replace(",", ".")
            notes.append("decimal comma")
        else:
            return None, None
    x = float(t)
    if not np.isfinite(x):
        return None, None
    return x, ("; ".join(notes) + f"; read as {x:g}") if notes else None


@dataclass(frozen=True)
class Prepared:
    """Values ready for screening.

    Attributes
    ----------
    data : DataFrame
        ``row`` (1-based data row of the file), ``respondent_id`` (pseudonymised unless ids are
        kept), context, items and attention checks as numbers (as answered: reverse keys not yet
        recoded), ``duration_s``, and pass-through columns such as ``simulated``.
    problems : DataFrame
        One row per cell set missing or changed: ``row, respondent_id, column, value, problem``.
    notes : tuple of str
        What was done that a reader should know (columns ignored, defaults used).
    id_column : str
        The column that identifies respondents in ``data`` (``respondent_id``).
    original_ids : Series
        The ids as the file has them (empty ones as ``row<N>``), aligned with ``data``: for the
        duplicate screen and the mapping file only, never written with the data.
    duration_column : str or None
        ``duration_s`` when the file has a completion time, else None.
    duration_missing : str or None
        Why there is no completion time (for the warning of a speeder screen that cannot run).
    outside : DataFrame
        Aligned with ``data``, one ``int8`` column per item that offers answers outside the scale:
        0 for a cell that is not one, else ``k`` for ``instrument.outside_options[k - 1]``.
    """

    data: pd.DataFrame
    problems: pd.DataFrame
    notes: tuple[str, ...]
    id_column: str
    original_ids: pd.Series | None = None
    duration_column: str | None = None
    duration_missing: str | None = None
    outside: pd.DataFrame | None = None


def prepare(cells: pd.DataFrame, instrument: Instrument, source: str = "data", qualtrics: bool = False,
            id_column: str | None = None, declared_missing: dict | None = None, ids: IdParams | None = None,
            key: bytes | None = None) -> Prepared:
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
    declared_missing : dict, optional
        Column -> list of ``(lo, hi)`` ranges the file declares missing (SPSS user-missing
        values); a matching cell is set missing and logged.
    ids : IdParams, optional
        ``keep`` or ``pseudonymise`` (the default).
    key : bytes, optional
        The pseudonymisation key; without it pseudonyms are row numbers.

    Raises
    ------
    DataError
        Missing item columns, a missing id column, an id column that is an item or repeats its
        ids in most rows, an item without any usable answer.
    """
    ids = ids or IdParams()
    declared_missing = declared_missing or {}
    notes: list[str] = []
    private_context = [q.id for q in instrument.context if q.personal]
    personal = [c for c in cells.columns if c in set(instrument.personal_data) | set(PERSONAL_COLUMNS)]
    answers = [c for c in cells.columns if c in private_context and c not in personal]
    requested = id_column or instrument.id_column
    # An id column that is personal data (a panel's e-mail column) still identifies respondents:
    # it is kept in memory to deduplicate and pseudonymise, and never written as it is.
    personal_ids = cells[requested] if requested in personal else None
    cluster_col = instrument.cluster_column
    personal_clusters = cells[cluster_col] if cluster_col in personal else None
    cells = cells.drop(columns=personal + answers)
    if personal_ids is not None:
        cells[requested] = personal_ids
        notes.append(f"id column {requested!r} is personal data: used only to find duplicates and make pseudonyms")
    if personal_clusters is not None:
        cells[cluster_col] = personal_clusters
    if personal:
        notes.append(f"dropped {len(personal)} personal-data column(s): {', '.join(personal)}")
    if answers:
        notes.append(f"dropped the answers to {len(answers)} personal context question(s) (free text unless the "
                     f"instrument says personal: false): {', '.join(answers)}")
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

    defined = {**{i: "an item" for i in instrument.item_ids},
               **{c.id: "an attention check" for c in instrument.attention_checks},
               **{q.id: "a context question" for q in instrument.context}}
    if instrument.duration_column:
        defined[instrument.duration_column] = "the duration column"
    id_col = id_column or instrument.id_column
    if id_col in defined:
        problems.append(f"id column {id_col!r} is {defined[id_col]} of the instrument; name the column that "
                        "identifies respondents (--id-column or id_column in the instrument)")
    elif id_col and id_col not in cells.columns:
        if qualtrics and QUALTRICS_ID in cells.columns:
            notes.append(f"id column {id_col!r} not found; using Qualtrics' {QUALTRICS_ID}")
            id_col = QUALTRICS_ID
        else:
            problems.append(f"id column {id_col!r} not found; name it in the instrument (id_column) or pass --id-column")
    if id_col is None:
        if ID_COLUMN in cells.columns and ID_COLUMN not in defined:
            id_col = ID_COLUMN
            notes.append(f"no id column declared; using the file's {ID_COLUMN!r} column")
        elif qualtrics and QUALTRICS_ID in cells.columns:
            id_col = QUALTRICS_ID
            notes.append(f"no id column declared; using Qualtrics' {QUALTRICS_ID}")
        else:
            notes.append("no id column declared: respondents are identified by row number")
    if cluster_col and cluster_col not in cells.columns:
        problems.append(f"cluster column {cluster_col!r} (the organisation of each respondent) not found; add it to "
                        "the file or remove cluster_column from the instrument")
    elif cluster_col and cluster_col == id_col:
        problems.append(f"cluster column {cluster_col!r} is also the id column; the organisation needs a column of "
                        "its own")
    for own in (ID_COLUMN, DURATION_COLUMN, *((CLUSTER_COLUMN,) if cluster_col else ())):
        if own in defined and defined[own] != "the duration column":
            problems.append(f"{own!r} is {defined[own]} of the instrument, but the clean data use that name for "
                            "their own column; rename it in the instrument")
    duration_col, duration_missing = instrument.duration_column, None
    if duration_col and duration_col not in cells.columns:
        if qualtrics and QUALTRICS_DURATION in cells.columns:
            notes.append(f"duration column {duration_col!r} not found; using Qualtrics' {QUALTRICS_DURATION!r}")
            duration_col = QUALTRICS_DURATION
        else:
            duration_missing = f"the duration column {duration_col!r} is not in the file"
            duration_col = None
    elif not duration_col:
        if qualtrics and QUALTRICS_DURATION in cells.columns:
            notes.append(f"no duration column declared; using Qualtrics' {QUALTRICS_DURATION!r}")
            duration_col = QUALTRICS_DURATION
        else:
            duration_missing = "the instrument declares no duration_column"
    if problems:
        raise DataError(source, problems)

    n = len(cells)
    rows = np.arange(1, n + 1)
    out = {"row": rows}
    log: list[tuple] = []

    # the ids, judged once per distinct text (a million rows hold a million ids, or many fewer)
    if id_col in cells.columns:
        id_codes, id_uniques = _distinct(cells[id_col])
    else:
        id_codes, id_uniques = np.full(n, -1, dtype=np.intp), np.empty(0, dtype=object)
    id_texts = np.array([None if _blank(v) else str(v).strip() for v in id_uniques] + [None], dtype=object)
    blank = np.equal(id_texts, None)[id_codes]
    original = id_texts[id_codes]
    original[blank] = [f"row{r}" for r in rows[blank]]
    if id_col in cells.columns and n:
        present = np.unique(id_codes[~blank])
        repeats = int((~blank).sum()) - len(set(id_texts[present]))  # rows whose id an earlier row has
        if repeats / n > MAX_DUPLICATE_ID_SHARE:
            raise DataError(source, [f"id column {id_col!r}: {repeats} of {n} rows repeat an earlier id (more than "
                                     f"{MAX_DUPLICATE_ID_SHARE:.0%}); is it really the respondent id? Name the right "
                                     "column (--id-column or id_column in the instrument)"])
    if ids.respondent_ids == "keep":
        kinds = np.array([None if t is None else looks_personal(t) for t in id_texts], dtype=object)[id_codes]
        kinds[blank] = [looks_personal(v) for v in original[blank]]
        for k in np.flatnonzero(np.not_equal(kinds, None))[:1]:
            raise DataError(source, [f"id column {id_col!r}: the id in row {rows[k]} looks like {kinds[k]}; ids that "
                                     "identify people cannot be kept: leave clean.respondent_ids at pseudonymise"])
        shown = original
    else:
        if key is None:  # pseudonym(id, row, None) is the row number, for every row
            shown = np.array([f"row{r}" for r in rows], dtype=object)
        else:  # one HMAC per distinct id
            made = np.array([None if t is None else pseudonym(t, 0, key) for t in id_texts], dtype=object)
            shown = np.where(blank, original, made[id_codes])
        if id_col in cells.columns:
            notes.append(f"respondent ids from {id_col!r} pseudonymised "
                         f"({'keyed HMAC-SHA256' if key is not None else 'replaced by row numbers: no key given'})")
    if id_col in cells.columns:
        for k in np.flatnonzero(blank):
            r = rows[k]
            log.append((r, f"row{r}", id_col, "", "empty id; set to row number"))
    out[ID_COLUMN] = shown
    if cluster_col:
        out[CLUSTER_COLUMN] = cluster_pseudonyms(cells[cluster_col].to_numpy(dtype=object), key)
        for k in np.flatnonzero(np.equal(out[CLUSTER_COLUMN], None)):
            log.append((rows[k], shown[k], cluster_col, "", "empty organisation; left missing (not in the design effect)"))
        notes.append(f"organisations from {cluster_col!r} pseudonymised as {CLUSTER_COLUMN!r} "
                     f"({'keyed HMAC-SHA256' if key is not None else 'numbered: no key given'})")

    def missing_code(col: str, text: str) -> str | None:
        for lo, hi in declared_missing.get(col, ()):
            if isinstance(lo, str) or isinstance(hi, str):
                if text == str(lo) or text == str(hi):
                    return text
                continue
            x, _ = parse_number(text)
            if x is not None and lo <= x <= hi:
                return text
        return None

    option_number = {o.name: k for k, o in enumerate(instrument.outside_options, start=1)}
    outside_cells: dict[str, np.ndarray] = {}

    def per_value(col: str, judge, dtype=np.float64, outside=None) -> np.ndarray:
        """The column's values: ``judge(text) -> (value or None, logged problem or None)`` is
        called once per distinct cell text (a column of a million answers holds a handful of
        texts); empty cells are missing, declared-missing codes are set missing and logged.
        Logged cells are appended to the log in row order. ``outside(text)`` gives the number of
        the answer outside the scale a text is (or 0): missing, not logged, recorded in
        ``outside_cells[col]``."""
        codes, uniques = _distinct(cells[col])
        values = np.full(len(uniques) + 1, np.nan) if dtype is np.float64 else np.full(len(uniques) + 1, None, dtype=object)
        problem: list = [None] * (len(uniques) + 1)
        texts: list = [None] * (len(uniques) + 1)
        kind = np.zeros(len(uniques) + 1, dtype=np.int8)
        for j, raw in enumerate(uniques):
            if _blank(raw):
                continue
            text = str(raw).strip()
            if outside is not None and outside(text):
                kind[j] = outside(text)
                continue
            if missing_code(col, text) is not None:
                problem[j], texts[j] = (f"declared missing in the file (user-missing code {text}); set missing",
                                        _show(text))
                continue
            x, note = judge(text)
            if x is not None:
                values[j] = x
            if note:
                problem[j], texts[j] = note, _show(text)
        logged = np.array([m is not None for m in problem])
        for k in np.flatnonzero(logged[codes]):
            c = codes[k]
            log.append((rows[k], shown[k], col, texts[c], problem[c]))
        if outside is not None:
            outside_cells[col] = kind[codes]
        return values[codes]

    def scale_column(col: str, scale: Scale) -> np.ndarray:
        lookup = {str(label).strip().lower(): value for value, label in scale.labels.items()}
        offered = scale.outside_for(col)
        by_code = {float(o.code): option_number.get(o.name, 0) for o in offered}
        by_label = {o.label.strip().lower(): option_number.get(o.name, 0) for o in offered}

        def outside(text):
            x, _ = parse_number(text)
            return by_code.get(x, 0) if x is not None else by_label.get(text.lower(), 0)

        def judge(text):
            x, note = parse_number(text)
            if x is None:
                if text.lower() not in lookup:
                    return None, _not_a_number(text, "not a number or a scale label")
                x, note = float(lookup[text.lower()]), None
            if not scale.contains(x):
                return None, f"outside the scale ({_range(scale)}); set missing"
            return x, note
        return per_value(col, judge, outside=outside if offered else None)

    def context_column(q) -> np.ndarray:
        if q.type == "text":
            return per_value(q.id, lambda text: (text, None), dtype=object)
        if q.type in ("integer", "number"):
            def judge_number(text):
                x, note = parse_number(text)
                bad = x is None or (q.type == "integer" and not float(x).is_integer()) \
                    or (q.min is not None and x < q.min) or (q.max is not None and x > q.max)
                if bad:
                    return None, _not_a_number(text, f"not an allowed answer ({q.describe()})")
                return x, note
            return per_value(q.id, judge_number)
        allowed = {str(v).strip().lower(): v for v in q.values}

        def judge_choice(text):
            x, note = parse_number(text)
            whole = x is not None and float(x).is_integer()
            if text.lower() in allowed:
                return allowed[text.lower()], None
            if whole and str(int(x)) in allowed:  # "2.0" or "٢" for the value 2
                value = allowed[str(int(x))]
                return value, f"{(note or '').split(';')[0] or 'written as a decimal'}; read as {value}"
            if qualtrics and whole and 1 <= int(x) <= len(q.values):
                value = q.values[int(x) - 1]
                if note or text != str(int(x)):
                    return value, (f"{(note or '').split(';')[0] or 'written as a decimal'}"
                                   f"; read as choice {int(x)} ({value})")
                return value, None
            return None, f"not an allowed value ({q.describe()}); set missing"
        return per_value(q.id, judge_choice, dtype=object)

    absent_context = [q.id for q in instrument.context if q.id not in cells.columns and not q.personal]
    if absent_context:
        notes.append(f"context column(s) not in the file: {', '.join(absent_context)}")
    for q in instrument.context:
        if q.id in cells.columns and q.position == "before":
            out[q.id] = context_column(q)
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
            out[q.id] = context_column(q)
    if duration_col:
        def judge_duration(text):
            x, note = parse_number(text)
            if x is not None and x > 0:
                return x, note
            return None, _not_a_number(text, "not a positive number of seconds")
        dur = per_value(duration_col, judge_duration)
        out[DURATION_COLUMN] = dur
        if np.isnan(dur).all():
            duration_missing = f"the duration column {duration_col!r} has no usable value"
    for col in PASS_THROUGH:
        if col in cells.columns:
            values = cells[col].to_numpy(dtype=object)
            out[col] = np.where(pd.isna(values), None, values)

    data = pd.DataFrame(out)
    empty = [i for i in instrument.item_ids if data[i].isna().all()]
    if empty:
        raise DataError(source, [f"item {i!r} has no usable answer in any row (all empty, invalid or outside the "
                                 "scale)" for i in empty])
    known = {"row", id_col, duration_col, cluster_col, QUALTRICS_ID, QUALTRICS_DURATION, *instrument.item_ids,
             *(c.id for c in instrument.attention_checks), *(q.id for q in instrument.context), *PASS_THROUGH}
    ignored = [c for c in cells.columns if c not in known]
    if ignored:
        notes.append(f"ignored {len(ignored)} column(s) the instrument does not define (never written): "
                     f"{', '.join(_show_name(str(c)) for c in ignored[:10])}{' ...' if len(ignored) > 10 else ''}")
    problems_df = pd.DataFrame(log, columns=PROBLEM_COLUMNS)
    return Prepared(data=data, problems=problems_df, notes=tuple(notes), id_column=ID_COLUMN,
                    original_ids=pd.Series(original, index=data.index, dtype=object),
                    duration_column=DURATION_COLUMN if duration_col else None,
                    duration_missing=None if duration_col and not np.isnan(data[DURATION_COLUMN]).all()
                    else duration_missing,
                    outside=pd.DataFrame({i: outside_cells[i] for i in instrument.item_ids if i in outside_cells},
                                         index=data.index))


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
    return _recoded(data.copy(), instrument)


def _recoded(out: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """:func:`recode_reverse` in place on ``out`` (a frame of the caller's own, not yet recoded)."""
    for item in instrument.items:
        if item.reverse and item.id in out.columns:
            out[item.id] = item.scale.reverse(out[item.id])
    out[REVERSE_MARKER] = 1
    return out


def _not_a_number(text: str, problem: str) -> str:
    """The logged problem of a cell that could not be used; ``inf``, ``nan`` and overflowing
    numbers are named as what they are."""
    try:
        x = float(text)
    except (ValueError, OverflowError):
        x = 0.0
    return f"{problem}: not a finite number; set missing" if not np.isfinite(x) else f"{problem}; set missing"


def _distinct(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column's cells as (codes, distinct values), -1 for a missing cell: the categories of a
    categorical column (what :func:`pipeline.ingest.read_export` returns), else factorized."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), column.cat.categories.to_numpy(dtype=object)
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _blank(v) -> bool:
    """An empty cell: None, NaN or only white space."""
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def _show_name(text: str) -> str:
    """A column name as logged: at most 40 characters; one that looks like personal data is
    withheld."""
    kind = looks_personal(text[:200])
    if kind:
        return f"(withheld: looks like {kind})"
    return text if len(text) <= 40 else text[:37] + "..."


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d{1,9}([.,]\d{1,6})?|[.,]\d{1,6})$")


def _show(text: str) -> str:
    """A cell value as logged: a plain number (a typo such as 55 on a 1-7 scale, ``3,0``) as it
    is; any other text is withheld with its length, since text typed into an answer cell is a
    free-text answer and may identify its writer (the row and column say where it is)."""
    t = text.strip()
    if _PLAIN_NUMBER.match(t):
        return t
    kind = looks_personal(text[:200])
    return f"(withheld: looks like {kind})" if kind else f"(text withheld: {len(text)} characters)"


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


def parse_clean_params(raw: dict | None) -> tuple[ScreenParams, IdParams]:
    """The ``clean`` mapping as :class:`ScreenParams` and :class:`IdParams`; ValueError names
    the bad key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError(f"clean: expected a mapping, got {raw!r}")
    id_keys = set(IdParams.__dataclass_fields__)
    known = set(ScreenParams.__dataclass_fields__) | id_keys
    check_known_keys(raw, sorted(known), "clean")
    ids = IdParams(**{k: v for k, v in raw.items() if k in id_keys})
    if ids.respondent_ids not in ("pseudonymise", "keep"):
        raise InputError(f"clean.respondent_ids: must be pseudonymise or keep, got {ids.respondent_ids!r}")
    for key in ("id_key_env", "id_key_file"):
        v = getattr(ids, key)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise InputError(f"clean.{key}: expected a name, got {v!r}")
    screens = {k: v for k, v in raw.items() if k not in id_keys}
    return parse_screen_params(screens), ids


def parse_screen_params(raw: dict | None) -> ScreenParams:
    """Build :class:`ScreenParams` from the ``clean`` mapping's screen keys; ValueError names the
    bad key."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError(f"clean: expected a mapping, got {raw!r}")
    known = set(ScreenParams.__dataclass_fields__)
    check_known_keys(raw, sorted(known), "clean")
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
    outside : DataFrame or None
        :attr:`Prepared.outside` of the kept respondents, aligned with ``clean``.
    """

    clean: pd.DataFrame
    exclusions: pd.DataFrame
    flags: pd.DataFrame
    warnings: tuple[str, ...]
    outside: pd.DataFrame | None = None


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
    skipped = []
    if params.attention_checks and not checks:
        skipped.append("attention-check screen asked for (clean.attention_checks) but not run: "
                       + ("the instrument defines no attention checks" if not instrument.attention_checks
                          else "no attention-check column is in the file"))
    duration = prepared.duration_column
    if params.speeder_fraction is not None:
        if duration and duration in data.columns and data[duration].notna().any():
            results["speeder"] = screening.speeders(data[duration], params.speeder_fraction)
        else:
            why = prepared.duration_missing or "the file has no completion times"
            skipped.append(f"speeder screen asked for (clean.speeder_fraction {params.speeder_fraction:g}) but not run: "
                           f"{why}; declare the export's duration column (duration_column in the instrument) or set "
                           "clean.speeder_fraction: null")
    if params.longstring_share is not None:
        results["longstring"] = screening.longstring(data, items, params.longstring_share)
    if params.irv_min is not None:
        results["irv"] = screening.irv(data, items, params.irv_min)
    if params.mahalanobis_alpha is not None:
        result = screening.mahalanobis(data, items, params.mahalanobis_alpha)  # None when it cannot run
        if result is None:
            skipped.append(f"Mahalanobis screen not run: {screening.mahalanobis_unavailable(data, items)}")
        else:
            results["mahalanobis"] = result
    if params.duplicates:
        compared = items + list(checks) + [q.id for q in instrument.context if q.id in data.columns]
        originals = prepared.original_ids if prepared.original_ids is not None else data[prepared.id_column]
        results["duplicate"] = screening.duplicates(data.assign(_original_id=originals.to_numpy()), "_original_id",
                                                    compared, data["row"])
    if params.max_missing_share is not None:
        answered = prepared.outside.reindex(columns=items, fill_value=0).to_numpy() > 0 \
            if prepared.outside is not None and len(prepared.outside.columns) else None
        results["missing"] = screening.missing_share(data, items, params.max_missing_share, answered=answered)

    flags = pd.DataFrame({"row": data["row"], **{k: r["flagged"] for k, r in results.items()}})
    excluded = flags[list(results)].any(axis=1).to_numpy() if results else np.zeros(len(data), dtype=bool)
    records = []
    row_numbers, shown_ids = data["row"].to_numpy(), data[prepared.id_column].to_numpy()
    for name, r in results.items():
        values = r["value"].to_numpy()
        for k in np.flatnonzero(r["flagged"].to_numpy()):
            records.append((int(row_numbers[k]), shown_ids[k], name, _as_value(values[k])))
    exclusions = pd.DataFrame(records, columns=EXCLUSION_COLUMNS).sort_values(["row", "screen"], kind="stable")
    if REVERSE_MARKER in data.columns:
        recode_reverse(data, instrument)  # refuses recoded data
    kept = data.drop(columns=list(checks)).loc[~excluded]  # a frame of its own: recoded in place
    clean = _recoded(kept, instrument).reset_index(drop=True)

    n_in, n_kept, n_out = len(data), len(clean), int(excluded.sum())
    rows_out, rows_kept = np.unique(exclusions["row"].to_numpy()), clean["row"].to_numpy()
    if n_in != n_kept + n_out or len(np.intersect1d(rows_out, rows_kept)) \
            or not np.array_equal(np.union1d(rows_out, rows_kept), np.unique(data["row"].to_numpy())):
        raise RuntimeError(f"accounting rule broken: {n_in} rows in, {n_kept} kept + {n_out} excluded")
    warnings = tuple(skipped) + tuple(f"item {i!r} has no variance among the kept respondents (every answer {clean[i].dropna().iat[0]:g})"
                     for i in items if _constant(clean[i].to_numpy(dtype=float, na_value=np.nan)))
    outside = None if prepared.outside is None else prepared.outside.loc[~excluded].reset_index(drop=True)
    if outside is not None and len(outside.columns) and len(clean):
        blank = clean[items].isna().all(axis=1).to_numpy() & (outside.to_numpy() > 0).any(axis=1)
        if blank.any():
            warnings += (f"{int(blank.sum())} kept respondent(s) have no usable item answer (every item skipped or "
                         f"answered outside the scale), e.g. row {int(clean['row'].to_numpy()[blank][0])}; FIML gives "
                         "them no weight",)
    return Screened(clean=clean, exclusions=exclusions.reset_index(drop=True), flags=flags.reset_index(drop=True),
                    warnings=warnings, outside=outside)


def outside_answers(clean: pd.DataFrame, outside: pd.DataFrame | None, instrument: Instrument) -> pd.DataFrame:
    """Missing answers per item, split into answers outside the scale (per option) and the rest.

    Parameters
    ----------
    clean : DataFrame
        The kept respondents (:attr:`Screened.clean`).
    outside : DataFrame or None
        :attr:`Screened.outside`, aligned with ``clean`` (None: no answer outside the scale).
    instrument : Instrument

    Returns
    -------
    DataFrame
        One row per item: ``item, n`` (respondents), ``n_<name>`` per option of
        ``instrument.outside_options`` (``<NA>`` where the item does not offer it), ``n_outside``
        (their sum), ``n_skipped`` (empty or unusable cells) and ``n_missing`` (``n_outside +
        n_skipped``: the item's missing values in ``clean``).

    Notes
    -----
    In R, with the export ``d`` before recoding: ``colSums(d[, items] == 8, na.rm = TRUE)`` per
    code, and ``colSums(is.na(clean[, items]))`` for ``n_missing``.
    """
    items = list(instrument.item_ids)
    options = instrument.outside_options
    n_missing = clean[items].isna().sum(axis=0).to_numpy(dtype=np.int64)
    table = {"item": items, "n": np.full(len(items), len(clean), dtype=np.int64)}
    total = np.zeros(len(items), dtype=np.int64)
    names = {item.id: {o.name for o in item.outside} for item in instrument.items}
    for k, option in enumerate(options, start=1):
        counts = [int((outside[i].to_numpy() == k).sum()) if outside is not None and i in outside.columns else 0
                  for i in items]
        offered = [option.name in names[i] for i in items]
        total += np.asarray(counts, dtype=np.int64)
        table[f"n_{option.name}"] = pd.array([c if o else pd.NA for c, o in zip(counts, offered)], dtype="Int64")
    table["n_outside"] = total
    table["n_skipped"] = n_missing - total
    table["n_missing"] = n_missing
    return pd.DataFrame(table)


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


def _constant(x: np.ndarray) -> bool:
    """One distinct answer, missing ones left out (``Series.nunique() == 1``)."""
    answered = x[~np.isnan(x)]
    return len(answered) > 0 and answered.min() == answered.max()


def _as_value(v):
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v
