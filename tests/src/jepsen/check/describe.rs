//! How the checks name what they found: one line per recorded item, with its
//! client, key, what it did, when and how it ended, so an explanation can be
//! read side by side with the recording.

use crate::jepsen::history::{
    FencedWrite, LockHold, Nanos, Outcome, RegisterOp, RegisterOperation, ResourceVersion,
    WatchEvent,
};

/// A run time as seconds with every nanosecond shown, so two instants that
/// decide a real-time order never print alike.
pub(crate) fn time(t: Nanos) -> String {
    format!("{}.{:09}s", t / 1_000_000_000, t % 1_000_000_000)
}

/// A register value (`absent`: the key did not exist).
pub(crate) fn value(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "absent".to_string(),
    }
}

/// An outcome in lower case.
pub(crate) fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Unknown => "unknown",
    }
}

/// What a register operation did, without its key or times.
pub(crate) fn register_op_kind(op: &RegisterOp) -> String {
    match op {
        RegisterOp::Read { observed } => format!("read -> {}", value(*observed)),
        RegisterOp::Write { value: v } => format!("write {v}"),
        RegisterOp::Cas { expected, new } => format!("cas {} -> {new}", value(*expected)),
    }
}

/// A register operation on one line.
pub(crate) fn register_op(op: &RegisterOperation) -> String {
    format!(
        "p{} key {:?} {} [{} .. {}] {}",
        op.process,
        op.key,
        register_op_kind(&op.op),
        time(op.invoke),
        time(op.complete),
        outcome(op.outcome)
    )
}

/// A fenced write on one line.
pub(crate) fn fenced_write(w: &FencedWrite) -> String {
    format!(
        "p{} fenced write token {} seq {} [{} .. {}] {}",
        w.process,
        w.token,
        w.seq,
        time(w.invoke),
        time(w.complete),
        outcome(w.outcome)
    )
}

/// A version of the fenced resource on one line.
pub(crate) fn resource_version(v: &ResourceVersion) -> String {
    format!("revision {}: token {} seq {}", v.revision, v.token, v.seq)
}

/// A lock hold on one line.
pub(crate) fn lock_hold(h: &LockHold) -> String {
    format!(
        "p{} held token {} (lease {:x}) [{} .. {})",
        h.process,
        h.token,
        h.lease,
        time(h.acquired),
        time(h.released)
    )
}

/// A watch event on one line.
pub(crate) fn watch_event(e: &WatchEvent) -> String {
    format!("revision {} {:?} {:?}", e.revision, e.kind, e.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_every_nanosecond() {
        assert_eq!(time(0), "0.000000000s");
        assert_eq!(time(1_500_000_007), "1.500000007s");
    }

    #[test]
    fn register_operations_print_on_one_line() {
        let op = RegisterOperation {
            process: 3,
            key: "r1".into(),
            op: RegisterOp::Cas {
                expected: None,
                new: 7,
            },
            invoke: 10,
            complete: 2_000_000_000,
            outcome: Outcome::Unknown,
        };
        assert_eq!(
            register_op(&op),
            "p3 key \"r1\" cas absent -> 7 [0.000000010s .. 2.000000000s] unknown"
        );
        let read = RegisterOp::Read { observed: Some(4) };
        assert_eq!(register_op_kind(&read), "read -> 4");
    }
}
