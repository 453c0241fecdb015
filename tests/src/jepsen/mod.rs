//! A Jepsen-style fault suite: concurrent clients record a history against a
//! real cluster while a nemesis injects faults; checks then decide whether
//! the cluster ever lied.

pub mod check;
pub mod history;
