"""A real Prometheus for the engine's tests: Debian's `prometheus` package (issue 14, "Real
components in tests").

- `PrometheusServer`: the `prometheus` binary on a free loopback port, its storage in a temporary
  directory, in a process group of its own that dies with the test process (setpriv
  --pdeathsig) and is stopped by group. Either scraping targets (an `Exporter` the test runs) or
  serving a TSDB built beforehand.
- `build_tsdb`: exact, instant data: `promtool tsdb create-blocks-from openmetrics` writes blocks
  that the server queries as soon as it is ready (measured: a scraped sample takes about 6 s to
  appear, since the scrape manager applies targets on a 5 s tick, and `increase()` extrapolates).
  The samples keep their own timestamps, so a test queries them at a fixed `time`; retention is
  set to 100 years so that old timestamps are not cut away.
- `Exporter`: a prometheus-client registry served over HTTP on a free loopback port in a thread.

`missing()` says why Prometheus cannot run here (the tests then skip saying so; `make test`
installs the package with apt-get when it runs as root).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pipewarden.engine.devserver import free_port, stop_group

LOOPBACK = "127.0.0.1"


def missing() -> str | None:
    """Why the tests cannot run Prometheus here, or None when they can."""
    absent = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if absent:
        return (f"NO PROMETHEUS: {' and '.join(absent)} not found; install Debian's prometheus package "
                "(`make test` does so with apt-get when it runs as root)")
    return None


@dataclass
class PrometheusServer:
    """One `prometheus` process; `start()` returns once `/-/ready` answers 200."""

    folder: Path
    targets: Sequence[str] = ()
    scrape_interval: str = "1s"
    storage: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "prometheus.log"

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> PrometheusServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        storage = self.storage or self.folder / "data"
        config = self.folder / "prometheus.yml"
        jobs = [{"job_name": "exporter", "static_configs": [{"targets": list(self.targets)}]}] if self.targets else []
        # JSON is YAML: no YAML writer needed for the config.
        config.write_text(json.dumps({
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": jobs,
        }))
        last = ""
        for _ in range(attempts):  # a free port can be taken by another process before we bind it
            self.port = free_port(LOOPBACK)
            command = [
                "prometheus", f"--config.file={config}", f"--storage.tsdb.path={storage}",
                f"--web.listen-address={LOOPBACK}:{self.port}", "--storage.tsdb.retention.time=100y",
                "--log.level=warn",
            ]
            setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
            argv = [setpriv, "--pdeathsig", "KILL", *command] if setpriv else command
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                cwd=self.folder, start_new_session=True)
            if self._wait_ready(timeout):
                return self
            last = self.log.read_text(errors="replace")[-2000:]
            self.stop()
            if "address already in use" not in last:
                break
        raise RuntimeError(f"prometheus did not become ready on {self.url} within {timeout:g}s: {last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    return False
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        return False

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout`, then reap."""
        if self.process is not None:
            stop_group(self.process, timeout=timeout)
        self.process = None

    def query(self, query: str, at: float | None = None) -> Any:
        """The raw JSON answer of an instant query (for checks beside the source under test)."""
        form = {"query": query, **({"time": f"{at:.3f}"} if at is not None else {})}
        return httpx.post(f"{self.url}/api/v1/query", data=form, timeout=10.0).json()


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(samples: Iterable[tuple[str, Mapping[str, str], float, float]]) -> str:
    """OpenMetrics text of `(metric, labels, value, unix seconds)` samples, one gauge family per
    metric, each series' samples in time order, ending with `# EOF`."""
    families: dict[str, list[tuple[Mapping[str, str], float, float]]] = {}
    for name, labels, value, at in samples:
        families.setdefault(name, []).append((labels, value, at))
    lines: list[str] = []
    for name, rows in families.items():
        lines.append(f"# TYPE {name} gauge")
        rows.sort(key=lambda row: (sorted(row[0].items()), row[2]))
        for labels, value, at in rows:
            rendered = ",".join(f'{key}="{_label_value(text)}"' for key, text in sorted(labels.items()))
            shown = "NaN" if math.isnan(value) else repr(float(value))
            lines.append(f"{name}{{{rendered}}} {shown} {at:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def build_tsdb(text: str, storage: Path) -> None:
    """Blocks of the OpenMetrics `text` in `storage` (promtool tsdb create-blocks-from openmetrics)."""
    storage.mkdir(parents=True, exist_ok=True)
    source = storage.parent / f"{storage.name}.om"
    source.write_text(text)
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(storage)],
                          check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"promtool failed ({done.returncode}): {done.stderr or done.stdout}")


class Exporter:
    """A prometheus-client registry served on a free loopback port (in a thread of the test)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        self.registry = CollectorRegistry()
        self._server, self._thread = start_http_server(0, addr=LOOPBACK, registry=self.registry)
        self.target = f"{LOOPBACK}:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def wait_for(check: Any, *, timeout: float, interval: float = 0.2) -> Any:
    """Call `check()` until it returns something truthy (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
