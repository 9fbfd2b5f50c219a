# METADATA
# title: Load and security tests run before prod
# description: Every required test type runs in build.tests or in a preprod stage before prod.
# custom:
#   id: load-and-security-tests
#   level: warn
#   prod_only: true
#   params:
#     required_types: [load, security]
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
#     Capacity regressions and vulnerabilities rarely show up in functional tests: a slower query
#     or a leaking connection passes every assertion and then falls over at peak traffic, and a
#     vulnerable dependency works perfectly until it is exploited. Load and security tests before
#     prod find them while they are still cheap to fix.
#   remediation: |
#     Run each required test type in the build or in a preprod stage before the first prod stage:
#
#     ```yaml
#     stages:
#       - name: gamma
#         type: preprod
#         tests:
#           - {name: load, type: load, command: "make load"}
#           - {name: security, type: security, command: "make scan"}
#         # ...
#     ```
package pipewarden.rules.load_and_security_tests

import rego.v1

deny contains v if {
	data.pipewarden.lib.core.has_prod
	required := input.params["load-and-security-tests"].required_types
	some t in required
	not t in data.pipewarden.lib.core.build_test_types
	not t in data.pipewarden.lib.core.preprod_test_types
	v := {
		"msg": sprintf(
			"no test of type '%s' in build.tests or in a preprod stage before prod; required types: %s",
			[t, concat(", ", required)],
		),
		"path": "stages",
	}
}
