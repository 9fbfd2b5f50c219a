"""An artifact's manifest: the packages it holds (engine.md, "Manifest"), read from its checkout
after the build commands ran.

- With `build.sbom: PATH` (relative to the checkout): a CycloneDX JSON SBOM, read through
  `cyclonedx-python-lib`. Its components (nested ones too; not `metadata.component`, the artifact
  itself) whose package URL is of type `pypi` or `npm` are the manifest; components of other
  ecosystems or without a package URL are not. The version is the component's, else its package
  URL's.
- Without it: the lock files at the checkout's top level, all of them: `requirements*.txt` (only
  `name==version` pins, `===` too; extras and markers allowed, `-r`, `-e`, URLs and ranges are not
  pins), `poetry.lock` and `uv.lock` (`[[package]]` name and version, with `tomllib`; uv's
  editable and virtual packages, the project's own, left out) and `package-lock.json` (lockfile
  v2/v3 `packages`, the project itself and workspace links left out; a v1 file's `dependencies`
  tree when it has no `packages`).

Names are normalised per ecosystem (PEP 503 for pypi, lowercase for npm; `domain/manifest.py`),
versions kept as written. The list is sorted and has no duplicates.

Failures (`ManifestError`, a build failure with this reason; the build is not retried for it):
an SBOM that is missing, outside the checkout, not JSON, not a CycloneDX document
(`bomFormat: CycloneDX` and a `specVersion` the library reads: 1.2 to 1.7) or that the library
cannot read; a lock file that is not valid TOML or JSON or not shaped as its tool writes it, not
UTF-8, larger than MAX_BYTES, or a link out of the checkout. A broken lock file fails the build
rather than giving an empty manifest: the blocklist would pass what it cannot see. Lines of a
requirements file that are not pins are skipped (they are not part of the manifest).

The SBOM is not validated against CycloneDX's JSON schema: the library's validator checks
`uniqueItems` pairwise (jsonschema), which took 18 s for an SBOM of 3,000 components here; the
library's own reading checks what the manifest uses (component types, names, package URLs).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from pipewarden.engine.domain.manifest import NPM, PYPI, Package

MAX_BYTES = 64 * 1024 * 1024
"""Largest lock file or SBOM read (a large npm lock file is a few MB)."""

SBOM_ECOSYSTEMS = {"pypi": PYPI, "npm": NPM}
"""Package URL types (purl `pkg:TYPE/...`) and the ecosystem each is."""


class ManifestError(Exception):
    """The manifest cannot be read (a user-caused build failure); the message names the file."""


def read_manifest(checkout: Path, sbom: str | None, *, max_bytes: int = MAX_BYTES) -> list[Package]:
    """The packages of the build in `checkout`: from the SBOM `sbom` (a path relative to the
    checkout) when given, else from the lock files at the checkout's top level. ManifestError
    when they cannot be read (module docstring); no file is read past `max_bytes`."""
    checkout = Path(checkout)
    if sbom is not None:
        found = _from_sbom(checkout, sbom, max_bytes)
    else:
        found = []
        for path in sorted(checkout.glob("requirements*.txt")):
            if path.is_file():
                found += _from_requirements(_text(checkout, path, max_bytes))
        for name, read in (("poetry.lock", _from_poetry), ("uv.lock", _from_uv),
                           ("package-lock.json", _from_package_lock)):
            path = checkout / name
            if path.exists() or path.is_symlink():
                found += read(path.name, _text(checkout, path, max_bytes))
    return sorted(set(found))


# ---------------------------------------------------------------- reading files


def _inside(checkout: Path, path: Path, what: str) -> Path:
    """`path` resolved; ManifestError when it leaves the checkout (a link out of it, `..`)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(checkout.resolve()):
        raise ManifestError(f"{what} is outside the checkout")
    return resolved


