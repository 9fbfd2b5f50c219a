package pipewarden.rules.min_healthy_hosts_test

import rego.v1

_target(name, n) := {"name": name, "hosts": [sprintf("127.0.0.1:%d", [k]) | some k in numbers.range(1, n)]}

_stage(name, type, targets, deploy) := {"name": name, "type": type, "targets": targets, "deploy": deploy}

_prod(min_healthy) := _stage("prod", "prod", [_target("c1", 3)], {"min_healthy": min_healthy})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.min_healthy_hosts.deny with input as {
		"pipeline": pipeline,
		"params": {"min-healthy-hosts": {"min_percent": 66}},
	}
}

test_percentage_at_minimum_passes if {
	count(_deny(_pipeline([_prod("66%")]))) == 0
	count(_deny(_pipeline([_prod("100%")]))) == 0
	count(_deny(_pipeline([_prod("66.0%")]))) == 0
}

test_percentage_below if {
	_deny(_pipeline([_prod("65.9%")])) == {{
		"msg": "prod stage 'prod' keeps 65.9% of hosts healthy while deploying; at least 66% required",
		"path": "stages[0].deploy.min_healthy",
	}}
}

test_missing_min_healthy if {
	p := _pipeline([_stage("prod", "prod", [_target("c1", 3)], {"hooks": {}})])
	_deny(p) == {{
		"msg": "prod stage 'prod' sets no deploy.min_healthy; at least 66% required",
		"path": "stages[0].deploy.min_healthy",
	}}
}

test_deploy_absent if {
	p := _pipeline([{"name": "prod", "type": "prod", "targets": [_target("c1", 1)]}])
	{v.path | some v in _deny(p)} == {"stages[0].deploy.min_healthy"}
}

# 2 of 3 hosts is 66.67%: enough for 66%.
test_count_above_minimum_passes if {
	count(_deny(_pipeline([_prod(2)]))) == 0
}

test_count_below if {
	_deny(_pipeline([_prod(1)])) == {{
		"msg": "prod stage 'prod' keeps 1 of 3 hosts (33.33%) healthy while deploying; at least 66% required",
		"path": "stages[0].deploy.min_healthy",
	}}
}

test_count_zero if {
	count(_deny(_pipeline([_prod(0)]))) == 1
}

# The same count is judged against the largest target: 2 of 4 is 50%.
test_count_uses_largest_target if {
	p := _pipeline([_stage("prod", "prod", [_target("c1", 2), _target("c2", 4)], {"min_healthy": 2})])
	d := _deny(p)
	{v.msg | some v in d} == {"prod stage 'prod' keeps 2 of 4 hosts (50%) healthy while deploying; at least 66% required"}
}

test_count_exactly_at_minimum if {
	p := _pipeline([_stage("prod", "prod", [_target("c1", 50)], {"min_healthy": 33})])
	count(_deny(p)) == 0
	p2 := _pipeline([_stage("prod", "prod", [_target("c1", 50)], {"min_healthy": 32})])
	count(_deny(p2)) == 1
}

test_one_per_prod_stage_preprod_ignored if {
	p := _pipeline([
		_stage("beta", "preprod", [_target("b", 1)], {"min_healthy": "0%"}),
		_stage("prod-1", "prod", [_target("c1", 3)], {"min_healthy": "50%"}),
		_stage("prod-2", "prod", [_target("c2", 3)], {}),
		_stage("prod-3", "prod", [_target("c3", 3)], {"min_healthy": "75%"}),
	])
	d := _deny(p)
	count(d) == 2
	{v.path | some v in d} == {"stages[1].deploy.min_healthy", "stages[2].deploy.min_healthy"}
}

test_no_prod_stage if {
	p := _pipeline([_stage("beta", "preprod", [_target("b", 1)], {})])
	count(_deny(p)) == 0
}

_deny_at(pipeline, min_percent) := d if {
	d := data.pipewarden.rules.min_healthy_hosts.deny with input as {
		"pipeline": pipeline,
		"params": {"min-healthy-hosts": {"min_percent": min_percent}},
	}
}

# Integer arithmetic in hundredths: the same findings on the embedded engine (doubles) and on
# OPA (exact decimals). 2 of 3 hosts is 66.666...%, below 66.67% and not below 66.66%.
test_count_against_two_decimals if {
	p := _pipeline([_prod(2)])
	{v.msg | some v in _deny_at(p, 66.67)} == {"prod stage 'prod' keeps 2 of 3 hosts (66.67%) healthy while deploying; at least 66.67% required"}
	count(_deny_at(p, 66.66)) == 0
}

# A long fraction in the pipeline is cut, not rounded by a float parse: just below the minimum
# is below it (a double would read 66.599999999999999999 as 66.6).
test_percentage_long_fraction if {
	count(_deny_at(_pipeline([_prod("66.599999999999999999%")]), 66.6)) == 1
	count(_deny_at(_pipeline([_prod("66.600000000000000001%")]), 66.6)) == 0
	count(_deny_at(_pipeline([_prod("66.6%")]), 66.6)) == 0
}
