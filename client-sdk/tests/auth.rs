//! The SDK against members with authentication and TLS on: logging in,
//! the token on every kind of call, typed refusals, logging in again when
//! the token expires, `https://` with a CA and with a client certificate
//! whose common name is the user, and failover keeping the login.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{options, within};
use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use witan_client::{Client, ClientOptions, Error, Mode, Session, Tls};
use witan_client_testkit::Cluster;
use witan_proto::authpb::{Permission, permission};
use witan_proto::etcdserverpb::auth_client::AuthClient;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest, AuthenticateRequest, RangeRequest,
};

const ROOT_PW: &str = "root-pw";
const ALICE_PW: &str = "alice-pw";
const BOB_PW: &str = "bob-pw";
/// Fast password hashing: the tests log in often.
const FAST: [&str; 2] = ["--bcrypt-cost", "4"];
const SOON: Duration = Duration::from_secs(10);

/// A plain or TLS channel for setting auth up (the SDK has no auth
/// management calls).
async fn raw_channel(endpoint: &str, tls: Option<ClientTlsConfig>) -> Channel {
    let mut endpoint = Endpoint::from_shared(endpoint.to_string()).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect().await.unwrap()
}

/// Users `root`, `alice` (READ on `/app/`) and `bob` (READWRITE on
/// `/app/`), then auth on.
async fn set_up_auth(channel: Channel) {
    let mut auth = AuthClient::new(channel);
    let add_user = |name: &str, password: &str| AuthUserAddRequest {
        name: name.into(),
        password: password.into(),
        ..Default::default()
    };
    let grant = |user: &str, role: &str| AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    };
    let permission = |role: &str, kind: permission::Type| AuthRoleGrantPermissionRequest {
        name: role.into(),
        perm: Some(Permission {
            perm_type: kind as i32,
            key: b"/app/".to_vec(),
            range_end: b"/app0".to_vec(),
        }),
    };
    auth.user_add(add_user("root", ROOT_PW)).await.unwrap();
    for role in ["root", "reader", "writer"] {
        auth.role_add(AuthRoleAddRequest { name: role.into() })
            .await
            .unwrap();
    }
    auth.user_grant_role(grant("root", "root")).await.unwrap();
    auth.role_grant_permission(permission("reader", permission::Type::Read))
        .await
        .unwrap();
    auth.role_grant_permission(permission("writer", permission::Type::Readwrite))
        .await
        .unwrap();
    auth.user_add(add_user("alice", ALICE_PW)).await.unwrap();
    auth.user_grant_role(grant("alice", "reader"))
        .await
        .unwrap();
    auth.user_add(add_user("bob", BOB_PW)).await.unwrap();
    auth.user_grant_role(grant("bob", "writer")).await.unwrap();
    auth.auth_enable(AuthEnableRequest {}).await.unwrap();
}

/// A single member with auth set up, and its endpoint.
async fn auth_cluster(extra: &[&str]) -> Cluster {
    let args: Vec<&str> = FAST.iter().chain(extra).copied().collect();
    let cluster = Cluster::start_with(1, &args).await;
    set_up_auth(raw_channel(&cluster.endpoint(0), None).await).await;
    cluster
}

