#!/usr/bin/env bash
# etcdctl_leases_watches.sh: leases and watches through etcdctl against a
# fresh 3-member cluster of a server.
#
# Usage: tests/compat/etcdctl_leases_watches.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl_leases_watches.sh etcd
#        tests/compat/etcdctl_leases_watches.sh target/debug/witan
#
# Same style as etcdctl.sh: ETCDCTL_API=3 etcdctl against different members,
# every output checked byte for byte against text taken from etcd 3.4.23 and
# written out here. What may legitimately differ is normalised first:
#   - lease ids are random: each one is replaced by a label (<L1>, ...) in
#     both its hex form (what etcdctl prints) and its decimal form (-w json);
#   - a remaining TTL depends on timing: it is checked to lie in a range and
#     then replaced by "remaining(..)";
#   - etcd lists leases and a lease's attached keys in map order: both are
#     sorted;
#   - -w json headers lose cluster_id, member_id and raft_term.
# Nothing waits by sleeping: each wait polls a condition with a deadline.
# Revisions are predictable: the cluster starts empty at revision 1, every
# write bumps it by one, and so do a lease revocation and a lease expiry
# that delete keys (all of a lease's keys go in one revision).
# Exits non-zero with a clear message on the first mismatch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl_leases_watches.sh
COMPAT_CLUSTER=LW

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift

work=$(mktemp -d "${TMPDIR:-/tmp}/etcdctl-lw.XXXXXX")
# Background `etcdctl watch` processes, killed on exit.
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

# ---- normalisation -----------------------------------------------------
# sed expressions replacing every lease id seen so far by its label.
id_sed=(-e 's/^$//')
# The hex id of each lease label (as etcdctl takes it).
declare -A lease_hex=()

# label_lease LABEL HEX_ID: from now on HEX_ID (and its decimal form) print
# as <LABEL>.
label_lease() {
  local label=$1 hex=$2
  [[ "$hex" =~ ^[0-9a-f]{1,16}$ ]] || fail "not a lease id: '$hex'"
  id_sed+=(-e "s/\\b$hex\\b/<$label>/g" -e "s/\\b$((16#$hex))\\b/<$label>/g")
}

# Lease ids to labels; a lease's attached keys in sorted order; -w json
# headers without the per-cluster fields.
normalise() {
  sed "${id_sed[@]}" \
    -e 's/"cluster_id":[0-9]*,"member_id":[0-9]*,//g' \
    -e 's/,"raft_term":[0-9]*//g' |
    perl -pe 's/attached keys\(\[([^\]]*)\]\)/"attached keys([" . join(" ", sort split(" ", $1)) . "])"/e'
}

# A remaining TTL between LOW and HIGH seconds becomes "remaining(..)"; any
# other value stays and so fails the comparison.
remaining_in() {
  local low=$1 high=$2
  perl -pe "s/remaining\\((\\d+)s\\)/(\$1 >= $low && \$1 <= $high) ? 'remaining(..)' : \"remaining(\$1s)\"/e"
}

# `lease list` prints "found N leases" and then the ids in map order.
sorted_list() {
  local first
  IFS= read -r first || return 0
  printf '%s\n' "$first"
  sort
}

# ---- checks ------------------------------------------------------------
# expect_out DESC I ARGS... <<'EOF'
# Runs `ctl I ARGS...`, checks it exits 0 and that its stdout, normalised
# (and piped through $FILTER when set), equals the heredoc exactly.
expect_out() {
  local desc=$1
  shift
  local expected actual status=0 err
  expected=$(
    cat
    echo x
  )
  expected=${expected%x}
  err="$work/stderr"
  ctl "$@" >"$work/stdout" 2>"$err" </dev/null || status=$?
  actual=$(
    normalise <"$work/stdout" | ${FILTER:-cat}
    echo x
  )
  actual=${actual%x}
  if [ "$status" -ne 0 ]; then
    echo "--- stderr:" >&2
    cat "$err" >&2
    fail "$desc: etcdctl $* exited with status $status"
  fi
  if [ "$actual" != "$expected" ]; then
    echo "--- expected:" >&2
    printf '%s' "$expected" >&2
    echo "--- actual (normalised):" >&2
    printf '%s' "$actual" >&2
    echo "---" >&2
    fail "$desc: etcdctl $* printed something else"
  fi
  ok "$desc"
}

