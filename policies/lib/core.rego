# Shared helpers of the built-in rules.
#
# Rules call these through full paths (data.pipewarden.lib.core.x): the embedded
# engine does not resolve calls through import aliases. Values that several rules
# need (stage indices, bake times, test types) are rules here, not functions, so
# they are computed once per document however many rules read them.
package pipewarden.lib.core

import rego.v1

# ---------------------------------------------------------------- stages

# Indices of the prod stages, in document order.
prod_indices := [i | some i, s in input.pipeline.stages; s.type == "prod"]

has_prod if count(prod_indices) > 0

# Undefined when the pipeline has no prod stage.
first_prod_index := prod_indices[0]

# The first prod stage when it has `canary: true`; undefined otherwise.
canary_index := first_prod_index if input.pipeline.stages[first_prod_index].canary == true

# Prod stages other than the canary stage. (`not i == canary_index` holds for every
# stage when there is no canary: the comparison is then undefined.)
non_canary_prod_indices := [i | some i in prod_indices; not i == canary_index]

# Preprod stages that come before the first prod stage (empty without prod).
preprod_before_prod := [i |
	some i, s in input.pipeline.stages
	s.type == "preprod"
	i < first_prod_index
]

# ---------------------------------------------------------------- numbers

# Checks here avoid regex.match: the engine compiles the pattern on every call,
# which made regex-based parsing the largest cost of a whole evaluation. Helpers
# that run for every stage or window also write the digit check out instead of
# calling is_digits: each function call costs the engine about a microsecond and
# a half, as much as several builtins.

# True for a non-empty string of decimal digits.
is_digits(text) if {
	text != ""
	trim(text, "0123456789") == ""
}

# Value of a string of decimal digits. units.parse, unlike to_number, accepts
# leading zeros ("09"); the digit check keeps its unit suffixes ("1k") out.
decimal(digits) := units.parse(digits) if {
	digits != ""
	trim(digits, "0123456789") == ""
}

# Value of "N" or "N.F" (digits); undefined for anything else.
decimal_number(text) := decimal(text) if is_digits(text)

decimal_number(text) := units.parse(text) if {
	parts := split(text, ".")
	count(parts) == 2
	is_digits(parts[0])
	is_digits(parts[1])
}

# ---------------------------------------------------------------- durations

_unit_seconds := {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Seconds of a duration string `<int><unit>` (units s m h d). Undefined when
# the string is not a duration, so a malformed value never aborts evaluation.
duration_seconds(d) := units.parse(n) * _unit_seconds[substring(d, last, 1)] if {
	is_string(d)
	last := count(d) - 1
	n := substring(d, 0, last)
	n != ""
	trim(n, "0123456789") == ""
}

# Bake duration of each stage as written, "0m" when absent.
bake_durations := {i: object.get(s, ["bake", "duration"], "0m") | some i, s in input.pipeline.stages}

# Bake duration of each stage in seconds (missing duration = 0).
bake_seconds := {i: duration_seconds(d) | some i, d in bake_durations}

# ---------------------------------------------------------------- tests

test_types(tests) := {t.type | some t in tests}

build_test_types := test_types(object.get(input.pipeline.build, "tests", []))

stage_test_types := {i: test_types(object.get(s, "tests", [])) | some i, s in input.pipeline.stages}

# Test types run in any preprod stage before prod.
preprod_test_types := {t | some i in preprod_before_prod; some t in stage_test_types[i]}

# ---------------------------------------------------------------- time windows

# Minute of the day of "HH:MM" (also accepts "H:MM").
minutes(t) := (units.parse(hours) * 60) + units.parse(mins) if {
	is_string(t)
	[hours, mins] := split(t, ":")
	count(mins) == 2
	hours != ""
	trim(hours, "0123456789") == ""
	trim(mins, "0123456789") == ""
}

# The minutes [start, end) of a daily interval as a set of non-empty pieces
# [a, b) within [0, 1440): wraps past midnight when end < start, and covers
# the whole day when start == end.
interval_pieces(start, end) := {[0, 1440]} if start == end

interval_pieces(start, end) := {[start, end]} if start < end

interval_pieces(start, end) := pieces if {
	start > end
	pieces := {p | some p in [[start, 1440], [0, end]]; p[0] < p[1]}
}

# True when every minute of `inner` lies in `outer`. The pieces of one interval
# are never adjacent (a wrapped interval leaves a gap), so a piece inside their
# union is inside one of them.
pieces_within(inner, outer) if {
	every p in inner {
		some q in outer
		q[0] <= p[0]
		p[1] <= q[1]
	}
}

hhmm_pieces(start, end) := interval_pieces(minutes(start), minutes(end))

# Pieces of every named window of the document.
window_pieces := {name: hhmm_pieces(w.start, w.end) | some name, w in object.get(input.pipeline, "windows", {})}

# Whether window `w` (an entry of `windows`) opens only on `days`: true or false.
window_days_allowed(w, days) := count({d | some d in w.days} - {d | some d in days}) == 0

# ---------------------------------------------------------------- formatting

# A number for messages: at most two decimals, integers without a fraction. (The
# built-in rules use fmt_hundredths: rounding a computed double here can land on the
# other side of a half than OPA's exact decimals do.)
fmt_number(x) := sprintf("%v", [round(x * 100) / 100])

# A count of hundredths (an integer) for messages: 6667 -> "66.67", 6600 -> "66".
# One division of an integer gives the double nearest the decimal, which the
# embedded engine prints as that decimal, as OPA prints its exact value.
fmt_hundredths(h) := sprintf("%v", [h / 100])

# Hundredths of "N" or "N.F" (decimal digits) as an integer, the fraction cut
# after two digits ("66.599" -> 6659); undefined for anything else. Exact on
# every engine, where parsing a long fraction is not (the embedded engine reads
# doubles, OPA exact decimals). Cutting keeps a comparison with a value on the
# hundredths grid exact: x < t exactly when hundredths(x) < t * 100.
hundredths(text) := decimal(text) * 100 if is_digits(text)

hundredths(text) := (decimal(parts[0]) * 100) + decimal(substring(concat("", [parts[1], "00"]), 0, 2)) if {
	parts := split(text, ".")
	count(parts) == 2
	is_digits(parts[0])
	is_digits(parts[1])
}
