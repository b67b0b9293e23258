#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by tests/slurm/start_cluster.sh [DIR].
#
#   tests/slurm/stop_cluster.sh [DIR] [--purge]   # DIR defaults to /tmp/resetrl-slurm
#
# Cancels the cluster's jobs, stops slurmd, slurmctld, slurmdbd, MariaDB and (only if
# start_cluster.sh started it) munged, each by the pid in its pid file under DIR, and removes the
# /etc/slurm/slurm.conf link if it points into DIR. State, database and logs stay in DIR (so a
# later start resumes, and job ids keep counting) unless --purge is given, which deletes DIR.
# Safe to run when nothing is running.
set -euo pipefail

DIR=$(realpath -m "${1:-/tmp/resetrl-slurm}")
PURGE=0
[[ ${2:-} == --purge || ${1:-} == --purge ]] && PURGE=1
[[ ${1:-} == --purge ]] && DIR=/tmp/resetrl-slurm

log() { echo "[stop_cluster] $*" >&2; }
[[ $(id -u) -eq 0 ]] || { log "ERROR: must run as root"; exit 1; }

# running PID: true while PID is a live process (a zombie awaiting its reaper counts as gone).
# (/proc/PID/stat is "pid (comm) STATE ..."; comm may hold spaces, so cut after the last ") ".)
running() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; st=${st##*) }; [[ ${st%% *} != Z ]]; }

# stop NAME PIDFILE: SIGTERM the pid in PIDFILE, wait up to 30 s, then SIGKILL.
stop() {
    local name=$1 pidfile=$2 pid
    [[ -s $pidfile ]] || { log "$name: no pid file, not running"; return 0; }
    pid=$(cat "$pidfile")
    if ! running "$pid"; then
        log "$name: not running (stale pid $pid)"; rm -f "$pidfile"; return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 60); do running "$pid" || break; sleep 0.5; done
    if running "$pid"; then
        log "$name did not exit after 30 s, killing"; kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

if [[ -f $DIR/slurm.conf ]]; then
    export SLURM_CONF=$DIR/slurm.conf
    # Cancel queued/running jobs first, so no job processes outlive slurmd.
    if [[ -s $DIR/run/slurmctld.pid ]] && running "$(cat "$DIR/run/slurmctld.pid")"; then
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            log "cancelling jobs: $(echo $jobs)"
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 20); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
        fi
    fi
fi

stop slurmd    "$DIR/run/slurmd.pid"
stop slurmctld "$DIR/run/slurmctld.pid"   # saves job/node state to DIR/state/ctld on SIGTERM
stop slurmdbd  "$DIR/run/slurmdbd.pid"
stop MariaDB   "$DIR/run/mysqld.pid"       # SIGTERM is MariaDB's clean shutdown
if [[ -f $DIR/run/munged.ours ]]; then     # leave a munged we did not start (e.g. systemd's) alone
    stop munged /run/munge/munged.pid
    rm -f "$DIR/run/munged.ours"
fi

# Drop the config link only if it is ours, and put back a config it displaced.
if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$DIR/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
    [[ -e /etc/slurm/slurm.conf.before-resetrl ]] && mv /etc/slurm/slurm.conf.before-resetrl /etc/slurm/slurm.conf
fi

if ((PURGE)); then
    log "removing $DIR"
    rm -rf "$DIR"
fi
log "stopped"
