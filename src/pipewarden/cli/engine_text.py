"""The text renderings of the client commands: pure functions from the API's JSON (engine.md
"Status JSON", executions, events) and the clock to the text printed.

ETAs are written relative to `now` (the client's clock) next to the server's `until`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tabulate import tabulate

EMPTY = "-"


def status_text(pipelines: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """`status --format text`: per pipeline a header line and one row per stage."""
    if not pipelines:
        return "no pipelines yet\n"
    return "\n".join(_pipeline_text(pipeline, now) for pipeline in pipelines)


def _pipeline_text(status: Mapping[str, Any], now: datetime) -> str:
    about = ", ".join(f"{key} {status[key]}" for key in ("team", "org") if status.get(key))
    header = status["pipeline"] + (f" ({about})" if about else "") + ("  PAUSED" if status.get("paused") else "")
    if not status["stages"]:
        return f"{header}\n  no definition read yet\n"
    rows = []
    for stage in status["stages"]:
        rows.append([
            f"{stage['name']}\n{stage['type']}",
            _hosts(stage["targets"]),
            _run(stage["execution"], now),
            _run(stage["next"], now),
            "\n".join(_override(o) for o in stage["overrides"]) or EMPTY,
        ])
    table = tabulate(rows, headers=["stage", "hosts (artifact)", "execution", "next", "overrides"],
                     tablefmt="simple_grid", disable_numparse=True)
    return f"{header}\n{table}\n"


def _hosts(targets: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for target in targets:
        lines.append(f"{target['name']}:")
        for host in target["hosts"]:
            state = "" if host["state"] == "ok" else f" [{host['state']}]"
            lines.append(f"  {host['host']} {host['artifact'] or EMPTY}{state}")
    return "\n".join(lines) or EMPTY


def _run(run: Mapping[str, Any] | None, now: datetime) -> str:
    if run is None:
        return EMPTY
    lines = [f"{run['id']} {run['status']}", f"artifact {run['artifact'] or EMPTY}"]
    judging = [gate for gate in run["gates"] if gate["result"] != "pass"]
    lines.extend(gate_line(gate, now) for gate in judging)
    if run["gates"] and not judging:
        lines.append("gates pass")
    return "\n".join(lines)


def gate_line(gate: Mapping[str, Any], now: datetime) -> str:
    """`bake_time wait: baking 12m of 60m (until 2026-12-01T15:04:00.000Z, in 48m)`."""
    line = f"{gate['gate']} {gate['result']}: {gate['reason']}"
    if gate.get("until"):
        line += f" (until {gate['until']}, {eta(gate['until'], now)})"
    return line


def eta(until: str, now: datetime) -> str:
    """`in 3h 05m`, `in 40s`, or `due` once the time has come."""
    try:
        moment = datetime.fromisoformat(until)
    except ValueError:
        return "?"
    seconds = int((moment - now.astimezone(UTC)).total_seconds())
    if seconds <= 0:
        return "due"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"in {days}d {hours}h"
    if hours:
        return f"in {hours}h {minutes:02d}m"
    if minutes:
        return f"in {minutes}m"
    return f"in {secs}s"


def _override(override: Mapping[str, Any]) -> str:
    return f"{override['gate']} until {override['expires']}\n  by {override['actor']}: {override['reason']}"


def executions_text(executions: Sequence[Mapping[str, Any]]) -> str:
    """`executions list --format text`: one row per execution, newest first."""
    if not executions:
        return "no executions\n"
    rows = [[e["id"], e["status"], e["stage"] or EMPTY, e["artifact"] or EMPTY, e["commit"][:12], e["started"],
             e["finished"] or EMPTY] for e in executions]
    return tabulate(rows, headers=["id", "status", "stage", "artifact", "commit", "started", "finished"],
                    tablefmt="simple", disable_numparse=True) + "\n"


def execution_text(shown: Mapping[str, Any], now: datetime) -> str:
    """`executions show ID --format text`: the execution, its stages with every gate, its events."""
    head = [
        f"{shown['id']}  {shown['status']}  (pipeline {shown['pipeline']})",
        f"commit {shown['commit']}  artifact {shown['artifact'] or EMPTY}",
        f"started {shown['started']}  finished {shown['finished'] or EMPTY}",
    ]
    rows = []
    for stage in shown["stages"]:
        run = stage["execution"]
        rows.append([
            stage["name"], run["status"], run.get("attempt") or EMPTY, run.get("started") or EMPTY,
            run.get("finished") or EMPTY,
            "\n".join(gate_line(gate, now) for gate in run["gates"]) or EMPTY,
        ])
    table = tabulate(rows, headers=["stage", "status", "attempt", "started", "finished", "gates"],
                     tablefmt="simple_grid", disable_numparse=True)
    events = "".join(event_line(event) + "\n" for event in shown["events"])
    return "\n".join(head) + "\n" + table + "\n\nevents:\n" + (events or "none\n")


def event_line(event: Mapping[str, Any]) -> str:
    """One event as a line: seq, time, type, where, actor and its data (gate inputs left out:
    `--format jsonl` has everything)."""
    where = "/".join(str(event[key]) for key in ("pipeline", "execution", "stage", "target", "host")
                     if event.get(key) is not None)
    data = {key: value for key, value in event["data"].items() if key != "inputs"}
    details = " ".join(f"{key}={_value(value)}" for key, value in data.items())
    return f"{event['seq']:>5} {event['time']} {event['type']:<18} {where or EMPTY} by {event['actor']}" + (
        f": {details}" if details else "")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and not any(c.isspace() for c in value) else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
