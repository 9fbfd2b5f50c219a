"""The errors a user can cause, with messages that say where and what to do.

Every error a user can trigger (bad YAML, bad org config, unknown rule, missing path) is one
of these; the CLI turns them into a one-line message and exit code 2. Anything else is a bug.
"""

from __future__ import annotations


class PipewardenError(Exception):
    """Base of all user-facing errors: carries the file and line the problem is at."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


class LoadError(PipewardenError):
    """A YAML document could not be read safely (size, depth, aliases, tags, syntax, encoding).

    `path` names the field at fault when one is known (a duplicate key, a disallowed tag).
    `unparseable` marks bytes that are not text at all (not UTF-8 or UTF-16, a NUL byte):
    pipeline findings put those at line 1, as pipeline.md asks ("line 1 when the file cannot be
    read or decoded at all"), while config errors keep the line of the offending byte. A YAML
    syntax error is not unparseable in this sense: it stays at the line where the parser
    noticed it, in pipeline findings too.
    """

    def __init__(
        self, message: str, file: str | None = None, line: int | None = None, path: str = "",
        unparseable: bool = False,
    ) -> None:
        super().__init__(message, file, line)
        self.path = path
        self.unparseable = unparseable


class UsageError(PipewardenError):
    """A bad command-line option or path."""


class ConfigError(PipewardenError):
    """An invalid org config, inventory, or policy folder: the run cannot go on."""


class PolicyError(PipewardenError):
    """A Rego policy failed to load or evaluate."""
