package pipewarden.rules.deployment_window_test

import rego.v1

_weekdays := ["mon", "tue", "wed", "thu", "fri"]

_business := {"days": _weekdays, "earliest": "09:00", "latest": "17:00"}

_window(days, start, end) := {"timezone": "Europe/Paris", "days": days, "start": start, "end": end}

_stage(name, type, extra) := object.union(
	{"name": name, "type": type, "targets": [{"name": name, "hosts": ["127.0.0.1:1"]}]},
	extra,
)

_pipeline(windows, stages) := {"build": {"commands": ["make"]}, "windows": windows, "stages": stages}

_deny(pipeline, params) := d if {
	d := data.pipewarden.rules.deployment_window.deny with input as {
		"pipeline": pipeline,
		"params": {"deployment-window": params},
	}
}

# One prod stage deploying in window `w`, judged against `params`.
_judge(w, params) := _deny(_pipeline({"w": w}, [_stage("prod", "prod", {"window": "w"})]), params)

test_business_hours_pass if {
	count(_judge(_window(_weekdays, "09:00", "17:00"), _business)) == 0
	count(_judge(_window(["mon", "wed"], "10:00", "16:30"), _business)) == 0
}

test_no_window if {
	p := _pipeline({}, [_stage("beta", "preprod", {}), _stage("prod", "prod", {})])
	_deny(p, _business) == {{
		"msg": "prod stage 'prod' has no deployment window; allowed: mon,tue,wed,thu,fri 09:00-17:00",
		"path": "stages[1].window",
	}}
}

test_windows_absent if {
	p := {"build": {"commands": ["make"]}, "stages": [_stage("prod", "prod", {})]}
	{v.path | some v in _deny(p, _business)} == {"stages[0].window"}
}

test_weekend_day if {
	_judge(_window(["fri", "sat"], "09:00", "17:00"), _business) == {{
		"msg": "prod stage 'prod' deploys in window 'w' (fri,sat 09:00-17:00 Europe/Paris) outside the allowed days; allowed: mon,tue,wed,thu,fri 09:00-17:00",
		"path": "stages[0].window",
	}}
}

test_hours_at_the_edges if {
	{v.msg | some v in _judge(_window(_weekdays, "08:59", "17:00"), _business)} == {"prod stage 'prod' deploys in window 'w' (mon,tue,wed,thu,fri 08:59-17:00 Europe/Paris) outside the allowed hours; allowed: mon,tue,wed,thu,fri 09:00-17:00"}
	count(_judge(_window(_weekdays, "09:00", "17:01"), _business)) == 1
}

test_days_and_hours if {
	d := _judge(_window(["sun"], "20:00", "23:00"), _business)
	{v.msg | some v in d} == {"prod stage 'prod' deploys in window 'w' (sun 20:00-23:00 Europe/Paris) outside the allowed days and hours; allowed: mon,tue,wed,thu,fri 09:00-17:00"}
}

test_window_wrapping_midnight_not_in_business_hours if {
	count(_judge(_window(_weekdays, "16:00", "10:00"), _business)) == 1
}

# start == end is the whole day.
test_whole_day_window if {
	count(_judge(_window(_weekdays, "09:00", "09:00"), _business)) == 1
	all_day := {"days": _weekdays, "earliest": "00:00", "latest": "00:00"}
	count(_judge(_window(_weekdays, "09:00", "09:00"), all_day)) == 0
	count(_judge(_window(_weekdays, "22:00", "06:00"), all_day)) == 0
}

_night := {"days": _weekdays, "earliest": "22:00", "latest": "06:00"}

test_night_window_allowed if {
	count(_judge(_window(_weekdays, "22:00", "06:00"), _night)) == 0
	count(_judge(_window(_weekdays, "23:00", "02:00"), _night)) == 0
	count(_judge(_window(_weekdays, "00:30", "05:00"), _night)) == 0
	count(_judge(_window(_weekdays, "22:30", "23:30"), _night)) == 0
}

# A window ending at midnight has an empty piece after the wrap.
test_window_ending_at_midnight if {
	count(_judge(_window(_weekdays, "22:00", "00:00"), _night)) == 0
	count(_judge(_window(_weekdays, "21:00", "00:00"), _night)) == 1
}

test_night_window_rejects if {
	count(_judge(_window(_weekdays, "21:59", "06:00"), _night)) == 1
	count(_judge(_window(_weekdays, "22:00", "06:01"), _night)) == 1
	count(_judge(_window(_weekdays, "12:00", "13:00"), _night)) == 1
	count(_judge(_window(_weekdays, "03:00", "03:00"), _night)) == 1
}

test_one_per_prod_stage if {
	p := _pipeline(
		{"ok": _window(_weekdays, "09:00", "17:00"), "weekend": _window(["sat", "sun"], "09:00", "17:00")},
		[
			_stage("beta", "preprod", {}),
			_stage("canary", "prod", {"window": "ok"}),
			_stage("wave-1", "prod", {"window": "weekend"}),
			_stage("wave-2", "prod", {}),
			_stage("wave-3", "prod", {"window": "ok"}),
		],
	)
	d := _deny(p, _business)
	count(d) == 2
	{v.path | some v in d} == {"stages[2].window", "stages[3].window"}
}

test_window_names_need_no_identifier_syntax if {
	p := _pipeline({"business-hours": _window(["sat"], "09:00", "17:00")}, [_stage("prod", "prod", {"window": "business-hours"})])
	{v.path | some v in _deny(p, _business)} == {"stages[0].window"}
}

test_no_prod_stage if {
	p := _pipeline({}, [_stage("beta", "preprod", {})])
	count(_deny(p, _business)) == 0
}
