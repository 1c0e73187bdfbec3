#!/usr/bin/env bash
# stop-single-node.sh -- stop the single-node SLURM started by
# start-single-node.sh.
#
# Usage (as root):
#     bash deploy/slurm/stop-single-node.sh
#
# Cancels all jobs (scancel) and waits for them to end, then stops slurmd,
# slurmctld and munged BY THE PIDS RECORDED in $STATE/pids (never by name):
# SIGTERM, wait up to SCATFLOW_SLURM_STOP_TIMEOUT seconds (default 20), then
# SIGKILL. A pid that is no longer that daemon (dead, or reused by another
# program) is skipped. Safe to run when nothing is running. Packages, config
# and logs are left in place; start-single-node.sh starts it all again.
#
#   SCATFLOW_SLURM_STATE         same as for the start script
#                                (default /var/spool/scatflow-slurm)
#   SCATFLOW_SLURM_STOP_TIMEOUT  seconds per wait (default 20)
set -euo pipefail

STATE=${SCATFLOW_SLURM_STATE:-/var/spool/scatflow-slurm}
WAIT=${SCATFLOW_SLURM_STOP_TIMEOUT:-20}
PIDS=$STATE/pids

say() { echo "[slurm-single-node] $*" >&2; }
alive() { [ -n "${2:-}" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]; }
recorded_pid() { awk -v n="$1" '$1 == n {print $2}' "$PIDS"; }

if [ ! -f "$PIDS" ]; then
    say "not running (no $PIDS)"
    exit 0
fi

# 1. Cancel leftover jobs while the controller is still up, and wait until
#    they are gone so that no slurmstepd / job process outlives slurmd.
if alive slurmctld "$(recorded_pid slurmctld)"; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        say "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs || true
        deadline=$(( SECONDS + WAIT ))
        while [ -n "$(timeout 5 squeue -h -o %A 2>/dev/null || true)" ] && [ $SECONDS -lt $deadline ]; do
            sleep 1
        done
    fi
fi

# 2. Stop the daemons, compute node first.
for d in slurmd slurmctld munged; do
    pid=$(recorded_pid "$d")
    alive "$d" "$pid" || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( SECONDS + WAIT ))
    while alive "$d" "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if alive "$d" "$pid"; then
        say "$d (pid $pid) ignored SIGTERM for ${WAIT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    say "stopped $d (pid $pid)"
done

rm -f "$PIDS" "$STATE"/slurmctld.pid "$STATE"/slurmd.pid
say "stopped"
