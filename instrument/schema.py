"""Load and validate an instrument: a survey scale described as a YAML file.

The minimal instrument, valid forever::

    name: Example scale
    scale: {type: likert, min: 1, max: 7, labels: {1: Strongly disagree, 7: Strongly agree}}
    id_column: respondent_id          # optional; row numbers are used when absent
    constructs:
      - id: GAP1
        label: Awareness gap
        items:
          - {id: GAP1_1, text: "...", reverse: false}

Everything else is optional: ``version``, ``description``, ``instructions`` (what a respondent
reads first), ``duration_column`` (completion time in seconds), ``personal_data`` (columns that
identify people and must never reach a derived file; these three name export columns and may be
any column name, e.g. ``Duration (in seconds)``), ``model`` (a lavaan-syntax file beside the
YAML), ``sections`` (respondent-facing headings), ``attention_checks`` (instructed-response
items with their expected answer) and ``context`` (grouping questions with their allowed values;
the answers to a ``type: text`` question are personal data, never written, unless it says
``personal: false``; any other question may say ``personal: true``).
A context question that a model uses as a covariate (a control variable) says how it is coded for
models: an ``integer``/``number`` answer is used as it is (its own column); a ``categorical`` one
says ``coding: dummy`` (one 0/1 column per value but the ``reference``, named ``<id>_<value>``,
``reference`` the first value unless given) or ``coding: ordinal`` (one column ``<id>_code`` holding
1, 2, ... in the order of ``values``). The clean stage writes these columns (see
:func:`analysis.coding.code_context`); :attr:`Instrument.model_columns` names them.
A construct or an item may carry its own ``scale``, which replaces the parent's scale whole.
A construct may say ``marker: true`` (a marker variable for common-method variance: never in a
regression of the model) or ``in_model: false`` (measured and reported, e.g. informant knowledge
used as a screen, but not part of the model file at all); the items of either need not be in the
model file (:func:`model_problems`). An item may say which ``sub_theme`` (facet) of its construct
it measures.

Answers outside the scale
-------------------------
A scale may offer answers that are not points of it, such as "Not applicable" or "Don't know",
under ``outside``; each is the code the export holds for it (Qualtrics exports the code the
researcher gave the choice, e.g. 8, 9 or -99), its label, and optionally a ``name`` (snake_case,
used in output column names such as ``n_not_applicable``; derived from the label when absent)
and ``items`` (the items that offer it; absent: every item on this scale). The short form
``outside: {8: Not applicable, 9: Don't know}`` offers both on every item::

    scale:
      type: likert
      min: 1
      max: 7
      outside:
        - {code: 9, label: "Don't know"}                                # every item
        - {code: 8, label: Not applicable, items: [CMIS_2, ICHG_3]}     # only where it may not apply

A code must lie outside the scale (a code that is also a scale value could not be told apart),
and a label must differ from the scale's labels. The clean stage turns these answers into
missing values, counts them per item and option (``outside_answers.csv``), and does not count them
as unanswered items in the ``max_missing_share`` screen (see :mod:`analysis.clean`).

Organisations (clusters)
------------------------
``cluster_column`` names the export column that says which organisation (team, school, ...) a
respondent belongs to, e.g. ``org_id``. Respondents of one organisation are not independent; the
clean stage keeps the column, pseudonymised as ``cluster_id`` (an organisation's name identifies
it), and reports the intraclass correlation and design effect of each construct score
(:func:`analysis.multilevel.design_effect`).

:func:`load_instrument` checks everything and raises one :class:`InstrumentError` that lists
every problem, each with its YAML path (``constructs[2].items[0].reverse: ...``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.errors import InputError
from instrument.safe_yaml import YamlFileError, read_yaml

__all__ = [
    "AttentionCheck",
    "Construct",
    "ContextQuestion",
    "Instrument",
    "InstrumentError",
    "Item",
    "OutsideOption",
    "Page",
    "Scale",
    "Section",
    "load_instrument",
    "parse_instrument",
    "DEFAULT_INSTRUMENT",
    "dummy_column",
]

DEFAULT_INSTRUMENT = Path(__file__).with_name("sustainability_gap.yaml")

ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ID_RULE = "must start with a letter and hold only letters, digits and underscores"
COLUMN_NAME_MAX = 200  # characters in an export column name named by the instrument

TOP_KEYS = {
    "name", "version", "description", "instructions", "scale", "id_column", "cluster_column",
    "duration_column", "personal_data", "model", "sections", "constructs",
    "attention_checks", "context",
}
SCALE_KEYS = {"type", "min", "max", "labels", "outside"}
OUTSIDE_KEYS = {"code", "label", "name", "items"}
RESERVED_OUTSIDE_NAMES = ("missing", "skipped", "outside")  # output columns n_missing, n_skipped, n_outside
SECTION_KEYS = {"id", "title", "intro"}
CONSTRUCT_KEYS = {"id", "label", "definition", "source", "section", "scale", "items", "marker", "in_model"}
ITEM_KEYS = {"id", "text", "reverse", "label", "sub_theme", "source", "scale"}
CHECK_KEYS = {"id", "text", "expected", "after", "scale"}
CONTEXT_KEYS = {"id", "text", "type", "values", "min", "max", "position", "personal", "coding", "reference"}
CODINGS = ("dummy", "ordinal", "numeric")  # how a context question reaches a model (ContextQuestion.coding)
SCALE_TYPES = ("likert", "continuous")

# Limits: an instrument is a questionnaire people answer, and every stage (render, simulate, the
# codebook, polychoric correlations) does work in proportion to these; a hostile or mistyped file
# (a likert scale with max 100000000) is refused at validation instead of exhausting the machine.
MAX_CATEGORIES = 101  # answers of one likert item (0..100 is the widest slider in use)
MAX_ITEMS = 1000  # items of one instrument
MAX_CONSTRUCTS = 200
MAX_LIST = 1000  # sections, attention checks, context questions, categorical values, personal_data columns
MAX_TEXT = 20_000  # characters of one text (item wording, instructions, labels)
MAX_ID = 100  # characters of an identifier
CONTEXT_TYPES = ("categorical", "integer", "number", "text")
POSITIONS = ("before", "after")


class InstrumentError(InputError):
    """An instrument file that cannot be used; ``problems`` lists every reason.

    Each problem is one line, ``<yaml path>: <what is wrong and what to do>``.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{source}: {n} problem{'s' if n != 1 else ''} in the instrument"
        super().__init__(f"{head}; first: {self.problems[0]}" if n else head)


