"""The release demo's template (examples/release-demo): its pipeline passes the example org's policy
gate, its canary bakes on its own synthetic's datapoints, its hooks are POSIX sh that really start,
validate and stop the service, and the service answers /health and 5xx as the demo needs (the
demo's bad version: 5xx on / in prod with a healthy /health, so every hook passes and only the
canary's datapoints catch it). The demo itself (server, v1 released, v2 rolled back by its
datapoints) runs in `make demo`: about a minute, too long for the unit tests (docs/engine.md, "Demo")."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipewarden.cli.main import cli
from pipewarden.evaluation.gate import check_document
from pipewarden.load.discover import discover

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "release-demo"
ORG = REPO / "org-configs" / "example"
HOOKS = ("stop", "install", "start", "validate")
BAD = "mode=down\nstages=prod-*\n"  # a version the validate hook refuses
# The demo's bad version (run_demo.py's BAD_FAULT): 5xx on / in prod, /health healthy.
DEMO_BAD = json.loads(re.search(r'^BAD_FAULT = ("[^"]*")', (DEMO / "run_demo.py").read_text(encoding="utf-8"),
                                re.MULTILINE).group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rendered_pipeline() -> str:
    """pipeline.yaml.in with its @PORTn@ slots filled as run_demo.py fills them."""
    template = (DEMO / "pipeline.yaml.in").read_text(encoding="utf-8")
    return re.sub(r"@PORT(\d+)@", lambda m: str(20000 + int(m.group(1))), template)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def wait_for(url: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------- the pipeline and the org


def test_the_template_is_not_part_of_the_example_fleet() -> None:
    assert not any("release-demo" in path for path in discover([str(REPO / "examples")]))
    assert not (DEMO / "pipeline.yaml").exists() and not (DEMO / "pipeline.yml").exists()


def test_the_pipeline_passes_check_with_the_example_org(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(rendered_pipeline(), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "pipeline.yaml"), "--org-config", str(ORG),
                                      "--policies", str(ORG / "policies"), "--format", "json", "--no-cache"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["files_invalid"] == 0
    open_findings = [f for f in report["findings"] if not f["excepted"]]
    assert open_findings == []  # not even a warning: every demo shortcut is a documented exception
    assert {f["rule"] for f in report["findings"]} == {"alarm-gating", "deployment-window", "canary-bake-time",
                                                        "canary-datapoints", "prod-bake-time"}
    assert report["pipelines"][0]["team"] == "demo" and report["pipelines"][0]["org"] == "platform"


@pytest.mark.parametrize("now", [dt.datetime.now(dt.UTC), dt.datetime(2031, 1, 1, tzinfo=dt.UTC)])
def test_the_engine_policy_gate_lets_it_through_now_and_later(now: dt.datetime) -> None:
    """The release engine's `policy` gate (evaluation.gate) with the example org: allowed, today
    and years on (the exceptions are permanent, so the demo does not break on a date)."""
    result = check_document(rendered_pipeline(), "pipeline.yaml", org_config=str(ORG),
                            policies=(str(ORG / "policies"),), now=now)
    assert result.allowed and result.blocking == ()
    enforce_excepted = {f.rule for f in result.findings if f.excepted and f.level == "enforce"}
    assert enforce_excepted == {"alarm-gating", "deployment-window"}


def test_the_canary_bakes_on_its_own_synthetic_and_can_pass_within_its_bake() -> None:
    """prod-canary's datapoints count the template's synthetic (GET / on every host, expecting
    200): successes positive, failures negative, none tolerated; and min_positive is reachable in
    the bake (hosts x requests a second x seconds), so a healthy version is not kept waiting."""
    pipeline = yaml.safe_load(rendered_pipeline())
    [synthetic] = pipeline["synthetics"]
    assert synthetic["interval"] == "1s"
    assert synthetic["requests"] == [{"method": "GET", "path": "/", "expect_status": 200}]
    canary = next(s for s in pipeline["stages"] if s.get("canary"))
    datapoints = canary["bake"]["datapoints"]
    assert datapoints["positive"] == {"source": "synthetic", "name": synthetic["name"], "signal": "success"}
    assert datapoints["negative"] == {"source": "synthetic", "name": synthetic["name"], "signal": "failure"}
    assert datapoints["max_negative"] == 0
    hosts = sum(len(t["hosts"]) for t in canary["targets"])
    seconds = int(canary["bake"]["duration"].rstrip("s"))
    assert 0 < datapoints["min_positive"] <= hosts * seconds
    # Only the canary counts datapoints; the other stages bake on time alone.
    assert [s["name"] for s in pipeline["stages"] if "datapoints" in s["bake"]] == ["prod-canary"]


def test_every_host_slot_is_a_distinct_loopback_port_and_the_stages_are_the_issues() -> None:
    text = (DEMO / "pipeline.yaml.in").read_text(encoding="utf-8")
    slots = re.findall(r'"127\.0\.0\.1:@PORT(\d+)@"', text)
    assert len(slots) == len(set(slots)) == len(re.findall(r"@PORT\d+@", text)) == 11
    stages = yaml.safe_load(rendered_pipeline())["stages"]
    assert [(s["name"], s["type"], [len(t["hosts"]) for t in s["targets"]]) for s in stages] == [
        ("beta", "preprod", [1]), ("gamma", "preprod", [1]), ("prod-canary", "prod", [3]),
        ("prod-wave-1", "prod", [2]), ("prod-wave-2", "prod", [2, 2])]
    assert stages[1]["production_config"] is True and stages[2]["canary"] is True
    assert all(s["rollback"] == "automatic" and s["deploy"]["min_healthy"] == "66%" for s in stages)


# ---------------------------------------------------------------------- hooks


@pytest.mark.parametrize("hook", [*HOOKS, "common"])
def test_hooks_are_posix_sh(hook: str) -> None:
    path = DEMO / "hooks" / f"{hook}.sh"
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True, check=False).returncode == 0
    if shutil.which("dash"):
        assert subprocess.run(["dash", "-n", str(path)], capture_output=True, check=False).returncode == 0
    if hook != "common":
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert path.read_text(encoding="utf-8").startswith("#!/bin/sh\n")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment the engine gives a hook on one host (engine.md "Environment"), with two
    artifacts: v1 healthy, v2 broken on prod stages. The service is stopped whatever happens."""
    for name, version, fault in (("good", "1.0.0", None), ("bad", "2.0.0", BAD)):
        folder = tmp_path / "artifacts" / name
        folder.mkdir(parents=True)
        shutil.copy(DEMO / "service.py", folder)
        (folder / "VERSION").write_text(version + "\n")
        if fault:
            (folder / "FAULT").write_text(fault)
    host_dir = tmp_path / "hosts" / "h1"
    env = {**os.environ, "PYTHON": sys.executable, "PIPEWARDEN_HOST": f"127.0.0.1:{free_port()}",
           "PIPEWARDEN_HOST_DIR": str(host_dir), "PIPEWARDEN_STAGE": "prod-canary", "PIPEWARDEN_HOOK": "",
           "VALIDATE_SECONDS": "1.5"}
    yield env
    pidfile = host_dir / "service.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def deploy(env: dict[str, str], artifact_dir: Path, artifact: str) -> dict[str, int]:
    """Run the four hooks as the engine does (in the checkout, stdin closed, output to a file)."""
    codes = {}
    for hook in HOOKS:
        log = Path(env["PIPEWARDEN_HOST_DIR"]).parent / f"{artifact}-{hook}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            codes[hook] = subprocess.run(
                ["/bin/sh", "-c", f"./hooks/{hook}.sh"], cwd=DEMO, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, timeout=60, check=False,
                env={**env, "PIPEWARDEN_ARTIFACT": artifact, "PIPEWARDEN_ARTIFACT_DIR": str(artifact_dir),
                     "PIPEWARDEN_HOOK": hook}).returncode
        if codes[hook] != 0:
            break
    return codes


