#!/bin/sh
# Container entrypoint; tini (PID 1) runs it, forwards SIGTERM to the server and reaps zombies.
#
# TensorFlow's default intra-op pool (TF_INTRA_OP_THREADS=0) has one thread per core the process
# may be scheduled on, and a CPU quota does not change that: a pod limited to 2 CPUs on a 64-core
# node would start 64 threads and spend its time throttled. Unless TF_INTRA_OP_THREADS is set, it
# is set here to the container's CPU quota in whole cores (rounded up, as Kubernetes' downward API
# rounds limits.cpu), at most the cores this process may run on. The pool is shared by every
# inference worker of the process (docs/deployment.md), so WORKERS is left alone.
#
# Arguments starting with '-' are server flags (`docker run IMAGE --workers 4`); anything else is
# a command to run instead. Either way the last step is `exec`, so signals reach the server.
set -eu

# Where the cgroup filesystem is mounted; tests point it at a fake one.
cgroup_root=${DENSENET_CGROUP_ROOT:-/sys/fs/cgroup}

# The CPU quota in cores, rounded up; nothing when there is no quota.
quota_cores() {
  if [ -r "$cgroup_root/cpu.max" ]; then
    # cgroup v2: "<quota> <period>", or "max <period>" for no quota.
    read -r quota period < "$cgroup_root/cpu.max"
  else
    # cgroup v1: the cpu controller, mounted alone or together with cpuacct.
    for dir in "$cgroup_root/cpu" "$cgroup_root/cpu,cpuacct"; do
      if [ -r "$dir/cpu.cfs_quota_us" ] && [ -r "$dir/cpu.cfs_period_us" ]; then
        quota=$(cat "$dir/cpu.cfs_quota_us")
        period=$(cat "$dir/cpu.cfs_period_us")
        break
      fi
    done
  fi
  case "${quota:-max}" in
    max | -1 | '' | *[!0-9]*) return 0 ;;
  esac
  case "${period:-}" in
    '' | 0 | *[!0-9]*) return 0 ;;
  esac
  echo $(((quota + period - 1) / period))
}

if [ -z "${TF_INTRA_OP_THREADS:-}" ]; then
  cores=$(nproc)
  quota=$(quota_cores)
  if [ -n "$quota" ] && [ "$quota" -lt "$cores" ]; then cores=$quota; fi
  TF_INTRA_OP_THREADS=$cores
  export TF_INTRA_OP_THREADS
fi

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- node dist/main.js "$@"
fi
exec "$@"
