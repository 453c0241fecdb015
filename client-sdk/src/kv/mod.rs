//! Typed key-value calls: builders for Range, Put, DeleteRange, Txn and
//! Compact, and the responses they give, with no protobuf in user code.
//!
//! Each builder is generic over its target: made by a [`Client`](crate::Client)
//! method it runs when awaited; made detached ([`Get::new`], ...) it is a
//! transaction [`Op`].

mod compact;
mod compare;
mod delete;
mod get;
mod key_value;
mod put;
mod txn;

pub use compare::{Cmp, Compare};
pub use delete::{Delete, DeleteResponse};
pub use get::{Get, GetResponse, SortOrder, SortTarget};
pub(crate) use key_value::prefix_end;
pub use key_value::{Header, KeyValue};
pub use put::{Put, PutResponse};
pub use txn::{Op, OpResponse, Txn, TxnResponse};

/// The target of a builder that is not bound to a client: it becomes an
/// [`Op`] of a transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Detached;
