"""Every `report` format parses and carries the same numbers; the HTML stands alone."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipewarden.lint.report.aggregate import ORG_KEYS, TEAM_KEYS
from test_report_support import (
    report,
    standard_fleet,
    write_tree,
)


def sections(text: str) -> list[list[list[str]]]:
    """CSV sections: runs of rows separated by empty rows."""
    result: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if not row:
            result.append([])
        else:
            result[-1].append(row)
    return result


def test_csv_has_the_json_keys_and_values(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    result = report("--org-config", str(org), str(fleet), "--format", "csv")
    assert result.exit_code == 0, result.stderr
    teams, automation, rules, exceptions = sections(result.stdout)
    assert tuple(teams[0]) == TEAM_KEYS
    rows = {row[0]: dict(zip(teams[0], row)) for row in teams[1:]}
    assert rows["checkout"] == {"team": "checkout", "org": "retail", "repos": "2", "pipelines": "2",
                                "automation_level": "partial", "passing": "2", "enforce": "0", "warn": "1",
                                "excepted": "0", "compliance": "90.0"}
    assert rows["identity"]["compliance"] == ""  # null
    assert automation[0] == ["automation"] and automation[1] == ["level", "teams", "pipelines"]
    assert automation[2:] == [["none", "2", "1"], ["manual", "0", "0"], ["partial", "1", "1"], ["full", "2", "3"]]
    assert rules[:3] == [["rules"], ["rule", "pipelines_failing", "enforce", "warn"], ["requires-preprod", "1", "1", "0"]]
    assert exceptions[0] == ["exceptions"]
    assert [row[0] for row in exceptions[2:]] == ["active", "active", "expiring", "expired"]
    assert exceptions[2][5] == "alarms <being> wired"


def test_csv_by_org(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    result = report("--org-config", str(org), str(fleet), "--format", "csv", "--by", "org")
    orgs = sections(result.stdout)[0]
    assert tuple(orgs[0]) == ORG_KEYS
    assert orgs[1] == ["acme", "", "5", "5", "5", "3", "2", "2", "1", "68.0"]


def test_csv_quotes_awkward_text(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    retail = org / "retail.yaml"
    retail.write_text(retail.read_text().replace('reason: "alarms <being> wired"', 'reason: "a, \\"quoted\\"\\nreason"'))
    result = report("--org-config", str(org), str(fleet), "--format", "csv")
    exceptions = sections(result.stdout)[3]
    assert exceptions[2][5] == 'a, "quoted"\nreason'


def test_markdown_tables(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = report("--org-config", str(org), str(fleet), "--format", "markdown").stdout
    assert out.startswith("# Compliance report for acme")
    for heading in ("## Teams", "## Automation levels", "## Rules by pipelines failing", "## Exceptions"):
        assert heading in out
    assert "| checkout | retail | 2 | 2 | partial | 2 | 0 | 1 | 0 | 90.0% |" in out
    assert "alarms &lt;being&gt; wired" in out
    # every table row has the same number of cells as its header
    for block in re.split(r"\n\n", out):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
            assert len(widths) == 1, block
    by_org = report("--org-config", str(org), str(fleet), "--format", "markdown", "--by", "org").stdout
    assert "## Orgs (totals over each subtree)" in by_org and "| acme |  | 5 | 5 | 5 | 3 | 2 | 2 | 1 | 68.0% |" in by_org


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "rect", "br", "input", "img", "link"):
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "rect":
            return
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_well_formed(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = report("--org-config", str(org), str(fleet), "--format", "html").stdout
    assert out.startswith("<!DOCTYPE html>")
    lower = out.lower()
    assert "<script src" not in lower and "<link" not in lower and "@import" not in lower and "url(" not in lower
    assert "http:" not in lower and "https:" not in lower and "//cdn" not in lower
    parser = _Collector()
    parser.feed(out)
    parser.close()
    assert parser.open == []
    tags = [t for t, _ in parser.tags]
    # Two charts (compliance per team, automation levels), each with a legend; their bars are SVGs
    # with a viewBox (one per team, one per automation row) that scale to the page.
    assert tags.count("figure") == 2 and sum(1 for _, a in parser.tags if a.get("class") == "legend") == 2
    svgs = [attrs for t, attrs in parser.tags if t == "svg"]
    assert len(svgs) == 5 + 2 and all(re.fullmatch(r"0 0 [0-9.]+ 10", a.get("viewbox") or "") for a in svgs)
    assert tags.count("details") == 5  # one drill-down per team
    assert tags.count("script") == 1
    assert all(not attrs.get("src") for _, attrs in parser.tags)
    assert any("sortable" in (attrs.get("class") or "") for t, attrs in parser.tags if t == "table")
    text = "".join(parser.text)
    assert "alarms <being> wired" in text  # the reason, escaped in the markup, reads as written
    assert "<being>" not in out


def test_html_escapes_text_from_configs_and_pipelines(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    retail = org / "retail.yaml"
    retail.write_text(retail.read_text().replace("teams: [checkout, cart]", 'teams: [checkout, cart, "<script>x</script>"]'))
    out = report("--org-config", str(org), str(fleet), "--format", "html").stdout
    assert "<script>x</script>" not in out
    assert "&lt;script&gt;x&lt;/script&gt;" in out


def test_html_drilldown_lists_findings(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = report("--org-config", str(org), str(fleet), "--format", "html").stdout
    cart = out[out.index("<summary><strong>cart</strong>"):]
    cart = cart[: cart.index("</details>")]
    assert "requires-preprod" in cart and "alarm-gating" in cart and "excepted" in cart
    assert "exception (retail): alarms &lt;being&gt; wired" in cart


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "html"])
def test_every_format_renders_an_empty_fleet(tmp_path: Path, fmt: str) -> None:
    org, _ = standard_fleet(tmp_path)
    empty = write_tree(tmp_path / "empty", {"README.md": "nothing here\n"})
    result = report("--org-config", str(org), str(empty), "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert "no pipeline file found" in result.stderr
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["orgs"][0]["compliance"] is None and data["rules"] == []


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "html"])
def test_every_format_carries_the_same_team_numbers(tmp_path: Path, fmt: str) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = report("--org-config", str(org), str(fleet), "--format", fmt).stdout
    assert "90.0" in out  # checkout's compliance
