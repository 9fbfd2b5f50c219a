package pipewarden.rules.progressive_rollout_test

import rego.v1

_target(name) := {"name": name, "hosts": ["127.0.0.1:1"]}

_stage(name, type, target_names) := {"name": name, "type": type, "targets": [_target(t) | some t in target_names]}

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline, fraction) := d if {
	d := data.pipewarden.rules.progressive_rollout.deny with input as {
		"pipeline": pipeline,
		"params": {"progressive-rollout": {"max_fraction": fraction}},
	}
}

# T = 4: a stage may deploy to 2 targets, exactly max_fraction * T.
test_half_of_targets_passes if {
	p := _pipeline([
		_stage("canary", "prod", ["c1"]),
		_stage("wave-1", "prod", ["c2"]),
		_stage("wave-2", "prod", ["c3", "c4"]),
	])
	count(_deny(p, 0.5)) == 0
}

test_more_than_fraction if {
	p := _pipeline([_stage("canary", "prod", ["c1"]), _stage("rest", "prod", ["c2", "c3", "c4"])])
	_deny(p, 0.5) == {{
		"msg": "prod stage 'rest' deploys to 3 of 4 prod targets at once; at most 2 allowed (max_fraction 0.5)",
		"path": "stages[1].targets",
	}}
}

# max(1, ...): one target is always allowed, even when max_fraction * T < 1.
test_single_target_always_allowed if {
	p := _pipeline([_stage("prod", "prod", ["c1"])])
	count(_deny(p, 0.5)) == 0
	count(_deny(p, 0)) == 0
}

test_all_targets_in_one_stage if {
	p := _pipeline([_stage("prod", "prod", ["c1", "c2"])])
	{v.path | some v in _deny(p, 0.5)} == {"stages[0].targets"}
	count(_deny(p, 1)) == 0
}

# A target deployed by two prod stages counts once in T.
test_distinct_target_names if {
	p := _pipeline([_stage("canary", "prod", ["c1"]), _stage("all", "prod", ["c1", "c2"])])
	{v.msg | some v in _deny(p, 0.5)} == {"prod stage 'all' deploys to 2 of 2 prod targets at once; at most 1 allowed (max_fraction 0.5)"}
}

test_preprod_targets_not_counted if {
	p := _pipeline([_stage("beta", "preprod", ["b1", "b2", "b3", "b4"]), _stage("prod", "prod", ["c1", "c2"])])
	count(_deny(p, 0.5)) == 1
}

# 0.29 * 100 is 28.999999999999996 in binary (exactly 29 on OPA): the rule computes in
# thousandths, so 29 targets pass on both engines.
test_fraction_rounding if {
	names := [sprintf("c%d", [k]) | some k in numbers.range(1, 100)]
	p := _pipeline([_stage("wave-1", "prod", array.slice(names, 0, 29)), _stage("rest", "prod", array.slice(names, 29, 100))])
	{v.path | some v in _deny(p, 0.29)} == {"stages[1].targets"}
}

test_one_finding_per_stage if {
	p := _pipeline([_stage("a", "prod", ["c1", "c2"]), _stage("b", "prod", ["c3", "c4"]), _stage("c", "prod", ["c5"])])
	d := _deny(p, 0.2)
	count(d) == 2
	{v.path | some v in d} == {"stages[0].targets", "stages[1].targets"}
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod", ["b1", "b2"])]), 0.5)) == 0
}
