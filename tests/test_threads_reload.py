"""A thread-safe and reloadable core (issue 12, item 4), with real threads and real files.

Rule engines are made per thread (a regorus engine must stay on the thread that made it), the
YAML loader's parser switch is per thread, and the rule catalog and the org tree are cached by the
content of their files, so that a long-running process sees edits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, run_cli
from pipewarden.load.discover import discover
from pipewarden.load.pipeline import load_pipeline
from pipewarden.load.yamlsafe import iterative_parsing, parse_yaml
from pipewarden.orgs.tree import OrgTreeCache, load_org_tree_cached
from pipewarden.policy import engine as engines
from pipewarden.policy.catalog import Catalog, load_catalog
from pipewarden.policy.engine import RuleFailure, engine_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = str(ROOT / "org-configs" / "example" / "policies")
TODAY = dt.date(2026, 11, 26)
THREADS = 4

RULE = """# METADATA
# title: Names are short
# custom:
#   id: short-name
#   level: warn
package pipewarden.rules.short_name

import rego.v1

deny contains v if {
	count(input.pipeline.metadata.name) > 3
	v := {"msg": "MESSAGE", "path": "metadata.name"}
}
"""

ROOT_NODE = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: acme}
teams: [checkout]
rules:
  short-name: {level: LEVEL}
"""


def _documents() -> list[tuple[str, str]]:
    """(file, document JSON) of every valid example pipeline."""
    loaded = [load_pipeline(path) for path in discover([str(ROOT / "examples")])]
    documents = [(f.file, f.json_text or json.dumps(f.document)) for f in loaded if f.valid]
    assert len(documents) >= 10
    return documents


def _params(catalog: Catalog) -> str:
    return json.dumps({rule.id: rule.params for rule in catalog.rules.values()})


Answer = tuple[list[tuple[str, str, str]], list[RuleFailure]]


def _evaluate_all(catalog: Catalog, documents: list[tuple[str, str]]) -> dict[str, Answer]:
    params = _params(catalog)
    return {file: engine_for(catalog).run(document, params) for file, document in documents}


def _in_threads(count: int, work: Any) -> list[Any]:
    """Run `work()` on `count` threads started together; their answers (a thread's exception is
    raised here)."""
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            answers[index] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return answers


# --- engines per thread ----------------------------------------------------------------------


def test_threads_evaluating_at_once_get_the_findings_of_one() -> None:
    catalog = load_catalog((EXAMPLE_POLICIES,))
    documents = _documents()
    alone = _evaluate_all(catalog, documents)
    assert any(found for found, _ in alone.values())  # the examples do have findings

    def work() -> list[dict[str, Answer]]:
        return [_evaluate_all(catalog, documents) for _ in range(3)]

    for answers in _in_threads(THREADS, work):
        assert answers == [alone] * 3


def test_threads_evaluating_a_fleet_rule_at_once_get_the_findings_of_one() -> None:
    catalog = load_catalog(())
    (rule,) = catalog.fleet_rules()
    pipelines = [
        {"file": f"p{i}.yaml", "name": f"svc-{i % 7}", "hosts": [{"host": f"h{i % 5}:80", "key": f"h{i % 5}:80", "path": "x"}]}
        for i in range(60)
    ]
    alone = engine_for(catalog).evaluate_fleet(rule, pipelines)
    assert alone
    answers = _in_threads(THREADS, lambda: [engine_for(catalog).evaluate_fleet(rule, pipelines) for _ in range(5)])
    for answer in answers:
        assert answer == [alone] * 5


def test_an_engine_is_made_once_per_thread_and_catalog() -> None:
    catalog = load_catalog(())
    mine = engine_for(catalog)
    assert engine_for(catalog) is mine
    assert engine_for(load_catalog(())) is mine  # the same files: the same catalog and engine

    all_made = threading.Barrier(THREADS)

    def work() -> tuple[int, bool, int]:
        first = engine_for(catalog)
        again = all(engine_for(catalog) is first for _ in range(100))
        all_made.wait()  # every thread's engine alive at once: distinct objects have distinct ids
        return id(first), again, threading.get_ident()

    answers = _in_threads(THREADS, work)
    assert all(again for _, again, _ in answers)
    assert len({engine for engine, _, _ in answers} | {id(mine)}) == THREADS + 1
    # An ended thread's engines are gone with it (dropped on that thread).
    assert not any(ident in engines._REGISTRY for _, _, ident in answers)


def test_an_engine_is_never_used_on_another_thread() -> None:
    """What engine_for protects against: the binding refuses (and a rule engine made on one
    thread cannot even be cloned on another)."""
    catalog = load_catalog(())
    mine = engine_for(catalog)
    native = mine._engine  # type: ignore[attr-defined]

    def use() -> None:
        native.clone()

    with pytest.raises(BaseException, match="unsendable"):
        _in_threads(1, use)


