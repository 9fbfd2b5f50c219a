"""Metric sources behind one protocol (engine.md, "Metric references"): `base.MetricSource`
(`read(ref, context) -> Reading`), `prometheus.PrometheusSource`, `command.CommandSource`,
`synthetic.SyntheticSource`, and `base.MetricSources`, which sends each reference to its source.

The engine layer, not the domain: these do I/O. The gates (domain/gates/datapoints.py and
alarms.py) judge what they read, as `Reading.observation()`.
"""
