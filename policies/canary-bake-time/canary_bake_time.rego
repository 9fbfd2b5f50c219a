# METADATA
# title: Canary stage bakes long enough
# description: The canary stage waits at least min_minutes after its deployment before promotion.
# custom:
#   id: canary-bake-time
#   level: warn
#   prod_only: true
#   params:
#     min_minutes: 60
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_minutes: {type: integer, minimum: 0, maximum: 1000000000}
#   rationale: >-
#     Many defects only show under real traffic after a while: memory leaks, cache expiry, a
#     nightly job, a rare request. A canary that is promoted minutes after its deployment has not
#     seen enough to tell a good version from a bad one, and the defect reaches every cell. An hour
#     of bake while the alarms watch gives them time to fire.
#   remediation: |
#     Set `bake.duration` of the canary stage to at least the required time:
#
#     ```yaml
#     stages:
#       - name: prod-canary
#         type: prod
#         canary: true
#         bake:
#           duration: 60m
#         # ...
#     ```
package pipewarden.rules.canary_bake_time

import rego.v1

deny contains v if {
	i := data.pipewarden.lib.core.canary_index
	wanted := input.params["canary-bake-time"].min_minutes
	data.pipewarden.lib.core.bake_seconds[i] < wanted * 60
	v := {
		"msg": sprintf(
			"canary stage '%s' bakes %s; at least %vm required",
			[input.pipeline.stages[i].name, data.pipewarden.lib.core.bake_durations[i], wanted],
		),
		"path": sprintf("stages[%d].bake.duration", [i]),
	}
}
