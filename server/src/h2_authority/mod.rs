//! Client-connection adapter that repairs HTTP/2 `:authority` values the
//! `h2` crate would reject, before hyper and tonic see the connection.
//!
//! etcd's Go clients (etcdctl 3.4's `endpoint status`, `hashkv`, `defrag`,
//! `move-leader` and every `--cluster` command) send the endpoint text as
//! given, scheme included: `:authority: http://127.0.0.1:2379`. Go's server
//! takes it; `h2` answers RST_STREAM(PROTOCOL_ERROR) ("malformed authority")
//! before any witan code runs, and has no switch to relax that. So
//! [`AuthorityFix`] sits between the TCP stream and hyper: on a connection
//! that opens with the HTTP/2 client preface it follows the client's frames,
//! decodes every header block with a connection-long HPACK decoder and, when
//! an `:authority` carries a scheme or a path, rewrites it to the bare
//! `host:port`.
//!
//! Invariants:
//! - Server→client bytes, HTTP/1.1 connections (the JSON gateway) and every
//!   frame but HEADERS/CONTINUATION pass through untouched.
//! - A header block is never patched in place: until the first rewrite, the
//!   client's blocks go to `h2` verbatim (so `h2`'s HPACK table mirrors the
//!   client's); from the first rewrite on, every block is re-encoded by our
//!   own encoder, which first empties `h2`'s table so both sides agree (see
//!   `block.rs`).
//! - Input we cannot follow never panics: before any rewrite the connection
//!   falls back to plain pass-through and `h2` judges the bytes; after one,
//!   the connection is closed with a warning, since `h2`'s table can no
//!   longer be kept in step.
//! - Buffering is bounded: a header block over [`MAX_HEADER_BLOCK_BYTES`]
//!   is not followed.
//!
//! Nothing here knows about gRPC services; it only imports tokio's I/O
//! traits, tonic's `Connected` and the HPACK codec.

mod block;
mod error;
mod frame;
mod rewriter;
mod stream;

pub use error::RewriteError;
pub use rewriter::Rewriter;
pub use stream::AuthorityFix;

/// The largest header block (all its HEADERS and CONTINUATION frames) the
/// adapter buffers; a bigger one is not followed (see the module docs).
pub const MAX_HEADER_BLOCK_BYTES: usize = 1 << 20;
