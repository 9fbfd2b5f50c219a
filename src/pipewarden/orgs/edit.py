"""Comment-keeping edits of org-config node files: rule levels, schedules and exceptions.

Policy owners review these edits as diffs, so an edit changes only the lines it must (see
yamledit). An edit is planned first (`Edit`, nothing written), then `write_edit` re-loads the
whole tree from a temporary copy with the new text and only then replaces the file, so a
write never leaves a tree that `check` would refuse.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

from pipewarden.errors import ConfigError, UsageError
from pipewarden.load.yamlsafe import parse_yaml
from pipewarden.model.paths import join_index, join_key
from pipewarden.orgs.tree import OrgNode, OrgTree, load_org_tree
from pipewarden.orgs.tree import _config_files as config_files
from pipewarden.orgs.yamledit import (
    RoundTripDocument,
    delete_key,
    flow_seq,
    key_position,
    last_holder_of,
    merge_written_last,
    move_following,
    own_keys,
)
from pipewarden.policy.builtin import ALWAYS_ENFORCED
from pipewarden.policy.catalog import Catalog

LEVELS = ("off", "warn", "enforce")
# Where a new top-level `rules:` / `exceptions:` goes: after the last of these keys present,
# the order of the org-config.md example.
_RULES_AFTER = ("apiVersion", "kind", "metadata", "teams", "settings")
_EXCEPTIONS_AFTER = (*_RULES_AFTER, "rules")


@dataclass(frozen=True)
class Edit:
    """A planned change of one node file: its text before and after."""

    org: str
    file: str
    before: str
    after: str
    changes: tuple[str, ...]
    # Of `changes`, those that say how the file keeps other places as they were (a shared
    # entry given a copy of its own, a merge key written out): the preview shows them too.
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class NewException:
    """An exception to add, as `exceptions add` takes it."""

    rule: str
    pipelines: tuple[str, ...]
    teams: tuple[str, ...]
    reason: str
    approved_by: str
    expires: dt.date | None
    permanent: bool


# --- checks shared by the owner commands ----------------------------------------------------


def require_node(tree: OrgTree, org: str, org_config: str) -> OrgNode:
    node = tree.nodes.get(org)
    if node is None:
        raise UsageError(f"org {org!r} is not a node of {org_config}; nodes: {', '.join(sorted(tree.nodes))}")
    return node


def require_rule(catalog: Catalog, rule: str) -> None:
    if catalog.get(rule) is None:
        raise UsageError(
            f"unknown rule {rule!r}; `pipewarden rules list` shows the ids "
            "(an organisation's own rules need --policies DIR)"
        )
    if rule in ALWAYS_ENFORCED:
        raise UsageError(f"{rule} is always enforce; it cannot be changed or excepted")


def require_unlocked(tree: OrgTree, org: str, rule: str, action: str) -> None:
    """Refuse when an ancestor of `org` locked `rule`: only the locking node may touch it."""
    for ancestor in tree.chain(org)[:-1]:
        entry = ancestor.rules.get(rule)
        if entry is not None and entry.locked:
            raise UsageError(
                f"rule {rule!r} is locked by org {ancestor.name!r} ({entry.file}:{entry.line}); "
                f"org {org!r} may not {action}: ask the owners of {ancestor.name!r} "
                f"({', '.join(ancestor.owners) or 'see that file'}) to do it there"
            )


# --- planning edits --------------------------------------------------------------------------


def _read(file: str) -> str:
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise ConfigError("cannot edit this file: it is not UTF-8 text", file) from None
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}", file) from None


def _like(old: Any, new: Any) -> Any:
    """`new`, written with the quotes `old` had (a quoted level stays quoted)."""
    if isinstance(old, ScalarString):
        return type(old)(new.isoformat() if isinstance(new, dt.date) else str(new))
    return new


def _insert_position(data: CommentedMap, after: tuple[str, ...]) -> int:
    keys = own_keys(data)
    present = [keys.index(k) for k in after if k in keys]
    return max(present) + 1 if present else len(keys)


def _holder(doc: RoundTripDocument, mapping: CommentedMap, key: Any) -> tuple[CommentedMap, Any] | None:
    """Where the comments after `mapping[key]` are kept; an alias keeps them on its own key."""
    if doc.alias_at(mapping, key):
        return (mapping, key)
    return last_holder_of(mapping, key)


def _add_top_level(doc: RoundTripDocument, key: str, value: Any, after: tuple[str, ...]) -> None:
    """Insert a new top-level block, keeping comments that introduce the next key in front of it."""
    data = doc.data
    position = _insert_position(data, after)
    keys = own_keys(data)
    previous = _holder(doc, data, keys[position - 1]) if position > 0 else None
    if position < len(keys):
        line = doc.key_region(data, keys[position])[0]
    else:
        line = len(doc.lines)
    start = doc.key_region(data, keys[position - 1])[1] if position > 0 else 0
    doc.touch(min(start, line), doc.trailing_end(line))
    data.insert(position, key, value)
    move_following(previous, value, 0)


def _new_rule_entry(level: str, enforce_from: dt.date | None) -> CommentedMap:
    entry = CommentedMap()
    entry["level"] = level
    if enforce_from is not None:
        entry["enforce_from"] = enforce_from
    return entry


def _added(rule: str, level: str, enforce_from: dt.date | None) -> str:
    schedule = f", enforce_from: {enforce_from.isoformat()}" if enforce_from else ""
    return f"added rules.{rule} (level: {level}{schedule})"


def _rule_changes(entry: Any, level: str, enforce_from: dt.date | None) -> list[str]:
    """What setting `level` (and the schedule) changes in an existing rule entry, for the user."""
    changes = []
    if entry.get("level") != level:
        changes.append(f"level: {level}")
    if enforce_from is not None:
        if entry.get("enforce_from") not in (enforce_from, enforce_from.isoformat()):
            changes.append(f"enforce_from: {enforce_from.isoformat()}")
    elif "enforce_from" in entry:
        changes.append("enforce_from removed")
    return changes


def _set_rule(doc: RoundTripDocument, rule: str, level: str, enforce_from: dt.date | None) -> list[str]:
    """Set `rule`'s level (and schedule) in the document; returns what changed, for the user.

    Only the entry of `rule` changes: an entry (or a `rules:` mapping) that is shared with other
    places through an anchor, an alias or a merge key is first given a copy of its own.
    """
    data = doc.data
    rules = data.get("rules")
    if not isinstance(rules, CommentedMap):
        new_rules = CommentedMap()
        new_rules[rule] = _new_rule_entry(level, enforce_from)
        if "rules" in data:
            doc.touch(*doc.key_region(data, "rules"))
            doc.replacing(data, "rules")
            data["rules"] = new_rules
        else:
            _add_top_level(doc, "rules", new_rules, _RULES_AFTER)
        return [_added(rule, level, enforce_from)]
    entry = rules.get(rule)
    if not isinstance(entry, CommentedMap):
        rules = doc.private("rules")
        start, end = doc.key_region(data, "rules")
        doc.touch(start, doc.trailing_end(end))
        if rules.fa.flow_style() and not rules:
            rules.fa.set_block_style()
        keys = own_keys(rules)
        last = keys[-1] if keys and rule not in keys else None
        previous = _holder(doc, rules, last) if last is not None else None
        doc.replacing(rules, rule)
        rules[rule] = _new_rule_entry(level, enforce_from)
        position = key_position(rules, last) if last is not None else None
        move_following(previous, rules[rule], position[1] if position is not None else 0)
        return [_added(rule, level, enforce_from)]
    changes = _rule_changes(entry, level, enforce_from)
    if not changes:
        return []
    entry = doc.private("rules", rule)
    rules = data["rules"]
    doc.touch(*doc.key_region(rules, rule))
    if "level" in entry:
        old_level = entry["level"]
        doc.replacing(entry, "level")
        entry["level"] = _like(old_level, level)
    else:
        entry.insert(0, "level", level)
    if enforce_from is not None:
        if "enforce_from" in entry:
            old_date = entry["enforce_from"]
            doc.replacing(entry, "enforce_from")
            entry["enforce_from"] = _like(old_date, enforce_from)
        else:
            entry.insert(list(entry.keys()).index("level") + 1, "enforce_from", enforce_from)
    elif "enforce_from" in entry:
        doc.removing(entry, "enforce_from")
        delete_key(entry, "enforce_from")
    return changes


def _expected_rule(before: Any, rule: str, level: str, enforce_from: dt.date | None) -> Any:
    """The loaded document after the edit: `before` with only the rule's entry changed."""
    data = dict(before) if isinstance(before, dict) else {}
    rules = dict(data["rules"]) if isinstance(data.get("rules"), dict) else {}
    entry = dict(rules[rule]) if isinstance(rules.get(rule), dict) else {}
    entry["level"] = level
    if enforce_from is not None:
        entry["enforce_from"] = enforce_from.isoformat()
    else:
        entry.pop("enforce_from", None)
    rules[rule] = entry
    data["rules"] = rules
    return data


