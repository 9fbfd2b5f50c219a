# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install browser prometheus docs bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The second install is the real OPA evaluator for the OPA conformance tests and `policy test
# --engine opa` (docs/opa.md): the wheel declares Python 3.14 but loads on 3.11, which the test
# extra cannot express, hence its own install without its metadata's Python check.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --ignore-requires-python --no-deps opa-golib-python-bindings==0.4.4
	touch $(STAMP)

install: $(STAMP)

# Part 1 checks the bundled example fleet with the example org tree. The fleet has enforce findings
# on purpose, so `check` exits 1; the demo succeeds when the check ran (exit 0 or 1), not otherwise.
# It checks as of DEMO_NOW: the example org's exceptions and schedules are dated, so a fixed day
# keeps the counts those the README's tour shows (tests/test_docs_examples.py holds the two equal).
# Part 2 is the release engine's demo (examples/release-demo/run_demo.py, about a minute): a real
# release through five stages and an automatic rollback at the canary; it exits 0 when it ran so.
DEMO_NOW := 2026-11-26T10:00:00Z
DEMO_ORG := --org-config org-configs/example --policies org-configs/example/policies --now $(DEMO_NOW)

demo: install
	@echo "== $(BIN)/pipewarden check examples $(DEMO_ORG)"
	@$(BIN)/pipewarden check examples $(DEMO_ORG); \
	  rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi
	@echo
	@echo "== the same as JSON: demo-check.json"
	@$(BIN)/pipewarden check examples $(DEMO_ORG) --format json --output demo-check.json; \
	  rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi
	@echo
	@echo "== $(BIN)/pipewarden report $(DEMO_ORG) --inventory examples/inventory.yaml"
	@$(BIN)/pipewarden report $(DEMO_ORG) --inventory examples/inventory.yaml
	@$(BIN)/pipewarden report $(DEMO_ORG) --inventory examples/inventory.yaml --format html --output demo-report.html
	@echo "checker demo done: findings above; JSON in demo-check.json, the leaders' HTML report in demo-report.html"
	@echo
	@echo "== the release engine: examples/release-demo/run_demo.py"
	@$(BIN)/python examples/release-demo/run_demo.py

test: install browser prometheus
	$(BIN)/pipewarden policy test org-configs/example/policies
	$(BIN)/pipewarden policy test --engine opa org-configs/example/policies
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -rs

# Debian's chromium, for the HTML report's screenshot tests (tests/test_report_screens.py):
# installed with apt-get when missing and this runs as root; otherwise, or when apt cannot get it,
# those tests skip and say why (-rs above lists the reason).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing Debian's chromium for the screenshot tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the screenshot tests will skip"; \
	  else echo "chromium is missing and cannot be installed here (needs root and apt-get): the screenshot tests will skip"; fi; }

# Debian's prometheus (with promtool), for the metric source tests (tests/engine/test_sources.py):
# installed with apt-get when missing and this runs as root; otherwise, or when apt cannot get it,
# those tests skip and say why (-rs above lists the reason).
prometheus:
	@{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing Debian's prometheus for the metric source tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
	      || echo "prometheus could not be installed: the Prometheus tests will skip"; \
	  else echo "prometheus is missing and cannot be installed here (needs root and apt-get): the Prometheus tests will skip"; fi; }

# Times check and report on generated fleets of 1,000 / 10,000 / 50,000 pipelines (see benchmarks/),
# then the release engine: overhead against bare Temporal, 100 concurrent executions, peak memory;
# then its release gates (needs Debian's prometheus, `make prometheus`): a gate round, time to react.
bench: install
	$(BIN)/python benchmarks/run.py --sizes 1000 10000 --repeat 3
	$(BIN)/python benchmarks/run.py --sizes 50000
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/gates.py

docs: install
	$(BIN)/python -m pipewarden.policy.docs

# Type checks (mypy strict on src/) and lint (ruff); not part of `make test`.
lint: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/mypy src
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info demo-check.json
