package pipewarden.rules.full_automation_test

import rego.v1

_stage(name, type, extra) := object.union(
	{"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]},
	extra,
)

_approval := {"name": "release-manager", "type": "manual"}

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.full_automation.deny with input as {
		"pipeline": pipeline,
		"params": {"full-automation": {}},
	}
}

test_automatic_passes if {
	p := _pipeline([
		_stage("beta", "preprod", {"promotion": "automatic", "approvals": []}),
		_stage("prod", "prod", {}),
	])
	count(_deny(p)) == 0
}

test_approvals if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {"approvals": [_approval]})])
	_deny(p) == {{
		"msg": "stage 'prod' waits for 1 manual approval(s); every transition should be automatic",
		"path": "stages[1].approvals",
	}}
}

test_approvals_on_first_stage if {
	p := _pipeline([_stage("beta", "preprod", {"approvals": [_approval, _approval]})])
	{v.path | some v in _deny(p)} == {"stages[0].approvals"}
}

test_manual_promotion if {
	p := _pipeline([_stage("beta", "preprod", {"promotion": "manual"}), _stage("prod", "prod", {})])
	_deny(p) == {{
		"msg": "stage 'beta' promotes to 'prod' by hand (promotion: manual); promotion: automatic expected",
		"path": "stages[0].promotion",
	}}
}

# One transition, one finding: approvals win over the manual promotion before them.
test_approval_and_manual_promotion_is_one_transition if {
	p := _pipeline([_stage("beta", "preprod", {"promotion": "manual"}), _stage("prod", "prod", {"approvals": [_approval]})])
	{v.path | some v in _deny(p)} == {"stages[1].approvals"}
}

# The last stage promotes to nothing.
test_manual_promotion_of_last_stage if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {"promotion": "manual"})])
	count(_deny(p)) == 0
}

test_every_transition_manual if {
	p := _pipeline([
		_stage("beta", "preprod", {"approvals": [_approval], "promotion": "manual"}),
		_stage("gamma", "preprod", {"promotion": "manual"}),
		_stage("prod", "prod", {}),
	])
	d := _deny(p)
	count(d) == 3
	{v.path | some v in d} == {"stages[0].approvals", "stages[0].promotion", "stages[1].promotion"}
}

test_applies_without_prod if {
	p := _pipeline([_stage("beta", "preprod", {"approvals": [_approval]})])
	count(_deny(p)) == 1
}
