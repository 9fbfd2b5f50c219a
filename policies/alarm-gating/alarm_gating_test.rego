package pipewarden.rules.alarm_gating_test

import rego.v1

_stage(name, type, extra) := object.union(
	{"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]},
	extra,
)

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline, min_alarms) := d if {
	d := data.pipewarden.rules.alarm_gating.deny with input as {
		"pipeline": pipeline,
		"params": {"alarm-gating": {"min_alarms": min_alarms}},
	}
}

test_alarms_pass if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {"alarms": ["errors"]})])
	count(_deny(p, 1)) == 0
}

test_no_alarms if {
	p := _pipeline([_stage("beta", "preprod", {}), _stage("prod", "prod", {})])
	_deny(p, 1) == {{
		"msg": "prod stage 'prod' is gated by 0 alarm(s); at least 1 required",
		"path": "stages[1].alarms",
	}}
}

test_empty_alarms if {
	p := _pipeline([_stage("prod", "prod", {"alarms": []})])
	{v.path | some v in _deny(p, 1)} == {"stages[0].alarms"}
}

test_exactly_min_alarms if {
	p := _pipeline([_stage("prod", "prod", {"alarms": ["errors", "latency"]})])
	count(_deny(p, 2)) == 0
	{v.msg | some v in _deny(p, 3)} == {"prod stage 'prod' is gated by 2 alarm(s); at least 3 required"}
}

test_one_per_prod_stage if {
	p := _pipeline([_stage("a", "prod", {}), _stage("b", "prod", {"alarms": ["errors"]}), _stage("c", "prod", {})])
	{v.path | some v in _deny(p, 1)} == {"stages[0].alarms", "stages[2].alarms"}
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod", {})]), 1)) == 0
}
