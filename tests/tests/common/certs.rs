//! Certificates for the TLS tests, generated in the test with rcgen (no
//! private key is ever committed).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair,
};

/// A certificate authority for the test.
pub struct Ca {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, written to files.
pub struct Pair {
    /// The certificate file.
    pub cert: PathBuf,
    /// Its private key file.
    pub key: PathBuf,
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = common_name(name);
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Ca {
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Writes the CA certificate to `dir/name.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.cert_pem)?;
        Ok(path)
    }

    /// A certificate for 127.0.0.1 named `cn` (usable as a server and as a
    /// client), written to `dir`; `expired` makes it valid in 2020 only.
    pub fn issue(&self, dir: &Path, cn: &str, expired: bool) -> Result<Pair> {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()])?;
        params.distinguished_name = common_name(cn);
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2020, 12, 31);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let pair = Pair {
            cert: dir.join(format!("{cn}.pem")),
            key: dir.join(format!("{cn}-key.pem")),
        };
        std::fs::write(&pair.cert, cert.pem())?;
        std::fs::write(&pair.key, key.serialize_pem())?;
        Ok(pair)
    }
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}
