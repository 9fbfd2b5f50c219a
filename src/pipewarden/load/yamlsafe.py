"""Safe YAML reading with a map from each path to its line.

Two readers with one result. The fast path (`parse_yaml`) lets libyaml's C composer
(`CSafeLoader`, YAML 1.1 tag resolution switched off) build the node tree and walks it in
Python; that composer recurses in C and crashes on very deep input, so a cheap guard
(`_may_nest_deeply`) sends text that could nest deeply to the iterative reader
(`parse_yaml_events`), which walks libyaml's event stream with an explicit stack. Both enforce
every limit while they build the value:

- size (checked by the caller before reading), depth, alias expansion counted on the node
  tree (a billion-laughs file fails after a few events, not after expanding), duplicate keys,
  no tags beyond the YAML core ones (so no Python object construction);
- scalars are read with YAML 1.2 core rules, not YAML 1.1: `17:30` stays the string
  "17:30" (1.1 reads it as the sexagesimal integer 1050), `off`/`yes`/`no`/`on` stay strings
  (1.1 reads them as booleans), and dates stay strings. Only `true`/`false` are booleans;
- mapping keys are always the text as written: `500:` is the key "500" and `true:` the key
  "true" (JSON keys are strings, and rules compare them with strings), in every file read here.
"""

from __future__ import annotations

import operator
import os
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from pipewarden.errors import LoadError
from pipewarden.model.paths import IDENT_CACHE, join_index, join_key, line_for

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# YAML 1.2 core schema: the null and boolean spellings, then one pattern for the numbers
# (one regex call per number-like scalar, such as a host "10.0.0.1:80", instead of four).
_CONSTANTS: dict[str, Any] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
}
_NUMBER = re.compile(
    r"(?P<int>[-+]?[0-9]+)\Z"
    r"|(?P<float>[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)\Z"
    r"|(?P<inf>[-+]?\.(?:inf|Inf|INF))\Z"
    r"|(?P<nan>\.(?:nan|NaN|NAN))\Z"
)
_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


@dataclass(frozen=True)
class ParsedYaml:
    """A document and the 1-based line of every path in it (see `join_key`/`join_index`)."""

    value: Any
    lines: dict[str, int]

    def line_of(self, path: str) -> int:
        """The line of `path`, or of its nearest parent that exists in the file."""
        return line_for(self.lines, path)


# First characters that can start a null, boolean or number; anything else is a string.
_SPECIAL_FIRST = frozenset("~nNtTfF0123456789+-.")


def resolve_plain(text: str) -> Any:
    """Read an unquoted scalar with YAML 1.2 core rules.

    Hot callers test `text and text[0] not in _SPECIAL_FIRST` themselves first: most scalars
    are plain words, and skipping the call for them saves a tenth of the walk.
    """
    if text and text[0] not in _SPECIAL_FIRST:
        return text
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    number = _NUMBER.match(text)
    if number is None:
        return text
    kind = number.lastgroup
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "inf":
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan")


def _explicit(tag: str, text: str, line: int) -> Any:
    """A scalar with an explicit core tag such as `!!str 17:30`."""
    kind = tag[len(_CORE) :]
    if kind == "str":
        return text
    value = resolve_plain(text)
    expected: dict[str, type | tuple[type, ...]] = {
        "int": int, "float": (int, float), "bool": bool, "null": type(None)
    }
    if isinstance(value, bool) and kind != "bool":
        value = text
    if not isinstance(value, expected[kind]):
        raise LoadError(f"value {text!r} is not a valid !!{kind}", line=line)
    return float(value) if kind == "float" and isinstance(value, (int, float)) else value


class _Frame:
    """A collection being built: its value, path, and (for mappings) the pending key."""

    __slots__ = ("anchor", "is_map", "key", "key_line", "merge_keys", "merging", "path", "size", "value")

    def __init__(self, value: Any, path: str, is_map: bool, anchor: str | None) -> None:
        self.value = value
        self.path = path
        self.is_map = is_map
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.anchor = anchor
        self.size = 1
        self.merge_keys: set[Any] = set()
        self.merging = False  # the pending key is a plain `<<` (a merge key)


_NO_KEY = object()


def _check_tag(tag: str | None, line: int, path: str = "") -> None:
    if tag is None or tag in ("!", "?"):
        return
    if tag not in _ALLOWED_TAGS:
        raise LoadError(
            f"the tag {tag!r} is not allowed; remove it (only plain YAML data is accepted)",
            line=line,
            path=path,
        )


