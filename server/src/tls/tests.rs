//! Loading TLS files (every failure names its file) and handshakes on the
//! accept stream (refused clients are dropped, the CN of accepted ones is
//! known), with certificates generated here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_stream::wrappers::TcpListenerStream;

use super::*;

/// A CA that signs leaf certificates.
struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(name);
        let key = KeyPair::generate().unwrap();
        let cert_pem = params.self_signed(&key).unwrap().pem();
        Ca {
            cert_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for 127.0.0.1 with common name `cn`: (cert PEM, key PEM).
    fn leaf(&self, cn: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = dn(cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Server files signed by `ca`, trusting `ca` for clients.
fn server_files(dir: &Path, ca: &Ca, client_cert_auth: bool) -> TlsFiles {
    let (cert, key) = ca.leaf("server");
    TlsFiles {
        cert: write(dir, "server.pem", &cert),
        key: write(dir, "server-key.pem", &key),
        trusted_ca: Some(write(dir, "ca.pem", &ca.cert_pem)),
        client_cert_auth,
    }
}

#[test]
fn every_unusable_file_is_named_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let good = server_files(dir.path(), &ca, true);
    acceptor(&good).expect("good files make an acceptor");

    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        ..good.clone()
    };
    let err = acceptor(&missing).err().unwrap();
    assert!(matches!(
        err,
        TlsError::Read {
            what: "certificate file",
            ..
        }
    ));
    assert!(err.to_string().contains("nope.pem"), "{err}");

    let not_pem = TlsFiles {
        cert: write(dir.path(), "junk.pem", "hello"),
        ..good.clone()
    };
    let err = acceptor(&not_pem).err().unwrap();
    assert!(matches!(err, TlsError::Pem { .. }), "{err}");
    assert!(err.to_string().contains("junk.pem"), "{err}");

    let no_key = TlsFiles {
        key: write(dir.path(), "nokey.pem", &ca.cert_pem),
        ..good.clone()
    };
    let err = acceptor(&no_key).err().unwrap();
    assert!(err.to_string().contains("nokey.pem"), "{err}");
    assert!(err.to_string().contains("no PRIVATE KEY"), "{err}");

    let (_, other_key) = ca.leaf("other");
    let mismatched = TlsFiles {
        key: write(dir.path(), "other-key.pem", &other_key),
        ..good.clone()
    };
    let err = acceptor(&mismatched).err().unwrap();
    assert!(matches!(err, TlsError::CertAndKey { .. }), "{err}");

    let bad_ca = TlsFiles {
        trusted_ca: Some(write(
            dir.path(),
            "badca.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )),
        ..good.clone()
    };
    let err = acceptor(&bad_ca).err().unwrap();
    assert!(err.to_string().contains("badca.pem"), "{err}");

    assert!(matches!(
        acceptor_for("https://127.0.0.1:1", None),
        Err(TlsError::NoCertificate(_))
    ));
    assert!(acceptor_for("http://127.0.0.1:1", None).unwrap().is_none());
}

/// A TLS client trusting `ca`, showing `identity` if given.
fn connector(ca: &Ca, identity: Option<(String, String)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Connects, and reports whether the server answered a ping with a pong.
async fn ping(addr: std::net::SocketAddr, connector: TlsConnector) -> bool {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return false;
    };
    if tls.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut pong = [0u8; 4];
    tls.read_exact(&mut pong).await.is_ok() && &pong == b"pong"
}

#[tokio::test]
async fn refused_clients_are_dropped_and_accepted_ones_carry_their_cn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let rogue = Ca::new("rogue");
    let files = server_files(dir.path(), &ca, true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = Box::pin(accept(
        TcpListenerStream::new(listener),
        Some(acceptor(&files).unwrap()),
    ));
    let (infos, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        while let Some(conn) = incoming.next().await {
            let mut conn = conn.unwrap();
            infos.send(conn.info().clone()).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                if conn.read_exact(&mut buf).await.is_ok() {
                    let _ = conn.write_all(b"pong").await;
                }
            });
        }
    });

    // A client that never starts its handshake holds up no one else.
    let _silent = TcpStream::connect(addr).await.unwrap();
    assert!(!ping(addr, connector(&ca, None)).await, "no certificate");
    assert!(
        !ping(addr, connector(&ca, Some(rogue.leaf("mallory")))).await,
        "wrong CA"
    );
    assert!(
        ping(addr, connector(&ca, Some(ca.leaf("alice")))).await,
        "good cert"
    );
    // The refused handshakes yielded nothing: the first connection served
    // is alice's.
    let info = seen.recv().await.unwrap();
    assert_eq!(info.common_name.as_deref(), Some("alice"));
    assert!(info.tls);
    assert!(seen.try_recv().is_err());
    server.abort();
}

/// Answers with the common name tonic put into the request's extensions.
async fn whoami(request: axum::extract::Request) -> String {
    request
        .extensions()
        .get::<ConnInfo>()
        .map(|info| format!("cn={:?} tls={}", info.common_name, info.tls))
        .unwrap_or_else(|| "no ConnInfo".to_string())
}

#[tokio::test]
async fn request_handlers_see_the_client_certificates_common_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let files = server_files(dir.path(), &ca, true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = accept(
        TcpListenerStream::new(listener),
        Some(acceptor(&files).unwrap()),
    );
    let routes = axum::Router::new().route("/whoami", axum::routing::get(whoami));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(tonic::service::Routes::from(routes))
            .serve_with_incoming(incoming),
    );

    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector(&ca, Some(ca.leaf("carol")))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"cn=Some("carol") tls=true"#),
        "{response}"
    );
    server.abort();
}

#[tokio::test]
async fn a_member_with_an_unreadable_certificate_does_not_start() {
    use clap::Parser;

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let key = write(
        dir.path(),
        "key.pem",
        &KeyPair::generate().unwrap().serialize_pem(),
    );
    let config = crate::config::Config::parse_from([
        "witan".as_ref(),
        "--data-dir".as_ref(),
        dir.path().join("data").as_os_str(),
        "--listen-client-urls".as_ref(),
        "https://127.0.0.1:0".as_ref(),
        "--cert-file".as_ref(),
        missing.as_os_str(),
        "--key-file".as_ref(),
        key.as_os_str(),
    ]);
    let err = crate::node::Node::start(config).await.err().unwrap();
    assert!(
        matches!(err, crate::node::StartError::Tls(TlsError::Read { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("missing-cert.pem"), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "failed before touching the data dir"
    );
}
