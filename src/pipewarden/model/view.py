"""A typed view of a valid pipeline document: what the release engine's gates and planner read.

`pipeline_view(document)` takes the dict the loader produces once the document has passed the
schema (pipeline.md) and gives a tree of frozen values with every default of the format filled
in, durations in seconds (`model.durations.duration_seconds`) and window times in minutes of the
day. The derived facts the rules share (`prod_indices`, `canary_index`, the pieces of a window, a
stage's bake seconds) are computed the way `policies/lib/core.rego` computes them; a
differential property test (tests/test_model_view.py) holds the two readings equal.

Units: every `*_seconds` field is whole seconds (int); every `*_minute` field and window piece is
a minute of the day in [0, 1440). Days are the three-letter names of the format, `mon`..`sun`.

The dict fields (`PipelineView.windows`, `.alarms`) are plain dicts so that the values convert
to JSON as they are; treat them as read-only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

from pipewarden.model.durations import (
    MINUTES_PER_DAY,
    Piece,
    clock_minutes,
    duration_seconds,
    interval_pieces,
    pieces_length,
    pieces_within,
)

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names in week order; the index of a name is Python's `date.weekday()`."""

HOOK_ORDER: tuple[str, ...] = ("stop", "install", "start", "validate")
"""The order in which a host's lifecycle hooks run."""

DEFAULT_BUILD_TIMEOUT_SECONDS = 30 * 60
DEFAULT_TEST_TIMEOUT_SECONDS = 30 * 60
DEFAULT_DEPLOY_TIMEOUT_SECONDS = 10 * 60

Comparison = Literal[">", ">=", "<", "<="]


# ---------------------------------------------------------------- metric references


@dataclass(frozen=True, slots=True)
class PrometheusMetric:
    """`{source: prometheus, query}`: an instant query; placeholders (`$__hosts`...) unexpanded."""

    query: str
    source: Literal["prometheus"] = "prometheus"


@dataclass(frozen=True, slots=True)
class SyntheticMetric:
    """`{source: synthetic, name, signal}`: a count of one synthetic's successful or failed requests."""

    name: str
    signal: Literal["success", "failure"]
    source: Literal["synthetic"] = "synthetic"


@dataclass(frozen=True, slots=True)
class CommandMetric:
    """`{source: command, command}`: a shell command that prints one number."""

    command: str
    source: Literal["command"] = "command"


MetricRef = PrometheusMetric | SyntheticMetric | CommandMetric


# ---------------------------------------------------------------- build, tests


@dataclass(frozen=True, slots=True)
class TestView:
    """One test: `{name, type, command, timeout?}`; `timeout_seconds` with its default filled in."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    type: str
    command: str
    timeout_seconds: int = DEFAULT_TEST_TIMEOUT_SECONDS


@dataclass(frozen=True, slots=True)
class BuildView:
    """`build`: commands in order, the artifact path, the optional SBOM path, the timeout of each
    command (default 30 min) and the build tests."""

    commands: tuple[str, ...]
    artifact: str = "dist/"
    sbom: str | None = None
    timeout_seconds: int = DEFAULT_BUILD_TIMEOUT_SECONDS
    tests: tuple[TestView, ...] = ()


# ---------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class WindowView:
    """A named deployment window: opens on each of `days` at `start_minute` (local to `timezone`)
    and closes at `end_minute`, the next day when `end_minute < start_minute`, a whole day later
    when they are equal.

    Two readings of it: `pieces()` is the set of minutes of the day the window covers, with no
    week-spanning reasoning (how the deployment-window rule and rules.md judge it); `is_open_at`
    follows each occurrence from its opening day into the next one (engine.md's window gate reads
    occurrences; whole-day occurrences on consecutive days touch, and the minutes between them
    are all open). `days` keeps the order written.
    """

    name: str
    timezone: str
    days: tuple[str, ...]
    start_minute: int
    end_minute: int

    def pieces(self) -> tuple[Piece, ...]:
        """Sorted minute intervals [a, b) within [0, 1440): core.rego's `window_pieces[name]`."""
        return interval_pieces(self.start_minute, self.end_minute)

    @property
    def length_minutes(self) -> int:
        """Minutes of one occurrence as written (1440 when start equals end), DST aside."""
        return pieces_length(self.pieces())

    @property
    def wraps(self) -> bool:
        """True when an occurrence runs past midnight into the next day."""
        return self.start_minute + self.length_minutes > MINUTES_PER_DAY

    def opens_on(self, day: str) -> bool:
        """True when an occurrence starts on `day`."""
        _day_index(day)
        return day in self.days

    def is_open_at(self, day: str, minute: int) -> bool:
        """True when the local wall time (`day`, `minute` of the day) lies in an occurrence: one that
        opened that day at or before `minute`, or one that opened the day before and runs past
        midnight. A Friday 22:00-06:00 window is open on Saturday at 03:00, not on Friday at 03:00.
        """
        index = _day_index(day)
        if not 0 <= minute < MINUTES_PER_DAY:
            raise ValueError(f"minute of the day out of range: {minute} (0-1439)")
        length = self.length_minutes
        previous = DAYS[(index - 1) % 7]
        if day in self.days and 0 <= minute - self.start_minute < length:
            return True
        return previous in self.days and minute + MINUTES_PER_DAY - self.start_minute < length

    def days_within(self, days: Iterable[str]) -> bool:
        """True when every day this window opens on is one of `days` (core.window_days_allowed)."""
        return set(self.days) <= set(days)

    def minutes_within(self, earliest: int, latest: int) -> bool:
        """True when every minute of the window lies in the daily interval [earliest, latest)
        (minutes of the day; wrapping and whole-day as for a window)."""
        return pieces_within(self.pieces(), interval_pieces(earliest, latest))