_PLAIN = "!pipewarden/plain"
_STR = _CORE + "str"
_BRACKETS = re.compile(r"[\[\]{}]")
_TEXT_THAT_MAY_HOLD_BRACKETS = ("'", '"', "#", "!")
# Indentation, block indicators and a BOM: what a line starts with when it nests blocks.
_BLOCK_PREFIX = " \t?:-\ufeff"
# libyaml's composer recurses in C, one level per nesting level, and crashed the interpreter at
# about 20,000 levels on an 8 MiB stack; texts that could go past this bound take the iterative
# parser instead (it also keeps threads with small stacks safe: pipelines read from git are
# parsed in threads).
COMPOSER_SAFE_DEPTH = 1000


class _Composer(_Loader):  # type: ignore[misc]
    """libyaml's composer with YAML 1.1 tag resolution switched off.

    Plain scalars get a marker tag so that `resolve_plain` reads them with YAML 1.2 core
    rules; explicit tags are kept so that disallowed ones can be rejected.
    """

    # The composer calls these path-resolver hooks around every node. No path resolvers are
    # registered, so builtins taking the same arguments stand in as C-level no-ops: two Python
    # calls fewer per node, about 30 µs per pipeline file.
    descend_resolver = operator.is_  # (parent, index) -> ignored
    ascend_resolver = tuple  # () -> ignored

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _CORE + "str"
        return _CORE + ("seq" if kind is yaml.SequenceNode else "map")


def _may_nest_deeply(text: str) -> bool:
    """A cheap over-estimate: could this text make libyaml's C composer recurse deeper than
    COMPOSER_SAFE_DEPTH? (Depths past MAX_DEPTH but below that are rejected by the walk.)

    A bracket or a leading character can open two levels (`[a: ` is a list and a mapping; a
    block list may sit at its parent key's column), and flow nesting adds to block nesting,
    so each kind gets a quarter of the bound. Flow nesting needs an opening bracket per level
    (or two), so the count of `[` and `{` bounds it,
    whatever quotes and comments hold. Past the bound (a big inventory in flow style), the
    brackets are counted open and closed, which is exact when no closer can be text: inside
    a flow collection, plain scalars cannot hold brackets, so only quotes, comments and
    verbatim tags could (`'`, `"`, `#`, `!`). Block nesting needs a character per level at the
    start of a line (indentation, `- `, `? `, `: `; libyaml also skips a BOM there), on lines
    as libyaml breaks them (str.splitlines breaks at all of those breaks and a few more, which
    only shortens the parts it returns, never their starts).
    """
    bound = COMPOSER_SAFE_DEPTH // 4
    if text.count("[") + text.count("{") > bound:
        if any(mark in text for mark in _TEXT_THAT_MAY_HOLD_BRACKETS):
            return True
        depth = 0
        for bracket in _BRACKETS.findall(text):
            if bracket in "[{":
                depth += 1
                if depth > bound:
                    return True
            elif depth:
                depth -= 1
    for line in text.splitlines():
        if len(line) > bound and len(line) - len(line.lstrip(_BLOCK_PREFIX)) > bound:
            return True
    return False


class _ParserSwitch(threading.local):
    """Per thread: a thread that checks files again after a worker died does not slow down (or
    change the line numbers of) the files other threads parse meanwhile."""

    iterative_only = False


_switch = _ParserSwitch()


@contextmanager
def iterative_parsing() -> Iterator[None]:
    """Parse with the iterative event parser only, never the recursive C composer, in this
    thread: the safe mode after a worker process died (see evaluation's evaluate_paths)."""
    before, _switch.iterative_only = _switch.iterative_only, True
    try:
        yield
    finally:
        _switch.iterative_only = before


def parse_yaml(text: str) -> ParsedYaml:
    """Parse exactly one YAML document from `text`; raise `LoadError` with a line on any problem.

    The fast path is libyaml's C composer plus a Python walk over its nodes. The composer
    recurses without a limit (and crashes on very deep input), so text that might nest deeply
    takes the event-driven path, which is slower but iterative.
    """
    if _switch.iterative_only or _may_nest_deeply(text):
        return parse_yaml_events(text)
    try:
        loader = _Composer(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.composer.ComposerError as exc:
        if "single document" in f"{exc.context} {exc.problem}":
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            raise LoadError(
                "the file holds more than one YAML document; keep exactly one", line=line
            ) from None
        raise _syntax_error(exc, text) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text) from None
    except yaml.YAMLError as exc:
        raise LoadError(f"invalid YAML: {exc}", line=1) from None
    if node is None:
        raise LoadError("the file is empty; it must hold one YAML document", line=1)
    # An alias needs an anchor, and an anchor needs '&': without one, nothing can expand.
    return _NodeWalker().build(node, may_alias="&" in text)


