#!/usr/bin/env bash
# etcdctl.sh: the etcdctl tour against a fresh 3-member cluster of a server.
#
# Usage: tests/compat/etcdctl.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl.sh etcd
#        tests/compat/etcdctl.sh target/debug/witan
#
# Starts the cluster with cluster.sh, then runs ETCDCTL_API=3 etcdctl against
# different members and checks every output byte for byte. The expected
# outputs were taken from etcd 3.4 and are written out here, so the script
# checks a server against etcd's behaviour rather than against itself.
# Revisions are predictable because the cluster starts empty at revision 1
# and every write below bumps it by exactly one.
# Exits non-zero with a clear message on the first mismatch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl.sh
COMPAT_CLUSTER=TOUR

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift


# expect_out DESC I ARGS... <<'EOF'
# Runs `ctl I ARGS...` (stdin from $IN when set, else empty) and checks its
# exit status is 0 and its stdout equals the heredoc exactly. With
# FIELDS=1 the output goes through stable_fields first.
expect_out() {
  local desc=$1
  shift
  local expected actual status=0 err
  expected=$(
    cat
    echo x
  )
  expected=${expected%x}
  err=$(mktemp)
  actual=$(
    if [ "${FIELDS:-0}" = 1 ]; then
      printf '%s' "${IN:-}" | ctl "$@" 2>"$err" | stable_fields
    else
      printf '%s' "${IN:-}" | ctl "$@" 2>"$err"
    fi
    echo x
  ) || status=$?
  actual=${actual%x}
  checks=$((checks + 1))
  if [ "$status" -ne 0 ]; then
    echo "--- stderr:" >&2
    cat "$err" >&2
    rm -f "$err"
    fail "$desc: etcdctl $* exited with status $status"
  fi
  rm -f "$err"
  if [ "$actual" != "$expected" ]; then
    echo "--- expected:" >&2
    printf '%s' "$expected" >&2
    echo "--- actual:" >&2
    printf '%s' "$actual" >&2
    echo "---" >&2
    fail "$desc: etcdctl $* printed something else"
  fi
  echo "ok $checks - $desc"
}

# expect_err DESC MESSAGE I ARGS...
# Runs `ctl I ARGS...` and checks it fails and that its stderr has the line
# "Error: MESSAGE" (etcdctl's own rendering of the server's error text).
expect_err() {
  local desc=$1 message=$2
  shift 2
  local out status=0
  out=$(ctl "$@" 2>&1 </dev/null) || status=$?
  checks=$((checks + 1))
  if [ "$status" -eq 0 ]; then
    echo "--- output:" >&2
    printf '%s\n' "$out" >&2
    fail "$desc: etcdctl $* succeeded, expected \"Error: $message\""
  fi
  if ! grep -qxF "Error: $message" <<<"$out"; then
    echo "--- output:" >&2
    printf '%s\n' "$out" >&2
    fail "$desc: etcdctl $* did not print \"Error: $message\""
  fi
  echo "ok $checks - $desc"
}

cluster_start TOUR "$server" 3 "$@" || fail "could not start a 3-member cluster of $server"

# ---- put / get ---------------------------------------------------------
expect_out "put on member 1" 1 put foo bar <<'EOF'
OK
EOF
expect_out "get on member 2" 2 get foo <<'EOF'
foo
bar
EOF
FIELDS=1 expect_out "get -w fields on member 3: revisions, version, count" 3 get foo -w fields <<'EOF'
"Revision" : 2
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 2
"Version" : 1
"Value" : "bar"
"Lease" : 0
"More" : false
"Count" : 1
EOF
expect_out "put foo1 on member 2" 2 put foo1 bar1 <<'EOF'
OK
EOF
expect_out "put foo2 on member 3" 3 put foo2 bar2 <<'EOF'
OK
EOF
expect_out "put foo3 on member 1" 1 put foo3 bar3 <<'EOF'
OK
EOF
expect_out "put zoo on member 2" 2 put zoo zval <<'EOF'
OK
EOF
# Revision is now 6.

