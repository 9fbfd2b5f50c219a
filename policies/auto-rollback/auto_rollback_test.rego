package pipewarden.rules.auto_rollback_test

import rego.v1

_stage(name, type, extra) := object.union(
	{"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]},
	extra,
)

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.auto_rollback.deny with input as {
		"pipeline": pipeline,
		"params": {"auto-rollback": {}},
	}
}

test_automatic_passes if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {"rollback": "automatic"})])
	count(_deny(p)) == 0
}

test_manual if {
	p := _pipeline([_stage("prod", "prod", {"rollback": "manual"})])
	_deny(p) == {{
		"msg": "prod stage 'prod' has rollback: manual; rollback: automatic required",
		"path": "stages[0].rollback",
	}}
}

test_absent_defaults_to_manual if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {})])
	_deny(p) == {{
		"msg": "prod stage 'prod' sets no rollback (default manual); rollback: automatic required",
		"path": "stages[1].rollback",
	}}
}

test_one_per_prod_stage if {
	p := _pipeline([
		_stage("a", "prod", {"rollback": "automatic"}),
		_stage("b", "prod", {}),
		_stage("c", "prod", {"rollback": "manual"}),
	])
	{v.path | some v in _deny(p)} == {"stages[1].rollback", "stages[2].rollback"}
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod", {})]))) == 0
}
