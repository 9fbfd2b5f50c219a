package pipewarden.rules.canary_datapoints_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_metric := {"source": "command", "command": "echo 1"}

_points(extra) := object.union({"positive": _metric, "negative": _metric}, extra)

_canary(bake) := object.union(_stage("prod-canary", "prod"), {"canary": true, "bake": bake})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.canary_datapoints.deny with input as {
		"pipeline": pipeline,
		"params": {"canary-datapoints": {"min_positive": 3000, "max_negative": 0}},
	}
}

_with_points(extra) := _deny(_pipeline([_stage("beta", "preprod"), _canary({"datapoints": _points(extra)})]))

test_at_thresholds_passes if {
	count(_with_points({"min_positive": 3000, "max_negative": 0})) == 0
	count(_with_points({"min_positive": 10000})) == 0
}

test_no_datapoints if {
	_deny(_pipeline([_canary({"duration": "60m"})])) == {{
		"msg": "canary stage 'prod-canary' has no bake.datapoints; at least 3000 positive and at most 0 negative datapoints required",
		"path": "stages[0].bake.datapoints",
	}}
}

test_no_bake if {
	p := _pipeline([object.union(_stage("prod-canary", "prod"), {"canary": true})])
	{v.path | some v in _deny(p)} == {"stages[0].bake.datapoints"}
}

test_min_positive_below if {
	_with_points({"min_positive": 2999}) == {{
		"msg": "canary stage 'prod-canary' waits for 2999 positive datapoints; at least 3000 required",
		"path": "stages[1].bake.datapoints.min_positive",
	}}
}

test_max_negative_above if {
	_with_points({"min_positive": 3000, "max_negative": 1}) == {{
		"msg": "canary stage 'prod-canary' tolerates 1 negative datapoints; at most 0 allowed",
		"path": "stages[1].bake.datapoints.max_negative",
	}}
}

test_both_thresholds if {
	d := _with_points({"min_positive": 10, "max_negative": 5})
	count(d) == 2
	{v.path | some v in d} == {"stages[1].bake.datapoints.min_positive", "stages[1].bake.datapoints.max_negative"}
}

test_custom_params if {
	p := _pipeline([_canary({"datapoints": _points({"min_positive": 100, "max_negative": 2})})])
	d := data.pipewarden.rules.canary_datapoints.deny with input as {
		"pipeline": p,
		"params": {"canary-datapoints": {"min_positive": 100, "max_negative": 2}},
	}
	count(d) == 0
}

test_no_canary_stage if {
	count(_deny(_pipeline([_stage("prod", "prod")]))) == 0
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod")]))) == 0
}
