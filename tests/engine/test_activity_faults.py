"""Activities facing faults a user can cause (Temporal's ActivityEnvironment, real git, a real
store): what cannot succeed by trying again is a non-retryable error that says what is wrong, so
the workflow ends the execution with that reason at once instead of after its retries."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from workflow_helpers import git, make_repo

from pipewarden.engine import contract
from pipewarden.engine.activities.artifacts import ArtifactStore
from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.store import EngineStore


def test_stage_tests_of_an_artifact_whose_content_is_gone_fail_without_retries(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, tmp_path / "record.txt", stages=1)
    commit = git(repo, "rev-parse", "HEAD")
    artifact = commit[:12]
    state = tmp_path / "state"
    artifacts = ArtifactStore(state)
    checkout = artifacts.fresh_checkout(str(repo), commit, artifact)
    (checkout / "dist").mkdir()
    (checkout / "dist" / "app.txt").write_text("v1\n")
    record = artifacts.pack(checkout / "dist", artifact, commit, author="Test Dev",
                            committer_time="2026-11-30T00:00:00Z", pipeline_path="pipeline.yaml", document=None)
    artifacts.content_path(record.sha256).unlink()  # the artifact store lost its content
    shutil.rmtree(checkout)
    with EngineStore.for_state_dir(state) as store:
        store.create_execution("demo-app", commit, trigger="release", now=datetime.now(UTC))
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id="demo-app-1", activity_id="9")
        request = contract.TestsRequest("demo-app-1", "demo-app", str(repo), artifact, commit, "beta", ["127.0.0.1:9301"],
                               [contract.TestSpec("smoke", "true", 30)], False)
        with pytest.raises(ApplicationError) as raised:
            env.run(EngineActivities(store, state).run_stage_tests, request)
        assert raised.value.non_retryable
        assert str(raised.value) == (f"stage tests of beta cannot run: artifact {artifact} is missing or its content "
                                     "no longer matches its sha256")
        assert not store.events(execution="demo-app-1", types=["tests_finished"])
