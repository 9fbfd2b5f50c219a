"""Rules evaluated on an OPA server (`--opa-url`, issue 16) give what the embedded engine gives,
finding for finding, messages included; an OPA that cannot serve is exit 2 with one line.

The server is tests/opa_server.py: OPA's REST protocol (policies, Data API, health, a bearer
token) in front of OPA's own evaluator from `opa-golib-python-bindings` (no `opa` binary can be
installed here; docs/opa.md, "The test server"). It runs in a process of its own, stopped at the
end of the module; the CLI runs as a real process, so exit codes and streams are the real ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("opa_bindings", reason="OPA's evaluator is not installed: `make install` installs "
                                           "opa-golib-python-bindings (docs/opa.md)")

from conftest import NOW, run_cli
from opa_fleet import write_fleet, write_org
from opa_server import OpaTestServer, running_server
from pipewarden.policy.catalog import load_catalog
from pipewarden.policy.engine import OpaBackend, engine_for, use_backend
from pipewarden.policy.opa import OpaRuleEngine, OpaServerError, check_server, module_id
from pipewarden.policy.regorus import RegorusEngine
from pipewarden.policy.testing import run_policy_tests

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "conformance-token"
CUSTOM = str(ROOT / "org-configs" / "example" / "policies")
FLEET_SIZE = 450  # above the size at which `check` forks worker processes (evaluation/pool.py)


def pipewarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`pipewarden ARGS` as a process of its own."""
    return subprocess.run([sys.executable, "-c", "from pipewarden.cli.main import run; run()", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    with running_server(token=TOKEN) as url:
        yield url


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_fleet(tmp_path_factory.mktemp("opa-fleet"), FLEET_SIZE)


@pytest.fixture(autouse=True)
def embedded_afterwards() -> Iterator[None]:
    """Whatever a test selects, the next one starts on the embedded engine."""
    yield
    use_backend(None)


def _check_args(repos: Path, org: Path, *extra: str) -> list[str]:
    return ["check", str(repos), "--org-config", str(org), "--policies", CUSTOM, "--now", "2026-11-27T15:00:00Z",
            "--format", "json", "-q", *extra]


# ---------------------------------------------------------------- the same findings


def test_generated_fleet_same_findings_end_to_end(opa_url: str, fleet: tuple[Path, Path]) -> None:
    """`check` of several hundred generated pipelines (every rule passing and failing, params away
    from the defaults, worker processes): the same JSON, byte for byte, and the same exit code."""
    repos, org = fleet
    embedded = pipewarden(*_check_args(repos, org, "--no-cache"))
    remote = pipewarden(*_check_args(repos, org, "--opa-url", opa_url, "--opa-token", TOKEN))
    assert embedded.returncode == 1, embedded.stderr
    assert (remote.returncode, remote.stderr) == (embedded.returncode, embedded.stderr)
    assert remote.stdout == embedded.stdout
    findings = json.loads(embedded.stdout)["findings"]
    fired = {f["rule"] for f in findings}
    engine_rules = {r.id for r in load_catalog((CUSTOM,)).rules.values() if r.source}
    assert engine_rules <= fired, f"rules the fleet never fails: {sorted(engine_rules - fired)}"
    for rule in engine_rules:  # and every rule passes somewhere: a pipeline without its finding
        assert len({f["file"] for f in findings if f["rule"] == rule}) < FLEET_SIZE, rule


def test_generated_fleet_same_report(opa_url: str, fleet: tuple[Path, Path]) -> None:
    repos, org = fleet
    args = ["report", str(repos), "--org-config", str(org), "--now", NOW, "--format", "json", "-q"]
    embedded = pipewarden(*args, "--no-cache")
    remote = pipewarden(*args, "--opa-url", opa_url, "--opa-token", TOKEN)
    assert (remote.returncode, remote.stdout) == (embedded.returncode, embedded.stdout), remote.stderr


def test_no_upload_uses_the_modules_on_the_server(opa_url: str, fleet: tuple[Path, Path]) -> None:
    """After one upload (the previous tests'), `--opa-no-upload` evaluates what the server holds,
    one request per document for every rule package: the same findings."""
    repos, org = fleet
    pipewarden(*_check_args(repos, org, "--opa-url", opa_url, "--opa-token", TOKEN))  # uploads, if not yet
    embedded = pipewarden(*_check_args(repos, org, "--no-cache"))
    remote = pipewarden(*_check_args(repos, org, "--opa-url", opa_url, "--opa-token", TOKEN, "--opa-no-upload"))
    assert (remote.returncode, remote.stdout) == (embedded.returncode, embedded.stdout), remote.stderr


def test_builtin_policy_tests_pass_on_both_engines() -> None:
    """The built-in rules' Rego tests and the example org's, on the embedded engine and on OPA's
    own evaluator: every test passes on both."""
    outcomes = {}
    for kind in ("regorus", "opa"):
        results = run_policy_tests([CUSTOM], kind)
        outcomes[kind] = sorted((r.package, r.name, r.passed, r.detail) for r in results)
        assert results and all(r.passed for r in results), [r for r in results if not r.passed]
    assert outcomes["regorus"] == outcomes["opa"]


def _document(min_healthy: Any, hosts: list[int], fraction_targets: int = 1) -> str:
    targets = [{"name": f"t{k}", "hosts": [f"10.0.{k}.{h}:80" for h in range(n)]} for k, n in enumerate(hosts)]
    return json.dumps({
        "apiVersion": "pipewarden/v1", "kind": "Pipeline", "metadata": {"name": "x", "team": "t"},
        "build": {"commands": ["make"]},
        "stages": [{"name": "prod", "type": "prod", "targets": targets,
                    "deploy": {"hooks": {"start": "./s"}, "min_healthy": min_healthy}}],
    })


def test_numbers_where_doubles_and_decimals_part() -> None:
    """Issue 16's known difference, removed: min-healthy-hosts and progressive-rollout compute in
    integers (hundredths, thousandths), so a percentage of 17 significant digits, a long fraction
    in the pipeline and a fraction such as 0.29 give the same finding and message on both
    engines; before, 2 of 3 hosts against 66.66666666666667 was a finding on OPA only."""
    catalog = load_catalog(())
    embedded = RegorusEngine(catalog)
    cases = []
    for percent in [66, 66.6, 66.67, 66.66666666666667, 33.333333333333336, 14.285714285714286, 12.5, 0.07, 100, 0]:
        for kept in [1, 2, 3, 7, 13, "66.6%", "66.599999999999999999%", "66.600000000000000001%", "12.5%", "0.07%"]:
            for hosts in [[3], [7], [13], [29, 300], [100]]:
                cases.append(({"min-healthy-hosts": {"min_percent": percent}}, _document(kept, hosts)))
    for fraction in [0.29, 0.3, 0.1, 0.333, 0.7, 0.57, 0.999, 1, 0]:
        for count in [1, 2, 3, 7, 10, 100]:
            cases.append(({"progressive-rollout": {"max_fraction": fraction}}, _document(1, [1] * count)))
    with OpaTestServer() as server:
        remote = OpaRuleEngine(catalog, OpaBackend(server.url))
        for params, document in cases:
            rules = frozenset(params)
            expected = sorted(embedded.run(document, json.dumps(params), rules)[0])
            assert sorted(remote.run(document, json.dumps(params), rules)[0]) == expected, (params, document)
    assert any(found for params, document in cases[:5] for found in embedded.run(document, json.dumps(params))[0])


def test_params_are_capped_to_what_both_engines_compute_alike(tmp_path: Path, write: Any) -> None:
    """min_percent has at most two decimals and max_fraction three (an exact multipleOf: 0.29 and
    0.07 are accepted, which a division of doubles would refuse)."""
    org = write_org(tmp_path / "org")
    pipeline = write("p/pipeline.yaml", (ROOT / "tests" / "data" / "good-pipeline.yaml").read_text())
    assert run_cli("check", str(pipeline), "--org-config", str(org), "--now", NOW, "--no-cache").exit_code in (0, 1)
    retail = org / "retail.yaml"
    text = retail.read_text()
    retail.write_text(text.replace("min_percent: 66.67", "min_percent: 66.666"))
    result = run_cli("check", str(pipeline), "--org-config", str(org), "--now", NOW, "--no-cache")
    assert result.exit_code == 2
    assert "min_percent: 66.666 is not a multiple of 0.01 (at most 2 decimal(s))" in result.stderr
    retail.write_text(text.replace("max_fraction: 0.29", "max_fraction: 0.2905"))
    result = run_cli("check", str(pipeline), "--org-config", str(org), "--now", NOW, "--no-cache")
    assert result.exit_code == 2 and "max_fraction: 0.2905 is not a multiple of 0.001" in result.stderr
    retail.write_text(text.replace("min_percent: 66.67", "min_percent: 0.07"))
    assert run_cli("check", str(pipeline), "--org-config", str(org), "--now", NOW, "--no-cache").exit_code in (0, 1)


def test_policy_gate_on_opa_from_threads(fleet: tuple[Path, Path]) -> None:
    """The release engine's policy gate (evaluation.gate, from threads of its own, with the fleet
    rules' other pipelines) asks the OPA server once the backend is selected, and judges as with
    the embedded engine; nothing in the gate names a backend."""
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from pipewarden.evaluation.context import build_context
    from pipewarden.evaluation.gate import check_document_in

    repos, org = fleet
    files = sorted(repos.rglob("pipeline.yaml"))[:40]
    sources = {str(f): f.read_bytes() for f in files}
    moment = dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC)

    def verdicts() -> list[tuple[Any, ...]]:
        context = build_context(str(org), (CUSTOM,), moment)

        def one(name: str) -> tuple[Any, ...]:
            others = {n: s for n, s in sources.items() if n != name}
            result = check_document_in(sources[name], name, context, others)
            return result.allowed, [(f.rule, f.path, f.message, f.line) for f in result.findings]

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(one, sorted(sources)))

    embedded = verdicts()
    with OpaTestServer() as server:
        use_backend(OpaBackend(server.url))
        remote = verdicts()
        assert server.data_requests >= len(sources)  # one request per document judged, at least
    assert remote == embedded
    assert any(not allowed for allowed, _ in embedded) and any(findings for _, findings in embedded)


