# METADATA
# title: Build runs the required tests
# description: The build runs at least one test of every required type in build.tests.
# custom:
#   id: build-tests
#   level: warn
#   prod_only: false
#   params:
#     required_types: [unit]
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
#     Tests on the build machine are the cheapest and fastest place to catch a defect: they run on
#     every commit, before any environment is touched, and fail in minutes. A build without unit
#     tests pushes every mistake onto the later stages, where it is slower to find and where it may
#     reach customers.
#   remediation: |
#     Add a test of each required type to `build.tests`; its command must fail the build when a
#     test fails:
#
#     ```yaml
#     build:
#       commands: ["make build"]
#       tests:
#         - {name: unit, type: unit, command: "make test"}
#     ```
package pipewarden.rules.build_tests

import rego.v1

deny contains v if {
	required := input.params["build-tests"].required_types
	some t in required
	not t in data.pipewarden.lib.core.build_test_types
	v := {
		"msg": sprintf("build.tests has no test of type '%s'; required types: %s", [t, concat(", ", required)]),
		"path": "build.tests",
	}
}
