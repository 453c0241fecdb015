//! One connection's HPACK state: decodes each client header block, decides
//! whether its `:authority` needs repair, and re-encodes blocks once one did.
//!
//! Why re-encoding starts by emptying `h2`'s table: until the first rewrite
//! `h2` received the client's blocks verbatim, so its dynamic table holds
//! the client's entries, which our fresh encoder knows nothing about. The
//! first re-encoded block therefore opens with two dynamic table size
//! updates (to 0, which evicts everything, then back to
//! [`H2_HEADER_TABLE_SIZE`]); from there our encoder and `h2`'s decoder
//! apply the same insertions and evictions (RFC 7541 §4.4), so every index
//! we send resolves to what we meant.

use loona_hpack::encoder::encode_integer_into;
use loona_hpack::{Decoder, Encoder};

use super::error::RewriteError;

/// The HPACK table size `h2` decodes with: SETTINGS_HEADER_TABLE_SIZE's
/// default, since hyper's server leaves it unset. The client may never
/// announce a larger table than this, and our encoder uses exactly this.
pub(super) const H2_HEADER_TABLE_SIZE: usize = 4096;

const AUTHORITY: &[u8] = b":authority";

/// What became of one header block.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Forward the client's frames as they were.
    Verbatim,
    /// Forward this block instead (our encoder's state).
    Reencoded(Vec<u8>),
}

/// Decoder towards the client, and (after the first rewrite) encoder
/// towards `h2`.
pub(super) struct BlockCodec {
    decoder: Decoder<'static>,
    /// `None` until the first block that needed a rewrite.
    encoder: Option<Encoder<'static>>,
    /// Reused for every block.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl BlockCodec {
    pub fn new() -> BlockCodec {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(H2_HEADER_TABLE_SIZE);
        BlockCodec {
            decoder,
            encoder: None,
            headers: Vec::new(),
        }
    }

    /// True once blocks are re-encoded: from then on the client's bytes can
    /// no longer be forwarded verbatim.
    pub fn reencoding(&self) -> bool {
        self.encoder.is_some()
    }

    /// Decodes `block` (a complete header block) and says how to forward it.
    pub fn process(&mut self, block: &[u8]) -> Result<Outcome, RewriteError> {
        let headers = &mut self.headers;
        headers.clear();
        self.decoder.decode_with_cb(block, |name, value| {
            headers.push((name.into_owned(), value.into_owned()))
        })?;
        let mut rewritten = false;
        for (name, value) in headers.iter_mut() {
            if name.as_slice() == AUTHORITY {
                if let Some(bare) = bare_authority(value) {
                    *value = bare.to_vec();
                    rewritten = true;
                }
            }
        }
        if rewritten && self.encoder.is_none() {
            tracing::debug!("rewriting :authority values with a scheme or path on this connection");
        }
        let mut out = Vec::with_capacity(block.len() + 16);
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None if !rewritten => return Ok(Outcome::Verbatim),
            None => {
                // Size updates are 001xxxxx with a 5-bit prefix (RFC 7541
                // §6.3); writes to a Vec cannot fail.
                let _ = encode_integer_into(0, 5, 0x20, &mut out);
                let _ = encode_integer_into(H2_HEADER_TABLE_SIZE, 5, 0x20, &mut out);
                let mut encoder = Encoder::new();
                encoder.set_max_table_size(H2_HEADER_TABLE_SIZE);
                self.encoder.insert(encoder)
            }
        };
        let _ = encoder.encode_into(
            self.headers
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice())),
            &mut out,
        );
        Ok(Outcome::Reencoded(out))
    }
}

