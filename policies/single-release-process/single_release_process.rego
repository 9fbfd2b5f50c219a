# METADATA
# title: One release process per application
# description: No two pipelines of the fleet share a metadata.name or deploy to the same host (host names compared without case, as DNS does).
# custom:
#   id: single-release-process
#   level: warn
#   prod_only: false
#   params: {}
#   params_schema: {type: object, additionalProperties: false, properties: {}}
#   rationale: >-
#     When two pipelines release the same application, or deploy to the same hosts, each one's
#     safety checks are bypassed by the other: a canary, a bake or a rollback protects nothing
#     while a second process can overwrite the hosts at any time. One application, one release
#     process keeps every change on the path that tests, bakes and can roll it back.
#   remediation: |
#     Merge the pipelines into one, or rename the application and move it to its own hosts.
#     Each host:port appears in one pipeline only:
#
#     ```yaml
#     metadata:
#       name: checkout-service      # unique across the fleet
#     stages:
#       - name: prod-canary
#         targets: [{name: cell-1, hosts: ["10.0.1.1:8080"]}]   # in no other pipeline
#     ```
package pipewarden.fleet.single_release_process

import rego.v1

# Fleet-wide entry point: input.pipelines is the list of valid pipelines of a run,
# [{file, name, hosts: [{host, key, path}, ...]}] with hosts in document order. `key` is
# the host's canonical form (model/hosts.py: DNS names are case-insensitive, IP addresses
# and ports have one spelling); without it, the host in lower case. Each finding is for the
# pipeline at `file` and names the `other` pipeline's file.

_key(entry) := object.get(entry, "key", lower(entry.host))

# Indices of the pipelines by name and by host: one pass each, so the rule
# grows with the fleet and with the clashes it reports, not with its square.
_by_name[name] contains i if {
	some i, pipeline in input.pipelines
	name := pipeline.name
}

_by_host[host] contains i if {
	some i, pipeline in input.pipelines
	some entry in pipeline.hosts
	host := _key(entry)
}

# Pairs [i, j] of distinct pipelines that share a name, or a host.
_pairs(index) := {[i, j] |
	some owners in index
	count(owners) > 1
	some i in owners
	some j in owners
	i != j
}

_name_pairs := _pairs(_by_name)

_host_pairs := _pairs(_by_host) - _name_pairs

deny contains finding if {
	some [i, j] in _name_pairs
	pipeline := input.pipelines[i]
	other := input.pipelines[j]
	finding := {
		"file": pipeline.file,
		"other": other.file,
		"msg": sprintf(
			"pipeline name '%s' is also used by %s; an application has exactly one release process",
			[pipeline.name, other.file],
		),
		"path": "metadata.name",
	}
}

deny contains finding if {
	some [i, j] in _host_pairs
	pipeline := input.pipelines[i]
	other := input.pipelines[j]
	first := min({k | some k, entry in pipeline.hosts; j in _by_host[_key(entry)]})
	entry := pipeline.hosts[first]
	finding := {
		"file": pipeline.file,
		"other": other.file,
		"msg": sprintf(
			"host %s is also deployed by pipeline '%s' (%s); a host belongs to one release process",
			[entry.host, other.name, other.file],
		),
		"path": entry.path,
	}
}
