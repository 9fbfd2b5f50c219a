package pipewarden.rules.canary_first_test

import rego.v1

_stage(name, type, ntargets) := {"name": name, "type": type, "targets": [t |
	some k in numbers.range(1, ntargets)
	t := {"name": sprintf("%s-%d", [name, k]), "hosts": [sprintf("127.0.0.1:%d", [k])]}
]}

_canary(name, ntargets) := object.union(_stage(name, "prod", ntargets), {"canary": true})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline, max_targets) := d if {
	d := data.pipewarden.rules.canary_first.deny with input as {
		"pipeline": pipeline,
		"params": {"canary-first": {"max_targets": max_targets}},
	}
}

test_one_target_canary_passes if {
	p := _pipeline([_stage("beta", "preprod", 3), _canary("prod-canary", 1), _stage("prod", "prod", 4)])
	count(_deny(p, 1)) == 0
}

test_not_canary if {
	p := _pipeline([_stage("beta", "preprod", 1), _stage("prod", "prod", 1)])
	_deny(p, 1) == {{
		"msg": "first prod stage 'prod' is not a canary stage; set canary: true",
		"path": "stages[1].canary",
	}}
}

test_canary_false if {
	p := _pipeline([object.union(_stage("prod", "prod", 1), {"canary": false})])
	{v.path | some v in _deny(p, 1)} == {"stages[0].canary"}
}

test_canary_on_later_stage_does_not_count if {
	p := _pipeline([_stage("prod-1", "prod", 1), _canary("prod-2", 1)])
	{v.path | some v in _deny(p, 1)} == {"stages[0].canary"}
}

test_too_many_targets if {
	p := _pipeline([_canary("prod-canary", 2)])
	_deny(p, 1) == {{
		"msg": "first prod stage 'prod-canary' deploys to 2 targets; at most 1 allowed",
		"path": "stages[0].targets",
	}}
}

test_exactly_max_targets_passes if {
	count(_deny(_pipeline([_canary("prod-canary", 2)]), 2)) == 0
}

test_both_clauses if {
	d := _deny(_pipeline([_stage("prod", "prod", 3)]), 1)
	count(d) == 2
	{v.path | some v in d} == {"stages[0].canary", "stages[0].targets"}
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod", 3)]), 1)) == 0
}
