"""Comment-keeping edits of org-config files: real commented files, compared line by line."""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path

import pytest

from conftest import NOW, run_cli
from pipewarden.errors import ConfigError, UsageError
from pipewarden.orgs.edit import Edit, NewException, plan_exception, plan_rule_level, verify_edit, write_edit
from pipewarden.orgs.tree import OrgTree, load_org_tree
from pipewarden.orgs.yamledit import detect_indent
from pipewarden.policy.catalog import load_catalog

TODAY = dt.date(2026, 11, 26)
CATALOG = load_catalog(())

ROOT = """\
# The company root: defaults every org inherits.
---
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name:   acme                 # aligned on purpose
  owners: [ cto-office ]
settings: {max_exception_days: 90}
rules:
  requires-preprod:
    level: enforce             # off | warn | enforce
    locked: true               # no org may relax this
"""

# Four-space indentation, sequences at the key's column, quotes of every kind, flow entries.
RETAIL = """\
apiVersion: "pipewarden/v1"
kind: OrgConfig
metadata:
    name: retail
    parent: acme
    owners: [ dana ]           # spaces inside brackets stay
teams: [checkout, cart, billing]
rules:
    canary-bake-time:
        level: "warn"
        enforce_from: 2027-01-15   # announced in October
        # the bake time grows to 90 minutes next year
        params: {min_minutes: 60}
    deployment-window: {level: warn, enforce_from: '2027-03-01', params: {earliest: "08:00"}}
    alarm-gating:
        params: {min_alarms: 1}    # only params here
    # Exceptions are reviewed every month.
exceptions:
-   rule: auto-rollback
    teams: [billing]
    reason: "rollback tooling is being built"
    approved_by: dana
    expires: 2027-01-31
# end of retail
"""

PLATFORM = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: platform
  parent: acme
