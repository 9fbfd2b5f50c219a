"""docs/reference/cli.md is complete and cannot drift from the program (issue 15, item 6).

The form the page keeps, and this test reads:

- every command has an **entry**: a Markdown heading whose code span starts with `pipewarden
  COMMAND` (`## \\`pipewarden check [PATH ...]\\``), or, for the release engine's commands, a
  table row whose first cell is such a code span. The entry's title spells each argument in
  capitals (`PATH ...`, `ID`, `DIR`);
- a heading entry's section (up to the next heading of its level or above, or the next command's
  heading) has an options table (`| option | meaning |`) whose first column names every option of
  the command in code (`` `--org-config DIR` ``, `` `-q`, `--quiet` ``), and nothing else; a row
  entry names every option in code in its other cells, and no option the command lacks. The
  values of a choice (`--fail-on`, `--to`, `--format`) are written in code in the option's row;
- every JSON output of the checker has an example in a ```json block preceded by
  `<!-- json: ID -->` (also in the README); the example's keys are compared with the program's
  real output on the bundled examples, both ways and at every depth where the example shows an
  object: a key the program writes that the example lacks fails, and so does a key the example
  shows that the program does not write.

The click command tree is walked from `pipewarden.cli.main:cli`, so a new command, argument,
option or JSON output fails here until it is documented.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest

from conftest import NOW, run_cli
from pipewarden.cli.main import cli
from pipewarden.lint.formats.registry import check_formats, report_formats

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "reference" / "cli.md"
README = ROOT / "README.md"

# Options that are deliberately not documented (hidden from --help, for pipewarden's own use).
# Each entry is "command path: option"; none today. A hidden option not listed here fails.
UNDOCUMENTED: set[str] = set()

# How cli.md spells an argument, where it is not the parameter's name in capitals (PATH ... for a
# variadic PATHS).
ARGUMENT_SPELLING = {"rule_id": "ID", "directory": "DIR", "execution": "ID"}

# Commands whose JSON is specified in engine.md (status JSON, executions, events), which cli.md
# points at; they need a running server, so the engine's own tests hold them.
ENGINE_JSON = {"status", "executions list", "executions show", "events"}

# Paths inside a JSON document whose keys are data, not names the docs fix.
FREE_FORM = {"rules list --org": {"[].params"}}

ORG = ["--org-config", "org-configs/example", "--policies", "org-configs/example/policies", "--now", NOW]


# ---------------------------------------------------------------- the click tree


def _commands(command: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    if path:
        yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands())


def _needs_entry(command: click.Command) -> bool:
    """Leaf commands and groups that run on their own (`report`); a bare group needs none."""
    return not isinstance(command, click.Group) or bool(command.params)


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def _spellings(option: click.Option) -> list[str]:
    return [*option.opts, *option.secondary_opts]


def _argument_word(argument: click.Argument) -> str:
    name = argument.name or ""
    word = ARGUMENT_SPELLING.get(name, name.upper())
    if argument.nargs == -1:
        return f"{word.removesuffix('S')} ..."
    return word


# ---------------------------------------------------------------- the page


@dataclass
class Entry:
    path: str
    title: str              # the code span that names the command
    scope: list[str]        # a heading's section lines, or the row itself
    is_row: bool
    line: int


@dataclass
class Page:
    lines: list[str]
    headings: list[tuple[int, int, str]] = field(default_factory=list)  # (line index, level, text)
    rows: list[tuple[int, str]] = field(default_factory=list)           # table rows outside code


CODE = re.compile(r"`([^`]+)`")


def _read_page(path: Path) -> Page:
    page = Page(path.read_text(encoding="utf-8").split("\n"))
    fenced = False
    for index, line in enumerate(page.lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            page.headings.append((index, len(heading.group(1)), heading.group(2)))
        elif line.startswith("|"):
            page.rows.append((index, line))
    return page


def _resolve(title: str) -> str | None:
    """The command path a code span names: the longest prefix of its words that is a command."""
    words = title.split()
    if not words or words[0] != "pipewarden":
        return None
    found, end = None, 1
    for stop in range(2, len(words) + 1):
        candidate = " ".join(words[1:stop])
        if candidate in COMMANDS:
            found, end = candidate, stop
    # After the command come its arguments in capitals: a word in lower case is a subcommand
    # the program does not have (`pipewarden report histories`).
    if found is None or any(word[:1].islower() for word in words[end:]):
        return "?" + " ".join(words[1:])
    return found


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _entries(page: Page) -> list[Entry]:
    entries = []
    command_headings = []
    for position, (index, level, text) in enumerate(page.headings):
        spans = CODE.findall(text)
        if spans and spans[0].startswith("pipewarden"):
            command_headings.append(position)
    for position in command_headings:
        index, level, text = page.headings[position]
        title = CODE.findall(text)[0]
        end = len(page.lines)
        for later in page.headings[position + 1:]:
            later_index, later_level, later_text = later
            later_spans = CODE.findall(later_text)
            if later_level <= level or (later_spans and later_spans[0].startswith("pipewarden")):
                end = later_index
                break
        path = _resolve(title)
        if path is not None:
            entries.append(Entry(path, title, page.lines[index + 1:end], False, index + 1))
    for index, row in page.rows:
        first = _cells(row)[0]
        spans = CODE.findall(first)
        if spans and spans[0].startswith("pipewarden"):
            path = _resolve(spans[0])
            if path is not None:
                entries.append(Entry(path, spans[0], [row], True, index + 1))
    return entries


PAGE = _read_page(CLI_MD)
ENTRIES = _entries(PAGE)


def _option_tokens(text: str) -> set[str]:
    """Every option spelled in code in `text` (`--org-config DIR` gives --org-config)."""
    found = set()
    for span in CODE.findall(text):
        found.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", span))
    return found


def _option_rows(entry: Entry) -> list[tuple[set[str], str]]:
    """(options named in the first cell, the whole row) of the entry's options tables."""
    if entry.is_row:
        cells = _cells(entry.scope[0])
        return [(_option_tokens(" | ".join(cells[1:])), entry.scope[0])]
    rows = []
    in_table = False
    for line in entry.scope:
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells[0] == "option":
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            rows.append((_option_tokens(cells[0]), line))
    return rows


