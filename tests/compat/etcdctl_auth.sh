#!/usr/bin/env bash
# etcdctl_auth.sh: etcdctl's authentication commands against a fresh
# 3-member cluster of a server: `auth enable|disable`, `user
# add|get|list|delete|passwd|grant-role|revoke-role`, `role
# add|get|list|delete|grant-permission|revoke-permission` (a key, a range,
# a prefix) and `--user`, checking exit statuses, exact output and etcd's
# error texts. A user with READ on the prefix /app/ reads there, and
# neither writes there nor reads, watches, locks or elects elsewhere;
# wrong passwords are refused; a non-root user cannot manage auth, members
# or snapshots; after `auth disable` everything is open again.
#
# Usage: tests/compat/etcdctl_auth.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl_auth.sh etcd
#        tests/compat/etcdctl_auth.sh target/debug/witan
# Both servers get `--bcrypt-cost 4` (the lowest bcrypt allows), so hashing
# the passwords here costs milliseconds. Commands go to different members,
# so each check also shows that auth state is replicated. Exits non-zero
# with the members' logs on the first mismatch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl_auth.sh
COMPAT_CLUSTER=AUTH

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift
flags=(--bcrypt-cost 4 "$@")

cluster_start AUTH "$server" 3 "${flags[@]}" || {
  echo "$COMPAT_SCRIPT: cluster did not start" >&2
  exit 1
}
work=$(mktemp -d "${TMPDIR:-/tmp}/auth.XXXXXX")
trap 'rm -rf "$work"; cluster_cleanup_all' EXIT

ROOT=(--user root:rootpw)
ALICE=(--user alice:alicepw)

# expect_denied DESC I ARGS...: `ctl I ARGS...` fails with a permission
# error. For the maintenance calls whose text differs between servers
# (etcd 3.4 says "auth: permission denied" with code Unknown there, a slip
# in its error mapping, and "etcdserver: permission denied" elsewhere).
expect_denied() {
  local desc=$1
  shift
  local out status=0
  out=$(ctl "$@" 2>&1 </dev/null) || status=$?
  [ "$status" -ne 0 ] || fail "$desc: etcdctl $* succeeded: $out"
  grep -qF "permission denied" <<<"$out" || {
    printf -- '--- output:\n%s\n' "$out" >&2
    fail "$desc: expected a permission denied error"
  }
  ok "$desc"
}

# ---- before auth is enabled ------------------------------------------------
expect_err "auth enable without a root user is refused" \
  "etcdserver: root user does not exist" 1 auth enable
expect "user add root" 1 user add root:rootpw <<'EOF'
User root created
EOF
expect_err "adding a user twice is refused" "etcdserver: user name already exists" \
  2 user add root:other
expect "role add reader" 2 role add reader <<'EOF'
Role reader created
EOF
expect_err "adding a role twice is refused" "etcdserver: role name already exists" \
  3 role add reader
expect "grant-permission read on the prefix /app/" 3 \
  role grant-permission reader read /app/ --prefix <<'EOF'
Role reader updated
EOF
expect "role get shows the prefix as a range" 1 role get reader <<'EOF'
Role reader
KV Read:
	[/app/, /app0) (prefix /app/)
KV Write:
EOF
expect "user add alice" 2 user add alice:alicepw <<'EOF'
User alice created
EOF
expect "user grant-role alice reader" 3 user grant-role alice reader <<'EOF'
Role reader is granted to user alice
EOF
expect "user get alice" 1 user get alice <<'EOF'
User: alice
Roles: reader
EOF
expect "user get --detail shows the role's permissions" 2 user get alice --detail <<'EOF'
User: alice

Role reader
KV Read:
	[/app/, /app0) (prefix /app/)
KV Write:
EOF
expect "user list" 3 user list <<'EOF'
alice
root
EOF
expect "put /app/a before auth" 1 put /app/a v1 <<'EOF'
OK
EOF
expect "put /secret/s before auth" 1 put /secret/s s1 <<'EOF'
OK
EOF

# etcdctl grants the root role to root itself when the server answers
# "root user does not have root role" (etcdserver.ErrRootRoleNotExist):
# the documented way of enabling auth.
expect "auth enable with a root user" 2 auth enable <<'EOF'
Authentication Enabled
EOF
expect "the root role exists now" 3 "${ROOT[@]}" role list <<'EOF'
reader
root
EOF
expect "user get root" 1 "${ROOT[@]}" user get root <<'EOF'
User: root
Roles: root
EOF

# ---- authentication --------------------------------------------------------
expect_err "a request without a user is refused" "etcdserver: user name is empty" \
  1 get /app/a