teams: [search]
# Exceptions: none yet.
"""


def write_tree(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    directory = tmp_path / "orgs"
    directory.mkdir()
    for name, text in (files or {"acme.yaml": ROOT, "retail.yaml": RETAIL, "platform.yaml": PLATFORM}).items():
        (directory / name).write_text(text)
    return directory


def tree_of(directory: Path) -> OrgTree:
    return load_org_tree(str(directory), CATALOG, TODAY)


def apply(directory: Path, edit: Edit) -> str:
    write_edit(edit, str(directory), CATALOG, TODAY)
    return Path(edit.file).read_text()


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added): what a reviewer sees in the diff."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def promote(directory: Path, org: str, rule: str, level: str = "enforce", date: dt.date | None = None) -> str:
    edit = plan_rule_level(tree_of(directory), CATALOG, str(directory), org, rule, level, date)
    return apply(directory, edit)


def test_promote_removes_the_schedule_and_keeps_everything_else(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "retail", "canary-bake-time")
    expected = RETAIL.replace(
        '        level: "warn"\n        enforce_from: 2027-01-15   # announced in October\n',
        '        level: "enforce"\n',
    )
    assert after.splitlines() == expected.splitlines()
    assert changed_lines(RETAIL, after) == (
        ['        level: "warn"', "        enforce_from: 2027-01-15   # announced in October"],
        ['        level: "enforce"'],
    )
    # The comment that followed the removed key is still there, and the tree still loads.
    assert "        # the bake time grows to 90 minutes next year" in after.splitlines()
    setting = tree_of(directory).nodes["retail"].rules["canary-bake-time"]
    assert (setting.level, setting.enforce_from, setting.params) == ("enforce", None, {"min_minutes": 60})


def test_flow_entry_stays_flow(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "retail", "deployment-window")
    assert changed_lines(RETAIL, after) == (
        ["    deployment-window: {level: warn, enforce_from: '2027-03-01', params: {earliest: \"08:00\"}}"],
        ['    deployment-window: {level: enforce, params: {earliest: "08:00"}}'],
    )


def test_schedule_adds_level_and_date_before_params(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "retail", "alarm-gating", "warn", dt.date(2027, 2, 1))
    expected = RETAIL.replace(
        "    alarm-gating:\n",
        "    alarm-gating:\n        level: warn\n        enforce_from: 2027-02-01\n",
    )
    assert after.splitlines() == expected.splitlines()
    entry = tree_of(directory).nodes["retail"].rules["alarm-gating"]
    assert (entry.level, entry.enforce_from) == ("warn", dt.date(2027, 2, 1))


def test_reschedule_changes_only_the_date_line(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "retail", "canary-bake-time", "warn", dt.date(2027, 3, 1))
    assert changed_lines(RETAIL, after) == (
        ["        enforce_from: 2027-01-15   # announced in October"],
        ["        enforce_from: 2027-03-01   # announced in October"],
    )


def test_new_rule_entry_goes_before_the_comment_that_introduces_the_next_section(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "retail", "auto-rollback")
    expected = RETAIL.replace(
        "    # Exceptions are reviewed every month.\n",
        "    auto-rollback:\n        level: enforce\n    # Exceptions are reviewed every month.\n",
    )
    assert after.splitlines() == expected.splitlines()


def test_rules_block_created_where_the_example_puts_it(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "platform", "deployment-window", "warn", dt.date(2027, 1, 10))
    expected = PLATFORM.replace(
        "teams: [search]\n",
        "teams: [search]\nrules:\n  deployment-window:\n    level: warn\n    enforce_from: 2027-01-10\n",
    )
    assert after.splitlines() == expected.splitlines()


def test_header_comment_and_document_marker_survive(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "acme", "alarm-gating")
    assert after.splitlines() == [*ROOT.splitlines(), "  alarm-gating:", "    level: enforce"]


def test_level_comment_column_is_kept(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "acme", "requires-preprod", "warn")
    assert changed_lines(ROOT, after) == (
        ["    level: enforce             # off | warn | enforce"],
        ["    level: warn                # off | warn | enforce"],
    )


def test_nothing_to_change_is_no_edit(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    edit = plan_rule_level(tree_of(directory), CATALOG, str(directory), "acme", "requires-preprod", "enforce", None)
    assert not edit.changed and edit.changes == ()


def test_crlf_files_stay_crlf(tmp_path: Path) -> None:
    text = ROOT.replace("\n", "\r\n")
    directory = write_tree(tmp_path, {"acme.yaml": text})
    path = directory / "acme.yaml"
    edit = plan_rule_level(tree_of(directory), CATALOG, str(directory), "acme", "alarm-gating", "enforce", None)
    write_edit(edit, str(directory), CATALOG, TODAY)
    assert path.read_bytes() == (text + "  alarm-gating:\r\n    level: enforce\r\n").encode()


def test_exception_appended_in_the_files_own_layout(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    new = NewException("canary-bake-time", ("checkout-service",), (), "bake: the metric lands next sprint", "dana",
                       dt.date(2027, 1, 20), False)
    after = apply(directory, plan_exception(tree_of(directory), CATALOG, str(directory), "retail", new))
    expected = RETAIL.replace(
        "# end of retail\n",
        "-   rule: canary-bake-time\n"
        "    pipelines: [checkout-service]\n"
        "    reason: 'bake: the metric lands next sprint'\n"
        "    approved_by: dana\n"
        "    expires: 2027-01-20\n"
        "# end of retail\n",
    )
    assert after.splitlines() == expected.splitlines()
    [_, added] = tree_of(directory).nodes["retail"].exceptions
    assert (added.rule, added.pipelines, added.expires) == ("canary-bake-time", ("checkout-service",),
                                                            dt.date(2027, 1, 20))


def test_exceptions_block_created_before_the_closing_comment(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    new = NewException("canary-first", (), ("search",), "single-host service", "lee", None, True)
    after = apply(directory, plan_exception(tree_of(directory), CATALOG, str(directory), "platform", new))
    expected = PLATFORM.replace(
        "# Exceptions: none yet.\n",
        "exceptions:\n"
        "  - rule: canary-first\n"
        "    teams: [search]\n"
        "    reason: single-host service\n"
        "    approved_by: lee\n"
        "    permanent: true\n"
        "# Exceptions: none yet.\n",
    )
    assert after.splitlines() == expected.splitlines()


def test_locked_by_an_ancestor_is_refused(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    with pytest.raises(UsageError, match="locked by org 'acme'"):
        plan_rule_level(tree_of(directory), CATALOG, str(directory), "retail", "requires-preprod", "warn", None)
    new = NewException("requires-preprod", ("x",), (), "r", "a", dt.date(2027, 1, 1), False)
    with pytest.raises(UsageError, match="may not grant exceptions"):
        plan_exception(tree_of(directory), CATALOG, str(directory), "retail", new)


def test_locked_rule_via_cli_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    result = run_cli("rules", "promote", "requires-preprod", "--org", "retail", "--org-config", str(directory),
                     "--to", "warn", "--now", NOW, "--yes", str(fleet))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "locked by org 'acme'" in result.stderr
    assert (directory / "retail.yaml").read_text() == RETAIL


def test_the_locking_node_itself_may_change_the_rule(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    after = promote(directory, "acme", "requires-preprod", "warn")
    assert "    locked: true               # no org may relax this" in after.splitlines()


def test_unknown_node_and_rule_are_refused(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    with pytest.raises(UsageError, match="org 'nope' is not a node"):
        plan_rule_level(tree_of(directory), CATALOG, str(directory), "nope", "alarm-gating", "enforce", None)
    with pytest.raises(UsageError, match="unknown rule 'no-such-rule'"):
        plan_rule_level(tree_of(directory), CATALOG, str(directory), "retail", "no-such-rule", "enforce", None)
    with pytest.raises(UsageError, match="valid-definition"):
        plan_rule_level(tree_of(directory), CATALOG, str(directory), "retail", "valid-definition", "warn", None)


def test_unknown_node_via_cli(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    result = run_cli("rules", "promote", "alarm-gating", "--org", "nope", "--org-config", str(directory),
                     "--now", NOW, str(tmp_path))
    assert result.exit_code == 2 and "org 'nope' is not a node" in result.stderr


def test_an_edit_that_would_break_the_tree_is_not_written(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    path = directory / "retail.yaml"
    broken = RETAIL.replace('level: "warn"', "level: off")  # off together with enforce_from
    edit = Edit("retail", str(path), RETAIL, broken, ("level: off",))
    with pytest.raises(ConfigError) as caught:
        write_edit(edit, str(directory), CATALOG, TODAY)
    # The message names the real file and line, not the scratch copy it was checked in.
    assert caught.value.file == str(path) and caught.value.line == 11
    assert "would not load" in caught.value.message
    assert path.read_text() == RETAIL
    with pytest.raises(ConfigError):
        verify_edit(edit, str(directory), CATALOG, TODAY)


def test_a_file_changed_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    directory = write_tree(tmp_path)
    path = directory / "retail.yaml"
    edit = plan_rule_level(tree_of(directory), CATALOG, str(directory), "retail", "alarm-gating", "enforce", None)
    path.write_text(RETAIL + "# someone else's edit\n")
    with pytest.raises(ConfigError, match="changed while"):
        write_edit(edit, str(directory), CATALOG, TODAY)
    assert path.read_text().endswith("# someone else's edit\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ROOT, (2, 4, 2)),
        (RETAIL, (4, 4, 0)),
        ("a:\n  - x\nb:\n  c: 1\n", (2, 4, 2)),
        ("a:\n- x\nb:\n   c: 1\n", (3, 2, 0)),
        ("a: 1\n", (2, 4, 2)),
    ],
)
def test_detect_indent(text: str, expected: tuple[int, int, int]) -> None:
    assert detect_indent(text) == expected
