"""`check`'s run as one typed function: find the pipeline files under PATHs, check them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.result import Result
from pipewarden.evaluation.run import ProgressDisplay, check_files
from pipewarden.load.discover import discover


def check_paths(
    paths: Sequence[str],
    context: EvalContext,
    cache_dir: Path | None = None,
    progress: ProgressDisplay | None = None,
) -> Result:
    """Discover pipeline files under `paths` (default: the current directory) and check them.

    With `cache_dir`, unchanged files under unchanged settings are not evaluated again;
    `progress`, when given, shows the run's progress (the CLI's bar). Finding no file is a note
    on the result, not an error.
    """
    files = discover(list(paths) or ["."])
    notes = [] if files else [f"no pipeline file found under {', '.join(paths) or '.'}"]
    return check_files(files, context, cache_dir=cache_dir, progress=progress, notes=notes)
