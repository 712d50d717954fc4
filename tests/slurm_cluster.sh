#!/usr/bin/env bash
# A real one-node SLURM cluster on 127.0.0.1 for tests/test_slurm.py (needs root; Debian/Ubuntu with apt).
#
#   tests/slurm_cluster.sh up   STATE_DIR [PARTITION ...]   install if missing, configure, start, wait for idle
#   tests/slurm_cluster.sh down STATE_DIR                   cancel jobs, stop daemons by PID, restore /etc files
#
# `up` installs Debian's slurmctld, slurmd, slurm-client and munge when one of them is missing, writes
# /etc/slurm/slurm.conf (the jobstep executor drops SLURM_CONF before its inner `srun`, so the config must be
# at the default path) for one node with this machine's CPUs and measured memory, every PARTITION (default
# "normal") on that node, no accounting (so `sacct` does not work: use `--slurm-status-command squeue`),
# proctrack/linuxproc, task/none, select/cons_tres. State, spool, logs and PID files live in STATE_DIR; the
# /etc files it replaces are saved there and put back by `down`. It exits non-zero (with the reason on
# stderr and the daemon logs' tails) when the cluster does not come up. It prints SLURM_TEST_* lines.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
KEY=/etc/munge/munge.key
MUNGE_SOCKET=/run/munge/munge.socket.2
NODE=localhost
WAIT_S=${SLURM_TEST_WAIT_S:-60}

die() { echo "slurm_cluster: $*" >&2; exit 1; }

usage() { die "usage: $0 up STATE_DIR [PARTITION ...] | down STATE_DIR"; }

install_packages() {
    local missing=0 tool
    for tool in slurmctld slurmd sinfo squeue sbatch srun munged munge; do
        command -v "$tool" >/dev/null 2>&1 || missing=1
    done
    [[ $missing == 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "SLURM is not installed and there is no apt-get"
    echo "slurm_cluster: installing slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(slurmctld slurmd slurm-client munge)
    apt-get install -y --no-install-recommends "${pkgs[@]}" >"$STATE/apt.log" 2>&1 \
        || { apt-get update >>"$STATE/apt.log" 2>&1 \
             && apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$STATE/apt.log" 2>&1; } \
        || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install failed (log: $STATE/apt.log)"; }
}

# Save an /etc file before replacing it ("absent" marker when there was none), once per STATE_DIR.
backup() {
    local file=$1 saved="$STATE/etc-backup/$(basename "$1")"
    mkdir -p "$STATE/etc-backup"
    [[ -e $saved || -e $saved.absent ]] && return 0
    if [[ -e $file ]]; then cp -p "$file" "$saved"; else touch "$saved.absent"; fi
}

restore() {
    local file=$1 saved="$STATE/etc-backup/$(basename "$1")"
    if [[ -e $saved ]]; then cp -p "$saved" "$file"; rm -f "$saved"
    elif [[ -e $saved.absent ]]; then rm -f "$file" "$saved.absent"; fi
}

munge_works() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        echo "slurm_cluster: reusing the munged already running" >&2
        return 0
    fi
    if [[ ! -s $KEY ]]; then
        backup "$KEY"
        mkdir -p "$(dirname "$KEY")"
        dd if=/dev/urandom of="$KEY" bs=1 count=1024 status=none
    fi
    if id munge >/dev/null 2>&1; then chown munge:munge "$(dirname "$KEY")" "$KEY"; fi
    chmod 0700 "$(dirname "$KEY")"
    chmod 0400 "$KEY"
    mkdir -p "$(dirname "$MUNGE_SOCKET")"
    chmod 0755 "$(dirname "$MUNGE_SOCKET")"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$KEY" --pid-file="$STATE/munged.pid" \
        --log-file="$STATE/log/munged.log" --seed-file="$STATE/munged.seed" </dev/null >/dev/null 2>&1 \
        || { cat "$STATE/log/munged.log" >&2 2>/dev/null; die "munged did not start"; }
    local i
    for ((i = 0; i < 50; i++)); do munge_works && return 0; sleep 0.1; done
    die "munged does not answer on $MUNGE_SOCKET"
}

write_conf() {
    local cpus mem partition
    cpus=$(nproc)
    # what slurmd itself measures, so the node is not drained for "Low RealMemory"
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $mem ]] || die "slurmd -C reported no RealMemory"
    backup "$CONF"
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
# Written by tests/slurm_cluster.sh for a test; restored by "tests/slurm_cluster.sh down $STATE".
ClusterName=sslfer-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=300
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
EOF
    local default=YES
    for partition in "${PARTITIONS[@]}"; do
        echo "PartitionName=$partition Nodes=$NODE Default=$default MaxTime=INFINITE State=UP" >>"$CONF"
        default=NO
    done
    echo "SLURM_TEST_CPUS=$cpus"
    echo "SLURM_TEST_MEM_MB=$mem"
    echo "SLURM_TEST_PARTITIONS=${PARTITIONS[*]}"
}

logs_tail() {
    local log
    for log in "$STATE"/log/*.log; do
        [[ -e $log ]] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
    done
}

wait_idle() {
    local state="" deadline=$((SECONDS + WAIT_S))
    while ((SECONDS < deadline)); do
        state=$(timeout 5 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1 || true)
        case $state in
            idle) return 0 ;;
            down*|drain*) timeout 5 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    logs_tail
    die "node $NODE not idle after ${WAIT_S}s (state: '${state:-no answer}')"
}

up() {
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"
    install_packages
    start_munge
    write_conf
    slurmctld -i </dev/null >/dev/null 2>&1 || { logs_tail; die "slurmctld did not start"; }
    slurmd -N "$NODE" </dev/null >/dev/null 2>&1 || { logs_tail; die "slurmd did not start"; }
    wait_idle
}

stop_pid_file() {
    local pid_file=$1 pid i
    [[ -s $pid_file ]] || return 0
    pid=$(cat "$pid_file")
    if kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
}

down() {
    if [[ -s $STATE/slurmctld.pid ]] && command -v scancel >/dev/null 2>&1; then
        scancel --user="$(id -un)" >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 100; i++)); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.1; done
    fi
    stop_pid_file "$STATE/slurmd.pid"
    stop_pid_file "$STATE/slurmctld.pid"
    stop_pid_file "$STATE/munged.pid"
    restore "$CONF"
    restore "$KEY"
}

[[ $# -ge 2 ]] || usage
[[ $(id -u) == 0 ]] || die "must run as root"
ACTION=$1
STATE=$(realpath -m "$2")
shift 2
PARTITIONS=("$@")
[[ ${#PARTITIONS[@]} -gt 0 ]] || PARTITIONS=(normal)
case $ACTION in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
