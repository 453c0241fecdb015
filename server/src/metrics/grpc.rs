//! go-grpc-prometheus' server metrics as a tower layer on the client
//! router: `grpc_server_started_total`, `grpc_server_handled_total` (by
//! status code) and `grpc_server_handling_seconds`, labelled by
//! `grpc_type`, `grpc_service` and `grpc_method`. A call is handled when
//! its status is known: the headers of an error answered at once, else the
//! trailers at the end of the response body; a body dropped before its end
//! (the client left) counts as `Canceled`. Message bytes in and out are
//! counted too (`etcd_network_client_grpc_{received,sent}_bytes_total`).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Buf;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::exposition::Exposition;
use super::histogram::{Histogram, GRPC_BUCKETS};

/// gRPC codes are 0 to 16.
const CODES: usize = 17;

/// Counts of one method, in atomics: a call touches no lock once its
/// method has been seen.
#[derive(Debug)]
struct MethodStats {
    started: AtomicU64,
    /// Handled calls by gRPC code number.
    handled: [AtomicU64; CODES],
    handling: Histogram<{ GRPC_BUCKETS.len() }>,
}

impl Default for MethodStats {
    fn default() -> Self {
        MethodStats {
            started: AtomicU64::new(0),
            handled: [const { AtomicU64::new(0) }; CODES],
            handling: Histogram::new(GRPC_BUCKETS),
        }
    }
}

/// The gRPC counts of one member's client listeners.
#[derive(Debug, Default)]
pub struct GrpcStats {
    /// By request path (`/service/method`). Read-locked to find a method
    /// already seen (every call after the first); written once per method.
    methods: RwLock<BTreeMap<String, Arc<MethodStats>>>,
    /// Bytes of gRPC request bodies read.
    received_bytes: AtomicU64,
    /// Bytes of gRPC response bodies sent.
    sent_bytes: AtomicU64,
}

impl GrpcStats {
    /// Counts a call of `path` as started; its stats, to finish it.
    fn started(&self, path: &str) -> Arc<MethodStats> {
        let known = self
            .methods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        let stats = match known {
            Some(stats) => stats,
            None => self
                .methods
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(path.to_string())
                .or_default()
                .clone(),
        };
        stats.started.fetch_add(1, Ordering::Relaxed);
        stats
    }

    /// Writes the families.
    pub fn expose(&self, e: &mut Exposition) {
        e.counter(
            "etcd_network_client_grpc_received_bytes_total",
            "The total number of bytes received from grpc clients.",
            self.received_bytes.load(Ordering::Relaxed) as f64,
        );
        e.counter(
            "etcd_network_client_grpc_sent_bytes_total",
            "The total number of bytes sent to grpc clients.",
            self.sent_bytes.load(Ordering::Relaxed) as f64,
        );
        let methods = self.methods.read().unwrap_or_else(|e| e.into_inner());
        let methods: Vec<(&str, &str, &MethodStats)> = methods
            .iter()
            .filter_map(|(path, stats)| {
                let (service, method) = split_path(path)?;
                Some((service, method, stats.as_ref()))
            })
            .collect();
        e.family(
            "grpc_server_started_total",
            "counter",
            "Total number of RPCs started on the server.",
        );
        for (service, method, stats) in &methods {
            let labels = [
                ("grpc_method", *method),
                ("grpc_service", *service),
                ("grpc_type", grpc_type(service, method)),
            ];
            let started = stats.started.load(Ordering::Relaxed);
            e.sample("grpc_server_started_total", &labels, started as f64);
        }
        e.family(
            "grpc_server_handled_total",
            "counter",
            "Total number of RPCs completed on the server, regardless of success or failure.",
        );
        for (service, method, stats) in &methods {
            for (code, count) in stats.handled.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let labels = [
                    ("grpc_code", code_name(code)),
                    ("grpc_method", *method),
                    ("grpc_service", *service),
                    ("grpc_type", grpc_type(service, method)),
                ];
                e.sample("grpc_server_handled_total", &labels, count as f64);
            }
        }
        e.family(
            "grpc_server_handling_seconds",
            "histogram",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        );
        for (service, method, stats) in &methods {
            let labels = [
                ("grpc_method", *method),
                ("grpc_service", *service),
                ("grpc_type", grpc_type(service, method)),
            ];
            e.histogram_series(
                "grpc_server_handling_seconds",
                &labels,
                &stats.handling.snapshot(),
            );
        }
    }
}

/// The streaming kind of a method, as go-grpc-prometheus names it.
fn grpc_type(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("etcdserverpb.Watch", "Watch") | ("etcdserverpb.Lease", "LeaseKeepAlive") => "bidi_stream",
        ("etcdserverpb.Maintenance", "Snapshot") | ("v3electionpb.Election", "Observe") => {
            "server_stream"
        }
        _ => "unary",
    }
}

/// Go's name of a gRPC code (the `grpc_code` label values dashboards use).
pub fn code_name(code: usize) -> &'static str {
    match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

