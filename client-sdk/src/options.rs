//! How a [`Client`](crate::Client) connects: timeouts and HTTP/2
//! keepalives.

use std::time::Duration;

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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            // A member that vanished without closing its connection (killed
            // host, partition) is noticed within interval + timeout.
            keep_alive: Some((Duration::from_secs(5), Duration::from_secs(3))),
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

    /// The deadline of every call.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }
}
