"""The Python reading of pipelines (model/durations.py, model/view.py), held equal to the Rego one.

Unit tests first; then a differential property test: generated valid pipeline documents are read
by `pipeline_view` and by the Rego of policies/lib/core.rego, the deployment-window rule and the
min-healthy-hosts rule, evaluated directly with regorus, and every shared fact must agree.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import regorus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.model.durations import (
    clock_minutes,
    duration_seconds,
    interval_pieces,
    pieces_length,
    pieces_within,
)
from pipewarden.model.view import (
    DAYS,
    CommandMetric,
    MinHealthy,
    PrometheusMetric,
    SyntheticMetric,
    WindowView,
    pipeline_view,
    window_within,
)
from pipewarden.schemas import load_schema

POLICIES = Path(__file__).resolve().parents[1] / "policies"
PIPELINE_DOC = Path(__file__).resolve().parents[1] / "docs" / "reference" / "pipeline.md"


# ---------------------------------------------------------------- durations and clock times


@pytest.mark.parametrize(("text", "seconds"), [
    ("0s", 0), ("0m", 0), ("45s", 45), ("90m", 5400), ("1h", 3600), ("2d", 172800), ("007s", 7),
    ("99999999999999999999999d", 99999999999999999999999 * 86400),
])
def test_duration_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "m", "1.5h", "-1m", "+1m", "1M", " 1m", "1m ", "1ms", "1w", "٣s", "1_0s"])
def test_duration_seconds_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        duration_seconds(text)


@pytest.mark.parametrize("value", [90, 1.5, None, ["1m"]])
def test_duration_seconds_rejects_non_strings(value: Any) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        duration_seconds(value)


@pytest.mark.parametrize(("text", "minute"), [("00:00", 0), ("09:00", 540), ("9:05", 545), ("17:30", 1050), ("23:59", 1439)])
def test_clock_minutes(text: str, minute: int) -> None:
    assert clock_minutes(text) == minute


@pytest.mark.parametrize("text", ["24:00", "09:60", "0900", "9:0", "009:00", "", "09:00:00", "٠٩:00", " 9:00"])
def test_clock_minutes_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad clock time"):
        clock_minutes(text)


def test_clock_minutes_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="bad clock time"):
        clock_minutes(1050)  # type: ignore[arg-type]


@pytest.mark.parametrize(("start", "end", "pieces"), [
    (540, 1020, ((540, 1020),)),
    (1320, 360, ((0, 360), (1320, 1440))),
    (1320, 0, ((1320, 1440),)),
    (600, 600, ((0, 1440),)),
    (0, 0, ((0, 1440),)),
    (0, 1439, ((0, 1439),)),
])
def test_interval_pieces(start: int, end: int, pieces: tuple[tuple[int, int], ...]) -> None:
    assert interval_pieces(start, end) == pieces


def test_interval_pieces_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        interval_pieces(0, 1440)


def test_pieces_within() -> None:
    night = interval_pieces(1320, 360)
    assert pieces_within(interval_pieces(1380, 120), night)
    assert pieces_within(interval_pieces(30, 300), night)
    assert not pieces_within(interval_pieces(1260, 120), night)
    assert not pieces_within(interval_pieces(600, 600), night)
    assert pieces_length(night) == 480


# ---------------------------------------------------------------- windows


def _window(days: tuple[str, ...], start: str, end: str) -> WindowView:
    return WindowView("w", "Europe/Paris", days, clock_minutes(start), clock_minutes(end))


def test_window_open_within_a_day() -> None:
    w = _window(("mon", "tue"), "09:00", "17:00")
    assert w.is_open_at("mon", 540) and w.is_open_at("tue", 1019)
    assert not w.is_open_at("mon", 1020) and not w.is_open_at("mon", 539) and not w.is_open_at("wed", 600)
    assert w.length_minutes == 480 and not w.wraps


def test_window_past_midnight_belongs_to_its_opening_day() -> None:
    w = _window(("fri",), "22:00", "06:00")
    assert w.is_open_at("fri", 23 * 60) and w.is_open_at("sat", 3 * 60)
    assert not w.is_open_at("fri", 3 * 60) and not w.is_open_at("sat", 23 * 60) and not w.is_open_at("sat", 360)
    assert w.length_minutes == 480 and w.wraps
    assert w.opens_on("fri") and not w.opens_on("sat")


def test_window_whole_day_runs_from_start_to_start() -> None:
    w = _window(("mon",), "09:00", "09:00")
    assert w.length_minutes == 1440 and w.wraps
    assert w.is_open_at("mon", 540) and w.is_open_at("tue", 539)
    assert not w.is_open_at("mon", 539) and not w.is_open_at("tue", 540)
    midnight = _window(("sun",), "00:00", "00:00")
    assert not midnight.wraps and midnight.is_open_at("sun", 0) and midnight.is_open_at("sun", 1439)
    assert not midnight.is_open_at("mon", 0)
    # Sunday's night runs into Monday.
    assert _window(("sun",), "23:00", "01:00").is_open_at("mon", 30)


def test_window_bad_day_or_minute() -> None:
    w = _window(("mon",), "09:00", "17:00")
    with pytest.raises(ValueError, match="unknown day"):
        w.is_open_at("monday", 600)
    with pytest.raises(ValueError, match="out of range"):
        w.is_open_at("mon", 1440)


def test_window_within_as_the_rule_tests_say() -> None:
    weekdays = DAYS[:5]
    assert window_within(_window(weekdays, "09:00", "17:00"), weekdays, "09:00", "17:00")
    assert window_within(_window(("mon", "wed"), "10:00", "16:30"), weekdays, "09:00", "17:00")
    assert not window_within(_window(("fri", "sat"), "09:00", "17:00"), weekdays, "09:00", "17:00")
    assert not window_within(_window(weekdays, "08:59", "17:00"), weekdays, "09:00", "17:00")
    assert not window_within(_window(weekdays, "16:00", "10:00"), weekdays, "09:00", "17:00")
    assert not window_within(_window(weekdays, "09:00", "09:00"), weekdays, "09:00", "17:00")
    assert window_within(_window(weekdays, "09:00", "09:00"), weekdays, "00:00", "00:00")
    assert window_within(_window(weekdays, "22:00", "06:00"), weekdays, "22:00", "06:00")
    assert window_within(_window(weekdays, "23:00", "02:00"), weekdays, "22:00", "06:00")
    assert window_within(_window(weekdays, "00:30", "05:00"), weekdays, "22:00", "06:00")


# ---------------------------------------------------------------- min_healthy


@pytest.mark.parametrize(("value", "hosts", "kept", "batch"), [
    ("66%", 3, 2, 1),   # 1.98 rounds up: 2 of 3 is 66.7 %, 1 of 3 would be 33 %
    ("50%", 4, 2, 2),
    ("50%", 5, 3, 2),
    ("0%", 5, 0, 5),
    ("100%", 3, 3, 1),  # the floor cannot be kept: one at a time
    ("100.0%", 1, 1, 1),
    ("7%", 100, 7, 93),  # in floats 7 / 100 * 100 is 7.000000000000001, which would round up to 8
    ("33.4%", 3, 2, 1),
    (2, 4, 2, 2),
    (5, 3, 3, 1),
    (0, 3, 0, 3),
    (3.0, 4, 3, 1),
])
def test_min_healthy_kept_and_batch(value: Any, hosts: int, kept: int, batch: int) -> None:
    min_healthy = MinHealthy.parse(value)
    assert min_healthy.kept(hosts) == kept
    assert min_healthy.batch_size(hosts) == batch


@pytest.mark.parametrize("value", ["66", "101%", "100.5%", ".5%", "5.%", "6 6%", "-1%", True, -1, 2.5, None, "٦٦%"])
def test_min_healthy_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        MinHealthy.parse(value)


def test_min_healthy_share_and_rule_arithmetic() -> None:
    assert MinHealthy.parse("65.9%").share_percent(3) == Fraction(659, 10)
    assert not MinHealthy.parse("65.9%").meets(66, 3)
    assert MinHealthy.parse(2).share_percent(3) == Fraction(200, 3)
    assert MinHealthy.parse(2).meets(66, 3) and not MinHealthy.parse(2).meets(66, 4)
    assert MinHealthy.parse(0).meets(0, 3)
    with pytest.raises(ValueError, match="exactly one"):
        MinHealthy()


def test_percent_compared_exactly_in_python_and_in_rego() -> None:
    """65.899...9 % (20 nines) is below 65.9 % in the Python reading, which compares the decimal
    as written, and in the rule too: it compares hundredths cut from the text (issue 16; it used
    to read the percentage as a binary float, 65.9, and found nothing)."""
    assert not MinHealthy.parse("65.89999999999999999999%").meets(Decimal("65.9"), 3)
    rego = Rego()
    rego.load({"stages": [_prod_stage_with("65.89999999999999999999%")]}, {"min-healthy-hosts": {"min_percent": 65.9}})
    assert [v["path"] for v in rego.rule("data.pipewarden.rules.min_healthy_hosts.deny")] == ["stages[0].deploy.min_healthy"]


def _prod_stage_with(min_healthy: str | int) -> dict[str, Any]:
    return {"name": "p", "type": "prod", "targets": [{"name": "t", "hosts": ["h:1", "h:2", "h:3"]}],
            "deploy": {"min_healthy": min_healthy}}


# ---------------------------------------------------------------- the view of a whole pipeline


def _spec_example() -> dict[str, Any]:
    """The example of docs/reference/pipeline.md, read by the loader as `check` reads it."""
    text = PIPELINE_DOC.read_text("utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    loaded = load_pipeline_bytes("pipeline.yaml", text.encode())
    assert loaded.valid, loaded.invalid
    document: dict[str, Any] = loaded.document
    return document


def test_view_of_the_spec_example() -> None:
    view = pipeline_view(_spec_example())
    assert (view.name, view.team, view.branch) == ("checkout-service", "checkout", "main")
    assert view.build.commands == ("make build",) and view.build.artifact == "dist/"
    assert view.build.timeout_seconds == 1800 and view.build.sbom is None
    assert [(t.name, t.type, t.timeout_seconds) for t in view.build.tests] == [("unit", "unit", 1800), ("style", "style", 1800)]
    business = view.windows["business-hours"]
    assert (business.timezone, business.days, business.start_minute, business.end_minute) == (
        "America/Los_Angeles", ("mon", "tue", "wed", "thu", "fri"), 540, 1020)
    alarm = view.alarms["high-error-rate"]
    assert (alarm.threshold, alarm.comparison, alarm.periods) == (5, ">", 3)
    assert isinstance(alarm.metric, PrometheusMetric) and alarm.breaches(6) and not alarm.breaches(5)
    assert view.synthetics[0].interval_seconds == 60 and view.synthetics[0].requests[0].expect_status == 200
    assert [s.name for s in view.stages] == ["beta", "gamma", "prod-canary", "prod-wave-1", "prod-wave-2"]
    beta, gamma, canary, wave1, wave2 = view.stages
    assert [h.phase for h in beta.hooks] == ["stop", "install", "start", "validate"]
    assert [h.phase for h in gamma.hooks] == ["start", "validate"] and gamma.production_config
    assert beta.min_healthy == MinHealthy(percent=Decimal(50)) and beta.deploy_timeout_seconds == 600
    assert beta.window is None and beta.rollback == "manual" and beta.promotion == "automatic"
    assert canary.canary and canary.is_prod and canary.bake_seconds == 3600 and canary.bake_deadline_seconds is None
    assert canary.hosts == ("127.0.0.1:9301", "127.0.0.1:9302", "127.0.0.1:9306")
    assert canary.datapoints is not None and canary.datapoints.min_positive == 3000
    assert canary.datapoints.max_negative == 0 and isinstance(canary.datapoints.negative, PrometheusMetric)
    assert canary.min_healthy is not None and canary.min_healthy.batch_size(3) == 1
    assert view.window_of(canary) is business and view.window_of(beta) is None
    assert wave2.largest_target_hosts == 1 and len(wave2.targets) == 2 and wave1.bake_seconds == 1800
    assert view.prod_indices == (2, 3, 4) and view.first_prod_index == 2 and view.canary_index == 2
    assert view.non_canary_prod_indices == (3, 4) and view.preprod_before_prod == (0, 1)
    assert view.window_pieces == {"business-hours": ((540, 1020),)}
    assert view.stage("gamma") is gamma
    with pytest.raises(KeyError):
        view.stage("nope")


def test_view_defaults_and_newer_fields() -> None:
    document = {
        "apiVersion": "pipewarden/v1", "kind": "Pipeline",
        "metadata": {"name": "app", "team": "t"},
        "build": {"commands": ["make"], "timeout": "1h", "sbom": "dist/sbom.json",
                  "tests": [{"name": "u", "type": "unit", "command": "make test"},
                            {"name": "s", "type": "style", "command": "make lint", "timeout": "90s"}]},
        "alarms": {"500": {"metric": {"source": "synthetic", "name": "api", "signal": "failure"},
                           "threshold": 0.5, "comparison": "<="},
                   "cmd": {"metric": {"source": "command", "command": "./count"}, "threshold": 1,
                           "comparison": ">=", "periods": 2.0}},
        "stages": [
            {"name": "a", "type": "preprod", "canary": True, "targets": [{"name": "x", "hosts": ["h:1"]}],
             "tests": [{"name": "i", "type": "integration", "command": "make integ"}],
             "deploy": {"timeout": "5m", "hooks": {"validate": "v", "stop": "s"}, "min_healthy": 1},
             "bake": {"duration": "2h", "deadline": "3h",
                      "datapoints": {"positive": {"source": "command", "command": "c"}, "min_positive": 10}},
             "approvals": [{"name": "lead", "type": "manual"}], "alarms": ["500", "cmd"]},
            {"name": "b", "type": "prod", "targets": [{"name": "y", "hosts": ["h:2"]}]},
        ],
    }
    view = pipeline_view(document)
    assert view.branch == "main" and view.description is None and view.windows == {} and view.synthetics == ()
    assert view.build.timeout_seconds == 3600 and view.build.sbom == "dist/sbom.json"
    # A build test without a timeout of its own has the build's (engine.md: "each within build.timeout").
    assert [t.timeout_seconds for t in view.build.tests] == [3600, 90]
    assert view.alarms["500"].metric == SyntheticMetric("api", "failure") and view.alarms["500"].periods == 1
    assert view.alarms["500"].breaches(0.5) and not view.alarms["500"].breaches(0.6)
    assert view.alarms["cmd"].metric == CommandMetric("./count") and view.alarms["cmd"].periods == 2
    a, b = view.stages
    assert a.tests[0].timeout_seconds == 1800 and a.deploy_timeout_seconds == 300
    assert [h.phase for h in a.hooks] == ["stop", "validate"] and a.min_healthy == MinHealthy(count=1)
    assert (a.bake_seconds, a.bake_deadline_seconds) == (7200, 10800)
    assert a.datapoints is not None and a.datapoints.negative is None and a.datapoints.max_negative == 0
    assert a.approvals == ("lead",) and a.alarms == ("500", "cmd")
    assert (b.bake_seconds, b.hooks, b.min_healthy, b.deploy_timeout_seconds) == (0, (), None, 600)
    assert (b.rollback, b.promotion, b.canary, b.production_config) == ("manual", "automatic", False, False)
    # `canary: true` on a preprod stage makes no canary; the first prod stage has none.
    assert view.canary_index is None and view.non_canary_prod_indices == (1,) and view.preprod_before_prod == (0,)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["stages"][0].update(bake={"duration": "1.5h"}), r"stages\[0\]\.bake\.duration: bad duration"),
    (lambda d: d["stages"][0].pop("targets"), r"stages\[0\]\.targets: missing"),
    (lambda d: d["stages"][0].update(deploy={"min_healthy": "150%"}), r"stages\[0\]\.deploy\.min_healthy"),
    (lambda d: d.update(windows={"w": {"timezone": "UTC", "days": ["mon"], "start": "25:00", "end": "01:00"}}),
     r'windows\["w"\]\.start: bad clock time'),
    (lambda d: d.update(windows={"w": {"timezone": "UTC", "days": ["monday"], "start": "1:00", "end": "01:00"}}),
     r'windows\["w"\]\.days\[0\]: unknown day'),
    (lambda d: d.pop("metadata"), r"metadata: missing"),
    (lambda d: d.update(stages="x"), r"stages: expected a list"),
])
def test_view_of_an_invalid_document_names_the_field(change: Any, message: str) -> None:
    document: dict[str, Any] = {"metadata": {"name": "a", "team": "t"}, "build": {"commands": ["make"]},
                                "stages": [{"name": "s", "type": "prod", "targets": [{"name": "x", "hosts": ["h:1"]}]}]}
    change(document)
    with pytest.raises(ValueError, match="not a valid pipeline document: " + message):
        pipeline_view(document)


# ---------------------------------------------------------------- the Rego reading, directly


class Rego:
    """core.rego and the two rules the view mirrors, on one regorus engine (this thread's)."""

    UNDEFINED = object()

    def __init__(self) -> None:
        self.engine = regorus.Engine()
        for relative in ("lib/core.rego", "deployment-window/deployment_window.rego",
                         "min-healthy-hosts/min_healthy_hosts.rego"):
            path = POLICIES / relative
            self.engine.add_policy(str(path), path.read_text("utf-8"))

    def load(self, pipeline: Any, params: dict[str, Any] | None = None) -> None:
        self.engine.set_input_json(json.dumps({"pipeline": pipeline, "params": params or {}}))

    def rule(self, path: str) -> Any:
        """A rule's value as JSON data (sets as sorted lists, object keys as strings), or UNDEFINED."""
        if not path.startswith("data."):
            path = "data.pipewarden.lib.core." + path
        text = self.engine.eval_rule_as_json(path)
        return self.UNDEFINED if text == '"<undefined>"' else json.loads(text)

    def call(self, function: str, argument: Any) -> Any:
        """`data.pipewarden.lib.core.FUNCTION(argument)`, or UNDEFINED."""
        self.engine.set_input_json(json.dumps({"x": argument}))
        answer = json.loads(self.engine.eval_query_as_json(f"data.pipewarden.lib.core.{function}(input.x)"))
        results = answer.get("result") or []
        return results[0]["expressions"][0]["value"] if results else self.UNDEFINED


@functools.cache
def _rego() -> Rego:
    return Rego()


def _same_number(rego: Any, python: int) -> bool:
    """Rego's integers are exact up to 2**64 - 1; beyond, regorus computes in binary floats."""
    if python < 2**64:
        return isinstance(rego, int) and rego == python
    return isinstance(rego, float) and math.isclose(rego, python, rel_tol=1e-15)


def _undefined_to_none(value: Any) -> Any:
    return None if value is Rego.UNDEFINED else value


# ---------------------------------------------------------------- strategies

UNIT = st.sampled_from("smhd")
AMOUNT = st.one_of(st.just(0), st.integers(0, 100), st.integers(0, 10**6), st.integers(0, 2**70))


@st.composite
def durations(draw: st.DrawFn) -> str:
    zeros = "0" * draw(st.integers(0, 2))
    return f"{zeros}{draw(AMOUNT)}{draw(UNIT)}"


CLOCK = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
EDGE_CLOCK = st.sampled_from(["00:00", "00:01", "06:00", "09:00", "12:00", "17:00", "22:00", "23:59"])
ANY_CLOCK = st.one_of(CLOCK, EDGE_CLOCK)
DAY_LIST = st.lists(st.sampled_from(DAYS), min_size=1, max_size=8)  # the schema allows repeats
WINDOW_NAMES = st.sampled_from(["business-hours", "night", "500", "a b", "w"])
TEST_TYPES = st.sampled_from(["unit", "style", "coverage", "integration", "load", "security", "browser",
                              "fault-injection", "smoke", "other"])


@st.composite
def start_end(draw: st.DrawFn) -> tuple[str, str]:
    start = draw(ANY_CLOCK)
    end = draw(st.one_of(st.just(start), ANY_CLOCK))
    return start, end


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    result = {}
    for name in draw(st.lists(WINDOW_NAMES, max_size=4, unique=True)):
        start, end = draw(start_end())
        result[name] = {"timezone": draw(st.sampled_from(["UTC", "Europe/Paris", "America/Los_Angeles"])),
                        "days": draw(DAY_LIST), "start": start, "end": end}
    return result


@st.composite
def suites(draw: st.DrawFn, prefix: str) -> list[dict[str, Any]]:
    tests = []
    for k in range(draw(st.integers(0, 3))):
        test = {"name": f"{prefix}{k}", "type": draw(TEST_TYPES), "command": "make test"}
        if draw(st.booleans()):
            test["timeout"] = draw(durations())
        tests.append(test)
    return tests


@st.composite
def min_healthy_values(draw: st.DrawFn) -> str | int:
    return draw(st.one_of(
        st.integers(0, 20),
        st.integers(0, 100).map(lambda n: f"{n}%"),
        st.builds(lambda a, b: f"{a}.{b}%", st.integers(0, 99), st.integers(0, 999)),
        st.sampled_from(["100.0%", "100.00%", "0.0%", "66%", "66.6%", "66.7%", "65.9%", "75%"]),
    ))


METRIC = st.one_of(
    st.just({"source": "prometheus", "query": "sum(x)"}),
    st.just({"source": "synthetic", "name": "api", "signal": "success"}),
    st.just({"source": "command", "command": "./count"}),
)


@st.composite
def stages(draw: st.DrawFn, window_names: list[str], alarm_names: list[str]) -> list[dict[str, Any]]:
    result = []
    for i in range(draw(st.integers(1, 6))):
        stage: dict[str, Any] = {"name": f"s{i}", "type": draw(st.sampled_from(["preprod", "prod"]))}
        stage["targets"] = [
            {"name": f"t{i}-{k}", "hosts": [f"127.0.0.1:{9000 + 10 * k + j}" for j in range(draw(st.integers(1, 6)))]}
            for k in range(draw(st.integers(1, 3)))
        ]
        for flag in ("canary", "production_config"):
            if draw(st.booleans()):
                stage[flag] = draw(st.booleans())
        if window_names and draw(st.booleans()):
            stage["window"] = draw(st.sampled_from(window_names))
        if alarm_names and draw(st.booleans()):
            stage["alarms"] = draw(st.lists(st.sampled_from(alarm_names), unique=True))
        if draw(st.booleans()):
            deploy: dict[str, Any] = {}
            if draw(st.booleans()):
                phases = draw(st.lists(st.sampled_from(["validate", "start", "install", "stop"]), unique=True))
                deploy["hooks"] = {phase: f"./{phase}.sh" for phase in phases}
            if draw(st.booleans()):
                deploy["min_healthy"] = draw(min_healthy_values())
            if draw(st.booleans()):
                deploy["timeout"] = draw(durations())
            stage["deploy"] = deploy
        if draw(st.booleans()):
            bake: dict[str, Any] = {}
            if draw(st.booleans()):
                bake["duration"] = draw(durations())
            if draw(st.booleans()):
                bake["deadline"] = draw(durations())
            if draw(st.booleans()):
                bake["datapoints"] = {"positive": draw(METRIC), "min_positive": draw(st.integers(0, 5000))}
                if draw(st.booleans()):
                    bake["datapoints"]["negative"] = draw(METRIC)
                    bake["datapoints"]["max_negative"] = draw(st.integers(0, 5))
            stage["bake"] = bake
        tests = draw(suites(f"s{i}-"))
        if tests or draw(st.booleans()):
            stage["tests"] = tests
        for key in ("rollback", "promotion"):
            if draw(st.booleans()):
                stage[key] = draw(st.sampled_from(["automatic", "manual"]))
        if draw(st.booleans()):
            stage["approvals"] = [{"name": "lead", "type": "manual"}][: draw(st.integers(0, 1))]
        result.append(stage)
    return result


@st.composite
def pipelines(draw: st.DrawFn) -> dict[str, Any]:
    build: dict[str, Any] = {"commands": ["make build"]}
    if draw(st.booleans()):
        build["tests"] = draw(suites("b"))
    if draw(st.booleans()):
        build["timeout"] = draw(durations())
    document: dict[str, Any] = {"apiVersion": "pipewarden/v1", "kind": "Pipeline",
                                "metadata": {"name": "app", "team": "team"}, "build": build}
    named_windows = draw(windows())
    if named_windows or draw(st.booleans()):
        document["windows"] = named_windows
    alarm_names = draw(st.lists(st.sampled_from(["errors", "latency"]), unique=True))
    if alarm_names:
        document["alarms"] = {name: {"metric": draw(METRIC), "threshold": draw(st.integers(0, 10)),
                                     "comparison": draw(st.sampled_from([">", ">=", "<", "<="]))}
                              for name in alarm_names}
    if draw(st.booleans()):
        document["synthetics"] = [{"name": "api", "interval": draw(durations()),
                                   "requests": [{"method": "GET", "path": "/health", "expect_status": 200}]}]
    document["stages"] = draw(stages(list(named_windows), alarm_names))
    return document


@st.composite
def rule_params(draw: st.DrawFn) -> dict[str, Any]:
    earliest, latest = draw(start_end())
    return {
        "deployment-window": {"days": draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True)),
                              "earliest": earliest, "latest": latest},
        # Integers and one-decimal values: the rule compares in binary floats, exact for these.
        # (the sampled ones meet generated values exactly, to try the boundary).
        "min-healthy-hosts": {"min_percent": draw(st.one_of(
            st.sampled_from([0, 50, 66, 75, 100, 65.9, 66.6, 66.7]),
            st.integers(0, 100),
            st.integers(0, 1000).map(lambda n: n / 10),
        ))},
    }


