#!/usr/bin/env bash
# lib.sh: what the compatibility scripts share once they have a cluster
# (cluster.sh): failing with the members' logs, counting checks, etcdctl
# against one member, polling a condition with a deadline, and checking a
# command's output or error (expect, expect_err).
#
# Source it after cluster.sh, having set:
#   COMPAT_SCRIPT   the script's name, for messages
#   COMPAT_CLUSTER  the NAME its cluster is started under (cluster_start NAME)
# Tunables (environment): ETCDCTL (default etcdctl); WAIT_DEADLINE, the
# seconds wait_until polls before failing (default 30: far above the worst
# case on a loaded machine, since only a bug reaches it).

ETCDCTL=${ETCDCTL:-etcdctl}
WAIT_DEADLINE=${WAIT_DEADLINE:-30}
checks=0

# fail MESSAGE: prints it with the members' logs and exits non-zero.
fail() {
  echo "$COMPAT_SCRIPT: FAIL: $*" >&2
  cluster_logs "$COMPAT_CLUSTER"
  exit 1
}

# ok DESCRIPTION: counts and reports a passed check.
ok() {
  checks=$((checks + 1))
  echo "ok $checks - $1"
}

# The client URL of member I (1-based).
ep() { eval "printf '%s' \"\$${COMPAT_CLUSTER}_EP_$1\""; }

# Runs etcdctl against member I: ctl I ARGS...
ctl() {
  local i=$1
  shift
  ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(ep "$i")" --dial-timeout=2s \
    --command-timeout=5s "$@"
}

# The same for a background job: `ctl_bg I ARGS... &` makes the job's
# process etcdctl itself, so $! is etcdctl's pid and signals reach it.
ctl_bg() {
  local i=$1
  shift
  exec env ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(ep "$i")" --dial-timeout=2s \
    --command-timeout=5s "$@"
}

# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds; fails
# after WAIT_DEADLINE seconds.
wait_until() {
  local what=$1
  shift
  local deadline=$((SECONDS + WAIT_DEADLINE))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "timed out after ${WAIT_DEADLINE}s waiting until $what"
    fi
    sleep 0.05
  done
}

# Keeps the fields of `-w fields` output that must agree between servers:
# cluster and member ids and the raft term are per-cluster accidents.
stable_fields() { grep -vE '^"(ClusterID|MemberID|RaftTerm)" : ' || true; }

# expect DESC I ARGS... <<EXPECTED: `ctl I ARGS...` succeeds and prints
# EXPECTED, once its output went through EXPECT_FILTER (a command reading
# stdin; default cat) and then $FILTER when set (for one call:
# `FILTER=f expect ...`).
expect() {
  local desc=$1
  shift
  local expected actual status=0 out err
  expected=$(cat)
  out=$(mktemp) err=$(mktemp)
  ctl "$@" >"$out" 2>"$err" </dev/null || status=$?
  actual=$(${EXPECT_FILTER:-cat} <"$out" | ${FILTER:-cat})
  if [ "$status" -ne 0 ]; then
    cat "$err" >&2
    rm -f "$out" "$err"
    fail "$desc: etcdctl $* exited with status $status"
  fi
  rm -f "$out" "$err"
  if [ "$actual" != "$expected" ]; then
    printf -- '--- expected:\n%s\n--- actual:\n%s\n---\n' "$expected" "$actual" >&2
    fail "$desc: etcdctl $* printed something else"
  fi
  ok "$desc"
}

# expect_err DESC MESSAGE I ARGS...: `ctl I ARGS...` fails, printing the
# line "Error: MESSAGE".
expect_err() {
  local desc=$1 message=$2
  shift 2
  local out status=0
  out=$(ctl "$@" 2>&1 </dev/null) || status=$?
  if [ "$status" -eq 0 ]; then
    printf -- '--- output:\n%s\n' "$out" >&2
    fail "$desc: etcdctl $* succeeded, expected \"Error: $message\""
  fi
  if ! grep -qxF "Error: $message" <<<"$out"; then
    printf -- '--- output:\n%s\n' "$out" >&2
    fail "$desc: etcdctl $* did not print \"Error: $message\""
  fi
  ok "$desc"
}