def plan_rule_level(
    tree: OrgTree, catalog: Catalog, org_config: str, org: str, rule: str, level: str, enforce_from: dt.date | None
) -> Edit:
    """The edit that sets `rule` to `level` in `org` (or schedules it: warn + `enforce_from`)."""
    node = require_node(tree, org, org_config)
    require_rule(catalog, rule)
    if level not in LEVELS:
        raise UsageError(f"level {level!r} is not one of: {', '.join(LEVELS)}")
    if enforce_from is not None and level != "warn":
        raise UsageError("a schedule is written as level: warn with enforce_from")
    require_unlocked(tree, org, rule, "change it")
    before = _read(node.file)
    doc = RoundTripDocument(before, node.file)
    changes = _set_rule(doc, rule, level, enforce_from)
    after = doc.render()
    if after != before:
        doc.verify(after, _expected_rule(doc.loaded(), rule, level, enforce_from), join_key("rules", rule))
    if after == before:
        return Edit(org, node.file, before, after, ())
    return Edit(org, node.file, before, after, (*changes, *doc.notes), tuple(doc.notes))


def _exception_entry(exception: NewException) -> CommentedMap:
    entry = CommentedMap()
    entry["rule"] = exception.rule
    if exception.pipelines:
        entry["pipelines"] = flow_seq(list(exception.pipelines))
    if exception.teams:
        entry["teams"] = flow_seq(list(exception.teams))
    entry["reason"] = exception.reason
    entry["approved_by"] = exception.approved_by
    if exception.permanent:
        entry["permanent"] = True
    else:
        entry["expires"] = exception.expires
    return entry


