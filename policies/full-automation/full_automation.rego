# METADATA
# title: Releases move without manual steps
# description: No transition into a stage waits for a manual approval or a manual promotion.
# custom:
#   id: full-automation
#   level: "off"
#   prod_only: false
#   params: {}
#   params_schema: {type: object, additionalProperties: false, properties: {}}
#   rationale: >-
#     A manual step adds hours or days of waiting to every release, so changes pile up and ship
#     in large, risky batches, and fixes reach customers late. A human glance at a dashboard also
#     checks less than the tests, alarms and bake times a pipeline runs every time. Off by default:
#     organisations turn it on once their pipelines carry the safety checks themselves.
#   remediation: |
#     Remove the `approvals` of the stage, or set `promotion: automatic` (the default) on the stage
#     before it, and let tests, alarms and bake times decide:
#
#     ```yaml
#     stages:
#       - name: gamma
#         type: preprod
#         promotion: automatic
#       - name: prod-canary
#         type: prod
#         # no approvals
#     ```
package pipewarden.rules.full_automation

import rego.v1

deny contains v if {
	some j, stage in input.pipeline.stages
	n := count(object.get(stage, "approvals", []))
	n > 0
	v := {
		"msg": sprintf(
			"stage '%s' waits for %d manual approval(s); every transition should be automatic",
			[stage.name, n],
		),
		"path": sprintf("stages[%d].approvals", [j]),
	}
}

deny contains v if {
	some j, stage in input.pipeline.stages
	j > 0
	count(object.get(stage, "approvals", [])) == 0
	previous := input.pipeline.stages[j - 1]
	previous.promotion == "manual"
	v := {
		"msg": sprintf(
			"stage '%s' promotes to '%s' by hand (promotion: manual); promotion: automatic expected",
			[previous.name, stage.name],
		),
		"path": sprintf("stages[%d].promotion", [j - 1]),
	}
}
