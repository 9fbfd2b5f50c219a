"""ExecutionWorkflow end to end on the real Temporal dev server, with real git repositories, real
builds and hook scripts that record what they do into a file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from workflow_helpers import git, make_repo, release, write

from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore


def hook_lines(stage: str, target: str, hosts: list[str], artifact: str, rollback: int = 0) -> list[str]:
    return [f"{stage} {target} {host} {hook} {artifact} rollback={rollback}"
            for host in hosts for hook in ("stop", "install", "start", "validate")]


def test_two_stages_released_end_to_end(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=2)
    commit = git(repo, "rev-parse", "HEAD")
    artifact = commit[:12]
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        (outcome,) = asyncio.run(release(temporal_server, store, state, repo, [commit]))
        assert outcome.status == "succeeded", outcome
        beta_hosts = ["127.0.0.1:9301", "127.0.0.1:9302"]
        assert record.read_text().splitlines() == [
            *hook_lines("beta", "beta-cell", beta_hosts, artifact),
            f"beta test smoke {artifact} hosts={' '.join(beta_hosts)}",
            *hook_lines("prod", "cell-1", ["127.0.0.1:9401", "127.0.0.1:9402"], artifact),
        ]
        execution = store.execution("demo-app-1")
        assert execution is not None and execution.status == "succeeded" and execution.artifact == artifact
        events = store.events(execution="demo-app-1")
        types = [event.type for event in events]
        assert types[:4] == ["execution_started", "gate", "build_started", "build_finished"]
        assert events[3].data["result"] == "succeeded" and events[3].data["artifact"] == artifact
        per_stage = ["gate", "gate", "gate", "gate", "stage_started", *["hook"] * 8]
        assert types[4:] == [
            *per_stage, "tests_finished", "bake_started", "gate", "bake_finished",
            *per_stage, "bake_started", "gate", "bake_finished", "execution_finished",
        ]
        assert [e.data["gate"] for e in events if e.type == "gate"] == [
            "policy", "policy", "blocklist", "stage_busy", "paused", "bake_time",
            "policy", "blocklist", "stage_busy", "paused", "bake_time"]
        assert all(e.data["result"] == "pass" for e in events if e.type == "gate")
        hooks = [e for e in events if e.type == "hook"]
        assert all(e.data["exit_code"] == 0 and e.data["attempt"] == 1 for e in hooks)
        assert [(e.host, e.data["hook"]) for e in hooks[:4]] == [
            ("127.0.0.1:9301", h) for h in ("stop", "install", "start", "validate")]
        assert all((state / e.data["log"]).is_file() for e in hooks)
        assert [r.status for r in store.stage_runs(execution="demo-app-1")] == ["succeeded", "succeeded"]
        hosts = store.hosts("demo-app")
        assert {h.host: (h.artifact, h.state) for h in hosts.values()} == {
            host: (artifact, "ok") for host in [*beta_hosts, "127.0.0.1:9401", "127.0.0.1:9402"]}
        assert store.verify() is None
        # content-addressed artifact, with the built file
        assert (state / "work" / artifact / "artifact" / "app.txt").read_text() == "v1\n"
        assert len(list((state / "artifacts" / "sha256").glob("*.tar.gz"))) == 1
        # never the user's working tree
        assert git(repo, "status", "--porcelain") == ""


def test_failed_validate_rolls_back_to_the_previous_artifact(temporal_server: DevServer, tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    repo = make_repo(tmp_path, record, stages=1)
    v1 = git(repo, "rev-parse", "HEAD")
    write(repo / "app.txt", "v2\n")
    write(repo / "hooks" / "validate.sh", (repo / "hooks" / "validate.sh").read_text() + "exit 1\n", executable=True)
    git(repo, "commit", "-q", "-am", "v2: validate fails")
    v2 = git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    with EngineStore.for_state_dir(state) as store:
        first, second = asyncio.run(release(temporal_server, store, state, repo, [v1, v2]))
        assert first.status == "succeeded", first
        assert second.status == "rolled_back", second
        lines = record.read_text().splitlines()
        hosts = ["127.0.0.1:9301", "127.0.0.1:9302"]
        v1_lines = [*hook_lines("beta", "beta-cell", hosts, v1[:12]),
                    f"beta test smoke {v1[:12]} hosts={' '.join(hosts)}"]
        assert lines == [
            *v1_lines,
            # v2 fails at its first host's validate: no new hook, no new batch
            *hook_lines("beta", "beta-cell", hosts[:1], v2[:12]),
            # the host v2 touched gets v1 again, with v1's own hooks
            *hook_lines("beta", "beta-cell", hosts[:1], v1[:12], rollback=1),
        ]
        events = store.events(execution="demo-app-2")
        types = [event.type for event in events]
        assert types[-4:] == ["hook", "hook", "rollback_finished", "execution_finished"]
        started = next(e for e in events if e.type == "rollback_started")
        assert started.data == {"trigger": "hook", "to": {"beta-cell": v1[:12]}}
        finished = next(e for e in events if e.type == "rollback_finished")
        assert finished.data["result"] == "succeeded"
        failed_hook = [e for e in events if e.type == "hook" and e.data["exit_code"] != 0]
        assert [(e.host, e.data["hook"], e.data["exit_code"]) for e in failed_hook] == [
            ("127.0.0.1:9301", "validate", 1)]
        execution = store.execution("demo-app-2")
        assert execution is not None and execution.status == "rolled_back"
        assert [r.status for r in store.stage_runs(execution="demo-app-2")] == ["rolled_back"]
        host_states = {h.host: (h.artifact, h.state) for h in store.hosts("demo-app").values()}
        assert host_states == {hosts[0]: (v1[:12], "ok"), hosts[1]: (v1[:12], "ok")}
        assert store.verify() is None
