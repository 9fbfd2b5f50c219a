package pipewarden.rules.synthetic_monitoring_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_request := {"method": "GET", "path": "/health", "expect_status": 200}

_synthetic(name, interval, requests) := {"name": name, "interval": interval, "requests": requests}

_pipeline(synthetics) := {
	"build": {"commands": ["make"]},
	"synthetics": synthetics,
	"stages": [_stage("beta", "preprod"), _stage("prod", "prod")],
}

_deny(pipeline, max_interval) := d if {
	d := data.pipewarden.rules.synthetic_monitoring.deny with input as {
		"pipeline": pipeline,
		"params": {"synthetic-monitoring": {"max_interval": max_interval}},
	}
}

test_synthetic_with_requests_passes if {
	count(_deny(_pipeline([_synthetic("api", "1m", [_request])]), "1m")) == 0
	count(_deny(_pipeline([_synthetic("api", "60s", [_request])]), "1m")) == 0
	count(_deny(_pipeline([_synthetic("api", "30s", [_request])]), "1m")) == 0
}

test_synthetics_absent if {
	p := {"build": {"commands": ["make"]}, "stages": [_stage("prod", "prod")]}
	_deny(p, "1m") == {{
		"msg": "no synthetic sends a request; at least one synthetic with requests is required",
		"path": "synthetics",
	}}
}

test_synthetics_empty if {
	{v.path | some v in _deny(_pipeline([]), "1m")} == {"synthetics"}
}

test_drafted_synthetic_without_requests if {
	p := _pipeline([_synthetic("draft", "1m", []), _synthetic("draft-2", "1m", [])])
	{v.path | some v in _deny(p, "1m")} == {"synthetics"}
	p2 := _pipeline([_synthetic("draft", "1m", []), _synthetic("api", "1m", [_request])])
	count(_deny(p2, "1m")) == 0
}

test_interval_too_long if {
	p := _pipeline([_synthetic("api", "1m", [_request]), _synthetic("deep", "5m", [_request])])
	_deny(p, "1m") == {{
		"msg": "synthetic 'deep' runs every 5m; at most 1m between runs allowed",
		"path": "synthetics[1].interval",
	}}
}

test_seconds_compare_exactly if {
	{v.path | some v in _deny(_pipeline([_synthetic("api", "61s", [_request])]), "1m")} == {"synthetics[0].interval"}
	count(_deny(_pipeline([_synthetic("api", "1h", [_request])]), "60m")) == 0
	count(_deny(_pipeline([_synthetic("api", "1d", [_request])]), "23h")) == 1
}

test_both_clauses if {
	d := _deny(_pipeline([_synthetic("draft", "10m", [])]), "1m")
	count(d) == 2
	{v.path | some v in d} == {"synthetics", "synthetics[0].interval"}
}

test_no_prod_stage if {
	p := {"build": {"commands": ["make"]}, "stages": [_stage("beta", "preprod")], "synthetics": [_synthetic("a", "1h", [])]}
	count(_deny(p, "1m")) == 0
}
