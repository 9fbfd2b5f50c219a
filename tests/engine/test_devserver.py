"""The dev server fixture: a real Temporal that answers, in its own process group."""

from __future__ import annotations

import asyncio
import os

from temporalio.client import Client

from pipewarden.engine.devserver import DevServer


def test_dev_server_answers_in_its_own_process_group(temporal_server: DevServer) -> None:
    assert temporal_server.process is not None
    assert os.getpgid(temporal_server.process.pid) == temporal_server.process.pid
    assert temporal_server.host == "127.0.0.1"

    async def namespace() -> str:
        client = await Client.connect(temporal_server.address)
        return client.namespace

    assert asyncio.run(namespace()) == "default"
