"""Property tests: whatever an org-config file holds, loading it raises ConfigError or works."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.errors import ConfigError
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog

PIECES = [
    "apiVersion: pipewarden/v1\n", "kind: OrgConfig\n", "metadata:\n", "  name: acme\n", "  parent: acme\n",
    "  parent: other\n", "teams: [a, b]\n", "teams: a\n", "rules:\n", "  canary-bake-time:\n", "    level: off\n",
    "    level: enforce\n", "    enforce_from: 2027-01-15\n", "    enforce_from: 2027-02-30\n", "    locked: yes\n",
    "    params: {min_minutes: 5}\n", "    params: {min_minutes: x}\n", "exceptions:\n",
    "  - {rule: alarm-gating, teams: [a], reason: r, approved_by: b, permanent: true}\n",
    "  - {rule: nope, expires: 2026-01-01}\n", "settings: {max_exception_days: 0}\n", "  - x\n", "[", "{", "&a ",
    "*a\n", "!!python/name:os.system\n", "\t", ": ", "- ", "\n",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=25).map("".join), st.text(max_size=60))
def test_org_config_files_never_raise_anything_else(text: str, noise: str) -> None:
    catalog = load_catalog(())
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "root.yaml").write_text(text + noise)
        try:
            tree = load_org_tree(folder, catalog, dt.date(2026, 11, 26))
        except ConfigError as error:
            assert error.file is not None
        else:
            assert tree.root in tree.nodes
