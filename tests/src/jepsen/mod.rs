//! A Jepsen-style fault suite: concurrent clients record a history against a
//! real cluster while a nemesis injects faults; checks then decide whether
//! the cluster ever lied.

pub mod check;
pub mod clock;
pub mod faults;
pub mod final_reads;
pub mod history;
pub mod locks;
pub mod nemesis;
pub mod registers;
pub mod runner;
pub mod stats;
pub mod watchers;
pub mod workload;
