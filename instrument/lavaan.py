"""Read lavaan model syntax into a list of statements.

lavaan's model syntax is the lingua franca for latent-variable models (Rosseel, 2012,
*lavaan: An R package for structural equation modeling*, J. Stat. Softw. 48(2)). This module
reads all of it that a single- or multi-group model uses:

=========  =====================================  ====================================
operator   meaning                                example
=========  =====================================  ====================================
``=~``     is measured by (loadings)              ``GAP1 =~ GAP1_1 + GAP1_2``
``<~``     is formed by (composite weights)       ``SES <~ income + educ``
``~``      is regressed on                        ``GAP2 ~ a*GAP1 + IM``
``~~``     (residual) (co)variance                ``VCC ~~ VCD``
``~ 1``    intercept or latent mean               ``GAP1_1 ~ 1``, ``F ~ 0*1``
``|``      thresholds of an ordered item          ``x1 | t1 + t2 + t3``
``~*~``    scale factor of an ordered item        ``x1 ~*~ 1*x1``
``:=``     defined parameter                      ``ind := a*b``
``==``     equality constraint                    ``a == 2*b``, ``b1 + b2 == 1``
``<  >``   inequality constraint                  ``c > 0``
``group:`` block of a multi-group model           ``group: 1`` (or ``level:``, ``block:``)
=========  =====================================  ====================================

Right-hand terms carry modifiers joined by ``*``: a number fixes the parameter (``1*x``),
``NA`` frees it (``NA*x``), a name or a quoted string labels it (``a*x``, ``"a"*x``),
``start(0.5)``, ``0.5?x`` give a starting value, ``label("a")`` and ``equal("a")`` label it,
``lower(0)``/``upper(1)`` bound it, and ``c(...)`` gives one value per group (``c(a, b)*x``,
``c(1, NA)*x``, ``c(NA, NA)*x``). Several modifiers may be chained on one term
(``a*start(0.5)*x``) or given by repeating the term (``x + a*x + start(0.5)*x``, as lavaan's
documentation writes it); two modifiers of the same kind on one term are refused (lavaan keeps
the first silently; a chain of two labels ``a*b*x`` is, in lavaan, a per-group vector -- write
``c(a, b)*x``). The left-hand side may name several variables (``y1 + y2 ~ x``).

Comments start with ``#`` or ``!``; statements are separated by newlines or ``;``. As in
lavaan, a line that holds an operator starts a statement and a line without one continues the
previous statement. ``:=``, ``==``, ``<`` and ``>`` statements are kept as written with the
spaces removed (lavaan's form); every name in them must be a label of the model (or a ``:=``
defined before it, or a parameter label ``.p3.``), so a typo is refused here, not at fit time.

Hostile input is refused fast, with the line at fault: a model text over
:data:`MAX_MODEL_CHARS` characters, over :data:`MAX_STATEMENTS` statements or :data:`MAX_TERMS`
parameters, or
parentheses nested deeper than :data:`MAX_NESTING`; the parse time is linear in the text.

In R the same parse is ``lavaan::lavParseModelString(model, as.data.frame. = TRUE)``; the
parameter table built from it is :func:`analysis.sem.partable.lavaanify`.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import InputError

__all__ = ["MAX_MODEL_CHARS", "MAX_NESTING", "MAX_STATEMENTS", "MAX_TERMS", "LavaanModel", "LavaanSyntaxError", "Statement",
           "parse_model", "read_model"]

MAX_MODEL_CHARS = 1_000_000  # a 2000-item instrument with its structural model is under 200 kB
MAX_STATEMENTS = 10_000  # statements (a 2000-item instrument needs a few hundred)
MAX_TERMS = 20_000  # parameters written (right-hand terms of all statements)
MAX_NESTING = 100  # parentheses in an expression or a modifier
MAX_EXPRESSION_CHARS = 20_000  # one := or constraint expression (the default model's longest: 150)

# lavaan looks for operators in this order (a statement holds one): '=~' before '~', etc.
_OPERATORS = ("=~", "<~", "~*~", "~~", "~", "==", "<", ">", ":=", "|")
_CONSTRAINT_OPS = ("==", "<", ">", ":=")
_BLOCK = re.compile(r"^\s*(group|level|block|class)\s*:(?!=)\s*(.*?)\s*$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z.][A-Za-z0-9._]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PLABEL = re.compile(r"^\.p\d+\.$")
_THRESHOLD = re.compile(r"^t[1-9][0-9]*$")
_CALL = re.compile(r"^([A-Za-z]+)\((.*)\)$", re.DOTALL)
_QUESTION = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\?(.+)$")
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "in", "next", "break", "TRUE", "FALSE", "NULL",
             "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_"}
_FUNCTIONS = {"sqrt", "exp", "log", "log10", "log2", "abs", "sin", "cos", "tan", "tanh", "atan", "pnorm", "qnorm",
              "plogis", "qlogis"}
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z.][A-Za-z0-9._]*)"
                    r"|(\*\*|[-+*/^(),]))")


class LavaanSyntaxError(InputError):
    """Model syntax gapscale cannot read; the message names the line and what to do."""


@dataclass(frozen=True)
class Statement:
    """One parameter (or constraint) of a model, in lavaan's parameter-table terms.

    ``fixed`` holds the value when the parameter is fixed (``1*x``); ``free`` is False then.
    ``free_override`` is True when ``NA*`` frees it explicitly. Modifiers given per group
    (``c(...)*``) are in the ``*_by_group`` tuples (``None`` for ``NA``, ``""`` for no label),
    and the scalar fields are then empty. ``lower``/``upper`` hold bounds (one value, or one per
    group). For ``:=``, ``==``, ``<`` and ``>``, ``lhs`` and ``rhs`` are the expressions as
    written without spaces (lavaan's form). ``block`` counts ``group:``/``level:`` blocks from 1.
    """

    lhs: str
    op: str
    rhs: str
    label: str = ""
    fixed: float | None = None
    start: float | None = None
    free_override: bool = False  # NA* given explicitly
    line: int = 0
    fixed_by_group: tuple = ()  # c(1, NA)*x: one value per group, None = free (NA)
    label_by_group: tuple = ()  # c(a, b)*x: one label per group, "" = none
    start_by_group: tuple = ()  # start(c(0.5, 0.6))*x
    lower: tuple = ()  # lower(0)*x: one bound, or one per group
    upper: tuple = ()
    block: int = 1
    efa: str = ""  # efa("set")*f =~ ...: an exploratory block (lavaan >= 0.6-13)

    @property
    def free(self) -> bool:
        return self.fixed is None

    @property
    def group_wise(self) -> bool:
        """True when a modifier gives one value per group (``c(...)*``)."""
        return bool(self.fixed_by_group or self.label_by_group or self.start_by_group
                    or len(self.lower) > 1 or len(self.upper) > 1)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label this statement carries (its label, or its per-group labels)."""
        return tuple(x for x in ((self.label,) + tuple(self.label_by_group)) if x)

    @property
    def modified(self) -> bool:
        """True when the syntax gave this term any modifier (lavaan's ``mod.idx > 0``)."""
        return bool(self.label or self.fixed is not None or self.start is not None or self.free_override
                    or self.group_wise or self.lower or self.upper or self.efa)


@dataclass(frozen=True)
class LavaanModel:
    """A parsed model: statements in the order written.

    ``blocks`` holds, per block, its ``(kind, label)`` pairs (``(("group", "1"),)``) when the
    syntax has ``group:``/``level:`` lines; it is empty otherwise.
    """

    statements: tuple[Statement, ...]
    blocks: tuple[tuple[tuple[str, str], ...], ...] = field(default=())

    def by_op(self, op: str) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.op == op)

    @property
    def latents(self) -> tuple[str, ...]:
        """Latent variables: left-hand sides of ``=~`` and ``<~``, in order of appearance."""
        return tuple(dict.fromkeys(s.lhs for s in self.statements if s.op in ("=~", "<~")))

    @property
    def indicators(self) -> dict[str, tuple[str, ...]]:
        """Latent -> its indicators (observed or latent, for higher-order factors)."""
        out: dict[str, list[str]] = {}
        for s in self.by_op("=~"):
            if s.rhs not in out.get(s.lhs, ()):
                out.setdefault(s.lhs, []).append(s.rhs)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def observed(self) -> tuple[str, ...]:
        """Observed variables: every variable name that is not a latent."""
        latents = set(self.latents)
        names = []
        for s in self.statements:
            if s.op in ("=~", "<~"):
                names.append(s.rhs)
            elif s.op in ("~", "~~", "~*~"):
                names.extend([s.lhs, s.rhs])
            elif s.op in ("~1", "|"):
                names.append(s.lhs)
        return tuple(n for n in dict.fromkeys(names) if n not in latents)

    @property
    def regressions(self) -> dict[str, tuple[str, ...]]:
        """Outcome -> its predictors, from ``~`` statements."""
        out: dict[str, list[str]] = {}
        for s in self.by_op("~"):
            if s.rhs not in out.get(s.lhs, ()):
                out.setdefault(s.lhs, []).append(s.rhs)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def labels(self) -> dict[str, Statement]:
        """Label -> the first statement carrying it (per-group labels included)."""
        out: dict[str, Statement] = {}
        for s in self.statements:
            if s.op not in _CONSTRAINT_OPS:
                for lab in s.labels:
                    out.setdefault(lab, s)
        return out

    @property
    def constraints(self) -> tuple[Statement, ...]:
        """``==``, ``<`` and ``>`` statements, in order."""
        return tuple(s for s in self.statements if s.op in ("==", "<", ">"))

    @property
    def defined(self) -> tuple[Statement, ...]:
        """``:=`` statements, in order."""
        return self.by_op(":=")


