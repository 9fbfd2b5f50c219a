# METADATA
# title: Prod stages bake before promotion
# description: Every prod stage other than the canary stage waits at least min_minutes after its deployment.
# custom:
#   id: prod-bake-time
#   level: warn
#   prod_only: true
#   params:
#     min_minutes: 30
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_minutes: {type: integer, minimum: 0, maximum: 1000000000}
#   rationale: >-
#     Each prod wave is the last chance to catch a defect before the next, larger one. Cells
#     differ in traffic, data and configuration, so a version that was fine in the canary can
#     still fail in a later wave; if that wave is promoted at once, the failure spreads before an
#     alarm can fire and an automatic rollback can contain it.
#   remediation: |
#     Set `bake.duration` of each prod stage after the canary to at least the required time:
#
#     ```yaml
#     stages:
#       - name: prod-wave-1
#         type: prod
#         bake:
#           duration: 30m
#         # ...
#     ```
package pipewarden.rules.prod_bake_time

import rego.v1

deny contains v if {
	wanted := input.params["prod-bake-time"].min_minutes
	some i in data.pipewarden.lib.core.non_canary_prod_indices
	data.pipewarden.lib.core.bake_seconds[i] < wanted * 60
	v := {
		"msg": sprintf(
			"prod stage '%s' bakes %s; at least %vm required",
			[input.pipeline.stages[i].name, data.pipewarden.lib.core.bake_durations[i], wanted],
		),
		"path": sprintf("stages[%d].bake.duration", [i]),
	}
}