def plan_exception(tree: OrgTree, catalog: Catalog, org_config: str, org: str, exception: NewException) -> Edit:
    """The edit that appends `exception` to `org`'s `exceptions` list."""
    node = require_node(tree, org, org_config)
    require_rule(catalog, exception.rule)
    require_unlocked(tree, org, exception.rule, "grant exceptions to it")
    if not exception.pipelines and not exception.teams:
        raise UsageError("an exception needs --pipeline or --team to say what it covers")
    if exception.permanent == (exception.expires is not None):
        raise UsageError("give exactly one of --expires DATE or --permanent")
    before = _read(node.file)
    doc = RoundTripDocument(before, node.file)
    data = doc.data
    entry = _exception_entry(exception)
    existing = data.get("exceptions")
    if isinstance(existing, CommentedSeq):
        existing = doc.private("exceptions")
        start, end = doc.key_region(data, "exceptions", sequence_at_column=True)
        doc.touch(start, doc.trailing_end(end))
        if existing.fa.flow_style() and not existing:
            existing.fa.set_block_style()
        previous = None
        dash_column = 0
        last = len(existing) - 1
        item = existing[-1] if existing else None
        keys = own_keys(item) if isinstance(item, CommentedMap) else []
        if item is not None and keys and not doc.alias_at(existing, last) and not merge_written_last(item):
            previous = last_holder_of(item, keys[-1])
            item_line = doc.lines[existing.lc.item(last)[0]]
            dash_column = len(item_line) - len(item_line.lstrip(" "))
        existing.append(entry)
        move_following(previous, entry, dash_column)
    else:
        seq = CommentedSeq([entry])
        if "exceptions" in data:
            doc.touch(*doc.key_region(data, "exceptions", sequence_at_column=True))
            doc.replacing(data, "exceptions")
            data["exceptions"] = seq
        else:
            _add_top_level(doc, "exceptions", seq, _EXCEPTIONS_AFTER)
    after = doc.render()
    doc.verify(after, _expected_exception(doc.loaded(), exception), "exceptions")
    covers = ", ".join([*exception.pipelines, *(f"team {t}" for t in exception.teams)])
    until = "permanent" if exception.permanent else f"until {exception.expires}"
    what = f"exception to {exception.rule} for {covers}, {until}"
    return Edit(org, node.file, before, after, (what, *doc.notes), tuple(doc.notes))


def _expected_exception(before: Any, exception: NewException) -> Any:
    """The loaded document after the edit: `before` with one more entry in `exceptions`."""
    data = dict(before) if isinstance(before, dict) else {}
    entry: dict[str, Any] = {"rule": exception.rule}
    if exception.pipelines:
        entry["pipelines"] = list(exception.pipelines)
    if exception.teams:
        entry["teams"] = list(exception.teams)
    entry["reason"] = exception.reason
    entry["approved_by"] = exception.approved_by
    if exception.permanent:
        entry["permanent"] = True
    else:
        assert exception.expires is not None
        entry["expires"] = exception.expires.isoformat()
    existing = data.get("exceptions")
    data["exceptions"] = [*(existing if isinstance(existing, list) else []), entry]
    return data


