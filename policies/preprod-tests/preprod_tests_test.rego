package pipewarden.rules.preprod_tests_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_tested(name, types) := object.union(_stage(name, "preprod"), {"tests": [t |
	some type in types
	t := {"name": type, "type": type, "command": "make test"}
]})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline, types) := d if {
	d := data.pipewarden.rules.preprod_tests.deny with input as {
		"pipeline": pipeline,
		"params": {"preprod-tests": {"required_types": types}},
	}
}

test_integration_tests_pass if {
	p := _pipeline([_tested("beta", ["integration"]), _tested("gamma", ["load"]), _stage("prod", "prod")])
	count(_deny(p, ["integration"])) == 0
}

test_stage_without_tests if {
	p := _pipeline([_tested("beta", ["integration"]), _stage("gamma", "preprod"), _stage("prod", "prod")])
	_deny(p, ["integration"]) == {{
		"msg": "preprod stage 'gamma' runs no test; every preprod stage before prod must run tests",
		"path": "stages[1].tests",
	}}
}

test_empty_tests_list if {
	p := _pipeline([_tested("beta", []), _stage("prod", "prod")])
	d := _deny(p, [])
	{v.path | some v in d} == {"stages[0].tests"}
}

test_missing_required_type if {
	p := _pipeline([_tested("beta", ["smoke"]), _stage("prod", "prod")])
	_deny(p, ["integration"]) == {{
		"msg": "no preprod stage before prod runs a test of type 'integration'; required types: integration",
		"path": "stages",
	}}
}

test_one_finding_per_clause if {
	p := _pipeline([_stage("alpha", "preprod"), _stage("beta", "preprod"), _stage("prod", "prod")])
	d := _deny(p, ["integration", "browser"])
	count(d) == 4
	[v.path | some v in d] == ["stages", "stages", "stages[0].tests", "stages[1].tests"]
}

test_no_preprod_stage_still_requires_types if {
	p := _pipeline([_stage("prod", "prod")])
	d := _deny(p, ["integration"])
	count(d) == 1
	{v.path | some v in d} == {"stages"}
}

test_preprod_after_prod_ignored if {
	p := _pipeline([_tested("beta", ["smoke"]), _stage("prod", "prod"), _stage("late", "preprod"), _tested("late2", ["integration"])])
	d := _deny(p, ["integration"])
	{v.path | some v in d} == {"stages"}
}

test_build_tests_do_not_count if {
	p := {
		"build": {"commands": ["make"], "tests": [{"name": "i", "type": "integration", "command": "x"}]},
		"stages": [_tested("beta", ["smoke"]), _stage("prod", "prod")],
	}
	count(_deny(p, ["integration"])) == 1
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod")]), ["integration"])) == 0
}
