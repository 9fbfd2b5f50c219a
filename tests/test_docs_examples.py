"""Every example command of the README and the docs runs as written and shows what it says
(issue 15, item 13).

The convention the docs keep, and this test reads (README.md, docs/*.md, docs/reference/*.md):

- A fenced block marked `sh`, `console`, `shell` or `bash` that holds a `pipewarden` command
  (or `.venv/bin/pipewarden`) is an **example**, and runs. In a `console` block a command starts
  with `$ `; the lines after it, up to the next `$ `, are its output. A `sh` block shows commands
  only (`#` comments are kept as the shell reads them).
- A `sh` block of variable assignments only (`ORG=org-configs/example`) sets them for the
  document's later examples.
- A block of the release engine's commands only (`pipewarden server`, `status`, `approve` ...) is
  not run: they need a running server.
- An HTML comment on the last non-blank line before the fence says more:
  `<!-- example: exit 1 -->` when the commands exit 1 (a check that finds enforce findings), or
  `<!-- example: not run: REASON -->` for an example that cannot run here (it needs a release
  engine server, a network, or a repository of the reader's own).
- Each document's examples run in order, in one scratch copy of the repository's files (so that
  commands that write, such as `exceptions add`, edit the copy and never the checkout), with
  `pipewarden` resolved to the virtual environment's entry point, by bash, from the copy's root.
  The exit code must be the one marked (0 by default), and every output line shown must appear in
  the real output (stdout and stderr together), in order; `...` on a line of its own skips lines,
  and a line that ends with `...` only has to start the real line.
- Output that depends on the date: the example passes a fixed `--now` (the docs use
  2026-11-26T10:00:00Z), so that it stays true.

The README's tour also shows the first part of `make demo`: its command must be the one the
Makefile runs, so that the numbers the README shows are those the demo prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "docs" / "reference").glob("*.md"))]
SHELL_BLOCKS = {"sh", "console", "shell", "bash"}
COMMAND = re.compile(r"^(?:\.venv/bin/)?pipewarden(?:\s|$)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MARKER = re.compile(r"^<!--\s*example:\s*(.*?)\s*-->$")
# The release engine's commands need a running server (and `audit verify` its store): a block of
# them only is not run, without a marker. tests/engine/ runs them against real servers.
ENGINE_COMMANDS = {"server", "worker", "release", "status", "executions", "approve", "promote", "reject",
                   "override", "pause", "resume", "cancel", "retry", "rollback", "events", "audit"}


@dataclass
class Command:
    text: str                                   # as bash gets it (continuation lines kept)
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    document: Path
    line: int                                   # the fence's line, 1-based
    info: str
    marker: str | None
    commands: list[Command]

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    def is_example(self) -> bool:
        return any(COMMAND.match(c.text) for c in self.commands)

    def is_engine(self) -> bool:
        words = [c.text.split()[1] if len(c.text.split()) > 1 else "" for c in self.commands if COMMAND.match(c.text)]
        return bool(words) and all(word in ENGINE_COMMANDS for word in words)

    def is_assignments(self) -> bool:
        return bool(self.commands) and all(ASSIGNMENT.match(c.text) for c in self.commands)


def _commands(info: str, body: list[str]) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for line in body:
        if continued:
            commands[-1].text += "\n" + line
            continued = line.rstrip().endswith("\\")
            continue
        if info == "console":
            if line.startswith("$ "):
                commands.append(Command(line[2:]))
                continued = line.rstrip().endswith("\\")
            elif commands:
                commands[-1].output.append(line)
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            commands.append(Command(stripped))
            continued = stripped.endswith("\\")
    return commands


def _blocks(document: Path) -> list[Block]:
    lines = document.read_text(encoding="utf-8").split("\n")
    blocks = []
    index = 0
    while index < len(lines):
        fence = re.match(r"^(\s*)```(\S*)", lines[index])
        if not fence:
            index += 1
            continue
        close = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines))
        info = fence.group(2)
        if info in SHELL_BLOCKS:
            before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = MARKER.match(before)
            blocks.append(Block(document, index + 1, info, marker.group(1) if marker else None,
                                _commands(info, lines[index + 1:close])))
        index = close + 1
    return blocks


BLOCKS = {document: _blocks(document) for document in DOCUMENTS}


def _expected_exit(block: Block) -> int:
    if block.marker is None:
        return 0
    found = re.fullmatch(r"exit (\d+)", block.marker)
    assert found, f"{block.where}: unknown marker <!-- example: {block.marker} -->"
    return int(found.group(1))


def _skipped(block: Block) -> bool:
    if block.is_engine() and block.marker is None:
        return True
    if block.marker is None or not block.marker.startswith("not run"):
        return False
    assert re.fullmatch(r"not run: \S.*", block.marker), f"{block.where}: say why: <!-- example: not run: REASON -->"
    return True


def _scratch_copy(target: Path) -> Path:
    """The repository's files (tracked, and new ones git does not ignore) copied to `target`,
    with `.venv` linked, so that relative paths in the examples mean what they mean at the root."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def _shown(output: list[str]) -> list[str]:
    return [line.rstrip() for line in output if line.strip()]


