//! Connections: [`Ctx`] holds what every command needs (endpoints,
//! timeouts, output settings) and opens a [`Conn`] to one endpoint, with
//! the generated etcd and witan clients over it. A dial that fails says
//! which endpoint and why; a unary call runs under `--command-timeout`
//! ([`Conn::call`]), a blocking or streaming one does not. TLS (etcdctl's
//! `--cacert`, `--cert`, `--key` flags, `https://` endpoints) is in [`tls`],
//! asking for passwords in [`prompt`].

pub mod prompt;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use witan_proto::etcdserverpb::auth_client::AuthClient;
use witan_proto::etcdserverpb::cluster_client::ClusterClient;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use witan_proto::etcdserverpb::watch_client::WatchClient;
use witan_proto::etcdserverpb::AuthenticateRequest;
use witan_proto::recipespb::barrier_client::BarrierClient;
use witan_proto::recipespb::semaphore_client::SemaphoreClient;
use witan_proto::v3electionpb::election_client::ElectionClient;
use witan_proto::v3lockpb::lock_client::LockClient;

use crate::cli::{Format, Global};
use crate::conn::tls::TlsFlags;
use crate::error::CtlError;

/// etcd's answer to `Authenticate` while authentication is disabled.
const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";

/// A channel that carries the auth token, when there is one.
pub type Svc = InterceptedService<Channel, Token>;

/// Adds etcd's `token` metadata to every request once authenticated.
#[derive(Debug, Clone, Default)]
pub struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Token {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("token", token.clone());
        }
        Ok(request)
    }
}

/// What every command gets: the global flags, resolved.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The endpoints, as given (messages name them so).
    pub endpoints: Vec<String>,
    /// Dial timeout.
    pub dial_timeout: Duration,
    /// Timeout of one unary call.
    pub command_timeout: Duration,
    /// Output format.
    pub format: Format,
    /// Print keys and values as hex.
    pub hex: bool,
    /// User and password, when authentication is asked for.
    pub credentials: Option<(String, String)>,
    /// The transport security flags.
    pub tls: TlsFlags,
}

impl Ctx {
    /// The context the global flags describe. A `--user` without a
    /// password gets an empty one here; [`Ctx::ask_password`] asks for it.
    pub fn new(global: &Global) -> Ctx {
        let credentials = global
            .credentials()
            .map(|(name, password)| (name, password.unwrap_or_default()));
        Ctx {
            endpoints: global.endpoints(),
            dial_timeout: global.dial_timeout,
            command_timeout: global.command_timeout,
            format: global.write_out,
            hex: global.hex,
            credentials,
            tls: global.tls(),
        }
    }

    /// Asks for the password of `--user` on the terminal ("Password: ",
    /// as etcdctl) when the flags gave none.
    pub fn ask_password(&mut self, global: &Global) -> Result<(), CtlError> {
        if let Some((name, None)) = global.credentials() {
            let password = prompt::prompt("Password: ")?;
            self.credentials = Some((name, password));
        }
        Ok(())
    }

    /// A connection to the first endpoint that answers, in the order
    /// given; the error of the last one when none does.
    pub async fn connect(&self) -> Result<Conn, CtlError> {
        let mut last = None;
        for endpoint in &self.endpoints {
            match self.connect_to(endpoint).await {
                Ok(conn) => return Ok(conn),
                Err(error @ CtlError::Unreachable { .. }) => {
                    tracing::debug!(%endpoint, %error, "trying the next endpoint");
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(CtlError::Unreachable {
            endpoint: String::new(),
            reason: "no endpoints given".into(),
        }))
    }

    /// A connection to `endpoint` (authenticated when credentials were given).
    pub async fn connect_to(&self, endpoint: &str) -> Result<Conn, CtlError> {
        let secure = self.tls.wanted(endpoint);
        // The TLS connector does the handshake, so tonic is given the
        // plain URI of the same address.
        let url = if secure {
            format!("http://{}", endpoint.trim_start_matches("https://"))
        } else {
            url_of(endpoint)
        };
        let target = Endpoint::from_shared(url).map_err(|source| CtlError::BadEndpoint {
            endpoint: endpoint.to_string(),
            source,
        })?;
        let target = target.connect_timeout(self.dial_timeout).tcp_nodelay(true);
        let dial = async {
            if secure {
                let connector = tls::connector(self.tls.client_config()?);
                Ok(target.connect_with_connector(connector).await)
            } else {
                Ok(target.connect().await)
            }
        };
        let channel = match tokio::time::timeout(self.dial_timeout, dial).await {
            Ok(Err(error)) => return Err(error),
            Ok(Ok(answer)) => Self::dialled(endpoint, answer)?,
            Err(_) => {
                return Err(CtlError::Unreachable {
                    endpoint: endpoint.to_string(),
                    reason: format!(
                        "no connection within --dial-timeout {}",
                        humantime::format_duration(self.dial_timeout)
                    ),
                })
            }
        };
        let mut conn = Conn {
            endpoint: endpoint.to_string(),
            channel,
            token: Token::default(),
            timeout: self.command_timeout,
        };
        if let Some((name, password)) = &self.credentials {
            conn.authenticate(name, password).await?;
        }
        Ok(conn)
    }

    /// The channel of a finished dial, or why there is none.
    fn dialled(
        endpoint: &str,
        answer: Result<Channel, tonic::transport::Error>,
    ) -> Result<Channel, CtlError> {
        answer.map_err(|error| CtlError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: root_cause(&error),
        })
    }
}

/// `endpoint` as a URL: `http://` is added when it has no scheme.
pub fn url_of(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// The innermost cause of a transport error, which says what happened
/// ("Connection refused (os error 111)") where the outer ones do not.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            return "connection refused".to_string();
        }
    }
    cause.to_string()
}

