"""The incremental cache never gives a stale answer, and re-evaluates only what changed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from conftest import good_pipeline
from pipewarden.evaluation.cache import cached_evaluate
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.levels import to_findings
from pipewarden.evaluation.pool import evaluate_paths
from pipewarden.load.discover import discover

NOW = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
ORG = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {{name: {name}{parent}}}\nteams: [{teams}]\n{rules}"


def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    for i, team in enumerate(["checkout", "checkout", "search"]):
        folder = root / f"svc{i}"
        folder.mkdir(parents=True)
        text = good_pipeline(("checkout-service", f"svc{i}"), ("team: checkout", f"team: {team}"),
                             ("duration: 60m", "duration: 30m")).replace("127.0.0.1:", f"10.0.{i}.1:")
        (folder / "pipeline.yaml").write_text(text)
    return root


def org_tree(tmp_path: Path, retail_rules: str = "", platform_rules: str = "") -> Path:
    org = tmp_path / "org"
    org.mkdir(exist_ok=True)
    (org / "acme.yaml").write_text(ORG.format(name="acme", parent="", teams="", rules=""))
    (org / "retail.yaml").write_text(ORG.format(name="retail", parent=", parent: acme", teams="checkout", rules=retail_rules))
    (org / "platform.yaml").write_text(ORG.format(name="platform", parent=", parent: acme", teams="search", rules=platform_rules))
    return org


def run(root: Path, org: Path, cache: Path, policies: tuple[str, ...] = ()) -> tuple[list[tuple[str, str, str, str]], dict[str, int]]:
    context = build_context(str(org), policies, NOW)
    stats: dict[str, int] = {}
    files = discover([str(root)])
    evaluated = cached_evaluate(files, context, cache, stats=stats)
    findings = [(Path(f.file).parent.name, f.rule, f.level, f.message) for f in to_findings(evaluated, context).findings]
    fresh = [(Path(f.file).parent.name, f.rule, f.level, f.message)
             for f in to_findings(evaluate_paths(files, context), context).findings]
    assert findings == fresh  # the cache gives exactly what a fresh evaluation gives
    return findings, stats


def test_rerun_is_served_from_the_cache(tmp_path: Path) -> None:
    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    first, stats = run(root, org, cache)
    assert stats == {"hits": 0, "evaluated": 3}
    again, stats = run(root, org, cache)
    assert again == first and stats == {"hits": 3, "evaluated": 0}


def test_a_changed_file_is_evaluated_again(tmp_path: Path) -> None:
    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    run(root, org, cache)
    target = root / "svc1" / "pipeline.yaml"
    target.write_text(target.read_text().replace("duration: 30m  ", "duration: 60m  "))
    findings, stats = run(root, org, cache)
    assert stats == {"hits": 2, "evaluated": 1}
    assert ("svc1", "canary-bake-time") not in {(f[0], f[1]) for f in findings}


def test_one_orgs_params_change_re_evaluates_only_its_pipelines(tmp_path: Path) -> None:
    root, cache = fleet(tmp_path), tmp_path / "cache"
    run(root, org_tree(tmp_path), cache)
    findings, stats = run(root, org_tree(tmp_path, platform_rules="rules:\n  canary-bake-time: {params: {min_minutes: 20}}\n"), cache)
    assert stats == {"hits": 2, "evaluated": 1}
    assert ("svc2", "canary-bake-time") not in {(f[0], f[1]) for f in findings}


def test_a_level_change_needs_no_re_evaluation_but_shows_at_once(tmp_path: Path) -> None:
    root, cache = fleet(tmp_path), tmp_path / "cache"
    run(root, org_tree(tmp_path), cache)
    findings, stats = run(root, org_tree(tmp_path, retail_rules="rules:\n  canary-bake-time: {level: enforce}\n"), cache)
    assert stats["hits"] == 3
    levels = {(f[0], f[1]): f[2] for f in findings}
    assert levels[("svc0", "canary-bake-time")] == "enforce" and levels[("svc2", "canary-bake-time")] == "warn"


def test_turning_a_rule_off_and_on_again(tmp_path: Path) -> None:
    root, cache = fleet(tmp_path), tmp_path / "cache"
    run(root, org_tree(tmp_path), cache)
    off, stats = run(root, org_tree(tmp_path, retail_rules="rules:\n  canary-bake-time: {level: 'off'}\n"), cache)
    assert stats["evaluated"] == 2
    assert ("svc0", "canary-bake-time") not in {(f[0], f[1]) for f in off}
    on, stats = run(root, org_tree(tmp_path), cache)
    assert stats == {"hits": 3, "evaluated": 0}
    assert ("svc0", "canary-bake-time") in {(f[0], f[1]) for f in on}


def test_a_team_move_re_evaluates_the_pipeline(tmp_path: Path) -> None:
    root, cache = fleet(tmp_path), tmp_path / "cache"
    run(root, org_tree(tmp_path, platform_rules="rules:\n  canary-bake-time: {params: {min_minutes: 20}}\n"), cache)
    target = root / "svc0" / "pipeline.yaml"
    target.write_text(target.read_text().replace("team: checkout", "team: search"))
    findings, stats = run(root, org_tree(tmp_path, platform_rules="rules:\n  canary-bake-time: {params: {min_minutes: 20}}\n"), cache)
    assert stats == {"hits": 2, "evaluated": 1}
    assert ("svc0", "canary-bake-time") not in {(f[0], f[1]) for f in findings}


def test_a_policy_change_re_evaluates_everything(tmp_path: Path) -> None:
    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    run(root, org, cache)
    extra = Path(__file__).resolve().parent.parent / "org-configs" / "example" / "policies"
    _, stats = run(root, org, cache, (str(extra),))
    assert stats == {"hits": 0, "evaluated": 3}


def test_an_unwritable_cache_directory_is_ignored(tmp_path: Path) -> None:
    root, org = fleet(tmp_path), org_tree(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    context = build_context(str(org), (), NOW)
    evaluated = cached_evaluate(discover([str(root)]), context, blocker / "cache")
    assert len(evaluated) == 3


def test_results_are_kept_under_the_hash_of_the_bytes_evaluated(tmp_path: Path) -> None:
    """A file that changes between the cache lookup and its evaluation must not leave the new
    content's result under the old content's hash (a stale answer for the old content later)."""
    import hashlib

    from pipewarden.evaluation import cache as cache_module

    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    run(root, org, cache)  # the cache is not empty: the lookup hashes files
    target = root / "svc1" / "pipeline.yaml"
    original = target.read_bytes()
    target.write_text(original.decode().replace("duration: 30m  ", "duration: 60m  "))
    changed = target.read_bytes()
    real_lookup = cache_module.CheckCache.lookup

    def lookup_then_edit(self: cache_module.CheckCache, paths: list[str]) -> dict[str, object]:
        hits = real_lookup(self, paths)
        target.write_bytes(changed.replace(b"duration: 60m  ", b"duration: 45m  "))  # edited meanwhile
        return hits  # type: ignore[return-value]

    context = build_context(str(org), (), NOW)
    cache_module.CheckCache.lookup = lookup_then_edit  # type: ignore[method-assign]
    try:
        evaluated = cached_evaluate(discover([str(root)]), context, cache)
    finally:
        cache_module.CheckCache.lookup = real_lookup  # type: ignore[method-assign]
    item = next(e for e in evaluated if e.summary.file == str(target))
    assert item.content_hash == hashlib.sha256(target.read_bytes()).hexdigest()
    # Restore the 60m content: served from the cache only if it was ever evaluated (it was not).
    target.write_bytes(changed)
    _, stats = run(root, org, cache)
    assert stats == {"hits": 2, "evaluated": 1}


def test_invalid_files_are_cached_and_unreadable_ones_are_not(tmp_path: Path) -> None:
    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    (root / "svc0" / "pipeline.yaml").write_text("stages: [unclosed\n")
    (root / "svc2" / "pipeline.yaml").unlink()
    os.mkfifo(root / "svc2" / "pipeline.yaml")  # found, but never read: not a regular file
    run(root, org, cache)
    _, stats = run(root, org, cache)
    assert stats == {"hits": 2, "evaluated": 1}


def test_worker_processes_give_what_one_process_gives_and_fill_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool path (records over a pipe, levels applied in the workers, the cache written by
    each worker) against the in-process path, on a fleet split over several chunks."""
    from pipewarden.evaluation import pool as evaluate

    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    (root / "broken").mkdir()
    (root / "broken" / "pipeline.yaml").write_text("stages: [unclosed\n")
    context = build_context(str(org), (), NOW)
    files = discover([str(root)])
    one_process = to_findings(evaluate_paths(files, context), context)
    monkeypatch.setattr(evaluate, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(evaluate, "CHUNK", 1)
    if evaluate._workers() == 1:
        monkeypatch.setattr(evaluate, "_workers", lambda: 2)
    stats: dict[str, int] = {}
    pooled = to_findings(cached_evaluate(files, context, cache, stats=stats), context)
    assert stats == {"hits": 0, "evaluated": 4}
    assert pooled.findings == one_process.findings and pooled.pipelines == one_process.pipelines
    again = to_findings(cached_evaluate(files, context, cache, stats=stats), context)
    assert stats == {"hits": 4, "evaluated": 0}  # every worker's batch reached the cache
    assert again.findings == one_process.findings


@pytest.mark.parametrize("count", [0, 1, 49, 450, 10_000])
def test_chunks_cover_every_file_once_in_order(count: int) -> None:
    from pipewarden.evaluation.pool import CHUNK, _chunks

    paths = [f"p{i}" for i in range(count)]
    chunks = _chunks(paths, 2)
    assert [p for chunk in chunks for p in chunk] == paths
    assert all(0 < len(chunk) <= CHUNK for chunk in chunks)


def test_a_worker_that_dies_neither_hangs_the_run_nor_loses_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A crash in native code kills a worker outright. The run must not wait for it forever
    (multiprocessing.Pool would): the files without an answer are checked again in the main
    process, with a warning among the run's notes (the CLI prints it: test_notes.py)."""
    from pipewarden.evaluation import pool as evaluate

    root, org = fleet(tmp_path), org_tree(tmp_path)
    context = build_context(str(org), (), NOW)
    files = discover([str(root)])
    one_process = to_findings(evaluate_paths(files, context), context)
    main_process = os.getpid()
    real = evaluate._evaluate_path

    def dies_in_a_worker(path: str) -> object:
        if os.getpid() != main_process and "svc1" in path:
            os._exit(139)  # what a segfault looks like from outside
        return real(path)

    monkeypatch.setattr(evaluate, "_evaluate_path", dies_in_a_worker)
    monkeypatch.setattr(evaluate, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(evaluate, "CHUNK", 1)
    if evaluate._workers() == 1:
        monkeypatch.setattr(evaluate, "_workers", lambda: 2)
    notes: list[str] = []
    pooled = to_findings(evaluate_paths(files, context, notes=notes), context)
    assert pooled.findings == one_process.findings and pooled.pipelines == one_process.pipelines
    assert len(notes) == 1 and notes[0].startswith("warning: a worker process died; ")
    assert capfd.readouterr().err == ""


def test_a_cache_locked_by_another_run_costs_one_short_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import time

    from pipewarden.evaluation import cache as cache_module

    root, org, cache = fleet(tmp_path), org_tree(tmp_path), tmp_path / "cache"
    run(root, org, cache)
    (root / "svc0" / "pipeline.yaml").write_text((root / "svc0" / "pipeline.yaml").read_text() + "# edited\n")
    monkeypatch.setattr(cache_module, "WRITE_WAIT_SECONDS", 0.2)
    other_run = sqlite3.connect(str(cache / "check-cache.sqlite"))
    other_run.execute("BEGIN EXCLUSIVE")  # another run is writing, for longer than we wait
    try:
        started = time.monotonic()
        context = build_context(str(org), (), NOW)
        evaluated = cached_evaluate(discover([str(root)]), context, cache)
        assert time.monotonic() - started < 5
    finally:
        other_run.rollback()
        other_run.close()
    assert len(evaluated) == 3
    _, stats = run(root, org, cache)  # the edited file's result could not be stored: evaluated again
    assert stats == {"hits": 2, "evaluated": 1}
