"""Incremental check cache: per-file results keyed by content and by everything that applied.

An entry is found by the SHA-256 of the file's bytes; under it, results are kept per
*settings key*: the hash of the policies (every Rego file and schema of the run, and the
pipewarden version), the org node the pipeline's team resolves to, and that node's rule
params and enabled rules. Change a file, a rule, a parameter or an org's settings and the key
changes, so a stale answer cannot be served; only the affected pipelines are re-evaluated.
Levels, schedules and exceptions are applied after the cache (they depend on today), and the
fleet-wide rule always runs on the whole fleet.

The cache is never a reason for a run to fail. A damaged entry (a result that does not decode,
fails its checksum or does not have the shape of a result; a team that is not a name) is
dropped, its file evaluated again, and a one-line note says so; a file that is not SQLite, is
corrupt, or has tables of another layout is deleted or its tables remade, with a note; a cache
that cannot be opened at all (unwritable, locked) is silently not used. Notes go on the run's
result (`Result.notes`); the front shows them.

The cache lives in pipewarden's cache directory (`load.gitrepo.default_cache_dir`, which also
holds the inventory's git mirrors) unless the caller names another.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sqlite3
import stat
import zlib
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from pipewarden import __version__
from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.pool import evaluate_paths
from pipewarden.load.yamlsafe import MAX_BYTES
from pipewarden.model.evaluated import Evaluated, from_record, is_record, to_record

SCHEMA_VERSION = 4  # 4: records carry `foreign`
# How long a batch waits for another process's write to the cache (the two workers of a run
# take turns; their writes take milliseconds).
WRITE_WAIT_SECONDS = 5.0
CACHE_FILE = "check-cache.sqlite"
# The tables and their columns, (name, primary-key position) each as `PRAGMA table_info` says.
_RESULTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS results (content TEXT, settings TEXT, team TEXT, result BLOB, "
    "PRIMARY KEY (content, settings))"
)
_TABLES = {
    "results": (_RESULTS_TABLE, (("content", 1), ("settings", 2), ("team", 0), ("result", 0))),
    "teams": ("CREATE TABLE IF NOT EXISTS teams (content TEXT PRIMARY KEY, team TEXT)", (("content", 1), ("team", 0))),
}
# Each stored result starts with a checksum of the rest (CRC-32, four bytes: it is there to
# find damage, not forgery), so that damage is found before the bytes reach `marshal`, which is
# not meant for data it did not write.
_CHECKSUM_BYTES = 4
# SQLite's primary result codes: a generic error, a damaged file, a file that is no database.
_SQLITE_ERROR, _SQLITE_CORRUPT, _SQLITE_NOTADB = 1, 11, 26


class _OtherLayout(sqlite3.DatabaseError):
    """The file is a database, but its tables are not this version's."""


def _checksum(data: bytes | memoryview) -> bytes:
    return zlib.crc32(data).to_bytes(_CHECKSUM_BYTES, "big")


def pack_record(record: tuple[Any, ...]) -> bytes:
    """A result as stored: checksum, then the marshalled record."""
    data = marshal.dumps(record)
    return _checksum(data) + data


def unpack_record(blob: object) -> tuple[Any, ...] | None:
    """The record stored in `blob`, or None when the blob is damaged in any way."""
    if not isinstance(blob, bytes) or len(blob) <= _CHECKSUM_BYTES:
        return None
    data = memoryview(blob)[_CHECKSUM_BYTES:]
    if _checksum(data) != blob[:_CHECKSUM_BYTES]:
        return None
    try:
        record = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return record if is_record(record) else None


def _unpack_team(text: object) -> tuple[bool, str | None]:
    """(readable, team) of a stored team: JSON of a name or null."""
    if not isinstance(text, str):
        return False, None
    try:
        team = json.loads(text)
    except ValueError:
        return False, None
    return (True, team) if team is None or isinstance(team, str) else (False, None)