/// A connection to one endpoint.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The endpoint as given.
    pub endpoint: String,
    channel: Channel,
    token: Token,
    timeout: Duration,
}

impl Conn {
    fn svc(&self) -> Svc {
        InterceptedService::new(self.channel.clone(), self.token.clone())
    }

    /// etcd's Auth service (users, roles, enabling authentication).
    pub fn auth(&self) -> AuthClient<Svc> {
        AuthClient::new(self.svc())
    }

    /// etcd's KV service.
    pub fn kv(&self) -> KvClient<Svc> {
        KvClient::new(self.svc())
    }

    /// etcd's Watch service.
    pub fn watch(&self) -> WatchClient<Svc> {
        WatchClient::new(self.svc())
    }

    /// etcd's Lease service.
    pub fn lease(&self) -> LeaseClient<Svc> {
        LeaseClient::new(self.svc())
    }

    /// etcd's Cluster service.
    pub fn cluster(&self) -> ClusterClient<Svc> {
        ClusterClient::new(self.svc())
    }

    /// etcd's Maintenance service (snapshots are large: no size limit).
    pub fn maintenance(&self) -> MaintenanceClient<Svc> {
        MaintenanceClient::new(self.svc()).max_decoding_message_size(usize::MAX)
    }

    /// etcd's Lock service.
    pub fn lock(&self) -> LockClient<Svc> {
        LockClient::new(self.svc())
    }

    /// etcd's Election service.
    pub fn election(&self) -> ElectionClient<Svc> {
        ElectionClient::new(self.svc())
    }

    /// witan's Barrier service.
    pub fn barrier(&self) -> BarrierClient<Svc> {
        BarrierClient::new(self.svc())
    }

    /// witan's Semaphore service.
    pub fn semaphore(&self) -> SemaphoreClient<Svc> {
        SemaphoreClient::new(self.svc())
    }

    /// Runs unary call `what` under `--command-timeout`, turning its
    /// status into an error that names this endpoint.
    pub async fn call<T, F>(&self, what: &'static str, call: F) -> Result<T, CtlError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result
                .map(tonic::Response::into_inner)
                .map_err(|status| self.rpc(what, status)),
            Err(_) => Err(CtlError::Timeout {
                endpoint: self.endpoint.clone(),
                what,
                after: self.timeout,
            }),
        }
    }

    /// Runs call `what` with no deadline (it blocks by design: a lock, a
    /// campaign, a stream), turning its status into an error.
    pub async fn wait<T, F>(&self, what: &'static str, call: F) -> Result<T, CtlError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        call.await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.rpc(what, status))
    }

    /// The error for status `status` of call `what` here.
    pub fn rpc(&self, what: &'static str, status: tonic::Status) -> CtlError {
        CtlError::Rpc {
            endpoint: self.endpoint.clone(),
            what,
            status,
        }
    }

    /// Authenticates and keeps the token for every later call.
    async fn authenticate(&mut self, name: &str, password: &str) -> Result<(), CtlError> {
        let mut auth = AuthClient::new(self.svc());
        let request = AuthenticateRequest {
            name: name.to_string(),
            password: password.to_string(),
        };
        let answer = tokio::time::timeout(self.timeout, auth.authenticate(request)).await;
        let response = match answer {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                return Err(CtlError::AuthUnsupported {
                    endpoint: self.endpoint.clone(),
                    message: status.message().to_string(),
                })
            }
            // As etcd's own client: credentials for a cluster that does
            // not check them are no reason to fail.
            Ok(Err(status)) if status.message() == AUTH_NOT_ENABLED => {
                tracing::debug!(endpoint = %self.endpoint, "authentication is not enabled");
                return Ok(());
            }
            Ok(Err(status)) => return Err(self.rpc("Authenticate", status)),
            Err(_) => {
                return Err(CtlError::Timeout {
                    endpoint: self.endpoint.clone(),
                    what: "Authenticate",
                    after: self.timeout,
                })
            }
        };
        let token = MetadataValue::try_from(response.token.as_str()).map_err(|_| {
            self.rpc(
                "Authenticate",
                tonic::Status::internal("the server sent a token that is not valid metadata"),
            )
        })?;
        self.token = Token(Some(token));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_scheme_gets_http() {
        assert_eq!(url_of("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(url_of("http://a:1"), "http://a:1");
        assert_eq!(url_of("https://a:1"), "https://a:1");
    }

    #[tokio::test]
    async fn a_refused_dial_names_the_endpoint_and_the_reason() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let ctx = Ctx {
            endpoints: vec![format!("127.0.0.1:{port}")],
            dial_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            format: Format::Simple,
            hex: false,
            credentials: None,
            tls: TlsFlags::default(),
        };
        let error = ctx.connect().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot reach 127.0.0.1:{port}: connection refused — is a member running there? check --endpoints"
            )
        );
    }
}
