//! [`Tls`]: how the client checks members' certificates on `https://`
//! endpoints, and the certificate it presents to members that ask for
//! one (`--client-cert-auth`).

use std::fmt;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// TLS settings for [`ClientOptions::tls`](crate::ClientOptions::tls):
/// the CA members' certificates must be signed by, and optionally a client
/// certificate. With a client certificate verified by a member's
/// `--trusted-ca-file`, a cluster with authentication on takes the
/// certificate's common name as the user, so no credentials are needed.
///
/// Its `Debug` output hides the private key.
///
/// ```
/// use witan_client::{ClientOptions, Tls};
///
/// # let (ca_pem, cert_pem, key_pem) = ("ca", "cert", "key");
/// let options = ClientOptions::default().tls(
///     Tls::new(ca_pem)
///         .identity(cert_pem, key_pem)
///         .domain_name("127.0.0.1"),
/// );
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct Tls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain_name: Option<String>,
}

impl Tls {
    /// Trust members whose certificate is signed by the CA in `ca_pem`
    /// (PEM text: one or more certificates).
    pub fn new(ca_pem: impl AsRef<[u8]>) -> Tls {
        Tls {
            ca_pem: ca_pem.as_ref().to_vec(),
            identity: None,
            domain_name: None,
        }
    }

    /// Present this certificate and private key (PEM) to members that
    /// verify clients.
    pub fn identity(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Tls {
        self.identity = Some((cert_pem.as_ref().to_vec(), key_pem.as_ref().to_vec()));
        self
    }

    /// The name members' certificates must carry, when it is not the
    /// endpoint's host (e.g. endpoints given as IP addresses and
    /// certificates issued for a DNS name).
    pub fn domain_name(mut self, name: impl Into<String>) -> Tls {
        self.domain_name = Some(name.into());
        self
    }

    /// tonic's configuration for these settings.
    pub(crate) fn to_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.domain_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca_pem", &format_args!("<{} bytes>", self.ca_pem.len()))
            .field("client_certificate", &self.identity.is_some())
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_is_not_in_debug_output() {
        let tls = Tls::new("CA").identity("CERT", "PRIVATE KEY");
        let shown = format!("{tls:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("client_certificate: true"), "{shown}");
    }
}
