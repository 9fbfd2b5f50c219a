"""The three rules built into the Python core, with the same metadata as the Rego ones."""

from __future__ import annotations

from pipewarden.policy.rule import Rule

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
        "case-sensitive; the finding names the declared teams closest to what is written, "
        "such as \"did you mean 'cart'?\" for `Cart`), or add the team to the 'teams' of its org "
        "node. Since such a pipeline gets the root's settings, set this rule to `enforce` and lock "
        "it in the root (`config validate` warns until then).\n\n"
        "```yaml\nmetadata:\n  name: checkout-service\n  team: checkout\n```"
    ),
    level="warn",
    params={},
    params_schema=_NO_PARAMS,
    prod_only=False,
    kind="builtin",
)

POLICY_ERROR = Rule(
    id="policy-error",
    title="Every rule runs to completion on the pipeline",
    description=(
        "A rule failed while it ran on this pipeline (a builtin error such as a division by zero, "
        "or conflicting values): one finding per failing rule, at the document root, naming the "
        "rule's file and line and the error. Always enforce; cannot be turned off or excepted."
    ),
    rationale=(
        "A rule that fails says nothing about the pipeline: treated as a pass, it would let the "
        "very practice it checks slip through unnoticed; stopping the whole run would leave every "
        "other pipeline and rule unchecked. So the failure is a blocking finding of its own, on the "
        "pipelines where it happens, and everything else is still checked."
    ),
    remediation=(
        "Fix the rule at the reported file and line (the policy owner's job, not the pipeline's): "
        "guard its inputs so that it cannot fail on a valid pipeline, for instance by checking a "
        "count before dividing by it, and add a test with such a pipeline to its `_test.rego`.\n\n"
        "```rego\ndeny contains v if {\n\tsome i, stage in input.pipeline.stages\n"
        "\ttests := object.get(stage, \"tests\", [])\n\tcount(tests) > 0  # before dividing by it\n"
        "\tcount(stage.targets) / count(tests) > 10\n"
        "\tv := {\"msg\": sprintf(\"stage '%s' runs too few tests\", [stage.name]), "
        "\"path\": sprintf(\"stages[%d].tests\", [i])}\n}\n```"
    ),
    level="enforce",
    params={},
    params_schema=_NO_PARAMS,
    prod_only=False,
    kind="builtin",
)

BUILTIN_RULES = (VALID_DEFINITION, UNKNOWN_TEAM, POLICY_ERROR)

# Rules whose level no org can change and that no exception covers: what they report (a file
# that cannot be read, a rule that cannot run) means the other rules' verdicts are missing.
ALWAYS_ENFORCED = frozenset({VALID_DEFINITION.id, POLICY_ERROR.id})
# What to do instead of an exception, for the message that refuses one.
_FIX_INSTEAD = {VALID_DEFINITION.id: "fix the pipeline file", POLICY_ERROR.id: "fix the rule that fails"}


def fix_instead(rule_id: str) -> str:
    """For an always-enforced rule: what fixes its findings (the message refusing an exception)."""
    return _FIX_INSTEAD[rule_id]
