# METADATA
# title: Prod rolls out in waves
# description: No prod stage deploys to more than max(1, max_fraction * T) targets, T being the distinct prod targets.
# custom:
#   id: progressive-rollout
#   level: warn
#   prod_only: true
#   params:
#     max_fraction: 0.5
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       max_fraction: {type: number, minimum: 0, maximum: 1}
#   rationale: >-
#     A defect that escapes the canary should meet a fraction of customers, not all of them.
#     Deploying prod in waves, each to a bounded share of the cells, keeps healthy cells serving
#     while a bad wave is detected and rolled back; a stage that deploys everywhere at once turns
#     one escaped defect into a full outage.
#   remediation: |
#     Split the prod stage into several stages (waves), each with at most the allowed share of
#     the prod targets:
#
#     ```yaml
#     stages:
#       - name: prod-wave-1
#         type: prod
#         targets: [{name: cell-2, hosts: ["10.0.2.1:8080"]}]
#         # ...
#       - name: prod-wave-2
#         type: prod
#         targets: [{name: cell-3, hosts: ["10.0.3.1:8080"]}, {name: cell-4, hosts: ["10.0.4.1:8080"]}]
#         # ...
#     ```
package pipewarden.rules.progressive_rollout

import rego.v1

_fraction := input.params["progressive-rollout"].max_fraction

# T: the distinct target names over all prod stages.
_total := count({t.name |
	some i in data.pipewarden.lib.core.prod_indices
	some t in input.pipeline.stages[i].targets
})

_share := _fraction * _total

# Allowed targets per stage for the message. The tolerance absorbs binary
# fractions (0.29 * 100 = 28.999999999999996) in the limit and in the test below.
_allowed := max([1, floor(_share + 1e-9)])

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	n := count(stage.targets)
	n > 1
	n - _share > 1e-9
	v := {
		"msg": sprintf(
			"prod stage '%s' deploys to %d of %d prod targets at once; at most %v allowed (max_fraction %v)",
			[stage.name, n, _total, _allowed, _fraction],
		),
		"path": sprintf("stages[%d].targets", [i]),
	}
}
