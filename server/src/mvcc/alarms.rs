//! The replicated alarm table (etcd's `alarmStore`): which member raised
//! which alarm. Alarms change only by applying an `Alarm` command, so every
//! member agrees on them; while a NOSPACE alarm is active the state machine
//! refuses the writes that grow the store (see `apply`).

use std::collections::BTreeSet;
use std::sync::Arc;

use witan_proto::etcdserverpb::{AlarmMember, AlarmType};

/// The active alarms. Cloning is cheap (the set is shared until changed),
/// which matters because the state is cloned on every apply call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alarms {
    /// (member id, alarm type) pairs; `AlarmType::None` is never stored.
    active: Arc<BTreeSet<(u64, i32)>>,
}

impl Alarms {
    /// The alarms restored from storage; NONE entries are dropped.
    pub fn restore(members: impl IntoIterator<Item = AlarmMember>) -> Self {
        let active = members
            .into_iter()
            .filter(|m| m.alarm != AlarmType::None as i32)
            .map(|m| (m.member_id, m.alarm))
            .collect();
        Alarms {
            active: Arc::new(active),
        }
    }

    /// Raises `alarm` for `member`; the activated alarm, or `None` when it
    /// was already active (or is NONE), as etcd answers.
    pub(super) fn activate(&mut self, member: u64, alarm: i32) -> Option<AlarmMember> {
        if alarm == AlarmType::None as i32 || self.active.contains(&(member, alarm)) {
            return None;
        }
        Arc::make_mut(&mut self.active).insert((member, alarm));
        Some(member_of(member, alarm))
    }

    /// Clears `alarm` of `member`; the cleared alarm, or `None` when it was
    /// not active.
    pub(super) fn deactivate(&mut self, member: u64, alarm: i32) -> Option<AlarmMember> {
        if !self.active.contains(&(member, alarm)) {
            return None;
        }
        Arc::make_mut(&mut self.active).remove(&(member, alarm));
        Some(member_of(member, alarm))
    }

    /// The active alarms of type `alarm` (all of them for NONE), ordered by
    /// member id then type.
    pub fn list(&self, alarm: i32) -> Vec<AlarmMember> {
        self.active
            .iter()
            .filter(|(_, a)| alarm == AlarmType::None as i32 || *a == alarm)
            .map(|(m, a)| member_of(*m, *a))
            .collect()
    }

    /// Whether any member raised NOSPACE (writes that grow the store are
    /// refused cluster-wide, as in etcd).
    pub fn no_space(&self) -> bool {
        self.active
            .iter()
            .any(|(_, a)| *a == AlarmType::Nospace as i32)
    }

    /// Whether `member` has `alarm` active.
    pub fn is_active(&self, member: u64, alarm: AlarmType) -> bool {
        self.active.contains(&(member, alarm as i32))
    }

    /// Whether no alarm is active.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

fn member_of(member: u64, alarm: i32) -> AlarmMember {
    AlarmMember {
        member_id: member,
        alarm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activate_and_deactivate_answer_like_etcd() {
        let mut alarms = Alarms::default();
        let nospace = AlarmType::Nospace as i32;
        assert_eq!(alarms.activate(7, nospace), Some(member_of(7, nospace)));
        assert_eq!(alarms.activate(7, nospace), None, "already active");
        assert_eq!(alarms.activate(7, AlarmType::None as i32), None);
        assert!(alarms.no_space());
        alarms.activate(3, AlarmType::Corrupt as i32);
        assert_eq!(alarms.list(AlarmType::None as i32).len(), 2);
        assert_eq!(alarms.list(nospace), vec![member_of(7, nospace)]);
        assert_eq!(alarms.deactivate(9, nospace), None, "not active");
        assert_eq!(alarms.deactivate(7, nospace), Some(member_of(7, nospace)));
        assert!(!alarms.no_space());
    }

    #[test]
    fn clones_are_independent() {
        let mut a = Alarms::default();
        let b = a.clone();
        a.activate(1, AlarmType::Nospace as i32);
        assert!(b.is_empty());
        assert_eq!(Alarms::restore(a.list(0)), a);
    }
}
