"""A pipeline file as loaded: its document and line map, or why it is invalid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipewarden.model.paths import line_for


@dataclass(frozen=True)
class Invalid:
    """Why a pipeline file is not a valid definition: the first error, by line."""

    message: str
    path: str
    line: int


@dataclass(frozen=True)
class PipelineFile:
    """One checked file.

    `invalid` is set when the file is not a valid definition; `document` then holds whatever
    could be parsed (or None), so that its name and team can still be reported when readable.
    """

    file: str
    document: Any
    lines: dict[str, int]
    invalid: Invalid | None = None
    # The valid document as JSON, made once while validating; the Rego engine's input.
    json_text: str | None = None
    # SHA-256 of the bytes that were parsed (None when the file could not be read): the cache
    # key, taken from the very bytes evaluated so that a file changing meanwhile cannot be
    # cached under the hash of other content.
    content_hash: str | None = None
    # Another tool's file (cli.md): its top level is a mapping with neither `apiVersion` nor
    # `kind`, or with an `apiVersion` that is not pipewarden's. Such a file is also invalid;
    # discovery skips it, a file named on the command line is still checked.
    foreign: bool = False

    @property
    def valid(self) -> bool:
        return self.invalid is None

    @property
    def name(self) -> str | None:
        return _metadata_string(self.document, self.lines, "name")

    @property
    def team(self) -> str | None:
        return _metadata_string(self.document, self.lines, "team")

    def line_of(self, path: str) -> int:
        """The line of `path`, or of its nearest parent that exists in the file."""
        line = self.lines.get(path)
        return line if line is not None else line_for(self.lines, path)


def _metadata_string(document: Any, _lines: dict[str, int], key: str) -> str | None:
    if not isinstance(document, dict):
        return None
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get(key), str):
        return str(metadata[key])
    return None
