"""The release engine's client commands (engine.md, from `release` to `events`) and `audit verify`.

Thin: parse the options, make one request to the server's JSON API (cli/remote.py), render. The
exit code of an answer is `remote.exit_code_of`'s; a server that cannot be reached is one line
on stderr and exit 2, never a traceback. `audit verify` is not a client command: it opens the
store itself, so it works with the server down.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click

from pipewarden.cli.options import format_choice_option
from pipewarden.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

server_option = click.option(
    "--server", "server", metavar="URL",
    help="The server's URL (default: $PIPEWARDEN_SERVER, else the url in the state dir's server.json).")
state_dir_option = click.option(
    "--state-dir", "state_dir", metavar="DIR", type=click.Path(file_okay=False),
    help="State dir (default: $XDG_STATE_HOME/pipewarden, else ~/.local/state/pipewarden).")
reason_option = click.option("--reason", "reason", metavar="TEXT", help="Why (kept in the audit log).")


def client_command(function: F) -> F:
    """`--server` and `--state-dir`, and a RemoteFailure turned into its line and exit code."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        from pipewarden.cli.remote import REFUSED, RemoteFailure

        try:
            return function(*args, **kwargs)
        except RemoteFailure as failure:
            kind = "refused" if failure.exit_code == REFUSED else "error"
            click.echo(f"pipewarden: {kind}: {failure.message}", err=True)
            sys.exit(failure.exit_code)

    return server_option(state_dir_option(run))  # type: ignore[return-value]


def _remote(server: str | None, state_dir: str | None) -> Any:
    from pipewarden.cli.remote import Remote, resolve

    return Remote(resolve(server, state_dir))


def _segment(value: str) -> str:
    """A path segment of the API (a pipeline name or an execution id, quoted whatever it holds)."""
    return quote(value, safe="")


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- reads


@click.command("status")
@click.argument("pipeline", required=False)
@format_choice_option(["text", "json"], "text (tables) or json (engine.md's status JSON).")
@client_command
def status(pipeline: str | None, fmt: str, server: str | None, state_dir: str | None) -> None:
    """Each stage: the artifact on each host, the execution in it and the one waiting at its
    entry, their gates with reason and ETA, active overrides."""
    from pipewarden.cli.engine_text import status_text
    from pipewarden.cli.remote import dumps

    with _remote(server, state_dir) as remote:
        answer = remote.get(f"/api/v1/pipelines/{_segment(pipeline)}" if pipeline else "/api/v1/pipelines")
    if fmt == "json":
        click.echo(dumps(answer))
    else:
        click.echo(status_text([answer] if pipeline else answer["pipelines"], _now()), nl=False)


@click.group("executions")
def executions() -> None:
    """Executions, newest first, and one execution's stages, gates and events."""


@executions.command("list")
@click.option("--pipeline", "pipeline", metavar="P", help="Only this pipeline's executions.")
@click.option("--limit", "limit", type=click.IntRange(1, 1000), default=50, show_default=True, metavar="N",
              help="At most N executions.")
@format_choice_option(["text", "json"])
@client_command
def executions_list(pipeline: str | None, limit: int, fmt: str, server: str | None, state_dir: str | None) -> None:
    """Executions, newest first."""
    from pipewarden.cli.engine_text import executions_text
    from pipewarden.cli.remote import dumps

    with _remote(server, state_dir) as remote:
        answer = remote.get("/api/v1/executions", {"pipeline": pipeline, "limit": limit})
    click.echo(dumps(answer) if fmt == "json" else executions_text(answer["executions"]), nl=fmt == "json")


@executions.command("show")
@click.argument("execution")
@format_choice_option(["text", "json"])
@client_command
def executions_show(execution: str, fmt: str, server: str | None, state_dir: str | None) -> None:
    """One execution: its stages (pending where not reached), their gates, and its events."""
    from pipewarden.cli.engine_text import execution_text
    from pipewarden.cli.remote import dumps

    with _remote(server, state_dir) as remote:
        answer = remote.get(f"/api/v1/executions/{_segment(execution)}")
    click.echo(dumps(answer) if fmt == "json" else execution_text(answer, _now()), nl=fmt == "json")