# ---------------------------------------------------------------- commands and options


def test_the_page_has_entries() -> None:
    # A guard for the parser itself: if the page's form changes, the checks below must not pass
    # vacuously.
    assert len(ENTRIES) >= len([c for c in COMMANDS.values() if _needs_entry(c)])


def test_every_entry_names_a_command_of_the_program() -> None:
    unknown = [f"cli.md:{e.line}: `{e.title}`" for e in ENTRIES if e.path.startswith("?")]
    assert not unknown, "cli.md documents commands the program does not have:\n" + "\n".join(unknown)


@pytest.mark.parametrize("path", [p for p, c in COMMANDS.items() if _needs_entry(c)])
def test_every_command_has_one_entry(path: str) -> None:
    entries = [e for e in ENTRIES if e.path == path]
    assert entries, f"`pipewarden {path}` has no heading or table row in docs/reference/cli.md"
    assert len(entries) == 1, f"`pipewarden {path}` has several entries: lines {[e.line for e in entries]}"


def _entry(path: str) -> Entry:
    entries = [e for e in ENTRIES if e.path == path]
    if len(entries) != 1:
        pytest.skip(f"`pipewarden {path}`: no single entry (test_every_command_has_one_entry says so)")
    return entries[0]


@pytest.mark.parametrize("path", [p for p, c in COMMANDS.items() if _needs_entry(c)])
def test_every_argument_is_in_the_title(path: str) -> None:
    entry = _entry(path)
    for argument in COMMANDS[path].params:
        if isinstance(argument, click.Argument):
            word = _argument_word(argument)
            assert re.search(rf"(?<![A-Z]){re.escape(word)}(?![A-Z])", entry.title), (
                f"cli.md:{entry.line}: `{entry.title}` does not show the argument {word}")


@pytest.mark.parametrize("path", [p for p, c in COMMANDS.items() if _needs_entry(c)])
def test_every_option_is_documented_and_no_other(path: str) -> None:
    command, entry = COMMANDS[path], _entry(path)
    rows = _option_rows(entry)
    documented = set().union(*(names for names, _ in rows)) if rows else set()
    missing, hidden = [], []
    for option in _options(command):
        for spelling in _spellings(option):
            if option.hidden:
                hidden.append(f"{path}: {spelling}")
            elif spelling not in documented:
                missing.append(spelling)
    assert set(hidden) <= UNDOCUMENTED, f"hidden options must be listed in UNDOCUMENTED: {hidden}"
    where = "its row" if entry.is_row else "its options table"
    real = {s for option in _options(command) for s in _spellings(option)}
    extra = sorted(documented - real)
    assert not missing and not extra, (
        f"cli.md:{entry.line} `pipewarden {path}`: {where} lacks {missing} and names options the command "
        f"does not have: {extra}")


