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
#       max_fraction: {type: number, minimum: 0, maximum: 1, multipleOf: 0.001}
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

# max_fraction in thousandths, an integer: params_schema allows at most three
# decimals (multipleOf 0.001), so the rounding is exact on every engine, and the
# limit and the comparison below are integer arithmetic. So the embedded engine
# (doubles: 0.29 * 100 = 28.999999999999996) and OPA (exact decimals) agree,
# without a tolerance.
_permille := round(_fraction * 1000)

# Allowed targets per stage for the message: floor(max_fraction * T), at least 1.
_allowed := max([1, floor((_permille * _total) / 1000)])

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	n := count(stage.targets)
	n > 1
	n * 1000 > _permille * _total
	v := {
		"msg": sprintf(
			"prod stage '%s' deploys to %d of %d prod targets at once; at most %v allowed (max_fraction %v)",
			[stage.name, n, _total, _allowed, _fraction],
		),
		"path": sprintf("stages[%d].targets", [i]),
	}
}
