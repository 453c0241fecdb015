//! Accepted connections, plain or TLS, as one stream type that tonic
//! serves, and the bounded, time-limited handshakes that produce them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use tracing::debug;

use super::cn::common_name;

/// How long a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once on one listener; further connections
/// wait in the accept queue, so slow or hostile clients cannot make the
/// member hold unbounded half-open connections.
pub const MAX_PENDING_HANDSHAKES: usize = 128;

/// What a request handler can know about the connection it came on: tonic
/// inserts it into every request's extensions (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The common name of the client certificate, verified against the
    /// trusted CA (`None` on plain connections or without a certificate).
    pub common_name: Option<String>,
}

/// An accepted connection, plain or TLS (already handshaken).
pub struct Conn {
    io: ConnIo,
    info: ConnInfo,
}

enum ConnIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// The connection's details.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

/// Serves the connections of `tcp` as they are accepted: plain when
/// `acceptor` is `None`, else after a TLS handshake. A failed or timed-out
/// handshake drops that connection only (logged at debug: it is the
/// client's problem, and a scanner could flood the log); at most
/// [`MAX_PENDING_HANDSHAKES`] run at once, and one slow handshake does not
/// hold up the others.
pub fn accept<S>(
    tcp: S,
    acceptor: Option<TlsAcceptor>,
) -> impl Stream<Item = io::Result<Conn>> + Send + 'static
where
    S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
{
    tcp.map(move |accepted| {
        let acceptor = acceptor.clone();
        async move {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(err) => return Some(Err(err)),
            };
            let remote_addr = stream.peer_addr().ok();
            let Some(acceptor) = acceptor else {
                let info = ConnInfo {
                    remote_addr,
                    ..ConnInfo::default()
                };
                return Some(Ok(Conn {
                    io: ConnIo::Plain(stream),
                    info,
                }));
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let common_name = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|leaf| common_name(leaf.as_ref()));
                    let info = ConnInfo {
                        remote_addr,
                        tls: true,
                        common_name,
                    };
                    Some(Ok(Conn {
                        io: ConnIo::Tls(Box::new(tls)),
                        info,
                    }))
                }
                Ok(Err(err)) => {
                    debug!(?remote_addr, %err, "TLS handshake failed: connection dropped");
                    None
                }
                Err(_) => {
                    debug!(?remote_addr, "TLS handshake timed out: connection dropped");
                    None
                }
            }
        }
    })
    .buffer_unordered(MAX_PENDING_HANDSHAKES)
    .filter_map(futures::future::ready)
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            ConnIo::Plain(s) => s.is_write_vectored(),
            ConnIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
