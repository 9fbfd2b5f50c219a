"""The options the command groups share, defined once, and the parsing of their values.

Where two commands give one option different help (`--cache-dir` of `check` holds results, that of
`rules promote` only clones), the factory takes the help text; name, metavar and type stay here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from pipewarden.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

ORG_CONFIG_HELP = "Org-config directory; without it every rule runs at its catalog default."


def org_config_option(required: bool = False, help: str = ORG_CONFIG_HELP) -> Callable[[F], F]:
    return click.option("--org-config", "org_config", type=str, required=required, metavar="DIR", help=help)


policies_option = click.option(
    "--policies", "policies", multiple=True, metavar="DIR",
    help="An extra folder of Rego rules, added to the built-in ones (repeatable).",
)
now_option = click.option("--now", "now", metavar="ISO8601", help="Evaluate as of this time (UTC when no offset).")
output_option = click.option("--output", "output", metavar="FILE", help="Write the report there instead of stdout.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")


def format_option(default: str, help: str) -> Callable[[F], F]:
    """`--format` of `check` and `report`: any name, checked against the format registry."""
    return click.option("--format", "fmt", default=default, metavar="FMT", help=help)


def format_choice_option(choices: Sequence[str], help: str | None = None) -> Callable[[F], F]:
    """`--format` of the smaller outputs: a fixed choice, the first one by default."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=choices[0], help=help)


def cache_dir_option(help: str) -> Callable[[F], F]:
    return click.option("--cache-dir", "cache_dir", metavar="DIR", help=help)


def no_cache_option(help: str) -> Callable[[F], F]:
    return click.option("--no-cache", "no_cache", is_flag=True, help=help)


def parse_now(value: str | None) -> dt.datetime:
    """`--now`: ISO 8601, UTC when no offset is given; the current time when absent."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now {value!r} is not an ISO 8601 time; write e.g. 2026-11-26T10:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def parse_docs_url(value: str) -> str:
    """`--docs-url`: an absolute http(s) URL, as links in SARIF and PR comments need."""
    from urllib.parse import urlsplit

    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise UsageError(f"--docs-url {value!r} is not an absolute http(s) URL; write e.g. "
                         "https://docs.example.com/pipewarden/rules")
    return text


def parse_date(value: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option (`--from`, `--expires`); None when absent."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; write YYYY-MM-DD") from None


def write_output(text: str, output: str | None) -> None:
    """The rendered text to stdout, or to the `--output` file."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write --output {output}: {exc.strerror or exc}") from None