expect_err "a wrong password is refused" \
  "etcdserver: authentication failed, invalid user ID or password" 2 --user root:wrong get /app/a
expect_err "an unknown user is refused like a wrong password" \
  "etcdserver: authentication failed, invalid user ID or password" 3 --user mallory:pw get /app/a
expect "root writes anywhere" 1 "${ROOT[@]}" put /secret/s s2 <<'EOF'
OK
EOF
expect "root reads anywhere" 2 "${ROOT[@]}" get /secret/s <<'EOF'
/secret/s
s2
EOF

# ---- a read-only user on /app/ ---------------------------------------------
expect "alice reads in /app/" 1 "${ALICE[@]}" get /app/a <<'EOF'
/app/a
v1
EOF
expect "alice reads the prefix /app/" 2 "${ALICE[@]}" get /app/ --prefix <<'EOF'
/app/a
v1
EOF
expect_err "alice cannot write in /app/" "etcdserver: permission denied" \
  3 "${ALICE[@]}" put /app/a v2
expect_err "alice cannot delete in /app/" "etcdserver: permission denied" \
  1 "${ALICE[@]}" del /app/a
expect_err "alice cannot read /secret/s" "etcdserver: permission denied" \
  2 "${ALICE[@]}" get /secret/s
expect_err "alice cannot read every key" "etcdserver: permission denied" \
  3 "${ALICE[@]}" get "" --prefix
# A txn is checked on every key it touches, whichever branch runs.
txn_denied() {
  local desc=$1 script=$2 out status=0
  out=$(ctl 1 "${ALICE[@]}" txn <<<"$script" 2>&1) || status=$?
  [ "$status" -ne 0 ] || fail "$desc: txn succeeded: $out"
  grep -qF "Error: etcdserver: permission denied" <<<"$out" || {
    printf -- '--- output:\n%s\n' "$out" >&2
    fail "$desc: expected \"Error: etcdserver: permission denied\""
  }
  ok "$desc"
}
txn_denied "a txn reading /secret/s in its failure branch is refused" \
  $'value("/app/a") = "v1"\n\nget /app/a\n\nget /secret/s\n'
txn_denied "a txn writing in /app/ is refused" $'\nput /app/b x\n\n'
# etcd cancels the watch with CancelReason set to the whole gRPC error
# text of ErrGRPCPermissionDenied, which etcdctl prints as it is.
out=$(ctl 2 "${ALICE[@]}" watch /secret/ --prefix 2>&1 </dev/null) && fail "watch /secret/ succeeded: $out"
grep -qF "watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)" \
  <<<"$out" || fail "watch /secret/ printed: $out"
ok "alice cannot watch /secret/"
expect_err "alice cannot lock /secret/l" "etcdserver: permission denied" \
  3 "${ALICE[@]}" lock /secret/l echo locked
expect_err "alice cannot campaign on /secret/e" "etcdserver: permission denied" \
  1 "${ALICE[@]}" elect /secret/e candidate
expect_err "alice cannot list users" "etcdserver: permission denied" \
  2 "${ALICE[@]}" user list
expect_err "alice cannot change her password" "etcdserver: permission denied" \
  3 "${ALICE[@]}" user passwd alice --interactive=false <<<"newpw"
expect_err "alice cannot disable auth" "etcdserver: permission denied" \
  1 "${ALICE[@]}" auth disable
expect_err "alice cannot add a member" "etcdserver: permission denied" \
  2 "${ALICE[@]}" member add n4 --peer-urls=http://127.0.0.1:1
expect_denied "alice cannot defragment" 3 "${ALICE[@]}" defrag
expect_denied "alice cannot save a snapshot" 1 "${ALICE[@]}" snapshot save "$work/snap.db"
[ ! -e "$work/snap.db" ] || fail "a snapshot file was written for alice"
# etcd serves the member list to any authenticated user.
out=$(ctl 2 "${ALICE[@]}" member list 2>&1) || fail "member list as alice: $out"
[ "$(grep -c ', started, ' <<<"$out")" = 3 ] || fail "member list as alice printed: $out"
ok "alice lists the members"

# ---- permissions change ----------------------------------------------------
expect "grant-permission write on one key" 3 "${ROOT[@]}" \
  role grant-permission reader write /app/x <<'EOF'
Role reader updated
EOF
expect "grant-permission readwrite on a range" 1 "${ROOT[@]}" \
  role grant-permission reader readwrite /b /c <<'EOF'
