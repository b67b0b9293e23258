#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine (Debian/Ubuntu, run as root), for
# tests/test_slurm.py and for trying profiles/slurm by hand.
#
#   tests/slurm/start_cluster.sh [DIR]     # DIR defaults to /tmp/resetrl-slurm
#   tests/slurm/stop_cluster.sh  [DIR]
#
# What it does, idempotently (a second run with everything up only re-checks and prints):
#   - apt-installs slurmctld, slurmd, slurm-client, munge (+ slurmdbd, mariadb-server) if missing;
#   - writes slurm.conf (+ slurmdbd.conf, my.cnf) into DIR, state and logs under DIR too;
#   - links /etc/slurm/slurm.conf to DIR/slurm.conf (see below why SLURM_CONF alone is not enough);
#   - starts munged, (MariaDB + slurmdbd,) slurmctld and slurmd directly, no systemd needed;
#   - waits until `sinfo` shows the node idle, then prints the partition name as its last
#     stdout line (everything else goes to stderr), so `PARTITION=$(tests/slurm/start_cluster.sh)`.
#
# Knobs (environment):
#   SLURM_ACCOUNTING=slurmdbd (default) | none
#       slurmdbd: MariaDB + slurmdbd, so `sacct`, `sacctmgr` and `sshare` work and the Snakemake
#                 SLURM executor plugin runs with its defaults (it polls job states with sacct).
#       none:     no database (lighter: no MariaDB). `sacct` then fails with "Slurm accounting
#                 storage is disabled", so Snakemake must be run with `--slurm-status-command squeue`
#                 (else it loses track of its jobs and hangs).
#   SLURM_PARTITION=debug       name of the single (default) partition
#   SLURM_REALMEM_MB=<3/4 of MemAvailable>   memory the node offers to jobs
#   SLURM_DB_PORT=16033         TCP port of the private MariaDB (127.0.0.1 only)
#   SLURM_START_TIMEOUT=90      seconds to wait for each daemon / for the node to become idle
set -euo pipefail

DIR=$(realpath -m "${1:-/tmp/resetrl-slurm}")
ACCOUNTING=${SLURM_ACCOUNTING:-slurmdbd}
PARTITION=${SLURM_PARTITION:-debug}
DB_PORT=${SLURM_DB_PORT:-16033}
TIMEOUT=${SLURM_START_TIMEOUT:-90}
NODE=$(hostname -s)   # slurmd finds its NodeName by the short hostname
CPUS=$(nproc)
# Give jobs 3/4 of the memory that is free now (slurmd marks the node invalid if RealMemory
# exceeds the machine's total, and we must not promise jobs memory the machine lacks).
REALMEM=${SLURM_REALMEM_MB:-$(awk '/^MemAvailable:/ {print int($2 / 1024 * 3 / 4)}' /proc/meminfo)}

log() { echo "[start_cluster] $*" >&2; }
die() { echo "[start_cluster] ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (daemons, apt-get, /etc/slurm)"
[[ $ACCOUNTING == slurmdbd || $ACCOUNTING == none ]] || die "SLURM_ACCOUNTING must be slurmdbd or none"

# alive PIDFILE: true when the pid file exists and names a live process (zombies count as dead;
# /proc/PID/stat is "pid (comm) STATE ...", comm may hold spaces, so cut after the last ") ").
alive() {
    local st
    [[ -s $1 ]] && st=$(cat "/proc/$(cat "$1")/stat" 2>/dev/null) || return 1
    st=${st##*) }; [[ ${st%% *} != Z ]]
}
# port_open PORT: true when something listens on 127.0.0.1:PORT (bash's /dev/tcp, no extra tools).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND twice a second until it succeeds.
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what (logs: $DIR/log/)"
        sleep 0.5
    done
}

# ---------------------------------------------------------------- packages
pkgs=(slurmctld slurmd slurm-client munge)
bins=(slurmctld slurmd sinfo munged)
if [[ $ACCOUNTING == slurmdbd ]]; then pkgs+=(slurmdbd mariadb-server); bins+=(slurmdbd mariadbd); fi
missing=0
for b in "${bins[@]}"; do command -v "$b" >/dev/null || missing=1; done
if ((missing)); then
    log "installing ${pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # Try without refreshing the index first (fast when lists are current), then with.
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 \
        || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; }
fi
log "$(slurmctld -V), $(munged --version 2>&1 | awk '{print $1}')"

mkdir -p "$DIR"/{state/ctld,state/d,log,run}

# ---------------------------------------------------------------- configs
# Rewritten on every run; the same inputs give the same files, so re-runs are harmless.
cat > "$DIR/slurm.conf.new" <<EOF
# One-node test cluster written by tests/slurm/start_cluster.sh -- do not edit, re-run the script.
ClusterName=resetrl
# Controller on this host, addressed by loopback so no DNS is needed.
SlurmctldHost=$NODE(127.0.0.1)
# Daemons run as root: no slurm-user ownership of the state dirs to get right.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups (containers/VMs without systemd or a delegated cgroup tree): track job processes
# by walking /proc and do no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Cores and memory are the consumable resources, so small jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that ask for no memory get this much per CPU instead of the whole node.
DefMemPerCPU=500
SchedulerType=sched/backfill
MpiDefault=none
# The Debian default mail program does not exist here; silence the error.
MailProg=/bin/true
# A node that was down (e.g. slurmd restarted) comes back by itself once it registers.
ReturnToService=2
# Finished jobs stay visible to squeue for 5 minutes; the Snakemake plugin needs this to be
# >= 3x --slurm-init-seconds-before-status-checks when it polls with squeue.
MinJobAge=300
EOF
if [[ $ACCOUNTING == slurmdbd ]]; then
    cat >> "$DIR/slurm.conf.new" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
