//! The client→server byte stream transformer, without I/O: bytes in (as
//! they arrive, split anywhere), bytes out.

use bytes::{Buf, BytesMut};

use super::block::{BlockCodec, Outcome};
use super::error::RewriteError;
use super::frame::{
    write_header_block, FrameHeader, HeadersLayout, FLAG_END_HEADERS, FLAG_END_STREAM, HEADER_LEN,
    PREFACE, PRIORITY_LEN, TYPE_CONTINUATION, TYPE_HEADERS,
};
use super::MAX_HEADER_BLOCK_BYTES;

/// Where the transformer is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Matching the HTTP/2 client preface.
    Preface,
    /// At a frame boundary (or inside a header block being collected).
    Frames,
    /// Copying the rest of a frame we do not look into.
    Payload { remaining: usize },
    /// Not HTTP/2, or a stream we gave up following: everything passes.
    Opaque,
    /// Gave up after a rewrite: the connection must close.
    Failed,
}

/// A header block whose END_HEADERS has not arrived yet.
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; PRIORITY_LEN]>,
    /// The client's frames, to forward verbatim if the block needs no change.
    raw: Vec<u8>,
    /// The header block fragments, joined.
    block: Vec<u8>,
}

/// Rewrites `:authority` values in one client connection's byte stream
/// (see the module docs for what passes untouched).
pub struct Rewriter {
    mode: Mode,
    /// Received bytes not yet forwarded: an incomplete preface, frame
    /// header or header-block frame. Bounded by one frame of a header block.
    pending: BytesMut,
    /// Bytes ready for the server.
    out: BytesMut,
    open: Option<OpenBlock>,
    codec: BlockCodec,
}

/// Whether a step of the state machine can go on with the bytes at hand.
enum Step {
    Continue,
    NeedMore,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    /// A transformer for a new connection.
    pub fn new() -> Rewriter {
        Rewriter {
            mode: Mode::Preface,
            pending: BytesMut::new(),
            out: BytesMut::new(),
            open: None,
            codec: BlockCodec::new(),
        }
    }

    /// Takes the next bytes the client sent. An error means the connection
    /// must be closed (it stays an error for any further input).
    pub fn feed(&mut self, data: &[u8]) -> Result<(), RewriteError> {
        match self.mode {
            Mode::Opaque => {
                self.out.extend_from_slice(data);
                return Ok(());
            }
            Mode::Failed => return Err(RewriteError::AlreadyFailed),
            _ => self.pending.extend_from_slice(data),
        }
        while let Step::Continue = self.step()? {}
        Ok(())
    }

    /// The client closed its side: forwards what is still buffered when
    /// that is safe, or fails when only half a frame of a re-encoded
    /// connection is left.
    pub fn finish(&mut self) -> Result<(), RewriteError> {
        let open = self.open.take();
        let buffered = open.as_ref().is_some_and(|o| !o.raw.is_empty()) || !self.pending.is_empty();
        if !buffered {
            return Ok(());
        }
        if self.codec.reencoding() || self.mode == Mode::Failed {
            self.mode = Mode::Failed;
            return Err(RewriteError::Truncated);
        }
        if let Some(open) = open {
            self.out.extend_from_slice(&open.raw);
        }
        let rest = self.pending.split();
        self.out.extend_from_slice(&rest);
        self.mode = Mode::Opaque;
        Ok(())
    }

    /// Bytes ready for the server; remove them with [`Self::consume`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Drops the first `n` bytes of [`Self::output`].
    pub fn consume(&mut self, n: usize) {
        self.out.advance(n.min(self.out.len()));
    }

    /// True when every further byte passes untouched and nothing is
    /// buffered: the caller may then read straight into its own buffer.
    pub fn is_passthrough(&self) -> bool {
        self.mode == Mode::Opaque && self.out.is_empty() && self.pending.is_empty()
    }

    fn step(&mut self) -> Result<Step, RewriteError> {
        match self.mode {
            Mode::Preface => Ok(self.preface()),
            Mode::Payload { remaining } => {
                let n = remaining.min(self.pending.len());
                if n == 0 {
                    return Ok(Step::NeedMore);
                }
                self.forward_pending(n);
                let remaining = remaining - n;
                self.mode = if remaining == 0 {
                    Mode::Frames
                } else {
                    Mode::Payload { remaining }
                };
                Ok(Step::Continue)
            }
            Mode::Frames => self.frame(),
            Mode::Opaque | Mode::Failed => Ok(Step::NeedMore),
        }
    }

