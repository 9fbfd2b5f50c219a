"""release-demo: a tiny HTTP service that the pipewarden release engine deploys (standard library only).

    python3 service.py serve --port 9301 [--host 127.0.0.1] [--release DIR] [--stage NAME]
                             [--state-dir DIR] [--pidfile FILE]
    python3 service.py check URL [--version V] [--timeout 5]     # validate hook: poll /health
    python3 service.py wait-free PORT [--host H] [--timeout 5]   # stop hook: until the port is free
    python3 service.py smoke HOST:PORT ... [--requests N]        # stage tests: GET / answers 200
    python3 service.py security HOST:PORT ...                    # stage test: no path escape, no banner

GET /health answers 200 {"status": "ok", "version": V}; GET / answers 200 with the version;
GET /metrics counts the requests by status code (Prometheus text format). The version is the
VERSION file of the release directory (the unpacked artifact).

Faults, for the demo's bad versions. A FAULT file in the release directory holds `mode=MODE` and
optionally `stages=GLOB` (the fault shows only on stages whose name matches, so a bad version can
pass preprod and fail in prod, as a bug that only production traffic finds). A file named `fault`
in --state-dir (the host's directory) sets the mode at run time, on demand. Modes:

    errors   GET / answers 500; /health stays 200 (only traffic-based checks catch it)
    down     GET / answers 500 and /health answers 503 (the validate hook catches it)
    none     healthy
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODES = ("none", "errors", "down")


def read_fault(release: Path, stage: str) -> str:
    """The mode the release's FAULT file sets for this stage ("none" without one)."""
    try:
        text = (release / "FAULT").read_text(encoding="utf-8")
    except OSError:
        return "none"
    settings = dict(line.split("=", 1) for line in text.split() if "=" in line)
    mode = settings.get("mode", "none").strip()
    stages = settings.get("stages", "*").strip()
    if mode not in MODES:
        mode = "down"  # a FAULT file nobody can read is a broken release
    return mode if fnmatch.fnmatchcase(stage, stages) else "none"


class Service:
    def __init__(self, release: Path, stage: str, state_dir: Path | None, *, log: bool = True) -> None:
        self.log = log
        self.version = (release / "VERSION").read_text(encoding="utf-8").strip()
        self.release_mode = read_fault(release, stage)
        self.state_dir = state_dir
        self.counts: dict[int, int] = {}
        self.lock = threading.Lock()

    def mode(self) -> str:
        if self.state_dir is not None:
            try:
                wanted = (self.state_dir / "fault").read_text(encoding="utf-8").strip()
            except OSError:
                wanted = ""
            if wanted in MODES:
                return wanted
        return self.release_mode

    def count(self, code: int) -> None:
        with self.lock:
            self.counts[code] = self.counts.get(code, 0) + 1

    def metrics(self) -> str:
        with self.lock:
            lines = [f'http_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.counts.items())]
        return "# TYPE http_requests_total counter\n" + "".join(line + "\n" for line in lines)


def make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "release-demo"
        sys_version = ""

        def do_GET(self) -> None:
            mode = service.mode()
            path = self.path.split("?", 1)[0]
            if path == "/health":
                ok = mode != "down"
                body = json.dumps({"status": "ok" if ok else "unhealthy", "version": service.version}) + "\n"
                self.answer(200 if ok else 503, body, "application/json")
            elif path == "/":
                if mode == "none":
                    self.answer(200, f"release-demo version {service.version}\n")
                else:
                    self.answer(500, f"release-demo version {service.version}: internal error\n")
            elif path == "/metrics":
                self.answer(200, service.metrics(), "text/plain; version=0.0.4", counted=False)
            else:
                self.answer(404, "not found\n")

        def answer(self, code: int, body: str, kind: str = "text/plain", counted: bool = True) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if counted:
                service.count(code)

        def log_message(self, format: str, *args: object) -> None:
            if service.log:
                sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}\n")

    return Handler


