# METADATA
# title: Prod deploys only in allowed windows
# description: Every prod stage deploys in a named window whose days and hours lie within the allowed ones.
# custom:
#   id: deployment-window
#   level: warn
#   prod_only: true
#   params:
#     days: [mon, tue, wed, thu, fri]
#     earliest: "09:00"
#     latest: "17:00"
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       days:
#         type: array
#         minItems: 1
#         uniqueItems: true
#         items:
#           type: string
#           enum: [mon, tue, wed, thu, fri, sat, sun]
#       earliest: {type: string, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
#       latest: {type: string, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
#   rationale: >-
#     A deployment that goes wrong needs people who know the service, awake and at work, to
#     notice and fix what automation cannot. Deploying only when the team is around (and not at
#     peak hours, on holidays or on Friday nights) shortens the outages that do happen. The
#     allowed days and hours are read in each window's own timezone; an organisation can allow a
#     night window instead, for example earliest 22:00 and latest 06:00.
#   remediation: |
#     Define a window within the allowed days and hours under `windows` and name it in every prod
#     stage:
#
#     ```yaml
#     windows:
#       business-hours:
#         timezone: America/Los_Angeles
#         days: [mon, tue, wed, thu, fri]
#         start: "09:00"
#         end: "17:00"
#     stages:
#       - name: prod-canary
#         type: prod
#         window: business-hours
#         # ...
#     ```
package pipewarden.rules.deployment_window

import rego.v1

_params := input.params["deployment-window"]

_allowed_pieces := data.pipewarden.lib.core.hhmm_pieces(_params.earliest, _params.latest)

_allowed := sprintf("%s %s-%s", [concat(",", _params.days), _params.earliest, _params.latest])

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	not stage.window
	v := {
		"msg": sprintf("prod stage '%s' has no deployment window; allowed: %s", [stage.name, _allowed]),
		"path": sprintf("stages[%d].window", [i]),
	}
}

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	name := stage.window
	outside := _windows_outside[name]
	window := input.pipeline.windows[name]
	v := {
		"msg": sprintf(
			"prod stage '%s' deploys in window '%s' (%s %s-%s %s) outside the allowed %s; allowed: %s",
			[stage.name, name, concat(",", window.days), window.start, window.end, window.timezone, outside, _allowed],
		),
		"path": sprintf("stages[%d].window", [i]),
	}
}

# For each window that is not allowed (judged once, however many stages use
# it): what of it lies outside the allowed days and hours.
_windows_outside := {name: outside |
	some name, window in input.pipeline.windows
	fits_days := data.pipewarden.lib.core.window_days_allowed(window, _params.days)
	fits_hours := _fits_hours(data.pipewarden.lib.core.window_pieces[name])
	outside := _outside[[fits_days, fits_hours]]
}

# Keyed by [days fit, hours fit]; a window that fits both has no entry.
_outside := {
	[false, true]: "days",
	[true, false]: "hours",
	[false, false]: "days and hours",
}

_fits_hours(pieces) := true if data.pipewarden.lib.core.pieces_within(pieces, _allowed_pieces)

_fits_hours(pieces) := false if not data.pipewarden.lib.core.pieces_within(pieces, _allowed_pieces)
