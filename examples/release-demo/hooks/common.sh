# Sourced by the hooks. The engine sets (docs/reference/engine.md, "Environment"):
#   PIPEWARDEN_HOST       host:port this hook deploys to (here a loopback port)
#   PIPEWARDEN_HOST_DIR   a persistent directory for this host (releases, PID file, service log)
#   PIPEWARDEN_ARTIFACT, PIPEWARDEN_ARTIFACT_DIR   the artifact id and its unpacked content
#   PIPEWARDEN_STAGE      the stage name
# PYTHON (optional) is the interpreter that runs the service; python3 otherwise.
set -eu

PY=${PYTHON:-python3}
: "${PIPEWARDEN_HOST:?PIPEWARDEN_HOST is not set (run me from the release engine)}"
: "${PIPEWARDEN_HOST_DIR:?PIPEWARDEN_HOST_DIR is not set (run me from the release engine)}"
ADDR=${PIPEWARDEN_HOST%:*}
PORT=${PIPEWARDEN_HOST##*:}
HOST_DIR=$PIPEWARDEN_HOST_DIR
PIDFILE=$HOST_DIR/service.pid
mkdir -p "$HOST_DIR/releases"

say() { echo "[$(basename "$0") $PIPEWARDEN_HOST] $*"; }

# The release the host runs (written by install.sh): its directory, or nothing.
current_release() {
    if [ -f "$HOST_DIR/current" ]; then
        echo "$HOST_DIR/releases/$(cat "$HOST_DIR/current")"
    fi
}

# Our service's PID from the PID file, only if that process is alive and is the service on this
# port (a PID reused by another process after a reboot is never signalled).
service_pid() {
    [ -f "$PIDFILE" ] || return 0
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    case $pid in ''|*[!0-9]*) return 0 ;; esac
    args=$(ps -o args= -p "$pid" 2>/dev/null || true)
    case $args in *service.py*serve*"--port $PORT"*) echo "$pid" ;; esac
}

# Stop the service (TERM, then KILL after 5 s) and wait until its port is free. Idempotent.
stop_service() {
    pid=$(service_pid)
    if [ -n "$pid" ]; then
        say "stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null; do
            i=$((i + 1))
            if [ "$i" -ge 50 ]; then
                say "pid $pid ignored SIGTERM for 5 s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
    # The service script of any release can probe the port; without one, python's socket module.
    "$PY" -c '
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 5
while True:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port)); sys.exit(0)
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{host}:{port} is still in use after 5 s (a process this host dir does not know?)")
    time.sleep(0.1)
' "$ADDR" "$PORT"
}
