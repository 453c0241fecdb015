//! Tests for [`Rewriter`]: client byte streams in, what `h2` would see out.

use loona_hpack::{Decoder, Encoder};
use rand::{Rng, SeedableRng};

use super::*;
use crate::h2_authority::frame::{FLAG_PADDED, FLAG_PRIORITY, MAX_FRAME_PAYLOAD};

const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        len: payload.len(),
        kind,
        flags,
        stream,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

fn block(encoder: &mut Encoder<'static>, headers: &[(&str, &str)]) -> Vec<u8> {
    encoder.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

fn request(authority: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "POST".to_string()),
        (":scheme", "http".to_string()),
        (":path", "/etcdserverpb.Maintenance/Status".to_string()),
        (":authority", authority.to_string()),
        ("content-type", "application/grpc".to_string()),
        ("te", "trailers".to_string()),
    ]
}

fn request_block(encoder: &mut Encoder<'static>, authority: &str) -> Vec<u8> {
    let headers = request(authority);
    encoder.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

/// Feeds `input` in chunks of `chunk` bytes (1 = byte by byte).
fn run(input: &[u8], chunk: usize) -> Result<Vec<u8>, RewriteError> {
    let mut rewriter = Rewriter::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        rewriter.feed(piece)?;
        out.extend_from_slice(rewriter.output());
        let n = rewriter.output().len();
        rewriter.consume(n);
    }
    rewriter.finish()?;
    out.extend_from_slice(rewriter.output());
    Ok(out)
}

/// What the server side sees: per HEADERS block its stream and decoded
/// headers, plus every other frame as is.
#[derive(Debug, Default)]
struct Seen {
    blocks: Vec<(u32, Vec<(String, String)>)>,
    others: Vec<Vec<u8>>,
    header_frames: Vec<FrameHeader>,
}

fn server_side(out: &[u8]) -> Seen {
    assert!(out.starts_with(PREFACE));
    let mut rest = &out[PREFACE.len()..];
    let mut decoder = Decoder::new();
    let mut seen = Seen::default();
    let mut open: Option<(u32, Vec<u8>)> = None;
    while !rest.is_empty() {
        let header = FrameHeader::parse(rest).expect("whole frame header");
        assert!(header.len <= MAX_FRAME_PAYLOAD);
        let whole = &rest[..HEADER_LEN + header.len];
        let payload = &whole[HEADER_LEN..];
        rest = &rest[whole.len()..];
        match header.kind {
            TYPE_HEADERS => {
                seen.header_frames.push(header);
                let layout = HeadersLayout::parse(header.flags, payload).unwrap();
                open = Some((
                    header.stream,
                    payload[layout.fragment.0..layout.fragment.1].to_vec(),
                ));
            }
            TYPE_CONTINUATION => {
                seen.header_frames.push(header);
                open.as_mut().unwrap().1.extend_from_slice(payload);
            }
            _ => {
                assert!(open.is_none());
                seen.others.push(whole.to_vec());
                continue;
            }
        }
        if header.flags & FLAG_END_HEADERS != 0 {
            let (stream, joined) = open.take().unwrap();
            let headers = decoder
                .decode(&joined)
                .unwrap()
                .into_iter()
                .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                .collect();
            seen.blocks.push((stream, headers));
        }
    }
    assert!(open.is_none());
    seen
}

fn expected(authority: &str) -> Vec<(String, String)> {
    request(authority)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

#[test]
fn an_authority_with_a_scheme_is_rewritten_byte_by_byte() {
    let mut client = Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&SETTINGS);
    let data = frame(0x0, FLAG_END_STREAM, 1, b"\0\0\0\0\x05hello");
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS,
        1,
        &request_block(&mut client, "http://127.0.0.1:2379"),
    ));
    input.extend_from_slice(&data);
    for chunk in [1, 2, 7, 9, 10, 64, 4096] {
        let seen = server_side(&run(&input, chunk).unwrap());
        assert_eq!(
            seen.blocks,
            [(1, expected("127.0.0.1:2379"))],
            "chunk {chunk}"
        );
        assert_eq!(seen.others, [SETTINGS.to_vec(), data.clone()]);
    }
}

