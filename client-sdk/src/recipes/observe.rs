//! [`LeaderStream`]: an election's leader and its changes, from the
//! Election service's Observe stream (reopened when it breaks, without
//! repeating what was seen) or from the recipe run client-side.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tonic::Streaming;
use witan_proto::v3electionpb::{LeaderRequest, LeaderResponse};

use super::election::Leader;
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::{self, Backoff, Fault, Idempotence};

/// The leader of an election and every later change, in order (made by
/// [`Election::observe`](crate::Election::observe)). Ends after its first
/// error.
#[must_use = "streams do nothing unless polled"]
pub struct LeaderStream {
    inner: Pin<Box<dyn Stream<Item = Result<Leader, Error>> + Send>>,
}

impl std::fmt::Debug for LeaderStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderStream").finish_non_exhaustive()
    }
}

impl Stream for LeaderStream {
    type Item = Result<Leader, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The recipe's observer over this client's KV and watch calls (which
/// fail over and resume by themselves).
pub(crate) fn client_side(client: Client, name: Vec<u8>) -> LeaderStream {
    let updates = witan_recipes::election::observe(client, name).map(|update| {
        update
            .map(|(kv, revision)| Leader::from_kv(kv, revision))
            .map_err(Error::from)
    });
    LeaderStream {
        inner: Box::pin(updates),
    }
}

/// The Election service's Observe.
pub(crate) fn server(client: Client, name: Vec<u8>) -> LeaderStream {
    let observer = ServerObserver {
        client,
        name,
        stream: None,
        last: None,
        backoff: Backoff::new(),
        done: false,
    };
    let updates = futures::stream::unfold(observer, |mut observer| async move {
        let item = observer.next().await?;
        Some((item, observer))
    });
    LeaderStream {
        inner: Box::pin(updates),
    }
}

/// An Observe call, reopened when it breaks.
struct ServerObserver {
    client: Client,
    name: Vec<u8>,
    stream: Option<Streaming<LeaderResponse>>,
    /// Key, create and mod revision of the last leader yielded: a reopened
    /// stream starts with the current leader, which may be that one.
    last: Option<(Vec<u8>, i64, i64)>,
    backoff: Backoff,
    done: bool,
}

impl ServerObserver {
    async fn next(&mut self) -> Option<Result<Leader, Error>> {
        while !self.done {
            let stream = match self.stream.as_mut() {
                Some(stream) => stream,
                None => match self.open().await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(err) if err.is_retryable() => {
                        tokio::time::sleep(self.backoff.pause()).await;
                        continue;
                    }
                    Err(err) => return self.fail(err),
                },
            };
            match stream.message().await {
                Ok(Some(response)) => {
                    self.backoff.reset();
                    let revision = response.header.map_or(0, |h| h.revision);
                    let Some(kv) = response.kv else { continue };
                    let seen = (kv.key.clone(), kv.create_revision, kv.mod_revision);
                    if self.last.as_ref() == Some(&seen) {
                        continue;
                    }
                    self.last = Some(seen);
                    return Some(Ok(Leader::from_kv(kv, revision)));
                }
                // The member ended the stream (it is stopping): reopen.
                Ok(None) => self.stream = None,
                Err(status) => match retry::classify(status) {
                    Fault::Answered(status) => return self.fail(Error::from_answer(&status)),
                    Fault::NotApplied(status) | Fault::Unknown(status) => {
                        tracing::debug!(%status, "observe stream broke; reopening");
                        self.stream = None;
                        tokio::time::sleep(self.backoff.pause()).await;
                    }
                },
            }
        }
        None
    }

    async fn open(&self) -> Result<Streaming<LeaderResponse>, Error> {
        let request = LeaderRequest {
            name: self.name.clone(),
        };
        self.client
            .execute(Idempotence::Safe, |channel| {
                let request = request.clone();
                async move { Ok(grpc::election(channel).observe(request).await?.into_inner()) }
            })
            .await
    }

    fn fail(&mut self, err: Error) -> Option<Result<Leader, Error>> {
        self.done = true;
        Some(Err(err))
    }
}
