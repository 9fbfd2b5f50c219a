"""Issue 15 item 5: a pipeline file with a YAML syntax error is reported at the line where the
parser noticed it (pipeline.md), in every output format of `check` and in `report`; a file that
cannot be decoded at all stays at line 1."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.errors import LoadError
from pipewarden.load.yamlsafe import parse_yaml, parse_yaml_events

ORG = str(Path(__file__).resolve().parent.parent / "org-configs" / "example")

# An unclosed flow list at line 76: libyaml notices it at line 77 ("bake: {duration: 30m}"),
# where a mapping key cannot follow inside the list.
BROKEN = good_pipeline(("    alarms: [high-error-rate]\n    bake: {duration: 30m}",
                        "    alarms: [high-error-rate\n    bake: {duration: 30m}"))


def _broken_line(text: str) -> int:
    with pytest.raises(LoadError) as caught:
        parse_yaml(text)
    assert caught.value.line is not None
    return caught.value.line


@pytest.mark.parametrize(
    ("text", "line", "noticed"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "noticed at line 3, column 2"),
        ("a: 1\n  b: 2\n", 2, "noticed at line 2, column 4"),
        ("a:\n\t- b\n", 2, "noticed at line 2, column 1"),
        ("a: b: c\n", 1, "noticed at line 1, column 5"),
        # Noticed past the final newline: reported at the last line the file has.
        ("x: 1\na: [\n", 2, "noticed at the end of the file, after line 2"),
        ('x: 1\ny: 2\na: "open\n', 3, "noticed at the end of the file, after line 3"),
        ("a: [", 1, "noticed at the end of the file, after line 1"),
    ],
)
def test_both_parsers_give_the_line_where_the_error_was_noticed(text: str, line: int, noticed: str) -> None:
    for parse in (parse_yaml, parse_yaml_events):
        with pytest.raises(LoadError) as caught:
            parse(text)
        assert caught.value.line == line, parse
        assert not caught.value.unparseable
        assert noticed in caught.value.message


@pytest.fixture
def broken(write: Callable[[str, str], Path]) -> Path:
    return write("repo/pipeline.yaml", BROKEN)


def _check(broken: Path, *args: str) -> str:
    result = run_cli("check", str(broken), "--now", NOW, *args)
    assert result.exit_code == 1, result.stderr
    return result.stdout


def test_the_example_breaks_where_the_test_expects() -> None:
    assert _broken_line(BROKEN) == 77
    assert BROKEN.splitlines()[76].strip() == "bake: {duration: 30m}"


def test_json_and_text(broken: Path) -> None:
    [finding] = json.loads(_check(broken, "--format", "json"))["findings"]
    assert (finding["rule"], finding["line"], finding["path"]) == ("valid-definition", 77, "")
    assert "invalid YAML" in finding["message"] and "line 77" in finding["message"]
    assert f"{broken}:77 " in _check(broken)


def test_sarif(broken: Path) -> None:
    [result] = json.loads(_check(broken, "--format", "sarif"))["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 77


def test_github(broken: Path) -> None:
    [annotation] = [line for line in _check(broken, "--format", "github").splitlines() if line.startswith("::error")]
    assert f"file={broken},line=77," in annotation


def test_gitlab(broken: Path) -> None:
    [issue] = json.loads(_check(broken, "--format", "gitlab"))
    assert issue["location"]["lines"]["begin"] == 77


def test_junit(broken: Path) -> None:
    root = ET.fromstring(_check(broken, "--format", "junit"))
    failures = [f.text or "" for f in root.iter("failure")]
    assert any(f"{broken}:77: " in text for text in failures), failures


def test_markdown(broken: Path) -> None:
    assert f"`{broken}:77`" in _check(broken, "--format", "markdown")


def test_report_html_names_the_line(broken: Path) -> None:
    result = run_cli("report", str(broken), "--org-config", ORG, "--now", NOW, "--format", "html")
    assert result.exit_code == 0, result.stderr
    assert f"{broken}:77<" in result.stdout


def test_undecodable_file_stays_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(BROKEN.encode().replace(b"prod-wave-2", b"prod-wave-\xff"))
    [finding] = run_cli("check", str(path), "--now", NOW, "--format", "json").json()["findings"]
    assert (finding["rule"], finding["line"]) == ("valid-definition", 1)
    assert "not UTF-8" in finding["message"]