# ---- range options -----------------------------------------------------
expect_out "get --prefix --keys-only" 3 get foo --prefix --keys-only <<'EOF'
foo

foo1

foo2

foo3

EOF
expect_out "get --from-key" 1 get --from-key foo1 <<'EOF'
foo1
bar1
foo2
bar2
foo3
bar3
zoo
zval
EOF
expect_out "get --from-key '' (every key)" 2 get --from-key '' <<'EOF'
foo
bar
foo1
bar1
foo2
bar2
foo3
bar3
zoo
zval
EOF
expect_out "get with an explicit range end" 3 get foo1 foo3 <<'EOF'
foo1
bar1
foo2
bar2
EOF
expect_out "get --limit" 1 get foo --prefix --limit 2 <<'EOF'
foo
bar
foo1
bar1
EOF
FIELDS=1 expect_out "get --limit -w fields: more and count" 2 get foo --prefix --limit 1 -w fields <<'EOF'
"Revision" : 6
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 2
"Version" : 1
"Value" : "bar"
"Lease" : 0
"More" : true
"Count" : 4
EOF
expect_out "get --sort-by=MODIFY --order=DESCEND" 3 get foo --prefix --sort-by=MODIFY --order=DESCEND <<'EOF'
foo3
bar3
foo2
bar2
foo1
bar1
foo
bar
EOF
expect_out "get --sort-by=VALUE --order=DESCEND --keys-only" 1 get foo --prefix --sort-by=VALUE --order=DESCEND --keys-only <<'EOF'
foo3

foo2

foo1

foo

EOF
expect_out "get --sort-by=KEY --order=DESCEND --limit" 2 get --from-key '' --sort-by=KEY --order=DESCEND --limit 2 <<'EOF'
zoo
zval
foo3
bar3
EOF
expect_out "get --sort-by=CREATE (ascending by default)" 3 get foo --prefix --sort-by=CREATE --print-value-only <<'EOF'
bar
bar1
bar2
bar3
EOF

# ---- historical reads --------------------------------------------------
expect_out "overwrite foo (revision 7)" 1 put foo bar-v2 <<'EOF'
OK
EOF
expect_out "get --rev (historical value)" 2 get foo --rev 2 <<'EOF'
foo
bar
EOF
expect_out "get --rev before the key existed" 3 get foo1 --rev 2 <<'EOF'
EOF
expect_out "get current value" 3 get foo <<'EOF'
foo
bar-v2
EOF
FIELDS=1 expect_out "get -w fields after overwrite: create/mod/version" 1 get foo -w fields <<'EOF'
"Revision" : 7
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 7
"Version" : 2
"Value" : "bar-v2"
"Lease" : 0
"More" : false
"Count" : 1
EOF
expect_err "get --rev in the future" "etcdserver: mvcc: required revision is a future revision" 2 get foo --rev 100
expect_out "put --prev-kv (revision 8)" 2 put foo bar-v3 --prev-kv <<'EOF'
OK
foo
bar-v2
EOF
expect_err "put --ignore-value on a missing key" "etcdserver: key not found" 3 put nokey --ignore-value

# ---- delete ------------------------------------------------------------
expect_out "del one key (revision 9)" 3 del foo1 <<'EOF'
1
EOF
expect_out "del a missing key" 1 del foo1 <<'EOF'
0
EOF
expect_out "del --prefix --prev-kv (revision 10)" 1 del foo --prefix --prev-kv <<'EOF'
3
foo
bar-v3
foo2
bar2
foo3
bar3
EOF
expect_out "get --prefix after delete" 2 get foo --prefix <<'EOF'
EOF
FIELDS=1 expect_out "deleted key reappears with a new create revision (revision 11)" 3 put foo again -w fields <<'EOF'
"Revision" : 11
EOF
FIELDS=1 expect_out "recreated key has version 1" 1 get foo -w fields <<'EOF'
"Revision" : 11
"Key" : "foo"
"CreateRevision" : 11
"ModRevision" : 11
"Version" : 1
"Value" : "again"
"Lease" : 0
"More" : false
"Count" : 1
EOF