def read_model(path: str | Path) -> LavaanModel:
    """Read a lavaan-syntax file (UTF-8). Raises ``LavaanSyntaxError`` with file and line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > 4 * MAX_MODEL_CHARS:  # refuse before reading (a UTF-8 character is at most 4 bytes)
            raise LavaanSyntaxError(f"{path}: the model file has {size} bytes, over the limit of {MAX_MODEL_CHARS} "
                                    "characters; a model is lavaan syntax, not data -- check the file name")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LavaanSyntaxError(f"{path}: model file not found") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise LavaanSyntaxError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    try:
        return parse_model(text)
    except LavaanSyntaxError as exc:
        raise LavaanSyntaxError(f"{path}: {exc}") from None


def parse_model(text: str, check_labels: bool = True) -> LavaanModel:
    """Parse lavaan model syntax.

    Parameters
    ----------
    text : str
        The model, as it would be passed to ``lavaan::sem(model = ...)``.
    check_labels : bool
        Check that every name in a ``:=``, ``==``, ``<`` or ``>`` statement is a label of the
        model (or an earlier ``:=``). ``False`` for a fragment (a structural part whose labels
        are in another part).

    Returns
    -------
    LavaanModel

    Raises
    ------
    LavaanSyntaxError
        With the line number, the offending text and what to do.

    Notes
    -----
    In R: ``lavaan::lavParseModelString(text, as.data.frame. = TRUE)``.
    """
    if not isinstance(text, str):
        raise LavaanSyntaxError(f"the model must be text (lavaan syntax), got {type(text).__name__}")
    if len(text) > MAX_MODEL_CHARS:
        line = text.count("\n", 0, MAX_MODEL_CHARS) + 1
        raise LavaanSyntaxError(f"line {line}: the model text passes the limit of {MAX_MODEL_CHARS} characters "
                                f"here ({len(text)} in all); a model is lavaan syntax, not data -- check the file")
    statements: list[Statement] = []
    blocks: list[tuple[tuple[str, str], ...]] = []
    current: dict[str, str] = {}
    seen: dict[tuple, int] = {}
    lines = _logical_lines(text)
    for line_no, stmt in lines:
        if len(statements) > MAX_TERMS:
            raise LavaanSyntaxError(f"line {line_no}: the model has more than {MAX_TERMS} parameters (the limit); "
                                    "a model of that size is not syntax a person wrote -- check the file")
        m = _BLOCK.match(stmt)
        if m:
            kind, value = m.group(1).lower(), m.group(2).strip().strip("\"'")
            if not value:
                raise LavaanSyntaxError(f"line {line_no}: block identifier {m.group(1)!r} without a number or label; "
                                        "write e.g. 'group: 1'")
            if statements and not current:
                raise LavaanSyntaxError(f"line {line_no}: statements before the first '{kind}:' line; put every "
                                        "statement inside a block, or use no blocks")
            current[kind] = value
            continue
        block = 1
        if current:
            key = tuple(current.items())
            if key not in blocks:  # lavaan merges repeated block labels
                blocks.append(key)
            block = blocks.index(key) + 1
        for s in _parse_statement(stmt, line_no, block):
            _check_duplicate(s, seen)
            statements.append(s)
    if not statements:
        raise LavaanSyntaxError("the model is empty (no statements after removing comments)")
    if check_labels:
        _check_constraint_names(statements)
    return LavaanModel(tuple(statements), tuple(blocks))


# --------------------------------------------------------------------------- lines and statements


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Strip comments, split on newlines and ';', and join continuation lines (lavaan's rule:
    a line with an operator starts a statement, a line without one continues it)."""
    out: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        for part in (line.split(";") if ";" in line else (line,)):
            part = part.strip()
            if not part:
                continue
            if _BLOCK.match(part) or _has_operator(part) or not out:
                if not _BLOCK.match(part) and not _has_operator(part):
                    raise LavaanSyntaxError(f"line {n}: no operator (=~, <~, ~, ~~, |, :=, ==, <, >) in {part!r}; "
                                            "every statement relates variables by an operator")
                if out and out[-1][1].endswith(("+", "*")) and not _BLOCK.match(part):
                    raise LavaanSyntaxError(f"line {out[-1][0]}: the statement ends with "
                                            f"{out[-1][1][-1]!r} but the next line starts a new statement")
                out.append((n, part))
                if len(out) > MAX_STATEMENTS:
                    raise LavaanSyntaxError(f"line {n}: the model has more than {MAX_STATEMENTS} statements (the "
                                            "limit); a model of that size is not syntax a person wrote -- check "
                                            "the file")
            else:
                out[-1] = (out[-1][0], out[-1][1] + " " + part)
    return out


