"""Helpers shared by the CI formats (SARIF, GitHub, JUnit, markdown, GitLab)."""

from __future__ import annotations

from urllib.parse import quote

from pipewarden.model.finding import Finding
from pipewarden.policy.catalog import Catalog

HOMEPAGE = "https://github.com/pipewarden/pipewarden"
# `check --docs-url URL`'s default: the rule pages of the project's own repository.
DEFAULT_DOCS_URL = f"{HOMEPAGE}/blob/main/docs/rules"


def rule_docs_url(base: str, rule_id: str) -> str:
    """A built-in rule's page under a docs base URL: `{rule}` in the base is replaced by the
    rule's id (for sites that serve `.../rules/<id>/`), else `<base>/<id>.md` as in docs/rules/."""
    quoted = quote(rule_id, safe="")
    if "{rule}" in base:
        return base.replace("{rule}", quoted)
    return f"{base.rstrip('/')}/{quoted}.md"


def docs_url(rule_id: str, catalog: Catalog | None, base: str | None = None) -> str | None:
    """The rule's docs page: an organisation's own rule links what its METADATA names
    (`related_resources`), or nothing, since its docs are not ours to place; every other rule
    has its page under `base` (default `DEFAULT_DOCS_URL`)."""
    rule = catalog.get(rule_id) if catalog is not None else None
    if rule is not None and rule.custom:
        return rule.docs_url
    return rule_docs_url(base or DEFAULT_DOCS_URL, rule_id)


def exception_note(finding: Finding) -> str:
    """ "excepted by retail until 2027-03-31, approved by dana: <reason>", or ""."""
    exception = finding.exception
    if exception is None:
        return ""
    until = "permanently" if exception.permanent or exception.expires is None else f"until {exception.expires}"
    return f"excepted by {exception.org} {until}, approved by {exception.approved_by}: {exception.reason}"
