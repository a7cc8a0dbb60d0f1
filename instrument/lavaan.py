"""Read lavaan model syntax into a list of statements.

lavaan's model syntax is the lingua franca for latent-variable models (Rosseel, 2012,
*lavaan: An R package for structural equation modeling*, J. Stat. Softw. 48(2)). This module
reads the part of it gapscale uses:

=========  =====================================  ===========================
operator   meaning                                example
=========  =====================================  ===========================
``=~``     is measured by (loadings)              ``GAP1 =~ GAP1_1 + GAP1_2``
``~``      is regressed on                        ``GAP2 ~ a*GAP1 + IM``
``~~``     (residual) (co)variance                ``VCC ~~ VCD``
``~ 1``    intercept                              ``GAP1_1 ~ 1``
``:=``     defined parameter                      ``ind := a*b``
``==``     equality constraint                    ``a == b``
``<  >``   inequality constraint                  ``a > 0``
=========  =====================================  ===========================

Right-hand terms may carry one or more modifiers joined by ``*``: a number fixes the
parameter (``1*x``), ``NA`` frees it, a name labels it (``a*x``), ``start(0.5)`` gives a
starting value, ``label("a")`` labels it. Comments start with ``#`` or ``!``; statements are
separated by newlines or ``;``, and a line that ends in an operator or ``+`` (or a line with no
operator at all) continues the previous statement, as in lavaan. Multi-group vectors
(``c(a, b)*x``) are not read yet and are reported as such.

In R the same parse is ``lavaan::lavParseModelString(model, as.data.frame. = TRUE)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import InputError

__all__ = ["LavaanModel", "LavaanSyntaxError", "Statement", "parse_model", "read_model"]

# Order matters: longer operators first so '=~' is not read as '='+'~'.
_OPERATORS = ("=~", "~~", ":=", "==", "<", ">", "~")
_NAME = re.compile(r"^[A-Za-z.][A-Za-z0-9._]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CALL = re.compile(r"^(start|label|equal)\((.*)\)$")


class LavaanSyntaxError(InputError):
    """Model syntax gapscale cannot read; the message names the line and what is wrong."""


@dataclass(frozen=True)
class Statement:
    """One parameter (or constraint) of a model, in lavaan's parameter-table terms.

    ``fixed`` holds the value when the parameter is fixed (``1*x``); ``free`` is False then.
    For ``:=``, ``==``, ``<`` and ``>``, ``rhs`` is the expression as written.
    """

    lhs: str
    op: str
    rhs: str
    label: str = ""
    fixed: float | None = None
    start: float | None = None
    free_override: bool = False  # NA* given explicitly
    line: int = 0

    @property
    def free(self) -> bool:
        return self.fixed is None


@dataclass(frozen=True)
class LavaanModel:
    """A parsed model: statements in the order written."""

    statements: tuple[Statement, ...]

    def by_op(self, op: str) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.op == op)

    @property
    def latents(self) -> tuple[str, ...]:
        """Latent variables: left-hand sides of ``=~``, in order of appearance."""
        return tuple(dict.fromkeys(s.lhs for s in self.by_op("=~")))

    @property
    def indicators(self) -> dict[str, tuple[str, ...]]:
        """Latent -> its indicators (observed or latent, for higher-order factors)."""
        out: dict[str, list[str]] = {}
        for s in self.by_op("=~"):
            out.setdefault(s.lhs, []).append(s.rhs)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def observed(self) -> tuple[str, ...]:
        """Observed variables: every variable name that is not a latent."""
        latents = set(self.latents)
        names = []
        for s in self.statements:
            if s.op in ("=~",):
                names.append(s.rhs)
            elif s.op in ("~", "~~"):
                names.extend([s.lhs, s.rhs])
            elif s.op == "~1":
                names.append(s.lhs)
        return tuple(n for n in dict.fromkeys(names) if n not in latents)

    @property
    def regressions(self) -> dict[str, tuple[str, ...]]:
        """Outcome -> its predictors, from ``~`` statements."""
        out: dict[str, list[str]] = {}
        for s in self.by_op("~"):
            out.setdefault(s.lhs, []).append(s.rhs)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def labels(self) -> dict[str, Statement]:
        return {s.label: s for s in self.statements if s.label}


def read_model(path: str | Path) -> LavaanModel:
    """Read a lavaan-syntax file (UTF-8). Raises ``LavaanSyntaxError`` with file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LavaanSyntaxError(f"{path}: model file not found") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise LavaanSyntaxError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    try:
        return parse_model(text)
    except LavaanSyntaxError as exc:
        raise LavaanSyntaxError(f"{path}: {exc}") from None


