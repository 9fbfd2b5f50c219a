package pipewarden.rules.build_tests_test

import rego.v1

_stages := [{"name": "prod", "type": "prod", "targets": [{"name": "c1", "hosts": ["127.0.0.1:1"]}]}]

_pipeline(tests) := {"build": {"commands": ["make"], "tests": tests}, "stages": _stages}

_test(name, type) := {"name": name, "type": type, "command": "make test"}

_deny(pipeline, types) := d if {
	d := data.pipewarden.rules.build_tests.deny with input as {
		"pipeline": pipeline,
		"params": {"build-tests": {"required_types": types}},
	}
}

test_unit_test_passes if {
	count(_deny(_pipeline([_test("unit", "unit")]), ["unit"])) == 0
}

test_missing_unit_test if {
	_deny(_pipeline([_test("lint", "style")]), ["unit"]) == {{
		"msg": "build.tests has no test of type 'unit'; required types: unit",
		"path": "build.tests",
	}}
}

test_tests_absent if {
	p := {"build": {"commands": ["make"]}, "stages": _stages}
	d := _deny(p, ["unit"])
	count(d) == 1
	{v.path | some v in d} == {"build.tests"}
}

test_one_finding_per_missing_type if {
	d := _deny(_pipeline([_test("unit", "unit")]), ["unit", "style", "coverage"])
	count(d) == 2
	{v.msg | some v in d} == {
		"build.tests has no test of type 'style'; required types: unit, style, coverage",
		"build.tests has no test of type 'coverage'; required types: unit, style, coverage",
	}
}

test_matches_type_not_name if {
	count(_deny(_pipeline([_test("unit", "other")]), ["unit"])) == 1
}

test_no_required_types if {
	count(_deny(_pipeline([]), [])) == 0
}

test_applies_without_prod if {
	p := {
		"build": {"commands": ["make"]},
		"stages": [{"name": "beta", "type": "preprod", "targets": [{"name": "b", "hosts": ["127.0.0.1:1"]}]}],
	}
	count(_deny(p, ["unit"])) == 1
}