# --- removing and renewing an exception ------------------------------------------------------


@dataclass(frozen=True)
class ExceptionEntry:
    """One entry of a node's `exceptions`, as the file loads: its index, line and values."""

    index: int
    line: int
    rule: str
    pipelines: tuple[str, ...]
    teams: tuple[str, ...]
    expires: str | None
    permanent: bool

    def covers(self) -> str:
        return ", ".join([*self.pipelines, *(f"team {t}" for t in self.teams)]) or "nothing"

    def describe(self) -> str:
        until = "permanent" if self.permanent else f"until {self.expires}"
        return f"exception to {self.rule} for {self.covers()}, {until}"


def exception_entries(doc: RoundTripDocument) -> list[ExceptionEntry]:
    """The node file's exceptions, in file order."""
    parsed = parse_yaml(doc.original)
    items = parsed.value.get("exceptions") if isinstance(parsed.value, dict) else None
    entries = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        expires = item.get("expires")
        entries.append(ExceptionEntry(
            index, parsed.line_of(join_index("exceptions", index)), str(item.get("rule")),
            tuple(str(p) for p in item.get("pipelines") or ()), tuple(str(t) for t in item.get("teams") or ()),
            expires.isoformat() if isinstance(expires, dt.date) else (str(expires) if expires is not None else None),
            item.get("permanent") is True,
        ))
    return entries


def select_exception(
    doc: RoundTripDocument, node: OrgNode, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...], command: str
) -> ExceptionEntry:
    """The one entry of `node` for `rule` that covers every given pipeline and team; a UsageError
    naming the candidates when none or several do."""
    candidates = [e for e in exception_entries(doc) if e.rule == rule]
    matching = [e for e in candidates if set(pipelines) <= set(e.pipelines) and set(teams) <= set(e.teams)]
    if len(matching) == 1:
        return matching[0]
    asked = ", ".join([*pipelines, *(f"team {t}" for t in teams)])
    listed = "; ".join(f"line {e.line}: {e.describe()}" for e in (matching or candidates))
    if not matching:
        what = f" covering {asked}" if asked else ""
        others = f"; its exceptions to {rule}: {listed}" if candidates else (
            f"; `pipewarden exceptions list --org {node.name}` shows its exceptions")
        raise UsageError(f"org {node.name!r} ({node.file}) has no exception to {rule}{what}{others}")
    raise UsageError(f"{len(matching)} exceptions to {rule} of org {node.name!r} ({node.file}) match: {listed}; "
                     f"add --pipeline or --team to name the one to {command}")


def _expected_without(before: Any, index: int) -> Any:
    data = dict(before) if isinstance(before, dict) else {}
    items = list(data.get("exceptions") or [])
    del items[index]
    data["exceptions"] = items
    return data


_EMPTY_KEY = re.compile(r"^(?P<key>exceptions:)[ \t]*(?P<comment>#.*)?$")


def _remove_lines(doc: RoundTripDocument, index: int) -> str | None:
    """The text without the lines of `exceptions[index]` (and the comment lines after it that are
    indented deeper than its dash, which belong to it); None when the item does not have lines
    of its own (a flow list) or holds an anchor used elsewhere: the caller edits through ruamel."""
    path = join_index("exceptions", index)
    written = doc.written_at(path)
    items = doc.data.get("exceptions")
    if written is None or not isinstance(items, CommentedSeq) or items.fa.flow_style() or doc.anchors_used_outside(path):
        return None
    lines = doc.lines
    start, end = written.start, written.end
    dash = lines[start]
    if not dash.lstrip(" ").startswith("-"):
        return None
    column = len(dash) - len(dash.lstrip(" "))
    for other in (index - 1, index + 1):
        neighbour = doc.written_at(join_index("exceptions", other))
        if neighbour is not None and neighbour.start < end and neighbour.end > start:
            return None
    while end < len(lines) and lines[end].lstrip().startswith("#") and len(lines[end]) - len(lines[end].lstrip(" ")) > column:
        end += 1
    kept = lines[:start] + lines[end:]
    if len(items) == 1:
        # The list becomes empty: `exceptions: []`, its comment kept.
        position = key_position(doc.data, "exceptions")
        if position is None:
            return None
        key_line = kept[position[0]]
        match = _EMPTY_KEY.match(key_line.rstrip("\n"))
        if match is None:
            return None
        comment = f"  {match.group('comment')}" if match.group("comment") else ""
        kept[position[0]] = f"exceptions: []{comment}\n"
    return "".join(kept)


