#!/bin/sh
# install: copy the artifact into the host's directory (releases/ARTIFACT) and make it current.
. "$(dirname "$0")/common.sh"
: "${PIPEWARDEN_ARTIFACT:?}" "${PIPEWARDEN_ARTIFACT_DIR:?}"
release=$HOST_DIR/releases/$PIPEWARDEN_ARTIFACT
if [ ! -f "$release/service.py" ]; then
    rm -rf "$release.tmp"
    cp -R "$PIPEWARDEN_ARTIFACT_DIR" "$release.tmp"
    rm -rf "$release"
    mv "$release.tmp" "$release"
fi
echo "$PIPEWARDEN_ARTIFACT" > "$HOST_DIR/current.tmp"
mv "$HOST_DIR/current.tmp" "$HOST_DIR/current"
say "installed $PIPEWARDEN_ARTIFACT (version $(cat "$release/VERSION"))"