def window_within(window: WindowView, days: Iterable[str], earliest: str, latest: str) -> bool:
    """The deployment-window rule's verdict on one window: True when its days are among `days`
    and its minutes within [`earliest`, `latest`) (`HH:MM`, read in the window's own timezone).
    """
    return window.days_within(days) and window.minutes_within(clock_minutes(earliest), clock_minutes(latest))


def _day_index(day: str) -> int:
    try:
        return DAYS.index(day)
    except ValueError:
        raise ValueError(f"unknown day {day!r}: one of {', '.join(DAYS)}") from None


# ---------------------------------------------------------------- alarms, synthetics


@dataclass(frozen=True, slots=True)
class AlarmView:
    """A named alarm: breaches when `value <comparison> threshold`; fires after `periods`
    consecutive breaching evaluations (default 1)."""

    name: str
    metric: MetricRef
    threshold: int | float
    comparison: Comparison
    periods: int = 1

    def breaches(self, value: float) -> bool:
        """True when one observed value breaches the threshold."""
        if self.comparison == ">":
            return value > self.threshold
        if self.comparison == ">=":
            return value >= self.threshold
        if self.comparison == "<":
            return value < self.threshold
        return value <= self.threshold


@dataclass(frozen=True, slots=True)
class SyntheticRequest:
    """One request of a synthetic; a success is a response with `expect_status`."""

    method: str
    path: str
    expect_status: int


@dataclass(frozen=True, slots=True)
class SyntheticView:
    """A synthetic: `requests` sent every `interval_seconds` (None when the file sets no interval:
    the format gives no default)."""

    name: str
    interval_seconds: int | None = None
    requests: tuple[SyntheticRequest, ...] = ()


# ---------------------------------------------------------------- stages


@dataclass(frozen=True, slots=True)
class TargetView:
    """A target (one cell) and its `host:port` strings, in the order written (the batch order)."""

    name: str
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HookView:
    """One lifecycle hook: `phase` is one of HOOK_ORDER, `command` a shell command."""

    phase: str
    command: str


