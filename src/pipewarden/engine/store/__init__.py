"""The engine store: SQLAlchemy Core tables (tables.py) and the typed `EngineStore` (store.py)
over SQLite (the default, `engine.db` in the state dir) or, later, PostgreSQL."""

from pipewarden.engine.store.records import (
    ExecutionRecord,
    HookRunRecord,
    HookRunStart,
    HostRecord,
    PipelineRecord,
    StageRunRecord,
)
from pipewarden.engine.store.store import EngineStore, default_url

__all__ = [
    "EngineStore", "ExecutionRecord", "HookRunRecord", "HookRunStart", "HostRecord", "PipelineRecord",
    "StageRunRecord", "default_url",
]
