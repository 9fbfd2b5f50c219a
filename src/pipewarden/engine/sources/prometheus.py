"""`{source: prometheus, query}`: one instant query to the engine's Prometheus (engine.md,
"Metric references"), through the HTTP API (`POST /api/v1/query`, form-encoded so that a long
query with many hosts fits) on one reused `httpx.Client`.

**Placeholders**, expanded in one pass (an expansion is never expanded again):

- `$__since_deploy`: the seconds of the counting window with an `s`, whole seconds rounded up and
  at least `1s` (`317s`): since the deploy finished, or the `poll.gates` interval for an alarm;
- `$__stage`: the stage's name, escaped for a double-quoted PromQL string;
- `$__hosts`: a regular expression matching exactly the stage's `host:port` strings (for
  `instance=~"$__hosts"`), see `hosts_regex`.

Other `$__...` text is sent as written (Prometheus then answers 400, which names it).

**Answers.** The query is evaluated at the context's `now` (`time=`), so a reading is a function of
the injected clock. One sample (a one-series vector or a scalar) is a value; an empty vector is no
data; several series, NaN or an infinity, a range vector, an HTTP error (with Prometheus's own
`errorType` and `error`), an answer that is not JSON, a timeout and a refused connection are
source errors naming the reason. Nothing here raises for what Prometheus does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipewarden.engine.sources.base import ReadContext, Reading, describe
from pipewarden.model.view import MetricRef, PrometheusMetric

SOURCE = "prometheus"
DEFAULT_TIMEOUT_SECONDS = 10.0

_PLACEHOLDER = re.compile(r"\$__(since_deploy|stage|hosts)(?![A-Za-z0-9_])")
# Outside a bracket expression these characters are literal in RE2 and need no escape in a PromQL
# double-quoted string; everything else is written so that it is both.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:@%&,;<=>!#'/~`")
_SERIES_SHOWN = 3


class PlaceholderError(ValueError):
    """A placeholder the context cannot fill (`$__since_deploy` before the deploy finished)."""


def hosts_regex(hosts: Sequence[str]) -> str:
    """An RE2 expression matching exactly `hosts` (as Prometheus anchors a label matcher), written
    so that it is safe inside a double-quoted PromQL string.

    - Regex metacharacters become bracket expressions: `127.0.0.1:9301` is `127[.]0[.]0[.]1:9301`,
      `[::1]:9301` is `[[]::1[]]:9301`; `^` and `\\` (which a bracket cannot hold alone) are
      backslash-escaped, with the backslash doubled for the PromQL string; `"` is `\\"` (the
      string's escape); control characters are `\\\\x{..}`.
    - A host with letters is wrapped in `(?i:...)`: engine.md compares host names
      case-insensitively everywhere, so `Cell-1.Shop:80` in the pipeline matches the
      `cell-1.shop:80` a scrape config writes. A host of digits (an IP) is written bare, as
      engine.md's example shows.
    - Hosts are joined with `|`, in the order given, duplicates (case-insensitively) dropped.
      With no hosts the expression matches nothing (`[^\\\\x{0}-\\\\x{10FFFF}]`), never everything.
    """
    parts: list[str] = []
    seen: set[str] = set()
    for host in hosts:
        key = host.casefold()
        if key in seen:
            continue
        seen.add(key)
        written = "".join(_regex_char(char) for char in host)
        parts.append(f"(?i:{written})" if any(char.isalpha() for char in host) else written)
    if not parts:
        return "[^\\\\x{0}-\\\\x{10FFFF}]"
    return "|".join(parts)


def _regex_char(char: str) -> str:
    if char in _PLAIN or (ord(char) > 127 and char.isprintable()):
        return char
    if char == "^":
        return "\\\\^"
    if char == "\\":
        return "\\\\\\\\"
    if char == '"':
        return '\\"'
    if not char.isprintable():
        return f"\\\\x{{{ord(char):x}}}"
    if char == "]":
        return "[]]"  # a `]` first in a bracket expression is itself (RE2, POSIX)
    return f"[{char}]"


def string_escape(text: str) -> str:
    """`text` as the inside of a double-quoted PromQL string (`"` and `\\` escaped, controls as
    `\\x..`)."""
    out: list[str] = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif not char.isprintable() and ord(char) < 128:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def expand(query: str, context: ReadContext) -> str:
    """`query` with its placeholders filled from `context` (see the module docstring);
    PlaceholderError when `$__since_deploy` has no value yet."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "stage":
            return string_escape(context.stage)
        if name == "hosts":
            return hosts_regex(context.hosts)
        seconds = context.window_seconds
        if seconds is None:
            raise PlaceholderError("$__since_deploy has no value: the stage's deploy has not finished")
        return f"{seconds}s"

    return _PLACEHOLDER.sub(fill, query)


def _redacted(url: str) -> str:
    """`url` without user and password (they are not for events and reasons)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:  # not a URL at all (reads then fail saying so)
        return url.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class PrometheusSource:
    """Instant queries to the Prometheus at `url` (engine config `prometheus.url`), each within
    `timeout_seconds`. One client and its connections serve every read (thread-safe); `close()`
    ends them. Pass `client` to share one."""

    def __init__(self, url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._shown = _redacted(self.url)
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            headers={"User-Agent": "pipewarden"},
        )

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def read(self, ref: MetricRef, context: ReadContext) -> Reading:
        if not isinstance(ref, PrometheusMetric):
            return Reading.failed(f"not a prometheus reference: source {ref.source}", query=describe(ref),
                                  observed=context.now, source=SOURCE)
        try:
            query = expand(ref.query, context)
        except PlaceholderError as error:
            return Reading.failed(str(error), query=ref.query, observed=context.now, source=SOURCE)
        value, error_text = self.query(query, context.now.timestamp())
        if error_text is not None:
            return Reading.failed(error_text, query=query, observed=context.now, source=SOURCE)
        return Reading.of(value, query=query, observed=context.now, source=SOURCE)

    def query(self, query: str, at: float) -> tuple[float | None, str | None]:
        """(value, None), (None, None) for no data, or (None, reason) for an instant `query` at
        Unix time `at`."""
        form = {"query": query, "time": f"{at:.3f}", "timeout": f"{self.timeout_seconds:g}s"}
        try:
            response = self._client.post(f"{self.url}/api/v1/query", data=form)
        except httpx.TimeoutException:
            return None, f"Prometheus at {self._shown} did not answer within {self.timeout_seconds:g}s"
        except httpx.ConnectError as error:
            return None, f"cannot connect to Prometheus at {self._shown}: {error}"
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
            return None, f"Prometheus at {self._shown} failed: {type(error).__name__}: {error}"
        return _answer(response, self._shown)


def _answer(response: httpx.Response, shown: str) -> tuple[float | None, str | None]:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        snippet = response.text[:200].strip() or "(empty body)"
        return None, f"Prometheus at {shown} answered HTTP {response.status_code} that is not JSON: {snippet}"
    if not isinstance(body, Mapping):
        return None, f"Prometheus at {shown} answered HTTP {response.status_code} with JSON that is not an object"
    if response.status_code >= 400 or body.get("status") != "success":
        kind = body.get("errorType") or "error"
        message = body.get("error") or "(no message)"
        return None, f"Prometheus answered HTTP {response.status_code} ({kind}): {message}"
    data = body.get("data")
    if not isinstance(data, Mapping):
        return None, "Prometheus answered without data"
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind == "matrix":
        return None, ("the query returned a range vector; an instant query must return one sample "
                      "(such as sum(increase(...[$__since_deploy])))")
    if kind != "vector" or not isinstance(result, list):
        return None, f"the query returned a {kind}, not one sample"
    if not result:
        return None, None
    if len(result) > 1:
        shown_series = ", ".join(_labels(series) for series in result[:_SERIES_SHOWN])
        more = f" and {len(result) - _SERIES_SHOWN} more" if len(result) > _SERIES_SHOWN else ""
        return None, f"the query returned {len(result)} series, not one sample (aggregate it, with sum(...)): {shown_series}{more}"
    series = result[0]
    return _sample(series.get("value") if isinstance(series, Mapping) else None)


def _sample(pair: object) -> tuple[float | None, str | None]:
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        return None, f"Prometheus answered a sample that is not [time, value]: {pair!r}"[:300]
    try:
        value = float(pair[1])
    except ValueError:
        return None, f"Prometheus answered a value that is not a number: {pair[1]!r}"
    if math.isnan(value):
        return None, "the query returned NaN (a division by zero, or no rate yet)"
    if math.isinf(value):
        return None, f"the query returned {pair[1]}"
    return value, None


def _labels(series: object) -> str:
    metric = series.get("metric") if isinstance(series, Mapping) else None
    if not isinstance(metric, Mapping) or not metric:
        return "{}"
    return "{" + ", ".join(f'{key}="{value}"' for key, value in sorted(metric.items())) + "}"
