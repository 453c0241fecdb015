//! Request bodies in, JSON out: reading a bounded body, decoding it as one
//! request message (or, for streaming calls, a sequence of them), and
//! encoding answers as etcd's gateway does (the serde implementations
//! generated into `witan_proto`: proto field names, 64-bit integers as
//! strings, bytes as base64, default values omitted).

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::GatewayError;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(GatewayError::TooLarge),
        Err(err) => Err(GatewayError::Body(err)),
    }
}

/// Decodes one request message. An empty body or `null` is the default
/// message, as with etcd (`curl -X POST .../member/list` has no body).
pub fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, GatewayError> {
    if is_blank(body) {
        return Ok(T::default());
    }
    let value: Option<T> = serde_json::from_slice(body)?;
    Ok(value.unwrap_or_default())
}

/// Decodes the messages of a streaming call: JSON values one after the
/// other (whitespace between them), at least one. All are decoded before
/// any is sent, so a malformed body changes nothing.
pub fn decode_all<T: DeserializeOwned + Default>(body: &[u8]) -> Result<Vec<T>, GatewayError> {
    if is_blank(body) {
        return Ok(vec![T::default()]);
    }
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Option<T>>()
        .map(|value| Ok(value?.unwrap_or_default()))
        .collect()
}

/// One line of a streaming answer: `{"result":MESSAGE}` and a newline.
pub fn result_line<T: Serialize>(message: &T) -> Result<Bytes, serde_json::Error> {
    #[derive(Serialize)]
    struct Line<'a, T> {
        result: &'a T,
    }
    let mut line = serde_json::to_vec(&Line { result: message })?;
    line.push(b'\n');
    Ok(line.into())
}

/// The line a streaming answer ends with when the call fails midway.
pub fn error_line(err: &GatewayError) -> Bytes {
    let mut line = serde_json::to_vec(&err.body()).unwrap_or_default();
    line.push(b'\n');
    line.into()
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::{
        compare, request_op, LeaseGrantRequest, PutRequest, PutResponse, RangeRequest,
        RangeResponse, ResponseHeader, TxnRequest,
    };
    use witan_proto::mvccpb::{event::EventType, Event, KeyValue};

    use super::*;

    #[test]
    fn requests_take_base64_and_both_field_spellings() {
        let put: PutRequest =
            decode(br#"{"key":"Zm9v","value":"YmFy","prev_kv":true,"ignoreLease":true}"#).unwrap();
        assert_eq!(put.key, b"foo");
        assert_eq!(put.value, b"bar");
        assert!(put.prev_kv);
        assert!(put.ignore_lease);
        let range: RangeRequest =
            decode(br#"{"key":"AA==","rangeEnd":"AA==","limit":"10","revision":3}"#).unwrap();
        assert_eq!((range.key, range.range_end), (vec![0], vec![0]));
        assert_eq!((range.limit, range.revision), (10, 3));
    }

    #[test]
    fn enums_and_oneofs_by_name() {
        let txn: TxnRequest = decode(
            br#"{"compare":[{"target":"CREATE","key":"YQ==","createRevision":"0"}],
                 "success":[{"request_put":{"key":"YQ==","value":"MQ=="}}],
                 "failure":[{"requestRange":{"key":"YQ=="}}]}"#,
        )
        .unwrap();
        assert_eq!(txn.compare[0].target, compare::CompareTarget::Create as i32);
        assert_eq!(
            txn.compare[0].target_union,
            Some(compare::TargetUnion::CreateRevision(0))
        );
        assert!(matches!(
            txn.success[0].request,
            Some(request_op::Request::RequestPut(_))
        ));
        assert!(matches!(
            txn.failure[0].request,
            Some(request_op::Request::RequestRange(_))
        ));
    }

    #[test]
    fn blank_and_null_bodies_are_the_default_message() {
        assert_eq!(
            decode::<RangeRequest>(b"").unwrap(),
            RangeRequest::default()
        );
        assert_eq!(
            decode::<RangeRequest>(b" null ").unwrap(),
            RangeRequest::default()
        );
        assert_eq!(decode_all::<RangeRequest>(b"\n").unwrap().len(), 1);
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_reason() {
        let err = decode::<PutRequest>(br#"{"key":"!!!"}"#).unwrap_err();
        assert!(matches!(err, GatewayError::BadJson(_)), "{err}");
        let err = decode::<PutRequest>(br#"{"key":"Zm9v","#).unwrap_err();
        assert!(err.to_string().contains("EOF"), "{err}");
        let err = decode::<RangeRequest>(br#"{"sort_order":"BOGUS"}"#).unwrap_err();
        assert!(err.to_string().contains("BOGUS"), "{err}");
        let err = decode::<RangeRequest>(br#"{"limit":"abc"}"#).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(decode::<PutRequest>(b"[1]").is_err());
        assert!(decode_all::<PutRequest>(br#"{"key":"Zm9v"} {"key":"#).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored_as_etcd_does() {
        let put: PutRequest = decode(br#"{"key":"Zm9v","unknown_field":1}"#).unwrap();
        assert_eq!(put.key, b"foo");
    }

    #[test]
    fn streaming_bodies_hold_several_messages() {
        let grants: Vec<LeaseGrantRequest> =
            decode_all(br#"{"TTL":"5"} {"TTL":6,"ID":"7"}"#).unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!((grants[1].ttl, grants[1].id), (6, 7));
    }

    #[test]
    fn answers_are_encoded_as_etcds_gateway_does() {
        let header = Some(ResponseHeader {
            cluster_id: 324952591200643719,
            member_id: 1,
            revision: 26,
            raft_term: 2,
        });
        let range = RangeResponse {
            header,
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 24,
                mod_revision: 26,
                version: 3,
                value: b"bar".to_vec(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        assert_eq!(
            serde_json::to_string(&range).unwrap(),
            r#"{"header":{"cluster_id":"324952591200643719","member_id":"1","revision":"26","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"24","mod_revision":"26","version":"3","value":"YmFy"}],"count":"1"}"#
        );
        let put = PutResponse {
            header,
            prev_kv: None,
        };
        assert_eq!(
            serde_json::to_string(&put).unwrap(),
            r#"{"header":{"cluster_id":"324952591200643719","member_id":"1","revision":"26","raft_term":"2"}}"#
        );
        let delete = Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: b"foo".to_vec(),
                mod_revision: 8,
                ..KeyValue::default()
            }),
            prev_kv: None,
        };
        assert_eq!(
            std::str::from_utf8(&result_line(&delete).unwrap()).unwrap(),
            "{\"result\":{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"8\"}}}\n"
        );
    }
}