def test_a_forked_child_makes_its_own_engine_and_drops_no_other_threads_engine(tmp_path: Path) -> None:
    """Forked while another thread holds an engine: the child evaluates with an engine of its
    own, and nothing in it drops the other thread's engine (which would fail: "unsendable")."""
    script = tmp_path / "fork.py"
    script.write_text("""
import json, os, threading
from pipewarden.policy.catalog import load_catalog
from pipewarden.policy.engine import engine_for, _LOCAL

catalog = load_catalog(())
params = json.dumps({r.id: r.params for r in catalog.rules.values()})
held, release = threading.Event(), threading.Event()

def hold():
    engine_for(catalog)
    held.set()
    release.wait()

other = threading.Thread(target=hold)
other.start()
held.wait()
mine = engine_for(catalog)
found = mine.run('{"apiVersion": "pipewarden/v1", "kind": "Pipeline", "metadata": {"name": "x", "team": "t"}, '
                 '"build": {"commands": ["make"]}, "stages": [{"name": "beta", "type": "preprod", '
                 '"targets": [{"name": "b", "hosts": ["10.0.0.1:80"]}]}]}', params)
pid = os.fork()
if pid == 0:
    fresh = _LOCAL.engines.last is None
    child = engine_for(catalog)
    again = child.run('{"apiVersion": "pipewarden/v1", "kind": "Pipeline", "metadata": {"name": "x", "team": "t"}, '
                      '"build": {"commands": ["make"]}, "stages": [{"name": "beta", "type": "preprod", '
                      '"targets": [{"name": "b", "hosts": ["10.0.0.1:80"]}]}]}', params)
    print(json.dumps({"fresh": fresh, "same": again == found, "count": len(found[0])}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
release.set()
other.join()
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "unsendable" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert json.loads(done.stdout) == {"fresh": True, "same": True, "count": json.loads(done.stdout)["count"]}
    assert json.loads(done.stdout)["count"] > 0


# --- the loader's parser switch, per thread --------------------------------------------------

# A node reached through an alias: the fast path gives the anchor's line, the iterative parser
# the alias's (design.md, "Loader"), which shows the parser that read it.
ALIASED = "a: &x\n  k: 1\nb: 2\nc: *x\n"


def test_the_iterative_parser_switch_is_per_thread() -> None:
    assert parse_yaml(ALIASED).line_of("c.k") == 2
    with iterative_parsing():
        assert parse_yaml(ALIASED).line_of("c.k") == 4
    inside, entered, done = threading.Event(), threading.Event(), threading.Event()

    def switched() -> int:
        with iterative_parsing():
            entered.set()
            done.wait(10)
            return parse_yaml(ALIASED).line_of("c.k")

    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(switched()))
    thread.start()
    entered.wait(10)
    inside.set()
    line_here = parse_yaml(ALIASED).line_of("c.k")  # while the other thread has it switched on
    done.set()
    thread.join()
    assert (line_here, answers) == (2, [4])


# --- a rule file edited between two calls ----------------------------------------------------


def _rule_folder(tmp_path: Path, message: str) -> Path:
    """The policies folder with the rule `short-name` giving `message`, written as an editor
    that saves through a temporary file does (a reader sees the old or the new text)."""
    folder = tmp_path / "policies" / "short-name"
    folder.mkdir(parents=True, exist_ok=True)
    saving = folder / f".short_name.rego.{threading.get_ident()}"
    saving.write_text(RULE.replace("MESSAGE", message))
    os.replace(saving, folder / "short_name.rego")
    return folder.parent


def test_a_rule_file_edited_between_two_calls_is_seen_by_the_second(tmp_path: Path) -> None:
    folder = _rule_folder(tmp_path, "name is long")
    document = json.dumps({"metadata": {"name": "checkout"}})
    first = load_catalog((str(folder),))
    assert load_catalog((str(folder),)) is first  # unchanged: the cached catalog
    params = _params(first)
    assert engine_for(first).run(document, params, frozenset({"short-name"}))[0] == [
        ("short-name", "metadata.name", "name is long")
    ]
    _rule_folder(tmp_path, "name is too long")  # same size class, same folder, within a second
    second = load_catalog((str(folder),))
    assert second is not first and second.fingerprint != first.fingerprint
    assert engine_for(second).run(document, params, frozenset({"short-name"}))[0] == [
        ("short-name", "metadata.name", "name is too long")
    ]
    # Edited back: the first catalog again, and this thread's engine for it.
    _rule_folder(tmp_path, "name is long")
    assert load_catalog((str(folder),)) is first
    # A rule file added, then removed.
    extra = folder / "short-name" / "helper.rego"
    extra.write_text("package acme.lib\n\nimport rego.v1\n\nlimit := 3\n")
    with_library = load_catalog((str(folder),))
    assert str(extra) in with_library.library_files
    extra.unlink()
    assert load_catalog((str(folder),)) is first


def test_the_same_edit_is_seen_by_the_command_line_in_one_process(tmp_path: Path) -> None:
    folder = _rule_folder(tmp_path, "name is long")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pipeline.yaml").write_text((ROOT / "tests" / "data" / "good-pipeline.yaml").read_text())

    def messages() -> list[str]:
        done = run_cli("check", str(repo), "--policies", str(folder), "--format", "json", "--now", NOW, "--no-cache")
        return [f["message"] for f in done.json()["findings"] if f["rule"] == "short-name"]

    assert messages() == ["name is long"]
    _rule_folder(tmp_path, "name is too long")
    assert messages() == ["name is too long"]


def test_threads_loading_the_catalog_while_it_is_edited_get_one_of_the_two(tmp_path: Path) -> None:
    folder = _rule_folder(tmp_path, "one")
    before = load_catalog((str(folder),))
    _rule_folder(tmp_path, "two")
    after = load_catalog((str(folder),))

    def work() -> set[str]:
        seen = set()
        for i in range(30):
            if i % 10 == 5:
                _rule_folder(tmp_path, "one" if i % 20 == 5 else "two")
            seen.add(load_catalog((str(folder),)).fingerprint)
        return seen

    for seen in _in_threads(THREADS, work):
        assert seen <= {before.fingerprint, after.fingerprint}


# --- an org file edited between two calls ----------------------------------------------------


def _org(tmp_path: Path, level: str) -> Path:
    orgs = tmp_path / "orgs"
    orgs.mkdir(exist_ok=True)
    (orgs / "root.yaml").write_text(ROOT_NODE.replace("LEVEL", level))
    return orgs


def test_an_org_file_edited_between_two_calls_is_seen_by_the_second(tmp_path: Path) -> None:
    catalog = load_catalog((str(_rule_folder(tmp_path, "long")),))
    orgs = _org(tmp_path, "warn")
    first = load_org_tree_cached(str(orgs), catalog, TODAY)
    assert load_org_tree_cached(str(orgs), catalog, TODAY) is first
    assert first.nodes["acme"].rules["short-name"].level == "warn"
    _org(tmp_path, "off")  # same length, rewritten at once
    second = load_org_tree_cached(str(orgs), catalog, TODAY)
    assert second.nodes["acme"].rules["short-name"].level == "off"
    # A node added.
    (orgs / "child.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: child, parent: acme}\nteams: [cart]\n"
    )
    third = load_org_tree_cached(str(orgs), catalog, TODAY)
    assert set(third.nodes) == {"acme", "child"}
    # Another day or another catalog: loaded again (exception caps and rule checks depend on them).
    assert load_org_tree_cached(str(orgs), catalog, TODAY + dt.timedelta(days=1)) is not third
    _rule_folder(tmp_path, "longer")
    assert load_org_tree_cached(str(orgs), load_catalog((str(tmp_path / "policies"),)), TODAY) is not third


def test_an_org_file_broken_by_an_edit_is_an_error_and_fixed_is_loaded(tmp_path: Path) -> None:
    from pipewarden.errors import ConfigError

    catalog = load_catalog((str(_rule_folder(tmp_path, "long")),))
    orgs = _org(tmp_path, "warn")
    cache = OrgTreeCache()
    assert cache.load(str(orgs), catalog, TODAY).nodes["acme"].rules["short-name"].level == "warn"
    _org(tmp_path, "loud")
    with pytest.raises(ConfigError) as error:
        cache.load(str(orgs), catalog, TODAY)
    assert error.value.file == str(orgs / "root.yaml")
    _org(tmp_path, "enforce")
    assert cache.load(str(orgs), catalog, TODAY).nodes["acme"].rules["short-name"].level == "enforce"


def test_threads_loading_one_org_tree_at_once_get_equal_trees(tmp_path: Path) -> None:
    catalog = load_catalog((str(_rule_folder(tmp_path, "long")),))
    orgs = _org(tmp_path, "warn")
    cache = OrgTreeCache()
    trees = _in_threads(THREADS, lambda: cache.load(str(orgs), catalog, TODAY))
    assert all(tree.nodes == trees[0].nodes for tree in trees)
    assert cache.load(str(orgs), catalog, TODAY) in trees