def test_the_test_server_speaks_opas_protocol() -> None:
    """What the tests rely on, through opa-python-client as pipewarden uses it: policies CRUD,
    the Data API (`{}` when undefined, 500 when evaluation fails), health, the bearer token."""
    from opa_client import OpaClient
    from opa_client.errors import ConnectionsError, DeletePolicyError, RegoParseError

    with OpaTestServer(token="t") as server:
        client = OpaClient(host="127.0.0.1", port=server.port, token="t")
        assert client.check_connection() and client.check_health()
        assert client.update_policy_from_string("package a.b\n\nimport rego.v1\n\nx := input.n * 2\n", "p/a.rego")
        assert client.get_policies_list() == ["p/a.rego"]
        assert client.get_policy("p/a.rego")["result"]["raw"].startswith("package a.b")
        assert client.get_policies_info()["p/a.rego"]["path"].endswith("/v1/data/a/b")
        assert client.query_rule({"n": 21}, "a.b", "x") == {"result": 42}
        assert client.query_rule({"n": 21}, "a.b", "nothing") == {}
        with pytest.raises(requests.HTTPError) as failed:
            client.query_rule({"n": "x"}, "a.b", "x")
        assert failed.value.response.status_code == 500
        assert "p/a.rego:5" in failed.value.response.json()["message"]
        with pytest.raises(RegoParseError, match="unexpected eof token"):
            client.update_policy_from_string("package c\n\nx := \n", "p/c.rego", rego_compat=False)
        with pytest.raises(RegoParseError, match="undefined function"):  # compiled with the others
            client.update_policy_from_string("package d\n\nimport rego.v1\n\ny := data.lib.f(1)\n", "p/d.rego")
        assert client.delete_policy("p/a.rego") and client.get_policies_list() == []
        with pytest.raises(DeletePolicyError):
            client.delete_policy("p/a.rego")
        anonymous = OpaClient(host="127.0.0.1", port=server.port)
        assert anonymous.check_health()  # health needs no token
        with pytest.raises(ConnectionsError) as refused:
            anonymous.check_connection()
        assert refused.value.__cause__.response.status_code == 401