# grant LABEL I TTL: grants a lease on member I, checks the printed line
# ("lease <id> granted with TTL(Ns)", N given in $EXPECT_TTL, default TTL)
# and labels the id.
grant() {
  local label=$1 i=$2 ttl=$3 out id
  out=$(ctl "$i" lease grant "$ttl" </dev/null) || fail "lease grant $ttl on member $i failed"
  id=$(awk '{print $2}' <<<"$out")
  label_lease "$label" "$id"
  lease_hex[$label]=$id
  if [ "$(normalise <<<"$out")" != "lease <$label> granted with TTL(${EXPECT_TTL:-$ttl}s)" ]; then
    fail "lease grant $ttl on member $i printed: $out"
  fi
  ok "lease grant $ttl on member $i: $label, TTL(${EXPECT_TTL:-$ttl}s)"
}

# ---- background watches ------------------------------------------------
# watch_start NAME I ARGS...: runs `etcdctl watch ARGS...` against member I
# in the background, its stdout in $work/NAME.out.
watch_start() {
  local name=$1 i=$2
  shift 2
  ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(ep "$i")" --dial-timeout=2s \
    watch "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
  watch_pids+=("$!")
  printf -v "watch_pid_$name" '%s' "$!"
}

# watch_expect NAME DESC <<'EOF': waits until watch NAME has printed exactly
# the heredoc (normalised, and through $FILTER when set); fails at the
# deadline, or when the watch exited, showing what it printed.
watch_expect() {
  local name=$1 desc=$2 expected actual pid
  expected=$(
    cat
    echo x
  )
  expected=${expected%x}
  pid=$(eval "printf '%s' \"\$watch_pid_$name\"")
  local deadline=$(($(date +%s) + WAIT_DEADLINE))
  while :; do
    actual=$(
      normalise <"$work/$name.out" | ${FILTER:-cat}
      echo x
    )
    actual=${actual%x}
    [ "$actual" = "$expected" ] && break
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      echo "--- expected:" >&2
      printf '%s' "$expected" >&2
      echo "--- actual (normalised):" >&2
      printf '%s' "$actual" >&2
      echo "--- watch stderr:" >&2
      cat "$work/$name.err" >&2
      fail "$desc: the watch did not print the expected output within ${WAIT_DEADLINE}s"
    fi
    sleep 0.1
  done
  ok "$desc"
}

