#!/bin/sh
# start: start the current release in the background, detached from this hook (a session of its
# own, stdin closed, output to the host's service.log), and wait for its PID file (written once
# its port is bound). Idempotent: a service still running is stopped first.
. "$(dirname "$0")/common.sh"
release=$(current_release)
[ -n "$release" ] && [ -f "$release/service.py" ] || { say "nothing installed"; exit 1; }
stop_service
"$PY" "$release/service.py" serve --host "$ADDR" --port "$PORT" --release "$release" \
    --stage "${PIPEWARDEN_STAGE:-}" --state-dir "$HOST_DIR" --pidfile "$PIDFILE" \
    </dev/null >>"$HOST_DIR/service.log" 2>&1 &
i=0
while [ ! -f "$PIDFILE" ]; do
    i=$((i + 1))
    if [ "$i" -ge 50 ] || ! kill -0 $! 2>/dev/null; then
        say "the service did not start; the end of $HOST_DIR/service.log:"
        tail -n 5 "$HOST_DIR/service.log" || true
        exit 1
    fi
    sleep 0.1
done
say "started $(basename "$release") as pid $(cat "$PIDFILE")"
