#!/usr/bin/env bash
# A private one-machine SLURM cluster (Debian's slurm-wlm and munge) in a folder of its own:
# its own munged socket and key, slurmctld and one slurmd on free loopback ports, N CPU slots
# and G "GPUs" as generic resources (character devices in the folder, so SLURM hands them out
# and sets CUDA_VISIBLE_DEVICES as it would on a GPU node). Nothing outside DIR is touched,
# so several clusters (tests running in parallel) can live on one machine. Runs as root.
#
#   deploy/slurm/local-cluster.sh start DIR [--cpus N] [--gpus G] [--kill-wait S]
#       prints SLURM_CONF=DIR/etc/slurm.conf once the node is idle; export it for
#       sbatch, squeue, scontrol, scancel
#   deploy/slurm/local-cluster.sh stop DIR
#       cancels every job of that cluster, stops its daemons, leaves DIR (logs) in place
#
# Exit status: 0 done, 1 a daemon did not start (its log is printed), 2 bad arguments.
set -euo pipefail

usage() {
  echo "usage: deploy/slurm/local-cluster.sh start DIR [--cpus N] [--gpus G] [--kill-wait S]" >&2
  echo "       deploy/slurm/local-cluster.sh stop DIR" >&2
  exit 2
}
[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2
cpus=4
gpus=4
kill_wait=10
while [ $# -gt 0 ]; do
  case "$1" in
    --cpus) cpus=${2:?--cpus needs a number}; shift 2 ;;
    --gpus) gpus=${2:?--gpus needs a number}; shift 2 ;;
    --kill-wait) kill_wait=${2:?--kill-wait needs seconds}; shift 2 ;;
    *) echo "local-cluster: unknown argument '$1'" >&2; usage ;;
  esac
done
for n in "$cpus" "$gpus" "$kill_wait"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "local-cluster: '$n' is not a whole number" >&2; exit 2; }
done
node=localnode

# A loopback port nothing listens on (bash's /dev/tcp connects only to a listener).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "local-cluster: no free loopback port found" >&2
  return 1
}

# Waits up to $2 seconds for `$1` (a command) to succeed.
wait_for() {
  local deadline=$((SECONDS + $2))
  until eval "$1" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

stop_pidfile() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

start() {
  for tool in munged mungekey slurmctld slurmd scontrol; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
      echo "local-cluster: $tool is missing; run deploy/install-deps.sh (slurm-wlm, munge)" >&2
      exit 1
    }
  done
  export PATH=$PATH:/usr/sbin
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir"/{etc,state,spool,log,run,dev,munge-key,munge}
  # munged refuses a key or socket folder that others may write; the socket folder must be
  # searchable by every user who runs a job.
  chmod 700 "$dir/munge-key"
  chmod 711 "$dir/munge"
  [ -s "$dir/munge-key/munge.key" ] || mungekey --create --keyfile="$dir/munge-key/munge.key"
  chmod 400 "$dir/munge-key/munge.key"
  local socket=$dir/munge/munge.socket
  munged --force --socket="$socket" --key-file="$dir/munge-key/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge-key/munged.seed"
  wait_for "munge --socket='$socket' -n" 10 || { cat "$dir/log/munged.log" >&2; exit 1; }

  local gres="" i
  for ((i = 0; i < gpus; i++)); do
    # /dev/null's numbers: SLURM only checks that a GPU's File is a device.
    [ -e "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3
  done
  if [ "$gpus" -gt 0 ]; then
    gres="Gres=gpu:$gpus"
    echo "Name=gpu File=$dir/dev/gpu[0-$((gpus - 1))]" >"$dir/etc/gres.conf"
  else
    : >"$dir/etc/gres.conf"
  fi

  local host ctld_port slurmd_port
  host=$(hostname -s)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  # linuxproc tracks a job's processes by parentage (no cgroups needed in a container);
  # task/none binds nothing; cons_tres with CR_CPU lets several jobs share the node.
  # config_overrides: the node may declare more CPUs than the machine has.
  cat >"$dir/etc/slurm.conf" <<EOF
ClusterName=sweepd-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
ReturnToService=2
KillWait=$kill_wait
SlurmdParameters=config_overrides
NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus $gres State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$dir/etc/slurm.conf
  slurmctld -i || { cat "$dir/log/slurmctld.log" >&2; exit 1; }
  slurmd -N "$node" || { cat "$dir/log/slurmd.log" >&2; exit 1; }
  if ! wait_for "sinfo -h -n $node -o %t | grep -qx idle" 60; then
    echo "local-cluster: node $node did not become idle" >&2
    tail -n 30 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2
    exit 1
  fi
  echo "SLURM_CONF=$SLURM_CONF"
}

stop() {
  export PATH=$PATH:/usr/sbin
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if [ -s "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    export SLURM_CONF=$dir/etc/slurm.conf
    scancel --full --signal=KILL --user=root 2>/dev/null || true
    scancel --user=root 2>/dev/null || true
    wait_for "[ -z \"\$(squeue -h -o %i)\" ]" 30 || echo "local-cluster: jobs still listed" >&2
    scontrol shutdown >/dev/null 2>&1 || true
  fi
  stop_pidfile "$dir/run/slurmd.pid"
  stop_pidfile "$dir/run/slurmctld.pid"
  stop_pidfile "$dir/run/munged.pid"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
