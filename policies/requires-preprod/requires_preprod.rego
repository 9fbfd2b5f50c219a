# METADATA
# title: Preprod stages come before prod
# description: At least min_stages preprod stages run before the first prod stage.
# custom:
#   id: requires-preprod
#   level: warn
#   prod_only: true
#   params:
#     min_stages: 1
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_stages: {type: integer, minimum: 0, maximum: 1000000000}
#   rationale: >-
#     A preprod stage is where a new version first runs as a deployed service, talking to real
#     dependencies, without customers on it. Deploying straight from the build to prod makes
#     customers the first to meet every deployment, configuration and integration defect. A
#     preprod stage placed after prod protects nobody.
#   remediation: |
#     Add preprod stages above the first prod stage (stages run top to bottom):
#
#     ```yaml
#     stages:
#       - name: beta
#         type: preprod
#         targets: [{name: beta-1, hosts: ["10.0.0.1:8080"]}]
#       - name: prod-canary
#         type: prod
#         # ...
#     ```
package pipewarden.rules.requires_preprod

import rego.v1

deny contains v if {
	data.pipewarden.lib.core.has_prod
	wanted := input.params["requires-preprod"].min_stages
	found := count(data.pipewarden.lib.core.preprod_before_prod)
	found < wanted
	i := data.pipewarden.lib.core.first_prod_index
	v := {
		"msg": sprintf(
			"%d preprod stage(s) before the first prod stage '%s'; at least %v required",
			[found, input.pipeline.stages[i].name, wanted],
		),
		"path": sprintf("stages[%d]", [i]),
	}
}
