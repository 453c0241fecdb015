//! Why the adapter could not follow a client's HTTP/2 byte stream.

use loona_hpack::decoder::DecoderError;

/// A client stream the adapter cannot follow. Before the first rewrite on a
/// connection this only switches it to pass-through; after it, the
/// connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// A header block larger than [`super::MAX_HEADER_BLOCK_BYTES`].
    #[error("header block of at least {size} bytes exceeds the {limit}-byte limit")]
    BlockTooLarge {
        /// Bytes seen so far (frame headers included).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A frame other than CONTINUATION for the same stream in the middle of
    /// a header block (RFC 9113 §6.10).
    #[error(
        "frame of type {frame_type} on stream {stream} inside a header block of stream {open}"
    )]
    ContinuationExpected {
        /// The type of the frame that arrived.
        frame_type: u8,
        /// The stream it arrived on.
        stream: u32,
        /// The stream whose header block is open.
        open: u32,
    },
    /// A padded HEADERS frame whose padding or priority fields do not fit.
    #[error("HEADERS frame on stream {stream} with padding or priority longer than its payload")]
    BadPadding {
        /// The stream.
        stream: u32,
    },
    /// The header block does not decode with the connection's HPACK state.
    #[error("undecodable header block: {0}")]
    Hpack(#[from] DecoderError),
    /// The connection ended inside a frame after a rewrite.
    #[error("connection ended inside a frame")]
    Truncated,
    /// More input after the adapter already failed the connection.
    #[error("connection already failed")]
    AlreadyFailed,
}
