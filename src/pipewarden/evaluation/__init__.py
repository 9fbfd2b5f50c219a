"""The checker's evaluation core: the one runner every front calls (check, report, promote, --base, the release engine's policy gate)."""
