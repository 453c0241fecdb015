//! How the gateway fails a request: etcd's grpc-gateway answer, an HTTP
//! status chosen from the gRPC code and the body
//! `{"error":"...","message":"...","code":N}`.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use tonic::Code;

/// Why a gateway request failed before or inside the gRPC call.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not the JSON of the request message (bad syntax, a
    /// wrong type, bad base64, an unknown enum name). serde's text names
    /// the problem and its place in the body.
    #[error("invalid JSON request: {0}")]
    BadJson(#[from] serde_json::Error),
    /// The body is longer than the member accepts.
    #[error("etcdserver: request is too large")]
    TooLarge,
    /// The body could not be read from the connection.
    #[error("cannot read the request body: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The gRPC service answered with an error status.
    #[error("{}", .0.message())]
    Status(#[from] tonic::Status),
}

impl GatewayError {
    /// The gRPC code the error stands for.
    pub fn code(&self) -> Code {
        match self {
            GatewayError::BadJson(_) | GatewayError::Body(_) => Code::InvalidArgument,
            GatewayError::TooLarge => Code::ResourceExhausted,
            GatewayError::Status(status) => status.code(),
        }
    }

    /// The JSON body etcd's gateway sends for this error.
    pub fn body(&self) -> ErrorBody {
        let message = self.to_string();
        ErrorBody {
            error: message.clone(),
            message,
            code: self.code() as i32,
        }
    }
}

/// etcd's gateway error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The error text (the same as `message`).
    pub error: String,
    /// The error text.
    pub message: String,
    /// The gRPC code, as a number.
    pub code: i32,
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = if matches!(self, GatewayError::TooLarge) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            http_status(self.code())
        };
        json_response(status, &self.body())
    }
}

/// The HTTP status etcd's gateway (grpc-gateway v1) answers a gRPC code
/// with.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A JSON response; a value that cannot be encoded (never for the
/// generated messages) becomes a 500 saying so.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot encode a gateway response");
            (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_etcds_gateway() {
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::OutOfRange), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(Code::Unknown),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_status_keeps_its_message_and_code() {
        let err = GatewayError::from(tonic::Status::out_of_range(
            "etcdserver: mvcc: required revision has been compacted",
        ));
        let body = serde_json::to_string(&err.body()).unwrap();
        assert_eq!(
            body,
            r#"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#
        );
        assert_eq!(err.into_response().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn too_large_is_413() {
        let response = GatewayError::TooLarge.into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