def _choices(path: str, option: click.Option) -> list[str]:
    if isinstance(option.type, click.Choice):
        return [str(choice) for choice in option.type.choices]
    if option.name == "fmt" and path == "check":
        return check_formats()
    if option.name == "fmt" and path == "report":
        return report_formats()
    return []


@pytest.mark.parametrize("path", [p for p, c in COMMANDS.items() if _needs_entry(c)])
def test_every_choice_is_in_its_options_row(path: str) -> None:
    entry = _entry(path)
    for option in _options(COMMANDS[path]):
        choices = _choices(path, option)
        if not choices:
            continue
        rows = [row for names, row in _option_rows(entry) if set(_spellings(option)) & names]
        assert rows, f"`pipewarden {path}` {option.opts[0]}: no row"
        spans = set(CODE.findall(rows[0])) | {s.split()[-1] for s in CODE.findall(rows[0])}
        missing = [c for c in choices if c not in spans]
        assert not missing, f"cli.md:{entry.line} `pipewarden {path}` {option.opts[0]}: values not listed: {missing}"


def test_the_root_options_are_in_the_introduction() -> None:
    first = next(index for index, level, _ in PAGE.headings if level >= 2)
    intro = "\n".join(PAGE.lines[:first])
    for option in _options(cli):
        for spelling in _spellings(option):
            assert spelling in _option_tokens(intro), f"`pipewarden {spelling}` is not in cli.md's introduction"
    assert {"-h", "--help"} <= _option_tokens(intro)


def test_the_engine_section_points_at_engine_md() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    assert "## Release engine commands" in text and "(engine.md)" in text


# ---------------------------------------------------------------- JSON outputs


def _json_examples(path: Path) -> dict[str, list[tuple[int, Any]]]:
    """`<!-- json: ID -->` + a ```json block: ID -> [(line, parsed example)]."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: dict[str, list[tuple[int, Any]]] = {}
    for index, line in enumerate(lines):
        marker = re.match(r"^<!-- json: (.+?) -->$", line.strip())
        if not marker:
            continue
        fence = next(i for i in range(index + 1, len(lines)) if lines[i].strip())
        assert lines[fence].strip() == "```json", f"{path.name}:{index + 1}: the marker must precede a ```json block"
        close = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
        text = "\n".join(lines[fence + 1:close])
        try:
            example = json.loads(text)
        except json.JSONDecodeError as error:
            pytest.fail(f"{path.name}:{fence + 2}: the JSON example does not parse: {error}")
        found.setdefault(marker.group(1), []).append((fence + 1, example))
    return found


def _run_json(*args: str) -> Any:
    result = run_cli(*args)
    assert result.exit_code in (0, 1), f"pipewarden {' '.join(args)}: exit {result.exit_code}: {result.stderr}"
    return result.json()


def _report_history(tmp: Path) -> list[Any]:
    store = str(tmp / "history.sqlite")
    _run_json("report", *ORG, "--inventory", "examples/inventory.yaml", "--format", "json", "--history", store)
    return [_run_json("report", "history", "--history", store, "--format", "json")]


# The checker's JSON outputs, each run on the bundled examples (cwd: the repository root). More
# than one run where one alone leaves a documented list empty.
RUNS: dict[str, tuple[str, Callable[[Path], list[Any]]]] = {
    "check": ("check", lambda tmp: [_run_json("check", "examples", *ORG, "--format", "json")]),
    "report": ("report", lambda tmp: [_run_json(
        "report", *ORG, "--inventory", "examples/inventory.yaml", "--format", "json")]),
    "report history": ("report history", _report_history),
    "rules list": ("rules list", lambda tmp: [_run_json("rules", "list", "--format", "json")]),
    "rules list --org": ("rules list", lambda tmp: [_run_json(
        "rules", "list", *ORG, "--org", "retail", "--format", "json")]),
    "rules promote": ("rules promote", lambda tmp: [_run_json(
        "rules", "promote", rule, "--org", "retail", *ORG, "--inventory", "examples/inventory.yaml",
        "--dry-run", "--format", "json") for rule in ("min-healthy-hosts", "canary-bake-time")]),
    "exceptions list": ("exceptions list", lambda tmp: [_run_json("exceptions", "list", *ORG, "--format", "json")]),
}


def _json_commands() -> set[str]:
    """Commands that write JSON: a --format whose values include json (or jsonl)."""
    found = set()
    for path, command in COMMANDS.items():
        for option in _options(command):
            if option.name == "fmt" and any(c.startswith("json") for c in _choices(path, option)):
                found.add(path)
    return found


def test_every_json_output_has_a_documented_example() -> None:
    assert _json_commands() - ENGINE_JSON == {command for command, _ in RUNS.values()}
    documented = _json_examples(CLI_MD)
    missing = sorted(set(RUNS) - set(documented))
    assert not missing, f"cli.md has no `<!-- json: ID -->` example for: {missing}"
    unknown = sorted(set(documented) - set(RUNS) - {"check"})
    assert not unknown, f"cli.md has JSON examples this test does not run: {unknown}"


def _shape(value: Any) -> Any:
    """A JSON value's shape: objects keep their keys (with the first non-null value's shape seen),
    lists become the merged shape of their items, scalars and null become None."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, _shape(item))
        return ["list", merged]
    return None


