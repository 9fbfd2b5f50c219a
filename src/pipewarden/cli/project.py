"""The project config on the command line: `.pipewarden.yaml` (in the working directory or the
nearest parent) gives the checker's commands their option defaults, through click's default map,
so that an option given on the command line always wins.

The root group calls `project_defaults` once it knows which command runs: only the checker's
commands (`PROJECT_COMMANDS`) read the file; the release engine's never do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from pipewarden.load.discover import Exclude
    from pipewarden.model.project import ProjectConfig

PROJECT_COMMANDS = frozenset({"check", "report", "rules", "exceptions", "config", "policy"})
# Arguments that stand for a key of the project config (options have the key's own name).
_ARGUMENTS = {("test", "dirs"): "policies", ("validate", "directory"): "org_config"}
_META = "pipewarden.project_config"


def project_defaults(ctx: click.Context, name: str, command: click.Command, args: list[str]) -> None:
    """Load the project config for command `name` and put its values into `ctx.default_map`.

    Nothing is read for other commands, nor for `--help` (so that help shows even while the
    file is broken); a broken file is a ConfigError naming its file and line.
    """
    if name not in PROJECT_COMMANDS or any(arg in ("-h", "--help") for arg in args):
        return
    from pipewarden.load.project import find_project_config, load_project_config

    path = find_project_config()
    if path is None:
        return
    config = load_project_config(path)
    ctx.meta[_META] = config
    defaults = _defaults(command, config.options)
    if defaults:
        ctx.default_map = {**(ctx.default_map or {}), name: defaults}


def _defaults(command: click.Command, options: dict[str, Any]) -> dict[str, Any]:
    """The default map of `command` (and of its subcommands, for a group)."""
    found: dict[str, Any] = {}
    for param in command.params:
        if param.name is None:
            continue
        key = _ARGUMENTS.get((command.name or "", param.name), param.name)
        if key in options and (isinstance(param, click.Option) or (command.name, param.name) in _ARGUMENTS):
            found[param.name] = options[key]
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            sub_defaults = _defaults(sub, options)
            if sub_defaults:
                found[sub_name] = sub_defaults
    return found


def project_config(ctx: click.Context) -> ProjectConfig | None:
    """The project config this run read, if any."""
    config: ProjectConfig | None = ctx.meta.get(_META)
    return config


def from_project(ctx: click.Context, param: str) -> bool:
    """Did option `param` take its value from the project config?"""
    return ctx.get_parameter_source(param) is ParameterSource.DEFAULT_MAP


def option_source(ctx: click.Context, param: str, option: str) -> str:
    """How a message names where an option's value came from: `--fail-on`, or
    `fail_on in .pipewarden.yaml`."""
    config = project_config(ctx)
    if config is not None and from_project(ctx, param):
        return f"{param} in {config.file}"
    return option


exclude_option = click.option(
    "--exclude", "exclude", multiple=True, metavar="GLOB",
    help="Skip discovered files matching the glob (repeatable; matched against the path as given; "
         "** spans folders, a matching folder is skipped whole).",
)


def exclude_globs(globs: tuple[str, ...]) -> Exclude | None:
    """`--exclude` of the running command as discovery takes it: globs from the project config
    are relative to its folder, those given on the command line are matched against the path as
    given."""
    if not globs:
        return None
    from pipewarden.load.discover import Exclude

    ctx = click.get_current_context()
    config = project_config(ctx)
    if config is not None and from_project(ctx, "exclude"):
        return Exclude(config_globs=globs, base=config.base)
    return Exclude(globs=globs)