# ---------------------------------------------------------------- what goes up, and how


def test_modules_are_uploaded_under_pipewarden_ids() -> None:
    catalog = load_catalog((CUSTOM,))
    with OpaTestServer() as server:
        use_backend(OpaBackend(server.url))
        engine_for(catalog)
        ids = set(server.store.modules())
    assert "pipewarden/lib/core/core.rego" in ids
    assert "pipewarden/rules/min_healthy_hosts/min_healthy_hosts.rego" in ids
    assert "pipewarden/fleet/single_release_process/single_release_process.rego" in ids
    assert "pipewarden/rules/no_friday_afternoon/no_friday_afternoon.rego" in ids
    assert all(i.startswith("pipewarden/") for i in ids)
    assert any(i.startswith("pipewarden/main/q_") for i in ids)  # the query of the enabled rules
    assert not any(i.endswith("_test.rego") for i in ids)
    assert len([i for i in ids if not i.startswith("pipewarden/main/")]) == len(catalog.rego_files())


def test_modules_lost_by_the_server_are_uploaded_again() -> None:
    """An OPA without persistence forgets its policies when it restarts: the next document finds
    the query module gone (undefined, which it never is otherwise), uploads again and reports as
    before; never a pass for lack of rules. Without upload, the same is exit 2."""
    catalog = load_catalog(())
    document = _document("50%", [3])
    params = json.dumps({r.id: r.params for r in catalog.document_rules()})
    with OpaTestServer() as server:
        engine = OpaRuleEngine(catalog, OpaBackend(server.url))
        before = engine.run(document, params)
        assert before[0]
        server.store.clear()
        assert engine.run(document, params) == before
        assert "pipewarden/lib/core/core.rego" in server.store.modules()
        fleet_rule = catalog.rules["single-release-process"]
        kept = OpaRuleEngine(catalog, OpaBackend(server.url, upload=False))
        assert kept.run(document, params) == before
        server.store.clear()
        for ask in (lambda: kept.run(document, params), lambda: kept.evaluate_fleet(fleet_rule, [])):
            with pytest.raises(OpaServerError, match=f"the OPA server at {server.url} has no"):
                ask()