/// The `host[:port]` part of an authority given as a URL
/// (`http://host:port/path`), or `None` when `value` is already bare or
/// has nothing left once scheme and path are gone (then `h2` judges it).
pub(super) fn bare_authority(value: &[u8]) -> Option<&[u8]> {
    let mut rest = value;
    for scheme in [&b"http://"[..], b"https://"] {
        if let Some((head, tail)) = rest.split_at_checked(scheme.len()) {
            if head.eq_ignore_ascii_case(scheme) {
                rest = tail;
                break;
            }
        }
    }
    if let Some(host) = rest.split(|&b| b == b'/').next() {
        rest = host;
    }
    (rest.len() != value.len() && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(encoder: &mut Encoder<'static>, headers: &[(&str, &str)]) -> Vec<u8> {
        encoder.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// Decodes what we forward, as `h2` would: a decoder that saw every
    /// forwarded block.
    fn forwarded(
        h2: &mut Decoder<'static>,
        sent: &[u8],
        outcome: &Outcome,
    ) -> Vec<(String, String)> {
        let block = match outcome {
            Outcome::Verbatim => sent,
            Outcome::Reencoded(block) => block.as_slice(),
        };
        h2.decode(block)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn request(authority: &str, path: &str) -> Vec<(&'static str, String)> {
        vec![
            (":method", "POST".into()),
            (":scheme", "http".into()),
            (":path", path.into()),
            (":authority", authority.into()),
            ("content-type", "application/grpc".into()),
            ("te", "trailers".into()),
            ("grpc-timeout", format!("{}m", path.len())),
        ]
    }

    #[test]
    fn bare_authority_strips_scheme_and_path_only() {
        assert_eq!(
            bare_authority(b"http://127.0.0.1:2379"),
            Some(&b"127.0.0.1:2379"[..])
        );
        assert_eq!(
            bare_authority(b"HTTPS://node-1:2379/"),
            Some(&b"node-1:2379"[..])
        );
        assert_eq!(
            bare_authority(b"127.0.0.1:2379/x/y"),
            Some(&b"127.0.0.1:2379"[..])
        );
        assert_eq!(bare_authority(b"[::1]:2379"), None);
        assert_eq!(bare_authority(b"127.0.0.1:2379"), None);
        assert_eq!(bare_authority(b"http://"), None);
        assert_eq!(bare_authority(b"/only/a/path"), None);
        assert_eq!(bare_authority(b""), None);
    }

    #[test]
    fn a_bare_authority_is_forwarded_verbatim() {
        let mut client = Encoder::new();
        let mut codec = BlockCodec::new();
        let block = encode(
            &mut client,
            &[(":method", "POST"), (":authority", "127.0.0.1:2379")],
        );
        assert_eq!(codec.process(&block).unwrap(), Outcome::Verbatim);
        assert!(!codec.reencoding());
    }

    #[test]
    fn an_authority_with_a_scheme_is_rewritten() {
        let mut client = Encoder::new();
        let mut codec = BlockCodec::new();
        let mut h2 = Decoder::new();
        let block = encode(
            &mut client,
            &[(":method", "POST"), (":authority", "http://127.0.0.1:2379")],
        );
        let outcome = codec.process(&block).unwrap();
        assert!(matches!(outcome, Outcome::Reencoded(_)));
        assert_eq!(
            forwarded(&mut h2, &block, &outcome),
            [
                (":method".to_string(), "POST".to_string()),
                (":authority".to_string(), "127.0.0.1:2379".to_string()),
            ]
        );
        assert!(codec.reencoding());
    }

    /// The client's table is full of entries when the first rewrite comes;
    /// afterwards both directions keep indexing. Every forwarded block must
    /// decode, on a decoder that saw exactly the forwarded bytes, to the
    /// client's headers with only the authority repaired.
    #[test]
    fn dynamic_tables_stay_consistent_across_requests() {
        let mut client = Encoder::new();
        let mut codec = BlockCodec::new();
        let mut h2 = Decoder::new();
        h2.set_max_allowed_table_size(H2_HEADER_TABLE_SIZE);
        let paths = ["/a.KV/Put", "/a.KV/Range", "/a.Maintenance/Status"];
        for round in 0..60 {
            // The first authority with a scheme comes in round 12.
            let authority = if round >= 10 && round % 3 == 0 {
                format!("http://127.0.0.1:{}", 2379 + round % 4)
            } else {
                "127.0.0.1:2379".to_string()
            };
            let path = format!("{}{}", paths[round % 3], "x".repeat(round));
            let headers = request(&authority, &path);
            let block = client.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
            let outcome = codec.process(&block).unwrap();
            if round < 12 {
                assert_eq!(outcome, Outcome::Verbatim);
            } else {
                assert!(matches!(outcome, Outcome::Reencoded(_)), "round {round}");
            }
            let expected: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| {
                    let v = match bare_authority(v.as_bytes()) {
                        Some(b) if *n == ":authority" => String::from_utf8(b.to_vec()).unwrap(),
                        _ => v.clone(),
                    };
                    (n.to_string(), v)
                })
                .collect();
            assert_eq!(
                forwarded(&mut h2, &block, &outcome),
                expected,
                "round {round}"
            );
        }
    }

    #[test]
    fn a_table_size_update_past_h2s_limit_is_an_error() {
        let mut codec = BlockCodec::new();
        let mut block = Vec::new();
        encode_integer_into(H2_HEADER_TABLE_SIZE + 1, 5, 0x20, &mut block).unwrap();
        block.push(0x82);
        assert!(matches!(codec.process(&block), Err(RewriteError::Hpack(_))));
    }
}