@dataclass(frozen=True)
class OutsideOption:
    """An answer outside the scale ("Not applicable", "Don't know"): the ``code`` the export holds
    for it, its ``label``, its snake_case ``name`` (output columns ``n_<name>``) and the ``items``
    that offer it (``None``: every item on the scale)."""

    code: int
    label: str
    name: str
    items: tuple[str, ...] | None = None

    def offered_by(self, item_id: str) -> bool:
        return self.items is None or item_id in self.items


@dataclass(frozen=True)
class Scale:
    """Response scale: ``likert`` (integers ``min..max``) or ``continuous`` (any real), with the
    answers outside it that it offers (``outside``)."""

    type: str
    min: float | None = None
    max: float | None = None
    labels: dict[int, str] = field(default_factory=dict)
    outside: tuple[OutsideOption, ...] = ()

    def outside_for(self, item_id: str) -> tuple[OutsideOption, ...]:
        """The answers outside the scale that item ``item_id`` offers."""
        return tuple(o for o in self.outside if o.offered_by(item_id))

    @property
    def points(self) -> tuple[int, ...] | None:
        """The allowed answers of a Likert scale, ``None`` for a continuous one."""
        if self.type != "likert":
            return None
        return tuple(range(int(self.min), int(self.max) + 1))

    @property
    def bounded(self) -> bool:
        return self.min is not None and self.max is not None

    def contains(self, value: float) -> bool:
        """True when ``value`` is an answer this scale allows."""
        if self.type == "likert":
            return float(value).is_integer() and self.min <= value <= self.max
        lo = -math.inf if self.min is None else self.min
        hi = math.inf if self.max is None else self.max
        return lo <= value <= hi

    def reverse(self, value):
        """Reverse-key a value: ``min + max - value`` (needs both bounds)."""
        if not self.bounded:
            raise ValueError("an unbounded scale cannot be reverse-keyed")
        return self.min + self.max - value

    def describe(self) -> str:
        """Allowed values as one codebook string, e.g. ``1=Strongly disagree; 2; ...; 7=...``."""
        if self.type == "likert":
            return "; ".join(
                f"{p}={self.labels[p]}" if p in self.labels else str(p) for p in self.points
            )
        lo = "-inf" if self.min is None else _number(self.min)
        hi = "inf" if self.max is None else _number(self.max)
        return f"real number in [{lo}, {hi}]"


@dataclass(frozen=True)
class Item:
    id: str
    construct: str
    scale: Scale
    text: str | None = None
    reverse: bool = False
    label: str | None = None
    sub_theme: str | None = None
    source: str | None = None

    @property
    def outside(self) -> tuple[OutsideOption, ...]:
        """The answers outside the scale this item offers (``scale.outside``)."""
        return self.scale.outside_for(self.id)


@dataclass(frozen=True)
class Construct:
    id: str
    items: tuple[Item, ...]
    scale: Scale
    label: str | None = None
    definition: str | None = None
    source: str | None = None
    section: str | None = None
    # a marker variable (Lindell & Whitney 2001): theoretically unrelated to the model, measured for
    # common-method variance (analysis.cmv); kept out of the structural model and of discriminant validity
    marker: bool = False
    # False: measured and reported (CFA, reliability, descriptives) but not part of the instrument's model
    # file, such as informant-knowledge items used as a screen; model_problems refuses it in the model
    in_model: bool = True

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)


@dataclass(frozen=True)
class Section:
    id: str
    title: str | None = None
    intro: str | None = None