def is_damage(error: sqlite3.Error) -> bool:
    """A corrupt file or a file that is not a database (not a lock, a full disk or a bad path)."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _policy_hash(context: EvalContext) -> str:
    digest = hashlib.sha256(f"{__version__}/{SCHEMA_VERSION}".encode())
    for path in sorted(context.catalog.rego_files()):
        digest.update(path.encode())
        digest.update(Path(path).read_bytes())
    # The package's own code and schemas too: a new pipewarden never reads an older one's results.
    package = Path(__file__).parent.parent
    for source in sorted([*package.rglob("*.py"), *package.glob("schemas/*.json")]):
        digest.update(source.read_bytes())
    return digest.hexdigest()


class CheckCache:
    """A SQLite file of per-file results (marshalled tuples). Safe to delete at any time.

    What the run should be told (a damaged file or entry, repaired) is added to `notes` (the run's
    list when given).
    """

    def __init__(self, directory: Path, context: EvalContext, notes: list[str] | None = None) -> None:
        self.notes: list[str] = notes if notes is not None else []
        directory.mkdir(parents=True, exist_ok=True)
        self._file = str(directory / CACHE_FILE)
        try:
            self._db = self._open()
        except _OtherLayout as exc:
            self._remove(f"the cache file {self._file} has {exc}; it was deleted and is built again")
            self._db = self._open()
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise  # locked, unwritable...: the caller runs without the cache
            self._remove(f"the cache file {self._file} is damaged ({exc}); it was deleted and is built again")
            self._db = self._open()
        self._context = context
        self._policies = _policy_hash(context)
        self._settings_keys: dict[str | None, str] = {}
        self._write_failed = False

    def _open(self) -> sqlite3.Connection:
        """A connection with the tables in place; _OtherLayout when they are not this version's."""
        db = sqlite3.connect(self._file)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            try:
                for create, _ in _TABLES.values():
                    db.execute(create)
            except sqlite3.Error as exc:  # the name is taken by a view, an index...
                if getattr(exc, "sqlite_errorcode", None) == _SQLITE_ERROR:
                    raise _OtherLayout(f"tables of another layout ({exc})") from None
                raise
            wrong = [
                name for name, (_, columns) in _TABLES.items()
                if tuple((row[1], row[5]) for row in db.execute(f"PRAGMA table_info({name})")) != columns
            ]
            if wrong:
                raise _OtherLayout(f"tables of another layout ({', '.join(wrong)})")
        except BaseException:
            db.close()
            raise
        return db

    def _remove(self, why: str) -> None:
        """Delete the cache file (and SQLite's side files), with a note saying why."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(self._file + suffix)
            except FileNotFoundError:
                pass
        self.notes.append(f"note: {why}")

    def settings_key(self, team: str | None) -> str:
        """What, besides the file's content, decides a file's per-document result."""
        node = self._context.node_of(team)
        if node not in self._settings_keys:
            settings = self._context.settings(node)
            enabled = {r: s.params for r, s in sorted(settings.items()) if s.level != "off"}
            blob = json.dumps([self._policies, node, enabled], sort_keys=True, default=str)
            self._settings_keys[node] = hashlib.sha256(blob.encode()).hexdigest()
        return self._settings_keys[node]

    @staticmethod
    def content_key(path: str) -> str | None:
        """SHA-256 of a regular file of at most 1 MiB; None for anything else (never cached)."""
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                return None
            with open(path, "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            return None

    def lookup(self, paths: list[str]) -> dict[str, Evaluated]:
        """Cached results by path (the files whose content and settings are known).

        An empty cache (a first run) answers at once, without reading every file for its hash.
        A damaged entry is dropped (its file is evaluated again), with a note; a damaged file is
        deleted, with a note, and answers nothing.
        """
        try:
            return self._lookup(paths)
        except sqlite3.Error as exc:
            if is_damage(exc):
                self._db.close()
                self._remove(f"the cache file {self._file} is damaged ({exc}); it was deleted and is built again")
                self._db = self._open()
            return {}

    def _lookup(self, paths: list[str]) -> dict[str, Evaluated]:
        if self._db.execute("SELECT 1 FROM teams LIMIT 1").fetchone() is None:
            return {}
        keys = {p: k for p in paths if (k := self.content_key(p)) is not None}
        rows = self._db.execute("SELECT content, team FROM teams").fetchall() if keys else []
        known: dict[str, str | None] = {}
        bad_teams: list[str] = []
        for content, text in rows:
            readable, team = _unpack_team(text)
            if readable:
                known[content] = team
            else:
                bad_teams.append(content)
        hits: dict[str, Evaluated] = {}
        wanted: dict[tuple[str, str], list[str]] = {}
        for path, content in keys.items():
            if content not in known:
                continue
            wanted.setdefault((content, self.settings_key(known[content])), []).append(path)
        pairs = list(wanted)
        bad_results: list[tuple[str, str]] = []
        for start in range(0, len(pairs), 400):  # one query per batch, not one per file
            batch = pairs[start : start + 400]
            contents = [content for content, _ in batch]
            marks = ",".join("?" * len(contents))
            rows = self._db.execute(
                f"SELECT content, settings, result FROM results WHERE content IN ({marks})", contents
            ).fetchall()
            for content, settings, blob in rows:
                group = wanted.get((content, settings))
                if group is None:
                    continue
                record = unpack_record(blob)
                if record is None:
                    bad_results.append((content, settings))
                    continue
                for path in group:
                    hits[path] = from_record(record, path, content)
        if bad_teams or bad_results:
            self._drop(bad_teams, bad_results)
        return hits

    def _drop(self, teams: list[str], results: list[tuple[str, str]]) -> None:
        """Delete damaged rows (best effort: evaluating the files again replaces them anyway)."""
        try:
            with self._db:
                self._db.executemany("DELETE FROM teams WHERE content = ?", [(c,) for c in teams])
                self._db.executemany("DELETE FROM results WHERE content = ?", [(c,) for c in teams])
                self._db.executemany("DELETE FROM results WHERE content = ? AND settings = ?", results)
        except sqlite3.Error:
            pass
        count = len(teams) + len(results)
        self.notes.append(f"note: dropped {count} damaged cache entr{'y' if count == 1 else 'ies'} from "
                          f"{self._file}; the files are checked again")

    def store(self, results: Iterable[Evaluated]) -> None:
        """Keep fresh results under the hash of the bytes each was computed from.

        Runs in the process that evaluated the batch (a worker, for large runs), each batch on
        a connection of its own (a connection must not cross a fork). A failed write is skipped,
        since the results themselves are right; after one, this process stops trying, so a cache
        locked by another run costs one short wait, not one per batch.
        """
        if self._write_failed:
            return
        rows_results: list[tuple[str, str, str, bytes]] = []
        rows_teams: list[tuple[str, str]] = []
        for result in results:
            content = result.content_hash
            if content is None:
                continue
            team = result.summary.team
            rows_teams.append((content, json.dumps(team)))
            rows_results.append((content, self.settings_key(team), json.dumps(team), pack_record(to_record(result))))
        try:
            with closing(sqlite3.connect(self._file, timeout=WRITE_WAIT_SECONDS)) as db, db:
                db.execute("PRAGMA synchronous=NORMAL")
                db.executemany("INSERT OR REPLACE INTO teams VALUES (?, ?)", rows_teams)
                db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", rows_results)
        except sqlite3.Error:
            self._write_failed = True  # another run held the lock too long, or the disk is full

    def close(self) -> None:
        self._db.close()


def cached_evaluate(
    paths: list[str],
    context: EvalContext,
    directory: Path,
    progress: Callable[[int], None] | None = None,
    stats: dict[str, int] | None = None,
    notes: list[str] | None = None,
) -> list[Evaluated]:
    """`evaluate_paths` with the cache: only new or changed files (or settings) are evaluated.

    `stats`, when given, receives the numbers of cache hits and of files evaluated; `notes`, the
    run's notes (the cache's, then the evaluation's).
    """
    try:
        cache = CheckCache(directory, context, notes)
    except (OSError, sqlite3.Error):
        # An unwritable, locked or irreparable cache must never stop a check: run without it.
        return evaluate_paths(paths, context, progress, notes=notes)
    try:
        hits = cache.lookup(paths)
    except (OSError, sqlite3.Error):
        hits = {}
    finally:
        cache.close()  # before any fork: workers store through connections of their own
    misses = [p for p in paths if p not in hits]
    if stats is not None:
        stats.update(hits=len(hits), evaluated=len(misses))
    if progress and hits:
        progress(len(hits))
    fresh = evaluate_paths(misses, context, progress, after_batch=cache.store, notes=notes) if misses else []
    by_path = dict(hits)
    by_path.update((e.summary.file, e) for e in fresh)
    return [by_path[p] for p in paths]