EOF
else
    cat >> "$DIR/slurm.conf.new" <<EOF
# No accounting database: sacct does not work, squeue does (see SLURM_ACCOUNTING above).
AccountingStorageType=accounting_storage/none
EOF
fi
cat >> "$DIR/slurm.conf.new" <<EOF
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REALMEM State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"

if [[ $ACCOUNTING == slurmdbd ]]; then
    # Private MariaDB instance: own datadir/socket under DIR, TCP on loopback only, small buffers.
    # The InnoDB sizes/timeout are the minimums slurmdbd checks for (it warns below them).
    cat > "$DIR/my.cnf" <<EOF
[mysqld]
user=root
datadir=$DIR/db
socket=$DIR/run/mysqld.sock
pid-file=$DIR/run/mysqld.pid
log-error=$DIR/log/mariadb.log
bind-address=127.0.0.1
port=$DB_PORT
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
EOF
    # slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF; it must be mode 600 and
    # owned by SlurmUser (root), since it holds the DB password.
    umask 077
    cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm-test-only
StorageLoc=slurm_acct_db
EOF
    umask 022
fi

# Clients find the config through /etc/slurm/slurm.conf. SLURM_CONF is NOT enough: inside a job,
# snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable (SLURM_CONF included)
# before its nested `srun`, which then fails with "Could not establish a configuration source".
mkdir -p /etc/slurm
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    log "keeping the existing /etc/slurm/slurm.conf as /etc/slurm/slurm.conf.before-resetrl"
    mv /etc/slurm/slurm.conf /etc/slurm/slurm.conf.before-resetrl
fi
ln -sfn "$DIR/slurm.conf" /etc/slurm/slurm.conf
export SLURM_CONF=$DIR/slurm.conf

# ---------------------------------------------------------------- munge
# Reuse a working munged (e.g. started by systemd on a CI runner); otherwise start one.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answers"
else
    if [[ ! -s /etc/munge/munge.key ]]; then  # Debian's postinst normally creates it
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    # Socket dir lives in /run, which is empty after a reboot.
    install -d -o munge -g munge -m 0755 /run/munge
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged   # forks into the background itself
    touch "$DIR/run/munged.ours"            # stop_cluster.sh stops munged only if we started it
    wait_for "$TIMEOUT" munged bash -c 'munge -n | unmunge'
fi

# ---------------------------------------------------------------- MariaDB + slurmdbd
if [[ $ACCOUNTING == slurmdbd ]]; then
    if ! alive "$DIR/run/mysqld.pid"; then
        port_open "$DB_PORT" && die "port $DB_PORT is taken by another process; set SLURM_DB_PORT"
        if [[ ! -d $DIR/db/mysql ]]; then
            log "initialising MariaDB datadir $DIR/db"
            mariadb-install-db --defaults-file="$DIR/my.cnf" --auth-root-authentication-method=socket \
                --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 \
                || die "mariadb-install-db failed, see $DIR/log/mariadb-install.log"
        fi
        log "starting MariaDB on 127.0.0.1:$DB_PORT"
        # setsid + nohup: detach from this shell so the server outlives it.
        setsid nohup mariadbd --defaults-file="$DIR/my.cnf" >/dev/null 2>&1 < /dev/null &
    fi
    wait_for "$TIMEOUT" MariaDB mariadb-admin --socket="$DIR/run/mysqld.sock" ping
    # Root logs in over the socket; slurmdbd logs in over TCP as 'slurm' (idempotent statements).
    mariadb --socket="$DIR/run/mysqld.sock" <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test-only';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
    if ! alive "$DIR/run/slurmdbd.pid"; then
        port_open 6819 && die "port 6819 is taken by another slurmdbd (stop it first)"
        log "starting slurmdbd"
        slurmdbd   # daemonizes; reads $(dirname $SLURM_CONF)/slurmdbd.conf
    fi
    # sacctmgr answers once slurmdbd is connected to the database.
    wait_for "$TIMEOUT" slurmdbd sacctmgr -n list cluster
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if ! alive "$DIR/run/slurmctld.pid"; then
    port_open 6817 && die "port 6817 is taken by another slurmctld (stop it first)"
    log "starting slurmctld"
    slurmctld   # daemonizes; keeps job/node state in $DIR/state/ctld across restarts
fi
wait_for "$TIMEOUT" slurmctld scontrol ping
if ! alive "$DIR/run/slurmd.pid"; then
    port_open 6818 && die "port 6818 is taken by another slurmd (stop it first)"
    log "starting slurmd"
    slurmd      # daemonizes; registers node $NODE with slurmctld
fi

# idle (or mixed/allocated when jobs already run) = up; down/drain never become idle by waiting.
node_up() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing)$ ]]; }
deadline=$((SECONDS + TIMEOUT))
until node_up; do
    ((SECONDS < deadline)) || die "node $NODE not idle after ${TIMEOUT}s; sinfo: $(sinfo -h -N -o '%N %T %E' 2>&1) (logs: $DIR/log/)"
    sleep 0.5
done
log "cluster up: $(sinfo -h -o '%P %a %D %T %N' | tr '\n' ' ')(config $DIR/slurm.conf, accounting: $ACCOUNTING)"
echo "$PARTITION"