@dataclass(frozen=True, slots=True)
class MinHealthy:
    """`deploy.min_healthy`: a percentage of a target's hosts (`"66%"`, `percent=Decimal("66")`) or
    a host count (`2`, `count=2`); exactly one is set.

    Rounding: a percentage is a floor on the share of hosts kept in service, so the number kept is
    rounded *up* (`kept(3)` for 66 % is 2, which is 66.7 %; rounding down would keep 1, 33 %). This
    is what the min-healthy-hosts rule assumes: it passes a percentage P >= min_percent as it is,
    and judges a count k by k * 100 >= min_percent * hosts, and ceil(P * hosts / 100) hosts keep at
    least P % of them. It is also engine.md's batch arithmetic, done exactly (Fraction, not float).
    """

    percent: Decimal | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.count is None):
            raise ValueError("min_healthy is a percentage or a count: set exactly one")
        if self.percent is not None and not Decimal(0) <= self.percent <= Decimal(100):
            raise ValueError(f"min_healthy percentage out of range: {self.percent}% (0-100)")
        if self.count is not None and self.count < 0:
            raise ValueError(f"min_healthy count is negative: {self.count}")

    @classmethod
    def parse(cls, value: object) -> MinHealthy:
        """Read the value as written: `"N%"` (N with optional decimals, 0-100) or an integer >= 0."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(count=value)
        if isinstance(value, float) and value.is_integer():
            # JSON Schema's "integer" takes 3.0 (YAML `3.0`).
            return cls(count=int(value))
        if isinstance(value, str) and value.endswith("%"):
            number = value[:-1]
            digits = number.replace(".", "", 1)
            if digits.isascii() and digits.isdigit() and not number.startswith(".") and not number.endswith("."):
                try:
                    return cls(percent=Decimal(number))
                except InvalidOperation:  # pragma: no cover - the check above admits only decimals
                    pass
        raise ValueError(f"bad min_healthy {value!r}: a percentage such as '66%' or a host count")

    def kept(self, hosts: int) -> int:
        """How many of a target's `hosts` must stay in service while it deploys: ceil(hosts * P / 100)
        for a percentage, the count for a count (at most `hosts`: a count above it cannot be kept)."""
        if hosts < 0:
            raise ValueError(f"negative number of hosts: {hosts}")
        if self.percent is not None:
            return math.ceil(Fraction(self.percent) * hosts / 100)
        assert self.count is not None
        return min(self.count, hosts)

    def batch_size(self, hosts: int) -> int:
        """Hosts deployed at once in a target of `hosts`: `max(1, hosts - kept(hosts))` (engine.md;
        one at a time when the floor cannot be kept, as with 100 %)."""
        return max(1, hosts - self.kept(hosts))

    def share_percent(self, hosts: int) -> Fraction:
        """The share of `hosts` kept, in percent, as the min-healthy-hosts rule reads it: the
        percentage as written, or count * 100 / hosts (`hosts` > 0) for a count."""
        if self.percent is not None:
            return Fraction(self.percent)
        assert self.count is not None
        if hosts <= 0:
            raise ValueError(f"a count's share needs at least one host, not {hosts}")
        return Fraction(self.count * 100, hosts)

    def meets(self, min_percent: Fraction | Decimal | int, largest_target_hosts: int) -> bool:
        """The min-healthy-hosts rule's arithmetic: a percentage passes when P >= min_percent; a
        count is judged against the stage's largest target (the smallest share it keeps)."""
        if self.count is not None and largest_target_hosts <= 0:
            return True  # the rule has nothing to judge a count against
        return self.share_percent(largest_target_hosts) >= Fraction(min_percent)


@dataclass(frozen=True, slots=True)
class DatapointsView:
    """`bake.datapoints`: the bake waits for `min_positive` good events with at most
    `max_negative` bad ones (`negative` None: 0 negatives)."""

    positive: MetricRef
    min_positive: int
    negative: MetricRef | None = None
    max_negative: int = 0


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage, at `index` in the document, with every default filled in.

    `hooks` keeps HOOK_ORDER and only the hooks present; `min_healthy` is None when not set (the
    engine then deploys one host at a time); `deploy_timeout_seconds` bounds one hook on one host
    (default 10 min); `bake_seconds` is `bake.duration` (default 0) and `bake_deadline_seconds`
    the optional `bake.deadline`; `window` and `alarms` are names in `PipelineView.windows` and
    `.alarms`; `approvals` the names of the sign-offs wanted before the stage starts.
    """

    index: int
    name: str
    type: Literal["preprod", "prod"]
    targets: tuple[TargetView, ...]
    canary: bool = False
    production_config: bool = False
    hooks: tuple[HookView, ...] = ()
    min_healthy: MinHealthy | None = None
    deploy_timeout_seconds: int = DEFAULT_DEPLOY_TIMEOUT_SECONDS
    tests: tuple[TestView, ...] = ()
    window: str | None = None
    alarms: tuple[str, ...] = ()
    bake_seconds: int = 0
    bake_deadline_seconds: int | None = None
    datapoints: DatapointsView | None = None
    rollback: Literal["automatic", "manual"] = "manual"
    promotion: Literal["automatic", "manual"] = "automatic"
    approvals: tuple[str, ...] = ()

    @property
    def is_prod(self) -> bool:
        return self.type == "prod"

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host of the stage, target by target, in the order written."""
        return tuple(host for target in self.targets for host in target.hosts)

    @property
    def largest_target_hosts(self) -> int:
        """Hosts of the stage's largest target (what the min-healthy-hosts rule judges a count by)."""
        return max((len(target.hosts) for target in self.targets), default=0)


