"""Output formats: each one a pure module with a typed `render`, behind the registries of registry.py.

check_*.py render a check `Result`; report_*.py render an `OrgReport`; escape.py, common.py,
ci_common.py and report_common.py hold what several formats share.
"""
