//! [`AuthGate`]: what a service needs to authenticate a request against
//! the member's applied state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::Request;

use super::{Authenticator, Caller};
use crate::mvcc::{AuthError, AuthStore};
use crate::raft::read_index::ReadIndex;
use crate::storage::{AppliedState, StateReader};
use crate::tls::ConnInfo;

/// The authenticator, the applied state and the read barrier, for
/// services. Cheap to clone.
#[derive(Clone)]
pub struct AuthGate {
    /// How requests are authenticated.
    pub authenticator: Authenticator,
    /// The member's applied state (the auth store is in it).
    pub state: StateReader,
    /// The linearizable read barrier: a token this member does not know
    /// yet may have been issued by another member a moment ago.
    pub read_index: ReadIndex,
    /// How long catching up for an unknown token may take.
    pub request_timeout: Duration,
}

/// Who a request comes from, and the applied state that was judged on.
pub type Identified = Result<(Caller, Arc<AppliedState>), AuthError>;

impl AuthGate {
    /// Who `request` comes from, with the applied state that was judged
    /// on (permission checks should use the same one).
    ///
    /// A token this member does not know is looked up once more after the
    /// read barrier: Authenticate answers once the token is applied on the
    /// member that issued it, and a client may then go to another member
    /// that has not applied it yet. Only then is it "invalid". The future
    /// does not borrow `request`.
    pub fn caller<T>(
        &self,
        request: &Request<T>,
    ) -> impl Future<Output = Identified> + Send + 'static {
        let conn = request.extensions().get::<ConnInfo>();
        let first = self.identify(request.metadata(), conn);
        let retry = match &first {
            Err(AuthError::InvalidAuthToken) => Some((request.metadata().clone(), conn.cloned())),
            _ => None,
        };
        let gate = self.clone();
        async move {
            let Some((metadata, conn)) = retry else {
                return first;
            };
            gate.catch_up().await;
            gate.identify(&metadata, conn.as_ref())
        }
    }

    /// The caller of `request`, once `check` passed on the auth store.
    pub async fn allow<T>(
        &self,
        request: &Request<T>,
        check: impl FnOnce(&Caller, &AuthStore) -> Result<(), AuthError>,
    ) -> Result<Caller, AuthError> {
        let (caller, state) = self.caller(request).await?;
        check(&caller, state.kv.auth())?;
        Ok(caller)
    }

    /// Waits until this member applied everything committed before now
    /// (after a change to the auth store, so that this member's next
    /// check sees it). A failure only means the next check may see an
    /// older store, which is refused or retried, never wrongly allowed.
    pub async fn catch_up(&self) {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let Ok(index) = self.read_index.read_index(deadline).await else {
            return;
        };
        let _ = tokio::time::timeout_at(deadline, self.state.wait_applied(index)).await;
    }

    fn identify(&self, metadata: &MetadataMap, conn: Option<&ConnInfo>) -> Identified {
        let state = self.state.current();
        let caller = self.authenticator.caller_of(metadata, conn, &state.kv)?;
        Ok((caller, state))
    }
}
