"""The git poller (engine/poller.py) on real git repositories and a real SQLite store.

The `start` function given to the poller does what `EngineClient.start_polled` does to the store
(an execution with trigger `poll`, which marks the commit released) without Temporal: what the
poller decides is what these tests check.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import T0, at
from workflow_helpers import git, pipeline_yaml, write

from pipewarden.engine import poller as poller_module
from pipewarden.engine.poller import Poller, branch_head, repository_git_dir
from pipewarden.engine.setup import ResolvedPipeline
from pipewarden.engine.store import EngineStore
from pipewarden.load.gitrepo import GitError, update_mirror

ROOT = Path(__file__).resolve().parents[2]
ORG_CONFIG = ROOT / "org-configs" / "example"


class Starts:
    """The `start` callback: records each call and creates the execution as start_polled would."""

    def __init__(self, store: EngineStore, *, fail: bool = False) -> None:
        self.store = store
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    async def __call__(self, pipeline: str, commit: str) -> object:
        self.calls.append((pipeline, commit))
        if self.fail:
            raise RuntimeError("Temporal is down")
        return self.store.create_execution(pipeline, commit, trigger="poll", now=T0)


def make_repo(tmp_path: Path, folder: str, name: str = "demo-app", team: str = "demo") -> Path:
    repo = tmp_path / folder
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Dev")
    git(repo, "config", "user.email", "dev@example.com")
    write(repo / "pipeline.yaml", definition(name, team))
    write(repo / "app.txt", "v1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def definition(name: str = "demo-app", team: str = "demo") -> str:
    return pipeline_yaml(1).replace("name: demo-app", f"name: {name}").replace("team: demo", f"team: {team}")


def commit(repo: Path, text: str, file: str = "app.txt") -> str:
    write(repo / file, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", text.strip()[:20] or "change")
    return git(repo, "rev-parse", "HEAD")


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def poll(poller: Poller, seconds: float) -> list[tuple[str, str]]:
    return asyncio.run(poller.poll_once(at(seconds)))


def pipeline_of(repo: Path, name: str = "demo-app", branch: str = "main") -> ResolvedPipeline:
    return ResolvedPipeline(name, str(repo), branch, "pipeline.yaml", 1)


def commits_released(store: EngineStore, pipeline: str = "demo-app") -> list[str]:
    return [e.commit for e in reversed(store.executions(pipeline=pipeline, limit=1000))]



def test_first_sight_releases_the_head_and_records_source_and_definition(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo", team="checkout")
    first = head(repo)
    starts = Starts(store)
    poller = Poller(store, [pipeline_of(repo)], starts, org_config=ORG_CONFIG,
                    policies=[ORG_CONFIG / "policies"])
    assert poll(poller, 0) == [("demo-app", first)]
    assert starts.calls == [("demo-app", first)]
    record = store.pipeline("demo-app")
    assert record is not None
    assert (record.repo, record.branch, record.path) == (str(repo), "main", "pipeline.yaml")
    assert record.last_commit == first and record.definition_commit == first
    assert record.definition is not None and record.definition["metadata"]["name"] == "demo-app"
    assert (record.team, record.org) == ("checkout", "retail")
    # no change: nothing, however often
    assert poll(poller, 30) == [] and poll(poller, 60) == []
    assert starts.calls == [("demo-app", first)]


def test_team_in_no_org_node_or_no_org_config_has_no_org(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo", team="nobody-knows")
    other = make_repo(tmp_path, "other", name="other-app", team="checkout")
    poll(Poller(store, [pipeline_of(repo)], Starts(store), org_config=ORG_CONFIG,
                policies=[ORG_CONFIG / "policies"]), 0)
    poll(Poller(store, [pipeline_of(other, "other-app")], Starts(store)), 0)
    unknown, without = store.pipeline("demo-app"), store.pipeline("other-app")
    assert unknown is not None and (unknown.team, unknown.org) == ("nobody-knows", None)
    assert without is not None and (without.team, without.org) == ("checkout", None)


def test_commits_pushed_together_give_one_execution_for_the_newest(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    starts = Starts(store)
    poller = Poller(store, [pipeline_of(repo)], starts)
    poll(poller, 0)
    commit(repo, "v2\n")
    commit(repo, "v3\n")
    newest = commit(repo, "v4\n")
    assert poll(poller, 30) == [("demo-app", newest)]
    assert poll(poller, 60) == []
    assert len(commits_released(store)) == 2 and commits_released(store)[-1] == newest
    record = store.pipeline("demo-app")
    assert record is not None and record.definition_commit == newest


def test_a_restarted_poller_never_releases_a_commit_twice(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    poll(Poller(store, [pipeline_of(repo)], Starts(store)), 0)
    again = Starts(store)
    assert poll(Poller(store, [pipeline_of(repo)], again), 30) == []
    assert again.calls == []
    newer = commit(repo, "v2\n")
    third = Starts(store)
    assert poll(Poller(store, [pipeline_of(repo)], third), 60) == [("demo-app", newer)]
    assert poll(Poller(store, [pipeline_of(repo)], Starts(store)), 90) == []
    assert commits_released(store) == [git(repo, "rev-parse", "HEAD~1"), newer]


def test_force_push_releases_only_a_commit_never_released(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    a = head(repo)
    poller = Poller(store, [pipeline_of(repo)], Starts(store))
    poll(poller, 0)
    b = commit(repo, "v2\n")
    assert poll(poller, 30) == [("demo-app", b)]
    git(repo, "reset", "-q", "--hard", a)  # force-push back to a released commit
    assert poll(poller, 60) == []
    assert poll(poller, 90) == []
    c = commit(repo, "v3 on top of v1\n")  # rewritten history: a commit never released
    assert poll(poller, 120) == [("demo-app", c)]
    git(repo, "reset", "-q", "--hard", b)  # and back to b, released before
    assert poll(poller, 150) == []
    assert commits_released(store) == [a, b, c]
    record = store.pipeline("demo-app")
    assert record is not None and record.definition_commit == b  # the branch's file, as the head has it


def test_a_commit_released_by_hand_is_not_released_again(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    poller = Poller(store, [pipeline_of(repo)], Starts(store))
    poll(poller, 0)
    b = commit(repo, "v2\n")
    store.create_execution("demo-app", b, trigger="release", now=at(10), actor="dana")
    assert poll(poller, 30) == []


def test_branch_missing_is_one_event_per_disappearance(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    starts = Starts(store)
    poller = Poller(store, [pipeline_of(repo)], starts)
    poll(poller, 0)
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", "main")
    for i in range(1, 4):
        assert poll(poller, 30 * i) == []
    missing = store.events(pipeline="demo-app", types=["branch_missing"])
    assert [(e.data, e.time) for e in missing] == [({"branch": "main"}, "2026-12-01T15:00:30.000Z")]
    assert missing[0].actor == "engine" and store.verify() is None
    # a poller restarted while the branch is gone does not report it again
    assert poll(Poller(store, [pipeline_of(repo)], Starts(store)), 120) == []
    assert len(store.events(pipeline="demo-app", types=["branch_missing"])) == 1
    # the branch comes back with a new commit: released; gone again: a second event
    back = commit(repo, "v2\n")
    git(repo, "branch", "-q", "main", back)
    assert poll(poller, 150) == [("demo-app", back)]
    git(repo, "branch", "-q", "-D", "main")
    assert poll(poller, 180) == [] and poll(poller, 210) == []
    assert len(store.events(pipeline="demo-app", types=["branch_missing"])) == 2


def test_a_branch_missing_at_first_sight_is_reported_and_then_released(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    poller = Poller(store, [pipeline_of(repo, branch="release")], Starts(store))
    assert poll(poller, 0) == [] and poll(poller, 30) == []
    assert [e.data for e in store.events(types=["branch_missing"])] == [{"branch": "release"}]
    git(repo, "branch", "-q", "release/next")  # below refs/heads/release/: not the branch
    assert poll(poller, 45) == []
    git(repo, "branch", "-q", "-D", "release/next")
    git(repo, "branch", "-q", "release")
    assert poll(poller, 60) == [("demo-app", head(repo))]


def test_an_invalid_file_at_the_head_is_released_but_keeps_the_stored_definition(tmp_path: Path,
                                                                                  store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    first = head(repo)
    poller = Poller(store, [pipeline_of(repo)], Starts(store))
    poll(poller, 0)
    broken = commit(repo, definition().replace("kind: Pipeline", "kind: Pipeline\nunknown_key: 1"), "pipeline.yaml")
    assert poll(poller, 30) == [("demo-app", broken)]  # its policy gate fails it later
    renamed = commit(repo, definition(name="new-name"), "pipeline.yaml")
    assert poll(poller, 60) == [("demo-app", renamed)]
    (repo / "pipeline.yaml").unlink()
    git(repo, "commit", "-q", "-a", "-m", "no pipeline file")
    gone = head(repo)
    assert poll(poller, 90) == [("demo-app", gone)]
    record = store.pipeline("demo-app")
    assert record is not None and record.definition_commit == first
    assert record.definition is not None and record.definition["metadata"]["name"] == "demo-app"
    fixed = commit(repo, definition(team="cart"), "pipeline.yaml")
    assert poll(poller, 120) == [("demo-app", fixed)]
    record = store.pipeline("demo-app")
    assert record is not None and (record.definition_commit, record.team) == (fixed, "cart")


def test_one_broken_repository_does_not_stop_the_others(tmp_path: Path, store: EngineStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    broken = make_repo(tmp_path, "broken", name="broken-app")
    healthy = make_repo(tmp_path, "healthy", name="healthy-app")
    pipelines = [pipeline_of(broken, "broken-app"), pipeline_of(healthy, "healthy-app")]
    poller = Poller(store, pipelines, Starts(store))
    assert [p for p, _ in poll(poller, 0)] == ["broken-app", "healthy-app"]
    shutil.rmtree(broken)
    newer = commit(healthy, "v2\n")
    with caplog.at_level(logging.WARNING, logger="pipewarden.engine.poller"):
        assert poll(poller, 30) == [("healthy-app", newer)]
    assert any("broken-app" in r.getMessage() for r in caplog.records)
    # a folder left without its .git inside another repository is not read as that repository
    broken.mkdir()
    outer = tmp_path / "outer"
    shutil.copytree(healthy, outer)
    inner = outer / "inner"
    inner.mkdir()
    with pytest.raises(GitError, match="not the top level"):
        repository_git_dir(str(inner))
    assert poll(poller, 60) == []


def test_an_unreadable_repository_is_logged_once_and_polled_again(tmp_path: Path, store: EngineStore,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    repo = make_repo(tmp_path, "repo")
    poller = Poller(store, [pipeline_of(repo)], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(repo))]
    moved = repo.rename(tmp_path / "moved")
    with caplog.at_level(logging.INFO, logger="pipewarden.engine.poller"):
        for seconds in (30, 60, 90):
            assert poll(poller, seconds) == []
    warned = [r for r in caplog.records if "cannot read the repository" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING and warned[0].exc_info is None
    assert f"{repo} of pipeline demo-app" in warned[0].getMessage()
    assert not store.events(pipeline="demo-app", types=["branch_missing"])  # not taken for a missing branch
    caplog.clear()
    moved.rename(repo)
    newer = commit(repo, "v2\n")
    with caplog.at_level(logging.INFO, logger="pipewarden.engine.poller"):
        assert poll(poller, 120) == [("demo-app", newer)]
    assert any("can be read again" in r.getMessage() for r in caplog.records)


def test_a_start_that_fails_is_tried_again_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    failing = Starts(store, fail=True)
    poller = Poller(store, [pipeline_of(repo)], failing)
    assert poll(poller, 0) == []
    assert failing.calls == [("demo-app", head(repo))]
    failing.fail = False
    assert poll(poller, 30) == [("demo-app", head(repo))]


def test_a_mirror_is_fetched_before_each_read(tmp_path: Path, store: EngineStore) -> None:
    origin = make_repo(tmp_path, "origin")
    url = origin.as_uri()
    mirror, note = update_mirror(url, str(tmp_path / "mirrors"))
    assert note is None
    pipeline = ResolvedPipeline("demo-app", mirror, "main", "pipeline.yaml", 1, url=url)
    poller = Poller(store, [pipeline], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(origin))]
    pushed = commit(origin, "v2\n")
    assert poll(poller, 30) == [("demo-app", pushed)]
    assert branch_head(repository_git_dir(mirror), "main") == pushed
    shutil.rmtree(mirror)  # the cache wiped: cloned again
    newer = commit(origin, "v3\n")
    assert poll(poller, 60) == [("demo-app", newer)]


def test_a_mirror_that_cannot_be_fetched_is_logged_once(tmp_path: Path, store: EngineStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    origin = make_repo(tmp_path, "origin")
    url = origin.as_uri()
    mirror, _ = update_mirror(url, str(tmp_path / "mirrors"))
    poller = Poller(store, [ResolvedPipeline("demo-app", mirror, "main", "pipeline.yaml", 1, url=url)], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(origin))]
    away = origin.rename(tmp_path / "away")
    with caplog.at_level(logging.INFO, logger="pipewarden.engine.poller"):
        for seconds in (30, 60, 90):
            assert poll(poller, seconds) == []  # the cached copy is read: nothing new
    assert len([r for r in caplog.records if "could not fetch" in r.getMessage()]) == 1
    caplog.clear()
    away.rename(origin)
    newer = commit(origin, "v2\n")
    with caplog.at_level(logging.INFO, logger="pipewarden.engine.poller"):
        assert poll(poller, 120) == [("demo-app", newer)]
    assert any("is fetched again" in r.getMessage() for r in caplog.records)


def test_run_polls_until_stopped(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")

    class Flaky(Poller):
        """A round that fails as a whole (a bug, say) must not end the loop."""

        rounds = 0

        async def poll_once(self, now: datetime) -> list[tuple[str, str]]:
            self.rounds += 1
            if self.rounds == 1:
                raise RuntimeError("a bad round")
            return await super().poll_once(now)

    async def scenario() -> tuple[int, int]:
        starts = Starts(store)
        poller = Flaky(store, [pipeline_of(repo)], starts)
        stop = asyncio.Event()
        runner = asyncio.create_task(poller.run(stop, 0.05, lambda: T0))
        for _ in range(200):
            if poller.rounds >= 4:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(runner, 5)
        return poller.rounds, len(starts.calls)

    rounds, calls = asyncio.run(scenario())
    assert rounds >= 4 and calls == 1


# ---------------------------------------------------------------- an unchanged round is cheap (Issue 14)
# Rounds here are a second apart, well within the 15 s the safety net waits at least, so the
# fingerprints decide; each change must be seen in the very next round.


class Counted:
    """Counts the poller's git processes (its module's `run_git`, which calls the real one) and
    the store's `released` reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: EngineStore) -> None:
        self.git: list[list[str]] = []
        self.released = 0
        real_git, real_released = poller_module.run_git, store.released

        def counting_git(args: list[str], *rest: Any, **options: Any) -> bytes:
            self.git.append(args)
            return real_git(args, *rest, **options)

        def counting_released(pipeline: str, commit: str) -> bool:
            self.released += 1
            return real_released(pipeline, commit)

        monkeypatch.setattr(poller_module, "run_git", counting_git)
        monkeypatch.setattr(store, "released", counting_released)

    def reset(self) -> None:
        self.git.clear()
        self.released = 0


