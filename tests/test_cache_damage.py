"""A damaged cache never stops a run: a bad entry is dropped and its file checked again, with a
one-line note; a cache file that is not SQLite, is corrupt, or has other tables is built again.
Every run gives exactly what a run without the cache gives."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import marshal
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import NOW, good_pipeline, run_cli
from pipewarden.evaluation.cache import CACHE_FILE, cached_evaluate, pack_record, unpack_record
from pipewarden.evaluation.context import EvalContext, build_context
from pipewarden.evaluation.levels import to_findings
from pipewarden.evaluation.pool import evaluate_paths
from pipewarden.load.discover import discover
from pipewarden.model.evaluated import is_record

Finding = tuple[str, str, str, int, str, str]


@pytest.fixture(autouse=True)
def steady_code_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache key includes a hash of pipewarden's own source files; these tests compare
    run after run, so they must not see a source file change in between (a checkout being
    edited, say). What the key covers is tested in test_cache.py."""
    from pipewarden.evaluation import cache

    real = cache._policy_hash
    first: list[str] = []

    def once(context: EvalContext) -> str:  # every test here uses the built-in rules only
        if not first:
            first.append(real(context))
        return first[0]

    monkeypatch.setattr(cache, "_policy_hash", once)


def make_fleet(root: Path) -> Path:
    fleet = root / "fleet"
    for i, change in enumerate([("duration: 60m", "duration: 30m"), ("canary: true", "canary: false"), ("x", "x")]):
        (fleet / f"svc{i}").mkdir(parents=True, exist_ok=True)
        text = good_pipeline(("checkout-service", f"svc{i}"), change).replace("127.0.0.1:", f"10.0.{i}.1:")
        (fleet / f"svc{i}" / "pipeline.yaml").write_text(text)
    (fleet / "broken").mkdir(exist_ok=True)
    (fleet / "broken" / "pipeline.yaml").write_text("stages: [unclosed\n")
    return fleet


class Fleet:
    """A fleet, its context, and its findings without any cache."""

    def __init__(self, root: Path) -> None:
        self.files = discover([str(make_fleet(root))])
        self.context = build_context(None, (), dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC))
        self.cache = root / "cache"
        self.expected = self.findings(evaluate_paths(self.files, self.context), self.context)

    @staticmethod
    def findings(evaluated: Any, context: EvalContext) -> list[Finding]:
        result = to_findings(evaluated, context)
        return [(f.file, f.rule, f.level, f.line, f.path, f.message) for f in result.findings]

    def run(self) -> tuple[list[Finding], dict[str, int], str]:
        """One cached run: its findings, cache statistics, and its notes as the CLI shows them on
        stderr (the run itself writes nothing there)."""
        stats: dict[str, int] = {}
        notes: list[str] = []
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            evaluated = cached_evaluate(self.files, self.context, self.cache, stats=stats, notes=notes)
        assert err.getvalue() == ""
        return self.findings(evaluated, self.context), stats, "".join(f"pipewarden: {note}\n" for note in notes)

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(str(self.cache / CACHE_FILE))
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def content(self, index: int) -> str:
        """The content key of a file: 0 is the broken one, then svc0, svc1, svc2."""
        return hashlib.sha256(Path(self.files[index]).read_bytes()).hexdigest()

    def set_result(self, value: object, index: int = 1) -> None:
        with self.db() as db:
            changed = db.execute("UPDATE results SET result = ? WHERE content = ?", (value, self.content(index)))
            assert changed.rowcount == 1

    def record(self, index: int = 1) -> tuple[Any, ...]:
        with self.db() as db:
            blob = db.execute("SELECT result FROM results WHERE content = ?", (self.content(index),)).fetchone()[0]
        record = unpack_record(blob)
        assert record is not None
        return record


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    fleet = Fleet(tmp_path)
    findings, stats, err = fleet.run()
    assert findings == fleet.expected and stats == {"hits": 0, "evaluated": 4} and err == ""
    return fleet


def assert_recovers(fleet: Fleet, dropped: int = 1) -> None:
    """The run gives the right findings, evaluates the damaged files again, says so in one line,
    and leaves a cache that the next run reads whole."""
    findings, stats, err = fleet.run()
    assert findings == fleet.expected
    assert stats == {"hits": 4 - dropped, "evaluated": dropped}
    entries = "entry" if dropped == 1 else "entries"
    assert err == f"pipewarden: note: dropped {dropped} damaged cache {entries} from {fleet.cache / CACHE_FILE}; " \
                  "the files are checked again\n"
    findings, stats, err = fleet.run()
    assert (findings, stats, err) == (fleet.expected, {"hits": 4, "evaluated": 0}, "")


@pytest.mark.parametrize(
    "value",
    [b"", b"garbage", b"\x00" * 5, b"N", "text", 42, 4.2, None, b"\xff" * 100],
    ids=["empty", "garbage", "zeros", "marshal-none", "text", "integer", "real", "null", "ff"],
)
def test_a_result_of_the_wrong_bytes_or_type_is_dropped(fleet: Fleet, value: object) -> None:
    fleet.set_result(value)
    assert_recovers(fleet)