def _strip_comment(raw: str) -> str:
    if "#" not in raw and "!" not in raw:
        return raw
    quote = None
    for i, ch in enumerate(raw):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "#!":
            return raw[:i]
    return raw


def _unquoted(s: str) -> str:
    """``s`` with quoted strings blanked (lavaan's 'LABEL' substitution)."""
    if '"' not in s and "'" not in s:
        return s
    return re.sub(r"\"[^\"]*\"|'[^']*'", "LABEL", s)


def _has_operator(s: str) -> bool:
    u = _unquoted(s)
    return any(op in u for op in _OPERATORS)


def _operator(stmt: str, line: int) -> tuple[str, str, str]:
    """Split at the operator, found in lavaan's order of precedence (outside quotes)."""
    u = _unquoted(stmt)
    for op in _OPERATORS:
        i = u.find(op)
        if i >= 0:
            # the blanked text has the same length only without quotes; locate in the original
            j = i if u is stmt else _locate(stmt, op)
            return stmt[:j].strip(), op, stmt[j + len(op):].strip()
    raise LavaanSyntaxError(f"line {line}: no operator (=~, <~, ~, ~~, |, :=, ==, <, >) in {stmt!r}")


def _locate(stmt: str, op: str) -> int:
    quote = None
    for i, ch in enumerate(stmt):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif stmt.startswith(op, i):
            return i
    return -1  # pragma: no cover - _operator found it outside quotes