def serve(args: argparse.Namespace) -> int:
    # A session of its own: the hook that started it (and its process group) may end or be
    # killed; the service stays, as a service on a real host would.
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    release = Path(args.release).resolve()
    service = Service(release, args.stage, Path(args.state_dir) if args.state_dir else None)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(service))
    if args.pidfile:
        # Written once the port is bound: a PID file means the service listens.
        pidfile = Path(args.pidfile)
        staging = pidfile.with_name(pidfile.name + ".tmp")
        staging.write_text(f"{os.getpid()}\n", encoding="utf-8")
        staging.replace(pidfile)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    sys.stderr.write(f"release-demo {service.version} ({service.release_mode}) on {args.host}:{args.port}, "
                     f"stage {args.stage or '-'}, pid {os.getpid()}\n")
    sys.stderr.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


def get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def check(args: argparse.Namespace) -> int:
    """Poll URL until it answers 200 (and the wanted version), at most --timeout seconds."""
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while True:
        try:
            code, body = get(args.url, timeout=2)
            version = ""
            try:
                version = str(json.loads(body).get("version", ""))
            except (ValueError, AttributeError):
                pass
            if code == 200 and (not args.version or version == args.version):
                print(f"{args.url}: 200, version {version or '?'}")
                return 0
            last = f"{code} {body.strip()[:200]}"
        except (OSError, urllib.error.URLError) as error:
            last = str(getattr(error, "reason", error))
        if time.monotonic() >= deadline:
            print(f"{args.url}: not healthy after {args.timeout:g}s: {last}", file=sys.stderr)
            return 1
        time.sleep(0.2)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_free(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    while not port_free(args.host, args.port):
        if time.monotonic() >= deadline:
            print(f"{args.host}:{args.port} still in use after {args.timeout:g}s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    return 0


def smoke(args: argparse.Namespace) -> int:
    """GET / on every host, --requests times each: every answer must be 200."""
    failed = 0
    for host in args.hosts:
        for _ in range(args.requests):
            try:
                code, _body = get(f"http://{host}/", timeout=5)
            except (OSError, urllib.error.URLError) as error:
                code = str(getattr(error, "reason", error))  # type: ignore[assignment]
            if code != 200:
                print(f"{host}: GET / answered {code}", file=sys.stderr)
                failed += 1
                break
        else:
            print(f"{host}: {args.requests} x GET / answered 200")
    return 1 if failed else 0


def security(args: argparse.Namespace) -> int:
    """Unknown and escaping paths answer 404; the Server header names no interpreter version."""
    failed = 0
    for host in args.hosts:
        for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/admin"):
            code, _body = get(f"http://{host}{path}", timeout=5)
            if code != 404:
                print(f"{host}: GET {path} answered {code}, want 404", file=sys.stderr)
                failed += 1
        with urllib.request.urlopen(f"http://{host}/health", timeout=5) as response:
            banner = response.headers.get("Server", "")
        if "Python" in banner:
            print(f"{host}: Server header {banner!r} names the interpreter", file=sys.stderr)
            failed += 1
    if not failed:
        print(f"security: {len(args.hosts)} host(s) ok")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="service.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--release", default=str(Path(__file__).resolve().parent))
    p.add_argument("--stage", default="")
    p.add_argument("--state-dir")
    p.add_argument("--pidfile")
    p.set_defaults(run=serve)
    p = commands.add_parser("check")
    p.add_argument("url")
    p.add_argument("--version", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(run=check)
    p = commands.add_parser("wait-free")
    p.add_argument("port", type=int)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(run=wait_free)
    p = commands.add_parser("smoke")
    p.add_argument("hosts", nargs="+")
    p.add_argument("--requests", type=int, default=3)
    p.set_defaults(run=smoke)
    p = commands.add_parser("security")
    p.add_argument("hosts", nargs="+")
    p.set_defaults(run=security)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
