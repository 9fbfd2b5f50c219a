# METADATA
# title: Prod stages do not deploy on Friday afternoons
# description: A prod stage's deployment window must not open on Friday at or after `cutoff`.
# custom:
#   id: no-friday-afternoon
#   level: warn
#   prod_only: true
#   params:
#     cutoff: "12:00"
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       cutoff: {type: string, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
#   rationale: >-
#     A change deployed on Friday afternoon bakes over the weekend, when fewer people are around
#     to notice and fix a problem. Acme's retail org asks for deployments to finish by Friday noon.
#   remediation: |
#     Give prod stages a window that is closed on Friday afternoons, for example:
#
#     ```yaml
#     windows:
#       weekday-mornings: {timezone: Europe/Berlin, days: [mon, tue, wed, thu, fri], start: "09:00", end: "12:00"}
#     ```
package pipewarden.rules.no_friday_afternoon

import rego.v1

# An org's own rule: the same contract as the built-in ones (see docs/writing-rules.md).
deny contains v if {
	some i, stage in input.pipeline.stages
	stage.type == "prod"
	window := input.pipeline.windows[stage.window]
	"fri" in window.days
	cutoff := input.params["no-friday-afternoon"].cutoff
	open_after_cutoff(window, cutoff)
	v := {
		"msg": sprintf("prod stage '%s' may deploy on Friday after %s (window '%s' %s-%s)", [stage.name, cutoff, stage.window, window.start, window.end]),
		"path": sprintf("stages[%d].window", [i]),
	}
}

# Times are "HH:MM", so string order is time order. A window that wraps midnight or covers the
# whole day (end <= start) is open late on Friday.
open_after_cutoff(window, cutoff) if window.end <= window.start

open_after_cutoff(window, cutoff) if {
	window.start < window.end
	window.end > cutoff
}
