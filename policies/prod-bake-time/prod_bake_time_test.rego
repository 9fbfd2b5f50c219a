package pipewarden.rules.prod_bake_time_test

import rego.v1

_stage(name, type, extra) := object.union(
	{"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]},
	extra,
)

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.prod_bake_time.deny with input as {
		"pipeline": pipeline,
		"params": {"prod-bake-time": {"min_minutes": 30}},
	}
}

_wave(name, duration) := _stage(name, "prod", {"bake": {"duration": duration}})

_canary := _stage("prod-canary", "prod", {"canary": true, "bake": {"duration": "1m"}})

test_exactly_min_minutes_passes if {
	p := _pipeline([_canary, _wave("w1", "30m"), _wave("w2", "1800s"), _wave("w3", "1h"), _wave("w4", "1d")])
	count(_deny(p)) == 0
}

test_too_short if {
	p := _pipeline([_canary, _wave("prod-wave-1", "10m")])
	_deny(p) == {{
		"msg": "prod stage 'prod-wave-1' bakes 10m; at least 30m required",
		"path": "stages[1].bake.duration",
	}}
}

test_one_second_short if {
	p := _pipeline([_canary, _wave("prod-wave-1", "1799s")])
	count(_deny(p)) == 1
}

test_missing_duration if {
	p := _pipeline([_canary, _stage("prod-wave-1", "prod", {})])
	{v.msg | some v in _deny(p)} == {"prod stage 'prod-wave-1' bakes 0m; at least 30m required"}
}

test_canary_stage_is_excluded if {
	count(_deny(_pipeline([_canary]))) == 0
}

test_first_prod_without_canary_flag_counts if {
	p := _pipeline([_wave("prod-1", "5m"), _wave("prod-2", "5m")])
	d := _deny(p)
	count(d) == 2
	{v.path | some v in d} == {"stages[0].bake.duration", "stages[1].bake.duration"}
}

test_preprod_ignored if {
	p := _pipeline([_stage("beta", "preprod", {}), _canary, _wave("w", "30m"), _stage("late", "preprod", {})])
	count(_deny(p)) == 0
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod", {})]))) == 0
}
