# METADATA
# title: Prod stages are gated by alarms
# description: Every prod stage lists at least min_alarms alarms that gate it and are watched while it bakes.
# custom:
#   id: alarm-gating
#   level: warn
#   prod_only: true
#   params:
#     min_alarms: 1
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_alarms: {type: integer, minimum: 0, maximum: 1000000000}
#   rationale: >-
#     Bake time only helps if something is watching: without alarms a stage waits out its bake
#     and promotes a version that is failing customers. Alarms on the service's key metrics (error
#     rate, latency) stop the promotion and trigger the rollback within minutes instead of when a
#     customer complains.
#   remediation: |
#     Define alarms under `alarms` and list them in each prod stage:
#
#     ```yaml
#     alarms:
#       high-error-rate:
#         metric: {source: prometheus, query: 'sum(rate(http_requests_total{code=~"5.."}[1m]))'}
#         threshold: 5
#         comparison: ">"
#     stages:
#       - name: prod-canary
#         type: prod
#         alarms: [high-error-rate]
#         # ...
#     ```
package pipewarden.rules.alarm_gating

import rego.v1

deny contains v if {
	wanted := input.params["alarm-gating"].min_alarms
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	n := count(object.get(stage, "alarms", []))
	n < wanted
	v := {
		"msg": sprintf("prod stage '%s' is gated by %d alarm(s); at least %v required", [stage.name, n, wanted]),
		"path": sprintf("stages[%d].alarms", [i]),
	}
}
