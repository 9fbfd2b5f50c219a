"""Builders shared by the engine's domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipewarden.model.view import HookView, MinHealthy, StageView, TargetView

T0 = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def stage(name: str = "prod-canary", targets: dict[str, list[str]] | None = None, *,
          min_healthy: str | int | None = None, hooks: tuple[str, ...] = ("start", "validate"),
          approvals: tuple[str, ...] = (), bake_seconds: int = 0) -> StageView:
    targets = targets or {"cell-1": ["127.0.0.1:9301", "127.0.0.1:9302", "127.0.0.1:9306"]}
    return StageView(
        index=0, name=name, type="prod",
        targets=tuple(TargetView(t, tuple(hosts)) for t, hosts in targets.items()),
        hooks=tuple(HookView(phase, f"./deploy/{phase}.sh") for phase in hooks),
        min_healthy=None if min_healthy is None else MinHealthy.parse(min_healthy),
        approvals=approvals, bake_seconds=bake_seconds,
    )


def require_temporal() -> None:
    """Skip (loudly) when Temporal's dev server binary cannot run here."""
    import pytest

    from pipewarden.engine.devserver import DevServerError, temporal_binary

    try:
        temporal_binary()
    except DevServerError as error:
        pytest.skip(f"NO TEMPORAL DEV SERVER: {error}")
