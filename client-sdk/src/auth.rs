//! Logging in: the user's credentials, the token the cluster issued for
//! them, and the interceptor that puts it in the `token` metadata of
//! every call (unary and streaming alike).
//!
//! One token serves the whole client: witan replicates tokens, so every
//! member accepts the one any member issued. A member that does not (an
//! etcd member, whose simple tokens are its own, or a token past its TTL)
//! answers "invalid auth token", and the caller logs in again through
//! [`Auth::refresh`] and repeats the call once. The password never leaves
//! this module except inside the Authenticate request.

use std::fmt;
use std::sync::{Arc, RwLock};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tracing::{debug, info};
use witan_proto::etcdserverpb::AuthenticateRequest;
use witan_proto::etcdserverpb::auth_client::AuthClient;

use crate::error::Error;

/// The metadata key etcd's servers read the token from.
const TOKEN_KEY: &str = "token";

/// A user name and password for [`ClientOptions::credentials`](crate::ClientOptions::credentials).
///
/// Its `Debug` output hides the password.
///
/// ```
/// use witan_client::Credentials;
///
/// let credentials = Credentials::new("alice", "s3cret");
/// assert_eq!(credentials.user(), "alice");
/// assert!(!format!("{credentials:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials for `user`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The token slot shared by the client and its interceptors.
type Slot = Arc<RwLock<Option<MetadataValue<Ascii>>>>;

/// The client's login: its credentials (if any) and its current token.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    credentials: Option<Credentials>,
    token: Slot,
    /// One login at a time: calls that all found the token expired log in
    /// once, not once each.
    login: tokio::sync::Mutex<()>,
}

impl Auth {
    /// A login for `credentials` (none: calls carry no token, and a member
    /// with auth on takes the caller from its client certificate, if any).
    pub(crate) fn new(credentials: Option<Credentials>) -> Auth {
        Auth {
            credentials,
            ..Auth::default()
        }
    }

    /// Whether there are credentials to log in with again.
    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The interceptor that adds the current token to a call.
    pub(crate) fn interceptor(&self) -> TokenInterceptor {
        TokenInterceptor {
            token: self.token.clone(),
        }
    }

    /// The token calls carry now.
    pub(crate) fn token(&self) -> Option<MetadataValue<Ascii>> {
        // A poisoned lock only means a writer panicked mid-assignment of
        // an `Option`: its value is still whole.
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_token(&self, token: Option<MetadataValue<Ascii>>) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Logs in through `channel` (once the client connected to a member).
    /// Nothing to do without credentials; a cluster with auth off gives no
    /// token and calls go without one (as etcd's clients do).
    pub(crate) async fn log_in(&self, channel: Channel) -> Result<(), Error> {
        let Some(credentials) = &self.credentials else {
            return Ok(());
        };
        let _one_at_a_time = self.login.lock().await;
        self.authenticate(credentials, channel).await
    }

    /// Logs in again after a call was refused with "invalid auth token"
    /// while it carried `stale`, unless another call already did.
    pub(crate) async fn refresh(
        &self,
        stale: Option<MetadataValue<Ascii>>,
        channel: Channel,
    ) -> Result<(), Error> {
        let Some(credentials) = &self.credentials else {
            return Ok(());
        };
        let _one_at_a_time = self.login.lock().await;
        if self.token() != stale {
            return Ok(());
        }
        debug!(user = %credentials.user, "token refused; logging in again");
        self.authenticate(credentials, channel).await
    }

    async fn authenticate(&self, credentials: &Credentials, channel: Channel) -> Result<(), Error> {
        let request = AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        };
        // No token on this call: Authenticate needs none, and a stale one
        // must not make it fail.
        match AuthClient::new(channel).authenticate(request).await {
            Ok(answer) => {
                let token = answer.into_inner().token;
                let value = MetadataValue::try_from(token.as_str()).map_err(|_| {
                    Error::UnexpectedResponse("the auth token is not printable ASCII")
                })?;
                self.set_token(Some(value));
                info!(user = %credentials.user, "authenticated");
                Ok(())
            }
            Err(status) => match Error::from_answer(&status) {
                Error::AuthNotEnabled => {
                    debug!("authentication is not enabled; calls go without a token");
                    self.set_token(None);
                    Ok(())
                }
                err => Err(err),
            },
        }
    }
}

/// Adds the client's current token to every call made through a channel.
#[derive(Debug, Clone)]
pub(crate) struct TokenInterceptor {
    token: Slot,
}

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(token) = token {
            request.metadata_mut().insert(TOKEN_KEY, token);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_not_in_debug_output() {
        let auth = Auth::new(Some(Credentials::new("alice", "hunter2")));
        let shown = format!("{auth:?} {:?}", Credentials::new("bob", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("bob"));
    }

    #[test]
    fn calls_carry_the_current_token() {
        let auth = Auth::new(None);
        let mut interceptor = auth.interceptor();
        let request = interceptor.call(Request::new(())).unwrap();
        assert!(request.metadata().get(TOKEN_KEY).is_none());

        auth.set_token(Some(MetadataValue::from_static("abc")));
        let request = interceptor.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get(TOKEN_KEY).unwrap(), "abc");
    }
}
