//! Running one JSON call against the in-process gRPC services: unary calls
//! answer one JSON object; streaming calls answer newline-delimited
//! `{"result":...}` objects as etcd's gateway does, ending with an error
//! object if the call fails midway.

use std::future::Future;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{stream, Stream, StreamExt};
use http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::codec::{decode, decode_all, error_line, read_body, result_line};
use super::error::json_response;
use super::{Gateway, GatewayError, Loopback};

/// Whether a streaming call's requests end after the body's messages, or
/// stay open until the HTTP client leaves (a watch keeps watching after
/// its create request, as with etcd's gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    /// Half-close after the body's messages.
    AfterBody,
    /// Keep the request stream open while the response is being read.
    WithResponse,
}

impl Gateway {
    /// A unary call: one request message in, one answer out.
    pub async fn unary<Req, Resp, F, Fut>(self, body: Body, call: F) -> Response
    where
        Req: DeserializeOwned + Default,
        Resp: Serialize,
        F: FnOnce(Loopback, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let request = match self.read_one::<Req>(body).await {
            Ok(request) => request,
            Err(err) => return err.into_response(),
        };
        match call(self.grpc(), request).await {
            Ok(answer) => json_response(StatusCode::OK, answer.get_ref()),
            Err(status) => GatewayError::Status(status).into_response(),
        }
    }

    /// A server-streaming call: one request message in, a stream out.
    pub async fn server_stream<Req, Resp, F, Fut, S>(self, body: Body, call: F) -> Response
    where
        Req: DeserializeOwned + Default,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Loopback, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, Status>>,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    {
        let request = match self.read_one::<Req>(body).await {
            Ok(request) => request,
            Err(err) => return err.into_response(),
        };
        match call(self.grpc(), request).await {
            Ok(answers) => ndjson(answers.into_inner(), ()),
            Err(status) => GatewayError::Status(status).into_response(),
        }
    }

    /// A bidirectional call: the body's messages in, a stream out.
    pub async fn bidi_stream<Req, Resp, F, Fut, S>(
        self,
        body: Body,
        end: RequestEnd,
        call: F,
    ) -> Response
    where
        Req: DeserializeOwned + Default + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Loopback, ReceiverStream<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, Status>>,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    {
        let requests = match read_body(body, self.inner.max_body_bytes).await {
            Ok(bytes) => match decode_all::<Req>(&bytes) {
                Ok(requests) => requests,
                Err(err) => return err.into_response(),
            },
            Err(err) => return err.into_response(),
        };
        // The request stream ends when its sender drops: at once after the
        // body's messages, or with the response body (the HTTP client left).
        let (sender, receiver) = mpsc::channel(requests.len().max(1));
        for request in requests {
            // Cannot fail: the channel has room for all and its receiver
            // is here.
            let _ = sender.try_send(request);
        }
        let keep = match end {
            RequestEnd::AfterBody => None,
            RequestEnd::WithResponse => Some(sender),
        };
        let requests = ReceiverStream::new(receiver);
        match call(self.grpc(), requests).await {
            Ok(answers) => ndjson(answers.into_inner(), keep),
            Err(status) => GatewayError::Status(status).into_response(),
        }
    }

    async fn read_one<Req: DeserializeOwned + Default>(
        &self,
        body: Body,
    ) -> Result<Req, GatewayError> {
        let bytes = read_body(body, self.inner.max_body_bytes).await?;
        decode(&bytes)
    }
}

/// A streaming answer: one line per message, an error line if the call
/// fails, then the end. `keep` is dropped with the body.
fn ndjson<Resp, S, K>(answers: S, keep: K) -> Response
where
    Resp: Serialize + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    K: Send + Sync + 'static,
{
    // Owned state, no borrowing closures: the body stream must be Send
    // for every lifetime the HTTP server may poll it with.
    let answers = Box::pin(answers);
    let lines = stream::unfold(Some((answers, keep)), |state| async move {
        let (mut answers, keep) = state?;
        let line = match answers.next().await? {
            Ok(message) => match result_line(&message) {
                Ok(line) => return Some((Ok(line), Some((answers, keep)))),
                Err(err) => error_line(&GatewayError::BadJson(err)),
            },
            Err(status) => error_line(&GatewayError::Status(status)),
        };
        // A failure ends the stream after its error line.
        Some((Ok::<Bytes, std::convert::Infallible>(line), None))
    });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
