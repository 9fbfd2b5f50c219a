"""The fleet a run reads: `load_fleet`, the one reading of `--inventory FILE | PATH...` (report
and the promotion preview)."""

from __future__ import annotations

from collections.abc import Sequence

from pipewarden.errors import UsageError
from pipewarden.load.discover import Exclude, discover_files
from pipewarden.load.inventory import Fleet, load_inventory, resolve_inventory


def load_fleet(
    paths: Sequence[str], inventory: str | None, cache_dir: str | None, exclude: Exclude | None = None
) -> Fleet:
    """The fleet from an inventory (git repositories cloned or fetched into `cache_dir`, default:
    pipewarden's cache directory), or the pipeline files under PATHs like `check` (no PATH: the
    current directory; `exclude` as check's --exclude). Without an inventory each file is a
    repository of its own (`Fleet.repos` stays empty); finding no file is a note, not an error.
    An inventory names each repository's file (or the few places it may be), so its files are
    not discovered: each is checked, as a file named on the command line."""
    if inventory is not None:
        if paths:
            raise UsageError("give either --inventory FILE or PATHs, not both")
        return resolve_inventory(load_inventory(inventory), cache_dir)
    given = list(paths) or ["."]
    found = discover_files(given, exclude)
    fleet = Fleet(paths=found.files, discovered=found.discovered)
    if not fleet.paths:
        excluded = f" ({found.excluded} excluded)" if found.excluded else ""
        fleet.notes.append(f"no pipeline file found under {', '.join(given)}{excluded}")
    return fleet
