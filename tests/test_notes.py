"""Notes: what a run has to tell besides its findings (no file found, a damaged cache repaired, a
worker process that died) travels on the result, and the CLI prints it, with the bytes it always
had on stderr, in the same order. Nothing under evaluation/ (nor the check and report runners)
prints."""

from __future__ import annotations

import ast
import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import NOW, run_cli
from pipewarden.evaluation import pool
from pipewarden.evaluation.cache import CACHE_FILE
from pipewarden.evaluation.context import build_context
from pipewarden.lint.check import check_paths
from pipewarden.load.discover import discover

REPO = Path(__file__).resolve().parent.parent
ORG = str(REPO / "org-configs" / "example")
SRC = REPO / "src" / "pipewarden"
WORKER_DIED = (
    "pipewarden: warning: a worker process died; {count} file(s) are checked again in the main process with "
    "the iterative YAML parser (please report this, with the files if you can)\n"
)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    fleet = tmp_path / "examples"
    shutil.copytree(REPO / "examples", fleet)
    return fleet


@pytest.fixture
def dying_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes for any fleet, and a worker dies on the checkout pipelines (as one does
    after a crash in native code)."""
    main = os.getpid()
    real = pool._evaluate_path

    def dies_in_a_worker(path: str) -> object:
        if os.getpid() != main and "checkout" in path:
            os._exit(139)
        return real(path)

    monkeypatch.setattr(pool, "_evaluate_path", dies_in_a_worker)
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(pool, "CHUNK", 1)
    monkeypatch.setattr(pool, "_workers", lambda: 2)


def test_no_pipeline_file_is_a_note_on_the_result(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result = check_paths([str(tmp_path)], build_context(None, (), dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)))
    assert result.notes == (f"no pipeline file found under {tmp_path}",) and result.findings == ()
    assert capfd.readouterr().err == ""
    cli = run_cli("check", str(tmp_path), "--now", NOW)
    assert (cli.exit_code, cli.stderr) == (0, f"pipewarden: no pipeline file found under {tmp_path}\n")


def test_notes_keep_their_order_no_file_then_the_damaged_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILE).write_bytes(b"not a database" * 100)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("check", str(empty), "--now", NOW, "--cache-dir", str(cache))
    assert result.exit_code == 0
    assert result.stderr == (
        f"pipewarden: no pipeline file found under {empty}\n"
        f"pipewarden: note: the cache file {cache / CACHE_FILE} is damaged (file is not a database); "
        "it was deleted and is built again\n"
    )


def test_a_damaged_cache_entry_through_check_and_report(tmp_path: Path, examples: Path) -> None:
    cache = tmp_path / "cache"
    args = (str(examples), "--org-config", ORG, "--now", NOW, "--cache-dir", str(cache), "--format", "json")
    first = run_cli("check", *args)
    assert first.stderr == ""
    for command in (("check", *args), ("report", *args)):
        with sqlite3.connect(str(cache / CACHE_FILE)) as db:
            db.execute("UPDATE results SET result = x'00' WHERE rowid IN (SELECT rowid FROM results LIMIT 2)")
        db.close()
        damaged = run_cli(*command)
        assert damaged.stderr == (
            f"pipewarden: note: dropped 2 damaged cache entries from {cache / CACHE_FILE}; the files are checked again\n"
        )
        if command[0] == "check":
            assert damaged.stdout == first.stdout


def assert_one_dead_worker(stderr: str, files: int) -> None:
    """The warning, alone, naming how many files were checked again (how far the pool got before
    the worker died depends on timing)."""
    assert stderr.startswith("pipewarden: warning: a worker process died; "), stderr
    count = int(stderr.split("; ")[1].split(" ")[0])
    assert 0 < count <= files and stderr == WORKER_DIED.format(count=count)


@pytest.mark.usefixtures("dying_worker")
def test_a_dead_worker_is_a_warning_from_check_report_and_promote(examples: Path) -> None:
    files = len(discover([str(examples)]))
    common = ("--org-config", ORG, "--now", NOW)
    check = run_cli("check", str(examples), *common, "--no-cache", "--format", "json")
    assert_one_dead_worker(check.stderr, files)
    report = run_cli("report", str(examples), *common, "--no-cache", "--format", "json")
    assert report.exit_code == 0
    assert_one_dead_worker(report.stderr, files)
    promote = run_cli("rules", "promote", "full-automation", "--org", "platform", *common, "--dry-run", str(examples))
    assert promote.exit_code == 0
    assert_one_dead_worker(promote.stderr, files)


def test_nothing_in_the_core_prints() -> None:
    """The fronts own the terminal: no print, no sys.stderr/sys.stdout, no progress bar below cli/."""
    modules = [*sorted((SRC / "evaluation").glob("*.py")), SRC / "lint" / "check.py", SRC / "lint" / "report" / "run.py"]
    for module in modules:
        tree = ast.parse(module.read_text(), str(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{module}:{node.lineno} prints"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
                assert node.attr not in ("stderr", "stdout"), f"{module}:{node.lineno} writes to sys.{node.attr}"
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("pipewarden.cli"), f"{module}:{node.lineno} imports the CLI"