def _check_nesting(text: str, line: int) -> None:
    if "(" not in text and ")" not in text:
        return
    depth = 0
    for m in re.finditer(r"[()]", _unquoted(text)):
        depth += 1 if m.group() == "(" else -1
        if depth > MAX_NESTING:
            raise LavaanSyntaxError(f"line {line}: parentheses nested more than {MAX_NESTING} deep (the limit); "
                                    "simplify the expression")
        if depth < 0:
            raise LavaanSyntaxError(f"line {line}: a ')' without its '(' in {_short(text)!r}")
    if depth:
        raise LavaanSyntaxError(f"line {line}: a '(' without its ')' in {_short(text)!r}")


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "..."


def _parse_statement(stmt: str, line: int, block: int = 1) -> list[Statement]:
    _check_nesting(stmt, line)
    lhs, op, rhs = _operator(stmt, line)
    if not lhs:
        raise LavaanSyntaxError(f"line {line}: nothing on the left of {op!r} in {_short(stmt)!r}")
    if not rhs:
        raise LavaanSyntaxError(f"line {line}: nothing on the right of {op!r} in {_short(stmt)!r}")
    if op in _CONSTRAINT_OPS:
        if len(stmt) > MAX_EXPRESSION_CHARS:
            raise LavaanSyntaxError(f"line {line}: the expression has {len(stmt)} characters, over the limit of "
                                    f"{MAX_EXPRESSION_CHARS}; define it in steps (ab := a*b; abc := ab*c)")
        lhs, rhs = "".join(lhs.split()).replace('"', ""), "".join(rhs.split()).replace('"', "")
        if op == ":=":
            if not _NAME.match(lhs) or lhs in _RESERVED:
                raise LavaanSyntaxError(f"line {line}: defined parameter name {lhs!r} is not a valid name; "
                                        "write name := expression")
        else:
            _expression_names(lhs, line, f"{lhs} {op} {rhs}")
        _expression_names(rhs, line, f"{lhs} {op} {rhs}")
        return [Statement(lhs, op, rhs, line=line, block=block)]
    lhs_names = []
    for term in _split_top(lhs, "+"):
        *mods, name = [t.strip() for t in _split_top(term.strip(), "*")]
        if not _NAME.match(name) or name in _RESERVED:
            raise LavaanSyntaxError(f"line {line}: {name!r} is not a variable name (in {_short(stmt)!r}); names "
                                    "start with a letter and hold letters, digits, '.' and '_'")
        efa = ""
        for m in mods:
            call = _CALL.match(m)
            if not call or call.group(1) != "efa":
                raise LavaanSyntaxError(f"line {line}: the modifier {m!r} cannot stand on the left of {op!r}; "
                                        "modifiers go on the right-hand terms (y ~ a*x)")
            efa = _string_args(call.group(2), line, m)[0]
        lhs_names.append((name, efa))
    terms = _split_terms(rhs, line)
    if len(terms) * len(lhs_names) > MAX_TERMS:
        raise LavaanSyntaxError(f"line {line}: the statement has more than {MAX_TERMS} terms (the limit)")
    parsed: dict[str, tuple[str, dict]] = {}
    for term in terms:
        name, term_op, mods = _parse_term(term, op, line, stmt)
        if name in parsed:  # lavaan merges a repeated term's modifiers (x + a*x + start(1)*x)
            mods = _merge(parsed[name][1], mods, line, term)
        parsed[name] = (term_op, mods)
    out = []
    for lhs_name, efa in lhs_names:
        for name, (term_op, mods) in parsed.items():
            rhs_name = "" if term_op == "~1" else name
            if term_op == "=~" and rhs_name == lhs_name:
                raise LavaanSyntaxError(f"line {line}: latent variable {lhs_name!r} cannot be measured by itself")
            if term_op in ("~", "<~") and rhs_name == lhs_name:  # lavaan only warns
                raise LavaanSyntaxError(f"line {line}: {lhs_name} {term_op} {rhs_name} regresses a variable on "
                                        "itself; remove the term")
            out.append(Statement(lhs_name, term_op, rhs_name, line=line, efa=efa, block=block, **mods))
    return out


