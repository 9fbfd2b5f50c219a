package pipewarden.rules.load_and_security_tests_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_tests(types) := [t | some type in types; t := {"name": type, "type": type, "command": "make test"}]

_tested(name, type, types) := object.union(_stage(name, type), {"tests": _tests(types)})

_pipeline(build_types, stages) := {"build": {"commands": ["make"], "tests": _tests(build_types)}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.load_and_security_tests.deny with input as {
		"pipeline": pipeline,
		"params": {"load-and-security-tests": {"required_types": ["load", "security"]}},
	}
}

test_both_in_preprod_pass if {
	p := _pipeline([], [_tested("gamma", "preprod", ["load", "security"]), _stage("prod", "prod")])
	count(_deny(p)) == 0
}

test_split_between_build_and_preprod_passes if {
	p := _pipeline(["security"], [_tested("gamma", "preprod", ["load"]), _stage("prod", "prod")])
	count(_deny(p)) == 0
}

test_missing_load if {
	p := _pipeline(["security"], [_stage("beta", "preprod"), _stage("prod", "prod")])
	_deny(p) == {{
		"msg": "no test of type 'load' in build.tests or in a preprod stage before prod; required types: load, security",
		"path": "stages",
	}}
}

test_one_finding_per_type if {
	p := _pipeline(["unit"], [_stage("prod", "prod")])
	d := _deny(p)
	count(d) == 2
	{v.path | some v in d} == {"stages"}
}

test_tests_in_prod_or_after_prod_do_not_count if {
	p := _pipeline([], [
		_tested("prod", "prod", ["load"]),
		_tested("late", "preprod", ["security"]),
	])
	count(_deny(p)) == 2
}

test_no_prod_stage if {
	count(_deny(_pipeline([], [_stage("beta", "preprod")]))) == 0
}
