"""The one safe YAML reader: every spec, profile, override, lab spec and lab config goes here.

PyYAML's safe loader runs no code, but it does unbounded work: an alias or merge-key (``<<``)
bomb of a few hundred bytes expands to billions of values (``flatten_mapping`` copies every
merged pair before any budget could count it), a base-60 integer (``1:1:1:…``) costs quadratic
time, and ``2024-02-30`` or a 5,000-digit integer escapes as a bare ``ValueError``. This
reader bounds the work *while composing*, before anything is expanded:

* the document is at most :data:`MAX_BYTES` and nested at most :data:`MAX_DEPTH` deep;
* every node records its expanded size (aliases and merge sources counted at full size), and
  the running total may not pass :data:`MAX_NODES`; an alias to a node that contains it is
  refused;
* merge keys are applied by this module (explicit keys win, then earlier merge sources), never
  by ``flatten_mapping``;
* scalars read as YAML 1.2 reads them where YAML 1.1 surprises: dates and base-60 numbers stay
  strings (ADR 0019), ``1e-3`` is a float, integers are at most 4,300 digits;
* only standard tags; duplicate keys are errors.

Every refusal is a :class:`~conveyor.errors.SpecError` naming the file, line and key, with
any echoed value cut short (:func:`short_repr`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.errors import SpecError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "load_yaml",
    "parse_value",
    "read_yaml",
    "short_repr",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50  # specs and configs nest about 5 deep; this keeps recursion far from the limit
MAX_NODES = 20_000  # values once every alias and merge key is expanded
_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_PLAIN_TAGS = {_TAG + t for t in ("map", "seq", "str", "int", "float", "bool", "null")}
Path_ = tuple[str, ...]

# YAML 1.1's implicit int and float without the base-60 forms (``22:30`` stays a string).
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X)
# YAML 1.2 reads ``1e-3`` as a float; 1.1 needs ``1.0e-3``.
_FLOAT_EXP = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages.

    A message echoes what the user wrote; a megabyte value must not become a megabyte error.
    """
    # repr of a huge string is itself huge: cut first
    text = repr(value[: 4 * limit] if isinstance(value, str) else value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 5]}… ({_size(value)})"


def _dotted(path: list[str] | Path_) -> str | None:
    """The dotted key path for a message, its middle cut when it is very deep."""
    if len(path) > 12:
        path = [*path[:5], "…", *path[-5:]]
    return ".".join(path) or None


def _size(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        return f"{len(value)} characters"
    if isinstance(value, (list, dict, tuple)):
        return f"{len(value)} items"
    return "cut"


# libyaml's safe parser (C, about 7x faster) feeds events to PyYAML's Python composer, which
# this module bounds; without libyaml, the pure-Python safe loader does both.
_BASES: tuple[type, ...] = ((Composer, yaml.CSafeLoader) if yaml.__with_libyaml__
                            else (yaml.SafeLoader,))


class _Loader(*_BASES):  # type: ignore[misc]
    """The safe loader, bounded while composing (see the module docstring)."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers
                if tag not in (_TAG + "timestamp", _TAG + "int", _TAG + "float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, text: str, *, file: str, what: str) -> None:
        _BASES[-1].__init__(self, text)  # the loader's own setup, then the composer's
        Composer.__init__(self)
        self.file = file
        self.what = what
        self.sizes: dict[int, int] = {}  # id(node) -> expanded size, once composed
        self.total = 0  # expanded size of everything composed so far
        self.aliased = False  # whether an alias has been expanded (for the message)
        self.depth = 0
        self.keys: list[str] = []  # key path of the node being composed, for messages

    def error(self, message: str, mark: Any) -> SpecError:
        return SpecError(message, file=self.file, line=mark.line + 1 if mark else None,
                         key=_dotted(self.keys))

    def count(self, size: int, mark: Any, *, alias: bool = False) -> None:
        self.total += size
        self.aliased = self.aliased or alias
        if self.total <= MAX_NODES:
            return
        if self.aliased:
            raise self.error(
                f"YAML aliases or merge keys (<<) expand this {self.what} to more than "
                f"{MAX_NODES} values; write the values out instead (an alias bomb?)", mark)
        raise self.error(f"this {self.what} holds more than {MAX_NODES} values", mark)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Compose one node, counting its expanded size before its parent can use it."""
        part = (index.value if isinstance(index, ScalarNode) and isinstance(parent, MappingNode)
                else str(index) if isinstance(index, int) else None)
        if part is not None:
            self.keys.append(part[:40])
        try:
            mark = self.peek_event().start_mark
            if self.check_event(AliasEvent):
                node = super().compose_node(parent, index)
                if id(node) not in self.sizes:
                    raise self.error("this alias refers to a value that contains it "
                                     "(a recursive alias)", mark)
                self.count(self.sizes[id(node)], mark, alias=True)
                return node
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"{self.what} is nested more than {MAX_DEPTH} levels deep",
                                 mark)
            node = super().compose_node(parent, index)
            self.depth -= 1
            if isinstance(node, SequenceNode):
                size = 1 + sum(self.sizes[id(item)] for item in node.value)
            elif isinstance(node, MappingNode):
                size = 1 + sum(self.sizes[id(k)] + self.sizes[id(v)] for k, v in node.value)
            else:
                size = 1
            self.sizes[id(node)] = size
            self.count(1, mark)  # the children were counted as they were composed
            return node
        finally:
            if part is not None:
                self.keys.pop()

    def construct_yaml_int(self, node: ScalarNode) -> int:
        if ":" in node.value:  # base 60 costs quadratic time and surprises everyone
            raise ValueError("base-60 numbers are not read")
        value = super().construct_yaml_int(node)
        str(value)  # ValueError past Python's int digit limit (hex can get there)
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        if ":" in node.value:
            raise ValueError("base-60 numbers are not read")
        return super().construct_yaml_float(node)