def test_a_truncated_result_is_dropped(fleet: Fleet) -> None:
    blob = pack_record(fleet.record())
    for cut in (len(blob) - 1, len(blob) // 2, 5, 4, 1):
        fleet.set_result(blob[:cut])
        assert_recovers(fleet)


def test_a_result_written_by_a_version_without_checksums_is_dropped(fleet: Fleet) -> None:
    fleet.set_result(marshal.dumps(fleet.record()))
    assert_recovers(fleet)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r[:-1],  # a field short
        lambda r: (*r, None),  # a field more
        lambda r: list(r),  # a list, not a tuple
        lambda r: (*r[:3], "sometimes", *r[4:]),  # not an automation level
        lambda r: (*r[:4], 1, *r[5:]),  # valid is not a boolean
        lambda r: (*r[:5], (("h", "p"),), *r[6:]),  # a host without its line
        lambda r: (*r[:6], "1", *r[7:]),  # a line that is text
        lambda r: (*r[:6], -1, *r[7:]),  # a negative line
        lambda r: (*r[:9], ("m", "p", 1), *r[10:]),  # invalid, though valid is true
        lambda r: (*r[:10], (("rule", "path", "message"),)),  # a violation without its line
        lambda r: (*r[:10], (("rule", "path", "message", 3, 7),)),  # a failed rule that is a number
        lambda r: (*r[:10], [("rule", "path", "message", 3, None)]),  # violations in a list
        lambda r: {"record": r},
    ],
)
def test_a_result_of_the_wrong_shape_is_dropped(fleet: Fleet, change: Any) -> None:
    """Records that decode (the checksum matches) but are not what the cache writes."""
    bad = change(fleet.record())
    assert not is_record(bad)
    fleet.set_result(pack_record(bad))
    assert_recovers(fleet)


@pytest.mark.parametrize("team", ["not json", "42", '{"a": 1}', "[", None, 7, b"\x00"])
def test_a_damaged_team_entry_is_dropped(fleet: Fleet, team: object) -> None:
    with fleet.db() as db:
        db.execute("UPDATE teams SET team = ? WHERE content = ?", (team, fleet.content(2)))
    assert_recovers(fleet)


def test_every_entry_damaged_at_once(fleet: Fleet) -> None:
    with fleet.db() as db:
        db.execute("UPDATE results SET result = X'00'")
    assert_recovers(fleet, dropped=4)


# --- random damage -------------------------------------------------------------------------------

_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTY
@given(data=st.binary(max_size=600))
def test_random_bytes_in_the_result_column(fleet: Fleet, data: bytes) -> None:
    fleet.set_result(data)
    assert_recovers(fleet)


@_PROPERTY
@given(data=st.binary(max_size=600))
def test_random_bytes_behind_a_matching_checksum(fleet: Fleet, data: bytes) -> None:
    """What reaches marshal and the shape check when the checksum cannot help (as if a version
    with a bug had written it)."""
    assume(unpack_record(zlib.crc32(data).to_bytes(4, "big") + data) is None)
    fleet.set_result(zlib.crc32(data).to_bytes(4, "big") + data)
    assert_recovers(fleet)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=12) | st.lists(children, max_size=12).map(tuple)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30,
)


@_PROPERTY
@given(value=_VALUES, position=st.integers(min_value=0, max_value=10), replace=st.booleans())
def test_random_values_in_a_record(fleet: Fleet, value: Any, position: int, replace: bool) -> None:
    """A decodable record with one field replaced by any value, or any value instead of it."""
    record = fleet.record()
    bad = (*record[:position], value, *record[position + 1 :]) if replace else value
    assume(not is_record(bad))
    fleet.set_result(pack_record(bad))
    assert_recovers(fleet)


# --- a damaged file ------------------------------------------------------------------------------


def assert_rebuilt(fleet: Fleet, why: str) -> None:
    findings, stats, err = fleet.run()
    assert findings == fleet.expected and stats["evaluated"] == 4
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pipewarden: note: the cache file {fleet.cache / CACHE_FILE} ")
    assert why in lines[0] and lines[0].endswith("it was deleted and is built again")
    findings, stats, err = fleet.run()
    assert (findings, stats, err) == (fleet.expected, {"hits": 4, "evaluated": 0}, "")


@pytest.mark.parametrize(
    "content", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["text", "bad-header"],
)
def test_a_file_that_is_not_sqlite(fleet: Fleet, content: bytes) -> None:
    (fleet.cache / CACHE_FILE).write_bytes(content)
    assert_rebuilt(fleet, "is damaged")


