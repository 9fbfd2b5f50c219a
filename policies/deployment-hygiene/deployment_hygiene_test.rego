package pipewarden.rules.deployment_hygiene_test

import rego.v1

_stage(name, type, hooks) := {
	"name": name,
	"type": type,
	"targets": [{"name": name, "hosts": ["127.0.0.1:1"]}],
	"deploy": {"hooks": hooks},
}

_good := {"start": "./start.sh", "validate": "./validate.sh"}

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.deployment_hygiene.deny with input as {
		"pipeline": pipeline,
		"params": {"deployment-hygiene": {"required_hooks": ["start", "validate"]}},
	}
}

test_all_hooks_pass if {
	p := _pipeline([_stage("beta", "preprod", _good), _stage("prod", "prod", object.union(_good, {"stop": "./stop.sh"}))])
	count(_deny(p)) == 0
}

test_missing_validate if {
	p := _pipeline([_stage("beta", "preprod", _good), _stage("prod", "prod", {"start": "./start.sh"})])
	_deny(p) == {{
		"msg": "stage 'prod' lacks deploy hooks: validate; required hooks: start, validate",
		"path": "stages[1].deploy.hooks",
	}}
}

test_one_finding_per_stage_naming_all_missing if {
	p := _pipeline([_stage("beta", "preprod", {"install": "./i.sh"}), _stage("prod", "prod", {})])
	d := _deny(p)
	count(d) == 2
	{v.path | some v in d} == {"stages[0].deploy.hooks", "stages[1].deploy.hooks"}
	{v.msg | some v in d} == {
		"stage 'beta' lacks deploy hooks: start, validate; required hooks: start, validate",
		"stage 'prod' lacks deploy hooks: start, validate; required hooks: start, validate",
	}
}

test_deploy_absent if {
	p := _pipeline([{"name": "beta", "type": "preprod", "targets": [{"name": "b", "hosts": ["127.0.0.1:1"]}]}])
	d := _deny(p)
	{v.path | some v in d} == {"stages[0].deploy.hooks"}
}

test_applies_without_prod if {
	count(_deny(_pipeline([_stage("beta", "preprod", {})]))) == 1
}

test_custom_required_hooks if {
	p := _pipeline([_stage("prod", "prod", _good)])
	d := data.pipewarden.rules.deployment_hygiene.deny with input as {
		"pipeline": p,
		"params": {"deployment-hygiene": {"required_hooks": ["stop"]}},
	}
	{v.msg | some v in d} == {"stage 'prod' lacks deploy hooks: stop; required hooks: stop"}
}