def test_no_upload_finds_packages_without_syntax_trees() -> None:
    """A server whose policies list has no syntax trees: the packages are found in its data
    documents instead, and a server without them is still refused."""
    catalog = load_catalog((CUSTOM,))
    document = _document("50%", [3])
    params = json.dumps({r.id: r.params for r in catalog.document_rules()})
    with OpaTestServer() as server:
        server.store.trees = False
        expected = OpaRuleEngine(catalog, OpaBackend(server.url)).run(document, params)
        kept = OpaBackend(server.url, upload=False)
        check_server(kept)
        assert OpaRuleEngine(catalog, kept).run(document, params) == expected
        server.store.clear()
        with pytest.raises(OpaServerError, match="has no module of a package under pipewarden.rules"):
            check_server(OpaBackend(server.url, upload=False))
        server.store.put("pipewarden/x.rego", "package pipewarden.rules.other\n\nimport rego.v1\n\ndeny contains 1 if false\n")
        with pytest.raises(OpaServerError, match="has no module of package pipewarden.rules.alarm_gating"):
            OpaRuleEngine(load_catalog(()), OpaBackend(server.url, upload=False))


def test_a_renamed_rule_file_replaces_its_old_module(tmp_path: Path) -> None:
    """OPA merges modules of one package: the module of an older file name of one of our packages
    is deleted, or its `deny` would report twice."""
    folder = tmp_path / "policies" / "no-friday-afternoon"
    folder.mkdir(parents=True)
    source = Path(CUSTOM) / "no-friday-afternoon" / "no_friday_afternoon.rego"
    (folder / "friday.rego").write_text(source.read_text())
    with OpaTestServer() as server:
        server.store.put(module_id(str(source), source.read_text()), source.read_text())
        use_backend(OpaBackend(server.url))
        engine_for(load_catalog((str(tmp_path / "policies"),)))
        ids = set(server.store.modules())
    assert "pipewarden/rules/no_friday_afternoon/friday.rego" in ids
    assert "pipewarden/rules/no_friday_afternoon/no_friday_afternoon.rego" not in ids


