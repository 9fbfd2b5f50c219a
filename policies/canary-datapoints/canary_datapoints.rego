# METADATA
# title: Canary waits for enough good traffic
# description: The canary stage waits for at least min_positive good datapoints and tolerates at most max_negative bad ones.
# custom:
#   id: canary-datapoints
#   level: warn
#   prod_only: true
#   params:
#     min_positive: 3000
#     max_negative: 0
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_positive: {type: integer, minimum: 0, maximum: 1000000000}
#       max_negative: {type: integer, minimum: 0, maximum: 1000000000}
#   rationale: >-
#     Time alone does not prove a canary healthy: at night or in a quiet cell an hour may see a
#     handful of requests. Waiting for a number of good datapoints (successful requests, processed
#     messages) makes the bake mean the same thing at any traffic level, and a limit on bad ones
#     stops the release on the first signs of harm.
#   remediation: |
#     Add `bake.datapoints` to the canary stage with metrics that count good and bad events, and
#     thresholds at least as strict as required:
#
#     ```yaml
#     bake:
#       duration: 60m
#       datapoints:
#         positive: {source: prometheus, query: 'sum(increase(http_requests_total{code!~"5.."}[5m]))'}
#         negative: {source: prometheus, query: 'sum(increase(http_requests_total{code=~"5.."}[5m]))'}
#         min_positive: 3000
#         max_negative: 0
#     ```
package pipewarden.rules.canary_datapoints

import rego.v1

_params := input.params["canary-datapoints"]

deny contains v if {
	i := data.pipewarden.lib.core.canary_index
	not input.pipeline.stages[i].bake.datapoints
	v := {
		"msg": sprintf(
			"canary stage '%s' has no bake.datapoints; at least %v positive and at most %v negative datapoints required",
			[input.pipeline.stages[i].name, _params.min_positive, _params.max_negative],
		),
		"path": sprintf("stages[%d].bake.datapoints", [i]),
	}
}

deny contains v if {
	i := data.pipewarden.lib.core.canary_index
	points := input.pipeline.stages[i].bake.datapoints
	points.min_positive < _params.min_positive
	v := {
		"msg": sprintf(
			"canary stage '%s' waits for %v positive datapoints; at least %v required",
			[input.pipeline.stages[i].name, points.min_positive, _params.min_positive],
		),
		"path": sprintf("stages[%d].bake.datapoints.min_positive", [i]),
	}
}

deny contains v if {
	i := data.pipewarden.lib.core.canary_index
	points := input.pipeline.stages[i].bake.datapoints
	tolerated := object.get(points, "max_negative", 0)
	tolerated > _params.max_negative
	v := {
		"msg": sprintf(
			"canary stage '%s' tolerates %v negative datapoints; at most %v allowed",
			[input.pipeline.stages[i].name, tolerated, _params.max_negative],
		),
		"path": sprintf("stages[%d].bake.datapoints.max_negative", [i]),
	}
}
