//! The task behind one watch: it holds a Watch stream on one member, and
//! when the stream breaks (member stopped, connection lost) recreates the
//! watch on the next member from the resume revision, so the consumer
//! sees every event once, in order.
//!
//! Setting the watch up the first time is bounded by the client's
//! deadline; once it is up the task reconnects for as long as the
//! consumer listens, and ends only on a definite answer (compaction, a
//! refusal) or when the consumer goes away.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tracing::{Instrument, debug, info_span, warn};
use witan_proto::etcdserverpb::watch_request::RequestUnion;
use witan_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use witan_proto::mvccpb::Event;

use super::resume::Resume;
use crate::client::Client;
use crate::error::Error;
use crate::grpc::{self, Transport};
use crate::retry::{self, Backoff, Idempotence, Next};

/// What to watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WatchSpec {
    pub(crate) key: Vec<u8>,
    pub(crate) range_end: Vec<u8>,
    pub(crate) start_revision: i64,
    pub(crate) prev_kv: bool,
    /// etcd's filter types (NOPUT, NODELETE).
    pub(crate) filters: Vec<i32>,
}

impl WatchSpec {
    /// The create request for a (re)start from `start_revision`. Progress
    /// notifications are always asked for: they move the resume point of
    /// a quiet watch forward.
    pub(crate) fn create_request(&self, start_revision: i64) -> WatchRequest {
        WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: self.key.clone(),
                range_end: self.range_end.clone(),
                start_revision,
                progress_notify: true,
                filters: self.filters.clone(),
                prev_kv: self.prev_kv,
                watch_id: 0,
                fragment: false,
            })),
        }
    }
}

/// Events of one or more whole revisions, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawBatch {
    /// The header revision of the response that carried them.
    pub(crate) revision: i64,
    pub(crate) events: Vec<Event>,
}

/// What the consumer receives.
pub(crate) type Batches = mpsc::Receiver<Result<RawBatch, Error>>;

/// The metadata etcd's clients send to ask for "require leader".
const REQUIRE_LEADER_KEY: &str = "hasleader";

/// Batches buffered before the task waits for the consumer (while it
/// waits it does not read the stream, and the member buffers, then lets
/// the watch catch up from history).
const BUFFER: usize = 16;

/// Aborts the task when the consumer drops its end.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts a watch; returns once a member created it.
pub(crate) async fn open(
    client: &Client,
    spec: WatchSpec,
) -> Result<(Batches, AbortOnDrop), Error> {
    let (out, batches) = mpsc::channel(BUFFER);
    let (established, created) = oneshot::channel();
    let span = info_span!("watch", key = %String::from_utf8_lossy(&spec.key));
    let task = Task {
        client: client.clone(),
        resume: Resume::new(spec.start_revision),
        spec,
        out,
        established: Some(established),
        setup_deadline: client.deadline(),
    };
    let handle = AbortOnDrop(tokio::spawn(task.run().instrument(span)));
    match created.await {
        Ok(Ok(())) => Ok((batches, handle)),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(Error::UnexpectedResponse(
            "the watch task ended before the watch was created",
        )),
    }
}

struct Task {
    client: Client,
    spec: WatchSpec,
    resume: Resume,
    out: mpsc::Sender<Result<RawBatch, Error>>,
    /// Told once the first member created the watch (or it failed).
    established: Option<oneshot::Sender<Result<(), Error>>>,
    setup_deadline: Instant,
}