def test_a_failing_rule_is_a_policy_error_finding_not_a_pass(tmp_path: Path, write: Any) -> None:
    """A rule that fails while it runs on OPA gives a `policy-error` finding at its own line, as
    on the embedded engine; the other rules still report."""
    rule = write("policies/acme-broken/acme_broken.rego", """# METADATA
# title: Broken
# custom:
#   id: acme-broken
#   level: warn
package pipewarden.rules.acme_broken

import rego.v1

deny contains v if {
	n := to_number(input.pipeline.metadata.name)
	v := {"msg": sprintf("%v", [n]), "path": "metadata.name"}
}
""")
    pipeline = write("p/pipeline.yaml", (ROOT / "tests" / "data" / "good-pipeline.yaml").read_text())
    args = ["check", str(pipeline), "--policies", str(rule.parent.parent), "--now", NOW, "--format", "json"]
    with OpaTestServer() as server:
        remote = run_cli(*args, "--opa-url", server.url)
    embedded = run_cli(*args, "--no-cache")  # in the same process: without --opa-url, the embedded engine again
    assert remote.exit_code == embedded.exit_code == 1

    def shape(result: Any) -> list[tuple[str, str, int]]:
        return sorted((f["rule"], f["path"], f["line"]) for f in result.json()["findings"])

    assert shape(remote) == shape(embedded)
    failures = [f for f in remote.json()["findings"] if f["rule"] == "policy-error"]
    assert len(failures) == 1 and "rule 'acme-broken' failed while it ran" in failures[0]["message"]
    assert f"{rule}:11)" in failures[0]["message"] and "to_number" in failures[0]["message"]


# ---------------------------------------------------------------- an OPA that cannot serve


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_unreachable_opa_is_exit_2_with_one_line() -> None:
    with OpaTestServer() as server:
        url = server.url  # a port that was free, and is closed again
    line = _one_line_error(pipewarden("check", "examples", "--opa-url", url))
    assert line == (f"pipewarden: error: cannot reach the OPA server at {url} (Connection refused): check --opa-url "
                    "and that the server runs, or leave out --opa-url to evaluate with the embedded engine")


def test_bad_or_missing_token_is_exit_2_with_one_line(opa_url: str) -> None:
    for extra in (["--opa-token", "wrong"], []):
        line = _one_line_error(pipewarden("check", "examples", "--opa-url", opa_url, *extra))
        assert line.startswith(f"pipewarden: error: the OPA server at {opa_url} refused GET /v1/policies (HTTP 401")
        assert "check --opa-token (or PIPEWARDEN_OPA_TOKEN)" in line


def test_token_from_the_environment(opa_url: str) -> None:
    import os

    env = {**os.environ, "PIPEWARDEN_OPA_TOKEN": TOKEN}
    result = pipewarden("check", "tests/data/good-pipeline.yaml", "--opa-url", opa_url, env=env)
    assert result.returncode == 0, result.stderr


def test_bad_url_and_misplaced_options_are_usage_errors() -> None:
    line = _one_line_error(pipewarden("check", "examples", "--opa-url", "opa:8181"))
    assert "--opa-url 'opa:8181' is not an http(s) URL of an OPA server; write e.g. http://localhost:8181" in line
    line = _one_line_error(pipewarden("check", "examples", "--opa-no-upload"))
    assert "--opa-no-upload needs --opa-url URL" in line


