//! The few pieces of HTTP/2 framing (RFC 9113 §4.1, §6.2, §6.10) the
//! adapter needs: frame headers, HEADERS payload layout, and writing a
//! header block back out as HEADERS + CONTINUATION frames.

/// The client connection preface (RFC 9113 §3.4).
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub(super) const HEADER_LEN: usize = 9;
/// The largest frame payload we write: the HTTP/2 minimum of
/// SETTINGS_MAX_FRAME_SIZE, which every peer accepts whatever it advertised.
pub(super) const MAX_FRAME_PAYLOAD: usize = 16_384;

pub(super) const TYPE_HEADERS: u8 = 0x1;
pub(super) const TYPE_CONTINUATION: u8 = 0x9;

pub(super) const FLAG_END_STREAM: u8 = 0x1;
pub(super) const FLAG_END_HEADERS: u8 = 0x4;
pub(super) const FLAG_PADDED: u8 = 0x8;
pub(super) const FLAG_PRIORITY: u8 = 0x20;

/// Length of the stream dependency + weight fields of a HEADERS frame.
pub(super) const PRIORITY_LEN: usize = 5;

/// A parsed 9-byte frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    /// Parses the first [`HEADER_LEN`] bytes of `buf`, if there are that many.
    pub fn parse(buf: &[u8]) -> Option<FrameHeader> {
        let bytes: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            // The top bit is reserved and ignored on receipt.
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        })
    }

    /// Appends this header to `out`; `len` must fit 24 bits.
    pub fn write(&self, out: &mut Vec<u8>) {
        let len = (self.len as u32).to_be_bytes();
        out.extend_from_slice(&len[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }
}

/// The parts of a HEADERS frame payload around its header block fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HeadersLayout {
    /// The priority fields, when the PRIORITY flag is set.
    pub priority: Option<[u8; PRIORITY_LEN]>,
    /// Where the fragment starts and ends in the payload.
    pub fragment: (usize, usize),
}

impl HeadersLayout {
    /// Locates the fragment in a HEADERS `payload` with `flags`; `None` when
    /// padding and priority do not fit the payload.
    pub fn parse(flags: u8, payload: &[u8]) -> Option<HeadersLayout> {
        let mut start: usize = 0;
        let mut end = payload.len();
        if flags & FLAG_PADDED != 0 {
            let pad = usize::from(*payload.first()?);
            start = 1;
            end = end.checked_sub(pad)?;
        }
        let mut priority = None;
        if flags & FLAG_PRIORITY != 0 {
            let fields = payload.get(start..start.checked_add(PRIORITY_LEN)?)?;
            priority = Some(fields.try_into().ok()?);
            start += PRIORITY_LEN;
        }
        (start <= end).then_some(HeadersLayout {
            priority,
            fragment: (start, end),
        })
    }
}

/// Appends `block` to `out` as one HEADERS frame for `stream` (keeping
/// `end_stream` and `priority`, never padded) followed by as many
/// CONTINUATION frames as needed, each payload at most
/// [`MAX_FRAME_PAYLOAD`] bytes.
pub(super) fn write_header_block(
    out: &mut Vec<u8>,
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; PRIORITY_LEN]>,
    block: &[u8],
) {
    let prefix = priority.map_or(0, |_| PRIORITY_LEN);
    let first = block.len().min(MAX_FRAME_PAYLOAD - prefix);
    let (head, mut rest) = block.split_at(first);
    let mut flags = 0;
    if end_stream {
        flags |= FLAG_END_STREAM;
    }
    if priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    FrameHeader {
        len: prefix + head.len(),
        kind: TYPE_HEADERS,
        flags,
        stream,
    }
    .write(out);
    if let Some(fields) = priority {
        out.extend_from_slice(&fields);
    }
    out.extend_from_slice(head);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME_PAYLOAD));
        rest = tail;
        FrameHeader {
            len: chunk.len(),
            kind: TYPE_CONTINUATION,
            flags: if rest.is_empty() { FLAG_END_HEADERS } else { 0 },
            stream,
        }
        .write(out);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips_and_ignores_the_reserved_bit() {
        let header = FrameHeader {
            len: 0x01_02_03,
            kind: TYPE_HEADERS,
            flags: FLAG_END_HEADERS,
            stream: 7,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 4, 0, 0, 0, 7]);
        assert_eq!(FrameHeader::parse(&out), Some(header));
        out[5] |= 0x80;
        assert_eq!(FrameHeader::parse(&out), Some(header));
        assert_eq!(FrameHeader::parse(&out[..8]), None);
    }

    #[test]
    fn headers_layout_strips_padding_and_priority() {
        // pad length 2, priority 5 bytes, fragment "ab", padding 2 bytes.
        let payload = [2, 0, 0, 0, 3, 16, b'a', b'b', 0, 0];
        let layout = HeadersLayout::parse(FLAG_PADDED | FLAG_PRIORITY, &payload).unwrap();
        assert_eq!(layout.priority, Some([0, 0, 0, 3, 16]));
        assert_eq!(&payload[layout.fragment.0..layout.fragment.1], b"ab");
        assert_eq!(HeadersLayout::parse(0, b"xy").unwrap().fragment, (0, 2));
    }

    #[test]
    fn headers_layout_rejects_padding_longer_than_the_payload() {
        assert_eq!(HeadersLayout::parse(FLAG_PADDED, &[5, 1, 2]), None);
        assert_eq!(HeadersLayout::parse(FLAG_PADDED, &[]), None);
        assert_eq!(HeadersLayout::parse(FLAG_PRIORITY, &[0, 0, 0]), None);
        assert_eq!(
            HeadersLayout::parse(FLAG_PADDED | FLAG_PRIORITY, &[1, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn a_large_block_is_split_into_continuations() {
        let block = vec![0xaa; MAX_FRAME_PAYLOAD * 2 + 10];
        let mut out = Vec::new();
        write_header_block(&mut out, 3, true, Some([0, 0, 0, 1, 15]), &block);
        let mut rest = &out[..];
        let mut frames = Vec::new();
        let mut joined = Vec::new();
        while let Some(header) = FrameHeader::parse(rest) {
            assert!(header.len <= MAX_FRAME_PAYLOAD);
            let payload = &rest[HEADER_LEN..HEADER_LEN + header.len];
            let fragment = if header.kind == TYPE_HEADERS {
                &payload[PRIORITY_LEN..]
            } else {
                payload
            };
            joined.extend_from_slice(fragment);
            frames.push(header);
            rest = &rest[HEADER_LEN + header.len..];
        }
        assert_eq!(joined, block);
        let kinds: Vec<_> = frames.iter().map(|f| (f.kind, f.flags, f.stream)).collect();
        assert_eq!(
            kinds,
            [
                (TYPE_HEADERS, FLAG_END_STREAM | FLAG_PRIORITY, 3),
                (TYPE_CONTINUATION, 0, 3),
                (TYPE_CONTINUATION, FLAG_END_HEADERS, 3),
            ]
        );
    }
}
