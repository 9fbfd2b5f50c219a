package pipewarden.lib.core_test

import rego.v1

_stage(name, type) := {"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]}

_pipeline(stages) := {"build": {"commands": ["make"]}, "stages": stages}

_mixed := _pipeline([
	_stage("beta", "preprod"),
	object.union(_stage("canary", "prod"), {"canary": true, "bake": {"duration": "2h"}}),
	object.union(_stage("late", "preprod"), {"tests": [{"name": "l", "type": "load", "command": "x"}]}),
	_stage("wave", "prod"),
])

# ---------------------------------------------------------------- stages

test_prod_indices if {
	data.pipewarden.lib.core.prod_indices == [1, 3] with input as {"pipeline": _mixed}
	data.pipewarden.lib.core.first_prod_index == 1 with input as {"pipeline": _mixed}
	data.pipewarden.lib.core.has_prod with input as {"pipeline": _mixed}
}

test_no_prod if {
	p := _pipeline([_stage("beta", "preprod")])
	data.pipewarden.lib.core.prod_indices == [] with input as {"pipeline": p}
	not data.pipewarden.lib.core.has_prod with input as {"pipeline": p}
	not data.pipewarden.lib.core.first_prod_index with input as {"pipeline": p}
	not data.pipewarden.lib.core.canary_index with input as {"pipeline": p}
	data.pipewarden.lib.core.preprod_before_prod == [] with input as {"pipeline": p}
}

test_canary_index if {
	data.pipewarden.lib.core.canary_index == 1 with input as {"pipeline": _mixed}
	data.pipewarden.lib.core.non_canary_prod_indices == [3] with input as {"pipeline": _mixed}
}

test_canary_only_when_first_prod_is_canary if {
	p := _pipeline([_stage("a", "prod"), object.union(_stage("b", "prod"), {"canary": true})])
	not data.pipewarden.lib.core.canary_index with input as {"pipeline": p}
	data.pipewarden.lib.core.non_canary_prod_indices == [0, 1] with input as {"pipeline": p}
}

test_preprod_after_prod_is_not_before_prod if {
	data.pipewarden.lib.core.preprod_before_prod == [0] with input as {"pipeline": _mixed}
	data.pipewarden.lib.core.preprod_test_types == set() with input as {"pipeline": _mixed}
}

# ---------------------------------------------------------------- durations

test_duration_seconds if {
	data.pipewarden.lib.core.duration_seconds("0m") == 0
	data.pipewarden.lib.core.duration_seconds("61s") == 61
	data.pipewarden.lib.core.duration_seconds("1m") == 60
	data.pipewarden.lib.core.duration_seconds("90m") == 5400
	data.pipewarden.lib.core.duration_seconds("1h") == 3600
	data.pipewarden.lib.core.duration_seconds("2d") == 172800
	data.pipewarden.lib.core.duration_seconds("05m") == 300
	data.pipewarden.lib.core.duration_seconds("61s") > data.pipewarden.lib.core.duration_seconds("1m")
}

test_duration_malformed_is_undefined if {
	not data.pipewarden.lib.core.duration_seconds("1w")
	not data.pipewarden.lib.core.duration_seconds("m")
	not data.pipewarden.lib.core.duration_seconds(60)
}

test_bake_seconds_missing_is_zero if {
	data.pipewarden.lib.core.bake_seconds == {0: 0, 1: 7200, 2: 0, 3: 0} with input as {"pipeline": _mixed}
	data.pipewarden.lib.core.bake_durations[0] == "0m" with input as {"pipeline": _mixed}
}

# ---------------------------------------------------------------- tests

test_test_types if {
	p := {
		"build": {"commands": ["make"], "tests": [{"name": "u", "type": "unit", "command": "x"}]},
		"stages": [
			object.union(_stage("beta", "preprod"), {"tests": [{"name": "i", "type": "integration", "command": "x"}]}),
			_stage("gamma", "preprod"),
			_stage("prod", "prod"),
		],
	}
	data.pipewarden.lib.core.build_test_types == {"unit"} with input as {"pipeline": p}
	data.pipewarden.lib.core.stage_test_types == {0: {"integration"}, 1: set(), 2: set()} with input as {"pipeline": p}
	data.pipewarden.lib.core.preprod_test_types == {"integration"} with input as {"pipeline": p}
}

test_build_without_tests if {
	data.pipewarden.lib.core.build_test_types == set() with input as {"pipeline": _mixed}
}

# ---------------------------------------------------------------- windows

test_decimal if {
	data.pipewarden.lib.core.decimal("0") == 0
	data.pipewarden.lib.core.decimal("00") == 0
	data.pipewarden.lib.core.decimal("09") == 9
	data.pipewarden.lib.core.decimal("120") == 120
}

test_decimal_number if {
	data.pipewarden.lib.core.decimal_number("66") == 66
	data.pipewarden.lib.core.decimal_number("066.50") == 66.5
	data.pipewarden.lib.core.decimal_number("0.5") == 0.5
	not data.pipewarden.lib.core.decimal_number("5.")
	not data.pipewarden.lib.core.decimal_number("five")
}

test_minutes if {
	data.pipewarden.lib.core.minutes("00:00") == 0
	data.pipewarden.lib.core.minutes("09:30") == 570
	data.pipewarden.lib.core.minutes("23:59") == 1439
	not data.pipewarden.lib.core.minutes("9h")
}

test_interval_pieces if {
	data.pipewarden.lib.core.interval_pieces(540, 1020) == {[540, 1020]}
	data.pipewarden.lib.core.interval_pieces(1320, 360) == {[1320, 1440], [0, 360]}
	data.pipewarden.lib.core.interval_pieces(600, 600) == {[0, 1440]}
}

test_interval_pieces_skip_empty if {
	data.pipewarden.lib.core.interval_pieces(1320, 0) == {[1320, 1440]}
}

test_pieces_within if {
	business := data.pipewarden.lib.core.hhmm_pieces("09:00", "17:00")
	night := data.pipewarden.lib.core.hhmm_pieces("22:00", "06:00")
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("09:00", "17:00"), business)
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("10:00", "12:00"), business)
	not data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("08:59", "12:00"), business)
	not data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("10:00", "17:01"), business)
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("23:00", "05:00"), night)
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("22:00", "00:00"), night)
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("01:00", "06:00"), night)
	not data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("21:00", "05:00"), night)
	not data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("05:00", "07:00"), night)
	not data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("12:00", "12:00"), night)
	data.pipewarden.lib.core.pieces_within(data.pipewarden.lib.core.hhmm_pieces("12:00", "12:00"), data.pipewarden.lib.core.hhmm_pieces("00:00", "00:00"))
	data.pipewarden.lib.core.pieces_within(night, data.pipewarden.lib.core.hhmm_pieces("07:00", "07:00"))
}

