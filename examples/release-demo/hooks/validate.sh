#!/bin/sh
# validate: poll GET /health for up to 5 s until it answers 200 with the installed version.
. "$(dirname "$0")/common.sh"
release=$(current_release)
[ -n "$release" ] || { say "nothing installed"; exit 1; }
"$PY" "$release/service.py" check "http://$PIPEWARDEN_HOST/health" --version "$(cat "$release/VERSION")" --timeout 5
