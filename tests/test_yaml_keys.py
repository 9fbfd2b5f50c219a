"""Mapping keys are the text as written, in every file pipewarden reads (issue 11, item 2).

YAML resolves `500:` to the integer 500, `1.5:` to a float, `true:` to a boolean, `~:` to null
and (in YAML 1.1) `2026-01-01:` to a date. JSON keys are strings and rules compare them with
strings (a stage names its alarms as strings), so such a key must never reach a rule, a path or
a report as anything but its text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW, good_pipeline, run_cli
from pipewarden.load.yamlsafe import parse_yaml, parse_yaml_events

# Keys YAML reads as something other than a string, by either YAML 1.1 or 1.2 rules.
NON_STRING_KEYS = ["500", "-1", "+7", "0", "007", "1.5", "1e3", ".5", ".inf", "-.Inf", ".nan", "true",
                   "False", "null", "~", "2026-01-01", "0x1F", "0o17", "1_000", "yes", "off"]


@pytest.mark.parametrize("key", NON_STRING_KEYS)
def test_every_key_is_its_text(key: str) -> None:
    for parse in (parse_yaml, parse_yaml_events):
        parsed = parse(f"{key}: a\nlist:\n  - {key}: b\n")
        assert parsed.value == {key: "a", "list": [{key: "b"}]}
        assert all(type(k) is str for k in parsed.value)


def test_tagged_quoted_and_aliased_keys_are_text() -> None:
    text = 'a: &n 500\n*n : 1\n"7": 2\n!!int 8: 3\n!!str 9: 4\n'
    for parse in (parse_yaml, parse_yaml_events):
        assert parse(text).value == {"a": 500, "500": 1, "7": 2, "8": 3, "9": 4}


def test_values_keep_their_types() -> None:
    """Only keys are text: values still follow YAML 1.2 core rules."""
    assert parse_yaml("a: 500\nb: 1.5\nc: true\nd: ~\n").value == {"a": 500, "b": 1.5, "c": True, "d": None}


def test_a_number_key_and_its_quoted_text_are_duplicates() -> None:
    from pipewarden.errors import LoadError

    for parse in (parse_yaml, parse_yaml_events):
        with pytest.raises(LoadError, match="duplicate key '500'") as caught:
            parse('500: a\n"500": b\n')
        assert caught.value.line == 2


def test_paths_quote_number_keys() -> None:
    parsed = parse_yaml("alarms:\n  500:\n    threshold: 1\n")
    assert parsed.lines['alarms["500"].threshold'] == 3


_plain_key = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(NON_STRING_KEYS),
    st.dates().map(str),
    st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_plain_key, min_size=1, max_size=6, unique=True))
def test_keys_are_text_for_any_scalar(keys: list[str]) -> None:
    text = "".join(f"{key}: {index}\n" for index, key in enumerate(keys))
    expected = {key: index for index, key in enumerate(keys)}
    assert parse_yaml(text).value == expected
    assert parse_yaml_events(text).value == expected


# --- through the commands -------------------------------------------------------------------

def number_alarm_pipeline() -> str:
    """The example pipeline with its alarm named 500 and the stages naming it "500"."""
    text = good_pipeline(("  high-error-rate:\n", "  500:\n"))
    return text.replace("alarms: [high-error-rate]", 'alarms: ["500"]')


def test_check_goes_on_with_a_number_alarm_and_window(tmp_path: Path) -> None:
    text = number_alarm_pipeline().replace("  business-hours:\n", "  1:\n").replace(
        "window: business-hours", 'window: "1"')
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pipeline.yaml").write_text(text)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "pipeline.yaml").write_text(
        good_pipeline(("name: checkout-service", "name: other"), ("127.0.0.1:9101", "127.0.0.2:9101")))
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code in (0, 1), result.stderr
    data = result.json()
    files = {Path(p["file"]).parent.name for p in data["pipelines"]}
    assert files == {"a", "b"}
    rules = {f["rule"] for f in data["findings"] if Path(f["file"]).parent.name == "a"}
    # The stages name the alarm and the window that exist: no gating or window finding for them.
    assert "alarm-gating" not in rules
    assert "valid-definition" not in rules


def test_a_number_alarm_is_found_by_its_path(tmp_path: Path) -> None:
    text = number_alarm_pipeline().replace("    threshold: 5\n", "")
    (tmp_path / "pipeline.yaml").write_text(text)
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    finding = result.json()["findings"][0]
    assert finding["rule"] == "valid-definition"
    assert finding["path"] == 'alarms["500"].threshold'
    assert finding["line"] == text.splitlines().index("  500:") + 1


def test_report_goes_on_with_a_number_alarm(tmp_path: Path) -> None:
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "pipeline.yaml").write_text(number_alarm_pipeline())
    org = tmp_path / "org"
    org.mkdir()
    (org / "acme.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n")
    result = run_cli("report", str(tmp_path / "fleet"), "--org-config", str(org), "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["teams"]


def test_org_config_number_keys_are_text(tmp_path: Path) -> None:
    """A rule id written as a number is an unknown rule named as written, not a crash."""
    (tmp_path / "acme.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nrules:\n  404: {level: warn}\n")
    result = run_cli("config", "validate", str(tmp_path))
    assert result.exit_code == 2
    assert "404" in result.stderr and "acme.yaml:5" in result.stderr
    assert "Traceback" not in result.stderr


def test_inventory_number_keys_are_text(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n  - {name: a, path: a, 7: x}\n")
    org = tmp_path / "org"
    org.mkdir()
    (org / "acme.yaml").write_text("apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\n")
    result = run_cli("report", "--org-config", str(org), "--inventory", str(tmp_path / "inventory.yaml"))
    assert result.exit_code == 2
    assert "'7'" in result.stderr and "inventory.yaml:4" in result.stderr
