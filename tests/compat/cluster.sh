#!/usr/bin/env bash
# cluster.sh: start and stop local clusters of an etcd-compatible server
# (real etcd or witan) on 127.0.0.1, for the compatibility scripts and CI.
#
# Both servers take the same flags, so one launcher serves both:
#   --name nI --data-dir D --listen-client-urls http://127.0.0.1:P
#   --advertise-client-urls http://127.0.0.1:P --listen-peer-urls http://127.0.0.1:Q
#   --initial-advertise-peer-urls http://127.0.0.1:Q
#   --initial-cluster n1=http://127.0.0.1:Q1,... --initial-cluster-state new
#
# Library use (source it):
#   source tests/compat/cluster.sh
#   cluster_start NAME BINARY MEMBERS [extra server flags...]
#     starts MEMBERS members of BINARY, waits until every member answers a
#     linearizable get, and sets:
#       NAME_ENDPOINTS   comma-separated client URLs (member order n1, n2, ...)
#       NAME_EP_1..N     the client URL of each member
#       NAME_DIR         the temp dir holding data dirs and logs (nI.log)
#   cluster_stop NAME      stops that cluster's processes, removes its dir
#   cluster_logs NAME      prints the tail of every member's log (on failure)
# Every process started here is killed by an EXIT trap (cluster_cleanup_all);
# a caller that sets its own EXIT trap must call cluster_cleanup_all in it.
#
# Command-line use:
#   tests/compat/cluster.sh run BINARY MEMBERS [server flags...] -- COMMAND...
#     runs COMMAND with CLUSTER_ENDPOINTS (and CLUSTER_EP_1..N) exported, then
#     stops the cluster; exits with COMMAND's status.
#
# Tunables (environment): CLUSTER_START_TIMEOUT (seconds, default 60),
# CLUSTER_STOP_GRACE (seconds between SIGTERM and SIGKILL, default 2),
# CLUSTER_KEEP=1 keeps data dirs and logs after stopping, ETCDCTL (default
# etcdctl) is the client used to probe readiness.

# Names of clusters started and not yet stopped, for the EXIT trap; each
# cluster's pids are in NAME_PIDS, recorded as soon as a member is launched.
_CLUSTER_NAMES=()

_cluster_log() { echo "cluster.sh: $*" >&2; }

# Prints N distinct TCP ports that are free on 127.0.0.1 right now.
# With python3, the kernel picks them (bind to port 0, all held open together
# so they are distinct); without it, random ports are checked against every
# socket the kernel lists in /proc/net/tcp{,6} (bound or listening).
cluster_free_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
    return
  fi
  _cluster_free_ports_proc "$n"
}

# cluster_free_ports without python3: random ports not in /proc/net/tcp{,6}.
_cluster_free_ports_proc() {
  local n=$1 used=" " picked=() port tries=0 _sl local_addr _rest
  # Field 2 is local_address, "ADDR:PORT" with the port in hex.
  while read -r _sl local_addr _rest; do
    [[ "$local_addr" == *:* ]] || continue
    used+="$((16#${local_addr##*:})) "
  done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  while [ "${#picked[@]}" -lt "$n" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 10000 ]; then
      _cluster_log "could not find $n free ports"
      return 1
    fi
    port=$((20000 + RANDOM % 30000))
    if [[ "$used" == *" $port "* ]] || [[ " ${picked[*]} " == *" $port "* ]]; then
      continue
    fi
    picked+=("$port")
  done
  echo "${picked[*]}"
}

# True when every pid given is still running.
_cluster_all_alive() {
  local pid
  for pid in "$@"; do
    kill -0 "$pid" 2>/dev/null || return 1
  done
}

# Waits until ENDPOINT answers a linearizable get (which needs a leader and a
# quorum behind it), or the deadline passes, or one of PIDS exits.
# Usage: cluster_wait_ready ENDPOINT DEADLINE_EPOCH PIDS...
cluster_wait_ready() {
  local ep=$1 deadline=$2
  shift 2
  while :; do
    if ETCDCTL_API=3 "${ETCDCTL:-etcdctl}" --endpoints="$ep" --dial-timeout=1s \
      --command-timeout=2s get cluster-sh-readiness-probe >/dev/null 2>&1; then
      return 0
    fi
    if ! _cluster_all_alive "$@"; then
      _cluster_log "a member exited while waiting for $ep"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _cluster_log "timed out waiting for $ep to answer"
      return 1
    fi
    sleep 0.2
  done
}

