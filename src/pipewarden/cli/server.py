"""`pipewarden server` and `pipewarden worker` (engine.md "The parts and how they start").

Thin: read the EngineConfig, hand the engine's server the web app factory, run in the
foreground. Errors before anything starts (a second server on the state dir, a bad config, a
taken port) are one line and exit 2 through the root group.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from pipewarden.cli.options import opa_options, use_opa
from pipewarden.model.engine_config import EngineConfig

# The engine (Temporal, SQLAlchemy, uvicorn) is imported inside the commands: every other command
# of the CLI would otherwise pay for it at start-up.
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_NAMESPACE = "default"

config_option = click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False),
                             help="The EngineConfig (kind: EngineConfig); without it the server releases no pipeline.")
state_dir_option = click.option("--state-dir", "state_dir", metavar="DIR", type=click.Path(file_okay=False),
                                help="State dir (default: $XDG_STATE_HOME/pipewarden, else ~/.local/state/pipewarden).")
namespace_option = click.option("--namespace", default=DEFAULT_NAMESPACE, show_default=True, metavar="NS",
                                help="Temporal namespace.")


def _config(config_file: str | None, state_dir: Path) -> EngineConfig:
    from pipewarden.engine.server import empty_config
    from pipewarden.load.engine_config import load_engine_config
    return load_engine_config(Path(config_file)) if config_file else empty_config(state_dir)


def _state_dir(option: str | None) -> Path:
    from pipewarden.engine.statedir import default_state_dir
    return Path(option) if option else default_state_dir()


def _logging() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="pipewarden %(name)s: %(message)s")


def _app(services: Any) -> Any:
    from pipewarden.web.app import create_app  # starlette only where a server runs
    return create_app(services)


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


@click.command("server")
@config_option
@state_dir_option
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Where the dashboard and the HTTP API listen (port 0 picks a free one).")
@click.option("--temporal", "temporal", metavar="HOST:PORT",
              help="Use this Temporal service instead of starting the embedded dev server.")
@namespace_option
@opa_options
def server(config_file: str | None, state_dir: str | None, listen: str, temporal: str | None, namespace: str,
           opa_url: str | None, opa_token: str | None, opa_no_upload: bool) -> None:
    """Run the release engine in the foreground: Temporal (embedded unless --temporal), a worker,
    the git poller and the HTTP API. SIGINT/SIGTERM stop everything it started."""
    from pipewarden.engine.server import EngineServer, parse_listen
    _logging()
    # Before anything starts: the policy gate and the decision API evaluate on this OPA server
    # (an unreachable one is exit 2 now, not a gate failing later).
    use_opa(opa_url, opa_token, opa_no_upload)
    directory = _state_dir(state_dir)
    EngineServer(_config(config_file, directory), directory, listen=parse_listen(listen), temporal_address=temporal,
                 namespace=namespace, announce=_echo).run(_app)


@click.command("worker")
@click.option("--temporal", "temporal", required=True, metavar="HOST:PORT", help="The Temporal service to serve.")
@config_option
@state_dir_option
@namespace_option
@opa_options
def worker(temporal: str, config_file: str | None, state_dir: str | None, namespace: str, opa_url: str | None,
           opa_token: str | None, opa_no_upload: bool) -> None:
    """Run one more engine worker (it must share the store and the state dir with the server)."""
    from pipewarden.engine.server import EngineWorker
    _logging()
    use_opa(opa_url, opa_token, opa_no_upload)  # its policy gate evaluates as the server's does
    directory = _state_dir(state_dir)
    EngineWorker(_config(config_file, directory), directory, temporal, namespace=namespace, announce=_echo).run()