def _missing_lines(shown: list[str], real: list[str]) -> list[str]:
    """Shown lines not found, in order, among the real ones (`...` skips; `X...` starts a line)."""
    missing = []
    position = 0
    for line in shown:
        if line.strip() in ("...", "…"):
            continue
        prefix = line.endswith(("...", "…"))
        wanted = line.rstrip(".…").rstrip() if prefix else line
        for index in range(position, len(real)):
            candidate = real[index].rstrip()
            if candidate == wanted or (prefix and candidate.startswith(wanted)):
                position = index + 1
                break
        else:
            missing.append(line)
    return missing


def _run(command: str, preamble: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
           "NO_COLOR": "1"}
    env.pop("PIPEWARDEN_SERVER", None)
    script = "\n".join(["set -u", *preamble, command])
    return subprocess.run(["bash", "-c", script], check=False, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def _documents_with_examples() -> list[Path]:
    # At collection: no assertion here (a bad marker is reported by the tests, not as a collection error).
    def runs(block: Block) -> bool:
        return block.is_example() and not block.is_engine() and not (block.marker or "").startswith("not run")

    return [d for d, blocks in BLOCKS.items() if any(runs(b) for b in blocks)]


def test_examples_are_found() -> None:
    # The parser's guard: the README's tour is an example, so a change of form cannot empty this test.
    assert ROOT / "README.md" in _documents_with_examples()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_example_is_runnable_or_says_why_not(document: Path) -> None:
    problems = []
    for block in BLOCKS[document]:
        if not block.is_example() or _skipped(block):
            continue
        _expected_exit(block)
        for command in block.commands:
            if not (COMMAND.match(command.text) or ASSIGNMENT.match(command.text)):
                problems.append(f"{block.where}: `{command.text}` is not a pipewarden command: make it one, "
                                "or mark the block <!-- example: not run: REASON -->")
            elif re.search(r"\[[A-Z.-]|(?<![$\w])(DIR|FILE|NAME|RULE|ORG)\b", command.text.split("#")[0]):
                problems.append(f"{block.where}: `{command.text}` has placeholders: write a command that runs "
                                "on the bundled examples, or mark the block <!-- example: not run: REASON -->")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("document", _documents_with_examples(), ids=lambda d: str(d.relative_to(ROOT)))
def test_examples_run_as_written(document: Path, tmp_path: Path) -> None:
    scratch = _scratch_copy(tmp_path / "repo")
    preamble: list[str] = []
    failures = []
    for block in BLOCKS[document]:
        if _skipped(block):
            continue
        if block.is_assignments():
            preamble += [c.text for c in block.commands]
            continue
        if not block.is_example():
            continue
        expected = _expected_exit(block)
        for command in block.commands:
            done = _run(command.text, preamble, scratch)
            real = done.stdout.split("\n")
            if done.returncode != expected:
                failures.append(f"{block.where}: `{command.text}` exited {done.returncode}, not {expected}:\n"
                                + "\n".join(real[-15:]))
                continue
            missing = _missing_lines(_shown(command.output), real)
            if missing:
                failures.append(f"{block.where}: `{command.text}`: lines the docs show that it did not print "
                                "(in this order):\n  " + "\n  ".join(missing))
    assert not failures, "\n\n".join(failures)


def _demo_check_command() -> str:
    """The `check` of `make demo`'s first part, as make would run it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(["make", "-n", "-C", str(ROOT), "--no-print-directory", "demo"], capture_output=True,
                          text=True, check=True).stdout
    for line in plan.split("\n"):
        if line.startswith(".venv/bin/pipewarden check ") and "--format" not in line:
            return " ".join(line.split(";")[0].split())
    raise AssertionError(f"make -n demo runs no `.venv/bin/pipewarden check` with text output:\n{plan}")


def test_the_readme_tour_is_the_demo() -> None:
    tour = BLOCKS[ROOT / "README.md"]
    first = next(b for b in tour if b.is_example() and b.info == "console")
    assert " ".join(first.commands[0].text.split()) == _demo_check_command(), (
        f"{first.where}: the README's tour must show the check `make demo` runs, so that its numbers are the demo's")
    assert any(line.startswith(("FAILED: ", "passed: ")) for line in _shown(first.commands[0].output)), (
        f"{first.where}: the tour shows the check's totals line")


def test_the_readme_says_how_to_run_pipewarden_after_make_demo() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/activate" in text and ".venv/bin/pipewarden" in text
