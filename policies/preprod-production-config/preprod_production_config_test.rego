package pipewarden.rules.preprod_production_config_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_prodconf(name) := object.union(_stage(name, "preprod"), {"production_config": true})

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_deny(pipeline) := d if {
	d := data.pipewarden.rules.preprod_production_config.deny with input as {
		"pipeline": pipeline,
		"params": {"preprod-production-config": {}},
	}
}

test_production_config_before_prod_passes if {
	p := _pipeline([_stage("beta", "preprod"), _prodconf("gamma"), _stage("prod", "prod")])
	count(_deny(p)) == 0
}

test_no_production_config if {
	p := _pipeline([_stage("beta", "preprod"), _stage("prod", "prod")])
	_deny(p) == {{
		"msg": "no preprod stage before the first prod stage has production_config: true; one is required",
		"path": "stages",
	}}
}

test_production_config_false if {
	p := _pipeline([object.union(_stage("beta", "preprod"), {"production_config": false}), _stage("prod", "prod")])
	count(_deny(p)) == 1
}

test_production_config_after_prod_does_not_count if {
	p := _pipeline([_stage("beta", "preprod"), _stage("prod", "prod"), _prodconf("late")])
	count(_deny(p)) == 1
}

test_no_preprod_at_all if {
	count(_deny(_pipeline([_stage("prod", "prod")]))) == 1
}

test_no_prod_stage if {
	count(_deny(_pipeline([_stage("beta", "preprod")]))) == 0
}
