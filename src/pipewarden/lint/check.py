"""`check`'s run as one typed function: find the pipeline files under PATHs, check them, and with
`--base` compare with the same files at that ref."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.result import Result
from pipewarden.evaluation.run import ProgressDisplay, check_files
from pipewarden.load.discover import Exclude, discover_files
from pipewarden.model.finding import Finding

FAIL_ON_LEVELS = ("enforce", "warn", "new")


@dataclass(frozen=True)
class CheckRun:
    """A check's result (with `--base`, every finding marked new or existing) and, with `--base`,
    the findings the change fixed."""

    result: Result
    fixed: tuple[Finding, ...] | None = None


def check_paths(
    paths: Sequence[str],
    context: EvalContext,
    cache_dir: Path | None = None,
    progress: ProgressDisplay | None = None,
    exclude: Exclude | None = None,
    as_discovered: bool = False,
) -> Result:
    """Discover pipeline files under `paths` (default: the current directory) and check them.

    With `cache_dir`, unchanged files under unchanged settings are not evaluated again;
    `progress`, when given, shows the run's progress (the CLI's bar). Finding no file is a note
    on the result, not an error; so is skipping discovered files of other tools. `as_discovered`
    judges files named in `paths` as discovered ones (see `discover_files`).
    """
    return _check(paths, context, cache_dir, progress, exclude, as_discovered)[0]


def _check(
    paths: Sequence[str],
    context: EvalContext,
    cache_dir: Path | None,
    progress: ProgressDisplay | None,
    exclude: Exclude | None,
    as_discovered: bool,
) -> tuple[Result, frozenset[str]]:
    given = list(paths) or ["."]
    found = discover_files(given, exclude, as_discovered)
    notes = []
    if not found.files:
        excluded = f" ({found.excluded} excluded)" if found.excluded else ""
        notes.append(f"no pipeline file found under {', '.join(given)}{excluded}")
    result = check_files(found.files, context, cache_dir=cache_dir, progress=progress, notes=notes,
                         discovered=found.discovered)
    return result, found.discovered


def check_fail_on(fail_on: str, base: str | None, source: str = "--fail-on") -> None:
    """`--fail-on new` needs `--base`: without it no finding is new, and the check could not fail."""
    if fail_on not in FAIL_ON_LEVELS:
        raise UsageError(f"{source} {fail_on!r} is not one of: {', '.join(FAIL_ON_LEVELS)}")
    if fail_on == "new" and base is None:
        raise UsageError(
            f"{source} new needs --base GIT_REF (only findings new since that ref fail); "
            "add --base origin/main, or use --fail-on enforce"
        )


def run_check(
    paths: Sequence[str],
    context: EvalContext,
    *,
    base: str | None = None,
    cache_dir: Path | None = None,
    progress: ProgressDisplay | None = None,
    exclude: Exclude | None = None,
    as_discovered: bool = False,
    config: str | None = None,
) -> CheckRun:
    """The whole `check`: discover, check, and with `base` compare with the files at that ref
    (judged as discovery judged them: a discovered file that was another tool's at the base had
    no findings there). `config` is the project config the options came from (named in the
    outputs)."""
    result, discovered = _check(paths, context, cache_dir, progress, exclude, as_discovered)
    if config is not None:
        result = replace(result, config=config)
    if base is None:
        return CheckRun(result)
    from pipewarden.lint.baseline import compare_with_base

    comparison = compare_with_base(result, base, discovered)
    return CheckRun(comparison.result, comparison.fixed)
