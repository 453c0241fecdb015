//! `etcdserverpb.Watch`: one bidirectional stream per call, carrying many
//! watches. The gRPC stream is adapted to a `watch::WatchStream` running
//! in its own task: client messages become `watch::Request`s, its answers
//! become etcd's `WatchResponse`s (header filled in, large responses split
//! for watches created with `fragment`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::{stream, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, Instrument};
use witan_proto::etcdserverpb::watch_request::RequestUnion;
use witan_proto::etcdserverpb::watch_server::{Watch, WatchServer};
use witan_proto::etcdserverpb::{ResponseHeader, WatchRequest, WatchResponse};

use super::{ApiError, HeaderSource};
use crate::auth::AuthGate;
use crate::mvcc::MvccError;
use crate::raft::proposer::ProposeError;
use crate::watch::{self, fragment, ResponseKind, StreamError, WatchBudget, WatchHub};

/// Responses buffered per stream before the stream waits for the client
/// (and its watches fall behind the live feed, to catch up later).
const STREAM_BUFFER: usize = 64;

/// Headroom etcd gives gRPC messages over `--max-request-bytes`.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The Watch service of one member.
pub struct WatchService {
    hub: WatchHub,
    header: HeaderSource,
    max_request_bytes: usize,
    streams: Arc<AtomicU64>,
    /// `--max-watches-per-connection` (`usize::MAX`: not counted).
    max_per_connection: usize,
    /// The watch budget of each client connection with a watch stream
    /// open, by the connection's remote address (a connection's streams
    /// hold it; it goes away with the last of them).
    connections: Mutex<HashMap<SocketAddr, Weak<WatchBudget>>>,
    /// Authenticates the stream's caller.
    gate: AuthGate,
}

impl WatchService {
    /// Watches served by `hub` for callers `gate` authenticates; responses
    /// of fragmenting watches are split at `max_request_bytes` (etcd's
    /// rule).
    pub fn new(
        hub: WatchHub,
        header: HeaderSource,
        max_request_bytes: usize,
        gate: AuthGate,
    ) -> Self {
        WatchService {
            hub,
            header,
            max_request_bytes,
            streams: Arc::default(),
            max_per_connection: usize::MAX,
            connections: Mutex::default(),
            gate,
        }
    }

    /// Limits the watches of one client connection, over all its streams,
    /// to `max` (`--max-watches-per-connection`).
    pub fn with_max_watches_per_connection(self, max: usize) -> Self {
        WatchService {
            max_per_connection: max,
            ..self
        }
    }

    /// The budget of the connection at `remote` (none without an address:
    /// the gateway's in-process calls, one watch per HTTP request).
    fn budget(&self, remote: Option<SocketAddr>) -> Option<Arc<WatchBudget>> {
        let remote = remote?;
        if self.max_per_connection == usize::MAX {
            return None;
        }
        // A poisoned lock only means another stream panicked while holding
        // it; the map is still a valid map.
        let mut connections = match self.connections.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(budget) = connections.get(&remote).and_then(Weak::upgrade) {
            return Some(budget);
        }
        connections.retain(|_, budget| budget.strong_count() > 0);
        let budget = Arc::new(WatchBudget::new(self.max_per_connection));
        connections.insert(remote, Arc::downgrade(&budget));
        Some(budget)
    }
}

/// The response stream of one Watch call.
type ResponseStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ResponseStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Client connections carry witan's own connection info (TLS or
        // not), which tonic's `remote_addr` does not know about.
        let remote = request.remote_addr().or_else(|| {
            request
                .extensions()
                .get::<crate::tls::ConnInfo>()
                .and_then(|info| info.remote_addr)
        });
        let budget = self.budget(remote);
        let (caller, _) = self.gate.caller(&request).await.map_err(ApiError::from)?;
        let requests = request
            .into_inner()
            .filter_map(|message| std::future::ready(convert_request(message)));
        let (out, responses) = mpsc::channel(STREAM_BUFFER);
        let (ended, end) = oneshot::channel();
        let hub = self.hub.clone();
        let stream_id = self.streams.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(
            async move {
                debug!("watch stream opened");
                let result = hub.serve_on_connection(requests, out, budget, caller).await;
                debug!(ok = result.is_ok(), "watch stream closed");
                let _ = ended.send(result);
            }
            .instrument(tracing::debug_span!("watch_stream", stream_id)),
        );

        let header = self.header.clone();
        let limit = self.max_request_bytes;
        let answers = ReceiverStream::new(responses)
            .flat_map(move |r| stream::iter(convert_response(r, &header, limit)).map(Ok));
        // After the last answer: the reason the stream ended, if not the
        // client leaving.
        let end = stream::once(end).filter_map(|result| {
            std::future::ready(match result {
                Ok(Err(e)) => Some(Err(end_status(e))),
                _ => None,
            })
        });
        Ok(Response::new(Box::pin(answers.chain(end))))
    }
}

/// A client message as a stream request; an empty message is skipped (as
/// etcd does), a broken stream ends the requests.
fn convert_request(
    message: Result<WatchRequest, Status>,
) -> Option<Result<watch::Request, Status>> {
    let request = match message {
        Ok(request) => request,
        Err(status) => return Some(Err(status)),
    };
    Some(Ok(match request.request_union? {
        RequestUnion::CreateRequest(create) => watch::Request::Create(create),
        RequestUnion::CancelRequest(cancel) => watch::Request::Cancel(cancel.watch_id),
        RequestUnion::ProgressRequest(_) => watch::Request::Progress,
    }))
}

/// etcd's `WatchResponse` for a stream answer (several for a fragmented
/// one).
fn convert_response(
    response: watch::Response,
    header: &HeaderSource,
    limit: usize,
) -> Vec<WatchResponse> {
    let mut out = WatchResponse {
        header: Some(ResponseHeader {
            revision: response.revision,
            ..Default::default()
        }),
        watch_id: response.watch_id,
        ..Default::default()
    };
    header.fill(&mut out.header);
    match response.kind {
        ResponseKind::Created => out.created = true,
        ResponseKind::Refused(reason) => {
            out.created = true;
            out.canceled = true;
            out.cancel_reason = reason.to_string();
        }
        ResponseKind::Canceled => out.canceled = true,
        ResponseKind::Compacted { compact_revision } => {
            out.canceled = true;
            out.compact_revision = compact_revision;
        }
        ResponseKind::Events { events, fragment } => {
            out.events = events;
            if fragment {
                return fragment::split(out, limit);
            }
        }
        ResponseKind::Progress => {}
    }
    vec![out]
}

/// The status a stream ends with when the member, not the client, ended it.
fn end_status(error: StreamError<Status>) -> Status {
    match error {
        StreamError::Requests(status) => status,
        // etcd's answer when the server stops under a request.
        StreamError::Shutdown => ApiError::Propose(ProposeError::Stopped).into(),
        StreamError::History(e) => ApiError::Mvcc(MvccError::History(e)).into(),
    }
}

/// The service wrapped for tonic, with etcd's gRPC message size limit.
pub fn server(service: WatchService) -> WatchServer<WatchService> {
    let limit = service.max_request_bytes + GRPC_OVERHEAD_BYTES;
    WatchServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX)
}
