"""Incremental check cache: per-file results keyed by content and by everything that applied.

An entry is found by the SHA-256 of the file's bytes; under it, results are kept per
*settings key*: the hash of the policies (every Rego file and schema of the run, and the
pipewarden version), the org node the pipeline's team resolves to, and that node's rule
params and enabled rules. Change a file, a rule, a parameter or an org's settings and the key
changes, so a stale answer cannot be served; only the affected pipelines are re-evaluated.
Levels, schedules and exceptions are applied after the cache (they depend on today), and the
fleet-wide rule always runs on the whole fleet.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sqlite3
import stat
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from pipewarden import __version__
from pipewarden.evaluate import EvalContext
from pipewarden.load.yamlsafe import MAX_BYTES
from pipewarden.model.evaluated import Evaluated, from_record, to_record

SCHEMA_VERSION = 2
# How long a batch waits for another process's write to the cache (the two workers of a run
# take turns; their writes take milliseconds).
WRITE_WAIT_SECONDS = 5.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pipewarden"


def _policy_hash(context: EvalContext) -> str:
    digest = hashlib.sha256(f"{__version__}/{SCHEMA_VERSION}".encode())
    for path in sorted(context.catalog.rego_files()):
        digest.update(path.encode())
        digest.update(Path(path).read_bytes())
    # The package's own code and schemas too: a new pipewarden never reads an older one's results.
    package = Path(__file__).parent
    for source in sorted([*package.rglob("*.py"), *package.glob("schemas/*.json")]):
        digest.update(source.read_bytes())
    return digest.hexdigest()


class CheckCache:
    """A SQLite file of per-file results (marshalled tuples). Safe to delete at any time."""

    def __init__(self, directory: Path, context: EvalContext) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._file = str(directory / "check-cache.sqlite")
        self._db = sqlite3.connect(self._file)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (content TEXT, settings TEXT, team TEXT, result BLOB,"
            " PRIMARY KEY (content, settings))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS teams (content TEXT PRIMARY KEY, team TEXT)")
        self._context = context
        self._policies = _policy_hash(context)
        self._settings_keys: dict[str | None, str] = {}
        self._write_failed = False

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
        """
        if self._db.execute("SELECT 1 FROM teams LIMIT 1").fetchone() is None:
            return {}
        keys = {p: k for p in paths if (k := self.content_key(p)) is not None}
        rows = self._db.execute("SELECT content, team FROM teams").fetchall() if keys else []
        known = {content: json.loads(team) for content, team in rows}
        hits: dict[str, Evaluated] = {}
        wanted: dict[tuple[str, str], list[str]] = {}
        for path, content in keys.items():
            if content not in known:
                continue
            wanted.setdefault((content, self.settings_key(known[content])), []).append(path)
        pairs = list(wanted)
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
                for path in group:
                    hits[path] = from_record(marshal.loads(blob), path, content)
        return hits

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
            rows_results.append((content, self.settings_key(team), json.dumps(team), marshal.dumps(to_record(result))))
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
    paths: list[str], context: EvalContext, directory: Path, progress: Any = None, stats: dict[str, int] | None = None
) -> list[Evaluated]:
    """`evaluate_paths` with the cache: only new or changed files (or settings) are evaluated.

    `stats`, when given, receives the numbers of cache hits and of files evaluated.
    """
    from pipewarden.evaluate import evaluate_paths

    try:
        cache = CheckCache(directory, context)
    except (OSError, sqlite3.Error):
        # An unwritable or corrupt cache must never stop a check: run without it.
        return evaluate_paths(paths, context, progress)
    try:
        hits = cache.lookup(paths)
    except sqlite3.Error:
        hits = {}
    finally:
        cache.close()  # before any fork: workers store through connections of their own
    misses = [p for p in paths if p not in hits]
    if stats is not None:
        stats.update(hits=len(hits), evaluated=len(misses))
    if progress and hits:
        progress(len(hits))
    fresh = evaluate_paths(misses, context, progress, after_batch=cache.store) if misses else []
    by_path = dict(hits)
    by_path.update((e.summary.file, e) for e in fresh)
    return [by_path[p] for p in paths]
