"""Comment-keeping edits through anchors, aliases and merge keys change only the place they name.

Issue 11, item 3: `rules promote` of a rule whose settings are an anchor (`&warn-first`) also
promoted the rule that used the alias (`*warn-first`). Every edit now gives the edited place a
copy of its own, and checks the loaded document before writing: only the intended path may
differ, or the command exits 2 naming the alias and writes nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import NOW, CliResult, run_cli
from pipewarden.errors import ConfigError
from pipewarden.load.yamlsafe import parse_yaml
from pipewarden.orgs import yamledit
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog
from test_promote import MANUAL_ROLLBACK, SHORT_BAKE, pipeline

TODAY = dt.date(2026, 11, 26)
CATALOG = load_catalog(())

HEADER = """\
apiVersion: pipewarden/v1
kind: OrgConfig
metadata:
  name: acme
teams: [a, b]
"""


def write_org(tmp_path: Path, text: str) -> Path:
    orgs = tmp_path / "orgs"
    orgs.mkdir(exist_ok=True)
    (orgs / "acme.yaml").write_text(text)
    (tmp_path / "fleet").mkdir(exist_ok=True)
    return orgs


def promote(tmp_path: Path, rule: str, *extra: str) -> CliResult:
    return run_cli("rules", "promote", rule, "--org", "acme", "--org-config", str(tmp_path / "orgs"),
                   "--now", NOW, "--yes", *extra, str(tmp_path / "fleet"))


def add_exception(tmp_path: Path, rule: str, *extra: str) -> CliResult:
    return run_cli("exceptions", "add", "--org-config", str(tmp_path / "orgs"), "--org", "acme", "--now", NOW,
                   "--rule", rule, "--team", "a", "--reason", "waiting for the tooling", "--approved-by", "dana",
                   *extra)


def loaded(path: Path) -> Any:
    return parse_yaml(path.read_text()).value


def level_of(orgs: Path, rule: str) -> str | None:
    entry = load_org_tree(str(orgs), CATALOG, TODAY).nodes["acme"].rules.get(rule)
    return entry.level if entry is not None else None


# --- the example of the issue ----------------------------------------------------------------

ISSUE = HEADER + """\
rules:
  canary-bake-time: &warn-first {level: warn}
  alarm-gating: *warn-first
"""


def test_promoting_the_anchor_changes_only_that_rule(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, ISSUE)
    result = promote(tmp_path, "canary-bake-time")
    assert result.exit_code == 0, result.stderr
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time: {level: enforce}
  alarm-gating: {level: warn}
"""
    assert (level_of(orgs, "canary-bake-time"), level_of(orgs, "alarm-gating")) == ("enforce", "warn")
    # The outcome names the rule that changed and says the other keeps its settings.
    assert "level: enforce" in result.stdout
    assert 'rules["alarm-gating"] keeps the shared values' in result.stdout


def test_promoting_the_alias_changes_only_that_rule_and_keeps_the_anchor(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, ISSUE)
    result = promote(tmp_path, "alarm-gating")
    assert result.exit_code == 0, result.stderr
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time: &warn-first {level: warn}
  alarm-gating: {level: enforce}
"""


def test_the_anchor_moves_to_the_next_alias(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, ISSUE + "  auto-rollback: *warn-first\n")
    assert promote(tmp_path, "canary-bake-time", "--to", "off").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time: {level: off}
  alarm-gating: &warn-first {level: warn}
  auto-rollback: *warn-first
"""