def _merge(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {key: _merge(a.get(key), b.get(key)) for key in {**a, **b}}
    if isinstance(a, list) and isinstance(b, list):
        return ["list", _merge(a[1], b[1])]
    return a


def _compare(documented: Any, real: Any, where: str, free: set[str], problems: list[str]) -> None:
    if documented is None or where in free:
        return
    if real is None:
        problems.append(f"{where or 'top level'}: the example shows an object or a list, the program writes "
                        "a scalar, or null or an empty list in every run (nothing to compare)")
        return
    if isinstance(documented, dict):
        if not isinstance(real, dict):
            problems.append(f"{where}: the example shows an object, the program writes {type(real).__name__}")
            return
        def at(key: str) -> str:
            return f"{where}.{key}" if where else key

        for key in sorted(set(real) - set(documented)):
            problems.append(f"{at(key)}: written by the program, not in the docs")
        for key in sorted(set(documented) - set(real)):
            problems.append(f"{at(key)}: in the docs, not written by the program")
        for key in sorted(set(documented) & set(real)):
            _compare(documented[key], real[key], at(key), free, problems)
    elif isinstance(documented, list):
        if not isinstance(real, list):
            problems.append(f"{where}: the example shows a list, the program writes {type(real).__name__}")
            return
        _compare(documented[1], real[1], f"{where}[]", free, problems)


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("example", sorted(RUNS))
@pytest.mark.usefixtures("at_root")
def test_json_example_has_the_keys_of_the_real_output(example: str, tmp_path: Path) -> None:
    examples = [(CLI_MD.name, line, value) for line, value in _json_examples(CLI_MD).get(example, [])]
    examples += [(README.name, line, value) for line, value in _json_examples(README).get(example, [])]
    assert examples, f"no documented example for {example!r}"
    real: Any = None
    for output in RUNS[example][1](tmp_path):
        real = _merge(real, _shape(output))
    problems: list[str] = []
    for name, line, value in examples:
        found: list[str] = []
        _compare(_shape(value), real, "", FREE_FORM.get(example, set()), found)
        problems += [f"{name}:{line}: {problem}" for problem in found]
    assert not problems, f"`{example}` JSON: the docs and the program disagree:\n" + "\n".join(problems)


def _mentioned(key: str) -> bool:
    text = CLI_MD.read_text(encoding="utf-8")
    return f"`{key}`" in text or f'"{key}"' in text


@pytest.mark.usefixtures("at_root")
def test_check_with_base_adds_only_fixed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pipeline.yaml").write_text((ROOT / "examples" / "cart-service" / "pipeline.yaml").read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "pipeline.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    with_base = _run_json("check", str(repo / "pipeline.yaml"), "--base", "HEAD", "--now", NOW, "--format", "json")
    (_, documented), = _json_examples(CLI_MD)["check"]
    assert set(with_base) - set(documented) == {"fixed"} and set(documented) <= set(with_base)
    assert _mentioned("fixed")


@pytest.mark.usefixtures("at_root")
def test_report_with_history_adds_only_the_deltas(tmp_path: Path) -> None:
    store = str(tmp_path / "history.sqlite")
    args = ["report", *ORG, "--inventory", "examples/inventory.yaml", "--format", "json", "--history", store]
    _run_json(*args)
    second = _run_json(*args)
    (_, documented), = _json_examples(CLI_MD)["report"]
    deltas = {"compliance_delta", "findings_delta"}
    for kind in ("teams", "orgs"):
        assert set(second[kind][0]) - set(documented[kind][0]) == deltas
    assert all(_mentioned(key) for key in deltas)
