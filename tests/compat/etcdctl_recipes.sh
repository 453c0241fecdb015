#!/usr/bin/env bash
# etcdctl_recipes.sh: `etcdctl lock` and `etcdctl elect` contending against
# a fresh 3-member cluster of a server.
#
# Usage: tests/compat/etcdctl_recipes.sh SERVER_BINARY [extra server flags...]
#   e.g. tests/compat/etcdctl_recipes.sh etcd
#        tests/compat/etcdctl_recipes.sh target/debug/witan
#
# etcdctl builds its lock and election client-side (Txn on create revision
# 0, Range sorted by create revision with max_create_revision, Watch from a
# revision), so this checks that the core's semantics are exactly etcd's:
#   - three `etcdctl lock` processes on one name, each through a different
#     member: they hold it one at a time, in arrival order, with growing
#     fencing revisions (ETCD_LOCK_REV);
#   - a holder killed with SIGKILL: the next waiter gets the lock once the
#     dead holder's session lease expires;
#   - `etcdctl elect`: a second candidate waits, an observer (`elect -l`)
#     sees both leaders in order, and the first resigning (SIGINT) hands
#     leadership over.
# Nothing waits by sleeping: each wait polls a condition with a deadline.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=etcdctl_recipes.sh
COMPAT_CLUSTER=RC

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SERVER_BINARY [extra server flags...]" >&2
  exit 2
fi
server=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/etcdctl-recipes.XXXXXX")
# Background etcdctl processes, killed on exit.
pids=()

on_exit() {
  local pid
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  touch "$work/done" 2>/dev/null || true
  rm -rf "$work"
  cluster_cleanup_all
}
trap on_exit EXIT

# How many keys exist under PREFIX/.
keys_under() { ctl 1 get "$1/" --prefix --keys-only | grep -c . || true; }
has_keys() { [ "$(keys_under "$1")" -eq "$2" ]; }
exists() { [ -e "$1" ]; }

# holder NAME: the command a lock holder runs. It records entry and exit
# (with the fencing revision etcdctl passes), fails loudly if anyone else
# holds the lock, and holds until told to release.
holder() {
  local name=$1
  cat <<SH
if [ -e "$work/inside" ]; then echo "OVERLAP: $name entered while \$(cat "$work/inside") held the lock" >> "$work/errors"; fi
echo $name > "$work/inside"
echo "$name \$ETCD_LOCK_REV" >> "$work/order"
touch "$work/$name.in"
while [ ! -e "$work/$name.release" ]; do sleep 0.05; done
rm -f "$work/inside"
SH
}

cluster_start RC "$server" 3 "$@"
echo "etcdctl_recipes.sh: cluster ready at $RC_ENDPOINTS"

# ---- lock: three contenders, one at a time, in arrival order ------------
for i in 1 2 3; do
  name=w$i
  ctl_bg "$i" lock --ttl=5 L -- sh -c "$(holder "$name")" >"$work/$name.out" 2>&1 &
  pids+=($!)
  # The next contender arrives only once this one holds or queues.
  wait_until "contender $name is holding or queued" has_keys L "$i"
done
wait_until "w1 holds the lock" exists "$work/w1.in"
ok "first contender holds the lock, the others queue behind it"
[ ! -e "$work/w2.in" ] && [ ! -e "$work/w3.in" ] || fail "a queued contender got the lock"
touch "$work/w1.release"
wait_until "w2 holds the lock" exists "$work/w2.in"
[ ! -e "$work/w3.in" ] || fail "w3 got the lock while w2 held it"
ok "released lock goes to the next in arrival order"
touch "$work/w2.release"
wait_until "w3 holds the lock" exists "$work/w3.in"
touch "$work/w3.release"
wait_until "every contender released" has_keys L 0
[ ! -e "$work/errors" ] || fail "$(cat "$work/errors")"
order=$(cut -d' ' -f1 "$work/order" | tr '\n' ' ')
[ "$order" = "w1 w2 w3 " ] || fail "lock order was '$order', expected 'w1 w2 w3 '"
revs=$(cut -d' ' -f2 "$work/order" | paste -sd' ')
read -r r1 r2 r3 <<<"$revs"
[ "$r1" -lt "$r2" ] && [ "$r2" -lt "$r3" ] || fail "fencing revisions not increasing: $revs"
ok "lock held one at a time, in arrival order, fencing revisions $revs increasing"

# ---- lock: a killed holder's lock passes on after its TTL ---------------
ctl_bg 1 lock --ttl=3 K -- sh -c "touch '$work/k1.in'; while [ ! -e '$work/done' ]; do sleep 0.1; done" >"$work/k1.out" 2>&1 &
k1=$!
pids+=("$k1")
wait_until "k1 holds K" exists "$work/k1.in"
ctl_bg 2 lock --ttl=3 K -- sh -c "touch '$work/k2.in'" >"$work/k2.out" 2>&1 &
k2=$!
pids+=("$k2")
wait_until "k2 is queued on K" has_keys K 2
# etcdctl dies without closing its session; its command (the sleep) lives
# on, as an orphan, and is cleaned up below.
kill -9 "$k1"
wait "$k1" 2>/dev/null || true
killed_at=$SECONDS
wait_until "k2 gets K after k1's lease expires" exists "$work/k2.in"
wait "$k2" || fail "k2's etcdctl lock failed: $(cat "$work/k2.out")"
ok "lock of a SIGKILLed holder passed on after its lease expired ($((SECONDS - killed_at)) s)"
touch "$work/done"

# ---- elect: a second candidate waits, leadership passes on resign -------
ctl_bg 3 elect -l E >"$work/observe.out" 2>&1 &
pids+=($!)
ctl_bg 1 elect E valA >"$work/a.out" 2>&1 &
a=$!
pids+=("$a")
wait_until "candidate A leads" grep -q valA "$work/a.out"
wait_until "the observer sees A" grep -q valA "$work/observe.out"
ctl_bg 2 elect E valB >"$work/b.out" 2>&1 &
pids+=($!)
wait_until "candidate B is queued" has_keys E 2
[ ! -s "$work/b.out" ] || fail "B leads while A does: $(cat "$work/b.out")"
ok "second candidate waits while the first leads"
kill -INT "$a"
wait_until "candidate B leads" grep -q valB "$work/b.out"
wait_until "the observer sees B" grep -q valB "$work/observe.out"
key_a=$(head -1 "$work/a.out")
key_b=$(head -1 "$work/b.out")
[ "$key_a" != "$key_b" ] && [ "${key_a%%/*}" = E ] && [ "${key_b%%/*}" = E ] ||
  fail "unexpected leader keys '$key_a' and '$key_b'"
observed=$(sed -e "s|$key_a|<A>|; s|$key_b|<B>|" "$work/observe.out" | uniq | tr '\n' ' ')
[ "$observed" = "<A> valA <B> valB " ] || fail "observer printed '$observed'"
ok "leadership passed from A to B on resign; the observer saw A then B"

echo "etcdctl_recipes.sh: all $checks checks passed against $server"
