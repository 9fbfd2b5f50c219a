"""Round-trip YAML edits that change only the lines they must.

ruamel.yaml's round-trip mode keeps comments, key order, quotes and flow style, but a full
dump still normalises some things it does not model: extra spaces after a colon, spaces inside
flow brackets, and comments or a `---` before the document. A policy owner who reviews the diff
of a promotion should see only the lines of the rule that changed, so `render` dumps with
ruamel and then splices: every changed stretch of lines that lies outside the regions the edit
declared (`touch`) is put back as it was. The splice is only used when it reads back to the very
same data as the full dump; otherwise the full dump is written, which is still correct YAML.
"""

from __future__ import annotations

import copy
import difflib
import io
import itertools
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.yamlsafe import parse_yaml

# Default layout when a file shows none: the style of the org-config.md examples.
DEFAULT_MAPPING = 2
DEFAULT_OFFSET = 2
_KEY_LINE = re.compile(r"^(\s*)(?:- +)?[^#\s][^#]*:\s*(#.*)?$")


def detect_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file writes them.

    ruamel's own guess counts a `  - rule:` item as a mapping indent of 4, which would re-indent
    every block mapping of the file; so look at each `key:` line that opens a block and at the
    line after it.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    mapping: int | None = None
    offset: int | None = None
    gap = 2
    for previous, current in itertools.pairwise(lines):
        opener = _KEY_LINE.match(previous)
        if opener is None:
            continue
        # The key's column: after any "- " that starts the line.
        stripped = previous.lstrip(" ")
        column = len(previous) - len(stripped)
        dash = re.match(r"-( +)", stripped)
        if dash:
            column += 1 + len(dash.group(1))
        current_column = len(current) - len(current.lstrip(" "))
        body = current.lstrip(" ")
        if body.startswith("- ") and offset is None and current_column >= column:
            offset = current_column - column
            gap = 1 + len(body[1:]) - len(body[1:].lstrip(" "))
        elif not body.startswith("-") and mapping is None and current_column > column:
            mapping = current_column - column
        if mapping is not None and offset is not None:
            break
    mapping = mapping or DEFAULT_MAPPING
    offset = DEFAULT_OFFSET if offset is None else offset
    return mapping, offset + gap, offset


def _yaml(text: str) -> YAML:
    mapping, sequence, offset = detect_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # Never reflow long lines (a long exception reason stays on one line).
    yaml.width = 4096
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


