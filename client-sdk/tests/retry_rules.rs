//! What is repeated and what is not, against fake members whose answers
//! the test chooses: a write whose answer is lost is never repeated (the
//! caller learns the outcome is unknown), a write a member never proposed
//! ("no leader") moves to the next member, reads always do.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::options;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use witan_client::{Client, Error};
use witan_proto::etcdserverpb::kv_server::{Kv, KvServer};
use witan_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};

/// How a fake member answers every call.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers successfully.
    Serve,
    /// Never answers.
    Hang,
    /// Fails with this Unavailable message.
    Unavailable(&'static str),
}

#[derive(Clone)]
struct FakeMember {
    behaviour: Behaviour,
    calls: Arc<AtomicUsize>,
}

type Answer<T> = Result<Response<T>, Status>;

impl FakeMember {
    async fn answer<T: Default>(
        &self,
        revision: i64,
        fill: impl FnOnce(&mut T, ResponseHeader),
    ) -> Answer<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.behaviour {
            Behaviour::Serve => {
                let mut response = T::default();
                fill(
                    &mut response,
                    ResponseHeader {
                        revision,
                        ..Default::default()
                    },
                );
                Ok(Response::new(response))
            }
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Unavailable(message) => Err(Status::unavailable(message)),
        }
    }
}

#[tonic::async_trait]
impl Kv for FakeMember {
    async fn range(&self, _: Request<RangeRequest>) -> Answer<RangeResponse> {
        self.answer(7, |r: &mut RangeResponse, h| r.header = Some(h))
            .await
    }
    async fn put(&self, _: Request<PutRequest>) -> Answer<PutResponse> {
        self.answer(8, |r: &mut PutResponse, h| r.header = Some(h))
            .await
    }
    async fn delete_range(&self, _: Request<DeleteRangeRequest>) -> Answer<DeleteRangeResponse> {
        self.answer(8, |r: &mut DeleteRangeResponse, h| r.header = Some(h))
            .await
    }
    async fn txn(&self, _: Request<TxnRequest>) -> Answer<TxnResponse> {
        self.answer(8, |r: &mut TxnResponse, h| r.header = Some(h))
            .await
    }
    async fn compact(&self, _: Request<CompactionRequest>) -> Answer<CompactionResponse> {
        self.answer(8, |r: &mut CompactionResponse, h| r.header = Some(h))
            .await
    }
}

/// A fake member serving on a free port until dropped.
struct Running {
    endpoint: String,
    calls: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

async fn start(behaviour: Behaviour) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let member = FakeMember {
        behaviour,
        calls: calls.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(KvServer::new(member))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stopped.await;
        });
    tokio::spawn(server);
    Running {
        endpoint,
        calls,
        _stop: stop,
    }
}

async fn client_of(members: &[&Running], timeout: Duration) -> Client {
    let endpoints: Vec<String> = members.iter().map(|m| m.endpoint.clone()).collect();
    Client::connect(endpoints, options().request_timeout(timeout))
        .await
        .unwrap()
}

fn calls(member: &Running) -> usize {
    member.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_write_whose_answer_never_comes_is_outcome_unknown_and_not_repeated() {
    let hanging = start(Behaviour::Hang).await;
    let healthy = start(Behaviour::Serve).await;
    let client = client_of(&[&hanging, &healthy], Duration::from_millis(300)).await;

    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!((calls(&hanging), calls(&healthy)), (1, 0));

    // A read that hangs just times out; nothing changed.
    let err = client.get("k").await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
}

#[tokio::test]
async fn a_write_a_member_may_have_proposed_is_not_repeated() {
    let timing_out = start(Behaviour::Unavailable("etcdserver: request timed out")).await;
    let healthy = start(Behaviour::Serve).await;
    let client = client_of(&[&timing_out, &healthy], Duration::from_secs(5)).await;

    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!((calls(&timing_out), calls(&healthy)), (1, 0));
    let err = client.delete("k").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
}

#[tokio::test]
async fn a_write_never_proposed_moves_to_the_next_member() {
    let leaderless = start(Behaviour::Unavailable("etcdserver: no leader")).await;
    let healthy = start(Behaviour::Serve).await;
    let client = client_of(&[&leaderless, &healthy], Duration::from_secs(5)).await;

    let put = client.put("k", "v").await.unwrap();
    assert_eq!(put.header.revision, 8);
    assert_eq!((calls(&leaderless), calls(&healthy)), (1, 1));
    // The client stays on the member that served.
    client.put("k", "v").await.unwrap();
    assert_eq!((calls(&leaderless), calls(&healthy)), (1, 2));
}

#[tokio::test]
async fn reads_and_read_only_txns_move_to_the_next_member() {
    let timing_out = start(Behaviour::Unavailable("etcdserver: request timed out")).await;
    let healthy = start(Behaviour::Serve).await;
    let client = client_of(&[&timing_out, &healthy], Duration::from_secs(5)).await;
    let found = client.get("k").await.unwrap();
    assert_eq!(found.header.revision, 7);
    assert_eq!((calls(&timing_out), calls(&healthy)), (1, 1));

    // A fresh client starts on the failing member again.
    let client = client_of(&[&timing_out, &healthy], Duration::from_secs(5)).await;
    let txn = client
        .txn()
        .then([witan_client::Op::get("k")])
        .commit()
        .await
        .unwrap();
    assert_eq!(txn.header.revision, 8);
}

#[tokio::test]
async fn every_member_unavailable_ends_at_the_deadline_as_unavailable() {
    let a = start(Behaviour::Unavailable("etcdserver: no leader")).await;
    let b = start(Behaviour::Unavailable("etcdserver: no leader")).await;
    let client = client_of(&[&a, &b], Duration::from_millis(400)).await;
    let started = tokio::time::Instant::now();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { ref message } if message.contains("no leader")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // It kept trying both members, with pauses between rounds.
    assert!(
        calls(&a) >= 2 && calls(&b) >= 2,
        "{} {}",
        calls(&a),
        calls(&b)
    );
}
