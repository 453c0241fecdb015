//! How a [`Client`](crate::Client) connects: timeouts, HTTP/2
//! keepalives, credentials and TLS.

use std::time::Duration;

use crate::auth::Credentials;
use crate::tls::Tls;

/// Connection settings for [`Client::connect`](crate::Client::connect).
///
/// ```
/// use std::time::Duration;
/// use witan_client::ClientOptions;
///
/// let options = ClientOptions::default()
///     .connect_timeout(Duration::from_secs(1))
///     .request_timeout(Duration::from_secs(3))
///     .keep_alive(Duration::from_secs(2), Duration::from_secs(1));
/// assert_eq!(options.get_request_timeout(), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) keep_alive: Option<(Duration, Duration)>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tls: Option<Tls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            // A member that vanished without closing its connection (killed
            // host, partition) is noticed within interval + timeout.
            keep_alive: Some((Duration::from_secs(5), Duration::from_secs(3))),
            credentials: None,
            tls: None,
        }
    }
}

impl ClientOptions {
    /// How long connecting to one member may take before the next one is
    /// tried (default 2s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of every call, failovers included (default 10s).
    /// [`Client::with_timeout`](crate::Client::with_timeout) changes it
    /// for some calls.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// HTTP/2 pings every `interval` (also while idle); a connection whose
    /// ping is not answered within `timeout` is closed (default 5s / 3s).
    pub fn keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keep_alive = Some((interval, timeout));
        self
    }

    /// No HTTP/2 pings: a silently dead member is noticed only when a
    /// call's deadline passes.
    pub fn no_keep_alive(mut self) -> Self {
        self.keep_alive = None;
        self
    }

    /// Log in as `user` (a cluster with authentication on): the client
    /// authenticates when it connects, sends the token with every call,
    /// and logs in again (repeating the call once) when the token expires.
    /// Wrong credentials make [`Client::connect`](crate::Client::connect)
    /// fail with [`Error::AuthenticationFailed`](crate::Error::AuthenticationFailed).
    /// The password is kept out of `Debug` output and logs.
    ///
    /// ```
    /// use witan_client::ClientOptions;
    ///
    /// let options = ClientOptions::default().credentials("alice", "s3cret");
    /// assert!(!format!("{options:?}").contains("s3cret"));
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Connect over TLS ([`Tls`]): endpoints are then `https://host:port`
    /// (or scheme-less); `http://` endpoints are refused.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The deadline of every call.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }
}