#[test]
fn a_bare_authority_leaves_the_stream_identical() {
    let mut client = Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&SETTINGS);
    for stream in [1, 3, 5] {
        input.extend(frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS,
            stream,
            &request_block(&mut client, "127.0.0.1:2379"),
        ));
        input.extend(frame(0x0, FLAG_END_STREAM, stream, &[0; 40]));
    }
    assert_eq!(run(&input, 1).unwrap(), input);
    assert_eq!(run(&input, 1000).unwrap(), input);
}

#[test]
fn continuation_frames_are_joined_and_the_block_rewritten() {
    let mut client = Encoder::new();
    let joined = request_block(&mut client, "https://node-1:2379/");
    let (a, rest) = joined.split_at(5);
    let (b, c) = rest.split_at(20);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_STREAM, 1, a));
    input.extend(frame(TYPE_CONTINUATION, 0, 1, b));
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, c));
    let seen = server_side(&run(&input, 3).unwrap());
    assert_eq!(seen.blocks, [(1, expected("node-1:2379"))]);
    // One frame now carries the whole block; END_STREAM is kept.
    assert_eq!(seen.header_frames.len(), 1);
    assert_eq!(
        seen.header_frames[0].flags,
        FLAG_END_STREAM | FLAG_END_HEADERS
    );
}

#[test]
fn padding_is_dropped_and_priority_kept_on_a_rewritten_block() {
    let mut client = Encoder::new();
    let fragment = request_block(&mut client, "http://127.0.0.1:2379");
    let mut payload = vec![3];
    payload.extend_from_slice(&[0x80, 0, 0, 1, 200]);
    payload.extend_from_slice(&fragment);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY,
        3,
        &payload,
    ));
    let out = run(&input, 1).unwrap();
    let seen = server_side(&out);
    assert_eq!(seen.blocks, [(3, expected("127.0.0.1:2379"))]);
    assert_eq!(
        seen.header_frames[0].flags,
        FLAG_END_HEADERS | FLAG_PRIORITY
    );
    let start = PREFACE.len() + HEADER_LEN;
    assert_eq!(out[start..start + PRIORITY_LEN], [0x80, 0, 0, 1, 200]);
}

#[test]
fn a_padded_block_without_change_is_forwarded_verbatim() {
    let mut client = Encoder::new();
    let mut payload = vec![2];
    payload.extend(request_block(&mut client, "127.0.0.1:2379"));
    payload.extend_from_slice(&[0, 0]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS | FLAG_PADDED,
        1,
        &payload,
    ));
    assert_eq!(run(&input, 1).unwrap(), input);
}

#[test]
fn a_rewritten_block_larger_than_a_frame_is_split() {
    let mut client = Encoder::new();
    let big = "v".repeat(MAX_FRAME_PAYLOAD + 100);
    let headers = [
        (":method", "POST"),
        (":authority", "http://h:1"),
        ("x-big", big.as_str()),
    ];
    let fragment = block(&mut client, &headers);
    let (a, b) = fragment.split_at(fragment.len() / 2);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, a));
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, b));
    let seen = server_side(&run(&input, 777).unwrap());
    assert_eq!(seen.header_frames.len(), 2);
    assert_eq!(
        seen.blocks[0].1[1],
        (":authority".to_string(), "h:1".to_string())
    );
    assert_eq!(seen.blocks[0].1[2].1, big);
}

