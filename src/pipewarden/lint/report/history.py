"""Report history: each `report --history DB` run, kept so the next run can show what changed.

`HistoryStore` is the interface a report needs; `SqliteHistory` implements it in one file, which
is all a single leader or a CI job needs. A server database (for a dashboard) can implement the
same three methods later without touching the report code.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Protocol

from pipewarden.errors import UsageError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RowSnapshot:
    """One team or org row of a recorded run (`kind` is `team` or `org`)."""

    kind: str
    name: str | None
    org: str | None
    repos: int
    pipelines: int
    passing: int
    enforce: int
    warn: int
    excepted: int
    compliance: float | None


@dataclass(frozen=True)
class RunRecord:
    """One recorded report run: its totals over its scope, and its rows."""

    id: int | None
    generated_at: str
    scope: str
    teams: int
    repos: int
    pipelines: int
    passing: int
    enforce: int
    warn: int
    excepted: int
    compliance: float | None
    rows: tuple[RowSnapshot, ...] = ()


class HistoryStore(Protocol):
    """Where report runs are kept."""

    def latest_rows(self) -> tuple[dict[tuple[str, str | None], RowSnapshot], RunRecord | None]:
        """Each team's and org's most recent recorded row, and the most recent run."""
        ...

    def record(self, run: RunRecord) -> int:
        """Store a run with its rows; return its id."""
        ...

    def runs(self) -> list[RunRecord]:
        """Every recorded run, oldest first, without rows."""
        ...

    def close(self) -> None: ...


_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generated_at TEXT NOT NULL,
    scope TEXT NOT NULL,
    teams INTEGER NOT NULL,
    repos INTEGER NOT NULL,
    pipelines INTEGER NOT NULL,
    passing INTEGER NOT NULL,
    enforce INTEGER NOT NULL,
    warn INTEGER NOT NULL,
    excepted INTEGER NOT NULL,
    compliance REAL
);
CREATE TABLE IF NOT EXISTS run_rows (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT,
    org TEXT,
    repos INTEGER NOT NULL,
    pipelines INTEGER NOT NULL,
    passing INTEGER NOT NULL,
    enforce INTEGER NOT NULL,
    warn INTEGER NOT NULL,
    excepted INTEGER NOT NULL,
    compliance REAL
);
CREATE INDEX IF NOT EXISTS run_rows_by_name ON run_rows (kind, name, run_id);
"""

_RUN_COLUMNS = "id, generated_at, scope, teams, repos, pipelines, passing, enforce, warn, excepted, compliance"
_ROW_COLUMNS = "kind, name, org, repos, pipelines, passing, enforce, warn, excepted, compliance"


class SqliteHistory:
    """The default store: one SQLite file, created on first use."""

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        if not create and not os.path.isfile(path):
            raise UsageError(f"history store {path} does not exist; run `pipewarden report --history {path}` first")
        try:
            self._db = sqlite3.connect(path)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UsageError(f"history store {path} was written by a newer pipewarden (schema {version})")
            self._db.executescript(_DDL)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.commit()
        except sqlite3.Error as error:
            raise UsageError(f"cannot use the history store {path}: {error}; give a SQLite file path") from None

    def latest_rows(self) -> tuple[dict[tuple[str, str | None], RowSnapshot], RunRecord | None]:
        # Per row, its latest run: a team outside the previous run's --org scope still compares
        # with the last run that covered it.
        query = f"""
            SELECT {_ROW_COLUMNS} FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY kind, name ORDER BY run_id DESC) AS position
                FROM run_rows
            ) WHERE position = 1
        """
        try:
            rows = {(r.kind, r.name): r for r in (RowSnapshot(*item) for item in self._db.execute(query))}
            last = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.Error as error:
            raise UsageError(f"cannot read the history store {self.path}: {error}") from None
        return rows, RunRecord(*last) if last else None

    def record(self, run: RunRecord) -> int:
        try:
            with self._db:
                cursor = self._db.execute(
                    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.generated_at, run.scope, run.teams, run.repos, run.pipelines, run.passing, run.enforce,
                     run.warn, run.excepted, run.compliance),
                )
                run_id = int(cursor.lastrowid or 0)
                self._db.executemany(
                    f"INSERT INTO run_rows (run_id, {_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, r.kind, r.name, r.org, r.repos, r.pipelines, r.passing, r.enforce, r.warn, r.excepted,
                      r.compliance) for r in run.rows],
                )
        except sqlite3.Error as error:
            raise UsageError(f"cannot write the history store {self.path}: {error}") from None
        return run_id

    def runs(self) -> list[RunRecord]:
        try:
            return [RunRecord(*row) for row in self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id")]
        except sqlite3.Error as error:
            raise UsageError(f"cannot read the history store {self.path}: {error}") from None

    def close(self) -> None:
        self._db.close()


def open_store(path: str, create: bool = True) -> HistoryStore:
    """The store behind `--history PATH` (SQLite today)."""
    return SqliteHistory(path, create)


def history_runs(path: str) -> list[RunRecord]:
    """`report history`: the runs recorded in the store at `path`, oldest first."""
    store = open_store(path, create=False)
    try:
        return store.runs()
    finally:
        store.close()
