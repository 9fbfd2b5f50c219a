# METADATA
# title: Deployments start and validate the service
# description: Every stage defines the required deploy lifecycle hooks.
# custom:
#   id: deployment-hygiene
#   level: warn
#   prod_only: false
#   params:
#     required_hooks: [start, validate]
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       required_hooks:
#         type: array
#         uniqueItems: true
#         items:
#           type: string
#           enum: [stop, install, start, validate]
#   rationale: >-
#     A deployment that copies files but never explicitly starts the new version, or never checks
#     that the host is healthy afterwards, reports success while the host serves the old version or
#     nothing at all. The validate hook stops a bad version on the first host, before the
#     deployment moves on and takes the rest of the fleet down with it.
#   remediation: |
#     Add the missing hooks under `deploy.hooks` of each stage; each is one shell command run on
#     every host, and a failing validate hook stops the deployment:
#
#     ```yaml
#     deploy:
#       hooks:
#         start: ./deploy/start.sh
#         validate: ./deploy/validate.sh
#     ```
package pipewarden.rules.deployment_hygiene

import rego.v1

deny contains v if {
	required := input.params["deployment-hygiene"].required_hooks
	some i, stage in input.pipeline.stages
	present := object.keys(object.get(stage, ["deploy", "hooks"], {}))
	missing := [h | some h in required; not h in present]
	count(missing) > 0
	v := {
		"msg": sprintf(
			"stage '%s' lacks deploy hooks: %s; required hooks: %s",
			[stage.name, concat(", ", missing), concat(", ", required)],
		),
		"path": sprintf("stages[%d].deploy.hooks", [i]),
	}
}
