package pipewarden.rules.requires_preprod_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline, min_stages) := d if {
	d := data.pipewarden.rules.requires_preprod.deny with input as {
		"pipeline": pipeline,
		"params": {"requires-preprod": {"min_stages": min_stages}},
	}
}

test_one_preprod_before_prod_passes if {
	count(_deny(_pipeline([_stage("beta", "preprod"), _stage("prod", "prod")]), 1)) == 0
}

test_no_preprod if {
	_deny(_pipeline([_stage("prod", "prod")]), 1) == {{
		"msg": "0 preprod stage(s) before the first prod stage 'prod'; at least 1 required",
		"path": "stages[0]",
	}}
}

test_preprod_after_prod_does_not_count if {
	p := _pipeline([_stage("prod-1", "prod"), _stage("beta", "preprod"), _stage("prod-2", "prod")])
	d := _deny(p, 1)
	count(d) == 1
	{v.path | some v in d} == {"stages[0]"}
}

test_path_is_first_prod_stage if {
	p := _pipeline([_stage("beta", "preprod"), _stage("prod-1", "prod"), _stage("prod-2", "prod")])
	_deny(p, 2) == {{
		"msg": "1 preprod stage(s) before the first prod stage 'prod-1'; at least 2 required",
		"path": "stages[1]",
	}}
}

test_exactly_min_stages_passes if {
	p := _pipeline([_stage("alpha", "preprod"), _stage("beta", "preprod"), _stage("prod", "prod")])
	count(_deny(p, 2)) == 0
}

test_zero_required if {
	count(_deny(_pipeline([_stage("prod", "prod")]), 0)) == 0
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod")]), 5)) == 0
}
