"""The artifact definitions a bake round needs every `poll.gates`, kept by commit
(`EngineActivities._view`): read from the artifact's record once, the same view after, at most
VIEWS_KEPT of them (the oldest read goes first), and a definition passed in is never kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from workflow_helpers import pipeline_yaml

from pipewarden.engine.activities import engine as engine_module
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.domain.ids import artifact_id
from pipewarden.engine.store import EngineStore


def recorded(activities: EngineActivities, tmp_path: Path, commit: str) -> None:
    source = tmp_path / f"app-{commit[:4]}.txt"
    source.write_text(commit)
    activities.artifacts.pack(source, artifact_id(commit), commit, author="dana <d@example.com>",
                              committer_time="2026-12-01T15:00:00+00:00", pipeline_path="pipeline.yaml",
                              document=yaml.safe_load(pipeline_yaml(2)))


def test_a_definition_is_read_once_per_commit_and_the_oldest_goes_first(tmp_path: Path, store: EngineStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "VIEWS_KEPT", 2)
    activities = EngineActivities(store, tmp_path / "state")
    commits = [digit * 40 for digit in "abc"]
    for commit in commits:
        recorded(activities, tmp_path, commit)
    first = activities._view(commits[0], None)
    assert first is not None and [s.name for s in first.stages] == ["beta", "prod"]
    activities.artifacts.record_path(artifact_id(commits[0])).unlink()  # kept: not read again
    assert activities._view(commits[0], None) is first
    activities._view(commits[1], None)
    activities._view(commits[2], None)  # a third: the oldest (commits[0]) goes
    assert activities._view(commits[0], None) is None  # read again, and its record is gone
    assert activities._view(commits[2], None) is not None


def test_a_definition_passed_in_is_viewed_but_not_kept(tmp_path: Path, store: EngineStore) -> None:
    activities = EngineActivities(store, tmp_path / "state")
    commit = "d" * 40
    passed = activities._view(commit, yaml.safe_load(pipeline_yaml(2).replace("name: demo-app", "name: other")))
    assert passed is not None
    assert activities._view(commit, None) is None  # no record, and nothing kept from the passed one