    fn preface(&mut self) -> Step {
        let n = self.pending.len().min(PREFACE.len());
        if self.pending.get(..n) != PREFACE.get(..n) {
            // Not HTTP/2 with prior knowledge: HTTP/1.1 for the gateway.
            self.forward_pending(self.pending.len());
            self.mode = Mode::Opaque;
            return Step::Continue;
        }
        if n < PREFACE.len() {
            return Step::NeedMore;
        }
        self.forward_pending(PREFACE.len());
        self.mode = Mode::Frames;
        Step::Continue
    }

    fn frame(&mut self) -> Result<Step, RewriteError> {
        let Some(header) = FrameHeader::parse(&self.pending) else {
            return Ok(Step::NeedMore);
        };
        if let Some(open) = &self.open {
            if header.kind != TYPE_CONTINUATION || header.stream != open.stream {
                let err = RewriteError::ContinuationExpected {
                    frame_type: header.kind,
                    stream: header.stream,
                    open: open.stream,
                };
                return self.give_up(err);
            }
            return self.collect(header);
        }
        if header.kind == TYPE_HEADERS {
            return self.collect(header);
        }
        // Everything else (DATA, SETTINGS, a stray CONTINUATION, ...) goes
        // through as is; `h2` judges it.
        self.forward_pending(HEADER_LEN);
        if header.len > 0 {
            self.mode = Mode::Payload {
                remaining: header.len,
            };
        }
        Ok(Step::Continue)
    }

    /// Adds one HEADERS or CONTINUATION frame to the open block, once all
    /// of it has arrived.
    fn collect(&mut self, header: FrameHeader) -> Result<Step, RewriteError> {
        let total = HEADER_LEN + header.len;
        let size = self.open.as_ref().map_or(0, |o| o.raw.len()) + total;
        if size > MAX_HEADER_BLOCK_BYTES {
            return self.give_up(RewriteError::BlockTooLarge {
                size,
                limit: MAX_HEADER_BLOCK_BYTES,
            });
        }
        if self.pending.len() < total {
            return Ok(Step::NeedMore);
        }
        let frame = self.pending.split_to(total);
        let payload = frame.get(HEADER_LEN..).unwrap_or_default();
        let open = match self.open.take() {
            Some(mut open) => {
                open.block.extend_from_slice(payload);
                open
            }
            None => {
                let Some(layout) = HeadersLayout::parse(header.flags, payload) else {
                    // Put the frame back so that pass-through forwards it.
                    let rest = self.pending.split();
                    self.pending = frame;
                    self.pending.unsplit(rest);
                    return self.give_up(RewriteError::BadPadding {
                        stream: header.stream,
                    });
                };
                OpenBlock {
                    stream: header.stream,
                    end_stream: header.flags & FLAG_END_STREAM != 0,
                    priority: layout.priority,
                    raw: Vec::new(),
                    block: payload
                        .get(layout.fragment.0..layout.fragment.1)
                        .unwrap_or_default()
                        .to_vec(),
                }
            }
        };
        let mut open = open;
        open.raw.extend_from_slice(&frame);
        if header.flags & FLAG_END_HEADERS == 0 {
            self.open = Some(open);
            return Ok(Step::Continue);
        }
        match self.codec.process(&open.block) {
            Ok(Outcome::Verbatim) => self.out.extend_from_slice(&open.raw),
            Ok(Outcome::Reencoded(block)) => {
                let mut frames = Vec::with_capacity(block.len() + 2 * HEADER_LEN + PRIORITY_LEN);
                write_header_block(
                    &mut frames,
                    open.stream,
                    open.end_stream,
                    open.priority,
                    &block,
                );
                self.out.extend_from_slice(&frames);
            }
            Err(err) => {
                self.open = Some(open);
                return self.give_up(err);
            }
        }
        Ok(Step::Continue)
    }

    /// Stops following the stream: before any rewrite, everything buffered
    /// and everything after passes untouched; after one, fails.
    fn give_up(&mut self, err: RewriteError) -> Result<Step, RewriteError> {
        if self.codec.reencoding() {
            self.mode = Mode::Failed;
            return Err(err);
        }
        tracing::debug!(%err, "not following this HTTP/2 client connection: passing it through");
        if let Some(open) = self.open.take() {
            self.out.extend_from_slice(&open.raw);
        }
        self.forward_pending(self.pending.len());
        self.mode = Mode::Opaque;
        Ok(Step::NeedMore)
    }

    fn forward_pending(&mut self, n: usize) {
        let n = n.min(self.pending.len());
        self.out
            .extend_from_slice(self.pending.get(..n).unwrap_or_default());
        self.pending.advance(n);
    }
}

#[cfg(test)]
#[path = "rewriter_tests.rs"]
mod tests;
