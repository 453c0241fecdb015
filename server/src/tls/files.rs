//! Loading certificates, keys and trusted CAs from PEM files, with errors
//! that name the file and the reason.

use std::path::{Path, PathBuf};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::Config;

/// The TLS files of one kind of link (client or peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This member's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that sign the other side's certificates.
    pub trusted_ca: Option<PathBuf>,
    /// Refuse a connecting client without a certificate signed by
    /// `trusted_ca`.
    pub client_cert_auth: bool,
}

impl TlsFiles {
    /// The client listener's files (`--cert-file`, `--key-file`,
    /// `--trusted-ca-file`, `--client-cert-auth`); `None` without a
    /// certificate.
    pub fn client(config: &Config) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: config.cert_file.clone()?,
            key: config.key_file.clone()?,
            trusted_ca: config.trusted_ca_file.clone(),
            client_cert_auth: config.client_cert_auth,
        })
    }

    /// The peer links' files (`--peer-cert-file`, `--peer-key-file`,
    /// `--peer-trusted-ca-file`, `--peer-client-cert-auth`); `None`
    /// without a certificate.
    pub fn peer(config: &Config) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: config.peer_cert_file.clone()?,
            key: config.peer_key_file.clone()?,
            trusted_ca: config.peer_trusted_ca_file.clone(),
            client_cert_auth: config.peer_client_cert_auth,
        })
    }
}

/// TLS settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file it is ("certificate file", "key file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM, or holds nothing of the expected kind.
    #[error("{what} {path} is not usable: {reason}")]
    Pem {
        /// Which file it is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser found wrong.
        reason: String,
    },
    /// A CA certificate is not a valid trust anchor.
    #[error("trusted CA file {path} holds an invalid certificate: {source}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why the certificate was refused.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from the CAs.
    #[error("trusted CA file {path} cannot verify client certificates: {source}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// The certificate and key do not make a usable identity (for
    /// example, the key is not the certificate's).
    #[error("certificate {cert} with key {key} is not usable: {source}")]
    CertAndKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why rustls refused them.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused its own protocol settings.
    #[error("TLS settings refused: {0}")]
    Rustls(#[source] rustls::Error),
    /// An `https://` URL with no certificate configured for it.
    #[error("{0} is https but no certificate and key are configured for it")]
    NoCertificate(String),
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, what: &'static str, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Every certificate in the PEM file at `path` (at least one).
pub(crate) fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, what, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, what, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "key file";
    let pem = read(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            pem_error(path, WHAT, "no PRIVATE KEY block found")
        }
        other => pem_error(path, WHAT, other),
    })
}

/// The trust anchors in the CA file at `path`.
pub(crate) fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path, "trusted CA file")? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

/// The TLS settings of this member's connections to its peers: it shows
/// its peer certificate and verifies the peer's against
/// `--peer-trusted-ca-file`. `None` when no peer certificate is
/// configured. The files are checked here, so a bad file fails the start
/// with a clear error rather than every later connection.
pub fn peer_client_tls(config: &Config) -> Result<Option<ClientTlsConfig>, TlsError> {
    let Some(files) = TlsFiles::peer(config) else {
        return Ok(None);
    };
    load_certs(&files.cert, "peer certificate file")?;
    load_key(&files.key)?;
    let mut tls = ClientTlsConfig::new().identity(Identity::from_pem(
        read(&files.cert, "peer certificate file")?,
        read(&files.key, "key file")?,
    ));
    if let Some(ca) = &files.trusted_ca {
        load_roots(ca)?;
        tls = tls.ca_certificate(Certificate::from_pem(read(ca, "trusted CA file")?));
    }
    Ok(Some(tls))
}