def test_hooks_deploy_a_good_version_refuse_a_bad_one_and_roll_back(host: dict[str, str], tmp_path: Path) -> None:
    url = f"http://{host['PIPEWARDEN_HOST']}"
    pidfile = Path(host["PIPEWARDEN_HOST_DIR"]) / "service.pid"
    assert deploy(host, tmp_path / "artifacts" / "good", "aaaaaaaaaaaa") == dict.fromkeys(HOOKS, 0)
    first = int(pidfile.read_text())
    assert get(f"{url}/") == (200, "release-demo version 1.0.0\n")
    # The service runs in a session of its own: the hook's process group may be killed.
    assert os.getsid(first) == first

    codes = deploy(host, tmp_path / "artifacts" / "bad", "bbbbbbbbbbbb")
    assert codes == {"stop": 0, "install": 0, "start": 0, "validate": 1}
    assert get(f"{url}/health")[0] == 503 and get(f"{url}/")[0] == 500
    assert not Path(f"/proc/{first}").exists() or "zombie" in Path(f"/proc/{first}/status").read_text()

    assert deploy(host, tmp_path / "artifacts" / "good", "aaaaaaaaaaaa") == dict.fromkeys(HOOKS, 0)
    assert get(f"{url}/") == (200, "release-demo version 1.0.0\n")

    stop = subprocess.run(["./hooks/stop.sh"], cwd=DEMO, env=host, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=30, check=False)
    assert stop.returncode == 0, stop.stdout
    assert not pidfile.exists()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(host["PIPEWARDEN_HOST"].rsplit(":", 1)[1])))  # the port is free


