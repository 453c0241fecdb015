//! Transport security for the client and peer links, with etcd's flags
//! (`--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`
//! and their `--peer-*` twins).
//!
//! The TLS handshake is done here, on each accepted TCP connection
//! ([`accept`]), not by tonic: the decrypted stream is then served like a
//! plain one (gRPC and the HTTP/1.1 gateway on one port, ALPN `h2` and
//! `http/1.1`) and can be wrapped by other stream adapters. Every accepted
//! connection, plain or TLS, carries a [`ConnInfo`] that tonic puts into
//! the extensions of each request on it:
//!
//! ```ignore
//! // in a gRPC handler (tonic::Request) or an axum handler (http::Request)
//! let cn = request.extensions().get::<witan_server::tls::ConnInfo>()
//!     .and_then(|info| info.common_name.as_deref());
//! ```
//!
//! `common_name` is set only for a client certificate that was verified
//! against `--trusted-ca-file`. Peer clients (raft transport, joining) get
//! their TLS settings from [`peer_client_tls`].
//!
//! Must not import: api, raft, storage (this module knows only files,
//! sockets and rustls).

mod accept;
mod cn;
mod files;

use std::sync::Arc;

pub use crate::config::is_https;
pub use accept::{accept, Conn, ConnInfo, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
pub use cn::common_name;
pub use files::{peer_client_tls, TlsError, TlsFiles};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// The ALPN protocols a listener offers: gRPC clients need `h2`, the JSON
/// gateway and `/metrics` scrapers speak `http/1.1`.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS acceptor for one kind of listener (client or peer), built from
/// its files. `client_cert_auth` refuses, at the handshake, a client
/// without a certificate signed by the trusted CA; without it, a
/// certificate is still verified when the client presents one.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?;
    let builder = match &files.trusted_ca {
        Some(ca) => {
            let roots = Arc::new(files::load_roots(ca)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if files.client_cert_auth {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().map_err(|source| TlsError::Verifier {
                path: ca.clone(),
                source,
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let certs = files::load_certs(&files.cert, "certificate file")?;
    let key = files::load_key(&files.key)?;
    let mut config =
        builder
            .with_single_cert(certs, key)
            .map_err(|source| TlsError::CertAndKey {
                cert: files.cert.clone(),
                key: files.key.clone(),
                source,
            })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor for a listener at `url`: `None` for `http://`, an error
/// when an `https://` URL has no certificate configured.
pub fn acceptor_for(url: &str, files: Option<&TlsFiles>) -> Result<Option<TlsAcceptor>, TlsError> {
    if !is_https(url) {
        return Ok(None);
    }
    let files = files.ok_or_else(|| TlsError::NoCertificate(url.to_string()))?;
    acceptor(files).map(Some)
}

#[cfg(test)]
mod tests;
