#!/usr/bin/env bash
# compare.sh: witan against a real etcd, side by side, on this machine.
#
# Starts a 3-member etcd (Debian's etcd-server, installed when missing) and
# a 3-member witan on loopback with the same heartbeat and election
# settings, both with their default durability (fsync before a write is
# acknowledged), runs the same witan-bench workloads against each in turn,
# and prints a table of witan, etcd, witan/etcd and issue 5's target.
# Workloads that would disturb the next one (failover kills a member,
# memory needs a store holding only its keys) get a fresh cluster.
#
#   bash bench/compare.sh                 # full run, about 6 minutes once built
#   QUICK=1 bash bench/compare.sh         # smoke run: short, small
#   WORKLOADS="put lock" bash bench/compare.sh
#
# Environment:
#   WORKLOADS   any of: put range txn-cas watch lock election failover
#               memory (default: all)
#   SERVERS     the order the servers are measured in (default "witan etcd")
#   QUICK=1     short runs (2 s each, 200 watchers, 8 s failover, 10,000 keys
#               for memory): 65 to 80 s on 2 cores once built
#   DURATION    length of each timed run (default 10s; QUICK 2s)
#   OUT_DIR     keep every report here (default: a temp dir, removed)
#   JSON_OUT    also write the comparison as JSON to this file
#   SKIP_BUILD=1  use target/release/{witan,witan-bench} as they are
#   ETCD_BIN    the etcd binary (default: etcd on PATH)
# Exit status: 0 when every run completed without failed operations (the
# targets are reported, not enforced), 1 otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=tests/compat/cluster.sh
source tests/compat/cluster.sh

QUICK=${QUICK:-0}
WORKLOADS=${WORKLOADS:-"put range txn-cas watch lock election failover memory"}
SERVERS=${SERVERS:-"witan etcd"}
ETCD_BIN=${ETCD_BIN:-etcd}
WITAN_BIN=$root/target/release/witan
BENCH=$root/target/release/witan-bench
MEMBERS=3
# Both servers' defaults, spelled out so they stay the same on both.
SERVER_FLAGS=(--heartbeat-interval 100 --election-timeout 1000)

if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-2s}
  WATCHERS=200
  WATCH_PUTS=50
  FAILOVER_DURATION=8s
  KILL_AFTER=2s
  MEMORY_KEYS=10000
else
  DURATION=${DURATION:-10s}
  WATCHERS=1000
  WATCH_PUTS=1000
  FAILOVER_DURATION=20s
  KILL_AFTER=7s
  MEMORY_KEYS=100000
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/witan-compare.XXXXXX")
out=${OUT_DIR:-$work/out}
mkdir -p "$out"
failed_runs=()

on_exit() {
  cluster_cleanup_all
  rm -rf "$work"
}
trap on_exit EXIT

log() { echo "compare.sh: $*" >&2; }

install_etcd() {
  command -v "$ETCD_BIN" >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "etcd is missing: install Debian's etcd-server and etcd-client"
    exit 1
  fi
  log "installing etcd-server and etcd-client"
  local policy=/usr/sbin/policy-rc.d added_policy=0 status=0
  # The package would start a system etcd; hold services back meanwhile.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      etcd-server etcd-client || status=$?
  [ "$added_policy" = 0 ] || rm -f "$policy"
  return "$status"
}

build() {
  if [ "${SKIP_BUILD:-0}" = 1 ]; then
    return 0
  fi
  log "building witan and witan-bench (release)"
  cargo build --release -q -p witan-server -p witan-bench --bin witan --bin witan-bench
}

wants() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# server_bin SERVER: the binary cluster_start runs for SERVER.
server_bin() {
  case $1 in
    witan) echo "$WITAN_BIN" ;;
    etcd) echo "$ETCD_BIN" ;;
    *)
      log "unknown server $1"
      return 1
      ;;
  esac
}

# start SERVER: a fresh 3-member cluster named C; sets EP_1..3, ENDPOINTS.
start() {
  cluster_start C "$(server_bin "$1")" "$MEMBERS" "${SERVER_FLAGS[@]}"
  ENDPOINTS=$C_ENDPOINTS
  EP_1=$C_EP_1 EP_2=$C_EP_2 EP_3=$C_EP_3
}

stop() { cluster_stop C; }

# run SERVER LABEL ARGS...: one witan-bench run, its table on stdout and
# its JSON report appended to $out/SERVER.jsonl. A run that cannot be
# made, or in which operations failed, is remembered for the exit status.
run() {
  local server=$1 label=$2
  shift 2
  echo
  echo "=== $server: $label"
  local status=0
  "$BENCH" "$@" --label "$label" --no-progress --json-file "$out/$server.jsonl" || status=$?
  case $status in
    0) ;;
    3) failed_runs+=("$server $label (some operations failed)") ;;
    *) failed_runs+=("$server $label (exit status $status)") ;;
  esac
}

