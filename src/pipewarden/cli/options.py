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


# `--opa-url` and its companions: `check`, `report` and `server` evaluate the rules on an
# organisation's OPA server instead of the embedded engine (docs/opa.md).
opa_url_option = click.option(
    "--opa-url", "opa_url", metavar="URL",
    help="Evaluate the rules on this OPA server (e.g. http://localhost:8181) instead of the embedded engine; "
         "the results cache is not used (docs/opa.md).",
)
opa_token_option = click.option(
    "--opa-token", "opa_token", metavar="TOKEN", envvar="PIPEWARDEN_OPA_TOKEN", show_envvar=True,
    help="Bearer token for --opa-url (prefer the environment variable: a command line is visible to others).",
)
opa_no_upload_option = click.option(
    "--opa-no-upload", "opa_no_upload", is_flag=True,
    help="With --opa-url: use the rule modules the server already has (deployed in a bundle) instead of "
         "uploading pipewarden's under the ids pipewarden/...",
)


def opa_options(command: F) -> F:
    """`--opa-url`, `--opa-token` and `--opa-no-upload`, in that order."""
    return opa_url_option(opa_token_option(opa_no_upload_option(command)))


def use_opa(url: str | None, token: str | None, no_upload: bool) -> bool:
    """Select the OPA server of `--opa-url` for every evaluation of this process and check that
    it answers (exit 2 with one line when it does not); False, and the embedded engine, without
    `--opa-url`. `--opa-no-upload` needs `--opa-url`; a token alone (say from the environment)
    is ignored."""
    from pipewarden.policy.engine import OpaBackend, check_backend, current_backend, use_backend

    if url is None:
        if no_upload:
            raise UsageError("--opa-no-upload needs --opa-url URL, the OPA server whose modules it uses")
        if current_backend() is not None:  # an earlier command in this process chose one (tests, embedding)
            use_backend(None)
        return False
    from pipewarden.policy.opa import parse_url

    parse_url(url)  # a UsageError naming the option, before anything is sent
    use_backend(OpaBackend(url.strip(), token or None, upload=not no_upload))
    check_backend()
    return True