def _split_terms(rhs: str, line: int) -> list[str]:
    rhs = rhs.strip()
    if rhs.startswith("+"):
        rhs = rhs[1:]
    terms = [t.strip() for t in _split_top(rhs, "+")]
    if any(not t for t in terms):
        raise LavaanSyntaxError(f"line {line}: an empty term in {_short(rhs)!r} (two '+' in a row, or a '+' at the "
                                "end?)")
    return terms


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    if "(" not in s and '"' not in s and "'" not in s:
        return s.split(sep)
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(s):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _parse_term(term: str, op: str, line: int, stmt: str) -> tuple[str, str, dict]:
    """(name, operator, modifier fields) of one right-hand term."""
    if _NAME.match(term) and term not in _RESERVED and op != "|":
        return term, op, {}
    q = _QUESTION.match(term.replace(" ", ""))
    if q:  # lavaan's 0.5?x: a starting value
        term = f"start({q.group(1)})*{q.group(2)}"
    *mods, name = [t.strip() for t in _split_top(term, "*")]
    if any(not m for m in mods) or not name:
        raise LavaanSyntaxError(f"line {line}: cannot read the term {term!r} (a '*' without a modifier or a name)")
    if name in ("1", "0") or _NUMBER.match(name):
        if op != "~":
            raise LavaanSyntaxError(f"line {line}: {name!r} is not a variable name (in {_short(stmt)!r}); a "
                                    "number on the right stands only in an intercept (y ~ 1)")
        if name != "1":
            if name != "0" or mods:
                raise LavaanSyntaxError(f"line {line}: {term!r}: write an intercept as 'y ~ 1' (free) or "
                                        "'y ~ c*1' (fixed to c)")
            mods = ["0"]  # lavaan: y ~ 0 fixes the intercept to zero
        op, name = "~1", "~1"
    elif ":" in name and op == "~":
        raise LavaanSyntaxError(f"line {line}: the interaction term {name!r} is not supported; compute the product "
                                "of the two columns in the data and use it as an observed variable")
    elif not _NAME.match(name) or name in _RESERVED:
        raise LavaanSyntaxError(f"line {line}: {name!r} is not a variable name (in {_short(stmt)!r}); names start "
                                "with a letter and hold letters, digits, '.' and '_'")
    elif op == "|" and not _THRESHOLD.match(name):
        raise LavaanSyntaxError(f"line {line}: threshold {name!r}: thresholds are named t1, t2, ... "
                                "(x1 | t1 + t2 + t3)")
    out: dict = {}
    for m in mods:
        out = _merge(out, _modifier(m, line, term), line, term)
    return name, op, out


