"""Load an org-config directory into a validated tree of org nodes.

Every configuration mistake is a ConfigError naming the file and line, found when the tree
loads, whichever pipelines are being checked: a policy owner learns of a broken lock or a
bad exception from `config validate`, not from a surprised team.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.validate import load_config_file
from pipewarden.load.yamlsafe import ParsedYaml, read_limited
from pipewarden.model.paths import join_key
from pipewarden.policy.builtin import ALWAYS_ENFORCED, fix_instead
from pipewarden.policy.catalog import Catalog

SCHEMA = "orgconfig"


@dataclass(frozen=True)
class RuleEntry:
    """What one node says about one rule."""

    level: str | None
    enforce_from: dt.date | None
    params: dict[str, Any] | None
    locked: bool
    file: str
    line: int


@dataclass(frozen=True)
class OrgException:
    """An exception granted by a node to pipelines or teams of its subtree."""

    org: str
    rule: str
    pipelines: tuple[str, ...]
    teams: tuple[str, ...]
    reason: str
    approved_by: str
    expires: dt.date | None
    permanent: bool
    file: str
    line: int

    def active(self, today: dt.date) -> bool:
        return self.permanent or (self.expires is not None and today <= self.expires)

    def matches(self, pipeline: str | None, team: str | None) -> bool:
        return (pipeline is not None and pipeline in self.pipelines) or (team is not None and team in self.teams)

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "rule": self.rule,
            "pipelines": list(self.pipelines),
            "teams": list(self.teams),
            "reason": self.reason,
            "approved_by": self.approved_by,
            "expires": self.expires.isoformat() if self.expires else None,
            "permanent": self.permanent,
        }


@dataclass(frozen=True)
class OrgNode:
    name: str
    parent: str | None
    owners: tuple[str, ...]
    teams: tuple[str, ...]
    rules: dict[str, RuleEntry]
    exceptions: tuple[OrgException, ...]
    blocklist: dict[str, list[dict[str, Any]]]
    settings: dict[str, Any]
    file: str
    line: int


@dataclass(frozen=True)
class OrgTree:
    """The validated tree. `chain(node)` runs from the root down to `node`."""

    nodes: dict[str, OrgNode]
    root: str
    team_nodes: dict[str, str]
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _chains: dict[str, tuple[OrgNode, ...]] = field(default_factory=dict, compare=False, repr=False)

    def chain(self, name: str) -> list[OrgNode]:
        cached = self._chains.get(name)
        if cached is not None:
            return list(cached)
        chain = []
        current: str | None = name
        while current is not None:
            node = self.nodes[current]
            chain.append(node)
            current = node.parent
        chain.reverse()
        self._chains[name] = tuple(chain)
        return chain

    def node_for_team(self, team: str | None) -> str | None:
        """The node a team belongs to, or None for a team in no node."""
        return self.team_nodes.get(team) if team is not None else None

    def subtree(self, name: str) -> list[str]:
        """`name` and all its descendants, parents before children."""
        result, todo = [], [name]
        while todo:
            current = todo.pop(0)
            result.append(current)
            todo.extend(self.children.get(current, ()))
        return result

    def blocklist(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """The blocklist entries of every node on the chain, added up (root first)."""
        merged: dict[str, list[dict[str, Any]]] = {"packages": [], "git_refs": []}
        for node in self.chain(name):
            for kind, entries in node.blocklist.items():
                merged.setdefault(kind, []).extend(entries)
        return merged


def _config_files(directory: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.endswith((".yaml", ".yml")):
                files.append(os.path.join(root, name))
    return files


def _parse_date(value: str, file: str, line: int, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a valid date; write YYYY-MM-DD", file, line) from None


def load_org_tree(directory: str, catalog: Catalog, today: dt.date) -> OrgTree:
    """Load and validate every node under `directory`; raise ConfigError on any problem."""
    if not os.path.isdir(directory):
        raise ConfigError("org-config directory does not exist or is not a directory", directory)
    files = _config_files(directory)
    if not files:
        raise ConfigError("org-config directory holds no .yaml/.yml file; add at least the root node", directory)
    nodes: dict[str, OrgNode] = {}
    for file in files:
        node = _load_node(file, catalog)
        if node.name in nodes:
            raise ConfigError(f"org node {node.name!r} is already defined in {nodes[node.name].file}", file, node.line)
        nodes[node.name] = node
    tree = _link(nodes)
    _check_locks(tree)
    _check_exceptions(tree, catalog, today)
    return tree


class OrgTreeCache:
    """Org trees already loaded, keyed by the content of their files, for a long-running process
    (the release engine's worker): an org file edited, added or removed is seen on the next call.

    Each call reads every org file and hashes its name and bytes (names, sizes and times are not
    trusted: a file rewritten within the clock's resolution keeps them); the files are parsed and
    validated again only when that hash is new. The key also holds the catalog's fingerprint (rule
    ids and params schemas are checked against it) and `today` (exception caps depend on it). A
    tree is kept only when the files hash the same after loading as before, so that a file edited
    during the load never leaves its new tree under its old content. Thread-safe; a tree with an
    error is never kept (the error is raised again, as `load_org_tree` raises it).
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._trees: OrderedDict[tuple[str, str, dt.date, str], OrgTree] = OrderedDict()

    def load(self, directory: str, catalog: Catalog, today: dt.date) -> OrgTree:
        before = _content_hash(directory)
        # Not a folder, or a file that cannot be read (the loader says which); or a catalog built
        # by hand, without the fingerprint of what it was read from: loaded, never kept.
        if before is None or not catalog.fingerprint:
            return load_org_tree(directory, catalog, today)
        key = (directory, catalog.fingerprint, today, before)
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
                return tree
        tree = load_org_tree(directory, catalog, today)
        if _content_hash(directory) == before:
            with self._lock:
                tree = self._trees.setdefault(key, tree)
                while len(self._trees) > self._size:
                    self._trees.popitem(last=False)
        return tree

    def clear(self) -> None:
        with self._lock:
            self._trees.clear()


def _content_hash(directory: str) -> str | None:
    """SHA-256 of the org files' paths and bytes (the files `load_org_tree` reads), or None when
    the folder or a file cannot be read."""
    if not os.path.isdir(directory):
        return None
    digest = hashlib.sha256()
    try:
        for file in _config_files(directory):
            data = read_limited(file)
            digest.update(f"{file}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
            digest.update(data)
    except (LoadError, OSError):
        return None
    return digest.hexdigest()


_ORG_TREES = OrgTreeCache()


def load_org_tree_cached(directory: str, catalog: Catalog, today: dt.date) -> OrgTree:
    """`load_org_tree` through the process's `OrgTreeCache`: the same tree object while the
    files, the catalog and the day stay the same."""
    return _ORG_TREES.load(directory, catalog, today)


def _load_node(file: str, catalog: Catalog) -> OrgNode:
    parsed = load_config_file(file, SCHEMA)
    doc = parsed.value
    name = doc["metadata"]["name"]
    rules: dict[str, RuleEntry] = {}
    for rule_id, entry in (doc.get("rules") or {}).items():
        at = join_key("rules", rule_id)
        rules[rule_id] = _rule_entry(rule_id, entry, parsed, at, file, catalog)
    exceptions = tuple(
        _exception(name, i, entry, parsed, file, catalog) for i, entry in enumerate(doc.get("exceptions") or [])
    )
    _check_blocklist_versions(doc.get("blocklist") or {}, parsed, file)
    return OrgNode(
        name=name,
        parent=doc["metadata"].get("parent"),
        owners=tuple(doc["metadata"].get("owners") or ()),
        teams=tuple(doc.get("teams") or ()),
        rules=rules,
        exceptions=exceptions,
        blocklist={k: list(v) for k, v in (doc.get("blocklist") or {}).items()},
        settings=dict(doc.get("settings") or {}),
        file=file,
        line=parsed.line_of("metadata.name"),
    )


def _rule_entry(
    rule_id: str, entry: dict[str, Any], parsed: ParsedYaml, at: str, file: str, catalog: Catalog
) -> RuleEntry:
    line = parsed.line_of(at)
    rule = catalog.get(rule_id)
    if rule is None:
        raise ConfigError(f"unknown rule id {rule_id!r}; see `pipewarden rules list` for the ids", file, line)
    if rule_id in ALWAYS_ENFORCED and entry.get("level", "enforce") != "enforce":
        raise ConfigError(f"{rule_id} is always enforce and cannot be changed", file, line)
    if entry.get("level") == "off" and "enforce_from" in entry:
        raise ConfigError(
            f"rule {rule_id!r} sets level off together with enforce_from; "
            "to schedule enforcement write level: warn with enforce_from",
            file, parsed.line_of(join_key(at, "enforce_from")),
        )
    params = entry.get("params")
    if params is not None:
        _check_params(rule_id, params, rule.params_schema, parsed, join_key(at, "params"), file)
    enforce_from = None
    if "enforce_from" in entry:
        enforce_from = _parse_date(entry["enforce_from"], file, parsed.line_of(join_key(at, "enforce_from")), "enforce_from")
    return RuleEntry(entry.get("level"), enforce_from, params, bool(entry.get("locked", False)), file, line)


def _check_params(
    rule_id: str, params: dict[str, Any], schema: dict[str, Any], parsed: ParsedYaml, at: str, file: str
) -> None:
    # (jsonschema is imported there: only org files with params pay for the import)
    from pipewarden.policy.paramschema import params_validator

    errors: list[Any] = sorted(params_validator(schema).iter_errors(params), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = errors[0]
    path = at
    for part in error.absolute_path:
        path = f"{path}[{part}]" if isinstance(part, int) else join_key(path, str(part))
    if error.validator == "additionalProperties":
        known = set(schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        if unknown:
            path = join_key(path, str(unknown[0]))
            allowed = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"rule {rule_id!r} has no parameter {unknown[0]!r}; its parameters: {allowed}", file, parsed.line_of(path)
            )
    raise ConfigError(f"rule {rule_id!r} parameter {path}: {error.message}", file, parsed.line_of(path))


def _exception(
    org: str, index: int, entry: dict[str, Any], parsed: ParsedYaml, file: str, catalog: Catalog
) -> OrgException:
    at = f"exceptions[{index}]"
    line = parsed.line_of(at)
    rule = entry["rule"]
    if catalog.get(rule) is None:
        raise ConfigError(f"exception for unknown rule id {rule!r}", file, parsed.line_of(f"{at}.rule"))
    if rule in ALWAYS_ENFORCED:
        raise ConfigError(f"{rule} cannot be excepted; {fix_instead(rule)} instead", file, line)
    if not entry.get("pipelines") and not entry.get("teams"):
        raise ConfigError("an exception needs 'pipelines' or 'teams' to say what it covers", file, line)
    permanent = entry.get("permanent") is True
    has_expiry = "expires" in entry
    if permanent == has_expiry:
        raise ConfigError(
            "an exception needs exactly one of 'expires: YYYY-MM-DD' or 'permanent: true'", file, line
        )
    expires = _parse_date(entry["expires"], file, parsed.line_of(f"{at}.expires"), "expires") if has_expiry else None
    return OrgException(
        org=org,
        rule=rule,
        pipelines=tuple(entry.get("pipelines") or ()),
        teams=tuple(entry.get("teams") or ()),
        reason=entry["reason"],
        approved_by=entry["approved_by"],
        expires=expires,
        permanent=permanent,
        file=file,
        line=line,
    )


ANY_VERSION = "*"
"""`versions: "*"` (or no `versions`): every version of the package."""


def _check_blocklist_versions(blocklist: dict[str, Any], parsed: ParsedYaml, file: str) -> None:
    """Each package entry's `versions` is a PEP 440 specifier set (or `*`): the release engine's
    blocklist gate reads it so (engine.md), and a typo must stop `config validate`, not an artifact."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet  # only org files with a blocklist pay

    for index, entry in enumerate(blocklist.get("packages") or []):
        versions = entry.get("versions")
        if versions is None or versions.strip() == ANY_VERSION:
            continue
        try:
            SpecifierSet(versions)
        except InvalidSpecifier:
            raise ConfigError(
                f"blocklist entry {entry['name']!r}: versions {versions!r} is not a PEP 440 specifier set; "
                "write for example '<1.4.2' or '>=2.0,<2.3.1' (or '*' for every version)",
                file, parsed.line_of(f"blocklist.packages[{index}].versions"),
            ) from None


def _link(nodes: dict[str, OrgNode]) -> OrgTree:
    roots = [n for n in nodes.values() if n.parent is None]
    if not roots:
        first = next(iter(nodes.values()))
        raise ConfigError("the org tree has no root: exactly one node must omit 'parent'", first.file, first.line)
    if len(roots) > 1:
        raise ConfigError(
            f"the org tree has two roots, {roots[0].name!r} ({roots[0].file}) and {roots[1].name!r}; "
            "give every node but one a 'parent'",
            roots[1].file, roots[1].line,
        )
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parent is not None:
            if node.parent not in nodes:
                raise ConfigError(f"parent {node.parent!r} is not an org node", node.file, node.line)
            children.setdefault(node.parent, []).append(node.name)
    for node in nodes.values():
        seen = {node.name}
        current = node.parent
        while current is not None:
            if current in seen:
                raise ConfigError(f"org node {node.name!r} is part of a parent cycle", node.file, node.line)
            seen.add(current)
            current = nodes[current].parent
    team_nodes: dict[str, str] = {}
    for node in nodes.values():
        for team in node.teams:
            if team in team_nodes:
                other = nodes[team_nodes[team]]
                raise ConfigError(
                    f"team {team!r} is in two org nodes, {other.name!r} ({other.file}) and {node.name!r}; "
                    "list each team in exactly one node",
                    node.file, node.line,
                )
            team_nodes[team] = node.name
    return OrgTree(nodes, roots[0].name, team_nodes, {k: tuple(v) for k, v in children.items()})


def _check_locks(tree: OrgTree) -> None:
    for node in tree.nodes.values():
        ancestors = tree.chain(node.name)[:-1]
        for ancestor in ancestors:
            for rule_id, entry in ancestor.rules.items():
                if not entry.locked:
                    continue
                if rule_id in node.rules:
                    raise ConfigError(
                        f"rule {rule_id!r} is locked by org {ancestor.name!r} ({entry.file}:{entry.line}); "
                        "a descendant may not change it: remove this entry",
                        node.file, node.rules[rule_id].line,
                    )
                for exception in node.exceptions:
                    if exception.rule == rule_id:
                        raise ConfigError(
                            f"rule {rule_id!r} is locked by org {ancestor.name!r} ({entry.file}:{entry.line}); "
                            "only that node may grant exceptions to it",
                            node.file, exception.line,
                        )


def _check_exceptions(tree: OrgTree, catalog: Catalog, today: dt.date) -> None:
    # The cap exists only where the root sets it (org-config.md: "the root may cap");
    # `exceptions add` applies a default of its own to new exceptions.
    cap = tree.nodes[tree.root].settings.get("max_exception_days")
    if cap is None:
        return
    for node in tree.nodes.values():
        for exception in node.exceptions:
            if exception.expires is not None and (exception.expires - today).days > cap:
                raise ConfigError(
                    f"exception for {exception.rule!r} expires {exception.expires.isoformat()}, more than "
                    f"{cap} days from today ({today.isoformat()}); the root caps exceptions at {cap} days "
                    "(settings.max_exception_days)",
                    exception.file, exception.line,
                )
