"""The one YAML reader of gapscale: every YAML file a user gives (instrument, params, hypotheses)
is read here.

YAML can describe a document far larger than its file: aliases (``*a``) repeat an anchored node
(``&a``), so nine lines of nested aliases expand to a billion strings ("billion laughs"), and a
deeply nested flow collection exhausts the parser's recursion. gapscale's files need neither, so
this reader refuses them before anything is built:

* a file larger than :data:`MAX_BYTES` is refused unread;
* an alias (and with it the ``<<: *a`` merge key) is refused, with its line;
* nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_NODES` nodes are refused;
* a key that appears twice in one mapping is refused (YAML would keep the last silently);
* only YAML's safe types are built (no Python objects).

Every refusal is an :class:`~analysis.errors.InputError` whose message names the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from analysis.errors import InputError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YamlFileError", "read_yaml"]

MAX_BYTES = 2_000_000  # the default instrument is 30 kB, params.yaml 5 kB
MAX_DEPTH = 50  # gapscale's deepest document is about 5 levels
MAX_NODES = 200_000


class YamlFileError(InputError):
    """A YAML file that cannot be read; ``problem`` is the message without the file name."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


class _SafeLoader(yaml.SafeLoader):
    """Safe loader that refuses aliases, caps depth and node count, and refuses duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Refused(event.start_mark, "YAML aliases (*name) are not accepted in gapscale files; "
                                             "write the value out instead of referring to an anchor")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(self.peek_event().start_mark, f"more than {MAX_NODES} YAML nodes; gapscale files are "
                                                         "far smaller")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _Refused(key_node.start_mark, f"a {type(key).__name__} cannot be a mapping key; "
                                                    "keys are names or numbers") from None
            if key in seen:
                raise _Refused(key_node.start_mark, f"key {_short(key)} appears twice in one mapping", column=False)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, mark, problem: str, column: bool = True):
        super().__init__(problem)
        self.mark, self.problem, self.column = mark, problem, column


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _where(mark, column: bool = True) -> str:
    if mark is None:
        return ""
    return f"line {mark.line + 1}, column {mark.column + 1}: " if column else f"line {mark.line + 1}: "


def read_yaml(path: str | Path) -> Any:
    """Read one YAML document safely (see the module's description of what is refused).

    Parameters
    ----------
    path : str or Path
        The file. A UTF-8 byte-order mark is allowed.

    Returns
    -------
    The document: dicts, lists, strings, numbers, booleans, dates and None (None for an empty file).

    Raises
    ------
    YamlFileError
        (an :class:`~analysis.errors.InputError`) naming the file, the line and what is wrong.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise YamlFileError(path, "file not found") from None
    except IsADirectoryError:
        raise YamlFileError(path, "is a directory, not a YAML file") from None
    except OSError as exc:
        raise YamlFileError(path, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise YamlFileError(path, f"larger than {MAX_BYTES} bytes; a gapscale YAML file is far smaller "
                                  "(is it the right file?)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlFileError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    loader = None
    try:
        loader = _SafeLoader(text)  # its reader refuses non-printable characters at once
        return loader.get_single_data()
    except _Refused as exc:
        raise YamlFileError(path, f"{_where(exc.mark, exc.column)}{exc.problem}") from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlFileError(path, f"character U+{code:04X} at position {exc.position} is not allowed in YAML (a "
                                  "control character); remove it") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlFileError(path, f"{_where(mark)}YAML syntax error: {_short(problem, 200)}") from None
    except RecursionError:
        raise YamlFileError(path, f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()
