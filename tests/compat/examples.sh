#!/usr/bin/env bash
# examples.sh: runs the example programs (examples/README.md) against a
# fresh 3-member witan cluster, as their README shows them:
#   - lock-workers run --pause: exact count, the paused worker's write refused;
#   - db-election demo: the primary killed, another takes over, no write of
#     an older leadership after a newer one;
#   - feature-flags: the app sees every change, also across the SIGKILL of
#     the member it watches through.
#
# Usage: tests/compat/examples.sh WITAN_BINARY EXAMPLES_DIR
#   e.g. tests/compat/examples.sh target/debug/witan target/debug
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/compat/cluster.sh
source "$here/cluster.sh"
# shellcheck source=tests/compat/lib.sh
source "$here/lib.sh"
COMPAT_SCRIPT=examples.sh
COMPAT_CLUSTER=EX

if [ "$#" -ne 2 ]; then
  echo "usage: $0 WITAN_BINARY EXAMPLES_DIR" >&2
  exit 2
fi
server=$1
bin=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/examples.XXXXXX")
app=

on_exit() {
  if [ -n "$app" ]; then
    kill "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
  fi
  rm -rf "$work"
  cluster_cleanup_all
}
trap on_exit EXIT

cluster_start EX "$server" 3
export WITAN_ENDPOINTS=$EX_ENDPOINTS

echo "--- lock-workers run --workers 4 --iterations 10 --pause"
"$bin/lock-workers" run --workers 4 --iterations 10 --pause | tee "$work/lock.out" ||
  fail "lock-workers failed"
grep -q "REFUSED" "$work/lock.out" || fail "the paused worker's stale write was not refused"
grep -q "^final count 40, expected 40" "$work/lock.out" || fail "wrong final count"

echo "--- db-election demo"
"$bin/db-election" demo | tee "$work/db.out" || fail "db-election demo failed"
grep -q "took over" "$work/db.out" || fail "no take-over reported"

echo "--- feature-flags across a member kill"
"$bin/feature-flags" watch >"$work/flags.out" 2>&1 &
app=$!
wait_until "the app has read the flags" grep -q "^flags at revision" "$work/flags.out"
"$bin/feature-flags" set a 1
wait_until "the app applied a=1" grep -q "a: unset -> 1" "$work/flags.out"
# The app connected to the first endpoint that answered: member 1.
kill -9 "$(echo "$EX_PIDS" | cut -d' ' -f1)"
"$bin/feature-flags" --endpoints "$EX_EP_2" set b 2
"$bin/feature-flags" --endpoints "$EX_EP_3" set a 3
wait_until "the app applied a=3" grep -q "a: 1 -> 3" "$work/flags.out"
changes=$(grep -c "^revision" "$work/flags.out")
[ "$changes" -eq 3 ] || fail "the app printed $changes changes, expected 3: $(cat "$work/flags.out")"
cat "$work/flags.out"
echo "examples.sh: all examples ran as their README says"
