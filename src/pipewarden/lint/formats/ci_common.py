"""Helpers shared by the CI formats (SARIF, GitHub, JUnit, markdown, GitLab)."""

from __future__ import annotations

from urllib.parse import quote

from pipewarden.model.finding import Finding
from pipewarden.policy.catalog import Catalog

HOMEPAGE = "https://github.com/pipewarden/pipewarden"
DOCS_BASE = f"{HOMEPAGE}/blob/main/docs/rules"


def docs_url(rule_id: str, catalog: Catalog | None) -> str | None:
    """The rule's docs page; None for an organisation's own rules, whose docs are not ours to link."""
    rule = catalog.get(rule_id) if catalog is not None else None
    if rule is not None and rule.custom:
        return None
    return f"{DOCS_BASE}/{quote(rule_id, safe='')}.md"


def exception_note(finding: Finding) -> str:
    """ "excepted by retail until 2027-03-31, approved by dana: <reason>", or ""."""
    exception = finding.exception
    if exception is None:
        return ""
    until = "permanently" if exception.permanent or exception.expires is None else f"until {exception.expires}"
    return f"excepted by {exception.org} {until}, approved by {exception.approved_by}: {exception.reason}"
