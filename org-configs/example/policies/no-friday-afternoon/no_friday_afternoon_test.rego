package pipewarden.rules.no_friday_afternoon_test

import rego.v1

params := {"no-friday-afternoon": {"cutoff": "12:00"}}

pipeline(window) := {
	"windows": {"w": window},
	"stages": [
		{"name": "beta", "type": "preprod", "window": "w"},
		{"name": "prod", "type": "prod", "window": "w"},
	],
}

test_weekday_afternoon_window_fires if {
	p := pipeline({"days": ["mon", "fri"], "start": "09:00", "end": "17:00"})
	found := data.pipewarden.rules.no_friday_afternoon.deny with input as {"pipeline": p, "params": params}
	found == {{
		"msg": "prod stage 'prod' may deploy on Friday after 12:00 (window 'w' 09:00-17:00)",
		"path": "stages[1].window",
	}}
}

test_window_ending_at_cutoff_passes if {
	p := pipeline({"days": ["fri"], "start": "09:00", "end": "12:00"})
	count(data.pipewarden.rules.no_friday_afternoon.deny) == 0 with input as {"pipeline": p, "params": params}
}

test_no_friday_passes if {
	p := pipeline({"days": ["mon", "thu"], "start": "09:00", "end": "17:00"})
	count(data.pipewarden.rules.no_friday_afternoon.deny) == 0 with input as {"pipeline": p, "params": params}
}

test_wrapping_window_fires if {
	p := pipeline({"days": ["fri"], "start": "22:00", "end": "02:00"})
	count(data.pipewarden.rules.no_friday_afternoon.deny) == 1 with input as {"pipeline": p, "params": params}
}