def _text(checkout: Path, path: Path, max_bytes: int, what: str | None = None) -> str:
    what = what or path.name
    resolved = _inside(checkout, path, what)
    if not resolved.is_file():
        raise ManifestError(f"{what} is not a file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise ManifestError(f"{what} is {size} bytes, more than the {max_bytes} read")
    try:
        return resolved.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{what} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ManifestError(f"{what} cannot be read: {error.strerror or error}") from None


# ---------------------------------------------------------------- requirements*.txt

_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTIONS = re.compile(r"\s+--?[A-Za-z]")  # per-requirement options: --hash=..., --config-settings ...


def _logical_lines(text: str) -> Iterator[str]:
    """pip's reading: comments removed, lines ending with a backslash joined to the next."""
    pending = ""
    for line in text.splitlines():
        line = _COMMENT.sub("", line)
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _from_requirements(text: str) -> list[Package]:
    found: list[Package] = []
    for line in _logical_lines(text):
        line = line.strip()
        if not line or line.startswith("-"):
            continue  # an option line (-r, -c, -e, --index-url ...)
        line = _OPTIONS.split(line, maxsplit=1)[0]
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # a path, a URL without a name, a typo: not a pin
        specifiers = list(requirement.specifier)
        if requirement.url or len(specifiers) != 1:
            continue
        [specifier] = specifiers
        if specifier.operator not in ("==", "===") or specifier.version.endswith("*"):
            continue  # a range or a prefix (==1.2.*) is not a pin
        found.append(Package.of(requirement.name, specifier.version, PYPI))
    return found


# ---------------------------------------------------------------- poetry.lock, uv.lock


def _toml_packages(name: str, text: str) -> list[dict[str, Any]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{name} is not valid TOML: {error}") from None
    packages = document.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(entry, dict) for entry in packages):
        raise ManifestError(f"{name}: `package` is not an array of tables ([[package]])")
    return packages


def _named(name: str, index: int, entry: dict[str, Any]) -> tuple[str, str]:
    """(name, version) of a lock file's package entry; a missing version reads as empty (which
    the blocklist treats as a version it cannot parse: a match)."""
    package, version = entry.get("name"), entry.get("version", "")
    if not isinstance(package, str) or not package.strip():
        raise ManifestError(f"{name}: package entry {index + 1} has no name")
    if not isinstance(version, str):
        raise ManifestError(f"{name}: the version of package {package!r} is not a string")
    return package, version


def _from_poetry(name: str, text: str) -> list[Package]:
    return [Package.of(*_named(name, index, entry), PYPI) for index, entry in enumerate(_toml_packages(name, text))]


def _from_uv(name: str, text: str) -> list[Package]:
    found: list[Package] = []
    for index, entry in enumerate(_toml_packages(name, text)):
        source = entry.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source):
            continue  # the project's own packages (its workspace), not dependencies
        found.append(Package.of(*_named(name, index, entry), PYPI))
    return found


# ---------------------------------------------------------------- package-lock.json


def _from_package_lock(name: str, text: str) -> list[Package]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{name} is not a JSON object")
    packages = document.get("packages")
    if packages is None:
        return list(_npm_v1(name, document.get("dependencies") or {}))
    if not isinstance(packages, dict):
        raise ManifestError(f"{name}: `packages` is not an object")
    found: list[Package] = []
    for key, entry in packages.items():
        if not isinstance(entry, dict):
            raise ManifestError(f"{name}: packages[{key!r}] is not an object")
        if "node_modules/" not in key or entry.get("link") is True:
            continue  # "" is the project, other keys its workspaces; a link points at one of those
        package = entry.get("name", key.rsplit("node_modules/", 1)[1])  # `name`: an aliased package
        version = entry.get("version", "")
        if not isinstance(package, str) or not package or not isinstance(version, str):
            raise ManifestError(f"{name}: packages[{key!r}] has a name or version that is not a string")
        found.append(Package.of(package, version, NPM))
    return found


def _npm_v1(name: str, dependencies: Any) -> Iterable[Package]:
    """Lockfile v1: `dependencies` nested by name."""
    if not isinstance(dependencies, dict):
        raise ManifestError(f"{name}: `dependencies` is not an object")
    for package, entry in dependencies.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("version", ""), str):
            raise ManifestError(f"{name}: dependencies[{package!r}] is not an object with a string version")
        yield Package.of(package, str(entry.get("version", "")), NPM)
        yield from _npm_v1(name, entry.get("dependencies") or {})


# ---------------------------------------------------------------- CycloneDX SBOM


def _from_sbom(checkout: Path, sbom: str, max_bytes: int) -> list[Package]:
    what = f"build.sbom {sbom!r}"
    path = checkout / sbom
    if not (path.exists() or path.is_symlink()):
        raise ManifestError(f"{what} does not exist after the build commands (they must write it in the checkout)")
    text = _text(checkout, path, max_bytes, what)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise ManifestError(f"{what} is not a CycloneDX JSON SBOM (no \"bomFormat\": \"CycloneDX\")")
    # Imported here: only pipelines with an SBOM pay for the library's import.
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion

    spec = document.get("specVersion")
    try:
        version = SchemaVersion.from_version(spec) if isinstance(spec, str) else None
    except ValueError:
        version = None
    if version is None or version < SchemaVersion.V1_2:
        raise ManifestError(f"{what}: specVersion {spec!r} is not a CycloneDX JSON version (1.2 to "
                            f"{max(SchemaVersion).to_version()})")
    try:
        bom = Bom.from_json(document)  # type: ignore[attr-defined]  # added by py-serializable
    except Exception as error:  # noqa: BLE001  # the library raises whatever its parts raise on a malformed document
        raise ManifestError(f"{what} cannot be read as CycloneDX {spec}: {error}") from None
    found: list[Package] = []
    for component in _components(bom.components):
        purl = component.purl
        if purl is None or purl.type not in SBOM_ECOSYSTEMS:
            continue
        ecosystem = SBOM_ECOSYSTEMS[purl.type]
        name = f"{purl.namespace}/{purl.name}" if ecosystem == NPM and purl.namespace else purl.name
        written = component.version if component.version is not None else purl.version
        if not isinstance(name, str) or not name or not isinstance(written or "", str):
            raise ManifestError(f"{what}: component {component.name!r} has a name or version that is not a string")
        found.append(Package.of(name, written or "", ecosystem))
    return found


def _components(components: Iterable[Any]) -> Iterator[Any]:
    for component in components:
        yield component
        yield from _components(component.components)