/// The layer: wraps the client router so every gRPC call is counted.
#[derive(Debug, Clone, Default)]
pub struct GrpcLayer {
    stats: Arc<GrpcStats>,
}

impl GrpcLayer {
    /// A layer recording into `stats`.
    pub fn new(stats: Arc<GrpcStats>) -> Self {
        GrpcLayer { stats }
    }
}

impl<S> Layer<S> for GrpcLayer {
    type Service = GrpcMetered<S>;

    fn layer(&self, inner: S) -> GrpcMetered<S> {
        GrpcMetered {
            inner,
            stats: self.stats.clone(),
        }
    }
}

/// A service whose gRPC calls are counted; other requests (the HTTP/JSON
/// gateway, `/metrics`) pass through uncounted.
#[derive(Debug, Clone)]
pub struct GrpcMetered<S> {
    inner: S,
    stats: Arc<GrpcStats>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMetered<S>
where
    S: Service<Request<CountedBody<ReqBody>>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let call = grpc_path(&request).map(|path| Call {
            stats: self.stats.started(path),
            start: Instant::now(),
        });
        let counted = call.as_ref().map(|_| self.stats.clone());
        let request = request.map(|body| CountedBody {
            body,
            stats: counted.clone(),
        });
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let mut call = call;
            // An error answered at once carries its status in the headers.
            if let Some(code) = status_code(response.headers()) {
                if let Some(call) = call.take() {
                    call.finish(code);
                }
            }
            Ok(response.map(|body| MeteredBody {
                body,
                call,
                stats: counted,
            }))
        })
    }
}

/// A request body whose data bytes are counted as received.
pub struct CountedBody<B> {
    body: B,
    stats: Option<Arc<GrpcStats>>,
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let (Some(stats), Some(Ok(f))) = (&self.stats, &frame) {
            if let Some(data) = f.data_ref() {
                let n = data.remaining() as u64;
                stats.received_bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The path (`/service/method`) of a gRPC request: a request with a gRPC
/// content type to a path naming a service and a method.
fn grpc_path<B>(request: &Request<B>) -> Option<&str> {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let path = request.uri().path();
    (grpc && split_path(path).is_some()).then_some(path)
}

/// `(service, method)` of a gRPC path.
fn split_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix('/')?.split_once('/')
}

fn status_code(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// One counted call, finished exactly once.
struct Call {
    stats: Arc<MethodStats>,
    start: Instant,
}

impl Call {
    fn finish(self, code: i32) {
        // An unknown code counts as Unknown, as gRPC clients read it.
        let handled = &self.stats.handled;
        let counter = usize::try_from(code)
            .ok()
            .and_then(|c| handled.get(c))
            .or_else(|| handled.get(2));
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.handling.observe(self.start.elapsed());
    }
}

/// A response body that finishes its call's count at the trailers, at the
/// end, or when dropped early.
pub struct MeteredBody<B> {
    body: B,
    call: Option<Call>,
    /// Where sent bytes are counted (gRPC calls only).
    stats: Option<Arc<GrpcStats>>,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(stats), Some(data)) = (&self.stats, f.data_ref()) {
                    let n = data.remaining() as u64;
                    stats.sent_bytes.fetch_add(n, Ordering::Relaxed);
                }
                if let Some(code) = f.trailers_ref().and_then(status_code) {
                    if let Some(call) = self.call.take() {
                        call.finish(code);
                    }
                }
            }
            // A body that failed or ended without a status: gRPC clients
            // see these as Unknown / Internal; count them as Unknown.
            Some(Err(_)) | None => {
                if let Some(call) = self.call.take() {
                    call.finish(2);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_requests_are_recognised_by_path_and_content_type() {
        let request = Request::post("/etcdserverpb.KV/Range")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        assert_eq!(grpc_path(&request), Some("/etcdserverpb.KV/Range"));
        let json = Request::post("/v3/kv/range").body(()).unwrap();
        assert_eq!(grpc_path(&json), None);
    }

    #[test]
    fn handled_calls_are_exposed_by_code() {
        let stats = GrpcStats::default();
        let watch = Call {
            stats: stats.started("/etcdserverpb.Watch/Watch"),
            start: Instant::now(),
        };
        watch.finish(1);
        let put = Call {
            stats: stats.started("/etcdserverpb.KV/Put"),
            start: Instant::now(),
        };
        put.finish(99);
        let mut e = Exposition::default();
        stats.expose(&mut e);
        let text = e.finish();
        assert!(text.contains(
            "grpc_server_started_total{grpc_method=\"Watch\",grpc_service=\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"} 1"
        ), "{text}");
        assert!(text.contains(
            "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method=\"Watch\",grpc_service=\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"} 1"
        ), "{text}");
        assert!(text.contains(
            "grpc_server_handled_total{grpc_code=\"Unknown\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1"
        ), "{text}");
        assert!(text.contains("grpc_server_handling_seconds_count{grpc_method=\"Watch\""));
    }
}