@dataclass(frozen=True)
class AttentionCheck:
    """An instructed-response item; a respondent passes when the answer is in ``expected``."""

    id: str
    expected: tuple[float, ...]
    scale: Scale
    text: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class ContextQuestion:
    """A grouping question: ``categorical`` (one of ``values``), ``integer``/``number``
    (optionally within ``min..max``) or free ``text``."""

    id: str
    type: str
    text: str | None = None
    values: tuple = ()
    min: float | None = None
    max: float | None = None
    position: str = "after"
    # Personal data: the answers are dropped by the clean stage and never written. Free text is
    # personal unless the instrument says ``personal: false``; other types are not unless it
    # says ``personal: true``.
    personal: bool = False
    # How the answers reach a model as numeric columns: "dummy" (0/1 per value but ``reference``),
    # "ordinal" (1..k in the order of ``values``), "numeric" (integer/number: the answer itself);
    # None: not a model variable (categorical without coding, text).
    coding: str | None = None
    reference: str | int | None = None

    @property
    def model_columns(self) -> dict[str, str]:
        """The numeric columns a model may use for this question, each with what it holds.

        ``dummy``: ``<id>_<value>`` per value but the reference (characters other than letters,
        digits and ``_`` in the value become ``_``); ``ordinal``: ``<id>_code``; ``numeric``: the
        question's own column. Personal questions have none.
        """
        if self.personal or self.coding is None:
            return {}
        if self.coding == "numeric":
            return {self.id: f"{self.id} as answered"}
        if self.coding == "ordinal":
            order = ", ".join(f"{k} = {v}" for k, v in enumerate(self.values, start=1))
            return {f"{self.id}_code": f"{self.id} in order: {order}"}
        return {dummy_column(self.id, v): f"1 if {self.id} is {v}, else 0 (reference: {self.reference})"
                for v in self.values if v != self.reference}

    def describe(self) -> str:
        if self.type == "categorical":
            return "; ".join(str(v) for v in self.values)
        if self.type == "text":
            return "free text"
        lo = "-inf" if self.min is None else _number(self.min)
        hi = "inf" if self.max is None else _number(self.max)
        kind = "integer" if self.type == "integer" else "number"
        return f"{kind} in [{lo}, {hi}]"


@dataclass(frozen=True)
class Page:
    """One page of the questionnaire: a section's title and intro and its questions in order."""

    id: str | None
    title: str | None
    intro: str | None
    questions: tuple  # of Item, AttentionCheck or ContextQuestion


@dataclass(frozen=True)
class Instrument:
    """A validated instrument. Build it with :func:`load_instrument`."""

    name: str
    scale: Scale
    constructs: tuple[Construct, ...]
    version: str | None = None
    description: str | None = None
    instructions: str | None = None
    id_column: str | None = None
    duration_column: str | None = None
    personal_data: tuple[str, ...] = ()
    model: Path | None = None
    cluster_column: str | None = None
    sections: tuple[Section, ...] = ()
    attention_checks: tuple[AttentionCheck, ...] = ()
    context: tuple[ContextQuestion, ...] = ()
    source: Path | None = None

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for c in self.constructs for i in c.items)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)

    @property
    def construct_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.constructs)

    def item(self, item_id: str) -> Item:
        for i in self.items:
            if i.id == item_id:
                return i
        raise KeyError(f"no item {item_id!r} in instrument {self.name!r}")

    @property
    def outside_options(self) -> tuple[OutsideOption, ...]:
        """Every answer outside the scale that some item offers, each once, in the order of the
        scales (an option is identified by its ``name``)."""
        offered = {o.name for item in self.items for o in item.outside}
        seen: dict[str, OutsideOption] = {}
        for item in self.items:
            for o in item.scale.outside:
                if o.name in offered:
                    seen.setdefault(o.name, o)
        return tuple(seen.values())

    @property
    def marker_ids(self) -> tuple[str, ...]:
        """The marker constructs (``marker: true``): for analysis.cmv, not for the structural model."""
        return tuple(c.id for c in self.constructs if c.marker)

    def construct(self, construct_id: str) -> Construct:
        for c in self.constructs:
            if c.id == construct_id:
                return c
        raise KeyError(f"no construct {construct_id!r} in instrument {self.name!r}")

    def pages(self) -> tuple[Page, ...]:
        """The questionnaire as a respondent sees it, page by page.

        Context questions with ``position: before`` open it; then each section in order with
        its constructs' items (constructs without a section follow, untitled), each attention
        check placed right after its ``after`` item (or at the end of the last page); context
        questions with ``position: after`` close it. Construct names and reverse keys are not
        part of a page.
        """
        pages: list[Page] = []
        before = tuple(q for q in self.context if q.position == "before")
        after = tuple(q for q in self.context if q.position == "after")
        if before:
            pages.append(Page(None, "Background questions", None, before))
        groups = [(s.id, s.title, s.intro) for s in self.sections]
        if any(c.section is None for c in self.constructs):
            groups.append((None, None, None))
        pending = list(self.attention_checks)
        for sid, title, intro in groups:
            questions: list = []
            for c in self.constructs:
                if c.section != sid:
                    continue
                for item in c.items:
                    questions.append(item)
                    for check in [k for k in pending if k.after == item.id]:
                        questions.append(check)
                        pending.remove(check)
            if questions:
                pages.append(Page(sid, title, intro, tuple(questions)))
        if pending:
            last = pages[-1]
            pages[-1] = Page(last.id, last.title, last.intro, last.questions + tuple(pending))
        if after:
            pages.append(Page(None, "About you and your organisation", None, after))
        return tuple(pages)

    @property
    def columns(self) -> tuple[str, ...]:
        """Data columns in questionnaire order (id and cluster first, duration last)."""
        cols = [q.id for p in self.pages() for q in p.questions]
        if self.duration_column:
            cols.append(self.duration_column)
        return tuple(c for c in (self.id_column, self.cluster_column) if c) + tuple(cols)

    @property
    def model_columns(self) -> dict[str, str]:
        """Every numeric column a model may use besides the items: the codings of the context
        questions (:attr:`ContextQuestion.model_columns`), column name -> what it holds."""
        return {name: what for q in self.context for name, what in q.model_columns.items()}

    def measurement_model(self) -> str:
        """lavaan syntax with one factor per construct (``GAP1 =~ GAP1_1 + GAP1_2 + ...``)."""
        return "\n".join(f"{c.id} =~ {' + '.join(c.item_ids)}" for c in self.constructs) + "\n"


