"""The artifact store under concurrency: builds of the same content (one sha256) packing at once
in one process, as 100 pipelines of one template do, all store it and each gets its record."""

from __future__ import annotations

import threading
from pathlib import Path

from pipewarden.engine.activities.artifacts import ArtifactRecord, ArtifactStore


def test_builds_of_the_same_content_packing_at_once_all_succeed(tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path / "state")
    sources = []
    for index in range(16):
        source = tmp_path / f"build-{index}" / "dist"
        source.mkdir(parents=True)
        (source / "app.txt").write_text("the same content\n")
        sources.append(source)
    start = threading.Barrier(len(sources))
    records: dict[int, ArtifactRecord] = {}
    errors: list[BaseException] = []

    def build(index: int) -> None:
        start.wait()
        try:
            records[index] = artifacts.pack(sources[index], f"{index:012x}", f"{index:040x}", author="Test Dev",
                                            committer_time="2026-12-01T00:00:00Z", pipeline_path="pipeline.yaml",
                                            document=None)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=build, args=(index,)) for index in range(len(sources))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len({record.sha256 for record in records.values()}) == 1 and len(records) == len(sources)
    assert all(artifacts.intact(f"{index:012x}") for index in range(len(sources)))
    assert not list(artifacts.content_path(records[0].sha256).parent.glob(".*.tmp"))  # no staging left
