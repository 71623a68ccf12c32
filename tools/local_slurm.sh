#!/usr/bin/env bash
# A single-node Slurm on this machine, to try `tools/reproduce.py --submit` (and CI's real-Slurm test) before a
# cluster: munge + slurmctld + slurmd on localhost, partition `cpu` with this machine's CPUs, no accounting
# storage (sacct then answers "accounting storage is disabled", as on many small clusters), jobs may run as root.
#
#   bash tools/local_slurm.sh start    # install (Debian/Ubuntu, as root) if missing, write the config, start
#   bash tools/local_slurm.sh status   # exit status 0 when the controller answers and the node takes jobs
#   bash tools/local_slurm.sh stop
#
# Idempotent: `start` on a running Slurm returns at once. The configuration is /etc/slurm/slurm.conf (where
# sbatch/squeue look by default); a slurm.conf this script did not write is never touched (then: exit 1).
# State, logs and pid files: $MIXSEG_SLURM_STATE (default /var/lib/mixseg-slurm).
set -uo pipefail
STATE=${MIXSEG_SLURM_STATE:-/var/lib/mixseg-slurm}
CONF=/etc/slurm/slurm.conf
MARK='# written by mixseg tools/local_slurm.sh'
PACKAGES=(munge slurmctld slurmd slurm-client)
say() { echo "local_slurm: $*" >&2; }

ours() { [ ! -e "$CONF" ] || head -n1 "$CONF" | grep -qxF "$MARK"; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "Slurm is not installed and cannot be installed here (needs root and apt-get: packages ${PACKAGES[*]})"
    return 1
  fi
  say "installing ${PACKAGES[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1; then
    apt-get update -q >>"$STATE/apt.log" 2>&1   # once, only when the package lists did not have them
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1 \
      || { say "apt-get install failed; see $STATE/apt.log"; return 1; }
  fi
}

write_conf() {
  ours || { say "$CONF exists and was not written by this script: not touching it"; return 1; }
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc --all)
  # modest RealMemory: half of the machine, at most 8 GB (jobs ask for none; it only has to be consistent)
  mem=$(awk '/MemTotal/ {m = int($2 / 1024 / 2); print (m > 8192 ? 8192 : m)}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/slurmd"
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=mixseg-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# no cgroups in a container: processes tracked by /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerParameters=sched_interval=2
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  [ -s /etc/munge/munge.key ] || { mungekey --create --force 2>/dev/null || /usr/sbin/create-munge-key -f; }
  mkdir -p /run/munge && chown munge:munge /run/munge /etc/munge/munge.key 2>/dev/null
  chmod 0755 /run/munge
  if command -v runuser >/dev/null && id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged || /usr/sbin/munged --force
  else
    /usr/sbin/munged --force
  fi
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.25; done
  say "munged does not answer"; return 1
}

ready() {   # the controller answers and the node is up (idle, mixed or allocated)
  scontrol ping 2>/dev/null | grep -q 'is UP' \
    && sinfo -h -p cpu -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc|comp)'
}

start() {
  mkdir -p "$STATE"
  ours || { say "$CONF exists and was not written by this script: not touching it"; return 1; }
  if [ -e "$CONF" ] && ready; then say "running (partition cpu)"; return 0; fi
  install || return 1
  write_conf || return 1
  start_munge || return 1
  pid_alive "$STATE/slurmctld.pid" || slurmctld -i \
    || { say "slurmctld did not start; see $STATE/slurmctld.log"; return 1; }
  pid_alive "$STATE/slurmd.pid" || slurmd || { say "slurmd did not start; see $STATE/slurmd.log"; return 1; }
  for _ in $(seq 60); do
    if ready; then say "running (partition cpu, $(nproc --all) CPUs)"; return 0; fi
    # a node left down/drained by an earlier run: back to service
    sinfo -h -p cpu -o '%t' 2>/dev/null | grep -qE '^(down|drain)' \
      && scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1
    sleep 0.5
  done
  say "Slurm did not come up within 30 s; see $STATE/slurmctld.log and $STATE/slurmd.log"
  return 1
}

stop() {
  local f
  for f in slurmd slurmctld; do
    if pid_alive "$STATE/$f.pid"; then
      kill "$(cat "$STATE/$f.pid")"
      for _ in $(seq 40); do pid_alive "$STATE/$f.pid" || break; sleep 0.25; done
    fi
  done
  say "stopped (munged left running)"
}

status() {   # 0: this script's Slurm answers (not another cluster's configuration)
  if [ -e "$CONF" ] && ours && ready; then sinfo -p cpu; return 0; fi
  if [ -e "$CONF" ] && ! ours; then say "$CONF is another Slurm's configuration"; else say "not running"; fi
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
