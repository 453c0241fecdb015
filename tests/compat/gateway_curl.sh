#!/usr/bin/env bash
# gateway_curl.sh: etcd's documented curl examples for its HTTP/JSON
# gateway (https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/), and the
# health, version and metrics endpoints, against a fresh 3-member cluster
# of a server, with the answers checked field by field (jq).
#
# Usage: tests/compat/gateway_curl.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/gateway_curl.sh target/debug/witan
#        tests/compat/gateway_curl.sh etcd      (the checks hold for etcd 3.4
#                                                too, except witan's extras)
# Needs curl and jq. Writes go through member 1; reads, watches and health
# are checked on every member. Nothing waits by sleeping a fixed time:
# waits poll a condition with a deadline (lib.sh's wait_until).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=gateway_curl.sh
COMPAT_CLUSTER=GW

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
for tool in curl jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$COMPAT_SCRIPT: $tool is required (apt-get install $tool)" >&2
    exit 2
  fi
done
server=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/gateway-curl.XXXXXX")
watch_pids=()

on_exit() {
  local pid
  for pid in "${watch_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  cluster_cleanup_all
}
trap on_exit EXIT

# post I PATH BODY: POSTs BODY to member I's PATH as etcd's docs do; prints
# the answer. Fails on a transport error (not on an HTTP error status).
post() {
  curl -sS -L --max-time 10 "$(ep "$1")$2" -X POST -d "$3"
}

# status_of I PATH BODY: the HTTP status of that POST.
status_of() {
  curl -sS -L --max-time 10 -o /dev/null -w '%{http_code}' "$(ep "$1")$2" -X POST -d "$3"
}

# check DESC JSON JQ_FILTER: the filter (a boolean) holds for JSON.
check() {
  local desc=$1 json=$2 filter=$3
  if ! jq -e "$filter" >/dev/null 2>&1 <<<"$json"; then
    echo "--- answer:" >&2
    printf '%s\n' "$json" >&2
    fail "$desc: expected $filter"
  fi
  ok "$desc"
}

cluster_start GW "$server" 3 "$@"

# --- etcd's documented examples ---------------------------------------------
put=$(post 1 /v3/kv/put '{"key": "Zm9v", "value": "YmFy"}')
check "put foo=bar (key and value base64)" "$put" \
  '.header.revision == "2" and (.header.cluster_id | type == "string") and (.header.member_id | test("^[0-9]+$")) and (has("prev_kv") | not)'

for i in 1 2 3; do
  range=$(post "$i" /v3/kv/range '{"key": "Zm9v"}')
  check "range foo on member $i" "$range" \
    '.count == "1" and .kvs[0].key == "Zm9v" and .kvs[0].value == "YmFy" and .kvs[0].create_revision == "2" and .kvs[0].mod_revision == "2" and .kvs[0].version == "1"'
done

post 1 /v3/kv/put '{"key": "Zm9vMg==", "value": "YmF6"}' >/dev/null
prefix=$(post 2 /v3/kv/range '{"key": "Zm9v", "range_end": "Zm9w"}')
check "range every key prefixed with foo" "$prefix" \
  '.count == "2" and ([.kvs[].key] == ["Zm9v", "Zm9vMg=="])'

# Watch on member 3, put through member 1.
curl -sS -N --max-time 60 "$(ep 3)/v3/watch" -X POST \
  -d '{"create_request": {"key":"Zm9v"} }' >"$work/watch.out" 2>"$work/watch.err" &
watch_pids+=($!)
watch_created() { grep -qs '"created":true' "$work/watch.out"; }
wait_until "the watch on member 3 is created" watch_created
post 1 /v3/kv/put '{"key": "Zm9v", "value": "YmFy"}' >/dev/null
watch_event() { grep -qs '"events"' "$work/watch.out"; }
wait_until "the put reaches the watcher" watch_event
event=$(grep '"events"' "$work/watch.out" | head -1)
check "watch answers newline-delimited {\"result\":...} with the put event" "$event" \
  '.result.events[0].kv.key == "Zm9v" and .result.events[0].kv.value == "YmFy" and .result.events[0].kv.mod_revision == "4" and .result.events[0].kv.version == "2" and (.result.events[0] | has("type") | not)'

# Transactions, as documented (CREATE, then VERSION).
txn=$(post 1 /v3/kv/txn \
  '{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}')
check "txn on the create revision succeeds" "$txn" \
  '.succeeded == true and .header.revision == "5" and .responses[0].response_put.header.revision == "5"'
txn=$(post 2 /v3/kv/txn \
  '{"compare":[{"version":"3","result":"EQUAL","target":"VERSION","key":"Zm9v"}],"success":[{"requestRange":{"key":"Zm9v"}}]}')
check "txn on the version returns the range" "$txn" \
  '.succeeded == true and .responses[0].response_range.kvs[0].version == "3"'

