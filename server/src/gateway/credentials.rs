//! The caller's credentials on the gateway's in-process gRPC calls: the
//! HTTP `Authorization` header (etcd's gateway passes the token so) and
//! the connection's TLS identity, so the Auth checks see a JSON request
//! exactly as they would see the same request over gRPC.

use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::HeaderValue;

use crate::tls::ConnInfo;

/// What identifies the HTTP caller.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    authorization: Option<HeaderValue>,
    conn: Option<ConnInfo>,
}

impl Credentials {
    /// The credentials of an HTTP request.
    pub fn of(parts: &http::request::Parts) -> Credentials {
        Credentials {
            authorization: parts.headers.get(AUTHORIZATION).cloned(),
            conn: parts.extensions.get::<ConnInfo>().cloned(),
        }
    }
}

/// A transport that adds [`Credentials`] to every request it carries.
#[derive(Debug, Clone)]
pub struct Credentialed<S> {
    inner: S,
    credentials: Credentials,
}

impl<S> Credentialed<S> {
    /// `inner`, carrying `credentials`.
    pub fn new(inner: S, credentials: Credentials) -> Self {
        Credentialed { inner, credentials }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Credentialed<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The client's own header never reaches here: these are fresh
        // in-process requests, so nothing is overwritten but our own.
        if let Some(value) = &self.credentials.authorization {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        if let Some(conn) = &self.credentials.conn {
            request.extensions_mut().insert(conn.clone());
        }
        self.inner.call(request)
    }
}
