package pipewarden.rules.canary_bake_time_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_canary(bake) := object.union(_stage("prod-canary", "prod"), {"canary": true, "bake": bake})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.canary_bake_time.deny with input as {
		"pipeline": pipeline,
		"params": {"canary-bake-time": {"min_minutes": 60}},
	}
}

_bakes(duration) := _deny(_pipeline([_stage("beta", "preprod"), _canary({"duration": duration})]))

test_exactly_min_minutes_passes if {
	count(_bakes("60m")) == 0
	count(_bakes("1h")) == 0
	count(_bakes("3600s")) == 0
	count(_bakes("1d")) == 0
}

test_too_short if {
	_bakes("30m") == {{
		"msg": "canary stage 'prod-canary' bakes 30m; at least 60m required",
		"path": "stages[1].bake.duration",
	}}
}

test_one_second_short if {
	{v.msg | some v in _bakes("3599s")} == {"canary stage 'prod-canary' bakes 3599s; at least 60m required"}
}

test_seconds_compare_exactly if {
	d := data.pipewarden.rules.canary_bake_time.deny with input as {
		"pipeline": _pipeline([_canary({"duration": "61s"})]),
		"params": {"canary-bake-time": {"min_minutes": 1}},
	}
	count(d) == 0
	d2 := data.pipewarden.rules.canary_bake_time.deny with input as {
		"pipeline": _pipeline([_canary({"duration": "59s"})]),
		"params": {"canary-bake-time": {"min_minutes": 1}},
	}
	count(d2) == 1
}

test_missing_duration_is_zero if {
	p := _pipeline([_canary({"datapoints": {"min_positive": 1}})])
	_deny(p) == {{
		"msg": "canary stage 'prod-canary' bakes 0m; at least 60m required",
		"path": "stages[0].bake.duration",
	}}
}

test_missing_bake if {
	p := _pipeline([object.union(_stage("prod-canary", "prod"), {"canary": true})])
	{v.path | some v in _deny(p)} == {"stages[0].bake.duration"}
}

test_no_canary_stage if {
	p := _pipeline([_stage("prod", "prod"), object.union(_stage("prod-2", "prod"), {"canary": true})])
	count(_deny(p)) == 0
}

test_other_prod_stages_ignored if {
	p := _pipeline([_canary({"duration": "2h"}), _stage("prod-2", "prod")])
	count(_deny(p)) == 0
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod")]))) == 0
}
