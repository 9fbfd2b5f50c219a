"""The linter's use cases: check (with --base), rules, promote, exceptions, the org report."""
