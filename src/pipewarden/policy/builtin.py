"""The two rules built into the Python core, with the same metadata as the Rego ones."""

from __future__ import annotations

from pipewarden.policy.catalog import Rule

_NO_PARAMS = {"type": "object", "additionalProperties": False, "properties": {}}

VALID_DEFINITION = Rule(
    id="valid-definition",
    title="Pipeline file is a valid definition",
    description="The file loads safely and matches the pipewarden/v1 pipeline format.",
    rationale=(
        "A pipeline file that does not load cannot be checked or run: every other practice is "
        "unverifiable until it does. Unknown keys are errors because a typo such as 'rolback' "
        "would otherwise silently turn a safety feature off."
    ),
    remediation=(
        "Fix the error at the reported line. The message names the field and what is expected; "
        "the format is described in the pipeline format reference.\n\n"
        "```yaml\napiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {name: my-service, team: my-team}\n"
        "build: {commands: [make build]}\nstages:\n  - name: beta\n    type: preprod\n"
        "    targets: [{name: beta-1, hosts: [\"10.0.0.1:8080\"]}]\n```"
    ),
    level="enforce",
    params={},
    params_schema=_NO_PARAMS,
    prod_only=False,
    kind="builtin",
)

UNKNOWN_TEAM = Rule(
    id="unknown-team",
    title="Pipeline team is known to the org configs",
    description="With org configs given, metadata.team names a team declared in some org node.",
    rationale=(
        "A pipeline whose team is in no org node gets only the root's settings and appears in "
        "no team's report, so nobody is accountable for it and the right org's practices are "
        "never applied."
    ),
    remediation=(
        "Set metadata.team to the team's name exactly as an org node lists it (names are "
        "case-sensitive), or add the team to the 'teams' of its org node.\n\n"
        "```yaml\nmetadata:\n  name: checkout-service\n  team: checkout\n```"
    ),
    level="warn",
    params={},
    params_schema=_NO_PARAMS,
    prod_only=False,
    kind="builtin",
)

BUILTIN_RULES = (VALID_DEFINITION, UNKNOWN_TEAM)