# The workloads that share one cluster.
steady_workloads() {
  local s=$1
  if wants put; then
    run "$s" put-256 put --endpoints "$ENDPOINTS" --clients 256 --conns 16 --val-size 256 --duration "$DURATION"
    run "$s" put-1 put --endpoints "$ENDPOINTS" --clients 1 --conns 1 --val-size 256 --duration "$DURATION"
  fi
  if wants range; then
    run "$s" range-l-256 range --endpoints "$ENDPOINTS" --consistency l --clients 256 --conns 16 --duration "$DURATION"
    run "$s" range-s-256 range --endpoints "$ENDPOINTS" --consistency s --clients 256 --conns 16 --duration "$DURATION"
  fi
  if wants txn-cas; then
    run "$s" txn-cas-64 txn-cas --endpoints "$ENDPOINTS" --keys 1000 --clients 64 --conns 16 --duration "$DURATION"
  fi
  if wants watch; then
    # Watchers on member 2, the writer on member 1.
    run "$s" watch-"$WATCHERS" watch --endpoints "$EP_2,$EP_1" --watchers "$WATCHERS" --conns 16 \
      --total "$WATCH_PUTS" --rate 100
  fi
  local recipe
  for recipe in lock election; do
    if wants "$recipe"; then
      run "$s" "$recipe-1x16" "$recipe" --endpoints "$ENDPOINTS" --names 1 --clients 16 --duration "$DURATION"
      run "$s" "$recipe-64x64" "$recipe" --endpoints "$ENDPOINTS" --names 64 --clients 64 --duration "$DURATION"
    fi
  done
}

# Steady writes; the leader is killed (SIGKILL) a third of the way in.
failover_workload() {
  local s=$1 i pids
  read -ra pids <<<"$C_PIDS"
  mkdir -p "$work/pid"
  # The bench names the leader by endpoint; map each endpoint's port to
  # its member's pid.
  for i in 1 2 3; do
    local ep_var="C_EP_$i"
    echo "${pids[$((i - 1))]}" >"$work/pid/${!ep_var##*:}"
  done
  run "$s" failover failover --endpoints "$ENDPOINTS" --clients 16 --conns 3 \
    --duration "$FAILOVER_DURATION" --kill-after "$KILL_AFTER" \
    --kill-leader-cmd "kill -9 \$(cat '$work/pid/'\${WITAN_BENCH_LEADER_ENDPOINT##*:})"
}

# Loads MEMORY_KEYS keys of 256 bytes, then reads each member's VmRSS.
memory_workload() {
  local s=$1 pid kb total=0 max=0 n=0 per=()
  run "$s" load-keys put --endpoints "$ENDPOINTS" --total "$MEMORY_KEYS" --val-size 256 --clients 64 --conns 8
  for pid in $C_PIDS; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    per+=("$((kb / 1024))")
    total=$((total + kb))
    [ "$kb" -le "$max" ] || max=$kb
    n=$((n + 1))
  done
  echo "=== $s: memory: resident MB per member: ${per[*]}"
  printf '{"workload":"memory","label":"memory","params":{"keys":%d,"val_size":256},"extra":{"rss_max_mb":%s,"rss_mean_mb":%s}}\n' \
    "$MEMORY_KEYS" "$(awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }')" \
    "$(awk -v k="$total" -v n="$n" 'BEGIN { printf "%.1f", k / 1024 / n }')" >>"$out/$s.jsonl"
}

measure() {
  local s=$1
  : >"$out/$s.jsonl"
  if wants put || wants range || wants txn-cas || wants watch || wants lock || wants election; then
    start "$s"
    steady_workloads "$s"
    stop
  fi
  if wants failover; then
    start "$s"
    failover_workload "$s"
    stop
  fi
  if wants memory; then
    start "$s"
    memory_workload "$s"
    stop
  fi
}

# The comparison: LABEL METRIC [TARGET] per row (targets from issue 5).
ROWS=(
  "put-256 put.ops_per_sec >=2.0"
  "put-256 put.p99_ms <=0.8"
  "put-1 put.p50_ms <=1.0"
  "put-1 put.p99_ms"
  "range-l-256 range.ops_per_sec >=1.5"
  "range-s-256 range.ops_per_sec >=1.5"
  "txn-cas-64 cas.ops_per_sec >=1.5"
  "txn-cas-64 conflicts"
  "watch-$WATCHERS event.p50_ms"
  "watch-$WATCHERS event.p99_ms <=1.0"
  "lock-1x16 cycle.ops_per_sec >=5.0"
  "lock-64x64 cycle.ops_per_sec >=2.0"
  "election-1x16 cycle.ops_per_sec >=5.0"
  "election-64x64 cycle.ops_per_sec >=2.0"
  "failover longest_gap_ms <=0.5"
  "failover failed_writes"
  "memory rss_max_mb <=1.0"
  "load-keys put.ops_per_sec"
)

install_etcd
build
started=$SECONDS
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); QUICK=$QUICK"
for server in $SERVERS; do
  measure "$server"
done

read -ra order <<<"$SERVERS"
candidate=${order[0]}
baseline=${order[1]:-${order[0]}}
rows=()
for row in "${ROWS[@]}"; do
  rows+=(--row "$row")
done
echo
echo "=== $candidate against $baseline ($MEMBERS members each, QUICK=$QUICK, $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), $((SECONDS - started)) s)"
"$BENCH" compare --candidate "$candidate=$out/$candidate.jsonl" \
  --baseline "$baseline=$out/$baseline.jsonl" "${rows[@]}"
if [ -n "${JSON_OUT:-}" ]; then
  "$BENCH" compare --json --candidate "$candidate=$out/$candidate.jsonl" \
    --baseline "$baseline=$out/$baseline.jsonl" "${rows[@]}" >"$JSON_OUT"
fi
if [ -n "${OUT_DIR:-}" ]; then
  log "reports kept in $OUT_DIR"
fi
if [ "${#failed_runs[@]}" -gt 0 ]; then
  log "runs that failed or had failed operations:"
  printf '  %s\n' "${failed_runs[@]}" >&2
  exit 1
fi