def test_a_truncated_file(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    fleet.cache.mkdir()
    # A cache big enough to span many pages, with everything in the main file.
    with contextlib.closing(sqlite3.connect(str(fleet.cache / CACHE_FILE))) as db:
        db.execute("CREATE TABLE results (content TEXT, settings TEXT, team TEXT, result BLOB,"
                   " PRIMARY KEY (content, settings))")
        db.execute("CREATE TABLE teams (content TEXT PRIMARY KEY, team TEXT)")
        with db:
            db.executemany("INSERT INTO results VALUES (?, ?, 'null', ?)",
                           [(f"c{i:05d}", "s", b"x" * 400) for i in range(3000)])
            db.executemany("INSERT INTO teams VALUES (?, 'null')", [(f"c{i:05d}",) for i in range(3000)])
    fleet.run()  # the fleet's own entries, after the others
    with contextlib.closing(sqlite3.connect(str(fleet.cache / CACHE_FILE))) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (fleet.cache / CACHE_FILE).stat().st_size
    with open(fleet.cache / CACHE_FILE, "r+b") as handle:
        handle.truncate(size // 2)
    assert_rebuilt(fleet, "is damaged")


@pytest.mark.parametrize(
    "schema",
    [
        "CREATE TABLE results (content TEXT, result BLOB); CREATE TABLE teams (content TEXT PRIMARY KEY, team TEXT)",
        "CREATE TABLE results (content TEXT, settings TEXT, team TEXT, result BLOB); CREATE TABLE teams (x)",
        "CREATE TABLE results (content TEXT, settings TEXT, team TEXT, result BLOB)",  # no primary key
        "CREATE TABLE other (x); CREATE VIEW results AS SELECT x FROM other",
        "CREATE TABLE teams (content TEXT, team TEXT, extra TEXT)",
    ],
    ids=["old-results", "bad-teams", "no-key", "view", "extra-column"],
)
def test_tables_of_another_layout(tmp_path: Path, schema: str) -> None:
    fleet = Fleet(tmp_path)
    fleet.cache.mkdir()
    with contextlib.closing(sqlite3.connect(str(fleet.cache / CACHE_FILE))) as db:
        db.executescript(schema)
    assert_rebuilt(fleet, "tables of another layout")


def test_an_empty_file_is_an_empty_cache(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    fleet.cache.mkdir()
    (fleet.cache / CACHE_FILE).write_bytes(b"")
    assert fleet.run() == (fleet.expected, {"hits": 0, "evaluated": 4}, "")
    assert fleet.run() == (fleet.expected, {"hits": 4, "evaluated": 0}, "")


def test_a_cache_file_that_is_a_directory_is_not_used(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    (fleet.cache / CACHE_FILE).mkdir(parents=True)
    findings, _, err = fleet.run()
    assert findings == fleet.expected and err == ""


# --- through the command line --------------------------------------------------------------------


def test_the_command_line_with_a_damaged_entry(tmp_path: Path) -> None:
    """The issue's case: an entry whose result does not decode ended every run with an internal
    error. Now: the same report as without the cache, exit 1 as before, and one note."""
    root = make_fleet(tmp_path)
    cache = tmp_path / "cache"
    for fmt in ("text", "json"):
        args = ("check", str(root), "--now", NOW, "--format", fmt)
        fresh = run_cli(*args, "--no-cache")
        first = run_cli(*args, "--cache-dir", str(cache))
        assert (first.exit_code, first.stdout) == (fresh.exit_code, fresh.stdout) and fresh.exit_code == 1
        with contextlib.closing(sqlite3.connect(str(cache / CACHE_FILE))) as db, db:
            db.execute("UPDATE results SET result = X'DEADBEEF'")
        damaged = run_cli(*args, "--cache-dir", str(cache))
        assert (damaged.exit_code, damaged.stdout) == (fresh.exit_code, fresh.stdout)
        assert damaged.stderr.count("\n") == 1 and "dropped 4 damaged cache entries" in damaged.stderr
        again = run_cli(*args, "--cache-dir", str(cache))
        assert (again.exit_code, again.stdout, again.stderr) == (fresh.exit_code, fresh.stdout, "")
    (cache / CACHE_FILE).write_bytes(b"\x00" * 4096)
    broken = run_cli("check", str(root), "--now", NOW, "--format", "json", "--cache-dir", str(cache))
    assert broken.exit_code == 1 and json.loads(broken.stdout)["summary"]["pipelines"] == 4
    assert "is damaged" in broken.stderr and broken.stderr.count("\n") == 1


def test_report_with_a_damaged_entry(tmp_path: Path) -> None:
    root = make_fleet(tmp_path)
    org = tmp_path / "org"
    org.mkdir()
    (org / "acme.yaml").write_text("apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n")
    cache = tmp_path / "cache"
    args = ("report", "--org-config", str(org), str(root), "--format", "json", "--now", NOW, "--cache-dir", str(cache))
    first = run_cli(*args)
    assert first.exit_code == 0, first.stderr
    with contextlib.closing(sqlite3.connect(str(cache / CACHE_FILE))) as db, db:
        db.execute("UPDATE results SET result = 'text'")
    damaged = run_cli(*args)
    assert (damaged.exit_code, damaged.stdout) == (0, first.stdout)
    assert "dropped 4 damaged cache entries" in damaged.stderr
