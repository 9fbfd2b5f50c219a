"""The `pipewarden` command line: the root group, which registers every command group.

Each group lives in a module of its own (check, report, rules, policy, config, exceptions) and
is a thin click layer: parse, call one typed function of lint/, render.

Errors a user can cause arrive here as PipewardenError and leave as one line on stderr with
exit code 2; nothing below this layer prints or exits.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from pipewarden import __version__
from pipewarden.cli.check import check
from pipewarden.cli.config import config
from pipewarden.cli.engine import (
    approve,
    audit,
    cancel,
    events,
    executions,
    override,
    pause,
    promote,
    reject,
    release,
    resume,
    retry,
    rollback,
    status,
)
from pipewarden.cli.exceptions import exceptions_group
from pipewarden.cli.policy import policy
from pipewarden.cli.project import project_defaults
from pipewarden.cli.report import report
from pipewarden.cli.rules import rules
from pipewarden.cli.server import server, worker
from pipewarden.errors import PipewardenError
from pipewarden.lint.exit_codes import USAGE


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
            sys.exit(USAGE)
        except click.exceptions.Abort:
            click.echo("pipewarden: aborted", err=True)
            sys.exit(USAGE)
        except click.ClickException as error:
            click.echo(f"pipewarden: error: {error.format_message()}", err=True)
            sys.exit(USAGE)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and command is not None:
            # The project config's values become the command's option defaults (cli/project.py).
            project_defaults(ctx, name, command, rest)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipewardenError as error:
            click.echo(f"pipewarden: error: {error}", err=True)
            sys.exit(USAGE)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("pipewarden: interrupted", err=True)
            sys.exit(USAGE)
        except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
            click.echo(f"pipewarden: internal error: {type(error).__name__}: {error} (please report this)", err=True)
            sys.exit(USAGE)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipewarden")
def cli() -> None:
    """pipewarden: lint pipeline definitions against your organisation's release practices."""


# Every command group, registered here and nowhere else (--help lists them by name).
cli.add_command(check)
cli.add_command(report)
cli.add_command(rules)
cli.add_command(policy)
cli.add_command(config)
cli.add_command(exceptions_group)
# The release engine's client commands (over a server's HTTP API) and audit verify (on the store).
for _command in (release, status, executions, approve, promote, reject, override, pause, resume, cancel, retry,
                 rollback, events, audit):
    cli.add_command(_command)
cli.add_command(server)
cli.add_command(worker)


def run() -> None:
    os.environ.setdefault("RUST_LIB_BACKTRACE", "0")
    cli(prog_name="pipewarden")