test_window_days_allowed if {
	data.pipewarden.lib.core.window_days_allowed({"days": ["mon", "fri"]}, ["mon", "tue", "wed", "thu", "fri"])
	data.pipewarden.lib.core.window_days_allowed({"days": ["fri", "sat"]}, ["mon", "tue", "wed", "thu", "fri"]) == false
}

test_window_pieces if {
	p := object.union(_mixed, {"windows": {
		"day": {"timezone": "UTC", "days": ["mon"], "start": "09:00", "end": "17:00"},
		"night": {"timezone": "UTC", "days": ["mon"], "start": "22:00", "end": "06:00"},
	}})
	data.pipewarden.lib.core.window_pieces == {"day": {[540, 1020]}, "night": {[1320, 1440], [0, 360]}} with input as {"pipeline": p}
}

test_fmt_number if {
	data.pipewarden.lib.core.fmt_number(50) == "50"
	data.pipewarden.lib.core.fmt_number((2 * 100) / 3) == "66.67"
	data.pipewarden.lib.core.fmt_number(12.5) == "12.5"
}

test_fmt_hundredths if {
	data.pipewarden.lib.core.fmt_hundredths(6600) == "66"
	data.pipewarden.lib.core.fmt_hundredths(6667) == "66.67"
	data.pipewarden.lib.core.fmt_hundredths(1250) == "12.5"
	data.pipewarden.lib.core.fmt_hundredths(7) == "0.07"
}

test_hundredths_cuts_after_two_digits if {
	data.pipewarden.lib.core.hundredths("66") == 6600
	data.pipewarden.lib.core.hundredths("66.6") == 6660
	data.pipewarden.lib.core.hundredths("66.05") == 6605
	data.pipewarden.lib.core.hundredths("66.599999999999999999") == 6659
	data.pipewarden.lib.core.hundredths("100.0") == 10000
	not data.pipewarden.lib.core.hundredths("6.6.6")
	not data.pipewarden.lib.core.hundredths("66.")
	not data.pipewarden.lib.core.hundredths("x")
}
