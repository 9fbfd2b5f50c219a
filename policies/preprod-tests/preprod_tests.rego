# METADATA
# title: Preprod stages run tests
# description: Every preprod stage before prod runs tests, and together they run every required test type.
# custom:
#   id: preprod-tests
#   level: warn
#   prod_only: true
#   params:
#     required_types: [integration]
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       required_types:
#         type: array
#         uniqueItems: true
#         items:
#           type: string
#           enum: [unit, style, coverage, integration, load, security, browser, fault-injection, smoke, other]
#   rationale: >-
#     A preprod stage only protects customers if something checks the deployed service there: a
#     stage that runs no test merely delays the release. Integration tests against the deployed
#     service catch what unit tests cannot, such as broken dependencies, wiring, permissions and
#     data migrations.
#   remediation: |
#     Give each preprod stage before prod at least one test, and make sure the required test types
#     run in at least one of them:
#
#     ```yaml
#     stages:
#       - name: beta
#         type: preprod
#         tests:
#           - {name: integration, type: integration, command: "make integ"}
#         # ...
#     ```
package pipewarden.rules.preprod_tests

import rego.v1

deny contains v if {
	data.pipewarden.lib.core.has_prod
	some i in data.pipewarden.lib.core.preprod_before_prod
	count(data.pipewarden.lib.core.stage_test_types[i]) == 0
	v := {
		"msg": sprintf(
			"preprod stage '%s' runs no test; every preprod stage before prod must run tests",
			[input.pipeline.stages[i].name],
		),
		"path": sprintf("stages[%d].tests", [i]),
	}
}

deny contains v if {
	data.pipewarden.lib.core.has_prod
	required := input.params["preprod-tests"].required_types
	some t in required
	not t in data.pipewarden.lib.core.preprod_test_types
	v := {
		"msg": sprintf(
			"no preprod stage before prod runs a test of type '%s'; required types: %s",
			[t, concat(", ", required)],
		),
		"path": "stages",
	}
}