@functools.cache
def _newer_schema_validator() -> Any:
    """The pipeline schema plus the fields of the newer contract (../shared/spec/pipeline.md)."""
    schema = copy.deepcopy(load_schema("pipeline"))
    duration = {"$ref": "#/definitions/duration"}
    schema["properties"]["build"]["properties"].update(timeout=duration, sbom={"type": "string", "minLength": 1})
    definitions = schema["definitions"]
    definitions["test"]["properties"]["timeout"] = duration
    definitions["stage"]["properties"]["deploy"]["properties"]["timeout"] = duration
    definitions["stage"]["properties"]["bake"]["properties"]["deadline"] = duration
    return fastjsonschema.compile(schema)


# ---------------------------------------------------------------- differential tests

OUTSIDE = {(False, True): "days", (True, False): "hours", (False, False): "days and hours"}


# 200 documents: about 5 s, most of it generating them.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=pipelines(), params=rule_params())
def test_view_agrees_with_rego(document: dict[str, Any], params: dict[str, Any]) -> None:
    _newer_schema_validator()(document)  # the generator makes valid documents only
    view = pipeline_view(document)
    rego = _rego()
    rego.load(document, params)

    bake = rego.rule("bake_seconds")
    assert set(bake) == {str(stage.index) for stage in view.stages}  # {i: ...} keys come back as text
    for stage in view.stages:
        assert _same_number(bake[str(stage.index)], stage.bake_seconds), stage

    pieces = rego.rule("window_pieces")
    assert {name: tuple(tuple(p) for p in sorted(ps)) for name, ps in pieces.items()} == view.window_pieces

    assert tuple(rego.rule("prod_indices")) == view.prod_indices
    assert _undefined_to_none(rego.rule("first_prod_index")) == view.first_prod_index
    assert _undefined_to_none(rego.rule("canary_index")) == view.canary_index
    assert tuple(rego.rule("non_canary_prod_indices")) == view.non_canary_prod_indices
    assert tuple(rego.rule("preprod_before_prod")) == view.preprod_before_prod

    # deployment-window: what of each window is outside the allowed days and hours, then the verdicts.
    allowed = params["deployment-window"]
    earliest, latest = clock_minutes(allowed["earliest"]), clock_minutes(allowed["latest"])
    expected_outside = {}
    for name, window in view.windows.items():
        fits = (window.days_within(allowed["days"]), window.minutes_within(earliest, latest))
        assert window_within(window, allowed["days"], allowed["earliest"], allowed["latest"]) == all(fits)
        # The minute reading, once more by brute force over the minutes of the day.
        covered = {m for a, b in window.pieces() for m in range(a, b)}
        allowed_minutes = {m for a, b in interval_pieces(earliest, latest) for m in range(a, b)}
        assert fits[1] == (covered <= allowed_minutes)
        if not all(fits):
            expected_outside[name] = OUTSIDE[fits]
    assert rego.rule("data.pipewarden.rules.deployment_window._windows_outside") == expected_outside
    window_denied = {v["path"] for v in rego.rule("data.pipewarden.rules.deployment_window.deny")}
    assert window_denied == {
        f"stages[{s.index}].window" for s in view.stages
        if s.is_prod and (s.window is None or not window_within(view.windows[s.window], allowed["days"],
                                                                 allowed["earliest"], allowed["latest"]))
    }

    # min-healthy-hosts: the rule's arithmetic on the view's MinHealthy.
    min_percent = Decimal(repr(params["min-healthy-hosts"]["min_percent"]))
    healthy_denied = {v["path"] for v in rego.rule("data.pipewarden.rules.min_healthy_hosts.deny")}
    assert healthy_denied == {
        f"stages[{s.index}].deploy.min_healthy" for s in view.stages
        if s.is_prod and (s.min_healthy is None or not s.min_healthy.meets(min_percent, s.largest_target_hosts))
    }


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(durations(), st.text(alphabet="0123456789smhdSM .-+_٣", max_size=8)))
def test_duration_seconds_agrees_with_rego(text: str) -> None:
    rego = _rego().call("duration_seconds", text)
    try:
        python = duration_seconds(text)
    except ValueError:
        assert rego is Rego.UNDEFINED, (text, rego)  # the same grammar: both refuse
    else:
        assert _same_number(rego, python), (text, rego, python)