# --- leases -------------------------------------------------------------------
grant=$(post 1 /v3/lease/grant '{"TTL": 60}')
check "lease grant: ID and TTL as strings" "$grant" '.TTL == "60" and (.ID | test("^[0-9]+$"))'
lease=$(jq -r .ID <<<"$grant")
post 1 /v3/kv/put "{\"key\": \"bGVhc2Vk\", \"value\": \"dg==\", \"lease\": \"$lease\"}" >/dev/null
kept=$(post 2 /v3/lease/keepalive "{\"ID\": \"$lease\"}")
check "lease keepalive streams one result" "$kept" ".result.ID == \"$lease\" and .result.TTL == \"60\""
ttl=$(post 3 /v3/kv/lease/timetolive "{\"ID\": \"$lease\", \"keys\": true}")
check "lease timetolive lists the key" "$ttl" '.grantedTTL == "60" and .keys == ["bGVhc2Vk"]'
post 1 /v3/kv/lease/revoke "{\"ID\": \"$lease\"}" >/dev/null
gone=$(post 2 /v3/kv/range '{"key": "bGVhc2Vk"}')
check "revoking the lease deleted its key" "$gone" 'has("kvs") | not'
missing=$(post 1 /v3/kv/lease/revoke "{\"ID\": \"$lease\"}")
check "revoking it again: etcd's error body" "$missing" \
  '.error == "etcdserver: requested lease not found" and .message == .error and .code == 5'
[ "$(status_of 1 /v3/kv/lease/revoke "{\"ID\": \"$lease\"}")" = 404 ] || fail "lease not found is not 404"
ok "lease not found is HTTP 404"

# --- errors -------------------------------------------------------------------
[ "$(status_of 1 /v3/kv/put '{"key": "Zm9v", "value": ')" = 400 ] || fail "malformed JSON is not 400"
ok "malformed JSON is HTTP 400"
[ "$(status_of 1 /v3/kv/put '{"key": "!!!"}')" = 400 ] || fail "bad base64 is not 400"
ok "bad base64 is HTTP 400"
unchanged=$(post 1 /v3/kv/range '{"key": "Zm9v"}')
check "refused requests changed nothing" "$unchanged" '.header.revision == "7"'
[ "$(status_of 1 /v3/kv/nothing '{}')" = 404 ] || fail "an unknown path is not 404"
ok "an unknown path is HTTP 404"

# --- cluster, maintenance, health, version, metrics --------------------------
status=$(post 1 /v3/maintenance/status '{}')
check "maintenance status names a leader" "$status" '(.leader | test("^[0-9]+$")) and (.version | type == "string")'
for i in 1 2 3; do
  health=$(curl -sS --max-time 10 "$(ep "$i")/health")
  check "/health on member $i" "$health" '.health == "true"'
done
version=$(curl -sS --max-time 10 "$(ep 1)/version")
check "/version" "$version" '(.etcdserver | type == "string") and (.etcdcluster | type == "string")'
leaders=0
for i in 1 2 3; do
  metrics=$(curl -sS --max-time 10 "$(ep "$i")/metrics")
  grep -qx 'etcd_server_has_leader 1' <<<"$metrics" || fail "member $i: etcd_server_has_leader is not 1"
  grep -q '^etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} ' <<<"$metrics" ||
    fail "member $i: no WAL fsync histogram"
  grep -q '^etcd_mvcc_db_total_size_in_bytes ' <<<"$metrics" || fail "member $i: no db size"
  if grep -qx 'etcd_server_is_leader 1' <<<"$metrics"; then
    leaders=$((leaders + 1))
  fi
done
ok "/metrics on every member: has_leader 1, fsync histogram, db size"
[ "$leaders" -eq 1 ] || fail "$leaders members say etcd_server_is_leader 1"
ok "exactly one member reports etcd_server_is_leader 1"

# witan's additions (etcd 3.5 probes, witan's version, the v3alpha prefix).
if jq -e 'has("witan")' >/dev/null <<<"$version"; then
  [ "$(curl -sS --max-time 10 "$(ep 2)/livez")" = ok ] || fail "/livez is not ok"
  [ "$(curl -sS --max-time 10 "$(ep 2)/readyz")" = ok ] || fail "/readyz is not ok"
  ok "/livez and /readyz"
  check "/health carries etcd 3.5's reason field" "$(curl -sS "$(ep 3)/health")" '.reason == ""'
  alpha=$(post 3 /v3alpha/kv/range '{"key": "Zm9v"}')
  check "the /v3alpha prefix" "$alpha" '.kvs[0].value == "YmFy"'
  list=$(post 1 /v3/cluster/member/list '{}')
  check "member list answers (members, or the Cluster service's own error)" "$list" \
    '(.members | length) == 3 or (.code | type == "number")'
fi

echo "$COMPAT_SCRIPT: all $checks checks passed against $server"
