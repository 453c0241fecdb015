//! Where a watch resumes after its stream breaks: the revision after the
//! last one it delivered (or that a progress notification vouched for),
//! and the filter that drops anything a new stream repeats.
//!
//! Pure logic, no I/O: the task in `task` feeds it what members send.

use witan_proto::mvccpb::Event;

/// The resume point of one watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The first revision not yet delivered; 0 until a watch that starts
    /// "now" is created.
    next: i64,
}

impl Resume {
    /// A watch from `start_revision` (0: from the revision after its
    /// creation).
    pub(crate) fn new(start_revision: i64) -> Self {
        Resume {
            next: start_revision.max(0),
        }
    }

    /// The start revision to ask for when (re)creating the watch.
    pub(crate) fn start_revision(&self) -> i64 {
        self.next
    }

    /// The member created the watch at `revision` (its current revision):
    /// a watch from "now" delivers what comes after it.
    pub(crate) fn on_created(&mut self, revision: i64) {
        if self.next == 0 {
            self.next = revision.saturating_add(1);
        }
    }

    /// Events from a member: keeps those not delivered before (a new
    /// stream may repeat revisions the old one sent) and moves the resume
    /// point past them. Members send whole revisions, so everything up to
    /// the last event's revision is then delivered.
    pub(crate) fn on_events(&mut self, events: Vec<Event>) -> Vec<Event> {
        let next = self.next;
        let fresh: Vec<Event> = events
            .into_iter()
            .filter(|e| revision_of(e).is_none_or(|r| r >= next))
            .collect();
        if let Some(last) = fresh.iter().filter_map(revision_of).max() {
            self.next = self.next.max(last.saturating_add(1));
        }
        fresh
    }

    /// A progress notification: everything up to `revision` was delivered.
    pub(crate) fn on_progress(&mut self, revision: i64) {
        if self.next > 0 {
            self.next = self.next.max(revision.saturating_add(1));
        }
    }
}

fn revision_of(event: &Event) -> Option<i64> {
    event.kv.as_ref().map(|kv| kv.mod_revision)
}

#[cfg(test)]
mod tests {
    use witan_proto::mvccpb::KeyValue;

    use super::*;

    fn event(revision: i64) -> Event {
        Event {
            kv: Some(KeyValue {
                key: format!("k{revision}").into_bytes(),
                mod_revision: revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn revisions(events: &[Event]) -> Vec<i64> {
        events.iter().filter_map(revision_of).collect()
    }

    #[test]
    fn a_watch_from_now_resumes_after_its_creation_revision() {
        let mut r = Resume::new(0);
        assert_eq!(r.start_revision(), 0);
        r.on_created(10);
        assert_eq!(r.start_revision(), 11);
        // A later creation (a reconnect) does not move it.
        r.on_created(20);
        assert_eq!(r.start_revision(), 11);
    }

    #[test]
    fn a_watch_from_a_revision_keeps_it_until_events_come() {
        let mut r = Resume::new(5);
        r.on_created(100);
        assert_eq!(r.start_revision(), 5);
        let kept = r.on_events(vec![event(5), event(6)]);
        assert_eq!(revisions(&kept), [5, 6]);
        assert_eq!(r.start_revision(), 7);
    }

    #[test]
    fn repeated_events_after_a_reconnect_are_dropped() {
        let mut r = Resume::new(1);
        r.on_events(vec![event(3), event(4)]);
        // The new stream starts at 5, but a member could repeat 4.
        let kept = r.on_events(vec![event(4), event(5), event(5)]);
        assert_eq!(revisions(&kept), [5, 5]);
        assert_eq!(r.start_revision(), 6);
        assert!(r.on_events(vec![event(2)]).is_empty());
        assert_eq!(r.start_revision(), 6);
    }

    #[test]
    fn progress_moves_the_resume_point_forward_only() {
        let mut r = Resume::new(0);
        r.on_progress(50);
        assert_eq!(
            r.start_revision(),
            0,
            "not created yet: nothing vouched for"
        );
        r.on_created(10);
        r.on_progress(30);
        assert_eq!(r.start_revision(), 31);
        r.on_progress(20);
        assert_eq!(r.start_revision(), 31);
    }
}