def parse_model(text: str) -> LavaanModel:
    """Parse lavaan model syntax.

    Parameters
    ----------
    text : str
        The model, as it would be passed to ``lavaan::sem(model = ...)``.

    Returns
    -------
    LavaanModel

    Raises
    ------
    LavaanSyntaxError
        With the line number and the offending text.
    """
    statements: list[Statement] = []
    for line_no, stmt in _logical_lines(text):
        statements.extend(_parse_statement(stmt, line_no))
    if not statements:
        raise LavaanSyntaxError("the model is empty (no statements after removing comments)")
    _check_duplicates(statements)
    return LavaanModel(tuple(statements))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Strip comments, split on newlines and ';', and join continuation lines."""
    pieces: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = re.split(r"[#!]", raw, maxsplit=1)[0]
        for part in line.split(";"):
            part = part.strip()
            if part:
                pieces.append((n, part))
    out: list[tuple[int, str]] = []
    for n, part in pieces:
        continues = out and (
            _ends_open(out[-1][1]) or part.startswith("+") or part.startswith("*") or not _has_operator(part)
        )
        if continues:
            out[-1] = (out[-1][0], out[-1][1] + " " + part)
        else:
            out.append((n, part))
    return out


def _ends_open(s: str) -> bool:
    return s.endswith(("+", "*", "=~", "~", "~~", ":=", "==", "<", ">", "(", ","))


def _has_operator(s: str) -> bool:
    return any(op in s for op in _OPERATORS)


def _split_operator(stmt: str, line: int) -> tuple[str, str, str]:
    # Find the first operator outside parentheses, preferring the longest at each position.
    depth = 0
    for i, ch in enumerate(stmt):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            for op in _OPERATORS:
                if stmt.startswith(op, i):
                    return stmt[:i].strip(), op, stmt[i + len(op):].strip()
    raise LavaanSyntaxError(f"line {line}: no operator (=~, ~, ~~, :=, ==, <, >) in {stmt!r}")


def _parse_statement(stmt: str, line: int) -> list[Statement]:
    lhs, op, rhs = _split_operator(stmt, line)
    if not lhs:
        raise LavaanSyntaxError(f"line {line}: nothing on the left of {op!r} in {stmt!r}")
    if not rhs:
        raise LavaanSyntaxError(f"line {line}: nothing on the right of {op!r} in {stmt!r}")
    if op in (":=", "==", "<", ">"):
        if op == ":=" and not _NAME.match(lhs):
            raise LavaanSyntaxError(f"line {line}: defined parameter name {lhs!r} is not a valid name")
        return [Statement(lhs, op, " ".join(rhs.split()), line=line)]
    if not _NAME.match(lhs):
        raise LavaanSyntaxError(f"line {line}: {lhs!r} is not a variable name (in {stmt!r})")
    if op == "~" and rhs.strip() == "1":
        return [Statement(lhs, "~1", "", line=line)]
    out = []
    for term in _split_terms(rhs):
        *mods, name = [t.strip() for t in _split_top(term, "*")]
        if op == "~" and name == "1":
            out.append(_with_modifiers(Statement(lhs, "~1", "", line=line), mods, line, term))
            continue
        if not _NAME.match(name):
            raise LavaanSyntaxError(f"line {line}: {name!r} is not a variable name (in {stmt!r})")
        out.append(_with_modifiers(Statement(lhs, op, name, line=line), mods, line, term))
    return out


def _with_modifiers(s: Statement, mods: list[str], line: int, term: str) -> Statement:
    label, fixed, start, na = s.label, s.fixed, s.start, False
    for m in mods:
        call = _CALL.match(m)
        if m == "NA":
            na, fixed = True, None
        elif _NUMBER.match(m):
            fixed = float(m)
        elif call and call.group(1) == "start":
            try:
                start = float(call.group(2))
            except ValueError:
                raise LavaanSyntaxError(f"line {line}: start() needs a number, got {m!r}") from None
        elif call and call.group(1) in ("label", "equal"):
            label = call.group(2).strip().strip("\"'")
        elif m.startswith("c("):
            raise LavaanSyntaxError(
                f"line {line}: group vectors like {m!r} are not supported yet; "
                "write one model per group or use labels"
            )
        elif _NAME.match(m):
            label = m
        else:
            raise LavaanSyntaxError(f"line {line}: cannot read modifier {m!r} in {term!r}")
    return Statement(s.lhs, s.op, s.rhs, label=label, fixed=fixed, start=start,
                     free_override=na, line=line)


def _split_terms(rhs: str) -> list[str]:
    terms = [t.strip() for t in _split_top(rhs, "+")]
    if any(not t for t in terms):
        raise LavaanSyntaxError(f"an empty term in {rhs!r} (two '+' in a row?)")
    return terms


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in s:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_duplicates(statements: list[Statement]) -> None:
    seen: dict[tuple[str, str, str], int] = {}
    for s in statements:
        if s.op not in ("=~", "~", "~~", "~1"):
            continue
        key = (s.lhs, s.op, s.rhs)
        if s.op == "~~":
            key = (min(s.lhs, s.rhs), s.op, max(s.lhs, s.rhs))
        if key in seen:
            raise LavaanSyntaxError(
                f"line {s.line}: {s.lhs} {s.op} {s.rhs} is already specified on line {seen[key]}"
            )
        seen[key] = s.line
