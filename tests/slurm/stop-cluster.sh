#!/usr/bin/env bash
# Stop the test cluster of start-cluster.sh: cancel its jobs (a running job's processes would
# outlive slurmd), stop its daemons by pid and remove their leftover pid files. The packages stay.
set -uo pipefail

DIR=${QUARK_SLURM_DIR:-/var/lib/quark-slurm-test}

stop() {
    local pidfile=$DIR/$1.pid pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"  # slurmctld leaves its pid file behind
}

if [[ -f $DIR/slurmctld.pid ]] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
    jobs=$(SLURM_CONF=$DIR/slurm.conf squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        # shellcheck disable=SC2086
        SLURM_CONF=$DIR/slurm.conf scancel $jobs
        for _ in $(seq 100); do
            [[ -z $(SLURM_CONF=$DIR/slurm.conf squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
fi
stop slurmd
stop slurmctld
stop munged  # only there when start-cluster.sh started munged itself
rm -rf "$DIR/ctld" "$DIR/d"
echo "stop-cluster: stopped"
