"""Build tests of the release demo's service (the build runs them: python3 -m unittest discover -s tests)."""

import argparse
import sys
import tempfile
import threading
import unittest
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import service


def release(fault: str | None = None, version: str = "9.9.9") -> Path:
    folder = Path(tempfile.mkdtemp())
    (folder / "VERSION").write_text(version + "\n")
    if fault is not None:
        (folder / "FAULT").write_text(fault)
    return folder


class ReadFault(unittest.TestCase):
    def test_no_fault_file_is_healthy(self) -> None:
        self.assertEqual(service.read_fault(release(), "beta"), "none")

    def test_a_fault_shows_only_on_matching_stages(self) -> None:
        folder = release("mode=down\nstages=prod-*\n")
        self.assertEqual(service.read_fault(folder, "gamma"), "none")
        self.assertEqual(service.read_fault(folder, "prod-canary"), "down")

    def test_an_unknown_mode_counts_as_down(self) -> None:
        self.assertEqual(service.read_fault(release("mode=sideways\n"), "beta"), "down")


class Serving(unittest.TestCase):
    """The handler on a free loopback port, in a thread of this process."""

    def start(self, folder: Path, stage: str = "beta", state_dir: Path | None = None) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), service.make_handler(service.Service(folder, stage, state_dir, log=False)))
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        return f"127.0.0.1:{httpd.server_address[1]}"

    def test_a_healthy_release_answers_its_version(self) -> None:
        host = self.start(release(version="1.2.3"))
        self.assertEqual(service.get(f"http://{host}/", 5), (200, "release-demo version 1.2.3\n"))
        code, body = service.get(f"http://{host}/health", 5)
        self.assertEqual((code, body.strip()), (200, '{"status": "ok", "version": "1.2.3"}'))
        self.assertEqual(service.get(f"http://{host}/nope", 5)[0], 404)
        self.assertIn('http_requests_total{code="200"} 2', service.get(f"http://{host}/metrics", 5)[1])
        args = argparse.Namespace(url=f"http://{host}/health", version="1.2.3", timeout=1.0)
        self.assertEqual(service.check(args), 0)
        self.assertEqual(service.smoke(argparse.Namespace(hosts=[host], requests=2)), 0)
        self.assertEqual(service.security(argparse.Namespace(hosts=[host])), 0)

    def test_a_down_release_fails_health_and_answers_5xx(self) -> None:
        host = self.start(release("mode=down\nstages=prod-*\n"), stage="prod-canary")
        self.assertEqual(service.get(f"http://{host}/", 5)[0], 500)
        self.assertEqual(service.get(f"http://{host}/health", 5)[0], 503)
        self.assertEqual(service.check(argparse.Namespace(url=f"http://{host}/health", version="", timeout=0.3)), 1)
        self.assertEqual(service.smoke(argparse.Namespace(hosts=[host], requests=1)), 1)

    def test_errors_on_demand_keep_health(self) -> None:
        state = Path(tempfile.mkdtemp())
        host = self.start(release(), state_dir=state)
        (state / "fault").write_text("errors\n")
        self.assertEqual(service.get(f"http://{host}/", 5)[0], 500)
        self.assertEqual(service.get(f"http://{host}/health", 5)[0], 200)
        (state / "fault").unlink()
        self.assertEqual(service.get(f"http://{host}/", 5)[0], 200)

    def test_a_bound_port_is_not_free(self) -> None:
        host = self.start(release())
        port = int(host.rsplit(":", 1)[1])
        self.assertFalse(service.port_free("127.0.0.1", port))
        self.assertEqual(service.main(["wait-free", str(port), "--timeout", "0.2"]), 1)

    def test_the_command_line_checks_a_version(self) -> None:
        host = self.start(release(version="2.0.0"))
        self.assertEqual(service.main(["check", f"http://{host}/health", "--version", "2.0.0", "--timeout", "1"]), 0)
        self.assertEqual(service.main(["check", f"http://{host}/health", "--version", "1.0.0", "--timeout", "0.3"]), 1)


if __name__ == "__main__":
    unittest.main()