# --------------------------------------------------------------------------- loading


def load_instrument(path: str | Path) -> Instrument:
    """Read and validate an instrument YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Instrument

    Raises
    ------
    InstrumentError
        With every problem found (unreadable file, YAML syntax, schema violations).
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise InstrumentError(str(path), [exc.problem]) from None
    return parse_instrument(data, source=path)


def parse_instrument(data: Any, source: str | Path | None = None) -> Instrument:
    """Validate an already-parsed YAML document and build an :class:`Instrument`.

    ``source`` names the file in messages and anchors a relative ``model`` path.
    """
    checker = _Checker()
    instrument = checker.instrument(data, Path(source) if source is not None else None)
    if checker.problems:
        raise InstrumentError(str(source) if source is not None else "<instrument>", checker.problems)
    return instrument


# --------------------------------------------------------------------------- validation


class _Checker:
    """Walks the YAML document once, collecting problems with their paths."""

    def __init__(self):
        self.problems: list[str] = []
        self.outside_scopes: list[tuple[str, Scale]] = []  # scales whose outside options list items

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    # -- primitives -------------------------------------------------------------------

    def mapping(self, value, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict | None:
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {_kind(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.add(_join(path, str(key)), f"unknown key; allowed keys are {', '.join(sorted(allowed))}")
        for key in required:
            if key not in value or value[key] is None:
                self.add(_join(path, key), "is required")
        return value

    def text(self, value, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.add(path, f"expected text, got {_kind(value)}")
            return None
        if len(str(value)) > MAX_TEXT:
            self.add(path, f"{len(str(value))} characters; a text has at most {MAX_TEXT}")
            return None
        return str(value)

    def ident(self, value, path: str) -> str | None:
        if value is None:
            self.add(path, "is required")
            return None
        if not isinstance(value, str):
            self.add(path, f"expected an identifier, got {_kind(value)} {value!r}; quote it if it is meant as text")
            return None
        if len(value) > MAX_ID:
            self.add(path, f"{value[:40]!r}... has {len(value)} characters; an identifier has at most {MAX_ID}")
            return None
        if not ID_PATTERN.match(value):
            self.add(path, f"{value!r} {ID_RULE}")
            return None
        return value

    def column(self, value, path: str) -> str | None:
        """A column name of the export (``id_column``, ``duration_column``): any text a survey
        platform writes, e.g. ``Duration (in seconds)``, without control characters."""
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected a column name of the export, got {_kind(value)} {value!r}")
            return None
        if len(value) > COLUMN_NAME_MAX or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            self.add(path, f"a column name must be at most {COLUMN_NAME_MAX} characters without control "
                     f"characters, got {value[:40]!r}")
            return None
        return value

    def number(self, value, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.add(path, f"expected a finite number, got {_kind(value)} {value!r}")
            return None
        return value

    def boolean(self, value, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(path, f"expected true or false, got {_kind(value)} {value!r}")
            return default
        return value

    def string_list(self, value, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.add(path, f"expected a list, got {_kind(value)}")
            return ()
        out = []
        for k, v in enumerate(value):
            if not isinstance(v, str) or not v:
                self.add(f"{path}[{k}]", f"expected a column name, got {_kind(v)} {v!r}")
            elif self.column(v, f"{path}[{k}]") is not None:
                out.append(v)
        return tuple(out)

    # -- parts ------------------------------------------------------------------------

    def scale(self, value, path: str) -> Scale | None:
        d = self.mapping(value, path, SCALE_KEYS, required=("type",))
        if d is None:
            return None
        n_before = len(self.problems)
        kind = d.get("type")
        if kind is not None and kind not in SCALE_TYPES:
            self.add(_join(path, "type"), f"must be one of {', '.join(SCALE_TYPES)}, got {kind!r}")
        lo = self.number(d.get("min"), _join(path, "min"))
        hi = self.number(d.get("max"), _join(path, "max"))
        if kind == "likert":
            for key, v in (("min", lo), ("max", hi)):
                if key not in d or d[key] is None:
                    self.add(_join(path, key), "is required for a likert scale")
                elif v is not None and not float(v).is_integer():
                    self.add(_join(path, key), f"must be a whole number on a likert scale, got {v!r}")
        if lo is not None and hi is not None and lo >= hi:
            self.add(path, f"min ({_number(lo)}) must be less than max ({_number(hi)})")
        elif kind == "likert" and lo is not None and hi is not None and hi - lo + 1 > MAX_CATEGORIES:
            self.add(path, f"{_number(hi - lo + 1)} answers from {_number(lo)} to {_number(hi)}; a likert item has at "
                     f"most {MAX_CATEGORIES} (use type: continuous for a wider range)")
            return None
        labels = {}
        raw_labels = d.get("labels")
        if raw_labels is not None:
            if not isinstance(raw_labels, dict):
                self.add(_join(path, "labels"), f"expected a mapping of value: label, got {_kind(raw_labels)}")
            else:
                for key, label in raw_labels.items():
                    lpath = _join(_join(path, "labels"), str(key))
                    if isinstance(key, bool) or not isinstance(key, (int, float)):
                        self.add(lpath, f"label keys must be scale values (numbers), got {key!r}")
                        continue
                    if lo is not None and hi is not None and not (lo <= key <= hi):
                        self.add(lpath, f"value {key} is outside the scale {_number(lo)}..{_number(hi)}; an answer "
                                 "outside the scale (not applicable, don't know) goes under outside")
                    if kind == "likert" and not float(key).is_integer():
                        self.add(lpath, f"likert values are whole numbers, got {key}")
                    text = self.text(label, lpath)
                    if text is not None:
                        labels[int(key) if float(key).is_integer() else key] = text
        if len(self.problems) > n_before:
            return None
        if kind == "likert":
            lo, hi = int(lo), int(hi)
        scale = Scale(type=kind, min=lo, max=hi, labels=labels)
        if d.get("outside") is not None:
            outside = self.outside(d["outside"], _join(path, "outside"), scale)
            if len(self.problems) > n_before:
                return None
            scale = Scale(type=kind, min=lo, max=hi, labels=labels, outside=outside)
            if any(o.items is not None for o in outside):
                self.outside_scopes.append((_join(path, "outside"), scale))
        return scale

    def outside(self, value, path: str, scale: Scale) -> tuple[OutsideOption, ...]:
        """The answers outside ``scale``: ``{code: label}`` or a list of ``{code, label, name,
        items}``; item ids are checked once the items are known (:meth:`outside_items`)."""
        if isinstance(value, dict):
            entries = [({"code": code, "label": label}, f"{path}.{code}") for code, label in value.items()]
        elif isinstance(value, list):
            entries = [(raw, f"{path}[{k}]") for k, raw in enumerate(value)]
        else:
            self.add(path, f"expected {{code: label}} or a list of {{code, label, name, items}}, got {_kind(value)}")
            return ()
        if len(entries) > MAX_LIST:
            self.add(path, f"{len(entries)} options; a scale has at most {MAX_LIST}")
            return ()
        out: list[OutsideOption] = []
        labels = {str(v).strip().lower(): k for k, v in scale.labels.items()}
        for raw, opath in entries:
            d = self.mapping(raw, opath, OUTSIDE_KEYS, required=("code", "label"))
            if d is None:
                continue
            code = self.number(d.get("code"), _join(opath, "code"))
            label = self.text(d.get("label"), _join(opath, "label"))
            if code is not None and not float(code).is_integer():
                self.add(_join(opath, "code"), f"must be a whole number (the code the export holds), got {code!r}")
                code = None
            if code is not None and scale.contains(code):
                self.add(_join(opath, "code"), f"{_number(code)} is a value of the scale ({_range_text(scale)}), so an "
                         "answer with this code could not be told from a rating; give it a code outside the scale "
                         "(e.g. 8, 9 or -99)")
                code = None
            if code is not None and any(o.code == code for o in out):
                self.add(_join(opath, "code"), f"duplicate code {_number(code)}")
                code = None
            if label is not None:
                key = label.strip().lower()
                if key in labels:
                    self.add(_join(opath, "label"), f"{label!r} is also the label of scale value {labels[key]}; "
                             "an answer outside the scale needs a label of its own")
                    label = None
                elif any(o.label.strip().lower() == key for o in out):
                    self.add(_join(opath, "label"), f"duplicate label {label!r}")
                    label = None
            name = d.get("name")
            if name is None and label is not None:
                name = re.sub(r"[^a-z0-9]+", "_", re.sub(r"['\u2019]", "", label.lower())).strip("_")
                if not ID_PATTERN.match(name or "-"):
                    self.add(opath, f"cannot make a column name from the label {label!r}; give a name "
                             "(e.g. name: not_applicable)")
                    name = None
            elif name is not None:
                name = self.ident(name, _join(opath, "name"))
            if name is not None and name in RESERVED_OUTSIDE_NAMES:
                self.add(_join(opath, "name"), f"{name!r} is reserved (output column n_{name}); choose another name")
                name = None
            if name is not None and any(o.name == name for o in out):
                self.add(_join(opath, "name"), f"duplicate name {name!r} (derived from the label unless given)")
                name = None
            items = None
            if d.get("items") is not None:
                raw_items = d["items"]
                if not isinstance(raw_items, list) or not raw_items or not all(isinstance(i, str) for i in raw_items):
                    self.add(_join(opath, "items"), f"expected a non-empty list of item ids, got {_kind(raw_items)} "
                             f"{raw_items!r}"[:200])
                    continue
                items = tuple(raw_items)
            if code is not None and label is not None and name is not None:
                out.append(OutsideOption(code=int(code), label=label, name=name, items=items))
        return tuple(out)

    def outside_items(self, items: list[Item]) -> None:
        """Every item an ``outside`` option lists must be an item on that scale."""
        by_id = {i.id: i for i in items}
        for path, scale in self.outside_scopes:
            for k, option in enumerate(scale.outside):
                for j, iid in enumerate(option.items or ()):
                    ipath = f"{path}[{k}].items[{j}]"
                    if iid not in by_id:
                        self.add(ipath, f"{iid!r} is not an item id of this instrument")
                    elif by_id[iid].scale is not scale:
                        self.add(ipath, f"item {iid!r} has a scale of its own (its construct's or its own `scale`), "
                                 "which replaces this one whole; list the option in that scale")

    def instrument(self, data, source: Path | None) -> Instrument | None:
        d = self.mapping(data, "", TOP_KEYS, required=("name", "scale", "constructs"))
        if d is None:
            return None
        if not self.within_limits(d):
            return None
        name = self.text(d.get("name"), "name")
        scale = self.scale(d["scale"], "scale") if d.get("scale") is not None else None

        sections = self.sections(d.get("sections"))
        section_ids = {s.id for s in sections}
        constructs = self.constructs(d.get("constructs"), scale, section_ids)
        items = [i for c in constructs for i in c.items]
        item_ids = {i.id for i in items}
        checks = self.attention_checks(d.get("attention_checks"), scale, item_ids)
        context = self.context(d.get("context"))

        self.outside_items(items)
        id_column = self.column(d["id_column"], "id_column") if d.get("id_column") is not None else None
        cluster = self.column(d["cluster_column"], "cluster_column") if d.get("cluster_column") is not None else None
        duration = (
            self.column(d["duration_column"], "duration_column") if d.get("duration_column") is not None else None
        )
        personal = self.string_list(d.get("personal_data"), "personal_data")
        model = self.model_path(d.get("model"), source)

        # Every column the data will carry must have its own name.
        columns: dict[str, str] = {}
        named = (
            [(i.id, f"item in {i.construct}") for i in items]
            + [(c.id, "attention check") for c in checks]
            + [(q.id, "context question") for q in context]
            + [(name, f"model column of context question {q.id}") for q in context for name in q.model_columns
               if name != q.id]
            + [(id_column, "id_column"), (duration, "duration_column"), (cluster, "cluster_column")]
            + [(p, "personal_data column") for p in personal]
        )
        for col, what in named:
            if col is None:
                continue
            if col in columns and not (what.startswith("item") and columns[col].startswith("item")):
                self.add("", f"column name {col!r} is used twice: as {columns[col]} and as {what}")
            columns.setdefault(col, what)
        for c in constructs:
            if c.id in columns:
                self.add("constructs", f"construct id {c.id!r} is also a column ({columns[c.id]}); "
                         "latent and observed variables need different names")

        if self.problems:
            return None
        return Instrument(
            name=name, scale=scale, constructs=tuple(constructs),
            version=self.text(d.get("version"), "version"),
            description=self.text(d.get("description"), "description"),
            instructions=self.text(d.get("instructions"), "instructions"),
            id_column=id_column, duration_column=duration, personal_data=personal, cluster_column=cluster,
            model=model, sections=tuple(sections), attention_checks=tuple(checks),
            context=tuple(context), source=source,
        )

    def within_limits(self, d: dict) -> bool:
        """Refuse an instrument too large to be a questionnaire before anything is built from it."""
        n_before = len(self.problems)
        sizes = {"sections": MAX_LIST, "attention_checks": MAX_LIST, "context": MAX_LIST, "personal_data": MAX_LIST,
                 "constructs": MAX_CONSTRUCTS}
        for key, most in sizes.items():
            if isinstance(d.get(key), list) and len(d[key]) > most:
                self.add(key, f"{len(d[key])} entries; an instrument has at most {most}")
        constructs = d.get("constructs") if isinstance(d.get("constructs"), list) else []
        n_items = sum(len(c["items"]) for c in constructs if isinstance(c, dict) and isinstance(c.get("items"), list))
        if n_items > MAX_ITEMS:
            self.add("constructs", f"{n_items} items in all; an instrument has at most {MAX_ITEMS}")
        for k, q in enumerate(d.get("context") if isinstance(d.get("context"), list) else []):
            if isinstance(q, dict) and isinstance(q.get("values"), list) and len(q["values"]) > MAX_LIST:
                self.add(f"context[{k}].values", f"{len(q['values'])} values; a question has at most {MAX_LIST}")
        return len(self.problems) == n_before

    def sections(self, value) -> list[Section]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add("sections", f"expected a list, got {_kind(value)}")
            return []
        out, seen = [], set()
        for k, raw in enumerate(value):
            path = f"sections[{k}]"
            d = self.mapping(raw, path, SECTION_KEYS, required=("id",))
            if d is None:
                continue
            sid = self.ident(d.get("id"), _join(path, "id"))
            if sid in seen:
                self.add(_join(path, "id"), f"duplicate section id {sid!r}")
            if sid:
                seen.add(sid)
                out.append(Section(sid, self.text(d.get("title"), _join(path, "title")),
                                   self.text(d.get("intro"), _join(path, "intro"))))
        return out

    def constructs(self, value, parent: Scale | None, section_ids: set[str]) -> list[Construct]:
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.add("constructs", f"expected a non-empty list of constructs, got {_kind(value)}")
            return []
        out = []
        construct_of: dict[str, str] = {}
        seen = set()
        for k, raw in enumerate(value):
            path = f"constructs[{k}]"
            d = self.mapping(raw, path, CONSTRUCT_KEYS, required=("id",))
            if d is None:
                continue
            cid = self.ident(d.get("id"), _join(path, "id"))
            if cid in seen:
                self.add(_join(path, "id"), f"duplicate construct id {cid!r}")
            seen.add(cid)
            scale = self.scale(d["scale"], _join(path, "scale")) if d.get("scale") is not None else parent
            section = d.get("section")
            if section is not None and (not isinstance(section, str) or section not in section_ids):
                known = ", ".join(sorted(section_ids)) or "none are defined"
                self.add(_join(path, "section"), f"unknown section {section!r}; sections: {known}")
            items = self.items(d.get("items"), _join(path, "items"), cid, scale, construct_of)
            if cid is None:
                continue
            out.append(Construct(
                id=cid, items=tuple(items), scale=scale,
                label=self.text(d.get("label"), _join(path, "label")),
                definition=self.text(d.get("definition"), _join(path, "definition")),
                source=self.text(d.get("source"), _join(path, "source")),
                section=section,
                marker=self.boolean(d.get("marker"), _join(path, "marker"), default=False),
                in_model=self.boolean(d.get("in_model"), _join(path, "in_model"), default=True),
            ))
        return out

    def items(self, value, path: str, cid: str | None, parent: Scale | None,
              construct_of: dict[str, str]) -> list[Item]:
        if value is None or (isinstance(value, list) and not value):
            self.add(path, f"construct {cid!r} has no items; give it at least one")
            return []
        if not isinstance(value, list):
            self.add(path, f"expected a list of items, got {_kind(value)}")
            return []
        out = []
        for k, raw in enumerate(value):
            ipath = f"{path}[{k}]"
            d = self.mapping(raw, ipath, ITEM_KEYS, required=("id",))
            if d is None:
                continue
            iid = self.ident(d.get("id"), _join(ipath, "id"))
            if iid is not None and iid in construct_of:
                other = construct_of[iid]
                if other == cid:
                    self.add(_join(ipath, "id"), f"duplicate item id {iid!r} in construct {cid!r}")
                else:
                    self.add(_join(ipath, "id"), f"item {iid!r} is in two constructs, {other!r} and {cid!r}; "
                             "an item measures one construct")
            scale = self.scale(d["scale"], _join(ipath, "scale")) if d.get("scale") is not None else parent
            reverse = self.boolean(d.get("reverse"), _join(ipath, "reverse"), default=False)
            if reverse and scale is not None and not scale.bounded:
                self.add(_join(ipath, "reverse"), "a reverse-keyed item needs a scale with both min and max")
            if iid is None:
                continue
            construct_of.setdefault(iid, cid)
            out.append(Item(
                id=iid, construct=cid, scale=scale, reverse=reverse,
                text=self.text(d.get("text"), _join(ipath, "text")),
                label=self.text(d.get("label"), _join(ipath, "label")),
                sub_theme=self.text(d.get("sub_theme"), _join(ipath, "sub_theme")),
                source=self.text(d.get("source"), _join(ipath, "source")),
            ))
        return out

    def attention_checks(self, value, parent: Scale | None, item_ids: set[str]) -> list[AttentionCheck]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add("attention_checks", f"expected a list, got {_kind(value)}")
            return []
        out = []
        for k, raw in enumerate(value):
            path = f"attention_checks[{k}]"
            d = self.mapping(raw, path, CHECK_KEYS, required=("id", "expected"))
            if d is None:
                continue
            cid = self.ident(d.get("id"), _join(path, "id"))
            scale = self.scale(d["scale"], _join(path, "scale")) if d.get("scale") is not None else parent
            raw_expected = d.get("expected")
            values = raw_expected if isinstance(raw_expected, list) else [raw_expected]
            expected = []
            for v in values:
                if raw_expected is None:
                    break
                num = self.number(v, _join(path, "expected"))
                if num is None:
                    continue
                if scale is not None and not scale.contains(num):
                    self.add(_join(path, "expected"), f"{v!r} is not an answer the scale allows ({scale.describe()})")
                expected.append(num)
            after = d.get("after")
            if after is not None and (not isinstance(after, str) or after not in item_ids):
                self.add(_join(path, "after"), f"{after!r} is not an item id of this instrument")
            if cid is not None and expected:
                out.append(AttentionCheck(cid, tuple(expected), scale,
                                          self.text(d.get("text"), _join(path, "text")), after))
        return out

    def context(self, value) -> list[ContextQuestion]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add("context", f"expected a list, got {_kind(value)}")
            return []
        out = []
        for k, raw in enumerate(value):
            path = f"context[{k}]"
            d = self.mapping(raw, path, CONTEXT_KEYS, required=("id", "type"))
            if d is None:
                continue
            qid = self.ident(d.get("id"), _join(path, "id"))
            kind = d.get("type")
            if kind is not None and kind not in CONTEXT_TYPES:
                self.add(_join(path, "type"), f"must be one of {', '.join(CONTEXT_TYPES)}, got {kind!r}")
            values: list = []
            raw_values = d.get("values")
            if kind == "categorical":
                if not isinstance(raw_values, list) or not raw_values:
                    self.add(_join(path, "values"), "a categorical question needs a non-empty list of allowed values")
                else:
                    for j, v in enumerate(raw_values):
                        if isinstance(v, bool) or not isinstance(v, (str, int)):
                            hint = "; YAML reads yes/no/on/off/NO as booleans, so quote it" if isinstance(v, bool) else ""
                            self.add(f"{path}.values[{j}]", f"expected text or a whole number, got {_kind(v)} {v!r}{hint}")
                        elif v in values:
                            self.add(f"{path}.values[{j}]", f"duplicate value {v!r}")
                        else:
                            values.append(v)
            elif raw_values is not None:
                self.add(_join(path, "values"), f"only categorical questions list values (type is {kind!r})")
            lo = self.number(d.get("min"), _join(path, "min"))
            hi = self.number(d.get("max"), _join(path, "max"))
            if (lo is not None or hi is not None) and kind not in ("integer", "number"):
                self.add(path, f"min/max apply to integer or number questions, not {kind!r}")
            if lo is not None and hi is not None and lo >= hi:
                self.add(path, f"min ({_number(lo)}) must be less than max ({_number(hi)})")
            personal = self.boolean(d.get("personal"), _join(path, "personal"), default=kind == "text")
            coding, reference = self.coding(d, path, kind, values, personal)
            position = d.get("position", "after")
            if position not in POSITIONS:
                self.add(_join(path, "position"), f"must be one of {', '.join(POSITIONS)}, got {position!r}")
            if qid is not None and kind in CONTEXT_TYPES:
                out.append(ContextQuestion(qid, kind, self.text(d.get("text"), _join(path, "text")),
                                           tuple(values), lo, hi, position, personal, coding, reference))
        return out

    def coding(self, d: dict, path: str, kind, values: list, personal: bool):
        """``(coding, reference)`` of a context question (see :class:`ContextQuestion`)."""
        coding, reference = d.get("coding"), d.get("reference")
        if coding is None:
            coding = "numeric" if kind in ("integer", "number") and not personal else None
        elif coding not in CODINGS:
            self.add(_join(path, "coding"), f"must be one of {', '.join(CODINGS)}, got {coding!r}")
            return None, None
        elif personal:
            self.add(_join(path, "coding"), "a personal question's answers are never written, so no model can use "
                     "them; remove coding or say personal: false")
        elif kind == "text":
            self.add(_join(path, "coding"), "free text cannot be coded for a model; make it a categorical question")
        elif (kind == "categorical") != (coding in ("dummy", "ordinal")):
            want = "dummy or ordinal" if kind == "categorical" else "numeric (or leave coding out)"
            self.add(_join(path, "coding"), f"a {kind} question is coded {want}, got {coding!r}")
        if reference is not None and coding != "dummy":
            self.add(_join(path, "reference"), "only coding: dummy has a reference category")
        if coding == "dummy" and values:
            if reference is None:
                reference = values[0]
            elif reference not in values:
                self.add(_join(path, "reference"), f"{reference!r} is not one of the values "
                         f"({'; '.join(map(str, values))})")
            names = [dummy_column(str(d.get("id")), v) for v in values]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                self.add(_join(path, "values"), f"values give the same dummy column {twice[0]!r}; make them differ "
                         "in a letter or digit")
        return coding, reference

    def model_path(self, value, source: Path | None) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add("model", f"expected a file name, got {_kind(value)}")
            return None
        path = Path(value)
        if not path.is_absolute() and source is not None:
            path = source.parent / path
        if not path.is_file():
            self.add("model", f"model file {str(path)!r} not found (a relative path is read beside the instrument)")
            return None
        return path


def dummy_column(question: str, value) -> str:
    """The name of the 0/1 column for ``value`` of a dummy-coded context question:
    ``<question>_<value>``, characters other than letters, digits and ``_`` replaced by ``_``
    (``org_size`` "1-49" -> ``org_size_1_49``)."""
    return f"{question}_{re.sub(r'[^A-Za-z0-9_]', '_', str(value))}"


def _range_text(scale: Scale) -> str:
    lo = "-inf" if scale.min is None else _number(scale.min)
    hi = "inf" if scale.max is None else _number(scale.max)
    return f"{lo}..{hi}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def model_problems(instrument: Instrument) -> list[str]:
    """Check the instrument's lavaan model file against its items.

    Returns one line per problem: a syntax error, an observed variable in the model that is not
    a column of the instrument, or an item that the model leaves out. An instrument without a
    model file has none.
    """
    from instrument.lavaan import LavaanSyntaxError, read_model

    if instrument.model is None:
        return []
    try:
        model = read_model(instrument.model)
    except LavaanSyntaxError as exc:
        return [f"model: {exc}"]
    columns = set(instrument.item_ids) | set(instrument.model_columns)
    uncoded = {q.id: q for q in instrument.context if q.id not in columns}
    problems = []
    for v in model.observed:
        if v in uncoded:
            q = uncoded[v]
            how = ("is personal data, never written" if q.personal else
                   "is free text" if q.type == "text" else
                   "is categorical: say how a model codes it (coding: dummy or ordinal in the instrument) and use "
                   "its coded columns")
            problems.append(f"model: {v!r} in {instrument.model.name} is a context question that {how}")
        elif v not in columns:
            problems.append(f"model: {v!r} in {instrument.model.name} is neither a latent variable of the model nor "
                            "a column of the instrument")
    markers = [c.id for c in instrument.constructs if c.marker]
    problems += [f"model: {c!r} is a marker construct (marker: true) but is in a regression of "
                 f"{instrument.model.name}; a marker variable stays out of the structural model"
                 for c in markers if c in model.regressions or any(c in rhs for rhs in model.regressions.values())]
    mentioned = set(model.observed) | set(model.latents)
    problems += [f"model: {c.id!r} says in_model: false but {instrument.model.name} uses "
                 f"{', '.join(repr(v) for v in (c.id, *c.item_ids) if v in mentioned)}; remove it from the model or "
                 "the in_model key" for c in instrument.constructs if not c.in_model and {c.id, *c.item_ids} & mentioned]
    used = set(model.observed)
    # Items of a marker construct or of a construct outside the model need not be in the model file.
    exempt = {i for c in instrument.constructs if c.marker or not c.in_model for i in c.item_ids}
    problems += [
        f"model: item {i!r} is not in {instrument.model.name}; every item should load on its construct "
        "(or say in_model: false on a construct kept out of the model)"
        for i in instrument.item_ids if i not in used and i not in exempt
    ]
    return problems