# Prints the last lines of every member log of cluster NAME.
cluster_logs() {
  local name=$1 dir log
  dir=$(_cluster_get "${name}_DIR")
  [ -n "$dir" ] || return 0
  for log in "$dir"/*.log; do
    [ -f "$log" ] || continue
    echo "----- $log (last 40 lines) -----" >&2
    tail -n 40 "$log" >&2
  done
}

_cluster_get() { eval "printf '%s' \"\${$1:-}\""; }

# Sends SIGTERM to PIDS, waits up to CLUSTER_STOP_GRACE seconds (default 2)
# for them to exit, then SIGKILLs whatever is left. The grace is short on
# purpose: these clusters are throwaway, and an etcd leader stopped together
# with its followers spends its whole leader-transfer timeout (7 s) waiting.
_cluster_kill() {
  local pid deadline
  [ "$#" -gt 0 ] || return 0
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$(($(date +%s) + ${CLUSTER_STOP_GRACE:-2}))
  while _cluster_any_alive "$@" && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.1
  done
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

_cluster_any_alive() {
  local pid
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      return 0
    fi
  done
  return 1
}

# One attempt at starting cluster NAME; see cluster_start.
_cluster_start_once() {
  local name=$1 bin=$2 members=$3
  shift 3
  local free ports dir i initial="" pids=() client peer
  free=$(cluster_free_ports $((2 * members))) || return 1
  read -ra ports <<<"$free"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/cluster-${name}.XXXXXX")
  printf -v "${name}_DIR" '%s' "$dir"
  printf -v "${name}_PIDS" '%s' ""
  _CLUSTER_NAMES+=("$name")
  for ((i = 1; i <= members; i++)); do
    peer=${ports[$((2 * i - 1))]}
    initial+="${initial:+,}n$i=http://127.0.0.1:$peer"
  done
  for ((i = 1; i <= members; i++)); do
    client=${ports[$((2 * i - 2))]}
    peer=${ports[$((2 * i - 1))]}
    "$bin" --name "n$i" --data-dir "$dir/n$i.data" \
      --listen-client-urls "http://127.0.0.1:$client" \
      --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$initial" --initial-cluster-state new \
      "$@" >"$dir/n$i.log" 2>&1 &
    pids+=("$!")
    printf -v "${name}_PIDS" '%s' "${pids[*]}"
    printf -v "${name}_EP_$i" '%s' "http://127.0.0.1:$client"
  done
  local eps=""
  for ((i = 1; i <= members; i++)); do
    eps+="${eps:+,}$(_cluster_get "${name}_EP_$i")"
  done
  printf -v "${name}_ENDPOINTS" '%s' "$eps"

  local deadline=$(($(date +%s) + ${CLUSTER_START_TIMEOUT:-60}))
  for ((i = 1; i <= members; i++)); do
    if ! cluster_wait_ready "$(_cluster_get "${name}_EP_$i")" "$deadline" "${pids[@]}"; then
      return 1
    fi
  done
}

# cluster_start NAME BINARY MEMBERS [extra server flags...]
# Retries once with new ports when the first attempt fails, since a port
# found free can be taken by another process before the server binds it.
cluster_start() {
  local name=$1 bin=$2 members=$3
  shift 3
  if ! [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    _cluster_log "cluster name must be a shell identifier: $name"
    return 1
  fi
  if ! command -v "$bin" >/dev/null 2>&1; then
    _cluster_log "server binary not found: $bin"
    return 1
  fi
  local attempt
  for attempt in 1 2; do
    if _cluster_start_once "$name" "$bin" "$members" "$@"; then
      _cluster_log "$name: $members x $bin ready at $(_cluster_get "${name}_ENDPOINTS")"
      return 0
    fi
    _cluster_log "$name: start attempt $attempt of $bin failed"
    cluster_logs "$name"
    CLUSTER_KEEP=0 cluster_stop "$name"
  done
  return 1
}

# cluster_stop NAME: stops the members of NAME and removes its dir
# (kept when CLUSTER_KEEP=1).
cluster_stop() {
  local name=$1 dir pids n rest=()
  pids=$(_cluster_get "${name}_PIDS")
  dir=$(_cluster_get "${name}_DIR")
  # shellcheck disable=SC2086 # pids is a space-separated list on purpose
  _cluster_kill $pids
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    if [ "${CLUSTER_KEEP:-0}" = 1 ]; then
      _cluster_log "$name: kept $dir"
    else
      rm -rf "$dir"
    fi
  fi
  for n in "${_CLUSTER_NAMES[@]}"; do
    [ "$n" = "$name" ] || rest+=("$n")
  done
  _CLUSTER_NAMES=("${rest[@]}")
  printf -v "${name}_PIDS" '%s' ""
  printf -v "${name}_DIR" '%s' ""
}

# Stops every cluster started in this shell that is still running.
cluster_cleanup_all() {
  local n
  for n in "${_CLUSTER_NAMES[@]}"; do
    cluster_stop "$n"
  done
}

trap cluster_cleanup_all EXIT
# Turn INT and TERM into an ordinary exit so the EXIT trap runs on them too.
trap 'exit 130' INT
trap 'exit 143' TERM

# Command-line entry point, only when executed rather than sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ "${1:-}" != run ] || [ "$#" -lt 4 ]; then
    echo "usage: $0 run BINARY MEMBERS [server flags...] -- COMMAND..." >&2
    exit 2
  fi
  shift
  bin=$1 members=$2
  shift 2
  flags=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    flags+=("$1")
    shift
  done
  if [ "$#" -lt 2 ]; then
    echo "usage: $0 run BINARY MEMBERS [server flags...] -- COMMAND..." >&2
    exit 2
  fi
  shift
  cluster_start CLUSTER "$bin" "$members" "${flags[@]}"
  export CLUSTER_ENDPOINTS
  for ((i = 1; i <= members; i++)); do
    export "CLUSTER_EP_$i"
  done
  status=0
  "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    cluster_logs CLUSTER
  fi
  exit "$status"
fi