# ---------------------------------------------------------------- the pipeline


@dataclass(frozen=True, slots=True)
class PipelineView:
    """A valid pipeline with its defaults filled in; see the module docstring for units."""

    name: str
    team: str
    build: BuildView
    stages: tuple[StageView, ...]
    description: str | None = None
    branch: str = "main"
    windows: dict[str, WindowView] = field(default_factory=dict)
    alarms: dict[str, AlarmView] = field(default_factory=dict)
    synthetics: tuple[SyntheticView, ...] = ()

    @property
    def prod_indices(self) -> tuple[int, ...]:
        """Indices of the prod stages, in document order (core.prod_indices)."""
        return tuple(stage.index for stage in self.stages if stage.is_prod)

    @property
    def first_prod_index(self) -> int | None:
        """Index of the first prod stage; None without one (core.first_prod_index undefined)."""
        prod = self.prod_indices
        return prod[0] if prod else None

    @property
    def canary_index(self) -> int | None:
        """The first prod stage when it has `canary: true`, else None (core.canary_index). A
        `canary: true` on any other stage makes no canary."""
        first = self.first_prod_index
        return first if first is not None and self.stages[first].canary else None

    @property
    def non_canary_prod_indices(self) -> tuple[int, ...]:
        """Prod stages other than the canary stage (all of them without one)."""
        canary = self.canary_index
        return tuple(i for i in self.prod_indices if i != canary)

    @property
    def preprod_before_prod(self) -> tuple[int, ...]:
        """Preprod stages before the first prod stage; empty without a prod stage."""
        first = self.first_prod_index
        if first is None:
            return ()
        return tuple(stage.index for stage in self.stages[:first] if stage.type == "preprod")

    @property
    def window_pieces(self) -> dict[str, tuple[Piece, ...]]:
        """Pieces of every named window (core.window_pieces)."""
        return {name: window.pieces() for name, window in self.windows.items()}

    def stage(self, name: str) -> StageView:
        """The stage named `name`; KeyError when there is none."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def window_of(self, stage: StageView) -> WindowView | None:
        """The window a stage deploys in, None when it may deploy at any time."""
        return None if stage.window is None else self.windows[stage.window]


# ---------------------------------------------------------------- building the view


def pipeline_view(document: Mapping[str, Any]) -> PipelineView:
    """The view of a pipeline document that passed the schema (the loader's dict).

    Raises ValueError naming the field when the document is not of that shape: the view does no
    validation beyond what reading it needs, so give it only validated documents.
    """
    try:
        return _pipeline(document)
    except _Bad as bad:
        raise ValueError(f"not a valid pipeline document: {bad.path}: {bad.reason}") from None


class _Bad(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Bad(path, "expected a mapping")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _Bad(path, "expected a list")
    return list(value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Bad(path, "expected a string")
    return value


def _opt_str(mapping: Mapping[str, Any], key: str, path: str) -> str | None:
    return None if key not in mapping else _str(mapping[key], f"{path}.{key}")


def _required(mapping: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in mapping:
        raise _Bad(f"{path}.{key}" if path else key, "missing")
    return mapping[key]


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise _Bad(path, "expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Bad(path, "expected an integer")


def _bool(mapping: Mapping[str, Any], key: str, path: str) -> bool:
    value = mapping.get(key, False)
    if not isinstance(value, bool):
        raise _Bad(f"{path}.{key}", "expected true or false")
    return value


def _choice(mapping: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> Any:
    value = mapping.get(key, default)
    if value not in choices:
        raise _Bad(f"{path}.{key}", f"expected one of {', '.join(choices)}")
    return value


def _seconds(value: Any, path: str) -> int:
    try:
        return duration_seconds(value)
    except ValueError as error:
        raise _Bad(path, str(error)) from None


def _opt_seconds(mapping: Mapping[str, Any], key: str, path: str, default: int) -> int:
    return default if key not in mapping else _seconds(mapping[key], f"{path}.{key}")


def _minute(value: Any, path: str) -> int:
    try:
        return clock_minutes(value)
    except ValueError as error:
        raise _Bad(path, str(error)) from None


def _key_path(parent: str, key: str) -> str:
    return f'{parent}["{key}"]'


def _pipeline(document: Mapping[str, Any]) -> PipelineView:
    document = _mapping(document, "(document)")
    metadata = _mapping(_required(document, "metadata", ""), "metadata")
    source = _mapping(document.get("source", {}), "source")
    windows = _mapping(document.get("windows", {}), "windows")
    alarms = _mapping(document.get("alarms", {}), "alarms")
    synthetics = _list(document.get("synthetics", []), "synthetics")
    stages = _list(_required(document, "stages", ""), "stages")
    return PipelineView(
        name=_str(_required(metadata, "name", "metadata"), "metadata.name"),
        team=_str(_required(metadata, "team", "metadata"), "metadata.team"),
        description=_opt_str(metadata, "description", "metadata"),
        branch=_str(source.get("branch", "main"), "source.branch"),
        build=_build(_mapping(_required(document, "build", ""), "build")),
        windows={name: _window(name, w, _key_path("windows", name)) for name, w in windows.items()},
        alarms={name: _alarm(name, a, _key_path("alarms", name)) for name, a in alarms.items()},
        synthetics=tuple(_synthetic(s, f"synthetics[{i}]") for i, s in enumerate(synthetics)),
        stages=tuple(_stage(i, s, f"stages[{i}]") for i, s in enumerate(stages)),
    )


def _tests(value: Any, path: str, default_timeout: int) -> tuple[TestView, ...]:
    tests = []
    for i, raw in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        test = _mapping(raw, where)
        tests.append(TestView(
            name=_str(_required(test, "name", where), f"{where}.name"),
            type=_str(_required(test, "type", where), f"{where}.type"),
            command=_str(_required(test, "command", where), f"{where}.command"),
            timeout_seconds=_opt_seconds(test, "timeout", where, default_timeout),
        ))
    return tuple(tests)


def _build(build: Mapping[str, Any]) -> BuildView:
    timeout = _opt_seconds(build, "timeout", "build", DEFAULT_BUILD_TIMEOUT_SECONDS)
    return BuildView(
        commands=tuple(_str(c, f"build.commands[{i}]") for i, c in
                       enumerate(_list(_required(build, "commands", "build"), "build.commands"))),
        artifact=_str(build.get("artifact", "dist/"), "build.artifact"),
        sbom=_opt_str(build, "sbom", "build"),
        timeout_seconds=timeout,
        # engine.md runs build tests "each within build.timeout"; pipeline.md gives each test its
        # own `timeout`. A build test's own timeout wins; without one it has the build's.
        tests=_tests(build.get("tests", []), "build.tests", timeout),
    )


def _window(name: str, raw: Any, path: str) -> WindowView:
    window = _mapping(raw, path)
    days = tuple(_str(d, f"{path}.days[{i}]") for i, d in enumerate(_list(_required(window, "days", path),
                                                                            f"{path}.days")))
    for i, day in enumerate(days):
        if day not in DAYS:
            raise _Bad(f"{path}.days[{i}]", f"unknown day {day!r}")
    return WindowView(
        name=name,
        timezone=_str(_required(window, "timezone", path), f"{path}.timezone"),
        days=days,
        start_minute=_minute(_required(window, "start", path), f"{path}.start"),
        end_minute=_minute(_required(window, "end", path), f"{path}.end"),
    )


def _metric(raw: Any, path: str) -> MetricRef:
    metric = _mapping(raw, path)
    source = _required(metric, "source", path)
    if source == "prometheus":
        return PrometheusMetric(query=_str(_required(metric, "query", path), f"{path}.query"))
    if source == "synthetic":
        signal = _choice(metric, "signal", path, ("success", "failure"), "")
        return SyntheticMetric(name=_str(_required(metric, "name", path), f"{path}.name"), signal=signal)
    if source == "command":
        return CommandMetric(command=_str(_required(metric, "command", path), f"{path}.command"))
    raise _Bad(f"{path}.source", "expected prometheus, synthetic or command")


def _alarm(name: str, raw: Any, path: str) -> AlarmView:
    alarm = _mapping(raw, path)
    threshold = _required(alarm, "threshold", path)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _Bad(f"{path}.threshold", "expected a number")
    return AlarmView(
        name=name,
        metric=_metric(_required(alarm, "metric", path), f"{path}.metric"),
        threshold=threshold,
        comparison=_choice(alarm, "comparison", path, (">", ">=", "<", "<="), ""),
        periods=_int(alarm.get("periods", 1), f"{path}.periods"),
    )


def _synthetic(raw: Any, path: str) -> SyntheticView:
    synthetic = _mapping(raw, path)
    requests = []
    for i, request_raw in enumerate(_list(synthetic.get("requests", []), f"{path}.requests")):
        where = f"{path}.requests[{i}]"
        request = _mapping(request_raw, where)
        requests.append(SyntheticRequest(
            method=_str(_required(request, "method", where), f"{where}.method"),
            path=_str(_required(request, "path", where), f"{where}.path"),
            expect_status=_int(_required(request, "expect_status", where), f"{where}.expect_status"),
        ))
    interval = synthetic.get("interval")
    return SyntheticView(
        name=_str(_required(synthetic, "name", path), f"{path}.name"),
        interval_seconds=None if interval is None else _seconds(interval, f"{path}.interval"),
        requests=tuple(requests),
    )


def _stage(index: int, raw: Any, path: str) -> StageView:
    stage = _mapping(raw, path)
    deploy = _mapping(stage.get("deploy", {}), f"{path}.deploy")
    hooks = _mapping(deploy.get("hooks", {}), f"{path}.deploy.hooks")
    bake = _mapping(stage.get("bake", {}), f"{path}.bake")
    targets = []
    for i, target_raw in enumerate(_list(_required(stage, "targets", path), f"{path}.targets")):
        where = f"{path}.targets[{i}]"
        target = _mapping(target_raw, where)
        hosts = _list(_required(target, "hosts", where), f"{where}.hosts")
        targets.append(TargetView(
            name=_str(_required(target, "name", where), f"{where}.name"),
            hosts=tuple(_str(h, f"{where}.hosts[{j}]") for j, h in enumerate(hosts)),
        ))
    min_healthy = None
    if "min_healthy" in deploy:
        try:
            min_healthy = MinHealthy.parse(deploy["min_healthy"])
        except ValueError as error:
            raise _Bad(f"{path}.deploy.min_healthy", str(error)) from None
    deadline = bake.get("deadline")
    approvals = []
    for i, approval in enumerate(_list(stage.get("approvals", []), f"{path}.approvals")):
        where = f"{path}.approvals[{i}]"
        approvals.append(_str(_required(_mapping(approval, where), "name", where), f"{where}.name"))
    return StageView(
        index=index,
        name=_str(_required(stage, "name", path), f"{path}.name"),
        type=_choice(stage, "type", path, ("preprod", "prod"), ""),
        targets=tuple(targets),
        canary=_bool(stage, "canary", path),
        production_config=_bool(stage, "production_config", path),
        hooks=tuple(HookView(phase, _str(hooks[phase], f"{path}.deploy.hooks.{phase}"))
                    for phase in HOOK_ORDER if phase in hooks),
        min_healthy=min_healthy,
        deploy_timeout_seconds=_opt_seconds(deploy, "timeout", f"{path}.deploy", DEFAULT_DEPLOY_TIMEOUT_SECONDS),
        tests=_tests(stage.get("tests", []), f"{path}.tests", DEFAULT_TEST_TIMEOUT_SECONDS),
        window=_opt_str(stage, "window", path),
        alarms=tuple(_str(a, f"{path}.alarms[{i}]") for i, a in enumerate(_list(stage.get("alarms", []),
                                                                                 f"{path}.alarms"))),
        bake_seconds=_opt_seconds(bake, "duration", f"{path}.bake", 0),
        bake_deadline_seconds=None if deadline is None else _seconds(deadline, f"{path}.bake.deadline"),
        datapoints=None if "datapoints" not in bake else _datapoints(bake["datapoints"], f"{path}.bake.datapoints"),
        rollback=_choice(stage, "rollback", path, ("automatic", "manual"), "manual"),
        promotion=_choice(stage, "promotion", path, ("automatic", "manual"), "automatic"),
        approvals=tuple(approvals),
    )


def _datapoints(raw: Any, path: str) -> DatapointsView:
    datapoints = _mapping(raw, path)
    return DatapointsView(
        positive=_metric(_required(datapoints, "positive", path), f"{path}.positive"),
        negative=None if "negative" not in datapoints else _metric(datapoints["negative"], f"{path}.negative"),
        min_positive=_int(_required(datapoints, "min_positive", path), f"{path}.min_positive"),
        max_negative=_int(datapoints.get("max_negative", 0), f"{path}.max_negative"),
    )