_KINDS = {"fixed": ("fixed", "free_override", "fixed_by_group"), "label": ("label", "label_by_group"),
          "start": ("start", "start_by_group"), "lower": ("lower",), "upper": ("upper",)}


def _merge(a: dict, b: dict, line: int, term: str) -> dict:
    """The modifier fields of ``a`` and ``b`` on one term; two of the same kind are refused."""
    for kind, fields in _KINDS.items():
        if any(f in a for f in fields) and any(f in b for f in fields):
            raise LavaanSyntaxError(f"line {line}: two {kind} modifiers for one parameter (in {term!r}); give one "
                                    f"(for one value per group write c(...)*, e.g. c(a, b)*x)")
    return {**a, **b}


def _modifier(m: str, line: int, term: str) -> dict:
    """One modifier (the part before a ``*``) as the Statement fields it sets."""
    if m == "NA":
        return {"free_override": True}
    if _NUMBER.match(m):
        return {"fixed": float(m)}
    if _NAME.match(m):
        if m in _RESERVED:
            raise LavaanSyntaxError(f"line {line}: {m!r} cannot be a label (a reserved word in R), in {term!r}")
        return {"label": m}
    if len(m) >= 2 and m[0] == m[-1] and m[0] in "\"'":
        return {"label": m[1:-1]}
    call = _CALL.match(m)
    if call:
        fn, args = call.group(1), call.group(2)
        if fn == "c":
            values = _values(args, line, m, allow_names=True)
            if all(v is None for v in values):
                return {"fixed_by_group": tuple(values)} if len(values) > 1 else {"free_override": True}
            if all(v is None or isinstance(v, float) for v in values):
                return {"fixed": values[0]} if len(values) == 1 else {"fixed_by_group": tuple(values)}
            if all(v is None or isinstance(v, str) for v in values):
                labels = tuple(v or "" for v in values)
                return {"label": labels[0]} if len(labels) == 1 else {"label_by_group": labels}
            raise LavaanSyntaxError(f"line {line}: {m!r} mixes numbers and labels; write c(...) of numbers (fixed "
                                    "values, NA for free) or of labels, one per group")
        if fn in ("start", "lower", "upper"):
            values = _values(args, line, m, allow_names=False)
            if fn == "start":
                if any(v is None for v in values):
                    raise LavaanSyntaxError(f"line {line}: start() needs numbers, got {m!r}")
                return {"start": values[0]} if len(values) == 1 else {"start_by_group": tuple(values)}
            vals = tuple(-math.inf if v is None and fn == "lower" else math.inf if v is None else v for v in values)
            return {fn: vals}
        if fn in ("label", "equal"):
            labels = tuple(x or "" for x in _string_args(args, line, m))
            return {"label": labels[0]} if len(labels) == 1 else {"label_by_group": labels}
        if fn in ("prior", "rv", "efa"):
            raise LavaanSyntaxError(f"line {line}: the modifier {fn}() is not supported (Bayesian priors, random "
                                    "slopes and EFA blocks are not fitted by gapscale); remove it")
        try:
            value = _numeric_expression(m, line)
        except LavaanSyntaxError:
            raise LavaanSyntaxError(f"line {line}: unknown modifier {fn}() in {term!r}; use a number, NA, a "
                                    "label, start(), label(), equal(), lower(), upper() or c()") from None
        return {"fixed": value}
    try:
        return {"fixed": _numeric_expression(m, line)}
    except LavaanSyntaxError:
        raise LavaanSyntaxError(f"line {line}: cannot read modifier {m!r} in {term!r}; use a number (fixed), NA "
                                "(free), a label, start(), label(), lower(), upper() or c()") from None


