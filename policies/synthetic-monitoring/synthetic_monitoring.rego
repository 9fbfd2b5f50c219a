# METADATA
# title: Synthetic traffic watches prod
# description: At least one synthetic sends requests, and every synthetic runs at least every max_interval.
# custom:
#   id: synthetic-monitoring
#   level: warn
#   prod_only: true
#   params:
#     max_interval: 1m
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       max_interval: {type: string, pattern: "^[0-9]{1,9}[smhd]$"}
#   rationale: >-
#     Alarms on customer traffic stay silent when there is no traffic: at night, in a new cell, or
#     on a path few customers use. Synthetic requests exercise the service continuously, so a
#     broken deployment is caught before customers arrive; run rarely, they leave long blind spots.
#   remediation: |
#     Define a synthetic with at least one request, running at least as often as required:
#
#     ```yaml
#     synthetics:
#       - name: public-api
#         interval: 1m
#         requests:
#           - {method: GET, path: /health, expect_status: 200}
#     ```
package pipewarden.rules.synthetic_monitoring

import rego.v1

_synthetics := object.get(input.pipeline, "synthetics", [])

_max_interval := input.params["synthetic-monitoring"].max_interval

deny contains v if {
	data.pipewarden.lib.core.has_prod
	not _any_requests
	v := {
		"msg": "no synthetic sends a request; at least one synthetic with requests is required",
		"path": "synthetics",
	}
}

_any_requests if {
	some synthetic in _synthetics
	count(object.get(synthetic, "requests", [])) > 0
}

deny contains v if {
	data.pipewarden.lib.core.has_prod
	some i, synthetic in _synthetics
	seconds := data.pipewarden.lib.core.duration_seconds(synthetic.interval)
	seconds > data.pipewarden.lib.core.duration_seconds(_max_interval)
	v := {
		"msg": sprintf(
			"synthetic '%s' runs every %s; at most %s between runs allowed",
			[synthetic.name, synthetic.interval, _max_interval],
		),
		"path": sprintf("synthetics[%d].interval", [i]),
	}
}
