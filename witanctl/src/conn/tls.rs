//! Transport security for witanctl's connections, with etcdctl's flags
//! (`--cacert`, `--cert`, `--key`, `--insecure-skip-tls-verify`,
//! `--insecure-transport`): whether an endpoint gets TLS ([`TlsFlags::wanted`]),
//! the rustls client configuration the flags describe
//! ([`TlsFlags::client_config`]) and the connector that dials TCP and does
//! the handshake ([`connector`]).
//!
//! The handshake is done here rather than by tonic because etcdctl's
//! `--insecure-skip-tls-verify` needs a certificate verifier tonic does not
//! offer; one code path serves every TLS connection. tonic then sees a
//! plain `http://` URI over an already encrypted stream.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;
use tonic::transport::Uri;

use crate::error::{CtlError, UsageError};

/// Where the operating system keeps its trusted CAs (Debian, Ubuntu,
/// Alpine): used for `https://` endpoints when no `--cacert` is given.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// etcdctl's transport security flags, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// `--cacert`: verify servers with this CA bundle.
    pub cacert: Option<PathBuf>,
    /// `--cert`: the client certificate to show.
    pub cert: Option<PathBuf>,
    /// `--key`: the client certificate's private key.
    pub key: Option<PathBuf>,
    /// `--insecure-skip-tls-verify`: accept any server certificate.
    pub skip_verify: bool,
    /// `--insecure-transport` (etcdctl's default `true`): plain TCP for
    /// endpoints without a scheme unless a TLS flag says otherwise.
    pub insecure_transport: bool,
}

impl TlsFlags {
    /// Whether `endpoint` is dialled with TLS: an `https://` endpoint
    /// always, an `http://` one never, one without a scheme when any TLS
    /// flag is given or `--insecure-transport=false`.
    pub fn wanted(&self, endpoint: &str) -> bool {
        if endpoint.starts_with("https://") {
            return true;
        }
        if endpoint.contains("://") {
            return false;
        }
        self.cacert.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.skip_verify
            || !self.insecure_transport
    }

    /// The rustls configuration the flags describe (ALPN `h2`, for gRPC).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, CtlError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("cannot set up TLS with", Path::new("rustls"), e))?;
        let builder = if self.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(
                    provider.signature_verification_algorithms,
                )))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert, "--cert")?, load_key(key)?)
                .map_err(|e| invalid("cannot use the key of --cert", key, e))?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(UsageError::Missing("--cert and --key must be given together").into()),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The trust anchors: `--cacert`, else the system's bundle when there
    /// is one (else none, and every handshake fails with "unknown issuer").
    fn roots(&self) -> Result<rustls::RootCertStore, CtlError> {
        let mut roots = rustls::RootCertStore::empty();
        let (path, what) = match &self.cacert {
            Some(path) => (path.clone(), "--cacert"),
            None if Path::new(SYSTEM_ROOTS).exists() => {
                (PathBuf::from(SYSTEM_ROOTS), "the system CA bundle")
            }
            None => return Ok(roots),
        };
        for cert in load_certs(&path, what)? {
            roots
                .add(cert)
                .map_err(|e| invalid("a CA certificate is not usable in", &path, e))?;
        }
        Ok(roots)
    }
}

/// A connector for tonic that dials the URI's host and port over TCP and
/// does the TLS handshake with `config`, checking the certificate against
/// the host's name (or IP address).
pub fn connector(
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
       + Clone
       + 'static {
    tower::service_fn(move |uri: Uri| {
        let connector = TlsConnector::from(config.clone());
        async move {
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        }
    })
}

/// Every certificate in the PEM file at `path` (at least one).
fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, CtlError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, path, e))?;
    if certs.is_empty() {
        return Err(invalid(what, path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The private key in the PEM file at `path`.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CtlError> {
    let pem = read(path, "--key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| invalid("--key", path, e))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|source| CtlError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A file that was read but holds nothing usable.
fn invalid(what: &'static str, path: &Path, reason: impl ToString) -> CtlError {
    CtlError::Io {
        what,
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.to_string()),
    }
}

/// `--insecure-skip-tls-verify`: any certificate is accepted, but the
/// server must still prove it holds the certificate's key (the handshake
/// signatures are checked), so the connection is at least encrypted to
/// whoever presented it.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> TlsFlags {
        TlsFlags {
            insecure_transport: true,
            ..TlsFlags::default()
        }
    }

    #[test]
    fn the_scheme_decides_and_tls_flags_decide_for_bare_endpoints() {
        let plain = flags();
        assert!(plain.wanted("https://127.0.0.1:1"));
        assert!(!plain.wanted("http://127.0.0.1:1"));
        assert!(!plain.wanted("127.0.0.1:1"));
        let ca = TlsFlags {
            cacert: Some("ca.pem".into()),
            ..flags()
        };
        assert!(ca.wanted("127.0.0.1:1"));
        assert!(!ca.wanted("http://127.0.0.1:1"));
        let secure = TlsFlags {
            insecure_transport: false,
            ..flags()
        };
        assert!(secure.wanted("127.0.0.1:1"));
        let skip = TlsFlags {
            skip_verify: true,
            ..flags()
        };
        assert!(skip.wanted("127.0.0.1:1"));
    }

    #[test]
    fn a_missing_ca_file_names_the_flag_and_the_path() {
        let ca = TlsFlags {
            cacert: Some("/nonexistent/ca.pem".into()),
            ..flags()
        };
        let error = ca.client_config().unwrap_err().to_string();
        assert!(
            error.starts_with("--cacert /nonexistent/ca.pem: "),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let ca = TlsFlags {
            cacert: Some(path.clone()),
            ..flags()
        };
        let error = ca.client_config().unwrap_err().to_string();
        assert_eq!(
            error,
            format!("--cacert {}: no CERTIFICATE block found", path.display())
        );
    }

    #[test]
    fn a_cert_without_its_key_is_a_usage_error() {
        let half = TlsFlags {
            cert: Some("c.pem".into()),
            skip_verify: true,
            ..flags()
        };
        let error = half.client_config().unwrap_err().to_string();
        assert_eq!(error, "--cert and --key must be given together");
    }

    #[test]
    fn skipping_verification_needs_no_ca() {
        let skip = TlsFlags {
            skip_verify: true,
            ..flags()
        };
        let config = skip.client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
