# METADATA
# title: Prod starts with a small canary
# description: The first prod stage is a canary stage that deploys to at most max_targets targets.
# custom:
#   id: canary-first
#   level: warn
#   prod_only: true
#   params:
#     max_targets: 1
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       max_targets: {type: integer, minimum: 1, maximum: 1000000000}
#   rationale: >-
#     Preprod never reproduces production exactly: real traffic, data and scale find the defects
#     that slipped through. Sending a new version first to one cell limits the damage to the
#     customers of that cell while the alarms and bake decide whether it may go further; a first
#     prod stage that spans many cells turns every escaped defect into a wide outage.
#   remediation: |
#     Make the first prod stage a canary: mark it `canary: true` and give it one target (cell):
#
#     ```yaml
#     stages:
#       - name: prod-canary
#         type: prod
#         canary: true
#         targets: [{name: cell-1, hosts: ["10.0.1.1:8080"]}]
#         # ...
#     ```
package pipewarden.rules.canary_first

import rego.v1

deny contains v if {
	i := data.pipewarden.lib.core.first_prod_index
	stage := input.pipeline.stages[i]
	not stage.canary == true
	v := {
		"msg": sprintf("first prod stage '%s' is not a canary stage; set canary: true", [stage.name]),
		"path": sprintf("stages[%d].canary", [i]),
	}
}

deny contains v if {
	i := data.pipewarden.lib.core.first_prod_index
	stage := input.pipeline.stages[i]
	allowed := input.params["canary-first"].max_targets
	count(stage.targets) > allowed
	v := {
		"msg": sprintf(
			"first prod stage '%s' deploys to %d targets; at most %v allowed",
			[stage.name, count(stage.targets), allowed],
		),
		"path": sprintf("stages[%d].targets", [i]),
	}
}
