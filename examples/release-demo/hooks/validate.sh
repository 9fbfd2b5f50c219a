#!/bin/sh
# validate: poll GET /health until it answers 200 with the installed version, for up to
# VALIDATE_SECONDS (default 5).
. "$(dirname "$0")/common.sh"
release=$(current_release)
[ -n "$release" ] || { say "nothing installed"; exit 1; }
"$PY" "$release/service.py" check "http://$PIPEWARDEN_HOST/health" --version "$(cat "$release/VERSION")" --timeout "${VALIDATE_SECONDS:-5}"
