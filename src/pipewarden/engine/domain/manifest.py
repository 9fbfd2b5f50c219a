"""The packages of an artifact's manifest (engine.md, "Manifest") as values, and the one place
their names are normalised, so that the manifest reader and the `blocklist` gate compare alike.

Ecosystems are `pypi` and `npm`. Names are normalised per ecosystem: PEP 503 for pypi
(`Foo.Bar_baz` -> `foo-bar-baz`, with `packaging.utils.canonicalize_name`), lowercase for npm
(`@Babel/Core` -> `@babel/core`). Versions are kept as written: reading them is the gate's job
(a version that cannot be parsed still matches a blocklist entry of that name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from pipewarden.engine.domain.errors import InvalidValue

PYPI = "pypi"
NPM = "npm"
ECOSYSTEMS: tuple[str, ...] = (PYPI, NPM)


def normalise_name(name: str, ecosystem: str) -> str:
    """`name` as `ecosystem` compares it: PEP 503 for pypi, lowercase for npm."""
    if ecosystem == PYPI:
        return str(canonicalize_name(name.strip()))
    if ecosystem == NPM:
        return name.strip().lower()
    raise InvalidValue(f"unknown ecosystem {ecosystem!r}: one of {', '.join(ECOSYSTEMS)}")


@dataclass(frozen=True, slots=True, order=True)
class Package:
    """One package of a manifest: its normalised name, its version as written, its ecosystem."""

    name: str
    version: str
    ecosystem: str

    @classmethod
    def of(cls, name: str, version: str, ecosystem: str) -> Package:
        """A package with its name normalised for its ecosystem and its version stripped."""
        return cls(normalise_name(name, ecosystem), version.strip(), ecosystem)

    def to_json(self) -> dict[str, str]:
        """As the artifact record keeps it."""
        return {"name": self.name, "version": self.version, "ecosystem": self.ecosystem}

    @classmethod
    def from_json(cls, raw: Any) -> Package:
        """From an artifact record; InvalidValue when it is not a package object."""
        if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in ("name", "version",
                                                                                            "ecosystem")):
            raise InvalidValue(f"not a manifest package: {raw!r}")
        return cls(str(raw["name"]), str(raw["version"]), str(raw["ecosystem"]))