@click.command("events")
@click.option("--pipeline", "pipeline", metavar="P", help="Only this pipeline's events.")
@click.option("--execution", "execution", metavar="ID", help="Only this execution's events.")
@click.option("--since", "since", metavar="ISO8601", help="Only events at or after this time (UTC when no offset).")
@format_choice_option(["jsonl", "text"], "jsonl (one event a line, every key) or text.")
@client_command
def events(pipeline: str | None, execution: str | None, since: str | None, fmt: str, server: str | None,
           state_dir: str | None) -> None:
    """The audit log, in seq order."""
    from pipewarden.cli.engine_text import event_line

    params = {"pipeline": pipeline, "execution": execution, "since": since}
    with _remote(server, state_dir) as remote:
        if fmt == "jsonl":
            for line in remote.lines("/api/v1/events", params):
                click.echo(line)
        else:
            for event in remote.get("/api/v1/events", params):
                click.echo(event_line(event))


# ---------------------------------------------------------------- actions


@click.command("release")
@click.argument("pipeline")
@click.option("--commit", "commit", metavar="SHA", help="Any commit of the pipeline's repository "
              "(default: the head of its branch).")
@reason_option
@client_command
def release(pipeline: str, commit: str | None, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """Start an execution by hand; prints its id."""
    with _remote(server, state_dir) as remote:
        answer = remote.post("/api/v1/executions", {"pipeline": pipeline, "commit": commit, "reason": reason})
    click.echo(answer["id"])


def _execution_action(action: str, execution: str, body: dict[str, Any], server: str | None,
                      state_dir: str | None) -> Any:
    with _remote(server, state_dir) as remote:
        return remote.post(f"/api/v1/executions/{_segment(execution)}/{action}",
                           {key: value for key, value in body.items() if value is not None})


stage_option = click.option("--stage", "stage", required=True, metavar="S", help="The stage.")


@click.command("approve")
@click.argument("execution")
@stage_option
@click.option("--approval", "approval", metavar="NAME", help="Which approval (needed when the stage lists several).")
@reason_option
@client_command
def approve(execution: str, stage: str, approval: str | None, reason: str | None, server: str | None,
            state_dir: str | None) -> None:
    """Give one approval of a stage for an execution."""
    answer = _execution_action("approve", execution, {"stage": stage, "approval": approval, "reason": reason},
                               server, state_dir)
    given = answer.get("approval") or approval
    click.echo(f"{execution}: approved {stage}" + (f" ({given})" if given else ""))


@click.command("promote")
@click.argument("execution")
@stage_option
@reason_option
@client_command
def promote(execution: str, stage: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """Promote an execution awaiting promotion at a stage."""
    _execution_action("promote", execution, {"stage": stage, "reason": reason}, server, state_dir)
    click.echo(f"{execution}: promoted at {stage}")


@click.command("reject")
@click.argument("execution")
@stage_option
@reason_option
@client_command
def reject(execution: str, stage: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """End an execution `failed` at a stage's entry or promotion."""
    _execution_action("reject", execution, {"stage": stage, "reason": reason}, server, state_dir)
    click.echo(f"{execution}: rejected at {stage}")


@click.command("cancel")
@click.argument("execution")
@reason_option
@client_command
def cancel(execution: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """End an execution: nothing new starts, running hooks finish, no rollback."""
    _execution_action("cancel", execution, {"reason": reason}, server, state_dir)
    click.echo(f"{execution}: cancelling")


@click.command("retry")
@click.argument("execution")
@stage_option
@reason_option
@client_command
def retry(execution: str, stage: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """Run a failed stage again from its entry gates."""
    _execution_action("retry", execution, {"stage": stage, "reason": reason}, server, state_dir)
    click.echo(f"{execution}: retrying {stage}")


def _pipeline_action(action: str, pipeline: str, body: dict[str, Any], server: str | None,
                     state_dir: str | None) -> Any:
    with _remote(server, state_dir) as remote:
        return remote.post(f"/api/v1/pipelines/{_segment(pipeline)}/{action}",
                           {key: value for key, value in body.items() if value is not None})


@click.command("pause")
@click.argument("pipeline")
@reason_option
@client_command
def pause(pipeline: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """Close the entry of every stage of a pipeline (work inside a stage finishes)."""
    _pipeline_action("pause", pipeline, {"reason": reason}, server, state_dir)
    click.echo(f"{pipeline}: paused")


@click.command("resume")
@click.argument("pipeline")
@reason_option
@client_command
def resume(pipeline: str, reason: str | None, server: str | None, state_dir: str | None) -> None:
    """Reopen the stages' entries."""
    _pipeline_action("resume", pipeline, {"reason": reason}, server, state_dir)
    click.echo(f"{pipeline}: resumed")


@click.command("rollback")
@click.argument("pipeline")
@stage_option
@click.option("--to", "to", metavar="ARTIFACT", help="The artifact to restore (default: each target's last good).")
@click.option("--pause/--no-pause", "pause_after", default=True,
              help="Pause the pipeline so the next waiting execution does not undo it (default: pause).")
@reason_option
@client_command
def rollback(pipeline: str, stage: str, to: str | None, pause_after: bool, reason: str | None, server: str | None,
             state_dir: str | None) -> None:
    """Redeploy a previous artifact to a stage's targets."""
    answer = _pipeline_action("rollback", pipeline, {"stage": stage, "to": to, "pause": pause_after,
                                                     "reason": reason}, server, state_dir)
    replaced = answer.get("artifact")
    click.echo(f"{pipeline}: rolling back {stage}" + (f" from {replaced}" if replaced else "")
               + f" to {to or 'the last good artifact'}" + ("; pipeline paused" if pause_after else ""))


@click.command("override")
@click.argument("gate")
@click.option("--pipeline", "pipeline", required=True, metavar="P", help="The pipeline.")
@stage_option
@click.option("--ttl", "ttl", metavar="DURATION", help="How long it lasts (default 1h), such as 90m or 2h.")
@click.option("--revoke", "revoke", is_flag=True, help="Revoke the active override instead.")
@reason_option
@client_command
def override(gate: str, pipeline: str, stage: str, ttl: str | None, revoke: bool, reason: str | None,
             server: str | None, state_dir: str | None) -> None:
    """Let one gate (window, alarms, datapoints, blocklist) pass for a stage until it expires."""
    from pipewarden.model.durations import duration_seconds

    if revoke:
        if ttl is not None:
            raise UsageError("--ttl has no meaning with --revoke")
        with _remote(server, state_dir) as remote:
            remote.delete(f"/api/v1/pipelines/{_segment(pipeline)}/override",
                          {"gate": gate, "stage": stage, "reason": reason})
        click.echo(f"{pipeline} {stage}: override of {gate} revoked")
        return
    if not reason or not reason.strip():
        raise UsageError("an override needs --reason TEXT")
    if ttl is not None:
        try:
            duration_seconds(ttl)
        except ValueError as error:
            raise UsageError(f"--ttl {ttl!r}: {error}") from None
    answer = _pipeline_action("override", pipeline, {"gate": gate, "stage": stage, "reason": reason, "ttl": ttl},
                              server, state_dir)
    granted = answer.get("override") or {}
    click.echo(f"{pipeline} {stage}: {gate} overridden until {granted.get('expires', '?')}")


# ---------------------------------------------------------------- audit


@click.group("audit")
def audit() -> None:
    """The audit log, read from the store itself."""


@audit.command("verify")
@state_dir_option
@click.option("--store", "store_url", metavar="URL", help="The store's URL (instead of the state dir's engine.db).")
def audit_verify(state_dir: str | None, store_url: str | None) -> None:
    """Check the audit log's hash chain and its recorded head: exit 0 when intact, 1 naming the
    first event that does not match."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pipewarden.engine.statedir import default_state_dir
    from pipewarden.engine.store import EngineStore, default_url

    if state_dir is not None and store_url is not None:
        raise UsageError("give --state-dir or --store, not both")
    url = store_url or default_url(Path(state_dir) if state_dir else default_state_dir())
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--store {url!r} is not a database URL, such as sqlite:///PATH/engine.db") from None
    if parsed.get_backend_name() == "sqlite":
        # Opening a store creates it: check first, so that a wrong path is an error, not an empty log.
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).is_file():
            raise UsageError(f"no store at {database or url}: give the server's --state-dir or --store URL")
    try:
        with EngineStore(url) as store:
            found = store.verify()
            head = store.head()
    except SQLAlchemyError as error:
        raise UsageError(f"cannot read the store {url}: {type(error).__name__}: {error.args[0] if error.args else ''}"
                         ) from None
    if found is not None:
        named = found.reason if f"event {found.seq}" in found.reason else f"event {found.seq}: {found.reason}"
        click.echo(f"audit log does not verify: {named}")
        sys.exit(1)
    click.echo(f"audit log intact: {head.seq} events, head {head.hash}")
