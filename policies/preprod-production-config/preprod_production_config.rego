# METADATA
# title: A preprod stage runs the production configuration
# description: At least one preprod stage before prod has production_config set to true.
# custom:
#   id: preprod-production-config
#   level: warn
#   prod_only: true
#   params: {}
#   params_schema: {type: object, additionalProperties: false, properties: {}}
#   rationale: >-
#     Many outages come from configuration rather than code: a flag, a limit, an endpoint or a
#     credential that differs between test and production. A preprod stage that runs with the
#     production configuration catches those mistakes before customers see them; otherwise the
#     first run of that configuration is in prod.
#   remediation: |
#     Run one of the preprod stages before prod (often the last one) with the production
#     configuration:
#
#     ```yaml
#     stages:
#       - name: gamma
#         type: preprod
#         production_config: true
#         # ...
#     ```
package pipewarden.rules.preprod_production_config

import rego.v1

deny contains v if {
	data.pipewarden.lib.core.has_prod
	not _production_config_before_prod
	v := {
		"msg": "no preprod stage before the first prod stage has production_config: true; one is required",
		"path": "stages",
	}
}

_production_config_before_prod if {
	some i in data.pipewarden.lib.core.preprod_before_prod
	input.pipeline.stages[i].production_config == true
}