def plan_remove_exception(
    tree: OrgTree, org_config: str, org: str, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...]
) -> Edit:
    """The edit that deletes the one exception of `org` to `rule` covering the given pipelines
    and teams: its lines go, every other line stays as it was."""
    node = require_node(tree, org, org_config)
    before = _read(node.file)
    doc = RoundTripDocument(before, node.file)
    entry = select_exception(doc, node, rule, pipelines, teams, "remove")
    path = join_index("exceptions", entry.index)
    text = _remove_lines(doc, entry.index)
    if text is not None:
        after = text.replace("\n", "\r\n") if doc.crlf else text
    else:
        # A flow list, or an entry holding an anchor used elsewhere: through ruamel.
        items = doc.private("exceptions")
        doc.touch(*doc.key_region(doc.data, "exceptions", sequence_at_column=True))
        doc.release_anchors(path)
        del items[entry.index]
        after = doc.render()
    doc.verify(after, _expected_without(doc.loaded(), entry.index), path)
    return Edit(org, node.file, before, after, (f"removed the {entry.describe()} (line {entry.line})", *doc.notes),
                tuple(doc.notes))


def plan_renew_exception(
    tree: OrgTree, org_config: str, org: str, rule: str, pipelines: tuple[str, ...], teams: tuple[str, ...],
    expires: dt.date,
) -> Edit:
    """The edit that sets the `expires` of the one exception of `org` to `rule` covering the given
    pipelines and teams; only that line changes."""
    node = require_node(tree, org, org_config)
    before = _read(node.file)
    doc = RoundTripDocument(before, node.file)
    found = select_exception(doc, node, rule, pipelines, teams, "renew")
    path = join_index("exceptions", found.index)
    if found.permanent:
        raise UsageError(f"the {found.describe()} ({node.file}:{found.line}) never expires; to give it an end, "
                         "remove it and add it again with --expires")
    if found.expires == expires.isoformat():
        return Edit(org, node.file, before, before, ())
    entry = doc.private("exceptions", found.index)
    written = doc.written_at(path)
    doc.touch(*((written.start, written.end) if written is not None else doc.region_of(entry)))
    if "expires" in entry:
        old = entry["expires"]
        doc.replacing(entry, "expires")
        entry["expires"] = _like(old, expires)
    else:
        entry["expires"] = expires
    after = doc.render()
    expected = doc.loaded()
    expected["exceptions"][found.index]["expires"] = expires.isoformat()
    doc.verify(after, expected, join_key(path, "expires"))
    what = (f"exception to {found.rule} for {found.covers()} (line {found.line}): expires "
            f"{found.expires} -> {expires.isoformat()}")
    return Edit(org, node.file, before, after, (what, *doc.notes), tuple(doc.notes))


# --- writing ---------------------------------------------------------------------------------


def verify_edit(edit: Edit, org_config: str, catalog: Catalog, today: dt.date) -> OrgTree:
    """Load the whole tree with the edited file from a temporary copy; ConfigError if it breaks."""
    with tempfile.TemporaryDirectory(prefix="pipewarden-edit-") as scratch:
        copy_root = os.path.join(scratch, "org-config")
        # Copy only the files the loader reads: an org config may live in a big repository.
        for source in config_files(org_config):
            target = os.path.join(copy_root, os.path.relpath(source, org_config))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
        relative = os.path.relpath(edit.file, org_config)
        with open(os.path.join(copy_root, relative), "w", encoding="utf-8", newline="") as handle:
            handle.write(edit.after)
        try:
            return load_org_tree(copy_root, catalog, today)
        except ConfigError as error:
            # Name the real files, not the scratch copy.
            message = error.message.replace(copy_root, org_config.rstrip(os.sep))
            where = error.file.replace(copy_root, org_config.rstrip(os.sep)) if error.file else None
            raise ConfigError(f"refusing to write {edit.file}: the result would not load: {message}",
                              where, error.line) from None


def write_edit(edit: Edit, org_config: str, catalog: Catalog, today: dt.date) -> None:
    """Verify the edit against the whole tree, then replace the file atomically."""
    if not edit.changed:
        return
    verify_edit(edit, org_config, catalog, today)
    if _read(edit.file) != edit.before:
        raise ConfigError("the file changed while it was being edited; run the command again", edit.file)
    directory = os.path.dirname(os.path.abspath(edit.file))
    fd, scratch = tempfile.mkstemp(prefix=".pipewarden-", suffix=".yaml", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(edit.after)
        shutil.copymode(edit.file, scratch)
        os.replace(scratch, edit.file)
    except OSError as error:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise ConfigError(f"cannot write the file: {error.strerror or error}", edit.file) from None