def test_the_demos_bad_version_passes_every_hook(host: dict[str, str], tmp_path: Path) -> None:
    """run_demo.py's v2 (mode=errors on prod stages): every hook passes on a canary host, since
    /health stays healthy, while GET / answers 500: the canary's datapoints, not a hook, catch it."""
    assert DEMO_BAD == "mode=errors\nstages=prod-*\n"
    artifact = tmp_path / "artifacts" / "demo-bad"
    shutil.copytree(tmp_path / "artifacts" / "good", artifact)
    (artifact / "VERSION").write_text("2.0.0\n")
    (artifact / "FAULT").write_text(DEMO_BAD)
    assert deploy(host, artifact, "cccccccccccc") == dict.fromkeys(HOOKS, 0)
    url = f"http://{host['PIPEWARDEN_HOST']}"
    assert get(f"{url}/health") == (200, '{"status": "ok", "version": "2.0.0"}\n')
    assert get(f"{url}/")[0] == 500


def test_start_does_not_hold_the_hooks_output_open(host: dict[str, str], tmp_path: Path) -> None:
    """A start hook whose stdout is a pipe returns at once: the service does not inherit it."""
    env = {**host, "PIPEWARDEN_ARTIFACT": "aaaaaaaaaaaa", "PIPEWARDEN_ARTIFACT_DIR": str(tmp_path / "artifacts" / "good")}
    for hook in ("install", "start"):
        done = subprocess.run([f"./hooks/{hook}.sh"], cwd=DEMO, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=20, check=False)
        assert done.returncode == 0, done.stdout


# ---------------------------------------------------------------------- the service by hand


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    started: list[subprocess.Popen[bytes]] = []

    def _serve(version: str, fault: str | None, stage: str, state_dir: Path | None = None) -> str:
        release = tmp_path / f"release-{len(started)}"
        release.mkdir()
        shutil.copy(DEMO / "service.py", release)
        (release / "VERSION").write_text(version + "\n")
        if fault is not None:
            (release / "FAULT").write_text(fault)
        port = free_port()
        command = [sys.executable, str(release / "service.py"), "serve", "--port", str(port), "--release",
                   str(release), "--stage", stage]
        if state_dir is not None:
            command += ["--state-dir", str(state_dir)]
        started.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True))
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/health")
        return url

    yield _serve
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def test_the_service_answers_health_and_its_version(serve: Callable[..., str]) -> None:
    url = serve("1.0.0", None, "beta")
    assert get(f"{url}/health") == (200, '{"status": "ok", "version": "1.0.0"}\n')
    assert get(f"{url}/") == (200, "release-demo version 1.0.0\n")
    assert re.search(r'^http_requests_total\{code="200"\} \d+$', get(f"{url}/metrics")[1], re.MULTILINE)


def test_the_bad_version_answers_5xx_in_prod_only(serve: Callable[..., str]) -> None:
    prod = serve("2.0.0", BAD, "prod-canary")
    assert get(f"{prod}/health")[0] == 503
    assert get(f"{prod}/")[0] == 500
    assert 'http_requests_total{code="500"} 1' in get(f"{prod}/metrics")[1]
    gamma = serve("2.0.0", BAD, "gamma")
    assert get(f"{gamma}/health")[0] == 200 and get(f"{gamma}/")[0] == 200


def test_the_demos_bad_version_answers_5xx_with_a_healthy_health_in_prod_only(serve: Callable[..., str]) -> None:
    prod = serve("2.0.0", DEMO_BAD, "prod-canary")
    assert get(f"{prod}/health") == (200, '{"status": "ok", "version": "2.0.0"}\n')
    assert get(f"{prod}/")[0] == 500
    assert 'http_requests_total{code="500"} 1' in get(f"{prod}/metrics")[1]
    gamma = serve("2.0.0", DEMO_BAD, "gamma")
    assert get(f"{gamma}/health")[0] == 200 and get(f"{gamma}/") == (200, "release-demo version 2.0.0\n")


def test_5xx_on_demand_keeps_health(serve: Callable[..., str], tmp_path: Path) -> None:
    """`mode=errors` (or a `fault` file in the host dir, at run time): / answers 500 while /health
    stays 200, the failure only traffic-based checks (datapoints, alarms) can catch."""
    state = tmp_path / "host"
    state.mkdir()
    url = serve("1.0.0", None, "prod-canary", state)
    (state / "fault").write_text("errors\n")
    assert get(f"{url}/")[0] == 500 and get(f"{url}/health")[0] == 200
    (state / "fault").unlink()
    assert get(f"{url}/")[0] == 200
    errors = serve("3.0.0", "mode=errors\n", "prod-canary")
    assert get(f"{errors}/")[0] == 500 and get(f"{errors}/health")[0] == 200


def test_the_build_tests_pass() -> None:
    """The template's own build tests, as the engine's build runs them (coverage.py runs the unit
    tests and fails when they fail)."""
    for command in ([sys.executable, "tests/coverage.py", "--min", "60"],):
        done = subprocess.run(command, cwd=DEMO, capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert done.returncode == 0, done.stdout + done.stderr
