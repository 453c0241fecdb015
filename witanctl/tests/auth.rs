//! The `auth`, `user` and `role` commands and the TLS flags, against a
//! real etcd 3.4 (spawned on free loopback ports; skipped, with a notice,
//! where `/usr/bin/etcd` is missing) and against witan (in process): one
//! scenario per feature, with etcdctl's exact output, run against both.

mod common;

use common::certs::Ca;
use common::etcd::{Etcd, ServerTls};
use common::witan::Witan;
use common::{fails, ok, run, run_with_input};

const ROOT: [&str; 2] = ["--user", "root:rootpw"];

/// `args` after `prefix` (global flags such as `--user`).
fn with<'a>(prefix: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    prefix.iter().chain(args).copied().collect()
}

/// Enabling auth needs root; a role READ on a prefix lets its user read
/// there and nowhere else; passwd, revoke-role, revoke-permission,
/// delete and disable do what etcdctl says they do.
async fn auth_scenario(ep: &str) {
    let stderr = fails(ep, &["auth", "enable"]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: root user does not exist"),
        "{stderr}"
    );
    assert_eq!(
        ok(ep, &["user", "add", "root:rootpw"]).await,
        "User root created\n"
    );
    // witanctl grants role root to user root itself, as etcdctl does.
    assert_eq!(
        ok(ep, &["auth", "enable"]).await,
        "Authentication Enabled\n"
    );
    let stderr = fails(ep, &["put", "/app/x", "1"]).await;
    assert!(stderr.starts_with("Error: etcdserver: "), "{stderr}");

    assert_eq!(ok(ep, &with(&ROOT, &["put", "/app/x", "1"])).await, "OK\n");
    assert_eq!(
        ok(ep, &with(&ROOT, &["put", "/other/y", "2"])).await,
        "OK\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["role", "add", "reader"])).await,
        "Role reader created\n"
    );
    let grant = [
        "role",
        "grant-permission",
        "reader",
        "read",
        "/app/",
        "--prefix",
    ];
    assert_eq!(ok(ep, &with(&ROOT, &grant)).await, "Role reader updated\n");
    assert_eq!(
        ok(ep, &with(&ROOT, &["role", "get", "reader"])).await,
        "Role reader\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ep, &with(&ROOT, &["role", "get", "reader", "-w", "json"])).await)
            .unwrap();
    assert_eq!(json["perm"][0]["key"], "L2FwcC8=");
    assert_eq!(json["perm"][0]["range_end"], "L2FwcDA=");
    assert!(
        json["perm"][0].get("permType").is_none(),
        "READ is 0: {json}"
    );

    let add = with(&ROOT, &["user", "add", "alice", "--interactive=false"]);
    let out = run_with_input(ep, &add, "alicepw\n").await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "User alice created\n");
    assert_eq!(
        ok(ep, &with(&ROOT, &["user", "grant-role", "alice", "reader"])).await,
        "Role reader is granted to user alice\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["user", "get", "alice"])).await,
        "User: alice\nRoles: reader\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["user", "get", "alice", "--detail"])).await,
        "User: alice\n\nRole reader\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["user", "list"])).await,
        "alice\nroot\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["role", "list"])).await,
        "reader\nroot\n"
    );

    let alice = ["--user", "alice:alicepw"];
    assert_eq!(
        ok(ep, &with(&alice, &["get", "/app/x"])).await,
        "/app/x\n1\n"
    );
    let stderr = fails(ep, &with(&alice, &["get", "/other/y"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: permission denied"),
        "{stderr}"
    );
    let stderr = fails(ep, &with(&alice, &["put", "/app/x", "2"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: permission denied"),
        "{stderr}"
    );
    let stderr = fails(ep, &["--user", "alice:wrong", "get", "/app/x"]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: authentication failed, invalid user ID or password"),
        "{stderr}"
    );

    // passwd: the old password stops working, the new one works.
    let passwd = with(&ROOT, &["user", "passwd", "alice", "--interactive=false"]);
    let out = run_with_input(ep, &passwd, "newpw\n").await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Password updated\n");
    let stderr = fails(ep, &with(&alice, &["get", "/app/x"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: authentication failed"),
        "{stderr}"
    );
    let alice = ["--user", "alice", "--password", "newpw"];
    assert_eq!(
        ok(ep, &with(&alice, &["get", "/app/x"])).await,
        "/app/x\n1\n"
    );

    // revoke-role: the role's permissions go with it.
    assert_eq!(
        ok(
            ep,
            &with(&ROOT, &["user", "revoke-role", "alice", "reader"])
        )
        .await,
        "Role reader is revoked from user alice\n"
    );
    let stderr = fails(ep, &with(&alice, &["get", "/app/x"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: permission denied"),
        "{stderr}"
    );
    let stderr = fails(
        ep,
        &with(&ROOT, &["user", "revoke-role", "alice", "reader"]),
    )
    .await;
    assert!(
        stderr.starts_with("Error: etcdserver: role is not granted to the user"),
        "{stderr}"
    );

    let revoke = ["role", "revoke-permission", "reader", "/app/", "--prefix"];
    assert_eq!(
        ok(ep, &with(&ROOT, &revoke)).await,
        "Permission of range [/app/, /app0) is revoked from role reader\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["role", "get", "reader"])).await,
        "Role reader\nKV Read:\nKV Write:\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["role", "delete", "reader"])).await,
        "Role reader deleted\n"
    );
    assert_eq!(
        ok(ep, &with(&ROOT, &["user", "delete", "alice"])).await,
        "User alice deleted\n"
    );
    let stderr = fails(ep, &with(&ROOT, &["user", "get", "alice"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: user name not found"),
        "{stderr}"
    );
    let stderr = fails(ep, &with(&alice, &["get", "/app/x"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: authentication failed"),
        "{stderr}"
    );

    // --user without a password asks for it, as etcdctl does.
    let out = run_with_input(ep, &["--user", "root", "get", "/other/y"], "rootpw\n").await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Password: \n/other/y\n2\n"
    );

    assert_eq!(
        ok(ep, &with(&ROOT, &["auth", "disable"])).await,
        "Authentication Disabled\n"
    );
    assert_eq!(ok(ep, &["get", "/other/y"]).await, "/other/y\n2\n");
    // Credentials for a cluster that does not check them do no harm.
    assert_eq!(
        ok(ep, &with(&ROOT, &["get", "/other/y"])).await,
        "/other/y\n2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_commands_against_witan() {
    let fast = ["--bcrypt-cost".to_string(), "4".to_string()];
    let witan = Witan::start(false, &fast, &[]).await;
    auth_scenario(&witan.client).await;
    // etcdctl 3.5's `auth status` (etcd 3.4 does not serve it).
    let status = ok(&witan.client, &["auth", "status"]).await;
    assert!(
        status.starts_with("Authentication Status: false\nAuthRevision: "),
        "{status}"
    );
    witan.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_commands_against_etcd() {
    let Some(etcd) = Etcd::start(None, &[]).await else {
        return;
    };
    auth_scenario(&etcd.client).await;
}

/// A CA, a server certificate and a client certificate, in a temp dir.
struct Certs {
    cacert: String,
    cert: String,
    key: String,
    server: ServerTls,
    _dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(dir.path(), "ca");
        let server = ca.issue(dir.path(), "server");
        let client = ca.issue(dir.path(), "client");
        Certs {
            cacert: ca.cert.display().to_string(),
            cert: client.cert.display().to_string(),
            key: client.key.display().to_string(),
            server: ServerTls {
                cert: server.cert,
                key: server.key,
                ca: ca.cert,
            },
            _dir: dir,
        }
    }

    /// witanctl's flags to show the client certificate and trust the CA.
    fn flags(&self) -> [&str; 6] {
        [
            "--cacert",
            &self.cacert,
            "--cert",
            &self.cert,
            "--key",
            &self.key,
        ]
    }

    /// The server flags (etcd's names, witan's too) for TLS with client
    /// certificates required.
    fn server_args(&self) -> Vec<String> {
        let tls = &self.server;
        vec![
            "--cert-file".into(),
            tls.cert.display().to_string(),
            "--key-file".into(),
            tls.key.display().to_string(),
            "--trusted-ca-file".into(),
            tls.ca.display().to_string(),
            "--client-cert-auth".into(),
        ]
    }
}

/// `--cacert/--cert/--key` reach a server that requires client
/// certificates, on bare and `https://` endpoints; without the CA the
/// server is not trusted unless `--insecure-skip-tls-verify`; without a
/// client certificate, or in plain text, nothing gets through; with auth
/// enabled, the client certificate's common name is the user.
async fn tls_scenario(ep: &str, certs: &Certs) {
    let flags = certs.flags();
    let https = format!("https://{ep}");

    // A bare endpoint gets TLS from the flags; an https:// one too.
    assert_eq!(ok(ep, &with(&flags, &["put", "k", "v"])).await, "OK\n");
    assert_eq!(ok(&https, &with(&flags, &["get", "k"])).await, "k\nv\n");
    // Without --cacert the server's certificate is not trusted...
    let no_ca = ["--cert", &certs.cert, "--key", &certs.key];
    let stderr = fails(&https, &with(&no_ca, &["get", "k"])).await;
    assert!(
        stderr.starts_with(&format!("Error: cannot reach {https}: ")),
        "{stderr}"
    );
    // ...unless verification is skipped.
    let skip = with(&no_ca, &["--insecure-skip-tls-verify", "get", "k"]);
    assert_eq!(ok(&https, &skip).await, "k\nv\n");
    // --client-cert-auth: no client certificate, no answer.
    let stderr = fails(&https, &["--cacert", &certs.cacert, "get", "k"]).await;
    assert!(stderr.starts_with("Error: "), "{stderr}");
    // Plain text to a TLS port fails too.
    assert!(!run(ep, &["get", "k"]).await.status.success());
    // A certificate file that is not one says so.
    let stderr = fails(ep, &["--cacert", &certs.key, "get", "k"]).await;
    assert!(
        stderr.starts_with(&format!("Error: --cacert {}: ", certs.key)),
        "{stderr}"
    );

    // With auth on, the certificate's common name ("client") is the user
    // when no --user is given.
    let root = with(&flags, &ROOT);
    assert_eq!(
        ok(ep, &with(&flags, &["user", "add", "root:rootpw"])).await,
        "User root created\n"
    );
    assert_eq!(
        ok(ep, &with(&root, &["auth", "enable"])).await,
        "Authentication Enabled\n"
    );
    let add = ["user", "add", "client", "--no-password"];
    assert_eq!(ok(ep, &with(&root, &add)).await, "User client created\n");
    let stderr = fails(ep, &with(&flags, &["get", "k"])).await;
    assert!(
        stderr.starts_with("Error: etcdserver: permission denied"),
        "{stderr}"
    );
    for step in [
        &["role", "add", "r"][..],
        &["role", "grant-permission", "r", "read", "k"],
        &["user", "grant-role", "client", "r"],
    ] {
        ok(ep, &with(&root, step)).await;
    }
    assert_eq!(ok(ep, &with(&flags, &["get", "k"])).await, "k\nv\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_against_etcd() {
    let certs = Certs::new();
    let Some(etcd) = Etcd::start(Some(&certs.server), &certs.flags()).await else {
        return;
    };
    tls_scenario(&etcd.client, &certs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_against_witan() {
    let certs = Certs::new();
    let witan = Witan::start(true, &certs.server_args(), &certs.flags()).await;
    tls_scenario(&witan.client, &certs).await;
    witan.stop().await;
}
