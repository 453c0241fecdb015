//! etcd services that witan declares but does not serve yet: every call
//! answers `Unimplemented` with a message saying so, instead of the bare
//! status an unknown service would get.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http;

macro_rules! not_implemented_service {
    ($(#[$doc:meta])* $name:ident, $service:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl tonic::server::NamedService for $name {
            const NAME: &'static str = $service;
        }

        impl<B> tower::Service<http::Request<B>> for $name {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = Ready<Result<Self::Response, Infallible>>;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, _request: http::Request<B>) -> Self::Future {
                let status = tonic::Status::unimplemented(concat!(
                    "witan does not serve ", $service, " yet (", $what, ")"
                ));
                ready(Ok(status.into_http()))
            }
        }
    };
}

not_implemented_service!(
    /// `etcdserverpb.Auth`, until authentication is implemented.
    AuthNotImplemented,
    "etcdserverpb.Auth",
    "authentication arrives with the security work"
);
