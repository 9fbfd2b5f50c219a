"""The rule catalog: every rule's metadata, read from the `# METADATA` blocks of its Rego file.

The embedded engine has no API for annotations, so the block is parsed here: the comment
lines after `# METADATA`, with the leading `# ` removed, are one YAML document.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipewarden.errors import ConfigError, LoadError
from pipewarden.load.yamlsafe import ParsedYaml, parse_yaml, read_text_file
from pipewarden.policy.builtin import BUILTIN_RULES
from pipewarden.policy.rule import Rule

_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)(.*)$", re.MULTILINE)
# A head of the rule `deny`, at the start of a line as rule heads are written (opa fmt): `deny
# contains v if ...` (a partial set, defined even when empty) or a complete rule such as
# `deny := {...} if ...` (undefined when its body fails). Indented, `deny` is a local variable.
_DENY_HEAD = re.compile(r"^deny\b[ \t]*(contains\b)?", re.MULTILINE)
RULE_PACKAGE_PREFIX = "pipewarden.rules."
FLEET_PACKAGE_PREFIX = "pipewarden.fleet."
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


def builtin_policies_dir() -> Path:
    """The built-in `policies/` folder: inside the installed package, or the repository's."""
    packaged = Path(__file__).resolve().parent.parent / "policies"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "policies"


def _metadata(text: str, source: str) -> tuple[dict[str, Any], int, ParsedYaml]:
    """The YAML of the first `# METADATA` block in a Rego file, the block as parsed, and the
    number of file lines before it (a path's line in the file is that number plus its line in
    the block)."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if line.strip() == "# METADATA":
            block = []
            for follow in lines[start + 1 :]:
                stripped = follow.lstrip()
                if not stripped.startswith("#"):
                    break
                block.append(stripped[2:] if stripped.startswith("# ") else stripped[1:])
            # The defended loader (size, depth and alias limits, YAML 1.2 scalars as in org
            # configs, so that a rule's default params read the same as the org's overrides).
            try:
                parsed = parse_yaml("\n".join(block))
            except LoadError as exc:
                at = start + 1 + (exc.line or 1)
                raise ConfigError(f"the METADATA block is not valid YAML: {exc.message}", source, at) from None
            data = parsed.value
            if not isinstance(data, dict):
                raise ConfigError("the METADATA block must be a mapping", source, start + 1)
            return data, start + 1, parsed
    raise ConfigError("the rule has no '# METADATA' block; add one (see docs/writing-rules.md)", source, 1)


def read_rego(path: Path) -> str:
    """A Rego file's text (a leading byte order mark skipped); a ConfigError when unreadable."""
    try:
        return read_text_file(str(path))
    except LoadError as exc:
        raise ConfigError(f"cannot read the policy file: {exc.message}", str(path), exc.line or 1) from None