def _private_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of its own and a server certificate for 127.0.0.1 that it signed (openssl)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=pipewarden test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf")
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a private CA")
def test_https_with_a_private_ca(tmp_path: Path) -> None:
    """An OPA server whose certificate a private CA signed: exit 2 saying how to trust the CA,
    then trusted through REQUESTS_CA_BUNDLE or SSL_CERT_FILE."""
    import os

    ca, cert, key = _private_ca(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    args = ["check", "tests/data/good-pipeline.yaml", "--now", NOW, "--format", "json"]
    with OpaTestServer(tls=(str(cert), str(key))) as server:
        line = _one_line_error(pipewarden(*args, "--opa-url", server.url, env=env))
        assert line.startswith(f"pipewarden: error: cannot verify the TLS certificate of the OPA server at {server.url}")
        assert line.endswith("for a private CA, set REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) to its certificate file")
        embedded = pipewarden(*args, "--no-cache", env=env)
        for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            trusted = pipewarden(*args, "--opa-url", server.url, env={**env, variable: str(ca)})
            assert (trusted.returncode, trusted.stdout) == (embedded.returncode, embedded.stdout), trusted.stderr


def test_not_an_opa_server_is_exit_2_with_one_line() -> None:
    """Something else answering at the URL (here: a plain web server's 404) is not a pass."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    thread = Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        line = _one_line_error(pipewarden("check", "examples", "--opa-url", url))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert f"the OPA server at {url} answered HTTP 404 to GET /v1/policies" in line
    assert "is --opa-url the base URL of an OPA server" in line


def test_an_opa_failing_behind_a_proxy_is_exit_2(fleet: tuple[Path, Path]) -> None:
    """A server that answers the policies API but fails every query (a proxy whose OPA is down
    answers 502, or 500 with a page of its own): exit 2 with one line, in worker processes too."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        status, body = 502, b"Bad Gateway"  # what every query gets (set per round below)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/policies":
                self._send(200, b'{"result": []}')
            else:
                self._send(404, b'{"code": "resource_not_found", "message": "no such policy"}')

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(200, b"{}")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(self.status, self.body, "text/html")

    repos, org = fleet
    for expected in (502, 500):
        Proxy.status, Proxy.body = (expected, b"Bad Gateway" if expected == 502 else b"<html>upstream error</html>")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        thread = Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}"
            line = _one_line_error(pipewarden(*_check_args(repos, org, "--opa-url", url)))
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
        assert line.startswith(f"pipewarden: error: the OPA server at {url} answered HTTP {expected} to POST /v1/data/")
        assert line.endswith("the server, or a proxy in front of it, failed; check its logs and try again")


def test_no_upload_on_a_server_without_the_rules_is_exit_2() -> None:
    with OpaTestServer() as server:
        line = _one_line_error(pipewarden("check", "examples", "--opa-url", server.url, "--opa-no-upload"))
    assert line == (f"pipewarden: error: the OPA server at {server.url} has no module of a package under "
                    "pipewarden.rules (--opa-no-upload uses the rules it already has): deploy pipewarden's policies "
                    "in its bundle, or leave out --opa-no-upload")


def test_server_checks_opa_before_it_starts(tmp_path: Path) -> None:
    with OpaTestServer() as server:
        url = server.url
    line = _one_line_error(pipewarden("server", "--state-dir", str(tmp_path), "--listen", "127.0.0.1:0",
                                      "--opa-url", url))
    assert f"cannot reach the OPA server at {url}" in line


# ---------------------------------------------------------------- policy test --engine opa


def test_policy_test_on_opa(tmp_path: Path) -> None:
    result = run_cli("policy", "test", "--engine", "opa", CUSTOM)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


def test_policy_test_on_opa_explains_failures_and_errors(tmp_path: Path, write: Any) -> None:
    write("p/acme-x/acme_x.rego", """# METADATA
# title: X
# custom:
#   id: acme-x
package pipewarden.rules.acme_x

import rego.v1

deny contains v if {
	input.pipeline.metadata.name == "bad"
	v := {"msg": "bad name", "path": "metadata.name"}
}
""")
    write("p/acme-x/acme_x_test.rego", """package pipewarden.rules.acme_x_test

import rego.v1

test_bad if {
	x := count(data.pipewarden.rules.acme_x.deny) with input as {"pipeline": {"metadata": {"name": "good"}}}
	x == 1
}

test_err if {
	to_number("abc") == 1
}
""")
    result = run_cli("policy", "test", "--engine", "opa", str(tmp_path / "p"))
    assert result.exit_code == 1
    assert "FAIL pipewarden.rules.acme_x_test.test_bad" in result.stdout
    assert "    actual:   0\n    expected: 1" in result.stdout
    assert f"ERROR pipewarden.rules.acme_x_test.test_err ({tmp_path}/p/acme-x/acme_x_test.rego:10)" in result.stdout
    assert "acme_x_test.rego:11: eval_builtin_error: to_number" in result.stdout


def test_policy_test_on_opa_without_the_evaluator_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opa_bindings", None)  # as if it were not installed
    result = run_cli("policy", "test", "--engine", "opa")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "pipewarden: error: --engine opa needs OPA's evaluator, which is not installed: run `pip install "
        "--ignore-requires-python --no-deps opa-golib-python-bindings==0.4.4` in pipewarden's environment (it "
        "declares Python 3.14 but loads on 3.11), or leave out --engine opa")
