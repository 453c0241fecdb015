//! A real single-member etcd 3.4 on free loopback ports, plain or with
//! TLS on its client port, killed when dropped. Tests run witanctl against
//! it to check that witanctl speaks to etcd as etcdctl does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, run};

/// Where the etcd binary is expected.
pub const ETCD: &str = "/usr/bin/etcd";

/// The client TLS files of an etcd (`--cert-file`, `--key-file`,
/// `--trusted-ca-file`, `--client-cert-auth`).
pub struct ServerTls {
    /// The server certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The CA client certificates must come from.
    pub ca: PathBuf,
}

/// A running etcd.
pub struct Etcd {
    child: Child,
    /// Its client endpoint, `host:port` (no scheme).
    pub client: String,
    /// Its peer URL.
    pub peer: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Etcd {
    /// Starts etcd (with TLS on the client port when `tls` is given) and
    /// waits until `witanctl <ready_args> get ready` succeeds; None, with
    /// a notice, when etcd is not installed.
    pub async fn start(tls: Option<&ServerTls>, ready_args: &[&str]) -> Option<Etcd> {
        if !Path::new(ETCD).exists() {
            eprintln!("skipping: {ETCD} is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let client = format!("127.0.0.1:{}", free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut cmd = Command::new(ETCD);
        cmd.args(["--name", "e1"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &format!("{scheme}://{client}")])
            .args(["--advertise-client-urls", &format!("{scheme}://{client}")])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e1={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tls) = tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let etcd = Etcd {
            child: cmd.spawn().expect("etcd starts"),
            client,
            peer,
            _dir: dir,
        };
        let mut args = ready_args.to_vec();
        args.extend(["get", "ready"]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if run(&etcd.client, &args).await.status.success() {
                return Some(etcd);
            }
            assert!(tokio::time::Instant::now() < deadline, "etcd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