# watch_stop NAME: stops watch NAME.
watch_stop() {
  local pid
  pid=$(eval "printf '%s' \"\$watch_pid_$1\"")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cluster_start LW "$server" 3 "$@" || fail "could not start a 3-member cluster of $server"

# ---- leases ------------------------------------------------------------
# The default election timeout is 1000 ms, so the smallest TTL is
# ceil(1.5 s) = 2 s: a TTL of 1 is raised to it.
EXPECT_TTL=2 grant L0 1 1
grant L1 2 60
grant L2 3 120
L0=${lease_hex[L0]} L1=${lease_hex[L1]} L2=${lease_hex[L2]}

expect_out "put --lease L1 on member 1 (revision 2)" 1 put --lease="$L1" lk1 v1 <<'EOF'
OK
EOF
expect_out "put --lease L1 on member 2 (revision 3)" 2 put --lease="$L1" lk2 v2 <<'EOF'
OK
EOF
expect_out "put --lease L2 on member 3 (revision 4)" 3 put --lease="$L2" lk3 v3 <<'EOF'
OK
EOF
expect_out "get -w json shows the lease on the kv" 1 get lk1 -w json <<'EOF'
{"header":{"revision":4},"kvs":[{"key":"bGsx","create_revision":2,"mod_revision":2,"version":1,"value":"djE=","lease":<L1>}],"count":1}
EOF
FILTER="remaining_in 40 60" expect_out "lease timetolive --keys on member 3" 3 lease timetolive --keys "$L1" <<'EOF'
lease <L1> granted with TTL(60s), remaining(..), attached keys([lk1 lk2])
EOF
FILTER="remaining_in 100 120" expect_out "lease timetolive (no keys) on member 1" 1 lease timetolive "$L2" <<'EOF'
lease <L2> granted with TTL(120s), remaining(..)
EOF
expect_out "lease keep-alive --once on member 2" 2 lease keep-alive --once "$L1" <<'EOF'
lease <L1> keepalived with TTL(60)
EOF

# L0 (2 s, no keys) expires on its own; wait for it, then it is gone from
# the list and timetolive says so.
l0_expired() { [ "$(ctl 2 lease timetolive "$L0" 2>/dev/null)" = "lease $L0 already expired" ]; }
wait_until "lease L0 (TTL 2s) expiring" l0_expired
ok "lease L0 (TTL raised to 2s) expired on its own"
expect_out "lease timetolive of the expired lease on member 3" 3 lease timetolive "$L0" <<'EOF'
lease <L0> already expired
EOF
FILTER=sorted_list expect_out "lease list on member 1" 1 lease list <<'EOF'
found 2 leases
<L1>
<L2>
EOF
FILTER=sorted_list expect_out "lease list on member 3" 3 lease list <<'EOF'
found 2 leases
<L1>
<L2>
EOF

expect_out "lease revoke L1 on member 3 (revision 5: lk1 and lk2 deleted)" 3 lease revoke "$L1" <<'EOF'
lease <L1> revoked
EOF
expect_out "keys of the revoked lease are gone, the other lease's key stays" 1 get lk --prefix <<'EOF'
lk3
v3
EOF
FIELDS_OUT=$(ctl 2 get lk3 -w fields | stable_fields | grep '"Revision"')
[ "$FIELDS_OUT" = '"Revision" : 5' ] || fail "after the revoke the revision is not 5: $FIELDS_OUT"
ok "the revoke deleted both keys in one revision (5)"
expect_out "lease timetolive of the revoked lease" 2 lease timetolive "$L1" <<'EOF'
lease <L1> already expired
EOF
expect_out "lease timetolive -w json of the revoked lease" 1 lease timetolive "$L1" -w json <<'EOF'
{"revision":5,"id":<L1>,"ttl":-1,"granted-ttl":0,"keys":null}
EOF
expect_err "lease revoke of a revoked lease" \
  "failed to revoke lease (etcdserver: requested lease not found)" 1 lease revoke "$L1"
expect_err "lease keep-alive --once of a revoked lease" \
  "etcdserver: requested lease not found" 2 lease keep-alive --once "$L1"
expect_err "put --lease with a revoked lease" \
  "etcdserver: requested lease not found" 3 put --lease="$L1" lk1 again

# A short lease that nobody keeps alive: its key disappears by itself.
grant L3 2 3
L3=${lease_hex[L3]}
expect_out "put --lease L3 on member 3 (revision 6)" 3 put --lease="$L3" short sv <<'EOF'
OK
EOF
short_gone() { [ -z "$(ctl 1 get short 2>/dev/null)" ]; }
wait_until "the key of lease L3 (TTL 3s) disappearing" short_gone
ok "the key of the expired lease L3 disappeared"
expect_out "lease timetolive of the expired lease L3" 2 lease timetolive --keys "$L3" <<'EOF'
lease <L3> already expired
EOF
FIELDS_OUT=$(ctl 3 get lk3 -w fields | stable_fields | grep '"Revision"')
[ "$FIELDS_OUT" = '"Revision" : 7' ] || fail "after the expiry the revision is not 7: $FIELDS_OUT"
ok "the expiry deleted the key in one revision (7)"
FILTER=sorted_list expect_out "lease list after revoke and expiry" 2 lease list <<'EOF'
found 1 leases
<L2>
EOF

# ---- watches -----------------------------------------------------------
# The lease history as a watch sees it: puts with the lease, the revoke's
# deletes at one revision, the expiry's delete.
watch_start leasehist 2 --rev=2 --prev-kv --prefix lk
watch_expect leasehist "watch --rev=2 --prefix --prev-kv on lease keys: puts and the revoke" <<'EOF'
PUT
lk1
v1
PUT
lk2
v2
PUT
lk3
v3
DELETE
lk1
v1
lk1

DELETE
lk2
v2
lk2

EOF
watch_stop leasehist
watch_start expiry 1 --rev=6 --prev-kv short
watch_expect expiry "watch --rev=6 --prev-kv on the key of the expired lease" <<'EOF'
PUT
short
sv
DELETE
short
sv
short

EOF
watch_stop expiry

expect_out "put w/a (revision 8)" 1 put w/a 1 <<'EOF'
OK
EOF
expect_out "put w/b (revision 9)" 2 put w/b 2 <<'EOF'
OK
EOF
expect_out "overwrite w/a (revision 10)" 3 put w/a 3 <<'EOF'
OK
EOF
expect_out "del w/b (revision 11)" 1 del w/b <<'EOF'
1
EOF
expect_out "put w/c with a space (revision 12)" 2 put w/c "multi word" <<'EOF'
OK
EOF
expect_out "put outside the prefix (revision 13)" 3 put x/outside 0 <<'EOF'
OK
EOF
expect_out "put w/d with lease L2 (revision 14)" 1 put --lease="$L2" w/d 4 <<'EOF'
OK
EOF
expect_out "del --prefix w/ (revision 15: w/a, w/c, w/d)" 2 del --prefix w/ <<'EOF'
3
EOF

# History, then live events written through the other members.
watch_start hist 2 --rev=8 --prefix --prev-kv w/
HISTORY='PUT
w/a
1
PUT
w/b
2
PUT
w/a
1
w/a
3
DELETE
w/b
2
w/b

PUT
w/c
multi word
PUT
w/d
4
DELETE
w/a
3
w/a

DELETE
w/c
multi word
w/c

DELETE
w/d
4
w/d

'
watch_expect hist "watch --rev=8 --prefix --prev-kv on member 2: the whole history" < <(printf "%s" "$HISTORY")
expect_out "live put w/e via member 1 (revision 16)" 1 put w/e live1 <<'EOF'
OK
EOF
expect_out "live put w/e via member 3 (revision 17)" 3 put w/e live2 <<'EOF'
OK
EOF
expect_out "live put outside the prefix (revision 18)" 1 put x/outside 1 <<'EOF'
OK
EOF
expect_out "live del w/e via member 3 (revision 19)" 3 del w/e <<'EOF'
1
EOF
watch_expect hist "the same watch then prints the live events" < <(printf "%s" "${HISTORY}PUT
w/e
live1
PUT
w/e
live1
w/e
live2
DELETE
w/e
live2
w/e

")
watch_stop hist

# A range watch [w/a, w/c) from the start of the history, no prev_kv.
watch_start range 3 --rev=1 w/a w/c
watch_expect range "watch --rev=1 KEY RANGE_END on member 3" <<'EOF'
PUT
w/a
1
PUT
w/b
2
PUT
w/a
3
DELETE
w/b

DELETE
w/a

EOF
watch_stop range

# -w json: one response per revision of a live (synced) watch; the
# watch starts at the next revision so it cannot miss the write.
watch_start json 3 -w json --rev=20 w/j
expect_out "put w/j via member 1 (revision 20)" 1 put w/j jv <<'EOF'
OK
EOF
watch_expect json "watch -w json on member 3: the response shape" <<'EOF'
{"Header":{"revision":20},"Events":[{"kv":{"key":"dy9q","create_revision":20,"mod_revision":20,"version":1,"value":"anY="}}],"CompactRevision":0,"Canceled":false,"Created":false}
EOF
watch_stop json

# A watch from a compacted revision is cancelled by the server.
expect_out "compaction 12" 2 compaction 12 <<'EOF'
compacted revision 12
EOF
status=0
out=$(ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(ep 1)" --dial-timeout=2s \
  watch --rev=9 --prefix w/ 2>&1 </dev/null) || status=$?
expected_out='watch was canceled (etcdserver: mvcc: required revision has been compacted)
Error: watch is canceled by the server'
if [ "$status" -ne 5 ] || [ "$out" != "$expected_out" ]; then
  printf -- '--- expected (status 5):\n%s\n--- actual (status %s):\n%s\n' "$expected_out" "$status" "$out" >&2
  fail "watch --rev below the compaction"
fi
ok "watch --rev below the compaction is cancelled (exit status 5)"
watch_start atcompact 1 --rev=12 --prefix w/
watch_expect atcompact "watch --rev at the compaction revision still works" <<'EOF'
PUT
w/c
multi word
PUT
w/d
4
DELETE
w/a

DELETE
w/c

DELETE
w/d

PUT
w/e
live1
PUT
w/e
live2
DELETE
w/e

PUT
w/j
jv
EOF
watch_stop atcompact

echo "etcdctl_leases_watches.sh: all $checks checks passed against $server"
