//! The recipes this member serves (etcd's Lock and Election services and
//! `witan.recipes.v1`) run the `witan-recipes` crate over [`LocalCore`],
//! the member's own KV core called in-process.

mod local_core;

pub use local_core::LocalCore;
