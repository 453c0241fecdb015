//! The cluster's members as the client reaches them: one channel per
//! endpoint (each reconnects by itself) and the member calls go to now.
//!
//! Calls go to one member at a time; when it fails a call the client
//! moves on to the next one in the list and stays there (no load
//! balancing: failover only). Every call carries the client's auth token
//! (`auth`), whichever member it goes to.

use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info};

use crate::auth::Auth;
use crate::endpoint;
use crate::error::Error;
use crate::grpc::Transport;
use crate::options::ClientOptions;

/// One endpoint.
#[derive(Debug)]
struct Member {
    uri: String,
    channel: Channel,
}

/// Every endpoint, and which one calls go to.
#[derive(Debug)]
pub(crate) struct Members {
    members: Vec<Member>,
    current: AtomicUsize,
    auth: Auth,
}

impl Members {
    /// Channels to every endpoint; connects to the first reachable one
    /// and logs in there (the others connect when first used). A member
    /// that cannot log the client in for a passing reason (no leader) is
    /// skipped like an unreachable one; refused credentials end `connect`.
    pub(crate) async fn connect<S: AsRef<str>>(
        endpoints: impl IntoIterator<Item = S>,
        options: &ClientOptions,
    ) -> Result<Members, Error> {
        let tls = options.tls.as_ref().map(|tls| tls.to_config());
        let mut configured = Vec::new();
        for given in endpoints {
            let given = given.as_ref();
            let invalid = |reason| Error::InvalidEndpoint {
                endpoint: given.to_string(),
                reason,
            };
            let uri = endpoint::normalize(given, tls.is_some())?;
            let mut endpoint =
                Endpoint::from_shared(uri.clone()).map_err(|_| invalid("not a valid URI"))?;
            if let Some(tls) = &tls {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .map_err(|_| invalid("the TLS settings cannot be used"))?;
            }
            configured.push((uri, configure(endpoint, options)));
        }
        if configured.is_empty() {
            return Err(Error::InvalidEndpoint {
                endpoint: String::new(),
                reason: "no endpoints given",
            });
        }
        let auth = Auth::new(options.credentials.clone());
        let mut members = Vec::with_capacity(configured.len());
        let mut first_up = None;
        let mut last_failure = String::new();
        for (index, (uri, endpoint)) in configured.into_iter().enumerate() {
            let channel = if first_up.is_none() {
                match endpoint.connect().await {
                    Ok(channel) => match auth.log_in(channel.clone()).await {
                        Ok(()) => {
                            first_up = Some(index);
                            channel
                        }
                        Err(err) if err.is_retryable() => {
                            debug!(%uri, %err, "cannot log in");
                            last_failure = format!("{uri}: {err}");
                            channel
                        }
                        Err(err) => return Err(err),
                    },
                    Err(err) => {
                        debug!(%uri, err = %chain(&err), "cannot connect");
                        last_failure = format!("{uri}: {}", chain(&err));
                        endpoint.connect_lazy()
                    }
                }
            } else {
                endpoint.connect_lazy()
            };
            members.push(Member { uri, channel });
        }
        let Some(current) = first_up else {
            return Err(Error::Unavailable {
                message: format!("no endpoint reachable (last: {last_failure})"),
            });
        };
        info!(endpoint = %members[current].uri, "connected");
        Ok(Members {
            members,
            current: AtomicUsize::new(current),
            auth,
        })
    }

    /// Channels that connect on first use, for tests of code that needs a
    /// client but sends nothing.
    #[cfg(test)]
    pub(crate) fn unconnected<S: AsRef<str>>(endpoints: impl IntoIterator<Item = S>) -> Members {
        let options = ClientOptions::default();
        let members = endpoints
            .into_iter()
            .map(|given| {
                let uri =
                    endpoint::normalize(given.as_ref(), false).expect("a valid test endpoint");
                let endpoint = Endpoint::from_shared(uri.clone()).expect("a valid test URI");
                let channel = configure(endpoint, &options).connect_lazy();
                Member { uri, channel }
            })
            .collect();
        Members {
            members,
            current: AtomicUsize::new(0),
            auth: Auth::new(None),
        }
    }

    /// The member calls go to now, and its channel (adding the token).
    pub(crate) fn current(&self) -> (usize, Transport) {
        let index = self.current.load(Ordering::Acquire) % self.members.len();
        let channel = self.members[index].channel.clone();
        (
            index,
            InterceptedService::new(channel, self.auth.interceptor()),
        )
    }

    /// The client's login.
    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Logs in again through member `index`, after it refused the token
    /// `stale` as invalid (expired, or issued by another member of a
    /// cluster whose tokens are per member).
    pub(crate) async fn refresh_token(
        &self,
        index: usize,
        stale: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<(), Error> {
        let channel = self.members[index % self.members.len()].channel.clone();
        self.auth.refresh(stale, channel).await
    }

    /// Member `index` failed a call: move to the next one, unless another
    /// call already moved on (two calls failing together must not skip a
    /// member).
    pub(crate) fn failed(&self, index: usize) {
        let next = (index + 1) % self.members.len();
        if self
            .current
            .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            debug!(from = %self.members[index].uri, to = %self.members[next].uri, "failing over");
        }
    }

    /// How many endpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// The URI of member `index`.
    pub(crate) fn uri(&self, index: usize) -> &str {
        &self.members[index % self.members.len()].uri
    }

    /// Every endpoint's URI, in the order given.
    pub(crate) fn uris(&self) -> Vec<String> {
        self.members.iter().map(|m| m.uri.clone()).collect()
    }
}

fn configure(endpoint: Endpoint, options: &ClientOptions) -> Endpoint {
    let endpoint = endpoint
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true);
    match options.keep_alive {
        Some((interval, timeout)) => endpoint
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(timeout)
            .keep_alive_while_idle(true),
        None => endpoint,
    }
}

/// An error and its causes on one line (tonic's transport errors say only
/// "transport error" at the top).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