def test_dry_run_names_exactly_what_changes_and_writes_nothing(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, ISSUE)
    result = promote(tmp_path, "canary-bake-time", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["changes"] == [
        "level: enforce",
        'rules["canary-bake-time"] gets its own copy of &warn-first; rules["alarm-gating"] keeps the shared values',
    ]
    assert data["unaffected"] == [] and data["written"] is False
    assert (orgs / "acme.yaml").read_text() == ISSUE


def test_preview_equals_check_after_an_edit_through_an_anchor(tmp_path: Path) -> None:
    # Before the fix the preview named one rule while the file enforced two: the team was
    # blocked by auto-rollback after the write, which the preview did not show.
    text = HEADER + """\
rules:
  canary-bake-time: &warn-first {level: warn}
  auto-rollback: *warn-first
"""
    orgs = write_org(tmp_path, text)
    fleet = tmp_path / "fleet" / "svc"
    fleet.mkdir(parents=True)
    (fleet / "pipeline.yaml").write_text(pipeline(1, "svc", "a", SHORT_BAKE, MANUAL_ROLLBACK))
    result = promote(tmp_path, "canary-bake-time", "--format", "json")
    assert result.exit_code == 0, result.stderr
    preview = result.json()
    assert preview["written"] is True
    checked = run_cli("check", str(tmp_path / "fleet"), "--org-config", str(orgs), "--format", "json", "--now", NOW)
    findings = checked.json()["findings"]
    assert preview["findings"] == [f for f in findings if f["rule"] == "canary-bake-time"]
    assert {f["rule"]: f["level"] for f in findings if f["rule"] in ("canary-bake-time", "auto-rollback")} == {
        "canary-bake-time": "enforce", "auto-rollback": "warn"}
    [team] = preview["teams"]
    assert team["blocked_after"] == any(f["level"] == "enforce" and not f["excepted"] for f in findings)


def test_text_preview_names_the_copy_before_the_write(tmp_path: Path) -> None:
    write_org(tmp_path, ISSUE)
    result = promote(tmp_path, "canary-bake-time")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:4] == [
        "  now:  warn",
        "  new:  enforce",
        ('  also: rules["canary-bake-time"] gets its own copy of &warn-first; rules["alarm-gating"] keeps the '
         "shared values"),
    ]


def test_a_refused_edit_names_the_alias_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the copy on write, the edit goes through the anchor: the check after the edit
    # must catch it, whatever the cause.
    orgs = write_org(tmp_path, ISSUE)
    monkeypatch.setattr(yamledit.RoundTripDocument, "private",
                        lambda self, *path: _walk(self.data, path))
    result = promote(tmp_path, "canary-bake-time")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert f"{orgs / 'acme.yaml'}:8:" in result.stderr
    assert "would also change rules[\"alarm-gating\"].level" in result.stderr
    assert "alias *warn-first at line 8 (anchor &warn-first at line 7)" in result.stderr
    assert "nothing was written" in result.stderr
    assert (orgs / "acme.yaml").read_bytes() == ISSUE.encode()