_Loader.add_implicit_resolver(_TAG + "int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(_TAG + "float", _FLOAT_EXP, list("-+0123456789"))
_Loader.add_constructor(_TAG + "int", _Loader.construct_yaml_int)
_Loader.add_constructor(_TAG + "float", _Loader.construct_yaml_float)


def read_yaml(path: Path, *, what: str = "spec") -> tuple[Any, dict[Path_, int]]:
    """Read one YAML file safely; return the data and the line of every key path.

    Args:
        path: the file.
        what: what the file is, for messages (``spec``, ``lab spec``, ``config``).

    Raises:
        SpecError: the file is missing, too big, not UTF-8 or not safe, bounded YAML (see
            :func:`load_yaml`).
    """
    name = str(path)
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_BYTES:
                raise SpecError(f"{what} file is {size} bytes, more than {MAX_BYTES}", file=name)
            raw = stream.read(MAX_BYTES + 1)  # a file still growing is cut, then refused
    except FileNotFoundError:
        raise SpecError(f"{what} file not found", file=name) from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} file: {exc.strerror}", file=name) from exc
    return load_yaml(raw, file=name, what=what)


def load_yaml(
    content: str | bytes, *, file: str, what: str = "spec"
) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML document safely and within bounds; return data and key lines.

    Args:
        content: the document (bytes are read as UTF-8, with or without a BOM).
        file: the name used in messages (a path, a config file's name, ``<command line>``).
        what: what the document is, for messages.

    Returns:
        The plain data (dicts, lists, str, int, float, bool, None) and the 1-based line of
        every key path (``("model", "params", "C") -> 38``).

    Raises:
        SpecError: invalid YAML, a non-standard tag, a duplicate key, an alias or merge bomb,
            nesting past :data:`MAX_DEPTH`, a document past :data:`MAX_BYTES`, or a scalar
            that cannot be read; each names the file, the line and the key.
    """
    data, lines = _load(content, file=file, what=what, fallback=False)
    return data, lines


def parse_value(text: str, *, file: str, key: str, what: str = "override") -> Any:
    """Read one value written as YAML (``0.3``, ``[1, 2]``, ``{min: 0.5}``) with the same bounds.

    Text that is not valid YAML syntax is kept as the string it is (``a: b: c``).

    Raises:
        SpecError: the value is valid YAML but refused (alias bomb, tag, duplicate key, ...).
    """
    if not text.strip():
        return ""
    try:
        data, _ = _load(text, file=file, what=what, fallback=True)
    except SpecError as exc:
        raise SpecError(exc.reason, file=file, key=key) from None
    except yaml.YAMLError:
        return text
    return data


def _load(
    content: str | bytes, *, file: str, what: str, fallback: bool
) -> tuple[Any, dict[Path_, int]]:
    if len(content) > MAX_BYTES:
        raise SpecError(f"{what} is {len(content)} bytes, more than {MAX_BYTES}", file=file)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{what} is not UTF-8 (byte {exc.start})", file=file) from None
    loader = _Loader(content, file=file, what=what)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(f"{what} file is empty", file=file)
        lines: dict[Path_, int] = {}
        data = _Builder(loader, file, what).build(node, (), lines)
    except yaml.MarkedYAMLError as exc:
        if fallback:
            raise
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise SpecError(f"invalid YAML: {problem[:200]}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        if fallback:
            raise
        raise SpecError(f"invalid YAML: {str(exc)[:200]}", file=file) from None
    finally:
        loader.dispose()
    return data, lines


class _Builder:
    """Turns a composed (and already bounded) node tree into plain data, recording key lines."""

    def __init__(self, loader: _Loader, file: str, what: str) -> None:
        self.loader = loader
        self.file = file
        self.what = what
        self.budget = MAX_NODES  # the composer's bound already holds; this is belt and braces

    def error(self, message: str, node: Node, path: Path_) -> SpecError:
        return SpecError(message, file=self.file, line=node.start_mark.line + 1,
                         key=_dotted(path))

    def build(self, node: Node, path: Path_, lines: dict[Path_, int]) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(f"{self.what} expands to more than {MAX_NODES} values", node, path)
        if node.tag not in _PLAIN_TAGS:
            raise self.error(f"YAML tag {short_repr(node.tag)} is not allowed; {self.what}s "
                             "hold plain data only", node, path)
        if isinstance(node, MappingNode):
            return self.mapping(node, path, lines)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*path, str(index))
                lines.setdefault(child, item.start_mark.line + 1)
                items.append(self.build(item, child, lines))
            return items
        return self.scalar(node, path)

    def scalar(self, node: Node, path: Path_) -> Any:
        try:
            return self.loader.construct_object(node)
        except ValueError as exc:
            kind = node.tag.removeprefix(_TAG)
            if kind == "int" and "digits" in str(exc):
                reason = (f"is an integer of more than {sys.get_int_max_str_digits()} digits; "
                          "quote it to keep it as text")
            else:
                reason = f"is not a valid {kind} ({str(exc)[:80]})"
            shown = node.value
            if len(shown) > 50:
                shown = f"{shown[:45]}… ({len(shown)} characters)"
            raise self.error(f"{shown} {reason}", node, path) from None

    def key(self, node: Node, path: Path_) -> str:
        if not isinstance(node, ScalarNode) or node.tag not in _PLAIN_TAGS:
            raise self.error("mapping keys must be plain scalars", node, path)
        key = self.scalar(node, path)
        if key is None:
            raise self.error("mapping keys must be plain scalars (this one is null)", node, path)
        return str(key)

    def mapping(self, node: MappingNode, path: Path_, lines: dict[Path_, int]) -> dict[str, Any]:
        own: dict[str, Any] = {}
        sources: list[Node] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if sources is not None:
                    raise self.error("'<<' appears twice in this mapping", key_node, path)
                sources = (value_node.value if isinstance(value_node, SequenceNode)
                           else [value_node])
                continue
            key = self.key(key_node, path)
            child = (*path, key)
            if key in own:
                raise self.error(f"duplicate key {short_repr(key)} (first on line "
                                 f"{lines[child]})", key_node, child)
            lines[child] = key_node.start_mark.line + 1
            own[key] = self.build(value_node, child, lines)
        if not sources:
            return own
        # YAML merge keys: the mapping's own keys win, then earlier sources over later ones.
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.error("'<<' merges mappings only (an alias of a mapping, or a list "
                                 "of them)", source, path)
            source_lines: dict[Path_, int] = {}
            value = self.build(source, path, source_lines)
            for key, item in value.items():
                if key in merged or key in own:
                    continue
                merged[key] = item
                for child, line in source_lines.items():
                    if child[: len(path) + 1] == (*path, key):
                        lines.setdefault(child, line)
        merged.update(own)
        return merged