def _syntax_error(exc: yaml.MarkedYAMLError, text: str) -> LoadError:
    """Text YAML cannot parse: the line is where libyaml noticed the problem (pipeline.md).

    A problem noticed at the end of the stream (an unclosed bracket or quote) has its mark
    just past the final newline, a line the file does not have: editors and CI annotations
    cannot point there, so it is reported at the file's last line and the message says so.
    """
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if mark is None:
        return LoadError(f"invalid YAML: {problem}", line=1)
    line = mark.line + 1
    last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    if line > last:
        return LoadError(f"invalid YAML: {problem} (noticed at the end of the file, after line {last})",
                         line=last)
    return LoadError(f"invalid YAML: {problem} (noticed at line {line}, column {mark.column + 1})", line=line)


class _NodeWalker:
    """Turns composed nodes into plain values and a path-to-line map, enforcing the limits."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.sizes: dict[int, int] = {}

    def build(self, root: yaml.Node, may_alias: bool = True) -> ParsedYaml:
        if may_alias and self._expanded_size(root) > MAX_ALIAS_NODES and self._has_alias:
            raise LoadError(
                f"aliases expand the document beyond {MAX_ALIAS_NODES:,} nodes; "
                "remove the repeated aliases",
                line=self._alias_line,
            )
        self.lines[""] = root.start_mark.line + 1
        value = self._value(root, "", 0)
        return ParsedYaml(value, self.lines)

    _has_alias = False
    _alias_line = 1

    def _expanded_size(self, root: yaml.Node) -> int:
        """Size of the node tree with every alias expanded, computed without expanding.

        An iterative post-order walk: each distinct node's size is computed once, after its
        children's, and a node reached again through an alias adds its size without a walk.
        """
        sizes = self.sizes
        entered: set[int] = set()
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            key = id(node)
            if children_done:
                if isinstance(node, yaml.SequenceNode):
                    sizes[key] = 1 + sum(sizes[id(c)] for c in node.value)
                elif isinstance(node, yaml.MappingNode):
                    sizes[key] = 1 + sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
                else:
                    sizes[key] = 1
                continue
            if key in entered:
                if key not in sizes:
                    raise LoadError("an alias refers to its own anchor (a recursive structure)",
                                    line=node.start_mark.line + 1)
                self._note_alias(node)
                continue
            entered.add(key)
            stack.append((node, True))
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    children.append(k)
                    children.append(v)
            for child in reversed(children):
                if id(child) in entered:
                    if id(child) not in sizes:
                        raise LoadError("an alias refers to its own anchor (a recursive structure)",
                                        line=child.start_mark.line + 1)
                    self._note_alias(child)
                else:
                    stack.append((child, False))
        return sizes[id(root)]

    def _note_alias(self, node: yaml.Node) -> None:
        if not self._has_alias:
            self._has_alias = True
            self._alias_line = node.start_mark.line + 1

    def _value(self, node: yaml.Node, path: str, depth: int) -> Any:
        line = node.start_mark.line + 1
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag == _PLAIN:
                return resolve_plain(node.value)
            if tag not in _ALLOWED_TAGS:
                _check_tag(tag, line, path)
            return _explicit(tag, node.value, line)
        if tag not in _ALLOWED_TAGS:
            _check_tag(tag, line, path)
        if depth >= MAX_DEPTH:
            raise LoadError(f"the document nests deeper than {MAX_DEPTH} levels; flatten it", line=line)
        lines = self.lines
        scalar = yaml.ScalarNode
        special = _SPECIAL_FIRST
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                child_path = f"{path}[{index}]"
                lines[child_path] = child.start_mark.line + 1
                child_tag = child.tag if type(child) is scalar else None
                if child_tag == _PLAIN:
                    item = child.value
                    items.append(item if item and item[0] not in special else resolve_plain(item))
                elif child_tag == _STR:  # quoted (or tagged !!str): the text itself
                    items.append(child.value)
                else:
                    items.append(self._value(child, child_path, depth + 1))
            return items
        mapping: dict[Any, Any] = {}
        merged: set[Any] = set()
        prefix = f"{path}." if path else ""
        plain_keys = IDENT_CACHE
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if type(key_node) is not scalar:
                raise LoadError("a mapping key must be a plain value, not a list or mapping", line=key_line)
            plain_key = key_node.tag == _PLAIN
            # A key is the text as written (JSON keys are strings): `500:` is the key "500",
            # never the integer 500, whatever YAML would resolve the scalar to.
            key = key_node.value
            if not plain_key and key_node.tag != _STR:
                self._value(key_node, path, depth + 1)  # rejects disallowed or invalid tags
            if plain_key and key == "<<":
                self._merge(mapping, merged, self._value(value_node, path, depth + 1), path, key_line)
                continue
            if key in mapping and key not in merged:
                raise LoadError(
                    f"duplicate key {key!r}; each key may appear once", line=key_line,
                    path=join_key(path, key),
                )
            if merged:
                merged.discard(key)
            # Inline of join_key for the common case: a key that is a plain identifier.
            child_path = prefix + key if plain_keys.get(key) else join_key(path, key)
            lines[child_path] = key_line
            value_tag = value_node.tag if type(value_node) is scalar else None
            if value_tag == _PLAIN:
                value = value_node.value
                mapping[key] = value if value and value[0] not in special else resolve_plain(value)
            elif value_tag == _STR:  # quoted (or tagged !!str): the text itself
                mapping[key] = value_node.value
            else:
                mapping[key] = self._value(value_node, child_path, depth + 1)
        return mapping

    def _merge(self, mapping: dict[Any, Any], merged: set[Any], value: Any, path: str, line: int) -> None:
        sources = value if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                raise LoadError("a merge key '<<' must name a mapping or a list of them", line=line)
            for key, item in source.items():
                if key not in mapping:
                    mapping[key] = item
                    merged.add(key)
                    self.lines.setdefault(join_key(path, str(key)), line)


def parse_yaml_events(text: str) -> ParsedYaml:
    """The iterative parser: same result as `parse_yaml`, safe for any nesting depth."""
    lines: dict[str, int] = {}
    anchors: dict[str, tuple[Any, int]] = {}
    scalar_texts: dict[str, str] = {}  # anchor -> text as written, for aliases used as keys
    stack: list[_Frame] = []
    expanded = 0
    documents = 0
    root: Any = None
    root_seen = False

    def child_path(frame: _Frame, line: int) -> str | None:
        """Path of the next value in `frame`, or None when the next node is a mapping key."""
        if frame.is_map:
            if frame.key is _NO_KEY:
                return None
            return join_key(frame.path, str(frame.key))
        return join_index(frame.path, len(frame.value))

    def add_value(value: Any, size: int, line: int, anchor: str | None, plain: bool = False) -> None:
        nonlocal root, root_seen
        if anchor is not None:
            anchors[anchor] = (value, size)
        if not stack:
            root, root_seen = value, True
            return
        frame = stack[-1]
        frame.size += size
        if frame.is_map:
            if frame.key is _NO_KEY:
                if isinstance(value, (dict, list)):
                    raise LoadError(
                        "a mapping key must be a plain value, not a list or mapping", line=line
                    )
                frame.key = value
                frame.key_line = line
                frame.merging = value == "<<" and plain
                if not frame.merging:
                    key = value
                    if value in frame.value and value not in frame.merge_keys:
                        raise LoadError(
                            f"duplicate key {key!r}; each key may appear once", line=line,
                            path=join_key(frame.path, key),
                        )
                    lines[join_key(frame.path, key)] = line
                return
            key = frame.key
            frame.key = _NO_KEY
            if frame.merging:
                frame.merging = False
                _merge(frame, value, frame.key_line)
                return
            frame.merge_keys.discard(key)
            frame.value[key] = value
        else:
            frame.value.append(value)

    def _merge(frame: _Frame, value: Any, line: int) -> None:
        sources = value if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                raise LoadError("a merge key '<<' must name a mapping or a list of them", line=line)
            for k, v in source.items():
                if k not in frame.value:
                    frame.value[k] = v
                    frame.merge_keys.add(k)
                    lines.setdefault(join_key(frame.path, str(k)), line)

    try:
        for event in yaml.parse(text, Loader=_Loader):
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise LoadError(
                        "the file holds more than one YAML document; keep exactly one", line=line
                    )
                continue
            if isinstance(event, yaml.ScalarEvent):
                _check_tag(event.tag, line)
                path = child_path(stack[-1], line) if stack else ""
                if path is not None:
                    lines[path] = stack[-1].key_line if stack and stack[-1].is_map else line
                if event.tag is not None and event.tag not in ("!",) and event.tag != "?":
                    value = _explicit(event.tag, event.value, line)
                elif event.implicit[0]:
                    value = resolve_plain(event.value)
                else:
                    value = event.value
                expanded += 1
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
                    scalar_texts[event.anchor] = event.value
                if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
                    value = event.value  # a key is the text as written, as in parse_yaml
                add_value(value, 1, line, None, event.tag is None and event.implicit[0])
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                _check_tag(event.tag, line)
                if len(stack) >= MAX_DEPTH:
                    raise LoadError(
                        f"the document nests deeper than {MAX_DEPTH} levels; flatten it", line=line
                    )
                is_map = isinstance(event, yaml.MappingStartEvent)
                if stack:
                    path = child_path(stack[-1], line)
                    if path is None:
                        raise LoadError(
                            "a mapping key must be a plain value, not a list or mapping", line=line
                        )
                    lines[path] = stack[-1].key_line if stack[-1].is_map else line
                else:
                    path = ""
                    lines[""] = line
                expanded += 1
                stack.append(_Frame({} if is_map else [], path, is_map, event.anchor))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                add_value(frame.value, frame.size, line, frame.anchor)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise LoadError(f"alias *{event.anchor} names no anchor", line=line)
                value, size = anchors[event.anchor]
                if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
                    # An aliased scalar used as a key is its anchor's text, as in parse_yaml.
                    value = scalar_texts.get(event.anchor, value)
                expanded += size
                if expanded > MAX_ALIAS_NODES:
                    raise LoadError(
                        f"aliases expand the document beyond {MAX_ALIAS_NODES:,} nodes; "
                        "remove the repeated aliases",
                        line=line,
                    )
                if stack and not (stack[-1].is_map and stack[-1].merging):
                    path = child_path(stack[-1], line)
                    if path is not None:
                        lines[path] = stack[-1].key_line if stack[-1].is_map else line
                add_value(value, size, line, None)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text) from None
    except yaml.YAMLError as exc:
        raise LoadError(f"invalid YAML: {exc}", line=1) from None
    except RecursionError:
        raise LoadError(f"the document nests deeper than {MAX_DEPTH} levels", line=1) from None
    if not root_seen or documents == 0:
        raise LoadError("the file is empty; it must hold one YAML document", line=1)
    return ParsedYaml(root, lines)


def decode(data: bytes) -> str:
    """Bytes to text: UTF-8 (with or without BOM) or BOM-marked UTF-16; else a LoadError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoadError("the file is not valid UTF-16 text", line=1, unparseable=True) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LoadError(
            f"the file is not UTF-8 text (undecodable byte 0x{data[exc.start]:02x} "
            f"at line {line}); save it as UTF-8",
            line=line,
            unparseable=True,
        ) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LoadError(f"the file contains a NUL byte (line {line}); it is not a text file", line=line, unparseable=True)
    return text


def read_limited(path: str, limit: int = MAX_BYTES) -> bytes:
    """Read at most `limit` bytes of `path`, failing clearly when the file is larger."""
    try:
        # A FIFO or device named pipeline.yaml must not block or stream forever.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise LoadError("is not a regular file (a FIFO, device or socket); pipewarden reads plain files only", line=1)
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise LoadError("is a directory, not a file", line=1) from None
    except OSError as exc:
        raise LoadError(f"cannot read the file: {exc.strerror or exc}", line=1) from None
    check_size(data, limit)
    return data


def check_size(data: bytes, limit: int = MAX_BYTES) -> None:
    if len(data) > limit:
        raise LoadError(
            f"the file is larger than {limit // 1024} KiB ({limit:,} bytes); "
            "split or shorten it",
            line=1,
        )


# An inventory lists a whole company's repositories: 50,000 entries take about 4 MiB.
INVENTORY_MAX_BYTES = 64 * 1024 * 1024


def load_yaml_file(path: str, limit: int = MAX_BYTES) -> ParsedYaml:
    """Read, decode and parse one YAML file under all the safety limits."""
    return parse_yaml_bytes(read_limited(path, limit), limit)


def parse_yaml_bytes(data: bytes, limit: int = MAX_BYTES) -> ParsedYaml:
    """Decode and parse content read elsewhere (a git object, say) under the same limits."""
    check_size(data, limit)
    return parse_yaml(decode(data))


# A Rego module is code, not data, but an organisation's biggest rule stays far below this.
TEXT_MAX_BYTES = 4 * 1024 * 1024


def read_text_file(path: str, limit: int = TEXT_MAX_BYTES) -> str:
    """Read a text file other than YAML (a Rego module) under the same rules as every file
    pipewarden reads: a size limit, UTF-8 (a leading byte order mark, as some Windows editors
    write, is skipped) or BOM-marked UTF-16, no NUL bytes. Raises `LoadError` with the file."""
    try:
        return decode(read_limited(path, limit))
    except LoadError as exc:
        raise LoadError(exc.message, path, exc.line, unparseable=exc.unparseable) from None