/// Requests on one connection: bare ones (verbatim, the client's table
/// grows in `h2` too), then a rewrite, then more of both, including
/// Huffman-coded blocks from RFC 7541 §C.4 before the rewrite.
#[test]
fn hpack_state_holds_across_requests_on_one_connection() {
    let mut input = PREFACE.to_vec();
    // RFC 7541 C.4.1 and C.4.2: Huffman strings, indexing.
    let c41 = [
        0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
        0xf4, 0xff,
    ];
    let c42 = [
        0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
    ];
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &c41));
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &c42));
    let mut client = Encoder::new();
    // The RFC blocks filled the client's table with two entries that our
    // test encoder does not know: keep its indexes clear of them by using
    // a separate encoder with its own table only after a size reset.
    let mut reset = Vec::new();
    loona_hpack::encoder::encode_integer_into(0, 5, 0x20, &mut reset).unwrap();
    loona_hpack::encoder::encode_integer_into(4096, 5, 0x20, &mut reset).unwrap();
    let mut first = reset.clone();
    first.extend(request_block(&mut client, "127.0.0.1:2379"));
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 5, &first));
    let mut want = vec![
        (
            1,
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ],
        ),
        (
            3,
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ],
        ),
    ]
    .into_iter()
    .map(|(s, h)| {
        (
            s,
            h.into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    })
    .collect::<Vec<_>>();
    want.push((5, expected("127.0.0.1:2379")));
    let authorities = [
        "http://127.0.0.1:2379",
        "127.0.0.1:2379",
        "http://127.0.0.1:2380/",
        "127.0.0.1:2379",
    ];
    for (i, authority) in authorities.into_iter().cycle().take(40).enumerate() {
        let stream = 7 + 2 * i as u32;
        input.extend(frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS,
            stream,
            &request_block(&mut client, authority),
        ));
        let bare = crate::h2_authority::block::bare_authority(authority.as_bytes())
            .map_or(authority.to_string(), |b| {
                String::from_utf8(b.to_vec()).unwrap()
            });
        want.push((stream, expected(&bare)));
    }
    let seen = server_side(&run(&input, 5).unwrap());
    assert_eq!(seen.blocks, want);
}

#[test]
fn http1_passes_through_untouched() {
    let input = b"POST /v3/kv/range HTTP/1.1\r\nHost: http://127.0.0.1:2379\r\n\r\n{}".to_vec();
    assert_eq!(run(&input, 1).unwrap(), input);
    let mut rewriter = Rewriter::new();
    rewriter.feed(b"PRI * HTTP/1.1").unwrap();
    assert_eq!(rewriter.output(), b"PRI * HTTP/1.1");
    rewriter.consume(14);
    assert!(rewriter.is_passthrough());
}

#[test]
fn an_interleaved_frame_before_any_rewrite_falls_back_to_pass_through() {
    let mut client = Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        TYPE_HEADERS,
        0,
        1,
        &request_block(&mut client, "http://a:1"),
    ));
    input.extend(frame(0x0, 0, 1, b"data"));
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS,
        3,
        &request_block(&mut client, "http://a:1"),
    ));
    assert_eq!(run(&input, 1).unwrap(), input);
}

#[test]
fn an_undecodable_block_after_a_rewrite_closes_the_connection() {
    let mut client = Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS,
        1,
        &request_block(&mut client, "http://a:1"),
    ));
    // Index 200 is in neither table.
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &[0xff, 0x49]));
    assert!(matches!(run(&input, 1), Err(RewriteError::Hpack(_))));
}

#[test]
fn an_oversized_block_before_any_rewrite_passes_through() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, &[0x82]));
    let chunk = vec![0u8; MAX_FRAME_PAYLOAD];
    for _ in 0..(MAX_HEADER_BLOCK_BYTES / MAX_FRAME_PAYLOAD + 1) {
        input.extend(frame(TYPE_CONTINUATION, 0, 1, &chunk));
    }
    assert_eq!(run(&input, 10_000).unwrap(), input);
}

#[test]
fn garbage_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut client = Encoder::new();
    let mut valid = PREFACE.to_vec();
    valid.extend_from_slice(&SETTINGS);
    for (i, authority) in ["http://a:1", "b:2", "https://c:3/x"].iter().enumerate() {
        valid.extend(frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1 + 2 * i as u32,
            &request_block(&mut client, authority),
        ));
    }
    for round in 0..3000 {
        let len = rng.gen_range(0..400);
        let mut input: Vec<u8> = match round % 3 {
            // Pure noise.
            0 => (0..len).map(|_| rng.gen()).collect(),
            // A preface, then noise: noise parsed as frames.
            1 => {
                let mut v = PREFACE.to_vec();
                v.extend((0..len).map(|_| rng.gen::<u8>()));
                v
            }
            // A valid stream with a few bytes flipped.
            _ => {
                let mut v = valid.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(PREFACE.len()..v.len());
                    v[at] = rng.gen();
                }
                v
            }
        };
        if round % 7 == 0 {
            input.truncate(rng.gen_range(0..=input.len()));
        }
        let chunk = rng.gen_range(1..64);
        if let Ok(out) = run(&input, chunk) {
            assert!(out.len() <= input.len() + 4096, "round {round}");
        }
    }
}