async fn connect_as(cluster: &Cluster, user: &str, password: &str) -> Result<Client, Error> {
    Client::connect(cluster.endpoints(), options().credentials(user, password)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_client_uses_kv_watch_leases_and_locks() {
    let cluster = auth_cluster(&[]).await;
    let bob = connect_as(&cluster, "bob", BOB_PW).await.unwrap();

    let mut events = bob.watch("/app/").prefix().await.unwrap();
    bob.put("/app/a", "1").await.unwrap();
    assert_eq!(bob.get("/app/a").await.unwrap().kvs[0].value, b"1");
    let event = within(SOON, "the watch event", events.next()).await;
    assert_eq!(event.unwrap().unwrap().kv().value, b"1");

    // A session keeps its lease alive through keepalive streams.
    let session = Session::new(&bob, 2).await.unwrap();
    let lease = session.lease_id();
    let ttl = bob.lease_time_to_live(lease, false).await.unwrap();
    assert!(ttl.ttl > 0, "{ttl:?}");

    for mode in [Mode::Server, Mode::ClientSide] {
        let lock = bob.lock("/app/lock").mode(mode);
        let guard = within(SOON, "the lock", lock.acquire(&session))
            .await
            .unwrap();
        guard.release().await.unwrap();
    }
    session.close().await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed() {
    let cluster = auth_cluster(&[]).await;

    let started = Instant::now();
    let wrong = connect_as(&cluster, "bob", "not-bobs").await;
    assert!(
        matches!(wrong, Err(Error::AuthenticationFailed)),
        "{wrong:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "retried a refused login"
    );
    let nobody = connect_as(&cluster, "nobody", "pw").await;
    assert!(
        matches!(nobody, Err(Error::AuthenticationFailed)),
        "{nobody:?}"
    );

    let alice = connect_as(&cluster, "alice", ALICE_PW).await.unwrap();
    alice.get("/app/a").await.unwrap();
    let put = alice.put("/app/a", "x").await;
    assert!(
        matches!(put, Err(Error::PermissionDenied { .. })),
        "{put:?}"
    );
    let outside = alice.get("/secret").await;
    assert!(
        matches!(outside, Err(Error::PermissionDenied { .. })),
        "{outside:?}"
    );
    let watch = alice.watch("/secret/").prefix().await;
    assert!(
        matches!(watch, Err(Error::PermissionDenied { .. })),
        "{:?}",
        watch.err()
    );

    let anonymous = Client::connect(cluster.endpoints(), options())
        .await
        .unwrap();
    let get = anonymous.get("/app/a").await;
    assert!(matches!(get, Err(Error::Unauthenticated { .. })), "{get:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_by_logging_in_again() {
    let cluster = auth_cluster(&["--auth-token-ttl", "2"]).await;
    let bob = connect_as(&cluster, "bob", BOB_PW).await.unwrap();
    bob.put("/app/a", "before").await.unwrap();
    let mut events = bob.watch("/app/").prefix().await.unwrap();

    // A token issued after the client's expires after it: once this one
    // is refused, so is the client's.
    let channel = raw_channel(&cluster.endpoint(0), None).await;
    let token = AuthClient::new(channel.clone())
        .authenticate(AuthenticateRequest {
            name: "bob".into(),
            password: BOB_PW.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let deadline = Instant::now() + SOON;
    loop {
        let mut request = tonic::Request::new(RangeRequest {
            key: b"/app/a".to_vec(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("token", token.parse().unwrap());
        match KvClient::new(channel.clone()).range(request).await {
            Ok(_) => assert!(Instant::now() < deadline, "the token never expired"),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new watch, a write and a read go through, after logging in again
    // (the watch first: its stream is what finds the token refused).
    let mut fresh = bob.watch("/app/").prefix().await.unwrap();
    bob.put("/app/a", "after").await.unwrap();
    assert_eq!(bob.get("/app/a").await.unwrap().kvs[0].value, b"after");
    // The watch opened with the old token still delivers.
    let event = within(SOON, "the watch event", events.next()).await;
    assert_eq!(event.unwrap().unwrap().kv().value, b"after");
    let event = within(SOON, "the new watch's event", fresh.next()).await;
    assert_eq!(event.unwrap().unwrap().kv().value, b"after");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_the_login() {
    let mut cluster = Cluster::start_with(3, &FAST).await;
    set_up_auth(raw_channel(&cluster.endpoint(0), None).await).await;
    let bob = connect_as(&cluster, "bob", BOB_PW).await.unwrap();
    bob.put("/app/a", "1").await.unwrap();
    let mut events = bob.watch("/app/").prefix().await.unwrap();

    // The member the client (and its watch) is on stops.
    cluster.stop_member(0).await;
    bob.put("/app/a", "2").await.unwrap();
    assert_eq!(bob.get("/app/a").await.unwrap().kvs[0].value, b"2");
    let event = within(SOON, "the watch event after failover", events.next()).await;
    assert_eq!(event.unwrap().unwrap().kv().value, b"2");
    let alice = Client::connect(
        cluster.endpoints(),
        options().credentials("alice", ALICE_PW),
    )
    .await
    .unwrap();
    assert_eq!(alice.get("/app/a").await.unwrap().kvs[0].value, b"2");
    cluster.stop().await;
}

/// A test CA that issues certificates for 127.0.0.1.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "witan sdk test CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) for 127.0.0.1 named `cn`.
    fn issue(&self, cn: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA and a member certificate to `dir`: the TLS flags.
    fn member_args(&self, dir: &Path, client_cert_auth: bool) -> Vec<String> {
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (cert, key) = self.issue("member");
        let mut args = vec![
            "--cert-file".to_string(),
            write("member.pem", &cert).display().to_string(),
            "--key-file".to_string(),
            write("member-key.pem", &key).display().to_string(),
            "--trusted-ca-file".to_string(),
            write("ca.pem", &self.pem).display().to_string(),
        ];
        if client_cert_auth {
            args.push("--client-cert-auth".to_string());
        }
        args
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_ca_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let mut args: Vec<String> = ca.member_args(dir.path(), false);
    args.extend(FAST.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = Cluster::start_with(1, &args).await;
    let endpoint = cluster.endpoint(0);
    assert!(endpoint.starts_with("https://"), "{endpoint}");

    let raw_tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    set_up_auth(raw_channel(&endpoint, Some(raw_tls)).await).await;

    let tls = || options().tls(Tls::new(&ca.pem));
    let bob = Client::connect([endpoint.clone()], tls().credentials("bob", BOB_PW))
        .await
        .unwrap();
    bob.put("/app/tls", "yes").await.unwrap();
    assert_eq!(bob.get("/app/tls").await.unwrap().kvs[0].value, b"yes");
    // Scheme-less endpoints take TLS from the options.
    let scheme_less = endpoint.trim_start_matches("https://").to_string();
    let again = Client::connect([scheme_less], tls().credentials("alice", ALICE_PW))
        .await
        .unwrap();
    assert_eq!(again.endpoints(), vec![endpoint.clone()]);
    assert_eq!(again.get("/app/tls").await.unwrap().kvs[0].value, b"yes");

    // https:// without a CA, and a CA that did not sign the member's
    // certificate, are refused.
    let no_tls = Client::connect([endpoint.clone()], options()).await;
    assert!(
        matches!(no_tls, Err(Error::InvalidEndpoint { .. })),
        "{no_tls:?}"
    );
    let stranger = Ca::new();
    let untrusted = Client::connect(
        [endpoint.clone()],
        ClientOptions::default()
            .connect_timeout(Duration::from_millis(500))
            .tls(Tls::new(&stranger.pem)),
    )
    .await;
    assert!(
        matches!(untrusted, Err(Error::Unavailable { .. })),
        "{untrusted:?}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_its_common_name_in() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let mut args: Vec<String> = ca.member_args(dir.path(), true);
    args.extend(FAST.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = Cluster::start_with(1, &args).await;
    let endpoint = cluster.endpoint(0);

    let (root_cert, root_key) = ca.issue("root");
    let raw_tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .identity(Identity::from_pem(&root_cert, &root_key));
    set_up_auth(raw_channel(&endpoint, Some(raw_tls)).await).await;

    let as_cert = |cn: &str| {
        let (cert, key) = ca.issue(cn);
        options().tls(Tls::new(&ca.pem).identity(cert, key))
    };
    let bob = Client::connect([endpoint.clone()], as_cert("bob"))
        .await
        .unwrap();
    bob.put("/app/cn", "bob").await.unwrap();
    let alice = Client::connect([endpoint.clone()], as_cert("alice"))
        .await
        .unwrap();
    assert_eq!(alice.get("/app/cn").await.unwrap().kvs[0].value, b"bob");
    let denied = alice.put("/app/cn", "alice").await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    cluster.stop().await;
}