def rule_from_file(path: Path, custom: bool, text: str | None = None, top: Path | None = None) -> Rule:
    """The rule of one Rego file; `top` is the policy folder it was found in (a rule file in a
    folder of its own below it must name that folder after the rule)."""
    if text is None:
        text = read_rego(path)
    metadata, before_block, block = _metadata(text, str(path))
    match = _PACKAGE.search(text)
    if match is None:
        raise ConfigError("the file has no package declaration", str(path), 1)
    package = match.group(1)
    rest = match.group(2).strip()
    if rest and not rest.startswith("#"):
        line = text[: match.start()].count("\n") + 1
        raise ConfigError(
            f"write the package as dotted names ({package}.<name>), not {rest!r}: the rule's id "
            "goes in METADATA custom.id, and may have dashes", str(path), line,
        )
    if package.startswith(RULE_PACKAGE_PREFIX):
        kind = "document"
    elif package.startswith(FLEET_PACKAGE_PREFIX):
        kind = "fleet"
    else:
        line = text[: match.start()].count("\n") + 1
        raise ConfigError(
            f"rule package {package!r} must be under {RULE_PACKAGE_PREFIX}<name> or {FLEET_PACKAGE_PREFIX}<name>",
            str(path), line,
        )
    head_matches = list(_DENY_HEAD.finditer(text))
    if not head_matches:
        raise ConfigError(
            "the rule defines no `deny` (at the start of a line); report each violation with "
            "`deny contains v if { ... }`", str(path), text[: match.start()].count("\n") + 1,
        )
    heads = [m.group(1) or "" for m in head_matches]
    deny_line = text[: head_matches[0].start()].count("\n") + 1
    custom_meta = metadata.get("custom") or {}
    rule_id = custom_meta.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise ConfigError("METADATA needs custom.id, a lowercase id such as 'no-friday-deploys'", str(path), 1)
    id_line = before_block + block.line_of("custom.id")
    _check_names(path, top, rule_id, id_line, package, text[: match.start()].count("\n") + 1)
    level = custom_meta.get("level", "warn")
    if level not in ("off", "warn", "enforce"):
        raise ConfigError(f"METADATA custom.level is {level!r}; expected off, warn or enforce", str(path), 1)
    params = custom_meta.get("params") or {}
    schema = custom_meta.get("params_schema") or {"type": "object"}
    if not custom:
        # Built-in metadata is checked by the test suite (tests/test_catalog.py); an
        # organisation's own rules are checked on every load.
        return _rule(rule_id, metadata, custom_meta, level, params, schema, kind, package, path, custom, heads,
                     deny_line)
    import jsonschema

    try:
        jsonschema.Draft7Validator.check_schema(schema)
        from pipewarden.policy.paramschema import params_validator

        error = jsonschema.exceptions.best_match(params_validator(schema).iter_errors(params))
        if error is not None:
            raise error
    except jsonschema.exceptions.SchemaError as exc:
        raise ConfigError(f"METADATA custom.params_schema is not a valid JSON Schema: {exc.message}", str(path), 1) from None
    except jsonschema.ValidationError as exc:
        raise ConfigError(f"METADATA custom.params do not match params_schema: {exc.message}", str(path), 1) from None
    rule = _rule(rule_id, metadata, custom_meta, level, params, schema, kind, package, path, custom, heads,
                 deny_line)
    # A read of a parameter the METADATA does not declare is undefined in Rego: the rule would
    # silently find nothing. (tests/test_rule_params.py holds the built-in rules to this too.)
    from pipewarden.policy.paramcheck import check_param_reads

    check_param_reads(rule, text)
    link = _docs_link(metadata, str(path), before_block, block)
    return replace(rule, docs_url=link) if link is not None else rule


def _docs_link(metadata: dict[str, Any], source: str, before_block: int, block: ParsedYaml) -> str | None:
    """The first link of OPA's `related_resources` annotation (`- ref: URL` with an optional
    `description`, or a bare URL), which SARIF and the PR comment give as the rule's docs; None
    without one. A link that is not an absolute http(s) URL is an error at load, naming its line."""
    resources = metadata.get("related_resources")
    if resources is None:
        return None
    line = before_block + block.line_of("related_resources")
    if not isinstance(resources, list) or not resources:
        raise ConfigError("METADATA related_resources must be a list of `- ref: URL` entries", source, line)
    first = resources[0]
    ref = first.get("ref") if isinstance(first, dict) else first
    if not isinstance(ref, str) or _HTTP_URL.match(ref.strip()) is None:
        raise ConfigError(
            f"METADATA related_resources[0].ref is {ref!r}; write an absolute http(s) URL, the rule's docs page",
            source, before_block + block.line_of("related_resources[0]"),
        )
    # As a URI: what an RFC 3986 URI cannot hold (spaces, quotes, `<>`, non-ASCII) percent-encoded.
    return quote(ref.strip(), safe="!#$%&'()*+,/:;=?@[]~-._")


