# METADATA
# title: Prod deployments keep enough hosts in service
# description: Every prod stage sets deploy.min_healthy to at least min_percent of a target's hosts.
# custom:
#   id: min-healthy-hosts
#   level: warn
#   prod_only: true
#   params:
#     min_percent: 66
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       min_percent: {type: number, minimum: 0, maximum: 100, multipleOf: 0.01}
#   rationale: >-
#     While a target is deployed, the hosts being replaced serve no traffic; the rest must carry
#     the whole load. Without a floor, a deployment may take every host out at once, and a cell
#     with too few hosts left falls over under peak traffic. A count is judged against the stage's
#     largest target, where it keeps the smallest share in service.
#   remediation: |
#     Set `deploy.min_healthy` of each prod stage to a percentage (or a host count) that keeps at
#     least the required share of each target's hosts serving during the deployment:
#
#     ```yaml
#     stages:
#       - name: prod-canary
#         type: prod
#         deploy:
#           min_healthy: 66%
#         # ...
#     ```
package pipewarden.rules.min_healthy_hosts

import rego.v1

_min_percent := input.params["min-healthy-hosts"].min_percent

# The minimum in hundredths of a percent, an integer: params_schema allows at most
# two decimals (multipleOf 0.01), so the rounding is exact on every engine, and
# every comparison below is between integers. So the embedded engine (doubles) and
# OPA (exact decimals) agree on every pipeline, where `kept * 100 < min * hosts`
# with a 17-digit min (66.66666666666667) did not.
_min_hundredths := round(_min_percent * 100)

_required := sprintf("at least %s%% required", [data.pipewarden.lib.core.fmt_hundredths(_min_hundredths)])

deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	not stage.deploy.min_healthy
	v := {
		"msg": sprintf("prod stage '%s' sets no deploy.min_healthy; %s", [stage.name, _required]),
		"path": sprintf("stages[%d].deploy.min_healthy", [i]),
	}
}

# A percentage, "N%".
deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	value := stage.deploy.min_healthy
	is_string(value)
	percent := data.pipewarden.lib.core.hundredths(trim_suffix(value, "%"))
	percent < _min_hundredths
	v := {
		"msg": sprintf(
			"prod stage '%s' keeps %s of hosts healthy while deploying; %s",
			[stage.name, value, _required],
		),
		"path": sprintf("stages[%d].deploy.min_healthy", [i]),
	}
}

# A host count, judged against the stage's largest target.
deny contains v if {
	some i in data.pipewarden.lib.core.prod_indices
	stage := input.pipeline.stages[i]
	kept := stage.deploy.min_healthy
	is_number(kept)
	hosts := max([count(t.hosts) | some t in stage.targets])
	hosts > 0
	kept * 10000 < _min_hundredths * hosts
	v := {
		"msg": sprintf(
			"prod stage '%s' keeps %v of %v hosts (%s%%) healthy while deploying; %s",
			[stage.name, kept, hosts, data.pipewarden.lib.core.fmt_hundredths(round((kept * 10000) / hosts)), _required],
		),
		"path": sprintf("stages[%d].deploy.min_healthy", [i]),
	}
}
