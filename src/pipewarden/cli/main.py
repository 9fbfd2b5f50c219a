"""The `pipewarden` command line: thin click commands over typed functions.

Errors a user can cause arrive here as PipewardenError and leave as one line on stderr with
exit code 2; nothing below this layer prints or exits.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pipewarden import __version__
from pipewarden.errors import PipewardenError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


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


def org_config_option(required: bool = False) -> Callable[[F], F]:
    return click.option(
        "--org-config", "org_config", type=str, required=required, metavar="DIR",
        help="Org-config directory; without it every rule runs at its catalog default.",
    )


policies_option = click.option(
    "--policies", "policies", multiple=True, metavar="DIR",
    help="An extra folder of Rego rules, added to the built-in ones (repeatable).",
)
now_option = click.option("--now", "now", metavar="ISO8601", help="Evaluate as of this time (UTC when no offset).")
output_option = click.option("--output", "output", metavar="FILE", help="Write the report there instead of stdout.")


def write_output(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write --output {output}: {exc.strerror or exc}") from None


class Group(click.Group):
    """Turns user errors into a one-line message and exit code 2, never a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # click's own usage errors print a usage block and a hint; cli.md asks for one line.
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "pipewarden"
            click.echo(f"pipewarden: error: {error.format_message()} (see `{command} --help`)", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("pipewarden: aborted", err=True)
            sys.exit(2)
        except click.ClickException as error:
            click.echo(f"pipewarden: error: {error.format_message()}", err=True)
            sys.exit(2)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipewardenError as error:
            click.echo(f"pipewarden: error: {error}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("pipewarden: interrupted", err=True)
            sys.exit(2)
        except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
            click.echo(f"pipewarden: internal error: {type(error).__name__}: {error} (please report this)", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipewarden")
def cli() -> None:
    """pipewarden: lint pipeline definitions against your organisation's release practices."""


def run() -> None:
    os.environ.setdefault("RUST_LIB_BACKTRACE", "0")
    from pipewarden.cli import (
        commands,  # noqa: F401  (registers the commands)
        owner_cmds,  # noqa: F401
        report_cmd,  # noqa: F401
    )

    cli(prog_name="pipewarden")
