#!/usr/bin/env bash
# etcdctl_maintenance.sh: etcdctl's maintenance commands against a fresh
# 3-member cluster of a server started with a 1 MiB space quota.
#
# Usage: tests/compat/etcdctl_maintenance.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl_maintenance.sh etcd
#        tests/compat/etcdctl_maintenance.sh target/debug/witan
#
# Checks, with exit statuses and outputs:
#   - `endpoint status -w table` lists every member, one of them the leader;
#   - `endpoint hashkv` gives the same hash on every member after writes;
#   - `snapshot save` writes a file (etcd's framing: data + sha256);
#   - `defrag` finishes on every member;
#   - filling the quota raises NOSPACE: `alarm list` shows it, a put fails
#     with etcd's "database space exceeded", `alarm disarm` prints what it
#     cleared; deleting, compacting and defragmenting free the space and
#     writes work again;
#   - `move-leader` hands leadership to the member named, as `endpoint
#     status` then shows.
#
# Per-endpoint commands (endpoint status/hashkv, defrag, move-leader) are
# given the endpoints without their http:// scheme: etcdctl 3.4 dials each
# one with the whole URL as the HTTP/2 :authority, which Go's server
# accepts and the Rust HTTP/2 stack (h2) rejects as malformed. For the same
# reason `--cluster` (which takes the members' advertised http:// URLs) is
# not used here.
# Nothing waits by sleeping: each wait polls a condition with a deadline.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl_maintenance.sh
COMPAT_CLUSTER=MT

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/etcdctl-maintenance.XXXXXX")
on_exit() {
  rm -rf "$work"
  cluster_cleanup_all
}
trap on_exit EXIT

cluster_start MT "$server" 3 --quota-backend-bytes 1048576 "$@"

# The endpoints without their scheme (see the header).
bare() { printf '%s' "${1#http://}"; }
all_eps="$(bare "$(ep 1)"),$(bare "$(ep 2)"),$(bare "$(ep 3)")"

# Runs etcdctl against every member (bare endpoints).
ctl_all() {
  ETCDCTL_API=3 "$ETCDCTL" --endpoints="$all_eps" --dial-timeout=2s \
    --command-timeout=10s "$@"
}

# --- endpoint status ---------------------------------------------------------
out=$(ctl_all endpoint status -w table) || fail "endpoint status failed: $out"
for i in 1 2 3; do
  grep -q "| $(bare "$(ep "$i")") " <<<"$out" || fail "endpoint status lacks member $i: $out"
done
[ "$(grep -c '|      true |' <<<"$out")" -eq 1 ] || fail "not exactly one leader: $out"
ok "endpoint status -w table lists the three members and one leader"

# --- endpoint hashkv -------------------------------------------------------
for i in $(seq 1 20); do
  ctl $(((i % 3) + 1)) put "k$i" "v$i" >/dev/null || fail "put k$i"
done
ctl 1 del k3 >/dev/null || fail "del k3"
rev=$(ctl 1 put k1 last -w json | grep -o '"revision":[0-9]*' | cut -d: -f2)
hashes_equal() {
  local out
  out=$(ctl_all endpoint hashkv --rev "$rev") || return 1
  [ "$(wc -l <<<"$out")" -eq 3 ] && [ "$(cut -d' ' -f2 <<<"$out" | sort -u | wc -l)" -eq 1 ]
}
wait_until "every member has the same HashKV at revision $rev" hashes_equal
ok "endpoint hashkv: the same hash on every member"

# --- snapshot save -----------------------------------------------------------
out=$(ctl 2 snapshot save "$work/snap.db" 2>&1) || fail "snapshot save failed: $out"
grep -q "Snapshot saved at $work/snap.db" <<<"$out" || fail "snapshot save said: $out"
[ "$(stat -c %s "$work/snap.db")" -gt 32 ] || fail "empty snapshot"
ok "snapshot save writes the file"

# --- defrag -----------------------------------------------------------------
out=$(ctl_all defrag 2>&1) || fail "defrag failed: $out"
[ "$(grep -c '^Finished defragmenting etcd member\[' <<<"$out")" -eq 3 ] ||
  fail "defrag output: $out"
ok "defrag finishes on every member"

# --- NOSPACE ---------------------------------------------------------------
out=$(ctl 1 alarm list) || fail "alarm list failed"
[ -z "$out" ] || fail "alarms before filling the quota: $out"
ok "alarm list is empty"

head -c 100000 /dev/zero | tr '\0' v >"$work/value"
filled=0
for i in $(seq 1 200); do
  if ! out=$(ctl 1 put "big/$i" <"$work/value" 2>&1); then
    grep -q "etcdserver: mvcc: database space exceeded" <<<"$out" ||
      fail "put failed otherwise: $out"
    filled=1
    break
  fi
done
[ "$filled" -eq 1 ] || fail "the quota was never reached"
ok "filling the quota: puts fail with 'database space exceeded'"

alarmed() { ctl 1 alarm list | grep -qE '^memberID:[0-9]+ alarm:NOSPACE $'; }
wait_until "alarm list shows NOSPACE" alarmed
out=$(ctl 3 put small v 2>&1) && fail "a put through another member succeeded"
grep -q "database space exceeded" <<<"$out" || fail "put on member 3: $out"
ok "alarm list shows NOSPACE; every member refuses writes"

out=$(ctl 1 alarm disarm) || fail "alarm disarm failed"
grep -qE '^memberID:[0-9]+ alarm:NOSPACE $' <<<"$out" || fail "alarm disarm printed: $out"
ok "alarm disarm prints the alarms it cleared"

ctl 1 del big/ --prefix >/dev/null || fail "deleting under NOSPACE"
rev=$(ctl 1 get k1 -w json | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2)
ctl 1 compaction "$rev" >/dev/null || fail "compaction under NOSPACE"
ctl_all defrag >/dev/null || fail "defrag under NOSPACE"
# etcd needs a disarm once space is free; witan also clears by itself.
writable() {
  ctl 1 alarm disarm >/dev/null 2>&1 || true
  ctl 1 put small v >/dev/null 2>&1
}
wait_until "writes work again" writable
ok "delete, compaction and defrag free the space; writes work again"

# --- move-leader --------------------------------------------------------------
status_json() { ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(bare "$(ep "$1")")" \
  --dial-timeout=2s endpoint status -w json; }
member_of() { status_json "$1" | grep -o '"member_id":[0-9]*' | cut -d: -f2; }
leader_of() { status_json "$1" | grep -o '"leader":[0-9]*' | cut -d: -f2; }
leader=$(leader_of 1)
target=""
for i in 1 2 3; do
  id=$(member_of "$i")
  if [ "$id" != "$leader" ]; then
    target=$id
    break
  fi
done
[ -n "$target" ] || fail "no follower found"
hex=$(printf '%x' "$target")
out=$(ctl_all move-leader "$hex" 2>&1) || fail "move-leader failed: $out"
grep -q "Leadership transferred from $(printf '%x' "$leader") to $hex" <<<"$out" ||
  fail "move-leader said: $out"
moved() { [ "$(leader_of 1)" = "$target" ] && [ "$(leader_of 2)" = "$target" ]; }
wait_until "the members agree $hex leads" moved
ok "move-leader hands leadership to the member named"

echo "$COMPAT_SCRIPT: all $checks checks passed"