def _walk(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


# --- block anchors, comments, scalars, dates --------------------------------------------------

BLOCK = HEADER + """\
rules:
  canary-bake-time: &base
    level: warn                # announced in October
    enforce_from: 2027-01-15
    params: {min_minutes: 60}
  # bake times share the schedule
  prod-bake-time: *base
"""


def test_block_anchor_keeps_its_comments_where_they_were(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, BLOCK)
    assert promote(tmp_path, "canary-bake-time").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time:
    level: enforce             # announced in October
    params: {min_minutes: 60}
  # bake times share the schedule
  prod-bake-time:
    level: warn                # announced in October
    enforce_from: 2027-01-15
    params: {min_minutes: 60}
"""


def test_block_alias_gets_a_block_of_its_own(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, BLOCK)
    assert promote(tmp_path, "prod-bake-time", "--from", "2027-03-01").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == BLOCK.replace("  prod-bake-time: *base\n", """\
  prod-bake-time:
    level: warn                # announced in October
    enforce_from: 2027-03-01
    params: {min_minutes: 60}
""")


SCALARS = HEADER + """\
rules:
  canary-bake-time: {level: &lvl warn, enforce_from: &day 2027-01-15}
  alarm-gating: {level: *lvl, enforce_from: *day}
"""


def test_anchored_level_and_date_stay_with_the_other_rule(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, SCALARS)
    assert promote(tmp_path, "canary-bake-time").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time: {level: enforce}
  alarm-gating: {level: &lvl warn, enforce_from: 2027-01-15}
"""
    tree = load_org_tree(str(orgs), CATALOG, TODAY)
    assert tree.nodes["acme"].rules["alarm-gating"].enforce_from == dt.date(2027, 1, 15)


# --- merge keys ------------------------------------------------------------------------------

MERGED = HEADER + """\
rules:
  canary-bake-time: &base {level: warn, enforce_from: 2027-01-15, params: {min_minutes: 60}}
  prod-bake-time:
    <<: *base
    params: {min_minutes: 30}  # shorter in prod
"""


def test_setting_a_merged_key_overrides_it_in_that_rule_only(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, MERGED)
    assert promote(tmp_path, "prod-bake-time", "--from", "2027-03-01").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == MERGED + "    level: warn\n    enforce_from: 2027-03-01\n"
    assert loaded(orgs / "acme.yaml")["rules"]["canary-bake-time"]["enforce_from"] == "2027-01-15"


def test_removing_a_merged_key_writes_the_merge_out(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, MERGED)
    result = promote(tmp_path, "prod-bake-time")
    assert result.exit_code == 0, result.stderr
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  canary-bake-time: &base {level: warn, enforce_from: 2027-01-15, params: {min_minutes: 60}}
  prod-bake-time:
    params: {min_minutes: 30}  # shorter in prod
    level: enforce
"""
    assert "no longer uses the merge key '<<: *base'" in result.stdout
    assert loaded(orgs / "acme.yaml")["rules"]["canary-bake-time"] == {
        "level": "warn", "enforce_from": "2027-01-15", "params": {"min_minutes": 60}}


def test_removing_an_own_key_that_the_merge_also_brings_writes_the_merge_out(tmp_path: Path) -> None:
    # Found by the property test: deleting the rule's own enforce_from let the merged one through.
    text = HEADER + """\
rules:
  prod-bake-time: &later
    enforce_from: 2027-03-01
  auto-rollback:
    <<: *later
    enforce_from: 2027-01-15
"""
    orgs = write_org(tmp_path, text)
    assert promote(tmp_path, "auto-rollback", "--to", "off").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == HEADER + """\
rules:
  prod-bake-time: &later
    enforce_from: 2027-03-01
  auto-rollback:
    level: off
"""


def test_promoting_the_merge_source_leaves_the_merging_rule_alone(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, MERGED)
    before = loaded(orgs / "acme.yaml")
    assert promote(tmp_path, "canary-bake-time").exit_code == 0
    after = loaded(orgs / "acme.yaml")
    assert after["rules"]["prod-bake-time"] == before["rules"]["prod-bake-time"]
    assert after["rules"]["canary-bake-time"] == {"level": "enforce", "params": {"min_minutes": 60}}


RULES_MERGED = HEADER + """\
rules:
  <<: {canary-bake-time: &c {level: warn}, alarm-gating: {level: warn}}
  prod-bake-time: *c
"""


def test_a_rule_merged_into_rules_gets_an_entry_of_its_own(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, RULES_MERGED)
    result = promote(tmp_path, "canary-bake-time")
    assert result.exit_code == 0, result.stderr
    assert (orgs / "acme.yaml").read_text() == RULES_MERGED + "  canary-bake-time: {level: enforce}\n"
    assert 'rules["canary-bake-time"] is written out in this node' in result.stdout
    assert (level_of(orgs, "prod-bake-time"), level_of(orgs, "alarm-gating")) == ("warn", "warn")


# --- exceptions ------------------------------------------------------------------------------

EXCEPTIONS = HEADER.replace("teams: [a, b]", "teams: &everyone [a, b]") + """\
exceptions: &granted
  - &rollback
    rule: auto-rollback
    teams: *everyone
    reason: tooling under way
    approved_by: dana
    permanent: true
  - <<: *rollback
    rule: canary-first
# reviewed monthly
"""


def test_exception_added_after_a_merged_entry(tmp_path: Path) -> None:
    orgs = write_org(tmp_path, EXCEPTIONS)
    result = add_exception(tmp_path, "alarm-gating", "--expires", "2027-01-31")
    assert result.exit_code == 0, result.stderr
    assert (orgs / "acme.yaml").read_text() == EXCEPTIONS.replace("# reviewed monthly\n", """\
  - rule: alarm-gating
    teams: [a]
    reason: waiting for the tooling
    approved_by: dana
    expires: 2027-01-31
# reviewed monthly
""")
    exceptions = load_org_tree(str(orgs), CATALOG, TODAY).nodes["acme"].exceptions
    assert [(e.rule, e.teams) for e in exceptions] == [
        ("auto-rollback", ("a", "b")), ("canary-first", ("a", "b")), ("alarm-gating", ("a",))]


def test_exception_added_after_an_alias_entry(tmp_path: Path) -> None:
    text = HEADER + """\
exceptions:
  - &same {rule: auto-rollback, teams: [b], reason: r, approved_by: c, permanent: true}
  - *same
"""
    orgs = write_org(tmp_path, text)
    assert add_exception(tmp_path, "alarm-gating", "--permanent").exit_code == 0
    assert (orgs / "acme.yaml").read_text() == text + """\
  - rule: alarm-gating
    teams: [a]
    reason: waiting for the tooling
    approved_by: dana
    permanent: true
"""


# --- the check itself --------------------------------------------------------------------------


def test_verify_accepts_only_the_intended_change() -> None:
    doc = yamledit.RoundTripDocument(ISSUE, "acme.yaml")
    expected = copy.deepcopy(doc.loaded())
    expected["rules"]["canary-bake-time"]["level"] = "enforce"
    good = ISSUE.replace("&warn-first {level: warn}\n  alarm-gating: *warn-first",
                         "{level: enforce}\n  alarm-gating: {level: warn}")
    doc.verify(good, expected, 'rules["canary-bake-time"]')
    with pytest.raises(ConfigError) as caught:
        doc.verify(ISSUE.replace("{level: warn}", "{level: enforce}"), expected, 'rules["canary-bake-time"]')
    assert caught.value.line == 8 and "*warn-first" in caught.value.message
    # A difference in type is a difference (true is not 1).
    assert list(yamledit.differences({"a": 1}, {"a": True}, "")) == ["a"]


# --- property: any anchors, aliases and merges over rule settings and exceptions --------------

RULES = {
    "canary-bake-time": ("min_minutes", 60),
    "prod-bake-time": ("min_minutes", 30),
    "alarm-gating": ("min_alarms", 2),
    "canary-first": ("max_targets", 1),
    "auto-rollback": None,
    "full-automation": None,
}
DATES = ("2027-01-15", "2027-03-01")


class _Writer:
    """Builds an org file with anchors, aliases and merge keys; remembers what each anchor holds."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.settings: dict[str, dict[str, str]] = {}  # anchor -> the level/enforce_from it holds
        self.levels: dict[str, str] = {}
        self.dates: dict[str, str] = {}
        self.entries: list[str] = []
        self.teams: list[str] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def level(self) -> tuple[str, str]:
        if self.levels and self.draw(st.booleans()):
            anchor = self.draw(st.sampled_from(sorted(self.levels)))
            return f"*{anchor}", self.levels[anchor]
        value = self.draw(st.sampled_from(("off", "warn", "enforce")))
        if self.draw(st.booleans()):
            anchor = self.name("lv")
            self.levels[anchor] = value
            return f"&{anchor} {value}", value
        return value, value

    def date(self, values: list[str]) -> str:
        if self.dates and self.draw(st.booleans()):
            anchor = self.draw(st.sampled_from(sorted(self.dates)))
            values.append(self.dates[anchor])
            return f"*{anchor}"
        value = self.draw(st.sampled_from(DATES))
        values.append(value)
        if self.draw(st.booleans()):
            anchor = self.name("d")
            self.dates[anchor] = value
            return f"&{anchor} {value}"
        return value

    def body(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """(written key/value pairs, the values they load to) of a level and maybe a schedule."""
        pairs: list[tuple[str, str]] = []
        values: dict[str, str] = {}
        if self.draw(st.booleans()):
            written, value = self.level()
            pairs.append(("level", written))
            values["level"] = value
        if values.get("level") != "off" and self.draw(st.booleans()):
            dates: list[str] = []
            pairs.append(("enforce_from", self.date(dates)))
            values["enforce_from"] = dates[0]
        return pairs, values

    def mapping(self, pairs: list[tuple[str, str]], indent: int, anchor: str = "", flow: bool = False) -> str:
        """`pairs` as a flow mapping (on the key's line) or a block one (on the lines after)."""
        prefix = f"&{anchor} " if anchor else ""
        if flow or not pairs or self.draw(st.booleans()):
            return " " + prefix + "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}\n"
        head = f" {prefix}".rstrip()
        return head + "\n" + "".join(f"{' ' * indent}{k}: {v}\n" for k, v in pairs)

    def rule(self, rule: str, flow: bool = False) -> str:
        kind = self.draw(st.sampled_from(("plain", "anchor", "alias", "merge")))
        param = RULES[rule]
        params = [("params", f"{{{param[0]}: {param[1]}}}")] if param and self.draw(st.booleans()) else []
        if kind == "alias" and self.settings:
            anchor = self.draw(st.sampled_from(sorted(self.settings)))
            return f"  {rule}: *{anchor}\n"
        if kind == "merge" and self.settings:
            sources = self.draw(st.lists(st.sampled_from(sorted(self.settings)), min_size=1, max_size=2, unique=True))
            merged: dict[str, str] = {}
            for source in reversed(sources):
                merged.update(self.settings[source])
            own, values = self.body()
            merged.update(values)
            if merged.get("level") == "off" and "enforce_from" in merged:
                # off with a schedule does not load: this entry says warn (an anchor it would
                # have defined on its level is not written, so no alias may use it).
                for key, written in own:
                    if key == "level" and written.startswith("&"):
                        del self.levels[written[1:].split()[0]]
                own = [p for p in own if p[0] != "level"] + [("level", "warn")]
            reference = f"*{sources[0]}" if len(sources) == 1 else "[" + ", ".join(f"*{s}" for s in sources) + "]"
            pairs = [("<<", reference), *own, *params]
            self.draw(st.randoms()).shuffle(pairs)
            return f"  {rule}:" + self.mapping(pairs, 4, flow=flow)
        pairs, values = self.body()
        anchor = ""
        if kind == "anchor":
            anchor = self.name("s")
            self.settings[anchor] = values
        else:
            pairs += params
        return f"  {rule}:" + self.mapping(pairs, 4, anchor, flow)

    def team_list(self) -> str:
        if self.teams and self.draw(st.booleans()):
            return "*" + self.draw(st.sampled_from(self.teams))
        teams = self.draw(st.sampled_from(("[a]", "[b]", "[a, b]")))
        if self.draw(st.booleans()):
            anchor = self.name("t")
            self.teams.append(anchor)
            return f"&{anchor} {teams}"
        return teams

    def exception(self) -> str:
        kind = self.draw(st.sampled_from(("plain", "anchor", "alias", "merge")))
        rule = self.draw(st.sampled_from(sorted(RULES)))
        if kind == "alias" and self.entries:
            return f"  - *{self.draw(st.sampled_from(self.entries))}\n"
        if kind == "merge" and self.entries:
            source = self.draw(st.sampled_from(self.entries))
            pairs = [("<<", f"*{source}"), ("rule", rule)]
        else:
            dates: list[str] = []
            end = ("permanent", "true") if self.draw(st.booleans()) else ("expires", self.date(dates))
            pairs = [("rule", rule), ("teams", self.team_list()), ("reason", "r"), ("approved_by", "b"), end]
        anchor = ""
        if kind == "anchor":
            anchor = self.name("e")
            self.entries.append(anchor)
        if self.draw(st.booleans()):
            prefix = f"&{anchor} " if anchor else ""
            return "  - " + prefix + "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}\n"
        lines = [f"{k}: {v}" for k, v in pairs]
        if anchor:
            return f"  - &{anchor}\n" + "".join(f"    {line}\n" for line in lines)
        return f"  - {lines[0]}\n" + "".join(f"    {line}\n" for line in lines[1:])


@st.composite
def org_files(draw: Any) -> tuple[str, list[str]]:
    """(the text of an org file, the rules it names)."""
    writer = _Writer(draw)
    named: list[str] = []
    text = HEADER
    if draw(st.booleans()):
        writer.teams.append("everyone")
        text = text.replace("teams: [a, b]", "teams: &everyone [a, b]")
    sections = draw(st.permutations(("rules", "exceptions")))
    for section in sections:
        if section == "rules":
            rules = draw(st.lists(st.sampled_from(sorted(RULES)), max_size=5, unique=True))
            named += rules
            anchor = " &all-rules" if draw(st.booleans()) else ""
            if not rules:
                text += f"rules:{anchor} {{}}\n"
                continue
            text += f"rules:{anchor}\n"
            merged_rules = draw(st.integers(0, min(2, len(rules))))
            if merged_rules:
                # Some rules come from a merge key of the `rules:` mapping itself.
                inner = [writer.rule(rule, flow=True).strip() for rule in rules[:merged_rules]]
                text += "  <<: {" + ", ".join(inner) + "}\n"
            text += "".join(writer.rule(rule) for rule in rules[merged_rules:])
        else:
            entries = draw(st.integers(0, 4))
            if entries == 0:
                continue
            text += "exceptions:" + (" &all-exceptions" if draw(st.booleans()) else "") + "\n"
            text += "".join(writer.exception() for _ in range(entries))
    if draw(st.booleans()):
        text += "# the end\n"
    return text, named


def _expected_promotion(before: Any, rule: str, level: str, enforce_from: str | None) -> Any:
    expected = copy.deepcopy(before)
    if not isinstance(expected.get("rules"), dict):
        expected["rules"] = {}
    entry = expected["rules"].get(rule)
    entry = dict(entry) if isinstance(entry, dict) else {}
    entry["level"] = level
    if enforce_from is None:
        entry.pop("enforce_from", None)
    else:
        entry["enforce_from"] = enforce_from
    expected["rules"][rule] = entry
    return expected


def _expected_exception(before: Any, rule: str, permanent: bool) -> Any:
    expected = copy.deepcopy(before)
    entry: dict[str, Any] = {"rule": rule, "teams": ["a"], "reason": "waiting for the tooling",
                             "approved_by": "dana"}
    entry.update({"permanent": True} if permanent else {"expires": "2027-02-01"})
    expected["exceptions"] = [*(expected.get("exceptions") or []), entry]
    return expected


PROMOTIONS: tuple[tuple[str, ...], ...] = (("--to", "enforce"), ("--to", "warn"), ("--to", "off"), ("--from", "2027-06-01"))
ENDS: tuple[tuple[str, ...], ...] = (("--permanent",), ("--expires", "2027-02-01"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(org_files(), st.data())
def test_edits_change_only_the_intended_path(file: tuple[str, list[str]], data: st.DataObject) -> None:
    text, named = file
    # Mostly a rule the file names (its entry may be an anchor, an alias or merged in).
    from_file = bool(named) and data.draw(st.integers(0, 3)) > 0
    rule = data.draw(st.sampled_from(named if from_file else sorted(RULES)))
    with tempfile.TemporaryDirectory() as folder:
        tmp_path = Path(folder)
        orgs = write_org(tmp_path, text)
        try:
            load_org_tree(str(orgs), CATALOG, TODAY)
        except ConfigError as error:  # pragma: no cover - the generator writes valid trees
            raise AssertionError(f"generated an invalid org file: {error}\n{text}") from None
        before = parse_yaml(text).value
        if data.draw(st.booleans()):
            options = data.draw(st.sampled_from(PROMOTIONS))
            result = promote(tmp_path, rule, *options)
            enforce_from = options[1] if options[0] == "--from" else None
            level = "warn" if enforce_from else options[1]
            expected = _expected_promotion(before, rule, level, enforce_from)
        else:
            options = data.draw(st.sampled_from(ENDS))
            result = add_exception(tmp_path, rule, *options)
            expected = _expected_exception(before, rule, options == ("--permanent",))
        after = (orgs / "acme.yaml").read_text()
        if result.exit_code != 0:
            assert result.exit_code == 2, result.stderr
            assert after == text, "a refused edit wrote the file"
            assert "refusing to edit" in result.stderr and "nothing was written" in result.stderr, result.stderr
            return
        assert list(yamledit.differences(expected, parse_yaml(after).value, "")) == [], (text, after)
        # The whole tree still loads, and the comments and unrelated lines are still there.
        load_org_tree(str(orgs), CATALOG, TODAY)
        if "# the end\n" in text:
            assert "# the end\n" in after