def settled(tmp_path: Path, store: EngineStore) -> tuple[Path, Poller]:
    """A repository whose head is released and settled (seen released once) by rounds 0 and 1."""
    path = make_repo(tmp_path, "repo")
    poller = Poller(store, [pipeline_of(path)], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(path))]
    assert poll(poller, 1) == []
    return path, poller


def loose_ref(repo: Path, branch: str = "main") -> Path:
    return repo / ".git" / "refs" / "heads" / branch


def new_commit(repo: Path, text: str, parent: str = "HEAD") -> str:
    """A commit on top of `parent` that no branch points at yet (HEAD and the work tree untouched)."""
    return git(repo, "commit-tree", f"{parent}^{{tree}}", "-p", parent, "-m", text)


def test_an_unchanged_round_runs_no_git_and_reads_nothing_released(tmp_path: Path, store: EngineStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    counted = Counted(monkeypatch, store)
    repo = make_repo(tmp_path, "repo")
    other = make_repo(tmp_path, "other", name="other-app")
    poller = Poller(store, [pipeline_of(repo), pipeline_of(other, "other-app")], Starts(store))
    assert len(poll(poller, 0)) == 2
    assert poll(poller, 1) == [] and counted.released == 4  # once a new head, once to settle it
    counted.reset()
    for second in range(2, 10):
        assert poll(poller, second) == []
    assert counted.git == [] and counted.released == 0
    # the safety net: git reads each head again 30 s after its last read, whatever the fingerprint says
    assert poll(poller, 30) == []
    assert sorted(args[2] for args in counted.git) == ["for-each-ref", "for-each-ref", "rev-parse", "rev-parse"]
    assert counted.released == 0
    counted.reset()
    assert poll(poller, 31) == [] and counted.git == []
    # a head git reads anew is asked of the store (once), and released when it is new
    newer = commit(repo, "v2\n")
    assert poll(poller, 32) == [("demo-app", newer)]
    assert counted.released == 1
    assert [args[2] for args in counted.git] == ["for-each-ref", "cat-file", "show"]  # and its file read
    counted.reset()
    assert poll(poller, 33) == [] and counted.released == 1 and counted.git == []  # the store says released
    assert poll(poller, 34) == [] and counted.released == 1 and counted.git == []  # and now it is remembered


def test_a_head_whose_start_failed_is_asked_of_the_store_every_round(tmp_path: Path, store: EngineStore,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    counted = Counted(monkeypatch, store)
    repo = make_repo(tmp_path, "repo")
    failing = Starts(store, fail=True)
    poller = Poller(store, [pipeline_of(repo)], failing)
    for second in range(3):
        assert poll(poller, second) == []
    assert len(failing.calls) == 3 and counted.released == 3
    failing.fail = False
    assert poll(poller, 3) == [("demo-app", head(repo))]


def test_a_commit_on_the_branch_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    for second in range(2, 6):
        newer = commit(repo, f"v{second}\n")
        assert poll(poller, second) == [("demo-app", newer)]
    assert poll(poller, 6) == []


def test_update_ref_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    b = new_commit(repo, "b")
    git(repo, "update-ref", "refs/heads/main", b)
    assert poll(poller, 2) == [("demo-app", b)]


def test_packed_refs_are_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    git(repo, "pack-refs", "--all")
    assert not loose_ref(repo).exists()
    assert poll(poller, 2) == []  # the same head, now packed
    b = new_commit(repo, "b")
    git(repo, "update-ref", "refs/heads/main", b)  # a packed ref updated: a loose one beside it
    assert poll(poller, 3) == [("demo-app", b)]
    c = new_commit(repo, "c", b)
    git(repo, "update-ref", "refs/heads/main", c)
    git(repo, "pack-refs", "--all")  # and packed at once: only packed-refs says so
    assert not loose_ref(repo).exists()
    assert poll(poller, 4) == [("demo-app", c)]
    d = new_commit(repo, "d", c)
    git(repo, "update-ref", "refs/heads/main", d)
    git(repo, "pack-refs", "--all")
    assert poll(poller, 5) == [("demo-app", d)]
    assert commits_released(store)[-3:] == [b, c, d]


def test_a_branch_deleted_and_recreated_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    first = head(repo)
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", "main")
    assert poll(poller, 2) == []
    assert len(store.events(pipeline="demo-app", types=["branch_missing"])) == 1
    assert poll(poller, 3) == []
    b = new_commit(repo, "b")
    git(repo, "branch", "-q", "main", b)
    assert poll(poller, 4) == [("demo-app", b)]
    git(repo, "branch", "-q", "-D", "main")  # gone and back at a released commit between two rounds
    git(repo, "branch", "-q", "main", first)
    assert poll(poller, 5) == []
    record = store.pipeline("demo-app")
    assert record is not None and record.definition_commit == first  # it was read: the branch's file again
    git(repo, "branch", "-q", "-D", "main")
    assert poll(poller, 6) == []
    assert len(store.events(pipeline="demo-app", types=["branch_missing"])) == 2


def test_a_force_push_back_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    a = head(repo)
    b = commit(repo, definition(team="cart"), "pipeline.yaml")
    assert poll(poller, 2) == [("demo-app", b)]
    git(repo, "update-ref", "refs/heads/main", a)  # force-pushed back to a released commit
    assert poll(poller, 3) == []
    record = store.pipeline("demo-app")
    assert record is not None and (record.definition_commit, record.team) == (a, "demo")
    git(repo, "update-ref", "refs/heads/main", b)
    assert poll(poller, 4) == []
    record = store.pipeline("demo-app")
    assert record is not None and (record.definition_commit, record.team) == (b, "cart")
    c = new_commit(repo, "c on a", a)  # rewritten history
    git(repo, "update-ref", "refs/heads/main", c)
    assert poll(poller, 5) == [("demo-app", c)]
    assert commits_released(store) == [a, b, c]


def test_a_repository_replaced_at_its_path_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    shutil.rmtree(repo)
    make_repo(tmp_path, "repo", team="cart")  # another history at the same path
    assert poll(poller, 2) == [("demo-app", head(repo))]
    record = store.pipeline("demo-app")
    assert record is not None and record.team == "cart"
    shutil.rmtree(repo)  # and a bare one in its place
    other = make_repo(tmp_path, "other", team="shop")
    git(tmp_path, "clone", "-q", "--bare", str(other), str(repo))
    assert poll(poller, 3) == [("demo-app", head(other))]


def test_a_second_update_in_the_same_tick_is_seen_in_the_next_round(tmp_path: Path, store: EngineStore) -> None:
    repo, poller = settled(tmp_path, store)
    b = new_commit(repo, "b")
    git(repo, "update-ref", "refs/heads/main", b)
    assert poll(poller, 2) == [("demo-app", b)]
    before = loose_ref(repo).stat()
    c = new_commit(repo, "c", b)
    git(repo, "update-ref", "refs/heads/main", c)
    # as on a file system whose clock ticks by the second: the same mtime (and the same size)
    os.utime(loose_ref(repo), ns=(before.st_atime_ns, before.st_mtime_ns))
    after = loose_ref(repo).stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert poll(poller, 2.5) == [("demo-app", c)]


def test_a_branch_with_slashes_and_a_linked_worktree(tmp_path: Path, store: EngineStore) -> None:
    repo = make_repo(tmp_path, "repo")
    git(repo, "branch", "-q", "release/next")
    worktree = tmp_path / "worktree"
    git(repo, "worktree", "add", "-q", str(worktree), "release/next")
    poller = Poller(store, [pipeline_of(worktree, branch="release/next")], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(repo))]
    assert poll(poller, 1) == []
    b = commit(worktree, "v2\n")  # the ref lives in the main repository's git dir
    assert poll(poller, 2) == [("demo-app", b)]
    c = new_commit(repo, "c", b)
    git(repo, "update-ref", "refs/heads/release/next", c)
    assert poll(poller, 3) == [("demo-app", c)]


def test_a_mirror_fetch_that_moves_the_branch_is_seen_in_the_same_round(tmp_path: Path, store: EngineStore,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    origin = make_repo(tmp_path, "origin")
    url = origin.as_uri()
    mirror, _ = update_mirror(url, str(tmp_path / "mirrors"))
    poller = Poller(store, [ResolvedPipeline("demo-app", mirror, "main", "pipeline.yaml", 1, url=url)], Starts(store))
    assert poll(poller, 0) == [("demo-app", head(origin))]
    counted = Counted(monkeypatch, store)
    assert poll(poller, 1) == []
    counted.reset()
    assert poll(poller, 2) == [] and counted.git == []  # fetched (by gitrepo), nothing moved: no read
    for second in range(3, 6):
        pushed = commit(origin, f"v{second}\n")
        assert poll(poller, second) == [("demo-app", pushed)]
    git(origin, "update-ref", "refs/heads/main", git(origin, "rev-parse", "HEAD~2"))  # forced back
    assert poll(poller, 6) == []
    record = store.pipeline("demo-app")
    assert record is not None and record.definition_commit == git(origin, "rev-parse", "HEAD")
