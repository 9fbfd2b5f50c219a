"""Round-trip YAML edits that change only the lines they must.

ruamel.yaml's round-trip mode keeps comments, key order, quotes and flow style, but a full
dump still normalises some things it does not model: extra spaces after a colon, spaces inside
flow brackets, and comments or a `---` before the document. A policy owner who reviews the diff
of a promotion should see only the lines of the rule that changed, so `render` dumps with
ruamel and then splices: every changed stretch of lines that lies outside the regions the edit
declared (`touch`) is put back as it was. The splice is only used when it reads back to the very
same data as the full dump; otherwise the full dump is written, which is still correct YAML.

Anchors, aliases and merge keys make one node appear in several places of the loaded document.
An edit must change only the place it names, so a node on the way to the edit that is written
in more than one place (or merged in through `<<`) is first given a copy of its own there
(`RoundTripDocument.private`); the other places keep the original, and the anchor moves to the
first of them when the edited place held it. Every edit is then checked against the loaded
document (`RoundTripDocument.verify`): the file must load to the old values with exactly the
intended change, or nothing is written.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import io
import itertools
import math
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.anchor import Anchor
from ruamel.yaml.comments import Comment, CommentedMap, CommentedSeq, Format, LineCol, merge_attrib
from ruamel.yaml.error import YAMLError
from ruamel.yaml.mergevalue import MergeValue
from ruamel.yaml.tag import Tag

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.yamlsafe import parse_yaml
from pipewarden.model.paths import join_index, join_key

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
        # What the edit did besides the change asked for (a node given its own copy), for the user.
        self.notes: list[str] = []
        self._written = scan_text(self.original)
        self._sites = collect_sites(self.data)
        # Keep every anchor the author wrote, also one no alias uses (ruamel drops those).
        for places in self._sites.values():
            anchor = getattr(places[0].value, Anchor.attrib, None)
            if anchor is not None and anchor.value:
                anchor.always_dump = True

    def touch(self, start: int, end: int) -> None:
        self._regions.append((start, end))

    # --- where nodes are written --------------------------------------------------------------

    def _everything(self) -> tuple[int, int]:
        return 0, len(self.lines)

    def site_region(self, site: Site) -> tuple[int, int]:
        """The lines that write `site` (a key with its value, or a sequence item)."""
        written = self._written.get(site.path)
        if written is not None:
            return written.start, written.end
        return self.region_of(site.container)

    def region_of(self, node: Any) -> tuple[int, int]:
        """The lines that write `node` where it first appears (the whole file for the root)."""
        if node is self.data:
            return self._everything()
        places = self._sites.get(id(node))
        if not places:
            return self._everything()
        return self.site_region(places[0])

    def key_region(self, mapping: CommentedMap, key: Any, sequence_at_column: bool = False) -> tuple[int, int]:
        """The lines of `key` and its block in `mapping`, as the file writes them."""
        position = key_position(mapping, key)
        if position is None:
            return self.region_of(mapping)
        line, column = position
        return line, self.block_end(line, column, sequence_at_column)

    def _site(self, container: Any, key: Any) -> Site | None:
        value = container[key]
        return next((s for s in self._sites.get(id(value), ()) if s.container is container and s.key == key), None)

    def shared(self, node: Any) -> bool:
        """Whether `node` is written in more than one place (an anchor and its aliases)."""
        return len(self._sites.get(id(node), ())) > 1

    def alias_at(self, container: Any, key: Any) -> bool:
        """Whether `container[key]` is written as an alias (its content is written elsewhere)."""
        site = self._site(container, key)
        if site is None:
            return False
        written = self._written.get(site.path)
        return written is not None and written.alias is not None

    # --- copy on write: an edit changes only the place it names ------------------------------

    def private(self, *path: Any) -> Any:
        """The node at `path` (keys or indexes from the root), made to be written only there.

        Every container on the way that is written in several places (an anchor and its
        aliases) or that comes from a merge key is replaced, in that place only, by a copy of
        its own; the other places keep the original values.
        """
        node = self.data
        for key in path:
            child = node[key]
            merged = isinstance(node, CommentedMap) and key not in own_keys(node)
            if isinstance(child, (CommentedMap, CommentedSeq)) and (merged or self.shared(child)):
                child = self._unshare(node, key, child, merged)
            node = child
        return node

    def _unshare(self, parent: Any, key: Any, child: Any, merged: bool) -> Any:
        places = self._sites.get(id(child), [])
        here = None if merged else self._site(parent, key)
        written = self._written.get(here.path) if here is not None else None
        # Where the anchor is written, the copy takes over the text (comments, layout) and the
        # original is written again at its next place; elsewhere the copy is written anew.
        at_anchor = written is not None and written.anchor is not None
        keep = self._multi_site() - {id(child)}
        replacement = private_copy(child, keep, layout=at_anchor)
        if at_anchor:
            _line_comments_only(child, keep)
        for place in places:
            self.touch(*self.site_region(place))
        if here is None:
            self.touch(*self.region_of(parent))
        where = here.path if here is not None else join_key(self._path_of(parent), key_text(key))
        if merged:
            self.notes.append(f"{where} is written out in this node (it came from a merge key '<<')")
        else:
            others = [describe_site(p) for p in places if p is not here]
            name = self._anchor_name_of(child, places)
            self.notes.append(f"{where} gets its own copy of {name}; {', '.join(others)} keep"
                              f"{'s' if len(others) == 1 else ''} the shared values")
        parent[key] = replacement
        self._sites = collect_sites(self.data)
        if at_anchor and len(self._sites.get(id(child), ())) == 1:
            # The anchor would move to a place where no alias is left for it: write it plainly.
            _forget_anchor(child)
        return replacement

    def _multi_site(self) -> set[int]:
        return {identity for identity, places in self._sites.items() if len(places) > 1}

    def _path_of(self, node: Any) -> str:
        places = self._sites.get(id(node))
        return places[0].path if places else ""

    def _anchor_name_of(self, node: Any, places: list[Site]) -> str:
        name = anchor_name(node)
        if name is None:
            name = next((w.anchor for p in places if (w := self._written.get(p.path)) and w.anchor), None)
        return f"&{name}" if name else "a node written in several places"

    def replacing(self, mapping: CommentedMap, key: Any) -> None:
        """Call before `mapping[key]` gets a new value: the other places of the old one keep it."""
        if key not in mapping:
            return
        if key not in own_keys(mapping):
            # The value came from a merge key: a key of its own now overrides it.
            self.touch(*self.region_of(mapping))
            return
        old = mapping[key]
        places = self._sites.get(id(old), [])
        if len(places) > 1:
            here = self._site(mapping, key)
            for place in places:
                self.touch(*self.site_region(place))
            others = [describe_site(p) for p in places if p is not here]
            where = here.path if here is not None else key_text(key)
            self.notes.append(f"{where} no longer shares {self._anchor_name_of(old, places)}; "
                              f"{', '.join(others)} keep{'s' if len(others) == 1 else ''} the old value")

    def removing(self, mapping: CommentedMap, key: Any) -> None:
        """Call before deleting `key` from `mapping`: a merged-in key needs its merge written out."""
        merge = merge_of(mapping)
        if key in mapping and merge is not None and (
            key not in own_keys(mapping) or any(key in source for source in merge.value)
        ):
            # Without its merge key the mapping cannot lose a key the merge also brings in.
            self.write_out_merge(mapping, dropping=key)
        self.replacing(mapping, key)

    def write_out_merge(self, mapping: CommentedMap, dropping: Any = None) -> None:
        """Replace the merge key of `mapping` by the keys it brings in (copies of their values).

        `dropping` names a key the caller deletes next (it is not mentioned in the note).
        """
        merge = merge_of(mapping)
        if merge is None:
            return
        self.touch(*self.region_of(mapping))
        keep = self._multi_site()
        own = own_keys(mapping)
        merged = [k for k in mapping if k not in own]
        values = {k: private_copy(mapping[k], keep, layout=False) for k in merged}
        position = merge.merge_pos if merge.merge_pos is not None else len(own)
        for source in merge.value:
            references = getattr(source, "_ref", None)
            if isinstance(references, list) and mapping in references:
                references.remove(mapping)
        delattr(mapping, merge_attrib)
        for k in merged:
            OrderedDict.__delitem__(mapping, k)
        for offset, k in enumerate(merged):
            mapping.insert(position + offset, k, values[k])
        names = [n for source in merge.value if (n := anchor_name(source))]
        what = f"'<<: *{names[0]}'" if len(names) == 1 else "'<<'"
        kept = [key_text(k) for k in merged if k != dropping]
        self.notes.append(f"{self._path_of(mapping) or 'the document'} no longer uses the merge key {what}"
                          + (f"; {', '.join(kept)} {'is' if len(kept) == 1 else 'are'} written out in it"
                             if kept else ""))
        self._sites = collect_sites(self.data)

    def written_at(self, path: str) -> Written | None:
        """The lines (and anchor or alias) of what the text writes at `path`, None when unknown."""
        return self._written.get(path)

    def anchors_used_outside(self, path: str) -> list[str]:
        """Anchors written inside `path` that are used (by an alias or a merge key) elsewhere:
        deleting the lines of `path` would leave those uses without their anchor."""
        found = []
        for places in self._sites.values():
            if len(places) < 2:
                continue
            inside = [p for p in places if _within(p.path, path)]
            outside = [p for p in places if not _within(p.path, path)]
            anchored = [p for p in inside if (w := self._written.get(p.path)) is not None and w.anchor]
            if anchored and outside:
                written = self._written[anchored[0].path]
                found.append(f"&{written.anchor} (used at {', '.join(describe_site(p) for p in outside)})")
        return found

    def release_anchors(self, path: str) -> None:
        """Call before deleting the node at `path`: the places elsewhere that use an anchor
        written inside it may change (the node is written out at the first of them)."""
        for places in self._sites.values():
            inside = [p for p in places if _within(p.path, path)]
            outside = [p for p in places if not _within(p.path, path)]
            anchored = [p for p in inside if (w := self._written.get(p.path)) is not None and w.anchor]
            if not (anchored and outside):
                continue
            for place in outside:
                self.touch(*self.site_region(place))
                if '["<<"]' in place.path:
                    self.touch(*self.region_of(place.container))
            name = self._written[anchored[0].path].anchor
            self.notes.append(f"{path} held the anchor &{name}: {describe_site(outside[0])} now writes "
                              "its values out")

    # --- the check after the edit -------------------------------------------------------------

    def loaded(self) -> Any:
        """The original document as the loader reads it (plain dicts, lists and scalars)."""
        return parse_yaml(self.original).value

    def verify(self, after: str, expected: Any, intended: str) -> None:
        """Refuse (ConfigError) unless `after` loads to `expected`: only `intended` may change.

        The whole document is compared, so an edit that reaches another place through an
        anchor, an alias or a merge key, or any other way, is caught before anything is written.
        """
        try:
            parsed = parse_yaml(after)
        except LoadError as error:
            raise ConfigError(f"refusing to edit {intended}: the edited file would not load "
                              f"({error.message}); nothing was written", self.file, error.line) from None
        difference = next(differences(expected, parsed.value, ""), None)
        if difference is None:
            return
        try:
            line = parse_yaml(self.original).line_of(difference)
        except LoadError:
            line = parsed.line_of(difference)
        cause, cause_line = self._sharing(difference, intended)
        effect = ("would not come out as asked at" if _within(difference, intended) else "would also change")
        raise ConfigError(
            f"refusing to edit {intended}: the edit {effect} {difference} (line {line}){cause}; "
            f"nothing was written. Give {intended} settings of its own (without an anchor, alias or "
            "merge key shared with other entries) and run the command again",
            self.file, cause_line or line,
        )

    def _sharing(self, path: str, intended: str) -> tuple[str, int | None]:
        """`, written through ...` naming the alias or merge key that links `path` to `intended`."""
        related = [
            (place, written) for place, written in self._written.items()
            if any(_within(p, _unmerged(place)) or _within(_unmerged(place), p) for p in (path, intended))
        ]
        names = {w.anchor for _, w in related if w.anchor} | {w.alias for _, w in related if w.alias}
        for place, written in sorted(self._written.items(), key=lambda item: item[1].start):
            if written.alias is None or written.alias not in names:
                continue
            anchor = next((w for w in self._written.values() if w.anchor == written.alias), None)
            where = f" (anchor &{written.alias} at line {anchor.start + 1})" if anchor else ""
            if '["<<"]' in place:
                return (f", written through the merge key '<<: *{written.alias}' at line "
                        f"{written.start + 1}{where}"), written.start + 1
            return f", written through the alias *{written.alias} at line {written.start + 1}{where}", written.start + 1
        return "", None

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
        keys = own_keys(node)
        if not keys or merge_written_last(node):
            break  # comments after the merge key `<<` are not a key's
        key = keys[-1]
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


# --- anchors, aliases and merge keys -----------------------------------------------------------
#
# A node written once (`&name`) and referred to elsewhere (`*name`, or merged with `<<: *name`)
# is one Python object in ruamel's document. `collect_sites` finds every place a node is
# written, in the structure of the text (own keys, merge values under a `<<` key), and
# `scan_text` finds the lines of each place and the anchors and aliases written there.

MERGE = "<<"


@dataclass(frozen=True)
class Site:
    """One place where a node is written: under `key` (a key, an index or MERGE) of `container`."""

    container: Any
    key: Any
    path: str
    value: Any = field(compare=False)


@dataclass(frozen=True)
class Written:
    """What the text writes at a path: its lines (0-based, end exclusive) and anchor or alias."""

    start: int
    end: int
    anchor: str | None
    alias: str | None


def key_text(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def anchor_name(node: Any) -> str | None:
    anchor = getattr(node, Anchor.attrib, None)
    value = getattr(anchor, "value", None)
    return value if isinstance(value, str) and value else None


def own_keys(mapping: CommentedMap) -> list[Any]:
    """The keys `mapping` writes itself (not those a merge key brings in)."""
    return [key for key, _ in mapping.non_merged_items()]


def merge_of(mapping: CommentedMap) -> Any:
    """The MergeValue of `mapping`, or None when it has no merge key."""
    value = getattr(mapping, merge_attrib, None)
    return value if value is not None and len(value) else None


def merge_written_last(mapping: CommentedMap) -> bool:
    """Whether the merge key `<<` is the last thing `mapping` writes."""
    merge = merge_of(mapping)
    return merge is not None and (merge.merge_pos is None or merge.merge_pos >= len(own_keys(mapping)))


def _tracked(node: Any) -> bool:
    # Containers and dates are separate objects per written node (ruamel writes an anchor for
    # one it meets twice); other scalars only when the author anchored them.
    return isinstance(node, (CommentedMap, CommentedSeq, dt.date)) or anchor_name(node) is not None


def collect_sites(root: Any) -> dict[int, list[Site]]:
    """Every place each container (and anchored scalar or date) is written, by object id."""
    sites: dict[int, list[Site]] = {}

    def place(value: Any, site: Site) -> None:
        if not _tracked(value):
            return
        seen = id(value) in sites
        sites.setdefault(id(value), []).append(site)
        if not seen:
            visit(value, site.path)

    def visit(node: Any, path: str) -> None:
        if isinstance(node, CommentedMap):
            for key, value in node.non_merged_items():
                place(value, Site(node, key, join_key(path, key_text(key)), value))
            merge = merge_of(node)
            if merge is not None:
                source = merge.sequence if merge.sequence is not None else merge[0]
                place(source, Site(node, MERGE, join_key(path, MERGE), source))
        elif isinstance(node, CommentedSeq):
            for index, value in enumerate(node):
                place(value, Site(node, index, join_index(path, index), value))

    visit(root, "")
    return sites


def describe_site(site: Site) -> str:
    """A place for the user: its path, or the mapping that merges it in."""
    if '["<<"]' in site.path:
        return f"{_unmerged(site.path) or 'the document'} (through its merge key '<<')"
    return site.path or "the document"


def _unmerged(path: str) -> str:
    return path.split('["<<"]', 1)[0]


def _within(inner: str, outer: str) -> bool:
    """Whether `inner` is `outer` or a path below it."""
    return inner == outer or outer == "" or inner.startswith((outer + ".", outer + "["))


@dataclass
class _Open:
    path: str
    is_map: bool
    start: int
    anchor: str | None
    flow: bool
    end: int
    index: int = 0
    expect_key: bool = True
    key: str = ""
    key_line: int = 0


def _line(mark: Any) -> int:
    return int(mark.line)


def _end_line(mark: Any) -> int:
    return int(mark.line) + (1 if mark.column > 0 else 0)


_Loader: Any = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


def scan_text(text: str) -> dict[str, Written]:
    """The path of every node the first document writes, with its lines and anchor or alias.

    Paths follow the text: a merge key's value is at `mapping["<<"]`. Empty when the text does
    not parse (the caller then edits with wider regions).
    """
    written: dict[str, Written] = {}
    stack: list[_Open] = []
    skipping = 0

    def finish(end: int) -> None:
        if not stack:
            return
        top = stack[-1]
        top.end = max(top.end, end)
        if top.is_map:
            top.expect_key = True
        else:
            top.index += 1

    try:
        for event in pyyaml.parse(text, Loader=_Loader):
            if isinstance(event, pyyaml.DocumentEndEvent):
                break
            if skipping:
                if isinstance(event, pyyaml.CollectionStartEvent):
                    skipping += 1
                elif isinstance(event, pyyaml.CollectionEndEvent):
                    skipping -= 1
                continue
            if isinstance(event, pyyaml.CollectionEndEvent):
                frame = stack.pop()
                end = _end_line(event.end_mark) if frame.flow else max(frame.end, frame.start + 1)
                written[frame.path] = Written(frame.start, end, frame.anchor, None)
                finish(end)
                continue
            if not isinstance(event, (pyyaml.ScalarEvent, pyyaml.AliasEvent, pyyaml.CollectionStartEvent)):
                continue
            top = stack[-1] if stack else None
            if top is not None and top.is_map and top.expect_key:
                top.expect_key = False
                top.key_line = _line(event.start_mark)
                if isinstance(event, pyyaml.ScalarEvent):
                    top.key = event.value
                else:
                    top.key = "?"
                    if isinstance(event, pyyaml.CollectionStartEvent):
                        skipping = 1
                continue
            if top is None:
                path, start = "", _line(event.start_mark)
            elif top.is_map:
                path, start = join_key(top.path, top.key), top.key_line
            else:
                path, start = join_index(top.path, top.index), _line(event.start_mark)
            if isinstance(event, pyyaml.AliasEvent):
                end = max(_end_line(event.end_mark), start + 1)
                written[path] = Written(start, end, None, event.anchor)
                finish(end)
            elif isinstance(event, pyyaml.ScalarEvent):
                end = max(_end_line(event.end_mark), start + 1)
                written[path] = Written(start, end, event.anchor, None)
                finish(end)
            else:
                flow = bool(event.flow_style)
                stack.append(_Open(path, isinstance(event, pyyaml.MappingStartEvent), start, event.anchor, flow,
                                   start + 1))
    except pyyaml.YAMLError:
        return {}
    return written


def key_position(mapping: CommentedMap, key: Any) -> tuple[int, int] | None:
    """(line, column) of `key` in the text, when `mapping` writes it there itself."""
    if key not in own_keys(mapping):
        return None
    data = getattr(getattr(mapping, LineCol.attrib, None), "data", None)
    if not isinstance(data, dict) or key not in data:
        return None
    line, column = data[key][0], data[key][1]
    return int(line), int(column)


def private_copy(node: Any, keep: set[int], layout: bool) -> Any:
    """A copy of `node` for a place of its own.

    Nodes written in several places (`keep`) stay shared, so their anchors and aliases stay;
    everything else is copied, without anchors. With `layout` the copy takes over the comments
    and line positions (it replaces the node where it is written); without, it keeps only
    end-of-line comments (it is written anew elsewhere).
    """
    if id(node) in keep:
        return node
    if isinstance(node, CommentedMap):
        mapping = CommentedMap()
        for key, value in node.non_merged_items():
            mapping[key] = private_copy(value, keep, layout)
        merge = merge_of(node)
        if merge is not None:
            new_merge = MergeValue()
            new_merge.merge_pos = merge.merge_pos
            if merge.sequence is not None:
                sequence = private_copy(merge.sequence, keep, layout)
                new_merge.set_sequence(sequence)
                new_merge.extend(list(sequence))
            else:
                new_merge.append(private_copy(merge[0], keep, layout))
            mapping.add_yaml_merge(new_merge)
        _copy_layout(node, mapping, layout)
        return mapping
    if isinstance(node, CommentedSeq):
        sequence = CommentedSeq([private_copy(item, keep, layout) for item in node])
        _copy_layout(node, sequence, layout)
        return sequence
    if isinstance(node, dt.date) or anchor_name(node) is not None:
        # A second object, so ruamel does not write it as an alias; without the anchor.
        try:
            duplicate = copy.copy(node)
            if anchor_name(duplicate) is not None:
                setattr(duplicate, Anchor.attrib, Anchor())
        except (AttributeError, TypeError):  # pragma: no cover - a scalar type that cannot be copied
            return node
        return duplicate
    return node


def _forget_anchor(node: Any) -> None:
    anchor = getattr(node, Anchor.attrib, None)
    if anchor is not None and isinstance(node, (CommentedMap, CommentedSeq)):
        anchor.always_dump = False


def _copy_layout(source: Any, target: Any, layout: bool) -> None:
    for attribute in (Format.attrib, Tag.attrib, Comment.attrib, *((LineCol.attrib,) if layout else ())):
        if hasattr(source, attribute):
            setattr(target, attribute, copy.deepcopy(getattr(source, attribute)))
    if not layout:
        _trim_comments(target)


def _trim_comments(node: Any) -> None:
    """Keep only the end-of-line comments of `node` itself (not of its children)."""
    comments = getattr(node, Comment.attrib, None)
    if comments is None:
        return
    comments.comment = None
    for slots in comments.items.values():
        for index, token in enumerate(slots):
            if token is None:
                continue
            if isinstance(token, list):
                slots[index] = None
                continue
            own, _ = _split_token(str(token.value))
            if own.strip():
                token.value = own
            else:
                slots[index] = None


def _line_comments_only(node: Any, keep: set[int]) -> None:
    """Trim the comments of `node` and its children that are written only through it."""
    if id(node) in keep or not isinstance(node, (CommentedMap, CommentedSeq)):
        return
    _trim_comments(node)
    children = [v for _, v in node.non_merged_items()] if isinstance(node, CommentedMap) else list(node)
    for child in children:
        _line_comments_only(child, keep)


def differences(expected: Any, actual: Any, path: str) -> Iterator[str]:
    """The paths where two loaded documents differ (types compared too: 1 is not true)."""
    if type(expected) is not type(actual):
        yield path
        return
    if isinstance(expected, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            where = join_key(path, key_text(key))
            if key not in expected or key not in actual:
                yield where
            else:
                yield from differences(expected[key], actual[key], where)
        return
    if isinstance(expected, list):
        for index in range(max(len(expected), len(actual))):
            if index >= len(expected) or index >= len(actual):
                yield join_index(path, index)
            else:
                yield from differences(expected[index], actual[index], join_index(path, index))
        return
    if isinstance(expected, float) and math.isnan(expected) and math.isnan(actual):
        return
    if expected != actual:
        yield path