class RoundTripDocument:
    """One YAML file loaded for editing: change `data`, declare what you touch, `render`."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.crlf = "\r\n" in text
        self.original = text.replace("\r\n", "\n")
        self._yaml = _yaml(self.original)
        try:
            self.data: Any = self._yaml.load(self.original)
        except YAMLError as error:
            raise ConfigError(f"cannot edit this file, it does not parse: {error}", file) from None
        self.lines = self.original.splitlines(keepends=True)
        # Half-open ranges of original lines (0-based) the edit may change; a pure insertion
        # is allowed at either end of a range.
        self._regions: list[tuple[int, int]] = []

    def touch(self, start: int, end: int) -> None:
        self._regions.append((start, end))

    def block_end(self, line: int, column: int, sequence_at_column: bool = False) -> int:
        """The first line after the block value of the key at (`line`, `column`), 0-based.

        A block is every following line indented deeper than the key (and, for a sequence
        written at the key's own column, its `-` items), with comments and blank lines inside it.
        """
        end = line + 1
        for index in range(line + 1, len(self.lines)):
            text = self.lines[index]
            body = text.strip()
            if not body or body.startswith("#"):
                continue
            indent = len(text) - len(text.lstrip(" "))
            if indent > column or (sequence_at_column and indent == column and body.startswith("-")):
                end = index + 1
                continue
            break
        return end

    def trailing_end(self, end: int) -> int:
        """`end` moved past the comment and blank lines that follow it."""
        while end < len(self.lines) and (not self.lines[end].strip() or self.lines[end].lstrip().startswith("#")):
            end += 1
        return end

    def dump(self) -> str:
        out = io.StringIO()
        self._yaml.dump(self.data, out)
        return out.getvalue()

    def render(self) -> str:
        """The edited text: the full dump, with every untouched stretch put back as it was."""
        full = self.dump()
        spliced = self._splice(full)
        if spliced != full and not _same_data(spliced, full):
            spliced = full
        return spliced.replace("\n", "\r\n") if self.crlf else spliced

    def _splice(self, full: str) -> str:
        new_lines = full.splitlines(keepends=True)
        matcher = difflib.SequenceMatcher(None, self.lines, new_lines, autojunk=False)
        out: list[str] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal" or not self._allowed(i1, i2):
                out.extend(self.lines[i1:i2])
            else:
                out.extend(new_lines[j1:j2])
        text = "".join(out)
        if text and not text.endswith("\n"):
            text += "\n"
        return text

    def _allowed(self, i1: int, i2: int) -> bool:
        for start, end in self._regions:
            if i1 < end and i2 > start:
                return True
            if i1 == i2 and start <= i1 <= end:
                return True
        return False


def _same_data(a: str, b: str) -> bool:
    try:
        return bool(parse_yaml(a).value == parse_yaml(b).value)
    except LoadError:
        return False


# --- comment bookkeeping --------------------------------------------------------------------
#
# ruamel keeps the comment lines that follow a key (up to the next key) on that key's comment
# token: "# end-of-line comment\n# full-line comment\n". Deleting or appending keys must move
# the full-line part, or a comment that introduces the next section would vanish or end up
# above the wrong entry.


def _split_token(value: str) -> tuple[str, str]:
    """(the key's own end-of-line part, the full-line comments after it)."""
    head, newline, rest = value.partition("\n")
    return head + newline, rest


def _token(mapping: CommentedMap, key: Any) -> Any:
    items = mapping.ca.items.get(key)
    if items and len(items) > 2 and items[2] is not None:
        return items[2]
    return None


def _take_following(mapping: CommentedMap, key: Any) -> tuple[str, Any]:
    """Remove and return the full-line comments after `key` (and the token they came from)."""
    token = _token(mapping, key)
    if token is None:
        return "", None
    own, rest = _split_token(token.value)
    if rest:
        token.value = own
    return rest, token


def _add_following(mapping: CommentedMap, key: Any, rest: str, template: Any) -> None:
    """Put full-line comments after `key` in `mapping`."""
    if not rest:
        return
    token = _token(mapping, key)
    if token is not None:
        token.value = token.value + rest
        return
    token = copy.copy(template)
    token.value = "\n" + rest
    mapping.ca.items.setdefault(key, [None, None, None, None])
    while len(mapping.ca.items[key]) < 4:
        mapping.ca.items[key].append(None)
    mapping.ca.items[key][2] = token


def _is_block(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and not node.fa.flow_style()


def _last_holder(node: Any) -> tuple[CommentedMap, Any] | None:
    """The deepest (mapping, last key) at the end of a block node: where trailing comments live."""
    holder: tuple[CommentedMap, Any] | None = None
    while _is_block(node) and len(node):
        if isinstance(node, CommentedSeq):
            node = node[-1]
            continue
        key = list(node.keys())[-1]
        holder = (node, key)
        node = node[key]
    return holder


def delete_key(mapping: CommentedMap, key: Any) -> None:
    """Delete `key`, keeping the full-line comments after it (they move to the key before)."""
    keys = list(mapping.keys())
    position = keys.index(key)
    rest, token = _take_following(mapping, key)
    del mapping[key]
    if rest and position > 0:
        previous = keys[position - 1]
        target = _last_holder(mapping[previous]) if _is_block(mapping[previous]) else None
        target_map, target_key = target or (mapping, previous)
        _add_following(target_map, target_key, rest, token)


def move_following(before: tuple[CommentedMap, Any] | None, after: Any, column: int) -> None:
    """Keep comments that introduce what follows in front of it when `after` is appended.

    `before` holds the comments after the old last entry. Those indented deeper than `column`
    (where the new block starts) belong to that entry and stay; from the first one at `column`
    or less on (with the blank lines just before it) they introduce the next section, so they
    move behind the new block `after`.
    """
    if before is None:
        return
    target = _last_holder(after)
    if target is None:
        return
    token = _token(*before)
    if token is None:
        return
    own, rest = _split_token(token.value)
    lines = rest.splitlines(keepends=True)
    first = next(
        (i for i, line in enumerate(lines)
         if line.strip() and len(line) - len(line.lstrip(" ")) <= column),
        None,
    )
    if first is None:
        return
    while first > 0 and not lines[first - 1].strip():
        first -= 1
    token.value = own + "".join(lines[:first])
    _add_following(target[0], target[1], "".join(lines[first:]), token)


def last_holder_of(mapping: CommentedMap, key: Any) -> tuple[CommentedMap, Any] | None:
    """Where the comments after `mapping[key]` (a block or a scalar) are kept."""
    value = mapping[key]
    if _is_block(value):
        return _last_holder(value)
    return (mapping, key)


def flow_seq(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq
