#!/usr/bin/env bash
# etcdctl_members.sh: etcdctl's member commands against a fresh 3-member
# cluster of a server: `member list -w table`, `member add` (a voter, then a
# learner) and starting the new member with what etcdctl prints, `member
# promote` (refused until the learner caught up), `member update`, `member
# remove`, checking exit statuses and output.
#
# Usage: tests/compat/etcdctl_members.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl_members.sh etcd
#        tests/compat/etcdctl_members.sh target/debug/witan
#
# Ids differ per run, so outputs are compared after replacing each member's
# hex id by its name (<n4>) and the cluster id by <cluster>. Exits non-zero
# with the members' logs on the first mismatch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl_members.sh
COMPAT_CLUSTER=MEMBERS

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift
flags=("$@")

cluster_start MEMBERS "$server" 3 "${flags[@]}" || {
  echo "$COMPAT_SCRIPT: cluster did not start" >&2
  exit 1
}
dir=$MEMBERS_DIR
work=$(mktemp -d "${TMPDIR:-/tmp}/members.XXXXXX")
trap 'rm -rf "$work"; cluster_cleanup_all' EXIT

# ---- ids to names --------------------------------------------------------
id_sed=()
# label ID NAME: from now on hex id ID prints as <NAME>.
label() {
  [[ "$1" =~ ^[0-9a-f]{1,16}$ ]] || fail "not a member id: '$1'"
  id_sed+=(-e "s/\\b$1\\b/<$2>/g")
}
# etcdctl pads ids to 16 columns: runs of spaces become one.
normalise() {
  if [ "${#id_sed[@]}" -gt 0 ]; then sed "${id_sed[@]}"; else cat; fi | sed 's/  */ /g'
}
# expect (lib.sh) compares normalised output.
EXPECT_FILTER=normalise
# The hex id of the member listed with peer URL $1 (`member list` lines
# are "id, status, name, peer URLs, client URLs, is learner").
id_of_peer() { ctl 1 member list | awk -F', ' -v u="$1" '$4 == u { print $1 }'; }

for i in 1 2 3; do
  label "$(ctl 1 member list | awk -F', ' -v n="n$i" '$3 == n { print $1 }')" "n$i"
done
cluster_dec=$(ctl 1 member list -w json | sed -n 's/.*"cluster_id":\([0-9]*\).*/\1/p')
[ -n "$cluster_dec" ] || fail "member list -w json printed no cluster id"
label "$(printf '%x' "$cluster_dec")" cluster

# The table's ADDRS columns hold per-run ports; keep ID, STATUS, NAME and
# IS LEARNER, rows sorted (etcd lists members in id order).
table_columns() {
  awk -F'|' 'NF > 1 { gsub(/ +/, " "); print $2 "|" $3 "|" $4 "|" $7 }' | {
    IFS= read -r header
    printf '%s\n' "$header"
    sort
  }
}

FILTER=table_columns expect "member list -w table shows three started voters" 1 member list -w table <<'EOF'
 ID | STATUS | NAME | IS LEARNER 
 <n1> | started | n1 | false 
 <n2> | started | n2 | false 
 <n3> | started | n3 | false 
EOF

# start_added NAME: starts the member `member add` just printed the
# environment of ($work/add), on the ports in $client/$peer, and waits
# until it serves clients.
start_added() {
  local name=$1 pid
  # shellcheck disable=SC1090 # etcdctl's own ETCD_*="..." lines
  source <(grep '^ETCD_' "$work/add")
  [ "$ETCD_NAME" = "$name" ] || fail "member add printed ETCD_NAME=$ETCD_NAME"
  [ "$ETCD_INITIAL_CLUSTER_STATE" = existing ] || fail "member add printed state $ETCD_INITIAL_CLUSTER_STATE"
  "$server" --name "$ETCD_NAME" --data-dir "$dir/$name.data" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "$ETCD_INITIAL_ADVERTISE_PEER_URLS" \
    --initial-cluster "$ETCD_INITIAL_CLUSTER" \
    --initial-cluster-state "$ETCD_INITIAL_CLUSTER_STATE" \
    "${flags[@]}" >"$dir/$name.log" 2>&1 &
  pid=$!
  MEMBERS_PIDS+=" $pid"
  printf -v "MEMBERS_EP_${name#n}" '%s' "http://127.0.0.1:$client"
  # A serializable read: etcd's learners refuse linearizable ones.
  wait_until "$name serves clients" ctl "${name#n}" get probe --consistency=s
  # witan publishes a member's name and client URLs just after it starts
  # serving (etcd just before).
  wait_until "$name is listed as started" published "$name"
}

# published NAME: member list shows NAME started.
published() {
  ctl 1 member list | grep -q ", started, $1, "
}

# ---- a voter ---------------------------------------------------------------
read -r client peer < <(cluster_free_ports 2)
# etcd refuses an add for a few seconds after a member starts ("unhealthy
# cluster": its strict reconfiguration check), so adds are retried.
add_n4() { ctl 1 member add n4 --peer-urls="http://127.0.0.1:$peer" >"$work/add" 2>"$work/err"; }
wait_until "member add n4 is accepted" add_n4
n4=$(id_of_peer "http://127.0.0.1:$peer")
label "$n4" n4
normalise <"$work/add" | head -n 3 >"$work/add.head"
diff -u - "$work/add.head" <<EOF || fail "member add printed something else"
Member <n4> added to cluster <cluster>

ETCD_NAME="n4"
EOF
ok "member add prints the new member and its environment"
grep -qx "ETCD_INITIAL_CLUSTER_STATE=\"existing\"" "$work/add" || fail "no ETCD_INITIAL_CLUSTER_STATE"
start_added n4
ctl 4 put from-n4 yes >/dev/null || fail "writing through n4"
FILTER=table_columns expect "the added member is started and a voter" 2 member list -w table <<'EOF'
 ID | STATUS | NAME | IS LEARNER 
 <n1> | started | n1 | false 
 <n2> | started | n2 | false 
 <n3> | started | n3 | false 
 <n4> | started | n4 | false 
EOF

# ---- a learner -------------------------------------------------------------
read -r client peer < <(cluster_free_ports 2)
add_n5() { ctl 2 member add n5 --learner --peer-urls="http://127.0.0.1:$peer" >"$work/add" 2>"$work/err"; }
wait_until "member add n5 --learner is accepted" add_n5
n5=$(id_of_peer "http://127.0.0.1:$peer")
label "$n5" n5
grep -q "added to cluster" "$work/add" || fail "member add --learner printed: $(cat "$work/add")"
ok "member add --learner"
expect_err "promoting a learner that has not caught up is refused" \
  "etcdserver: can only promote a learner member which is in sync with leader" 1 member promote "$n5"
start_added n5
promoted() { ctl 1 member promote "$n5" >"$work/promote" 2>/dev/null; }
wait_until "the caught-up learner can be promoted" promoted
diff -u - <(normalise <"$work/promote") <<'EOF' || fail "member promote printed something else"
Member <n5> promoted in cluster <cluster>
EOF
ok "member promote"
expect_err "promoting a voter is refused" "etcdserver: can only promote a learner member" 1 member promote "$n4"

# ---- update and remove -------------------------------------------------------
expect "member update" 3 member update "$n5" --peer-urls=http://127.0.0.1:1 <<'EOF'
Member <n5> updated in cluster <cluster>
EOF
[ "$(id_of_peer http://127.0.0.1:1)" = "$n5" ] || fail "member list does not show the new peer URL"
ok "member list shows the updated peer URL"
expect "member update back to the member's own URL" 1 member update "$n5" --peer-urls="http://127.0.0.1:$peer" <<'EOF'
Member <n5> updated in cluster <cluster>
EOF
ctl 1 put after-update yes >/dev/null || fail "writing after the update"
n5_has_it() { [ "$(ctl 5 get after-update --consistency=s --print-value-only 2>/dev/null)" = yes ]; }
wait_until "n5 receives writes again" n5_has_it
ok "n5 takes part again on its own URL"
expect_err "updating to another member's peer URL is refused" "etcdserver: Peer URLs already exists" \
  1 member update "$n4" --peer-urls="http://127.0.0.1:$peer"

expect "member remove of a voter" 1 member remove "$n5" <<'EOF'
Member <n5> removed from cluster <cluster>
EOF
expect "member remove of the other added member" 2 member remove "$n4" <<'EOF'
Member <n4> removed from cluster <cluster>
EOF
expect_err "removing an unknown member is refused" "etcdserver: member not found" 1 member remove 1234
FILTER=table_columns expect "member list -w table shows the three first members again" 2 member list -w table <<'EOF'
 ID | STATUS | NAME | IS LEARNER 
 <n1> | started | n1 | false 
 <n2> | started | n2 | false 
 <n3> | started | n3 | false 
EOF
ctl 3 put after-removals yes >/dev/null || fail "writing after the removals"
ok "the cluster writes after the removals"

echo "$COMPAT_SCRIPT: all $checks checks passed against $server"
