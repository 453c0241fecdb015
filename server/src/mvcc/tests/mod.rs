//! Behaviour tests of the MVCC state machine, one file per area, driven
//! through `KvState::apply` / `KvState::range` with an in-memory history.

mod alarms;
mod history;
mod leases;
mod model;
mod range;
mod txn;
mod write;