def _args(args: str) -> list[str]:
    out = []
    for a in _split_top(args, ","):
        a = a.strip()
        call = _CALL.match(a)
        if call and call.group(1) == "c":  # start(c(0.5, 0.6)) as lavaan's unlist()
            out.extend(x.strip() for x in _split_top(call.group(2), ","))
        else:
            out.append(a)
    return out


def _values(args: str, line: int, m: str, allow_names: bool) -> list:
    """Arguments of c()/start()/lower()/upper(): float, None for NA, str for a label."""
    out: list = []
    for a in _args(args):
        if a == "NA":
            out.append(None)
        elif _NUMBER.match(a):
            out.append(float(a))
        elif allow_names and len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'":
            out.append(a[1:-1])
        elif allow_names and _NAME.match(a) and a not in _RESERVED:
            out.append(a)
        elif a in ("Inf", "-Inf"):
            out.append(math.inf if a == "Inf" else -math.inf)
        else:
            try:
                out.append(_numeric_expression(a, line))
            except LavaanSyntaxError:
                raise LavaanSyntaxError(f"line {line}: cannot read {a!r} in {m!r}") from None
    if not out:
        raise LavaanSyntaxError(f"line {line}: {m!r} has no values")
    return out


def _string_args(args: str, line: int, m: str) -> list[str]:
    out = []
    for a in _args(args):
        if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'":
            out.append(a[1:-1])
        elif a == "NA":
            out.append("")
        elif _NAME.match(a):
            out.append(a)
        else:
            raise LavaanSyntaxError(f"line {line}: {m!r} needs a quoted label, e.g. label(\"a\")")
    if not out:
        raise LavaanSyntaxError(f"line {line}: {m!r} has no label")
    return out


# --------------------------------------------------------------------------- expressions


def _tokens(expr: str, line: int, context: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of an arithmetic expression: num, name, op."""
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise LavaanSyntaxError(f"line {line}: cannot read {expr[pos:pos + 20]!r} in {_short(context)!r}; "
                                    "expressions use only labels, numbers, + - * / ^ and parentheses")
        num, name, op = m.groups()
        out.append(("num", num) if num else ("name", name) if name else ("op", op))
        pos = m.end()
    return out


def _expression_names(expr: str, line: int, context: str) -> list[str]:
    """Check ``expr`` is R arithmetic on labels (numbers, labels, + - * / ^, parentheses and the
    functions in ``_FUNCTIONS``) in one linear pass; return the names it uses."""
    _check_nesting(expr, line)
    toks = _tokens(expr, line, context)
    names: list[str] = []
    stack: list[str] = []
    want = True  # an operand is expected next

    def bad(what):
        return LavaanSyntaxError(f"line {line}: {_short(context)!r} is not an arithmetic expression ({what}); "
                                 "use only labels, numbers, + - * / ^ and parentheses")

    for k, (kind, text) in enumerate(toks):
        if want:
            if kind == "num":
                want = False
            elif kind == "name":
                if k + 1 < len(toks) and toks[k + 1] == ("op", "("):
                    if text not in _FUNCTIONS:
                        raise LavaanSyntaxError(f"line {line}: unknown function {text}() in {_short(context)!r}; use "
                                                f"{', '.join(sorted(_FUNCTIONS))}")
                    stack.append("call")
                    continue  # the '(' token is consumed as part of the call
                names.append(text)
                want = False
            elif text == "(":
                if k > 0 and toks[k - 1][0] == "name" and stack and stack[-1] == "call":
                    continue  # the call's own parenthesis, pushed with the name
                stack.append("(")
            elif text in ("+", "-"):
                continue
            else:
                raise bad(f"{text!r} where a number or label belongs")
        else:
            if kind == "op" and text in ("+", "-", "*", "/", "^", "**"):
                want = True
            elif text == ")":
                if not stack:
                    raise bad("unbalanced ')'")
                stack.pop()
            elif text == "," and stack and stack[-1] == "call":
                want = True
            else:
                raise bad(f"{text!r} after a complete term")
    if want or stack:
        raise bad("it ends too early")
    return names


def _numeric_expression(expr: str, line: int) -> float:
    """A modifier written as arithmetic on numbers (``1/3``, ``-0.5``, ``sqrt(2)``)."""
    if len(expr) > 200:  # a fixed value, not a formula
        raise LavaanSyntaxError(f"line {line}: {_short(expr)!r} is not a number")
    names = _expression_names(expr, line, expr)
    if names:
        raise LavaanSyntaxError(f"line {line}: {expr!r} is not a number")
    funcs = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10, "log2": math.log2,
             "abs": abs, "sin": math.sin, "cos": math.cos, "tan": math.tan, "tanh": math.tanh, "atan": math.atan}
    tree = ast.parse(expr.replace("^", "**"), mode="eval")

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = ev(node.left), ev(node.right)
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(node.op)) if not isinstance(
                node.op, ast.Div) else (a / b if b else math.nan)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in funcs \
                and len(node.args) == 1:
            try:
                return float(funcs[node.func.id](ev(node.args[0])))
            except (ValueError, OverflowError):
                return math.nan
        raise LavaanSyntaxError(f"line {line}: {expr!r} is not a number")

    value = ev(tree)
    if not math.isfinite(value):
        raise LavaanSyntaxError(f"line {line}: {expr!r} is not a finite number")
    return value


# --------------------------------------------------------------------------- whole-model checks


def _check_duplicate(s: Statement, seen: dict[tuple, int]) -> None:
    if s.op in _CONSTRAINT_OPS:
        return
    key = (s.block, s.lhs, s.op, s.rhs)
    if s.op == "~~":
        key = (s.block, min(s.lhs, s.rhs), s.op, max(s.lhs, s.rhs))
    if key in seen:
        what = f"{s.lhs} ~ 1" if s.op == "~1" else f"{s.lhs} {s.op} {s.rhs}"
        raise LavaanSyntaxError(f"line {s.line}: {what} is already specified on line {seen[key]}; "
                                "give each parameter once (several modifiers: x + a*x + start(1)*x)")
    seen[key] = s.line


def _check_constraint_names(statements: list[Statement]) -> None:
    labels: set[str] = set()
    for s in statements:
        if s.op not in _CONSTRAINT_OPS:
            labels.update(s.labels)
    defined = {s.lhs: s.line for s in statements if s.op == ":="}
    known = set(labels)
    for s in statements:
        if s.op not in _CONSTRAINT_OPS:
            continue
        if s.op == ":=":
            if s.lhs in labels:
                raise LavaanSyntaxError(f"line {s.line}: {s.lhs} := ... reuses the name of a parameter label; give "
                                        "the defined parameter a name of its own")
            if s.lhs in known:
                raise LavaanSyntaxError(f"line {s.line}: {s.lhs} is defined twice (:=); give each its own name")
        sides = (s.rhs,) if s.op == ":=" else (s.lhs, s.rhs)
        used = [n for side in sides for n in _expression_names(side, s.line, side)]
        for n in used:
            if n in known or _PLABEL.match(n):
                continue
            if s.op == ":=" and n in defined and defined[n] > s.line:
                raise LavaanSyntaxError(f"line {s.line}: {s.lhs} := {s.rhs} uses {n!r}, which is defined later "
                                        f"(line {defined[n]}); define it first")
            if s.op != ":=" and n in defined:
                continue
            text = f"{s.lhs} := {s.rhs}" if s.op == ":=" else f"{s.lhs} {s.op} {s.rhs}"
            raise LavaanSyntaxError(f"line {s.line}: {text} uses {n!r}, which labels no parameter of the model; "
                                    f"label the parameter (e.g. y ~ {n}*x) or correct the name")
        if s.op != ":=" and not used:
            raise LavaanSyntaxError(f"line {s.line}: {s.lhs} {s.op} {s.rhs} constrains no parameter; name a label "
                                    "on one side (e.g. a == 2*b)")
        if s.op == ":=":
            known.add(s.lhs)
