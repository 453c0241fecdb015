//! What a failed attempt means and what to do next: move to another
//! member and try again, or give the caller an error.
//!
//! The rule: a call is repeated only when repeating it cannot apply
//! anything twice. Reads, keepalives and watch creation are always safe;
//! a write is repeated only when it certainly never took effect (the
//! connection could not be made, or the member answered that no leader
//! was known, which witan only says before proposing).

use std::time::Duration;

use tonic::{Code, Status};

use crate::error::Error;

/// Whether a call may be repeated after it reached a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotence {
    /// Reads, keepalives, watch creation: repeating changes nothing.
    Safe,
    /// Writes: repeating may apply twice.
    Write,
}

/// What a failed attempt tells about the request.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The request certainly did not take effect, and another member may
    /// serve it.
    NotApplied(Status),
    /// The answer was lost or the member gave up mid-way: a write may or
    /// may not have been applied; another member may serve a retry.
    Unknown(Status),
    /// The member answered; this is the call's result.
    Answered(Status),
}

/// etcd's text for "no leader": witan sends it only for a write it never
/// proposed (or a read it never served), so the request had no effect.
const NO_LEADER: &str = "etcdserver: no leader";

/// Classifies a failed attempt's status.
pub(crate) fn classify(status: Status) -> Fault {
    if never_connected(&status) {
        return Fault::NotApplied(status);
    }
    // A status the client library made up (it carries its cause as a
    // source) means the transport failed: nothing came back.
    if std::error::Error::source(&status).is_some() {
        return Fault::Unknown(status);
    }
    match status.code() {
        Code::Unavailable if status.message().contains(NO_LEADER) => Fault::NotApplied(status),
        // A member that gave up waiting (for raft, for its own deadline)
        // cannot say whether a write it passed on was applied.
        Code::Unavailable | Code::DeadlineExceeded => Fault::Unknown(status),
        _ => Fault::Answered(status),
    }
}

/// Whether the connection to the member could not be established, so the
/// request was never sent.
fn never_connected(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// What to do after a failed attempt.
#[derive(Debug)]
pub(crate) enum Next {
    /// Move to the next member and try again (while the deadline allows).
    Failover(Status),
    /// Stop with this error.
    Fail(Error),
}

/// Decides what follows a failed attempt of a call of the given kind.
pub(crate) fn next(kind: Idempotence, fault: Fault) -> Next {
    match (fault, kind) {
        (Fault::NotApplied(status), _) | (Fault::Unknown(status), Idempotence::Safe) => {
            Next::Failover(status)
        }
        (Fault::Unknown(status), Idempotence::Write) => Next::Fail(Error::OutcomeUnknown {
            message: status.message().to_string(),
        }),
        (Fault::Answered(status), _) => Next::Fail(Error::from_answer(&status)),
    }
}

/// The error for a call whose deadline passed while an attempt was in
/// flight.
pub(crate) fn deadline_passed(kind: Idempotence) -> Error {
    match kind {
        Idempotence::Safe => Error::Timeout,
        Idempotence::Write => Error::OutcomeUnknown {
            message: "deadline exceeded while the write was in flight".into(),
        },
    }
}

/// The error for a call that ran out of time between attempts: nothing
/// it sent took effect (a write that might have is failed at once).
pub(crate) fn gave_up(last: Option<Status>) -> Error {
    match last {
        Some(status) => Error::Unavailable {
            message: status.message().to_string(),
        },
        None => Error::Timeout,
    }
}

/// Pauses between rounds over every member: short at first (a leader
/// election takes a few hundred milliseconds), growing to a cap.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(500);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { next: FIRST_PAUSE }
    }

    /// The next pause, doubling up to the cap.
    pub(crate) fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(MAX_PAUSE);
        pause
    }

    /// Back to short pauses (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_refused() -> Status {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = tonic::ConnectError(Box::new(io));
        Status::from_error(Box::new(err))
    }

    fn connection_reset() -> Status {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        Status::from_error(Box::new(io))
    }

    #[test]
    fn a_refused_connection_is_retried_even_for_writes() {
        let status = connect_refused();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(matches!(
            next(Idempotence::Write, classify(status)),
            Next::Failover(_)
        ));
    }

    #[test]
    fn a_broken_connection_makes_a_write_unknown_and_a_read_retried() {
        assert!(matches!(
            next(Idempotence::Write, classify(connection_reset())),
            Next::Fail(Error::OutcomeUnknown { .. })
        ));
        assert!(matches!(
            next(Idempotence::Safe, classify(connection_reset())),
            Next::Failover(_)
        ));
    }

    #[test]
    fn no_leader_is_retried_for_writes_but_other_unavailable_is_not() {
        let no_leader = Status::unavailable("etcdserver: no leader");
        assert!(matches!(
            next(Idempotence::Write, classify(no_leader)),
            Next::Failover(_)
        ));
        let timed_out = Status::unavailable("etcdserver: request timed out");
        assert!(matches!(
            next(Idempotence::Write, classify(timed_out)),
            Next::Fail(Error::OutcomeUnknown { .. })
        ));
        let stopped = Status::unavailable("etcdserver: server stopped");
        assert!(matches!(
            next(Idempotence::Safe, classify(stopped)),
            Next::Failover(_)
        ));
    }

    #[test]
    fn answers_are_final() {
        let compacted =
            Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert!(matches!(
            next(Idempotence::Safe, classify(compacted)),
            Next::Fail(Error::Compacted { .. })
        ));
        let bad = Status::invalid_argument("etcdserver: key is not provided");
        assert!(matches!(
            next(Idempotence::Write, classify(bad)),
            Next::Fail(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn timeouts_say_whether_anything_changed() {
        assert!(matches!(deadline_passed(Idempotence::Safe), Error::Timeout));
        assert!(matches!(
            deadline_passed(Idempotence::Write),
            Error::OutcomeUnknown { .. }
        ));
        assert!(matches!(
            gave_up(Some(connect_refused())),
            Error::Unavailable { .. }
        ));
        assert!(matches!(gave_up(None), Error::Timeout));
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<_> = (0..7).map(|_| b.pause()).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), MAX_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        b.reset();
        assert_eq!(b.pause(), FIRST_PAUSE);
    }
}
