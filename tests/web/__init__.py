"""The web front's tests (a package, like tests/engine)."""
