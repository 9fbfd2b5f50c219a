"""The fleet a run reads: `load_fleet`, the one reading of `--inventory FILE | PATH...` (report
and the promotion preview)."""

from __future__ import annotations

from collections.abc import Sequence

from pipewarden.errors import UsageError
from pipewarden.load.discover import discover
from pipewarden.load.inventory import Fleet, load_inventory, resolve_inventory


def load_fleet(paths: Sequence[str], inventory: str | None, cache_dir: str | None) -> Fleet:
    """The fleet from an inventory (git repositories cloned or fetched into `cache_dir`, default:
    pipewarden's cache directory), or the pipeline files under PATHs like `check` (no PATH: the
    current directory). Without an inventory each file is a repository of its own (`Fleet.repos`
    stays empty); finding no file is a note, not an error."""
    if inventory is not None:
        if paths:
            raise UsageError("give either --inventory FILE or PATHs, not both")
        return resolve_inventory(load_inventory(inventory), cache_dir)
    given = list(paths) or ["."]
    fleet = Fleet(paths=discover(given))
    if not fleet.paths:
        fleet.notes.append(f"no pipeline file found under {', '.join(given)}")
    return fleet
