"""Supersede on the real dev server (engine.md, "One stage, one occupant"): the older of two
executions waiting at an entry ends `superseded`; an execution awaiting promotion is superseded
when a newer one passes the stage's entry; an execution never deploys to a stage a newer one has
deployed to."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client_helpers import (
    PIPELINE,
    blocking_validate,
    gate_seen,
    lines_of,
    outcome,
    register,
    run_status,
    running_engine,
    wait_for,
)
from workflow_helpers import git, make_repo, write

from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore


def commit_version(repo: Path, version: str) -> str:
    write(repo / "app.txt", f"{version}\n")
    git(repo, "commit", "-q", "-am", version)
    return git(repo, "rev-parse", "HEAD")


def superseded(store: EngineStore, execution: str) -> list[tuple[str | None, dict[str, object]]]:
    return [(e.stage, e.data) for e in store.events(execution=execution, types=["superseded"])]


def test_the_middle_of_three_executions_is_superseded_at_the_entry(temporal_server: DevServer,
                                                                   tmp_path: Path) -> None:
    record, block, go = tmp_path / "record.txt", tmp_path / "block", tmp_path / "go"
    repo = make_repo(tmp_path, record, stages=1)
    blocking_validate(repo, record, block, go)
    git(repo, "commit", "-q", "-am", "v1: validate can be held")
    commits = [git(repo, "rev-parse", "HEAD"), commit_version(repo, "v2"), commit_version(repo, "v3")]
    state = tmp_path / "state"
    block.touch()

    async def scenario(store: EngineStore) -> list[str]:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = await engine.release(PIPELINE, commits[0][:12], actor="dana")
            await wait_for("demo-app-1 in its validate hook", lambda: any("validate" in line for line in lines_of(record)))
            second = await engine.release(PIPELINE, commits[1], actor="dana")
            await wait_for("demo-app-2 at the entry", gate_seen(store, second.id, "stage_busy", "stage_busy"))
            third = await engine.release(PIPELINE, commits[2], actor="dana")
            assert (await outcome(engine, second.id)).status == "superseded"
            go.touch()
            return [(await outcome(engine, e.id)).status for e in (first, second, third)]

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == ["succeeded", "superseded", "succeeded"]
        assert superseded(store, "demo-app-2") == [
            ("beta", {"reason": "it waits at the stage's entry", "by": "demo-app-3"})]
        (run,) = store.stage_runs(execution="demo-app-2")
        assert (run.status, run.deployed) == ("cancelled", False)
        assert store.execution("demo-app-2").reason == (  # type: ignore[union-attr]
            "beta: superseded by demo-app-3: it waits at the stage's entry")
        deployed = {line.split()[4] for line in lines_of(record) if "validate" in line}
        assert deployed == {commits[0][:12], commits[2][:12]}
        assert store.verify() is None


def test_awaiting_promotion_is_superseded_when_a_newer_one_passes_the_entry(temporal_server: DevServer,
                                                                             tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=2, beta_extra="    promotion: manual\n")
    v1 = git(repo, "rev-parse", "HEAD")
    v2 = commit_version(repo, "v2")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> list[str]:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = await engine.release(PIPELINE, v1, actor="dana")
            await wait_for("awaiting_promotion", run_status(store, first.id, "awaiting_promotion", "beta"))
            second = await engine.release(PIPELINE, v2, actor="dana")
            assert (await outcome(engine, first.id)).status == "superseded"
            await wait_for("demo-app-2 awaiting promotion", run_status(store, second.id, "awaiting_promotion"))
            await engine.promote(second.id, "beta", actor="dana")
            return [(await outcome(engine, e.id)).status for e in (first, second)]

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == ["superseded", "succeeded"]
        assert superseded(store, "demo-app-1") == [
            ("beta", {"reason": "it passed the stage's entry", "by": "demo-app-2"})]
        assert [(r.stage, r.status) for r in store.stage_runs(execution="demo-app-1")] == [("beta", "cancelled")]
        assert not any(line.startswith("prod") and v1[:12] in line for line in lines_of(record))
        assert store.verify() is None


def test_an_execution_never_deploys_to_a_stage_a_newer_one_deployed(temporal_server: DevServer,
                                                                    tmp_path: Path) -> None:
    """demo-app-1's build is held until demo-app-2 (a quick build) has deployed the stage."""
    record, go = tmp_path / "record.txt", tmp_path / "build-go"
    repo = make_repo(tmp_path, record, stages=1,
                     build=f"while [ ! -f {go} ]; do sleep 0.05; done; mkdir -p dist && cp app.txt dist/")
    v1 = git(repo, "rev-parse", "HEAD")
    text = (repo / "pipeline.yaml").read_text().replace(f"while [ ! -f {go} ]; do sleep 0.05; done; ", "")
    write(repo / "pipeline.yaml", text)
    v2 = commit_version(repo, "v2")
    state = tmp_path / "state"

    async def scenario(store: EngineStore) -> list[str]:
        async with running_engine(temporal_server, store, state) as engine:
            register(store, repo)
            first = await engine.release(PIPELINE, v1, actor="dana")
            second = await engine.release(PIPELINE, v2, actor="dana")
            assert (await outcome(engine, second.id)).status == "succeeded"
            go.touch()
            return [(await outcome(engine, e.id)).status for e in (first, second)]

    with EngineStore.for_state_dir(state) as store:
        assert asyncio.run(scenario(store)) == ["superseded", "succeeded"]
        assert superseded(store, "demo-app-1") == [
            ("beta", {"reason": "it has deployed the stage", "by": "demo-app-2"})]
        assert not any(v1[:12] in line for line in lines_of(record))
        assert store.verify() is None
