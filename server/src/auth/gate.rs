//! [`AuthGate`]: what a service needs to authenticate a request against
//! the member's applied state.

use std::sync::Arc;

use tonic::Request;

use super::{Authenticator, Caller};
use crate::mvcc::{AuthError, AuthStore};
use crate::storage::{AppliedState, StateReader};

/// The authenticator and the applied state, for services. Cheap to clone.
#[derive(Clone)]
pub struct AuthGate {
    /// How requests are authenticated.
    pub authenticator: Authenticator,
    /// The member's applied state (the auth store is in it).
    pub state: StateReader,
}

impl AuthGate {
    /// Who `request` comes from, with the applied state that was judged
    /// on (permission checks should use the same one).
    pub fn caller<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(Caller, Arc<AppliedState>), AuthError> {
        let state = self.state.current();
        let caller = self.authenticator.caller(request, &state.kv)?;
        Ok((caller, state))
    }

    /// The caller of `request`, once `check` passed on the auth store.
    pub fn allow<T>(
        &self,
        request: &Request<T>,
        check: impl FnOnce(&Caller, &AuthStore) -> Result<(), AuthError>,
    ) -> Result<Caller, AuthError> {
        let (caller, state) = self.caller(request)?;
        check(&caller, state.kv.auth())?;
        Ok(caller)
    }
}