def _check_names(path: Path, top: Path | None, rule_id: str, id_line: int, package: str, package_line: int) -> None:
    """A rule's id, package and folder agree (writing-rules.md, "Layout"): the package below
    `pipewarden.rules.` (or `pipewarden.fleet.`) is the id with its dashes as underscores, a dot
    allowed for any of them (`acme.canary_first` for `acme-canary-first`); a rule file in a folder of
    its own below the policy folder sits in a folder named after the id. A rule file right in the
    policy folder has no folder of its own to check."""
    prefix = RULE_PACKAGE_PREFIX if package.startswith(RULE_PACKAGE_PREFIX) else FLEET_PACKAGE_PREFIX
    name = package[len(prefix) :]
    wanted = rule_id.replace("-", "_")
    if name.replace(".", "_") != wanted:
        from_package = name.replace(".", "-").replace("_", "-")
        instead = f", or the id to {from_package!r}" if _ID.match(from_package) else ""
        raise ConfigError(
            f"package {package} does not match the rule id {rule_id!r} (METADATA custom.id, line {id_line}): "
            f"rename the package to {prefix}{wanted}{instead}", str(path), package_line,
        )
    folder = path.parent
    if top is not None and folder != top and folder.name != rule_id:
        raise ConfigError(
            f"the rule's folder {folder.name!r} does not match its id {rule_id!r} (METADATA custom.id): "
            f"rename the folder to {rule_id} (one folder per rule, named after its id)", str(path), id_line,
        )


def _rule(
    rule_id: str, metadata: dict[str, Any], custom_meta: dict[str, Any], level: str, params: dict[str, Any],
    schema: dict[str, Any], kind: str, package: str, path: Path, custom: bool, deny_heads: list[str],
    deny_line: int,
) -> Rule:
    return Rule(
        id=rule_id,
        title=str(metadata.get("title", rule_id)),
        description=str(metadata.get("description", "")).strip(),
        rationale=str(custom_meta.get("rationale", "")).strip(),
        remediation=str(custom_meta.get("remediation", "")).strip(),
        level=level,
        params=params,
        params_schema=schema,
        prod_only=bool(custom_meta.get("prod_only", False)),
        kind=kind,
        package=package,
        source=str(path),
        custom=custom,
        deny_always_defined=all(head == "contains" for head in deny_heads),
        deny_line=deny_line,
    )


def rule_files(directory: Path) -> list[Path]:
    """Rego rule files (not tests, not the shared lib) under `directory`, sorted."""
    files = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".rego") and not name.endswith("_test.rego"):
                files.append(Path(root) / name)
    return files


def is_library(path: Path, text: str) -> bool:
    match = _PACKAGE.search(text)
    return match is not None and not match.group(1).startswith((RULE_PACKAGE_PREFIX, FLEET_PACKAGE_PREFIX))


@dataclass(frozen=True)
class Catalog:
    """All rules of a run: built-ins plus any `--policies` folders, by id.

    `fingerprint` is the SHA-256 of what the catalog was read from (see `load_catalog`), and
    `texts` holds the text of every rule and library file as it was read, so that an engine
    compiles exactly what the rules were read from, without reading the files again.
    """

    rules: dict[str, Rule]
    policy_dirs: tuple[str, ...]
    library_files: tuple[str, ...]
    fingerprint: str = ""
    texts: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, rule_id: str) -> Rule | None:
        return self.rules.get(rule_id)

    def document_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.kind == "document"]

    def fleet_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.kind == "fleet"]


    def rego_files(self) -> list[str]:
        return list(self.library_files) + [r.source for r in self.rules.values() if r.source]


# The rule and library files of a load, in reading order: (path, text, custom, policy folder).
_Sources = list[tuple[Path, str, bool, Path]]
_CACHED_CATALOGS = 16


