# METADATA
# title: Prod stages roll back automatically
# description: Every prod stage sets rollback to automatic.
# custom:
#   id: auto-rollback
#   level: warn
#   prod_only: true
#   params: {}
#   params_schema: {type: object, additionalProperties: false, properties: {}}
#   rationale: >-
#     When an alarm fires during a deployment, every minute until the previous version is back
#     is a minute of customer impact. An automatic rollback starts within seconds, at any hour;
#     a manual one waits for someone to be paged, to log in and to decide, which often takes longer
#     than the outage should have lasted.
#   remediation: |
#     Set `rollback: automatic` on each prod stage (the default is manual):
#
#     ```yaml
#     stages:
#       - name: prod-canary
#         type: prod
#         rollback: automatic
#         # ...
#     ```
package pipewarden.rules.auto_rollback

import rego.v1

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	not stage.rollback == "automatic"
	v := {
		"msg": sprintf("prod stage '%s' %s; rollback: automatic required", [stage.name, _current(stage)]),
		"path": sprintf("stages[%d].rollback", [i]),
	}
}

_current(stage) := sprintf("has rollback: %s", [stage.rollback]) if stage.rollback

_current(stage) := "sets no rollback (default manual)" if not stage.rollback
