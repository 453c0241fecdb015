//! The common name (CN) of an X.509 certificate's subject, read straight
//! from its DER encoding: the only field witan needs, so no X.509 parser
//! dependency. Never panics on any input; anything unexpected is `None`.

/// The DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// The DER tag of a SET.
const SET: u8 = 0x31;
/// The DER tag of an OBJECT IDENTIFIER.
const OID: u8 = 0x06;
/// The explicit `[0]` tag of the certificate version.
const VERSION: u8 = 0xa0;
/// The encoded OID 2.5.4.3 (id-at-commonName).
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The first common name in the subject of the DER certificate `der`, if
/// it has one in a string type that is text (UTF8String, PrintableString,
/// IA5String, or BMPString).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity: skipped.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (mut subject, _) = expect(rest, SEQUENCE)?;
    while !subject.is_empty() {
        let (set, after) = expect(subject, SET)?;
        subject = after;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, SEQUENCE)?;
            attributes = after;
            let (oid, value) = expect(attribute, OID)?;
            if oid == COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                return decode_string(tag, text);
            }
        }
    }
    None
}

fn decode_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => String::from_utf8(bytes.to_vec()).ok(),
        // BMPString: UTF-16 big endian
        0x1e => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|pair| <[u8; 2]>::try_from(pair).map(u16::from_be_bytes))
                .collect::<Result<Vec<u16>, _>>()
                .ok()?;
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The content of the element at the start of `input` if its tag is `tag`,
/// and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = tlv(input)?;
    (found == tag).then_some((content, rest))
}

/// Splits the DER element at the start of `input` into tag, content and
/// the bytes after it (single-byte tags only, as X.509 uses them).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = input.split_at_checked(count)?;
        input = rest;
        bytes
            .iter()
            .fold(0usize, |len, byte| (len << 8) | usize::from(*byte))
    };
    let (content, rest) = input.split_at_checked(len)?;
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    use super::*;

    fn cert_with(dn: DistinguishedName) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_subject_common_name() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "witan");
        dn.push(DnType::CommonName, "alice");
        assert_eq!(common_name(&cert_with(dn)), Some("alice".to_string()));
    }

    #[test]
    fn no_common_name_is_none() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "witan");
        assert_eq!(common_name(&cert_with(dn)), None);
    }

    #[test]
    fn garbage_and_truncations_are_none_without_panicking() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "bob");
        let der = cert_with(dn);
        for len in 0..der.len() {
            let _ = common_name(&der[..len]);
        }
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(b"not a certificate"), None);
    }

    #[test]
    fn bmp_strings_decode() {
        assert_eq!(
            decode_string(0x1e, &[0, b'h', 0, b'i']),
            Some("hi".to_string())
        );
        assert_eq!(decode_string(0x1e, &[0]), None);
        assert_eq!(decode_string(0x04, b"octets"), None);
    }
}