def test_minutes_agrees_with_rego_on_every_clock_time() -> None:
    rego = _rego()
    for minute in range(1440):
        for text in (f"{minute // 60:02d}:{minute % 60:02d}", f"{minute // 60}:{minute % 60:02d}"):
            assert rego.call("minutes", text) == clock_minutes(text) == minute, text


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.from_regex(r"[0-9]{1,3}:[0-9]{1,3}", fullmatch=True),
                      st.text(alphabet="0123456789: -+٣x", max_size=7)))
def test_minutes_agrees_with_rego(text: str) -> None:
    """Where the Python reading gives a minute, Rego gives the same; Rego alone also reads times
    the schema never lets through (hours above 23, minutes above 59, three-digit hours), which
    Python refuses."""
    rego = _rego().call("minutes", text)
    try:
        python = clock_minutes(text)
    except ValueError:
        if rego is not Rego.UNDEFINED:
            hours, minutes = text.split(":")
            assert int(hours) > 23 or int(minutes) > 59 or len(hours) > 2, (text, rego)
    else:
        assert rego == python, (text, rego, python)


@st.composite
def min_healthy_cases(draw: st.DrawFn) -> tuple[list[int], str | int, int | float]:
    """Target sizes, a min_healthy value and a min_percent, often exactly at the rule's boundary."""
    sizes = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    if draw(st.booleans()):
        kept = draw(st.integers(0, 10))
        share = Fraction(kept * 100, max(sizes))
        boundary = int(share) if share.denominator == 1 else draw(st.integers(0, 100))
        return sizes, kept, draw(st.sampled_from([boundary, max(boundary - 1, 0), min(boundary + 1, 100)]))
    min_percent = draw(st.one_of(st.integers(0, 100), st.integers(0, 1000).map(lambda n: n / 10)))
    written = Decimal(repr(min_percent)) + draw(st.sampled_from([Decimal(0), Decimal("0.1"), Decimal("-0.1"), Decimal(1)]))
    written = min(max(written, Decimal(0)), Decimal(100))
    return sizes, f"{written}%", min_percent


@settings(max_examples=300, deadline=None)
@given(case=min_healthy_cases())
def test_min_healthy_agrees_with_rego(case: tuple[list[int], str | int, int | float]) -> None:
    sizes, value, min_percent = case
    stage = {"name": "p", "type": "prod", "deploy": {"min_healthy": value},
             "targets": [{"name": f"t{k}", "hosts": [f"h:{j + 1}" for j in range(n)]} for k, n in enumerate(sizes)]}
    rego = _rego()
    rego.load({"stages": [stage]}, {"min-healthy-hosts": {"min_percent": min_percent}})
    denied = bool(rego.rule("data.pipewarden.rules.min_healthy_hosts.deny"))
    view = pipeline_view({"metadata": {"name": "a", "team": "t"}, "build": {"commands": ["make"]}, "stages": [stage]})
    min_healthy = view.stages[0].min_healthy
    assert min_healthy is not None
    assert denied == (not min_healthy.meets(Decimal(repr(min_percent)), view.stages[0].largest_target_hosts)), case