# ---- txn (interactive mode fed on stdin) -------------------------------
expect_out "put k1 (revision 12)" 1 put k1 v1 <<'EOF'
OK
EOF
IN=$'value("k1") = "v1"\n\nput k2 yes\nget k1\n\nput k2 no\n\n' \
  expect_out "txn: value compare true runs the success branch (revision 13)" 2 txn -i <<'EOF'
compares:
success requests (get, put, del):
failure requests (get, put, del):
SUCCESS

OK

k1
v1
EOF
IN=$'value("k1") = "nope"\n\nput k2 yes\n\nput k2 no\nget k2\n\n' \
  expect_out "txn: value compare false runs the failure branch (revision 14)" 3 txn -i <<'EOF'
compares:
success requests (get, put, del):
failure requests (get, put, del):
FAILURE

OK

k2
no
EOF
# Each sub-response header carries the revision as the txn saw it at that
# op: the get runs before the delete, so it reports 14, the delete 15.
IN=$'mod("k1") = "12"\ncreate("k2") = "13"\nversion("k2") = "2"\nvalue("k2") != "yes"\n\nget k2\ndel k2\n\n\n' \
  FIELDS=1 expect_out "txn: mod/create/version/!= compares, -w fields (revision 15)" 1 txn -i -w fields <<'EOF'
compares:
success requests (get, put, del):
failure requests (get, put, del):
"Revision" : 15
"Succeeded" : true
"Revision" : 14
"Key" : "k2"
"CreateRevision" : 13
"ModRevision" : 14
"Version" : 2
"Value" : "no"
"Lease" : 0
"More" : false
"Count" : 1
"Revision" : 15
"Deleted" : 1
EOF
IN=$'version("k2") > "0"\n\nput k3 a\n\nget k1 --prefix\n\n' \
  expect_out "txn: compare on a deleted key fails, failure branch reads" 2 txn -i <<'EOF'
compares:
success requests (get, put, del):
failure requests (get, put, del):
FAILURE

k1
v1
EOF
IN=$'create("k2") = "0"\nmod("k1") < "13"\n\nput k2 fresh\n\n\n' \
  expect_out "txn: create == 0 (put if absent) (revision 16)" 3 txn -i <<'EOF'
compares:
success requests (get, put, del):
failure requests (get, put, del):
SUCCESS

OK
EOF

# ---- writes through every member, read on every member -----------------
# At least two of the three members are followers, so this covers a write
# sent to a follower and linearizable reads served by followers.
for w in 1 2 3; do
  expect_out "put via member $w (revision $((16 + w)))" "$w" put "via$w" "written-on-$w" <<'EOF'
OK
EOF
  for r in 1 2 3; do
    expect_out "key written via member $w read on member $r" "$r" get "via$w" <<EOF
via$w
written-on-$w
EOF
  done
done
# Revision is now 19.

# ---- compaction --------------------------------------------------------
expect_out "compaction" 2 compaction 14 <<'EOF'
compacted revision 14
EOF
expect_err "get --rev below the compaction" "etcdserver: mvcc: required revision has been compacted" 1 get k2 --rev 13
expect_err "get --rev below the compaction on another member" "etcdserver: mvcc: required revision has been compacted" 3 get k2 --rev 12
expect_out "get --rev at the compaction revision still works" 2 get k2 --rev 14 <<'EOF'
k2
no
EOF
expect_err "compaction at the compacted revision" "etcdserver: mvcc: required revision has been compacted" 1 compaction 14
expect_err "compaction in the future" "etcdserver: mvcc: required revision is a future revision" 3 compaction 100
FIELDS=1 expect_out "compaction does not change the revision" 1 get via3 -w fields <<'EOF'
"Revision" : 19
"Key" : "via3"
"CreateRevision" : 19
"ModRevision" : 19
"Version" : 1
"Value" : "written-on-3"
"Lease" : 0
"More" : false
"Count" : 1
EOF

echo "etcdctl.sh: all $checks checks passed against $server"