/// How one stream ended.
enum Ended {
    /// The stream broke; recreate the watch on another member.
    Broken(Status),
    /// A definite answer: tell the consumer and stop.
    Final(Error),
    /// The consumer is gone.
    Abandoned,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut failures = 0usize;
        // Whether the last stream was refused for its token (or a stale
        // auth revision) and recreated: once in a row, so a token that
        // keeps being refused ends the watch.
        let mut auth_repeated = false;
        loop {
            let token = self.client.token();
            let (index, channel) = self.client.current();
            let (ended, delivered) = self.serve(channel).await;
            if delivered {
                auth_repeated = false;
            }
            let status = match ended {
                Ended::Abandoned => return,
                Ended::Final(err) => {
                    match self
                        .client
                        .auth_retry(index, token, err, &mut auth_repeated)
                        .await
                    {
                        Ok(()) => continue,
                        Err(err) => return self.fail(err).await,
                    }
                }
                Ended::Broken(status) => status,
            };
            self.client.failed(index);
            if delivered {
                backoff.reset();
                failures = 0;
            }
            failures += 1;
            let setting_up = self.established.is_some();
            if setting_up && Instant::now() >= self.setup_deadline {
                return self.fail(retry::gave_up(Some(status))).await;
            }
            let resume = self.resume.start_revision();
            if !setting_up && failures == 1 {
                warn!(%status, resume, "watch stream broke; resuming on the next member");
            } else {
                debug!(%status, resume, "watch stream attempt failed");
            }
            if failures.is_multiple_of(self.client.member_count()) {
                let pause = tokio::time::sleep(backoff.pause());
                tokio::select! {
                    () = pause => {}
                    () = self.out.closed() => return,
                }
            }
        }
    }

    /// Runs one Watch stream on `channel` until it ends; says how, and
    /// whether it delivered anything (a healthy stream resets the
    /// backoff).
    async fn serve(&mut self, channel: Transport) -> (Ended, bool) {
        let (requests, request_stream) = mpsc::channel(1);
        let create = self.spec.create_request(self.resume.start_revision());
        if requests.send(create).await.is_err() {
            return (
                Ended::Final(Error::UnexpectedResponse("watch request stream closed")),
                false,
            );
        }
        // Before the first creation, the client's deadline bounds the
        // attempts; after it, only the consumer leaving does.
        let setup = self.established.is_some();
        let deadline = tokio::time::sleep_until(self.setup_deadline);
        tokio::pin!(deadline);

        let mut watch = grpc::watch(channel);
        let mut request = tonic::Request::new(ReceiverStream::new(request_stream));
        // etcd's "require leader": a member that loses its leader ends the
        // stream ("no leader") instead of going quiet, so the watch moves
        // to a member on the majority side.
        request
            .metadata_mut()
            .insert(REQUIRE_LEADER_KEY, MetadataValue::from_static("true"));
        let call = watch.watch(request);
        let mut stream = tokio::select! {
            answer = call => match answer {
                Ok(response) => response.into_inner(),
                Err(status) => return (broken_or_final(status), false),
            },
            () = &mut deadline, if setup => return (Ended::Final(Error::Timeout), false),
            () = self.out.closed() => return (Ended::Abandoned, false),
        };
        let mut delivered = false;
        loop {
            let setup = self.established.is_some();
            let message = tokio::select! {
                message = stream.message() => message,
                () = &mut deadline, if setup => return (Ended::Final(Error::Timeout), delivered),
                () = self.out.closed() => return (Ended::Abandoned, delivered),
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => {
                    return (
                        Ended::Broken(Status::unavailable("the member ended the watch stream")),
                        delivered,
                    );
                }
                Err(status) => return (broken_or_final(status), delivered),
            };
            if let Some(ended) = self.on_response(response).await {
                return (ended, delivered);
            }
            delivered = true;
        }
        // `requests` lives until here: dropping it would end the stream.
    }

    /// Handles one response; `Some` when the stream is done.
    async fn on_response(&mut self, response: WatchResponse) -> Option<Ended> {
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        if response.canceled {
            if response.compact_revision > 0 {
                return Some(Ended::Final(Error::Compacted {
                    compact_revision: Some(response.compact_revision),
                }));
            }
            if !response.cancel_reason.is_empty() {
                return Some(Ended::Final(Error::from_cancel_reason(
                    response.cancel_reason,
                )));
            }
            // Cancelled without a reason: not by us, so by a member going
            // away; resume elsewhere.
            return Some(Ended::Broken(Status::unavailable(
                "the member cancelled the watch",
            )));
        }
        if response.created {
            self.resume.on_created(revision);
            if let Some(established) = self.established.take() {
                let _ = established.send(Ok(()));
            }
            debug!(resume = self.resume.start_revision(), "watch created");
            return None;
        }
        if response.events.is_empty() {
            self.resume.on_progress(revision);
            return None;
        }
        let events = self.resume.on_events(response.events);
        if events.is_empty() {
            return None;
        }
        match self.out.send(Ok(RawBatch { revision, events })).await {
            Ok(()) => None,
            Err(_) => Some(Ended::Abandoned),
        }
    }

    /// Gives the consumer the error that ends the watch.
    async fn fail(mut self, err: Error) {
        debug!(%err, "watch ended");
        match self.established.take() {
            Some(established) => {
                let _ = established.send(Err(err));
            }
            None => {
                let _ = self.out.send(Err(err)).await;
            }
        }
    }
}

/// A failed stream: resumable (transport, member unavailable) or final.
fn broken_or_final(status: Status) -> Ended {
    match retry::next(Idempotence::Safe, retry::classify(status)) {
        Next::Failover(status) => Ended::Broken(status),
        Next::Fail(err) => Ended::Final(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requests_carry_the_spec_and_the_resume_revision() {
        let spec = WatchSpec {
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
            start_revision: 3,
            prev_kv: true,
            filters: vec![1],
        };
        let Some(RequestUnion::CreateRequest(create)) = spec.create_request(17).request_union
        else {
            panic!("not a create request");
        };
        assert_eq!(create.key, b"a");
        assert_eq!(create.range_end, b"b");
        assert_eq!(create.start_revision, 17);
        assert!(create.prev_kv && create.progress_notify && !create.fragment);
        assert_eq!(create.filters, vec![1]);
    }

    #[test]
    fn member_answers_end_a_watch_and_transport_failures_resume_it() {
        assert!(matches!(
            broken_or_final(Status::unavailable("etcdserver: server stopped")),
            Ended::Broken(_)
        ));
        assert!(matches!(
            broken_or_final(Status::invalid_argument("bad")),
            Ended::Final(Error::InvalidArgument { .. })
        ));
    }
}
