#!/bin/sh
# stop: stop the service this host runs, if any, and wait until its port is free.
. "$(dirname "$0")/common.sh"
stop_service
say "stopped; port $PORT is free"