def _read_sources(dirs: list[tuple[Path, bool]]) -> tuple[_Sources, ConfigError | None]:
    """Every rule and library file's text, in the order the catalog reads them, and the problem
    that stopped the reading (a missing folder, an unreadable file), if one did: the files read
    before it are still checked first, so that errors come in the order they always did."""
    sources: _Sources = []
    for directory, custom in dirs:
        if not directory.is_dir():
            return sources, ConfigError("policy folder does not exist or is not a directory", str(directory))
        for path in rule_files(directory):
            try:
                sources.append((path, read_rego(path), custom, directory))
            except ConfigError as problem:
                return sources, problem
    return sources, None


def _fingerprint(dirs: list[tuple[Path, bool]], sources: _Sources) -> str:
    """SHA-256 of the folders (names, in order) and of every file's path and text."""
    digest = hashlib.sha256()
    for directory, custom in dirs:
        digest.update(f"dir\0{directory}\0{custom}\0".encode("utf-8", "surrogateescape"))
    for path, text, _, _ in sources:
        digest.update(f"file\0{path}\0{len(text)}\0".encode("utf-8", "surrogateescape"))
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _build(dirs: list[tuple[Path, bool]], sources: _Sources, fingerprint: str) -> Catalog:
    """Parse the files read; a bad rule is a ConfigError."""
    rules: dict[str, Rule] = {rule.id: rule for rule in BUILTIN_RULES}
    libraries: list[str] = []
    packages: dict[str, str] = {}
    for path, text, custom, top in sources:
        if is_library(path, text):
            libraries.append(str(path))
            continue
        rule = rule_from_file(path, custom, text, top)
        if rule.id in rules:
            other = rules[rule.id].source or "the Python core"
            raise ConfigError(f"rule id {rule.id!r} is already defined in {other}", str(path), 1)
        if rule.package in packages:
            raise ConfigError(f"package {rule.package} is already used by {packages[rule.package]}", str(path), 1)
        packages[str(rule.package)] = str(path)
        rules[rule.id] = rule
    texts = {str(path): text for path, text, _, _ in sources}
    return Catalog(rules, tuple(str(d) for d, _ in dirs), tuple(libraries), fingerprint, texts)


class _CatalogLoader:
    """`load_catalog`: the catalog of the built-in rules and those of `extra_dirs`, from a cache
    keyed by the content of the files.

    Every call reads the rule and library files (not the tests) and hashes their paths and
    texts; the rules are parsed again only when that hash is new. So a long-running process (the
    release engine's worker) sees a rule file edited, added or removed on its next call, and a
    command that asks twice pays for one parse. Names, sizes and modification times are not
    used, not even as a first check: a file rewritten within the clock's resolution, or with its
    time restored, would keep its old rules, and a check that a content hash must confirm saves
    nothing, since the files must be read for that hash anyway. The reading was always paid
    (about 2 ms for the built-ins, walk included); the cache saves the parsing and checking
    (as much again, and more for custom rules, whose params are checked against their schema).
    Thread-safe; a bad rule is a ConfigError, and is not cached.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalogs: OrderedDict[str, Catalog] = OrderedDict()

    def __call__(self, extra_dirs: tuple[str, ...] = ()) -> Catalog:
        dirs = [(builtin_policies_dir(), False)] + [(Path(d), True) for d in extra_dirs]
        sources, problem = _read_sources(dirs)
        fingerprint = _fingerprint(dirs, sources)
        if problem is None:
            with self._lock:
                cached = self._catalogs.get(fingerprint)
                if cached is not None:
                    self._catalogs.move_to_end(fingerprint)
                    return cached
        catalog = _build(dirs, sources, fingerprint)
        if problem is not None:
            raise problem
        with self._lock:
            catalog = self._catalogs.setdefault(fingerprint, catalog)  # one object per content
            while len(self._catalogs) > _CACHED_CATALOGS:
                self._catalogs.popitem(last=False)
        return catalog

    def cache_clear(self) -> None:
        """Forget every catalog read (the next call parses again)."""
        with self._lock:
            self._catalogs.clear()


load_catalog = _CatalogLoader()
