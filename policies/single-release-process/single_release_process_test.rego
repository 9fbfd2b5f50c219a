package pipewarden.fleet.single_release_process_test

import rego.v1

# A fleet entry; the host paths follow document order.
_pipeline(file, name, hosts) := {"file": file, "name": name, "hosts": [entry |
	some k, host in hosts
	entry := {"host": host, "path": sprintf("stages[%d].targets[0].hosts[0]", [k])}
]}

_deny(pipelines) := d if {
	d := data.pipewarden.fleet.single_release_process.deny with input as {"pipelines": pipelines}
}

_a := _pipeline("a/pipeline.yaml", "checkout", ["127.0.0.1:9101", "127.0.0.1:9102"])

test_distinct_pipelines_pass if {
	count(_deny([_a, _pipeline("b/pipeline.yaml", "search", ["127.0.0.1:9201"])])) == 0
}

test_single_pipeline_passes if {
	count(_deny([_a])) == 0
	count(_deny([])) == 0
}

test_same_name if {
	d := _deny([_a, _pipeline("b/pipeline.yaml", "checkout", ["127.0.0.1:9201"])])
	d == {
		{
			"file": "a/pipeline.yaml",
			"other": "b/pipeline.yaml",
			"msg": "pipeline name 'checkout' is also used by b/pipeline.yaml; an application has exactly one release process",
			"path": "metadata.name",
		},
		{
			"file": "b/pipeline.yaml",
			"other": "a/pipeline.yaml",
			"msg": "pipeline name 'checkout' is also used by a/pipeline.yaml; an application has exactly one release process",
			"path": "metadata.name",
		},
	}
}

# Same name and shared hosts: one finding per pair, at metadata.name.
test_name_clash_wins_over_hosts if {
	d := _deny([_a, _pipeline("b/pipeline.yaml", "checkout", ["127.0.0.1:9101"])])
	count(d) == 2
	{v.path | some v in d} == {"metadata.name"}
}

test_shared_host if {
	d := _deny([_a, _pipeline("b/pipeline.yaml", "search", ["127.0.0.1:9201", "127.0.0.1:9102"])])
	d == {
		{
			"file": "a/pipeline.yaml",
			"other": "b/pipeline.yaml",
			"msg": "host 127.0.0.1:9102 is also deployed by pipeline 'search' (b/pipeline.yaml); a host belongs to one release process",
			"path": "stages[1].targets[0].hosts[0]",
		},
		{
			"file": "b/pipeline.yaml",
			"other": "a/pipeline.yaml",
			"msg": "host 127.0.0.1:9102 is also deployed by pipeline 'checkout' (a/pipeline.yaml); a host belongs to one release process",
			"path": "stages[1].targets[0].hosts[0]",
		},
	}
}

# Several shared hosts: one finding per pair, at this pipeline's first shared host.
test_first_shared_host_in_document_order if {
	b := _pipeline("b/pipeline.yaml", "search", ["127.0.0.1:9102", "127.0.0.1:9999", "127.0.0.1:9101"])
	d := _deny([_a, b])
	count(d) == 2
	{[v.file, v.path] | some v in d} == {
		["a/pipeline.yaml", "stages[0].targets[0].hosts[0]"],
		["b/pipeline.yaml", "stages[0].targets[0].hosts[0]"],
	}
}

test_host_repeated_within_one_pipeline_is_no_clash if {
	count(_deny([_pipeline("a/pipeline.yaml", "checkout", ["127.0.0.1:1", "127.0.0.1:1"])])) == 0
}

test_one_finding_per_other_pipeline if {
	d := _deny([
		_a,
		_pipeline("b/pipeline.yaml", "checkout", ["127.0.0.1:9201"]),
		_pipeline("c/pipeline.yaml", "search", ["127.0.0.1:9101"]),
		_pipeline("d/pipeline.yaml", "orders", ["127.0.0.1:9401"]),
	])
	count(d) == 4
	{[v.file, v.other, v.path] | some v in d} == {
		["a/pipeline.yaml", "b/pipeline.yaml", "metadata.name"],
		["b/pipeline.yaml", "a/pipeline.yaml", "metadata.name"],
		["a/pipeline.yaml", "c/pipeline.yaml", "stages[0].targets[0].hosts[0]"],
		["c/pipeline.yaml", "a/pipeline.yaml", "stages[0].targets[0].hosts[0]"],
	}
}

test_same_host_different_port_is_no_clash if {
	count(_deny([_a, _pipeline("b/pipeline.yaml", "search", ["127.0.0.1:9103"])])) == 0
}

# DNS names are case-insensitive: the same host in other letters is shared.
test_host_names_compare_without_case if {
	a := _pipeline("a/pipeline.yaml", "cart", ["cell-1.shop.internal:8080"])
	b := _pipeline("b/pipeline.yaml", "orders", ["Cell-1.Shop.Internal:8080"])
	d := _deny([a, b])
	{[v.file, v.msg] | some v in d} == {
		["a/pipeline.yaml", "host cell-1.shop.internal:8080 is also deployed by pipeline 'orders' (b/pipeline.yaml); a host belongs to one release process"],
		["b/pipeline.yaml", "host Cell-1.Shop.Internal:8080 is also deployed by pipeline 'cart' (a/pipeline.yaml); a host belongs to one release process"],
	}
}

# The checker sends each host's canonical key (model/hosts.py); the rule compares keys.
test_hosts_compare_by_their_key if {
	a := {"file": "a/pipeline.yaml", "name": "cart", "hosts": [{"host": "[::1]:80", "key": "[::1]:80", "path": "p"}]}
	b := {"file": "b/pipeline.yaml", "name": "orders", "hosts": [{"host": "[0:0::1]:080", "key": "[::1]:80", "path": "p"}]}
	count(_deny([a, b])) == 2
}