Role reader updated
EOF
expect "role get shows the key, the range and the prefix" 2 "${ROOT[@]}" role get reader <<'EOF'
Role reader
KV Read:
	[/app/, /app0) (prefix /app/)
	[/b, /c) (prefix /b)
KV Write:
	/app/x
	[/b, /c) (prefix /b)
EOF
expect "alice writes the key she may write" 3 "${ALICE[@]}" put /app/x x1 <<'EOF'
OK
EOF
expect "alice writes in the range" 1 "${ALICE[@]}" put /b1 b <<'EOF'
OK
EOF
expect_err "but not past its end" "etcdserver: permission denied" \
  2 "${ALICE[@]}" put /c v
expect "revoke-permission on a range" 3 "${ROOT[@]}" role revoke-permission reader /b /c <<'EOF'
Permission of range [/b, /c) is revoked from role reader
EOF
expect "revoke-permission on a key" 1 "${ROOT[@]}" role revoke-permission reader /app/x <<'EOF'
Permission of key /app/x is revoked from role reader
EOF
expect_err "revoking a permission the role lacks is refused" \
  "etcdserver: permission is not granted to the role" 2 "${ROOT[@]}" role revoke-permission reader /zzz
expect_err "alice cannot write /app/x any more" "etcdserver: permission denied" \
  3 "${ALICE[@]}" put /app/x x2
expect_err "nor in the range" "etcdserver: permission denied" \
  1 "${ALICE[@]}" put /b1 b2
expect "role get after the revokes" 2 "${ROOT[@]}" role get reader <<'EOF'
Role reader
KV Read:
	[/app/, /app0) (prefix /app/)
KV Write:
EOF

# ---- passwords and roles ---------------------------------------------------
ctl 3 "${ROOT[@]}" user passwd alice --interactive=false <<<"newpw" >"$work/out" 2>&1 ||
  fail "user passwd: $(cat "$work/out")"
[ "$(cat "$work/out")" = "Password updated" ] || fail "user passwd printed: $(cat "$work/out")"
ok "user passwd alice"
expect_err "the old password is refused" \
  "etcdserver: authentication failed, invalid user ID or password" 1 "${ALICE[@]}" get /app/a
expect "the new password works" 2 --user alice:newpw get /app/a --print-value-only <<'EOF'
v1
EOF
expect "user revoke-role" 3 "${ROOT[@]}" user revoke-role alice reader <<'EOF'
Role reader is revoked from user alice
EOF
expect_err "revoking a role the user lacks is refused" \
  "etcdserver: role is not granted to the user" 1 "${ROOT[@]}" user revoke-role alice reader
expect_err "without the role alice reads nothing" "etcdserver: permission denied" \
  2 --user alice:newpw get /app/a
expect_err "user get of an unknown user" "etcdserver: user name not found" \
  3 "${ROOT[@]}" user get nobody
expect_err "role get of an unknown role" "etcdserver: role name not found" \
  1 "${ROOT[@]}" role get nobody
expect_err "granting an unknown role is refused" "etcdserver: role name not found" \
  2 "${ROOT[@]}" user grant-role alice nobody

# ---- deleting, then disabling ----------------------------------------------
expect "user delete" 3 "${ROOT[@]}" user delete alice <<'EOF'
User alice deleted
EOF
expect_err "deleting a deleted user is refused" "etcdserver: user name not found" \
  1 "${ROOT[@]}" user delete alice
expect_err "a deleted user cannot log in" \
  "etcdserver: authentication failed, invalid user ID or password" 2 --user alice:newpw get /app/a
expect "role delete" 3 "${ROOT[@]}" role delete reader <<'EOF'
Role reader deleted
EOF
expect "user list after the delete" 1 "${ROOT[@]}" user list <<'EOF'
root
EOF
expect "role list after the delete" 2 "${ROOT[@]}" role list <<'EOF'
root
EOF
expect_err "the root user keeps the root role while auth is on" \
  "etcdserver: invalid auth management" 3 "${ROOT[@]}" user revoke-role root root
expect "auth disable" 1 "${ROOT[@]}" auth disable <<'EOF'
Authentication Disabled
EOF
expect "without auth anyone reads /secret/s" 2 get /secret/s <<'EOF'
/secret/s
s2
EOF
expect "without auth anyone writes" 3 put /app/a v3 <<'EOF'
OK
EOF
expect "auth disable twice is fine" 1 auth disable <<'EOF'
Authentication Disabled
EOF
expect "user delete root" 2 user delete root <<'EOF'
User root deleted
EOF
expect "no users left" 3 user list <<'EOF'
EOF

echo "$COMPAT_SCRIPT: all $checks checks passed"
